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

/// How long past its end date a market that is neither closed nor resolved keeps being sampled
/// (in T4): 24 h. Polymarket markets often stay open well past `endDate` until their result is
/// proposed; their last hours are the most valuable samples, and `hours_to_close` is honestly
/// negative. After this the market expires: sampling stops (resolution polling goes on).
pub const SAMPLED_PAST_END_S: i64 = 24 * HOUR_S;

/// How long past its end date a market without a final result is asked about: 14 days (UMA
/// disputes take days). After this its result is recorded `unresolved`.
pub const RESOLUTION_POLL_S: i64 = 14 * 24 * HOUR_S;

/// Hours from `at` to `end` (negative when `end` is earlier), to the millisecond.
pub fn hours_between(at: crate::Ts, end: crate::Ts) -> f64 {
    (end - at).num_milliseconds() as f64 / 3_600_000.0
}

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

    /// The tier for a market `secs_to_close` seconds before its end date. At and past its end
    /// date a market stays in T4 for [`SAMPLED_PAST_END_S`] (while it is neither closed nor
    /// resolved, which the caller knows); `None` after that: it has expired.
    pub fn for_secs_to_close(secs_to_close: i64) -> Option<Tier> {
        if secs_to_close <= -SAMPLED_PAST_END_S {
            return None;
        }
        Some(
            TIERS
                .iter()
                .find(|s| secs_to_close > s.above_s)
                .map_or(Tier::T4, |s| s.tier),
        )
    }

    /// The tier of a market ending at `end` as seen at `now` (to the millisecond, so a market
    /// is in its new tier from the first instant after it crosses).
    pub fn at(now: crate::Ts, end: crate::Ts) -> Option<Tier> {
        let ms = (end - now).num_milliseconds();
        // Whole seconds rounded up: 0.4 s before the end is still "more than 0 s to close".
        Tier::for_secs_to_close(ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0))
    }

    /// The end dates that put a market in this tier at `at`: `(after, up_to)` with
    /// `after < end_date <= up_to`; `up_to` is `None` for T0 (no upper bound). T4's window
    /// reaches [`SAMPLED_PAST_END_S`] into the past. Exactly the markets for which
    /// [`Tier::at`]`(at, end_date) == Some(self)`: what a tick of this tier samples.
    pub fn end_window(self, at: crate::Ts) -> (crate::Ts, Option<crate::Ts>) {
        let secs = |s: i64| chrono::Duration::seconds(s);
        let after = if self == Tier::T4 {
            at - secs(SAMPLED_PAST_END_S)
        } else {
            at + secs(self.spec().above_s)
        };
        let up_to = match self {
            Tier::T0 => None,
            slower => Some(at + secs(TIERS[slower as usize - 1].above_s)),
        };
        (after, up_to)
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
            Some(Tier::T4),
            "a market at its end date is still sampled, in T4"
        );
        assert_eq!(Tier::for_secs_to_close(-23 * h), Some(Tier::T4));
        assert_eq!(
            Tier::for_secs_to_close(-24 * h),
            None,
            "24 h past its end date a market expires"
        );
    }

    #[test]
    fn given_a_market_crossing_a_boundary_when_tiered_to_the_millisecond_then_it_moves_at_once() {
        let end: crate::Ts = "2026-11-20T12:00:00Z".parse().unwrap();
        let at = |s: &str| -> crate::Ts { s.parse().unwrap() };
        assert_eq!(Tier::at(at("2026-11-20T11:00:00Z"), end), Some(Tier::T4));
        assert_eq!(
            Tier::at(at("2026-11-20T10:59:59.999Z"), end),
            Some(Tier::T3)
        );
        assert_eq!(
            Tier::at(at("2026-11-20T11:00:00.001Z"), end),
            Some(Tier::T4)
        );
        assert_eq!(Tier::at(at("2026-11-21T11:59:59Z"), end), Some(Tier::T4));
        assert_eq!(Tier::at(at("2026-11-21T12:00:00Z"), end), None);
    }

    #[test]
    fn given_any_end_date_then_it_is_in_exactly_the_window_of_its_tier() {
        let now: crate::Ts = "2026-11-20T12:00:07.250Z".parse().unwrap();
        // Every 97 s from 30 h in the past to 60 h ahead, plus each boundary and its neighbours.
        let mut offsets_ms: Vec<i64> = (-30 * 3600..60 * 3600)
            .step_by(97)
            .map(|s| s * 1000)
            .collect();
        for b in [-24 * 3600, 0, 3600, 4 * 3600, 12 * 3600, 48 * 3600] {
            offsets_ms.extend([b * 1000 - 1, b * 1000, b * 1000 + 1]);
        }
        for off in offsets_ms {
            let end = now + chrono::Duration::milliseconds(off);
            let tier = Tier::at(now, end);
            for t in Tier::ALL {
                let (after, up_to) = t.end_window(now);
                let inside = end > after && up_to.is_none_or(|u| end <= u);
                assert_eq!(
                    inside,
                    tier == Some(t),
                    "end {end} ({off} ms): tier {tier:?}, window of {t}"
                );
            }
        }
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
