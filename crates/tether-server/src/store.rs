//! `--data DIR`: rooms, their epochs and offsets, and their recent messages kept in SQLite
//! (`DIR/tether.db`, WAL), so that a restarted server keeps its rooms and members recover across
//! the restart.
//!
//! The rooms engine stays the authority: this store only writes down what the hub's outputs say
//! (rooms created and deleted, every room message with its offset), on one writer thread fed by a
//! bounded channel, which commits whatever has gathered while the previous commit ran (one
//! transaction per batch). At start the server reads it back into the hub before any listener
//! accepts.
//!
//! **Crash semantics.** A batch is durable once committed (WAL, `synchronous=NORMAL`: a killed
//! process loses nothing committed; a power cut may lose the last commits). A SIGKILL loses what
//! was still queued or being committed, at most the batch of the moment. The store cannot tell
//! afterwards whether the tail of a room was lost, so it keeps a `clean` mark that only an orderly
//! shutdown with every write done sets: when the mark is missing at start (a crash, or writes
//! dropped because the disk could not keep up), every room gets a **new epoch**, keeping its
//! offsets and messages, so clients resync instead of "recovering" across a hole and offsets are
//! never reused for other messages within an epoch. After an orderly stop the epochs stay and
//! clients recover.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::counter;
use rusqlite::{Connection, OptionalExtension, params};
use tether_rooms::{HistoryPolicy, Name, Position, Stored};

/// The database file inside the data directory.
pub const DB_FILE: &str = "tether.db";

/// Writes the channel holds at most: each is one room message (its text is bounded by
/// `--max-message-length`) or one room row. Past it, writes are dropped and counted, and the next
/// start gives every room a new epoch.
pub const QUEUE_WRITES: usize = 4096;

/// Writes committed in one transaction at most.
const BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    name TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    top INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    room TEXT NOT NULL,
    offset INTEGER NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (room, offset)
) WITHOUT ROWID;
";

/// Why the data directory cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory cannot be created or is not a directory.
    #[error("cannot use data directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The database cannot be opened, read or written (corrupt, not SQLite, read-only, full).
    #[error("cannot use {file} (in --data): {source}")]
    Db {
        /// The database file.
        file: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database holds something this server cannot take (a bad name, a newer schema).
    #[error("cannot use {file} (in --data): {what}")]
    Content {
        /// The database file.
        file: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the history writer thread: {0}")]
    Thread(std::io::Error),
}

/// One room as the database holds it.
#[derive(Debug)]
pub struct RestoredRoom {
    /// The room.
    pub name: Name,
    /// Its epoch and top offset.
    pub position: Position,
    /// Its kept messages, oldest first, with their age.
    pub messages: Vec<(u64, Name, Arc<str>, Duration)>,
}

impl RestoredRoom {
    /// The messages as the hub keeps them, aged from `now`.
    pub fn stored(&self, now: Instant) -> Vec<Stored> {
        self.messages
            .iter()
            .map(|(offset, from, text, age)| Stored {
                offset: *offset,
                from: from.clone(),
                text: text.clone(),
                at: now.checked_sub(*age).unwrap_or(now),
            })
            .collect()
    }
}

/// What the database held at start.
#[derive(Debug)]
pub struct Restored {
    /// Every room.
    pub rooms: Vec<RestoredRoom>,
    /// Whether the last run stopped in order with every write done; if not, rooms need new
    /// epochs.
    pub clean: bool,
}

enum Op {
    Room {
        room: Name,
        position: Position,
    },
    Message {
        room: Name,
        position: Position,
        from: Name,
        text: Arc<str>,
        at_ms: i64,
    },
    Delete {
        room: Name,
    },
}

/// The handle the rooms state writes through; the writer thread does the I/O.
pub struct Store {
    tx: Option<SyncSender<Op>>,
    thread: Option<JoinHandle<()>>,
    /// A write was dropped or failed: this run cannot be marked clean.
    lossy: Arc<AtomicBool>,
}

impl Store {
    /// Opens (or creates) `dir/tether.db`, checks it, reads what it holds, marks the run as not
    /// clean yet, and starts the writer thread.
    pub fn open(dir: &Path, policy: HistoryPolicy) -> Result<(Store, Restored), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        let file = dir.join(DB_FILE);
        let db = |source| StoreError::Db {
            file: file.clone(),
            source,
        };
        let conn = Connection::open(&file).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(db)?;
        if check != "ok" {
            return Err(StoreError::Content {
                file,
                what: format!("the database is damaged: {check}"),
            });
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        if version > 1 {
            return Err(StoreError::Content {
                file,
                what: format!("schema version {version} is newer than this server's (1)"),
            });
        }
        conn.execute_batch(SCHEMA).map_err(db)?;
        conn.pragma_update(None, "user_version", 1).map_err(db)?;
        let restored = read_all(&conn, &file)?;
        // From here on this run is not clean until it stops in order.
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('clean', '0')
             ON CONFLICT (key) DO UPDATE SET value = '0'",
            [],
        )
        .map_err(db)?;
        let (tx, rx) = sync_channel(QUEUE_WRITES);
        let lossy = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            conn,
            policy,
            lossy: lossy.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("tether-history".into())
            .spawn(move || writer.run(rx))
            .map_err(StoreError::Thread)?;
        Ok((
            Store {
                tx: Some(tx),
                thread: Some(thread),
                lossy,
            },
            restored,
        ))
    }

    fn send(&self, op: Op) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(op) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                if !self.lossy.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "history store: the disk does not keep up ({QUEUE_WRITES} writes queued); \
                         dropping writes, rooms get new epochs at the next start"
                    );
                }
                counter!("tether_history_store_dropped_total").increment(1);
            }
        }
    }

    /// A room exists at this position (created, restored, or given a new epoch).
    pub fn room(&self, room: &Name, position: &Position) {
        self.send(Op::Room {
            room: room.clone(),
            position: position.clone(),
        });
    }

    /// A room message with its position.
    pub fn message(&self, room: &Name, position: Position, from: &Name, text: &Arc<str>) {
        self.send(Op::Message {
            room: room.clone(),
            position,
            from: from.clone(),
            text: text.clone(),
            at_ms: unix_ms(SystemTime::now()),
        });
    }

    /// A room and its history are gone.
    pub fn delete(&self, room: &Name) {
        self.send(Op::Delete { room: room.clone() });
    }

    /// Writes what is queued, marks the run clean if nothing was lost, and stops the writer.
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("history store: the writer thread panicked");
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.finish();
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn read_all(conn: &Connection, file: &Path) -> Result<Restored, StoreError> {
    let db = |source| StoreError::Db {
        file: file.to_owned(),
        source,
    };
    let bad = |what: String| StoreError::Content {
        file: file.to_owned(),
        what,
    };
    let clean = conn
        .query_row("SELECT value FROM meta WHERE key = 'clean'", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map_err(db)?
        .is_none_or(|v| v == "1");
    let now_ms = unix_ms(SystemTime::now());
    let mut rooms = Vec::new();
    let mut stmt = conn
        .prepare("SELECT name, epoch, top FROM rooms ORDER BY name")
        .map_err(db)?;
    let rows: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut msgs = conn
        .prepare("SELECT offset, sender, text, at_ms FROM messages WHERE room = ?1 ORDER BY offset")
        .map_err(db)?;
    for (name, epoch, top) in rows {
        let room = Name::parse(&name).map_err(|e| bad(format!("room {name:?}: {}", e.message)))?;
        let top = u64::try_from(top).map_err(|_| bad(format!("room {name}: offset {top}")))?;
        let position =
            Position::parse(top, &epoch).map_err(|e| bad(format!("room {name}: {}", e.message)))?;
        let list: Vec<(i64, String, String, i64)> = msgs
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let mut messages = Vec::with_capacity(list.len());
        for (offset, sender, text, at_ms) in list {
            let from = Name::parse(&sender)
                .map_err(|e| bad(format!("room {name}: sender {sender:?}: {}", e.message)))?;
            let offset = u64::try_from(offset).map_err(|_| bad(format!("offset {offset}")))?;
            let age = Duration::from_millis(u64::try_from(now_ms - at_ms).unwrap_or(0));
            messages.push((offset, from, Arc::from(text), age));
        }
        rooms.push(RestoredRoom {
            name: room,
            position,
            messages,
        });
    }
    Ok(Restored { rooms, clean })
}

/// The writer thread's side: the only user of the connection.
struct Writer {
    conn: Connection,
    policy: HistoryPolicy,
    lossy: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Op>) {
        let mut batch = Vec::with_capacity(BATCH);
        // Each batch is what gathered while the previous one was written.
        while let Ok(first) = rx.recv() {
            batch.push(first);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.write(&mut batch) {
                self.lossy.store(true, Ordering::Relaxed);
                counter!("tether_history_store_errors_total").increment(1);
                tracing::error!("history store: a write failed: {e}");
            }
            batch.clear();
        }
        // The channel closed: everything sent is written.
        let clean = if self.lossy.load(Ordering::Relaxed) {
            "0"
        } else {
            "1"
        };
        if let Err(e) = self.conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'clean'",
            params![clean],
        ) {
            tracing::error!("history store: cannot mark the stop: {e}");
        }
    }

    fn write(&mut self, batch: &mut Vec<Op>) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for op in batch.drain(..) {
            match op {
                Op::Room { room, position } => {
                    tx.prepare_cached(
                        "INSERT INTO rooms (name, epoch, top) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET epoch = ?2, top = ?3",
                    )?
                    .execute(params![
                        room.as_str(),
                        &*position.epoch,
                        to_i64(position.offset)
                    ])?;
                }
                Op::Message {
                    room,
                    position,
                    from,
                    text,
                    at_ms,
                } => {
                    let offset = to_i64(position.offset);
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO messages (room, offset, sender, text, at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        room.as_str(),
                        offset,
                        from.as_str(),
                        &*text,
                        at_ms
                    ])?;
                    tx.prepare_cached(
                        "INSERT INTO rooms (name, epoch, top) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET epoch = ?2, top = ?3",
                    )?
                    .execute(params![
                        room.as_str(),
                        &*position.epoch,
                        offset
                    ])?;
                    let limits = self.policy.limits_for(room.as_str());
                    let keep_from = offset.saturating_sub(to_i64(limits.messages as u64)) + 1;
                    let age_ms = i64::try_from(limits.age.as_millis()).unwrap_or(i64::MAX);
                    tx.prepare_cached(
                        "DELETE FROM messages WHERE room = ?1 AND (offset < ?2 OR at_ms < ?3)",
                    )?
                    .execute(params![
                        room.as_str(),
                        keep_from,
                        at_ms.saturating_sub(age_ms)
                    ])?;
                }
                Op::Delete { room } => {
                    tx.prepare_cached("DELETE FROM messages WHERE room = ?1")?
                        .execute(params![room.as_str()])?;
                    tx.prepare_cached("DELETE FROM rooms WHERE name = ?1")?
                        .execute(params![room.as_str()])?;
                }
            }
        }
        tx.commit()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tether-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn rooms_and_messages_come_back_and_a_clean_stop_is_marked() {
        let d = dir("round");
        let (store, restored) = Store::open(&d, HistoryPolicy::default()).unwrap();
        assert!(restored.rooms.is_empty() && restored.clean);
        let (r1, bob) = (name("r1"), name("bob"));
        store.room(&r1, &Position::parse(0, "abc").unwrap());
        for o in 1..=3 {
            let text: Arc<str> = Arc::from(format!("m{o}"));
            store.message(&r1, Position::parse(o, "abc").unwrap(), &bob, &text);
        }
        store.room(&name("empty"), &Position::parse(0, "xyz").unwrap());
        store.delete(&name("empty"));
        store.close();
        let (store, restored) = Store::open(&d, HistoryPolicy::default()).unwrap();
        assert!(restored.clean);
        assert_eq!(restored.rooms.len(), 1);
        let r = &restored.rooms[0];
        assert_eq!(r.position, Position::parse(3, "abc").unwrap());
        let texts: Vec<&str> = r.messages.iter().map(|m| &*m.2).collect();
        assert_eq!(texts, ["m1", "m2", "m3"]);
        // Not closed in order (dropped without close is the same as close; simulate a crash by
        // forgetting the handle after the mark was cleared at open).
        std::mem::forget(store);
        let (_, restored) = Store::open(&d, HistoryPolicy::default()).unwrap();
        assert!(
            !restored.clean,
            "a run that did not stop in order is not clean"
        );
    }

    #[test]
    fn the_count_bound_trims_on_disk() {
        let d = dir("trim");
        let policy = HistoryPolicy {
            default: tether_rooms::HistoryLimits {
                messages: 2,
                ..Default::default()
            },
            rules: vec![],
        };
        let (store, _) = Store::open(&d, policy.clone()).unwrap();
        let (r, a) = (name("r"), name("a"));
        for o in 1..=5 {
            store.message(&r, Position::parse(o, "e").unwrap(), &a, &Arc::from("x"));
        }
        store.close();
        let (_, restored) = Store::open(&d, policy).unwrap();
        let offsets: Vec<u64> = restored.rooms[0].messages.iter().map(|m| m.0).collect();
        assert_eq!(offsets, [4, 5]);
    }

    #[test]
    fn a_corrupt_file_or_a_bad_directory_is_a_clear_error() {
        let d = dir("corrupt");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(DB_FILE), vec![0x42u8; 8192]).unwrap();
        let Err(err) = Store::open(&d, HistoryPolicy::default()) else {
            panic!("a corrupt file opened")
        };
        assert!(err.to_string().contains("tether.db"), "{err}");
        let file = dir("notadir");
        std::fs::write(&file, "x").unwrap();
        let Err(err) = Store::open(&file.join("sub"), HistoryPolicy::default()) else {
            panic!("a file as the directory opened")
        };
        assert!(
            err.to_string().contains("cannot use data directory"),
            "{err}"
        );
    }
}
