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
    /// Where its result stands: open, closed and awaiting a final result, resolved, or given
    /// up on ([`MarketResult`]). Only the resolutions duty moves it past `Pending`.
    #[serde(default)]
    pub result: MarketResult,
    /// When it closed (Gamma's `closedTime`, else when polytape first saw it closed).
    #[serde(default)]
    pub closed_at: Option<Ts>,
    /// Gone from Gamma: neither a `closed=true` nor a default lookup returns it.
    #[serde(default)]
    pub delisted: bool,
    pub first_seen: Ts,
    pub category: Option<String>,
    pub neg_risk: bool,
    /// 24 h volume at discovery, USDC.
    pub volume_24h: Option<Decimal>,
    /// The Gamma event it belongs to (the first of the market's `events[]`): markets of one
    /// event with different end dates are one question with several deadlines. `None` when
    /// Gamma sent none, or for markets stored before polytape kept it.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Gamma's `feesEnabled`: `Some(false)` for a market that charges no trading fee; `None`
    /// when not sent (or stored before polytape kept it).
    #[serde(default)]
    pub fees_enabled: Option<bool>,
    /// Gamma's `feeSchedule`, the market's own taker fee; `None` when not sent.
    #[serde(default)]
    pub fee: Option<FeeSchedule>,
    /// The stored record's version, for writes that must not undo another writer's: a write
    /// succeeds only while the stored version is still this one (0: not stored yet), and the
    /// store keeps it incremented. Read it, decide, write; on a conflict read again.
    #[serde(default)]
    pub version: u64,
}

/// A market's fee schedule as Gamma states it (`feeSchedule {exponent, rate, rebateRate,
/// takerOnly}`). A taker fill of `C` shares at price `p` pays `C × rate × (p × (1 − p))^exponent`
/// (docs.polymarket.com/trading/fees); makers pay none and earn a share of it back
/// (`rebate_rate`), paid out daily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    /// `rate` (0.03 for 3 %), in [0, 1].
    pub rate: Decimal,
    /// `exponent`: a whole number (1 for most fee-charging markets).
    pub exponent: u32,
    /// `rebateRate`: the share of takers' fees paid back to makers, in [0, 1].
    pub rebate_rate: Option<Decimal>,
    /// `takerOnly`: only takers pay (true in every recorded schedule).
    pub taker_only: bool,
}

impl Market {
    /// The taker fee schedule that applies to a fill: `Some(schedule)` when fees are enabled
    /// (or not stated) and a schedule was sent; `Some(None)` — known to charge nothing — when
    /// `feesEnabled` is false; `None` when nothing is known (the caller falls back to its own
    /// default).
    pub fn known_fee(&self) -> Option<Option<FeeSchedule>> {
        match (self.fees_enabled, self.fee) {
            (Some(false), _) => Some(None),
            (_, Some(f)) => Some(Some(f)),
            (_, None) => None,
        }
    }

    /// True once its result is final.
    pub fn is_resolved(&self) -> bool {
        matches!(self.result, MarketResult::Resolved(_))
    }

    /// The winning outcome's label, once resolved with a winner.
    pub fn winning_outcome(&self) -> Option<&str> {
        let i = self.outcome()?.winner?;
        self.outcomes.get(i).map(String::as_str)
    }

    /// The winning outcome's token id, once resolved with a winner.
    pub fn winning_token_id(&self) -> Option<&str> {
        match self.outcome()?.winner? {
            0 => Some(&self.yes_token_id),
            1 => Some(&self.no_token_id),
            _ => None,
        }
    }

    /// The final outcome, once resolved.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.result {
            MarketResult::Resolved(o) => Some(o),
            _ => None,
        }
    }

    /// True while its result is still to be learnt from Gamma: it left sampling (closed,
    /// expired or delisted) without a final result and was not given up on. Active markets
    /// past their end date are asked about too, but are found through the active set.
    pub fn awaits_result(&self) -> bool {
        !self.active
            && matches!(
                self.result,
                MarketResult::Open | MarketResult::Pending { .. }
            )
    }
}

/// Where a market's result stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MarketResult {
    /// Not seen closed.
    #[default]
    Open,
    /// Closed on Gamma without a final result yet: `uma_status` is the last UMA status Gamma
    /// showed (`proposed`, `disputed`, …; `None` when absent), asked about again each period.
    Pending { uma_status: Option<String> },
    /// Final.
    Resolved(Outcome),
    /// No final result 14 days past its end date: no longer asked about.
    Unresolved,
}

impl MarketResult {
    /// `open`, `pending`, `resolved` or `unresolved`: the `result` column.
    pub fn name(&self) -> &'static str {
        match self {
            MarketResult::Open => "open",
            MarketResult::Pending { .. } => "pending",
            MarketResult::Resolved(_) => "resolved",
            MarketResult::Unresolved => "unresolved",
        }
    }
}

/// A market's final result as Gamma reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Index of the winning outcome (0: the first); `None` for INVALID and for a payout
    /// vector that names no single winner (legacy and scalar markets).
    pub winner: Option<usize>,
    /// A split payout (every outcome 0.5): each token redeems for half.
    pub invalid: bool,
    /// The payout per outcome (`outcomePrices` once final), in outcome order.
    pub payouts: Vec<Decimal>,
    /// When it resolved: Gamma's `closedTime` (never `endDate`).
    pub resolved_at: Option<Ts>,
    /// When polytape learnt it.
    pub learned_at: Ts,
    /// The UMA status Gamma showed (`resolved`; `None` when absent and the CLOB confirmed).
    pub uma_status: Option<String>,
    /// What confirmed it: `gamma`, or `gamma+clob` when the UMA status was absent and the CLOB
    /// market's winner flags agreed.
    pub source: String,
}

/// One row of the `resolutions` table: a resolved market and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub condition_id: String,
    pub question: String,
    pub outcomes: Vec<String>,
    pub token_ids: Vec<String>,
    pub end_date: Ts,
    /// When it closed ([`Market::closed_at`]).
    pub closed_at: Option<Ts>,
    pub winning_outcome: Option<String>,
    pub winning_token_id: Option<String>,
    pub outcome: Outcome,
}

impl Resolution {
    /// When the market stopped trading, as well as polytape knows: Gamma's `closedTime`
    /// (`resolved_at`), else when polytape first saw it closed, else its end date. Rows taken
    /// from then on are not training data.
    pub fn close(&self) -> Ts {
        self.outcome
            .resolved_at
            .or(self.closed_at)
            .unwrap_or(self.end_date)
    }

    /// The row of a resolved market; `None` while it is not resolved.
    pub fn of(m: &Market) -> Option<Resolution> {
        let outcome = m.outcome()?.clone();
        Some(Resolution {
            condition_id: m.condition_id.clone(),
            question: m.question.clone(),
            outcomes: m.outcomes.to_vec(),
            token_ids: vec![m.yes_token_id.clone(), m.no_token_id.clone()],
            end_date: m.end_date,
            closed_at: m.closed_at,
            winning_outcome: m.winning_outcome().map(str::to_owned),
            winning_token_id: m.winning_token_id().map(str::to_owned),
            outcome,
        })
    }
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
