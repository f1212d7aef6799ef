//! The status function (API Gateway HTTP API): `GET /health` and `GET /api/stats` over the
//! stores the other functions write.

use polytape_collector::status::store_router;
use polytape_store::aws::AwsStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = AwsStore::from_env().await?;
    lambda_http::run(store_router(store)).await
}
