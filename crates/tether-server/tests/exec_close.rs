//! A close forced by shutdown or by the timeout while a client is slow to read: the output
//! already queued still reaches a client that reads (within `--exec-close-grace`), then the close
//! frame with the right code (1001, 1011 `Timeout`), not a dropped connection (1006); a client
//! that never reads holds the shutdown no longer than the grace.

mod common;
mod exec_common;

use std::time::{Duration, Instant};

use exec_common::{
    ExecClient, Frame, alive, blocked_on_pipe, connect_small_rcvbuf, running, start, wait_until,
};

/// Receive buffer of the slow clients: the server's writes stall after little data.
const RCVBUF: u32 = 4096;

/// Starts `seq` with a client that does not read, and returns the client and seq's pid once
/// seq is blocked on its full pipe: the server is then stuck in a write to the client.
async fn stalled(server: &common::Server, path: &str) -> (ExecClient, u32) {
    let mut c = connect_small_rcvbuf(server, path, RCVBUF).await;
    assert_eq!(c.next().await, Frame::Text(r#"{"info":"send {n}"}"#.into()));
    c.send(r#"{"n":10000000}"#).await;
    let mut pid = 0;
    for _ in 0..500 {
        if let Some(p) = running(server).await.first() {
            pid = p["pid"].as_u64().unwrap_or(0) as u32;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(pid > 0, "seq never listed");
    wait_until(
        "seq blocked on its pipe (the server stuck writing)",
        Duration::from_secs(10),
        || blocked_on_pipe(pid),
    )
    .await;
    (c, pid)
}

/// Reads everything up to the close frame, slowly (a pause every few hundred frames), checking
/// that the lines are seq's 1, 2, 3, … with none missing.
async fn read_slowly(c: &mut ExecClient) -> (usize, Frame) {
    let mut n = 0usize;
    loop {
        match c.next_within(Duration::from_secs(10)).await {
            Frame::Text(t) => {
                n += 1;
                assert_eq!(t, format!("{n}\n"), "line {n} missing or out of order");
                if n.is_multiple_of(256) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            other => {
                eprintln!("read_slowly: {n} lines then {other:?}");
                return (n, other);
            }
        }
    }
}

#[tokio::test]
async fn a_slow_reader_gets_the_queued_output_then_1001_on_shutdown() {
    let mut server = start(&["--exec-close-grace", "5", "--shutdown-grace", "10"]);
    let (mut c, pid) = stalled(&server, "/ws/exec/seq").await;
    server.signal("TERM");
    // The server acted on the shutdown (seq killed) while the client still was not reading.
    wait_until("seq killed by the shutdown", Duration::from_secs(5), || {
        !alive(pid)
    })
    .await;
    let (lines, close) = read_slowly(&mut c).await;
    assert_eq!(close, Frame::Close(1001, "server shutting down".into()));
    assert!(lines > 0, "no output delivered");
    eprintln!("shutdown: {lines} queued lines delivered before the 1001");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_slow_reader_gets_the_queued_output_then_1011_on_timeout() {
    let server = start(&["--exec-close-grace", "5"]);
    let t0 = Instant::now();
    let (mut c, pid) = stalled(&server, "/ws/exec/seqshort").await;
    // The 2 s deadline passes while the client is not reading: seq is killed.
    wait_until("seq killed at the deadline", Duration::from_secs(8), || {
        !alive(pid)
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    let (lines, close) = read_slowly(&mut c).await;
    assert_eq!(close, Frame::Close(1011, "Timeout".into()));
    assert!(lines > 0, "no output delivered");
    eprintln!("timeout: {lines} queued lines delivered before the 1011");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running(&server).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the process slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_client_that_never_reads_holds_shutdown_no_longer_than_the_grace() {
    let mut server = start(&["--exec-close-grace", "1", "--shutdown-grace", "10"]);
    let (c, pid) = stalled(&server, "/ws/exec/seq").await;
    let t0 = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    let took = t0.elapsed();
    assert!(status.success(), "{status:?}");
    // The grace (1 s) plus the close frame's short chance (0.25 s) and the rest of the drain;
    // the shutdown grace (10 s) would be the bound otherwise.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "shutdown took {took:?}"
    );
    assert!(!alive(pid));
    drop(c);
}
