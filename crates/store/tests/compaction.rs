//! Hourly compaction on real stores — the local data directory, and S3 on moto — read back the
//! way readers read: DuckDB through the views of docs/data.md (taken from the document
//! itself), `polytape export`, and the reading rule in Rust (`keys::visible`).
//!
//! The fixture ([`seed`]): on 2026-11-20, hour 21 of T4 and T2 snapshots (three and two ticks,
//! one of them an empty file), T4 order books, trades in hour 20 and hour 21 — hour 21 holding
//! a redelivered duplicate of one of its own trades and a restart's duplicate of an hour-20
//! trade — whale events with a duplicate, raw tape records; an hour-22 tick (open at 22:30);
//! a T1 tick of the day before (another partition, still looked at); a trades file named
//! before names carried their hour (never compacted, always read); the paper executor's
//! `signals`, `fills` (one step each) and `positions` (two steps) in hour 21; and resolutions
//! for the export. Compaction runs at 22:30, when hours 20 and 21 are past their 20-minute settle time.
//!
//! The crash test kills compaction after each of its writes and deletes in turn — every
//! mutation of the store after the kill fails, as if the process had died — re-runs it, and
//! checks the state after the kill, after the re-run and after a further re-run: DuckDB reads
//! the same rows as before compaction (less the duplicate trades, only ever fewer copies of a
//! key), never a tick or a tape record twice; `polytape export` writes the same rows and finds
//! no duplicate to drop; the re-run ends byte for byte where an uninterrupted run ends; a
//! further run writes and deletes nothing.
//!
//! DuckDB needs `POLYTAPE_PYTHON_PQ` and moto `POLYTAPE_MOTO_URL` (infra/test.sh sets both);
//! without them those parts print a skip line, unless `POLYTAPE_REQUIRE_TOOLS` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure

use polytape_core::live::{SizeSource, Source, StoredTrade, TapeKind, TapeRecord, WhaleEvent};
use polytape_core::paper::{FillRow, PositionRow, SignalRow};
use polytape_core::snapshot::OrderbookRow;
use polytape_core::{Level, Market, MarketResult, Outcome, Resolution, Side, Snapshot, Tier, Ts};
use polytape_store::compact::{compact, CompactOptions, CompactReport, Manifest};
use polytape_store::contract::market;
use polytape_store::export::{export, ExportOptions};
use polytape_store::parquet::{
    encode_fills, encode_orderbooks, encode_positions, encode_resolutions, encode_signals,
    encode_snapshots, encode_tape, encode_trades, encode_whale_events, CONTENT_TYPE,
};
use polytape_store::{keys, LocalStore, ObjectDeleter, ObjectStore, Result, StoreError};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// When the runs happen: hours 20 and 21 of 2026-11-20 ended more than 20 minutes ago.
const NOW: &str = "2026-11-20T22:30:00Z";

fn opts(delete_after_s: u64) -> CompactOptions {
    CompactOptions {
        settle: Duration::from_secs(1200),
        delete_after: Duration::from_secs(delete_after_s),
        lookback_days: 2,
        ..CompactOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------------------------

fn snap(n: u32, ts: &str, tier: Tier) -> Snapshot {
    let m = market(n, None, true);
    Snapshot {
        snapshot_ts: at(ts),
        fetched_at: at(ts) + chrono::TimeDelta::milliseconds(800),
        condition_id: m.condition_id,
        token_id: m.yes_token_id,
        tier: Some(tier),
        interval_s: tier.spec().interval_s,
        price: Some(d("0.41") + Decimal::from(n) / Decimal::from(100)),
        best_bid: Some(d("0.40")),
        bid_levels: Some(12),
        book_imbalance: Some(-0.25),
        category: Some("Crypto".into()),
        ..Snapshot::default()
    }
}

fn book(n: u32, ts: &str) -> OrderbookRow {
    let m = market(n, None, true);
    OrderbookRow {
        snapshot_ts: at(ts),
        fetched_at: at(ts) + chrono::TimeDelta::milliseconds(900),
        condition_id: m.condition_id,
        token_id: m.yes_token_id,
        tier: Tier::T4,
        book_ts: Some(at(ts)),
        book_hash: Some(format!("hash-{n}-{ts}")),
        tick_size: Some(d("0.01")),
        bids: vec![
            Level {
                price: d("0.40"),
                size: d("100"),
            },
            Level {
                price: d("0.39"),
                size: Decimal::from(n),
            },
        ],
        asks: vec![Level {
            price: d("0.42"),
            size: d("55.5"),
        }],
    }
}

/// A trade `key` received at `received` on `shard`.
fn trade(key: &str, received: &str, shard: i32) -> StoredTrade {
    StoredTrade {
        trade_key: key.to_string(),
        condition_id: market(1, None, true).condition_id,
        token_id: market(1, None, true).yes_token_id,
        outcome_index: Some(0),
        side: Side::Buy,
        price: d("0.5"),
        size: Some(d("10")),
        size_source: SizeSource::Feed,
        fee_rate_bps: None,
        transaction_hash: Some(format!("0xtx{key}")),
        trade_ts: at(received) - chrono::TimeDelta::milliseconds(300),
        received_at: at(received),
        source: if shard < 0 {
            Source::Backfill
        } else {
            Source::Ws
        },
        best_bid: None,
        best_ask: None,
        mid: None,
        notional: Some(d("5")),
        whale_tier: Some(0),
        stale: false,
        divergent: false,
        shard: u32::try_from(shard).ok(),
        seq: Some(7),
    }
}

fn whale(key: &str, ts: &str) -> WhaleEvent {
    WhaleEvent {
        trade_key: key.to_string(),
        condition_id: market(2, None, true).condition_id,
        token_id: market(2, None, true).yes_token_id,
        side: Side::Sell,
        price: d("0.7"),
        size: d("5000"),
        notional: d("3500"),
        whale_tier: 2,
        trade_ts: at(ts),
        price_before: Some(d("0.71")),
        price_after_1m: Some(d("0.69")),
        price_after_5m: None,
        impact_1m: Some(d("-0.02")),
        impact_5m: None,
    }
}

fn tape(run: i64, seqs: std::ops::Range<u64>, received: &str) -> Vec<TapeRecord> {
    seqs.map(|seq| TapeRecord {
        run,
        shard: 1,
        seq,
        received_at: at(received) + chrono::TimeDelta::milliseconds(seq as i64),
        kind: TapeKind::Frame,
        part: 0,
        parts: 1,
        text: format!(r#"[{{"event_type":"book","seq":{seq}}}]"#),
    })
    .collect()
}

/// A signal of market `n` at the step `ts`, ordered as order `n`.
fn signal(n: u32, ts: &str) -> SignalRow {
    let m = market(n, None, true);
    SignalRow {
        signal_ts: at(ts),
        strategy: "longshot_yes".into(),
        condition_id: m.condition_id,
        token_id: m.yes_token_id,
        outcome: "YES".into(),
        reason: format!("favourite at 0.9{n}"),
        edge: d("0.02"),
        confidence: 0.75,
        price: d("0.95"),
        suggested_usd: d("25"),
        decision: "ordered".into(),
        order_id: Some(i64::from(n)),
        order_usd: Some(d("25")),
        rejection: None,
    }
}

fn fill(n: u32, ts: &str) -> FillRow {
    let m = market(n, None, true);
    FillRow {
        fill_ts: at(ts),
        order_id: i64::from(n),
        strategy: "longshot_yes".into(),
        condition_id: m.condition_id,
        token_id: m.yes_token_id,
        outcome: "YES".into(),
        side: "BUY".into(),
        liquidity: "taker".into(),
        shares: d("26.315789"),
        avg_price: d("0.95"),
        notional: d("24.999999"),
        fee: d("0.5"),
        levels: 2,
    }
}

/// Market `n`'s position as of the step `ts`, marked at `mark`.
fn position(n: u32, ts: &str, mark: &str) -> PositionRow {
    let m = market(n, None, true);
    PositionRow {
        as_of: at(ts),
        strategy: "longshot_yes".into(),
        condition_id: m.condition_id,
        token_id: m.yes_token_id,
        outcome: "YES".into(),
        status: "open".into(),
        shares: d("26.315789"),
        cost: d("25.499999"),
        entry_price: Some(d("0.969")),
        mark: Some(d(mark)),
        unrealised_pnl: Some(d(mark) * d("26.315789") - d("25.499999")),
        proceeds: None,
        realised_pnl: None,
        opened_at: at("2026-11-20T21:05:00Z"),
        closed_at: None,
        close_reason: None,
    }
}

fn resolution(n: u32) -> Resolution {
    let mut m: Market = market(n, None, false);
    m.result = MarketResult::Resolved(Outcome {
        winner: Some(0),
        invalid: false,
        payouts: vec![Decimal::ONE, Decimal::ZERO],
        resolved_at: Some(at("2026-11-21T06:00:00Z")),
        learned_at: at("2026-11-21T06:10:00Z"),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    });
    Resolution::of(&m).unwrap()
}

const RUN1: i64 = 1_795_200_000_000;
const RUN2: i64 = 1_795_210_000_000;

/// Writes the fixture (see the crate docs) and returns every key written.
async fn seed(s: &impl ObjectStore) -> Vec<String> {
    let mut keys = Vec::new();
    let mut put = |k: String, bytes: Vec<u8>| {
        keys.push(k.clone());
        async move { s.put_object(&k, bytes, CONTENT_TYPE).await.unwrap() }
    };
    let tick = |tier: Tier, ts: &str| polytape_core::TickId {
        tier,
        tick_ts: at(ts),
    };
    for ts in [
        "2026-11-20T21:00:00Z",
        "2026-11-20T21:00:15Z",
        "2026-11-20T21:59:45Z",
    ] {
        let rows = [snap(1, ts, Tier::T4), snap(2, ts, Tier::T4)];
        put(
            keys::snapshots(&tick(Tier::T4, ts)),
            encode_snapshots(&rows).unwrap().bytes,
        )
        .await;
        let books = [book(1, ts), book(2, ts)];
        put(
            keys::orderbooks(&tick(Tier::T4, ts)),
            encode_orderbooks(&books).unwrap().bytes,
        )
        .await;
    }
    // A tick whose markets all failed: an empty file, merged (into nothing) and deleted.
    let empty = "2026-11-20T21:30:00Z";
    put(
        keys::snapshots(&tick(Tier::T4, empty)),
        encode_snapshots(&[]).unwrap().bytes,
    )
    .await;
    for ts in ["2026-11-20T21:00:00Z", "2026-11-20T21:01:00Z"] {
        let rows = [snap(3, ts, Tier::T2), snap(4, ts, Tier::T2)];
        put(
            keys::snapshots(&tick(Tier::T2, ts)),
            encode_snapshots(&rows).unwrap().bytes,
        )
        .await;
    }
    // Open at 22:30: left alone.
    let open = "2026-11-20T22:00:00Z";
    put(
        keys::snapshots(&tick(Tier::T4, open)),
        encode_snapshots(&[snap(1, open, Tier::T4)]).unwrap().bytes,
    )
    .await;
    // The day before, in its own partition.
    let yesterday = "2026-11-19T23:55:00Z";
    put(
        keys::snapshots(&tick(Tier::T1, yesterday)),
        encode_snapshots(&[snap(5, yesterday, Tier::T1)])
            .unwrap()
            .bytes,
    )
    .await;

    let live = |table: &str, day: &str, run: i64, seq: u64| keys::live(table, at(day), run, 0, seq);
    let h20 = "2026-11-20T20:40:00Z";
    put(
        live(keys::TRADES, h20, RUN1, 1),
        encode_trades(&[trade("k1", h20, 0), trade("k2", h20, 0)])
            .unwrap()
            .bytes,
    )
    .await;
    let h21 = "2026-11-20T21:10:00Z";
    put(
        live(keys::TRADES, h21, RUN1, 5),
        encode_trades(&[trade("k3", h21, 0), trade("k4", h21, 0)])
            .unwrap()
            .bytes,
    )
    .await;
    // k4 again (another shard heard it too and it slipped through), and k5.
    let h21b = "2026-11-20T21:20:00Z";
    put(
        live(keys::TRADES, h21b, RUN1, 9),
        encode_trades(&[trade("k4", h21b, 1), trade("k5", h21b, 0)])
            .unwrap()
            .bytes,
    )
    .await;
    // A restarted feed's warm-up backfill: k2 (stored in hour 20) again, and k6.
    let h21c = "2026-11-20T21:45:00Z";
    put(
        live(keys::TRADES, h21c, RUN2, 0),
        encode_trades(&[trade("k2", h21c, -1), trade("k6", h21c, 0)])
            .unwrap()
            .bytes,
    )
    .await;
    // Named before names carried the hour: never compacted, always read.
    put(
        format!(
            "{}dt=2026-11-20/1795213800000-0-100.parquet",
            keys::table_prefix(keys::TRADES)
        ),
        encode_trades(&[trade("k9", h21, 0)]).unwrap().bytes,
    )
    .await;
    // A restarted feed re-emits a whale the previous process stored an hour before: hour 20
    // of whale_events holds nothing new, so its merge keeps no row.
    let h19 = "2026-11-20T19:40:00Z";
    put(
        live(keys::WHALE_EVENTS, h19, RUN1, 0),
        encode_whale_events(&[whale("w0", h19)]).unwrap().bytes,
    )
    .await;
    put(
        live(keys::WHALE_EVENTS, h20, RUN2, 0),
        encode_whale_events(&[whale("w0", h20)]).unwrap().bytes,
    )
    .await;
    put(
        live(keys::WHALE_EVENTS, h21, RUN1, 5),
        encode_whale_events(&[whale("w1", h21)]).unwrap().bytes,
    )
    .await;
    put(
        live(keys::WHALE_EVENTS, h21b, RUN1, 9),
        encode_whale_events(&[whale("w1", h21b), whale("w2", h21b)])
            .unwrap()
            .bytes,
    )
    .await;
    put(
        live(keys::RAW_WS, h21, RUN1, 5),
        encode_tape(&tape(RUN1, 5..9, h21)).unwrap().bytes,
    )
    .await;
    put(
        live(keys::RAW_WS, h21b, RUN1, 9),
        encode_tape(&tape(RUN1, 9..12, h21b)).unwrap().bytes,
    )
    .await;
    // The paper executor's steps of hour 21: one with a signal and its fill, two with positions.
    let step = "2026-11-20T21:05:00Z";
    put(
        keys::paper(keys::SIGNALS, at(step)),
        encode_signals(&[signal(1, step), signal(2, step)])
            .unwrap()
            .bytes,
    )
    .await;
    put(
        keys::paper(keys::FILLS, at(step)),
        encode_fills(&[fill(1, step), fill(2, step)]).unwrap().bytes,
    )
    .await;
    for (step, mark) in [
        ("2026-11-20T21:05:00Z", "0.95"),
        ("2026-11-20T21:06:00Z", "0.96"),
    ] {
        put(
            keys::paper(keys::POSITIONS, at(step)),
            encode_positions(&[position(1, step, mark), position(2, step, mark)])
                .unwrap()
                .bytes,
        )
        .await;
    }
    for n in 1..=5 {
        let r = resolution(n);
        put(
            keys::resolution(&r),
            encode_resolutions(std::slice::from_ref(&r)).unwrap().bytes,
        )
        .await;
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// A store that dies: after `budget` mutations, every call fails
// ---------------------------------------------------------------------------------------------

/// Wraps a store; the `budget`-th mutation (a put, or one key of a delete) is the last that
/// happens: from the next on, every call fails, reads included, as if the process had been
/// killed there. Counts the mutations that happened.
struct Killable<'a, S> {
    inner: &'a S,
    budget: usize,
    done: AtomicUsize,
    dead: AtomicBool,
}

impl<'a, S> Killable<'a, S> {
    fn new(inner: &'a S, budget: usize) -> Self {
        Killable {
            inner,
            budget,
            done: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        }
    }

    fn killed(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    fn mutations(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    fn alive(&self) -> Result<()> {
        if self.killed() {
            return Err(StoreError::Backend {
                reason: "killed".into(),
                retryable: false,
            });
        }
        Ok(())
    }

    /// Takes one mutation from the budget, or dies.
    fn take(&self) -> Result<()> {
        self.alive()?;
        if self.done.load(Ordering::SeqCst) >= self.budget {
            self.dead.store(true, Ordering::SeqCst);
            return self.alive();
        }
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl<S: ObjectStore> ObjectStore for Killable<'_, S> {
    async fn put_object(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        self.take()?;
        self.inner.put_object(key, bytes, content_type).await
    }
    async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.alive()?;
        self.inner.get_object(key).await
    }
    async fn list_objects(&self, prefix: &str) -> Result<Vec<String>> {
        self.alive()?;
        self.inner.list_objects(prefix).await
    }
}

impl<S: ObjectDeleter> ObjectDeleter for Killable<'_, S> {
    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        // One key at a time, so a kill can fall in the middle of a delete.
        for k in keys {
            self.take()?;
            self.inner.delete_objects(std::slice::from_ref(k)).await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading back
// ---------------------------------------------------------------------------------------------

/// Every object of the store, by key.
async fn objects(s: &impl ObjectStore) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for k in s.list_objects("").await.unwrap() {
        if let Some(b) = s.get_object(&k).await.unwrap() {
            out.insert(k, b);
        }
    }
    out
}

/// Writes `objects` as a data directory at `dir` (what the readers read).
fn mirror(objects: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    for (k, b) in objects {
        let path = dir.join(k);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b).unwrap();
    }
}

/// The docs' DuckDB statements (`docs/data.md`, "Querying locally with DuckDB": its first SQL
/// block), exactly as a user would paste them.
fn docs_duckdb_sql() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/data.md"))
        .unwrap();
    let section = &doc[doc
        .find("## Querying locally with DuckDB")
        .expect("the section")..];
    let start = section.find("```sql\n").expect("a sql block") + "```sql\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_string()
}

/// The tables the views read, with the key that names one row of each (where a duplicate
/// would show).
const VIEWS: [(&str, &str); 8] = [
    ("snapshots", "condition_id, token_id, snapshot_ts, tier"),
    ("orderbooks", "condition_id, token_id, snapshot_ts, tier"),
    ("trades", "trade_key"),
    ("whale_events", "trade_key"),
    ("raw_ws", "run, seq, part"),
    ("signals", "signal_ts, strategy, token_id"),
    ("fills", "order_id, fill_ts"),
    ("positions", "as_of, strategy, token_id"),
];

/// What DuckDB read in one directory: per view, every row as JSON (sorted) and how many
/// distinct row keys; the Athena views' SQL as `athena:<table>` (rows only).
type DuckRead = BTreeMap<String, (Vec<String>, u64)>;

/// The SQL of each Athena view of template.yaml, made runnable by DuckDB over a data
/// directory: `"$path"` is DuckDB's `filename`, `<table>_files` a `read_parquet` of the table's
/// files. `None` when the SAM venv (which reads the template) is not set up.
fn athena_views_for_duckdb() -> Option<Vec<(String, String)>> {
    let python = std::env::var("POLYTAPE_PYTHON_SAM").ok()?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::process::Command::new(python)
        .arg(format!("{root}/infra/checks/template_json.py"))
        .arg(format!("{root}/template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut views = Vec::new();
    for r in t["Resources"].as_object().unwrap().values() {
        let input = &r["Properties"]["TableInput"];
        if input["TableType"] != "VIRTUAL_VIEW" {
            continue;
        }
        let table = input["Name"].as_str().unwrap().to_string();
        let def = input["ViewOriginalText"]["Fn::Join"][1][1]["Fn::Base64"]["Fn::Sub"]
            .as_str()
            .unwrap();
        let def: Value = serde_json::from_str(def).unwrap();
        let (glob, types) = if matches!(table.as_str(), "snapshots" | "orderbooks") {
            ("*/*/*", "{'tier': 'SMALLINT', 'dt': 'VARCHAR'}")
        } else {
            ("*/*", "{'dt': 'VARCHAR'}")
        };
        let sql = def["originalSql"]
            .as_str()
            .unwrap()
            .replace("f.\"$path\"", "f.filename")
            .replace(
                &format!("FROM {table}_files f"),
                &format!(
                    "FROM read_parquet('{table}/{glob}.parquet', hive_partitioning = true, \
                     filename = true, hive_types = {types}) f"
                ),
            );
        views.push((table, sql));
    }
    assert_eq!(
        views.len(),
        keys::COMPACTED_TABLES.len(),
        "a view per compacted table"
    );
    Some(views)
}

/// What DuckDB reads through the docs' views (and the Athena views' SQL) in each of `dirs`;
/// `None` when DuckDB is not set up.
fn duckdb_read(dirs: &[PathBuf]) -> Option<Vec<DuckRead>> {
    let Ok(python) = std::env::var("POLYTAPE_PYTHON_PQ") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").is_err(),
            "POLYTAPE_PYTHON_PQ is not set: run infra/test.sh"
        );
        eprintln!("skipped the DuckDB reads: POLYTAPE_PYTHON_PQ not set (infra/test.sh sets it)");
        return None;
    };
    let script = r#"
import json, os, sys
import duckdb
job = json.load(sys.stdin)
out = []
for d in job["dirs"]:
    os.chdir(d)
    con = duckdb.connect()
    con.execute(job["sql"])
    tables = {}
    for table, key in job["views"]:
        rows = sorted(r[0] for r in con.execute(f"SELECT to_json(t)::VARCHAR FROM {table} t").fetchall())
        distinct = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM {table})").fetchone()[0]
        tables[table] = [rows, distinct]
    for table, sql in job["athena"]:
        rows = sorted(r[0] for r in con.execute(f"SELECT to_json(t)::VARCHAR FROM ({sql}) t").fetchall())
        tables["athena:" + table] = [rows, 0]
    out.append(tables)
print(json.dumps(out))
"#;
    let job = serde_json::json!({
        "sql": docs_duckdb_sql(),
        "views": VIEWS,
        "athena": athena_views_for_duckdb().unwrap_or_default(),
        "dirs": dirs,
    });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<DuckRead> = serde_json::from_slice(&out.stdout).unwrap();
    Some(v)
}

/// A snapshot of the store as readers see it.
struct State {
    what: String,
    objects: BTreeMap<String, Vec<u8>>,
    dir: PathBuf,
    /// `polytape export` on it: rows written, duplicates it had to drop.
    export: (u64, u64),
    /// The reading rule in Rust: how many rows each table's visible files hold.
    visible_rows: BTreeMap<String, u64>,
}

/// Rows per table through the reading rule (`keys::visible` over one listing).
fn rows_by_rule(objects: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, u64> {
    let keys: Vec<&String> = objects.keys().collect();
    let mut out = BTreeMap::new();
    for k in keys::visible(&keys) {
        let table = k.split('/').next().unwrap().to_string();
        if !keys::COMPACTED_TABLES.contains(&table.as_str()) {
            continue;
        }
        let bytes = bytes::Bytes::from(objects[*k].clone());
        let rows = parquet::file::serialized_reader::SerializedFileReader::new(bytes)
            .map(|r| {
                use parquet::file::reader::FileReader;
                r.metadata().file_metadata().num_rows() as u64
            })
            .unwrap();
        *out.entry(table).or_default() += rows;
    }
    out
}

async fn capture(s: &impl ObjectStore, what: &str, root: &Path) -> State {
    let objects = objects(s).await;
    let dir = root.join(format!("state-{}", what.replace([' ', '/'], "-")));
    mirror(&objects, &dir);
    let out = root.join(format!("export-{}.parquet", what.replace([' ', '/'], "-")));
    let summary = export(&ExportOptions::new(&dir, &out), &mut |_| {}).unwrap();
    State {
        what: what.to_string(),
        visible_rows: rows_by_rule(&objects),
        objects,
        dir,
        export: (summary.rows_written, summary.duplicates_dropped),
    }
}

// ---------------------------------------------------------------------------------------------
// The crash test
// ---------------------------------------------------------------------------------------------

/// What a store under test must offer: a fresh, seeded instance per attempt.
trait Fresh {
    type Store: ObjectDeleter;
    async fn fresh(&mut self) -> &Self::Store;
}

/// Kills compaction after each mutation in turn, re-runs it, and checks every state (see the
/// crate docs). Returns the number of kill points tried.
async fn crash_at_every_step(stores: &mut impl Fresh) -> usize {
    let root = tempfile::tempdir().unwrap();
    let now = at(NOW);
    let o = opts(0);

    // Before compaction, and an uninterrupted run.
    let s = stores.fresh().await;
    let before = capture(s, "before", root.path()).await;
    let report = compact(s, now, &o).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_uninterrupted_report(&report);
    let done = capture(s, "uninterrupted", root.path()).await;
    let counted = Killable::new(s, usize::MAX);
    let again = compact(&counted, now, &o).await;
    assert_eq!(
        (
            counted.mutations(),
            again.hours_compacted,
            again.sources_deleted
        ),
        (0, 0, 0),
        "a re-run after completion changes nothing: {again:?}"
    );
    assert_final_layout(&done);

    let mut states = vec![before, done];
    let mut k = 0;
    loop {
        let s = stores.fresh().await;
        let killable = Killable::new(s, k);
        let r = compact(&killable, now, &o).await;
        if !killable.killed() {
            assert!(r.errors.is_empty(), "{r:?}");
            break;
        }
        assert!(!r.errors.is_empty(), "a killed run reports it");
        let killed = capture(s, &format!("killed after {k}"), root.path()).await;
        let r = compact(s, now, &o).await;
        assert!(r.errors.is_empty(), "the re-run after a kill at {k}: {r:?}");
        let rerun = capture(s, &format!("rerun after {k}"), root.path()).await;
        assert_eq!(
            rerun.objects, states[1].objects,
            "after a kill at mutation {k} the re-run ends byte for byte where an uninterrupted run ends"
        );
        let counted = Killable::new(s, usize::MAX);
        compact(&counted, now, &o).await;
        assert_eq!(
            counted.mutations(),
            0,
            "a second re-run after a kill at {k} changes nothing"
        );
        states.push(killed);
        k += 1;
    }
    assert!(k >= 20, "the run has many steps to be killed at: {k}");

    // Every state, by every reader.
    let (before, rest) = states.split_first().unwrap();
    for st in rest {
        assert_eq!(
            st.export, before.export,
            "{}: polytape export writes the same rows and finds no duplicate",
            st.what
        );
        assert_eq!(before.export.1, 0);
        for table in [
            "snapshots",
            "orderbooks",
            "raw_ws",
            "signals",
            "fills",
            "positions",
        ] {
            assert_eq!(
                st.visible_rows.get(table),
                before.visible_rows.get(table),
                "{}: {table} by the reading rule",
                st.what
            );
        }
    }
    let dirs: Vec<PathBuf> = states.iter().map(|s| s.dir.clone()).collect();
    let read = duckdb_read(&dirs);
    // DuckDB's views (and the Athena views' SQL) read what the reading rule in Rust reads
    // (`polytape export`, `keys::visible`), in every state: local and cloud count alike.
    for (st, got) in states.iter().zip(read.iter().flatten()) {
        for (table, _) in VIEWS {
            assert_eq!(
                got[table].0.len() as u64,
                st.visible_rows.get(table).copied().unwrap_or(0),
                "{}: DuckDB reads as many {table} rows as the reading rule",
                st.what
            );
            if let Some((rows, _)) = got.get(&format!("athena:{table}")) {
                assert_eq!(
                    rows.len() as u64,
                    st.visible_rows.get(table).copied().unwrap_or(0),
                    "{}: the Athena view reads as many {table} rows as the reading rule",
                    st.what
                );
            }
        }
    }
    if let Some(read) = read {
        let (first, others) = read.split_first().unwrap();
        for (st, got) in states[1..].iter().zip(others) {
            for (table, key) in VIEWS {
                let (rows, distinct) = &got[table];
                let (rows0, distinct0) = &first[table];
                assert_eq!(
                    distinct, distinct0,
                    "{}: {table} has every row key it had ({key})",
                    st.what
                );
                if matches!(table, "trades" | "whale_events") {
                    // Only duplicates go, and never the last copy of a key.
                    let mut left: Vec<&String> = rows0.iter().collect();
                    for r in rows {
                        let i = left.iter().position(|x| *x == r).unwrap_or_else(|| {
                            panic!("{}: {table} row {r} was not there before", st.what)
                        });
                        left.remove(i);
                    }
                } else {
                    let differs = rows.iter().zip(rows0).position(|(a, b)| a != b);
                    assert!(
                        rows == rows0,
                        "{}: DuckDB reads {} {table} rows, {} before compaction; first \
                         difference at {differs:?}: {:?}",
                        st.what,
                        rows.len(),
                        rows0.len(),
                        differs.map(|i| &rows[i])
                    );
                    assert_eq!(
                        rows.len() as u64,
                        *distinct,
                        "{}: DuckDB counts no {table} row twice",
                        st.what
                    );
                }
            }
        }
        // The Athena views' SQL reads what the docs' views read, in every state (compared as
        // JSON objects: the column order differs).
        if athena_views_for_duckdb().is_some() {
            for (st, got) in states.iter().zip(&read) {
                for (table, _) in VIEWS {
                    let parsed = |rows: &[String]| {
                        let mut v: Vec<String> = rows
                            .iter()
                            .map(|r| {
                                let row: BTreeMap<String, Value> = serde_json::from_str(r).unwrap();
                                serde_json::to_string(&row).unwrap()
                            })
                            .collect();
                        v.sort();
                        v
                    };
                    assert_eq!(
                        parsed(&got[&format!("athena:{table}")].0),
                        parsed(&got[table].0),
                        "{}: the Athena view of {table} reads what DuckDB's does",
                        st.what
                    );
                }
            }
        }
        // Before: k4, k2 and w1 twice; after the uninterrupted run: once each, the first kept.
        let keys_of = |rows: &[String]| -> Vec<String> {
            rows.iter()
                .map(|r| serde_json::from_str::<Value>(r).unwrap()["trade_key"].to_string())
                .collect()
        };
        assert_eq!(first["trades"].0.len(), 9, "k4, k2 twice");
        let after = &others[0];
        let mut trades = keys_of(&after["trades"].0);
        trades.sort();
        assert_eq!(
            trades,
            ["\"k1\"", "\"k2\"", "\"k3\"", "\"k4\"", "\"k5\"", "\"k6\"", "\"k9\""],
            "one row per trade once compacted"
        );
        let kept: Vec<Value> = after["trades"]
            .0
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        let k4 = kept.iter().find(|t| t["trade_key"] == "k4").unwrap();
        assert_eq!(
            k4["shard"], 0,
            "k4 as first stored (the earlier file), not the redelivery"
        );
        let k2 = kept.iter().find(|t| t["trade_key"] == "k2").unwrap();
        assert_eq!(
            k2["source"], "ws",
            "k2 from hour 20, not the restart's backfill in hour 21"
        );
        assert_eq!(after["whale_events"].0.len(), 3, "w0 (hour 19), w1, w2");
    }
    k
}

fn assert_uninterrupted_report(r: &CompactReport) {
    // Hours: T4 21 (snapshots, orderbooks), T2 21, T1 of the day before 23, trades 20 and 21,
    // whale_events 19, 20 (all duplicates: no file) and 21, raw_ws 21, signals, fills and
    // positions 21.
    assert_eq!(r.hours_compacted, 13, "{r:?}");
    assert_eq!(r.duplicates_dropped, 4, "k4, k2, w0 and w1: {r:?}");
    assert_eq!(r.files_merged, 24, "{r:?}");
    assert_eq!(r.sources_deleted, 24, "{r:?}");
    assert_eq!((r.hours_behind, r.lag_s), (0, 0), "{r:?}");
    assert!(!r.stopped_early);
}

/// After a complete run: each compacted hour is its compacted file and a manifest entry whose
/// sha256, size and rows are the file's; no source is left; the open hour and the file without
/// an hour are untouched.
fn assert_final_layout(st: &State) {
    let keys: Vec<&String> = st.objects.keys().collect();
    let t4 = "snapshots/tier=4/dt=2026-11-20/";
    assert!(
        keys.contains(&&format!("{t4}20261120T220000Z.parquet")),
        "the open hour stays"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(&format!("{t4}20261120T21")) && !keys::is_compacted(k)),
        "no source left: {keys:?}"
    );
    assert!(keys.contains(&&"trades/dt=2026-11-20/1795213800000-0-100.parquet".to_string()));
    let mut entries = 0;
    for k in keys.iter().filter(|k| k.ends_with(keys::MANIFEST)) {
        let m: Manifest = serde_json::from_slice(&st.objects[*k]).unwrap();
        assert_eq!(format!("{}{}", m.partition, keys::MANIFEST), **k);
        for (hour, e) in &m.hours {
            entries += 1;
            assert!(e.sources_deleted_at.is_some());
            assert!(e.sources.iter().all(|s| !st.objects.contains_key(s)));
            assert!(!e.sources.is_empty());
            let Some(key) = &e.file else {
                // A merge that kept no row: no file, for no reader to take for the hour.
                assert_eq!((e.rows, e.bytes), (0, 0));
                assert!(!st
                    .objects
                    .contains_key(&keys::compacted(&m.partition, hour)));
                continue;
            };
            let file = &st.objects[key];
            assert_eq!(*key, keys::compacted(&m.partition, hour));
            assert!(e.rows > 0, "a compacted file holds a row at least");
            assert_eq!(e.bytes, file.len() as u64);
            assert_eq!(e.sha256, polytape_store::compact::sha256_hex(file));
            assert!(e.sources_deleted_at.is_some());
            assert!(e.sources.iter().all(|s| !st.objects.contains_key(s)));
            assert!(!e.sources.is_empty());
        }
    }
    assert_eq!(entries, 13);
    // The paper tables' hour: every step's rows, in step order.
    let m: Manifest =
        serde_json::from_slice(&st.objects["positions/dt=2026-11-20/_manifest.json"]).unwrap();
    let h21 = &m.hours["20261120T21"];
    assert_eq!(
        (h21.rows, h21.duplicates_dropped, &h21.sources),
        (
            4,
            0,
            &vec![
                keys::paper(keys::POSITIONS, at("2026-11-20T21:05:00Z")),
                keys::paper(keys::POSITIONS, at("2026-11-20T21:06:00Z")),
            ]
        )
    );
    let m: Manifest =
        serde_json::from_slice(&st.objects["whale_events/dt=2026-11-20/_manifest.json"]).unwrap();
    let h20 = &m.hours["20261120T20"];
    assert_eq!((&h20.file, h20.rows, h20.duplicates_dropped), (&None, 0, 1));
    let m: Manifest =
        serde_json::from_slice(&st.objects["trades/dt=2026-11-20/_manifest.json"]).unwrap();
    let h21 = &m.hours["20261120T21"];
    assert_eq!(
        (h21.rows, h21.duplicates_dropped, h21.sources.len()),
        (4, 2, 3)
    );
}

// ---------------------------------------------------------------------------------------------
// On the local store
// ---------------------------------------------------------------------------------------------

struct LocalStores {
    dirs: Vec<tempfile::TempDir>,
    store: Option<LocalStore>,
}

impl Fresh for LocalStores {
    type Store = LocalStore;
    async fn fresh(&mut self) -> &LocalStore {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        seed(&s).await;
        self.dirs.push(dir);
        self.store.insert(s)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_kill_at_every_step_then_the_local_store_reads_the_same_rows_throughout_and_ends_where_an_uninterrupted_run_does(
) {
    let mut stores = LocalStores {
        dirs: Vec::new(),
        store: None,
    };
    let steps = crash_at_every_step(&mut stores).await;
    eprintln!("killed at each of {steps} steps");
}

async fn seeded() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(dir.path()).unwrap();
    seed(&s).await;
    (dir, s)
}

#[tokio::test]
async fn given_an_hour_not_yet_past_its_settle_time_then_it_is_left_alone() {
    let (_d, s) = seeded().await;
    let before = objects(&s).await;
    // 22:15: hour 21 ended a quarter of an hour ago, within the 20 minutes a retry may take.
    let r = compact(&s, at("2026-11-20T22:15:00Z"), &opts(0)).await;
    assert!(r.errors.is_empty(), "{r:?}");
    let after = objects(&s).await;
    let hour21: Vec<&String> = before
        .keys()
        .filter(|k| keys::hour_of(k) == Some("20261120T21"))
        .collect();
    assert_eq!(hour21.len(), 20);
    for k in &hour21 {
        assert_eq!(after.get(*k), before.get(*k), "{k} untouched");
    }
    assert!(!after.keys().any(|k| k.contains("20261120T21.compacted")));
    assert!(r.hours_settling >= 5, "{r:?}");
    // Hour 20 (trades), whale_events 19 and 20 and the day before's T1 hour were due.
    assert_eq!(r.hours_compacted, 4, "{r:?}");
    assert!(after.contains_key("trades/dt=2026-11-20/20261120T20.compacted.parquet"));
}

#[tokio::test]
async fn given_a_delete_delay_then_sources_stay_until_it_passes_and_are_read_once_meanwhile() {
    let (_d, s) = seeded().await;
    let o = opts(1800);
    let r = compact(&s, at(NOW), &o).await;
    assert_eq!(
        (r.hours_compacted, r.sources_deleted),
        (13, 1),
        "whale_events hour 20 kept no row: its source goes at once: {r:?}"
    );
    let kept = objects(&s).await;
    assert!(kept.contains_key("snapshots/tier=4/dt=2026-11-20/20261120T210000Z.parquet"));
    let by_rule = rows_by_rule(&kept);
    assert_eq!(
        by_rule["snapshots"],
        6 + 4 + 1 + 1,
        "T4 21h, T2 21h, T4 22h, T1"
    );
    // 22:45: still within 30 minutes of the commit. 23:01: past it.
    let r = compact(&s, at("2026-11-20T22:45:00Z"), &o).await;
    assert_eq!((r.hours_compacted, r.sources_deleted), (0, 0), "{r:?}");
    let r = compact(&s, at("2026-11-20T23:01:00Z"), &o).await;
    assert_eq!((r.hours_compacted, r.sources_deleted), (0, 23), "{r:?}");
    assert_eq!(rows_by_rule(&objects(&s).await), by_rule);
}

#[tokio::test]
async fn given_a_late_file_whose_trade_a_following_hour_holds_then_its_merge_drops_it() {
    let (_d, s) = seeded().await;
    compact(&s, at(NOW), &opts(0)).await;
    // A late message of hour 20 with k3 (stored in hour 21's compacted file) and a new k8.
    let late = keys::live(keys::TRADES, at("2026-11-20T20:55:00Z"), RUN2, 0, 7);
    let bytes = encode_trades(&[
        trade("k3", "2026-11-20T20:55:00Z", 2),
        trade("k8", "2026-11-20T20:55:00Z", 2),
    ])
    .unwrap()
    .bytes;
    s.put_object(&late, bytes, CONTENT_TYPE).await.unwrap();
    let r = compact(&s, at("2026-11-20T22:40:00Z"), &opts(0)).await;
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!((r.hours_compacted, r.duplicates_dropped), (1, 1), "{r:?}");
    let now = objects(&s).await;
    assert_eq!(
        rows_by_rule(&now)["trades"],
        8,
        "k8 is read now, and k3 once: the first stored (hour 21's) stays"
    );
    let m: Manifest = serde_json::from_slice(&now["trades/dt=2026-11-20/_manifest.json"]).unwrap();
    assert_eq!(
        (m.hours["20261120T20"].rows, m.hours["20261120T21"].rows),
        (3, 4)
    );
}

#[tokio::test]
async fn given_a_file_arriving_after_its_hour_was_compacted_then_the_next_run_merges_it_once() {
    let (_d, s) = seeded().await;
    compact(&s, at(NOW), &opts(0)).await;
    // A redriven message of hour 21: a new trade k7 and k3 again.
    let late = keys::live(keys::TRADES, at("2026-11-20T21:50:00Z"), RUN2, 0, 4);
    let bytes = encode_trades(&[
        trade("k7", "2026-11-20T21:50:00Z", 2),
        trade("k3", "2026-11-20T21:50:00Z", 2),
    ])
    .unwrap()
    .bytes;
    s.put_object(&late, bytes.clone(), CONTENT_TYPE)
        .await
        .unwrap();
    // A source deleted by the run comes back (the same message redelivered): merged already.
    let back = keys::live(keys::TRADES, at("2026-11-20T21:10:00Z"), RUN1, 0, 5);
    let again = encode_trades(&[
        trade("k3", "2026-11-20T21:10:00Z", 0),
        trade("k4", "2026-11-20T21:10:00Z", 0),
    ])
    .unwrap()
    .bytes;
    s.put_object(&back, again, CONTENT_TYPE).await.unwrap();
    let before = rows_by_rule(&objects(&s).await)["trades"];
    assert_eq!(
        before, 7,
        "until merged, the rule reads the compacted hour alone"
    );

    let r = compact(&s, at("2026-11-20T23:30:00Z"), &opts(0)).await;
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!(
        (r.hours_compacted, r.files_merged),
        (2, 2),
        "hour 21's late file, and hour 22, now past its settle time: {r:?}"
    );
    assert_eq!(r.duplicates_dropped, 1, "k3 again");
    assert_eq!(
        r.sources_deleted, 3,
        "the late file, the one back, hour 22's tick"
    );
    let now = objects(&s).await;
    assert_eq!(rows_by_rule(&now)["trades"], 8, "k7 is read now, once");
    assert!(!now.contains_key(&late) && !now.contains_key(&back));
    let m: Manifest = serde_json::from_slice(&now["trades/dt=2026-11-20/_manifest.json"]).unwrap();
    let h = &m.hours["20261120T21"];
    assert_eq!((h.rows, h.duplicates_dropped, h.sources.len()), (5, 3, 4));
    assert!(h.sources.contains(&late));
}

#[tokio::test]
async fn given_a_lost_manifest_then_the_compacted_files_footer_says_what_it_holds() {
    let (_d, s) = seeded().await;
    compact(&s, at(NOW), &opts(1800)).await;
    let manifest = "trades/dt=2026-11-20/_manifest.json".to_string();
    let m: Manifest =
        serde_json::from_slice(&s.get_object(&manifest).await.unwrap().unwrap()).unwrap();
    // Gone with some sources still there: nothing is merged twice, the entry comes back.
    s.delete_objects(std::slice::from_ref(&manifest))
        .await
        .unwrap();
    let rows = rows_by_rule(&objects(&s).await);
    let r = compact(&s, at("2026-11-20T22:40:00Z"), &opts(1800)).await;
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!((r.hours_compacted, r.files_merged), (0, 0), "{r:?}");
    assert_eq!(rows_by_rule(&objects(&s).await), rows);
    let back: Manifest =
        serde_json::from_slice(&s.get_object(&manifest).await.unwrap().unwrap()).unwrap();
    assert_eq!(
        back.hours.keys().collect::<Vec<_>>(),
        m.hours.keys().collect::<Vec<_>>()
    );
    for (h, e) in &back.hours {
        let was = &m.hours[h];
        assert_eq!(
            (&e.file, e.rows, &e.sha256, &e.sources, e.duplicates_dropped),
            (
                &was.file,
                was.rows,
                &was.sha256,
                &was.sources,
                was.duplicates_dropped
            )
        );
    }
}

#[tokio::test]
async fn given_a_source_that_is_not_parquet_then_its_hour_is_left_as_it_was_and_the_others_go_on() {
    let (_d, s) = seeded().await;
    let bad = "raw_ws/dt=2026-11-20/20261120T21-1795200000000-0-99.parquet";
    s.put_object(bad, b"not parquet".to_vec(), CONTENT_TYPE)
        .await
        .unwrap();
    let r = compact(&s, at(NOW), &opts(0)).await;
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].contains(bad), "{r:?}");
    assert_eq!(r.hours_compacted, 12, "every other hour: {r:?}");
    assert_eq!(r.hours_behind, 1);
    assert_eq!(
        r.oldest_behind.as_deref(),
        Some("raw_ws/dt=2026-11-20/20261120T21")
    );
    assert_eq!(
        r.lag_s,
        30 * 60,
        "since 22:00, the end of the hour left behind"
    );
    let after = objects(&s).await;
    assert!(after.contains_key(bad));
    assert!(!after.contains_key("raw_ws/dt=2026-11-20/20261120T21.compacted.parquet"));
}

#[tokio::test]
async fn given_a_stop_time_already_past_then_nothing_is_started_and_the_lag_is_reported() {
    let (_d, s) = seeded().await;
    let o = CompactOptions {
        stop_at: Some(at(NOW)),
        ..opts(0)
    };
    let r = compact(&s, at(NOW), &o).await;
    assert!(r.stopped_early && r.errors.is_empty(), "{r:?}");
    assert_eq!((r.hours_compacted, r.hours_behind), (0, 13), "{r:?}");
    assert_eq!(
        r.oldest_behind.as_deref(),
        Some("snapshots/tier=1/dt=2026-11-19/20261119T23")
    );
    assert_eq!(r.lag_s, 22 * 3600 + 30 * 60, "since midnight");
}

// ---------------------------------------------------------------------------------------------
// On S3 (moto)
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "aws")]
mod on_s3 {
    use super::*;
    use aws_config::{BehaviorVersion, Region};
    use polytape_store::aws::{provision, AwsNames, AwsStore};

    struct S3Stores {
        store: AwsStore,
    }

    impl Fresh for S3Stores {
        type Store = AwsStore;
        async fn fresh(&mut self) -> &AwsStore {
            let all = self.store.list_objects("").await.unwrap();
            self.store.delete_objects(&all).await.unwrap();
            seed(&self.store).await;
            &self.store
        }
    }

    async fn moto_store() -> Option<AwsStore> {
        let Ok(url) = std::env::var("POLYTAPE_MOTO_URL") else {
            assert!(
                std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "POLYTAPE_MOTO_URL is not set and POLYTAPE_REQUIRE_TOOLS=1: run infra/test.sh"
            );
            eprintln!("SKIP: POLYTAPE_MOTO_URL is not set (infra/test.sh starts moto)");
            return None;
        };
        let creds =
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static");
        let cfg = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(url)
            .load()
            .await;
        let names = provision::create_all(&cfg, &AwsNames::unique("compaction"))
            .await
            .expect("provision on moto");
        Some(AwsStore::new(&cfg, names))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_a_kill_at_every_step_then_s3_reads_the_same_rows_throughout_and_ends_where_an_uninterrupted_run_does(
    ) {
        let Some(store) = moto_store().await else {
            return;
        };
        let steps = crash_at_every_step(&mut S3Stores { store }).await;
        eprintln!("killed at each of {steps} steps");
    }

    #[tokio::test]
    async fn given_more_than_a_thousand_keys_then_delete_objects_deletes_them_all() {
        let Some(store) = moto_store().await else {
            return;
        };
        let keys: Vec<String> = (0..1_005)
            .map(|i| format!("raw_ws/dt=2026-11-20/20261120T21-1-0-{i}.parquet"))
            .collect();
        for k in &keys {
            store.put_object(k, vec![1], CONTENT_TYPE).await.unwrap();
        }
        store.delete_objects(&keys).await.unwrap();
        assert!(store.list_objects("raw_ws/").await.unwrap().is_empty());
    }
}
