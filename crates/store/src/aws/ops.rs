//! The Ops table, single-table: partition key `pk` (S), sort key `sk` (S), TTL attribute
//! `expires_at` (N, epoch seconds). Every record kind that accumulates lives in day
//! partitions, so "the recent ones" is a Query on a few days' partitions and no partition
//! grows without bound or gets hot for longer than a day:
//!
//! | record     | pk                      | sk                                  | expires        |
//! |------------|-------------------------|-------------------------------------|----------------|
//! | task run   | `run#<yyyymmdd of id>`  | the run id (`20261120T223015Z#…`)   | started + 7 d  |
//! | transition | `transition#<yyyymmdd>` | `<at ms, 13 digits>#<condition_id>#<reason>` | at + 90 d |
//! | coverage   | `coverage#<yyyymmdd>`   | `<tick ms, 13 digits>#<tier>`       | tick + 35 d    |
//! | heartbeats | `heartbeat`             | `feed`                              | newest at + 1 d |
//! | task state | `task`                  | the task name                       | never          |
//!
//! Heartbeats and task states do not accumulate. The feed's heartbeat round is one item,
//! replaced by each round (its shards in the map `shards`, keyed by shard id: why one key, in
//! [`HeartbeatStore::put_heartbeats`]), read with one GetItem. There is one state item per task,
//! replaced on each run, so one Query of the `task` partition reads them all in task-name
//! order. TTL deletes a round a day after its newest heartbeat; since TTL deletes lazily (up to
//! two days late), reads also leave out items whose `expires_at` has passed.
//!
//! **Task states** ([`TaskState`]) are read-modify-written: `put_task_run` reads the state
//! (strongly consistent), applies [`TaskState::record`], and puts it back conditional on the
//! `state_version` it read (`attribute_not_exists` when none), storing the next version; a
//! lost race reads again (jittered, bounded). So two runs of one task recording at once never
//! lose a failure count, and a state written from a stale read can never put back a lease
//! another run already released. The lease is the `lease_until` attribute (N, epoch ms), taken
//! by `claim_task` in one `UpdateItem` conditional on `attribute_not_exists(lease_until) OR
//! lease_until <= :now`.
//!
//! Task run ids start with their scheduled time, so within a day `sk` order is time order;
//! millisecond times are zero-padded so string order is numeric order. Reads pick the day
//! partitions (and what has expired) from [`AwsStore::with_clock`]'s clock (the wall clock by
//! default).

use super::batch::{last_per_key, CONFLICT_RETRY};
use super::error::backend;
use super::item::{ms, n, s, Item, ItemBuilder, Read};
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::{CoverageStore, HeartbeatStore, RunQuery, TaskStore, TransitionStore};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Days, NaiveDate};
use polytape_core::ops::{
    Coverage, ShardHeartbeat, TaskRun, TaskState, TaskStatus, TierTransition,
};
use polytape_core::Ts;

/// Task runs are kept 7 days after they started.
pub(crate) const TASK_RUN_TTL_DAYS: u64 = 7;
/// Tier transitions are kept 90 days.
pub(crate) const TRANSITION_TTL_DAYS: u64 = 90;
/// Coverage counters are kept 35 days (a month of daily reports plus slack).
pub(crate) const COVERAGE_TTL_DAYS: u64 = 35;
/// A heartbeat round is kept 1 day after its newest heartbeat.
pub(crate) const HEARTBEAT_TTL_DAYS: u64 = 1;
/// The partition of the heartbeats.
pub(crate) const HEARTBEAT_PK: &str = "heartbeat";
/// The sort key of the feed's one heartbeat item.
pub(crate) const HEARTBEAT_SK: &str = "feed";
/// The map of a heartbeat round's shards, keyed by shard id.
const SHARDS: &str = "shards";
/// "Recent" reads look at today's partition and at most 7 days before it.
pub(crate) const RECENT_DAYS: u64 = 8;
/// The partition of the task states.
pub(crate) const TASK_PK: &str = "task";
/// How long after the time its id starts with a run may start (a tick retried or skipped
/// late, an hourly task delayed): `task_runs_since` looks at ids from this much before
/// `since`, then keeps the runs that started at or after it. Ticks are skipped once later than
/// their interval (≤ 1 h) and messages live 1 h; 2 h covers both.
pub(crate) const LATE_START: chrono::Duration = chrono::Duration::hours(2);
const STATE_VERSION: &str = "state_version";
const LEASE_UNTIL: &str = "lease_until";
const FIRST_SEEN_AT: &str = "first_seen_at";
/// Who took the lease: a token of one `claim_task` call, so that a claim refused on a retry
/// of its own applied attempt can tell itself from another claimer with the same `until`.
const LEASE_HOLDER: &str = "lease_holder";

/// A token no other claim holds: a per-process random seed (std's hasher keys) and a count.
fn claim_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    });
    format!("{seed:016x}-{}", COUNT.fetch_add(1, Ordering::Relaxed))
}

fn day(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// Epoch milliseconds, zero-padded to 13 digits so string order is time order.
fn ms_key(t: Ts) -> String {
    format!("{:013}", t.timestamp_millis().max(0))
}

fn expires(t: Ts, days: u64) -> AttributeValue {
    let secs = t
        .timestamp()
        .saturating_add(i64::try_from(days * 86_400).unwrap_or(i64::MAX));
    n(secs)
}

/// `run#20261120` for the id `20261120T223015Z#snapshot#T4`.
pub(crate) fn run_pk(id: &str) -> Result<String> {
    match id.get(..8) {
        Some(d) if d.bytes().all(|c| c.is_ascii_digit()) => Ok(format!("run#{d}")),
        _ => Err(StoreError::Encode(format!(
            "task run id {id:?} does not start with its time (yyyymmddTHHMMSSZ#task…)"
        ))),
    }
}

fn status_text(status: TaskStatus) -> Result<String> {
    match serde_json::to_value(status)? {
        serde_json::Value::String(v) => Ok(v),
        other => Err(StoreError::Encode(format!("task status as {other}"))),
    }
}

fn status_of(text: String) -> Result<TaskStatus> {
    Ok(serde_json::from_value(serde_json::Value::String(text))?)
}

/// `20261120T100000Z`: the form run ids start with, for key conditions on their time.
fn id_time(t: Ts) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

pub(crate) fn run_item(run: &TaskRun) -> Result<Item> {
    let status = status_text(run.status)?;
    Ok(ItemBuilder::default()
        .set("pk", s(run_pk(&run.id)?))
        .set("sk", s(&run.id))
        .set("task", s(&run.task))
        .set("started_at", ms(run.started_at))
        .set("finished_at", ms(run.finished_at))
        .set("status", s(status))
        .set("detail", s(serde_json::to_string(&run.detail)?))
        .opt("error", run.error.as_deref().map(s))
        .set("expires_at", expires(run.started_at, TASK_RUN_TTL_DAYS))
        .build())
}

fn run_from_item(item: &Item, what: String) -> Result<TaskRun> {
    let r = Read::new(item, what);
    Ok(TaskRun {
        id: r.s("sk")?,
        task: r.s("task")?,
        started_at: r.ts("started_at")?,
        finished_at: r.ts("finished_at")?,
        status: status_of(r.s("status")?)?,
        detail: serde_json::from_str(&r.s("detail")?)?,
        error: r.opt_s("error")?,
    })
}

/// The state item of `state`, stored as version `version`.
pub(crate) fn state_item(state: &TaskState, version: u64) -> Result<Item> {
    Ok(ItemBuilder::default()
        .set("pk", s(TASK_PK))
        .set("sk", s(&state.task))
        .opt("last_run_id", state.last_run_id.as_deref().map(s))
        .opt("last_started_at", state.last_started_at.map(ms))
        .opt("last_finished_at", state.last_finished_at.map(ms))
        .opt(
            "last_status",
            state.last_status.map(status_text).transpose()?.map(s),
        )
        .opt("last_error", state.last_error.as_deref().map(s))
        .opt("last_success_at", state.last_success_at.map(ms))
        .set("consecutive_failures", n(state.consecutive_failures))
        .opt(FIRST_SEEN_AT, state.first_seen_at.map(ms))
        .opt(LEASE_UNTIL, state.lease_until.map(ms))
        .set(STATE_VERSION, n(version))
        .build())
}

/// The state of a state item and the version it was stored as. An item only a lease ever
/// wrote (`claim_task` on a task with no run) has neither counts nor a version: 0 of each.
fn state_from_item(item: &Item, what: String) -> Result<(TaskState, u64)> {
    let r = Read::new(item, what);
    let state = TaskState {
        task: r.s("sk")?,
        last_run_id: r.opt_s("last_run_id")?,
        last_started_at: r.opt_ts("last_started_at")?,
        last_finished_at: r.opt_ts("last_finished_at")?,
        last_status: r.opt_s("last_status")?.map(status_of).transpose()?,
        last_error: r.opt_s("last_error")?,
        last_success_at: r.opt_ts("last_success_at")?,
        consecutive_failures: r.opt_n("consecutive_failures")?.unwrap_or(0),
        first_seen_at: r.opt_ts(FIRST_SEEN_AT)?,
        lease_until: r.opt_ts(LEASE_UNTIL)?,
    };
    Ok((state, r.opt_n(STATE_VERSION)?.unwrap_or(0)))
}

pub(crate) fn transition_item(t: &TierTransition) -> Item {
    ItemBuilder::default()
        .set("pk", s(format!("transition#{}", day(t.at.date_naive()))))
        .set(
            "sk",
            s(format!("{}#{}#{}", ms_key(t.at), t.condition_id, t.reason)),
        )
        .set("condition_id", s(&t.condition_id))
        .opt("from_tier", t.from_tier.map(super::item::tier))
        .opt("to_tier", t.to_tier.map(super::item::tier))
        .set("at", ms(t.at))
        .set("reason", s(&t.reason))
        .opt(
            "hours_to_close",
            t.hours_to_close.filter(|h| h.is_finite()).map(n),
        )
        .set("expires_at", expires(t.at, TRANSITION_TTL_DAYS))
        .build()
}

fn transition_from_item(item: &Item, what: String) -> Result<TierTransition> {
    let r = Read::new(item, what);
    Ok(TierTransition {
        condition_id: r.s("condition_id")?,
        from_tier: r.opt_tier("from_tier")?,
        to_tier: r.opt_tier("to_tier")?,
        at: r.ts("at")?,
        reason: r.s("reason")?,
        hours_to_close: r.opt_n("hours_to_close")?,
    })
}

pub(crate) fn coverage_item(c: &Coverage) -> Item {
    ItemBuilder::default()
        .set("pk", s(format!("coverage#{}", day(c.tick_ts.date_naive()))))
        .set(
            "sk",
            s(format!("{}#{}", ms_key(c.tick_ts), c.tier.number())),
        )
        .set("tier", super::item::tier(c.tier))
        .set("tick_ts", ms(c.tick_ts))
        .set("expected", n(c.expected))
        .set("written", n(c.written))
        .set("missing", n(c.missing))
        .set("skipped", AttributeValue::Bool(c.skipped))
        .set("failed", AttributeValue::Bool(c.failed))
        .set("expires_at", expires(c.tick_ts, COVERAGE_TTL_DAYS))
        .build()
}

fn coverage_from_item(item: &Item, what: String) -> Result<Coverage> {
    let r = Read::new(item, what);
    Ok(Coverage {
        tier: r.tier("tier")?,
        tick_ts: r.ts("tick_ts")?,
        expected: r.n("expected")?,
        written: r.n("written")?,
        missing: r.n("missing")?,
        skipped: r.bool("skipped")?,
        // Coverage written before `failed` existed: not failed.
        failed: r.opt_bool("failed")?.unwrap_or(false),
    })
}

/// The item of one heartbeat round (checked by `check_heartbeat_round`): every shard in the
/// map `shards` under its id, with the attributes the item per shard had (≈ 70 B for
/// `shard-07`); it expires a day after the round's newest heartbeat, or after `now` when the
/// round is empty.
pub(crate) fn heartbeats_item(round: &[ShardHeartbeat], now: Ts) -> Item {
    let shards = round
        .iter()
        .map(|hb| {
            let fields = ItemBuilder::default()
                .set("at", ms(hb.at))
                .set("assets", n(hb.assets))
                .opt("last_event_at", hb.last_event_at.map(ms))
                .set("reconnects", n(hb.reconnects))
                .build();
            (hb.shard_id.clone(), AttributeValue::M(fields))
        })
        .collect();
    let newest = round.iter().map(|hb| hb.at).max().unwrap_or(now);
    ItemBuilder::default()
        .set("pk", s(HEARTBEAT_PK))
        .set("sk", s(HEARTBEAT_SK))
        .set(SHARDS, AttributeValue::M(shards))
        .set("expires_at", expires(newest, HEARTBEAT_TTL_DAYS))
        .build()
}

/// The heartbeats of a round's item, ordered by shard id.
fn heartbeats_from_item(item: &Item, what: &str) -> Result<Vec<ShardHeartbeat>> {
    let Some(AttributeValue::M(shards)) = item.get(SHARDS) else {
        return Err(StoreError::Encode(format!("{what}: no map `{SHARDS}`")));
    };
    let mut out = shards
        .iter()
        .map(|(id, v)| {
            let what = format!("{what}, shard {id}");
            let AttributeValue::M(fields) = v else {
                return Err(StoreError::Encode(format!("{what}: not a map")));
            };
            let r = Read::new(fields, what);
            Ok(ShardHeartbeat {
                shard_id: id.clone(),
                at: r.ts("at")?,
                assets: r.n("assets")?,
                last_event_at: r.opt_ts("last_event_at")?,
                reconnects: r.n("reconnects")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    Ok(out)
}

/// The days from `from` to `to`, inclusive, oldest first.
fn days_between(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

impl AwsStore {
    /// Items of partition `pk`, `newest_first` or oldest first, with `sk >= sk_from` when
    /// given, at most `limit`.
    async fn query_partition(
        &self,
        pk: &str,
        sk_from: Option<&str>,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let table = &self.names.ops_table;
        let mut out = Vec::new();
        let mut start = None;
        while out.len() < limit {
            // No Limit when the caller wants everything (or more than a page could say).
            let remaining = i32::try_from(limit - out.len()).ok();
            let mut q = self
                .ddb
                .query()
                .table_name(table)
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(!newest_first)
                .set_limit(remaining)
                .set_exclusive_start_key(start);
            q = match sk_from {
                Some(from) => q
                    .key_condition_expression("pk = :pk AND sk >= :from")
                    .expression_attribute_values(":from", s(from)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q
                .send()
                .await
                .map_err(|e| backend("Query", &format!("{table} ({pk})"), e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Up to `limit` items of the `<prefix>#<day>` partitions, today's first, newest first,
    /// walking back at most [`RECENT_DAYS`] days.
    async fn recent(&self, prefix: &str, limit: usize) -> Result<Vec<Item>> {
        let today = self.now().date_naive();
        let mut out = Vec::new();
        for back in 0..RECENT_DAYS {
            if out.len() >= limit {
                break;
            }
            let Some(d) = today.checked_sub_days(Days::new(back)) else {
                break;
            };
            let pk = format!("{prefix}#{}", day(d));
            out.extend(
                self.query_partition(&pk, None, true, limit - out.len())
                    .await?,
            );
        }
        Ok(out)
    }

    async fn put_ops_item(&self, item: Item) -> Result<()> {
        let table = &self.names.ops_table;
        self.ddb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem", table, e))?;
        Ok(())
    }

    /// The state of `task` and its stored version, strongly consistent (a writer reads the
    /// version it writes against).
    async fn read_task_state(&self, task: &str) -> Result<Option<(TaskState, u64)>> {
        let table = &self.names.ops_table;
        self.read_task_item(task)
            .await?
            .map(|item| state_from_item(&item, format!("{table} item {TASK_PK}/{task}")))
            .transpose()
    }

    /// The state item of `task` as stored, strongly consistent.
    async fn read_task_item(&self, task: &str) -> Result<Option<Item>> {
        let table = &self.names.ops_table;
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("pk", s(TASK_PK))
            .key("sk", s(task))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", table, e))?;
        Ok(out.item)
    }

    /// Puts `state` as version `read + 1` if the stored version is still `read` (0: none).
    /// `Ok(false)` when another writer got there first — not when the stored item is exactly
    /// this write, leases aside: an attempt the SDK timed out and retried may have been
    /// applied, and its retry then fails the condition on its own write (recording the run
    /// again would count it twice). A consistent read, only on a refused put, tells them apart.
    async fn put_task_state_if(&self, state: &TaskState, read: u64) -> Result<bool> {
        let table = &self.names.ops_table;
        let next = read.checked_add(1).ok_or_else(|| {
            StoreError::Encode(format!(
                "task state {}: version {read} overflows",
                state.task
            ))
        })?;
        let item = state_item(state, next)?;
        let mut req = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .expression_attribute_names("#sv", STATE_VERSION);
        req = if read == 0 {
            req.condition_expression("attribute_not_exists(#sv)")
        } else {
            req.condition_expression("#sv = :sv")
                .expression_attribute_values(":sv", n(read))
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // A claim may have taken the lease since (it touches nothing else).
                let unleased = |mut i: Item| {
                    for claimed in [LEASE_UNTIL, LEASE_HOLDER, FIRST_SEEN_AT] {
                        i.remove(claimed);
                    }
                    i
                };
                let stored = self.read_task_item(&state.task).await?;
                let ours = stored.map(unleased) == Some(unleased(item));
                if ours {
                    tracing::debug!(task = %state.task, version = next, "task state put refused on a retry of its own applied attempt: written");
                }
                Ok(ours)
            }
            Err(e) => Err(backend("PutItem", table, e)),
        }
    }

    /// Records `run` in its task's state: read, [`TaskState::record`], conditional put;
    /// again on a fresh read when another writer got there first.
    async fn record_run(&self, run: &TaskRun) -> Result<()> {
        for attempt in 1..=CONFLICT_RETRY.attempts {
            let (mut state, version) = self
                .read_task_state(&run.task)
                .await?
                .unwrap_or_else(|| (TaskState::new(&run.task), 0));
            state.record(run);
            if self.put_task_state_if(&state, version).await? {
                return Ok(());
            }
            tracing::debug!(task = %run.task, run = %run.id, attempt, "task state changed since it was read: recording again");
            if attempt < CONFLICT_RETRY.attempts {
                tokio::time::sleep(CONFLICT_RETRY.jittered(attempt)).await;
            }
        }
        Err(StoreError::Backend {
            reason: format!(
                "PutItem on {} ({TASK_PK}/{}): the state lost to concurrent writers {} times",
                self.names.ops_table, run.task, CONFLICT_RETRY.attempts
            ),
            retryable: true,
        })
    }
}

fn what(table: &str, item: &Item) -> String {
    let key = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{table} item {}/{}", key("pk"), key("sk"))
}

impl TaskStore for AwsStore {
    /// One PutItem for the run, then the state's read and conditional put (one GetItem and one
    /// PutItem, more only when runs of the task record at the same moment).
    async fn put_task_run(&self, run: &TaskRun) -> Result<()> {
        self.put_ops_item(run_item(run)?).await?;
        self.record_run(run).await
    }

    /// One Query per day partition from the day of `since` − 2 h (`LATE_START`; at most 8 days
    /// back: older runs have expired) to today, each from the ids of `since` − `LATE_START`
    /// on; the runs that started before `since`, or whose expiry has passed, are left out.
    async fn task_runs_since(&self, since: Ts) -> Result<Vec<TaskRun>> {
        let table = &self.names.ops_table;
        let now = self.now();
        let today = now.date_naive();
        let from = since - LATE_START;
        let oldest = today
            .checked_sub_days(Days::new(RECENT_DAYS))
            .unwrap_or(today);
        let first = from.date_naive().max(oldest);
        let last = today.max(since.date_naive());
        let sk_from = id_time(from);
        let mut runs = Vec::new();
        for d in days_between(first, last) {
            let pk = format!("run#{}", day(d));
            for item in self
                .query_partition(&pk, Some(&sk_from), false, usize::MAX)
                .await?
            {
                let what = what(table, &item);
                // TTL deletes late; a run past its expiry is gone as far as readers go.
                let expires: i64 = Read::new(&item, what.clone()).n("expires_at")?;
                let run = run_from_item(&item, what)?;
                if run.started_at >= since && expires > now.timestamp() {
                    runs.push(run);
                }
            }
        }
        runs.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(runs)
    }

    /// Day partitions newest first (as [`TaskStore::task_runs_since`] picks them), each one
    /// Query newest id first between the ids of `since` − `LATE_START` and `q.before`, in
    /// pages of the runs still wanted, until `q.limit` runs are found: a page reads about its
    /// own runs (more when `task` or `status` filter many out), not the window's.
    async fn task_runs_page(&self, q: &RunQuery) -> Result<Vec<TaskRun>> {
        let table = &self.names.ops_table;
        let now = self.now();
        let today = now.date_naive();
        let from = q.since - LATE_START;
        let oldest = today
            .checked_sub_days(Days::new(RECENT_DAYS))
            .unwrap_or(today);
        let first = from.date_naive().max(oldest);
        let last = today.max(q.since.date_naive());
        let sk_from = id_time(from);
        // Every id sorts below "~" (ids start with digits): the top without a cursor.
        let sk_to = q.before.clone().unwrap_or_else(|| "~".into());
        let mut runs = Vec::new();
        if q.limit == 0 || sk_to < sk_from {
            return Ok(runs);
        }
        let mut days: Vec<NaiveDate> = days_between(first, last).collect();
        days.reverse();
        'days: for d in days {
            let pk = format!("run#{}", day(d));
            let mut start = None;
            loop {
                // One more than wanted: the cursor's own run (BETWEEN includes it) is left out.
                let want = q.limit.saturating_sub(runs.len()) + 1;
                let page = self
                    .ddb
                    .query()
                    .table_name(table)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":from", s(&sk_from))
                    .expression_attribute_values(":to", s(&sk_to))
                    .scan_index_forward(false)
                    .limit(i32::try_from(want).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| backend("Query", &format!("{table} ({pk})"), e))?;
                for item in page.items.unwrap_or_default() {
                    let what = what(table, &item);
                    // TTL deletes late; a run past its expiry is gone as far as readers go.
                    let expires: i64 = Read::new(&item, what.clone()).n("expires_at")?;
                    let run = run_from_item(&item, what)?;
                    if expires > now.timestamp() && q.selects(&run) {
                        runs.push(run);
                        if runs.len() >= q.limit {
                            break 'days;
                        }
                    }
                }
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(runs)
    }

    async fn task_state(&self, task: &str) -> Result<Option<TaskState>> {
        Ok(self.read_task_state(task).await?.map(|(state, _)| state))
    }

    /// One Query of the `task` partition (in task-name order).
    async fn task_states(&self) -> Result<Vec<TaskState>> {
        let table = &self.names.ops_table;
        self.query_partition(TASK_PK, None, false, usize::MAX)
            .await?
            .iter()
            .map(|item| Ok(state_from_item(item, what(table, item))?.0))
            .collect()
    }

    /// One conditional UpdateItem of `lease_until` and the claim's token (the rest of the
    /// state is untouched). A refused claim reads the item once: when it holds this claim's
    /// token, the refusal was the SDK's retry of an attempt that had taken the lease.
    async fn claim_task(&self, task: &str, now: Ts, until: Ts) -> Result<bool> {
        let table = &self.names.ops_table;
        let token = claim_token();
        let claimed = self
            .ddb
            .update_item()
            .table_name(table)
            .key("pk", s(TASK_PK))
            .key("sk", s(task))
            .update_expression(
                "SET #lease = :until, #holder = :token, #first = if_not_exists(#first, :now)",
            )
            .condition_expression("attribute_not_exists(#lease) OR #lease <= :now")
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_names("#holder", LEASE_HOLDER)
            .expression_attribute_names("#first", FIRST_SEEN_AT)
            .expression_attribute_values(":until", ms(until))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":now", ms(now))
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let item = self.read_task_item(task).await?;
                let ours = matches!(
                    item.as_ref().and_then(|i| i.get(LEASE_HOLDER)),
                    Some(AttributeValue::S(held)) if *held == token
                );
                if ours {
                    tracing::debug!(%task, "claim refused on a retry of its own applied attempt: taken");
                }
                Ok(ours)
            }
            Err(e) => Err(backend("UpdateItem", table, e)),
        }
    }
}

impl TransitionStore for AwsStore {
    async fn put_transitions(&self, t: &[TierTransition]) -> Result<()> {
        let items = last_per_key(t, |t| {
            format!(
                "{}#{}#{}",
                t.at.timestamp_millis(),
                t.condition_id,
                t.reason
            )
        })
        .into_iter()
        .map(transition_item)
        .collect();
        self.batch_put(&self.names.ops_table, items).await
    }

    async fn recent_transitions(&self, limit: usize) -> Result<Vec<TierTransition>> {
        let table = &self.names.ops_table;
        self.recent("transition", limit)
            .await?
            .iter()
            .map(|item| transition_from_item(item, what(table, item)))
            .collect()
    }
}

impl CoverageStore for AwsStore {
    async fn put_coverage(&self, c: &Coverage) -> Result<()> {
        self.put_ops_item(coverage_item(c)).await
    }

    async fn coverage_since(&self, since: Ts) -> Result<Vec<Coverage>> {
        let table = &self.names.ops_table;
        let today = self.now().date_naive();
        // Older partitions have expired (TTL); never walk more days than that.
        let oldest = today
            .checked_sub_days(Days::new(COVERAGE_TTL_DAYS))
            .unwrap_or(today);
        let first = since.date_naive().max(oldest);
        let last = today.max(since.date_naive());
        let from = ms_key(since);
        let mut out = Vec::new();
        for d in days_between(first, last) {
            let pk = format!("coverage#{}", day(d));
            for item in self
                .query_partition(&pk, Some(&from), false, usize::MAX)
                .await?
            {
                out.push(coverage_from_item(&item, what(table, &item))?);
            }
        }
        Ok(out)
    }
}

impl HeartbeatStore for AwsStore {
    /// One PutItem of the round's item (1 WRU up to a dozen shards).
    async fn put_heartbeats(&self, round: &[ShardHeartbeat]) -> Result<()> {
        crate::ports::check_heartbeat_round(round)?;
        self.put_ops_item(heartbeats_item(round, self.now())).await
    }

    /// One GetItem, eventually consistent (0.5 RRU): a round lags at most a second behind.
    /// Items of the partition under other keys (the item per shard that came before) are not
    /// read, and TTL deletes them within a day or two.
    async fn heartbeats(&self) -> Result<Vec<ShardHeartbeat>> {
        let table = &self.names.ops_table;
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("pk", s(HEARTBEAT_PK))
            .key("sk", s(HEARTBEAT_SK))
            .send()
            .await
            .map_err(|e| backend("GetItem", table, e))?;
        let Some(item) = out.item else {
            return Ok(Vec::new());
        };
        let what = what(table, &item);
        // TTL deletes late; an item past its expiry is a feed that stopped a day ago.
        let expires: i64 = Read::new(&item, what.clone()).n("expires_at")?;
        if expires <= self.now().timestamp() {
            return Ok(Vec::new());
        }
        heartbeats_from_item(&item, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{at, task_run};
    use polytape_core::Tier;

    #[test]
    fn given_a_time_first_run_id_then_it_lands_in_its_day_and_expires_a_week_after_it_started() {
        let run = task_run(
            "20261120T223015Z#snapshot#T4",
            "2026-11-20T22:30:15.250Z",
            TaskStatus::Ok,
            3,
        );
        let item = run_item(&run).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "run#20261120");
        assert_eq!(item["sk"].as_s().unwrap(), "20261120T223015Z#snapshot#T4");
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires, at("2026-11-27T22:30:15Z").timestamp());
        assert_eq!(run_from_item(&item, "x".into()).unwrap(), run);
        assert!(!item.contains_key("error"), "absent, not NULL");
        let failed = task_run(
            "20261120T223015Z#snapshot#T4",
            "2026-11-20T22:30:15.250Z",
            TaskStatus::Failed,
            0,
        );
        let item = run_item(&failed).unwrap();
        assert_eq!(item["error"].as_s().unwrap(), "gamma: timeout");
        assert_eq!(run_from_item(&item, "x".into()).unwrap(), failed);
        assert_eq!(id_time(at("2026-11-20T22:30:15.999Z")), "20261120T223015Z");

        let err = run_pk("snapshot#2026-11-20").unwrap_err();
        assert!(
            err.to_string().contains("does not start with its time"),
            "{err}"
        );
    }

    #[test]
    fn given_transitions_and_coverage_then_sort_keys_order_by_time_in_day_partitions() {
        let t = TierTransition {
            condition_id: "0xabc".into(),
            from_tier: Some(Tier::T3),
            to_tier: None,
            at: at("2026-11-20T06:00:00.007Z"),
            reason: "closed".into(),
            hours_to_close: Some(-2.25),
        };
        let item = transition_item(&t);
        assert_eq!(item["pk"].as_s().unwrap(), "transition#20261120");
        assert_eq!(item["sk"].as_s().unwrap(), "1795154400007#0xabc#closed");
        assert_eq!(transition_from_item(&item, "x".into()).unwrap(), t);

        let c = Coverage {
            tier: Tier::T4,
            tick_ts: at("2026-11-20T23:59:45Z"),
            expected: 10,
            written: 9,
            missing: 1,
            skipped: false,
            failed: true,
        };
        let mut item = coverage_item(&c);
        assert_eq!(item["pk"].as_s().unwrap(), "coverage#20261120");
        assert_eq!(item["sk"].as_s().unwrap(), "1795219185000#4");
        assert_eq!(coverage_from_item(&item, "x".into()).unwrap(), c);
        item.remove("failed");
        assert!(
            !coverage_from_item(&item, "x".into()).unwrap().failed,
            "coverage from before `failed` existed did not fail"
        );
        // Zero padding keeps string order numeric for early times too.
        assert!(ms_key(at("1970-01-01T00:00:01Z")) < ms_key(at("2026-11-20T00:00:00Z")));
        assert_eq!(ms_key(at("1970-01-01T00:00:01Z")), "0000000001000");
    }

    /// The size DynamoDB bills and limits an item by: each attribute's name and value; a
    /// number ≈ 1 byte per 2 significant digits + 1; a map 3 bytes + 1 per element.
    fn item_bytes(item: &Item) -> usize {
        fn value(v: &AttributeValue) -> usize {
            match v {
                AttributeValue::S(s) => s.len(),
                AttributeValue::N(n) => {
                    let digits = n.trim_start_matches('-').trim_start_matches('0').len();
                    digits.div_ceil(2) + 1
                }
                AttributeValue::M(m) => {
                    3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>()
                }
                other => panic!("not used by heartbeats: {other:?}"),
            }
        }
        item.iter().map(|(k, v)| k.len() + value(v)).sum()
    }

    #[test]
    fn given_a_heartbeat_round_then_it_is_one_item_keyed_feed_that_expires_a_day_after_its_newest_beat(
    ) {
        let now = at("2026-11-20T23:00:00Z");
        let s07 = crate::contract::heartbeat("shard-07", "2026-11-20T22:30:15.250Z", 200, 9);
        let mut s08 = crate::contract::heartbeat("shard-08", "2026-11-20T22:30:14Z", 0, 0);
        s08.last_event_at = None;
        let item = heartbeats_item(&[s08.clone(), s07.clone()], now);
        assert_eq!(item["pk"].as_s().unwrap(), "heartbeat");
        assert_eq!(item["sk"].as_s().unwrap(), "feed");
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires, at("2026-11-21T22:30:15Z").timestamp());
        let shards = item["shards"].as_m().unwrap();
        assert!(
            !shards["shard-08"]
                .as_m()
                .unwrap()
                .contains_key("last_event_at"),
            "absent, not NULL"
        );
        assert_eq!(
            heartbeats_from_item(&item, "x").unwrap(),
            vec![s07, s08],
            "every field kept, by shard id"
        );

        let empty = heartbeats_item(&[], now);
        let expires: i64 = empty["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires, at("2026-11-21T23:00:00Z").timestamp());
        assert_eq!(heartbeats_from_item(&empty, "x").unwrap(), vec![]);
    }

    #[test]
    fn given_4_shards_then_the_round_is_1_wru_and_the_largest_round_stays_far_under_400_kb() {
        let now = at("2026-11-20T23:00:00Z");
        let beat = |id: String, reconnects: u64| {
            let mut hb =
                crate::contract::heartbeat(&id, "2026-11-20T22:30:15.250Z", 200, reconnects);
            hb.last_event_at = Some(at("2026-11-20T22:30:14.999Z"));
            hb
        };
        let four: Vec<_> = (1..=4).map(|i| beat(format!("shard-{i:02}"), 3)).collect();
        let bytes = item_bytes(&heartbeats_item(&four, now));
        assert!(bytes <= 400, "4 shards: {bytes} B");
        let per_shard =
            item_bytes(&heartbeats_item(&four[..1], now)) - item_bytes(&heartbeats_item(&[], now));
        assert!((60..=80).contains(&per_shard), "{per_shard} B a shard");
        // The longest ids the feed makes (`shard-{u32}`), every number at its widest.
        let widest: Vec<_> = (0..crate::ports::MAX_ROUND_HEARTBEATS)
            .map(|i| {
                let mut hb = beat(format!("shard-{:010}", u32::MAX as usize - i), u64::MAX);
                hb.assets = u32::MAX;
                hb
            })
            .collect();
        let bytes = item_bytes(&heartbeats_item(&widest, now));
        assert!(bytes <= 200 * 1024, "{} shards: {bytes} B", widest.len());
    }

    #[test]
    fn given_a_task_state_then_it_is_one_item_in_the_task_partition_and_round_trips() {
        let mut state = TaskState::new("discovery");
        let empty = state_item(&state, 1).unwrap();
        assert_eq!(empty["pk"].as_s().unwrap(), "task");
        assert_eq!(empty["sk"].as_s().unwrap(), "discovery");
        assert_eq!(
            state_from_item(&empty, "x".into()).unwrap(),
            (state.clone(), 1)
        );
        state.record(&task_run(
            "20261120T120000Z#discovery",
            "2026-11-20T12:00:00Z",
            TaskStatus::Failed,
            0,
        ));
        state.lease_until = Some(at("2026-11-20T12:05:00Z"));
        let item = state_item(&state, 7).unwrap();
        assert_eq!(item["consecutive_failures"].as_n().unwrap(), "1");
        assert_eq!(item["last_status"].as_s().unwrap(), "failed");
        assert_eq!(item["lease_until"].as_n().unwrap(), "1795176300000");
        assert_eq!(state_from_item(&item, "x".into()).unwrap(), (state, 7));

        // What claim_task alone leaves: the key and a lease.
        let leased = ItemBuilder::default()
            .set("pk", s(TASK_PK))
            .set("sk", s("retier"))
            .set(LEASE_UNTIL, ms(at("2026-11-20T12:01:00Z")))
            .build();
        let (state, version) = state_from_item(&leased, "x".into()).unwrap();
        assert_eq!(version, 0);
        assert_eq!(state.consecutive_failures, 0);
        assert!(state.is_leased_at(at("2026-11-20T12:00:59Z")));
    }

    #[test]
    fn days_between_is_inclusive_and_empty_when_reversed() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let days: Vec<String> = days_between(d("2026-11-30"), d("2026-12-02"))
            .map(day)
            .collect();
        assert_eq!(days, vec!["20261130", "20261201", "20261202"]);
        assert_eq!(days_between(d("2026-12-02"), d("2026-12-01")).count(), 0);
    }
}
