//! `join-storm`: how long N subscribers take to join one room, and until every one of them has
//! seen every join (run by hand; `bench/fanout/join-storm.sh` runs it against two builds).
//!
//! Each subscriber connects, says `hello` in the room (at most `--concurrency` handshakes and
//! hellos in flight, as `fanout-client` does), then keeps reading and counts the join pushes it
//! gets (`JOINED` lines, `join` frames). With consistent presence, every pair of subscribers
//! accounts for exactly one join push (the earlier one sees the later one's join), so the room has
//! settled when N(N-1)/2 join pushes arrived. Prints one JSON line: `join_s` (every hello
//! answered), `settled_s`, joins seen, disconnects, the server's CPU seconds and, with `--http`,
//! the server's `tether_dropped_total`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// WebSocket JSON on `/ws/rooms`
    Ws,
    /// TCP line protocol
    Tcp,
}

#[derive(Parser, Debug)]
#[command(about = "Join storm: N subscribers join one room (bench/fanout)")]
struct Args {
    /// Protocol to use.
    #[arg(long, value_enum)]
    proto: Proto,
    /// Server address, host:port (the HTTP listener for ws, the TCP listener for tcp).
    #[arg(long)]
    addr: String,
    /// The HTTP listener, to read `tether_dropped_total` from `/metrics` at the end.
    #[arg(long)]
    http: Option<String>,
    /// Room to join (must exist: `main` does from the start).
    #[arg(long, default_value = "main")]
    room: String,
    /// Number of subscribers.
    #[arg(long, default_value_t = 10_000)]
    subs: usize,
    /// Handshakes and hellos in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// PID of the server, to read its CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// WebSocket: ask for `presence_batch` frames (`/ws/rooms?presence=batch`) instead of one
    /// `join` frame per join.
    #[arg(long)]
    batch: bool,
    /// A label copied into the output.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Default)]
struct Shared {
    joined: AtomicUsize,
    join_pushes: AtomicU64,
    /// Frames that carried join pushes (one per push, or one per `presence_batch`).
    join_frames: AtomicU64,
    disconnects: AtomicUsize,
    errors: AtomicUsize,
    progress: Notify,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
        self.progress.notify_one();
    }
}

fn proc_cpu_s(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

async fn dropped(http: &str) -> Result<f64> {
    let mut s = TcpStream::connect(http).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with("tether_dropped_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b))
}

async fn ws_sub(
    args: &Args,
    sh: &Shared,
    name: &str,
    sem: &Semaphore,
    answered: &mut bool,
) -> Result<()> {
    let mut permit = Some(sem.acquire().await?);
    let query = if args.batch { "?presence=batch" } else { "" };
    let url = format!("ws://{}/ws/rooms{query}", args.addr);
    let cfg = WebSocketConfig::default().read_buffer_size(64 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), true)
        .await
        .context("websocket connect")?;
    let req = serde_json::json!({"id": 0, "cmd": "hello", "room": args.room, "client": name});
    ws.send(Message::text(req.to_string())).await?;
    while let Some(m) = ws.next().await {
        match m? {
            Message::Text(t) => {
                let b = t.as_bytes();
                if b.starts_with(br#"{"type":"join""#) {
                    sh.join_pushes.fetch_add(1, Ordering::Relaxed);
                    sh.join_frames.fetch_add(1, Ordering::Relaxed);
                    sh.progress.notify_one();
                } else if b.starts_with(br#"{"type":"presence_batch""#) {
                    let joins = b.windows(6).filter(|w| w == br#""join""#).count();
                    sh.join_pushes.fetch_add(joins as u64, Ordering::Relaxed);
                    sh.join_frames.fetch_add(1, Ordering::Relaxed);
                    sh.progress.notify_one();
                } else if !*answered && b.starts_with(br#"{"id""#) {
                    if !b.windows(9).any(|w| w == br#""ok":true"#) {
                        bail!("hello {name}: {t}");
                    }
                    *answered = true;
                    drop(permit.take());
                    sh.joined.fetch_add(1, Ordering::Relaxed);
                    sh.progress.notify_one();
                }
            }
            Message::Close(f) => bail!("{name}: closed by the server: {f:?}"),
            _ => {}
        }
    }
    bail!("{name}: connection ended")
}

async fn tcp_sub(
    args: &Args,
    sh: &Shared,
    name: &str,
    sem: &Semaphore,
    answered: &mut bool,
) -> Result<()> {
    let permit = sem.acquire().await?;
    let mut s = TcpStream::connect(&args.addr)
        .await
        .context("tcp connect")?;
    s.set_nodelay(true)?;
    s.write_all(format!("HELLO {}:{name}\n", args.room).as_bytes())
        .await?;
    let want = format!("OK HELLO {}:{name}", args.room);
    let mut permit = Some(permit);
    let mut buf = vec![0u8; 64 * 1024];
    let mut line = Vec::new();
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("{name}: connection ended");
        }
        let mut joins = 0;
        for &b in &buf[..n] {
            if b != b'\n' {
                if line.len() < 128 {
                    line.push(b);
                }
                continue;
            }
            if line.starts_with(b"JOINED ") {
                joins += 1;
            } else if !*answered && line == want.as_bytes() {
                *answered = true;
                drop(permit.take());
                sh.joined.fetch_add(1, Ordering::Relaxed);
                sh.progress.notify_one();
            } else if line.starts_with(b"ERROR") {
                bail!("{name}: {}", String::from_utf8_lossy(&line));
            }
            line.clear();
        }
        if joins > 0 {
            sh.join_pushes.fetch_add(joins, Ordering::Relaxed);
            sh.progress.notify_one();
        }
    }
}

async fn run(args: Arc<Args>) -> Result<serde_json::Value> {
    let sh = Arc::new(Shared::default());
    let sem = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let n = args.subs as u64;
    let want_pushes = n * (n - 1) / 2;
    let cpu0 = proc_cpu_s(args.server_pid);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(args.subs);
    for i in 0..args.subs {
        let (args, sh, sem) = (args.clone(), sh.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("s{i}");
            let mut answered = false;
            let r = match args.proto {
                Proto::Ws => ws_sub(&args, &sh, &name, &sem, &mut answered).await,
                Proto::Tcp => tcp_sub(&args, &sh, &name, &sem, &mut answered).await,
            };
            if let Err(e) = r {
                if answered {
                    sh.disconnects.fetch_add(1, Ordering::Relaxed);
                }
                sh.error(format!("{e:#}"));
            }
        }));
    }
    let deadline = t0 + Duration::from_secs(args.timeout_s);
    let (mut join_s, mut settled_s) = (None, None);
    while Instant::now() < deadline && settled_s.is_none() {
        let _ = tokio::time::timeout(Duration::from_millis(50), sh.progress.notified()).await;
        let done = sh.joined.load(Ordering::Relaxed) + sh.errors.load(Ordering::Relaxed);
        if join_s.is_none() && done >= args.subs {
            join_s = Some(t0.elapsed().as_secs_f64());
        }
        if sh.join_pushes.load(Ordering::Relaxed) >= want_pushes {
            settled_s = Some(t0.elapsed().as_secs_f64());
        }
    }
    let cpu1 = proc_cpu_s(args.server_pid);
    let dropped = match &args.http {
        Some(h) => Some(dropped(h).await?),
        None => None,
    };
    for t in tasks {
        t.abort();
    }
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    Ok(serde_json::json!({
        "label": args.label,
        "proto": format!("{:?}", args.proto).to_lowercase(),
        "batch": args.batch,
        "subs": args.subs,
        "joined": sh.joined.load(Ordering::Relaxed),
        "join_s": join_s.map(r2),
        "settled_s": settled_s.map(r2),
        "join_pushes": sh.join_pushes.load(Ordering::Relaxed),
        "join_pushes_expected": want_pushes,
        "join_frames": sh.join_frames.load(Ordering::Relaxed),
        "errors": sh.errors.load(Ordering::Relaxed),
        "disconnects": sh.disconnects.load(Ordering::Relaxed),
        "first_error": sh.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        "server_cpu_s": cpu0.zip(cpu1).map(|(a, b)| r2(b - a)),
        "dropped_total": dropped,
    }))
}

fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    if args.subs < 2 {
        bail!("--subs must be at least 2");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(run(args))?;
    println!("{out}");
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}
