//! The discovery function (EventBridge, every minute): runs discovery when it is due — hourly
//! after a success, and after a failure again within minutes with backoff, decided from the
//! recorded runs exactly as `polytape run` decides it — and otherwise returns at once. A lease
//! keeps two runs from overlapping. Thin: clients are built once per cold start and the work
//! is `polytape_collector::discover::run_if_due`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use polytape_collector::{discover::run_if_due, emf, Config, SystemClock};
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
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        match run_if_due(client, store, config, &SystemClock).await {
            Ok(Some(report)) => Ok::<Value, Error>(serde_json::to_value(report)?),
            Ok(None) => Ok(serde_json::json!({ "due": false })),
            Err(e) => {
                emf::emit(&emf::task_failure(chrono::Utc::now().timestamp_millis()));
                tracing::error!(error = %e, retryable = e.is_retryable(), "discovery failed");
                Err(e.into())
            }
        }
    }))
    .await
}
