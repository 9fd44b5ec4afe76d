//! The hub: every room, client and membership, as a sans-IO state machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::command::{Command, ListType, Register};
use crate::error::{ErrorCode, HubError};
use crate::event::{MemberInfo, Push, Reply, RoomInfo};
use crate::history::{Epochs, HistoryPolicy, Position, Recovery, Ring, Stored};
use crate::name::{Name, main_room};
use crate::presence::{Gather, Next};
use crate::status::Status;

// Inputs from the other nodes of a cluster; a child module so it reaches the rooms directly.
#[path = "remote.rs"]
mod remote;

/// Most members a join reply or a presence push lists; `count` gives the total. Large rooms
/// would otherwise cost every joiner a member list the size of the room (Pusher caps presence
/// channels at 100 members for the same reason); `LIST` gives the full list on demand.
pub const PRESENCE_LIMIT: usize = 100;

/// The `since` of a quiet membership (joined with `presence: false`): past every presence event,
/// so [`Output::batch_share`] gives it none of any batch.
pub const QUIET_SINCE: u64 = u64::MAX;

/// Identifies one connection (a socket or a REST registration) for the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Which door a connection came through; only used for listing and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Door {
    /// The TCP line protocol.
    Tcp,
    /// WebSocket JSON.
    Ws,
    /// A REST registration.
    Rest,
}

impl Door {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Tcp => "tcp",
            Door::Ws => "ws",
            Door::Rest => "rest",
        }
    }
}

/// The limits the hub enforces exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Registered clients at most.
    pub max_clients: usize,
    /// Characters per message text at most.
    pub max_message_length: usize,
    /// Rooms at most, `main` included.
    pub max_rooms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 100,
            max_message_length: 255,
            max_rooms: 1000,
        }
    }
}

/// Why a connection went away; decides the status it passes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed or quit.
    Closed,
    /// The connection failed: its queue overflowed or its socket errored.
    Failed,
}

/// What the adapter must do next, drained with [`Hub::poll_output`].
///
/// Room-wide deliveries name the room, not the recipients: an adapter keeps each room's members
/// from [`Output::Joined`] and [`Output::Left`] (in output order) and can hand one message to all
/// of them at once (the server appends it to a shared per-room log that every member's writer
/// reads), instead of one queue operation per member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Hand `push` to each connection in `to` (a joiner's member list, a direct message, `bye`).
    Deliver {
        /// Recipients.
        to: Vec<ConnId>,
        /// What they receive.
        push: Push,
    },
    /// `conn` is a member of `room` from here on: it gets the room's [`Output::Broadcast`]s, and
    /// the events of its [`Output::DeliverBatch`]es numbered `since` and later.
    Joined {
        /// The new member's connection.
        conn: ConnId,
        /// The room.
        room: Name,
        /// Number of the first presence event of the room it sees ([`QUIET_SINCE`]: none).
        since: u64,
    },
    /// `conn` is no longer a member of `room`: nothing of the room reaches it from here on.
    Left {
        /// The former member's connection.
        conn: ConnId,
        /// The room.
        room: Name,
    },
    /// Hand `push` (a room message) to every member of `room` except those in `skip` (the
    /// sender, and members whose status does not receive). Emitted for every room message, in
    /// offset order, even when nobody receives it, so that an adapter can persist the room's
    /// history from these alone.
    Broadcast {
        /// The room.
        room: Name,
        /// What the members receive.
        push: Push,
        /// Members that do not get it, in no particular order.
        skip: Vec<ConnId>,
    },
    /// Hand each member of `room` the presence events (`Join` / `Leave`, in order) of `pushes`
    /// numbered from its own `since` on (the first event is number `first`): a member that joined
    /// while the batch gathered gets only the events after its own join, and a member whose
    /// `since` is past the last event gets nothing. One batch per room per tick (see
    /// [`crate::presence_tick`]).
    DeliverBatch {
        /// The room.
        room: Name,
        /// Number of the first event of `pushes`.
        first: u64,
        /// The events, oldest first.
        pushes: Vec<Push>,
        /// The room's member count once these events happened (what every recipient's view of
        /// the room adds up to after the batch).
        count: usize,
    },
    /// Close this connection once what is queued for it is written.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// `room` was created (NEW) with this epoch, at offset 0: for adapters that persist rooms.
    RoomCreated {
        /// The room.
        room: Name,
        /// Its epoch.
        epoch: Arc<str>,
    },
    /// `room` was removed with its history ([`Hub::delete_room`]).
    RoomDeleted {
        /// The room.
        room: Name,
    },
}

impl Output {
    /// Where a member whose presence events start at `since` begins in a batch whose first
    /// event is number `first` and that holds `len` events; `None` when it gets none of them.
    pub fn batch_share(since: u64, first: u64, len: usize) -> Option<usize> {
        let from = usize::try_from(since.saturating_sub(first)).unwrap_or(usize::MAX);
        (from < len).then_some(from)
    }
}

struct Conn {
    door: Door,
    client: Option<Name>,
    state: Status,
}

struct Member {
    conn: ConnId,
    status: Status,
    /// What RESUME restores.
    resume_to: Status,
    /// Number of the first presence event of the room this membership sees ([`QUIET_SINCE`]
    /// for a quiet one).
    since: u64,
}

struct Room {
    members: BTreeMap<Name, Member>,
    /// Members that receive presence events: while there are none, joins and leaves are not
    /// even gathered.
    listeners: usize,
    /// Join and leave events not handed out yet.
    presence: Gather,
    /// Epoch, top offset and the kept messages.
    history: Ring,
}

struct Client {
    conn: ConnId,
    rooms: BTreeSet<Name>,
}

/// All rooms, clients and memberships. Commands go in with `handle_*`, deliveries come out
/// of `poll_output`; the hub never touches a socket.
pub struct Hub {
    limits: Limits,
    next_conn: u64,
    conns: HashMap<ConnId, Conn>,
    clients: HashMap<Name, Client>,
    rooms: BTreeMap<Name, Room>,
    /// Rooms whose presence batch waits for its tick, by deadline.
    due: BTreeSet<(Instant, Name)>,
    out: VecDeque<Output>,
    /// How much history each room keeps.
    policy: HistoryPolicy,
    /// Where new rooms' epochs come from.
    epochs: Epochs,
}

impl Hub {
    /// A hub with only the room `main`.
    ///
    /// History follows [`HistoryPolicy::default`]; epochs come from a seed random per process
    /// (so a restarted server without storage never reuses one): see [`Hub::with_history`].
    pub fn new(limits: Limits) -> Hub {
        Hub::with_history(limits, HistoryPolicy::default(), Epochs::random_seed())
    }

    /// A hub with only the room `main`, keeping history per `policy`, whose new rooms' epochs
    /// derive from `epoch_seed` (tests pass a fixed one; the server a random one).
    pub fn with_history(limits: Limits, policy: HistoryPolicy, epoch_seed: u64) -> Hub {
        let mut hub = Hub {
            limits,
            next_conn: 1,
            conns: HashMap::new(),
            clients: HashMap::new(),
            rooms: BTreeMap::new(),
            due: BTreeSet::new(),
            out: VecDeque::new(),
            policy,
            epochs: Epochs::new(epoch_seed),
        };
        let main = hub.new_room(&main_room());
        hub.rooms.insert(main_room(), main);
        hub
    }

    fn new_room(&mut self, name: &Name) -> Room {
        Room {
            members: BTreeMap::new(),
            listeners: 0,
            presence: Gather::default(),
            history: Ring::new(self.epochs.next(), self.policy.limits_for(name.as_str())),
        }
    }

    /// Puts back a room read from storage before any connection: its epoch, top offset and the
    /// kept messages (oldest first), which the room's limits trim again at `now`. A room that
    /// exists (`main`) takes the stored history; a new one counts against `max_rooms`.
    pub fn restore_room(
        &mut self,
        room: Name,
        position: Position,
        messages: Vec<Stored>,
        now: Instant,
    ) -> Result<(), HubError> {
        if !self.rooms.contains_key(&room) {
            if self.rooms.len() >= self.limits.max_rooms {
                return Err(HubError::new(
                    ErrorCode::TooManyRooms,
                    format!(
                        "cannot restore room '{room}': the server holds its maximum of {} rooms",
                        self.limits.max_rooms
                    ),
                ));
            }
            let r = self.new_room(&room);
            self.rooms.insert(room.clone(), r);
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            r.history
                .restore(position.epoch, position.offset, messages, now);
        }
        Ok(())
    }

    /// A fresh epoch for a room whose stored history cannot be proven complete (the server
    /// stopped before writing all of it): positions in the old epoch resync; offsets go on.
    pub fn new_epoch(&mut self, room: &str) -> Option<Position> {
        let epoch = self.epochs.next();
        let r = self.rooms.get_mut(room)?;
        r.history.set_epoch(epoch);
        Some(r.history.position())
    }

    /// A room's position: the offset of its last message and its epoch.
    pub fn position(&self, room: &str) -> Option<Position> {
        self.rooms.get(room).map(|r| r.history.position())
    }

    /// A room's kept messages at `now`: after `since` when given (all of them, or
    /// [`Recovery::Resync`] when part of the gap is gone), at most `limit` (the oldest first
    /// after a position, else the newest). Also the room's position.
    pub fn history(
        &self,
        room: &str,
        since: Option<&Position>,
        limit: usize,
        now: Instant,
    ) -> Result<(Position, Recovery), HubError> {
        let Some(r) = self.rooms.get(room) else {
            return Err(no_such_room(room));
        };
        let page = match since {
            Some(since) => match r.history.recover(since, now) {
                Recovery::Recovered(mut v) => {
                    v.truncate(limit);
                    Recovery::Recovered(v)
                }
                Recovery::Resync => Recovery::Resync,
            },
            None => {
                let mut v: Vec<Stored> = r.history.window(now).rev().take(limit).cloned().collect();
                v.reverse();
                Recovery::Recovered(v)
            }
        };
        Ok((r.history.position(), page))
    }

    // ---- getters ----

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Registered clients on all doors.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Open connections, registered or not.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Rooms, `main` included.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The connection a client name is bound to.
    pub fn conn_of(&self, client: &str) -> Option<ConnId> {
        self.clients.get(client).map(|c| c.conn)
    }

    /// The client name a connection is bound to.
    pub fn client_of(&self, conn: ConnId) -> Option<&Name> {
        self.conns.get(&conn).and_then(|c| c.client.as_ref())
    }

    /// The door of a connection.
    pub fn door_of(&self, conn: ConnId) -> Option<Door> {
        self.conns.get(&conn).map(|c| c.door)
    }

    /// The connection-wide status: NEW before registration, CLOSING after QUIT, CONNECTED otherwise.
    pub fn conn_status(&self, conn: ConnId) -> Status {
        self.conns.get(&conn).map_or(Status::Closed, |c| c.state)
    }

    /// The status of one membership.
    pub fn member_status(&self, room: &str, client: &str) -> Option<Status> {
        self.rooms
            .get(room)
            .and_then(|r| r.members.get(client))
            .map(|m| m.status)
    }

    /// Every room with all its members, for status pages.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        self.rooms
            .iter()
            .map(|(name, room)| room_info(name, room, true))
            .collect()
    }

    // ---- connections ----

    /// A socket opened on `door`: a new connection in status NEW, whose id the hub picks.
    pub fn handle_connect(&mut self, door: Door) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                door,
                client: None,
                state: Status::New,
            },
        );
        id
    }

    /// The connection is gone: its client leaves every room (members get `Leave`) and its name is
    /// freed. Idempotent.
    pub fn handle_close(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        c.state = match reason {
            CloseReason::Closed => Status::Closing,
            CloseReason::Failed => Status::Error,
        };
        if let Some(name) = c.client.take() {
            self.unregister(&name, now);
        }
    }

    /// Tells every connection the server is going away and asks the adapter to close them all
    /// (after the presence batches still gathering).
    pub fn handle_shutdown(&mut self, reason: &str, now: Instant) {
        let gathering: Vec<Name> = self.due.iter().map(|(_, room)| room.clone()).collect();
        for room in &gathering {
            self.flush_presence(room, now);
        }
        let mut to: Vec<ConnId> = self.conns.keys().copied().collect();
        to.sort();
        for c in self.conns.values_mut() {
            c.state = Status::Closing;
        }
        let closes: Vec<Output> = to.iter().map(|&conn| Output::Close { conn }).collect();
        self.out.push_back(Output::Deliver {
            to,
            push: Push::Bye {
                reason: Arc::from(reason),
            },
        });
        self.out.extend(closes);
    }

    /// The next thing the adapter must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Hub::handle_timeout`] must next be called: the earliest presence batch waiting
    /// for its tick. `None` while nothing waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Time passed: hands out every presence batch due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, room)) = self.due.first().cloned() {
            if at > now {
                break;
            }
            self.flush_presence(&room, now);
        }
    }

    // ---- commands ----

    /// Runs one command for `conn` at `now`. Pushes it causes are queued for
    /// [`Hub::poll_output`]; presence events may wait for their room's tick
    /// ([`Hub::poll_timeout`]).
    pub fn handle_command(
        &mut self,
        conn: ConnId,
        cmd: Command,
        now: Instant,
    ) -> Result<Reply, HubError> {
        if !self.conns.contains_key(&conn) {
            return Err(HubError::new(
                ErrorCode::NotRegistered,
                "connection is closed",
            ));
        }
        match cmd {
            Command::Register {
                kind,
                room,
                client,
                presence,
                since,
                offsets,
            } => self.register(
                conn,
                Join {
                    kind,
                    room,
                    client,
                    since,
                    offsets,
                    presence,
                },
                now,
            ),
            Command::Send { room, client, text } => self.send(conn, room, client, text, now),
            Command::To {
                room,
                client,
                target,
                text,
            } => self.direct(conn, room, client, target, text, now),
            Command::List { kind, arg } => self.list(kind, arg),
            Command::Pause { room, client } => self.pause(conn, room, client, true),
            Command::Resume { room, client } => self.pause(conn, room, client, false),
            Command::Leave { room, client } => self.leave(conn, room, client, now),
            Command::Quit { client } => self.quit(conn, client, now),
        }
    }

    /// Removes an empty room other than `main`.
    pub fn delete_room(&mut self, room: &str) -> Result<(), HubError> {
        if room == "main" {
            return Err(HubError::new(
                ErrorCode::MainRoom,
                "the main room cannot be removed",
            ));
        }
        let Some(r) = self.rooms.get(room) else {
            return Err(no_such_room(room));
        };
        if !r.members.is_empty() {
            return Err(HubError::new(
                ErrorCode::RoomNotEmpty,
                format!("room '{room}' still has {} members", r.members.len()),
            ));
        }
        if let Some((name, r)) = self.rooms.remove_entry(room) {
            if let Some(at) = r.presence.due() {
                self.due.remove(&(at, name.clone()));
            }
            self.out.push_back(Output::RoomDeleted { room: name });
        }
        Ok(())
    }

    /// Every join (HELLO, NEW, JOIN, on any door) goes through here.
    fn register(&mut self, conn: ConnId, join: Join, now: Instant) -> Result<Reply, HubError> {
        let Join {
            kind,
            room,
            client,
            since: recover_from,
            offsets,
            presence,
        } = join;
        let offsets = offsets || recover_from.is_some();
        let bound = self.conns.get(&conn).and_then(|c| c.client.clone());
        let name = match (&bound, client) {
            (Some(b), Some(given)) if *b != given => return Err(identity(b, &given)),
            (Some(b), _) => b.clone(),
            (None, Some(given)) => given,
            (None, None) => {
                return Err(HubError::new(
                    ErrorCode::BadSyntax,
                    format!("{} needs a client name", kind.word()),
                ));
            }
        };
        // Room checks first: they have no side effects.
        match kind {
            Register::New => {
                if room.as_str() == "main" {
                    return Err(HubError::new(
                        ErrorCode::MainRoom,
                        "the main room cannot be created: it always exists",
                    ));
                }
                if self.rooms.contains_key(&room) {
                    return Err(HubError::new(
                        ErrorCode::RoomExists,
                        format!("room '{room}' already exists"),
                    ));
                }
                if self.rooms.len() >= self.limits.max_rooms {
                    return Err(HubError::new(
                        ErrorCode::TooManyRooms,
                        format!(
                            "the server holds its maximum of {} rooms",
                            self.limits.max_rooms
                        ),
                    ));
                }
            }
            Register::Hello | Register::Join => {
                let Some(r) = self.rooms.get(&room) else {
                    return Err(no_such_room(&room));
                };
                if bound.is_some() && r.members.contains_key(&name) {
                    if kind == Register::Join || recover_from.is_some() {
                        return Err(HubError::new(
                            ErrorCode::AlreadyJoined,
                            format!(
                                "{name} is already in room '{room}'{}",
                                if recover_from.is_some() {
                                    ": SINCE recovers a new membership only"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                    return Ok(Reply::Registered {
                        kind,
                        room,
                        client: name,
                        members: member_sample(r),
                        count: r.members.len(),
                        position: r.history.position(),
                        recovered: None,
                        offsets,
                    });
                }
            }
        }
        if bound.is_none() {
            if self.clients.contains_key(&name) {
                return Err(HubError::new(
                    ErrorCode::NameTaken,
                    format!("client name '{name}' is in use by another connection"),
                ));
            }
            if self.clients.len() >= self.limits.max_clients {
                self.out.push_back(Output::Close { conn });
                return Err(HubError::new(
                    ErrorCode::ServerFull,
                    format!(
                        "the server has its maximum of {} clients; the connection will be closed",
                        self.limits.max_clients
                    ),
                ));
            }
            self.clients.insert(
                name.clone(),
                Client {
                    conn,
                    rooms: BTreeSet::new(),
                },
            );
            if let Some(c) = self.conns.get_mut(&conn) {
                c.client = Some(name.clone());
                c.state = Status::Connected;
            }
        }
        if !self.rooms.contains_key(&room) {
            let r = self.new_room(&room);
            self.out.push_back(Output::RoomCreated {
                room: room.clone(),
                epoch: r.history.epoch().clone(),
            });
            self.rooms.insert(room.clone(), r);
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return Err(no_such_room(&room));
        };
        // The others learn of the join in the room's next presence batch (if any of them wants
        // events); the joiner's own membership sees only the events after it (the member list
        // covers the rest), or none at all when it is quiet.
        let next = (r.listeners > 0).then(|| {
            r.presence.record(
                Push::Join {
                    room: room.clone(),
                    client: name.clone(),
                },
                now,
                r.members.len() + 1,
            )
        });
        let since = if presence {
            r.listeners += 1;
            r.presence.next_number()
        } else {
            QUIET_SINCE
        };
        r.members.insert(
            name.clone(),
            Member {
                conn,
                status: Status::Connected,
                resume_to: Status::Connected,
                since,
            },
        );
        self.out.push_back(Output::Joined {
            conn,
            room: room.clone(),
            since,
        });
        // A quiet member gets the count only: a member list it is not told the changes of would
        // be stale at once, and costs every join up to PRESENCE_LIMIT names.
        let count = r.members.len();
        let members = if presence {
            member_sample(r)
        } else {
            Vec::new()
        };
        if let Some(c) = self.clients.get_mut(&name) {
            c.rooms.insert(room.clone());
        }
        if presence {
            self.out.push_back(Output::Deliver {
                to: vec![conn],
                push: Push::Presence {
                    room: room.clone(),
                    members: members.clone(),
                    count,
                },
            });
        }
        // What the member missed comes before any later message: both are queued under the
        // same input, so nothing is lost or repeated between them.
        let position = r.history.position();
        let recovered = recover_from.map(|from| match r.history.recover(&from, now) {
            Recovery::Recovered(missed) => {
                for m in missed {
                    self.out.push_back(Output::Deliver {
                        to: vec![conn],
                        push: Push::Message {
                            room: room.clone(),
                            from: m.from,
                            text: m.text,
                            offset: m.offset,
                            epoch: position.epoch.clone(),
                        },
                    });
                }
                true
            }
            Recovery::Resync => false,
        });
        if let Some(next) = next {
            self.schedule_presence(&room, next, now);
        }
        Ok(Reply::Registered {
            kind,
            room,
            client: name,
            members,
            count,
            position,
            recovered,
            offsets,
        })
    }

    fn send(
        &mut self,
        conn: ConnId,
        room: Name,
        client: Option<Name>,
        text: String,
        now: Instant,
    ) -> Result<Reply, HubError> {
        let publish = self.prepare_send(conn, room, client, text, now)?;
        // A single node assigns the offset itself; a cluster bus assigns it instead (see
        // `prepare_send`) and hands the message to `commit` on every node.
        let Some(r) = self.rooms.get(&publish.room) else {
            return Err(no_such_room(&publish.room));
        };
        let top = r.history.position();
        let position = Position {
            offset: top.offset + 1,
            epoch: top.epoch,
        };
        self.commit(
            &publish.room,
            position.clone(),
            publish.from.clone(),
            publish.text.clone(),
            now,
        );
        Ok(publish.sent(position))
    }

    /// The checks and effects of a `SEND` short of delivering it: the sender must be a member,
    /// the text valid; the membership becomes ACTIVE. Every room message passes here, on a single
    /// node ([`Hub::handle_command`]) or in a cluster, whose adapter then has the message
    /// positioned cluster-wide and hands it back through [`Hub::handle_remote_message`] on every
    /// node, its own included ([`Publish::sent`] makes the sender's reply).
    pub fn prepare_send(
        &mut self,
        conn: ConnId,
        room: Name,
        client: Option<Name>,
        text: String,
        now: Instant,
    ) -> Result<Publish, HubError> {
        let name = self.acting_client(conn, client)?;
        let text = self.check_text(text)?;
        self.member_room(&room, &name)?;
        // Members see the joins and leaves that came before the message first.
        self.flush_presence(&room, now);
        let r = self.member_room(&room, &name)?;
        if let Some(m) = r.members.get_mut(&name) {
            m.status = Status::Active;
            m.resume_to = Status::Active;
        }
        let delivered = r
            .members
            .iter()
            .filter(|(n, m)| **n != name && m.status.receives())
            .count();
        Ok(Publish {
            room,
            from: name,
            text,
            delivered,
        })
    }

    /// Tells every member of `room` here to resync (its history was lost in part), going on from
    /// `position`.
    fn tell_resync(&mut self, room: &Name, position: Position) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let to: Vec<ConnId> = r.members.values().map(|m| m.conn).collect();
        if !to.is_empty() {
            self.out.push_back(Output::Deliver {
                to,
                push: Push::Resync {
                    room: room.clone(),
                    position,
                },
            });
        }
    }

    /// The one step every room message goes through once it has its position: the room's
    /// gathered presence events go out first, then the message is kept in the room's history and
    /// handed to every member that receives, but its sender (`from`, when a member here). A
    /// message at or below the room's top (a late duplicate) is dropped (false); one past a gap,
    /// or in another epoch, restarts the history from there (see `Ring::append`). A cluster bus
    /// feeds it the messages it assigned offsets to, local ones included.
    pub(crate) fn commit(
        &mut self,
        room: &Name,
        position: Position,
        from: Name,
        text: Arc<str>,
        now: Instant,
    ) -> bool {
        self.flush_presence(room, now);
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let skip: Vec<ConnId> = r
            .members
            .iter()
            .filter(|(n, m)| **n == from || !m.status.receives())
            .map(|(_, m)| m.conn)
            .collect();
        let top = r.history.position();
        let stored = Stored {
            offset: position.offset,
            from: from.clone(),
            text: text.clone(),
            at: now,
        };
        if !r.history.append(&position.epoch, stored, now) {
            return false;
        }
        // Past a gap, or in another epoch: the members here missed messages nobody can give
        // them any more (a cluster's bus fills the gaps it can before this).
        if top.epoch != position.epoch || position.offset > top.offset + 1 {
            let at = Position {
                offset: position.offset.saturating_sub(1),
                epoch: position.epoch.clone(),
            };
            self.tell_resync(room, at);
        }
        self.out.push_back(Output::Broadcast {
            room: room.clone(),
            push: Push::Message {
                room: room.clone(),
                from,
                text,
                offset: position.offset,
                epoch: position.epoch,
            },
            skip,
        });
        true
    }

    fn direct(
        &mut self,
        conn: ConnId,
        room: Name,
        client: Option<Name>,
        target: Name,
        text: String,
        now: Instant,
    ) -> Result<Reply, HubError> {
        let name = self.acting_client(conn, client)?;
        let text = self.check_text(text)?;
        self.member_room(&room, &name)?;
        // The target sees the joins and leaves that came before the message first.
        self.flush_presence(&room, now);
        let r = self.member_room(&room, &name)?;
        let Some(t) = r.members.get(&target) else {
            return Err(HubError::new(
                ErrorCode::NoSuchClient,
                format!("client '{target}' is not in room '{room}'"),
            ));
        };
        let (target_conn, receives) = (t.conn, t.status.receives());
        if let Some(m) = r.members.get_mut(&name) {
            m.status = Status::Active;
            m.resume_to = Status::Active;
        }
        if receives {
            self.out.push_back(Output::Deliver {
                to: vec![target_conn],
                push: Push::Direct {
                    room: room.clone(),
                    from: name,
                    to: target.clone(),
                    text,
                },
            });
        }
        Ok(Reply::Direct {
            room,
            target,
            delivered: usize::from(receives),
        })
    }

    /// A listing, as LIST answers it.
    pub fn list(&self, kind: ListType, arg: Option<Name>) -> Result<Reply, HubError> {
        let rooms = match kind {
            ListType::ChatRooms => self
                .rooms
                .iter()
                .map(|(n, r)| room_info(n, r, false))
                .collect(),
            ListType::All | ListType::ChatRoomAndClients => self.rooms(),
            ListType::ClientChatRooms => {
                let client = need_arg(kind, arg)?;
                let Some(c) = self.clients.get(&client) else {
                    return Err(no_such_client(&client));
                };
                c.rooms
                    .iter()
                    .filter_map(|room| {
                        let r = self.rooms.get(room)?;
                        let m = r.members.get(&client)?;
                        Some(RoomInfo {
                            name: room.clone(),
                            count: r.members.len(),
                            members: vec![MemberInfo {
                                client: client.clone(),
                                status: m.status,
                            }],
                        })
                    })
                    .collect()
            }
            ListType::ClientsForChatRoom => {
                let room = need_arg(kind, arg)?;
                let Some(r) = self.rooms.get(&room) else {
                    return Err(no_such_room(&room));
                };
                vec![room_info(&room, r, true)]
            }
        };
        Ok(Reply::List { kind, rooms })
    }

    fn pause(
        &mut self,
        conn: ConnId,
        room: Option<Name>,
        client: Option<Name>,
        suspend: bool,
    ) -> Result<Reply, HubError> {
        let name = self.acting_client(conn, client)?;
        let rooms: Vec<Name> = match room {
            Some(room) => {
                self.member_room(&room, &name)?;
                vec![room]
            }
            None => self
                .clients
                .get(&name)
                .map(|c| c.rooms.iter().cloned().collect())
                .unwrap_or_default(),
        };
        for room in &rooms {
            if let Some(m) = self
                .rooms
                .get_mut(room)
                .and_then(|r| r.members.get_mut(&name))
            {
                if suspend {
                    if m.status != Status::Suspended {
                        m.resume_to = m.status;
                        m.status = Status::Suspended;
                    }
                } else if m.status == Status::Suspended {
                    m.status = m.resume_to;
                }
            }
        }
        Ok(if suspend {
            Reply::Paused {
                client: name,
                rooms,
            }
        } else {
            Reply::Resumed {
                client: name,
                rooms,
            }
        })
    }

    fn leave(
        &mut self,
        conn: ConnId,
        room: Name,
        client: Option<Name>,
        now: Instant,
    ) -> Result<Reply, HubError> {
        let name = self.acting_client(conn, client)?;
        self.member_room(&room, &name)?;
        self.remove_member(&room, &name, now);
        if let Some(c) = self.clients.get_mut(&name) {
            c.rooms.remove(&room);
        }
        Ok(Reply::Left { room, client: name })
    }

    fn quit(
        &mut self,
        conn: ConnId,
        client: Option<Name>,
        now: Instant,
    ) -> Result<Reply, HubError> {
        let bound = self.conns.get(&conn).and_then(|c| c.client.clone());
        if let (Some(b), Some(given)) = (&bound, &client)
            && b != given
        {
            return Err(identity(b, given));
        }
        if let Some(name) = bound {
            self.unregister(&name, now);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.client = None;
            c.state = Status::Closing;
        }
        self.out.push_back(Output::Close { conn });
        Ok(Reply::Bye)
    }

    // ---- helpers ----

    fn unregister(&mut self, name: &Name, now: Instant) {
        if let Some(c) = self.clients.remove(name) {
            for room in &c.rooms {
                self.remove_member(room, name, now);
            }
        }
    }

    fn remove_member(&mut self, room: &Name, name: &Name, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(m) = r.members.remove(name) else {
            return;
        };
        self.out.push_back(Output::Left {
            conn: m.conn,
            room: room.clone(),
        });
        if m.since != QUIET_SINCE {
            r.listeners -= 1;
        }
        if r.listeners == 0 {
            return;
        }
        let next = r.presence.record(
            Push::Leave {
                room: room.clone(),
                client: name.clone(),
            },
            now,
            r.members.len(),
        );
        self.schedule_presence(room, next, now);
    }

    /// Acts on what recording a presence event in `room` asked for.
    fn schedule_presence(&mut self, room: &Name, next: Next, now: Instant) {
        match next {
            Next::Now => self.flush_presence(room, now),
            Next::At(at) => {
                self.due.insert((at, room.clone()));
            }
            Next::Wait => {}
        }
    }

    /// Hands out `room`'s gathered presence events now, as one batch.
    fn flush_presence(&mut self, room: &Name, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(at) = r.presence.due() {
            self.due.remove(&(at, room.clone()));
        }
        let Some((first, pushes)) = r.presence.take(now) else {
            return;
        };
        let len = pushes.len();
        let anyone = r
            .members
            .values()
            .any(|m| Output::batch_share(m.since, first, len).is_some());
        if anyone {
            let count = r.members.len();
            self.out.push_back(Output::DeliverBatch {
                room: room.clone(),
                first,
                pushes,
                count,
            });
        }
    }

    /// The client a non-registering command acts as.
    fn acting_client(&self, conn: ConnId, client: Option<Name>) -> Result<Name, HubError> {
        match (self.client_of(conn), client) {
            (Some(b), Some(given)) if *b != given => Err(identity(b, &given)),
            (Some(b), _) => Ok(b.clone()),
            (None, Some(given)) => Err(HubError::new(
                ErrorCode::NotRegistered,
                format!("{given} has not registered: say HELLO or JOIN first"),
            )),
            (None, None) => Err(HubError::new(
                ErrorCode::NotRegistered,
                "not registered: say HELLO or JOIN first",
            )),
        }
    }

    fn member_room(&mut self, room: &Name, name: &Name) -> Result<&mut Room, HubError> {
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(no_such_room(room));
        };
        if !r.members.contains_key(name) {
            return Err(HubError::new(
                ErrorCode::NotRegistered,
                format!("{name} is not in room '{room}': say HELLO or JOIN first"),
            ));
        }
        Ok(r)
    }

    fn check_text(&self, text: String) -> Result<Arc<str>, HubError> {
        if text.is_empty() {
            return Err(HubError::new(
                ErrorCode::BadSyntax,
                "the message text is empty",
            ));
        }
        let max = self.limits.max_message_length;
        // Count at most max+1 characters: enough to decide, and bounded work on huge texts.
        if text.chars().take(max + 1).count() > max {
            return Err(HubError::new(
                ErrorCode::TooLong,
                format!("message exceeds the maximum length of {max} characters"),
            ));
        }
        Ok(Arc::from(text))
    }
}

/// A room message that passed [`Hub::prepare_send`], waiting for its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The room.
    pub room: Name,
    /// The sender.
    pub from: Name,
    /// The text.
    pub text: Arc<str>,
    /// How many members here other than the sender receive it.
    pub delivered: usize,
}

impl Publish {
    /// The sender's reply once the message has its position.
    pub fn sent(self, position: Position) -> Reply {
        Reply::Sent {
            room: self.room,
            delivered: self.delivered,
            position,
        }
    }
}

/// A registering command's fields.
struct Join {
    kind: Register,
    room: Name,
    client: Option<Name>,
    since: Option<Position>,
    offsets: bool,
    /// Whether the membership receives joins and leaves (false: quiet).
    presence: bool,
}

fn room_info(name: &Name, room: &Room, with_members: bool) -> RoomInfo {
    RoomInfo {
        name: name.clone(),
        count: room.members.len(),
        members: if with_members {
            member_list(room)
        } else {
            Vec::new()
        },
    }
}

fn member_sample(room: &Room) -> Vec<MemberInfo> {
    room.members
        .iter()
        .take(PRESENCE_LIMIT)
        .map(|(n, m)| MemberInfo {
            client: n.clone(),
            status: m.status,
        })
        .collect()
}

fn member_list(room: &Room) -> Vec<MemberInfo> {
    room.members
        .iter()
        .map(|(n, m)| MemberInfo {
            client: n.clone(),
            status: m.status,
        })
        .collect()
}

fn need_arg(kind: ListType, arg: Option<Name>) -> Result<Name, HubError> {
    arg.ok_or_else(|| {
        HubError::new(
            ErrorCode::BadSyntax,
            format!(
                "LIST {} needs a {} name",
                kind.as_str(),
                if kind == ListType::ClientChatRooms {
                    "client"
                } else {
                    "room"
                }
            ),
        )
    })
}

fn identity(bound: &Name, given: &Name) -> HubError {
    HubError::new(
        ErrorCode::Identity,
        format!("this connection is registered as '{bound}', not '{given}'"),
    )
}

fn no_such_room(room: impl std::fmt::Display) -> HubError {
    HubError::new(
        ErrorCode::NoSuchRoom,
        format!("room '{room}' does not exist"),
    )
}

fn no_such_client(client: impl std::fmt::Display) -> HubError {
    HubError::new(
        ErrorCode::NoSuchClient,
        format!("client '{client}' does not exist"),
    )
}
