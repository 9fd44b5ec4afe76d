//! tether's side of `bench/sync`: what one sync of an N-item state costs, printed as JSON lines
//! (one per path and scenario) for `bench/sync/summarize.py`. Run through `bench/sync/run.sh`, or
//! `cargo run --release -p tether-sync-bench --example sync_bench -- N REPS`.
//!
//! Paths, each on its own connected `Session` whose output is drained (frames kept as strings,
//! which is what the adapter writes):
//! * `sync`: the app holds a typed `State`; one sync = `serde_json::to_value(&state)` +
//!   `Session::sync(key, value)` (lockstep diff against the baseline + `_PATCH` frame encode)
//!   + draining the output. No revision, so "no change" still serializes and compares.
//! * `typed`: `Synced<State>` (`get_mut` bumps the revision; `Synced::sync` =
//!   `try_sync_if_changed`). Changed: serialize + diff + encode; unchanged: the revision compare,
//!   timed over batches of calls and reported per call.
//! * `serialize`: `serde_json::to_value(&state)` alone, for the breakdown.
//!
//! Scenarios: `change` (the `text` of the middle item), `insert` (one item at the front; removed
//! again and synced untimed after each rep so every rep sees N items), `none` (no change).

use std::hint::black_box;
use std::time::Instant;

use serde_json::Value;
use tether_sync::{ConnId, Output, Session, SyncOptions, Synced};
use tether_sync_bench::{State, item, state};

const KEY: &str = "ITEMS";

struct Frame {
    ops: usize,
    bytes: usize,
}

/// Drains the session's output; the `_PATCH` frame if one was queued.
fn drain(s: &mut Session) -> Option<String> {
    let mut frame = None;
    while let Some(out) = s.poll_output() {
        if let Output::Text { text, .. } = out {
            frame = Some(text);
        }
    }
    frame
}

/// Ops count and size of a `_PATCH:ITEMS` frame (parsed outside the timing).
fn inspect(frame: Option<&str>) -> Frame {
    let Some(text) = frame else {
        return Frame { ops: 0, bytes: 0 };
    };
    let v: Value = serde_json::from_str(text).expect("frame is JSON");
    assert_eq!(v["type"], "_PATCH:ITEMS", "unexpected frame {text}");
    Frame {
        ops: v["data"].as_array().map_or(0, Vec::len),
        bytes: text.len(),
    }
}

fn connected(f: impl FnOnce(&mut Session)) -> Session {
    let mut s = Session::default();
    f(&mut s);
    s.handle_connect(ConnId(1));
    drain(&mut s);
    s
}

#[derive(Default)]
struct Samples {
    ns: Vec<u128>,
    frame: Option<String>,
}

impl Samples {
    fn push(&mut self, t: Instant, frame: Option<String>) {
        self.ns.push(t.elapsed().as_nanos());
        self.frame = frame;
    }

    fn print(mut self, path: &str, n: u64, scenario: &str) -> Option<String> {
        self.ns.sort_unstable();
        let f = inspect(self.frame.as_deref());
        println!(
            r#"{{"side":"tether","path":"{path}","n":{n},"scenario":"{scenario}","reps":{},"median_ns":{},"min_ns":{},"max_ns":{},"ops":{},"bytes":{}}}"#,
            self.ns.len(),
            self.ns[self.ns.len() / 2],
            self.ns[0],
            self.ns[self.ns.len() - 1],
            f.ops,
            f.bytes
        );
        self.frame
    }
}

/// Plain `Session::sync` with a snapshot serialized from the typed value.
fn plain(n: u64, reps: usize) -> [Option<String>; 2] {
    let mut st: State = state(n);
    let mut s = connected(|s| {
        s.register(
            KEY,
            serde_json::to_value(&st).expect("json"),
            SyncOptions::default(),
        )
        .expect("register")
    });
    let sync = |s: &mut Session, st: &State| {
        let v = serde_json::to_value(st).expect("json");
        let sent = s.sync(KEY, v).expect("sync");
        (sent, drain(s))
    };
    let mid = n as usize / 2;
    let warm = 2;

    let mut change = Samples::default();
    for r in 0..reps + warm {
        st.items[mid].text = format!("changed {r}");
        let t = Instant::now();
        let (sent, frame) = sync(&mut s, &st);
        if r >= warm {
            change.push(t, frame);
        }
        assert!(sent);
    }
    let change = change.print("sync", n, "change");

    let mut insert = Samples::default();
    for r in 0..reps + warm {
        st.items.insert(0, item(n + 1 + r as u64));
        let t = Instant::now();
        let (sent, frame) = sync(&mut s, &st);
        if r >= warm {
            insert.push(t, frame);
        }
        assert!(sent);
        st.items.remove(0);
        assert!(sync(&mut s, &st).0);
    }
    let insert = insert.print("sync", n, "insert");

    let mut none = Samples::default();
    for r in 0..reps + warm {
        let t = Instant::now();
        let (sent, frame) = sync(&mut s, &st);
        if r >= warm {
            none.push(t, frame);
        }
        assert!(!sent);
    }
    none.print("sync", n, "none");

    // Breakdown: `serde_json::to_value` alone (the dropped value's free is not timed).
    let mut ser = Samples::default();
    for r in 0..reps + warm {
        let t = Instant::now();
        let v = black_box(serde_json::to_value(&st).expect("json"));
        if r >= warm {
            ser.push(t, None);
        }
        drop(v);
    }
    ser.print("serialize", n, "none");
    [change, insert]
}

/// `Synced<State>` with its revision counter.
fn typed(n: u64, reps: usize) -> [Option<String>; 2] {
    let mut typed = None;
    let mut s = connected(|s| {
        typed = Some(Synced::register(s, KEY, state(n), SyncOptions::default()).expect("register"));
    });
    let mut typed = typed.expect("registered");
    let mid = n as usize / 2;
    let warm = 2;

    let mut change = Samples::default();
    for r in 0..reps + warm {
        typed.get_mut().items[mid].text = format!("changed {r}");
        let t = Instant::now();
        let sent = typed.sync(&mut s).expect("sync");
        let frame = drain(&mut s);
        if r >= warm {
            change.push(t, frame);
        }
        assert!(sent);
    }
    let change = change.print("typed", n, "change");

    let mut insert = Samples::default();
    for r in 0..reps + warm {
        typed.get_mut().items.insert(0, item(n + 1 + r as u64));
        let t = Instant::now();
        let sent = typed.sync(&mut s).expect("sync");
        let frame = drain(&mut s);
        if r >= warm {
            insert.push(t, frame);
        }
        assert!(sent);
        typed.get_mut().items.remove(0);
        assert!(typed.sync(&mut s).expect("sync"));
        drain(&mut s);
    }
    let insert = insert.print("typed", n, "insert");

    // No change: the revision did not move; per call over batches of calls.
    let (batches, calls) = (21, 100_000u32);
    let mut per_call = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..calls {
            black_box(typed.sync(black_box(&mut s)).expect("sync"));
        }
        per_call.push(t.elapsed().as_nanos() as f64 / f64::from(calls));
        assert!(!s.has_output());
    }
    per_call.sort_by(f64::total_cmp);
    println!(
        r#"{{"side":"tether","path":"typed","n":{n},"scenario":"none","reps":{batches},"calls_per_rep":{calls},"median_ns":{:.2},"min_ns":{:.2},"max_ns":{:.2},"ops":0,"bytes":0}}"#,
        per_call[batches / 2],
        per_call[0],
        per_call[batches - 1]
    );
    [change, insert]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(51);
    let a = plain(n, reps);
    let b = typed(n, reps);
    // Both paths put the same frames on the wire.
    assert_eq!(a, b, "sync and typed paths sent different frames");
}
