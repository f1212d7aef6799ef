//! The four strategies of the seed system. Each has a typed parameter struct whose `Default` is
//! the configuration's default; unknown parameter keys are refused.
//!
//! Prices a strategy compares are the token's **best ask** when it is about what a buy would
//! pay, and the YES **mid** when it is about what the market believes.
//!
//! # Layout
//! * [`longshot_yes`]: buy YES when it is the favourite ([0.92, 0.99]) close to expiry.
//! * [`longshot_no`]: buy NO against a YES longshot (< 0.08) close to expiry.
//! * [`mean_reversion`]: fade a YES move larger than a threshold over a lookback.
//! * [`term_structure`]: a later deadline must be at least as likely as an earlier one.

pub mod longshot_no;
pub mod longshot_yes;
pub mod mean_reversion;
pub mod term_structure;

pub use longshot_no::{LongshotNo, LongshotNoParams};
pub use longshot_yes::{LongshotYes, LongshotYesParams};
pub use mean_reversion::{MeanReversion, MeanReversionParams};
pub use term_structure::{TermStructure, TermStructureParams};

use crate::portfolio::Position;
use crate::signal::{ExitReason, Outcome, Signal};
use crate::view::MarketView;
use rust_decimal::Decimal;

/// True when the market trades at `t` and closes within `(0, max_hours]` hours.
pub(crate) fn closes_within(m: &MarketView, max_hours: Decimal) -> bool {
    let h = m.hours_to_close();
    m.active && h > Decimal::ZERO && h <= max_hours
}

/// A signal to buy `outcome` of `m` at its best ask (the caller checked there is one).
pub(crate) fn buy(
    strategy: &str,
    m: &MarketView,
    outcome: Outcome,
    price: Decimal,
    edge: Decimal,
    confidence: f64,
    reason: String,
) -> Signal {
    Signal {
        ts: m.t,
        strategy: strategy.to_string(),
        condition_id: m.condition_id.clone(),
        token_id: m.token_id(outcome).to_string(),
        outcome,
        reason,
        edge,
        confidence,
        price,
        suggested_usd: Decimal::ZERO,
    }
}

/// The exits every strategy shares: the token's best bid at or above `entry + take_profit`
/// (when set), at or below `entry − stop_loss` (when set), or held `max_hold_hours` or longer
/// (when set). Checked in that order.
pub(crate) fn price_exit(
    p: &Position,
    m: &MarketView,
    take_profit: Option<Decimal>,
    stop_loss: Option<Decimal>,
    max_hold_hours: Option<i64>,
) -> Option<ExitReason> {
    if let Some(bid) = m.quote(p.outcome).bid {
        if let Some(tp) = take_profit {
            let target = p.entry_price + tp;
            if bid >= target {
                return Some(ExitReason::TakeProfit { bid, target });
            }
        }
        if let Some(sl) = stop_loss {
            let stop = p.entry_price - sl;
            if bid <= stop {
                return Some(ExitReason::StopLoss { bid, stop });
            }
        }
    }
    let held = (m.t - p.opened_at).num_hours();
    match max_hold_hours {
        Some(h) if held >= h => Some(ExitReason::MaxHold { hours: held }),
        _ => None,
    }
}

/// A decimal parameter as JSON (a string, as rust_decimal serialises it).
pub(crate) fn to_json<T: serde::Serialize>(params: &T) -> serde_json::Value {
    serde_json::to_value(params).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testkit::{at, d};

    /// A position of `shares` bought at `entry` at `opened`.
    pub fn position(
        strategy: &str,
        cid: &str,
        outcome: Outcome,
        entry: &str,
        opened: &str,
    ) -> Position {
        let token = match outcome {
            Outcome::Yes => format!("{cid}-yes"),
            Outcome::No => format!("{cid}-no"),
        };
        Position {
            strategy: strategy.into(),
            condition_id: cid.into(),
            token_id: token,
            outcome,
            shares: d("100"),
            cost: d("100") * d(entry),
            entry_price: d(entry),
            opened_at: at(opened),
            mark: None,
            marked_at: None,
        }
    }
}
