//! What crosses between a host and an [`crate::Isolate`]: its [`Config`], the [`Request`]s it
//! handles and the [`Response`]s it answers with, host ops ([`Op`], [`Completion`]) and module
//! hooks ([`ModuleResolver`], [`ModuleLoader`]), and the [`Stats`] it reports.

use std::sync::Arc;
use std::time::Duration;

use crate::code_cache::{CodeCacheCounters, CodeCacheLimits};
use crate::convert::Limits;
use crate::error::JsError;
use crate::snapshot::Snapshot;
use crate::value::HostValue;

/// The URL prefix of modules added with `add_static_module`.
pub const STATIC_PREFIX: &str = "jsrun://static/";

/// How a runtime is set up, so hosts can bound what JS may use.
#[derive(Clone, Debug)]
pub struct Config {
    /// Heap limit in bytes; reaching it terminates the runtime.
    pub memory_limit: Option<usize>,
    /// Heap size the garbage collector lets the heap grow to before its first run (jsrun's
    /// `initial_heap_size`).
    pub gc_threshold: Option<usize>,
    /// JS stack limit in bytes (deep recursion becomes a RangeError).
    pub max_stack_size: usize,
    /// Default time limit for every evaluation.
    pub timeout: Option<Duration>,
    /// Whether `console.*` prints (to stdout/stderr); otherwise it is silent.
    pub console: bool,
    /// JS → host conversion limits.
    pub limits: Limits,
    /// Scripts replayed at start (from a [`Snapshot`]).
    pub snapshot: Option<Snapshot>,
    /// A classic script run at start.
    pub bootstrap: Option<String>,
    /// Compiled `eval` sources kept for reuse (bounded; [`CodeCacheLimits::OFF`] turns it off).
    /// With a [`Config::memory_limit`], the cache keeps at most an eighth of it, since its
    /// bytecode lives on the JS heap.
    pub code_cache: CodeCacheLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            memory_limit: None,
            gc_threshold: None,
            max_stack_size: 2 * 1024 * 1024,
            timeout: None,
            console: false,
            limits: Limits::default(),
            snapshot: None,
            bootstrap: None,
            code_cache: CodeCacheLimits::DEFAULT,
        }
    }
}

/// A synchronous host op: JS arguments in, a value or an error message (thrown as a TypeError)
/// out.
pub type SyncOp = Arc<dyn Fn(Vec<HostValue>) -> Result<HostValue, String> + Send + Sync>;
/// An asynchronous host op: it must eventually call [`Completion::complete`] (from any thread).
pub type AsyncOp = Arc<dyn Fn(Vec<HostValue>, Completion) + Send + Sync>;

/// A host op registered with [`Request::RegisterOp`].
#[derive(Clone)]
pub enum Op {
    /// Runs on the runtime's thread and returns at once.
    Sync(SyncOp),
    /// Returns a JS promise settled by the [`Completion`].
    Async(AsyncOp),
}

/// Where completions of async ops go (the adapter turns them into [`Request::Complete`]).
pub type CompletionSink = Arc<dyn Fn(u64, Result<HostValue, String>) + Send + Sync>;

/// The promise of one async op call; settle it exactly once (dropping it leaves the promise
/// pending).
pub struct Completion {
    pub(crate) call: u64,
    pub(crate) sink: CompletionSink,
}

impl Completion {
    /// Settles the JS promise: `Ok` resolves it, `Err(message)` rejects it with a TypeError.
    pub fn complete(self, result: Result<HostValue, String>) {
        (self.sink)(self.call, result);
    }
}

/// Resolves `(specifier, referrer)` to a URL, or `None` to fall back to the static modules; an
/// error message is shown as it is.
pub type ModuleResolver = Box<dyn FnMut(&str, &str) -> Result<Option<String>, String> + Send>;
/// Loads a resolved URL's source; the flag says whether the caller awaits (so the loader may
/// block on async work).
pub type ModuleLoader = Box<dyn FnMut(&str, bool) -> Result<String, String> + Send>;

/// What to do with a promise result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Await {
    /// Return the value as it is (a promise converts to `{}`).
    No,
    /// Wait for a promise to settle (up to the timeout).
    Yes,
    /// Return a settled promise's value; keep a pending one as a handle ([`Response::Pending`]).
    IfSettled,
}

/// A request to the isolate.
pub enum Request {
    /// Evaluates a classic script and returns its completion value.
    Eval {
        /// Source.
        code: String,
        /// Time limit (falls back to the config's).
        timeout: Option<Duration>,
        /// Promise handling.
        wait: Await,
    },
    /// Imports a module (resolver, loader, static modules) and returns its namespace.
    EvalModule {
        /// Specifier as given by the host.
        specifier: String,
        /// Time limit.
        timeout: Option<Duration>,
        /// Whether the host awaits (allows async loaders).
        is_async: bool,
    },
    /// Calls a function handle.
    Call {
        /// The handle.
        func: u64,
        /// Arguments.
        args: Vec<HostValue>,
        /// Time limit.
        timeout: Option<Duration>,
        /// Promise handling.
        wait: Await,
    },
    /// Waits for a promise handle from [`Response::Pending`] (and releases it).
    AwaitHandle {
        /// The handle.
        handle: u64,
        /// Time limit.
        timeout: Option<Duration>,
    },
    /// Sets `globalThis[name]`.
    SetGlobal {
        /// Property name (any string).
        name: String,
        /// Value.
        value: HostValue,
    },
    /// Registers a host op under an id the host chose.
    RegisterOp {
        /// The id JS passes to `__host_op_sync__`/`__host_op_async__`.
        id: u32,
        /// Display name (for errors).
        name: String,
        /// The op.
        op: Op,
    },
    /// Settles an async op call.
    Complete {
        /// The call id from [`Completion`].
        call: u64,
        /// The value or an error message.
        result: Result<HostValue, String>,
    },
    /// Drops a handle.
    Release(u64),
    /// Adds a module importable as `name`, `static:name` or `jsrun://static/name`.
    AddStaticModule {
        /// Name.
        name: String,
        /// ES module source.
        source: String,
    },
    /// Sets (or clears) the module resolver.
    SetResolver(Option<ModuleResolver>),
    /// Sets (or clears) the module loader.
    SetLoader(Option<ModuleLoader>),
    /// Reports counters and heap figures.
    Stats,
    /// Compiles a classic script to bytecode, then runs it (for [`crate::SnapshotBuilder`]).
    RunScript {
        /// Script name (for stack traces).
        name: String,
        /// Source.
        source: String,
    },
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// A value.
    Value(HostValue),
    /// A still-pending promise, kept as this handle (see [`Request::AwaitHandle`]).
    Pending(u64),
    /// Statistics.
    Stats(Stats),
    /// Nothing to return.
    Done,
    /// Compiled bytecode.
    Bytecode(Vec<u8>),
}

/// The callback that receives a request's answer (exactly once).
pub type Reply = Box<dyn FnOnce(Result<Response, JsError>) + Send>;

/// Counters and heap figures, so hosts can watch a runtime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Bytes allocated by the engine.
    pub heap_used_bytes: u64,
    /// Bytes the engine's allocator holds (malloc limit when set, else used).
    pub heap_total_bytes: u64,
    /// Milliseconds spent running JS in total.
    pub total_execution_time_ms: u64,
    /// Milliseconds of the last request.
    pub last_execution_time_ms: u64,
    /// Kind of the last request (`eval_sync`, `eval_async`, …).
    pub last_execution_kind: Option<&'static str>,
    /// Number of sync evals.
    pub eval_sync_count: u64,
    /// Number of async evals.
    pub eval_async_count: u64,
    /// Number of sync module evals.
    pub eval_module_sync_count: u64,
    /// Number of async module evals.
    pub eval_module_async_count: u64,
    /// Number of sync function calls.
    pub call_function_sync_count: u64,
    /// Number of async function calls.
    pub call_function_async_count: u64,
    /// Async op calls not yet settled.
    pub active_async_ops: u64,
    /// Handles held by the host.
    pub open_resources: u64,
    /// Pending `setTimeout`s.
    pub active_timers: u64,
    /// Live `setInterval`s.
    pub active_intervals: u64,
    /// The `eval` code cache: hits, misses, evictions, and what it holds.
    pub code_cache: CodeCacheCounters,
}
