//! The snapshot function, on two triggers:
//! * the once-a-minute EventBridge schedule: enqueue every tick due in that minute on the ticks
//!   queue, each delayed to its second (0/15/30/45);
//! * an SQS batch of tick messages: run each tick within its deadline (its tier's next tick, or
//!   this invocation's deadline less `POLYTAPE_TICK_MARGIN_S`), reporting the messages whose
//!   tick failed as batch item failures (the others are deleted by Lambda).
//!
//! * after dispatching, the same scheduled invocation runs the paper executor
//!   (`polytape_collector::executor::run_due`) over the ticks whose files are final, unless
//!   `POLYTAPE_EXECUTOR=off`.
//!
//! Thin: clients are built once per cold start; the work is in `polytape_collector::dispatch`.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use polytape_collector::dispatch::{dispatch_minute, run_tick_message};
use polytape_collector::executor::{self, ExecutorSettings};
use polytape_collector::{emf, Config, SystemClock};
use polytape_polymarket::{ClientConfig, PolymarketClient};
use polytape_store::aws::AwsStore;
use serde_json::{json, Value};

struct Ctx {
    store: AwsStore,
    client: PolymarketClient,
    config: Config,
    /// `POLYTAPE_EXECUTOR` is not `off`: the scheduled invocation also runs the paper executor.
    executor: bool,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let ctx = Ctx {
        store: AwsStore::from_env().await?,
        client: PolymarketClient::new(ClientConfig::from_env()?)?,
        config: Config::from_env()?,
        executor: std::env::var("POLYTAPE_EXECUTOR").map_or(true, |v| v != "off"),
    };
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        // The invocation's own end: every tick of the batch stops its requests
        // `POLYTAPE_TICK_MARGIN_S` before it, and everything 2 s before it, so the Lambda
        // timeout never cuts a tick off.
        let end = ctx
            .config
            .invocation_end(event.context.deadline, chrono::Utc::now());
        handle(ctx, event.payload, end)
    }))
    .await
}

async fn handle(
    ctx: &Ctx,
    payload: Value,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Value, Error> {
    if payload.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(payload)?;
        return Ok(serde_json::to_value(run_ticks(ctx, batch, end).await)?);
    }
    // A scheduled event: its `time` is the minute EventBridge fired for.
    let minute = payload
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(chrono::Utc::now);
    let ticks = dispatch_minute(&ctx.store, &ctx.store, minute, chrono::Utc::now())
        .await
        .inspect_err(|e| {
            emf::emit(&emf::task_failure(chrono::Utc::now().timestamp_millis()));
            tracing::error!(error = %e, "dispatch failed");
        })?;
    tracing::info!(minute = %minute, ticks = ticks.len(), "dispatched the minute's ticks");
    let executor = if ctx.executor {
        run_executor(ctx).await
    } else {
        Value::Null
    };
    Ok(json!({ "minute": minute, "enqueued": ticks, "executor": executor }))
}

/// The paper executor's run of this minute (the slots whose ticks are final). Its failure is
/// logged and counted but does not fail the dispatch: it runs again next minute from the state
/// it last wrote.
async fn run_executor(ctx: &Ctx) -> Value {
    let run = async {
        let settings = ExecutorSettings::from_store(&ctx.store).await?;
        executor::run_due(&ctx.store, &settings, &SystemClock).await
    };
    match run.await {
        Ok(report) => serde_json::to_value(report).unwrap_or(Value::Null),
        Err(e) => {
            emf::emit(&emf::task_failure(chrono::Utc::now().timestamp_millis()));
            tracing::error!(error = %e, "paper executor failed; it runs again next minute");
            json!({ "error": e.to_string() })
        }
    }
}

/// Runs every record of the batch concurrently, each within its deadline; a record whose tick
/// failed (storage) is reported so SQS delivers it again (or, after its receive count, to the
/// dead-letter queue).
async fn run_ticks(
    ctx: &Ctx,
    batch: SqsEvent,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> SqsBatchResponse {
    let runs = batch.records.iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let now_ms = || chrono::Utc::now().timestamp_millis();
        match run_tick_message(&ctx.client, &ctx.store, body, &SystemClock, end, ctx.config.tick_margin).await {
            Ok(report) => {
                if let Some(doc) = emf::tick_metrics(&report, now_ms()) {
                    emf::emit(&doc);
                }
                tracing::info!(tier = %report.tick.tier, tick = %report.tick.tick_ts, rows = report.rows, skipped = report.skipped, "tick done");
                None
            }
            Err(e) => {
                emf::emit(&emf::task_failure(now_ms()));
                tracing::error!(message_id = %id, error = %e, "tick message failed: reported for retry");
                Some(id)
            }
        }
    });
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
