//! The UI relay listener (`--relay`, default localhost:5163: 127.0.0.1 and [::1]): a WebSocket
//! (over TLS with `--tls-cert`) on any path, `?session=<id>` picking the session, around the
//! sans-IO `tether_relay::Relay`. Stock sidekick-py dials `ws://localhost:5163` and finds it
//! with zero configuration; the `/ui` page on the HTTP listener asks `/ui/config` where it is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use metrics::{Counter, Gauge, counter, gauge};
use serde::Deserialize;
use tether_relay::{ConnId, Output, Relay, Stats, close};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::socket::{self, Batch, Drain, Read, Tuning, Write, Writer, WsSink};

/// How long the close frame of a connection the engine found too slow may take to be written.
const URGENT_CLOSE: Duration = Duration::from_millis(200);

/// What a connection's writer receives.
enum Out {
    Frame(Utf8Bytes),
    /// Close after what was queued before (graceful: shutdown, 1009, 1003).
    Close(CloseFrame),
}

/// One connection's end of the engine's outputs.
struct Sink {
    /// Unbounded: the engine bounds it in bytes (`max_queue_bytes`) and closes a connection
    /// that lets it grow past that.
    tx: mpsc::UnboundedSender<Out>,
    /// Cancelled to end the connection now (too slow), or by the writer when it ends.
    done: CancellationToken,
    /// The close frame to send when `done` was cancelled by the engine.
    urgent: Arc<Mutex<Option<CloseFrame>>>,
}

struct Core {
    relay: Relay,
    sinks: HashMap<ConnId, Sink>,
    reported: Stats,
    /// Connections, sessions, log bytes and queued bytes as last reported.
    gauges: [usize; 4],
    metrics: Metrics,
}

/// The relay engine, its connections' sinks and the listener's bookkeeping.
pub struct RelayHub {
    core: Mutex<Core>,
    next: AtomicU64,
    addr: SocketAddr,
    max_frame: usize,
    drain: Drain,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RelayHub {
    /// A hub for a relay bound at `addr`; connections run under `drain` and are told to go
    /// away when [`RelayHub::shutdown`] runs.
    pub fn new(
        limits: tether_relay::Config,
        addr: SocketAddr,
        drain: Drain,
    ) -> Result<RelayHub, tether_relay::ConfigError> {
        let relay = Relay::new(limits.clone())?;
        let metrics = Metrics::new();
        metrics.connections.set(0.0);
        metrics.sessions.set(0.0);
        metrics.log_bytes.set(0.0);
        metrics.queued_bytes.set(0.0);
        Ok(RelayHub {
            core: Mutex::new(Core {
                relay,
                sinks: HashMap::new(),
                reported: Stats::default(),
                gauges: [0; 4],
                metrics,
            }),
            next: AtomicU64::new(1),
            addr,
            max_frame: limits.max_frame_bytes,
            drain,
        })
    }

    /// Where the relay listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // The engine never panics on input; if a bug did, serving on beats stopping every UI.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the engine, then hands its outputs to the connections.
    fn with<R>(&self, f: impl FnOnce(&mut Relay) -> R) -> R {
        let mut core = self.lock();
        let r = f(&mut core.relay);
        core.flush();
        r
    }

    /// Tells every connection the server is going away (1001) after what is queued for it.
    pub fn shutdown(&self) {
        self.with(|r| r.handle_shutdown(close::GOING_AWAY, "server shutting down"));
    }

    /// The accept loop's router: every path upgrades, once `guard` (Host and Origin checks)
    /// admitted the request.
    pub fn router(self: Arc<RelayHub>, guard: Arc<crate::guard::Guard>) -> Router {
        Router::new().fallback(upgrade).with_state(self).layer(
            axum::middleware::from_fn_with_state(guard, crate::guard::enforce),
        )
    }
}

impl Core {
    fn flush(&mut self) {
        while let Some(output) = self.relay.poll_output() {
            match output {
                Output::Send { conn, frame } => {
                    if let Some(sink) = self.sinks.get(&conn) {
                        let text = Utf8Bytes::try_from(frame.into_bytes())
                            .unwrap_or_else(|_| Utf8Bytes::from_static("{}"));
                        let _ = sink.tx.send(Out::Frame(text));
                    }
                }
                Output::Close { conn, code, reason } => {
                    if let Some(sink) = self.sinks.remove(&conn) {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        if code == close::POLICY {
                            // Too slow (or refused): do not wait behind the queue.
                            if let Ok(mut slot) = sink.urgent.lock() {
                                *slot = Some(frame);
                            }
                            sink.done.cancel();
                        } else {
                            let _ = sink.tx.send(Out::Close(frame));
                        }
                    }
                }
            }
        }
        self.report();
    }

    /// Moves the engine's counters to the metrics registry. Runs after every input, so it
    /// touches the registry only for what changed: an update is an atomic operation or two per
    /// metric, and doing all eighteen per frame cost more than a tenth of the relay's CPU.
    fn report(&mut self) {
        let s = self.relay.stats();
        let p = self.reported;
        let m = &self.metrics;
        if s != p {
            for (counter, now, before) in [
                (&m.frames_in, s.frames_in, p.frames_in),
                (&m.bytes_in, s.bytes_in, p.bytes_in),
                (&m.frames_out, s.frames_out, p.frames_out),
                (&m.bytes_out, s.bytes_out, p.bytes_out),
                (&m.unannounced, s.dropped_unannounced, p.dropped_unannounced),
                (
                    &m.invalid_announce,
                    s.dropped_invalid_announce,
                    p.dropped_invalid_announce,
                ),
                (&m.too_big, s.closed_too_big, p.closed_too_big),
                (&m.too_slow, s.closed_too_slow, p.closed_too_slow),
                (&m.over_budget, s.closed_over_budget, p.closed_over_budget),
                (&m.binary, s.closed_binary, p.closed_binary),
                (&m.refused, s.refused, p.refused),
                (&m.synthesized, s.synthesized_offline, p.synthesized_offline),
                (&m.evicted, s.log_evicted, p.log_evicted),
                (&m.suspended, s.logs_suspended, p.logs_suspended),
            ] {
                if now != before {
                    counter.increment(now - before);
                }
            }
            self.reported = s;
        }
        let now = [
            self.relay.connection_count(),
            self.relay.session_count(),
            self.relay.log_bytes(),
            self.relay.total_queued_bytes(),
        ];
        if now != self.gauges {
            let gauges = [&m.connections, &m.sessions, &m.log_bytes, &m.queued_bytes];
            for ((gauge, value), before) in gauges.into_iter().zip(now).zip(self.gauges) {
                if value != before {
                    gauge.set(value as f64);
                }
            }
            self.gauges = now;
        }
    }
}

/// Handles to the relay's metrics, looked up once (a lookup per frame would cost more than the
/// relaying).
struct Metrics {
    frames_in: Counter,
    bytes_in: Counter,
    frames_out: Counter,
    bytes_out: Counter,
    unannounced: Counter,
    invalid_announce: Counter,
    too_big: Counter,
    too_slow: Counter,
    over_budget: Counter,
    binary: Counter,
    refused: Counter,
    synthesized: Counter,
    evicted: Counter,
    suspended: Counter,
    connections: Gauge,
    sessions: Gauge,
    log_bytes: Gauge,
    queued_bytes: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let dropped =
            |reason: &'static str| counter!("tether_relay_dropped_total", "reason" => reason);
        let closed =
            |reason: &'static str| counter!("tether_relay_closed_total", "reason" => reason);
        Metrics {
            frames_in: counter!("tether_relay_frames_in_total"),
            bytes_in: counter!("tether_relay_bytes_in_total"),
            frames_out: counter!("tether_relay_frames_out_total"),
            bytes_out: counter!("tether_relay_bytes_out_total"),
            unannounced: dropped("unannounced"),
            invalid_announce: dropped("invalid_announce"),
            too_big: closed("too_big"),
            too_slow: closed("too_slow"),
            over_budget: closed("over_budget"),
            binary: closed("binary"),
            refused: closed("refused"),
            synthesized: counter!("tether_relay_synthesized_offline_total"),
            evicted: counter!("tether_relay_log_evicted_total"),
            suspended: counter!("tether_relay_log_suspended_total"),
            connections: gauge!("tether_relay_connections"),
            sessions: gauge!("tether_relay_sessions"),
            log_bytes: gauge!("tether_relay_log_bytes"),
            queued_bytes: gauge!("tether_relay_queued_bytes"),
        }
    }
}

#[derive(Deserialize)]
struct Params {
    session: Option<String>,
}

/// Any request on the relay port: a WebSocket upgrade joins `?session=` (default `""`);
/// anything else gets 426 with a hint.
async fn upgrade(
    State(hub): State<Arc<RelayHub>>,
    query: Result<Query<Params>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "This is the tether UI relay (sidekick protocol): connect with a WebSocket, \
             e.g. ws://HOST:PORT/?session=ID. The page is /ui on the HTTP listener.\n",
        )
            .into_response();
    };
    let session = match query {
        Ok(Query(p)) => p.session.unwrap_or_default(),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad query: {e}\n")).into_response(),
    };
    let tuning = Tuning {
        write_buffer: 16 * 1024,
        ..Tuning::new(hub.max_frame)
    };
    hub.drain
        .clone()
        .upgrade(ws, tuning, move |socket| run(hub, socket, session))
}

async fn run(hub: Arc<RelayHub>, socket: WebSocket, session: String) {
    if hub.drain.shutdown.is_cancelled() {
        return;
    }
    let conn = ConnId(hub.next.fetch_add(1, Ordering::Relaxed));
    let (tx, rx) = mpsc::unbounded_channel();
    let done = CancellationToken::new();
    let urgent = Arc::new(Mutex::new(None));
    {
        let mut core = hub.lock();
        core.sinks.insert(
            conn,
            Sink {
                tx,
                done: done.clone(),
                urgent: urgent.clone(),
            },
        );
        core.relay.handle_connect(conn, &session);
        core.flush();
    }
    let (sink, mut stream) = socket.split();
    let writer = Writer::spawn(
        &done,
        write_loop(hub.clone(), conn, sink, rx, done.clone(), urgent),
    );
    let max = hub.max_frame;
    loop {
        let read = tokio::select! {
            biased;
            _ = done.cancelled() => break,
            r = socket::read(&mut stream, max) => r,
        };
        match read {
            Read::Text(text) => {
                hub.with(|r| r.handle_text(conn, text.as_str(), now_ms()));
            }
            Read::Binary(_) => hub.with(|r| r.handle_binary(conn, now_ms())),
            Read::Closed(_) => {
                // Gone for the session now; the reply to its close goes out at once.
                hub.with(|r| r.handle_close(conn, now_ms()));
                socket::answer_close(&mut stream).await;
                break;
            }
            Read::Gone => break,
            Read::Failed(frame) => {
                let mut core = hub.lock();
                core.relay.handle_close(conn, now_ms());
                if let Some(sink) = core.sinks.remove(&conn) {
                    let _ = sink.tx.send(Out::Close(frame));
                }
                core.flush();
                break;
            }
        }
    }
    {
        // Gone: an online peer that did not say goodbye gets a synthesized offline. Dropping the
        // sink ends the writer once it wrote what is queued.
        let mut core = hub.lock();
        core.relay.handle_close(conn, now_ms());
        core.sinks.remove(&conn);
        core.flush();
    }
    writer.finish().await;
}

/// The relay's queue items, and what it learns from each flushed batch.
struct Frames<'a> {
    hub: &'a RelayHub,
    conn: ConnId,
}

impl Batch for Frames<'_> {
    type Item = Out;
    fn write(&mut self, item: Out) -> Write {
        match item {
            Out::Frame(t) => Write::Frame(Message::Text(t)),
            Out::Close(frame) => Write::Close(frame),
        }
    }
    fn flushed(&mut self, bytes: usize) {
        self.hub.with(|r| r.handle_sent(self.conn, bytes));
    }
}

/// Writes queued frames in batches (`feed` each, one `flush`) and reports what it wrote, so the
/// engine can tell a slow reader; ends with the close frame it was given.
async fn write_loop(
    hub: Arc<RelayHub>,
    conn: ConnId,
    mut sink: WsSink,
    mut rx: mpsc::UnboundedReceiver<Out>,
    done: CancellationToken,
    urgent: Arc<Mutex<Option<CloseFrame>>>,
) {
    let mut frames = Frames { hub: &hub, conn };
    let closed = tokio::select! {
        biased;
        _ = done.cancelled() => false,
        r = socket::write_queue(&mut sink, &mut rx, &mut frames) => {
            !matches!(r, Ok(socket::Ended::Drained))
        }
    };
    if !closed {
        let frame = urgent.lock().ok().and_then(|mut s| s.take());
        match frame {
            Some(frame) => socket::fail_within(&mut sink, frame, URGENT_CLOSE).await,
            // The peer went away or closed (its close was answered): flush what is left.
            None => {
                let _ = tokio::time::timeout(socket::CLOSE_FLUSH, sink.close()).await;
            }
        }
    }
    done.cancel();
}

#[cfg(test)]
mod tests {
    #[test]
    fn close_reasons_fit_a_close_frame() {
        // A close reason is at most 123 bytes.
        for reason in [
            format!("too slow: more than {} bytes queued", usize::MAX),
            format!(
                "too slow: the relay's outgoing budget of {} bytes is used up",
                usize::MAX
            ),
            "binary frames are not part of the sidekick protocol: send JSON text".to_owned(),
            format!(
                "frame of {} bytes is over the limit of {} bytes",
                usize::MAX,
                usize::MAX
            ),
        ] {
            assert!(reason.len() <= 123, "{reason}");
        }
    }
}
