//! The task that drains the node's outbox in pipelines, one at a time, so Redis sees the writes
//! in queue order.

use std::sync::Arc;
use std::time::Duration;

use metrics::counter;

use super::node::Bus;
use super::queue::Op;
use crate::rooms_state::RoomsState;

/// Longest one pipeline may take before it counts as failed.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(3);

/// Drains the outbox until shutdown: each batch is one pipeline; a failed one is dropped (its
/// messages counted lost: the other nodes' members miss them, this node's got them) and the
/// connection manager reconnects.
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
            let expected: Vec<usize> = ops
                .iter()
                .filter_map(|o| match o {
                    Op::Publish { nodes, .. } => *nodes,
                    _ => None,
                })
                .collect();
            let messages = expected.len() as u64;
            let mut pipe = redis::pipe();
            for op in ops {
                op.add_to(&mut pipe, &bus.node);
            }
            let sent =
                tokio::time::timeout(PIPELINE_TIMEOUT, pipe.query_async::<Vec<i64>>(&mut cmd));
            match sent.await {
                Ok(Ok(receivers)) => {
                    bus.set_cmd_ok(true);
                    counter!("tether_bus_published_total").increment(messages);
                    // A node with members that was not subscribed (it was reconnecting) missed it.
                    let missed: usize = expected
                        .iter()
                        .zip(receivers)
                        .map(|(want, got)| want.saturating_sub(usize::try_from(got).unwrap_or(0)))
                        .sum();
                    if missed > 0 {
                        counter!("tether_bus_lost_total", "reason" => "not_subscribed")
                            .increment(missed as u64);
                    }
                }
                failed => {
                    if let Ok(Err(e)) = failed {
                        tracing::warn!("bus: publishing to Redis failed: {e}");
                    }
                    bus.set_cmd_ok(false);
                    counter!("tether_bus_lost_total", "reason" => "redis").increment(messages);
                }
            }
        }
    }
}
