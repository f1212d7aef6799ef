//! The once-a-minute dispatcher and the per-message tick runner of the snapshot function.
//!
//! EventBridge cannot fire more often than once a minute, so one rule fires the dispatcher,
//! which enqueues every tick due in that minute (all tiers) on the ticks queue, each delayed to
//! its second; each message then runs one tick. A tick that arrives later than its interval is
//! skipped and counted by [`snapshot_tick`] itself.

use crate::clock::Clock;
use crate::error::HandlerError;
use crate::snapshot::{snapshot_tick, TickReport};
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Ts};
use polytape_polymarket::PolymarketClient;
use polytape_store::{
    queue, LatestStore, MarketStore, ObjectStore, OpsStore, StoreError, TickQueue,
};

/// Enqueues every tick due in the minute of `minute` (seconds are ignored), each delayed until
/// its time as seen from `now` (so a dispatch that runs late does not deliver every tick late),
/// and returns them.
pub async fn dispatch_minute<Q: TickQueue>(
    queue: &Q,
    minute: Ts,
    now: Ts,
) -> Result<Vec<TickId>, HandlerError> {
    let ticks = due_in_minute(minute);
    queue.enqueue_ticks(&ticks, now).await?;
    Ok(ticks)
}

/// Why a tick message did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TickMessageError {
    /// The body is not a tick: retrying cannot help (it ends in the dead-letter queue).
    #[error("bad tick message: {0}")]
    BadMessage(StoreError),
    /// The tick failed (storage, or Polymarket after the retries).
    #[error(transparent)]
    Failed(#[from] HandlerError),
    /// The tick wrote what it had, but part of it was lost to a transient failure even after a
    /// second attempt; the message should be retried (its output is replaced when it is).
    #[error("tick {tier} {tick_ts} incomplete: {failed} requests failed")]
    Incomplete {
        tier: polytape_core::Tier,
        tick_ts: Ts,
        failed: usize,
        report: Box<TickReport>,
    },
}

/// Runs the tick of one queue message. A transient partial failure is retried once in place
/// while the tick is still current (cheaper and sooner than a queue redelivery); if it is still
/// incomplete the error asks for the message to be retried.
pub async fn run_tick_message<S>(
    client: &PolymarketClient,
    store: &S,
    body: &str,
    clock: &impl Clock,
) -> Result<TickReport, TickMessageError>
where
    S: MarketStore + LatestStore + OpsStore + ObjectStore,
{
    let tick = queue::decode_tick(body).map_err(TickMessageError::BadMessage)?;
    let mut report = snapshot_tick(client, store, tick, clock).await?;
    if report.should_retry() && !tick.is_stale_at(clock.now()) {
        tracing::warn!(tier = %tick.tier, tick = %tick.tick_ts, failed = report.failed_requests, "tick incomplete after a transient failure: running it again");
        report = snapshot_tick(client, store, tick, clock).await?;
    }
    if report.should_retry() {
        return Err(TickMessageError::Incomplete {
            tier: tick.tier,
            tick_ts: tick.tick_ts,
            failed: report.failed_requests,
            report: Box::new(report),
        });
    }
    Ok(report)
}
