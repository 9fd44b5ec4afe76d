//! Generators shared by the property tests: a deterministic runner and JSON documents with
//! awkward keys (`/`, `~`, empty).
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};

pub fn runner(cases: u32) -> TestRunner {
    // Deterministic: the suite must not depend on the day's random seed.
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

pub const KEYS: &[&str] = &[
    "a", "b", "c", "a/b", "~", "~1", "x~0y", "", "-", "0", "1", "é/ü", "/", "a~b",
];

pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(String::from),
        1 => "[a-c/~01]{0,4}",
    ]
}

pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..10).prop_map(Value::from),
        // Floats never equal an integer, so `test` agrees with the oracle's plain `==`.
        (-3i64..10).prop_map(|i| json!(i as f64 + 0.5)),
        prop::sample::select(vec!["", "x", "y", "a/b", "~0"]).prop_map(Value::from),
    ]
}

pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..7).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A small deterministic RNG for mutations (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn key(&mut self) -> String {
        KEYS[self.below(KEYS.len())].to_owned()
    }
    pub fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(self.below(5)),
            2 => json!(["s", "t", "a/b"][self.below(3)]),
            3 => json!(self.below(2) == 0),
            4 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(4))
                    .map(|_| (self.key(), self.value(depth - 1)))
                    .collect(),
            ),
        }
    }
}

/// One random edit somewhere in the document: a change, an insert, a removal, a new key.
pub fn mutate(doc: &mut Value, rng: &mut Rng) {
    let descend = rng.below(3) != 0;
    match doc {
        Value::Array(a) if descend && !a.is_empty() => {
            let i = rng.below(a.len());
            mutate(&mut a[i], rng);
        }
        Value::Object(m) if descend && !m.is_empty() => {
            let i = rng.below(m.len());
            if let Some((_, v)) = m.iter_mut().nth(i) {
                mutate(v, rng);
            }
        }
        Value::Array(a) => match rng.below(3) {
            0 => {
                let i = rng.below(a.len() + 1);
                a.insert(i, rng.value(2));
            }
            1 if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            _ => *doc = rng.value(2),
        },
        Value::Object(m) => match rng.below(3) {
            0 => {
                m.insert(rng.key(), rng.value(2));
            }
            1 if !m.is_empty() => {
                let i = rng.below(m.len());
                m.shift_remove_index_compat(i);
            }
            _ => *doc = rng.value(2),
        },
        _ => *doc = rng.value(2),
    }
}

pub trait RemoveIndex {
    fn shift_remove_index_compat(&mut self, i: usize);
}

impl RemoveIndex for Map<String, Value> {
    fn shift_remove_index_compat(&mut self, i: usize) {
        if let Some(k) = self.keys().nth(i).cloned() {
            self.shift_remove(&k);
        }
    }
}
