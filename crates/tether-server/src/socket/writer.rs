//! The batching writer every door runs: take one queued item, take whatever else is ready (up to
//! [`MAX_BATCH`]), then flush once. [`drain_batches`] is that loop over any [`Outlet`];
//! [`write_queue`] runs it on a WebSocket through a door's [`Batch`] (the rooms TCP door runs it
//! on its byte stream). [`Writer`] is the task it runs in; [`fail`] writes a last close frame.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::close::{CLOSE_FLUSH, CLOSE_WAIT};

/// The sending half of a split WebSocket.
pub type WsSink = SplitSink<WebSocket, Message>;

/// Items a writer takes into one batch before it flushes, even when more are queued.
const MAX_BATCH: usize = 256;

/// A writer's queue: bounded or unbounded mpsc.
pub trait Queue: Send {
    /// What it holds.
    type Item: Send;
    /// The next item, waiting for one; `None` once every sender is gone and it is empty.
    fn recv(&mut self) -> impl Future<Output = Option<Self::Item>> + Send;
    /// The next item if one is ready.
    fn try_recv(&mut self) -> Option<Self::Item>;
}

impl<T: Send> Queue for mpsc::Receiver<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send {
        mpsc::Receiver::recv(self)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::Receiver::try_recv(self).ok()
    }
}

impl<T: Send> Queue for mpsc::UnboundedReceiver<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send {
        mpsc::UnboundedReceiver::recv(self)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::UnboundedReceiver::try_recv(self).ok()
    }
}

/// Whether the connection goes on after an item.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// Taken into the batch; more may follow.
    More,
    /// It closed the connection (and the outlet wrote everything before it): stop.
    Last,
}

/// Where a writer puts its batches: a WebSocket, or the byte stream of a line door.
pub trait Outlet: Send {
    /// What the queue holds.
    type Item: Send;
    /// Why the socket cannot be written (it is gone).
    type Error;
    /// Takes one item into the current batch.
    fn put(&mut self, item: Self::Item) -> impl Future<Output = Result<Put, Self::Error>> + Send;
    /// Writes the batch out.
    fn flush(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How a writer's queue ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A close item was written.
    Closed,
    /// Every sender is gone and the queue is empty.
    Drained,
}

/// Writes the queue in batches (puts every ready item, up to [`MAX_BATCH`], then one flush)
/// until an item closed the connection or the queue ended. An error means the socket is gone.
pub async fn drain_batches<Q, O>(rx: &mut Q, out: &mut O) -> Result<Ended, O::Error>
where
    Q: Queue,
    O: Outlet<Item = Q::Item>,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut count = 0;
        while let Some(item) = next {
            if out.put(item).await? == Put::Last {
                return Ok(Ended::Closed);
            }
            count += 1;
            next = if count < MAX_BATCH {
                rx.try_recv()
            } else {
                None
            };
        }
        out.flush().await?;
    }
    Ok(Ended::Drained)
}

/// What a WebSocket writer does with one queued item.
pub enum Write {
    /// Feed this message.
    Frame(Message),
    /// Feed these messages, in order (one queue item that stands for several frames, such as a
    /// tick's presence batch).
    Frames(Vec<Message>),
    /// Send this close frame after what came before, and stop.
    Close(CloseFrame),
    /// Nothing for this door.
    Skip,
}

/// A WebSocket door's view of its queue's items.
pub trait Batch: Send {
    /// What the queue holds.
    type Item: Send;
    /// Turns an item into what to write.
    fn write(&mut self, item: Self::Item) -> Write;
    /// Called after each batch was flushed, with the message bytes it wrote.
    fn flushed(&mut self, _bytes: usize) {}
}

/// A queue item of a door whose items are frames already: a message, or the close frame that
/// ends the connection after what came before.
pub enum Frame {
    /// A data message.
    Message(Message),
    /// The last frame.
    Close(CloseFrame),
}

/// The [`Batch`] of a queue of [`Frame`]s.
pub struct Frames;

impl Batch for Frames {
    type Item = Frame;
    fn write(&mut self, frame: Frame) -> Write {
        match frame {
            Frame::Message(m) => Write::Frame(m),
            Frame::Close(c) => Write::Close(c),
        }
    }
}

/// A WebSocket as an [`Outlet`]: items become frames through the door's [`Batch`].
struct Socket<'a, B> {
    sink: &'a mut WsSink,
    batch: &'a mut B,
    /// Message bytes of the batch being written.
    bytes: usize,
}

impl<B: Batch> Outlet for Socket<'_, B> {
    type Item = B::Item;
    type Error = axum::Error;

    async fn put(&mut self, item: B::Item) -> Result<Put, axum::Error> {
        match self.batch.write(item) {
            Write::Frame(m) => {
                self.bytes += payload_len(&m);
                self.sink.feed(m).await?;
            }
            Write::Frames(ms) => {
                for m in ms {
                    self.bytes += payload_len(&m);
                    self.sink.feed(m).await?;
                }
            }
            Write::Close(frame) => {
                self.sink.send(Message::Close(Some(frame))).await?;
                self.batch.flushed(std::mem::take(&mut self.bytes));
                return Ok(Put::Last);
            }
            Write::Skip => {}
        }
        Ok(Put::More)
    }

    async fn flush(&mut self) -> Result<(), axum::Error> {
        self.sink.flush().await?;
        self.batch.flushed(std::mem::take(&mut self.bytes));
        Ok(())
    }
}

/// The bytes of a data message (0 for control frames).
fn payload_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Writes the queue to a WebSocket in batches ([`drain_batches`]) until a close item was sent
/// or the queue ended. An error means the socket is gone (or already closed).
pub async fn write_queue<Q, B>(
    sink: &mut WsSink,
    rx: &mut Q,
    batch: &mut B,
) -> Result<Ended, axum::Error>
where
    Q: Queue,
    B: Batch<Item = Q::Item>,
{
    let mut socket = Socket {
        sink,
        batch,
        bytes: 0,
    };
    drain_batches(rx, &mut socket).await
}

/// Fails the connection: writes `frame` (at most [`CLOSE_FLUSH`]). Drop the connection after,
/// without waiting for the peer's reply.
pub async fn fail(sink: &mut WsSink, frame: CloseFrame) {
    fail_within(sink, frame, CLOSE_FLUSH).await;
}

/// [`fail`] with a shorter wait, for a peer known to be slow (its queue overflowed): the frame
/// goes out if the socket takes it by `wait`, else the connection is dropped without it.
pub async fn fail_within(sink: &mut WsSink, frame: CloseFrame, wait: Duration) {
    let _ = tokio::time::timeout(wait, sink.send(Message::Close(Some(frame)))).await;
}

/// A connection's writer task and the token that ends it early. The writer cancels the token
/// when it ends; whoever cancels it first (an overflowing queue, a reader giving up) stops it.
pub struct Writer {
    task: JoinHandle<()>,
    done: CancellationToken,
}

impl Writer {
    /// Runs `writer` as its own task; `done` is the token it ends on and cancels at its end.
    pub fn spawn(
        done: &CancellationToken,
        writer: impl Future<Output = ()> + Send + 'static,
    ) -> Writer {
        Writer {
            task: tokio::spawn(writer),
            done: done.clone(),
        }
    }

    /// Lets the writer write what is queued (its queue has ended or holds a close item), at
    /// most [`CLOSE_WAIT`]; then stops it.
    pub async fn finish(self) {
        self.finish_within(CLOSE_WAIT).await;
    }

    /// [`Writer::finish`], waiting at most `wait`.
    pub async fn finish_within(self, wait: Duration) {
        let Writer { mut task, done } = self;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            done.cancel();
            let _ = task.await;
        }
    }

    /// Stops the writer now, whatever is still queued.
    pub async fn stop(self) {
        self.done.cancel();
        let _ = self.task.await;
    }
}
