//! The once-a-minute dispatcher and the per-message tick runner of the snapshot function.
//!
//! EventBridge cannot fire more often than once a minute, so one rule fires the dispatcher,
//! which enqueues every tick due in that minute (all tiers) on the ticks queue, each delayed to
//! its second (delays round up, so no tick arrives before its time); each message then runs
//! one tick within its deadline. A tick that arrives later than its interval is skipped and
//! counted by [`snapshot_tick`] itself; one that arrives early waits.

use crate::clock::Clock;
use crate::error::HandlerError;
use crate::snapshot::{snapshot_tick, TickDeadline, TickReport};
use crate::tasks;
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Ts};
use polytape_polymarket::PolymarketClient;
use polytape_store::{
    queue, CoverageStore, LatestStore, MarketStore, ObjectStore, StoreError, TaskStore, TickQueue,
};
use std::time::Duration;

/// Enqueues every tick due in the minute of `minute` (seconds are ignored), each delayed until
/// its time as seen from `now` (so a dispatch that runs late does not deliver every tick late),
/// records the run (a failed one too, with its error) and returns the ticks.
pub async fn dispatch_minute<Q: TickQueue, S: TaskStore>(
    queue: &Q,
    store: &S,
    minute: Ts,
    now: Ts,
) -> Result<Vec<TickId>, HandlerError> {
    let ticks = due_in_minute(minute);
    let sent = queue
        .enqueue_ticks(&ticks, now)
        .await
        .map(|()| Dispatched {
            minute,
            ticks: ticks.len(),
        })
        .map_err(HandlerError::from);
    let id = tasks::run_id(minute, TASK);
    tasks::finish(store, TASK, id, now, now, sent).await?;
    Ok(ticks)
}

/// The task name of dispatcher runs.
pub const TASK: &str = "dispatch";

/// What one dispatch did.
#[derive(Debug, Clone, serde::Serialize)]
struct Dispatched {
    minute: Ts,
    ticks: usize,
}

impl tasks::RunOutcome for Dispatched {
    fn status(&self) -> polytape_core::ops::TaskStatus {
        polytape_core::ops::TaskStatus::Ok
    }
}

/// Why a tick message did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TickMessageError {
    /// The body is not a tick: retrying cannot help (it ends in the dead-letter queue).
    #[error("bad tick message: {0}")]
    BadMessage(StoreError),
    /// The tick failed (storage): the message should be delivered again (a stale redelivery
    /// is recorded as a skipped tick, a redelivery of a completed one does nothing).
    #[error(transparent)]
    Failed(#[from] HandlerError),
}

/// Runs the tick of one queue message within its deadline ([`TickDeadline::of`]: the next tick
/// of its tier, or `invocation_end` — the Lambda's deadline — less `margin`). A message that
/// arrives before its tick waits for it. Polymarket failures are retried inside the tick while
/// its deadline allows and what they cost is counted in the report; only a storage failure
/// fails the message.
pub async fn run_tick_message<S>(
    client: &PolymarketClient,
    store: &S,
    body: &str,
    clock: &impl Clock,
    invocation_end: Option<Ts>,
    margin: Duration,
) -> Result<TickReport, TickMessageError>
where
    S: MarketStore + LatestStore + TaskStore + CoverageStore + ObjectStore,
{
    let tick = queue::decode_tick(body).map_err(TickMessageError::BadMessage)?;
    let deadline = TickDeadline::of(tick, invocation_end, margin);
    Ok(snapshot_tick(client, store, tick, clock, deadline).await?)
}
