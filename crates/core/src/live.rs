//! Records of the live feed: trades as polytape stores them (the `trades` table) and whale
//! events (`whale_events`). The feed (`polytape-feed`) makes them; the store encodes them.

use crate::{Side, Ts};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a trade came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Ws,
    Backfill,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ws => "ws",
            Source::Backfill => "backfill",
        }
    }
}

/// Where a trade's size came from (G3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeSource {
    /// Sent with the trade.
    Feed,
    /// Missing on the WebSocket, found on the Data API by transaction hash.
    DataApi,
    /// Missing, and not found within the wait.
    Missing,
}

impl SizeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SizeSource::Feed => "feed",
            SizeSource::DataApi => "data_api",
            SizeSource::Missing => "missing",
        }
    }
}

/// One stored trade (the `trades` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTrade {
    pub trade_key: String,
    pub condition_id: String,
    pub token_id: String,
    /// 0 for the market's first token, 1 for the second; `None` for a token not registered.
    pub outcome_index: Option<u8>,
    pub side: Side,
    pub price: Decimal,
    pub size: Option<Decimal>,
    pub size_source: SizeSource,
    pub fee_rate_bps: Option<Decimal>,
    pub transaction_hash: Option<String>,
    /// Match time (WebSocket, ms) or block time (Data API, s).
    pub trade_ts: Ts,
    pub received_at: Ts,
    pub source: Source,
    /// The token's top of book just before the trade, from the feed (none for backfill).
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    pub mid: Option<Decimal>,
    /// price × size, USDC.
    pub notional: Option<Decimal>,
    pub whale_tier: Option<u8>,
    /// G1.
    pub stale: bool,
    /// G5.
    pub divergent: bool,
    /// The frame that brought it (WebSocket trades).
    pub shard: Option<u32>,
    pub seq: Option<u64>,
}

/// A whale trade with the token's mid around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhaleEvent {
    pub trade_key: String,
    pub condition_id: String,
    pub token_id: String,
    pub side: Side,
    pub price: Decimal,
    pub size: Decimal,
    pub notional: Decimal,
    pub whale_tier: u8,
    pub trade_ts: Ts,
    pub price_before: Option<Decimal>,
    pub price_after_1m: Option<Decimal>,
    pub price_after_5m: Option<Decimal>,
    /// price_after − price_before.
    pub impact_1m: Option<Decimal>,
    pub impact_5m: Option<Decimal>,
}

/// What a tape record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TapeKind {
    /// A WebSocket text frame, exactly as received.
    Frame,
    /// A Data API `/trades` response body, exactly as received.
    Backfill,
    /// A change of the feed's own state (tokens followed, coverage, time), as JSON.
    Control,
}

impl TapeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TapeKind::Frame => "frame",
            TapeKind::Backfill => "backfill",
            TapeKind::Control => "control",
        }
    }
}

/// One record of the raw tape (the `raw_ws` table): everything the feed was given, in the order
/// it was given, so that running the tape through the feed again rebuilds its trades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeRecord {
    /// The feed process's run (its start, epoch ms): sequences restart with each run.
    pub run: i64,
    /// The shard that received a frame; 0 for backfill and control records.
    pub shard: u32,
    /// The record's place in its run, over every shard (the order the feed saw them in).
    pub seq: u64,
    pub received_at: Ts,
    pub kind: TapeKind,
    pub text: String,
}

/// The live feed's last published flow: every market it covered the whole hour before `at`,
/// with its 17 flow and whale values. A snapshot tick joins the newest one; a market missing
/// from it (not covered) reads NULL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowObject {
    pub at: Ts,
    pub markets: std::collections::BTreeMap<String, crate::TradeFlow>,
}

impl FlowObject {
    /// How old a published flow may be for a tick to use it: the feed publishes every 15 s,
    /// so an older object means the feed is down and its values would be stale.
    pub const MAX_AGE_S: i64 = 60;

    /// The flow of `condition_id` for a tick at `at`, if this object is fresh enough and
    /// covers the market.
    pub fn for_tick(&self, condition_id: &str, at: Ts) -> Option<&crate::TradeFlow> {
        let age = (at - self.at).num_seconds();
        if !(-Self::MAX_AGE_S..=Self::MAX_AGE_S).contains(&age) {
            return None;
        }
        self.markets.get(condition_id)
    }
}
