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
    // Read when the test runs, not compiled in: cargo reuses a test binary built in another
    // checkout that shares the target dir, and that checkout may be gone.
    let p = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/fixtures/exec/fake-claude");
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

[[exec]]
name = "seqshort"
argv = ["seq", "{{n}}"]
timeout = 2
[exec.params.n]
type = "integer"
required = true
min = 1
max = 10000000

# The issue's reproduction: a descendant that leaves the group and the session and ignores
# SIGTERM, re-parented once its parent is killed.
[[exec]]
name = "esc"
argv = ["sh", "-c", "(setsid sh -c 'trap \"\" TERM; sleep 301') & echo started; sleep 300"]

# A grandchild in the command's group that ignores SIGTERM.
[[exec]]
name = "bg"
argv = ["sh", "-c", "(trap '' TERM; sleep 302) & echo started; sleep 300"]

# A descendant orphaned at once (adopted by the server) that exits on its own 2 s later.
[[exec]]
name = "orphan"
argv = ["sh", "-c", "sh -c 'sleep 2 &'; echo started; sleep 300"]

# Exits 0 at once, leaving a TERM-ignoring background job that holds no pipe.
[[exec]]
name = "leftover"
argv = ["sh", "-c", "(trap '' TERM; sleep 303) >/dev/null 2>&1 & echo started"]

# The documented limit: a descendant that clears its environment (no mark), leaves the session
# and whose parent exits (when a line comes on stdin) before any teardown looked at it.
[[exec]]
name = "envless"
argv = ["sh", "-c", "env -i setsid sh -c 'trap \"\" TERM; sleep 304' >/dev/null 2>&1 & echo started; read line"]
stdin = true

# The same descendant, but its parent (the command) still runs when the connection ends: the
# server saw it tied to the command before the SIGTERM, and knows it after.
[[exec]]
name = "envless-attached"
argv = ["sh", "-c", "env -i setsid sh -c 'trap \"\" TERM; sleep 308' >/dev/null 2>&1 & echo started; sleep 300"]
"#
    )
}

/// A server with [`config_text`], a 0.3 s kill grace and `extra` flags.
pub fn start(extra: &[&str]) -> Server {
    builder().args(extra.iter().copied()).start()
}

/// [`start`]'s builder, for tests that add environment variables.
pub fn builder() -> ServerBuilder {
    builder_with_kill_grace("0.3")
}

/// [`builder`] with another `--exec-kill-grace`.
pub fn builder_with_kill_grace(secs: &str) -> ServerBuilder {
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
        .args(["--exec-kill-grace", secs])
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
    pub session: u32,
    /// Clock ticks since boot: with the pid, names one process for good.
    pub start: u64,
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
        // Lossy: a process name is not always UTF-8, and such a process must not be missed.
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let stat = String::from_utf8_lossy(&stat);
        // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 20 {
            continue;
        }
        out.push(ProcStat {
            pid,
            state: f[0].chars().next().unwrap_or('?'),
            ppid: f[1].parse().unwrap_or(0),
            pgrp: f[2].parse().unwrap_or(0),
            session: f[3].parse().unwrap_or(0),
            start: f[19].parse().unwrap_or(0),
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

/// Every process below `pid` (children, their children, …), zombies included.
pub fn descendants_of(pid: u32) -> Vec<ProcStat> {
    let all = processes();
    let mut below = std::collections::HashSet::from([pid]);
    loop {
        let before = below.len();
        for p in &all {
            if below.contains(&p.ppid) {
                below.insert(p.pid);
            }
        }
        if below.len() == before {
            break;
        }
    }
    all.into_iter()
        .filter(|p| p.pid != pid && below.contains(&p.pid))
        .collect()
}

/// The argv of `pid` (empty if gone or a zombie).
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes anywhere on the machine whose environment carries a mark of the server
/// `server_pid` (`TETHER_EXEC_CONN=<server_pid>.<n>`).
pub fn marked_by(server_pid: u32) -> Vec<ProcStat> {
    let needle = format!("TETHER_EXEC_CONN={server_pid}.");
    processes()
        .into_iter()
        .filter(|p| p.state != 'Z')
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid)).is_ok_and(|env| {
                env.split(|&c| c == 0)
                    .any(|v| v.starts_with(needle.as_bytes()))
            })
        })
        .collect()
}

/// Whether the very process `p` names (same pid and start time) still runs (not a zombie).
pub fn still_running(p: &ProcStat) -> bool {
    processes()
        .iter()
        .any(|q| q.pid == p.pid && q.start == p.start && q.state != 'Z')
}

/// Whether `pid` is blocked writing to a full pipe (its reader, the server, stopped reading).
pub fn blocked_on_pipe(pid: u32) -> bool {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    if wchan.contains("pipe_write") {
        return true;
    }
    // Without wchan (no kallsyms): a writer that does nothing but write sleeps only on the pipe.
    (wchan.is_empty() || wchan == "0") && processes().iter().any(|p| p.pid == pid && p.state == 'S')
}

/// Connects with a small socket receive buffer, so that a client that does not read stalls
/// the server's writes quickly.
pub async fn connect_small_rcvbuf(server: &Server, path: &str, rcvbuf: u32) -> ExecClient {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
    let stream = tokio::time::timeout(TIMEOUT, sock.connect(server.http))
        .await
        .expect("connect in time")
        .expect("connect");
    let url = format!("ws://{}{path}", server.http);
    let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ExecClient { ws }
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

/// CPU time (user + system) `pid` has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s[s.rfind(')')? + 1..].to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
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
