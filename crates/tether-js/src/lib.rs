//! `tether-js`: a JavaScript runtime per isolate on QuickJS-NG (through `rquickjs`).
//!
//! [`Isolate`] is the engine (sans-IO: requests in, replies out, [`Isolate::poll`] for timers
//! and promises). [`Runtime`] runs one on its own thread, which blocks on a bounded channel
//! (with a timeout at the next timer deadline) so an idle runtime uses no CPU.
//!
//! For per-room hooks (a module exporting `onMessage(msg)`):
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
//! # Ok::<(), tether_js::JsError>(())
//! ```

mod convert;
mod error;
mod isolate;
mod snapshot;
mod value;
mod worker;

pub use convert::Limits;
pub use error::{Exception, Frame, JsError, parse_frames};
pub use isolate::{
    AsyncOp, Await, Completion, CompletionSink, Config, Isolate, ModuleLoader, ModuleResolver, Op,
    Reply, Request, Response, STATIC_PREFIX, Stats, SyncOp,
};
pub use snapshot::Snapshot;
pub use value::HostValue;
pub use worker::{Runtime, SnapshotBuilder, Terminator};
