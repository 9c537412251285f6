//! Mail transports: `spool` (one RFC 5322 `.eml` file per message, for development and for
//! hand-off to another MTA) and `smtp` (lettre; STARTTLS, implicit TLS or plain, optional AUTH).

use std::path::PathBuf;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::OutboxMessage;
use crate::config::{Mail, MailTransport, SmtpTls};
use crate::error::{Error, Result};

#[derive(Clone)]
pub enum Transport {
    Spool { dir: PathBuf, from: String },
    Smtp { mailer: AsyncSmtpTransport<Tokio1Executor>, from: String },
}

impl Transport {
    pub fn from_config(mail: &Mail) -> Result<Self> {
        let from = mail.from.clone();
        match mail.transport {
            MailTransport::Spool => Ok(Transport::Spool { dir: PathBuf::from(&mail.spool_dir), from }),
            MailTransport::Smtp => {
                let smtp = &mail.smtp;
                if smtp.host.is_empty() {
                    return Err(Error::invalid("mail.transport is smtp but mail.smtp.host is empty"));
                }
                let tls_params = || {
                    TlsParameters::new(smtp.host.clone())
                        .map_err(|e| Error::invalid(format!("mail.smtp: TLS setup for {}: {e}", smtp.host)))
                };
                let tls = match smtp.tls {
                    SmtpTls::Starttls => Tls::Required(tls_params()?),
                    SmtpTls::Tls => Tls::Wrapper(tls_params()?),
                    SmtpTls::None => Tls::None,
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    .port(smtp.port)
                    .tls(tls)
                    .timeout(Some(std::time::Duration::from_secs(30)));
                if !smtp.username.is_empty() {
                    builder =
                        builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.expose().to_owned()));
                }
                Ok(Transport::Smtp { mailer: builder.build(), from })
            }
        }
    }

    /// The RFC 5322 message for an outbox row. `Date` is when it is sent; `Message-ID` derives
    /// from the row, so a retried message keeps its id and a receiver can tell it is the same one.
    fn build(from: &str, msg: &OutboxMessage) -> Result<Message> {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::invalid(format!("{what}: {e}"));
        let from: Mailbox = from.parse().map_err(|e| bad("mail.from", &e))?;
        let message_id = format!("<gatehouse.{}.{}@{}>", msg.id, msg.created_at, from.email.domain());
        Message::builder()
            .message_id(Some(message_id))
            .from(from)
            .to(msg.to_addr.parse().map_err(|e| bad("recipient", &e))?)
            .subject(&msg.subject)
            // A MIME single part: `MIME-Version: 1.0` and `text/plain; charset=utf-8`.
            .singlepart(text_part(&msg.body))
            .map_err(|e| bad("message", &e))
    }

    pub(super) async fn send(&self, msg: &OutboxMessage) -> std::result::Result<(), Undelivered> {
        match self {
            Transport::Spool { dir, from } => {
                let email = Self::build(from, msg).map_err(Undelivered::permanent)?;
                let transient = |e: String| Undelivered { permanent: false, reason: e };
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| transient(format!("spool directory {}: {e}", dir.display())))?;
                let path = dir.join(format!("{:08}.eml", msg.id));
                let tmp = dir.join(format!(".{:08}.eml.tmp", msg.id));
                tokio::fs::write(&tmp, email.formatted())
                    .await
                    .map_err(|e| transient(format!("write {}: {e}", tmp.display())))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| transient(format!("rename into {}: {e}", path.display())))
            }
            Transport::Smtp { mailer, from } => {
                let email = Self::build(from, msg).map_err(Undelivered::permanent)?;
                mailer.send(email).await.map(|_| ()).map_err(|e| Undelivered {
                    // A 5xx answer (sender or recipient rejected, policy) will be the same next time.
                    permanent: e.is_permanent(),
                    reason: format!("SMTP: {e}"),
                })
            }
        }
    }
}

/// Why a message was not delivered, and whether trying again could help: a relay's 5xx answer
/// or a message that cannot be built will be refused the same way every time.
#[derive(Debug)]
pub struct Undelivered {
    pub permanent: bool,
    pub reason: String,
}

impl Undelivered {
    fn permanent(e: Error) -> Self {
        Undelivered { permanent: true, reason: e.to_string() }
    }
}

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The text part. ASCII text whose lines fit SMTP's 998 octets is sent as `7bit` (RFC 2045
/// allows such lines), so a link stays whole on its line even in the raw message: lettre alone
/// would pick quoted-printable for any line over 76 characters, breaking links with soft line
/// breaks. Other text gets lettre's choice (quoted-printable or base64), which clients decode whole.
fn text_part(body: &str) -> SinglePart {
    let builder = SinglePart::builder().header(ContentType::TEXT_PLAIN);
    let fits_7bit = body.is_ascii() && !body.contains('\0') && body.lines().all(|l| l.len() <= 998);
    if fits_7bit {
        // Checked above: what lettre asks of a pre-encoded 7bit body (ASCII, no NUL, short lines).
        let crlf: String = body.lines().flat_map(|l| [l, "\r\n"]).collect();
        builder.body(Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit))
    } else {
        builder.body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(body: &str) -> OutboxMessage {
        OutboxMessage {
            id: 42,
            to_addr: "ann@example.com".into(),
            subject: "Reset your password".into(),
            body: body.into(),
            status: "queued".into(),
            attempts: 0,
            created_at: 1_764_587_040,
            next_attempt_at: 0,
            sent_at: None,
            last_error: None,
        }
    }

    /// The headers mail filters look for, and a link a reader can click whatever the encoding.
    #[test]
    fn messages_carry_their_headers_and_whole_links() {
        let link = "https://billing.example.com/portal/password/reset/pr_Q2hlY2sgdGhhdCB0aGUgbGluayBzdGF5cyB3aG9sZQ";
        for body in [
            format!("Hello,\n\nopen this link:\n\n{link}\n"),
            format!("Hello Zoë — open this link (it is valid for 60 minutes, once):\n\n{link}\n"),
        ] {
            let raw = Transport::build("gatehouse <noreply@example.com>", &outbox(&body)).unwrap().formatted();
            let text = String::from_utf8_lossy(&raw);
            let head = &text[..text.find("\r\n\r\n").unwrap()];
            for header in ["Message-ID: <gatehouse.42.1764587040@example.com>", "MIME-Version: 1.0", "Date: "] {
                assert!(head.contains(header), "{header} missing:\n{head}");
            }
            let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let decoded = parsed.body_text(0).unwrap();
            assert!(decoded.split_whitespace().any(|w| w == link), "the link is whole once decoded:\n{decoded}");
            if body.is_ascii() {
                assert!(text.lines().any(|l| l == link), "plain ASCII keeps the link on one line:\n{text}");
            }
        }
    }
}
