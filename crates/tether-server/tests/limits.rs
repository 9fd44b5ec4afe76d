//! Limits at their edges (docs/protocol/rooms.md §1): `--max-clients` (SERVER_FULL on every door,
//! a counter that does not drift) and `--max-message-length` (characters, not bytes; TOO_LONG on
//! every door).

mod common;

use common::{LineClient, Server, WsClient};
use serde_json::json;

#[tokio::test]
async fn max_clients_exactly_n_then_full_on_every_door() {
    let server = Server::start(&["--max-clients", "3"]);
    let http = server.http();
    assert_eq!(server.status().await["max_clients"], 3);

    // Unregistered connections do not count.
    let mut idle_tcp = Vec::new();
    for _ in 0..4 {
        idle_tcp.push(LineClient::connect(server.tcp).await);
    }
    let _idle_ws = server.ws_client().await;
    assert_eq!(server.client_count().await, 0);

    // Exactly 3 accepted, one per door.
    let mut a = LineClient::hello(server.tcp, "main", "a").await;
    let mut b = WsClient::hello(server.http, "main", "b").await;
    let c_token = http.register("c", "main").await;
    assert_eq!(server.client_count().await, 3);

    // The 4th is refused on every door, several times; TCP and WS are then closed.
    for round in 0..3 {
        let mut d = LineClient::connect(server.tcp).await;
        d.err(&format!("HELLO main:d{round}"), "SERVER_FULL").await;
        d.expect_eof().await;

        let mut d = LineClient::connect(server.tcp).await;
        d.err(&format!("NEW room{round}:d{round}"), "SERVER_FULL")
            .await;
        d.expect_eof().await;

        let mut w = server.ws_client().await;
        w.err(
            json!({"cmd": "hello", "room": "main", "client": format!("w{round}")}),
            "SERVER_FULL",
        )
        .await;
        // The connection is then closed (with any close code, or none).
        let (frames, _code) = w.read_until_close().await;
        assert!(
            frames.iter().all(common::is_push),
            "unexpected frames before the close: {frames:?}"
        );

        http.post_json(
            "/clients/register",
            &json!({"client_name": format!("r{round}"), "chat_room": "main"}),
            None,
        )
        .await
        .assert_error(503, "SERVER_FULL");
        assert_eq!(
            server.client_count().await,
            3,
            "after rejects of round {round}"
        );
    }
    // A refused NEW did not leave its room behind.
    let rooms = a.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await;
    assert_eq!(rooms, ["ROOM main 3"]);

    // One quits (TCP): one slot is free again.
    a.ok("QUIT main:a", "OK BYE").await;
    a.expect_eof().await;
    server.wait_client_count(2).await;
    let d = LineClient::hello(server.tcp, "main", "d").await;
    assert_eq!(server.client_count().await, 3);
    let mut e = LineClient::connect(server.tcp).await;
    e.err("HELLO main:e", "SERVER_FULL").await;
    assert_eq!(server.client_count().await, 3);

    // A REST close frees a slot.
    let resp = http
        .post_json("/clients/close", &json!({"client_id": "c"}), Some(&c_token))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    server.wait_client_count(2).await;
    let _e = WsClient::hello(server.http, "main", "e").await;
    assert_eq!(server.client_count().await, 3);
    http.post_json(
        "/clients/register",
        &json!({"client_name": "f", "chat_room": "main"}),
        None,
    )
    .await
    .assert_error(503, "SERVER_FULL");

    // A WS quit frees a slot.
    b.ok(json!({"cmd": "quit"})).await;
    server.wait_client_count(2).await;
    let _f = http.register("f", "main").await;
    assert_eq!(server.client_count().await, 3);

    // An abruptly closed TCP connection frees its slot.
    drop(d);
    server.wait_client_count(2).await;
    let mut g = LineClient::hello(server.tcp, "main", "g").await;
    assert_eq!(server.client_count().await, 3);

    // LEAVE of the last room keeps the registration (and the slot).
    g.ok("LEAVE main:g", "OK LEAVE main:g").await;
    assert_eq!(server.client_count().await, 3);
    let mut h = LineClient::connect(server.tcp).await;
    h.err("HELLO main:h", "SERVER_FULL").await;

    // Everything is consistent at the end.
    let status = server.status().await;
    assert_eq!(status["client_count"], 3, "{status}");
}

#[tokio::test]
async fn message_length_counts_characters_on_tcp() {
    let server = Server::start(&["--max-message-length", "10"]);
    assert_eq!(server.status().await["max_message_length"], 10);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;

    let ten_e = "é".repeat(10); // 10 characters, 20 bytes
    let eleven_e = "é".repeat(11);
    let ten_emoji = "😀".repeat(10); // 10 characters, 40 bytes
    let ten_ascii = "abcdefghij";
    let with_spaces = "a b c d ef"; // internal spaces count

    for text in [ten_e.as_str(), ten_emoji.as_str(), ten_ascii, with_spaces] {
        assert_eq!(text.chars().count(), 10);
        bob.ok(&format!("SEND main:bob {text}"), "OK SEND main 1")
            .await;
        alice.expect_push(&format!("MSG main:bob {text}")).await;
        bob.ok(&format!("TO main:bob alice {text}"), "OK TO main:alice 1")
            .await;
        alice
            .expect_push(&format!("MSG FROM main:bob {text}"))
            .await;
    }
    for text in [eleven_e.as_str(), "abcdefghijk", &"😀".repeat(11)] {
        bob.err(&format!("SEND main:bob {text}"), "TOO_LONG").await;
        bob.err(&format!("TO main:bob alice {text}"), "TOO_LONG")
            .await;
    }
    // Nothing too long was delivered.
    bob.ok("SEND main:bob marker", "OK SEND main 1").await;
    alice.expect_push("MSG main:bob marker").await;
}

#[tokio::test]
async fn message_length_on_ws_and_rest() {
    let server = Server::start(&["--max-message-length", "10"]);
    let http = server.http();
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut ws = WsClient::hello(server.http, "main", "ws").await;
    alice.expect_push("JOINED main:ws").await;
    let token = http.register("rest", "main").await;
    alice.expect_push("JOINED main:rest").await;

    let ten = "é".repeat(10);
    let eleven = "é".repeat(11);

    // WebSocket.
    let reply = ws
        .ok(json!({"cmd": "send", "room": "main", "text": ten}))
        .await;
    assert_eq!(reply["delivered"], 2);
    alice.expect_push(&format!("MSG main:ws {ten}")).await;
    ws.err(
        json!({"cmd": "send", "room": "main", "text": eleven}),
        "TOO_LONG",
    )
    .await;
    ws.err(
        json!({"cmd": "to", "room": "main", "target": "alice", "text": eleven}),
        "TOO_LONG",
    )
    .await;
    ws.ok(json!({"cmd": "to", "room": "main", "target": "alice", "text": ten}))
        .await;
    alice.expect_push(&format!("MSG FROM main:ws {ten}")).await;

    // REST: 413.
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"message_data": ten, "chat_room": "main", "client_id": "rest"}),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    alice.expect_push(&format!("MSG main:rest {ten}")).await;
    http.post_json(
        "/messages/send",
        &json!({"message_data": eleven, "chat_room": "main", "client_id": "rest"}),
        Some(&token),
    )
    .await
    .assert_error(413, "TOO_LONG");
    http.post_json(
        "/messages/client-to-client",
        &json!({"message_data": eleven, "chat_room": "main",
                "source_client_id": "rest", "target_client_id": "alice"}),
        Some(&token),
    )
    .await
    .assert_error(413, "TOO_LONG");
    let resp = http
        .post_json(
            "/messages/client-to-client",
            &json!({"message_data": ten, "chat_room": "main",
                    "source_client_id": "rest", "target_client_id": "alice"}),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    alice
        .expect_push(&format!("MSG FROM main:rest {ten}"))
        .await;
}

#[tokio::test]
async fn default_message_length_is_255() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let ok = "ü".repeat(255);
    alice
        .ok(&format!("SEND main:alice {ok}"), "OK SEND main 0")
        .await;
    alice
        .err(&format!("SEND main:alice {}", "ü".repeat(256)), "TOO_LONG")
        .await;
}
