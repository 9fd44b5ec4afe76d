//! Offsets, epochs and recovery over real sockets on every door, the join race, and `--data`
//! (SQLite) across restarts of the real binary.

mod common;

use std::time::{Duration, Instant};

use common::{LineClient, Server, TIMEOUT, TempDir, WsClient, tether_command};
use serde_json::{Value, json};

/// `OK HELLO|JOIN room:client AT|RECOVERED|RESYNC offset epoch` → (state, offset, epoch).
fn position(reply: &str) -> (String, u64, String) {
    let t: Vec<&str> = reply.split(' ').collect();
    assert_eq!(t.len(), 6, "not a positioned reply: {reply:?}");
    (
        t[3].to_string(),
        t[4].parse().expect("offset"),
        t[5].to_string(),
    )
}

/// Reads `OFFSET room n epoch` + `MSG room:from text` pairs until offset `to`; returns the offsets
/// and texts in the order they came.
async fn read_offsets(c: &mut LineClient, to: u64) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while got.last().is_none_or(|(o, _)| *o < to) {
        assert!(
            Instant::now() < deadline,
            "timed out at {got:?}, waiting for {to}"
        );
        let line = c.next_push().await;
        let Some(rest) = line.strip_prefix("OFFSET ") else {
            assert!(
                !line.starts_with("MSG "),
                "a message without its OFFSET line: {line}"
            );
            continue;
        };
        let offset: u64 = rest
            .split(' ')
            .nth(1)
            .expect("offset")
            .parse()
            .expect("offset");
        let msg = c.next_push().await;
        assert!(msg.starts_with("MSG "), "OFFSET not followed by MSG: {msg}");
        let text = msg.splitn(3, ' ').nth(2).unwrap_or_default().to_string();
        got.push((offset, text));
    }
    got
}

#[tokio::test]
async fn tcp_join_since_recovers_exactly_what_was_missed_then_live() {
    let server = Server::start(&[]);
    let mut alice = server.tcp_client().await;
    let (state, top, epoch) = position(&alice.cmd("HELLO main:alice OFFSETS").await);
    assert_eq!((state.as_str(), top), ("AT", 0));
    // A seed client sees the exact old lines.
    let mut seed = LineClient::hello(server.tcp, "main", "seed").await;
    let mut carol = server.tcp_client().await;
    assert_eq!(
        carol.cmd("JOIN main:carol OFFSETS").await,
        format!("OK JOIN main:carol AT 0 {epoch}")
    );
    for i in 1..=3 {
        assert_eq!(
            alice.cmd(&format!("SEND main:alice m{i}")).await,
            format!("OK SEND main 2 {i} {epoch}")
        );
    }
    assert_eq!(read_offsets(&mut carol, 3).await.len(), 3);
    // carol goes away at 3; 4 and 5 are sent meanwhile.
    carol.ok("QUIT main:carol", "OK BYE").await;
    for i in 4..=5 {
        alice.cmd(&format!("SEND main:alice m{i}")).await;
    }
    let mut carol = server.tcp_client().await;
    assert_eq!(
        carol.cmd(&format!("JOIN main:carol SINCE 3 {epoch}")).await,
        format!("OK JOIN main:carol RECOVERED 5 {epoch}")
    );
    alice.cmd("SEND main:alice live").await;
    let got = read_offsets(&mut carol, 6).await;
    assert_eq!(
        got,
        [(4, "m4".into()), (5, "m5".into()), (6, "live".into())],
        "the missed ones in order, then live: no gap, no duplicate"
    );
    // The seed client sees the exact old lines, never an OFFSET line.
    let mut lines = Vec::new();
    while lines.last().is_none_or(|l| l != "MSG main:alice live") {
        let p = seed.next_push().await;
        assert!(!p.starts_with("OFFSET"), "{p}");
        if p.starts_with("MSG") {
            lines.push(p);
        }
    }
    let want: Vec<String> = (1..=5)
        .map(|i| format!("MSG main:alice m{i}"))
        .chain(["MSG main:alice live".to_string()])
        .collect();
    assert_eq!(lines, want);
    // Another epoch, a position ahead, a position at the top.
    for (since, want) in [
        (
            "0 otherepoch".to_string(),
            format!("OK JOIN main:dave RESYNC 6 {epoch}"),
        ),
        (
            format!("99 {epoch}"),
            format!("OK JOIN main:dave RESYNC 6 {epoch}"),
        ),
        (
            format!("6 {epoch}"),
            format!("OK JOIN main:dave RECOVERED 6 {epoch}"),
        ),
    ] {
        let mut dave = server.tcp_client().await;
        assert_eq!(
            dave.cmd(&format!("JOIN main:dave SINCE {since}")).await,
            want
        );
        dave.ok("QUIT main:dave", "OK BYE").await;
    }
    let mut eve = server.tcp_client().await;
    eve.err("JOIN main:eve SINCE x y", "BAD_SYNTAX").await;
    eve.err("NEW r2:eve SINCE 1 y", "BAD_SYNTAX").await;
}

#[tokio::test]
async fn websocket_since_recovers_or_resyncs() {
    let server = Server::start(&[]);
    let mut alice = WsClient::hello(server.http, "main", "alice").await;
    let mut bob = server.ws_client().await;
    let reply = bob
        .ok(json!({"cmd": "join", "room": "main", "client": "bob"}))
        .await;
    let epoch = reply["epoch"].as_str().expect("epoch").to_string();
    assert_eq!(reply["offset"], 0);
    assert!(reply.get("recovered").is_none());
    for i in 1..=2 {
        let r = alice
            .ok(json!({"cmd": "send", "room": "main", "text": format!("m{i}")}))
            .await;
        assert_eq!(
            (r["offset"].as_u64(), r["epoch"].as_str()),
            (Some(i), Some(&*epoch))
        );
    }
    let last = bob
        .wait_push("m2", |p| p["type"] == "message" && p["text"] == "m2")
        .await;
    assert_eq!(last["offset"], 2);
    bob.ok(json!({"cmd": "quit"})).await;
    for i in 3..=4 {
        alice
            .ok(json!({"cmd": "send", "room": "main", "text": format!("m{i}")}))
            .await;
    }
    let mut bob = server.ws_client().await;
    let reply = bob
        .ok(json!({"cmd": "join", "room": "main", "client": "bob",
            "since": {"offset": 2, "epoch": epoch}}))
        .await;
    assert_eq!(reply["recovered"], true);
    assert_eq!(reply["offset"], 4);
    alice
        .ok(json!({"cmd": "send", "room": "main", "text": "live"}))
        .await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let p = bob.next_push().await;
        if p["type"] == "message" {
            got.push((p["offset"].as_u64().expect("offset"), p["text"].clone()));
        }
    }
    assert_eq!(
        got,
        [(3, json!("m3")), (4, json!("m4")), (5, json!("live"))]
    );
    let mut carol = server.ws_client().await;
    let reply = carol
        .ok(json!({"cmd": "join", "room": "main", "client": "carol",
            "since": {"offset": 1, "epoch": "gone"}}))
        .await;
    assert_eq!(reply["recovered"], false, "another epoch: resync");
    assert_eq!(
        (reply["offset"].as_u64(), reply["epoch"].as_str()),
        (Some(5), Some(&*epoch))
    );
    carol
        .err(
            json!({"cmd": "join", "room": "main", "client": "carol", "since": {"offset": "1"}}),
            "BAD_SYNTAX",
        )
        .await;
}

#[tokio::test]
async fn rest_history_reads_pages_and_refuses_bad_parameters() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut alice = server.tcp_client().await;
    let (_, _, epoch) = position(&alice.cmd("NEW r1:alice OFFSETS").await);
    for i in 1..=5 {
        alice.cmd(&format!("SEND r1:alice m{i}")).await;
    }
    let resp = http.get("/chatrooms/r1/history?limit=2").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"chat_room": "r1", "offset": 5, "epoch": epoch, "messages": [
            {"offset": 4, "from": "alice", "text": "m4"},
            {"offset": 5, "from": "alice", "text": "m5"},
        ]})
    );
    let resp = http
        .get(&format!(
            "/chatrooms/r1/history?since=1&epoch={epoch}&limit=2"
        ))
        .await;
    let v = resp.json();
    assert_eq!(v["recovered"], true);
    let offsets: Vec<u64> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].as_u64().expect("offset"))
        .collect();
    assert_eq!(
        offsets,
        [2, 3],
        "the oldest after the position first, a page of 2"
    );
    let v = http
        .get("/chatrooms/r1/history?since=1&epoch=another")
        .await
        .json();
    assert_eq!(
        v,
        json!({"chat_room": "r1", "offset": 5, "epoch": epoch, "recovered": false, "messages": []})
    );
    for (query, needle) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("since=1", "together"),
        ("epoch=abc", "together"),
        ("since=-1&epoch=abc", "offset"),
        ("since=1&epoch=a%20b", "epoch"),
    ] {
        let resp = http.get(&format!("/chatrooms/r1/history?{query}")).await;
        resp.assert_error(400, "BAD_SYNTAX");
        assert!(
            resp.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{query}: {}",
            resp.text()
        );
    }
    http.get("/chatrooms/nope/history")
        .await
        .assert_error(404, "NO_SUCH_ROOM");
    http.get("/chatrooms/bad%20name/history")
        .await
        .assert_error(400, "BAD_NAME");
}

/// Members join with a position while a burst is published: each one's stream, recovered part
/// and live part together, is every offset after its position exactly once, in order.
#[tokio::test]
async fn members_joining_during_a_burst_see_every_offset_once() {
    const N: u64 = 400;
    let dir = TempDir::new("race");
    let cfg = dir.write(
        "t.toml",
        "[[history]]\nroom = \"*\"\nmessages = 1000\nbytes = 1048576\n",
    );
    let server = Server::start(&["--config", cfg.to_str().expect("path")]);
    let mut publisher = server.tcp_client().await;
    let (_, _, epoch) = position(&publisher.cmd("HELLO main:pub OFFSETS").await);
    let tcp = server.tcp;
    let burst = tokio::spawn(async move {
        let mut sent = 0;
        while sent < N {
            let mut chunk = String::new();
            for _ in 0..10 {
                sent += 1;
                chunk.push_str(&format!("SEND main:pub n{sent}\n"));
            }
            publisher.send_raw(chunk.as_bytes()).await;
            for _ in 0..10 {
                let r = publisher.reply().await;
                assert!(r.starts_with("OK SEND"), "{r}");
            }
        }
        publisher
    });
    let mut members = Vec::new();
    for i in 0..12 {
        // Half start from the beginning, half from wherever the burst has got to (learnt by a
        // first join, left at once: the burst goes on before the second).
        let since = if i % 2 == 0 {
            0
        } else {
            let mut first = LineClient::connect(tcp).await;
            let (_, top, _) = position(&first.cmd(&format!("JOIN main:m{i} OFFSETS")).await);
            first.ok(&format!("QUIT main:m{i}"), "OK BYE").await;
            top
        };
        let mut m = LineClient::connect(tcp).await;
        let reply = m
            .cmd(&format!("JOIN main:m{i} SINCE {since} {epoch}"))
            .await;
        let (state, _, _) = position(&reply);
        assert_eq!(state, "RECOVERED", "{reply}");
        members.push((since, m));
    }
    let mut ws_members = Vec::new();
    for i in 0..6 {
        let mut w = WsClient::connect(server.http).await;
        let reply = w
            .ok(
                json!({"cmd": "join", "room": "main", "client": format!("w{i}"),
                "since": {"offset": 0, "epoch": epoch}}),
            )
            .await;
        assert_eq!(reply["recovered"], true);
        ws_members.push(w);
    }
    // One more after the burst, so that a member that joined at its end has something to read.
    let mut publisher = burst.await.expect("burst");
    let end = N + 1;
    assert_eq!(
        publisher.cmd("SEND main:pub end").await,
        format!("OK SEND main 18 {end} {epoch}")
    );
    for (since, mut m) in members {
        let got: Vec<u64> = read_offsets(&mut m, end)
            .await
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(got, ((since + 1)..=end).collect::<Vec<_>>());
    }
    for mut w in ws_members {
        let mut got = Vec::new();
        while got.last().is_none_or(|o| *o < end) {
            let p: Value = w.next_push().await;
            if p["type"] == "message" {
                got.push(p["offset"].as_u64().expect("offset"));
            }
        }
        assert_eq!(got, (1..=end).collect::<Vec<_>>());
    }
}

fn start_with_data(dir: &TempDir) -> Server {
    Server::start(&["--data", dir.path.to_str().expect("path")])
}

#[tokio::test]
async fn data_dir_keeps_rooms_and_history_across_restarts() {
    let dir = TempDir::new("data");
    let mut server = start_with_data(&dir);
    let mut alice = server.tcp_client().await;
    let (_, _, epoch) = position(&alice.cmd("NEW r1:alice OFFSETS").await);
    for i in 1..=3 {
        alice.cmd(&format!("SEND r1:alice m{i}")).await;
    }
    // An orderly stop writes everything and keeps the epoch.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(15)).await.success());
    let mut server = start_with_data(&dir);
    let v = server.http().get("/chatrooms/r1/history").await.json();
    assert_eq!(
        (v["offset"].as_u64(), v["epoch"].as_str()),
        (Some(3), Some(&*epoch))
    );
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(3));
    let mut bob = server.tcp_client().await;
    assert_eq!(
        bob.cmd(&format!("JOIN r1:bob SINCE 1 {epoch}")).await,
        format!("OK JOIN r1:bob RECOVERED 3 {epoch}")
    );
    assert_eq!(
        read_offsets(&mut bob, 3).await,
        [(2, "m2".into()), (3, "m3".into())],
        "recovered across the restart"
    );
    bob.cmd("SEND r1:bob after").await;
    // A SIGKILL cannot prove the tail was written: a new epoch, the room and offsets kept.
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(15)).await;
    let mut server = start_with_data(&dir);
    let v = server.http().get("/chatrooms/r1/history").await.json();
    let epoch2 = v["epoch"].as_str().expect("epoch").to_string();
    assert_ne!(epoch2, epoch, "a crash gives a new epoch");
    assert!(v["offset"].as_u64().is_some_and(|o| o >= 3), "{v}");
    let mut carol = server.tcp_client().await;
    let (state, _, e) = position(&carol.cmd(&format!("JOIN r1:carol SINCE 3 {epoch}")).await);
    assert_eq!((state.as_str(), e.as_str()), ("RESYNC", &*epoch2));
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(15)).await;
    // A wiped directory: the room is gone, main has a new epoch.
    std::fs::remove_dir_all(&dir.path).expect("wipe");
    let server = start_with_data(&dir);
    server
        .http()
        .get("/chatrooms/r1/history")
        .await
        .assert_error(404, "NO_SUCH_ROOM");
    let v = server.http().get("/chatrooms/main/history").await.json();
    assert_ne!(v["epoch"].as_str(), Some(&*epoch2));
    assert_eq!(v["offset"], 0);
}

/// Runs the binary, which must refuse to start; returns its stderr.
fn refused(args: &[&str]) -> String {
    let mut child = tether_command()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--relay",
            "off",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tether");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "started with {args:?}");
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("stderr");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tether {args:?} did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unusable_data_dir_stops_the_server_with_a_clear_error() {
    let dir = TempDir::new("baddata");
    let file = dir.write("plain-file", "x");
    let sub = file.join("sub");
    let err = refused(&["--data", sub.to_str().expect("path")]);
    assert!(err.contains("cannot use data directory"), "{err}");
    let corrupt = TempDir::new("corrupt");
    corrupt.write("tether.db", &"not a database ".repeat(600));
    let err = refused(&["--data", corrupt.path.to_str().expect("path")]);
    assert!(err.contains("tether.db"), "{err}");
}
