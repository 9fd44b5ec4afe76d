//! The engine of `tether exec`: run a configured command per WebSocket connection and stream its
//! output as frames. Everything here is sans-IO: no sockets, processes, clock or timers. The
//! `[[exec]]` configuration compiles to a validated [`Endpoint`] ([`ExecSpec`],
//! [`default_specs`], [`compile_all`]); a request frame is checked against its [`Schema`]
//! and expanded into argv by its [`Template`] (no shell); [`LineFramer`] cuts the process's
//! bytes into UTF-8-safe, length-capped lines; a [`Session`] is one connection's state machine.
//! The wire contract is `docs/protocol/exec.md`.
//!
//! # Driving a [`Session`]
//!
//! It follows the engine contract of `docs/engines.md`:
//!
//! - inputs: [`Session::handle_connect`] (the socket opened: queues the `info` frame),
//!   [`Session::handle_text`] / [`Session::handle_binary`] (client frames),
//!   [`Session::handle_spawned`] / [`Session::handle_spawn_failed`] / [`Session::handle_busy`]
//!   (the answer to [`Output::Spawn`]), [`Session::handle_stdout`] / [`Session::handle_stderr`]
//!   and their `_eof`, [`Session::handle_exit`] (the process was reaped),
//!   [`Session::handle_close`] (the client is gone), [`Session::handle_shutdown`];
//! - outputs: [`Output`] (frames, the spawn, stdin, signals, the close frame), drained with
//!   [`Session::poll_output`] after every input and performed in order; performing one may call
//!   an input (a spawn reports back at once), whose outputs queue behind it;
//! - timers (the process's deadline, the SIGTERM → SIGKILL grace, the wait for pipes a grandchild
//!   holds open, the flush grace of a forced close): [`Session::poll_timeout`] says when to call
//!   [`Session::handle_timeout`]; the inputs that arm one take `now`;
//! - one input of its own: [`Session::handle_writing`] tells the session that the adapter is
//!   blocked on a slow client and reads no pipe meanwhile, so the timer that measures the pipes'
//!   silence does not fire;
//! - [`Session::is_done`]: the socket is closed and no process lives; the adapter stops.
//!
//! ```
//! use std::{sync::Arc, time::{Duration, Instant}};
//! use tether_exec::{Exit, Output, Session, compile_all, default_specs};
//!
//! let echo = compile_all(&default_specs()).unwrap().into_iter().find(|e| e.name == "echo").unwrap();
//! let (grace, flush) = (Duration::from_secs(2), Duration::from_secs(1));
//! let mut session = Session::new(Arc::new(echo), grace, flush);
//! let now = Instant::now();
//! session.handle_connect();
//! session.handle_text(r#"{"text":"hi"}"#);
//! let mut frames = Vec::new();
//! while let Some(out) = session.poll_output() {
//!     match out {
//!         Output::Send(text) => frames.push(text),
//!         Output::Spawn(argv) => {
//!             assert_eq!(argv, ["printf", r"%s\n", "hi"]); // start it, then report back:
//!             session.handle_spawned(now);
//!         }
//!         other => panic!("{other:?}"),
//!     }
//! }
//! assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(10))); // the deadline
//! session.handle_stdout(b"hi\n");
//! session.handle_stdout_eof();
//! session.handle_stderr_eof();
//! session.handle_exit(Exit::Code(0), now);
//! frames.extend(std::iter::from_fn(|| session.poll_output()).filter_map(|o| match o {
//!     Output::Send(text) => Some(text),
//!     Output::Close(code, _) => Some(code.to_string()),
//!     _ => None,
//! }));
//! assert_eq!(frames, [r#"{"info":"send {text}"}"#, "hi\n", "1000"]);
//! assert!(session.is_done());
//! ```

mod framer;
mod params;
mod session;
mod spec;
mod template;

pub use framer::LineFramer;
pub use params::{
    ParamSpec, ParamType, RequestError, Schema, Values, claude_prompt, claude_schema,
};
pub use session::{
    CLOSE_AGAIN, CLOSE_AWAY, CLOSE_ERROR, CLOSE_NORMAL, CLOSE_POLICY, DRAIN_MIN, Exit, ONE_REQUEST,
    Output, Session, Signal,
};
pub use spec::{
    BASE_ENV, DEFAULT_MAX_LINE, DEFAULT_TIMEOUT, Endpoint, ExecSpec, MAX_PROMPT_BYTES, ParamTable,
    Protocol, SpecError, StderrMode, Token, compile_all, default_specs,
};
pub use template::{Template, TemplateError};
