//! `tls`: a TLS server completes a handshake with a certificate valid for its name.

use serde::Deserialize;

use super::unmet;
use crate::doctor::check::Outcome;
use crate::doctor::context::Context;
use crate::net::http;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `HOST:PORT`
    address: String,
}

impl Spec {
    fn url(&self) -> Result<url::Url, String> {
        url::Url::parse(&format!("https://{}/", self.address))
            .map_err(|_| format!("tls address `{}` is not HOST:PORT", self.address))
    }

    pub fn validate(&self) -> Result<(), String> {
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => self.url().map(|_| ()),
            _ => Err(format!("tls address `{}` is not HOST:PORT", self.address)),
        }
    }

    pub async fn run(&self, ctx: &Context) -> Outcome {
        let (url, resolver) = match (self.url(), ctx.resolver().await) {
            (Ok(u), Ok(r)) => (u, r),
            (Err(e), _) | (_, Err(e)) => return Outcome::error(e),
        };
        let trace = http::handshake(&url, resolver, ctx.network_budget()).await;
        let base = |o: Outcome| o.with("address", &self.address).with("phases", &trace.phases);
        match trace.failure() {
            Some(failure) => base(unmet(format!("{}: {failure}", self.address))),
            None => base(Outcome::pass(format!(
                "{} completed a TLS handshake ({})",
                self.address,
                trace.phases.last().map(|p| p.detail.as_str()).unwrap_or_default()
            ))),
        }
    }
}
