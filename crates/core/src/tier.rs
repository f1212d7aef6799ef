//! The tier table: the one place that says how often a market is sampled as its close nears,
//! and whether its order book and live trades are captured. The schedule, the snapshot handler,
//! the WebSocket supervisor and template.yaml's schedules all derive from [`TIERS`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A sampling tier. `T0` is the slowest (far from close), `T4` the fastest (last hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Tier {
    T0 = 0,
    T1 = 1,
    T2 = 2,
    T3 = 3,
    T4 = 4,
}

/// One row of the tier table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSpec {
    pub tier: Tier,
    /// A market is in this tier while its time to close is greater than this many seconds
    /// (and not greater than the bound of the next slower tier).
    pub above_s: i64,
    /// Seconds between snapshots; ticks fall on wall-clock multiples of it since the epoch.
    pub interval_s: u32,
    /// Whether each tick also fetches and stores the full order book.
    pub order_book: bool,
    /// Whether the market's tokens are held on the live WebSocket feed.
    pub websocket: bool,
}

const HOUR_S: i64 = 3600;

/// The tier table, fastest tier last. Boundaries are in seconds to close:
/// T0 > 48 h, T1 (12 h, 48 h], T2 (4 h, 12 h], T3 (1 h, 4 h], T4 (0, 1 h].
pub const TIERS: [TierSpec; 5] = [
    TierSpec {
        tier: Tier::T0,
        above_s: 48 * HOUR_S,
        interval_s: 3600,
        order_book: false,
        websocket: false,
    },
    TierSpec {
        tier: Tier::T1,
        above_s: 12 * HOUR_S,
        interval_s: 300,
        order_book: false,
        websocket: false,
    },
    TierSpec {
        tier: Tier::T2,
        above_s: 4 * HOUR_S,
        interval_s: 60,
        order_book: true,
        websocket: true,
    },
    TierSpec {
        tier: Tier::T3,
        above_s: HOUR_S,
        interval_s: 30,
        order_book: true,
        websocket: true,
    },
    TierSpec {
        tier: Tier::T4,
        above_s: 0,
        interval_s: 15,
        order_book: true,
        websocket: true,
    },
];

impl Tier {
    /// All tiers, slowest first.
    pub const ALL: [Tier; 5] = [Tier::T0, Tier::T1, Tier::T2, Tier::T3, Tier::T4];

    /// This tier's row of the tier table.
    pub fn spec(self) -> &'static TierSpec {
        &TIERS[self as usize]
    }

    /// Seconds between snapshots.
    pub fn interval_s(self) -> u32 {
        self.spec().interval_s
    }

    /// The tier for a market `secs_to_close` seconds before its end date; `None` once the end
    /// date has passed (the market is no longer sampled).
    pub fn for_secs_to_close(secs_to_close: i64) -> Option<Tier> {
        TIERS
            .iter()
            .find(|s| secs_to_close > s.above_s)
            .map(|s| s.tier)
    }

    /// The tier of a market ending at `end` as seen at `now`.
    pub fn at(now: crate::Ts, end: crate::Ts) -> Option<Tier> {
        Tier::for_secs_to_close((end - now).num_seconds())
    }

    /// The tier's number (0–4), as stored in Parquet and in S3 keys.
    pub fn number(self) -> u8 {
        self as u8
    }
}

impl From<Tier> for u8 {
    fn from(t: Tier) -> u8 {
        t as u8
    }
}

impl TryFrom<u8> for Tier {
    type Error = UnknownTier;
    fn try_from(n: u8) -> Result<Self, UnknownTier> {
        Tier::ALL
            .get(n as usize)
            .copied()
            .ok_or(UnknownTier(n.to_string()))
    }
}

impl std::str::FromStr for Tier {
    type Err = UnknownTier;
    /// Accepts `2`, `T2` and `t2`.
    fn from_str(s: &str) -> Result<Self, UnknownTier> {
        let digits = s.strip_prefix(['T', 't']).unwrap_or(s);
        digits
            .parse::<u8>()
            .ok()
            .and_then(|n| Tier::try_from(n).ok())
            .ok_or_else(|| UnknownTier(s.to_string()))
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", *self as u8)
    }
}

/// A tier name or number that is not in the tier table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?} (expected 0-4 or T0-T4)")]
pub struct UnknownTier(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_follow_the_design_table() {
        let h = 3600;
        assert_eq!(Tier::for_secs_to_close(49 * h), Some(Tier::T0));
        assert_eq!(Tier::for_secs_to_close(48 * h), Some(Tier::T1));
        assert_eq!(Tier::for_secs_to_close(12 * h + 1), Some(Tier::T1));
        assert_eq!(Tier::for_secs_to_close(12 * h), Some(Tier::T2));
        assert_eq!(Tier::for_secs_to_close(4 * h), Some(Tier::T3));
        assert_eq!(Tier::for_secs_to_close(h), Some(Tier::T4));
        assert_eq!(Tier::for_secs_to_close(1), Some(Tier::T4));
        assert_eq!(
            Tier::for_secs_to_close(0),
            None,
            "a market at its end date is no longer sampled"
        );
        assert_eq!(Tier::for_secs_to_close(-5), None);
    }

    #[test]
    fn faster_tiers_have_shorter_intervals_and_books() {
        let intervals: Vec<u32> = TIERS.iter().map(|s| s.interval_s).collect();
        assert_eq!(intervals, vec![3600, 300, 60, 30, 15]);
        assert!(TIERS.iter().all(|s| s.order_book == (s.tier >= Tier::T2)));
        assert!(TIERS.iter().all(|s| s.websocket == (s.tier >= Tier::T2)));
    }

    #[test]
    fn tiers_parse_from_number_or_name() {
        assert_eq!("T3".parse::<Tier>(), Ok(Tier::T3));
        assert_eq!("1".parse::<Tier>(), Ok(Tier::T1));
        assert!("T9".parse::<Tier>().is_err());
        assert_eq!(serde_json::to_string(&Tier::T2).unwrap(), "2");
    }
}
