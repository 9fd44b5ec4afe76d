//! Python WebSocket endpoints served over the server's own WebSocket path.
//!
//! Each embedded server carries a [`Registry`] of paths → (Python callback, asyncio loop,
//! limits), consulted per request through the server's fallback hook, so endpoints can be added
//! and removed while it runs. A connection to a registered path takes a slot under the
//! endpoint's and the server's connection caps (refused with 1013 before the handler runs when
//! either is full), is upgraded by axum, then handed to the callback on its loop
//! (`loop.call_soon_threadsafe(callback, NativeWebSocket)`); the Python package wraps it as
//! `tether.WebSocket` and runs the handler. Frames cross over two queues bounded in bytes:
//! incoming (a peer that sends more than the handler reads is closed with 1008) and outgoing
//! (`send_*` awaits room; a frame bigger than the whole budget is an error). Reading, the close
//! codes and the close handshake are the server's shared socket code
//! ([`tether_server::socket`]). Every way a connection ends records one `(code, reason)`, which
//! a pending `receive()` then returns as `websocket.disconnect`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};
use pyo3::{IntoPyObject, intern};
use tether_server::server::{Fallback, PeerAddr, Server, is_reserved};
use tether_server::socket::{
    self, Batch, CLOSE_WAIT, Drain, Read, Tuning, Write, WsSink, WsStream, close_frame,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::errors::ConfigError;
use crate::runtime::{awaitable, lock};

/// Default largest accepted message (and frame); a bigger one closes the connection with 1009.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
/// Default bytes of frames read from the peer and not yet received by the handler.
pub(crate) const INCOMING_BYTES: usize = 4 << 20;
/// Default bytes of frames the handler sent and the socket has not taken yet.
pub(crate) const OUTGOING_BYTES: usize = 4 << 20;
/// Default cap on open connections to all the Python endpoints of one server.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// What a queued frame costs beyond its payload (its slot and bookkeeping), so that a flood of
/// empty frames is bounded too.
pub(crate) const FRAME_OVERHEAD: usize = 64;
/// Largest byte budget of a queue (a frame's cost must fit a semaphore request).
const MAX_BUDGET: usize = u32::MAX as usize;

// ---------------------------------------------------------------------------------------------
// Limits

/// The server-wide defaults of the Python endpoints (`tether.serve(websocket_...=)`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Defaults {
    /// Cap on open connections to all endpoints together.
    pub(crate) max_connections: usize,
    /// Incoming budget of each connection, in bytes.
    pub(crate) incoming_bytes: usize,
    /// Outgoing budget of each connection, in bytes.
    pub(crate) outgoing_bytes: usize,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            max_connections: MAX_CONNECTIONS,
            incoming_bytes: INCOMING_BYTES,
            outgoing_bytes: OUTGOING_BYTES,
        }
    }
}

impl Defaults {
    /// Checks the budgets; `None` values keep the defaults.
    pub(crate) fn new(
        max_connections: Option<usize>,
        incoming_bytes: Option<usize>,
        outgoing_bytes: Option<usize>,
    ) -> PyResult<Defaults> {
        let d = Defaults::default();
        let out = Defaults {
            max_connections: max_connections.unwrap_or(d.max_connections),
            incoming_bytes: incoming_bytes.unwrap_or(d.incoming_bytes),
            outgoing_bytes: outgoing_bytes.unwrap_or(d.outgoing_bytes),
        };
        budget("websocket_incoming_bytes", out.incoming_bytes)?;
        budget("websocket_outgoing_bytes", out.outgoing_bytes)?;
        Ok(out)
    }
}

fn budget(name: &str, bytes: usize) -> PyResult<usize> {
    if bytes <= FRAME_OVERHEAD || bytes > MAX_BUDGET {
        return Err(ConfigError::new_err(format!(
            "{name} must be between {} and {MAX_BUDGET} bytes, got {bytes}",
            FRAME_OVERHEAD + 1
        )));
    }
    Ok(bytes)
}

/// One endpoint's settings as `server.websocket(...)` gave them (`None`: the server's default).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    pub(crate) max_message_bytes: Option<usize>,
    pub(crate) incoming_bytes: Option<usize>,
    pub(crate) outgoing_bytes: Option<usize>,
    pub(crate) max_connections: Option<usize>,
}

/// One endpoint's limits, resolved against the server's defaults.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_message: usize,
    incoming: usize,
    outgoing: usize,
    max_connections: Option<usize>,
}

impl Limits {
    /// Resolves `o` against `d`. The incoming budget holds at least one message of the largest
    /// size: when not given it grows to that; given smaller, it is an error.
    fn resolve(o: Options, d: Defaults) -> PyResult<Limits> {
        let max_message = o.max_message_bytes.unwrap_or(MAX_MESSAGE);
        if max_message == 0 || max_message > MAX_BUDGET - FRAME_OVERHEAD {
            return Err(ConfigError::new_err(format!(
                "max_message_bytes must be between 1 and {} bytes, got {max_message}",
                MAX_BUDGET - FRAME_OVERHEAD
            )));
        }
        let least = max_message + FRAME_OVERHEAD;
        let incoming = match o.incoming_bytes {
            Some(n) => {
                budget("incoming_bytes", n)?;
                if n < least {
                    return Err(ConfigError::new_err(format!(
                        "incoming_bytes ({n}) must hold one message of max_message_bytes \
                         ({max_message}) plus {FRAME_OVERHEAD}: give at least {least}"
                    )));
                }
                n
            }
            None => d.incoming_bytes.max(least),
        };
        let outgoing = match o.outgoing_bytes {
            Some(n) => budget("outgoing_bytes", n)?,
            None => d.outgoing_bytes,
        };
        Ok(Limits {
            max_message,
            incoming,
            outgoing,
            max_connections: o.max_connections,
        })
    }
}

/// A taken connection slot: one of the endpoint's and one of the server's, given back on drop.
struct Slot {
    endpoint: Arc<AtomicUsize>,
    server: Arc<AtomicUsize>,
}

impl Slot {
    /// A slot, or `None` (with why) when the endpoint's or the server's cap is full.
    fn take(
        server: &Arc<AtomicUsize>,
        max_server: usize,
        endpoint: &Arc<AtomicUsize>,
        max_endpoint: Option<usize>,
    ) -> Result<Slot, String> {
        if server.fetch_add(1, Ordering::AcqRel) >= max_server {
            server.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "too many connections: the server's Python endpoints take {max_server}"
            ));
        }
        let mine = endpoint.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = max_endpoint
            && mine >= max
        {
            endpoint.fetch_sub(1, Ordering::AcqRel);
            server.fetch_sub(1, Ordering::AcqRel);
            return Err(format!("too many connections: this endpoint takes {max}"));
        }
        Ok(Slot {
            endpoint: endpoint.clone(),
            server: server.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.endpoint.fetch_sub(1, Ordering::AcqRel);
        self.server.fetch_sub(1, Ordering::AcqRel);
    }
}

// ---------------------------------------------------------------------------------------------
// Registry and routing

/// A registered endpoint: the Python callable that starts a handler, the loop it runs on, its
/// limits and its open connections.
struct Endpoint {
    callback: Py<PyAny>,
    event_loop: Py<PyAny>,
    limits: Limits,
    open: Arc<AtomicUsize>,
}

/// The Python WebSocket endpoints of one server by path, shared with its router, with the
/// server-wide defaults and the count of open connections under the server-wide cap.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    endpoints: Arc<RwLock<HashMap<String, Arc<Endpoint>>>>,
    defaults: Defaults,
    open: Arc<AtomicUsize>,
}

impl Registry {
    /// An empty registry with these server-wide defaults.
    pub(crate) fn new(defaults: Defaults) -> Registry {
        Registry {
            defaults,
            ..Registry::default()
        }
    }

    /// Mounts the registry on `server`'s fallback hook; `tls` picks the `wss` scheme.
    pub(crate) fn mount(&self, server: Server, tls: bool) -> Server {
        let ctx = Arc::new(Ctx {
            registry: self.clone(),
            drain: Drain {
                shutdown: server.shutdown_signal(),
                tracker: server.tracker(),
            },
            scheme: if tls { "wss" } else { "ws" },
        });
        let fallback: Fallback = Arc::new(move |req| {
            let ctx = ctx.clone();
            Box::pin(async move { ctx.route(req).await })
        });
        server.with_fallback(fallback)
    }

    /// Registers `callback` (called on `event_loop` with each new connection) at `path`.
    pub(crate) fn add(
        &self,
        path: &str,
        callback: Py<PyAny>,
        event_loop: Py<PyAny>,
        options: Options,
    ) -> PyResult<()> {
        check_path(path)?;
        let limits = Limits::resolve(options, self.defaults)?;
        let mut map = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(path) {
            return Err(ConfigError::new_err(format!(
                "a WebSocket handler is already registered at {path}; remove_websocket({path:?}) first"
            )));
        }
        map.insert(
            path.to_owned(),
            Arc::new(Endpoint {
                callback,
                event_loop,
                limits,
                open: Arc::new(AtomicUsize::new(0)),
            }),
        );
        Ok(())
    }

    /// Unregisters `path`; open connections go on. False if nothing was registered there.
    pub(crate) fn remove(&self, path: &str) -> bool {
        // Dropped here, with the caller's GIL, rather than later on a runtime thread.
        let removed = self
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        removed.is_some()
    }

    fn get(&self, path: &str) -> Option<Arc<Endpoint>> {
        let map = self.endpoints.read().unwrap_or_else(|p| p.into_inner());
        map.get(path).cloned()
    }
}

fn check_path(path: &str) -> PyResult<()> {
    if !path.starts_with('/') {
        return Err(ConfigError::new_err(format!(
            "a WebSocket path must start with '/', got {path:?}"
        )));
    }
    if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new_err(format!(
            "a WebSocket path is a plain URL path without query, fragment or spaces, got {path:?}"
        )));
    }
    if is_reserved(path) {
        return Err(ConfigError::new_err(format!(
            "{path} is taken by a built-in route or page of the server; pick another path"
        )));
    }
    Ok(())
}

/// What the fallback needs to serve a connection.
struct Ctx {
    registry: Registry,
    /// The server's drain: its connections are tracked there and told when it shuts down.
    drain: Drain,
    scheme: &'static str,
}

/// What the handler learns about its connection.
struct ConnInfo {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    client: Option<SocketAddr>,
    scheme: &'static str,
}

impl Ctx {
    /// Serves a registered path; hands any other request back to the server.
    async fn route(self: Arc<Self>, req: Request) -> Result<Response, Request> {
        let Some(endpoint) = self.registry.get(req.uri().path()) else {
            return Err(req);
        };
        let (mut parts, _body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(u) => u,
            Err(rejection) => return Ok(upgrade_required(&path, &rejection.body_text())),
        };
        let info = ConnInfo {
            path,
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_owned(), v)
                })
                .collect(),
            client: parts
                .extensions
                .get::<ConnectInfo<PeerAddr>>()
                .map(|c| c.0.0),
            scheme: self.scheme,
        };
        // Taken before the upgrade so that connections still upgrading count too.
        let slot = Slot::take(
            &self.registry.open,
            self.registry.defaults.max_connections,
            &endpoint.open,
            endpoint.limits.max_connections,
        );
        let tuning = Tuning::new(endpoint.limits.max_message);
        let ctx = self.clone();
        Ok(self.drain.upgrade(upgrade, tuning, move |socket| {
            run(ctx, endpoint, info, socket, slot)
        }))
    }
}

/// `426 Upgrade Required` for a request to a WebSocket path that is not a WebSocket handshake.
fn upgrade_required(path: &str, why: &str) -> Response {
    let body = format!(
        "{{\"error\":\"UPGRADE_REQUIRED\",\"message\":{}}}",
        json_string(&format!(
            "{path} is a WebSocket endpoint: connect with a WebSocket client ({why})"
        ))
    );
    (
        StatusCode::UPGRADE_REQUIRED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
        ],
        body,
    )
        .into_response()
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// One connection

/// A frame read from the peer, or the end of the connection; becomes an ASGI message dict.
enum Incoming {
    Text(Utf8Bytes),
    Binary(Bytes),
    Disconnect(u16, String),
}

impl Incoming {
    /// What it counts against the incoming budget.
    fn cost(&self) -> usize {
        match self {
            Incoming::Text(t) => t.len() + FRAME_OVERHEAD,
            Incoming::Binary(b) => b.len() + FRAME_OVERHEAD,
            Incoming::Disconnect(..) => 0,
        }
    }
}

impl<'py> IntoPyObject<'py> for Incoming {
    type Target = PyDict;
    type Output = Bound<'py, PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        match self {
            Incoming::Text(t) => {
                d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
                d.set_item(intern!(py, "text"), t.as_str())?;
            }
            Incoming::Binary(b) => {
                d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
                d.set_item(intern!(py, "bytes"), PyBytes::new(py, &b))?;
            }
            Incoming::Disconnect(code, reason) => {
                d.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
                d.set_item(intern!(py, "code"), code)?;
                d.set_item(intern!(py, "reason"), reason)?;
            }
        }
        Ok(d)
    }
}

/// What the handler queues for the socket; a frame holds its share of the outgoing budget until
/// it was written.
enum Outgoing {
    Frame(Message, OwnedSemaphorePermit),
    Close(CloseFrame),
}

/// The state a connection's socket tasks and its Python object share.
struct Shared {
    out: mpsc::UnboundedSender<Outgoing>,
    /// The outgoing budget in bytes: `send_*` takes a frame's cost from it, the writer gives it
    /// back once the frame was written.
    room: Arc<Semaphore>,
    outgoing: usize,
    incoming: tokio::sync::Mutex<mpsc::UnboundedReceiver<Incoming>>,
    /// Bytes read from the peer and not yet received by the handler.
    queued_in: AtomicUsize,
    /// Cancelled once the connection's end is decided (`end` holds why).
    ended: CancellationToken,
    end: Mutex<Option<(u16, String)>>,
    /// Cancelled to close now, without sending what is queued: server shutdown (a child of its
    /// token), a read error, an inbound overflow, a full queue at close, the handler's object
    /// dropped.
    kill: CancellationToken,
    kill_frame: Mutex<Option<CloseFrame>>,
}

impl Shared {
    /// Records how the connection ends; true for the first call only.
    fn end(&self, code: u16, reason: &str) -> bool {
        let mut end = lock(&self.end);
        if end.is_some() {
            return false;
        }
        *end = Some((code, reason.to_owned()));
        self.ended.cancel();
        true
    }

    /// Ends the connection now with `frame`, skipping whatever is still queued.
    fn abort(&self, frame: CloseFrame) {
        if self.end(frame.code, frame.reason.as_str()) {
            *lock(&self.kill_frame) = Some(frame);
            self.kill.cancel();
        }
    }

    /// The recorded end, or 1006 (abnormal closure) if none was.
    fn disconnect(&self) -> Incoming {
        let (code, reason) = lock(&self.end)
            .clone()
            .unwrap_or((close_code::ABNORMAL, String::new()));
        Incoming::Disconnect(code, reason)
    }
}

/// Serves one upgraded connection: hands it to Python, then pumps frames both ways.
async fn run(
    ctx: Arc<Ctx>,
    endpoint: Arc<Endpoint>,
    info: ConnInfo,
    socket: WebSocket,
    slot: Result<Slot, String>,
) {
    let (sink, stream) = socket.split();
    let limits = endpoint.limits;
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        out: out_tx,
        room: Arc::new(Semaphore::new(limits.outgoing)),
        outgoing: limits.outgoing,
        incoming: tokio::sync::Mutex::new(in_rx),
        queued_in: AtomicUsize::new(0),
        ended: CancellationToken::new(),
        end: Mutex::new(None),
        kill: ctx.drain.shutdown.child_token(),
        kill_frame: Mutex::new(None),
    });
    let refused = if ctx.drain.shutdown.is_cancelled() {
        Some(socket::going_away())
    } else if let Err(why) = &slot {
        Some(close_frame(close_code::AGAIN, why))
    } else {
        let s = shared.clone();
        // The GIL may take a while: wait for it off the runtime's worker threads.
        match tokio::task::spawn_blocking(move || dispatch(&endpoint, s, info)).await {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(close_frame(close_code::ERROR, &why)),
            Err(_) => Some(close_frame(close_code::ERROR, "cannot start the handler")),
        }
    };
    if let Some(frame) = refused {
        let mut sink = sink;
        socket::fail(&mut sink, frame).await;
        return;
    }
    let reader_done = CancellationToken::new();
    let close_sent = CancellationToken::new();
    tokio::join!(
        read_loop(stream, in_tx, &shared, limits, &reader_done, &close_sent),
        write_loop(
            sink,
            out_rx,
            &shared,
            &ctx.drain.shutdown,
            &reader_done,
            &close_sent
        ),
    );
    drop(slot);
}

/// Schedules the endpoint's callback with a new `NativeWebSocket` on its loop; says why not.
fn dispatch(endpoint: &Endpoint, shared: Arc<Shared>, info: ConnInfo) -> Result<(), String> {
    let attached = Python::try_attach(|py| {
        let event_loop = endpoint.event_loop.bind(py);
        let closed = event_loop
            .call_method0(intern!(py, "is_closed"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(true);
        if closed {
            return Err("the handler's event loop is closed".to_owned());
        }
        let path = info.path.clone();
        let ws = NativeWebSocket::new(shared, info);
        let scheduled = Py::new(py, ws).and_then(|ws| {
            event_loop.call_method1(
                intern!(py, "call_soon_threadsafe"),
                (endpoint.callback.bind(py), ws),
            )
        });
        match scheduled {
            Ok(_) => Ok(()),
            Err(e) => {
                log_warning(
                    py,
                    &format!("cannot start the WebSocket handler for {path}: {e}"),
                );
                Err("cannot start the handler".to_owned())
            }
        }
    });
    attached.unwrap_or_else(|| Err("the Python interpreter is shutting down".to_owned()))
}

/// Logs on Python's `tether.websocket` logger; a failure to log is not worth more.
fn log_warning(py: Python<'_>, message: &str) {
    let _ = py
        .import(intern!(py, "logging"))
        .and_then(|m| m.call_method1(intern!(py, "getLogger"), ("tether.websocket",)))
        .and_then(|l| l.call_method1(intern!(py, "warning"), (message,)));
}

/// Reads frames into the incoming queue until the peer closes (answered at once), the stream
/// ends, the peer breaks the protocol (the connection is failed: dropped once the close frame is
/// out), or the close handshake the writer began times out. A peer that overflows the incoming
/// budget is closed with 1008; what it sends after that is read and dropped.
async fn read_loop(
    mut stream: WsStream,
    tx: mpsc::UnboundedSender<Incoming>,
    shared: &Shared,
    limits: Limits,
    reader_done: &CancellationToken,
    close_sent: &CancellationToken,
) {
    let deadline = async {
        close_sent.cancelled().await;
        tokio::time::sleep(CLOSE_WAIT).await;
    };
    tokio::pin!(deadline);
    loop {
        let read = tokio::select! {
            biased;
            _ = &mut deadline => break,
            r = socket::read(&mut stream, limits.max_message) => r,
        };
        let item = match read {
            Read::Text(t) => Incoming::Text(t),
            Read::Binary(b) => Incoming::Binary(b),
            Read::Closed(frame) => {
                let (code, reason) = frame
                    .map(|f| (f.code, f.reason.as_str().to_owned()))
                    .unwrap_or((close_code::STATUS, String::new()));
                shared.end(code, &reason);
                socket::answer_close(&mut stream).await;
                break;
            }
            Read::Gone => {
                shared.end(close_code::ABNORMAL, "");
                break;
            }
            Read::Failed(frame) => {
                shared.abort(frame);
                // Nothing more can be read: drop the connection once the close frame is out.
                let _ = tokio::time::timeout(CLOSE_WAIT, close_sent.cancelled()).await;
                break;
            }
        };
        if shared.ended.is_cancelled() {
            continue; // after our close, frames are read (to finish the handshake) and dropped
        }
        let cost = item.cost();
        let queued = shared.queued_in.fetch_add(cost, Ordering::AcqRel) + cost;
        if queued > limits.incoming {
            shared.abort(close_frame(
                close_code::POLICY,
                &format!(
                    "the handler is not reading: more than {} bytes queued",
                    limits.incoming
                ),
            ));
            continue;
        }
        let _ = tx.send(item);
    }
    drop(tx);
    reader_done.cancel();
}

/// The queue's frames; their budget goes back once a batch was flushed.
struct Frames {
    written: Vec<OwnedSemaphorePermit>,
}

impl Batch for Frames {
    type Item = Outgoing;
    fn write(&mut self, item: Outgoing) -> Write {
        match item {
            Outgoing::Frame(m, permit) => {
                self.written.push(permit);
                Write::Frame(m)
            }
            Outgoing::Close(frame) => Write::Close(frame),
        }
    }
    fn flushed(&mut self, _bytes: usize) {
        self.written.clear();
    }
}

/// Writes queued frames in batches; ends with the close frame the connection's end calls for.
async fn write_loop(
    mut sink: WsSink,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: &Shared,
    shutdown: &CancellationToken,
    reader_done: &CancellationToken,
    close_sent: &CancellationToken,
) {
    enum Stop {
        Kill,
        PeerGone,
        Closed,
        Failed,
    }
    let mut frames = Frames {
        written: Vec::new(),
    };
    let stop = tokio::select! {
        biased;
        _ = shared.kill.cancelled() => Stop::Kill,
        _ = reader_done.cancelled() => Stop::PeerGone,
        r = socket::write_queue(&mut sink, &mut rx, &mut frames) => match r {
            Ok(socket::Ended::Closed) => Stop::Closed,
            Ok(socket::Ended::Drained) => Stop::Kill,
            Err(_) => Stop::Failed,
        },
    };
    drop(frames);
    let frame = match stop {
        Stop::Closed | Stop::PeerGone => None,
        Stop::Kill => Some(lock(&shared.kill_frame).take().unwrap_or_else(|| {
            if shutdown.is_cancelled() {
                socket::going_away()
            } else {
                close_frame(close_code::ERROR, "connection ended")
            }
        })),
        Stop::Failed => {
            shared.end(close_code::ABNORMAL, "write failed");
            None
        }
    };
    if let Some(frame) = frame {
        shared.end(frame.code, frame.reason.as_str());
        socket::fail(&mut sink, frame).await;
    }
    close_sent.cancel();
}

// ---------------------------------------------------------------------------------------------
// The Python object

/// One accepted WebSocket connection, already upgraded; `tether.WebSocket` wraps it.
#[pyclass(module = "tether._native", frozen)]
pub(crate) struct NativeWebSocket {
    shared: Arc<Shared>,
    /// The request path.
    #[pyo3(get)]
    path: String,
    /// The raw query string, without `?` (empty if none).
    #[pyo3(get)]
    query: String,
    /// The request headers as `(lowercase name, value)` pairs, in order.
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    /// The peer's `(host, port)`, if known.
    #[pyo3(get)]
    client: Option<(String, u16)>,
    /// `ws`, or `wss` behind TLS.
    #[pyo3(get)]
    scheme: &'static str,
}

impl NativeWebSocket {
    /// The handle the sync engine's binding writes through.
    pub(crate) fn sink(&self) -> Sink {
        Sink(self.shared.clone())
    }

    fn new(shared: Arc<Shared>, info: ConnInfo) -> NativeWebSocket {
        NativeWebSocket {
            shared,
            path: info.path,
            query: info.query,
            headers: info.headers,
            client: info.client.map(|a| (a.ip().to_string(), a.port())),
            scheme: info.scheme,
        }
    }

    fn send<'py>(&self, py: Python<'py>, msg: Message, len: usize) -> PyResult<Bound<'py, PyAny>> {
        let cost = len.saturating_add(FRAME_OVERHEAD);
        if cost > self.shared.outgoing {
            return Err(PyValueError::new_err(format!(
                "a frame of {len} bytes cannot be sent: the endpoint's outgoing budget is {} \
                 bytes ({FRAME_OVERHEAD} of them per frame); raise outgoing_bytes",
                self.shared.outgoing
            )));
        }
        let shared = self.shared.clone();
        awaitable(py, async move {
            if shared.ended.is_cancelled() {
                return Ok(false);
            }
            // The budget is at most u32::MAX (checked at registration), and so is `cost`.
            let want = u32::try_from(cost).unwrap_or(u32::MAX);
            let permit = tokio::select! {
                biased;
                _ = shared.ended.cancelled() => return Ok(false),
                p = shared.room.clone().acquire_many_owned(want) => p,
            };
            match permit {
                Ok(p) => Ok(shared.out.send(Outgoing::Frame(msg, p)).is_ok()),
                Err(_) => Ok(false),
            }
        })
    }
}

/// What [`Sink::try_send`] did with a frame.
pub(crate) enum SinkSend {
    /// Queued for the writer.
    Sent,
    /// The outgoing budget lacks room for this many bytes now: wait ([`Sink::room`]), retry.
    Full(u32),
    /// The connection has ended; the frame is dropped.
    Ended,
    /// The frame is bigger than the whole budget and can never be sent.
    TooBig,
}

/// A connection's outgoing queue as Rust code sees it: the sync engine's binding writes the
/// frames it produces here, under the same byte budget as `send_*`, without a Python string or
/// awaitable per frame.
#[derive(Clone)]
pub(crate) struct Sink(Arc<Shared>);

impl Sink {
    /// Queues a frame if the budget has room now.
    pub(crate) fn try_send(&self, msg: Message, len: usize) -> SinkSend {
        let shared = &self.0;
        if shared.ended.is_cancelled() {
            return SinkSend::Ended;
        }
        let cost = len.saturating_add(FRAME_OVERHEAD);
        if cost > shared.outgoing {
            return SinkSend::TooBig;
        }
        // The budget is at most u32::MAX (checked at registration), and so is `cost`.
        let want = u32::try_from(cost).unwrap_or(u32::MAX);
        match shared.room.clone().try_acquire_many_owned(want) {
            Ok(p) => match shared.out.send(Outgoing::Frame(msg, p)) {
                Ok(()) => SinkSend::Sent,
                Err(_) => SinkSend::Ended,
            },
            Err(tokio::sync::TryAcquireError::NoPermits) => SinkSend::Full(want),
            Err(tokio::sync::TryAcquireError::Closed) => SinkSend::Ended,
        }
    }

    /// An awaitable that resolves once `cost` bytes of the budget are free, or the connection
    /// ended.
    pub(crate) fn room<'py>(&self, py: Python<'py>, cost: u32) -> PyResult<Bound<'py, PyAny>> {
        let shared = self.0.clone();
        awaitable(py, async move {
            tokio::select! {
                biased;
                _ = shared.ended.cancelled() => {}
                p = shared.room.acquire_many(cost) => drop(p),
            }
            Ok(())
        })
    }

    /// Closes after the queued frames, as `NativeWebSocket.close`.
    pub(crate) fn close(&self, code: u16, reason: &str) -> PyResult<bool> {
        close_shared(&self.0, code, reason)
    }
}

/// Closes with `code` and `reason` after the queued frames (at once if the budget is spent);
/// false if the connection had already ended. Shared by `NativeWebSocket.close` and [`Sink`].
fn close_shared(shared: &Shared, code: u16, reason: &str) -> PyResult<bool> {
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(PyValueError::new_err(format!(
            "invalid WebSocket close code {code}: use 1000-1003, 1007-1014 or 3000-4999"
        )));
    }
    let frame = close_frame(code, reason);
    if !shared.end(code, frame.reason.as_str()) {
        return Ok(false);
    }
    let full = shared.room.available_permits() < FRAME_OVERHEAD;
    if full || shared.out.send(Outgoing::Close(frame.clone())).is_err() {
        *lock(&shared.kill_frame) = Some(frame);
        shared.kill.cancel();
    }
    Ok(true)
}

impl Drop for NativeWebSocket {
    fn drop(&mut self) {
        // The handler's side is gone without closing: do not leave the peer hanging.
        self.shared
            .abort(close_frame(close_code::ERROR, "the handler went away"));
    }
}

#[pymethods]
impl NativeWebSocket {
    /// An awaitable of the next ASGI message: `websocket.receive` with `text` or `bytes`, or
    /// `websocket.disconnect` with `code` and `reason` once the connection has ended.
    fn receive<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shared = self.shared.clone();
        awaitable(py, async move {
            let mut rx = shared.incoming.lock().await;
            let msg = tokio::select! {
                biased;
                m = rx.recv() => m,
                _ = shared.ended.cancelled() => rx.try_recv().ok(),
            };
            if let Some(m) = &msg {
                shared.queued_in.fetch_sub(m.cost(), Ordering::AcqRel);
            }
            Ok(msg.unwrap_or_else(|| shared.disconnect()))
        })
    }

    /// An awaitable that queues a text frame, waiting while the outgoing budget is spent;
    /// resolves to False once the connection has ended (nothing is sent then). Raises
    /// ValueError for a frame bigger than the whole budget.
    fn send_text<'py>(&self, py: Python<'py>, data: String) -> PyResult<Bound<'py, PyAny>> {
        let len = data.len();
        self.send(py, Message::Text(data.into()), len)
    }

    /// An awaitable that queues a binary frame (bytes-like), like `send_text`.
    fn send_bytes<'py>(&self, py: Python<'py>, data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
        let len = data.len();
        self.send(py, Message::Binary(Bytes::copy_from_slice(&data)), len)
    }

    /// Closes with `code` and `reason` after the frames already queued (at once if the outgoing
    /// budget is spent: the peer is not reading). Returns False if the connection had already
    /// ended.
    #[pyo3(signature = (code = 1000, reason = ""))]
    fn close(&self, code: u16, reason: &str) -> PyResult<bool> {
        close_shared(&self.shared, code, reason)
    }

    /// `(code, reason)` once the connection has ended, else None.
    #[getter]
    fn closed(&self) -> Option<(u16, String)> {
        lock(&self.shared.end).clone()
    }

    fn __repr__(&self) -> String {
        let state = match lock(&self.shared.end).as_ref() {
            Some((code, _)) => format!("closed {code}"),
            None => "open".to_owned(),
        };
        format!("<NativeWebSocket {} {state}>", self.path)
    }
}
