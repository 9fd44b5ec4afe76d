//! A diffing serializer: walks a `Serialize` value through serde's data model and compares it
//! with an existing JSON snapshot in place, so an unchanged subtree is never allocated and a sync
//! of a large typed state costs one read-only walk plus the changed parts.
//!
//! Semantics follow [`serde_json::to_value`], which is the oracle: after success the snapshot
//! equals `to_value(new)` including object key order, and the ops turn the old snapshot into it.

use std::collections::HashSet;
use std::fmt::Display;
use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::{self, SerializeMap as _, Serializer as _};
use serde_json::{Map, Value};

use crate::diff::diff_into;
use crate::op::PatchOp;
use crate::pointer::push_token;

/// A `Serialize` impl failed or produced something JSON cannot hold (e.g. a non-string map key).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DiffSerializeError(String);

impl ser::Error for DiffSerializeError {
    fn custom<M: Display>(msg: M) -> Self {
        Self(msg.to_string())
    }
}

impl From<serde_json::Error> for DiffSerializeError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

type Result<T, E = DiffSerializeError> = std::result::Result<T, E>;

/// Diffs `new` against `snapshot` while serializing it, updating `snapshot` in place to equal
/// `serde_json::to_value(new)` and appending the ops that do the same to `ops`.
///
/// Ops are `add`, `remove` and `replace` with escaped paths and explicit indices, meant to be
/// applied in order, like [`diff`](crate::diff). Unchanged subtrees are compared without
/// allocating. Objects: changed members are diffed in place, new keys are `add`ed, missing keys
/// `remove`d; if the key order changed the snapshot's members are re-ordered (one rebuild of that
/// object). An enum variant that changed, or a node whose JSON type changed, is one `replace`.
/// Arrays with serde's length hint: equal lengths are diffed item by item; a length change is
/// aligned as a run of inserted (or removed) items after the common prefix with the rest matching
/// the old suffix, so one insert or removal anywhere is one op; any other shape (and sequences
/// without a length hint, or to/from empty) falls back to serializing that array and [`diff`]ing
/// it, which gives exactly `diff`'s ops for it.
///
/// On error `snapshot` may be partly updated, but it always equals the old snapshot with the ops
/// appended so far applied, so the caller can still send those ops (or resend the whole state).
///
/// [`diff`]: crate::diff
pub fn diff_serialize<T: Serialize + ?Sized>(
    snapshot: &mut Value,
    new: &T,
    ops: &mut Vec<PatchOp>,
) -> Result<()> {
    diff_serialize_except(snapshot, new, None, ops)
}

/// Like [`diff_serialize`], but a top-level object member named `except` is skipped, as if it
/// had been removed from `to_value(new)` (for engine-owned keys the snapshot must not carry).
pub fn diff_serialize_except<T: Serialize + ?Sized>(
    snapshot: &mut Value,
    new: &T,
    except: Option<&str>,
    ops: &mut Vec<PatchOp>,
) -> Result<()> {
    let mut path = String::new();
    new.serialize(DiffSer {
        node: snapshot,
        path: &mut path,
        ops,
        except,
    })
}

fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value> {
    Ok(serde_json::to_value(v)?)
}

/// serde_json's own serializer into `Value`, used for leaves and changed subtrees.
fn json() -> serde_json::value::Serializer {
    serde_json::value::Serializer
}

type JsonVec = <serde_json::value::Serializer as ser::Serializer>::SerializeSeq;
type JsonTupleVariant = <serde_json::value::Serializer as ser::Serializer>::SerializeTupleVariant;
type JsonMap = <serde_json::value::Serializer as ser::Serializer>::SerializeMap;
type JsonStructVariant = <serde_json::value::Serializer as ser::Serializer>::SerializeStructVariant;

/// Turns a map key into its JSON object key exactly as serde_json does (strings, numbers, bools,
/// chars, unit variants; anything else is an error).
fn key_string<K: Serialize + ?Sized>(key: &K) -> Result<String> {
    let mut m = json().serialize_map(Some(1))?;
    m.serialize_key(key)?;
    m.serialize_value(&())?;
    match m.end()? {
        Value::Object(o) => o
            .into_iter()
            .next()
            .map(|(k, _)| k)
            .ok_or_else(|| DiffSerializeError("map key vanished".to_owned())),
        _ => Err(DiffSerializeError("map key is not a string".to_owned())),
    }
}

/// Writes the `replace` op and the new value when `new` differs from the node.
fn set(node: &mut Value, path: &str, ops: &mut Vec<PatchOp>, new: Value) {
    if *node != new {
        ops.push(PatchOp::replace(path, new.clone()));
        *node = new;
    }
}

fn strip(mut v: Value, except: Option<&str>) -> Value {
    if let (Some(k), Value::Object(m)) = (except, &mut v) {
        m.shift_remove(k);
    }
    v
}

/// A variant's inner node with the path (tag pushed) and the op list.
type Inner<'a> = (&'a mut Value, &'a mut String, &'a mut Vec<PatchOp>);

struct DiffSer<'a> {
    node: &'a mut Value,
    path: &'a mut String,
    ops: &'a mut Vec<PatchOp>,
    /// A top-level key to leave out (only set at the root).
    except: Option<&'a str>,
}

fn internal() -> DiffSerializeError {
    DiffSerializeError("internal error: snapshot node changed shape".to_owned())
}

impl<'a> DiffSer<'a> {
    fn leaf(self, new: serde_json::Result<Value>) -> Result<()> {
        set(self.node, self.path, self.ops, strip(new?, self.except));
        Ok(())
    }

    /// The node is `{variant: inner}` with `inner` passing `kind`: the inner node, tag pushed.
    fn variant_inner(
        self,
        variant: &'static str,
        kind: fn(&Value) -> bool,
    ) -> std::result::Result<Result<Inner<'a>>, Self> {
        let fits = matches!(&*self.node, Value::Object(m) if m.len() == 1 && m.get(variant).is_some_and(kind));
        if !fits {
            return Err(self);
        }
        let DiffSer {
            node, path, ops, ..
        } = self;
        let inner = match node {
            Value::Object(m) => m.get_mut(variant),
            _ => None,
        };
        Ok(match inner {
            Some(inner) => {
                push_token(path, variant);
                Ok((inner, path, ops))
            }
            None => Err(internal()),
        })
    }
}

/// The compound serializers of [`DiffSer`]: in place, or building a fresh `Value` to replace a
/// node whose type (or enum variant) changed.
enum Compound<'a> {
    Seq(SeqDiff<'a>),
    Map(MapDiff<'a>),
    BuildSeq(Build<'a, JsonVec>),
    BuildTupleVariant(Build<'a, JsonTupleVariant>),
    BuildMap(Build<'a, JsonMap>),
    BuildStructVariant(Build<'a, JsonStructVariant>),
}

struct Build<'a, S> {
    node: &'a mut Value,
    path: &'a mut String,
    ops: &'a mut Vec<PatchOp>,
    except: Option<&'a str>,
    inner: S,
}

impl<'a, S> Build<'a, S> {
    fn new(d: DiffSer<'a>, inner: S) -> Self {
        Self {
            node: d.node,
            path: d.path,
            ops: d.ops,
            except: d.except,
            inner,
        }
    }

    fn finish(self, end: impl FnOnce(S) -> serde_json::Result<Value>) -> Result<()> {
        let v = end(self.inner)?;
        set(self.node, self.path, self.ops, strip(v, self.except));
        Ok(())
    }
}

enum SeqState {
    /// Same length: each differing item is diffed in place.
    Positional,
    /// Length changed, no differing item seen yet.
    Prefix,
    /// Length changed; the run starting at `p` is inserted (values buffered here) or removed.
    Shifted { p: usize, inserted: Vec<Value> },
    /// Fallback: all new items serialized, diffed at the end.
    Collect(Vec<Value>),
}

struct SeqDiff<'a> {
    arr: &'a mut Vec<Value>,
    path: &'a mut String,
    ops: &'a mut Vec<PatchOp>,
    /// The announced new length, the old length, and the index of the next item.
    n: usize,
    m: usize,
    i: usize,
    state: SeqState,
    /// Path bytes to drop at the end (a variant's tag).
    pop: usize,
}

impl<'a> SeqDiff<'a> {
    fn new(
        arr: &'a mut Vec<Value>,
        path: &'a mut String,
        ops: &'a mut Vec<PatchOp>,
        len: Option<usize>,
        pop: usize,
    ) -> Self {
        let m = arr.len();
        let state = match len {
            Some(n) if n == m => SeqState::Positional,
            Some(n) if n > 0 && m > 0 => SeqState::Prefix,
            // To or from empty (one op, as `diff` does), or no length hint.
            _ => SeqState::Collect(Vec::with_capacity(len.unwrap_or(0))),
        };
        Self {
            arr,
            path,
            ops,
            n: len.unwrap_or(0),
            m,
            i: 0,
            state,
            pop,
        }
    }

    fn d(&self) -> isize {
        self.n as isize - self.m as isize
    }

    /// The new items before index `i`: equal old items (in place or shifted) and buffered inserts.
    fn known(&mut self) -> Vec<Value> {
        let (i, d) = (self.i, self.d());
        match std::mem::replace(&mut self.state, SeqState::Prefix) {
            SeqState::Positional | SeqState::Prefix => self.arr[..i].to_vec(),
            SeqState::Shifted { p, mut inserted } => {
                let mut out = Vec::with_capacity(self.n.max(i + 1));
                out.extend_from_slice(&self.arr[..p]);
                out.append(&mut inserted);
                for j in out.len()..i {
                    out.push(self.arr[(j as isize - d) as usize].clone());
                }
                out
            }
            SeqState::Collect(v) => v,
        }
    }

    fn collect<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let mut items = self.known();
        items.push(to_value(value)?);
        self.state = SeqState::Collect(items);
        Ok(())
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let (i, d) = (self.i, self.d());
        match self.state {
            SeqState::Positional => {
                if i >= self.m {
                    self.collect(value)?;
                } else if !value.serialize(EqSer(&self.arr[i]))? {
                    let len = self.path.len();
                    let _ = write!(self.path, "/{i}");
                    value.serialize(DiffSer {
                        node: &mut self.arr[i],
                        path: self.path,
                        ops: self.ops,
                        except: None,
                    })?;
                    self.path.truncate(len);
                }
            }
            SeqState::Prefix => {
                if i < self.m && value.serialize(EqSer(&self.arr[i]))? {
                    // still the common prefix
                } else if d > 0 {
                    self.state = SeqState::Shifted {
                        p: i,
                        inserted: vec![to_value(value)?],
                    };
                } else {
                    self.state = SeqState::Shifted {
                        p: i,
                        inserted: Vec::new(),
                    };
                    self.shifted(value, i, d)?;
                }
            }
            SeqState::Shifted { p, .. } if d > 0 && (i as isize) < p as isize + d => {
                let v = to_value(value)?;
                if let SeqState::Shifted { inserted, .. } = &mut self.state {
                    inserted.push(v);
                }
            }
            SeqState::Shifted { .. } => self.shifted(value, i, d)?,
            SeqState::Collect(ref mut items) => items.push(to_value(value)?),
        }
        self.i += 1;
        Ok(())
    }

    /// Past the inserted/removed run: item `i` must equal old item `i - d`, else fall back.
    fn shifted<T: Serialize + ?Sized>(&mut self, value: &T, i: usize, d: isize) -> Result<()> {
        let j = i as isize - d;
        let equal =
            j >= 0 && (j as usize) < self.m && value.serialize(EqSer(&self.arr[j as usize]))?;
        if !equal {
            self.collect(value)?;
        }
        Ok(())
    }

    fn index_op(&mut self, j: usize, op: impl FnOnce(String) -> PatchOp) {
        let len = self.path.len();
        let _ = write!(self.path, "/{j}");
        self.ops.push(op(self.path.clone()));
        self.path.truncate(len);
    }

    fn end(mut self) -> Result<()> {
        let i = self.i;
        match std::mem::replace(&mut self.state, SeqState::Prefix) {
            SeqState::Positional if i == self.m => {}
            SeqState::Prefix if i <= self.m => {
                // Every item matched the old prefix: the old tail goes.
                for j in (i..self.m).rev() {
                    self.index_op(j, PatchOp::remove);
                }
                self.arr.truncate(i);
            }
            SeqState::Shifted { p, inserted } if i == self.n => {
                if self.n > self.m {
                    for (k, v) in inserted.iter().enumerate() {
                        self.index_op(p + k, |path| PatchOp::add(path, v.clone()));
                    }
                    self.arr.splice(p..p, inserted);
                } else {
                    let gone = self.m - self.n;
                    for j in (p..p + gone).rev() {
                        self.index_op(j, PatchOp::remove);
                    }
                    self.arr.drain(p..p + gone);
                }
            }
            state => {
                // Fallback (also when the length hint did not hold): diff the whole array.
                self.state = state;
                let new = Value::Array(self.known());
                let old = Value::Array(std::mem::take(self.arr));
                diff_into(&old, &new, self.path, self.ops);
                if let Value::Array(items) = new {
                    *self.arr = items;
                }
            }
        }
        let len = self.path.len();
        self.path.truncate(len - self.pop);
        Ok(())
    }
}

struct MapDiff<'a> {
    map: &'a mut Map<String, Value>,
    path: &'a mut String,
    ops: &'a mut Vec<PatchOp>,
    /// Keys in serialized order, to find removed keys and a changed order at the end.
    keys: Vec<String>,
    /// A map key waiting for its value.
    key: Option<String>,
    except: Option<&'a str>,
    pop: usize,
}

impl<'a> MapDiff<'a> {
    fn new(
        map: &'a mut Map<String, Value>,
        path: &'a mut String,
        ops: &'a mut Vec<PatchOp>,
        except: Option<&'a str>,
        pop: usize,
    ) -> Self {
        Self {
            map,
            path,
            ops,
            keys: Vec::new(),
            key: None,
            except,
            pop,
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<()> {
        if self.except == Some(key.as_str()) {
            return Ok(());
        }
        let len = self.path.len();
        push_token(self.path, &key);
        match self.map.get_mut(&key) {
            Some(node) => value.serialize(DiffSer {
                node,
                path: self.path,
                ops: self.ops,
                except: None,
            })?,
            None => {
                let v = to_value(value)?;
                self.ops.push(PatchOp::add(self.path.clone(), v.clone()));
                self.map.insert(key.clone(), v);
            }
        }
        self.path.truncate(len);
        self.keys.push(key);
        Ok(())
    }

    fn end(self) -> Result<()> {
        let MapDiff {
            map,
            path,
            ops,
            keys,
            pop,
            ..
        } = self;
        let in_order = map.len() == keys.len() && map.keys().zip(&keys).all(|(a, b)| a == b);
        if !in_order {
            {
                let seen: HashSet<&str> = keys.iter().map(String::as_str).collect();
                let len = path.len();
                for k in map.keys().filter(|k| !seen.contains(k.as_str())) {
                    push_token(path, k);
                    ops.push(PatchOp::remove(path.clone()));
                    path.truncate(len);
                }
                map.retain(|k, _| seen.contains(k.as_str()));
            }
            if !map.keys().eq(keys.iter()) {
                // Re-order to the serialized order: one rebuild of this object.
                let mut old = std::mem::take(map);
                for k in keys {
                    if let Some(v) = old.swap_remove(&k) {
                        map.insert(k, v);
                    }
                }
            }
        }
        let len = path.len();
        path.truncate(len - pop);
        Ok(())
    }
}

impl<'a> ser::Serializer for DiffSer<'a> {
    type Ok = ();
    type Error = DiffSerializeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.leaf(json().serialize_bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.leaf(json().serialize_i8(v))
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.leaf(json().serialize_i16(v))
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.leaf(json().serialize_i32(v))
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.leaf(json().serialize_i64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.leaf(json().serialize_i128(v))
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.leaf(json().serialize_u8(v))
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.leaf(json().serialize_u16(v))
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.leaf(json().serialize_u32(v))
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.leaf(json().serialize_u64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.leaf(json().serialize_u128(v))
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.leaf(json().serialize_f32(v))
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.leaf(json().serialize_f64(v))
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        if !matches!(&*self.node, Value::String(s) if s == v) {
            self.ops.push(PatchOp::replace(
                self.path.clone(),
                Value::String(v.to_owned()),
            ));
            *self.node = Value::String(v.to_owned());
        }
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.leaf(json().serialize_bytes(v))
    }
    fn serialize_none(self) -> Result<()> {
        self.leaf(Ok(Value::Null))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.leaf(Ok(Value::Null))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.leaf(Ok(Value::Null))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        match self.variant_inner(variant, |_| true) {
            Ok(inner) => {
                let (node, path, ops) = inner?;
                let len = path.len();
                value.serialize(DiffSer {
                    node,
                    path: &mut *path,
                    ops,
                    except: None,
                })?;
                path.truncate(len - variant_token_len(variant));
                Ok(())
            }
            Err(this) => {
                let v = json().serialize_newtype_variant(name, i, variant, value);
                this.leaf(v)
            }
        }
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>> {
        if let Value::Array(_) = self.node {
            let DiffSer {
                node, path, ops, ..
            } = self;
            return match node {
                Value::Array(arr) => Ok(Compound::Seq(SeqDiff::new(arr, path, ops, len, 0))),
                _ => Err(internal()),
            };
        }
        let inner = json().serialize_seq(len)?;
        Ok(Compound::BuildSeq(Build::new(self, inner)))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>> {
        match self.variant_inner(variant, Value::is_array) {
            Ok(inner) => match inner? {
                (Value::Array(arr), path, ops) => {
                    let pop = variant_token_len(variant);
                    Ok(Compound::Seq(SeqDiff::new(arr, path, ops, Some(len), pop)))
                }
                _ => Err(internal()),
            },
            Err(this) => {
                let inner = json().serialize_tuple_variant(name, i, variant, len)?;
                Ok(Compound::BuildTupleVariant(Build::new(this, inner)))
            }
        }
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>> {
        if let Value::Object(_) = self.node {
            let DiffSer {
                node,
                path,
                ops,
                except,
            } = self;
            return match node {
                Value::Object(map) => Ok(Compound::Map(MapDiff::new(map, path, ops, except, 0))),
                _ => Err(internal()),
            };
        }
        let inner = json().serialize_map(len)?;
        Ok(Compound::BuildMap(Build::new(self, inner)))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>> {
        match self.variant_inner(variant, Value::is_object) {
            Ok(inner) => match inner? {
                (Value::Object(map), path, ops) => {
                    let pop = variant_token_len(variant);
                    Ok(Compound::Map(MapDiff::new(map, path, ops, None, pop)))
                }
                _ => Err(internal()),
            },
            Err(this) => {
                let inner = json().serialize_struct_variant(name, i, variant, len)?;
                Ok(Compound::BuildStructVariant(Build::new(this, inner)))
            }
        }
    }
}

/// Bytes `push_token` adds for a variant tag.
fn variant_token_len(variant: &str) -> usize {
    let mut s = String::new();
    push_token(&mut s, variant);
    s.len()
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match self {
            Compound::Seq(s) => s.element(value),
            Compound::BuildSeq(b) => Ok(ser::SerializeSeq::serialize_element(&mut b.inner, value)?),
            Compound::BuildTupleVariant(b) => Ok(ser::SerializeTupleVariant::serialize_field(
                &mut b.inner,
                value,
            )?),
            _ => Err(DiffSerializeError("element outside a sequence".to_owned())),
        }
    }
    fn end(self) -> Result<()> {
        match self {
            Compound::Seq(s) => s.end(),
            Compound::BuildSeq(b) => b.finish(ser::SerializeSeq::end),
            Compound::BuildTupleVariant(b) => b.finish(ser::SerializeTupleVariant::end),
            _ => Err(DiffSerializeError(
                "end of a sequence outside one".to_owned(),
            )),
        }
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        match self {
            Compound::Map(m) => {
                m.key = Some(key_string(key)?);
                Ok(())
            }
            Compound::BuildMap(b) => Ok(b.inner.serialize_key(key)?),
            _ => Err(DiffSerializeError("map key outside a map".to_owned())),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match self {
            Compound::Map(m) => {
                let key = m
                    .key
                    .take()
                    .ok_or_else(|| DiffSerializeError("map value without a key".to_owned()))?;
                m.field(key, value)
            }
            Compound::BuildMap(b) => Ok(b.inner.serialize_value(value)?),
            _ => Err(DiffSerializeError("map value outside a map".to_owned())),
        }
    }
    fn end(self) -> Result<()> {
        match self {
            Compound::Map(m) => m.end(),
            Compound::BuildMap(b) => b.finish(ser::SerializeMap::end),
            Compound::BuildStructVariant(b) => b.finish(ser::SerializeStructVariant::end),
            _ => Err(DiffSerializeError("end of a map outside one".to_owned())),
        }
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        match self {
            Compound::Map(m) => m.field(key.to_owned(), value),
            Compound::BuildMap(b) => {
                b.inner.serialize_key(key)?;
                Ok(b.inner.serialize_value(value)?)
            }
            Compound::BuildStructVariant(b) => Ok(ser::SerializeStructVariant::serialize_field(
                &mut b.inner,
                key,
                value,
            )?),
            _ => Err(DiffSerializeError("field outside a struct".to_owned())),
        }
    }
    fn end(self) -> Result<()> {
        ser::SerializeMap::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<()> {
        ser::SerializeMap::end(self)
    }
}

/// Read-only comparison of a value's serialization with a `Value`: `Ok(true)` iff
/// `to_value(new) == *node` (with the key order ignored). Allocates nothing for scalars, strings,
/// structs and sequences; stops serializing a container's children after the first difference.
struct EqSer<'a>(&'a Value);

struct EqSeq<'a> {
    arr: Option<&'a [Value]>,
    i: usize,
    eq: bool,
}

impl EqSeq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if self.eq {
            self.eq = match self.arr.and_then(|a| a.get(self.i)) {
                Some(v) => value.serialize(EqSer(v))?,
                None => false,
            };
        }
        self.i += 1;
        Ok(())
    }
    fn end(self) -> bool {
        self.eq && self.arr.is_some_and(|a| a.len() == self.i)
    }
}

struct EqMap<'a> {
    map: Option<&'a Map<String, Value>>,
    iter: Option<serde_json::map::Iter<'a>>,
    count: usize,
    key: Option<String>,
    eq: bool,
}

impl<'a> EqMap<'a> {
    fn new(map: Option<&'a Map<String, Value>>) -> Self {
        Self {
            map,
            iter: map.map(|m| m.iter()),
            count: 0,
            key: None,
            eq: map.is_some(),
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.count += 1;
        if !self.eq {
            return Ok(());
        }
        // In step with the snapshot's key order while it agrees; by lookup after that.
        let mut found = None;
        if let Some(it) = &mut self.iter {
            match it.next() {
                Some((k, v)) if k == key => found = Some(v),
                _ => self.iter = None,
            }
        }
        let found = found.or_else(|| self.map.and_then(|m| m.get(key)));
        self.eq = match found {
            Some(v) => value.serialize(EqSer(v))?,
            None => false,
        };
        Ok(())
    }

    fn end(self) -> bool {
        self.eq && self.map.is_some_and(|m| m.len() == self.count)
    }
}

fn one_variant<'a>(node: &'a Value, variant: &str) -> Option<&'a Value> {
    match node {
        Value::Object(m) if m.len() == 1 => m.get(variant),
        _ => None,
    }
}

enum EqCompound<'a> {
    Seq(EqSeq<'a>),
    Map(EqMap<'a>),
}

impl<'a> ser::Serializer for EqSer<'a> {
    type Ok = bool;
    type Error = DiffSerializeError;
    type SerializeSeq = EqCompound<'a>;
    type SerializeTuple = EqCompound<'a>;
    type SerializeTupleStruct = EqCompound<'a>;
    type SerializeTupleVariant = EqCompound<'a>;
    type SerializeMap = EqCompound<'a>;
    type SerializeStruct = EqCompound<'a>;
    type SerializeStructVariant = EqCompound<'a>;

    fn serialize_bool(self, v: bool) -> Result<bool> {
        Ok(self.0.as_bool() == Some(v))
    }
    fn serialize_i8(self, v: i8) -> Result<bool> {
        Ok(*self.0 == json().serialize_i8(v)?)
    }
    fn serialize_i16(self, v: i16) -> Result<bool> {
        Ok(*self.0 == json().serialize_i16(v)?)
    }
    fn serialize_i32(self, v: i32) -> Result<bool> {
        Ok(*self.0 == json().serialize_i32(v)?)
    }
    fn serialize_i64(self, v: i64) -> Result<bool> {
        Ok(*self.0 == json().serialize_i64(v)?)
    }
    fn serialize_i128(self, v: i128) -> Result<bool> {
        Ok(*self.0 == json().serialize_i128(v)?)
    }
    fn serialize_u8(self, v: u8) -> Result<bool> {
        Ok(*self.0 == json().serialize_u8(v)?)
    }
    fn serialize_u16(self, v: u16) -> Result<bool> {
        Ok(*self.0 == json().serialize_u16(v)?)
    }
    fn serialize_u32(self, v: u32) -> Result<bool> {
        Ok(*self.0 == json().serialize_u32(v)?)
    }
    fn serialize_u64(self, v: u64) -> Result<bool> {
        Ok(*self.0 == json().serialize_u64(v)?)
    }
    fn serialize_u128(self, v: u128) -> Result<bool> {
        Ok(*self.0 == json().serialize_u128(v)?)
    }
    fn serialize_f32(self, v: f32) -> Result<bool> {
        Ok(*self.0 == json().serialize_f32(v)?)
    }
    fn serialize_f64(self, v: f64) -> Result<bool> {
        Ok(*self.0 == json().serialize_f64(v)?)
    }
    fn serialize_char(self, v: char) -> Result<bool> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<bool> {
        Ok(self.0.as_str() == Some(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<bool> {
        Ok(match self.0 {
            Value::Array(a) => {
                a.len() == v.len()
                    && a.iter()
                        .zip(v)
                        .all(|(x, b)| x.as_u64() == Some(u64::from(*b)))
            }
            _ => false,
        })
    }
    fn serialize_none(self) -> Result<bool> {
        Ok(self.0.is_null())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<bool> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<bool> {
        Ok(self.0.is_null())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<bool> {
        Ok(self.0.is_null())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<bool> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<bool> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<bool> {
        match one_variant(self.0, variant) {
            Some(inner) => value.serialize(EqSer(inner)),
            None => Ok(false),
        }
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<EqCompound<'a>> {
        Ok(EqCompound::Seq(EqSeq {
            arr: self.0.as_array().map(Vec::as_slice),
            i: 0,
            eq: true,
        }))
    }
    fn serialize_tuple(self, len: usize) -> Result<EqCompound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<EqCompound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<EqCompound<'a>> {
        EqSer(one_variant(self.0, variant).unwrap_or(&Value::Null)).serialize_seq(Some(len))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<EqCompound<'a>> {
        Ok(EqCompound::Map(EqMap::new(self.0.as_object())))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<EqCompound<'a>> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<EqCompound<'a>> {
        EqSer(one_variant(self.0, variant).unwrap_or(&Value::Null)).serialize_map(Some(len))
    }
}

impl ser::SerializeSeq for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match self {
            EqCompound::Seq(s) => s.element(value),
            EqCompound::Map(_) => Err(DiffSerializeError("element outside a sequence".to_owned())),
        }
    }
    fn end(self) -> Result<bool> {
        match self {
            EqCompound::Seq(s) => Ok(s.end()),
            EqCompound::Map(m) => Ok(m.end()),
        }
    }
}

impl ser::SerializeTuple for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<bool> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<bool> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<bool> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        match self {
            EqCompound::Map(m) => {
                m.key = Some(key_string(key)?);
                Ok(())
            }
            EqCompound::Seq(_) => Err(DiffSerializeError("map key outside a map".to_owned())),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match self {
            EqCompound::Map(m) => {
                let key = m
                    .key
                    .take()
                    .ok_or_else(|| DiffSerializeError("map value without a key".to_owned()))?;
                m.field(&key, value)
            }
            EqCompound::Seq(_) => Err(DiffSerializeError("map value outside a map".to_owned())),
        }
    }
    fn end(self) -> Result<bool> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeStruct for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        match self {
            EqCompound::Map(m) => m.field(key, value),
            EqCompound::Seq(_) => Err(DiffSerializeError("field outside a struct".to_owned())),
        }
    }
    fn end(self) -> Result<bool> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeStructVariant for EqCompound<'_> {
    type Ok = bool;
    type Error = DiffSerializeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<bool> {
        ser::SerializeSeq::end(self)
    }
}
