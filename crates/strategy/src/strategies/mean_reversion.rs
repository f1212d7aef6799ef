//! `mean_reversion`: fade a YES move larger than `threshold` over `lookback_minutes`. The price
//! then is the latest history point at or before `t − lookback` (and no older than `t − 2 ×
//! lookback`, so a gap in the data is not read as a move); the price now is the YES mid. A rise
//! is faded by buying NO, a fall by buying YES. The edge is `reversion ×` the size of the move:
//! the share of it expected back.

use super::{buy, price_exit, to_json};
use crate::portfolio::Position;
use crate::signal::{ExitReason, Outcome, Signal};
use crate::strategy::Strategy;
use crate::view::MarketView;
use chrono::Duration;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Parameters of [`MeanReversion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanReversionParams {
    /// Minutes back to compare with. Default 60.
    pub lookback_minutes: i64,
    /// A move must be larger than this (exclusive), in price points. Default 0.10.
    pub threshold: Decimal,
    /// Only markets whose YES mid is within `[min_price, max_price]`. Default 0.10.
    pub min_price: Decimal,
    /// Default 0.90.
    pub max_price: Decimal,
    /// Share of the move expected to revert: the signal's edge. Default 0.5.
    pub reversion: Decimal,
    /// Confidence reported on signals. Default 0.5.
    pub confidence: f64,
    /// Sell when the bid rises this far above the entry price. Default 0.05.
    pub take_profit: Option<Decimal>,
    /// Sell when the bid falls this far below the entry price. Default 0.10.
    pub stop_loss: Option<Decimal>,
    /// Sell after holding this many hours. Default 24.
    pub max_hold_hours: Option<i64>,
}

impl Default for MeanReversionParams {
    fn default() -> Self {
        MeanReversionParams {
            lookback_minutes: 60,
            threshold: Decimal::new(10, 2),
            min_price: Decimal::new(10, 2),
            max_price: Decimal::new(90, 2),
            reversion: Decimal::new(5, 1),
            confidence: 0.5,
            take_profit: Some(Decimal::new(5, 2)),
            stop_loss: Some(Decimal::new(10, 2)),
            max_hold_hours: Some(24),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct MeanReversion {
    pub params: MeanReversionParams,
}

impl MeanReversion {
    pub fn new(params: MeanReversionParams) -> Self {
        MeanReversion { params }
    }
}

impl Strategy for MeanReversion {
    fn name(&self) -> &'static str {
        "mean_reversion"
    }
    fn description(&self) -> &'static str {
        "fade a YES move larger than threshold over lookback_minutes"
    }
    fn version(&self) -> u32 {
        1
    }
    fn params(&self) -> serde_json::Value {
        to_json(&self.params)
    }

    fn filter(&self, m: &MarketView) -> bool {
        let p = &self.params;
        m.active
            && m.t < m.end_date
            && m.yes
                .mid
                .is_some_and(|mid| mid >= p.min_price && mid <= p.max_price)
    }

    fn scan(&self, markets: &[&MarketView]) -> Vec<Signal> {
        let p = &self.params;
        let lookback = Duration::minutes(p.lookback_minutes);
        markets
            .iter()
            .filter_map(|m| {
                let now = m.yes.mid?;
                let then = m.mid_at(m.t - lookback)?;
                if then.ts < m.t - lookback - lookback {
                    return None;
                }
                let moved = now - then.mid;
                let (outcome, ask) = if moved > p.threshold {
                    (Outcome::No, m.no.ask?)
                } else if moved < -p.threshold {
                    (Outcome::Yes, m.yes.ask?)
                } else {
                    return None;
                };
                let reason = format!(
                    "YES mid {} → {now} in {}m (move {moved}, threshold {}): buy {}",
                    then.mid,
                    p.lookback_minutes,
                    p.threshold,
                    outcome.as_str()
                );
                let edge = p.reversion * moved.abs();
                Some(buy(
                    self.name(),
                    m,
                    outcome,
                    ask,
                    edge,
                    p.confidence,
                    reason,
                ))
            })
            .collect()
    }

    fn should_exit(&self, position: &Position, m: &MarketView) -> Option<ExitReason> {
        let p = &self.params;
        price_exit(position, m, p.take_profit, p.stop_loss, p.max_hold_hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::tests::position;
    use crate::testkit::{d, view, with_history};

    const T: &str = "2026-11-20T12:00:00Z";
    const END: &str = "2026-11-25T00:00:00Z";

    /// Signals when the YES mid was `then` at `then_ts` and the book is now `bid`/`ask`.
    fn signals(then_ts: &str, then: &str, bid: &str, ask: &str) -> Vec<Signal> {
        let s = MeanReversion::default();
        let v = with_history(view("0xm", T, END, bid, ask), &[(then_ts, then), (T, "0")]);
        if !s.filter(&v) {
            return vec![];
        }
        s.scan(&[&v])
    }

    #[test]
    fn given_a_rise_larger_than_the_threshold_then_buy_no() {
        // 0.40 an hour ago, mid 0.51 now: +0.11.
        let s = signals("2026-11-20T11:00:00Z", "0.40", "0.50", "0.52");
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].outcome, s[0].price, s[0].edge),
            (Outcome::No, d("0.50"), d("0.055"))
        );
        assert_eq!(
            s[0].reason,
            "YES mid 0.40 → 0.51 in 60m (move 0.11, threshold 0.10): buy NO"
        );
    }

    #[test]
    fn given_a_fall_larger_than_the_threshold_then_buy_yes() {
        let s = signals("2026-11-20T10:50:00Z", "0.62", "0.50", "0.52");
        assert_eq!(
            (s[0].outcome, s[0].price, s[0].edge),
            (Outcome::Yes, d("0.52"), d("0.055"))
        );
    }

    #[test]
    fn given_a_move_of_exactly_the_threshold_or_a_stale_or_missing_past_then_no_signal() {
        assert!(
            signals("2026-11-20T11:00:00Z", "0.41", "0.50", "0.52").is_empty(),
            "0.10 is not larger"
        );
        assert!(
            signals("2026-11-20T11:30:00Z", "0.30", "0.50", "0.52").is_empty(),
            "only 30 minutes of history: no point at t − 60m"
        );
        assert!(
            signals("2026-11-20T09:59:59Z", "0.30", "0.50", "0.52").is_empty(),
            "older than t − 2 × lookback"
        );
        assert!(
            signals("2026-11-20T11:00:00Z", "0.70", "0.94", "0.96").is_empty(),
            "mid 0.95 filtered out"
        );
    }

    #[test]
    fn exits_on_take_profit_stop_loss_and_max_hold() {
        let s = MeanReversion::default();
        let p = position("mean_reversion", "0xm", Outcome::Yes, "0.50", T);
        let at = |t: &str, bid: &str, ask: &str| s.should_exit(&p, &view("0xm", t, END, bid, ask));
        assert_eq!(at(T, "0.54", "0.56"), None);
        assert_eq!(
            at(T, "0.55", "0.56"),
            Some(ExitReason::TakeProfit {
                bid: d("0.55"),
                target: d("0.55")
            })
        );
        assert_eq!(
            at(T, "0.40", "0.56"),
            Some(ExitReason::StopLoss {
                bid: d("0.40"),
                stop: d("0.40")
            })
        );
        assert_eq!(at("2026-11-21T11:59:59Z", "0.50", "0.52"), None);
        assert_eq!(
            at("2026-11-21T12:00:00Z", "0.50", "0.52"),
            Some(ExitReason::MaxHold { hours: 24 })
        );
    }
}
