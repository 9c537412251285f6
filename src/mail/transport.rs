//! Mail transports: `spool` (one RFC 5322 `.eml` file per message, for development and for
//! hand-off to another MTA) and `smtp` (lettre; STARTTLS, implicit TLS or plain, optional AUTH).

use std::path::PathBuf;

use lettre::message::header::ContentType;
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
                    builder = builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.clone()));
                }
                Ok(Transport::Smtp { mailer: builder.build(), from })
            }
        }
    }

    fn build(from: &str, msg: &OutboxMessage) -> Result<Message> {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::invalid(format!("{what}: {e}"));
        Message::builder()
            .from(from.parse().map_err(|e| bad("mail.from", &e))?)
            .to(msg.to_addr.parse().map_err(|e| bad("recipient", &e))?)
            .subject(&msg.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(msg.body.clone())
            .map_err(|e| bad("message", &e))
    }

    pub(super) async fn send(&self, msg: &OutboxMessage) -> Result<()> {
        match self {
            Transport::Spool { dir, from } => {
                let email = Self::build(from, msg)?;
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| Error::Unavailable(format!("spool directory {}: {e}", dir.display())))?;
                let path = dir.join(format!("{:08}.eml", msg.id));
                let tmp = dir.join(format!(".{:08}.eml.tmp", msg.id));
                tokio::fs::write(&tmp, email.formatted())
                    .await
                    .map_err(|e| Error::Unavailable(format!("write {}: {e}", tmp.display())))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| Error::Unavailable(format!("rename into {}: {e}", path.display())))
            }
            Transport::Smtp { mailer, from } => {
                let email = Self::build(from, msg)?;
                mailer.send(email).await.map(|_| ()).map_err(|e| Error::Unavailable(format!("SMTP: {e}")))
            }
        }
    }
}
