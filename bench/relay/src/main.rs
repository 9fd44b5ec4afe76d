//! Hero → UI throughput through a sidekick relay: one hero and one UI peer announce themselves
//! in a session, the hero sends `N` grid `setColor` updates (the frames stock sidekick-py
//! writes, Python separators and all) with at most `WINDOW` in flight, and the UI counts them.
//! Samples the relay process's RSS while it runs. Prints one JSON line.
//!
//! Usage: relay-client URL RELAY_PID SIDE N WINDOW

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn announce(peer: &str, role: &str) -> String {
    format!(
        r#"{{"id": 0, "component": "system", "type": "announce", "payload": {{"peerId": "{peer}", "role": "{role}", "status": "online", "version": "0.0.7", "timestamp": 1795321171285}}}}"#
    )
}

fn update(i: u64) -> String {
    let (x, y) = (i % 100, (i / 100) % 100);
    format!(
        r##"{{"id": 0, "component": "grid", "type": "update", "target": "grid-1", "payload": {{"action": "setColor", "options": {{"x": {x}, "y": {y}, "color": "#{:06x}"}}}}}}"##,
        (i * 2654435761) & 0xff_ffff
    )
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, pid, side, n, window] = args.as_slice() else {
        bail!("usage: relay-client URL RELAY_PID SIDE N WINDOW");
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

    let (mut ui, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .context("ui")?;
    ui.send(Message::text(announce("sidekick-bench", "sidekick")))
        .await?;
    let (mut hero, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .context("hero")?;
    hero.send(Message::text(announce("hero-py-bench", "hero")))
        .await?;
    // The UI hears of the hero: both are announced.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ui.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("hero-py-bench") => break,
            Ok(Some(Ok(_))) => {}
            other => bail!("no hero presence at the UI: {other:?}"),
        }
    }
    let rss_connected = rss_kib(pid).unwrap_or(0);
    hero.send(Message::text(
        r#"{"id": 0, "component": "global", "type": "clearAll"}"#,
    ))
    .await?;
    hero.send(Message::text(
        r#"{"id": 0, "component": "grid", "type": "spawn", "target": "grid-1", "payload": {"numColumns": 100, "numRows": 100}}"#,
    ))
    .await?;
    let frames: Vec<String> = (0..n).map(update).collect();
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();

    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let (received, progress) = (received.clone(), progress.clone());
        async move {
            let mut got = 0u64;
            let mut seen_spawn = false;
            while got < n {
                match ui.next().await {
                    Some(Ok(Message::Text(t))) => {
                        if !seen_spawn {
                            seen_spawn = t.as_str().contains("\"spawn\"");
                            continue;
                        }
                        got += 1;
                        received.store(got, Ordering::Release);
                        progress.notify_one();
                    }
                    Some(Ok(_)) => {}
                    other => bail!("UI socket ended after {got} updates: {other:?}"),
                }
            }
            Ok::<_, anyhow::Error>(ui)
        }
    };
    let writer = async {
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < n {
            let inflight = sent - received.load(Ordering::Acquire);
            if inflight >= window {
                progress.notified().await;
                continue;
            }
            let batch = (window - inflight).min(n - sent);
            for f in &frames[sent as usize..(sent + batch) as usize] {
                hero.feed(Message::text(f.clone())).await?;
            }
            hero.flush().await?;
            sent += batch;
        }
        Ok::<_, anyhow::Error>(start)
    };
    let (ui_result, start) = tokio::join!(reader, writer);
    let start = start?;
    let _ui = ui_result?;
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let line = serde_json::json!({
        "side": side,
        "n": n,
        "window": window,
        "secs": secs,
        "updates_per_s": n as f64 / secs,
        "mib_per_s": bytes as f64 / secs / 1048576.0,
        "frame_bytes": bytes as f64 / n as f64,
        "rss_idle_kib": rss_idle,
        "rss_connected_kib": rss_connected,
        "rss_peak_kib": peak.load(Ordering::Relaxed),
    });
    println!("{line}");
    Ok(())
}
