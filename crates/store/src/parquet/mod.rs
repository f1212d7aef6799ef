//! Parquet encoders for the per-tick files, the daily `markets` dimension, the resolutions and
//! transitions, the live feed's `trades`, `whale_events` and `raw_ws`, and the paper
//! executor's `signals`, `fills` and `positions`, with the types
//! Athena engine v3 reads exactly as
//! DESIGN.md declares them: timestamps INT64 TIMESTAMP(MILLIS, UTC); money DECIMAL(18,6) on
//! INT64; ratios DOUBLE; counts INT/BIGINT; day and hour TINYINT; strings UTF8; Snappy.
//!
//! The partition columns (`tier`, `dt`) live in the object key (see [`crate::keys`]), never in
//! the file: Athena rejects a column that is both a data and a partition column.
//!
//! `raw_ws` and `trades` also read back ([`decode_tape`], [`decode_trades`]): `polytape replay`
//! rebuilds the trades from the tape and compares them with the stored ones. So do the paper
//! executor's tables ([`decode_signals`], [`decode_fills`], [`decode_positions`]). [`json`] reads any
//! of the files back generically — rows as JSON, row counts, non-NULL counts — for the status
//! API. The live feed writes its `raw_ws` objects row group by row group with
//! [`TapeFileWriter`] (`tape`), the same file [`encode_tape`] makes, in bounded memory.

mod columns;
pub mod json;
pub mod stream;
mod tape;

pub use tape::TapeFileWriter;

use crate::error::Result;
use ::parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::Compression;
use ::parquet::file::metadata::ParquetMetaDataPushDecoder;
use ::parquet::file::properties::WriterProperties;
use ::parquet::schema::types::ColumnPath;
use ::parquet::DecodeResult;
use arrow_array::{
    BooleanArray, Decimal64Array, Float64Array, Int32Array, Int64Array, Int8Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow_schema::SchemaRef;
use columns::{arrays_of, col, columns_of, schema_of, FieldSpec, Get, Rows};
use polytape_core::live::{SizeSource, Source, StoredTrade, TapeKind, TapeRecord, WhaleEvent};
use polytape_core::ops::TierTransition;
use polytape_core::paper::{FillRow, PositionRow, SignalRow};
use polytape_core::snapshot::OrderbookRow;
use polytape_core::{Market, MarketResult, Resolution, Side, Snapshot};
use std::sync::{Arc, OnceLock};

/// The media type every Parquet object is written with.
pub const CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// One column as the Glue table declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// The Athena (Hive DDL) type: `timestamp`, `decimal(18,6)`, `double`, `int`, `bigint`,
    /// `smallint`, `tinyint`, `string`, `boolean` or the order-book level array.
    pub athena_type: &'static str,
}

/// An encoded Parquet file.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub rows: usize,
    /// Values stored NULL because they did not fit their column (over 18 digits for
    /// DECIMAL(18,6), over the integer type's range for counts): the caller counts them.
    pub nulled: usize,
}

const SNAPSHOT_FIELD_COUNT: usize = 58;

static SNAPSHOT_FIELDS: [FieldSpec<Snapshot>; SNAPSHOT_FIELD_COUNT] = [
    // keys (tier is the partition)
    col("snapshot_ts", Get::Ts(|r| r.snapshot_ts)),
    col("fetched_at", Get::Ts(|r| r.fetched_at)),
    col("condition_id", Get::Str(|r| &r.condition_id)),
    col("token_id", Get::Str(|r| &r.token_id)),
    col("interval_s", Get::I32Req(|r| r.interval_s)),
    // price
    col("price", Get::Dec(|r| r.price)),
    col("best_bid", Get::Dec(|r| r.best_bid)),
    col("best_ask", Get::Dec(|r| r.best_ask)),
    col("spread", Get::Dec(|r| r.spread)),
    col("last_trade_price", Get::Dec(|r| r.last_trade_price)),
    col("mid_price", Get::Dec(|r| r.mid_price)),
    // momentum
    col("price_change_1h", Get::Dec(|r| r.price_change_1h)),
    col("price_change_1d", Get::Dec(|r| r.price_change_1d)),
    col("price_change_1w", Get::Dec(|r| r.price_change_1w)),
    col("price_change_1m", Get::Dec(|r| r.price_change_1m)),
    // volume
    col("volume_total", Get::Dec(|r| r.volume_total)),
    col("volume_24h", Get::Dec(|r| r.volume_24h)),
    col("volume_1w", Get::Dec(|r| r.volume_1w)),
    col("liquidity", Get::Dec(|r| r.liquidity)),
    // depth
    col("bid_depth_5", Get::Dec(|r| r.bid_depth_5)),
    col("bid_depth_10", Get::Dec(|r| r.bid_depth_10)),
    col("bid_depth_20", Get::Dec(|r| r.bid_depth_20)),
    col("bid_depth_50", Get::Dec(|r| r.bid_depth_50)),
    col("ask_depth_5", Get::Dec(|r| r.ask_depth_5)),
    col("ask_depth_10", Get::Dec(|r| r.ask_depth_10)),
    col("ask_depth_20", Get::Dec(|r| r.ask_depth_20)),
    col("ask_depth_50", Get::Dec(|r| r.ask_depth_50)),
    // book
    col("bid_levels", Get::I32(|r| r.bid_levels)),
    col("ask_levels", Get::I32(|r| r.ask_levels)),
    col("book_imbalance", Get::F64(|r| r.book_imbalance)),
    col("bid_wall_price", Get::Dec(|r| r.bid_wall_price)),
    col("bid_wall_size", Get::Dec(|r| r.bid_wall_size)),
    col("ask_wall_price", Get::Dec(|r| r.ask_wall_price)),
    col("ask_wall_size", Get::Dec(|r| r.ask_wall_size)),
    col("tick_size", Get::Dec(|r| r.tick_size)),
    // trade flow, last hour
    col("trade_count_1h", Get::I32(|r| r.trade_count_1h)),
    col("buy_count_1h", Get::I32(|r| r.buy_count_1h)),
    col("sell_count_1h", Get::I32(|r| r.sell_count_1h)),
    col("volume_1h", Get::Dec(|r| r.volume_1h)),
    col("buy_volume_1h", Get::Dec(|r| r.buy_volume_1h)),
    col("sell_volume_1h", Get::Dec(|r| r.sell_volume_1h)),
    col("avg_trade_size_1h", Get::Dec(|r| r.avg_trade_size_1h)),
    col("max_trade_size_1h", Get::Dec(|r| r.max_trade_size_1h)),
    col("vwap_1h", Get::Dec(|r| r.vwap_1h)),
    // whales, last hour
    col("whale_count_1h", Get::I32(|r| r.whale_count_1h)),
    col("whale_volume_1h", Get::Dec(|r| r.whale_volume_1h)),
    col("whale_buy_volume_1h", Get::Dec(|r| r.whale_buy_volume_1h)),
    col("whale_sell_volume_1h", Get::Dec(|r| r.whale_sell_volume_1h)),
    col("whale_net_flow_1h", Get::Dec(|r| r.whale_net_flow_1h)),
    col("whale_buy_ratio_1h", Get::F64(|r| r.whale_buy_ratio_1h)),
    col("time_since_whale_s", Get::I64(|r| r.time_since_whale_s)),
    col(
        "pct_volume_from_whales",
        Get::F64(|r| r.pct_volume_from_whales),
    ),
    // context
    col("hours_to_close", Get::F64(|r| r.hours_to_close)),
    col("day_of_week", Get::I8(|r| r.day_of_week)),
    col("hour_of_day", Get::I8(|r| r.hour_of_day)),
    col("category", Get::OptStr(|r| r.category.as_deref())),
    col("neg_risk", Get::Bool(|r| r.neg_risk)),
    col("competitive", Get::F64(|r| r.competitive)),
];

static SNAPSHOT_COLUMNS: [Column; SNAPSHOT_FIELD_COUNT] = columns_of(&SNAPSHOT_FIELDS);

const ORDERBOOK_FIELD_COUNT: usize = 11;

static ORDERBOOK_FIELDS: [FieldSpec<OrderbookRow>; ORDERBOOK_FIELD_COUNT] = [
    col("snapshot_ts", Get::Ts(|r| r.snapshot_ts)),
    col("fetched_at", Get::Ts(|r| r.fetched_at)),
    col("condition_id", Get::Str(|r| &r.condition_id)),
    col("token_id", Get::Str(|r| &r.token_id)),
    col("book_ts", Get::OptTs(|r| r.book_ts)),
    col("book_hash", Get::OptStr(|r| r.book_hash.as_deref())),
    col("tick_size", Get::Dec(|r| r.tick_size)),
    col("bids", Get::Levels(|r| &r.bids)),
    col("asks", Get::Levels(|r| &r.asks)),
    col("bid_levels", Get::I32(|r| u32::try_from(r.bids.len()).ok())),
    col("ask_levels", Get::I32(|r| u32::try_from(r.asks.len()).ok())),
];

static ORDERBOOK_COLUMNS: [Column; ORDERBOOK_FIELD_COUNT] = columns_of(&ORDERBOOK_FIELDS);

const MARKET_FIELD_COUNT: usize = 30;

/// The `markets` dimension: one row per market known on the day (see [`crate::keys::markets`]).
static MARKET_FIELDS: [FieldSpec<Market>; MARKET_FIELD_COUNT] = [
    col("condition_id", Get::Str(|m| &m.condition_id)),
    col("question", Get::Str(|m| &m.question)),
    col("slug", Get::OptStr(|m| m.slug.as_deref())),
    col("yes_token_id", Get::Str(|m| &m.yes_token_id)),
    col("no_token_id", Get::Str(|m| &m.no_token_id)),
    col("yes_outcome", Get::Str(|m| &m.outcomes[0])),
    col("no_outcome", Get::Str(|m| &m.outcomes[1])),
    col("end_date", Get::Ts(|m| m.end_date)),
    col("tier", Get::I16(|m| m.tier.map(|t| t.number()))),
    col("active", Get::Bool(|m| Some(m.active))),
    col("resolved", Get::Bool(|m| Some(m.is_resolved()))),
    col("first_seen", Get::Ts(|m| m.first_seen)),
    col("category", Get::OptStr(|m| m.category.as_deref())),
    col("neg_risk", Get::Bool(|m| Some(m.neg_risk))),
    col("volume_24h", Get::Dec(|m| m.volume_24h)),
    // where its result stands, and the result's columns as `resolutions` has them
    col("result", Get::Str(|m| m.result.name())),
    col("uma_status", Get::OptStr(|m| uma_status(&m.result))),
    col("closed_at", Get::OptTs(|m| m.closed_at)),
    col("delisted", Get::Bool(|m| Some(m.delisted))),
    col("winning_outcome", Get::OptStr(|m| m.winning_outcome())),
    col("winning_token_id", Get::OptStr(|m| m.winning_token_id())),
    col("invalid", Get::Bool(|m| m.outcome().map(|o| o.invalid))),
    col(
        "payouts",
        Get::Ratios(|m| m.outcome().map_or(&[], |o| &o.payouts)),
    ),
    col(
        "resolved_at",
        Get::OptTs(|m| m.outcome().and_then(|o| o.resolved_at)),
    ),
    // the Gamma event (one question's several deadlines share it) and the fee schedule
    col("event_id", Get::OptStr(|m| m.event_id.as_deref())),
    col("fees_enabled", Get::Bool(|m| m.fees_enabled)),
    col("fee_rate", Get::Dec(|m| m.fee.map(|f| f.rate))),
    col("fee_exponent", Get::I32(|m| m.fee.map(|f| f.exponent))),
    col(
        "fee_rebate_rate",
        Get::Dec(|m| m.fee.and_then(|f| f.rebate_rate)),
    ),
    col("fee_taker_only", Get::Bool(|m| m.fee.map(|f| f.taker_only))),
];

/// The last UMA status Gamma showed for a result.
fn uma_status(r: &MarketResult) -> Option<&str> {
    match r {
        MarketResult::Pending { uma_status } => uma_status.as_deref(),
        MarketResult::Resolved(o) => o.uma_status.as_deref(),
        MarketResult::Open | MarketResult::Unresolved => None,
    }
}

const RESOLUTION_FIELD_COUNT: usize = 14;

/// The `resolutions` table: one row per resolved market (see [`crate::keys::resolution`]).
static RESOLUTION_FIELDS: [FieldSpec<Resolution>; RESOLUTION_FIELD_COUNT] = [
    col("condition_id", Get::Str(|r| &r.condition_id)),
    col("question", Get::Str(|r| &r.question)),
    col("outcomes", Get::Strs(|r| &r.outcomes)),
    col("token_ids", Get::Strs(|r| &r.token_ids)),
    col("end_date", Get::Ts(|r| r.end_date)),
    col("closed_at", Get::OptTs(|r| r.closed_at)),
    col(
        "winning_outcome",
        Get::OptStr(|r| r.winning_outcome.as_deref()),
    ),
    col(
        "winning_token_id",
        Get::OptStr(|r| r.winning_token_id.as_deref()),
    ),
    col("invalid", Get::Bool(|r| Some(r.outcome.invalid))),
    col("payouts", Get::Ratios(|r| &r.outcome.payouts)),
    col("resolved_at", Get::OptTs(|r| r.outcome.resolved_at)),
    col("learned_at", Get::Ts(|r| r.outcome.learned_at)),
    col(
        "uma_status",
        Get::OptStr(|r| r.outcome.uma_status.as_deref()),
    ),
    col("source", Get::Str(|r| &r.outcome.source)),
];

static RESOLUTION_COLUMNS: [Column; RESOLUTION_FIELD_COUNT] = columns_of(&RESOLUTION_FIELDS);

const TRANSITION_FIELD_COUNT: usize = 6;

/// The `tier_transitions` table: every change of a tracked market, with its reason.
static TRANSITION_FIELDS: [FieldSpec<TierTransition>; TRANSITION_FIELD_COUNT] = [
    col("condition_id", Get::Str(|t| &t.condition_id)),
    col("at", Get::Ts(|t| t.at)),
    col("from_tier", Get::I16(|t| t.from_tier.map(|t| t.number()))),
    col("to_tier", Get::I16(|t| t.to_tier.map(|t| t.number()))),
    col("reason", Get::Str(|t| &t.reason)),
    col("hours_to_close", Get::F64(|t| t.hours_to_close)),
];

static TRANSITION_COLUMNS: [Column; TRANSITION_FIELD_COUNT] = columns_of(&TRANSITION_FIELDS);

static MARKET_COLUMNS: [Column; MARKET_FIELD_COUNT] = columns_of(&MARKET_FIELDS);

const TRADE_FIELD_COUNT: usize = 22;

/// The `trades` table: every trade the live feed captured, once (see [`crate::keys::live`]).
static TRADE_FIELDS: [FieldSpec<StoredTrade>; TRADE_FIELD_COUNT] = [
    col("trade_key", Get::Str(|t| &t.trade_key)),
    col("condition_id", Get::Str(|t| &t.condition_id)),
    col("token_id", Get::Str(|t| &t.token_id)),
    col("outcome_index", Get::I8(|t| t.outcome_index)),
    col("side", Get::Str(|t| t.side.as_str())),
    col("price", Get::Dec(|t| Some(t.price))),
    col("size", Get::Dec(|t| t.size)),
    col("size_source", Get::Str(|t| t.size_source.as_str())),
    col("fee_rate_bps", Get::Dec(|t| t.fee_rate_bps)),
    col(
        "transaction_hash",
        Get::OptStr(|t| t.transaction_hash.as_deref()),
    ),
    col("trade_ts", Get::Ts(|t| t.trade_ts)),
    col("received_at", Get::Ts(|t| t.received_at)),
    col("source", Get::Str(|t| t.source.as_str())),
    col("best_bid", Get::Dec(|t| t.best_bid)),
    col("best_ask", Get::Dec(|t| t.best_ask)),
    col("mid", Get::Dec(|t| t.mid)),
    col("notional", Get::Dec(|t| t.notional)),
    col("whale_tier", Get::I8(|t| t.whale_tier)),
    col("stale", Get::Bool(|t| Some(t.stale))),
    col("divergent", Get::Bool(|t| Some(t.divergent))),
    col("shard", Get::I32(|t| t.shard)),
    col("seq", Get::U64(|t| t.seq)),
];

static TRADE_COLUMNS: [Column; TRADE_FIELD_COUNT] = columns_of(&TRADE_FIELDS);

const WHALE_FIELD_COUNT: usize = 14;

/// The `whale_events` table: each whale trade (tier ≥ 2, WebSocket) with the token's mid
/// before it and 1 and 5 minutes after.
static WHALE_FIELDS: [FieldSpec<WhaleEvent>; WHALE_FIELD_COUNT] = [
    col("trade_key", Get::Str(|w| &w.trade_key)),
    col("condition_id", Get::Str(|w| &w.condition_id)),
    col("token_id", Get::Str(|w| &w.token_id)),
    col("side", Get::Str(|w| w.side.as_str())),
    col("price", Get::Dec(|w| Some(w.price))),
    col("size", Get::Dec(|w| Some(w.size))),
    col("notional", Get::Dec(|w| Some(w.notional))),
    col("whale_tier", Get::I8(|w| Some(w.whale_tier))),
    col("trade_ts", Get::Ts(|w| w.trade_ts)),
    col("price_before", Get::Dec(|w| w.price_before)),
    col("price_after_1m", Get::Dec(|w| w.price_after_1m)),
    col("price_after_5m", Get::Dec(|w| w.price_after_5m)),
    col("impact_1m", Get::Dec(|w| w.impact_1m)),
    col("impact_5m", Get::Dec(|w| w.impact_5m)),
];

static WHALE_COLUMNS: [Column; WHALE_FIELD_COUNT] = columns_of(&WHALE_FIELDS);

const TAPE_FIELD_COUNT: usize = 8;

/// The `raw_ws` table: the feed's raw tape, every record in the order the feed processed it.
static TAPE_FIELDS: [FieldSpec<TapeRecord>; TAPE_FIELD_COUNT] = [
    col("run", Get::I64Req(|r| r.run)),
    col("shard", Get::I32Req(|r| r.shard)),
    col("seq", Get::U64Req(|r| r.seq)),
    col("received_at", Get::Ts(|r| r.received_at)),
    col("kind", Get::Str(|r| r.kind.as_str())),
    col("part", Get::I32Req(|r| r.part)),
    col("parts", Get::I32Req(|r| r.parts)),
    col("text", Get::Str(|r| &r.text)),
];

static TAPE_COLUMNS: [Column; TAPE_FIELD_COUNT] = columns_of(&TAPE_FIELDS);

const SIGNAL_FIELD_COUNT: usize = 14;

/// The `signals` table: every signal of an executor step, ordered or rejected.
static SIGNAL_FIELDS: [FieldSpec<SignalRow>; SIGNAL_FIELD_COUNT] = [
    col("signal_ts", Get::Ts(|r| r.signal_ts)),
    col("strategy", Get::Str(|r| &r.strategy)),
    col("condition_id", Get::Str(|r| &r.condition_id)),
    col("token_id", Get::Str(|r| &r.token_id)),
    col("outcome", Get::Str(|r| &r.outcome)),
    col("reason", Get::Str(|r| &r.reason)),
    col("edge", Get::Dec(|r| Some(r.edge))),
    col("confidence", Get::F64(|r| Some(r.confidence))),
    col("price", Get::Dec(|r| Some(r.price))),
    col("suggested_usd", Get::Dec(|r| Some(r.suggested_usd))),
    col("decision", Get::Str(|r| &r.decision)),
    col("order_id", Get::I64(|r| r.order_id)),
    col("order_usd", Get::Dec(|r| r.order_usd)),
    col("rejection", Get::OptStr(|r| r.rejection.as_deref())),
];

static SIGNAL_COLUMNS: [Column; SIGNAL_FIELD_COUNT] = columns_of(&SIGNAL_FIELDS);

const FILL_FIELD_COUNT: usize = 13;

/// The `fills` table: every fill of a paper order.
static FILL_FIELDS: [FieldSpec<FillRow>; FILL_FIELD_COUNT] = [
    col("fill_ts", Get::Ts(|r| r.fill_ts)),
    col("order_id", Get::I64Req(|r| r.order_id)),
    col("strategy", Get::Str(|r| &r.strategy)),
    col("condition_id", Get::Str(|r| &r.condition_id)),
    col("token_id", Get::Str(|r| &r.token_id)),
    col("outcome", Get::Str(|r| &r.outcome)),
    col("side", Get::Str(|r| &r.side)),
    col("liquidity", Get::Str(|r| &r.liquidity)),
    col("shares", Get::Dec(|r| Some(r.shares))),
    col("avg_price", Get::Dec(|r| Some(r.avg_price))),
    col("notional", Get::Dec(|r| Some(r.notional))),
    col("fee", Get::Dec(|r| Some(r.fee))),
    col("levels", Get::I32Signed(|r| r.levels)),
];

static FILL_COLUMNS: [Column; FILL_FIELD_COUNT] = columns_of(&FILL_FIELDS);

const POSITION_FIELD_COUNT: usize = 16;

/// The `positions` table: each position open at an executor step, and each it closed.
static POSITION_FIELDS: [FieldSpec<PositionRow>; POSITION_FIELD_COUNT] = [
    col("as_of", Get::Ts(|r| r.as_of)),
    col("strategy", Get::Str(|r| &r.strategy)),
    col("condition_id", Get::Str(|r| &r.condition_id)),
    col("token_id", Get::Str(|r| &r.token_id)),
    col("outcome", Get::Str(|r| &r.outcome)),
    col("status", Get::Str(|r| &r.status)),
    col("shares", Get::Dec(|r| Some(r.shares))),
    col("cost", Get::Dec(|r| Some(r.cost))),
    col("entry_price", Get::Dec(|r| r.entry_price)),
    col("mark", Get::Dec(|r| r.mark)),
    col("unrealised_pnl", Get::Dec(|r| r.unrealised_pnl)),
    col("proceeds", Get::Dec(|r| r.proceeds)),
    col("realised_pnl", Get::Dec(|r| r.realised_pnl)),
    col("opened_at", Get::Ts(|r| r.opened_at)),
    col("closed_at", Get::OptTs(|r| r.closed_at)),
    col("close_reason", Get::OptStr(|r| r.close_reason.as_deref())),
];

static POSITION_COLUMNS: [Column; POSITION_FIELD_COUNT] = columns_of(&POSITION_FIELDS);

static DT: [Column; 1] = [Column {
    name: "dt",
    athena_type: "string",
}];

static TIER_DT: [Column; 2] = [
    Column {
        name: "tier",
        athena_type: "smallint",
    },
    Column {
        name: "dt",
        athena_type: "string",
    },
];

/// Every column of a `snapshots` file, in file order (the partition columns are not in it).
pub fn snapshot_columns() -> &'static [Column] {
    &SNAPSHOT_COLUMNS
}

/// Every column of an `orderbooks` file, in file order.
pub fn orderbook_columns() -> &'static [Column] {
    &ORDERBOOK_COLUMNS
}

/// Every column of a `markets` file, in file order (`dt` is the partition, not in it).
pub fn market_columns() -> &'static [Column] {
    &MARKET_COLUMNS
}

/// Every column of a `resolutions` file, in file order (`dt` is the partition, not in it).
pub fn resolution_columns() -> &'static [Column] {
    &RESOLUTION_COLUMNS
}

/// Every column of a `tier_transitions` file, in file order (`dt` is the partition).
pub fn transition_columns() -> &'static [Column] {
    &TRANSITION_COLUMNS
}

/// Every column of a `trades` file, in file order (`dt` is the partition, not in it).
pub fn trade_columns() -> &'static [Column] {
    &TRADE_COLUMNS
}

/// Every column of a `whale_events` file, in file order (`dt` is the partition, not in it).
pub fn whale_event_columns() -> &'static [Column] {
    &WHALE_COLUMNS
}

/// Every column of a `raw_ws` file, in file order (`dt` is the partition, not in it).
pub fn tape_columns() -> &'static [Column] {
    &TAPE_COLUMNS
}

/// Every column of a `signals` file, in file order (`dt` is the partition, not in it).
pub fn signal_columns() -> &'static [Column] {
    &SIGNAL_COLUMNS
}

/// Every column of a `fills` file, in file order (`dt` is the partition, not in it).
pub fn fill_columns() -> &'static [Column] {
    &FILL_COLUMNS
}

/// Every column of a `positions` file, in file order (`dt` is the partition, not in it).
pub fn position_columns() -> &'static [Column] {
    &POSITION_COLUMNS
}

/// The label columns `polytape export` and the Athena training-set query append to every
/// `snapshots` column and `tier`: whether the row's token (the first outcome's) won (1/0; NULL
/// for INVALID or a payout with no single winner), the winning outcome, when the market
/// resolved, and hours from the row to then.
pub const LABEL_COLUMNS: [Column; 5] = [
    Column {
        name: "tier",
        athena_type: "smallint",
    },
    Column {
        name: "first_outcome_won",
        athena_type: "int",
    },
    Column {
        name: "winning_outcome",
        athena_type: "string",
    },
    Column {
        name: "resolved_at",
        athena_type: "timestamp",
    },
    Column {
        name: "hours_to_resolution",
        athena_type: "double",
    },
];

/// Every column of the training set, in order: [`snapshot_columns`], then [`LABEL_COLUMNS`]
/// (`tier` first: the partition of the snapshot files, a column here).
pub fn training_columns() -> Vec<Column> {
    snapshot_columns()
        .iter()
        .chain(LABEL_COLUMNS.iter())
        .copied()
        .collect()
}

/// The Hive partition columns of `table`, in key order: `tier`, `dt` for `snapshots` and
/// `orderbooks`; `dt` for `markets`, `resolutions`, `tier_transitions`, `trades`,
/// `whale_events`, `raw_ws`, `signals`, `fills` and `positions`; none for a table this crate
/// does not encode.
pub fn partition_columns(table: &str) -> &'static [Column] {
    use crate::keys::*;
    match table {
        SNAPSHOTS | ORDERBOOKS => &TIER_DT,
        MARKETS | RESOLUTIONS | TIER_TRANSITIONS | TRADES | WHALE_EVENTS | RAW_WS | SIGNALS
        | FILLS | POSITIONS => &DT,
        _ => &[],
    }
}

/// The Arrow schema of a `snapshots` file.
pub fn snapshots_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&SNAPSHOT_FIELDS))))
}

/// The Arrow schema of an `orderbooks` file.
pub fn orderbooks_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&ORDERBOOK_FIELDS))))
}

/// The Arrow schema of a `markets` file.
pub fn markets_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&MARKET_FIELDS))))
}

/// The Arrow schema of a `resolutions` file.
pub fn resolutions_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&RESOLUTION_FIELDS))))
}

/// The Arrow schema of a `tier_transitions` file.
pub fn transitions_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&TRANSITION_FIELDS))))
}

/// The Arrow schema of a `trades` file.
pub fn trades_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&TRADE_FIELDS))))
}

/// The Arrow schema of a `whale_events` file.
pub fn whale_events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&WHALE_FIELDS))))
}

/// The Arrow schema of a `raw_ws` file.
pub fn tape_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&TAPE_FIELDS))))
}

/// The Arrow schema of a `signals` file.
pub fn signals_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&SIGNAL_FIELDS))))
}

/// The Arrow schema of a `fills` file.
pub fn fills_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&FILL_FIELDS))))
}

/// The Arrow schema of a `positions` file.
pub fn positions_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| Arc::new(schema_of(&POSITION_FIELDS))))
}

/// One `signals` file holding `rows` in the order given: the signals of one executor step,
/// under [`crate::keys::paper`]. A money value over 18 digits is stored NULL and counted in
/// [`Encoded::nulled`] (and then fails [`decode_signals`], which requires it).
pub fn encode_signals(rows: &[SignalRow]) -> Result<Encoded> {
    encode(&SIGNAL_FIELDS, signals_schema(), rows)
}

/// One `fills` file holding `rows` in the order given (the fills of one executor step).
pub fn encode_fills(rows: &[FillRow]) -> Result<Encoded> {
    encode(&FILL_FIELDS, fills_schema(), rows)
}

/// One `positions` file holding `rows` in the order given (the positions of one executor step).
pub fn encode_positions(rows: &[PositionRow]) -> Result<Encoded> {
    encode(&POSITION_FIELDS, positions_schema(), rows)
}

/// The rows of a `signals` file, in file order, as [`encode_signals`] wrote them. A file that
/// is not Parquet, lacks a column, has one of another type, or a NULL where the row requires a
/// value is an error naming it, never a panic.
pub fn decode_signals(bytes: &[u8]) -> Result<Vec<SignalRow>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        let rows = Rows::new(crate::keys::SIGNALS, &SIGNAL_FIELDS, &batch)?;
        let string = |name| rows.col::<StringArray>(name);
        let decimal = |name| rows.col::<Decimal64Array>(name);
        let signal_ts = rows.col::<TimestampMillisecondArray>("signal_ts")?;
        let (strategy, condition_id, token_id, outcome, reason, decision, rejection) = (
            string("strategy")?,
            string("condition_id")?,
            string("token_id")?,
            string("outcome")?,
            string("reason")?,
            string("decision")?,
            string("rejection")?,
        );
        let (edge, price, suggested_usd, order_usd) = (
            decimal("edge")?,
            decimal("price")?,
            decimal("suggested_usd")?,
            decimal("order_usd")?,
        );
        let confidence = rows.col::<Float64Array>("confidence")?;
        let order_id = rows.col::<Int64Array>("order_id")?;
        out.reserve(rows.len());
        for i in 0..rows.len() {
            out.push(SignalRow {
                signal_ts: signal_ts.req(i)?,
                strategy: strategy.req(i)?.to_owned(),
                condition_id: condition_id.req(i)?.to_owned(),
                token_id: token_id.req(i)?.to_owned(),
                outcome: outcome.req(i)?.to_owned(),
                reason: reason.req(i)?.to_owned(),
                edge: edge.req(i)?,
                confidence: confidence.req(i)?,
                price: price.req(i)?,
                suggested_usd: suggested_usd.req(i)?,
                decision: decision.req(i)?.to_owned(),
                order_id: order_id.opt(i)?,
                order_usd: order_usd.opt(i)?,
                rejection: rejection.opt(i)?.map(str::to_owned),
            });
        }
    }
    Ok(out)
}

/// What a `snapshots` file gives the Latest values: each row's market and headline values
/// (`tick_ts` is the row's `snapshot_ts`; the counts are left 0), in file order, the numbers
/// without the column's trailing zeros (`0.41`, not `0.410000`, as the JSON of a row shows
/// them). Only those columns must be there (a file written before a column was added is
/// read). Errors as [`decode_signals`]'s.
pub fn decode_latest_entries(bytes: &[u8]) -> Result<Vec<polytape_core::ops::LatestEntry>> {
    const READ: [&str; 7] = [
        "snapshot_ts",
        "condition_id",
        "price",
        "best_bid",
        "best_ask",
        "spread",
        "volume_24h",
    ];
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        let rows = Rows::only(
            crate::keys::SNAPSHOTS,
            &SNAPSHOT_FIELDS,
            Some(&READ),
            &batch,
        )?;
        let decimal = |name| rows.col::<Decimal64Array>(name);
        let snapshot_ts = rows.col::<TimestampMillisecondArray>("snapshot_ts")?;
        let condition_id = rows.col::<StringArray>("condition_id")?;
        let (price, best_bid, best_ask, spread, volume_24h) = (
            decimal("price")?,
            decimal("best_bid")?,
            decimal("best_ask")?,
            decimal("spread")?,
            decimal("volume_24h")?,
        );
        out.reserve(rows.len());
        let num =
            |c: &columns::Col<'_, Decimal64Array>, i| -> Result<Option<rust_decimal::Decimal>> {
                Ok(c.opt(i)?.map(|d| d.normalize()))
            };
        for i in 0..rows.len() {
            out.push(polytape_core::ops::LatestEntry {
                condition_id: condition_id.req(i)?.to_owned(),
                price: num(&price, i)?,
                best_bid: num(&best_bid, i)?,
                best_ask: num(&best_ask, i)?,
                spread: num(&spread, i)?,
                volume_24h: num(&volume_24h, i)?,
                tick_ts: snapshot_ts.req(i)?,
                snapshot_count: 0,
                counted: 0,
            });
        }
    }
    Ok(out)
}

/// The rows of a `fills` file, in file order; errors as [`decode_signals`]'s.
pub fn decode_fills(bytes: &[u8]) -> Result<Vec<FillRow>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        let rows = Rows::new(crate::keys::FILLS, &FILL_FIELDS, &batch)?;
        let string = |name| rows.col::<StringArray>(name);
        let decimal = |name| rows.col::<Decimal64Array>(name);
        let fill_ts = rows.col::<TimestampMillisecondArray>("fill_ts")?;
        let order_id = rows.col::<Int64Array>("order_id")?;
        let (strategy, condition_id, token_id, outcome, side, liquidity) = (
            string("strategy")?,
            string("condition_id")?,
            string("token_id")?,
            string("outcome")?,
            string("side")?,
            string("liquidity")?,
        );
        let (shares, avg_price, notional, fee) = (
            decimal("shares")?,
            decimal("avg_price")?,
            decimal("notional")?,
            decimal("fee")?,
        );
        let levels = rows.col::<Int32Array>("levels")?;
        out.reserve(rows.len());
        for i in 0..rows.len() {
            out.push(FillRow {
                fill_ts: fill_ts.req(i)?,
                order_id: order_id.req(i)?,
                strategy: strategy.req(i)?.to_owned(),
                condition_id: condition_id.req(i)?.to_owned(),
                token_id: token_id.req(i)?.to_owned(),
                outcome: outcome.req(i)?.to_owned(),
                side: side.req(i)?.to_owned(),
                liquidity: liquidity.req(i)?.to_owned(),
                shares: shares.req(i)?,
                avg_price: avg_price.req(i)?,
                notional: notional.req(i)?,
                fee: fee.req(i)?,
                levels: levels.req(i)?,
            });
        }
    }
    Ok(out)
}

/// The rows of a `positions` file, in file order; errors as [`decode_signals`]'s.
pub fn decode_positions(bytes: &[u8]) -> Result<Vec<PositionRow>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        let rows = Rows::new(crate::keys::POSITIONS, &POSITION_FIELDS, &batch)?;
        let string = |name| rows.col::<StringArray>(name);
        let decimal = |name| rows.col::<Decimal64Array>(name);
        let time = |name| rows.col::<TimestampMillisecondArray>(name);
        let (as_of, opened_at, closed_at) =
            (time("as_of")?, time("opened_at")?, time("closed_at")?);
        let (strategy, condition_id, token_id, outcome, status, close_reason) = (
            string("strategy")?,
            string("condition_id")?,
            string("token_id")?,
            string("outcome")?,
            string("status")?,
            string("close_reason")?,
        );
        let (shares, cost, entry_price, mark) = (
            decimal("shares")?,
            decimal("cost")?,
            decimal("entry_price")?,
            decimal("mark")?,
        );
        let (unrealised_pnl, proceeds, realised_pnl) = (
            decimal("unrealised_pnl")?,
            decimal("proceeds")?,
            decimal("realised_pnl")?,
        );
        out.reserve(rows.len());
        for i in 0..rows.len() {
            out.push(PositionRow {
                as_of: as_of.req(i)?,
                strategy: strategy.req(i)?.to_owned(),
                condition_id: condition_id.req(i)?.to_owned(),
                token_id: token_id.req(i)?.to_owned(),
                outcome: outcome.req(i)?.to_owned(),
                status: status.req(i)?.to_owned(),
                shares: shares.req(i)?,
                cost: cost.req(i)?,
                entry_price: entry_price.opt(i)?,
                mark: mark.opt(i)?,
                unrealised_pnl: unrealised_pnl.opt(i)?,
                proceeds: proceeds.opt(i)?,
                realised_pnl: realised_pnl.opt(i)?,
                opened_at: opened_at.req(i)?,
                closed_at: closed_at.opt(i)?,
                close_reason: close_reason.opt(i)?.map(str::to_owned),
            });
        }
    }
    Ok(out)
}

/// One `trades` file holding `rows` in the order given (the trades of the consumer's messages
/// of one run and hour, under [`crate::keys::live_set`]). Times are stored to the millisecond.
pub fn encode_trades(rows: &[StoredTrade]) -> Result<Encoded> {
    encode(&TRADE_FIELDS, trades_schema(), rows)
}

/// One `whale_events` file holding `rows` in the order given.
pub fn encode_whale_events(rows: &[WhaleEvent]) -> Result<Encoded> {
    encode(&WHALE_FIELDS, whale_events_schema(), rows)
}

/// One `raw_ws` file holding `rows` in the order given. A `seq` over `i64::MAX` fails the
/// encode (it cannot be stored, and the tape without it is not a tape).
pub fn encode_tape(rows: &[TapeRecord]) -> Result<Encoded> {
    encode(&TAPE_FIELDS, tape_schema(), rows)
}

/// The records of a `raw_ws` file, in file order. A file that is not Parquet, lacks a column,
/// has one of another type, or has a NULL, an unknown `kind` or a negative `shard`/`seq` in any
/// row is an error naming it ([`crate::StoreError::Encode`] or `Parquet`), never a panic.
pub fn decode_tape(bytes: &[u8]) -> Result<Vec<TapeRecord>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        let rows = Rows::new(crate::keys::RAW_WS, &TAPE_FIELDS, &batch)?;
        let run = rows.col::<Int64Array>("run")?;
        let shard = rows.col::<Int32Array>("shard")?;
        let seq = rows.col::<Int64Array>("seq")?;
        let received_at = rows.col::<TimestampMillisecondArray>("received_at")?;
        let kind = rows.col::<StringArray>("kind")?;
        let part = rows.col::<Int32Array>("part")?;
        let parts = rows.col::<Int32Array>("parts")?;
        let text = rows.col::<StringArray>("text")?;
        out.reserve(rows.len());
        for i in 0..rows.len() {
            out.push(TapeRecord {
                run: run.req(i)?,
                shard: shard.req_as(i)?,
                seq: seq.req_as(i)?,
                received_at: received_at.req(i)?,
                kind: kind.one_of(
                    i,
                    &[TapeKind::Frame, TapeKind::Backfill, TapeKind::Control],
                    TapeKind::as_str,
                )?,
                part: part.req_as(i)?,
                parts: parts.req_as(i)?,
                text: text.req(i)?.to_owned(),
            });
        }
    }
    Ok(out)
}

/// The trades of a `trades` file, in file order, every column back as [`encode_trades`] wrote
/// it. Errors as [`decode_tape`]'s: a missing or retyped column, a NULL in a column the trade
/// requires (`price`, `stale`, …), an unknown `side`/`source`/`size_source`, a number out of
/// its type's range.
pub fn decode_trades(bytes: &[u8]) -> Result<Vec<StoredTrade>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        let rows = Rows::new(crate::keys::TRADES, &TRADE_FIELDS, &batch)?;
        let string = |name| rows.col::<StringArray>(name);
        let decimal = |name| rows.col::<Decimal64Array>(name);
        let time = |name| rows.col::<TimestampMillisecondArray>(name);
        let flag = |name| rows.col::<BooleanArray>(name);
        let (trade_key, condition_id, token_id) = (
            string("trade_key")?,
            string("condition_id")?,
            string("token_id")?,
        );
        let outcome_index = rows.col::<Int8Array>("outcome_index")?;
        let (side, size_source, source) =
            (string("side")?, string("size_source")?, string("source")?);
        let (price, size, fee_rate_bps) = (
            decimal("price")?,
            decimal("size")?,
            decimal("fee_rate_bps")?,
        );
        let transaction_hash = string("transaction_hash")?;
        let (trade_ts, received_at) = (time("trade_ts")?, time("received_at")?);
        let (best_bid, best_ask, mid, notional) = (
            decimal("best_bid")?,
            decimal("best_ask")?,
            decimal("mid")?,
            decimal("notional")?,
        );
        let whale_tier = rows.col::<Int8Array>("whale_tier")?;
        let (stale, divergent) = (flag("stale")?, flag("divergent")?);
        let shard = rows.col::<Int32Array>("shard")?;
        let seq = rows.col::<Int64Array>("seq")?;
        out.reserve(rows.len());
        for i in 0..rows.len() {
            out.push(StoredTrade {
                trade_key: trade_key.req(i)?.to_owned(),
                condition_id: condition_id.req(i)?.to_owned(),
                token_id: token_id.req(i)?.to_owned(),
                outcome_index: outcome_index.opt_as(i)?,
                side: side.one_of(i, &[Side::Buy, Side::Sell], Side::as_str)?,
                price: price.req(i)?,
                size: size.opt(i)?,
                size_source: size_source.one_of(
                    i,
                    &[SizeSource::Feed, SizeSource::DataApi, SizeSource::Missing],
                    SizeSource::as_str,
                )?,
                fee_rate_bps: fee_rate_bps.opt(i)?,
                transaction_hash: transaction_hash.opt(i)?.map(str::to_owned),
                trade_ts: trade_ts.req(i)?,
                received_at: received_at.req(i)?,
                source: source.one_of(i, &[Source::Ws, Source::Backfill], Source::as_str)?,
                best_bid: best_bid.opt(i)?,
                best_ask: best_ask.opt(i)?,
                mid: mid.opt(i)?,
                notional: notional.opt(i)?,
                whale_tier: whale_tier.opt_as(i)?,
                stale: stale.req(i)?,
                divergent: divergent.req(i)?,
                shard: shard.opt_as(i)?,
                seq: seq.opt_as(i)?,
            });
        }
    }
    Ok(out)
}

/// Every record batch of the Parquet file `bytes` (held in memory: the files read back are
/// one consumer batch's, or one file compaction merges).
pub(crate) fn read_batches(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for_each_batch(bytes, |b| {
        batches.push(b);
        Ok(())
    })?;
    Ok(batches)
}

/// Hands each record batch of the Parquet file `bytes` to `f` as it is decoded, so only one
/// batch's values are held at a time (compaction reads a merged hour this way).
pub(crate) fn for_each_batch(
    bytes: &[u8],
    mut f: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let len = bytes.len() as u64;
    let meta = read_footer(bytes)?;
    // A `bytes::Bytes`, which the decoder's signature names.
    let whole = bytes.to_vec().into();
    let mut decoder = ParquetPushDecoderBuilder::try_new_decoder(Arc::new(meta))?.build()?;
    decoder.push_range(0..len, whole)?;
    loop {
        match decoder.try_decode()? {
            DecodeResult::Data(batch) => f(batch)?,
            DecodeResult::Finished => return Ok(()),
            DecodeResult::NeedsData(ranges) => {
                return Err(crate::StoreError::Encode(format!(
                    "parquet: the file ends before {ranges:?}"
                )))
            }
        }
    }
}

/// The Arrow schema of the files of `table` (one of [`crate::keys::COMPACTED_TABLES`] or
/// another table this crate encodes), for compaction to read sources and write merged files
/// with; `None` for a table it does not know.
pub fn table_schema(table: &str) -> Option<SchemaRef> {
    use crate::keys::*;
    Some(match table {
        SNAPSHOTS => snapshots_schema(),
        ORDERBOOKS => orderbooks_schema(),
        TRADES => trades_schema(),
        WHALE_EVENTS => whale_events_schema(),
        RAW_WS => tape_schema(),
        MARKETS => markets_schema(),
        RESOLUTIONS => resolutions_schema(),
        TIER_TRANSITIONS => transitions_schema(),
        SIGNALS => signals_schema(),
        FILLS => fills_schema(),
        POSITIONS => positions_schema(),
        _ => return None,
    })
}

/// The writer settings of a merged (compacted) file of `table`: its encoder's (Snappy;
/// dictionaries off where the column table says so), except that `condition_id` and `token_id`
/// get a dictionary — distinct within one tick's file, they repeat on every tick of an hour —
/// and row groups of at most `group_rows` rows.
pub fn table_writer_properties(table: &str, group_rows: usize) -> Option<WriterProperties> {
    use crate::keys::*;
    let plain: Vec<&'static str> = match table {
        SNAPSHOTS => plain_columns(&SNAPSHOT_FIELDS),
        ORDERBOOKS => plain_columns(&ORDERBOOK_FIELDS),
        TRADES => plain_columns(&TRADE_FIELDS),
        WHALE_EVENTS => plain_columns(&WHALE_FIELDS),
        RAW_WS => plain_columns(&TAPE_FIELDS),
        MARKETS => plain_columns(&MARKET_FIELDS),
        RESOLUTIONS => plain_columns(&RESOLUTION_FIELDS),
        TIER_TRANSITIONS => plain_columns(&TRANSITION_FIELDS),
        SIGNALS => plain_columns(&SIGNAL_FIELDS),
        FILLS => plain_columns(&FILL_FIELDS),
        POSITIONS => plain_columns(&POSITION_FIELDS),
        _ => return None,
    };
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(group_rows.max(1)));
    for name in plain {
        if !matches!(name, "condition_id" | "token_id") {
            props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
        }
    }
    Some(props.build())
}

/// The columns of a table written without a dictionary.
fn plain_columns<R>(fields: &[FieldSpec<R>]) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|f| !f.dictionary())
        .map(|f| f.col.name)
        .collect()
}

/// The footer (metadata) of the Parquet file `bytes`.
pub(crate) fn read_footer(bytes: &[u8]) -> Result<::parquet::file::metadata::ParquetMetaData> {
    let len = bytes.len() as u64;
    let mut meta = ParquetMetaDataPushDecoder::try_new(len)?;
    meta.push_range(0..len, bytes.to_vec().into())?;
    match meta.try_decode()? {
        DecodeResult::Data(meta) => Ok(meta),
        _ => Err(crate::StoreError::Encode(
            "parquet: the footer is incomplete".into(),
        )),
    }
}

/// One `resolutions` file: the rows of resolved markets (one per file as the resolutions duty
/// writes them, under [`crate::keys::resolution`]).
pub fn encode_resolutions(rows: &[Resolution]) -> Result<Encoded> {
    encode(&RESOLUTION_FIELDS, resolutions_schema(), rows)
}

/// One `tier_transitions` file holding `rows` in the order given.
pub fn encode_transitions(rows: &[TierTransition]) -> Result<Encoded> {
    encode(&TRANSITION_FIELDS, transitions_schema(), rows)
}

/// One `markets` file holding `markets` in the order given: the day's dimension table that
/// Athena joins to `snapshots` on `condition_id`.
pub fn encode_markets(markets: &[Market]) -> Result<Encoded> {
    encode(&MARKET_FIELDS, markets_schema(), markets)
}

/// One `snapshots` file holding `rows` (their `tier` goes in the key, not the file).
pub fn encode_snapshots(rows: &[Snapshot]) -> Result<Encoded> {
    encode(&SNAPSHOT_FIELDS, snapshots_schema(), rows)
}

/// One `orderbooks` file holding `rows`, levels in the order given (best first).
pub fn encode_orderbooks(rows: &[OrderbookRow]) -> Result<Encoded> {
    encode(&ORDERBOOK_FIELDS, orderbooks_schema(), rows)
}

/// The writer settings of the encoders: Snappy, dictionaries off where the column table says
/// so, row groups of at most `group_rows` rows (`None`: no limit; the caller cuts them).
fn encoder_properties<R>(fields: &[FieldSpec<R>], group_rows: Option<usize>) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(group_rows);
    for f in fields.iter().filter(|f| !f.dictionary()) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(f.col.name), false);
    }
    props.build()
}

fn encode<R>(fields: &[FieldSpec<R>], schema: SchemaRef, rows: &[R]) -> Result<Encoded> {
    let mut nulled = 0;
    let arrays = arrays_of(fields, rows, &mut nulled)?;
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    // One row group per file: a tick's file is small and read whole.
    let props = encoder_properties(fields, Some(rows.len().max(1)));
    // Roughly the encoded size of a populated snapshot row, to avoid regrowing the buffer.
    let mut bytes = Vec::with_capacity(4096 + rows.len() * 256);
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Encoded {
        bytes,
        rows: rows.len(),
        nulled,
    })
}
