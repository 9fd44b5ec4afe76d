//! The bus of one node: its id, its Redis connections, the outbox every event leaves through,
//! the rooms it listens to and its view of the other nodes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use metrics::counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;

use tether_rooms::{ErrorCode, HistoryLimits, HubError, Name, Position, Publish, Status, Stored};
use tokio::sync::Notify;

use super::queue;
use super::settings::BusConfig;
use super::view::ClusterView;
use super::wire::{self, CLAIM, Event};

/// Longest wait for one Redis command on the paths a client waits on (a claim, a new room).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest a join waits for its node to be subscribed to the room's channel.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a room a join asked to listen to stays subscribed even before the member shows up
/// in the hub (the sync task otherwise drops rooms without local members).
const LISTEN_PIN: Duration = Duration::from_secs(10);

/// Which rooms' channels the pub/sub connection should be and is subscribed to.
#[derive(Default)]
pub(super) struct Subs {
    /// Rooms to listen to, with how long a join pinned them (`None`: local members).
    pub(super) wanted: HashMap<String, Option<Instant>>,
    /// Rooms subscribed on the current connection.
    pub(super) active: HashSet<String>,
}

/// The bus: this node's id, its Redis connections and what they carry.
pub struct Bus {
    /// This node's id in the cluster: random, new at every start.
    pub node: String,
    /// The settings.
    pub config: BusConfig,
    pub(super) client: redis::Client,
    /// Commands: a connection manager that reconnects on its own.
    pub(super) cmd: ConnectionManager,
    pub(super) outbox: Mutex<queue::Outbox>,
    pub(super) outbox_wake: Notify,
    pub(super) subs: Mutex<Subs>,
    /// Wakes the pub/sub task to (un)subscribe.
    pub(super) subs_wake: Notify,
    /// Woken by the pub/sub task when `active` changed.
    pub(super) subs_done: Notify,
    /// Wakes the sync task early (after a reconnect).
    pub(super) sync_wake: Notify,
    pub(super) pubsub_up: AtomicBool,
    pub(super) cmd_ok: AtomicBool,
    pub(super) view: Mutex<ClusterView>,
    publish_script: redis::Script,
    read_script: redis::Script,
}

impl Bus {
    /// A bus for these settings; connects lazily (the node starts even while Redis is down).
    pub fn new(config: BusConfig) -> Result<Bus, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("bus URL is invalid: {e}"))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let cmd = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| format!("bus: {e}"))?;
        let mut raw = [0u8; 6];
        getrandom::fill(&mut raw).map_err(|e| format!("bus: no randomness for a node id: {e}"))?;
        Ok(Bus {
            node: raw.iter().map(|b| format!("{b:02x}")).collect(),
            config,
            client,
            cmd,
            outbox: Mutex::new(queue::Outbox::default()),
            outbox_wake: Notify::new(),
            subs: Mutex::new(Subs::default()),
            subs_wake: Notify::new(),
            subs_done: Notify::new(),
            sync_wake: Notify::new(),
            pubsub_up: AtomicBool::new(false),
            cmd_ok: AtomicBool::new(false),
            view: Mutex::new(ClusterView::default()),
            publish_script: redis::Script::new(wire::PUBLISH),
            read_script: redis::Script::new(wire::READ),
        })
    }

    /// Whether both Redis connections work (`/health` says `degraded` otherwise).
    pub fn healthy(&self) -> bool {
        self.pubsub_up.load(Ordering::Relaxed) && self.cmd_ok.load(Ordering::Relaxed)
    }

    /// Whether the pub/sub connection is subscribed.
    pub fn pubsub_up(&self) -> bool {
        self.pubsub_up.load(Ordering::Relaxed)
    }

    /// Whether the last command on the command connection went through.
    pub fn commands_ok(&self) -> bool {
        self.cmd_ok.load(Ordering::Relaxed)
    }

    pub(super) fn set_cmd_ok(&self, ok: bool) {
        if !ok {
            counter!("tether_bus_errors_total", "conn" => "commands").increment(1);
        }
        self.cmd_ok.store(ok, Ordering::Relaxed);
    }

    /// The other nodes' members as last read from Redis.
    pub fn view(&self) -> MutexGuard<'_, ClusterView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- the publish path: called under the hub's lock, in hub order ----

    /// Publishes a room message through Redis, which gives it its cluster-wide position (the
    /// [`wire::PUBLISH`] script: offset, the room's Stream, the channel, in one step) and returns
    /// it. The one place a room message leaves a node; every node, this one included, delivers
    /// it when it comes back on the room's channel, so members see Redis's order. Refused with
    /// `UNAVAILABLE` (retryable) while Redis cannot be reached: no offset can be assigned.
    pub async fn publish_message(
        &self,
        publish: &Publish,
        limits: HistoryLimits,
    ) -> Result<Position, HubError> {
        let room = publish.room.as_str();
        let mut script = self.publish_script.key(wire::meta_key(room));
        script
            .key(wire::stream_key(room))
            .arg(new_epoch())
            .arg(publish.from.as_str())
            .arg(&*publish.text)
            .arg(unix_ms())
            .arg(limits.messages)
            .arg(limits.age.as_secs().max(1))
            .arg(wire::room_channel(room))
            .arg(wire::message_tail(
                &self.node,
                publish.from.as_str(),
                &publish.text,
            ));
        let mut cmd = self.cmd.clone();
        let call = script.invoke_async::<(u64, String)>(&mut cmd);
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok((offset, epoch))) => {
                self.set_cmd_ok(true);
                counter!("tether_bus_published_total").increment(1);
                Position::parse(offset, &epoch)
            }
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::warn!("bus: publishing a message failed: {e}");
                }
                self.set_cmd_ok(false);
                counter!("tether_bus_refused_total").increment(1);
                Err(HubError::new(
                    ErrorCode::Unavailable,
                    "the cluster bus is unreachable, so the message cannot be given an offset; \
                     it was not sent: retry shortly",
                ))
            }
        }
    }

    /// `room`'s cluster-wide position and its newest kept messages (oldest first, at most the
    /// room's message limit), from Redis (the [`wire::READ`] script).
    pub async fn read_history(
        &self,
        room: &Name,
        limits: HistoryLimits,
    ) -> Result<(Position, Vec<Stored>), String> {
        let mut script = self.read_script.key(wire::meta_key(room.as_str()));
        script
            .key(wire::stream_key(room.as_str()))
            .arg(new_epoch())
            .arg(limits.messages);
        let mut cmd = self.cmd.clone();
        type Entries = Vec<(String, Vec<String>)>;
        let call = script.invoke_async::<(String, u64, Entries)>(&mut cmd);
        let (epoch, top, entries) = match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(r)) => {
                self.set_cmd_ok(true);
                r
            }
            Ok(Err(e)) => {
                self.set_cmd_ok(false);
                return Err(e.to_string());
            }
            Err(_) => {
                self.set_cmd_ok(false);
                return Err("reading history timed out".into());
            }
        };
        let position = Position::parse(top, &epoch).map_err(|e| e.message)?;
        let (now, now_ms) = (Instant::now(), unix_ms());
        let mut messages: Vec<Stored> = entries
            .into_iter()
            .rev()
            .filter_map(|(id, fields)| {
                let offset = id.split('-').next()?.parse().ok()?;
                let (mut from, mut text, mut ms) = (None, None, now_ms);
                for kv in fields.chunks(2) {
                    match (kv[0].as_str(), kv.get(1)) {
                        ("f", Some(v)) => from = wire::name(v),
                        ("t", Some(v)) => text = Some(Arc::<str>::from(v.as_str())),
                        ("ms", Some(v)) => ms = v.parse().unwrap_or(now_ms),
                        _ => {}
                    }
                }
                let age = Duration::from_millis(now_ms.saturating_sub(ms));
                Some(Stored {
                    offset,
                    from: from?,
                    text: text?,
                    at: now.checked_sub(age).unwrap_or(now),
                })
            })
            .collect();
        messages.retain(|m| m.offset <= top);
        Ok((position, messages))
    }

    /// Tells the other nodes that `client` joined or left `room` here, and keeps the room's
    /// presence hash in step.
    pub fn publish_presence(&self, room: &Name, client: &Name, joined: bool) {
        let (n, c) = (self.node.clone(), client.to_string());
        let event = if joined {
            Event::Join { n, c }
        } else {
            Event::Leave { n, c }
        };
        self.push(queue::Op::Presence {
            room: room.to_string(),
            client: client.to_string(),
            value: joined.then(|| wire::presence_value(&self.node, Status::Connected)),
            payload: event.encode(),
        });
    }

    /// `client` is gone from this node: its name is free for the cluster.
    pub fn release(&self, client: &Name) {
        self.push(queue::Op::Release(client.to_string()));
    }

    /// `room` was removed here: it goes from the cluster's rooms, and from the nodes where it is
    /// empty.
    pub fn room_removed(&self, room: &Name) {
        let event = Event::RoomRemoved {
            n: self.node.clone(),
            r: room.to_string(),
        };
        self.push(queue::Op::RoomRemoved {
            room: room.to_string(),
            payload: event.encode(),
        });
    }

    pub(super) fn push(&self, op: queue::Op) {
        let pushed = self
            .outbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
        if pushed {
            self.outbox_wake.notify_one();
        }
    }

    // ---- the checks a client waits for ----

    /// Claims `client` for this node: refused (as a local duplicate is) when another node holds
    /// the name, and while Redis cannot be asked.
    pub async fn claim(&self, client: &Name) -> Result<(), HubError> {
        let mut cmd = self.cmd.clone();
        let mut eval = redis::cmd("EVAL");
        eval.arg(CLAIM)
            .arg(1)
            .arg(wire::client_key(client.as_str()))
            .arg(&self.node)
            .arg(self.config.ttl_secs());
        let call = eval.query_async::<i64>(&mut cmd);
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(1)) => {
                self.set_cmd_ok(true);
                Ok(())
            }
            Ok(Ok(_)) => Err(HubError::new(
                ErrorCode::NameTaken,
                format!("client name '{client}' is in use by another connection"),
            )),
            Ok(Err(e)) => {
                tracing::warn!("bus: claiming a client name failed: {e}");
                self.set_cmd_ok(false);
                Err(unavailable("a client name"))
            }
            Err(_) => {
                self.set_cmd_ok(false);
                Err(unavailable("a client name"))
            }
        }
    }

    /// Adds `room` to the cluster's rooms: refused when a node created it already.
    pub async fn create_room(&self, room: &Name) -> Result<(), HubError> {
        let mut cmd = self.cmd.clone();
        let event = Event::RoomCreated {
            n: self.node.clone(),
            r: room.to_string(),
        };
        let mut pipe = redis::pipe();
        pipe.sadd(wire::ROOMS, room.as_str())
            .publish(wire::CONTROL, event.encode())
            .ignore();
        let call = pipe.query_async::<(i64,)>(&mut cmd);
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok((1,))) => {
                self.set_cmd_ok(true);
                Ok(())
            }
            Ok(Ok(_)) => Err(HubError::new(
                ErrorCode::RoomExists,
                format!("room '{room}' already exists"),
            )),
            Ok(Err(e)) => {
                tracing::warn!("bus: creating a room failed: {e}");
                self.set_cmd_ok(false);
                Err(unavailable("a new room"))
            }
            Err(_) => {
                self.set_cmd_ok(false);
                Err(unavailable("a new room"))
            }
        }
    }

    /// Makes sure this node listens to `room`'s channel before a member joins it here, so that
    /// the member misses nothing published after its join reply. Waits at most
    /// [`LISTEN_TIMEOUT`], and not at all while the pub/sub connection is down (it subscribes
    /// again when it is back).
    pub async fn listen(&self, room: &Name) {
        {
            let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
            subs.wanted
                .insert(room.to_string(), Some(Instant::now() + LISTEN_PIN));
            if subs.active.contains(room.as_str()) {
                return;
            }
        }
        self.subs_wake.notify_one();
        if !self.pubsub_up() {
            return;
        }
        let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
        loop {
            let done = self.subs_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.is_listening(room.as_str()) {
                return;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                tracing::debug!("bus: not subscribed to room {room} in time");
                return;
            }
        }
    }

    fn is_listening(&self, room: &str) -> bool {
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .active
            .contains(room)
    }

    /// Sets the rooms with local members: the node listens to those (and to the ones joins
    /// pinned recently), and stops listening to the others.
    pub(super) fn want(&self, rooms: HashSet<String>) {
        let now = Instant::now();
        let changed = {
            let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
            subs.wanted
                .retain(|r, pin| rooms.contains(r) || pin.is_some_and(|until| until > now));
            for r in rooms {
                subs.wanted.insert(r, None);
            }
            subs.wanted.len() != subs.active.len()
                || subs.wanted.keys().any(|r| !subs.active.contains(r))
        };
        if changed {
            self.subs_wake.notify_one();
        }
    }
}

/// A fresh epoch for a room Redis has none for: 8 random lowercase letters, so that a room
/// whose position Redis lost never reuses an epoch (and so its offsets).
fn new_epoch() -> String {
    let mut raw = [0u8; 8];
    if getrandom::fill(&mut raw).is_err() {
        // No randomness: the clock still differs from any earlier epoch's.
        raw = unix_ms().to_le_bytes();
    }
    raw.iter().map(|b| char::from(b'a' + b % 26)).collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unavailable(what: &str) -> HubError {
    HubError::new(
        ErrorCode::Unavailable,
        format!("the cluster bus is unreachable, so {what} cannot be checked; retry shortly"),
    )
}
