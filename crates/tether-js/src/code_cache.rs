//! [`CodeCache`]: compiled scripts kept per isolate, so evaluating the same source again skips
//! QuickJS's parser and compiler (most of the cost of a small `eval`). A least-recently-used
//! map bounded in entries and in bytes; it holds whatever the isolate stores (a compiled
//! function) and hands back what it evicts, for the isolate to free in its engine. A source is
//! admitted the second time it is compiled (a bounded set of recent sources' hashes remembers
//! the first), so one-off sources (`x = 1`, `x = 2`, …) cost a hash instead of a cache
//! insert and an eviction each, and do not push out the sources that repeat.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::rc::Rc;

/// How much compiled code a runtime keeps, so repeated `eval`s of one source skip compiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeCacheLimits {
    /// Most scripts kept (0 turns the cache off).
    pub max_entries: usize,
    /// Most bytes kept: source, file name and bytecode as QuickJS serializes it, plus a fixed
    /// cost per entry (0 turns the cache off).
    pub max_bytes: usize,
}

impl CodeCacheLimits {
    /// The default: 256 scripts, 1 MiB.
    pub const DEFAULT: CodeCacheLimits = CodeCacheLimits {
        max_entries: 256,
        max_bytes: 1 << 20,
    };

    /// No caching: every `eval` compiles its source.
    pub const OFF: CodeCacheLimits = CodeCacheLimits {
        max_entries: 0,
        max_bytes: 0,
    };

    /// Whether anything can be cached.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0 && self.max_bytes > 0
    }
}

impl Default for CodeCacheLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What every entry costs besides its source, file name and bytecode (map slots, key, order).
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// One compiled script: which file name and compile flags it was compiled with, and when it
/// was last used.
struct Slot<V> {
    filename: Rc<str>,
    flags: i32,
    value: V,
    bytes: usize,
    /// Clock reading of the last use.
    used: u64,
    /// Clock reading this slot is filed under in `order` (≤ `used`).
    filed: u64,
}

/// Counters a runtime reports, so hosts can see whether repeated sources hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeCacheCounters {
    /// Evaluations that ran cached bytecode.
    pub hits: u64,
    /// Evaluations that compiled their source.
    pub misses: u64,
    /// Scripts dropped to stay within the limits.
    pub evictions: u64,
    /// Bytes held now.
    pub bytes: u64,
    /// Scripts held now.
    pub entries: u64,
}

/// The cache: by source text, then by file name and flags (one source is rarely compiled under
/// several names). A hit only stamps its slot; eviction pops the oldest filing and re-files a
/// slot used since (so hits stay O(1) and eviction is exact LRU).
pub(crate) struct CodeCache<V> {
    limits: CodeCacheLimits,
    /// Hashes of sources compiled once and not (yet) admitted, oldest first in `seen_order`;
    /// at most [`Self::seen_cap`].
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    hasher: RandomState,
    by_source: HashMap<Rc<str>, Vec<Slot<V>>>,
    order: BTreeMap<u64, (Rc<str>, Rc<str>, i32)>,
    clock: u64,
    counters: CodeCacheCounters,
    bytes: usize,
    entries: usize,
}

impl<V> CodeCache<V> {
    pub(crate) fn new(limits: CodeCacheLimits) -> Self {
        CodeCache {
            limits,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            hasher: RandomState::new(),
            by_source: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            counters: CodeCacheCounters::default(),
            bytes: 0,
            entries: 0,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.limits.enabled()
    }

    /// The compiled script for this source, file name and flags (counted as a hit).
    pub(crate) fn get(&mut self, source: &str, filename: &str, flags: i32) -> Option<&V> {
        let slots = self.by_source.get_mut(source)?;
        let slot = slots
            .iter_mut()
            .find(|s| s.flags == flags && &*s.filename == filename)?;
        self.clock += 1;
        slot.used = self.clock;
        self.counters.hits += 1;
        Some(&slot.value)
    }

    /// Counts an evaluation that compiled its source.
    pub(crate) fn miss(&mut self) {
        self.counters.misses += 1;
    }

    /// How many first-seen sources are remembered (twice the entries: a source that repeats
    /// within that many other one-off sources gets in).
    fn seen_cap(&self) -> usize {
        self.limits.max_entries.saturating_mul(2)
    }

    /// Whether a source that missed should be compiled into the cache: yes the second time it
    /// is seen (recently); the first time it is only remembered.
    pub(crate) fn admit(&mut self, source: &str, filename: &str, flags: i32) -> bool {
        if !self.enabled() {
            return false;
        }
        let h = self.hasher.hash_one((source, filename, flags));
        if self.seen.remove(&h) {
            if let Some(i) = self.seen_order.iter().rposition(|x| *x == h) {
                self.seen_order.remove(i);
            }
            return true;
        }
        if self.seen_order.len() >= self.seen_cap() {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(h);
        self.seen_order.push_back(h);
        false
    }

    /// Keeps a compiled script of `bytes` bytes (source and name included); returns what
    /// left the cache to make room, or `value` itself when it can never fit.
    pub(crate) fn insert(
        &mut self,
        source: &str,
        filename: &str,
        flags: i32,
        value: V,
        bytes: usize,
    ) -> Vec<V> {
        if !self.enabled() || bytes > self.limits.max_bytes {
            return vec![value];
        }
        let mut out = Vec::new();
        if let Some(old) = self.remove(source, filename, flags) {
            out.push(old);
        }
        while self.entries + 1 > self.limits.max_entries
            || self.bytes + bytes > self.limits.max_bytes
        {
            match self.evict_oldest() {
                Some(v) => out.push(v),
                None => break,
            }
        }
        self.clock += 1;
        let stamp = self.clock;
        let (source, filename): (Rc<str>, Rc<str>) = (source.into(), filename.into());
        self.order
            .insert(stamp, (source.clone(), filename.clone(), flags));
        self.by_source.entry(source).or_default().push(Slot {
            filename,
            flags,
            value,
            bytes,
            used: stamp,
            filed: stamp,
        });
        self.bytes += bytes;
        self.entries += 1;
        out
    }

    /// Removes the least recently used script.
    fn evict_oldest(&mut self) -> Option<V> {
        while let Some((stamp, (source, filename, flags))) = self.order.pop_first() {
            let Some(slots) = self.by_source.get_mut(&*source) else {
                continue;
            };
            let Some(i) = slots
                .iter()
                .position(|s| s.flags == flags && s.filename == filename && s.filed == stamp)
            else {
                continue;
            };
            if slots[i].used > stamp {
                // Used since it was filed: file it again under its last use.
                let used = slots[i].used;
                slots[i].filed = used;
                self.order.insert(used, (source, filename, flags));
                continue;
            }
            let slot = slots.swap_remove(i);
            if slots.is_empty() {
                self.by_source.remove(&*source);
            }
            self.bytes -= slot.bytes;
            self.entries -= 1;
            self.counters.evictions += 1;
            return Some(slot.value);
        }
        None
    }

    fn remove(&mut self, source: &str, filename: &str, flags: i32) -> Option<V> {
        let slots = self.by_source.get_mut(source)?;
        let i = slots
            .iter()
            .position(|s| s.flags == flags && &*s.filename == filename)?;
        let slot = slots.swap_remove(i);
        if slots.is_empty() {
            self.by_source.remove(source);
        }
        self.order.remove(&slot.filed);
        self.bytes -= slot.bytes;
        self.entries -= 1;
        Some(slot.value)
    }

    /// Empties the cache, handing back every value (to free them before the engine goes).
    pub(crate) fn drain(&mut self) -> Vec<V> {
        self.order.clear();
        self.seen.clear();
        self.seen_order.clear();
        self.bytes = 0;
        self.entries = 0;
        self.by_source
            .drain()
            .flat_map(|(_, slots)| slots.into_iter().map(|s| s.value))
            .collect()
    }

    /// Hits, misses, evictions and what is held now.
    pub(crate) fn counters(&self) -> CodeCacheCounters {
        CodeCacheCounters {
            bytes: self.bytes as u64,
            entries: self.entries as u64,
            ..self.counters
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: usize, bytes: usize) -> CodeCache<u32> {
        CodeCache::new(CodeCacheLimits {
            max_entries: entries,
            max_bytes: bytes,
        })
    }

    #[test]
    fn a_hit_needs_the_same_source_name_and_flags() {
        let mut c = cache(8, 1000);
        assert!(c.insert("1+1", "<eval>", 0, 7, 10).is_empty());
        assert_eq!(c.get("1+1", "<eval>", 0), Some(&7));
        assert_eq!(c.get("1+1", "<other>", 0), None);
        assert_eq!(c.get("1+1", "<eval>", 1), None);
        assert_eq!(c.get("1+2", "<eval>", 0), None);
        c.miss();
        let n = c.counters();
        assert_eq!((n.hits, n.misses, n.entries, n.bytes), (1, 1, 1, 10));
    }

    #[test]
    fn the_least_recently_used_goes_first() {
        let mut c = cache(2, 1000);
        assert!(c.insert("a", "f", 0, 1, 10).is_empty());
        assert!(c.insert("b", "f", 0, 2, 10).is_empty());
        // Using "a" makes "b" the oldest.
        assert_eq!(c.get("a", "f", 0), Some(&1));
        assert_eq!(c.insert("c", "f", 0, 3, 10), vec![2]);
        assert_eq!(c.get("b", "f", 0), None);
        assert_eq!(c.get("a", "f", 0), Some(&1));
        assert_eq!(c.get("c", "f", 0), Some(&3));
        assert_eq!(c.counters().evictions, 1);
        assert_eq!(c.counters().entries, 2);
    }

    #[test]
    fn bytes_stay_within_the_bound() {
        let mut c = cache(100, 100);
        let mut evicted = 0;
        for i in 0..50 {
            evicted += c.insert(&format!("s{i}"), "f", 0, i, 30).len();
            assert!(c.counters().bytes <= 100, "{:?}", c.counters());
        }
        assert_eq!(c.counters().entries, 3);
        assert_eq!(evicted, 47);
        assert_eq!(c.counters().evictions, 47);
        // Never fits: handed straight back, nothing evicted for it.
        assert_eq!(c.insert("huge", "f", 0, 99, 101), vec![99]);
        assert_eq!(c.counters().entries, 3);
    }

    #[test]
    fn reinserting_replaces_and_drain_returns_everything() {
        let mut c = cache(4, 1000);
        assert!(c.insert("a", "f", 0, 1, 10).is_empty());
        assert_eq!(c.insert("a", "f", 0, 2, 20), vec![1]);
        assert_eq!(c.get("a", "f", 0), Some(&2));
        assert_eq!(c.counters().bytes, 20);
        assert!(c.insert("a", "g", 0, 3, 10).is_empty());
        let mut all = c.drain();
        all.sort();
        assert_eq!(all, vec![2, 3]);
        assert_eq!(c.counters().entries, 0);
        assert_eq!(c.counters().bytes, 0);
    }

    #[test]
    fn off_keeps_nothing() {
        let mut c = cache(0, 1000);
        assert_eq!(c.insert("a", "f", 0, 1, 10), vec![1]);
        assert_eq!(c.get("a", "f", 0), None);
        let mut c = cache(10, 0);
        assert_eq!(c.insert("a", "f", 0, 1, 10), vec![1]);
    }

    #[test]
    fn a_source_is_admitted_the_second_time() {
        let mut c = cache(2, 1000);
        assert!(!c.admit("a", "f", 0));
        assert!(!c.admit("a", "g", 0));
        assert!(c.admit("a", "f", 0));
        // Remembered sources are bounded (2 × entries); the oldest is forgotten first.
        for i in 0..4 {
            assert!(!c.admit(&format!("s{i}"), "f", 0));
        }
        assert!(c.seen.len() <= 4 && c.seen_order.len() <= 4);
        assert!(!c.admit("a", "g", 0));
        assert!(c.admit("s3", "f", 0));
        assert!(!cache(0, 1000).admit("a", "f", 0));
    }

    #[test]
    fn many_hits_between_evictions_keep_order_small() {
        let mut c = cache(3, 1000);
        for i in 0..3 {
            c.insert(&format!("s{i}"), "f", 0, i, 1);
        }
        for _ in 0..1000 {
            c.get("s0", "f", 0);
            c.get("s1", "f", 0);
        }
        assert_eq!(c.order.len(), 3);
        assert_eq!(c.insert("s3", "f", 0, 3, 1), vec![2]);
        assert_eq!(c.order.len(), 3);
    }
}
