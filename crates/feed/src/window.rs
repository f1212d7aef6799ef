//! A market's rolling one-hour window of trades and its coverage: since when the feed has heard
//! the market without a break. Flow is published only for a market covered the whole hour, so
//! a quiet market reads 0 and an unheard one NULL.

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

/// Since when a market has been heard without a break.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Start of the current unbroken stretch; `None` before the market was first heard.
    pub since_ms: Option<i64>,
    /// A gap is open (from this time) and not yet closed by a backfill or a restart.
    pub gap_from_ms: Option<i64>,
}

impl Coverage {
    /// Heard from `at_ms` on: starts a stretch unless one is running.
    pub fn start(&mut self, at_ms: i64) {
        if self.since_ms.is_none() {
            self.since_ms = Some(at_ms);
        }
    }

    /// Backfilled from `from_ms`: the stretch reaches back there.
    pub fn extend_back(&mut self, from_ms: i64) {
        self.since_ms = Some(self.since_ms.map_or(from_ms, |s| s.min(from_ms)));
    }

    pub fn open_gap(&mut self, from_ms: i64) {
        if self.gap_from_ms.is_none() {
            self.gap_from_ms = Some(from_ms);
        }
    }

    /// The gap ended at `to_ms`: backfilled, the stretch goes on; otherwise a new one starts.
    pub fn close_gap(&mut self, to_ms: i64, backfilled: bool) {
        if self.gap_from_ms.take().is_some() && !backfilled {
            self.since_ms = Some(to_ms);
        }
        self.start(to_ms);
    }

    /// Whether [`from_ms`, `to_ms`] was heard without a break.
    pub fn covers(&self, from_ms: i64, to_ms: i64) -> bool {
        self.gap_from_ms.is_none_or(|g| g > to_ms) && self.since_ms.is_some_and(|s| s <= from_ms)
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
        assert!(!c.covers(0, 30), "an open gap breaks coverage");
        c.close_gap(30, true);
        assert!(c.covers(0, 40));
        c.open_gap(50);
        c.close_gap(60, false);
        assert!(!c.covers(0, 70));
        assert!(c.covers(60, 70));
        c.extend_back(-100);
        assert!(c.covers(-100, 70));
    }
}
