//! Health checks, computed from the stores alone (task states, the coverage ledger), so
//! `polytape run` and the status function answer alike: `/health` says `ok`, `starting` or
//! `degraded` with the checks that fail, and `/health/critical` answers 503 listing them (200
//! when none fail) for external monitors.
//!
//! The checks (thresholds in [`HealthConfig`]):
//! * `discovery`: discovery has not succeeded for `discovery_max_age` (2 h), or not once since
//!   the start, `startup_grace` (2 min) after it. Locally the start is the run's; in the cloud
//!   it is the first discovery run ever recorded, or, when discovery never recorded one (a
//!   function that fails before it can), the first run of any task.
//! * `ticks_T<n>`: over `max_tick_failure_pct` (10 %) of the tier's ticks in the last hour
//!   failed or were skipped.
//! * `task_<name>`: a task failed `max_task_failures` (3) times in a row.

use crate::config::HealthConfig;
use crate::error::HandlerError;
use polytape_core::ops::TaskState;
use polytape_core::{Tier, Ts};
use polytape_store::{CoverageStore, TaskStore};
use serde::Serialize;
use std::collections::BTreeMap;

/// One failing check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failing {
    /// `discovery`, `ticks_T4`, `task_maintenance`, …
    pub check: String,
    /// What is wrong, for a person.
    pub detail: String,
}

/// The outcome of every check at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// `ok`, `starting` (nothing has failed, but discovery has not succeeded yet), or
    /// `degraded` (some check fails).
    pub status: &'static str,
    pub now: Ts,
    pub failing: Vec<Failing>,
    pub last_discovery_at: Option<Ts>,
    /// Per tier: ticks in the last hour, and how many failed or were skipped.
    pub ticks_last_hour: BTreeMap<Tier, TickCounts>,
}

/// Ticks of a tier in the last hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TickCounts {
    pub ticks: u32,
    pub failed: u32,
    pub skipped: u32,
}

/// Evaluates every check at `now`. `started_at` is the local run's start (`None` in the cloud,
/// where the first discovery run recorded stands for it).
pub async fn check<S>(
    store: &S,
    cfg: &HealthConfig,
    now: Ts,
    started_at: Option<Ts>,
) -> Result<Health, HandlerError>
where
    S: TaskStore + CoverageStore,
{
    let hour_ago = now - chrono::Duration::hours(1);
    let (states, coverage) = tokio::try_join!(store.task_states(), store.coverage_since(hour_ago))?;
    let mut failing = Vec::new();
    let discovery = states.iter().find(|s| s.task == crate::discover::TASK);
    // In the cloud, "the start" is when the first task was seen: discovery's first run, or
    // any other task's (the dispatcher runs every minute) when discovery never recorded one.
    let first_seen = discovery
        .and_then(|d| d.first_seen_at)
        .or_else(|| states.iter().filter_map(|s| s.first_seen_at).min());
    let starting = discovery_check(discovery, cfg, now, started_at.or(first_seen), &mut failing);

    let mut ticks: BTreeMap<Tier, TickCounts> = BTreeMap::new();
    for c in &coverage {
        let t = ticks.entry(c.tier).or_default();
        t.ticks += 1;
        t.failed += u32::from(c.failed && !c.skipped);
        t.skipped += u32::from(c.skipped);
    }
    for (tier, t) in &ticks {
        let bad = f64::from(t.failed + t.skipped);
        if t.ticks > 0 && 100.0 * bad / f64::from(t.ticks) > cfg.max_tick_failure_pct {
            failing.push(Failing {
                check: format!("ticks_{tier}"),
                detail: format!(
                    "{} of {} {tier} ticks in the last hour failed and {} were skipped (over {}%)",
                    t.failed, t.ticks, t.skipped, cfg.max_tick_failure_pct
                ),
            });
        }
    }
    for s in &states {
        if s.consecutive_failures >= cfg.max_task_failures && s.task != crate::discover::TASK {
            failing.push(Failing {
                check: format!("task_{}", s.task),
                detail: format!(
                    "{} failed {} times in a row; last error: {}",
                    s.task,
                    s.consecutive_failures,
                    s.last_error.as_deref().unwrap_or("?")
                ),
            });
        }
    }
    let status = if !failing.is_empty() {
        "degraded"
    } else if starting {
        "starting"
    } else {
        "ok"
    };
    Ok(Health {
        status,
        now,
        failing,
        last_discovery_at: discovery.and_then(|d| d.last_success_at),
        ticks_last_hour: ticks,
    })
}

/// Adds the discovery check's failure, if any; true while it is too early to tell. `started_at`
/// is when the run (locally) or the deployment (in the cloud: the first task seen) started.
fn discovery_check(
    state: Option<&TaskState>,
    cfg: &HealthConfig,
    now: Ts,
    started_at: Option<Ts>,
    failing: &mut Vec<Failing>,
) -> bool {
    let dur =
        |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let since = started_at;
    let last_ok = state.and_then(|s| s.last_success_at);
    let error = state
        .and_then(|s| s.last_error.clone())
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    let ok_since_start = last_ok.is_some_and(|ok| since.is_none_or(|s| ok >= s));
    let fresh = last_ok.is_some_and(|ok| now - ok <= dur(cfg.discovery_max_age));
    if ok_since_start && fresh {
        return false;
    }
    let within_grace = since.is_some_and(|s| now - s < dur(cfg.startup_grace));
    if within_grace || (since.is_none() && last_ok.is_none()) {
        return true;
    }
    let detail = match (last_ok, since) {
        (Some(ok), _) if ok_since_start => format!("discovery has not succeeded since {ok}{error}"),
        (_, Some(since)) => {
            format!("discovery has not succeeded since the start at {since}{error}")
        }
        _ => format!("discovery has not succeeded{error}"),
    };
    failing.push(Failing {
        check: "discovery".into(),
        detail,
    });
    false
}
