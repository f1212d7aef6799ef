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

/// A market moving from one tier to another (or out of sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierTransition {
    pub condition_id: String,
    pub from_tier: Option<Tier>,
    pub to_tier: Option<Tier>,
    pub at: Ts,
    pub reason: String,
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
}

/// The Latest item of one tier: rewritten once per tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestTier {
    pub tier: Tier,
    pub tick_ts: Ts,
    pub markets: Vec<LatestEntry>,
}

/// The last sign of life of one WebSocket shard: written every few seconds while the shard
/// runs, one record per shard (the newest replaces the previous), read by the status API and
/// the heartbeat-missing alarm.
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
