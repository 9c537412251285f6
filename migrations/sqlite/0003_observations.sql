-- What the doctor needs to judge observed requests against the configuration they were served
-- under: whether the scheme came from a trusted proxy's header (X-Forwarded-Proto, CF-Visitor)
-- rather than from the connection — "the proxy says http" is not "nobody said https" — and the
-- fingerprint of the configuration the server ran with, so requests seen before a fix (a new
-- system_url, trusted proxies, ip_check) no longer count against it.
ALTER TABLE request_observations ADD COLUMN scheme_from_proxy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_observations ADD COLUMN config_fingerprint TEXT NOT NULL DEFAULT '';
