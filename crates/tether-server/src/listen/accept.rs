//! The accept loop every listener runs: admits through the [`Gate`], closes refused sockets at
//! once, and keeps going when the process runs out of file descriptors.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::net::{TcpListener, TcpStream};

use super::gate::{Gate, Permit};

/// Least time between two warnings about accept errors on one listener.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How long to wait after an accept error that refusing cannot clear.
const BACKOFF: Duration = Duration::from_millis(50);

/// A bound listener and its gate.
pub struct Acceptor {
    listener: TcpListener,
    gate: Arc<Gate>,
    /// A descriptor held in reserve: when accept fails for lack of descriptors, closing it lets
    /// the waiting connection be accepted and closed, instead of leaving it (and everyone
    /// behind it) in the backlog with the accept loop retrying in vain.
    spare: Option<std::fs::File>,
    last_warning: Option<Instant>,
}

impl Acceptor {
    /// Accepts on `listener`, admitting through `gate`.
    pub fn new(listener: TcpListener, gate: Arc<Gate>) -> Acceptor {
        Acceptor {
            listener,
            gate,
            spare: open_spare(),
            last_warning: None,
        }
    }

    /// The listener's name (`http`, `relay`, `tcp`), for logs and metrics.
    pub fn name(&self) -> &'static str {
        self.gate.name()
    }

    /// The next connection the gate admits, with its permit. Never fails: refused sockets are
    /// closed at once, errors are logged (at most every 10 s) and waited out.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr, Permit) {
        loop {
            if self.spare.is_none() {
                self.spare = open_spare();
            }
            match self.listener.accept().await {
                Ok((sock, peer)) => match self.gate.admit(peer.ip()) {
                    Ok(permit) => {
                        let _ = sock.set_nodelay(true);
                        return (sock, peer, permit);
                    }
                    Err(_) => refuse(sock),
                },
                Err(e) if is_per_connection(&e) => {}
                Err(e) if is_out_of_descriptors(&e) => self.shed(&e).await,
                Err(e) => {
                    self.warn(&e, "");
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }

    /// Out of descriptors: frees the spare one to accept and close the connection that is
    /// waiting, so that clients are told at once and the backlog drains.
    async fn shed(&mut self, e: &io::Error) {
        self.gate.refused_fd_limit();
        self.warn(
            e,
            "; closing new connections at once until some close (raise `ulimit -n`, or lower \
             --max-connections)",
        );
        match self.spare.take() {
            Some(spare) => {
                drop(spare);
                if let Some(Ok((sock, _))) = self.listener.accept().now_or_never() {
                    refuse(sock);
                }
                self.spare = open_spare();
            }
            None => tokio::time::sleep(BACKOFF).await,
        }
    }

    fn warn(&mut self, e: &io::Error, hint: &str) {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.last_warning = Some(now);
            tracing::warn!("{} accept failed: {e}{hint}", self.gate.name());
        }
    }
}

/// Closes a refused connection now. Lingering off: the peer gets a reset instead of the
/// server keeping a TIME_WAIT entry for every refused socket of a flood.
fn refuse(sock: TcpStream) {
    let _ = sock.set_zero_linger();
    drop(sock);
}

fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Errors about one connection that vanished before it was accepted: try the next one.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
