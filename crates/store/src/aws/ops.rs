//! The Ops table, single-table: partition key `pk` (S), sort key `sk` (S), TTL attribute
//! `expires_at` (N, epoch seconds). Every record kind that accumulates lives in day
//! partitions, so "the recent ones" is a Query on today's partition (walking back a day at a
//! time) and no partition grows without bound or gets hot for longer than a day:
//!
//! | record     | pk                      | sk                                  | expires        |
//! |------------|-------------------------|-------------------------------------|----------------|
//! | task run   | `run#<yyyymmdd of id>`  | the run id (`20261120T223015Z#…`)   | started + 7 d  |
//! | transition | `transition#<yyyymmdd>` | `<at ms, 13 digits>#<condition_id>` | at + 90 d      |
//! | coverage   | `coverage#<yyyymmdd>`   | `<tick ms, 13 digits>#<tier>`       | tick + 35 d    |
//! | heartbeat  | `heartbeat`             | the shard id                        | at + 1 d       |
//!
//! Heartbeats do not accumulate: one item per shard, replaced on each beat, so the one
//! `heartbeat` partition holds as many items as there are shards and one Query reads them all
//! (in shard-id order). TTL deletes a shard silent for a day; since TTL deletes lazily (up to
//! two days late), the read also leaves out items whose `expires_at` has passed.
//!
//! Task run ids start with their scheduled time, so within a day `sk` order is time order;
//! millisecond times are zero-padded so string order is numeric order. Reads pick the day
//! partitions (and what has expired) from [`AwsStore::with_clock`]'s clock (the wall clock by
//! default).

use super::error::backend;
use super::item::{ms, n, s, Item, ItemBuilder, Read};
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::OpsStore;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Days, NaiveDate};
use polytape_core::ops::{Coverage, ShardHeartbeat, TaskRun, TaskStatus, TierTransition};
use polytape_core::Ts;

/// Task runs are kept 7 days after they started.
pub(crate) const TASK_RUN_TTL_DAYS: u64 = 7;
/// Tier transitions are kept 90 days.
pub(crate) const TRANSITION_TTL_DAYS: u64 = 90;
/// Coverage counters are kept 35 days (a month of daily reports plus slack).
pub(crate) const COVERAGE_TTL_DAYS: u64 = 35;
/// A shard's heartbeat is kept 1 day after it was written.
pub(crate) const HEARTBEAT_TTL_DAYS: u64 = 1;
/// The partition of the heartbeats.
pub(crate) const HEARTBEAT_PK: &str = "heartbeat";
/// "Recent" reads look at today's partition and at most 7 days before it.
pub(crate) const RECENT_DAYS: u64 = 8;

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

pub(crate) fn run_item(run: &TaskRun) -> Result<Item> {
    let status = match serde_json::to_value(run.status)? {
        serde_json::Value::String(v) => v,
        other => return Err(StoreError::Encode(format!("task status as {other}"))),
    };
    Ok(ItemBuilder::default()
        .set("pk", s(run_pk(&run.id)?))
        .set("sk", s(&run.id))
        .set("task", s(&run.task))
        .set("started_at", ms(run.started_at))
        .set("finished_at", ms(run.finished_at))
        .set("status", s(status))
        .set("detail", s(serde_json::to_string(&run.detail)?))
        .set("expires_at", expires(run.started_at, TASK_RUN_TTL_DAYS))
        .build())
}

fn run_from_item(item: &Item, what: String) -> Result<TaskRun> {
    let r = Read::new(item, what);
    let status: TaskStatus = serde_json::from_value(serde_json::Value::String(r.s("status")?))?;
    Ok(TaskRun {
        id: r.s("sk")?,
        task: r.s("task")?,
        started_at: r.ts("started_at")?,
        finished_at: r.ts("finished_at")?,
        status,
        detail: serde_json::from_str(&r.s("detail")?)?,
    })
}

pub(crate) fn transition_item(t: &TierTransition) -> Item {
    ItemBuilder::default()
        .set("pk", s(format!("transition#{}", day(t.at.date_naive()))))
        .set("sk", s(format!("{}#{}", ms_key(t.at), t.condition_id)))
        .set("condition_id", s(&t.condition_id))
        .opt("from_tier", t.from_tier.map(super::item::tier))
        .opt("to_tier", t.to_tier.map(super::item::tier))
        .set("at", ms(t.at))
        .set("reason", s(&t.reason))
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
    })
}

pub(crate) fn heartbeat_item(hb: &ShardHeartbeat) -> Item {
    ItemBuilder::default()
        .set("pk", s(HEARTBEAT_PK))
        .set("sk", s(&hb.shard_id))
        .set("at", ms(hb.at))
        .set("assets", n(hb.assets))
        .opt("last_event_at", hb.last_event_at.map(ms))
        .set("reconnects", n(hb.reconnects))
        .set("expires_at", expires(hb.at, HEARTBEAT_TTL_DAYS))
        .build()
}

fn heartbeat_from_item(item: &Item, what: String) -> Result<ShardHeartbeat> {
    let r = Read::new(item, what);
    Ok(ShardHeartbeat {
        shard_id: r.s("sk")?,
        at: r.ts("at")?,
        assets: r.n("assets")?,
        last_event_at: r.opt_ts("last_event_at")?,
        reconnects: r.n("reconnects")?,
    })
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
}

fn what(table: &str, item: &Item) -> String {
    let key = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{table} item {}/{}", key("pk"), key("sk"))
}

impl OpsStore for AwsStore {
    async fn put_task_run(&self, run: &TaskRun) -> Result<()> {
        self.put_ops_item(run_item(run)?).await
    }

    async fn recent_task_runs(&self, limit: usize) -> Result<Vec<TaskRun>> {
        let table = &self.names.ops_table;
        self.recent("run", limit)
            .await?
            .iter()
            .map(|item| run_from_item(item, what(table, item)))
            .collect()
    }

    async fn put_transitions(&self, t: &[TierTransition]) -> Result<()> {
        let items = super::markets::last_per_key(t, |t| {
            format!("{}#{}", t.at.timestamp_millis(), t.condition_id)
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

    async fn put_heartbeat(&self, hb: &ShardHeartbeat) -> Result<()> {
        self.put_ops_item(heartbeat_item(hb)).await
    }

    async fn heartbeats(&self) -> Result<Vec<ShardHeartbeat>> {
        let table = &self.names.ops_table;
        let now = self.now().timestamp();
        let mut out = Vec::new();
        for item in self
            .query_partition(HEARTBEAT_PK, None, false, usize::MAX)
            .await?
        {
            let what = what(table, &item);
            // TTL deletes late; an item past its expiry is a shard that stopped a day ago.
            let expires: i64 = Read::new(&item, what.clone()).n("expires_at")?;
            if expires > now {
                out.push(heartbeat_from_item(&item, what)?);
            }
        }
        Ok(out)
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
        };
        let item = transition_item(&t);
        assert_eq!(item["pk"].as_s().unwrap(), "transition#20261120");
        assert_eq!(item["sk"].as_s().unwrap(), "1795154400007#0xabc");
        assert_eq!(transition_from_item(&item, "x".into()).unwrap(), t);

        let c = Coverage {
            tier: Tier::T4,
            tick_ts: at("2026-11-20T23:59:45Z"),
            expected: 10,
            written: 9,
            missing: 1,
            skipped: false,
        };
        let item = coverage_item(&c);
        assert_eq!(item["pk"].as_s().unwrap(), "coverage#20261120");
        assert_eq!(item["sk"].as_s().unwrap(), "1795219185000#4");
        assert_eq!(coverage_from_item(&item, "x".into()).unwrap(), c);
        // Zero padding keeps string order numeric for early times too.
        assert!(ms_key(at("1970-01-01T00:00:01Z")) < ms_key(at("2026-11-20T00:00:00Z")));
        assert_eq!(ms_key(at("1970-01-01T00:00:01Z")), "0000000001000");
    }

    #[test]
    fn given_a_heartbeat_then_it_is_keyed_by_shard_in_one_partition_and_expires_a_day_later() {
        let mut hb = crate::contract::heartbeat("shard-07", "2026-11-20T22:30:15.250Z", 200, 9);
        let item = heartbeat_item(&hb);
        assert_eq!(item["pk"].as_s().unwrap(), "heartbeat");
        assert_eq!(item["sk"].as_s().unwrap(), "shard-07");
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires, at("2026-11-21T22:30:15Z").timestamp());
        assert_eq!(heartbeat_from_item(&item, "x".into()).unwrap(), hb);
        hb.last_event_at = None;
        let item = heartbeat_item(&hb);
        assert!(!item.contains_key("last_event_at"), "absent, not NULL");
        assert_eq!(heartbeat_from_item(&item, "x".into()).unwrap(), hb);
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
