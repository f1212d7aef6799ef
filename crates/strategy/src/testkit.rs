//! Hand-built markets, views and outcomes for the unit tests.

use crate::view::{MarketView, PricePoint};
use crate::Ts;
use polytape_core::{Book, Level, Market, Outcome};
use rust_decimal::Decimal;
use std::str::FromStr;

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

pub fn lvl(p: &str, s: &str) -> Level {
    Level {
        price: d(p),
        size: d(s),
    }
}

/// An active market `cid` with tokens `{cid}-yes` and `{cid}-no`, ending at `end`.
pub fn market(cid: &str, end: &str) -> Market {
    Market {
        condition_id: cid.into(),
        question: format!("Will {cid} happen?"),
        slug: None,
        yes_token_id: format!("{cid}-yes"),
        no_token_id: format!("{cid}-no"),
        outcomes: ["Yes".into(), "No".into()],
        end_date: at(end),
        tier: None,
        active: true,
        result: Default::default(),
        closed_at: None,
        delisted: false,
        first_seen: at("2026-01-01T00:00:00Z"),
        category: None,
        neg_risk: false,
        volume_24h: None,
        event_id: None,
        fees_enabled: None,
        fee: None,
        version: 0,
    }
}

/// A YES book of one bid and one ask level of 1,000 shares each.
pub fn book(cid: &str, bid: &str, ask: &str) -> Book {
    Book {
        token_id: format!("{cid}-yes"),
        bids: vec![lvl(bid, "1000")],
        asks: vec![lvl(ask, "1000")],
        ..Book::default()
    }
}

/// The view of market `cid` (ending at `end`) at `t` with a YES book `bid`/`ask` (1,000 shares
/// each side) and, mirrored, the NO book.
pub fn view(cid: &str, t: &str, end: &str, bid: &str, ask: &str) -> MarketView {
    let m = market(cid, end);
    MarketView::build(at(t), &m, None, &[], Some(&book(cid, bid, ask)), None)
}

/// `v` with a YES mid history.
pub fn with_history(mut v: MarketView, points: &[(&str, &str)]) -> MarketView {
    v.history = points
        .iter()
        .map(|(ts, mid)| PricePoint {
            ts: at(ts),
            mid: d(mid),
        })
        .collect();
    v
}

/// A final outcome: `winner` index, or invalid.
pub fn resolved(winner: Option<usize>, invalid: bool) -> Outcome {
    Outcome {
        winner,
        invalid,
        payouts: Vec::new(),
        resolved_at: None,
        learned_at: at("2026-01-01T00:00:00Z"),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    }
}
