//! The compaction duty: maintenance runs it when due — hourly, sooner again while hours are
//! left over, after a failure with the usual backoff — as task `compaction`, under the task's
//! lease so that two runs never overlap, the same way in `polytape run` and in the maintenance
//! function. The work itself is `polytape_store::compact` (what is merged, the manifest, the
//! crash-safe order of writes and deletes); this module decides when, bounds how long, and
//! records the run.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::HandlerError;
use crate::tasks::{self, RunOutcome};
use polytape_core::ops::TaskStatus;
use polytape_core::Ts;
use polytape_store::compact::{self, CompactOptions, CompactReport};
use polytape_store::{ObjectDeleter, TaskStore};

/// The task name of compaction runs.
pub const TASK: &str = "compaction";

/// How long past its budget a run's lease lasts: the hour it started last finishes after the
/// budget.
const LEASE_SLACK: chrono::Duration = chrono::Duration::minutes(5);

impl RunOutcome for CompactReport {
    /// Failed when any hour or partition failed (retried with backoff, and `/health` counts
    /// it); partial when it stopped with hours left (the next maintenance run goes on).
    fn status(&self) -> TaskStatus {
        if !self.errors.is_empty() {
            TaskStatus::Failed
        } else if self.stopped_early {
            TaskStatus::Partial
        } else {
            TaskStatus::Ok
        }
    }

    fn error(&self) -> Option<String> {
        let first = self.errors.first()?;
        Some(match self.errors.len() {
            1 => first.clone(),
            n => format!("{first} (and {} more)", n - 1),
        })
    }
}

/// The options of a run starting at `now`: the config's settle time, delete delay and
/// lookback; stopping at the budget's end or `until` (a Lambda invocation's end less its
/// margin), whichever is first.
pub fn options(cfg: &Config, now: Ts, until: Option<Ts>) -> CompactOptions {
    let c = &cfg.compaction;
    let budget_end = now + chrono::Duration::from_std(c.budget).unwrap_or(chrono::Duration::MAX);
    CompactOptions {
        settle: c.settle,
        delete_after: c.delete_after,
        lookback_days: c.lookback_days,
        stop_at: Some(until.map_or(budget_end, |u| u.min(budget_end))),
        ..CompactOptions::default()
    }
}

/// Runs compaction when its task is due and its lease is free, and records the run; `None`
/// when it was not due (or another run holds the lease).
pub async fn run_if_due<S: TaskStore + ObjectDeleter>(
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
    until: Option<Ts>,
) -> Result<Option<CompactReport>, HandlerError> {
    let started = clock.now();
    let state = store.task_state(TASK).await?;
    let every = cfg.compaction.every;
    // Due half a maintenance period early, as resolutions (maintenance runs on a fixed rate).
    let due_after = every.saturating_sub(cfg.maintenance_every / 2);
    let left_over = state
        .as_ref()
        .is_some_and(|s| s.last_status == Some(TaskStatus::Partial) && !s.is_leased_at(started));
    if !left_over && !tasks::is_due(state.as_ref(), started, due_after, every) {
        return Ok(None);
    }
    let opts = options(cfg, started, until);
    let lease_until = opts.stop_at.unwrap_or(started) + LEASE_SLACK;
    if !store.claim_task(TASK, started, lease_until).await? {
        return Ok(None);
    }
    let report = compact::compact(store, started, &opts).await;
    log(&report);
    let id = tasks::run_id(started, TASK);
    tasks::finish(store, TASK, id, started, clock.now(), Ok(report))
        .await
        .map(Some)
}

fn log(r: &CompactReport) {
    if r.hours_compacted > 0 || r.sources_deleted > 0 {
        tracing::info!(
            "compaction: {} hours compacted ({} files, {} rows, {} duplicate trades dropped), {} sources deleted, {} hours behind",
            r.hours_compacted,
            r.files_merged,
            r.rows,
            r.duplicates_dropped,
            r.sources_deleted,
            r.hours_behind
        );
    }
    for e in &r.errors {
        tracing::warn!(error = %e, "compaction: left for the next run");
    }
}
