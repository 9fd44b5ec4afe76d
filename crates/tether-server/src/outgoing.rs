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
    /// A TCP reply after which this connection's room messages come with their `OFFSET` lines
    /// (the reply to the first `HELLO`/`NEW`/`JOIN` with `OFFSETS` or `SINCE`).
    LineOffsets(Box<Bytes>),
    /// A WebSocket reply frame.
    Text(Box<Utf8Bytes>),
    /// A push shared by all its recipients.
    Push(Arc<EncodedPush>),
    /// A room's presence batch shared by all its recipients, from this event on (a member that
    /// joined while it gathered gets only the events after its join). The writer expands it into
    /// the same lines / frames the events make one by one.
    Batch(Arc<EncodedBatch>, u32),
    /// Close after writing what came before; WebSocket close frame if given.
    Close(Option<Box<CloseFrame>>),
}

const _: () = assert!(std::mem::size_of::<Outgoing>() <= 16);

/// A push with its encodings built on first use, once for all recipients of a door.
pub struct EncodedPush {
    push: Push,
    line: OnceLock<Option<Bytes>>,
    /// The lines for connections that asked for offsets.
    line_offsets: OnceLock<Option<Bytes>>,
    text: OnceLock<Utf8Bytes>,
}

impl EncodedPush {
    /// Wraps a push; nothing is encoded yet.
    pub fn new(push: Push) -> EncodedPush {
        EncodedPush {
            push,
            line: OnceLock::new(),
            line_offsets: OnceLock::new(),
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

    /// The TCP lines for a connection that asked for offsets: `OFFSET room offset epoch`
    /// before a room message.
    pub fn line_offsets(&self) -> Option<&Bytes> {
        self.line_offsets
            .get_or_init(|| line::encode_push_offsets(&self.push))
            .as_ref()
    }

    /// The WebSocket text frame.
    pub fn text(&self) -> &Utf8Bytes {
        self.text
            .get_or_init(|| utf8(json::encode_push(&self.push)))
    }
}

/// A room's presence events (joins and leaves, in order) handed to every member as one queue
/// item; each event is encoded once per door, the TCP lines once as one block, and the
/// `presence_batch` frame once for every member that gets the whole batch.
pub struct EncodedBatch {
    pushes: Box<[Arc<EncodedPush>]>,
    /// The room's member count after the batch.
    count: usize,
    /// The lines of all events, and where each one starts.
    lines: OnceLock<(Bytes, Box<[usize]>)>,
    /// The `presence_batch` frame: its head, its comma-separated events and where each starts,
    /// and the whole frame.
    frame: OnceLock<BatchFrame>,
}

struct BatchFrame {
    head: Bytes,
    events: Bytes,
    starts: Box<[usize]>,
    whole: Utf8Bytes,
}

impl EncodedBatch {
    /// Wraps the events of one room and its member count after them; nothing is encoded yet.
    pub fn new(pushes: Vec<Push>, count: usize) -> EncodedBatch {
        EncodedBatch {
            pushes: pushes
                .into_iter()
                .map(|p| Arc::new(EncodedPush::new(p)))
                .collect(),
            count,
            lines: OnceLock::new(),
            frame: OnceLock::new(),
        }
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.pushes.len()
    }

    /// The events from `from` on (for the REST mailbox, which keeps them one by one).
    pub fn pushes(&self, from: u32) -> &[Arc<EncodedPush>] {
        self.pushes.get(from as usize..).unwrap_or_default()
    }

    /// The TCP lines of the events from `from` on, as one block.
    pub fn lines(&self, from: u32) -> Bytes {
        let (block, starts) = self.lines.get_or_init(|| {
            let mut block = bytes::BytesMut::new();
            let mut starts = Vec::with_capacity(self.pushes.len());
            for p in self.pushes.iter() {
                starts.push(block.len());
                if let Some(line) = line::encode_push(p.push()) {
                    block.extend_from_slice(&line);
                }
            }
            (block.freeze(), starts.into_boxed_slice())
        });
        match starts.get(from as usize) {
            Some(&at) => block.slice(at..),
            None => Bytes::new(),
        }
    }

    /// The WebSocket text frames of the events from `from` on.
    pub fn texts(&self, from: u32) -> impl Iterator<Item = &Utf8Bytes> {
        self.pushes(from).iter().map(|p| p.text())
    }

    /// The events from `from` on as one `presence_batch` frame (for connections that asked for
    /// batches). Members that get the whole batch share one frame.
    pub fn batch_frame(&self, from: u32) -> Utf8Bytes {
        let f = self.frame.get_or_init(|| {
            let room = match self.pushes.first().map(|p| p.push()) {
                Some(Push::Join { room, .. } | Push::Leave { room, .. }) => room.clone(),
                _ => tether_rooms::main_room(),
            };
            let head = json::batch_head(&room, self.count);
            let mut events = bytes::BytesMut::new();
            let mut starts = Vec::with_capacity(self.pushes.len());
            for (i, p) in self.pushes.iter().enumerate() {
                if i > 0 {
                    events.extend_from_slice(b",");
                }
                starts.push(events.len());
                events.extend_from_slice(&json::batch_event(p.push()));
            }
            let events = events.freeze();
            let whole = frame_of(&head, &events);
            BatchFrame {
                head,
                events,
                starts: starts.into_boxed_slice(),
                whole,
            }
        });
        match f.starts.get(from as usize) {
            Some(0) => f.whole.clone(),
            Some(&at) => frame_of(&f.head, &f.events[at..]),
            None => frame_of(&f.head, b""),
        }
    }
}

fn frame_of(head: &[u8], events: &[u8]) -> Utf8Bytes {
    let mut b = bytes::BytesMut::with_capacity(head.len() + events.len() + json::BATCH_TAIL.len());
    b.extend_from_slice(head);
    b.extend_from_slice(events);
    b.extend_from_slice(json::BATCH_TAIL);
    utf8(b.freeze())
}

/// Wraps JSON we produced (always UTF-8) as a WebSocket text payload.
pub fn utf8(bytes: Bytes) -> Utf8Bytes {
    Utf8Bytes::try_from(bytes).unwrap_or_else(|_| Utf8Bytes::from_static("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_rooms::Name;

    fn events() -> Vec<Push> {
        let room = Name::parse("r1").unwrap();
        ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let client = Name::parse(c).unwrap();
                let room = room.clone();
                if i == 1 {
                    Push::Leave { room, client }
                } else {
                    Push::Join { room, client }
                }
            })
            .collect()
    }

    #[test]
    fn every_share_of_a_batch_encodes_like_its_events_one_by_one() {
        let pushes = events();
        let batch = EncodedBatch::new(pushes.clone(), 5);
        assert_eq!(std::mem::size_of::<Outgoing>(), 16);
        for from in 0..pushes.len() {
            let tail = &pushes[from..];
            let lines: Vec<u8> = tail
                .iter()
                .flat_map(|p| line::encode_push(p).unwrap().to_vec())
                .collect();
            assert_eq!(
                batch.lines(from as u32).to_vec(),
                lines,
                "lines from {from}"
            );
            let texts: Vec<&str> = batch.texts(from as u32).map(|t| t.as_str()).collect();
            let want: Vec<String> = tail
                .iter()
                .map(|p| String::from_utf8(json::encode_push(p).to_vec()).unwrap())
                .collect();
            assert_eq!(texts, want, "frames from {from}");
            let room = Name::parse("r1").unwrap();
            assert_eq!(
                batch.batch_frame(from as u32).as_bytes(),
                &json::encode_presence_batch(&room, 5, tail)[..],
                "batch frame from {from}"
            );
            assert_eq!(batch.pushes(from as u32).len(), tail.len());
        }
        assert_eq!(
            batch.lines(0).as_ref(),
            b"JOINED r1:a\nLEFT r1:b\nJOINED r1:c\n"
        );
        // The whole-batch frame is encoded once and shared.
        assert_eq!(
            batch.batch_frame(0).as_bytes().as_ptr(),
            batch.batch_frame(0).as_bytes().as_ptr()
        );
    }
}
