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
//! Prints one JSON line (two for `latency-pair`). Usage:
//!   exec-client latency URL SIDE N REQUEST|-
//!   exec-client latency-pair SIDE_A URL_A REQUEST_A|- SIDE_B URL_B REQUEST_B|- N
//!   exec-client throughput URL SIDE EXPECTED_LINES REQUEST|-

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one connection may take before the run is abandoned.
const CONN_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether a text frame is the server speaking (`{"info": …}`), not the command's output.
fn is_info(t: &str) -> bool {
    t.starts_with("{\"info\"") && !t.ends_with('\n')
}

/// Lines of output in one text frame: tether sends `line\n` (a frame may hold several);
/// websocketd sends each line as its own frame without the `\n`.
fn lines_in(t: &str) -> u64 {
    let n = count_newlines(t.as_bytes());
    if n == 0 && !t.is_empty() { 1 } else { n }
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

async fn open(url: &str, request: Option<&str>) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .with_context(|| format!("connect {url}"))?;
    if let Some(req) = request {
        ws.send(Message::text(req)).await.context("send request")?;
    }
    Ok(ws)
}

/// What ended a stream: the close code (1006 when the TCP connection ended without a close frame).
fn close_code(frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> u16 {
    frame.map_or(1005, |f| u16::from(f.code))
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
async fn one_connection(
    url: &str,
    request: Option<&str>,
    i: usize,
    lat: &mut Lat,
) -> anyhow::Result<()> {
    {
        let t0 = Instant::now();
        let run = async {
            let mut ws = open(url, request).await?;
            let t_open = t0.elapsed();
            let mut t_first = None;
            let code = loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        if t_first.is_none() && !is_info(t.as_str()) {
                            t_first = Some(t0.elapsed());
                        }
                    }
                    Some(Ok(Message::Close(f))) => break close_code(f.as_ref()),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break 1006,
                }
            };
            let Some(t_first) = t_first else {
                bail!("connection {i}: no output line (close {code})");
            };
            Ok::<_, anyhow::Error>((t_open, t_first, t0.elapsed(), code))
        };
        let (t_open, t_first, t_all, code) = tokio::time::timeout(CONN_TIMEOUT, run)
            .await
            .with_context(|| format!("connection {i} timed out"))??;
        lat.first.push(t_first.as_secs_f64() * 1e3);
        lat.shake.push(t_open.as_secs_f64() * 1e3);
        lat.whole.push(t_all.as_secs_f64() * 1e3);
        *lat.closes.entry(code).or_default() += 1;
    }
    Ok(())
}

/// One side: `n` connections one after another.
async fn latency(url: &str, n: usize, request: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let mut lat = Lat::default();
    for i in 0..n {
        one_connection(url, request, i, &mut lat).await?;
    }
    Ok(lat.report())
}

/// Two sides, connection by connection (A B, B A, A B, …), so that whatever else the machine
/// does at a moment weighs on both alike. Returns one report per side.
async fn latency_pair(
    a: (&str, &str, Option<&str>),
    b: (&str, &str, Option<&str>),
    n: usize,
) -> anyhow::Result<[serde_json::Value; 2]> {
    let (mut la, mut lb) = (Lat::default(), Lat::default());
    for i in 0..n {
        if i % 2 == 0 {
            one_connection(a.1, a.2, i, &mut la).await?;
            one_connection(b.1, b.2, i, &mut lb).await?;
        } else {
            one_connection(b.1, b.2, i, &mut lb).await?;
            one_connection(a.1, a.2, i, &mut la).await?;
        }
    }
    let (mut ra, mut rb) = (la.report(), lb.report());
    ra["side"] = a.0.into();
    rb["side"] = b.0.into();
    ra["paired"] = true.into();
    rb["paired"] = true.into();
    Ok([ra, rb])
}

async fn throughput(
    url: &str,
    expected: u64,
    request: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let t0 = Instant::now();
    let run = async {
        let mut ws = open(url, request).await?;
        let (mut lines, mut frames, mut bytes) = (0u64, 0u64, 0u64);
        let mut t_first = None;
        let mut last = String::new();
        let code = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if is_info(t) {
                        continue;
                    }
                    t_first.get_or_insert_with(|| t0.elapsed());
                    frames += 1;
                    bytes += t.len() as u64;
                    lines += lines_in(t);
                    if lines >= expected.saturating_sub(1) {
                        last.clear();
                        last.push_str(t);
                    }
                }
                Some(Ok(Message::Close(f))) => break close_code(f.as_ref()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break 1006,
            }
        };
        Ok::<_, anyhow::Error>((lines, frames, bytes, t_first, code, last))
    };
    let (lines, frames, bytes, t_first, code, last) = tokio::time::timeout(CONN_TIMEOUT, run)
        .await
        .context("throughput run timed out")??;
    let secs = t0.elapsed().as_secs_f64();
    if lines != expected {
        bail!("got {lines} lines, expected {expected} (close {code}, last frame {last:?})");
    }
    Ok(serde_json::json!({
        "phase": "throughput",
        "lines": lines,
        "frames": frames,
        "bytes": bytes,
        "secs": secs,
        "first_line_ms": t_first.map(|d| d.as_secs_f64() * 1e3),
        "lines_per_s": lines as f64 / secs,
        "lines_per_frame": lines as f64 / frames.max(1) as f64,
        "last_line": last.trim_end(),
        "close": code,
    }))
}

/// This process's CPU seconds (user + system), from /proc/self/stat: shows whether the client
/// itself could be the bottleneck.
fn own_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
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
        )
        .await?;
        for r in reports {
            println!("{r}");
        }
        return Ok(());
    }
    let [_, mode, url, side, n, request] = args.as_slice() else {
        bail!("usage: exec-client latency|throughput URL SIDE N REQUEST|-");
    };
    let request = (request != "-").then_some(request.as_str());
    let mut out = match mode.as_str() {
        "latency" => latency(url, n.parse().context("N")?, request).await?,
        "throughput" => throughput(url, n.parse().context("EXPECTED_LINES")?, request).await?,
        other => bail!("unknown mode {other}"),
    };
    out["side"] = side.as_str().into();
    out["client_cpu_s"] = own_cpu_secs().into();
    println!("{out}");
    Ok(())
}
