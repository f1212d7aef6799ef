//! The `snapshots` row (one per market per tick) and the `orderbooks` row (the full book of a
//! T2+ market at a tick). Field names are the Parquet column names; `None` is NULL.

use crate::book::{Book, Level};
use crate::features::BookFeatures;
use crate::flow::TradeFlow;
use crate::market::{Market, MarketQuote};
use crate::schedule::TickId;
use crate::tier::Tier;
use crate::Ts;
use chrono::{Datelike, Timelike};
use rust_decimal::Decimal;

/// One row of the `snapshots` table. See DESIGN.md for the meaning of each column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    // keys
    pub snapshot_ts: Ts,
    pub fetched_at: Ts,
    pub condition_id: String,
    pub token_id: String,
    pub tier: Option<Tier>,
    pub interval_s: u32,
    // price
    pub price: Option<Decimal>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    pub spread: Option<Decimal>,
    pub last_trade_price: Option<Decimal>,
    pub mid_price: Option<Decimal>,
    // momentum
    pub price_change_1h: Option<Decimal>,
    pub price_change_1d: Option<Decimal>,
    pub price_change_1w: Option<Decimal>,
    pub price_change_1m: Option<Decimal>,
    // volume
    pub volume_total: Option<Decimal>,
    pub volume_24h: Option<Decimal>,
    pub volume_1w: Option<Decimal>,
    pub liquidity: Option<Decimal>,
    // depth (T2+)
    pub bid_depth_5: Option<Decimal>,
    pub bid_depth_10: Option<Decimal>,
    pub bid_depth_20: Option<Decimal>,
    pub bid_depth_50: Option<Decimal>,
    pub ask_depth_5: Option<Decimal>,
    pub ask_depth_10: Option<Decimal>,
    pub ask_depth_20: Option<Decimal>,
    pub ask_depth_50: Option<Decimal>,
    // book
    pub bid_levels: Option<u32>,
    pub ask_levels: Option<u32>,
    pub book_imbalance: Option<f64>,
    pub bid_wall_price: Option<Decimal>,
    pub bid_wall_size: Option<Decimal>,
    pub ask_wall_price: Option<Decimal>,
    pub ask_wall_size: Option<Decimal>,
    pub tick_size: Option<Decimal>,
    // trade flow, last hour (WebSocket markets)
    pub trade_count_1h: Option<u32>,
    pub buy_count_1h: Option<u32>,
    pub sell_count_1h: Option<u32>,
    pub volume_1h: Option<Decimal>,
    pub buy_volume_1h: Option<Decimal>,
    pub sell_volume_1h: Option<Decimal>,
    pub avg_trade_size_1h: Option<Decimal>,
    pub max_trade_size_1h: Option<Decimal>,
    pub vwap_1h: Option<Decimal>,
    // whales, last hour
    pub whale_count_1h: Option<u32>,
    pub whale_volume_1h: Option<Decimal>,
    pub whale_buy_volume_1h: Option<Decimal>,
    pub whale_sell_volume_1h: Option<Decimal>,
    pub whale_net_flow_1h: Option<Decimal>,
    pub whale_buy_ratio_1h: Option<f64>,
    pub time_since_whale_s: Option<i64>,
    pub pct_volume_from_whales: Option<f64>,
    // context
    pub hours_to_close: Option<f64>,
    /// ISO day of week of `snapshot_ts` (UTC): 1 = Monday … 7 = Sunday.
    pub day_of_week: Option<u8>,
    /// Hour of `snapshot_ts` (UTC), 0–23.
    pub hour_of_day: Option<u8>,
    pub category: Option<String>,
    pub neg_risk: Option<bool>,
    pub competitive: Option<f64>,
}

/// What one tick observed of one market; every part may be missing.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub tick: TickId,
    pub fetched_at: Ts,
    pub market: &'a Market,
    /// Gamma's values, when the market came back from Gamma.
    pub quote: Option<&'a MarketQuote>,
    /// The first outcome's book, on tiers with order books, when it was served. A book with a
    /// [`Book::problem`] gives no book features (see [`Snapshot::build`]).
    pub book: Option<&'a Book>,
    /// Last-hour flow, only where the live feed covered the whole hour.
    pub flow: Option<&'a TradeFlow>,
}

impl Snapshot {
    /// Builds the row. Book-derived prices win over Gamma's when a book was observed; a value
    /// neither source gave stays NULL.
    ///
    /// A book whose levels cannot be trusted ([`Book::problem`]: a level was left out as
    /// impossible, or the book is crossed) gives no book features: depth, levels, imbalance
    /// and walls are NULL, and best bid, best ask and spread come from Gamma exactly as when no
    /// book was observed — a depth with a level missing is a wrong number, not a NULL. Its
    /// tick size and last trade price, checked on their own when decoded, are still used.
    pub fn build(obs: Observation<'_>) -> Snapshot {
        let Observation {
            tick,
            fetched_at,
            market,
            quote,
            book,
            flow,
        } = obs;
        let q = quote.cloned().unwrap_or_default();
        let features = book.filter(|b| b.is_sound()).map(BookFeatures::of);
        let f = features.as_ref();
        let snapshot_ts = tick.tick_ts;
        let end_date = q.end_date.unwrap_or(market.end_date);

        let (best_bid, best_ask, spread) = match f {
            Some(f) => (f.best_bid, f.best_ask, f.spread()),
            None => (
                q.best_bid,
                q.best_ask,
                q.spread.or_else(|| Some(q.best_ask? - q.best_bid?)),
            ),
        };
        let mid_price = best_bid.zip(best_ask).map(|(b, a)| (b + a) / Decimal::TWO);
        let bid = |i: usize| f.map(|f| f.bid_depth[i]);
        let ask = |i: usize| f.map(|f| f.ask_depth[i]);

        let mut row = Snapshot {
            snapshot_ts,
            fetched_at,
            condition_id: market.condition_id.clone(),
            token_id: market.yes_token_id.clone(),
            tier: Some(tick.tier),
            interval_s: tick.tier.interval_s(),
            price: q.price,
            best_bid,
            best_ask,
            spread,
            last_trade_price: book.and_then(|b| b.last_trade_price).or(q.last_trade_price),
            mid_price: None,
            price_change_1h: q.price_change_1h,
            price_change_1d: q.price_change_1d,
            price_change_1w: q.price_change_1w,
            price_change_1m: q.price_change_1m,
            volume_total: q.volume_total,
            volume_24h: q.volume_24h,
            volume_1w: q.volume_1w,
            liquidity: q.liquidity,
            bid_depth_5: bid(0),
            bid_depth_10: bid(1),
            bid_depth_20: bid(2),
            bid_depth_50: bid(3),
            ask_depth_5: ask(0),
            ask_depth_10: ask(1),
            ask_depth_20: ask(2),
            ask_depth_50: ask(3),
            bid_levels: f.map(|f| f.bid_levels),
            ask_levels: f.map(|f| f.ask_levels),
            book_imbalance: f.and_then(|f| f.book_imbalance),
            bid_wall_price: f.and_then(|f| f.bid_wall).map(|l| l.price),
            bid_wall_size: f.and_then(|f| f.bid_wall).map(|l| l.size),
            ask_wall_price: f.and_then(|f| f.ask_wall).map(|l| l.price),
            ask_wall_size: f.and_then(|f| f.ask_wall).map(|l| l.size),
            tick_size: book.and_then(|b| b.tick_size).or(q.tick_size),
            hours_to_close: Some(crate::tier::hours_between(snapshot_ts, end_date)),
            day_of_week: Some(snapshot_ts.weekday().number_from_monday() as u8),
            hour_of_day: Some(snapshot_ts.hour() as u8),
            category: q.category.clone().or_else(|| market.category.clone()),
            neg_risk: q.neg_risk,
            competitive: q.competitive,
            ..Snapshot::default()
        };
        row.mid_price = mid_price;
        if let Some(flow) = flow {
            row.set_flow(flow);
        }
        row
    }

    fn set_flow(&mut self, f: &TradeFlow) {
        self.trade_count_1h = Some(f.trade_count_1h);
        self.buy_count_1h = Some(f.buy_count_1h);
        self.sell_count_1h = Some(f.sell_count_1h);
        self.volume_1h = Some(f.volume_1h);
        self.buy_volume_1h = Some(f.buy_volume_1h);
        self.sell_volume_1h = Some(f.sell_volume_1h);
        self.avg_trade_size_1h = f.avg_trade_size_1h;
        self.max_trade_size_1h = f.max_trade_size_1h;
        self.vwap_1h = f.vwap_1h;
        self.whale_count_1h = Some(f.whale_count_1h);
        self.whale_volume_1h = Some(f.whale_volume_1h);
        self.whale_buy_volume_1h = Some(f.whale_buy_volume_1h);
        self.whale_sell_volume_1h = Some(f.whale_sell_volume_1h);
        self.whale_net_flow_1h = Some(f.whale_net_flow_1h);
        self.whale_buy_ratio_1h = f.whale_buy_ratio_1h;
        self.time_since_whale_s = f.time_since_whale_s;
        self.pct_volume_from_whales = f.pct_volume_from_whales;
    }
}

/// One row of the `orderbooks` table: the full book of a T2+ market at a tick, best level first.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderbookRow {
    pub snapshot_ts: Ts,
    pub fetched_at: Ts,
    pub condition_id: String,
    pub token_id: String,
    pub tier: Tier,
    /// The server's timestamp of the book.
    pub book_ts: Option<Ts>,
    /// The server's book hash: ties a row to exactly what was served.
    pub book_hash: Option<String>,
    pub tick_size: Option<Decimal>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl OrderbookRow {
    /// The row for `book` observed at `tick`, levels sorted best first.
    pub fn new(tick: TickId, fetched_at: Ts, condition_id: &str, book: &Book) -> OrderbookRow {
        let book = book.clone().normalized();
        OrderbookRow {
            snapshot_ts: tick.tick_ts,
            fetched_at,
            condition_id: condition_id.to_string(),
            token_id: book.token_id,
            tier: tick.tier,
            book_ts: book.timestamp,
            book_hash: book.hash,
            tick_size: book.tick_size,
            bids: book.bids,
            asks: book.asks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }
    fn at(s: &str) -> Ts {
        s.parse().unwrap()
    }
    fn market() -> Market {
        Market {
            condition_id: "0xabc".into(),
            question: "Will it?".into(),
            slug: None,
            yes_token_id: "111".into(),
            no_token_id: "222".into(),
            outcomes: ["Yes".into(), "No".into()],
            end_date: at("2026-11-20T18:00:00Z"),
            tier: Some(Tier::T2),
            active: true,
            result: Default::default(),
            closed_at: None,
            delisted: false,
            first_seen: at("2026-11-19T00:00:00Z"),
            category: Some("Crypto".into()),
            neg_risk: false,
            volume_24h: None,
            event_id: None,
            fees_enabled: None,
            fee: None,
            version: 0,
        }
    }

    #[test]
    fn values_not_served_stay_null() {
        let m = market();
        let tick = TickId {
            tier: Tier::T0,
            tick_ts: at("2026-11-20T12:00:00Z"),
        };
        let quote = MarketQuote {
            condition_id: m.condition_id.clone(),
            price: Some(d("0.42")),
            ..MarketQuote::default()
        };
        let row = Snapshot::build(Observation {
            tick,
            fetched_at: tick.tick_ts,
            market: &m,
            quote: Some(&quote),
            book: None,
            flow: None,
        });
        assert_eq!(row.price, Some(d("0.42")));
        assert_eq!(
            (row.best_bid, row.best_ask, row.mid_price, row.spread),
            (None, None, None, None)
        );
        assert_eq!(
            (
                row.bid_depth_5,
                row.bid_levels,
                row.trade_count_1h,
                row.volume_24h
            ),
            (None, None, None, None)
        );
        assert_eq!(row.hours_to_close, Some(6.0));
        assert_eq!(
            (row.day_of_week, row.hour_of_day),
            (Some(5), Some(12)),
            "2026-11-20 is a Friday"
        );
    }

    #[test]
    fn book_prices_win_over_gamma_prices() {
        let m = market();
        let tick = TickId {
            tier: Tier::T2,
            tick_ts: at("2026-11-20T12:00:00Z"),
        };
        let quote = MarketQuote {
            best_bid: Some(d("0.40")),
            best_ask: Some(d("0.60")),
            ..MarketQuote::default()
        };
        let book = Book {
            token_id: "111".into(),
            bids: vec![Level {
                price: d("0.44"),
                size: d("10"),
            }],
            asks: vec![Level {
                price: d("0.47"),
                size: d("20"),
            }],
            ..Book::default()
        };
        let row = Snapshot::build(Observation {
            tick,
            fetched_at: tick.tick_ts,
            market: &m,
            quote: Some(&quote),
            book: Some(&book),
            flow: None,
        });
        assert_eq!(
            (row.best_bid, row.best_ask),
            (Some(d("0.44")), Some(d("0.47")))
        );
        assert_eq!(
            (row.spread, row.mid_price),
            (Some(d("0.03")), Some(d("0.455")))
        );
        assert_eq!((row.bid_depth_50, row.ask_levels), (Some(d("10")), Some(1)));
    }

    #[test]
    fn given_a_book_with_a_problem_then_no_book_features_and_gamma_prices_as_without_a_book() {
        let m = market();
        let tick = TickId {
            tier: Tier::T2,
            tick_ts: at("2026-11-20T12:00:00Z"),
        };
        let quote = MarketQuote {
            best_bid: Some(d("0.40")),
            best_ask: Some(d("0.60")),
            spread: Some(d("0.2")),
            ..MarketQuote::default()
        };
        let book = Book {
            token_id: "111".into(),
            bids: vec![Level {
                price: d("0.44"),
                size: d("10"),
            }],
            asks: vec![Level {
                price: d("0.47"),
                size: d("20"),
            }],
            tick_size: Some(d("0.01")),
            last_trade_price: Some(d("0.45")),
            problem: Some("bids[1]: price outside [0,1] (price 1.5, size 10)".into()),
            ..Book::default()
        };
        let row = |book: Option<&Book>| {
            Snapshot::build(Observation {
                tick,
                fetched_at: tick.tick_ts,
                market: &m,
                quote: Some(&quote),
                book,
                flow: None,
            })
        };
        let with_problem = row(Some(&book));
        let without_book = row(None);
        assert_eq!(
            (
                with_problem.best_bid,
                with_problem.best_ask,
                with_problem.spread,
                with_problem.mid_price
            ),
            (
                Some(d("0.40")),
                Some(d("0.60")),
                Some(d("0.2")),
                Some(d("0.50"))
            ),
            "Gamma's prices, as without a book"
        );
        assert_eq!(
            (
                with_problem.best_bid,
                with_problem.best_ask,
                with_problem.spread
            ),
            (
                without_book.best_bid,
                without_book.best_ask,
                without_book.spread
            )
        );
        assert_eq!(
            (
                with_problem.bid_depth_5,
                with_problem.ask_depth_50,
                with_problem.bid_levels,
                with_problem.ask_levels
            ),
            (None, None, None, None)
        );
        assert_eq!(with_problem.book_imbalance, None);
        assert_eq!(
            (
                with_problem.bid_wall_price,
                with_problem.bid_wall_size,
                with_problem.ask_wall_price,
                with_problem.ask_wall_size
            ),
            (None, None, None, None)
        );
        assert_eq!(
            (with_problem.tick_size, with_problem.last_trade_price),
            (Some(d("0.01")), Some(d("0.45"))),
            "values checked on their own are still the book's"
        );
        let sound = Book {
            problem: None,
            ..book
        };
        assert_eq!(
            row(Some(&sound)).bid_depth_5,
            Some(d("10")),
            "the same book without a problem has depth"
        );
    }
}
