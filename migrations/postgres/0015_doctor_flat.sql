-- `accounts.password_hashes` lists the users whose hash is not of the current policy: they are
-- few (each is upgraded at its next sign-in), so they are read from an index of their own
-- instead of every user's hash. The literal is `passwords::POLICY_PREFIX` (a test holds the two
-- together): a new policy comes with a new migration.
CREATE INDEX users_off_policy ON users (id)
    WHERE password_hash IS NOT NULL AND password_hash NOT LIKE '$argon2id$v=19$m=19456,t=2,p=1$%';
