//! `fanout-client`: the load client of `bench/fanout` (run by hand through `run.sh`).
//!
//! Connects N subscribers to tether (WebSocket JSON on `/ws/rooms`, or the TCP line protocol),
//! joins them to one room, measures the server's RSS per idle connection, then a publisher sends
//! phases of messages (one saturated, closed-loop phase and paced phases) and every subscriber
//! measures the delivery latency from a send stamp carried in the payload. Prints one JSON line.
//!
//! Payload (exactly `--size` bytes, ASCII): `#` + 10-digit sequence + `.` + 20-digit
//! CLOCK_MONOTONIC nanoseconds + `.` + `x` padding. CLOCK_MONOTONIC is shared by every process of
//! the machine (node's `process.hrtime.bigint()` reads the same clock), so the Socket.IO clients
//! use the same format and the same latency definition.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// WebSocket JSON on `--path` (default `/ws/rooms`)
    Ws,
    /// TCP line protocol
    Tcp,
}

#[derive(Parser, Debug)]
#[command(about = "Fan-out load client for tether (bench/fanout)")]
struct Args {
    /// Protocol to use.
    #[arg(long, value_enum)]
    proto: Proto,
    /// Server address, host:port (the HTTP listener for ws, the TCP listener for tcp).
    #[arg(long)]
    addr: String,
    /// WebSocket path.
    #[arg(long, default_value = "/ws/rooms")]
    path: String,
    /// Room to join (must exist: `main` does from the start).
    #[arg(long, default_value = "main")]
    room: String,
    /// Number of subscribers.
    #[arg(long, default_value_t = 1000)]
    subs: usize,
    /// PID of the server process, to read its VmRSS and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Messages in the saturated phase (0 = skip it).
    #[arg(long, default_value_t = 2000)]
    saturated: u64,
    /// Saturated phase: message k is sent only once message k-window reached every live
    /// subscriber (closed loop, bounded queues). 0 = open loop (send as fast as possible).
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// Paced phases, comma separated `rate:seconds` (messages/s for that many seconds).
    #[arg(long, default_value = "20:5,50:5")]
    paced: String,
    /// Payload size in bytes (>= 33).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Pause after all subscribers joined, before reading the idle RSS (ms).
    #[arg(long, default_value_t = 1500)]
    settle_ms: u64,
    /// Concurrent connection attempts while connecting the subscribers.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// A phase ends when everything arrived or nothing arrived for this long (ms).
    #[arg(long, default_value_t = 3000)]
    idle_ms: u64,
    /// Saturated phase: if the window does not open for this long (ms), send anyway.
    #[arg(long, default_value_t = 2000)]
    stall_ms: u64,
    /// Diagnostics: connect the subscribers but do not join (`hello`), then stop after the RSS
    /// reading (separates the bare connection cost from the join traffic).
    #[arg(long)]
    no_join: bool,
    /// Diagnostics: each subscriber creates and joins its own room `ROOM-i` (`new`) instead of
    /// joining ROOM, so joins cause no pushes to other members; stops after the RSS reading.
    #[arg(long)]
    own_rooms: bool,
    /// Subscriber names are PREFIX + index.
    #[arg(long, default_value = "sub")]
    name_prefix: String,
    /// Free-form label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

/// CLOCK_MONOTONIC in nanoseconds (the same clock as node's `process.hrtime.bigint()`).
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn payload(seq: u64, size: usize) -> String {
    let mut s = format!("#{seq:010}.{:020}.", mono_ns());
    while s.len() < size {
        s.push('x');
    }
    s
}

/// Finds the stamp in a frame or line: returns (seq, send_ns).
fn parse_stamp(b: &[u8]) -> Option<(u64, u64)> {
    let i = b.iter().position(|&c| c == b'#')?;
    let d = b.get(i + 1..i + 32)?;
    if d[10] != b'.' {
        return None;
    }
    let num = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |a, &c| {
            c.is_ascii_digit().then(|| a * 10 + u64::from(c - b'0'))
        })
    };
    Some((num(&d[..10])?, num(&d[11..31])?))
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// utime + stime of a process, in seconds.
fn proc_cpu_s(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after "comm": state(3) ... utime(14) stime(15) -> indexes 11 and 12 here
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// Machine-wide CPU time from /proc/stat, in seconds: (busy, steal). Busy is
/// user + nice + system + irq + softirq over all CPUs.
fn machine_cpu_s() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<f64> = s
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(((at(0) + at(1) + at(2) + at(5) + at(6)) / hz, at(7) / hz))
}

struct Phase {
    name: String,
    base: u64,
    msgs: u64,
    /// messages/s; None = saturated
    rate: Option<f64>,
}

struct Shared {
    phases: Vec<Phase>,
    /// deliveries per global sequence number
    counts: Vec<AtomicU32>,
    /// deliveries per phase
    delivered: Vec<AtomicU64>,
    /// last delivery time per phase (mono ns)
    last_recv: Vec<AtomicU64>,
    /// subscribers still connected (joined and not closed)
    alive: AtomicU32,
    joined: AtomicUsize,
    connect_errors: AtomicUsize,
    disconnects: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
    /// what the publisher's connection reported (first error reply, close, EOF)
    publisher_note: std::sync::Mutex<Option<String>>,
    /// set once the run is over: closes after that are ours
    stopping: std::sync::atomic::AtomicBool,
    /// woken when a message reached every live subscriber, or on join
    progress: Notify,
}

impl Shared {
    fn phase_of(&self, seq: u64) -> Option<usize> {
        self.phases
            .iter()
            .position(|p| seq >= p.base && seq < p.base + p.msgs)
    }

    fn publisher_note(&self, e: String) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let mut g = self.publisher_note.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }

    fn record_error(&self, e: String) {
        let mut g = self.first_error.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }
}

/// What a subscriber hands back: per phase, its latencies in µs.
type Lats = Vec<Vec<u32>>;

struct Recorder {
    sh: Arc<Shared>,
    lats: Lats,
}

impl Recorder {
    #[inline]
    fn on_frame(&mut self, b: &[u8]) {
        let Some((seq, sent)) = parse_stamp(b) else {
            return;
        };
        let now = mono_ns();
        let Some(p) = self.sh.phase_of(seq) else {
            return;
        };
        let us = (now.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32;
        self.lats[p].push(us);
        self.sh.delivered[p].fetch_add(1, Ordering::Relaxed);
        self.sh.last_recv[p].fetch_max(now, Ordering::Relaxed);
        let c = self.sh.counts[seq as usize].fetch_add(1, Ordering::Relaxed) + 1;
        if c >= self.sh.alive.load(Ordering::Relaxed) {
            self.sh.progress.notify_one();
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(64 * 1024)
}

async fn ws_connect(
    args: &Args,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>> {
    let url = format!("ws://{}{}", args.addr, args.path);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
        .await
        .context("websocket connect")?;
    Ok(ws)
}

/// Sends `hello` and waits for its reply (skipping pushes).
async fn ws_hello<S>(ws: &mut S, cmd: &str, room: &str, client: &str) -> Result<()>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    let req = json!({"id": 0, "cmd": cmd, "room": room, "client": client}).to_string();
    ws.send(Message::text(req)).await?;
    while let Some(m) = ws.next().await {
        if let Message::Text(t) = m? {
            let v: serde_json::Value = serde_json::from_str(t.as_str())?;
            if v.get("id").is_some() {
                if v["ok"] == true {
                    return Ok(());
                }
                bail!("hello {client}: {t}");
            }
        }
    }
    bail!("hello {client}: connection closed")
}

async fn tcp_connect_hello(
    addr: &str,
    cmd: &str,
    room: &str,
    client: &str,
) -> Result<(TcpStream, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await.context("tcp connect")?;
    s.set_nodelay(true)?;
    s.write_all(format!("{cmd} {room}:{client}\n").as_bytes())
        .await?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let want = format!("OK {cmd} {room}:{client}");
    loop {
        while let Some(nl) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end();
            if line == want {
                return Ok((s, buf));
            }
            if line.starts_with("ERROR") {
                bail!("hello {client}: {line}");
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("hello {client}: connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn subscriber(
    args: Arc<Args>,
    sh: Arc<Shared>,
    i: usize,
    sem: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Lats {
    let mut rec = Recorder {
        sh: sh.clone(),
        lats: sh.phases.iter().map(|_| Vec::new()).collect(),
    };
    let name = format!("{}{i}", args.name_prefix);
    match args.proto {
        Proto::Ws => {
            let permit = sem.acquire().await;
            let mut ws = match async {
                let mut ws = ws_connect(&args).await?;
                if args.own_rooms {
                    ws_hello(&mut ws, "new", &format!("{}-{i}", args.room), &name).await?;
                } else if !args.no_join {
                    ws_hello(&mut ws, "hello", &args.room, &name).await?;
                }
                Ok::<_, anyhow::Error>(ws)
            }
            .await
            {
                Ok(ws) => ws,
                Err(e) => {
                    sh.connect_errors.fetch_add(1, Ordering::Relaxed);
                    sh.record_error(format!("{e:#}"));
                    sh.progress.notify_one();
                    return rec.lats;
                }
            };
            drop(permit);
            sh.alive.fetch_add(1, Ordering::Relaxed);
            sh.joined.fetch_add(1, Ordering::Relaxed);
            sh.progress.notify_one();
            loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => rec.on_frame(t.as_bytes()),
                        Some(Ok(Message::Close(f))) => {
                            sh.record_error(format!("{name}: closed by server: {f:?}"));
                            sh.disconnects.fetch_add(1, Ordering::Relaxed);
                            sh.alive.fetch_sub(1, Ordering::Relaxed);
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            sh.record_error(format!("{name}: {e}"));
                            sh.disconnects.fetch_add(1, Ordering::Relaxed);
                            sh.alive.fetch_sub(1, Ordering::Relaxed);
                            break;
                        }
                        None => {
                            sh.disconnects.fetch_add(1, Ordering::Relaxed);
                            sh.alive.fetch_sub(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
        }
        Proto::Tcp => {
            let permit = sem.acquire().await;
            let conn = if args.no_join {
                TcpStream::connect(&args.addr)
                    .await
                    .map(|s| (s, Vec::new()))
                    .map_err(anyhow::Error::from)
            } else if args.own_rooms {
                tcp_connect_hello(&args.addr, "NEW", &format!("{}-{i}", args.room), &name).await
            } else {
                tcp_connect_hello(&args.addr, "HELLO", &args.room, &name).await
            };
            let (mut s, mut buf) = match conn {
                Ok(x) => x,
                Err(e) => {
                    sh.connect_errors.fetch_add(1, Ordering::Relaxed);
                    sh.record_error(format!("{e:#}"));
                    sh.progress.notify_one();
                    return rec.lats;
                }
            };
            drop(permit);
            sh.alive.fetch_add(1, Ordering::Relaxed);
            sh.joined.fetch_add(1, Ordering::Relaxed);
            sh.progress.notify_one();
            let prefix = format!("MSG {}:pub ", args.room).into_bytes();
            let mut start = 0usize;
            buf.reserve(64 * 1024);
            loop {
                // process complete lines in buf[start..]
                while let Some(nl) = buf[start..].iter().position(|&c| c == b'\n') {
                    let line = &buf[start..start + nl];
                    if line.starts_with(&prefix) {
                        rec.on_frame(&line[prefix.len()..]);
                    }
                    start += nl + 1;
                }
                buf.drain(..start);
                start = 0;
                if buf.capacity() - buf.len() < 16 * 1024 {
                    buf.reserve(64 * 1024);
                }
                let len = buf.len();
                let cap = buf.capacity();
                buf.resize(cap, 0);
                let r = tokio::select! {
                    biased;
                    _ = stop.changed() => { buf.truncate(len); break }
                    r = s.read(&mut buf[len..]) => r,
                };
                match r {
                    Ok(0) | Err(_) => {
                        if let Err(e) = r {
                            sh.record_error(format!("{name}: {e}"));
                        }
                        sh.disconnects.fetch_add(1, Ordering::Relaxed);
                        sh.alive.fetch_sub(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(n) => buf.truncate(len + n),
                }
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                s.write_all(format!("QUIT {}:{name}\n", args.room).as_bytes()),
            )
            .await;
        }
    }
    rec.lats
}

/// Publisher: one connection that sends every phase in turn.
enum Publisher {
    Ws(
        futures_util::stream::SplitSink<
            tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
            Message,
        >,
    ),
    Tcp(tokio::net::tcp::OwnedWriteHalf),
}

impl Publisher {
    async fn connect(args: &Args, sh: Arc<Shared>, send_errors: Arc<AtomicU64>) -> Result<Self> {
        match args.proto {
            Proto::Ws => {
                let mut ws = ws_connect(args).await?;
                ws_hello(&mut ws, "hello", &args.room, "pub").await?;
                let (tx, mut rx) = ws.split();
                // drain replies, count failed sends
                tokio::spawn(async move {
                    loop {
                        match rx.next().await {
                            Some(Ok(Message::Text(t))) => {
                                if t.as_str().contains("\"ok\":false") {
                                    send_errors.fetch_add(1, Ordering::Relaxed);
                                    sh.publisher_note(format!("publisher got: {t}"));
                                }
                            }
                            Some(Ok(Message::Close(f))) => {
                                sh.publisher_note(format!("publisher closed by server: {f:?}"));
                                break;
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                sh.publisher_note(format!("publisher read error: {e}"));
                                break;
                            }
                            None => {
                                sh.publisher_note("publisher: connection closed".into());
                                break;
                            }
                        }
                    }
                });
                Ok(Publisher::Ws(tx))
            }
            Proto::Tcp => {
                let (s, _) = tcp_connect_hello(&args.addr, "HELLO", &args.room, "pub").await?;
                let (mut rd, wr) = s.into_split();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut tail = Vec::new();
                    loop {
                        let n = match rd.read(&mut buf).await {
                            Ok(0) => {
                                sh.publisher_note("publisher: connection closed (EOF)".into());
                                break;
                            }
                            Ok(n) => n,
                            Err(e) => {
                                sh.publisher_note(format!("publisher read error: {e}"));
                                break;
                            }
                        };
                        tail.extend_from_slice(&buf[..n]);
                        let mut start = 0;
                        while let Some(nl) = tail[start..].iter().position(|&c| c == b'\n') {
                            let line = &tail[start..start + nl];
                            if line.starts_with(b"ERROR") || line.starts_with(b"BYE") {
                                if line.starts_with(b"ERROR") {
                                    send_errors.fetch_add(1, Ordering::Relaxed);
                                }
                                sh.publisher_note(format!(
                                    "publisher got: {}",
                                    String::from_utf8_lossy(line)
                                ));
                            }
                            start += nl + 1;
                        }
                        tail.drain(..start);
                    }
                });
                Ok(Publisher::Tcp(wr))
            }
        }
    }

    async fn send(&mut self, room: &str, seq: u64, size: usize) -> Result<()> {
        let p = payload(seq, size);
        match self {
            Publisher::Ws(tx) => {
                let req = format!(
                    "{{\"id\":{seq},\"cmd\":\"send\",\"room\":\"{room}\",\"text\":\"{p}\"}}"
                );
                tx.send(Message::text(req)).await?;
            }
            Publisher::Tcp(w) => {
                w.write_all(format!("SEND {room}:pub {p}\n").as_bytes())
                    .await?;
            }
        }
        Ok(())
    }
}

fn percentile(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(f64::from(sorted[idx]) / 1000.0)
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

async fn run(args: Arc<Args>) -> Result<serde_json::Value> {
    if args.size < 33 {
        bail!("--size must be at least 33");
    }
    // phases
    let mut phases = Vec::new();
    let mut base = 0u64;
    if args.saturated > 0 {
        phases.push(Phase {
            name: "saturated".into(),
            base,
            msgs: args.saturated,
            rate: None,
        });
        base += args.saturated;
    }
    for spec in args.paced.split(',').filter(|s| !s.trim().is_empty()) {
        let (r, s) = spec
            .split_once(':')
            .with_context(|| format!("bad --paced entry {spec:?}"))?;
        let rate: f64 = r.trim().parse()?;
        let secs: f64 = s.trim().parse()?;
        let msgs = (rate * secs).round().max(1.0) as u64;
        phases.push(Phase {
            name: format!("paced-{}", r.trim()),
            base,
            msgs,
            rate: Some(rate),
        });
        base += msgs;
    }
    let total = base as usize;
    let sh = Arc::new(Shared {
        counts: (0..total).map(|_| AtomicU32::new(0)).collect(),
        delivered: phases.iter().map(|_| AtomicU64::new(0)).collect(),
        last_recv: phases.iter().map(|_| AtomicU64::new(0)).collect(),
        phases,
        alive: AtomicU32::new(0),
        joined: AtomicUsize::new(0),
        connect_errors: AtomicUsize::new(0),
        disconnects: AtomicUsize::new(0),
        first_error: std::sync::Mutex::new(None),
        publisher_note: std::sync::Mutex::new(None),
        stopping: std::sync::atomic::AtomicBool::new(false),
        progress: Notify::new(),
    });

    let rss_before = args.server_pid.and_then(|p| proc_status_kib(p, "VmRSS:"));

    // connect and join the subscribers
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..args.subs)
        .map(|i| {
            tokio::spawn(subscriber(
                args.clone(),
                sh.clone(),
                i,
                sem.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let deadline = t0 + Duration::from_secs(120);
    loop {
        let done = sh.joined.load(Ordering::Relaxed) + sh.connect_errors.load(Ordering::Relaxed);
        if done >= args.subs {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), sh.progress.notified()).await;
    }
    let connect_s = t0.elapsed().as_secs_f64();
    let joined = sh.joined.load(Ordering::Relaxed);

    // idle RSS: all subscribers connected and joined, nothing published yet
    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
    let rss_idle = args.server_pid.and_then(|p| proc_status_kib(p, "VmRSS:"));
    let rss_per_conn = match (rss_before, rss_idle) {
        (Some(b), Some(i)) if joined > 0 => Some(r2((i as f64 - b as f64) / joined as f64)),
        _ => None,
    };

    let mut out_phases = Vec::new();
    let send_errors = Arc::new(AtomicU64::new(0));
    let publisher = if joined > 0 && !args.no_join && !args.own_rooms {
        Some(Publisher::connect(&args, sh.clone(), send_errors.clone()).await)
    } else {
        None
    };
    let mut publisher = match publisher {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            sh.record_error(format!("publisher: {e:#}"));
            None
        }
        None => None,
    };
    let mut aborted: Option<String> = None;
    if let Some(publisher) = publisher.as_mut() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (pi, ph) in sh.phases.iter().enumerate() {
            let expected_per_msg = sh.alive.load(Ordering::Relaxed) as u64;
            let expected = expected_per_msg * ph.msgs;
            let srv_cpu0 = proc_cpu_s(args.server_pid);
            let cli_cpu0 = proc_cpu_s(None);
            let mach0 = machine_cpu_s();
            let start_ns = mono_ns();
            let start = Instant::now();
            let mut stalls = 0u64;
            for k in 0..ph.msgs {
                let seq = ph.base + k;
                match ph.rate {
                    None => {
                        if args.window > 0 && k >= args.window {
                            let gate = (seq - args.window) as usize;
                            let mut since = Instant::now();
                            loop {
                                let alive = sh.alive.load(Ordering::Relaxed);
                                if sh.counts[gate].load(Ordering::Relaxed) >= alive {
                                    break;
                                }
                                let waited = tokio::time::timeout(
                                    Duration::from_millis(50),
                                    sh.progress.notified(),
                                )
                                .await;
                                if waited.is_err()
                                    && since.elapsed() > Duration::from_millis(args.stall_ms)
                                {
                                    stalls += 1;
                                    since = Instant::now();
                                    break;
                                }
                            }
                        }
                    }
                    Some(rate) => {
                        let at = start + Duration::from_secs_f64(k as f64 / rate);
                        tokio::time::sleep_until(at).await;
                    }
                }
                if let Err(e) = publisher.send(&args.room, seq, args.size).await {
                    aborted = Some(format!("publisher send failed in {}: {e:#}", ph.name));
                    break;
                }
            }
            let sent_s = start.elapsed().as_secs_f64();
            // wait for the deliveries: all arrived, or no progress for idle_ms
            let mut last = sh.delivered[pi].load(Ordering::Relaxed);
            let mut last_change = Instant::now();
            loop {
                let d = sh.delivered[pi].load(Ordering::Relaxed);
                if d >= expected {
                    break;
                }
                if d != last {
                    last = d;
                    last_change = Instant::now();
                } else if last_change.elapsed() > Duration::from_millis(args.idle_ms) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let srv_cpu1 = proc_cpu_s(args.server_pid);
            let cli_cpu1 = proc_cpu_s(None);
            let mach1 = machine_cpu_s();
            // CPU is averaged over [start, now]: when everything arrived, now ~ last delivery
            let wall_s = (mono_ns() - start_ns) as f64 / 1e9;
            let delivered = sh.delivered[pi].load(Ordering::Relaxed);
            let last_ns = sh.last_recv[pi].load(Ordering::Relaxed);
            let span_s = (last_ns.saturating_sub(start_ns)) as f64 / 1e9;
            let cpu = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => Some(r2(100.0 * (b - a) / wall_s.max(1e-9))),
                _ => None,
            };
            out_phases.push(json!({
                "phase": ph.name,
                "rate_msgs_per_s": ph.rate,
                "msgs": ph.msgs,
                "subscribers": expected_per_msg,
                "expected": expected,
                "delivered": delivered,
                "lost": expected.saturating_sub(delivered),
                "send_s": r2(sent_s),
                "span_s": (span_s * 1000.0).round() / 1000.0,
                "deliveries_per_s": if span_s > 0.0 { (delivered as f64 / span_s).round() } else { 0.0 },
                "stalls": stalls,
                "server_cpu_pct": cpu(srv_cpu0, srv_cpu1),
                "client_cpu_pct": cpu(cli_cpu0, cli_cpu1),
                "machine_cpu_pct": cpu(mach0.map(|m| m.0), mach1.map(|m| m.0)),
                "steal_pct": cpu(mach0.map(|m| m.1), mach1.map(|m| m.1)),
            }));
            tokio::time::sleep(Duration::from_millis(300)).await;
            if aborted.is_some() {
                break;
            }
        }
    }
    let rss_end = args.server_pid.and_then(|p| proc_status_kib(p, "VmRSS:"));
    let rss_hwm = args.server_pid.and_then(|p| proc_status_kib(p, "VmHWM:"));

    // stop the subscribers and gather latencies
    sh.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    drop(publisher);
    let mut all: Vec<Vec<u32>> = sh.phases.iter().map(|_| Vec::new()).collect();
    for h in handles {
        if let Ok(Ok(l)) = tokio::time::timeout(Duration::from_secs(10), h).await {
            for (a, v) in all.iter_mut().zip(l) {
                a.extend(v);
            }
        }
    }
    for (p, mut v) in out_phases.iter_mut().zip(all) {
        v.sort_unstable();
        let obj = p.as_object_mut().unwrap();
        obj.insert("p50_ms".into(), json!(percentile(&v, 0.50).map(r2)));
        obj.insert("p99_ms".into(), json!(percentile(&v, 0.99).map(r2)));
        obj.insert("p999_ms".into(), json!(percentile(&v, 0.999).map(r2)));
        obj.insert(
            "max_ms".into(),
            json!(v.last().map(|&m| r2(f64::from(m) / 1000.0))),
        );
    }

    Ok(json!({
        "server": format!(
            "{}{}",
            match args.proto { Proto::Ws => "tether-ws", Proto::Tcp => "tether-tcp" },
            if args.own_rooms { "-ownroom" } else if args.no_join { "-nojoin" } else { "" }
        ),
        "label": args.label,
        "subs": args.subs,
        "joined": joined,
        "connect_errors": sh.connect_errors.load(Ordering::Relaxed),
        "disconnects": sh.disconnects.load(Ordering::Relaxed),
        "send_errors": send_errors.load(Ordering::Relaxed),
        "first_error": sh.first_error.lock().unwrap().clone().or(aborted.clone()),
        "aborted": aborted,
        "publisher_note": *sh.publisher_note.lock().unwrap(),
        "connect_s": r2(connect_s),
        "payload_bytes": args.size,
        "window": args.window,
        "rss_before_kib": rss_before,
        "rss_idle_kib": rss_idle,
        "rss_per_conn_kib": rss_per_conn,
        "rss_end_kib": rss_end,
        "rss_hwm_kib": rss_hwm,
        "phases": out_phases,
    }))
}

fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(run(args))?;
    println!("{out}");
    // do not wait for lingering tasks
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
