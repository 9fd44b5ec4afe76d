//! The cluster bus (`--bus redis://…`): several tether nodes share one Redis, and through it only
//! (no connection between nodes) they share room messages, joins and leaves, presence, client
//! names and room definitions (`docs/protocol/rooms.md`, Cluster).
//!
//! - A room message is positioned by Redis: [`Bus::publish_message`] runs one script that gives
//!   it the room's next offset, appends it to the room's Stream and publishes it; the sender
//!   waits for that position (its reply carries it). Every node, the sender's included, delivers
//!   it when it comes back on the room's channel ([`pubsub`]), so members everywhere see Redis's
//!   order; a gap in the offsets is filled from the Stream, and a join (or REST history) reads
//!   the Stream first, so any node can recover any position.
//! - Every other write that follows from a hub event (a join or leave, a presence refresh, a
//!   released name) goes through one ordered outbox ([`Bus::publish_presence`] and its
//!   siblings, called under the hub's lock), drained by one task ([`outbox`]) in pipelines.
//! - A node listens to a room's channel while it has members in the room, over a pub/sub
//!   connection of its own with its own reconnect loop.
//! - Presence, claims and room definitions are kept by a periodic task ([`sync`]) with TTLs, so
//!   a node that dies takes its members and names with it once the TTL runs out.

mod node;
mod outbox;
mod pubsub;
mod queue;
mod settings;
mod sync;
mod view;
pub mod wire;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::rooms_state::RoomsState;
pub use node::Bus;
pub use queue::OUTBOX_BYTES;
pub use settings::BusConfig;
pub use view::ClusterView;

/// Starts the bus tasks (outbox, pub/sub, refresh); they end on the server's shutdown.
pub fn spawn(bus: &Arc<Bus>, state: &Arc<RoomsState>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(outbox::run(state.clone(), bus.clone())),
        tokio::spawn(pubsub::run(state.clone(), bus.clone())),
        tokio::spawn(sync::run(state.clone(), bus.clone())),
    ]
}

/// Describes the bus metrics.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        "tether_bus_up",
        "1 while both Redis connections of the cluster bus work, 0 while degraded."
    );
    describe_counter!(
        "tether_bus_errors_total",
        "Cluster bus failures, by connection (pubsub, commands)."
    );
    describe_counter!(
        "tether_bus_reconnects_total",
        "Times the bus's pub/sub connection came back after a failure."
    );
    describe_counter!(
        "tether_bus_published_total",
        "Room messages this node had positioned and published through Redis."
    );
    describe_counter!(
        "tether_bus_received_total",
        "Room messages received from Redis (every node's, this one's included)."
    );
    describe_counter!(
        "tether_bus_refused_total",
        "Room messages refused with UNAVAILABLE because Redis could not position them."
    );
    describe_counter!(
        "tether_bus_repaired_total",
        "Room messages this node missed on the pub/sub channel and read back from the Stream."
    );
    describe_counter!(
        "tether_bus_resyncs_total",
        "Times a room's local members were told to resync (history lost or a gap not refillable)."
    );
    describe_counter!(
        "tether_bus_dropped_total",
        "Writes (presence, names, rooms) dropped because the outbox was full."
    );
}
