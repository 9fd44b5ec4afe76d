//! The diffing serializer against its oracles: `serde_json::to_value` for the final snapshot
//! (key order included), `apply` for the ops, and `diff` for op counts of single array edits.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tether_patch::{PatchOp, apply, diff, diff_serialize, diff_serialize_except};

mod common;
use common::Rng;
use common::*;

/// Diffs `b` into a copy of `a` and checks the snapshot and the ops against the oracles.
fn check<T: Serialize + ?Sized>(a: &Value, b: &T) -> Vec<PatchOp> {
    let want = serde_json::to_value(b).expect("to_value");
    let mut snap = a.clone();
    let mut ops = Vec::new();
    diff_serialize(&mut snap, b, &mut ops).expect("diff_serialize");
    assert_eq!(snap, want, "snapshot");
    assert_eq!(
        serde_json::to_string(&snap).ok(),
        serde_json::to_string(&want).ok(),
        "key order"
    );
    let mut doc = a.clone();
    apply(&mut doc, &ops).expect("apply");
    assert_eq!(doc, want, "apply({a}, {ops:?})");
    ops
}

#[test]
fn random_pairs_round_trip() {
    runner(2000)
        .run(&(value(), value()), |(a, b)| {
            check(&a, &b);
            check(&b, &a);
            check(&a, &a);
            Ok(())
        })
        .expect("property");
}

#[test]
fn mutations_round_trip() {
    runner(2000)
        .run(&(value(), any::<u64>(), 1..4usize), |(a, seed, edits)| {
            let mut rng = Rng(seed);
            let mut b = a.clone();
            for _ in 0..edits {
                mutate(&mut b, &mut rng);
            }
            check(&a, &b);
            check(&b, &a);
            Ok(())
        })
        .expect("property");
}

#[test]
fn single_array_edits_cost_what_diff_costs() {
    runner(2000)
        .run(
            &(prop::collection::vec(value(), 1..12), any::<u64>()),
            |(items, seed)| {
                let mut rng = Rng(seed);
                let a = Value::Array(items.clone());
                let mut items = items;
                match rng.below(3) {
                    0 => {
                        let i = rng.below(items.len() + 1);
                        items.insert(i, rng.value(2));
                    }
                    1 => {
                        let i = rng.below(items.len());
                        items.remove(i);
                    }
                    _ => {
                        let i = rng.below(items.len());
                        items[i] = rng.value(2);
                    }
                }
                let b = Value::Array(items);
                let ops = check(&a, &b);
                prop_assert_eq!(ops.len(), diff(&a, &b).len(), "{} -> {}: {:?}", a, b, ops);
                prop_assert!(
                    ops.len() <= 1 || a.as_array().map(Vec::len) == b.as_array().map(Vec::len)
                );
                Ok(())
            },
        )
        .expect("property");
}

#[test]
fn one_insert_or_removal_in_a_long_array_is_one_op() {
    let a: Vec<Value> = (0..100).map(|i| json!({"id": i, "t": [i, "x"]})).collect();
    for at in [0, 1, 50, 99, 100] {
        let mut b = a.clone();
        b.insert(at, json!({"id": -1}));
        let ops = check(&Value::Array(a.clone()), &b);
        assert_eq!(ops, [PatchOp::add(format!("/{at}"), json!({"id": -1}))]);
        let ops = check(&Value::Array(b), &a);
        assert_eq!(ops, [PatchOp::remove(format!("/{at}"))]);
    }
    let mut b = a.clone();
    b[42]["t"][1] = json!("y");
    let ops = check(&Value::Array(a), &b);
    assert_eq!(ops, [PatchOp::replace("/42/t/1", json!("y"))]);
}

#[derive(Clone, Serialize)]
struct Unit;

#[derive(Clone, Serialize)]
struct Meters(f64);

#[derive(Clone, Serialize)]
struct Pair(u8, String);

#[derive(Clone, Serialize)]
enum Kind {
    Plain,
    Tagged(String),
    Point(i32, i32),
    Task { done: bool, title: String },
}

#[derive(Clone, Serialize)]
struct Item {
    id: u64,
    text: String,
    kind: Kind,
    note: Option<String>,
}

#[derive(Clone, Serialize)]
struct State {
    items: Vec<Item>,
    by_name: HashMap<String, u32>,
    sorted: BTreeMap<u32, Vec<String>>,
    score: f64,
    big: u64,
    small: i8,
    initial: char,
    raw: Vec<u8>,
    bytes: &'static [u8],
    unit: (),
    unit_struct: Unit,
    length: Meters,
    pair: Pair,
    #[serde(skip_serializing_if = "Option::is_none")]
    maybe: Option<Box<State>>,
}

fn item(i: u64) -> Item {
    let kind = match i % 4 {
        0 => Kind::Plain,
        1 => Kind::Tagged(format!("t{i}")),
        2 => Kind::Point(i as i32, -1),
        _ => Kind::Task {
            done: false,
            title: format!("task {i}"),
        },
    };
    Item {
        id: i,
        text: format!("item {i}"),
        kind,
        note: i.is_multiple_of(2).then(|| "n".to_owned()),
    }
}

fn state() -> State {
    State {
        items: (0..8).map(item).collect(),
        by_name: HashMap::from([("a".to_owned(), 1), ("b/c".to_owned(), 2)]),
        sorted: BTreeMap::from([(1, vec!["x".to_owned()]), (2, vec![])]),
        score: 0.5,
        big: u64::MAX,
        small: -3,
        initial: 'é',
        raw: vec![1, 2, 255],
        bytes: b"hi",
        unit: (),
        unit_struct: Unit,
        length: Meters(1.5),
        pair: Pair(1, "p".to_owned()),
        maybe: None,
    }
}

/// One named change to the typed state.
type Edit = fn(&mut State);

#[test]
fn typed_edits_match_to_value() {
    let s0 = state();
    let base = serde_json::to_value(&s0).expect("to_value");
    let edits: Vec<(&str, Edit)> = vec![
        ("nothing", |_| {}),
        ("nan", |s| s.score = f64::NAN),
        ("infinity", |s| s.score = f64::INFINITY),
        ("big", |s| s.big = u64::MAX - 1),
        ("char", |s| s.initial = 'z'),
        ("raw", |s| s.raw.push(7)),
        ("raw changed", |s| s.raw[0] = 9),
        ("item text", |s| s.items[3].text = "changed".to_owned()),
        ("front insert", |s| s.items.insert(0, item(100))),
        ("removal", |s| {
            s.items.remove(5);
        }),
        ("append", |s| s.items.push(item(101))),
        ("cleared", |s| s.items.clear()),
        ("variant field", |s| {
            s.items[3].kind = Kind::Task {
                done: true,
                title: "task 3".to_owned(),
            }
        }),
        ("variant changed", |s| {
            s.items[0].kind = Kind::Tagged("x".to_owned())
        }),
        ("tuple variant", |s| s.items[2].kind = Kind::Point(7, -1)),
        ("newtype variant", |s| {
            s.items[1].kind = Kind::Tagged("y".to_owned())
        }),
        ("unit variant", |s| s.items[1].kind = Kind::Plain),
        ("option", |s| s.items[0].note = None),
        ("hashmap", |s| {
            s.by_name.insert("z".to_owned(), 9);
            s.by_name.remove("a");
        }),
        ("btreemap", |s| {
            s.sorted.insert(0, vec!["front".to_owned()]);
        }),
        ("newtype", |s| s.length = Meters(2.0)),
        ("tuple struct", |s| s.pair = Pair(2, "q".to_owned())),
        ("nested some", |s| s.maybe = Some(Box::new(state()))),
    ];
    for (name, edit) in edits {
        let mut s = s0.clone();
        edit(&mut s);
        let ops = check(&base, &s);
        if name == "nothing" {
            assert!(ops.is_empty());
        }
        if [
            "item text",
            "front insert",
            "removal",
            "append",
            "variant field",
            "char",
        ]
        .contains(&name)
        {
            assert_eq!(ops.len(), 1, "{name}: {ops:?}");
        }
        // And back, and from a snapshot of another type.
        check(&serde_json::to_value(&s).expect("to_value"), &s0);
        check(&json!([1, {"x": null}]), &s);
        check(&json!(null), &s);
    }
}

#[test]
fn key_order_follows_the_new_value() {
    let a = json!({"b": 1, "a": 2, "c": 3});
    let b: Map<String, Value> = [("a", 2), ("b", 1), ("d", 4)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    let ops = check(&a, &b);
    assert_eq!(ops.len(), 2, "{ops:?}"); // remove c, add d
}

#[test]
fn errors_are_reported_and_the_snapshot_stays_consistent() {
    let mut snap = json!({"m": {}, "x": 1});
    let mut ops = Vec::new();
    #[derive(Serialize)]
    struct Bad {
        x: u8,
        m: HashMap<Vec<u8>, u8>,
    }
    let bad = Bad {
        x: 2,
        m: HashMap::from([(vec![1], 1)]),
    };
    let before = snap.clone();
    assert!(diff_serialize(&mut snap, &bad, &mut ops).is_err());
    let mut doc = before;
    apply(&mut doc, &ops).expect("apply");
    assert_eq!(doc, snap, "snapshot = old + ops so far");
}

#[test]
fn except_skips_a_top_level_key() {
    let mut snap = json!({"a": 1});
    let mut ops = Vec::new();
    let new = json!({"a": 2, "running": ["t"]});
    diff_serialize_except(&mut snap, &new, Some("running"), &mut ops).expect("diff");
    assert_eq!(snap, json!({"a": 2}));
    assert_eq!(ops, [PatchOp::replace("/a", json!(2))]);
    let mut snap = json!(null);
    diff_serialize_except(&mut snap, &new, Some("running"), &mut ops).expect("diff");
    assert_eq!(snap, json!({"a": 2}));
}
