//! Hero → UI throughput through a sidekick relay: one hero and one UI peer announce themselves
//! in a session, the hero sends `N` grid `setColor` updates (the frames stock sidekick-py
//! writes, Python separators and all) with at most `WINDOW` in flight, and the UI counts them.
//! Samples the relay process's RSS while it runs, and measures over the timed part the relay's
//! CPU, the time its threads waited for a CPU while runnable, and its own CPU. Prints one JSON
//! line.
//!
//! The client must not be what limits the figure, so it speaks WebSocket itself on plain TCP
//! (RFC 6455 framing, nothing more): the hero's frames are encoded once before the clock starts
//! (masked with the all-zero key, which RFC 6455 allows: the relay still unmasks every byte) and
//! written in large slices, and the UI side counts frames by their headers without copying or
//! checking their payload. Only the frames before the timed part (presence, the `spawn`) are
//! read as text.
//!
//! Usage: relay-client URL RELAY_PID SIDE N WINDOW [MODE]
//!
//! MODE `log` (default): the hero sends `clearAll` and spawns the grid first, so the relay's
//! replay log folds every update into its cell. MODE `nolog`: the updates go to a grid that was
//! never spawned (`grid-0`, frames of the same size), so the log drops each at once (an update of
//! a component that is not live is not logged: the UI ignores it too); the relay still reads and
//! forwards every frame. The difference between the two is what keeping the log costs.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn announce(peer: &str, role: &str) -> String {
    format!(
        r#"{{"id": 0, "component": "system", "type": "announce", "payload": {{"peerId": "{peer}", "role": "{role}", "status": "online", "version": "0.0.7", "timestamp": 1795321171285}}}}"#
    )
}

fn update(i: u64, target: &str) -> String {
    let (x, y) = (i % 100, (i / 100) % 100);
    format!(
        r##"{{"id": 0, "component": "grid", "type": "update", "target": "{target}", "payload": {{"action": "setColor", "options": {{"x": {x}, "y": {y}, "color": "#{:06x}"}}}}}}"##,
        (i * 2654435761) & 0xff_ffff
    )
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds of a process (all its threads) from /proc/PID/stat.
fn cpu_s(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "comm": state is field 3, utime 14 and stime 15, so indexes 11 and 12 here.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant and has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// Seconds the threads of a process have spent runnable but waiting for a CPU (the second field
/// of /proc/PID/task/TID/schedstat, nanoseconds), summed: with the CPU time, this tells a relay
/// that had work but not the core (a busy machine) from one that had nothing to do.
fn wait_s(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let s = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += s.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// Appends one client text frame: FIN + text opcode, masked with the all-zero key (so the
/// payload goes as it is).
fn encode(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    out.push(0x81);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(text.as_bytes());
}

/// The read side of a WebSocket: server frames (unmasked) parsed in place from a large buffer.
struct FrameReader {
    stream: tokio::net::tcp::OwnedReadHalf,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

/// One frame's opcode and where its payload is in the reader's buffer.
struct Header {
    opcode: u8,
    payload: Range<usize>,
}

impl FrameReader {
    fn new(stream: tokio::net::tcp::OwnedReadHalf, leftover: &[u8]) -> FrameReader {
        let mut buf = vec![0; 1 << 20];
        buf[..leftover.len()].copy_from_slice(leftover);
        FrameReader {
            stream,
            buf,
            pos: 0,
            end: leftover.len(),
        }
    }

    /// The next complete frame already in the buffer, if any.
    fn parse(&mut self) -> anyhow::Result<Option<Header>> {
        let b = &self.buf[self.pos..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[1] & 0x80 != 0 {
            bail!("the server sent a masked frame");
        }
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0; 8];
                n.copy_from_slice(&b[2..10]);
                (usize::try_from(u64::from_be_bytes(n))?, 10)
            }
            126 | 127 => return Ok(None),
            n => (n as usize, 2),
        };
        if head + len > self.buf.len() {
            bail!("a frame of {len} bytes is larger than the read buffer");
        }
        if b.len() < head + len {
            return Ok(None);
        }
        let start = self.pos + head;
        self.pos = start + len;
        Ok(Some(Header {
            opcode: b[0],
            payload: start..start + len,
        }))
    }

    /// Reads more bytes (moving a partial frame to the front first); errors at end of stream.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            bail!("the relay closed the connection");
        }
        self.end += n;
        Ok(())
    }

    /// The next frame; a close frame is an error (the relay gave up on us).
    async fn next(&mut self) -> anyhow::Result<Header> {
        loop {
            if let Some(h) = self.parse()? {
                if h.opcode & 0x0f == 0x8 {
                    let p = &self.buf[h.payload.clone()];
                    let reason = String::from_utf8_lossy(p.get(2..).unwrap_or_default());
                    bail!("the relay closed the connection: {reason}");
                }
                return Ok(h);
            }
            self.fill().await?;
        }
    }

    /// The next text frame's text (other frames skipped).
    async fn next_text(&mut self) -> anyhow::Result<String> {
        loop {
            let h = self.next().await?;
            if h.opcode == 0x81 {
                return Ok(String::from_utf8_lossy(&self.buf[h.payload]).into_owned());
            }
        }
    }
}

/// Opens a WebSocket to `url` (`ws://HOST:PORT/PATH`); returns the stream and any bytes that
/// came after the handshake's response.
async fn connect(url: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let rest = url.strip_prefix("ws://").context("the URL must be ws://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).await.context("connect")?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the relay closed during the handshake");
        }
        got.extend_from_slice(&chunk[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if got.len() > 16 * 1024 {
            bail!("no end to the handshake response");
        }
    };
    if !got.starts_with(b"HTTP/1.1 101") {
        bail!(
            "no upgrade: {}",
            String::from_utf8_lossy(&got[..head_end]).trim()
        );
    }
    Ok((stream, got[head_end..].to_vec()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (url, pid, side, n, window, mode) = match args.as_slice() {
        [_, url, pid, side, n, window] => (url, pid, side, n, window, "log"),
        [_, url, pid, side, n, window, mode] => (url, pid, side, n, window, mode.as_str()),
        _ => bail!("usage: relay-client URL RELAY_PID SIDE N WINDOW [log|nolog]"),
    };
    let log = match mode {
        "log" => true,
        "nolog" => false,
        other => bail!("MODE must be log or nolog, not {other}"),
    };
    let pid: u32 = pid.parse().context("RELAY_PID")?;
    let n: u64 = n.parse().context("N")?;
    let window: u64 = window.parse().context("WINDOW")?;
    let rss_idle = rss_kib(pid).unwrap_or(0);

    let peak = Arc::new(AtomicU64::new(rss_idle));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let (ui, leftover) = connect(url).await.context("ui")?;
    let (ui_read, mut ui_write) = ui.into_split();
    let mut ui = FrameReader::new(ui_read, &leftover);
    let mut hello = Vec::new();
    encode(&mut hello, &announce("sidekick-bench", "sidekick"));
    ui_write.write_all(&hello).await?;
    let (hero, _) = connect(url).await.context("hero")?;
    // The hero's incoming frames (the UI's presence) are never read: a few hundred bytes.
    let (_hero_read, mut hero) = hero.into_split();
    let mut hello = Vec::new();
    encode(&mut hello, &announce("hero-py-bench", "hero"));
    hero.write_all(&hello).await?;
    // The UI hears of the hero: both are announced.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !ui.next_text().await?.contains("hero-py-bench") {}
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("no hero presence at the UI")??;
    let rss_connected = rss_kib(pid).unwrap_or(0);
    // The last frame before the updates, which the UI waits for: the spawn, or (nolog) a
    // frame the log ignores as it ignores the updates.
    let target = if log { "grid-1" } else { "grid-0" };
    let mut setup = Vec::new();
    if log {
        encode(
            &mut setup,
            r#"{"id": 0, "component": "global", "type": "clearAll"}"#,
        );
    }
    let marker = format!(
        r#"{{"id": 0, "component": "grid", "type": "{}", "target": "grid-1", "payload": {{"numColumns": 100, "numRows": 100}}}}"#,
        if log { "spawn" } else { "bench-start" }
    );
    encode(&mut setup, &marker);
    hero.write_all(&setup).await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        while ui.next_text().await? != marker {}
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("the UI did not get the frame before the updates")??;

    // Every update encoded once, before the clock starts; `at[i]` is where frame i begins.
    let mut wire = Vec::new();
    let mut at = Vec::with_capacity(n as usize + 1);
    for i in 0..n {
        at.push(wire.len());
        encode(&mut wire, &update(i, target));
    }
    at.push(wire.len());
    let payload_bytes = (wire.len() - 6 * n as usize) as u64;

    let received = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let progress = tokio::sync::Notify::new();
    let reader = async {
        let mut got = 0u64;
        while got < n {
            // Every complete frame in the buffer, then one wake-up of the writer at most.
            while got < n {
                match ui.parse()? {
                    Some(h) if h.opcode == 0x81 => got += 1,
                    Some(h) if h.opcode & 0x0f == 0x8 => bail!("the relay closed the UI"),
                    Some(h) => bail!("unexpected frame with opcode {:#x}", h.opcode),
                    None => break,
                }
            }
            received.store(got, Ordering::Release);
            // Refill when half the window is free: fewer, larger writes.
            if sent.load(Ordering::Acquire) - got <= window / 2 {
                progress.notify_one();
            }
            if got < n {
                ui.fill()
                    .await
                    .with_context(|| format!("after {got} updates"))?;
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    let cpu0 = (cpu_s(Some(pid)), cpu_s(None), wait_s(pid));
    let start = Instant::now();
    let writer = async {
        let mut s = 0u64;
        while s < n {
            let inflight = s - received.load(Ordering::Acquire);
            if inflight > window / 2 {
                progress.notified().await;
                continue;
            }
            let batch = (window - inflight).min(n - s);
            let next = s + batch;
            sent.store(next, Ordering::Release);
            hero.write_all(&wire[at[s as usize]..at[next as usize]])
                .await?;
            s = next;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (r, w) = tokio::join!(reader, writer);
    r?;
    w?;
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = (cpu_s(Some(pid)), cpu_s(None), wait_s(pid));
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let line = serde_json::json!({
        "side": side,
        "mode": mode,
        "n": n,
        "window": window,
        "secs": secs,
        "updates_per_s": n as f64 / secs,
        "mib_per_s": payload_bytes as f64 / secs / 1048576.0,
        "frame_bytes": payload_bytes as f64 / n as f64,
        "server_cpu_s": diff(cpu0.0, cpu1.0),
        "client_cpu_s": diff(cpu0.1, cpu1.1),
        "server_wait_s": diff(cpu0.2, cpu1.2),
        "rss_idle_kib": rss_idle,
        "rss_connected_kib": rss_connected,
        "rss_peak_kib": peak.load(Ordering::Relaxed),
    });
    println!("{line}");
    Ok(())
}
