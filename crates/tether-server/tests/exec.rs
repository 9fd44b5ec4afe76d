//! `/ws/claude` and `/ws/exec/<name>` against the real binary and a fake `claude`
//! (`tests/fixtures/exec/fake-claude`): frames, close codes, validation, timeouts, the kill
//! sequence, limits, one request per connection and the HTTP listings.

mod common;
mod exec_common;

use std::time::{Duration, Instant};

use exec_common::{ExecClient, Frame, alive, group_members, json, running, start, wait_until};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const CLAUDE_INFO: &str = "send {prompt,meta}";

fn error(msg: &str) -> Frame {
    Frame::Text(json!({ "error": msg }).to_string())
}

async fn claude(server: &common::Server, prompt: &str) -> ExecClient {
    let mut c = ExecClient::open(server, "/ws/claude", CLAUDE_INFO).await;
    c.send(&json!({ "prompt": prompt }).to_string()).await;
    c
}

/// The `short` endpoint: the claude protocol with a 3 s timeout.
async fn short(server: &common::Server, prompt: &str) -> ExecClient {
    let mut c = ExecClient::open(server, "/ws/exec/short", CLAUDE_INFO).await;
    c.send(&json!({ "prompt": prompt }).to_string()).await;
    c
}

/// Reads frames until `{"pid": N}` (the fake's first line with the `pid` word).
async fn read_pid(c: &mut ExecClient) -> u32 {
    match c.next().await {
        Frame::Text(t) => json(&t)["pid"].as_u64().expect("pid line") as u32,
        other => panic!("expected the pid line, got {other:?}"),
    }
}

#[tokio::test]
async fn claude_streams_lines_with_newlines_and_closes_1000_after_the_last() {
    let server = start(&[]);
    let mut c = ExecClient::open(&server, "/ws/claude", CLAUDE_INFO).await;
    c.send(r#"{"prompt":"-rf lines=3 argv","meta":"TASK-1_A","ignored":true}"#)
        .await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    assert!(frames.iter().all(|f| f.ends_with('\n')), "{frames:?}");
    let argv = json(&frames[0]);
    assert_eq!(
        argv["argv"],
        json!([
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--",
            "-rf lines=3 argv\n\n[meta:TASK-1_A]"
        ])
    );
    let types: Vec<String> = frames[1..]
        .iter()
        .map(|f| json(f)["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        types,
        ["system", "assistant", "assistant", "assistant", "result"]
    );
    assert!(running(&server).await.is_empty());
}

#[tokio::test]
async fn invalid_requests_get_an_error_frame_and_1008_without_a_process() {
    let server = start(&[]);
    let long = "a".repeat(8193);
    let euros = "€".repeat(2731); // 8193 bytes, 2731 characters
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "Bad JSON"),
        ("{}".into(), "Invalid prompt: missing"),
        (r#"{"meta":"TASK-123"}"#.into(), "Invalid prompt: missing"),
        (r#"{"prompt":""}"#.into(), "Invalid prompt: empty"),
        (
            r#"{"prompt":5}"#.into(),
            "Invalid prompt: not a string (a number)",
        ),
        (
            json!({ "prompt": long }).to_string(),
            "Invalid prompt: too long (8193 bytes, at most 8192)",
        ),
        (
            json!({ "prompt": euros }).to_string(),
            "Invalid prompt: too long (8193 bytes, at most 8192)",
        ),
        (
            r#"{"prompt":"hi","meta":"invalid-meta!"}"#.into(),
            "Invalid meta: does not match ^[A-Z0-9_\\-]+$",
        ),
        (
            r#"{"prompt":"hi","meta":7}"#.into(),
            "Invalid meta: not a string (a number)",
        ),
        (
            r#""hello""#.into(),
            "Invalid request: expected a JSON object, got a string",
        ),
    ];
    for (frame, msg) in &cases {
        let mut c = ExecClient::open(&server, "/ws/claude", CLAUDE_INFO).await;
        c.send(frame).await;
        assert_eq!(c.next().await, error(msg), "for {frame:.40}");
        assert_eq!(
            c.next().await,
            Frame::Close(1008, String::new()),
            "for {frame:.40}"
        );
    }
    let mut c = ExecClient::open(&server, "/ws/claude", CLAUDE_INFO).await;
    c.ws.send(Message::binary(b"{}".to_vec()))
        .await
        .expect("send");
    assert_eq!(
        c.next().await,
        error("Invalid request: binary frames are not accepted")
    );
    assert_eq!(c.next().await, Frame::Close(1008, String::new()));
    // A frame over 64 KiB closes with 1009.
    let mut c = ExecClient::open(&server, "/ws/claude", CLAUDE_INFO).await;
    c.send(&"x".repeat(70 * 1024)).await;
    assert!(
        matches!(c.next().await, Frame::Close(1009, _)),
        "too big a frame closes with 1009"
    );
    // A full prompt of exactly 8192 bytes is fine.
    let mut c = claude(&server, &"a".repeat(8192)).await;
    let (_, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    // Params endpoints: schema checks and the info frame naming the params.
    let mut c = ExecClient::open(&server, "/ws/exec/sleep", "send {secs}").await;
    c.send(r#"{"secs":61}"#).await;
    assert_eq!(c.next().await, error("Invalid secs: 61 is above 60"));
    assert_eq!(c.next().await, Frame::Close(1008, String::new()));
    let metrics = server.http().get("/metrics").await.text();
    assert!(
        !metrics.contains("tether_exec_started_total{endpoint=\"sleep\"}"),
        "no process was started for an invalid request"
    );
}

#[tokio::test]
async fn stderr_lines_are_error_frames_and_exit_codes_close_1011() {
    let server = start(&[]);
    let mut c = claude(&server, "stderr=boom exit=3").await;
    let (frames, close) = c.until_close().await;
    assert!(
        frames.contains(&json!({ "error": "boom\n" }).to_string()),
        "{frames:?}"
    );
    // stderr and stdout are separate pipes: only each one's own order is kept.
    let stdout: Vec<&String> = frames
        .iter()
        .filter(|f| !f.starts_with("{\"error\""))
        .collect();
    assert_eq!(json(stdout.last().expect("result"))["type"], "result");
    assert_eq!(close, Frame::Close(1011, "exit 3".into()));

    let mut c = claude(&server, "signal=9").await;
    let (_, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1011, "signal 9".into()));

    // A final line without a newline is sent as is at EOF.
    let mut c = claude(&server, "partial").await;
    let (frames, close) = c.until_close().await;
    assert_eq!(
        frames.last().map(String::as_str),
        Some(r#"{"partial":true}"#)
    );
    assert_eq!(close, Frame::Close(1000, String::new()));
}

#[tokio::test]
async fn stderr_tagged_drop_and_long_lines_cut_at_char_boundaries() {
    let server = start(&[]);
    let mut c = ExecClient::open(&server, "/ws/exec/tagged", "send {prompt}").await;
    c.send(r#"{"prompt":"bigline=40 split-utf8 stderr=oops"}"#)
        .await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    let mut out = String::new();
    let mut err = String::new();
    for f in &frames {
        let v = json(f);
        let data = v["data"].as_str().expect("data");
        assert!(data.len() <= 16, "line cap: {data:?}");
        match v["stream"].as_str() {
            Some("stdout") => out.push_str(data),
            Some("stderr") => err.push_str(data),
            other => panic!("stream {other:?}"),
        }
    }
    assert!(out.contains(&format!("{}\n", "x".repeat(40))), "{out}");
    assert!(
        out.contains("€\n"),
        "a character written byte by byte survives: {out}"
    );
    assert_eq!(err, "oops\n");

    let mut c = ExecClient::open(&server, "/ws/exec/quiet", "send {prompt}").await;
    c.send(r#"{"prompt":"stderr=hidden"}"#).await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    assert!(
        frames.iter().all(|f| !f.contains("hidden\\n")),
        "{frames:?}"
    );
}

#[tokio::test]
async fn spawn_failure_is_an_error_frame_and_1011() {
    let server = start(&[]);
    let mut c = ExecClient::open(&server, "/ws/exec/missing", "send {}").await;
    c.send("{}").await;
    match c.next().await {
        Frame::Text(t) => {
            let msg = json(&t)["error"].as_str().unwrap_or("").to_owned();
            assert!(
                msg.starts_with("Failed to spawn /nonexistent/tether-no-such-program: "),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.next().await, Frame::Close(1011, "spawn failed".into()));
}

#[tokio::test]
async fn timeout_closes_1011_and_escalates_to_sigkill() {
    let server = start(&[]);
    // Obeys SIGTERM: gone right after the close.
    let t0 = Instant::now();
    let mut c = short(&server, "pid sleep=30 grandchild").await;
    let pid = read_pid(&mut c).await;
    let (_, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1011, "Timeout".into()));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    wait_until(
        "the group (with its grandchild) gone",
        Duration::from_secs(3),
        || group_members(pid).is_empty(),
    )
    .await;

    // Ignores SIGTERM: alive after the close, killed after the 0.3 s grace.
    let mut c = short(&server, "pid ignore-term sleep=30").await;
    let pid = read_pid(&mut c).await;
    let (_, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1011, "Timeout".into()));
    let closed_at = Instant::now();
    wait_until("SIGKILL after the grace", Duration::from_secs(3), || {
        !alive(pid)
    })
    .await;
    assert!(
        closed_at.elapsed() >= Duration::from_millis(150),
        "TERM alone did not end it"
    );
    let metrics = server.http().get("/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tether_exec_killed_total{") && l.contains("signal=\"KILL\"")),
        "{metrics}"
    );
    assert!(running(&server).await.is_empty());
}

#[tokio::test]
async fn client_close_kills_the_process_group() {
    let server = start(&[]);
    // A polite close.
    let mut c = claude(&server, "pid grandchild sleep=30").await;
    let pid = read_pid(&mut c).await;
    assert!(alive(pid));
    assert_eq!(running(&server).await.len(), 1);
    c.ws.close(None).await.expect("close");
    wait_until("group gone after close", Duration::from_secs(3), || {
        group_members(pid).is_empty()
    })
    .await;
    // An abort (TCP gone, no close frame), with SIGTERM ignored.
    let mut c = claude(&server, "pid ignore-term sleep=30").await;
    let pid = read_pid(&mut c).await;
    drop(c);
    wait_until("killed after an abort", Duration::from_secs(3), || {
        !alive(pid)
    })
    .await;
    let server_pid = server.pid();
    wait_until("reaped", Duration::from_secs(3), || {
        exec_common::children_of(server_pid).is_empty()
    })
    .await;
    assert!(running(&server).await.is_empty());
}

#[tokio::test]
async fn a_second_request_gets_an_error_and_no_second_process() {
    let server = start(&[]);
    let mut c = claude(&server, "pid sleep=0.5 lines=1").await;
    let pid = read_pid(&mut c).await;
    c.send(r#"{"prompt":"again"}"#).await;
    let (frames, close) = c.until_close().await;
    assert!(
        frames.contains(
            &json!({"error": "one request per connection: a process is already running"})
                .to_string()
        ),
        "{frames:?}"
    );
    assert_eq!(close, Frame::Close(1000, String::new()));
    assert!(!alive(pid));
    let metrics = server.http().get("/metrics").await.text();
    assert!(
        metrics.contains("tether_exec_started_total{endpoint=\"claude\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn limits_refuse_with_busy_and_1013() {
    let server = start(&["--exec-max-processes", "3"]);
    // Per endpoint: claude allows 2.
    let mut a = claude(&server, "pid sleep=1").await;
    let mut b = claude(&server, "pid sleep=1").await;
    read_pid(&mut a).await;
    read_pid(&mut b).await;
    let mut c = claude(&server, "pid").await;
    let f = c.next().await;
    let Frame::Text(t) = &f else { panic!("{f:?}") };
    assert!(
        json(t)["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("busy: 2 claude"),
        "{t}"
    );
    assert_eq!(c.next().await, Frame::Close(1013, "busy".into()));
    // Global: 3 in all.
    let mut s = ExecClient::open(&server, "/ws/exec/sleep", "send {secs}").await;
    s.send(r#"{"secs":1}"#).await;
    let mut d = ExecClient::open(&server, "/ws/exec/sleep", "send {secs}").await;
    // The third process may still be starting: wait for it to be listed.
    for _ in 0..100 {
        if running(&server).await.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.send(r#"{"secs":1}"#).await;
    let f = d.next().await;
    let Frame::Text(t) = &f else { panic!("{f:?}") };
    assert!(
        json(t)["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("busy: 3 exec processes"),
        "{t}"
    );
    assert_eq!(d.next().await, Frame::Close(1013, "busy".into()));
    // Slots come back when processes end.
    for c in [&mut a, &mut b, &mut s] {
        let (_, close) = c.until_close().await;
        assert_eq!(close, Frame::Close(1000, String::new()));
    }
    let mut e = claude(&server, "lines=1").await;
    let (_, close) = e.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
}

#[tokio::test]
async fn stdin_endpoints_take_lines_and_eof() {
    let server = start(&[]);
    let mut c = ExecClient::open(&server, "/ws/exec/cat", "send {}").await;
    c.send("{}").await;
    c.send("hello").await;
    assert_eq!(c.next().await, Frame::Text("hello\n".into()));
    c.send(r#"{"not":"eof"}"#).await;
    assert_eq!(c.next().await, Frame::Text("{\"not\":\"eof\"}\n".into()));
    c.send(r#"{"eof":true}"#).await;
    assert_eq!(c.next().await, Frame::Close(1000, String::new()));
}

#[tokio::test]
async fn all_output_is_delivered_before_the_close_frame() {
    let server = start(&[]);
    let mut c = ExecClient::open(&server, "/ws/exec/seq", "send {n}").await;
    c.send(r#"{"n":200000}"#).await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    assert_eq!(frames.len(), 200_000);
    assert_eq!(frames[0], "1\n");
    assert_eq!(frames[199_999], "200000\n");
}

#[tokio::test]
async fn shutdown_closes_1001_and_kills_the_processes() {
    let mut server = start(&[]);
    let mut c = claude(&server, "pid ignore-term sleep=30").await;
    let pid = read_pid(&mut c).await;
    server.signal("TERM");
    let (_, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1001, "server shutting down".into()));
    let status = server.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}");
    wait_until("killed on shutdown", Duration::from_secs(2), || !alive(pid)).await;
}

#[tokio::test]
async fn listings_and_unknown_endpoints() {
    let server = start(&[]);
    let resp = server.http().get("/exec/endpoints").await;
    assert_eq!(resp.status, 200);
    let v = resp.json();
    let claude = &v["endpoints"][0];
    assert_eq!(claude["name"], "claude");
    assert_eq!(claude["path"], "/ws/claude");
    assert_eq!(claude["protocol"], "claude");
    assert_eq!(claude["stdin"], false);
    assert_eq!(claude["params"]["prompt"]["max_bytes"], 8192);
    assert_eq!(claude["params"]["meta"]["pattern"], "^[A-Z0-9_\\-]+$");
    let cat = v["endpoints"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "cat"))
        .expect("cat listed");
    assert_eq!(cat["path"], "/ws/exec/cat");
    assert_eq!(cat["stdin"], true);

    let mut c = claude_client_with_pid(&server).await;
    let list = running(&server).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["endpoint"], "claude");
    assert_eq!(list[0]["pid"].as_u64(), Some(u64::from(c.1)));
    assert!(
        list[0]["started"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000)
    );
    assert!(
        list[0]["bytes_out"].as_u64().is_some_and(|b| b > 0),
        "{list:?}"
    );
    c.0.ws.close(None).await.expect("close");

    let resp = server.http().get("/ws/exec/nope").await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        server.http().get("/ws/exec/cat").await.status / 100,
        4,
        "not an upgrade"
    );
    let stream = common::tcp_connect(server.http).await;
    let url = format!("ws://{}/ws/exec/nope", server.http);
    match tokio_tungstenite::client_async(url, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 404)
        }
        other => panic!("expected HTTP 404, got {:?}", other.map(|_| ())),
    }
    // /ws/exec/claude is the same endpoint as /ws/claude.
    let _ = ExecClient::open(&server, "/ws/exec/claude", CLAUDE_INFO).await;
}

async fn claude_client_with_pid(server: &common::Server) -> (ExecClient, u32) {
    let mut c = claude(server, "pid sleep=5").await;
    let pid = read_pid(&mut c).await;
    (c, pid)
}

#[test]
fn serve_help_lists_the_exec_options() {
    let out = common::tether_command()
        .args(["serve", "--help"])
        .output()
        .expect("run tether serve --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--exec-max-processes",
        "--exec-kill-grace",
        "--exec-close-grace",
        "exec_close_grace",
        "[[exec]]",
        "docs/protocol/exec.md",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[tokio::test]
async fn an_empty_exec_list_turns_every_endpoint_off() {
    let dir = std::env::temp_dir().join(format!("tether-exec-off-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("off.toml");
    std::fs::write(&file, "exec = []\n").expect("write");
    let server = common::Server::builder()
        .args(["--config", file.to_str().expect("utf-8")])
        .start();
    assert_eq!(server.http().get("/ws/claude").await.status, 404);
    let v = server.http().get("/exec/endpoints").await.json();
    assert_eq!(v["endpoints"], json!([]));
    let metrics = server.http().get("/metrics").await.text();
    assert!(
        metrics.lines().any(|l| l == "tether_exec_running 0"),
        "the gauge is listed from the start: {metrics}"
    );
}

#[tokio::test]
async fn a_grandchild_holding_the_pipes_does_not_hold_the_socket() {
    let server = start(&[]);
    let t0 = Instant::now();
    let mut c = claude(&server, "pid grandchild").await;
    let pid = read_pid(&mut c).await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    assert_eq!(json(frames.last().expect("result"))["type"], "result");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    wait_until(
        "the grandchild signalled with its group",
        Duration::from_secs(3),
        || group_members(pid).is_empty(),
    )
    .await;
    assert!(running(&server).await.is_empty());
}

#[tokio::test]
async fn a_polite_close_is_seen_while_the_process_floods_stdout() {
    let server = start(&[]);
    let mut c = ExecClient::open(&server, "/ws/exec/seq", "send {n}").await;
    c.send(r#"{"n":10000000}"#).await;
    assert!(matches!(c.next().await, Frame::Text(_)));
    c.ws.close(None).await.expect("close");
    // Keep reading (as a client must until the close reply): the server stops the flood.
    let t0 = Instant::now();
    while let Frame::Text(_) = c.next_within(Duration::from_secs(10)).await {}
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let server_pid = server.pid();
    wait_until("seq killed and reaped", Duration::from_secs(5), || {
        exec_common::children_of(server_pid).is_empty()
    })
    .await;
}

#[tokio::test]
async fn the_environment_is_cleared_but_the_allow_list_and_cwd_is_set() {
    let server = exec_common::builder()
        .env("TETHER_TEST_ALLOWED", "yes")
        .env("TETHER_TEST_SECRET", "no")
        .start();
    let mut c = ExecClient::open(&server, "/ws/exec/envy", "send {}").await;
    c.send("{}").await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    let keys: Vec<&str> = frames
        .iter()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for k in &keys {
        assert!(
            [
                "PATH",
                "HOME",
                "LANG",
                "FAKE_CLAUDE",
                "TETHER_TEST_ALLOWED",
                "TETHER_EXEC_CONN"
            ]
            .contains(k),
            "{k} leaked into the child: {frames:?}"
        );
    }
    // The connection's mark: the server's pid and a sequence number.
    let mark = format!("TETHER_EXEC_CONN={}.", server.pid());
    assert!(
        frames.iter().any(|f| f.starts_with(&mark)),
        "{mark} missing: {frames:?}"
    );
    assert!(
        frames.contains(&"TETHER_TEST_ALLOWED=yes\n".to_owned()),
        "{frames:?}"
    );
    assert!(keys.contains(&"PATH"), "{frames:?}");
    let mut c = ExecClient::open(&server, "/ws/exec/where", "send {}").await;
    c.send("{}").await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    assert_eq!(frames, ["/\n"]);
}

#[tokio::test]
async fn the_built_in_echo_and_demo_work_without_a_config() {
    let server = common::Server::start(&[]);
    let mut c = ExecClient::open(&server, "/ws/exec/echo", "send {text}").await;
    c.send(r#"{"text":"-n $(id) ; hi"}"#).await;
    let (frames, close) = c.until_close().await;
    assert_eq!(frames, ["-n $(id) ; hi\n"]);
    assert_eq!(close, Frame::Close(1000, String::new()));

    let t0 = Instant::now();
    let mut c = ExecClient::open(&server, "/ws/exec/demo", "send {text}").await;
    c.send(r#"{"text":"\"; echo pwned; \""}"#).await;
    let (frames, close) = c.until_close().await;
    assert_eq!(close, Frame::Close(1000, String::new()));
    let lines: Vec<(String, String)> = frames
        .iter()
        .map(|f| {
            let v = json(f);
            (
                v["stream"].as_str().unwrap_or("").to_owned(),
                v["data"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(
        stdout,
        (1..=5)
            .map(|i| format!("{i}: \"; echo pwned; \"\n"))
            .collect::<Vec<_>>()
    );
    assert!(
        lines.contains(&("stderr".into(), "demo done\n".into())),
        "{lines:?}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1200),
        "it streams, with delays"
    );
    let v = server.http().get("/exec/endpoints").await.json();
    let names: Vec<&str> = v["endpoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["claude", "echo", "demo"]);
}
