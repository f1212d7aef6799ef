//! Operational records: what ran, what moved between tiers, how much of each tick was written,
//! and the latest headline values per tier that the status API shows.

use crate::tier::Tier;
use crate::Ts;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Outcome of one run of a task (discovery, a snapshot tick, re-tier, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    /// Deterministic id, time first: `<scheduled time %Y%m%dT%H%M%SZ>#<task>[#<detail>]`, e.g.
    /// `20261120T223015Z#snapshot#T4`. A retried run replaces its record, and ids sort by time
    /// (the DynamoDB adapter keys task runs by their id and lists them newest first).
    pub id: String,
    pub task: String,
    pub started_at: Ts,
    pub finished_at: Ts,
    pub status: TaskStatus,
    /// Counters and notes of the run (markets seen, rows written, rejected values, …).
    pub detail: serde_json::Value,
    /// Why the run failed (or what went wrong in a partial run), for people and alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a task stands, across its runs: one record per task name, updated by every run
/// ([`TaskRun`]) it records, and the lease that keeps two runs of the task from overlapping.
/// What `/health`, discovery's retry and the task status API read, without listing runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub task: String,
    /// The last run recorded (its id, times, status and error).
    pub last_run_id: Option<String>,
    pub last_started_at: Option<Ts>,
    pub last_finished_at: Option<Ts>,
    pub last_status: Option<TaskStatus>,
    pub last_error: Option<String>,
    /// When a run last ended without failing (ok, partial or skipped).
    pub last_success_at: Option<Ts>,
    /// Failed runs since the last one that did not fail.
    pub consecutive_failures: u32,
    /// When the first run of this task was recorded: "since start" for a task that never
    /// succeeded.
    pub first_seen_at: Option<Ts>,
    /// Held by a run in progress until this time ([`TaskState::is_leased_at`]).
    pub lease_until: Option<Ts>,
}

impl TaskState {
    /// An empty state for `task` (no run recorded yet).
    pub fn new(task: &str) -> TaskState {
        TaskState {
            task: task.to_string(),
            ..TaskState::default()
        }
    }

    /// The state after `run` is recorded: the run becomes the last one; a run that did not fail
    /// is the last success and resets the failure count; the lease is released.
    pub fn record(&mut self, run: &TaskRun) {
        self.last_run_id = Some(run.id.clone());
        self.last_started_at = Some(run.started_at);
        self.last_finished_at = Some(run.finished_at);
        self.last_status = Some(run.status);
        self.last_error = run.error.clone();
        if run.status == TaskStatus::Failed {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        } else {
            self.consecutive_failures = 0;
            self.last_success_at = Some(run.finished_at);
        }
        self.first_seen_at = Some(
            self.first_seen_at
                .map_or(run.started_at, |f| f.min(run.started_at)),
        );
        self.lease_until = None;
    }

    /// True while a run holds the task's lease at `now`.
    pub fn is_leased_at(&self, now: Ts) -> bool {
        self.lease_until.is_some_and(|u| u > now)
    }
}

/// How a task run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Ok,
    /// The run did its work but some inputs were rejected or some requests failed.
    Partial,
    /// Started too late to describe its moment: nothing written, counted.
    Skipped,
    Failed,
}

/// A change of a tracked market: into sampling, from one tier to another, out of sampling,
/// or of its result — with its reason ([`reason`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierTransition {
    pub condition_id: String,
    pub from_tier: Option<Tier>,
    pub to_tier: Option<Tier>,
    pub at: Ts,
    pub reason: String,
    /// Hours from `at` to the market's end date (negative past it).
    #[serde(default)]
    pub hours_to_close: Option<f64>,
}

impl TierTransition {
    /// The transition of `market` (tier `from` → `to`) at `at`, for `reason`.
    pub fn of(
        market: &crate::Market,
        from: Option<Tier>,
        to: Option<Tier>,
        at: Ts,
        reason: &str,
    ) -> TierTransition {
        TierTransition {
            condition_id: market.condition_id.clone(),
            from_tier: from,
            to_tier: to,
            at,
            reason: reason.to_string(),
            hours_to_close: Some(crate::tier::hours_between(at, market.end_date)),
        }
    }
}

/// How many tracked markets' results stand where: what `/api/stats` shows. Exact when
/// counted from every market (hourly, with the `markets` dimension); each resolutions run in
/// between sets `pending` exactly and adds what it resolved or gave up on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultCounts {
    /// Closed (or past their end) and awaiting a final result.
    pub pending: u64,
    pub resolved: u64,
    /// Of the resolved: INVALID (a 50/50 split).
    pub invalid: u64,
    /// No final result 14 days past the end date.
    pub unresolved: u64,
    /// Of the pending: gone from Gamma.
    pub delisted: u64,
    /// When these were counted.
    pub as_of: Option<Ts>,
    /// When every market was last counted (the rest is incremental since).
    pub full_count_at: Option<Ts>,
}

impl ResultCounts {
    /// Every market counted at `now`: pending are those awaiting a result and the active ones
    /// past their end date.
    pub fn of<'a>(markets: impl IntoIterator<Item = &'a crate::Market>, now: Ts) -> ResultCounts {
        let mut c = ResultCounts {
            as_of: Some(now),
            full_count_at: Some(now),
            ..ResultCounts::default()
        };
        for m in markets {
            match &m.result {
                crate::MarketResult::Resolved(o) => {
                    c.resolved += 1;
                    c.invalid += u64::from(o.invalid);
                }
                crate::MarketResult::Unresolved => c.unresolved += 1,
                _ if m.awaits_result() || (m.active && m.end_date <= now) => {
                    c.pending += 1;
                    c.delisted += u64::from(m.delisted);
                }
                _ => {}
            }
        }
        c
    }
}

/// The reasons of a [`TierTransition`].
pub mod reason {
    /// First found by discovery.
    pub const DISCOVERED: &str = "discovered";
    /// Its time to close moved it to another tier.
    pub const TIER_CHANGE: &str = "tier change";
    /// Closed on Gamma: sampling stops, its result is asked for.
    pub const CLOSED: &str = "closed";
    /// Its final result was learnt.
    pub const RESOLVED: &str = "resolved";
    /// Still open 24 h past its end date: sampling stops, its result is still asked for.
    pub const EXPIRED: &str = "expired";
    /// Gone from Gamma (neither a `closed=true` nor a default lookup returns it).
    pub const DELISTED: &str = "delisted";
    /// Listed open again after it left sampling.
    pub const RELISTED: &str = "relisted";
    /// No final result 14 days past its end date: no longer asked about.
    pub const UNRESOLVED: &str = "unresolved";
    /// Every reason.
    pub const ALL: [&str; 8] = [
        DISCOVERED,
        TIER_CHANGE,
        CLOSED,
        RESOLVED,
        EXPIRED,
        DELISTED,
        RELISTED,
        UNRESOLVED,
    ];
}

/// Expected vs written rows of one tier tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub tier: Tier,
    pub tick_ts: Ts,
    /// Markets in the tier when the tick ran.
    pub expected: u32,
    /// Rows written.
    pub written: u32,
    /// Markets Gamma did not return this tick.
    pub missing: u32,
    /// True when the whole tick was skipped for starting late.
    pub skipped: bool,
    /// True when the tick failed: an error ended it, or it expected markets and observed none.
    #[serde(default)]
    pub failed: bool,
}

/// Headline values of one market at its tier's latest tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestEntry {
    pub condition_id: String,
    pub price: Option<Decimal>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    pub spread: Option<Decimal>,
    pub volume_24h: Option<Decimal>,
    pub tick_ts: Ts,
    /// Snapshots written for this market in this tier so far.
    pub snapshot_count: u64,
    /// Which of the tier's ticks up to `tick_ts` are already in `snapshot_count`: bit `i` is
    /// the tick `i` intervals before `tick_ts`. Lets ticks be applied in any order, and a
    /// retried tick again, without losing or double-counting one.
    #[serde(default)]
    pub counted: u64,
}

/// The Latest values of one tier: each market's headline values at its newest tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestTier {
    pub tier: Tier,
    /// The newest tick applied.
    pub tick_ts: Ts,
    pub markets: Vec<LatestEntry>,
}

/// What one tick contributes to its tier's Latest values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestUpdate {
    pub tier: Tier,
    pub tick_ts: Ts,
    /// Every market the tick sampled (with a row or not): the tier's members at that tick.
    pub members: Vec<String>,
    /// The values of the markets that got a row (`tick_ts` and `counted` are ignored).
    pub rows: Vec<LatestEntry>,
}

impl LatestTier {
    /// An empty Latest of `tier`.
    pub fn empty(tier: Tier) -> LatestTier {
        LatestTier {
            tier,
            tick_ts: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            markets: Vec::new(),
        }
    }

    /// Applies one tick. Commutative and idempotent over ticks of the tier: whatever the
    /// order in which overlapping ticks land, and however often one is retried, each market's
    /// `snapshot_count` counts each of its ticks once and its values are those of its newest
    /// tick. The newest tick applied decides membership: markets it did not sample have left
    /// the tier and are dropped; an older tick never adds or drops a market.
    pub fn apply(&mut self, u: &LatestUpdate) {
        let interval = i64::from(u.tier.interval_s());
        let newest = u.tick_ts >= self.tick_ts;
        let rows: std::collections::HashMap<&str, &LatestEntry> = u
            .rows
            .iter()
            .map(|r| (r.condition_id.as_str(), r))
            .collect();
        let mut by_id: std::collections::HashMap<String, LatestEntry> =
            std::mem::take(&mut self.markets)
                .into_iter()
                .map(|e| (e.condition_id.clone(), e))
                .collect();
        if newest {
            let members: std::collections::HashSet<&str> =
                u.members.iter().map(String::as_str).collect();
            by_id.retain(|id, _| members.contains(id.as_str()));
            self.tick_ts = u.tick_ts;
            // A member the newest tick could not observe gets an entry without values, so an
            // older tick that did observe it (landing later) still counts it.
            for id in &u.members {
                by_id
                    .entry(id.clone())
                    .or_insert_with(|| LatestEntry::unobserved(id, u.tick_ts));
            }
        }
        for (id, row) in rows {
            if let Some(e) = by_id.get_mut(id) {
                e.count_tick(row, u.tick_ts, interval);
            }
        }
        self.markets = by_id.into_values().collect();
        self.markets
            .sort_by(|a, b| a.condition_id.cmp(&b.condition_id));
    }
}

impl LatestEntry {
    /// A member of the tier at `tick_ts` with no observation yet: no values, no count.
    fn unobserved(condition_id: &str, tick_ts: Ts) -> LatestEntry {
        LatestEntry {
            condition_id: condition_id.to_string(),
            price: None,
            best_bid: None,
            best_ask: None,
            spread: None,
            volume_24h: None,
            tick_ts,
            snapshot_count: 0,
            counted: 0,
        }
    }

    /// Counts the tick at `tick_ts` for this market unless it already is, and takes its values
    /// when it is the newest (or the first observation).
    fn count_tick(&mut self, row: &LatestEntry, tick_ts: Ts, interval_s: i64) {
        if self.snapshot_count == 0 {
            *self = LatestEntry {
                tick_ts,
                snapshot_count: 1,
                counted: 1,
                ..row.clone()
            };
            return;
        }
        let behind = (self.tick_ts - tick_ts)
            .num_seconds()
            .div_euclid(interval_s.max(1));
        if behind < 0 {
            // A newer tick: shift the window forward and take its values.
            let shift = u32::try_from(-behind).unwrap_or(u32::MAX);
            self.counted = self.counted.checked_shl(shift).unwrap_or(0) | 1;
            self.snapshot_count += 1;
            let (count, counted) = (self.snapshot_count, self.counted);
            *self = LatestEntry {
                tick_ts,
                snapshot_count: count,
                counted,
                ..row.clone()
            };
        } else if behind < 64 {
            if behind == 0 {
                // The same tick again (a retry replaces its output): its values, counted once.
                let (count, counted) = (self.snapshot_count, self.counted);
                *self = LatestEntry {
                    tick_ts,
                    snapshot_count: count,
                    counted,
                    ..row.clone()
                };
            }
            let bit = 1u64 << behind;
            if self.counted & bit == 0 {
                self.counted |= bit;
                self.snapshot_count += 1;
            }
        }
        // More than 64 intervals old: a tick that late was skipped, never written; ignore it.
    }
}

/// The last sign of life of one WebSocket shard: written every heartbeat round (15 s) while
/// the shard is open, with every other open shard's in one write that replaces the last round,
/// read by the status API and health's `ws_<shard>` check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHeartbeat {
    /// The shard's stable id within the supervisor (`shard-03`).
    pub shard_id: String,
    /// When the heartbeat was written.
    pub at: Ts,
    /// Asset ids the shard is subscribed to.
    pub assets: u32,
    /// When the shard last received a market event, if it ever did.
    pub last_event_at: Option<Ts>,
    /// Reconnects since the shard started.
    pub reconnects: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        s.parse().unwrap()
    }

    fn row(id: &str, price: i64) -> LatestEntry {
        LatestEntry {
            condition_id: id.to_string(),
            price: Some(Decimal::new(price, 2)),
            best_bid: None,
            best_ask: None,
            spread: None,
            volume_24h: None,
            tick_ts: at("2000-01-01T00:00:00Z"),
            snapshot_count: 0,
            counted: 0,
        }
    }

    fn update(tick: &str, members: &[&str], rows: &[(&str, i64)]) -> LatestUpdate {
        LatestUpdate {
            tier: Tier::T4,
            tick_ts: at(tick),
            members: members.iter().map(|m| m.to_string()).collect(),
            rows: rows.iter().map(|(id, p)| row(id, *p)).collect(),
        }
    }

    fn counts(l: &LatestTier) -> Vec<(String, u64, Option<Decimal>)> {
        l.markets
            .iter()
            .map(|e| (e.condition_id.clone(), e.snapshot_count, e.price))
            .collect()
    }

    #[test]
    fn given_overlapping_ticks_in_any_order_or_retried_then_every_count_is_kept_once() {
        let ticks = [
            update("2026-11-20T10:00:00Z", &["a", "b"], &[("a", 50), ("b", 60)]),
            update("2026-11-20T10:00:15Z", &["a", "b"], &[("a", 51)]),
            update("2026-11-20T10:00:30Z", &["a", "b"], &[("a", 52), ("b", 62)]),
        ];
        let mut in_order = LatestTier::empty(Tier::T4);
        for u in &ticks {
            in_order.apply(u);
        }
        // The 10:00:15 tick lands last (it overlapped the next one), and 10:00:30 is retried.
        let mut shuffled = LatestTier::empty(Tier::T4);
        for u in [&ticks[0], &ticks[2], &ticks[1], &ticks[2]] {
            shuffled.apply(u);
        }
        let want = vec![
            ("a".to_string(), 3, Some(Decimal::new(52, 2))),
            ("b".to_string(), 2, Some(Decimal::new(62, 2))),
        ];
        assert_eq!(counts(&in_order), want);
        assert_eq!(counts(&shuffled), want);
        assert_eq!(shuffled.tick_ts, at("2026-11-20T10:00:30Z"));
    }

    #[test]
    fn given_a_market_that_left_the_tier_then_the_newest_tick_drops_it_and_an_older_one_cannot_bring_it_back(
    ) {
        let mut l = LatestTier::empty(Tier::T4);
        l.apply(&update(
            "2026-11-20T10:00:00Z",
            &["a", "b"],
            &[("a", 50), ("b", 60)],
        ));
        l.apply(&update("2026-11-20T10:00:30Z", &["a"], &[("a", 52)]));
        l.apply(&update(
            "2026-11-20T10:00:15Z",
            &["a", "b"],
            &[("a", 51), ("b", 61)],
        ));
        assert_eq!(
            counts(&l),
            vec![("a".to_string(), 3, Some(Decimal::new(52, 2)))]
        );
    }

    #[test]
    fn given_a_market_the_newest_tick_missed_then_an_older_overlapping_tick_still_counts_it() {
        // b enters the tier at 10:00:15; the 10:00:30 tick (which could not observe b) lands
        // before the slower 10:00:15 tick (which did).
        let mut l = LatestTier::empty(Tier::T4);
        l.apply(&update("2026-11-20T10:00:00Z", &["a"], &[("a", 50)]));
        l.apply(&update("2026-11-20T10:00:30Z", &["a", "b"], &[("a", 52)]));
        assert_eq!(
            counts(&l),
            vec![
                ("a".to_string(), 2, Some(Decimal::new(52, 2))),
                ("b".to_string(), 0, None)
            ],
            "a member not observed yet is listed without values"
        );
        l.apply(&update(
            "2026-11-20T10:00:15Z",
            &["a", "b"],
            &[("a", 51), ("b", 61)],
        ));
        assert_eq!(
            counts(&l),
            vec![
                ("a".to_string(), 3, Some(Decimal::new(52, 2))),
                ("b".to_string(), 1, Some(Decimal::new(61, 2)))
            ]
        );
        // A later tick that observes b again is counted on top, its values newest.
        l.apply(&update("2026-11-20T10:00:45Z", &["a", "b"], &[("b", 63)]));
        assert_eq!(l.markets[1].snapshot_count, 2);
        assert_eq!(l.markets[1].price, Some(Decimal::new(63, 2)));
    }

    #[test]
    fn given_a_member_without_a_row_then_its_older_values_stay() {
        let mut l = LatestTier::empty(Tier::T4);
        l.apply(&update("2026-11-20T10:00:00Z", &["a"], &[("a", 50)]));
        l.apply(&update("2026-11-20T10:00:15Z", &["a"], &[]));
        assert_eq!(l.markets[0].tick_ts, at("2026-11-20T10:00:00Z"));
        assert_eq!(l.markets[0].snapshot_count, 1);
    }

    #[test]
    fn given_runs_then_the_state_counts_failures_until_a_success_and_releases_the_lease() {
        let run = |id: &str, status| TaskRun {
            id: id.to_string(),
            task: "discovery".to_string(),
            started_at: at("2026-11-20T10:00:00Z"),
            finished_at: at("2026-11-20T10:00:05Z"),
            status,
            detail: serde_json::Value::Null,
            error: (status == TaskStatus::Failed).then(|| "gamma: timeout".to_string()),
        };
        let mut s = TaskState::new("discovery");
        s.lease_until = Some(at("2026-11-20T10:05:00Z"));
        s.record(&run("1", TaskStatus::Failed));
        s.record(&run("2", TaskStatus::Failed));
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.last_success_at, None);
        assert_eq!(s.last_error.as_deref(), Some("gamma: timeout"));
        assert!(!s.is_leased_at(at("2026-11-20T10:01:00Z")));
        s.record(&run("3", TaskStatus::Partial));
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.last_success_at, Some(at("2026-11-20T10:00:05Z")));
        assert_eq!(s.first_seen_at, Some(at("2026-11-20T10:00:00Z")));
    }
}
