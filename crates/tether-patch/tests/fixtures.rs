//! Golden fixtures shared with the Python and JavaScript checks (`tests/patch/`):
//! `tests/fixtures/patch/cases.json` (our diffs, which peers must apply to get `after`) and
//! `tests/fixtures/patch/client.json` (unescaped client patches and what lenient mode makes of
//! them). This test checks both files; `TETHER_BLESS=1` rewrites them instead.

use std::path::PathBuf;

use serde_json::{Value, json};
use tether_patch::{Mode, PatchOp, apply, apply_with, diff};

fn fixture_dir() -> PathBuf {
    // Read when the test runs, not compiled in: cargo reuses a test binary built in another
    // checkout that shares the target dir, and that checkout may be gone.
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/fixtures/patch")
}

/// One case per line: readable diffs in review, even with a 4,700-item array.
fn render(cases: &[Value]) -> String {
    let mut out = String::from("[\n");
    for (i, case) in cases.iter().enumerate() {
        out.push_str(&serde_json::to_string(case).unwrap());
        out.push_str(if i + 1 < cases.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

fn check_or_bless(file: &str, text: &str) {
    let path = fixture_dir().join(file);
    if std::env::var_os("TETHER_BLESS").is_some() {
        std::fs::create_dir_all(fixture_dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with TETHER_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        on_disk == text,
        "{} is stale; run `TETHER_BLESS=1 cargo test -p tether-patch --test fixtures` and review the diff",
        path.display()
    );
}

fn items(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"id": i})).collect()
}

/// (name, before, after) pairs; the patch is always our diff.
fn diff_cases() -> Vec<(&'static str, Value, Value)> {
    let big = items(4700);
    let mut big_front = big.clone();
    big_front.insert(0, json!({"id": -1}));
    let mid = items(300);
    let mut mid_removed = mid.clone();
    mid_removed.remove(150);
    let mut mid_field = mid.clone();
    mid_field[123]["id"] = json!("edited");
    let mut deep_a = json!(0);
    let mut deep_b = json!(1);
    for i in 0..30 {
        let k = format!("d{i}");
        deep_a = json!({ k.clone(): deep_a, "same": i });
        deep_b = json!({ k: deep_b, "same": i });
    }
    vec![
        (
            "equal",
            json!({"a": [1, {"b": null}]}),
            json!({"a": [1, {"b": null}]}),
        ),
        (
            "scalar-replace",
            json!({"title": "a", "count": 1, "ok": true}),
            json!({"title": "b", "count": 2, "ok": true}),
        ),
        (
            "ws-sync-notes",
            json!({"notes": [], "total": 0}),
            json!({"notes": ["hello"], "total": 1}),
        ),
        (
            "running-tasks",
            json!({"runningTasks": ["LONG"], "value": 3}),
            json!({"runningTasks": [], "value": 3}),
        ),
        (
            "keys-added-removed",
            json!({"keep": 1, "gone": 2, "alsoGone": {"x": 1}}),
            json!({"keep": 1, "new": {"nested": [1, 2]}, "another": null}),
        ),
        (
            "key-escaping",
            json!({"a/b": 1, "m~n": 2, "~1": 3, "/": 4, "": 5, "x/y~z": {"~0/": [1]}}),
            json!({"a/b": 10, "m~n": 20, "~1": 30, "/": 40, "": 50, "x/y~z": {"~0/": [1, 2]}, "new/key~": 6}),
        ),
        (
            "key-escaping-remove",
            json!({"a/b": 1, "c~d": 2, "keep": 3}),
            json!({"keep": 3}),
        ),
        (
            "nested-arrays",
            json!({"grid": [[1, 2, 3], [4, [5, 6]], []], "m": [[{"k": [1]}]]}),
            json!({"grid": [[0, 1, 2, 3], [4, [5, 6, 7]], [8]], "m": [[{"k": [1, 2]}], []]}),
        ),
        (
            "array-append",
            json!({"l": [1, 2]}),
            json!({"l": [1, 2, 3]}),
        ),
        (
            "array-prepend",
            json!({"l": [1, 2]}),
            json!({"l": [0, 1, 2]}),
        ),
        (
            "array-remove-front",
            json!({"l": [1, 2, 3]}),
            json!({"l": [2, 3]}),
        ),
        (
            "array-remove-middle",
            json!({"l": [1, 2, 3]}),
            json!({"l": [1, 3]}),
        ),
        (
            "array-truncate",
            json!({"l": [1, 2, 3, 4, 5]}),
            json!({"l": [1, 2]}),
        ),
        (
            "array-extend",
            json!({"l": [1]}),
            json!({"l": [1, 2, 3, 4]}),
        ),
        (
            "array-fill-from-empty",
            json!({"l": []}),
            json!({"l": [1, 2, 3]}),
        ),
        ("array-empty", json!({"l": [1, 2, 3]}), json!({"l": []})),
        (
            "array-repeated-items",
            json!([7, 7, 7]),
            json!([7, 7, 7, 7]),
        ),
        (
            "array-insert-and-change",
            json!([1, 2, 3, 4, 5]),
            json!([1, "x", 2, 3, 4, "y"]),
        ),
        (
            "array-reverse",
            json!({"l": [1, 2, 3, 4, 5, 6]}),
            json!({"l": [6, 5, 4, 3, 2, 1]}),
        ),
        (
            "array-item-field",
            json!({"l": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}),
            json!({"l": [{"id": 1, "v": "a"}, {"id": 2, "v": "c"}]}),
        ),
        (
            "type-changes",
            json!({"a": 1, "b": [1], "c": null, "d": {"x": 1}, "e": "s", "f": true}),
            json!({"a": "1", "b": {"0": 1}, "c": {}, "d": [1], "e": 1.5, "f": 1}),
        ),
        ("root-replace", json!([1, 2]), json!({"a": 1})),
        ("root-scalar", json!("before"), json!("after")),
        (
            "unicode",
            json!({"名前": "太郎", "emoji": "😀", "é/ü": ["ß"]}),
            json!({"名前": "花子", "emoji": "😀🎉", "é/ü": ["ß", "ø"], "\u{2028}": "line sep"}),
        ),
        (
            "numbers",
            json!({"i": 1, "neg": -5, "f": 0.1, "big": 9007199254740991_i64, "exp": 1e300}),
            json!({"i": 2, "neg": -6, "f": 0.2, "big": 9007199254740990_i64, "exp": 1e-300}),
        ),
        ("deep-nesting", deep_a, deep_b),
        (
            "front-insert-4700",
            json!({"room": "main", "items": big}),
            json!({"room": "main", "items": big_front}),
        ),
        (
            "middle-remove-300",
            json!({"items": mid.clone()}),
            json!({"items": mid_removed}),
        ),
        (
            "field-change-300",
            json!({"items": mid}),
            json!({"items": mid_field}),
        ),
    ]
}

/// Client patches as ws-sync-react sends them (raw keys joined with `/`, `/` for the root) and
/// the document lenient mode makes of them. `tests/patch/check_lenient.mjs` checks each against
/// the client's own edit made with real Immer, and `check_jsonpatch.py --client` against ws-sync.
fn client_cases() -> Vec<(&'static str, Value, Value, Value)> {
    vec![
        (
            "escaped-path",
            json!({"a/b": 1}),
            json!([{"op": "replace", "path": "/a~1b", "value": 2}]),
            json!({"a/b": 2}),
        ),
        (
            "raw-slash-key",
            json!({"files": {"src/main.rs": "old"}}),
            json!([{"op": "replace", "path": "/files/src/main.rs", "value": "new"}]),
            json!({"files": {"src/main.rs": "new"}}),
        ),
        (
            "raw-tilde-key",
            json!({"x~y": 1, "a~1b": 2}),
            json!([
                {"op": "replace", "path": "/x~y", "value": 10},
                {"op": "remove", "path": "/a~1b"}
            ]),
            json!({"x~y": 10}),
        ),
        (
            "raw-new-key",
            json!({"files": {}}),
            json!([{"op": "add", "path": "/files/docs/readme.md", "value": "# hi"}]),
            json!({"files": {"docs/readme.md": "# hi"}}),
        ),
        (
            "strict-reading-wins",
            json!({"a": {"b": 1}, "a/b": 2}),
            json!([{"op": "replace", "path": "/a/b", "value": 3}]),
            json!({"a": {"b": 3}, "a/b": 2}),
        ),
        (
            "backtrack-to-raw-key",
            json!({"a": {"x": 1}, "a/b": {"c": 1}}),
            json!([{"op": "replace", "path": "/a/b/c", "value": 2}]),
            json!({"a": {"x": 1}, "a/b": {"c": 2}}),
        ),
        (
            "shortest-join-first",
            json!({"a/b": {"c/d": 1}, "a/b/c": {"d": 1}}),
            json!([{"op": "replace", "path": "/a/b/c/d", "value": 2}]),
            json!({"a/b": {"c/d": 2}, "a/b/c": {"d": 1}}),
        ),
        (
            "raw-key-then-array",
            json!({"by/id": {"items": [{"k~v": 1}]}}),
            json!([{"op": "add", "path": "/by/id/items/1", "value": {"k~v": 2}}]),
            json!({"by/id": {"items": [{"k~v": 1}, {"k~v": 2}]}}),
        ),
        (
            "root-replace-slash",
            json!({"count": 1}),
            json!([{"op": "replace", "path": "/", "value": {"count": 2}}]),
            json!({"count": 2}),
        ),
        (
            // What Immer 10 emits for `l.length = 2; l[0] = 0` (tests/patch/check_lenient.mjs).
            "immer-array-shrink",
            json!({"l": [1, 2, 3, 4]}),
            json!([
                {"op": "replace", "path": "/l/0", "value": 0},
                {"op": "remove", "path": "/l/3"},
                {"op": "remove", "path": "/l/2"}
            ]),
            json!({"l": [0, 2]}),
        ),
    ]
}

#[test]
fn cases_json_is_current_and_correct() {
    let mut cases = Vec::new();
    for (name, before, after) in diff_cases() {
        let patch = diff(&before, &after);
        let mut doc = before.clone();
        apply(&mut doc, &patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc, after, "{name}");
        cases.push(json!({"name": name, "before": before, "after": after, "patch": patch}));
    }
    // The headline numbers: one insert or removal in 4,700 items is one op.
    let ops_of = |name: &str| {
        cases.iter().find(|c| c["name"] == name).unwrap()["patch"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(ops_of("equal"), 0);
    assert_eq!(ops_of("front-insert-4700"), 1);
    assert_eq!(ops_of("middle-remove-300"), 1);
    assert_eq!(ops_of("field-change-300"), 1);
    check_or_bless("cases.json", &render(&cases));
}

#[test]
fn client_json_is_current_and_correct() {
    let mut cases = Vec::new();
    for (name, before, patch, after) in client_cases() {
        let ops: Vec<PatchOp> = serde_json::from_value(patch.clone()).unwrap();
        let mut doc = before.clone();
        apply_with(&mut doc, &ops, Mode::Lenient).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc, after, "{name}");
        cases.push(json!({"name": name, "before": before, "patch": patch, "after": after}));
    }
    check_or_bless("client.json", &render(&cases));
}
