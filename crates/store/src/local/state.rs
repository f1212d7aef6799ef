//! The SQLite schema and the state ports (markets, latest, ops) on it. Timestamps are epoch
//! milliseconds, decimals TEXT (exact), tiers their number.

use super::LocalStore;
use crate::error::{Result, StoreError};
use crate::ports::{
    CoverageStore, HeartbeatStore, LatestStore, MarketStore, RunQuery, TaskStore, TransitionStore,
};
use polytape_core::ops::{
    Coverage, LatestTier, LatestUpdate, ShardHeartbeat, TaskRun, TaskState, TaskStatus,
    TierTransition,
};
use polytape_core::{Market, MarketResult, Tier, Ts};
use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Task runs are kept this long after they started (DynamoDB TTL in the cloud).
const TASK_RUN_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// A heartbeat's `expires_at`, as DynamoDB's TTL would have it. Stored, not read: each round
/// replaces the last whole, so nothing outlives the next round, and a stopped feed's last round
/// stays until a feed writes again (as before, expiry here is measured against a write, never
/// the wall clock).
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
    volume_24h   TEXT,
    version      INTEGER NOT NULL DEFAULT 0,
    result       TEXT,
    closed_at    INTEGER,
    delisted     INTEGER NOT NULL DEFAULT 0,
    awaiting     INTEGER NOT NULL DEFAULT 0,
    event_id     TEXT,
    fees_enabled INTEGER,
    fee          TEXT
) WITHOUT ROWID;
DROP INDEX IF EXISTS markets_active_tier;
CREATE INDEX IF NOT EXISTS markets_active_end ON markets (active, end_date);
CREATE INDEX IF NOT EXISTS markets_awaiting ON markets (awaiting);

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
    expires_at  INTEGER NOT NULL,
    error       TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_runs_started_at ON task_runs (started_at);
CREATE INDEX IF NOT EXISTS task_runs_expires_at ON task_runs (expires_at);

CREATE TABLE IF NOT EXISTS transitions (
    condition_id   TEXT NOT NULL,
    at             INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    from_tier      INTEGER,
    to_tier        INTEGER,
    hours_to_close REAL,
    PRIMARY KEY (condition_id, at, reason)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transitions_at ON transitions (at);

CREATE TABLE IF NOT EXISTS coverage (
    tier     INTEGER NOT NULL,
    tick_ts  INTEGER NOT NULL,
    expected INTEGER NOT NULL,
    written  INTEGER NOT NULL,
    missing  INTEGER NOT NULL,
    skipped  INTEGER NOT NULL,
    failed   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tier, tick_ts)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS task_states (
    task TEXT PRIMARY KEY,
    body TEXT NOT NULL
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
    migrate(&conn)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Columns added since the first release, for databases created before them (`CREATE TABLE
/// IF NOT EXISTS` leaves an existing table as it was).
const ADDED_COLUMNS: [(&str, &str, &str); 10] = [
    // Rows stored before versions existed are stored rows: version 1, not 0 ("not stored").
    ("markets", "version", "INTEGER NOT NULL DEFAULT 1"),
    ("task_runs", "error", "TEXT"),
    ("coverage", "failed", "INTEGER NOT NULL DEFAULT 0"),
    // NULL reads as an open result; the resolutions duty asks about ended markets again.
    ("markets", "result", "TEXT"),
    ("markets", "closed_at", "INTEGER"),
    ("markets", "delisted", "INTEGER NOT NULL DEFAULT 0"),
    // Inactive markets stored before results were tracked are awaiting one.
    ("markets", "awaiting", "INTEGER NOT NULL DEFAULT 0"),
    // NULL: not known; discovery fills them in on its next run (a change it writes).
    ("markets", "event_id", "TEXT"),
    ("markets", "fees_enabled", "INTEGER"),
    ("markets", "fee", "TEXT"),
];

/// Adds the [`ADDED_COLUMNS`] an existing database lacks; a new database gets them from
/// [`SCHEMA`].
fn migrate(conn: &Connection) -> Result<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let columns = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if !columns.is_empty() && !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
            if column == "awaiting" {
                conn.execute_batch("UPDATE markets SET awaiting = 1 WHERE active = 0")?;
            }
        }
    }
    // Transitions were keyed by (condition_id, at): two changes of a market in one run (closed,
    // then resolved) collided. Copied into `transitions`, keyed with the reason too.
    let old: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tier_transitions'",
        [],
        |r| r.get(0),
    )?;
    if old > 0 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS transitions (
                 condition_id TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL,
                 from_tier INTEGER, to_tier INTEGER, hours_to_close REAL,
                 PRIMARY KEY (condition_id, at, reason)) WITHOUT ROWID;
             INSERT OR IGNORE INTO transitions (condition_id, at, reason, from_tier, to_tier)
                 SELECT condition_id, at, reason, from_tier, to_tier FROM tier_transitions;
             DROP TABLE tier_transitions;
             COMMIT;",
        )?;
    }
    Ok(())
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
    neg_risk, volume_24h, version, result, closed_at, delisted, awaiting, event_id, fees_enabled, \
    fee";

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
        result: match r.get::<_, Option<String>>(17)? {
            None => MarketResult::Open,
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    17,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
        },
        closed_at: r
            .get::<_, Option<i64>>(18)?
            .map(|t| ts("closed_at", t))
            .transpose()?,
        delisted: r.get(19)?,
        first_seen: ts("first_seen", r.get(12)?)?,
        category: r.get(13)?,
        neg_risk: r.get(14)?,
        volume_24h,
        event_id: r.get(21)?,
        fees_enabled: r.get(22)?,
        fee: match r.get::<_, Option<String>>(23)? {
            None => None,
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    23,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?),
        },
        version: u64::try_from(r.get::<_, i64>(16)?)
            .map_err(|_| bad_column("version", "negative"))?,
    })
}

/// Writes each market whose stored version is still `m.version` (absent when 0), storing it
/// with the version incremented, in one transaction; returns the ids left unwritten.
fn write_markets(conn: &mut Connection, markets: &[Market]) -> Result<Vec<String>> {
    let tx = conn.transaction()?;
    let mut conflicts = Vec::new();
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO markets ({MARKET_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 1, \
             ?17, ?18, ?19, ?20, ?21, ?22, ?23) \
             ON CONFLICT (condition_id) DO NOTHING"
        ))?;
        let mut update = tx.prepare_cached(
            "UPDATE markets SET question = ?2, slug = ?3, yes_token_id = ?4, no_token_id = ?5, \
             outcome_0 = ?6, outcome_1 = ?7, end_date = ?8, tier = ?9, active = ?10, \
             resolved = ?11, outcome = ?12, first_seen = ?13, category = ?14, neg_risk = ?15, \
             volume_24h = ?16, result = ?17, closed_at = ?18, delisted = ?19, awaiting = ?20, \
             event_id = ?21, fees_enabled = ?22, fee = ?23, \
             version = ?24 + 1 WHERE condition_id = ?1 AND version = ?24",
        )?;
        for m in markets {
            let version = i64::try_from(m.version).map_err(|_| {
                StoreError::Encode(format!(
                    "market {}: version {} too large",
                    m.condition_id, m.version
                ))
            })?;
            let result = serde_json::to_string(&m.result)
                .map_err(|e| StoreError::Encode(format!("market {}: {e}", m.condition_id)))?;
            let fee = m
                .fee
                .map(|f| serde_json::to_string(&f))
                .transpose()
                .map_err(|e| StoreError::Encode(format!("market {}: {e}", m.condition_id)))?;
            let values = params![
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
                m.is_resolved(),
                m.winning_outcome(),
                ms(m.first_seen),
                m.category,
                m.neg_risk,
                m.volume_24h.map(|d| d.to_string()),
                result,
                m.closed_at.map(ms),
                m.delisted,
                m.awaits_result(),
                m.event_id,
                m.fees_enabled,
                fee,
            ];
            let written = if m.version == 0 {
                insert.execute(values)?
            } else {
                let mut with_version: Vec<&dyn rusqlite::ToSql> = values.to_vec();
                with_version.push(&version);
                update.execute(with_version.as_slice())?
            };
            if written == 0 {
                conflicts.push(m.condition_id.clone());
            }
        }
    }
    tx.commit()?;
    Ok(conflicts)
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

/// The `WHERE` clause and bounds of the active markets whose end date lies in
/// `(after, up_to]` (no upper bound when `up_to` is `None`).
fn ending_filter(after: Ts, up_to: Option<Ts>) -> (&'static str, i64, i64) {
    (
        "active = 1 AND end_date > ?1 AND end_date <= ?2",
        ms(after),
        up_to.map_or(i64::MAX, ms),
    )
}

/// The `WHERE` clause and bounds of the active markets in `tier` at `at`.
fn due_filter(tier: Tier, at: Ts) -> (&'static str, i64, i64) {
    let (after, up_to) = tier.end_window(at);
    ending_filter(after, up_to)
}

fn count_due(conn: &Connection, at: Ts) -> Result<BTreeMap<Option<Tier>, u64>> {
    let mut out = BTreeMap::new();
    for tier in Tier::ALL {
        let (filter, after, up_to) = due_filter(tier, at);
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM markets WHERE {filter}"),
            params![after, up_to],
            |r| r.get(0),
        )?;
        if n > 0 {
            out.insert(Some(tier), n.unsigned_abs());
        }
    }
    let (expired_up_to, _) = Tier::T4.end_window(at);
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM markets WHERE active = 1 AND end_date <= ?1",
        params![ms(expired_up_to)],
        |r| r.get(0),
    )?;
    if n > 0 {
        out.insert(None, n.unsigned_abs());
    }
    Ok(out)
}

fn put_task_run(conn: &mut Connection, run: &TaskRun) -> Result<()> {
    let status = status_text(run.status)?;
    let detail = serde_json::to_string(&run.detail)?;
    let started = ms(run.started_at);
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO task_runs \
         (id, task, started_at, finished_at, status, detail, expires_at, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            run.id,
            run.task,
            started,
            ms(run.finished_at),
            status,
            detail,
            started.saturating_add(TASK_RUN_TTL_MS),
            run.error,
        ],
    )?;
    // Expiry is measured against the run just written rather than the wall clock, so the
    // simulator's clock and tests with fixed times behave like production's TTL.
    tx.execute(
        "DELETE FROM task_runs WHERE expires_at <= ?1",
        params![started],
    )?;
    let mut state = task_state(&tx, &run.task)?.unwrap_or_else(|| TaskState::new(&run.task));
    state.record(run);
    put_task_state(&tx, &state)?;
    tx.commit()?;
    Ok(())
}

fn status_text(status: TaskStatus) -> Result<String> {
    match serde_json::to_value(status)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(StoreError::Encode(format!("task status as {other}"))),
    }
}

fn task_state(conn: &Connection, task: &str) -> Result<Option<TaskState>> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM task_states WHERE task = ?1",
            params![task],
            |r| r.get(0),
        )
        .optional()?;
    Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
}

fn put_task_state(conn: &Connection, state: &TaskState) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO task_states (task, body) VALUES (?1, ?2)",
        params![state.task, serde_json::to_string(state)?],
    )?;
    Ok(())
}

fn task_states(conn: &Connection) -> Result<Vec<TaskState>> {
    let mut stmt = conn.prepare_cached("SELECT body FROM task_states ORDER BY task")?;
    let bodies = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    bodies
        .iter()
        .map(|b| Ok(serde_json::from_str(b)?))
        .collect()
}

/// Takes the lease when nobody holds it at `now`, in one transaction.
fn claim_task(conn: &mut Connection, task: &str, now: Ts, until: Ts) -> Result<bool> {
    let tx = conn.transaction()?;
    let mut state = task_state(&tx, task)?.unwrap_or_else(|| TaskState::new(task));
    if state.is_leased_at(now) {
        return Ok(false);
    }
    state.lease_until = Some(until);
    state.first_seen_at.get_or_insert(now);
    put_task_state(&tx, &state)?;
    tx.commit()?;
    Ok(true)
}

fn task_runs_since(conn: &Connection, since: Ts) -> Result<Vec<TaskRun>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, task, started_at, finished_at, status, detail, error FROM task_runs \
         WHERE started_at >= ?1 ORDER BY started_at DESC, id DESC",
    )?;
    runs_of(&mut stmt, params![ms(since)])
}

/// One page of runs: the query's conditions and limit in the SQL (the primary key orders by id).
fn task_runs_page(conn: &Connection, q: &RunQuery) -> Result<Vec<TaskRun>> {
    let status = q
        .status
        .map(|s| serde_json::to_value(s).map(|v| v.as_str().unwrap_or_default().to_string()))
        .transpose()?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, task, started_at, finished_at, status, detail, error FROM task_runs \
         WHERE started_at >= ?1 AND (?2 IS NULL OR id < ?2) AND (?3 IS NULL OR task = ?3) \
         AND (?4 IS NULL OR status = ?4) ORDER BY id DESC LIMIT ?5",
    )?;
    runs_of(
        &mut stmt,
        params![ms(q.since), q.before, q.task, status, sql_limit(q.limit)],
    )
}

fn runs_of(
    stmt: &mut rusqlite::CachedStatement<'_>,
    p: impl rusqlite::Params,
) -> Result<Vec<TaskRun>> {
    let rows = stmt.query_map(p, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            ts("started_at", r.get(2)?)?,
            ts("finished_at", r.get(3)?)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut runs = Vec::new();
    for row in rows {
        let (id, task, started_at, finished_at, status, detail, error) = row?;
        let status: TaskStatus = serde_json::from_value(serde_json::Value::String(status))?;
        runs.push(TaskRun {
            id,
            task,
            started_at,
            finished_at,
            status,
            detail: serde_json::from_str(&detail)?,
            error,
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
            "INSERT OR REPLACE INTO transitions \
             (condition_id, at, from_tier, to_tier, reason, hours_to_close) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for t in transitions {
            stmt.execute(params![
                t.condition_id,
                ms(t.at),
                tier_num(t.from_tier),
                tier_num(t.to_tier),
                t.reason,
                t.hours_to_close,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn recent_transitions(conn: &Connection, limit: usize) -> Result<Vec<TierTransition>> {
    let mut stmt = conn.prepare_cached(
        "SELECT condition_id, at, from_tier, to_tier, reason, hours_to_close FROM transitions \
         ORDER BY at DESC, condition_id DESC, reason DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![sql_limit(limit)], |r| {
        Ok(TierTransition {
            condition_id: r.get(0)?,
            at: ts("at", r.get(1)?)?,
            from_tier: tier_of("from_tier", r.get(2)?)?,
            to_tier: tier_of("to_tier", r.get(3)?)?,
            reason: r.get(4)?,
            hours_to_close: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn put_coverage(conn: &Connection, c: &Coverage) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO coverage \
         (tier, tick_ts, expected, written, missing, skipped, failed) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            c.tier.number(),
            ms(c.tick_ts),
            c.expected,
            c.written,
            c.missing,
            c.skipped,
            c.failed
        ],
    )?;
    Ok(())
}

fn coverage_since(conn: &Connection, since: Ts) -> Result<Vec<Coverage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT tier, tick_ts, expected, written, missing, skipped, failed FROM coverage \
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
            failed: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn get_latest(conn: &Connection, tier: Tier) -> Result<Option<LatestTier>> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM latest WHERE tier = ?1",
            params![tier.number()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
}

/// Read, apply, write in one transaction: the connection's lock serialises overlapping ticks.
fn apply_latest(conn: &mut Connection, updates: &[LatestUpdate]) -> Result<()> {
    let Some(tier) = crate::ports::latest_tier(updates)? else {
        return Ok(());
    };
    let tx = conn.transaction()?;
    let mut latest = get_latest(&tx, tier)?.unwrap_or_else(|| LatestTier::empty(tier));
    for update in updates {
        latest.apply(update);
    }
    tx.execute(
        "INSERT OR REPLACE INTO latest (tier, tick_ts, body) VALUES (?1, ?2, ?3)",
        params![
            tier.number(),
            ms(latest.tick_ts),
            serde_json::to_string(&latest)?
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Replaces the rows of the last round with this round's, in one transaction (the DynamoDB
/// adapter's one item): a shard the round does not hold drops out.
fn put_heartbeats(conn: &mut Connection, round: &[ShardHeartbeat]) -> Result<()> {
    crate::ports::check_heartbeat_round(round)?;
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM heartbeats", [])?;
    for hb in round {
        let reconnects = i64::try_from(hb.reconnects).map_err(|_| {
            StoreError::Encode(format!(
                "heartbeat of {}: {} reconnects do not fit SQLite's INTEGER",
                hb.shard_id, hb.reconnects
            ))
        })?;
        let at = ms(hb.at);
        tx.execute(
            "INSERT INTO heartbeats \
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
    }
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
    async fn write_markets(&self, markets: &[Market]) -> Result<Vec<String>> {
        if markets.is_empty() {
            return Ok(Vec::new());
        }
        let markets = markets.to_vec();
        self.with_conn(move |c| write_markets(c, &markets)).await
    }

    async fn markets_ending(&self, after: Ts, up_to: Option<Ts>) -> Result<Vec<Market>> {
        self.with_conn(move |c| {
            let (filter, after, up_to) = ending_filter(after, up_to);
            query_markets(c, filter, params![after, up_to])
        })
        .await
    }

    async fn active_markets(&self) -> Result<Vec<Market>> {
        self.with_conn(|c| query_markets(c, "active = 1", [])).await
    }

    async fn all_markets(&self) -> Result<Vec<Market>> {
        self.with_conn(|c| query_markets(c, "1 = 1", [])).await
    }

    async fn markets_awaiting_result(&self) -> Result<Vec<Market>> {
        self.with_conn(|c| query_markets(c, "awaiting = 1", []))
            .await
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

    async fn count_due(&self, at: Ts) -> Result<BTreeMap<Option<Tier>, u64>> {
        self.with_conn(move |c| count_due(c, at)).await
    }
}

impl LatestStore for LocalStore {
    async fn get_latest(&self, tier: Tier) -> Result<Option<LatestTier>> {
        self.with_conn(move |c| get_latest(c, tier)).await
    }

    async fn apply_latest(&self, updates: &[LatestUpdate]) -> Result<()> {
        let updates = updates.to_vec();
        self.with_conn(move |c| apply_latest(c, &updates)).await
    }
}

impl TaskStore for LocalStore {
    async fn put_task_run(&self, run: &TaskRun) -> Result<()> {
        let run = run.clone();
        self.with_conn(move |c| put_task_run(c, &run)).await
    }

    async fn task_runs_since(&self, since: Ts) -> Result<Vec<TaskRun>> {
        self.with_conn(move |c| task_runs_since(c, since)).await
    }

    async fn task_runs_page(&self, q: &RunQuery) -> Result<Vec<TaskRun>> {
        let q = q.clone();
        self.with_conn(move |c| task_runs_page(c, &q)).await
    }

    async fn task_state(&self, task: &str) -> Result<Option<TaskState>> {
        let task = task.to_string();
        self.with_conn(move |c| task_state(c, &task)).await
    }

    async fn task_states(&self) -> Result<Vec<TaskState>> {
        self.with_conn(|c| task_states(c)).await
    }

    async fn claim_task(&self, task: &str, now: Ts, until: Ts) -> Result<bool> {
        let task = task.to_string();
        self.with_conn(move |c| claim_task(c, &task, now, until))
            .await
    }
}

impl TransitionStore for LocalStore {
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
}

impl CoverageStore for LocalStore {
    async fn put_coverage(&self, c: &Coverage) -> Result<()> {
        let cov = c.clone();
        self.with_conn(move |c| put_coverage(c, &cov)).await
    }

    async fn coverage_since(&self, since: Ts) -> Result<Vec<Coverage>> {
        self.with_conn(move |c| coverage_since(c, since)).await
    }
}

impl HeartbeatStore for LocalStore {
    async fn put_heartbeats(&self, round: &[ShardHeartbeat]) -> Result<()> {
        let round = round.to_vec();
        self.with_conn(move |c| put_heartbeats(c, &round)).await
    }

    async fn heartbeats(&self) -> Result<Vec<ShardHeartbeat>> {
        self.with_conn(|c| heartbeats(c)).await
    }
}
