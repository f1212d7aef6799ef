//! `/` (the dashboard page), `/api/openapi.json`, `/health`, `/health/critical` and `/api/stats`.

use super::params::{Params, RawQuery};
use super::routes::Id;
use super::{since, Answer, ApiError, Status, StatusStore};
use crate::runner::Runtime;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use polytape_core::schedule::TickId;
use polytape_core::Tier;
use serde_json::{json, Value};
use std::sync::Arc;

/// The dashboard: one self-contained HTML page (inline CSS and JS, no external file) over
/// this API's JSON, fetched with URLs relative to the page, so it works offline and behind an
/// API Gateway stage path.
pub const DASHBOARD: &str = include_str!("dashboard.html");

/// `/`: the dashboard page.
pub async fn root(q: RawQuery) -> Response {
    if let Err(e) = Params::of(Id::Root, q) {
        return e.into_response();
    }
    (
        // The page changes with the binary only; the data it shows is fetched by it.
        [(header::CACHE_CONTROL, "no-cache")],
        Html(DASHBOARD),
    )
        .into_response()
}

/// `/api/openapi.json`.
pub async fn openapi(q: RawQuery) -> Answer {
    Params::of(Id::OpenApi, q)?;
    Ok(Json(super::openapi::document()))
}

pub async fn health<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Response {
    health_response(&st, q, false).await
}

pub async fn critical<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Response {
    health_response(&st, q, true).await
}

/// `/health` (always 200, with the status and the failing checks) or, `critical`,
/// `/health/critical` (503 listing the failing checks, 200 when none fail).
async fn health_response<S: StatusStore>(st: &Status<S>, q: RawQuery, critical: bool) -> Response {
    let id = if critical {
        Id::HealthCritical
    } else {
        Id::Health
    };
    if let Err(e) = Params::of(id, q) {
        return e.into_response();
    }
    let started_at = st.started_at();
    let h = match crate::health::check(&st.store, &st.config.health, st.now(), started_at).await {
        Ok(h) => h,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let code = if critical && !h.failing.is_empty() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(json!({
            "status": h.status,
            "now": h.now,
            "started_at": started_at,
            "since": h.since,
            "failing": h.failing,
            "last_discovery_at": h.last_discovery_at,
            "ticks_last_hour": h.ticks_last_hour,
        })),
    )
        .into_response()
}

/// `/api/stats`: what the store says (the same locally and in the cloud), and a local run's
/// own counters under `run` and `live` (null in the cloud).
pub async fn stats<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    Params::of(Id::Stats, q)?;
    let now = st.now();
    let hour_ago = now - chrono::Duration::hours(1);
    let store = &st.store;
    let counts = async {
        crate::resolutions::read_counts(store)
            .await
            .map_err(|e| polytape_store::StoreError::Config(e.to_string()))
    };
    // Markets per tier by end date now, over the active markets as re-tier last left them
    // (at most a maintenance period old): no read of the Markets table.
    let (markets, results) = tokio::try_join!(crate::retier::count_due(store, now), counts)?;
    let since = since(&st).await?;
    // The coverage ledger's count, as `/api/data-quality/coverage` and `/health` count.
    let ledger = crate::ledger::window(store, hour_ago, now, now, since, &Tier::ALL).await?;
    let per_tier: serde_json::Map<String, Value> = markets
        .iter()
        .map(|(t, n)| {
            (
                t.map_or("untiered".to_string(), |t| t.to_string()),
                json!(n),
            )
        })
        .collect();
    let mut tiers = serde_json::Map::new();
    for tier in Tier::ALL {
        let latest = crate::latest::current(store, tier, now).await?;
        let t = ledger.get(&tier).cloned().unwrap_or_default();
        let floor = TickId::floor(tier, now);
        let next = if floor.tick_ts >= now {
            floor
        } else {
            floor.next()
        };
        tiers.insert(
            tier.to_string(),
            json!({
                "markets": markets.get(&Some(tier)).copied().unwrap_or(0),
                "interval_s": tier.interval_s(),
                "latest_tick": latest.as_ref().map(|l| l.tick_ts),
                "latest_markets": latest.as_ref().map_or(0, |l| l.markets.len()),
                "ticks_last_hour": t.recorded_ticks(),
                "failed_ticks_last_hour": t.failed_ticks,
                "skipped_ticks_last_hour": t.skipped_ticks,
                "missing_ticks_last_hour": t.missing_ticks,
                "expected_rows_last_hour": t.expected_samples,
                "rows_last_hour": t.samples,
                "coverage_pct_last_hour": t.coverage_pct,
                "next_tick": next.tick_ts,
            }),
        );
    }
    let (run, live) = match &st.local {
        Some(l) => {
            let live = l.feed().map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                if let Value::Object(fields) = &mut v {
                    fields.insert("trades_per_min".into(), json!(l.trades_per_min()));
                }
                v
            });
            (l.run_stats(), live.unwrap_or(Value::Null))
        }
        None => (Value::Null, Value::Null),
    };
    Ok(Json(json!({
        "now": now,
        "started_at": st.started_at(),
        "markets_per_tier": per_tier,
        "markets_tracked": markets.values().sum::<u64>(),
        "results": results,
        "tiers": tiers,
        "run": run,
        "live": live,
    })))
}

/// A local run's own counters: ticks, rows, errors and requests since it started.
pub fn run_section<S>(rt: &Runtime<S>) -> Value {
    let s = rt.stats.snapshot();
    let f = rt.client.stats();
    let tiers: serde_json::Map<String, Value> = s
        .tiers
        .iter()
        .map(|(t, v)| (t.to_string(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    json!({
        "started_at": s.started_at,
        "rows_written": s.tiers.values().map(|t| t.rows).sum::<u64>(),
        "tiers": tiers,
        "discovery": s.discovery,
        "maintenance": s.maintenance,
        "errors": s.errors,
        "last_error": s.last_error,
        "last_error_at": s.last_error_at,
        "requests": {
            "total": f.requests, "retries": f.retries, "rate_limited": f.rate_limited,
            "server_errors": f.server_errors, "truncated": f.truncated, "timeouts": f.timeouts,
            "rejected": f.rejected,
        },
    })
}
