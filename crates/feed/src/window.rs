//! A market's rolling one-hour window of trades and its coverage: since when the feed has heard
//! the market without a break, and which gaps are still waiting for their backfill. Flow is
//! published only for a market covered the whole hour, so a quiet market reads 0 and an
//! unheard one NULL.

use polytape_core::FlowTrade;
use std::collections::VecDeque;

/// The trades of one market (both tokens, first-outcome terms), in time order.
#[derive(Debug, Default)]
pub struct MarketWindow {
    trades: VecDeque<FlowTrade>,
    pub coverage: Coverage,
}

impl MarketWindow {
    /// Adds a trade, in time order (a backfilled trade may be older than the newest).
    pub fn push(&mut self, t: FlowTrade) {
        let at = self.trades.partition_point(|x| x.ts <= t.ts);
        if at == self.trades.len() {
            self.trades.push_back(t);
        } else {
            self.trades.insert(at, t);
        }
    }

    pub fn evict_before(&mut self, from_ms: i64) {
        while self
            .trades
            .front()
            .is_some_and(|t| t.ts.timestamp_millis() <= from_ms)
        {
            self.trades.pop_front();
        }
    }

    pub fn trades(&self) -> impl Iterator<Item = &FlowTrade> {
        self.trades.iter()
    }
}

/// Since when a market has been heard without a break, and the gaps whose trades are not in yet.
///
/// A gap is a stretch the market was not heard (a shard dropped or stalled, or its tokens were
/// silent): it opens at the last time the market was heard and stays open, breaking coverage
/// from there on, until its own backfill is in. Several can be open at once (a shard that drops
/// again before the first gap's backfill came back), each closed by its own start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Start of the current unbroken stretch; `None` before the market was first heard.
    pub since_ms: Option<i64>,
    /// The starts of the gaps open now, sorted; a start twice for two gaps opened at one time.
    pub gaps: Vec<i64>,
}

impl Coverage {
    /// Heard from `at_ms` on: starts a stretch unless one is running.
    pub fn start(&mut self, at_ms: i64) {
        if self.since_ms.is_none() {
            self.since_ms = Some(at_ms);
        }
    }

    /// The trades of [`from_ms`, `to_ms`] were backfilled (the start-up warm-up, `to_ms` the
    /// connection it was asked at): a stretch running since `to_ms` or earlier reaches back to
    /// `from_ms`. A stretch that started later (after a gap that was not backfilled) does not,
    /// as the time between `to_ms` and its start was neither heard nor backfilled; nor does a
    /// market not heard yet. Without `to_ms` (a tape recorded before it was) the stretch
    /// reaches back whatever its start, as it then did.
    pub fn extend_back(&mut self, from_ms: i64, to_ms: Option<i64>) {
        match (self.since_ms, to_ms) {
            (Some(s), Some(to)) if s <= to => self.since_ms = Some(s.min(from_ms)),
            (_, Some(_)) => {}
            (s, None) => self.since_ms = Some(s.map_or(from_ms, |s| s.min(from_ms))),
        }
    }

    /// Not heard from `from_ms` on, until [`Coverage::close_gap`] of that start.
    pub fn open_gap(&mut self, from_ms: i64) {
        let at = self.gaps.partition_point(|g| *g <= from_ms);
        self.gaps.insert(at, from_ms);
    }

    /// The gap opened at `from_ms` ended at `to_ms` (heard again from then): backfilled, the
    /// stretch goes on; otherwise a new one starts at `to_ms`, as nothing before it can be
    /// trusted to be whole. Other gaps stay open. Without `from_ms` (a tape recorded when a
    /// market had at most one gap) every open gap closes, as it then did.
    pub fn close_gap(&mut self, from_ms: Option<i64>, to_ms: i64, backfilled: bool) {
        let unheard = match from_ms {
            Some(from) => {
                if let Some(i) = self.gaps.iter().position(|g| *g == from) {
                    self.gaps.remove(i);
                }
                // Its stretch went unheard even when the gap was not recorded open here (the
                // market joined the shard while it was down).
                true
            }
            None => !std::mem::take(&mut self.gaps).is_empty(),
        };
        if unheard && !backfilled {
            self.since_ms = Some(self.since_ms.map_or(to_ms, |s| s.max(to_ms)));
        }
        self.start(to_ms);
    }

    /// Whether [`from_ms`, `to_ms`] was heard (or backfilled) without a break: the stretch began
    /// by `from_ms` and no gap open now began by `to_ms`.
    pub fn covers(&self, from_ms: i64, to_ms: i64) -> bool {
        self.gaps.first().is_none_or(|g| *g > to_ms) && self.since_ms.is_some_and(|s| s <= from_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_not_backfilled_restarts_coverage_and_a_backfilled_one_keeps_it() {
        let mut c = Coverage::default();
        assert!(!c.covers(0, 10));
        c.start(0);
        assert!(c.covers(0, 10));
        c.open_gap(20);
        assert!(c.covers(0, 19), "before the gap");
        assert!(!c.covers(0, 30), "an open gap breaks coverage");
        c.close_gap(Some(20), 30, true);
        assert!(c.covers(0, 40));
        c.open_gap(50);
        c.close_gap(Some(50), 60, false);
        assert!(!c.covers(0, 70));
        assert!(c.covers(60, 70));
    }

    #[test]
    fn given_two_open_gaps_then_closing_the_first_leaves_the_market_uncovered_until_the_second_closes(
    ) {
        let mut c = Coverage::default();
        c.start(0);
        c.open_gap(20);
        c.open_gap(50);
        c.close_gap(Some(20), 30, true);
        assert!(!c.covers(0, 60), "the second gap is still open");
        assert!(c.covers(0, 49));
        c.close_gap(Some(50), 55, true);
        assert!(c.covers(0, 60));

        // Two gaps from one time (a shard that dropped again before hearing anything).
        c.open_gap(70);
        c.open_gap(70);
        c.close_gap(Some(70), 80, true);
        assert!(!c.covers(0, 90));
        c.close_gap(Some(70), 85, true);
        assert!(c.covers(0, 90));

        // The later gap not backfilled: the stretch restarts at its end, not at the earlier one's.
        c.open_gap(100);
        c.open_gap(120);
        c.close_gap(Some(120), 130, false);
        c.close_gap(Some(100), 110, true);
        assert_eq!(c.since_ms, Some(130));
        assert!(c.covers(130, 140) && !c.covers(129, 140));
    }

    #[test]
    fn a_close_without_its_start_from_an_old_tape_closes_every_gap() {
        let mut c = Coverage::default();
        c.start(0);
        c.open_gap(20);
        c.open_gap(50);
        c.close_gap(None, 60, true);
        assert!(c.covers(0, 70));
        c.open_gap(80);
        c.close_gap(None, 90, false);
        assert_eq!(c.since_ms, Some(90));
        c.close_gap(None, 95, false);
        assert_eq!(c.since_ms, Some(90), "no gap was open");
    }

    #[test]
    fn a_warm_up_reaches_back_only_for_a_stretch_running_since_it_was_asked() {
        let mut c = Coverage::default();
        c.extend_back(-100, Some(0));
        assert_eq!(c.since_ms, None, "nothing heard yet");
        c.start(0);
        c.extend_back(-100, Some(0));
        assert!(c.covers(-100, 10));

        // Restarted after a gap that was not backfilled: [20, 30] is in neither.
        let mut c = Coverage::default();
        c.start(0);
        c.open_gap(20);
        c.close_gap(Some(20), 30, false);
        c.extend_back(-100, Some(0));
        assert_eq!(c.since_ms, Some(30));

        // An old tape's warm-up (no end) reaches back as it did.
        c.extend_back(-100, None);
        assert!(c.covers(-100, 40));
    }
}
