//! Presence coalescing: a room's join and leave events are gathered and handed out as one batch
//! per tick, so a storm of joins costs every member one queue item per tick instead of one per
//! join, and the hub's work per tick is one pass over the room instead of one per event.

use std::time::{Duration, Instant};

use crate::event::Push;

/// Shortest time between two presence batches of one room (the tick of rooms up to 2,500
/// members). An event in a room that has had no batch for a tick goes out at once (no added
/// delay in quiet rooms); later ones wait for the tick. 50 ms is below what a person notices in a
/// member list, and caps a storm at 20 queue items a second per member (the default queue of
/// 1,024 items lasts 51 s of storm). Measured with 10,000 joins (`bench/fanout/join-storm.sh`):
/// against 20 ms it sends a quarter of the batch frames and halves the server's CPU for batch
/// clients; against 5 ms, a thirteenth of the frames.
pub const PRESENCE_TICK: Duration = Duration::from_millis(50);

/// How much a room's tick grows per member: a batch costs about one socket write per member (a
/// few µs each, the kernel's TCP path included), so 20 µs per member keeps a big room's presence
/// writes to a fraction of a core. A 10,000-member room gets a batch at most every 200 ms;
/// measured with 10,000 joins, this halved the server's CPU against a fixed 50 ms tick.
pub const PRESENCE_TICK_PER_MEMBER: Duration = Duration::from_micros(20);

/// Longest tick, however big the room (reached at 50,000 members).
pub const PRESENCE_TICK_MAX: Duration = Duration::from_secs(1);

/// The tick of a room with `members` members: [`PRESENCE_TICK`], or
/// [`PRESENCE_TICK_PER_MEMBER`] per member when that is longer, at most [`PRESENCE_TICK_MAX`].
pub fn presence_tick(members: usize) -> Duration {
    let members = u32::try_from(members).unwrap_or(u32::MAX);
    PRESENCE_TICK_PER_MEMBER
        .saturating_mul(members)
        .clamp(PRESENCE_TICK, PRESENCE_TICK_MAX)
}

/// Most events one batch holds; a full batch goes out before the tick. Bounds one queue item
/// (a few hundred bytes per event with the longest names, about 150 KiB a batch), so a member's
/// queue stays bounded in bytes, not only in items, while 256 still covers 5,120 events a second
/// per room in one batch per tick.
pub const PRESENCE_BATCH_MAX: usize = 256;

/// What the hub must do after an event was recorded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Hand the batch out now.
    Now,
    /// Hand it out at this time (the hub arms its timer).
    At(Instant),
    /// The batch is already scheduled.
    Wait,
}

/// One room's presence events not yet handed out, numbered so that a member that joined while
/// they gathered sees only those after its own join.
#[derive(Default)]
pub(crate) struct Gather {
    /// Number of the next event.
    next: u64,
    /// Events not handed out, oldest first; the first is number `next - pending.len()`.
    pending: Vec<Push>,
    /// When the last batch went out.
    last_batch: Option<Instant>,
    /// When the pending batch is due, while it waits for the tick.
    due: Option<Instant>,
}

impl Gather {
    /// The number the next event gets: a membership starting now sees events from it on.
    pub fn next_number(&self) -> u64 {
        self.next
    }

    /// When the pending batch is due, if it waits for the tick.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Records an event in a room of `members` members and says when the batch must go out.
    pub fn record(&mut self, push: Push, now: Instant, members: usize) -> Next {
        self.pending.push(push);
        self.next += 1;
        if self.pending.len() >= PRESENCE_BATCH_MAX {
            return Next::Now;
        }
        if self.due.is_some() {
            return Next::Wait;
        }
        let at = self
            .last_batch
            .and_then(|last| last.checked_add(presence_tick(members)));
        match at {
            Some(at) if now < at => {
                self.due = Some(at);
                Next::At(at)
            }
            _ => Next::Now,
        }
    }

    /// Takes the pending events and the number of the first, as the batch that goes out `now`.
    /// The deadline is cleared either way (the caller forgets it too).
    pub fn take(&mut self, now: Instant) -> Option<(u64, Vec<Push>)> {
        self.due = None;
        if self.pending.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut self.pending);
        self.last_batch = Some(now);
        Some((self.next - events.len() as u64, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Name;

    fn join(c: &str) -> Push {
        Push::Join {
            room: Name::parse("main").unwrap(),
            client: Name::parse(c).unwrap(),
        }
    }

    #[test]
    fn big_rooms_get_a_longer_tick() {
        assert_eq!(presence_tick(0), PRESENCE_TICK);
        assert_eq!(presence_tick(2_500), PRESENCE_TICK);
        assert_eq!(presence_tick(10_000), Duration::from_millis(200));
        assert_eq!(presence_tick(50_000), PRESENCE_TICK_MAX);
        assert_eq!(presence_tick(usize::MAX), PRESENCE_TICK_MAX);
        let t0 = Instant::now();
        let mut g = Gather::default();
        assert_eq!(g.record(join("a"), t0, 10_000), Next::Now);
        g.take(t0);
        assert_eq!(
            g.record(join("b"), t0 + PRESENCE_TICK, 10_000),
            Next::At(t0 + Duration::from_millis(200))
        );
    }

    #[test]
    fn quiet_rooms_flush_at_once_and_busy_ones_wait_for_the_tick() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        assert_eq!(g.record(join("a"), t0, 2), Next::Now);
        assert_eq!(g.take(t0), Some((0, vec![join("a")])));
        // Within the tick: scheduled at last batch + tick, then gathered.
        let t1 = t0 + PRESENCE_TICK / 2;
        assert_eq!(g.record(join("b"), t1, 2), Next::At(t0 + PRESENCE_TICK));
        assert_eq!(g.record(join("c"), t1, 2), Next::Wait);
        assert_eq!(g.due(), Some(t0 + PRESENCE_TICK));
        assert_eq!(
            g.take(t0 + PRESENCE_TICK),
            Some((1, vec![join("b"), join("c")]))
        );
        assert_eq!(g.due(), None);
        assert_eq!(g.next_number(), 3);
        // A tick after the last batch: at once again.
        assert_eq!(g.record(join("d"), t0 + PRESENCE_TICK * 2, 2), Next::Now);
        assert_eq!(g.take(t0 + PRESENCE_TICK * 2).unwrap().0, 3);
        assert_eq!(g.take(t0 + PRESENCE_TICK * 2), None);
    }

    #[test]
    fn a_full_batch_goes_out_before_the_tick() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        assert_eq!(g.record(join("a"), t0, 2), Next::Now);
        g.take(t0);
        let mut nexts = Vec::new();
        for i in 0..PRESENCE_BATCH_MAX {
            nexts.push(g.record(join(&format!("c{i}")), t0, 2));
        }
        assert!(matches!(nexts[0], Next::At(_)));
        assert!(
            nexts[1..PRESENCE_BATCH_MAX - 1]
                .iter()
                .all(|n| *n == Next::Wait)
        );
        assert_eq!(nexts[PRESENCE_BATCH_MAX - 1], Next::Now);
        let (first, events) = g.take(t0).unwrap();
        assert_eq!((first, events.len()), (1, PRESENCE_BATCH_MAX));
    }
}
