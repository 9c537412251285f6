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
    /// Fail when the certificate expires in fewer days.
    #[serde(default)]
    min_days_left: Option<i64>,
    /// A PEM file of extra trusted CA certificates (an internal CA).
    #[serde(default)]
    ca_file: Option<String>,
}

impl Spec {
    fn url(&self) -> Result<url::Url, String> {
        url::Url::parse(&format!("https://{}/", self.address))
            .map_err(|_| format!("tls address `{}` is not HOST:PORT", self.address))
    }

    pub async fn run(&self, ctx: &Context) -> Outcome {
        let (url, resolver) = match (self.url(), ctx.resolver().await) {
            (Ok(u), Ok(r)) => (u, r),
            (Err(e), _) | (_, Err(e)) => return Outcome::error(e),
        };
        let ca_file = self.ca_file.as_deref().map(std::path::Path::new);
        let trace = http::handshake(&url, resolver, ctx.network_budget(), ca_file).await;
        let base = |o: Outcome| {
            o.with("address", &self.address)
                .with("phases", &trace.phases)
                .with("days_left", trace.tls_days_left)
                .with("not_after", &trace.tls_not_after)
        };
        if let Some(failure) = trace.failure() {
            return base(unmet(format!("{}: {failure}", self.address)));
        }
        if let (Some(min), Some(days)) = (self.min_days_left, trace.tls_days_left)
            && days < min
        {
            return base(unmet(format!(
                "the certificate of {} expires in {days} day(s), fewer than {min}",
                self.address
            )));
        }
        base(Outcome::pass(format!(
            "{} completed a TLS handshake; the certificate expires in {} day(s)",
            self.address,
            trace.tls_days_left.map(|d| d.to_string()).unwrap_or_else(|| "?".into())
        )))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn validate(&self) -> Result<(), String> {
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => self.url().map(|_| ()),
            _ => Err(format!("tls address `{}` is not HOST:PORT", self.address)),
        }
    }

    fn probe<'a>(&'a self, ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run(ctx))
    }
}
