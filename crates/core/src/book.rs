//! Order books. Polymarket lists bids ascending and asks descending (best LAST); nothing in
//! polytape relies on that: [`Book::normalized`] and the feature functions order levels
//! themselves.

use crate::money::{is_valid_price, is_valid_size};
use crate::Ts;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One price level: `size` shares resting at `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub price: Decimal,
    pub size: Decimal,
}

impl Level {
    /// Why this level cannot be used, if it cannot: a price outside [0, 1], a negative size, or
    /// a size too large to store (10^12 or more).
    pub fn invalid_reason(&self) -> Option<&'static str> {
        if !is_valid_price(self.price) {
            Some("price outside [0,1]")
        } else if self.size.is_sign_negative() && !self.size.is_zero() {
            Some("negative size")
        } else if !is_valid_size(self.size) {
            Some("size too large to store")
        } else {
            None
        }
    }
}

/// The order book of one token at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub token_id: String,
    pub condition_id: Option<String>,
    /// Bids in whatever order they came.
    pub bids: Vec<Level>,
    /// Asks in whatever order they came.
    pub asks: Vec<Level>,
    /// The server's timestamp of the book.
    pub timestamp: Option<Ts>,
    /// The server's book hash.
    pub hash: Option<String>,
    pub tick_size: Option<Decimal>,
    pub min_order_size: Option<Decimal>,
    pub last_trade_price: Option<Decimal>,
    pub neg_risk: Option<bool>,
}

impl Book {
    /// The book with its levels best first: bids by price descending, asks ascending.
    pub fn normalized(mut self) -> Book {
        self.bids = best_first(&self.bids, BookSide::Bid);
        self.asks = best_first(&self.asks, BookSide::Ask);
        self
    }
}

/// The side of a book a level rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookSide {
    Bid,
    Ask,
}

/// The levels of one side, best first (bids by price descending, asks ascending). Input
/// already in either order takes O(n) — Polymarket's order, best last, is the common case;
/// anything else is sorted (stably, so equal prices keep their order).
pub fn best_first(levels: &[Level], side: BookSide) -> Vec<Level> {
    let better = |a: &Level, b: &Level| match side {
        BookSide::Bid => a.price >= b.price,
        BookSide::Ask => a.price <= b.price,
    };
    let mut out = levels.to_vec();
    if levels.windows(2).all(|w| better(&w[0], &w[1])) {
        return out;
    }
    if levels.windows(2).all(|w| better(&w[1], &w[0])) {
        out.reverse();
        return out;
    }
    match side {
        BookSide::Bid => out.sort_by_key(|l| std::cmp::Reverse(l.price)),
        BookSide::Ask => out.sort_by_key(|l| l.price),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn lvl(p: &str, s: &str) -> Level {
        Level {
            price: Decimal::from_str(p).unwrap(),
            size: Decimal::from_str(s).unwrap(),
        }
    }

    #[test]
    fn polymarket_order_is_reversed_to_best_first() {
        // As served: bids ascending, asks descending (best last).
        let book = Book {
            bids: vec![lvl("0.01", "1000"), lvl("0.06", "200"), lvl("0.1", "125")],
            asks: vec![lvl("0.98", "5000"), lvl("0.5", "30"), lvl("0.14", "705")],
            ..Book::default()
        }
        .normalized();
        assert_eq!(book.bids[0], lvl("0.1", "125"));
        assert_eq!(book.asks[0], lvl("0.14", "705"));
    }

    #[test]
    fn levels_outside_the_price_range_or_with_negative_size_are_invalid() {
        assert_eq!(
            lvl("1.2", "5").invalid_reason(),
            Some("price outside [0,1]")
        );
        assert_eq!(lvl("0.5", "-5").invalid_reason(), Some("negative size"));
        assert_eq!(lvl("0.5", "0").invalid_reason(), None);
        assert_eq!(
            lvl("0.5", "1000000000000").invalid_reason(),
            Some("size too large to store")
        );
    }
}
