-- Whether a request carried a forwarding header (X-Forwarded-For, X-Real-IP, Forwarded,
-- CF-Connecting-IP) from a peer that is not trusted: a proxy or load-balancer pool that was never
-- added to trusted_proxies.ranges, which proxy.trusted names peer by peer.
ALTER TABLE request_observations ADD COLUMN forwarded_untrusted INTEGER NOT NULL DEFAULT 0;
