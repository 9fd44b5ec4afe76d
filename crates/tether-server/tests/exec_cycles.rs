//! 1,000 connect/abort cycles against the exec endpoints leave no child, no zombie and no
//! process slot behind, and the server's RSS stays within a bound.

mod common;
mod exec_common;

use std::time::{Duration, Instant};

use exec_common::{ExecClient, Frame, children_of, rss_kib, running, start, wait_until};

/// Cycles in all, spread over this many concurrent clients.
const CYCLES: usize = 1000;
const CLIENTS: usize = 8;
/// Allowed RSS growth over the cycles (measured growth is printed; see the report in
/// docs/protocol/exec.md).
const RSS_BOUND_KIB: u64 = 20 * 1024;

/// One cycle; `kind` picks where the client aborts.
async fn cycle(server: &common::Server, kind: usize) {
    match kind % 4 {
        // Before any request.
        0 => {
            let c = ExecClient::connect(server, "/ws/claude").await;
            drop(c);
        }
        // Right after the request: the process may be starting.
        1 => {
            let mut c = ExecClient::connect(server, "/ws/exec/sleep").await;
            c.send(r#"{"secs":30}"#).await;
            drop(c);
        }
        // After the first output frame of a process that would stream for long.
        2 => {
            let mut c = ExecClient::connect(server, "/ws/exec/seq").await;
            let _info = c.next().await;
            c.send(r#"{"n":10000000}"#).await;
            match c.next().await {
                Frame::Text(_) => {}
                other => assert!(
                    matches!(other, Frame::Close(1013, _)),
                    "unexpected {other:?}"
                ),
            }
            drop(c);
        }
        // A polite close while the process runs.
        _ => {
            let mut c = ExecClient::connect(server, "/ws/exec/sleep").await;
            let _info = c.next().await;
            c.send(r#"{"secs":30}"#).await;
            let _ = c.ws.close(None).await;
        }
    }
}

async fn cycles(server: &common::Server, n: usize) {
    let per = n / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|t| async move {
            for i in 0..per {
                cycle(server, t + i).await;
            }
        })
        .collect();
    futures_util::future::join_all(tasks).await;
}

async fn settled(server: &common::Server) {
    let pid = server.pid();
    wait_until(
        "no child (and no zombie) of the server",
        Duration::from_secs(10),
        || children_of(pid).is_empty(),
    )
    .await;
    for _ in 0..500 {
        if running(server).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("/exec/processes never emptied: {:?}", running(server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_aborted_connections_leave_nothing_behind() {
    let server = start(&[]);
    // Warm up: allocator arenas, tokio's worker state, the process reaper.
    cycles(&server, 200).await;
    settled(&server).await;
    let before = rss_kib(server.pid());
    let t0 = Instant::now();
    cycles(&server, CYCLES).await;
    settled(&server).await;
    let took = t0.elapsed();
    let after = rss_kib(server.pid());
    let zombies: Vec<_> = exec_common::processes()
        .into_iter()
        .filter(|p| p.state == 'Z' && p.ppid == server.pid())
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
    let growth = after.saturating_sub(before);
    eprintln!(
        "exec cycles: {CYCLES} in {took:?}; server RSS {before} KiB -> {after} KiB (+{growth} KiB)"
    );
    assert!(
        growth <= RSS_BOUND_KIB,
        "RSS grew by {growth} KiB over {CYCLES} cycles ({before} -> {after})"
    );
    assert!(took < Duration::from_secs(45), "{took:?}");
    let metrics = server.http().get("/metrics").await.text();
    assert!(metrics.contains("tether_exec_running 0"), "{metrics}");
}
