//! The trades function's batch handling: each record of an SQS batch from the live queue is one
//! feed message (`polytape_feed::queue`), stored on its own by
//! [`polytape_collector::live::store_message`] — its trades and whale events (and the raw tape
//! of messages sent before the feed wrote its tape itself) as
//! Parquet under keys derived from the message's run and sequence, so a redelivered message
//! rewrites its own objects and never adds a copy.
//!
//! The response lists exactly the records that failed (`ReportBatchItemFailures`), and Lambda
//! deletes the others:
//! * a storage failure: SQS delivers the message again after its visibility timeout;
//! * a body that is not a feed message (poison, [`HandlerError::Input`]): reported too, so
//!   that after the queue's `maxReceiveCount` receives SQS moves it to the dead-letter queue,
//!   where an alarm sees it — never dropped silently.
//!
//! A bad record inside a good message is not a failure of the message: the message's other
//! records are stored, the bad one is skipped, logged and counted (`RejectedInputs` in the
//! batch's EMF line), since no
//! redelivery can mend it.
//!
//! # Layout
//! * [`handle_batch`]: one SQS batch, at most [`IN_FLIGHT`] messages at a time.
//! * [`BatchReport`]: what a batch stored and which records failed, and the response.
//! * [`metrics`]: the EMF line of a batch (`TaskFailures`, an existing series, and
//!   `RejectedInputs`, a logged member).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::stream::{self, StreamExt};
use polytape_collector::emf::{self, Metric};
use polytape_collector::error::HandlerError;
use polytape_collector::live::{store_message, MessageReport};
use polytape_store::ObjectStore;
use serde::Serialize;
use serde_json::Value;

/// Messages stored at once: each holds up to ~250 KB of JSON and becomes up to three Parquet
/// objects, so a few at a time keep a 256 MB function's memory flat while its PUTs overlap.
pub const IN_FLIGHT: usize = 4;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// The messages stored, in the batch's order.
    pub stored: Vec<MessageReport>,
    /// Message ids of bodies that are not feed messages: reported, so they reach the DLQ.
    pub poison: Vec<String>,
    /// Message ids whose storage failed: reported, so SQS delivers them again.
    pub failed: Vec<String>,
}

impl BatchReport {
    /// The partial batch response: the poison and the failed records, each once.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .poison
            .iter()
            .chain(&self.failed)
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }

    /// Inputs that could not be used: records skipped inside stored messages, and messages
    /// that are not feed messages.
    pub fn rejected_inputs(&self) -> usize {
        self.stored.iter().map(|r| r.bad_records).sum::<usize>() + self.poison.len()
    }
}

/// How one record ended.
enum Outcome {
    Stored(MessageReport),
    Poison(String),
    Failed(String),
}

/// Stores every record of `event` (at most [`IN_FLIGHT`] at a time) and says which failed.
pub async fn handle_batch<S: ObjectStore>(store: &S, event: &SqsEvent) -> BatchReport {
    let outcomes: Vec<(usize, Outcome)> = stream::iter(event.records.iter().enumerate())
        .map(|(i, record)| async move {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.as_deref().unwrap_or_default();
            let outcome = match store_message(store, body).await {
                Ok(report) => {
                    // Debug: one line per message would be ~0.35 GB of logs a month at the
                    // reference scale; the batch's summary line is at info.
                    tracing::debug!(
                        message_id = %id, run = report.run, seq = report.seq,
                        trades = report.trades, whales = report.whales, tape = report.tape,
                        bad_records = report.bad_records, "feed message stored"
                    );
                    Outcome::Stored(report)
                }
                Err(HandlerError::Input(why)) => {
                    tracing::error!(
                        message_id = %id, error = %why, body_bytes = body.len(),
                        body_start = %body.chars().take(120).collect::<String>(),
                        "not a feed message: reported (the DLQ takes it after its receives)"
                    );
                    Outcome::Poison(id)
                }
                Err(e) => {
                    tracing::error!(
                        message_id = %id, error = %e, retryable = e.is_retryable(),
                        "feed message not stored: reported for redelivery"
                    );
                    Outcome::Failed(id)
                }
            };
            (i, outcome)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut outcomes = outcomes;
    outcomes.sort_by_key(|(i, _)| *i);
    let mut report = BatchReport::default();
    for (_, outcome) in outcomes {
        match outcome {
            Outcome::Stored(r) => report.stored.push(r),
            Outcome::Poison(id) => report.poison.push(id),
            Outcome::Failed(id) => report.failed.push(id),
        }
    }
    report
}

/// The batch's EMF document: `TaskFailures` (messages whose storage failed), a series that
/// already exists, and the bad records and poison messages as the logged member
/// [`emf::REJECTED_FIELD`] (summed by the dashboard from the logs, no series); none when both
/// are zero. Trade counts come from the feed task, which sees each trade once; counting them
/// here too would count redeliveries.
pub fn metrics(report: &BatchReport, timestamp_ms: i64) -> Option<Value> {
    let rejected = report.rejected_inputs();
    let failures = report.failed.len();
    if rejected == 0 && failures == 0 {
        return None;
    }
    let mut doc = emf::document(
        timestamp_ms,
        None,
        &[],
        &[Metric::count("TaskFailures", failures as u64)],
    );
    doc[emf::REJECTED_FIELD] = rejected.into();
    Some(doc)
}
