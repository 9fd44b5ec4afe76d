//! The node's ordered queue of writes to Redis, bounded in bytes, and the task that drains it in
//! pipelines (one at a time, so Redis sees them in queue order).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use metrics::counter;

use super::{Bus, RELEASE, wire};
use crate::rooms_state::RoomsState;

/// Bytes the outbox holds at most; a write that does not fit is dropped (and a message counted
/// lost): a node whose Redis is slow or gone never grows without bound.
pub const OUTBOX_BYTES: usize = 8 << 20;

/// Most writes in one pipeline.
const BATCH: usize = 512;

/// Longest one pipeline may take before it counts as failed.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(3);

/// One write to Redis.
pub enum Op {
    /// PUBLISH a payload (`message`: a room message, counted as published or lost).
    Publish {
        channel: String,
        payload: String,
        message: bool,
    },
    /// A join (`value`: the presence hash value) or leave: the hash entry and the event.
    Presence {
        room: String,
        client: String,
        value: Option<String>,
        payload: String,
    },
    /// Free a client name this node held.
    Release(String),
    /// Remove a room from the cluster's rooms and tell the nodes.
    RoomRemoved { room: String, payload: String },
    /// The periodic refresh of this node's heartbeat, names and members.
    Refresh(redis::Pipeline, usize),
}

impl Op {
    fn bytes(&self) -> usize {
        64 + match self {
            Op::Publish {
                channel, payload, ..
            } => channel.len() + payload.len(),
            Op::Presence {
                room,
                client,
                value,
                payload,
            } => room.len() + client.len() + value.as_ref().map_or(0, String::len) + payload.len(),
            Op::Release(c) => c.len(),
            Op::RoomRemoved { room, payload } => room.len() + payload.len(),
            Op::Refresh(_, bytes) => *bytes,
        }
    }

    fn is_message(&self) -> bool {
        matches!(self, Op::Publish { message: true, .. })
    }

    fn add_to(self, pipe: &mut redis::Pipeline, node: &str) {
        match self {
            Op::Publish {
                channel, payload, ..
            } => {
                pipe.publish(channel, payload).ignore();
            }
            Op::Presence {
                room,
                client,
                value,
                payload,
            } => {
                let key = wire::presence_key(&room);
                match value {
                    Some(v) => pipe.hset(key, &client, v).ignore(),
                    None => pipe.hdel(key, &client).ignore(),
                };
                pipe.publish(wire::room_channel(&room), payload).ignore();
            }
            Op::Release(client) => {
                pipe.cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(wire::client_key(&client))
                    .arg(node)
                    .ignore();
            }
            Op::RoomRemoved { room, payload } => {
                pipe.srem(wire::ROOMS, room).ignore();
                pipe.publish(wire::CONTROL, payload).ignore();
            }
            Op::Refresh(p, _) => {
                for c in p.cmd_iter() {
                    pipe.add_command(c.clone()).ignore();
                }
            }
        }
    }
}

/// The queued writes.
#[derive(Default)]
pub struct Outbox {
    ops: VecDeque<Op>,
    bytes: usize,
}

impl Outbox {
    /// Queues `op`; false (and counted) when it does not fit.
    pub fn push(&mut self, op: Op) -> bool {
        let bytes = op.bytes();
        if self.bytes + bytes > OUTBOX_BYTES {
            if op.is_message() {
                counter!("tether_bus_lost_total", "reason" => "outbox_full").increment(1);
            }
            return false;
        }
        self.bytes += bytes;
        self.ops.push_back(op);
        true
    }

    fn take(&mut self) -> Vec<Op> {
        let n = self.ops.len().min(BATCH);
        let ops: Vec<Op> = self.ops.drain(..n).collect();
        self.bytes -= ops.iter().map(Op::bytes).sum::<usize>();
        ops
    }
}

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
            let messages = ops.iter().filter(|o| o.is_message()).count() as u64;
            let mut pipe = redis::pipe();
            for op in ops {
                op.add_to(&mut pipe, &bus.node);
            }
            let sent = tokio::time::timeout(PIPELINE_TIMEOUT, pipe.query_async::<()>(&mut cmd));
            match sent.await {
                Ok(Ok(())) => {
                    bus.set_cmd_ok(true);
                    counter!("tether_bus_published_total").increment(messages);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_is_bounded_in_bytes_and_keeps_order() {
        let mut o = Outbox::default();
        let op = |i: usize| Op::Publish {
            channel: "c".into(),
            payload: format!("{}{i}", "x".repeat((1 << 20) - 1)),
            message: true,
        };
        let mut pushed = 0;
        while o.push(op(pushed)) {
            pushed += 1;
        }
        assert_eq!(pushed, 7); // 8 MiB of 1 MiB payloads, with their overhead
        let taken = o.take();
        assert_eq!(taken.len(), 7);
        assert!(matches!(&taken[0], Op::Publish { payload, .. } if payload.ends_with('0')));
        assert_eq!(o.bytes, 0);
        assert!(o.push(op(0)));
    }
}
