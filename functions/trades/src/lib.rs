//! The trades function's batch handling: each record of an SQS batch from the live queue is one
//! feed message (`polytape_feed::queue`); the batch is stored by
//! [`polytape_collector::live::store_batch`] — the trades and whale events (and the raw tape
//! of messages sent before the feed wrote its tape itself) of all its messages of one feed run
//! and hour in one Parquet file per table, named by exactly the messages it holds, so a
//! message delivered again (alone or with others) is found stored and never adds a copy.
//!
//! The response lists exactly the records that failed (`ReportBatchItemFailures`), and Lambda
//! deletes the others:
//! * a storage failure: SQS delivers the message again after its visibility timeout (every
//!   message of the failed run and hour is reported; those an earlier file holds are not
//!   written again);
//! * a body that is not a feed message (poison): reported too, so that after the queue's
//!   `maxReceiveCount` receives SQS moves it to the dead-letter queue, where an alarm sees it —
//!   never dropped silently.
//!
//! A bad record inside a good message is not a failure of the message: the message's other
//! records are stored, the bad one is skipped, logged and counted (`RejectedInputs` in the
//! batch's EMF line), since no redelivery can mend it.
//!
//! # Layout
//! * [`handle_batch`]: one SQS batch.
//! * [`BatchReport`]: what a batch stored and which records failed, and the response.
//! * [`metrics`]: the EMF line of a batch (`TaskFailures`, an existing series, and
//!   `RejectedInputs`, a logged member).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use polytape_collector::emf::{self, Metric};
use polytape_collector::live::{store_batch, Delivery, MessageReport, Outcome};
use polytape_store::ObjectStore;
use serde::Serialize;
use serde_json::Value;

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

/// Stores every record of `event` ([`store_batch`]: one file per table for the messages of
/// each feed run and hour, none stored twice) and says which failed.
pub async fn handle_batch<S: ObjectStore>(store: &S, event: &SqsEvent) -> BatchReport {
    let ids: Vec<String> = event
        .records
        .iter()
        .map(|r| r.message_id.clone().unwrap_or_default())
        .collect();
    let batch: Vec<Delivery<'_>> = event
        .records
        .iter()
        .zip(&ids)
        .map(|(record, id)| Delivery {
            id,
            body: record.body.as_deref().unwrap_or_default(),
        })
        .collect();
    let mut report = BatchReport::default();
    for (delivery, outcome) in batch.iter().zip(store_batch(store, &batch).await) {
        let id = delivery.id.to_string();
        match outcome {
            Outcome::Stored(r) => {
                // Debug: one line per message would be ~0.35 GB of logs a month at the
                // reference scale; the batch's summary line is at info.
                tracing::debug!(
                    message_id = %id, run = r.run, seq = r.seq, trades = r.trades,
                    whales = r.whales, tape = r.tape, bad_records = r.bad_records,
                    keys = ?r.keys, "feed message stored"
                );
                report.stored.push(r);
            }
            Outcome::Poison(why) => {
                let body = delivery.body;
                tracing::error!(
                    message_id = %id, error = %why, body_bytes = body.len(),
                    body_start = %body.chars().take(120).collect::<String>(),
                    "not a feed message: reported (the DLQ takes it after its receives)"
                );
                report.poison.push(id);
            }
            Outcome::Failed { error, retryable } => {
                tracing::error!(
                    message_id = %id, error = %error, retryable,
                    "feed message not stored: reported for redelivery"
                );
                report.failed.push(id);
            }
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
