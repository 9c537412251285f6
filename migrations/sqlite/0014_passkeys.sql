-- Passkeys (WebAuthn credentials) of users and admins, several per person, named. `passkey` is
-- the relying-party library's record of the credential (public key, signature counter, backup
-- state) as JSON; `handle` is the WebAuthn user handle, one random UUID per account, which a
-- discoverable credential gives back to say whose it is.
CREATE TABLE passkeys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    principal      TEXT    NOT NULL CHECK (principal IN ('user', 'admin')),
    account_id     INTEGER NOT NULL,
    handle         TEXT    NOT NULL,
    credential_id  TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    passkey        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
);
CREATE INDEX passkeys_account ON passkeys (principal, account_id);

-- A ceremony between its two requests (the options sent to the browser, the browser's answer):
-- the library's state, bound to the session that asked (the SHA-256 of its CSRF token), taken
-- once, and only for five minutes. The id the browser holds is kept as its SHA-256.
CREATE TABLE passkey_ceremonies (
    id_hash     TEXT    PRIMARY KEY,
    purpose     TEXT    NOT NULL,
    principal   TEXT    NOT NULL CHECK (principal IN ('user', 'admin')),
    account_id  INTEGER,
    bound_to    TEXT    NOT NULL,
    ip          TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_ip ON passkey_ceremonies (ip);
