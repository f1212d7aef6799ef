//! The maintenance duties, run every 5 minutes by the maintenance function and by
//! `polytape run` through this one handler: re-tier (with the closed-check of markets past
//! their end date) every run; resolutions ([`crate::resolutions`]) when due (every 15 minutes
//! by default), recorded as runs of their own task; and the day's `markets` dimension table,
//! with an exact count of results, in the first run of each hour. Hourly compaction is not
//! built yet.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::HandlerError;
use crate::resolutions::{self, ResolutionsReport};
use crate::retier::{retier, RetierReport};
use crate::tasks::{self, RunOutcome};
use chrono::Timelike;
use polytape_core::ops::{ResultCounts, TaskStatus};
use polytape_polymarket::PolymarketClient;
use polytape_store::{keys, parquet, MarketStore, ObjectStore, TaskStore, TransitionStore};
use serde::Serialize;

/// The task name of maintenance runs.
pub const TASK: &str = "maintenance";

/// What one maintenance run did.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceReport {
    pub retier: RetierReport,
    /// The resolutions run, when one was due (its own task run records it too).
    pub resolutions: Option<ResolutionsReport>,
    /// The key of the `markets` dimension file written this run, if one was.
    pub markets_dimension: Option<String>,
}

impl RunOutcome for MaintenanceReport {
    fn status(&self) -> TaskStatus {
        if self.retier.closed_check_error.is_some()
            || self.retier.unresolved_conflicts > 0
            || self.resolutions.as_ref().is_some_and(|r| r.partial())
        {
            TaskStatus::Partial
        } else {
            TaskStatus::Ok
        }
    }

    fn error(&self) -> Option<String> {
        self.retier
            .closed_check_error
            .as_ref()
            .map(|e| format!("closed-check of markets past their end: {e}"))
    }
}

/// Runs every duty and records the run (a failed one too). Requests stop at `until` (in
/// Lambda, the invocation's end less a margin), so the run ends — and is recorded — before the
/// Lambda timeout.
pub async fn run<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
    until: Option<polytape_core::Ts>,
) -> Result<MaintenanceReport, HandlerError>
where
    S: MarketStore + TransitionStore + TaskStore + ObjectStore,
{
    let started = clock.now();
    let client = crate::clock::bounded(client, until, clock);
    let outcome = duties(&client, store, cfg, clock).await;
    tasks::finish(
        store,
        TASK,
        tasks::run_id(started, TASK),
        started,
        clock.now(),
        outcome,
    )
    .await
}

/// Re-tiers, then (in the first five minutes of an hour) rewrites today's `markets` file from
/// every market, active or not — one object per day, replaced each hour — so markets that ended
/// (and, once resolutions are tracked, their outcomes) stay joinable with their snapshots.
async fn duties<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
) -> Result<MaintenanceReport, HandlerError>
where
    S: MarketStore + TransitionStore + TaskStore + ObjectStore,
{
    let retier = retier(client, store, clock).await?;
    let resolutions = run_resolutions_if_due(client, store, cfg, clock).await?;
    let now = clock.now();
    let markets_dimension = if now.minute() < 5 {
        Some(write_markets_dimension(store, now).await?)
    } else {
        None
    };
    Ok(MaintenanceReport {
        retier,
        resolutions,
        markets_dimension,
    })
}

/// Runs the resolutions duty when its task is due (`cfg.resolutions_every` after its last
/// success; after a failure, with the usual backoff), recording its own task run. A failed
/// resolutions run is recorded and reported, and does not fail the rest of maintenance.
async fn run_resolutions_if_due<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
) -> Result<Option<ResolutionsReport>, HandlerError>
where
    S: MarketStore + TransitionStore + TaskStore + ObjectStore,
{
    let started = clock.now();
    let state = store.task_state(resolutions::TASK).await?;
    // Due half a maintenance period early: maintenance runs on a fixed rate and a run's end
    // (its last success) lies a little after its start, so "every" to the second would slip
    // the duty to the next maintenance run, every time.
    let every = cfg.resolutions_every;
    let due_after = every.saturating_sub(cfg.maintenance_every / 2);
    if !tasks::is_due(state.as_ref(), started, due_after, every) {
        return Ok(None);
    }
    let outcome = resolutions::resolve(client, store, clock).await;
    let id = tasks::run_id(started, resolutions::TASK);
    match tasks::finish(store, resolutions::TASK, id, started, clock.now(), outcome).await {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            tracing::warn!(error = %e, "resolutions run failed: retried at a later maintenance run");
            Ok(None)
        }
    }
}

/// Writes `markets/dt=<today>/markets.parquet` from every market and returns its key; counts
/// every market's result afresh for the status API while it has them all.
pub async fn write_markets_dimension<S: MarketStore + ObjectStore>(
    store: &S,
    now: polytape_core::Ts,
) -> Result<String, HandlerError> {
    let markets = store.all_markets().await?;
    let encoded = parquet::encode_markets(&markets)?;
    let key = keys::markets(now.date_naive());
    store
        .put_object(&key, encoded.bytes, polytape_store::parquet::CONTENT_TYPE)
        .await?;
    resolutions::write_counts(store, &ResultCounts::of(&markets, now)).await?;
    Ok(key)
}
