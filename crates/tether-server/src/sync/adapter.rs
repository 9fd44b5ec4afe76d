//! The tokio/axum adapter around `tether_sync::Session`: one engine per WebSocket, a read loop,
//! a writer task behind a bounded queue, and the app's actions and tasks run as tracked tasks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::routing::{MethodRouter, get};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tether_sync::{AppEvent, ConnId, Level, Output, Session, TaskId, ToastKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Command, Ctx, HandlerResult, SyncApp, TaskEnd};
use crate::socket::{self, Drain, Frame, Frames, Read, Tuning, Writer, WsSink};

/// Hard limit of a WebSocket message; bigger ones close the socket with 1009. Frames between
/// the engine's `max_frame_bytes` (1 MiB) and this get an error toast and the session goes on.
pub const MAX_WS_MESSAGE: usize = 4 << 20;

/// Outputs a connection's handlers may queue before more are dropped.
const COMMAND_QUEUE: usize = 256;

/// How long the 1008 close frame of a slow consumer may take to be written.
const SLOW_CLOSE: Duration = Duration::from_millis(100);

/// The engine's id for the single connection of each session.
const CONN: ConnId = ConnId(1);

/// A GET route that upgrades to a sync WebSocket serving `app`. Its connections (and the
/// handlers they start) run under `drain`, each with an outbound queue of `queue` frames (at
/// least 16).
pub fn route<T, S>(app: Arc<SyncApp<T>>, drain: Drain, queue: usize) -> MethodRouter<S>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    S: Clone + Send + Sync + 'static,
{
    let queue = queue.max(16);
    get(move |ws: WebSocketUpgrade| {
        let (app, drain) = (app.clone(), drain.clone());
        async move {
            drain
                .clone()
                .upgrade(ws, TUNING, move |socket| run(app, drain, queue, socket))
        }
    })
}

/// 8 KiB buffers, messages up to [`MAX_WS_MESSAGE`].
const TUNING: Tuning = Tuning::new(MAX_WS_MESSAGE);

/// The per-connection state the read loop owns.
struct Conn<T> {
    app: Arc<SyncApp<T>>,
    /// Where the handlers it starts are tracked (the drain waits for them).
    drain: Drain,
    session: Session,
    out: mpsc::Sender<Frame>,
    /// Cancelled to end the connection now (queue overflow, writer gone).
    done: CancellationToken,
    /// Cancelled when the connection ends: running actions are aborted, tasks cancelled.
    scope: CancellationToken,
    commands: mpsc::Sender<Command>,
    tasks: HashMap<TaskId, CancellationToken>,
    closing: bool,
}

async fn run<T>(app: Arc<SyncApp<T>>, drain: Drain, queue: usize, socket: WebSocket)
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    if drain.shutdown.is_cancelled() {
        return;
    }
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel(queue);
    let done = CancellationToken::new();
    let writer = Writer::spawn(&done, write_loop(sink, out_rx, done.clone()));
    let (commands, mut command_rx) = mpsc::channel(COMMAND_QUEUE);
    let mut changes = app.object.subscribe();
    let shutdown = drain.shutdown.clone();
    let mut conn = Conn {
        session: Session::new(app.config.clone()),
        app,
        drain,
        out,
        done,
        scope: CancellationToken::new(),
        commands,
        tasks: HashMap::new(),
        closing: false,
    };
    if let Err(e) = conn
        .app
        .object
        .register(&mut conn.session, conn.app.options.clone())
    {
        tracing::error!("sync: cannot register {}: {e}", conn.app.object.key());
        conn.queue(Frame::Close(CloseFrame {
            code: close_code::ERROR,
            reason: "server error".into(),
        }));
        conn.closing = true;
    } else {
        conn.session.handle_connect(CONN);
        conn.pump();
    }
    while !conn.closing {
        tokio::select! {
            biased;
            _ = conn.done.cancelled() => break,
            _ = shutdown.cancelled() => {
                conn.queue(Frame::Close(socket::going_away()));
                break;
            }
            Some(c) = command_rx.recv() => {
                // Changes a handler made before this command go out first.
                conn.sync();
                conn.command(c);
            }
            Ok(()) = changes.changed() => {
                changes.borrow_and_update();
                conn.sync();
            }
            read = socket::read(&mut stream, MAX_WS_MESSAGE) => {
                conn.sync();
                match read {
                    Read::Text(text) => conn.session.handle_text(CONN, text.as_str()),
                    Read::Binary(data) => conn.session.handle_binary(CONN, &data),
                    Read::Closed(_) => {
                        // Nothing more can be sent: answer the close now and end.
                        socket::answer_close(&mut stream).await;
                        break;
                    }
                    Read::Gone => break,
                    Read::Failed(frame) => {
                        conn.queue(Frame::Close(frame));
                        break;
                    }
                }
            }
        }
        conn.pump();
    }
    // Handlers of this connection stop; cancel handlers still run (they may reset shared state).
    conn.scope.cancel();
    conn.session.handle_close(CONN);
    while conn.session.poll_output().is_some() {}
    drop(conn);
    writer.finish().await;
}

impl<T> Conn<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// Queues a frame; a full queue ends this connection only (slow consumer).
    fn queue(&mut self, frame: Frame) {
        if self.done.is_cancelled() {
            return;
        }
        match self.out.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("sync: slow consumer, outbound queue full; disconnecting");
                self.done.cancel();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.done.cancel(),
        }
    }

    /// Patches this session if the shared value moved.
    fn sync(&mut self) {
        if let Err(e) = self.app.object.sync(&mut self.session) {
            tracing::error!("sync: {e}");
        }
    }

    /// Drains the engine: frames to the writer, events to the app, logs to tracing.
    fn pump(&mut self) {
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Text { text, .. } => self.queue(Frame::Message(Message::Text(text.into()))),
                Output::Binary { data, .. } => {
                    self.queue(Frame::Message(Message::Binary(data.into())))
                }
                Output::Close { code, reason, .. } => {
                    self.queue(Frame::Close(CloseFrame {
                        code,
                        reason: reason.into(),
                    }));
                    self.closing = true;
                }
                Output::Event(event) => self.event(event),
                Output::Log { level, message } => match level {
                    Level::Debug => tracing::debug!("sync: {message}"),
                    Level::Info => tracing::info!("sync: {message}"),
                    Level::Warn => tracing::warn!("sync: {message}"),
                    Level::Error => tracing::error!("sync: {message}"),
                },
            }
        }
    }

    fn ctx(&self, binary: Option<Vec<u8>>) -> Ctx<T> {
        Ctx {
            object: self.app.object.clone(),
            commands: self.commands.clone(),
            binary: binary.map(Arc::from),
        }
    }

    fn event(&mut self, event: AppEvent) {
        match event {
            AppEvent::Set { key, value } | AppEvent::Patched { key, value, .. } => {
                if let Err(e) = self.app.object.adopt(&value) {
                    let message = format!("invalid state for {key}: {e}");
                    tracing::warn!("sync: {message}");
                    self.session.toast(ToastKind::Error, &message);
                    // The engine forgot the revision: this diffs and restores the server value.
                    self.sync();
                }
            }
            AppEvent::RunAction {
                action,
                name,
                args,
                binary,
                ..
            } => {
                let ctx = self.ctx(binary);
                let started = match self.app.actions.get(&name) {
                    None => Err(format!("no action {name}")),
                    Some(f) => f(ctx, args).map_err(|e| e.to_string()),
                };
                match started {
                    Ok(fut) => {
                        let (commands, scope) = (self.commands.clone(), self.scope.clone());
                        self.drain.tracker.spawn(async move {
                            let mut handle = tokio::spawn(fut);
                            let result = tokio::select! {
                                biased;
                                r = &mut handle => flatten(r),
                                _ = scope.cancelled() => {
                                    handle.abort();
                                    let _ = handle.await;
                                    Err("connection closed".to_owned())
                                }
                            };
                            let _ = commands.send(Command::ActionEnd(action, result)).await;
                        });
                    }
                    Err(e) => {
                        let _ = self.session.action_failed(action, &e);
                    }
                }
            }
            AppEvent::StartTask {
                task,
                name,
                args,
                binary,
                ..
            } => {
                let ctx = self.ctx(binary);
                let token = self.scope.child_token();
                let started = match self.app.tasks.get(&name) {
                    None => Err(format!("no task {name}")),
                    Some(f) => f(ctx.clone(), args, token.clone()).map_err(|e| e.to_string()),
                };
                match started {
                    Ok(fut) => {
                        self.tasks.insert(task, token.clone());
                        let cancel = self.app.cancels.get(&name).cloned();
                        let commands = self.commands.clone();
                        self.drain.tracker.spawn(async move {
                            let mut handle = tokio::spawn(fut);
                            let end = tokio::select! {
                                biased;
                                r = &mut handle => match flatten(r) {
                                    Ok(()) => TaskEnd::Done,
                                    Err(e) => TaskEnd::Failed(e),
                                },
                                _ = token.cancelled() => {
                                    handle.abort();
                                    let _ = handle.await;
                                    if let Some(cancel) = cancel {
                                        let _ = tokio::spawn(cancel(ctx)).await;
                                    }
                                    TaskEnd::Cancelled
                                }
                            };
                            let _ = commands.send(Command::TaskEnd(task, end)).await;
                        });
                    }
                    Err(e) => {
                        let _ = self.session.task_failed(task, &e);
                    }
                }
            }
            AppEvent::CancelTask { task, .. } => {
                if let Some(token) = self.tasks.get(&task) {
                    token.cancel();
                }
            }
            AppEvent::Connected { .. }
            | AppEvent::Disconnected { .. }
            | AppEvent::UserSession { .. }
            // Never enabled here (no `pull_state` keys, no custom events registered).
            | AppEvent::StateWanted { .. }
            | AppEvent::Custom { .. } => {}
        }
    }

    fn command(&mut self, c: Command) {
        let key = self.app.object.key().to_owned();
        let r = match c {
            Command::Toast(kind, message) => {
                self.session.toast(kind, &message);
                Ok(())
            }
            Command::Binary(metadata, data) => {
                self.session.send_binary(&key, metadata, data).map(drop)
            }
            Command::ActionEnd(id, Ok(())) => self.session.action_done(id),
            Command::ActionEnd(id, Err(e)) => self.session.action_failed(id, &e),
            Command::TaskEnd(id, end) => {
                self.tasks.remove(&id);
                match end {
                    TaskEnd::Done => self.session.task_done(id),
                    TaskEnd::Cancelled => self.session.task_cancelled(id),
                    TaskEnd::Failed(e) => self.session.task_failed(id, &e),
                }
            }
        };
        if let Err(e) = r {
            tracing::debug!("sync: {e}");
        }
    }
}

/// A handler's result, with a panic reported as a failure instead of a stuck session.
fn flatten(r: Result<HandlerResult, tokio::task::JoinError>) -> Result<(), String> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) if e.is_panic() => Err("handler panicked".to_owned()),
        Err(_) => Err("handler aborted".to_owned()),
    }
}

/// Writes queued frames in batches until the close frame or the end of the queue; a cancelled
/// `done` means the queue overflowed: the client gets 1008 if it still reads.
async fn write_loop(mut sink: WsSink, mut rx: mpsc::Receiver<Frame>, done: CancellationToken) {
    let mut frames = Frames;
    let overflow = tokio::select! {
        biased;
        _ = done.cancelled() => true,
        _ = socket::write_queue(&mut sink, &mut rx, &mut frames) => false,
    };
    if overflow {
        socket::fail_within(&mut sink, socket::slow_consumer(), SLOW_CLOSE).await;
    } else {
        // Sends a close frame if none was sent (or flushes the one sent).
        let _ = tokio::time::timeout(socket::CLOSE_FLUSH, sink.close()).await;
    }
    done.cancel();
}
