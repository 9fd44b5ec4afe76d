//! The rooms WebSocket JSON endpoint `/ws/rooms`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tether_rooms::{CloseReason, Door, ErrorCode, HubError, json};
use tokio_util::sync::CancellationToken;

use crate::fanout::Feed;
use crate::outgoing::Outgoing;
use crate::rooms_state::{RoomsState, ws_reply};
use crate::socket::{self, Batch, Read, Tuning, Write, Writer, WsSink};

/// Largest accepted frame; a bigger one closes the connection with 1009.
pub const MAX_FRAME: usize = 64 * 1024;

/// Small buffers: 1 KiB to read (tungstenite allocates 128 KiB by default, and zero-fills all of
/// it on the first read, so all of it is resident; a bigger frame grows it as needed, and 1 KiB
/// still holds about ten commands of a publishing client per read) and a 2 KiB write threshold,
/// since tungstenite keeps its write buffer at the largest batch it sent. Measured with 1,000 idle
/// members: 10.9 KiB of RSS per connection against 14 KiB with 4 KiB to read.
const TUNING: Tuning = Tuning {
    read_buffer: 1024,
    write_buffer: 2 * 1024,
    ..Tuning::new(MAX_FRAME)
};

/// How long the 1008 close frame of a slow consumer may take to be written.
const SLOW_CLOSE: Duration = Duration::from_millis(100);

/// The query of `/ws/rooms`.
#[derive(serde::Deserialize)]
pub struct RoomsQuery {
    /// `batch`: a room's joins and leaves of one tick arrive as one `presence_batch` frame;
    /// `events` (the default): as one `join` / `leave` frame each.
    presence: Option<String>,
}

/// Upgrades with [`TUNING`], after checking the presence mode.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    Query(query): Query<RoomsQuery>,
    State(state): State<Arc<RoomsState>>,
) -> Response {
    let batches = match query.presence.as_deref() {
        None | Some("events") => false,
        Some("batch") => true,
        Some(_) => {
            let msg = "presence must be 'events' (one frame per join/leave) or 'batch'";
            return (StatusCode::BAD_REQUEST, msg).into_response();
        }
    };
    state
        .drain
        .clone()
        .upgrade(ws, TUNING, move |socket| run(state, socket, batches))
}

async fn run(state: Arc<RoomsState>, socket: WebSocket, batches: bool) {
    if state.drain.shutdown.is_cancelled() {
        return;
    }
    let (sink, mut stream) = socket.split();
    let conn = state.open_stream(Door::Ws);
    let writer = Writer::spawn(
        &conn.done,
        write_loop(
            sink,
            conn.feed,
            conn.done.clone(),
            state.drain.shutdown.clone(),
            batches,
        ),
    );
    loop {
        let read = tokio::select! {
            biased;
            _ = conn.done.cancelled() => break,
            r = socket::read(&mut stream, MAX_FRAME) => r,
        };
        match read {
            Read::Text(text) => {
                let req = json::parse_frame(text.as_bytes());
                let cmd = state.through_hook(conn.id, req.command).await;
                state.execute(conn.id, cmd, |r| ws_reply(&req.id, r));
            }
            Read::Binary(_) => {
                let err = HubError::new(
                    ErrorCode::BadFrame,
                    "binary frames are not part of this protocol: send JSON text frames",
                );
                state.execute(conn.id, Err(err), |r| ws_reply(&serde_json::Value::Null, r));
            }
            Read::Closed(_) => {
                // Leave first (the others hear it now, the name is free for a reconnect), then
                // answer the close frame right away.
                state.close(conn.id, CloseReason::Closed);
                socket::answer_close(&mut stream).await;
                break;
            }
            Read::Gone => break,
            Read::Failed(frame) => {
                // Written after what is queued; the writer ends there and the socket is dropped.
                state.finish(conn.id, Some(frame));
                break;
            }
        }
    }
    // The queue ends once the hub forgot the connection: the writer drains it and stops.
    state.close(conn.id, CloseReason::Closed);
    writer.finish().await;
}

/// How `/ws/rooms` writes its queue's items.
struct Items<'a> {
    shutdown: &'a CancellationToken,
    /// The client asked for `presence_batch` frames (`?presence=batch`).
    batches: bool,
}

impl Batch for Items<'_> {
    type Item = Outgoing;
    fn write(&mut self, item: Outgoing) -> Write {
        match item {
            Outgoing::Text(t) => Write::Frame(Message::Text(*t)),
            Outgoing::Push(p) => Write::Frame(Message::Text(p.text().clone())),
            Outgoing::Batch(b, from) if self.batches => {
                Write::Frame(Message::Text(b.batch_frame(from)))
            }
            Outgoing::Batch(b, from) => {
                Write::Frames(b.texts(from).map(|t| Message::Text(t.clone())).collect())
            }
            Outgoing::Line(_) | Outgoing::LineOffsets(_) => Write::Skip,
            Outgoing::Close(frame) => Write::Close(frame.map(|f| *f).unwrap_or_else(|| {
                if self.shutdown.is_cancelled() {
                    socket::going_away()
                } else {
                    socket::close_frame(close_code::NORMAL, "bye")
                }
            })),
        }
    }
}

/// Writes queued items in batches until the close item or the end of the queue; a `done`
/// cancelled before that means the queue overflowed: the client gets 1008 if it still reads.
async fn write_loop(
    mut sink: WsSink,
    mut feed: Feed,
    done: CancellationToken,
    shutdown: CancellationToken,
    batches: bool,
) {
    let mut items = Items {
        shutdown: &shutdown,
        batches,
    };
    let overflowed = tokio::select! {
        biased;
        _ = done.cancelled() => true,
        _ = socket::write_queue(&mut sink, &mut feed, &mut items) => false,
    };
    if overflowed && !shutdown.is_cancelled() {
        socket::fail_within(&mut sink, socket::slow_consumer(), SLOW_CLOSE).await;
    }
    done.cancel();
}
