//! One exec socket: reads the client, the process's pipes, its exit and the timers; hands each
//! event to the [`Session`] and performs the effects it returns. Output frames are fed in batches
//! with one flush per batch.

use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use metrics::counter;
use tether_exec::{Effect, Endpoint, Event, Session, Signal, Timer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use super::{ExecHub, Slot, child};

/// Bytes read from stdout at once: one read becomes one batch of frames.
const STDOUT_READ: usize = 64 * 1024;
/// Bytes read from stderr at once.
const STDERR_READ: usize = 8 * 1024;
/// Lines queued for a process's stdin before further ones are refused.
const STDIN_QUEUE: usize = 64;
/// How long to wait for the client's half of the closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

type WsSink = futures_util::stream::SplitSink<WebSocket, Message>;

/// The running process and what is left of it.
struct Proc {
    child: Child,
    pid: u32,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    /// Freed (and the process forgotten by `/exec/processes`) once it is reaped.
    slot: Option<Slot>,
    reaped: bool,
}

#[derive(Default)]
struct Timers {
    deadline: Option<Pin<Box<Sleep>>>,
    grace: Option<Pin<Box<Sleep>>>,
    drain: Option<Pin<Box<Sleep>>>,
}

impl Timers {
    fn slot(&mut self, t: Timer) -> &mut Option<Pin<Box<Sleep>>> {
        match t {
            Timer::Deadline => &mut self.deadline,
            Timer::KillGrace => &mut self.grace,
            Timer::Drain => &mut self.drain,
        }
    }
}

/// What woke the loop up.
enum Woke {
    Shutdown,
    Client(Option<Result<Message, axum::Error>>),
    Stdout(std::io::Result<usize>),
    Stderr(std::io::Result<usize>),
    Exited(std::io::Result<ExitStatus>),
    Fired(Timer),
}

/// Everything the loop owns besides the socket halves.
struct Conn {
    hub: Arc<ExecHub>,
    ep: Arc<Endpoint>,
    session: Session,
    proc: Option<Proc>,
    timers: Timers,
    /// Frames waiting to be written, in order.
    outbox: Vec<Message>,
    /// The socket can still be written to.
    writable: bool,
    shutdown_seen: bool,
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
        session: Session::new(ep.clone(), hub.kill_grace),
        hub,
        ep,
        proc: None,
        timers: Timers::default(),
        outbox: Vec::new(),
        writable: true,
        shutdown_seen: false,
    };
    let mut fx = Vec::new();
    c.session.open(&mut fx);
    let mut readable = true;
    let mut out_buf = vec![0u8; STDOUT_READ];
    let mut err_buf = vec![0u8; STDERR_READ];
    loop {
        c.apply(&mut fx);
        if !c.outbox.is_empty()
            && let Some(woke) = c.write(&mut sink, &shutdown).await
        {
            // The client stopped reading while something else happened: it is gone for us.
            c.writable = false;
            c.outbox.clear();
            c.wake(woke, &mut fx, &out_buf, &err_buf);
            c.session.handle(Event::ClientGone, &mut fx);
            continue;
        }
        if c.session.is_done() {
            break;
        }
        let woke = {
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
                t = fired(&mut c.timers) => Woke::Fired(t),
                r = wait(child) => Woke::Exited(r),
                // Before the pipes: a process that floods stdout must not hide the client's close.
                m = stream.next(), if readable => Woke::Client(m),
                r = read(stderr, &mut err_buf) => Woke::Stderr(r),
                r = read(stdout, &mut out_buf) => Woke::Stdout(r),
            }
        };
        if let Woke::Client(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) = &woke {
            readable = false;
        }
        c.wake(woke, &mut fx, &out_buf, &err_buf);
    }
    // Let the client's half of the closing handshake arrive so the close frame is not lost to
    // a reset; a client that does not answer gets no more than CLOSE_WAIT. When the client
    // closed first, flush the reply tungstenite queued for its close frame.
    if !readable && c.writable {
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.flush()).await;
    } else if readable && c.writable {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

impl Conn {
    /// Turns what woke the loop into session events.
    fn wake(&mut self, woke: Woke, fx: &mut Vec<Effect>, out_buf: &[u8], err_buf: &[u8]) {
        let s = &mut self.session;
        match woke {
            Woke::Shutdown => {
                self.shutdown_seen = true;
                s.handle(Event::Shutdown, fx);
            }
            Woke::Fired(t) => s.handle(Event::Fired(t), fx),
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
                    p.slot = None;
                    p.stdin = None;
                }
                s.handle(Event::Exited(exit), fx);
            }
            Woke::Stdout(Ok(n)) if n > 0 => s.handle(Event::Stdout(&out_buf[..n]), fx),
            Woke::Stdout(_) => {
                if let Some(p) = &mut self.proc {
                    p.stdout = None;
                }
                s.handle(Event::StdoutEof, fx);
            }
            Woke::Stderr(Ok(n)) if n > 0 => s.handle(Event::Stderr(&err_buf[..n]), fx),
            Woke::Stderr(_) => {
                if let Some(p) = &mut self.proc {
                    p.stderr = None;
                }
                s.handle(Event::StderrEof, fx);
            }
            Woke::Client(Some(Ok(Message::Text(t)))) => s.handle(Event::Text(t.as_str()), fx),
            Woke::Client(Some(Ok(Message::Binary(_)))) => s.handle(Event::Binary, fx),
            Woke::Client(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Woke::Client(Some(Err(e))) => {
                // Say why if the socket still takes a close frame (1009 for a frame too big).
                let frame = crate::ws::close_for(e, super::MAX_CLIENT_FRAME);
                if self.writable && !s.is_done() {
                    self.outbox.push(Message::Close(Some(frame)));
                }
                s.handle(Event::ClientGone, fx);
            }
            Woke::Client(None | Some(Ok(Message::Close(_)))) => s.handle(Event::ClientGone, fx),
        }
    }

    /// Performs the effects (all but the writes, which are queued in `outbox`).
    fn apply(&mut self, fx: &mut Vec<Effect>) {
        let mut i = 0;
        // Effects may cause events (spawn → Spawned) whose effects are appended: walk by index.
        while i < fx.len() {
            let effect = std::mem::replace(&mut fx[i], Effect::CloseStdin);
            i += 1;
            match effect {
                Effect::Send(text) => {
                    if self.writable {
                        self.outbox.push(Message::Text(text.into()));
                    }
                }
                Effect::Close(code, reason) => {
                    if self.writable {
                        self.outbox.push(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })));
                    }
                }
                Effect::Spawn(argv) => self.spawn(&argv, fx),
                Effect::Kill(sig) => {
                    if let Some(p) = &self.proc {
                        let name = match sig {
                            Signal::Term => "TERM",
                            Signal::Kill => "KILL",
                        };
                        if child::killpg(p.pid, sig) {
                            counter!("tether_exec_killed_total", "endpoint" => self.ep.name.clone(), "signal" => name)
                                .increment(1);
                        }
                    }
                }
                Effect::Arm(t, d) => *self.timers.slot(t) = Some(Box::pin(tokio::time::sleep(d))),
                Effect::WriteStdin(bytes) => {
                    let full = match self.proc.as_ref().and_then(|p| p.stdin.as_ref()) {
                        Some(tx) => tx.try_send(bytes).is_err(),
                        None => true,
                    };
                    if full && self.writable {
                        let msg = serde_json::json!({
                            "error": "stdin is not taking more: the process does not read it"
                        });
                        self.outbox.push(Message::Text(msg.to_string().into()));
                    }
                }
                Effect::CloseStdin => {
                    if let Some(p) = &mut self.proc {
                        p.stdin = None;
                    }
                }
            }
        }
        fx.clear();
    }

    fn spawn(&mut self, argv: &[String], fx: &mut Vec<Effect>) {
        let slot = match self.hub.acquire(&self.ep) {
            Ok(slot) => slot,
            Err(why) => {
                self.session.handle(Event::Busy(&why), fx);
                return;
            }
        };
        match child::spawn(&self.ep, argv) {
            Err(e) => {
                drop(slot);
                let why = e.to_string();
                self.session.handle(Event::SpawnFailed(&why), fx);
            }
            Ok(mut ch) => {
                let pid = ch.id().unwrap_or(0);
                slot.started(pid);
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
                    pid,
                    stdout: ch.stdout.take(),
                    stderr: ch.stderr.take(),
                    stdin,
                    child: ch,
                    slot: Some(slot),
                    reaped: false,
                });
                self.session.handle(Event::Spawned, fx);
            }
        }
    }

    /// Writes the outbox (feed each, one flush). Returns what interrupted it if the client
    /// stopped reading while the server shut down or the deadline passed.
    async fn write(&mut self, sink: &mut WsSink, shutdown: &CancellationToken) -> Option<Woke> {
        let counter = self
            .proc
            .as_ref()
            .and_then(|p| p.slot.as_ref())
            .map(|s| s.bytes_out.clone());
        let outbox = std::mem::take(&mut self.outbox);
        let send = async {
            let mut bytes = 0u64;
            for m in outbox {
                let closing = matches!(m, Message::Close(_));
                if let Message::Text(t) = &m {
                    bytes += t.len() as u64;
                }
                sink.feed(m).await?;
                if closing {
                    break;
                }
            }
            sink.flush().await?;
            Ok::<u64, axum::Error>(bytes)
        };
        let deadline = &mut self.timers.deadline;
        let res = tokio::select! {
            biased;
            r = send => r,
            _ = shutdown.cancelled(), if !self.shutdown_seen => return Some(Woke::Shutdown),
            _ = fire(deadline) => {
                *deadline = None;
                return Some(Woke::Fired(Timer::Deadline));
            }
        };
        match res {
            Ok(n) => {
                if let Some(c) = counter {
                    c.fetch_add(n, Ordering::Relaxed);
                }
                None
            }
            Err(_) => {
                self.writable = false;
                Some(Woke::Client(None))
            }
        }
    }
}

/// Waits for the first armed timer and disarms it.
async fn fired(t: &mut Timers) -> Timer {
    tokio::select! {
        _ = fire(&mut t.deadline) => { t.deadline = None; Timer::Deadline }
        _ = fire(&mut t.grace) => { t.grace = None; Timer::KillGrace }
        _ = fire(&mut t.drain) => { t.drain = None; Timer::Drain }
    }
}

async fn fire(t: &mut Option<Pin<Box<Sleep>>>) {
    match t {
        Some(s) => s.as_mut().await,
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
