//! `tcp`: a port accepts connections (or, with `expect: closed`, does not).

use std::time::Instant;

use serde::Deserialize;

use super::unmet;
use crate::doctor::check::Outcome;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `HOST:PORT`
    address: String,
    #[serde(default)]
    expect: Expect,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Expect {
    #[default]
    Open,
    Closed,
}

impl Spec {
    pub async fn run(&self) -> Outcome {
        let started = Instant::now();
        let addrs: Vec<_> = match tokio::net::lookup_host(&self.address).await {
            Ok(a) => a.collect(),
            Err(e) => {
                return unmet(format!("cannot resolve {}: {e}", self.address)).with("address", &self.address);
            }
        };
        let result = tokio::net::TcpStream::connect(&addrs[..]).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let resolved: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let o = match (result, self.expect) {
            (Ok(_), Expect::Open) => Outcome::pass(format!("{} accepts connections ({ms:.1} ms)", self.address)),
            (Ok(_), Expect::Closed) => unmet(format!("{} accepts connections but should not", self.address)),
            (Err(e), Expect::Open) => unmet(format!("cannot connect to {}: {e}", self.address)),
            (Err(_), Expect::Closed) => Outcome::pass(format!("{} refuses connections, as expected", self.address)),
        };
        o.with("address", &self.address).with("resolved", resolved).with("connect_ms", (ms * 100.0).round() / 100.0)
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn validate(&self) -> Result<(), String> {
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
            _ => Err(format!("tcp address `{}` is not HOST:PORT", self.address)),
        }
    }

    fn probe<'a>(&'a self, _ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run())
    }
}
