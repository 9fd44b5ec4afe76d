//! Sync requests made while the runtime is idle run on the caller's thread (when it has room for
//! QuickJS's stack limit): timers, promises, host ops, re-entry, limits and termination still
//! behave as through the runtime's thread.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

mod common;
use common::signal;

use tether_js::{Config, HostValue, JsError, Op, Runtime};

fn num(v: f64) -> HostValue {
    HostValue::Number(v)
}

/// Runs `f` on a thread with a stack as big as the runtime thread's (test threads have 2 MiB,
/// too little for the inline path).
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no panic");
}

/// Registers a sync op (as global `name`) that reports the thread it runs on.
fn thread_probe(rt: &Runtime, name: &str) -> Arc<Mutex<Option<ThreadId>>> {
    let seen: Arc<Mutex<Option<ThreadId>>> = Arc::default();
    let s = seen.clone();
    common::global_op(rt, name, move |_| {
        *s.lock().expect("lock") = Some(std::thread::current().id());
        Ok(HostValue::Null)
    });
    seen
}

#[test]
fn sync_requests_run_on_the_callers_thread_with_room() {
    big_stack(|| {
        let rt = Runtime::new(Config::default()).expect("runtime");
        let seen = thread_probe(&rt, "probe");
        rt.eval("probe()").expect("eval");
        assert_eq!(
            *seen.lock().expect("lock"),
            Some(std::thread::current().id())
        );
    });
    // Without the room, through the runtime's thread.
    let rt = Runtime::new(Config::default()).expect("runtime");
    let seen = thread_probe(&rt, "probe");
    rt.eval("probe()").expect("eval");
    assert_ne!(
        *seen.lock().expect("lock"),
        Some(std::thread::current().id())
    );
}

#[test]
fn timers_and_promises_started_inline_are_driven_by_the_worker() {
    big_stack(|| {
        let rt = Runtime::new(Config::default()).expect("runtime");
        let fired = signal(&rt, "fired");
        rt.eval("globalThis.hit = 0; setTimeout(() => { hit = 1; fired() }, 10)")
            .expect("eval");
        // The worker fires the timer while nothing is evaluated here.
        fired
            .recv_timeout(Duration::from_secs(10))
            .expect("the timer fired");
        assert_eq!(rt.eval("hit").expect("eval"), num(1.0));
        let v = rt
            .eval_async(
                "new Promise(r => setTimeout(() => r(7), 20))",
                Some(Duration::from_secs(2)),
            )
            .expect("eval_async");
        assert_eq!(v, num(7.0));
        let err = rt
            .eval_async("new Promise(() => {})", Some(Duration::from_millis(50)))
            .unwrap_err();
        assert!(matches!(err, JsError::PendingTimeout { ms: 50 }), "{err:?}");
        assert_eq!(
            rt.eval_async("Promise.resolve(5)", None).expect("eval"),
            num(5.0)
        );
        rt.close();
    });
}

#[test]
fn async_host_ops_complete_after_an_inline_start() {
    big_stack(|| {
        let rt = Runtime::new(Config::default()).expect("runtime");
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
            .expect("op");
        rt.set_global(
            "later",
            HostValue::HostFunction {
                op: later,
                name: "later".into(),
            },
        )
        .expect("global");
        let v = rt
            .eval_async(
                "Promise.all([later(1), later(2)]).then(([a, b]) => a + b)",
                None,
            )
            .expect("eval_async");
        assert_eq!(v, num(3.0));
    });
}

#[test]
fn a_host_op_can_call_back_into_its_runtime_inline() {
    big_stack(|| {
        let rt = Runtime::new(Config::default()).expect("runtime");
        let slot: Arc<OnceLock<Runtime>> = Arc::default();
        let s = slot.clone();
        let op = rt
            .register_op(
                "again",
                Op::Sync(Arc::new(move |_| {
                    let rt = s.get().ok_or("no runtime")?;
                    assert!(rt.on_worker_thread());
                    rt.eval("40 + 2").map_err(|e| e.to_string())
                })),
            )
            .expect("op");
        let _ = slot.set(rt.clone());
        rt.set_global(
            "again",
            HostValue::HostFunction {
                op,
                name: "again".into(),
            },
        )
        .expect("global");
        assert!(!rt.on_worker_thread());
        assert_eq!(rt.eval("again() + 1").expect("eval"), num(43.0));
        rt.close();
    });
}

#[test]
fn limits_and_terminate_hold_inline() {
    big_stack(|| {
        let rt = Runtime::new(Config::default()).expect("runtime");
        let JsError::Exception(e) = rt.eval("function f() { return f() + 1 } f()").unwrap_err()
        else {
            panic!("not an exception")
        };
        assert_eq!(e.name.as_deref(), Some("RangeError"));
        let rt = Runtime::new(Config {
            timeout: Some(Duration::from_millis(100)),
            ..Config::default()
        })
        .expect("runtime");
        let t = Instant::now();
        let err = rt.eval("while (true) {}").unwrap_err();
        assert!(matches!(err, JsError::Timeout { .. }), "{err:?}");
        assert!(t.elapsed() < Duration::from_millis(600));
        assert_eq!(rt.eval("1").expect("eval"), num(1.0));
        let term = rt.terminator();
        let looping = signal(&rt, "looping");
        let h = std::thread::spawn(move || {
            looping
                .recv_timeout(Duration::from_secs(10))
                .expect("the loop started");
            term.terminate();
        });
        let err = Runtime::eval(&rt, "looping(); for (;;) {}").unwrap_err();
        h.join().expect("join");
        // The timeout or the terminate flag stops it, whichever comes first.
        assert!(
            matches!(err, JsError::Terminated(_) | JsError::Timeout { .. }),
            "{err:?}"
        );
        assert!(matches!(rt.eval("1"), Err(JsError::Terminated(_))));
        rt.close();
        assert!(matches!(rt.eval("1"), Err(JsError::Closed)));
    });
}

#[test]
fn concurrent_callers_share_one_runtime() {
    big_stack(|| {
        let rt = Runtime::new(Config::default()).expect("runtime");
        rt.eval("globalThis.n = 0").expect("eval");
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let rt = rt.clone();
                std::thread::Builder::new()
                    .stack_size(16 << 20)
                    .spawn(move || {
                        for _ in 0..500 {
                            rt.eval("n++").expect("eval");
                        }
                    })
                    .expect("thread")
            })
            .collect();
        for h in hs {
            h.join().expect("join");
        }
        assert_eq!(rt.eval("n").expect("eval"), num(2000.0));
        rt.close();
    });
}
