//! The rooms fan-out (docs/architecture.md, walk 1): room messages go through each room's shared
//! log, replies and direct messages through each connection's own queue. Whichever door sends and
//! whichever door reads, every member still sees them in the order the server took them, its own
//! replies included; a member that joins mid-stream gets only what follows its join.

mod common;

use common::{LineClient, Server, WsClient, is_push, is_reply};
use serde_json::{Value, json};

/// What one member expects, in order: its pushes, as the TCP door writes them.
fn tcp_line(v: &Value) -> Option<String> {
    let (room, from, text) = (
        v["room"].as_str()?,
        v["from"].as_str()?,
        v["text"].as_str()?,
    );
    match v["type"].as_str()? {
        "message" => Some(format!("MSG {room}:{from} {text}")),
        "direct" => Some(format!("MSG FROM {room}:{from} {text}")),
        _ => None,
    }
}

/// Reads a TCP member's lines up to its next reply; returns the messages before it, and the
/// reply.
async fn tcp_messages_until_reply(c: &mut LineClient) -> (Vec<String>, String) {
    let mut got = Vec::new();
    loop {
        let line = c.next_line().await;
        if is_reply(&line) {
            return (got, line);
        }
        if line.starts_with("MSG ") {
            got.push(line);
        }
    }
}

/// Reads a WebSocket member's frames up to its next reply; returns the messages before it (in
/// the TCP door's words, to compare with the same list).
async fn ws_messages_until_reply(c: &mut WsClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let v = c.next_json().await;
        if !is_push(&v) {
            assert_eq!(v["ok"], json!(true), "{v}");
            return got;
        }
        got.extend(tcp_line(&v));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_sees_room_and_direct_messages_and_its_replies_in_server_order() {
    let server = Server::start(&[]);
    let mut tm = LineClient::hello(server.tcp, "main", "tm").await;
    let mut wm = WsClient::hello(server.http, "main", "wm").await;
    let mut tp = LineClient::hello(server.tcp, "main", "tp").await;
    let mut wp = WsClient::hello(server.http, "main", "wp").await;
    tp.ok("NEW r2:tp", "OK NEW r2:tp").await;
    wp.ok(json!({"cmd": "join", "room": "r2", "client": "wp"}))
        .await;
    tm.ok("JOIN r2:tm", "OK JOIN r2:tm").await;
    wm.ok(json!({"cmd": "join", "room": "r2", "client": "wm"}))
        .await;

    let (mut want_tm, mut want_wm) = (Vec::new(), Vec::new());
    for i in 0..80 {
        // Each step is taken (its reply read) before the next, so the server's order is this one.
        match i % 4 {
            0 => {
                tp.ok(&format!("SEND main:tp m{i}"), "OK SEND main 3").await;
                want_tm.push(format!("MSG main:tp m{i}"));
                want_wm.push(format!("MSG main:tp m{i}"));
            }
            1 => {
                let text = format!("d{i}");
                wp.ok(json!({"cmd": "to", "room": "main", "target": "tm", "text": text}))
                    .await;
                want_tm.push(format!("MSG FROM main:wp d{i}"));
            }
            2 => {
                let text = format!("m{i}");
                wp.ok(json!({"cmd": "send", "room": "r2", "text": text}))
                    .await;
                want_tm.push(format!("MSG r2:wp m{i}"));
                want_wm.push(format!("MSG r2:wp m{i}"));
            }
            _ => {
                tp.ok(&format!("TO r2:tp wm d{i}"), "OK TO r2:wm 1").await;
                want_wm.push(format!("MSG FROM r2:tp d{i}"));
            }
        }
        if i % 10 == 9 {
            // A reply comes after every message the server took before the command.
            tm.send("LIST CHAT_ROOMS").await;
            let (got, reply) = tcp_messages_until_reply(&mut tm).await;
            assert_eq!(got, want_tm, "tm at {i}");
            tm.read_list_block("LIST CHAT_ROOMS", reply).await;
            want_tm.clear();
            wm.send_json(&json!({"id": 1000 + i, "cmd": "list", "type": "CHAT_ROOMS"}))
                .await;
            assert_eq!(ws_messages_until_reply(&mut wm).await, want_wm, "wm at {i}");
            want_wm.clear();
        }
    }
}

#[tokio::test]
async fn a_member_joining_mid_stream_gets_only_what_follows_its_join() {
    let server = Server::start(&[]);
    let mut publisher = LineClient::hello(server.tcp, "main", "pub").await;
    let mut early = WsClient::hello(server.http, "main", "early").await;
    for i in 0..50 {
        publisher
            .ok(&format!("SEND main:pub before{i}"), "OK SEND main 1")
            .await;
    }
    let mut late = LineClient::connect(server.tcp).await;
    late.ok("HELLO main:late", "OK HELLO main:late").await;
    publisher.ok("SEND main:pub after", "OK SEND main 2").await;
    // The first message the late member gets is the one after its join.
    let first = late.wait_push("a message", |p| p.starts_with("MSG ")).await;
    assert_eq!(first, "MSG main:pub after");
    // The early member got all 51, in order.
    let mut got = Vec::new();
    while got.len() < 51 {
        let v = early.next_json().await;
        got.extend(tcp_line(&v));
    }
    let want: Vec<String> = (0..50)
        .map(|i| format!("MSG main:pub before{i}"))
        .chain(["MSG main:pub after".to_owned()])
        .collect();
    assert_eq!(got, want);
}
