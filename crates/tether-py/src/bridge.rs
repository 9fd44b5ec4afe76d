//! Python WebSocket endpoints served over the server's own WebSocket path.
//!
//! Each embedded server carries a [`Registry`] of paths → (Python callback, asyncio loop),
//! consulted per request through the server's fallback hook, so endpoints can be added and
//! removed while it runs. A connection to a registered path is upgraded by axum, then handed to
//! the callback on its loop (`loop.call_soon_threadsafe(callback, NativeWebSocket)`); the Python
//! package wraps it as `tether.WebSocket` and runs the handler. Frames cross over two bounded
//! queues: incoming (the socket reader waits when it is full, so TCP backpressure reaches the
//! peer) and outgoing (`send_*` awaits room). Every way a connection ends records one
//! `(code, reason)`, which a pending `receive()` then returns as `websocket.disconnect`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};
use pyo3::{IntoPyObject, intern};
use tether_server::server::{Fallback, PeerAddr, Server, is_reserved};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{ConfigError, awaitable, lock};

/// Frames read from the peer and not yet received by the handler; then the reader waits.
const INCOMING: usize = 64;
/// Frames the handler sent and the socket has not taken yet; then `send_*` waits.
const OUTGOING: usize = 256;
/// Largest accepted message (and frame); a bigger one closes the connection with 1009.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
/// How long a close handshake may take before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a socket whose peer sent something unreadable stays open after the close frame.
const LINGER: Duration = Duration::from_secs(1);
/// Longest close reason a close frame carries (125 bytes of payload minus the code).
const MAX_REASON: usize = 123;

// ---------------------------------------------------------------------------------------------
// Registry and routing

/// A registered endpoint: the Python callable that starts a handler, and the loop it runs on.
struct Endpoint {
    callback: Py<PyAny>,
    event_loop: Py<PyAny>,
}

/// The Python WebSocket endpoints of one server by path, shared with its router.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<RwLock<HashMap<String, Arc<Endpoint>>>>);

impl Registry {
    /// Mounts the registry on `server`'s fallback hook; `tls` picks the `wss` scheme.
    pub(crate) fn mount(&self, server: Server, tls: bool) -> Server {
        let ctx = Arc::new(Ctx {
            registry: self.clone(),
            shutdown: server.shutdown_signal(),
            tracker: server.tracker(),
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
    ) -> PyResult<()> {
        check_path(path)?;
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
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
            }),
        );
        Ok(())
    }

    /// Unregisters `path`; open connections go on. False if nothing was registered there.
    pub(crate) fn remove(&self, path: &str) -> bool {
        // Dropped here, with the caller's GIL, rather than later on a runtime thread.
        let removed = self
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        removed.is_some()
    }

    fn get(&self, path: &str) -> Option<Arc<Endpoint>> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
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
    shutdown: CancellationToken,
    tracker: TaskTracker,
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
        let ctx = self.clone();
        Ok(upgrade
            .read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024)
            .max_message_size(MAX_MESSAGE)
            .max_frame_size(MAX_MESSAGE)
            .on_upgrade(move |socket| {
                let tracker = ctx.tracker.clone();
                tracker.track_future(run(ctx, endpoint, info, socket))
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

/// What the handler queues for the socket.
enum Outgoing {
    Frame(Message),
    Close(CloseFrame),
}

/// The state a connection's socket tasks and its Python object share.
struct Shared {
    out: mpsc::Sender<Outgoing>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    /// Cancelled once the connection's end is decided (`end` holds why).
    ended: CancellationToken,
    end: Mutex<Option<(u16, String)>>,
    /// Cancelled to close now, without sending what is queued: server shutdown (a child of its
    /// token), a read error, a full queue at close, the handler's object dropped.
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

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: reason[..end].into(),
    }
}

/// Serves one upgraded connection: hands it to Python, then pumps frames both ways.
async fn run(ctx: Arc<Ctx>, endpoint: Arc<Endpoint>, info: ConnInfo, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let (out_tx, out_rx) = mpsc::channel(OUTGOING);
    let (in_tx, in_rx) = mpsc::channel(INCOMING);
    let shared = Arc::new(Shared {
        out: out_tx,
        incoming: tokio::sync::Mutex::new(in_rx),
        ended: CancellationToken::new(),
        end: Mutex::new(None),
        kill: ctx.shutdown.child_token(),
        kill_frame: Mutex::new(None),
    });
    let refused = if ctx.shutdown.is_cancelled() {
        Some(close_frame(close_code::AWAY, "server shutting down"))
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
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
        return;
    }
    let reader_done = CancellationToken::new();
    let close_sent = CancellationToken::new();
    tokio::join!(
        read_loop(stream, in_tx, &shared, &reader_done, &close_sent),
        write_loop(
            sink,
            out_rx,
            &shared,
            &ctx.shutdown,
            &reader_done,
            &close_sent
        ),
    );
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

/// The close frame for a read error: 1009 for a message over the limit, 1002 for a protocol
/// error, 1011 otherwise.
fn close_for(e: axum::Error) -> CloseFrame {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = e.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => close_frame(
            close_code::SIZE,
            &format!("message exceeds {MAX_MESSAGE} bytes"),
        ),
        Some(WsError::Protocol(p)) => {
            close_frame(close_code::PROTOCOL, &format!("protocol error: {p}"))
        }
        _ => close_frame(close_code::ERROR, "read error"),
    }
}

/// Reads frames into the incoming queue until the peer closes, the stream ends, or the close
/// handshake the writer began times out.
async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    tx: mpsc::Sender<Incoming>,
    shared: &Shared,
    reader_done: &CancellationToken,
    close_sent: &CancellationToken,
) {
    let deadline = async {
        close_sent.cancelled().await;
        tokio::time::sleep(CLOSE_WAIT).await;
    };
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut deadline => break,
            m = stream.next() => m,
        };
        let item = match msg {
            Some(Ok(Message::Text(t))) => Incoming::Text(t),
            Some(Ok(Message::Binary(b))) => Incoming::Binary(b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (f.code, f.reason.as_str().to_owned()))
                    .unwrap_or((close_code::STATUS, String::new()));
                shared.end(code, &reason);
                // Read on: the next read sends tungstenite's close reply and ends the stream.
                continue;
            }
            None => {
                shared.end(close_code::ABNORMAL, "");
                break;
            }
            Some(Err(e)) => {
                shared.abort(close_for(e));
                // The peer may still be sending (e.g. the rest of an oversized frame): dropping
                // the socket with unread data resets it, which can destroy the close frame in
                // flight. Give the peer a moment to read it first.
                let _ = tokio::time::timeout(CLOSE_WAIT, close_sent.cancelled()).await;
                tokio::time::sleep(LINGER).await;
                break;
            }
        };
        if shared.ended.is_cancelled() {
            continue; // after a close, frames are read (to finish the handshake) and dropped
        }
        tokio::select! {
            biased;
            _ = shared.ended.cancelled() => {}
            _ = tx.send(item) => {}
        }
    }
    drop(tx);
    reader_done.cancel();
}

/// Writes queued frames in batches; ends with the close frame the connection's end calls for.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: &Shared,
    shutdown: &CancellationToken,
    reader_done: &CancellationToken,
    close_sent: &CancellationToken,
) {
    enum Stop {
        Kill,
        PeerGone,
        Close(CloseFrame),
        Failed,
    }
    let work = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(item) = next {
                match item {
                    Outgoing::Frame(m) => sink.feed(m).await?,
                    Outgoing::Close(frame) => return Ok(Some(frame)),
                }
                next = rx.try_recv().ok();
            }
            sink.flush().await?;
        }
        Ok::<_, axum::Error>(None)
    };
    let stop = tokio::select! {
        biased;
        _ = shared.kill.cancelled() => Stop::Kill,
        _ = reader_done.cancelled() => Stop::PeerGone,
        r = work => match r {
            Ok(Some(frame)) => Stop::Close(frame),
            Ok(None) => Stop::Kill,
            Err(_) => Stop::Failed,
        },
    };
    let frame = match stop {
        Stop::Close(frame) => Some(frame),
        Stop::Kill => Some(lock(&shared.kill_frame).take().unwrap_or_else(|| {
            if shutdown.is_cancelled() {
                close_frame(close_code::AWAY, "server shutting down")
            } else {
                close_frame(close_code::ERROR, "connection ended")
            }
        })),
        Stop::PeerGone => None,
        Stop::Failed => {
            shared.end(close_code::ABNORMAL, "write failed");
            None
        }
    };
    if let Some(frame) = frame {
        shared.end(frame.code, frame.reason.as_str());
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
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

    fn send<'py>(&self, py: Python<'py>, msg: Message) -> PyResult<Bound<'py, PyAny>> {
        let shared = self.shared.clone();
        awaitable(py, async move {
            if shared.ended.is_cancelled() {
                return Ok(false);
            }
            Ok(tokio::select! {
                biased;
                _ = shared.ended.cancelled() => false,
                r = shared.out.send(Outgoing::Frame(msg)) => r.is_ok(),
            })
        })
    }
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
            Ok(msg.unwrap_or_else(|| shared.disconnect()))
        })
    }

    /// An awaitable that queues a text frame, waiting for room; resolves to False once the
    /// connection has ended (nothing is sent then).
    fn send_text<'py>(&self, py: Python<'py>, data: String) -> PyResult<Bound<'py, PyAny>> {
        self.send(py, Message::Text(data.into()))
    }

    /// An awaitable that queues a binary frame (bytes-like), like `send_text`.
    fn send_bytes<'py>(&self, py: Python<'py>, data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
        self.send(py, Message::Binary(Bytes::copy_from_slice(&data)))
    }

    /// Closes with `code` and `reason` after the frames already queued (at once if the queue is
    /// full). Returns False if the connection had already ended.
    #[pyo3(signature = (code = 1000, reason = ""))]
    fn close(&self, code: u16, reason: &str) -> PyResult<bool> {
        let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
        if !valid {
            return Err(PyValueError::new_err(format!(
                "invalid WebSocket close code {code}: use 1000-1003, 1007-1014 or 3000-4999"
            )));
        }
        let frame = close_frame(code, reason);
        if !self.shared.end(code, frame.reason.as_str()) {
            return Ok(false);
        }
        if self
            .shared
            .out
            .try_send(Outgoing::Close(frame.clone()))
            .is_err()
        {
            *lock(&self.shared.kill_frame) = Some(frame);
            self.shared.kill.cancel();
        }
        Ok(true)
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
