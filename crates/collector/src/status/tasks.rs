//! `/api/tasks/status` and `/api/tasks/runs`.

use super::params::{from_hex_cursor, hex_cursor, Params, RawQuery};
use super::routes::Id;
use super::{Answer, Status, StatusStore};
use crate::config::Config;
use axum::extract::State;
use axum::Json;
use polytape_core::ops::{TaskRun, TaskState};
use polytape_core::{TickId, Tier, Ts};
use serde_json::{json, Value};
use std::sync::Arc;

/// When `state`'s task runs next, where its schedule is known: discovery when
/// [`crate::tasks::is_due`] turns true (hourly, sooner after a failure), maintenance and the
/// resolutions duty their periods after their last run, the dispatcher at the next minute.
fn next_run(state: &TaskState, config: &Config, now: Ts) -> Option<Ts> {
    let after = |t: Option<Ts>, d: std::time::Duration| {
        t.map(|t| t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
    };
    let next = match state.task.as_str() {
        crate::discover::TASK => {
            if let Some(until) = state.lease_until.filter(|u| *u > now) {
                Some(until)
            } else if state.consecutive_failures > 0 {
                after(
                    state.last_finished_at,
                    crate::tasks::retry_backoff(
                        state.consecutive_failures,
                        config.discovery_retry_cap,
                    ),
                )
            } else {
                after(state.last_success_at, config.discovery_every)
            }
        }
        crate::maintenance::TASK => after(state.last_started_at, config.maintenance_every),
        crate::resolutions::TASK => after(
            state.last_success_at.or(state.last_started_at),
            config.resolutions_every,
        ),
        crate::dispatch::TASK => Some(TickId::floor(Tier::T2, now).next().tick_ts),
        _ => return None,
    };
    // Overdue: it runs at its next chance.
    next.map(|t| t.max(now))
}

fn duration_ms(from: Option<Ts>, to: Option<Ts>) -> Option<i64> {
    Some((to? - from?).num_milliseconds())
}

/// `/api/tasks/status`.
pub async fn status<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    Params::of(Id::TasksStatus, q)?;
    let now = st.now();
    let states = st.store.task_states().await?;
    let tasks: Vec<Value> = states
        .iter()
        .map(|s| {
            json!({
                "task": s.task,
                "last_run_id": s.last_run_id,
                "last_started_at": s.last_started_at,
                "last_finished_at": s.last_finished_at,
                "last_duration_ms": duration_ms(s.last_started_at, s.last_finished_at),
                "last_status": s.last_status,
                "last_error": s.last_error,
                "last_success_at": s.last_success_at,
                "consecutive_failures": s.consecutive_failures,
                "running_until": s.lease_until.filter(|u| *u > now),
                "next_run_at": next_run(s, &st.config, now),
            })
        })
        .collect();
    // Every tick records a run of task `snapshot`; per tier, its newest one of the last
    // interval-and-hour.
    let runs = st
        .store
        .task_runs_since(now - chrono::Duration::seconds(3600 + 3600))
        .await?;
    let tiers: Vec<Value> = Tier::ALL
        .iter()
        .map(|&tier| {
            let suffix = format!("#snapshot#{tier}");
            let last = runs.iter().find(|r| r.id.ends_with(&suffix));
            let floor = TickId::floor(tier, now);
            let next = if floor.tick_ts >= now {
                floor
            } else {
                floor.next()
            };
            json!({
                "tier": tier.to_string(),
                "interval_s": tier.interval_s(),
                "last_run_id": last.map(|r| &r.id),
                "last_started_at": last.map(|r| r.started_at),
                "last_duration_ms": last.map(|r| (r.finished_at - r.started_at).num_milliseconds()),
                "last_status": last.map(|r| r.status),
                "last_error": last.and_then(|r| r.error.as_ref()),
                "next_tick_at": next.tick_ts,
            })
        })
        .collect();
    Ok(Json(
        json!({ "now": now, "tasks": tasks, "snapshot_tiers": tiers }),
    ))
}

/// `r<hex of the run id>`: the last run of a page (ids start with their time, so they order
/// runs; in hex because they hold `#`).
fn run_cursor(v: &str) -> Option<String> {
    from_hex_cursor(v.strip_prefix('r')?)
}

fn run_json(r: &TaskRun) -> Value {
    json!({
        "id": r.id,
        "task": r.task,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "duration_ms": (r.finished_at - r.started_at).num_milliseconds(),
        "status": r.status,
        "error": r.error,
        "detail": r.detail,
    })
}

/// `/api/tasks/runs`.
pub async fn runs<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::TasksRuns, q)?;
    let now = st.now();
    let after = p.cursor(run_cursor)?;
    let hours = i64::try_from(p.int("hours")).unwrap_or(168);
    let status = match p.choice("status") {
        Some(s) => Some(
            serde_json::from_value::<polytape_core::ops::TaskStatus>(Value::String(s.into()))
                .map_err(|e| super::ApiError::bad(format!("status: {e}")))?,
        ),
        None => None,
    };
    let limit = p.count("limit");
    // The page alone (and one more run, to tell whether another page follows), newest id
    // first (time first), so a cursor is a plain id: the store reads about a page, not the
    // window.
    let mut page = st
        .store
        .task_runs_page(&polytape_store::RunQuery {
            since: now - chrono::Duration::hours(hours),
            before: after,
            task: p.text("task").map(str::to_string),
            status,
            limit: limit + 1,
        })
        .await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next = more
        .then(|| page.last().map(|r| format!("r{}", hex_cursor(&r.id))))
        .flatten();
    Ok(Json(json!({
        "now": now,
        "runs": page.iter().map(run_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
