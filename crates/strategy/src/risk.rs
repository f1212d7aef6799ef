//! Risk limits: how much one signal may spend, given the account.
//!
//! Limits are checked in this order, and the first that refuses names the rejection: drawdown
//! (no new positions once the account is down `max_drawdown` from its peak), open positions
//! (a new position beyond `max_open_positions`; adding to a held token is not a new position),
//! then the size is cut to the room left under the per-market cap (`max_position_usd`, cost of
//! all strategies' positions in the market), the total exposure cap and the cash; a size cut
//! below `min_order_usd` is refused.

use crate::portfolio::{Portfolio, PositionKey};
use crate::signal::Signal;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The limits (`risk:` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskLimits {
    /// Cost of all positions in one market, USD. Default 100.
    pub max_position_usd: Decimal,
    /// Cost of all open positions, USD. Default 500.
    pub max_total_exposure_usd: Decimal,
    /// Open positions. Default 20.
    pub max_open_positions: usize,
    /// Peak-to-trough fall of equity, as a fraction of the peak, past which no position is
    /// opened. Default 0.20.
    pub max_drawdown: Decimal,
    /// The smallest order worth placing, USD. Default 1.
    pub min_order_usd: Decimal,
}

impl Default for RiskLimits {
    fn default() -> Self {
        RiskLimits {
            max_position_usd: Decimal::from(100),
            max_total_exposure_usd: Decimal::from(500),
            max_open_positions: 20,
            max_drawdown: Decimal::new(20, 2),
            min_order_usd: Decimal::ONE,
        }
    }
}

/// Why a signal was not traded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rejection", rename_all = "snake_case")]
pub enum Rejection {
    /// The account is down at least `limit` from its peak.
    MaxDrawdown { drawdown: Decimal, limit: Decimal },
    /// Already `limit` open positions.
    MaxOpenPositions { open: usize, limit: usize },
    /// The market already holds `limit` USD of positions.
    MaxPosition { held: Decimal, limit: Decimal },
    /// Open positions already cost `limit` USD.
    MaxExposure { exposure: Decimal, limit: Decimal },
    /// Not enough cash for the smallest order.
    InsufficientCash { cash: Decimal },
    /// What was left (`usd`) is below the smallest order.
    BelowMinimum { usd: Decimal, min: Decimal },
    /// The strategy already has an order resting for this token.
    OrderPending,
    /// No book to trade against (no ask at the time of the signal).
    NoLiquidity,
}

/// Checks signals against [`RiskLimits`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskManager {
    pub limits: RiskLimits,
}

impl RiskManager {
    pub fn new(limits: RiskLimits) -> Self {
        RiskManager { limits }
    }

    /// The USD the signal may spend (its `suggested_usd`, cut to the room under the limits),
    /// or why it may spend nothing. Cash is what is free to spend
    /// ([`Portfolio::available_cash`]: cash less what resting buy orders hold).
    pub fn check(&self, signal: &Signal, portfolio: &Portfolio) -> Result<Decimal, Rejection> {
        let l = &self.limits;
        let cash = portfolio.available_cash();
        let drawdown = portfolio.drawdown();
        if drawdown >= l.max_drawdown {
            return Err(Rejection::MaxDrawdown {
                drawdown,
                limit: l.max_drawdown,
            });
        }
        let key = PositionKey {
            strategy: signal.strategy.clone(),
            token_id: signal.token_id.clone(),
        };
        let open = portfolio.positions.len();
        if !portfolio.positions.contains_key(&key) && open >= l.max_open_positions {
            return Err(Rejection::MaxOpenPositions {
                open,
                limit: l.max_open_positions,
            });
        }
        let held = portfolio.exposure_in(&signal.condition_id);
        if held >= l.max_position_usd {
            return Err(Rejection::MaxPosition {
                held,
                limit: l.max_position_usd,
            });
        }
        let exposure = portfolio.exposure();
        if exposure >= l.max_total_exposure_usd {
            return Err(Rejection::MaxExposure {
                exposure,
                limit: l.max_total_exposure_usd,
            });
        }
        if cash < l.min_order_usd {
            return Err(Rejection::InsufficientCash { cash });
        }
        let usd = signal
            .suggested_usd
            .min(l.max_position_usd - held)
            .min(l.max_total_exposure_usd - exposure)
            .min(cash);
        if usd < l.min_order_usd {
            return Err(Rejection::BelowMinimum {
                usd,
                min: l.min_order_usd,
            });
        }
        Ok(usd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fill::Fill;
    use crate::signal::Outcome;
    use crate::testkit::{at, d};

    fn signal(cid: &str, usd: &str) -> Signal {
        Signal {
            ts: at("2026-11-20T12:00:00Z"),
            strategy: "s".into(),
            condition_id: cid.into(),
            token_id: format!("{cid}-yes"),
            outcome: Outcome::Yes,
            reason: String::new(),
            edge: d("0.02"),
            confidence: 0.5,
            price: d("0.5"),
            suggested_usd: d(usd),
        }
    }

    /// An account of 1,000 holding `cost` USD (bought at 0.5, no fee) in each market listed.
    fn holding(markets: &[(&str, &str)]) -> Portfolio {
        let mut p = Portfolio::new(d("1000"));
        for (cid, cost) in markets {
            let fill = Fill {
                shares: d(cost) * d("2"),
                avg_price: d("0.5"),
                cost: d(cost),
                fee: d("0"),
                levels_used: 1,
            };
            p.apply_buy(
                "s",
                cid,
                &format!("{cid}-yes"),
                Outcome::Yes,
                &fill,
                at("2026-11-20T11:00:00Z"),
            );
        }
        p
    }

    fn limits() -> RiskManager {
        RiskManager::new(RiskLimits {
            max_position_usd: d("100"),
            max_total_exposure_usd: d("250"),
            max_open_positions: 3,
            max_drawdown: d("0.10"),
            min_order_usd: d("5"),
        })
    }

    #[test]
    fn given_room_under_every_limit_then_the_suggested_size_is_approved() {
        let p = holding(&[("0xa", "50")]);
        assert_eq!(limits().check(&signal("0xb", "40"), &p), Ok(d("40")));
    }

    #[test]
    fn max_position_cuts_to_the_room_left_in_the_market_then_refuses() {
        let p = holding(&[("0xa", "70")]);
        assert_eq!(limits().check(&signal("0xa", "40"), &p), Ok(d("30")));
        let full = holding(&[("0xa", "100")]);
        assert_eq!(
            limits().check(&signal("0xa", "40"), &full),
            Err(Rejection::MaxPosition {
                held: d("100"),
                limit: d("100")
            })
        );
    }

    #[test]
    fn max_exposure_cuts_to_the_room_left_then_refuses() {
        let p = holding(&[("0xa", "100"), ("0xb", "100")]);
        assert_eq!(limits().check(&signal("0xc", "80"), &p), Ok(d("50")));
        let full = holding(&[("0xa", "100"), ("0xb", "100"), ("0xc", "50")]);
        assert_eq!(
            limits().check(&signal("0xc", "10"), &full),
            Err(Rejection::MaxExposure {
                exposure: d("250"),
                limit: d("250")
            })
        );
    }

    #[test]
    fn max_open_positions_refuses_a_new_position_but_not_adding_to_one() {
        let p = holding(&[("0xa", "10"), ("0xb", "10"), ("0xc", "10")]);
        assert_eq!(
            limits().check(&signal("0xd", "10"), &p),
            Err(Rejection::MaxOpenPositions { open: 3, limit: 3 })
        );
        assert_eq!(limits().check(&signal("0xa", "10"), &p), Ok(d("10")));
    }

    #[test]
    fn max_drawdown_stops_new_positions() {
        let mut p = holding(&[]);
        p.cash = d("900.01");
        assert_eq!(limits().check(&signal("0xa", "10"), &p), Ok(d("10")));
        p.cash = d("900");
        assert_eq!(
            limits().check(&signal("0xa", "10"), &p),
            Err(Rejection::MaxDrawdown {
                drawdown: d("0.1"),
                limit: d("0.10")
            })
        );
    }

    #[test]
    fn cash_and_minimum_order_are_enforced() {
        let mut p = holding(&[]);
        p.reserved = d("980");
        assert_eq!(
            limits().check(&signal("0xa", "40"), &p),
            Ok(d("20")),
            "1000 − 980 reserved"
        );
        p.reserved = d("996");
        assert_eq!(
            limits().check(&signal("0xa", "40"), &p),
            Err(Rejection::InsufficientCash { cash: d("4") })
        );
        p.reserved = d("0");
        assert_eq!(
            limits().check(&signal("0xa", "3"), &p),
            Err(Rejection::BelowMinimum {
                usd: d("3"),
                min: d("5")
            })
        );
    }
}
