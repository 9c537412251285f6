-- Whether an observation's scheme came from a trusted proxy's header (X-Forwarded-Proto or
-- CF-Visitor) rather than from the connection: the doctor's sessions.cookie check needs to tell
-- "the proxy says http" from "nobody said https".
ALTER TABLE request_observations ADD COLUMN scheme_from_proxy INTEGER NOT NULL DEFAULT 0;
