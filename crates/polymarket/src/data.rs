//! Data API (`GET /trades`, v1): public trade history for gap backfill.
//!
//! Unlike the CLOB, numbers here are JSON numbers and `timestamp` is epoch **seconds**
//! (trap 6). Rows are newest first, have no trade id (one transaction can settle several fills
//! sharing `transactionHash`), and by default contain only taker-side rows (`takerOnly=true`).
//!
//! Rows are decoded one at a time ([`decode_record`]): a row whose asset, side, price, size or
//! timestamp is unusable is rejected (it cannot be recorded as a trade); any other field whose
//! type drifted (`title`, `outcomeIndex`, `transactionHash`…) is read as absent and reported.

use crate::decode::{self as d, decode_records, size_problem, Record, Records};
use crate::error::{Drift, Rejected};
use crate::Ts;
use polytape_core::money::is_valid_price;
use polytape_core::{Side, Trade};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

/// One Data API trade row (camelCase), every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DataTrade {
    #[serde(rename = "proxyWallet", deserialize_with = "d::string_opt")]
    pub proxy_wallet: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub side: Option<String>,
    /// Token id.
    #[serde(deserialize_with = "d::string_opt")]
    pub asset: Option<String>,
    #[serde(rename = "conditionId", deserialize_with = "d::string_opt")]
    pub condition_id: Option<String>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub size: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub price: Option<Decimal>,
    /// Epoch seconds on the wire.
    #[serde(deserialize_with = "d::ts_secs_opt")]
    pub timestamp: Option<Ts>,
    #[serde(deserialize_with = "d::string_opt")]
    pub title: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub slug: Option<String>,
    #[serde(rename = "eventSlug", deserialize_with = "d::string_opt")]
    pub event_slug: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub outcome: Option<String>,
    #[serde(rename = "outcomeIndex", deserialize_with = "d::u32_opt")]
    pub outcome_index: Option<u32>,
    #[serde(rename = "transactionHash", deserialize_with = "d::string_opt")]
    pub transaction_hash: Option<String>,
}

impl Record for DataTrade {
    const WHAT: &'static str = "trade";
    const KEY: &'static [&'static str] = &["transactionHash", "asset"];
    /// What [`DataTrade::to_trade`] needs: without any of them the row is not a trade.
    const ESSENTIAL: &'static [&'static str] = &["asset", "side", "price", "size", "timestamp"];
}

/// Parses `"BUY"` / `"SELL"` (any case).
pub fn parse_side(s: &str) -> Option<Side> {
    if s.eq_ignore_ascii_case("BUY") {
        Some(Side::Buy)
    } else if s.eq_ignore_ascii_case("SELL") {
        Some(Side::Sell)
    } else {
        None
    }
}

/// Oldest plausible trade time: Polymarket did not exist before 2020, so anything earlier
/// is a unit mix-up (milliseconds read as seconds never get here; seconds read as ms would).
const EARLIEST_TRADE_SECS: i64 = 1_577_836_800; // 2020-01-01
/// Latest plausible trade time (year 2100).
const LATEST_TRADE_SECS: i64 = 4_102_444_800;

impl DataTrade {
    /// The trade as polytape records it. Needs asset, side, price in [0, 1], a non-negative
    /// size that fits DECIMAL(18,6) (below 10^12) and a plausible timestamp.
    pub fn to_trade(&self) -> Result<Trade, String> {
        let token_id = self
            .asset
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("no asset")?;
        let side_text = self.side.as_deref().ok_or("no side")?;
        let side = parse_side(side_text).ok_or_else(|| format!("unknown side {side_text:?}"))?;
        let price = self.price.ok_or("no price")?;
        if !is_valid_price(price) {
            return Err(format!("price {price} outside [0,1]"));
        }
        let size = self.size.ok_or("no size")?;
        if let Some(why) = size_problem(size) {
            return Err(format!("{why} {size}"));
        }
        let ts = self.timestamp.ok_or("no timestamp")?;
        let secs = ts.timestamp();
        if !(EARLIEST_TRADE_SECS..LATEST_TRADE_SECS).contains(&secs) {
            return Err(format!("implausible timestamp {secs} s"));
        }
        Ok(Trade {
            token_id,
            ts,
            price,
            size,
            side,
        })
    }
}

/// Decoded trade rows of one response, with the rows that were dropped and the fields read as
/// absent.
#[derive(Debug, Default)]
pub struct DecodedTrades {
    pub trades: Vec<DataTrade>,
    pub rejected: Vec<Rejected>,
    pub drifts: Vec<Drift>,
}

/// Decodes a `GET /trades` response (a JSON array), each row on its own. Rows that decode but
/// cannot become a [`Trade`] are kept here; [`DataTrade::to_trade`] decides.
pub fn decode_trades(body: &[u8]) -> Result<DecodedTrades, serde_json::Error> {
    let values: Vec<Value> = serde_json::from_slice(body)?;
    let Records {
        items,
        rejected,
        drifts,
    } = decode_records::<DataTrade>(&values);
    Ok(DecodedTrades {
        trades: items,
        rejected,
        drifts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> DataTrade {
        crate::decode::decode_record::<DataTrade>(&v).unwrap().0
    }

    #[test]
    fn given_a_row_when_converted_then_seconds_are_seconds_and_bad_rows_say_why() {
        let t = row(json!({"asset": "1", "side": "BUY", "price": 0.52, "size": 94.37, "timestamp": 1729000120}))
            .to_trade()
            .unwrap();
        assert_eq!(t.ts, "2024-10-15T13:48:40Z".parse::<Ts>().unwrap());
        assert_eq!(t.side, Side::Buy);
        let ms = row(
            json!({"asset": "1", "side": "SELL", "price": 0.5, "size": 1, "timestamp": 1729000120000u64}),
        );
        assert!(ms.to_trade().unwrap_err().contains("implausible"));
        let bad = row(
            json!({"asset": "1", "side": "SELL", "price": 1.5, "size": 1, "timestamp": 1729000120}),
        );
        assert!(bad.to_trade().unwrap_err().contains("outside [0,1]"));
        let side = row(
            json!({"asset": "1", "side": "HOLD", "price": 0.5, "size": 1, "timestamp": 1729000120}),
        );
        assert!(side.to_trade().unwrap_err().contains("unknown side"));
        let huge = row(
            json!({"asset": "1", "side": "BUY", "price": 0.5, "size": 1e12, "timestamp": 1729000120}),
        );
        assert!(
            huge.to_trade().unwrap_err().contains("too large"),
            "a size DECIMAL(18,6) cannot hold is refused"
        );
    }

    #[test]
    fn given_rows_with_drifted_and_unusable_fields_when_decoded_then_only_unusable_ones_drop() {
        let body = json!([
            {"asset": "1", "side": "BUY", "price": 0.5, "size": 2, "timestamp": 1729000120,
             "outcomeIndex": "first", "title": {"x": 1}, "transactionHash": "0xa"},
            {"asset": "1", "side": "BUY", "price": {"oops": 1}, "size": 2,
             "timestamp": 1729000120, "transactionHash": "0xb"},
            {"asset": "1", "side": "SELL", "price": 0.5, "size": 2, "timestamp": "soon",
             "transactionHash": "0xc"},
        ])
        .to_string();
        let out = decode_trades(body.as_bytes()).unwrap();
        assert_eq!(out.trades.len(), 1);
        let t = out.trades[0].to_trade().unwrap();
        assert_eq!((t.price, t.size), (Decimal::new(5, 1), Decimal::from(2)));
        assert_eq!(
            (out.trades[0].outcome_index, out.trades[0].title.as_deref()),
            (None, None)
        );
        let mut drifts: Vec<String> = out.drifts.iter().map(Drift::stat_key).collect();
        drifts.sort();
        assert_eq!(drifts, ["trade.outcomeIndex", "trade.title"]);
        let rejected: Vec<(Option<&str>, &str)> = out
            .rejected
            .iter()
            .map(|r| {
                (
                    r.key.as_deref(),
                    r.reason.split(':').next().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            rejected,
            [
                (Some("0xb"), "field `price`"),
                (Some("0xc"), "field `timestamp`")
            ]
        );
    }
}
