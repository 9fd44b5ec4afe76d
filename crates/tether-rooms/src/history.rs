//! Room history: every room message gets an offset in its room's epoch and is kept in a bounded
//! ring, so that a member that comes back with its last position gets exactly what it missed
//! (or is told to resync when that is gone). Sans-IO: the time comes in as `now`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{ErrorCode, HubError};
use crate::name::Name;

/// Bytes a kept message is counted for besides its text and sender's name.
pub const STORED_OVERHEAD: usize = 48;

/// Longest accepted epoch, in characters (ours are 8).
pub const MAX_EPOCH_LEN: usize = 64;

/// A place in a room's stream of messages: the offset of the last message seen, in an epoch.
/// Offsets start at 1; a room that never had a message is at offset 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The last offset seen.
    pub offset: u64,
    /// The epoch it belongs to; a different epoch means that history was lost in between.
    pub epoch: Arc<str>,
}

impl Position {
    /// A position from a client: the epoch must be 1–64 characters of `A–Z a–z 0–9 _ -`.
    pub fn parse(offset: u64, epoch: &str) -> Result<Position, HubError> {
        let ok = !epoch.is_empty()
            && epoch.len() <= MAX_EPOCH_LEN
            && epoch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !ok {
            return Err(HubError::new(
                ErrorCode::BadSyntax,
                format!(
                    "invalid epoch '{}': use 1-{MAX_EPOCH_LEN} characters from A-Z a-z 0-9 _ -",
                    crate::name::truncate_for_message(epoch)
                ),
            ));
        }
        Ok(Position {
            offset,
            epoch: Arc::from(epoch),
        })
    }
}

/// One kept room message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its offset in the room's epoch.
    pub offset: u64,
    /// The sender.
    pub from: Name,
    /// The text.
    pub text: Arc<str>,
    /// When it was appended (what the age bound counts from).
    pub at: Instant,
}

impl Stored {
    /// What the byte bound counts it for.
    pub fn bytes(&self) -> usize {
        STORED_OVERHEAD + self.from.as_str().len() + self.text.len()
    }
}

/// How much history one room keeps; the oldest message goes when any bound is passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Messages at most (0: no history, offsets still count).
    pub messages: usize,
    /// Age at most.
    pub age: Duration,
    /// Bytes at most (each message counts its text, sender and [`STORED_OVERHEAD`]).
    pub bytes: usize,
}

impl Default for HistoryLimits {
    /// 100 messages, 5 minutes, 64 KiB: a reconnect after a network blip or a deploy recovers,
    /// and 1,000 rooms hold at most 64 MiB.
    fn default() -> Self {
        HistoryLimits {
            messages: 100,
            age: Duration::from_secs(300),
            bytes: 64 * 1024,
        }
    }
}

/// History limits per room: rules matched by room name (exact, `prefix*`, or `*`), the most
/// specific winning (exact, then the longest prefix), else the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Limits for rooms no rule matches.
    pub default: HistoryLimits,
    /// `(pattern, limits)`.
    pub rules: Vec<(String, HistoryLimits)>,
}

impl HistoryPolicy {
    /// The limits for `room`.
    pub fn limits_for(&self, room: &str) -> HistoryLimits {
        let mut best: Option<(usize, HistoryLimits)> = None;
        for (pattern, limits) in &self.rules {
            let rank = match pattern.strip_suffix('*') {
                None if pattern == room => usize::MAX,
                None => continue,
                Some(prefix) if room.starts_with(prefix) => prefix.len(),
                Some(_) => continue,
            };
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, *limits));
            }
        }
        best.map_or(self.default, |(_, l)| l)
    }

    /// Checks a pattern: a room name, optionally ending with `*`, or `*` alone.
    pub fn check_pattern(pattern: &str) -> Result<(), HubError> {
        match pattern.strip_suffix('*') {
            Some("") => Ok(()),
            Some(prefix) => Name::parse(prefix).map(drop),
            None => Name::parse(pattern).map(drop),
        }
    }
}

/// What a join with a position gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Every message after the position, in order (possibly none).
    Recovered(Vec<Stored>),
    /// The gap is gone (trimmed, another epoch, or a position ahead of the room): the client must
    /// reload its state and go on from the room's current position.
    Resync,
}

/// One room's epoch, top offset and kept messages. The messages are contiguous and end at `top`.
#[derive(Debug)]
pub(crate) struct Ring {
    epoch: Arc<str>,
    top: u64,
    entries: VecDeque<Stored>,
    bytes: usize,
    limits: HistoryLimits,
}

impl Ring {
    pub(crate) fn new(epoch: Arc<str>, limits: HistoryLimits) -> Ring {
        Ring {
            epoch,
            top: 0,
            entries: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    /// The room's current position.
    pub(crate) fn position(&self) -> Position {
        Position {
            offset: self.top,
            epoch: self.epoch.clone(),
        }
    }

    /// Moves the kept messages and the top to another epoch.
    pub(crate) fn set_epoch(&mut self, epoch: Arc<str>) {
        self.epoch = epoch;
    }

    pub(crate) fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// Keeps a message at `offset` in `epoch`: the next offset continues the ring; a gap, or
    /// another epoch, starts it afresh from there (what came before cannot be proven contiguous);
    /// an offset at or below the top is a late duplicate and is ignored (false).
    pub(crate) fn append(&mut self, epoch: &Arc<str>, stored: Stored, now: Instant) -> bool {
        if *epoch != self.epoch {
            self.epoch = epoch.clone();
            self.clear();
        } else if stored.offset <= self.top {
            return false;
        } else if stored.offset != self.top + 1 {
            self.clear();
        }
        self.top = stored.offset;
        if self.limits.messages > 0 {
            self.bytes += stored.bytes();
            self.entries.push_back(stored);
        }
        self.trim(now);
        true
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Drops what is past any bound (the oldest first).
    pub(crate) fn trim(&mut self, now: Instant) {
        let l = self.limits;
        while let Some(first) = self.entries.front() {
            let old = now.saturating_duration_since(first.at) > l.age;
            if self.entries.len() > l.messages || self.bytes > l.bytes || old {
                self.bytes -= first.bytes();
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }

    /// The kept messages not older than the age bound at `now`, oldest first.
    pub(crate) fn window(&self, now: Instant) -> impl DoubleEndedIterator<Item = &Stored> {
        let age = self.limits.age;
        self.entries
            .iter()
            .filter(move |s| now.saturating_duration_since(s.at) <= age)
    }

    /// What a member coming back at `since` gets.
    pub(crate) fn recover(&self, since: &Position, now: Instant) -> Recovery {
        if since.epoch != self.epoch || since.offset > self.top {
            return Recovery::Resync;
        }
        if since.offset == self.top {
            return Recovery::Recovered(Vec::new());
        }
        let missed: Vec<Stored> = self
            .window(now)
            .filter(|s| s.offset > since.offset)
            .cloned()
            .collect();
        // Contiguous from the position to the top, or nothing.
        match missed.first() {
            Some(first) if first.offset == since.offset + 1 => Recovery::Recovered(missed),
            _ => Recovery::Resync,
        }
    }

    /// Restores a ring read back from storage: `messages` oldest first, the last at most `top`.
    pub(crate) fn restore(
        &mut self,
        epoch: Arc<str>,
        top: u64,
        messages: Vec<Stored>,
        now: Instant,
    ) {
        self.epoch = epoch;
        self.clear();
        self.top = 0;
        for m in messages {
            if m.offset <= top {
                let e = self.epoch.clone();
                self.append(&e, m, now);
            }
        }
        if self.top != top {
            // The kept messages do not reach the top: they are not contiguous with it.
            self.clear();
            self.top = top;
        }
    }
}

/// Makes epochs: 8 lowercase letters, different for every room and every process (the seed).
#[derive(Debug)]
pub(crate) struct Epochs {
    state: u64,
}

impl Epochs {
    pub(crate) fn new(seed: u64) -> Epochs {
        Epochs { state: seed }
    }

    /// A seed that differs per process, without I/O: std's hasher keys are random per process.
    pub(crate) fn random_seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x7e7_4e5);
        h.finish()
    }

    pub(crate) fn next(&mut self) -> Arc<str> {
        // splitmix64: every step a different, well-mixed value.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let s: String = (0..8)
            .map(|i| char::from(b'a' + ((z >> (i * 8)) % 26) as u8))
            .collect();
        Arc::from(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: u64, at: Instant, text: &str) -> Stored {
        Stored {
            offset,
            from: Name::parse("bob").unwrap(),
            text: Arc::from(text),
            at,
        }
    }

    fn ring(limits: HistoryLimits) -> Ring {
        Ring::new(Arc::from("epocha"), limits)
    }

    fn fill(r: &mut Ring, n: u64, now: Instant) {
        let e = r.epoch().clone();
        for i in 1..=n {
            assert!(r.append(&e, msg(r.position().offset + 1, now, &format!("m{i}")), now));
        }
    }

    fn pos(offset: u64, epoch: &str) -> Position {
        Position::parse(offset, epoch).unwrap()
    }

    fn offsets(rec: &Recovery) -> Option<Vec<u64>> {
        match rec {
            Recovery::Recovered(v) => Some(v.iter().map(|s| s.offset).collect()),
            Recovery::Resync => None,
        }
    }

    #[test]
    fn recovery_gives_exactly_the_missed_messages_or_resync() {
        let now = Instant::now();
        let mut r = ring(HistoryLimits::default());
        fill(&mut r, 10, now);
        assert_eq!(r.position().offset, 10);
        assert_eq!(
            offsets(&r.recover(&pos(7, "epocha"), now)),
            Some(vec![8, 9, 10])
        );
        assert_eq!(
            offsets(&r.recover(&pos(0, "epocha"), now)),
            Some((1..=10).collect())
        );
        // At the top: recovered with nothing.
        assert_eq!(offsets(&r.recover(&pos(10, "epocha"), now)), Some(vec![]));
        // Ahead of the top, another epoch: resync.
        assert_eq!(offsets(&r.recover(&pos(11, "epocha"), now)), None);
        assert_eq!(offsets(&r.recover(&pos(7, "epochb"), now)), None);
    }

    #[test]
    fn count_bound_trims_the_oldest_and_older_positions_resync() {
        let now = Instant::now();
        let mut r = ring(HistoryLimits {
            messages: 5,
            ..HistoryLimits::default()
        });
        fill(&mut r, 12, now);
        assert_eq!(
            r.window(now).map(|s| s.offset).collect::<Vec<_>>(),
            [8, 9, 10, 11, 12]
        );
        assert_eq!(
            offsets(&r.recover(&pos(7, "epocha"), now)),
            Some(vec![8, 9, 10, 11, 12])
        );
        assert_eq!(
            offsets(&r.recover(&pos(6, "epocha"), now)),
            None,
            "offset 7 is gone"
        );
    }

    #[test]
    fn byte_bound_trims_the_oldest() {
        let now = Instant::now();
        let one = msg(1, now, "0123456789").bytes();
        let mut r = ring(HistoryLimits {
            bytes: one * 3,
            ..HistoryLimits::default()
        });
        let e = r.epoch().clone();
        for o in 1..=5 {
            r.append(&e, msg(o, now, "0123456789"), now);
        }
        assert_eq!(
            r.window(now).map(|s| s.offset).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(r.bytes, one * 3);
        assert_eq!(offsets(&r.recover(&pos(1, "epocha"), now)), None);
        assert_eq!(
            offsets(&r.recover(&pos(2, "epocha"), now)),
            Some(vec![3, 4, 5])
        );
    }

    #[test]
    fn age_bound_expires_messages_but_keeps_the_top() {
        let t0 = Instant::now();
        let mut r = ring(HistoryLimits {
            age: Duration::from_secs(10),
            ..HistoryLimits::default()
        });
        let e = r.epoch().clone();
        r.append(&e, msg(1, t0, "a"), t0);
        r.append(
            &e,
            msg(2, t0 + Duration::from_secs(5), "b"),
            t0 + Duration::from_secs(5),
        );
        let t = t0 + Duration::from_secs(12);
        // Offset 1 is past its age at t even before any trim: reads skip it.
        assert_eq!(offsets(&r.recover(&pos(0, "epocha"), t)), None);
        assert_eq!(offsets(&r.recover(&pos(1, "epocha"), t)), Some(vec![2]));
        let later = t0 + Duration::from_secs(60);
        r.trim(later);
        assert_eq!(r.entries.len(), 0);
        // Everything expired, yet a client at the top is recovered with nothing.
        assert_eq!(offsets(&r.recover(&pos(2, "epocha"), later)), Some(vec![]));
        assert_eq!(offsets(&r.recover(&pos(1, "epocha"), later)), None);
    }

    #[test]
    fn gaps_duplicates_and_epoch_changes_keep_the_ring_contiguous() {
        let now = Instant::now();
        let mut r = ring(HistoryLimits::default());
        fill(&mut r, 3, now);
        let e = r.epoch().clone();
        assert!(!r.append(&e, msg(2, now, "dup"), now), "a late duplicate");
        assert!(r.append(&e, msg(6, now, "after a gap"), now));
        assert_eq!(
            offsets(&r.recover(&pos(3, "epocha"), now)),
            None,
            "4 and 5 never came"
        );
        assert_eq!(offsets(&r.recover(&pos(5, "epocha"), now)), Some(vec![6]));
        let other: Arc<str> = Arc::from("epochb");
        assert!(r.append(&other, msg(1, now, "new epoch"), now));
        assert_eq!(r.position(), pos(1, "epochb"));
        assert_eq!(offsets(&r.recover(&pos(0, "epochb"), now)), Some(vec![1]));
    }

    #[test]
    fn restore_keeps_only_what_reaches_the_top() {
        let now = Instant::now();
        let mut r = ring(HistoryLimits::default());
        r.restore(
            Arc::from("saved"),
            5,
            vec![msg(4, now, "d"), msg(5, now, "e")],
            now,
        );
        assert_eq!(r.position(), pos(5, "saved"));
        assert_eq!(offsets(&r.recover(&pos(3, "saved"), now)), Some(vec![4, 5]));
        r.restore(
            Arc::from("saved"),
            9,
            vec![msg(4, now, "d"), msg(5, now, "e")],
            now,
        );
        assert_eq!(r.position(), pos(9, "saved"));
        assert_eq!(offsets(&r.recover(&pos(5, "saved"), now)), None);
        assert_eq!(offsets(&r.recover(&pos(9, "saved"), now)), Some(vec![]));
    }

    #[test]
    fn policy_picks_the_most_specific_rule() {
        let l = |messages| HistoryLimits {
            messages,
            ..HistoryLimits::default()
        };
        let p = HistoryPolicy {
            default: l(1),
            rules: vec![
                ("*".into(), l(2)),
                ("chat-*".into(), l(3)),
                ("chat-vip*".into(), l(4)),
                ("chat-vip".into(), l(5)),
            ],
        };
        assert_eq!(p.limits_for("main").messages, 2);
        assert_eq!(p.limits_for("chat-x").messages, 3);
        assert_eq!(p.limits_for("chat-vips").messages, 4);
        assert_eq!(p.limits_for("chat-vip").messages, 5);
        assert_eq!(
            HistoryPolicy::default().limits_for("x"),
            HistoryLimits::default()
        );
        assert!(HistoryPolicy::check_pattern("chat-*").is_ok());
        assert!(HistoryPolicy::check_pattern("*").is_ok());
        assert!(HistoryPolicy::check_pattern("a b*").is_err());
    }

    #[test]
    fn epochs_differ_per_room_and_per_seed() {
        let mut a = Epochs::new(1);
        let mut b = Epochs::new(2);
        let (a1, a2, b1) = (a.next(), a.next(), b.next());
        assert_ne!(a1, a2);
        assert_ne!(a1, b1);
        assert_eq!(a1.len(), 8);
        assert!(Position::parse(1, &a1).is_ok());
        assert!(Position::parse(1, "bad epoch").is_err());
        assert!(Position::parse(1, "").is_err());
    }
}
