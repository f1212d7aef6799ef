//! The status API: `GET /health`, `GET /health/critical` and `GET /api/stats` as JSON, over two
//! sources: [`router`] for a local run (the store plus the run's live counters) and
//! [`store_router`] for the status Lambda (the store alone: task states, coverage and Latest
//! values written by the other functions). Both answer the health endpoints from the same
//! checks over the store ([`crate::health`]). The rest of DESIGN.md's endpoints are not built
//! yet.

use crate::config::HealthConfig;
use crate::runner::Runtime;
use crate::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use polytape_core::Tier;
use polytape_store::{CoverageStore, LatestStore, MarketStore, ObjectStore, TaskStore};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

/// The router over a runtime's store and counters.
pub fn router<S: Store>(rt: Arc<Runtime<S>>) -> Router {
    Router::new()
        .route("/health", get(local_health::<S>))
        .route("/health/critical", get(local_critical::<S>))
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

async fn local_health<S: Store>(State(rt): State<Arc<Runtime<S>>>) -> Response {
    let started = rt.stats.snapshot().started_at;
    health_response(&rt.store, &rt.config.health, started, false).await
}

async fn local_critical<S: Store>(State(rt): State<Arc<Runtime<S>>>) -> Response {
    let started = rt.stats.snapshot().started_at;
    health_response(&rt.store, &rt.config.health, started, true).await
}

/// `/health` (always 200, with the status and the failing checks) or, `critical`,
/// `/health/critical` (503 listing the failing checks, 200 when none fail).
async fn health_response<S>(
    store: &S,
    cfg: &HealthConfig,
    started_at: Option<polytape_core::Ts>,
    critical: bool,
) -> Response
where
    S: TaskStore + CoverageStore,
{
    let h = match crate::health::check(store, cfg, chrono::Utc::now(), started_at).await {
        Ok(h) => h,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
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
            "failing": h.failing,
            "last_discovery_at": h.last_discovery_at,
            "ticks_last_hour": h.ticks_last_hour,
        })),
    )
        .into_response()
}

async fn stats<S: Store>(State(rt): State<Arc<Runtime<S>>>) -> Response {
    let markets = match rt.store.count_due(chrono::Utc::now()).await {
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
    let results = match crate::resolutions::read_counts(&rt.store).await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
    };
    let s = rt.stats.snapshot();
    let f = rt.client.stats();
    let live = live_section(&rt);
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
        "results": results,
        "live": live,
        "rows_written": s.tiers.values().map(|t| t.rows).sum::<u64>(),
        "tiers": tiers,
        "discovery": s.discovery,
        "maintenance": s.maintenance,
        "errors": s.errors,
        "last_error": s.last_error,
        "requests": {
            "total": f.requests, "retries": f.retries, "rate_limited": f.rate_limited,
            "server_errors": f.server_errors, "truncated": f.truncated, "timeouts": f.timeouts, "rejected": f.rejected,
        },
    }))
    .into_response()
}

/// `/api/stats`' `live`: the feed's counters and `trades_per_min`, the trades it stored in the
/// last minute; null while the feed has not reported (or does not run).
fn live_section<S>(rt: &Runtime<S>) -> serde_json::Value {
    let counts = rt.feed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut live = serde_json::to_value(counts).unwrap_or_default();
    if let serde_json::Value::Object(fields) = &mut live {
        fields.insert(
            "trades_per_min".into(),
            json!(rt.trades_per_min(tokio::time::Instant::now())),
        );
    }
    live
}

/// The status API over the stores alone, as the status Lambda serves it.
pub fn store_router<S>(store: S, health: HealthConfig) -> Router
where
    S: MarketStore
        + LatestStore
        + TaskStore
        + CoverageStore
        + ObjectStore
        + Clone
        + Send
        + Sync
        + 'static,
{
    let state = Arc::new((store, health));
    Router::new()
        .route("/health", get(store_health::<S>))
        .route("/health/critical", get(store_critical::<S>))
        .route("/api/stats", get(store_stats::<S>))
        .fallback(not_found)
        .with_state(state)
}

async fn store_health<S>(State(state): State<Arc<(S, HealthConfig)>>) -> Response
where
    S: TaskStore + CoverageStore,
{
    health_response(&state.0, &state.1, None, false).await
}

async fn store_critical<S>(State(state): State<Arc<(S, HealthConfig)>>) -> Response
where
    S: TaskStore + CoverageStore,
{
    health_response(&state.0, &state.1, None, true).await
}

async fn store_stats<S>(State(state): State<Arc<(S, HealthConfig)>>) -> Response
where
    S: MarketStore + LatestStore + CoverageStore + ObjectStore,
{
    let store = &state.0;
    let now = chrono::Utc::now();
    let counts = async {
        crate::resolutions::read_counts(store)
            .await
            .map_err(|e| polytape_store::StoreError::Config(e.to_string()))
    };
    let (markets, coverage, results) = match tokio::try_join!(
        store.count_due(now),
        store.coverage_since(now - chrono::Duration::hours(1)),
        counts
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
        "results": results,
        "tiers": tiers,
    }))
    .into_response()
}
