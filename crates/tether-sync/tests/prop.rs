//! Deterministic property tests: a simulated browser that applies every `_SET`/`_PATCH` it is
//! sent always ends up with the server's value, across random syncs, client patches, task
//! starts/ends and reconnects; and no input at all can panic the engine or drop the connection.

use proptest::prelude::*;
use proptest::test_runner::{Config as PConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use tether_patch::{Mode, PatchOp, apply, apply_with, diff};
use tether_sync::{AppEvent, ConnId, Output, Session, SyncOptions};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        PConfig {
            cases,
            failure_persistence: None,
            ..PConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..10).prop_map(Value::from),
        prop::sample::select(vec!["", "x", "y", "a/b", "~0", "é"]).prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "b", "c", "x/y", "t~", "0"]),
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

/// Snapshots are objects, as in ws-sync.
fn doc() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["a", "b", "c", "x/y", "t~"]),
            value(),
        ),
        0..5,
    )
    .prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

#[derive(Clone, Debug)]
enum Step {
    Sync(Value),
    ClientSet(Value),
    ClientPatch(Value),
    StartTask(u8),
    EndTask(u8),
    Reconnect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => doc().prop_map(Step::Sync),
        1 => doc().prop_map(Step::ClientSet),
        2 => doc().prop_map(Step::ClientPatch),
        1 => (0u8..3).prop_map(Step::StartTask),
        1 => (0u8..3).prop_map(Step::EndTask),
        1 => Just(Step::Reconnect),
    ]
}

const RT: &str = "runningTasks";

/// The simulated browser: applies what the server sends to the current connection.
/// Also adopts client-sent state into `app`, as an application would.
fn drain(
    s: &mut Session,
    conn: ConnId,
    client: &mut Value,
    app: &mut Value,
    tasks: &mut Vec<(u8, u64)>,
) {
    while let Some(out) = s.poll_output() {
        match out {
            Output::Event(AppEvent::Set { value, .. } | AppEvent::Patched { value, .. }) => {
                *app = value;
            }
            Output::Text { conn: c, text } if c == conn => {
                let frame: Value = serde_json::from_str(&text).expect("server sent valid JSON");
                let kind = frame["type"].as_str().expect("type");
                if kind == "_SET:K" {
                    *client = frame["data"].clone();
                } else if kind == "_PATCH:K" {
                    let ops: Vec<PatchOp> =
                        serde_json::from_value(frame["data"].clone()).expect("ops");
                    apply(client, &ops).expect("server patch applies strictly on the client");
                } else {
                    assert_ne!(kind, "_TOAST", "unexpected toast: {text}");
                }
            }
            Output::Event(AppEvent::StartTask { task, name, .. }) => {
                let n = name.trim_start_matches('T').parse().expect("task name");
                tasks.push((n, task.0));
            }
            _ => {}
        }
    }
}

#[test]
fn client_always_mirrors_the_server() {
    let mut runner = runner(300);
    let strategy = (doc(), prop::collection::vec(step(), 1..25));
    runner
        .run(&strategy, |(initial, steps)| {
            let mut s = Session::default();
            let opts = SyncOptions {
                expose_running_tasks: true,
                running_tasks_key: RT.to_owned(),
                ..SyncOptions::default()
            };
            s.register("K", initial.clone(), opts).expect("register");
            let mut conn = ConnId(1);
            s.handle_connect(conn);
            let mut client = Value::Null;
            let mut tasks: Vec<(u8, u64)> = Vec::new();
            let mut app = initial;
            drain(&mut s, conn, &mut client, &mut app, &mut tasks);
            for step in steps {
                match step {
                    Step::Sync(v) => {
                        app = v;
                        s.sync("K", app.clone()).expect("sync");
                    }
                    Step::ClientSet(v) => {
                        let frame = json!({"type": "_SET:K", "data": v});
                        client = v;
                        s.handle_text(conn, &frame.to_string());
                    }
                    Step::ClientPatch(v) => {
                        // The client's own edit: a diff of its state, applied locally first.
                        let mut target = v;
                        if let (Some(rt), Value::Object(map)) =
                            (client.get(RT).cloned(), &mut target)
                        {
                            map.insert(RT.to_owned(), rt);
                        }
                        let ops = diff(&client, &target);
                        apply_with(&mut client, &ops, Mode::Strict)
                            .expect("client applies its diff");
                        let frame = json!({"type": "_PATCH:K", "data": ops});
                        s.handle_text(conn, &frame.to_string());
                    }
                    Step::StartTask(n) => {
                        let frame =
                            json!({"type": "_TASK_START:K", "data": {"type": format!("T{n}")}});
                        s.handle_text(conn, &frame.to_string());
                    }
                    Step::EndTask(n) => {
                        if let Some(pos) = tasks.iter().position(|(m, _)| *m == n) {
                            let (_, id) = tasks.remove(pos);
                            s.task_done(tether_sync::TaskId(id)).expect("task running");
                        }
                    }
                    Step::Reconnect => {
                        s.handle_close(conn);
                        conn = ConnId(conn.0 + 1);
                        s.handle_connect(conn);
                    }
                }
                drain(&mut s, conn, &mut client, &mut app, &mut tasks);
                // The server view = app state + running tasks; the client must equal it.
                let mut want = s.state("K").cloned().expect("state");
                prop_assert_eq!(&want, &app);
                if let Value::Object(map) = &mut want {
                    let running: Vec<Value> =
                        s.running_tasks("K").into_iter().map(Value::from).collect();
                    map.insert(RT.to_owned(), Value::Array(running));
                }
                prop_assert_eq!(&client, &want);
                prop_assert!(tether_patch::json_eq(&client, &want));
            }
            Ok(())
        })
        .expect("property holds");
}

#[test]
fn no_input_panics_or_drops_the_connection() {
    let mut runner = runner(500);
    let input = prop::collection::vec(
        prop_oneof![
            ".{0,40}".prop_map(|s: String| (true, s.into_bytes())),
            prop::collection::vec(any::<u8>(), 0..20).prop_map(|b| (false, b)),
            doc().prop_map(|d| (
                true,
                json!({"type": "_PATCH:K", "data": d})
                    .to_string()
                    .into_bytes()
            )),
            prop::sample::select(vec![
                r#"{"type":"_BIN_META","data":{"type":"_ACTION:K","metadata":{"type":"U"}}}"#,
                r#"{"type":"_BIN_META","data":{"type":"_TASK_START:K","metadata":{}}}"#,
                r#"{"type":"_PATCH:K","data":[{"op":"move","from":"/a","path":"/a/b"}]}"#,
                r#"{"type":"_PATCH:K","data":[{"op":"remove","path":"/"}]}"#,
                r#"{"type":"_TASK_CANCEL:K","data":{"type":"T"}}"#,
                r#"{"type":"_SET:K","data":{"running_tasks":5}}"#,
            ])
            .prop_map(|s| (true, s.as_bytes().to_vec())),
        ],
        1..30,
    );
    runner
        .run(&input, |frames| {
            let mut s = Session::default();
            let opts = SyncOptions {
                expose_running_tasks: true,
                ..SyncOptions::default()
            };
            s.register("K", json!({"a": {"b": [1]}}), opts)
                .expect("register");
            s.handle_connect(ConnId(1));
            for (text, bytes) in frames {
                if text {
                    s.handle_text(ConnId(1), &String::from_utf8_lossy(&bytes));
                } else {
                    s.handle_binary(ConnId(1), &bytes);
                }
                while let Some(out) = s.poll_output() {
                    if let Output::Text { text, .. } = &out {
                        prop_assert!(serde_json::from_str::<Value>(text).is_ok());
                    }
                    let closed = matches!(out, Output::Close { .. });
                    prop_assert!(!closed, "engine closed the connection");
                    if let Output::Event(AppEvent::RunAction { action, .. }) = out {
                        s.action_done(action).expect("running");
                    }
                }
                prop_assert!(s.is_connected());
            }
            Ok(())
        })
        .expect("property holds");
}
