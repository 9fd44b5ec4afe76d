//! The engine of `tether exec`: run a configured command per WebSocket connection and stream its
//! output as frames. Everything here is sans-IO: no sockets, processes or timers, only
//!
//! - [`spec`]: the `[[exec]]` configuration and its compiled, validated [`spec::Endpoint`];
//! - [`params`]: request validation against an endpoint's parameter schema;
//! - [`template`]: argv templates with `{name}` placeholders, expanded without any shell;
//! - [`framer`]: bytes in, UTF-8-safe and length-capped lines out;
//! - [`session`]: the per-connection state machine (events in, effects out) that the server's
//!   tokio adapter drives.
//!
//! The wire contract is `docs/protocol/exec.md`.

pub mod framer;
pub mod params;
pub mod session;
pub mod spec;
pub mod template;

pub use framer::LineFramer;
pub use params::{ParamSpec, ParamType, RequestError, Schema};
pub use session::{Exit, Output, Session, Signal};
pub use spec::{Endpoint, ExecSpec, Protocol, SpecError, StderrMode};
pub use template::Template;
