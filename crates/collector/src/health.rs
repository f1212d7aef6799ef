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
//! * `ticks_T<n>`: over `max_tick_failure_pct` (10 %) of the tier's ticks owed in the last
//!   hour failed, were skipped, or are missing while they owed samples (no record although
//!   the tier held markets at the tick: a stopped schedule, a disabled dispatcher).
//! * `coverage_T<n>`: the tier's ticks in the last hour wrote under `min_coverage_pct` (90 %)
//!   of the samples they owed (a missing tick owes its estimate and wrote nothing).
//! * `task_<name>`: a task failed `max_task_failures` (3) times in a row.
//! * `ws_<shard>`: a WebSocket shard's newest heartbeat is older than `ws_heartbeat_max_age`
//!   (2 min). The feed is expected while a shard has a heartbeat at all: heartbeats expire a
//!   day after they were written, so a feed that was switched off stops failing then.
//!
//! The per-tier numbers are the coverage ledger's ([`crate::ledger::window`], as
//! `/api/stats` and `/api/data-quality/coverage` count) over the hour before `now -
//! tick_grace`: ticks owed since the start (locally the run's, in the cloud the first task
//! seen), how each ended, expected samples (estimated from the markets' tier histories for
//! ticks that never counted theirs) and written ones. A tick is judged only `tick_grace`
//! (1 min) after it was due, so a tick still running is not missing.

use crate::config::HealthConfig;
use crate::error::HandlerError;
use crate::ledger::Tally;
use polytape_core::ops::TaskState;
use polytape_core::{Tier, Ts};
use polytape_store::{CoverageStore, HeartbeatStore, MarketStore, TaskStore};
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
    /// Since when ticks are owed: the local run's start, or in the cloud the first task seen.
    pub since: Option<Ts>,
    /// Per tier (`T0` … `T4`): the coverage ledger of the hour before `now - tick_grace`.
    pub ticks_last_hour: BTreeMap<String, Tally>,
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
    S: TaskStore + CoverageStore + MarketStore + HeartbeatStore,
{
    let dur =
        |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let judged_to = now.checked_sub_signed(dur(cfg.tick_grace)).unwrap_or(now);
    let hour_ago = judged_to - chrono::Duration::hours(1);
    let (states, heartbeats) = tokio::try_join!(store.task_states(), store.heartbeats())?;
    let mut failing = Vec::new();
    let discovery = states.iter().find(|s| s.task == crate::discover::TASK);
    // In the cloud, "the start" is when the first task was seen: discovery's first run, or
    // any other task's (the dispatcher runs every minute) when discovery never recorded one.
    let first_seen = first_seen(&states);
    let starting = discovery_check(discovery, cfg, now, started_at.or(first_seen), &mut failing);

    let since = started_at.or(first_seen);
    let ledger = crate::ledger::window(store, hour_ago, judged_to, now, since, &Tier::ALL).await?;
    let mut ticks: BTreeMap<String, Tally> = BTreeMap::new();
    for (tier, t) in ledger {
        let bad = t.failed_ticks + t.skipped_ticks + t.missing_owed_ticks;
        let owed = t.recorded_ticks() + t.missing_owed_ticks;
        if bad > 0 && 100.0 * f64::from(bad) / f64::from(owed) > cfg.max_tick_failure_pct {
            failing.push(Failing {
                check: format!("ticks_{tier}"),
                detail: format!(
                    "of {owed} {tier} ticks owed in the last hour, {} failed, {} were skipped \
                     and {} never ran (over {}%)",
                    t.failed_ticks, t.skipped_ticks, t.missing_owed_ticks, cfg.max_tick_failure_pct
                ),
            });
        }
        if let Some(pct) = t.coverage_pct.filter(|p| *p < cfg.min_coverage_pct) {
            failing.push(Failing {
                check: format!("coverage_{tier}"),
                detail: format!(
                    "{tier} ticks in the last hour wrote {} of {} samples ({pct}%, under {}%)",
                    t.samples, t.expected_samples, cfg.min_coverage_pct
                ),
            });
        }
        ticks.insert(tier.to_string(), t);
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
    let max_age = dur(cfg.ws_heartbeat_max_age);
    for hb in heartbeats.iter().filter(|hb| now - hb.at > max_age) {
        failing.push(Failing {
            check: format!("ws_{}", hb.shard_id),
            detail: format!(
                "WebSocket shard {} last wrote a heartbeat at {} ({} s ago, over {} s)",
                hb.shard_id,
                hb.at,
                (now - hb.at).num_seconds(),
                max_age.num_seconds()
            ),
        });
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
        since,
        ticks_last_hour: ticks,
    })
}

/// "The start" in the cloud: when discovery first ran, or, when discovery never recorded a
/// run (a function that fails before it can), when any task first did (the dispatcher runs
/// every minute).
pub fn first_seen(states: &[TaskState]) -> Option<Ts> {
    states
        .iter()
        .find(|s| s.task == crate::discover::TASK)
        .and_then(|d| d.first_seen_at)
        .or_else(|| states.iter().filter_map(|s| s.first_seen_at).min())
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
