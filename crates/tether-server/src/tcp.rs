//! The rooms TCP line listener: one task per connection, a reader feeding the hub and a writer
//! draining the connection's bounded queue.

use std::sync::Arc;
use std::time::Duration;

use tether_rooms::line::{
    LineEvent, LineSplitter, MAX_LINE, encode_reply_with, event_error, parse_line,
};
use tether_rooms::{CloseReason, Door, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::fanout::Feed;
use crate::listen::Acceptor;
use crate::outgoing::Outgoing;
use crate::rooms_state::RoomsState;
use crate::socket::{self, Outlet, Put, Writer};
use crate::tls;

/// How long a client that half-closed gets to read its last replies.
const LINGER: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown; each holds its place under the listener's caps until it
/// ends.
pub async fn serve(state: Arc<RoomsState>, mut acceptor: Acceptor, tls: Option<TlsAcceptor>) {
    loop {
        let (sock, peer, permit) = tokio::select! {
            _ = state.drain.shutdown.cancelled() => break,
            c = acceptor.accept() => c,
        };
        let state2 = state.clone();
        let tls = tls.clone();
        state.drain.tracker.spawn(async move {
            let _permit = permit;
            match tls {
                None => run(state2, sock).await,
                Some(acc) => {
                    if let Some(s) = tls::handshake(&acc, sock, peer, "tcp").await {
                        run(state2, s).await;
                    }
                }
            }
        });
    }
}

/// Serves one connection to its end.
async fn run<S>(state: Arc<RoomsState>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let conn = state.open_stream(Door::Tcp);
    let writer = Writer::spawn(&conn.done, write_loop(wr, conn.feed, conn.done.clone()));
    let eof = read_loop(&state, conn.id, rd, &conn.done).await;
    if eof {
        // Half-closed: write what is queued (the replies to the last commands), then close.
        state.finish(conn.id, None);
        writer.finish_within(LINGER).await;
    } else {
        writer.stop().await;
    }
    // A slow consumer was already failed by the state; closing again is a no-op then.
    state.close(conn.id, CloseReason::Closed);
}

/// Reads commands until EOF (true), or until the connection is ended or fails (false).
async fn read_loop<R: AsyncRead + Unpin>(
    state: &RoomsState,
    conn: tether_rooms::ConnId,
    mut rd: R,
    done: &CancellationToken,
) -> bool {
    let mut buf = vec![0u8; 4 * 1024];
    let mut splitter = LineSplitter::new(MAX_LINE);
    // The client asked to see offsets (a registration with OFFSETS or SINCE went through).
    let mut offsets = false;
    loop {
        let n = tokio::select! {
            biased;
            _ = done.cancelled() => return false,
            r = rd.read(&mut buf) => r,
        };
        match n {
            Ok(0) => {
                if let Some(ev) = splitter.finish() {
                    handle(state, conn, ev, &mut offsets).await;
                }
                return true;
            }
            Ok(n) => {
                for ev in splitter.push(&buf[..n]) {
                    handle(state, conn, ev, &mut offsets).await;
                }
            }
            Err(_) => return false,
        }
    }
}

async fn handle(state: &RoomsState, conn: tether_rooms::ConnId, ev: LineEvent, offsets: &mut bool) {
    let cmd = match ev {
        LineEvent::Line(text) => match parse_line(&text) {
            Ok(None) => return,
            Ok(Some(cmd)) => Ok(cmd),
            Err(e) => Err(e),
        },
        other => match event_error(&other) {
            Some(e) => Err(e),
            None => return,
        },
    };
    let cmd = state.through_hook(conn, cmd).await;
    state.execute(conn, cmd, |result| {
        let bytes = Box::new(encode_reply_with(result, *offsets));
        // The reply that turns offsets on tells the writer, in order with what it writes.
        if !*offsets && matches!(result, Ok(Reply::Registered { offsets: true, .. })) {
            *offsets = true;
            Outgoing::LineOffsets(bytes)
        } else {
            Outgoing::Line(bytes)
        }
    });
}

/// The connection's byte stream as the writer's outlet: each item becomes its line(s); room
/// messages with their `OFFSET` line once the client asked for offsets.
struct Lines<W> {
    out: BufWriter<W>,
    offsets: bool,
}

impl<W: AsyncWrite + Unpin + Send> Outlet for Lines<W> {
    type Item = Outgoing;
    type Error = std::io::Error;

    async fn put(&mut self, item: Outgoing) -> std::io::Result<Put> {
        match item {
            Outgoing::Line(b) => self.out.write_all(&b).await?,
            Outgoing::LineOffsets(b) => {
                self.offsets = true;
                self.out.write_all(&b).await?
            }
            Outgoing::Push(p) => {
                let line = if self.offsets {
                    p.line_offsets()
                } else {
                    p.line()
                };
                if let Some(b) = line {
                    self.out.write_all(b).await?;
                }
            }
            Outgoing::Batch(b, from) => self.out.write_all(&b.lines(from)).await?,
            Outgoing::Text(_) => {}
            Outgoing::Close(_) => {
                self.out.flush().await?;
                self.out.shutdown().await?;
                return Ok(Put::Last);
            }
        }
        Ok(Put::More)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().await
    }
}

/// Writes queued items in batches ([`socket::drain_batches`]) until the close item or the end of
/// the queue, or until `done` ends the connection.
async fn write_loop<W: AsyncWrite + Unpin + Send>(wr: W, mut feed: Feed, done: CancellationToken) {
    // Small buffers: an idle connection should cost little; batches still coalesce.
    let mut lines = Lines {
        out: BufWriter::with_capacity(4 * 1024, wr),
        offsets: false,
    };
    tokio::select! {
        biased;
        _ = done.cancelled() => {}
        _ = socket::drain_batches(&mut feed, &mut lines) => {}
    }
    done.cancel();
}
