//! Binds the listeners, wires the doors to one hub and runs until a signal (or, embedded, until a
//! shutdown future completes), then drains.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::error::Error;
use crate::exec::ExecHub;
use crate::guard::Guard;
use crate::listen::{Acceptor, Gate};
use crate::relay::RelayHub;
use crate::rooms_state::{self, RoomsState};
use crate::socket::{self, Drain};
use crate::web::UiConfig;
use crate::{demo_sync, echo, exec, listen, rest, sync, tcp, tls, web, ws};

pub use crate::listen::PeerAddr;

/// A REST client that makes no call for this long is closed.
const REST_IDLE: Duration = Duration::from_secs(600);

/// Serves until SIGINT/SIGTERM; returns once clients were told and drained.
///
/// Prints `listening http ADDR`, `listening relay ADDR` (when the relay runs) and
/// `listening tcp ADDR` on stdout once bound, in that order, so a reader waiting for the http and
/// tcp lines has seen the relay line too (tests and scripts read them to find ephemeral ports).
pub async fn run(config: Config) -> Result<(), Error> {
    // Before anything is announced: a signal right after the listening lines must drain, not kill.
    let signals = Signals::install()?;
    let server = Server::bind(config).await?;
    println!("listening http {}", server.http_addr());
    if let Some(addr) = server.relay_addr() {
        println!("listening relay {addr}");
    }
    println!("listening tcp {}", server.tcp_addr());
    server
        .serve(async move {
            let signal = signals.recv().await;
            tracing::info!("{signal}: shutting down, telling clients");
        })
        .await
}

/// A server whose listeners are bound and which serves once [`Server::serve`] is awaited.
pub struct Server {
    /// The rooms doors' state (TCP, `/ws/rooms`, REST).
    state: Arc<RoomsState>,
    /// The exec endpoints' state.
    exec: Arc<ExecHub>,
    /// Where the UI relay listens, when it runs.
    relay_addr: Option<SocketAddr>,
    metrics: PrometheusHandle,
    /// 127.0.0.1 (or the address given) first, then [::1] for the default address.
    http: Vec<TcpListener>,
    tcp: TcpListener,
    relay: Option<(Vec<TcpListener>, Arc<RelayHub>)>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    fallback: Option<Fallback>,
}

/// The future an embedder's [`Fallback`] returns: its response, or the request handed back.
pub type FallbackFuture = Pin<Box<dyn Future<Output = Result<Response, Request>> + Send>>;

/// An embedder's handler for requests no built-in route matches, so that endpoints added while
/// the server runs (e.g. Python WebSocket handlers) need no router rebuild. Handing the request
/// back (`Err`) lets the server's own fallback answer it: a file of `web/` or the JSON 404.
pub type Fallback = Arc<dyn Fn(Request) -> FallbackFuture + Send + Sync>;

/// The paths the built-in routes answer; a `{param}` segment stands for any one segment.
pub const BUILTIN_ROUTES: &[&str] = &[
    "/",
    "/chat",
    "/ws/rooms",
    "/demo/sync",
    "/ws/sync/demo",
    "/ui",
    "/ui/config",
    "/ui/session/{id}",
    "/health",
    "/metrics",
    "/server/status",
    "/clients/register",
    "/clients/pause",
    "/clients/resume",
    "/clients/close",
    "/chatrooms",
    "/chatrooms/join",
    "/chatrooms/list",
    "/chatrooms/{room}",
    "/chatrooms/{room}/history",
    "/messages/send",
    "/messages/client-to-client",
    "/messages",
    "/exec",
    "/ws/claude",
    "/ws/exec/{name}",
    "/exec/endpoints",
    "/exec/processes",
];

/// Whether `path` is taken by the server itself (a built-in route or an embedded file of
/// `web/`), so an embedder's endpoint there would be shadowed or would shadow it.
pub fn is_reserved(path: &str) -> bool {
    let matches = |pattern: &str| {
        let (mut p, mut q) = (pattern.split('/'), path.split('/'));
        loop {
            match (p.next(), q.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b || (a.starts_with('{') && !b.is_empty()) => {}
                _ => return false,
            }
        }
    };
    BUILTIN_ROUTES.iter().any(|r| matches(r))
        || socket::file(path.trim_start_matches('/')).is_some()
}

impl Server {
    /// Binds the HTTP, TCP and relay listeners (port 0 picks a free port) and loads the TLS
    /// files. The relay's default address, when taken, only warns: another relay (the VS Code
    /// extension, another tether) already serves sidekick clients there. A default (or
    /// `localhost:PORT`) address also listens on [::1] when it can.
    pub async fn bind(config: Config) -> Result<Server, Error> {
        let acceptor = match &config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let metrics = metrics_handle()?;
        let listen = |what, addr| move |cause| Error::Listen { what, addr, cause };
        let mut http = vec![
            TcpListener::bind(config.http)
                .await
                .map_err(listen("HTTP", config.http))?,
        ];
        if config.http_ipv6_loopback {
            http.extend(listen::bind_ipv6_loopback(&http[0], "HTTP").await);
        }
        let tcp = TcpListener::bind(config.tcp)
            .await
            .map_err(listen("TCP", config.tcp))?;
        let relay = match config.relay {
            None => None,
            Some(addr) => match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) if !config.relay_required && e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::warn!(
                        "UI relay not started: {addr} is in use (another relay?); \
                         pass --relay ADDR to use another address or --relay off"
                    );
                    None
                }
                Err(e) => return Err(listen("the relay", addr)(e)),
            },
        };
        let relay = match relay {
            Some(l) if config.relay_ipv6_loopback => {
                let v6 = listen::bind_ipv6_loopback(&l, "UI relay").await;
                Some(std::iter::once(l).chain(v6).collect::<Vec<_>>())
            }
            other => other.map(|l| vec![l]),
        };
        let (http_addr, tcp_addr) = (
            http[0].local_addr().map_err(Error::LocalAddr)?,
            tcp.local_addr().map_err(Error::LocalAddr)?,
        );
        let relay_addr = relay
            .as_ref()
            .map(|l| l[0].local_addr())
            .transpose()
            .map_err(Error::LocalAddr)?;
        let drain = Drain::new();
        let exec = Arc::new(ExecHub::new(
            drain.clone(),
            config.exec.clone(),
            config.exec_max_processes,
            config.exec_kill_grace,
            config.exec_close_grace,
        ));
        let limits = config.relay_limits.clone();
        let bus = match config.bus.clone() {
            Some(c) => Some(Arc::new(crate::bus::Bus::new(c).map_err(Error::Bus)?)),
            None => None,
        };
        let state = Arc::new(RoomsState::new(
            config,
            tcp_addr,
            http_addr,
            drain.clone(),
            bus,
        ));
        state.hooks.check().map_err(Error::Hook)?;
        if let Some(dir) = &state.config.data {
            let (store, restored) = crate::store::Store::open(dir, state.config.history.clone())?;
            let clean = restored.clean;
            let rooms = state.attach_store(store, restored)?;
            tracing::info!(
                "rooms and history kept in {}: {rooms} rooms restored{}",
                dir.join(crate::store::DB_FILE).display(),
                if clean || rooms == 0 {
                    ""
                } else {
                    " with new epochs (the last run did not stop in order)"
                }
            );
        }
        let relay = match (relay, relay_addr) {
            (Some(l), Some(addr)) => {
                let hub = RelayHub::new(limits, addr, drain)?;
                Some((l, Arc::new(hub)))
            }
            _ => None,
        };
        Ok(Server {
            state,
            exec,
            relay_addr,
            metrics,
            http,
            tcp,
            relay,
            acceptor,
            fallback: None,
        })
    }

    /// Sends requests that no built-in route matches to `fallback` first: the hook through which
    /// an embedder mounts endpoints, even ones registered after the server started.
    pub fn with_fallback(mut self, fallback: Fallback) -> Server {
        self.fallback = Some(fallback);
        self
    }

    /// Cancelled when the drain begins, so an embedder's connections can say goodbye (1001).
    pub fn shutdown_signal(&self) -> CancellationToken {
        self.state.drain.shutdown.clone()
    }

    /// The connection tasks the drain waits for (up to the grace period); track an embedder's
    /// connections here so that shutdown waits for them too.
    pub fn tracker(&self) -> TaskTracker {
        self.state.drain.tracker.clone()
    }

    /// The address the HTTP listener is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.state.http_addr
    }

    /// The address the rooms TCP listener is bound to.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.state.tcp_addr
    }

    /// The address the UI relay listens on; `None` when it is off (or its default address was
    /// taken).
    pub fn relay_addr(&self) -> Option<SocketAddr> {
        self.relay_addr
    }

    /// Serves until `shutdown` completes, then tells every client and drains (at most the
    /// configured grace period for connections, and again for the HTTP server).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let app = self.router();
        let Server {
            state,
            exec,
            http,
            tcp,
            relay,
            acceptor,
            ..
        } = self;
        let drain = state.drain.clone();
        let grace = Duration::from_secs(state.config.shutdown_grace);
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let limits = state.config.listen.clone();
        let gate = |name, max| Gate::new(name, max, limits.max_connections_per_ip);
        let acceptors = |listeners: Vec<TcpListener>, gate: Arc<Gate>| {
            listeners
                .into_iter()
                .map(|l| Acceptor::new(l, gate.clone()))
                .collect::<Vec<_>>()
        };
        tracing::info!(
            "serving {scheme}://{} (chat page /chat, REST, /ws/rooms, /metrics) and rooms TCP on {}",
            state.http_addr,
            state.tcp_addr
        );
        if state.config.guard.admits_every_origin() {
            tracing::warn!(
                "--allowed-origins includes *: any web page the user visits may open WebSockets \
                 here (rooms, sync, the relay and the exec endpoints)"
            );
        }

        let tcp_gate = gate("tcp", limits.max_connections);
        let tcp_task = tokio::spawn(tcp::serve(
            state.clone(),
            Acceptor::new(tcp, tcp_gate),
            acceptor.clone(),
        ));
        let (relay_task, relay_hub) = match relay {
            Some((listeners, hub)) => {
                let ws = if acceptor.is_some() { "wss" } else { "ws" };
                tracing::info!(
                    "UI relay for sidekick clients on {ws}://{}{}, page /ui",
                    hub.addr(),
                    if listeners.len() > 1 {
                        " and [::1]"
                    } else {
                        ""
                    }
                );
                let guard = Guard::relay(
                    &state.config.guard,
                    hub.addr(),
                    acceptor.is_some(), // with --tls-cert the relay speaks wss:// too
                    state.http_addr,
                    acceptor.is_some(),
                );
                let relay_gate = gate(
                    "relay",
                    state.config.relay_limits.max_connections + listen::RELAY_LISTENER_SLACK,
                );
                let task = tokio::spawn(listen::serve_http(
                    acceptors(listeners, relay_gate),
                    acceptor.clone(),
                    limits.header_timeout,
                    hub.clone().router(Arc::new(guard)),
                    drain.shutdown.clone(),
                ));
                (Some(task), Some(hub))
            }
            None => (None, None),
        };
        let reaper = tokio::spawn(reap_rest_clients(state.clone()));
        // As a subreaper (the binary): zombies of adopted exec descendants, until the sweep.
        let adopted_stop = CancellationToken::new();
        let adopted = tokio::spawn(exec::reap_adopted(adopted_stop.clone()));
        let presence = tokio::spawn(rooms_state::presence_timer(state.clone()));
        let bus_tasks = match &state.bus {
            Some(bus) => {
                tracing::info!("cluster bus on as node {}", bus.node);
                crate::bus::spawn(bus, &state)
            }
            None => Vec::new(),
        };

        let http_gate = gate("http", limits.max_connections);
        let http_task = tokio::spawn(listen::serve_http(
            acceptors(http, http_gate),
            acceptor,
            limits.header_timeout,
            app,
            drain.shutdown.clone(),
        ));

        shutdown.await;
        state.shutdown_all();
        if let Some(hub) = &relay_hub {
            hub.shutdown();
        }
        drain.tracker.close();
        if tokio::time::timeout(grace, drain.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within {grace:?}; dropping them");
        }
        exec.sweep().await;
        adopted_stop.cancel();
        let _ = adopted.await;
        if tokio::time::timeout(grace, http_task).await.is_err() {
            tracing::warn!("http connections did not close within {grace:?}");
        }
        // Both end on the shutdown token; a listener that does not is not worth waiting for.
        let _ = tokio::time::timeout(Duration::from_millis(200), tcp_task).await;
        if let Some(task) = relay_task {
            let _ = tokio::time::timeout(Duration::from_millis(200), task).await;
        }
        let _ = reaper.await;
        let _ = presence.await;
        for task in bus_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        let closing = state.clone();
        let _ = tokio::task::spawn_blocking(move || closing.close_store()).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The Prometheus recorder is process-wide: installed by the first server, shared by the next
/// (servers binding at once, e.g. embedded ones, must not race to install it twice).
fn metrics_handle() -> Result<PrometheusHandle, Error> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| e.to_string())?;
        describe_metrics();
        Ok(handle)
    });
    handle.clone().map_err(Error::Metrics)
}

impl Server {
    /// One router for every door of the HTTP listener: REST, `/ws/rooms`, sync, exec, pages and
    /// metrics, each with its own state, with the embedder's [`Fallback`] consulted before the
    /// server's own. [`Server::serve`] also runs the presence timer
    /// (`rooms_state::presence_timer`); without it, busy rooms' presence batches wait for a
    /// message.
    fn router(&self) -> Router {
        let state = &self.state;
        let drain = &state.drain;
        let ui = UiConfig {
            relay: self.relay_addr,
            tls: state.config.tls.is_some(),
        };
        let demo =
            sync::adapter::route(demo_sync::app(), drain.clone(), state.config.queue_capacity);
        let app = Router::new()
            .route("/", get(web::index))
            .route("/chat", get(web::chat))
            .route("/ws/rooms", get(ws::upgrade))
            .route("/demo/sync", get(demo_sync::page))
            .route("/ws/sync/demo", demo)
            .route("/ui", get(web::ui))
            .route("/ui/session/{id}", get(web::ui))
            .route("/ui/config", get(web::ui_config).with_state(ui))
            .route("/metrics", get(metrics).with_state(self.metrics.clone()))
            .merge(rest::routes())
            .merge(exec::router(self.exec.clone()));
        let app = match echo::enabled() {
            Some(max) => {
                tracing::warn!(
                    "{} is set: serving the test echo door at {} (messages up to {max} bytes)",
                    echo::ENV,
                    echo::PATH
                );
                let drain = drain.clone();
                app.route(
                    echo::PATH,
                    get(move |ws| async move { echo::upgrade(ws, &drain, max) }),
                )
            }
            None => app,
        };
        let app = match self.fallback.clone() {
            None => app.fallback(web::fallback),
            Some(f) => app.fallback(move |req: Request| {
                let f = f.clone();
                async move {
                    match f(req).await {
                        Ok(resp) => resp,
                        Err(req) => web::fallback(req.uri().clone()).await,
                    }
                }
            }),
        };
        let guard = Guard::http(
            &state.config.guard,
            state.http_addr,
            state.config.tls.is_some(),
        );
        app.with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(guard),
                crate::guard::enforce,
            ))
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(handle): State<PrometheusHandle>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

async fn reap_rest_clients(state: Arc<RoomsState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = state.drain.shutdown.cancelled() => break,
            _ = tick.tick() => {
                let n = state.reap_idle(REST_IDLE);
                if n > 0 {
                    tracing::info!("closed {n} idle REST clients");
                }
            }
        }
    }
}

/// SIGTERM and SIGINT, listened for from start-up on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |signal| move |cause| Error::Signal { signal, cause };
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(listen("SIGTERM"))?,
            int: signal(SignalKind::interrupt()).map_err(listen("SIGINT"))?,
        })
    }

    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    exec::describe_metrics();
    crate::bus::describe_metrics();
    listen::describe_metrics();
    describe_gauge!(
        "tether_connections",
        "Open connections by door (tcp, ws, rest)."
    );
    describe_gauge!("tether_clients", "Registered clients.");
    describe_gauge!("tether_rooms", "Rooms, main included.");
    describe_counter!(
        "tether_messages_in_total",
        "Messages (SEND/TO) received, by door."
    );
    describe_counter!(
        "tether_messages_out_total",
        "Pushes handed to members' queues."
    );
    describe_counter!(
        "tether_dropped_total",
        "Connections dropped as slow consumers, and mailbox entries dropped."
    );
    describe_counter!("tether_errors_total", "Commands refused, by error code.");
    describe_counter!(
        "tether_history_store_dropped_total",
        "--data writes dropped because the disk did not keep up (rooms get new epochs at the \
         next start)."
    );
    describe_counter!(
        "tether_history_store_errors_total",
        "--data write batches that failed to commit."
    );
    describe_counter!(
        "tether_refused_total",
        "Requests refused before any handler ran, by reason (origin: a WebSocket upgrade from a \
         web page not allowed; host: a foreign Host on a loopback listener; token: an exec \
         endpoint's token missing or wrong) and listener (http, relay)."
    );
    describe_gauge!("tether_relay_connections", "Open UI relay connections.");
    describe_gauge!(
        "tether_relay_sessions",
        "UI relay sessions kept (with connections or a replay log)."
    );
    describe_gauge!(
        "tether_relay_log_bytes",
        "Bytes held by every relay session's replay log."
    );
    describe_counter!(
        "tether_relay_frames_in_total",
        "Relay text frames received."
    );
    describe_counter!("tether_relay_bytes_in_total", "Relay bytes received.");
    describe_counter!(
        "tether_relay_frames_out_total",
        "Relay frames handed to connections."
    );
    describe_counter!(
        "tether_relay_bytes_out_total",
        "Relay bytes handed to connections."
    );
    describe_counter!(
        "tether_relay_dropped_total",
        "Relay frames dropped: sender not announced, invalid announce."
    );
    describe_counter!(
        "tether_relay_closed_total",
        "Relay connections closed by the relay: too_big, too_slow, over_budget, binary, refused."
    );
    describe_gauge!(
        "tether_relay_queued_bytes",
        "Bytes handed to relay connections and not yet written, all together."
    );
    describe_counter!(
        "tether_relay_synthesized_offline_total",
        "Offline announces synthesized for sockets that closed without one."
    );
    describe_counter!(
        "tether_relay_log_evicted_total",
        "Replay log entries dropped to stay within the byte bounds."
    );
    describe_counter!(
        "tether_relay_log_suspended_total",
        "Times a session's replay log was suspended (over its bound)."
    );
}
