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
    /// The `--metrics-listen` address's `http://…`, when given.
    pub(crate) metrics_base: Option<String>,
}

/// The log line of each address the server serves, and what it serves.
const ADDRESSES: [&str; 2] = [
    "listening address=",
    "serving /metrics without the admin token address=",
];

impl ServerProcess {
    /// Starts the binary with `args` and `env` (none of the caller's own
    /// `IBIKI_*` settings or `DATABASE_URL` leak in) and waits until it
    /// listens.
    pub(crate) async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(None, args, env).await
    }

    /// [`start`](Self::start), with the process's open-file limit (soft and
    /// hard) set to `limit` by the shell that execs it.
    pub(crate) async fn start_with_open_files(
        limit: u64,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::launch(Some(limit), args, env).await
    }

    async fn launch(open_files: Option<u64>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let binary = env!("CARGO_BIN_EXE_ibiki-server");
        let mut command = match open_files {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell.args([
                    "-c",
                    r#"ulimit -n "$0" && exec "$@""#,
                    &limit.to_string(),
                    binary,
                ]);
                shell
            }
            None => Command::new(binary),
        };
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
        let wanted = if args.contains(&"--metrics-listen") {
            2
        } else {
            1
        };
        let (found, addresses) = oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut found = Some(found);
            let mut seen: [Option<String>; 2] = [None, None];
            while let Ok(Some(line)) = lines.next_line().await {
                for (slot, marker) in seen.iter_mut().zip(ADDRESSES) {
                    if let Some((_, address)) = line.split_once(marker) {
                        *slot = Some(address.trim().to_owned());
                    }
                }
                if seen.iter().flatten().count() == wanted
                    && let Some(found) = found.take()
                {
                    let _ = found.send(seen.clone());
                }
            }
        });
        let [address, metrics] = timeout(Duration::from_secs(60), addresses)
            .await
            .expect("listening within 60 s")
            .expect("ibiki-server exited before listening");
        Self {
            child,
            base: format!("http://{}", address.expect("the API's address")),
            metrics_base: metrics.map(|address| format!("http://{address}")),
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGKILL: no shutdown, requests in flight are cut.
    pub(crate) async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let status = self.child.wait().await.expect("wait");
        assert!(!status.success(), "killed: {status}");
    }
}
