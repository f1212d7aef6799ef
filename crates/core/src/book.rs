//! Order books. Polymarket lists bids ascending and asks descending (best LAST); nothing in
//! polytape relies on that: [`Book::normalized`] and the feature functions order levels
//! themselves.
//!
//! A book can be served broken: a level with an impossible price or size, a side that is not a
//! list, or bids above asks. The decoder keeps such a book (its server values are still
//! useful) but says why its levels cannot be trusted in [`Book::problem`]; a depth computed
//! over what is left would be a wrong number, so nothing derives book features from it.

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
    /// Why this book's levels cannot be trusted, when they cannot: a level was left out
    /// because it was impossible (price outside [0, 1], negative or unstorable size, not a
    /// number, not an object), a side was not a list, or the book is crossed (best bid ≥ best
    /// ask). `None` for a sound book. A book with a problem gives no book features.
    pub problem: Option<String>,
}

impl Book {
    /// The highest bid price, whatever the order of the levels.
    pub fn best_bid(&self) -> Option<Decimal> {
        self.bids.iter().map(|l| l.price).max()
    }

    /// The lowest ask price, whatever the order of the levels.
    pub fn best_ask(&self) -> Option<Decimal> {
        self.asks.iter().map(|l| l.price).min()
    }

    /// `(best bid, best ask)` when the book is crossed: the best bid is at or above the best
    /// ask, which a live order book cannot be (the orders would have matched).
    pub fn crossed(&self) -> Option<(Decimal, Decimal)> {
        let (bid, ask) = (self.best_bid()?, self.best_ask()?);
        (bid >= ask).then_some((bid, ask))
    }

    /// True when the levels can be used: no [`Book::problem`].
    pub fn is_sound(&self) -> bool {
        self.problem.is_none()
    }

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
    fn given_bids_at_or_above_the_best_ask_in_any_order_then_the_book_is_crossed() {
        let book = |bids: Vec<Level>, asks: Vec<Level>| Book {
            bids,
            asks,
            ..Book::default()
        };
        // Polymarket order (best last) and shuffled give the same answer.
        let sound = book(
            vec![lvl("0.1", "1"), lvl("0.44", "1"), lvl("0.2", "1")],
            vec![lvl("0.9", "1"), lvl("0.45", "1"), lvl("0.6", "1")],
        );
        assert_eq!(sound.crossed(), None);
        assert_eq!(
            (sound.best_bid(), sound.best_ask()),
            (
                Some(Decimal::from_str("0.44").unwrap()),
                Some(Decimal::from_str("0.45").unwrap())
            )
        );
        let crossed = book(
            vec![lvl("0.5", "1"), lvl("0.1", "1")],
            vec![lvl("0.45", "1"), lvl("0.9", "1")],
        );
        assert_eq!(
            crossed.crossed(),
            Some((
                Decimal::from_str("0.5").unwrap(),
                Decimal::from_str("0.45").unwrap()
            ))
        );
        let locked = book(vec![lvl("0.45", "1")], vec![lvl("0.45", "1")]);
        assert!(locked.crossed().is_some(), "bid = ask is crossed too");
        assert_eq!(
            book(vec![lvl("0.5", "1")], vec![]).crossed(),
            None,
            "one side only"
        );
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
