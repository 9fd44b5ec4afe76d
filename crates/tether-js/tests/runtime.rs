//! Behaviour of `tether_js::Runtime` from Rust: eval, promises, timers, host ops, modules,
//! snapshots, limits and termination.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::signal;

use tether_js::{Config, HostValue, JsError, Op, Runtime, SnapshotBuilder};

fn rt() -> Runtime {
    Runtime::new(Config::default()).expect("runtime")
}

fn num(v: f64) -> HostValue {
    HostValue::Number(v)
}

#[test]
fn eval_returns_the_completion_value() {
    let rt = rt();
    assert_eq!(rt.eval("1 + 1").unwrap(), num(2.0));
    rt.eval("var x = 40").unwrap();
    assert_eq!(rt.eval("x + 2").unwrap(), num(42.0));
    assert_eq!(
        rt.eval("({a: [1, 'b', null], s: new Set([1])})").unwrap(),
        HostValue::Object(vec![
            (
                "a".into(),
                HostValue::Array(vec![
                    num(1.0),
                    HostValue::String("b".into()),
                    HostValue::Null
                ])
            ),
            ("s".into(), HostValue::Set(vec![num(1.0)])),
        ])
    );
}

#[test]
fn errors_carry_name_message_and_frames() {
    let rt = rt();
    let err = rt
        .eval("function causeError() { throw new TypeError('boom') }\ncauseError()")
        .unwrap_err();
    let JsError::Exception(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.name.as_deref(), Some("TypeError"));
    assert_eq!(e.message, "boom");
    assert!(e.stack.unwrap().contains("<eval>"));
    assert_eq!(e.frames[0].function_name.as_deref(), Some("causeError"));
    let JsError::Exception(e) = rt.eval("throw 42").unwrap_err() else {
        panic!()
    };
    assert_eq!((e.name, e.message.as_str()), (None, "Uncaught 42"));
}

#[test]
fn eval_async_drives_promises_and_timers() {
    let rt = rt();
    let v = rt
        .eval_async(
            "new Promise(r => setTimeout(() => r(7), 20))",
            Some(Duration::from_secs(2)),
        )
        .unwrap();
    assert_eq!(v, num(7.0));
    // A timer set in one eval fires after it returned, and a later eval sees its effect.
    let fired = signal(&rt, "fired");
    rt.eval("globalThis.hit = 0; setTimeout(() => { hit = 1; fired() }, 10)")
        .unwrap();
    fired
        .recv_timeout(Duration::from_secs(10))
        .expect("the timer fired");
    assert_eq!(rt.eval("hit").unwrap(), num(1.0));
    let v = rt
        .eval_async(
            "new Promise(r => { let n = 0; const i = setInterval(() => { if (++n == 3) { clearInterval(i); r(n) } }, 5) })",
            None,
        )
        .unwrap();
    assert_eq!(v, num(3.0));
}

#[test]
fn pending_promise_times_out_and_runtime_stays_usable() {
    let rt = rt();
    let err = rt
        .eval_async("new Promise(() => {})", Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Evaluation timed out after 50ms (promise still pending)"
    );
    assert_eq!(rt.eval_async("Promise.resolve(5)", None).unwrap(), num(5.0));
}

#[test]
fn cpu_loop_times_out_and_runtime_stays_usable() {
    let rt = Runtime::new(Config {
        timeout: Some(Duration::from_millis(100)),
        ..Config::default()
    })
    .unwrap();
    let t = Instant::now();
    let err = rt.eval("while (true) {}").unwrap_err();
    assert!(
        matches!(
            err,
            JsError::Timeout {
                what: "Sync evaluation",
                ms: 100
            }
        ),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_millis(600));
    assert_eq!(rt.eval("1").unwrap(), num(1.0));
}

#[test]
fn terminate_from_another_thread() {
    let rt = rt();
    let term = rt.terminator();
    let looping = signal(&rt, "looping");
    let h = std::thread::spawn(move || {
        // Terminate the loop once it runs (a terminate before the eval would also fail it).
        looping
            .recv_timeout(Duration::from_secs(10))
            .expect("the loop started");
        term.terminate();
    });
    let err = rt.eval("looping(); while (true) {}").unwrap_err();
    h.join().unwrap();
    assert!(
        matches!(err, JsError::Terminated(ref m) if m.contains("host request")),
        "{err:?}"
    );
    assert!(matches!(rt.eval("1"), Err(JsError::Terminated(_))));
}

#[test]
fn memory_limit_terminates() {
    let rt = Runtime::new(Config {
        memory_limit: Some(8 << 20),
        ..Config::default()
    })
    .unwrap();
    let err = rt
        .eval("let a = []; while (true) a.push(new Array(10000).fill(1))")
        .unwrap_err();
    assert!(
        matches!(err, JsError::Terminated(ref m) if m.contains("Heap limit")),
        "{err:?}"
    );
}

#[test]
fn deep_recursion_is_a_range_error() {
    let rt = rt();
    let JsError::Exception(e) = rt.eval("function f() { return f() + 1 } f()").unwrap_err() else {
        panic!()
    };
    assert_eq!(e.name.as_deref(), Some("RangeError"));
}

#[test]
fn sync_and_async_host_ops() {
    let rt = rt();
    let add = rt
        .register_op(
            "add",
            Op::Sync(Arc::new(|args| match args.as_slice() {
                [HostValue::Number(a), HostValue::Number(b)] => Ok(HostValue::Number(a + b)),
                _ => Err("bad args".into()),
            })),
        )
        .unwrap();
    assert_eq!(add, 0);
    assert_eq!(rt.eval("__host_op_sync__(0, 2, 3)").unwrap(), num(5.0));
    rt.set_global(
        "add",
        HostValue::HostFunction {
            op: add,
            name: "add".into(),
        },
    )
    .unwrap();
    assert_eq!(rt.eval("add(1, 2)").unwrap(), num(3.0));
    let JsError::Exception(e) = rt.eval("add('x')").unwrap_err() else {
        panic!()
    };
    assert_eq!(
        (e.name.as_deref(), e.message.as_str()),
        (Some("TypeError"), "bad args")
    );
    let later = rt
        .register_op(
            "later",
            Op::Async(Arc::new(|args, done| {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(10));
                    done.complete(Ok(args.into_iter().next().unwrap_or(HostValue::Null)));
                });
            })),
        )
        .unwrap();
    rt.set_global(
        "later",
        HostValue::HostFunction {
            op: later,
            name: "later".into(),
        },
    )
    .unwrap();
    let v = rt
        .eval_async(
            "Promise.all([later(1), later(2)]).then(([a, b]) => a + b)",
            None,
        )
        .unwrap();
    assert_eq!(v, num(3.0));
}

#[test]
fn functions_keep_this_and_round_trip() {
    let rt = rt();
    let HostValue::Object(props) = rt.eval("({v: 5, get() { return this.v }})").unwrap() else {
        panic!()
    };
    let HostValue::Function(get) = props[1].1 else {
        panic!()
    };
    assert_eq!(
        rt.eval("({v: 5, get() { return this.v }}).get()").unwrap(),
        num(5.0)
    );
    assert_eq!(rt.call(get, vec![]).unwrap(), num(5.0));
    let HostValue::Function(id) = rt.eval("(f, o) => f === o.get && f.call(o)").unwrap() else {
        panic!()
    };
    let HostValue::Function(obj_get) = props[1].1 else {
        panic!()
    };
    let obj = rt
        .eval("globalThis.o = {v: 6, get() { return this.v }}; o")
        .unwrap();
    let HostValue::Object(p2) = &obj else {
        panic!()
    };
    let HostValue::Function(g2) = p2[1].1 else {
        panic!()
    };
    let _ = obj_get;
    assert_eq!(
        rt.call(id, vec![HostValue::Function(g2), obj.clone()])
            .unwrap(),
        num(6.0)
    );
}

#[test]
fn modules_static_resolver_loader_dynamic_import_and_tla() {
    let rt = rt();
    rt.add_static_module("a", "export const x = 1; export function f() { return 2 }")
        .unwrap();
    rt.add_static_module(
        "b",
        "import { x } from 'a'; export const y = x + await Promise.resolve(1);",
    )
    .unwrap();
    let HostValue::Object(ns) = rt.eval_module("b").unwrap() else {
        panic!()
    };
    assert_eq!(ns, vec![("y".into(), num(2.0))]);
    let err = rt.eval_module("nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to load module 'nope': Module resolution denied for nope. Did you call add_static_module()?"
    );
    rt.set_resolver(Some(Box::new(|spec, _| {
        Ok(spec.strip_prefix("my:").map(|s| format!("mem://{s}")))
    })))
    .unwrap();
    rt.set_loader(Some(Box::new(|url, _| {
        Ok(format!("export default {:?}", url))
    })))
    .unwrap();
    let HostValue::Object(ns) = rt.eval_module("my:z").unwrap() else {
        panic!()
    };
    assert_eq!(
        ns,
        vec![("default".into(), HostValue::String("mem://z".into()))]
    );
    let v = rt
        .eval_async("import('my:q').then(m => m.default)", None)
        .unwrap();
    assert_eq!(v, HostValue::String("mem://q".into()));
    let f = rt.module_export("a", "f").unwrap();
    assert_eq!(
        rt.call_json(f, serde_json::json!(null)).unwrap(),
        serde_json::json!(2)
    );
}

#[test]
fn snapshot_replays_bootstrap_scripts() {
    let mut b = SnapshotBuilder::new(Config::default()).unwrap();
    b.execute_script(
        "boot.js",
        "globalThis.greet = (n) => 'hi ' + n; var counter = 41;",
    )
    .unwrap();
    let bytes = b.build().to_bytes();
    let snap = tether_js::Snapshot::from_bytes(&bytes).unwrap();
    let rt = Runtime::new(Config {
        snapshot: Some(snap),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(
        rt.eval("greet('x') + (counter + 1)").unwrap(),
        HostValue::String("hi x42".into())
    );
    assert!(tether_js::Snapshot::from_bytes(b"garbage").is_err());
}

#[test]
fn conversion_limits() {
    let rt = rt();
    let e = rt.eval("let o = {}; o.o = o; o").unwrap_err();
    assert_eq!(e.to_string(), "Cannot serialize circular reference");
    let e = rt.eval("let a = []; let c = a; for (let i = 0; i < 200; i++) { let n = []; c.push(n); c = n }; a").unwrap_err();
    assert_eq!(e.to_string(), "Depth exceeded maximum limit of 100");
    let e = rt.eval("Symbol()").unwrap_err();
    assert_eq!(e.to_string(), "Cannot serialize V8 symbol");
    assert_eq!(
        rt.eval("[1,,3]").unwrap(),
        HostValue::Array(vec![num(1.0), HostValue::Undefined, num(3.0)])
    );
    assert_eq!(
        rt.eval("1n << 70n").unwrap(),
        HostValue::BigInt("1180591620717411303424".into())
    );
    assert_eq!(
        rt.eval("new Uint8Array([1, 2])").unwrap(),
        HostValue::Bytes(vec![1, 2])
    );
    assert_eq!(
        rt.eval("'\\ud800'").unwrap(),
        HostValue::String("\u{fffd}".into())
    );
}

#[test]
fn helper_globals_are_hidden() {
    let rt = rt();
    let v = rt
        .eval("Object.getOwnPropertyNames(globalThis).filter(k => k.startsWith('__')).join()")
        .unwrap();
    assert_eq!(
        v,
        HostValue::String("__host_op_sync__,__host_op_async__".into())
    );
    assert_eq!(rt.eval("typeof __host_op_sync__ + typeof setTimeout + typeof console.log + typeof ReadableStream").unwrap(),
        HostValue::String("functionfunctionfunctionfunction".into()));
}

#[test]
fn hook_shaped_use_with_limits_and_a_callback() {
    let rt = Runtime::new(Config {
        memory_limit: Some(16 << 20),
        timeout: Some(Duration::from_millis(100)),
        ..Config::default()
    })
    .unwrap();
    rt.add_static_module(
        "room",
        "export async function onMessage(m) { if (m.spin) while (true) {} return { n: m.n + 1 } }",
    )
    .unwrap();
    let hook = rt.module_export("room", "onMessage").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.call_json_with(hook, serde_json::json!({"n": 1}), move |r| {
        let _ = tx.send(r);
    });
    assert_eq!(rx.recv().unwrap().unwrap(), serde_json::json!({"n": 2}));
    let err = rt
        .call_json(hook, serde_json::json!({"spin": true}))
        .unwrap_err();
    assert!(matches!(err, JsError::Timeout { .. }), "{err:?}");
    assert_eq!(
        rt.call_json(hook, serde_json::json!({"n": 5})).unwrap(),
        serde_json::json!({"n": 6})
    );
}

/// Polls `done` for up to five seconds.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    done()
}

#[test]
fn close_nowait_frees_the_isolate_while_clones_live() {
    let rt = rt();
    // What a host keeps for its function handles: another clone of the runtime.
    let kept = rt.clone();
    let marker = Arc::new(());
    let weak = Arc::downgrade(&marker);
    rt.register_op(
        "held",
        Op::Sync(Arc::new(move |_| {
            let _ = &marker;
            Ok(HostValue::Null)
        })),
    )
    .unwrap();
    let HostValue::Function(f) = rt.eval("() => 1").unwrap() else {
        panic!("not a function")
    };
    assert_eq!(kept.call(f, vec![]).unwrap(), num(1.0));
    rt.close_nowait();
    // The isolate (with the op that holds `marker`) goes on the runtime's thread, although
    // `kept` still refers to the runtime.
    assert!(eventually(|| weak.upgrade().is_none()));
    assert!(matches!(kept.call(f, vec![]), Err(JsError::Closed)));
    assert!(kept.is_closed());
    rt.close();
}

#[test]
fn close_nowait_while_busy_fails_the_queued_requests() {
    let rt = rt();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    rt.register_op(
        "started",
        Op::Sync(Arc::new(move |_| {
            let _ = started_tx.lock().map(|tx| tx.send(()));
            Ok(HostValue::Null)
        })),
    )
    .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let busy = rt.clone();
    let busy = std::thread::spawn(move || {
        busy.eval("__host_op_sync__(0); const t = Date.now(); while (Date.now() - t < 200) {} 1")
    });
    started_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("busy eval started");
    for i in 0..3 {
        let tx = done_tx.clone();
        rt.call_with(0, vec![], move |r| {
            let _ = tx.send((i, r));
        });
    }
    rt.close_nowait();
    // The running eval finishes; the requests queued behind it fail instead of running.
    assert_eq!(busy.join().unwrap().unwrap(), num(1.0));
    for _ in 0..3 {
        let (_, r) = done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("answered");
        assert!(matches!(r, Err(JsError::Closed)), "{r:?}");
    }
}
