//! Task runs and when a periodic task is due: every handler run, failed ones included, is
//! recorded as a [`TaskRun`] (which also updates its task's [`TaskState`]), and discovery's
//! schedule — hourly, and after a failure again within minutes, with backoff — is decided from
//! that state, the same way by `polytape run` and by the discovery function.

use crate::error::HandlerError;
use polytape_core::ops::{TaskRun, TaskState, TaskStatus};
use polytape_core::Ts;
use polytape_store::TaskStore;
use serde::Serialize;
use std::time::Duration;

/// What a handler's report says about how its run ended.
pub trait RunOutcome: Serialize {
    /// How the run is recorded.
    fn status(&self) -> TaskStatus;
    /// What went wrong, if anything did.
    fn error(&self) -> Option<String> {
        None
    }
}

impl RunOutcome for crate::snapshot::TickReport {
    fn status(&self) -> TaskStatus {
        crate::snapshot::TickReport::status(self)
    }
    fn error(&self) -> Option<String> {
        self.error.clone()
    }
}

/// The record of a run; `id` is deterministic for the unit of work so a retry replaces it.
pub fn task_run(
    id: String,
    task: &str,
    started: Ts,
    finished: Ts,
    report: &impl RunOutcome,
) -> TaskRun {
    TaskRun {
        id,
        task: task.to_string(),
        started_at: started,
        finished_at: finished,
        status: report.status(),
        detail: serde_json::to_value(report).unwrap_or(serde_json::Value::Null),
        error: report.error(),
    }
}

/// The record of a run that failed with `error` before it could report anything else.
pub fn failed_run(
    id: String,
    task: &str,
    started: Ts,
    finished: Ts,
    error: &HandlerError,
) -> TaskRun {
    TaskRun {
        status: TaskStatus::Failed,
        detail: serde_json::json!({ "retryable": error.is_retryable() }),
        error: Some(error.to_string()),
        ..task_run(id, task, started, finished, &Failed)
    }
}

/// The outcome of a run that ended in an error (its record's fields are set by `failed_run`).
#[derive(Serialize)]
struct Failed;

impl RunOutcome for Failed {
    fn status(&self) -> TaskStatus {
        TaskStatus::Failed
    }
}

/// Writes the run (and through it, its task's state).
pub async fn record_run(store: &impl TaskStore, run: &TaskRun) -> Result<(), HandlerError> {
    store.put_task_run(run).await?;
    Ok(())
}

/// Records the outcome of a periodic task's run — its report, or its error as a failed run —
/// and hands the outcome back. A failure to record is logged; the handler's own error wins.
pub async fn finish<R: RunOutcome>(
    store: &impl TaskStore,
    task: &str,
    id: String,
    started: Ts,
    finished: Ts,
    outcome: Result<R, HandlerError>,
) -> Result<R, HandlerError> {
    let run = match &outcome {
        Ok(report) => task_run(id, task, started, finished, report),
        Err(e) => failed_run(id, task, started, finished, e),
    };
    if let Err(e) = record_run(store, &run).await {
        tracing::error!(task, error = %e, "the run could not be recorded");
        if outcome.is_ok() {
            return Err(e);
        }
    }
    outcome
}

/// A run id, time first: `20261120T223015Z#discovery`.
pub fn run_id(at: Ts, task: &str) -> String {
    format!("{}#{task}", at.format("%Y%m%dT%H%M%SZ"))
}

/// How long after its `failures`-th consecutive failure a task is tried again: 30 s, doubling,
/// at most `cap`.
pub fn retry_backoff(failures: u32, cap: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(30).saturating_mul(1u32 << exp).min(cap)
}

/// Whether a task run every `every` (retried after failures with [`retry_backoff`] up to
/// `retry_cap`) is due at `now`: never run, or its last success is `every` old, or it failed
/// and the backoff has passed; never while a run holds its lease.
pub fn is_due(state: Option<&TaskState>, now: Ts, every: Duration, retry_cap: Duration) -> bool {
    let Some(s) = state else { return true };
    if s.is_leased_at(now) {
        return false;
    }
    let after = |t: Ts, d: Duration| {
        now >= t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    };
    if s.consecutive_failures > 0 {
        return s
            .last_finished_at
            .is_none_or(|t| after(t, retry_backoff(s.consecutive_failures, retry_cap)));
    }
    // Never succeeded (a claimed run died before recording): due once the lease lapsed.
    s.last_success_at.is_none_or(|done| after(done, every))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        s.parse().unwrap()
    }

    #[test]
    fn given_consecutive_failures_then_retries_back_off_to_the_cap() {
        let cap = Duration::from_secs(180);
        let waits: Vec<u64> = (1..=6).map(|n| retry_backoff(n, cap).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 180, 180, 180]);
    }

    #[test]
    fn given_a_state_then_due_follows_success_failure_and_lease() {
        let hour = Duration::from_secs(3600);
        let cap = Duration::from_secs(180);
        let mut s = TaskState::new("discovery");
        assert!(
            is_due(None, at("2026-11-20T10:00:00Z"), hour, cap),
            "never run"
        );
        s.last_success_at = Some(at("2026-11-20T10:00:00Z"));
        s.last_finished_at = s.last_success_at;
        assert!(!is_due(Some(&s), at("2026-11-20T10:59:59Z"), hour, cap));
        assert!(is_due(Some(&s), at("2026-11-20T11:00:00Z"), hour, cap));
        s.consecutive_failures = 3;
        s.last_finished_at = Some(at("2026-11-20T11:00:05Z"));
        assert!(
            !is_due(Some(&s), at("2026-11-20T11:02:04Z"), hour, cap),
            "2 min after the 3rd failure"
        );
        assert!(
            is_due(Some(&s), at("2026-11-20T11:03:05Z"), hour, cap),
            "the cap is 3 min"
        );
        s.lease_until = Some(at("2026-11-20T11:10:00Z"));
        assert!(
            !is_due(Some(&s), at("2026-11-20T11:05:00Z"), hour, cap),
            "a run holds the lease"
        );
    }
}
