//! The status API: one router ([`router`]) over the store ports, served by `polytape run`
//! (over the local store, with the run's own counters and the live feed's events added through
//! [`LocalRun`]) and by the status Lambda (over the AWS adapters, behind the HTTP API). A path
//! answers the same JSON shape in both; what only a local run knows (its counters since start,
//! the feed's in-memory counters, the live event stream) is `null` — or, for the stream,
//! `404 not_available` — in the cloud.
//!
//! Every endpoint is listed once, with its query parameters, in [`routes::ROUTES`]: the router
//! registers handlers from it, each handler accepts exactly the parameters it lists (anything
//! else is `400 unknown_parameter`), and `docs/openapi.json` is generated from it
//! ([`openapi::document`]; a test holds the file equal). Errors are
//! `{"error":{"code","message"}}`: 400 for a bad parameter, cursor or body, 404 for an unknown
//! path, market, table or strategy, 405 for a method an endpoint does not take, 503 when the
//! store cannot be read.
//!
//! # Layout
//! * [`routes`]: the endpoint table; [`openapi`]: the OpenAPI document built from it.
//! * `params`: query parameters checked against the table.
//! * `overview`: `/` (the dashboard, `dashboard.html`), `/health`, `/health/critical`, `/api/stats`.
//! * `markets`: `/api/markets`, `/api/markets/{condition_id}`, `/api/tier-transitions`.
//! * `tasks`: `/api/tasks/status`, `/api/tasks/runs`.
//! * `quality`: `/api/data-quality/coverage`, `/gaps`, `/completeness` (the coverage ledger,
//!   [`crate::ledger`]).
//! * [`feed`]: `/api/websocket`, `/api/events`, `/api/events/stream` (local: server-sent
//!   events) and [`feed::LiveEvents`], the hub the local feed's sink publishes to.
//! * `tables`: `/api/tables`, `/api/tables/{name}` (every Parquet and state table, paged).
//! * `executor`: `/api/executor/status`, `/positions`, `/fills`, `/signals`, `/api/strategies`
//!   and, locally, `POST /api/strategies/{name}` (the paper executor's state).

mod executor;
pub mod feed;
mod markets;
pub mod openapi;
mod overview;
mod params;
mod quality;
pub mod routes;
mod tables;
mod tasks;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::executor::ExecutorSettings;
use crate::runner::Runtime;
use crate::Store;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use polytape_core::Ts;
use polytape_feed::supervisor::SupervisorCounts;
use std::future::Future;
use std::sync::Arc;

pub use feed::{Broadcasting, LiveEvent, LiveEvents};

/// What a local run adds to the store's view: its own counters and the live feed's, and its
/// live events. The status function has none of it.
pub trait LocalRun: Send + Sync {
    /// When the run started: ticks are owed from then.
    fn started_at(&self) -> Option<Ts>;
    /// The run's counters since it started (`/api/stats` `run`).
    fn run_stats(&self) -> serde_json::Value;
    /// The feed's newest counters, once it reported (`None` too when it does not run).
    fn feed(&self) -> Option<SupervisorCounts>;
    /// Trades the feed stored in the last minute.
    fn trades_per_min(&self) -> u64;
    /// The live events, for the stream.
    fn events(&self) -> Option<&LiveEvents>;
    /// The paper executor's configuration, when this run runs it.
    fn executor(&self) -> Option<&ExecutorSettings> {
        None
    }
}

/// A local run: the runtime and the hub its feed publishes to.
pub struct Local<S> {
    pub runtime: Arc<Runtime<S>>,
    pub events: Option<LiveEvents>,
}

impl<S: Store> LocalRun for Local<S> {
    fn started_at(&self) -> Option<Ts> {
        self.runtime.stats.snapshot().started_at
    }

    fn run_stats(&self) -> serde_json::Value {
        overview::run_section(&self.runtime)
    }

    fn feed(&self) -> Option<SupervisorCounts> {
        self.runtime
            .feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn trades_per_min(&self) -> u64 {
        self.runtime.trades_per_min(tokio::time::Instant::now())
    }

    fn events(&self) -> Option<&LiveEvents> {
        self.events.as_ref()
    }

    fn executor(&self) -> Option<&ExecutorSettings> {
        self.runtime.executor.as_ref()
    }
}

/// Everything a handler reads: the store, the configuration (health thresholds, task
/// periods), the clock, and a local run's extras.
pub struct Status<S> {
    pub store: S,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub local: Option<Arc<dyn LocalRun>>,
}

impl<S> Status<S> {
    /// The status over `store` alone (the status function), on the system clock.
    pub fn new(store: S, config: Config) -> Status<S> {
        Status {
            store,
            config,
            clock: Arc::new(SystemClock),
            local: None,
        }
    }

    /// Reads "now" from `clock` (tests).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Status<S> {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds a local run's counters and events.
    pub fn with_local(mut self, local: Arc<dyn LocalRun>) -> Status<S> {
        self.local = Some(local);
        self
    }

    fn now(&self) -> Ts {
        self.clock.now()
    }

    /// The local run's start, if this is one.
    fn started_at(&self) -> Option<Ts> {
        self.local.as_ref().and_then(|l| l.started_at())
    }
}

/// The storage capabilities the status API reads (every port but the queue).
pub trait StatusStore: Store {}
impl<T: Store> StatusStore for T {}

/// The router: every endpoint of [`routes::ROUTES`], the rest `404 not_found`.
pub fn router<S: StatusStore>(status: Status<S>) -> Router {
    let st = Arc::new(status);
    let mut r: Router<Arc<Status<S>>> = Router::new();
    for route in routes::ROUTES {
        r = r.route(route.path, handler::<S>(route.id).fallback(wrong_method));
    }
    r.fallback(not_found).with_state(st)
}

/// The router of a local run (`polytape run`): the store, the run's counters and, with
/// `events`, the feed's live events.
pub fn local_router<S: Store>(rt: Arc<Runtime<S>>, events: Option<LiveEvents>) -> Router {
    let status = Status::new(rt.store.clone(), rt.config.clone());
    router(status.with_local(Arc::new(Local {
        runtime: rt,
        events,
    })))
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

/// The handler of one endpoint.
fn handler<S: StatusStore>(id: routes::Id) -> axum::routing::MethodRouter<Arc<Status<S>>> {
    use routes::Id;
    match id {
        Id::Root => get(overview::root),
        Id::OpenApi => get(overview::openapi),
        Id::Health => get(overview::health::<S>),
        Id::HealthCritical => get(overview::critical::<S>),
        Id::Stats => get(overview::stats::<S>),
        Id::Markets => get(markets::list::<S>),
        Id::Market => get(markets::one::<S>),
        Id::Transitions => get(markets::transitions::<S>),
        Id::TasksStatus => get(tasks::status::<S>),
        Id::TasksRuns => get(tasks::runs::<S>),
        Id::Coverage => get(quality::coverage::<S>),
        Id::Gaps => get(quality::gaps::<S>),
        Id::Completeness => get(quality::completeness::<S>),
        Id::WebSocket => get(feed::websocket::<S>),
        Id::Events => get(feed::events::<S>),
        Id::EventStream => get(feed::stream::<S>),
        Id::Tables => get(tables::list::<S>),
        Id::Table => get(tables::rows::<S>),
        Id::ExecutorStatus => get(executor::status::<S>),
        Id::ExecutorPositions => get(executor::positions::<S>),
        Id::ExecutorFills => get(executor::fills::<S>),
        Id::ExecutorSignals => get(executor::signals::<S>),
        Id::Strategies => get(executor::list::<S>),
        Id::StrategyToggle => post(executor::toggle::<S>),
    }
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
}

async fn wrong_method() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "the endpoint does not take this method (docs/openapi.json lists each one's)",
    )
    .into_response()
}

/// An error answer: `{"error":{"code","message"}}` with its status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_parameter`.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<polytape_store::StoreError> for ApiError {
    fn from(e: polytape_store::StoreError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
    }
}

impl From<crate::HandlerError> for ApiError {
    fn from(e: crate::HandlerError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
    }
}

/// A handler's answer.
type Answer = Result<Json<serde_json::Value>, ApiError>;

/// Since when ticks are owed: the local run's start, or in the cloud the first task recorded.
async fn since<S: StatusStore>(st: &Status<S>) -> Result<Option<Ts>, ApiError> {
    if let Some(t) = st.started_at() {
        return Ok(Some(t));
    }
    let states = polytape_store::TaskStore::task_states(&st.store).await?;
    Ok(crate::health::first_seen(&states))
}
