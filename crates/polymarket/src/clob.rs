//! CLOB REST: order books (`GET /book`, `POST /books`) and CLOB markets (`GET /markets`,
//! `GET /markets/{condition_id}`, snake_case — not Gamma's camelCase).
//!
//! Books keep their levels in the order served (bids ascending and asks descending: best LAST);
//! nothing here reorders them, and nothing downstream relies on the order either
//! ([`polytape_core::BookFeatures`] computes best prices itself).
//!
//! A book is rejected only when its `asset_id` is absent or unusable. Otherwise it is kept,
//! honestly:
//! * A level of size 0 is not a level: it is left out silently.
//! * A level with a price outside [0, 1], a negative size, a size too large for DECIMAL(18,6)
//!   (≥ 10^12), a price or size that is not a number (a bool, an object, garbage text), or that
//!   is not an object at all is dropped and reported (`"book level"`), and the book is marked
//!   ([`Book::problem`]): the levels left cannot be trusted (a depth with a level missing is a
//!   wrong number). So is a book whose `bids` or `asks` is not a list, and a crossed book (best
//!   bid ≥ best ask, computed without relying on the order).
//! * A tick size outside (0, 1], a negative minimum order size or a last trade price outside
//!   [0, 1] becomes `None` and is reported (`"book value"`); the levels are not affected.
//! * Any other field that fails to decode (`timestamp`, `hash`, `market`, `neg_risk`…) is read
//!   as absent and reported as a [`Drift`].

use crate::decode::{
    self as d, decode_record, decode_records, size_problem, Loose, Record, Records,
};
use crate::error::{Drift, Rejected};
use crate::Ts;
use polytape_core::money::is_valid_price;
use polytape_core::{Book, Level};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// A book as the CLOB serves it (REST, and the WebSocket `book` event, which has the same
/// fields); numbers are strings on the wire. Levels and the scalar values are [`Loose`] so a bad
/// one is dropped on its own, not with the book.
#[derive(Debug, Deserialize)]
pub(crate) struct RawBook {
    #[serde(default, deserialize_with = "d::string_opt")]
    market: Option<String>,
    #[serde(default, deserialize_with = "d::string_opt")]
    asset_id: Option<String>,
    #[serde(default, deserialize_with = "d::ts_ms_opt")]
    timestamp: Option<Ts>,
    #[serde(default, deserialize_with = "d::string_opt")]
    hash: Option<String>,
    #[serde(default)]
    bids: Option<Vec<RawLevel>>,
    #[serde(default)]
    asks: Option<Vec<RawLevel>>,
    #[serde(default)]
    min_order_size: Option<Loose>,
    #[serde(default)]
    tick_size: Option<Loose>,
    #[serde(default, deserialize_with = "d::bool_opt")]
    neg_risk: Option<bool>,
    /// May be `""` (no trade yet): `None`.
    #[serde(default)]
    last_trade_price: Option<Loose>,
}

impl Record for RawBook {
    const WHAT: &'static str = "book";
    const KEY: &'static [&'static str] = &["asset_id"];
    /// Only the token id: a bad `timestamp`, `hash`, `market` or `neg_risk` must not cost the
    /// levels, and a bad `bids`/`asks` marks the book instead ([`Book::problem`]).
    const ESSENTIAL: &'static [&'static str] = &["asset_id"];
}

/// A level before validation: kept as [`Loose`] text so one bad number (or a level that is
/// not even an object) drops one level, not the book.
#[derive(Debug, Default)]
struct RawLevel {
    price: Option<Loose>,
    size: Option<Loose>,
    /// Set when the level was not a JSON object: what it was instead.
    not_object: Option<&'static str>,
}

impl RawLevel {
    fn wrong(what: &'static str) -> RawLevel {
        RawLevel {
            not_object: Some(what),
            ..RawLevel::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum LevelField {
    Price,
    Size,
    #[serde(other)]
    Other,
}

struct RawLevelVisitor;

impl<'de> Visitor<'de> for RawLevelVisitor {
    type Value = RawLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a book level")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLevel, A::Error> {
        let mut out = RawLevel::default();
        while let Some(k) = map.next_key::<LevelField>()? {
            match k {
                LevelField::Price => out.price = map.next_value()?,
                LevelField::Size => out.size = map.next_value()?,
                LevelField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("a bool"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("null"))
    }
    fn visit_none<E: de::Error>(self) -> Result<RawLevel, E> {
        Ok(RawLevel::wrong("null"))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawLevel, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawLevel, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawLevel::wrong("an array"))
    }
}

impl<'de> Deserialize<'de> for RawLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawLevelVisitor)
    }
}

/// Validates raw levels: usable ones are returned in served order, levels of size 0 are left
/// out silently (they are not levels), the others (price outside [0, 1], negative or
/// unstorable size, a number that is not one, a level that is not an object) become
/// `Rejected("book level")` keyed by `token_id`.
fn levels(
    raw: Option<Vec<RawLevel>>,
    side: &str,
    token_id: &str,
    rejected: &mut Vec<Rejected>,
) -> Vec<Level> {
    let raw = raw.unwrap_or_default();
    let mut out = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        match level(l) {
            Ok(Some(level)) => out.push(level),
            Ok(None) => {}
            Err(why) => rejected.push(Rejected::new(
                "book level",
                Some(token_id.to_owned()),
                format!("{side}[{i}]: {why}"),
            )),
        }
    }
    out
}

/// One level: `Ok(None)` for a level of size 0, `Err` with the reason for an impossible one.
fn level(l: RawLevel) -> Result<Option<Level>, String> {
    if let Some(what) = l.not_object {
        return Err(format!("level is {what}, not an object"));
    }
    let price = l
        .price
        .as_ref()
        .map(Loose::decimal)
        .transpose()
        .map_err(|e| format!("price: {e}"))?
        .flatten()
        .ok_or("no price")?;
    let size = l
        .size
        .as_ref()
        .map(Loose::decimal)
        .transpose()
        .map_err(|e| format!("size: {e}"))?
        .flatten()
        .ok_or("no size")?;
    if size.is_zero() {
        return Ok(None);
    }
    let why = if !is_valid_price(price) {
        Some("price outside [0,1]")
    } else {
        size_problem(size)
    };
    match why {
        Some(why) => Err(format!("{why} (price {price}, size {size})")),
        None => Ok(Some(Level { price, size })),
    }
}

/// A book's scalar values as served, before their range checks.
struct RawBookValues {
    pub tick_size: Option<Loose>,
    pub min_order_size: Option<Loose>,
    pub last_trade_price: Option<Loose>,
}

/// A book's checked scalar values.
struct BookValues {
    pub tick_size: Option<Decimal>,
    pub min_order_size: Option<Decimal>,
    pub last_trade_price: Option<Decimal>,
}

/// Range-checks a book's scalar values: a tick size outside (0, 1], a negative or unstorable
/// minimum order size, a last trade price outside [0, 1], or a value that is not a number
/// becomes `None` and a `Rejected("book value")` keyed by `token_id` naming the field.
fn book_values(raw: RawBookValues, token_id: &str, rejected: &mut Vec<Rejected>) -> BookValues {
    let mut check = |field: &str, v: Option<Loose>, rule: fn(Decimal) -> Option<&'static str>| {
        let problem = match v.as_ref().map(Loose::decimal).transpose() {
            Ok(v) => match v.flatten() {
                None => return None,
                Some(v) => match rule(v) {
                    None => return Some(v),
                    Some(why) => format!("{field} {v} {why}"),
                },
            },
            Err(e) => format!("{field}: {e}"),
        };
        rejected.push(Rejected::new(
            "book value",
            Some(token_id.to_owned()),
            problem,
        ));
        None
    };
    BookValues {
        tick_size: check("tick_size", raw.tick_size, |v| {
            (v <= Decimal::ZERO || v > Decimal::ONE).then_some("outside (0,1]")
        }),
        min_order_size: check("min_order_size", raw.min_order_size, size_problem),
        last_trade_price: check("last_trade_price", raw.last_trade_price, |v| {
            (!is_valid_price(v)).then_some("outside [0,1]")
        }),
    }
}

/// One decoded book with what was dropped from it and the fields read as absent.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBook {
    /// The book; [`Book::problem`] says when its levels cannot be trusted.
    pub book: Book,
    /// Levels (`"book level"`) and scalar values (`"book value"`) that were dropped.
    pub rejected: Vec<Rejected>,
    /// Fields read as absent (`timestamp`, `hash`…; a bad `bids`/`asks` also marks the book).
    pub drifts: Vec<Drift>,
}

/// Decodes one book object. `Err` (a `Rejected("book")`) when the object has no usable token
/// id (or is not an object); otherwise the book, what was dropped from it (levels and scalar
/// values) and what drifted. See the module docs for when the book is marked.
pub fn decode_book(v: &Value) -> Result<DecodedBook, Rejected> {
    let (raw, drifts) = decode_record::<RawBook>(v)?;
    book_from_raw(raw, drifts)
}

/// The checked book of a decoded raw book (REST or WebSocket).
pub(crate) fn book_from_raw(raw: RawBook, drifts: Vec<Drift>) -> Result<DecodedBook, Rejected> {
    let token_id = raw
        .asset_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejected::new("book", None, "no asset_id"))?;
    let mut rejected = Vec::new();
    let bids = levels(raw.bids, "bids", &token_id, &mut rejected);
    let asks = levels(raw.asks, "asks", &token_id, &mut rejected);
    let bad_levels = rejected.len();
    let values = book_values(
        RawBookValues {
            tick_size: raw.tick_size,
            min_order_size: raw.min_order_size,
            last_trade_price: raw.last_trade_price,
        },
        &token_id,
        &mut rejected,
    );
    let mut book = Book {
        condition_id: raw.market.filter(|s| !s.is_empty()),
        bids,
        asks,
        timestamp: raw.timestamp,
        hash: raw.hash.filter(|s| !s.is_empty()),
        tick_size: values.tick_size,
        min_order_size: values.min_order_size,
        last_trade_price: values.last_trade_price,
        neg_risk: raw.neg_risk,
        token_id,
        problem: None,
    };
    book.problem = problem(&book, &rejected[..bad_levels], &drifts);
    Ok(DecodedBook {
        book,
        rejected,
        drifts,
    })
}

/// Why the levels of `book` cannot be trusted: a side that was not a list, levels left out as
/// impossible, or bids at or above asks.
fn problem(book: &Book, bad_levels: &[Rejected], drifts: &[Drift]) -> Option<String> {
    let mut why = Vec::new();
    for d in drifts
        .iter()
        .filter(|d| d.field == "bids" || d.field == "asks")
    {
        why.push(format!("{} is not a list of levels: {}", d.field, d.reason));
    }
    match bad_levels {
        [] => {}
        [one] => why.push(format!("level left out: {}", one.reason)),
        [first, ..] => why.push(format!(
            "{} levels left out, first {}",
            bad_levels.len(),
            first.reason
        )),
    }
    if let Some((bid, ask)) = book.crossed() {
        why.push(format!("crossed: best bid {bid} >= best ask {ask}"));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// Decoded books of one response, with everything that was dropped.
#[derive(Debug, Default)]
pub struct DecodedBooks {
    pub books: Vec<Book>,
    /// Whole books ("book"), single levels ("book level") and values ("book value") that were
    /// dropped.
    pub rejected: Vec<Rejected>,
    /// Fields of kept books read as absent.
    pub drifts: Vec<Drift>,
}

/// Decodes a `POST /books` response (a JSON array of books), each book on its own.
pub fn decode_books(body: &[u8]) -> Result<DecodedBooks, serde_json::Error> {
    let values: Vec<Value> = serde_json::from_slice(body)?;
    let mut out = DecodedBooks {
        books: Vec::with_capacity(values.len()),
        ..DecodedBooks::default()
    };
    for v in &values {
        match decode_book(v) {
            Ok(d) => {
                out.books.push(d.book);
                out.rejected.extend(d.rejected);
                out.drifts.extend(d.drifts);
            }
            Err(r) => out.rejected.push(r),
        }
    }
    Ok(out)
}

/// One outcome token of a CLOB market.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClobToken {
    #[serde(deserialize_with = "d::string_opt")]
    pub token_id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub outcome: Option<String>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub winner: Option<bool>,
}

/// A CLOB market (`GET /markets/{condition_id}` or an item of `GET /markets`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClobMarket {
    #[serde(deserialize_with = "d::string_opt")]
    pub condition_id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub question_id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub question: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub market_slug: Option<String>,
    #[serde(deserialize_with = "d::ts_opt")]
    pub end_date_iso: Option<Ts>,
    #[serde(deserialize_with = "d::ts_opt")]
    pub game_start_time: Option<Ts>,
    #[serde(deserialize_with = "d::ts_opt")]
    pub accepting_order_timestamp: Option<Ts>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub enable_order_book: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub active: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub closed: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub archived: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub accepting_orders: Option<bool>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub minimum_order_size: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub minimum_tick_size: Option<Decimal>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub neg_risk: Option<bool>,
    #[serde(deserialize_with = "d::string_opt")]
    pub neg_risk_market_id: Option<String>,
    /// True for a market that resolved 50/50 (INVALID): both tokens redeem for half.
    #[serde(deserialize_with = "d::bool_opt")]
    pub is_50_50_outcome: Option<bool>,
    pub tokens: Option<Vec<ClobToken>>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub tags: Option<Vec<String>>,
}

impl Record for ClobMarket {
    const WHAT: &'static str = "clob market";
    const KEY: &'static [&'static str] = &["condition_id"];
    /// A CLOB market is referred to by its condition id.
    const ESSENTIAL: &'static [&'static str] = &["condition_id"];
}

impl ClobMarket {
    /// The winning token of a resolved market, when exactly one token is marked winner.
    pub fn winner(&self) -> Option<&ClobToken> {
        let tokens = self.tokens.as_deref()?;
        let mut winners = tokens.iter().filter(|t| t.winner == Some(true));
        match (winners.next(), winners.next()) {
            (Some(w), None) => Some(w),
            _ => None,
        }
    }
}

/// A `GET /markets` page (cursor-paged; the last cursor is `"LTE="`).
#[derive(Debug, Default)]
pub struct ClobMarketsPage {
    pub markets: Vec<ClobMarket>,
    pub rejected: Vec<Rejected>,
    /// Fields of kept markets read as absent.
    pub drifts: Vec<Drift>,
    pub next_cursor: Option<String>,
    pub limit: Option<u32>,
    pub count: Option<u32>,
}

#[derive(Deserialize)]
struct RawClobMarketsPage {
    data: Vec<Value>,
    #[serde(default, deserialize_with = "d::string_opt")]
    next_cursor: Option<String>,
    #[serde(default, deserialize_with = "d::u32_opt")]
    limit: Option<u32>,
    #[serde(default, deserialize_with = "d::u32_opt")]
    count: Option<u32>,
}

/// Decodes a `GET /markets` page, each market on its own.
pub fn decode_clob_markets_page(body: &[u8]) -> Result<ClobMarketsPage, serde_json::Error> {
    let raw: RawClobMarketsPage = serde_json::from_slice(body)?;
    let Records {
        items,
        rejected,
        drifts,
    } = decode_records::<ClobMarket>(&raw.data);
    Ok(ClobMarketsPage {
        markets: items,
        rejected,
        drifts,
        next_cursor: raw.next_cursor,
        limit: raw.limit,
        count: raw.count,
    })
}

/// Decodes a single CLOB market (`GET /markets/{condition_id}`), with the fields read as absent.
pub fn decode_clob_market(body: &[u8]) -> Result<(ClobMarket, Vec<Drift>), Rejected> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Rejected::new(ClobMarket::WHAT, None, e.to_string()))?;
    decode_record(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn given_bad_levels_when_decoding_a_book_then_only_they_are_dropped_in_order() {
        let v = json!({
            "market": "0xabc", "asset_id": "123", "timestamp": "1728799418260",
            "bids": [{"price": "0.1", "size": "10"}, {"price": "1.5", "size": "1"},
                     {"price": ".2", "size": "5"}],
            "asks": [{"price": "0.9", "size": "-1"}, {"price": "0.8", "size": "abc"},
                     {"price": "0.7"}, {"price": "0.6", "size": 3}],
            "last_trade_price": "", "tick_size": "0.01", "neg_risk": false
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert!(drifts.is_empty(), "{drifts:?}");
        assert_eq!(
            book.bids.iter().map(|l| l.price).collect::<Vec<_>>(),
            [dec("0.1"), dec("0.2")]
        );
        assert_eq!(
            book.asks,
            [Level {
                price: dec("0.6"),
                size: dec("3")
            }]
        );
        assert_eq!(book.last_trade_price, None, "\"\" means no last trade");
        assert_eq!(book.tick_size, Some(dec("0.01")));
        assert_eq!(rejected.len(), 4);
        assert!(
            rejected[0]
                .reason
                .starts_with("bids[1]: price outside [0,1]"),
            "{}",
            rejected[0].reason
        );
        assert!(
            rejected[1].reason.starts_with("asks[0]: negative size"),
            "{}",
            rejected[1].reason
        );
        assert!(rejected
            .iter()
            .all(|r| r.what == "book level" && r.key.as_deref() == Some("123")));
        let problem = book.problem.unwrap_or_default();
        assert!(
            problem.starts_with("4 levels left out, first bids[1]: price outside [0,1]"),
            "{problem}"
        );
    }

    #[test]
    fn given_out_of_range_book_values_when_decoding_then_each_is_none_and_rejected() {
        let v = json!({
            "asset_id": "123", "bids": [{"price": "0.1", "size": "10"}], "asks": [],
            "last_trade_price": "1.5", "tick_size": "0", "min_order_size": "-5"
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert!(drifts.is_empty(), "{drifts:?}");
        assert_eq!(book.last_trade_price, None);
        assert_eq!(book.tick_size, None);
        assert_eq!(book.min_order_size, None);
        assert_eq!(book.bids.len(), 1, "the rest of the book is kept");
        let fields: Vec<&str> = rejected
            .iter()
            .map(|r| r.reason.split(' ').next().unwrap())
            .collect();
        assert_eq!(fields, ["tick_size", "min_order_size", "last_trade_price"]);
        assert!(rejected
            .iter()
            .all(|r| r.what == "book value" && r.key.as_deref() == Some("123")));
        assert_eq!(book.problem, None, "bad values do not touch the levels");

        for (tick, ok) in [
            ("1.01", false),
            ("-0.01", false),
            ("1", true),
            ("0.001", true),
        ] {
            let DecodedBook { book, rejected, .. } =
                decode_book(&json!({"asset_id": "1", "tick_size": tick})).unwrap();
            assert_eq!(book.tick_size.is_some(), ok, "tick_size {tick}");
            assert_eq!(rejected.len(), usize::from(!ok), "tick_size {tick}");
        }
        let DecodedBook { book, rejected, .. } = decode_book(&json!({
            "asset_id": "1", "last_trade_price": "0.42", "min_order_size": 5, "tick_size": 0.01
        }))
        .unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            (book.last_trade_price, book.min_order_size, book.tick_size),
            (Some(dec("0.42")), Some(dec("5")), Some(dec("0.01")))
        );
    }

    #[test]
    fn given_book_values_of_the_wrong_type_when_decoding_then_only_those_values_are_dropped() {
        let v = json!({
            "asset_id": "123", "bids": [{"price": "0.1", "size": "10"}],
            "last_trade_price": true, "tick_size": {"v": 1}, "min_order_size": "lots"
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert!(drifts.is_empty(), "{drifts:?}");
        assert_eq!(book.bids.len(), 1);
        assert_eq!(
            (book.last_trade_price, book.tick_size, book.min_order_size),
            (None, None, None)
        );
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert!(rejected.iter().all(|r| r.what == "book value"));
    }

    #[test]
    fn given_levels_with_bool_object_or_garbage_numbers_when_decoding_then_only_they_drop() {
        let v = json!({
            "asset_id": "123",
            "bids": [{"price": true, "size": "1"}, {"price": "0.5", "size": {"x": 1}},
                     {"price": "0.4", "size": "1"}, "oops", {"price": "zz", "size": "1"},
                     {"price": "0.3", "size": [1]}, null],
            "asks": [{"price": [0.6], "size": "1"}, {"price": "0.6", "size": "2", "extra": {}}]
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert!(drifts.is_empty(), "{drifts:?}");
        assert_eq!(
            book.bids,
            [Level {
                price: dec("0.4"),
                size: dec("1")
            }]
        );
        assert_eq!(
            book.asks,
            [Level {
                price: dec("0.6"),
                size: dec("2")
            }]
        );
        let places: Vec<&str> = rejected
            .iter()
            .map(|r| r.reason.split(':').next().unwrap())
            .collect();
        assert_eq!(
            places,
            ["bids[0]", "bids[1]", "bids[3]", "bids[4]", "bids[5]", "bids[6]", "asks[0]"]
        );
        assert!(rejected.iter().all(|r| r.what == "book level"));
        assert!(book.problem.is_some());
    }

    #[test]
    fn given_sizes_that_do_not_fit_decimal_18_6_when_decoding_then_those_levels_drop() {
        let v = json!({
            "asset_id": "123",
            "bids": [{"price": "0.5", "size": "79000000000000000000000000000"},
                     {"price": "0.4", "size": "1000000000000"},
                     {"price": "0.3", "size": "999999999999.5"}],
            "asks": [{"price": "0.6", "size": "79000000000000000000000000000"}]
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert!(drifts.is_empty(), "{drifts:?}");
        assert_eq!(
            book.bids,
            [Level {
                price: dec("0.3"),
                size: dec("999999999999.5")
            }]
        );
        assert!(book.asks.is_empty());
        assert_eq!(rejected.len(), 3);
        assert!(
            rejected.iter().all(|r| r.reason.contains("too large")),
            "{rejected:?}"
        );
        assert!(book.problem.unwrap_or_default().contains("too large"));
    }

    #[test]
    fn given_a_books_array_with_a_bookless_entry_when_decoded_then_the_others_are_kept() {
        let body = json!([
            {"asset_id": "1", "bids": [], "asks": []},
            {"market": "0x2", "bids": []},
            {"asset_id": "3", "bids": "oops", "asks": [{"price": "0.6", "size": "1"}]},
            {"asset_id": {"x": 4}, "bids": []},
        ])
        .to_string();
        let out = decode_books(body.as_bytes()).unwrap();
        let kept: Vec<&str> = out.books.iter().map(|b| b.token_id.as_str()).collect();
        assert_eq!(kept, ["1", "3"]);
        assert_eq!(out.rejected.len(), 2);
        assert!(out.rejected.iter().all(|r| r.what == "book"));
        assert!(
            out.rejected[1].reason.starts_with("field `asset_id`"),
            "{}",
            out.rejected[1].reason
        );
        let three = &out.books[1];
        assert!(three.bids.is_empty() && three.asks.len() == 1);
        assert!(
            three
                .problem
                .as_deref()
                .unwrap_or_default()
                .starts_with("bids is not a list of levels"),
            "{:?}",
            three.problem
        );
        assert_eq!(out.drifts.len(), 1);
        assert_eq!(out.drifts[0].stat_key(), "book.bids");
    }

    #[test]
    fn given_zero_size_levels_when_decoding_then_they_are_left_out_silently() {
        let v = json!({
            "asset_id": "5",
            "bids": [{"price": "0.1", "size": "0"}, {"price": "0.2", "size": "7"}],
            "asks": [{"price": "0.9", "size": "0.000"}, {"price": "0.5", "size": 0}, {"price": "0.3", "size": "2"}]
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert_eq!(
            book.bids,
            [Level {
                price: dec("0.2"),
                size: dec("7")
            }]
        );
        assert_eq!(book.asks.len(), 1);
        assert!(rejected.is_empty() && drifts.is_empty());
        assert_eq!(
            book.problem, None,
            "a book without its empty levels is still sound"
        );
    }

    #[test]
    fn given_a_crossed_book_in_any_order_when_decoding_then_it_is_kept_and_marked() {
        let v = json!({
            "asset_id": "6",
            "bids": [{"price": "0.2", "size": "1"}, {"price": "0.55", "size": "3"}, {"price": "0.4", "size": "1"}],
            "asks": [{"price": "0.9", "size": "1"}, {"price": "0.5", "size": "2"}]
        });
        let d = decode_book(&v).unwrap();
        assert!(d.rejected.is_empty());
        assert_eq!(
            (d.book.bids.len(), d.book.asks.len()),
            (3, 2),
            "levels kept as served"
        );
        assert_eq!(
            d.book.problem.as_deref(),
            Some("crossed: best bid 0.55 >= best ask 0.5")
        );
    }

    #[test]
    fn given_a_wrong_typed_timestamp_hash_market_and_neg_risk_when_decoding_then_the_book_is_kept()
    {
        let v = json!({
            "asset_id": "7", "market": ["0x1"], "timestamp": {"ms": 1}, "hash": {"h": 1},
            "neg_risk": "perhaps", "bids": [{"price": "0.4", "size": "3"}],
            "asks": [{"price": "0.6", "size": "2"}], "tick_size": "0.01"
        });
        let DecodedBook {
            book,
            rejected,
            drifts,
        } = decode_book(&v).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(book.problem, None);
        assert_eq!((book.bids.len(), book.asks.len()), (1, 1));
        assert_eq!(book.tick_size, Some(dec("0.01")));
        assert_eq!(
            (book.timestamp, book.condition_id, book.neg_risk),
            (None, None, None)
        );
        assert_eq!(book.hash, None);
        let mut fields: Vec<&str> = drifts.iter().map(|d| d.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["hash", "market", "neg_risk", "timestamp"]);
        assert!(drifts
            .iter()
            .all(|d| d.what == "book" && d.key.as_deref() == Some("7")));
    }
}
