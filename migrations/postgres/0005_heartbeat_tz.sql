-- The raw TZ environment variable of the process that wrote a heartbeat, when set: a TZ that
-- names no zone (a typo such as Europe/Berln) makes the C library silently use UTC, and the
-- doctor names the value.
ALTER TABLE heartbeats ADD COLUMN tz_env TEXT;
