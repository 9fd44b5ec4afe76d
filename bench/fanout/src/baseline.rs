//! `fanout-baseline`: the ceiling reference of `bench/fanout` (run by hand through `run.sh`).
//!
//! The least a room broadcast server over WebSocket has to do, on the same stack as tether
//! (axum 0.8 + tungstenite, one core): one room; `/ws/rooms` with tether's JSON frames for the
//! commands the load client uses (`hello`, `send`), so one client drives both; no presence, no
//! names, no hooks, no metrics. A `send` is encoded once (`{"type":"message",...}` as one
//! `Utf8Bytes`) and put in one bounded `tokio::sync::broadcast` log that every member's writer reads
//! with its own cursor; a writer wakes once per batch, `feed`s everything available and `flush`es
//! once. A member that falls a whole log behind is closed with 1008 (slow consumer).
//!
//! Prints `listening http ADDR` on stdout once it accepts connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

#[derive(Parser, Debug)]
#[command(about = "Raw axum/tungstenite room broadcast: the ceiling reference of bench/fanout")]
struct Args {
    /// Address to listen on (HTTP, WebSocket on /ws/rooms).
    #[arg(long, default_value = "127.0.0.1:28730")]
    http: SocketAddr,
    /// Most open WebSocket connections; more get 503.
    #[arg(long, default_value_t = 20_000)]
    max_connections: usize,
    /// Messages the room's log holds; a member this far behind is a slow consumer.
    #[arg(long, default_value_t = 4096)]
    log_messages: usize,
    /// Largest client frame, bytes (the log is bounded by `log_messages` frames of a payload
    /// no bigger than this plus the envelope).
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame: usize,
    /// tungstenite's read and write buffers per connection, bytes (tether's: 8 KiB each;
    /// tungstenite's default read buffer is 128 KiB).
    #[arg(long, default_value_t = 8 * 1024)]
    buffer: usize,
}

/// The one room: the shared log of encoded frames (with the sender's id, which is skipped) and
/// the member count `send` replies report.
struct Room {
    log: broadcast::Sender<(u64, Utf8Bytes)>,
    members: AtomicUsize,
    next_id: AtomicU64,
    conns: Arc<Semaphore>,
    max_frame: usize,
    buffer: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (log, _) = broadcast::channel(args.log_messages.max(1));
    let room = Arc::new(Room {
        log,
        members: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
        conns: Arc::new(Semaphore::new(args.max_connections)),
        max_frame: args.max_frame,
        buffer: args.buffer,
    });
    let app = Router::new()
        .route("/ws/rooms", get(upgrade))
        .with_state(room);
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("bind {}", args.http))?;
    println!("listening http {}", listener.local_addr()?);
    // like tether: no Nagle delay on small frames
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(State(room): State<Arc<Room>>, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = room.conns.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    ws.read_buffer_size(room.buffer)
        .write_buffer_size(room.buffer)
        .max_message_size(room.max_frame)
        .max_frame_size(room.max_frame)
        .on_upgrade(move |socket| connection(room, socket, permit))
}

/// Text of a reply or error frame.
fn reply(v: &Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

/// One connection: reads commands, and once joined writes the room's log in batches.
async fn connection(room: Arc<Room>, socket: WebSocket, _permit: OwnedSemaphorePermit) {
    let me = room.next_id.fetch_add(1, Ordering::Relaxed);
    let (mut tx, mut rx) = socket.split();
    let mut log: Option<broadcast::Receiver<(u64, Utf8Bytes)>> = None;
    let mut client = String::new();
    let reason = loop {
        tokio::select! {
            frame = rx.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => continue, // ping/pong (answered by tungstenite), binary: ignored
                };
                let out = command(&room, me, &text, &mut log, &mut client);
                if tx.send(out).await.is_err() {
                    break None;
                }
            }
            first = recv(&mut log) => {
                let mut next = first;
                // one wake-up: everything the log holds, fed, then one flush
                let end = loop {
                    match next {
                        Ok((from, frame)) => {
                            if from != me && tx.feed(Message::Text(frame)).await.is_err() {
                                break Some(None);
                            }
                        }
                        Err(TryRecvError::Empty) => break None,
                        Err(TryRecvError::Lagged(_)) => {
                            break Some(Some(CloseFrame {
                                code: close_code::POLICY,
                                reason: "slow consumer".into(),
                            }));
                        }
                        Err(TryRecvError::Closed) => break Some(None),
                    }
                    next = match log.as_mut() {
                        Some(l) => l.try_recv(),
                        None => Err(TryRecvError::Closed),
                    };
                };
                if let Some(reason) = end {
                    break reason;
                }
                if tx.flush().await.is_err() {
                    break None;
                }
            }
        }
    };
    if log.is_some() {
        room.members.fetch_sub(1, Ordering::Relaxed);
    }
    if let Some(close) = reason {
        let _ = tx.send(Message::Close(Some(close))).await;
    }
}

/// The next entry of the log, as `try_recv` reports it; pending forever before the join.
async fn recv(
    log: &mut Option<broadcast::Receiver<(u64, Utf8Bytes)>>,
) -> Result<(u64, Utf8Bytes), TryRecvError> {
    match log.as_mut() {
        None => std::future::pending().await,
        Some(l) => match l.recv().await {
            Ok(v) => Ok(v),
            Err(RecvError::Lagged(n)) => Err(TryRecvError::Lagged(n)),
            Err(RecvError::Closed) => Err(TryRecvError::Closed),
        },
    }
}

/// `hello` joins the room; `send` encodes the frame once and appends it to the log.
fn command(
    room: &Room,
    me: u64,
    text: &str,
    log: &mut Option<broadcast::Receiver<(u64, Utf8Bytes)>>,
    client: &mut String,
) -> Message {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return reply(
            &json!({"id": null, "ok": false, "error": "BAD_JSON", "message": "not JSON"}),
        );
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let str_field = |k: &str| v.get(k).and_then(Value::as_str);
    match str_field("cmd") {
        Some("hello") => {
            let Some(name) = str_field("client") else {
                return reply(
                    &json!({"id": id, "ok": false, "error": "BAD_SYNTAX", "message": "hello needs client"}),
                );
            };
            if log.is_none() {
                *log = Some(room.log.subscribe());
                room.members.fetch_add(1, Ordering::Relaxed);
            }
            name.clone_into(client);
            let count = room.members.load(Ordering::Relaxed);
            reply(&json!({"id": id, "ok": true, "room": "main", "client": name, "count": count}))
        }
        Some("send") if log.is_some() => {
            let Some(text) = str_field("text") else {
                return reply(
                    &json!({"id": id, "ok": false, "error": "BAD_SYNTAX", "message": "send needs text"}),
                );
            };
            let frame =
                json!({"type": "message", "room": "main", "from": client.as_str(), "text": text});
            let n = room
                .log
                .send((me, Utf8Bytes::from(frame.to_string())))
                .map_or(0, |n| n.saturating_sub(1));
            reply(&json!({"id": id, "ok": true, "room": "main", "count": n}))
        }
        Some("send") => {
            reply(&json!({"id": id, "ok": false, "error": "NOT_JOINED", "message": "hello first"}))
        }
        _ => reply(
            &json!({"id": id, "ok": false, "error": "BAD_COMMAND", "message": "hello and send only"}),
        ),
    }
}
