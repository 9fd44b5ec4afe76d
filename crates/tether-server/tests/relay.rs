//! The UI relay listener against the real binary: routing by role, presence, the replay log for
//! late and reloaded UIs, synthesized offlines, limits and bad frames, sessions kept apart,
//! `--relay off`, `/ui` and `/ui/config`, metrics and shutdown.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, TIMEOUT};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CLEAR: &str = r#"{"id": 0, "component": "global", "type": "clearAll"}"#;
const COMPACT_CLEAR: &str = r#"{"id":0,"component":"global","type":"clearAll"}"#;

fn announce(peer: &str, role: &str, status: &str) -> String {
    format!(
        r#"{{"id": 0, "component": "system", "type": "announce", "payload": {{"peerId": "{peer}", "role": "{role}", "status": "{status}", "version": "0.0.7", "timestamp": 1795321171285}}}}"#
    )
}

fn spawn(target: &str, text: &str) -> String {
    format!(
        r#"{{"id": 0, "component": "label", "type": "spawn", "target": "{target}", "payload": {{"text": "{text}"}}}}"#
    )
}

fn set_text(target: &str, text: &str) -> String {
    format!(
        r#"{{"id": 0, "component": "label", "type": "update", "target": "{target}", "payload": {{"action": "setText", "options": {{"text": "{text}"}}}}}}"#
    )
}

/// What a relay client saw next.
#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Close(u16, String),
    Ended,
}

struct Peer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Peer {
    async fn connect(relay: SocketAddr, path: &str) -> Peer {
        let url = format!("ws://{relay}{path}");
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(&url))
            .await
            .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
            .unwrap_or_else(|e| panic!("connecting to {url} failed: {e}"));
        Peer { ws }
    }

    /// Connects and announces `peer` online with `role`.
    async fn join(relay: SocketAddr, path: &str, peer: &str, role: &str) -> Peer {
        let mut p = Peer::connect(relay, path).await;
        p.send(&announce(peer, role, "online")).await;
        p
    }

    async fn send(&mut self, text: &str) {
        self.send_message(Message::text(text.to_owned())).await;
    }

    async fn send_message(&mut self, m: Message) {
        tokio::time::timeout(TIMEOUT, self.ws.send(m))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        loop {
            let m = tokio::time::timeout(wait, self.ws.next()).await.ok()?;
            return Some(match m {
                Some(Ok(Message::Text(t))) => Got::Text(t.as_str().to_owned()),
                Some(Ok(Message::Close(f))) => Got::Close(
                    f.as_ref().map_or(1005, |f| u16::from(f.code)),
                    f.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected {other:?}"),
                Some(Err(_)) | None => Got::Ended,
            });
        }
    }

    async fn next(&mut self) -> Got {
        self.next_within(TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("timed out waiting for a relay frame"))
    }

    async fn text(&mut self) -> String {
        match self.next().await {
            Got::Text(t) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next text frame that is not an announce.
    async fn content(&mut self) -> String {
        loop {
            let t = self.text().await;
            if !t.contains("\"announce\"") {
                return t;
            }
        }
    }

    async fn close_code(&mut self) -> (u16, String) {
        loop {
            match self.next().await {
                Got::Close(code, reason) => return (code, reason),
                Got::Text(_) => continue,
                Got::Ended => panic!("the relay ended the socket without a close frame"),
            }
        }
    }

    /// Nothing arrives before a later marker: a new UI joining the session at `path`, whose
    /// online announce every peer there hears, after what the relay routed before (earlier
    /// markers' announces are let through).
    async fn silent(&mut self, relay: SocketAddr, path: &str) -> Peer {
        static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("sidekick-marker-{n}");
        let marker = Peer::join(relay, path, &name, "sidekick").await;
        loop {
            match self.next().await {
                Got::Text(t) if t.contains(&format!("\"{name}\"")) => return marker,
                Got::Text(t) if t.contains("\"announce\"") && t.contains("sidekick-marker-") => {}
                got => panic!("expected nothing before the marker's announce, got {got:?}"),
            }
        }
    }
}

fn relay_of(server: &Server) -> SocketAddr {
    server.relay.expect("the relay runs")
}

#[tokio::test]
async fn routes_hero_frames_to_uis_and_ui_frames_to_heroes_verbatim() {
    let server = Server::start(&[]);
    let relay = relay_of(&server);
    let mut ui = Peer::join(relay, "/", "sidekick-a", "sidekick").await;
    let mut ui2 = Peer::join(relay, "/", "sidekick-b", "sidekick").await;
    assert!(ui.text().await.contains("sidekick-b"), "ui hears of ui2");
    assert!(ui2.text().await.contains("sidekick-a"), "ui2 hears of ui");
    let hero_hello = announce("hero-py-1", "hero", "online");
    let mut hero = Peer::connect(relay, "/").await;
    hero.send(&hero_hello).await;
    // The hero hears of both UIs; each UI hears of the hero, byte for byte.
    let mut seen = vec![hero.text().await, hero.text().await];
    seen.sort();
    assert!(
        seen[0].contains("sidekick-a") && seen[1].contains("sidekick-b"),
        "{seen:?}"
    );
    assert_eq!(ui.text().await, hero_hello);
    assert_eq!(ui2.text().await, hero_hello);

    // Hero → UIs, as sent (Python's separators, and NaN, which is not strict JSON).
    let nan = r#"{"id": 0, "component": "viz", "type": "update", "target": "v", "payload": {"action": "set", "variableName": "x", "options": {"path": [], "valueRepresentation": {"value": NaN}}}}"#;
    for f in [CLEAR, &spawn("lab", "hi"), nan] {
        hero.send(f).await;
        assert_eq!(ui.text().await, f);
        assert_eq!(ui2.text().await, f);
    }
    // UI → heroes only: the other UI does not see it, nor does the sender get it back.
    let click =
        r#"{"id":0,"component":"button","type":"event","src":"btn","payload":{"event":"click"}}"#;
    ui.send(click).await;
    assert_eq!(hero.text().await, click);
    ui2.silent(relay, "/").await;
    ui.silent(relay, "/").await;
    hero.silent(relay, "/").await;
}

#[tokio::test]
async fn any_path_and_session_query_and_pings() {
    let server = Server::start(&[]);
    let relay = relay_of(&server);
    let mut hero = Peer::join(relay, "/some/path?session=s1", "hero-1", "hero").await;
    let mut other = Peer::join(relay, "/?session=s2", "sidekick-x", "sidekick").await;
    let mut ui = Peer::join(relay, "/ws?session=s1", "sidekick-1", "sidekick").await;
    assert!(ui.text().await.contains("hero-1"));
    hero.send(&spawn("a", "x")).await;
    assert!(ui.content().await.contains(r#""target": "a""#));
    other.silent(relay, "/?session=s2").await;
    // Pings are answered.
    hero.send_message(Message::Ping(b"are you there".to_vec().into()))
        .await;
    let pong = tokio::time::timeout(TIMEOUT, async {
        loop {
            match hero.ws.next().await {
                Some(Ok(Message::Pong(p))) => return p.to_vec(),
                Some(Ok(_)) => continue,
                other => panic!("no pong: {other:?}"),
            }
        }
    })
    .await
    .expect("pong in time");
    assert_eq!(pong, b"are you there");
    // A plain GET explains itself.
    let resp = common::Http::new(relay).get("/").await;
    assert_eq!(resp.status, 426, "{}", resp.text());
}

#[tokio::test]
async fn a_late_ui_and_a_reloaded_ui_get_the_page() {
    let server = Server::start(&[]);
    let relay = relay_of(&server);
    // A UI that watches from the start: once it saw the last frame, the relay has them all.
    let mut live = Peer::join(relay, "/", "sidekick-live", "sidekick").await;
    let mut hero = Peer::join(relay, "/", "hero-py-1", "hero").await;
    assert!(live.text().await.contains("hero-py-1"), "both announced");
    hero.send(CLEAR).await;
    hero.send(&spawn("a", "one")).await;
    hero.send(&set_text("a", "two")).await;
    hero.send(&set_text("a", "three")).await;
    hero.send(&spawn("b", "bee")).await;
    let remove = r#"{"id": 0, "component": "label", "type": "remove", "target": "b"}"#;
    hero.send(remove).await;
    while live.content().await != remove {}
    let expected = vec![
        COMPACT_CLEAR.to_owned(),
        spawn("a", "one"),
        set_text("a", "three"),
    ];
    // A UI that opens after the script drew: presence, then the compacted page.
    let mut late = Peer::join(relay, "/", "sidekick-late", "sidekick").await;
    // (in the order the relay saw the sockets open, which the test does not control)
    let mut presence = vec![late.text().await, late.text().await];
    presence.sort();
    assert_eq!(
        presence,
        vec![
            announce("hero-py-1", "hero", "online"),
            announce("sidekick-live", "sidekick", "online"),
        ]
    );
    let got = vec![late.text().await, late.text().await, late.text().await];
    assert_eq!(got, expected);
    let _marker = late.silent(relay, "/").await;
    // Reload: the page goes away and comes back with the same peer id.
    drop(late);
    let mut reloaded = Peer::join(relay, "/", "sidekick-late", "sidekick").await;
    let got = vec![
        reloaded.content().await,
        reloaded.content().await,
        reloaded.content().await,
    ];
    assert_eq!(got, expected);
    // The script ends; a UI opened afterwards still shows the page.
    hero.send(&announce("hero-py-1", "hero", "offline")).await;
    drop(hero);
    // The hero's offline: its own, or the one the relay synthesizes when the dropped socket's
    // unread input makes the kernel reset it before the relay read the announce (seen under load).
    loop {
        let t = reloaded.text().await;
        if t.contains("hero-py-1") && t.replace(' ', "").contains(r#""status":"offline""#) {
            break;
        }
        assert!(
            t.contains("\"announce\""),
            "only presence before the hero's offline: {t}"
        );
    }
    let mut after = Peer::join(relay, "/", "sidekick-after", "sidekick").await;
    let got = vec![
        after.content().await,
        after.content().await,
        after.content().await,
    ];
    assert_eq!(got, expected, "the same page");
}

#[tokio::test]
async fn a_socket_that_vanishes_gets_a_synthesized_offline() {
    let server = Server::start(&[]);
    let relay = relay_of(&server);
    let mut ui = Peer::join(relay, "/", "sidekick-1", "sidekick").await;
    let hero = Peer::join(relay, "/", "hero-py-9", "hero").await;
    assert!(ui.text().await.contains("hero-py-9"));
    // No close frame, no offline announce: the TCP connection just goes.
    drop(hero);
    let t = ui.text().await;
    let v: Value = serde_json::from_str(&t).expect("JSON");
    assert_eq!(v["component"], "system");
    assert_eq!(v["type"], "announce");
    assert_eq!(v["payload"]["peerId"], "hero-py-9");
    assert_eq!(v["payload"]["role"], "hero");
    assert_eq!(v["payload"]["status"], "offline");
    assert_eq!(v["payload"]["version"], "0.0.7");
    let ts = v["payload"]["timestamp"]
        .as_u64()
        .expect("numeric timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    assert!(now.abs_diff(ts) < 60_000, "timestamp {ts} is now ({now})");
}

#[tokio::test]
async fn oversized_binary_and_invalid_utf8_frames_close_only_their_socket() {
    let server = Server::start(&["--relay-max-frame", "4096"]);
    let relay = relay_of(&server);
    let mut ui = Peer::join(relay, "/", "sidekick-1", "sidekick").await;
    let mut hero = Peer::join(relay, "/", "hero-1", "hero").await;
    ui.text().await;
    hero.text().await;

    let mut big = Peer::join(relay, "/", "hero-big", "hero").await;
    big.send(&spawn("x", &"a".repeat(5000))).await;
    let (code, reason) = big.close_code().await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("4096"), "{reason}");

    let mut bin = Peer::join(relay, "/", "hero-bin", "hero").await;
    bin.send_message(Message::binary(vec![1, 2, 3])).await;
    let (code, reason) = bin.close_code().await;
    assert_eq!(code, 1003, "{reason}");

    let mut bad = Peer::join(relay, "/", "hero-utf8", "hero").await;
    let payload = vec![b'"', 0xff, 0xfe, b'"'];
    let frame = Frame::from_payload(
        FrameHeader {
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        },
        payload.into(),
    );
    bad.send_message(Message::Frame(frame)).await;
    let (code, reason) = bad.close_code().await;
    assert_eq!(code, 1007, "{reason}");

    // The UI heard the three come and go, and the first hero still reaches it.
    hero.send(&spawn("ok", "still here")).await;
    assert_eq!(ui.content().await, spawn("ok", "still here"));
}

/// Sends 2,000 console appends of 8 KB each from `hero` as fast as the socket takes them (until
/// it is closed); the task gives the peer back.
fn flood(mut hero: Peer) -> tokio::task::JoinHandle<Peer> {
    tokio::spawn(async move {
        let text = format!(
            r#"{{"id": 0, "component": "console", "type": "update", "target": "c", "payload": {{"action": "append", "options": {{"text": "{}"}}}}}}"#,
            "x".repeat(8000)
        );
        for _ in 0..2000 {
            if hero.ws.send(Message::text(text.clone())).await.is_err() {
                break;
            }
        }
        hero
    })
}

#[tokio::test]
async fn a_flood_in_one_session_leaves_another_alone() {
    let server = Server::start(&[
        "--relay-max-frame",
        "65536",
        "--relay-log-bytes",
        "1048576",
        "--relay-queue-bytes",
        "2097152",
    ]);
    let relay = relay_of(&server);
    // Session "flood": a hero that sends as fast as it can, and a UI that never reads.
    let flood_hero = Peer::join(relay, "/?session=flood", "hero-f", "hero").await;
    let _stuck_ui = Peer::join(relay, "/?session=flood", "sidekick-f", "sidekick").await;
    // Session "calm": a hero and a UI that do a round trip while the flood runs.
    let mut calm_hero = Peer::join(relay, "/?session=calm", "hero-c", "hero").await;
    let mut calm_ui = Peer::join(relay, "/?session=calm", "sidekick-c", "sidekick").await;
    calm_ui.text().await;
    calm_hero.text().await;

    let flood = flood(flood_hero);
    let mut worst = Duration::ZERO;
    for i in 0..50 {
        let f = set_text("lab", &format!("t{i}"));
        let start = Instant::now();
        calm_hero.send(&f).await;
        assert_eq!(calm_ui.text().await, f);
        worst = worst.max(start.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        worst < Duration::from_secs(2),
        "slowest round trip {worst:?}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), flood).await;
    // The UI that never read was closed as too slow; the calm session goes on.
    let metrics = server.http().get("/metrics").await.text();
    let too_slow = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tether_relay_closed_total{reason=\"too_slow\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(too_slow >= 1.0, "{metrics}");
    calm_hero.send(&spawn("end", "e")).await;
    assert_eq!(calm_ui.text().await, spawn("end", "e"));
}

#[tokio::test]
async fn relay_off_prints_no_line_and_config_says_null() {
    let server = Server::start(&["--relay", "off"]);
    assert!(server.relay.is_none());
    assert!(
        !server.stdout_lines.iter().any(|l| l.contains("relay")),
        "{:?}",
        server.stdout_lines
    );
    let v = server.http().get("/ui/config").await.json();
    assert_eq!(v["relay"], Value::Null);
    assert_eq!(v["port"], Value::Null);
}

#[tokio::test]
async fn ui_pages_config_and_metrics() {
    let server = Server::start(&[]);
    let relay = relay_of(&server);
    let http = server.http();
    let v = http.get("/ui/config").await.json();
    assert_eq!(v["relay"], format!("ws://{relay}"));
    assert_eq!(v["port"], relay.port());
    for path in ["/ui", "/ui/session/abc"] {
        let r = http.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}"
        );
    }
    let mut hero = Peer::join(relay, "/", "hero-1", "hero").await;
    hero.send(CLEAR).await;
    hero.send(&spawn("a", "b")).await;
    let metrics = common::eventually("relay metrics", || {
        let http = server.http();
        async move {
            let m = http.get("/metrics").await.text();
            (m.contains("tether_relay_connections 1") && m.contains("tether_relay_frames_in_total"))
                .then_some(m)
        }
    })
    .await;
    assert!(metrics.contains("tether_relay_log_bytes"), "{metrics}");
}

#[tokio::test]
async fn shutdown_tells_relay_peers_going_away() {
    let mut server = Server::start(&[]);
    let relay = relay_of(&server);
    let mut ui = Peer::join(relay, "/", "sidekick-1", "sidekick").await;
    let _hero = Peer::join(relay, "/", "hero-1", "hero").await;
    ui.text().await;
    server.signal("TERM");
    let (code, reason) = ui.close_code().await;
    assert_eq!(code, 1001, "{reason}");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn an_explicit_relay_address_that_is_taken_is_an_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr").to_string();
    let out = common::tether_command()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--relay",
            &taken,
        ])
        .output()
        .expect("run tether");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("relay") && stderr.contains(&taken),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_default_relay_port_taken_only_warns() {
    // Hold 5163 (or find it held already: taken either way).
    let _holder = std::net::TcpListener::bind("127.0.0.1:5163");
    let server = Server::builder().default_relay().start();
    assert!(server.relay.is_none(), "{:?}", server.stdout_lines);
    let v = server.http().get("/ui/config").await.json();
    assert_eq!(v["relay"], Value::Null);
    let stderr = common::eventually("the warning", || {
        let s = server.stderr();
        async move { s.contains("UI relay not started").then_some(s) }
    })
    .await;
    assert!(stderr.contains("--relay off"), "{stderr}");
}

/// The `/metrics` sample `sample` (name with labels), 0 when absent.
async fn metric(server: &Server, sample: &str) -> f64 {
    let text = server.http().get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn connection_and_session_caps_refuse_with_1013() {
    let server = Server::start(&["--relay-max-connections", "2", "--relay-max-sessions", "1"]);
    let relay = relay_of(&server);
    let mut hero = Peer::join(relay, "/?session=s1", "hero-1", "hero").await;
    // The relay opens the session once the handshake is answered: wait until it exists.
    common::eventually("session s1 to open", || async {
        (metric(&server, "tether_relay_sessions").await == 1.0).then_some(())
    })
    .await;
    // A second session while the only one has a connection.
    let mut other = Peer::connect(relay, "/?session=s2").await;
    assert_eq!(
        other.close_code().await,
        (1013, "relay full: 1 sessions".to_owned())
    );
    let mut ui = Peer::join(relay, "/?session=s1", "ui-1", "sidekick").await;
    // A third connection.
    let mut third = Peer::connect(relay, "/?session=s1").await;
    assert_eq!(
        third.close_code().await,
        (1013, "relay full: 2 connections".to_owned())
    );
    // The two admitted ones go on.
    ui.text().await;
    hero.text().await;
    hero.send(&spawn("a", "b")).await;
    assert_eq!(ui.content().await, spawn("a", "b"));
    assert_eq!(
        metric(&server, r#"tether_relay_closed_total{reason="refused"}"#).await,
        2.0
    );
}

#[tokio::test]
async fn a_relay_over_its_global_budget_closes_the_reader_holding_the_most() {
    // Each socket may hold 4 MiB, and so may all of them together: two UIs that never read
    // reach the global budget at about 2 MiB each, long before their own bound.
    let server = Server::start(&[
        "--relay-max-frame",
        "65536",
        "--relay-log-bytes",
        "1048576",
        "--relay-queue-bytes",
        "4194304",
        "--relay-total-queue-bytes",
        "4194304",
    ]);
    let relay = relay_of(&server);
    let flood_hero = Peer::join(relay, "/?session=flood", "hero-f", "hero").await;
    let _stuck_1 = Peer::join(relay, "/?session=flood", "sidekick-1", "sidekick").await;
    let _stuck_2 = Peer::join(relay, "/?session=flood", "sidekick-2", "sidekick").await;
    let mut calm_hero = Peer::join(relay, "/?session=calm", "hero-c", "hero").await;
    let mut calm_ui = Peer::join(relay, "/?session=calm", "sidekick-c", "sidekick").await;
    calm_ui.text().await;
    calm_hero.text().await;
    let flood = flood(flood_hero);
    common::eventually("a close for the budget", || async {
        (metric(
            &server,
            r#"tether_relay_closed_total{reason="over_budget"}"#,
        )
        .await
            >= 1.0)
            .then_some(())
    })
    .await;
    let queued = metric(&server, "tether_relay_queued_bytes").await;
    assert!(queued <= 4194304.0, "{queued}");
    // The calm session goes on.
    calm_hero.send(&spawn("ok", "still here")).await;
    assert_eq!(calm_ui.content().await, spawn("ok", "still here"));
    let _ = tokio::time::timeout(Duration::from_secs(60), flood).await;
}

/// A WebSocket client over TLS that trusts `cert`.
async fn wss(
    addr: SocketAddr,
    path: &str,
    cert: &common::TestCert,
) -> WebSocketStream<common::BoxIo> {
    let stream = common::tls_connect(addr, &cert.connector()).await;
    let url = format!("wss://localhost:{}{path}", addr.port());
    tokio::time::timeout(
        common::TIMEOUT,
        tokio_tungstenite::client_async(&url, stream),
    )
    .await
    .expect("handshake in time")
    .unwrap_or_else(|e| panic!("{url}: {e}"))
    .0
}

async fn next_text<S>(ws: &mut WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(common::TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn with_tls_the_relay_speaks_wss_and_the_page_is_told_so() {
    let cert = common::TestCert::generate();
    let server = Server::builder()
        .args(["--tls-cert", &cert.cert_arg(), "--tls-key", &cert.key_arg()])
        .start();
    let relay = relay_of(&server);
    let mut hero = wss(relay, "/", &cert).await;
    let mut ui = wss(relay, "/", &cert).await;
    hero.send(Message::text(announce("hero-1", "hero", "online")))
        .await
        .expect("send");
    ui.send(Message::text(announce("ui-1", "sidekick", "online")))
        .await
        .expect("send");
    assert!(next_text(&mut ui).await.contains("hero-1"));
    hero.send(Message::text(spawn("a", "over tls")))
        .await
        .expect("send");
    loop {
        let t = next_text(&mut ui).await;
        if !t.contains("announce") {
            assert_eq!(t, spawn("a", "over tls"));
            break;
        }
    }
    // A plain ws:// client gets no WebSocket.
    let plain = tokio::time::timeout(
        common::TIMEOUT,
        tokio_tungstenite::connect_async(format!("ws://{relay}/")),
    )
    .await
    .expect("the handshake ends");
    assert!(plain.is_err(), "plain WebSocket on the TLS relay");
    // The page dials wss://, at the name it was loaded from when that is a loopback name.
    for (host, expected) in [
        (
            format!("localhost:{}", server.http.port()),
            format!("wss://localhost:{}", relay.port()),
        ),
        (
            format!("127.0.0.1:{}", server.http.port()),
            format!("wss://127.0.0.1:{}", relay.port()),
        ),
    ] {
        let mut s = common::tls_connect(server.http, &cert.connector()).await;
        s.write_all(
            format!("GET /ui/config HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(common::TIMEOUT, s.read_to_end(&mut raw)).await;
        let resp = common::parse_http_response(&raw).expect("a response");
        assert_eq!(resp.json()["relay"], expected.as_str(), "Host {host}");
    }
}

#[tokio::test]
async fn localhost_listens_on_both_loopback_addresses() {
    let server = Server::start(&["--relay", "localhost:0"]);
    let relay = relay_of(&server);
    assert_eq!(relay.ip(), std::net::Ipv4Addr::LOCALHOST);
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // No IPv6 here: the relay says so and serves 127.0.0.1.
        let stderr = server.stderr();
        assert!(
            stderr.contains(&format!("listens on 127.0.0.1:{} only", relay.port())),
            "{stderr}"
        );
        return;
    }
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, relay.port()));
    let mut hero = Peer::join(relay, "/", "hero-1", "hero").await;
    let mut ui = Peer::join(v6, "/", "ui-1", "sidekick").await;
    assert!(ui.text().await.contains("hero-1"));
    assert!(hero.text().await.contains("ui-1"));
    hero.send(&spawn("a", "both")).await;
    assert_eq!(ui.content().await, spawn("a", "both"));
}

#[tokio::test]
async fn ipv6_loopback_taken_only_warns() {
    let Ok(holder) = std::net::TcpListener::bind("[::1]:0") else {
        // No IPv6: localhost_listens_on_both_loopback_addresses covers the warning.
        return;
    };
    let port = holder.local_addr().expect("addr").port();
    let server = Server::start(&["--relay", &format!("localhost:{port}")]);
    assert_eq!(relay_of(&server), SocketAddr::from(([127, 0, 0, 1], port)));
    let stderr = common::eventually("the warning", || {
        let s = server.stderr();
        async move {
            s.contains(&format!("listens on 127.0.0.1:{port} only"))
                .then_some(s)
        }
    })
    .await;
    assert!(stderr.contains("[::1]"), "{stderr}");
    let _hero = Peer::join(relay_of(&server), "/", "hero-1", "hero").await;
}
