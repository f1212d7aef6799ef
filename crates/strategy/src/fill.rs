//! What a market order gets from a book: the walk level by level, best first, and the taker fee.
//!
//! Slippage is the walk itself: every share is bought at the price of the level it came from.
//! A fill never takes more than the book shows; when the book is thin the fill is partial.

use polytape_core::book::{best_first, BookSide};
use polytape_core::money::SCALE;
use polytape_core::{Level, Market};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// How much an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Amount {
    /// USD of notional (price × shares), fees excluded: buys are sized this way.
    Usd(Decimal),
    /// Shares: sells close positions this way.
    Shares(Decimal),
}

/// Polymarket's taker fee on one fill at price `p` of `shares` shares:
/// `fee = shares × rate × (p × (1 − p))^exponent`, charged to takers only (makers pay none).
///
/// Source: docs.polymarket.com/trading/fees, as read by NautilusTrader's Polymarket adapter
/// (`nautilus_polymarket::execution::parse::compute_commission`): `rate` and `exponent` are the
/// market's Gamma `feeSchedule {rate, exponent}` (each market has its own: [`FeeModel::of_market`]);
/// a market with `feesEnabled: false` charges nothing; the fee is floored to 5 decimal places
/// (0.00001 USDC). The configuration's `execution.taker_fee` is the fallback for markets whose
/// schedule polytape does not know. The older CTF-exchange formula,
/// `bps × min(p, 1 − p) × shares`, is not what Polymarket charges today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeModel {
    /// `feeSchedule.rate` (0.03 for 3 %).
    pub rate: Decimal,
    /// `feeSchedule.exponent` (1 for most fee-charging markets, 2 for short crypto binaries).
    pub exponent: u32,
}

impl Default for FeeModel {
    /// No fee: most Polymarket markets charge none.
    fn default() -> Self {
        FeeModel {
            rate: Decimal::ZERO,
            exponent: 1,
        }
    }
}

impl FeeModel {
    /// The taker fee of `market` as Gamma states it: its `feeSchedule`, or no fee when
    /// `feesEnabled` is false; `None` when neither is known (fees enabled without a schedule,
    /// or a market stored before polytape kept them): the caller's fallback applies.
    pub fn of_market(market: &Market) -> Option<FeeModel> {
        market.known_fee().map(|schedule| match schedule {
            Some(f) => FeeModel {
                rate: f.rate,
                exponent: f.exponent,
            },
            None => FeeModel::default(),
        })
    }

    /// A rate given in basis points (`fee_rate_bps`), exponent 1.
    pub fn from_bps(bps: u32) -> FeeModel {
        FeeModel {
            rate: Decimal::from(bps) / Decimal::from(10_000),
            exponent: 1,
        }
    }

    /// The taker fee on `shares` bought or sold at `price`, floored to 5 decimal places.
    pub fn fee(&self, shares: Decimal, price: Decimal) -> Decimal {
        let curve = price * (Decimal::ONE - price);
        let mut f = shares * self.rate;
        for _ in 0..self.exponent {
            f *= curve;
        }
        f.round_dp_with_strategy(5, RoundingStrategy::ToZero)
    }
}

/// What a walk of one side of a book got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub shares: Decimal,
    /// `cost / shares`, rounded to 6 places; zero when nothing filled.
    pub avg_price: Decimal,
    /// Σ level price × shares taken: USD paid (a buy) or received (a sell), before fees.
    pub cost: Decimal,
    /// The taker fee, summed per level ([`FeeModel::fee`] at each level's price).
    pub fee: Decimal,
    /// How many levels were touched.
    pub levels_used: u32,
}

impl Fill {
    /// True when nothing was filled.
    pub fn is_empty(&self) -> bool {
        self.shares.is_zero()
    }
}

/// Walks `levels` (one side of a book, in any order) best first — asks from the lowest price
/// when `side` is [`BookSide::Ask`] (a buy), bids from the highest when [`BookSide::Bid`] (a
/// sell) — until `amount` is filled or the book runs out. Levels with an invalid price or size
/// are skipped. Shares bought for a USD amount are rounded down to 6 places, so the cost never
/// exceeds the amount.
pub fn walk_book(levels: &[Level], side: BookSide, amount: Amount, fee: &FeeModel) -> Fill {
    walk_book_to(levels, side, amount, fee, None)
}

/// [`walk_book`] that stops at `limit`: asks above it (a buy) or bids below it (a sell) are not
/// taken. The part of a limit order that can fill at once.
pub fn walk_book_to(
    levels: &[Level],
    side: BookSide,
    amount: Amount,
    fee: &FeeModel,
    limit: Option<Decimal>,
) -> Fill {
    let mut out = Fill::default();
    let mut left = match amount {
        Amount::Usd(x) | Amount::Shares(x) => x,
    };
    for level in best_first(levels, side) {
        if left <= Decimal::ZERO {
            break;
        }
        if level.invalid_reason().is_some() || level.size.is_zero() || level.price.is_zero() {
            continue;
        }
        let beyond = match (side, limit) {
            (BookSide::Ask, Some(l)) => level.price > l,
            (BookSide::Bid, Some(l)) => level.price < l,
            (_, None) => false,
        };
        if beyond {
            break;
        }
        let shares = match amount {
            Amount::Usd(_) => (left / level.price)
                .round_dp_with_strategy(SCALE, RoundingStrategy::ToZero)
                .min(level.size),
            Amount::Shares(_) => left.min(level.size),
        };
        if shares.is_zero() {
            break;
        }
        let notional = shares * level.price;
        out.shares += shares;
        out.cost += notional;
        out.fee += fee.fee(shares, level.price);
        out.levels_used += 1;
        left -= match amount {
            Amount::Usd(_) => notional,
            Amount::Shares(_) => shares,
        };
    }
    if !out.shares.is_zero() {
        out.avg_price = (out.cost / out.shares).round_dp(SCALE);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{d, lvl};

    /// Asks as Polymarket serves them: best LAST.
    fn asks() -> Vec<Level> {
        vec![lvl("0.60", "1000"), lvl("0.55", "200"), lvl("0.50", "100")]
    }

    #[test]
    fn given_usd_when_buying_then_asks_are_walked_from_the_lowest_price() {
        // 100 × 0.50 = 50, then 100 of the 200 at 0.55 = 55: 105 USD for 200 shares.
        let f = walk_book(
            &asks(),
            BookSide::Ask,
            Amount::Usd(d("105")),
            &FeeModel::default(),
        );
        assert_eq!(
            f,
            Fill {
                shares: d("200"),
                avg_price: d("0.525"),
                cost: d("105.00"),
                fee: d("0"),
                levels_used: 2,
            }
        );
    }

    #[test]
    fn given_more_than_the_book_shows_then_the_fill_is_partial() {
        let f = walk_book(
            &asks(),
            BookSide::Ask,
            Amount::Shares(d("5000")),
            &FeeModel::default(),
        );
        assert_eq!(f.shares, d("1300"), "100 + 200 + 1000: all the book shows");
        assert_eq!(f.cost, d("760.00"), "50 + 110 + 600");
        assert_eq!(f.levels_used, 3);
    }

    #[test]
    fn given_shares_when_selling_then_bids_are_walked_from_the_highest_price() {
        let bids = vec![lvl("0.40", "50"), lvl("0.48", "30"), lvl("0.45", "100")];
        let f = walk_book(
            &bids,
            BookSide::Bid,
            Amount::Shares(d("60")),
            &FeeModel::default(),
        );
        assert_eq!(f.shares, d("60"));
        assert_eq!(f.cost, d("27.90"), "30 × 0.48 + 30 × 0.45");
        assert_eq!(f.avg_price, d("0.465"));
    }

    #[test]
    fn given_a_fee_rate_then_the_fee_follows_p_times_one_minus_p_per_level() {
        // 3 % rate: 100 × 0.03 × 0.5 × 0.5 = 0.75 at 0.50; 100 × 0.03 × 0.55 × 0.45 = 0.7425.
        let fee = FeeModel {
            rate: d("0.03"),
            exponent: 1,
        };
        let f = walk_book(&asks(), BookSide::Ask, Amount::Shares(d("200")), &fee);
        assert_eq!(f.fee, d("1.4925"));
        // exponent 2 (short crypto binaries): 100 × 0.25 × 0.2484² = 1.542564, floored to 5 dp.
        let crypto = FeeModel {
            rate: d("0.25"),
            exponent: 2,
        };
        assert_eq!(crypto.fee(d("100"), d("0.54")), d("1.54256"));
        assert_eq!(FeeModel::from_bps(200).fee(d("10"), d("0.9")), d("0.018"));
    }

    #[test]
    fn given_a_market_schedule_then_it_is_the_fee_and_fees_disabled_is_none() {
        let mut m = crate::testkit::market("0xm", "2026-11-21T00:00:00Z");
        assert_eq!(
            FeeModel::of_market(&m),
            None,
            "unknown: the fallback applies"
        );
        m.fees_enabled = Some(true);
        assert_eq!(FeeModel::of_market(&m), None, "enabled without a schedule");
        m.fee = Some(polytape_core::FeeSchedule {
            rate: d("0.03"),
            exponent: 1,
            rebate_rate: Some(d("0.25")),
            taker_only: true,
        });
        assert_eq!(
            FeeModel::of_market(&m),
            Some(FeeModel {
                rate: d("0.03"),
                exponent: 1
            })
        );
        m.fees_enabled = Some(false);
        assert_eq!(
            FeeModel::of_market(&m),
            Some(FeeModel::default()),
            "disabled: no fee, whatever the schedule says"
        );
    }

    #[test]
    fn given_a_limit_then_levels_beyond_it_are_not_taken() {
        let f = walk_book_to(
            &asks(),
            BookSide::Ask,
            Amount::Usd(d("1000")),
            &FeeModel::default(),
            Some(d("0.55")),
        );
        assert_eq!((f.shares, f.cost), (d("300"), d("160.00")));
    }

    #[test]
    fn given_an_empty_or_invalid_book_then_nothing_fills() {
        let f = walk_book(
            &[],
            BookSide::Ask,
            Amount::Usd(d("10")),
            &FeeModel::default(),
        );
        assert!(f.is_empty());
        assert_eq!(f.avg_price, d("0"));
        let bad = vec![lvl("1.5", "10"), lvl("0.5", "0")];
        assert!(walk_book(
            &bad,
            BookSide::Ask,
            Amount::Usd(d("10")),
            &FeeModel::default()
        )
        .is_empty());
    }
}
