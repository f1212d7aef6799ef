//! Batching to the service limits and the bounded retry of what a batch left undone.
//!
//! `BatchWriteItem` may return `UnprocessedItems` and `SendMessageBatch` may return `Failed`
//! entries while the request itself succeeds. Those are sent again after an exponential
//! backoff, at most [`RetryPolicy::attempts`] sends in all; what is still left then fails the
//! call with a retryable [`StoreError::Backend`], so the invocation is retried as a whole
//! (every write is idempotent) rather than losing data.

use crate::error::{Result, StoreError};
use std::future::Future;
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

impl RetryPolicy {
    /// The wait after the `sent`-th send (1-based).
    fn backoff(&self, sent: u32) -> Duration {
        let factor = 1u32 << sent.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.cap)
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
}
