//! Drives the engine through the golden scenarios in `tests/fixtures/sync/*.json` (format in
//! that folder's README.md) and checks every output in order, plus a simulated client's state.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;

use serde_json::{Map, Value};
use tether_patch::{Mode, PatchOp, apply_with};
use tether_sync::{
    ActionId, Config, ConnId, Level, Output, Session, SyncOptions, TaskId, ToastKind,
};

fn fixture_dir() -> PathBuf {
    // Read when the test runs, not compiled in: cargo reuses a test binary built in another
    // checkout that shares the target dir, and that checkout may be gone.
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/fixtures/sync")
}

fn load(name: &str) -> Value {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .expect("byte array")
        .iter()
        .map(|b| u8::try_from(b.as_u64().expect("byte")).expect("byte < 256"))
        .collect()
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

struct Runner {
    name: String,
    session: Session,
    pending: VecDeque<Output>,
    logs: Vec<(Level, String)>,
    clients: HashMap<(u64, String), Value>,
}

impl Runner {
    fn drain(&mut self) {
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Log { level, message } => self.logs.push((level, message)),
                other => self.pending.push_back(other),
            }
        }
    }

    /// The next output, polled one at a time (an app step then runs before the rest is polled,
    /// as an adapter reacting to an event does).
    fn next_output(&mut self, step: usize) -> Output {
        if let Some(out) = self.pending.pop_front() {
            return out;
        }
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Log { level, message } => self.logs.push((level, message)),
                other => return other,
            }
        }
        panic!("{} step {step}: expected an output, got none", self.name)
    }

    fn assert_quiet(&mut self, step: usize) {
        self.drain();
        assert!(
            self.pending.is_empty(),
            "{} step {step}: unexpected outputs {:?}",
            self.name,
            self.pending
        );
    }

    fn client_applies(&mut self, conn: u64, frame: &Value, from_server: bool) {
        let Some(kind) = frame["type"].as_str() else {
            return;
        };
        let Some((prefix, key)) = kind.split_once(':') else {
            return;
        };
        let slot = (conn, key.to_owned());
        match prefix {
            "_SET" if frame["data"].is_object() => {
                self.clients.insert(slot, frame["data"].clone());
            }
            "_PATCH" => {
                let ops: Vec<PatchOp> = match serde_json::from_value(frame["data"].clone()) {
                    Ok(ops) => ops,
                    Err(_) => return,
                };
                // A key the client never got a `_SET` for (send_on_init false) holds the
                // client's own initial state, which the fixtures do not model.
                let Some(doc) = self.clients.get_mut(&slot) else {
                    return;
                };
                let mode = if from_server {
                    Mode::Strict
                } else {
                    Mode::Lenient
                };
                let result = apply_with(doc, &ops, mode);
                if from_server {
                    // The browser applies server patches with fast-json-patch: they must apply.
                    assert!(
                        result.is_ok(),
                        "{}: server patch does not apply: {result:?}",
                        self.name
                    );
                }
            }
            _ => {}
        }
    }

    fn app(&mut self, cmd: &Value) -> Result<(), String> {
        let ss = &mut self.session;
        let e = |r: Result<bool, tether_sync::SyncError>| r.map(drop).map_err(|e| e.to_string());
        let key = || s(cmd, "key");
        match s(cmd, "cmd") {
            "register" => {
                let opts: SyncOptions = match cmd.get("options") {
                    Some(o) => serde_json::from_value(o.clone()).map_err(|e| e.to_string())?,
                    None => SyncOptions::default(),
                };
                ss.register(key(), cmd["value"].clone(), opts)
                    .map_err(|e| e.to_string())
            }
            "unregister" => ss.unregister(key()).map_err(|e| e.to_string()),
            "sync" => e(ss.sync(key(), cmd["value"].clone())),
            "sync_if_changed" => {
                let value = cmd["value"].clone();
                e(ss.sync_if_changed(key(), u(cmd, "revision"), || value))
            }
            "set" => e(ss.set(key(), cmd["value"].clone())),
            "request_state" => e(ss.request_state(key())),
            "send_action" => e(ss.send_action(key(), cmd["action"].clone())),
            "send_binary" => {
                let meta: Map<String, Value> =
                    cmd["metadata"].as_object().cloned().expect("metadata");
                e(ss.send_binary(key(), meta, bytes(&cmd["data"])))
            }
            "toast" => {
                let kind: ToastKind = serde_json::from_value(cmd["kind"].clone()).expect("kind");
                ss.toast(kind, s(cmd, "message"));
                Ok(())
            }
            "download" => {
                ss.download(s(cmd, "filename"), &bytes(&cmd["data"]));
                Ok(())
            }
            "request_user_session" => {
                ss.request_user_session();
                Ok(())
            }
            "disconnect" => {
                ss.disconnect(cmd.get("message").and_then(Value::as_str));
                Ok(())
            }
            "action_done" => ss
                .action_done(ActionId(u(cmd, "action")))
                .map_err(|e| e.to_string()),
            "action_failed" => ss
                .action_failed(ActionId(u(cmd, "action")), s(cmd, "error"))
                .map_err(|e| e.to_string()),
            "task_done" => ss
                .task_done(TaskId(u(cmd, "task")))
                .map_err(|e| e.to_string()),
            "task_cancelled" => ss
                .task_cancelled(TaskId(u(cmd, "task")))
                .map_err(|e| e.to_string()),
            "task_failed" => ss
                .task_failed(TaskId(u(cmd, "task")), s(cmd, "error"))
                .map_err(|e| e.to_string()),
            "reject" => e(ss.reject(key(), cmd["value"].clone(), s(cmd, "message"))),
            "send_event" => {
                ss.send_event(s(cmd, "event"), &cmd["data"]);
                Ok(())
            }
            "register_event" => {
                ss.register_event(s(cmd, "event"));
                Ok(())
            }
            "unregister_event" => {
                ss.unregister_event(s(cmd, "event"));
                Ok(())
            }
            other => panic!("unknown app command {other}"),
        }
    }

    fn run(name: &str) {
        let doc = load(name);
        let config: Config =
            serde_json::from_value(doc.get("config").cloned().unwrap_or(Value::Null))
                .or_else(|_| serde_json::from_value(serde_json::json!({})))
                .expect("config");
        let mut r = Runner {
            name: name.to_owned(),
            session: Session::new(config),
            pending: VecDeque::new(),
            logs: Vec::new(),
            clients: HashMap::new(),
        };
        let steps = doc["steps"].as_array().expect("steps");
        let mut prev_input = false;
        for (i, step) in steps.iter().enumerate() {
            let obj = step.as_object().expect("step object");
            let (kind, arg) = obj.iter().next().expect("step kind");
            let is_input = matches!(
                kind.as_str(),
                "connect" | "close" | "recv" | "recv_binary" | "app"
            );
            // An app step may react to an event before the rest is polled (no quiet check).
            if is_input && !prev_input && kind != "app" {
                r.assert_quiet(i);
            }
            prev_input = is_input;
            match kind.as_str() {
                "connect" => r
                    .session
                    .handle_connect(ConnId(arg.as_u64().expect("conn"))),
                "close" => r.session.handle_close(ConnId(arg.as_u64().expect("conn"))),
                "recv" => {
                    let conn = u(arg, "conn");
                    let text = match arg.get("text") {
                        Some(t) => t.as_str().expect("text").to_owned(),
                        None => serde_json::to_string(&arg["frame"]).expect("frame"),
                    };
                    if let Ok(frame) = serde_json::from_str::<Value>(&text) {
                        r.client_applies(conn, &frame, false);
                    }
                    r.session.handle_text(ConnId(conn), &text);
                }
                "recv_binary" => r
                    .session
                    .handle_binary(ConnId(u(arg, "conn")), &bytes(&arg["data"])),
                "app" => {
                    let result = r.app(arg);
                    let want_err = arg
                        .get("expect_error")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    assert_eq!(
                        result.is_err(),
                        want_err,
                        "{name} step {i}: {arg} -> {result:?}"
                    );
                }
                "send" => {
                    let want = serde_json::to_string(&arg["frame"]).expect("frame");
                    match r.next_output(i) {
                        Output::Text { conn, text } => {
                            assert_eq!(
                                (conn.0, text.as_str()),
                                (u(arg, "conn"), want.as_str()),
                                "{name} step {i}"
                            );
                            r.client_applies(conn.0, &arg["frame"], true);
                        }
                        other => panic!("{name} step {i}: expected text {want}, got {other:?}"),
                    }
                }
                "send_binary" => match r.next_output(i) {
                    Output::Binary { conn, data } => {
                        assert_eq!(
                            (conn.0, data),
                            (u(arg, "conn"), bytes(&arg["data"])),
                            "{name} step {i}"
                        );
                    }
                    other => panic!("{name} step {i}: expected binary, got {other:?}"),
                },
                "server_close" => match r.next_output(i) {
                    Output::Close { conn, code, reason } => assert_eq!(
                        (conn.0, u64::from(code), reason.as_str()),
                        (u(arg, "conn"), u(arg, "code"), s(arg, "reason")),
                        "{name} step {i}"
                    ),
                    other => panic!("{name} step {i}: expected close, got {other:?}"),
                },
                "event" => match r.next_output(i) {
                    Output::Event(ev) => {
                        let got = serde_json::to_value(&ev).expect("event json");
                        assert_eq!(&got, arg, "{name} step {i}");
                    }
                    other => panic!("{name} step {i}: expected event {arg}, got {other:?}"),
                },
                "log" => {
                    r.drain();
                    let level: Level = serde_json::from_value(arg["level"].clone()).expect("level");
                    let needle = s(arg, "contains");
                    let pos = r
                        .logs
                        .iter()
                        .position(|(l, m)| *l == level && m.contains(needle))
                        .unwrap_or_else(|| {
                            panic!(
                                "{name} step {i}: no {level:?} log containing {needle:?} in {:?}",
                                r.logs
                            )
                        });
                    r.logs.remove(pos);
                }
                "client_state" => {
                    let slot = (u(arg, "conn"), s(arg, "key").to_owned());
                    assert_eq!(r.clients.get(&slot), Some(&arg["value"]), "{name} step {i}");
                }
                other => panic!("{name} step {i}: unknown step kind {other}"),
            }
        }
        r.assert_quiet(steps.len());
    }
}

const SCENARIOS: &[&str] = &[
    "actions",
    "app_state",
    "bad_input",
    "binary",
    "connect",
    "limits",
    "misc",
    "quiet_unknown",
    "reconnect",
    "state",
    "takeover",
    "tasks",
];

macro_rules! scenario {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            Runner::run(stringify!($name));
        }
    )*};
}
scenario!(
    actions,
    app_state,
    bad_input,
    binary,
    connect,
    limits,
    misc,
    quiet_unknown,
    reconnect,
    state,
    takeover,
    tasks
);

#[test]
fn every_fixture_file_is_run() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, SCENARIOS);
}

#[test]
fn fixtures_cover_every_event_of_the_protocol() {
    let (mut sent, mut received) = (BTreeSet::new(), BTreeSet::new());
    for name in SCENARIOS {
        for step in load(name)["steps"].as_array().expect("steps") {
            let frame = if let Some(send) = step.get("send") {
                Some((&mut sent, send["frame"].clone()))
            } else if let Some(recv) = step.get("recv") {
                let frame = match recv.get("frame") {
                    Some(f) => f.clone(),
                    None => serde_json::from_str(recv["text"].as_str().unwrap_or(""))
                        .unwrap_or(Value::Null),
                };
                Some((&mut received, frame))
            } else {
                None
            };
            if let Some((set, frame)) = frame
                && let Some(t) = frame.get("type").and_then(Value::as_str)
            {
                set.insert(t.split(':').next().unwrap_or(t).to_owned());
            }
        }
    }
    for t in [
        "_SET",
        "_GET",
        "_PATCH",
        "_ACTION",
        "_TOAST",
        "_DOWNLOAD",
        "_DISCONNECT",
        "_BIN_META",
        "_REQUEST_USER_SESSION",
    ] {
        assert!(sent.contains(t), "no fixture sends {t}");
    }
    for t in [
        "_SET",
        "_GET",
        "_PATCH",
        "_ACTION",
        "_TASK_START",
        "_TASK_CANCEL",
        "_BIN_META",
        "_USER_SESSION",
    ] {
        assert!(received.contains(t), "no fixture receives {t}");
    }
}
