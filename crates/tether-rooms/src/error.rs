//! Stable error codes shared by the three doors.

use std::fmt;

/// A stable, documented error code (`docs/protocol/rooms.md` §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Unknown command word or `cmd`.
    BadCommand,
    /// Missing or extra tokens or fields, or an empty text.
    BadSyntax,
    /// A name outside the charset or length.
    BadName,
    /// Unknown LIST type.
    BadListType,
    /// A frame or body that is not the JSON expected.
    BadJson,
    /// A binary WebSocket frame.
    BadFrame,
    /// A TCP line that is not UTF-8.
    BadEncoding,
    /// A TCP line over the line limit.
    LineTooLong,
    /// A REST call without the client's token.
    Unauthorized,
    /// The room does not exist.
    NoSuchRoom,
    /// The client does not exist or is not in the room.
    NoSuchClient,
    /// The client is not a member of that room.
    NotRegistered,
    /// The command names another client than the connection's.
    Identity,
    /// The client name is held by another connection.
    NameTaken,
    /// The room exists already.
    RoomExists,
    /// `main` cannot be created or removed.
    MainRoom,
    /// The client is in the room already.
    AlreadyJoined,
    /// The room still has members.
    RoomNotEmpty,
    /// A text over the message length limit, or a body over the size limit.
    TooLong,
    /// The room limit is reached.
    TooManyRooms,
    /// The client limit is reached.
    ServerFull,
    /// The room's JS hook dropped the message (it returned null, undefined or false).
    HookRejected,
    /// The room's JS hook threw, timed out, ran out of memory or is busy; the message is dropped.
    HookFailed,
    /// The cluster bus (Redis) is unreachable, so the cluster cannot vouch for the command
    /// (a client name or a new room); retry later.
    Unavailable,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadCommand => "BAD_COMMAND",
            ErrorCode::BadSyntax => "BAD_SYNTAX",
            ErrorCode::BadName => "BAD_NAME",
            ErrorCode::BadListType => "BAD_LIST_TYPE",
            ErrorCode::BadJson => "BAD_JSON",
            ErrorCode::BadFrame => "BAD_FRAME",
            ErrorCode::BadEncoding => "BAD_ENCODING",
            ErrorCode::LineTooLong => "LINE_TOO_LONG",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::NoSuchRoom => "NO_SUCH_ROOM",
            ErrorCode::NoSuchClient => "NO_SUCH_CLIENT",
            ErrorCode::NotRegistered => "NOT_REGISTERED",
            ErrorCode::Identity => "IDENTITY",
            ErrorCode::NameTaken => "NAME_TAKEN",
            ErrorCode::RoomExists => "ROOM_EXISTS",
            ErrorCode::MainRoom => "MAIN_ROOM",
            ErrorCode::AlreadyJoined => "ALREADY_JOINED",
            ErrorCode::RoomNotEmpty => "ROOM_NOT_EMPTY",
            ErrorCode::TooLong => "TOO_LONG",
            ErrorCode::TooManyRooms => "TOO_MANY_ROOMS",
            ErrorCode::ServerFull => "SERVER_FULL",
            ErrorCode::HookRejected => "HOOK_REJECTED",
            ErrorCode::HookFailed => "HOOK_FAILED",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status a REST error with this code gets.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadCommand
            | ErrorCode::BadSyntax
            | ErrorCode::BadName
            | ErrorCode::BadListType
            | ErrorCode::BadJson
            | ErrorCode::BadFrame
            | ErrorCode::BadEncoding
            | ErrorCode::LineTooLong => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NoSuchRoom | ErrorCode::NoSuchClient => 404,
            ErrorCode::NotRegistered
            | ErrorCode::Identity
            | ErrorCode::NameTaken
            | ErrorCode::RoomExists
            | ErrorCode::MainRoom
            | ErrorCode::AlreadyJoined
            | ErrorCode::RoomNotEmpty => 409,
            ErrorCode::TooLong => 413,
            ErrorCode::HookRejected => 403,
            ErrorCode::HookFailed => 422,
            ErrorCode::TooManyRooms | ErrorCode::ServerFull | ErrorCode::Unavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: a stable code for programs and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct HubError {
    /// What went wrong, stable across releases.
    pub code: ErrorCode,
    /// One line of explanation, no newlines.
    pub message: String,
}

impl HubError {
    /// Builds an error; newlines in the message are flattened so that line replies stay one line.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> HubError {
        let mut message = message.into();
        if message.contains(['\n', '\r']) {
            message = message.replace(['\n', '\r'], " ");
        }
        HubError { code, message }
    }
}
