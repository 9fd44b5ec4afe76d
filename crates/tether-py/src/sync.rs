//! `tether._native.SyncSession`: the `tether_sync` engine for `tether.sync`. The protocol (frame
//! parsing and encoding, dispatch, the action queue, task bookkeeping, takeover, limits) is the
//! engine's; this binding adds what only the Python side has: walking Python attribute values
//! against the engine's baseline, and writing frames straight into an embedded server
//! connection's queue.
//!
//! A sync hands over the parts of an object's state, one `(key, value)` pair per synced
//! attribute, where the value is either a plain Python value (diffed in place against the
//! baseline, see [`Walker::diff`]) or, for a typed attribute the walk cannot read, the `bytes` of
//! its JSON (pydantic's `dump_json`), compared byte for byte with the previous dump before
//! anything is parsed.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::ws::Message;
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use serde_json::{Map, Value};
use tether_patch::{PatchOp, diff_into, pointer};
use tether_sync::{
    ActionId, AppEvent, Config, ConnId, Level, Output, Session, SyncError, SyncOptions, TaskId,
    ToastKind, codec, touched_keys,
};

use crate::bridge::{NativeWebSocket, Sink, SinkSend};
use crate::json::{self, At, Walker};

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

/// The JSON bytes each dumped part of one key had when last diffed, while the baseline still
/// matches them.
type Raw = HashMap<String, Vec<u8>>;

/// Builds a whole state from parts (and the dump cache that goes with it).
fn build<'py>(walker: &Walker<'py>, parts: &[Part<'py>]) -> PyResult<(Value, Raw)> {
    let mut state = Map::new();
    let mut raw = HashMap::new();
    for part in parts {
        let path = key_path(&part.key);
        let value = match walker.to_value(&part.value, &At::Root(&path), 1) {
            Ok(v) => v,
            Err(e) if e.is_fallback() => {
                let Some(dump) = part.dump.as_ref() else {
                    return Err(e.into());
                };
                let bytes = dumped(part, dump)?;
                let v = parse_json(&part.key, &bytes)?;
                raw.insert(part.key.clone(), bytes);
                v
            }
            Err(e) => return Err(e.into()),
        };
        state.insert(part.key.clone(), value);
    }
    Ok((Value::Object(state), raw))
}

/// Diffs parts against the baseline in place, appending the ops; on an error the baseline may be
/// partly advanced, consistently with the ops already appended.
fn diff_parts<'py>(
    walker: &Walker<'py>,
    state: &mut Value,
    raw: &mut Raw,
    parts: &[Part<'py>],
    ops: &mut Vec<PatchOp>,
) -> PyResult<()> {
    let Value::Object(map) = state else {
        // Only after a client replaced the whole state with a non-object (and was not corrected).
        let (value, new_raw) = build(walker, parts)?;
        ops.push(PatchOp::replace(String::new(), value.clone()));
        *state = value;
        *raw = new_raw;
        return Ok(());
    };
    let mut path = String::new();
    for part in parts {
        path.clear();
        pointer::push_token(&mut path, &part.key);
        let before = ops.len();
        let walked = match map.get_mut(&part.key) {
            Some(prev) => walker.diff(prev, &part.value, &At::Root(&path), ops, 1),
            None => walker
                .to_value(&part.value, &At::Root(&path), 1)
                .map(|value| {
                    ops.push(PatchOp::add(path.clone(), value.clone()));
                    map.insert(part.key.clone(), value);
                }),
        };
        match walked {
            Ok(()) => {
                raw.remove(&part.key);
            }
            Err(e) if e.is_fallback() && part.dump.is_some() => {
                if ops.len() > before {
                    raw.remove(&part.key); // the walk moved the baseline already
                }
                diff_dumped(map, raw, part, &mut path, ops)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if map.len() > parts.len() {
        let keep: HashSet<&str> = parts.iter().map(|p| p.key.as_str()).collect();
        let gone: Vec<String> = map
            .keys()
            .filter(|k| !keep.contains(k.as_str()))
            .cloned()
            .collect();
        for key in gone {
            ops.push(PatchOp::remove(key_path(&key)));
            map.shift_remove(&key);
            raw.remove(&key);
        }
    }
    Ok(())
}

/// The typed part the walk could not read: dump it, and diff unless the bytes are the same.
fn diff_dumped(
    map: &mut Map<String, Value>,
    raw: &mut Raw,
    part: &Part<'_>,
    path: &mut String,
    ops: &mut Vec<PatchOp>,
) -> PyResult<()> {
    let Some(dump) = part.dump.as_ref() else {
        return Ok(());
    };
    let bytes = dumped(part, dump)?;
    if raw.get(&part.key).is_some_and(|r| *r == bytes) && map.contains_key(&part.key) {
        return Ok(());
    }
    let value = parse_json(&part.key, &bytes)?;
    match map.get_mut(&part.key) {
        Some(prev) => {
            diff_into(prev, &value, path, ops);
            *prev = value;
        }
        None => {
            ops.push(PatchOp::add(path.clone(), value.clone()));
            map.insert(part.key.clone(), value);
        }
    }
    raw.insert(part.key.clone(), bytes);
    Ok(())
}

/// A Python error, or the engine refusing a command; what `sync_with`'s closure returns.
struct Failed(PyErr);

impl From<SyncError> for Failed {
    fn from(e: SyncError) -> Self {
        Failed(engine_error(e))
    }
}

fn engine_error(e: SyncError) -> PyErr {
    match e {
        SyncError::UnknownKey(_) => PyKeyError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warning",
        Level::Error => "error",
    }
}

fn object(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Map<String, Value>> {
    match json::to_value(v)? {
        Value::Object(m) => Ok(m),
        _ => Err(PyTypeError::new_err(format!("{what} must be a dict"))),
    }
}

/// The ws-sync engine for one `tether.sync.Session`, driven from Python: feed it socket events
/// (`handle_*`) and app commands, then drain `poll_output()` until it returns None.
#[pyclass(module = "tether._native")]
pub struct SyncSession {
    engine: Session,
    /// `check(cls) -> bool`: which model classes may be walked as their `__dict__`.
    check: Option<Py<PyAny>>,
    raw: HashMap<String, Raw>,
    /// Embedded-server connections: their frames go to the socket's queue from here.
    sinks: HashMap<u64, Sink>,
    /// A frame whose connection's budget was full; written first on the next `poll`.
    stalled: Option<(Sink, Message, usize)>,
    /// Events carry the engine's whole value and ops (the fixtures' form) instead of keys.
    event_values: bool,
}

impl SyncSession {
    fn walker<'py>(&self, py: Python<'py>) -> Walker<'py> {
        Walker::new(self.check.as_ref().map(|c| c.bind(py).clone()))
    }

    /// Writes a frame through `sink`: `None` when done (sent or dropped), else the awaitable to
    /// wait on before polling again (the frame is kept).
    fn write<'py>(
        &mut self,
        py: Python<'py>,
        sink: Sink,
        msg: Message,
        len: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match sink.try_send(msg.clone(), len) {
            SinkSend::Sent | SinkSend::Ended => Ok(None),
            SinkSend::TooBig => Err(PyValueError::new_err(format!(
                "a sync frame of {len} bytes is bigger than the connection's outgoing budget; \
                 raise outgoing_bytes"
            ))),
            SinkSend::Full(cost) => {
                let wait = sink.room(py, cost)?;
                self.stalled = Some((sink, msg, len));
                Ok(Some(wait))
            }
        }
    }

    fn event<'py>(&mut self, py: Python<'py>, ev: AppEvent) -> PyResult<Bound<'py, PyAny>> {
        if let AppEvent::Set { key, .. } | AppEvent::Patched { key, .. } = &ev {
            self.raw.remove(key);
        }
        let binary = match &ev {
            AppEvent::RunAction { binary, .. } | AppEvent::StartTask { binary, .. } => {
                binary.clone()
            }
            _ => None,
        };
        if !self.event_values {
            let lean = match &ev {
                AppEvent::Set { key, value } => Some(("set", key, touched_all(value))),
                AppEvent::Patched { key, value, ops } => {
                    Some(("patched", key, touched_keys(value, ops)))
                }
                _ => None,
            };
            if let Some((kind, key, keys)) = lean {
                let d = PyDict::new(py);
                d.set_item("type", kind)?;
                d.set_item("key", key)?;
                d.set_item("keys", keys)?;
                return Ok(d.into_any());
            }
        }
        let mut value = serde_json::to_value(&ev)
            .map_err(|e| PyValueError::new_err(format!("cannot convert an event: {e}")))?;
        if let Value::Object(m) = &mut value {
            m.shift_remove("binary");
        }
        let out = json::to_py(py, &value)?;
        if let Some(b) = binary {
            out.set_item("binary", PyBytes::new(py, &b))?;
        }
        Ok(out)
    }
}

fn touched_all(value: &Value) -> Vec<String> {
    match value {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[pymethods]
impl SyncSession {
    /// A session with no keys and no connection. `model_check(cls) -> bool` says which model
    /// classes dump exactly as their fields (walked natively); `event_values` makes `set` and
    /// `patched` events carry `value` and `ops` instead of the touched `keys`.
    #[new]
    #[pyo3(signature = (
        max_frame_bytes = 1 << 20,
        max_pending_actions = 64,
        max_running_tasks = 64,
        disconnect_message = None,
        toast_unknown_events = true,
        model_check = None,
        event_values = false,
    ))]
    fn new(
        max_frame_bytes: usize,
        max_pending_actions: usize,
        max_running_tasks: usize,
        disconnect_message: Option<String>,
        toast_unknown_events: bool,
        model_check: Option<Py<PyAny>>,
        event_values: bool,
    ) -> Self {
        let defaults = Config::default();
        let config = Config {
            max_frame_bytes,
            max_pending_actions,
            max_running_tasks,
            disconnect_message: disconnect_message.unwrap_or(defaults.disconnect_message),
            toast_unknown_events,
        };
        Self {
            engine: Session::new(config),
            check: model_check,
            raw: HashMap::new(),
            sinks: HashMap::new(),
            stalled: None,
            event_values,
        }
    }

    // ---- keys ---------------------------------------------------------------------------------

    /// Registers a key with its initial state given as parts; raises for a part that is not JSON.
    // The Python keyword signature of `Sync(...)`'s options.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (key, parts, send_on_init = true, expose_running_tasks = false,
        running_tasks_key = "running_tasks".to_owned(), pull_state = false))]
    fn register(
        &mut self,
        py: Python<'_>,
        key: String,
        parts: &Bound<'_, PyList>,
        send_on_init: bool,
        expose_running_tasks: bool,
        running_tasks_key: String,
        pull_state: bool,
    ) -> PyResult<()> {
        let (value, raw) = build(&self.walker(py), &self::parts(parts)?)?;
        let options = SyncOptions {
            send_on_init,
            expose_running_tasks,
            running_tasks_key,
            pull_state,
        };
        self.engine
            .register(key.clone(), value, options)
            .map_err(engine_error)?;
        self.raw.insert(key, raw);
        Ok(())
    }

    /// Registers a key with its initial state given as one JSON value.
    #[pyo3(signature = (key, value, send_on_init = true, expose_running_tasks = false,
        running_tasks_key = "running_tasks".to_owned(), pull_state = false))]
    fn register_value(
        &mut self,
        key: String,
        value: &Bound<'_, PyAny>,
        send_on_init: bool,
        expose_running_tasks: bool,
        running_tasks_key: String,
        pull_state: bool,
    ) -> PyResult<()> {
        let options = SyncOptions {
            send_on_init,
            expose_running_tasks,
            running_tasks_key,
            pull_state,
        };
        self.raw.remove(&key);
        self.engine
            .register(key, json::to_value(value)?, options)
            .map_err(engine_error)
    }

    /// Forgets a key (KeyError if unknown); its running tasks may still be reported.
    fn unregister(&mut self, key: &str) -> PyResult<()> {
        self.raw.remove(key);
        self.engine.unregister(key).map_err(engine_error)
    }

    /// Diffs the parts against the baseline and queues one `_PATCH` if anything changed; returns
    /// whether one was queued. A part that is not JSON raises (ops found before it still go out).
    fn sync(&mut self, py: Python<'_>, key: &str, parts: &Bound<'_, PyList>) -> PyResult<bool> {
        let walker = self.walker(py);
        let parts = self::parts(parts)?;
        let raw = self.raw.entry(key.to_owned()).or_default();
        self.engine
            .sync_with(key, |state, ops| {
                diff_parts(&walker, state, raw, &parts, ops).map_err(Failed)
            })
            .map_err(|Failed(e)| e)
    }

    /// `Session::sync` with one JSON value (the engine's own diff).
    fn sync_value(&mut self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.raw.remove(key);
        self.engine
            .sync(key, json::to_value(value)?)
            .map_err(engine_error)
    }

    /// `Session::sync_if_changed` with one JSON value.
    fn sync_if_changed(
        &mut self,
        key: &str,
        revision: u64,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let value = json::to_value(value)?;
        self.raw.remove(key);
        self.engine
            .sync_if_changed(key, revision, || value)
            .map_err(engine_error)
    }

    /// Replaces the baseline with the parts and sends it whole (`_SET`); the answer to a
    /// `state_wanted` event. Returns whether a client was connected.
    fn set(&mut self, py: Python<'_>, key: &str, parts: &Bound<'_, PyList>) -> PyResult<bool> {
        let (value, raw) = build(&self.walker(py), &self::parts(parts)?)?;
        let sent = self.engine.set(key, value).map_err(engine_error)?;
        self.raw.insert(key.to_owned(), raw);
        Ok(sent)
    }

    /// `set` with one JSON value.
    fn set_value(&mut self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.raw.remove(key);
        self.engine
            .set(key, json::to_value(value)?)
            .map_err(engine_error)
    }

    /// Refuses a client `_SET`/`_PATCH`: an error toast with `message` and a correcting `_SET` of
    /// the parts.
    fn reject(
        &mut self,
        py: Python<'_>,
        key: &str,
        parts: &Bound<'_, PyList>,
        message: &str,
    ) -> PyResult<bool> {
        let (value, raw) = build(&self.walker(py), &self::parts(parts)?)?;
        let sent = self
            .engine
            .reject(key, value, message)
            .map_err(engine_error)?;
        self.raw.insert(key.to_owned(), raw);
        Ok(sent)
    }

    /// `reject` with one JSON value.
    fn reject_value(
        &mut self,
        key: &str,
        value: &Bound<'_, PyAny>,
        message: &str,
    ) -> PyResult<bool> {
        self.raw.remove(key);
        self.engine
            .reject(key, json::to_value(value)?, message)
            .map_err(engine_error)
    }

    /// A key's baseline (what the client was last sent or sent itself) as a fresh Python value.
    fn state<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.engine
            .state(key)
            .map(|v| json::to_py(py, v))
            .transpose()
    }

    /// One top-level field of a key's baseline, as a fresh Python value (KeyError if absent).
    fn field<'py>(&self, py: Python<'py>, key: &str, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.engine.state(key) {
            Some(Value::Object(m)) => match m.get(name) {
                Some(v) => json::to_py(py, v),
                None => Err(PyKeyError::new_err(name.to_owned())),
            },
            _ => Err(PyKeyError::new_err(key.to_owned())),
        }
    }

    /// The registered keys, in registration order.
    fn keys(&self) -> Vec<String> {
        self.engine.keys().map(str::to_owned).collect()
    }

    /// Names of a key's running tasks, in start order.
    fn running_tasks(&self, key: &str) -> Vec<String> {
        self.engine
            .running_tasks(key)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The connection that owns the session now, if any.
    #[getter]
    fn connection(&self) -> Option<u64> {
        self.engine.connection().map(|c| c.0)
    }

    /// Whether frames sent now reach a client.
    #[getter]
    fn is_connected(&self) -> bool {
        self.engine.is_connected()
    }

    /// Whether `poll` may have something.
    fn has_output(&self) -> bool {
        self.stalled.is_some() || self.engine.has_output()
    }

    // ---- socket events ------------------------------------------------------------------------

    /// Connection `conn` opened and takes the session over.
    fn handle_connect(&mut self, conn: u64) {
        self.engine.handle_connect(ConnId(conn));
    }

    /// Connection `conn` went away; its frames stop.
    fn handle_close(&mut self, conn: u64) {
        self.sinks.remove(&conn);
        self.engine.handle_close(ConnId(conn));
    }

    /// A text frame arrived on `conn`.
    fn handle_text(&mut self, conn: u64, text: &str) {
        self.engine.handle_text(ConnId(conn), text);
    }

    /// A binary frame arrived on `conn`.
    fn handle_binary(&mut self, conn: u64, data: &[u8]) {
        self.engine.handle_binary(ConnId(conn), data);
    }

    /// Writes `conn`'s frames straight into this embedded-server connection's queue.
    fn attach(&mut self, conn: u64, socket: &Bound<'_, NativeWebSocket>) {
        self.sinks.insert(conn, socket.get().sink());
    }

    /// The next thing for Python, or None when drained. Frames for attached connections are
    /// written here and not returned. Otherwise: `("text", conn, str)`, `("binary", conn,
    /// bytes)`, `("close", conn, code, reason)`, `("event", dict)`, `("log", level, message)`,
    /// or `("wait", awaitable)` when an attached connection's budget is full (await it, poll
    /// again).
    fn poll_output<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        if let Some((sink, msg, len)) = self.stalled.take()
            && let Some(wait) = self.write(py, sink, msg, len)?
        {
            return Ok(Some(PyTuple::new(
                py,
                [PyString::new(py, "wait").into_any(), wait],
            )?));
        }
        while let Some(out) = self.engine.poll_output() {
            let item = match out {
                Output::Text { conn, text } => match self.sinks.get(&conn.0).cloned() {
                    Some(sink) => {
                        let len = text.len();
                        match self.write(py, sink, Message::Text(text.into()), len)? {
                            Some(wait) => ("wait", wait).into_pyobject(py)?,
                            None => continue,
                        }
                    }
                    None => ("text", conn.0, text).into_pyobject(py)?,
                },
                Output::Binary { conn, data } => match self.sinks.get(&conn.0).cloned() {
                    Some(sink) => {
                        let len = data.len();
                        match self.write(py, sink, Message::Binary(Bytes::from(data)), len)? {
                            Some(wait) => ("wait", wait).into_pyobject(py)?,
                            None => continue,
                        }
                    }
                    None => ("binary", conn.0, PyBytes::new(py, &data)).into_pyobject(py)?,
                },
                Output::Close { conn, code, reason } => match self.sinks.get(&conn.0) {
                    Some(sink) => {
                        sink.close(code, &reason)?;
                        continue;
                    }
                    None => ("close", conn.0, code, reason).into_pyobject(py)?,
                },
                Output::Event(ev) => ("event", self.event(py, ev)?).into_pyobject(py)?,
                Output::Log { level, message } => {
                    ("log", level_name(level), message).into_pyobject(py)?
                }
            };
            return Ok(Some(item));
        }
        Ok(None)
    }

    // ---- commands -----------------------------------------------------------------------------

    /// Sends `{"type": event, "data": data}`; false while disconnected.
    fn send_event(&mut self, event: &str, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.engine.send_event(event, &json::to_value(data)?))
    }

    /// Asks the client for its state of `key` (`_GET:KEY`); the reply arrives as a `set` event.
    fn request_state(&mut self, key: &str) -> PyResult<bool> {
        self.engine.request_state(key).map_err(engine_error)
    }

    /// Sends an action to the client's handlers for `key`.
    fn send_action(&mut self, key: &str, action: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.engine
            .send_action(key, json::to_value(action)?)
            .map_err(engine_error)
    }

    /// Sends `_BIN_META` for `event` and then `data` as one binary frame.
    fn send_binary(
        &mut self,
        event: &str,
        metadata: &Bound<'_, PyAny>,
        data: PyBackedBytes,
    ) -> PyResult<bool> {
        let metadata = object(metadata, "metadata")?;
        Ok(self
            .engine
            .send_binary_event(event, &metadata, data.to_vec()))
    }

    /// Shows a toast (`default`, `message`, `info`, `success`, `warning`, `error`).
    fn toast(&mut self, kind: &str, message: &str) -> PyResult<bool> {
        let kind: ToastKind = kind.parse().map_err(PyValueError::new_err)?;
        Ok(self.engine.toast(kind, message))
    }

    /// Makes the client download `data` as `filename`.
    fn download(&mut self, filename: &str, data: &[u8]) -> bool {
        self.engine.download(filename, data)
    }

    /// Asks the client for its user and session ids.
    fn request_user_session(&mut self) -> bool {
        self.engine.request_user_session()
    }

    /// Sends `_DISCONNECT` and closes the connection; false if none was connected.
    #[pyo3(signature = (message = None))]
    fn disconnect(&mut self, message: Option<&str>) -> bool {
        self.engine.disconnect(message)
    }

    /// Routes frames of type `event` to the app (`custom` events).
    fn register_event(&mut self, event: String) {
        self.engine.register_event(event);
    }

    /// Stops routing `event` to the app; returns whether it was registered.
    fn unregister_event(&mut self, event: &str) -> bool {
        self.engine.unregister_event(event)
    }

    /// The running action finished.
    fn action_done(&mut self, action: u64) -> PyResult<()> {
        self.engine
            .action_done(ActionId(action))
            .map_err(engine_error)
    }

    /// The running action failed: an error toast naming it and `error`.
    fn action_failed(&mut self, action: u64, error: &str) -> PyResult<()> {
        self.engine
            .action_failed(ActionId(action), error)
            .map_err(engine_error)
    }

    /// A task finished.
    fn task_done(&mut self, task: u64) -> PyResult<()> {
        self.engine.task_done(TaskId(task)).map_err(engine_error)
    }

    /// A task ended after a cancel request.
    fn task_cancelled(&mut self, task: u64) -> PyResult<()> {
        self.engine
            .task_cancelled(TaskId(task))
            .map_err(engine_error)
    }

    /// A task failed (or was refused): an error toast naming it and `error`.
    fn task_failed(&mut self, task: u64, error: &str) -> PyResult<()> {
        self.engine
            .task_failed(TaskId(task), error)
            .map_err(engine_error)
    }

    fn __repr__(&self) -> String {
        format!("<SyncSession {:?}>", self.engine)
    }
}

/// ws-sync's `_DISCONNECT` frame, for a socket that is not (or no longer) a session's.
#[pyfunction]
pub fn sync_disconnect_frame(message: &str) -> String {
    codec::encode_disconnect(message)
}

/// The `_USER_SESSION` reply's `(user, session)`, or None when `text` is anything else.
#[pyfunction]
pub fn sync_parse_user_session(text: &str) -> Option<(String, String)> {
    codec::parse_user_session(text)
}

/// The `_REQUEST_USER_SESSION` frame.
pub const REQUEST_USER_SESSION_FRAME: &str = codec::REQUEST_USER_SESSION_FRAME;
