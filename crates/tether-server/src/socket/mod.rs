//! The socket code every door shares: the WebSocket doors (`/ws/rooms`, the sync endpoints, the
//! UI relay, exec, the test echo, and the Python endpoints of `tether-py`) and, for the batching
//! writer, the rooms TCP door. Upgrading with a door's tunings under the server's drain
//! (`upgrade`), reading the next data message and the close code a failed read answers with
//! (`reader`), the close frames (`close`), the batching writer and the writer task (`writer`),
//! and the plain HTTP answers (JSON errors, the embedded pages of `web/`: `http`).
//!
//! The rules (RFC 6455 §5.5.1, §7.1.1, §7.4): a peer's close frame is answered at once and the
//! server then drops the TCP connection; a peer that breaks the protocol gets 1002, text or a
//! close reason that is not UTF-8 gets 1007, a message over the door's limit 1009, and the
//! connection is dropped as soon as that close frame is written (a failed read leaves nothing to
//! wait for: the stream cannot be read any further).
//!
//! The submodules are private; their items are used through this module (`socket::read`,
//! `socket::Batch`, ...), one path each.

mod close;
mod http;
mod reader;
mod upgrade;
mod writer;

pub use close::{CLOSE_FLUSH, CLOSE_WAIT, MAX_REASON, close_frame, going_away, slow_consumer};
pub use http::{error_response, file, page};
pub use reader::{Read, WsStream, answer_close, close_for, read};
pub use upgrade::{Drain, Tuning};
pub use writer::{
    Batch, Ended, Frame, Frames, Outlet, Put, Queue, Write, Writer, WsSink, drain_batches, fail,
    fail_within, write_queue,
};
