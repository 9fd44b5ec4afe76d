//! Prints what one `sync` costs for states of 1k/10k/100k items (the shape ws-sync 0.6.9 was
//! first measured with: a list of `{id, name, v, tags[2], ok}`): one changed field, one front
//! insert, no change (plain `sync`: one lockstep diff walk plus dropping the passed value), no
//! change with a revision (`sync_if_changed`), and the typed path (serialize + diff).
//! Run: `cargo run --release -p tether-sync --example sync_timing`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tether_sync::{ConnId, Output, Session, SyncOptions, Synced};

#[derive(Clone, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    v: f64,
    tags: [String; 2],
    ok: bool,
}

#[derive(Clone, Serialize, Deserialize)]
struct State {
    items: Vec<Item>,
}

fn item(i: u64) -> Item {
    Item {
        id: i,
        name: format!("item {i}"),
        v: i as f64 * 0.5,
        tags: ["a".into(), format!("t{}", i % 7)],
        ok: i.is_multiple_of(2),
    }
}

fn state(n: u64) -> State {
    State {
        items: (0..n).map(item).collect(),
    }
}

fn session_with(key: &str, v: Value) -> Session {
    let mut s = Session::default();
    s.register(key, v, SyncOptions::default())
        .expect("register");
    s.handle_connect(ConnId(1));
    while s.poll_output().is_some() {}
    s
}

/// Drains outputs and returns the bytes of the frames written.
fn frame_bytes(s: &mut Session) -> usize {
    let mut n = 0;
    while let Some(out) = s.poll_output() {
        if let Output::Text { text, .. } = out {
            n += text.len();
        }
    }
    n
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn main() {
    println!(
        "{:>7} | {:>24} | {:>24} | {:>14} | {:>14} | {:>22}",
        "N",
        "1 change (time, bytes)",
        "front insert (time, bytes)",
        "no change sync",
        "no change rev",
        "typed 1 change"
    );
    for n in [1_000u64, 10_000, 100_000] {
        let reps = if n >= 100_000 { 5 } else { 21 };
        let base = state(n);
        let base_json = serde_json::to_value(&base).expect("json");

        // One changed field: the app passes a new snapshot Value (already built).
        let mut changed = base_json.clone();
        changed["items"][n as usize / 2]["name"] = json!("changed");
        let (mut t_change, mut b_change) = (Vec::new(), 0);
        for _ in 0..reps {
            let mut s = session_with("K", base_json.clone());
            let v = changed.clone();
            let t = Instant::now();
            s.sync("K", v).expect("sync");
            t_change.push(t.elapsed());
            b_change = frame_bytes(&mut s);
        }

        // One item inserted at the front.
        let mut inserted = base_json.clone();
        if let Some(items) = inserted["items"].as_array_mut() {
            items.insert(0, serde_json::to_value(item(n + 1)).expect("json"));
        }
        let (mut t_insert, mut b_insert) = (Vec::new(), 0);
        for _ in 0..reps {
            let mut s = session_with("K", base_json.clone());
            let v = inserted.clone();
            let t = Instant::now();
            s.sync("K", v).expect("sync");
            t_insert.push(t.elapsed());
            b_insert = frame_bytes(&mut s);
        }

        // No change, plain sync: one deep `==` (the clone is made outside the timing).
        let mut s = session_with("K", base_json.clone());
        let mut t_same = Vec::new();
        for _ in 0..reps {
            let v = base_json.clone();
            let t = Instant::now();
            black_box(s.sync("K", v).expect("sync"));
            t_same.push(t.elapsed());
        }

        // No change with a revision counter: no snapshot is built at all.
        let mut s = session_with("K", base_json.clone());
        s.sync_if_changed("K", 1, || base_json.clone())
            .expect("sync");
        let iters = 1_000_000u32;
        let t = Instant::now();
        for _ in 0..iters {
            black_box(s.sync_if_changed("K", 1, || Value::Null).expect("sync"));
        }
        let t_rev = t.elapsed() / iters;

        // Typed: mutate one field, sync = serialize once + diff.
        let mut ts = Session::default();
        let mut typed =
            Synced::register(&mut ts, "K", base.clone(), SyncOptions::default()).expect("register");
        ts.handle_connect(ConnId(1));
        while ts.poll_output().is_some() {}
        let mut t_typed = Vec::new();
        for r in 0..reps {
            typed.get_mut().items[n as usize / 2].name = format!("typed {r}");
            let t = Instant::now();
            typed.sync(&mut ts).expect("sync");
            t_typed.push(t.elapsed());
            while ts.poll_output().is_some() {}
        }

        println!(
            "{:>7} | {:>14} {:>7} B | {:>14} {:>7} B | {:>14} | {:>14} | {:>22}",
            n,
            fmt(median(t_change)),
            b_change,
            fmt(median(t_insert)),
            b_insert,
            fmt(median(t_same)),
            fmt(t_rev),
            fmt(median(t_typed)),
        );
    }
}
