//! The task that drains the node's outbox in pipelines, one at a time, so Redis sees the writes
//! in queue order.

use std::sync::Arc;
use std::time::Duration;

use super::node::Bus;
use crate::rooms_state::RoomsState;

/// Longest one pipeline may take before it counts as failed.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(3);

/// Drains the outbox until shutdown: each batch is one pipeline; a failed one is dropped (the
/// sync task writes presence, names and rooms again once Redis is back) and the connection
/// manager reconnects.
pub async fn run(state: Arc<RoomsState>, bus: Arc<Bus>) {
    let mut cmd = bus.cmd.clone();
    loop {
        tokio::select! {
            _ = state.drain.shutdown.cancelled() => return,
            _ = bus.outbox_wake.notified() => {}
        }
        loop {
            let ops = bus.outbox.lock().unwrap_or_else(|p| p.into_inner()).take();
            if ops.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for op in ops {
                op.add_to(&mut pipe, &bus.node);
            }
            let sent = tokio::time::timeout(PIPELINE_TIMEOUT, pipe.query_async::<()>(&mut cmd));
            match sent.await {
                Ok(Ok(())) => bus.set_cmd_ok(true),
                failed => {
                    if let Ok(Err(e)) = failed {
                        tracing::warn!("bus: writing to Redis failed: {e}");
                    }
                    bus.set_cmd_ok(false);
                }
            }
        }
    }
}
