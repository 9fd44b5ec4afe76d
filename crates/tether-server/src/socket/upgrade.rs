//! Upgrading an HTTP request to a WebSocket: the door's tunings, and the drain every connection
//! runs under (it is told when the server shuts down, and the shutdown waits for it).

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A door's upgrade tunings: tungstenite's buffers and the largest message (and frame) it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Bytes read from the socket at once.
    pub read_buffer: usize,
    /// Bytes of written frames tungstenite keeps before it writes them out.
    pub write_buffer: usize,
    /// Largest message (and frame); a bigger one closes the connection with 1009.
    pub max_message: usize,
}

impl Tuning {
    /// 8 KiB buffers (tungstenite allocates 128 KiB to read by default) and messages up to
    /// `max_message` bytes: what most doors take; a door with other needs changes a field.
    pub const fn new(max_message: usize) -> Tuning {
        Tuning {
            read_buffer: 8 * 1024,
            write_buffer: 8 * 1024,
            max_message,
        }
    }

    /// Applies the tunings to an upgrade.
    pub fn apply(self, ws: WebSocketUpgrade) -> WebSocketUpgrade {
        ws.read_buffer_size(self.read_buffer)
            .write_buffer_size(self.write_buffer)
            .max_message_size(self.max_message)
            .max_frame_size(self.max_message)
    }
}

/// The server's drain as a door sees it: the token cancelled when shutdown begins, and the
/// tracker that shutdown waits on (up to its grace period) for every connection task.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl Drain {
    /// A drain not begun, with no connection yet.
    pub fn new() -> Drain {
        Drain::default()
    }

    /// Upgrades with `tuning` and serves the socket with `run`, as a task the drain waits for.
    pub fn upgrade<F>(
        &self,
        ws: WebSocketUpgrade,
        tuning: Tuning,
        run: impl FnOnce(WebSocket) -> F + Send + 'static,
    ) -> Response
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let tracker = self.tracker.clone();
        tuning
            .apply(ws)
            .on_upgrade(move |socket| tracker.track_future(run(socket)))
    }
}
