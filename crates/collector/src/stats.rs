//! Live counters of a local run: what the progress lines print and `/api/stats` serves, and
//! the live feed's trade rate ([`TradeRate`]).

use crate::discover::DiscoveryReport;
use crate::maintenance::MaintenanceReport;
use crate::snapshot::TickReport;
use polytape_core::{Tier, Ts};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Counters of one tier since the run started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TierStats {
    pub ticks: u64,
    pub skipped_ticks: u64,
    pub failed_ticks: u64,
    pub rows: u64,
    pub books: u64,
    /// Markets with no observation at a tick (no row written).
    pub missing: u64,
    pub rejected: u64,
    pub failed_requests: u64,
    pub last_tick: Option<Ts>,
    pub last_rows: usize,
    pub last_elapsed_ms: u64,
    pub next_tick: Option<Ts>,
}

/// When a periodic task last ran and what it reported.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun<T> {
    pub at: Ts,
    pub report: T,
}

/// Counters of a local run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub started_at: Option<Ts>,
    pub tiers: BTreeMap<Tier, TierStats>,
    pub discovery: Option<LastRun<DiscoveryReport>>,
    pub maintenance: Option<LastRun<MaintenanceReport>>,
    /// Handler runs that failed (storage or Polymarket errors), all kinds.
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Ts>,
}

/// Shared, cheaply cloned handle to the counters.
#[derive(Debug, Clone, Default)]
pub struct SharedStats(Arc<Mutex<RunStats>>);

impl SharedStats {
    /// A consistent copy of the counters.
    pub fn snapshot(&self) -> RunStats {
        self.lock().clone()
    }

    /// Records when the run started (`/health` judges "since start" from it).
    pub fn mark_started(&self, at: Ts) {
        self.lock().started_at = Some(at);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RunStats> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_tick(&self, r: &TickReport) {
        let mut s = self.lock();
        if r.already_done {
            return;
        }
        let t = s.tiers.entry(r.tick.tier).or_default();
        if r.skipped {
            t.skipped_ticks += 1;
            return;
        }
        t.ticks += 1;
        t.rows += r.rows as u64;
        t.books += r.books as u64;
        t.missing += r.missing as u64;
        t.rejected += (r.rejected + r.nulled) as u64;
        t.failed_requests += r.failed_requests as u64;
        t.last_tick = Some(r.tick.tick_ts);
        t.last_rows = r.rows;
        t.last_elapsed_ms = r.elapsed_ms;
    }

    pub(crate) fn record_error(&self, tier: Option<Tier>, what: String) {
        let mut s = self.lock();
        s.errors += 1;
        s.last_error = Some(what);
        s.last_error_at = Some(chrono::Utc::now());
        if let Some(tier) = tier {
            s.tiers.entry(tier).or_default().failed_ticks += 1;
        }
    }
}

/// Trades the live feed stored in the last minute, from samples of its cumulative trade count
/// (live and backfilled): the newest count less the count at the window's start. The feed
/// reports its counters every 15 s, so the window's edges are as fine as those reports.
#[derive(Debug, Clone, Default)]
pub struct TradeRate {
    /// (when seen, cumulative trades), oldest first, one entry per change of the count. The
    /// first is the newest sample at or before the window's start, as of the last record.
    samples: VecDeque<(Instant, u64)>,
}

impl TradeRate {
    /// The window the rate counts over.
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// Records the cumulative count `total` as seen at `at` (calls in time order, each at or
    /// after the last; a question is about a time at or after the last record).
    pub fn record(&mut self, at: Instant, total: u64) {
        if self.samples.back().is_none_or(|&(_, last)| last != total) {
            self.samples.push_back((at, total));
        }
        // Keep one sample at or before the window's start: the baseline of a later question.
        if let Some(start) = at.checked_sub(Self::WINDOW) {
            while self.samples.get(1).is_some_and(|&(seen, _)| seen <= start) {
                self.samples.pop_front();
            }
        }
    }

    /// Trades counted in the [`TradeRate::WINDOW`] before `now` (after `now - WINDOW`, up to
    /// `now`): 0 once the count has not moved for a whole window. Until the samples span a
    /// window, the trades since the first sample.
    pub fn per_minute(&self, now: Instant) -> u64 {
        let Some(&(_, newest)) = self.samples.back() else {
            return 0;
        };
        let start = now.checked_sub(Self::WINDOW);
        let baseline = self
            .samples
            .iter()
            .rev()
            .find(|&&(seen, _)| start.is_some_and(|start| seen <= start))
            .or(self.samples.front())
            .map_or(0, |&(_, total)| total);
        newest.saturating_sub(baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_counts_at_known_times_then_the_rate_counts_the_last_minute_and_drops_to_0() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut rate = TradeRate::default();
        assert_eq!(rate.per_minute(t0), 0, "nothing sampled yet");
        let record_until = |rate: &mut TradeRate, from: u64, to: u64, total: u64| {
            for s in from..=to {
                rate.record(at(s), total);
            }
        };

        // The feed starts at 0 and reports every 15 s (sampled every second): +30 at 15 s,
        // +30 at 30 s, +60 at 45 s, nothing at 60 s, +90 at 75 s.
        record_until(&mut rate, 0, 14, 0);
        record_until(&mut rate, 15, 29, 30);
        record_until(&mut rate, 30, 30, 60);
        assert_eq!(
            rate.per_minute(at(30)),
            60,
            "under a minute: since the start"
        );
        record_until(&mut rate, 31, 44, 60);
        record_until(&mut rate, 45, 60, 120);
        assert_eq!(rate.per_minute(at(60)), 120, "0 at 0 s → 120 at 60 s");
        record_until(&mut rate, 61, 74, 120);
        record_until(&mut rate, 75, 75, 210);
        assert_eq!(rate.per_minute(at(75)), 180, "30 at 15 s → 210 at 75 s");
        assert_eq!(
            rate.per_minute(at(75) + Duration::from_millis(500)),
            180,
            "between samples: the window starts at 15.5 s, when the count was 30"
        );

        // Then the feed goes quiet: the same count every second.
        record_until(&mut rate, 76, 90, 210);
        assert_eq!(rate.per_minute(at(90)), 150, "60 at 30 s → 210");
        record_until(&mut rate, 91, 134, 210);
        assert_eq!(rate.per_minute(at(134)), 90, "120 at 74 s → 210 at 75 s");
        record_until(&mut rate, 135, 135, 210);
        assert_eq!(rate.per_minute(at(135)), 0, "no trade after 75 s");
        record_until(&mut rate, 136, 300, 210);
        assert_eq!(rate.per_minute(at(300)), 0);
        assert_eq!(rate.samples.len(), 1, "{:?}", rate.samples);

        // Trades again: counted from the quiet count, for one minute.
        record_until(&mut rate, 301, 301, 215);
        assert_eq!(rate.per_minute(at(301)), 5);
        record_until(&mut rate, 302, 360, 215);
        assert_eq!(rate.per_minute(at(360)), 5);
        record_until(&mut rate, 361, 361, 215);
        assert_eq!(rate.per_minute(at(361)), 0);
    }

    #[test]
    fn given_a_first_sample_taken_late_then_trades_before_it_are_not_counted() {
        let t0 = Instant::now();
        let mut rate = TradeRate::default();
        rate.record(t0, 500);
        rate.record(t0 + Duration::from_secs(10), 520);
        assert_eq!(rate.per_minute(t0 + Duration::from_secs(10)), 20);
    }
}
