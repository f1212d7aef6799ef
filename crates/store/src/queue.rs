//! The ticks queue's message body and the local, in-process queue.
//!
//! A message is one tick as JSON (`{"tier":2,"tick_ts":"2026-11-20T22:30:15Z"}`); the cloud
//! adapter sends it to SQS with `DelaySeconds` = the tick's second within its minute, and
//! [`LocalQueue`] delivers it after the same delay on a tokio channel.

use crate::error::{Result, StoreError};
use crate::ports::TickQueue;
use polytape_core::TickId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The message body of a tick.
pub fn encode_tick(tick: &TickId) -> String {
    serde_json::json!({ "tier": tick.tier, "tick_ts": tick.tick_ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }).to_string()
}

/// A tick from a message body; a body that is not one is an [`StoreError::Encode`] naming it.
pub fn decode_tick(body: &str) -> Result<TickId> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Encode(format!("not a tick message ({e}): {:.200}", body)))
}

/// An in-process [`TickQueue`]: each tick arrives on the receiver after its delay.
#[derive(Clone, Debug)]
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<TickId>,
    sent: Arc<Mutex<Vec<(TickId, u32)>>>,
}

impl LocalQueue {
    /// The queue and the receiving end of its messages.
    pub fn new() -> (LocalQueue, mpsc::UnboundedReceiver<TickId>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            LocalQueue {
                tx,
                sent: Arc::default(),
            },
            rx,
        )
    }

    /// Every tick enqueued so far with its delay in seconds, in order.
    pub fn sent(&self) -> Vec<(TickId, u32)> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl TickQueue for LocalQueue {
    async fn enqueue_ticks(&self, ticks: &[TickId]) -> Result<()> {
        for tick in ticks.iter().copied() {
            let delay = tick.delay_s();
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((tick, delay));
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
                // A dropped receiver means nobody consumes ticks any more: nothing to deliver to.
                let _ = tx.send(tick);
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::Tier;

    #[test]
    fn a_tick_message_round_trips_and_garbage_is_named() {
        let tick = TickId {
            tier: Tier::T4,
            tick_ts: "2026-11-20T22:30:45Z".parse().unwrap(),
        };
        let body = encode_tick(&tick);
        assert_eq!(body, r#"{"tick_ts":"2026-11-20T22:30:45Z","tier":4}"#);
        assert_eq!(decode_tick(&body).unwrap(), tick);
        assert!(matches!(
            decode_tick("{\"tier\":9}"),
            Err(StoreError::Encode(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_local_queue_delivers_each_tick_after_its_delay() {
        let (q, mut rx) = LocalQueue::new();
        let minute: polytape_core::Ts = "2026-11-20T22:30:00Z".parse().unwrap();
        let ticks = polytape_core::schedule::due_in_minute(minute);
        q.enqueue_ticks(&ticks).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut got = Vec::new();
        for _ in 0..ticks.len() {
            let t = rx.recv().await.unwrap();
            got.push((t, started.elapsed().as_secs()));
        }
        assert!(
            got.iter().all(|(t, s)| u64::from(t.delay_s()) == *s),
            "{got:?}"
        );
        assert_eq!(q.sent().len(), ticks.len());
    }
}
