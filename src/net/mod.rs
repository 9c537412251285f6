//! Network facts: trusted proxy entries, client IP resolution, phased HTTP probes, and the
//! sample of what requests really look like.

pub mod client_ip;
pub mod encounters;
pub mod http;
pub mod observations;
pub mod resolve;

use std::net::IpAddr;

pub use crate::config::parse_trusted;

/// True for addresses routed on the public Internet (not private, loopback, link-local,
/// documentation or unique-local space).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_networks() {
        assert_eq!(parse_trusted("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_trusted("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_trusted("::1").unwrap().to_string(), "::1/128");
        assert!(parse_trusted("10.0.0.1:8080").is_err());
        assert!(parse_trusted("proxy.internal").is_err());
    }

    #[test]
    fn public_and_private_space() {
        assert!(is_public("8.8.8.8".parse().unwrap()));
        assert!(!is_public("10.0.0.1".parse().unwrap()));
        assert!(!is_public("100.64.1.1".parse().unwrap()));
        assert!(is_public("2606:4700::1".parse().unwrap()));
        assert!(!is_public("fd00::1".parse().unwrap()));
    }
}
