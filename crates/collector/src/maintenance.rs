//! The maintenance duties, run every 5 minutes by the maintenance function and by
//! `polytape run` through this one handler: re-tier (with the closed-check of markets past
//! their end date) every run, and the day's `markets` dimension table in the first run of each
//! hour. Resolutions and hourly compaction are not built yet.

use crate::clock::Clock;
use crate::error::HandlerError;
use crate::retier::{retier, RetierReport};
use crate::tasks::{self, RunOutcome};
use chrono::Timelike;
use polytape_core::ops::TaskStatus;
use polytape_polymarket::PolymarketClient;
use polytape_store::{keys, parquet, MarketStore, ObjectStore, TaskStore, TransitionStore};
use serde::Serialize;

/// The task name of maintenance runs.
pub const TASK: &str = "maintenance";

/// What one maintenance run did.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceReport {
    pub retier: RetierReport,
    /// The key of the `markets` dimension file written this run, if one was.
    pub markets_dimension: Option<String>,
}

impl RunOutcome for MaintenanceReport {
    fn status(&self) -> TaskStatus {
        if self.retier.closed_check_error.is_some() || self.retier.unresolved_conflicts > 0 {
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
    clock: &impl Clock,
    until: Option<polytape_core::Ts>,
) -> Result<MaintenanceReport, HandlerError>
where
    S: MarketStore + TransitionStore + TaskStore + ObjectStore,
{
    let started = clock.now();
    let client = crate::clock::bounded(client, until, clock);
    let outcome = duties(&client, store, clock).await;
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
    clock: &impl Clock,
) -> Result<MaintenanceReport, HandlerError>
where
    S: MarketStore + TransitionStore + ObjectStore,
{
    let retier = retier(client, store, clock).await?;
    let now = clock.now();
    let markets_dimension = if now.minute() < 5 {
        Some(write_markets_dimension(store, now).await?)
    } else {
        None
    };
    Ok(MaintenanceReport {
        retier,
        markets_dimension,
    })
}

/// Writes `markets/dt=<today>/markets.parquet` from every market and returns its key.
pub async fn write_markets_dimension<S: MarketStore + ObjectStore>(
    store: &S,
    now: polytape_core::Ts,
) -> Result<String, HandlerError> {
    let markets = store.all_markets().await?;
    let encoded = parquet::encode_markets(&markets)?;
    let key = keys::markets(now.date_naive());
    store
        .put_object(&key, encoded.bytes, "application/vnd.apache.parquet")
        .await?;
    Ok(key)
}
