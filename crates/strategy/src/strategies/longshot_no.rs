//! `longshot_no`: buy NO against a YES longshot — YES mid under `max_yes_price` (and at least
//! `min_yes_price`, so markets already decided are left alone) — when the market closes within
//! `max_hours_to_close`. The mirror of `longshot_yes`: longshots are overpriced, so NO at
//! `1 − p` wins more often than its price implies.

use super::{buy, closes_within, price_exit, to_json};
use crate::portfolio::Position;
use crate::signal::{ExitReason, Outcome, Signal};
use crate::strategy::Strategy;
use crate::view::MarketView;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Parameters of [`LongshotNo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LongshotNoParams {
    /// YES mid must be below this (exclusive). Default 0.08.
    pub max_yes_price: Decimal,
    /// YES mid must be at least this. Default 0.01.
    pub min_yes_price: Decimal,
    /// Only markets closing within this many hours (and not yet closed). Default 24.
    pub max_hours_to_close: Decimal,
    /// Believed edge of NO over its price. Default 0.02.
    pub assumed_edge: Decimal,
    /// Confidence reported on signals. Default 0.6.
    pub confidence: f64,
    /// Sell when the NO bid falls this far below the entry price; `null`: hold to resolution.
    /// Default 0.10.
    pub stop_loss: Option<Decimal>,
}

impl Default for LongshotNoParams {
    fn default() -> Self {
        LongshotNoParams {
            max_yes_price: Decimal::new(8, 2),
            min_yes_price: Decimal::new(1, 2),
            max_hours_to_close: Decimal::from(24),
            assumed_edge: Decimal::new(2, 2),
            confidence: 0.6,
            stop_loss: Some(Decimal::new(10, 2)),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct LongshotNo {
    pub params: LongshotNoParams,
}

impl LongshotNo {
    pub fn new(params: LongshotNoParams) -> Self {
        LongshotNo { params }
    }
}

impl Strategy for LongshotNo {
    fn name(&self) -> &'static str {
        "longshot_no"
    }
    fn description(&self) -> &'static str {
        "buy NO against a YES longshot (mid below max_yes_price) close to expiry"
    }
    fn version(&self) -> u32 {
        1
    }
    fn params(&self) -> serde_json::Value {
        to_json(&self.params)
    }

    fn filter(&self, m: &MarketView) -> bool {
        closes_within(m, self.params.max_hours_to_close)
            && m.yes.mid.is_some()
            && m.no.ask.is_some()
    }

    fn scan(&self, markets: &[&MarketView]) -> Vec<Signal> {
        let p = &self.params;
        markets
            .iter()
            .filter_map(|m| {
                let (mid, ask) = (m.yes.mid?, m.no.ask?);
                if mid >= p.max_yes_price || mid < p.min_yes_price {
                    return None;
                }
                let reason = format!(
                    "YES mid {mid} below {}, NO ask {ask}, {}h to close",
                    p.max_yes_price,
                    m.hours_to_close().round_dp(2)
                );
                Some(buy(
                    self.name(),
                    m,
                    Outcome::No,
                    ask,
                    p.assumed_edge,
                    p.confidence,
                    reason,
                ))
            })
            .collect()
    }

    fn should_exit(&self, position: &Position, m: &MarketView) -> Option<ExitReason> {
        price_exit(position, m, None, self.params.stop_loss, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::tests::position;
    use crate::testkit::{d, view};

    const T: &str = "2026-11-20T12:00:00Z";
    const END: &str = "2026-11-20T18:00:00Z";

    /// Signals for a YES book `bid`/`ask`.
    fn signals(bid: &str, ask: &str, end: &str) -> Vec<Signal> {
        let s = LongshotNo::default();
        let v = view("0xm", T, end, bid, ask);
        if !s.filter(&v) {
            return vec![];
        }
        s.scan(&[&v])
    }

    #[test]
    fn given_a_yes_longshot_near_expiry_then_buy_no_at_its_ask() {
        // YES 0.078 / 0.080: mid 0.079; NO ask = 1 − 0.078.
        let s = signals("0.078", "0.080", END);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].outcome, s[0].price), (Outcome::No, d("0.922")));
        assert_eq!(s[0].token_id, "0xm-no");
        assert_eq!(
            s[0].reason,
            "YES mid 0.079 below 0.08, NO ask 0.922, 6h to close"
        );
    }

    #[test]
    fn given_yes_at_the_threshold_or_already_decided_then_no_signal() {
        assert!(
            signals("0.07", "0.09", END).is_empty(),
            "mid 0.08 is not below 0.08"
        );
        assert_eq!(signals("0.009", "0.011", END).len(), 1, "mid 0.01 is in");
        assert!(
            signals("0.008", "0.01", END).is_empty(),
            "mid 0.009 is decided"
        );
        assert!(
            signals("0.03", "0.05", "2026-11-22T00:00:00Z").is_empty(),
            "36 h out"
        );
    }

    #[test]
    fn given_the_no_bid_falls_to_the_stop_then_exit() {
        let s = LongshotNo::default();
        let p = position("longshot_no", "0xm", Outcome::No, "0.93", T);
        // NO bid = 1 − YES ask.
        assert_eq!(
            s.should_exit(&p, &view("0xm", T, END, "0.05", "0.16")),
            None
        );
        assert_eq!(
            s.should_exit(&p, &view("0xm", T, END, "0.05", "0.17")),
            Some(ExitReason::StopLoss {
                bid: d("0.83"),
                stop: d("0.83")
            })
        );
    }
}
