//! Discovery: page Gamma's keyset listing with server-side filters (open markets ending within
//! the lookahead), keep the markets polytape can sample, assign tiers, and write only what
//! changed.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::HandlerError;
use polytape_core::ops::{TaskRun, TaskStatus, TierTransition};
use polytape_core::{Market, Tier, Ts};
use polytape_polymarket::{GammaMarket, KeysetQuery, PolymarketClient};
use polytape_store::{MarketStore, OpsStore};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a listed market was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    NoConditionId,
    NoOrderBook,
    /// Token ids empty or still being hydrated by the CLOB.
    TokenIdsNotReady,
    NotBinary,
    LowVolume,
    EndOutsideWindow,
    Closed,
    /// Passed every filter but could not be turned into a market (reason logged).
    Unusable,
}

/// What one discovery run saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    pub pages: u32,
    /// Market objects Gamma returned that decoded.
    pub listed: usize,
    /// Market objects that could not be decoded (skipped, counted).
    pub rejected: usize,
    pub kept: usize,
    pub excluded: BTreeMap<Exclusion, usize>,
    pub new_markets: usize,
    /// Tracked markets written because something about them changed.
    pub updated_markets: usize,
    /// Tracked markets no longer listed although their end date is still ahead: closed early.
    pub retired_markets: usize,
    pub per_tier: BTreeMap<Tier, usize>,
}

/// Decides whether a listed market is one polytape samples, and why not.
pub fn exclusion(m: &GammaMarket, now: Ts, cfg: &Config) -> Option<Exclusion> {
    if m.condition_id().is_none() {
        return Some(Exclusion::NoConditionId);
    }
    if m.closed() == Some(true) {
        return Some(Exclusion::Closed);
    }
    if !m.enable_order_book() {
        return Some(Exclusion::NoOrderBook);
    }
    if m.outcomes().is_some_and(|o| o.len() != 2) {
        return Some(Exclusion::NotBinary);
    }
    if m.token_ids().is_none() {
        return Some(Exclusion::TokenIdsNotReady);
    }
    if !m.is_binary() {
        return Some(Exclusion::NotBinary);
    }
    if m.volume_24h().is_none_or(|v| v < cfg.min_volume_24h) {
        return Some(Exclusion::LowVolume);
    }
    let horizon = now + chrono::Duration::hours(cfg.lookahead_hours);
    match m.end_date() {
        Some(end) if end > now && end <= horizon => None,
        _ => Some(Exclusion::EndOutsideWindow),
    }
}

/// Runs discovery at `now`: one keyset listing, one read of the tracked markets, one batch
/// write of what is new or changed, one batch of tier transitions, one task run.
pub async fn discover<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
) -> Result<DiscoveryReport, HandlerError>
where
    S: MarketStore + OpsStore,
{
    let now = clock.now();
    let query = KeysetQuery {
        closed: Some(false),
        end_date_min: Some(now),
        end_date_max: Some(now + chrono::Duration::hours(cfg.lookahead_hours)),
        limit: 100,
        extra: Vec::new(),
    };
    // Rejected objects were logged by the client; here they are counted.
    let listing = client.keyset_markets(&query).await?;
    let mut report = DiscoveryReport {
        pages: listing.pages,
        listed: listing.items.len(),
        rejected: listing.rejected.len(),
        ..Default::default()
    };

    let tracked: HashMap<String, Market> = store
        .active_markets()
        .await?
        .into_iter()
        .map(|m| (m.condition_id.clone(), m))
        .collect();
    // A market that was listed but could not be decoded this time is still listed: it must not
    // be taken for closed (its tracked record is kept as it is).
    let mut listed_ids: HashSet<String> = listing
        .rejected
        .iter()
        .filter_map(|r| r.key.clone())
        .collect();
    let mut writes = Vec::new();
    let mut transitions = Vec::new();
    for gm in &listing.items {
        if let Some(id) = gm.condition_id() {
            listed_ids.insert(id.to_string());
        }
        if let Some(why) = exclusion(gm, now, cfg) {
            *report.excluded.entry(why).or_default() += 1;
            continue;
        }
        let mut market = match gm.to_market(now) {
            Ok(m) => m,
            Err(reason) => {
                tracing::warn!(condition_id = ?gm.condition_id(), %reason, "discovery could not use a market");
                *report.excluded.entry(Exclusion::Unusable).or_default() += 1;
                continue;
            }
        };
        market.tier = Tier::at(now, market.end_date);
        market.active = market.tier.is_some();
        report.kept += 1;
        if let Some(t) = market.tier {
            *report.per_tier.entry(t).or_default() += 1;
        }
        match tracked.get(&market.condition_id) {
            None => {
                report.new_markets += 1;
                transitions.push(transition(
                    &market.condition_id,
                    None,
                    market.tier,
                    now,
                    "discovered",
                ));
                writes.push(market);
            }
            Some(old) => {
                market.first_seen = old.first_seen;
                if old.tier != market.tier {
                    transitions.push(transition(
                        &market.condition_id,
                        old.tier,
                        market.tier,
                        now,
                        "discovery",
                    ));
                }
                if differs(old, &market) {
                    report.updated_markets += 1;
                    writes.push(market);
                }
            }
        }
    }
    // The listing is complete (keyset_markets fails rather than return part of it), so an
    // active market missing from it while its end date is still inside the window was closed.
    let horizon = now + chrono::Duration::hours(cfg.lookahead_hours);
    for old in tracked.values() {
        if !listed_ids.contains(&old.condition_id) && old.end_date > now && old.end_date <= horizon
        {
            let mut gone = old.clone();
            gone.active = false;
            gone.tier = None;
            transitions.push(transition(&old.condition_id, old.tier, None, now, "closed"));
            report.retired_markets += 1;
            writes.push(gone);
        }
    }
    if !writes.is_empty() {
        store.upsert_markets(&writes).await?;
    }
    if !transitions.is_empty() {
        store.put_transitions(&transitions).await?;
    }
    let status = if report.rejected > 0 {
        TaskStatus::Partial
    } else {
        TaskStatus::Ok
    };
    let id = format!("{}#discovery", now.format("%Y%m%dT%H%M%SZ"));
    store
        .put_task_run(&task_run(
            id,
            "discovery",
            now,
            clock.now(),
            status,
            &report,
        ))
        .await?;
    Ok(report)
}

/// True when a stored market must be rewritten: what sampling depends on changed (not the
/// 24 h volume, which moves every hour and would mean a write per market per run).
fn differs(old: &Market, new: &Market) -> bool {
    old.tier != new.tier
        || old.active != new.active
        || old.end_date != new.end_date
        || old.yes_token_id != new.yes_token_id
        || old.no_token_id != new.no_token_id
        || old.resolved != new.resolved
}

pub(crate) fn transition(
    condition_id: &str,
    from: Option<Tier>,
    to: Option<Tier>,
    at: Ts,
    reason: &str,
) -> TierTransition {
    TierTransition {
        condition_id: condition_id.to_string(),
        from_tier: from,
        to_tier: to,
        at,
        reason: reason.to_string(),
    }
}

/// A task run record; `id` is deterministic for the unit of work so a retry replaces it.
pub(crate) fn task_run(
    id: String,
    task: &str,
    started: Ts,
    finished: Ts,
    status: TaskStatus,
    report: &impl Serialize,
) -> TaskRun {
    TaskRun {
        id,
        task: task.to_string(),
        started_at: started,
        finished_at: finished,
        status,
        detail: serde_json::to_value(report).unwrap_or(serde_json::Value::Null),
    }
}
