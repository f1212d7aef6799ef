//! `polytape export` on a data directory written with the crate's own encoders (snapshot and
//! resolution files under the keys `polytape run` uses), read back with the parquet reader.
//!
//! The fixture (see [`Fixture::standard`]): four markets ending 2026-11-20 18:00Z — #1 won by
//! its first outcome at 18:05, #2 by its second at 18:01, #3 INVALID with no resolved_at (so it
//! closes at its end date), #4 not resolved — each sampled by a T2 tick at 17:00 and a T4 tick
//! at 18:02:30.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal64Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMillisecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{LogicalType, TimeUnit, Type as Physical};
use polytape_core::money::from_mantissa;
use polytape_core::{Market, MarketResult, Outcome, Resolution, Snapshot, TickId, Tier, Ts};
use polytape_store::contract::{at, market};
use polytape_store::export::{
    export, training_schema, ExportEvent, ExportOptions, ExportSummary, Format,
};
use polytape_store::keys;
use polytape_store::parquet::{
    encode_resolutions, encode_snapshots, snapshots_schema, training_columns,
};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A snapshot row of market `n`'s first-outcome token at `ts`, with a few columns set.
fn row(n: u32, ts: &str) -> Snapshot {
    let m = market(n, None, true);
    Snapshot {
        snapshot_ts: at(ts),
        fetched_at: at(ts) + chrono::TimeDelta::milliseconds(1_234),
        condition_id: m.condition_id,
        token_id: m.yes_token_id,
        tier: None,
        interval_s: 60,
        price: Some(d("0.425") + Decimal::from(n) / Decimal::from(100)),
        best_bid: Some(d("0.42")),
        bid_levels: Some(37),
        book_imbalance: Some(0.125),
        time_since_whale_s: Some(1_234),
        day_of_week: Some(5),
        category: Some(format!("Politics, \"US\" #{n}")),
        neg_risk: Some(n.is_multiple_of(2)),
        ..Snapshot::default()
    }
}

/// Market `n` resolved: `winner` 0 or 1, `None` for INVALID.
fn resolved(n: u32, winner: Option<usize>, resolved_at: Option<&str>, learned_at: &str) -> Market {
    let mut m = market(n, None, false);
    m.result = MarketResult::Resolved(Outcome {
        winner,
        invalid: winner.is_none(),
        payouts: match winner {
            Some(0) => vec![Decimal::ONE, Decimal::ZERO],
            Some(_) => vec![Decimal::ZERO, Decimal::ONE],
            None => vec![d("0.5"), d("0.5")],
        },
        resolved_at: resolved_at.map(at),
        learned_at: at(learned_at),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    });
    m
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn empty() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn standard() -> Fixture {
        let f = Fixture::empty();
        f.resolve(&resolved(
            1,
            Some(0),
            Some("2026-11-20T18:05:00Z"),
            "2026-11-20T18:10:00Z",
        ));
        f.resolve(&resolved(
            2,
            Some(1),
            Some("2026-11-20T18:01:00Z"),
            "2026-11-20T18:10:00Z",
        ));
        f.resolve(&resolved(3, None, None, "2026-11-20T18:10:00Z"));
        let t2 = "2026-11-20T17:00:00Z";
        f.snapshots(
            Tier::T2,
            t2,
            &[row(1, t2), row(2, t2), row(3, t2), row(4, t2)],
        );
        let t4 = "2026-11-20T18:02:30Z";
        f.snapshots(
            Tier::T4,
            t4,
            &[row(1, t4), row(2, t4), row(3, t4), row(4, t4)],
        );
        f
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.path().join(key)
    }

    fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.path(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Writes the tick's file; returns its key.
    fn snapshots(&self, tier: Tier, tick: &str, rows: &[Snapshot]) -> String {
        let key = keys::snapshots(&TickId {
            tier,
            tick_ts: at(tick),
        });
        self.put(&key, &encode_snapshots(rows).unwrap().bytes);
        key
    }

    fn resolve(&self, m: &Market) {
        let r = Resolution::of(m).unwrap();
        self.put(
            &keys::resolution(&r),
            &encode_resolutions(std::slice::from_ref(&r)).unwrap().bytes,
        );
    }

    fn options(&self, out: &str) -> ExportOptions {
        ExportOptions::new(self.dir.path(), self.path(out))
    }

    /// Runs the export, collecting the skipped paths (relative to the data directory).
    fn export(&self, opts: &ExportOptions) -> (ExportSummary, Vec<String>) {
        let mut skipped = Vec::new();
        let summary = export(opts, &mut |e| {
            if let ExportEvent::Skipped { path, reason } = e {
                let rel = path.strip_prefix(self.dir.path()).unwrap();
                skipped.push(format!("{}: {reason}", rel.display()));
            }
        })
        .unwrap();
        assert_eq!(
            summary.rows_in,
            summary.rows_written
                + summary.duplicates_dropped
                + summary.after_close_dropped
                + summary.unresolved_dropped
                + summary.outside_window_dropped,
            "every row read is written or dropped for one reason: {summary:?}"
        );
        (summary, skipped)
    }
}

/// The exported file read back whole.
fn read(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow_select::concat::concat_batches(&training_schema(), &batches).unwrap()
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a dyn Array {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_ref()
}
fn strc(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let a = column(b, name).as_string::<i32>();
    a.is_valid(i).then(|| a.value(i).to_string())
}
fn ts(b: &RecordBatch, name: &str, i: usize) -> Option<Ts> {
    let a = column(b, name).as_primitive::<TimestampMillisecondType>();
    a.is_valid(i)
        .then(|| chrono::DateTime::from_timestamp_millis(a.value(i)).unwrap())
}
fn i32c(b: &RecordBatch, name: &str, i: usize) -> Option<i32> {
    let a = column(b, name).as_primitive::<Int32Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn f64c(b: &RecordBatch, name: &str, i: usize) -> Option<f64> {
    let a = column(b, name).as_primitive::<Float64Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn tier(b: &RecordBatch, i: usize) -> i16 {
    column(b, "tier").as_primitive::<Int16Type>().value(i)
}
fn dec(b: &RecordBatch, name: &str, i: usize) -> Option<Decimal> {
    let a = column(b, name).as_primitive::<Decimal64Type>();
    a.is_valid(i).then(|| from_mantissa(a.value(i)))
}

/// (condition id's market number, snapshot_ts) of every row, in file order.
fn keys_of(b: &RecordBatch) -> Vec<(u32, String)> {
    (0..b.num_rows())
        .map(|i| {
            let id = strc(b, "condition_id", i).unwrap();
            let n = u32::from_str_radix(id.trim_start_matches("0x"), 16).unwrap();
            let t = ts(b, "snapshot_ts", i).unwrap();
            (n, t.format("%H:%M:%S").to_string())
        })
        .collect()
}

fn pairs(v: &[(u32, &str)]) -> Vec<(u32, String)> {
    v.iter().map(|(n, t)| (*n, t.to_string())).collect()
}

#[test]
fn given_resolved_markets_then_rows_before_close_are_labelled_first_second_or_invalid() {
    let f = Fixture::standard();
    let opts = f.options("train.parquet");
    let (s, skipped) = f.export(&opts);
    assert!(skipped.is_empty(), "{skipped:?}");
    let b = read(&opts.out);
    // T2 first (tier then day), rows in file order; at 18:02:30 only #1 is still open (#2
    // resolved at 18:01, #3 closed at its 18:00 end date, #4 has no resolution).
    assert_eq!(
        keys_of(&b),
        pairs(&[
            (1, "17:00:00"),
            (2, "17:00:00"),
            (3, "17:00:00"),
            (1, "18:02:30")
        ])
    );
    assert_eq!(
        (
            s.rows_in,
            s.rows_written,
            s.after_close_dropped,
            s.unresolved_dropped
        ),
        (8, 4, 2, 2)
    );
    assert_eq!((s.resolutions, s.files_read, s.files_skipped), (3, 5, 0));
    assert_eq!((tier(&b, 0), tier(&b, 3)), (2, 4));

    // #1: the row's (first-outcome) token won.
    assert_eq!(i32c(&b, "first_outcome_won", 0), Some(1));
    assert_eq!(strc(&b, "winning_outcome", 0).as_deref(), Some("Up"));
    assert_eq!(ts(&b, "resolved_at", 0), Some(at("2026-11-20T18:05:00Z")));
    assert_eq!(f64c(&b, "hours_to_resolution", 0), Some(65.0 / 60.0));
    assert_eq!(f64c(&b, "hours_to_resolution", 3), Some(2.5 / 60.0));
    // #2: the other token won.
    assert_eq!(i32c(&b, "first_outcome_won", 1), Some(0));
    assert_eq!(strc(&b, "winning_outcome", 1).as_deref(), Some("Down"));
    assert_eq!(f64c(&b, "hours_to_resolution", 1), Some(61.0 / 60.0));
    // #3: INVALID: no label, no resolution time.
    assert_eq!(i32c(&b, "first_outcome_won", 2), None);
    assert_eq!(strc(&b, "winning_outcome", 2), None);
    assert_eq!(ts(&b, "resolved_at", 2), None);
    assert_eq!(f64c(&b, "hours_to_resolution", 2), None);

    // The snapshot columns come through unchanged.
    assert_eq!(dec(&b, "price", 1), Some(d("0.445")));
    assert_eq!(
        strc(&b, "category", 0).as_deref(),
        Some("Politics, \"US\" #1")
    );
    assert_eq!(
        ts(&b, "fetched_at", 0),
        Some(at("2026-11-20T17:00:01.234Z"))
    );
    assert!(
        !opts.out.with_extension("parquet.tmp").exists(),
        "renamed into place"
    );
}

#[test]
fn given_the_export_file_then_its_columns_and_types_are_training_columns() {
    let f = Fixture::standard();
    let opts = f.options("train.parquet");
    f.export(&opts);
    let file = std::fs::File::open(&opts.out).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = builder.schema();
    let athena = |t: &DataType| match t {
        DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, Some(tz)) if &**tz == "UTC" => {
            "timestamp"
        }
        DataType::Decimal64(18, 6) => "decimal(18,6)",
        DataType::Utf8 => "string",
        DataType::Float64 => "double",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Int16 => "smallint",
        DataType::Int8 => "tinyint",
        DataType::Boolean => "boolean",
        other => panic!("unexpected type {other}"),
    };
    let got: Vec<(&str, &str)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), athena(f.data_type())))
        .collect();
    let want: Vec<(&str, &str)> = training_columns()
        .iter()
        .map(|c| (c.name, c.athena_type))
        .collect();
    assert_eq!(got, want);
    assert_eq!(schema.fields(), training_schema().fields());
    // The snapshot columns keep the encoder's Arrow types (and so its Parquet types).
    assert_eq!(
        &schema.fields()[..snapshots_schema().fields().len()],
        &snapshots_schema().fields()[..]
    );
    let leaf = |name: &str| {
        let d = builder.parquet_schema();
        let c = d.columns().iter().find(|c| c.name() == name).unwrap();
        (c.physical_type(), c.logical_type_ref().cloned())
    };
    assert_eq!(
        leaf("resolved_at"),
        (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS))
        )
    );
    assert_eq!(
        leaf("price"),
        (Physical::INT64, Some(LogicalType::decimal(6, 18)))
    );
    assert_eq!(
        leaf("tier"),
        (Physical::INT32, Some(LogicalType::integer(16, true)))
    );
}

#[test]
fn given_a_copied_and_a_compacted_file_in_the_partition_then_no_row_is_written_twice() {
    let f = Fixture::standard();
    let t2 = "snapshots/tier=2/dt=2026-11-20";
    let bytes = std::fs::read(f.path(&format!("{t2}/20261120T170000Z.parquet"))).unwrap();
    f.put(&format!("{t2}/20261120T170000Z copy.parquet"), &bytes);
    // A compaction of two ticks next to its sources: 17:00 again plus a new 17:01 tick.
    let (a, b) = ("2026-11-20T17:00:00Z", "2026-11-20T17:01:00Z");
    let compacted = encode_snapshots(&[row(1, a), row(2, a), row(1, b), row(2, b)]).unwrap();
    f.put(&format!("{t2}/compacted.parquet"), &compacted.bytes);

    let mut opts = f.options("train.parquet");
    opts.batch_rows = 3; // files span batches; duplicates met across them

    let (s, _) = f.export(&opts);
    let b = read(&opts.out);
    assert_eq!(
        keys_of(&b),
        pairs(&[
            (1, "17:00:00"),
            (2, "17:00:00"),
            (3, "17:00:00"),
            (1, "17:01:00"),
            (2, "17:01:00"),
            (1, "18:02:30"),
        ]),
        "key order: the copy (a space sorts before the dot), the tick, compacted (only 17:01 new), then T4"
    );
    assert_eq!(s.duplicates_dropped, 3 + 2);
    assert_eq!(
        s.peak_partition_keys, 3,
        "the set holds only the rows at times two files share (the 17:00 tick's three)"
    );
}

#[test]
fn given_since_until_and_tiers_then_only_those_rows_and_partitions_are_read() {
    let f = Fixture::standard();
    let t = "2026-11-20T17:00:30Z";
    f.snapshots(Tier::T3, t, &[row(1, t)]);
    // A day the window excludes: its partition is pruned by key, its garbage never opened.
    f.put(
        "snapshots/tier=2/dt=2026-11-19/20261119T120000Z.parquet",
        b"garbage",
    );

    let mut opts = f.options("train.parquet");
    opts.since = Some(at("2026-11-20T17:00:00.001Z"));
    opts.until = Some(at("2026-11-20T18:02:30Z"));
    let (s, skipped) = f.export(&opts);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(keys_of(&read(&opts.out)), pairs(&[(1, "17:00:30")]));
    assert_eq!(
        (s.outside_window_dropped, s.partitions_read),
        (4 + 4, 3),
        "17:00:00 is before since, 18:02:30 is until (exclusive)"
    );

    let mut opts = f.options("t4.parquet");
    opts.tiers = vec![3, 4];
    let (s, skipped) = f.export(&opts);
    assert!(
        skipped.is_empty(),
        "tier 2 pruned with its garbage: {skipped:?}"
    );
    let b = read(&opts.out);
    assert_eq!(keys_of(&b), pairs(&[(1, "17:00:30"), (1, "18:02:30")]));
    assert_eq!((tier(&b, 0), tier(&b, 1), s.partitions_read), (3, 4, 2));

    let (s, skipped) = f.export(&f.options("all.parquet"));
    assert_eq!(
        (s.files_skipped, skipped.len()),
        (1, 1),
        "unfiltered, the garbage is read"
    );
}

#[test]
fn given_include_unresolved_then_rows_of_unresolved_markets_are_kept_unlabelled() {
    let f = Fixture::standard();
    let mut opts = f.options("train.parquet");
    opts.include_unresolved = true;
    let (s, _) = f.export(&opts);
    let b = read(&opts.out);
    assert_eq!(
        keys_of(&b),
        pairs(&[
            (1, "17:00:00"),
            (2, "17:00:00"),
            (3, "17:00:00"),
            (4, "17:00:00"),
            (1, "18:02:30"),
            (4, "18:02:30"),
        ]),
        "#4 has no close to filter on: both its rows are kept"
    );
    assert_eq!((s.unresolved_dropped, s.after_close_dropped), (0, 2));
    for i in [3, 5] {
        assert_eq!(i32c(&b, "first_outcome_won", i), None);
        assert_eq!(strc(&b, "winning_outcome", i), None);
        assert_eq!(ts(&b, "resolved_at", i), None);
        assert_eq!(f64c(&b, "hours_to_resolution", i), None);
    }
}

#[test]
fn given_a_corrected_resolution_then_the_newest_learned_wins() {
    let f = Fixture::standard();
    // Learnt first as a second-outcome win resolved 00:30 the next day, then corrected: the standard
    // resolution (first outcome, 18:05, learnt 18:10) is older, so the correction stands.
    f.resolve(&resolved(
        1,
        Some(1),
        Some("2026-11-21T00:30:00Z"),
        "2026-11-21T01:00:00Z",
    ));
    let opts = f.options("train.parquet");
    let (s, _) = f.export(&opts);
    let b = read(&opts.out);
    assert_eq!(s.resolutions, 3);
    assert_eq!(keys_of(&b)[0], (1, "17:00:00".to_string()));
    assert_eq!(i32c(&b, "first_outcome_won", 0), Some(0));
    assert_eq!(ts(&b, "resolved_at", 0), Some(at("2026-11-21T00:30:00Z")));
}

#[test]
fn given_garbage_truncated_and_foreign_files_then_they_are_skipped_counted_and_the_rest_written() {
    let f = Fixture::standard();
    let t2 = "snapshots/tier=2/dt=2026-11-20";
    f.put(
        &format!("{t2}/20261120T165900Z.parquet"),
        b"not parquet at all",
    );
    let t = "2026-11-20T17:01:00Z";
    let good = encode_snapshots(&[row(1, t)]).unwrap().bytes;
    f.put(
        &format!("{t2}/20261120T170100Z.parquet"),
        &good[..good.len() / 2],
    );
    // A resolutions file where a snapshot file belongs: Parquet, but not this table.
    let r = Resolution::of(&resolved(9, Some(0), None, "2026-11-20T18:10:00Z")).unwrap();
    f.put(
        &format!("{t2}/20261120T170200Z.parquet"),
        &encode_resolutions(&[r]).unwrap().bytes,
    );
    f.put("resolutions/dt=2026-11-20/0xbad.parquet", b"");
    // In flight (a local write before its rename) and stray directories.
    f.put(&format!("{t2}/.20261120T170300Z.parquet.tmp-1-2"), b"half");
    f.put("snapshots/tier=x/readme.txt", b"");

    let opts = f.options("train.parquet");
    let (s, mut skipped) = f.export(&opts);
    skipped.sort();
    assert_eq!(s.files_skipped, 5, "{skipped:#?}");
    assert!(
        skipped[0].starts_with("resolutions/dt=2026-11-20/0xbad.parquet: "),
        "{skipped:#?}"
    );
    assert!(skipped[1].starts_with(&format!("{t2}/20261120T165900Z.parquet: ")));
    assert!(skipped[2].starts_with(&format!("{t2}/20261120T170100Z.parquet: ")));
    assert_eq!(
        skipped[3],
        format!("{t2}/20261120T170200Z.parquet: no column snapshot_ts")
    );
    assert!(skipped[4].starts_with("snapshots/tier=x: not a tier=<n> directory"));
    assert_eq!(s.rows_written, 4, "the good files are all written");
    assert_eq!(read(&opts.out).num_rows(), 4);
}

#[test]
fn given_no_data_directory_then_the_export_fails_and_leaves_the_old_file() {
    let f = Fixture::empty();
    let out = f.path("train.parquet");
    std::fs::write(&out, b"previous export").unwrap();
    let opts = ExportOptions::new(f.path("missing"), &out);
    assert!(export(&opts, &mut |_| {}).is_err());
    assert_eq!(std::fs::read(&out).unwrap(), b"previous export");
    assert!(!f.path("train.parquet.tmp").exists());
}

#[test]
fn given_progress_every_zero_then_progress_is_reported_as_rows_are_written() {
    let f = Fixture::standard();
    let mut opts = f.options("train.parquet");
    opts.progress_every = std::time::Duration::ZERO;
    let mut written = Vec::new();
    let s = export(&opts, &mut |e| {
        if let ExportEvent::Progress(p) = e {
            written.push(p.rows_written);
        }
    })
    .unwrap();
    assert!(written.len() >= 2, "{written:?}");
    assert!(written.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(written.last(), Some(&s.rows_written));
}

/// RFC 4180 fields of one CSV text (quoted fields may hold commas, quotes and line breaks); a
/// quoted empty field is `Some("")`, an unquoted one `None` (NULL).
fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if c == ',' || c == '\r' || c == '\n' {
                break;
            }
            field.push(c);
            chars.next();
        }
        row.push((quoted || !field.is_empty()).then_some(field));
        match chars.next() {
            Some(',') => continue,
            Some('\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF line ends");
                rows.push(std::mem::take(&mut row));
            }
            None => break,
            Some(c) => panic!("unexpected {c:?}"),
        }
        if chars.peek().is_none() {
            break;
        }
    }
    rows
}

#[test]
fn given_csv_format_then_it_parses_back_to_the_values_of_the_parquet_export() {
    let f = Fixture::standard();
    let mut opts = f.options("train.parquet");
    opts.include_unresolved = true;
    f.export(&opts);
    let b = read(&opts.out);
    opts.format = Format::Csv;
    opts.out = f.path("train.csv");
    f.export(&opts);
    let text = std::fs::read_to_string(&opts.out).unwrap();
    let rows = parse_csv(&text);
    let header: Vec<String> = rows[0].iter().map(|h| h.clone().unwrap()).collect();
    let names: Vec<String> = training_columns()
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(header, names);
    assert_eq!(rows.len() - 1, b.num_rows());
    assert!(
        text.contains(",\"Politics, \"\"US\"\" #1\","),
        "quoted: {text}"
    );
    assert!(
        text.contains(",2026-11-20T17:00:01.234Z,"),
        "RFC 3339 ms Z: {text}"
    );
    assert!(text.contains(",0.445,"), "plain decimal: {text}");

    for (j, field) in b.schema().fields().iter().enumerate() {
        let a = b.column(j);
        for (i, csv) in rows[1..].iter().map(|r| &r[j]).enumerate() {
            let at = format!("row {i} column {}", field.name());
            if a.is_null(i) {
                assert_eq!(csv, &None, "{at}: NULL is an empty field");
                continue;
            }
            let csv = csv.as_deref().unwrap_or_else(|| panic!("{at}: empty"));
            match field.data_type() {
                DataType::Timestamp(..) => {
                    let t: Ts = chrono::DateTime::parse_from_rfc3339(csv).unwrap().into();
                    let want = a.as_primitive::<TimestampMillisecondType>().value(i);
                    assert_eq!(t.timestamp_millis(), want, "{at}");
                    assert!(csv.ends_with('Z') && csv.len() == 24, "{at}: {csv}");
                }
                DataType::Decimal64(..) => assert_eq!(
                    Decimal::from_str(csv).unwrap(),
                    from_mantissa(a.as_primitive::<Decimal64Type>().value(i)),
                    "{at}"
                ),
                DataType::Utf8 => assert_eq!(csv, a.as_string::<i32>().value(i), "{at}"),
                DataType::Float64 => assert_eq!(
                    csv.parse::<f64>().unwrap(),
                    a.as_primitive::<Float64Type>().value(i),
                    "{at}"
                ),
                DataType::Int8 => {
                    assert_eq!(
                        csv.parse::<i8>().unwrap(),
                        a.as_primitive::<Int8Type>().value(i)
                    )
                }
                DataType::Int16 => assert_eq!(
                    csv.parse::<i16>().unwrap(),
                    a.as_primitive::<Int16Type>().value(i)
                ),
                DataType::Int32 => assert_eq!(
                    csv.parse::<i32>().unwrap(),
                    a.as_primitive::<Int32Type>().value(i)
                ),
                DataType::Int64 => assert_eq!(
                    csv.parse::<i64>().unwrap(),
                    a.as_primitive::<Int64Type>().value(i)
                ),
                DataType::Boolean => {
                    assert_eq!(
                        csv.parse::<bool>().unwrap(),
                        a.as_boolean().value(i),
                        "{at}"
                    )
                }
                other => panic!("{at}: unexpected type {other}"),
            }
        }
    }
}

#[test]
fn given_a_tick_file_holding_a_row_twice_then_it_is_written_once() {
    let f = Fixture::empty();
    f.resolve(&resolved(
        1,
        Some(0),
        Some("2026-11-20T18:05:00Z"),
        "2026-11-20T18:10:00Z",
    ));
    f.resolve(&resolved(
        2,
        Some(1),
        Some("2026-11-20T18:01:00Z"),
        "2026-11-20T18:10:00Z",
    ));
    let t = "2026-11-20T17:00:00Z";
    f.snapshots(Tier::T3, t, &[row(1, t), row(2, t), row(1, t)]);
    let opts = f.options("train.parquet");
    let (s, skipped) = f.export(&opts);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(
        keys_of(&read(&opts.out)),
        pairs(&[(1, "17:00:00"), (2, "17:00:00")])
    );
    assert_eq!(s.duplicates_dropped, 1);
    assert_eq!(s.rows_in, s.rows_written + s.duplicates_dropped);
}
