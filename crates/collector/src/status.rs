//! The status API of a local run: `GET /health` and `GET /api/stats` as JSON. (The status
//! Lambda will serve the same router; the rest of DESIGN.md's endpoints come with it.)

use crate::runner::Runtime;
use crate::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
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
