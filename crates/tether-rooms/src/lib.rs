//! The rooms hub: rooms, clients, statuses and limits as a sans-IO state machine, plus the
//! codecs of its two socket doors (TCP lines and WebSocket JSON). Adapters own the sockets and
//! the clock; the hub only takes commands and the time, and hands back replies, deliveries and
//! when it next wants the time ([`Hub::poll_timeout`], for presence batches: [`presence`]).
//!
//! ```
//! use std::time::Instant;
//! use tether_rooms::{Door, Hub, Limits, Output, line};
//!
//! let mut hub = Hub::new(Limits::default());
//! let (a, b) = (hub.connect(Door::Tcp), hub.connect(Door::Ws));
//! for (conn, text) in [(a, "HELLO main:alice"), (b, "HELLO main:bob"), (a, "SEND main:alice hi")] {
//!     let cmd = line::parse_line(text).unwrap().unwrap();
//!     hub.handle_command(conn, cmd, Instant::now()).unwrap();
//! }
//! let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
//! while let Some(out) = hub.poll_output() {
//!     match out {
//!         Output::Deliver { to, push } if to == [b] => to_b.extend(line::encode_push(&push)),
//!         Output::DeliverBatch { to, pushes, .. } if to == [(a, 0)] => {
//!             to_a.extend(pushes.iter().filter_map(line::encode_push))
//!         }
//!         _ => {}
//!     }
//! }
//! assert_eq!(to_a, [&b"JOINED main:bob\n"[..]]);
//! assert_eq!(to_b.last().unwrap().as_ref(), b"MSG main:alice hi\n");
//! assert_eq!(hub.poll_timeout(), None); // nothing waits for a tick
//! ```

pub mod command;
pub mod error;
pub mod event;
pub mod hub;
pub mod json;
pub mod line;
pub mod name;
pub mod presence;
pub mod status;

pub use command::{Command, ListType, Register};
pub use error::{ErrorCode, HubError};
pub use event::{MemberInfo, Push, Reply, RoomInfo};
pub use hub::{CloseReason, ConnId, Door, Hub, Limits, Output, PRESENCE_LIMIT};
pub use name::Name;
pub use presence::{
    PRESENCE_BATCH_MAX, PRESENCE_TICK, PRESENCE_TICK_MAX, PRESENCE_TICK_PER_MEMBER, presence_tick,
};
pub use status::Status;

#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod tests;
