//! Cash, open positions, closed positions, marks, settlement and P&L.
//!
//! A position belongs to one strategy and one token: two strategies buying the same token hold
//! two positions, so P&L is per strategy. Positions are marked at the token's **best bid** (what
//! selling the first share would get), falling back to the mid and then to the entry price: a
//! mark at the mid would show a profit that a sale could not realise.
//!
//! Settlement pays 1 per share of the winning token and 0 for the other; an INVALID market
//! (every outcome 0.5) pays the split, 0.5 per share. Redeeming charges no fee.

use crate::fill::Fill;
use crate::signal::{ExitReason, Outcome};
use crate::view::MarketView;
use crate::Ts;
use polytape_core::money::SCALE;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The key of a position: one strategy's holding of one token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PositionKey {
    pub strategy: String,
    pub token_id: String,
}

/// An open position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    pub outcome: Outcome,
    pub shares: Decimal,
    /// USD paid for the shares still held, fees included.
    pub cost: Decimal,
    /// Average fill price of the shares held, fees excluded.
    pub entry_price: Decimal,
    pub opened_at: Ts,
    /// The last mark price (best bid, else mid); `None` until first marked.
    pub mark: Option<Decimal>,
    pub marked_at: Option<Ts>,
}

impl Position {
    pub fn key(&self) -> PositionKey {
        PositionKey {
            strategy: self.strategy.clone(),
            token_id: self.token_id.clone(),
        }
    }

    /// Marked value: shares × mark (the entry price before the first mark).
    pub fn value(&self) -> Decimal {
        self.shares * self.mark.unwrap_or(self.entry_price)
    }

    /// Marked value minus cost.
    pub fn unrealised_pnl(&self) -> Decimal {
        self.value() - self.cost
    }
}

/// Why a position (or part of it) was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CloseReason {
    /// Sold because the strategy's `should_exit` said so.
    Exit { reason: ExitReason },
    /// Redeemed at resolution for `payout` per share.
    Settled { payout: Decimal },
}

/// A position, or the part of it that was sold, once closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedPosition {
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    pub outcome: Outcome,
    pub shares: Decimal,
    /// The cost of these shares, fees included.
    pub cost: Decimal,
    /// USD received, fees deducted.
    pub proceeds: Decimal,
    /// `proceeds − cost`.
    pub realised_pnl: Decimal,
    pub opened_at: Ts,
    pub closed_at: Ts,
    pub reason: CloseReason,
}

/// P&L of one strategy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyPnl {
    pub realised: Decimal,
    pub unrealised: Decimal,
    /// Fees paid, buys and sells (already inside realised and unrealised).
    pub fees: Decimal,
    /// Closed positions (each partial sale counts once).
    pub closed: u32,
    /// Closed positions with a positive realised P&L.
    pub wins: u32,
    /// Cost of the open positions.
    pub exposure: Decimal,
}

/// One point of the equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityPoint {
    pub ts: Ts,
    pub cash: Decimal,
    /// Cost of the open positions.
    pub exposure: Decimal,
    /// Cash plus the marked value of the open positions.
    pub equity: Decimal,
    /// The highest equity so far.
    pub peak: Decimal,
    /// `(peak − equity) / peak`, 0 at a peak.
    pub drawdown: Decimal,
}

/// The paper account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    pub initial_cash: Decimal,
    pub cash: Decimal,
    /// USD held back for resting buy orders (their unfilled notional); not free to spend.
    pub reserved: Decimal,
    /// Serialised as a list (JSON object keys must be strings; each position holds its key).
    #[serde(with = "positions_as_list")]
    pub positions: BTreeMap<PositionKey, Position>,
    pub closed: Vec<ClosedPosition>,
    /// Fees paid per strategy.
    pub fees: BTreeMap<String, Decimal>,
    /// The highest equity recorded ([`Portfolio::record_equity`]).
    pub peak_equity: Decimal,
    pub equity_curve: Vec<EquityPoint>,
}

impl Portfolio {
    pub fn new(initial_cash: Decimal) -> Portfolio {
        Portfolio {
            initial_cash,
            cash: initial_cash,
            reserved: Decimal::ZERO,
            positions: BTreeMap::new(),
            closed: Vec::new(),
            fees: BTreeMap::new(),
            peak_equity: initial_cash,
            equity_curve: Vec::new(),
        }
    }

    /// Records a buy: cash goes down by cost + fee; the position grows.
    pub fn apply_buy(
        &mut self,
        strategy: &str,
        condition_id: &str,
        token_id: &str,
        outcome: Outcome,
        fill: &Fill,
        ts: Ts,
    ) {
        if fill.is_empty() {
            return;
        }
        self.cash -= fill.cost + fill.fee;
        *self.fees.entry(strategy.to_string()).or_default() += fill.fee;
        let key = PositionKey {
            strategy: strategy.to_string(),
            token_id: token_id.to_string(),
        };
        let p = self.positions.entry(key).or_insert_with(|| Position {
            strategy: strategy.to_string(),
            condition_id: condition_id.to_string(),
            token_id: token_id.to_string(),
            outcome,
            shares: Decimal::ZERO,
            cost: Decimal::ZERO,
            entry_price: Decimal::ZERO,
            opened_at: ts,
            mark: None,
            marked_at: None,
        });
        let notional = p.entry_price * p.shares + fill.cost;
        p.shares += fill.shares;
        p.cost += fill.cost + fill.fee;
        p.entry_price = (notional / p.shares).round_dp(SCALE);
    }

    /// Records a sale of `fill.shares` of the position at `key` (at most what it holds): cash
    /// goes up by the proceeds net of fee, the cost of the shares sold is released in
    /// proportion, and the sold part is returned as closed. The position stays open with what
    /// is left when the fill was partial.
    pub fn apply_sell(
        &mut self,
        key: &PositionKey,
        fill: &Fill,
        ts: Ts,
        reason: ExitReason,
    ) -> Option<ClosedPosition> {
        if fill.is_empty() {
            return None;
        }
        let p = self.positions.get_mut(key)?;
        let sold = fill.shares.min(p.shares);
        let cost = if sold == p.shares {
            p.cost
        } else {
            (p.cost * sold / p.shares).round_dp(SCALE)
        };
        let proceeds = fill.cost - fill.fee;
        self.cash += proceeds;
        *self.fees.entry(key.strategy.clone()).or_default() += fill.fee;
        let closed = ClosedPosition {
            strategy: p.strategy.clone(),
            condition_id: p.condition_id.clone(),
            token_id: p.token_id.clone(),
            outcome: p.outcome,
            shares: sold,
            cost,
            proceeds,
            realised_pnl: proceeds - cost,
            opened_at: p.opened_at,
            closed_at: ts,
            reason: CloseReason::Exit { reason },
        };
        p.shares -= sold;
        p.cost -= cost;
        if p.shares.is_zero() {
            self.positions.remove(key);
        }
        self.closed.push(closed.clone());
        Some(closed)
    }

    /// Settles every open position in `condition_id` at the market's final outcome and returns
    /// them closed, in key order. Positions stay open when the outcome names no payout for
    /// their token (no winner, not invalid, and no two-outcome payout vector).
    pub fn settle(
        &mut self,
        condition_id: &str,
        outcome: &polytape_core::Outcome,
        ts: Ts,
    ) -> Vec<ClosedPosition> {
        let keys: Vec<PositionKey> = self
            .positions
            .iter()
            .filter(|(_, p)| p.condition_id == condition_id)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in keys {
            let Some(p) = self.positions.get(&key) else {
                continue;
            };
            let Some(payout) = payout(outcome, p.outcome) else {
                continue;
            };
            let proceeds = p.shares * payout;
            let closed = ClosedPosition {
                strategy: p.strategy.clone(),
                condition_id: p.condition_id.clone(),
                token_id: p.token_id.clone(),
                outcome: p.outcome,
                shares: p.shares,
                cost: p.cost,
                proceeds,
                realised_pnl: proceeds - p.cost,
                opened_at: p.opened_at,
                closed_at: ts,
                reason: CloseReason::Settled { payout },
            };
            self.cash += proceeds;
            self.positions.remove(&key);
            self.closed.push(closed.clone());
            out.push(closed);
        }
        out
    }

    /// Marks the positions in `view`'s market at the token's best bid, else its mid.
    pub fn mark(&mut self, view: &MarketView) {
        for p in self.positions.values_mut() {
            if p.condition_id != view.condition_id {
                continue;
            }
            let q = view.quote(p.outcome);
            if let Some(price) = q.bid.or(q.mid) {
                p.mark = Some(price);
                p.marked_at = Some(view.t);
            }
        }
    }

    /// Cash not held back for resting buy orders.
    pub fn available_cash(&self) -> Decimal {
        self.cash - self.reserved
    }

    /// Cost of the open positions.
    pub fn exposure(&self) -> Decimal {
        self.positions.values().map(|p| p.cost).sum()
    }

    /// Cost of the open positions in one market (all strategies).
    pub fn exposure_in(&self, condition_id: &str) -> Decimal {
        self.positions
            .values()
            .filter(|p| p.condition_id == condition_id)
            .map(|p| p.cost)
            .sum()
    }

    /// Cash plus the marked value of the open positions.
    pub fn equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .values()
                .map(Position::value)
                .sum::<Decimal>()
    }

    /// Peak-to-trough drawdown now, as a fraction of the peak: `(peak − equity) / peak`, where
    /// the peak includes the current equity.
    pub fn drawdown(&self) -> Decimal {
        let equity = self.equity();
        let peak = self.peak_equity.max(equity);
        if peak <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        ((peak - equity) / peak).round_dp(SCALE)
    }

    /// Appends (and returns) the equity point at `ts`, raising the peak when equity is higher.
    pub fn record_equity(&mut self, ts: Ts) -> EquityPoint {
        let drawdown = self.drawdown();
        let equity = self.equity();
        self.peak_equity = self.peak_equity.max(equity);
        let point = EquityPoint {
            ts,
            cash: self.cash,
            exposure: self.exposure(),
            equity,
            peak: self.peak_equity,
            drawdown,
        };
        self.equity_curve.push(point);
        point
    }

    /// Realised and unrealised P&L, fees, closed count and wins per strategy, by name.
    pub fn pnl_by_strategy(&self) -> BTreeMap<String, StrategyPnl> {
        let mut out: BTreeMap<String, StrategyPnl> = BTreeMap::new();
        for c in &self.closed {
            let s = out.entry(c.strategy.clone()).or_default();
            s.realised += c.realised_pnl;
            s.closed += 1;
            if c.realised_pnl > Decimal::ZERO {
                s.wins += 1;
            }
        }
        for p in self.positions.values() {
            let s = out.entry(p.strategy.clone()).or_default();
            s.unrealised += p.unrealised_pnl();
            s.exposure += p.cost;
        }
        for (name, fee) in &self.fees {
            out.entry(name.clone()).or_default().fees += *fee;
        }
        out
    }
}

/// [`Portfolio::positions`] as a list of positions, keyed again when read.
mod positions_as_list {
    use super::{Position, PositionKey};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<PositionKey, Position>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<PositionKey, Position>, D::Error> {
        let list = Vec::<Position>::deserialize(d)?;
        Ok(list.into_iter().map(|p| (p.key(), p)).collect())
    }
}

/// What one share of `held` redeems for under `outcome`.
pub fn payout(outcome: &polytape_core::Outcome, held: Outcome) -> Option<Decimal> {
    if outcome.invalid {
        return Some(Decimal::new(5, 1));
    }
    match outcome.winner {
        Some(w) => Some(if w == held.index() {
            Decimal::ONE
        } else {
            Decimal::ZERO
        }),
        None if outcome.payouts.len() == 2 => outcome.payouts.get(held.index()).copied(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, d, resolved, view};

    fn fill(shares: &str, price: &str, fee: &str) -> Fill {
        Fill {
            shares: d(shares),
            avg_price: d(price),
            cost: d(shares) * d(price),
            fee: d(fee),
            levels_used: 1,
        }
    }

    fn bought() -> Portfolio {
        let mut p = Portfolio::new(d("1000"));
        p.apply_buy(
            "longshot_yes",
            "0xm",
            "0xm-yes",
            Outcome::Yes,
            &fill("100", "0.94", "0.5"),
            at("2026-11-20T12:00:00Z"),
        );
        p
    }

    fn key() -> PositionKey {
        PositionKey {
            strategy: "longshot_yes".into(),
            token_id: "0xm-yes".into(),
        }
    }

    #[test]
    fn given_a_buy_then_cash_falls_by_cost_and_fee_and_the_mark_is_the_best_bid() {
        let mut p = bought();
        assert_eq!(p.cash, d("905.5"));
        assert_eq!(p.positions[&key()].cost, d("94.5"));
        p.mark(&view(
            "0xm",
            "2026-11-20T13:00:00Z",
            "2026-11-21T00:00:00Z",
            "0.90",
            "0.96",
        ));
        let pos = &p.positions[&key()];
        assert_eq!(pos.mark, Some(d("0.90")));
        assert_eq!(pos.unrealised_pnl(), d("-4.5"), "100 × 0.90 − 94.5");
        assert_eq!(p.equity(), d("995.5"));
        assert_eq!(p.drawdown(), d("0.0045"), "(1000 − 995.5) / 1000");
    }

    #[test]
    fn given_the_winner_held_when_settled_then_each_share_pays_one() {
        let mut p = bought();
        let closed = p.settle("0xm", &resolved(Some(0), false), at("2026-11-21T01:00:00Z"));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].proceeds, d("100"));
        assert_eq!(closed[0].realised_pnl, d("5.5"));
        assert_eq!(p.cash, d("1005.5"));
        assert!(p.positions.is_empty());
        let pnl = &p.pnl_by_strategy()["longshot_yes"];
        assert_eq!(
            (pnl.realised, pnl.wins, pnl.closed, pnl.fees),
            (d("5.5"), 1, 1, d("0.5"))
        );
    }

    #[test]
    fn given_the_loser_or_invalid_when_settled_then_zero_or_the_split() {
        let mut lost = bought();
        let c = lost.settle("0xm", &resolved(Some(1), false), at("2026-11-21T01:00:00Z"));
        assert_eq!((c[0].proceeds, c[0].realised_pnl), (d("0"), d("-94.5")));
        assert_eq!(lost.pnl_by_strategy()["longshot_yes"].wins, 0);
        let mut invalid = bought();
        let c = invalid.settle("0xm", &resolved(None, true), at("2026-11-21T01:00:00Z"));
        assert_eq!((c[0].proceeds, c[0].realised_pnl), (d("50.0"), d("-44.5")));
        assert_eq!(c[0].reason, CloseReason::Settled { payout: d("0.5") });
        let mut other = bought();
        assert!(other
            .settle(
                "0xother",
                &resolved(Some(0), false),
                at("2026-11-21T01:00:00Z")
            )
            .is_empty());
    }

    #[test]
    fn given_a_partial_sale_then_cost_is_released_in_proportion() {
        let mut p = bought();
        let reason = ExitReason::MaxHold { hours: 1 };
        let c = p
            .apply_sell(
                &key(),
                &fill("40", "0.97", "0"),
                at("2026-11-20T14:00:00Z"),
                reason,
            )
            .unwrap();
        assert_eq!(
            (c.shares, c.cost, c.proceeds),
            (d("40"), d("37.8"), d("38.80"))
        );
        assert_eq!(c.realised_pnl, d("1.00"));
        let left = &p.positions[&key()];
        assert_eq!((left.shares, left.cost), (d("60"), d("56.7")));
        assert_eq!(p.cash, d("944.30"));
    }

    #[test]
    fn given_equity_rises_then_falls_then_drawdown_is_from_the_peak() {
        let mut p = Portfolio::new(d("100"));
        p.cash = d("120");
        assert_eq!(p.record_equity(at("2026-11-20T12:00:00Z")).peak, d("120"));
        p.cash = d("90");
        let pt = p.record_equity(at("2026-11-20T13:00:00Z"));
        assert_eq!((pt.peak, pt.drawdown), (d("120"), d("0.25")));
        assert_eq!(p.equity_curve.len(), 2);
    }
}
