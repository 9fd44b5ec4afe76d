//! A test-only echo door, `/__tether/echo`, mounted only when the environment variable
//! `TETHER_TEST_ECHO` is set (to `1`, or to the largest message in bytes): the Autobahn fuzzing
//! client (`tests/autobahn/run.sh`) drives the Rust side of the server through it. It is built
//! from nothing but the shared socket code every door uses ([`crate::socket`]: the upgrade
//! tunings, the read step and its close mapping, the batching writer, answering and failing), so
//! what Autobahn finds here holds for `/ws/rooms`, the sync endpoints, the relay and exec.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::socket::{self, Batch, Read, Tuning, Write};
use crate::state::AppState;

/// Where the echo door is mounted when enabled.
pub const PATH: &str = "/__tether/echo";

/// The environment variable that mounts it.
pub const ENV: &str = "TETHER_TEST_ECHO";

/// Its largest message unless the variable names another: 16 MiB, the biggest message of
/// Autobahn's section 9, so those cases run in full instead of closing with 1009.
pub const DEFAULT_MAX: usize = 16 << 20;

/// The echo's message limit when `TETHER_TEST_ECHO` is set (`1` or empty: [`DEFAULT_MAX`]).
pub fn enabled() -> Option<usize> {
    let value = std::env::var(ENV).ok()?;
    match value.trim() {
        "" | "1" => Some(DEFAULT_MAX),
        "0" => None,
        n => n.parse().ok().filter(|n| *n > 0).or(Some(DEFAULT_MAX)),
    }
}

/// Upgrades with the buffers of the sync endpoints and the relay (8 KiB) and `max` bytes.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    max: usize,
) -> Response {
    let tuning = Tuning {
        read_buffer: 8 * 1024,
        write_buffer: 8 * 1024,
        max_message: max,
    };
    tuning.apply(ws).on_upgrade(move |socket| {
        let tracker = state.tracker.clone();
        tracker.track_future(run(state, socket, max))
    })
}

/// One queued echo, or the close that ends the connection.
enum Echo {
    Frame(Message),
    Close(CloseFrame),
}

struct Echoes;

impl Batch for Echoes {
    type Item = Echo;
    fn write(&mut self, item: Echo) -> Write {
        match item {
            Echo::Frame(m) => Write::Frame(m),
            Echo::Close(f) => Write::Close(f),
        }
    }
}

/// Echoes every message until the peer closes (answered at once), breaks the protocol (failed
/// with the mapped code) or the server shuts down (1001).
async fn run(state: Arc<AppState>, socket: WebSocket, max: usize) {
    let (mut sink, mut stream) = socket.split();
    // One message waits at most: the queue holds up to `max` bytes.
    let (tx, mut rx) = mpsc::channel::<Echo>(1);
    let reader_done = CancellationToken::new();
    let shutdown = state.shutdown.clone();
    let reader = async {
        let _done = reader_done.clone().drop_guard();
        loop {
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Read::Failed(
                    socket::close_frame(close_code::AWAY, "server shutting down"),
                ),
                r = socket::read(&mut stream, max) => r,
            };
            let echo = match read {
                Read::Text(t) => Echo::Frame(Message::Text(t)),
                Read::Binary(b) => Echo::Frame(Message::Binary(b)),
                Read::Closed(_) => {
                    drop(tx);
                    socket::answer_close(&mut stream).await;
                    return;
                }
                Read::Gone => return,
                Read::Failed(frame) => {
                    // Behind the echo already queued, if the peer still reads; then drop.
                    let _ = tokio::time::timeout(socket::CLOSE_FLUSH, tx.send(Echo::Close(frame)))
                        .await;
                    return;
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {}
                r = tx.send(echo) => if r.is_err() { return },
            }
        }
    };
    let writer = async {
        let mut echoes = Echoes;
        tokio::select! {
            _ = socket::write_queue(&mut sink, &mut rx, &mut echoes) => {}
            // The reader is done: what is left goes out now or never.
            _ = async {
                reader_done.cancelled().await;
                tokio::time::sleep(socket::CLOSE_FLUSH).await;
            } => {}
        }
    };
    tokio::join!(reader, writer);
}
