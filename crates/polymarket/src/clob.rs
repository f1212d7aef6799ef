//! CLOB REST: order books (`GET /book`, `POST /books`) and CLOB markets (`GET /markets`,
//! `GET /markets/{condition_id}`, snake_case — not Gamma's camelCase).
//!
//! Books keep their levels in the order served (bids ascending and asks descending: best LAST);
//! nothing here reorders them, and nothing downstream relies on the order either
//! ([`polytape_core::BookFeatures`] computes best prices itself). A level with a price outside
//! [0, 1], a negative size or an unparseable number is dropped and reported; the rest of the
//! book is kept.

use crate::decode::{self as d, decode_record, parse_decimal, str_field, Text};
use crate::error::Rejected;
use crate::Ts;
use polytape_core::{Book, Level};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

/// A book as the CLOB serves it; numbers are strings on the wire.
#[derive(Debug, Deserialize)]
struct RawBook {
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
    #[serde(default, deserialize_with = "d::decimal_opt")]
    min_order_size: Option<Decimal>,
    #[serde(default, deserialize_with = "d::decimal_opt")]
    tick_size: Option<Decimal>,
    #[serde(default, deserialize_with = "d::bool_opt")]
    neg_risk: Option<bool>,
    /// May be `""` (no trade yet): `None`.
    #[serde(default, deserialize_with = "d::decimal_opt")]
    last_trade_price: Option<Decimal>,
}

/// A level before validation: kept as text so one bad number drops one level, not the book.
#[derive(Debug, Deserialize)]
pub(crate) struct RawLevel {
    #[serde(default)]
    price: Option<Text>,
    #[serde(default)]
    size: Option<Text>,
}

/// Validates raw levels: usable ones are returned in served order, the others become
/// `Rejected("book level")` keyed by `token_id`.
pub(crate) fn levels(
    raw: Option<Vec<RawLevel>>,
    side: &str,
    token_id: &str,
    rejected: &mut Vec<Rejected>,
) -> Vec<Level> {
    let raw = raw.unwrap_or_default();
    let mut out = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        let parsed = (|| -> Result<Level, String> {
            let price = l.price.ok_or("no price")?;
            let size = l.size.ok_or("no size")?;
            let level = Level {
                price: parse_decimal(&price.0).map_err(|e| format!("price: {e}"))?,
                size: parse_decimal(&size.0).map_err(|e| format!("size: {e}"))?,
            };
            match level.invalid_reason() {
                Some(why) => Err(format!(
                    "{why} (price {}, size {})",
                    level.price, level.size
                )),
                None => Ok(level),
            }
        })();
        match parsed {
            Ok(level) => out.push(level),
            Err(why) => rejected.push(Rejected::new(
                "book level",
                Some(token_id.to_owned()),
                format!("{side}[{i}]: {why}"),
            )),
        }
    }
    out
}

/// Decodes one book object. `Err` (a `Rejected("book")`) when the object has no usable token
/// id or is malformed; otherwise the book and the rejected levels.
pub fn decode_book(v: &Value) -> Result<(Book, Vec<Rejected>), Rejected> {
    let key = str_field(v, "asset_id").map(str::to_owned);
    let raw: RawBook =
        decode_record(v).map_err(|reason| Rejected::new("book", key.clone(), reason))?;
    let token_id = raw
        .asset_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejected::new("book", None, "no asset_id"))?;
    let mut rejected = Vec::new();
    let bids = levels(raw.bids, "bids", &token_id, &mut rejected);
    let asks = levels(raw.asks, "asks", &token_id, &mut rejected);
    let book = Book {
        condition_id: raw.market.filter(|s| !s.is_empty()),
        bids,
        asks,
        timestamp: raw.timestamp,
        hash: raw.hash.filter(|s| !s.is_empty()),
        tick_size: raw.tick_size,
        min_order_size: raw.min_order_size,
        last_trade_price: raw.last_trade_price,
        neg_risk: raw.neg_risk,
        token_id,
    };
    Ok((book, rejected))
}

/// Decoded books of one response, with everything that was dropped.
#[derive(Debug, Default)]
pub struct DecodedBooks {
    pub books: Vec<Book>,
    /// Whole books ("book") and single levels ("book level") that were dropped.
    pub rejected: Vec<Rejected>,
}

/// Decodes a `POST /books` response (a JSON array of books), each book on its own.
pub fn decode_books(body: &[u8]) -> Result<DecodedBooks, serde_json::Error> {
    let values: Vec<Value> = serde_json::from_slice(body)?;
    let mut out = DecodedBooks {
        books: Vec::with_capacity(values.len()),
        rejected: Vec::new(),
    };
    for v in &values {
        match decode_book(v) {
            Ok((book, rejected)) => {
                out.books.push(book);
                out.rejected.extend(rejected);
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
    pub tokens: Option<Vec<ClobToken>>,
    #[serde(deserialize_with = "d::string_array_opt")]
    pub tags: Option<Vec<String>>,
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
    let mut page = ClobMarketsPage {
        markets: Vec::with_capacity(raw.data.len()),
        rejected: Vec::new(),
        next_cursor: raw.next_cursor,
        limit: raw.limit,
        count: raw.count,
    };
    for v in &raw.data {
        match decode_record::<ClobMarket>(v) {
            Ok(m) => page.markets.push(m),
            Err(reason) => page.rejected.push(Rejected::new(
                "clob market",
                str_field(v, "condition_id").map(str::to_owned),
                reason,
            )),
        }
    }
    Ok(page)
}

/// Decodes a single CLOB market (`GET /markets/{condition_id}`).
pub fn decode_clob_market(body: &[u8]) -> Result<ClobMarket, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
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
        let (book, rejected) = decode_book(&v).unwrap();
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
    }

    #[test]
    fn given_a_books_array_with_a_bookless_entry_when_decoded_then_the_others_are_kept() {
        let body = json!([
            {"asset_id": "1", "bids": [], "asks": []},
            {"market": "0x2", "bids": []},
            {"asset_id": "3", "bids": "oops"},
        ])
        .to_string();
        let out = decode_books(body.as_bytes()).unwrap();
        assert_eq!(out.books.len(), 1);
        assert_eq!(out.rejected.len(), 2);
        assert_eq!(out.rejected[1].key.as_deref(), Some("3"));
        assert!(out.rejected.iter().all(|r| r.what == "book"));
    }
}
