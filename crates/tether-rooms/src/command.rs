//! Door-independent commands, the hub's input.

use crate::error::{ErrorCode, HubError};
use crate::history::Position;
use crate::name::Name;

/// Which of the three registering commands was used; replies name it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// Register in an existing room (idempotent).
    Hello,
    /// Create a room and join it.
    New,
    /// Join an existing room.
    Join,
}

impl Register {
    /// The line protocol's command word.
    pub fn word(self) -> &'static str {
        match self {
            Register::Hello => "HELLO",
            Register::New => "NEW",
            Register::Join => "JOIN",
        }
    }
}

/// The seed's LIST types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Room names and member counts.
    ChatRooms,
    /// Rooms with members and statuses.
    All,
    /// Rooms with member names.
    ChatRoomAndClients,
    /// The rooms of one client.
    ClientChatRooms,
    /// The members of one room.
    ClientsForChatRoom,
}

impl ListType {
    /// Parses a type word, case-insensitively.
    pub fn parse(s: &str) -> Result<ListType, HubError> {
        match s.to_ascii_uppercase().as_str() {
            "CHAT_ROOMS" => Ok(ListType::ChatRooms),
            "ALL" => Ok(ListType::All),
            "CHAT_ROOM_AND_CLIENTS" => Ok(ListType::ChatRoomAndClients),
            "CLIENT_CHAT_ROOMS" => Ok(ListType::ClientChatRooms),
            "CLIENTS_FOR_CHAT_ROOM" => Ok(ListType::ClientsForChatRoom),
            _ => Err(HubError::new(
                ErrorCode::BadListType,
                format!(
                    "unknown list type '{}': use CHAT_ROOMS, ALL, CHAT_ROOM_AND_CLIENTS, CLIENT_CHAT_ROOMS or CLIENTS_FOR_CHAT_ROOM",
                    crate::name::truncate_for_message(s)
                ),
            )),
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::ChatRooms => "CHAT_ROOMS",
            ListType::All => "ALL",
            ListType::ChatRoomAndClients => "CHAT_ROOM_AND_CLIENTS",
            ListType::ClientChatRooms => "CLIENT_CHAT_ROOMS",
            ListType::ClientsForChatRoom => "CLIENTS_FOR_CHAT_ROOM",
        }
    }

    /// Whether the type needs an argument (a client or a room name).
    pub fn needs_arg(self) -> bool {
        matches!(
            self,
            ListType::ClientChatRooms | ListType::ClientsForChatRoom
        )
    }
}

/// What a connection asks the hub to do. `client` is optional where the connection's own
/// registered name can stand in; when given it must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// HELLO / NEW / JOIN.
    Register {
        /// Which of the three.
        kind: Register,
        /// The room.
        room: Name,
        /// The client name (required on an unregistered connection).
        client: Option<Name>,
        /// Whether the new membership receives the room's joins and leaves (`false`: a quiet
        /// member, which costs nothing per presence event; the default is `true`).
        presence: bool,
        /// The position the client last saw in the room: what came after it is delivered
        /// before any new message, or the reply says resync.
        since: Option<Position>,
        /// The client wants to see offsets (the TCP door shows them only then).
        offsets: bool,
    },
    /// SEND: a message to the room's other members.
    Send {
        /// The room.
        room: Name,
        /// The sender, if named.
        client: Option<Name>,
        /// The text.
        text: String,
    },
    /// TO: a direct message to one member of a room.
    To {
        /// The room both are in.
        room: Name,
        /// The sender, if named.
        client: Option<Name>,
        /// The recipient.
        target: Name,
        /// The text.
        text: String,
    },
    /// LIST.
    List {
        /// Which listing.
        kind: ListType,
        /// The client or room it is about, for the types that need one.
        arg: Option<Name>,
    },
    /// PAUSE: suspend one membership, or all when `room` is `None`.
    Pause {
        /// The room, or every room of the client.
        room: Option<Name>,
        /// The client, if named.
        client: Option<Name>,
    },
    /// RESUME: undo a PAUSE.
    Resume {
        /// The room, or every room of the client.
        room: Option<Name>,
        /// The client, if named.
        client: Option<Name>,
    },
    /// LEAVE one room.
    Leave {
        /// The room.
        room: Name,
        /// The client, if named.
        client: Option<Name>,
    },
    /// QUIT: leave every room and close.
    Quit {
        /// The client, if named.
        client: Option<Name>,
    },
}

impl Command {
    /// A short name for logs and metrics.
    pub fn word(&self) -> &'static str {
        match self {
            Command::Register { kind, .. } => kind.word(),
            Command::Send { .. } => "SEND",
            Command::To { .. } => "TO",
            Command::List { .. } => "LIST",
            Command::Pause { .. } => "PAUSE",
            Command::Resume { .. } => "RESUME",
            Command::Leave { .. } => "LEAVE",
            Command::Quit { .. } => "QUIT",
        }
    }
}
