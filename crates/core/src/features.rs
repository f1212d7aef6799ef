//! Order-book features. Depth is the sum of sizes at the N *best* levels of a side, whatever
//! order the input lists them in (Polymarket lists the best level LAST). An empty side is an
//! observation (depth 0, no best price); a book that was never fetched has no features at all,
//! and neither has a book whose levels cannot be trusted ([`Book::problem`](crate::Book::problem):
//! [`crate::Snapshot::build`] does not compute features for it).

use crate::book::{best_first, Book, BookSide, Level};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// The N of `bid_depth_N` / `ask_depth_N`.
pub const DEPTH_LEVELS: [usize; 4] = [5, 10, 20, 50];

/// Features of one order book.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BookFeatures {
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    /// Shares at the 5/10/20/50 best bid levels (all levels when fewer).
    pub bid_depth: [Decimal; 4],
    /// Shares at the 5/10/20/50 best ask levels (all levels when fewer).
    pub ask_depth: [Decimal; 4],
    pub bid_levels: u32,
    pub ask_levels: u32,
    /// (Σ bid size − Σ ask size) / (Σ bid size + Σ ask size) over all levels; `None` when the
    /// book holds no size at all.
    pub book_imbalance: Option<f64>,
    /// The largest bid level by size (ties: the higher price).
    pub bid_wall: Option<Level>,
    /// The largest ask level by size (ties: the lower price).
    pub ask_wall: Option<Level>,
}

impl BookFeatures {
    /// Computes the features of `book` without assuming any order of its levels. It does not
    /// look at [`Book::problem`]: callers skip books with one.
    pub fn of(book: &Book) -> BookFeatures {
        let bids = best_first(&book.bids, BookSide::Bid);
        let asks = best_first(&book.asks, BookSide::Ask);
        let (bid_depth, bid_total) = depths(&bids);
        let (ask_depth, ask_total) = depths(&asks);
        let total = bid_total + ask_total;
        let book_imbalance = if total.is_zero() {
            None
        } else {
            ((bid_total - ask_total) / total).to_f64()
        };
        BookFeatures {
            best_bid: bids.first().map(|l| l.price),
            best_ask: asks.first().map(|l| l.price),
            bid_depth,
            ask_depth,
            bid_levels: bids.len() as u32,
            ask_levels: asks.len() as u32,
            book_imbalance,
            // Levels are best first, so keeping the first of equal sizes keeps the better price.
            bid_wall: wall(&bids),
            ask_wall: wall(&asks),
        }
    }

    /// Spread between the best ask and the best bid, when both exist.
    pub fn spread(&self) -> Option<Decimal> {
        Some(self.best_ask? - self.best_bid?)
    }

    /// Midpoint of the best bid and ask, when both exist.
    pub fn mid_price(&self) -> Option<Decimal> {
        Some((self.best_ask? + self.best_bid?) / Decimal::TWO)
    }
}

/// Cumulative size at each of [`DEPTH_LEVELS`] and the side's total size.
fn depths(best_first: &[Level]) -> ([Decimal; 4], Decimal) {
    let mut out = [Decimal::ZERO; 4];
    let mut running = Decimal::ZERO;
    let mut next = 0;
    for (i, level) in best_first.iter().enumerate() {
        while next < DEPTH_LEVELS.len() && i == DEPTH_LEVELS[next] {
            out[next] = running;
            next += 1;
        }
        running += level.size;
    }
    for slot in out.iter_mut().skip(next) {
        *slot = running;
    }
    (out, running)
}

fn wall(best_first: &[Level]) -> Option<Level> {
    let mut wall: Option<Level> = None;
    for level in best_first {
        if wall.is_none_or(|w| level.size > w.size) {
            wall = Some(*level);
        }
    }
    wall
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }
    fn lvl(p: &str, s: &str) -> Level {
        Level {
            price: d(p),
            size: d(s),
        }
    }

    /// The recorded CLOB book in the fixtures: bids ascending, asks descending.
    fn recorded_book() -> Book {
        Book {
            bids: vec![
                lvl("0.01", "1000"),
                lvl("0.06", "200"),
                lvl("0.08", "120"),
                lvl("0.09", "294"),
                lvl("0.1", "125"),
            ],
            asks: vec![
                lvl("0.98", "5000"),
                lvl("0.5", "30"),
                lvl("0.47", "50"),
                lvl("0.46", "10"),
                lvl("0.38", "192.3"),
                lvl("0.2", "70"),
                lvl("0.14", "705"),
            ],
            ..Book::default()
        }
    }

    #[test]
    fn best_prices_are_the_last_listed_levels_of_a_polymarket_book() {
        let f = BookFeatures::of(&recorded_book());
        assert_eq!(f.best_bid, Some(d("0.1")));
        assert_eq!(f.best_ask, Some(d("0.14")));
        assert_eq!(f.spread(), Some(d("0.04")));
        assert_eq!(f.mid_price(), Some(d("0.12")));
    }

    #[test]
    fn depth_sums_the_n_best_levels() {
        let f = BookFeatures::of(&recorded_book());
        // 5 best bids are all 5 levels; 5 best asks: 0.14, 0.2, 0.38, 0.46, 0.47.
        assert_eq!(f.bid_depth[0], d("1739"));
        assert_eq!(
            f.ask_depth[0],
            d("705") + d("70") + d("192.3") + d("10") + d("50")
        );
        assert_eq!(
            f.ask_depth[1],
            d("6057.3"),
            "fewer than 10 levels: the whole side"
        );
        assert_eq!((f.bid_levels, f.ask_levels), (5, 7));
    }

    #[test]
    fn depth_is_the_same_whatever_the_input_order() {
        let book = recorded_book();
        let mut shuffled = book.clone();
        shuffled.bids.swap(0, 3);
        shuffled.asks.swap(1, 5);
        let mut reversed = book.clone();
        reversed.bids.reverse();
        reversed.asks.reverse();
        assert_eq!(BookFeatures::of(&book), BookFeatures::of(&shuffled));
        assert_eq!(BookFeatures::of(&book), BookFeatures::of(&reversed));
    }

    #[test]
    fn depth_at_five_of_a_deep_book_ignores_worse_levels() {
        // 60 bid levels 0.01..0.60 of size = cents; the 5 best are 0.60..0.56.
        let bids = (1..=60)
            .map(|c| lvl(&format!("0.{c:02}"), &c.to_string()))
            .collect();
        let f = BookFeatures::of(&Book {
            bids,
            ..Book::default()
        });
        assert_eq!(f.bid_depth, [d("290"), d("555"), d("1010"), d("1775")]);
        assert_eq!(f.best_ask, None);
        assert_eq!(f.book_imbalance, Some(1.0));
    }

    #[test]
    fn imbalance_and_walls() {
        let f = BookFeatures::of(&recorded_book());
        let (b, a) = (1739.0, 6057.3);
        assert!((f.book_imbalance.unwrap() - (b - a) / (b + a)).abs() < 1e-12);
        assert_eq!(f.bid_wall, Some(lvl("0.01", "1000")));
        assert_eq!(f.ask_wall, Some(lvl("0.98", "5000")));
    }

    #[test]
    fn wall_ties_go_to_the_better_price() {
        let book = Book {
            bids: vec![lvl("0.40", "100"), lvl("0.45", "100"), lvl("0.30", "50")],
            asks: vec![lvl("0.60", "80"), lvl("0.55", "80")],
            ..Book::default()
        };
        let f = BookFeatures::of(&book);
        assert_eq!(f.bid_wall, Some(lvl("0.45", "100")));
        assert_eq!(f.ask_wall, Some(lvl("0.55", "80")));
    }

    #[test]
    fn an_empty_book_has_no_prices_imbalance_or_walls() {
        let f = BookFeatures::of(&Book::default());
        assert_eq!(
            (f.best_bid, f.best_ask, f.book_imbalance, f.bid_wall),
            (None, None, None, None)
        );
        assert_eq!(f.bid_depth, [Decimal::ZERO; 4]);
    }
}
