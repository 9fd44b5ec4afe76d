//! Malformed input on every door (docs/protocol/rooms.md §3.4, §4, §5): each gets the documented
//! error, the connection survives where the spec says so, and other clients are still served.

mod common;

use common::{LineClient, Server, WsEvent, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn tcp_garbage_bad_utf8_and_unknown_commands() {
    let server = Server::start(&[]);
    let mut c = LineClient::hello(server.tcp, "main", "alice").await;

    // Control characters and junk: valid UTF-8 but no command.
    c.send_raw(b"\x00\x01\x02 garbage\n").await;
    assert_error(&c.reply().await, "BAD_COMMAND");
    c.err("FROB main:alice", "BAD_COMMAND").await;
    c.err("HELLOX main:alice", "BAD_COMMAND").await;
    c.err("!!!", "BAD_COMMAND").await;
    // Server-to-client words are not commands.
    for word in ["OK", "ERROR", "MSG", "FROM", "JOINED", "LEFT", "BYE", "END"] {
        c.err(&format!("{word} main:alice hi"), "BAD_COMMAND").await;
    }

    // Invalid UTF-8: BAD_ENCODING, line skipped.
    for bytes in [
        &b"\xff\xfe\xfd\n"[..],
        &b"SEND main:alice caf\xc3\x28\n"[..],
        &b"SEND main:alice \xed\xa0\x80 surrogate\n"[..],
        &b"HELLO main:\xc0\xafalice\n"[..],
    ] {
        c.send_raw(bytes).await;
        let reply = c.reply().await;
        assert_error(&reply, "BAD_ENCODING");
    }

    // Nothing above closed the connection.
    c.ok("SEND main:alice still here", "OK SEND main 0").await;
    let mut other = LineClient::hello(server.tcp, "main", "bob").await;
    other.ok("SEND main:bob hi", "OK SEND main 1").await;
    c.expect_push("JOINED main:bob").await;
    c.expect_push("MSG main:bob hi").await;
}

#[tokio::test]
async fn tcp_line_too_long() {
    // A message limit above the line limit, so that the line limit is what is tested.
    let server = Server::start(&["--max-message-length", "100000"]);
    let mut c = LineClient::hello(server.tcp, "main", "alice").await;

    // A 1 MB line: LINE_TOO_LONG, discarded up to the newline; the next command works.
    let mut big = b"SEND main:alice ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1 << 20));
    big.extend_from_slice(b"\nLIST CHAT_ROOMS\n");
    c.send_raw(&big).await;
    c.expect_line("ERROR LINE_TOO_LONG line exceeds 16384 bytes")
        .await;
    c.expect_line("OK LIST CHAT_ROOMS 1").await;
    c.expect_line("ROOM main 1").await;
    c.expect_line("END").await;

    // Exactly 16384 bytes (without the newline) is accepted; 16385 is not.
    let prefix = "SEND main:alice ";
    let exact = format!("{prefix}{}", "y".repeat(16384 - prefix.len()));
    assert_eq!(exact.len(), 16384);
    c.ok(&exact, "OK SEND main 0").await;
    let over = format!("{prefix}{}", "y".repeat(16385 - prefix.len()));
    c.send(&over).await;
    c.expect_line("ERROR LINE_TOO_LONG line exceeds 16384 bytes")
        .await;
    c.ok("SEND main:alice small", "OK SEND main 0").await;

    // A huge line of only garbage, then a command in the same write.
    let mut junk = vec![0xffu8; 200_000];
    junk.extend_from_slice(b"\nSEND main:alice after junk\n");
    c.send_raw(&junk).await;
    c.expect_line("ERROR LINE_TOO_LONG line exceeds 16384 bytes")
        .await;
    c.expect_line("OK SEND main 0").await;

    // Other clients are still served.
    let mut other = LineClient::hello(server.tcp, "main", "bob").await;
    other.ok("SEND main:bob hi", "OK SEND main 1").await;
}

#[tokio::test]
async fn ws_bad_frames() {
    let server = Server::start(&[]);
    let mut c = server.ws_client().await;

    // Not JSON.
    c.send_text("this is not json").await;
    let r = c.reply().await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"], "BAD_JSON", "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    assert!(r["message"].is_string(), "{r}");

    // Truncated JSON.
    c.send_text(r#"{"id": 1, "cmd": "hel"#).await;
    let r = c.reply().await;
    assert_eq!(r["error"], "BAD_JSON", "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");

    // JSON but not an object.
    for text in ["[1,2,3]", "42", "\"hello\"", "null"] {
        c.send_text(text).await;
        let r = c.reply().await;
        assert_eq!(r["ok"], false, "{text}: {r}");
        assert_eq!(r["error"], "BAD_JSON", "{text}: {r}");
    }

    // Unknown cmd: the id is echoed.
    let r = c.request(json!({"id": 3, "cmd": "frobnicate"})).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"], "BAD_COMMAND", "{r}");

    // Missing fields.
    let r = c
        .request(json!({"id": 4, "cmd": "hello", "room": "main"}))
        .await;
    assert_eq!(r["error"], "BAD_SYNTAX", "{r}");
    let r = c
        .request(json!({"id": 5, "cmd": "send", "room": "main"}))
        .await;
    assert_eq!(r["error"], "BAD_SYNTAX", "{r}");

    // Wrong field types.
    let r = c
        .request(json!({"id": 7, "cmd": "hello", "room": 1, "client": ["x"]}))
        .await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"] == "BAD_JSON" || r["error"] == "BAD_SYNTAX",
        "wrong field types: {r}"
    );

    // A binary frame.
    c.send_binary(b"\x00\x01binary".to_vec()).await;
    let r = c.reply().await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"], "BAD_FRAME", "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");

    // The connection is still open and usable.
    c.ok(json!({"cmd": "hello", "room": "main", "client": "alice"}))
        .await;
    c.ok(json!({"cmd": "send", "room": "main", "text": "still here"}))
        .await;
    let mut other = server.ws_client().await;
    other
        .ok(json!({"cmd": "hello", "room": "main", "client": "bob"}))
        .await;

    // `list` without its (required) `type` is a missing field too.
    let r = c.request(json!({"id": 6, "cmd": "list"})).await;
    assert_eq!(r["error"], "BAD_SYNTAX", "list without type: {r}");
}

#[tokio::test]
async fn ws_frame_over_64k_closes_with_1009() {
    let server = Server::start(&[]);
    let mut alice = common::WsClient::hello(server.http, "main", "alice").await;
    let mut big = server.ws_client().await;
    big.ok(json!({"cmd": "hello", "room": "main", "client": "big"}))
        .await;
    let text = json!({"id": 1, "cmd": "send", "room": "main", "text": "z".repeat(70 * 1024)});
    big.send_json(&text).await;
    let code = loop {
        match big.next_event().await {
            WsEvent::Json(v) if common::is_push(&v) => continue,
            WsEvent::Json(v) => panic!("expected a close frame, got {v}"),
            WsEvent::Close(frame) => break frame.map(|(code, _)| code),
            WsEvent::Ended(e) => panic!("connection ended without a close frame: {e}"),
            WsEvent::Other(m) => panic!("unexpected frame {m:?}"),
        }
    };
    assert_eq!(code, Some(1009), "close code for a frame over 64 KiB");
    // Its member is gone; the server still serves others.
    alice
        .wait_push("leave of big", |p| {
            p == &json!({"type": "leave", "room": "main", "client": "big"})
        })
        .await;
    alice
        .ok(json!({"cmd": "send", "room": "main", "text": "still here"}))
        .await;
}

#[tokio::test]
async fn rest_bad_bodies() {
    let server = Server::start(&[]);
    let http = server.http();

    // Not JSON.
    for body in [&b"not json"[..], b"{\"client_name\": ", b"", b"\xff\xfe"] {
        let resp = http.post_raw("/clients/register", body, None).await;
        resp.assert_error(400, "BAD_JSON");
    }
    // Missing fields.
    let resp = http
        .post_json("/clients/register", &json!({"chat_room": "main"}), None)
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let code = resp.json()["error"].clone();
    assert!(
        code == "BAD_SYNTAX" || code == "BAD_JSON",
        "register without a name: {}",
        resp.text()
    );
    // Wrong types.
    let resp = http
        .post_json(
            "/clients/register",
            &json!({"client_name": 42, "chat_room": "main"}),
            None,
        )
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let code = resp.json()["error"].clone();
    assert!(
        code == "BAD_JSON" || code == "BAD_SYNTAX",
        "register with a numeric name: {}",
        resp.text()
    );
    // JSON, but an array where an object is expected.
    let resp = http
        .post_json("/clients/register", &json!(["alice", "main"]), None)
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let code = resp.json()["error"].clone();
    assert!(
        code == "BAD_JSON" || code == "BAD_SYNTAX",
        "register with an array body: {}",
        resp.text()
    );

    // The same on an authenticated endpoint.
    let token = http.register("alice", "main").await;
    let resp = http
        .post_raw("/messages/send", b"{nope", Some(&token))
        .await;
    resp.assert_error(400, "BAD_JSON");
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"chat_room": "main", "client_id": "alice"}),
            Some(&token),
        )
        .await;
    assert_eq!(
        resp.status,
        400,
        "send without message_data: {}",
        resp.text()
    );
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"message_data": {"nested": true}, "chat_room": "main", "client_id": "alice"}),
            Some(&token),
        )
        .await;
    assert_eq!(
        resp.status,
        400,
        "send with an object as text: {}",
        resp.text()
    );
    let resp = http
        .post_json(
            "/messages/client-to-client",
            &json!({"message_data": "x", "chat_room": "main", "source_client_id": "alice"}),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status, 400, "direct without target: {}", resp.text());

    // A body over 64 KiB is refused (with a 4xx).
    let huge =
        json!({"message_data": "q".repeat(70 * 1024), "chat_room": "main", "client_id": "alice"});
    let resp = http.post_json("/messages/send", &huge, Some(&token)).await;
    assert!(
        (400..500).contains(&resp.status),
        "body over 64 KiB: {} {}",
        resp.status,
        resp.text()
    );

    // Still served.
    let resp = http.get("/health").await;
    assert_eq!(resp.status, 200);
    http.register("bob", "main").await;
    let resp = http
        .post_json(
            "/messages/send",
            &json!({"message_data": "fine", "chat_room": "main", "client_id": "alice"}),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["clients_notified"], 1);
}
