//! A sans-IO relay for the sidekick protocol (sidekick-py 0.0.7 and its UI): sessions of peers
//! that announce themselves as `hero` (the Python script) or `sidekick` (a UI page), frames
//! forwarded byte for byte by role, presence replayed to newcomers, offline announces
//! synthesized for sockets that vanish, and a compacted per-session replay log so that a UI
//! that opens late or reloads shows the page the script drew. The contract is
//! `docs/protocol/ui.md`; the adapter that owns the sockets is in `tether-server`.
//!
//! ```
//! use tether_relay::{ConnId, Effect, Relay};
//!
//! let mut relay = Relay::default();
//! relay.handle_connect(ConnId(1), "");              // a socket on `?session=` (none here)
//! let hello = r#"{"id":0,"component":"system","type":"announce","payload":{"peerId":"hero-py-1","role":"hero","status":"online","version":"0.0.7","timestamp":1}}"#;
//! relay.handle_text(ConnId(1), hello, 1_700_000_000_000); // now, in epoch milliseconds
//! relay.handle_close(ConnId(1), 1_700_000_000_500);
//! while let Some(effect) = relay.poll_output() {
//!     match effect {
//!         Effect::Send { conn, frame } => println!("write {frame} to {conn}"), // then handle_sent
//!         Effect::Close { conn, code, reason } => println!("close {conn}: {code} {reason}"),
//!     }
//! }
//! ```
//!
//! An adapter's loop: a socket opens → [`Relay::handle_connect`]; a frame arrives →
//! [`Relay::handle_text`] / [`Relay::handle_binary`]; frames were written →
//! [`Relay::handle_sent`] (this is how a slow reader is detected); the socket ends →
//! [`Relay::handle_close`]; after each, drain [`Relay::poll_output`]. The engine never blocks,
//! owns no socket, clock or task: the time comes in as an argument.

mod envelope;
mod frame;
pub mod log;
mod relay;

pub use envelope::Role;
pub use frame::Frame;
pub use log::Log;
pub use relay::{Config, ConfigError, ConnId, Effect, Relay, Stats, close};
