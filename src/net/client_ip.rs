//! Which address a request really comes from. Forwarded headers are believed only from trusted
//! peers, and the forwarded list is walked from the right, skipping trusted hops: the first
//! untrusted address is the client (as nginx `real_ip_recursive on`, Rails RemoteIp). The
//! left-most entry is never taken on trust — the client writes it.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

use ipnet::IpNet;

use crate::config::{ForwardedHeader, TrustedProxies};

static CLOUDFLARE: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    include_str!("cloudflare.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse().expect("bundled CloudFlare ranges are valid CIDRs"))
        .collect()
});

/// CloudFlare's published edge ranges, as bundled.
pub fn cloudflare_ranges() -> &'static [IpNet] {
    &CLOUDFLARE
}

/// The day the bundled ranges were copied from CloudFlare (their `# as of` line).
pub fn bundled_cloudflare_date() -> chrono::NaiveDate {
    include_str!("cloudflare.txt")
        .lines()
        .find_map(|l| l.strip_prefix("# as of "))
        .and_then(|d| d.trim().parse().ok())
        .expect("the bundled CloudFlare list carries its date")
}

/// CloudFlare's ranges from a downloaded file (one CIDR per line; `#` comments and blank lines
/// allowed); an error names the file and line of the first entry that is not a range.
pub fn read_cloudflare_ranges(path: &std::path::Path) -> Result<Vec<IpNet>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut nets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let net = entry
            .parse::<IpNet>()
            .map_err(|e| format!("{}:{}: `{entry}` is not a CIDR range ({e})", path.display(), n + 1))?;
        nets.push(net);
    }
    if nets.is_empty() {
        return Err(format!("{}: no ranges in it", path.display()));
    }
    Ok(nets)
}

/// True when `ip` is a CloudFlare edge address.
pub fn is_cloudflare(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    CLOUDFLARE.iter().any(|n| n.contains(&ip))
}

/// The peers whose forwarded headers are believed.
#[derive(Debug, Clone)]
pub struct Trusted {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl Trusted {
    /// From the configuration; invalid entries are skipped (the doctor's proxy.trusted check
    /// reports them).
    pub fn from_config(tp: &TrustedProxies) -> Self {
        let mut nets: Vec<IpNet> = tp.ranges.iter().filter_map(|r| super::parse_trusted(r).ok()).collect();
        if tp.cloudflare {
            let from_file = (!tp.cloudflare_ranges_file.is_empty())
                .then(|| read_cloudflare_ranges(std::path::Path::new(&tp.cloudflare_ranges_file)));
            match from_file {
                Some(Ok(file)) => nets.extend(file),
                Some(Err(e)) => {
                    // Serving on the bundled list beats not serving; proxy.cloudflare says why.
                    tracing::warn!(error = %e, "cannot use trusted_proxies.cloudflare_ranges_file; using the bundled list");
                    nets.extend(CLOUDFLARE.iter().copied());
                }
                None => nets.extend(CLOUDFLARE.iter().copied()),
            }
        }
        Self { nets, header: tp.header }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The header name forwarded addresses are read from.
    pub fn header_name(&self) -> &'static str {
        match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::CfConnectingIp => "cf-connecting-ip",
            ForwardedHeader::XRealIp => "x-real-ip",
        }
    }

    /// The client address of a request from `peer` carrying `header` (the configured
    /// forwarded header's value, if present).
    pub fn client_ip(&self, peer: IpAddr, header: Option<&str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = header.map(|h| h.split(',').filter_map(parse_hop).collect()).unwrap_or_default();
        match hops.iter().rev().find(|ip| !self.contains(**ip)) {
            Some(client) => *client,
            // Every hop is trusted: the left-most is as far as the chain can be followed.
            None => hops.first().copied().unwrap_or(peer),
        }
    }
}

/// One entry of a forwarded list: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`, `2001:db8::1`,
/// possibly quoted. Anything else (`unknown`, obfuscated identifiers) is no address.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let e = entry.trim().trim_matches('"');
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = e.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    e.strip_prefix('[').and_then(|r| r.split_once(']')).and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(ranges: &[&str], cloudflare: bool) -> Trusted {
        Trusted::from_config(&TrustedProxies {
            header: ForwardedHeader::XForwardedFor,
            ranges: ranges.iter().map(|s| s.to_string()).collect(),
            cloudflare,
            cloudflare_ranges_file: String::new(),
        })
    }

    #[test]
    fn a_ranges_file_is_read_and_its_first_bad_line_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cf.txt");
        std::fs::write(&file, "# ips-v4\n173.245.48.0/20\n\n2400:cb00::/32  # v6\n").unwrap();
        assert_eq!(read_cloudflare_ranges(&file).unwrap().len(), 2);
        std::fs::write(&file, "173.245.48.0/20\n<html>\n").unwrap();
        let err = read_cloudflare_ranges(&file).unwrap_err();
        assert!(err.ends_with(":2: `<html>` is not a CIDR range (invalid IP address syntax)"), "{err}");
        let tp = TrustedProxies {
            header: ForwardedHeader::CfConnectingIp,
            ranges: vec![],
            cloudflare: true,
            cloudflare_ranges_file: file.display().to_string(),
        };
        assert!(Trusted::from_config(&tp).contains(ip("173.245.48.1")), "a broken file falls back to the bundled list");
        std::fs::write(&file, "198.51.100.0/24\n").unwrap();
        let trusted = Trusted::from_config(&tp);
        assert!(trusted.contains(ip("198.51.100.7")) && !trusted.contains(ip("173.245.48.1")), "the file replaces it");
    }

    #[test]
    fn the_bundled_list_says_when_it_was_copied() {
        assert!(bundled_cloudflare_date() >= chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let t = trusted(&["10.0.0.0/8"], false);
        assert_eq!(t.client_ip(ip("203.0.113.7"), Some("1.1.1.1")), ip("203.0.113.7"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8"], false);
        // The client forged the left-most entry; the proxies appended the rest.
        let header = "6.6.6.6, 198.51.100.23, 10.0.0.5";
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some(header)), ip("198.51.100.23"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("10.0.0.9, 10.0.0.5")), ip("10.0.0.9"), "all trusted: left-most");
        assert_eq!(t.client_ip(ip("10.0.0.1"), None), ip("10.0.0.1"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let t = trusted(&["10.0.0.0/8", "2001:db8::/32"], false);
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("198.51.100.23:5678")), ip("198.51.100.23"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("[2001:db9::1]:80, 2001:db8::7")), ip("2001:db9::1"));
        assert_eq!(t.client_ip(ip("::ffff:10.0.0.1"), Some("\"198.51.100.9\"")), ip("198.51.100.9"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("unknown, 198.51.100.4")), ip("198.51.100.4"));
    }

    #[test]
    fn cloudflare_edges_are_trusted_only_when_enabled() {
        let edge = ip("172.64.1.1");
        assert!(is_cloudflare(edge) && is_cloudflare(ip("2606:4700::1111")));
        assert!(!is_cloudflare(ip("8.8.8.8")));
        assert_eq!(trusted(&[], false).client_ip(edge, Some("198.51.100.1")), edge);
        assert_eq!(trusted(&[], true).client_ip(edge, Some("198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(cloudflare_ranges().len(), 22);
    }
}
