//! `gatehouse serve` as a real process: a node of a fleet, possibly under another clock
//! (libfaketime) — what an in-process server cannot be.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `gatehouse serve`; killed when dropped.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
}

impl Node {
    /// Starts `gatehouse --config CONFIG serve` on `listen` (`127.0.0.1:0` for any port) with
    /// `env` added, and waits until it listens.
    pub fn serve(config: &Path, listen: &str, env: impl IntoIterator<Item = (&'static str, String)>) -> Node {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("gatehouse"));
        cmd.args(["--config", config.to_str().unwrap(), "serve", "--listen", listen])
            .env("GATEHOUSE_LOG", "warn")
            .stderr(Stdio::inherit());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GATEHOUSE_") && k != "GATEHOUSE_LOG") {
            cmd.env_remove(key);
        }
        cmd.envs(env);
        Node::start(cmd)
    }

    /// Spawns `serve` as `cmd` describes it and waits for the address it prints.
    pub fn start(mut cmd: Command) -> Node {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("serve printed: {line:?}"))
            .trim()
            .parse()
            .unwrap();
        Node { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// libfaketime (Debian's `faketime`), preloaded into a process to move its clock: `None` where
/// it is not installed — except where the tools are required (CI), where that fails the test.
pub fn faketime_library() -> Option<PathBuf> {
    let found =
        ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !super::tools_required(),
            "libfaketime is required here (CI or GATEHOUSE_TEST_REQUIRE_TOOLS) but is not installed: apt-get install faketime"
        );
        eprintln!("note: libfaketime is not installed (apt-get install faketime); test not run");
    }
    found
}

/// The environment that runs a process with its clock `offset` from real time (`+120s`,
/// `-3d`): the wall clock only, so its timers still tick at the real rate.
pub fn faketime_env(library: &Path, offset: &str) -> [(&'static str, String); 3] {
    [
        ("LD_PRELOAD", library.display().to_string()),
        ("FAKETIME", offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
    ]
}
