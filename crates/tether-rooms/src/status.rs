//! Client statuses, as the seed's `STATUS_LIST` meant them.

use std::fmt;

/// Where a client (or one of its room memberships) is in its life; see `docs/protocol/rooms.md` §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Connected, not registered in any room.
    New,
    /// Registered in the room; receives its messages.
    Connected,
    /// Has sent to the room; receives its messages.
    Active,
    /// Paused: receives nothing until resumed.
    Suspended,
    /// The connection failed (queue overflow, socket error).
    Error,
    /// A quit or close is in progress.
    Closing,
    /// Gone.
    Closed,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::Connected => "CONNECTED",
            Status::Active => "ACTIVE",
            Status::Suspended => "SUSPENDED",
            Status::Error => "ERROR",
            Status::Closing => "CLOSING",
            Status::Closed => "CLOSED",
        }
    }

    /// Whether room messages are delivered to a membership in this status.
    pub fn receives(self) -> bool {
        matches!(self, Status::Connected | Status::Active)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
