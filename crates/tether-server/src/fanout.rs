//! Room fan-out without a queue operation per member: each room keeps one shared log of its
//! pushes (each encoded once per door, on first use), and every member's writer reads it with
//! its own cursor. What concerns one connection only (replies, direct messages, its member list,
//! closes, and when its memberships start and end) goes through the connection's own bounded
//! queue. Every item of either kind gets a number from one counter under the rooms lock, and a
//! writer merges its queue and its rooms' logs by that number, so each connection sees exactly the
//! order the hub produced. A flush publishes the last number it handed out, then wakes each room
//! it appended to once ([`Notify::notify_waiters`]) and each connection it queued for once.
//!
//! [`Fanout`] is the side the rooms lock guards; [`Feed`] is a writer's side. A member whose
//! cursor falls more than the log's byte bound behind the newest push is a slow consumer:
//! [`Fanout::broadcast`] and [`Fanout::batch`] name it, and the rooms state fails it as before.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tether_rooms::{ConnId, Name, Output, Push};
use tokio::sync::Notify;

use crate::outgoing::{EncodedBatch, EncodedPush, Outgoing};
use crate::socket::Queue;

/// Items a writer takes from its sources in one go (the batching loop writes at most this many
/// before it flushes anyway).
const MAX_TAKE: usize = 256;

/// A room's log is trimmed to what its slowest reader still needs after this many appends per
/// 32 readers (so a trim, one pass over the readers, costs about 32 cursor reads per append),
/// and whenever it holds more than its byte bound.
const READERS_PER_TRIM_APPEND: usize = 32;

/// Buffers of a connection beyond this many items are given back once empty (an idle
/// connection should cost little; a batch per wake-up reallocates them at most once).
const SMALL: usize = 8;

/// Bytes a push is counted for in a log, besides its text and names (the frame's JSON keys).
const PUSH_OVERHEAD: usize = 48;

/// What a connection's own queue holds, besides what it writes.
pub enum Own {
    /// Something to write (a reply, a push to this connection only, the close marker).
    Out(Outgoing),
    /// A membership starts: read this room's log from here.
    Subscribe(Reader),
    /// A membership ended: stop reading this room's log.
    Unsubscribe(Arc<RoomLog>),
    /// The hub forgot the connection: nothing after this.
    End,
}

/// A connection's own bounded queue, in the order the hub produced its items.
pub struct ConnQueue {
    items: Mutex<VecDeque<(u64, Own)>>,
    notify: Notify,
    capacity: usize,
}

/// The queue is full: the connection cannot keep up.
#[derive(Debug)]
pub struct Full;

impl ConnQueue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, Own)>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One room's shared log of pushes.
pub struct RoomLog {
    inner: RwLock<LogInner>,
    notify: Notify,
    /// Appended to since the last publish (only the rooms lock's holder uses it).
    touched: AtomicBool,
}

struct LogInner {
    /// Absolute index of `entries[0]`.
    start: u64,
    entries: VecDeque<Entry>,
    /// What the entries are counted for.
    bytes: usize,
}

struct Entry {
    seq: u64,
    bytes: usize,
    item: LogItem,
}

enum LogItem {
    /// A room message for every member but `skip`.
    Push(Arc<EncodedPush>, Box<[ConnId]>),
    /// A presence batch whose first event is number `first`; each member reads from its own
    /// first event on.
    Batch(Arc<EncodedBatch>, u64),
}

impl RoomLog {
    fn new() -> RoomLog {
        RoomLog {
            inner: RwLock::new(LogInner {
                start: 0,
                entries: VecDeque::new(),
                bytes: 0,
            }),
            notify: Notify::new(),
            touched: AtomicBool::new(false),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, LogInner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, LogInner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries and bytes held now.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.entries.len(), inner.bytes)
    }
}

impl LogInner {
    fn end(&self) -> u64 {
        self.start + self.entries.len() as u64
    }
}

/// A writer's place in one room's log.
pub struct Reader {
    log: Arc<RoomLog>,
    /// Absolute index of the next entry to read.
    cursor: u64,
    /// `cursor` as the trimming side sees it; `u64::MAX` once this reader is gone.
    shared: Arc<AtomicU64>,
    /// Number of the first presence event of the room this membership sees.
    since: u64,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.shared.store(u64::MAX, Ordering::Release);
    }
}

/// A member reading a room's log, as the trimming side keeps it.
struct Member {
    cursor: Arc<AtomicU64>,
    since: u64,
}

/// A room's readers and REST mailboxes.
struct Room {
    log: Arc<RoomLog>,
    streams: HashMap<ConnId, Member>,
    /// Former members whose writer may still read what came before their leave.
    leaving: Vec<(ConnId, Arc<AtomicU64>)>,
    /// REST members and the first presence event each sees.
    mailboxes: HashMap<ConnId, u64>,
    appends: usize,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.mailboxes.is_empty()
    }

    /// Appends an entry and trims; returns the members that fell behind the bound.
    fn append(&mut self, seq: u64, bytes: usize, item: LogItem, bound: usize) -> Vec<ConnId> {
        let mut inner = self.log.write();
        inner.entries.push_back(Entry { seq, bytes, item });
        inner.bytes += bytes;
        self.appends += 1;
        let every = (self.streams.len() + self.leaving.len()).div_ceil(READERS_PER_TRIM_APPEND);
        if inner.bytes <= bound && self.appends < every.max(1) {
            return Vec::new();
        }
        self.appends = 0;
        self.leaving
            .retain(|(_, c)| c.load(Ordering::Acquire) != u64::MAX);
        let cursors = self
            .streams
            .values()
            .map(|m| &m.cursor)
            .chain(self.leaving.iter().map(|(_, c)| c))
            .map(|c| c.load(Ordering::Acquire));
        let needed = cursors.min().unwrap_or(u64::MAX).min(inner.end());
        // Whatever every reader has passed goes; past the bound, the oldest go too (never the
        // newest entry), and the readers that still needed them are slow.
        let mut cut = needed.max(inner.start);
        let mut bytes = inner.bytes;
        for e in inner.entries.range(..(cut - inner.start) as usize) {
            bytes -= e.bytes;
        }
        while bytes > bound && cut + 1 < inner.end() {
            bytes -= inner.entries[(cut - inner.start) as usize].bytes;
            cut += 1;
        }
        let mut slow = Vec::new();
        if cut > needed {
            let readers = self.streams.iter().map(|(c, m)| (c, &m.cursor));
            let leaving = self.leaving.iter().map(|(c, cursor)| (c, cursor));
            slow.extend(
                readers
                    .chain(leaving)
                    .filter(|(_, cursor)| cursor.load(Ordering::Acquire) < cut)
                    .map(|(c, _)| *c),
            );
        }
        // Former members that were behind are failed with the others: they hold nothing back.
        self.leaving
            .retain(|(_, c)| c.load(Ordering::Acquire) >= cut);
        let drop = (cut - inner.start) as usize;
        inner.entries.drain(..drop);
        inner.start = cut;
        inner.bytes = bytes;
        slow
    }
}

/// The fan-out state the rooms lock guards: numbering, the rooms' logs and readers, and what the
/// next [`Fanout::publish`] wakes.
pub struct Fanout {
    /// The last number handed out.
    seq: u64,
    /// The last number every writer may read up to.
    published: Arc<AtomicU64>,
    rooms: HashMap<Name, Room>,
    /// Bytes a room's log holds at most (beyond its newest entry).
    bound: usize,
    capacity: usize,
    touched_rooms: Vec<Arc<RoomLog>>,
    touched_conns: Vec<Arc<ConnQueue>>,
}

/// Deliveries a fan-out operation made, and the members it found slow.
#[derive(Default)]
pub struct Fanned {
    /// Pushes handed to readers and mailboxes.
    pub delivered: u64,
    /// Members that fell behind their room's bound.
    pub slow: Vec<ConnId>,
}

impl Fanout {
    /// A fan-out whose room logs hold at most `bound` bytes and whose connection queues hold at
    /// most `capacity` items.
    pub fn new(bound: usize, capacity: usize) -> Fanout {
        Fanout {
            seq: 0,
            published: Arc::new(AtomicU64::new(0)),
            rooms: HashMap::new(),
            bound,
            capacity,
            touched_rooms: Vec::new(),
            touched_conns: Vec::new(),
        }
    }

    /// A new connection's queue and the feed its writer reads.
    pub fn open(&self, conn: ConnId) -> (Arc<ConnQueue>, Feed) {
        let queue = Arc::new(ConnQueue {
            items: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            capacity: self.capacity,
        });
        let feed = Feed {
            conn,
            queue: queue.clone(),
            published: self.published.clone(),
            subs: Vec::new(),
            ready: VecDeque::new(),
            ended: false,
            stuck: false,
        };
        (queue, feed)
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Queues an item for one connection; a full queue refuses it.
    pub fn push(&mut self, queue: &Arc<ConnQueue>, item: Own) -> Result<(), Full> {
        let mut items = queue.lock();
        if items.len() >= queue.capacity && !matches!(item, Own::End) {
            return Err(Full);
        }
        let seq = self.next();
        items.push_back((seq, item));
        drop(items);
        self.touched_conns.push(queue.clone());
        Ok(())
    }

    /// A socket connection became a member of `room`: its writer reads the room's log from the
    /// current end on.
    pub fn join(
        &mut self,
        queue: &Arc<ConnQueue>,
        conn: ConnId,
        room: &Name,
        since: u64,
    ) -> Result<(), Full> {
        let r = self.room(room);
        let log = r.log.clone();
        let end = log.read().end();
        let shared = Arc::new(AtomicU64::new(end));
        let reader = Reader {
            log,
            cursor: end,
            shared: shared.clone(),
            since,
        };
        if let Err(full) = self.push(queue, Own::Subscribe(reader)) {
            if self.rooms.get(room).is_some_and(Room::is_empty) {
                self.rooms.remove(room);
            }
            return Err(full);
        }
        let r = self.room(room);
        r.streams.insert(
            conn,
            Member {
                cursor: shared,
                since,
            },
        );
        Ok(())
    }

    /// A REST client became a member of `room`.
    pub fn join_mailbox(&mut self, conn: ConnId, room: &Name, since: u64) {
        self.room(room).mailboxes.insert(conn, since);
    }

    /// A membership ended; `queue` is the connection's queue while it still has one. The room's
    /// log goes once nobody is left in it (writers that still read it keep it until they are
    /// done).
    pub fn leave(&mut self, queue: Option<&Arc<ConnQueue>>, conn: ConnId, room: &Name) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.mailboxes.remove(&conn);
        if let Some(m) = r.streams.remove(&conn) {
            if m.cursor.load(Ordering::Acquire) >= r.log.read().start {
                r.leaving.push((conn, m.cursor));
            }
            let log = r.log.clone();
            if let Some(q) = queue {
                // A full queue fails the connection anyway (its writer ends with it).
                let _ = self.push(q, Own::Unsubscribe(log));
            }
        }
        if self.rooms.get(room).is_some_and(Room::is_empty) {
            self.rooms.remove(room);
        }
    }

    fn room(&mut self, room: &Name) -> &mut Room {
        self.rooms.entry(room.clone()).or_insert_with(|| Room {
            log: Arc::new(RoomLog::new()),
            streams: HashMap::new(),
            leaving: Vec::new(),
            mailboxes: HashMap::new(),
            appends: 0,
        })
    }

    /// The REST members of `room` and the first presence event each sees.
    pub fn mailboxes(&self, room: &Name) -> impl Iterator<Item = (ConnId, u64)> + '_ {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|r| r.mailboxes.iter().map(|(c, s)| (*c, *s)))
    }

    /// Appends a room message for every socket member of `room` but `skip`.
    pub fn broadcast(&mut self, room: &Name, push: Arc<EncodedPush>, skip: Vec<ConnId>) -> Fanned {
        let seq = self.seq + 1;
        let bound = self.bound;
        let Some(r) = self.rooms.get_mut(room).filter(|r| !r.streams.is_empty()) else {
            return Fanned::default();
        };
        let skipped = skip.iter().filter(|c| r.streams.contains_key(c)).count();
        let delivered = (r.streams.len() - skipped) as u64;
        if delivered == 0 {
            return Fanned::default();
        }
        let bytes = push_bytes(push.push());
        let slow = r.append(seq, bytes, LogItem::Push(push, skip.into()), bound);
        self.seq = seq;
        if !r.log.touched.swap(true, Ordering::Relaxed) {
            self.touched_rooms.push(r.log.clone());
        }
        Fanned { delivered, slow }
    }

    /// Appends a presence batch whose first event is number `first` for the socket members of
    /// `room`.
    pub fn batch(&mut self, room: &Name, batch: Arc<EncodedBatch>, first: u64) -> Fanned {
        let seq = self.seq + 1;
        let bound = self.bound;
        let Some(r) = self.rooms.get_mut(room) else {
            return Fanned::default();
        };
        let len = batch.len();
        let delivered: u64 = r
            .streams
            .values()
            .filter_map(|m| Output::batch_share(m.since, first, len))
            .map(|from| (len - from) as u64)
            .sum();
        if delivered == 0 {
            return Fanned::default();
        }
        let bytes = batch.pushes(0).iter().map(|p| push_bytes(p.push())).sum();
        let slow = r.append(seq, bytes, LogItem::Batch(batch, first), bound);
        self.seq = seq;
        if !r.log.touched.swap(true, Ordering::Relaxed) {
            self.touched_rooms.push(r.log.clone());
        }
        Fanned { delivered, slow }
    }

    /// Lets writers read everything numbered so far, then wakes each room appended to and each
    /// connection queued for, once.
    pub fn publish(&mut self) {
        self.published.store(self.seq, Ordering::Release);
        for log in self.touched_rooms.drain(..) {
            log.touched.store(false, Ordering::Relaxed);
            log.notify.notify_waiters();
        }
        for q in self.touched_conns.drain(..) {
            q.notify.notify_one();
        }
    }

    /// Rooms with a log (for tests: memory is released when members leave).
    #[cfg(test)]
    fn room_count(&self) -> usize {
        self.rooms.len()
    }
}

/// What a push is counted for in a log: its text and names, plus the frame around them.
fn push_bytes(push: &Push) -> usize {
    PUSH_OVERHEAD
        + match push {
            Push::Message {
                room,
                from,
                text,
                epoch,
                ..
            } => room.as_str().len() + from.as_str().len() + text.len() + epoch.len(),
            Push::Direct {
                room,
                from,
                to,
                text,
            } => room.as_str().len() + from.as_str().len() + to.as_str().len() + text.len(),
            Push::Join { room, client } | Push::Leave { room, client } => {
                room.as_str().len() + client.as_str().len()
            }
            Push::Presence { room, members, .. } => {
                room.as_str().len()
                    + members
                        .iter()
                        .map(|m| m.client.as_str().len() + 24)
                        .sum::<usize>()
            }
            Push::Resync { room, position } => room.as_str().len() + position.epoch.len(),
            Push::Bye { reason } => reason.len(),
        }
}

/// A connection writer's view of its queue and its rooms' logs, merged in the hub's order.
pub struct Feed {
    conn: ConnId,
    queue: Arc<ConnQueue>,
    published: Arc<AtomicU64>,
    subs: Vec<Reader>,
    ready: VecDeque<Outgoing>,
    /// The queue ended: nothing more comes once `ready` is written.
    ended: bool,
    /// A log dropped what this writer had not read: it was failed as a slow consumer and waits
    /// to be stopped.
    stuck: bool,
}

/// Where a taken item came from.
enum Taken {
    /// The entry at this absolute index of the `usize`th log, and what it writes (if anything
    /// for this connection).
    Log(usize, u64, Option<Outgoing>),
    Own(Own),
}

impl Feed {
    /// Takes what is published and not written yet, in order, into `ready`, until something is
    /// ready or nothing more is published.
    fn fill(&mut self) {
        while self.ready.is_empty() && self.fill_once() {}
    }

    /// Takes one round (up to a membership change or [`MAX_TAKE`] per source); says whether it
    /// took anything.
    fn fill_once(&mut self) -> bool {
        if self.ended || self.stuck {
            return false;
        }
        let mut limit = self.published.load(Ordering::Acquire);
        let mut taken: Vec<(u64, Taken)> = Vec::new();
        for (i, r) in self.subs.iter().enumerate() {
            let inner = r.log.read();
            if r.cursor < inner.start {
                self.stuck = true;
                return false;
            }
            let skip = (r.cursor - inner.start) as usize;
            let mut last = 0;
            for (k, e) in inner.entries.range(skip..).enumerate() {
                if e.seq > limit {
                    break;
                }
                if k == MAX_TAKE {
                    // Later numbers wait for the next round, from every source.
                    limit = last;
                    break;
                }
                last = e.seq;
                let out = match &e.item {
                    LogItem::Push(p, skip) => {
                        (!skip.contains(&self.conn)).then(|| Outgoing::Push(p.clone()))
                    }
                    LogItem::Batch(b, first) => {
                        Output::batch_share(r.since, *first, b.len()).map(|from| {
                            Outgoing::Batch(b.clone(), u32::try_from(from).unwrap_or(u32::MAX))
                        })
                    }
                };
                taken.push((e.seq, Taken::Log(i, r.cursor + k as u64 + 1, out)));
            }
        }
        {
            let mut items = self.queue.lock();
            if items.is_empty() && items.capacity() > SMALL {
                // Likewise for the queue, after a burst of replies or direct messages.
                *items = VecDeque::new();
            }
            let mut n = 0;
            while items.front().is_some_and(|(seq, _)| *seq <= limit) {
                if n == MAX_TAKE {
                    // The rest of the queue waits for the next round, and so does every log
                    // entry numbered after what was taken from it (a big recovery queued
                    // before live messages must stay before them).
                    if let Some((last, _)) =
                        taken.iter().rev().find(|(_, t)| matches!(t, Taken::Own(_)))
                    {
                        limit = *last;
                    }
                    break;
                }
                let Some((seq, own)) = items.pop_front() else {
                    break;
                };
                let control = !matches!(own, Own::Out(_));
                taken.push((seq, Taken::Own(own)));
                n += 1;
                if control {
                    // Memberships change what the logs mean: stop here, read again after.
                    limit = seq;
                    break;
                }
            }
        }
        taken.retain(|(seq, _)| *seq <= limit);
        let progress = !taken.is_empty();
        if !self.subs.is_empty() && taken.len() > 1 {
            taken.sort_unstable_by_key(|(seq, _)| *seq);
        }
        for (_, t) in taken {
            match t {
                Taken::Log(i, next, out) => {
                    if let Some(r) = self.subs.get_mut(i) {
                        r.cursor = next;
                    }
                    self.ready.extend(out);
                }
                Taken::Own(Own::Out(o)) => self.ready.push_back(o),
                Taken::Own(Own::Subscribe(r)) => self.subs.push(r),
                Taken::Own(Own::Unsubscribe(log)) => {
                    // Publish the other cursors before the indices shift.
                    for r in &self.subs {
                        r.shared.store(r.cursor, Ordering::Release);
                    }
                    self.subs.retain(|r| !Arc::ptr_eq(&r.log, &log));
                }
                Taken::Own(Own::End) => self.ended = true,
            }
        }
        for r in &self.subs {
            r.shared.store(r.cursor, Ordering::Release);
        }
        progress
    }

    /// Waits until something can be written (true) or the queue ended (false).
    async fn wait(&mut self) -> bool {
        loop {
            if !self.ready.is_empty() {
                return true;
            }
            if self.ended {
                return false;
            }
            // Catch every wake-up from here on before looking, so none falls between, without
            // taking a Notify's lock unless the writer does sleep: the queue's `notify_one`
            // leaves a permit when nobody waits, which the future below takes when polled; a
            // room's `notified()` sees every `notify_waiters` after its creation even before it
            // is polled.
            let queue = self.queue.clone();
            let first = self.subs.first().map(|r| r.log.clone());
            let rest: Vec<Arc<RoomLog>> = self.subs.iter().skip(1).map(|r| r.log.clone()).collect();
            let own = queue.notify.notified();
            let room = first.as_ref().map(|l| l.notify.notified());
            let others: Vec<_> = rest.iter().map(|l| Box::pin(l.notify.notified())).collect();
            if self.stuck {
                // Failed as a slow consumer: the connection is being ended.
                std::future::pending::<()>().await;
            }
            self.fill();
            if !self.ready.is_empty() || self.ended {
                continue;
            }
            let room = async {
                match room {
                    Some(n) => n.await,
                    None => std::future::pending().await,
                }
            };
            let others = async {
                if others.is_empty() {
                    std::future::pending::<()>().await;
                } else {
                    futures_util::future::select_all(others).await;
                }
            };
            tokio::select! {
                _ = own => {}
                _ = room => {}
                _ = others => {}
            }
        }
    }

    fn take(&mut self) -> Option<Outgoing> {
        let item = self.ready.pop_front();
        if self.ready.is_empty() && self.ready.capacity() > SMALL {
            // A burst is written: an idle connection keeps a small buffer.
            self.ready = VecDeque::new();
        }
        item
    }
}

impl Queue for Feed {
    type Item = Outgoing;

    async fn recv(&mut self) -> Option<Outgoing> {
        if self.wait().await { self.take() } else { None }
    }

    fn try_recv(&mut self) -> Option<Outgoing> {
        if self.ready.is_empty() {
            self.fill();
        }
        self.take()
    }
}

#[cfg(test)]
mod tests;
