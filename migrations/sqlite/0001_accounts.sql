-- Accounts core: users, clients, memberships (with exactly one owner per client), invites,
-- banned email domains, security questions, admins, roles, API tokens and the audit log.
-- Timestamps are Unix seconds; flags are 0/1 integers (the same representation as PostgreSQL).

CREATE TABLE security_questions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    question    TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    email                 TEXT    NOT NULL,
    email_norm            TEXT    NOT NULL UNIQUE,   -- lower-cased: emails are unique case-insensitively
    first_name            TEXT    NOT NULL,
    last_name             TEXT    NOT NULL,
    language              TEXT    NOT NULL DEFAULT '',
    password_hash         TEXT,                      -- NULL until the user sets a password
    security_question_id  INTEGER REFERENCES security_questions(id),
    security_answer_hash  TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE clients (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_user_id  INTEGER NOT NULL,
    first_name     TEXT    NOT NULL,
    last_name      TEXT    NOT NULL,
    company        TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL,
    address1       TEXT    NOT NULL DEFAULT '',
    address2       TEXT    NOT NULL DEFAULT '',
    city           TEXT    NOT NULL DEFAULT '',
    state          TEXT    NOT NULL DEFAULT '',
    postcode       TEXT    NOT NULL DEFAULT '',
    country        TEXT    NOT NULL DEFAULT '',
    phone          TEXT    NOT NULL DEFAULT '',
    language       TEXT    NOT NULL DEFAULT '',
    tax_id         TEXT    NOT NULL DEFAULT '',
    status         TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'closed')),
    client_group   TEXT    NOT NULL DEFAULT '',
    notes          TEXT    NOT NULL DEFAULT '',
    email_prefs    TEXT    NOT NULL DEFAULT 'general,product,domain,invoice,support,affiliate',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- The owner must be one of the client's members: with owner_user_id NOT NULL this makes
    -- "exactly one owner, and the owner cannot be removed" a database invariant.
    FOREIGN KEY (id, owner_user_id) REFERENCES memberships (client_id, user_id)
        DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE memberships (
    client_id    INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    permissions  TEXT    NOT NULL DEFAULT '',         -- comma-separated permission keys
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (client_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invites (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id           INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    email               TEXT    NOT NULL,
    permissions         TEXT    NOT NULL DEFAULT '',
    token_hash          TEXT    NOT NULL UNIQUE,      -- SHA-256 of the token; the token itself is never stored
    invited_by_user_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    accepted_at         INTEGER,
    accepted_user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    cancelled_at        INTEGER
);
CREATE INDEX invites_client ON invites (client_id);

CREATE TABLE banned_email_domains (
    domain         TEXT    PRIMARY KEY,
    blocked_count  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE roles (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    permissions  TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);

CREATE TABLE admins (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL,
    username_norm   TEXT    NOT NULL UNIQUE,
    email           TEXT    NOT NULL,
    role_id         INTEGER REFERENCES roles(id),
    password_hash   TEXT,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id      INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor_type   TEXT    NOT NULL CHECK (actor_type IN ('admin', 'user', 'system')),
    actor_id     INTEGER,
    actor_label  TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL,
    target_type  TEXT    NOT NULL,
    target_id    INTEGER,
    ip           TEXT,
    details      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
