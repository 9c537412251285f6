-- A browser that has signed in to an account holds a device token for it (OWASP's "device
-- cookies"): its sign-ins count in a budget of their own and are never refused because unknown
-- devices used up the account's. Only the token's SHA-256 is kept; revoking one deletes its row.
CREATE TABLE device_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    principal     TEXT    NOT NULL CHECK (principal IN ('user', 'admin')),
    account_id    INTEGER NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    user_agent    TEXT    NOT NULL DEFAULT '',
    ip            TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL
);
CREATE INDEX device_tokens_account ON device_tokens (principal, account_id);
