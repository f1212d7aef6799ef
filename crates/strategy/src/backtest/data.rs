//! A data directory replayed: what `polytape run` (or S3, copied down) stored under the key
//! layout of `polytape_store::keys`, read through the store's own readers
//! ([`LocalStore`], [`polytape_store::read::file_batches`], [`polytape_store::parquet::json`]).
//!
//! 1. `markets/dt=*/markets.parquet`: what each market is (tokens, end date, question), the
//!    earliest day's row of a market kept; its result columns are ignored (they were written
//!    later than the rows they would sit beside).
//!    Markets no file lists are taken from the directory's `state.sqlite` (a local run's
//!    markets table), else from their resolution.
//! 2. `resolutions/dt=*/*.parquet`: each market's outcome, applied from its `learned_at`.
//! 3. `snapshots/` and `orderbooks/` (every tier), by the reading rule of compaction
//!    ([`keys::visible`]), an hour at a time: the files of one hour (its tick files, or its
//!    compacted file) are read, their rows sorted by time and handed to the [`Replay`] one
//!    time at a time. Memory holds one hour of rows (the columns the replay uses), the markets
//!    and resolutions (one small row per market) and the file listing, never the directory.
//!
//! Bad input never stops a backtest: a file that is unreadable, not Parquet or lacks a column
//! is skipped and counted (the first 100 named in the report), a row with a NULL key or a value
//! that is not what its column says is skipped and counted.

use super::{BookRow, Replay, SnapshotRow};
use crate::config::EngineConfig;
use crate::error::StrategyError;
use crate::Ts;
use arrow_array::{
    Array, ArrayRef, Decimal128Array, Decimal64Array, ListArray, RecordBatch, StringArray,
    StructArray, TimestampMillisecondArray,
};
use polytape_core::{Book, FeeSchedule, Level, Market, MarketResult, Outcome};
use polytape_store::parquet::json;
use polytape_store::read::file_batches;
use polytape_store::{keys, LocalStore, MarketStore, ObjectStore};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use thiserror::Error;

use super::report::Report;

/// Skipped files named in the report, at most.
const SKIPPED_NAMED: usize = 100;

/// What a backtest read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataSummary {
    /// Markets known (from `markets`, else from their resolution).
    pub markets: u64,
    pub resolutions: u64,
    /// Hours of `snapshots`/`orderbooks` files read.
    pub hours: u64,
    pub files_read: u64,
    pub files_skipped: u64,
    /// The first skipped files (key and reason), in the order met.
    pub skipped: Vec<SkippedFile>,
    pub snapshot_rows: u64,
    pub book_rows: u64,
    /// Rows with a NULL key or an unreadable value.
    pub rows_skipped: u64,
    /// Rows of a (time, market, token) already read (a file copied twice).
    pub duplicate_rows: u64,
    /// Rows of a time before one already stepped (a row outside its file's hour).
    pub rows_out_of_order: u64,
    /// Rows of markets neither `markets` nor `resolutions` knows.
    pub rows_unknown_market: u64,
    /// Rows of markets already settled and forgotten (nothing held in them: such a row can
    /// change nothing; the replay keeps no state for settled markets).
    #[serde(default)]
    pub rows_after_settlement: u64,
    /// Markets forgotten once settled with nothing held in them.
    #[serde(default)]
    pub markets_forgotten: u64,
    /// Rows of the second outcome's token (the replay uses the first's).
    pub rows_other_token: u64,
    /// The most snapshot and book rows held at once (one hour's).
    pub peak_hour_rows: u64,
}

/// A file the backtest did not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    pub key: String,
    pub reason: String,
}

/// Why a backtest could not run.
#[derive(Debug, Error)]
pub enum BacktestError {
    #[error("no data directory at {0}")]
    NoDataDir(String),
    #[error(transparent)]
    Config(#[from] StrategyError),
    #[error("reading the data directory: {0}")]
    Store(#[from] polytape_store::StoreError),
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
}

impl DataSummary {
    fn skip(&mut self, key: &str, reason: impl Into<String>) {
        self.files_skipped += 1;
        if self.skipped.len() < SKIPPED_NAMED {
            self.skipped.push(SkippedFile {
                key: key.to_string(),
                reason: reason.into(),
            });
        }
    }
}

/// Replays the data directory `data_dir` under `config` and returns the report (write it with
/// [`Report::write`]).
pub async fn run_backtest(data_dir: &Path, config: &EngineConfig) -> Result<Report, BacktestError> {
    if !data_dir.is_dir() {
        return Err(BacktestError::NoDataDir(data_dir.display().to_string()));
    }
    config.validate()?;
    let store = LocalStore::open(data_dir)?;
    let mut summary = DataSummary::default();
    let mut markets = load_markets(&store, &mut summary).await?;
    let resolutions = load_resolutions(&store, &mut summary).await?;
    // A local run's state knows markets no `markets` file lists yet (maintenance writes the
    // first one minutes after start); their results there are ignored like the files'.
    for m in store.all_markets().await? {
        markets.entry(m.condition_id.clone()).or_insert(m);
    }
    for (id, (_, fallback)) in &resolutions {
        if !markets.contains_key(id) {
            if let Some(m) = fallback {
                markets.insert(id.clone(), m.clone());
            }
        }
    }
    summary.markets = markets.len() as u64;
    summary.resolutions = resolutions.len() as u64;
    let resolutions = resolutions
        .into_iter()
        .map(|(id, (o, _))| (id, o))
        .collect();
    let mut replay = Replay::new(config, markets, resolutions)?;

    // Files by hour: tick files and compacted hours alike, every tier.
    let mut hours: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for table in [keys::SNAPSHOTS, keys::ORDERBOOKS] {
        let listed = store.list_objects(&keys::table_prefix(table)).await?;
        for key in keys::visible(&listed) {
            if !key.ends_with(".parquet") {
                summary.skip(key, "not a .parquet file");
                continue;
            }
            match keys::hour_of(key) {
                Some(h) => hours.entry(h.to_string()).or_default().push(key.clone()),
                None => summary.skip(key, "no hour in its name"),
            }
        }
    }
    for files in hours.values() {
        summary.hours += 1;
        let mut rows: Vec<SnapshotRow> = Vec::new();
        let mut books: Vec<BookRow> = Vec::new();
        for key in files {
            let batches = match file_batches(&store, key).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    summary.skip(key, e.to_string());
                    continue;
                }
            };
            let read = if key.starts_with(keys::SNAPSHOTS) {
                decode_snapshots(&batches, &mut summary).map(|r| {
                    summary.snapshot_rows += r.len() as u64;
                    rows.extend(r);
                })
            } else {
                decode_books(&batches, &mut summary).map(|b| {
                    summary.book_rows += b.len() as u64;
                    books.extend(b);
                })
            };
            match read {
                Ok(()) => summary.files_read += 1,
                Err(reason) => summary.skip(key, reason),
            }
        }
        rows.sort_by(|a, b| {
            (a.ts, &a.condition_id, &a.token_id).cmp(&(b.ts, &b.condition_id, &b.token_id))
        });
        let before = rows.len();
        rows.dedup_by(|b, a| {
            (a.ts, &a.condition_id, &a.token_id) == (b.ts, &b.condition_id, &b.token_id)
        });
        summary.duplicate_rows += (before - rows.len()) as u64;
        books.sort_by(|a, b| {
            (a.ts, &a.condition_id, &a.book.token_id).cmp(&(
                b.ts,
                &b.condition_id,
                &b.book.token_id,
            ))
        });
        let before = books.len();
        books.dedup_by(|b, a| {
            (a.ts, &a.condition_id, &a.book.token_id) == (b.ts, &b.condition_id, &b.book.token_id)
        });
        summary.duplicate_rows += (before - books.len()) as u64;
        summary.peak_hour_rows = summary
            .peak_hour_rows
            .max((rows.len() + books.len()) as u64);

        let (mut i, mut j) = (0, 0);
        while i < rows.len() || j < books.len() {
            let t = match (rows.get(i), books.get(j)) {
                (Some(r), Some(b)) => r.ts.min(b.ts),
                (Some(r), None) => r.ts,
                (None, Some(b)) => b.ts,
                (None, None) => break,
            };
            let (ri, bj) = (i, j);
            while rows.get(i).is_some_and(|r| r.ts == t) {
                i += 1;
            }
            while books.get(j).is_some_and(|b| b.ts == t) {
                j += 1;
            }
            replay.step(t, &rows[ri..i], &books[bj..j]);
        }
        // Memory holds the markets still open or held, not every market met.
        summary.markets_forgotten += replay.forget_settled() as u64;
    }
    Ok(replay.finish(summary))
}

/// Every market of `markets/`, its earliest day's row kept.
async fn load_markets(
    store: &LocalStore,
    summary: &mut DataSummary,
) -> Result<BTreeMap<String, Market>, BacktestError> {
    let mut out = BTreeMap::new();
    let listed = store
        .list_objects(&keys::table_prefix(keys::MARKETS))
        .await?;
    for key in keys::visible(&listed) {
        let batches = match file_batches(store, key).await {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                summary.skip(key, e.to_string());
                continue;
            }
        };
        match decode_markets(&batches, summary) {
            Ok(ms) => {
                summary.files_read += 1;
                for m in ms {
                    out.entry(m.condition_id.clone()).or_insert(m);
                }
            }
            Err(reason) => summary.skip(key, reason),
        }
    }
    Ok(out)
}

/// Every resolution of `resolutions/` (the newest `learned_at` of a market kept), with the
/// market it describes for markets the `markets` files lack.
async fn load_resolutions(
    store: &LocalStore,
    summary: &mut DataSummary,
) -> Result<BTreeMap<String, (Outcome, Option<Market>)>, BacktestError> {
    let mut out: BTreeMap<String, (Outcome, Option<Market>)> = BTreeMap::new();
    let listed = store
        .list_objects(&keys::table_prefix(keys::RESOLUTIONS))
        .await?;
    for key in keys::visible(&listed) {
        let batches = match file_batches(store, key).await {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                summary.skip(key, e.to_string());
                continue;
            }
        };
        match decode_resolutions(&batches, summary) {
            Ok(rs) => {
                summary.files_read += 1;
                for (id, o, m) in rs {
                    let newer = out
                        .get(&id)
                        .is_none_or(|(old, _)| o.learned_at > old.learned_at);
                    if newer {
                        out.insert(id, (o, m));
                    }
                }
            }
            Err(reason) => summary.skip(key, reason),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Rows out of the store's batches, column by column through its JSON reading of a cell
// ---------------------------------------------------------------------------------------------

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}`"))
}

/// The named columns of `batch`, or the first missing one as the error.
fn columns<'b, const N: usize>(
    batch: &'b RecordBatch,
    names: [&str; N],
) -> Result<[&'b ArrayRef; N], String> {
    let mut out = Vec::with_capacity(N);
    for n in names {
        out.push(column(batch, n)?);
    }
    out.try_into().map_err(|_| "columns".to_string())
}

// A cell of a type polytape writes (utf8, timestamp(ms), decimal, list<struct<price, size>>)
// is read straight from its array; any other type goes through the store's JSON reading
// of a cell, which accepts what a file of another writer may hold. The JSON path allocated a
// string or a map per value (≈ 6 per book level) and made the backtest malloc-bound.

fn typed<T: 'static>(a: &ArrayRef) -> Option<&T> {
    a.as_any().downcast_ref::<T>()
}

/// A decimal column as written (`decimal(18,6)` reads back as 64-bit) or as 128-bit.
#[derive(Clone, Copy)]
enum Decimals<'a> {
    D64(&'a Decimal64Array),
    D128(&'a Decimal128Array),
}

impl Decimals<'_> {
    fn of(a: &ArrayRef) -> Option<Decimals<'_>> {
        typed::<Decimal64Array>(a)
            .map(Decimals::D64)
            .or_else(|| typed::<Decimal128Array>(a).map(Decimals::D128))
    }

    fn at(self, i: usize) -> Result<Option<Decimal>, String> {
        let (valid, m, scale) = match self {
            Decimals::D64(d) => (d.is_valid(i), i128::from(d.value(i)), d.scale()),
            Decimals::D128(d) => (d.is_valid(i), d.value(i), d.scale()),
        };
        if !valid {
            return Ok(None);
        }
        let s = u32::try_from(scale).map_err(|_| format!("decimal scale {scale}"))?;
        // Normalized (0.920000 → 0.92) as the JSON reading gives it: the report prints the
        // values it derives with the scale they were read with.
        Decimal::try_from_i128_with_scale(m, s)
            .map(|d| Some(d.normalize()))
            .map_err(|e| format!("{m} (scale {scale}) is not a decimal: {e}"))
    }
}

fn cell(a: &ArrayRef, i: usize) -> Result<Value, String> {
    json::value(a.as_ref(), i).map_err(|e| e.to_string())
}

fn string(a: &ArrayRef, i: usize) -> Result<Option<String>, String> {
    if let Some(s) = typed::<StringArray>(a) {
        return Ok(s.is_valid(i).then(|| s.value(i).to_string()));
    }
    match cell(a, i)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(format!("{other} is not a string")),
    }
}

fn required(a: &ArrayRef, i: usize, name: &str) -> Result<String, String> {
    string(a, i)?.ok_or_else(|| format!("`{name}` is NULL"))
}

fn time(a: &ArrayRef, i: usize) -> Result<Option<Ts>, String> {
    if let Some(t) = typed::<TimestampMillisecondArray>(a) {
        if t.is_null(i) {
            return Ok(None);
        }
        return chrono::DateTime::from_timestamp_millis(t.value(i))
            .map(Some)
            .ok_or_else(|| format!("{} ms is not a time", t.value(i)));
    }
    string(a, i)?
        .map(|s| {
            s.parse::<Ts>()
                .map_err(|e| format!("{s:?} is not a time: {e}"))
        })
        .transpose()
}

fn decimal_of(v: &Value) -> Result<Option<Decimal>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Decimal::from_str(s)
            .map(Some)
            .map_err(|e| format!("{s:?} is not a decimal: {e}")),
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .map(Some)
            .map_err(|e| format!("{n} is not a decimal: {e}")),
        other => Err(format!("{other} is not a decimal")),
    }
}

fn decimal(a: &ArrayRef, i: usize) -> Result<Option<Decimal>, String> {
    if let Some(d) = Decimals::of(a) {
        return d.at(i);
    }
    decimal_of(&cell(a, i)?)
}

fn flag(a: &ArrayRef, i: usize) -> Result<Option<bool>, String> {
    match cell(a, i)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        other => Err(format!("{other} is not a boolean")),
    }
}

fn list(a: &ArrayRef, i: usize) -> Result<Vec<Value>, String> {
    match cell(a, i)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(v) => Ok(v),
        other => Err(format!("{other} is not a list")),
    }
}

fn levels(a: &ArrayRef, i: usize) -> Result<Vec<Level>, String> {
    let fields = typed::<ListArray>(a).and_then(|l| {
        let items = typed::<StructArray>(l.values())?;
        let price = items.column_by_name("price").and_then(Decimals::of)?;
        let size = items.column_by_name("size").and_then(Decimals::of)?;
        Some((l, items, price, size))
    });
    if let Some((l, items, price, size)) = fields {
        if l.is_null(i) {
            return Ok(Vec::new());
        }
        let offsets = l.value_offsets();
        let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
        let mut out = Vec::with_capacity(to - from);
        for j in from..to {
            let level = if items.is_valid(j) {
                (price.at(j)?, size.at(j)?)
            } else {
                (None, None)
            };
            match level {
                (Some(price), Some(size)) => out.push(Level { price, size }),
                _ => return Err("a level without price or size".to_string()),
            }
        }
        return Ok(out);
    }
    list(a, i)?
        .iter()
        .map(|l| {
            let price = decimal_of(l.get("price").unwrap_or(&Value::Null))?;
            let size = decimal_of(l.get("size").unwrap_or(&Value::Null))?;
            match (price, size) {
                (Some(price), Some(size)) => Ok(Level { price, size }),
                _ => Err("a level without price or size".to_string()),
            }
        })
        .collect()
}

/// The rows of a `snapshots` file; a row that cannot be read is skipped and counted.
fn decode_snapshots(
    batches: &[RecordBatch],
    summary: &mut DataSummary,
) -> Result<Vec<SnapshotRow>, String> {
    let mut out = Vec::new();
    for b in batches {
        let [ts, cid, token, price, bid, ask, mid] = columns(
            b,
            [
                "snapshot_ts",
                "condition_id",
                "token_id",
                "price",
                "best_bid",
                "best_ask",
                "mid_price",
            ],
        )?;
        for i in 0..b.num_rows() {
            let row = (|| -> Result<SnapshotRow, String> {
                Ok(SnapshotRow {
                    ts: time(ts, i)?.ok_or("`snapshot_ts` is NULL")?,
                    condition_id: required(cid, i, "condition_id")?,
                    token_id: required(token, i, "token_id")?,
                    price: decimal(price, i)?,
                    best_bid: decimal(bid, i)?,
                    best_ask: decimal(ask, i)?,
                    mid_price: decimal(mid, i)?,
                })
            })();
            match row {
                Ok(r) => out.push(r),
                Err(_) => summary.rows_skipped += 1,
            }
        }
    }
    Ok(out)
}

/// The rows of an `orderbooks` file as books observed at their tick.
fn decode_books(
    batches: &[RecordBatch],
    summary: &mut DataSummary,
) -> Result<Vec<BookRow>, String> {
    let mut out = Vec::new();
    for b in batches {
        let [ts, cid, token, hash, tick, bids, asks] = columns(
            b,
            [
                "snapshot_ts",
                "condition_id",
                "token_id",
                "book_hash",
                "tick_size",
                "bids",
                "asks",
            ],
        )?;
        for i in 0..b.num_rows() {
            let row = (|| -> Result<BookRow, String> {
                let condition_id = required(cid, i, "condition_id")?;
                Ok(BookRow {
                    ts: time(ts, i)?.ok_or("`snapshot_ts` is NULL")?,
                    book: Book {
                        token_id: required(token, i, "token_id")?,
                        condition_id: Some(condition_id.clone()),
                        bids: levels(bids, i)?,
                        asks: levels(asks, i)?,
                        timestamp: None,
                        hash: string(hash, i)?,
                        tick_size: decimal(tick, i)?,
                        ..Book::default()
                    },
                    condition_id,
                })
            })();
            match row {
                Ok(r) => out.push(r),
                Err(_) => summary.rows_skipped += 1,
            }
        }
    }
    Ok(out)
}

/// Column `name` of `batch` when the file has it (`None`: written before the column existed).
fn optional_column<'b>(batch: &'b RecordBatch, name: &str) -> Option<&'b ArrayRef> {
    batch.column_by_name(name)
}

/// The fee schedule of row `i` from the `fee_*` columns; `None` without a rate.
fn fee_schedule(
    [rate, exponent, rebate, taker_only]: [Option<&ArrayRef>; 4],
    i: usize,
) -> Result<Option<FeeSchedule>, String> {
    let Some(rate) = rate.map(|a| decimal(a, i)).transpose()?.flatten() else {
        return Ok(None);
    };
    let exponent = match exponent.map(|a| cell(a, i)).transpose()? {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|e| u32::try_from(e).ok())
            .ok_or_else(|| format!("fee_exponent {n} is not a whole number"))?,
        _ => return Err("a fee_rate without a fee_exponent".into()),
    };
    Ok(Some(FeeSchedule {
        rate,
        exponent,
        rebate_rate: rebate.map(|a| decimal(a, i)).transpose()?.flatten(),
        taker_only: taker_only
            .map(|a| flag(a, i))
            .transpose()?
            .flatten()
            .unwrap_or(true),
    }))
}

/// The markets of a `markets` file, result left open. The event and fee columns are read when
/// the file has them (files written before them lack them: `None`).
fn decode_markets(
    batches: &[RecordBatch],
    summary: &mut DataSummary,
) -> Result<Vec<Market>, String> {
    let mut out = Vec::new();
    for b in batches {
        let [cid, question, slug, yes, no, yes_o, no_o, end, first_seen, category, neg_risk] =
            columns(
                b,
                [
                    "condition_id",
                    "question",
                    "slug",
                    "yes_token_id",
                    "no_token_id",
                    "yes_outcome",
                    "no_outcome",
                    "end_date",
                    "first_seen",
                    "category",
                    "neg_risk",
                ],
            )?;
        let event = optional_column(b, "event_id");
        let fees_enabled = optional_column(b, "fees_enabled");
        let fee = [
            "fee_rate",
            "fee_exponent",
            "fee_rebate_rate",
            "fee_taker_only",
        ]
        .map(|name| optional_column(b, name));
        for i in 0..b.num_rows() {
            let m = (|| -> Result<Market, String> {
                let end_date = time(end, i)?.ok_or("`end_date` is NULL")?;
                Ok(Market {
                    condition_id: required(cid, i, "condition_id")?,
                    question: string(question, i)?.unwrap_or_default(),
                    slug: string(slug, i)?,
                    yes_token_id: required(yes, i, "yes_token_id")?,
                    no_token_id: required(no, i, "no_token_id")?,
                    outcomes: [
                        string(yes_o, i)?.unwrap_or_else(|| "Yes".into()),
                        string(no_o, i)?.unwrap_or_else(|| "No".into()),
                    ],
                    end_date,
                    tier: None,
                    active: true,
                    result: MarketResult::Open,
                    closed_at: None,
                    delisted: false,
                    first_seen: time(first_seen, i)?.unwrap_or(end_date),
                    category: string(category, i)?,
                    neg_risk: flag(neg_risk, i)?.unwrap_or(false),
                    volume_24h: None,
                    event_id: event.map(|a| string(a, i)).transpose()?.flatten(),
                    fees_enabled: fees_enabled.map(|a| flag(a, i)).transpose()?.flatten(),
                    fee: fee_schedule(fee, i)?,
                    version: 0,
                })
            })();
            match m {
                Ok(m) => out.push(m),
                Err(_) => summary.rows_skipped += 1,
            }
        }
    }
    Ok(out)
}

type DecodedResolution = (String, Outcome, Option<Market>);

/// The resolutions of a `resolutions` file, each with the market it describes (when it names
/// two tokens).
fn decode_resolutions(
    batches: &[RecordBatch],
    summary: &mut DataSummary,
) -> Result<Vec<DecodedResolution>, String> {
    let mut out = Vec::new();
    for b in batches {
        #[rustfmt::skip]
        let [cid, question, outcomes, tokens, end, closed_at, win_o, win_t, invalid, payouts,
            resolved_at, learned_at, uma, source] = columns(
                b,
                [
                    "condition_id",
                    "question",
                    "outcomes",
                    "token_ids",
                    "end_date",
                    "closed_at",
                    "winning_outcome",
                    "winning_token_id",
                    "invalid",
                    "payouts",
                    "resolved_at",
                    "learned_at",
                    "uma_status",
                    "source",
                ],
            )?;
        for i in 0..b.num_rows() {
            let r = (|| -> Result<DecodedResolution, String> {
                let id = required(cid, i, "condition_id")?;
                let strings = |a: &ArrayRef| -> Result<Vec<String>, String> {
                    list(a, i)?
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => Ok(s),
                            other => Err(format!("{other} is not a string")),
                        })
                        .collect()
                };
                let labels = strings(outcomes)?;
                let token_ids = strings(tokens)?;
                let winning_token = string(win_t, i)?;
                let winning_label = string(win_o, i)?;
                let winner = winning_token
                    .as_ref()
                    .and_then(|w| token_ids.iter().position(|t| t == w))
                    .or_else(|| {
                        winning_label
                            .as_ref()
                            .and_then(|w| labels.iter().position(|l| l == w))
                    });
                let payouts = list(payouts, i)?
                    .iter()
                    .map(|v| decimal_of(v).map(Option::unwrap_or_default))
                    .collect::<Result<Vec<Decimal>, String>>()?;
                let end_date = time(end, i)?.ok_or("`end_date` is NULL")?;
                let outcome = Outcome {
                    winner,
                    invalid: flag(invalid, i)?.unwrap_or(false),
                    payouts,
                    resolved_at: time(resolved_at, i)?,
                    learned_at: time(learned_at, i)?.ok_or("`learned_at` is NULL")?,
                    uma_status: string(uma, i)?,
                    source: string(source, i)?.unwrap_or_default(),
                };
                let market = (token_ids.len() == 2).then(|| Market {
                    condition_id: id.clone(),
                    question: string(question, i).ok().flatten().unwrap_or_default(),
                    slug: None,
                    yes_token_id: token_ids[0].clone(),
                    no_token_id: token_ids[1].clone(),
                    outcomes: [
                        labels.first().cloned().unwrap_or_else(|| "Yes".into()),
                        labels.get(1).cloned().unwrap_or_else(|| "No".into()),
                    ],
                    end_date,
                    tier: None,
                    active: true,
                    result: MarketResult::Open,
                    closed_at: time(closed_at, i).ok().flatten(),
                    delisted: false,
                    first_seen: end_date,
                    category: None,
                    neg_risk: false,
                    volume_24h: None,
                    event_id: None,
                    fees_enabled: None,
                    fee: None,
                    version: 0,
                });
                Ok((id, outcome, market))
            })();
            match r {
                Ok(r) => out.push(r),
                Err(_) => summary.rows_skipped += 1,
            }
        }
    }
    Ok(out)
}

/// The rows of one stored file of `snapshots` or `orderbooks` (by its key), as the replay
/// reads them; for the live executor, which reads a tick's two files as they are written.
/// Rows that cannot be read are skipped and counted in `summary`; a file that lacks a column
/// is an error with the reason.
pub fn decode_tick_file(
    key: &str,
    batches: &[RecordBatch],
    summary: &mut DataSummary,
) -> Result<(Vec<SnapshotRow>, Vec<BookRow>), String> {
    if key.starts_with(keys::SNAPSHOTS) {
        Ok((decode_snapshots(batches, summary)?, Vec::new()))
    } else if key.starts_with(keys::ORDERBOOKS) {
        Ok((Vec::new(), decode_books(batches, summary)?))
    } else {
        Err(format!(
            "{key} is neither a snapshots nor an orderbooks file"
        ))
    }
}
