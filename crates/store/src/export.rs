//! `polytape export`: the training set of a data directory as one file — every `snapshots` row
//! of a resolved market, taken before the market closed, with its label
//! ([`crate::parquet::training_columns`]), as Parquet or CSV.
//!
//! Memory does not grow with the directory: resolutions (one small row per market) are
//! loaded first, then snapshot files are streamed in key order one record batch at a time,
//! each batch filtered, labelled and handed to the writer (row groups of 8 Ki rows, written
//! by [`StreamingParquetWriter`], which keeps nothing per group already written). The
//! structure that could grow is the set of (market, snapshot_ts) keys already written, and it
//! holds only the rows whose time more than one file of the partition covers: a tick's rows all
//! sit in its `tier=/dt=` partition, so a duplicate (a copied file) can only be met there, at a
//! time two files share. The files' time ranges come from their Parquet statistics (a file
//! without them is taken to cover everything). A file of one tick is also checked against
//! itself, with a set of that tick's rows only.
//!
//! Compaction: each partition is listed once and read by the reading rule
//! ([`keys::visible`]): an hour with a compacted file is read from it alone, never also from
//! its sources still waiting to be deleted.
//!
//! Bad input never stops an export: a file that is unreadable, not Parquet, or lacks a column
//! the training set needs is skipped, reported through [`ExportEvent::Skipped`] and counted.
//! The output is written to `<out>.tmp` and renamed over `<out>` only once complete.

use crate::error::{Result, StoreError};
use crate::keys;
use crate::parquet::stream::StreamingParquetWriter;
use crate::parquet::{resolutions_schema, snapshots_schema, LABEL_COLUMNS};
use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use ::parquet::arrow::ProjectionMask;
use ::parquet::basic::Compression;
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use arrow_array::builder::{Float64Builder, Int32Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal64Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMillisecondType,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int16Array, PrimitiveArray, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use arrow_select::filter::FilterBuilder;
use chrono::{NaiveDate, TimeDelta};
use polytape_core::Ts;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::hash::Hasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The output file's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One Parquet file with the encoders' types (DECIMAL(18,6), TIMESTAMP(MILLIS, UTC), …).
    #[default]
    Parquet,
    /// A header row, then one line per row: RFC 4180 quoting, CRLF line ends, timestamps as
    /// RFC 3339 with milliseconds and `Z`, decimals as plain text, NULL as an empty field (an
    /// empty string is `""`).
    Csv,
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The data directory, laid out as the bucket is (see [`crate::keys`]).
    pub data_dir: PathBuf,
    /// The file to write (replaced when the export completes).
    pub out: PathBuf,
    pub format: Format,
    /// Keep rows with `snapshot_ts` at or after this.
    pub since: Option<Ts>,
    /// Keep rows with `snapshot_ts` before this.
    pub until: Option<Ts>,
    /// Keep rows of these tiers only; empty keeps every tier.
    pub tiers: Vec<u8>,
    /// Keep rows of markets without a resolution too, with NULL labels (the close filter needs
    /// a resolution, so it does not apply to them).
    pub include_unresolved: bool,
    /// Rows per record batch read: the unit of work, and so of memory.
    pub batch_rows: usize,
    /// How often [`ExportEvent::Progress`] is reported.
    pub progress_every: Duration,
}

impl ExportOptions {
    /// Every row of every tier of `data_dir` into a Parquet file at `out`, batches of 8,192
    /// rows, progress every 2 s.
    pub fn new(data_dir: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        ExportOptions {
            data_dir: data_dir.into(),
            out: out.into(),
            format: Format::Parquet,
            since: None,
            until: None,
            tiers: Vec::new(),
            include_unresolved: false,
            batch_rows: 8192,
            progress_every: Duration::from_secs(2),
        }
    }
}

/// What an export read, wrote and dropped. `rows_in` is the sum of `rows_written` and the
/// four `*_dropped` counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Markets with a resolution (after keeping the newest of each).
    pub resolutions: u64,
    /// `tier=/dt=` partitions read (the others were pruned by their key).
    pub partitions_read: u64,
    /// Snapshot and resolution files read to the end.
    pub files_read: u64,
    /// Files and directories skipped: unreadable, not Parquet, a required column missing or
    /// of another type, or not where the key layout puts a file.
    pub files_skipped: u64,
    /// Snapshot rows read from the partitions kept.
    pub rows_in: u64,
    pub rows_written: u64,
    /// Rows whose (condition_id, snapshot_ts) was already written.
    pub duplicates_dropped: u64,
    /// Rows taken at or after their market closed (`resolved_at`, else `closed_at`, else its
    /// end date).
    pub after_close_dropped: u64,
    /// Rows of markets without a resolution (kept with `include_unresolved`).
    pub unresolved_dropped: u64,
    /// Rows outside `since`..`until` in a partition that overlaps it.
    pub outside_window_dropped: u64,
    /// Most keys the duplicate sets held at once: rows at times two files of a partition
    /// share, plus the current one-tick file's rows.
    pub peak_partition_keys: u64,
}

impl fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows in, {} written; dropped {} duplicates, {} after close, {} unresolved, {} \
             outside --since/--until; {} files read, {} skipped; {} partitions, {} resolved markets",
            self.rows_in,
            self.rows_written,
            self.duplicates_dropped,
            self.after_close_dropped,
            self.unresolved_dropped,
            self.outside_window_dropped,
            self.files_read,
            self.files_skipped,
            self.partitions_read,
            self.resolutions,
        )
    }
}

/// What an export reports while it runs.
#[derive(Debug)]
pub enum ExportEvent<'a> {
    /// `path` was skipped, for `reason`; the export goes on.
    Skipped { path: &'a Path, reason: &'a str },
    /// The counts so far, at most every [`ExportOptions::progress_every`].
    Progress(&'a ExportSummary),
}

/// The Arrow schema of the training set: [`snapshots_schema`], then the label columns with
/// their types ([`LABEL_COLUMNS`]); `tier` is never NULL.
pub fn training_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| {
        let labels = LABEL_COLUMNS.iter().map(|c| {
            let t = match c.athena_type {
                "smallint" => DataType::Int16,
                "int" => DataType::Int32,
                "double" => DataType::Float64,
                "timestamp" => timestamp_type(),
                _ => DataType::Utf8,
            };
            Arc::new(Field::new(c.name, t, c.name != "tier"))
        });
        let fields: Vec<FieldRef> = snapshots_schema()
            .fields()
            .iter()
            .cloned()
            .chain(labels)
            .collect();
        Arc::new(Schema::new(fields))
    }))
}

/// Writes the training set of `opts.data_dir` to `opts.out`, reporting skipped files and
/// progress to `on_event`. Fails only when the output cannot be written (or the data
/// directory does not exist); then `opts.out` is left as it was.
pub fn export(
    opts: &ExportOptions,
    on_event: &mut dyn FnMut(ExportEvent<'_>),
) -> Result<ExportSummary> {
    if !opts.data_dir.is_dir() {
        return Err(StoreError::Config(format!(
            "no data directory at {}",
            opts.data_dir.display()
        )));
    }
    if let Some(parent) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = opts.out.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let run = Sink::create(&tmp, opts.format).and_then(|sink| {
        let mut run = Run {
            opts,
            on_event,
            summary: ExportSummary::default(),
            last_progress: Instant::now(),
            resolutions: HashMap::new(),
            seen: HashSet::new(),
            shared: Shared::default(),
            file_seen: None,
            sink,
        };
        run.load_resolutions()?;
        run.export_snapshots()?;
        run.sink.finish()?;
        Ok(run.summary)
    });
    match run {
        Ok(summary) => {
            std::fs::rename(&tmp, &opts.out)?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// What a resolution says about the rows of its market.
#[derive(Debug, Clone)]
struct Label {
    winning_token_id: Option<String>,
    winning_outcome: Option<String>,
    invalid: bool,
    resolved_at_ms: Option<i64>,
    /// When the market closed: `resolved_at`, else `closed_at`, else its end date.
    close_ms: i64,
    learned_at_ms: i64,
}

impl Label {
    /// 1 when `token_id` won, 0 when another token did; `None` for INVALID or no winner.
    fn first_outcome_won(&self, token_id: &str) -> Option<i32> {
        if self.invalid {
            return None;
        }
        let winner = self.winning_token_id.as_deref()?;
        Some(i32::from(winner == token_id))
    }
}

/// A `snapshots/tier=<t>/dt=<d>` directory the filters keep.
struct Partition {
    tier: u8,
    dt: NaiveDate,
    dir: PathBuf,
}

/// One export under way.
struct Run<'a> {
    opts: &'a ExportOptions,
    on_event: &'a mut dyn FnMut(ExportEvent<'_>),
    summary: ExportSummary,
    last_progress: Instant,
    /// By condition_id.
    resolutions: HashMap<String, Label>,
    /// (hash of condition_id, snapshot_ts) of the rows written from the current partition at
    /// times more than one of its files covers.
    seen: HashSet<(u64, i64)>,
    /// The times of the current partition more than one file covers.
    shared: Shared,
    /// The keys written from the current file, when it holds one tick (and so few rows).
    file_seen: Option<HashSet<u64>>,
    sink: Sink,
}

/// Column positions in [`snapshots_schema`] the labelling reads.
const SNAPSHOT_TS: usize = 0;
const CONDITION_ID: usize = 2;
const TOKEN_ID: usize = 3;

impl Run<'_> {
    fn skip(&mut self, path: &Path, reason: &str) {
        self.summary.files_skipped += 1;
        (self.on_event)(ExportEvent::Skipped { path, reason });
    }

    fn progress(&mut self) {
        if self.last_progress.elapsed() >= self.opts.progress_every {
            self.last_progress = Instant::now();
            (self.on_event)(ExportEvent::Progress(&self.summary));
        }
    }

    /// Every `resolutions/dt=<d>/<condition_id>.parquet`, the newest `learned_at` of a market
    /// kept (the first met on a tie).
    fn load_resolutions(&mut self) -> Result<()> {
        let root = self.opts.data_dir.join(keys::RESOLUTIONS);
        for (name, dir) in entries(&root)? {
            if !dir.is_dir() || date_of(&name).is_none() {
                self.skip(&dir, "not a dt=<yyyy-mm-dd> directory");
                continue;
            }
            for (_, path) in entries(&dir)? {
                match read_resolutions(&path, &mut self.resolutions) {
                    Ok(()) => self.summary.files_read += 1,
                    Err(reason) => self.skip(&path, &reason),
                }
            }
        }
        self.summary.resolutions = self.resolutions.len() as u64;
        Ok(())
    }

    /// Every snapshot file of the partitions the filters keep, in key order.
    fn export_snapshots(&mut self) -> Result<()> {
        for p in self.partitions()? {
            self.summary.partitions_read += 1;
            self.seen.clear();
            let listed = entries(&p.dir)?;
            let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
            let read: HashSet<&str> = keys::visible(&names).into_iter().copied().collect();
            let files: Vec<&(String, PathBuf)> = listed
                .iter()
                .filter(|(n, _)| read.contains(n.as_str()))
                .collect();
            let ranges: Vec<(i64, i64)> = files.iter().map(|(_, f)| ts_range(f)).collect();
            self.shared = Shared::of(&ranges);
            for ((_, path), (lo, hi)) in files.iter().zip(ranges) {
                self.file_seen = (lo == hi).then(HashSet::new);
                self.export_file(path, p.tier)?;
            }
            self.file_seen = None;
            self.progress();
        }
        Ok(())
    }

    /// The partitions under `snapshots/` that `tiers`, `since` and `until` do not exclude, by
    /// tier then day.
    fn partitions(&mut self) -> Result<Vec<Partition>> {
        let root = self.opts.data_dir.join(keys::SNAPSHOTS);
        let mut out = Vec::new();
        for (name, tier_dir) in entries(&root)? {
            let tier = name
                .strip_prefix("tier=")
                .and_then(|t| t.parse::<u8>().ok());
            let Some(tier) = tier.filter(|_| tier_dir.is_dir()) else {
                self.skip(&tier_dir, "not a tier=<n> directory");
                continue;
            };
            if !self.opts.tiers.is_empty() && !self.opts.tiers.contains(&tier) {
                continue;
            }
            for (name, dir) in entries(&tier_dir)? {
                let Some(dt) = date_of(&name).filter(|_| dir.is_dir()) else {
                    self.skip(&dir, "not a dt=<yyyy-mm-dd> directory");
                    continue;
                };
                if overlaps(dt, self.opts.since, self.opts.until) {
                    out.push(Partition { tier, dt, dir });
                }
            }
        }
        out.sort_by_key(|p| (p.tier, p.dt));
        Ok(out)
    }

    /// Streams one snapshot file into the sink. A file that fails to open or to decode is
    /// skipped (the rows of its batches already written stay written); only a failed write
    /// fails the export.
    fn export_file(&mut self, path: &Path, tier: u8) -> Result<()> {
        let reader = match open(path, &snapshots_schema(), self.opts.batch_rows) {
            Ok(r) => r,
            Err(reason) => {
                self.skip(path, &reason);
                return Ok(());
            }
        };
        for batch in reader {
            let labelled = batch
                .map_err(|e| e.to_string())
                .and_then(|b| self.label(&b, tier).map_err(|e| e.to_string()));
            match labelled {
                Ok(Some(batch)) => {
                    self.sink.write(&batch)?;
                    self.summary.rows_written += batch.num_rows() as u64;
                }
                Ok(None) => {}
                Err(reason) => {
                    self.skip(path, &reason);
                    return Ok(());
                }
            }
            self.progress();
        }
        self.summary.files_read += 1;
        Ok(())
    }

    /// The rows of `batch` (a `snapshots` batch, any column order) to write, in training
    /// set columns with their labels; `None` when every row is dropped.
    fn label(&mut self, batch: &RecordBatch, tier: u8) -> Result<Option<RecordBatch>> {
        let columns = in_order(batch, &snapshots_schema())?;
        let ts = columns[SNAPSHOT_TS].as_primitive::<TimestampMillisecondType>();
        let condition_ids = columns[CONDITION_ID].as_string::<i32>();
        let token_ids = columns[TOKEN_ID].as_string::<i32>();
        let since = self.opts.since.map(|t| t.timestamp_millis());
        let until = self.opts.until.map(|t| t.timestamp_millis());
        let n = batch.num_rows();
        let mut keep = Vec::with_capacity(n);
        let mut won = Int32Builder::with_capacity(n);
        let mut outcome = StringBuilder::new();
        let mut resolved_at = Vec::with_capacity(n);
        let mut hours = Float64Builder::with_capacity(n);
        let s = &mut self.summary;
        for i in 0..n {
            s.rows_in += 1;
            let t = ts.value(i);
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) {
                s.outside_window_dropped += 1;
                keep.push(false);
                continue;
            }
            let condition_id = condition_ids.value(i);
            let label = self.resolutions.get(condition_id);
            match label {
                None if !self.opts.include_unresolved => {
                    s.unresolved_dropped += 1;
                    keep.push(false);
                    continue;
                }
                Some(l) if t >= l.close_ms => {
                    s.after_close_dropped += 1;
                    keep.push(false);
                    continue;
                }
                _ => {}
            }
            let key = hash_of(condition_id);
            let fresh = if self.shared.contains(t) {
                self.seen.insert((key, t))
            } else {
                self.file_seen.as_mut().is_none_or(|f| f.insert(key))
            };
            if !fresh {
                s.duplicates_dropped += 1;
                keep.push(false);
                continue;
            }
            keep.push(true);
            won.append_option(label.and_then(|l| l.first_outcome_won(token_ids.value(i))));
            outcome.append_option(label.and_then(|l| l.winning_outcome.as_deref()));
            let resolved = label.and_then(|l| l.resolved_at_ms);
            resolved_at.push(resolved);
            hours.append_option(resolved.map(|r| r.saturating_sub(t) as f64 / 3_600_000.0));
        }
        let held = self.seen.len() + self.file_seen.as_ref().map_or(0, HashSet::len);
        s.peak_partition_keys = s.peak_partition_keys.max(held as u64);
        let kept = resolved_at.len();
        if kept == 0 {
            return Ok(None);
        }
        let mut out = if kept == n {
            columns
        } else {
            let filter = FilterBuilder::new(&BooleanArray::from(keep))
                .optimize()
                .build();
            columns
                .iter()
                .map(|c| filter.filter(c))
                .collect::<std::result::Result<Vec<_>, _>>()?
        };
        out.push(Arc::new(Int16Array::from_value(i16::from(tier), kept)));
        out.push(Arc::new(won.finish()));
        out.push(Arc::new(outcome.finish()));
        out.push(Arc::new(
            TimestampMillisecondArray::from(resolved_at).with_timezone(UTC),
        ));
        out.push(Arc::new(hours.finish()));
        Ok(Some(RecordBatch::try_new(training_schema(), out)?))
    }
}

const UTC: &str = "UTC";

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// Whether the UTC day `dt` holds any instant of `since`..`until`.
fn overlaps(dt: NaiveDate, since: Option<Ts>, until: Option<Ts>) -> bool {
    let start = dt.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = start + TimeDelta::days(1);
    since.is_none_or(|s| s < end) && until.is_none_or(|u| u > start)
}

/// The `snapshot_ts` range (epoch ms, inclusive) of a Parquet file from its row groups'
/// statistics; the whole line when it has none or cannot be read (then every time is shared,
/// and an unreadable file is reported when it is read).
fn ts_range(path: &Path) -> (i64, i64) {
    const ALL: (i64, i64) = (i64::MIN, i64::MAX);
    let Ok(file) = File::open(path) else {
        return ALL;
    };
    let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(file) else {
        return ALL;
    };
    let meta = builder.metadata();
    let Some(col) = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == "snapshot_ts")
    else {
        return ALL;
    };
    let mut range: Option<(i64, i64)> = None;
    for rg in meta.row_groups() {
        if rg.num_rows() == 0 {
            continue;
        }
        let Some(::parquet::file::statistics::Statistics::Int64(st)) = rg.column(col).statistics()
        else {
            return ALL;
        };
        let (Some(&lo), Some(&hi)) = (st.min_opt(), st.max_opt()) else {
            return ALL;
        };
        range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    // No rows: it covers nothing (an empty range no other file's can meet).
    range.unwrap_or((i64::MAX, i64::MIN))
}

/// The times (epoch ms) covered by more than one file of a partition, as sorted, disjoint,
/// inclusive segments.
#[derive(Debug, Default)]
struct Shared(Vec<(i64, i64)>);

impl Shared {
    /// From each file's inclusive `(lo, hi)` range (`lo > hi`: an empty file, ignored).
    fn of(ranges: &[(i64, i64)]) -> Shared {
        // Starts sort before ends at the same time: ranges touching at a point share it.
        let mut events: Vec<(i64, u8)> = Vec::with_capacity(ranges.len() * 2);
        for &(lo, hi) in ranges.iter().filter(|(lo, hi)| lo <= hi) {
            events.push((lo, 0));
            events.push((hi, 1));
        }
        events.sort_unstable();
        let (mut open, mut start, mut out) = (0usize, 0i64, Vec::new());
        for (t, kind) in events {
            if kind == 0 {
                open += 1;
                if open == 2 {
                    start = t;
                }
            } else {
                if open == 2 {
                    out.push((start, t));
                }
                open -= 1;
            }
        }
        Shared(out)
    }

    /// Whether more than one file covers `t`.
    fn contains(&self, t: i64) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < t);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= t)
    }
}

/// A 64-bit hash of a condition id: the duplicate set stores this, not the 66-byte id.
fn hash_of(condition_id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(condition_id.as_bytes());
    h.finish()
}

/// The day of a `dt=<yyyy-mm-dd>` directory name.
fn date_of(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("dt=")?, "%Y-%m-%d").ok()
}

/// The entries of `dir` by name, without hidden ones (`.` or `_` first, as Athena does: the
/// local store writes `.<name>.tmp-…` while a write is in flight); none when it is missing.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(['.', '_']) {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A reader of `want`'s columns of the Parquet file at `path`, or why it cannot be read as
/// that table: unreadable, not Parquet, a column missing, of another type, or nullable where
/// the table's is not.
fn open(
    path: &Path,
    want: &Schema,
    batch_rows: usize,
) -> std::result::Result<ParquetRecordBatchReader, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let have = Arc::clone(builder.schema());
    let mut roots = Vec::with_capacity(want.fields().len());
    for f in want.fields() {
        let Some((i, h)) = have.column_with_name(f.name()) else {
            return Err(format!("no column {}", f.name()));
        };
        if h.data_type() != f.data_type() || (h.is_nullable() && !f.is_nullable()) {
            return Err(format!(
                "column {} is {}{}, not {}",
                f.name(),
                h.data_type(),
                if h.is_nullable() { " (nullable)" } else { "" },
                f.data_type()
            ));
        }
        roots.push(i);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(|e| e.to_string())
}

/// The columns of `batch` in `want`'s order (a projection keeps the file's order).
fn in_order(batch: &RecordBatch, want: &Schema) -> Result<Vec<ArrayRef>> {
    want.fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .filter(|c| c.data_type() == f.data_type())
                .cloned()
                .ok_or_else(|| StoreError::Encode(format!("column {} missing", f.name())))
        })
        .collect()
}

/// The resolution columns a label needs.
fn label_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let want = [
            "condition_id",
            "end_date",
            "winning_outcome",
            "winning_token_id",
            "invalid",
            "resolved_at",
            "learned_at",
            "closed_at",
        ];
        let all = resolutions_schema();
        let fields: Vec<FieldRef> = want
            .iter()
            .filter_map(|n| all.field_with_name(n).ok())
            .map(|f| Arc::new(f.clone()))
            .collect();
        Schema::new(fields)
    })
}

/// Adds the markets of one `resolutions` file to `into`, keeping the newest `learned_at`.
fn read_resolutions(
    path: &Path,
    into: &mut HashMap<String, Label>,
) -> std::result::Result<(), String> {
    let want = label_schema();
    for batch in open(path, want, 1024)? {
        let batch = batch.map_err(|e| e.to_string())?;
        let c = in_order(&batch, want).map_err(|e| e.to_string())?;
        let condition_id = c[0].as_string::<i32>();
        let end_date = c[1].as_primitive::<TimestampMillisecondType>();
        let outcome = c[2].as_string::<i32>();
        let token = c[3].as_string::<i32>();
        let invalid = c[4].as_boolean();
        let resolved_at = c[5].as_primitive::<TimestampMillisecondType>();
        let learned_at = c[6].as_primitive::<TimestampMillisecondType>();
        let closed_at = c[7].as_primitive::<TimestampMillisecondType>();
        let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
        for i in 0..batch.num_rows() {
            let resolved = resolved_at.is_valid(i).then(|| resolved_at.value(i));
            let label = Label {
                winning_token_id: opt(token, i),
                winning_outcome: opt(outcome, i),
                invalid: invalid.is_valid(i) && invalid.value(i),
                resolved_at_ms: resolved,
                // As `Resolution::close`: closedTime, else when polytape saw it closed, else
                // the end date.
                close_ms: resolved
                    .or_else(|| closed_at.is_valid(i).then(|| closed_at.value(i)))
                    .unwrap_or(end_date.value(i)),
                learned_at_ms: learned_at.value(i),
            };
            let id = condition_id.value(i);
            match into.get(id) {
                Some(old) if old.learned_at_ms >= label.learned_at_ms => {}
                _ => {
                    into.insert(id.to_owned(), label);
                }
            }
        }
    }
    Ok(())
}

/// Where labelled batches go.
enum Sink {
    Parquet(Box<StreamingParquetWriter>),
    Csv(BufWriter<File>),
}

/// Rows per row group of the Parquet output (a group ends with the batch that reaches it).
/// The writer holds one group in flight — its compressed pages and each column's current page
/// of at most 64 KiB — and nothing per group already written ([`StreamingParquetWriter`]).
const GROUP_ROWS: usize = 8 * 1024;

impl Sink {
    fn create(path: &Path, format: Format) -> Result<Sink> {
        Ok(match format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(None)
                    // Statistics per column chunk, no page index: what the streaming writer
                    // supports (a reader still skips row groups by their statistics).
                    .set_statistics_enabled(EnabledStatistics::Chunk)
                    .set_offset_index_disabled(true)
                    // No dictionaries: their encoders buffer the most, and the file is barely
                    // larger without them (61 MiB for a million rows).
                    .set_dictionary_enabled(false)
                    .set_data_page_size_limit(64 * 1024)
                    .build();
                Sink::Parquet(Box::new(StreamingParquetWriter::create(
                    path,
                    training_schema(),
                    props,
                    GROUP_ROWS,
                )?))
            }
            Format::Csv => {
                let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
                let schema = training_schema();
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                w.write_all(names.join(",").as_bytes())?;
                w.write_all(b"\r\n")?;
                Sink::Csv(w)
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Sink::Parquet(w) => w.write(batch)?,
            Sink::Csv(w) => write_csv(w, batch)?,
        }
        Ok(())
    }

    /// Completes the file and makes it durable, so the rename publishes a whole file.
    fn finish(self) -> Result<()> {
        match self {
            Sink::Parquet(w) => w.finish()?,
            Sink::Csv(w) => {
                let file = w.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
            }
        }
        Ok(())
    }
}

/// One column of a batch, as CSV text.
enum Text<'a> {
    Ts(&'a TimestampMillisecondArray),
    Str(&'a StringArray),
    Dec(&'a PrimitiveArray<Decimal64Type>, u32),
    F64(&'a PrimitiveArray<Float64Type>),
    I8(&'a PrimitiveArray<Int8Type>),
    I16(&'a PrimitiveArray<Int16Type>),
    I32(&'a PrimitiveArray<Int32Type>),
    I64(&'a PrimitiveArray<Int64Type>),
    Bool(&'a BooleanArray),
}

impl<'a> Text<'a> {
    fn of(a: &'a ArrayRef) -> Result<Text<'a>> {
        Ok(match a.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => Text::Ts(a.as_primitive()),
            DataType::Utf8 => Text::Str(a.as_string()),
            DataType::Decimal64(_, scale) if (0..=28).contains(scale) => {
                Text::Dec(a.as_primitive(), u32::from(scale.unsigned_abs()))
            }
            DataType::Float64 => Text::F64(a.as_primitive()),
            DataType::Int8 => Text::I8(a.as_primitive()),
            DataType::Int16 => Text::I16(a.as_primitive()),
            DataType::Int32 => Text::I32(a.as_primitive()),
            DataType::Int64 => Text::I64(a.as_primitive()),
            DataType::Boolean => Text::Bool(a.as_boolean()),
            t => return Err(StoreError::Encode(format!("csv: no text form for {t}"))),
        })
    }

    /// Row `i` as a CSV field; nothing for NULL.
    fn write(&self, w: &mut impl Write, i: usize) -> std::io::Result<()> {
        match self {
            Text::Ts(a) if a.is_valid(i) => {
                match chrono::DateTime::from_timestamp_millis(a.value(i)) {
                    Some(t) => write!(w, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
                    None => write!(w, "{}", a.value(i)),
                }
            }
            Text::Str(a) if a.is_valid(i) => write_quoted(w, a.value(i)),
            Text::Dec(a, scale) if a.is_valid(i) => {
                match rust_decimal::Decimal::try_new(a.value(i), *scale) {
                    Ok(d) => write!(w, "{}", d.normalize()),
                    Err(_) => Ok(()),
                }
            }
            Text::F64(a) if a.is_valid(i) => write!(w, "{}", a.value(i)),
            Text::I8(a) if a.is_valid(i) => write!(w, "{}", a.value(i)),
            Text::I16(a) if a.is_valid(i) => write!(w, "{}", a.value(i)),
            Text::I32(a) if a.is_valid(i) => write!(w, "{}", a.value(i)),
            Text::I64(a) if a.is_valid(i) => write!(w, "{}", a.value(i)),
            Text::Bool(a) if a.is_valid(i) => write!(w, "{}", a.value(i)),
            _ => Ok(()),
        }
    }
}

/// `s` as an RFC 4180 field: quoted (quotes doubled) when it holds a comma, a quote or a line
/// break, and when empty so that it differs from NULL.
fn write_quoted(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    if !s.is_empty() && !s.contains([',', '"', '\n', '\r']) {
        return w.write_all(s.as_bytes());
    }
    w.write_all(b"\"")?;
    w.write_all(s.replace('"', "\"\"").as_bytes())?;
    w.write_all(b"\"")
}

fn write_csv(w: &mut impl Write, batch: &RecordBatch) -> Result<()> {
    let columns = batch
        .columns()
        .iter()
        .map(Text::of)
        .collect::<Result<Vec<_>>>()?;
    for i in 0..batch.num_rows() {
        for (j, c) in columns.iter().enumerate() {
            if j > 0 {
                w.write_all(b",")?;
            }
            c.write(w, i)?;
        }
        w.write_all(b"\r\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_fields_with_commas_quotes_or_nothing_then_they_are_quoted_as_rfc_4180_says() {
        let quoted = |s: &str| {
            let mut out = Vec::new();
            write_quoted(&mut out, s).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(quoted("Crypto"), "Crypto");
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"yes\""), "\"say \"\"yes\"\"\"");
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
        assert_eq!(quoted(""), "\"\"", "an empty string is not NULL");
    }

    #[test]
    fn given_a_day_partition_then_it_is_read_only_when_it_overlaps_since_until() {
        let since = Some("2026-11-20T12:00:00Z".parse().unwrap());
        let until = Some("2026-11-22T00:00:00Z".parse().unwrap());
        let run_overlaps = |day: &str| overlaps(day.parse().unwrap(), since, until);
        assert!(!run_overlaps("2026-11-19"));
        assert!(run_overlaps("2026-11-20"), "since falls inside the day");
        assert!(run_overlaps("2026-11-21"));
        assert!(
            !run_overlaps("2026-11-22"),
            "until is exclusive: midnight starts nothing"
        );
    }

    #[test]
    fn given_file_ranges_then_only_times_two_files_cover_are_shared() {
        let s = Shared::of(&[(10, 10), (20, 20), (20, 20), (30, 50), (40, 60), (70, 69)]);
        assert_eq!(s.0, vec![(20, 20), (40, 50)]);
        for (t, shared) in [
            (10, false),
            (20, true),
            (30, false),
            (40, true),
            (50, true),
            (55, false),
            (69, false),
        ] {
            assert_eq!(s.contains(t), shared, "{t}");
        }
        let touching = Shared::of(&[(0, 5), (5, 9)]);
        assert_eq!(
            touching.0,
            vec![(5, 5)],
            "inclusive ranges meeting at a point share it"
        );
        let unknown = Shared::of(&[(i64::MIN, i64::MAX), (3, 3)]);
        assert!(unknown.contains(3) && !unknown.contains(4));
        assert!(
            Shared::of(&[(1, 9)]).0.is_empty(),
            "one file shares nothing"
        );
    }
}
