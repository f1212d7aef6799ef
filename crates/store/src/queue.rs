//! The ticks queue's message body and the local, in-process queue.
//!
//! A message is one tick as JSON (`{"tier":2,"tick_ts":"2026-11-20T22:30:15Z"}`); the cloud
//! adapter sends it to SQS with `DelaySeconds` = [`delay_for`] (the time from the dispatch to
//! the tick), and [`LocalQueue`] delivers it after the same delay on a tokio channel.

use crate::error::{Result, StoreError};
use crate::ports::TickQueue;
use polytape_core::{TickId, Ts};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// SQS's longest `DelaySeconds` (15 minutes).
pub const MAX_DELAY_S: u32 = 900;

/// The delay, in whole seconds, that makes a tick enqueued at `now` arrive at its time and
/// never before it: `tick.tick_ts − now` rounded UP to the second (SQS's `DelaySeconds` is
/// whole seconds), clamped to `0..=`[`MAX_DELAY_S`]. Dispatched at :00.400, the tick at :15
/// waits 15 s (arriving at :15.400), not 14 s (arriving at :14.400, before its time). Measured
/// from the dispatch rather than the top of the minute, so a dispatcher that runs 10 s late
/// delays the ticks at :00/:15/:30/:45 by 0/5/20/35 s instead of delivering each of them 10 s
/// late; a tick already due goes at once.
pub fn delay_for(tick: &TickId, now: Ts) -> u32 {
    let ms = (tick.tick_ts - now).num_milliseconds();
    let s = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0);
    u32::try_from(s.clamp(0, i64::from(MAX_DELAY_S))).unwrap_or(0)
}

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

    /// Every tick enqueued so far with the delay in seconds it was given, in order.
    pub fn sent(&self) -> Vec<(TickId, u32)> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl TickQueue for LocalQueue {
    async fn enqueue_ticks(&self, ticks: &[TickId], now: Ts) -> Result<()> {
        for tick in ticks.iter().copied() {
            let delay = delay_for(&tick, now);
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

    fn t4_ticks(minute: Ts) -> Vec<TickId> {
        polytape_core::schedule::due_in_minute(minute)
            .into_iter()
            .filter(|t| t.tier == Tier::T4)
            .collect()
    }

    fn delays(ticks: &[TickId], now: Ts) -> Vec<u32> {
        ticks.iter().map(|t| delay_for(t, now)).collect()
    }

    #[test]
    fn given_the_dispatch_time_then_each_tick_is_delayed_until_its_time_and_never_negative() {
        let minute: Ts = "2026-11-20T22:30:00Z".parse().unwrap();
        let ticks = t4_ticks(minute);
        let s = chrono::Duration::seconds;
        assert_eq!(delays(&ticks, minute), vec![0, 15, 30, 45], "on time");
        assert_eq!(
            delays(&ticks, minute + s(10)),
            vec![0, 5, 20, 35],
            "10 s late: the :00 tick goes at once, the others still arrive at their second"
        );
        let ms = chrono::Duration::milliseconds;
        assert_eq!(
            delays(&ticks, minute + ms(400)),
            vec![0, 15, 30, 45],
            "dispatched at :00.400: the tick at :15 waits 15 s, not 14 (never early)"
        );
        assert_eq!(
            delays(&ticks, minute + ms(10_400)),
            vec![0, 5, 20, 35],
            "whole seconds, rounded up"
        );
        assert_eq!(
            delays(&ticks, minute - ms(1)),
            vec![1, 16, 31, 46],
            "a millisecond ahead of the :00 tick: it waits a whole second rather than go early"
        );
        assert_eq!(
            delays(&ticks, minute + s(15) - ms(999)),
            vec![0, 1, 16, 31],
            "the :15 tick 999 ms ahead"
        );
        assert_eq!(delays(&ticks, minute + s(90)), vec![0, 0, 0, 0], "all past");
        assert_eq!(
            delays(&ticks, minute - s(3600)),
            vec![900, 900, 900, 900],
            "SQS delays at most 15 minutes"
        );
        assert_eq!(
            delays(&ticks, minute - s(900) + ms(1)),
            vec![900, 900, 900, 900],
            "899.001 s rounds up to the 900 s limit, and beyond it stays there"
        );
    }

    #[test]
    fn given_any_dispatch_time_then_the_delay_never_delivers_a_tick_early_nor_a_second_late() {
        let minute: Ts = "2026-11-20T22:30:00Z".parse().unwrap();
        let ticks = t4_ticks(minute);
        for offset_ms in (-2_000..62_000).step_by(37) {
            let now = minute + chrono::Duration::milliseconds(offset_ms);
            for t in &ticks {
                let arrives = now + chrono::Duration::seconds(i64::from(delay_for(t, now)));
                if t.tick_ts > now {
                    assert!(arrives >= t.tick_ts, "{t:?} early from {now}");
                    assert!(
                        arrives < t.tick_ts + chrono::Duration::seconds(1),
                        "{t:?} a second late from {now}"
                    );
                } else {
                    assert_eq!(arrives, now, "{t:?} due: at once from {now}");
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_local_queue_delivers_each_tick_after_its_delay() {
        let (q, mut rx) = LocalQueue::new();
        let minute: polytape_core::Ts = "2026-11-20T22:30:00Z".parse().unwrap();
        let ticks = polytape_core::schedule::due_in_minute(minute);
        let now = minute + chrono::Duration::milliseconds(10_400);
        q.enqueue_ticks(&ticks, now).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut got = Vec::new();
        for _ in 0..ticks.len() {
            let t = rx.recv().await.unwrap();
            got.push((t, started.elapsed().as_secs()));
        }
        assert!(
            got.iter().all(|(t, s)| u64::from(delay_for(t, now)) == *s),
            "{got:?}"
        );
        let sent_delays: std::collections::BTreeSet<u32> =
            q.sent().iter().map(|(_, d)| *d).collect();
        assert_eq!(
            sent_delays,
            [0, 5, 20, 35].into(),
            "sent() has the delays used"
        );
    }
}
