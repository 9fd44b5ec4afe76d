//! The close frames the doors send and how long closing may take.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, close_code};

/// How long writing a close frame (ours, or the reply to the peer's) may take before the
/// connection is dropped without it: the peer stopped reading.
pub const CLOSE_FLUSH: Duration = Duration::from_millis(500);

/// How long a peer gets to answer a close frame the server sent before the server drops the
/// connection (RFC 6455 §7.1.1: the server closes the TCP connection first).
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Longest close reason a close frame carries (125 bytes of payload minus the code).
pub const MAX_REASON: usize = 123;

/// A close frame with `reason` cut to what fits (at a character boundary).
pub fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: reason[..end].into(),
    }
}

/// The close frame a server that is shutting down sends (1001).
pub fn going_away() -> CloseFrame {
    close_frame(close_code::AWAY, "server shutting down")
}

/// The close frame a connection whose outbound queue overflowed gets (1008).
pub fn slow_consumer() -> CloseFrame {
    close_frame(close_code::POLICY, "slow consumer: outbound queue full")
}
