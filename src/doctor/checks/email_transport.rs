//! `email.transport`: can gatehouse hand mail to its transport? For the spool, the directory;
//! for SMTP, each phase of a session: resolve, connect, EHLO, STARTTLS, AUTH.

use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;
use serde::Serialize;

use crate::config::{MailTransport, Smtp, SmtpTls};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;

pub struct Transport;

static META: Meta = Meta {
    id: "email.transport",
    title: "Mail transport usable",
    tags: &["email"],
    symptom: "General emails (sign-up, password reset, invites) are never received.",
    cause: "The mail transport is misconfigured: the spool directory is not writable, or the SMTP server's name, \
            port, TLS mode or credentials are wrong, or a firewall blocks it.",
    next_steps: "Fix the phase named in the message in the mail: section of gatehouse.yaml (host, port, tls, \
                 username, password), then run `gatehouse doctor --only email.transport` again.",
    config: &["mail"],
    explains: &["email.queue"],
    ..Meta::BASE
};

/// The phases of an SMTP session, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum SmtpPhase {
    Dns,
    Connect,
    Ehlo,
    Starttls,
    Auth,
    /// `MAIL FROM:<mail.from>`: a relay that refuses the sender refuses every message.
    MailFrom,
    /// `RCPT TO:<mail.from>`, then `RSET`: no message is sent.
    RcptTo,
    Quit,
}

impl std::fmt::Display for SmtpPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Ehlo => "ehlo",
            Self::Starttls => "starttls",
            Self::Auth => "auth",
            Self::MailFrom => "mail_from",
            Self::RcptTo => "rcpt_to",
            Self::Quit => "quit",
        })
    }
}

#[derive(Debug, Serialize)]
struct Step {
    phase: SmtpPhase,
    ok: bool,
    ms: f64,
    detail: String,
}

struct Session {
    steps: Vec<Step>,
}

impl Session {
    /// Runs one phase, recording it; `None` when it failed.
    async fn step<T>(
        &mut self,
        phase: SmtpPhase,
        f: impl std::future::Future<Output = Result<(T, String), String>>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = f.await;
        let ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
        match result {
            Ok((value, detail)) => {
                self.steps.push(Step { phase, ok: true, ms, detail });
                Some(value)
            }
            Err(detail) => {
                self.steps.push(Step { phase, ok: false, ms, detail });
                None
            }
        }
    }
}

/// The address of `mail.from` (`Name <addr>` or a bare address).
fn from_address(from: &str) -> Result<lettre::Address, String> {
    from.parse::<lettre::message::Mailbox>()
        .map(|m| m.email)
        .map_err(|e| format!("mail.from {from:?} is not an address: {e}"))
}

async fn check_spool(dir: &str) -> Outcome {
    let path = std::path::Path::new(dir);
    let probe = path.join(format!(".gatehouse-doctor-{}", std::process::id()));
    let base = |o: Outcome| o.with("transport", "spool").with("spool_dir", dir);
    if !path.exists() {
        let parent = path.ancestors().skip(1).find(|a| a.exists()).map(|a| a.display().to_string());
        return base(Outcome::pass(format!("the spool directory {dir} will be created on first use")))
            .with("nearest_existing", parent);
    }
    match tokio::fs::write(&probe, b"probe").await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(&probe).await;
            base(Outcome::pass(format!("messages are spooled to {dir}, which is writable")))
        }
        Err(e) => base(Outcome::fail(format!("the spool directory {dir} is not writable: {e}"))),
    }
}

impl Check for Transport {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let mail = &ctx.config().mail;
            if mail.transport == MailTransport::Spool {
                return check_spool(&mail.spool_dir).await;
            }
            let smtp = &mail.smtp;
            if smtp.host.trim().is_empty() {
                return Outcome::fail("mail.transport is smtp but mail.smtp.host is empty").with("transport", "smtp");
            }
            let resolver = match ctx.resolver().await {
                Ok(r) => r,
                Err(e) => return Outcome::error(e),
            };
            let budget = ctx.network_budget();
            let session_started = Instant::now();
            let mut s = Session { steps: Vec::new() };
            let run = async {
                let host = smtp.host.trim();
                let addrs = s
                    .step(SmtpPhase::Dns, async {
                        let a = resolver.lookup(host).await?;
                        let shown = a.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ");
                        Ok((a, format!("{host} → {shown}")))
                    })
                    .await?;
                let ip = s
                    .step(SmtpPhase::Connect, async {
                        let mut last = String::new();
                        for ip in &addrs {
                            match tokio::net::TcpStream::connect((*ip, smtp.port)).await {
                                Ok(_) => return Ok((*ip, format!("{ip}:{} accepts connections", smtp.port))),
                                Err(e) => last = format!("{ip}:{}: {e}", smtp.port),
                            }
                        }
                        Err(last)
                    })
                    .await?;
                let tls = || TlsParameters::new(host.to_string()).map_err(|e| format!("TLS set-up: {e}"));
                let hello = ClientId::default();
                let implicit = if smtp.tls == SmtpTls::Tls { Some(tls()) } else { None }.transpose();
                let mut conn = s
                    .step(SmtpPhase::Ehlo, async {
                        let conn =
                            AsyncSmtpConnection::connect_tokio1((ip, smtp.port), Some(budget), &hello, implicit?, None)
                                .await
                                .map_err(|e| e.to_string())?;
                        let info = conn.server_info().to_string();
                        Ok((conn, info))
                    })
                    .await?;
                if smtp.tls == SmtpTls::Starttls {
                    s.step(SmtpPhase::Starttls, async {
                        if !conn.can_starttls() {
                            return Err("the server does not offer STARTTLS (set tls: none or tls: tls)".to_string());
                        }
                        conn.starttls(tls()?, &hello).await.map_err(|e| e.to_string())?;
                        Ok(((), "upgraded to TLS".to_string()))
                    })
                    .await?;
                }
                if !smtp.username.is_empty() {
                    s.step(SmtpPhase::Auth, async {
                        let credentials = Credentials::new(smtp.username.clone(), smtp.password.expose().to_owned());
                        let reply = conn
                            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                            .await
                            .map_err(|e| e.to_string())?;
                        Ok(((), format!("authenticated as {} ({})", smtp.username, reply.code())))
                    })
                    .await?;
                }
                // The envelope, as delivery will send it, stopped before DATA: a relay that
                // refuses this sender (`550 sender rejected`) refuses every message.
                let sender = s
                    .step(SmtpPhase::MailFrom, async {
                        let sender = from_address(&mail.from)?;
                        let reply = conn
                            .command(Mail::new(Some(sender.clone()), vec![]))
                            .await
                            .map_err(|e| format!("MAIL FROM:<{sender}>: {e}"))?;
                        Ok((sender.clone(), format!("MAIL FROM:<{sender}> → {}", reply.code())))
                    })
                    .await?;
                // postmaster@ the sender's domain: every mail domain must accept it (RFC 5321
                // §4.5.1), where a no-reply sender is often no mailbox at all.
                s.step(SmtpPhase::RcptTo, async {
                    let to: lettre::Address = format!("postmaster@{}", sender.domain())
                        .parse()
                        .map_err(|e| format!("postmaster@{}: {e}", sender.domain()))?;
                    let reply = conn
                        .command(Rcpt::new(to.clone(), vec![]))
                        .await
                        .map_err(|e| format!("RCPT TO:<{to}>: {e}"))?;
                    let _ = conn.command(Rset).await;
                    Ok(((), format!("RCPT TO:<{to}> → {} (then RSET: nothing sent)", reply.code())))
                })
                .await?;
                let _ = conn.quit().await;
                Some(())
            };
            let timed_out = tokio::time::timeout(budget, run).await.is_err();
            let total_ms = session_started.elapsed().as_millis() as u64;
            judge(smtp, &s.steps, timed_out.then_some(budget))
                .with("transport", "smtp")
                .with("host", &smtp.host)
                .with("port", smtp.port)
                .with("tls", smtp.tls)
                .with("auth", !smtp.username.is_empty())
                .with("phases", &s.steps)
                .with("total_ms", total_ms)
        })
    }
}

/// The verdict on an SMTP session that went through `steps`, or stalled after them when the
/// `budget` ran out: the phase it stopped in, and what that usually means.
fn judge(smtp: &Smtp, steps: &[Step], stalled: Option<Duration>) -> Outcome {
    if let Some(budget) = stalled {
        let mut planned = vec![SmtpPhase::Dns, SmtpPhase::Connect, SmtpPhase::Ehlo];
        planned.extend((smtp.tls == SmtpTls::Starttls).then_some(SmtpPhase::Starttls));
        planned.extend((!smtp.username.is_empty()).then_some(SmtpPhase::Auth));
        planned.extend([SmtpPhase::MailFrom, SmtpPhase::RcptTo]);
        let next = planned.get(steps.len()).copied().unwrap_or(SmtpPhase::Quit);
        let likely = match next {
            SmtpPhase::Dns => "the resolver does not answer",
            SmtpPhase::Connect => "a firewall dropping packets to the SMTP port?",
            SmtpPhase::Ehlo
            | SmtpPhase::Starttls
            | SmtpPhase::Auth
            | SmtpPhase::MailFrom
            | SmtpPhase::RcptTo
            | SmtpPhase::Quit => "the server accepted the connection but stalls (a wrong port for the TLS mode?)",
        };
        return Outcome::fail(format!(
            "the SMTP server did not answer in the {next} phase within {} ms — {likely}",
            budget.as_millis()
        ))
        .with("failed_phase", next);
    }
    match steps.iter().find(|step| !step.ok) {
        // The relay took the sender; a recipient it refuses is a question about that address.
        Some(step) if step.phase == SmtpPhase::RcptTo => {
            Outcome::warn(format!("the relay accepts the sender but refused a recipient: {}", step.detail))
                .with("failed_phase", step.phase)
        }
        Some(step) => {
            Outcome::fail(format!("SMTP {} phase failed: {}", step.phase, step.detail)).with("failed_phase", step.phase)
        }
        None => Outcome::pass(format!(
            "{}:{} accepts mail ({})",
            smtp.host,
            smtp.port,
            steps.iter().map(|st| st.phase.to_string()).collect::<Vec<_>>().join(" → ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::SmtpPhase::{Auth, Connect, Dns, Ehlo, Starttls};
    use super::*;
    use crate::doctor::model::Status;

    fn step(phase: SmtpPhase, ok: bool, detail: &str) -> Step {
        Step { phase, ok, ms: 1.0, detail: detail.into() }
    }

    /// `phases` each passed.
    fn through(phases: &[SmtpPhase]) -> Vec<Step> {
        phases.iter().map(|&phase| step(phase, true, "")).collect()
    }

    fn server(tls: SmtpTls, username: &str) -> Smtp {
        Smtp { host: "mail.example.com".into(), port: 587, tls, username: username.into(), ..Smtp::default() }
    }

    #[test]
    fn every_phase_through_passes_and_lists_them() {
        let outcome = judge(&server(SmtpTls::Starttls, ""), &through(&[Dns, Connect, Ehlo, Starttls]), None);
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(outcome.message, "mail.example.com:587 accepts mail (dns → connect → ehlo → starttls)");
    }

    #[test]
    fn the_first_failed_phase_is_named_with_the_servers_words() {
        let mut steps = through(&[Dns, Connect, Ehlo]);
        steps.push(step(Auth, false, "535 bad credentials"));
        let outcome = judge(&server(SmtpTls::None, "mailer"), &steps, None);
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.message, "SMTP auth phase failed: 535 bad credentials");
        assert_eq!(outcome.evidence["failed_phase"], "auth");
    }

    #[test]
    fn a_refused_recipient_is_a_question_and_a_refused_sender_a_failure() {
        let mut steps = through(&[Dns, Connect, Ehlo, SmtpPhase::MailFrom]);
        steps.push(step(
            SmtpPhase::RcptTo,
            false,
            "RCPT TO:<postmaster@shop.test>: permanent error (550): no such user",
        ));
        assert_eq!(judge(&server(SmtpTls::None, ""), &steps, None).status, Status::Warn);
        let mut steps = through(&[Dns, Connect, Ehlo]);
        steps.push(step(
            SmtpPhase::MailFrom,
            false,
            "MAIL FROM:<noreply@shop.test>: permanent error (550): sender rejected",
        ));
        assert_eq!(judge(&server(SmtpTls::None, ""), &steps, None).status, Status::Fail);
    }

    #[test]
    fn a_stall_names_the_phase_it_never_finished() {
        let budget = Duration::from_secs(5);
        let connected = through(&[Dns, Connect]);
        let outcome = judge(&server(SmtpTls::Tls, ""), &connected, Some(budget));
        assert_eq!(outcome.evidence["failed_phase"], "ehlo");
        assert!(outcome.message.contains("a wrong port for the TLS mode?"), "{}", outcome.message);
        let dropped = judge(&server(SmtpTls::None, ""), &connected[..1], Some(budget));
        assert_eq!(
            dropped.message,
            "the SMTP server did not answer in the connect phase within 5000 ms — a firewall dropping packets to the SMTP port?"
        );
        let authenticating = through(&[Dns, Connect, Ehlo, Starttls]);
        let outcome = judge(&server(SmtpTls::Starttls, "mailer"), &authenticating, Some(budget));
        assert_eq!(outcome.evidence["failed_phase"], "auth");
    }
}
