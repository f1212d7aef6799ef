//! The maintenance duties, run every 5 minutes by the maintenance function and by
//! `polytape run` through this one handler: re-tier (with the closed-check of markets past
//! their end date) every run — a boundary pass over the end dates whose tier can have changed
//! since its last run, a full pass at least hourly and after a failed run
//! ([`crate::retier::plan`]); resolutions ([`crate::resolutions`]) when due (every 15 minutes
//! by default), recorded as runs of their own task; and the day's `markets` dimension table,
//! with an exact count of results, in the first run of each hour; then hourly compaction
//! ([`crate::compaction`]) when due, recorded as runs of its own task.
//!
//! Every run reports how far compaction is behind ([`MaintenanceReport::compaction_lag_s`],
//! printed as `CompactionLagSeconds` by [`MaintenanceReport::metrics`]), whether compaction ran
//! or not: the "compaction behind" alarm treats a missing datapoint as breaching, so a
//! compactor that never runs — or a maintenance function that never runs — is seen.

use crate::clock::Clock;
use crate::config::Config;
use crate::emf::{self, Metric};
use crate::error::HandlerError;
use crate::resolutions::{self, ResolutionsReport};
use crate::retier::{retier, RetierReport};
use crate::tasks::{self, RunOutcome};
use chrono::Timelike;
use polytape_core::ops::{ResultCounts, TaskState, TaskStatus};
use polytape_polymarket::PolymarketClient;
use polytape_store::compact::CompactReport;
use polytape_store::{
    keys, parquet, MarketStore, ObjectDeleter, ObjectStore, TaskStore, TransitionStore,
};
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
    /// The compaction run, when one was due (its own task run records it too).
    pub compaction: Option<CompactReport>,
    /// Why compaction could not run at all (its task state or lease could not be read or
    /// written, its run not recorded); the maintenance run is partial then.
    pub compaction_error: Option<String>,
    /// Seconds since the end of the oldest hour past its settle time that may be left
    /// uncompacted: the compaction run's [`CompactReport::lag_s`] when one ran, else the lag
    /// since the last compaction run started ([`lag_since_last_run`]); 0 when caught up.
    pub compaction_lag_s: u64,
}

impl MaintenanceReport {
    /// The run's EMF document: `CompactionLagSeconds` on every run (0 when caught up, so the
    /// alarm can treat missing data as breaching), `TaskFailures` when compaction failed.
    pub fn metrics(&self, timestamp_ms: i64) -> serde_json::Value {
        let mut totals = vec![Metric::seconds(
            "CompactionLagSeconds",
            self.compaction_lag_s,
        )];
        if self.compaction_error.is_some()
            || self
                .compaction
                .as_ref()
                .is_some_and(|c| !c.errors.is_empty())
        {
            totals.push(Metric::count("TaskFailures", 1));
        }
        emf::document(timestamp_ms, None, &[], &totals)
    }
}

/// The lag between compaction runs: the run that started at `last_started` compacted every
/// hour that had ended `settle` before; an hour that ended after that and is past its settle
/// time at `now` waits for the next run. Seconds since the end of the oldest such hour, 0 when
/// none (or no run yet). A compactor that stops running shows here as a lag growing past the
/// alarm's threshold; one that runs reports its own lag instead.
pub fn lag_since_last_run(
    last_started: Option<polytape_core::Ts>,
    settle: std::time::Duration,
    now: polytape_core::Ts,
) -> u64 {
    let Some(last) = last_started else { return 0 };
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::MAX);
    let covered = last - settle;
    // The first hour end after `covered`.
    let Some(first_open) = covered
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .map(|t| t + chrono::Duration::hours(1))
    else {
        return 0;
    };
    if first_open + settle <= now {
        (now - first_open).num_seconds().max(0) as u64
    } else {
        0
    }
}

impl RunOutcome for MaintenanceReport {
    fn status(&self) -> TaskStatus {
        if self.retier.closed_check_error.is_some()
            || self.retier.unresolved_conflicts > 0
            || self.resolutions.as_ref().is_some_and(|r| r.partial())
            || self
                .compaction
                .as_ref()
                .is_some_and(|c| !c.errors.is_empty())
            || self.compaction_error.is_some()
        {
            TaskStatus::Partial
        } else {
            TaskStatus::Ok
        }
    }

    fn error(&self) -> Option<String> {
        let errors: Vec<String> = self
            .retier
            .closed_check_error
            .as_ref()
            .map(|e| format!("closed-check of markets past their end: {e}"))
            .into_iter()
            .chain(
                self.compaction_error
                    .as_ref()
                    .map(|e| format!("compaction could not run: {e}")),
            )
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
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
    S: MarketStore + TransitionStore + TaskStore + ObjectDeleter,
{
    let started = clock.now();
    let client = crate::clock::bounded(client, until, clock);
    let outcome = duties(&client, store, cfg, clock, until).await;
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
/// (and, once resolutions are tracked, their outcomes) stay joinable with their snapshots;
/// last, compaction when due, until `until` at the latest.
async fn duties<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
    until: Option<polytape_core::Ts>,
) -> Result<MaintenanceReport, HandlerError>
where
    S: MarketStore + TransitionStore + TaskStore + ObjectDeleter,
{
    let retier = retier(client, store, clock).await?;
    let resolutions = run_resolutions_if_due(client, store, cfg, clock).await?;
    let now = clock.now();
    let markets_dimension = if now.minute() < 5 {
        Some(write_markets_dimension(store, now).await?)
    } else {
        None
    };
    // A failed compaction run is recorded (its own task) and retried; maintenance goes on,
    // partial, with the error recorded.
    let (compaction, mut compaction_error) = match crate::compaction::run_if_due(
        store, cfg, clock, until,
    )
    .await
    {
        Ok(r) => (r, None),
        Err(e) => {
            tracing::warn!(error = %e, "compaction could not run: retried at a later maintenance run");
            (None, Some(e.to_string()))
        }
    };
    let compaction_lag_s = match &compaction {
        Some(r) => r.lag_s,
        None => match store.task_state(crate::compaction::TASK).await {
            Ok(state) => lag_since_last_run(
                state.as_ref().and_then(|s: &TaskState| s.last_started_at),
                cfg.compaction.settle,
                clock.now(),
            ),
            Err(e) => {
                compaction_error.get_or_insert_with(|| e.to_string());
                0
            }
        },
    };
    Ok(MaintenanceReport {
        retier,
        resolutions,
        markets_dimension,
        compaction,
        compaction_error,
        compaction_lag_s,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> polytape_core::Ts {
        s.parse().unwrap()
    }

    const SETTLE: std::time::Duration = std::time::Duration::from_secs(1200);

    #[test]
    fn given_the_last_compaction_run_then_the_lag_counts_from_the_first_hour_it_could_not_take() {
        let last = Some(at("2026-11-20T10:25:00Z"));
        // 10:25 took hour 09 (ended 10:00); hour 10 ends 11:00 and settles at 11:20.
        assert_eq!(
            lag_since_last_run(last, SETTLE, at("2026-11-20T11:10:00Z")),
            0
        );
        assert_eq!(
            lag_since_last_run(last, SETTLE, at("2026-11-20T11:20:00Z")),
            20 * 60
        );
        // A compactor that stopped after 10:25: at 13:05, hour 10 ended 2 h 5 min ago.
        assert_eq!(
            lag_since_last_run(last, SETTLE, at("2026-11-20T13:05:00Z")),
            2 * 3600 + 5 * 60
        );
        assert_eq!(
            lag_since_last_run(None, SETTLE, at("2026-11-20T13:05:00Z")),
            0
        );
    }

    #[test]
    fn given_a_compaction_that_could_not_run_then_maintenance_is_partial_and_says_why() {
        let r = MaintenanceReport {
            retier: RetierReport::default(),
            resolutions: None,
            markets_dimension: None,
            compaction: None,
            compaction_error: Some("lease: throttled".into()),
            compaction_lag_s: 0,
        };
        assert_eq!(r.status(), TaskStatus::Partial);
        assert!(
            r.error().unwrap().contains("lease: throttled"),
            "{:?}",
            r.error()
        );
        assert_eq!(r.metrics(1)["TaskFailures"], 1);
    }

    #[test]
    fn given_compaction_caught_up_then_the_lag_is_still_printed_as_zero() {
        let r = MaintenanceReport {
            retier: RetierReport::default(),
            resolutions: None,
            markets_dimension: None,
            compaction: None,
            compaction_error: None,
            compaction_lag_s: 0,
        };
        let doc = r.metrics(1);
        assert_eq!(doc["CompactionLagSeconds"], 0, "{doc}");
        assert!(doc.get("TaskFailures").is_none(), "{doc}");
    }
}
