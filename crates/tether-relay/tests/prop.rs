//! Deterministic property tests over random frames.
//!
//! - Exactness: whatever a hero sends, a UI that connects late renders the same page as the UI
//!   that saw every frame (checked with the UI model of `common`).
//! - Bounds: the log never exceeds its byte bound, and no input panics.
//! - Routing: random peers, sessions, announces, garbage and closes across two sessions: no
//!   frame is echoed, none crosses sessions, none reaches a closed or unannounced connection,
//!   every connection is closed at most once.

mod common;

use std::collections::{HashMap, HashSet};

use common::{NOW, Ui, announce, drain, late_ui};
use proptest::prelude::*;
use proptest::test_runner::{Config as PConfig, RngAlgorithm, TestRng, TestRunner};
use tether_relay::{Config, ConnId, Output, Relay};

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

const IDS: &[(&str, &str)] = &[
    ("lab", "label"),
    ("btn", "button"),
    ("tb", "textbox"),
    ("con", "console"),
    ("g", "grid"),
    ("cv", "canvas"),
    ("viz", "viz"),
    ("row", "row"),
    ("col", "column"),
    ("x", "markdown"),
];
const TYPES: &[&str] = &[
    "label", "markdown", "button", "textbox", "console", "grid", "canvas", "viz", "row", "column",
];
const PARENTS: &[&str] = &["root", "row", "col", "lab", "ghost", "x"];
const NUMS: &[&str] = &["0", "1", "1.0", "0.5", "2"];
const VARS: &[&str] = &["a", "b"];

fn frame(component: &str, kind: &str, target: &str, payload: Option<String>) -> String {
    match payload {
        Some(p) => format!(
            r#"{{"id": 0, "component": "{component}", "type": "{kind}", "target": "{target}", "payload": {p}}}"#
        ),
        None => format!(
            r#"{{"id": 0, "component": "{component}", "type": "{kind}", "target": "{target}"}}"#
        ),
    }
}

/// One hero frame from a few small choices.
fn hero_frame() -> impl Strategy<Value = String> {
    let id = prop::sample::select(IDS.to_vec());
    let ty = prop::sample::select(TYPES.to_vec());
    let parent = prop::sample::select(PARENTS.to_vec());
    let num = prop::sample::select(NUMS.to_vec());
    let var = prop::sample::select(VARS.to_vec());
    let n = 0u8..6;
    prop_oneof![
        1 => Just(r#"{"id": 0, "component": "global", "type": "clearAll"}"#.to_owned()),
        6 => (id.clone(), ty.clone(), any::<bool>(), parent.clone(), 0u8..10).prop_map(|((id, natural), ty, keep, parent, p)| {
            let ty = if keep { natural } else { ty };
            let payload = match p {
                0..=5 => "{}".to_owned(),
                6 => r#"{"text": "t"}"#.to_owned(),
                _ => format!(r#"{{"parent": "{parent}"}}"#),
            };
            frame(ty, "spawn", id, Some(payload))
        }),
        3 => (id.clone(), parent).prop_map(|((id, ty), p)| frame(ty, "update", id, Some(format!(
            r#"{{"action": "changeParent", "options": {{"parent": "{p}"}}}}"#)))),
        3 => (id.clone(), any::<bool>()).prop_map(|((id, ty), text)| {
            let action = if text { "setText" } else { "setValue" };
            frame(ty, "update", id, Some(format!(r#"{{"action": "{action}", "options": {{"text": "{id}", "value": "v"}}}}"#)))
        }),
        4 => (n.clone(), num.clone(), num.clone()).prop_map(|(k, x, y)| {
            let p = match k {
                0 => format!(r#"{{"action": "setColor", "options": {{"x": {x}, "y": {y}, "color": "red"}}}}"#),
                1 => format!(r#"{{"action": "setColor", "options": {{"x": {x}, "y": {y}, "color": null}}}}"#),
                2 => format!(r#"{{"action": "setText", "options": {{"x": {x}, "y": {y}, "text": "{x}"}}}}"#),
                3 => format!(r#"{{"action": "clearCell", "options": {{"x": {x}, "y": {y}}}}}"#),
                4 => r#"{"action": "clear"}"#.to_owned(),
                _ => format!(r#"{{"action": "setText", "options": {{"x": {x}, "y": {y}, "text": null}}}}"#),
            };
            frame("grid", "update", "g", Some(p))
        }),
        2 => (0u8..3).prop_map(|k| {
            let p = match k {
                0 => r#"{"action": "append", "options": {"text": "line\n"}}"#,
                1 => r#"{"action": "clear"}"#,
                _ => r#"{"action": "append", "options": {"text": "more"}}"#,
            };
            frame("console", "update", "con", Some(p.to_owned()))
        }),
        5 => (0u8..7, 0u8..3, 0u8..3).prop_map(|(k, a, b)| {
            let p = match k {
                0 => format!(r#"{{"action": "clear", "options": {{"bufferId": {a}}}}}"#),
                1 | 2 => format!(r#"{{"action": "drawRect", "options": {{"bufferId": {a}, "x": {b}, "y": 0, "width": 1, "height": 1}}}}"#),
                3 => format!(r#"{{"action": "drawBuffer", "options": {{"sourceBufferId": {a}, "targetBufferId": {b}}}}}"#),
                4 => format!(r#"{{"action": "createBuffer", "options": {{"bufferId": {a}}}}}"#),
                5 => format!(r#"{{"action": "destroyBuffer", "options": {{"bufferId": {a}}}}}"#),
                _ => format!(r#"{{"action": "drawText", "options": {{"x": {b}, "y": 0, "text": "t"}}}}"#),
            };
            frame("canvas", "update", "cv", Some(p))
        }),
        3 => (0u8..5, var, n).prop_map(|(k, v, i)| {
            let p = match k {
                0 | 1 => format!(r#"{{"action": "set", "variableName": "{v}", "options": {{"path": [], "valueRepresentation": {{"value": {i}}}}}}}"#),
                2 => format!(r#"{{"action": "append", "variableName": "{v}", "options": {{"path": [{i}], "valueRepresentation": {{"value": {i}}}}}}}"#),
                3 => format!(r#"{{"action": "setitem", "variableName": "{v}", "options": {{"path": [0], "valueRepresentation": {{"value": NaN}}}}}}"#),
                _ => format!(r#"{{"action": "removeVariable", "variableName": "{v}", "options": {{}}}}"#),
            };
            frame("viz", "update", "viz", Some(p))
        }),
        2 => id.clone().prop_map(|(id, ty)| frame(ty, "remove", id, None)),
        1 => (id, ty).prop_map(|((id, _), ty)| frame(ty, "update", id, Some(r#"{"action": "setText", "options": {"text": "mismatch"}}"#.to_owned()))),
    ]
}

fn render(frames: &[String]) -> Ui {
    let mut ui = Ui::new();
    for f in frames {
        ui.apply(f);
    }
    ui
}

/// The model renders frames with `NaN` as the page would not (strict JSON): make them strict
/// for rendering only; the relay got the original.
fn strict(f: &str) -> String {
    f.replace("NaN", "null")
}

#[test]
fn a_late_ui_renders_what_the_live_ui_shows() {
    let mut runner = runner(400);
    let strategy = prop::collection::vec(hero_frame(), 1..80);
    runner
        .run(&strategy, |frames| {
            let mut r = Relay::default();
            r.handle_connect(ConnId(2), "");
            r.handle_text(ConnId(2), &announce("ui", "sidekick", "online"), NOW);
            r.handle_connect(ConnId(1), "");
            r.handle_text(ConnId(1), &announce("hero", "hero", "online"), NOW);
            r.handle_text(
                ConnId(1),
                r#"{"id": 0, "component": "global", "type": "clearAll"}"#,
                NOW,
            );
            let mut live = Vec::new();
            for f in &frames {
                r.handle_text(ConnId(1), f, NOW);
            }
            let d = drain(&mut r);
            for (conn, t) in d.sends {
                if conn == ConnId(2) {
                    live.push(strict(&t));
                }
            }
            r.handle_sent(ConnId(2), usize::MAX);
            let replay: Vec<String> = late_ui(&mut r, 3).iter().map(|f| strict(f)).collect();
            prop_assert_eq!(
                render(&replay).view(),
                render(&live).view(),
                "frames: {:#?}\nreplay: {:#?}",
                frames,
                replay
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_log_stays_within_its_bound() {
    let mut runner = runner(200);
    let strategy = (prop::collection::vec(hero_frame(), 1..200), 1024usize..8192);
    runner
        .run(&strategy, |(frames, max)| {
            let cfg = Config {
                max_log_bytes: max,
                max_total_log_bytes: max,
                ..Config::default()
            };
            let mut r = Relay::new(cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
            r.handle_connect(ConnId(1), "");
            r.handle_text(ConnId(1), &announce("hero", "hero", "online"), NOW);
            r.handle_text(
                ConnId(1),
                r#"{"id": 0, "component": "global", "type": "clearAll"}"#,
                NOW,
            );
            for f in &frames {
                r.handle_text(ConnId(1), f, NOW);
                let bytes = r.log("").map(|l| l.bytes()).unwrap_or(0);
                prop_assert!(bytes <= max, "{} > {}", bytes, max);
                prop_assert_eq!(bytes, r.log_bytes());
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[derive(Debug, Clone)]
enum Op {
    Connect(u8, bool),
    Announce(u8, u8, bool, bool),
    Hero(u8, String),
    Garbage(u8, Vec<u8>),
    Binary(u8),
    Sent(u8),
    Close(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0u8..6;
    prop_oneof![
        3 => (c.clone(), any::<bool>()).prop_map(|(c, s)| Op::Connect(c, s)),
        3 => (c.clone(), 0u8..4, any::<bool>(), any::<bool>()).prop_map(|(c, p, h, on)| Op::Announce(c, p, h, on)),
        8 => (c.clone(), hero_frame()).prop_map(|(c, f)| Op::Hero(c, f)),
        2 => (c.clone(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(c, b)| Op::Garbage(c, b)),
        1 => c.clone().prop_map(Op::Binary),
        2 => c.clone().prop_map(Op::Sent),
        2 => c.prop_map(Op::Close),
    ]
}

#[test]
fn routing_never_echoes_nor_crosses_sessions() {
    let mut runner = runner(300);
    let strategy = prop::collection::vec(op(), 1..120);
    runner
        .run(&strategy, |ops| {
            let cfg = Config {
                max_frame_bytes: 512,
                max_log_bytes: 2048,
                max_total_log_bytes: 3000,
                max_queue_bytes: 4096,
                max_total_queue_bytes: 6000,
                max_connections: 5,
                max_sessions: 2,
                ..Config::default()
            };
            let mut r = Relay::new(cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // The model of what is open: conn → session.
            let mut open: HashMap<u64, &str> = HashMap::new();
            let mut next = 0u64;
            let mut slots: HashMap<u8, u64> = HashMap::new();
            let mut closed: HashSet<u64> = HashSet::new();
            for op in ops {
                // Who sent what in this step, and the session every resulting frame belongs to.
                let mut sent: Option<(u64, String)> = None;
                let mut session: Option<&str> = None;
                match op {
                    Op::Connect(slot, s) => {
                        next += 1;
                        let name = if s { "a" } else { "b" };
                        r.handle_connect(ConnId(next), name);
                        open.insert(next, name);
                        slots.insert(slot, next);
                    }
                    Op::Announce(slot, p, hero, on) => {
                        if let Some(&c) = slots.get(&slot) {
                            let role = if hero { "hero" } else { "sidekick" };
                            let status = if on { "online" } else { "offline" };
                            let text = announce(&format!("p{p}"), role, status);
                            r.handle_text(ConnId(c), &text, NOW);
                            sent = Some((c, text));
                        }
                    }
                    Op::Hero(slot, text) => {
                        if let Some(&c) = slots.get(&slot) {
                            r.handle_text(ConnId(c), &text, NOW);
                            sent = Some((c, text));
                        }
                    }
                    Op::Garbage(slot, b) => {
                        if let Some(&c) = slots.get(&slot) {
                            let text = String::from_utf8_lossy(&b).into_owned();
                            r.handle_text(ConnId(c), &text, NOW);
                            sent = Some((c, text));
                        }
                    }
                    Op::Binary(slot) => {
                        if let Some(&c) = slots.get(&slot) {
                            session = open.get(&c).copied();
                            r.handle_binary(ConnId(c), NOW);
                        }
                    }
                    Op::Sent(slot) => {
                        if let Some(&c) = slots.get(&slot) {
                            r.handle_sent(ConnId(c), 1000);
                        }
                    }
                    Op::Close(slot) => {
                        if let Some(c) = slots.remove(&slot) {
                            session = open.remove(&c);
                            r.handle_close(ConnId(c), NOW);
                        }
                    }
                }
                if let Some((c, _)) = &sent {
                    session = open.get(c).copied();
                }
                while let Some(e) = r.poll_output() {
                    match e {
                        Output::Send { conn, frame } => {
                            prop_assert!(
                                open.contains_key(&conn.0),
                                "send to a closed connection {}",
                                conn
                            );
                            prop_assert!(!closed.contains(&conn.0));
                            if let Some((c, text)) = &sent {
                                prop_assert!(
                                    !(*c == conn.0 && frame.as_str() == text),
                                    "echo to {}: {}",
                                    conn,
                                    frame
                                );
                            }
                            if let Some(s) = session {
                                prop_assert_eq!(
                                    open.get(&conn.0).copied(),
                                    Some(s),
                                    "crossed sessions"
                                );
                            }
                        }
                        Output::Close { conn, .. } => {
                            prop_assert!(closed.insert(conn.0), "closed twice: {}", conn);
                            open.remove(&conn.0);
                        }
                    }
                }
                prop_assert!(r.connection_count() <= 5);
                prop_assert!(r.session_count() <= 2);
                prop_assert!(r.log_bytes() <= 3000);
                let mut total = 0;
                for &c in open.keys() {
                    if let Some(q) = r.queued_bytes(ConnId(c)) {
                        prop_assert!(q <= 4096, "{} queued", q);
                        total += q;
                    }
                }
                prop_assert_eq!(total, r.total_queued_bytes());
                prop_assert!(total <= 6000, "{} queued in all", total);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
