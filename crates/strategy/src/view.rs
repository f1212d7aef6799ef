//! What a strategy may see of one market at decision time `t`.
//!
//! A [`MarketView`] holds only what was observed at or before `t`: [`MarketView::build`] drops
//! snapshot rows and books stamped after `t`, so neither the live executor nor the backtester
//! can leak the future into a decision.
//!
//! polytape records one book per market, the first outcome's (YES); the NO book is its mirror
//! ([`mirror`]): on Polymarket's CLOB a buy of NO at `1 − p` matches a YES bid at `p` (the
//! exchange mints the pair), so the NO asks are the YES bids at `1 − p` and vice versa.

use crate::fill::FeeModel;
use crate::signal::Outcome;
use crate::Ts;
use polytape_core::book::{best_first, BookSide};
use polytape_core::{Book, Level, Market, Snapshot};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Best bid, best ask and mid of one outcome token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    /// `(bid + ask) / 2`, else the snapshot's `price` (Gamma's outcome price).
    pub mid: Option<Decimal>,
}

impl Quote {
    /// The other outcome's quote: prices `1 − p`, bid and ask swapped.
    pub fn complement(&self) -> Quote {
        let c = |p: Option<Decimal>| p.map(|p| Decimal::ONE - p);
        Quote {
            bid: c(self.ask),
            ask: c(self.bid),
            mid: c(self.mid),
        }
    }
}

/// One observation of the YES mid, for lookbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePoint {
    pub ts: Ts,
    pub mid: Decimal,
}

/// One market as seen at time `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketView {
    /// Decision time: everything below was observed at or before it.
    pub t: Ts,
    pub condition_id: String,
    pub question: String,
    /// The Gamma event the market belongs to, which groups markets for `term_structure`: the
    /// caller passes the market's ([`Market::event_id`]); `None` leaves the market out of every
    /// grouping.
    pub event_id: Option<String>,
    /// The market's own taker fee ([`FeeModel::of_market`]); `None` when polytape does not
    /// know it, and the broker's fallback (`execution.taker_fee`) applies.
    #[serde(default)]
    pub fee: Option<FeeModel>,
    pub slug: Option<String>,
    pub end_date: Ts,
    pub yes_token_id: String,
    pub no_token_id: String,
    /// Still trading as far as polytape knows at `t`.
    pub active: bool,
    pub yes: Quote,
    /// From the NO book when there is one, else the complement of [`MarketView::yes`].
    pub no: Quote,
    /// YES mids at or before `t`, oldest first.
    pub history: Vec<PricePoint>,
    /// The YES book at or before `t`, levels best first.
    pub yes_book: Option<Book>,
    /// The NO book, levels best first: as observed, else the mirror of the YES book.
    pub no_book: Option<Book>,
    /// The final outcome, when it was known at `t`; positions in the market settle on it.
    pub resolution: Option<polytape_core::Outcome>,
}

impl MarketView {
    /// The view of `market` at `t` from its snapshot rows (any order; rows after `t` and rows
    /// of other markets are ignored), its YES book and, when recorded, its NO book (books
    /// stamped after `t` are ignored). The resolution is kept only once learnt at or before `t`.
    pub fn build(
        t: Ts,
        market: &Market,
        event_id: Option<String>,
        snapshots: &[Snapshot],
        yes_book: Option<&Book>,
        no_book: Option<&Book>,
    ) -> MarketView {
        let mut rows: Vec<&Snapshot> = snapshots
            .iter()
            .filter(|s| s.condition_id == market.condition_id && s.snapshot_ts <= t)
            .collect();
        rows.sort_by_key(|s| s.snapshot_ts);
        let history = rows
            .iter()
            .filter_map(|s| {
                Some(PricePoint {
                    ts: s.snapshot_ts,
                    mid: s.mid_price.or(s.price)?,
                })
            })
            .collect();
        let in_time = |b: &&Book| b.is_sound() && b.timestamp.is_none_or(|ts| ts <= t);
        let yes_book = yes_book.filter(in_time).map(|b| b.clone().normalized());
        let no_book = no_book
            .filter(in_time)
            .map(|b| b.clone().normalized())
            .or_else(|| yes_book.as_ref().map(|b| mirror(b, &market.no_token_id)));
        let yes = match (yes_book.as_ref(), rows.last()) {
            (Some(b), _) => quote_of(b),
            (None, Some(s)) => Quote {
                bid: s.best_bid,
                ask: s.best_ask,
                mid: s.mid_price.or(s.price),
            },
            (None, None) => Quote::default(),
        };
        let no = no_book
            .as_ref()
            .map(quote_of)
            .unwrap_or_else(|| yes.complement());
        let resolution = market.outcome().filter(|o| o.learned_at <= t).cloned();
        MarketView {
            t,
            condition_id: market.condition_id.clone(),
            question: market.question.clone(),
            event_id,
            fee: FeeModel::of_market(market),
            slug: market.slug.clone(),
            end_date: market.end_date,
            yes_token_id: market.yes_token_id.clone(),
            no_token_id: market.no_token_id.clone(),
            active: market.active && t < market.end_date,
            yes,
            no,
            history,
            yes_book,
            no_book,
            resolution,
        }
    }

    /// Hours from `t` to the end date (negative once past).
    pub fn hours_to_close(&self) -> Decimal {
        Decimal::from((self.end_date - self.t).num_seconds()) / Decimal::from(3600)
    }

    /// The quote of one outcome.
    pub fn quote(&self, outcome: Outcome) -> Quote {
        match outcome {
            Outcome::Yes => self.yes,
            Outcome::No => self.no,
        }
    }

    /// The book of one outcome, levels best first.
    pub fn book(&self, outcome: Outcome) -> Option<&Book> {
        match outcome {
            Outcome::Yes => self.yes_book.as_ref(),
            Outcome::No => self.no_book.as_ref(),
        }
    }

    /// The token id of one outcome.
    pub fn token_id(&self, outcome: Outcome) -> &str {
        match outcome {
            Outcome::Yes => &self.yes_token_id,
            Outcome::No => &self.no_token_id,
        }
    }

    /// Which outcome `token_id` is, if it is one of this market's.
    pub fn outcome_of(&self, token_id: &str) -> Option<Outcome> {
        if token_id == self.yes_token_id {
            Some(Outcome::Yes)
        } else if token_id == self.no_token_id {
            Some(Outcome::No)
        } else {
            None
        }
    }

    /// The YES mid as it was at `at`: the latest history point at or before `at`.
    pub fn mid_at(&self, at: Ts) -> Option<PricePoint> {
        self.history.iter().rev().find(|p| p.ts <= at).copied()
    }
}

fn quote_of(b: &Book) -> Quote {
    let (bid, ask) = (b.best_bid(), b.best_ask());
    Quote {
        bid,
        ask,
        mid: bid.zip(ask).map(|(b, a)| (b + a) / Decimal::TWO),
    }
}

/// The other outcome's book: bids become asks at `1 − p` and asks become bids, best first.
pub fn mirror(book: &Book, token_id: &str) -> Book {
    let flip = |levels: &[Level]| -> Vec<Level> {
        levels
            .iter()
            .map(|l| Level {
                price: Decimal::ONE - l.price,
                size: l.size,
            })
            .collect()
    };
    Book {
        token_id: token_id.to_string(),
        condition_id: book.condition_id.clone(),
        bids: best_first(&flip(&book.asks), BookSide::Bid),
        asks: best_first(&flip(&book.bids), BookSide::Ask),
        timestamp: book.timestamp,
        hash: None,
        tick_size: book.tick_size,
        min_order_size: book.min_order_size,
        last_trade_price: book.last_trade_price.map(|p| Decimal::ONE - p),
        neg_risk: book.neg_risk,
        problem: book.problem.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, d, lvl, market};

    fn row(ts: &str, bid: &str, ask: &str) -> Snapshot {
        let (b, a) = (d(bid), d(ask));
        Snapshot {
            snapshot_ts: at(ts),
            condition_id: "0xm".into(),
            best_bid: Some(b),
            best_ask: Some(a),
            mid_price: Some((b + a) / Decimal::TWO),
            ..Snapshot::default()
        }
    }

    #[test]
    fn given_a_row_after_t_when_built_then_it_is_not_seen() {
        let m = market("0xm", "2026-11-21T00:00:00Z");
        let rows = vec![
            row("2026-11-20T12:00:00Z", "0.40", "0.42"),
            // planted future row: a decision at 12:30 must not see it
            row("2026-11-20T13:00:00Z", "0.90", "0.92"),
            row("2026-11-20T11:00:00Z", "0.30", "0.32"),
        ];
        let v = MarketView::build(at("2026-11-20T12:30:00Z"), &m, None, &rows, None, None);
        assert_eq!(v.yes.mid, Some(d("0.41")));
        assert_eq!(v.no.ask, Some(d("0.60")), "NO ask = 1 − YES bid");
        assert_eq!(
            v.history.iter().map(|p| p.mid).collect::<Vec<_>>(),
            vec![d("0.31"), d("0.41")],
            "oldest first, future row left out"
        );
        assert_eq!(v.hours_to_close(), d("11.5"));
    }

    #[test]
    fn given_a_yes_book_then_the_no_book_is_its_mirror_best_first() {
        let m = market("0xm", "2026-11-21T00:00:00Z");
        let yes = Book {
            token_id: "0xm-yes".into(),
            bids: vec![lvl("0.38", "100"), lvl("0.40", "50")],
            asks: vec![lvl("0.45", "70"), lvl("0.42", "30")],
            ..Book::default()
        };
        let v = MarketView::build(at("2026-11-20T12:00:00Z"), &m, None, &[], Some(&yes), None);
        let no = v.no_book.as_ref().unwrap();
        assert_eq!(no.token_id, "0xm-no");
        assert_eq!(no.asks, vec![lvl("0.60", "50"), lvl("0.62", "100")]);
        assert_eq!(no.bids, vec![lvl("0.58", "30"), lvl("0.55", "70")]);
        assert_eq!(
            (v.no.bid, v.no.ask, v.no.mid),
            (Some(d("0.58")), Some(d("0.60")), Some(d("0.59")))
        );
        assert_eq!(v.yes.mid, Some(d("0.41")));
    }

    #[test]
    fn given_a_book_stamped_after_t_then_it_is_not_used() {
        let m = market("0xm", "2026-11-21T00:00:00Z");
        let later = Book {
            token_id: "0xm-yes".into(),
            asks: vec![lvl("0.5", "1")],
            timestamp: Some(at("2026-11-20T12:00:01Z")),
            ..Book::default()
        };
        let v = MarketView::build(
            at("2026-11-20T12:00:00Z"),
            &m,
            None,
            &[],
            Some(&later),
            None,
        );
        assert_eq!((v.yes_book, v.no_book, v.yes.ask), (None, None, None));
    }
}
