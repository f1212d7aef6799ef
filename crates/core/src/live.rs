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
    /// A record too large for one queue message travels and is stored in parts: this is part
    /// `part` (from 0) of `parts`, its `text` a piece of the whole; a whole record is 0 of 1.
    #[serde(default)]
    pub part: u32,
    #[serde(default = "one")]
    pub parts: u32,
    pub text: String,
}

fn one() -> u32 {
    1
}

impl TapeRecord {
    /// This record as parts whose text is at most `max_bytes` long (cut on character
    /// boundaries); itself when it fits.
    pub fn split(self, max_bytes: usize) -> Vec<TapeRecord> {
        if self.text.len() <= max_bytes {
            return vec![self];
        }
        let mut pieces = Vec::new();
        let mut rest = self.text.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(max_bytes.max(4));
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            pieces.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        let parts = pieces.len() as u32;
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| TapeRecord {
                part: i as u32,
                parts,
                text: (*piece).to_string(),
                kind: self.kind,
                ..self.clone()
            })
            .collect()
    }

    /// The whole records of `parts` (records and parts of records, in any order): parts joined
    /// in order, sorted by `(run, seq)`, a record stored twice kept once. Records with a part
    /// missing are returned apart, by `(run, seq)`.
    pub fn join(mut parts: Vec<TapeRecord>) -> (Vec<TapeRecord>, Vec<(i64, u64)>) {
        parts.sort_by_key(|r| (r.run, r.seq, r.part));
        parts.dedup_by_key(|r| (r.run, r.seq, r.part));
        let mut whole = Vec::new();
        let mut incomplete = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let (run, seq, n) = (parts[i].run, parts[i].seq, parts[i].parts.max(1));
            let j = parts[i..]
                .iter()
                .position(|r| (r.run, r.seq) != (run, seq))
                .map_or(parts.len(), |k| i + k);
            let group = &parts[i..j];
            let complete = group.len() as u32 == n
                && group.iter().enumerate().all(|(k, r)| r.part == k as u32);
            if complete {
                let mut rec = group[0].clone();
                rec.text = group.iter().map(|r| r.text.as_str()).collect();
                rec.part = 0;
                rec.parts = 1;
                whole.push(rec);
            } else {
                incomplete.push((run, seq));
            }
            i = j;
        }
        (whole, incomplete)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, text: &str) -> TapeRecord {
        TapeRecord {
            run: 1,
            shard: 2,
            seq,
            received_at: "2026-11-20T12:00:00Z".parse().unwrap(),
            kind: TapeKind::Frame,
            part: 0,
            parts: 1,
            text: text.to_string(),
        }
    }

    #[test]
    fn a_long_record_splits_on_character_boundaries_and_joins_back() {
        let text = "é".repeat(10) + "abc"; // 23 bytes, 2-byte characters
        let parts = rec(7, &text).split(5);
        assert!(parts
            .iter()
            .all(|p| p.text.len() <= 5 && p.parts == parts.len() as u32));
        let mut shuffled = parts.clone();
        shuffled.reverse();
        shuffled.push(parts[1].clone()); // stored twice
        shuffled.push(rec(3, "short"));
        let (whole, incomplete) = TapeRecord::join(shuffled);
        assert_eq!(whole, vec![rec(3, "short"), rec(7, &text)]);
        assert!(incomplete.is_empty());
        let (whole, incomplete) = TapeRecord::join(parts[1..].to_vec());
        assert!(whole.is_empty());
        assert_eq!(incomplete, vec![(1, 7)]);
        assert_eq!(rec(1, "fits").split(5), vec![rec(1, "fits")]);
    }
}
