//! Batching to the service limits, the bounded retry of what a batch left undone, and the
//! jittered backoff of conditional writes that lost a race.
//!
//! `BatchWriteItem` may return `UnprocessedItems` and `SendMessageBatch` may return `Failed`
//! entries while the request itself succeeds. Those are sent again after an exponential
//! backoff, at most [`RetryPolicy::attempts`] sends in all; what is still left then fails the
//! call with a retryable [`StoreError::Backend`], so the invocation is retried as a whole
//! (every write is idempotent) rather than losing data.
//!
//! A read-modify-write that loses to a concurrent writer (the Latest object, a task state)
//! reads again after [`RetryPolicy::jittered`]: random waits, so writers that collided once do
//! not collide again in lockstep.

use super::error::backend;
use super::item::Item;
use super::AwsStore;
use crate::error::{Result, StoreError};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// DynamoDB's limit on the items of one `BatchWriteItem`.
pub(crate) const MAX_BATCH_WRITE_ITEMS: usize = 25;
/// SQS's limit on the entries of one `SendMessageBatch`.
pub(crate) const MAX_SQS_BATCH_ENTRIES: usize = 10;
/// SQS's limit on the summed message sizes of one `SendMessageBatch` (256 KiB).
pub(crate) const MAX_SQS_BATCH_BYTES: usize = 256 * 1024;

/// How often and how patiently to resend what a batch left undone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Sends in all, the first included.
    pub attempts: u32,
    /// Wait before the first resend; doubles each time up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

/// About 6 s of waiting in all before giving up: well inside a Lambda timeout.
pub(crate) const RETRY: RetryPolicy = RetryPolicy {
    attempts: 8,
    base: Duration::from_millis(50),
    cap: Duration::from_secs(2),
};

/// A read-modify-write that lost to a concurrent writer: up to 10 reads in all, random waits
/// of up to 20 ms doubling to 500 ms between them (at most ≈ 2.6 s of waiting). Enough for a
/// handful of overlapping writers of one record: each round, one of them wins.
pub(crate) const CONFLICT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 10,
    base: Duration::from_millis(20),
    cap: Duration::from_millis(500),
};

impl RetryPolicy {
    /// The wait after the `sent`-th send (1-based).
    fn backoff(&self, sent: u32) -> Duration {
        let factor = 1u32 << sent.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait between 0 and [`RetryPolicy::backoff`]`(sent)` ("full jitter").
    pub(crate) fn jittered(&self, sent: u32) -> Duration {
        let max = self.backoff(sent);
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random_u64() % nanos.saturating_add(1))
    }
}

/// A random number without a dependency: each `RandomState` is seeded afresh by the OS.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// Keeps the last of several records with the same key, in first-seen order: one
/// `BatchWriteItem` may not name a key twice, and the last record is what the caller meant.
pub(crate) fn last_per_key<T>(records: &[T], key: impl Fn(&T) -> String) -> Vec<&T> {
    let mut at: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut out: Vec<&T> = Vec::with_capacity(records.len());
    for r in records {
        match at.entry(key(r)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = r,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(r);
            }
        }
    }
    out
}

impl AwsStore {
    /// Writes `items` to `table` in `BatchWriteItem`s of at most 25 puts, resending
    /// unprocessed items with backoff.
    pub(crate) async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<()> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::Encode(format!("put request: {e}")))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>>>()?;
        let what = format!("BatchWriteItem on {table}");
        for chunk in chunks(requests, MAX_BATCH_WRITE_ITEMS, usize::MAX, |_| 0) {
            send_until_done(&what, chunk, &RETRY, |c| self.batch_write_once(table, c)).await?;
        }
        Ok(())
    }

    /// One `BatchWriteItem`; returns the requests DynamoDB left unprocessed.
    async fn batch_write_once(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>> {
        // moto accepts 26 items, real DynamoDB does not: this is the guarantee.
        assert!(
            requests.len() <= MAX_BATCH_WRITE_ITEMS,
            "BatchWriteItem with {} items",
            requests.len()
        );
        self.record_batch_write(requests.len());
        let out = self
            .ddb
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| backend("BatchWriteItem", table, e))?;
        Ok(out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default())
    }
}

/// Sends `items` with `send`, which returns the items the service did not process, and
/// resends those until none is left or the policy's attempts are used up. `what` names the
/// request and the resource for the error.
pub(crate) async fn send_until_done<T, F, Fut>(
    what: &str,
    items: Vec<T>,
    policy: &RetryPolicy,
    mut send: F,
) -> Result<()>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<T>>>,
{
    let mut pending = items;
    let mut sent = 0;
    while !pending.is_empty() {
        let left = send(pending).await?;
        sent += 1;
        if left.is_empty() {
            break;
        }
        if sent >= policy.attempts {
            return Err(StoreError::Backend {
                reason: format!(
                    "{what}: {} item(s) still unprocessed after {sent} attempts",
                    left.len()
                ),
                retryable: true,
            });
        }
        tracing::debug!(what, left = left.len(), sent, "resending unprocessed items");
        tokio::time::sleep(policy.backoff(sent)).await;
        pending = left;
    }
    Ok(())
}

/// Splits `items` into batches of at most `max_items` whose `size`s sum to at most
/// `max_bytes`, in order. An item larger than `max_bytes` goes alone (the service will say
/// why it refuses it).
pub(crate) fn chunks<T>(
    items: Vec<T>,
    max_items: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0usize;
    for item in items {
        let n = size(&item);
        if !current.is_empty() && (current.len() == max_items || bytes + n > max_bytes) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += n;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn given_sixty_items_then_batches_of_25_25_10() {
        let batches = chunks((0..60).collect(), MAX_BATCH_WRITE_ITEMS, usize::MAX, |_| 1);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![25, 25, 10]);
        assert_eq!(batches.concat(), (0..60).collect::<Vec<_>>(), "order kept");
        assert!(chunks(Vec::<u8>::new(), 10, 10, |_| 1).is_empty());
    }

    #[test]
    fn given_large_messages_then_the_byte_limit_splits_before_the_count_limit() {
        // 100 KiB each: two fit in 256 KiB, the third starts a new batch.
        let sizes = vec![100 * 1024; 5];
        let batches = chunks(sizes, MAX_SQS_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES, |s| *s);
        let counts: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(counts, vec![2, 2, 1]);
        // An oversized item goes alone rather than being dropped.
        let batches = chunks(vec![1, 300 * 1024, 1], 10, MAX_SQS_BATCH_BYTES, |s| *s);
        assert_eq!(batches, vec![vec![1], vec![300 * 1024], vec![1]]);
    }

    /// A fake page function: the service processes at most `per_call` items per call and
    /// records every call's items.
    fn fake_service(
        per_call: usize,
        calls: Arc<Mutex<Vec<Vec<u32>>>>,
    ) -> impl FnMut(Vec<u32>) -> std::future::Ready<Result<Vec<u32>>> {
        move |items: Vec<u32>| {
            calls.lock().unwrap().push(items.clone());
            let left = items.into_iter().skip(per_call).collect();
            std::future::ready(Ok(left))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn given_unprocessed_items_then_they_are_resent_with_backoff_until_done() {
        let calls = Arc::default();
        let started = tokio::time::Instant::now();
        send_until_done(
            "BatchWriteItem on t",
            (0..25).collect(),
            &RETRY,
            fake_service(10, Arc::clone(&calls)),
        )
        .await
        .unwrap();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![25, 15, 5],
            "each resend carries only what was left"
        );
        assert_eq!(calls[2], vec![20, 21, 22, 23, 24]);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(50 + 100),
            "exponential backoff between sends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_service_that_never_catches_up_then_a_retryable_error_after_bounded_attempts() {
        let calls = Arc::default();
        let err = send_until_done(
            "BatchWriteItem on t",
            vec![1, 2, 3],
            &RETRY,
            fake_service(0, Arc::clone(&calls)),
        )
        .await
        .unwrap_err();
        assert_eq!(calls.lock().unwrap().len(), 8, "bounded attempts");
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "backend: BatchWriteItem on t: 3 item(s) still unprocessed after 8 attempts"
        );
    }

    #[tokio::test]
    async fn given_a_failed_request_then_its_error_is_returned_at_once() {
        let mut calls = 0;
        let err = send_until_done("x", vec![1], &RETRY, |_items: Vec<u8>| {
            calls += 1;
            std::future::ready(Err::<Vec<u8>, _>(StoreError::Backend {
                reason: "denied".into(),
                retryable: false,
            }))
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(!err.is_retryable());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u128> = (1..=8).map(|n| RETRY.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![50, 100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn given_conflicts_then_waits_are_random_within_the_backoff_and_bounded_in_all() {
        let total: Duration = (1..CONFLICT_RETRY.attempts)
            .map(|n| CONFLICT_RETRY.backoff(n))
            .sum();
        assert_eq!(
            total,
            Duration::from_millis(20 + 40 + 80 + 160 + 320 + 4 * 500)
        );
        let waits: Vec<Duration> = (0..200).map(|_| CONFLICT_RETRY.jittered(3)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(80)));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 150,
            "random, not lockstep: {} distinct",
            distinct.len()
        );
    }

    #[test]
    fn given_a_key_twice_then_the_last_record_wins_in_first_seen_order() {
        let recs = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")];
        let kept: Vec<&str> = last_per_key(&recs, |r| r.0.to_string())
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(kept, vec!["c", "e", "d"]);
    }
}
