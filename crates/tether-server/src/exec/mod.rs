//! `tether exec`: the `/ws/claude` and `/ws/exec/<name>` endpoints that run one configured
//! command per WebSocket connection, plus `GET /exec/endpoints` and `GET /exec/processes`.
//! The rules live in the sans-IO `tether-exec` crate; this module spawns the processes
//! ([`child`]), answers for every process they start until it is gone ([`tree`]) and drives one
//! session per socket ([`conn`]).

mod child;
mod conn;
mod tree;

pub use tree::{become_subreaper, reap_adopted};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use metrics::{counter, gauge};
use serde::Deserialize;
use serde_json::{Value, json};
use tether_exec::Endpoint;

use crate::socket::{Drain, Tuning, error_response, page};

/// Largest client frame on an exec socket (a request, or a line for stdin); a bigger one closes
/// the socket with 1009.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// 8 KiB to read, tungstenite's default write threshold, client frames up to
/// [`MAX_CLIENT_FRAME`].
const TUNING: Tuning = Tuning {
    write_buffer: 128 * 1024,
    ..Tuning::new(MAX_CLIENT_FRAME)
};

/// The endpoints, the process limits and the table of running processes: the exec routes'
/// state.
pub struct ExecHub {
    endpoints: Vec<Arc<Endpoint>>,
    drain: Drain,
    max_processes: usize,
    kill_grace: Duration,
    close_grace: Duration,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Slots taken (a slot is taken just before the spawn, so this may exceed `procs`).
    running: usize,
    per_endpoint: BTreeMap<String, usize>,
    procs: BTreeMap<u64, ProcInfo>,
}

struct ProcInfo {
    endpoint: String,
    pid: u32,
    started: SystemTime,
    since: Instant,
    bytes_out: Arc<AtomicU64>,
}

/// A taken process slot; dropping it frees the slot and forgets the process.
pub struct Slot {
    hub: Arc<ExecHub>,
    id: u64,
    endpoint: String,
    /// Bytes sent to the client for this process (shown by `/exec/processes`).
    pub bytes_out: Arc<AtomicU64>,
}

impl ExecHub {
    /// A hub for these endpoints and limits, whose connections run under `drain`; `kill_grace`
    /// is the SIGTERM → SIGKILL delay, `close_grace` how long queued output may still go out
    /// once a shutdown or a timeout closes.
    pub fn new(
        drain: Drain,
        endpoints: Vec<Arc<Endpoint>>,
        max_processes: usize,
        kill_grace: Duration,
        close_grace: Duration,
    ) -> Self {
        gauge!("tether_exec_running").increment(0.0); // listed from the start
        counter!("tether_refused_total", "reason" => "token", "listener" => "http").increment(0);
        ExecHub {
            endpoints,
            drain,
            max_processes,
            kill_grace,
            close_grace,
            table: Mutex::new(Table::default()),
        }
    }

    /// On shutdown, once the connections are done: kills and reaps whatever exec descendants
    /// are left (as a subreaper; see [`tree::sweep`]).
    pub async fn sweep(&self) {
        let n = tree::sweep(self.kill_grace).await;
        if n > 0 {
            tracing::info!("exec: stopped {n} leftover process(es) on shutdown");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoint called `name`.
    pub fn endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.name == name).cloned()
    }

    /// Takes a slot for one process of `ep`, or says which limit is full.
    pub fn acquire(self: &Arc<Self>, ep: &Endpoint) -> Result<Slot, String> {
        let mut t = self.lock();
        if t.running >= self.max_processes {
            counter!("tether_exec_refused_total", "endpoint" => ep.name.clone(), "limit" => "global")
                .increment(1);
            return Err(format!(
                "{} exec processes running, the server's limit",
                self.max_processes
            ));
        }
        let mine = t.per_endpoint.get(&ep.name).copied().unwrap_or(0);
        if let Some(max) = ep.max_concurrent
            && mine >= max
        {
            counter!("tether_exec_refused_total", "endpoint" => ep.name.clone(), "limit" => "endpoint")
                .increment(1);
            return Err(format!("{max} {} processes running, its limit", ep.name));
        }
        t.running += 1;
        t.per_endpoint.insert(ep.name.clone(), mine + 1);
        t.next_id += 1;
        gauge!("tether_exec_running").increment(1.0);
        Ok(Slot {
            hub: self.clone(),
            id: t.next_id,
            endpoint: ep.name.clone(),
            bytes_out: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Running processes, oldest first.
    fn processes(&self) -> Value {
        let t = self.lock();
        let list: Vec<Value> = t
            .procs
            .iter()
            .map(|(id, p)| {
                json!({
                    "id": id,
                    "endpoint": p.endpoint,
                    "pid": p.pid,
                    "started": p.started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                    "elapsed_ms": p.since.elapsed().as_millis() as u64,
                    "bytes_out": p.bytes_out.load(Ordering::Relaxed),
                })
            })
            .collect();
        json!({ "running": t.running, "max_processes": self.max_processes, "processes": list })
    }

    /// Every endpoint with what a form needs to call it.
    fn describe(&self) -> Value {
        let list: Vec<Value> = self
            .endpoints
            .iter()
            .map(|e| {
                let mut paths = vec![format!("/ws/exec/{}", e.name)];
                if e.name == "claude" {
                    paths.insert(0, "/ws/claude".to_owned());
                }
                json!({
                    "name": e.name,
                    "path": paths[0],
                    "paths": paths,
                    "protocol": e.protocol,
                    "params": e.schema,
                    "stdin": e.stdin,
                    "stderr": e.stderr,
                    "timeout_s": e.timeout.as_secs_f64(),
                    "max_concurrent": e.max_concurrent,
                    "max_line_bytes": e.max_line_bytes,
                    "argv": e.template.program(),
                    "token": e.token.is_some(),
                })
            })
            .collect();
        json!({ "max_processes": self.max_processes, "endpoints": list })
    }
}

impl Slot {
    /// Records the spawned process for `/exec/processes`.
    fn started(&self, pid: u32) {
        let mut t = self.hub.lock();
        t.procs.insert(
            self.id,
            ProcInfo {
                endpoint: self.endpoint.clone(),
                pid,
                started: SystemTime::now(),
                since: Instant::now(),
                bytes_out: self.bytes_out.clone(),
            },
        );
        counter!("tether_exec_started_total", "endpoint" => self.endpoint.clone()).increment(1);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.hub.lock();
        t.procs.remove(&self.id);
        t.running = t.running.saturating_sub(1);
        if let Some(n) = t.per_endpoint.get_mut(&self.endpoint) {
            *n = n.saturating_sub(1);
        }
        // Process-wide (servers embedded side by side share the recorder): count, never set.
        gauge!("tether_exec_running").decrement(1.0);
    }
}

/// The exec routes, served by `hub`.
pub fn router<S>(hub: Arc<ExecHub>) -> Router<S> {
    Router::new()
        .route("/ws/claude", get(claude))
        .route("/ws/exec/{name}", get(named))
        .route("/exec", get(exec_page))
        .route("/exec/endpoints", get(endpoints))
        .route("/exec/processes", get(processes))
        .with_state(hub)
}

/// The upgrade, or why the request is not one (answered only once the endpoint is known).
type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// The `token` query parameter (other parameters are the request frame's business).
#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The `?token=` query, or why it could not be read (then there is no token).
type TokenParam = Result<Query<TokenQuery>, QueryRejection>;

async fn claude(
    ws: Upgrade,
    State(hub): State<Arc<ExecHub>>,
    headers: HeaderMap,
    query: TokenParam,
) -> Response {
    upgrade(ws, hub, "claude", &headers, query)
}

async fn named(
    ws: Upgrade,
    State(hub): State<Arc<ExecHub>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: TokenParam,
) -> Response {
    upgrade(ws, hub, &name, &headers, query)
}

/// Whether the request carries `ep`'s token (when it has one) as `?token=` or
/// `Authorization: Bearer`.
fn authorized(ep: &Endpoint, headers: &HeaderMap, query: TokenParam) -> bool {
    let Some(token) = &ep.token else {
        return true;
    };
    let from_query = query.ok().and_then(|Query(q)| q.token);
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    // Both compared, so the time taken does not say which one was given.
    let q = from_query.is_some_and(|t| token.matches(&t));
    let h = from_header.is_some_and(|t| token.matches(&t));
    q | h
}

fn upgrade(
    ws: Upgrade,
    hub: Arc<ExecHub>,
    name: &str,
    headers: &HeaderMap,
    query: TokenParam,
) -> Response {
    let Some(ep) = hub.endpoint(name) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no exec endpoint {name:?} (GET /exec/endpoints lists them)"),
        );
    };
    if !authorized(&ep, headers, query) {
        counter!("tether_refused_total", "reason" => "token", "listener" => "http").increment(1);
        let mut resp = error_response(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            &format!(
                "exec endpoint {name:?} needs its token: ?token=TOKEN or Authorization: Bearer TOKEN"
            ),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let shutdown = hub.drain.shutdown.clone();
    hub.drain.clone().upgrade(ws, TUNING, move |socket| {
        conn::run(hub, ep, socket, shutdown)
    })
}

/// `GET /exec`: the page that runs the endpoints (`web/exec.html`).
async fn exec_page() -> Response {
    page("exec.html")
}

async fn endpoints(State(hub): State<Arc<ExecHub>>) -> Response {
    Json(hub.describe()).into_response()
}

async fn processes(State(hub): State<Arc<ExecHub>>) -> Response {
    Json(hub.processes()).into_response()
}

/// Names the exec metrics for `/metrics`.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!("tether_exec_running", "Exec processes running now.");
    describe_counter!(
        "tether_exec_started_total",
        "Exec processes started, by endpoint."
    );
    describe_counter!(
        "tether_exec_killed_total",
        "Signals sent to exec process groups (TERM on timeout/close/shutdown, KILL after the grace), by endpoint and signal."
    );
    describe_counter!(
        "tether_exec_descendants_stopped_total",
        "Processes an exec command left behind (a background job, a descendant that left its process group) found still running after its connection and stopped, by endpoint."
    );
    describe_counter!(
        "tether_exec_refused_total",
        "Exec requests refused because a process limit was full, by endpoint and limit."
    );
}
