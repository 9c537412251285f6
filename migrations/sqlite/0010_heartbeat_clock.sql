-- Each heartbeat carries its process's clock against the database server's, read in the same
-- statement (PostgreSQL only: a SQLite database has no clock of its own), so the doctor run on
-- any node can name another node whose clock is off.
ALTER TABLE heartbeats ADD COLUMN clock_offset_ms INTEGER;
