//! The discovery function (hourly EventBridge schedule): finds tradeable markets closing within
//! the lookahead and writes the new or changed ones to the Markets table. Thin: clients are
//! built once per cold start and the work is `polytape_collector::discover::discover`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use polytape_collector::{discover::discover, emf, Config, SystemClock};
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
        match discover(client, store, config, &SystemClock).await {
            Ok(report) => Ok::<Value, Error>(serde_json::to_value(report)?),
            Err(e) => {
                emf::emit(&emf::task_failure(chrono::Utc::now().timestamp_millis()));
                tracing::error!(error = %e, retryable = e.is_retryable(), "discovery failed");
                Err(e.into())
            }
        }
    }))
    .await
}
