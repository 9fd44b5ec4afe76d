//! Helpers for the exec tests: a config file pointing the endpoints at the fake `claude`
//! (`tests/fixtures/exec/fake-claude`), a raw-frame WebSocket client and `/proc` probes.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Server, ServerBuilder, TIMEOUT, tcp_connect};

/// The fake `claude` script.
pub fn fake_claude() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/exec/fake-claude");
    p.canonicalize()
        .expect("tests/fixtures/exec/fake-claude exists")
        .to_string_lossy()
        .into_owned()
}

/// The endpoints every exec test server has.
pub fn config_text() -> String {
    let fake = fake_claude();
    format!(
        r#"
[[exec]]
name = "claude"
protocol = "claude"
argv = ["{fake}", "-p", "--output-format", "stream-json", "--verbose", "--", "{{prompt}}"]
timeout = 30
max_concurrent = 2
env = ["FAKE_CLAUDE"]

[[exec]]
name = "short"
protocol = "claude"
argv = ["{fake}", "-p", "--output-format", "stream-json", "--verbose", "--", "{{prompt}}"]
timeout = 3

[[exec]]
name = "tagged"
argv = ["{fake}", "-p", "--", "{{prompt}}"]
stderr = "tagged"
max_line_bytes = 16
[exec.params.prompt]
required = true
max_bytes = 100

[[exec]]
name = "quiet"
argv = ["{fake}", "-p", "--", "{{prompt}}"]
stderr = "drop"
[exec.params.prompt]
required = true

[[exec]]
name = "sleep"
argv = ["sleep", "{{secs}}"]
[exec.params.secs]
type = "integer"
required = true
min = 0
max = 60

[[exec]]
name = "envy"
argv = ["env"]
env = ["FAKE_CLAUDE", "TETHER_TEST_ALLOWED"]

[[exec]]
name = "where"
argv = ["pwd"]
cwd = "/"

[[exec]]
name = "cat"
argv = ["cat"]
stdin = true

[[exec]]
name = "missing"
argv = ["/nonexistent/tether-no-such-program", "x"]

[[exec]]
name = "seq"
argv = ["seq", "{{n}}"]
[exec.params.n]
type = "integer"
required = true
min = 1
max = 10000000
"#
    )
}

/// A server with [`config_text`], a 0.3 s kill grace and `extra` flags.
pub fn start(extra: &[&str]) -> Server {
    builder().args(extra.iter().copied()).start()
}

/// [`start`]'s builder, for tests that add environment variables.
pub fn builder() -> ServerBuilder {
    let dir = std::env::temp_dir().join(format!(
        "tether-exec-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("exec.toml");
    std::fs::write(&file, config_text()).expect("write config");
    Server::builder()
        .args(["--config", file.to_str().expect("utf-8 path")])
        .args(["--exec-kill-grace", "0.3"])
}

/// What a server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Close(u16, String),
    /// The stream ended without a close frame.
    Ended,
}

/// A WebSocket client that keeps frames as they came.
pub struct ExecClient {
    pub ws: WebSocketStream<TcpStream>,
}

impl ExecClient {
    pub async fn connect(server: &Server, path: &str) -> ExecClient {
        let stream = tcp_connect(server.http).await;
        let url = format!("ws://{}{path}", server.http);
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, stream))
            .await
            .expect("handshake in time")
            .expect("handshake");
        ExecClient { ws }
    }

    /// Connects and checks the info frame.
    pub async fn open(server: &Server, path: &str, info: &str) -> ExecClient {
        let mut c = ExecClient::connect(server, path).await;
        assert_eq!(
            c.next().await,
            Frame::Text(format!(r#"{{"info":"{info}"}}"#))
        );
        c
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    pub async fn next(&mut self) -> Frame {
        self.next_within(TIMEOUT).await
    }

    pub async fn next_within(&mut self, t: Duration) -> Frame {
        loop {
            let m = tokio::time::timeout(t, self.ws.next())
                .await
                .expect("a frame in time");
            return match m {
                Some(Ok(Message::Text(t))) => Frame::Text(t.as_str().to_owned()),
                Some(Ok(Message::Close(f))) => match f {
                    Some(f) => Frame::Close(u16::from(f.code), f.reason.as_str().to_owned()),
                    None => Frame::Close(1005, String::new()),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(_)) | None => Frame::Ended,
            };
        }
    }

    /// Text frames up to the close frame, and the close frame.
    pub async fn until_close(&mut self) -> (Vec<String>, Frame) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Frame::Text(t) => texts.push(t),
                other => return (texts, other),
            }
        }
    }
}

/// Parses a frame as JSON.
pub fn json(frame: &str) -> Value {
    serde_json::from_str(frame).unwrap_or_else(|e| panic!("not JSON ({e}): {frame:?}"))
}

/// One `/proc/PID/stat` entry.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub pid: u32,
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

/// Every process on the machine.
pub fn processes() -> Vec<ProcStat> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        out.push(ProcStat {
            pid,
            state: f[0].chars().next().unwrap_or('?'),
            ppid: f[1].parse().unwrap_or(0),
            pgrp: f[2].parse().unwrap_or(0),
        });
    }
    out
}

/// Children of `pid` (zombies included).
pub fn children_of(pid: u32) -> Vec<ProcStat> {
    processes().into_iter().filter(|p| p.ppid == pid).collect()
}

/// Live (not zombie) members of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<ProcStat> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z')
        .collect()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Waits until `cond` holds, for at most `t`.
pub async fn wait_until(what: &str, t: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + t;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `GET /exec/processes`.
pub async fn running(server: &Server) -> Vec<Value> {
    let resp = server.http().get("/exec/processes").await;
    assert_eq!(resp.status, 200);
    resp.json()["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
