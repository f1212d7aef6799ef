//! The maintenance function (every 5 minutes): the same handler as `polytape run`'s
//! maintenance — re-tier (asking Gamma whether markets past their end closed), resolutions when
//! due (`POLYTAPE_RESOLUTIONS_EVERY_S`), the day's `markets` dimension table, and hourly
//! compaction of the Parquet tables when due (`POLYTAPE_COMPACT_*`). Every run, failed ones
//! too, is recorded as a task run; compaction prints `CompactionLagSeconds` while it is behind
//! and `TaskFailures` when part of it failed (EMF).

// The handler's future (re-tier's conflict rounds over the store's futures) nests deeper than
// the compiler's default query depth allows for its layout.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use polytape_collector::{emf, maintenance, Config, SystemClock};
use polytape_polymarket::{ClientConfig, PolymarketClient};
use polytape_store::aws::AwsStore;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = AwsStore::from_env().await?;
    let client = PolymarketClient::new(ClientConfig::from_env()?)?;
    let config = Config::from_env()?;
    let (store, client, config) = (&store, &client, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Requests stop POLYTAPE_TICK_MARGIN_S before the invocation's end, so the run is
        // recorded even when Gamma is slow.
        let until = config.requests_until(event.context.deadline, chrono::Utc::now());
        match maintenance::run(client, store, config, &SystemClock, until).await {
            Ok(report) => {
                // Every run prints the compaction lag (0 when caught up): the "compaction
                // behind" alarm treats a missing datapoint as a stopped compactor.
                emf::emit(&report.metrics(chrono::Utc::now().timestamp_millis()));
                Ok::<Value, Error>(serde_json::to_value(report)?)
            }
            Err(e) => {
                emf::emit(&emf::task_failure(chrono::Utc::now().timestamp_millis()));
                tracing::error!(error = %e, "maintenance failed");
                Err(e.into())
            }
        }
    }))
    .await
}
