//! The maintenance function (every 5 minutes): re-tiers markets as their close nears and
//! refreshes the day's `markets` dimension table. (Resolutions and compaction: not built yet.)

use lambda_runtime::{service_fn, Error, LambdaEvent};
use polytape_collector::{emf, maintenance, SystemClock};
use polytape_store::aws::AwsStore;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = AwsStore::from_env().await?;
    let store = &store;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        match maintenance::run(store, &SystemClock).await {
            Ok(report) => Ok::<Value, Error>(serde_json::to_value(report)?),
            Err(e) => {
                emf::emit(&emf::task_failure(chrono::Utc::now().timestamp_millis()));
                tracing::error!(error = %e, "maintenance failed");
                Err(e.into())
            }
        }
    }))
    .await
}
