//! A fast, small diff: equal subtrees are skipped with one `==`, objects are compared key by key,
//! and arrays keep their common prefix and suffix so one insert or removal anywhere is one op.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::op::PatchOp;
use crate::pointer::push_token;

/// Computes ops that turn `a` into `b` (applied in order); empty when `a == b`.
///
/// Ops use only `add`, `remove` and `replace`, with RFC 6901-escaped paths and explicit array
/// indices (never `-`), so fast-json-patch and Python `jsonpatch` apply them as they are.
/// Array strategy (see the crate docs): strip the common prefix and suffix; an equal-length middle
/// is diffed pair by pair; otherwise the surplus items are added or removed at whichever end of
/// the middle leaves more equal pairs, and the pairs are diffed. No moves are emitted.
pub fn diff(a: &Value, b: &Value) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    diff_into(a, b, &mut String::new(), &mut ops);
    ops
}

/// Like [`diff`], but appends to `ops` with every path prefixed by `path` (an escaped pointer),
/// for callers that diff one member of a larger document.
pub fn diff_into(a: &Value, b: &Value, path: &mut String, ops: &mut Vec<PatchOp>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => diff_object(x, y, path, ops),
        (Value::Array(x), Value::Array(y)) => diff_array(x, y, path, ops),
        _ if same(a, b) => {}
        _ => ops.push(PatchOp::replace(path.clone(), b.clone())),
    }
}

fn diff_object(
    x: &Map<String, Value>,
    y: &Map<String, Value>,
    path: &mut String,
    ops: &mut Vec<PatchOp>,
) {
    let len = path.len();
    // Fast path: snapshots made by the same code keep their key order, so walk both maps in
    // step while the keys agree (no hashing); fall back to lookups from the first disagreement.
    let mut lockstep = 0;
    for ((kx, vx), (ky, vy)) in x.iter().zip(y) {
        if kx != ky {
            break;
        }
        diff_child(vx, vy, kx, path, ops);
        lockstep += 1;
    }
    if lockstep == x.len() && lockstep == y.len() {
        return;
    }
    for key in x.keys().skip(lockstep) {
        if !y.contains_key(key) {
            push_token(path, key);
            ops.push(PatchOp::remove(path.clone()));
            path.truncate(len);
        }
    }
    for (key, vb) in y.iter().skip(lockstep) {
        match x.get(key) {
            Some(va) => diff_child(va, vb, key, path, ops),
            None => {
                push_token(path, key);
                ops.push(PatchOp::add(path.clone(), vb.clone()));
                path.truncate(len);
            }
        }
    }
}

/// Diffs one member: containers of the same kind are recursed into directly (that walk costs
/// what an `==` would), anything else is compared first.
fn diff_child(a: &Value, b: &Value, key: &str, path: &mut String, ops: &mut Vec<PatchOp>) {
    let recurse = matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    );
    if recurse || !same(a, b) {
        let len = path.len();
        push_token(path, key);
        diff_into(a, b, path, ops);
        path.truncate(len);
    }
}

fn diff_array(x: &[Value], y: &[Value], path: &mut String, ops: &mut Vec<PatchOp>) {
    let pre = x.iter().zip(y).take_while(|(p, q)| same(p, q)).count();
    let (xr, yr) = (&x[pre..], &y[pre..]);
    let len = path.len();
    let at = |path: &mut String, i: usize| {
        path.truncate(len);
        let _ = write!(path, "/{i}");
    };
    if xr.len() == yr.len() {
        // Same length: pair by pair (a common suffix needs no separate pass).
        for (i, (p, q)) in xr.iter().zip(yr).enumerate() {
            if !same(p, q) {
                at(path, pre + i);
                diff_into(p, q, path, ops);
            }
        }
        path.truncate(len);
        return;
    }
    // Emptied or filled from empty: one replace instead of n adds or removes.
    if x.is_empty() || y.is_empty() {
        if x.len() + y.len() > 1 {
            ops.push(PatchOp::replace(path.clone(), Value::Array(y.to_vec())));
        } else if let Some(v) = y.first() {
            ops.push(PatchOp::add(format!("{path}/0"), v.clone()));
        } else {
            ops.push(PatchOp::remove(format!("{path}/0")));
        }
        return;
    }
    // Pairs aligned at the end (the surplus sits before them). Scanned forwards, which is several
    // times faster than walking back from the end; the trailing run of equal pairs is the common
    // suffix, and the rest tells whether this alignment beats aligning at the start.
    let surplus = xr.len().abs_diff(yr.len());
    let (dx, dy) = if xr.len() > yr.len() {
        (surplus, 0)
    } else {
        (0, surplus)
    };
    let m = xr.len().min(yr.len());
    let tail_equal: Vec<bool> = (0..m).map(|i| same(&xr[i + dx], &yr[i + dy])).collect();
    let suf = tail_equal.iter().rev().take_while(|e| **e).count();
    let pairs = m - suf;
    let (xm, ym) = (&xr[..xr.len() - suf], &yr[..yr.len() - suf]);
    let tail_eq = tail_equal[..pairs].iter().filter(|e| **e).count();
    let head_equal: Vec<bool> = if pairs > 0 && tail_eq < pairs {
        (0..pairs).map(|i| same(&xm[i], &ym[i])).collect()
    } else {
        Vec::new()
    };
    let tail = head_equal.iter().filter(|e| **e).count() < tail_eq || head_equal.is_empty();
    if tail {
        // Surplus first, then the pairs (xm[i + dx], ym[i + dy]) at index pre + dy + i.
        if ym.len() > xm.len() {
            for (j, v) in ym[..surplus].iter().enumerate() {
                at(path, pre + j);
                ops.push(PatchOp::add(path.clone(), v.clone()));
            }
        } else {
            for j in (0..surplus).rev() {
                at(path, pre + j);
                ops.push(PatchOp::remove(path.clone()));
            }
        }
        for i in (0..pairs).filter(|&i| !tail_equal[i]) {
            at(path, pre + dy + i);
            diff_into(&xm[i + dx], &ym[i + dy], path, ops);
        }
    } else {
        // Pairs first, at index pre + i, then the surplus after them.
        for i in (0..pairs).filter(|&i| !head_equal[i]) {
            at(path, pre + i);
            diff_into(&xm[i], &ym[i], path, ops);
        }
        if ym.len() > xm.len() {
            for (j, v) in ym.iter().enumerate().skip(pairs) {
                at(path, pre + j);
                ops.push(PatchOp::add(path.clone(), v.clone()));
            }
        } else {
            for j in (pairs..xm.len()).rev() {
                at(path, pre + j);
                ops.push(PatchOp::remove(path.clone()));
            }
        }
    }
    path.truncate(len);
}

/// `Value` equality (objects ignore key order; numbers by representation), faster for the common
/// case of objects whose keys are in the same order: they are compared in step, without hashing.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            for ((kx, vx), (ky, vy)) in x.iter().zip(y) {
                if kx != ky {
                    return x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)));
                }
                if !same(vx, vy) {
                    return false;
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply;
    use serde_json::json;

    fn check(a: Value, b: Value) -> Vec<PatchOp> {
        let ops = diff(&a, &b);
        let mut c = a.clone();
        apply(&mut c, &ops).unwrap();
        assert_eq!(c, b, "ops {ops:?}");
        ops
    }

    #[test]
    fn equal_documents_give_no_ops() {
        let doc = json!({"a": [1, {"b": null}], "c": "x"});
        assert!(diff(&doc, &doc.clone()).is_empty());
        assert!(diff(&json!(1), &json!(1)).is_empty());
    }

    #[test]
    fn scalars_and_type_changes_are_replaced() {
        assert_eq!(
            check(json!(1), json!("1")),
            vec![PatchOp::replace("", json!("1"))]
        );
        assert_eq!(
            check(json!({"a": 1}), json!({"a": 1.0})),
            vec![PatchOp::replace("/a", json!(1.0))]
        );
        assert_eq!(
            check(json!({"a": [1]}), json!({"a": {"0": 1}})),
            vec![PatchOp::replace("/a", json!({"0": 1}))]
        );
    }

    #[test]
    fn objects_key_by_key_with_escaping() {
        let ops = check(
            json!({"keep": 1, "gone": 2, "x/y~z": {"n": 1}}),
            json!({"keep": 1, "x/y~z": {"n": 2}, "new": [1], "a/b": 3}),
        );
        assert_eq!(
            ops,
            vec![
                PatchOp::remove("/gone"),
                PatchOp::replace("/x~1y~0z/n", json!(2)),
                PatchOp::add("/new", json!([1])),
                PatchOp::add("/a~1b", json!(3)),
            ]
        );
    }

    #[test]
    fn one_insert_or_removal_is_one_op() {
        let a: Vec<Value> = (0..100).map(|i| json!({"id": i})).collect();
        for at in [0, 1, 50, 99, 100] {
            let mut b = a.clone();
            b.insert(at, json!({"id": "new"}));
            let ops = check(json!({"l": a}), json!({"l": b}));
            assert_eq!(
                ops,
                vec![PatchOp::add(format!("/l/{at}"), json!({"id": "new"}))]
            );
        }
        for at in [0, 1, 50, 99] {
            let mut b = a.clone();
            b.remove(at);
            let ops = check(json!({"l": a}), json!({"l": b}));
            assert_eq!(ops, vec![PatchOp::remove(format!("/l/{at}"))]);
        }
    }

    #[test]
    fn repeated_items_still_one_op() {
        assert_eq!(
            check(json!([7, 7, 7]), json!([7, 7, 7, 7])),
            vec![PatchOp::add("/3", json!(7))]
        );
        assert_eq!(
            check(json!([7, 7, 7]), json!([7, 7])),
            vec![PatchOp::remove("/2")]
        );
    }

    #[test]
    fn changed_item_recurses() {
        assert_eq!(
            check(json!([{"a": 1, "b": 2}, 3]), json!([{"a": 1, "b": 5}, 3])),
            vec![PatchOp::replace("/0/b", json!(5))]
        );
    }

    #[test]
    fn insert_plus_change_uses_tail_alignment() {
        let ops = check(json!([1, 2, 3, 4, 5]), json!([1, "x", 2, 3, 4, "y"]));
        assert_eq!(
            ops,
            vec![
                PatchOp::add("/1", json!("x")),
                PatchOp::replace("/5", json!("y"))
            ]
        );
        let ops = check(json!([1, "x", 2, 3, 4, 5]), json!([1, 2, 3, 4, "y"]));
        assert_eq!(
            ops,
            vec![PatchOp::remove("/1"), PatchOp::replace("/4", json!("y"))]
        );
    }

    #[test]
    fn surplus_at_end_when_head_alignment_wins() {
        let ops = check(json!([1, 2, 3, 9]), json!([1, "a", 3, "b", "c"]));
        assert_eq!(
            ops,
            vec![
                PatchOp::replace("/1", json!("a")),
                PatchOp::replace("/3", json!("b")),
                PatchOp::add("/4", json!("c")),
            ]
        );
        let ops = check(json!([1, 2, 3, "a", "b", "c"]), json!([1, "x", "y"]));
        assert_eq!(
            ops,
            vec![
                PatchOp::replace("/1", json!("x")),
                PatchOp::replace("/2", json!("y")),
                PatchOp::remove("/5"),
                PatchOp::remove("/4"),
                PatchOp::remove("/3"),
            ]
        );
    }

    #[test]
    fn emptying_or_filling_an_array_is_one_replace() {
        assert_eq!(
            check(json!({"l": []}), json!({"l": [1, 2, 3]})),
            vec![PatchOp::replace("/l", json!([1, 2, 3]))]
        );
        assert_eq!(
            check(json!({"l": [1, 2, 3]}), json!({"l": []})),
            vec![PatchOp::replace("/l", json!([]))]
        );
        assert_eq!(
            check(json!([]), json!([1])),
            vec![PatchOp::add("/0", json!(1))]
        );
    }

    #[test]
    fn reordered_keys_are_equal() {
        assert!(check(json!({"a": 1, "b": [2]}), json!({"b": [2], "a": 1})).is_empty());
        assert_eq!(
            check(
                json!({"a": 1, "b": 2, "c": 3}),
                json!({"c": 3, "a": 1, "b": 5})
            ),
            vec![PatchOp::replace("/b", json!(5))]
        );
    }

    #[test]
    fn same_matches_value_equality() {
        let values = [
            json!(null),
            json!(1),
            json!(1.0),
            json!("1"),
            json!([1, 2]),
            json!([2, 1]),
            json!({"a": 1, "b": {"c": [1]}}),
            json!({"b": {"c": [1]}, "a": 1}),
            json!({"b": {"c": [1]}, "x": 1}),
            json!({"a": 1}),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(same(a, b), a == b, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn diff_into_prefixes_paths() {
        let mut ops = Vec::new();
        diff_into(
            &json!({"a": 1}),
            &json!({"a": 2}),
            &mut "/root~1x".to_owned(),
            &mut ops,
        );
        assert_eq!(ops, vec![PatchOp::replace("/root~1x/a", json!(2))]);
    }
}
