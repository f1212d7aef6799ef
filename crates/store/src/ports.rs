//! The storage ports: one trait per capability, so a handler asks for exactly what it uses
//! (`&impl MarketStore`) and a test drives it with [`crate::LocalStore`]. The cloud adapters
//! (DynamoDB, S3) implement the same traits and pass the same [`crate::contract`] suite.
//!
//! Every method returns a `Send` future so handlers can be spawned on a multi-threaded runtime;
//! implementations may simply write `async fn`.

use crate::error::Result;
use polytape_core::ops::{
    Coverage, LatestTier, LatestUpdate, ShardHeartbeat, TaskRun, TaskState, TaskStatus,
    TierTransition,
};
use polytape_core::{Market, Tier, Ts};
use std::collections::BTreeMap;
use std::future::Future;

/// The Markets table: what discovery found, and which markets are sampled when.
pub trait MarketStore: Send + Sync {
    /// Writes each market unless another writer changed it since it was read: a market is
    /// written only while its stored version is still `market.version` (0: it must not exist
    /// yet), and is stored with the version incremented. Returns the condition ids that were
    /// NOT written because of such a conflict, for the caller to read again and decide anew
    /// (so discovery, re-tier and resolutions never undo each other's updates).
    fn write_markets(&self, markets: &[Market])
        -> impl Future<Output = Result<Vec<String>>> + Send;

    /// The active markets whose end date lies in `(after, up_to]` (no upper bound when `up_to`
    /// is `None`; none when `up_to <= after`), to the millisecond. Ordered by `condition_id`.
    /// One range of the end-date order (on DynamoDB one range Query of the index, never the
    /// whole partition): what [`MarketStore::markets_due`] reads for a tier, and re-tier for
    /// the end dates whose tier can have changed since its last run.
    fn markets_ending(
        &self,
        after: Ts,
        up_to: Option<Ts>,
    ) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// The active markets whose end date puts them in `tier` at `at`
    /// ([`Tier::end_window`]): what a tick of `tier` at `at` samples, whatever tier re-tier
    /// last stored. Ordered by `condition_id`. [`MarketStore::markets_ending`] over the tier's
    /// window.
    fn markets_due(&self, tier: Tier, at: Ts) -> impl Future<Output = Result<Vec<Market>>> + Send {
        let (after, up_to) = tier.end_window(at);
        self.markets_ending(after, up_to)
    }

    /// The active markets whose end date puts them in a WebSocket tier (T2–T4) at `at`: what
    /// the live feed follows, the same markets the ticks of those tiers sample.
    /// [`MarketStore::markets_due`] of each WebSocket tier, so it reads only their end-date
    /// windows (on DynamoDB three range Queries of the index, never the whole partition that
    /// [`MarketStore::active_markets`] reads). Ordered by `condition_id`.
    fn websocket_markets(&self, at: Ts) -> impl Future<Output = Result<Vec<Market>>> + Send {
        async move {
            let mut out: Vec<Market> = Vec::new();
            for tier in Tier::ALL.into_iter().filter(|t| t.spec().websocket) {
                out.extend(self.markets_due(tier, at).await?);
            }
            // The windows are disjoint; sort and dedup keep the order promise regardless.
            out.sort_by(|a, b| a.condition_id.cmp(&b.condition_id));
            out.dedup_by(|a, b| a.condition_id == b.condition_id);
            Ok(out)
        }
    }

    /// All active markets, ordered by `condition_id`.
    fn active_markets(&self) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// Every market, active or not, ordered by `condition_id`: for the daily `markets`
    /// dimension only, which is rebuilt about once an hour. It reads the whole table (a Scan
    /// on DynamoDB), so no per-tick path may call it.
    fn all_markets(&self) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// The inactive markets still awaiting a result ([`Market::awaits_result`]: closed,
    /// expired or delisted, neither resolved nor given up on), ordered by `condition_id`. An
    /// index read, not a scan: the resolutions duty calls it every period.
    fn markets_awaiting_result(&self) -> impl Future<Output = Result<Vec<Market>>> + Send;

    /// One market by its condition id, active or not.
    fn get_market(&self, condition_id: &str)
        -> impl Future<Output = Result<Option<Market>>> + Send;

    /// The number of active markets per tier at `at`, by end date as [`MarketStore::markets_due`]
    /// counts them; `None` counts active markets past the sampling window (expired, not yet
    /// retired). Tiers with no market are absent.
    fn count_due(&self, at: Ts)
        -> impl Future<Output = Result<BTreeMap<Option<Tier>, u64>>> + Send;
}

/// The Latest values: per tier, each market's headline values at its newest tick, for the
/// status API.
pub trait LatestStore: Send + Sync {
    /// The Latest values of `tier`, if a tick of it was ever applied.
    fn get_latest(&self, tier: Tier) -> impl Future<Output = Result<Option<LatestTier>>> + Send;

    /// Applies ticks of one tier ([`LatestTier::apply`], in the order given) in one write,
    /// atomically against concurrent updates of the tier: overlapping writers are all applied
    /// (a conflict is retried on a fresh read), so no count is lost, and a retried tick is
    /// counted once. Holds at least 50,000 markets per tier. Nothing given, nothing written;
    /// ticks of different tiers are an error.
    fn apply_latest(&self, updates: &[LatestUpdate]) -> impl Future<Output = Result<()>> + Send;
}

/// The one tier of `updates` (`None` when empty), or an error when they mix tiers.
pub fn latest_tier(updates: &[LatestUpdate]) -> Result<Option<Tier>> {
    let Some(first) = updates.first() else {
        return Ok(None);
    };
    match updates.iter().find(|u| u.tier != first.tier) {
        Some(other) => Err(crate::StoreError::Encode(format!(
            "Latest updates of {} and {} in one write",
            first.tier, other.tier
        ))),
        None => Ok(Some(first.tier)),
    }
}

/// Which task runs a page holds ([`TaskStore::task_runs_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    /// Runs that started at or after this.
    pub since: Ts,
    /// Runs whose id sorts before this one: the last run of the previous page.
    pub before: Option<String>,
    /// Runs of this task only.
    pub task: Option<String>,
    /// Runs that ended so only.
    pub status: Option<TaskStatus>,
    /// Runs at most.
    pub limit: usize,
}

impl RunQuery {
    /// Whether `run` is one of the runs asked for (`limit` aside).
    pub fn selects(&self, run: &TaskRun) -> bool {
        run.started_at >= self.since
            && self.before.as_deref().is_none_or(|b| run.id.as_str() < b)
            && self.task.as_deref().is_none_or(|t| run.task == t)
            && self.status.is_none_or(|s| run.status == s)
    }
}

/// Task runs and, per task, its state ([`TaskState`]) and lease.
pub trait TaskStore: Send + Sync {
    /// Writes a task run keyed by `run.id` (a retried run replaces its record; runs expire
    /// 7 days after `started_at`) and records it in its task's state ([`TaskState::record`],
    /// which also releases the task's lease).
    fn put_task_run(&self, run: &TaskRun) -> impl Future<Output = Result<()>> + Send;

    /// Every task run that started at or after `since`, newest `started_at` first.
    fn task_runs_since(&self, since: Ts) -> impl Future<Output = Result<Vec<TaskRun>>> + Send;

    /// One page of task runs: those `q` selects, newest id first (ids start with their time),
    /// at most `q.limit`. The default reads every run since `q.since`: an adapter should read
    /// only the page.
    fn task_runs_page(&self, q: &RunQuery) -> impl Future<Output = Result<Vec<TaskRun>>> + Send {
        async move {
            let mut runs: Vec<TaskRun> = self
                .task_runs_since(q.since)
                .await?
                .into_iter()
                .filter(|r| q.selects(r))
                .collect();
            runs.sort_by(|a, b| b.id.cmp(&a.id));
            runs.truncate(q.limit);
            Ok(runs)
        }
    }

    /// The state of one task, if it ever recorded a run or took its lease.
    fn task_state(&self, task: &str) -> impl Future<Output = Result<Option<TaskState>>> + Send;

    /// The state of every task, ordered by task name.
    fn task_states(&self) -> impl Future<Output = Result<Vec<TaskState>>> + Send;

    /// Takes the task's lease until `until` when no run holds it at `now`, in one conditional
    /// write; false when another run holds it. [`TaskStore::put_task_run`] releases it. The
    /// first claim of a task also sets its `first_seen_at`, so a task whose runs die before
    /// recording anything is still seen as started.
    fn claim_task(
        &self,
        task: &str,
        now: Ts,
        until: Ts,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// Tier transitions: every change of a tracked market's tier, with its reason.
pub trait TransitionStore: Send + Sync {
    /// Writes tier transitions in one batch, keyed by `(condition_id, at, reason)`: a retried
    /// batch replaces rather than duplicates.
    fn put_transitions(&self, t: &[TierTransition]) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` tier transitions, newest `at` first.
    fn recent_transitions(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<TierTransition>>> + Send;
}

/// The coverage ledger: expected vs written rows of every tier tick.
pub trait CoverageStore: Send + Sync {
    /// Writes the coverage of one tier tick, keyed by `(tier, tick_ts)`: a retry replaces.
    fn put_coverage(&self, c: &Coverage) -> impl Future<Output = Result<()>> + Send;

    /// Coverage of every tier tick at or after `since`, ordered by `tick_ts` then tier.
    fn coverage_since(&self, since: Ts) -> impl Future<Output = Result<Vec<Coverage>>> + Send;
}

/// The most heartbeats one round may hold ([`HeartbeatStore::put_heartbeats`]). A round is
/// one DynamoDB item of at most ≈ 100 B a shard (≈ 70 B for `shard-07`'s), so 2,000 shards
/// stay under 200 KB, half the 400 KB item limit. The feed caps no shard count (shards of
/// `POLYTAPE_WS_SHARD_ASSETS`, 2–500 tokens, over every T2–T4 market), but 2,000 shards is
/// 2,000 T2–T4 markets at the smallest shard size and 200,000 at the default 200 tokens, against
/// a few hundred at the reference scale.
pub const MAX_ROUND_HEARTBEATS: usize = 2_000;

/// WebSocket shard heartbeats.
pub trait HeartbeatStore: Send + Sync {
    /// Writes one heartbeat round of the feed: the heartbeat of every shard it has open, in one
    /// write that replaces the previous round whole (one DynamoDB item, 1 WRU up to a dozen
    /// shards). A shard the running feed closed is not in its next round, so it drops out
    /// then; an empty round (the feed has no shard open) leaves none.
    ///
    /// The round is stored under one key for the feed, not one per shard or per feed run.
    /// Shard ids (`shard-01`, …) are numbered within one feed process, from 1 and never reused
    /// there: with an item per shard, every shard the feed closed, and a restarted feed's
    /// shards beyond its new count, would keep an old heartbeat that fails health's
    /// `ws_<shard>` for a day; with an item per run, a restarted feed's whole previous run
    /// would. With one key, a restarted feed's first round replaces its predecessor's shards,
    /// and two feeds overlapping in a deployment (ECS stops the old task first, so they should
    /// not) each replace the other's round: what is read is the shards of the feed that wrote
    /// last, and the old feed's are gone at the new one's next round.
    ///
    /// A feed that stops writing keeps its last round, so its shards go stale (and fail
    /// `ws_<shard>`) until the round expires, 1 day after its newest `at`. More than
    /// [`MAX_ROUND_HEARTBEATS`] heartbeats, or two of one shard, are refused
    /// ([`crate::StoreError::Encode`]) and nothing is written.
    fn put_heartbeats(&self, round: &[ShardHeartbeat]) -> impl Future<Output = Result<()>> + Send;

    /// The heartbeats of the last round written, ordered by `shard_id`; none once that round
    /// has expired.
    fn heartbeats(&self) -> impl Future<Output = Result<Vec<ShardHeartbeat>>> + Send;
}

/// Refuses a round [`HeartbeatStore::put_heartbeats`] may not store: over
/// [`MAX_ROUND_HEARTBEATS`], or a shard twice. Both adapters check with it.
pub(crate) fn check_heartbeat_round(round: &[ShardHeartbeat]) -> Result<()> {
    if round.len() > MAX_ROUND_HEARTBEATS {
        return Err(crate::StoreError::Encode(format!(
            "a heartbeat round of {} shards: at most {MAX_ROUND_HEARTBEATS}",
            round.len()
        )));
    }
    let mut ids: Vec<&str> = round.iter().map(|h| h.shard_id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(crate::StoreError::Encode(format!(
            "a heartbeat round holds shard {} twice",
            w[0]
        )));
    }
    Ok(())
}

/// Every operational record (the Ops table): task runs and states, transitions, coverage,
/// heartbeats. A handler should ask for the narrower port it uses.
pub trait OpsStore: TaskStore + TransitionStore + CoverageStore + HeartbeatStore {}
impl<T: TaskStore + TransitionStore + CoverageStore + HeartbeatStore> OpsStore for T {}

/// The object store (S3, or the data directory locally), addressed by [`crate::keys`].
pub trait ObjectStore: Send + Sync {
    /// Writes `bytes` at `key`, replacing any object there. Readers never see a partial object.
    fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Writes the file at `path` at `key`, as [`ObjectStore::put_object`] does with its bytes,
    /// without holding the whole file in memory where the adapter can stream it (S3: the body
    /// is read from the file as it is sent; the data directory: a file copy). The live feed's
    /// raw tape objects (up to 32 MiB) go this way. The default reads the file whole.
    fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let bytes = std::fs::read(path)?;
            self.put_object(key, bytes, content_type).await
        }
    }

    /// The object at `key`, or `None` when there is none.
    fn get_object(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Writes `value` as JSON at `key` ([`ObjectStore::put_object`], `application/json`): the
    /// small state objects the tasks keep (re-tier's end dates, the result counts, the paper
    /// executor's state). A value that does not encode is [`crate::StoreError::Encode`].
    fn put_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<()>> + Send {
        let body =
            serde_json::to_vec(value).map_err(|e| crate::StoreError::Encode(format!("{key}: {e}")));
        async move { self.put_object(key, body?, "application/json").await }
    }

    /// Every key starting with `prefix` (a plain string prefix, as S3's), sorted.
    fn list_objects(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// [`ObjectStore::list_objects`] with each object's size in bytes (what one S3 listing
    /// returns anyway): the status API's table sizes. An adapter that cannot tell a size
    /// says `None`.
    fn list_objects_sized(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>>> + Send {
        async move {
            let keys = self.list_objects(prefix).await?;
            Ok(keys
                .into_iter()
                .map(|key| ObjectInfo { key, size: None })
                .collect())
        }
    }

    /// The bytes `range` of the object at `key` (cut at its end), or `None` when there is no
    /// such object: the row groups of a Parquet file a page needs (one ranged GET on S3, a
    /// seek locally). The default reads the whole object: an adapter should do better.
    fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send {
        async move {
            Ok(self.get_object(key).await?.map(|bytes| {
                let end = usize::try_from(range.end)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
                bytes[start..end].to_vec()
            }))
        }
    }

    /// The last `len` bytes of the object at `key` (all of it when it is shorter) and its
    /// size, or `None` when there is none: a Parquet footer without the rest of the file
    /// (one ranged GET on S3, a seek locally). The default reads the whole object: an
    /// adapter should do better.
    fn get_tail(
        &self,
        key: &str,
        len: u64,
    ) -> impl Future<Output = Result<Option<ObjectTail>>> + Send {
        async move {
            Ok(self.get_object(key).await?.map(|mut bytes| {
                let size = bytes.len() as u64;
                let keep = usize::try_from(len.min(size)).unwrap_or(bytes.len());
                let bytes = bytes.split_off(bytes.len() - keep);
                ObjectTail { bytes, size }
            }))
        }
    }
}

/// The end of an object: its last bytes and its whole size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTail {
    /// The last bytes asked for (all of the object when it is shorter).
    pub bytes: Vec<u8>,
    /// The whole object's size in bytes.
    pub size: u64,
}

/// A listed object: its key and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: Option<u64>,
}

/// Deleting objects: only compaction does, once an hour's compacted file and the manifest
/// naming its sources are stored (`crate::compact`). A capability of its own so that no other
/// handler can.
pub trait ObjectDeleter: ObjectStore {
    /// Deletes every object of `keys` (S3: `DeleteObjects`, 1,000 keys a request). A key with
    /// no object is not an error, so a delete cut short can simply be repeated. Readers never
    /// see half an object; they may see some of the keys gone and others not yet.
    fn delete_objects(&self, keys: &[String]) -> impl Future<Output = Result<()>> + Send;
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
