//! Three `tether` nodes on loopback sharing one real `redis-server` (`--bus`): messages through
//! every door reach every node in order per sender, presence spans the nodes and drops a killed
//! node within the TTL, names and rooms are cluster-wide, and a Redis outage is survived.
//!
//! Needs Debian's `redis-server` (scripts/test.sh installs it): without it these tests fail when
//! `CI` is set and are skipped, loudly, otherwise.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Http, LineClient, Server, TempDir, WsClient};
use serde_json::{Value, json};

/// The presence TTL the nodes run with: short, so a killed node drops out quickly.
const TTL_SECS: u64 = 2;

/// A `redis-server` of its own: ephemeral port, no persistence, its own directory.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Redis {
    /// Starts one, or `None` (after saying why) when redis-server is missing outside CI.
    fn start() -> Option<Redis> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is missing and CI is set: install Debian's redis-server \
                 (scripts/test.sh does)"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let mut r = Redis {
            child: None,
            port: 0,
            dir: TempDir::new("redis"),
        };
        for _ in 0..10 {
            // Redis cannot pick its own port: take a free one and retry if another process
            // grabbed it in between.
            r.port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            if r.spawn() {
                return Some(r);
            }
        }
        panic!("redis-server did not start on any of 10 free ports");
    }

    /// Starts redis-server on `self.port`; false if it exited (port taken).
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && c.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} never answered PING", self.port);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was saved).
    fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir.path);
    }
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

fn node(redis: &Redis) -> Server {
    Server::builder()
        .args(["--relay", "off", "--bus", &redis.url()])
        .args(["--bus-presence-ttl", &TTL_SECS.to_string()])
        .start()
}

/// Polls `f` every 50 ms until it holds, for at most `within`; returns how long it took.
async fn until(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "timed out ({within:?}) waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The clients `GET /chatrooms/list` shows in `room` on this node.
async fn members(http: &Http, room: &str) -> Vec<String> {
    let resp = http
        .get(&format!(
            "/chatrooms/list?list_type=CLIENTS_FOR_CHAT_ROOM&chat_room={room}"
        ))
        .await;
    if resp.status != 200 {
        return Vec::new();
    }
    let mut names: Vec<String> = resp.json()["clients"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn health(http: &Http) -> Option<String> {
    let resp = tokio::time::timeout(Duration::from_secs(2), http.get("/health"))
        .await
        .ok()?;
    resp.json()["status"].as_str().map(str::to_owned)
}

async fn rest_send(http: &Http, client: &str, token: &str, text: &str) {
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"client_id": client, "chat_room": "main", "message_data": text}),
            Some(token),
        )
        .await;
    assert_eq!(resp.status, 200, "REST send: {}", resp.text());
}

/// (sender, text) of a TCP `MSG main:from text` push.
fn tcp_msg(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("MSG main:")?;
    let (from, text) = rest.split_once(' ')?;
    Some((from.to_owned(), text.to_owned()))
}

fn ws_msg(v: &Value) -> Option<(String, String)> {
    (v["type"] == "message").then(|| {
        (
            v["from"].as_str().unwrap_or_default().to_owned(),
            v["text"].as_str().unwrap_or_default().to_owned(),
        )
    })
}

/// The texts from `from`, in arrival order.
fn from(got: &[(String, String)], sender: &str) -> Vec<String> {
    got.iter()
        .filter(|(f, _)| f == sender)
        .map(|(_, t)| t.clone())
        .collect()
}

#[tokio::test]
async fn messages_from_every_door_reach_every_node_in_order_per_sender() {
    let Some(redis) = Redis::start() else { return };
    let (a, b, c) = (node(&redis), node(&redis), node(&redis));
    let mut alice = LineClient::hello(a.tcp, "main", "alice").await;
    let mut bob = WsClient::connect(b.http).await;
    bob.ok(json!({"cmd": "hello", "room": "main", "client": "bob"}))
        .await;
    let c_http = c.http();
    let carol = c_http.register("carol", "main").await;
    // Presence spans the nodes: every node lists the three.
    for n in [&a, &b, &c] {
        let http = n.http();
        until(
            "every node to list the three members",
            Duration::from_secs(10),
            async || members(&http, "main").await == ["alice", "bob", "carol"],
        )
        .await;
    }
    const N: usize = 30;
    for i in 0..N {
        alice
            .ok(&format!("SEND main:alice a{i}"), "OK SEND main 0")
            .await;
        bob.ok(json!({"cmd": "send", "room": "main", "text": format!("b{i}")}))
            .await;
        rest_send(&c_http, "carol", &carol, &format!("c{i}")).await;
    }
    let expect = |p: &str| (0..N).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    // alice (TCP on A) gets bob's and carol's.
    let mut got = Vec::new();
    while got.len() < 2 * N {
        let line = alice
            .wait_push("a message", |l| l.starts_with("MSG main:"))
            .await;
        got.extend(tcp_msg(&line));
    }
    assert_eq!(from(&got, "bob"), expect("b"), "bob's messages at alice");
    assert_eq!(
        from(&got, "carol"),
        expect("c"),
        "carol's messages at alice"
    );
    // bob (WS on B) gets alice's and carol's.
    let mut got = Vec::new();
    while got.len() < 2 * N {
        let v = bob.wait_push("a message", |v| v["type"] == "message").await;
        got.extend(ws_msg(&v));
    }
    assert_eq!(from(&got, "alice"), expect("a"), "alice's messages at bob");
    assert_eq!(from(&got, "carol"), expect("c"), "carol's messages at bob");
    // carol (REST on C) gets alice's and bob's.
    let mut got = Vec::new();
    until(
        "carol's mailbox to hold 60 messages",
        Duration::from_secs(10),
        async || {
            let (msgs, dropped) = c_http.messages("carol", &carol).await;
            assert_eq!(dropped, 0);
            got.extend(msgs.iter().filter_map(ws_msg));
            got.len() >= 2 * N
        },
    )
    .await;
    assert_eq!(
        from(&got, "alice"),
        expect("a"),
        "alice's messages at carol"
    );
    assert_eq!(from(&got, "bob"), expect("b"), "bob's messages at carol");
}

#[tokio::test]
async fn presence_names_and_rooms_are_cluster_wide_and_a_killed_node_drops_out() {
    let Some(redis) = Redis::start() else { return };
    let (a, b, mut c) = (node(&redis), node(&redis), node(&redis));
    let mut a1 = LineClient::hello(a.tcp, "main", "a1").await;
    let _b1 = LineClient::hello(b.tcp, "main", "b1").await;
    let mut c1 = LineClient::hello(c.tcp, "main", "c1").await;
    let a_http = a.http();
    until(
        "A to list the members of all nodes",
        Duration::from_secs(10),
        async || members(&a_http, "main").await == ["a1", "b1", "c1"],
    )
    .await;
    // The TCP LIST shows them too.
    let items = a1
        .list_items("LIST CLIENTS_FOR_CHAT_ROOM main", "CLIENTS_FOR_CHAT_ROOM")
        .await;
    assert_eq!(items.len(), 3, "{items:?}");

    // A name held on another node is refused as a local duplicate is.
    let mut dup = a.tcp_client().await;
    dup.err("HELLO main:c1", "NAME_TAKEN").await;
    let resp = b
        .http()
        .post_json(
            "/clients/register",
            &json!({"client_name": "a1", "chat_room": "main"}),
            None,
        )
        .await;
    resp.assert_error(409, "NAME_TAKEN");

    // A room created on A is listed on C, can be joined there, and cannot be created twice.
    a1.ok("NEW lobby:a1", "OK NEW lobby:a1").await;
    let c_http = c.http();
    until(
        "C to list the room created on A",
        Duration::from_secs(10),
        async || {
            let resp = c_http.get("/chatrooms/list").await;
            resp.json()["chat_rooms"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r == "lobby"))
        },
    )
    .await;
    c1.ok("JOIN lobby:c1", "OK JOIN lobby:c1").await;
    a1.wait_push("c1's join from C", |l| l == "JOINED lobby:c1")
        .await;
    let mut b2 = b.tcp_client().await;
    b2.err("NEW lobby:b2", "ROOM_EXISTS").await;

    // SIGKILL C: its member leaves A's presence within the TTL (plus a refresh or two).
    c.signal("KILL");
    c.wait_exit(Duration::from_secs(5)).await;
    let took = until(
        "c1 to drop out of A's presence",
        Duration::from_secs(TTL_SECS * 3 + 2),
        async || members(&a_http, "main").await == ["a1", "b1"],
    )
    .await;
    println!("a SIGKILLed node's member left presence after {took:?} (TTL {TTL_SECS} s)");
    // Its name is free again once its claim runs out.
    until(
        "c1's name to be free",
        Duration::from_secs(TTL_SECS * 3 + 2),
        async || {
            let mut again = b.tcp_client().await;
            again.cmd("HELLO main:c1").await == "OK HELLO main:c1"
        },
    )
    .await;
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_redis_outage_is_survived_and_delivery_resumes() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, b, c) = (node(&redis), node(&redis), node(&redis));
    let mut alice = LineClient::hello(a.tcp, "main", "alice").await;
    let mut local = LineClient::hello(a.tcp, "main", "local").await;
    let mut bob = LineClient::hello(b.tcp, "main", "bob").await;
    let mut carol = LineClient::hello(c.tcp, "main", "carol").await;
    let https = [a.http(), b.http(), c.http()];
    until("presence on A", Duration::from_secs(10), async || {
        members(&https[0], "main").await.len() == 4
    })
    .await;

    // Traffic flows while Redis is killed and restarted.
    let mut published = 0usize;
    let send = async |alice: &mut LineClient, published: &mut usize| {
        alice
            .ok(&format!("SEND main:alice m{published}"), "OK SEND main 1")
            .await;
        *published += 1;
    };
    for _ in 0..20 {
        send(&mut alice, &mut published).await;
    }
    redis.kill();
    for h in &https {
        until(
            "/health to say degraded",
            Duration::from_secs(10),
            async || health(h).await.as_deref() == Some("degraded"),
        )
        .await;
    }
    for _ in 0..20 {
        send(&mut alice, &mut published).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.restart();
    for h in &https {
        until(
            "/health to say ok again",
            Duration::from_secs(15),
            async || health(h).await.as_deref() == Some("ok"),
        )
        .await;
    }
    for _ in 0..20 {
        send(&mut alice, &mut published).await;
    }
    // The last message after the outage reaches both other nodes; everything sent after it is
    // healthy again arrives, in order.
    let last = format!("m{}", published - 1);
    let mut delivered = [Vec::new(), Vec::new()];
    for (i, client) in [&mut bob, &mut carol].into_iter().enumerate() {
        loop {
            let line = client
                .wait_push("alice's messages", |l| l.starts_with("MSG main:alice "))
                .await;
            let (_, text) = tcp_msg(&line).expect("a MSG line");
            let done = text == last;
            delivered[i].push(text);
            if done {
                break;
            }
        }
    }
    let mut at_local = Vec::new();
    while at_local.len() < published {
        let line = local
            .wait_push("alice's messages", |l| l.starts_with("MSG main:alice "))
            .await;
        at_local.extend(tcp_msg(&line).map(|(_, t)| t));
    }
    let all: Vec<String> = (0..published).map(|i| format!("m{i}")).collect();
    assert_eq!(
        at_local, all,
        "the local member got every message, outage or not"
    );
    let after: Vec<String> = all[published - 20..].to_vec();
    for (name, got) in ["bob", "carol"].iter().zip(&delivered) {
        let n: Vec<usize> = got
            .iter()
            .filter_map(|t| t.strip_prefix('m')?.parse().ok())
            .collect();
        assert!(
            n.windows(2).all(|w| w[0] < w[1]),
            "{name}: out of order {n:?}"
        );
        assert!(
            after.iter().all(|m| got.contains(m)),
            "{name} missed messages after the outage: {got:?}"
        );
        println!(
            "outage: published {published}, delivered to {name} on another node {}, lost {}",
            got.len(),
            published - got.len()
        );
    }
    let metrics = https[0].get("/metrics").await.text();
    let lost = metric(&metrics, "tether_bus_lost_total");
    println!("node A counted {lost} deliveries lost to the other nodes");
    let missed = 2 * published - delivered[0].len() - delivered[1].len();
    // Best effort: a message sent while A's view of the other nodes was still being rebuilt
    // after the restart may be under-counted, never over-counted.
    assert!(
        lost > 0.0 && lost as usize <= missed,
        "A's tether_bus_lost_total ({lost}) counts the {missed} misses of the other nodes"
    );
    let metrics = https[1].get("/metrics").await.text();
    assert!(
        metric(&metrics, "tether_bus_reconnects_total") >= 1.0,
        "B counted its reconnect"
    );
    // No node exited, and presence came back after Redis lost everything.
    until(
        "presence after the restart",
        Duration::from_secs(10),
        async || members(&https[1], "main").await == ["alice", "bob", "carol", "local"],
    )
    .await;
}
