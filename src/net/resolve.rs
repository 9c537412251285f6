//! Name resolution for diagnostics: the system resolver (getaddrinfo: /etc/hosts, then
//! /etc/resolv.conf — exactly what the service itself uses), or, when `doctor.dns_servers` is
//! set, those servers through hickory.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

pub enum Resolver {
    System,
    Servers(Box<TokioResolver>, Vec<String>),
}

impl Resolver {
    /// `servers` are `IP` or `IP:PORT` entries; empty means the system resolver.
    pub fn new(servers: &[String]) -> Result<Self, String> {
        if servers.is_empty() {
            return Ok(Resolver::System);
        }
        let mut configs = Vec::new();
        for s in servers {
            let (ip, port) = match s.parse::<SocketAddr>() {
                Ok(sa) => (sa.ip(), sa.port()),
                Err(_) => (
                    s.parse::<IpAddr>().map_err(|_| format!("doctor.dns_servers: `{s}` is not an IP or IP:PORT"))?,
                    53,
                ),
            };
            let mut ns = NameServerConfig::udp_and_tcp(ip);
            for c in &mut ns.connections {
                c.port = port;
            }
            configs.push(ns);
        }
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(configs),
            TokioRuntimeProvider::default(),
        )
        .build()
        .map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        Ok(Resolver::Servers(Box::new(resolver), servers.to_vec()))
    }

    /// Who answers: "system resolver" or the configured servers.
    pub fn describe(&self) -> String {
        match self {
            Resolver::System => "system resolver".into(),
            Resolver::Servers(_, s) => format!("DNS servers {}", s.join(", ")),
        }
    }

    /// The addresses of `host` (an IP literal resolves to itself).
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let addrs: Vec<IpAddr> = match self {
            Resolver::System => {
                tokio::net::lookup_host((host, 0)).await.map_err(|e| e.to_string())?.map(|sa| sa.ip()).collect()
            }
            Resolver::Servers(r, _) => r.lookup_ip(host).await.map_err(|e| e.to_string())?.iter().collect(),
        };
        if addrs.is_empty() { Err(format!("{host} has no addresses")) } else { Ok(addrs) }
    }
}
