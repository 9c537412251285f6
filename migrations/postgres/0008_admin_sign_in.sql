-- Admins sign in to the admin area in the browser: a second factor like users' (a TOTP key with
-- its last accepted step, against replay, and the hash of the one backup code).
ALTER TABLE admins ADD COLUMN totp_secret TEXT;
ALTER TABLE admins ADD COLUMN totp_last_step BIGINT;
ALTER TABLE admins ADD COLUMN backup_code_hash TEXT;

-- Admin sessions live in the same store as users'; their own column lets an admin's sessions be
-- listed and ended with an indexed query, and go with the admin.
ALTER TABLE sessions ADD COLUMN admin_id BIGINT REFERENCES admins(id) ON DELETE CASCADE;
CREATE INDEX sessions_admin ON sessions (admin_id);
