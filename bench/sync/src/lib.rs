//! The state shared by both sides of `bench/sync` (see `bench/sync/README.md`): `{"items": [...]}`
//! with N items `{"id": i, "text": "item i", "done": false, "tags": ["a","b"], "score": i*1.5}`,
//! the same shape `ws_sync_side.py` builds as Python dicts. The timing code is
//! `examples/sync_bench.rs`.

use serde::{Deserialize, Serialize};

/// One list item (field order = the JSON key order on the wire).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    pub text: String,
    pub done: bool,
    pub tags: Vec<String>,
    pub score: f64,
}

/// The synced object: one attribute `items`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub items: Vec<Item>,
}

/// Item `i` of the benchmark state.
pub fn item(i: u64) -> Item {
    Item {
        id: i,
        text: format!("item {i}"),
        done: false,
        tags: vec!["a".into(), "b".into()],
        score: i as f64 * 1.5,
    }
}

/// A state of `n` items.
pub fn state(n: u64) -> State {
    State {
        items: (0..n).map(item).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_json_matches_the_python_side() {
        assert_eq!(
            serde_json::to_string(&item(3)).unwrap(),
            r#"{"id":3,"text":"item 3","done":false,"tags":["a","b"],"score":4.5}"#
        );
        assert_eq!(
            serde_json::to_string(&item(0)).unwrap(),
            r#"{"id":0,"text":"item 0","done":false,"tags":["a","b"],"score":0.0}"#
        );
    }
}
