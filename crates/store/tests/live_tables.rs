//! The live feed's tables — `trades`, `whale_events`, `raw_ws` — encoded, then read back with
//! the parquet crate's own reader (what Athena and DuckDB will see: types, values, NULLs) and
//! with the store's decoders (`decode_trades`, `decode_tape`: what `polytape replay` reads).
//! The rows are made up here, shaped like the feed's (docs/data.md describes every column).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal64Type, Int32Type, Int64Type, Int8Type, TimestampMillisecondType};
use arrow_array::{
    Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowTimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, LogicalType, TimeUnit, Type as Physical};
use parquet::file::metadata::ParquetMetaData;
use polytape_core::live::{SizeSource, Source, StoredTrade, TapeKind, TapeRecord, WhaleEvent};
use polytape_core::money::from_mantissa;
use polytape_core::{Side, Ts};
use polytape_store::keys;
use polytape_store::parquet::{
    decode_tape, decode_trades, encode_tape, encode_trades, encode_whale_events, partition_columns,
    tape_columns, tape_schema, trade_columns, trades_schema, whale_event_columns,
    whale_events_schema, Column,
};
use rust_decimal::Decimal;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}
fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

/// A WebSocket whale trade with every column set.
fn ws_trade() -> StoredTrade {
    StoredTrade {
        trade_key: "9f86d081884c7d659a2feaa0c55ad015".into(),
        condition_id: format!("0x{:064x}", 0xabcdef_u64),
        token_id: "71321045679252212594626385532706912750332728571942532289631379312455583992563"
            .into(),
        outcome_index: Some(1),
        side: Side::Sell,
        price: d("0.613"),
        size: Some(d("5000.123456")),
        size_source: SizeSource::Feed,
        fee_rate_bps: Some(d("0")),
        transaction_hash: Some(format!("0x{:064x}", 0x5eed_u64)),
        trade_ts: at("2026-11-20T22:30:00.123Z"),
        received_at: at("2026-11-20T22:30:00.456Z"),
        source: Source::Ws,
        best_bid: Some(d("0.61")),
        best_ask: Some(d("0.62")),
        mid: Some(d("0.615")),
        notional: Some(d("3065.075678")),
        whale_tier: Some(2),
        stale: false,
        divergent: true,
        shard: Some(7),
        seq: Some(9_000_000_000),
    }
}

/// A backfilled trade: no book, no size (G3 gave up), no hash, no frame; everything optional
/// NULL.
fn sparse_trade() -> StoredTrade {
    StoredTrade {
        trade_key: "00000000000000000000000000000001".into(),
        condition_id: format!("0x{:064x}", 2),
        token_id: "22".into(),
        outcome_index: None,
        side: Side::Buy,
        price: d("0.05"),
        size: None,
        size_source: SizeSource::Missing,
        fee_rate_bps: None,
        transaction_hash: None,
        trade_ts: at("2026-11-20T22:29:59Z"),
        received_at: at("2026-11-20T22:36:00Z"),
        source: Source::Backfill,
        best_bid: None,
        best_ask: None,
        mid: None,
        notional: None,
        whale_tier: None,
        stale: true,
        divergent: false,
        shard: None,
        seq: None,
    }
}

fn whale() -> WhaleEvent {
    WhaleEvent {
        trade_key: "9f86d081884c7d659a2feaa0c55ad015".into(),
        condition_id: format!("0x{:064x}", 0xabcdef_u64),
        token_id: "7132".into(),
        side: Side::Buy,
        price: d("0.5"),
        size: d("24000"),
        notional: d("12000"),
        whale_tier: 3,
        trade_ts: at("2026-11-20T22:30:00.123Z"),
        price_before: Some(d("0.495")),
        price_after_1m: Some(d("0.52")),
        price_after_5m: Some(d("0.48")),
        impact_1m: Some(d("0.025")),
        impact_5m: Some(d("-0.015")),
    }
}

/// A whale too close to the end of the feed's run for anything after it.
fn whale_without_after() -> WhaleEvent {
    WhaleEvent {
        trade_key: "2".into(),
        side: Side::Sell,
        whale_tier: 2,
        price_before: None,
        price_after_1m: None,
        price_after_5m: None,
        impact_1m: None,
        impact_5m: None,
        ..whale()
    }
}

fn tape() -> Vec<TapeRecord> {
    let rec = |seq: u64, shard: u32, kind: TapeKind, text: &str| TapeRecord {
        run: 1_795_213_800_000,
        shard,
        seq,
        received_at: at("2026-11-20T22:30:00.001Z") + chrono::Duration::milliseconds(seq as i64),
        kind,
        part: 0,
        parts: 1,
        text: text.into(),
    };
    vec![
        rec(0, 0, TapeKind::Control, r#"{"follow":["7132","22"]}"#),
        rec(
            1,
            3,
            TapeKind::Frame,
            r#"[{"event_type":"last_trade_price","asset_id":"7132","price":"0.5","size":"24000","side":"BUY"}]"#,
        ),
        rec(2, 3, TapeKind::Frame, "PONG"),
        rec(3, 0, TapeKind::Backfill, "[]"),
        rec(4, 1, TapeKind::Frame, ""),
    ]
}

fn read(bytes: &[u8]) -> (Arc<ParquetMetaData>, arrow_schema::SchemaRef, RecordBatch) {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let meta = Arc::clone(builder.metadata());
    let schema = Arc::clone(builder.schema());
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    assert!(batches.len() <= 1, "small files read as one batch");
    let batch = batches
        .into_iter()
        .next()
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));
    (meta, schema, batch)
}

// --- column readers that check the Arrow type while reading ---

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a Arc<dyn Array> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}
fn dec(b: &RecordBatch, name: &str, i: usize) -> Option<Decimal> {
    let c = col(b, name);
    assert_eq!(c.data_type(), &DataType::Decimal64(18, 6), "{name}");
    let a = c.as_primitive::<Decimal64Type>();
    a.is_valid(i).then(|| from_mantissa(a.value(i)))
}
fn ts(b: &RecordBatch, name: &str, i: usize) -> Option<Ts> {
    let c = col(b, name);
    assert_eq!(
        c.data_type(),
        &DataType::Timestamp(ArrowTimeUnit::Millisecond, Some("UTC".into())),
        "{name}"
    );
    let a = c.as_primitive::<TimestampMillisecondType>();
    a.is_valid(i)
        .then(|| chrono::DateTime::from_timestamp_millis(a.value(i)).unwrap())
}
fn strc(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let a = col(b, name).as_string::<i32>();
    a.is_valid(i).then(|| a.value(i).to_string())
}
fn i8c(b: &RecordBatch, name: &str, i: usize) -> Option<i8> {
    let a = col(b, name).as_primitive::<Int8Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn i32c(b: &RecordBatch, name: &str, i: usize) -> Option<i32> {
    let a = col(b, name).as_primitive::<Int32Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn i64c(b: &RecordBatch, name: &str, i: usize) -> Option<i64> {
    let a = col(b, name).as_primitive::<Int64Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn boolc(b: &RecordBatch, name: &str, i: usize) -> Option<bool> {
    let a = col(b, name).as_boolean();
    a.is_valid(i).then(|| a.value(i))
}

fn names(cols: &[Column]) -> Vec<&'static str> {
    cols.iter().map(|c| c.name).collect()
}

/// The Parquet type Athena sees for a column: physical type and logical type.
fn leaf_type(meta: &ParquetMetaData, path: &str) -> (Physical, Option<LogicalType>) {
    let schema = meta.file_metadata().schema_descr();
    let col = schema
        .columns()
        .iter()
        .find(|c| c.path().string() == path)
        .unwrap_or_else(|| panic!("no leaf {path}"));
    (col.physical_type(), col.logical_type_ref().cloned())
}

fn expected_parquet_type(athena_type: &str) -> (Physical, Option<LogicalType>) {
    match athena_type {
        "timestamp" => (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
        ),
        "decimal(18,6)" => (Physical::INT64, Some(LogicalType::decimal(6, 18))),
        "int" => (Physical::INT32, None),
        "bigint" => (Physical::INT64, None),
        "tinyint" => (Physical::INT32, Some(LogicalType::integer(8, true))),
        "string" => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
        "boolean" => (Physical::BOOLEAN, None),
        other => panic!("unexpected athena type {other}"),
    }
}

/// The file holds exactly `columns` in order, each with the Parquet type its Athena type
/// stands for, Snappy-compressed, and no partition column.
fn assert_athena_types(bytes: &[u8], columns: &[Column], schema: &arrow_schema::SchemaRef) {
    let (meta, file_schema, _) = read(bytes);
    let file_columns: Vec<&str> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(file_columns, names(columns));
    assert_eq!(file_schema.as_ref(), schema.as_ref());
    assert!(!file_columns.contains(&"dt"));
    for c in columns {
        assert_eq!(
            leaf_type(&meta, c.name),
            expected_parquet_type(c.athena_type),
            "{}",
            c.name
        );
    }
    for c in meta.row_group(0).columns() {
        assert_eq!(c.compression(), Compression::SNAPPY, "{}", c.column_path());
    }
}

fn athena(columns: &[Column]) -> Vec<(&'static str, &'static str)> {
    columns.iter().map(|c| (c.name, c.athena_type)).collect()
}

// --- trades ---

#[test]
fn trades_columns_are_the_athena_types_the_design_declares_in_order() {
    let dec = "decimal(18,6)";
    assert_eq!(
        athena(trade_columns()),
        vec![
            ("trade_key", "string"),
            ("condition_id", "string"),
            ("token_id", "string"),
            ("outcome_index", "tinyint"),
            ("side", "string"),
            ("price", dec),
            ("size", dec),
            ("size_source", "string"),
            ("fee_rate_bps", dec),
            ("transaction_hash", "string"),
            ("trade_ts", "timestamp"),
            ("received_at", "timestamp"),
            ("source", "string"),
            ("best_bid", dec),
            ("best_ask", dec),
            ("mid", dec),
            ("notional", dec),
            ("whale_tier", "tinyint"),
            ("stale", "boolean"),
            ("divergent", "boolean"),
            ("shard", "int"),
            ("seq", "bigint"),
        ]
    );
    for t in [keys::TRADES, keys::WHALE_EVENTS, keys::RAW_WS] {
        assert_eq!(names(partition_columns(t)), ["dt"], "{t}");
    }
}

#[test]
fn given_a_ws_trade_and_a_sparse_backfill_trade_then_the_parquet_reader_sees_every_value_and_null()
{
    let enc = encode_trades(&[ws_trade(), sparse_trade()]).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    let (meta, _, b) = read(&enc.bytes);
    assert_eq!(meta.num_row_groups(), 1);

    // The WebSocket trade, column by column as Athena reads it.
    assert_eq!(
        strc(&b, "trade_key", 0).as_deref(),
        Some("9f86d081884c7d659a2feaa0c55ad015")
    );
    assert_eq!(i8c(&b, "outcome_index", 0), Some(1));
    assert_eq!(strc(&b, "side", 0).as_deref(), Some("SELL"));
    assert_eq!(dec(&b, "price", 0), Some(d("0.613")));
    assert_eq!(dec(&b, "size", 0), Some(d("5000.123456")));
    assert_eq!(strc(&b, "size_source", 0).as_deref(), Some("feed"));
    assert_eq!(dec(&b, "fee_rate_bps", 0), Some(d("0")));
    assert_eq!(
        ts(&b, "trade_ts", 0),
        Some(at("2026-11-20T22:30:00.123Z")),
        "millisecond match time kept"
    );
    assert_eq!(
        ts(&b, "received_at", 0),
        Some(at("2026-11-20T22:30:00.456Z"))
    );
    assert_eq!(strc(&b, "source", 0).as_deref(), Some("ws"));
    assert_eq!(
        [
            dec(&b, "best_bid", 0),
            dec(&b, "best_ask", 0),
            dec(&b, "mid", 0)
        ],
        [Some(d("0.61")), Some(d("0.62")), Some(d("0.615"))]
    );
    assert_eq!(dec(&b, "notional", 0), Some(d("3065.075678")));
    assert_eq!(i8c(&b, "whale_tier", 0), Some(2));
    assert_eq!(
        (boolc(&b, "stale", 0), boolc(&b, "divergent", 0)),
        (Some(false), Some(true))
    );
    assert_eq!(i32c(&b, "shard", 0), Some(7));
    assert_eq!(i64c(&b, "seq", 0), Some(9_000_000_000));

    // The backfilled trade: what was not observed is NULL, never 0.
    assert_eq!(strc(&b, "size_source", 1).as_deref(), Some("missing"));
    assert_eq!(strc(&b, "source", 1).as_deref(), Some("backfill"));
    assert_eq!(boolc(&b, "stale", 1), Some(true));
    let nullable = [
        "outcome_index",
        "size",
        "fee_rate_bps",
        "transaction_hash",
        "best_bid",
        "best_ask",
        "mid",
        "notional",
        "whale_tier",
        "shard",
        "seq",
    ];
    for c in trade_columns() {
        let nulls = col(&b, c.name).null_count();
        let want = usize::from(nullable.contains(&c.name));
        assert_eq!(nulls, want, "{}", c.name);
    }
}

#[test]
fn given_trades_when_encoded_and_decoded_then_every_column_round_trips_exactly() {
    let trades = vec![ws_trade(), sparse_trade(), ws_trade()];
    let enc = encode_trades(&trades).unwrap();
    assert_eq!(decode_trades(&enc.bytes).unwrap(), trades);

    let empty = encode_trades(&[]).unwrap();
    assert_eq!(empty.rows, 0);
    assert!(decode_trades(&empty.bytes).unwrap().is_empty());
}

#[test]
fn given_a_trades_file_then_its_parquet_types_are_the_athena_types_and_it_is_snappy() {
    let enc = encode_trades(&[ws_trade(), sparse_trade()]).unwrap();
    assert_athena_types(&enc.bytes, trade_columns(), &trades_schema());
    let (meta, _, _) = read(&enc.bytes);
    // Spot checks that spell the design out.
    assert_eq!(
        leaf_type(&meta, "trade_ts"),
        (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS))
        )
    );
    assert_eq!(
        leaf_type(&meta, "price"),
        (Physical::INT64, Some(LogicalType::decimal(6, 18)))
    );
    // Keys and hashes are distinct per row: no dictionary for them.
    let rg = meta.row_group(0);
    let chunk =
        |name: &str| rg.column(trade_columns().iter().position(|c| c.name == name).unwrap());
    assert!(chunk("trade_key").dictionary_page_offset().is_none());
    assert!(chunk("transaction_hash").dictionary_page_offset().is_none());
    assert!(chunk("side").dictionary_page_offset().is_some());
}

#[test]
fn given_a_notional_with_more_than_6_places_then_it_reads_back_rounded_half_even_to_6() {
    // price × size of two 6-place amounts has up to 12 places; DECIMAL(18,6) keeps 6.
    let t = StoredTrade {
        notional: Some(d("0.613") * d("5000.123456")), // 3065.075678528
        ..ws_trade()
    };
    let back = decode_trades(&encode_trades(&[t]).unwrap().bytes).unwrap();
    assert_eq!(back[0].notional, Some(d("3065.075679")));
}

#[test]
fn given_a_seq_over_i64_max_then_that_trade_keeps_a_null_seq_and_it_is_counted() {
    let t = StoredTrade {
        seq: Some(u64::MAX),
        ..ws_trade()
    };
    let enc = encode_trades(&[t]).unwrap();
    assert_eq!(enc.nulled, 1);
    assert_eq!(decode_trades(&enc.bytes).unwrap()[0].seq, None);
}

#[test]
fn given_a_trades_file_with_a_null_price_or_an_unknown_side_then_decode_trades_says_which() {
    // Written by hand: the encoder cannot write either.
    let mut enc_batch = read(&encode_trades(&[ws_trade(), sparse_trade()]).unwrap().bytes).2;
    let replace = |batch: &RecordBatch, name: &str, array: ArrayRef| {
        let i = batch.schema().index_of(name).unwrap();
        let mut cols = batch.columns().to_vec();
        cols[i] = array;
        RecordBatch::try_new(batch.schema(), cols).unwrap()
    };
    let side = replace(
        &enc_batch,
        "side",
        Arc::new(StringArray::from(vec!["SELL", "HOLD"])),
    );
    let err = decode_trades(&write(&side)).unwrap_err().to_string();
    assert!(
        err.contains("row 1") && err.contains("`side`") && err.contains("\"HOLD\""),
        "{err}"
    );

    let price = col(&enc_batch, "price").slice(0, 1);
    let nulls = arrow_array::new_null_array(price.data_type(), 1);
    let price = arrow_select::concat::concat(&[price.as_ref(), nulls.as_ref()]).unwrap();
    enc_batch = replace(&enc_batch, "price", price);
    let err = decode_trades(&write(&enc_batch)).unwrap_err().to_string();
    assert!(
        err.contains("trades") && err.contains("row 1") && err.contains("`price` is NULL"),
        "{err}"
    );
}

// --- whale_events ---

#[test]
fn given_whale_events_then_the_reader_sees_mids_and_signed_impacts_and_nulls_after_the_run() {
    let enc = encode_whale_events(&[whale(), whale_without_after()]).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    assert_athena_types(&enc.bytes, whale_event_columns(), &whale_events_schema());
    assert_eq!(
        athena(whale_event_columns()),
        [
            ("trade_key", "string"),
            ("condition_id", "string"),
            ("token_id", "string"),
            ("side", "string"),
            ("price", "decimal(18,6)"),
            ("size", "decimal(18,6)"),
            ("notional", "decimal(18,6)"),
            ("whale_tier", "tinyint"),
            ("trade_ts", "timestamp"),
            ("price_before", "decimal(18,6)"),
            ("price_after_1m", "decimal(18,6)"),
            ("price_after_5m", "decimal(18,6)"),
            ("impact_1m", "decimal(18,6)"),
            ("impact_5m", "decimal(18,6)"),
        ]
    );

    let (_, _, b) = read(&enc.bytes);
    assert_eq!(strc(&b, "side", 0).as_deref(), Some("BUY"));
    assert_eq!(
        [
            dec(&b, "price", 0),
            dec(&b, "size", 0),
            dec(&b, "notional", 0)
        ],
        [Some(d("0.5")), Some(d("24000")), Some(d("12000"))]
    );
    assert_eq!(i8c(&b, "whale_tier", 0), Some(3));
    assert_eq!(ts(&b, "trade_ts", 0), Some(at("2026-11-20T22:30:00.123Z")));
    assert_eq!(dec(&b, "price_before", 0), Some(d("0.495")));
    assert_eq!(dec(&b, "price_after_1m", 0), Some(d("0.52")));
    assert_eq!(dec(&b, "price_after_5m", 0), Some(d("0.48")));
    assert_eq!(dec(&b, "impact_1m", 0), Some(d("0.025")));
    assert_eq!(
        dec(&b, "impact_5m", 0),
        Some(d("-0.015")),
        "a fall after the trade is a negative impact"
    );
    assert_eq!(
        (strc(&b, "side", 1).as_deref(), i8c(&b, "whale_tier", 1)),
        (Some("SELL"), Some(2))
    );
    for c in [
        "price_before",
        "price_after_1m",
        "price_after_5m",
        "impact_1m",
        "impact_5m",
    ] {
        assert_eq!(dec(&b, c, 1), None, "{c}");
    }
}

// --- raw_ws ---

#[test]
fn given_a_tape_then_the_reader_sees_it_in_order_and_decode_tape_returns_it_exactly() {
    let records = tape();
    let enc = encode_tape(&records).unwrap();
    assert_eq!((enc.rows, enc.nulled), (5, 0));
    assert_athena_types(&enc.bytes, tape_columns(), &tape_schema());
    assert_eq!(
        athena(tape_columns()),
        [
            ("run", "bigint"),
            ("shard", "int"),
            ("seq", "bigint"),
            ("received_at", "timestamp"),
            ("kind", "string"),
            ("part", "int"),
            ("parts", "int"),
            ("text", "string"),
        ]
    );
    let (_, schema, b) = read(&enc.bytes);
    assert!(
        schema.fields().iter().all(|f| !f.is_nullable()),
        "every tape column is required"
    );
    assert_eq!(i64c(&b, "run", 1), Some(1_795_213_800_000));
    assert_eq!(i32c(&b, "shard", 1), Some(3));
    assert_eq!(i64c(&b, "seq", 4), Some(4));
    assert_eq!(
        ts(&b, "received_at", 2),
        Some(at("2026-11-20T22:30:00.003Z"))
    );
    let kinds: Vec<_> = (0..5).map(|i| strc(&b, "kind", i).unwrap()).collect();
    assert_eq!(kinds, ["control", "frame", "frame", "backfill", "frame"]);
    assert_eq!(
        strc(&b, "text", 1).as_deref(),
        Some(records[1].text.as_str()),
        "a frame is stored exactly as received"
    );
    assert_eq!(strc(&b, "text", 4).as_deref(), Some(""));

    assert_eq!(decode_tape(&enc.bytes).unwrap(), records);
    assert!(decode_tape(&encode_tape(&[]).unwrap().bytes)
        .unwrap()
        .is_empty());
}

#[test]
fn given_a_tape_longer_than_one_read_batch_then_decode_tape_returns_every_record_in_order() {
    let base = tape();
    let records: Vec<TapeRecord> = (0..2_500u64)
        .map(|seq| TapeRecord {
            seq,
            part: 0,
            parts: 1,
            text: format!("frame {seq}"),
            ..base[1].clone()
        })
        .collect();
    let decoded = decode_tape(&encode_tape(&records).unwrap().bytes).unwrap();
    assert_eq!(decoded.len(), 2_500);
    assert_eq!(decoded, records);
}

#[test]
fn given_a_seq_over_i64_max_then_the_tape_is_not_encoded() {
    let mut records = tape();
    records[2].seq = u64::MAX;
    let err = encode_tape(&records).unwrap_err().to_string();
    assert!(err.contains("seq") && err.contains("bigint"), "{err}");
}

/// A Parquet file of `batch`, written with the writer's defaults (not the store's encoder).
fn write(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out
}

/// A hand-made `raw_ws` file: the tape's columns with `seq` nullable, minus `drop`.
fn hand_tape(seq: Vec<Option<i64>>, kind: &str, drop: Option<&str>) -> Vec<u8> {
    let n = seq.len();
    let ts = DataType::Timestamp(ArrowTimeUnit::Millisecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("run", DataType::Int64, false),
        Field::new("shard", DataType::Int32, false),
        Field::new("seq", DataType::Int64, true),
        Field::new("received_at", ts, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("part", DataType::Int32, false),
        Field::new("parts", DataType::Int32, false),
        Field::new("text", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1_i64; n])),
        Arc::new(Int32Array::from(vec![0; n])),
        Arc::new(Int64Array::from(seq)),
        Arc::new(TimestampMillisecondArray::from(vec![0_i64; n]).with_timezone("UTC")),
        Arc::new(StringArray::from(vec![kind; n])),
        Arc::new(Int32Array::from(vec![0; n])),
        Arc::new(Int32Array::from(vec![1; n])),
        Arc::new(StringArray::from(vec!["{}"; n])),
    ];
    if let Some(name) = drop {
        let i = fields.iter().position(|f| f.name() == name).unwrap();
        fields.remove(i);
        cols.remove(i);
    }
    write(&RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap())
}

#[test]
fn given_a_good_hand_made_tape_then_decode_tape_reads_it() {
    let recs = decode_tape(&hand_tape(vec![Some(0), Some(1)], "frame", None)).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[1].seq, recs[1].kind), (1, TapeKind::Frame));
}

#[test]
fn given_a_tape_missing_a_column_then_decode_tape_names_it() {
    let err = decode_tape(&hand_tape(vec![Some(0)], "frame", Some("text")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("raw_ws") && err.contains("no column `text`"),
        "{err}"
    );
}

#[test]
fn given_a_null_in_a_required_tape_column_then_decode_tape_names_the_row() {
    let err = decode_tape(&hand_tape(vec![Some(0), None], "frame", None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 1") && err.contains("`seq` is NULL"),
        "{err}"
    );
}

#[test]
fn given_a_negative_seq_or_an_unknown_kind_then_decode_tape_says_so() {
    let err = decode_tape(&hand_tape(vec![Some(-5)], "frame", None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`seq` is -5, out of range"), "{err}");
    let err = decode_tape(&hand_tape(vec![Some(0)], "text", None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`kind`") && err.contains("not one of frame, backfill, control"),
        "{err}"
    );
}

#[test]
fn given_a_column_of_another_type_then_decode_tape_says_which_and_what() {
    let batch = RecordBatch::try_from_iter([
        ("run", Arc::new(Int64Array::from(vec![1_i64])) as ArrayRef),
        ("shard", Arc::new(Int32Array::from(vec![0]))),
        ("seq", Arc::new(StringArray::from(vec!["0"]))),
        (
            "received_at",
            Arc::new(TimestampMillisecondArray::from(vec![0_i64]).with_timezone("UTC")),
        ),
        ("kind", Arc::new(StringArray::from(vec!["frame"]))),
        ("text", Arc::new(StringArray::from(vec!["{}"]))),
    ])
    .unwrap();
    let err = decode_tape(&write(&batch)).unwrap_err().to_string();
    assert!(
        err.contains("column `seq` is Utf8") && err.contains("Int64"),
        "{err}"
    );
}

#[test]
fn given_bytes_that_are_not_a_whole_parquet_file_then_decoding_fails_without_a_panic() {
    let good = encode_tape(&tape()).unwrap().bytes;
    for bad in [
        &b""[..],
        &b"PAR1"[..],
        &b"not parquet at all, just text"[..],
        &good[..good.len() - 9],
        &good[20..],
    ] {
        assert!(decode_tape(bad).is_err(), "{} bytes", bad.len());
        assert!(decode_trades(bad).is_err(), "{} bytes", bad.len());
    }
    // A tape is not a trades file.
    let err = decode_trades(&good).unwrap_err().to_string();
    assert!(err.contains("trades file: no column"), "{err}");
}

// --- DuckDB reads the three tables as the Glue tables declare them ---

#[test]
fn given_the_three_live_tables_under_their_keys_then_duckdb_reads_their_types_and_values() {
    let Ok(python) = std::env::var("POLYTAPE_PYTHON_PQ") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").is_err(),
            "POLYTAPE_PYTHON_PQ is not set: run infra/test.sh"
        );
        eprintln!("skipped: POLYTAPE_PYTHON_PQ not set (infra/test.sh sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let day = at("2026-11-20T22:30:00Z");
    let run = 1_795_213_800_000;
    for (table, bytes) in [
        (
            keys::TRADES,
            encode_trades(&[ws_trade(), sparse_trade()]).unwrap().bytes,
        ),
        (
            keys::WHALE_EVENTS,
            encode_whale_events(&[whale(), whale_without_after()])
                .unwrap()
                .bytes,
        ),
        (keys::RAW_WS, encode_tape(&tape()).unwrap().bytes),
    ] {
        let path = dir.path().join(keys::live(table, day, run, 3, 41));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let script = r#"
import json, sys
import duckdb
root = sys.argv[1]
out = {}
for t in ["trades", "whale_events", "raw_ws"]:
    src = f"read_parquet('{root}/{t}/**/*.parquet', hive_partitioning=true, hive_types={{'dt': 'VARCHAR'}})"
    con = duckdb.connect()
    out[t] = {
        "types": {n: ty for n, ty, *_ in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()},
        "rows": con.execute(f"SELECT count(*), min(dt) FROM {src}").fetchall()[0],
    }
con = duckdb.connect()
q = lambda sql: [list(r) for r in con.execute(sql.format(root=root)).fetchall()]
out["values"] = {
    "trades": q("SELECT side, price::VARCHAR, size::VARCHAR, epoch_ms(trade_ts), stale, seq "
                "FROM read_parquet('{root}/trades/**/*.parquet') ORDER BY trade_key"),
    "impact": q("SELECT impact_5m::VARCHAR FROM read_parquet('{root}/whale_events/**/*.parquet') ORDER BY trade_key"),
    "tape": q("SELECT seq, kind FROM read_parquet('{root}/raw_ws/**/*.parquet') ORDER BY seq"),
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
        "int" => "INTEGER",
        "bigint" => "BIGINT",
        "tinyint" => "TINYINT",
        "string" => "VARCHAR",
        "boolean" => "BOOLEAN",
        other => panic!("unexpected {other}"),
    };
    for (table, cols, rows) in [
        ("trades", trade_columns(), 2),
        ("whale_events", whale_event_columns(), 2),
        ("raw_ws", tape_columns(), 5),
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
            serde_json::json!([rows, "2026-11-20"]),
            "{table}"
        );
    }
    assert_eq!(
        v["values"]["trades"],
        serde_json::json!([
            ["BUY", "0.050000", null, 1_795_213_799_000_i64, true, null],
            [
                "SELL",
                "0.613000",
                "5000.123456",
                1_795_213_800_123_i64,
                false,
                9_000_000_000_i64
            ],
        ])
    );
    assert_eq!(
        v["values"]["impact"],
        serde_json::json!([[null], ["-0.015000"]])
    );
    assert_eq!(
        v["values"]["tape"],
        serde_json::json!([
            [0, "control"],
            [1, "frame"],
            [2, "frame"],
            [3, "backfill"],
            [4, "frame"]
        ])
    );
}
