//! CLOB market WebSocket: decoding of frames (no connection code here).
//!
//! A text frame is a single event object, an array of them (the initial dump, mixed types), an
//! empty array (an ack) or the bare text `PONG` (trap 7). Every event carries `event_type`;
//! `timestamp` is epoch **milliseconds as a string** and prices/sizes are strings (trap 6).
//!
//! The hot path wants trades, not everything: [`split_frame`] classifies each event by its
//! `event_type` with a probe that skips every other field, keeps the event's raw JSON (for the
//! raw tape) and decodes nothing else; [`RawEvent::decode`] fully decodes one event on demand.
//! [`parse_frame`] does both for every event.
//!
//! Events are decoded with the crate's one tolerant mechanism ([`decode_record_str`]): a field
//! whose type drifted is read as absent and reported as a [`Drift`] while the event is kept;
//! an event whose essential fields are unusable is [`WsEvent::Invalid`]. Essential fields per
//! event: `book` its `asset_id` (as the REST book); `price_change` the lists of changes (and
//! each change its `asset_id`, `price`, `size`, `side`: a bad change is dropped on its own);
//! `last_trade_price` `asset_id`, `price`, `side`, `size` and `timestamp` (what makes it a
//! trade); `tick_size_change` `asset_id` and `new_tick_size`; `best_bid_ask` `asset_id`,
//! `best_bid` and `best_ask`; `market_resolved` `market` and `winning_asset_id`; `new_market`
//! none (it is informational).
//!
//! Semantics worth knowing when applying events: `price_change.size` is the level's new
//! absolute size (`"0"` removes it), not a delta (trap 10), and one `price_change` can carry
//! both tokens of a market (trap 11). Book levels keep their served order (best LAST).

use crate::clob::{book_from_raw, RawBook};
use crate::data::parse_side;
use crate::decode::{self as d, decode_record_str, parse_decimal, size_problem, Record, Text};
use crate::error::{Drift, FetchError, Rejected};
use crate::Ts;
use polytape_core::money::is_valid_price;
use polytape_core::{Book, Side, Trade};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// What kind of event a frame element is, from its `event_type` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Book,
    PriceChange,
    LastTradePrice,
    TickSizeChange,
    BestBidAsk,
    NewMarket,
    MarketResolved,
    Unknown,
}

impl EventKind {
    /// The kind named by an `event_type` value.
    pub fn of(event_type: &str) -> EventKind {
        match event_type {
            "book" => EventKind::Book,
            "price_change" => EventKind::PriceChange,
            "last_trade_price" => EventKind::LastTradePrice,
            "tick_size_change" => EventKind::TickSizeChange,
            "best_bid_ask" => EventKind::BestBidAsk,
            "new_market" => EventKind::NewMarket,
            "market_resolved" => EventKind::MarketResolved,
            _ => EventKind::Unknown,
        }
    }
}

/// One decoded market-channel event.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// Full book snapshot (on subscribe and after trades that change the book).
    Book(BookEvent),
    /// Level updates (v2 `price_changes[]`, legacy `changes[]` or legacy flat).
    PriceChange(PriceChange),
    /// A taker order's aggregate trade.
    LastTradePrice(LastTradePrice),
    /// The token's tick size changed: drop the local book and wait for a fresh `book`.
    TickSizeChange(TickSizeChange),
    /// `custom_feature_enabled`: best bid/ask changed.
    BestBidAsk(BestBidAsk),
    /// `custom_feature_enabled`: a market was created.
    NewMarket(NewMarket),
    /// `custom_feature_enabled`: a market resolved.
    MarketResolved(MarketResolved),
    /// An `event_type` this crate does not know (counted for liveness, kept on the raw tape).
    Unknown { event_type: String },
    /// A known `event_type` whose payload could not be used; the rest of the frame is kept.
    Invalid { event_type: String, reason: String },
}

/// A `book` event with what was dropped from it: levels (`"book level"`: price outside
/// [0, 1], negative or unstorable size, not a number) and scalar values (`"book value"`).
/// Levels of size 0 are left out silently; [`Book::problem`] says when the levels cannot be
/// trusted (a level dropped, a side not a list, a crossed book), as for REST books.
#[derive(Debug, Clone, PartialEq)]
pub struct BookEvent {
    pub book: Book,
    pub rejected: Vec<Rejected>,
}

/// A `price_change` event.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceChange {
    pub market: Option<String>,
    pub timestamp: Option<Ts>,
    /// Usable changes, in served order.
    pub changes: Vec<LevelChange>,
    /// Changes that were dropped, with the reason.
    pub rejected: Vec<Rejected>,
}

/// One level of one token set to a new absolute size (`size == 0` removes the level).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelChange {
    pub asset_id: String,
    pub price: Decimal,
    pub size: Decimal,
    /// `Buy` = a bid level, `Sell` = an ask level.
    pub side: Side,
    pub hash: Option<String>,
    /// v2 only, and not on every entry.
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
}

/// A `last_trade_price` event. There is no trade id: dedupe on (asset, time, price, size,
/// side, transaction hash).
#[derive(Debug, Clone, PartialEq)]
pub struct LastTradePrice {
    pub asset_id: String,
    pub market: Option<String>,
    pub price: Decimal,
    pub side: Option<Side>,
    pub size: Option<Decimal>,
    pub fee_rate_bps: Option<Decimal>,
    pub timestamp: Option<Ts>,
    /// Sent since 2026.
    pub transaction_hash: Option<String>,
}

impl LastTradePrice {
    /// The trade, when side, size and timestamp were all sent.
    pub fn to_trade(&self) -> Option<Trade> {
        Some(Trade {
            token_id: self.asset_id.clone(),
            ts: self.timestamp?,
            price: self.price,
            size: self.size?,
            side: self.side?,
        })
    }
}

/// A `tick_size_change` event (no side).
#[derive(Debug, Clone, PartialEq)]
pub struct TickSizeChange {
    pub asset_id: String,
    pub market: Option<String>,
    pub old_tick_size: Option<Decimal>,
    pub new_tick_size: Decimal,
    pub timestamp: Option<Ts>,
}

/// A `best_bid_ask` event.
#[derive(Debug, Clone, PartialEq)]
pub struct BestBidAsk {
    pub asset_id: String,
    pub market: Option<String>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    pub spread: Option<Decimal>,
    pub timestamp: Option<Ts>,
}

impl Record for NewMarket {
    const WHAT: &'static str = "ws new_market";
    const KEY: &'static [&'static str] = &["market", "condition_id", "id"];
    /// Informational: every field may be absent.
    const ESSENTIAL: &'static [&'static str] = &[];
}

/// A `new_market` event (arrays are real arrays here, not JSON strings).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NewMarket {
    #[serde(deserialize_with = "d::string_opt")]
    pub id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub question: Option<String>,
    /// Condition id.
    #[serde(deserialize_with = "d::string_opt")]
    pub market: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub condition_id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub slug: Option<String>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub assets_ids: Option<Vec<String>>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub outcomes: Option<Vec<String>>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub clob_token_ids: Option<Vec<String>>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub active: Option<bool>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub order_price_min_tick_size: Option<Decimal>,
    #[serde(deserialize_with = "d::string_opt")]
    pub group_item_title: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub sports_market_type: Option<String>,
    /// `""` when not a sports market.
    #[serde(deserialize_with = "d::ts_opt")]
    pub game_start_time: Option<Ts>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub tags: Option<Vec<String>>,
    #[serde(deserialize_with = "d::ts_ms_opt")]
    pub timestamp: Option<Ts>,
}

impl Record for MarketResolved {
    const WHAT: &'static str = "ws market_resolved";
    const KEY: &'static [&'static str] = &["market", "id"];
    /// Which market resolved, and to which token.
    const ESSENTIAL: &'static [&'static str] = &["market", "winning_asset_id"];
}

/// A `market_resolved` event.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MarketResolved {
    #[serde(deserialize_with = "d::string_opt")]
    pub id: Option<String>,
    /// Condition id.
    #[serde(deserialize_with = "d::string_opt")]
    pub market: Option<String>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub assets_ids: Option<Vec<String>>,
    #[serde(deserialize_with = "d::string_opt")]
    pub winning_asset_id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub winning_outcome: Option<String>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub tags: Option<Vec<String>>,
    #[serde(deserialize_with = "d::ts_ms_opt")]
    pub timestamp: Option<Ts>,
}

/// One element of a frame, classified but not decoded.
#[derive(Debug, Clone)]
pub struct RawEvent<'a> {
    pub kind: EventKind,
    /// The `event_type` as sent (`""` when absent).
    pub event_type: Cow<'a, str>,
    /// The event's JSON exactly as received.
    pub json: &'a RawValue,
}

impl RawEvent<'_> {
    /// Fully decodes this event. Never fails: an unusable payload of a known type is
    /// [`WsEvent::Invalid`] with the reason. The fields of a decoded event that were read as
    /// absent because their type drifted are appended to `drifts` (nothing is logged).
    pub fn decode(&self, drifts: &mut Vec<Drift>) -> WsEvent {
        let text = self.json.get();
        let mut found = Vec::new();
        let d = &mut found;
        let result = match self.kind {
            EventKind::Book => decode_book(text, d).map(WsEvent::Book),
            EventKind::PriceChange => decode_price_change(text, d).map(WsEvent::PriceChange),
            EventKind::LastTradePrice => decode_last_trade(text, d).map(WsEvent::LastTradePrice),
            EventKind::TickSizeChange => decode_tick_size(text, d).map(WsEvent::TickSizeChange),
            EventKind::BestBidAsk => decode_best_bid_ask(text, d).map(WsEvent::BestBidAsk),
            EventKind::NewMarket => record::<NewMarket>(text, d).map(WsEvent::NewMarket),
            EventKind::MarketResolved => {
                record::<MarketResolved>(text, d).map(WsEvent::MarketResolved)
            }
            EventKind::Unknown => Ok(WsEvent::Unknown {
                event_type: self.event_type.clone().into_owned(),
            }),
        };
        match result {
            Ok(event) => {
                drifts.append(&mut found);
                event
            }
            Err(reason) => WsEvent::Invalid {
                event_type: self.event_type.clone().into_owned(),
                reason,
            },
        }
    }
}

/// Every event of one frame, decoded, with the fields read as absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub events: Vec<WsEvent>,
    /// Fields of decoded events whose type drifted (nothing was logged).
    pub drifts: Vec<Drift>,
}

/// The "url" of errors about frames, which have none.
const WS: &str = "websocket";

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
}

/// Splits a frame into classified raw events without decoding them: `PONG`, blank text and
/// `[]` give none; a non-JSON frame is [`FetchError::Decode`].
pub fn split_frame(text: &str) -> Result<Vec<RawEvent<'_>>, FetchError> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("PONG") {
        return Ok(Vec::new());
    }
    let elements: Vec<&RawValue> = if t.starts_with('[') {
        serde_json::from_str(t).map_err(|e| FetchError::from_json(WS, &e))?
    } else {
        vec![serde_json::from_str(t).map_err(|e| FetchError::from_json(WS, &e))?]
    };
    let mut out = Vec::with_capacity(elements.len());
    for json in elements {
        // A non-object element (e.g. a bare string in an array) has no event_type.
        let event_type = serde_json::from_str::<Probe<'_>>(json.get())
            .ok()
            .and_then(|p| p.event_type)
            .unwrap_or(Cow::Borrowed(""));
        out.push(RawEvent {
            kind: EventKind::of(&event_type),
            event_type,
            json,
        });
    }
    Ok(out)
}

/// Decodes every event of a frame (single object or array; `PONG` and `[]` give none).
pub fn parse_frame(text: &str) -> Result<Frame, FetchError> {
    let mut frame = Frame::default();
    for raw in split_frame(text)? {
        let event = raw.decode(&mut frame.drifts);
        frame.events.push(event);
    }
    Ok(frame)
}

/// One record of an event, tolerant of drift: its drifts go to `drifts`, a rejection becomes
/// the reason of a [`WsEvent::Invalid`].
fn record<T: Record>(text: &str, drifts: &mut Vec<Drift>) -> Result<T, String> {
    let (t, found) = decode_record_str::<T>(text).map_err(|r| r.reason)?;
    drifts.extend(found);
    Ok(t)
}

fn decode_book(text: &str, drifts: &mut Vec<Drift>) -> Result<BookEvent, String> {
    // The same fields as a REST book: one decoder for both.
    let raw: RawBook = record(text, drifts)?;
    let decoded = book_from_raw(raw, std::mem::take(drifts)).map_err(|r| r.reason)?;
    *drifts = decoded.drifts;
    Ok(BookEvent {
        book: decoded.book,
        rejected: decoded.rejected,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawChange {
    #[serde(deserialize_with = "d::string_opt")]
    asset_id: Option<String>,
    price: Option<Text>,
    size: Option<Text>,
    #[serde(deserialize_with = "d::string_opt")]
    side: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    hash: Option<String>,
    #[serde(deserialize_with = "d::decimal_opt")]
    best_bid: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    best_ask: Option<Decimal>,
}

impl Record for RawChange {
    const WHAT: &'static str = "ws price_change entry";
    const KEY: &'static [&'static str] = &["asset_id"];
    /// A level change is a (token, price, size, side); `hash` and the best prices may drift.
    const ESSENTIAL: &'static [&'static str] = &["asset_id", "price", "size", "side"];
}

#[derive(Deserialize)]
struct RawPriceChange {
    #[serde(default, deserialize_with = "d::string_opt")]
    market: Option<String>,
    #[serde(default, deserialize_with = "d::ts_ms_opt")]
    timestamp: Option<Ts>,
    /// Since 2025-09-15. Kept raw so each change is decoded (and dropped) on its own.
    #[serde(default)]
    price_changes: Option<Vec<Box<RawValue>>>,
    /// Legacy: `changes[]` under a top-level asset_id/hash.
    #[serde(default)]
    changes: Option<Vec<Box<RawValue>>>,
    #[serde(default, deserialize_with = "d::string_opt")]
    asset_id: Option<String>,
    #[serde(default, deserialize_with = "d::string_opt")]
    hash: Option<String>,
    // Legacy flat shape: a single change at the top level.
    #[serde(default)]
    price: Option<Text>,
    #[serde(default)]
    size: Option<Text>,
    #[serde(default, deserialize_with = "d::string_opt")]
    side: Option<String>,
}

impl Record for RawPriceChange {
    const WHAT: &'static str = "ws price_change";
    const KEY: &'static [&'static str] = &["market", "asset_id"];
    /// What the changes are made of: the lists (v2 and legacy) and the legacy flat change.
    const ESSENTIAL: &'static [&'static str] = &[
        "price_changes",
        "changes",
        "asset_id",
        "price",
        "size",
        "side",
    ];
}

fn decode_price_change(text: &str, drifts: &mut Vec<Drift>) -> Result<PriceChange, String> {
    let raw: RawPriceChange = record(text, drifts)?;
    let entries: Vec<Result<RawChange, Rejected>> = match (raw.price_changes, raw.changes) {
        (Some(v2), _) => entries(&v2, drifts),
        (None, Some(legacy)) => entries(&legacy, drifts),
        (None, None) if raw.price.is_some() => vec![Ok(RawChange {
            price: raw.price,
            size: raw.size,
            side: raw.side,
            ..RawChange::default()
        })],
        (None, None) => return Err("no price_changes, changes or price".into()),
    };
    let mut out = PriceChange {
        market: non_empty(raw.market),
        timestamp: raw.timestamp,
        changes: Vec::with_capacity(entries.len()),
        rejected: Vec::new(),
    };
    for (i, c) in entries.into_iter().enumerate() {
        let c = match c {
            Ok(c) => c,
            Err(r) => {
                out.rejected.push(Rejected::new(
                    "ws event",
                    r.key.or_else(|| non_empty(raw.asset_id.clone())),
                    format!("price_change[{i}]: {}", r.reason),
                ));
                continue;
            }
        };
        let asset = non_empty(c.asset_id.clone()).or_else(|| non_empty(raw.asset_id.clone()));
        match level_change(c, asset.clone(), raw.hash.as_deref()) {
            Ok(ch) => out.changes.push(ch),
            Err(why) => out.rejected.push(Rejected::new(
                "ws event",
                asset,
                format!("price_change[{i}]: {why}"),
            )),
        }
    }
    Ok(out)
}

/// Each change of a `price_change` decoded on its own.
fn entries(raw: &[Box<RawValue>], drifts: &mut Vec<Drift>) -> Vec<Result<RawChange, Rejected>> {
    raw.iter()
        .map(|e| {
            decode_record_str::<RawChange>(e.get()).map(|(c, found)| {
                drifts.extend(found);
                c
            })
        })
        .collect()
}

fn level_change(
    c: RawChange,
    asset: Option<String>,
    top_hash: Option<&str>,
) -> Result<LevelChange, String> {
    let asset_id = asset.ok_or("no asset_id")?;
    let price = parse_decimal(&c.price.ok_or("no price")?.0)?;
    let size = parse_decimal(&c.size.ok_or("no size")?.0)?;
    let side_text = c.side.ok_or("no side")?;
    let side = parse_side(&side_text).ok_or_else(|| format!("unknown side {side_text:?}"))?;
    if !is_valid_price(price) {
        return Err(format!("price {price} outside [0,1]"));
    }
    if let Some(why) = size_problem(size) {
        return Err(format!("{why} {size}"));
    }
    Ok(LevelChange {
        asset_id,
        price,
        size,
        side,
        hash: non_empty(c.hash).or_else(|| top_hash.filter(|h| !h.is_empty()).map(str::to_owned)),
        best_bid: c.best_bid,
        best_ask: c.best_ask,
    })
}

#[derive(Deserialize)]
struct RawLastTrade {
    #[serde(default, deserialize_with = "d::string_opt")]
    asset_id: Option<String>,
    #[serde(default, deserialize_with = "d::string_opt")]
    market: Option<String>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    price: Option<Decimal>,
    #[serde(default, deserialize_with = "d::string_opt")]
    side: Option<String>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    size: Option<Decimal>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    fee_rate_bps: Option<Decimal>,
    #[serde(default, deserialize_with = "d::ts_ms_opt")]
    timestamp: Option<Ts>,
    #[serde(default, deserialize_with = "d::string_opt")]
    transaction_hash: Option<String>,
}

impl Record for RawLastTrade {
    const WHAT: &'static str = "ws last_trade_price";
    const KEY: &'static [&'static str] = &["asset_id"];
    /// What makes it a trade ([`LastTradePrice::to_trade`]); `fee_rate_bps`, `market` and
    /// `transaction_hash` may drift.
    const ESSENTIAL: &'static [&'static str] = &["asset_id", "price", "side", "size", "timestamp"];
}

fn decode_last_trade(text: &str, drifts: &mut Vec<Drift>) -> Result<LastTradePrice, String> {
    let raw: RawLastTrade = record(text, drifts)?;
    let asset_id = non_empty(raw.asset_id).ok_or("no asset_id")?;
    let price = raw.price.ok_or("no price")?;
    if !is_valid_price(price) {
        return Err(format!("price {price} outside [0,1]"));
    }
    if let Some((why, size)) = raw.size.and_then(|s| size_problem(s).map(|why| (why, s))) {
        return Err(format!("{why} {size}"));
    }
    let side = match raw.side.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(parse_side(s).ok_or_else(|| format!("unknown side {s:?}"))?),
    };
    Ok(LastTradePrice {
        asset_id,
        market: non_empty(raw.market),
        price,
        side,
        size: raw.size,
        fee_rate_bps: raw.fee_rate_bps,
        timestamp: raw.timestamp,
        transaction_hash: non_empty(raw.transaction_hash),
    })
}

#[derive(Deserialize)]
struct RawTickSize {
    #[serde(default, deserialize_with = "d::string_opt")]
    asset_id: Option<String>,
    #[serde(default, deserialize_with = "d::string_opt")]
    market: Option<String>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    old_tick_size: Option<Decimal>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    new_tick_size: Option<Decimal>,
    #[serde(default, deserialize_with = "d::ts_ms_opt")]
    timestamp: Option<Ts>,
}

impl Record for RawTickSize {
    const WHAT: &'static str = "ws tick_size_change";
    const KEY: &'static [&'static str] = &["asset_id"];
    const ESSENTIAL: &'static [&'static str] = &["asset_id", "new_tick_size"];
}

fn decode_tick_size(text: &str, drifts: &mut Vec<Drift>) -> Result<TickSizeChange, String> {
    let raw: RawTickSize = record(text, drifts)?;
    Ok(TickSizeChange {
        asset_id: non_empty(raw.asset_id).ok_or("no asset_id")?,
        market: non_empty(raw.market),
        old_tick_size: raw.old_tick_size,
        new_tick_size: raw.new_tick_size.ok_or("no new_tick_size")?,
        timestamp: raw.timestamp,
    })
}

#[derive(Deserialize)]
struct RawBestBidAsk {
    #[serde(default, deserialize_with = "d::string_opt")]
    asset_id: Option<String>,
    #[serde(default, deserialize_with = "d::string_opt")]
    market: Option<String>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    best_bid: Option<Decimal>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    best_ask: Option<Decimal>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    spread: Option<Decimal>,
    #[serde(default, deserialize_with = "d::ts_ms_opt")]
    timestamp: Option<Ts>,
}

impl Record for RawBestBidAsk {
    const WHAT: &'static str = "ws best_bid_ask";
    const KEY: &'static [&'static str] = &["asset_id"];
    /// The event's content; `spread`, `market` and `timestamp` may drift.
    const ESSENTIAL: &'static [&'static str] = &["asset_id", "best_bid", "best_ask"];
}

fn decode_best_bid_ask(text: &str, drifts: &mut Vec<Drift>) -> Result<BestBidAsk, String> {
    let raw: RawBestBidAsk = record(text, drifts)?;
    for (name, v) in [("best_bid", raw.best_bid), ("best_ask", raw.best_ask)] {
        if let Some(p) = v.filter(|p| !is_valid_price(*p)) {
            return Err(format!("{name} {p} outside [0,1]"));
        }
    }
    Ok(BestBidAsk {
        asset_id: non_empty(raw.asset_id).ok_or("no asset_id")?,
        market: non_empty(raw.market),
        best_bid: raw.best_bid,
        best_ask: raw.best_ask,
        spread: raw.spread,
        timestamp: raw.timestamp,
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn given_pong_blank_or_empty_array_when_parsed_then_no_events() {
        assert!(parse_frame("PONG").unwrap().events.is_empty());
        assert!(parse_frame("[]").unwrap().events.is_empty());
        assert!(parse_frame("  ").unwrap().events.is_empty());
        assert!(matches!(
            parse_frame("hello"),
            Err(FetchError::Decode { .. })
        ));
        assert!(matches!(
            parse_frame("[{\"event_type\":"),
            Err(FetchError::Truncated { .. })
        ));
    }

    #[test]
    fn given_a_mixed_array_when_split_then_each_is_classified_and_raw_json_kept() {
        let frame = r#"[{"event_type":"book","asset_id":"1","bids":[],"asks":[]},
                        {"event_type":"last_trade_price","asset_id":"1","price":"0.5","size":"2","side":"BUY","timestamp":"1724564136087"},
                        {"event_type":"fancy_new_thing","x":1},
                        {"no_type":true}]"#;
        let raw = split_frame(frame).unwrap();
        let kinds: Vec<EventKind> = raw.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Book,
                EventKind::LastTradePrice,
                EventKind::Unknown,
                EventKind::Unknown
            ]
        );
        assert_eq!(
            raw[2].json.get(),
            r#"{"event_type":"fancy_new_thing","x":1}"#
        );
        let mut drifts = Vec::new();
        let WsEvent::LastTradePrice(t) = raw[1].decode(&mut drifts) else {
            panic!("{:?}", raw[1].decode(&mut drifts))
        };
        let trade = t.to_trade().unwrap();
        assert_eq!(
            (trade.price, trade.size, trade.side),
            (dec("0.5"), dec("2"), Side::Buy)
        );
        assert_eq!(
            raw[2].decode(&mut drifts),
            WsEvent::Unknown {
                event_type: "fancy_new_thing".into()
            }
        );
        assert!(drifts.is_empty());
    }

    #[test]
    fn given_a_malformed_known_event_when_parsed_then_it_is_invalid_and_the_rest_kept() {
        let frame = r#"[{"event_type":"last_trade_price","asset_id":"1","price":"1.5"},
                        {"event_type":"tick_size_change","asset_id":"1","new_tick_size":"0.001"}]"#;
        let events = parse_frame(frame).unwrap().events;
        assert!(
            matches!(&events[0], WsEvent::Invalid { event_type, reason } if event_type == "last_trade_price" && reason.contains("outside")),
            "{events:?}"
        );
        assert!(
            matches!(&events[1], WsEvent::TickSizeChange(t) if t.new_tick_size == dec("0.001"))
        );
    }

    #[test]
    fn given_a_price_change_with_a_bad_entry_when_decoded_then_the_entry_is_rejected() {
        let frame = r#"{"event_type":"price_change","market":"0x1","timestamp":"1729084877448",
            "price_changes":[{"asset_id":"1","price":"0.6","side":"BUY","size":"0"},
                             {"asset_id":"2","price":"-0.1","side":"SELL","size":"5"}]}"#;
        let WsEvent::PriceChange(pc) = &parse_frame(frame).unwrap().events[0] else {
            panic!()
        };
        assert_eq!(pc.changes.len(), 1);
        assert_eq!(pc.changes[0].size, Decimal::ZERO, "0 removes the level");
        assert_eq!(pc.rejected.len(), 1);
        assert_eq!(pc.rejected[0].key.as_deref(), Some("2"));
    }

    #[test]
    fn given_a_book_event_with_a_bool_price_and_a_zero_tick_when_decoded_then_only_they_drop() {
        let frame = r#"{"event_type":"book","asset_id":"7","market":"0x1",
            "bids":[{"price":true,"size":"1"},{"price":"0.4","size":"3"}],
            "asks":[{"price":"0.6","size":"79000000000000000000000000000"}],
            "tick_size":"0","last_trade_price":"0.5"}"#;
        let WsEvent::Book(b) = &parse_frame(frame).unwrap().events[0] else {
            panic!("{:?}", parse_frame(frame))
        };
        assert_eq!(b.book.bids.len(), 1);
        assert!(b.book.asks.is_empty());
        assert_eq!(b.book.tick_size, None);
        assert_eq!(b.book.last_trade_price, Some(dec("0.5")));
        let whats: Vec<&str> = b.rejected.iter().map(|r| r.what).collect();
        assert_eq!(whats, ["book level", "book level", "book value"]);
        assert!(b.book.problem.is_some(), "levels were left out");
    }

    #[test]
    fn given_a_size_of_1e12_or_more_when_decoding_changes_and_trades_then_they_are_rejected() {
        let frame = r#"{"event_type":"price_change","market":"0x1",
            "price_changes":[{"asset_id":"1","price":"0.6","side":"BUY","size":"1000000000000"}]}"#;
        let WsEvent::PriceChange(pc) = &parse_frame(frame).unwrap().events[0] else {
            panic!()
        };
        assert!(pc.changes.is_empty());
        assert!(pc.rejected[0].reason.contains("too large"), "{pc:?}");
        let frame = r#"{"event_type":"last_trade_price","asset_id":"1","price":"0.5",
            "size":"79000000000000000000000000000","side":"BUY"}"#;
        assert!(
            matches!(&parse_frame(frame).unwrap().events[0], WsEvent::Invalid { reason, .. } if reason.contains("too large")),
            "{:?}",
            parse_frame(frame)
        );
    }

    #[test]
    fn given_a_ws_book_with_a_wrong_typed_timestamp_and_hash_when_decoded_then_kept_with_drifts() {
        let frame = r#"{"event_type":"book","asset_id":"7","market":"0x1","timestamp":{"ms":1},
            "hash":["h"],"bids":[{"price":"0.4","size":"3"},{"price":"0.3","size":"0"}],
            "asks":[{"price":"0.6","size":"2"}]}"#;
        let f = parse_frame(frame).unwrap();
        let WsEvent::Book(b) = &f.events[0] else {
            panic!("{f:?}")
        };
        assert_eq!((b.book.timestamp, b.book.hash.as_deref()), (None, None));
        assert_eq!(
            (b.book.bids.len(), b.book.asks.len()),
            (1, 1),
            "the size-0 bid is not a level"
        );
        assert!(b.rejected.is_empty());
        assert_eq!(b.book.problem, None);
        let mut keys: Vec<String> = f.drifts.iter().map(Drift::stat_key).collect();
        keys.sort();
        assert_eq!(keys, ["book.hash", "book.timestamp"]);
    }

    #[test]
    fn given_a_crossed_ws_book_when_decoded_then_it_is_marked() {
        let frame = r#"{"event_type":"book","asset_id":"7",
            "bids":[{"price":"0.4","size":"3"},{"price":"0.7","size":"1"}],
            "asks":[{"price":"0.6","size":"2"}]}"#;
        let WsEvent::Book(b) = &parse_frame(frame).unwrap().events[0] else {
            panic!()
        };
        assert_eq!(
            b.book.problem.as_deref(),
            Some("crossed: best bid 0.7 >= best ask 0.6")
        );
    }

    #[test]
    fn given_trades_and_changes_with_drifted_or_unusable_fields_then_only_unusable_ones_drop() {
        let frame = r#"[{"event_type":"last_trade_price","asset_id":"1","price":"0.5","size":"2",
                         "side":"BUY","timestamp":"1724564136087","fee_rate_bps":{"bps":0}},
                        {"event_type":"last_trade_price","asset_id":"1","price":"0.5","size":{"n":2},
                         "side":"BUY","timestamp":"1724564136087"},
                        {"event_type":"price_change","market":"0x1","timestamp":"1729084877448",
                         "price_changes":[{"asset_id":"1","price":"0.6","side":"BUY","size":"5","best_bid":{"x":1}},
                                          {"asset_id":"2","price":{"x":1},"side":"SELL","size":"5"},
                                          {"asset_id":"2","price":"0.7","side":"SELL","size":"0"}]}]"#;
        let f = parse_frame(frame).unwrap();
        let WsEvent::LastTradePrice(t) = &f.events[0] else {
            panic!("{f:?}")
        };
        assert_eq!(t.fee_rate_bps, None);
        assert!(
            t.to_trade().is_some(),
            "a drifted fee does not cost the trade"
        );
        assert!(
            matches!(&f.events[1], WsEvent::Invalid { reason, .. } if reason.starts_with("field `size`")),
            "{:?}",
            f.events[1]
        );
        let WsEvent::PriceChange(pc) = &f.events[2] else {
            panic!("{f:?}")
        };
        let kept: Vec<(&str, Decimal)> = pc
            .changes
            .iter()
            .map(|c| (c.asset_id.as_str(), c.size))
            .collect();
        assert_eq!(
            kept,
            [("1", dec("5")), ("2", Decimal::ZERO)],
            "size 0 removes a level: kept"
        );
        assert_eq!(pc.changes[0].best_bid, None);
        assert_eq!(pc.rejected.len(), 1);
        assert_eq!(pc.rejected[0].key.as_deref(), Some("2"));
        assert!(
            pc.rejected[0]
                .reason
                .starts_with("price_change[1]: field `price`"),
            "{}",
            pc.rejected[0].reason
        );
        let mut keys: Vec<String> = f.drifts.iter().map(Drift::stat_key).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "ws last_trade_price.fee_rate_bps",
                "ws price_change entry.best_bid"
            ],
            "only drifts of kept events"
        );
    }
}
