//! The discovery function (EventBridge, every minute): runs discovery when it is due — hourly
//! after a success, and after a failure again within minutes with backoff, decided from the
//! recorded runs exactly as `polytape run` decides it — and otherwise returns at once. A lease
//! keeps two runs from overlapping, and its requests stop before the invocation's end, so even
//! a run Gamma slows to a crawl is recorded. Thin: clients are built once per cold start and
//! the work is `polytape_collector::discover::run_if_due`.

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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Requests stop POLYTAPE_TICK_MARGIN_S before the invocation's end: a run that would
        // be killed fails in time to record its failure (and release its lease).
        let until = config.requests_until(event.context.deadline, chrono::Utc::now());
        match run_if_due(client, store, config, &SystemClock, until).await {
            Ok(Some(report)) => {
                // DiscoveryRuns: what DiscoveryStaleAlarm (template.yaml) counts over 2 h.
                let ts = chrono::Utc::now().timestamp_millis();
                emf::emit(&emf::document(
                    ts,
                    None,
                    &[],
                    &[emf::Metric::count("DiscoveryRuns", 1)],
                ));
                Ok::<Value, Error>(serde_json::to_value(report)?)
            }
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
