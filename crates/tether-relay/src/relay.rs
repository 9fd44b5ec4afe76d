//! The relay engine: sessions of peers, announces, role routing, the replay log, limits.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::Map;
use crate::envelope::{Announce, Inbound, Role, inspect};
use crate::frame::Frame;
use crate::log::Log;

/// Close codes the relay sends.
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame (the protocol is JSON text).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text frame that is not UTF-8 (the adapter sees it first).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// The connection cannot keep up (outgoing queue over its bound), or a bad session id.
    pub const POLICY: u16 = 1008;
    /// A frame over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The relay is full (connections or sessions); try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// An adapter's name for one connection; unique among open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The relay's bounds; [`Config::default`] is what `tether serve` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest text frame in bytes; a bigger one closes its connection with 1009.
    pub max_frame_bytes: usize,
    /// Bytes one session's replay log may hold (frames plus 64 bytes per entry).
    pub max_log_bytes: usize,
    /// Bytes all replay logs together may hold; over it, idle sessions are evicted.
    pub max_total_log_bytes: usize,
    /// Bytes sent to one connection and not yet reported written (`handle_sent`); over it the
    /// connection is closed with 1008 "too slow".
    pub max_queue_bytes: usize,
    /// Bytes sent to all connections together and not yet reported written; over it the
    /// connection holding the most is closed with 1008, until the total is back under it, so a
    /// thousand slow readers cannot pin a thousand times `max_queue_bytes`.
    pub max_total_queue_bytes: usize,
    /// Open connections at most; one more is closed with 1013.
    pub max_connections: usize,
    /// Sessions at most (with or without connections); idle ones are evicted first.
    pub max_sessions: usize,
    /// Longest session id in bytes; a longer one is closed with 1008.
    pub max_session_id_bytes: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_bytes: 1 << 20,
            max_log_bytes: 8 << 20,
            max_total_log_bytes: 64 << 20,
            max_queue_bytes: 16 << 20,
            max_total_queue_bytes: 64 << 20,
            max_connections: 1024,
            max_sessions: 64,
            max_session_id_bytes: 256,
        }
    }
}

/// A configuration the relay cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A bound is below its minimum.
    #[error("relay setting {name} must be at least {min}")]
    TooSmall {
        /// The setting.
        name: &'static str,
        /// Its minimum.
        min: usize,
    },
    /// The outgoing queue could not hold a full replay (a UI would be closed on connect).
    #[error(
        "relay setting max_queue_bytes ({queue}) must be at least max_log_bytes + max_frame_bytes ({need})"
    )]
    QueueTooSmall {
        /// The configured queue bound.
        queue: usize,
        /// What a replay plus one frame needs.
        need: usize,
    },
    /// The global outgoing budget could not hold one connection's full queue.
    #[error(
        "relay setting max_total_queue_bytes ({total}) must be at least max_queue_bytes ({queue})"
    )]
    TotalQueueTooSmall {
        /// The configured global budget.
        total: usize,
        /// The per-connection bound it must hold.
        queue: usize,
    },
}

impl Config {
    /// Checks that the bounds work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v, min) in [
            ("max_frame_bytes", self.max_frame_bytes, 256),
            ("max_log_bytes", self.max_log_bytes, 1024),
            ("max_total_log_bytes", self.max_total_log_bytes, 1024),
            ("max_connections", self.max_connections, 1),
            ("max_sessions", self.max_sessions, 1),
            ("max_session_id_bytes", self.max_session_id_bytes, 1),
        ] {
            if v < min {
                return Err(ConfigError::TooSmall { name, min });
            }
        }
        let need = self.max_log_bytes.saturating_add(self.max_frame_bytes);
        if self.max_queue_bytes < need {
            return Err(ConfigError::QueueTooSmall {
                queue: self.max_queue_bytes,
                need,
            });
        }
        if self.max_total_queue_bytes < self.max_queue_bytes {
            return Err(ConfigError::TotalQueueTooSmall {
                total: self.max_total_queue_bytes,
                queue: self.max_queue_bytes,
            });
        }
        Ok(())
    }
}

/// What the adapter must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this text frame to the connection; report it with [`Relay::handle_sent`].
    Send {
        /// The recipient.
        conn: ConnId,
        /// The frame, byte for byte as its sender wrote it (or synthesized by the relay).
        frame: Frame,
    },
    /// Close the connection with this code and reason; the relay has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code (see [`close`]).
        code: u16,
        /// Why, for the peer (at most 123 bytes).
        reason: String,
    },
}

/// Counters since the relay started, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Text frames received.
    pub frames_in: u64,
    /// Bytes of text frames received.
    pub bytes_in: u64,
    /// Frames handed out in [`Output::Send`].
    pub frames_out: u64,
    /// Bytes handed out in [`Output::Send`].
    pub bytes_out: u64,
    /// Frames dropped because their sender had not announced.
    pub dropped_unannounced: u64,
    /// Announces dropped as invalid (not relayed).
    pub dropped_invalid_announce: u64,
    /// Offline announces the relay synthesized for sockets that closed without one.
    pub synthesized_offline: u64,
    /// Log entries dropped to stay within the bounds.
    pub log_evicted: u64,
    /// Times a session's log was suspended (over its bound with only structure left).
    pub logs_suspended: u64,
    /// Idle sessions evicted (session count or total log bound).
    pub sessions_evicted: u64,
    /// Connections closed for a frame over the size limit.
    pub closed_too_big: u64,
    /// Connections closed as too slow.
    pub closed_too_slow: u64,
    /// Connections closed because the relay's global outgoing budget was used up and they held
    /// the most of it.
    pub closed_over_budget: u64,
    /// Connections closed for a binary frame.
    pub closed_binary: u64,
    /// Connections refused (relay full, too many sessions, bad session id).
    pub refused: u64,
}

#[derive(Debug)]
struct Peer {
    announce: Announce,
    online: bool,
    /// The peer's last online announce, replayed to newcomers as it was sent.
    frame: Frame,
}

#[derive(Debug)]
struct Conn {
    session: Arc<str>,
    peer: Option<Peer>,
    pending: usize,
    closing: bool,
}

#[derive(Debug, Default)]
struct Session {
    conns: Vec<ConnId>,
    log: Log,
    last_active: u64,
}

/// The sans-IO relay: connections in, [`Output`]s out. One instance serves every session.
#[derive(Debug)]
pub struct Relay {
    config: Config,
    sessions: Map<Arc<str>, Session>,
    conns: Map<ConnId, Conn>,
    out: VecDeque<Output>,
    /// The recipients of the frame being relayed (kept to save an allocation per frame).
    recipients: Vec<ConnId>,
    closes: Vec<(ConnId, u16, String)>,
    stats: Stats,
    tick: u64,
    log_bytes: usize,
    /// Bytes sent to open (not closing) connections and not reported written: the sum of their
    /// `pending`.
    queued_bytes: usize,
}

impl Default for Relay {
    fn default() -> Relay {
        Relay::with_valid_config(Config::default())
    }
}

impl Relay {
    /// A relay with these bounds.
    pub fn new(config: Config) -> Result<Relay, ConfigError> {
        config.validate()?;
        Ok(Relay::with_valid_config(config))
    }

    fn with_valid_config(config: Config) -> Relay {
        Relay {
            config,
            sessions: Map::default(),
            conns: Map::default(),
            recipients: Vec::new(),
            out: VecDeque::new(),
            closes: Vec::new(),
            stats: Stats::default(),
            tick: 0,
            log_bytes: 0,
            queued_bytes: 0,
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Sessions kept (with connections, or with a replay log worth keeping).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Bytes held by every replay log together.
    pub fn log_bytes(&self) -> usize {
        self.log_bytes
    }

    /// A session's replay log.
    pub fn log(&self, session: &str) -> Option<&Log> {
        self.sessions.get(session).map(|s| &s.log)
    }

    /// Bytes sent to `conn` and not reported written yet.
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.pending)
    }

    /// Bytes sent to all open connections and not reported written yet (what
    /// `max_total_queue_bytes` bounds).
    pub fn total_queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A socket opened on `session` (`""` when the URL has no `?session=`). A second connect of
    /// an open id is ignored.
    pub fn handle_connect(&mut self, conn: ConnId, session: &str) {
        if self.conns.contains_key(&conn) {
            return;
        }
        self.tick += 1;
        if session.len() > self.config.max_session_id_bytes {
            return self.refuse(
                conn,
                close::POLICY,
                format!(
                    "session id longer than {} bytes",
                    self.config.max_session_id_bytes
                ),
            );
        }
        if self.conns.len() >= self.config.max_connections {
            return self.refuse(
                conn,
                close::TRY_AGAIN_LATER,
                format!("relay full: {} connections", self.config.max_connections),
            );
        }
        if !self.sessions.contains_key(session) {
            if self.sessions.len() >= self.config.max_sessions && !self.evict_idle(None) {
                return self.refuse(
                    conn,
                    close::TRY_AGAIN_LATER,
                    format!("relay full: {} sessions", self.config.max_sessions),
                );
            }
            self.sessions.insert(Arc::from(session), Session::default());
        }
        if let Some(s) = self.sessions.get_mut(session) {
            s.conns.push(conn);
            s.last_active = self.tick;
        }
        self.conns.insert(
            conn,
            Conn {
                session: self
                    .sessions
                    .get_key_value(session)
                    .map_or_else(|| Arc::from(session), |(k, _)| k.clone()),
                peer: None,
                pending: 0,
                closing: false,
            },
        );
    }

    /// A text frame from `conn`; `now` is the time in epoch milliseconds (for the timestamps of
    /// synthesized offline announces).
    pub fn handle_text(&mut self, conn: ConnId, text: &str, now: u64) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        self.tick += 1;
        self.stats.frames_in += 1;
        self.stats.bytes_in += text.len() as u64;
        if text.len() > self.config.max_frame_bytes {
            self.stats.closed_too_big += 1;
            let reason = format!(
                "frame of {} bytes is over the limit of {} bytes",
                text.len(),
                self.config.max_frame_bytes
            );
            self.close_conn(conn, close::TOO_BIG, reason);
            return self.finish_closes(now);
        }
        let session = c.session.clone();
        if let Some(s) = self.sessions.get_mut(&session) {
            s.last_active = self.tick;
        }
        let inbound = inspect(text);
        let frame = Frame::new(text);
        match inbound {
            Inbound::Announce(Err(_)) => self.stats.dropped_invalid_announce += 1,
            Inbound::Announce(Ok(a)) => self.announce(conn, &session, a, frame),
            inbound => {
                let role = match self.conns.get(&conn).and_then(|c| c.peer.as_ref()) {
                    Some(p) => p.announce.role,
                    None => {
                        self.stats.dropped_unannounced += 1;
                        return;
                    }
                };
                if role == Role::Hero {
                    self.record(&session, &inbound, &frame);
                }
                let to = match role {
                    Role::Hero => Role::Sidekick,
                    Role::Sidekick => Role::Hero,
                };
                let mut recipients = std::mem::take(&mut self.recipients);
                self.peers_into(&mut recipients, &session, conn, |p| {
                    p.online && p.announce.role == to
                });
                for &r in &recipients {
                    self.send(r, frame.clone());
                }
                recipients.clear();
                self.recipients = recipients;
            }
        }
        self.finish_closes(now);
    }

    /// A binary frame from `conn`: not part of the protocol, the connection is closed (1003).
    pub fn handle_binary(&mut self, conn: ConnId, now: u64) {
        if self.conns.get(&conn).is_some_and(|c| !c.closing) {
            self.stats.closed_binary += 1;
            self.close_conn(
                conn,
                close::UNSUPPORTED_DATA,
                "binary frames are not part of the sidekick protocol: send JSON text".to_owned(),
            );
            self.finish_closes(now);
        }
    }

    /// The adapter wrote `bytes` of frames to `conn`.
    pub fn handle_sent(&mut self, conn: ConnId, bytes: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let done = bytes.min(c.pending);
            c.pending -= done;
            self.queued_bytes = self.queued_bytes.saturating_sub(done);
        }
    }

    /// The socket closed (either side); an online peer that did not announce offline gets a
    /// synthesized offline announce.
    pub fn handle_close(&mut self, conn: ConnId, now: u64) {
        self.tick += 1;
        self.remove_conn(conn, now, None);
        self.finish_closes(now);
    }

    /// Closes every connection (shutdown) with `code` and `reason`; no offline is synthesized.
    pub fn handle_shutdown(&mut self, code: u16, reason: &str) {
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort();
        for conn in ids {
            self.out.push_back(Output::Close {
                conn,
                code,
                reason: reason.to_owned(),
            });
        }
        self.conns.clear();
        self.closes.clear();
        self.queued_bytes = 0;
        self.sessions.retain(|_, s| {
            s.conns.clear();
            s.log.is_known()
        });
    }

    fn refuse(&mut self, conn: ConnId, code: u16, reason: String) {
        self.stats.refused += 1;
        self.out.push_back(Output::Close { conn, code, reason });
    }

    /// Open, announced connections of `session` other than `except` whose peer passes `keep`.
    fn peers(&self, session: &str, except: ConnId, keep: impl Fn(&Peer) -> bool) -> Vec<ConnId> {
        let mut out = Vec::new();
        self.peers_into(&mut out, session, except, keep);
        out
    }

    /// [`Relay::peers`] into `out`.
    fn peers_into(
        &self,
        out: &mut Vec<ConnId>,
        session: &str,
        except: ConnId,
        keep: impl Fn(&Peer) -> bool,
    ) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        out.extend(s.conns.iter().copied().filter(|&id| {
            id != except
                && self
                    .conns
                    .get(&id)
                    .is_some_and(|c| !c.closing && c.peer.as_ref().is_some_and(&keep))
        }));
    }

    fn send(&mut self, conn: ConnId, frame: Frame) {
        let max = self.config.max_queue_bytes;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        c.pending += frame.len();
        let over = c.pending > max;
        self.queued_bytes += frame.len();
        self.stats.frames_out += 1;
        self.stats.bytes_out += frame.len() as u64;
        self.out.push_back(Output::Send { conn, frame });
        if over {
            self.stats.closed_too_slow += 1;
            self.close_conn(
                conn,
                close::POLICY,
                format!("too slow: more than {max} bytes queued"),
            );
        }
        self.enforce_budget();
    }

    /// Over the global outgoing budget: closes the connections that hold the most of it (the
    /// slowest readers) until the total is back within it.
    fn enforce_budget(&mut self) {
        let budget = self.config.max_total_queue_bytes;
        while self.queued_bytes > budget {
            let victim = self
                .conns
                .iter()
                .filter(|(_, c)| !c.closing && c.pending > 0)
                .max_by_key(|(id, c)| (c.pending, std::cmp::Reverse(**id)))
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                break;
            };
            self.stats.closed_over_budget += 1;
            self.close_conn(
                victim,
                close::POLICY,
                format!("too slow: the relay's outgoing budget of {budget} bytes is used up"),
            );
        }
    }

    /// Marks `conn` closing; what was queued for it no longer counts (the adapter drops it).
    fn close_conn(&mut self, conn: ConnId, code: u16, reason: String) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            c.closing = true;
            self.queued_bytes = self.queued_bytes.saturating_sub(c.pending);
            c.pending = 0;
            self.closes.push((conn, code, reason));
        }
    }

    /// Runs the closes decided so far; each may synthesize an offline that closes another
    /// slow connection, so this loops until none is left.
    fn finish_closes(&mut self, now: u64) {
        while let Some((conn, code, reason)) = self.closes.pop() {
            self.remove_conn(conn, now, Some((code, reason)));
        }
    }

    fn remove_conn(&mut self, conn: ConnId, now: u64, close: Option<(u16, String)>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.queued_bytes = self.queued_bytes.saturating_sub(c.pending);
        if let Some((code, reason)) = close {
            self.out.push_back(Output::Close { conn, code, reason });
        }
        if let Some(s) = self.sessions.get_mut(&c.session) {
            s.conns.retain(|&id| id != conn);
        }
        if let Some(peer) = c.peer.filter(|p| p.online) {
            self.stats.synthesized_offline += 1;
            let frame = offline_frame(&peer.announce, now);
            for r in self.peers(&c.session, conn, |_| true) {
                self.send(r, frame.clone());
            }
        }
        self.drop_if_idle(&c.session);
    }

    /// Forgets an idle session whose log could not restore a page anyway.
    fn drop_if_idle(&mut self, session: &str) {
        if let Some(s) = self.sessions.get(session)
            && s.conns.is_empty()
            && !s.log.is_known()
        {
            self.log_bytes = self.log_bytes.saturating_sub(s.log.bytes());
            self.sessions.remove(session);
        }
    }

    /// Evicts the least recently active session without connections (never `keep`).
    fn evict_idle(&mut self, keep: Option<&str>) -> bool {
        let victim = self
            .sessions
            .iter()
            .filter(|(id, s)| s.conns.is_empty() && Some(id.as_ref() as &str) != keep)
            .min_by_key(|(_, s)| s.last_active)
            .map(|(id, _)| id.clone());
        match victim.and_then(|id| self.sessions.remove(&id)) {
            Some(s) => {
                self.log_bytes = self.log_bytes.saturating_sub(s.log.bytes());
                self.stats.sessions_evicted += 1;
                true
            }
            None => false,
        }
    }

    fn record(&mut self, session: &str, inbound: &Inbound, frame: &Frame) {
        let max = self.config.max_log_bytes;
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let before = s.log.bytes();
        let rec = s.log.record(inbound, frame, max);
        let after = s.log.bytes();
        self.log_bytes = self.log_bytes.saturating_sub(before) + after;
        self.stats.log_evicted += rec.evicted;
        self.stats.logs_suspended += u64::from(rec.suspended);
        while self.log_bytes > self.config.max_total_log_bytes {
            if self.evict_idle(Some(session)) {
                continue;
            }
            // Only sessions with connections are left: this one stops logging.
            if let Some(s) = self.sessions.get_mut(session) {
                self.log_bytes = self.log_bytes.saturating_sub(s.log.bytes());
                self.stats.log_evicted += s.log.len() as u64;
                self.stats.logs_suspended += 1;
                s.log.suspend();
            }
            break;
        }
    }

    fn announce(&mut self, conn: ConnId, session: &str, a: Announce, frame: Frame) {
        let bound = self.conns.get(&conn).and_then(|c| c.peer.as_ref());
        if let Some(p) = bound
            && (p.announce.peer_id != a.peer_id || p.announce.role != a.role)
        {
            // One peer per connection: its peerId and role are fixed by its first announce.
            self.stats.dropped_invalid_announce += 1;
            return;
        }
        let others = self.peers(session, conn, |_| true);
        if a.online {
            // The same peer on another socket (a reconnect before the old socket closed): the old
            // socket stops counting as online, so its close synthesizes nothing.
            let mut presence = Vec::new();
            for id in &others {
                if let Some(p) = self.conns.get_mut(id).and_then(|c| c.peer.as_mut()) {
                    if p.announce.peer_id == a.peer_id {
                        p.online = false;
                    } else if p.online {
                        presence.push(p.frame.clone());
                    }
                }
            }
            for f in presence {
                self.send(conn, f);
            }
            let role = a.role;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.peer = Some(Peer {
                    announce: a,
                    online: true,
                    frame: frame.clone(),
                });
            }
            for r in others {
                self.send(r, frame.clone());
            }
            if role == Role::Sidekick {
                let replay: Vec<Frame> = self
                    .sessions
                    .get(session)
                    .map(|s| s.log.replay().cloned().collect())
                    .unwrap_or_default();
                for f in replay {
                    self.send(conn, f);
                }
            }
        } else {
            let kept = self
                .conns
                .get_mut(&conn)
                .and_then(|c| c.peer.take())
                .map_or_else(|| frame.clone(), |p| p.frame);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.peer = Some(Peer {
                    announce: a,
                    online: false,
                    frame: kept,
                });
            }
            for r in others {
                self.send(r, frame.clone());
            }
        }
    }
}

/// `{"id":0,"component":"system","type":"announce","payload":{peerId, role, "status":"offline",
/// version, timestamp: now}}`, as the VS Code relay synthesizes it.
fn offline_frame(a: &Announce, now: u64) -> Frame {
    let v = serde_json::json!({
        "id": 0,
        "component": "system",
        "type": "announce",
        "payload": {
            "peerId": a.peer_id,
            "role": a.role.as_str(),
            "status": "offline",
            "version": a.version,
            "timestamp": now,
        }
    });
    Frame::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_321_174_173;

    fn announce(peer: &str, role: &str, status: &str) -> String {
        format!(
            r#"{{"id": 0, "component": "system", "type": "announce", "payload": {{"peerId": "{peer}", "role": "{role}", "status": "{status}", "version": "0.0.7", "timestamp": 1795321171285}}}}"#
        )
    }

    const CLEAR: &str = r#"{"id": 0, "component": "global", "type": "clearAll"}"#;
    const SPAWN: &str = r#"{"id": 0, "component": "label", "type": "spawn", "target": "lab", "payload": {"text": "hello"}}"#;
    const CLICK: &str =
        r#"{"id":0,"component":"button","type":"event","src":"btn","payload":{"event":"click"}}"#;

    type Sends = Vec<(u64, String)>;
    type Closes = Vec<(u64, u16)>;

    /// Drains the outputs as (conn, text) sends and (conn, code) closes.
    fn drain(r: &mut Relay) -> (Sends, Closes) {
        let (mut sends, mut closes) = (Vec::new(), Vec::new());
        while let Some(e) = r.poll_output() {
            match e {
                Output::Send { conn, frame } => sends.push((conn.0, frame.as_str().to_owned())),
                Output::Close { conn, code, .. } => closes.push((conn.0, code)),
            }
        }
        (sends, closes)
    }

    fn to(sends: &[(u64, String)], conn: u64) -> Vec<String> {
        sends
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// A hero on 1 and a UI on 2 in session "", both announced; outputs drained.
    fn pair() -> Relay {
        let mut r = Relay::default();
        r.handle_connect(ConnId(1), "");
        r.handle_text(ConnId(1), &announce("hero-1", "hero", "online"), NOW);
        r.handle_connect(ConnId(2), "");
        r.handle_text(ConnId(2), &announce("ui-1", "sidekick", "online"), NOW);
        drain(&mut r);
        r
    }

    #[test]
    fn routes_by_role_and_never_echoes() {
        let mut r = pair();
        r.handle_connect(ConnId(3), "");
        r.handle_text(ConnId(3), &announce("hero-2", "hero", "online"), NOW);
        r.handle_connect(ConnId(4), "");
        r.handle_text(ConnId(4), &announce("ui-2", "sidekick", "online"), NOW);
        drain(&mut r);
        r.handle_text(ConnId(1), SPAWN, NOW);
        let (sends, _) = drain(&mut r);
        let mut got: Vec<u64> = sends.iter().map(|(c, _)| *c).collect();
        got.sort();
        assert_eq!(got, vec![2, 4], "a hero's frame goes to the UIs only");
        assert!(sends.iter().all(|(_, t)| t == SPAWN), "verbatim");
        r.handle_text(ConnId(2), CLICK, NOW);
        let (sends, _) = drain(&mut r);
        let mut got: Vec<u64> = sends.iter().map(|(c, _)| *c).collect();
        got.sort();
        assert_eq!(got, vec![1, 3], "a UI's frame goes to the heroes only");
    }

    #[test]
    fn frames_before_an_announce_are_dropped() {
        let mut r = pair();
        r.handle_connect(ConnId(3), "");
        r.handle_text(ConnId(3), CLICK, NOW);
        r.handle_text(ConnId(1), SPAWN, NOW);
        let (sends, _) = drain(&mut r);
        assert!(to(&sends, 1).is_empty(), "dropped: {sends:?}");
        assert!(
            to(&sends, 3).is_empty(),
            "an unannounced socket receives nothing: {sends:?}"
        );
        assert_eq!(r.stats().dropped_unannounced, 1);
    }

    #[test]
    fn sessions_are_separate() {
        let mut r = pair();
        r.handle_connect(ConnId(3), "other");
        r.handle_text(ConnId(3), &announce("ui-x", "sidekick", "online"), NOW);
        let (sends, _) = drain(&mut r);
        assert!(sends.iter().all(|(c, _)| *c == 3));
        assert!(to(&sends, 3).is_empty(), "nobody online in 'other'");
        r.handle_text(ConnId(1), SPAWN, NOW);
        let (sends, _) = drain(&mut r);
        assert_eq!(sends, vec![(2, SPAWN.to_owned())]);
    }

    #[test]
    fn presence_is_replayed_after_the_newcomer_announces() {
        let mut r = Relay::default();
        let hero = announce("hero-1", "hero", "online");
        r.handle_connect(ConnId(1), "");
        r.handle_text(ConnId(1), &hero, NOW);
        r.handle_connect(ConnId(2), "");
        let (sends, _) = drain(&mut r);
        assert!(
            sends.is_empty(),
            "nothing before the newcomer's own announce"
        );
        let ui = announce("ui-1", "sidekick", "online");
        r.handle_text(ConnId(2), &ui, NOW);
        let (sends, _) = drain(&mut r);
        assert_eq!(sends, vec![(2, hero.clone()), (1, ui.clone())]);
    }

    #[test]
    fn offline_announces_are_relayed_and_not_synthesized_again() {
        let mut r = pair();
        let off = announce("hero-1", "hero", "offline");
        r.handle_text(ConnId(1), &off, NOW);
        r.handle_close(ConnId(1), NOW);
        let (sends, _) = drain(&mut r);
        assert_eq!(sends, vec![(2, off)]);
        // A newcomer does not hear of the offline hero.
        r.handle_connect(ConnId(3), "");
        r.handle_text(ConnId(3), &announce("ui-2", "sidekick", "online"), NOW);
        let (sends, _) = drain(&mut r);
        assert!(
            to(&sends, 3).iter().all(|t| !t.contains("hero-1")),
            "{sends:?}"
        );
    }

    #[test]
    fn a_close_without_offline_synthesizes_one() {
        let mut r = pair();
        r.handle_close(ConnId(1), NOW);
        let (sends, _) = drain(&mut r);
        let expected = format!(
            r#"{{"id":0,"component":"system","type":"announce","payload":{{"peerId":"hero-1","role":"hero","status":"offline","version":"0.0.7","timestamp":{NOW}}}}}"#
        );
        assert_eq!(sends, vec![(2, expected)]);
        assert_eq!(r.stats().synthesized_offline, 1);
        // An unannounced socket's close says nothing.
        r.handle_connect(ConnId(5), "");
        r.handle_close(ConnId(5), NOW);
        assert_eq!(drain(&mut r), (vec![], vec![]));
    }

    #[test]
    fn a_reconnect_with_the_same_peer_id_supersedes_the_old_socket() {
        let mut r = pair();
        let hero = announce("hero-1", "hero", "online");
        r.handle_connect(ConnId(3), "");
        r.handle_text(ConnId(3), &hero, NOW);
        drain(&mut r);
        r.handle_close(ConnId(1), NOW);
        let (sends, _) = drain(&mut r);
        assert!(
            sends.is_empty(),
            "the old socket's close is not an offline: {sends:?}"
        );
        r.handle_connect(ConnId(4), "");
        r.handle_text(ConnId(4), &announce("ui-2", "sidekick", "online"), NOW);
        let (sends, _) = drain(&mut r);
        let presence: Vec<String> = to(&sends, 4)
            .into_iter()
            .filter(|t| t.contains("hero-1"))
            .collect();
        assert_eq!(presence, vec![hero], "one hero, once");
    }

    #[test]
    fn invalid_announces_are_not_relayed_and_a_peer_keeps_its_id() {
        let mut r = pair();
        let bad = r#"{"id":0,"component":"system","type":"announce","payload":{"peerId":"x","role":"hero","status":"online","version":"0.0.7","timestamp":"soon"}}"#;
        r.handle_text(ConnId(1), bad, NOW);
        r.handle_text(ConnId(1), &announce("someone-else", "hero", "online"), NOW);
        r.handle_text(ConnId(1), &announce("hero-1", "sidekick", "online"), NOW);
        assert_eq!(drain(&mut r), (vec![], vec![]));
        assert_eq!(r.stats().dropped_invalid_announce, 3);
    }

    #[test]
    fn a_late_ui_gets_presence_then_the_log() {
        let mut r = pair();
        r.handle_text(ConnId(1), CLEAR, NOW);
        r.handle_text(ConnId(1), SPAWN, NOW);
        drain(&mut r);
        r.handle_connect(ConnId(3), "");
        let ui = announce("ui-2", "sidekick", "online");
        r.handle_text(ConnId(3), &ui, NOW);
        let (sends, _) = drain(&mut r);
        let compact_clear = r#"{"id":0,"component":"global","type":"clearAll"}"#;
        assert_eq!(
            to(&sends, 3),
            vec![
                announce("hero-1", "hero", "online"),
                announce("ui-1", "sidekick", "online"),
                compact_clear.to_owned(),
                SPAWN.to_owned()
            ]
        );
        // A hero that connects late gets presence but no log.
        r.handle_connect(ConnId(4), "");
        r.handle_text(ConnId(4), &announce("hero-2", "hero", "online"), NOW);
        let (sends, _) = drain(&mut r);
        assert!(to(&sends, 4).iter().all(|t| t.contains("announce")));
    }

    #[test]
    fn the_log_outlives_its_peers() {
        let mut r = pair();
        r.handle_text(ConnId(1), CLEAR, NOW);
        r.handle_text(ConnId(1), SPAWN, NOW);
        r.handle_close(ConnId(1), NOW);
        r.handle_close(ConnId(2), NOW);
        assert_eq!(r.session_count(), 1);
        drain(&mut r);
        r.handle_connect(ConnId(9), "");
        r.handle_text(ConnId(9), &announce("ui-1", "sidekick", "online"), NOW);
        let (sends, _) = drain(&mut r);
        assert_eq!(to(&sends, 9).last().map(String::as_str), Some(SPAWN));
        // A session without a log is forgotten when its last socket closes.
        r.handle_connect(ConnId(10), "empty");
        r.handle_close(ConnId(10), NOW);
        assert_eq!(r.session_count(), 1);
    }

    #[test]
    fn non_strict_json_is_relayed_and_logged() {
        let mut r = pair();
        r.handle_text(ConnId(1), CLEAR, NOW);
        let nan = r#"{"id": 0, "component": "viz", "type": "spawn", "target": "v", "payload": {}}"#;
        let set = r#"{"id": 0, "component": "viz", "type": "update", "target": "v", "payload": {"action": "set", "variableName": "x", "options": {"path": [], "valueRepresentation": {"type": "float", "value": NaN}}}}"#;
        let garbage = "not json at all {";
        for f in [nan, set, garbage] {
            r.handle_text(ConnId(1), f, NOW);
        }
        let (sends, _) = drain(&mut r);
        assert_eq!(
            to(&sends, 2)[1..],
            [nan.to_owned(), set.to_owned(), garbage.to_owned()]
        );
        let log: Vec<String> = r
            .log("")
            .map(|l| l.replay().map(|f| f.to_string()).collect())
            .expect("valid config");
        assert_eq!(log[1..], [nan.to_owned(), set.to_owned()]);
    }

    #[test]
    fn oversized_and_binary_frames_close_their_connection_only() {
        let mut r = Relay::new(Config {
            max_frame_bytes: 1000,
            max_queue_bytes: (8 << 20) + 1000,
            ..Config::default()
        })
        .expect("valid config");
        r.handle_connect(ConnId(1), "");
        r.handle_text(ConnId(1), &announce("hero-1", "hero", "online"), NOW);
        r.handle_connect(ConnId(2), "");
        r.handle_text(ConnId(2), &announce("ui-1", "sidekick", "online"), NOW);
        drain(&mut r);
        let big = format!(
            r#"{{"component":"label","type":"spawn","target":"x","payload":{{"text":"{}"}}}}"#,
            "a".repeat(1000)
        );
        r.handle_text(ConnId(1), &big, NOW);
        let (sends, closes) = drain(&mut r);
        assert_eq!(closes, vec![(1, close::TOO_BIG)]);
        assert_eq!(
            sends.len(),
            1,
            "the UI hears the hero went offline: {sends:?}"
        );
        assert!(sends[0].1.contains(r#""status":"offline""#));
        r.handle_binary(ConnId(2), NOW);
        let (_, closes) = drain(&mut r);
        assert_eq!(closes, vec![(2, close::UNSUPPORTED_DATA)]);
        assert_eq!(r.connection_count(), 0);
    }

    #[test]
    fn a_slow_ui_is_closed_and_the_others_go_on() {
        let cfg = Config {
            max_frame_bytes: 256,
            max_log_bytes: 1024,
            max_queue_bytes: 2048,
            ..Config::default()
        };
        let mut r = Relay::new(cfg).expect("valid config");
        r.handle_connect(ConnId(1), "");
        r.handle_text(ConnId(1), &announce("hero-1", "hero", "online"), NOW);
        for ui in [2, 3] {
            r.handle_connect(ConnId(ui), "");
            r.handle_text(
                ConnId(ui),
                &announce(&format!("ui-{ui}"), "sidekick", "online"),
                NOW,
            );
        }
        drain(&mut r);
        r.handle_sent(ConnId(3), usize::MAX);
        let mut closed = Vec::new();
        for _ in 0..100 {
            r.handle_text(ConnId(1), CLICK, NOW);
            let (sends, closes) = drain(&mut r);
            // UI 3 keeps up, UI 2 never reports anything written.
            let written: usize = sends
                .iter()
                .filter(|(c, _)| *c == 3)
                .map(|(_, t)| t.len())
                .sum();
            r.handle_sent(ConnId(3), written);
            closed.extend(closes);
        }
        assert_eq!(closed, vec![(2, close::POLICY)]);
        assert_eq!(r.queued_bytes(ConnId(3)), Some(0));
        assert!(r.queued_bytes(ConnId(2)).is_none());
    }

    /// Whether the global count is the sum of the open connections' queues.
    fn budget_is_consistent(r: &Relay, open: &[u64]) -> bool {
        let sum: usize = open.iter().filter_map(|&c| r.queued_bytes(ConnId(c))).sum();
        sum == r.total_queued_bytes() && sum <= r.config().max_total_queue_bytes
    }

    #[test]
    fn the_global_budget_closes_the_reader_holding_the_most() {
        let cfg = Config {
            max_frame_bytes: 256,
            max_log_bytes: 1024,
            max_queue_bytes: 4096,
            max_total_queue_bytes: 4096,
            ..Config::default()
        };
        let mut r = Relay::new(cfg).expect("valid config");
        r.handle_connect(ConnId(1), "");
        r.handle_text(ConnId(1), &announce("hero-1", "hero", "online"), NOW);
        // Three UIs: 2 never reads, 3 reads half of what it gets, 4 keeps up.
        for ui in [2, 3, 4] {
            r.handle_connect(ConnId(ui), "");
            r.handle_text(
                ConnId(ui),
                &announce(&format!("ui-{ui}"), "sidekick", "online"),
                NOW,
            );
        }
        drain(&mut r);
        for ui in [1, 2, 3, 4] {
            r.handle_sent(ConnId(ui), usize::MAX);
        }
        assert_eq!(r.total_queued_bytes(), 0);
        let mut closed = Vec::new();
        let mut open = vec![1, 2, 3, 4];
        for _ in 0..40 {
            r.handle_text(ConnId(1), CLICK, NOW);
            let (sends, closes) = drain(&mut r);
            let got = |c: u64| -> usize {
                sends
                    .iter()
                    .filter(|(to, _)| *to == c)
                    .map(|(_, t)| t.len())
                    .sum()
            };
            r.handle_sent(ConnId(3), got(3) / 2);
            r.handle_sent(ConnId(4), got(4));
            for (c, _) in &closes {
                open.retain(|o| o != c);
            }
            closed.extend(closes);
            assert!(budget_is_consistent(&r, &open), "step: {closed:?}");
        }
        // 2 held two thirds of the budget when it ran out: it goes, alone, as "too slow".
        assert_eq!(closed, vec![(2, close::POLICY)]);
        assert_eq!(r.stats().closed_over_budget, 1);
        assert_eq!(r.stats().closed_too_slow, 0);
        let q3 = r.queued_bytes(ConnId(3)).expect("3 is open");
        assert!(q3 > 0 && q3 < 4096, "{q3}");
        assert_eq!(r.queued_bytes(ConnId(4)), Some(0));
        assert!(r.queued_bytes(ConnId(2)).is_none());
        // The hero heard that the closed UI went offline; the others still get frames.
        r.handle_text(ConnId(1), SPAWN, NOW);
        let (sends, _) = drain(&mut r);
        let mut got: Vec<u64> = sends.iter().map(|(c, _)| *c).collect();
        got.sort();
        assert_eq!(got, vec![3, 4]);
    }

    #[test]
    fn the_budget_counts_only_open_connections() {
        let cfg = Config {
            max_frame_bytes: 256,
            max_log_bytes: 1024,
            max_queue_bytes: 4096,
            max_total_queue_bytes: 5000,
            ..Config::default()
        };
        let mut r = Relay::new(cfg).expect("valid config");
        r.handle_connect(ConnId(1), "");
        r.handle_text(ConnId(1), &announce("hero-1", "hero", "online"), NOW);
        r.handle_connect(ConnId(2), "");
        r.handle_text(ConnId(2), &announce("ui-1", "sidekick", "online"), NOW);
        r.handle_connect(ConnId(3), "");
        r.handle_text(ConnId(3), &announce("ui-2", "sidekick", "online"), NOW);
        drain(&mut r);
        for _ in 0..20 {
            r.handle_text(ConnId(1), CLICK, NOW);
        }
        drain(&mut r);
        let held = r.total_queued_bytes();
        assert!(held > 2 * 20 * CLICK.len(), "{held}");
        assert!(budget_is_consistent(&r, &[1, 2, 3]));
        // A closed socket's queue is gone (the adapter drops it), so is a shut-down relay's.
        r.handle_close(ConnId(2), NOW);
        drain(&mut r);
        assert!(budget_is_consistent(&r, &[1, 3]));
        assert!(r.total_queued_bytes() < held);
        r.handle_shutdown(close::GOING_AWAY, "bye");
        assert_eq!(r.total_queued_bytes(), 0);
    }

    #[test]
    fn limits_refuse_connections_and_evict_idle_sessions() {
        let cfg = Config {
            max_connections: 2,
            max_sessions: 2,
            ..Config::default()
        };
        let mut r = Relay::new(cfg).expect("valid config");
        // Session "a" keeps a log, then goes idle.
        r.handle_connect(ConnId(1), "a");
        r.handle_text(ConnId(1), &announce("hero-1", "hero", "online"), NOW);
        r.handle_text(ConnId(1), CLEAR, NOW);
        r.handle_close(ConnId(1), NOW);
        r.handle_connect(ConnId(2), "b");
        r.handle_connect(ConnId(3), "c"); // evicts idle "a"
        assert!(r.log("a").is_none());
        assert_eq!(r.stats().sessions_evicted, 1);
        r.handle_connect(ConnId(4), "b");
        let (_, closes) = drain(&mut r);
        assert_eq!(closes, vec![(4, close::TRY_AGAIN_LATER)]);
        r.handle_close(ConnId(2), NOW);
        r.handle_connect(ConnId(5), "d"); // "b" was dropped when it went idle (no log)
        r.handle_connect(ConnId(6), &"s".repeat(300));
        let (_, closes) = drain(&mut r);
        assert_eq!(closes, vec![(6, close::POLICY)]);
        assert_eq!(r.connection_count(), 2);
    }

    #[test]
    fn the_total_log_bound_evicts_idle_sessions_first() {
        let cfg = Config {
            max_log_bytes: 4096,
            max_total_log_bytes: 6000,
            ..Config::default()
        };
        let mut r = Relay::new(cfg).expect("valid config");
        let fill = |r: &mut Relay, conn: u64, session: &str| {
            r.handle_connect(ConnId(conn), session);
            r.handle_text(
                ConnId(conn),
                &announce(&format!("hero-{conn}"), "hero", "online"),
                NOW,
            );
            r.handle_text(ConnId(conn), CLEAR, NOW);
            for i in 0..30 {
                let f = format!(
                    r#"{{"component":"label","type":"spawn","target":"l{i}","payload":{{}}}}"#
                );
                r.handle_text(ConnId(conn), &f, NOW);
            }
        };
        fill(&mut r, 1, "a");
        r.handle_close(ConnId(1), NOW);
        let a = r.log("a").map(Log::bytes).expect("valid config");
        assert!(a > 3000, "{a}");
        fill(&mut r, 2, "b");
        assert!(r.log("a").is_none(), "idle 'a' evicted for 'b'");
        assert!(r.log_bytes() <= 6000);
        fill(&mut r, 3, "c");
        // 'b' has a connection: 'c' stops logging instead.
        assert!(r.log("b").is_some_and(|l| l.is_known()));
        assert!(r.log("c").is_some_and(|l| l.is_suspended()));
        assert!(r.log_bytes() <= 6000);
    }

    #[test]
    fn shutdown_closes_everyone_without_offlines() {
        let mut r = pair();
        r.handle_shutdown(close::GOING_AWAY, "server shutting down");
        let (sends, closes) = drain(&mut r);
        assert!(sends.is_empty());
        assert_eq!(closes, vec![(1, close::GOING_AWAY), (2, close::GOING_AWAY)]);
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(
            Relay::new(Config {
                max_connections: 0,
                ..Config::default()
            })
            .is_err()
        );
        let err = Relay::new(Config {
            max_queue_bytes: 1 << 20,
            ..Config::default()
        });
        assert!(matches!(err, Err(ConfigError::QueueTooSmall { .. })));
        let err = Relay::new(Config {
            max_total_queue_bytes: (16 << 20) - 1,
            ..Config::default()
        });
        assert!(matches!(err, Err(ConfigError::TotalQueueTooSmall { .. })));
    }
}
