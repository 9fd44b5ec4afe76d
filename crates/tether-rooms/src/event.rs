//! The hub's output vocabulary: replies to a command and pushes to members.

use std::sync::Arc;

use crate::command::{ListType, Register};
use crate::history::Position;
use crate::name::Name;
use crate::status::Status;

/// A member as listings and presence show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemberInfo {
    /// The client's name.
    pub client: Name,
    /// Its membership status.
    pub status: Status,
}

/// A room as listings show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RoomInfo {
    /// The room's name.
    #[serde(rename = "room")]
    pub name: Name,
    /// How many members it has in all (`members` may be filtered or empty).
    pub count: usize,
    /// The members the listing type shows.
    pub members: Vec<MemberInfo>,
}

/// The successful result of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// HELLO / NEW / JOIN went through.
    Registered {
        /// Which command.
        kind: Register,
        /// The room.
        room: Name,
        /// The client.
        client: Name,
        /// The room's members after the join, at most [`crate::PRESENCE_LIMIT`] (none for a new
        /// quiet membership).
        members: Vec<MemberInfo>,
        /// How many members the room has in all.
        count: usize,
        /// The room's position at the join: the offset of its last message, and its epoch.
        position: Position,
        /// For a join with `since`: whether what was missed follows (`Some(true)`, as message
        /// pushes right after the member list) or is gone (`Some(false)`: resync).
        recovered: Option<bool>,
        /// The client asked to see offsets (TCP `OFFSETS` or `SINCE`).
        offsets: bool,
    },
    /// SEND was delivered to `delivered` members.
    Sent {
        /// The room.
        room: Name,
        /// How many members it was handed to.
        delivered: usize,
        /// The message's offset and the room's epoch.
        position: Position,
    },
    /// TO was delivered (1) or not (0, the target is suspended).
    Direct {
        /// The room.
        room: Name,
        /// The recipient.
        target: Name,
        /// 1 or 0.
        delivered: usize,
    },
    /// A listing.
    List {
        /// Which listing.
        kind: ListType,
        /// The rooms it shows.
        rooms: Vec<RoomInfo>,
    },
    /// PAUSE suspended these rooms.
    Paused {
        /// The client.
        client: Name,
        /// The rooms affected.
        rooms: Vec<Name>,
    },
    /// RESUME resumed these rooms.
    Resumed {
        /// The client.
        client: Name,
        /// The rooms affected.
        rooms: Vec<Name>,
    },
    /// LEAVE went through.
    Left {
        /// The room.
        room: Name,
        /// The client.
        client: Name,
    },
    /// QUIT: the connection is closed after this reply.
    Bye,
}

/// Something a member receives without having asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Push {
    /// A room message.
    Message {
        /// The room.
        room: Name,
        /// The sender.
        from: Name,
        /// The text.
        text: Arc<str>,
        /// Its offset in the room (from 1; one more per room message).
        offset: u64,
        /// The room's epoch the offset belongs to.
        epoch: Arc<str>,
    },
    /// A direct message to this member.
    Direct {
        /// The room both are in.
        room: Name,
        /// The sender.
        from: Name,
        /// The recipient.
        to: Name,
        /// The text.
        text: Arc<str>,
    },
    /// A client joined the room.
    Join {
        /// The room.
        room: Name,
        /// Who joined.
        client: Name,
    },
    /// A client left the room.
    Leave {
        /// The room.
        room: Name,
        /// Who left.
        client: Name,
    },
    /// The member list, sent to a client right after it joins.
    Presence {
        /// The room.
        room: Name,
        /// Its members, at most [`crate::PRESENCE_LIMIT`].
        members: Vec<MemberInfo>,
        /// How many members the room has in all.
        count: usize,
    },
    /// The room's history this member followed was lost in part (a cluster's Redis lost it, or
    /// a gap could not be filled): it should reload the room's state and go on from `position`,
    /// as after a join answered "resync".
    Resync {
        /// The room.
        room: Name,
        /// Where the room's stream goes on from (the next message is `position.offset + 1`).
        position: Position,
    },
    /// The server is closing this connection.
    Bye {
        /// Why.
        reason: Arc<str>,
    },
}
