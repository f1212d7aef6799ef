//! The maintenance function's duties: re-tier (every run) and the day's `markets` dimension
//! table (refreshed in the first run of each hour). Resolutions and hourly compaction are not
//! built yet.

use crate::clock::Clock;
use crate::error::HandlerError;
use crate::retier::{retier, RetierReport};
use chrono::Timelike;
use polytape_store::{keys, parquet, MarketStore, ObjectStore, OpsStore};
use serde::Serialize;

/// What one maintenance run did.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceReport {
    pub retier: RetierReport,
    /// The key of the `markets` dimension file written this run, if one was.
    pub markets_dimension: Option<String>,
}

/// Re-tiers, then (in the first five minutes of an hour) rewrites today's `markets` file from
/// every market, active or not — one object per day, replaced each hour — so markets that ended
/// (and, once resolutions are tracked, their outcomes) stay joinable with their snapshots.
pub async fn run<S>(store: &S, clock: &impl Clock) -> Result<MaintenanceReport, HandlerError>
where
    S: MarketStore + OpsStore + ObjectStore,
{
    let retier = retier(store, clock).await?;
    let now = clock.now();
    let markets_dimension = if now.minute() < 5 {
        Some(write_markets_dimension(store, now).await?)
    } else {
        None
    };
    Ok(MaintenanceReport {
        retier,
        markets_dimension,
    })
}

/// Writes `markets/dt=<today>/markets.parquet` from every market and returns its key.
pub async fn write_markets_dimension<S: MarketStore + ObjectStore>(
    store: &S,
    now: polytape_core::Ts,
) -> Result<String, HandlerError> {
    let markets = store.all_markets().await?;
    let encoded = parquet::encode_markets(&markets)?;
    let key = keys::markets(now.date_naive());
    store
        .put_object(&key, encoded.bytes, "application/vnd.apache.parquet")
        .await?;
    Ok(key)
}
