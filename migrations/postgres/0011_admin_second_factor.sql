-- Admins prove the second factor the way users do: the method is a column of its own (`totp` or
-- `duo`), so one sign-in serves both kinds of account. An admin with a TOTP key had `totp`.
ALTER TABLE admins ADD COLUMN twofa_method TEXT;
UPDATE admins SET twofa_method = 'totp' WHERE totp_secret IS NOT NULL;

-- An admin's row is stamped when a credential changes, as a user's is.
ALTER TABLE admins ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE admins SET updated_at = created_at;
