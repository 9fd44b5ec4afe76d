//! The periodic refresh: this node's heartbeat, the names it holds, its members in the rooms'
//! presence hashes and its rooms in the cluster's set, all with the presence TTL; then the other
//! nodes' live members and the cluster's rooms, read back into the view and the hub.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use metrics::gauge;
use redis::AsyncCommands;

use super::node::Bus;
use super::queue::Op;
use super::wire::{self, CLAIM, RELEASE};
use crate::rooms_state::RoomsState;

/// Longest the reads of one refresh may take.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Room → the clients this node wrote to its presence hash.
type Written = HashMap<String, HashSet<String>>;

/// Refreshes until shutdown, then takes this node's members, names and heartbeat out of Redis.
pub async fn run(state: Arc<RoomsState>, bus: Arc<Bus>) {
    let mut written = Written::new();
    loop {
        refresh(&state, &bus, &mut written);
        match read(&state, &bus).await {
            Ok(()) => bus.set_cmd_ok(true),
            Err(e) => {
                tracing::debug!("bus: reading the cluster's presence failed: {e}");
                bus.set_cmd_ok(false);
            }
        }
        gauge!("tether_bus_up").set(if bus.healthy() { 1.0 } else { 0.0 });
        tokio::select! {
            _ = state.drain.shutdown.cancelled() => break,
            _ = tokio::time::sleep(bus.config.refresh_every()) => {}
            _ = bus.sync_wake.notified() => {}
        }
    }
    leave(&state, &bus, &written).await;
}

/// Queues this node's refresh in the outbox, behind the joins and leaves already queued (the
/// snapshot and the queueing happen under the hub's lock, so they agree).
fn refresh(state: &RoomsState, bus: &Bus, written: &mut Written) {
    let ttl = bus.config.ttl_secs();
    let node = bus.node.as_str();
    let listened = state.with_hub(|hub| {
        let mut pipe = redis::pipe();
        let mut bytes = 64;
        pipe.set_ex(wire::node_key(node), 1, ttl).ignore();
        for client in hub.client_names() {
            pipe.cmd("EVAL")
                .arg(CLAIM)
                .arg(1)
                .arg(wire::client_key(client.as_str()))
                .arg(node)
                .arg(ttl)
                .ignore();
            bytes += CLAIM.len() + 64;
        }
        let mut now = Written::new();
        for room in hub.rooms() {
            if room.members.is_empty() {
                continue;
            }
            if room.name.as_str() != "main" {
                pipe.sadd(wire::ROOMS, room.name.as_str()).ignore();
            }
            let fields: Vec<(String, String)> = room
                .members
                .iter()
                .map(|m| (m.client.to_string(), wire::presence_value(node, m.status)))
                .collect();
            bytes += fields.len() * 96;
            pipe.hset_multiple(wire::presence_key(room.name.as_str()), &fields)
                .ignore();
            now.insert(
                room.name.to_string(),
                fields.into_iter().map(|(c, _)| c).collect(),
            );
        }
        for (room, clients) in written.iter() {
            let gone: Vec<&String> = match now.get(room) {
                Some(kept) => clients.iter().filter(|c| !kept.contains(*c)).collect(),
                None => clients.iter().collect(),
            };
            if !gone.is_empty() {
                pipe.hdel(wire::presence_key(room), gone).ignore();
            }
        }
        let listened: HashSet<String> = now.keys().cloned().collect();
        *written = now;
        bus.push(Op::Refresh(pipe, bytes));
        listened
    });
    bus.want(listened);
}

/// Reads the cluster's rooms and the live members of the other nodes; drops the members of
/// nodes whose heartbeat ran out.
async fn read(state: &RoomsState, bus: &Bus) -> redis::RedisResult<()> {
    let mut cmd = bus.cmd.clone();
    let timed = |what: &'static str| move |_| redis::RedisError::from((redis::ErrorKind::Io, what));
    let rooms: Vec<String> = tokio::time::timeout(READ_TIMEOUT, cmd.smembers(wire::ROOMS))
        .await
        .map_err(timed("reading rooms timed out"))??;
    let mut all = vec!["main".to_owned()];
    all.extend(rooms.iter().cloned());
    let mut pipe = redis::pipe();
    for room in &all {
        pipe.hgetall(wire::presence_key(room));
    }
    let hashes: Vec<HashMap<String, String>> =
        tokio::time::timeout(READ_TIMEOUT, pipe.query_async(&mut cmd))
            .await
            .map_err(timed("reading presence timed out"))??;
    let mut nodes: Vec<String> = hashes
        .iter()
        .flat_map(|h| h.values())
        .filter_map(|v| wire::parse_presence(v).map(|(n, _)| n.to_owned()))
        .filter(|n| *n != bus.node)
        .collect();
    nodes.sort();
    nodes.dedup();
    let alive: HashSet<String> = if nodes.is_empty() {
        HashSet::new()
    } else {
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.exists(wire::node_key(n));
        }
        let up: Vec<bool> = tokio::time::timeout(READ_TIMEOUT, pipe.query_async(&mut cmd))
            .await
            .map_err(timed("reading heartbeats timed out"))??;
        nodes
            .into_iter()
            .zip(up)
            .filter_map(|(n, up)| up.then_some(n))
            .collect()
    };
    let mut view = BTreeMap::new();
    let mut dead = redis::pipe();
    let mut any_dead = false;
    for (room, hash) in all.iter().zip(hashes) {
        let mut members = BTreeMap::new();
        for (client, value) in hash {
            match wire::parse_presence(&value) {
                Some((n, _)) if n == bus.node => {}
                Some((n, status)) if alive.contains(n) => {
                    members.insert(client, (n.to_owned(), status));
                }
                _ => {
                    dead.hdel(wire::presence_key(room), client).ignore();
                    any_dead = true;
                }
            }
        }
        if !members.is_empty() {
            view.insert(room.clone(), members);
        }
    }
    bus.view().replace(view);
    state.mutate(|core| {
        for room in rooms.iter().filter_map(|r| wire::name(r)) {
            core.hub.handle_remote_room(room);
        }
    });
    if any_dead {
        tokio::time::timeout(READ_TIMEOUT, dead.query_async::<()>(&mut cmd))
            .await
            .map_err(timed("dropping dead members timed out"))??;
    }
    Ok(())
}

/// A node stopping takes its heartbeat, members and names out at once, so the others need not
/// wait for the TTL.
async fn leave(state: &RoomsState, bus: &Bus, written: &Written) {
    let mut pipe = redis::pipe();
    pipe.del(wire::node_key(&bus.node)).ignore();
    for (room, clients) in written {
        pipe.hdel(wire::presence_key(room), clients.iter().collect::<Vec<_>>())
            .ignore();
    }
    state.with_hub(|hub| {
        for client in hub.client_names() {
            pipe.cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(wire::client_key(client.as_str()))
                .arg(&bus.node)
                .ignore();
        }
    });
    let mut cmd = bus.cmd.clone();
    let _ = tokio::time::timeout(Duration::from_secs(1), pipe.query_async::<()>(&mut cmd)).await;
}
