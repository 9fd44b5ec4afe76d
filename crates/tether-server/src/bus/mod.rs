//! The cluster bus (`--bus redis://…`): several tether nodes share one Redis, and through it only
//! (no connection between nodes) they share room messages, joins and leaves, presence, client
//! names and room definitions (`docs/protocol/rooms.md`, Cluster).
//!
//! - Every write to Redis that follows from a hub event (a message, a join or leave, a presence
//!   refresh, a released name) goes through one ordered outbox ([`Bus::publish_message`] and its
//!   siblings, called under the hub's lock), drained by one task ([`outbox`]) in pipelines: what
//!   one node publishes reaches Redis in the order its hub produced it.
//! - Local members get a message directly from their node's hub, as on a single node; the other
//!   nodes get it from the room's Redis channel ([`pubsub`]), on which a node is subscribed
//!   while it has members in the room, over a connection of its own with its own reconnect loop.
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
        "Room messages published to the other nodes."
    );
    describe_counter!(
        "tether_bus_received_total",
        "Room messages received from the other nodes."
    );
    describe_counter!(
        "tether_bus_lost_total",
        "Room messages the other nodes' members never get, by reason: redis (Redis down), \
         outbox_full, not_subscribed (counted per node that had members but was not subscribed, \
         e.g. still reconnecting)."
    );
}
