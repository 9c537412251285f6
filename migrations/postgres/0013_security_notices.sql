-- Security notifications carry a single-use "this wasn't me" link: it ends every session of the
-- account, forgets its known devices and (for a user) starts a password reset. Only the link's
-- SHA-256 is kept. For users and admins alike, hence the principal beside the account id.
CREATE TABLE not_me_links (
    token_hash  TEXT    PRIMARY KEY,
    principal   TEXT    NOT NULL CHECK (principal IN ('user', 'admin')),
    account_id  BIGINT  NOT NULL,
    -- What the notice told (a "this wasn't me" after "two-factor was turned on" also turns it off),
    -- and the address it went to (an address changed since is put back).
    kind        TEXT    NOT NULL,
    sent_to     TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);
CREATE INDEX not_me_links_expiry ON not_me_links (expires_at);

-- A sign-in from a new device is told unless the person turned it off; credential changes are
-- always told.
ALTER TABLE users ADD COLUMN notify_new_device INTEGER NOT NULL DEFAULT 1;
ALTER TABLE admins ADD COLUMN notify_new_device INTEGER NOT NULL DEFAULT 1;
