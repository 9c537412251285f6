//! Where a command takes a password from, best first: `--password-stdin` (a pipe: nothing in
//! shell history or `ps`), `$GATEHOUSE_PASSWORD`, a prompt when standard input is a terminal, and
//! `--password` (kept for compatibility; the value is visible to every user of the machine).

use std::io::{BufRead, IsTerminal};

use clap::Args;

use crate::error::{Error, Result};

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "GATEHOUSE_PASSWORD";

#[derive(Debug, Args, Default, Clone)]
pub struct PasswordArgs {
    /// The password as an argument. Avoid it: it lands in shell history and in `ps` for every
    /// user of the machine; use --password-stdin or GATEHOUSE_PASSWORD instead
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input: printf '%s' "$PW" | gatehouse …
    #[arg(long)]
    pub password_stdin: bool,
}

impl PasswordArgs {
    /// The password given, if any. With `prompt`, a terminal is asked for one (twice) when no
    /// other source gave it.
    pub fn read(&self, prompt: bool) -> Result<Option<String>> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::Usage(format!("--password-stdin: cannot read standard input: {e}")))?;
            let password = line.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                return Err(Error::Usage("--password-stdin: standard input held no password".into()));
            }
            return Ok(Some(password));
        }
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            return Ok(Some(p));
        }
        if prompt && std::io::stdin().is_terminal() {
            let first = rpassword::prompt_password("New password: ").map_err(|e| Error::Usage(e.to_string()))?;
            let again = rpassword::prompt_password("Repeat it: ").map_err(|e| Error::Usage(e.to_string()))?;
            if first != again {
                return Err(Error::Usage("the two passwords differ; nothing was changed".into()));
            }
            return Ok(Some(first));
        }
        Ok(None)
    }

    /// As [`PasswordArgs::read`] with a prompt, for commands that cannot go on without one.
    pub fn require(&self) -> Result<String> {
        self.read(true)?.ok_or_else(|| {
            Error::Usage(format!(
                "no password given: pipe it to --password-stdin, set {PASSWORD_ENV}, or run on a terminal to be asked"
            ))
        })
    }
}
