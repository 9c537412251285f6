-- Authentication state: two-factor settings on users, sessions (database store), throttling
-- counters, password-reset and one-time login tokens, the mail outbox, process heartbeats, a
-- bounded sample of request observations for the doctor, and this instance's identity.

ALTER TABLE users ADD COLUMN twofa_method TEXT CHECK (twofa_method IN ('totp', 'duo'));
ALTER TABLE users ADD COLUMN totp_secret TEXT;            -- base32; needed in the clear to verify codes
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;      -- last accepted time step: codes are never replayed
ALTER TABLE users ADD COLUMN backup_code_hash TEXT;       -- argon2id of the normalized backup code

CREATE TABLE sessions (
    key           TEXT    PRIMARY KEY,                    -- SHA-256 of the cookie token
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    data          TEXT    NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
CREATE INDEX sessions_created ON sessions (created_at);

CREATE TABLE throttle (
    scope         TEXT    PRIMARY KEY,                    -- 'account:<email>' or 'ip:<address>'
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE one_time_tokens (
    token_hash  TEXT    PRIMARY KEY,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('password_reset', 'impersonation')),
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    admin_id    INTEGER REFERENCES admins(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    to_addr          TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    sent_at          INTEGER,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE heartbeats (
    role                TEXT    NOT NULL,
    host                TEXT    NOT NULL,
    install_dir         TEXT    NOT NULL,
    version             TEXT    NOT NULL,
    timezone            TEXT    NOT NULL,
    config_fingerprint  TEXT    NOT NULL,
    pid                 INTEGER NOT NULL,
    at                  INTEGER NOT NULL,
    PRIMARY KEY (role, host, install_dir)
);

CREATE TABLE request_observations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 INTEGER NOT NULL,
    host               TEXT    NOT NULL,
    scheme             TEXT    NOT NULL,
    peer_ip            TEXT    NOT NULL,
    client_ip          TEXT    NOT NULL,
    cf_headers         INTEGER NOT NULL,
    session_ip_change  INTEGER NOT NULL
);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
