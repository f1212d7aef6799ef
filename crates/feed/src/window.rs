//! A market's rolling one-hour window of trade flow and its coverage: since when the feed has
//! heard the market without a break, and which gaps are still waiting for their backfill. Flow
//! is published only for a market covered the whole hour, so a quiet market reads 0 and an
//! unheard one NULL.
//!
//! The window holds no trades: it sums them into 15-second buckets ([`BUCKET_MS`], the feed's
//! publication period), so a market's memory is bounded by the buckets of an hour (241 of
//! 152 B), whatever it trades. The flow at `now` sums the buckets from the one holding
//! `now − 1 h` to the one holding `now` ([`MarketWindow::flow`]): every trade of the hour, and
//! those of the oldest bucket's part before it — under one publication period at the old edge.
//! The newest whale's time is kept exact, so `time_since_whale_s` is (up to 1 h 15 s).

use polytape_core::{FlowSums, FlowTrade, TradeFlow, Ts};
use std::collections::VecDeque;

/// A bucket's length: the feed publishes flow at most this often.
pub const BUCKET_MS: i64 = 15_000;
/// The window's length.
pub const WINDOW_MS: i64 = 3_600_000;
/// The most buckets a window holds once swept: their starts in `(now − 1 h − 15 s, now]`.
pub const MAX_BUCKETS: usize = (WINDOW_MS / BUCKET_MS) as usize + 1;

/// The sums of a market's trades (both tokens, first-outcome terms) by 15-second bucket.
#[derive(Debug, Default)]
pub struct MarketWindow {
    /// (bucket start in ms, the sums of its trades), oldest first; only buckets with trades.
    buckets: VecDeque<(i64, FlowSums)>,
    pub coverage: Coverage,
}

impl MarketWindow {
    /// Adds a trade to its bucket (a backfilled trade may be older than the newest).
    pub fn push(&mut self, t: FlowTrade) {
        let start = t.ts.timestamp_millis().div_euclid(BUCKET_MS) * BUCKET_MS;
        let at = self.buckets.partition_point(|(s, _)| *s < start);
        match self.buckets.get_mut(at) {
            Some((s, sums)) if *s == start => sums.add(&t),
            _ => {
                let mut sums = FlowSums::default();
                sums.add(&t);
                self.buckets.insert(at, (start, sums));
            }
        }
    }

    /// Forgets the buckets that no flow from `from_ms` + 1 h on counts: those ending by
    /// `from_ms`.
    pub fn evict_before(&mut self, from_ms: i64) {
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| *s + BUCKET_MS <= from_ms)
        {
            self.buckets.pop_front();
        }
        if self.buckets.capacity() > 2 * MAX_BUCKETS.max(self.buckets.len()) {
            self.buckets.shrink_to_fit();
        }
    }

    /// Buckets held now.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The flow at `now`: the buckets from the one holding `now − 1 h` to the one holding
    /// `now`, i.e. the trades of [[`MarketWindow::edge_ms`], `now`]: the hour `(now − 1 h,
    /// now]` and, at its old edge, under one bucket before it. A trade stamped after `now` in
    /// the bucket holding `now` (a clock ahead) counts too.
    pub fn flow(&self, now: Ts) -> TradeFlow {
        let now_ms = now.timestamp_millis();
        let from = Self::edge_ms(now_ms);
        let at = self.buckets.partition_point(|(s, _)| *s < from);
        let mut sums = FlowSums::default();
        for (_, b) in self.buckets.range(at..).take_while(|(s, _)| *s <= now_ms) {
            sums.merge(b);
        }
        TradeFlow::of_sums(&sums, now)
    }

    /// Where the flow at `now_ms` starts: the start of the bucket holding `now_ms − 1 h`, in
    /// `(now_ms − 1 h − 15 s, now_ms − 1 h]`.
    pub fn edge_ms(now_ms: i64) -> i64 {
        (now_ms - WINDOW_MS).div_euclid(BUCKET_MS) * BUCKET_MS
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
    use polytape_core::Side;
    use rust_decimal::Decimal;

    fn ts(ms: i64) -> Ts {
        chrono::DateTime::from_timestamp_millis(ms).unwrap()
    }

    /// Trades of one market, both tokens, from a seed: whales now and then (a size of 5,000 at
    /// 0.40–0.99 is ≥ $2,000), sizes with six decimals.
    fn trade(seed: u64, ms: i64) -> FlowTrade {
        let r = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        let price = Decimal::new(1 + (r % 99) as i64, 2);
        let size = if r.is_multiple_of(37) {
            Decimal::from(5_000)
        } else {
            Decimal::new(1 + ((r >> 8) % 500_000_000) as i64, 6)
        };
        let side = if (r >> 40) & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        FlowTrade::of(ts(ms), ((r >> 41) & 1) as usize, side, price, size)
    }

    #[test]
    fn given_100_000_trades_in_one_market_then_the_window_holds_at_most_241_buckets() {
        // Two hours of one trade every 72 ms, swept once a second as the feed does.
        let t0: i64 = 1_795_000_000_000;
        let mut w = MarketWindow::default();
        let mut most = 0;
        for i in 0..100_000i64 {
            let ms = t0 + i * 72;
            w.push(trade(i as u64, ms));
            if i % 14 == 0 {
                w.evict_before(ms - WINDOW_MS);
            }
            most = most.max(w.buckets());
        }
        // Between two sweeps a bucket more at most.
        assert!(most <= MAX_BUCKETS + 1, "{most} buckets");
        assert!(
            most >= MAX_BUCKETS - 1,
            "{most}: the hour's buckets are all there"
        );
        let now = t0 + 99_999 * 72;
        w.evict_before(now - WINDOW_MS);
        assert!(w.buckets() <= MAX_BUCKETS, "{} buckets", w.buckets());
        assert_eq!(
            MAX_BUCKETS, 241,
            "the hour's 240 and the one holding its start"
        );
        // ≈ 36 KiB for the market, against 50,000 trades of 64 B in the hour (3.2 MB).
        assert!(w.buckets() * std::mem::size_of::<(i64, FlowSums)>() < 40_000);
    }

    #[test]
    fn bucketed_flow_equals_the_flow_of_the_hour_and_of_under_one_bucket_before_it() {
        // Two hours of trades at uneven times, in time order; one in 50 comes in late (a
        // backfill), after the next publication. A flow every ≈ 98 s from the first hour's end.
        let t0: i64 = 1_795_000_003_217;
        let trades: Vec<FlowTrade> = (0..20_000u64)
            .map(|i| trade(i, t0 + (i as i64) * 360 + (i as i64 * 7919) % 300))
            .collect();
        let mut w = MarketWindow::default();
        let (mut next, mut late, mut known) = (0, Vec::new(), Vec::new());
        let mut edge_trades = 0;
        for k in 0..60 {
            let now_ms = t0 + 3_600_000 + k * 97_531;
            let now = ts(now_ms);
            for t in late.drain(..) {
                w.push(t);
                known.push(t);
            }
            while next < trades.len() && trades[next].ts <= now {
                if next % 50 == 7 {
                    late.push(trades[next]);
                } else {
                    w.push(trades[next]);
                    known.push(trades[next]);
                }
                next += 1;
            }
            w.evict_before(now_ms - WINDOW_MS);
            let edge = MarketWindow::edge_ms(now_ms);
            assert!(edge <= now_ms - WINDOW_MS && edge > now_ms - WINDOW_MS - BUCKET_MS);
            let got = w.flow(now);
            // Exactly the trades of [edge, now]: the hour and under one bucket before it.
            let mut inside = FlowSums::default();
            for t in known.iter().filter(|t| {
                let ms = t.ts.timestamp_millis();
                ms >= edge && ms <= now_ms
            }) {
                inside.add(t);
            }
            assert_eq!(got, TradeFlow::of_sums(&inside, now), "at {now}");
            // Against the exact hour: the same but for the trades of that part bucket.
            let hour = TradeFlow::over(&known, now);
            let extra = got.trade_count_1h - hour.trade_count_1h;
            assert!(
                extra <= (BUCKET_MS / 360 + 1) as u32,
                "{extra} trades before the hour"
            );
            if extra == 0 {
                assert_eq!(got, hour);
            }
            edge_trades += extra;
            assert!(got.trade_count_1h > 0);
        }
        assert!(edge_trades > 0, "some trade fell at the edge");
        assert!(w.buckets() <= MAX_BUCKETS);
    }

    #[test]
    fn a_bucket_is_counted_while_it_holds_some_of_the_hour_and_forgotten_after() {
        let t0: i64 = 1_795_000_005_000; // a bucket start
        assert_eq!(t0 % BUCKET_MS, 0);
        let mut w = MarketWindow::default();
        w.push(trade(1, t0 + 1));
        w.push(trade(2, t0 + BUCKET_MS + 1));
        // At t0 + 1 h the hour starts after t0, inside the first bucket: it counts, with its
        // trade at t0 + 1 ms (inside the hour). At t0 + 1 h + 15 s it holds none of the hour.
        assert_eq!(w.flow(ts(t0 + WINDOW_MS)).trade_count_1h, 2);
        assert_eq!(w.flow(ts(t0 + WINDOW_MS + BUCKET_MS - 1)).trade_count_1h, 2);
        assert_eq!(w.flow(ts(t0 + WINDOW_MS + BUCKET_MS)).trade_count_1h, 1);
        w.evict_before(t0 + BUCKET_MS - 1);
        assert_eq!(
            w.buckets(),
            2,
            "still counted by a flow at t0 + 1 h + 15 s − 1 ms"
        );
        w.evict_before(t0 + BUCKET_MS);
        assert_eq!(w.buckets(), 1);
        assert_eq!(w.flow(ts(t0 + WINDOW_MS + BUCKET_MS)).trade_count_1h, 1);
        // Before its bucket's start a trade is not counted; once its bucket holds now, it is.
        assert_eq!(w.flow(ts(t0 + BUCKET_MS - 1)).trade_count_1h, 0);
        assert_eq!(w.flow(ts(t0 + BUCKET_MS)).trade_count_1h, 1);
    }

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
