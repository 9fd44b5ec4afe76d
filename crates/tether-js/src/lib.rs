//! `tether-js`: a JavaScript runtime per isolate on QuickJS-NG (through `rquickjs`).
//!
//! [`Isolate`] is the engine ([`Request`]s in, [`Reply`] callbacks out, and [`Isolate::poll`]
//! for timers and promises). [`Runtime`] runs one on its own thread, which
//! blocks on a bounded channel (with a timeout at the next timer or promise deadline), so an
//! idle runtime uses no CPU. A blocking request made while that thread is idle and nothing is
//! queued runs on the caller's thread instead (no thread hand-off). A runtime costs about 0.45 ms to create and close, and about
//! 0.2 MB of RSS.
//!
//! What JS gets: ES2024+ (QuickJS-NG), `setTimeout`/`setInterval`/`clearTimeout`/
//! `clearInterval`/`queueMicrotask`, `console` (silent unless [`Config::console`]), a minimal
//! `ReadableStream`, ES modules (static, or through a host resolver and loader) with dynamic
//! `import()` and top-level await, and host functions ([`Op`], called through
//! `__host_op_sync__`/`__host_op_async__` or bound as globals with
//! [`HostValue::HostFunction`]). Nothing internal is reachable from JS.
//!
//! Limits: [`Config::memory_limit`] (reaching it terminates the runtime with
//! [`JsError::Terminated`]), [`Config::timeout`] (`while(true){}` stops with
//! [`JsError::Timeout`] and the runtime stays usable), [`Runtime::terminate`] from any thread.
//! A snapshot ([`SnapshotBuilder`]) is bootstrap scripts compiled to bytecode and replayed at
//! start (QuickJS has no heap images).
//!
//! Each isolate keeps the bytecode of `eval` sources it compiles repeatedly
//! ([`Config::code_cache`], a bounded LRU; [`Stats::code_cache`] counts hits, misses and
//! evictions), so a repeated `eval` skips QuickJS's parser and compiler.
//!
//! Host callbacks (and [`Reply`] callbacks) run on whichever thread holds the isolate: the
//! runtime's own, or a caller's running a request inline. One that calls back into its own
//! runtime ([`Runtime::request`] with a call or an eval) runs inline rather than deadlocking.
//!
//! Not sans-IO, unlike the other engines (rooms, sync, relay, exec), which take time from the
//! caller and return their outputs to be drained: an [`Isolate`] runs JavaScript, and three
//! things happen in the middle of one run, where no caller can step in:
//! - the clock: the evaluation time limit is enforced by QuickJS's interrupt handler, which
//!   reads `Instant::now()` while JS runs (`while(true){}` never returns to a caller), and a
//!   `setTimeout` called from JS is due relative to the moment JS calls it, not to the start of
//!   the request;
//! - the console: with [`Config::console`], `console.log` writes to stdout (`console.error`
//!   and `console.warn` to stderr) at the moment it is called, as jsrun does, so its lines
//!   interleave with what host functions called by the same script print; collecting them as
//!   outputs until the request ends would reorder them;
//! - host ops and module loaders are called synchronously from JS (an async op settles later
//!   through [`Completion`]).
//!
//! What it leaves to the adapter: the isolate owns no thread, socket or channel;
//! [`Isolate::poll`] returns the next deadline and [`Runtime`] (`worker.rs`) does the waiting.
//!
//! For per-room hooks (a module exporting `onMessage(msg)`), block with [`Runtime::call_json`]
//! or get a callback with [`Runtime::call_json_with`] (with tokio, forward it through a
//! `oneshot` and await that):
//!
//! ```
//! use std::time::Duration;
//! use tether_js::{Config, Runtime};
//!
//! let rt = Runtime::new(Config {
//!     memory_limit: Some(16 << 20),
//!     timeout: Some(Duration::from_millis(100)),
//!     ..Config::default()
//! })?;
//! rt.add_static_module("hook", "export function onMessage(m) { return { echo: m.text } }")?;
//! let hook = rt.module_export("hook", "onMessage")?;
//! let out = rt.call_json(hook, serde_json::json!({"text": "hi"}))?;
//! assert_eq!(out, serde_json::json!({"echo": "hi"}));
//! rt.call_json_with(hook, serde_json::json!({"text": "later"}), |result| {
//!     // Runs on the runtime's thread: hand the result over, do not block here.
//!     let _ = result;
//! });
//! rt.close();
//! # Ok::<(), tether_js::JsError>(())
//! ```

mod code_cache;
mod convert;
mod error;
mod isolate;
mod modules;
mod request;
mod snapshot;
mod value;
mod worker;

pub use code_cache::{CodeCacheCounters, CodeCacheLimits};
pub use convert::Limits;
pub use error::{Exception, Frame, JsError, parse_frames};
pub use isolate::Isolate;
pub use request::{
    AsyncOp, Await, Completion, CompletionSink, Config, ModuleLoader, ModuleResolver, Op, Reply,
    Request, Response, STATIC_PREFIX, Stats, SyncOp,
};
pub use snapshot::Snapshot;
pub use value::HostValue;
pub use worker::{Runtime, SnapshotBuilder, Terminator, active_runtime_threads};
