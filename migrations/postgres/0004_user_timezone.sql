-- The time zone a user reads times in (their sessions, pending invitations): an IANA name, or
-- '' for the site's own `timezone:`. Chosen on the profile page.
ALTER TABLE users ADD COLUMN timezone TEXT NOT NULL DEFAULT '';
