//! Sync apps written in Rust: a typed value shared by every connected page, actions and tasks
//! as async closures, served over ws-sync WebSockets by [`adapter`].
//!
//! ```ignore
//! let todos = SyncedObject::new("TODOS", Todos::default());
//! let app = SyncApp::new(todos)
//!     .action("ADD", |ctx: Ctx<Todos>, args: Add| async move {
//!         ctx.update(|t| t.items.push(args.text));   // every page gets a `_PATCH`
//!         Ok(())
//!     })
//!     .task("COUNT", |ctx: Ctx<Todos>, args: Count, _cancel| async move {
//!         for i in 1..=args.n { ctx.update(|t| t.n = i); sleep(STEP).await; }
//!         Ok(())
//!     })
//!     .on_cancel("COUNT", |ctx: Ctx<Todos>| async move { ctx.update(|t| t.n = 0) });
//! router.route("/ws/sync/todos", adapter::route(Arc::new(app), drain, queue_frames));
//! ```
//!
//! Each WebSocket gets its own `tether_sync::Session` (the sans-IO engine); the value lives
//! once, in the [`SyncedObject`], with a revision counter: a change wakes every connection,
//! which then sends a `_PATCH` (unchanged connections cost an integer compare).

pub mod adapter;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tether_sync::{Config, Session, SyncError, SyncOptions, ToastKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Why a handler failed; the client sees it in an error toast (`action <name> failed: <msg>`).
///
/// Any `std::error::Error` converts into it, so `?` works inside handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(String);

impl HandlerError {
    /// A failure with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// What handlers return.
pub type HandlerResult = Result<(), HandlerError>;

type BoxFuture<O> = Pin<Box<dyn Future<Output = O> + Send>>;
type ActionFn<T> = Arc<
    dyn Fn(Ctx<T>, Map<String, Value>) -> Result<BoxFuture<HandlerResult>, HandlerError>
        + Send
        + Sync,
>;
type TaskFn<T> = Arc<
    dyn Fn(
            Ctx<T>,
            Map<String, Value>,
            CancellationToken,
        ) -> Result<BoxFuture<HandlerResult>, HandlerError>
        + Send
        + Sync,
>;
type CancelFn<T> = Arc<dyn Fn(Ctx<T>) -> BoxFuture<()> + Send + Sync>;

struct Versioned<T> {
    value: T,
    revision: u64,
}

struct ObjectInner<T> {
    key: String,
    state: Mutex<Versioned<T>>,
    changed: watch::Sender<u64>,
}

/// A typed value mirrored under one key to every connected session; cloning shares it.
pub struct SyncedObject<T> {
    inner: Arc<ObjectInner<T>>,
}

impl<T> Clone for SyncedObject<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SyncedObject<T> {
    /// Shares `value` under `key` (the ws-sync key, e.g. `TODOS`).
    pub fn new(key: impl Into<String>, value: T) -> Self {
        let (changed, _) = watch::channel(1);
        Self {
            inner: Arc::new(ObjectInner {
                key: key.into(),
                state: Mutex::new(Versioned { value, revision: 1 }),
                changed,
            }),
        }
    }

    /// The key the value is synced under.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    fn lock(&self) -> MutexGuard<'_, Versioned<T>> {
        // A handler that panicked inside `update` leaves a value that is still a valid T.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the value (never across an await: the lock is held while `f` runs).
    #[allow(dead_code, reason = "API for apps; the demo only writes")]
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock().value)
    }

    /// Changes the value and syncs it to every connected session.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let (r, revision) = {
            let mut s = self.lock();
            let r = f(&mut s.value);
            s.revision += 1;
            (r, s.revision)
        };
        self.inner.changed.send_replace(revision);
        r
    }

    /// Registers the key on a fresh engine session with the current value.
    fn register(&self, session: &mut Session, options: SyncOptions) -> Result<(), SyncError> {
        let s = self.lock();
        let json = serde_json::to_value(&s.value).map_err(|e| SyncError::Snapshot {
            key: self.inner.key.clone(),
            message: e.to_string(),
        })?;
        session.register(self.inner.key.clone(), json.clone(), options)?;
        // Record the revision the snapshot is of: the first sync costs nothing.
        session.sync_if_changed(&self.inner.key, s.revision, || json)?;
        Ok(())
    }

    /// Sends a `_PATCH` to this session if the value moved since its last sync.
    fn sync(&self, session: &mut Session) -> Result<bool, SyncError> {
        let s = self.lock();
        session.sync_serialize_if_changed(&self.inner.key, s.revision, &s.value)
    }

    /// Adopts a client's `_SET`/`_PATCH`; a value that does not deserialize is refused.
    fn adopt(&self, value: &Value) -> Result<(), serde_json::Error> {
        let v = T::deserialize(value)?;
        self.update(|t| *t = v);
        Ok(())
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}

/// Something a handler asks its connection to do (queued to the connection's loop).
pub(crate) enum Command {
    Toast(ToastKind, String),
    Binary(Map<String, Value>, Vec<u8>),
    ActionEnd(tether_sync::ActionId, Result<(), String>),
    TaskEnd(tether_sync::TaskId, TaskEnd),
}

/// How a task ended.
pub(crate) enum TaskEnd {
    Done,
    Cancelled,
    Failed(String),
}

/// What a handler gets: the shared value, and the session that called it.
pub struct Ctx<T> {
    object: SyncedObject<T>,
    commands: mpsc::Sender<Command>,
    binary: Option<Arc<[u8]>>,
}

impl<T> Clone for Ctx<T> {
    fn clone(&self) -> Self {
        Self {
            object: self.object.clone(),
            commands: self.commands.clone(),
            binary: self.binary.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Ctx<T> {
    /// Reads the shared value.
    #[allow(dead_code, reason = "API for apps; the demo only writes")]
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.object.read(f)
    }

    /// Changes the shared value; every connected session gets the patch.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.object.update(f)
    }

    /// The bytes of a binary action or task start (`sendBinary` in the browser).
    pub fn binary(&self) -> Option<&[u8]> {
        self.binary.as_deref()
    }

    /// Shows a toast on the calling session's page.
    pub fn toast(&self, kind: ToastKind, message: impl Into<String>) {
        self.command(Command::Toast(kind, message.into()));
    }

    /// Sends bytes to the calling page's `_ACTION:KEY` handler (`{data, ...metadata}`).
    pub fn send_binary(&self, metadata: Map<String, Value>, data: Vec<u8>) {
        self.command(Command::Binary(metadata, data));
    }

    fn command(&self, c: Command) {
        // The queue is bounded; a handler flooding a connection loses frames, not memory.
        if let Err(e) = self.commands.try_send(c) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "connection gone",
            };
            tracing::debug!("sync handler output dropped: {why}");
        }
    }
}

/// One synced object with its actions and tasks: what a sync WebSocket route serves.
pub struct SyncApp<T> {
    object: SyncedObject<T>,
    options: SyncOptions,
    config: Config,
    actions: HashMap<String, ActionFn<T>>,
    tasks: HashMap<String, TaskFn<T>>,
    cancels: HashMap<String, CancelFn<T>>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SyncApp<T> {
    /// An app around `object`, sent on connect with the running tasks exposed (`running_tasks`).
    pub fn new(object: SyncedObject<T>) -> Self {
        Self {
            object,
            options: SyncOptions {
                send_on_init: true,
                expose_running_tasks: true,
                running_tasks_key: "running_tasks".to_owned(),
                pull_state: false,
            },
            config: Config::default(),
            actions: HashMap::new(),
            tasks: HashMap::new(),
            cancels: HashMap::new(),
        }
    }

    /// Replaces the key's options (ws-sync's `Sync(...)` arguments).
    pub fn options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the engine limits (frame size, queued actions, running tasks).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Registers action `name`: its args (the action object minus `type`) deserialize into `A`
    /// (use `serde::de::IgnoredAny` for none). Actions of one session run one at a time.
    pub fn action<A, F, Fut>(mut self, name: &str, f: F) -> Self
    where
        A: DeserializeOwned,
        F: Fn(Ctx<T>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let f: ActionFn<T> = Arc::new(move |ctx, args| {
            let a = parse_args::<A>(args)?;
            Ok(Box::pin(f(ctx, a)) as BoxFuture<HandlerResult>)
        });
        self.actions.insert(name.to_owned(), f);
        self
    }

    /// Registers task `name`; tasks run concurrently (one instance per name). On cancel the
    /// future is dropped at its next await and the [`SyncApp::on_cancel`] handler runs; the token
    /// is for work the task hands off.
    pub fn task<A, F, Fut>(mut self, name: &str, f: F) -> Self
    where
        A: DeserializeOwned,
        F: Fn(Ctx<T>, A, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let f: TaskFn<T> = Arc::new(move |ctx, args, cancel| {
            let a = parse_args::<A>(args)?;
            Ok(Box::pin(f(ctx, a, cancel)) as BoxFuture<HandlerResult>)
        });
        self.tasks.insert(name.to_owned(), f);
        self
    }

    /// Runs `f` after task `name` was cancelled, before it leaves `running_tasks`.
    pub fn on_cancel<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(Ctx<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f: CancelFn<T> = Arc::new(move |ctx| Box::pin(f(ctx)) as BoxFuture<()>);
        self.cancels.insert(name.to_owned(), f);
        self
    }
}

fn parse_args<A: DeserializeOwned>(args: Map<String, Value>) -> Result<A, HandlerError> {
    tether_sync::parse_args(args).map_err(|e| HandlerError(format!("bad arguments: {e}")))
}
