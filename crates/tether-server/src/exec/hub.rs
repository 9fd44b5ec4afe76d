//! The exec routes' state: the endpoints, the process limits and the table of running
//! processes, and the slot each process holds while it runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge};
use serde_json::{Value, json};
use tether_exec::Endpoint;

use super::tree;
use crate::socket::Drain;

/// Largest client frame on an exec socket (a request, or a line for stdin); a bigger one closes
/// the socket with 1009.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// The endpoints, the process limits and the table of running processes: the exec routes'
/// state.
pub struct ExecHub {
    endpoints: Vec<Arc<Endpoint>>,
    pub(super) drain: Drain,
    max_processes: usize,
    pub(super) kill_grace: Duration,
    pub(super) close_grace: Duration,
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
    pub(super) fn processes(&self) -> Value {
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
    pub(super) fn describe(&self) -> Value {
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
    pub(super) fn started(&self, pid: u32) {
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
