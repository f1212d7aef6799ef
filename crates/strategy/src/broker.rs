//! The execution port and the paper broker behind it.
//!
//! [`Execution`] is what the engine needs of a venue: submit, let resting orders meet later
//! books and trades, cancel, and the account. [`PaperBroker`] is the only adapter: it fills
//! against the book in the [`MarketView`] and never talks to Polymarket. A live client would be
//! a second adapter of the same trait.
//!
//! Fill rules:
//! * **Market** orders walk the book at once ([`walk_book`]: asks for a buy, bids for a sell),
//!   taker fee included — the market's own ([`MarketView::fee`]), else the broker's
//!   [`PaperBroker::taker_fee`]; what the book does not show is dropped (immediate-or-cancel).
//! * **Limit** orders first take what already crosses their price (as a taker), then rest. A
//!   resting buy at `L` fills, as a maker at `L` with no fee, when a *later* view's book shows
//!   asks at or below `L` (up to their size) or a later trade of the token prints at or below
//!   `L` (up to its size); a sell mirrors that with bids / trades at or above `L`. A resting buy
//!   holds its unfilled USD back from the cash ([`Portfolio::reserved`]).
//! * **Spread** orders rest like limit orders; at the first view at or after `fallback_at`
//!   the remainder is cancelled and sent as a market order against that view's book.

use crate::fill::{walk_book_to, Amount, FeeModel, Fill};
use crate::portfolio::{Portfolio, PositionKey};
use crate::signal::{ExitReason, Outcome};
use crate::view::MarketView;
use crate::Ts;
use polytape_core::book::BookSide;
use polytape_core::{Level, Side, Trade};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How an order is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderKind {
    Market,
    Limit {
        price: Decimal,
    },
    /// A limit order at `price` that becomes a market order at `fallback_at`.
    Spread {
        price: Decimal,
        fallback_at: Ts,
    },
}

impl OrderKind {
    /// The limit price, for orders that have one.
    pub fn limit(&self) -> Option<Decimal> {
        match self {
            OrderKind::Market => None,
            OrderKind::Limit { price } | OrderKind::Spread { price, .. } => Some(*price),
        }
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Resting: may still fill.
    Open,
    /// Filled in full.
    Filled,
    /// Done with part filled: a market order the book could not fill in full.
    PartiallyFilled,
    /// Cancelled (what filled before stays filled).
    Cancelled,
}

/// What the engine asks the venue to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub ts: Ts,
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    pub outcome: Outcome,
    pub side: Side,
    pub kind: OrderKind,
    /// Buys in USD of notional, sells in shares.
    pub amount: Amount,
    /// Why a sell closes its position.
    pub exit: Option<ExitReason>,
}

/// An order and what it has filled so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub request: OrderRequest,
    pub status: OrderStatus,
    pub filled_shares: Decimal,
    /// Σ price × shares filled, fees excluded.
    pub filled_notional: Decimal,
}

impl Order {
    /// What is left to fill, in the order's unit.
    pub fn remaining(&self) -> Decimal {
        match self.request.amount {
            Amount::Usd(x) => x - self.filled_notional,
            Amount::Shares(x) => x - self.filled_shares,
        }
    }

    /// True when what is left cannot buy anything worth an order: under a cent of a USD
    /// amount (shares are bought to 6 places, so a USD budget leaves dust), nothing of shares.
    pub fn is_done(&self) -> bool {
        match self.request.amount {
            Amount::Usd(_) => self.remaining() < Decimal::new(1, 2),
            Amount::Shares(_) => self.remaining() <= Decimal::ZERO,
        }
    }

    pub fn is_open(&self) -> bool {
        self.status == OrderStatus::Open
    }

    fn book_side(&self) -> BookSide {
        match self.request.side {
            Side::Buy => BookSide::Ask,
            Side::Sell => BookSide::Bid,
        }
    }

    fn remaining_amount(&self) -> Amount {
        match self.request.amount {
            Amount::Usd(_) => Amount::Usd(self.remaining()),
            Amount::Shares(_) => Amount::Shares(self.remaining()),
        }
    }
}

/// Taker or maker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    Taker,
    Maker,
}

/// One fill of one order (the `fills` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillEvent {
    pub order_id: u64,
    pub ts: Ts,
    pub strategy: String,
    pub condition_id: String,
    pub token_id: String,
    pub outcome: Outcome,
    pub side: Side,
    pub liquidity: Liquidity,
    pub fill: Fill,
}

/// What the engine needs of a venue.
pub trait Execution {
    /// Places an order at `view.t` against `view`'s book; returns its id and the fills it got
    /// at once.
    fn submit(&mut self, request: OrderRequest, view: &MarketView) -> (u64, Vec<FillEvent>);
    /// Lets the resting orders of `view`'s market meet its book (and spread orders past their
    /// timeout fall back to market).
    fn on_view(&mut self, view: &MarketView) -> Vec<FillEvent>;
    /// Lets resting orders of the trade's token meet a printed trade.
    fn on_trade(&mut self, trade: &Trade) -> Vec<FillEvent>;
    /// Cancels every open order of a market (at settlement); returns how many.
    fn cancel_market(&mut self, condition_id: &str) -> usize;
    /// Every order, oldest first.
    fn orders(&self) -> &[Order];
    /// Every fill, oldest first.
    fn fills(&self) -> &[FillEvent];
    fn portfolio(&self) -> &Portfolio;
    fn portfolio_mut(&mut self) -> &mut Portfolio;
}

/// The paper venue: fills against recorded books, holds orders, fills and the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperBroker {
    pub taker_fee: FeeModel,
    orders: Vec<Order>,
    fills: Vec<FillEvent>,
    portfolio: Portfolio,
}

impl PaperBroker {
    pub fn new(initial_cash: Decimal, taker_fee: FeeModel) -> Self {
        PaperBroker {
            taker_fee,
            orders: Vec::new(),
            fills: Vec::new(),
            portfolio: Portfolio::new(initial_cash),
        }
    }

    /// The taker fee in `view`'s market: its own schedule, else [`PaperBroker::taker_fee`].
    pub fn taker_fee_in(&self, view: &MarketView) -> FeeModel {
        view.fee.unwrap_or(self.taker_fee)
    }

    /// Walks `levels` for order `i`'s remainder (up to `limit`) and books the fill: a taker
    /// pays `taker_fee` (the market's, [`PaperBroker::taker_fee_in`]), a maker nothing.
    fn fill_from(
        &mut self,
        i: usize,
        levels: &[Level],
        limit: Option<Decimal>,
        liquidity: Liquidity,
        taker_fee: FeeModel,
        ts: Ts,
    ) -> Option<FillEvent> {
        let o = &self.orders[i];
        let fee = match liquidity {
            Liquidity::Taker => taker_fee,
            Liquidity::Maker => FeeModel::default(),
        };
        let fill = walk_book_to(levels, o.book_side(), o.remaining_amount(), &fee, limit);
        if fill.is_empty() {
            return None;
        }
        let o = &mut self.orders[i];
        o.filled_shares += fill.shares;
        o.filled_notional += fill.cost;
        if o.is_done() {
            o.status = OrderStatus::Filled;
        }
        let r = &o.request;
        let event = FillEvent {
            order_id: o.id,
            ts,
            strategy: r.strategy.clone(),
            condition_id: r.condition_id.clone(),
            token_id: r.token_id.clone(),
            outcome: r.outcome,
            side: r.side,
            liquidity,
            fill,
        };
        match r.side {
            Side::Buy => self.portfolio.apply_buy(
                &r.strategy,
                &r.condition_id,
                &r.token_id,
                r.outcome,
                &fill,
                ts,
            ),
            Side::Sell => {
                let key = PositionKey {
                    strategy: r.strategy.clone(),
                    token_id: r.token_id.clone(),
                };
                let reason = r.exit.clone().unwrap_or(ExitReason::Manual);
                self.portfolio.apply_sell(&key, &fill, ts, reason);
            }
        }
        self.fills.push(event.clone());
        Some(event)
    }

    /// Market-walks order `i`'s remainder against `view`'s book; the rest is dropped.
    fn market(&mut self, i: usize, view: &MarketView) -> Option<FillEvent> {
        let levels = self.book_levels(i, view);
        let fee = self.taker_fee_in(view);
        let event = self.fill_from(i, &levels, None, Liquidity::Taker, fee, view.t);
        let o = &mut self.orders[i];
        if o.status == OrderStatus::Open {
            o.status = if o.filled_shares.is_zero() {
                OrderStatus::Cancelled
            } else {
                OrderStatus::PartiallyFilled
            };
        }
        event
    }

    /// The side of `view`'s book order `i` takes from.
    fn book_levels(&self, i: usize, view: &MarketView) -> Vec<Level> {
        let o = &self.orders[i];
        view.book(o.request.outcome)
            .map(|b| match o.request.side {
                Side::Buy => b.asks.clone(),
                Side::Sell => b.bids.clone(),
            })
            .unwrap_or_default()
    }

    /// Σ unfilled USD of resting buys.
    fn refresh_reserved(&mut self) {
        self.portfolio.reserved = self
            .orders
            .iter()
            .filter(|o| o.is_open() && matches!(o.request.amount, Amount::Usd(_)))
            .map(Order::remaining)
            .sum();
    }
}

/// `levels` that cross `limit` for an order on `side`, repriced at `limit`: a resting order
/// fills at its own price.
fn crossing_at(levels: &[Level], side: BookSide, limit: Decimal) -> Vec<Level> {
    levels
        .iter()
        .filter(|l| match side {
            BookSide::Ask => l.price <= limit,
            BookSide::Bid => l.price >= limit,
        })
        .map(|l| Level {
            price: limit,
            size: l.size,
        })
        .collect()
}

impl Execution for PaperBroker {
    fn submit(&mut self, request: OrderRequest, view: &MarketView) -> (u64, Vec<FillEvent>) {
        let id = self.orders.len() as u64 + 1;
        let kind = request.kind;
        self.orders.push(Order {
            id,
            request,
            status: OrderStatus::Open,
            filled_shares: Decimal::ZERO,
            filled_notional: Decimal::ZERO,
        });
        let i = self.orders.len() - 1;
        let fills = match kind.limit() {
            None => self.market(i, view).into_iter().collect(),
            Some(limit) => {
                let levels = self.book_levels(i, view);
                let fee = self.taker_fee_in(view);
                self.fill_from(i, &levels, Some(limit), Liquidity::Taker, fee, view.t)
                    .into_iter()
                    .collect()
            }
        };
        self.refresh_reserved();
        (id, fills)
    }

    fn on_view(&mut self, view: &MarketView) -> Vec<FillEvent> {
        let mut out = Vec::new();
        for i in 0..self.orders.len() {
            let o = &self.orders[i];
            if !o.is_open() || o.request.condition_id != view.condition_id || o.request.ts >= view.t
            {
                continue;
            }
            match o.request.kind {
                OrderKind::Market => {}
                OrderKind::Spread { fallback_at, .. } if view.t >= fallback_at => {
                    out.extend(self.market(i, view));
                }
                OrderKind::Limit { price } | OrderKind::Spread { price, .. } => {
                    let side = o.book_side();
                    let levels = crossing_at(&self.book_levels(i, view), side, price);
                    out.extend(self.fill_from(
                        i,
                        &levels,
                        None,
                        Liquidity::Maker,
                        FeeModel::default(),
                        view.t,
                    ));
                }
            }
        }
        self.refresh_reserved();
        out
    }

    fn on_trade(&mut self, trade: &Trade) -> Vec<FillEvent> {
        let mut out = Vec::new();
        for i in 0..self.orders.len() {
            let o = &self.orders[i];
            let Some(limit) = o.request.kind.limit() else {
                continue;
            };
            if !o.is_open() || o.request.token_id != trade.token_id || o.request.ts >= trade.ts {
                continue;
            }
            let printed = [Level {
                price: trade.price,
                size: trade.size,
            }];
            let levels = crossing_at(&printed, o.book_side(), limit);
            out.extend(self.fill_from(
                i,
                &levels,
                None,
                Liquidity::Maker,
                FeeModel::default(),
                trade.ts,
            ));
        }
        self.refresh_reserved();
        out
    }

    fn cancel_market(&mut self, condition_id: &str) -> usize {
        let mut n = 0;
        for o in &mut self.orders {
            if o.is_open() && o.request.condition_id == condition_id {
                o.status = OrderStatus::Cancelled;
                n += 1;
            }
        }
        self.refresh_reserved();
        n
    }

    fn orders(&self) -> &[Order] {
        &self.orders
    }

    fn fills(&self) -> &[FillEvent] {
        &self.fills
    }

    fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    fn portfolio_mut(&mut self) -> &mut Portfolio {
        &mut self.portfolio
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, d, lvl, market};
    use polytape_core::Book;

    const T0: &str = "2026-11-20T12:00:00Z";
    const END: &str = "2026-11-21T00:00:00Z";

    /// The view of `0xm` at `t` with YES `bids` and `asks`.
    fn view_with(t: &str, bids: Vec<Level>, asks: Vec<Level>) -> MarketView {
        let book = Book {
            token_id: "0xm-yes".into(),
            bids,
            asks,
            ..Book::default()
        };
        MarketView::build(at(t), &market("0xm", END), None, &[], Some(&book), None)
    }

    fn buy(kind: OrderKind, usd: &str) -> OrderRequest {
        OrderRequest {
            ts: at(T0),
            strategy: "s".into(),
            condition_id: "0xm".into(),
            token_id: "0xm-yes".into(),
            outcome: Outcome::Yes,
            side: Side::Buy,
            kind,
            amount: Amount::Usd(d(usd)),
            exit: None,
        }
    }

    #[test]
    fn given_a_market_buy_larger_than_the_book_then_it_fills_what_the_book_shows() {
        let mut b = PaperBroker::new(d("1000"), FeeModel::default());
        let v = view_with(
            T0,
            vec![lvl("0.40", "10")],
            vec![lvl("0.50", "100"), lvl("0.45", "100")],
        );
        let (id, fills) = b.submit(buy(OrderKind::Market, "500"), &v);
        assert_eq!(fills.len(), 1);
        assert_eq!(
            (fills[0].fill.shares, fills[0].fill.cost),
            (d("200"), d("95.00"))
        );
        assert_eq!(b.orders()[0].status, OrderStatus::PartiallyFilled);
        assert_eq!(id, 1);
        assert_eq!(b.portfolio().cash, d("905.00"));
        assert_eq!(
            b.portfolio().reserved,
            d("0"),
            "a market order holds nothing back"
        );
    }

    #[test]
    fn given_a_resting_limit_then_it_fills_only_when_a_later_book_crosses_it() {
        let mut b = PaperBroker::new(d("1000"), FeeModel::default());
        let now = view_with(T0, vec![lvl("0.40", "10")], vec![lvl("0.50", "100")]);
        let (_, fills) = b.submit(buy(OrderKind::Limit { price: d("0.44") }, "22"), &now);
        assert!(fills.is_empty());
        assert_eq!(b.portfolio().reserved, d("22"));
        // A later book whose best ask is 0.45 does not cross 0.44.
        let later = view_with("2026-11-20T12:05:00Z", vec![], vec![lvl("0.45", "100")]);
        assert!(b.on_view(&later).is_empty());
        // Asks at 0.43 (20) cross: filled at the limit 0.44 as a maker, no fee.
        let cross = view_with(
            "2026-11-20T12:10:00Z",
            vec![],
            vec![lvl("0.43", "20"), lvl("0.60", "999")],
        );
        let f = b.on_view(&cross);
        assert_eq!(
            (f[0].fill.shares, f[0].fill.avg_price, f[0].liquidity),
            (d("20"), d("0.44"), Liquidity::Maker)
        );
        assert_eq!(
            b.portfolio().reserved,
            d("13.20"),
            "22 − 8.80 still resting"
        );
        // A trade printing at 0.44 fills the rest: 13.20 / 0.44 = 30 shares.
        let trade = Trade {
            token_id: "0xm-yes".into(),
            ts: at("2026-11-20T12:11:00Z"),
            price: d("0.44"),
            size: d("500"),
            side: Side::Sell,
        };
        let f = b.on_trade(&trade);
        assert_eq!(f[0].fill.shares, d("30"));
        assert_eq!(b.orders()[0].status, OrderStatus::Filled);
        assert_eq!(b.portfolio().cash, d("978.00"));
    }

    #[test]
    fn given_a_spread_order_unfilled_at_its_timeout_then_the_rest_goes_to_market() {
        let fee = FeeModel {
            rate: d("0.03"),
            exponent: 1,
        };
        let mut b = PaperBroker::new(d("1000"), fee);
        let now = view_with(T0, vec![lvl("0.40", "10")], vec![lvl("0.50", "100")]);
        let kind = OrderKind::Spread {
            price: d("0.45"),
            fallback_at: at("2026-11-20T12:05:00Z"),
        };
        assert!(b.submit(buy(kind, "25"), &now).1.is_empty());
        let before = view_with("2026-11-20T12:04:59Z", vec![], vec![lvl("0.50", "100")]);
        assert!(b.on_view(&before).is_empty());
        let after = view_with("2026-11-20T12:05:00Z", vec![], vec![lvl("0.50", "100")]);
        let f = b.on_view(&after);
        // 25 / 0.50 = 50 shares, fee 50 × 0.03 × 0.25 = 0.375.
        assert_eq!(
            (f[0].fill.shares, f[0].fill.fee, f[0].liquidity),
            (d("50"), d("0.375"), Liquidity::Taker)
        );
        assert_eq!(b.orders()[0].status, OrderStatus::Filled);
        assert_eq!(b.portfolio().cash, d("974.625"));
    }

    #[test]
    fn given_markets_with_their_own_fees_then_a_market_buy_pays_its_markets_fee() {
        // The broker's fallback is 2 %; asks at 0.50, 100 shares bought for 50 USD.
        let fallback = FeeModel {
            rate: d("0.02"),
            exponent: 1,
        };
        let asks = || {
            Some(Book {
                token_id: "0xm-yes".into(),
                asks: vec![lvl("0.50", "1000")],
                ..Book::default()
            })
        };
        let fee_paid = |m: &polytape_core::Market| {
            let view = MarketView::build(at(T0), m, None, &[], asks().as_ref(), None);
            let mut b = PaperBroker::new(d("1000"), fallback);
            let (_, f) = b.submit(buy(OrderKind::Market, "50"), &view);
            assert_eq!(f[0].fill.shares, d("100"));
            (f[0].fill.fee, b.portfolio().cash)
        };
        let mut charging = market("0xm", END);
        charging.fees_enabled = Some(true);
        charging.fee = Some(polytape_core::FeeSchedule {
            rate: d("0.03"),
            exponent: 1,
            rebate_rate: Some(d("0.25")),
            taker_only: true,
        });
        // 100 × 0.03 × 0.5 × 0.5 = 0.75: the market's 3 %, not the fallback's 2 %.
        assert_eq!(fee_paid(&charging), (d("0.75"), d("949.25")));
        let mut free = market("0xm", END);
        free.fees_enabled = Some(false);
        assert_eq!(fee_paid(&free), (d("0"), d("950")), "a fee-free market");
        // Nothing known of the market's fees: the configured fallback, 100 × 0.02 × 0.25.
        assert_eq!(fee_paid(&market("0xm", END)), (d("0.5"), d("949.5")));
    }

    #[test]
    fn given_a_limit_at_or_above_the_ask_then_the_crossing_part_fills_at_once() {
        let mut b = PaperBroker::new(d("1000"), FeeModel::default());
        let now = view_with(T0, vec![], vec![lvl("0.50", "10"), lvl("0.52", "100")]);
        let (_, f) = b.submit(buy(OrderKind::Limit { price: d("0.50") }, "20"), &now);
        assert_eq!(
            (f[0].fill.shares, f[0].liquidity),
            (d("10"), Liquidity::Taker)
        );
        assert_eq!(b.portfolio().reserved, d("15.00"), "20 − 5 rests");
        assert_eq!(b.cancel_market("0xm"), 1);
        assert_eq!(b.portfolio().reserved, d("0"));
    }
}
