//! The paper executor's records as the Parquet tables `signals`, `fills` and `positions` hold
//! them (DESIGN.md, "Paper executor and backtester"): one plain row per signal a step decided
//! on, per fill its paper orders got, and per position it held or closed. The executor builds
//! them; the `store` crate encodes them (one file per table per executor step). Money is
//! [`Decimal`] (stored DECIMAL(18,6)), ratios `f64`, times UTC.
//!
//! The string columns hold a fixed vocabulary, given here as constants so the writer and any
//! reader spell them alike.

use crate::Ts;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `outcome` of a token: the market's first outcome.
pub const YES: &str = "YES";
/// `outcome` of a token: the market's second outcome.
pub const NO: &str = "NO";

/// [`SignalRow::decision`]: the signal became an order.
pub const ORDERED: &str = "ordered";
/// [`SignalRow::decision`]: risk or sizing turned it down ([`SignalRow::rejection`] says why).
pub const REJECTED: &str = "rejected";

/// [`FillRow::side`]: shares bought.
pub const BUY: &str = "BUY";
/// [`FillRow::side`]: shares sold.
pub const SELL: &str = "SELL";

/// [`FillRow::liquidity`]: the order took liquidity (walked the book).
pub const TAKER: &str = "taker";
/// [`FillRow::liquidity`]: a resting order was crossed.
pub const MAKER: &str = "maker";

/// [`PositionRow::status`]: still held.
pub const OPEN: &str = "open";
/// [`PositionRow::status`]: closed (exited or settled) at this step.
pub const CLOSED: &str = "closed";

/// One signal a strategy gave at an executor step, with what the executor made of it
/// (table `signals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRow {
    /// The step (decision time) that saw the signal.
    pub signal_ts: Ts,
    /// The strategy's name (`longshot_yes`, …).
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    /// The token's outcome, [`YES`] or [`NO`].
    pub outcome: String,
    /// Why the strategy signalled, for people.
    pub reason: String,
    /// The expected edge per share, in price units.
    pub edge: Decimal,
    /// The strategy's confidence, 0 to 1.
    pub confidence: f64,
    /// The token's price when the signal was taken.
    pub price: Decimal,
    /// The size the strategy suggested, USD.
    pub suggested_usd: Decimal,
    /// [`ORDERED`] or [`REJECTED`].
    pub decision: String,
    /// The paper order it became (`ordered` only).
    pub order_id: Option<i64>,
    /// The order's size after risk and sizing, USD (`ordered` only).
    pub order_usd: Option<Decimal>,
    /// Why it was turned down (`rejected` only): the limit or rule that stopped it.
    pub rejection: Option<String>,
}

/// One fill of a paper order (table `fills`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillRow {
    /// When the fill happened (the book or trade that filled it).
    pub fill_ts: Ts,
    pub order_id: i64,
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    /// [`YES`] or [`NO`].
    pub outcome: String,
    /// [`BUY`] or [`SELL`].
    pub side: String,
    /// [`TAKER`] or [`MAKER`].
    pub liquidity: String,
    /// Shares filled.
    pub shares: Decimal,
    /// The average price paid or received per share (the walk of the book), before fees.
    pub avg_price: Decimal,
    /// shares × avg_price, USD.
    pub notional: Decimal,
    /// The fee charged, USD.
    pub fee: Decimal,
    /// Book levels the fill took liquidity from (1 for a maker fill).
    pub levels: i32,
}

/// A position as of an executor step (table `positions`): a step that writes positions writes
/// each open position, marked to market, and each position it closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionRow {
    /// The step the row describes the position at.
    pub as_of: Ts,
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    /// [`YES`] or [`NO`].
    pub outcome: String,
    /// [`OPEN`] or [`CLOSED`].
    pub status: String,
    /// Shares held (for a closed position: the shares it held before closing).
    pub shares: Decimal,
    /// What the shares cost, fees included, USD.
    pub cost: Decimal,
    /// cost / shares; `None` when no share was held.
    pub entry_price: Option<Decimal>,
    /// The price the position is marked at; `None` when the token had no price at the step.
    pub mark: Option<Decimal>,
    /// shares × mark − cost, USD; `None` without a mark (and once closed).
    pub unrealised_pnl: Option<Decimal>,
    /// What closing it returned, fees deducted, USD (`closed` only).
    pub proceeds: Option<Decimal>,
    /// proceeds − cost, USD (`closed` only).
    pub realised_pnl: Option<Decimal>,
    pub opened_at: Ts,
    pub closed_at: Option<Ts>,
    /// Why it closed (`closed` only): the strategy's exit reason, or the settlement.
    pub close_reason: Option<String>,
}
