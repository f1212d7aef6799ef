//! The hot path's decoder: a frame in Polymarket's usual shape, read in one pass with borrowed
//! strings into just the fields the feed uses. Anything out of the ordinary — a value of
//! another type, an escaped string, a missing field, a number that does not parse, a price
//! outside [0, 1], a legacy `price_change` — makes it give up on the whole frame, and the feed
//! decodes that frame with the tolerant decoder instead (`polytape_polymarket::ws`), which
//! knows what to keep and what to count. So the fast path never decides anything the tolerant
//! one would decide differently; it only skips the work for frames that need none of it.

use polytape_core::money::is_valid_price;
use polytape_polymarket::data::parse_side;
use polytape_polymarket::decode::{parse_decimal, size_problem, ts_from_ms};
use polytape_polymarket::ws::LastTradePrice;
use rust_decimal::Decimal;
use serde::Deserialize;

/// One event of a frame, as the feed uses it.
#[derive(Debug)]
pub(crate) enum Fast<'a> {
    Trade(LastTradePrice),
    /// A `book`: the token's top of book from its levels.
    Book {
        asset: &'a str,
        bid: Option<Decimal>,
        ask: Option<Decimal>,
    },
    /// A `price_change`: each change's token and the best prices it carries.
    Changes(Vec<(&'a str, Option<Decimal>, Option<Decimal>)>),
    /// A `best_bid_ask`.
    BestBidAsk {
        asset: &'a str,
        bid: Option<Decimal>,
        ask: Option<Decimal>,
    },
    /// An `event_type` the feed does not know.
    Unknown,
    /// Known, and not used by the feed.
    Other,
}

#[derive(Deserialize)]
struct Ev<'a> {
    #[serde(borrow, default)]
    event_type: Option<&'a str>,
    #[serde(borrow, default)]
    asset_id: Option<&'a str>,
    #[serde(borrow, default)]
    market: Option<&'a str>,
    #[serde(borrow, default)]
    price: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    #[serde(borrow, default)]
    size: Option<&'a str>,
    #[serde(borrow, default)]
    fee_rate_bps: Option<&'a str>,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
    #[serde(borrow, default)]
    transaction_hash: Option<&'a str>,
    #[serde(borrow, default)]
    best_bid: Option<&'a str>,
    #[serde(borrow, default)]
    best_ask: Option<&'a str>,
    #[serde(borrow, default)]
    bids: Option<Vec<Level<'a>>>,
    #[serde(borrow, default)]
    asks: Option<Vec<Level<'a>>>,
    #[serde(borrow, default)]
    price_changes: Option<Vec<Change<'a>>>,
    /// Legacy `price_change` shapes: left to the tolerant decoder.
    #[serde(default)]
    changes: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Level<'a> {
    #[serde(borrow)]
    price: &'a str,
    #[serde(borrow)]
    size: &'a str,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow)]
    asset_id: &'a str,
    #[serde(borrow)]
    price: &'a str,
    #[serde(borrow)]
    size: &'a str,
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow, default)]
    best_bid: Option<&'a str>,
    #[serde(borrow, default)]
    best_ask: Option<&'a str>,
}

/// The events of `text`, or `None` when the frame needs the tolerant decoder (or is `PONG`,
/// blank, or not JSON: the tolerant path says which).
pub(crate) fn parse(text: &str) -> Option<Vec<Fast<'_>>> {
    let t = text.trim_start();
    let events = match t.as_bytes().first()? {
        b'[' => serde_json::from_str::<Vec<Ev<'_>>>(t).ok()?,
        b'{' => vec![serde_json::from_str::<Ev<'_>>(t).ok()?],
        _ => return None,
    };
    events.into_iter().map(event).collect()
}

fn event(e: Ev<'_>) -> Option<Fast<'_>> {
    Some(match e.event_type {
        Some("last_trade_price") => Fast::Trade(trade(&e)?),
        Some("book") => {
            let asset = non_empty(e.asset_id)?;
            let bid = best(e.bids.as_deref()?, true)?;
            let ask = best(e.asks.as_deref()?, false)?;
            Fast::Book { asset, bid, ask }
        }
        Some("price_change") => {
            if e.changes.is_some() {
                return None;
            }
            let mut out = Vec::new();
            for c in e.price_changes? {
                let asset = non_empty(Some(c.asset_id))?;
                let price = parse_decimal(c.price).ok()?;
                let size = parse_decimal(c.size).ok()?;
                parse_side(c.side)?;
                if !is_valid_price(price) || size_problem(size).is_some() {
                    return None;
                }
                out.push((asset, opt_decimal(c.best_bid)?, opt_decimal(c.best_ask)?));
            }
            Fast::Changes(out)
        }
        Some("best_bid_ask") => {
            let asset = non_empty(e.asset_id)?;
            let bid = parse_decimal(e.best_bid?).ok()?;
            let ask = parse_decimal(e.best_ask?).ok()?;
            if !is_valid_price(bid) || !is_valid_price(ask) {
                return None;
            }
            Fast::BestBidAsk {
                asset,
                bid: Some(bid),
                ask: Some(ask),
            }
        }
        Some("tick_size_change" | "new_market" | "market_resolved") => Fast::Other,
        // No `event_type` at all is for the tolerant decoder to count.
        None => return None,
        Some(_) => Fast::Unknown,
    })
}

fn trade(e: &Ev<'_>) -> Option<LastTradePrice> {
    let asset_id = non_empty(e.asset_id)?;
    let price = parse_decimal(e.price?).ok()?;
    if !is_valid_price(price) {
        return None;
    }
    let side = parse_side(non_empty(e.side)?)?;
    let size = match e.size {
        None => None,
        Some(s) => {
            let size = parse_decimal(s).ok()?;
            if size_problem(size).is_some() {
                return None;
            }
            Some(size)
        }
    };
    let ts = e.timestamp?;
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let timestamp = ts_from_ms(ts.parse().ok()?)?;
    let fee_rate_bps = opt_decimal(e.fee_rate_bps)?;
    Some(LastTradePrice {
        asset_id: asset_id.to_string(),
        market: e.market.filter(|m| !m.is_empty()).map(str::to_string),
        price,
        side: Some(side),
        size,
        fee_rate_bps,
        timestamp: Some(timestamp),
        transaction_hash: e
            .transaction_hash
            .filter(|h| !h.is_empty())
            .map(str::to_string),
    })
}

/// The best price of one side (the highest bid or lowest ask) over levels of a size above
/// 0; `None` inside when no level has one, and `None` outside when a level is not clean.
fn best(levels: &[Level<'_>], bids: bool) -> Option<Option<Decimal>> {
    let mut best: Option<Decimal> = None;
    for l in levels {
        let price = parse_decimal(l.price).ok()?;
        let size = parse_decimal(l.size).ok()?;
        if !is_valid_price(price) || size_problem(size).is_some() {
            return None;
        }
        if size.is_zero() {
            continue;
        }
        best = Some(match best {
            None => price,
            Some(b) if bids => b.max(price),
            Some(b) => b.min(price),
        });
    }
    Some(best)
}

/// An optional decimal: absent is `Some(None)`; present and clean `Some(Some(d))`; anything
/// else (empty, not a number) `None`, for the tolerant decoder.
fn opt_decimal(v: Option<&str>) -> Option<Option<Decimal>> {
    match v {
        None => Some(None),
        Some(s) => parse_decimal(s).ok().map(Some),
    }
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}
