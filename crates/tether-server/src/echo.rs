//! A test-only echo door, `/__tether/echo`, mounted only when the environment variable
//! `TETHER_TEST_ECHO` is set (to `1`, or to the largest message in bytes): the Autobahn fuzzing
//! client (`tests/autobahn/run.sh`) drives the Rust side of the server through it. It is built
//! from nothing but the shared socket code every door uses ([`crate::socket`]: the upgrade
//! tunings, the read step and its close mapping, the batching writer, answering and failing), so
//! what Autobahn finds here holds for `/ws/rooms`, the sync endpoints, the relay and exec.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::socket::{self, Drain, Frame, Frames, Read, Tuning};

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

/// Upgrades with the common buffers ([`Tuning::new`]) and `max` bytes.
pub fn upgrade(ws: WebSocketUpgrade, drain: &Drain, max: usize) -> Response {
    let shutdown = drain.shutdown.clone();
    drain.upgrade(ws, Tuning::new(max), move |socket| {
        run(shutdown, socket, max)
    })
}

/// Echoes every message until the peer closes (answered at once), breaks the protocol (failed
/// with the mapped code) or the server shuts down (1001).
async fn run(shutdown: CancellationToken, socket: WebSocket, max: usize) {
    let (mut sink, mut stream) = socket.split();
    // One message waits at most: the queue holds up to `max` bytes.
    let (tx, mut rx) = mpsc::channel::<Frame>(1);
    let reader_done = CancellationToken::new();
    let reader = async {
        let _done = reader_done.clone().drop_guard();
        loop {
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Read::Failed(socket::going_away()),
                r = socket::read(&mut stream, max) => r,
            };
            let echo = match read {
                Read::Text(t) => Frame::Message(Message::Text(t)),
                Read::Binary(b) => Frame::Message(Message::Binary(b)),
                Read::Closed(_) => {
                    drop(tx);
                    socket::answer_close(&mut stream).await;
                    return;
                }
                Read::Gone => return,
                Read::Failed(frame) => {
                    // Behind the echo already queued, if the peer still reads; then drop.
                    let _ = tokio::time::timeout(socket::CLOSE_FLUSH, tx.send(Frame::Close(frame)))
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
        let mut frames = Frames;
        tokio::select! {
            _ = socket::write_queue(&mut sink, &mut rx, &mut frames) => {}
            // The reader is done: what is left goes out now or never.
            _ = async {
                reader_done.cancelled().await;
                tokio::time::sleep(socket::CLOSE_FLUSH).await;
            } => {}
        }
    };
    tokio::join!(reader, writer);
}
