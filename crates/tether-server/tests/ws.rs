//! WebSocket JSON door (docs/protocol/rooms.md §4): every `cmd`, replies, pushes and errors.

mod common;

use common::{Server, WsClient};
use serde_json::{Value, json};

fn members(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .as_array()
        .unwrap_or_else(|| panic!("members is not an array: {v}"))
        .iter()
        .map(|m| {
            (
                m["client"].as_str().unwrap_or_default().to_owned(),
                m["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every field of `expected` is in `reply` with the same value (extra fields are tolerated).
#[track_caller]
fn assert_reply_fields(reply: &Value, expected: &Value) {
    let fields = expected.as_object().expect("expected fields are an object");
    for (k, v) in fields {
        assert_eq!(reply.get(k), Some(v), "field {k} of reply {reply}");
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn hello_reply_presence_and_join_push() {
    let server = Server::start(&[]);
    let mut alice = server.ws_client().await;
    let reply = alice
        .request(json!({"id": 1, "cmd": "hello", "room": "main", "client": "alice"}))
        .await;
    assert_eq!(
        reply,
        json!({"id": 1, "ok": true, "room": "main", "client": "alice", "count": 1,
            "offset": 0, "epoch": reply["epoch"].as_str().expect("an epoch")})
    );
    alice
        .expect_push(
            json!({"type": "presence", "room": "main", "count": 1, "truncated": false,
                            "members": [{"client": "alice", "status": "CONNECTED"}]}),
        )
        .await;

    let mut bob = server.ws_client().await;
    // A string id is echoed verbatim.
    let reply = bob
        .ok(json!({"id": "b-1", "cmd": "hello", "room": "main", "client": "bob"}))
        .await;
    assert_eq!(reply["id"], "b-1");
    assert_eq!(reply["room"], "main");
    assert_eq!(reply["client"], "bob");
    assert_eq!(reply["count"], 2);
    assert!(
        reply.get("members").is_none(),
        "the list comes once, in presence"
    );
    let presence = bob.next_push().await;
    assert_eq!(presence["type"], "presence");
    assert_eq!(presence["room"], "main");
    assert_eq!(
        members(&presence["members"]),
        pairs(&[("alice", "CONNECTED"), ("bob", "CONNECTED")])
    );
    alice
        .expect_push(json!({"type": "join", "room": "main", "client": "bob"}))
        .await;

    // HELLO again: a no-op answering ok.
    alice
        .ok(json!({"cmd": "hello", "room": "main", "client": "alice"}))
        .await;
    // A fractional numeric id is echoed verbatim too.
    let reply = alice
        .request(json!({"id": 2.5, "cmd": "list", "type": "CHAT_ROOMS"}))
        .await;
    assert_eq!(reply["id"], json!(2.5));
}

#[tokio::test]
async fn send_and_direct() {
    let server = Server::start(&[]);
    let mut alice = WsClient::hello(server.http, "main", "alice").await;
    let mut bob = WsClient::hello(server.http, "main", "bob").await;
    alice
        .expect_push(json!({"type": "join", "room": "main", "client": "bob"}))
        .await;

    let reply = bob
        .request(json!({"id": 10, "cmd": "send", "room": "main", "text": "hello there"}))
        .await;
    assert_eq!(
        reply,
        json!({"id": 10, "ok": true, "room": "main", "delivered": 1,
            "offset": 1, "epoch": reply["epoch"].as_str().expect("an epoch")})
    );
    alice
        .expect_push(
            json!({"type": "message", "room": "main", "from": "bob", "text": "hello there"}),
        )
        .await;

    // With the optional matching client field, and text spacing kept.
    bob.ok(json!({"cmd": "send", "room": "main", "client": "bob", "text": "  a  b  "}))
        .await;
    alice
        .expect_push(json!({"type": "message", "room": "main", "from": "bob", "text": "  a  b  "}))
        .await;

    let reply = bob
        .request(json!({"id": 11, "cmd": "to", "room": "main", "target": "alice", "text": "psst"}))
        .await;
    assert_eq!(
        reply,
        json!({"id": 11, "ok": true, "room": "main", "target": "alice", "delivered": 1})
    );
    alice
        .expect_push(
            json!({"type": "direct", "room": "main", "from": "bob", "to": "alice", "text": "psst"}),
        )
        .await;

    // Errors.
    bob.err(
        json!({"cmd": "send", "room": "main", "text": ""}),
        "BAD_SYNTAX",
    )
    .await;
    bob.err(
        json!({"cmd": "send", "room": "nope", "text": "x"}),
        "NO_SUCH_ROOM",
    )
    .await;
    bob.err(
        json!({"cmd": "send", "room": "main", "client": "alice", "text": "x"}),
        "IDENTITY",
    )
    .await;
    bob.err(
        json!({"cmd": "to", "room": "main", "target": "zed", "text": "x"}),
        "NO_SUCH_CLIENT",
    )
    .await;
    bob.err(
        json!({"cmd": "to", "room": "main", "target": "alice", "text": ""}),
        "BAD_SYNTAX",
    )
    .await;
    bob.err(
        json!({"cmd": "to", "room": "main", "text": "x"}),
        "BAD_SYNTAX",
    )
    .await;

    // To a suspended target: delivered 0.
    alice.ok(json!({"cmd": "pause", "room": "main"})).await;
    let reply = bob
        .ok(json!({"cmd": "to", "room": "main", "target": "alice", "text": "lost"}))
        .await;
    assert_eq!(reply["delivered"], 0);
    let reply = bob
        .ok(json!({"cmd": "send", "room": "main", "text": "lost too"}))
        .await;
    assert_eq!(reply["delivered"], 0);
    alice.ok(json!({"cmd": "resume", "room": "main"})).await;
    bob.ok(json!({"cmd": "send", "room": "main", "text": "kept"}))
        .await;
    alice
        .expect_push(json!({"type": "message", "room": "main", "from": "bob", "text": "kept"}))
        .await;
}

#[tokio::test]
async fn new_join_and_errors() {
    let server = Server::start(&[]);
    let mut alice = server.ws_client().await;
    let reply = alice
        .ok(json!({"cmd": "new", "room": "r1", "client": "alice"}))
        .await;
    assert_eq!(reply["room"], "r1");
    assert_eq!(reply["client"], "alice");
    assert_eq!(reply["count"], 1);
    let presence = alice
        .wait_push("presence", |p| p["type"] == "presence")
        .await;
    assert_eq!(
        members(&presence["members"]),
        pairs(&[("alice", "CONNECTED")])
    );

    let mut bob = server.ws_client().await;
    bob.err(
        json!({"cmd": "hello", "room": "nope", "client": "bob"}),
        "NO_SUCH_ROOM",
    )
    .await;
    bob.err(
        json!({"cmd": "hello", "room": "main", "client": "b@b"}),
        "BAD_NAME",
    )
    .await;
    bob.err(
        json!({"cmd": "hello", "room": "main", "client": "alice"}),
        "NAME_TAKEN",
    )
    .await;
    bob.err(
        json!({"cmd": "new", "room": "r1", "client": "bob"}),
        "ROOM_EXISTS",
    )
    .await;
    bob.err(
        json!({"cmd": "new", "room": "main", "client": "bob"}),
        "MAIN_ROOM",
    )
    .await;
    bob.err(
        json!({"cmd": "join", "room": "nope", "client": "bob"}),
        "NO_SUCH_ROOM",
    )
    .await;

    let reply = bob
        .ok(json!({"cmd": "join", "room": "r1", "client": "bob"}))
        .await;
    assert_eq!(reply["count"], 2);
    let presence = bob.wait_push("presence", |p| p["type"] == "presence").await;
    assert_eq!(
        members(&presence["members"]),
        pairs(&[("alice", "CONNECTED"), ("bob", "CONNECTED")])
    );
    alice
        .expect_push(json!({"type": "join", "room": "r1", "client": "bob"}))
        .await;
    bob.err(
        json!({"cmd": "join", "room": "r1", "client": "bob"}),
        "ALREADY_JOINED",
    )
    .await;
    bob.err(json!({"cmd": "join", "room": "r1"}), "ALREADY_JOINED")
        .await;
    bob.err(
        json!({"cmd": "hello", "room": "main", "client": "carol"}),
        "IDENTITY",
    )
    .await;
    // Once registered, `client` is optional.
    bob.ok(json!({"cmd": "hello", "room": "main"})).await;
    bob.err(json!({"cmd": "pause", "room": "nope"}), "NO_SUCH_ROOM")
        .await;
    alice
        .ok(json!({"cmd": "new", "room": "r2", "client": "alice"}))
        .await;
    bob.err(json!({"cmd": "pause", "room": "r2"}), "NOT_REGISTERED")
        .await;
    bob.err(
        json!({"cmd": "send", "room": "r2", "text": "x"}),
        "NOT_REGISTERED",
    )
    .await;
    bob.err(json!({"cmd": "frobnicate"}), "BAD_COMMAND").await;
}

#[tokio::test]
async fn list_types() {
    let server = Server::start(&[]);
    let mut alice = WsClient::hello(server.http, "main", "alice").await;
    let mut bob = WsClient::hello(server.http, "main", "bob").await;
    bob.ok(json!({"cmd": "new", "room": "r1"})).await;
    bob.ok(json!({"cmd": "send", "room": "r1", "text": "hi"}))
        .await;
    alice
        .wait_push("join of bob", |p| p["type"] == "join")
        .await;

    let reply = alice.ok(json!({"cmd": "list", "type": "CHAT_ROOMS"})).await;
    assert_eq!(reply["type"], "CHAT_ROOMS");
    assert_eq!(
        reply["rooms"],
        json!([
            {"room": "main", "members": [], "count": 2},
            {"room": "r1", "members": [], "count": 1}
        ])
    );

    let expected_all = json!([
        {"room": "main", "count": 2, "members": [
            {"client": "alice", "status": "CONNECTED"},
            {"client": "bob", "status": "CONNECTED"}]},
        {"room": "r1", "count": 1, "members": [{"client": "bob", "status": "ACTIVE"}]}
    ]);
    for ty in ["ALL", "CHAT_ROOM_AND_CLIENTS"] {
        let reply = alice.ok(json!({"cmd": "list", "type": ty})).await;
        assert_eq!(reply["type"], ty);
        assert_eq!(reply["rooms"], expected_all, "list {ty}");
    }

    let reply = alice
        .ok(json!({"cmd": "list", "type": "CLIENT_CHAT_ROOMS", "arg": "bob"}))
        .await;
    assert_eq!(
        reply["rooms"],
        json!([
            {"room": "main", "count": 2, "members": [{"client": "bob", "status": "CONNECTED"}]},
            {"room": "r1", "count": 1, "members": [{"client": "bob", "status": "ACTIVE"}]}
        ])
    );
    let reply = alice
        .ok(json!({"cmd": "list", "type": "CLIENTS_FOR_CHAT_ROOM", "arg": "r1"}))
        .await;
    assert_eq!(
        reply["rooms"],
        json!([{"room": "r1", "count": 1, "members": [{"client": "bob", "status": "ACTIVE"}]}])
    );

    // Types are case-insensitive.
    let reply = alice.ok(json!({"cmd": "list", "type": "chat_rooms"})).await;
    assert_eq!(reply["rooms"].as_array().map(Vec::len), Some(2));

    alice
        .err(json!({"cmd": "list", "type": "BOGUS"}), "BAD_LIST_TYPE")
        .await;
    alice
        .err(
            json!({"cmd": "list", "type": "CLIENT_CHAT_ROOMS"}),
            "BAD_SYNTAX",
        )
        .await;
    alice
        .err(
            json!({"cmd": "list", "type": "CLIENTS_FOR_CHAT_ROOM"}),
            "BAD_SYNTAX",
        )
        .await;
    alice
        .err(
            json!({"cmd": "list", "type": "CLIENT_CHAT_ROOMS", "arg": "zed"}),
            "NO_SUCH_CLIENT",
        )
        .await;
    alice
        .err(
            json!({"cmd": "list", "type": "CLIENTS_FOR_CHAT_ROOM", "arg": "nope"}),
            "NO_SUCH_ROOM",
        )
        .await;

    // An unregistered connection may list.
    let mut anon = server.ws_client().await;
    let reply = anon.ok(json!({"cmd": "list", "type": "ALL"})).await;
    assert_eq!(reply["rooms"], expected_all);
}

#[tokio::test]
async fn pause_resume_leave_quit() {
    let server = Server::start(&[]);
    let mut alice = WsClient::hello(server.http, "main", "alice").await;
    let mut bob = WsClient::hello(server.http, "main", "bob").await;
    alice
        .wait_push("join of bob", |p| p["type"] == "join")
        .await;

    let reply = bob
        .request(json!({"id": 5, "cmd": "pause", "room": "main"}))
        .await;
    assert_reply_fields(
        &reply,
        &json!({"id": 5, "ok": true, "room": "main", "client": "bob"}),
    );
    let reply = alice
        .ok(json!({"cmd": "list", "type": "CLIENTS_FOR_CHAT_ROOM", "arg": "main"}))
        .await;
    assert_eq!(
        members(&reply["rooms"][0]["members"]),
        pairs(&[("alice", "CONNECTED"), ("bob", "SUSPENDED")])
    );
    alice
        .ok(json!({"cmd": "send", "room": "main", "text": "dropped"}))
        .await;
    let reply = bob
        .request(json!({"id": 6, "cmd": "resume", "room": "main", "client": "bob"}))
        .await;
    assert_reply_fields(
        &reply,
        &json!({"id": 6, "ok": true, "room": "main", "client": "bob"}),
    );
    alice
        .ok(json!({"cmd": "send", "room": "main", "text": "delivered"}))
        .await;
    bob.expect_push(
        json!({"type": "message", "room": "main", "from": "alice", "text": "delivered"}),
    )
    .await;

    // A send while suspended resumes the membership.
    bob.ok(json!({"cmd": "pause", "room": "main"})).await;
    bob.ok(json!({"cmd": "send", "room": "main", "text": "back"}))
        .await;
    alice
        .expect_push(json!({"type": "message", "room": "main", "from": "bob", "text": "back"}))
        .await;
    alice
        .ok(json!({"cmd": "send", "room": "main", "text": "welcome back"}))
        .await;
    bob.expect_push(
        json!({"type": "message", "room": "main", "from": "alice", "text": "welcome back"}),
    )
    .await;

    let reply = bob
        .request(json!({"id": 7, "cmd": "leave", "room": "main"}))
        .await;
    assert_reply_fields(
        &reply,
        &json!({"id": 7, "ok": true, "room": "main", "client": "bob"}),
    );
    alice
        .expect_push(json!({"type": "leave", "room": "main", "client": "bob"}))
        .await;
    bob.err(json!({"cmd": "leave", "room": "main"}), "NOT_REGISTERED")
        .await;
    // Still registered: the name is reserved.
    let mut other = server.ws_client().await;
    other
        .err(
            json!({"cmd": "hello", "room": "main", "client": "bob"}),
            "NAME_TAKEN",
        )
        .await;
    bob.ok(json!({"cmd": "hello", "room": "main"})).await;
    alice
        .wait_push("join of bob", |p| p["type"] == "join")
        .await;

    // quit: ok reply, then close 1000; the others get a leave.
    let reply = bob.request(json!({"id": 8, "cmd": "quit"})).await;
    assert_eq!(reply["ok"], true, "quit reply {reply}");
    let (frames, code) = bob.read_until_close().await;
    assert!(
        frames.iter().all(common::is_push),
        "only pushes may follow the quit reply: {frames:?}"
    );
    assert_eq!(code, Some(1000), "close code after quit");
    alice
        .expect_push(json!({"type": "leave", "room": "main", "client": "bob"}))
        .await;
    // The name is free again.
    let mut bob2 = server.ws_client().await;
    bob2.ok(json!({"cmd": "hello", "room": "main", "client": "bob"}))
        .await;
}

#[tokio::test]
async fn closed_socket_is_removed() {
    let server = Server::start(&[]);
    let mut alice = WsClient::hello(server.http, "main", "alice").await;
    let bob = WsClient::hello(server.http, "main", "bob").await;
    alice
        .wait_push("join of bob", |p| p["type"] == "join")
        .await;
    drop(bob);
    alice
        .expect_push(json!({"type": "leave", "room": "main", "client": "bob"}))
        .await;
    server.wait_client_count(1).await;
}
