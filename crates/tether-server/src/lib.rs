//! The tether server as a library: the axum HTTP/WebSocket app, the rooms TCP listener, TLS,
//! config and metrics around the engines. The `tether` binary and the Python package's embedded
//! server (`tether.serve`) both start it through [`server`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), tether_server::Error> {
//! use tether_server::{config::ServeArgs, server::Server};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = ServeArgs::default().resolve()?; // 127.0.0.1:8700, :10010 and the relay on :5163
//! let server = Server::bind(config).await?;      // listening; ports 0 are resolved here
//! println!("http on {}", server.http_addr());
//! let stop = CancellationToken::new();
//! server.serve(stop.clone().cancelled_owned()).await?; // returns after `stop.cancel()` and a drain
//! # Ok(()) }
//! ```

pub mod bus;
pub mod config;
mod error;
pub mod guard;
pub mod hooks;
pub mod listen;
pub mod relay;
pub mod server;
pub mod socket;
pub mod sync;

mod demo_sync;
mod echo;
mod exec;
mod fanout;
mod outgoing;
mod rest;
mod rooms_state;
mod store;
mod tcp;
mod tls;
mod web;
mod ws;

/// For the `tether` binary only (its children are all exec processes): orphaned descendants of
/// exec processes come back to this process to be killed and reaped. Not for embedders, whose
/// own children's orphans would come back too.
pub use exec::become_subreaper;

pub use error::Error;
