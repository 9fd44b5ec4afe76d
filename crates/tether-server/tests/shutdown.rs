//! Graceful shutdown on SIGTERM / SIGINT: TCP clients get `BYE server shutting down`, WebSocket
//! clients a `bye` push and a close frame 1001, and the process exits 0.

mod common;

use common::{LineClient, Server, TIMEOUT, WsClient};
use serde_json::json;

async fn shutdown_with(sig: &str) {
    let mut server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    alice.ok("NEW r1:alice", "OK NEW r1:alice").await;
    let mut bob = WsClient::hello(server.http, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    // An unregistered TCP connection is told too.
    let mut anon = LineClient::connect(server.tcp).await;
    anon.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await;

    server.signal(sig);

    // TCP: leave pushes for others may come first; then BYE, then EOF.
    let lines = alice.read_to_eof().await;
    let bye = lines
        .iter()
        .position(|l| l == "BYE server shutting down")
        .unwrap_or_else(|| panic!("no BYE line for alice on SIG{sig}: {lines:?}"));
    assert_eq!(bye, lines.len() - 1, "BYE must be the last line: {lines:?}");
    assert!(
        lines[..bye].iter().all(|l| l.starts_with("LEFT ")),
        "unexpected lines before BYE: {lines:?}"
    );
    let lines = anon.read_to_eof().await;
    assert_eq!(
        lines,
        ["BYE server shutting down"],
        "unregistered TCP client on SIG{sig}"
    );

    // WS: bye push, then close 1001.
    let (frames, code) = bob.read_until_close().await;
    let bye = frames
        .iter()
        .position(|f| f == &json!({"type": "bye", "reason": "server shutting down"}))
        .unwrap_or_else(|| panic!("no bye push for the WS client on SIG{sig}: {frames:?}"));
    assert_eq!(
        bye,
        frames.len() - 1,
        "bye must be the last frame: {frames:?}"
    );
    assert_eq!(code, Some(1001), "WS close code on SIG{sig}");

    let status = server.wait_exit(TIMEOUT).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status on SIG{sig}: {status:?}; stderr:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn sigterm_says_bye_and_exits_zero() {
    shutdown_with("TERM").await;
}

#[tokio::test]
async fn sigint_says_bye_and_exits_zero() {
    shutdown_with("INT").await;
}

/// The listening lines announce readiness: a SIGTERM sent right after them must already be
/// handled gracefully (exit 0), not kill the process.
#[tokio::test]
async fn sigterm_right_after_the_listening_lines_exits_zero() {
    let mut server = Server::start(&[]);
    server.signal("TERM");
    let status = server.wait_exit(TIMEOUT).await;
    assert_eq!(status.code(), Some(0), "exit status: {status:?}");
}
