//! Applying a patch in place, atomically: every op records how to undo itself (moving the old
//! values into the log, never cloning them), and a failing op rolls the document back.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};
use thiserror::Error;

use crate::op::PatchOp;
use crate::pointer::{self, PointerError, parse_index};

/// How op paths are read: exactly per RFC 6901, or also as the unescaped paths ws-sync clients send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// RFC 6901 only; what a server must use for patches it produced itself.
    #[default]
    Strict,
    /// Strict first; if that fails, retry the path as unescaped raw keys (see the crate docs).
    Lenient,
}

/// The longest path (in `/`-separated segments) that lenient resolution will search; longer ones
/// are resolved strictly only, which bounds the work an adversarial path can cause.
pub const LENIENT_MAX_SEGMENTS: usize = 64;

/// A patch that could not be applied; the document is unchanged.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("patch op {index} ({op}) failed at {path:?}: {kind}")]
pub struct PatchError {
    /// Position of the failing op in the patch, from 0.
    pub index: usize,
    /// The failing op's name (`"add"`, `"move"`, …).
    pub op: &'static str,
    /// The pointer that failed: the op's `path`, or its `from` when that is what failed.
    pub path: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// Why one op failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The pointer is not valid RFC 6901 syntax (and lenient reading did not help).
    #[error(transparent)]
    Pointer(#[from] PointerError),
    /// No value at the pointer, or no parent to add into.
    #[error("no value at this path")]
    NotFound,
    /// An array was indexed with something that is not a canonical index (or `-` for add).
    #[error("{0:?} is not an array index")]
    BadIndex(String),
    /// An array index past the end (for add: past the length).
    #[error("index {index} is out of bounds for an array of length {len}")]
    OutOfBounds {
        /// The index in the path.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// The path goes through a string, number, bool or null.
    #[error("path goes through a value that is not an object or array")]
    NotContainer,
    /// `remove` (or `move` from) the whole document has no meaning.
    #[error("cannot remove the whole document")]
    RemoveRoot,
    /// `move` whose `from` is a proper prefix of its `path`.
    #[error("cannot move a value into one of its own children")]
    MoveIntoItself,
    /// A `test` op whose value differs.
    #[error("test failed: the value differs")]
    TestFailed,
}

/// Applies a patch strictly (RFC 6902 + RFC 6901); on error the document is left unchanged.
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), PatchError> {
    apply_with(doc, ops, Mode::Strict)
}

/// Applies a patch with the given path [`Mode`]; on error the document is left unchanged.
pub fn apply_with(doc: &mut Value, ops: &[PatchOp], mode: Mode) -> Result<(), PatchError> {
    let mut undo = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        if let Err((path, kind)) = apply_op(doc, op, mode, &mut undo) {
            rollback(doc, undo);
            return Err(PatchError {
                index,
                op: op.name(),
                path: path.to_owned(),
                kind,
            });
        }
    }
    Ok(())
}

/// Compares two JSON values the RFC 6902 `test` way: numbers by numeric value, objects ignoring
/// key order.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn number_eq(x: &Number, y: &Number) -> bool {
    if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
        return p == q;
    }
    if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
        return p == q;
    }
    if x.is_f64() || y.is_f64() {
        return x.as_f64() == y.as_f64();
    }
    // One is a negative i64, the other a u64 above i64::MAX.
    false
}

/// One step from a container to a child, as resolved against the live document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The place an op acts on inside its parent.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Root,
    Key(String),
    Index(usize),
    Append,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Loc {
    parent: Vec<Step>,
    slot: Slot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// The value must exist (remove, replace, test, from).
    Existing,
    /// The parent must exist; the slot may be new (add, move/copy destination).
    Insert,
}

/// How to reverse one change; rolled back last-first. `Restore` and `Remove` leave the value
/// they displace in a carry register that an `Insert` without a value takes (for `move`).
enum Undo {
    Restore {
        parent: Vec<Step>,
        slot: Slot,
        value: Value,
    },
    Remove {
        parent: Vec<Step>,
        slot: Slot,
    },
    Insert {
        parent: Vec<Step>,
        slot: Slot,
        pos: usize,
        value: Option<Value>,
    },
}

type OpResult<'p> = Result<(), (&'p str, ErrorKind)>;

fn apply_op<'p>(
    doc: &mut Value,
    op: &'p PatchOp,
    mode: Mode,
    undo: &mut Vec<Undo>,
) -> OpResult<'p> {
    match op {
        PatchOp::Add { path, value } => {
            let loc = locate(doc, path, Need::Insert, mode, false).map_err(|k| (&**path, k))?;
            let u = add_at(doc, &loc, value.clone()).map_err(|(k, _)| (&**path, k))?;
            undo.push(u);
        }
        PatchOp::Remove { path } => {
            let loc = locate(doc, path, Need::Existing, mode, false).map_err(|k| (&**path, k))?;
            let (value, removed) = remove_at(doc, &loc).map_err(|k| (&**path, k))?;
            undo.push(removed.undo(Some(value)));
        }
        PatchOp::Replace { path, value } => {
            let loc = locate(doc, path, Need::Existing, mode, true).map_err(|k| (&**path, k))?;
            let u = replace_at(doc, &loc, value.clone()).map_err(|k| (&**path, k))?;
            undo.push(u);
        }
        PatchOp::Test { path, value } => {
            let loc = locate(doc, path, Need::Existing, mode, true).map_err(|k| (&**path, k))?;
            let found = get(doc, &loc).ok_or((&**path, ErrorKind::NotFound))?;
            if !json_eq(found, value) {
                return Err((path, ErrorKind::TestFailed));
            }
        }
        PatchOp::Copy { from, path } => {
            let src = locate(doc, from, Need::Existing, mode, false).map_err(|k| (&**from, k))?;
            let value = get(doc, &src)
                .ok_or((&**from, ErrorKind::NotFound))?
                .clone();
            let loc = locate(doc, path, Need::Insert, mode, false).map_err(|k| (&**path, k))?;
            let u = add_at(doc, &loc, value).map_err(|(k, _)| (&**path, k))?;
            undo.push(u);
        }
        PatchOp::Move { from, path } => {
            if from == path {
                // RFC 6902 §4.4 still requires `from` to exist.
                locate(doc, from, Need::Existing, mode, false).map_err(|k| (&**from, k))?;
                return Ok(());
            }
            if path.starts_with(from.as_str()) && path[from.len()..].starts_with('/') {
                return Err((path, ErrorKind::MoveIntoItself));
            }
            let src = locate(doc, from, Need::Existing, mode, false).map_err(|k| (&**from, k))?;
            let (value, removed) = remove_at(doc, &src).map_err(|k| (&**from, k))?;
            let dest = match locate(doc, path, Need::Insert, mode, false) {
                Ok(dest) => dest,
                Err(k) => {
                    undo.push(removed.undo(Some(value)));
                    return Err((path, k));
                }
            };
            match add_at(doc, &dest, value) {
                Ok(u) => {
                    // Rolled back last-first: the add's undo leaves the value in the carry
                    // register, and the re-insert at `from` takes it from there.
                    undo.push(removed.undo(None));
                    undo.push(u);
                }
                Err((k, value)) => {
                    undo.push(removed.undo(Some(value)));
                    return Err((path, k));
                }
            }
        }
    }
    Ok(())
}

fn locate(
    doc: &Value,
    path: &str,
    need: Need,
    mode: Mode,
    root_alias: bool,
) -> Result<Loc, ErrorKind> {
    match strict_locate(doc, path, need) {
        Ok(loc) => Ok(loc),
        Err(e) if mode == Mode::Lenient => lenient_locate(doc, path, need, root_alias).ok_or(e),
        Err(e) => Err(e),
    }
}

fn strict_locate(doc: &Value, path: &str, need: Need) -> Result<Loc, ErrorKind> {
    let mut tokens = pointer::parse(path)?;
    let Some(last) = tokens.pop() else {
        return Ok(Loc {
            parent: Vec::new(),
            slot: Slot::Root,
        });
    };
    let mut node = doc;
    let mut parent = Vec::with_capacity(tokens.len());
    for token in tokens {
        match node {
            Value::Object(m) => {
                node = m.get(&token).ok_or(ErrorKind::NotFound)?;
                parent.push(Step::Key(token));
            }
            Value::Array(a) => {
                let i = parse_index(&token).ok_or_else(|| ErrorKind::BadIndex(token.clone()))?;
                node = a.get(i).ok_or(ErrorKind::OutOfBounds {
                    index: i,
                    len: a.len(),
                })?;
                parent.push(Step::Index(i));
            }
            _ => return Err(ErrorKind::NotContainer),
        }
    }
    let slot = match node {
        Value::Object(m) => {
            if need == Need::Existing && !m.contains_key(&last) {
                return Err(ErrorKind::NotFound);
            }
            Slot::Key(last)
        }
        Value::Array(a) => array_slot(a, &last, need)?,
        _ => return Err(ErrorKind::NotContainer),
    };
    Ok(Loc { parent, slot })
}

fn array_slot(a: &[Value], token: &str, need: Need) -> Result<Slot, ErrorKind> {
    if token == "-" {
        return match need {
            Need::Insert => Ok(Slot::Append),
            Need::Existing => Err(ErrorKind::NotFound),
        };
    }
    let i = parse_index(token).ok_or_else(|| ErrorKind::BadIndex(token.to_owned()))?;
    let limit = match need {
        Need::Existing => a.len(),
        Need::Insert => a.len() + 1,
    };
    if i < limit {
        Ok(Slot::Index(i))
    } else {
        Err(ErrorKind::OutOfBounds {
            index: i,
            len: a.len(),
        })
    }
}

/// The lenient rule (crate docs, `docs/protocol/patch.md`): split the path on every `/` without
/// decoding, then walk from the root. At an object, a key is taken from the next segment decoded
/// (RFC 6901), else that segment raw, else the next 2, 3, … raw segments joined with `/`; the first
/// candidate whose subtree resolves the rest of the path wins (shortest join first). At the last
/// key an `add` may name a new key: the remaining raw segments joined (decoded if valid and one
/// segment). Arrays take canonical indices only. `/` alone names the root for replace and test
/// when the root has no `""` key.
fn lenient_locate(doc: &Value, path: &str, need: Need, root_alias: bool) -> Option<Loc> {
    let rest = path.strip_prefix('/')?;
    if root_alias && rest.is_empty() && !doc.as_object().is_some_and(|m| m.contains_key("")) {
        return Some(Loc {
            parent: Vec::new(),
            slot: Slot::Root,
        });
    }
    let raw: Vec<&str> = rest.split('/').collect();
    if raw.len() > LENIENT_MAX_SEGMENTS {
        return None;
    }
    let mut parent = Vec::new();
    let slot = lenient_walk(doc, &raw, 0, need, &mut parent)?;
    Some(Loc { parent, slot })
}

fn lenient_walk(
    node: &Value,
    raw: &[&str],
    i: usize,
    need: Need,
    steps: &mut Vec<Step>,
) -> Option<Slot> {
    let n = raw.len();
    let seg = *raw.get(i)?;
    match node {
        Value::Array(a) => {
            if i + 1 == n {
                return array_slot(a, seg, need).ok();
            }
            let idx = parse_index(seg)?;
            descend(a.get(idx)?, Step::Index(idx), raw, i + 1, need, steps)
        }
        Value::Object(m) => {
            let mut joined = String::from(seg);
            for j in (i + 1)..=n {
                let mut cands: Vec<Cow<'_, str>> = Vec::with_capacity(2);
                if j == i + 1 {
                    if let Ok(decoded) = pointer::unescape(seg) {
                        cands.push(decoded);
                    }
                    if cands.first().is_none_or(|c| c != seg) {
                        cands.push(Cow::Borrowed(seg));
                    }
                } else {
                    joined.push('/');
                    joined.push_str(raw[j - 1]);
                    cands.push(Cow::Borrowed(joined.as_str()));
                }
                if j == n {
                    if let Some(hit) = cands.iter().find(|c| m.contains_key(c.as_ref())) {
                        return Some(Slot::Key(hit.clone().into_owned()));
                    }
                    return match (need, cands.first()) {
                        (Need::Insert, Some(c)) => Some(Slot::Key(c.clone().into_owned())),
                        _ => None,
                    };
                }
                for c in &cands {
                    if let Some(child) = m.get(c.as_ref()) {
                        let step = Step::Key(c.clone().into_owned());
                        if let Some(slot) = descend(child, step, raw, j, need, steps) {
                            return Some(slot);
                        }
                    }
                }
            }
            None
        }
        _ => None,
    }
}

fn descend(
    child: &Value,
    step: Step,
    raw: &[&str],
    next: usize,
    need: Need,
    steps: &mut Vec<Step>,
) -> Option<Slot> {
    if !matches!(child, Value::Object(_) | Value::Array(_)) {
        return None;
    }
    steps.push(step);
    let found = lenient_walk(child, raw, next, need, steps);
    if found.is_none() {
        steps.pop();
    }
    found
}

fn walk<'a>(doc: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let mut node = doc;
    for step in steps {
        node = match (node, step) {
            (Value::Object(m), Step::Key(k)) => m.get(k)?,
            (Value::Array(a), Step::Index(i)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn walk_mut<'a>(doc: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut node = doc;
    for step in steps {
        node = match (node, step) {
            (Value::Object(m), Step::Key(k)) => m.get_mut(k)?,
            (Value::Array(a), Step::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn get<'a>(doc: &'a Value, loc: &Loc) -> Option<&'a Value> {
    let parent = walk(doc, &loc.parent)?;
    match (parent, &loc.slot) {
        (_, Slot::Root) => Some(parent),
        (Value::Object(m), Slot::Key(k)) => m.get(k),
        (Value::Array(a), Slot::Index(i)) => a.get(*i),
        _ => None,
    }
}

/// Adds at a located slot; gives the value back if the location turned out stale.
fn add_at(doc: &mut Value, loc: &Loc, value: Value) -> Result<Undo, (ErrorKind, Value)> {
    let parent_steps = loc.parent.clone();
    if loc.slot == Slot::Root {
        let old = std::mem::replace(doc, value);
        return Ok(Undo::Restore {
            parent: parent_steps,
            slot: Slot::Root,
            value: old,
        });
    }
    let Some(parent) = walk_mut(doc, &loc.parent) else {
        return Err((ErrorKind::NotFound, value));
    };
    match (parent, &loc.slot) {
        (Value::Object(m), Slot::Key(k)) => match m.get_mut(k) {
            Some(slot) => {
                let old = std::mem::replace(slot, value);
                Ok(Undo::Restore {
                    parent: parent_steps,
                    slot: Slot::Key(k.clone()),
                    value: old,
                })
            }
            None => {
                m.insert(k.clone(), value);
                Ok(Undo::Remove {
                    parent: parent_steps,
                    slot: Slot::Key(k.clone()),
                })
            }
        },
        (Value::Array(a), Slot::Index(i)) if *i <= a.len() => {
            a.insert(*i, value);
            Ok(Undo::Remove {
                parent: parent_steps,
                slot: Slot::Index(*i),
            })
        }
        (Value::Array(a), Slot::Append) => {
            let i = a.len();
            a.push(value);
            Ok(Undo::Remove {
                parent: parent_steps,
                slot: Slot::Index(i),
            })
        }
        _ => Err((ErrorKind::NotFound, value)),
    }
}

/// Where a removed value was: enough to put it back.
struct Removed {
    parent: Vec<Step>,
    slot: Slot,
    pos: usize,
}

impl Removed {
    /// The undo entry; `None` takes the value from the carry register at rollback (for `move`).
    fn undo(self, value: Option<Value>) -> Undo {
        Undo::Insert {
            parent: self.parent,
            slot: self.slot,
            pos: self.pos,
            value,
        }
    }
}

/// Removes at a located slot, keeping object key order.
fn remove_at(doc: &mut Value, loc: &Loc) -> Result<(Value, Removed), ErrorKind> {
    if loc.slot == Slot::Root {
        return Err(ErrorKind::RemoveRoot);
    }
    let parent = walk_mut(doc, &loc.parent).ok_or(ErrorKind::NotFound)?;
    let (value, pos) = match (parent, &loc.slot) {
        (Value::Object(m), Slot::Key(k)) => {
            let pos = m.keys().position(|x| x == k).ok_or(ErrorKind::NotFound)?;
            (m.shift_remove(k).ok_or(ErrorKind::NotFound)?, pos)
        }
        (Value::Array(a), Slot::Index(i)) if *i < a.len() => (a.remove(*i), *i),
        _ => return Err(ErrorKind::NotFound),
    };
    Ok((
        value,
        Removed {
            parent: loc.parent.clone(),
            slot: loc.slot.clone(),
            pos,
        },
    ))
}

fn replace_at(doc: &mut Value, loc: &Loc, value: Value) -> Result<Undo, ErrorKind> {
    let target = if loc.slot == Slot::Root {
        doc
    } else {
        let parent = walk_mut(doc, &loc.parent).ok_or(ErrorKind::NotFound)?;
        match (parent, &loc.slot) {
            (Value::Object(m), Slot::Key(k)) => m.get_mut(k).ok_or(ErrorKind::NotFound)?,
            (Value::Array(a), Slot::Index(i)) => a.get_mut(*i).ok_or(ErrorKind::NotFound)?,
            _ => return Err(ErrorKind::NotFound),
        }
    };
    let old = std::mem::replace(target, value);
    Ok(Undo::Restore {
        parent: loc.parent.clone(),
        slot: loc.slot.clone(),
        value: old,
    })
}

/// Reverses the logged changes, last first. Every entry was recorded against the document as it
/// was right after that change, so each step finds its place; a miss (impossible by construction)
/// is skipped rather than panicking.
fn rollback(doc: &mut Value, undo: Vec<Undo>) {
    let mut carry: Option<Value> = None;
    for entry in undo.into_iter().rev() {
        match entry {
            Undo::Restore {
                parent,
                slot,
                value,
            } => {
                if slot == Slot::Root {
                    carry = Some(std::mem::replace(doc, value));
                    continue;
                }
                let target = match (walk_mut(doc, &parent), &slot) {
                    (Some(Value::Object(m)), Slot::Key(k)) => m.get_mut(k),
                    (Some(Value::Array(a)), Slot::Index(i)) => a.get_mut(*i),
                    _ => None,
                };
                carry = target.map(|t| std::mem::replace(t, value));
            }
            Undo::Remove { parent, slot } => {
                carry = match (walk_mut(doc, &parent), &slot) {
                    (Some(Value::Object(m)), Slot::Key(k)) => m.shift_remove(k),
                    (Some(Value::Array(a)), Slot::Index(i)) if *i < a.len() => Some(a.remove(*i)),
                    _ => None,
                };
            }
            Undo::Insert {
                parent,
                slot,
                pos,
                value,
            } => {
                let Some(value) = value.or_else(|| carry.take()) else {
                    continue;
                };
                match (walk_mut(doc, &parent), slot) {
                    (Some(Value::Object(m)), Slot::Key(k)) => {
                        insert_at(m, pos, k, value);
                    }
                    (Some(Value::Array(a)), Slot::Index(i)) if i <= a.len() => a.insert(i, value),
                    _ => {}
                }
            }
        }
    }
}

fn insert_at(m: &mut Map<String, Value>, pos: usize, key: String, value: Value) {
    let pos = pos.min(m.len());
    m.shift_insert(pos, key, value);
}

#[cfg(test)]
mod tests;
