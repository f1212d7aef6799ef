//! The status API: `GET /health` and `GET /api/stats` as JSON, over two sources:
//! [`router`] for a local run (the store plus the run's live counters) and [`store_router`] for
//! the status Lambda (the store alone: task runs, coverage and Latest items written by the other
//! functions). The rest of DESIGN.md's endpoints are not built yet.

use crate::runner::Runtime;
use crate::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use polytape_core::ops::TaskStatus;
use polytape_core::Tier;
use polytape_store::{LatestStore, MarketStore, OpsStore};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

/// The router over a runtime's store and counters.
pub fn router<S: Store>(rt: Arc<Runtime<S>>) -> Router {
    Router::new()
        .route("/health", get(health::<S>))
        .route("/api/stats", get(stats::<S>))
        .fallback(not_found)
        .with_state(rt)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn health<S: Store>(State(rt): State<Arc<Runtime<S>>>) -> Response {
    let s = rt.stats.snapshot();
    let now = chrono::Utc::now();
    // Degraded while an error is recent; it recovers once handlers run cleanly again.
    let recent_error = s
        .last_error_at
        .is_some_and(|t| now - t < chrono::Duration::minutes(10));
    let status = match (&s.discovery, recent_error) {
        (None, _) => "starting",
        (Some(_), false) => "ok",
        (Some(_), true) => "degraded",
    };
    Json(json!({
        "status": status,
        "now": now,
        "started_at": s.started_at,
        "uptime_s": s.started_at.map(|t| (now - t).num_seconds()),
        "last_discovery_at": s.discovery.as_ref().map(|d| d.at),
        "errors": s.errors,
        "last_error": s.last_error,
        "last_error_at": s.last_error_at,
    }))
    .into_response()
}

async fn stats<S: Store>(State(rt): State<Arc<Runtime<S>>>) -> Response {
    let markets = match rt.store.count_by_tier().await {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
    };
    let per_tier: serde_json::Map<String, serde_json::Value> = markets
        .iter()
        .map(|(t, n)| {
            (
                t.map_or("untiered".to_string(), |t| t.to_string()),
                json!(n),
            )
        })
        .collect();
    let s = rt.stats.snapshot();
    let f = rt.client.stats();
    let tiers: serde_json::Map<String, serde_json::Value> = s
        .tiers
        .iter()
        .map(|(t, v)| (t.to_string(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    Json(json!({
        "now": chrono::Utc::now(),
        "started_at": s.started_at,
        "markets_per_tier": per_tier,
        "markets_tracked": markets.values().sum::<u64>(),
        "rows_written": s.tiers.values().map(|t| t.rows).sum::<u64>(),
        "tiers": tiers,
        "discovery": s.discovery,
        "next_discovery": s.next_discovery,
        "retier": s.retier,
        "errors": s.errors,
        "last_error": s.last_error,
        "requests": {
            "total": f.requests, "retries": f.retries, "rate_limited": f.rate_limited,
            "server_errors": f.server_errors, "truncated": f.truncated, "timeouts": f.timeouts, "rejected": f.rejected,
        },
    }))
    .into_response()
}

/// The status API over the stores alone, as the status Lambda serves it.
pub fn store_router<S>(store: S) -> Router
where
    S: MarketStore + LatestStore + OpsStore + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(store_health::<S>))
        .route("/api/stats", get(store_stats::<S>))
        .fallback(not_found)
        .with_state(store)
}

/// Discovery runs hourly: older than this, something is wrong.
const DISCOVERY_MAX_AGE: chrono::Duration = chrono::Duration::hours(2);

async fn store_health<S>(State(store): State<S>) -> Response
where
    S: MarketStore + LatestStore + OpsStore + Clone + Send + Sync + 'static,
{
    // ~450 runs an hour (ticks, dispatch-free): 1,000 reach past the last hourly discovery.
    let runs = match store.recent_task_runs(1000).await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
    };
    let now = chrono::Utc::now();
    let last_discovery = runs
        .iter()
        .find(|r| r.task == "discovery" && r.status != TaskStatus::Failed)
        .map(|r| r.finished_at);
    let failed = runs
        .iter()
        .filter(|r| {
            r.status == TaskStatus::Failed && now - r.finished_at < chrono::Duration::minutes(10)
        })
        .count();
    let status = match last_discovery {
        None => "starting",
        Some(t) if now - t > DISCOVERY_MAX_AGE || failed > 0 => "degraded",
        Some(_) => "ok",
    };
    Json(json!({
        "status": status,
        "now": now,
        "last_discovery_at": last_discovery,
        "failed_runs_10m": failed,
        "recent_runs": runs.len(),
    }))
    .into_response()
}

async fn store_stats<S>(State(store): State<S>) -> Response
where
    S: MarketStore + LatestStore + OpsStore + Clone + Send + Sync + 'static,
{
    let now = chrono::Utc::now();
    let (markets, coverage) = match tokio::try_join!(
        store.count_by_tier(),
        store.coverage_since(now - chrono::Duration::hours(1))
    ) {
        Ok(x) => x,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
    };
    let mut tiers = serde_json::Map::new();
    for tier in Tier::ALL {
        let latest = match store.get_latest(tier).await {
            Ok(l) => l,
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    &e.to_string(),
                )
            }
        };
        let cov: Vec<_> = coverage.iter().filter(|c| c.tier == tier).collect();
        let expected: u64 = cov.iter().map(|c| u64::from(c.expected)).sum();
        let written: u64 = cov.iter().map(|c| u64::from(c.written)).sum();
        tiers.insert(
            tier.to_string(),
            json!({
                "markets": markets.get(&Some(tier)).copied().unwrap_or(0),
                "latest_tick": latest.as_ref().map(|l| l.tick_ts),
                "latest_markets": latest.as_ref().map_or(0, |l| l.markets.len()),
                "ticks_last_hour": cov.iter().filter(|c| !c.skipped).count(),
                "skipped_ticks_last_hour": cov.iter().filter(|c| c.skipped).count(),
                "rows_last_hour": written,
                "coverage_pct_last_hour": (expected > 0).then(|| 100.0 * written as f64 / expected as f64),
            }),
        );
    }
    Json(json!({
        "now": now,
        "markets_tracked": markets.values().sum::<u64>(),
        "tiers": tiers,
    }))
    .into_response()
}
