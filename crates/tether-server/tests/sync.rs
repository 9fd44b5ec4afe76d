//! The sync demo (`examples/todo-sync/CONTRACT.md`) over a real socket: ws-sync frames on
//! `/ws/sync/demo`, one todo list shared by every connection, actions, a cancellable task,
//! binary frames, client patches and bad input.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TIMEOUT, WsClient, WsEvent};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const PATH: &str = "/ws/sync/demo";

/// What a sync client reads: a JSON frame, a binary frame, or the end.
#[derive(Debug)]
enum Got {
    Json(Value),
    Binary(Vec<u8>),
    Close(Option<u16>),
}

struct Sync {
    ws: WsClient,
}

impl Sync {
    /// Connects and checks the initial `_SET:TODOS`; returns the client and that state.
    async fn connect(server: &Server) -> (Sync, Value) {
        let mut c = Sync {
            ws: WsClient::connect_path(server.http, PATH).await,
        };
        let set = c.json().await;
        assert_eq!(set["type"], "_SET:TODOS", "first frame: {set}");
        (c, set["data"].clone())
    }

    async fn next(&mut self) -> Got {
        match self.ws.next_event().await {
            WsEvent::Json(v) => Got::Json(v),
            WsEvent::Other(Message::Binary(b)) => Got::Binary(b.to_vec()),
            WsEvent::Close(c) => Got::Close(c.map(|(code, _)| code)),
            WsEvent::Ended(_) => Got::Close(None),
            WsEvent::Other(m) => panic!("unexpected frame {m:?}"),
        }
    }

    async fn json(&mut self) -> Value {
        match self.next().await {
            Got::Json(v) => v,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    async fn send(&mut self, ty: &str, data: Value) {
        self.ws.send_json(&json!({"type": ty, "data": data})).await;
    }

    async fn action(&mut self, data: Value) {
        self.send("_ACTION:TODOS", data).await;
    }

    /// Reads JSON frames until one satisfies `pred`; returns it and the ones skipped.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; saw {skipped:?}"
            );
            let v = self.json().await;
            if pred(&v) {
                return (v, skipped);
            }
            skipped.push(v);
        }
    }

    async fn expect(&mut self, expected: Value) {
        let v = self.json().await;
        assert_eq!(v, expected);
    }

    async fn toast(&mut self) -> (String, String) {
        let v = self.json().await;
        assert_eq!(v["type"], "_TOAST", "expected a toast, got {v}");
        (
            v["data"]["type"].as_str().unwrap_or_default().to_owned(),
            v["data"]["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Nothing arrives before the answer to a later marker: an `ADD` with empty text, which the
    /// app answers with an error toast and no change, after everything it was sent before.
    async fn quiet(&mut self) {
        self.action(json!({"type": "ADD", "text": ""})).await;
        let v = self.json().await;
        assert!(
            v["type"] == "_TOAST"
                && v["data"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("text must not be empty")),
            "expected nothing before the marker's error toast, got {v}"
        );
    }
}

fn patch(ops: Value) -> Value {
    json!({"type": "_PATCH:TODOS", "data": ops})
}

fn initial() -> Value {
    json!({"todos": [{"id": 1, "text": "try tether", "done": false}], "next_id": 2,
           "progress": 0.0, "running_tasks": []})
}

#[tokio::test]
async fn connect_sends_the_initial_state_in_contract_order() {
    let server = Server::start(&[]);
    let mut c = WsClient::connect_path(server.http, PATH).await;
    match c.next_event().await {
        WsEvent::Json(v) => {
            assert_eq!(v, json!({"type": "_SET:TODOS", "data": initial()}));
            // Key order on the wire is the contract's.
            let text = v.to_string();
            let pos = |k: &str| text.find(k).unwrap_or(usize::MAX);
            assert!(pos("\"todos\"") < pos("\"next_id\""));
            assert!(pos("\"next_id\"") < pos("\"progress\""));
            assert!(pos("\"progress\"") < pos("\"running_tasks\""));
        }
        _ => panic!("no initial _SET"),
    }
    let page = server.http().get("/demo/sync").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("demo-sync.js"), "{}", page.text());
    assert_eq!(server.http().get("/demo-sync.js").await.status, 200);
}

#[tokio::test]
async fn actions_add_toggle_remove_clear_done() {
    let server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    c.action(json!({"type": "ADD", "text": "milk"})).await;
    c.expect(patch(json!([
        {"op": "add", "path": "/todos/1", "value": {"id": 2, "text": "milk", "done": false}},
        {"op": "replace", "path": "/next_id", "value": 3}
    ])))
    .await;
    c.action(json!({"type": "TOGGLE", "id": 1})).await;
    c.expect(patch(
        json!([{"op": "replace", "path": "/todos/0/done", "value": true}]),
    ))
    .await;
    c.action(json!({"type": "ADD", "text": "eggs"})).await;
    c.json().await;
    c.action(json!({"type": "REMOVE", "id": 2})).await;
    c.expect(patch(json!([{"op": "remove", "path": "/todos/1"}])))
        .await;
    c.action(json!({"type": "CLEAR_DONE"})).await;
    c.expect(patch(json!([{"op": "remove", "path": "/todos/0"}])))
        .await;
    // A no-op action sends nothing.
    c.action(json!({"type": "TOGGLE", "id": 99})).await;
    c.quiet().await;
    let (_, state) = Sync::connect(&server).await;
    assert_eq!(
        state,
        json!({"todos": [{"id": 3, "text": "eggs", "done": false}], "next_id": 4,
               "progress": 0.0, "running_tasks": []})
    );
}

#[tokio::test]
async fn add_with_empty_text_is_an_error_toast_and_the_session_goes_on() {
    let server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    c.action(json!({"type": "ADD", "text": ""})).await;
    let (kind, msg) = c.toast().await;
    assert_eq!(kind, "error");
    assert!(msg.contains("text must not be empty"), "{msg}");
    c.action(json!({"type": "ADD"})).await;
    let (kind, msg) = c.toast().await;
    assert_eq!(
        (kind.as_str(), msg.contains("bad arguments")),
        ("error", true),
        "{msg}"
    );
    c.action(json!({"type": "NOPE"})).await;
    let (_, msg) = c.toast().await;
    assert!(msg.contains("NOPE"), "{msg}");
    c.action(json!({"type": "ADD", "text": "ok"})).await;
    let (p, _) = c
        .wait("the ADD patch", |v| v["type"] == "_PATCH:TODOS")
        .await;
    assert_eq!(p["data"][0]["value"]["text"], "ok");
}

#[tokio::test]
async fn count_reports_progress_and_running_tasks_then_a_success_toast() {
    let server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    c.send("_TASK_START:TODOS", json!({"type": "COUNT", "n": 3}))
        .await;
    let mut frames = Vec::new();
    loop {
        let v = c.json().await;
        let end = v["type"] == "_PATCH:TODOS"
            && v["data"] == json!([{"op": "remove", "path": "/running_tasks/0"}]);
        frames.push(v);
        if end {
            break;
        }
    }
    let p = |v: f64| patch(json!([{"op": "replace", "path": "/progress", "value": v}]));
    assert_eq!(
        frames,
        vec![
            patch(json!([{"op": "add", "path": "/running_tasks/0", "value": "COUNT"}])),
            p(1.0 / 3.0),
            p(2.0 / 3.0),
            p(1.0),
            json!({"type": "_TOAST", "data": {"type": "success", "message": "counted to 3"}}),
            patch(json!([{"op": "remove", "path": "/running_tasks/0"}])),
        ]
    );
}

#[tokio::test]
async fn cancel_after_start_resets_progress_with_an_info_toast() {
    let server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    c.send("_TASK_START:TODOS", json!({"type": "COUNT", "n": 100}))
        .await;
    c.expect(patch(
        json!([{"op": "add", "path": "/running_tasks/0", "value": "COUNT"}]),
    ))
    .await;
    c.expect(patch(
        json!([{"op": "replace", "path": "/progress", "value": 0.01}]),
    ))
    .await;
    // A second start of a running task is ignored (ws-sync: log only).
    c.send("_TASK_START:TODOS", json!({"type": "COUNT", "n": 5}))
        .await;
    c.send("_TASK_CANCEL:TODOS", json!({"type": "COUNT"})).await;
    let (_, skipped) = c
        .wait("progress back to 0", |v| {
            v["data"] == json!([{"op": "replace", "path": "/progress", "value": 0.0}])
        })
        .await;
    assert!(
        skipped.iter().all(|v| v["data"][0]["path"] == "/progress"),
        "{skipped:?}"
    );
    assert_eq!(c.toast().await, ("info".into(), "count cancelled".into()));
    c.expect(patch(json!([{"op": "remove", "path": "/running_tasks/0"}])))
        .await;
    // Cancelling what does not run is ignored; the task can start again. Its frames, in order,
    // are the marker that nothing of the cancelled task came after the cancel.
    c.send("_TASK_CANCEL:TODOS", json!({"type": "COUNT"})).await;
    c.send("_TASK_START:TODOS", json!({"type": "COUNT", "n": 1}))
        .await;
    c.expect(patch(
        json!([{"op": "add", "path": "/running_tasks/0", "value": "COUNT"}]),
    ))
    .await;
    c.expect(patch(
        json!([{"op": "replace", "path": "/progress", "value": 1.0}]),
    ))
    .await;
    assert_eq!(c.toast().await, ("success".into(), "counted to 1".into()));
}

#[tokio::test]
async fn the_list_is_shared_by_every_connection() {
    let server = Server::start(&[]);
    let (mut a, _) = Sync::connect(&server).await;
    let (mut b, _) = Sync::connect(&server).await;
    a.action(json!({"type": "ADD", "text": "shared"})).await;
    let expected = patch(json!([
        {"op": "add", "path": "/todos/1", "value": {"id": 2, "text": "shared", "done": false}},
        {"op": "replace", "path": "/next_id", "value": 3}
    ]));
    a.expect(expected.clone()).await;
    b.expect(expected).await;
    // The running tasks are per session: b sees the progress, not a's running_tasks.
    a.send("_TASK_START:TODOS", json!({"type": "COUNT", "n": 1}))
        .await;
    b.expect(patch(
        json!([{"op": "replace", "path": "/progress", "value": 1.0}]),
    ))
    .await;
    // A third page gets the current list whole.
    let (_, state) = Sync::connect(&server).await;
    assert_eq!(state["todos"][1]["text"], "shared");
}

#[tokio::test]
async fn a_client_patch_is_kept_and_seen_by_the_other_connection() {
    let server = Server::start(&[]);
    let (mut a, _) = Sync::connect(&server).await;
    let (mut b, _) = Sync::connect(&server).await;
    a.send(
        "_PATCH:TODOS",
        json!([{"op": "replace", "path": "/todos/0/text", "value": "edited"}]),
    )
    .await;
    b.expect(patch(
        json!([{"op": "replace", "path": "/todos/0/text", "value": "edited"}]),
    ))
    .await;
    // No echo to the sender.
    a.quiet().await;
    let (_, state) = Sync::connect(&server).await;
    assert_eq!(state["todos"][0]["text"], "edited");
    // A client `_SET` is adopted too.
    let mut whole = state.clone();
    whole["todos"][0]["done"] = json!(true);
    b.send("_SET:TODOS", whole).await;
    a.expect(patch(
        json!([{"op": "replace", "path": "/todos/0/done", "value": true}]),
    ))
    .await;
}

#[tokio::test]
async fn an_invalid_client_patch_is_refused_and_corrected() {
    let server = Server::start(&[]);
    let (mut a, _) = Sync::connect(&server).await;
    let (mut b, _) = Sync::connect(&server).await;
    a.send(
        "_PATCH:TODOS",
        json!([{"op": "replace", "path": "/next_id", "value": "many"}]),
    )
    .await;
    let (kind, msg) = a.toast().await;
    assert_eq!(kind, "error");
    assert!(msg.starts_with("invalid state for TODOS: "), "{msg}");
    a.expect(patch(
        json!([{"op": "replace", "path": "/next_id", "value": 2}]),
    ))
    .await;
    b.quiet().await;
    let (_, state) = Sync::connect(&server).await;
    assert_eq!(state, initial());
}

#[tokio::test]
async fn upload_appends_a_todo_and_echoes_the_bytes_reversed() {
    let server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    c.send(
        "_BIN_META",
        json!({"type": "_ACTION:TODOS", "metadata": {"type": "UPLOAD", "name": "a.bin"}}),
    )
    .await;
    c.ws.send_binary(vec![1, 2, 3, 4, 5]).await;
    c.expect(patch(json!([
        {"op": "add", "path": "/todos/1",
         "value": {"id": 2, "text": "uploaded a.bin (5 bytes)", "done": false}},
        {"op": "replace", "path": "/next_id", "value": 3}
    ])))
    .await;
    c.expect(
        json!({"type": "_BIN_META", "data": {"type": "_ACTION:TODOS",
        "metadata": {"type": "ECHO", "name": "a.bin"}}}),
    )
    .await;
    match c.next().await {
        Got::Binary(b) => assert_eq!(b, vec![5, 4, 3, 2, 1]),
        other => panic!("expected the echo, got {other:?}"),
    }
    // UPLOAD without bytes fails cleanly.
    c.action(json!({"type": "UPLOAD", "name": "x"})).await;
    let (kind, msg) = c.toast().await;
    assert_eq!(kind, "error");
    assert!(msg.contains("binary"), "{msg}");
}

#[tokio::test]
async fn bad_input_gets_error_toasts_and_the_session_goes_on() {
    let server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    let (mut other, _) = Sync::connect(&server).await;

    c.ws.send_text("{not json").await;
    assert_eq!(c.toast().await.1, "malformed frame: invalid JSON");
    c.send("_NOPE:TODOS", json!({})).await;
    assert_eq!(c.toast().await.1, "unknown event: _NOPE:TODOS");
    c.send("_ACTION:OTHER", json!({"type": "ADD"})).await;
    assert_eq!(c.toast().await.1, "unknown event: _ACTION:OTHER");
    c.send(
        "_PATCH:TODOS",
        json!([{"op": "replace", "path": "/todos/9/text", "value": "x"}]),
    )
    .await;
    let msg = c.toast().await.1;
    assert!(msg.starts_with("could not apply _PATCH:TODOS: "), "{msg}");
    c.ws.send_binary(vec![1, 2, 3]).await;
    assert_eq!(
        c.toast().await.1,
        "unexpected binary frame (no _BIN_META before it)"
    );
    // Over the engine's 1 MiB limit but under the socket's: a toast.
    let big = format!(
        r#"{{"type":"_ACTION:TODOS","data":{{"type":"ADD","text":"{}"}}}}"#,
        "x".repeat(1_200_000)
    );
    c.ws.send_text(&big).await;
    let msg = c.toast().await.1;
    assert!(msg.starts_with("frame too large: "), "{msg}");

    // Still alive, state unchanged.
    c.action(json!({"type": "TOGGLE", "id": 1})).await;
    let toggled = patch(json!([{"op": "replace", "path": "/todos/0/done", "value": true}]));
    c.expect(toggled.clone()).await;
    other.expect(toggled).await;

    // Over the socket limit (4 MiB): that connection is closed with 1009 (the server stops
    // reading mid-frame, so the close may be lost in a reset), the others go on.
    let huge = "x".repeat(5 << 20);
    let sent = c.ws.try_send_message(Message::text(huge)).await;
    loop {
        match c.next().await {
            Got::Close(code) => {
                assert!(
                    code == Some(1009) || (code.is_none() && sent.is_err()),
                    "close {code:?} after send {sent:?}"
                );
                break;
            }
            Got::Json(_) | Got::Binary(_) => {}
        }
    }
    other.action(json!({"type": "TOGGLE", "id": 1})).await;
    other
        .expect(patch(
            json!([{"op": "replace", "path": "/todos/0/done", "value": false}]),
        ))
        .await;
    let (_, state) = Sync::connect(&server).await;
    assert_eq!(state, initial());
}

#[tokio::test]
async fn shutdown_closes_sync_sockets_with_1001_and_cancels_tasks() {
    let mut server = Server::start(&[]);
    let (mut c, _) = Sync::connect(&server).await;
    c.send("_TASK_START:TODOS", json!({"type": "COUNT", "n": 1000}))
        .await;
    c.wait("the task running", |v| v["data"][0]["path"] == "/progress")
        .await;
    server.signal("TERM");
    loop {
        match c.next().await {
            Got::Close(code) => {
                assert_eq!(code, Some(1001));
                break;
            }
            Got::Json(_) | Got::Binary(_) => {}
        }
    }
    let status = server.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status:?}");
}
