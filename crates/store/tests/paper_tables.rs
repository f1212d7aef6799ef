//! The paper executor's tables — `signals`, `fills`, `positions` — encoded, then read back
//! three ways: the parquet crate's own reader (physical and logical types as Athena sees them,
//! Snappy, values and NULLs), the store's decoders (every row back as written), and DuckDB over
//! a data directory laid out by `keys::paper` (types and values through the docs' view); then
//! compacted like the tick tables, the merged hour holding every step's rows in step order.
//!
//! DuckDB needs `POLYTAPE_PYTHON_PQ` (infra/test.sh sets it); without it that test prints a
//! skip line, unless `POLYTAPE_REQUIRE_TOOLS` is set.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal64Type, Float64Type, Int32Type, Int64Type, TimestampMillisecondType,
};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, LogicalType, TimeUnit, Type as Physical};
use parquet::file::metadata::ParquetMetaData;
use polytape_core::paper::{FillRow, PositionRow, SignalRow};
use polytape_core::Ts;
use polytape_store::compact::{compact, CompactOptions};
use polytape_store::parquet::{
    decode_fills, decode_positions, decode_signals, encode_fills, encode_positions, encode_signals,
    fill_columns, fills_schema, partition_columns, position_columns, positions_schema,
    signal_columns, signals_schema, Column, CONTENT_TYPE,
};
use polytape_store::{keys, LocalStore, ObjectStore};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

const CONDITION: &str = "0x00000000000000000000000000000000000000000000000000000000000abcde";
const TOKEN: &str = "71321045679252212594626385532706912750332728571942532289631379312455583992563";

/// An ordered signal and a rejected one (the rejected one's order columns NULL).
fn signals() -> Vec<SignalRow> {
    let ordered = SignalRow {
        signal_ts: at("2026-11-20T22:30:00Z"),
        strategy: "longshot_yes".into(),
        condition_id: CONDITION.into(),
        token_id: TOKEN.into(),
        outcome: "YES".into(),
        reason: "favourite at 0.95, 2.5 h to close".into(),
        edge: d("0.031234"),
        confidence: 0.812_345_678_9,
        price: d("0.95"),
        suggested_usd: d("25"),
        decision: "ordered".into(),
        order_id: Some(9_000_000_001),
        order_usd: Some(d("24.5")),
        rejection: None,
    };
    let rejected = SignalRow {
        strategy: "longshot_no".into(),
        outcome: "NO".into(),
        reason: "longshot YES at 0.04".into(),
        edge: d("-0.000001"),
        confidence: 0.5,
        price: d("0.96"),
        suggested_usd: d("999999999999.999999"),
        decision: "rejected".into(),
        order_id: None,
        order_usd: None,
        rejection: Some("max open positions (10) reached".into()),
        ..ordered.clone()
    };
    vec![ordered, rejected]
}

/// A taker buy over three levels and a maker sell.
fn fills() -> Vec<FillRow> {
    let buy = FillRow {
        fill_ts: at("2026-11-20T22:30:00.250Z"),
        order_id: 9_000_000_001,
        strategy: "longshot_yes".into(),
        condition_id: CONDITION.into(),
        token_id: TOKEN.into(),
        outcome: "YES".into(),
        side: "BUY".into(),
        liquidity: "taker".into(),
        shares: d("25.773195"),
        avg_price: d("0.950600"),
        notional: d("24.5"),
        fee: d("0.122474"),
        levels: 3,
    };
    let sell = FillRow {
        fill_ts: at("2026-11-20T23:10:05.999Z"),
        order_id: 9_000_000_002,
        side: "SELL".into(),
        liquidity: "maker".into(),
        shares: d("10"),
        avg_price: d("0.97"),
        notional: d("9.7"),
        fee: d("0"),
        levels: 1,
        ..buy.clone()
    };
    vec![buy, sell]
}

/// An open position marked to market, and one the step closed at settlement.
fn positions() -> Vec<PositionRow> {
    let open = PositionRow {
        as_of: at("2026-11-20T22:31:00Z"),
        strategy: "longshot_yes".into(),
        condition_id: CONDITION.into(),
        token_id: TOKEN.into(),
        outcome: "YES".into(),
        status: "open".into(),
        shares: d("25.773195"),
        cost: d("24.622474"),
        entry_price: Some(d("0.955352")),
        mark: Some(d("0.96")),
        unrealised_pnl: Some(d("0.119793")),
        proceeds: None,
        realised_pnl: None,
        opened_at: at("2026-11-20T22:30:00.250Z"),
        closed_at: None,
        close_reason: None,
    };
    let closed = PositionRow {
        strategy: "longshot_no".into(),
        outcome: "NO".into(),
        status: "closed".into(),
        entry_price: None,
        mark: None,
        unrealised_pnl: None,
        proceeds: Some(d("12.886597")),
        realised_pnl: Some(d("-11.735877")),
        closed_at: Some(at("2026-11-20T22:31:00Z")),
        close_reason: Some("settled: INVALID pays 0.5".into()),
        ..open.clone()
    };
    vec![open, closed]
}

/// The file as the parquet crate reads it: its footer, its schema and its one batch.
fn read(bytes: &[u8]) -> (Arc<ParquetMetaData>, arrow_schema::SchemaRef, RecordBatch) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec())).unwrap();
    let meta = Arc::clone(builder.metadata());
    let schema = Arc::clone(builder.schema());
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1, "a step's file is one batch");
    (meta, schema, batches.into_iter().next().unwrap())
}

/// The Parquet type Athena sees for a column of `athena_type`, as DESIGN.md declares it.
fn parquet_type(athena_type: &str) -> (Physical, Option<LogicalType>) {
    match athena_type {
        "timestamp" => (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
        ),
        "decimal(18,6)" => (Physical::INT64, Some(LogicalType::decimal(6, 18))),
        "double" => (Physical::DOUBLE, None),
        "int" => (Physical::INT32, None),
        "bigint" => (Physical::INT64, None),
        "string" => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
        other => panic!("the paper tables have no {other} column"),
    }
}

/// Checks a file of `columns` as Athena reads it: every column in order, with its Parquet
/// type, Snappy, `rows` rows and no partition column inside.
fn assert_athena_file(table: &str, bytes: &[u8], columns: &[Column], rows: usize) -> RecordBatch {
    let (meta, schema, batch) = read(bytes);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let want: Vec<&str> = columns.iter().map(|c| c.name).collect();
    assert_eq!(names, want, "{table}: the columns in order");
    assert!(!names.contains(&"dt"), "{table}: dt is the partition");
    assert_eq!(
        partition_columns(table)
            .iter()
            .map(|c| (c.name, c.athena_type))
            .collect::<Vec<_>>(),
        [("dt", "string")]
    );
    let descr = meta.file_metadata().schema_descr();
    for c in columns {
        let leaf = descr
            .columns()
            .iter()
            .find(|l| l.path().string() == c.name)
            .unwrap();
        assert_eq!(
            (leaf.physical_type(), leaf.logical_type_ref().cloned()),
            parquet_type(c.athena_type),
            "{table}.{}",
            c.name
        );
    }
    for rg in meta.row_groups() {
        for col in rg.columns() {
            assert_eq!(col.compression(), Compression::SNAPPY);
        }
    }
    assert_eq!(batch.num_rows(), rows, "{table}");
    batch
}

fn dec(b: &RecordBatch, name: &str, i: usize) -> Option<(i64, i8)> {
    let c = b
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Decimal64Type>();
    (!c.is_null(i)).then(|| (c.value(i), c.scale()))
}

fn ms(b: &RecordBatch, name: &str, i: usize) -> Option<i64> {
    let c = b
        .column_by_name(name)
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    (!c.is_null(i)).then(|| c.value(i))
}

fn text(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = b.column_by_name(name).unwrap().as_string::<i32>();
    (!c.is_null(i)).then(|| c.value(i).to_string())
}

#[test]
fn given_a_steps_signals_when_encoded_then_athena_types_values_and_nulls_read_back() {
    let rows = signals();
    let enc = encode_signals(&rows).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    let b = assert_athena_file(keys::SIGNALS, &enc.bytes, signal_columns(), 2);
    assert_eq!(b.schema(), signals_schema());
    // Money as DECIMAL(18,6) mantissas, times as UTC milliseconds, ratios as doubles.
    assert_eq!(dec(&b, "price", 0), Some((950_000, 6)));
    assert_eq!(dec(&b, "edge", 1), Some((-1, 6)));
    assert_eq!(
        dec(&b, "suggested_usd", 1),
        Some((999_999_999_999_999_999, 6))
    );
    assert_eq!(ms(&b, "signal_ts", 0), Some(1_795_213_800_000));
    let confidence = b
        .column_by_name("confidence")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(confidence.value(0), 0.812_345_678_9);
    let order_id = b
        .column_by_name("order_id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(order_id.value(0), 9_000_000_001);
    // The rejected signal: no order, and why.
    assert!(order_id.is_null(1));
    assert_eq!(dec(&b, "order_usd", 1), None);
    assert_eq!(
        text(&b, "rejection", 1).as_deref(),
        Some("max open positions (10) reached")
    );
    assert_eq!(text(&b, "rejection", 0), None);
    assert_eq!(text(&b, "decision", 1).as_deref(), Some("rejected"));
    assert_eq!(decode_signals(&enc.bytes).unwrap(), rows);
}

#[test]
fn given_a_steps_fills_when_encoded_then_athena_types_and_values_read_back() {
    let rows = fills();
    let enc = encode_fills(&rows).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    let b = assert_athena_file(keys::FILLS, &enc.bytes, fill_columns(), 2);
    assert_eq!(b.schema(), fills_schema());
    assert_eq!(dec(&b, "shares", 0), Some((25_773_195, 6)));
    assert_eq!(dec(&b, "avg_price", 0), Some((950_600, 6)));
    assert_eq!(dec(&b, "fee", 1), Some((0, 6)));
    assert_eq!(ms(&b, "fill_ts", 0), Some(1_795_213_800_250));
    assert_eq!(ms(&b, "fill_ts", 1), Some(1_795_216_205_999));
    let levels = b
        .column_by_name("levels")
        .unwrap()
        .as_primitive::<Int32Type>();
    assert_eq!((levels.value(0), levels.value(1)), (3, 1));
    assert_eq!(
        (text(&b, "side", 1), text(&b, "liquidity", 1)),
        (Some("SELL".into()), Some("maker".into()))
    );
    assert_eq!(decode_fills(&enc.bytes).unwrap(), rows);
}

#[test]
fn given_a_steps_positions_when_encoded_then_open_and_closed_columns_read_back() {
    let rows = positions();
    let enc = encode_positions(&rows).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    let b = assert_athena_file(keys::POSITIONS, &enc.bytes, position_columns(), 2);
    assert_eq!(b.schema(), positions_schema());
    // Open: marked, unrealised P&L, nothing realised yet.
    assert_eq!(dec(&b, "mark", 0), Some((960_000, 6)));
    assert_eq!(dec(&b, "unrealised_pnl", 0), Some((119_793, 6)));
    assert_eq!(
        (
            dec(&b, "proceeds", 0),
            dec(&b, "realised_pnl", 0),
            ms(&b, "closed_at", 0)
        ),
        (None, None, None)
    );
    // Closed: realised P&L (a loss), when and why; no mark.
    assert_eq!(dec(&b, "realised_pnl", 1), Some((-11_735_877, 6)));
    assert_eq!(ms(&b, "closed_at", 1), Some(1_795_213_860_000));
    assert_eq!(dec(&b, "mark", 1), None);
    assert_eq!(
        text(&b, "close_reason", 1).as_deref(),
        Some("settled: INVALID pays 0.5")
    );
    assert_eq!(ms(&b, "opened_at", 1), Some(1_795_213_800_250));
    assert_eq!(decode_positions(&enc.bytes).unwrap(), rows);
}

#[test]
fn given_no_rows_then_each_table_writes_a_valid_empty_file() {
    for (table, bytes, columns) in [
        (
            keys::SIGNALS,
            encode_signals(&[]).unwrap().bytes,
            signal_columns(),
        ),
        (
            keys::FILLS,
            encode_fills(&[]).unwrap().bytes,
            fill_columns(),
        ),
        (
            keys::POSITIONS,
            encode_positions(&[]).unwrap().bytes,
            position_columns(),
        ),
    ] {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone())).unwrap();
        assert_eq!(builder.schema().fields().len(), columns.len(), "{table}");
        assert_eq!(builder.metadata().file_metadata().num_rows(), 0, "{table}");
    }
    assert!(decode_signals(&encode_signals(&[]).unwrap().bytes)
        .unwrap()
        .is_empty());
}

#[test]
fn given_money_over_18_digits_then_it_is_stored_null_counted_and_refused_on_decode() {
    let mut rows = positions();
    rows[0].cost = d("1000000000000"); // 13 integer digits: over DECIMAL(18,6)
    rows[1].proceeds = Some(d("-1000000000000.5"));
    let enc = encode_positions(&rows).unwrap();
    assert_eq!(enc.nulled, 2, "both values are counted");
    let (_, _, b) = read(&enc.bytes);
    assert_eq!((dec(&b, "cost", 0), dec(&b, "proceeds", 1)), (None, None));
    assert_eq!(
        dec(&b, "cost", 1),
        Some((24_622_474, 6)),
        "the rest is kept"
    );
    // `cost` is required: the decoder says which row and column, never a default.
    let err = decode_positions(&enc.bytes).unwrap_err().to_string();
    assert!(
        err.contains("positions file, row 0") && err.contains("`cost` is NULL"),
        "{err}"
    );
}

#[test]
fn given_a_file_of_another_table_or_not_parquet_then_decoding_fails_without_a_panic() {
    let fills = encode_fills(&fills()).unwrap().bytes;
    let err = decode_signals(&fills).unwrap_err().to_string();
    assert!(err.contains("signals file: no column `signal_ts`"), "{err}");
    let err = decode_positions(&fills).unwrap_err().to_string();
    assert!(err.contains("positions file: no column"), "{err}");
    let signals = encode_signals(&signals()).unwrap().bytes;
    let err = decode_fills(&signals).unwrap_err().to_string();
    assert!(err.contains("fills file: no column `fill_ts`"), "{err}");
    for bad in [
        &b""[..],
        &b"PAR1"[..],
        &b"not parquet"[..],
        &fills[..fills.len() - 9],
        &fills[20..],
    ] {
        assert!(decode_fills(bad).is_err(), "{} bytes", bad.len());
        assert!(decode_signals(bad).is_err(), "{} bytes", bad.len());
        assert!(decode_positions(bad).is_err(), "{} bytes", bad.len());
    }
}

#[tokio::test]
async fn given_a_retried_step_then_its_objects_are_replaced_not_added() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let step = at("2026-11-20T22:30:00Z");
    let key = keys::paper(keys::SIGNALS, step);
    assert_eq!(key, "signals/dt=2026-11-20/20261120T223000Z.parquet");
    let first = encode_signals(&signals()).unwrap().bytes;
    store.put_object(&key, first, CONTENT_TYPE).await.unwrap();
    // The retry decided only the first signal this time.
    let again = encode_signals(&signals()[..1]).unwrap().bytes;
    store.put_object(&key, again, CONTENT_TYPE).await.unwrap();
    let listed = store.list_objects("signals/").await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&key));
    let bytes = store.get_object(&key).await.unwrap().unwrap();
    assert_eq!(decode_signals(&bytes).unwrap(), signals()[..1]);
}

#[tokio::test]
async fn given_an_hour_of_executor_steps_then_compaction_merges_them_into_one_file_in_step_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    // Three steps of hour 22, one of hour 23 (still open at the run).
    let steps = [
        "2026-11-20T22:30:00Z",
        "2026-11-20T22:31:00Z",
        "2026-11-20T22:59:00Z",
        "2026-11-20T23:00:00Z",
    ];
    let mut written = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let mut rows = positions();
        for r in &mut rows {
            r.as_of = at(s);
            r.mark = Some(d("0.9") + Decimal::new(i as i64, 2));
        }
        let bytes = encode_positions(&rows).unwrap().bytes;
        store
            .put_object(&keys::paper(keys::POSITIONS, at(s)), bytes, CONTENT_TYPE)
            .await
            .unwrap();
        written.push(rows);
    }
    let opts = CompactOptions {
        settle: Duration::from_secs(1200),
        delete_after: Duration::ZERO,
        ..CompactOptions::default()
    };
    let r = compact(&store, at("2026-11-20T23:30:00Z"), &opts).await;
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!(
        (r.hours_compacted, r.files_merged, r.rows, r.sources_deleted),
        (1, 3, 6, 3),
        "{r:?}"
    );
    let mut listed = store.list_objects("positions/").await.unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [
            "positions/dt=2026-11-20/20261120T22.compacted.parquet",
            "positions/dt=2026-11-20/20261120T230000Z.parquet",
            "positions/dt=2026-11-20/_manifest.json",
        ]
    );
    let merged = store.get_object(&listed[0]).await.unwrap().unwrap();
    let want: Vec<PositionRow> = written[..3].concat();
    assert_eq!(decode_positions(&merged).unwrap(), want);
    // Still the Athena types: the merged file is the table's.
    assert_athena_file(keys::POSITIONS, &merged, position_columns(), 6);
}

#[test]
fn given_the_three_paper_tables_under_their_keys_then_duckdb_reads_their_types_and_values() {
    let Ok(python) = std::env::var("POLYTAPE_PYTHON_PQ") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").is_err(),
            "POLYTAPE_PYTHON_PQ is not set: run infra/test.sh"
        );
        eprintln!("skipped: POLYTAPE_PYTHON_PQ not set (infra/test.sh sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let step = at("2026-11-20T22:30:00Z");
    for (table, bytes) in [
        (keys::SIGNALS, encode_signals(&signals()).unwrap().bytes),
        (keys::FILLS, encode_fills(&fills()).unwrap().bytes),
        (
            keys::POSITIONS,
            encode_positions(&positions()).unwrap().bytes,
        ),
    ] {
        let path = dir.path().join(keys::paper(table, step));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    // The docs' view of each table (docs/data.md, "Querying locally with DuckDB").
    let script = r#"
import json, os, sys
import duckdb
os.chdir(sys.argv[1])
con = duckdb.connect()
con.execute("""
CREATE MACRO polytape_read(files, types) AS TABLE
  SELECT * EXCLUDE (filename, hour_compacted) FROM (
    SELECT *, bool_or(filename LIKE '%.compacted.parquet') OVER (
        PARTITION BY dt, regexp_extract(filename, '^(.*/[0-9]{8}T[0-9]{2})[^/]*$', 1)
      ) AS hour_compacted
    FROM read_parquet(files, hive_partitioning = true, filename = true, hive_types = types))
  WHERE filename LIKE '%.compacted.parquet' OR NOT hour_compacted;
""")
out = {}
for t in ["signals", "fills", "positions"]:
    con.execute(f"CREATE VIEW {t} AS FROM polytape_read('{t}/*/*.parquet', {{'dt': 'VARCHAR'}})")
    out[t] = {
        "types": {n: ty for n, ty, *_ in con.execute(f"DESCRIBE SELECT * FROM {t}").fetchall()},
        "rows": con.execute(f"SELECT count(*), min(dt) FROM {t}").fetchall()[0],
    }
q = lambda sql: [list(r) for r in con.execute(sql).fetchall()]
out["values"] = {
    "signals": q("SELECT strategy, decision, price::VARCHAR, order_usd::VARCHAR, order_id, "
                 "epoch_ms(signal_ts), rejection FROM signals ORDER BY strategy"),
    "fills": q("SELECT side, shares::VARCHAR, fee::VARCHAR, levels, epoch_ms(fill_ts) "
               "FROM fills ORDER BY order_id"),
    "positions": q("SELECT status, realised_pnl::VARCHAR, unrealised_pnl::VARCHAR, "
                   "epoch_ms(closed_at) FROM positions ORDER BY status DESC"),
}
print(json.dumps(out))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let duck = |athena: &str| match athena {
        "timestamp" => "TIMESTAMP WITH TIME ZONE",
        "decimal(18,6)" => "DECIMAL(18,6)",
        "double" => "DOUBLE",
        "int" => "INTEGER",
        "bigint" => "BIGINT",
        "string" => "VARCHAR",
        other => panic!("unexpected {other}"),
    };
    for (table, cols) in [
        ("signals", signal_columns()),
        ("fills", fill_columns()),
        ("positions", position_columns()),
    ] {
        for c in cols {
            assert_eq!(
                v[table]["types"][c.name],
                duck(c.athena_type),
                "{table}.{}",
                c.name
            );
        }
        assert_eq!(v[table]["types"]["dt"], "VARCHAR", "{table}.dt");
        assert_eq!(
            v[table]["rows"],
            serde_json::json!([2, "2026-11-20"]),
            "{table}"
        );
    }
    assert_eq!(
        v["values"]["signals"],
        serde_json::json!([
            [
                "longshot_no",
                "rejected",
                "0.960000",
                null,
                null,
                1_795_213_800_000_i64,
                "max open positions (10) reached"
            ],
            [
                "longshot_yes",
                "ordered",
                "0.950000",
                "24.500000",
                9_000_000_001_i64,
                1_795_213_800_000_i64,
                null
            ],
        ])
    );
    assert_eq!(
        v["values"]["fills"],
        serde_json::json!([
            ["BUY", "25.773195", "0.122474", 3, 1_795_213_800_250_i64],
            ["SELL", "10.000000", "0.000000", 1, 1_795_216_205_999_i64],
        ])
    );
    assert_eq!(
        v["values"]["positions"],
        serde_json::json!([
            ["open", null, "0.119793", null],
            ["closed", "-11.735877", null, 1_795_213_860_000_i64],
        ])
    );
}
