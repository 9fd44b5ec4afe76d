//! The `tether` binary: parses flags and wires the crates together.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tether_server::{config, server};

fn main() -> ExitCode {
    // Before the settings: the default per-address connection cap follows the limit.
    tether_server::listen::raise_fd_limit();
    let args = config::Cli::parse().into_serve_args();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::from(2);
        }
    };
    // Every child of this process is an exec process: make their orphaned descendants come
    // back here, where they are killed with their connection and reaped (docs/protocol/exec.md).
    if let Err(e) = tether_server::become_subreaper() {
        tracing::warn!(
            "exec: not a child subreaper ({e}); escaped descendants are found by their mark only"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(server::run(config));
    // Do not wait for blocked tasks (e.g. a client that never reads) past the drain.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: {e:#}");
            ExitCode::FAILURE
        }
    }
}
