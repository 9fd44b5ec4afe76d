//! Flags, environment variables and the TOML file: one definition that also produces `--help`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "tether",
    version,
    about = "One server for live apps: chat/pub-sub rooms over TCP lines, WebSocket and REST.",
    long_about = "One server for live apps: chat/pub-sub rooms over TCP lines, WebSocket and REST.\n\n\
        Run `tether serve` to start with embedded defaults: HTTP (REST, WebSocket, pages, /metrics)\n\
        on 127.0.0.1:8700 and [::1]:8700, the rooms TCP line protocol on 127.0.0.1:10010 and the\n\
        UI relay for sidekick clients on localhost:5163 (127.0.0.1 and [::1]).\n\
        The wire contracts are in docs/protocol/."
)]
#[command(args_conflicts_with_subcommands = true, after_help = SERVE_HELP)]
pub struct Cli {
    /// What to do; without a subcommand, `tether [OPTIONS]` is `tether serve [OPTIONS]`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The serve options, accepted here too so that `tether --help` lists them all.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The serve options, wherever they were given.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            None => self.serve,
        }
    }
}

const SERVE_HELP: &str = "Every option can also come from the environment (TETHER_*) or from a TOML file\n\
    given with --config, whose keys are the option names with '_' for '-'\n\
    (http, tcp, relay, max_clients, max_message_length, max_rooms, queue_capacity, tls_cert,\n\
    tls_key, shutdown_grace, relay_max_frame, relay_log_bytes, relay_queue_bytes, hook, hook_timeout,\n\
    hook_memory, exec_max_processes, exec_kill_grace, exec_close_grace, relay_total_queue_bytes,\n\
    relay_max_connections, relay_max_sessions, header_timeout, max_connections,\n\
    max_connections_per_ip, allowed_origins, allowed_hosts; the last two as lists; bus,\n\
    bus_presence_ttl, data) plus [[exec]]\n\
    tables (file only) that define the /ws/exec/<name> endpoints (token_env = \"NAME\" makes one\n\
    require a token); without any [[exec]] table the built-in ones apply (claude, echo, demo).\n\
    [[history]] tables (file only: room = \"*\" | \"name\" | \"prefix*\", messages, seconds, bytes)\n\
    set how much history each room keeps [default: 100 messages, 300 s, 65536 bytes].\n\
    See docs/protocol/exec.md and docs/protocol/common.md.\n\
    Precedence: flag > environment > file > default.\n\n\
    Examples:\n  tether serve\n  tether serve --http 0.0.0.0:8700 --max-clients 1000\n  \
    tether serve --tls-cert cert.pem --tls-key key.pem\n  \
    tether serve --relay off\n  \
    tether serve --allowed-origins https://app.example.com,http://localhost:*\n  \
    tether serve --hook main=hooks/filter.js --hook-timeout 20\n  \
    tether serve --bus redis://127.0.0.1:6379/0\n  \
    tether serve --data /var/lib/tether\n  \
    printf 'HELLO main:alice\\nSEND main:alice hi\\n' | nc -N 127.0.0.1 10010";

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the server (HTTP + TCP listeners) and run until SIGINT/SIGTERM.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
}

/// `tether serve` options. Every field is optional here so that the file can fill the gaps.
#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// Address of the HTTP listener: REST, WebSocket endpoints, pages and /metrics [default: 127.0.0.1:8700, and [::1]:8700 when it can be bound]
    #[arg(long, env = "TETHER_HTTP", value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// Address of the rooms TCP line-protocol listener [default: 127.0.0.1:10010]
    #[arg(long, env = "TETHER_TCP", value_name = "ADDR")]
    pub tcp: Option<SocketAddr>,

    /// Address of the UI relay for sidekick clients (WebSocket, any path, ?session=ID; wss:// with --tls-cert), `localhost:PORT` for 127.0.0.1 and [::1], or `off` [default: localhost:5163]
    #[arg(long, env = "TETHER_RELAY", value_name = "ADDR|off")]
    pub relay: Option<RelayAddr>,

    /// TOML file with the same keys as these options (flags and env vars win over it)
    #[arg(long, env = "TETHER_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Most registered clients at once, over all doors; one more is refused with SERVER_FULL [default: 100]
    #[arg(long, env = "TETHER_MAX_CLIENTS", value_name = "N")]
    pub max_clients: Option<usize>,

    /// Longest message text, in characters; one more is refused with TOO_LONG [default: 255]
    #[arg(long, env = "TETHER_MAX_MESSAGE_LENGTH", value_name = "N")]
    pub max_message_length: Option<usize>,

    /// Most rooms at once, main included [default: 1000]
    #[arg(long, env = "TETHER_MAX_ROOMS", value_name = "N")]
    pub max_rooms: Option<usize>,

    /// Outbound queue per connection, in messages, and KiB a room's shared log keeps for its slowest member; a client that falls further behind is disconnected [default: 1024]
    #[arg(long, env = "TETHER_QUEUE_CAPACITY", value_name = "N")]
    pub queue_capacity: Option<usize>,

    /// PEM certificate chain: turns on TLS for the HTTP, the TCP and the relay listener (needs --tls-key)
    #[arg(
        long,
        env = "TETHER_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert
    #[arg(
        long,
        env = "TETHER_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Seconds to wait for clients to receive the going-away notice on shutdown [default: 5]
    #[arg(long, env = "TETHER_SHUTDOWN_GRACE", value_name = "SECS")]
    pub shutdown_grace: Option<u64>,

    /// Largest relay frame in bytes; a bigger one closes its socket with 1009 [default: 1048576]
    #[arg(long, env = "TETHER_RELAY_MAX_FRAME", value_name = "BYTES")]
    pub relay_max_frame: Option<usize>,

    /// Bytes one relay session's replay log may hold [default: 8388608]
    #[arg(long, env = "TETHER_RELAY_LOG_BYTES", value_name = "BYTES")]
    pub relay_log_bytes: Option<usize>,

    /// Bytes queued for one relay socket before it is closed as too slow (1008); at least the log plus a frame [default: 16777216]
    #[arg(long, env = "TETHER_RELAY_QUEUE_BYTES", value_name = "BYTES")]
    pub relay_queue_bytes: Option<usize>,

    /// Bytes queued for all relay sockets together; over it the socket holding the most is closed as too slow (1008); at least --relay-queue-bytes [default: 67108864]
    #[arg(long, env = "TETHER_RELAY_TOTAL_QUEUE_BYTES", value_name = "BYTES")]
    pub relay_total_queue_bytes: Option<usize>,

    /// Most relay WebSocket connections at once; one more is closed with 1013 [default: 1024]
    #[arg(long, env = "TETHER_RELAY_MAX_CONNECTIONS", value_name = "N")]
    pub relay_max_connections: Option<usize>,

    /// Most relay sessions kept at once; a new one evicts an idle session, or is closed with 1013 when all have connections [default: 64]
    #[arg(long, env = "TETHER_RELAY_MAX_SESSIONS", value_name = "N")]
    pub relay_max_sessions: Option<usize>,

    /// Most exec processes (/ws/claude, /ws/exec/NAME) running at once; one more is refused with close 1013 [default: 64]
    #[arg(long, env = "TETHER_EXEC_MAX_PROCESSES", value_name = "N")]
    pub exec_max_processes: Option<usize>,

    /// Seconds between SIGTERM and SIGKILL when an exec process is stopped (timeout, client gone, shutdown) [default: 2]
    #[arg(long, env = "TETHER_EXEC_KILL_GRACE", value_name = "SECS")]
    pub exec_kill_grace: Option<f64>,

    /// Seconds an exec socket closed by shutdown or its timeout may still take to send the output already queued for a slow client; then the rest is dropped and the close frame (1001/1011) sent [default: 1]
    #[arg(long, env = "TETHER_EXEC_CLOSE_GRACE", value_name = "SECS")]
    pub exec_close_grace: Option<f64>,

    /// The `[[exec]]` tables of the file: one WebSocket endpoint per command.
    #[arg(skip)]
    pub exec: Option<Vec<tether_exec::ExecSpec>>,

    /// A JS module whose `onMessage(msg)` filters or rewrites the messages of ROOM (`*`: every room without its own); repeatable. In the file, paths are relative to the file
    #[arg(
        long,
        env = "TETHER_HOOK",
        value_name = "ROOM=FILE",
        value_delimiter = ','
    )]
    pub hook: Option<Vec<HookArg>>,

    /// Milliseconds one hook call may take; a slower one drops that message with HOOK_FAILED [default: 50]
    #[arg(long, env = "TETHER_HOOK_TIMEOUT", value_name = "MS")]
    pub hook_timeout: Option<u64>,

    /// Heap limit in bytes of each room's hook runtime [default: 16777216]
    #[arg(long, env = "TETHER_HOOK_MEMORY", value_name = "BYTES")]
    pub hook_memory: Option<usize>,

    /// Web pages (origins) that may open WebSockets here besides same-origin ones: scheme://host[:port], http://host:*, https://*.example.com, or * for all. Replaces the default [default: http(s)://localhost:*, http(s)://127.0.0.1:*, http(s)://[::1]:*; the relay adds vscode-webview://*]
    #[arg(
        long,
        env = "TETHER_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// Host names a loopback listener answers besides localhost, *.localhost, 127.0.0.0/8 and [::1] (DNS rebinding guard): names, addresses, *.example.com, or * for any
    #[arg(
        long,
        env = "TETHER_ALLOWED_HOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Seconds a client has to send a complete request head on the HTTP and relay listeners, counted from its connection (after TLS) or from its previous response; a silent, partial or idle kept-alive connection is then closed [default: 5]
    #[arg(long, env = "TETHER_HEADER_TIMEOUT", value_name = "SECS")]
    pub header_timeout: Option<f64>,

    /// Most open connections on each of the HTTP and rooms TCP listeners (WebSockets included); one more is closed at once [default: 10000]
    #[arg(long, env = "TETHER_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most open connections from one client address (IPv6: one /64) on each listener; one more is closed at once [default: 1024, or an eighth of the open-file limit if lower]
    #[arg(long, env = "TETHER_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Join a cluster of tether nodes through this Redis (redis://HOST:PORT/DB): room messages, presence, client names and room definitions are shared by every node using it (docs/protocol/rooms.md, Cluster) [default: none, one node]
    #[arg(long, env = "TETHER_BUS", value_name = "URL")]
    pub bus: Option<String>,

    /// Seconds a node's members stay in the cluster's presence after the node stops refreshing them (a crashed node's members disappear after this); with --bus only [default: 30]
    #[arg(long, env = "TETHER_BUS_PRESENCE_TTL", value_name = "SECS")]
    pub bus_presence_ttl: Option<f64>,

    /// Directory where rooms and their recent messages are kept (SQLite, DIR/tether.db), so that a restart keeps them and clients recover across it; in the file, relative to the file [default: none, in memory only]
    #[arg(long, env = "TETHER_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// The `[[history]]` tables of the file: how much history rooms keep, per room pattern.
    #[arg(skip)]
    pub history: Option<Vec<HistorySpec>>,
}

/// One `[[history]]` table: the history limits of the rooms `room` matches (a name, `prefix*`
/// or `*`); unset keys keep the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySpec {
    /// The room pattern.
    pub room: String,
    /// Messages kept at most (0: none).
    pub messages: Option<usize>,
    /// Seconds a message is kept at most.
    pub seconds: Option<u64>,
    /// Bytes kept at most (text and sender name, plus 48 per message).
    pub bytes: Option<usize>,
}

/// Largest history a room may keep, in bytes (what `bytes` may ask for).
pub const HISTORY_BYTES_MAX: usize = 64 << 20;

/// Turns the `[[history]]` tables into the hub's policy; a `*` table sets the default.
fn history_policy(specs: &[HistorySpec]) -> Result<tether_rooms::HistoryPolicy, ConfigError> {
    let mut policy = tether_rooms::HistoryPolicy::default();
    for spec in specs {
        tether_rooms::HistoryPolicy::check_pattern(&spec.room).map_err(|e| {
            ConfigError::Invalid(format!("[[history]] room {:?}: {}", spec.room, e.message))
        })?;
        let d = tether_rooms::HistoryLimits::default();
        let limits = tether_rooms::HistoryLimits {
            messages: spec.messages.unwrap_or(d.messages),
            age: spec.seconds.map_or(d.age, std::time::Duration::from_secs),
            bytes: spec.bytes.unwrap_or(d.bytes),
        };
        if limits.bytes > HISTORY_BYTES_MAX {
            return Err(ConfigError::Invalid(format!(
                "[[history]] room {:?}: bytes must be at most {HISTORY_BYTES_MAX}",
                spec.room
            )));
        }
        if policy.rules.iter().any(|(p, _)| *p == spec.room) {
            return Err(ConfigError::Invalid(format!(
                "two [[history]] tables for room {:?}",
                spec.room
            )));
        }
        if spec.room == "*" {
            policy.default = limits;
        } else {
            policy.rules.push((spec.room.clone(), limits));
        }
    }
    Ok(policy)
}

/// `--hook ROOM=FILE`: which room's messages go through which JS module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookArg {
    /// A room name or `*`.
    pub room: String,
    /// The module file.
    pub path: PathBuf,
}

impl FromStr for HookArg {
    type Err = String;

    fn from_str(s: &str) -> Result<HookArg, String> {
        let (room, path) = s.split_once('=').ok_or_else(|| {
            format!("expected ROOM=FILE (such as main=hooks/filter.js), got {s:?}")
        })?;
        let room = room.trim();
        if room != crate::hooks::ANY_ROOM {
            tether_rooms::Name::parse(room)
                .map_err(|e| format!("hook room {room:?}: {}", e.message))?;
        }
        if path.trim().is_empty() {
            return Err(format!("hook for room {room:?} names no file"));
        }
        Ok(HookArg {
            room: room.into(),
            path: PathBuf::from(path.trim()),
        })
    }
}

impl<'de> Deserialize<'de> for HookArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The relay's address, or `off` (`--relay off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayAddr {
    /// No relay listener.
    Off,
    /// Listen here.
    At(SocketAddr),
    /// `localhost:PORT`: 127.0.0.1 and, when it can be bound, [::1], so that a client dialing
    /// `localhost` gets here whichever address its resolver returns first.
    Localhost(u16),
}

impl FromStr for RelayAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<RelayAddr, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(RelayAddr::Off);
        }
        let expected = || {
            format!("expected ADDR (such as 127.0.0.1:5163 or localhost:5163) or off, got {s:?}")
        };
        if let Some((host, port)) = s.rsplit_once(':')
            && host.eq_ignore_ascii_case("localhost")
        {
            return port
                .parse()
                .map(RelayAddr::Localhost)
                .map_err(|_| expected());
        }
        s.parse().map(RelayAddr::At).map_err(|_| expected())
    }
}

impl<'de> Deserialize<'de> for RelayAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The settings the server runs with, every default filled in.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listener address.
    pub http: SocketAddr,
    /// TCP listener address.
    pub tcp: SocketAddr,
    /// Registered clients at most.
    pub max_clients: usize,
    /// Characters per message at most.
    pub max_message_length: usize,
    /// Rooms at most.
    pub max_rooms: usize,
    /// Outbound queue length per connection.
    pub queue_capacity: usize,
    /// Certificate and key, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Shutdown grace period in seconds.
    pub shutdown_grace: u64,
    /// UI relay address; `None` when off.
    pub relay: Option<SocketAddr>,
    /// Whether the relay address was asked for (flag, environment or file): only then is a
    /// taken address an error; the default one, taken, only warns (another relay runs there).
    pub relay_required: bool,
    /// The relay's bounds.
    pub relay_limits: tether_relay::Config,
    /// Room hooks, their sources read.
    pub hooks: Vec<crate::hooks::HookSource>,
    /// Limits of every hook runtime.
    pub hook_limits: crate::hooks::HookLimits,
    /// The exec endpoints (the file's `[[exec]]` tables, or the built-in ones).
    pub exec: Vec<std::sync::Arc<tether_exec::Endpoint>>,
    /// Exec processes at once, over all endpoints.
    pub exec_max_processes: usize,
    /// SIGTERM → SIGKILL delay for exec processes.
    pub exec_kill_grace: std::time::Duration,
    /// Which web pages may open WebSockets, which Host names loopback listeners answer.
    pub guard: crate::guard::Policy,
    /// Whether the HTTP listener also listens on [::1] (its default address does).
    pub http_ipv6_loopback: bool,
    /// Whether the relay also listens on [::1] (`localhost:PORT`, the default).
    pub relay_ipv6_loopback: bool,
    /// Timeouts and connection caps of the listeners.
    pub listen: crate::listen::Limits,
    /// How long queued exec output may still be flushed once shutdown or a timeout closes.
    pub exec_close_grace: std::time::Duration,
    /// The cluster bus (`--bus`), when this node is one of several.
    pub bus: Option<crate::bus::BusConfig>,
    /// Where rooms and history are kept (`--data`); `None`: in memory only.
    pub data: Option<PathBuf>,
    /// How much history each room keeps.
    pub history: tether_rooms::HistoryPolicy,
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl ServeArgs {
    /// Merges flags/env (already in `self`) over the file over the defaults.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key must be given together".into(),
                ));
            }
        };
        let relay_choice = self.relay.or(file.relay);
        let defaults = tether_relay::Config::default();
        let max_frame = self
            .relay_max_frame
            .or(file.relay_max_frame)
            .unwrap_or(defaults.max_frame_bytes);
        let max_log = self
            .relay_log_bytes
            .or(file.relay_log_bytes)
            .unwrap_or(defaults.max_log_bytes);
        let relay_limits = tether_relay::Config {
            max_frame_bytes: max_frame,
            max_log_bytes: max_log,
            max_total_log_bytes: defaults.max_total_log_bytes.max(max_log),
            max_queue_bytes: self
                .relay_queue_bytes
                .or(file.relay_queue_bytes)
                .unwrap_or_else(|| {
                    defaults
                        .max_queue_bytes
                        .max(max_log.saturating_add(max_frame))
                }),
            ..defaults
        };
        let relay_limits = tether_relay::Config {
            max_total_queue_bytes: self
                .relay_total_queue_bytes
                .or(file.relay_total_queue_bytes)
                .unwrap_or_else(|| {
                    defaults
                        .max_total_queue_bytes
                        .max(relay_limits.max_queue_bytes)
                }),
            max_connections: self
                .relay_max_connections
                .or(file.relay_max_connections)
                .unwrap_or(defaults.max_connections),
            max_sessions: self
                .relay_max_sessions
                .or(file.relay_max_sessions)
                .unwrap_or(defaults.max_sessions),
            ..relay_limits
        };
        relay_limits
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let hooks = read_hooks(self.hook, file.hook, self.config.as_deref())?;
        let max_rooms = self.max_rooms.or(file.max_rooms).unwrap_or(1000);
        let hook_limits = crate::hooks::HookLimits {
            timeout: std::time::Duration::from_millis(
                self.hook_timeout.or(file.hook_timeout).unwrap_or(50),
            ),
            memory: self.hook_memory.or(file.hook_memory).unwrap_or(16 << 20),
            max_runtimes: max_rooms,
        };
        if hook_limits.timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "hook_timeout must be at least 1 ms".into(),
            ));
        }
        if hook_limits.memory < (1 << 20) {
            return Err(ConfigError::Invalid(
                "hook_memory must be at least 1048576 bytes".into(),
            ));
        }
        let exec_specs = self
            .exec
            .or(file.exec)
            .unwrap_or_else(tether_exec::default_specs);
        let exec = tether_exec::compile_all(&exec_specs)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        let exec_kill_grace = seconds(
            "exec_kill_grace",
            self.exec_kill_grace.or(file.exec_kill_grace).unwrap_or(2.0),
            600.0,
        )?;
        let guard = crate::guard::Policy {
            allowed_origins: self
                .allowed_origins
                .or(file.allowed_origins)
                .map(|l| crate::guard::parse_list(&l))
                .transpose()
                .map_err(ConfigError::Invalid)?,
            allowed_hosts: crate::guard::parse_list(
                &self
                    .allowed_hosts
                    .or(file.allowed_hosts)
                    .unwrap_or_default(),
            )
            .map_err(ConfigError::Invalid)?,
        };
        let http_choice = self.http.or(file.http);
        let listen = crate::listen::Limits::resolve(
            self.header_timeout.or(file.header_timeout),
            self.max_connections.or(file.max_connections),
            self.max_connections_per_ip.or(file.max_connections_per_ip),
        )
        .map_err(ConfigError::Invalid)?;
        let exec_close_grace = seconds(
            "exec_close_grace",
            self.exec_close_grace
                .or(file.exec_close_grace)
                .unwrap_or(1.0),
            60.0,
        )?;
        let bus = crate::bus::BusConfig::resolve(
            self.bus.or(file.bus),
            self.bus_presence_ttl.or(file.bus_presence_ttl),
        )
        .map_err(ConfigError::Invalid)?;
        let data = match (self.data, file.data, self.config.as_deref()) {
            (Some(d), _, _) => Some(d),
            (None, Some(d), Some(f)) if d.is_relative() => {
                Some(f.parent().map_or(d.clone(), |p| p.join(&d)))
            }
            (None, d, _) => d,
        };
        let history = history_policy(&self.history.or(file.history).unwrap_or_default())?;
        let cfg = Config {
            data,
            history,
            http: http_choice.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8700))),
            tcp: self
                .tcp
                .or(file.tcp)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 10010))),
            max_clients: self.max_clients.or(file.max_clients).unwrap_or(100),
            max_message_length: self
                .max_message_length
                .or(file.max_message_length)
                .unwrap_or(255),
            max_rooms,
            queue_capacity: self.queue_capacity.or(file.queue_capacity).unwrap_or(1024),
            tls,
            shutdown_grace: self.shutdown_grace.or(file.shutdown_grace).unwrap_or(5),
            relay: match relay_choice {
                Some(RelayAddr::Off) => None,
                Some(RelayAddr::At(a)) => Some(a),
                Some(RelayAddr::Localhost(port)) => Some(SocketAddr::from(([127, 0, 0, 1], port))),
                None => Some(SocketAddr::from(([127, 0, 0, 1], 5163))),
            },
            relay_required: relay_choice.is_some(),
            relay_limits,
            hooks,
            hook_limits,
            exec,
            exec_max_processes: self
                .exec_max_processes
                .or(file.exec_max_processes)
                .unwrap_or(64),
            exec_kill_grace,
            guard,
            http_ipv6_loopback: http_choice.is_none(),
            relay_ipv6_loopback: matches!(relay_choice, None | Some(RelayAddr::Localhost(_))),
            listen,
            exec_close_grace,
            bus,
        };
        for (name, v) in [
            ("max_clients", cfg.max_clients),
            ("max_message_length", cfg.max_message_length),
            ("max_rooms", cfg.max_rooms),
            ("queue_capacity", cfg.queue_capacity),
            ("exec_max_processes", cfg.exec_max_processes),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        Ok(cfg)
    }
}

/// A number of seconds in `[0, max]` as a duration, or the error naming the setting.
fn seconds(name: &str, v: f64, max: f64) -> Result<std::time::Duration, ConfigError> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(std::time::Duration::from_secs_f64(v))
    } else {
        Err(ConfigError::Invalid(format!(
            "{name} {v} must be in [0, {max}] seconds"
        )))
    }
}

/// Reads each hook's module: flags and the environment win over the file as a whole; paths from
/// the file are relative to the file.
fn read_hooks(
    flags: Option<Vec<HookArg>>,
    file: Option<Vec<HookArg>>,
    file_path: Option<&Path>,
) -> Result<Vec<crate::hooks::HookSource>, ConfigError> {
    let base = match (&flags, file_path) {
        (None, Some(p)) => p.parent().map(Path::to_owned),
        _ => None,
    };
    let mut out: Vec<crate::hooks::HookSource> = Vec::new();
    for arg in flags.or(file).unwrap_or_default() {
        let path = match &base {
            Some(dir) if arg.path.is_relative() => dir.join(&arg.path),
            _ => arg.path.clone(),
        };
        let source = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot read the hook for room {:?} at {}: {e}",
                arg.room,
                path.display()
            ))
        })?;
        if out.iter().any(|h| h.room == arg.room) {
            return Err(ConfigError::Invalid(format!(
                "two hooks for room {:?}",
                arg.room
            )));
        }
        out.push(crate::hooks::HookSource {
            room: arg.room,
            path,
            source: source.into(),
        });
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<ServeArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("tether-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "max_clients = 7\nmax_message_length = 9\ntcp = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            max_clients: Some(3),
            ..ServeArgs::default()
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.max_clients, 3);
        assert_eq!(cfg.max_message_length, 9);
        assert_eq!(cfg.tcp.port(), 1);
        assert_eq!(cfg.http.port(), 8700);
        assert_eq!(cfg.relay.map(|a| a.port()), Some(5163));
        assert!(!cfg.relay_required);
    }

    #[test]
    fn relay_is_an_address_or_off() {
        assert_eq!("off".parse::<RelayAddr>(), Ok(RelayAddr::Off));
        assert_eq!(
            "127.0.0.1:9".parse::<RelayAddr>(),
            Ok(RelayAddr::At(SocketAddr::from(([127, 0, 0, 1], 9))))
        );
        assert!("nowhere".parse::<RelayAddr>().is_err());
        assert_eq!(
            "localhost:5163".parse::<RelayAddr>(),
            Ok(RelayAddr::Localhost(5163))
        );
        assert!("localhost:x".parse::<RelayAddr>().is_err());
        let cfg = ServeArgs::default().resolve().unwrap();
        assert!(cfg.relay_ipv6_loopback && cfg.http_ipv6_loopback);
        let cfg = ServeArgs {
            relay: Some(RelayAddr::Localhost(0)),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.relay, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
        assert!(cfg.relay_required && cfg.relay_ipv6_loopback);
        assert!(!cfg.http_ipv6_loopback, "an address given is used alone");
        let cfg = ServeArgs {
            relay: Some(RelayAddr::Off),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.relay, None);
        let dir = std::env::temp_dir().join(format!("tether-cfg3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "relay = \"127.0.0.1:7\"\nrelay_log_bytes = 33554432\n",
        )
        .unwrap();
        let cfg = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.relay.map(|a| a.port()), Some(7));
        assert!(cfg.relay_required);
        assert!(cfg.relay_limits.max_queue_bytes >= (33 << 20));
        let err = ServeArgs {
            relay_queue_bytes: Some(10),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("max_queue_bytes"), "{err}");
    }

    #[test]
    fn relay_caps_budget_and_listener_limits() {
        let cfg = ServeArgs::default().resolve().unwrap();
        assert_eq!(cfg.relay_limits.max_connections, 1024);
        assert_eq!(cfg.relay_limits.max_sessions, 64);
        assert_eq!(cfg.relay_limits.max_total_queue_bytes, 64 << 20);
        assert_eq!(cfg.listen.max_connections, 10_000);
        let dir = std::env::temp_dir().join(format!("tether-cfg5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "relay_max_connections = 5\nrelay_max_sessions = 2\nheader_timeout = 1.5\n\
             max_connections = 300\nmax_connections_per_ip = 30\n\
             relay_queue_bytes = 100000000\n",
        )
        .unwrap();
        let cfg = ServeArgs {
            config: Some(file),
            relay_max_sessions: Some(3),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.relay_limits.max_connections, 5);
        assert_eq!(cfg.relay_limits.max_sessions, 3, "the flag wins");
        assert_eq!(
            cfg.relay_limits.max_total_queue_bytes, 100_000_000,
            "the budget grows to hold one full queue"
        );
        assert_eq!(cfg.listen.header_timeout.as_millis(), 1500);
        assert_eq!(cfg.listen.max_connections, 300);
        assert_eq!(cfg.listen.max_connections_per_ip, 30);
        for (args, needle) in [
            (
                ServeArgs {
                    relay_total_queue_bytes: Some(1 << 20),
                    ..ServeArgs::default()
                },
                "max_total_queue_bytes",
            ),
            (
                ServeArgs {
                    relay_max_connections: Some(0),
                    ..ServeArgs::default()
                },
                "max_connections",
            ),
            (
                ServeArgs {
                    header_timeout: Some(-1.0),
                    ..ServeArgs::default()
                },
                "header_timeout",
            ),
            (
                ServeArgs {
                    max_connections_per_ip: Some(0),
                    ..ServeArgs::default()
                },
                "max_connections_per_ip",
            ),
        ] {
            let err = args.resolve().unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn exec_tables_replace_the_built_in_endpoints() {
        let cfg = ServeArgs::default().resolve().unwrap();
        let names: Vec<&str> = cfg.exec.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["claude", "echo", "demo"]);
        assert_eq!(cfg.exec_max_processes, 64);
        assert_eq!(cfg.exec_kill_grace, std::time::Duration::from_secs(2));
        assert_eq!(cfg.exec_close_grace, std::time::Duration::from_secs(1));
        let dir = std::env::temp_dir().join(format!("tether-cfg4-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "exec_kill_grace = 0.5\nexec_close_grace = 2.5\n\
             [[exec]]\nname = \"count\"\nargv = [\"seq\", \"{n}\"]\ntimeout = 5\n\
             [exec.params.n]\ntype = \"integer\"\nrequired = true\nmax = 100\n",
        )
        .unwrap();
        let cfg = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.exec.len(), 1);
        assert_eq!(cfg.exec[0].schema.info(), "send {n}");
        assert_eq!(cfg.exec_kill_grace, std::time::Duration::from_millis(500));
        assert_eq!(cfg.exec_close_grace, std::time::Duration::from_millis(2500));
        let err = ServeArgs {
            exec_close_grace: Some(-1.0),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("exec_close_grace"), "{err}");
        std::fs::write(
            &file,
            "[[exec]]\nname = \"x\"\nargv = [\"a\"]\nshell = true\n",
        )
        .unwrap();
        let err = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("shell"), "{err}");
        std::fs::write(&file, "[[exec]]\nname = \"x\"\nargv = [\"a\", \"{p}\"]\n").unwrap();
        let err = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("{p}"), "{err}");
    }

    #[test]
    fn allowed_origins_and_hosts_are_lists() {
        let cfg = ServeArgs::default().resolve().unwrap();
        assert_eq!(
            cfg.guard.allowed_origins, None,
            "None: the loopback defaults"
        );
        assert!(cfg.guard.allowed_hosts.is_empty());
        let dir = std::env::temp_dir().join(format!("tether-cfg5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "allowed_origins = [\"https://app.example.com\", \"http://localhost:*\"]\n\
             allowed_hosts = [\"myhost.lan\"]\n",
        )
        .unwrap();
        let cfg = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.guard.allowed_origins.as_ref().map(Vec::len), Some(2));
        assert_eq!(cfg.guard.allowed_hosts.len(), 1);
        assert!(!cfg.guard.admits_every_origin());
        let cfg = ServeArgs {
            config: Some(file.clone()),
            allowed_origins: Some(vec!["*".into()]),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert!(cfg.guard.admits_every_origin());
        let cfg = ServeArgs {
            allowed_origins: Some(vec![String::new()]),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            cfg.guard.allowed_origins,
            Some(vec![]),
            "'' is the empty list"
        );
        let err = ServeArgs {
            allowed_origins: Some(vec!["https://app.example.com/path".into()]),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("app.example.com/path"), "{err}");
        let err = ServeArgs {
            allowed_hosts: Some(vec!["myhost:8700".into()]),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("without port"), "{err}");
    }

    #[test]
    fn data_and_history_tables_come_from_the_file() {
        let dir = std::env::temp_dir().join(format!("tether-cfg6-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "data = \"state\"\n\
             [[history]]\nroom = \"*\"\nmessages = 10\n\
             [[history]]\nroom = \"logs-*\"\nseconds = 5\nbytes = 1000\n",
        )
        .unwrap();
        let cfg = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.data, Some(dir.join("state")), "relative to the file");
        assert_eq!(cfg.history.limits_for("main").messages, 10);
        let logs = cfg.history.limits_for("logs-1");
        assert_eq!(
            (logs.messages, logs.age.as_secs(), logs.bytes),
            (100, 5, 1000)
        );
        let cfg = ServeArgs {
            config: Some(file.clone()),
            data: Some("/elsewhere".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.data, Some(PathBuf::from("/elsewhere")), "the flag wins");
        assert_eq!(ServeArgs::default().resolve().unwrap().data, None);
        for (toml, needle) in [
            ("[[history]]\nroom = \"bad name\"\n", "bad name"),
            ("[[history]]\nroom = \"x\"\nbytes = 999999999999\n", "bytes"),
            (
                "[[history]]\nroom = \"x\"\n[[history]]\nroom = \"x\"\n",
                "two",
            ),
            ("[[history]]\nroom = \"x\"\ncount = 1\n", "count"),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = ServeArgs {
                config: Some(file.clone()),
                ..ServeArgs::default()
            }
            .resolve()
            .unwrap_err();
            assert!(err.to_string().contains(needle), "{toml}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("tether-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(&file, "max_clientz = 7\n").unwrap();
        let err = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("max_clientz"), "{err}");
    }
}
