//! The rooms state the rooms doors (TCP, `/ws/rooms`, REST) share: the hub behind one lock, each
//! connection's outbound queue or REST mailbox, the rooms' shared logs ([`crate::fanout`]), the
//! room hooks, and the delivery loop that turns hub outputs into queued and logged pushes.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use tether_rooms::{
    CloseReason, Command, ConnId, Door, Hub, HubError, Limits, Name, Output, PRESENCE_LIMIT,
    Position, Push, Register, Reply,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::config::Config;
use crate::fanout::{ConnQueue, Fanned, Fanout, Feed, Full, Own};
use crate::hooks::Hooks;
use crate::outgoing::{EncodedBatch, EncodedPush, Outgoing};
use crate::socket::Drain;
use crate::store::{Restored, Store, StoreError};

/// Entries a REST client's mailbox keeps; older ones are dropped and counted.
pub const MAILBOX_CAPACITY: usize = 1000;

/// Bytes a room's shared log holds per item of `queue_capacity` (1 MiB for the default 1,024):
/// a member more than that behind the newest push is a slow consumer.
pub const LOG_BYTES_PER_ITEM: usize = 1024;

/// Where the hub's deliveries to one connection go.
enum Sink {
    /// A socket's writer task: its own bounded queue, beside the logs of its rooms.
    Stream {
        queue: Arc<ConnQueue>,
        /// Cancelled to end the connection at once (slow consumer) or by the writer when it ends.
        done: CancellationToken,
    },
    /// A REST client's mailbox.
    Mailbox(Mailbox),
}

/// Pushes kept for a REST client until it reads them.
pub struct Mailbox {
    /// The client's secret.
    pub token: String,
    /// Pushes not read yet.
    pub items: VecDeque<Arc<EncodedPush>>,
    /// Pushes dropped because the mailbox was full, since the last read.
    pub dropped: u64,
    /// Last REST call by this client.
    pub last_seen: Instant,
}

/// The hub and its sinks; only ever touched under the lock, never across an await.
pub struct Core {
    /// The rooms engine.
    pub hub: Hub,
    sinks: HashMap<ConnId, Sink>,
    /// The rooms' logs and the numbering that keeps each connection's items in order.
    fan: Fanout,
    /// The hub deadline the presence timer sleeps towards.
    armed: Option<Instant>,
    /// Wakes the presence timer when the hub wants the time earlier than `armed`.
    wake: Arc<Notify>,
    /// The cluster bus: what the hub does here is told to the other nodes.
    bus: Option<Arc<Bus>>,
    /// Who each member connection is, for the leaves the bus tells (with a bus only).
    names: HashMap<ConnId, Name>,
    /// Where rooms and history are written down (`--data`).
    store: Option<Store>,
}

/// Everything the rooms doors share.
pub struct RoomsState {
    core: Mutex<Core>,
    /// Settings in force.
    pub config: Config,
    /// Where the TCP listener is bound.
    pub tcp_addr: SocketAddr,
    /// Where the HTTP listener is bound.
    pub http_addr: SocketAddr,
    /// The server's drain: shutdown signal and connection tracker.
    pub drain: Drain,
    /// Room hooks (JS) that SEND and TO pass through before the hub.
    pub hooks: Hooks,
    /// Wakes [`presence_timer`] when the hub's next deadline moved earlier.
    presence_wake: Arc<Notify>,
    /// The cluster bus (`--bus`), when this node is one of several.
    pub bus: Option<Arc<Bus>>,
}

/// A command that went through the hooks and the bus: to run in the hub, or done already (a
/// SEND published through the bus: its result).
pub enum Ready {
    /// Run it in the hub.
    Run(Command),
    /// Done: the command (after its hook) and its result.
    Done(Command, Result<Reply, HubError>),
}

impl Ready {
    /// The command, as the hook left it.
    pub fn command(&self) -> &Command {
        match self {
            Ready::Run(c) | Ready::Done(c, _) => c,
        }
    }
}

impl From<Command> for Ready {
    fn from(cmd: Command) -> Ready {
        Ready::Run(cmd)
    }
}

/// The receiving end a socket adapter gets for a new connection.
pub struct StreamConn {
    /// The hub's id for it.
    pub id: ConnId,
    /// What its writer writes: its own queue and its rooms' logs, in order.
    pub feed: Feed,
    /// Cancelled when the connection must end now.
    pub done: CancellationToken,
}

impl RoomsState {
    /// State for rooms doors whose listeners are bound at these addresses.
    pub fn new(
        config: Config,
        tcp_addr: SocketAddr,
        http_addr: SocketAddr,
        drain: Drain,
        bus: Option<Arc<Bus>>,
    ) -> RoomsState {
        let limits = Limits {
            max_clients: config.max_clients,
            max_message_length: config.max_message_length,
            max_rooms: config.max_rooms,
        };
        // Epochs must differ from every earlier run's: a random seed per process.
        let hub = match getrandom::u64() {
            Ok(seed) => Hub::with_history(limits, config.history.clone(), seed),
            Err(_) => Hub::new(limits),
        };
        let hooks = Hooks::new(config.hooks.clone(), config.hook_limits);
        let presence_wake = Arc::new(Notify::new());
        RoomsState {
            hooks,
            core: Mutex::new(Core {
                hub,
                sinks: HashMap::new(),
                fan: Fanout::new(
                    config.queue_capacity.saturating_mul(LOG_BYTES_PER_ITEM),
                    config.queue_capacity,
                ),
                armed: None,
                wake: presence_wake.clone(),
                bus: bus.clone(),
                names: HashMap::new(),
                store: None,
            }),
            presence_wake,
            bus,
            config,
            tcp_addr,
            http_addr,
            drain,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave the hub half-updated in a way that matters
        // more than stopping the whole server would, so keep serving.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the rooms a store held back into the hub (new epochs if the last run did not stop
    /// in order), writes every room's position down, and keeps writing through `store`. Called
    /// before the listeners accept.
    pub fn attach_store(&self, store: Store, restored: Restored) -> Result<usize, StoreError> {
        let mut core = self.lock();
        let now = Instant::now();
        let count = restored.rooms.len();
        for room in restored.rooms {
            let stored = room.stored(now);
            core.hub
                .restore_room(room.name.clone(), room.position, stored, now)
                .map_err(|e| StoreError::Content {
                    file: std::path::PathBuf::from(crate::store::DB_FILE),
                    what: format!("{} (raise --max-rooms)", e.message),
                })?;
            if !restored.clean {
                core.hub.new_epoch(room.name.as_str());
            }
        }
        for info in core.hub.rooms() {
            if let Some(position) = core.hub.position(info.name.as_str()) {
                store.room(&info.name, &position);
            }
        }
        core.store = Some(store);
        Ok(count)
    }

    /// Writes down what the store still holds and stops it (at shutdown, after the drain).
    pub fn close_store(&self) {
        let store = self.lock().store.take();
        if let Some(store) = store {
            store.close();
        }
    }

    /// Reads the hub.
    pub fn with_hub<R>(&self, f: impl FnOnce(&Hub) -> R) -> R {
        f(&self.lock().hub)
    }

    /// Opens a socket connection with a bounded queue.
    pub fn open_stream(&self, door: Door) -> StreamConn {
        let done = CancellationToken::new();
        let mut core = self.lock();
        let id = core.hub.handle_connect(door);
        let (queue, feed) = core.fan.open(id);
        core.sinks.insert(
            id,
            Sink::Stream {
                queue,
                done: done.clone(),
            },
        );
        gauge!("tether_connections", "door" => door.as_str()).increment(1.0);
        StreamConn { id, feed, done }
    }

    /// Opens a REST client's connection with an empty mailbox.
    pub fn open_mailbox(&self, token: String) -> ConnId {
        let mut core = self.lock();
        let id = core.hub.handle_connect(Door::Rest);
        core.sinks.insert(
            id,
            Sink::Mailbox(Mailbox {
                token,
                items: VecDeque::new(),
                dropped: 0,
                last_seen: Instant::now(),
            }),
        );
        gauge!("tether_connections", "door" => "rest").increment(1.0);
        id
    }

    /// Passes a SEND or TO through its room's JS hook (rewritten, or refused with the error the
    /// sender gets); every other command, and every command when no hook is set, as it is. With
    /// a bus, a SEND is then published here (the one place a room message leaves a node: see
    /// [`RoomsState::publish`]).
    pub async fn through_hook(
        &self,
        conn: ConnId,
        cmd: Result<Command, HubError>,
    ) -> Result<Ready, HubError> {
        let cmd = cmd?;
        self.through_bus(conn, &cmd).await?;
        let cmd =
            if self.hooks.is_empty() || !matches!(cmd, Command::Send { .. } | Command::To { .. }) {
                cmd
            } else {
                let sender = self.with_hub(|h| h.client_of(conn).cloned());
                self.hooks.apply(sender, cmd).await?
            };
        self.publish(conn, cmd).await
    }

    /// With a bus, a SEND is checked by the hub ([`Hub::prepare_send`]), positioned and published
    /// by Redis ([`Bus::publish_message`]), and answered with that position; every node, this one
    /// included, delivers it when it comes back from Redis. Without a bus, or for another
    /// command, the hub runs it as it is.
    async fn publish(&self, conn: ConnId, cmd: Command) -> Result<Ready, HubError> {
        let (Some(bus), Command::Send { room, client, text }) = (&self.bus, &cmd) else {
            return Ok(Ready::Run(cmd));
        };
        let (room, client, text) = (room.clone(), client.clone(), text.clone());
        let publish = self.mutate(|core| {
            core.hub
                .prepare_send(conn, room.clone(), client, text, Instant::now())
        });
        let publish = match publish {
            Ok(p) => p,
            Err(e) => return Ok(Ready::Done(cmd, Err(e))),
        };
        let limits = self.config.history.limits_for(room.as_str());
        let result = bus
            .publish_message(&publish, limits)
            .await
            .map(|position| publish.sent(position));
        Ok(Ready::Done(cmd, result))
    }

    /// With a bus, brings `room`'s history on this node in step with Redis's (its position and
    /// newest kept messages): before a join or a REST history answers from it, after a gap in
    /// the offsets this node received, after the pub/sub connection came back. While Redis
    /// cannot be read, the node's own history answers.
    pub async fn sync_room(&self, room: &Name) {
        let Some(bus) = &self.bus else { return };
        if self.with_hub(|h| h.position(room.as_str()).is_none()) {
            // Not a room here (yet): nothing to bring in step, and nothing to create in Redis.
            return;
        }
        let limits = self.config.history.limits_for(room.as_str());
        match bus.read_history(room, limits).await {
            Ok((top, messages)) => {
                let repaired = self.mutate(|core| {
                    let before = core.hub.position(room.as_str());
                    let told = core.hub.sync_room(room, top, messages, Instant::now());
                    let after = core.hub.position(room.as_str());
                    (before, after, told)
                });
                match repaired {
                    (_, _, true) => counter!("tether_bus_resyncs_total").increment(1),
                    (Some(b), Some(a), false) if a.epoch == b.epoch && a.offset > b.offset => {
                        counter!("tether_bus_repaired_total").increment(a.offset - b.offset);
                    }
                    _ => {}
                }
            }
            Err(e) => tracing::debug!("bus: reading room {room}'s history failed: {e}"),
        }
    }

    /// With a bus, what the cluster must say before the hub runs a registering command: a new
    /// client name is claimed cluster-wide, a new room added to the cluster's rooms (either is
    /// refused as a local duplicate is), and the node listens to the room before the join.
    pub async fn through_bus(&self, conn: ConnId, cmd: &Command) -> Result<(), HubError> {
        let (
            Some(bus),
            Command::Register {
                kind, room, client, ..
            },
        ) = (&self.bus, cmd)
        else {
            return Ok(());
        };
        let unbound = self.with_hub(|h| h.client_of(conn).is_none());
        if unbound && let Some(client) = client {
            bus.claim(client).await?;
        }
        if *kind == Register::New && room.as_str() != "main" {
            let exists = self.with_hub(|h| h.room_names().any(|r| r == room));
            if !exists && let Err(e) = bus.create_room(room).await {
                self.mutate(|core| core.release_if_gone(client.as_ref()));
                return Err(e);
            }
        }
        bus.listen(room).await;
        // Listening first, then reading: a message published in between comes both ways and the
        // hub keeps it once, so the join misses nothing and repeats nothing.
        self.sync_room(room).await;
        Ok(())
    }

    /// Runs a command for a socket connection: the encoded reply is queued before any push it
    /// causes, so every connection sees its reply first.
    pub fn execute(
        &self,
        conn: ConnId,
        cmd: Result<Ready, HubError>,
        encode: impl FnOnce(&Result<Reply, HubError>) -> Outgoing,
    ) {
        let mut core = self.lock();
        let door = core.hub.door_of(conn);
        let result = cmd.and_then(|ready| match ready {
            Ready::Run(cmd) => {
                count_in(door, &cmd);
                core.command(conn, cmd)
            }
            Ready::Done(cmd, result) => {
                count_in(door, &cmd);
                result
            }
        });
        if let Err(e) = &result {
            counter!("tether_errors_total", "code" => e.code.as_str()).increment(1);
        }
        let item = encode(&result);
        core.enqueue(conn, item);
        core.flush();
    }

    /// Runs a command for a REST client and hands the result back instead of queueing it.
    pub fn execute_rest(&self, conn: ConnId, cmd: impl Into<Ready>) -> Result<Reply, HubError> {
        let mut core = self.lock();
        let result = match cmd.into() {
            Ready::Run(cmd) => {
                count_in(Some(Door::Rest), &cmd);
                core.command(conn, cmd)
            }
            Ready::Done(cmd, result) => {
                count_in(Some(Door::Rest), &cmd);
                result
            }
        };
        if let Err(e) = &result {
            counter!("tether_errors_total", "code" => e.code.as_str()).increment(1);
        }
        core.flush();
        result
    }

    /// Runs something against the hub that may cause deliveries, then delivers them.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let mut core = self.lock();
        let r = f(&mut core);
        core.flush();
        r
    }

    /// Asks a socket connection to close once its queue is written (with this WebSocket close
    /// frame, if given).
    pub fn finish(&self, conn: ConnId, frame: Option<axum::extract::ws::CloseFrame>) {
        let mut core = self.lock();
        core.enqueue(conn, Outgoing::Close(frame.map(Box::new)));
        core.flush();
    }

    /// The connection is gone: the hub forgets it and its members get a leave.
    pub fn close(&self, conn: ConnId, reason: CloseReason) {
        let mut core = self.lock();
        core.remove(conn, reason);
        core.flush();
    }

    /// Tells every connection the server is going away and closes them.
    pub fn shutdown_all(&self) {
        self.drain.shutdown.cancel();
        let mut core = self.lock();
        core.hub
            .handle_shutdown("server shutting down", Instant::now());
        core.flush();
    }

    /// The REST client `client` if `token` is its token; refreshes its idle timer.
    pub fn authorize(&self, client: &str, token: Option<&str>) -> Result<ConnId, HubError> {
        use tether_rooms::ErrorCode;
        let mut core = self.lock();
        let Some(conn) = core.hub.conn_of(client) else {
            return Err(HubError::new(
                ErrorCode::NoSuchClient,
                format!("client '{client}' does not exist"),
            ));
        };
        match (core.sinks.get_mut(&conn), token) {
            (Some(Sink::Mailbox(m)), Some(t))
                if constant_time_eq(m.token.as_bytes(), t.as_bytes()) =>
            {
                m.last_seen = Instant::now();
                Ok(conn)
            }
            _ => Err(HubError::new(
                ErrorCode::Unauthorized,
                format!(
                    "a valid token for REST client '{client}' is required (Authorization: Bearer <token>)"
                ),
            )),
        }
    }

    /// Empties a REST client's mailbox.
    pub fn take_mailbox(&self, conn: ConnId) -> (Vec<Arc<EncodedPush>>, u64) {
        let mut core = self.lock();
        match core.sinks.get_mut(&conn) {
            Some(Sink::Mailbox(m)) => {
                let dropped = std::mem::take(&mut m.dropped);
                (m.items.drain(..).collect(), dropped)
            }
            _ => (Vec::new(), 0),
        }
    }

    /// Closes REST clients idle for longer than `ttl`.
    pub fn reap_idle(&self, ttl: Duration) -> usize {
        let mut core = self.lock();
        let now = Instant::now();
        let idle: Vec<ConnId> = core
            .sinks
            .iter()
            .filter_map(|(id, s)| match s {
                Sink::Mailbox(m) if now.duration_since(m.last_seen) > ttl => Some(*id),
                _ => None,
            })
            .collect();
        for &conn in &idle {
            core.remove(conn, CloseReason::Closed);
        }
        core.flush();
        idle.len()
    }
}

impl Mailbox {
    /// Keeps a push, dropping (and counting) the oldest when full.
    fn push(&mut self, item: Arc<EncodedPush>) {
        if self.items.len() >= MAILBOX_CAPACITY {
            self.items.pop_front();
            self.dropped += 1;
            counter!("tether_dropped_total", "reason" => "mailbox").increment(1);
        }
        self.items.push_back(item);
    }
}

/// Drives the hub's presence ticks: sleeps until [`Hub::poll_timeout`], then hands out the
/// batches due ([`Hub::handle_timeout`]); woken early when a command sets an earlier deadline.
/// Runs until shutdown (the hub hands out what still gathers with its `bye`).
pub async fn presence_timer(state: Arc<RoomsState>) {
    loop {
        let next = {
            let mut core = state.lock();
            let next = core.hub.poll_timeout();
            core.armed = next;
            next
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = state.drain.shutdown.cancelled() => break,
            _ = state.presence_wake.notified() => {}
            _ = sleep => state.mutate(|core| core.hub.handle_timeout(Instant::now())),
        }
    }
}

fn count_in(door: Option<Door>, cmd: &Command) {
    if matches!(cmd, Command::Send { .. } | Command::To { .. }) {
        let door = door.map_or("unknown", Door::as_str);
        counter!("tether_messages_in_total", "door" => door).increment(1);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Core {
    /// Runs one command in the hub; with a bus, tells the cluster what it did (a name given up) and shows the cluster's members in listings and join replies.
    fn command(&mut self, conn: ConnId, cmd: Command) -> Result<Reply, HubError> {
        let Some(bus) = self.bus.clone() else {
            return self.hub.handle_command(conn, cmd, Instant::now());
        };
        let listing = match &cmd {
            Command::List { kind, arg } => Some((*kind, arg.clone())),
            _ => None,
        };
        let named = match &cmd {
            Command::Register { client, .. } | Command::Quit { client } => client.clone(),
            _ => None,
        }
        .or_else(|| self.hub.client_of(conn).cloned());
        let new_room = match &cmd {
            Command::Register {
                kind: Register::New,
                room,
                ..
            } => Some(room.clone()),
            _ => None,
        };
        let mut result = self.hub.handle_command(conn, cmd, Instant::now());
        match &mut result {
            Ok(Reply::Bye) => self.release_if_gone(named.as_ref()),
            Ok(reply @ Reply::Registered { .. }) => {
                bus.view().merge_registered(reply, PRESENCE_LIMIT);
            }
            Err(_) => {
                self.release_if_gone(named.as_ref());
                if let Some(room) = new_room
                    && !self.hub.room_names().any(|r| *r == room)
                {
                    bus.room_removed(&room);
                }
            }
            _ => {}
        }
        if let Some((kind, arg)) = listing {
            result = bus.view().merge_list(kind, arg.as_ref(), result);
        }
        result
    }

    /// Frees `client`'s name in the cluster when no connection here holds it any more.
    fn release_if_gone(&self, client: Option<&Name>) {
        if let (Some(bus), Some(client)) = (&self.bus, client)
            && self.hub.conn_of(client.as_str()).is_none()
        {
            bus.release(client);
        }
    }

    fn enqueue(&mut self, conn: ConnId, item: Outgoing) {
        if let Some(Sink::Stream { queue, done }) = self.sinks.get(&conn)
            && self.fan.push(queue, Own::Out(item)).is_err()
        {
            // Full: this connection cannot keep up.
            done.cancel();
            counter!("tether_dropped_total", "reason" => "slow_consumer").increment(1);
            self.remove(conn, CloseReason::Failed);
        }
    }

    fn remove(&mut self, conn: ConnId, reason: CloseReason) {
        let client = self.hub.client_of(conn).cloned();
        self.remove_sink(conn, reason);
        self.hub.handle_close(conn, reason, Instant::now());
        self.release_if_gone(client.as_ref());
    }

    fn remove_sink(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(sink) = self.sinks.remove(&conn) {
            let door = self.hub.door_of(conn).map_or("unknown", Door::as_str);
            gauge!("tether_connections", "door" => door).decrement(1.0);
            if let Sink::Stream { queue, done } = sink {
                // The writer writes what came before, then its feed ends.
                let _ = self.fan.push(&queue, Own::End);
                if reason == CloseReason::Failed {
                    done.cancel();
                }
            }
        }
    }

    /// With a bus, tells the other nodes that `conn`'s client joined or left `room`.
    fn tell_presence(&mut self, conn: ConnId, room: &Name, joined: bool) {
        let Some(bus) = &self.bus else { return };
        let name = if joined {
            let Some(name) = self.hub.client_of(conn).cloned() else {
                return;
            };
            self.names.insert(conn, name.clone());
            Some(name)
        } else {
            self.names
                .get(&conn)
                .cloned()
                .or_else(|| self.hub.client_of(conn).cloned())
        };
        if let Some(name) = name {
            bus.publish_presence(room, &name, joined);
        }
    }

    /// Fails the members a room's log left behind: their writers stop at once.
    fn fail_now(&self, fanned: &Fanned, slow: &mut Vec<ConnId>) {
        for conn in &fanned.slow {
            if let Some(Sink::Stream { done, .. }) = self.sinks.get(conn) {
                done.cancel();
            }
        }
        slow.extend_from_slice(&fanned.slow);
    }

    /// Delivers everything the hub has queued: pushes for one connection go to its queue, room
    /// messages and presence batches to the room's log (and to REST members' mailboxes). A stream
    /// whose queue is full, or that fell behind its room's log, is failed on the spot: it is
    /// disconnected and its members are told, while everyone else goes on. Then the writers are
    /// woken, once per room and once per connection that got something.
    fn flush(&mut self) {
        let mut delivered: u64 = 0;
        let mut slow: Vec<ConnId> = Vec::new();
        loop {
            while let Some(out) = self.hub.poll_output() {
                match out {
                    Output::Deliver { to, push } => {
                        let enc = Arc::new(EncodedPush::new(push));
                        for conn in to {
                            match self.sinks.get_mut(&conn) {
                                Some(Sink::Stream { queue, .. }) => {
                                    match self
                                        .fan
                                        .push(queue, Own::Out(Outgoing::Push(enc.clone())))
                                    {
                                        Ok(()) => delivered += 1,
                                        Err(_) => slow.push(conn),
                                    }
                                }
                                Some(Sink::Mailbox(m)) => {
                                    m.push(enc.clone());
                                    delivered += 1;
                                }
                                None => {}
                            }
                        }
                    }
                    Output::Joined { conn, room, since } => {
                        self.tell_presence(conn, &room, true);
                        match self.sinks.get(&conn) {
                            Some(Sink::Stream { queue, .. }) => {
                                // A full queue: the connection cannot keep up.
                                let full = self.fan.join(queue, conn, &room, since).err();
                                slow.extend(full.map(|_| conn));
                            }
                            Some(Sink::Mailbox(_)) => self.fan.join_mailbox(conn, &room, since),
                            None => {}
                        }
                    }
                    Output::Left { conn, room } => {
                        self.tell_presence(conn, &room, false);
                        let queue = match self.sinks.get(&conn) {
                            Some(Sink::Stream { queue, .. }) => Some(queue),
                            _ => None,
                        };
                        self.fan.leave(queue, conn, &room);
                    }
                    Output::Broadcast { room, push, skip } => {
                        if let (
                            Some(store),
                            Push::Message {
                                from,
                                text,
                                offset,
                                epoch,
                                ..
                            },
                        ) = (&self.store, &push)
                        {
                            let position = Position {
                                offset: *offset,
                                epoch: epoch.clone(),
                            };
                            store.message(&room, position, from, text);
                        }
                        let enc = Arc::new(EncodedPush::new(push));
                        let boxes: Vec<ConnId> = self
                            .fan
                            .mailboxes(&room)
                            .map(|(c, _)| c)
                            .filter(|c| !skip.contains(c))
                            .collect();
                        for conn in boxes {
                            if let Some(Sink::Mailbox(m)) = self.sinks.get_mut(&conn) {
                                m.push(enc.clone());
                                delivered += 1;
                            }
                        }
                        let fanned = self.fan.broadcast(&room, enc, skip);
                        delivered += fanned.delivered;
                        self.fail_now(&fanned, &mut slow);
                    }
                    Output::DeliverBatch {
                        room,
                        first,
                        pushes,
                        count,
                    } => {
                        let batch = Arc::new(EncodedBatch::new(pushes, count));
                        let boxes: Vec<(ConnId, usize)> = self
                            .fan
                            .mailboxes(&room)
                            .filter_map(|(c, since)| {
                                Output::batch_share(since, first, batch.len()).map(|f| (c, f))
                            })
                            .collect();
                        for (conn, from) in boxes {
                            if let Some(Sink::Mailbox(m)) = self.sinks.get_mut(&conn) {
                                // The hub keeps `from` below the batch size, itself at most
                                // PRESENCE_BATCH_MAX.
                                let from = u32::try_from(from).unwrap_or(u32::MAX);
                                for p in batch.pushes(from) {
                                    m.push(p.clone());
                                    delivered += 1;
                                }
                            }
                        }
                        let fanned = self.fan.batch(&room, batch, first);
                        delivered += fanned.delivered;
                        self.fail_now(&fanned, &mut slow);
                    }
                    Output::Close { conn } => match self.sinks.get(&conn) {
                        Some(Sink::Stream { queue, done }) => {
                            // A full queue: end it now instead of after what is queued.
                            let full = self.fan.push(queue, Own::Out(Outgoing::Close(None)));
                            if let Err(Full) = full {
                                done.cancel();
                            }
                        }
                        Some(Sink::Mailbox(_)) => self.remove(conn, CloseReason::Closed),
                        None => {}
                    },
                    Output::RoomCreated { room, epoch } => {
                        if let Some(store) = &self.store {
                            store.room(&room, &Position { offset: 0, epoch });
                        }
                    }
                    Output::RoomDeleted { room } => {
                        if let Some(store) = &self.store {
                            store.delete(&room);
                        }
                    }
                }
            }
            if slow.is_empty() {
                break;
            }
            for conn in slow.drain(..) {
                if self.sinks.contains_key(&conn) {
                    counter!("tether_dropped_total", "reason" => "slow_consumer").increment(1);
                    self.remove(conn, CloseReason::Failed);
                }
            }
        }
        if self.bus.is_some() {
            let sinks = &self.sinks;
            self.names.retain(|conn, _| sinks.contains_key(conn));
        }
        self.fan.publish();
        if delivered > 0 {
            counter!("tether_messages_out_total").increment(delivered);
        }
        let next = self.hub.poll_timeout();
        if next.is_some_and(|t| self.armed.is_none_or(|armed| t < armed)) {
            self.armed = next;
            self.wake.notify_one();
        }
        gauge!("tether_clients").set(self.hub.client_count() as f64);
        gauge!("tether_rooms").set(self.hub.room_count() as f64);
    }
}

/// Encodes a WebSocket reply.
pub fn ws_reply(id: &serde_json::Value, result: &Result<Reply, HubError>) -> Outgoing {
    Outgoing::Text(Box::new(crate::outgoing::utf8(
        tether_rooms::json::encode_reply(id, result),
    )))
}
