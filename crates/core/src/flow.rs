//! Trades and the last-hour trade-flow and whale features of a snapshot row.
//!
//! Units: `volume_*`, `avg_trade_size_1h`, `max_trade_size_1h` and every whale value are USDC
//! notional as traded (price × size, the unit of Gamma's volumes); `vwap_1h` is a price. Whale
//! tiers are by notional: 1 at ≥ $500, 2 at ≥ $2,000, 3 at ≥ $10,000; a whale trade is tier ≥ 2.
//!
//! A market's flow is over both its tokens in first-outcome terms ([`FlowTrade::of`]): a trade
//! of the second token at price p with side S counts as side ¬S at 1 − p, its notional as
//! traded (p × size).
//!
//! The values are computed from [`FlowSums`], which add up exactly: the feed keeps a market's
//! hour as sums of 15-second buckets, not as its trades, and gets the values its trades would
//! give.

use crate::Ts;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Taker side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// A trade as its market's flow counts it, in first-outcome terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowTrade {
    pub ts: Ts,
    /// The side in first-outcome terms.
    pub side: Side,
    /// The price in first-outcome terms.
    pub price: Decimal,
    pub size: Decimal,
    /// USDC as traded: the traded token's price × size.
    pub notional: Decimal,
}

impl FlowTrade {
    /// A trade of `outcome` (0: the first token, 1: the second) at `price`, `side`.
    pub fn of(ts: Ts, outcome: usize, side: Side, price: Decimal, size: Decimal) -> FlowTrade {
        let notional = price * size;
        if outcome == 0 {
            FlowTrade {
                ts,
                side,
                price,
                size,
                notional,
            }
        } else {
            FlowTrade {
                ts,
                side: side.opposite(),
                price: Decimal::ONE - price,
                size,
                notional,
            }
        }
    }
}

/// One trade of one token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub token_id: String,
    pub ts: Ts,
    pub price: Decimal,
    pub size: Decimal,
    pub side: Side,
}

impl Trade {
    /// price × size, USDC.
    pub fn notional_usd(&self) -> Decimal {
        self.price * self.size
    }

    /// 0 (below $500), 1 (≥ $500), 2 (≥ $2,000) or 3 (≥ $10,000).
    pub fn whale_tier(&self) -> u8 {
        whale_tier(self.notional_usd())
    }
}

/// Whale tier of a notional amount in USDC.
pub fn whale_tier(notional_usd: Decimal) -> u8 {
    WHALE_TIERS_USD
        .iter()
        .rev()
        .position(|t| notional_usd >= Decimal::from(*t))
        .map_or(0, |i| (WHALE_TIERS_USD.len() - i) as u8)
}

/// Lower bounds of whale tiers 1, 2, 3 in USDC.
pub const WHALE_TIERS_USD: [u32; 3] = [500, 2_000, 10_000];
/// The tier from which a trade counts as a whale trade.
pub const WHALE_MIN_TIER: u8 = 2;

/// The 17 last-hour trade-flow and whale values of a snapshot row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeFlow {
    pub trade_count_1h: u32,
    pub buy_count_1h: u32,
    pub sell_count_1h: u32,
    pub volume_1h: Decimal,
    pub buy_volume_1h: Decimal,
    pub sell_volume_1h: Decimal,
    pub avg_trade_size_1h: Option<Decimal>,
    pub max_trade_size_1h: Option<Decimal>,
    pub vwap_1h: Option<Decimal>,
    pub whale_count_1h: u32,
    pub whale_volume_1h: Decimal,
    pub whale_buy_volume_1h: Decimal,
    pub whale_sell_volume_1h: Decimal,
    pub whale_net_flow_1h: Decimal,
    pub whale_buy_ratio_1h: Option<f64>,
    /// Seconds since the last whale trade in the window.
    pub time_since_whale_s: Option<i64>,
    pub pct_volume_from_whales: Option<f64>,
}

/// What the 17 values are computed from, summed over some trades: one trade, a 15-second
/// bucket of a market's window, or a whole hour. Sums add exactly (`Decimal`), so the values of
/// merged buckets are those of their trades taken one by one. Sells are the total less the buys.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowSums {
    pub count: u32,
    pub buy_count: u32,
    /// Σ notional (USDC), and that of the buys.
    pub volume: Decimal,
    pub buy_volume: Decimal,
    /// Σ size (shares) and Σ price × size, first-outcome price: the VWAP's terms.
    pub shares: Decimal,
    pub priced: Decimal,
    /// The largest notional (0 when `count` is 0).
    pub max_notional: Decimal,
    pub whale_count: u32,
    pub whale_volume: Decimal,
    pub whale_buy_volume: Decimal,
    /// The newest whale trade's time, exact.
    pub last_whale: Option<Ts>,
}

impl FlowSums {
    /// Adds one trade.
    pub fn add(&mut self, t: &FlowTrade) {
        let notional = t.notional;
        let buy = t.side == Side::Buy;
        self.max_notional = if self.count == 0 {
            notional
        } else {
            self.max_notional.max(notional)
        };
        self.count += 1;
        self.buy_count += u32::from(buy);
        self.volume += notional;
        self.shares += t.size;
        self.priced += t.price * t.size;
        if buy {
            self.buy_volume += notional;
        }
        if whale_tier(notional) >= WHALE_MIN_TIER {
            self.whale_count += 1;
            self.whale_volume += notional;
            if buy {
                self.whale_buy_volume += notional;
            }
            self.last_whale = Some(self.last_whale.map_or(t.ts, |l| l.max(t.ts)));
        }
    }

    /// Adds the sums of other trades.
    pub fn merge(&mut self, o: &FlowSums) {
        if o.count == 0 {
            return;
        }
        self.max_notional = if self.count == 0 {
            o.max_notional
        } else {
            self.max_notional.max(o.max_notional)
        };
        self.count += o.count;
        self.buy_count += o.buy_count;
        self.volume += o.volume;
        self.buy_volume += o.buy_volume;
        self.shares += o.shares;
        self.priced += o.priced;
        self.whale_count += o.whale_count;
        self.whale_volume += o.whale_volume;
        self.whale_buy_volume += o.whale_buy_volume;
        self.last_whale = match (self.last_whale, o.last_whale) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

impl TradeFlow {
    /// Flow over the trades with `now - 1h < ts <= now`; others are ignored.
    pub fn over<'a>(trades: impl IntoIterator<Item = &'a FlowTrade>, now: Ts) -> TradeFlow {
        let from = now - chrono::Duration::hours(1);
        let mut sums = FlowSums::default();
        for t in trades.into_iter().filter(|t| t.ts > from && t.ts <= now) {
            sums.add(t);
        }
        TradeFlow::of_sums(&sums, now)
    }

    /// The 17 values of the trades summed in `s`, at `now` (for `time_since_whale_s`).
    pub fn of_sums(s: &FlowSums, now: Ts) -> TradeFlow {
        let mut f = TradeFlow {
            trade_count_1h: s.count,
            buy_count_1h: s.buy_count,
            sell_count_1h: s.count - s.buy_count,
            volume_1h: s.volume,
            buy_volume_1h: s.buy_volume,
            sell_volume_1h: s.volume - s.buy_volume,
            whale_count_1h: s.whale_count,
            whale_volume_1h: s.whale_volume,
            whale_buy_volume_1h: s.whale_buy_volume,
            whale_sell_volume_1h: s.whale_volume - s.whale_buy_volume,
            ..TradeFlow::default()
        };
        if s.count > 0 {
            f.max_trade_size_1h = Some(s.max_notional);
            f.avg_trade_size_1h = Some(s.volume / Decimal::from(s.count));
        }
        if !s.shares.is_zero() {
            f.vwap_1h = Some(s.priced / s.shares);
        }
        f.whale_net_flow_1h = f.whale_buy_volume_1h - f.whale_sell_volume_1h;
        if !f.whale_volume_1h.is_zero() {
            f.whale_buy_ratio_1h = (f.whale_buy_volume_1h / f.whale_volume_1h).to_f64();
        }
        if !f.volume_1h.is_zero() {
            f.pct_volume_from_whales =
                (f.whale_volume_1h / f.volume_1h * Decimal::ONE_HUNDRED).to_f64();
        }
        f.time_since_whale_s = s.last_whale.map(|t| (now - t).num_seconds());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }
    fn at(s: &str) -> Ts {
        s.parse().unwrap()
    }
    fn trade(ts: &str, price: &str, size: &str, side: Side) -> FlowTrade {
        FlowTrade::of(at(ts), 0, side, d(price), d(size))
    }

    #[test]
    fn whale_tiers_by_notional() {
        assert_eq!(whale_tier(d("499.99")), 0);
        assert_eq!(whale_tier(d("500")), 1);
        assert_eq!(whale_tier(d("2000")), 2);
        assert_eq!(whale_tier(d("10000")), 3);
    }

    #[test]
    fn flow_over_the_last_hour() {
        let now = at("2026-11-20T12:00:00Z");
        let trades = vec![
            trade("2026-11-20T10:59:59Z", "0.5", "100000", Side::Buy), // outside the window
            trade("2026-11-20T11:10:00Z", "0.5", "100", Side::Buy),    // $50
            trade("2026-11-20T11:20:00Z", "0.5", "5000", Side::Buy),   // $2,500 whale
            trade("2026-11-20T11:50:00Z", "0.4", "10000", Side::Sell), // $4,000 whale
            trade("2026-11-20T11:55:00Z", "0.6", "50", Side::Sell),    // $30
        ];
        let f = TradeFlow::over(&trades, now);
        assert_eq!(
            (f.trade_count_1h, f.buy_count_1h, f.sell_count_1h),
            (4, 2, 2)
        );
        assert_eq!(f.volume_1h, d("6580"));
        assert_eq!((f.buy_volume_1h, f.sell_volume_1h), (d("2550"), d("4030")));
        assert_eq!(f.max_trade_size_1h, Some(d("4000")));
        assert_eq!(f.avg_trade_size_1h, Some(d("1645")));
        assert_eq!(f.vwap_1h, Some(d("6580") / d("15150")));
        assert_eq!((f.whale_count_1h, f.whale_volume_1h), (2, d("6500")));
        assert_eq!(f.whale_net_flow_1h, d("-1500"));
        assert!((f.whale_buy_ratio_1h.unwrap() - 2500.0 / 6500.0).abs() < 1e-12);
        assert_eq!(f.time_since_whale_s, Some(600));
        assert!((f.pct_volume_from_whales.unwrap() - 6500.0 / 6580.0 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn second_token_trades_count_as_the_opposite_side_at_the_complement_price() {
        let now = at("2026-11-20T12:00:00Z");
        // Buying the second token at 0.3 is selling the first at 0.7; the notional stays
        // what was paid: 0.3 × 10,000 = $3,000, a whale sell.
        let no = FlowTrade::of(
            at("2026-11-20T11:30:00Z"),
            1,
            Side::Buy,
            d("0.3"),
            d("10000"),
        );
        assert_eq!(
            (no.side, no.price, no.notional),
            (Side::Sell, d("0.7"), d("3000"))
        );
        let yes = trade("2026-11-20T11:40:00Z", "0.72", "100", Side::Buy);
        let f = TradeFlow::over(&[no, yes], now);
        assert_eq!((f.buy_count_1h, f.sell_count_1h), (1, 1));
        assert_eq!((f.buy_volume_1h, f.sell_volume_1h), (d("72"), d("3000")));
        assert_eq!(f.whale_sell_volume_1h, d("3000"));
        assert_eq!(f.vwap_1h, Some((d("7000") + d("72")) / d("10100")));
    }

    #[test]
    fn sums_merged_from_parts_give_the_values_of_the_trades_one_by_one() {
        let now = at("2026-11-20T12:00:00Z");
        let mut trades = vec![
            trade("2026-11-20T11:10:00Z", "0.5", "100", Side::Buy),
            trade("2026-11-20T11:20:00Z", "0.5", "5000", Side::Buy),
            trade("2026-11-20T11:50:00Z", "0.4", "10000", Side::Sell),
            trade("2026-11-20T11:55:00Z", "0.6", "50.123456", Side::Sell),
        ];
        trades.push(FlowTrade::of(
            at("2026-11-20T11:56:00Z"),
            1,
            Side::Buy,
            d("0.3"),
            d("10000"),
        ));
        let want = TradeFlow::over(&trades, now);
        // Given the trades summed in two parts (an empty one merged too), then merged.
        let (mut a, mut b) = (FlowSums::default(), FlowSums::default());
        for (i, t) in trades.iter().enumerate() {
            if i % 2 == 0 {
                a.add(t)
            } else {
                b.add(t)
            }
        }
        let mut all = FlowSums::default();
        all.merge(&FlowSums::default());
        all.merge(&b);
        all.merge(&a);
        let got = TradeFlow::of_sums(&all, now);
        assert_eq!(got, want);
        assert_eq!(got.sell_volume_1h, d("4030.0740736") + d("3000"));
        assert_eq!(got.whale_sell_volume_1h, d("7000"));
        assert_eq!(got.time_since_whale_s, Some(240), "the newest whale, exact");
    }

    #[test]
    fn no_trades_leaves_ratios_unknown() {
        let f = TradeFlow::over(&[], at("2026-11-20T12:00:00Z"));
        assert_eq!(f.trade_count_1h, 0);
        assert_eq!(
            (
                f.vwap_1h,
                f.whale_buy_ratio_1h,
                f.time_since_whale_s,
                f.pct_volume_from_whales
            ),
            (None, None, None, None)
        );
    }
}
