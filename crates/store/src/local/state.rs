//! The SQLite schema and the state ports (markets, latest, ops) on it. Timestamps are epoch
//! milliseconds, decimals TEXT (exact), tiers their number.

use super::LocalStore;
use crate::error::{Result, StoreError};
use crate::ports::{LatestStore, MarketStore, OpsStore};
use polytape_core::ops::{
    Coverage, LatestTier, ShardHeartbeat, TaskRun, TaskStatus, TierTransition,
};
use polytape_core::{Market, Tier, Ts};
use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Task runs are kept this long after they started (DynamoDB TTL in the cloud).
const TASK_RUN_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// A shard's heartbeat is kept this long after it was written (DynamoDB TTL in the cloud).
const HEARTBEAT_TTL_MS: i64 = 24 * 3600 * 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS markets (
    condition_id TEXT PRIMARY KEY,
    question     TEXT NOT NULL,
    slug         TEXT,
    yes_token_id TEXT NOT NULL,
    no_token_id  TEXT NOT NULL,
    outcome_0    TEXT NOT NULL,
    outcome_1    TEXT NOT NULL,
    end_date     INTEGER NOT NULL,
    tier         INTEGER,
    active       INTEGER NOT NULL,
    resolved     INTEGER NOT NULL,
    outcome      TEXT,
    first_seen   INTEGER NOT NULL,
    category     TEXT,
    neg_risk     INTEGER NOT NULL,
    volume_24h   TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS markets_active_tier ON markets (active, tier, condition_id);

CREATE TABLE IF NOT EXISTS latest (
    tier    INTEGER PRIMARY KEY,
    tick_ts INTEGER NOT NULL,
    body    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS task_runs (
    id          TEXT PRIMARY KEY,
    task        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_runs_started_at ON task_runs (started_at);
CREATE INDEX IF NOT EXISTS task_runs_expires_at ON task_runs (expires_at);

CREATE TABLE IF NOT EXISTS tier_transitions (
    condition_id TEXT NOT NULL,
    at           INTEGER NOT NULL,
    from_tier    INTEGER,
    to_tier      INTEGER,
    reason       TEXT NOT NULL,
    PRIMARY KEY (condition_id, at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tier_transitions_at ON tier_transitions (at);

CREATE TABLE IF NOT EXISTS coverage (
    tier     INTEGER NOT NULL,
    tick_ts  INTEGER NOT NULL,
    expected INTEGER NOT NULL,
    written  INTEGER NOT NULL,
    missing  INTEGER NOT NULL,
    skipped  INTEGER NOT NULL,
    PRIMARY KEY (tier, tick_ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coverage_tick_ts ON coverage (tick_ts, tier);

CREATE TABLE IF NOT EXISTS heartbeats (
    shard_id      TEXT PRIMARY KEY,
    at            INTEGER NOT NULL,
    assets        INTEGER NOT NULL,
    last_event_at INTEGER,
    reconnects    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Opens the database in WAL mode (readers do not block the writer; a crash loses nothing
/// committed) and creates the tables.
pub(super) fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Encode(format!(
            "{}: journal_mode is {mode}, expected wal",
            path.display()
        )));
    }
    // NORMAL is durable in WAL mode except for the last transactions on power loss.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn ms(t: Ts) -> i64 {
    t.timestamp_millis()
}

fn ts(column: &str, ms: i64) -> rusqlite::Result<Ts> {
    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| bad_column(column, ms))
}

fn tier_of(column: &str, n: Option<i64>) -> rusqlite::Result<Option<Tier>> {
    n.map(|n| {
        u8::try_from(n)
            .ok()
            .and_then(|n| Tier::try_from(n).ok())
            .ok_or_else(|| bad_column(column, n))
    })
    .transpose()
}

fn tier_num(t: Option<Tier>) -> Option<i64> {
    t.map(|t| i64::from(t.number()))
}

fn u32_of(column: &str, n: i64) -> rusqlite::Result<u32> {
    u32::try_from(n).map_err(|_| bad_column(column, n))
}

fn bad_column(column: &str, value: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Integer,
        format!("{column}: unexpected stored value {value}").into(),
    )
}

const MARKET_COLUMNS: &str = "condition_id, question, slug, yes_token_id, no_token_id, \
    outcome_0, outcome_1, end_date, tier, active, resolved, outcome, first_seen, category, \
    neg_risk, volume_24h";

fn market_from_row(r: &Row<'_>) -> rusqlite::Result<Market> {
    let volume_24h: Option<String> = r.get(15)?;
    let volume_24h = volume_24h
        .map(|s| {
            Decimal::from_str(&s).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    15,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
        })
        .transpose()?;
    Ok(Market {
        condition_id: r.get(0)?,
        question: r.get(1)?,
        slug: r.get(2)?,
        yes_token_id: r.get(3)?,
        no_token_id: r.get(4)?,
        outcomes: [r.get(5)?, r.get(6)?],
        end_date: ts("end_date", r.get(7)?)?,
        tier: tier_of("tier", r.get(8)?)?,
        active: r.get(9)?,
        resolved: r.get(10)?,
        outcome: r.get(11)?,
        first_seen: ts("first_seen", r.get(12)?)?,
        category: r.get(13)?,
        neg_risk: r.get(14)?,
        volume_24h,
    })
}

fn upsert_markets(conn: &mut Connection, markets: &[Market]) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO markets ({MARKET_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        ))?;
        for m in markets {
            stmt.execute(params![
                m.condition_id,
                m.question,
                m.slug,
                m.yes_token_id,
                m.no_token_id,
                m.outcomes[0],
                m.outcomes[1],
                ms(m.end_date),
                tier_num(m.tier),
                m.active,
                m.resolved,
                m.outcome,
                ms(m.first_seen),
                m.category,
                m.neg_risk,
                m.volume_24h.map(|d| d.to_string()),
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn query_markets(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Market>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MARKET_COLUMNS} FROM markets WHERE {filter} ORDER BY condition_id"
    ))?;
    let rows = stmt.query_map(params, market_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn count_by_tier(conn: &Connection) -> Result<BTreeMap<Option<Tier>, u64>> {
    let mut stmt =
        conn.prepare_cached("SELECT tier, COUNT(*) FROM markets WHERE active = 1 GROUP BY tier")?;
    let rows = stmt.query_map([], |r| {
        let tier = tier_of("tier", r.get(0)?)?;
        let n: i64 = r.get(1)?;
        Ok((tier, n.unsigned_abs()))
    })?;
    Ok(rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()?)
}

fn put_task_run(conn: &mut Connection, run: &TaskRun) -> Result<()> {
    let status = match serde_json::to_value(run.status)? {
        serde_json::Value::String(s) => s,
        other => return Err(StoreError::Encode(format!("task status as {other}"))),
    };
    let detail = serde_json::to_string(&run.detail)?;
    let started = ms(run.started_at);
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO task_runs \
         (id, task, started_at, finished_at, status, detail, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.id,
            run.task,
            started,
            ms(run.finished_at),
            status,
            detail,
            started.saturating_add(TASK_RUN_TTL_MS)
        ],
    )?;
    // Expiry is measured against the run just written rather than the wall clock, so the
    // simulator's clock and tests with fixed times behave like production's TTL.
    tx.execute(
        "DELETE FROM task_runs WHERE expires_at <= ?1",
        params![started],
    )?;
    tx.commit()?;
    Ok(())
}

fn recent_task_runs(conn: &Connection, limit: usize) -> Result<Vec<TaskRun>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, task, started_at, finished_at, status, detail FROM task_runs \
         ORDER BY started_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![sql_limit(limit)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            ts("started_at", r.get(2)?)?,
            ts("finished_at", r.get(3)?)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut runs = Vec::new();
    for row in rows {
        let (id, task, started_at, finished_at, status, detail) = row?;
        let status: TaskStatus = serde_json::from_value(serde_json::Value::String(status))?;
        runs.push(TaskRun {
            id,
            task,
            started_at,
            finished_at,
            status,
            detail: serde_json::from_str(&detail)?,
        });
    }
    Ok(runs)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn put_transitions(conn: &mut Connection, transitions: &[TierTransition]) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO tier_transitions (condition_id, at, from_tier, to_tier, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for t in transitions {
            stmt.execute(params![
                t.condition_id,
                ms(t.at),
                tier_num(t.from_tier),
                tier_num(t.to_tier),
                t.reason
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn recent_transitions(conn: &Connection, limit: usize) -> Result<Vec<TierTransition>> {
    let mut stmt = conn.prepare_cached(
        "SELECT condition_id, at, from_tier, to_tier, reason FROM tier_transitions \
         ORDER BY at DESC, condition_id LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![sql_limit(limit)], |r| {
        Ok(TierTransition {
            condition_id: r.get(0)?,
            at: ts("at", r.get(1)?)?,
            from_tier: tier_of("from_tier", r.get(2)?)?,
            to_tier: tier_of("to_tier", r.get(3)?)?,
            reason: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn put_coverage(conn: &Connection, c: &Coverage) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO coverage (tier, tick_ts, expected, written, missing, skipped) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            c.tier.number(),
            ms(c.tick_ts),
            c.expected,
            c.written,
            c.missing,
            c.skipped
        ],
    )?;
    Ok(())
}

fn coverage_since(conn: &Connection, since: Ts) -> Result<Vec<Coverage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT tier, tick_ts, expected, written, missing, skipped FROM coverage \
         WHERE tick_ts >= ?1 ORDER BY tick_ts, tier",
    )?;
    let rows = stmt.query_map(params![ms(since)], |r| {
        let tier = tier_of("tier", Some(r.get(0)?))?.ok_or_else(|| bad_column("tier", "NULL"))?;
        Ok(Coverage {
            tier,
            tick_ts: ts("tick_ts", r.get(1)?)?,
            expected: u32_of("expected", r.get(2)?)?,
            written: u32_of("written", r.get(3)?)?,
            missing: u32_of("missing", r.get(4)?)?,
            skipped: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Writes the tier's Latest row unless the stored one is of a newer tick, in one statement;
/// true when the row was written.
fn put_latest(conn: &Connection, tier: u8, tick_ms: i64, body: &str) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO latest (tier, tick_ts, body) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tier) DO UPDATE SET tick_ts = excluded.tick_ts, body = excluded.body \
         WHERE latest.tick_ts <= excluded.tick_ts",
        params![tier, tick_ms, body],
    )?;
    Ok(changed > 0)
}

fn put_heartbeat(conn: &mut Connection, hb: &ShardHeartbeat) -> Result<()> {
    let reconnects = i64::try_from(hb.reconnects).map_err(|_| {
        StoreError::Encode(format!(
            "heartbeat of {}: {} reconnects do not fit SQLite's INTEGER",
            hb.shard_id, hb.reconnects
        ))
    })?;
    let at = ms(hb.at);
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO heartbeats \
         (shard_id, at, assets, last_event_at, reconnects, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            hb.shard_id,
            at,
            hb.assets,
            hb.last_event_at.map(ms),
            reconnects,
            at.saturating_add(HEARTBEAT_TTL_MS)
        ],
    )?;
    // As for task runs, expiry is measured against the heartbeat just written, not the wall
    // clock: a shard silent for a day drops out, whatever clock the simulator runs on.
    tx.execute("DELETE FROM heartbeats WHERE expires_at <= ?1", params![at])?;
    tx.commit()?;
    Ok(())
}

fn heartbeats(conn: &Connection) -> Result<Vec<ShardHeartbeat>> {
    let mut stmt = conn.prepare_cached(
        "SELECT shard_id, at, assets, last_event_at, reconnects FROM heartbeats \
         ORDER BY shard_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let reconnects: i64 = r.get(4)?;
        Ok(ShardHeartbeat {
            shard_id: r.get(0)?,
            at: ts("at", r.get(1)?)?,
            assets: u32_of("assets", r.get(2)?)?,
            last_event_at: r
                .get::<_, Option<i64>>(3)?
                .map(|v| ts("last_event_at", v))
                .transpose()?,
            reconnects: u64::try_from(reconnects)
                .map_err(|_| bad_column("reconnects", reconnects))?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl MarketStore for LocalStore {
    async fn upsert_markets(&self, markets: &[Market]) -> Result<()> {
        if markets.is_empty() {
            return Ok(());
        }
        let markets = markets.to_vec();
        self.with_conn(move |c| upsert_markets(c, &markets)).await
    }

    async fn markets_in_tier(&self, tier: Tier) -> Result<Vec<Market>> {
        self.with_conn(move |c| {
            query_markets(c, "active = 1 AND tier = ?1", params![tier.number()])
        })
        .await
    }

    async fn active_markets(&self) -> Result<Vec<Market>> {
        self.with_conn(|c| query_markets(c, "active = 1", [])).await
    }

    async fn all_markets(&self) -> Result<Vec<Market>> {
        self.with_conn(|c| query_markets(c, "1 = 1", [])).await
    }

    async fn get_market(&self, condition_id: &str) -> Result<Option<Market>> {
        let id = condition_id.to_string();
        self.with_conn(move |c| {
            Ok(query_markets(c, "condition_id = ?1", params![id])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn count_by_tier(&self) -> Result<BTreeMap<Option<Tier>, u64>> {
        self.with_conn(|c| count_by_tier(c)).await
    }
}

impl LatestStore for LocalStore {
    async fn get_latest(&self, tier: Tier) -> Result<Option<LatestTier>> {
        self.with_conn(move |c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM latest WHERE tier = ?1",
                    params![tier.number()],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(body
                .map(|b| serde_json::from_str::<LatestTier>(&b))
                .transpose()?)
        })
        .await
    }

    async fn put_latest(&self, latest: &LatestTier) -> Result<bool> {
        let body = serde_json::to_string(latest)?;
        let (tier, tick_ms) = (latest.tier.number(), ms(latest.tick_ts));
        self.with_conn(move |c| put_latest(c, tier, tick_ms, &body))
            .await
    }
}

impl OpsStore for LocalStore {
    async fn put_task_run(&self, run: &TaskRun) -> Result<()> {
        let run = run.clone();
        self.with_conn(move |c| put_task_run(c, &run)).await
    }

    async fn recent_task_runs(&self, limit: usize) -> Result<Vec<TaskRun>> {
        self.with_conn(move |c| recent_task_runs(c, limit)).await
    }

    async fn put_transitions(&self, t: &[TierTransition]) -> Result<()> {
        if t.is_empty() {
            return Ok(());
        }
        let t = t.to_vec();
        self.with_conn(move |c| put_transitions(c, &t)).await
    }

    async fn recent_transitions(&self, limit: usize) -> Result<Vec<TierTransition>> {
        self.with_conn(move |c| recent_transitions(c, limit)).await
    }

    async fn put_coverage(&self, c: &Coverage) -> Result<()> {
        let cov = c.clone();
        self.with_conn(move |c| put_coverage(c, &cov)).await
    }

    async fn coverage_since(&self, since: Ts) -> Result<Vec<Coverage>> {
        self.with_conn(move |c| coverage_since(c, since)).await
    }

    async fn put_heartbeat(&self, hb: &ShardHeartbeat) -> Result<()> {
        let hb = hb.clone();
        self.with_conn(move |c| put_heartbeat(c, &hb)).await
    }

    async fn heartbeats(&self) -> Result<Vec<ShardHeartbeat>> {
        self.with_conn(|c| heartbeats(c)).await
    }
}
