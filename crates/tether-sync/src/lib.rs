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
//! An adapter's loop: read a frame → [`Session::handle_text`] / [`Session::handle_binary`] →
//! drain [`Session::poll_output`] → write frames, run [`AppEvent`]s, report back
//! (`action_done`, `task_done`, …). The engine never awaits, owns no socket, timer or task.
//! [`typed`] puts a `Serialize + DeserializeOwned` value on top of one key.

pub mod codec;
pub mod session;
pub mod typed;

pub use codec::{ClientFrame, FrameError, ToastKind};
pub use session::{
    ActionId, AppEvent, CLOSE_NORMAL, Config, ConnId, Level, Output, Session, SyncError,
    SyncOptions, TaskId, touched_keys,
};
pub use typed::Synced;
