//! Prints diff and apply timings for 1k/10k/100k-item documents: one field changed, one item
//! inserted at the front, nothing changed; with op counts, and json-patch's diff for comparison.
//! Also compares the atomic apply (undo log) with clone-then-apply. Not a test: numbers vary.
//!
//! Run: `cargo run --release -p tether-patch --example diff_timing`

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tether_patch::{PatchOp, apply, diff};

/// The state shape used in the ws-sync measurements: N dicts with five fields.
fn doc(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"id": i, "name": format!("item {i}"), "v": i * 3, "tags": ["a", "b"], "ok": i % 2 == 0}))
        .collect();
    json!({"title": "bench", "items": items})
}

/// Best time of repeated runs (at least 3, up to ~300 ms in total).
fn best<T>(mut f: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    let started = Instant::now();
    let mut runs = 0;
    while runs < 3 || (started.elapsed() < Duration::from_millis(300) && runs < 1000) {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn main() {
    println!(
        "| items | edit | tether diff | ops | bytes | json_patch::diff | its ops | apply (undo log) | clone + apply |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in [1_000, 10_000, 100_000] {
        let a = doc(n);
        let mut changed = a.clone();
        changed["items"][n / 2]["name"] = json!("changed");
        let mut front = a.clone();
        if let Some(items) = front["items"].as_array_mut() {
            items.insert(
                0,
                json!({"id": -1, "name": "new", "v": 0, "tags": [], "ok": true}),
            );
        }
        let same = a.clone();
        for (edit, b) in [
            ("one change", &changed),
            ("front insert", &front),
            ("no change", &same),
        ] {
            let ops = diff(&a, b);
            let bytes = serde_json::to_string(&ops).map(|s| s.len()).unwrap_or(0);
            let ours = best(|| diff(&a, b));
            let theirs_ops = json_patch::diff(&a, b).len();
            let theirs = best(|| json_patch::diff(&a, b));
            // Atomic apply as shipped (undo log), on fresh copies so only `apply` is timed.
            let apply_only = {
                let mut docs: Vec<Value> = (0..5).map(|_| a.clone()).collect();
                docs.iter_mut()
                    .map(|d| {
                        let t = Instant::now();
                        let res = apply(d, &ops);
                        let el = t.elapsed();
                        assert!(res.is_ok());
                        el
                    })
                    .min()
                    .unwrap_or_default()
            };
            let clone_apply = best(|| {
                let mut copy = a.clone();
                let res = apply(&mut copy, &ops);
                (copy, res)
            });
            println!(
                "| {n} | {edit} | {} | {} | {bytes} | {} | {theirs_ops} | {} | {} |",
                fmt(ours),
                ops.len(),
                fmt(theirs),
                fmt(apply_only),
                fmt(clone_apply)
            );
        }
    }

    // Rollback cost: a patch that changes every 10th item and then fails.
    println!();
    println!("| items | failing patch | ops before failure | apply + rollback | clone alone |");
    println!("|---|---|---|---|---|");
    for n in [1_000, 10_000, 100_000] {
        let a = doc(n);
        let mut ops: Vec<PatchOp> = (0..n)
            .step_by(10)
            .map(|i| PatchOp::replace(format!("/items/{i}/v"), json!(0)))
            .collect();
        let count = ops.len();
        ops.push(PatchOp::test("/title", json!("not the title")));
        let mut docs: Vec<Value> = (0..5).map(|_| a.clone()).collect();
        let rollback = docs
            .iter_mut()
            .map(|d| {
                let t = Instant::now();
                let res = apply(d, &ops);
                let el = t.elapsed();
                assert!(res.is_err());
                el
            })
            .min()
            .unwrap_or_default();
        let clone = best(|| a.clone());
        println!(
            "| {n} | replace every 10th item, then a failing test | {count} | {} | {} |",
            fmt(rollback),
            fmt(clone)
        );
    }
}
