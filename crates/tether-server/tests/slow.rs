//! Slow consumers (docs/protocol/rooms.md §2: "queue full → ERROR → CLOSED, members get a leave",
//! §4: a WebSocket is closed with 1008 if the close frame can still be written, else dropped):
//! with `--queue-capacity 16`, a client that never reads is disconnected while a reading member
//! receives every message, in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{LineClient, Server, TIMEOUT, WsClient, WsEvent, is_disconnect};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

/// Upper bound of messages published before giving up on the slow client being disconnected.
const MAX_MESSAGES: u64 = 400_000;
/// Messages in flight between the publisher and the reading member (keeps the reader's own
/// outbound queue well under 16 whatever the scheduling).
const WINDOW: usize = 8;
const BATCH: usize = 4;

/// A TCP connection with a small receive buffer, so the kernel absorbs less for a client that
/// never reads.
async fn small_buffer_connect(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("creating a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("setting SO_RCVBUF");
    tokio::time::timeout(TIMEOUT, socket.connect(addr))
        .await
        .expect("connecting the slow client timed out")
        .expect("connecting the slow client")
}

/// With `slow` registered in main and never reading: registers `reader` and `pub`, publishes
/// ~200-character messages within a credit window until `LEFT main:{slow}` reaches the reader,
/// checks the reader got every message in order, and that `slow` is gone everywhere.
async fn publish_until_slow_is_gone(server: &Server, slow: &str) {
    let mut reader = LineClient::hello(server.tcp, "main", "reader").await;
    let mut publisher = LineClient::hello(server.tcp, "main", "pub").await;
    reader.expect_push("JOINED main:pub").await;
    let mut watcher = LineClient::connect(server.tcp).await;
    assert_eq!(
        watcher
            .list_items("LIST CLIENTS_FOR_CHAT_ROOM main", "CLIENTS_FOR_CHAT_ROOM")
            .await,
        [
            "CLIENT pub CONNECTED".to_owned(),
            "CLIENT reader CONNECTED".to_owned(),
            format!("CLIENT {slow} CONNECTED"),
        ]
    );

    let pad = "x".repeat(190);
    let credits = Arc::new(Semaphore::new(WINDOW));
    let slow_gone = Arc::new(AtomicBool::new(false));
    let left_at = Arc::new(AtomicU64::new(u64::MAX));
    let left_line = format!("LEFT main:{slow}");

    // The reading member: checks every message, in order; gives one credit back per message.
    let reader_task = {
        let credits = Arc::clone(&credits);
        let slow_gone = Arc::clone(&slow_gone);
        let left_at = Arc::clone(&left_at);
        let pad = pad.clone();
        let left_line = left_line.clone();
        tokio::spawn(async move {
            let mut expected: u64 = 0;
            loop {
                let line = reader
                    .read_line_within(Duration::from_secs(30))
                    .await
                    .expect("the reading member was disconnected");
                if line == "MSG main:pub DONE" {
                    // Hand the connection back: it must stay a member.
                    return (expected, reader);
                }
                if line == left_line {
                    left_at.store(expected, Ordering::SeqCst);
                    slow_gone.store(true, Ordering::SeqCst);
                    continue;
                }
                let body = line
                    .strip_prefix("MSG main:pub ")
                    .unwrap_or_else(|| panic!("unexpected line at message {expected}: {line:?}"));
                let (seq, rest) = body
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("bad message {line:?}"));
                let seq: u64 = seq
                    .parse()
                    .unwrap_or_else(|_| panic!("bad seq in {line:?}"));
                assert_eq!(seq, expected, "message out of order or lost");
                assert_eq!(rest, pad, "message {seq} corrupted");
                expected += 1;
                credits.add_permits(1);
            }
        })
    };

    // The publisher: pipelines SENDs within the credit window until the slow client is gone.
    let mut sent: u64 = 0;
    let mut replies: u64 = 0;
    let started = Instant::now();
    while sent < MAX_MESSAGES && !slow_gone.load(Ordering::SeqCst) {
        let permit =
            tokio::time::timeout(Duration::from_secs(30), credits.acquire_many(BATCH as u32))
                .await
                .unwrap_or_else(|_| {
                    panic!("the reading member stopped receiving after {sent} messages")
                })
                .expect("semaphore closed");
        permit.forget();
        let mut batch = String::with_capacity(BATCH * 220);
        for _ in 0..BATCH {
            batch.push_str(&format!("SEND main:pub {sent:08} {pad}\n"));
            sent += 1;
        }
        publisher.send_raw(batch.as_bytes()).await;
        // Read the replies that are due, keeping at most one batch outstanding.
        while replies + (BATCH as u64) < sent {
            let reply = publisher.reply().await;
            assert!(
                reply.starts_with("OK SEND main "),
                "reply to message {replies}: {reply:?}"
            );
            replies += 1;
        }
    }
    while replies < sent {
        let reply = publisher.reply().await;
        assert!(
            reply.starts_with("OK SEND main "),
            "reply to message {replies}: {reply:?}"
        );
        replies += 1;
    }
    assert!(
        slow_gone.load(Ordering::SeqCst),
        "the slow client {slow} was never disconnected after {sent} messages"
    );
    eprintln!(
        "slow client {slow} disconnected after {} of {sent} messages ({:?})",
        left_at.load(Ordering::SeqCst),
        started.elapsed()
    );

    // A final marker: the reader must have everything before it.
    publisher.ok("SEND main:pub DONE", "OK SEND main 1").await;
    let (received, _reader) = tokio::time::timeout(Duration::from_secs(60), reader_task)
        .await
        .expect("the reading member did not finish")
        .expect("the reading member task panicked");
    assert_eq!(received, sent, "the reading member missed messages");

    // The publisher saw the slow client leave too, and it is gone from the room and the table.
    publisher.wait_push(&left_line, |p| p == left_line).await;
    assert_eq!(
        watcher
            .list_items("LIST CLIENTS_FOR_CHAT_ROOM main", "CLIENTS_FOR_CHAT_ROOM")
            .await,
        ["CLIENT pub ACTIVE", "CLIENT reader CONNECTED"]
    );
    watcher
        .err(&format!("LIST CLIENT_CHAT_ROOMS {slow}"), "NO_SUCH_CLIENT")
        .await;
    server.wait_client_count(2).await;

    // The drop is counted (§7).
    let metrics = server.http().get("/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tether_dropped_total{reason=\"slow_consumer\"}")),
        "no tether_dropped_total{{reason=\"slow_consumer\"}} in /metrics:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_tcp_reader_is_disconnected_and_fast_reader_gets_everything() {
    let server = Server::start(&["--queue-capacity", "16"]);

    // The slow client registers, reads its OK, then never reads again.
    let mut slow = BufReader::new(small_buffer_connect(server.tcp).await);
    slow.get_mut()
        .write_all(b"HELLO main:slow\n")
        .await
        .expect("slow HELLO");
    let mut line = String::new();
    tokio::time::timeout(TIMEOUT, slow.read_line(&mut line))
        .await
        .expect("slow HELLO reply timed out")
        .expect("slow HELLO reply");
    assert_eq!(line, "OK HELLO main:slow\n");

    publish_until_slow_is_gone(&server, "slow").await;

    // The slow client's connection was closed by the server: draining it reaches EOF (or reset).
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        loop {
            match slow.read(&mut buf).await {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if is_disconnect(&e) => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the slow client's connection was never closed by the server")
    .expect("reading the slow client's connection");
    eprintln!("drained {drained} bytes from the slow client's socket");

    // The name is free again.
    let mut again = LineClient::connect(server.tcp).await;
    again.ok("HELLO main:slow", "OK HELLO main:slow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_ws_reader_is_closed_and_fast_reader_gets_everything() {
    let server = Server::start(&["--queue-capacity", "16"]);

    // The slow WebSocket client registers, reads its reply, then never reads again.
    let stream = small_buffer_connect(server.http).await;
    let mut slow =
        WsClient::handshake(format!("ws://{}/ws/rooms", server.http), Box::new(stream)).await;
    slow.ok(serde_json::json!({"cmd": "hello", "room": "main", "client": "wslow"}))
        .await;

    publish_until_slow_is_gone(&server, "wslow").await;

    // Draining it: messages, then a close frame 1008 ("slow consumer") or the end of the stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut frames = 0usize;
    let end = loop {
        assert!(
            Instant::now() < deadline,
            "the slow WebSocket was never closed by the server"
        );
        match slow.next_event().await {
            WsEvent::Json(_) => frames += 1,
            WsEvent::Close(frame) => break Some(frame),
            WsEvent::Ended(_) => break None,
            WsEvent::Other(m) => panic!("unexpected frame {m:?}"),
        }
    };
    eprintln!("drained {frames} frames from the slow WebSocket, then {end:?}");
    if let Some(frame) = end {
        assert_eq!(
            frame.map(|(code, _)| code),
            Some(1008),
            "a slow consumer's close frame is 1008"
        );
    }
}
