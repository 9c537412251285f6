-- Each heartbeat carries its process's clock against the database server's, read in the same
-- statement (PostgreSQL only: a SQLite database has no clock of its own), so the doctor run on
-- any node can name another node whose clock is off.
ALTER TABLE heartbeats ADD COLUMN clock_offset_ms INTEGER;

-- What visitors met, counted by day (UTC) and cause, never one row per request: sessions a
-- node never issued, "Access Denied" by role and permission, forms refused by cause. Each serve adds its counts every few seconds; a week is kept.
CREATE TABLE encounters (
    day     INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (day, kind, detail)
);

-- The account each process runs as, and the folders it needed and could not write (a JSON
-- list): the doctor, often run as root, sees what the service account meets.
ALTER TABLE heartbeats ADD COLUMN run_as TEXT NOT NULL DEFAULT '';
ALTER TABLE heartbeats ADD COLUMN uid INTEGER;
ALTER TABLE heartbeats ADD COLUMN troubles TEXT NOT NULL DEFAULT '[]';
