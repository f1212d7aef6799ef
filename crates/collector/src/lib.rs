//! polytape's handlers and the local runtime that schedules them.
//!
//! The handlers are plain async functions over the storage ports of `polytape-store` and the
//! Polymarket client of `polytape-polymarket`; the Lambda binaries wrap them one per function,
//! and `polytape run` schedules them here with tokio timers that mirror the EventBridge
//! schedules. Nothing else differs between laptop and cloud.
//!
//! # Layout
//! * [`config`]: thresholds and intervals, from environment variables with defaults.
//! * [`clock`]: where "now" comes from (the system clock, or a fixed one in tests).
//! * [`discover`]: find tradeable markets closing within the lookahead and assign tiers; run it
//!   when due, with retries after a failure ([`discover::run_if_due`]).
//! * [`snapshot`]: one tick of one tier within its deadline: fetch, compute features, write
//!   Parquet, the Latest values, coverage and the task run.
//! * [`dispatch`]: the snapshot function's once-a-minute dispatcher and per-message tick runner.
//! * [`emf`]: CloudWatch Embedded Metric Format lines: the one builder ([`emf::document`]) that
//!   every binary's metrics go through, and the handlers' documents (coverage per tier, totals).
//! * [`maintenance`]: the maintenance duties (re-tier, the daily `markets` table, resolutions
//!   and compaction when due), one handler for the maintenance function and `polytape run`.
//! * [`compaction`]: when hourly compaction (`polytape_store::compact`) runs, for how long,
//!   and its task run.
//! * [`retier`]: record tier moves as a market's close nears; end sampling of markets that
//!   closed (asked on Gamma) or expired.
//! * [`tasks`]: task runs, failed ones included, and when a periodic task is due.
//! * [`health`]: the health checks behind `/health` and `/health/critical`.
//! * [`ledger`]: the coverage ledger — expected vs written samples per tier, hour and market,
//!   derived from the schedule, the coverage records and the markets' tier histories.
//! * [`runner`]: the local scheduler (`polytape run`): discovery, maintenance and every tier's
//!   ticks; the live feed's watcher (trade rate, a line a minute).
//! * [`stats`]: live counters of a local run, for the progress lines and the status API, and
//!   the live feed's trades per minute.
//! * [`status`]: the HTTP status API — one router over the store ports, every endpoint of
//!   DESIGN.md but the executor's, served by `polytape run` and the status function.
//! * [`live`]: the live feed's two ends: the feed process ([`live::run_feed`]) and the trades
//!   consumer ([`live::store_batch`]).
//! * [`tape`]: the feed's raw tape (`raw_ws`), written by the feed process itself, one object
//!   per 5-minute window.
//! * [`replay`]: `polytape replay`, trades rebuilt from the raw tape alone.
//! * [`error`]: [`HandlerError`], which says whether a retry may help.

pub mod clock;
pub mod compaction;
pub mod config;
pub mod discover;
pub mod dispatch;
pub mod emf;
pub mod error;
pub mod executor;
pub mod health;
pub mod latest;
pub mod ledger;
pub mod live;
pub mod maintenance;
pub mod replay;
pub mod resolutions;
pub mod retier;
pub mod runner;
pub mod snapshot;
pub mod stats;
pub mod status;
pub mod tape;
pub mod tasks;
pub mod transitions;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::Config;
pub use error::HandlerError;

use polytape_store::{LatestStore, MarketStore, ObjectDeleter, OpsStore};

/// Every storage capability at once: what the local runner and the snapshot handler use.
pub trait Store:
    MarketStore + LatestStore + OpsStore + ObjectDeleter + Clone + Send + Sync + 'static
{
}
impl<T> Store for T where
    T: MarketStore + LatestStore + OpsStore + ObjectDeleter + Clone + Send + Sync + 'static
{
}
