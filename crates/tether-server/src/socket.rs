//! The socket code every WebSocket door shares (`/ws/rooms`, the sync endpoints, the UI relay,
//! exec, and the Python endpoints of `tether-py`): the upgrade tunings, reading the next data
//! message, the close code a failed read answers with, the batching writer, and the two ways a
//! connection ends on purpose (answering the peer's close, failing the connection).
//!
//! The rules (RFC 6455 §5.5.1, §7.1.1, §7.4): a peer's close frame is answered at once and the
//! server then drops the TCP connection; a peer that breaks the protocol gets 1002, text or a
//! close reason that is not UTF-8 gets 1007, a message over the door's limit 1009, and the
//! connection is dropped as soon as that close frame is written (a failed read leaves nothing to
//! wait for: the stream cannot be read any further).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// The sending half of a split WebSocket.
pub type WsSink = SplitSink<WebSocket, Message>;
/// The receiving half of a split WebSocket.
pub type WsStream = SplitStream<WebSocket>;

/// How long writing a close frame (ours, or the reply to the peer's) may take before the
/// connection is dropped without it: the peer stopped reading.
pub const CLOSE_FLUSH: Duration = Duration::from_millis(500);

/// How long a peer gets to answer a close frame the server sent before the server drops the
/// connection (RFC 6455 §7.1.1: the server closes the TCP connection first).
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Longest close reason a close frame carries (125 bytes of payload minus the code).
pub const MAX_REASON: usize = 123;

/// Frames a writer feeds before it flushes and reports, even when more are queued.
const MAX_BATCH: usize = 256;

/// A door's upgrade tunings: tungstenite's buffers and the largest message (and frame) it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Bytes read from the socket at once.
    pub read_buffer: usize,
    /// Bytes of written frames tungstenite keeps before it writes them out.
    pub write_buffer: usize,
    /// Largest message (and frame); a bigger one closes the connection with 1009.
    pub max_message: usize,
}

impl Tuning {
    /// Applies the tunings to an upgrade.
    pub fn apply(self, ws: WebSocketUpgrade) -> WebSocketUpgrade {
        ws.read_buffer_size(self.read_buffer)
            .write_buffer_size(self.write_buffer)
            .max_message_size(self.max_message)
            .max_frame_size(self.max_message)
    }
}

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

/// What the next read of a socket gave (pings and pongs are answered by tungstenite and
/// skipped).
#[derive(Debug)]
pub enum Read {
    /// A text message (valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// The peer sent a close frame (its code and reason; `None` when it gave none). The reply is
    /// queued: send it with [`answer_close`], then drop the connection.
    Closed(Option<CloseFrame>),
    /// The connection ended without a close frame (reset, end of stream, I/O error).
    Gone,
    /// The peer broke the protocol or a limit: send this frame with [`fail`], then drop the
    /// connection (the stream cannot be read any further).
    Failed(CloseFrame),
}

/// Reads the next message; `max` is the door's message limit, named in a 1009's reason.
pub async fn read(stream: &mut WsStream, max: usize) -> Read {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return Read::Text(t),
            Some(Ok(Message::Binary(b))) => return Read::Binary(b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(frame))) => return Read::Closed(frame),
            None => return Read::Gone,
            Some(Err(e)) => {
                return match close_for(e, max) {
                    Some(frame) => Read::Failed(frame),
                    None => Read::Gone,
                };
            }
        }
    }
}

/// The close frame that answers a failed read: 1007 for text or a close reason that is not
/// UTF-8, 1002 for a protocol error (reserved bits or opcodes, a bad continuation, a fragmented
/// or oversized control frame, a bad close payload...), 1009 for a message over `max` bytes,
/// 1011 otherwise. `None` when the peer is gone (reset, I/O error): there is no one to tell.
pub fn close_for(e: axum::Error, max: usize) -> Option<CloseFrame> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    let inner = e.into_inner();
    tracing::debug!("websocket read error: {inner}");
    let Some(e) = inner.downcast_ref::<WsError>() else {
        return Some(close_frame(close_code::ERROR, "read error"));
    };
    Some(match e {
        WsError::Utf8(_) => close_frame(
            close_code::INVALID,
            "invalid UTF-8 in a text message or close reason",
        ),
        WsError::Capacity(_) => {
            close_frame(close_code::SIZE, &format!("message exceeds {max} bytes"))
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return None,
        WsError::Protocol(p) => close_frame(close_code::PROTOCOL, &format!("protocol error: {p}")),
        WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => return None,
        _ => close_frame(close_code::ERROR, "read error"),
    })
}

/// Sends the reply tungstenite queued for the peer's close frame (it goes out on the next read)
/// and reads to the end of the stream, at most [`CLOSE_FLUSH`]. Drop the connection after.
pub async fn answer_close(stream: &mut WsStream) {
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// Fails the connection: writes `frame` (at most [`CLOSE_FLUSH`]). Drop the connection after,
/// without waiting for the peer's reply.
pub async fn fail(sink: &mut WsSink, frame: CloseFrame) {
    let _ = tokio::time::timeout(CLOSE_FLUSH, sink.send(Message::Close(Some(frame)))).await;
}

/// A writer's queue: bounded or unbounded mpsc.
pub trait Queue: Send {
    /// What it holds.
    type Item: Send;
    /// The next item, waiting for one; `None` once every sender is gone and it is empty.
    fn recv(&mut self) -> impl Future<Output = Option<Self::Item>> + Send;
    /// The next item if one is ready.
    fn try_recv(&mut self) -> Option<Self::Item>;
}

impl<T: Send> Queue for mpsc::Receiver<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send {
        mpsc::Receiver::recv(self)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::Receiver::try_recv(self).ok()
    }
}

impl<T: Send> Queue for mpsc::UnboundedReceiver<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send {
        mpsc::UnboundedReceiver::recv(self)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::UnboundedReceiver::try_recv(self).ok()
    }
}

/// What a writer does with one queued item.
pub enum Write {
    /// Feed this message.
    Frame(Message),
    /// Feed these messages, in order (one queue item that stands for several frames, such as a
    /// tick's presence batch).
    Frames(Vec<Message>),
    /// Send this close frame after what came before, and stop.
    Close(CloseFrame),
    /// Nothing for this door.
    Skip,
}

/// A door's view of its queue's items.
pub trait Batch {
    /// What the queue holds.
    type Item;
    /// Turns an item into what to write.
    fn write(&mut self, item: Self::Item) -> Write;
    /// Called after each batch was flushed, with the message bytes it wrote.
    fn flushed(&mut self, _bytes: usize) {}
}

/// How a writer's queue ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A close item was written.
    Closed,
    /// Every sender is gone and the queue is empty.
    Drained,
}

/// The bytes of a data message (0 for control frames).
fn payload_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Writes the queue in batches (feeds every ready item, up to 256, then one flush) until a close
/// item was sent or the queue ended. An error means the socket is gone (or already closed).
pub async fn write_queue<Q, B>(
    sink: &mut WsSink,
    rx: &mut Q,
    batch: &mut B,
) -> Result<Ended, axum::Error>
where
    Q: Queue,
    B: Batch<Item = Q::Item>,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut bytes = 0;
        let mut count = 0;
        while let Some(item) = next {
            match batch.write(item) {
                Write::Frame(m) => {
                    bytes += payload_len(&m);
                    sink.feed(m).await?;
                }
                Write::Frames(ms) => {
                    for m in ms {
                        bytes += payload_len(&m);
                        sink.feed(m).await?;
                    }
                }
                Write::Close(frame) => {
                    sink.send(Message::Close(Some(frame))).await?;
                    batch.flushed(bytes);
                    return Ok(Ended::Closed);
                }
                Write::Skip => {}
            }
            count += 1;
            next = if count < MAX_BATCH {
                rx.try_recv()
            } else {
                None
            };
        }
        sink.flush().await?;
        batch.flushed(bytes);
    }
    Ok(Ended::Drained)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};

    fn code(e: WsError) -> Option<u16> {
        close_for(axum::Error::new(e), 1024).map(|f| f.code)
    }

    #[test]
    fn read_errors_map_to_rfc_close_codes() {
        assert_eq!(code(WsError::Utf8("bad".into())), Some(1007));
        let too_long = CapacityError::MessageTooLong {
            size: 2048,
            max_size: 1024,
        };
        assert_eq!(code(WsError::Capacity(too_long)), Some(1009));
        for p in [
            ProtocolError::NonZeroReservedBits,
            ProtocolError::UnknownDataFrameType(3),
            ProtocolError::UnknownControlFrameType(11),
            ProtocolError::UnexpectedContinueFrame,
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ControlFrameTooBig,
            ProtocolError::InvalidCloseSequence,
            ProtocolError::UnmaskedFrameFromClient,
        ] {
            assert_eq!(code(WsError::Protocol(p.clone())), Some(1002), "{p}");
        }
        assert_eq!(code(WsError::AttackAttempt), Some(1011));
    }

    #[test]
    fn a_vanished_peer_gets_no_close_frame() {
        assert_eq!(
            code(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            )),
            None
        );
        assert_eq!(
            code(WsError::Io(std::io::ErrorKind::ConnectionReset.into())),
            None
        );
        assert_eq!(code(WsError::ConnectionClosed), None);
    }

    #[test]
    fn a_1009_names_the_limit_and_reasons_fit_a_close_frame() {
        let too_long = CapacityError::MessageTooLong {
            size: usize::MAX,
            max_size: usize::MAX,
        };
        let frame = close_for(axum::Error::new(WsError::Capacity(too_long)), usize::MAX);
        let frame = frame.expect("a frame");
        assert!(frame.reason.as_str().contains(&usize::MAX.to_string()));
        let long = close_frame(1000, &"é".repeat(100));
        assert!(long.reason.len() <= MAX_REASON);
        assert!(long.reason.as_str().chars().all(|c| c == 'é'));
    }
}
