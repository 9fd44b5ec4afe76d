//! Room hooks (docs/protocol/rooms.md §9): a JS module per room rewrites or drops SEND and TO on
//! every door; a throwing, slow or memory-hungry hook costs the sender that message, with an
//! error, and never the room, the other rooms or the server.

mod common;

use std::path::PathBuf;

use common::{LineClient, Server, tether_command};
use serde_json::json;

const HOOK: &str = r#"
let seen = 0;
export function onMessage(m) {
  seen += 1;
  if (m.text.includes("spam")) return null;
  if (m.text === "throw") throw new RangeError("no thanks");
  if (m.text === "spin") for (;;) {}
  if (m.text === "hog") { const a = []; for (;;) a.push("x".repeat(65536) + a.length); }
  if (m.text === "count") return `${seen}`;
  if (m.text === "later") return new Promise((ok) => setTimeout(() => ok({ text: "LATER" }), 5));
  return m.to ? `${m.from}->${m.to}: ${m.text}` : m.text.toUpperCase();
}
"#;

fn hook_file(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write hook");
    path
}

#[tokio::test]
async fn a_hook_rewrites_and_filters_on_every_door_and_failures_stay_with_the_sender() {
    let path = hook_file("main.js", HOOK);
    let hook = format!("main={}", path.display());
    let server = Server::start(&[
        "--hook",
        &hook,
        "--hook-timeout",
        "200",
        "--hook-memory",
        "4194304",
    ]);

    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = server.ws_client().await;
    bob.ok(json!({"cmd": "hello", "room": "main", "client": "bob"}))
        .await;
    alice.expect_push("JOINED main:bob").await;

    // Rewritten, from TCP to WebSocket and back.
    alice.ok("SEND main:alice hello", "OK SEND main 1").await;
    bob.wait_push("message", |p| {
        common::unpositioned(p)
            == json!({"type": "message", "room": "main", "from": "alice", "text": "HELLO"})
    })
    .await;
    bob.ok(json!({"cmd": "send", "room": "main", "text": "later"}))
        .await;
    alice.expect_push("MSG main:bob LATER").await;
    bob.ok(
        json!({"cmd": "to", "room": "main", "client": "bob", "target": "alice", "text": "psst"}),
    )
    .await;
    alice
        .expect_push("MSG FROM main:bob bob->alice: psst")
        .await;

    // Dropped, failing, slow and memory-hungry: the sender is told, nobody else sees anything.
    alice
        .err("SEND main:alice buy spam now", "HOOK_REJECTED")
        .await;
    let line = alice.err("SEND main:alice throw", "HOOK_FAILED").await;
    assert!(line.contains("RangeError: no thanks"), "{line}");
    let line = alice.err("SEND main:alice spin", "HOOK_FAILED").await;
    assert!(line.contains("timed out after 200ms"), "{line}");
    let line = alice.err("SEND main:alice hog", "HOOK_FAILED").await;
    assert!(
        line.contains("Heap limit") || line.contains("stopped"),
        "{line}"
    );

    // The room still works; after the heap limit the hook starts afresh (its counter too).
    alice
        .ok("SEND main:alice still here", "OK SEND main 1")
        .await;
    bob.wait_push("message", |p| {
        common::unpositioned(p)
            == json!({"type": "message", "room": "main", "from": "alice", "text": "STILL HERE"})
    })
    .await;
    alice.ok("SEND main:alice count", "OK SEND main 1").await;
    bob.wait_push("message", |p| {
        common::unpositioned(p)
            == json!({"type": "message", "room": "main", "from": "alice", "text": "2"})
    })
    .await;

    // REST: the reply and the delivery carry the rewritten text; a drop is a 403.
    let carol = server.http().register("carol", "main").await;
    alice.expect_push("JOINED main:carol").await;
    let resp = server
        .http()
        .post_json(
            "/messages/send",
            &json!({"message_data": "from rest", "chat_room": "main", "client_id": "carol"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["message"], "FROM REST");
    alice.expect_push("MSG main:carol FROM REST").await;
    let resp = server
        .http()
        .post_json(
            "/messages/send",
            &json!({"message_data": "spam", "chat_room": "main", "client_id": "carol"}),
            Some(&carol),
        )
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(resp.json()["error"], "HOOK_REJECTED");

    // Rooms without a hook are untouched.
    alice.ok("NEW plain:alice", "OK NEW plain:alice").await;
    alice.ok("SEND plain:alice spam", "OK SEND plain 0").await;
    assert!(
        alice.buffered_pushes().iter().all(|p| !p.contains("MSG")),
        "{:?}",
        alice.buffered_pushes()
    );
}

#[test]
fn a_broken_hook_stops_the_server_at_start_naming_the_file() {
    let path = hook_file("broken.js", "export function onMessage( {");
    let out = tether_command()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--relay",
            "off",
        ])
        .arg("--hook")
        .arg(format!("main={}", path.display()))
        .output()
        .expect("run tether");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.js") && err.contains("SyntaxError"),
        "{err}"
    );

    let out = tether_command()
        .args(["serve", "--relay", "off", "--hook", "main"])
        .output()
        .expect("run tether");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ROOM=FILE"), "{err}");
}

#[tokio::test]
async fn the_chat_bot_example_runs_as_documented() {
    // The checkout's path read when the test runs (see exec_common::fake_claude).
    let config = format!(
        "{}/../../examples/chat-bot/tether.toml",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let server = Server::start(&["--config", &config]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    alice
        .ok("SEND main:alice /shout hi there", "OK SEND main 1")
        .await;
    bob.expect_push("MSG main:alice HI THERE").await;
    alice
        .ok("SEND main:alice /reverse abc", "OK SEND main 1")
        .await;
    bob.expect_push("MSG main:alice cba").await;
    alice
        .err("SEND main:alice BUY NOW cheap", "HOOK_REJECTED")
        .await;
    bob.ok("SEND main:bob /count", "OK SEND main 1").await;
    alice
        .expect_push("MSG main:bob bob asked: message #3 in main")
        .await;
}
