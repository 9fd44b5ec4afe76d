//! The per-session engine: synced keys and their snapshots, the connection that currently owns
//! the session, the action queue and the running tasks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tether_patch::{Mode, PatchOp, apply_with, diff, diff_serialize_except, pointer};
use thiserror::Error;

use crate::codec::{self, ClientFrame, FrameError, ToastKind, WithRunning};

/// Identifies one socket; the adapter picks the numbers (unique per session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

/// Identifies one released client action until the app reports it done or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(pub u64);

/// Identifies one started task until the app reports it done, failed or cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// WebSocket close code the engine uses when it ends a connection (normal closure, as ws-sync).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close reason sent to a connection replaced by a newer one.
pub const REASON_TAKEN_OVER: &str = "session taken over";
/// Close reason sent when the app calls [`Session::disconnect`].
pub const REASON_DISCONNECTED: &str = "disconnected by server";

/// Limits and texts of one session; every queue the engine keeps is bounded by these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Largest accepted client frame (text or binary) in bytes; bigger ones get an error toast.
    pub max_frame_bytes: usize,
    /// How many client actions may wait behind the running one; more are refused.
    pub max_pending_actions: usize,
    /// How many tasks may run at once in this session; more starts are refused.
    pub max_running_tasks: usize,
    /// The `_DISCONNECT` text for takeovers and for [`Session::disconnect`] without a message.
    pub disconnect_message: String,
    /// Answer an unknown event (or a keyed event for an unregistered key) with an error toast;
    /// when false it is only logged, as ws-sync's Python `Session` does.
    pub toast_unknown_events: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1 << 20,
            max_pending_actions: 64,
            max_running_tasks: 64,
            disconnect_message: codec::DEFAULT_DISCONNECT_MESSAGE.to_owned(),
            toast_unknown_events: true,
        }
    }
}

/// How one synced key behaves (ws-sync's `Sync(...)` keyword arguments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncOptions {
    /// Send a full `_SET` of this key on every (re)connect.
    pub send_on_init: bool,
    /// Add the names of this key's running tasks to its snapshot and patch it as they change.
    pub expose_running_tasks: bool,
    /// The snapshot key for the running tasks: `running_tasks`, or `runningTasks` when camel-cased.
    pub running_tasks_key: String,
    /// The app owns the live state and the engine only a baseline (ws-sync's Python objects):
    /// whenever a full state goes out (connect, `_GET`) the engine asks with
    /// [`AppEvent::StateWanted`] and the app answers with [`Session::set`]; registering while
    /// connected sends nothing (the client asks with `_GET`), and syncs while disconnected are
    /// skipped (the reconnect asks for the state anyway).
    pub pull_state: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            send_on_init: true,
            expose_running_tasks: false,
            running_tasks_key: "running_tasks".to_owned(),
            pull_state: false,
        }
    }
}

/// Log severity of an [`Output::Log`]; the adapter forwards these to its logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Expected noise: stale connections, cancels of finished tasks.
    Debug,
    /// Worth knowing.
    Info,
    /// A client sent something wrong, or a handler failed.
    Warn,
    /// The server itself did something wrong (e.g. a snapshot that cannot be serialized).
    Error,
}

/// What the app must react to; everything the client asks for arrives as one of these.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppEvent {
    /// A connection now owns the session (after its init `_SET`s were queued).
    Connected {
        /// The new connection.
        conn: ConnId,
    },
    /// The owning connection went away (peer close, takeover or [`Session::disconnect`]).
    Disconnected {
        /// The connection that went away.
        conn: ConnId,
    },
    /// The client replaced a key's state with `_SET`; the engine's snapshot is already `value`.
    Set {
        /// The synced key.
        key: String,
        /// The new state (without the running-tasks key) for the app to adopt.
        value: Value,
    },
    /// The client patched a key's state; `value` is the snapshot after applying `ops`.
    Patched {
        /// The synced key.
        key: String,
        /// The new state (without the running-tasks key) for the app to adopt.
        value: Value,
        /// The ops as the client sent them.
        ops: Vec<PatchOp>,
    },
    /// Run one client action; no other action is released until `action_done`/`action_failed`.
    RunAction {
        /// Report completion with this id.
        action: ActionId,
        /// The synced key.
        key: String,
        /// The action name (`type`).
        name: String,
        /// The other fields of the action object.
        args: Map<String, Value>,
        /// The bytes of a binary action (`_BIN_META` + binary frame).
        #[serde(skip_serializing_if = "Option::is_none")]
        binary: Option<Vec<u8>>,
    },
    /// Start a task concurrently with everything else.
    StartTask {
        /// Report the end with this id.
        task: TaskId,
        /// The synced key.
        key: String,
        /// The task name (`type`).
        name: String,
        /// The other fields.
        args: Map<String, Value>,
        /// The bytes of a binary start (`_BIN_META` + binary frame).
        #[serde(skip_serializing_if = "Option::is_none")]
        binary: Option<Vec<u8>>,
    },
    /// Cancel a started task, then report `task_cancelled` (or `task_done`/`task_failed`).
    CancelTask {
        /// The task to cancel.
        task: TaskId,
        /// The synced key.
        key: String,
        /// The task name.
        name: String,
    },
    /// A full state of a [`SyncOptions::pull_state`] key must go out now: answer with
    /// [`Session::set`] (before polling further, so the `_SET` keeps its place).
    StateWanted {
        /// The synced key.
        key: String,
    },
    /// A frame whose `type` the app registered with [`Session::register_event`].
    Custom {
        /// The frame's `type`.
        event: String,
        /// Its `data` (null when absent).
        data: Value,
    },
    /// The client answered `_REQUEST_USER_SESSION`.
    UserSession {
        /// The client's user id.
        user: String,
        /// The client's session id.
        session: String,
    },
}

/// One thing the adapter must do, drained with [`Session::poll_output`].
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Write a text frame to `conn`.
    Text {
        /// Where to write.
        conn: ConnId,
        /// The frame.
        text: String,
    },
    /// Write a binary frame to `conn`.
    Binary {
        /// Where to write.
        conn: ConnId,
        /// The frame.
        data: Vec<u8>,
    },
    /// Close `conn` (after writing what was queued for it before).
    Close {
        /// What to close.
        conn: ConnId,
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Something for the application to handle.
    Event(AppEvent),
    /// A line for the adapter's logger.
    Log {
        /// Severity.
        level: Level,
        /// What happened.
        message: String,
    },
}

/// Why a command from the application was refused (client input never produces one).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SyncError {
    /// The key was never registered (or was unregistered).
    #[error("no synced object is registered under {0:?}")]
    UnknownKey(String),
    /// The key is already registered.
    #[error("a synced object is already registered under {0:?}")]
    DuplicateKey(String),
    /// The app's snapshot could not be built (e.g. a typed value failed to serialize).
    #[error("could not build the snapshot of {key:?}: {message}")]
    Snapshot {
        /// The synced key.
        key: String,
        /// The serializer's message.
        message: String,
    },
    /// `action_done`/`action_failed` for an action that is not the running one.
    #[error("action {0} is not running")]
    UnknownAction(ActionId),
    /// A task report for a task that is not running.
    #[error("task {0} is not running")]
    UnknownTask(TaskId),
}

struct Entry {
    key: String,
    opts: SyncOptions,
    /// The baseline: the last snapshot the client was sent (or, offline, what the next `_SET`
    /// carries). Never contains the running-tasks key.
    state: Value,
    /// The caller's revision that `state` corresponds to, if it came from `sync_if_changed`.
    revision: Option<u64>,
    /// Names of this key's running tasks, in start order.
    running: Vec<String>,
    /// The running-tasks list as the client last saw it.
    sent_running: Vec<String>,
}

impl Entry {
    /// Whether syncs while disconnected move the baseline (for the reconnect `_SET`).
    fn keeps_offline(&self) -> bool {
        self.opts.send_on_init && !self.opts.pull_state
    }

    fn exposed_key(&self) -> Option<&str> {
        self.opts
            .expose_running_tasks
            .then_some(self.opts.running_tasks_key.as_str())
    }

    /// Removes the engine-owned running-tasks key from an incoming snapshot.
    fn strip_running(&self, value: &mut Value) -> Option<Value> {
        let key = self.exposed_key()?;
        match value {
            Value::Object(map) if map.contains_key(key) => map.shift_remove(key),
            _ => None,
        }
    }
}

struct TaskInfo {
    key: String,
    name: String,
    cancelling: bool,
}

struct QueuedAction {
    key: String,
    name: String,
    args: Map<String, Value>,
    binary: Option<Vec<u8>>,
}

struct RunningAction {
    id: ActionId,
    key: String,
    name: String,
}

/// What the output queue holds: ready outputs, and places where a key's running-tasks list is
/// compared with what the client saw. The comparison happens when polled, so a task the app
/// ends (or refuses) right after its [`AppEvent::StartTask`] never flickers in the client.
enum Pending {
    Out(Output),
    Running(String),
}

enum BinState {
    Idle,
    Expect {
        task: bool,
        key: String,
        name: String,
        args: Map<String, Value>,
    },
    Discard,
}

/// The ws-sync engine for one session (one user tab): feed it socket events with `handle_*`,
/// give it commands, and drain [`Output`]s with [`Session::poll_output`].
pub struct Session {
    config: Config,
    current: Option<ConnId>,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    bin: BinState,
    queue: VecDeque<QueuedAction>,
    running_action: Option<RunningAction>,
    next_action: u64,
    tasks: HashMap<TaskId, TaskInfo>,
    next_task: u64,
    outputs: VecDeque<Pending>,
    /// Frame types the app handles itself ([`AppEvent::Custom`]).
    custom: HashSet<String>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("current", &self.current)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .field("pending_actions", &self.queue.len())
            .field("running_tasks", &self.tasks.len())
            .field("outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Creates a session with no keys and no connection.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            current: None,
            entries: Vec::new(),
            index: HashMap::new(),
            bin: BinState::Idle,
            queue: VecDeque::new(),
            running_action: None,
            next_action: 1,
            tasks: HashMap::new(),
            next_task: 1,
            outputs: VecDeque::new(),
            custom: HashSet::new(),
        }
    }

    // ---- getters -------------------------------------------------------------------------

    /// The session's limits and texts.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The connection that owns the session now, if any.
    pub fn connection(&self) -> Option<ConnId> {
        self.current
    }

    /// Whether frames sent now reach a client (ws-sync's `is_connected`).
    pub fn is_connected(&self) -> bool {
        self.current.is_some()
    }

    /// The registered keys, in registration order (the order of the init `_SET`s).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// The baseline snapshot of a key: what the client was last sent (without running tasks).
    pub fn state(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|e| &e.state)
    }

    /// Names of a key's running tasks, in start order.
    pub fn running_tasks(&self, key: &str) -> Vec<&str> {
        self.entry(key)
            .map(|e| e.running.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The client action the app is running now, if any.
    pub fn running_action(&self) -> Option<ActionId> {
        self.running_action.as_ref().map(|a| a.id)
    }

    /// How many client actions wait behind the running one.
    pub fn pending_actions(&self) -> usize {
        self.queue.len()
    }

    /// Whether [`Session::poll_output`] may have something (a queued running-tasks check can
    /// turn out to need no frame).
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    // ---- poll ----------------------------------------------------------------------------

    /// The next thing to do: a frame to write, a close, an app event or a log line.
    pub fn poll_output(&mut self) -> Option<Output> {
        while let Some(p) = self.outputs.pop_front() {
            match p {
                Pending::Out(out) => return Some(out),
                Pending::Running(key) => {
                    if let Some(out) = self.running_patch(&key) {
                        return Some(out);
                    }
                }
            }
        }
        None
    }

    // ---- handle_* (what arrives from the socket) ------------------------------------------

    /// A socket for this session opened: it takes the session over from any older one.
    pub fn handle_connect(&mut self, conn: ConnId) {
        if self.current == Some(conn) {
            self.log(Level::Warn, format!("connection {conn} connected twice"));
            return;
        }
        if let Some(old) = self.current.take() {
            let text = codec::encode_disconnect(&self.config.disconnect_message);
            self.push(Output::Text { conn: old, text });
            self.close(old, REASON_TAKEN_OVER);
            self.log(
                Level::Info,
                format!("connection {conn} took the session over from {old}"),
            );
            self.push(Output::Event(AppEvent::Disconnected { conn: old }));
        }
        self.current = Some(conn);
        self.bin = BinState::Idle;
        self.drop_running_checks(None);
        for i in 0..self.entries.len() {
            if self.entries[i].opts.send_on_init {
                self.send_full(i);
            }
        }
        self.push(Output::Event(AppEvent::Connected { conn }));
    }

    /// The socket closed (or failed); frames for it stop. Stale connection ids are ignored.
    pub fn handle_close(&mut self, conn: ConnId) {
        if self.current != Some(conn) {
            self.log(
                Level::Debug,
                format!("close of stale connection {conn} ignored"),
            );
            return;
        }
        self.current = None;
        self.bin = BinState::Idle;
        self.push(Output::Event(AppEvent::Disconnected { conn }));
    }

    /// A text frame arrived. Bad input is answered with an error toast; it is never fatal.
    pub fn handle_text(&mut self, conn: ConnId, text: &str) {
        if self.current != Some(conn) {
            self.log(
                Level::Debug,
                format!("frame from stale connection {conn} ignored"),
            );
            return;
        }
        match std::mem::replace(&mut self.bin, BinState::Idle) {
            BinState::Expect { .. } => self.client_error(
                "expected a binary frame after _BIN_META, got text; metadata dropped".to_owned(),
                text,
            ),
            BinState::Discard | BinState::Idle => {}
        }
        if text.len() > self.config.max_frame_bytes {
            let msg = format!(
                "frame too large: {} bytes (limit {})",
                text.len(),
                self.config.max_frame_bytes
            );
            return self.client_error(msg, text);
        }
        if !self.custom.is_empty()
            && let Some((event, data)) = codec::parse_any(text)
            && self.custom.contains(&event)
        {
            return self.push(Output::Event(AppEvent::Custom { event, data }));
        }
        match codec::parse_client(text) {
            Ok(frame) => self.dispatch(frame, text),
            Err(err) => {
                if matches!(&err, FrameError::BadData { event, .. } if event == codec::BIN_META) {
                    self.bin = BinState::Discard;
                }
                self.client_error(err.to_string(), text);
            }
        }
    }

    /// A binary frame arrived; it must follow a `_BIN_META` text frame.
    pub fn handle_binary(&mut self, conn: ConnId, data: &[u8]) {
        if self.current != Some(conn) {
            self.log(
                Level::Debug,
                format!("binary frame from stale connection {conn} ignored"),
            );
            return;
        }
        let state = std::mem::replace(&mut self.bin, BinState::Idle);
        if data.len() > self.config.max_frame_bytes {
            let msg = format!(
                "frame too large: {} bytes (limit {})",
                data.len(),
                self.config.max_frame_bytes
            );
            return self.client_error(msg, "<binary>");
        }
        match state {
            BinState::Idle => self.client_error(
                "unexpected binary frame (no _BIN_META before it)".to_owned(),
                "<binary>",
            ),
            BinState::Discard => self.log(
                Level::Debug,
                "binary frame discarded (its _BIN_META was rejected)".to_owned(),
            ),
            BinState::Expect {
                task: false,
                key,
                name,
                args,
            } => self.enqueue_action(key, name, args, Some(data.to_vec())),
            BinState::Expect {
                task: true,
                key,
                name,
                args,
            } => self.start_task(key, name, args, Some(data.to_vec())),
        }
    }

    // ---- commands from the application ---------------------------------------------------

    /// Registers a synced key with its initial state; sent at once if a client is connected.
    pub fn register(
        &mut self,
        key: impl Into<String>,
        initial: Value,
        options: SyncOptions,
    ) -> Result<(), SyncError> {
        let key = key.into();
        if self.index.contains_key(&key) {
            return Err(SyncError::DuplicateKey(key));
        }
        let mut entry = Entry {
            key: key.clone(),
            opts: options,
            state: Value::Null,
            revision: None,
            running: Vec::new(),
            sent_running: Vec::new(),
        };
        let mut initial = initial;
        entry.strip_running(&mut initial);
        entry.state = initial;
        let send = entry.opts.send_on_init && !entry.opts.pull_state;
        self.index.insert(key, self.entries.len());
        self.entries.push(entry);
        if send && self.current.is_some() {
            self.send_set(self.entries.len() - 1);
        }
        Ok(())
    }

    /// Forgets a key; its events become unknown. Its running tasks may still be reported.
    pub fn unregister(&mut self, key: &str) -> Result<(), SyncError> {
        let i = self
            .index
            .remove(key)
            .ok_or_else(|| SyncError::UnknownKey(key.to_owned()))?;
        self.entries.remove(i);
        for (j, e) in self.entries.iter().enumerate().skip(i) {
            self.index.insert(e.key.clone(), j);
        }
        Ok(())
    }

    /// Sends a `_PATCH` if `value` differs from the last sent snapshot (one lockstep diff walk).
    ///
    /// Returns whether a frame was queued. While disconnected nothing is sent and the baseline
    /// stays (ws-sync); for `send_on_init` keys the value is kept for the reconnect `_SET`.
    pub fn sync(&mut self, key: &str, value: Value) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        self.entries[i].revision = None;
        Ok(self.sync_entry(i, value))
    }

    /// Like [`Session::sync`] for a typed value, without building its JSON: the value is
    /// serialized straight against the baseline ([`tether_patch::diff_serialize`]), so unchanged
    /// parts are compared in place and only changed parts are allocated.
    ///
    /// Same connection semantics as [`Session::sync`]; the running-tasks key is skipped. A
    /// serialization error is logged and toasted like [`Session::try_sync_if_changed`]'s; the
    /// baseline then holds the changes made before the error, and their ops are still sent so
    /// the client stays in step with it.
    pub fn sync_serialize<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        self.entries[i].revision = None;
        self.sync_entry_serialize(i, value)
            .map_err(|e| self.snapshot_error(key, e.to_string()))
    }

    /// [`Session::sync_serialize`] that skips all work when `revision` equals the one of the last
    /// sync of this key (as [`Session::sync_if_changed`]); what [`crate::Synced::sync`] calls.
    pub fn sync_serialize_if_changed<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        revision: u64,
        value: &T,
    ) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        let entry = &self.entries[i];
        if entry.revision == Some(revision) {
            return Ok(false);
        }
        if self.current.is_none() && !entry.keeps_offline() {
            return Ok(false);
        }
        match self.sync_entry_serialize(i, value) {
            Ok(sent) => {
                self.entries[i].revision = Some(revision);
                Ok(sent)
            }
            Err(e) => Err(self.snapshot_error(key, e.to_string())),
        }
    }

    /// Like [`Session::sync`], but skips all work when `revision` equals the one of the last
    /// sync of this key: the caller bumps a counter on every change, and `snapshot` is only
    /// called when it moved. A client `_SET`/`_PATCH` of the key forgets the stored revision.
    pub fn sync_if_changed(
        &mut self,
        key: &str,
        revision: u64,
        snapshot: impl FnOnce() -> Value,
    ) -> Result<bool, SyncError> {
        self.try_sync_if_changed(key, revision, || {
            Ok::<_, std::convert::Infallible>(snapshot())
        })
    }

    /// [`Session::sync_if_changed`] with a fallible snapshot; a failure is logged, the client
    /// gets an error toast, and the baseline is unchanged.
    pub fn try_sync_if_changed<E: fmt::Display>(
        &mut self,
        key: &str,
        revision: u64,
        snapshot: impl FnOnce() -> Result<Value, E>,
    ) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        let entry = &self.entries[i];
        if entry.revision == Some(revision) {
            return Ok(false);
        }
        if self.current.is_none() && !entry.keeps_offline() {
            return Ok(false);
        }
        match snapshot() {
            Ok(value) => {
                let sent = self.sync_entry(i, value);
                self.entries[i].revision = Some(revision);
                Ok(sent)
            }
            Err(e) => Err(self.snapshot_error(key, e.to_string())),
        }
    }

    pub(crate) fn snapshot_error(&mut self, key: &str, message: String) -> SyncError {
        self.log(
            Level::Error,
            format!("could not serialize the state of {key}: {message}"),
        );
        self.server_toast(
            ToastKind::Error,
            &format!("server error: could not serialize the state of {key}"),
        );
        SyncError::Snapshot {
            key: key.to_owned(),
            message,
        }
    }

    /// Replaces a key's state and sends it whole as `_SET` (ws-sync's `_send_state`).
    pub fn set(&mut self, key: &str, value: Value) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        let mut value = value;
        let entry = &mut self.entries[i];
        entry.strip_running(&mut value);
        entry.state = value;
        entry.revision = None;
        if self.current.is_none() {
            return Ok(false);
        }
        self.send_set(i);
        Ok(true)
    }

    /// Refuses a client `_SET`/`_PATCH` the app could not accept: the client gets an error toast
    /// and the app's `value` as a fresh `_SET` (which becomes the baseline), so it is corrected.
    pub fn reject(&mut self, key: &str, value: Value, message: &str) -> Result<bool, SyncError> {
        let sent = self.set(key, value)?;
        self.client_error(message.to_owned(), &codec::event_name(codec::SET, key));
        Ok(sent)
    }

    /// Syncs a key whose new value only the app can walk: `diff(baseline, ops)` must bring the
    /// baseline (never holding the running-tasks key) to the app's value in place and push the
    /// ops that do the same to the client's copy. A `_PATCH` with them is queued if there are
    /// any, also when `diff` then fails (the client stays in step with the moved baseline); the
    /// error goes back to the caller without a toast.
    ///
    /// While disconnected `diff` is not called for keys whose baseline is not kept offline
    /// (`send_on_init: false` or [`SyncOptions::pull_state`]).
    pub fn sync_with<E: From<SyncError>>(
        &mut self,
        key: &str,
        diff: impl FnOnce(&mut Value, &mut Vec<PatchOp>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let i = self.lookup(key)?;
        let connected = self.current.is_some();
        let entry = &mut self.entries[i];
        entry.revision = None;
        if !connected && !entry.keeps_offline() {
            return Ok(false);
        }
        let mut ops = Vec::new();
        let result = diff(&mut entry.state, &mut ops);
        let sent = connected && !ops.is_empty();
        if sent {
            self.send_patch(i, &ops);
        }
        result.map(|()| sent)
    }

    /// Routes frames of type `event` to the app as [`AppEvent::Custom`] (ws-sync's
    /// `session.register_event`); they take precedence over the built-in events.
    pub fn register_event(&mut self, event: impl Into<String>) {
        self.custom.insert(event.into());
    }

    /// Stops routing `event` to the app; returns whether it was registered.
    pub fn unregister_event(&mut self, event: &str) -> bool {
        self.custom.remove(event)
    }

    /// Sends any frame `{"type": event, "data": data}`; returns whether a client was connected.
    pub fn send_event(&mut self, event: &str, data: &Value) -> bool {
        if self.current.is_none() {
            return false;
        }
        self.send_text(codec::encode_value(event, data))
    }

    /// Sends `_BIN_META` for any `event` then `data` as one binary frame.
    pub fn send_binary_event(
        &mut self,
        event: &str,
        metadata: &Map<String, Value>,
        data: Vec<u8>,
    ) -> bool {
        let Some(conn) = self.current else {
            return false;
        };
        let text = codec::encode_bin_meta(event, metadata);
        self.push(Output::Text { conn, text });
        self.push(Output::Binary { conn, data });
        true
    }

    /// Asks the client for its state (`_GET:KEY`); its `_SET` reply arrives as [`AppEvent::Set`].
    pub fn request_state(&mut self, key: &str) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        let text = codec::encode_value(
            &codec::event_name(codec::GET, &self.entries[i].key),
            &Value::Object(Map::new()),
        );
        Ok(self.send_text(text))
    }

    /// Sends an action to the client's handlers (`_ACTION:KEY`, `{"type": name, ...}`).
    pub fn send_action(&mut self, key: &str, action: Value) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        let text = codec::encode_value(
            &codec::event_name(codec::ACTION, &self.entries[i].key),
            &action,
        );
        Ok(self.send_text(text))
    }

    /// Sends bytes to the client's `_ACTION:KEY` handler: `_BIN_META` then one binary frame.
    pub fn send_binary(
        &mut self,
        key: &str,
        metadata: Map<String, Value>,
        data: Vec<u8>,
    ) -> Result<bool, SyncError> {
        let i = self.lookup(key)?;
        let Some(conn) = self.current else {
            return Ok(false);
        };
        let event = codec::event_name(codec::ACTION, &self.entries[i].key);
        let text = codec::encode_bin_meta(&event, &metadata);
        self.push(Output::Text { conn, text });
        self.push(Output::Binary { conn, data });
        Ok(true)
    }

    /// Shows a toast in the client; returns whether a client was connected.
    pub fn toast(&mut self, kind: ToastKind, message: &str) -> bool {
        self.send_text(codec::encode_toast(kind, message))
    }

    /// Makes the client download a file (`_DOWNLOAD`, base64).
    pub fn download(&mut self, filename: &str, data: &[u8]) -> bool {
        self.send_text(codec::encode_download(filename, data))
    }

    /// Asks the client for its user and session ids (`_REQUEST_USER_SESSION`).
    pub fn request_user_session(&mut self) -> bool {
        self.send_text(codec::REQUEST_USER_SESSION_FRAME.to_owned())
    }

    /// Sends `_DISCONNECT` (the client stops reconnecting) and closes the connection.
    pub fn disconnect(&mut self, message: Option<&str>) -> bool {
        let Some(conn) = self.current.take() else {
            return false;
        };
        let text =
            codec::encode_disconnect(message.unwrap_or(self.config.disconnect_message.as_str()));
        self.push(Output::Text { conn, text });
        self.close(conn, REASON_DISCONNECTED);
        self.bin = BinState::Idle;
        self.push(Output::Event(AppEvent::Disconnected { conn }));
        true
    }

    /// The running action finished; the next queued one is released.
    pub fn action_done(&mut self, action: ActionId) -> Result<(), SyncError> {
        self.finish_action(action)?;
        self.release_action();
        Ok(())
    }

    /// The running action failed: the client gets an error toast, the session goes on.
    pub fn action_failed(&mut self, action: ActionId, error: &str) -> Result<(), SyncError> {
        let done = self.finish_action(action)?;
        self.server_toast(
            ToastKind::Error,
            &format!("action {} failed: {error}", done.name),
        );
        self.log(
            Level::Warn,
            format!("action {} on {} failed: {error}", done.name, done.key),
        );
        self.release_action();
        Ok(())
    }

    /// A task finished normally.
    pub fn task_done(&mut self, task: TaskId) -> Result<(), SyncError> {
        self.end_task(task).map(drop)
    }

    /// A task ended after a cancel request.
    pub fn task_cancelled(&mut self, task: TaskId) -> Result<(), SyncError> {
        self.end_task(task).map(drop)
    }

    /// A task failed: the client gets an error toast, the session goes on.
    pub fn task_failed(&mut self, task: TaskId, error: &str) -> Result<(), SyncError> {
        let info = self
            .tasks
            .remove(&task)
            .ok_or(SyncError::UnknownTask(task))?;
        self.server_toast(
            ToastKind::Error,
            &format!("task {} failed: {error}", info.name),
        );
        self.log(
            Level::Warn,
            format!("task {} on {} failed: {error}", info.name, info.key),
        );
        self.drop_running(&info.key, &info.name);
        Ok(())
    }

    // ---- internals ----------------------------------------------------------------------

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    fn lookup(&self, key: &str) -> Result<usize, SyncError> {
        self.index
            .get(key)
            .copied()
            .ok_or_else(|| SyncError::UnknownKey(key.to_owned()))
    }

    pub(crate) fn warn(&mut self, message: String) {
        self.log(Level::Warn, message);
    }

    fn log(&mut self, level: Level, message: String) {
        self.push(Output::Log { level, message });
    }

    fn push(&mut self, out: Output) {
        self.outputs.push_back(Pending::Out(out));
    }

    /// Sends the full state of key `i` now, or asks the app for it ([`SyncOptions::pull_state`]).
    fn send_full(&mut self, i: usize) {
        if self.entries[i].opts.pull_state {
            let key = self.entries[i].key.clone();
            self.push(Output::Event(AppEvent::StateWanted { key }));
        } else {
            self.send_set(i);
        }
    }

    fn close(&mut self, conn: ConnId, reason: &str) {
        self.push(Output::Close {
            conn,
            code: CLOSE_NORMAL,
            reason: reason.to_owned(),
        });
    }

    fn send_text(&mut self, text: String) -> bool {
        match self.current {
            Some(conn) => {
                self.push(Output::Text { conn, text });
                true
            }
            None => false,
        }
    }

    fn server_toast(&mut self, kind: ToastKind, message: &str) {
        self.send_text(codec::encode_toast(kind, message));
    }

    /// Bad client input: a warning log and an error toast, nothing else.
    fn client_error(&mut self, message: String, frame: &str) {
        self.log(
            Level::Warn,
            format!("{message} (frame: {})", codec::preview(frame, 200)),
        );
        self.server_toast(ToastKind::Error, &message);
    }

    fn send_set(&mut self, i: usize) {
        let Some(conn) = self.current else { return };
        if self.entries[i].opts.expose_running_tasks {
            let key = self.entries[i].key.clone();
            self.drop_running_checks(Some(&key));
        }
        let entry = &mut self.entries[i];
        entry.sent_running.clone_from(&entry.running);
        let event = codec::event_name(codec::SET, &entry.key);
        let with = WithRunning {
            state: &entry.state,
            running: entry.exposed_key().map(|k| (k, entry.running.as_slice())),
        };
        // Serializing a Value (plus a list of strings) cannot fail.
        let text = codec::encode(&event, &with)
            .unwrap_or_else(|_| codec::encode_value(&event, &entry.state));
        self.push(Output::Text { conn, text });
    }

    fn sync_entry(&mut self, i: usize, mut value: Value) -> bool {
        let connected = self.current.is_some();
        let entry = &mut self.entries[i];
        if !connected {
            if entry.keeps_offline() {
                entry.strip_running(&mut value);
                entry.state = value;
            }
            return false;
        }
        entry.strip_running(&mut value);
        // The diff is the equality check: it walks both trees in step (no hashing while the key
        // order agrees) and returns nothing for equal documents.
        let ops = diff(&entry.state, &value);
        if ops.is_empty() {
            return false;
        }
        entry.state = value;
        self.send_patch(i, &ops);
        true
    }

    /// [`Session::sync_entry`] for a typed value, diffed while it is serialized.
    fn sync_entry_serialize<T: Serialize + ?Sized>(
        &mut self,
        i: usize,
        value: &T,
    ) -> Result<bool, tether_patch::DiffSerializeError> {
        let connected = self.current.is_some();
        let entry = &mut self.entries[i];
        if !connected && !entry.keeps_offline() {
            return Ok(false);
        }
        let except = entry
            .opts
            .expose_running_tasks
            .then_some(entry.opts.running_tasks_key.as_str());
        let mut ops = Vec::new();
        let result = diff_serialize_except(&mut entry.state, value, except, &mut ops);
        // While disconnected the baseline is only kept for the reconnect `_SET`.
        let sent = connected && !ops.is_empty();
        if sent {
            self.send_patch(i, &ops);
        }
        result.map(|()| sent)
    }

    fn send_patch(&mut self, i: usize, ops: &[PatchOp]) {
        let event = codec::event_name(codec::PATCH, &self.entries[i].key);
        match codec::encode(&event, ops) {
            Ok(text) => {
                self.send_text(text);
            }
            Err(e) => self.log(Level::Error, format!("could not encode {event}: {e}")),
        }
    }

    /// Queues a check of the client's running-tasks list, done when polled
    /// ([`Session::running_patch`]), if exposed and connected.
    fn send_running(&mut self, i: usize) {
        if self.current.is_none() || self.entries[i].exposed_key().is_none() {
            return;
        }
        // One check per key at the back covers the earlier ones: running-tasks patches touch
        // only that key, so moving them later keeps the client consistent.
        let key = self.entries[i].key.clone();
        self.drop_running_checks(Some(&key));
        self.outputs.push_back(Pending::Running(key));
    }

    /// The `_PATCH` that brings the client's running-tasks list of `key` to the engine's, if
    /// they differ (polled in queue order, so the client's list is `sent_running` here).
    fn running_patch(&mut self, key: &str) -> Option<Output> {
        let conn = self.current?;
        let i = self.index.get(key).copied()?;
        let entry = &mut self.entries[i];
        let rkey = entry.exposed_key()?;
        if entry.sent_running == entry.running {
            return None;
        }
        let to_values = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let mut prefix = String::new();
        pointer::push_token(&mut prefix, rkey);
        let ops: Vec<PatchOp> = diff(&to_values(&entry.sent_running), &to_values(&entry.running))
            .into_iter()
            .map(|op| prefix_op(&prefix, op))
            .collect();
        entry.sent_running.clone_from(&entry.running);
        let event = codec::event_name(codec::PATCH, key);
        match codec::encode(&event, &ops) {
            Ok(text) => Some(Output::Text { conn, text }),
            Err(e) => Some(Output::Log {
                level: Level::Error,
                message: format!("could not encode {event}: {e}"),
            }),
        }
    }

    /// Drops the queued running-tasks checks of `key` (all keys for `None`): a full `_SET` or a
    /// new connection supersedes them.
    fn drop_running_checks(&mut self, key: Option<&str>) {
        self.outputs
            .retain(|p| !matches!(p, Pending::Running(k) if key.is_none_or(|key| key == k)));
    }

    /// After a client `_SET`/`_PATCH` touched the running-tasks key: put the truth back.
    fn fix_running(&mut self, i: usize, client: Option<Value>) {
        let entry = &mut self.entries[i];
        let Some(rkey) = entry.exposed_key() else {
            return;
        };
        let mut path = String::new();
        pointer::push_token(&mut path, rkey);
        let want: Vec<Value> = entry.running.iter().cloned().map(Value::String).collect();
        entry.sent_running.clone_from(&entry.running);
        let op = match client {
            Some(Value::Array(have)) if have == want => return,
            Some(_) => PatchOp::replace(path, Value::Array(want)),
            None => PatchOp::add(path, Value::Array(want)),
        };
        self.send_patch(i, &[op]);
    }

    fn unknown(&mut self, event: String, frame: &str) {
        let message = format!("unknown event: {event}");
        if self.config.toast_unknown_events {
            self.client_error(message, frame);
        } else {
            self.log(
                Level::Warn,
                format!("{message} (frame: {})", codec::preview(frame, 200)),
            );
        }
    }

    fn keyed(&mut self, prefix: &str, key: &str, frame: &str) -> Option<usize> {
        let found = self.index.get(key).copied();
        if found.is_none() {
            self.unknown(codec::event_name(prefix, key), frame);
        }
        found
    }

    fn dispatch(&mut self, frame: ClientFrame, text: &str) {
        match frame {
            ClientFrame::Set { key, state } => {
                let Some(i) = self.keyed(codec::SET, &key, text) else {
                    return;
                };
                let mut value = Value::Object(state);
                let entry = &mut self.entries[i];
                let client_running = entry.strip_running(&mut value);
                entry.state = value;
                entry.revision = None;
                let value = entry.state.clone();
                self.push(Output::Event(AppEvent::Set { key, value }));
                self.fix_running(i, client_running);
            }
            ClientFrame::Get { key } => {
                if let Some(i) = self.keyed(codec::GET, &key, text) {
                    self.send_full(i);
                }
            }
            ClientFrame::Patch { key, ops } => {
                let Some(i) = self.keyed(codec::PATCH, &key, text) else {
                    return;
                };
                self.client_patch(i, key, ops, text);
            }
            ClientFrame::Action { key, name, args } => {
                if self.keyed(codec::ACTION, &key, text).is_some() {
                    self.enqueue_action(key, name, args, None);
                }
            }
            ClientFrame::TaskStart { key, name, args } => {
                if self.keyed(codec::TASK_START, &key, text).is_some() {
                    self.start_task(key, name, args, None);
                }
            }
            ClientFrame::TaskCancel { key, name } => {
                if self.keyed(codec::TASK_CANCEL, &key, text).is_some() {
                    self.cancel_task(&key, &name);
                }
            }
            ClientFrame::BinMeta { event, metadata } => self.bin_meta(event, metadata, text),
            ClientFrame::UserSession { user, session } => {
                self.push(Output::Event(AppEvent::UserSession { user, session }))
            }
            ClientFrame::Unknown { event } => self.unknown(event, text),
        }
    }

    fn client_patch(&mut self, i: usize, key: String, ops: Vec<PatchOp>, text: &str) {
        let entry = &mut self.entries[i];
        let touches = entry.exposed_key().is_some_and(|rkey| {
            ops.iter().any(|op| {
                touches_key(op.path(), rkey) || op.from().is_some_and(|f| touches_key(f, rkey))
            })
        });
        let mut inserted = false;
        if touches {
            let list = entry
                .sent_running
                .iter()
                .cloned()
                .map(Value::String)
                .collect();
            if let Value::Object(map) = &mut entry.state {
                map.insert(entry.opts.running_tasks_key.clone(), Value::Array(list));
                inserted = true;
            }
        }
        let result = apply_with(&mut entry.state, &ops, Mode::Lenient);
        let client_running = if inserted {
            let rkey = entry.opts.running_tasks_key.as_str();
            match &mut entry.state {
                Value::Object(map) => map.shift_remove(rkey),
                _ => None,
            }
        } else {
            None
        };
        if let Err(e) = result {
            let msg = format!(
                "could not apply {}: {e}",
                codec::event_name(codec::PATCH, &key)
            );
            return self.client_error(msg, text);
        }
        entry.revision = None;
        let value = entry.state.clone();
        self.push(Output::Event(AppEvent::Patched { key, value, ops }));
        if touches {
            self.fix_running(i, client_running);
        }
    }

    fn bin_meta(&mut self, event: String, metadata: Map<String, Value>, text: &str) {
        self.bin = BinState::Discard;
        let task = match event.split_once(':') {
            Some((codec::ACTION, _)) => false,
            Some((codec::TASK_START, _)) => true,
            _ => {
                return self.client_error(
                    "bad data for _BIN_META: binary is only accepted for _ACTION:KEY and _TASK_START:KEY"
                        .to_owned(),
                    text,
                );
            }
        };
        let key = event.split_once(':').map(|(_, k)| k).unwrap_or_default();
        if !self.index.contains_key(key) {
            return self.unknown(event, text);
        }
        let Some((name, args)) = codec::split_typed(Value::Object(metadata)) else {
            let msg = format!(r#"bad data for {event}: expected an object with a string "type""#);
            return self.client_error(msg, text);
        };
        self.bin = BinState::Expect {
            task,
            key: key.to_owned(),
            name,
            args,
        };
    }

    fn enqueue_action(
        &mut self,
        key: String,
        name: String,
        args: Map<String, Value>,
        binary: Option<Vec<u8>>,
    ) {
        if self.running_action.is_some() {
            if self.queue.len() >= self.config.max_pending_actions {
                let msg = format!("too many pending actions; {name} dropped");
                return self.client_error(msg, &name);
            }
            self.queue.push_back(QueuedAction {
                key,
                name,
                args,
                binary,
            });
            return;
        }
        self.run_action(QueuedAction {
            key,
            name,
            args,
            binary,
        });
    }

    fn run_action(&mut self, a: QueuedAction) {
        let id = ActionId(self.next_action);
        self.next_action += 1;
        self.running_action = Some(RunningAction {
            id,
            key: a.key.clone(),
            name: a.name.clone(),
        });
        self.push(Output::Event(AppEvent::RunAction {
            action: id,
            key: a.key,
            name: a.name,
            args: a.args,
            binary: a.binary,
        }));
    }

    fn finish_action(&mut self, action: ActionId) -> Result<RunningAction, SyncError> {
        match self.running_action.take() {
            Some(a) if a.id == action => Ok(a),
            other => {
                self.running_action = other;
                Err(SyncError::UnknownAction(action))
            }
        }
    }

    fn release_action(&mut self) {
        if let Some(next) = self.queue.pop_front() {
            self.run_action(next);
        }
    }

    fn start_task(
        &mut self,
        key: String,
        name: String,
        args: Map<String, Value>,
        binary: Option<Vec<u8>>,
    ) {
        let Some(i) = self.index.get(&key).copied() else {
            return self.unknown(codec::event_name(codec::TASK_START, &key), &name);
        };
        if self.entries[i].running.contains(&name) {
            return self.log(
                Level::Warn,
                format!("task {name} on {key} is already running; start ignored"),
            );
        }
        if self.tasks.len() >= self.config.max_running_tasks {
            let msg = format!("too many running tasks; {name} refused");
            return self.client_error(msg, &name);
        }
        let id = TaskId(self.next_task);
        self.next_task += 1;
        self.entries[i].running.push(name.clone());
        self.tasks.insert(
            id,
            TaskInfo {
                key: key.clone(),
                name: name.clone(),
                cancelling: false,
            },
        );
        self.push(Output::Event(AppEvent::StartTask {
            task: id,
            key,
            name,
            args,
            binary,
        }));
        self.send_running(i);
    }

    fn cancel_task(&mut self, key: &str, name: &str) {
        let found = self
            .tasks
            .iter_mut()
            .find(|(_, t)| t.key == key && t.name == name);
        let Some((&id, info)) = found else {
            return self.log(
                Level::Debug,
                format!("task {name} on {key} is not running; cancel ignored"),
            );
        };
        if info.cancelling {
            return self.log(
                Level::Debug,
                format!("task {name} on {key} is already being cancelled"),
            );
        }
        // Cancel before start: the app has not seen the StartTask yet, so it never starts.
        let unseen = self.outputs.iter().position(|o| {
            matches!(o, Pending::Out(Output::Event(AppEvent::StartTask { task, .. })) if *task == id)
        });
        if let Some(pos) = unseen {
            self.outputs.remove(pos);
            self.tasks.remove(&id);
            self.drop_running(key, name);
            return;
        }
        info.cancelling = true;
        self.push(Output::Event(AppEvent::CancelTask {
            task: id,
            key: key.to_owned(),
            name: name.to_owned(),
        }));
    }

    fn end_task(&mut self, task: TaskId) -> Result<TaskInfo, SyncError> {
        let info = self
            .tasks
            .remove(&task)
            .ok_or(SyncError::UnknownTask(task))?;
        self.drop_running(&info.key, &info.name);
        Ok(info)
    }

    fn drop_running(&mut self, key: &str, name: &str) {
        let Some(i) = self.index.get(key).copied() else {
            return;
        };
        let running = &mut self.entries[i].running;
        if let Some(pos) = running.iter().position(|n| n == name) {
            running.remove(pos);
            self.send_running(i);
        }
    }
}

/// The top-level keys of `state` that client `ops` (read leniently, as the engine applies them)
/// reached, in order: what an app re-reads after [`AppEvent::Patched`]. A root path reaches
/// every key; otherwise the key that is the first token, or a key containing `/` that the raw
/// path starts with.
pub fn touched_keys(state: &Value, ops: &[PatchOp]) -> Vec<String> {
    let Value::Object(map) = state else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut add = |k: &String| {
        if !out.contains(k) {
            out.push(k.clone());
        }
    };
    for op in ops {
        for path in std::iter::once(op.path()).chain(op.from()) {
            if path.is_empty() || path == "/" && !map.contains_key("") {
                map.keys().for_each(&mut add);
                continue;
            }
            if let Ok(tokens) = pointer::parse(path)
                && let Some(first) = tokens.first()
                && let Some((k, _)) = map.get_key_value(first)
            {
                add(k);
            }
            let raw = path.strip_prefix('/').unwrap_or(path);
            for k in map.keys() {
                if raw == k
                    || raw
                        .strip_prefix(k.as_str())
                        .is_some_and(|r| r.starts_with('/'))
                {
                    add(k);
                }
            }
        }
    }
    out
}

/// Whether a client path's first segment is `key` (escaped or raw), or the whole document.
fn touches_key(path: &str, key: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return path.is_empty();
    };
    if rest.is_empty() {
        return true;
    }
    let escaped = pointer::escape(key);
    [escaped.as_ref(), key].iter().any(|k| {
        rest.strip_prefix(k)
            .is_some_and(|tail| tail.is_empty() || tail.starts_with('/'))
    })
}

fn prefix_op(prefix: &str, op: PatchOp) -> PatchOp {
    let p = |s: String| format!("{prefix}{s}");
    match op {
        PatchOp::Add { path, value } => PatchOp::Add {
            path: p(path),
            value,
        },
        PatchOp::Remove { path } => PatchOp::Remove { path: p(path) },
        PatchOp::Replace { path, value } => PatchOp::Replace {
            path: p(path),
            value,
        },
        PatchOp::Move { from, path } => PatchOp::Move {
            from: p(from),
            path: p(path),
        },
        PatchOp::Copy { from, path } => PatchOp::Copy {
            from: p(from),
            path: p(path),
        },
        PatchOp::Test { path, value } => PatchOp::Test {
            path: p(path),
            value,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(s: &mut Session) -> Vec<String> {
        let mut t = Vec::new();
        while let Some(out) = s.poll_output() {
            if let Output::Text { text, .. } = out {
                t.push(text);
            }
        }
        t
    }

    #[test]
    fn touches_key_reads_escaped_raw_and_root_paths() {
        assert!(touches_key("/running_tasks", "running_tasks"));
        assert!(touches_key("/running_tasks/0", "running_tasks"));
        assert!(!touches_key("/running_tasks_x", "running_tasks"));
        assert!(touches_key("/a~1b/0", "a/b"));
        assert!(touches_key("/a/b/0", "a/b"));
        assert!(touches_key("/", "k"));
        assert!(touches_key("", "k"));
        assert!(!touches_key("/other", "k"));
    }

    #[test]
    fn unregister_keeps_other_keys_addressable() {
        let mut s = Session::default();
        for k in ["A", "B", "C"] {
            s.register(k, json!({"k": k}), SyncOptions::default())
                .expect("register");
        }
        s.unregister("A").expect("unregister");
        assert_eq!(s.keys().collect::<Vec<_>>(), ["B", "C"]);
        assert_eq!(s.state("C"), Some(&json!({"k": "C"})));
        assert_eq!(s.unregister("A"), Err(SyncError::UnknownKey("A".into())));
    }

    #[test]
    fn client_patch_forgets_the_revision() {
        let mut s = Session::default();
        s.register("K", json!({"a": 1}), SyncOptions::default())
            .expect("register");
        s.handle_connect(ConnId(1));
        texts(&mut s);
        assert_eq!(s.sync_if_changed("K", 5, || json!({"a": 2})), Ok(true));
        s.handle_text(
            ConnId(1),
            r#"{"type":"_PATCH:K","data":[{"op":"replace","path":"/a","value":3}]}"#,
        );
        texts(&mut s);
        // Same revision, but the client moved the baseline: the app's value is compared again.
        assert_eq!(s.sync_if_changed("K", 5, || json!({"a": 2})), Ok(true));
        assert_eq!(
            texts(&mut s),
            [r#"{"type":"_PATCH:K","data":[{"op":"replace","path":"/a","value":2}]}"#]
        );
    }

    #[test]
    fn failed_snapshot_leaves_the_baseline_and_toasts() {
        let mut s = Session::default();
        s.register("K", json!({"a": 1}), SyncOptions::default())
            .expect("register");
        s.handle_connect(ConnId(1));
        texts(&mut s);
        let r = s.try_sync_if_changed("K", 1, || Err("boom"));
        assert!(matches!(r, Err(SyncError::Snapshot { .. })));
        assert_eq!(s.state("K"), Some(&json!({"a": 1})));
        assert_eq!(
            texts(&mut s),
            [
                r#"{"type":"_TOAST","data":{"type":"error","message":"server error: could not serialize the state of K"}}"#
            ]
        );
    }

    #[test]
    fn running_tasks_survive_reconnect_and_are_in_the_set() {
        let opts = SyncOptions {
            expose_running_tasks: true,
            ..SyncOptions::default()
        };
        let mut s = Session::default();
        s.register("K", json!({}), opts).expect("register");
        s.handle_connect(ConnId(1));
        s.handle_text(ConnId(1), r#"{"type":"_TASK_START:K","data":{"type":"T"}}"#);
        s.handle_close(ConnId(1));
        texts(&mut s);
        s.handle_connect(ConnId(2));
        assert_eq!(
            texts(&mut s),
            [r#"{"type":"_SET:K","data":{"running_tasks":["T"]}}"#]
        );
        s.task_done(TaskId(1)).expect("running");
        assert_eq!(
            texts(&mut s),
            [r#"{"type":"_PATCH:K","data":[{"op":"remove","path":"/running_tasks/0"}]}"#]
        );
    }

    #[test]
    fn sync_serialize_matches_sync_and_skips_the_running_tasks_key() {
        let opts = SyncOptions {
            expose_running_tasks: true,
            ..SyncOptions::default()
        };
        let mut s = Session::default();
        s.register("K", json!({"a": [1, 2]}), opts)
            .expect("register");
        // Disconnected: the baseline is kept for the reconnect `_SET`, nothing is sent.
        let v = json!({"a": [0, 1, 2], "running_tasks": ["x"]});
        assert_eq!(s.sync_serialize("K", &v), Ok(false));
        assert_eq!(s.state("K"), Some(&json!({"a": [0, 1, 2]})));
        s.handle_connect(ConnId(1));
        texts(&mut s);
        let v = json!({"a": [0, 1, 2, 3], "running_tasks": ["y"]});
        assert_eq!(s.sync_serialize("K", &v), Ok(true));
        assert_eq!(
            texts(&mut s),
            [r#"{"type":"_PATCH:K","data":[{"op":"add","path":"/a/3","value":3}]}"#]
        );
        assert_eq!(s.sync_serialize("K", &v), Ok(false));
        assert_eq!(s.sync_serialize_if_changed("K", 7, &v), Ok(false));
        assert_eq!(
            s.sync_serialize_if_changed("K", 7, &json!({})),
            Ok(false),
            "same revision"
        );
        assert!(matches!(
            s.sync_serialize("nope", &v),
            Err(SyncError::UnknownKey(_))
        ));
    }
}
