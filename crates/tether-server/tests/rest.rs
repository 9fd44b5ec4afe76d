//! REST door (docs/protocol/rooms.md §5): every endpoint, its success shape, auth and errors.

mod common;

use common::{LineClient, Server};
use serde_json::{Value, json};

fn names(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|n| {
            n.as_str()
                .unwrap_or_else(|| panic!("not a string: {n}"))
                .to_owned()
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn health_status_and_metrics() {
    let server = Server::start(&[]);
    let http = server.http();
    let resp = http.get("/health").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"status": "ok"}));

    let status = server.status().await;
    assert_eq!(status["host"], "127.0.0.1", "{status}");
    assert_eq!(
        status["port"],
        json!(server.tcp.port()),
        "port is the TCP port, as a number: {status}"
    );
    assert!(status.get("http").is_some(), "no http field: {status}");
    assert_eq!(status["client_count"], 0, "{status}");
    assert_eq!(status["max_clients"], 100, "default max clients: {status}");
    assert_eq!(
        status["max_message_length"], 255,
        "default max message length: {status}"
    );
    assert_eq!(status["use_ssl"], false, "{status}");
    assert_eq!(
        status["chat_rooms"],
        json!([{"name": "main", "client_count": 0, "clients": []}]),
        "{status}"
    );

    // Some activity on every door, then the status and metrics reflect it.
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    alice.ok("NEW r1:alice", "OK NEW r1:alice").await;
    alice.ok("SEND r1:alice hi", "OK SEND r1 0").await;
    let token = http.register("bob", "main").await;
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"message_data": "yo", "chat_room": "main", "client_id": "bob"}),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let status = server.status().await;
    assert_eq!(status["client_count"], 2, "{status}");
    let rooms = status["chat_rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("chat_rooms is not an array: {status}"));
    let main = rooms
        .iter()
        .find(|r| r["name"] == "main")
        .unwrap_or_else(|| panic!("no main in {status}"));
    assert_eq!(main["client_count"], 2);
    assert_eq!(names(&main["clients"]), ["alice", "bob"]);
    let r1 = rooms
        .iter()
        .find(|r| r["name"] == "r1")
        .unwrap_or_else(|| panic!("no r1 in {status}"));
    assert_eq!(r1["client_count"], 1);
    assert_eq!(names(&r1["clients"]), ["alice"]);

    let resp = http.get("/metrics").await;
    assert_eq!(resp.status, 200);
    let text = resp.text();
    for metric in [
        "tether_connections",
        "tether_clients",
        "tether_rooms",
        "tether_messages_in_total",
        "tether_messages_out_total",
    ] {
        assert!(
            text.contains(metric),
            "metric {metric} missing from /metrics:\n{text}"
        );
    }
    assert!(
        text.contains("door=\"tcp\"") && text.contains("door=\"rest\""),
        "door labels missing from /metrics:\n{text}"
    );
}

#[tokio::test]
async fn register_create_join_send_direct() {
    let server = Server::start(&[]);
    let http = server.http();

    // Register with client_name or client_id.
    let alice = http.register("alice", "main").await;
    let resp = http
        .post_json(
            "/clients/register",
            &json!({"client_id": "bob", "chat_room": "main"}),
            None,
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["status"], "registered");
    assert_eq!(v["client_id"], "bob");
    assert_eq!(v["chat_room"], "main");
    let bob = v["token"].as_str().expect("bob's token").to_owned();
    assert_ne!(alice, bob, "tokens must differ");

    // Register errors.
    http.post_json(
        "/clients/register",
        &json!({"client_name": "alice", "chat_room": "main"}),
        None,
    )
    .await
    .assert_error(409, "NAME_TAKEN");
    http.post_json(
        "/clients/register",
        &json!({"client_name": "c@rol", "chat_room": "main"}),
        None,
    )
    .await
    .assert_error(400, "BAD_NAME");
    http.post_json(
        "/clients/register",
        &json!({"client_name": "carol", "chat_room": "nope"}),
        None,
    )
    .await
    .assert_error(404, "NO_SUCH_ROOM");

    // Create a room.
    let resp = http
        .post_json(
            "/chatrooms",
            &json!({"chat_room": "r1", "client_id": "alice"}),
            Some(&alice),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"status": "created", "chat_room": "r1", "created_by": "alice"})
    );
    http.post_json(
        "/chatrooms",
        &json!({"chat_room": "r1", "client_id": "bob"}),
        Some(&bob),
    )
    .await
    .assert_error(409, "ROOM_EXISTS");
    http.post_json(
        "/chatrooms",
        &json!({"chat_room": "main", "client_id": "bob"}),
        Some(&bob),
    )
    .await
    .assert_error(409, "MAIN_ROOM");
    http.post_json(
        "/chatrooms",
        &json!({"chat_room": "r#2", "client_id": "bob"}),
        Some(&bob),
    )
    .await
    .assert_error(400, "BAD_NAME");

    // Join it.
    let resp = http
        .post_json(
            "/chatrooms/join",
            &json!({"chat_room": "r1", "client_id": "bob"}),
            Some(&bob),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["status"], "joined");
    assert_eq!(v["chat_room"], "r1");
    assert_eq!(v["client_id"], "bob");
    assert!(
        names(&v["clients"]).contains(&"bob".to_owned()),
        "joined room's clients {v}"
    );
    http.post_json(
        "/chatrooms/join",
        &json!({"chat_room": "r1", "client_id": "bob"}),
        Some(&bob),
    )
    .await
    .assert_error(409, "ALREADY_JOINED");
    http.post_json(
        "/chatrooms/join",
        &json!({"chat_room": "nope", "client_id": "bob"}),
        Some(&bob),
    )
    .await
    .assert_error(404, "NO_SUCH_ROOM");

    // Send: both are in main.
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"message_data": "hello bob", "chat_room": "main", "client_id": "alice"}),
            Some(&alice),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let sent = resp.json();
    assert_eq!(
        sent,
        json!({"status": "sent", "message": "hello bob", "chat_room": "main", "clients_notified": 1,
            "offset": 1, "epoch": sent["epoch"].as_str().expect("an epoch")})
    );
    let msg = http
        .wait_message("bob", &bob, |m| m["type"] == "message")
        .await;
    assert_eq!(
        common::unpositioned(&msg),
        json!({"type": "message", "room": "main", "from": "alice", "text": "hello bob"})
    );

    // Direct.
    let resp = http
        .post_json(
            "/messages/client-to-client",
            &json!({"message_data": "psst", "chat_room": "main",
                    "source_client_id": "bob", "target_client_id": "alice"}),
            Some(&bob),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"status": "sent", "message": "psst", "chat_room": "main",
               "source_client_id": "bob", "target_client_id": "alice", "delivered": 1})
    );
    let msg = http
        .wait_message("alice", &alice, |m| m["type"] == "direct")
        .await;
    assert_eq!(
        msg,
        json!({"type": "direct", "room": "main", "from": "bob", "to": "alice", "text": "psst"})
    );

    // Send errors.
    http.post_json(
        "/messages/send",
        &json!({"message_data": "", "chat_room": "main", "client_id": "alice"}),
        Some(&alice),
    )
    .await
    .assert_error(400, "BAD_SYNTAX");
    http.post_json(
        "/messages/send",
        &json!({"message_data": "x", "chat_room": "nope", "client_id": "alice"}),
        Some(&alice),
    )
    .await
    .assert_error(404, "NO_SUCH_ROOM");
    http.post_json(
        "/chatrooms",
        &json!({"chat_room": "r2", "client_id": "bob"}),
        Some(&bob),
    )
    .await;
    http.post_json(
        "/messages/send",
        &json!({"message_data": "x", "chat_room": "r2", "client_id": "alice"}),
        Some(&alice),
    )
    .await
    .assert_error(409, "NOT_REGISTERED");
    http.post_json(
        "/messages/client-to-client",
        &json!({"message_data": "x", "chat_room": "main",
                "source_client_id": "alice", "target_client_id": "zed"}),
        Some(&alice),
    )
    .await
    .assert_error(404, "NO_SUCH_CLIENT");
}

#[tokio::test]
async fn authorization() {
    let server = Server::start(&[]);
    let http = server.http();
    let alice = http.register("alice", "main").await;
    let bob = http.register("bob", "main").await;
    let send =
        |client: &str| json!({"message_data": "x", "chat_room": "main", "client_id": client});

    // No token, a wrong token, another client's token: 401.
    http.post_json("/messages/send", &send("alice"), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.post_json("/messages/send", &send("alice"), Some("not-a-token"))
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.post_json("/messages/send", &send("alice"), Some(&bob))
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.post_json(
        "/chatrooms",
        &json!({"chat_room": "r1", "client_id": "alice"}),
        None,
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    http.post_json(
        "/chatrooms/join",
        &json!({"chat_room": "main", "client_id": "alice"}),
        None,
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    http.post_json("/clients/pause", &json!({"client_id": "alice"}), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.post_json("/clients/resume", &json!({"client_id": "alice"}), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.post_json("/clients/close", &json!({"client_id": "alice"}), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.post_json(
        "/messages/client-to-client",
        &json!({"message_data": "x", "chat_room": "main",
                "source_client_id": "alice", "target_client_id": "bob"}),
        None,
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    http.get("/messages?client_id=alice")
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.get("/messages?client_id=alice&token=wrong")
        .await
        .assert_error(401, "UNAUTHORIZED");
    http.get(&format!("/messages?client_id=alice&token={bob}"))
        .await
        .assert_error(401, "UNAUTHORIZED");

    // The token as a body field works.
    let mut body = send("alice");
    body["token"] = json!(alice);
    let resp = http.post_json("/messages/send", &body, None).await;
    assert_eq!(resp.status, 200, "token in body: {}", resp.text());
    // The Authorization header works for GET /messages.
    let resp = http.get_auth("/messages?client_id=bob", &bob).await;
    assert_eq!(resp.status, 200, "bearer on GET /messages: {}", resp.text());
    let msgs = resp.json()["messages"].clone();
    assert!(
        msgs.as_array().is_some_and(|a| a
            .iter()
            .any(|m| m["type"] == "message" && m["from"] == "alice")),
        "bob's mailbox {msgs}"
    );
}

#[tokio::test]
async fn pause_resume_close() {
    let server = Server::start(&[]);
    let http = server.http();
    let alice = http.register("alice", "main").await;
    let resp = http
        .post_json(
            "/chatrooms",
            &json!({"chat_room": "r1", "client_id": "alice"}),
            Some(&alice),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    // Make sure alice is in r1 (whether or not creating joins).
    let resp = http
        .post_json(
            "/chatrooms/join",
            &json!({"chat_room": "r1", "client_id": "alice"}),
            Some(&alice),
        )
        .await;
    assert!(
        resp.status == 200 || resp.status == 409,
        "join r1: {}",
        resp.text()
    );
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    bob.ok("JOIN r1:bob", "OK JOIN r1:bob").await;

    // Pause in every room.
    let resp = http
        .post_json(
            "/clients/pause",
            &json!({"client_id": "alice"}),
            Some(&alice),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["status"], "paused");
    assert_eq!(v["client_id"], "alice");
    assert_eq!(v["message"], "Client alice paused in rooms: main, r1");
    let items = bob
        .list_items("LIST CLIENT_CHAT_ROOMS alice", "CLIENT_CHAT_ROOMS")
        .await;
    assert_eq!(items, ["ROOM main SUSPENDED", "ROOM r1 SUSPENDED"]);
    bob.ok("SEND main:bob lost", "OK SEND main 0").await;

    // Resume one room.
    let resp = http
        .post_json(
            "/clients/resume",
            &json!({"client_id": "alice", "chat_room": "r1"}),
            Some(&alice),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["status"], "resumed");
    assert_eq!(v["client_id"], "alice");
    assert_eq!(v["chat_room"], "r1");
    assert!(v["message"].is_string(), "{v}");
    let items = bob
        .list_items("LIST CLIENT_CHAT_ROOMS alice", "CLIENT_CHAT_ROOMS")
        .await;
    assert_eq!(items, ["ROOM main SUSPENDED", "ROOM r1 CONNECTED"]);
    bob.ok("SEND r1:bob kept", "OK SEND r1 1").await;
    let (msgs, _) = http.messages("alice", &alice).await;
    let texts: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["type"] == "message")
        .map(|m| &m["text"])
        .collect();
    assert_eq!(texts, [&json!("kept")], "mailbox {msgs:?}");
    // The mailbox was emptied by the read.
    let (msgs, _) = http.messages("alice", &alice).await;
    assert!(msgs.is_empty(), "mailbox not emptied: {msgs:?}");

    // Errors.
    http.post_json(
        "/clients/pause",
        &json!({"client_id": "alice", "chat_room": "nope"}),
        Some(&alice),
    )
    .await
    .assert_error(404, "NO_SUCH_ROOM");

    // Close.
    let resp = http
        .post_json(
            "/clients/close",
            &json!({"client_id": "alice"}),
            Some(&alice),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"status": "closed", "client_id": "alice"})
    );
    let mut lefts = vec![bob.next_push().await, bob.next_push().await];
    lefts.sort();
    assert_eq!(lefts, ["LEFT main:alice", "LEFT r1:alice"]);
    server.wait_client_count(1).await;
    // The old token no longer works and the name is free.
    let resp = http
        .get(&format!("/messages?client_id=alice&token={alice}"))
        .await;
    assert!(
        resp.status == 401 || resp.status == 404,
        "GET /messages after close: {} {}",
        resp.status,
        resp.text()
    );
    http.register("alice", "main").await;
}

#[tokio::test]
async fn list_shapes() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    alice.ok("SEND main:alice hi", "OK SEND main 0").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    bob.ok("NEW r1:bob", "OK NEW r1:bob").await;

    let get = |q: &'static str| {
        let http = http.clone();
        async move {
            let resp = http.get(&format!("/chatrooms/list{q}")).await;
            assert_eq!(resp.status, 200, "GET /chatrooms/list{q}: {}", resp.text());
            resp.json()
        }
    };
    assert_eq!(get("").await, json!({"chat_rooms": ["main", "r1"]}));
    assert_eq!(
        get("?list_type=CHAT_ROOMS").await,
        json!({"chat_rooms": ["main", "r1"]})
    );
    assert_eq!(
        get("?list_type=ALL").await,
        json!({"chat_rooms": {
            "main": {"clients": ["alice", "bob"], "client_count": 2,
                     "statuses": {"alice": "ACTIVE", "bob": "CONNECTED"}},
            "r1": {"clients": ["bob"], "client_count": 1, "statuses": {"bob": "CONNECTED"}}
        }})
    );
    assert_eq!(
        get("?list_type=CHAT_ROOM_AND_CLIENTS").await,
        json!({"chat_rooms": {"main": ["alice", "bob"], "r1": ["bob"]}})
    );
    assert_eq!(
        get("?list_type=CLIENT_CHAT_ROOMS&client_id=bob").await,
        json!({"client_id": "bob", "chat_rooms": ["main", "r1"]})
    );
    assert_eq!(
        get("?list_type=CLIENTS_FOR_CHAT_ROOM&chat_room=main").await,
        json!({"chat_room": "main", "clients": ["alice", "bob"]})
    );

    http.get("/chatrooms/list?list_type=CLIENT_CHAT_ROOMS")
        .await
        .assert_error(400, "BAD_SYNTAX");
    http.get("/chatrooms/list?list_type=CLIENTS_FOR_CHAT_ROOM")
        .await
        .assert_error(400, "BAD_SYNTAX");
    http.get("/chatrooms/list?list_type=BOGUS")
        .await
        .assert_error(400, "BAD_LIST_TYPE");
    http.get("/chatrooms/list?list_type=CLIENT_CHAT_ROOMS&client_id=zed")
        .await
        .assert_error(404, "NO_SUCH_CLIENT");
    http.get("/chatrooms/list?list_type=CLIENTS_FOR_CHAT_ROOM&chat_room=nope")
        .await
        .assert_error(404, "NO_SUCH_ROOM");
}

#[tokio::test]
async fn mailbox_keeps_the_newest_1000() {
    let server = Server::start(&[]);
    let http = server.http();
    let token = http.register("rest", "main").await;
    let mut publisher = LineClient::hello(server.tcp, "main", "pub").await;
    // Empty the mailbox (it holds the join of pub) before the burst.
    http.wait_message("rest", &token, |m| {
        m["type"] == "join" && m["client"] == "pub"
    })
    .await;
    let (msgs, dropped) = http.messages("rest", &token).await;
    assert!(msgs.is_empty(), "mailbox not emptied: {msgs:?}");
    assert_eq!(dropped, 0);

    // 1005 messages pipelined in one write, then their 1005 replies.
    let mut batch = String::new();
    for i in 0..1005 {
        batch.push_str(&format!("SEND main:pub m{i}\n"));
    }
    publisher.send_raw(batch.as_bytes()).await;
    for i in 0..1005 {
        let reply = publisher.reply().await;
        assert_eq!(reply, "OK SEND main 1", "reply to message {i}");
    }

    let (msgs, dropped) = http.messages("rest", &token).await;
    let texts: Vec<&str> = msgs
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "message", "unexpected mailbox entry {m}");
            m["text"].as_str().unwrap_or_default()
        })
        .collect();
    let expected: Vec<String> = (5..1005).map(|i| format!("m{i}")).collect();
    assert_eq!(
        texts, expected,
        "the mailbox keeps the newest 1000, in order"
    );
    assert_eq!(dropped, 5, "the 5 oldest were dropped and counted");
}
