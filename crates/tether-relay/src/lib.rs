//! A sans-IO relay for the sidekick protocol (sidekick-py 0.0.7 and its UI): sessions of peers
//! that announce themselves as `hero` (the Python script) or `sidekick` (a UI page), frames
//! forwarded byte for byte by role, presence replayed to newcomers, offline announces
//! synthesized for sockets that vanish, and a compacted per-session replay log so that a UI
//! that opens late or reloads shows the page the script drew. The contract is
//! `docs/protocol/ui.md`; the adapter that owns the sockets is in `tether-server`.
//!
//! ```
//! use tether_relay::{ConnId, Output, Relay};
//!
//! let mut relay = Relay::default();
//! relay.handle_connect(ConnId(1), "");              // a socket on `?session=` (none here)
//! let hello = r#"{"id":0,"component":"system","type":"announce","payload":{"peerId":"hero-py-1","role":"hero","status":"online","version":"0.0.7","timestamp":1}}"#;
//! relay.handle_text(ConnId(1), hello, 1_700_000_000_000); // now, in epoch milliseconds
//! relay.handle_close(ConnId(1), 1_700_000_000_500);
//! while let Some(output) = relay.poll_output() {
//!     match output {
//!         Output::Send { conn, frame } => println!("write {frame} to {conn}"), // then handle_sent
//!         Output::Close { conn, code, reason } => println!("close {conn}: {code} {reason}"),
//!     }
//! }
//! ```
//!
//! # Driving the [`Relay`]
//!
//! It follows the engine contract of `docs/engines.md`:
//!
//! - inputs: [`Relay::handle_connect`] (a socket opened, with its `?session=`),
//!   [`Relay::handle_text`] / [`Relay::handle_binary`] (a frame arrived),
//!   [`Relay::handle_sent`] (frames were written: this is how a slow reader is detected),
//!   [`Relay::handle_close`] (the socket ended), [`Relay::handle_shutdown`];
//! - outputs: [`Output`] (a frame to send, a connection to close), drained with
//!   [`Relay::poll_output`] after every input;
//! - no timers. The time comes in as an argument, as wall-clock epoch milliseconds rather than
//!   an `Instant`, because the relay writes it into the frames it synthesizes (the `timestamp`
//!   of an offline announce);
//! - [`Relay::stats`] and the other getters are read-only queries (metrics, `/ui` listings).
//!
//! The engine never blocks and owns no socket, clock or task.

mod envelope;
mod frame;
mod log;
mod relay;

/// The engine's hash maps: foldhash, seeded per map (keys come from peers), several times
/// cheaper than SipHash on the short ids and cell coordinates every update looks up.
type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set of [`Map`].
type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

pub use envelope::Role;
pub use frame::Frame;
pub use log::{ENTRY_OVERHEAD, Log};
pub use relay::{Config, ConfigError, ConnId, Output, Relay, Stats, close};
