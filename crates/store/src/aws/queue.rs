//! The ticks queue on SQS: one message per tick, body [`crate::queue::encode_tick`],
//! `DelaySeconds` [`crate::queue::delay_for`] (from the dispatch time to the tick), sent in `SendMessageBatch`es of at most
//! 10 entries and 256 KiB. Entry ids are the tick's index in the call, so a failed entry maps
//! back to its tick; failed entries are resent (bounded) unless SQS says the request itself is
//! wrong (`SenderFault`), which no resend can fix.

use super::batch::{chunks, send_until_done, MAX_SQS_BATCH_BYTES, MAX_SQS_BATCH_ENTRIES, RETRY};
use super::error::backend;
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::TickQueue;
use crate::queue::{delay_for, encode_tick};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use polytape_core::{TickId, Ts};
use std::collections::HashMap;

/// One message waiting to be sent.
#[derive(Debug, Clone)]
struct Pending {
    id: String,
    tick: TickId,
    delay_s: u32,
    body: String,
}

impl AwsStore {
    /// One `SendMessageBatch`; returns the entries SQS failed for a reason worth a resend.
    async fn send_batch_once(&self, batch: Vec<Pending>) -> Result<Vec<Pending>> {
        assert!(
            batch.len() <= MAX_SQS_BATCH_ENTRIES,
            "SendMessageBatch with {} entries",
            batch.len()
        );
        let url = self.names.require(super::Resource::TicksQueue)?;
        let entries = batch
            .iter()
            .map(|p| {
                SendMessageBatchRequestEntry::builder()
                    .id(&p.id)
                    .message_body(&p.body)
                    .delay_seconds(i32::try_from(p.delay_s).unwrap_or(0))
                    .build()
                    .map_err(|e| StoreError::Encode(format!("SQS entry: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.record_sqs_batch(entries.len());
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| backend("SendMessageBatch", url, e))?;
        let failed: HashMap<&str, _> = out.failed.iter().map(|f| (f.id.as_str(), f)).collect();
        if let Some(f) = out.failed.iter().find(|f| f.sender_fault) {
            return Err(StoreError::Backend {
                reason: format!(
                    "SendMessageBatch on {url}: entry {} refused: {}: {}",
                    f.id,
                    f.code,
                    f.message.as_deref().unwrap_or("")
                ),
                retryable: false,
            });
        }
        let (retry, sent): (Vec<Pending>, Vec<Pending>) = batch
            .into_iter()
            .partition(|p| failed.contains_key(p.id.as_str()));
        self.record_sent(sent.iter().map(|p| (p.tick, p.delay_s)));
        Ok(retry)
    }
}

impl TickQueue for AwsStore {
    async fn enqueue_ticks(&self, ticks: &[TickId], now: Ts) -> Result<()> {
        self.names.require(super::Resource::TicksQueue)?;
        let pending = ticks
            .iter()
            .enumerate()
            .map(|(i, t)| Pending {
                id: i.to_string(),
                tick: *t,
                delay_s: delay_for(t, now),
                body: encode_tick(t),
            })
            .collect();
        let what = format!("SendMessageBatch on {}", self.names.ticks_queue_url);
        for batch in chunks(pending, MAX_SQS_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES, |p| {
            p.body.len()
        }) {
            send_until_done(&what, batch, &RETRY, |b| self.send_batch_once(b)).await?;
        }
        Ok(())
    }
}
