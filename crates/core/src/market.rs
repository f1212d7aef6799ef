//! Markets as polytape tracks them, and the values Gamma reports for a market at one tick.

use crate::tier::Tier;
use crate::Ts;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A binary market that passed discovery's filters: what the Markets table holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Market {
    /// `0x` + 64 hex: the market's key everywhere.
    pub condition_id: String,
    pub question: String,
    pub slug: Option<String>,
    /// Token of the first outcome ("Yes", "Up", …): the token a snapshot row describes.
    pub yes_token_id: String,
    /// Token of the second outcome.
    pub no_token_id: String,
    /// The first and second outcome labels.
    pub outcomes: [String; 2],
    pub end_date: Ts,
    /// Current sampling tier; `None` once the end date has passed.
    pub tier: Option<Tier>,
    /// Still sampled (end date not passed, not closed).
    pub active: bool,
    pub resolved: bool,
    /// Winning outcome label once resolved.
    pub outcome: Option<String>,
    pub first_seen: Ts,
    pub category: Option<String>,
    pub neg_risk: bool,
    /// 24 h volume at discovery, USDC.
    pub volume_24h: Option<Decimal>,
    /// The stored record's version, for writes that must not undo another writer's: a write
    /// succeeds only while the stored version is still this one (0: not stored yet), and the
    /// store keeps it incremented. Read it, decide, write; on a conflict read again.
    #[serde(default)]
    pub version: u64,
}

/// What Gamma says about a market at one tick. Every value is optional: a value Gamma did not
/// send (or sent out of range) is `None` and becomes NULL, never a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MarketQuote {
    pub condition_id: String,
    /// Price of the first outcome (`outcomePrices[0]`).
    pub price: Option<Decimal>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    pub spread: Option<Decimal>,
    pub last_trade_price: Option<Decimal>,
    pub price_change_1h: Option<Decimal>,
    pub price_change_1d: Option<Decimal>,
    pub price_change_1w: Option<Decimal>,
    pub price_change_1m: Option<Decimal>,
    pub volume_total: Option<Decimal>,
    pub volume_24h: Option<Decimal>,
    pub volume_1w: Option<Decimal>,
    pub liquidity: Option<Decimal>,
    pub tick_size: Option<Decimal>,
    pub competitive: Option<f64>,
    pub category: Option<String>,
    pub neg_risk: Option<bool>,
    pub end_date: Option<Ts>,
    pub closed: Option<bool>,
}
