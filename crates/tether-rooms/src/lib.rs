//! The rooms hub: rooms, clients, statuses and limits as a sans-IO state machine, plus the
//! codecs of its two socket doors (TCP lines and WebSocket JSON). Adapters own the sockets; the
//! hub only takes commands and hands back replies and deliveries.
//!
//! ```
//! use tether_rooms::{Door, Hub, Limits, Output, line};
//!
//! let mut hub = Hub::new(Limits::default());
//! let (a, b) = (hub.connect(Door::Tcp), hub.connect(Door::Ws));
//! for (conn, text) in [(a, "HELLO main:alice"), (b, "HELLO main:bob"), (a, "SEND main:alice hi")] {
//!     let cmd = line::parse_line(text).unwrap().unwrap();
//!     hub.handle_command(conn, cmd).unwrap();
//! }
//! let mut got = Vec::new();
//! while let Some(Output::Deliver { to, push }) = hub.poll_output() {
//!     if to == [b] { got.extend(line::encode_push(&push)); }
//! }
//! assert_eq!(got.last().unwrap().as_ref(), b"MSG main:alice hi\n");
//! ```

pub mod command;
pub mod error;
pub mod event;
pub mod hub;
pub mod json;
pub mod line;
pub mod name;
pub mod status;

pub use command::{Command, ListType, Register};
pub use error::{ErrorCode, HubError};
pub use event::{MemberInfo, Push, Reply, RoomInfo};
pub use hub::{CloseReason, ConnId, Door, Hub, Limits, Output, PRESENCE_LIMIT};
pub use name::Name;
pub use status::Status;

#[cfg(test)]
mod tests;
