//! One connection's life as a state machine: socket and process events in (`handle_*`), outputs
//! (frames to send, a process to spawn, signals, the close frame) out through
//! [`Session::poll_output`], and its timers as one deadline ([`Session::poll_timeout`],
//! [`Session::handle_timeout`]). The adapter performs the outputs and owns the clock; the rules
//! (one process per connection, output drained before the close frame, the TERM-then-KILL
//! sequence, which close code when, how long a forced close waits for queued output) live here
//! where they are unit-tested.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Shortest wait for silent pipes after the exit (see the drain timer).
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

/// The timers a session arms (each one a deadline; re-arming replaces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The endpoint's timeout since the spawn.
    Deadline = 0,
    /// SIGTERM was sent this long ago: time for SIGKILL.
    KillGrace = 1,
    /// The process exited and its pipes gave nothing for this long, yet something (a
    /// grandchild) still holds them open.
    Drain = 2,
    /// A shutdown or the deadline asked for the close frame while output may still be queued
    /// for a slow client: what is not written when this fires is dropped ([`Output::DropUnsent`]).
    Flush = 3,
}

impl Timer {
    /// The order in which timers due at the same time fire.
    const ALL: [Timer; 4] = [
        Timer::Deadline,
        Timer::KillGrace,
        Timer::Drain,
        Timer::Flush,
    ];
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// What the adapter must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a text frame.
    Send(String),
    /// Start this argv (own process group, cleared environment) and report back with
    /// [`Session::handle_spawned`], [`Session::handle_spawn_failed`] or [`Session::handle_busy`].
    Spawn(Vec<String>),
    /// Write to the process's stdin.
    WriteStdin(Vec<u8>),
    /// Close the process's stdin.
    CloseStdin,
    /// Signal the process group.
    Kill(Signal),
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
    /// The adapter waits on a slow client and reads no pipe meanwhile: the drain timer, which
    /// measures the pipes' silence, does not fire.
    writing: bool,
    /// When each [`Timer`] fires, by its index.
    timers: [Option<Instant>; 4],
    /// Outputs not polled yet.
    queue: VecDeque<Output>,
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
            writing: false,
            timers: [None; 4],
            queue: VecDeque::new(),
        }
    }

    /// The next output to perform, in order; `None` once all were taken.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next (the earliest armed timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        Timer::ALL
            .into_iter()
            .filter(|&t| !(self.writing && t == Timer::Drain))
            .filter_map(|t| self.timers[t as usize])
            .min()
    }

    /// True once nothing is left to do: the socket is closed (or gone) and no process lives.
    pub fn is_done(&self) -> bool {
        self.closed && (self.phase != Phase::Running || self.exit.is_some())
    }

    /// True while a process lives (started and not reaped).
    pub fn process_alive(&self) -> bool {
        self.phase == Phase::Running && self.exit.is_none()
    }

    /// The socket opened: queues the frame that says what to send, `{"info":"send {…}"}`.
    pub fn handle_connect(&mut self) {
        let info = json!({ "info": self.endpoint.schema.info() }).to_string();
        self.queue.push_back(Output::Send(info));
    }

    /// A text frame from the client: the request, or a line for the process's stdin.
    pub fn handle_text(&mut self, text: &str) {
        if self.closed {
            return;
        }
        match self.phase {
            Phase::Waiting => match self.endpoint.schema.validate(text) {
                Err(e) => {
                    self.error(e.to_string());
                    self.refuse(CLOSE_POLICY, "");
                }
                Ok(mut values) => {
                    if self.endpoint.protocol == Protocol::Claude {
                        claude_prompt(&mut values);
                    }
                    self.phase = Phase::Starting;
                    let argv = self.endpoint.template.expand(&values);
                    self.queue.push_back(Output::Spawn(argv));
                }
            },
            Phase::Running if self.endpoint.stdin && self.exit.is_none() => {
                if !self.stdin_open {
                    self.error("stdin is closed".into());
                } else if is_eof_frame(text) {
                    self.stdin_open = false;
                    self.queue.push_back(Output::CloseStdin);
                } else {
                    let mut bytes = Vec::with_capacity(text.len() + 1);
                    bytes.extend_from_slice(text.as_bytes());
                    bytes.push(b'\n');
                    self.queue.push_back(Output::WriteStdin(bytes));
                }
            }
            _ => self.error(ONE_REQUEST.into()),
        }
    }

    /// A binary frame from the client (never accepted).
    pub fn handle_binary(&mut self) {
        if self.closed {
            return;
        }
        self.error("Invalid request: binary frames are not accepted".into());
        if self.phase == Phase::Waiting {
            self.refuse(CLOSE_POLICY, "");
        }
    }

    /// The adapter started the process asked for by [`Output::Spawn`] at `now`.
    pub fn handle_spawned(&mut self, now: Instant) {
        if self.phase == Phase::Starting {
            self.phase = Phase::Running;
            self.arm(Timer::Deadline, now + self.endpoint.timeout);
        }
    }

    /// The adapter could not start it (the OS error's text).
    pub fn handle_spawn_failed(&mut self, why: &str) {
        let program = self.endpoint.template.program();
        self.error(format!("Failed to spawn {program}: {why}"));
        self.refuse(CLOSE_ERROR, "spawn failed");
    }

    /// A process limit is full (which one): nothing was started.
    pub fn handle_busy(&mut self, why: &str) {
        self.error(format!("busy: {why}"));
        self.refuse(CLOSE_AGAIN, "busy");
    }

    /// Bytes from the process's stdout.
    pub fn handle_stdout(&mut self, bytes: &[u8]) {
        self.drain_progress = true;
        if self.closed {
            return;
        }
        let tagged = self.endpoint.stderr == StderrMode::Tagged;
        let queue = &mut self.queue;
        self.out
            .push(bytes, &mut |l| queue.push_back(stdout_frame(l, tagged)));
    }

    /// Bytes from the process's stderr.
    pub fn handle_stderr(&mut self, bytes: &[u8]) {
        self.drain_progress = true;
        if self.closed {
            return;
        }
        let mode = self.endpoint.stderr;
        let queue = &mut self.queue;
        self.err.push(bytes, &mut |l| {
            if let Some(f) = stderr_frame(l, mode) {
                queue.push_back(f);
            }
        });
    }

    /// The process's stdout reached EOF.
    pub fn handle_stdout_eof(&mut self) {
        if !self.out_eof {
            self.out_eof = true;
            if let Some(l) = self.out.finish()
                && !self.closed
            {
                let tagged = self.endpoint.stderr == StderrMode::Tagged;
                self.queue.push_back(stdout_frame(l, tagged));
            }
        }
        self.maybe_finish();
    }

    /// The process's stderr reached EOF.
    pub fn handle_stderr_eof(&mut self) {
        if !self.err_eof {
            self.err_eof = true;
            if let Some(l) = self.err.finish()
                && !self.closed
                && let Some(f) = stderr_frame(l, self.endpoint.stderr)
            {
                self.queue.push_back(f);
            }
        }
        self.maybe_finish();
    }

    /// The process was reaped at `now`.
    pub fn handle_exit(&mut self, exit: Exit, now: Instant) {
        if self.phase != Phase::Running || self.exit.is_some() {
            return;
        }
        self.exit = Some(exit);
        if !(self.closed || self.out_eof && self.err_eof) {
            // A grandchild may hold the pipes: wait while they give output, not forever.
            self.drain_progress = false;
            self.arm(Timer::Drain, now + self.drain_wait());
        }
        self.maybe_finish();
    }

    /// The client closed the socket or the connection broke.
    pub fn handle_close(&mut self, now: Instant) {
        self.closed = true;
        if self.process_alive() {
            self.kill(now);
        }
    }

    /// The server is shutting down.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.process_alive() {
            self.kill(now);
        }
        self.close(CLOSE_AWAY, "server shutting down");
        self.bound_flush(now);
    }

    /// Whether the adapter is waiting to write queued frames to a slow client (and so reads no
    /// pipe): meanwhile the drain timer is left out of [`Session::poll_timeout`] and does not
    /// fire, since the pipes' silence would be the client's slowness.
    pub fn handle_writing(&mut self, writing: bool) {
        self.writing = writing;
    }

    /// The time is `now`: fires every timer that is due (those armed by the firing itself wait
    /// for the next call).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Timer> = Timer::ALL
            .into_iter()
            .filter(|&t| !(self.writing && t == Timer::Drain))
            .filter(|&t| self.timers[t as usize].is_some_and(|at| at <= now))
            .collect();
        for t in due {
            // An earlier timer's firing may have re-armed this one for later.
            if self.timers[t as usize].is_some_and(|at| at <= now) {
                self.timers[t as usize] = None;
                self.fire(t, now);
            }
        }
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Deadline => {
                if self.process_alive() {
                    self.kill(now);
                    self.close(CLOSE_ERROR, "Timeout");
                } else if self.phase == Phase::Running {
                    self.drain_now();
                }
                self.bound_flush(now);
            }
            Timer::Flush => self.queue.push_back(Output::DropUnsent),
            Timer::KillGrace => {
                if self.process_alive() {
                    self.queue.push_back(Output::Kill(Signal::Kill));
                }
            }
            Timer::Drain => {
                if self.phase == Phase::Running && self.exit.is_some() && !self.closed {
                    if std::mem::take(&mut self.drain_progress) {
                        self.arm(Timer::Drain, now + self.drain_wait());
                    } else {
                        self.drain_now();
                    }
                }
            }
        }
    }

    fn arm(&mut self, timer: Timer, at: Instant) {
        self.timers[timer as usize] = Some(at);
    }

    fn error(&mut self, msg: String) {
        if !self.closed {
            let frame = json!({ "error": msg }).to_string();
            self.queue.push_back(Output::Send(frame));
        }
    }

    fn refuse(&mut self, code: u16, reason: &str) {
        self.phase = Phase::Refused;
        self.close(code, reason);
    }

    fn close(&mut self, code: u16, reason: &str) {
        if !self.closed {
            self.closed = true;
            self.queue.push_back(Output::Close(code, reason.to_owned()));
        }
    }

    /// A forced close (shutdown, deadline): what is queued for the client gets the close grace,
    /// then the close frame goes out without it. Armed once; a later shutdown does not extend it.
    fn bound_flush(&mut self, now: Instant) {
        if !self.flush_armed {
            self.flush_armed = true;
            self.arm(Timer::Flush, now + self.close_grace);
        }
    }

    /// How long pipes may stay silent after the exit: the kill grace, at least [`DRAIN_MIN`].
    fn drain_wait(&self) -> Duration {
        self.kill_grace.max(DRAIN_MIN)
    }

    fn kill(&mut self, now: Instant) {
        if !self.killing {
            self.killing = true;
            self.queue.push_back(Output::Kill(Signal::Term));
            self.arm(Timer::KillGrace, now + self.kill_grace);
        }
    }

    /// The process exited but its pipes stay open (a grandchild holds them): send what is
    /// buffered, signal the group so the holders go too, and close as the exit says.
    fn drain_now(&mut self) {
        if !self.out_eof {
            self.handle_stdout_eof();
        }
        if !self.err_eof {
            self.handle_stderr_eof();
        }
        self.queue.push_back(Output::Kill(Signal::Term));
    }

    fn maybe_finish(&mut self) {
        if self.closed || !(self.out_eof && self.err_eof) {
            return;
        }
        match self.exit {
            Some(Exit::Code(0)) => self.close(CLOSE_NORMAL, ""),
            Some(Exit::Code(n)) => self.close(CLOSE_ERROR, &format!("exit {n}")),
            Some(Exit::Signal(n)) => self.close(CLOSE_ERROR, &format!("signal {n}")),
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

fn stdout_frame(line: String, tagged: bool) -> Output {
    if tagged {
        Output::Send(json!({ "stream": "stdout", "data": line }).to_string())
    } else {
        Output::Send(line)
    }
}

fn stderr_frame(line: String, mode: StderrMode) -> Option<Output> {
    match mode {
        StderrMode::Error => Some(Output::Send(json!({ "error": line }).to_string())),
        StderrMode::Tagged => Some(Output::Send(
            json!({ "stream": "stderr", "data": line }).to_string(),
        )),
        StderrMode::Drop => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default_specs;

    const SEC: Duration = Duration::from_secs(1);

    fn session(name: &str, tweak: impl FnOnce(&mut crate::spec::ExecSpec)) -> Session {
        let mut spec = default_specs()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap();
        tweak(&mut spec);
        Session::new(Arc::new(spec.compile().unwrap()), 2 * SEC, SEC)
    }

    /// What the session queued since the last call.
    fn out(s: &mut Session) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn send(s: &str) -> Output {
        Output::Send(s.to_owned())
    }

    /// Sends `req` and reports the spawn at `now`: the deadline is armed.
    fn started(s: &mut Session, req: &str, now: Instant) {
        s.handle_text(req);
        let fx = out(s);
        assert!(matches!(fx.as_slice(), [Output::Spawn(_)]), "{fx:?}");
        s.handle_spawned(now);
        assert_eq!(out(s), []);
        assert_eq!(s.poll_timeout(), Some(now + s.endpoint.timeout));
    }

    #[test]
    fn claude_happy_path_drains_before_closing_1000() {
        let t0 = Instant::now();
        let mut s = session("claude", |_| {});
        s.handle_connect();
        assert_eq!(out(&mut s), [send(r#"{"info":"send {prompt,meta}"}"#)]);
        s.handle_text(r#"{"prompt":"hi","meta":"T-1"}"#);
        assert_eq!(
            out(&mut s),
            [Output::Spawn(
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
        assert_eq!(s.poll_timeout(), None, "no timer before the spawn");
        s.handle_spawned(t0);
        s.handle_stdout(b"{\"a\":1}\n{\"b\"");
        assert_eq!(out(&mut s), [send("{\"a\":1}\n")]);
        s.handle_stderr(b"warn\n");
        assert_eq!(out(&mut s), [send(r#"{"error":"warn\n"}"#)]);
        // Exit before the pipes are drained: no close yet, the drain timer runs.
        s.handle_exit(Exit::Code(0), t0 + SEC);
        assert_eq!(out(&mut s), []);
        assert_eq!(s.poll_timeout(), Some(t0 + 3 * SEC));
        s.handle_stderr_eof();
        assert_eq!(out(&mut s), []);
        s.handle_stdout_eof();
        assert_eq!(
            out(&mut s),
            [send("{\"b\""), Output::Close(1000, String::new())]
        );
        assert!(s.is_done());
    }

    #[test]
    fn exits_and_signals_close_1011_with_the_reason() {
        let t0 = Instant::now();
        for (exit, reason) in [(Exit::Code(2), "exit 2"), (Exit::Signal(9), "signal 9")] {
            let mut s = session("echo", |_| {});
            started(&mut s, r#"{"text":"x"}"#, t0);
            s.handle_stdout_eof();
            s.handle_stderr_eof();
            assert!(!s.is_done());
            s.handle_exit(exit, t0);
            assert_eq!(out(&mut s), [Output::Close(1011, reason.into())]);
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
            s.handle_text(frame);
            assert_eq!(
                out(&mut s),
                [
                    Output::Send(json!({ "error": msg }).to_string()),
                    Output::Close(1008, String::new())
                ]
            );
            assert!(s.is_done());
        }
        let mut s = session("claude", |_| {});
        s.handle_binary();
        let fx = out(&mut s);
        assert_eq!(fx.len(), 2);
        assert_eq!(fx[1], Output::Close(1008, String::new()));
    }

    #[test]
    fn a_second_request_is_refused_without_closing() {
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, Instant::now());
        s.handle_text(r#"{"text":"y"}"#);
        assert_eq!(
            out(&mut s),
            [Output::Send(json!({ "error": ONE_REQUEST }).to_string())]
        );
        assert!(!s.is_done());
    }

    #[test]
    fn timeout_terms_closes_then_kills_after_the_grace() {
        let t0 = Instant::now();
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        let deadline = t0 + s.endpoint.timeout;
        s.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(out(&mut s), [], "not due yet");
        s.handle_timeout(deadline);
        assert_eq!(
            out(&mut s),
            [
                Output::Kill(Signal::Term),
                Output::Close(1011, "Timeout".into()),
            ]
        );
        // Next: the flush grace (1 s), then the kill grace (2 s).
        assert_eq!(s.poll_timeout(), Some(deadline + SEC));
        s.handle_stdout(b"late\n");
        assert_eq!(out(&mut s), []);
        assert!(!s.is_done(), "not done until reaped");
        s.handle_timeout(deadline + SEC);
        assert_eq!(out(&mut s), [Output::DropUnsent]);
        assert_eq!(s.poll_timeout(), Some(deadline + 2 * SEC));
        s.handle_timeout(deadline + 2 * SEC);
        assert_eq!(out(&mut s), [Output::Kill(Signal::Kill)]);
        assert_eq!(s.poll_timeout(), None);
        s.handle_exit(Exit::Signal(9), deadline + 2 * SEC);
        assert_eq!(out(&mut s), []);
        assert!(s.is_done());
    }

    #[test]
    fn client_gone_kills_and_waits_for_the_reap() {
        let t0 = Instant::now();
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_close(t0 + SEC);
        assert_eq!(out(&mut s), [Output::Kill(Signal::Term)]);
        assert_eq!(s.poll_timeout(), Some(t0 + 3 * SEC), "the kill grace");
        assert!(!s.is_done());
        s.handle_exit(Exit::Signal(15), t0 + SEC);
        assert_eq!(out(&mut s), []);
        assert!(s.is_done());
        // Before any request: done at once.
        let mut s = session("echo", |_| {});
        s.handle_close(t0);
        assert_eq!(out(&mut s), []);
        assert!(s.is_done());
    }

    #[test]
    fn shutdown_closes_1001_and_kills() {
        let t0 = Instant::now();
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_shutdown(t0);
        assert_eq!(
            out(&mut s),
            [
                Output::Kill(Signal::Term),
                Output::Close(1001, "server shutting down".into())
            ]
        );
        assert_eq!(s.poll_timeout(), Some(t0 + SEC), "the flush grace");
    }

    #[test]
    fn a_forced_close_gives_queued_output_the_flush_grace_once() {
        let t0 = Instant::now();
        // Shutdown after a normal close (output still queued for a slow client): the 1000 close
        // stands, and the flush gets the grace.
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_stdout(b"a\n");
        s.handle_stdout_eof();
        s.handle_stderr_eof();
        s.handle_exit(Exit::Code(0), t0);
        assert_eq!(
            out(&mut s),
            [send("a\n"), Output::Close(1000, String::new())]
        );
        s.handle_shutdown(t0 + SEC);
        assert_eq!(out(&mut s), []);
        assert_eq!(s.poll_timeout(), Some(t0 + 2 * SEC));
        s.handle_timeout(t0 + SEC + Duration::from_millis(500));
        assert_eq!(out(&mut s), []);
        s.handle_timeout(t0 + 2 * SEC);
        assert_eq!(out(&mut s), [Output::DropUnsent]);
        // Armed once: the deadline passing next does not arm it again.
        let deadline = t0 + s.endpoint.timeout;
        assert_eq!(s.poll_timeout(), Some(deadline));
        s.handle_timeout(deadline);
        assert_eq!(out(&mut s), [Output::Kill(Signal::Term)]);
        assert_eq!(s.poll_timeout(), None);

        // The deadline while the process runs: Timeout, then the grace.
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_timeout(deadline);
        assert_eq!(
            out(&mut s).last(),
            Some(&Output::Close(1011, "Timeout".into()))
        );
        assert_eq!(s.poll_timeout(), Some(deadline + SEC));
        s.handle_shutdown(deadline + Duration::from_millis(500));
        assert_eq!(out(&mut s), []);
        assert_eq!(s.poll_timeout(), Some(deadline + SEC), "not extended");
        s.handle_timeout(deadline + SEC);
        assert_eq!(out(&mut s), [Output::DropUnsent]);

        // A normal end arms nothing but the deadline, which then finds nothing to do.
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_stdout_eof();
        s.handle_stderr_eof();
        s.handle_exit(Exit::Code(0), t0);
        assert_eq!(out(&mut s), [Output::Close(1000, String::new())]);
        assert_eq!(s.poll_timeout(), Some(deadline));
    }

    #[test]
    fn busy_and_spawn_failure() {
        let mut s = session("claude", |_| {});
        s.handle_text(r#"{"prompt":"x"}"#);
        out(&mut s);
        s.handle_busy("8 claude processes running");
        assert_eq!(
            out(&mut s),
            [
                send(r#"{"error":"busy: 8 claude processes running"}"#),
                Output::Close(1013, "busy".into())
            ]
        );
        assert!(s.is_done());
        let mut s = session("claude", |_| {});
        s.handle_text(r#"{"prompt":"x"}"#);
        out(&mut s);
        s.handle_spawn_failed("No such file or directory (os error 2)");
        assert_eq!(
            out(&mut s),
            [
                send(
                    r#"{"error":"Failed to spawn claude: No such file or directory (os error 2)"}"#
                ),
                Output::Close(1011, "spawn failed".into())
            ]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn tagged_and_dropped_stderr() {
        let t0 = Instant::now();
        let mut s = session("demo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_stdout(b"a\n");
        assert_eq!(out(&mut s), [send(r#"{"stream":"stdout","data":"a\n"}"#)]);
        s.handle_stderr(b"b\n");
        assert_eq!(out(&mut s), [send(r#"{"stream":"stderr","data":"b\n"}"#)]);
        let mut s = session("echo", |e| e.stderr = StderrMode::Drop);
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_stderr(b"b\n");
        assert_eq!(out(&mut s), []);
        s.handle_stdout(b"a\n");
        assert_eq!(out(&mut s), [send("a\n")]);
    }

    #[test]
    fn stdin_endpoints_take_later_frames_as_lines() {
        let mut s = session("echo", |e| e.stdin = true);
        started(&mut s, r#"{"text":"x"}"#, Instant::now());
        s.handle_text("hello");
        assert_eq!(out(&mut s), [Output::WriteStdin(b"hello\n".to_vec())]);
        s.handle_text(r#"{"eof":true}"#);
        assert_eq!(out(&mut s), [Output::CloseStdin]);
        s.handle_text("more");
        assert_eq!(out(&mut s), [send(r#"{"error":"stdin is closed"}"#)]);
    }

    #[test]
    fn the_drain_timer_waits_while_output_still_comes() {
        let t0 = Instant::now();
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_exit(Exit::Code(0), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + 2 * SEC));
        s.handle_stdout(b"a\n");
        assert_eq!(out(&mut s), [send("a\n")]);
        // Output came since the exit (a slow client held the loop): re-armed, nothing lost.
        s.handle_timeout(t0 + 2 * SEC);
        assert_eq!(out(&mut s), []);
        assert_eq!(s.poll_timeout(), Some(t0 + 4 * SEC));
        s.handle_stdout(b"b\n");
        assert_eq!(out(&mut s), [send("b\n")]);
        s.handle_stdout_eof();
        s.handle_stderr_eof();
        assert_eq!(out(&mut s), [Output::Close(1000, String::new())]);
        assert!(s.is_done());
    }

    #[test]
    fn the_drain_timer_does_not_fire_while_the_adapter_writes() {
        let t0 = Instant::now();
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_stdout(b"partial");
        s.handle_exit(Exit::Code(0), t0);
        s.handle_writing(true);
        assert_eq!(
            s.poll_timeout(),
            Some(t0 + s.endpoint.timeout),
            "only the deadline"
        );
        s.handle_timeout(t0 + 3 * SEC);
        assert_eq!(
            out(&mut s),
            [],
            "the client's slowness is not the pipes' silence"
        );
        s.handle_writing(false);
        assert_eq!(
            s.poll_timeout(),
            Some(t0 + 2 * SEC),
            "overdue: fires at once"
        );
        s.handle_timeout(t0 + 3 * SEC);
        assert_eq!(
            out(&mut s),
            [
                send("partial"),
                Output::Close(1000, String::new()),
                Output::Kill(Signal::Term)
            ]
        );
    }

    #[test]
    fn pipes_held_open_after_exit_are_abandoned_after_the_drain_timer() {
        let t0 = Instant::now();
        let mut s = session("echo", |_| {});
        started(&mut s, r#"{"text":"x"}"#, t0);
        s.handle_stdout(b"partial");
        s.handle_exit(Exit::Code(0), t0);
        s.handle_timeout(t0 + 2 * SEC);
        assert_eq!(
            out(&mut s),
            [
                send("partial"),
                Output::Close(1000, String::new()),
                Output::Kill(Signal::Term)
            ]
        );
        assert!(s.is_done());
    }
}
