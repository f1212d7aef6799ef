//! The trades function, on the live queue's SQS batches: each record is one feed message from
//! the Fargate feed task; a batch's messages of each feed run and hour are stored as one
//! Parquet file per table (`trades`, `whale_events`, `raw_ws`) named by exactly the messages it
//! holds; the records that failed — storage failures and bodies that are not feed messages —
//! are returned as `batchItemFailures`.
//!
//! Thin: the store is built once per cold start; the work is in the library (`trades::
//! handle_batch`) and `polytape_collector::live::store_batch`. It needs only
//! `POLYTAPE_BUCKET`: no table or queue of the stack is named to it or touched by it.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use polytape_collector::emf;
use polytape_store::aws::{AwsStore, Resource};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = AwsStore::from_env_for(&[Resource::Bucket]).await?;
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let report = trades::handle_batch(store, &event.payload).await;
        if let Some(doc) = trades::metrics(&report, chrono::Utc::now().timestamp_millis()) {
            emf::emit(&doc);
        }
        tracing::info!(
            records = event.payload.records.len(),
            stored = report.stored.len(),
            poison = report.poison.len(),
            failed = report.failed.len(),
            trades = report.stored.iter().map(|r| r.trades).sum::<usize>(),
            bad_records = report.stored.iter().map(|r| r.bad_records).sum::<usize>(),
            "batch done"
        );
        Ok::<SqsBatchResponse, Error>(report.response())
    }))
    .await
}
