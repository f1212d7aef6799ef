//! What the feed remembers of the trades it has seen, to know each again: their keys, the match
//! times heard live per identity (a repeated event is a duplicate, a new time takes the next
//! ordinal), and the match times of trades without a transaction hash (for backfill rows to
//! match). Only hashes and times stay — no string per trade ([`crate::key::IdentityDigest`]).
//!
//! Everything is kept in *generations*: the tables of one stretch of time, a quarter of the
//! retention long. A lookup asks the generations newest first; forgetting drops a whole
//! generation once the latest thing remembered in it is older than the horizon, so there is no
//! per-key time, no log of keys and no sweep over the tables. A thing is kept at least the
//! retention and at most a generation longer. An identity heard again moves to the newest
//! generation, so it outlives every key it gave.
//!
//! Per trade, in entries (16 bytes a key, 24 an identity's first match time, plus one control
//! byte each): a trade heard live with a hash keeps 42 bytes, a backfilled trade 17. Hash
//! tables run between 7/16 and 7/8 full, so the allocated figure is 1.1–2.3 times that
//! ([`Remembered::bytes`] adds it up from the tables' capacities).

use crate::key::{IdentityDigest, TradeKey};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;

/// The tables of one stretch of time.
#[derive(Debug)]
struct Generation {
    /// When its stretch began: the time of the first thing remembered in it.
    start_ms: i64,
    /// The latest time anything was remembered in it: it is forgotten after that.
    last_ms: i64,
    keys: FxHashSet<TradeKey>,
    /// Hashed WebSocket trades by identity: the first match time heard.
    first: FxHashMap<IdentityDigest, i64>,
    /// The match times after the first (identical fills), for the few identities with more.
    more: FxHashMap<IdentityDigest, Vec<i64>>,
    /// Trades without a hash by (token, side, price, size): their match times, each until a
    /// backfill row matches it.
    unhashed: FxHashMap<IdentityDigest, Vec<i64>>,
}

impl Generation {
    fn new(at_ms: i64) -> Generation {
        Generation {
            start_ms: at_ms,
            last_ms: at_ms,
            keys: FxHashSet::default(),
            first: FxHashMap::default(),
            more: FxHashMap::default(),
            unhashed: FxHashMap::default(),
        }
    }
}

/// The live match times of one identity, out of the memory while a trade is looked at.
#[derive(Debug, Default)]
pub(crate) struct Times {
    first: Option<i64>,
    more: Vec<i64>,
}

impl Times {
    /// How many times `ms` was heard.
    pub(crate) fn count(&self, ms: i64) -> usize {
        usize::from(self.first == Some(ms)) + self.more.iter().filter(|m| **m == ms).count()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    pub(crate) fn push(&mut self, ms: i64) {
        if self.first.is_none() {
            self.first = Some(ms);
        } else {
            self.more.push(ms);
        }
    }
}

/// What the feed remembers now: counts and the bytes its tables hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Remembered {
    pub keys: usize,
    /// Identities of hashed WebSocket trades.
    pub identities: usize,
    /// Match times of trades without a hash, not matched yet.
    pub unhashed: usize,
    pub generations: usize,
    /// Allocated by the tables, from their capacities (entries, control bytes, vectors).
    pub bytes: usize,
}

/// Keys, identities and unhashed match times by generation (see the module docs).
#[derive(Debug)]
pub(crate) struct Memory {
    gens: VecDeque<Generation>,
    /// How long one generation's stretch is.
    span_ms: i64,
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new(crate::feed::KEY_RETENTION_MS)
    }
}

impl Memory {
    /// A memory for things kept `retention_ms`: generations a quarter of that.
    pub(crate) fn new(retention_ms: i64) -> Memory {
        Memory {
            gens: VecDeque::new(),
            span_ms: (retention_ms / 4).max(1),
        }
    }

    /// The generation to remember things of `at_ms` in: the newest, or a new one when the
    /// newest's stretch is over.
    fn current(&mut self, at_ms: i64) -> &mut Generation {
        if self
            .gens
            .back()
            .is_none_or(|g| at_ms >= g.start_ms + self.span_ms)
        {
            self.gens.push_back(Generation::new(at_ms));
        }
        let g = self.gens.back_mut().expect("pushed just above if empty");
        g.last_ms = g.last_ms.max(at_ms);
        g
    }

    pub(crate) fn knows(&self, key: &TradeKey) -> bool {
        self.gens.iter().rev().any(|g| g.keys.contains(key))
    }

    /// Remembers a key not seen before; false when it was known.
    pub(crate) fn remember(&mut self, key: TradeKey, at_ms: i64) -> bool {
        if self.knows(&key) {
            return false;
        }
        self.current(at_ms).keys.insert(key);
        true
    }

    /// The live match times of an identity, taken out (none if unknown); give them back with
    /// [`Memory::put_times`].
    pub(crate) fn take_times(&mut self, d: IdentityDigest) -> Times {
        for g in self.gens.iter_mut().rev() {
            if let Some(first) = g.first.remove(&d) {
                return Times {
                    first: Some(first),
                    more: g.more.remove(&d).unwrap_or_default(),
                };
            }
        }
        Times::default()
    }

    /// An identity's match times, back into the newest generation (it is in use at `at_ms`).
    pub(crate) fn put_times(&mut self, d: IdentityDigest, times: Times, at_ms: i64) {
        let Some(first) = times.first else {
            return;
        };
        let g = self.current(at_ms);
        g.first.insert(d, first);
        if !times.more.is_empty() {
            g.more.insert(d, times.more);
        }
    }

    /// A trade without a hash, matched at `ms`, heard at `at_ms`.
    pub(crate) fn push_unhashed(&mut self, d: IdentityDigest, ms: i64, at_ms: i64) {
        self.current(at_ms).unhashed.entry(d).or_default().push(ms);
    }

    /// Takes the oldest match time of `d` that `fits`; false when none does.
    pub(crate) fn take_unhashed(&mut self, d: IdentityDigest, fits: impl Fn(i64) -> bool) -> bool {
        for g in self.gens.iter_mut() {
            let Some(times) = g.unhashed.get_mut(&d) else {
                continue;
            };
            if let Some(i) = times.iter().position(|ms| fits(*ms)) {
                times.remove(i);
                if times.is_empty() {
                    g.unhashed.remove(&d);
                }
                return true;
            }
        }
        false
    }

    /// Forgets the generations in which nothing was remembered since before `horizon_ms`.
    pub(crate) fn forget_before(&mut self, horizon_ms: i64) {
        while self.gens.front().is_some_and(|g| g.last_ms < horizon_ms) {
            self.gens.pop_front();
        }
    }

    pub(crate) fn remembered(&self) -> Remembered {
        let mut r = Remembered {
            generations: self.gens.len(),
            ..Remembered::default()
        };
        for g in &self.gens {
            r.keys += g.keys.len();
            r.identities += g.first.len();
            r.unhashed += g.unhashed.values().map(Vec::len).sum::<usize>();
            r.bytes += table_bytes(g.keys.capacity(), size_of::<TradeKey>())
                + table_bytes(g.first.capacity(), size_of::<(IdentityDigest, i64)>())
                + table_bytes(g.more.capacity(), size_of::<(IdentityDigest, Vec<i64>)>())
                + table_bytes(
                    g.unhashed.capacity(),
                    size_of::<(IdentityDigest, Vec<i64>)>(),
                )
                + g.more
                    .values()
                    .chain(g.unhashed.values())
                    .map(|v| v.capacity() * size_of::<i64>())
                    .sum::<usize>();
        }
        r
    }
}

/// The bytes of a hash table (hashbrown, SwissTable) of `capacity` entries of `entry` bytes:
/// its buckets (a power of two, at most 7/8 of them usable), one control byte each and a
/// group's worth more.
fn table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (entry + 1) + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_16_bytes_a_key_and_24_an_identity() {
        assert_eq!(size_of::<TradeKey>(), 16);
        assert_eq!(size_of::<(IdentityDigest, i64)>(), 24);
    }

    #[test]
    fn a_key_is_forgotten_with_its_generation_at_most_a_generation_late() {
        let hour = 3_600_000;
        let mut m = Memory::new(hour);
        assert!(m.remember(TradeKey(1), 0));
        assert!(!m.remember(TradeKey(1), 10), "known");
        assert!(m.remember(TradeKey(2), hour / 4 - 1));
        assert!(m.remember(TradeKey(3), hour / 4));
        assert_eq!(m.remembered().generations, 2);
        // The horizon passed key 1, not the latest key of its generation: still known.
        m.forget_before(1);
        assert!(m.knows(&TradeKey(1)));
        m.forget_before(hour / 4);
        assert!(!m.knows(&TradeKey(1)) && !m.knows(&TradeKey(2)));
        assert!(m.knows(&TradeKey(3)));
        assert_eq!(m.remembered().keys, 1);
    }

    #[test]
    fn a_key_is_known_for_at_least_the_retention_and_forgotten_within_a_generation_more() {
        let retention = 4_000;
        let span = retention / 4;
        let mut m = Memory::new(retention);
        let mut remembered: Vec<(TradeKey, i64)> = Vec::new();
        // A key every 70 ms (so generations start at uneven times), forgetting as the feed
        // does: everything before the retention, on every step.
        for step in 0..400u32 {
            let now = i64::from(step) * 70;
            let key = TradeKey(u128::from(step) + 1);
            assert!(m.remember(key, now));
            remembered.push((key, now));
            m.forget_before(now - retention);
            for (k, at) in &remembered {
                let age = now - at;
                if age <= retention {
                    assert!(m.knows(k), "remembered at {at}, {age} ms ago");
                    assert!(!m.remember(*k, now), "known again at {now}");
                } else if age > retention + span {
                    assert!(!m.knows(k), "remembered at {at}, {age} ms ago");
                }
            }
        }
        // At most the retention's generations and the one being filled.
        assert!(m.remembered().generations <= 5, "{:?}", m.remembered());
        m.forget_before(i64::MAX);
        assert_eq!(m.remembered(), Remembered::default());
    }

    #[test]
    fn the_bytes_count_every_entry_and_at_most_the_tables_slack() {
        let mut m = Memory::new(3_600_000);
        assert_eq!(m.remembered().bytes, 0);
        let n = 10_000usize;
        for i in 0..n {
            m.remember(TradeKey(i as u128), 0);
            let d = IdentityDigest::new(i as u128);
            let mut t = m.take_times(d);
            t.push(i as i64);
            m.put_times(d, t, 0);
        }
        let r = m.remembered();
        assert_eq!((r.keys, r.identities, r.generations), (n, n, 1));
        // Each entry with its control byte, in tables at least 7/16 full.
        let entries =
            n * (size_of::<TradeKey>() + 1) + n * (size_of::<(IdentityDigest, i64)>() + 1);
        assert!(r.bytes >= entries, "{r:?}");
        assert!(r.bytes <= entries * 16 / 7 + 64, "{r:?}");

        // A second match time of an identity, and a trade without a hash: their vectors count.
        let d = IdentityDigest::new(1);
        let mut t = m.take_times(d);
        t.push(7);
        m.put_times(d, t, 0);
        m.push_unhashed(IdentityDigest::new(u128::MAX), 5, 0);
        let more = m.remembered().bytes - r.bytes;
        assert!(
            more >= 2 * size_of::<i64>() + 2 * (size_of::<(IdentityDigest, Vec<i64>)>() + 1),
            "{more}"
        );
    }

    #[test]
    fn an_identity_in_use_moves_to_the_newest_generation() {
        let mut m = Memory::new(4_000);
        let d = IdentityDigest::new(7);
        let mut t = m.take_times(d);
        assert_eq!(t.len(), 0);
        t.push(100);
        m.put_times(d, t, 0);
        // Another identity, not heard again.
        let quiet = IdentityDigest::new(8);
        let mut t = m.take_times(quiet);
        t.push(90);
        m.put_times(quiet, t, 0);
        // Heard again two generations later: moved along, so kept past its first one.
        let mut t = m.take_times(d);
        assert_eq!((t.len(), t.count(100)), (1, 1));
        t.push(100);
        m.put_times(d, t, 2_500);
        m.forget_before(1_000);
        assert_eq!(
            m.take_times(quiet).len(),
            0,
            "forgotten with its generation"
        );
        let t = m.take_times(d);
        assert_eq!((t.len(), t.count(100)), (2, 2));
    }

    #[test]
    fn unhashed_times_are_taken_oldest_first_once_each() {
        let mut m = Memory::new(4_000);
        let d = IdentityDigest::new(9);
        m.push_unhashed(d, 50, 0);
        m.push_unhashed(d, 60, 2_000);
        assert!(m.take_unhashed(d, |ms| ms >= 50));
        assert_eq!(m.remembered().unhashed, 1);
        assert!(m.take_unhashed(d, |ms| ms >= 50));
        assert!(!m.take_unhashed(d, |_| true));
    }
}
