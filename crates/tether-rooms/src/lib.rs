//! The rooms hub: rooms, clients, statuses and limits as a sans-IO state machine, plus the
//! codecs of its two socket doors ([`line`](mod@line) for TCP lines, [`json`](mod@json) for
//! WebSocket JSON frames). Adapters own the sockets and the clock; the hub takes commands and
//! the time, and hands back replies, deliveries and when it next wants the time.
//!
//! # Driving the [`Hub`]
//!
//! It follows the engine contract of `docs/engines.md`:
//!
//! - inputs: [`Hub::handle_connect`] (a socket opened on a [`Door`]; the hub picks the
//!   [`ConnId`]), [`Hub::handle_command`] (a parsed client [`Command`]; returns its [`Reply`]),
//!   [`Hub::handle_close`], [`Hub::handle_shutdown`];
//! - outputs: [`Output`] (deliveries to connections, room-wide broadcasts and presence batches,
//!   memberships starting and ending, closes), drained with
//!   [`Hub::poll_output`] after every input;
//! - timer: presence events are gathered per room for a tick ([`presence_tick`]) and delivered
//!   as one batch: [`Hub::poll_timeout`] says when to call [`Hub::handle_timeout`]; every input
//!   that can start a batch takes `now`;
//! - calls of the REST API, not of a socket: [`Hub::delete_room`], [`Hub::list`],
//!   [`Hub::history`] and the read-only queries;
//! - history: every room message gets an offset in its room's epoch ([`Position`]) and is kept
//!   in a bounded ring per room ([`HistoryPolicy`]); a join with `since` gets what it missed
//!   before any later message, or is told to resync ([`Recovery`]). Every message goes through
//!   one internal step (offset, history, broadcast), which a cluster bus can feed with offsets it
//!   assigned; [`Hub::restore_room`] puts back what an adapter stored.
//!
//! ```
//! use std::time::Instant;
//! use tether_rooms::{Door, Hub, Limits, Output, line};
//!
//! let mut hub = Hub::new(Limits::default());
//! let (a, b) = (hub.handle_connect(Door::Tcp), hub.handle_connect(Door::Ws));
//! for (conn, text) in [(a, "HELLO main:alice"), (b, "HELLO main:bob"), (a, "SEND main:alice hi")] {
//!     let cmd = line::parse_line(text).unwrap().unwrap();
//!     hub.handle_command(conn, cmd, Instant::now()).unwrap();
//! }
//! // Room-wide outputs name the room; the adapter keeps its members from Joined / Left.
//! let mut since = std::collections::HashMap::new();
//! let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
//! while let Some(out) = hub.poll_output() {
//!     match out {
//!         Output::Joined { conn, since: s, .. } => drop(since.insert(conn, s)),
//!         Output::DeliverBatch { first, pushes, .. } => {
//!             // alice was in before bob's join: she gets the batch from its first event.
//!             assert_eq!(Output::batch_share(since[&a], first, pushes.len()), Some(0));
//!             assert_eq!(Output::batch_share(since[&b], first, pushes.len()), None);
//!             to_a.extend(pushes.iter().filter_map(line::encode_push))
//!         }
//!         Output::Broadcast { push, skip, .. } => {
//!             assert_eq!(skip, [a]); // every member but the sender
//!             to_b.extend(line::encode_push(&push))
//!         }
//!         _ => {}
//!     }
//! }
//! assert_eq!(to_a, [&b"JOINED main:bob\n"[..]]);
//! assert_eq!(to_b.last().unwrap().as_ref(), b"MSG main:alice hi\n");
//! assert_eq!(hub.poll_timeout(), None); // nothing waits for a tick
//! ```

mod command;
mod error;
mod event;
mod history;
mod hub;
pub mod json;
pub mod line;
mod name;
mod presence;
mod status;

pub use command::{Command, ListType, Register};
pub use error::{ErrorCode, HubError};
pub use event::{MemberInfo, Push, Reply, RoomInfo};
pub use history::{
    HistoryLimits, HistoryPolicy, MAX_EPOCH_LEN, Position, Recovery, STORED_OVERHEAD, Stored,
};
pub use hub::{
    CloseReason, ConnId, Door, Hub, Limits, Output, PRESENCE_LIMIT, Publish, QUIET_SINCE,
};
pub use name::{MAX_NAME_LEN, Name, main_room};
pub use presence::{
    PRESENCE_BATCH_MAX, PRESENCE_TICK, PRESENCE_TICK_MAX, PRESENCE_TICK_PER_MEMBER, presence_tick,
};
pub use status::Status;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod tests;
