//! The ws-sync protocol as a sans-IO engine: server objects mirrored into browser state over one
//! WebSocket with JSON Patch, plus remote actions, cancellable tasks, toasts, binary frames,
//! downloads, session takeover and reconnect. Wire-compatible with ws-sync's React client;
//! the spec and where tether differs is `docs/protocol/sync.md`.
//!
//! ```
//! use serde_json::json;
//! use tether_sync::{AppEvent, ConnId, Output, Session, SyncOptions};
//!
//! let mut session = Session::default();
//! session.register("NOTES", json!({"notes": []}), SyncOptions::default()).unwrap();
//! session.handle_connect(ConnId(1)); // queues `_SET:NOTES`, then `Connected`
//! session.handle_text(ConnId(1), r#"{"type":"_ACTION:NOTES","data":{"type":"ADD","note":"hi"}}"#);
//! session.sync("NOTES", json!({"notes": ["hi"]})).unwrap(); // queues one `_PATCH:NOTES`
//! while let Some(out) = session.poll_output() {
//!     match out {
//!         Output::Text { conn, text } => println!("write to {conn}: {text}"),
//!         Output::Event(AppEvent::RunAction { action, .. }) => session.action_done(action).unwrap(),
//!         _ => {}
//!     }
//! }
//! ```
//!
//! # Driving a [`Session`]
//!
//! It follows the engine contract of `docs/engines.md`:
//!
//! - inputs: [`Session::handle_connect`], [`Session::handle_text`] / [`Session::handle_binary`]
//!   (a frame arrived), [`Session::handle_close`];
//! - outputs: [`Output`] (frames to write, closes, log lines, and [`AppEvent`]s for the
//!   application: run an action, start or cancel a task, adopt a client's state), drained with
//!   [`Session::poll_output`] after every input;
//! - the application's own calls are plain verbs: it changes state (`register`, `sync`, `set`,
//!   `toast`, …) and reports how an [`AppEvent`] ended (`action_done`, `task_done`, …); they
//!   queue outputs as inputs do;
//! - no timers and no clock: nothing in the protocol waits for time. The engine never awaits
//!   and owns no socket, timer or task.
//!
//! [`Synced`] puts a `Serialize + DeserializeOwned` value on top of one key; [`codec`] is the
//! wire format's frame names, parser and encoders.

pub mod codec;
mod session;
mod typed;

pub use codec::ToastKind;
pub use session::{
    ActionId, AppEvent, CLOSE_NORMAL, Config, ConnId, Level, Output, REASON_DISCONNECTED,
    REASON_TAKEN_OVER, Session, SyncError, SyncOptions, TaskId, touched_keys,
};
pub use typed::{Synced, parse_args};
