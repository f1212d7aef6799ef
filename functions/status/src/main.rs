//! The status function (API Gateway HTTP API): `GET /health`, `GET /health/critical` and
//! `GET /api/stats` over the stores the other functions write; health thresholds from the
//! `POLYTAPE_HEALTH_*` variables.

use polytape_collector::status::store_router;
use polytape_collector::Config;
use polytape_store::aws::AwsStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = AwsStore::from_env().await?;
    let config = Config::from_env()?;
    lambda_http::run(store_router(store, config.health)).await
}
