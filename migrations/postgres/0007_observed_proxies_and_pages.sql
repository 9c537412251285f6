-- Whether a request carried a forwarding header (X-Forwarded-For, X-Real-IP, Forwarded,
-- CF-Connecting-IP) from a peer that is not trusted: a proxy or load-balancer pool that was never
-- added to trusted_proxies.ranges, which proxy.trusted names peer by peer.
ALTER TABLE request_observations ADD COLUMN forwarded_untrusted INTEGER NOT NULL DEFAULT 0;

-- The page the visitor was on (the same-host Referer's path, cut to as many segments as
-- system_url's path has, so no token in a deeper segment is kept; '' without one): a site
-- browsed at / while system_url says /clients gets a session cookie with Path=/clients that the
-- browser never sends back, and system_url.requests names both paths.
ALTER TABLE request_observations ADD COLUMN page_path TEXT NOT NULL DEFAULT '';
