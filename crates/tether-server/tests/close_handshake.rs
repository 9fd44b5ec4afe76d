//! Closing on purpose, on every WebSocket door of the real binary (RFC 6455 §5.5.1, §7.1,
//! §7.4; docs/protocol/common.md): a client's close frame is answered at once and the server
//! then drops the connection; a broken frame gets 1002, text that is not UTF-8 1007, and the
//! connection is dropped right after that close frame; the test echo door is off by default.

mod common;
mod exec_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, TIMEOUT, WsClient, tcp_connect};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

type Ws = WebSocketStream<TcpStream>;

/// Well under the 2 s the rooms door used to take; a loopback round trip takes a few ms.
const PROMPT: Duration = Duration::from_millis(300);

async fn connect(addr: SocketAddr, path: &str) -> Ws {
    let stream = tcp_connect(addr).await;
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ws
}

/// What the server did with the connection's end, timed from the moment we started it.
#[derive(Debug)]
struct End {
    /// The server's close frame, if one came.
    frame: Option<(u16, String)>,
    /// When it came.
    frame_after: Option<Duration>,
    /// When the server dropped the TCP connection (the stream ended).
    dropped_after: Duration,
}

/// Reads (dropping data frames) until the server drops the connection.
async fn end_of(ws: &mut Ws, t0: Instant) -> End {
    let mut end = End {
        frame: None,
        frame_after: None,
        dropped_after: Duration::ZERO,
    };
    loop {
        let next = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("the server ends the connection in time");
        match next {
            Some(Ok(Message::Close(f))) => {
                end.frame = Some(f.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.as_str().to_owned())
                }));
                end.frame_after = Some(t0.elapsed());
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    end.dropped_after = t0.elapsed();
    end
}

/// Sends a close frame (1000, "bye") and waits for the server's reply and its hang-up.
async fn close(ws: &mut Ws) -> End {
    let t0 = Instant::now();
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.send(Message::Close(Some(frame)))
        .await
        .expect("send close");
    end_of(ws, t0).await
}

#[track_caller]
fn assert_answered(end: &End) {
    assert_eq!(
        end.frame,
        Some((1000, "bye".to_owned())),
        "the close is answered with the client's code: {end:?}"
    );
    let after = end.frame_after.unwrap_or(Duration::MAX);
    assert!(after < PROMPT, "the reply came after {after:?}: {end:?}");
}

async fn rooms_hello(ws: &mut Ws, room: &str, client: &str) -> Value {
    let hello = json!({"id": 1, "cmd": "hello", "room": room, "client": client});
    ws.send(Message::text(hello.to_string()))
        .await
        .expect("send");
    loop {
        let m = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("reply in time");
        if let Some(Ok(Message::Text(t))) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
            if v.get("id") == Some(&json!(1)) {
                return v;
            }
        } else {
            panic!("no reply to hello: {m:?}");
        }
    }
}

#[tokio::test]
async fn rooms_answers_a_close_at_once_and_the_room_hears_the_leave_at_once() {
    let server = Server::start(&[]);
    let mut alice = WsClient::hello(server.http, "main", "alice").await;
    let mut bob = connect(server.http, "/ws/rooms").await;
    assert_eq!(rooms_hello(&mut bob, "main", "bob").await["ok"], true);
    alice
        .wait_push("bob's join", |p| {
            p["type"] == "join" && p["client"] == "bob"
        })
        .await;

    let t0 = Instant::now();
    let end = close(&mut bob).await;
    assert_answered(&end);
    assert!(end.dropped_after < PROMPT, "{end:?}");
    alice
        .wait_push("bob's leave", |p| {
            p["type"] == "leave" && p["client"] == "bob"
        })
        .await;
    let heard = t0.elapsed();
    assert!(heard < PROMPT, "alice heard the leave after {heard:?}");

    // A reload that reconnects with the same name is welcome at once.
    let mut again = connect(server.http, "/ws/rooms").await;
    let reply = rooms_hello(&mut again, "main", "bob").await;
    assert_eq!(
        reply["ok"], true,
        "rejoining as bob right after the close: {reply}"
    );
}

#[tokio::test]
async fn sync_answers_a_close_at_once() {
    let server = Server::start(&[]);
    let mut ws = connect(server.http, "/ws/sync/demo").await;
    // The session is up: the engine sent its first frame.
    let first = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("a frame");
    assert!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
    let end = close(&mut ws).await;
    assert_answered(&end);
    assert!(end.dropped_after < PROMPT, "{end:?}");
}

#[tokio::test]
async fn relay_answers_a_close_at_once() {
    let server = Server::start(&[]);
    let relay = server.relay.expect("the relay runs");
    let mut ws = connect(relay, "/?session=close-test").await;
    let end = close(&mut ws).await;
    assert_answered(&end);
    assert!(end.dropped_after < PROMPT, "{end:?}");
}

#[tokio::test]
async fn exec_answers_a_close_before_the_process_is_gone() {
    // A 5 s kill grace and a process that ignores SIGTERM: the close used to be answered only
    // once the process was reaped.
    let server = exec_common::builder_with_kill_grace("5").start();
    let mut ws = connect(server.http, "/ws/claude").await;
    let info = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("info");
    assert!(matches!(info, Some(Ok(Message::Text(_)))), "{info:?}");
    let req = json!({"prompt": "pid ignore-term sleep=30"});
    ws.send(Message::text(req.to_string())).await.expect("send");
    // The process runs: its first line (with its pid) came.
    let pid = loop {
        let m = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a line");
        if let Some(Ok(Message::Text(t))) = m
            && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
            && let Some(pid) = v["pid"].as_u64()
        {
            break pid as u32;
        }
    };
    let t0 = Instant::now();
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.send(Message::Close(Some(frame)))
        .await
        .expect("send close");
    let reply = loop {
        let m = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("the reply in time");
        match m {
            Some(Ok(Message::Close(f))) => break f,
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a reply: {other:?}"),
        }
    };
    let after = t0.elapsed();
    assert_eq!(reply.map(|f| u16::from(f.code)), Some(1000));
    assert!(after < PROMPT, "the reply came after {after:?}");
    // ...while the process still ran: it ignores SIGTERM and gets SIGKILL 5 s later.
    assert!(exec_common::alive(pid), "the process {pid} is gone already");
}

/// A text frame whose payload is not UTF-8, a frame with a reserved bit, one with a reserved
/// opcode.
fn bad_frames() -> [(Frame, u16); 3] {
    let frame =
        |header: FrameHeader, payload: &[u8]| Frame::from_payload(header, payload.to_vec().into());
    [
        (
            frame(
                FrameHeader {
                    opcode: OpCode::Data(Data::Text),
                    ..FrameHeader::default()
                },
                &[b'{', 0xff, 0xfe, b'}'],
            ),
            1007,
        ),
        (
            frame(
                FrameHeader {
                    rsv1: true,
                    opcode: OpCode::Data(Data::Text),
                    ..FrameHeader::default()
                },
                b"{}",
            ),
            1002,
        ),
        (
            frame(
                FrameHeader {
                    opcode: OpCode::Data(Data::Reserved(3)),
                    ..FrameHeader::default()
                },
                b"{}",
            ),
            1002,
        ),
    ]
}

/// Sends each bad frame on a fresh connection to `addr` `path`; the server must close with the
/// RFC's code and hang up without waiting for the client's reply.
async fn fails_bad_frames(door: &str, addr: SocketAddr, path: &str, hang_up: Duration) {
    for (frame, code) in bad_frames() {
        let mut ws = connect(addr, path).await;
        let t0 = Instant::now();
        ws.send(Message::Frame(frame)).await.expect("send");
        let end = end_of(&mut ws, t0).await;
        let got = end.frame.as_ref().map(|f| f.0);
        assert_eq!(got, Some(code), "{door}: {end:?}");
        assert!(end.dropped_after < hang_up, "{door} hung up late: {end:?}");
    }
}

#[tokio::test]
async fn every_door_fails_bad_frames_with_1002_or_1007_and_hangs_up() {
    // The default kill grace (2 s), as a server without the flag has.
    let server = exec_common::builder_with_kill_grace("2")
        .env("TETHER_TEST_ECHO", "1")
        .start();
    let relay = server.relay.expect("the relay runs");
    fails_bad_frames("rooms", server.http, "/ws/rooms", PROMPT).await;
    fails_bad_frames("sync", server.http, "/ws/sync/demo", PROMPT).await;
    fails_bad_frames("relay", relay, "/?session=bad", PROMPT).await;
    fails_bad_frames("exec", server.http, "/ws/exec/cat", PROMPT).await;
    fails_bad_frames("echo", server.http, "/__tether/echo", PROMPT).await;
}

#[tokio::test]
async fn the_test_echo_door_is_off_unless_asked_for() {
    let server = Server::start(&[]);
    let stream = tcp_connect(server.http).await;
    let url = format!("ws://{}/__tether/echo", server.http);
    let refused = tokio_tungstenite::client_async(url, stream).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 404)
        }
        other => panic!("the echo door answered without TETHER_TEST_ECHO: {other:?}"),
    }

    let server = Server::builder().env("TETHER_TEST_ECHO", "1").start();
    let mut ws = connect(server.http, "/__tether/echo").await;
    ws.send(Message::text("ping")).await.expect("send");
    ws.send(Message::binary(vec![0u8, 1, 2]))
        .await
        .expect("send");
    let a = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("echo");
    let b = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("echo");
    assert_eq!(a.expect("frame").expect("ok"), Message::text("ping"));
    assert_eq!(
        b.expect("frame").expect("ok"),
        Message::binary(vec![0u8, 1, 2])
    );
    let end = close(&mut ws).await;
    assert_answered(&end);
    assert!(end.dropped_after < PROMPT, "{end:?}");
}
