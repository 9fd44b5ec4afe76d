//! One connection's life as a state machine: socket and process events in, effects (frames to
//! send, a process to spawn, signals, timers, the close frame) out. The adapter performs the
//! effects; the rules (one process per connection, output drained before the close frame, the
//! TERM-then-KILL sequence, which close code when, how long a forced close waits for queued
//! output) live here where they are unit-tested.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::framer::LineFramer;
use crate::params::claude_prompt;
use crate::spec::{Endpoint, Protocol, StderrMode};

/// Normal closure: the process exited 0 and all output was sent.
pub const CLOSE_NORMAL: u16 = 1000;
/// Server going away (shutdown).
pub const CLOSE_AWAY: u16 = 1001;
/// Policy violation: the request was invalid.
pub const CLOSE_POLICY: u16 = 1008;
/// Internal error: spawn failure, non-zero exit, death by signal, timeout.
pub const CLOSE_ERROR: u16 = 1011;
/// Try again later: a process limit is full.
pub const CLOSE_AGAIN: u16 = 1013;

/// Shortest wait for silent pipes after the exit (see [`Timer::Drain`]).
pub const DRAIN_MIN: Duration = Duration::from_secs(1);

/// The error text of a request frame that comes while (or after) a process runs.
pub const ONE_REQUEST: &str = "one request per connection: a process is already running";

/// A signal for the process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Asks it to stop.
    Term,
    /// Stops it.
    Kill,
}

/// The timers a session arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The endpoint's timeout since the spawn.
    Deadline,
    /// SIGTERM was sent this long ago: time for SIGKILL.
    KillGrace,
    /// The process exited and its pipes gave nothing for this long, yet something (a
    /// grandchild) still holds them open.
    Drain,
    /// A shutdown or the deadline asked for the close frame while output may still be queued
    /// for a slow client: what is not written when this fires is dropped ([`Effect::DropUnsent`]).
    Flush,
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A text frame from the client.
    Text(&'a str),
    /// A binary frame from the client.
    Binary,
    /// The adapter started the process asked for by [`Effect::Spawn`].
    Spawned,
    /// It could not (the OS error's text).
    SpawnFailed(&'a str),
    /// A process limit is full (which one).
    Busy(&'a str),
    /// Bytes from the process's stdout.
    Stdout(&'a [u8]),
    /// Bytes from its stderr.
    Stderr(&'a [u8]),
    /// Its stdout reached EOF.
    StdoutEof,
    /// Its stderr reached EOF.
    StderrEof,
    /// It was reaped.
    Exited(Exit),
    /// A timer armed by [`Effect::Arm`] fired.
    Fired(Timer),
    /// The client closed the socket or the connection broke.
    ClientGone,
    /// The server is shutting down.
    Shutdown,
}

/// What the adapter must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a text frame.
    Send(String),
    /// Start this argv (own process group, cleared environment) and report back with
    /// [`Event::Spawned`], [`Event::SpawnFailed`] or [`Event::Busy`].
    Spawn(Vec<String>),
    /// Write to the process's stdin.
    WriteStdin(Vec<u8>),
    /// Close the process's stdin.
    CloseStdin,
    /// Signal the process group.
    Kill(Signal),
    /// Fire [`Event::Fired`] after this long (re-arming replaces the timer).
    Arm(Timer, Duration),
    /// Send the close frame after the frames queued before it; nothing is sent after it.
    Close(u16, String),
    /// The flush grace is over: drop the frames queued but not written yet, so that the close
    /// frame (already asked for) goes out next.
    DropUnsent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the request frame.
    Waiting,
    /// Spawn asked for.
    Starting,
    /// The process was started (it may have exited since: see `exit`).
    Running,
    /// No process will run (refused request).
    Refused,
}

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    endpoint: Arc<Endpoint>,
    kill_grace: Duration,
    close_grace: Duration,
    phase: Phase,
    out: LineFramer,
    err: LineFramer,
    out_eof: bool,
    err_eof: bool,
    exit: Option<Exit>,
    killing: bool,
    /// Output came since the drain timer was armed: it is re-armed rather than fired.
    drain_progress: bool,
    /// The close frame was sent or the client is gone: nothing more is sent.
    closed: bool,
    /// The flush grace is running (or over): the close is forced.
    flush_armed: bool,
    stdin_open: bool,
}

impl Session {
    /// A session for `endpoint`; `kill_grace` is the SIGTERM → SIGKILL delay, `close_grace`
    /// how long queued output may still go out once a shutdown or the deadline closes.
    pub fn new(endpoint: Arc<Endpoint>, kill_grace: Duration, close_grace: Duration) -> Session {
        let max = endpoint.max_line_bytes;
        let stdin_open = endpoint.stdin;
        Session {
            endpoint,
            kill_grace,
            close_grace,
            phase: Phase::Waiting,
            out: LineFramer::new(max),
            err: LineFramer::new(max),
            out_eof: false,
            err_eof: false,
            exit: None,
            killing: false,
            drain_progress: false,
            closed: false,
            flush_armed: false,
            stdin_open,
        }
    }

    /// The frame to send on open: `{"info":"send {…}"}`.
    pub fn open(&self, fx: &mut Vec<Effect>) {
        fx.push(Effect::Send(
            json!({ "info": self.endpoint.schema.info() }).to_string(),
        ));
    }

    /// True once nothing is left to do: the socket is closed (or gone) and no process lives.
    pub fn is_done(&self) -> bool {
        self.closed && (self.phase != Phase::Running || self.exit.is_some())
    }

    /// True while a process lives (started and not reaped).
    pub fn process_alive(&self) -> bool {
        self.phase == Phase::Running && self.exit.is_none()
    }

    /// Handles one event, appending effects to `fx`.
    pub fn handle(&mut self, ev: Event<'_>, fx: &mut Vec<Effect>) {
        match ev {
            Event::Text(text) => self.on_text(text, fx),
            Event::Binary => {
                if self.closed {
                    return;
                }
                self.error(fx, "Invalid request: binary frames are not accepted".into());
                if self.phase == Phase::Waiting {
                    self.refuse(fx, CLOSE_POLICY, "");
                }
            }
            Event::Spawned => {
                if self.phase == Phase::Starting {
                    self.phase = Phase::Running;
                    fx.push(Effect::Arm(Timer::Deadline, self.endpoint.timeout));
                }
            }
            Event::SpawnFailed(why) => {
                let program = self.endpoint.template.program();
                self.error(fx, format!("Failed to spawn {program}: {why}"));
                self.refuse(fx, CLOSE_ERROR, "spawn failed");
            }
            Event::Busy(why) => {
                self.error(fx, format!("busy: {why}"));
                self.refuse(fx, CLOSE_AGAIN, "busy");
            }
            Event::Stdout(bytes) => {
                self.drain_progress = true;
                if self.closed {
                    return;
                }
                let tagged = self.endpoint.stderr == StderrMode::Tagged;
                self.out
                    .push(bytes, &mut |l| fx.push(stdout_frame(l, tagged)));
            }
            Event::Stderr(bytes) => {
                self.drain_progress = true;
                if self.closed {
                    return;
                }
                let mode = self.endpoint.stderr;
                self.err.push(bytes, &mut |l| {
                    if let Some(f) = stderr_frame(l, mode) {
                        fx.push(f);
                    }
                });
            }
            Event::StdoutEof => {
                if !self.out_eof {
                    self.out_eof = true;
                    if let Some(l) = self.out.finish()
                        && !self.closed
                    {
                        fx.push(stdout_frame(l, self.endpoint.stderr == StderrMode::Tagged));
                    }
                }
                self.maybe_finish(fx);
            }
            Event::StderrEof => {
                if !self.err_eof {
                    self.err_eof = true;
                    if let Some(l) = self.err.finish()
                        && !self.closed
                        && let Some(f) = stderr_frame(l, self.endpoint.stderr)
                    {
                        fx.push(f);
                    }
                }
                self.maybe_finish(fx);
            }
            Event::Exited(exit) => {
                if self.phase != Phase::Running || self.exit.is_some() {
                    return;
                }
                self.exit = Some(exit);
                if !(self.closed || self.out_eof && self.err_eof) {
                    // A grandchild may hold the pipes: wait while they give output, not forever.
                    self.drain_progress = false;
                    fx.push(Effect::Arm(Timer::Drain, self.drain_wait()));
                }
                self.maybe_finish(fx);
            }
            Event::Fired(Timer::Deadline) => {
                if self.process_alive() {
                    self.kill(fx);
                    self.close(fx, CLOSE_ERROR, "Timeout");
                } else if self.phase == Phase::Running {
                    self.drain_now(fx);
                }
                self.bound_flush(fx);
            }
            Event::Fired(Timer::Flush) => fx.push(Effect::DropUnsent),
            Event::Fired(Timer::KillGrace) => {
                if self.process_alive() {
                    fx.push(Effect::Kill(Signal::Kill));
                }
            }
            Event::Fired(Timer::Drain) => {
                if self.phase == Phase::Running && self.exit.is_some() && !self.closed {
                    if std::mem::take(&mut self.drain_progress) {
                        fx.push(Effect::Arm(Timer::Drain, self.drain_wait()));
                    } else {
                        self.drain_now(fx);
                    }
                }
            }
            Event::ClientGone => {
                self.closed = true;
                if self.process_alive() {
                    self.kill(fx);
                }
            }
            Event::Shutdown => {
                if self.process_alive() {
                    self.kill(fx);
                }
                self.close(fx, CLOSE_AWAY, "server shutting down");
                self.bound_flush(fx);
            }
        }
    }

    fn on_text(&mut self, text: &str, fx: &mut Vec<Effect>) {
        if self.closed {
            return;
        }
        match self.phase {
            Phase::Waiting => match self.endpoint.schema.validate(text) {
                Err(e) => {
                    self.error(fx, e.to_string());
                    self.refuse(fx, CLOSE_POLICY, "");
                }
                Ok(mut values) => {
                    if self.endpoint.protocol == Protocol::Claude {
                        claude_prompt(&mut values);
                    }
                    self.phase = Phase::Starting;
                    fx.push(Effect::Spawn(self.endpoint.template.expand(&values)));
                }
            },
            Phase::Running if self.endpoint.stdin && self.exit.is_none() => {
                if !self.stdin_open {
                    self.error(fx, "stdin is closed".into());
                } else if is_eof_frame(text) {
                    self.stdin_open = false;
                    fx.push(Effect::CloseStdin);
                } else {
                    let mut bytes = Vec::with_capacity(text.len() + 1);
                    bytes.extend_from_slice(text.as_bytes());
                    bytes.push(b'\n');
                    fx.push(Effect::WriteStdin(bytes));
                }
            }
            _ => self.error(fx, ONE_REQUEST.into()),
        }
    }

    fn error(&self, fx: &mut Vec<Effect>, msg: String) {
        if !self.closed {
            fx.push(Effect::Send(json!({ "error": msg }).to_string()));
        }
    }

    fn refuse(&mut self, fx: &mut Vec<Effect>, code: u16, reason: &str) {
        self.phase = Phase::Refused;
        self.close(fx, code, reason);
    }

    fn close(&mut self, fx: &mut Vec<Effect>, code: u16, reason: &str) {
        if !self.closed {
            self.closed = true;
            fx.push(Effect::Close(code, reason.to_owned()));
        }
    }

    /// A forced close (shutdown, deadline): what is queued for the client gets the close grace,
    /// then the close frame goes out without it. Armed once; a later shutdown does not extend it.
    fn bound_flush(&mut self, fx: &mut Vec<Effect>) {
        if !self.flush_armed {
            self.flush_armed = true;
            fx.push(Effect::Arm(Timer::Flush, self.close_grace));
        }
    }

    /// How long pipes may stay silent after the exit: the kill grace, at least [`DRAIN_MIN`].
    fn drain_wait(&self) -> Duration {
        self.kill_grace.max(DRAIN_MIN)
    }

    fn kill(&mut self, fx: &mut Vec<Effect>) {
        if !self.killing {
            self.killing = true;
            fx.push(Effect::Kill(Signal::Term));
            fx.push(Effect::Arm(Timer::KillGrace, self.kill_grace));
        }
    }

    /// The process exited but its pipes stay open (a grandchild holds them): send what is
    /// buffered, signal the group so the holders go too, and close as the exit says.
    fn drain_now(&mut self, fx: &mut Vec<Effect>) {
        if !self.out_eof {
            self.handle(Event::StdoutEof, fx);
        }
        if !self.err_eof {
            self.handle(Event::StderrEof, fx);
        }
        fx.push(Effect::Kill(Signal::Term));
    }

    fn maybe_finish(&mut self, fx: &mut Vec<Effect>) {
        if self.closed || !(self.out_eof && self.err_eof) {
            return;
        }
        match self.exit {
            Some(Exit::Code(0)) => self.close(fx, CLOSE_NORMAL, ""),
            Some(Exit::Code(n)) => self.close(fx, CLOSE_ERROR, &format!("exit {n}")),
            Some(Exit::Signal(n)) => self.close(fx, CLOSE_ERROR, &format!("signal {n}")),
            None => {}
        }
    }
}

/// `{"eof":true}` and nothing else: the client closes the process's stdin.
fn is_eof_frame(text: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => {
            o.len() == 1 && o.get("eof") == Some(&serde_json::Value::Bool(true))
        }
        _ => false,
    }
}

fn stdout_frame(line: String, tagged: bool) -> Effect {
    if tagged {
        Effect::Send(json!({ "stream": "stdout", "data": line }).to_string())
    } else {
        Effect::Send(line)
    }
}

fn stderr_frame(line: String, mode: StderrMode) -> Option<Effect> {
    match mode {
        StderrMode::Error => Some(Effect::Send(json!({ "error": line }).to_string())),
        StderrMode::Tagged => Some(Effect::Send(
            json!({ "stream": "stderr", "data": line }).to_string(),
        )),
        StderrMode::Drop => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::defaults;

    fn session(name: &str, tweak: impl FnOnce(&mut crate::spec::ExecSpec)) -> Session {
        let mut spec = defaults().into_iter().find(|s| s.name == name).unwrap();
        tweak(&mut spec);
        Session::new(
            Arc::new(spec.compile().unwrap()),
            Duration::from_secs(2),
            Duration::from_secs(1),
        )
    }

    fn run(s: &mut Session, ev: Event<'_>) -> Vec<Effect> {
        let mut fx = Vec::new();
        s.handle(ev, &mut fx);
        fx
    }

    fn send(s: &str) -> Effect {
        Effect::Send(s.to_owned())
    }

    fn started(s: &mut Session, req: &str) {
        let fx = run(s, Event::Text(req));
        assert!(matches!(fx.as_slice(), [Effect::Spawn(_)]), "{fx:?}");
        let fx = run(s, Event::Spawned);
        assert!(matches!(fx.as_slice(), [Effect::Arm(Timer::Deadline, _)]));
    }

    #[test]
    fn claude_happy_path_drains_before_closing_1000() {
        let mut s = session("claude", |_| {});
        let mut fx = Vec::new();
        s.open(&mut fx);
        assert_eq!(fx, [send(r#"{"info":"send {prompt,meta}"}"#)]);
        let fx = run(&mut s, Event::Text(r#"{"prompt":"hi","meta":"T-1"}"#));
        assert_eq!(
            fx,
            [Effect::Spawn(
                [
                    "claude",
                    "-p",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--",
                    "hi\n\n[meta:T-1]"
                ]
                .map(String::from)
                .to_vec()
            )]
        );
        run(&mut s, Event::Spawned);
        assert_eq!(
            run(&mut s, Event::Stdout(b"{\"a\":1}\n{\"b\"")),
            [send("{\"a\":1}\n")]
        );
        assert_eq!(
            run(&mut s, Event::Stderr(b"warn\n")),
            [send(r#"{"error":"warn\n"}"#)]
        );
        // Exit before the pipes are drained: no close yet.
        assert_eq!(
            run(&mut s, Event::Exited(Exit::Code(0))),
            [Effect::Arm(Timer::Drain, Duration::from_secs(2))]
        );
        assert_eq!(run(&mut s, Event::StderrEof), []);
        assert_eq!(
            run(&mut s, Event::StdoutEof),
            [send("{\"b\""), Effect::Close(1000, String::new())]
        );
        assert!(s.is_done());
    }

    #[test]
    fn exits_and_signals_close_1011_with_the_reason() {
        for (exit, reason) in [(Exit::Code(2), "exit 2"), (Exit::Signal(9), "signal 9")] {
            let mut s = session("echo", |_| {});
            started(&mut s, r#"{"text":"x"}"#);
            run(&mut s, Event::StdoutEof);
            run(&mut s, Event::StderrEof);
            assert!(!s.is_done());
            assert_eq!(
                run(&mut s, Event::Exited(exit)),
                [Effect::Close(1011, reason.into())]
            );
            assert!(s.is_done());
        }
    }

    #[test]
    fn invalid_requests_close_1008_and_spawn_nothing() {
        for (frame, msg) in [
            ("{", "Bad JSON"),
            ("{}", "Invalid prompt: missing"),
            (
                r#"{"prompt":"x","meta":"a b"}"#,
                "Invalid meta: does not match ^[A-Z0-9_\\-]+$",
            ),
        ] {
            let mut s = session("claude", |_| {});
            let fx = run(&mut s, Event::Text(frame));
            assert_eq!(
                fx,
                [
                    Effect::Send(json!({ "error": msg }).to_string()),
                    Effect::Close(1008, String::new())
                ]
            );
            assert!(s.is_done());
        }
        let mut s = session("claude", |_| {});
        let fx = run(&mut s, Event::Binary);
        assert_eq!(fx.len(), 2);
        assert_eq!(fx[1], Effect::Close(1008, String::new()));
    }

    #[test]
    fn a_second_request_is_refused_without_closing() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        let fx = run(&mut s, Event::Text(r#"{"text":"y"}"#));
        assert_eq!(
            fx,
            [Effect::Send(json!({ "error": ONE_REQUEST }).to_string())]
        );
        assert!(!s.is_done());
    }

    #[test]
    fn timeout_terms_closes_then_kills_after_the_grace() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        assert_eq!(
            run(&mut s, Event::Fired(Timer::Deadline)),
            [
                Effect::Kill(Signal::Term),
                Effect::Arm(Timer::KillGrace, Duration::from_secs(2)),
                Effect::Close(1011, "Timeout".into()),
                Effect::Arm(Timer::Flush, Duration::from_secs(1))
            ]
        );
        assert_eq!(run(&mut s, Event::Stdout(b"late\n")), []);
        assert!(!s.is_done(), "not done until reaped");
        assert_eq!(
            run(&mut s, Event::Fired(Timer::KillGrace)),
            [Effect::Kill(Signal::Kill)]
        );
        assert_eq!(run(&mut s, Event::Exited(Exit::Signal(9))), []);
        assert!(s.is_done());
    }

    #[test]
    fn client_gone_kills_and_waits_for_the_reap() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        assert_eq!(
            run(&mut s, Event::ClientGone),
            [
                Effect::Kill(Signal::Term),
                Effect::Arm(Timer::KillGrace, Duration::from_secs(2))
            ]
        );
        assert!(!s.is_done());
        assert_eq!(run(&mut s, Event::Exited(Exit::Signal(15))), []);
        assert!(s.is_done());
        // Before any request: done at once.
        let mut s = session("echo", |_| {});
        assert_eq!(run(&mut s, Event::ClientGone), []);
        assert!(s.is_done());
    }

    #[test]
    fn shutdown_closes_1001_and_kills() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        let fx = run(&mut s, Event::Shutdown);
        assert_eq!(fx[0], Effect::Kill(Signal::Term));
        assert_eq!(fx[2], Effect::Close(1001, "server shutting down".into()));
        assert_eq!(fx[3], Effect::Arm(Timer::Flush, Duration::from_secs(1)));
        assert_eq!(fx.len(), 4);
    }

    #[test]
    fn a_forced_close_gives_queued_output_the_flush_grace_once() {
        // Shutdown after a normal close (output still queued for a slow client): the 1000 close
        // stands, and the flush gets the grace.
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        run(&mut s, Event::Stdout(b"a\n"));
        run(&mut s, Event::StdoutEof);
        run(&mut s, Event::StderrEof);
        assert_eq!(
            run(&mut s, Event::Exited(Exit::Code(0))),
            [Effect::Close(1000, String::new())]
        );
        assert_eq!(
            run(&mut s, Event::Shutdown),
            [Effect::Arm(Timer::Flush, Duration::from_secs(1))]
        );
        // Armed once: the deadline passing next does not extend it.
        let fx = run(&mut s, Event::Fired(Timer::Deadline));
        assert!(!fx.iter().any(|e| matches!(e, Effect::Arm(..))), "{fx:?}");
        assert_eq!(
            run(&mut s, Event::Fired(Timer::Flush)),
            [Effect::DropUnsent]
        );

        // The deadline while the process runs: Timeout, then the grace.
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        let fx = run(&mut s, Event::Fired(Timer::Deadline));
        assert_eq!(
            fx.last(),
            Some(&Effect::Arm(Timer::Flush, Duration::from_secs(1)))
        );
        assert_eq!(run(&mut s, Event::Shutdown), []);
        assert_eq!(
            run(&mut s, Event::Fired(Timer::Flush)),
            [Effect::DropUnsent]
        );

        // A normal end arms nothing.
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        run(&mut s, Event::StdoutEof);
        run(&mut s, Event::StderrEof);
        let fx = run(&mut s, Event::Exited(Exit::Code(0)));
        assert_eq!(fx, [Effect::Close(1000, String::new())]);
    }

    #[test]
    fn busy_and_spawn_failure() {
        let mut s = session("claude", |_| {});
        run(&mut s, Event::Text(r#"{"prompt":"x"}"#));
        assert_eq!(
            run(&mut s, Event::Busy("8 claude processes running")),
            [
                send(r#"{"error":"busy: 8 claude processes running"}"#),
                Effect::Close(1013, "busy".into())
            ]
        );
        assert!(s.is_done());
        let mut s = session("claude", |_| {});
        run(&mut s, Event::Text(r#"{"prompt":"x"}"#));
        assert_eq!(
            run(
                &mut s,
                Event::SpawnFailed("No such file or directory (os error 2)")
            ),
            [
                send(
                    r#"{"error":"Failed to spawn claude: No such file or directory (os error 2)"}"#
                ),
                Effect::Close(1011, "spawn failed".into())
            ]
        );
    }

    #[test]
    fn tagged_and_dropped_stderr() {
        let mut s = session("demo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        assert_eq!(
            run(&mut s, Event::Stdout(b"a\n")),
            [send(r#"{"stream":"stdout","data":"a\n"}"#)]
        );
        assert_eq!(
            run(&mut s, Event::Stderr(b"b\n")),
            [send(r#"{"stream":"stderr","data":"b\n"}"#)]
        );
        let mut s = session("echo", |e| e.stderr = StderrMode::Drop);
        started(&mut s, r#"{"text":"x"}"#);
        assert_eq!(run(&mut s, Event::Stderr(b"b\n")), []);
        assert_eq!(run(&mut s, Event::Stdout(b"a\n")), [send("a\n")]);
    }

    #[test]
    fn stdin_endpoints_take_later_frames_as_lines() {
        let mut s = session("echo", |e| e.stdin = true);
        started(&mut s, r#"{"text":"x"}"#);
        assert_eq!(
            run(&mut s, Event::Text("hello")),
            [Effect::WriteStdin(b"hello\n".to_vec())]
        );
        assert_eq!(
            run(&mut s, Event::Text(r#"{"eof":true}"#)),
            [Effect::CloseStdin]
        );
        assert_eq!(
            run(&mut s, Event::Text("more")),
            [send(r#"{"error":"stdin is closed"}"#)]
        );
    }

    #[test]
    fn the_drain_timer_waits_while_output_still_comes() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        run(&mut s, Event::Exited(Exit::Code(0)));
        assert_eq!(run(&mut s, Event::Stdout(b"a\n")), [send("a\n")]);
        // Output came since the exit (a slow client held the loop): re-armed, nothing lost.
        assert_eq!(
            run(&mut s, Event::Fired(Timer::Drain)),
            [Effect::Arm(Timer::Drain, Duration::from_secs(2))]
        );
        assert_eq!(run(&mut s, Event::Stdout(b"b\n")), [send("b\n")]);
        run(&mut s, Event::StdoutEof);
        assert_eq!(
            run(&mut s, Event::StderrEof),
            [Effect::Close(1000, String::new())]
        );
        assert!(s.is_done());
    }

    #[test]
    fn pipes_held_open_after_exit_are_abandoned_after_the_drain_timer() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#);
        run(&mut s, Event::Stdout(b"partial"));
        run(&mut s, Event::Exited(Exit::Code(0)));
        let fx = run(&mut s, Event::Fired(Timer::Drain));
        assert_eq!(
            fx,
            [
                send("partial"),
                Effect::Close(1000, String::new()),
                Effect::Kill(Signal::Term)
            ]
        );
        assert!(s.is_done());
    }
}
