//! Encodes snapshot and order-book rows, reads the bytes back with the parquet crate's own
//! reader, and checks what Athena will see: physical and logical types, Snappy, values and
//! NULLs.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal64Type, Float64Type, Int32Type, Int64Type, Int8Type, TimestampMillisecondType,
};
use arrow_array::{Array, Float64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit as ArrowTimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::file::metadata::ParquetMetaData;
use polytape_core::money::from_mantissa;
use polytape_core::ops::TierTransition;
use polytape_core::snapshot::OrderbookRow;
use polytape_core::{Level, MarketResult, Outcome, Resolution, Snapshot, Tier, Ts};
use polytape_store::parquet::{
    encode_markets, encode_orderbooks, encode_resolutions, encode_snapshots, encode_transitions,
    market_columns, markets_schema, orderbook_columns, orderbooks_schema, partition_columns,
    resolution_columns, resolutions_schema, snapshot_columns, snapshots_schema, transition_columns,
    Column,
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

/// A row with every column set, values chosen to be distinct per column.
fn full_row() -> Snapshot {
    Snapshot {
        snapshot_ts: at("2026-11-20T22:30:00Z"),
        fetched_at: at("2026-11-20T22:30:01.234Z"),
        condition_id: format!("0x{:064x}", 0xabcdef_u64),
        token_id: "71321045679252212594626385532706912750332728571942532289631379312455583992563"
            .into(),
        tier: Some(Tier::T2),
        interval_s: 60,
        price: Some(d("0.425")),
        best_bid: Some(d("0.42")),
        best_ask: Some(d("0.43")),
        spread: Some(d("0.01")),
        last_trade_price: Some(d("0.421")),
        mid_price: Some(d("0.425")),
        price_change_1h: Some(d("-0.015")),
        price_change_1d: Some(d("0.1")),
        price_change_1w: Some(d("-0.25")),
        price_change_1m: Some(d("0.333333")),
        volume_total: Some(d("999999999999.999999")),
        volume_24h: Some(d("123456.789012")),
        volume_1w: Some(d("654321.5")),
        liquidity: Some(d("45000.25")),
        bid_depth_5: Some(d("1234.5")),
        bid_depth_10: Some(d("2345.6")),
        bid_depth_20: Some(d("3456.7")),
        bid_depth_50: Some(d("4567.8")),
        ask_depth_5: Some(d("987.65")),
        ask_depth_10: Some(d("1987.65")),
        ask_depth_20: Some(d("2987.65")),
        ask_depth_50: Some(d("3987.65")),
        bid_levels: Some(37),
        ask_levels: Some(41),
        book_imbalance: Some(0.123_456_789_012_345),
        bid_wall_price: Some(d("0.4")),
        bid_wall_size: Some(d("50000")),
        ask_wall_price: Some(d("0.5")),
        ask_wall_size: Some(d("75000.000001")),
        tick_size: Some(d("0.001")),
        trade_count_1h: Some(250),
        buy_count_1h: Some(140),
        sell_count_1h: Some(110),
        volume_1h: Some(d("25000.5")),
        buy_volume_1h: Some(d("15000.25")),
        sell_volume_1h: Some(d("10000.25")),
        avg_trade_size_1h: Some(d("100.002")),
        max_trade_size_1h: Some(d("5000")),
        vwap_1h: Some(d("0.423456")),
        whale_count_1h: Some(3),
        whale_volume_1h: Some(d("12000")),
        whale_buy_volume_1h: Some(d("9000")),
        whale_sell_volume_1h: Some(d("3000")),
        whale_net_flow_1h: Some(d("-6000")),
        whale_buy_ratio_1h: Some(0.75),
        time_since_whale_s: Some(1_234),
        pct_volume_from_whales: Some(0.48),
        hours_to_close: Some(7.5),
        day_of_week: Some(5),
        hour_of_day: Some(22),
        category: Some("Crypto".into()),
        neg_risk: Some(true),
        competitive: Some(0.987_654_321),
    }
}

/// A row where everything optional is NULL.
fn empty_row() -> Snapshot {
    Snapshot {
        snapshot_ts: at("2026-11-20T22:30:00Z"),
        fetched_at: at("2026-11-20T22:30:02Z"),
        condition_id: format!("0x{:064x}", 2),
        token_id: "22".into(),
        tier: Some(Tier::T2),
        interval_s: 60,
        ..Snapshot::default()
    }
}

fn read(bytes: &[u8]) -> (Arc<ParquetMetaData>, arrow_schema::SchemaRef, RecordBatch) {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let meta = Arc::clone(builder.metadata());
    let schema = Arc::clone(builder.schema());
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let batch = arrow_select_concat(&schema, batches);
    (meta, schema, batch)
}

fn arrow_select_concat(schema: &arrow_schema::SchemaRef, batches: Vec<RecordBatch>) -> RecordBatch {
    // Files here are far below the reader's batch size: one batch (or none for 0 rows).
    assert!(
        batches.len() <= 1,
        "expected one batch, got {}",
        batches.len()
    );
    batches
        .into_iter()
        .next()
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema)))
}

// --- column readers: check the Arrow type while reading ---

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
fn f64c(b: &RecordBatch, name: &str, i: usize) -> Option<f64> {
    let a = col(b, name).as_primitive::<Float64Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn u32c(b: &RecordBatch, name: &str, i: usize) -> Option<u32> {
    let a = col(b, name).as_primitive::<Int32Type>();
    a.is_valid(i).then(|| u32::try_from(a.value(i)).unwrap())
}
fn u8c(b: &RecordBatch, name: &str, i: usize) -> Option<u8> {
    let a = col(b, name).as_primitive::<Int8Type>();
    a.is_valid(i).then(|| u8::try_from(a.value(i)).unwrap())
}
fn i64c(b: &RecordBatch, name: &str, i: usize) -> Option<i64> {
    let a = col(b, name).as_primitive::<Int64Type>();
    a.is_valid(i).then(|| a.value(i))
}
fn strc(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let a = col(b, name).as_string::<i32>();
    a.is_valid(i).then(|| a.value(i).to_string())
}
fn boolc(b: &RecordBatch, name: &str, i: usize) -> Option<bool> {
    let a = col(b, name).as_boolean();
    a.is_valid(i).then(|| a.value(i))
}

/// Rebuilds row `i` from the file (every field listed: a new Snapshot field breaks this test
/// until the encoder writes it). `tier` is the partition, not in the file.
fn snapshot_at(b: &RecordBatch, i: usize) -> Snapshot {
    Snapshot {
        snapshot_ts: ts(b, "snapshot_ts", i).unwrap(),
        fetched_at: ts(b, "fetched_at", i).unwrap(),
        condition_id: strc(b, "condition_id", i).unwrap(),
        token_id: strc(b, "token_id", i).unwrap(),
        tier: None,
        interval_s: u32c(b, "interval_s", i).unwrap(),
        price: dec(b, "price", i),
        best_bid: dec(b, "best_bid", i),
        best_ask: dec(b, "best_ask", i),
        spread: dec(b, "spread", i),
        last_trade_price: dec(b, "last_trade_price", i),
        mid_price: dec(b, "mid_price", i),
        price_change_1h: dec(b, "price_change_1h", i),
        price_change_1d: dec(b, "price_change_1d", i),
        price_change_1w: dec(b, "price_change_1w", i),
        price_change_1m: dec(b, "price_change_1m", i),
        volume_total: dec(b, "volume_total", i),
        volume_24h: dec(b, "volume_24h", i),
        volume_1w: dec(b, "volume_1w", i),
        liquidity: dec(b, "liquidity", i),
        bid_depth_5: dec(b, "bid_depth_5", i),
        bid_depth_10: dec(b, "bid_depth_10", i),
        bid_depth_20: dec(b, "bid_depth_20", i),
        bid_depth_50: dec(b, "bid_depth_50", i),
        ask_depth_5: dec(b, "ask_depth_5", i),
        ask_depth_10: dec(b, "ask_depth_10", i),
        ask_depth_20: dec(b, "ask_depth_20", i),
        ask_depth_50: dec(b, "ask_depth_50", i),
        bid_levels: u32c(b, "bid_levels", i),
        ask_levels: u32c(b, "ask_levels", i),
        book_imbalance: f64c(b, "book_imbalance", i),
        bid_wall_price: dec(b, "bid_wall_price", i),
        bid_wall_size: dec(b, "bid_wall_size", i),
        ask_wall_price: dec(b, "ask_wall_price", i),
        ask_wall_size: dec(b, "ask_wall_size", i),
        tick_size: dec(b, "tick_size", i),
        trade_count_1h: u32c(b, "trade_count_1h", i),
        buy_count_1h: u32c(b, "buy_count_1h", i),
        sell_count_1h: u32c(b, "sell_count_1h", i),
        volume_1h: dec(b, "volume_1h", i),
        buy_volume_1h: dec(b, "buy_volume_1h", i),
        sell_volume_1h: dec(b, "sell_volume_1h", i),
        avg_trade_size_1h: dec(b, "avg_trade_size_1h", i),
        max_trade_size_1h: dec(b, "max_trade_size_1h", i),
        vwap_1h: dec(b, "vwap_1h", i),
        whale_count_1h: u32c(b, "whale_count_1h", i),
        whale_volume_1h: dec(b, "whale_volume_1h", i),
        whale_buy_volume_1h: dec(b, "whale_buy_volume_1h", i),
        whale_sell_volume_1h: dec(b, "whale_sell_volume_1h", i),
        whale_net_flow_1h: dec(b, "whale_net_flow_1h", i),
        whale_buy_ratio_1h: f64c(b, "whale_buy_ratio_1h", i),
        time_since_whale_s: i64c(b, "time_since_whale_s", i),
        pct_volume_from_whales: f64c(b, "pct_volume_from_whales", i),
        hours_to_close: f64c(b, "hours_to_close", i),
        day_of_week: u8c(b, "day_of_week", i),
        hour_of_day: u8c(b, "hour_of_day", i),
        category: strc(b, "category", i),
        neg_risk: boolc(b, "neg_risk", i),
        competitive: f64c(b, "competitive", i),
    }
}

/// Field names of a struct in declaration order, from its derived Debug output.
fn debug_field_names(debug: &str) -> Vec<String> {
    let body = debug
        .split_once(" { ")
        .unwrap()
        .1
        .strip_suffix(" }")
        .unwrap();
    body.split(", ")
        .map(|kv| kv.split_once(": ").unwrap().0.to_string())
        .collect()
}

fn names(cols: &[Column]) -> Vec<&'static str> {
    cols.iter().map(|c| c.name).collect()
}

/// The Parquet type Athena sees for a leaf column: physical type and logical type.
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
        "double" => (Physical::DOUBLE, None),
        "int" => (Physical::INT32, None),
        "bigint" => (Physical::INT64, None),
        "tinyint" => (Physical::INT32, Some(LogicalType::integer(8, true))),
        "smallint" => (Physical::INT32, Some(LogicalType::integer(16, true))),
        "string" => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
        "boolean" => (Physical::BOOLEAN, None),
        other => panic!("unexpected athena type {other}"),
    }
}

#[test]
fn given_full_and_null_rows_when_encoded_then_every_value_and_null_reads_back_exactly() {
    let full = full_row();
    let empty = empty_row();
    let enc = encode_snapshots(&[full.clone(), empty.clone()]).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));

    let (meta, _, batch) = read(&enc.bytes);
    assert_eq!(meta.file_metadata().num_rows(), 2);
    assert_eq!(meta.num_row_groups(), 1);
    assert_eq!(
        snapshot_at(&batch, 0),
        Snapshot { tier: None, ..full },
        "every column of the full row round-trips exactly"
    );
    assert_eq!(
        snapshot_at(&batch, 1),
        Snapshot {
            tier: None,
            ..empty
        },
        "values not observed stay NULL (not 0)"
    );
    for (i, c) in snapshot_columns().iter().enumerate() {
        let nulls = batch.column(i).null_count();
        let required = [
            "snapshot_ts",
            "fetched_at",
            "condition_id",
            "token_id",
            "interval_s",
        ];
        let expected = if required.contains(&c.name) { 0 } else { 1 };
        assert_eq!(nulls, expected, "{}", c.name);
    }
}

#[test]
fn given_a_snapshots_file_then_its_parquet_types_are_the_athena_types_and_it_is_snappy() {
    let enc = encode_snapshots(&[full_row()]).unwrap();
    let (meta, schema, _) = read(&enc.bytes);

    let file_columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        file_columns,
        names(snapshot_columns()),
        "the file holds exactly these columns, in order"
    );
    assert_eq!(schema.as_ref(), snapshots_schema().as_ref());
    assert!(!file_columns.contains(&"tier") && !file_columns.contains(&"dt"));

    for c in snapshot_columns() {
        assert_eq!(
            leaf_type(&meta, c.name),
            expected_parquet_type(c.athena_type),
            "{}",
            c.name
        );
    }
    // Spot checks that spell the design out.
    assert_eq!(
        leaf_type(&meta, "snapshot_ts"),
        (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS))
        )
    );
    assert_eq!(
        leaf_type(&meta, "price"),
        (Physical::INT64, Some(LogicalType::decimal(6, 18)))
    );
    assert_eq!(
        leaf_type(&meta, "day_of_week"),
        (Physical::INT32, Some(LogicalType::integer(8, true)))
    );
    assert_eq!(leaf_type(&meta, "book_imbalance").0, Physical::DOUBLE);
    assert_eq!(leaf_type(&meta, "time_since_whale_s").0, Physical::INT64);
    assert_eq!(
        leaf_type(&meta, "category"),
        (Physical::BYTE_ARRAY, Some(LogicalType::String))
    );

    let rg = meta.row_group(0);
    for c in rg.columns() {
        assert_eq!(c.compression(), Compression::SNAPPY, "{}", c.column_path());
    }
    // Ids are distinct per row: no dictionary for them; low-cardinality columns keep one.
    let chunk = |name: &str| {
        let i = snapshot_columns()
            .iter()
            .position(|c| c.name == name)
            .unwrap();
        rg.column(i)
    };
    assert!(chunk("condition_id").dictionary_page_offset().is_none());
    assert!(chunk("token_id").dictionary_page_offset().is_none());
    assert!(chunk("category").dictionary_page_offset().is_some());
}

#[test]
fn snapshot_columns_are_the_snapshot_fields_in_order_without_the_tier_partition() {
    let mut fields = debug_field_names(&format!("{:?}", Snapshot::default()));
    assert_eq!(fields.len(), 59);
    fields.retain(|f| f != "tier");
    assert_eq!(names(snapshot_columns()), fields);
    assert_eq!(
        partition_columns("snapshots"),
        &[
            Column {
                name: "tier",
                athena_type: "smallint"
            },
            Column {
                name: "dt",
                athena_type: "string"
            }
        ]
    );
    assert_eq!(
        partition_columns("orderbooks"),
        partition_columns("snapshots")
    );
    assert_eq!(partition_columns("nope"), &[]);
    let athena = |n: &str| {
        snapshot_columns()
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .athena_type
    };
    assert_eq!(athena("snapshot_ts"), "timestamp");
    assert_eq!(athena("vwap_1h"), "decimal(18,6)");
    assert_eq!(athena("whale_buy_ratio_1h"), "double");
    assert_eq!(athena("bid_levels"), "int");
    assert_eq!(athena("interval_s"), "int");
    assert_eq!(athena("time_since_whale_s"), "bigint");
    assert_eq!(athena("hour_of_day"), "tinyint");
    assert_eq!(athena("neg_risk"), "boolean");
}

#[test]
fn given_values_over_18_digits_then_they_are_stored_null_and_counted() {
    let mut row = full_row();
    row.volume_total = Some(d("1000000000000")); // 13 integer digits + 6 decimals = 19
    row.liquidity = Some(d("-1000000000000.5"));
    row.price = Some(d("0.4250004")); // 7 places: rounded half-even to 6, not NULL
    row.day_of_week = Some(200); // does not fit tinyint
    let enc = encode_snapshots(&[row]).unwrap();
    assert_eq!(enc.nulled, 3);
    let (_, _, batch) = read(&enc.bytes);
    assert_eq!(dec(&batch, "volume_total", 0), None);
    assert_eq!(dec(&batch, "liquidity", 0), None);
    assert_eq!(u8c(&batch, "day_of_week", 0), None);
    assert_eq!(dec(&batch, "price", 0), Some(d("0.425")));
    assert_eq!(
        dec(&batch, "volume_24h", 0),
        Some(d("123456.789012")),
        "other columns untouched"
    );
}

#[test]
fn given_no_rows_then_the_file_is_valid_and_empty() {
    let enc = encode_snapshots(&[]).unwrap();
    let (meta, schema, batch) = read(&enc.bytes);
    assert_eq!(
        (enc.rows, batch.num_rows(), meta.file_metadata().num_rows()),
        (0, 0, 0)
    );
    assert_eq!(schema.fields().len(), snapshot_columns().len());
}

fn level(p: &str, s: &str) -> Level {
    Level {
        price: d(p),
        size: d(s),
    }
}

fn levels_at(b: &RecordBatch, name: &str, i: usize) -> Vec<(Option<Decimal>, Option<Decimal>)> {
    let list = col(b, name).as_list::<i32>();
    let items = list.value(i);
    let s = items.as_struct();
    let p = s.column(0).as_primitive::<Decimal64Type>();
    let z = s.column(1).as_primitive::<Decimal64Type>();
    (0..s.len())
        .map(|k| {
            (
                p.is_valid(k).then(|| from_mantissa(p.value(k))),
                z.is_valid(k).then(|| from_mantissa(z.value(k))),
            )
        })
        .collect()
}

fn some_levels(ls: &[Level]) -> Vec<(Option<Decimal>, Option<Decimal>)> {
    ls.iter().map(|l| (Some(l.price), Some(l.size))).collect()
}

fn book_row() -> OrderbookRow {
    OrderbookRow {
        snapshot_ts: at("2026-11-20T22:30:00Z"),
        fetched_at: at("2026-11-20T22:30:00.750Z"),
        condition_id: format!("0x{:064x}", 7),
        token_id: "777".into(),
        tier: Tier::T3,
        book_ts: Some(at("2026-11-20T22:29:59.981Z")),
        book_hash: Some("0c3f2e1d".into()),
        tick_size: Some(d("0.01")),
        bids: vec![
            level("0.44", "100"),
            level("0.43", "2500.5"),
            level("0.01", "1000000"),
        ],
        asks: vec![level("0.47", "20"), level("0.99", "123456.123456")],
    }
}

#[test]
fn given_orderbook_rows_then_levels_read_back_best_first_with_counts() {
    let full = book_row();
    let bare = OrderbookRow {
        book_ts: None,
        book_hash: None,
        tick_size: None,
        bids: vec![],
        asks: vec![],
        condition_id: format!("0x{:064x}", 8),
        ..book_row()
    };
    let enc = encode_orderbooks(&[full.clone(), bare]).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    let (_, schema, b) = read(&enc.bytes);

    let file_columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(file_columns, names(orderbook_columns()));
    assert_eq!(schema.as_ref(), orderbooks_schema().as_ref());

    assert_eq!(ts(&b, "snapshot_ts", 0), Some(full.snapshot_ts));
    assert_eq!(ts(&b, "fetched_at", 0), Some(full.fetched_at));
    assert_eq!(strc(&b, "condition_id", 0), Some(full.condition_id.clone()));
    assert_eq!(strc(&b, "token_id", 0), Some("777".into()));
    assert_eq!(ts(&b, "book_ts", 0), full.book_ts);
    assert_eq!(strc(&b, "book_hash", 0), Some("0c3f2e1d".into()));
    assert_eq!(dec(&b, "tick_size", 0), Some(d("0.01")));
    assert_eq!(
        levels_at(&b, "bids", 0),
        some_levels(&full.bids),
        "bids best first, as given"
    );
    assert_eq!(levels_at(&b, "asks", 0), some_levels(&full.asks));
    assert_eq!(
        (u32c(&b, "bid_levels", 0), u32c(&b, "ask_levels", 0)),
        (Some(3), Some(2))
    );

    assert_eq!(
        (
            ts(&b, "book_ts", 1),
            strc(&b, "book_hash", 1),
            dec(&b, "tick_size", 1)
        ),
        (None, None, None)
    );
    assert_eq!(levels_at(&b, "bids", 1), vec![]);
    assert_eq!(
        (u32c(&b, "bid_levels", 1), u32c(&b, "ask_levels", 1)),
        (Some(0), Some(0))
    );
}

#[test]
fn given_an_orderbooks_file_then_levels_are_a_list_of_decimal_structs_and_it_is_snappy() {
    let enc = encode_orderbooks(&[book_row()]).unwrap();
    let (meta, _, _) = read(&enc.bytes);
    for side in ["bids", "asks"] {
        for leaf in ["price", "size"] {
            let path = format!("{side}.list.element.{leaf}");
            assert_eq!(
                leaf_type(&meta, &path),
                (Physical::INT64, Some(LogicalType::decimal(6, 18))),
                "{path}"
            );
        }
        let root = meta
            .file_metadata()
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .find(|f| f.name() == side)
            .cloned()
            .unwrap();
        assert_eq!(
            root.get_basic_info().logical_type_ref(),
            Some(&LogicalType::List),
            "{side} is a Parquet LIST"
        );
        assert_eq!(root.get_basic_info().repetition(), Repetition::REQUIRED);
    }
    for c in orderbook_columns() {
        if !c.athena_type.starts_with("array<") {
            assert_eq!(
                leaf_type(&meta, c.name),
                expected_parquet_type(c.athena_type),
                "{}",
                c.name
            );
        }
    }
    assert_eq!(
        orderbook_columns()
            .iter()
            .find(|c| c.name == "bids")
            .unwrap()
            .athena_type,
        "array<struct<price:decimal(18,6),size:decimal(18,6)>>"
    );
    for c in meta.row_group(0).columns() {
        assert_eq!(c.compression(), Compression::SNAPPY);
    }
}

#[test]
fn given_a_level_size_over_18_digits_then_that_value_is_null_and_counted() {
    let mut row = book_row();
    row.asks[1].size = d("10000000000000");
    let enc = encode_orderbooks(&[row]).unwrap();
    assert_eq!(enc.nulled, 1);
    let (_, _, b) = read(&enc.bytes);
    assert_eq!(levels_at(&b, "asks", 0)[1], (Some(d("0.99")), None));
    assert_eq!(
        levels_at(&b, "asks", 0)[0],
        (Some(d("0.47")), Some(d("20")))
    );
}

#[test]
fn orderbook_columns_are_the_row_fields_without_the_tier_partition_plus_level_counts() {
    let row = OrderbookRow {
        bids: vec![],
        asks: vec![],
        ..book_row()
    };
    let mut fields = debug_field_names(&format!("{row:?}"));
    fields.retain(|f| f != "tier");
    fields.extend(["bid_levels".to_string(), "ask_levels".to_string()]);
    assert_eq!(names(orderbook_columns()), fields);
}

fn i16c(b: &RecordBatch, name: &str, i: usize) -> Option<i16> {
    let c = col(b, name);
    assert_eq!(c.data_type(), &DataType::Int16, "{name}");
    let a = c.as_primitive::<arrow_array::types::Int16Type>();
    a.is_valid(i).then(|| a.value(i))
}

#[test]
fn given_markets_when_encoded_then_every_field_reads_back_with_the_athena_types() {
    use polytape_store::contract::market;
    let full = {
        let mut m = market(7, Some(Tier::T3), true);
        m.outcomes = ["Yes".into(), "No".into()];
        m.volume_24h = Some(d("123456.789012"));
        m
    };
    let ended = {
        let mut m = market(8, None, false);
        m.slug = None;
        m.category = None;
        m.volume_24h = None;
        // A market without an event, that charges no fee.
        m.event_id = None;
        m.fees_enabled = Some(false);
        m.fee = None;
        m.closed_at = Some(at("2026-11-20T17:00:00Z"));
        m.result = MarketResult::Resolved(outcome(Some(1)));
        m
    };
    let enc = encode_markets(&[full.clone(), ended.clone()]).unwrap();
    assert_eq!((enc.rows, enc.nulled), (2, 0));
    let (meta, schema, b) = read(&enc.bytes);
    assert_eq!(schema.as_ref(), markets_schema().as_ref());

    let file_columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        file_columns,
        vec![
            "condition_id",
            "question",
            "slug",
            "yes_token_id",
            "no_token_id",
            "yes_outcome",
            "no_outcome",
            "end_date",
            "tier",
            "active",
            "resolved",
            "first_seen",
            "category",
            "neg_risk",
            "volume_24h",
            "result",
            "uma_status",
            "closed_at",
            "delisted",
            "winning_outcome",
            "winning_token_id",
            "invalid",
            "payouts",
            "resolved_at",
            "event_id",
            "fees_enabled",
            "fee_rate",
            "fee_exponent",
            "fee_rebate_rate",
            "fee_taker_only"
        ]
    );
    assert_eq!(names(market_columns()), file_columns);
    for c in market_columns().iter().filter(|c| c.name != "payouts") {
        assert_eq!(
            leaf_type(&meta, c.name),
            expected_parquet_type(c.athena_type),
            "{}",
            c.name
        );
    }
    assert_eq!(
        leaf_type(&meta, "tier"),
        (Physical::INT32, Some(LogicalType::integer(16, true))),
        "tier is smallint, as the partition column of the other tables"
    );
    assert_eq!(
        partition_columns("markets"),
        &[Column {
            name: "dt",
            athena_type: "string"
        }]
    );
    assert!(!file_columns.contains(&"dt"));
    for c in meta.row_group(0).columns() {
        assert_eq!(c.compression(), Compression::SNAPPY, "{}", c.column_path());
    }

    for (i, m) in [&full, &ended].into_iter().enumerate() {
        assert_eq!(strc(&b, "condition_id", i).as_ref(), Some(&m.condition_id));
        assert_eq!(strc(&b, "question", i).as_ref(), Some(&m.question));
        assert_eq!(strc(&b, "slug", i), m.slug);
        assert_eq!(strc(&b, "yes_token_id", i).as_ref(), Some(&m.yes_token_id));
        assert_eq!(strc(&b, "no_token_id", i).as_ref(), Some(&m.no_token_id));
        assert_eq!(strc(&b, "yes_outcome", i).as_ref(), Some(&m.outcomes[0]));
        assert_eq!(strc(&b, "no_outcome", i).as_ref(), Some(&m.outcomes[1]));
        assert_eq!(ts(&b, "end_date", i), Some(m.end_date));
        assert_eq!(i16c(&b, "tier", i), m.tier.map(|t| i16::from(t.number())));
        assert_eq!(boolc(&b, "active", i), Some(m.active));
        assert_eq!(boolc(&b, "resolved", i), Some(m.is_resolved()));
        assert_eq!(strc(&b, "result", i).as_deref(), Some(m.result.name()));
        assert_eq!(ts(&b, "closed_at", i), m.closed_at);
        assert_eq!(
            strc(&b, "winning_outcome", i).as_deref(),
            m.winning_outcome()
        );
        assert_eq!(
            strc(&b, "winning_token_id", i).as_deref(),
            m.winning_token_id()
        );
        assert_eq!(boolc(&b, "invalid", i), m.outcome().map(|o| o.invalid));
        assert_eq!(ts(&b, "first_seen", i), Some(m.first_seen));
        assert_eq!(strc(&b, "category", i), m.category);
        assert_eq!(boolc(&b, "neg_risk", i), Some(m.neg_risk));
        assert_eq!(dec(&b, "volume_24h", i), m.volume_24h);
        assert_eq!(strc(&b, "event_id", i), m.event_id);
        assert_eq!(boolc(&b, "fees_enabled", i), m.fees_enabled);
        assert_eq!(dec(&b, "fee_rate", i), m.fee.map(|f| f.rate));
        assert_eq!(u32c(&b, "fee_exponent", i), m.fee.map(|f| f.exponent));
        assert_eq!(
            dec(&b, "fee_rebate_rate", i),
            m.fee.and_then(|f| f.rebate_rate)
        );
        assert_eq!(boolc(&b, "fee_taker_only", i), m.fee.map(|f| f.taker_only));
    }
    assert_eq!(strc(&b, "event_id", 0).as_deref(), Some("21003"));
    assert_eq!(dec(&b, "fee_rate", 0), Some(d("0.03")));
    assert_eq!(dec(&b, "fee_rate", 1), None, "no schedule: NULL, not 0");
    assert_eq!(boolc(&b, "fees_enabled", 1), Some(false));
    assert_eq!(i16c(&b, "tier", 0), Some(3));
    assert_eq!(i16c(&b, "tier", 1), None, "no tier is NULL, not 0");
    assert_eq!(strc(&b, "winning_outcome", 1).as_deref(), Some("Down"));
    assert_eq!(strc(&b, "winning_token_id", 1).as_deref(), Some("10082"));
    assert_eq!(f64s(&b, "payouts", 1), vec![0.0, 1.0]);
    assert_eq!(
        f64s(&b, "payouts", 0),
        Vec::<f64>::new(),
        "open: no payouts"
    );
    assert_eq!(boolc(&b, "invalid", 0), None, "open: NULL, not false");
    assert_eq!(ts(&b, "resolved_at", 1), Some(at("2026-11-20T18:05:00Z")));
    assert_eq!(strc(&b, "uma_status", 1).as_deref(), Some("resolved"));
    assert_eq!(
        ts(&b, "first_seen", 0),
        Some(at("2026-11-19T08:15:30.123Z")),
        "milliseconds kept"
    );
    assert_eq!(
        polytape_store::keys::markets("2026-11-20".parse().unwrap()),
        "markets/dt=2026-11-20/markets.parquet"
    );
}

#[test]
fn market_columns_hold_every_market_field() {
    let m = polytape_store::contract::market(1, None, true);
    // The outcome pair prints as `["Up", "Down"]`: drop it before splitting on ", ".
    // The fee schedule is a struct of its own: each of its fields is a `fee_` column.
    let fee = m.fee.unwrap();
    let debug = format!("{m:?}")
        .replace(r#"["Up", "Down"]"#, "pair")
        .replace(&format!("{fee:?}"), "schedule");
    let columns = names(market_columns());
    for field in debug_field_names(&format!("{fee:?}")) {
        let name = format!("fee_{field}");
        assert!(
            columns.contains(&name.as_str()),
            "a new FeeSchedule field ({field}) breaks this test until the encoder writes it"
        );
    }
    for field in debug_field_names(&debug) {
        let held = match field.as_str() {
            "outcomes" => columns.contains(&"yes_outcome") && columns.contains(&"no_outcome"),
            "fee" => columns.contains(&"fee_rate"),
            // `version` is the store's write counter (optimistic concurrency), not an attribute.
            "version" => true,
            f => columns.contains(&f),
        };
        assert!(
            held,
            "a new Market field ({field}) breaks this test until the encoder writes it"
        );
    }
}

fn outcome(winner: Option<usize>) -> Outcome {
    Outcome {
        winner,
        invalid: winner.is_none(),
        payouts: match winner {
            Some(0) => vec![Decimal::ONE, Decimal::ZERO],
            Some(_) => vec![Decimal::ZERO, Decimal::ONE],
            None => vec![d("0.5"), d("0.5")],
        },
        resolved_at: Some(at("2026-11-20T18:05:00Z")),
        learned_at: at("2026-11-20T18:15:00.250Z"),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    }
}

fn f64s(b: &RecordBatch, name: &str, i: usize) -> Vec<f64> {
    let list = col(b, name).as_any().downcast_ref::<ListArray>().unwrap();
    let v = list.value(i);
    let v = v.as_any().downcast_ref::<Float64Array>().unwrap();
    v.values().to_vec()
}

fn strs(b: &RecordBatch, name: &str, i: usize) -> Vec<String> {
    let list = col(b, name).as_any().downcast_ref::<ListArray>().unwrap();
    let v = list.value(i);
    let v = v.as_any().downcast_ref::<StringArray>().unwrap();
    v.iter().map(|s| s.unwrap().to_string()).collect()
}

#[test]
fn given_resolutions_when_encoded_then_winner_invalid_and_payouts_read_back() {
    use polytape_store::contract::market;
    let mut won = market(3, None, false);
    won.result = MarketResult::Resolved(outcome(Some(0)));
    let mut void = market(4, None, false);
    void.result = MarketResult::Resolved(outcome(None));
    let rows: Vec<Resolution> = [&won, &void]
        .iter()
        .map(|m| Resolution::of(m).unwrap())
        .collect();
    assert!(
        Resolution::of(&market(5, None, false)).is_none(),
        "open: no row"
    );
    let enc = encode_resolutions(&rows).unwrap();
    let (meta, schema, b) = read(&enc.bytes);
    assert_eq!(schema.as_ref(), resolutions_schema().as_ref());
    assert_eq!(
        names(resolution_columns()),
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
    );
    for c in resolution_columns() {
        match c.athena_type {
            "array<string>" => assert_eq!(
                leaf_type(&meta, &format!("{}.list.element", c.name)).0,
                Physical::BYTE_ARRAY
            ),
            "array<double>" => assert_eq!(
                leaf_type(&meta, &format!("{}.list.element", c.name)).0,
                Physical::DOUBLE
            ),
            t => assert_eq!(
                leaf_type(&meta, c.name),
                expected_parquet_type(t),
                "{}",
                c.name
            ),
        }
    }
    assert_eq!(strc(&b, "winning_outcome", 0).as_deref(), Some("Up"));
    assert_eq!(
        strc(&b, "winning_token_id", 0).as_deref(),
        Some(won.yes_token_id.as_str())
    );
    assert_eq!(
        (boolc(&b, "invalid", 0), boolc(&b, "invalid", 1)),
        (Some(false), Some(true))
    );
    assert_eq!(
        strc(&b, "winning_token_id", 1),
        None,
        "INVALID has no winning token"
    );
    assert_eq!(f64s(&b, "payouts", 1), vec![0.5, 0.5]);
    assert_eq!(strs(&b, "outcomes", 0), vec!["Up", "Down"]);
    assert_eq!(
        strs(&b, "token_ids", 1),
        vec![void.yes_token_id.clone(), void.no_token_id.clone()]
    );
    assert_eq!(
        ts(&b, "learned_at", 0),
        Some(at("2026-11-20T18:15:00.250Z"))
    );
    assert_eq!(ts(&b, "resolved_at", 0), Some(at("2026-11-20T18:05:00Z")));
    assert_eq!(
        polytape_store::keys::resolution(&rows[0]),
        format!("resolutions/dt=2026-11-20/{}.parquet", won.condition_id),
        "keyed by the market: learning it again rewrites it"
    );
    assert_eq!(partition_columns("resolutions").len(), 1);
}

#[test]
fn given_transitions_when_encoded_then_every_column_reads_back() {
    let t = TierTransition {
        condition_id: "0xabc".into(),
        from_tier: Some(Tier::T4),
        to_tier: None,
        at: at("2026-11-20T18:00:00.125Z"),
        reason: "expired".into(),
        hours_to_close: Some(-24.0),
    };
    let enc = encode_transitions(std::slice::from_ref(&t)).unwrap();
    let (meta, _, b) = read(&enc.bytes);
    for c in transition_columns() {
        assert_eq!(
            leaf_type(&meta, c.name),
            expected_parquet_type(c.athena_type),
            "{}",
            c.name
        );
    }
    assert_eq!(strc(&b, "reason", 0).as_deref(), Some("expired"));
    assert_eq!(i16c(&b, "from_tier", 0), Some(4));
    assert_eq!(i16c(&b, "to_tier", 0), None);
    assert_eq!(f64c(&b, "hours_to_close", 0), Some(-24.0));
    assert_eq!(ts(&b, "at", 0), Some(t.at));
    assert_eq!(
        polytape_store::keys::transitions("maintenance", t.at),
        "tier_transitions/dt=2026-11-20/180000.125Z-maintenance.parquet"
    );
}
