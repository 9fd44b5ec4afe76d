//! The rooms WebSocket JSON endpoint `/ws/rooms`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tether_rooms::{CloseReason, Door, ErrorCode, HubError, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::outgoing::Outgoing;
use crate::state::{AppState, ws_reply};

/// Largest accepted frame; a bigger one closes the connection with 1009.
pub const MAX_FRAME: usize = 64 * 1024;

/// The query of `/ws/rooms`.
#[derive(serde::Deserialize)]
pub struct RoomsQuery {
    /// `batch`: a room's joins and leaves of one tick arrive as one `presence_batch` frame;
    /// `events` (the default): as one `join` / `leave` frame each.
    presence: Option<String>,
}

/// Upgrades with small buffers: 4 KiB to read (tungstenite allocates 128 KiB by default) and a
/// 2 KiB write threshold, since tungstenite keeps its write buffer at the largest batch it sent.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    Query(query): Query<RoomsQuery>,
    State(state): State<Arc<AppState>>,
) -> Response {
    let batches = match query.presence.as_deref() {
        None | Some("events") => false,
        Some("batch") => true,
        Some(_) => {
            let msg = "presence must be 'events' (one frame per join/leave) or 'batch'";
            return (StatusCode::BAD_REQUEST, msg).into_response();
        }
    };
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(2 * 1024)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            state
                .tracker
                .track_future(run(state.clone(), socket, batches))
        })
}

async fn run(state: Arc<AppState>, socket: WebSocket, batches: bool) {
    if state.shutdown.is_cancelled() {
        return;
    }
    let (sink, mut stream) = socket.split();
    let conn = state.open_stream(Door::Ws);
    let writer = tokio::spawn(write_loop(
        sink,
        conn.rx,
        conn.done.clone(),
        state.shutdown.clone(),
        batches,
    ));
    loop {
        let msg = tokio::select! {
            biased;
            _ = conn.done.cancelled() => break,
            m = stream.next() => m,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                let req = json::parse_frame(text.as_bytes());
                let cmd = state.through_hook(conn.id, req.command).await;
                state.execute(conn.id, cmd, |r| ws_reply(&req.id, r));
            }
            Some(Ok(Message::Binary(_))) => {
                let err = HubError::new(
                    ErrorCode::BadFrame,
                    "binary frames are not part of this protocol: send JSON text frames",
                );
                state.execute(conn.id, Err(err), |r| ws_reply(&serde_json::Value::Null, r));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(e)) => {
                // Say why if the socket still takes a close frame.
                let frame = close_for(e, MAX_FRAME);
                state.finish(conn.id, Some(frame));
                break;
            }
        }
    }
    if tokio::time::timeout(Duration::from_secs(2), conn.done.cancelled())
        .await
        .is_err()
    {
        conn.done.cancel();
    }
    let _ = writer.await;
    state.close(conn.id, CloseReason::Closed);
}

/// The close frame for a read error: 1009 for a message over `max` bytes, 1002 for a protocol
/// error, 1011 otherwise.
pub fn close_for(e: axum::Error, max: usize) -> CloseFrame {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = e.into_inner();
    let (code, reason) = match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => (close_code::SIZE, format!("message exceeds {max} bytes")),
        Some(WsError::Protocol(p)) => (close_code::PROTOCOL, format!("protocol error: {p}")),
        _ => (close_code::ERROR, "read error".to_string()),
    };
    tracing::debug!("ws read error: {inner}");
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

type WsSink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Writes queued items in batches (`feed` each, one `flush`), ends with the right close code.
async fn write_loop(
    mut sink: WsSink,
    mut rx: mpsc::Receiver<Outgoing>,
    done: CancellationToken,
    shutdown: CancellationToken,
    batches: bool,
) {
    let work = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(item) = next {
                match item {
                    Outgoing::Text(t) => sink.feed(Message::Text(*t)).await?,
                    Outgoing::Push(p) => sink.feed(Message::Text(p.text().clone())).await?,
                    Outgoing::Batch(b, from) if batches => {
                        sink.feed(Message::Text(b.batch_frame(from))).await?
                    }
                    Outgoing::Batch(b, from) => {
                        for t in b.texts(from) {
                            sink.feed(Message::Text(t.clone())).await?;
                        }
                    }
                    Outgoing::Line(_) => {}
                    Outgoing::Close(frame) => {
                        let frame = frame.map(|f| *f).unwrap_or_else(|| {
                            if shutdown.is_cancelled() {
                                CloseFrame {
                                    code: close_code::AWAY,
                                    reason: "server shutting down".into(),
                                }
                            } else {
                                CloseFrame {
                                    code: close_code::NORMAL,
                                    reason: "bye".into(),
                                }
                            }
                        });
                        sink.send(Message::Close(Some(frame))).await?;
                        return Ok(true);
                    }
                }
                next = rx.try_recv().ok();
            }
            sink.flush().await?;
        }
        Ok::<bool, axum::Error>(false)
    };
    let closed = tokio::select! {
        biased;
        _ = done.cancelled() => false,
        r = work => r.unwrap_or(true),
    };
    if !closed && !shutdown.is_cancelled() {
        // Ended from outside: the queue overflowed. Tell the client if it still reads at all.
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: "slow consumer: outbound queue full".into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_millis(100),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    done.cancel();
}
