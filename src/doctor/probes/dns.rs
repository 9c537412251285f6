//! `dns`: a name resolves, to the expected addresses when given.

use std::net::IpAddr;

use serde::Deserialize;

use super::unmet;
use crate::doctor::check::Outcome;
use crate::doctor::context::Context;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    name: String,
    /// Addresses that must all be among the answers.
    #[serde(default)]
    expect: Vec<String>,
}

impl Spec {
    pub async fn run(&self, ctx: &Context) -> Outcome {
        let resolver = match ctx.resolver().await {
            Ok(r) => r,
            Err(e) => return Outcome::error(e),
        };
        let answers = match resolver.lookup(&self.name).await {
            Ok(a) => a,
            Err(e) => {
                return unmet(format!("{} does not resolve: {e}", self.name)).with("resolver", resolver.describe());
            }
        };
        let shown: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
        let missing: Vec<&String> =
            self.expect.iter().filter(|want| !answers.iter().any(|a| Some(*a) == want.parse().ok())).collect();
        let base =
            |o: Outcome| o.with("name", &self.name).with("addresses", &shown).with("resolver", resolver.describe());
        if !missing.is_empty() {
            return base(unmet(format!("{} resolves to {}, missing {:?}", self.name, shown.join(", "), missing)));
        }
        base(Outcome::pass(format!("{} resolves to {}", self.name, shown.join(", "))))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("dns name is empty".into());
        }
        for ip in &self.expect {
            ip.parse::<IpAddr>().map_err(|_| format!("dns expect `{ip}` is not an IP address"))?;
        }
        Ok(())
    }

    fn probe<'a>(&'a self, ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run(ctx))
    }
}
