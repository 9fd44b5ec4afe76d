//! Process-over-WebSocket client for `bench/exec`: the same command behind tether's
//! `/ws/exec/<name>` and behind websocketd, measured from the client's side.
//!
//! - `latency`: `N` connections one after another; each one's time from the start of the TCP
//!   connect to the first line of the command's output (tether: the request frame is sent right
//!   after the handshake, and its `{"info": …}` frame is not output). Then the socket is read to
//!   its end before the next connect.
//! - `throughput`: one connection to a command printing many lines; lines/s from the start of the
//!   connect to the end of the stream, and a check that every line arrived.
//!
//! - `latency-pair`: `latency` for two servers at once, connection by connection, alternating
//!   which goes first (one JSON line per side).
//!
//! The client is [`raw`]: blocking, one thread, frames parsed in place, so that it costs far
//! less per frame than either server (`client_cpu_s` in each line shows it).
//!
//! Prints one JSON line (two for `latency-pair`). Usage:
//!   exec-client latency URL SIDE N REQUEST|-
//!   exec-client latency-pair SIDE_A URL_A REQUEST_A|- SIDE_B URL_B REQUEST_B|- N
//!   exec-client throughput URL SIDE EXPECTED_LINES REQUEST|-

mod raw;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail};

use raw::{Frame, Ws};

/// Whether a text message is the server speaking (`{"info": …}`), not the command's output.
fn is_info(t: &[u8]) -> bool {
    t.starts_with(b"{\"info\"") && !t.ends_with(b"\n")
}

/// Counts the lines of output in a stream of text frames: tether sends `line\n` (a message
/// may hold several); websocketd sends each line as its own message without the `\n`. The
/// `{"info": …}` message is not output.
#[derive(Default)]
struct Lines {
    lines: u64,
    messages: u64,
    bytes: u64,
    /// Newlines and bytes of the message being read (it may span continuation frames).
    msg_nl: u64,
    msg_len: u64,
    msg_info: bool,
}

impl Lines {
    /// One text or continuation frame; true when it ended a message of output.
    fn frame(&mut self, payload: &[u8], first: bool, fin: bool) -> bool {
        if first {
            self.msg_nl = 0;
            self.msg_len = 0;
            self.msg_info = fin && is_info(payload);
        }
        if self.msg_info {
            return false;
        }
        self.msg_nl += memchr::memchr_iter(b'\n', payload).count() as u64;
        self.msg_len += payload.len() as u64;
        if !fin {
            return false;
        }
        self.messages += 1;
        self.bytes += self.msg_len;
        self.lines += if self.msg_nl == 0 && self.msg_len > 0 {
            1
        } else {
            self.msg_nl
        };
        true
    }
}

fn open(url: &str, request: Option<&str>) -> anyhow::Result<Ws> {
    let mut ws = Ws::connect(url)?;
    if let Some(req) = request {
        ws.send_text(req).context("send request")?;
    }
    Ok(ws)
}

/// Timings of one side's connections.
#[derive(Default)]
struct Lat {
    first: Vec<f64>,
    shake: Vec<f64>,
    whole: Vec<f64>,
    closes: BTreeMap<u16, u64>,
}

impl Lat {
    fn report(mut self) -> serde_json::Value {
        let n = self.first.len();
        let pct = |v: &mut Vec<f64>, p: f64| {
            v.sort_by(f64::total_cmp);
            let i = ((v.len() as f64 - 1.0) * p).round() as usize;
            v.get(i.min(v.len().saturating_sub(1))).copied()
        };
        let mean = self.first.iter().sum::<f64>() / n.max(1) as f64;
        serde_json::json!({
            "phase": "latency",
            "n": n,
            "first_line_min_ms": pct(&mut self.first, 0.0),
            "first_line_p10_ms": pct(&mut self.first, 0.1),
            "first_line_p50_ms": pct(&mut self.first, 0.5),
            "first_line_p99_ms": pct(&mut self.first, 0.99),
            "first_line_mean_ms": mean,
            "first_line_max_ms": pct(&mut self.first, 1.0),
            "handshake_p50_ms": pct(&mut self.shake, 0.5),
            "to_close_p50_ms": pct(&mut self.whole, 0.5),
            "to_close_p99_ms": pct(&mut self.whole, 0.99),
            "closes": self.closes,
        })
    }
}

/// One connection: connect, (request), read to the end; records its timings in `lat`.
fn one_connection(url: &str, request: Option<&str>, i: usize, lat: &mut Lat) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut ws = open(url, request).with_context(|| format!("connection {i}"))?;
    let t_open = t0.elapsed();
    let mut t_first = None;
    let mut lines = Lines::default();
    let code = loop {
        match ws.next()? {
            Frame::Text {
                payload,
                first,
                fin,
            } => {
                if lines.frame(payload, first, fin) && t_first.is_none() {
                    t_first = Some(t0.elapsed());
                }
            }
            Frame::Close(code) => break code,
            Frame::Other => {}
            Frame::Eof => break 1006,
        }
    };
    let Some(t_first) = t_first else {
        bail!("connection {i}: no output line (close {code})");
    };
    lat.first.push(t_first.as_secs_f64() * 1e3);
    lat.shake.push(t_open.as_secs_f64() * 1e3);
    lat.whole.push(t0.elapsed().as_secs_f64() * 1e3);
    *lat.closes.entry(code).or_default() += 1;
    Ok(())
}

/// One side: `n` connections one after another.
fn latency(url: &str, n: usize, request: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let mut lat = Lat::default();
    for i in 0..n {
        one_connection(url, request, i, &mut lat)?;
    }
    Ok(lat.report())
}

/// Two sides, connection by connection (A B, B A, A B, …), so that whatever else the machine
/// does at a moment weighs on both alike. Returns one report per side.
fn latency_pair(
    a: (&str, &str, Option<&str>),
    b: (&str, &str, Option<&str>),
    n: usize,
) -> anyhow::Result<[serde_json::Value; 2]> {
    let (mut la, mut lb) = (Lat::default(), Lat::default());
    for i in 0..n {
        if i % 2 == 0 {
            one_connection(a.1, a.2, i, &mut la)?;
            one_connection(b.1, b.2, i, &mut lb)?;
        } else {
            one_connection(b.1, b.2, i, &mut lb)?;
            one_connection(a.1, a.2, i, &mut la)?;
        }
    }
    let (mut ra, mut rb) = (la.report(), lb.report());
    ra["side"] = a.0.into();
    rb["side"] = b.0.into();
    ra["paired"] = true.into();
    rb["paired"] = true.into();
    Ok([ra, rb])
}

fn throughput(
    url: &str,
    expected: u64,
    request: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let t0 = Instant::now();
    let mut ws = open(url, request)?;
    let mut lines = Lines::default();
    let mut t_first = None;
    let mut last: Vec<u8> = Vec::new();
    let code = loop {
        match ws.next()? {
            Frame::Text {
                payload,
                first,
                fin,
            } => {
                if lines.frame(payload, first, fin) {
                    t_first.get_or_insert_with(|| t0.elapsed());
                    if lines.lines >= expected.saturating_sub(1) {
                        last.clear();
                        last.extend_from_slice(payload);
                    }
                }
            }
            Frame::Close(code) => break code,
            Frame::Other => {}
            Frame::Eof => break 1006,
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let last = String::from_utf8_lossy(&last);
    if lines.lines != expected {
        bail!(
            "got {} lines, expected {expected} (close {code}, last frame {last:?})",
            lines.lines
        );
    }
    Ok(serde_json::json!({
        "phase": "throughput",
        "lines": lines.lines,
        "frames": lines.messages,
        "bytes": lines.bytes,
        "secs": secs,
        "first_line_ms": t_first.map(|d| d.as_secs_f64() * 1e3),
        "lines_per_s": lines.lines as f64 / secs,
        "lines_per_frame": lines.lines as f64 / lines.messages.max(1) as f64,
        "last_line": last.trim_end(),
        "close": code,
    }))
}

/// This process's CPU seconds (user + system, from getrusage: microseconds, where
/// /proc/self/stat counts 10 ms ticks): shows whether the client itself could be the bottleneck.
fn own_cpu_secs() -> Option<f64> {
    // SAFETY: an all-zero rusage is valid; getrusage fills it and touches nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(ru.ru_utime) + secs(ru.ru_stime))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, side_a, url_a, req_a, side_b, url_b, req_b, n] = args.as_slice()
        && mode == "latency-pair"
    {
        fn req(r: &str) -> Option<&str> {
            (r != "-").then_some(r)
        }
        let reports = latency_pair(
            (side_a, url_a, req(req_a)),
            (side_b, url_b, req(req_b)),
            n.parse().context("N")?,
        )?;
        let cpu = own_cpu_secs();
        for mut r in reports {
            r["client_cpu_s"] = cpu.into();
            println!("{r}");
        }
        return Ok(());
    }
    let [_, mode, url, side, n, request] = args.as_slice() else {
        bail!("usage: exec-client latency|throughput URL SIDE N REQUEST|-");
    };
    let request = (request != "-").then_some(request.as_str());
    let mut out = match mode.as_str() {
        "latency" => latency(url, n.parse().context("N")?, request)?,
        "throughput" => throughput(url, n.parse().context("EXPECTED_LINES")?, request)?,
        other => bail!("unknown mode {other}"),
    };
    out["side"] = side.as_str().into();
    out["client_cpu_s"] = own_cpu_secs().into();
    println!("{out}");
    Ok(())
}
