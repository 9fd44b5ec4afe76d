//! One hub, three doors (docs/protocol/rooms.md §1): messages sent through any door reach members
//! on every door; names are unique across doors.

mod common;

use common::{LineClient, Server, WsClient};
use serde_json::json;

#[tokio::test]
async fn rest_message_reaches_tcp_and_ws_members() {
    let server = Server::start(&[]);
    let http = server.http();

    let mut alice = LineClient::connect(server.tcp).await;
    alice.ok("NEW r1:alice", "OK NEW r1:alice").await;
    let mut bob = server.ws_client().await;
    bob.ok(json!({"cmd": "join", "room": "r1", "client": "bob"}))
        .await;
    alice.expect_push("JOINED r1:bob").await;

    // REST: register → token → join → send.
    let carol = http.register("carol", "main").await;
    let resp = http
        .post_json(
            "/chatrooms/join",
            &json!({"chat_room": "r1", "client_id": "carol"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut clients: Vec<String> = resp.json()["clients"]
        .as_array()
        .expect("clients array")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    clients.sort();
    assert_eq!(clients, ["alice", "bob", "carol"]);
    alice.expect_push("JOINED r1:carol").await;
    bob.wait_push("join of carol", |p| {
        p == &json!({"type": "join", "room": "r1", "client": "carol"})
    })
    .await;

    let resp = http
        .post_json(
            "/messages/send",
            &json!({"message_data": "héllo from rest", "chat_room": "r1", "client_id": "carol"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["clients_notified"], 2);
    alice.expect_push("MSG r1:carol héllo from rest").await;
    bob.expect_push(
        json!({"type": "message", "room": "r1", "from": "carol", "text": "héllo from rest"}),
    )
    .await;

    // REST direct to a TCP member and to a WS member.
    let resp = http
        .post_json(
            "/messages/client-to-client",
            &json!({"message_data": "psst alice", "chat_room": "r1",
                    "source_client_id": "carol", "target_client_id": "alice"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["delivered"], 1);
    alice.expect_push("MSG FROM r1:carol psst alice").await;
    let resp = http
        .post_json(
            "/messages/client-to-client",
            &json!({"message_data": "psst bob", "chat_room": "r1",
                    "source_client_id": "carol", "target_client_id": "bob"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    bob.expect_push(
        json!({"type": "direct", "room": "r1", "from": "carol", "to": "bob", "text": "psst bob"}),
    )
    .await;
}

#[tokio::test]
async fn tcp_and_ws_messages_reach_rest_mailbox_and_each_other() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = WsClient::hello(server.http, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    let carol = http.register("carol", "main").await;
    alice.expect_push("JOINED main:carol").await;
    bob.wait_push("join of carol", |p| {
        p["type"] == "join" && p["client"] == "carol"
    })
    .await;

    // TCP → WS and REST.
    alice.ok("SEND main:alice hi all", "OK SEND main 2").await;
    bob.expect_push(json!({"type": "message", "room": "main", "from": "alice", "text": "hi all"}))
        .await;
    let m = http
        .wait_message("carol", &carol, |m| m["type"] == "message")
        .await;
    assert_eq!(
        m,
        json!({"type": "message", "room": "main", "from": "alice", "text": "hi all",
            "offset": 1, "epoch": m["epoch"].as_str().expect("an epoch")})
    );

    // WS → TCP and REST.
    let reply = bob
        .ok(json!({"cmd": "send", "room": "main", "text": "from ws ✓"}))
        .await;
    assert_eq!(reply["delivered"], 2);
    alice.expect_push("MSG main:bob from ws ✓").await;
    let m = http
        .wait_message("carol", &carol, |m| m["type"] == "message")
        .await;
    assert_eq!(
        common::unpositioned(&m),
        json!({"type": "message", "room": "main", "from": "bob", "text": "from ws ✓"})
    );

    // Direct messages across doors.
    alice
        .ok("TO main:alice carol to rest", "OK TO main:carol 1")
        .await;
    let m = http
        .wait_message("carol", &carol, |m| m["type"] == "direct")
        .await;
    assert_eq!(
        m,
        json!({"type": "direct", "room": "main", "from": "alice", "to": "carol", "text": "to rest"})
    );
    alice
        .ok("TO main:alice bob to ws", "OK TO main:bob 1")
        .await;
    bob.expect_push(
        json!({"type": "direct", "room": "main", "from": "alice", "to": "bob", "text": "to ws"}),
    )
    .await;
    bob.ok(json!({"cmd": "to", "room": "main", "target": "alice", "text": "to tcp"}))
        .await;
    alice.expect_push("MSG FROM main:bob to tcp").await;

    // Everyone is visible everywhere.
    assert_eq!(
        alice
            .list_items("LIST CLIENTS_FOR_CHAT_ROOM main", "CLIENTS_FOR_CHAT_ROOM")
            .await,
        [
            "CLIENT alice ACTIVE",
            "CLIENT bob ACTIVE",
            "CLIENT carol CONNECTED"
        ]
    );
    assert_eq!(server.client_count().await, 3);

    // Leaves cross doors too: a REST close reaches TCP and WS.
    let resp = http
        .post_json(
            "/clients/close",
            &json!({"client_id": "carol"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    alice.expect_push("LEFT main:carol").await;
    bob.expect_push(json!({"type": "leave", "room": "main", "client": "carol"}))
        .await;
}

#[tokio::test]
async fn names_are_unique_across_doors() {
    let server = Server::start(&[]);
    let http = server.http();
    let _alice = LineClient::hello(server.tcp, "main", "alice").await;
    let _bob = WsClient::hello(server.http, "main", "bob").await;
    let _carol = http.register("carol", "main").await;

    for name in ["alice", "bob", "carol"] {
        http.post_json(
            "/clients/register",
            &json!({"client_name": name, "chat_room": "main"}),
            None,
        )
        .await
        .assert_error(409, "NAME_TAKEN");
        let mut tcp = LineClient::connect(server.tcp).await;
        tcp.err(&format!("HELLO main:{name}"), "NAME_TAKEN").await;
        let mut ws = server.ws_client().await;
        ws.err(
            json!({"cmd": "hello", "room": "main", "client": name}),
            "NAME_TAKEN",
        )
        .await;
    }
    assert_eq!(server.client_count().await, 3);
}
