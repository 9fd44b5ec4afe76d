//! What a connection's writer receives: replies already encoded for its door, pushes encoded
//! once and shared by every recipient, and the close marker.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use bytes::Bytes;
use tether_rooms::{Push, json, line};

/// One item in a connection's bounded outbound queue. Every variant is one pointer: the queue
/// keeps the blocks it grew to in a burst (a 1,000-member join storm), so a small slot keeps
/// idle connections small. Replies pay one box; pushes, the common case, none.
pub enum Outgoing {
    /// A TCP reply, already a line block.
    Line(Box<Bytes>),
    /// A WebSocket reply frame.
    Text(Box<Utf8Bytes>),
    /// A push shared by all its recipients.
    Push(Arc<EncodedPush>),
    /// Close after writing what came before; WebSocket close frame if given.
    Close(Option<Box<CloseFrame>>),
}

const _: () = assert!(std::mem::size_of::<Outgoing>() <= 16);

/// A push with its encodings built on first use, once for all recipients of a door.
pub struct EncodedPush {
    push: Push,
    line: OnceLock<Option<Bytes>>,
    text: OnceLock<Utf8Bytes>,
}

impl EncodedPush {
    /// Wraps a push; nothing is encoded yet.
    pub fn new(push: Push) -> EncodedPush {
        EncodedPush {
            push,
            line: OnceLock::new(),
            text: OnceLock::new(),
        }
    }

    /// The push itself (for the REST mailbox).
    pub fn push(&self) -> &Push {
        &self.push
    }

    /// The TCP line, if the line protocol shows this push.
    pub fn line(&self) -> Option<&Bytes> {
        self.line
            .get_or_init(|| line::encode_push(&self.push))
            .as_ref()
    }

    /// The WebSocket text frame.
    pub fn text(&self) -> &Utf8Bytes {
        self.text
            .get_or_init(|| utf8(json::encode_push(&self.push)))
    }
}

/// Wraps JSON we produced (always UTF-8) as a WebSocket text payload.
pub fn utf8(bytes: Bytes) -> Utf8Bytes {
    Utf8Bytes::try_from(bytes).unwrap_or_else(|_| Utf8Bytes::from_static("{}"))
}
