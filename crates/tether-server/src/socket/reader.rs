//! Reading a WebSocket: the next data message, the close frame that answers a failed read, and
//! answering the peer's close.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;

use super::close::{CLOSE_FLUSH, close_frame};

/// The receiving half of a split WebSocket.
pub type WsStream = SplitStream<WebSocket>;

/// What the next read of a socket gave (pings and pongs are answered by tungstenite and
/// skipped).
#[derive(Debug)]
pub enum Read {
    /// A text message (valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// The peer sent a close frame (its code and reason; `None` when it gave none). The reply is
    /// queued: send it with [`answer_close`](super::answer_close), then drop the connection.
    Closed(Option<CloseFrame>),
    /// The connection ended without a close frame (reset, end of stream, I/O error).
    Gone,
    /// The peer broke the protocol or a limit: send this frame with [`fail`](super::fail), then drop the
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::close::MAX_REASON;
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
