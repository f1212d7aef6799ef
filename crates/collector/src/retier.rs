//! Re-tier: records each market's move to a faster tier as its close nears, and ends sampling
//! of markets that closed or expired. Sampling itself does not wait for it — a tick samples
//! the markets whose end date puts them in its tier at the tick time — so re-tier keeps the
//! stored tiers and the transitions true, and decides what only it can: a market past its end
//! date is asked about on Gamma (`closed=true`) and leaves sampling once Gamma says it closed;
//! one still open 24 h past its end expires. Runs every 5 minutes as part of maintenance.

use crate::clock::Clock;
use crate::discover::{closed_without_result, write_decided, Decision};
use crate::error::HandlerError;
use polytape_core::ops::{reason, TierTransition};
use polytape_core::{Market, MarketResult, Tier, Ts};
use polytape_polymarket::{GammaMarket, PolymarketClient};
use polytape_store::{MarketStore, ObjectStore, TransitionStore};

/// The writer name of re-tier's transition files.
const WRITER: &str = "retier";
use serde::Serialize;
use std::collections::HashMap;

/// What one re-tier run changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetierReport {
    pub active: usize,
    pub moved: usize,
    /// Past their end date and reported closed by Gamma: no longer sampled.
    pub closed: usize,
    /// Still open 24 h past their end date: no longer sampled.
    pub expired: usize,
    /// Active markets past their end date, asked about on Gamma.
    pub past_end: usize,
    /// Why the closed-check on Gamma failed, if it did (those markets stay sampled).
    pub closed_check_error: Option<String>,
    /// Markets another writer kept changing while this run decided them: left for the next.
    pub unresolved_conflicts: usize,
}

/// Recomputes every active market's tier at the clock's time, asks Gamma about the ones past
/// their end date, and writes only the markets that changed (each conditional on the version
/// read), with their transitions.
pub async fn retier<S>(
    client: &PolymarketClient,
    store: &S,
    clock: &impl Clock,
) -> Result<RetierReport, HandlerError>
where
    S: MarketStore + TransitionStore + ObjectStore,
{
    let now = clock.now();
    let markets = store.active_markets().await?;
    let mut report = RetierReport {
        active: markets.len(),
        ..Default::default()
    };
    let past_end: Vec<String> = markets
        .iter()
        .filter(|m| m.end_date <= now && Tier::at(now, m.end_date).is_some())
        .map(|m| m.condition_id.clone())
        .collect();
    report.past_end = past_end.len();
    let closed = closed_on_gamma(client, &past_end, &mut report).await;
    let decisions: Vec<Decision> = markets
        .iter()
        .filter_map(|m| decide(m, now, &closed))
        .collect();
    let redecide = |_: &str, fresh: Option<&Market>| decide(fresh?, now, &closed);
    let written = write_decided(store, decisions, &redecide).await?;
    report.unresolved_conflicts = written.unresolved;
    let mut transitions = Vec::with_capacity(written.decisions.len());
    for t in written.decisions.into_iter().flat_map(|d| d.transitions) {
        match t.reason.as_str() {
            reason::CLOSED => report.closed += 1,
            reason::EXPIRED => report.expired += 1,
            _ => report.moved += 1,
        }
        transitions.push(t);
    }
    crate::transitions::record(store, WRITER, now, &transitions).await?;
    Ok(report)
}

/// Which of `ids` Gamma reports closed. A failed lookup is reported and leaves those markets
/// sampled: they are asked about again next run.
async fn closed_on_gamma(
    client: &PolymarketClient,
    ids: &[String],
    report: &mut RetierReport,
) -> HashMap<String, GammaMarket> {
    let (closed, failures) = crate::resolutions::closed_on_gamma(client, ids).await;
    if let Some(f) = failures.first() {
        tracing::warn!(markets = ids.len(), error = %f.error, "could not ask Gamma whether markets past their end closed");
        report.closed_check_error = Some(f.error.to_string());
    }
    closed
}

/// Re-tier's decision for one stored market at `now`.
fn decide(m: &Market, now: Ts, closed: &HashMap<String, GammaMarket>) -> Option<Decision> {
    if !m.active {
        return None;
    }
    let mut next = m.clone();
    let reason = if let Some(g) = closed.get(&m.condition_id) {
        next.active = false;
        next.tier = None;
        next.closed_at = next.closed_at.or(g.closed_time).or(Some(now));
        // Its result is the resolutions duty's to judge; until then it awaits one.
        closed_without_result(&mut next);
        if let MarketResult::Pending { uma_status } = &mut next.result {
            *uma_status = uma_status
                .take()
                .or_else(|| g.uma_resolution_status.clone());
        }
        reason::CLOSED
    } else {
        let tier = Tier::at(now, m.end_date);
        if tier == m.tier {
            return None;
        }
        next.tier = tier;
        if tier.is_none() {
            next.active = false;
            reason::EXPIRED
        } else {
            reason::TIER_CHANGE
        }
    };
    Some(Decision {
        transitions: vec![TierTransition::of(m, m.tier, next.tier, now, reason)],
        market: next,
        change: crate::discover::Change::Updated,
    })
}
