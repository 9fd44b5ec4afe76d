//! `tether._native`: the Python extension module behind the `tether` package.
//!
//! It owns one tokio runtime, created on first use and shut down by [`close`] (which the Python
//! package also registers with `atexit`), and starts the `tether-server` app in-process on it.
//! Awaitables handed to asyncio run on that runtime through pyo3-async-runtimes' generic API, so
//! that `close()` can join every task before the interpreter finalizes (a task still running
//! then crashes the process at exit: pyo3-async-runtimes' tokio runtime outlives the interpreter).
//!
//! ```python
//! from tether import _native
//! srv = _native.serve(http="127.0.0.1:0", tcp="127.0.0.1:0")
//! print(srv.http_addr, srv.tcp_addr)
//! srv.stop(); srv.wait(5.0)
//! _native.close()
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use pyo3::prelude::*;
use tether_server::config::{RelayAddr, ServeArgs};
use tether_server::server::Server;
use tokio_util::sync::CancellationToken;

mod bridge;
mod errors;
mod js;
mod json;
mod runtime;
mod sync;

use errors::{ConfigError, ServerError, TetherError};
use runtime::{RUNTIME, awaitable, block_on, duration, handle, lock};

/// Servers started in this process, so `close()` can stop and join them.
static SERVERS: Mutex<Vec<Weak<ServerInner>>> = Mutex::new(Vec::new());

/// Stops every server, joins them, then shuts the runtime down; a no-op when nothing runs.
///
/// `timeout` (seconds) bounds the wait for the servers' drains and again the runtime shutdown.
#[pyfunction]
#[pyo3(signature = (timeout = 5.0))]
fn close(py: Python<'_>, timeout: f64) -> PyResult<()> {
    let timeout = duration(timeout)?;
    let servers: Vec<Arc<ServerInner>> = lock(&SERVERS)
        .drain(..)
        .filter_map(|w| w.upgrade())
        .collect();
    let Some(h) = lock(&RUNTIME).as_ref().map(|rt| rt.handle().clone()) else {
        return Ok(());
    };
    // Without the GIL: tasks finishing now may need it to resolve their asyncio futures.
    py.detach(|| {
        for s in &servers {
            s.stop.cancel();
        }
        block_on(&h, async {
            let all = async {
                for s in &servers {
                    s.done.cancelled().await;
                }
            };
            let _ = tokio::time::timeout(timeout, all).await;
        })?;
        // Taken only now, so that a task spawned during the drain still found this runtime.
        if let Some(rt) = lock(&RUNTIME).take() {
            rt.shutdown_timeout(timeout);
        }
        Ok(())
    })
}

/// The package version (the crate's, which `pyproject.toml` takes as its own).
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Whether the runtime exists (created by the first use, dropped by `close()`).
#[pyfunction]
fn runtime_alive() -> bool {
    lock(&RUNTIME).is_some()
}

/// Resolves after `seconds` on the Rust runtime: the smallest awaited native future, for tests.
#[pyfunction]
fn sleep(py: Python<'_>, seconds: f64) -> PyResult<Bound<'_, PyAny>> {
    let d = duration(seconds)?;
    awaitable(py, async move {
        tokio::time::sleep(d).await;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The embedded server

struct ServerInner {
    /// Cancel to begin the drain.
    stop: CancellationToken,
    /// Cancelled once the server task ended (drained, or failed).
    done: CancellationToken,
    /// The server task's error, once it ended with one.
    error: Mutex<Option<String>>,
}

impl ServerInner {
    fn result(&self) -> PyResult<()> {
        match lock(&self.error).as_ref() {
            Some(e) => Err(ServerError::new_err(e.clone())),
            None => Ok(()),
        }
    }
}

/// A running embedded server. Stopped by `stop()`, joined by `wait()` / `await wait_async()`.
#[pyclass(module = "tether._native", frozen)]
struct NativeServer {
    inner: Arc<ServerInner>,
    websockets: bridge::Registry,
    #[pyo3(get)]
    http_addr: String,
    #[pyo3(get)]
    tcp_addr: String,
    /// The UI relay's address, `None` when it is off (or its default port was taken).
    #[pyo3(get)]
    relay_addr: Option<String>,
}

#[pymethods]
impl NativeServer {
    /// Begins the drain: clients are told, listeners close. Returns at once.
    fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// True until the server task has ended.
    #[getter]
    fn running(&self) -> bool {
        !self.inner.done.is_cancelled()
    }

    /// Waits (without the GIL) for the server to end; `False` if `timeout` seconds passed first.
    /// Raises `ServerError` if it ended with an error.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let limit = timeout.map(duration).transpose()?;
        if !self.inner.done.is_cancelled() {
            let h = handle()?;
            let done = self.inner.done.clone();
            let finished = py.detach(|| {
                block_on(&h, async move {
                    match limit {
                        Some(d) => tokio::time::timeout(d, done.cancelled()).await.is_ok(),
                        None => {
                            done.cancelled().await;
                            true
                        }
                    }
                })
            })?;
            if !finished {
                return Ok(false);
            }
        }
        self.inner.result().map(|()| true)
    }

    /// An awaitable that resolves once the server has ended (raises `ServerError` on failure).
    fn wait_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        awaitable(py, async move {
            inner.done.cancelled().await;
            inner.result()
        })
    }

    /// Serves WebSocket connections to `path`: each is upgraded, then `callback(NativeWebSocket)`
    /// is scheduled on `event_loop`. The limits default to the server's (`None`). Raises
    /// `ConfigError` for a bad, built-in or taken path and for limits that cannot work.
    #[pyo3(signature = (
        path, callback, event_loop, *, max_message_bytes = None, incoming_bytes = None,
        outgoing_bytes = None, max_connections = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_websocket(
        &self,
        path: &str,
        callback: Py<PyAny>,
        event_loop: Py<PyAny>,
        max_message_bytes: Option<i64>,
        incoming_bytes: Option<i64>,
        outgoing_bytes: Option<i64>,
        max_connections: Option<i64>,
    ) -> PyResult<()> {
        let options = bridge::Options {
            max_message_bytes: positive("max_message_bytes", max_message_bytes)?,
            incoming_bytes: positive("incoming_bytes", incoming_bytes)?,
            outgoing_bytes: positive("outgoing_bytes", outgoing_bytes)?,
            max_connections: positive("max_connections", max_connections)?,
        };
        self.websockets.add(path, callback, event_loop, options)
    }

    /// Stops serving `path` (later requests get 404; open connections go on). False if nothing
    /// was registered there.
    fn remove_websocket(&self, path: &str) -> bool {
        self.websockets.remove(path)
    }

    fn __repr__(&self) -> String {
        let state = if self.running() { "running" } else { "stopped" };
        format!(
            "<NativeServer http={} tcp={} {state}>",
            self.http_addr, self.tcp_addr
        )
    }
}

fn addr(name: &str, value: &str) -> PyResult<SocketAddr> {
    value.parse().map_err(|_| {
        ConfigError::new_err(format!(
            "invalid {name} address {value:?}: expected IP:PORT, e.g. 127.0.0.1:8700 (port 0 picks a free port)"
        ))
    })
}

fn positive(name: &str, v: Option<i64>) -> PyResult<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if n >= 1 => usize::try_from(n)
            .map(Some)
            .map_err(|_| ConfigError::new_err(format!("{name} is too large: {n}"))),
        Some(n) => Err(ConfigError::new_err(format!(
            "{name} must be at least 1, got {n}"
        ))),
    }
}

/// Starts the server in-process; returns once both listeners are bound.
///
/// Options are the `tether serve` flags with `_` for `-`; `None` means the file's value or the
/// default. Raises `ConfigError` for a bad setting and `ServerError` when a listener cannot bind.
#[pyfunction]
#[pyo3(signature = (
    http = None, tcp = None, *, config = None, max_clients = None, max_message_length = None,
    max_rooms = None, queue_capacity = None, tls_cert = None, tls_key = None, shutdown_grace = None,
    relay = None, allowed_origins = None, allowed_hosts = None,
    websocket_max_connections = None, websocket_incoming_bytes = None,
    websocket_outgoing_bytes = None, data = None, bus = None
))]
#[allow(clippy::too_many_arguments)]
fn serve(
    py: Python<'_>,
    http: Option<&str>,
    tcp: Option<&str>,
    config: Option<PathBuf>,
    max_clients: Option<i64>,
    max_message_length: Option<i64>,
    max_rooms: Option<i64>,
    queue_capacity: Option<i64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    shutdown_grace: Option<f64>,
    relay: Option<&str>,
    allowed_origins: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    websocket_max_connections: Option<i64>,
    websocket_incoming_bytes: Option<i64>,
    websocket_outgoing_bytes: Option<i64>,
    data: Option<PathBuf>,
    bus: Option<String>,
) -> PyResult<NativeServer> {
    let websocket_defaults = bridge::Defaults::new(
        positive("websocket_max_connections", websocket_max_connections)?,
        positive("websocket_incoming_bytes", websocket_incoming_bytes)?,
        positive("websocket_outgoing_bytes", websocket_outgoing_bytes)?,
    )?;
    let relay = relay
        .map(|r| {
            r.parse::<RelayAddr>().map_err(|e| {
                ConfigError::new_err(format!(
                    "invalid relay address: {e} (port 0 picks a free port)"
                ))
            })
        })
        .transpose()?;
    let shutdown_grace = match shutdown_grace {
        None => None,
        Some(s) if s >= 0.0 && s.is_finite() => Some(s.ceil() as u64),
        Some(s) => {
            return Err(ConfigError::new_err(format!(
                "shutdown_grace must be a number of seconds >= 0, got {s}"
            )));
        }
    };
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(ConfigError::new_err(
            "tls_cert and tls_key must be given together",
        ));
    }
    let args = ServeArgs {
        http: http.map(|a| addr("http", a)).transpose()?,
        tcp: tcp.map(|a| addr("tcp", a)).transpose()?,
        config,
        max_clients: positive("max_clients", max_clients)?,
        max_message_length: positive("max_message_length", max_message_length)?,
        max_rooms: positive("max_rooms", max_rooms)?,
        queue_capacity: positive("queue_capacity", queue_capacity)?,
        tls_cert,
        tls_key,
        shutdown_grace,
        relay,
        allowed_origins,
        allowed_hosts,
        data,
        bus,
        ..ServeArgs::default()
    };
    let cfg = args
        .resolve()
        .map_err(|e| ConfigError::new_err(e.to_string()))?;
    let h = handle()?;
    let tls = cfg.tls.is_some();
    let bound = py.detach(|| block_on(&h, Server::bind(cfg)))?;
    let server = bound.map_err(|e| ServerError::new_err(format!("{e:#}")))?;
    let websockets = bridge::Registry::new(websocket_defaults);
    let server = websockets.mount(server, tls);
    let (http_addr, tcp_addr) = (
        server.http_addr().to_string(),
        server.tcp_addr().to_string(),
    );
    let relay_addr = server.relay_addr().map(|a| a.to_string());
    let inner = Arc::new(ServerInner {
        stop: CancellationToken::new(),
        done: CancellationToken::new(),
        error: Mutex::new(None),
    });
    let task_inner = inner.clone();
    h.spawn(async move {
        let _done = task_inner.done.clone().drop_guard();
        let stop = task_inner.stop.clone();
        if let Err(e) = server.serve(stop.cancelled_owned()).await {
            *lock(&task_inner.error) = Some(format!("{e:#}"));
        }
    });
    let mut all = lock(&SERVERS);
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(&inner));
    Ok(NativeServer {
        inner,
        websockets,
        http_addr,
        tcp_addr,
        relay_addr,
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TetherError", py.get_type::<TetherError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(close, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_alive, m)?)?;
    m.add_function(wrap_pyfunction!(sleep, m)?)?;
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add_class::<NativeServer>()?;
    m.add_class::<bridge::NativeWebSocket>()?;
    m.add_class::<sync::SyncSession>()?;
    m.add_function(wrap_pyfunction!(sync::sync_disconnect_frame, m)?)?;
    m.add_function(wrap_pyfunction!(sync::sync_parse_user_session, m)?)?;
    m.add(
        "SYNC_REQUEST_USER_SESSION",
        sync::REQUEST_USER_SESSION_FRAME,
    )?;
    m.add("js", js::module(py)?)?;
    Ok(())
}
