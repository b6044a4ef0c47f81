//! An `ibiki-server` process for the tests that need several, or need to
//! kill one: started with `--listen 127.0.0.1:0` and the given flags and
//! environment, its address read from its log, its stderr drained so it
//! never blocks. Shared by the test binaries that `#[path]` it in.
// Each test binary uses part of it.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// A running `ibiki-server`, killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

impl ServerProcess {
    /// Starts the binary with `args` and `env` (none of the caller's own
    /// `IBIKI_*` settings or `DATABASE_URL` leak in) and waits until it
    /// listens.
    pub(crate) async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ibiki-server"));
        for name in [
            "DATABASE_URL",
            "IBIKI_DEFAULT_REGION",
            "IBIKI_BARE_DIGITS",
            "IBIKI_WEBHOOK_SECRET",
            "IBIKI_LISTEN",
        ] {
            command.env_remove(name);
        }
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn ibiki-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut found = Some(found);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some((_, address)) = line.split_once("listening address=")
                    && let Some(found) = found.take()
                {
                    let _ = found.send(address.trim().to_owned());
                }
            }
        });
        let address = timeout(Duration::from_secs(60), address)
            .await
            .expect("listening within 60 s")
            .expect("ibiki-server exited before listening");
        Self {
            child,
            base: format!("http://{address}"),
        }
    }

    /// SIGKILL: no shutdown, requests in flight are cut.
    pub(crate) async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let status = self.child.wait().await.expect("wait");
        assert!(!status.success(), "killed: {status}");
    }
}
