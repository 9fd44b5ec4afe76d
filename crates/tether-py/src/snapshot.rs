//! `tether._native.Snapshot`: what one synced object last sent to its client, kept as JSON in
//! Rust, so that `Sync.sync()` diffs and encodes natively and Python only walks its own state.
//!
//! A sync hands over the parts of the state, one `(key, value)` pair per synced attribute, where
//! the value is either a plain Python value (diffed in place against the snapshot, see
//! [`Walker::diff`]) or, for a typed attribute the walk cannot read, the `bytes` of its JSON
//! (pydantic's `dump_json`), compared byte for byte with the previous dump before anything is
//! parsed.

use std::collections::HashMap;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use serde::Serialize;
use serde_json::{Map, Value};
use tether_patch::{Mode, PatchOp, apply_with, diff_into, pointer};

use crate::json::{self, At, Walker};

/// One outgoing ws-sync frame, `{"type": …, "data": …}`, encoded compactly.
#[derive(Serialize)]
struct Frame<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

fn encode<T: Serialize>(kind: &str, data: T) -> PyResult<String> {
    serde_json::to_string(&Frame { kind, data })
        .map_err(|e| PyValueError::new_err(format!("cannot encode the {kind} frame: {e}")))
}

/// A synced object's last-sent state (`{key: value}`), its diff and its frames.
#[pyclass(module = "tether._native")]
#[derive(Default)]
pub struct Snapshot {
    state: Map<String, Value>,
    /// The JSON bytes each dumped part had when last diffed, while the state still matches them.
    raw: HashMap<String, Vec<u8>>,
    /// `check(cls) -> bool`: which model classes may be walked as their `__dict__`.
    check: Option<Py<PyAny>>,
}

/// One part as handed over: `(key, value)`, or `(key, value, dump)` for a typed attribute, where
/// `dump(value) -> bytes` is its JSON (pydantic's `dump_json`) for values the walk cannot read.
struct Part<'py> {
    key: String,
    value: Bound<'py, PyAny>,
    dump: Option<Bound<'py, PyAny>>,
}

fn parts<'py>(list: &Bound<'py, PyList>) -> PyResult<Vec<Part<'py>>> {
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let bad = || {
            PyTypeError::new_err(
                "each part must be a (key, value) or (key, value, dump) tuple with a str key",
            )
        };
        let t = item.cast::<PyTuple>().map_err(|_| bad())?;
        let key: String = t.get_item(0).and_then(|k| k.extract()).map_err(|_| bad())?;
        let value = t.get_item(1).map_err(|_| bad())?;
        let dump = match t.len() {
            2 => None,
            3 => Some(t.get_item(2)?).filter(|d| !d.is_none()),
            _ => return Err(bad()),
        };
        out.push(Part { key, value, dump });
    }
    Ok(out)
}

fn parse_json(key: &str, bytes: &[u8]) -> PyResult<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| PyValueError::new_err(format!("the JSON dump of {key:?} is not valid: {e}")))
}

fn key_path(key: &str) -> String {
    let mut path = String::with_capacity(key.len() + 1);
    pointer::push_token(&mut path, key);
    path
}

/// Calls a part's dump function; its result must be `bytes` (or `str`) of JSON.
fn dumped(part: &Part<'_>, dump: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let out = dump.call1((&part.value,))?;
    if let Ok(b) = out.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = out.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "the dump of {:?} returned a {}, not bytes of JSON",
        part.key,
        out.get_type().name()?
    )))
}

#[pymethods]
impl Snapshot {
    /// `model_check(cls) -> bool` says which model classes dump exactly as their fields.
    #[new]
    #[pyo3(signature = (model_check = None))]
    fn new(model_check: Option<Py<PyAny>>) -> Self {
        Self {
            check: model_check,
            ..Self::default()
        }
    }

    /// Replaces the snapshot with `parts` and returns the `_SET` frame for `event`.
    fn set_frame(
        &mut self,
        py: Python<'_>,
        event: &str,
        parts: &Bound<'_, PyList>,
    ) -> PyResult<String> {
        let walker = Walker::new(self.check.as_ref().map(|c| c.bind(py).clone()));
        let mut state = Map::new();
        let mut raw = HashMap::new();
        for part in self::parts(parts)? {
            let path = key_path(&part.key);
            let value = match walker.to_value(&part.value, &At::Root(&path), 1) {
                Ok(v) => v,
                Err(e) if e.is_fallback() => {
                    let Some(dump) = part.dump.as_ref() else {
                        return Err(e.into());
                    };
                    let bytes = dumped(&part, dump)?;
                    let v = parse_json(&part.key, &bytes)?;
                    raw.insert(part.key.clone(), bytes);
                    v
                }
                Err(e) => return Err(e.into()),
            };
            state.insert(part.key, value);
        }
        let frame = encode(event, &state)?;
        self.state = state;
        self.raw = raw;
        Ok(frame)
    }

    /// Diffs `parts` against the snapshot, advances it, and returns the `_PATCH` frame for
    /// `event`, or `None` when nothing changed. On an error the snapshot may be partly advanced,
    /// so the caller resends the full state (`set_frame`) next.
    fn patch_frame(
        &mut self,
        py: Python<'_>,
        event: &str,
        parts: &Bound<'_, PyList>,
    ) -> PyResult<Option<String>> {
        let walker = Walker::new(self.check.as_ref().map(|c| c.bind(py).clone()));
        let parts = self::parts(parts)?;
        let mut ops: Vec<PatchOp> = Vec::new();
        let mut path = String::new();
        for part in &parts {
            path.clear();
            pointer::push_token(&mut path, &part.key);
            let before = ops.len();
            let walked = match self.state.get_mut(&part.key) {
                Some(prev) => walker.diff(prev, &part.value, &At::Root(&path), &mut ops, 1),
                None => walker
                    .to_value(&part.value, &At::Root(&path), 1)
                    .map(|value| {
                        ops.push(PatchOp::add(path.clone(), value.clone()));
                        self.state.insert(part.key.clone(), value);
                    }),
            };
            match walked {
                Ok(()) => {
                    self.raw.remove(&part.key);
                }
                Err(e) if e.is_fallback() && part.dump.is_some() => {
                    if ops.len() > before {
                        self.raw.remove(&part.key); // the walk moved the snapshot already
                    }
                    self.diff_dumped(part, &mut path, &mut ops)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if self.state.len() > parts.len() {
            let keep: std::collections::HashSet<&str> =
                parts.iter().map(|p| p.key.as_str()).collect();
            let gone: Vec<String> = self
                .state
                .keys()
                .filter(|k| !keep.contains(k.as_str()))
                .cloned()
                .collect();
            for key in gone {
                ops.push(PatchOp::remove(key_path(&key)));
                self.state.shift_remove(&key);
                self.raw.remove(&key);
            }
        }
        if ops.is_empty() {
            return Ok(None);
        }
        encode(event, &ops).map(Some)
    }

    /// Applies a client's JSON Patch (a list of op dicts) atomically, reading unescaped paths
    /// leniently as ws-sync-react sends them; returns the top-level keys it touched, in order.
    fn apply_patch(&mut self, ops: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let value = json::to_value(ops)?;
        let ops: Vec<PatchOp> = serde_json::from_value(value)
            .map_err(|e| PyValueError::new_err(format!("not a JSON Patch: {e}")))?;
        let root_value = ops.iter().find_map(|op| match op {
            PatchOp::Add { path, value } | PatchOp::Replace { path, value }
                if path.is_empty() || path == "/" && !self.state.contains_key("") =>
            {
                Some(value)
            }
            _ => None,
        });
        if let Some(v) = root_value.filter(|v| !v.is_object()) {
            return Err(PyValueError::new_err(format!(
                "the patch replaces the whole state with {}; the state must stay an object",
                kind_of(v)
            )));
        }
        let mut doc = Value::Object(std::mem::take(&mut self.state));
        let result = apply_with(&mut doc, &ops, Mode::Lenient);
        self.state = match doc {
            Value::Object(m) => m,
            // Only a `move`/`copy` onto the root gets here; the state is lost, so start over.
            other => {
                self.raw.clear();
                return Err(PyValueError::new_err(format!(
                    "the patch turned the whole state into {}; the state must stay an object",
                    kind_of(&other)
                )));
            }
        };
        result.map_err(|e| PyValueError::new_err(format!("cannot apply the patch: {e}")))?;
        let mut touched: Vec<String> = Vec::new();
        for op in &ops {
            for p in std::iter::once(op.path()).chain(op.from()) {
                for key in self.top_keys(p) {
                    if !touched.contains(&key) {
                        touched.push(key);
                    }
                }
            }
        }
        for key in &touched {
            self.raw.remove(key);
        }
        Ok(touched)
    }

    /// Replaces the snapshot with a client's full state (`_SET` from the client).
    fn set_state(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        match json::to_value(state)? {
            Value::Object(m) => {
                self.state = m;
                self.raw.clear();
                Ok(())
            }
            other => Err(PyValueError::new_err(format!(
                "the state must be an object, got {}",
                kind_of(&other)
            ))),
        }
    }

    /// The snapshot's value under `key`, as a fresh Python object.
    fn get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.state.get(key) {
            Some(v) => json::to_py(py, v),
            None => Err(PyKeyError::new_err(key.to_owned())),
        }
    }

    /// The whole snapshot as a fresh Python dict.
    fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut v = Value::Object(self.state.clone());
        let out = json::to_py(py, &v);
        v.take();
        out
    }

    /// The snapshot's keys, in order.
    fn keys(&self) -> Vec<String> {
        self.state.keys().cloned().collect()
    }

    /// Forgets everything (the next sync must send a full `_SET`).
    fn clear(&mut self) {
        self.state.clear();
        self.raw.clear();
    }

    fn __len__(&self) -> usize {
        self.state.len()
    }
}

impl Snapshot {
    /// The typed part the walk could not read: dump it, and diff unless the bytes are the same.
    fn diff_dumped(
        &mut self,
        part: &Part<'_>,
        path: &mut String,
        ops: &mut Vec<PatchOp>,
    ) -> PyResult<()> {
        let Some(dump) = part.dump.as_ref() else {
            return Ok(());
        };
        let bytes = dumped(part, dump)?;
        if self.raw.get(&part.key).is_some_and(|r| *r == bytes)
            && self.state.contains_key(&part.key)
        {
            return Ok(());
        }
        let value = parse_json(&part.key, &bytes)?;
        match self.state.get_mut(&part.key) {
            Some(prev) => {
                diff_into(prev, &value, path, ops);
                *prev = value;
            }
            None => {
                ops.push(PatchOp::add(path.clone(), value.clone()));
                self.state.insert(part.key.clone(), value);
            }
        }
        self.raw.insert(part.key.clone(), bytes);
        Ok(())
    }

    /// The top-level keys a pointer reaches: the whole state for the root, else the key that is
    /// its first token (strict) or, as lenient reading allows, a key containing `/` that it
    /// starts with.
    fn top_keys(&self, path: &str) -> Vec<String> {
        if path.is_empty() || path == "/" && !self.state.contains_key("") {
            return self.state.keys().cloned().collect();
        }
        let mut out = Vec::new();
        if let Ok(tokens) = pointer::parse(path)
            && let Some(first) = tokens.first()
            && self.state.contains_key(first)
        {
            out.push(first.clone());
        }
        let raw = path.strip_prefix('/').unwrap_or(path);
        for key in self.state.keys() {
            if out.contains(key) {
                continue;
            }
            if raw == key
                || raw
                    .strip_prefix(key.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            {
                out.push(key.clone());
            }
        }
        out
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Encodes any ws-sync frame `{"type": event, "data": data}` (compact, non-ASCII unescaped);
/// `data=None` with `omit_data` gives `{"type": event}` (`_REQUEST_USER_SESSION`).
#[pyfunction]
#[pyo3(signature = (event, data = None, omit_data = false))]
pub fn encode_frame(
    event: &str,
    data: Option<&Bound<'_, PyAny>>,
    omit_data: bool,
) -> PyResult<String> {
    if omit_data {
        #[derive(Serialize)]
        struct Bare<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
        }
        return serde_json::to_string(&Bare { kind: event })
            .map_err(|e| PyValueError::new_err(e.to_string()));
    }
    let value = match data {
        Some(d) => json::to_value(d)?,
        None => Value::Null,
    };
    encode(event, value)
}
