//! The bus's pub/sub connection: its own connection (not the command manager's), subscribed to
//! the control channel and to the channels of the rooms with local members; on failure it
//! reconnects with backoff and subscribes to every channel again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use metrics::{counter, gauge};

use super::node::Bus;
use tether_rooms::Position;

use super::wire::{self, Event};
use crate::rooms_state::RoomsState;

/// First pause after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Longest a connect or a (re)subscribe may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps the pub/sub connection up until shutdown.
pub async fn run(state: Arc<RoomsState>, bus: Arc<Bus>) {
    let mut backoff = MIN_BACKOFF;
    let mut was_up = false;
    loop {
        let mut reached = false;
        match serve(&state, &bus, &mut was_up, &mut reached).await {
            Ended::Shutdown => return,
            Ended::Failed(why) => {
                if bus.pubsub_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!("bus: pub/sub connection lost ({why}); reconnecting");
                } else {
                    tracing::debug!("bus: pub/sub connection failed: {why}");
                }
                gauge!("tether_bus_up").set(0.0);
                counter!("tether_bus_errors_total", "conn" => "pubsub").increment(1);
                bus.subs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .active
                    .clear();
                bus.subs_done.notify_waiters();
            }
        }
        tokio::select! {
            _ = state.drain.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        // A connection that worked starts the next round from the shortest pause.
        backoff = if reached {
            MIN_BACKOFF
        } else {
            (backoff * 2).min(MAX_BACKOFF)
        };
    }
}

enum Ended {
    Shutdown,
    Failed(String),
}

/// One connection's life: connect, subscribe, then deliver and (un)subscribe until it fails.
async fn serve(state: &RoomsState, bus: &Bus, was_up: &mut bool, reached: &mut bool) -> Ended {
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, bus.client.get_async_pubsub());
    let pubsub = tokio::select! {
        _ = state.drain.shutdown.cancelled() => return Ended::Shutdown,
        c = connect => match c {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Ended::Failed(e.to_string()),
            Err(_) => return Ended::Failed("connect timed out".into()),
        },
    };
    let (mut sink, mut stream) = pubsub.split();
    let rooms: Vec<String> = {
        let subs = bus.subs.lock().unwrap_or_else(|p| p.into_inner());
        subs.wanted.keys().cloned().collect()
    };
    let mut channels = vec![wire::CONTROL.to_owned()];
    channels.extend(rooms.iter().map(|r| wire::room_channel(r)));
    match tokio::time::timeout(CONNECT_TIMEOUT, sink.subscribe(&channels)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Ended::Failed(e.to_string()),
        Err(_) => return Ended::Failed("subscribe timed out".into()),
    }
    bus.subs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .active
        .extend(rooms);
    bus.pubsub_up.store(true, Ordering::Relaxed);
    gauge!("tether_bus_up").set(if bus.commands_ok() { 1.0 } else { 0.0 });
    if *was_up {
        counter!("tether_bus_reconnects_total").increment(1);
        tracing::info!("bus: pub/sub connection back, subscriptions restored");
    }
    let reconnected = *was_up;
    *was_up = true;
    *reached = true;
    bus.subs_done.notify_waiters();
    // Presence, names and rooms may be gone from a restarted Redis: write them again now.
    bus.sync_wake.notify_one();
    if reconnected {
        // Messages published while this connection was down never came: fill them in from the
        // rooms' Streams (or tell the members to resync if Redis lost them), before any newer
        // one is delivered.
        for room in rooms_now(bus).iter().filter_map(|r| wire::name(r)) {
            state.sync_room(&room).await;
        }
    }
    loop {
        tokio::select! {
            _ = state.drain.shutdown.cancelled() => return Ended::Shutdown,
            msg = stream.next() => match msg {
                Some(msg) => deliver(state, bus, msg.get_channel_name(), msg.get_payload_bytes()).await,
                None => return Ended::Failed("connection closed".into()),
            },
            _ = bus.subs_wake.notified() => {
                let (add, drop) = {
                    let subs = bus.subs.lock().unwrap_or_else(|p| p.into_inner());
                    let add: Vec<String> =
                        subs.wanted.keys().filter(|r| !subs.active.contains(*r)).cloned().collect();
                    let drop: Vec<String> =
                        subs.active.iter().filter(|r| !subs.wanted.contains_key(*r)).cloned().collect();
                    (add, drop)
                };
                if !add.is_empty() {
                    let chans: Vec<String> = add.iter().map(|r| wire::room_channel(r)).collect();
                    match tokio::time::timeout(CONNECT_TIMEOUT, sink.subscribe(&chans)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Ended::Failed(e.to_string()),
                        Err(_) => return Ended::Failed("subscribe timed out".into()),
                    }
                }
                if !drop.is_empty() {
                    let chans: Vec<String> = drop.iter().map(|r| wire::room_channel(r)).collect();
                    match tokio::time::timeout(CONNECT_TIMEOUT, sink.unsubscribe(&chans)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Ended::Failed(e.to_string()),
                        Err(_) => return Ended::Failed("unsubscribe timed out".into()),
                    }
                }
                {
                    let mut subs = bus.subs.lock().unwrap_or_else(|p| p.into_inner());
                    subs.active.extend(add);
                    for r in &drop {
                        subs.active.remove(r);
                    }
                }
                bus.subs_done.notify_waiters();
            }
        }
    }
}

fn rooms_now(bus: &Bus) -> Vec<String> {
    let subs = bus.subs.lock().unwrap_or_else(|p| p.into_inner());
    subs.active.iter().cloned().collect()
}

/// Hands one event to the hub: room messages from every node (this one's included: they are
/// delivered here too, in Redis's order), the other events from the other nodes only.
async fn deliver(state: &RoomsState, bus: &Bus, channel: &str, payload: &[u8]) {
    let Some(event) = Event::decode(payload) else {
        counter!("tether_bus_errors_total", "conn" => "bad_payload").increment(1);
        return;
    };
    let room = wire::channel_room(channel).and_then(wire::name);
    if let (Some(room), Event::Message { o, e, f, t, .. }) = (&room, &event) {
        let (Some(from), Ok(position)) = (wire::name(f), Position::parse(*o, e)) else {
            counter!("tether_bus_errors_total", "conn" => "bad_payload").increment(1);
            return;
        };
        counter!("tether_bus_received_total").increment(1);
        let in_step = state.with_hub(|h| {
            h.position(room.as_str())
                .map(|p| p.epoch == position.epoch && position.offset <= p.offset + 1)
        });
        match in_step {
            None => return,
            Some(true) => {}
            // A gap (this node missed messages) or another epoch: read the Stream first.
            Some(false) => state.sync_room(room).await,
        }
        let text = Arc::from(t.as_str());
        state.mutate(|core| {
            core.hub
                .handle_remote_message(room, position, from, text, Instant::now())
        });
        return;
    }
    if event.node() == bus.node {
        return;
    }
    let now = Instant::now();
    match (room, event) {
        (Some(room), Event::Join { n, c }) => {
            let Some(client) = wire::name(&c) else { return };
            bus.view().joined(room.as_str(), client.as_str(), &n);
            state.mutate(|core| core.hub.handle_remote_presence(&room, client, true, now));
        }
        (Some(room), Event::Leave { n, c }) => {
            let Some(client) = wire::name(&c) else { return };
            bus.view().left(room.as_str(), client.as_str(), &n);
            state.mutate(|core| core.hub.handle_remote_presence(&room, client, false, now));
        }
        (None, Event::RoomCreated { r, .. }) => {
            if let Some(room) = wire::name(&r) {
                state.mutate(|core| core.hub.handle_remote_room(room));
            }
        }
        (None, Event::RoomRemoved { r, .. }) => {
            bus.view().remove_room(&r);
            state.mutate(|core| core.hub.handle_remote_room_removed(&r));
        }
        _ => {}
    }
}
