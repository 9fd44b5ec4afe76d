//! One exec socket: reads the client, the process's pipes, its exit and the session's timer;
//! hands each event to the [`Session`] and performs the outputs it queues. Output frames are fed
//! in batches with one flush per batch; a write that a shutdown or a timer interrupts keeps its
//! unsent frames and resumes after the event (the session bounds it with the flush grace). When the session is
//! done, the process tree is torn down ([`Tree::teardown`]) while the closing handshake finishes.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use metrics::counter;
use tether_exec::{Endpoint, Output, Session, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::child;
use super::hub::{ExecHub, MAX_CLIENT_FRAME, Slot};
use super::tree::Tree;
use crate::socket::{self, Read};

/// Bytes read from stdout at once: one read becomes one batch of frames.
const STDOUT_READ: usize = 64 * 1024;
/// Bytes read from stderr at once.
const STDERR_READ: usize = 8 * 1024;
/// Lines queued for a process's stdin before further ones are refused.
const STDIN_QUEUE: usize = 64;
/// How long to wait for the client's half of the closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Once the flush grace is over ([`Output::DropUnsent`]): how long the close frame (behind what
/// the WebSocket layer already buffered) may take to be written before the socket is dropped.
const CLOSE_FRAME_WAIT: Duration = Duration::from_millis(250);

type WsSink = futures_util::stream::SplitSink<WebSocket, Message>;

/// The running process and what is left of it.
struct Proc {
    child: Child,
    /// Everything the process starts; torn down after the session, killed if dropped.
    tree: Tree,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    /// Freed (and the process forgotten by `/exec/processes`) once it is reaped.
    slot: Option<Slot>,
    reaped: bool,
}

/// What woke the loop up.
enum Woke {
    Shutdown,
    Client(Read),
    Stdout(std::io::Result<usize>),
    Stderr(std::io::Result<usize>),
    Exited(std::io::Result<ExitStatus>),
    /// The session's timer is due.
    Timeout,
}

/// Everything the loop owns besides the socket halves.
struct Conn {
    hub: Arc<ExecHub>,
    ep: Arc<Endpoint>,
    session: Session,
    proc: Option<Proc>,
    /// Frames waiting to be written, in order; nothing after a close frame.
    outbox: VecDeque<Message>,
    /// A close frame was queued: nothing more is.
    close_queued: bool,
    /// Frames were fed to the sink since its last completed flush.
    unflushed: bool,
    /// The flush grace is over: the close frame must be written by then, or the socket dropped.
    cut: Option<Instant>,
    /// The socket can still be written to.
    writable: bool,
    shutdown_seen: bool,
    /// A SIGTERM asked for in `apply`, sent by the loop: it first looks for the tree's members
    /// in `/proc` (off the loop's thread) while the leader still holds them, then signals.
    pending_term: bool,
    /// Where the time to the first line went (logged at debug level when the socket ends).
    timing: Timing,
}

/// Moments of one connection, from the upgrade: where its time to the first line goes
/// (`TETHER_LOG=tether_server::exec=debug`; bench/exec/README.md reads them).
struct Timing {
    upgraded: Instant,
    request: Option<Duration>,
    spawn_start: Option<Duration>,
    spawned: Option<Duration>,
    first_out: Option<Duration>,
    first_sent: Option<Duration>,
}

impl Timing {
    fn new() -> Timing {
        Timing {
            upgraded: Instant::now(),
            request: None,
            spawn_start: None,
            spawned: None,
            first_out: None,
            first_sent: None,
        }
    }

    fn since(&self) -> Duration {
        self.upgraded.elapsed()
    }

    fn log(&self, endpoint: &str) {
        let us = |d: Option<Duration>| d.map_or(-1, |d| d.as_micros() as i64);
        tracing::debug!(
            "exec {endpoint} timing (µs since the upgrade): request {} spawn {}..{} first stdout {} first line flushed {}",
            us(self.request),
            us(self.spawn_start),
            us(self.spawned),
            us(self.first_out),
            us(self.first_sent)
        );
    }
}

/// Serves one socket of endpoint `ep` until the session is done.
pub async fn run(
    hub: Arc<ExecHub>,
    ep: Arc<Endpoint>,
    socket: WebSocket,
    shutdown: CancellationToken,
) {
    let (mut sink, mut stream) = socket.split();
    let mut c = Conn {
        session: Session::new(ep.clone(), hub.kill_grace, hub.close_grace),
        hub,
        ep,
        proc: None,
        outbox: VecDeque::new(),
        close_queued: false,
        unflushed: false,
        cut: None,
        writable: true,
        shutdown_seen: false,
        pending_term: false,
        timing: Timing::new(),
    };
    c.session.handle_connect();
    let mut readable = true;
    let mut out_buf = vec![0u8; STDOUT_READ];
    let mut err_buf = vec![0u8; STDERR_READ];
    loop {
        c.apply();
        if std::mem::take(&mut c.pending_term) {
            c.term_tree().await;
        }
        let writing = c.writable && (c.unflushed || !c.outbox.is_empty());
        c.session.handle_writing(writing);
        if writing && let Some(woke) = c.write(&mut sink, &shutdown).await {
            // Something happened while the client was slow to read: handle it, then write on
            // (the session closes and bounds the rest with the flush grace if it must).
            c.wake(woke, &out_buf, &err_buf);
            continue;
        }
        c.session.handle_writing(false);
        if c.session.is_done() {
            break;
        }
        let woke = {
            let timeout = c.session.poll_timeout().map(Instant::from_std);
            let proc = c.proc.as_mut();
            let (stdout, stderr, child) = match proc {
                Some(p) => (
                    p.stdout.as_mut(),
                    p.stderr.as_mut(),
                    (!p.reaped).then_some(&mut p.child),
                ),
                None => (None, None, None),
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !c.shutdown_seen => Woke::Shutdown,
                _ = until(timeout) => Woke::Timeout,
                r = wait(child) => Woke::Exited(r),
                // Before the pipes: a process that floods stdout must not hide the client's close.
                r = socket::read(&mut stream, MAX_CLIENT_FRAME), if readable => Woke::Client(r),
                r = read(stderr, &mut err_buf) => Woke::Stderr(r),
                r = read(stdout, &mut out_buf) => Woke::Stdout(r),
            }
        };
        if let Woke::Client(Read::Closed(_) | Read::Gone | Read::Failed(_)) = &woke {
            readable = false;
        }
        if let Woke::Client(Read::Closed(_)) = &woke {
            // Answer the client's close frame now, not after the process is gone.
            socket::answer_close(&mut stream).await;
        }
        c.wake(woke, &out_buf, &err_buf);
    }
    // Let the client's half of the closing handshake arrive so the close frame is not lost to
    // a reset; a client that does not answer gets no more than CLOSE_WAIT. When the client
    // closed first, flush the reply tungstenite queued for its close frame. Meanwhile, whatever
    // the process started and left behind is stopped and reaped.
    let writable = c.writable;
    let handshake = async {
        if !readable && writable {
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.flush()).await;
        } else if readable && writable {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    };
    let name = c.ep.name.clone();
    c.timing.log(&name);
    let grace = c.hub.kill_grace;
    let tree = c.proc.take().map(|p| p.tree);
    drop(c);
    let teardown = async move {
        if let Some(tree) = tree {
            let pid = tree.pid();
            let n = tree.teardown(grace).await;
            if n > 0 {
                counter!("tether_exec_descendants_stopped_total", "endpoint" => name.clone())
                    .increment(n as u64);
                tracing::debug!("exec {name}: stopped {n} process(es) left by pid {pid}");
            }
        }
    };
    tokio::join!(handshake, teardown);
}

impl Conn {
    /// Turns what woke the loop into session events.
    fn wake(&mut self, woke: Woke, out_buf: &[u8], err_buf: &[u8]) {
        let s = &mut self.session;
        let now = Instant::now().into_std();
        match woke {
            Woke::Shutdown => {
                self.shutdown_seen = true;
                s.handle_shutdown(now);
            }
            Woke::Timeout => s.handle_timeout(now),
            Woke::Exited(r) => {
                let exit = match r {
                    Ok(status) => child::exit_of(status),
                    Err(e) => {
                        tracing::warn!("exec {}: wait failed: {e}", self.ep.name);
                        tether_exec::Exit::Code(-1)
                    }
                };
                if let Some(p) = &mut self.proc {
                    p.reaped = true;
                    p.tree.leader_reaped();
                    p.slot = None;
                    p.stdin = None;
                }
                s.handle_exit(exit, now);
            }
            Woke::Stdout(Ok(n)) if n > 0 => {
                let t = self.timing.since();
                self.timing.first_out.get_or_insert(t);
                s.handle_stdout(&out_buf[..n]);
            }
            Woke::Stdout(_) => {
                if let Some(p) = &mut self.proc {
                    p.stdout = None;
                }
                s.handle_stdout_eof();
            }
            Woke::Stderr(Ok(n)) if n > 0 => s.handle_stderr(&err_buf[..n]),
            Woke::Stderr(_) => {
                if let Some(p) = &mut self.proc {
                    p.stderr = None;
                }
                s.handle_stderr_eof();
            }
            Woke::Client(Read::Text(t)) => {
                let at = self.timing.since();
                self.timing.request.get_or_insert(at);
                s.handle_text(t.as_str());
            }
            Woke::Client(Read::Binary(_)) => s.handle_binary(),
            Woke::Client(Read::Failed(frame)) => {
                // Say why (1009 for a frame too big, 1002/1007 for a broken frame).
                if !s.is_done() {
                    self.queue(Message::Close(Some(frame)));
                }
                self.session.handle_close(now);
            }
            Woke::Client(Read::Gone | Read::Closed(_)) => s.handle_close(now),
        }
    }

    /// Queues a frame unless the socket is gone or closing.
    fn queue(&mut self, m: Message) {
        if self.writable && !self.close_queued {
            self.close_queued = matches!(m, Message::Close(_));
            self.outbox.push_back(m);
        }
    }

    /// Performs the session's outputs (all but the writes, which are queued in `outbox`).
    fn apply(&mut self) {
        // An output may cause an event (spawn → spawned) whose outputs queue behind it.
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Send(text) => self.queue(Message::Text(text.into())),
                Output::Close(code, reason) => self.queue(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }))),
                Output::DropUnsent => {
                    self.outbox.retain(|m| matches!(m, Message::Close(_)));
                    self.cut.get_or_insert(Instant::now() + CLOSE_FRAME_WAIT);
                }
                Output::Spawn(argv) => self.spawn(&argv),
                // SIGTERM goes to the group and the members outside it (see `term_tree`);
                // SIGKILL to the group at once: its leader's reap starts the teardown, which
                // SIGKILLs the rest, the grace since the SIGTERM being over.
                Output::Kill(Signal::Term) => self.pending_term = self.proc.is_some(),
                Output::Kill(Signal::Kill) => {
                    if let Some(p) = &mut self.proc
                        && p.tree.signal_group(Signal::Kill)
                    {
                        count_kill(&self.ep.name, Signal::Kill);
                    }
                }
                Output::WriteStdin(bytes) => {
                    let full = match self.proc.as_ref().and_then(|p| p.stdin.as_ref()) {
                        Some(tx) => tx.try_send(bytes).is_err(),
                        None => true,
                    };
                    if full {
                        let msg = serde_json::json!({
                            "error": "stdin is not taking more: the process does not read it"
                        });
                        self.queue(Message::Text(msg.to_string().into()));
                    }
                }
                Output::CloseStdin => {
                    if let Some(p) = &mut self.proc {
                        p.stdin = None;
                    }
                }
            }
        }
    }

    /// Sends SIGTERM to the process tree: looks for its members first, so that those only
    /// the leader ties to it (no mark, out of the group) are known before it dies.
    async fn term_tree(&mut self) {
        let Some(p) = &mut self.proc else { return };
        if p.tree.terminate().await {
            count_kill(&self.ep.name, Signal::Term);
        }
    }

    fn spawn(&mut self, argv: &[String]) {
        let slot = match self.hub.acquire(&self.ep) {
            Ok(slot) => slot,
            Err(why) => {
                self.session.handle_busy(&why);
                return;
            }
        };
        let t = self.timing.since();
        self.timing.spawn_start.get_or_insert(t);
        let spawned = child::spawn(&self.ep, argv);
        let t = self.timing.since();
        self.timing.spawned.get_or_insert(t);
        match spawned {
            Err(e) => {
                drop(slot);
                let why = e.to_string();
                self.session.handle_spawn_failed(&why);
            }
            Ok((mut ch, tree)) => {
                slot.started(tree.pid());
                let stdin = ch.stdin.take().map(|mut w| {
                    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(STDIN_QUEUE);
                    tokio::spawn(async move {
                        while let Some(bytes) = rx.recv().await {
                            if w.write_all(&bytes).await.is_err() {
                                break;
                            }
                        }
                    });
                    tx
                });
                self.proc = Some(Proc {
                    tree,
                    stdout: ch.stdout.take(),
                    stderr: ch.stderr.take(),
                    stdin,
                    child: ch,
                    slot: Some(slot),
                    reaped: false,
                });
                self.session.handle_spawned(Instant::now().into_std());
            }
        }
    }

    /// Writes the outbox (feed each, one flush). Returns early with what happened if the server
    /// shuts down or the session's timer is due meanwhile (a slow client; the session, told it
    /// is writing, leaves its drain timer out); the frames not fed yet stay queued.
    /// Once the flush grace is over, a close frame that cannot be written by `cut` drops the
    /// socket.
    async fn write(&mut self, sink: &mut WsSink, shutdown: &CancellationToken) -> Option<Woke> {
        let counter = self
            .proc
            .as_ref()
            .and_then(|p| p.slot.as_ref())
            .map(|s| s.bytes_out.clone());
        let timeout = self.session.poll_timeout().map(Instant::from_std);
        let Conn {
            outbox,
            shutdown_seen,
            cut,
            unflushed,
            timing,
            ..
        } = self;
        let send = async {
            // Cancel-safe: a frame leaves the outbox only once the sink has taken it.
            while !outbox.is_empty() {
                std::future::poll_fn(|cx| sink.poll_ready_unpin(cx)).await?;
                let Some(m) = outbox.pop_front() else { break };
                if let (Message::Text(t), Some(c)) = (&m, &counter) {
                    c.fetch_add(t.len() as u64, Ordering::Relaxed);
                }
                sink.start_send_unpin(m)?;
                *unflushed = true;
            }
            sink.flush().await?;
            *unflushed = false;
            if timing.first_out.is_some() && timing.first_sent.is_none() {
                timing.first_sent = Some(timing.since());
            }
            Ok(())
        };
        let res = tokio::select! {
            biased;
            r = send => r,
            _ = shutdown.cancelled(), if !*shutdown_seen => return Some(Woke::Shutdown),
            _ = until(timeout) => return Some(Woke::Timeout),
            _ = until(*cut) => Err(axum::Error::new("the close frame was not taken in time")),
        };
        match res {
            Ok(()) => None,
            Err(_) => {
                self.writable = false;
                self.unflushed = false;
                self.outbox.clear();
                Some(Woke::Client(Read::Gone))
            }
        }
    }
}

/// Counts a signal delivered to a process tree.
fn count_kill(endpoint: &str, sig: Signal) {
    let name = match sig {
        Signal::Term => "TERM",
        Signal::Kill => "KILL",
    };
    counter!("tether_exec_killed_total", "endpoint" => endpoint.to_owned(), "signal" => name)
        .increment(1);
}

async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn wait(child: Option<&mut Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

async fn read<R: AsyncRead + Unpin>(r: Option<&mut R>, buf: &mut [u8]) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}
