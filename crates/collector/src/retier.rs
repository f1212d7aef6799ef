//! Re-tier: as a market's close nears it moves to faster tiers; once its end date has passed it
//! leaves sampling. Runs every 5 minutes (and discovery assigns tiers too), so a market is at
//! most 5 minutes late into a faster tier.

use crate::clock::Clock;
use crate::discover::{task_run, transition};
use crate::error::HandlerError;
use polytape_core::ops::TaskStatus;
use polytape_core::Tier;
use polytape_store::{MarketStore, OpsStore};
use serde::Serialize;

/// What one re-tier run changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetierReport {
    pub active: usize,
    pub moved: usize,
    /// Markets whose end date passed: no longer sampled.
    pub ended: usize,
}

/// Recomputes every active market's tier at the clock's time and writes only the markets that
/// moved, in one batch, with their transitions.
pub async fn retier<S>(store: &S, clock: &impl Clock) -> Result<RetierReport, HandlerError>
where
    S: MarketStore + OpsStore,
{
    let now = clock.now();
    let markets = store.active_markets().await?;
    let mut report = RetierReport {
        active: markets.len(),
        ..Default::default()
    };
    let mut writes = Vec::new();
    let mut transitions = Vec::new();
    for mut m in markets {
        let tier = Tier::at(now, m.end_date);
        if tier == m.tier {
            continue;
        }
        let reason = if tier.is_none() {
            "ended"
        } else {
            "time to close"
        };
        transitions.push(transition(&m.condition_id, m.tier, tier, now, reason));
        if tier.is_none() {
            report.ended += 1;
            m.active = false;
        } else {
            report.moved += 1;
        }
        m.tier = tier;
        writes.push(m);
    }
    if !writes.is_empty() {
        store.upsert_markets(&writes).await?;
        store.put_transitions(&transitions).await?;
    }
    let id = format!("{}#retier", now.format("%Y%m%dT%H%M%SZ"));
    store
        .put_task_run(&task_run(
            id,
            "retier",
            now,
            clock.now(),
            TaskStatus::Ok,
            &report,
        ))
        .await?;
    Ok(report)
}
