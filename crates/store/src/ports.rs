//! The storage ports: one trait per capability, so a handler asks for exactly what it uses
//! (`&impl MarketStore`) and a test drives it with [`crate::LocalStore`]. The cloud adapters
//! (DynamoDB, S3) implement the same traits and pass the same [`crate::contract`] suite.
//!
//! Every method returns a `Send` future so handlers can be spawned on a multi-threaded runtime;
//! implementations may simply write `async fn`.

use crate::error::Result;
use polytape_core::ops::{Coverage, LatestTier, ShardHeartbeat, TaskRun, TierTransition};
use polytape_core::{Market, Tier, Ts};
use std::collections::BTreeMap;
use std::future::Future;

/// The Markets table: what discovery found and which tier each market is in.
pub trait MarketStore: Send + Sync {
    /// Inserts or fully replaces each market (keyed by `condition_id`) in one batch write.
    /// The record is replaced as given: a caller that wants to keep `first_seen` reads it first.
    fn upsert_markets(&self, markets: &[Market]) -> impl Future<Output = Result<()>> + Send;

    /// Active markets whose tier is `tier`, ordered by `condition_id`.
    fn markets_in_tier(&self, tier: Tier) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// All active markets, ordered by `condition_id`.
    fn active_markets(&self) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// Every market, active or not, ordered by `condition_id`: for the daily `markets`
    /// dimension only, which is rebuilt about once an hour. It reads the whole table (a Scan
    /// on DynamoDB), so no per-tick path may call it.
    fn all_markets(&self) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// One market by its condition id, active or not.
    fn get_market(&self, condition_id: &str)
        -> impl Future<Output = Result<Option<Market>>> + Send;

    /// The number of active markets per tier; `None` counts active markets without a tier.
    /// Tiers with no active market are absent.
    fn count_by_tier(&self) -> impl Future<Output = Result<BTreeMap<Option<Tier>, u64>>> + Send;
}

/// The Latest table: one item per tier with each market's headline values, for the status API.
pub trait LatestStore: Send + Sync {
    /// The item of `tier`, if one was ever written.
    fn get_latest(&self, tier: Tier) -> impl Future<Output = Result<Option<LatestTier>>> + Send;

    /// Writes the item of `latest.tier` unless the stored one is of a newer tick, in one
    /// conditional write (a late or redelivered tick must not replace a newer tick's values).
    /// Returns `true` when written — also when the stored item is of the same tick, which a
    /// retry replaces — and `false` when a newer tick's item was already there and was kept.
    fn put_latest(&self, latest: &LatestTier) -> impl Future<Output = Result<bool>> + Send;
}

/// The Ops table: task runs, tier transitions, per-tick coverage and shard heartbeats.
pub trait OpsStore: Send + Sync {
    /// Writes a task run keyed by `run.id`: a retried run replaces its record. Runs expire
    /// 7 days after `started_at`.
    fn put_task_run(&self, run: &TaskRun) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` task runs, newest `started_at` first.
    fn recent_task_runs(&self, limit: usize) -> impl Future<Output = Result<Vec<TaskRun>>> + Send;

    /// Writes tier transitions in one batch, keyed by `(condition_id, at)`: a retried batch
    /// replaces rather than duplicates.
    fn put_transitions(&self, t: &[TierTransition]) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` tier transitions, newest `at` first.
    fn recent_transitions(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<TierTransition>>> + Send;

    /// Writes the coverage of one tier tick, keyed by `(tier, tick_ts)`: a retry replaces.
    fn put_coverage(&self, c: &Coverage) -> impl Future<Output = Result<()>> + Send;

    /// Coverage of every tier tick at or after `since`, ordered by `tick_ts` then tier.
    fn coverage_since(&self, since: Ts) -> impl Future<Output = Result<Vec<Coverage>>> + Send;

    /// Writes the heartbeat of `hb.shard_id`, replacing that shard's previous one. A shard
    /// silent for a day drops out: its heartbeat expires 1 day after `hb.at`.
    fn put_heartbeat(&self, hb: &ShardHeartbeat) -> impl Future<Output = Result<()>> + Send;

    /// The current heartbeat of every shard (expired ones left out), ordered by `shard_id`.
    fn heartbeats(&self) -> impl Future<Output = Result<Vec<ShardHeartbeat>>> + Send;
}

/// The object store (S3, or the data directory locally), addressed by [`crate::keys`].
pub trait ObjectStore: Send + Sync {
    /// Writes `bytes` at `key`, replacing any object there. Readers never see a partial object.
    fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The object at `key`, or `None` when there is none.
    fn get_object(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Every key starting with `prefix` (a plain string prefix, as S3's), sorted.
    fn list_objects(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// The ticks queue: the once-a-minute dispatcher enqueues every tick due in the minute, each
/// delayed until its time, and the snapshot function receives one message per tick. The body
/// of a message is [`crate::queue::encode_tick`].
pub trait TickQueue: Send + Sync {
    /// Enqueues each tick delayed by [`crate::queue::delay_for`]`(tick, now)` seconds — the
    /// time from `now` (when the dispatcher runs) to the tick, rounded up so that no tick
    /// arrives before its time, so a dispatcher that runs late
    /// does not make every tick late by as much — in as few requests as the service allows
    /// (SQS: 10 messages per batch).
    fn enqueue_ticks(
        &self,
        ticks: &[polytape_core::TickId],
        now: Ts,
    ) -> impl Future<Output = Result<()>> + Send;
}
