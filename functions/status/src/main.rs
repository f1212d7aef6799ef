//! The status function (API Gateway HTTP API): the one status router of
//! `polytape_collector::status` — every endpoint `polytape run` serves, with the same JSON —
//! over the tables and objects the other functions write; health thresholds from the
//! `POLYTAPE_HEALTH_*` variables. What only a local run knows (its counters, the live event
//! stream) is null, or `404 not_available`.

use polytape_collector::status::{router, Status};
use polytape_collector::Config;
use polytape_store::aws::AwsStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = AwsStore::from_env().await?;
    let config = Config::from_env()?;
    lambda_http::run(router(Status::new(store, config))).await
}
