//! `ibiki-server`: the example webhook server. `--help` lists the settings.

use std::process::ExitCode;

use clap::Parser;
use ibiki_examples::import::{Command, run_import};
use ibiki_examples::prune::run_prune;
use ibiki_examples::{Config, run};
use tracing_subscriber::EnvFilter;

/// Long-lived connections (live streams) leave glibc's heap fragmented, and
/// every request then pays for it: see BENCHMARKS.md §12.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    // RUST_LOG=debug shows every request.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match config.command {
        Some(Command::Import(args)) => return run_import(args).await,
        Some(Command::Prune(args)) => return run_prune(args).await,
        None => {}
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ibiki-server failed");
            ExitCode::FAILURE
        }
    }
}
