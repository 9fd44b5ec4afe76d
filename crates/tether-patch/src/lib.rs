//! JSON Patch for sync: a fast diff whose patches stay small (RFC 6902), atomic apply, and
//! RFC 6901 pointers, with a lenient mode for the unescaped paths ws-sync clients send.
//! Pure functions over `serde_json::Value`; no I/O. Spec: `docs/protocol/patch.md`.
//!
//! ```
//! use serde_json::json;
//! use tether_patch::{Mode, PatchOp, apply, apply_with, diff};
//!
//! let before = json!({"items": [1, 2, 3], "title": "a"});
//! let after = json!({"items": [0, 1, 2, 3], "title": "b"});
//! let ops = diff(&before, &after); // one `add` for the front insert, one `replace`
//! assert_eq!(serde_json::to_string(&ops[0]).unwrap(), r#"{"op":"add","path":"/items/0","value":0}"#);
//! let mut doc = before.clone();
//! apply(&mut doc, &ops).unwrap();
//! assert_eq!(doc, after);
//! // A browser client sends the key "a/b" unescaped; lenient mode still finds it.
//! let mut state = json!({"a/b": 1});
//! apply_with(&mut state, &[PatchOp::replace("/a/b", json!(2))], Mode::Lenient).unwrap();
//! assert_eq!(state, json!({"a/b": 2}));
//! ```
//!
//! # Diff
//!
//! [`diff`] emits only `add`, `remove` and `replace`, with escaped paths and explicit array
//! indices, in an order meant to be applied sequentially. Equal subtrees are skipped after one
//! comparison (objects whose keys are in the same order are compared in step, without hashing).
//! Objects: changes to the leading keys both have in the same order, then removed keys (in `a`'s
//! order), then the remaining changed and added keys in `b`'s order (new keys are appended, so the
//! result has `b`'s keys but not necessarily `b`'s key order when keys were reordered; JSON
//! objects are unordered and `Value` equality ignores order).
//! Arrays: the common prefix and suffix are kept, so one insert or one removal anywhere is exactly
//! one op. Of the middle that is left: equal lengths are diffed pair by pair (recursing into
//! objects and arrays); unequal lengths put the surplus `add`s (or descending-index `remove`s) at
//! the start of the middle, or at its end when that pairs up at least as many equal items, and
//! diff the pairs. All scans run front to back (a backward scan over heap-allocated items
//! measured ~4× slower).
//! An array that goes from empty to several items, or back, is one `replace`. No `move`s are
//! emitted: a reversed array is a `replace` per item rather than Python's O(n²) move search.
//!
//! # Apply
//!
//! [`apply`] supports all six ops, `-` for appending, and is atomic: each op logs how to undo
//! itself (old values are moved into the log, not cloned) and a failure rolls back, so the
//! document is unchanged on error and nothing is copied on success. [`PatchError`] names the
//! failing op's index and pointer. `test` compares numbers numerically (`1` equals `1.0`) as
//! RFC 6902 §4.6 asks; the diff itself treats `1` and `1.0` as different (they print differently).
//! Object key order is kept: `remove` shifts later keys rather than swapping in the last one.
//!
//! # Lenient paths ([`Mode::Lenient`])
//!
//! ws-sync's React client joins Immer path segments with `/` without escaping, so a key `a/b`
//! arrives as `/a/b` and `x~y` as `/x~y`. Lenient mode first resolves each pointer strictly; only
//! if that fails, it splits the path on every `/` without decoding and walks the document: at an
//! object the next key is the segment decoded (if valid), else the segment raw, else 2, 3, …
//! raw segments joined with `/` (shortest first), taking the first that exists and lets the rest
//! of the path resolve. At the final position an `add` (or the target of `move`/`copy`) may create
//! a key: all remaining raw segments joined. `/` alone means the whole document for `replace` and
//! `test` when the root has no `""` key (Immer's root replacement). Why this rule: a path that is
//! valid strictly means exactly what RFC 6901 says, so correct clients are never reinterpreted,
//! and the fallback only turns would-be errors into the one reading a raw-key client meant.
//! Paths over [`LENIENT_MAX_SEGMENTS`] segments are only read strictly. A raw key that is also a
//! valid escape (`a~1b`) is ambiguous and is read strictly (`a/b`) when that resolves.
//!
//! # Numbers
//!
//! `serde_json::Value` cannot hold NaN or infinities, so no patch made or applied here contains
//! them (Python ws-sync would emit `NaN` literals that browsers reject).

mod apply;
mod diff;
mod diff_serialize;
mod op;
pub mod pointer;

pub use apply::{ErrorKind, LENIENT_MAX_SEGMENTS, Mode, PatchError, apply, apply_with, json_eq};
pub use diff::{diff, diff_into};
pub use diff_serialize::{DiffSerializeError, diff_serialize, diff_serialize_except};
pub use op::PatchOp;
pub use pointer::PointerError;
