//! `longshot_yes`: buy YES when YES is the favourite — its best ask in `[min_price,
//! max_price]` — and the market closes within `max_hours_to_close`. The favourite–longshot bias
//! says favourites near expiry win more often than their price implies; `assumed_edge` is that
//! belief, in probability points. A NO favourite is `longshot_no`'s case.

use super::{buy, closes_within, price_exit, to_json};
use crate::portfolio::Position;
use crate::signal::{ExitReason, Outcome, Signal};
use crate::strategy::Strategy;
use crate::view::MarketView;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Parameters of [`LongshotYes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LongshotYesParams {
    /// Lowest YES ask bought (inclusive). Default 0.92.
    pub min_price: Decimal,
    /// Highest YES ask bought (inclusive). Default 0.99.
    pub max_price: Decimal,
    /// Only markets closing within this many hours (and not yet closed). Default 24.
    pub max_hours_to_close: Decimal,
    /// Believed edge of the favourite over its price. Default 0.02.
    pub assumed_edge: Decimal,
    /// Confidence reported on signals. Default 0.6.
    pub confidence: f64,
    /// Sell when the bid falls this far below the entry price; `null`: hold to resolution.
    /// Default 0.10.
    pub stop_loss: Option<Decimal>,
}

impl Default for LongshotYesParams {
    fn default() -> Self {
        LongshotYesParams {
            min_price: Decimal::new(92, 2),
            max_price: Decimal::new(99, 2),
            max_hours_to_close: Decimal::from(24),
            assumed_edge: Decimal::new(2, 2),
            confidence: 0.6,
            stop_loss: Some(Decimal::new(10, 2)),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct LongshotYes {
    pub params: LongshotYesParams,
}

impl LongshotYes {
    pub fn new(params: LongshotYesParams) -> Self {
        LongshotYes { params }
    }
}

impl Strategy for LongshotYes {
    fn name(&self) -> &'static str {
        "longshot_yes"
    }
    fn description(&self) -> &'static str {
        "buy YES when it is the favourite (ask in [min_price, max_price]) close to expiry"
    }
    fn version(&self) -> u32 {
        1
    }
    fn params(&self) -> serde_json::Value {
        to_json(&self.params)
    }

    fn filter(&self, m: &MarketView) -> bool {
        closes_within(m, self.params.max_hours_to_close) && m.yes.ask.is_some()
    }

    fn scan(&self, markets: &[&MarketView]) -> Vec<Signal> {
        let p = &self.params;
        markets
            .iter()
            .filter_map(|m| {
                let ask = m.yes.ask?;
                if ask < p.min_price || ask > p.max_price {
                    return None;
                }
                let reason = format!(
                    "YES ask {ask} in [{}, {}], {}h to close",
                    p.min_price,
                    p.max_price,
                    m.hours_to_close().round_dp(2)
                );
                Some(buy(
                    self.name(),
                    m,
                    Outcome::Yes,
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

    fn signals(ask: &str, end: &str) -> Vec<Signal> {
        let s = LongshotYes::default();
        let v = view("0xm", T, end, "0.80", ask);
        if !s.filter(&v) {
            return vec![];
        }
        s.scan(&[&v])
    }

    #[test]
    fn given_a_yes_ask_in_range_near_expiry_then_buy_yes_at_the_ask() {
        let s = signals("0.92", "2026-11-21T00:00:00Z");
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].outcome, s[0].price, s[0].edge),
            (Outcome::Yes, d("0.92"), d("0.02"))
        );
        assert_eq!(s[0].token_id, "0xm-yes");
        assert_eq!(s[0].reason, "YES ask 0.92 in [0.92, 0.99], 12h to close");
        assert_eq!(
            signals("0.99", "2026-11-21T00:00:00Z").len(),
            1,
            "0.99 is in"
        );
    }

    #[test]
    fn given_a_yes_ask_outside_the_range_then_no_signal() {
        assert!(
            signals("0.919", "2026-11-21T00:00:00Z").is_empty(),
            "0.919 is out"
        );
        assert!(
            signals("0.991", "2026-11-21T00:00:00Z").is_empty(),
            "0.991 is out"
        );
    }

    #[test]
    fn given_the_close_too_far_or_passed_then_no_signal() {
        assert_eq!(
            signals("0.95", "2026-11-21T12:00:00Z").len(),
            1,
            "24 h exactly is in"
        );
        assert!(
            signals("0.95", "2026-11-21T12:00:01Z").is_empty(),
            "24 h and 1 s is out"
        );
        assert!(signals("0.95", T).is_empty(), "closing now");
    }

    #[test]
    fn given_the_bid_falls_to_the_stop_then_exit() {
        let s = LongshotYes::default();
        let p = position("longshot_yes", "0xm", Outcome::Yes, "0.95", T);
        let v = |bid: &str| view("0xm", T, "2026-11-21T00:00:00Z", bid, "0.99");
        assert_eq!(s.should_exit(&p, &v("0.86")), None);
        assert_eq!(
            s.should_exit(&p, &v("0.85")),
            Some(ExitReason::StopLoss {
                bid: d("0.85"),
                stop: d("0.85")
            })
        );
    }
}
