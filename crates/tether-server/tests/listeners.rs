//! The listeners under a slowloris and a connection flood (docs/protocol/common.md): a request
//! head must arrive within `--header-timeout`; connections are capped per client address and per
//! listener (HTTP, relay, rooms TCP); a process out of file descriptors still refuses at once
//! and recovers. Against the real binary, with its `RLIMIT_NOFILE` lowered where it matters.
//!
//! The attacker connects from 127.0.0.2 (any 127/8 address is bindable on Linux), the normal
//! client from 127.0.0.1, so the per-address cap tells them apart.

mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Http, LineClient, Server, TIMEOUT, WsClient, eventually};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// A request head without its final CRLF: the server waits for the rest.
const PARTIAL: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1";

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// Connects from `src` to `to` and writes `bytes` (nothing when empty).
async fn connect_from(src: Ipv4Addr, to: SocketAddr, bytes: &[u8]) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from((src, 0)))?;
    let mut s = tokio::time::timeout(TIMEOUT, sock.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    if !bytes.is_empty() {
        s.write_all(bytes).await?;
    }
    Ok(s)
}

/// `GET /health` from `src`: whether it answered 200 within [`TIMEOUT`].
async fn health_from(src: Ipv4Addr, to: SocketAddr) -> io::Result<bool> {
    let mut s = connect_from(
        src,
        to,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await?;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut reply)).await;
    Ok(reply.starts_with(b"HTTP/1.1 200"))
}

/// What became of a connection the test left waiting.
#[derive(Debug)]
enum Fate {
    /// Closed (EOF or reset) without a byte from the server.
    Refused(Duration),
    /// The server answered, then closed (the reply shows in failure messages).
    #[allow(dead_code)]
    Answered(String),
    /// Still open after the wait.
    Open,
}

/// Reads `stream` to its end for at most `wait`; times are from `since`.
fn watch(stream: io::Result<TcpStream>, since: Instant, wait: Duration) -> JoinHandle<Fate> {
    tokio::spawn(async move {
        let Ok(mut s) = stream else {
            return Fate::Refused(since.elapsed());
        };
        let mut buf = Vec::new();
        match tokio::time::timeout(wait, s.read_to_end(&mut buf)).await {
            Err(_) => Fate::Open,
            Ok(_) if buf.is_empty() => Fate::Refused(since.elapsed()),
            Ok(_) => Fate::Answered(String::from_utf8_lossy(&buf).into_owned()),
        }
    })
}

/// The value of the `/metrics` sample `name{labels}`, 0 when absent.
async fn metric(http: &Http, sample: &str) -> f64 {
    let text = http.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// 500 partial requests from 127.0.0.2, then `normal` from 127.0.0.1 while they are open: the
/// normal client is served, the partial ones over the per-address cap are closed at once, the
/// others are closed after the header timeout. Returns how many were admitted.
async fn slowloris<F, Fut>(
    target: SocketAddr,
    header_timeout: Duration,
    per_ip: usize,
    normal: F,
) -> usize
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut fates = Vec::new();
    for _ in 0..500 {
        let since = Instant::now();
        let s = connect_from(loopback(2), target, PARTIAL).await;
        fates.push(watch(s, since, header_timeout + TIMEOUT));
    }
    normal().await;
    let served_after = start.elapsed();
    assert!(
        served_after < header_timeout,
        "the normal client took {served_after:?}: not served while the partial requests were open"
    );
    let (mut admitted, mut refused) = (0, 0);
    for f in fates {
        match f.await.expect("watcher") {
            // Over the cap: closed at once.
            Fate::Refused(after) if after < header_timeout / 2 => refused += 1,
            // Admitted: closed (hyper sends no reply) when the head did not come in time.
            Fate::Refused(after) => {
                assert!(
                    after >= header_timeout.mul_f64(0.9) && after < header_timeout + TIMEOUT,
                    "closed after {after:?}"
                );
                admitted += 1;
            }
            other => panic!("a partial request: {other:?}"),
        }
    }
    assert_eq!(admitted, per_ip, "admitted up to the per-address cap");
    assert_eq!(refused, 500 - per_ip);
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_requests_do_not_stop_a_normal_client_on_http() {
    // 256 descriptors: without the per-address cap, 500 partial requests exhaust them and the
    // normal client waits in the backlog (issue 12 §8). The default cap is an eighth: 32.
    let header_timeout = Duration::from_secs(4);
    let server = Server::builder()
        .fd_limit(256)
        .args(["--header-timeout", "4"])
        .start();
    let http = server.http();
    slowloris(server.http, header_timeout, 32, || async {
        let health = http.get("/health").await;
        assert_eq!(health.status, 200, "{}", health.text());
        let mut ws = WsClient::hello(server.http, "main", "alice").await;
        ws.ok(json!({"cmd": "send", "room": "main", "text": "still here"}))
            .await;
    })
    .await;
    let refused = metric(
        &http,
        r#"tether_listener_refused_total{listener="http",reason="per_ip"}"#,
    )
    .await;
    assert_eq!(refused, 468.0);
    // Logged once for the address, not once per refusal.
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches("127.0.0.2 has 32 connections open").count(),
        1,
        "{stderr}"
    );
    // Its connections gone, the address is served again.
    assert!(
        health_from(loopback(2), server.http)
            .await
            .expect("connect"),
        "/health answers 200"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_requests_do_not_stop_a_normal_client_on_the_relay() {
    let header_timeout = Duration::from_secs(4);
    let server = Server::builder()
        .fd_limit(256)
        .args(["--header-timeout", "4", "--max-connections-per-ip", "20"])
        .start();
    let relay = server.relay.expect("the relay runs");
    slowloris(relay, header_timeout, 20, || async {
        let (mut hero, _) = tokio_tungstenite::connect_async(format!("ws://{relay}/"))
            .await
            .expect("hero connects");
        let (mut ui, _) = tokio_tungstenite::connect_async(format!("ws://{relay}/"))
            .await
            .expect("ui connects");
        let announce = |peer: &str, role: &str| {
            json!({"id": 0, "component": "system", "type": "announce", "payload": {
                "peerId": peer, "role": role, "status": "online", "version": "0.0.7",
                "timestamp": 1}})
            .to_string()
        };
        hero.send(Message::text(announce("hero-1", "hero")))
            .await
            .expect("send");
        ui.send(Message::text(announce("ui-1", "sidekick")))
            .await
            .expect("send");
        let frame = r#"{"id":0,"component":"label","type":"spawn","target":"l","payload":{}}"#;
        hero.send(Message::text(frame)).await.expect("send");
        loop {
            let m = tokio::time::timeout(TIMEOUT, ui.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("a frame");
            if m.to_text().is_ok_and(|t| t == frame) {
                break;
            }
        }
    })
    .await;
    let http = server.http();
    let refused = metric(
        &http,
        r#"tether_listener_refused_total{listener="relay",reason="per_ip"}"#,
    )
    .await;
    assert_eq!(refused, 480.0);
}

#[tokio::test]
async fn silent_trickling_and_idle_connections_are_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1"]);
    let relay = server.relay.expect("the relay runs");
    let wait = Duration::from_secs(1) + TIMEOUT;
    // A connection that sends nothing, on either listener.
    for target in [server.http, relay] {
        let since = Instant::now();
        let s = connect_from(loopback(1), target, b"").await;
        match watch(s, since, wait).await.expect("watcher") {
            Fate::Refused(after) => assert!(after >= Duration::from_millis(900), "{after:?}"),
            other => panic!("{target}: {other:?}"),
        }
    }
    // One that trickles its head a byte at a time: the timeout bounds the whole head.
    let since = Instant::now();
    let mut s = connect_from(loopback(1), server.http, b"G")
        .await
        .expect("connect");
    let trickle = async {
        for b in b"ET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        // Keep trickling header bytes until the server gives up.
        while s.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(since.elapsed() < wait, "never timed out");
        }
    };
    tokio::time::timeout(wait, trickle)
        .await
        .expect("the server closed the trickling connection");
    let after = since.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "{after:?}"
    );
    // A kept-alive connection that goes idle after a response is closed, without a reply.
    let mut s = connect_from(
        loopback(1),
        server.http,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await
    .expect("connect");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"{\"status\":\"ok\"}") {
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf))
            .await
            .expect("the response in time")
            .expect("read");
        assert!(n > 0, "closed before the response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let idle_since = Instant::now();
    match watch(Ok(s), idle_since, wait).await.expect("watcher") {
        Fate::Refused(after) => assert!(after >= Duration::from_millis(900), "{after:?}"),
        other => panic!("idle keep-alive: {other:?}"),
    }
}

#[tokio::test]
async fn websockets_outlive_the_header_timeout_and_hold_their_place_under_the_cap() {
    let server = Server::start(&["--header-timeout", "1", "--max-connections-per-ip", "2"]);
    let attacker = loopback(2);
    let ws_from = |src: Ipv4Addr| async move {
        let s = connect_from(src, server.http, b"").await.expect("connect");
        WsClient::handshake(format!("ws://{}/ws/rooms", server.http), Box::new(s)).await
    };
    let mut a = ws_from(attacker).await;
    let mut b = ws_from(attacker).await;
    a.ok(json!({"cmd": "hello", "room": "main", "client": "a"}))
        .await;
    // A third connection from the address is closed at once: the upgraded ones still count.
    let since = Instant::now();
    let third = connect_from(
        attacker,
        server.http,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert!(
        matches!(watch(third, since, TIMEOUT).await, Ok(Fate::Refused(_))),
        "over the per-address cap"
    );
    // Idle past the header timeout (the subject of the test: time passing), both still work.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.ok(json!({"cmd": "send", "room": "main", "text": "after the timeout"}))
        .await;
    b.ok(json!({"cmd": "hello", "room": "main", "client": "b"}))
        .await;
    // One closes: the address gets its place back.
    drop(a);
    let http = server.http();
    eventually("a place for 127.0.0.2 again", || {
        let http = http.clone();
        async move { health_from(attacker, http.addr).await.ok()?.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn the_tcp_door_caps_connections_per_address_and_in_all() {
    let server = Server::start(&["--max-connections", "12", "--max-connections-per-ip", "3"]);
    let door = server.tcp;
    let line_from = |src: Ipv4Addr| async move {
        LineClient::from_stream(Box::new(
            connect_from(src, door, b"").await.expect("connect"),
        ))
    };
    let refused_from = |src: Ipv4Addr| async move {
        let since = Instant::now();
        let s = connect_from(src, door, b"HELLO main:late\n").await;
        watch(s, since, TIMEOUT).await.expect("watcher")
    };
    // Three from 127.0.0.2 are served; a fourth is closed at once.
    let mut held = Vec::new();
    for i in 0..3 {
        let mut c = line_from(loopback(2)).await;
        c.ok(&format!("HELLO main:a{i}"), &format!("OK HELLO main:a{i}"))
            .await;
        held.push(c);
    }
    assert!(matches!(refused_from(loopback(2)).await, Fate::Refused(_)));
    // Nine more from three other addresses fill the listener (12): everyone else is refused.
    for last in 3..=5 {
        for _ in 0..3 {
            held.push(line_from(loopback(last)).await);
        }
    }
    let mut probe = held.pop().expect("one");
    probe.ok("HELLO main:probe", "OK HELLO main:probe").await;
    held.push(probe);
    for last in [1, 6] {
        assert!(
            matches!(refused_from(loopback(last)).await, Fate::Refused(_)),
            "127.0.0.{last}: the listener is full"
        );
    }
    let http = server.http();
    assert_eq!(
        metric(
            &http,
            r#"tether_listener_refused_total{listener="tcp",reason="per_ip"}"#
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &http,
            r#"tether_listener_refused_total{listener="tcp",reason="full"}"#
        )
        .await,
        2.0
    );
    assert_eq!(
        metric(&http, r#"tether_listener_connections{listener="tcp"}"#).await,
        12.0
    );
    // One leaves: a place frees up.
    let gone = held.remove(0);
    drop(gone);
    eventually("a free place on the TCP door", || async {
        let s = connect_from(loopback(6), door, b"HELLO main:newcomer\n")
            .await
            .ok()?;
        let mut c = LineClient::from_stream(Box::new(s));
        let line = c.read_line_within(Duration::from_millis(500)).await?;
        (line == "OK HELLO main:newcomer").then_some(())
    })
    .await;
}

/// CPU time (user + system) of process `pid`, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_listener_refuses_at_once_and_recovers() {
    // 64 descriptors and partial requests from many addresses (8 each, the default cap for
    // this limit) that never time out during the test: the process runs out of descriptors.
    let server = Server::builder()
        .fd_limit(64)
        .args(["--header-timeout", "60"])
        .start();
    let mut attackers = Vec::new();
    for last in 2..=20 {
        for _ in 0..8 {
            if let Ok(s) = connect_from(loopback(last), server.http, PARTIAL).await {
                attackers.push(s);
            }
        }
    }
    // A newcomer is told at once (closed), not left waiting in the backlog.
    for _ in 0..3 {
        let since = Instant::now();
        let s = connect_from(
            loopback(1),
            server.http,
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        )
        .await;
        match watch(s, since, TIMEOUT).await.expect("watcher") {
            Fate::Refused(after) => assert!(after < Duration::from_secs(2), "{after:?}"),
            other => panic!("expected a refusal while out of descriptors, got {other:?}"),
        }
    }
    // Waiting at the limit costs no CPU (no accept loop spinning on EMFILE).
    let before = cpu_time(server.pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_time(server.pid()) - before;
    assert!(
        spent < Duration::from_millis(300),
        "{spent:?} of CPU in 1 s"
    );
    // The attackers leave: the listener serves again and counted what it shed.
    drop(attackers);
    let http = server.http();
    eventually("/health after the flood", || {
        let addr = server.http;
        async move { health_from(loopback(1), addr).await.ok()?.then_some(()) }
    })
    .await;
    let shed = metric(
        &http,
        r#"tether_listener_refused_total{listener="http",reason="fd_limit"}"#,
    )
    .await;
    assert!(shed >= 3.0, "{shed}");
}

#[tokio::test]
async fn ipv6_clients_count_by_address() {
    // The same cap over IPv6 loopback: [::1] is its own client address.
    let server = Server::builder()
        .args(["--max-connections-per-ip", "1", "--relay", "localhost:0"])
        .start();
    let relay = server.relay.expect("relay");
    let v6 = SocketAddr::from((IpAddr::from(std::net::Ipv6Addr::LOCALHOST), relay.port()));
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // No IPv6 here: the relay said so and serves 127.0.0.1.
        let stderr = server.stderr();
        assert!(
            stderr.contains(&format!("listens on 127.0.0.1:{} only", relay.port())),
            "{stderr}"
        );
        return;
    }
    let (_held, _) = tokio_tungstenite::connect_async(format!("ws://{v6}/"))
        .await
        .expect("[::1] connects");
    let second = tokio_tungstenite::connect_async(format!("ws://{v6}/")).await;
    assert!(second.is_err(), "a second [::1] connection is refused");
    let (_v4, _) = tokio_tungstenite::connect_async(format!("ws://{relay}/"))
        .await
        .expect("127.0.0.1 is another client");
}

#[tokio::test]
async fn the_default_http_address_also_listens_on_ipv6_loopback() {
    use tether_server::config::{RelayAddr, ServeArgs};
    let mut config = ServeArgs {
        tcp: Some("127.0.0.1:0".parse().expect("addr")),
        relay: Some(RelayAddr::Off),
        ..ServeArgs::default()
    }
    .resolve()
    .expect("config");
    assert!(config.http_ipv6_loopback, "the default HTTP address");
    // The same rule on a free port instead of 8700.
    config.http = "127.0.0.1:0".parse().expect("addr");
    let server = tether_server::server::Server::bind(config)
        .await
        .expect("bind");
    let port = server.http_addr().port();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(server.serve(stop.clone().cancelled_owned()));
    let v4 = Http::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    assert_eq!(v4.get("/health").await.status, 200);
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = Http::new(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
        assert_eq!(v6.get("/health").await.status, 200);
    }
    stop.cancel();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("drained in time")
        .expect("task")
        .expect("served");
}
