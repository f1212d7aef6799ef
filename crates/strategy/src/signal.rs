//! Signals: what a strategy wants bought, and why a position should be closed.
//!
//! The paper executor only ever *buys* an outcome token: a bet against YES is a buy of NO.
//! Selling is how a position is closed (or it is held to settlement).

use crate::Ts;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One of a binary market's two outcome tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// The first outcome ("Yes", "Up", …).
    Yes,
    /// The second outcome.
    No,
}

impl Outcome {
    /// Index in the market's outcome order (0: YES).
    pub fn index(self) -> usize {
        match self {
            Outcome::Yes => 0,
            Outcome::No => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Yes => "YES",
            Outcome::No => "NO",
        }
    }
}

/// A strategy's wish to buy one outcome token of one market at time `ts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub ts: Ts,
    /// The strategy's name.
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    /// The outcome bought.
    pub outcome: Outcome,
    /// Why, in words (prices and thresholds that triggered it).
    pub reason: String,
    /// Estimated probability of the outcome minus the price paid.
    pub edge: Decimal,
    /// The strategy's confidence in the edge, 0–1.
    pub confidence: f64,
    /// The best ask of the token when the signal was made: what one share would cost.
    pub price: Decimal,
    /// USD to spend, set by the engine's sizing (strategies leave it zero); risk may cut it.
    pub suggested_usd: Decimal,
}

/// Why a strategy closes a position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitReason {
    /// The bid rose to the take-profit level.
    TakeProfit { bid: Decimal, target: Decimal },
    /// The bid fell to the stop-loss level.
    StopLoss { bid: Decimal, stop: Decimal },
    /// Held for the longest time the strategy allows.
    MaxHold { hours: i64 },
    /// Sold on request, not by a strategy (an operator, a test).
    Manual,
}
