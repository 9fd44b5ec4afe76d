//! 1,000 connect/abort cycles against the exec endpoints leave no process behind (no child, no
//! zombie, no descendant of the server, nothing anywhere carrying one of its connections' marks,
//! including descendants that ignore SIGTERM or left their process group and session) and no
//! process slot, and the server's RSS stays within a bound.

mod common;
mod exec_common;

use std::time::{Duration, Instant};

use exec_common::{
    ExecClient, Frame, children_of, cpu_time, descendants_of, marked_by, rss_kib, running, start,
    wait_until,
};

/// Cycles in all, spread over this many concurrent clients.
const CYCLES: usize = 1000;
const CLIENTS: usize = 8;
/// Allowed RSS growth over the cycles (measured growth is printed; see the report in
/// docs/protocol/exec.md).
const RSS_BOUND_KIB: u64 = 20 * 1024;

/// One cycle; `kind` picks the command and where the client aborts.
async fn cycle(server: &common::Server, kind: usize) {
    match kind % 6 {
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
        // A descendant that left the group and the session and ignores SIGTERM (`esc`), or a
        // grandchild in the group that ignores SIGTERM (`bg`): an abort, or a polite close, once
        // it runs.
        4 | 5 => {
            let path = if kind % 6 == 4 {
                "/ws/exec/esc"
            } else {
                "/ws/exec/bg"
            };
            let mut c = ExecClient::connect(server, path).await;
            let _info = c.next().await;
            c.send("{}").await;
            match c.next().await {
                Frame::Text(t) => assert_eq!(t, "started\n"),
                other => assert!(
                    matches!(other, Frame::Close(1013, _)),
                    "unexpected {other:?}"
                ),
            }
            if kind % 6 == 5 {
                let _ = c.ws.close(None).await;
            }
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
    // The grandchildren and the escaped trees too: nothing below the server, nothing marked by
    // it anywhere (a process re-parented to init would be found here).
    wait_until(
        "no descendant and no marked process left",
        Duration::from_secs(10),
        || descendants_of(pid).is_empty() && marked_by(pid).is_empty(),
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
    let cpu0 = cpu_time(server.pid());
    let t0 = Instant::now();
    cycles(&server, CYCLES).await;
    settled(&server).await;
    let took = t0.elapsed();
    let after = rss_kib(server.pid());
    let cpu = cpu_time(server.pid()).saturating_sub(cpu0);
    let zombies: Vec<_> = exec_common::processes()
        .into_iter()
        .filter(|p| p.state == 'Z' && p.ppid == server.pid())
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
    let growth = after.saturating_sub(before);
    eprintln!(
        "exec cycles: {CYCLES} in {took:?} (server CPU {cpu:?}); server RSS {before} KiB -> {after} KiB (+{growth} KiB)"
    );
    assert!(
        growth <= RSS_BOUND_KIB,
        "RSS grew by {growth} KiB over {CYCLES} cycles ({before} -> {after})"
    );
    assert!(took < Duration::from_secs(45), "{took:?}");
    let metrics = server.http().get("/metrics").await.text();
    assert!(metrics.contains("tether_exec_running 0"), "{metrics}");
}
