//! How many USD a signal gets before risk limits: a fixed amount, a fraction of the Kelly
//! stake, or an amount scaled to the market's recent volatility.

use crate::signal::Signal;
use crate::view::MarketView;
use polytape_core::money::SCALE;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The sizing method and its parameters (`sizing:` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sizing {
    /// The same USD for every signal.
    Fixed { usd: Decimal },
    /// `equity × fraction × f*`, capped at `max_usd`, where `f* = edge / (1 − price)` is the
    /// Kelly stake of a binary contract bought at `price` that pays 1 with probability
    /// `price + edge` (clamped to [0, 1]).
    Kelly { fraction: Decimal, max_usd: Decimal },
    /// Shares such that one typical step of the mid moves the position by `target_risk_usd`:
    /// `shares = target_risk_usd / σ`, USD = shares × price, capped at `max_usd`. `σ` is the
    /// root mean square of the changes between consecutive YES mids in the view's history
    /// (floored at `min_volatility`, which is also used when there are fewer than two points).
    Volatility {
        target_risk_usd: Decimal,
        max_usd: Decimal,
        min_volatility: Decimal,
    },
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing::Fixed {
            usd: Decimal::from(10),
        }
    }
}

impl Sizing {
    /// USD for `signal` given the account's `equity`, rounded down to cents; never negative.
    pub fn size(&self, signal: &Signal, view: &MarketView, equity: Decimal) -> Decimal {
        let usd = match self {
            Sizing::Fixed { usd } => *usd,
            Sizing::Kelly { fraction, max_usd } => {
                (equity.max(Decimal::ZERO) * *fraction * kelly(signal.edge, signal.price))
                    .min(*max_usd)
            }
            Sizing::Volatility {
                target_risk_usd,
                max_usd,
                min_volatility,
            } => {
                let sigma = volatility(view)
                    .unwrap_or(*min_volatility)
                    .max(*min_volatility);
                if sigma <= Decimal::ZERO {
                    *max_usd
                } else {
                    (*target_risk_usd / sigma * signal.price).min(*max_usd)
                }
            }
        };
        usd.max(Decimal::ZERO)
            .round_dp_with_strategy(2, RoundingStrategy::ToZero)
    }
}

/// The Kelly stake of a binary contract bought at `price` with estimated win probability
/// `price + edge`: `edge / (1 − price)`, clamped to [0, 1]; 0 at `price ≥ 1`.
pub fn kelly(edge: Decimal, price: Decimal) -> Decimal {
    let loss = Decimal::ONE - price;
    if loss <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    (edge / loss).clamp(Decimal::ZERO, Decimal::ONE)
}

/// Root mean square of the changes between consecutive mids of the view's history, to 6
/// places; `None` with fewer than two points.
pub fn volatility(view: &MarketView) -> Option<Decimal> {
    let changes: Vec<Decimal> = view
        .history
        .windows(2)
        .map(|w| w[1].mid - w[0].mid)
        .collect();
    if changes.is_empty() {
        return None;
    }
    let mean_sq = changes.iter().map(|c| c * c).sum::<Decimal>() / Decimal::from(changes.len());
    let sigma = mean_sq.to_f64()?.sqrt();
    Decimal::from_f64(sigma).map(|s| s.round_dp(SCALE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Outcome;
    use crate::testkit::{at, d, view, with_history};

    fn signal(price: &str, edge: &str) -> Signal {
        Signal {
            ts: at("2026-11-20T12:00:00Z"),
            strategy: "s".into(),
            condition_id: "0xm".into(),
            token_id: "0xm-yes".into(),
            outcome: Outcome::Yes,
            reason: String::new(),
            edge: d(edge),
            confidence: 0.5,
            price: d(price),
            suggested_usd: Decimal::ZERO,
        }
    }

    fn v() -> MarketView {
        view(
            "0xm",
            "2026-11-20T12:00:00Z",
            "2026-11-21T00:00:00Z",
            "0.50",
            "0.52",
        )
    }

    #[test]
    fn fixed_gives_the_same_usd() {
        assert_eq!(
            Sizing::Fixed { usd: d("25") }.size(&signal("0.9", "0.02"), &v(), d("1000")),
            d("25")
        );
    }

    #[test]
    fn kelly_is_edge_over_one_minus_price_times_the_fraction_capped() {
        // f* = 0.02 / 0.10 = 0.2; 1000 × 0.25 × 0.2 = 50.
        let k = |max: &str| Sizing::Kelly {
            fraction: d("0.25"),
            max_usd: d(max),
        };
        assert_eq!(
            k("100").size(&signal("0.90", "0.02"), &v(), d("1000")),
            d("50")
        );
        assert_eq!(
            k("40").size(&signal("0.90", "0.02"), &v(), d("1000")),
            d("40")
        );
        assert_eq!(kelly(d("0.02"), d("0.99")), d("1"), "clamped at 1");
        assert_eq!(
            kelly(d("-0.02"), d("0.5")),
            d("0"),
            "no stake without an edge"
        );
    }

    #[test]
    fn volatility_scaled_buys_target_risk_over_sigma_shares() {
        // Changes +0.02, −0.02, +0.02: σ = 0.02; 1 / 0.02 = 50 shares × 0.52 = 26 USD.
        let h = with_history(
            v(),
            &[
                ("2026-11-20T11:00:00Z", "0.50"),
                ("2026-11-20T11:10:00Z", "0.52"),
                ("2026-11-20T11:20:00Z", "0.50"),
                ("2026-11-20T11:30:00Z", "0.52"),
            ],
        );
        assert_eq!(volatility(&h), Some(d("0.02")));
        let vs = Sizing::Volatility {
            target_risk_usd: d("1"),
            max_usd: d("100"),
            min_volatility: d("0.005"),
        };
        assert_eq!(vs.size(&signal("0.52", "0.02"), &h, d("1000")), d("26"));
        // No history: σ floored at 0.005 → 200 shares × 0.52 = 104 → capped at 100.
        assert_eq!(vs.size(&signal("0.52", "0.02"), &v(), d("1000")), d("100"));
    }
}
