//! Nothing an exec command starts outlives its connection (or, at the latest, the server): a
//! descendant that leaves the process group and the session (`setsid`) and ignores SIGTERM, a
//! grandchild that ignores SIGTERM, a background job left after a normal exit; orphans adopted by
//! the server (a child subreaper) are reaped as they exit. Processes are found in `/proc`, by
//! ancestry while the connection runs and by pid + start time afterwards.

mod common;
mod exec_common;

use std::time::Duration;

use exec_common::{
    ExecClient, Frame, ProcStat, children_of, cmdline, descendants_of, marked_by, processes, start,
    still_running, wait_until,
};

/// Live processes below the server whose argv is `argv`.
fn below_server(server_pid: u32, argv: &[&str]) -> Vec<ProcStat> {
    descendants_of(server_pid)
        .into_iter()
        .filter(|p| p.state != 'Z' && cmdline(p.pid) == argv)
        .collect()
}

/// Opens `path`, sends `{}` and waits for the `started` line.
async fn started(server: &common::Server, path: &str) -> ExecClient {
    let mut c = ExecClient::open(server, path, "send {}").await;
    c.send("{}").await;
    assert_eq!(c.next().await, Frame::Text("started\n".into()));
    c
}

/// Waits until `n` processes with `argv` run below the server, and returns them.
async fn wait_for(server_pid: u32, argv: &[&str], n: usize) -> Vec<ProcStat> {
    let mut found = Vec::new();
    wait_until(
        &format!("{n} × {argv:?} below the server"),
        Duration::from_secs(5),
        || {
            found = below_server(server_pid, argv);
            found.len() == n
        },
    )
    .await;
    found
}

async fn all_gone(what: &str, procs: &[ProcStat]) {
    wait_until(what, Duration::from_secs(5), || {
        !procs.iter().any(still_running)
    })
    .await;
}

/// The issue's reproduction: `sh -c "(setsid sh -c 'trap \"\" TERM; sleep 301') & echo started;
/// sleep 300"` over three connections; each escaped tree goes with its connection, and after the
/// server stops nothing of theirs is left anywhere.
#[tokio::test]
async fn escaped_setsid_trees_go_with_their_connections_and_nothing_is_left_after_stop() {
    let mut server = start(&[]);
    let spid = server.pid();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(started(&server, "/ws/exec/esc").await);
    }
    let escaped = wait_for(spid, &["sleep", "301"], 3).await;
    // Each left the command's group and session.
    for p in &escaped {
        let sh = processes().into_iter().find(|q| q.pid == p.ppid);
        assert!(
            sh.is_some_and(|sh| sh.session == sh.pid && p.session == sh.pid),
            "{p:?} did not escape into its own session"
        );
    }
    let marked = marked_by(spid);
    assert!(
        marked.len() >= 3 * 3,
        "every process carries its mark: {marked:?}"
    );
    // Two polite closes, one broken connection (no close frame).
    for (i, mut c) in clients.into_iter().enumerate() {
        if i < 2 {
            c.ws.close(None).await.expect("close");
        }
    }
    all_gone("the three sleep 301 trees killed", &escaped).await;
    wait_until("nothing marked left", Duration::from_secs(5), || {
        marked_by(spid).is_empty()
    })
    .await;
    wait_until("no child or zombie left", Duration::from_secs(5), || {
        children_of(spid).is_empty()
    })
    .await;
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    assert!(!escaped.iter().any(still_running));
    assert!(
        marked_by(spid).is_empty(),
        "left after stop: {:?}",
        marked_by(spid)
    );
}

/// The same trees while their connections are still open when the server is stopped: gone
/// by the time it has exited.
#[tokio::test]
async fn escaped_trees_are_stopped_before_the_server_exits() {
    let mut server = start(&[]);
    let spid = server.pid();
    let mut clients = Vec::new();
    for path in ["/ws/exec/esc", "/ws/exec/esc", "/ws/exec/bg"] {
        clients.push(started(&server, path).await);
    }
    let mut left = wait_for(spid, &["sleep", "301"], 2).await;
    left.extend(wait_for(spid, &["sleep", "302"], 1).await);
    server.signal("TERM");
    for c in &mut clients {
        let (_, close) = c.until_close().await;
        assert_eq!(close, Frame::Close(1001, "server shutting down".into()));
    }
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    // Killed before the exit, not merely left to init: checked at once.
    let survivors: Vec<&ProcStat> = left.iter().filter(|p| still_running(p)).collect();
    assert!(survivors.is_empty(), "survived the server: {survivors:?}");
    assert!(marked_by(spid).is_empty(), "{:?}", marked_by(spid));
}

/// A grandchild in the command's group that ignores SIGTERM: SIGKILL after the kill grace.
#[tokio::test]
async fn a_term_ignoring_grandchild_is_killed_after_the_grace() {
    let server = start(&[]);
    let spid = server.pid();
    let mut c = started(&server, "/ws/exec/bg").await;
    let grandchild = wait_for(spid, &["sleep", "302"], 1).await;
    c.ws.close(None).await.expect("close");
    all_gone("the grandchild killed", &grandchild).await;
    wait_until("no child or zombie left", Duration::from_secs(5), || {
        children_of(spid).is_empty()
    })
    .await;
    // Counted once the teardown has seen them gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = server.http().get("/metrics").await.text();
        if metrics
            .lines()
            .any(|l| l.starts_with("tether_exec_descendants_stopped_total{endpoint=\"bg\"}"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A background job (ignoring SIGTERM, holding no pipe) left by a command that exits 0: the
/// client gets its 1000 at once, and the job is stopped after it (SIGKILL after the grace).
#[tokio::test]
async fn a_job_left_behind_by_a_normal_exit_is_stopped() {
    let server = exec_common::builder_with_kill_grace("2").start();
    let spid = server.pid();
    let mut c = ExecClient::open(&server, "/ws/exec/leftover", "send {}").await;
    c.send("{}").await;
    let (frames, close) = c.until_close().await;
    assert_eq!(frames, ["started\n"]);
    assert_eq!(close, Frame::Close(1000, String::new()));
    // It ignores the SIGTERM, so it is there for the 2 s grace.
    let mut job = Vec::new();
    wait_until("the job, marked", Duration::from_secs(2), || {
        job = marked_by(spid)
            .into_iter()
            .filter(|p| cmdline(p.pid) == ["sleep", "303"])
            .collect();
        !job.is_empty()
    })
    .await;
    all_gone("the job stopped", &job).await;
    wait_until("nothing marked left", Duration::from_secs(5), || {
        marked_by(spid).is_empty()
    })
    .await;
}

/// An orphan adopted by the server (its parent exited at once) that exits on its own 2 s later
/// is reaped while the connection still runs: no zombie piles up.
#[tokio::test]
async fn adopted_orphans_are_reaped_as_they_exit() {
    let server = start(&[]);
    let spid = server.pid();
    let mut c = started(&server, "/ws/exec/orphan").await;
    let orphan = wait_for(spid, &["sleep", "2"], 1).await;
    assert_eq!(orphan[0].ppid, spid, "adopted by the server (subreaper)");
    wait_until("the orphan reaped", Duration::from_secs(5), || {
        !processes()
            .iter()
            .any(|p| p.pid == orphan[0].pid && p.start == orphan[0].start)
    })
    .await;
    // The connection is still running: the reap did not wait for its end.
    assert_eq!(exec_common::running(&server).await.len(), 1);
    c.ws.close(None).await.expect("close");
    wait_until("no child or zombie left", Duration::from_secs(5), || {
        children_of(spid).is_empty()
    })
    .await;
}

/// The documented limit: a descendant that clears its environment and leaves the session, and
/// whose parent exits before any teardown saw it, cannot be told to be this connection's; the
/// server (its subreaper) still stops it on shutdown.
#[tokio::test]
async fn an_unmarked_escaped_descendant_is_stopped_at_shutdown_at_the_latest() {
    let mut server = start(&[]);
    let spid = server.pid();
    let mut c = ExecClient::open(&server, "/ws/exec/envless", "send {}").await;
    c.send("{}").await;
    assert_eq!(c.next().await, Frame::Text("started\n".into()));
    let escaped = wait_for(spid, &["sleep", "304"], 1).await;
    c.send("go").await; // its parent exits; it is adopted by the server
    let (_, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    assert!(
        !escaped.iter().any(still_running),
        "survived the server: {escaped:?}"
    );
}

/// An unmarked descendant that left the session, still tied to the running command by its
/// parent when the connection ends: the server looks before it signals, so it knows the
/// descendant after its re-parenting and stops it with the connection.
#[tokio::test]
async fn an_unmarked_descendant_seen_while_attached_goes_with_its_connection() {
    let server = start(&[]);
    let spid = server.pid();
    let c = started(&server, "/ws/exec/envless-attached").await;
    let escaped = wait_for(spid, &["sleep", "308"], 1).await;
    assert!(
        marked_by(spid).iter().all(|p| p.pid != escaped[0].pid),
        "it has no mark"
    );
    drop(c);
    all_gone("the unmarked descendant stopped", &escaped).await;
    wait_until("no child or zombie left", Duration::from_secs(5), || {
        children_of(spid).is_empty()
    })
    .await;
}
