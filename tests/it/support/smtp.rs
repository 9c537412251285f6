//! A minimal SMTP server for tests: greets, answers EHLO (advertising AUTH when it requires
//! it), checks AUTH PLAIN / LOGIN credentials, takes messages (MAIL, RCPT, DATA) and keeps them,
//! and accepts QUIT. Enough for a client to walk the resolve → connect → EHLO → AUTH phases and
//! deliver mail to something real on 127.0.0.1.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub struct FakeSmtp {
    pub port: u16,
    /// Every message accepted, as sent after DATA.
    pub messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the server; with `credentials`, AUTH is advertised and those are the only ones accepted.
pub async fn start(credentials: Option<(&str, &str)>) -> FakeSmtp {
    start_refusing(credentials, None).await
}

/// [`start`], answering `550 5.7.1 sender rejected` to `MAIL FROM` with the address `refused`
/// (a relay that does not accept this site's sender).
pub async fn start_refusing(credentials: Option<(&str, &str)>, refused: Option<&str>) -> FakeSmtp {
    let refused = refused.map(|r| format!("MAIL FROM:<{}>", r.to_ascii_uppercase()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = messages.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let credentials = credentials.clone();
            let kept = kept.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 fake.test ESMTP ready\r\n").await;
                let mut login_user: Option<String> = None;
                let mut awaiting: Option<&str> = None;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = &mut data {
                        if line == "." {
                            kept.lock().unwrap().push(std::mem::take(body));
                            data = None;
                            if write.write_all(b"250 2.0.0 queued\r\n").await.is_err() {
                                break;
                            }
                        } else {
                            body.push_str(line.strip_prefix('.').unwrap_or(&line));
                            body.push('\n');
                        }
                        continue;
                    }
                    let reply = match (awaiting.take(), line.to_ascii_uppercase()) {
                        (Some("user"), _) => {
                            login_user = STANDARD.decode(line.trim()).ok().and_then(|b| String::from_utf8(b).ok());
                            awaiting = Some("pass");
                            "334 UGFzc3dvcmQ6\r\n".to_string()
                        }
                        (Some("pass"), _) => {
                            let pass = STANDARD.decode(line.trim()).ok().and_then(|b| String::from_utf8(b).ok());
                            verdict(&credentials, login_user.as_deref(), pass.as_deref())
                        }
                        (_, upper) if upper.starts_with("EHLO") || upper.starts_with("HELO") => match &credentials {
                            Some(_) => "250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into(),
                            None => "250-fake.test\r\n250 8BITMIME\r\n".into(),
                        },
                        (_, upper) if upper.starts_with("AUTH PLAIN") => {
                            let payload = line.split_whitespace().nth(2).unwrap_or_default();
                            let decoded = STANDARD.decode(payload).unwrap_or_default();
                            let parts: Vec<String> =
                                decoded.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                            verdict(&credentials, parts.get(1).map(String::as_str), parts.get(2).map(String::as_str))
                        }
                        (_, upper) if upper.starts_with("AUTH LOGIN") => {
                            awaiting = Some("user");
                            "334 VXNlcm5hbWU6\r\n".into()
                        }
                        (_, upper) if upper.starts_with("QUIT") => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        (_, upper) if upper.starts_with("NOOP") || upper.starts_with("RSET") => "250 OK\r\n".into(),
                        (_, upper) if refused.as_ref().is_some_and(|r| upper.starts_with(r.as_str())) => {
                            "550 5.7.1 sender rejected\r\n".into()
                        }
                        (_, upper) if upper.starts_with("MAIL FROM:") || upper.starts_with("RCPT TO:") => {
                            "250 2.1.0 OK\r\n".into()
                        }
                        (_, upper) if upper.starts_with("DATA") => {
                            data = Some(String::new());
                            "354 end data with <CR><LF>.<CR><LF>\r\n".into()
                        }
                        _ => "502 command not implemented\r\n".into(),
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    FakeSmtp { port, messages, task }
}

fn verdict(credentials: &Option<(String, String)>, user: Option<&str>, pass: Option<&str>) -> String {
    match credentials {
        Some((u, p)) if Some(u.as_str()) == user && Some(p.as_str()) == pass => {
            "235 2.7.0 Authentication successful\r\n".into()
        }
        Some(_) => "535 5.7.8 Authentication credentials invalid\r\n".into(),
        None => "503 5.5.1 AUTH not available\r\n".into(),
    }
}
