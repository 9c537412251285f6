//! `command`: a program exits with the expected code and prints the expected text. It is
//! killed when the check's deadline passes.

use serde::Deserialize;

use super::unmet;
use crate::doctor::check::Outcome;

/// How much of the program's output goes into the evidence.
const OUTPUT_EVIDENCE: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The program and its arguments; no shell is involved.
    run: Vec<String>,
    #[serde(default)]
    exit_code: i32,
    #[serde(default)]
    output_contains: Option<String>,
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(OUTPUT_EVIDENCE);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    &text[start..]
}

impl Spec {
    pub async fn run(&self) -> Outcome {
        let output = tokio::process::Command::new(&self.run[0])
            .args(&self.run[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        let output = match output {
            Ok(o) => o,
            Err(e) => {
                return unmet(format!("cannot run {}: {e}", self.run[0])).with("command", &self.run);
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code();
        let base = |o: Outcome| {
            o.with("command", &self.run)
                .with("exit_code", code)
                .with("stdout", tail(&stdout))
                .with("stderr", tail(&stderr))
        };
        if code != Some(self.exit_code) {
            let got = code.map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
            return base(unmet(format!("{} exited with {got}, expected {}", self.run[0], self.exit_code)));
        }
        if let Some(needle) = &self.output_contains
            && !stdout.contains(needle.as_str())
            && !stderr.contains(needle.as_str())
        {
            return base(unmet(format!("{} did not print the expected text", self.run[0])));
        }
        base(Outcome::pass(format!("{} exited with {} as expected", self.run[0], self.exit_code)))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "command"
    }

    fn validate(&self) -> Result<(), String> {
        match self.run.first() {
            Some(program) if !program.trim().is_empty() => Ok(()),
            _ => Err("command `run` needs the program to run, e.g. [\"systemctl\", \"is-active\", \"nginx\"]".into()),
        }
    }

    fn probe<'a>(&'a self, _ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run())
    }
}
