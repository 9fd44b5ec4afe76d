//! Why the server could not start: the error every public function of the library returns.

use std::net::SocketAddr;

use crate::config::ConfigError;
use crate::tls::TlsError;

/// Why the server could not start (settings, binding, TLS, hooks, relay limits, signals,
/// metrics).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {cause}")]
    Listen {
        /// Which listener: `HTTP`, `TCP`, `the relay`.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        cause: std::io::Error,
    },
    /// A bound listener's address could not be read.
    #[error("cannot read the address of a listener: {0}")]
    LocalAddr(std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A room hook does not load.
    #[error("{0}")]
    Hook(String),
    /// The relay limits do not fit together.
    #[error(transparent)]
    Relay(#[from] tether_relay::ConfigError),
    /// A signal handler could not be installed (the binary only).
    #[error("cannot listen for {signal}: {cause}")]
    Signal {
        /// `SIGTERM` or `SIGINT`.
        signal: &'static str,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The cluster bus could not be set up.
    #[error("{0}")]
    Bus(String),
    /// The process-wide metrics recorder could not be installed.
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
    /// The `--data` directory cannot be used (unwritable, corrupt database), or what it holds
    /// does not fit the settings (more rooms than `--max-rooms`).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
