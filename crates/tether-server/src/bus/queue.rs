//! The node's ordered queue of writes to Redis, bounded in bytes.

use std::collections::VecDeque;

use metrics::counter;

use super::wire::{self, RELEASE};

/// Bytes the outbox holds at most; a write that does not fit is dropped (and counted): a node whose Redis is slow or gone never grows without bound.
pub const OUTBOX_BYTES: usize = 8 << 20;

/// Most writes in one pipeline.
const BATCH: usize = 512;

/// One write to Redis.
pub enum Op {
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
    pub fn bytes(&self) -> usize {
        64 + match self {
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

    pub fn add_to(self, pipe: &mut redis::Pipeline, node: &str) {
        match self {
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
            counter!("tether_bus_dropped_total").increment(1);
            return false;
        }
        self.bytes += bytes;
        self.ops.push_back(op);
        true
    }

    pub fn take(&mut self) -> Vec<Op> {
        let n = self.ops.len().min(BATCH);
        let ops: Vec<Op> = self.ops.drain(..n).collect();
        self.bytes -= ops.iter().map(Op::bytes).sum::<usize>();
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_is_bounded_in_bytes_and_keeps_order() {
        let mut o = Outbox::default();
        let op = |i: usize| Op::RoomRemoved {
            room: "c".into(),
            payload: format!("{}{i}", "x".repeat((1 << 20) - 1)),
        };
        let mut pushed = 0;
        while o.push(op(pushed)) {
            pushed += 1;
        }
        assert_eq!(pushed, 7); // 8 MiB of 1 MiB payloads, with their overhead
        let taken = o.take();
        assert_eq!(taken.len(), 7);
        assert!(matches!(&taken[0], Op::RoomRemoved { payload, .. } if payload.ends_with('0')));
        assert_eq!(o.bytes, 0);
        assert!(o.push(op(0)));
    }
}
