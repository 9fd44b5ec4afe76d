//! TLS on both listeners (`--tls-cert` / `--tls-key`, docs/protocol/rooms.md §8): the TCP line
//! protocol, HTTPS and wss:// all work with a self-signed certificate.

mod common;

use common::{Http, LineClient, Server, TestCert, WsClient, tls_connect};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn start_tls(cert: &TestCert) -> Server {
    Server::builder()
        .args(["--tls-cert", &cert.cert_arg(), "--tls-key", &cert.key_arg()])
        .start()
}

#[tokio::test]
async fn tcp_line_protocol_over_tls() {
    let cert = TestCert::generate();
    let server = start_tls(&cert);
    let connector = cert.connector();

    let mut alice = LineClient::from_stream(tls_connect(server.tcp, &connector).await);
    alice.ok("HELLO main:alice", "OK HELLO main:alice").await;
    let mut bob = LineClient::from_stream(tls_connect(server.tcp, &connector).await);
    bob.ok("HELLO main:bob", "OK HELLO main:bob").await;
    alice.expect_push("JOINED main:bob").await;
    bob.ok("SEND main:bob over tls ✓", "OK SEND main 1").await;
    alice.expect_push("MSG main:bob over tls ✓").await;
    let rooms = alice.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await;
    assert_eq!(rooms, ["ROOM main 2"]);
    bob.ok("QUIT main:bob", "OK BYE").await;
    bob.expect_eof().await;
    alice.expect_push("LEFT main:bob").await;
}

#[tokio::test]
async fn https_and_wss() {
    let cert = TestCert::generate();
    let server = start_tls(&cert);
    let connector = cert.connector();

    let https = Http::with_tls(server.http, connector.clone());
    let resp = https.get("/health").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"status": "ok"}));
    let resp = https.get("/server/status").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["use_ssl"], true, "{}", resp.text());
    let token = https.register("rest", "main").await;

    // wss:// over the TLS stream.
    let stream = tls_connect(server.http, &connector).await;
    let mut ws = WsClient::handshake(
        format!("wss://localhost:{}/ws/rooms", server.http.port()),
        stream,
    )
    .await;
    ws.ok(json!({"cmd": "hello", "room": "main", "client": "ws"}))
        .await;

    let mut tcp = LineClient::from_stream(tls_connect(server.tcp, &connector).await);
    tcp.ok("HELLO main:tcp", "OK HELLO main:tcp").await;
    ws.wait_push("join of tcp", |p| {
        p["type"] == "join" && p["client"] == "tcp"
    })
    .await;
    tcp.ok("SEND main:tcp hi ws", "OK SEND main 2").await;
    ws.wait_push("message from tcp", |p| {
        common::unpositioned(p)
            == json!({"type": "message", "room": "main", "from": "tcp", "text": "hi ws"})
    })
    .await;
    ws.ok(json!({"cmd": "send", "room": "main", "text": "hi tcp"}))
        .await;
    tcp.expect_push("MSG main:ws hi tcp").await;
    let m = https
        .wait_message("rest", &token, |m| m["from"] == "ws")
        .await;
    assert_eq!(m["text"], "hi tcp");
}

#[tokio::test]
async fn plaintext_is_refused_on_tls_listeners() {
    let cert = TestCert::generate();
    let server = start_tls(&cert);

    // A plaintext command on the TLS TCP listener never gets an OK.
    let mut plain = common::tcp_connect(server.tcp).await;
    plain
        .write_all(b"HELLO main:plain\n")
        .await
        .expect("writing plaintext");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(common::TIMEOUT, plain.read_to_end(&mut buf)).await;
    if let Ok(Ok(_)) = read {
        assert!(
            !String::from_utf8_lossy(&buf).contains("OK HELLO"),
            "plaintext command accepted on the TLS listener"
        );
    }

    // The server still serves TLS clients, and the plaintext client was not registered.
    let connector = cert.connector();
    let mut c = LineClient::from_stream(tls_connect(server.tcp, &connector).await);
    c.ok("HELLO main:plain", "OK HELLO main:plain").await;
}
