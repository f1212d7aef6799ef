//! The tick schedule. A tick is identified by its tier and its wall-clock-aligned time: tier T
//! ticks at every multiple of its interval since the Unix epoch. EventBridge fires once a
//! minute, so the dispatcher asks [`due_in_minute`] for the ticks of that minute and delays each
//! by [`TickId::delay_s`]; locally, tokio timers use the same answer.

use crate::tier::{Tier, TIERS};
use crate::Ts;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// One tick of one tier: the unit of work of the snapshot handler and of its idempotency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TickId {
    pub tier: Tier,
    /// The scheduled time of the tick (a multiple of the tier's interval); `snapshot_ts` of its rows.
    pub tick_ts: Ts,
}

impl TickId {
    /// Seconds after the start of its minute at which the tick is due (0, 15, 30 or 45).
    pub fn delay_s(&self) -> u32 {
        (self.tick_ts.timestamp().rem_euclid(60)) as u32
    }

    /// True when a tick started at `now` is later than its interval after its scheduled time:
    /// its rows would describe a different moment than `snapshot_ts` claims, so it is skipped
    /// (and counted) rather than written.
    pub fn is_stale_at(&self, now: Ts) -> bool {
        (now - self.tick_ts).num_milliseconds() > i64::from(self.tier.interval_s()) * 1000
    }

    /// A compact, sortable label used in object keys: `20261120T223015Z`.
    pub fn label(&self) -> String {
        self.tick_ts.format("%Y%m%dT%H%M%SZ").to_string()
    }

    /// The tick of `tier` at or before `t`.
    pub fn floor(tier: Tier, t: Ts) -> TickId {
        let interval = i64::from(tier.interval_s());
        let secs = t.timestamp().div_euclid(interval) * interval;
        TickId {
            tier,
            tick_ts: from_secs(secs),
        }
    }

    /// The next tick of the same tier.
    pub fn next(&self) -> TickId {
        let secs = self.tick_ts.timestamp() + i64::from(self.tier.interval_s());
        TickId {
            tier: self.tier,
            tick_ts: from_secs(secs),
        }
    }
}

fn from_secs(secs: i64) -> Ts {
    match Utc.timestamp_opt(secs, 0) {
        chrono::LocalResult::Single(t) => t,
        _ => DateTime::<Utc>::MIN_UTC,
    }
}

/// Every tick, all tiers, whose scheduled time falls in the minute starting at `minute`
/// (seconds and below are ignored), ordered by time then tier.
pub fn due_in_minute(minute: Ts) -> Vec<TickId> {
    let start = minute.timestamp().div_euclid(60) * 60;
    let mut due = Vec::new();
    for spec in TIERS.iter() {
        let interval = i64::from(spec.interval_s);
        let first = start + (interval - start.rem_euclid(interval)) % interval;
        let mut t = first;
        while t < start + 60 {
            due.push(TickId {
                tier: spec.tier,
                tick_ts: from_secs(t),
            });
            t += interval;
        }
    }
    due.sort_by_key(|t| (t.tick_ts, t.tier));
    due
}

/// Ticks per hour of a tier, as the coverage reports expect them.
pub fn ticks_per_hour(tier: Tier) -> u32 {
    3600 / tier.interval_s()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        s.parse().unwrap()
    }

    #[test]
    fn minute_zero_of_an_hour_has_every_tier() {
        let due = due_in_minute(at("2026-11-20T10:00:00Z"));
        let per_tier = |t: Tier| due.iter().filter(|d| d.tier == t).count();
        assert_eq!(
            [Tier::T0, Tier::T1, Tier::T2, Tier::T3, Tier::T4].map(per_tier),
            [1, 1, 1, 2, 4]
        );
        let t4: Vec<u32> = due
            .iter()
            .filter(|d| d.tier == Tier::T4)
            .map(|d| d.delay_s())
            .collect();
        assert_eq!(t4, vec![0, 15, 30, 45]);
    }

    #[test]
    fn t1_ticks_on_minutes_divisible_by_five() {
        let has_t1 = |m: &str| due_in_minute(at(m)).iter().any(|d| d.tier == Tier::T1);
        assert!(has_t1("2026-11-20T10:05:00Z"));
        assert!(!has_t1("2026-11-20T10:07:00Z"));
        assert!(!due_in_minute(at("2026-11-20T10:05:00Z"))
            .iter()
            .any(|d| d.tier == Tier::T0));
    }

    #[test]
    fn seconds_within_the_minute_are_ignored() {
        assert_eq!(
            due_in_minute(at("2026-11-20T10:03:42Z")),
            due_in_minute(at("2026-11-20T10:03:00Z"))
        );
        assert_eq!(due_in_minute(at("2026-11-20T10:03:00Z")).len(), 1 + 2 + 4);
    }

    #[test]
    fn a_tick_is_stale_once_its_interval_has_passed() {
        let tick = TickId {
            tier: Tier::T3,
            tick_ts: at("2026-11-20T10:00:30Z"),
        };
        assert!(!tick.is_stale_at(at("2026-11-20T10:01:00Z")));
        assert!(tick.is_stale_at(at("2026-11-20T10:01:00.001Z")));
        assert_eq!(tick.label(), "20261120T100030Z");
        assert_eq!(
            TickId::floor(Tier::T1, at("2026-11-20T10:07:13Z")).tick_ts,
            at("2026-11-20T10:05:00Z")
        );
        assert_eq!(tick.next().tick_ts, at("2026-11-20T10:01:00Z"));
    }

    #[test]
    fn ticks_per_hour_match_the_intervals() {
        assert_eq!(Tier::ALL.map(ticks_per_hour), [1, 12, 60, 120, 240]);
    }
}
