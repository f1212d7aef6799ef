//! One decision step over the markets as seen at `t`, shared by the live paper executor and the
//! backtester.
//!
//! [`Engine::step`] runs, in order:
//! 1. **settle** the positions of markets whose view carries a resolution (open orders there
//!    are cancelled);
//! 2. **resting orders** meet each view's book (limit fills, spread fallbacks);
//! 3. **entries**, strategy by strategy in name order: `filter` → `scan` → sizing (sets the
//!    signal's `suggested_usd`) → risk (cuts or refuses it) → an order in the configured style;
//!    a signal on a token the strategy already holds is dropped (one entry per token: the
//!    position stands for it until `should_exit` or settlement closes it);
//! 4. **mark** every position at its market's view;
//! 5. **exits**: each open position of an enabled strategy, opened before `t`, whose market has a
//!    view, is sold with a market order when `should_exit` says so;
//! 6. an **equity point** at `t`.
//!
//! Deterministic: views are taken in condition-id order, signals in (condition id, token id)
//! order, positions in key order; nothing iterates a hash map.

use crate::broker::{Execution, FillEvent, OrderKind, OrderRequest, PaperBroker};
use crate::config::{EngineConfig, OrderStyle};
use crate::error::StrategyError;
use crate::fill::Amount;
use crate::portfolio::{ClosedPosition, EquityPoint, Portfolio, PositionKey};
use crate::risk::{Rejection, RiskManager};
use crate::signal::Signal;
use crate::sizing::Sizing;
use crate::strategy::{build_strategies, Strategy};
use crate::view::MarketView;
use crate::Ts;
use polytape_core::{Side, Trade};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What became of a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum SignalDecision {
    /// An order for `usd` was placed.
    Ordered {
        order_id: u64,
        usd: Decimal,
    },
    Rejected {
        rejection: Rejection,
    },
}

/// A signal and its decision (the `signals` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecidedSignal {
    pub signal: Signal,
    pub decision: SignalDecision,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub t: Ts,
    pub signals: Vec<DecidedSignal>,
    /// Fills of this step: resting orders, entries, exits, in that order.
    pub fills: Vec<FillEvent>,
    /// Positions (or parts) closed this step: settlements, then exits.
    pub closed: Vec<ClosedPosition>,
    pub equity: EquityPoint,
}

/// Strategies, risk, sizing and a venue, stepped through time.
pub struct Engine<E: Execution = PaperBroker> {
    strategies: Vec<Box<dyn Strategy>>,
    risk: RiskManager,
    sizing: Sizing,
    order: OrderStyle,
    exec: E,
}

impl Engine<PaperBroker> {
    /// The engine of a configuration: its enabled strategies on a paper broker.
    pub fn from_config(config: &EngineConfig) -> Result<Self, StrategyError> {
        Ok(Engine::new(
            build_strategies(&config.strategies)?,
            RiskManager::new(config.risk.clone()),
            config.sizing.clone(),
            config.execution.order,
            PaperBroker::new(config.initial_cash, config.execution.taker_fee),
        ))
    }

    /// The engine of a configuration over an existing paper account (the live executor's,
    /// carried from one run to the next); the broker's fee model is the configuration's.
    pub fn resume(config: &EngineConfig, mut broker: PaperBroker) -> Result<Self, StrategyError> {
        broker.taker_fee = config.execution.taker_fee;
        Ok(Engine::new(
            build_strategies(&config.strategies)?,
            RiskManager::new(config.risk.clone()),
            config.sizing.clone(),
            config.execution.order,
            broker,
        ))
    }
}

impl<E: Execution> Engine<E> {
    /// `strategies` run in the order given (sorted by name by [`build_strategies`]).
    pub fn new(
        strategies: Vec<Box<dyn Strategy>>,
        risk: RiskManager,
        sizing: Sizing,
        order: OrderStyle,
        exec: E,
    ) -> Self {
        Engine {
            strategies,
            risk,
            sizing,
            order,
            exec,
        }
    }

    pub fn strategies(&self) -> &[Box<dyn Strategy>] {
        &self.strategies
    }

    pub fn execution(&self) -> &E {
        &self.exec
    }

    /// The venue, with its orders, fills and account, handed back.
    pub fn into_execution(self) -> E {
        self.exec
    }

    pub fn portfolio(&self) -> &Portfolio {
        self.exec.portfolio()
    }

    /// Takes the equity points recorded so far out of the portfolio (one a step), so a long
    /// run keeps memory flat; the peak and drawdown are kept.
    pub fn take_equity_curve(&mut self) -> Vec<crate::portfolio::EquityPoint> {
        std::mem::take(&mut self.exec.portfolio_mut().equity_curve)
    }

    /// Lets resting orders meet a printed trade.
    pub fn on_trade(&mut self, trade: &Trade) -> Vec<FillEvent> {
        self.exec.on_trade(trade)
    }

    /// One step at `t` over `views` (any order; views of a later time are ignored).
    pub fn step(&mut self, t: Ts, views: &[MarketView]) -> StepReport {
        let mut sorted: Vec<&MarketView> = views.iter().filter(|v| v.t <= t).collect();
        sorted.sort_by(|a, b| a.condition_id.cmp(&b.condition_id));
        let by_id: BTreeMap<&str, &MarketView> = sorted
            .iter()
            .map(|v| (v.condition_id.as_str(), *v))
            .collect();
        let closed_before = self.exec.portfolio().closed.len();
        let mut fills = Vec::new();

        // 1. settle
        for v in &sorted {
            if let Some(outcome) = &v.resolution {
                self.exec.cancel_market(&v.condition_id);
                self.exec
                    .portfolio_mut()
                    .settle(&v.condition_id, outcome, t);
            }
        }
        let open: Vec<&MarketView> = sorted
            .iter()
            .copied()
            .filter(|v| v.resolution.is_none())
            .collect();

        // 2. resting orders
        for v in &open {
            fills.extend(self.exec.on_view(v));
        }

        // 3. entries
        let mut signals = Vec::new();
        for i in 0..self.strategies.len() {
            let s = &self.strategies[i];
            let eligible: Vec<&MarketView> = open.iter().copied().filter(|v| s.filter(v)).collect();
            if eligible.is_empty() {
                continue;
            }
            let mut found = s.scan(&eligible);
            found.sort_by(|a, b| {
                (&a.condition_id, &a.token_id).cmp(&(&b.condition_id, &b.token_id))
            });
            for mut signal in found {
                let Some(view) = by_id.get(signal.condition_id.as_str()) else {
                    continue;
                };
                // A strategy enters a token once: while it holds the token, its position is
                // the signal (and `should_exit` its way out), so the signal is not repeated.
                let held = PositionKey {
                    strategy: signal.strategy.clone(),
                    token_id: signal.token_id.clone(),
                };
                if self.exec.portfolio().positions.contains_key(&held) {
                    continue;
                }
                let decision = self.enter(&mut signal, view, &mut fills);
                signals.push(DecidedSignal { signal, decision });
            }
        }

        // 4. mark
        for v in &open {
            self.exec.portfolio_mut().mark(v);
        }

        // 5. exits
        let held: Vec<_> = self.exec.portfolio().positions.values().cloned().collect();
        for p in held {
            if p.opened_at >= t {
                continue;
            }
            let (Some(s), Some(v)) = (
                self.strategies.iter().find(|s| s.name() == p.strategy),
                by_id.get(p.condition_id.as_str()),
            ) else {
                continue;
            };
            let Some(reason) = s.should_exit(&p, v) else {
                continue;
            };
            let request = OrderRequest {
                ts: t,
                strategy: p.strategy.clone(),
                condition_id: p.condition_id.clone(),
                token_id: p.token_id.clone(),
                outcome: p.outcome,
                side: Side::Sell,
                kind: OrderKind::Market,
                amount: Amount::Shares(p.shares),
                exit: Some(reason),
            };
            fills.extend(self.exec.submit(request, v).1);
        }

        // 6. equity
        let equity = self.exec.portfolio_mut().record_equity(t);
        StepReport {
            t,
            signals,
            fills,
            closed: self.exec.portfolio().closed[closed_before..].to_vec(),
            equity,
        }
    }

    /// Sizing, risk and the order for one signal.
    fn enter(
        &mut self,
        signal: &mut Signal,
        view: &MarketView,
        fills: &mut Vec<FillEvent>,
    ) -> SignalDecision {
        let reject = |rejection| SignalDecision::Rejected { rejection };
        let pending = self.exec.orders().iter().any(|o| {
            o.is_open()
                && o.request.strategy == signal.strategy
                && o.request.token_id == signal.token_id
        });
        if pending {
            return reject(Rejection::OrderPending);
        }
        let has_asks = view
            .book(signal.outcome)
            .is_some_and(|b| !b.asks.is_empty());
        if !has_asks {
            return reject(Rejection::NoLiquidity);
        }
        signal.suggested_usd = self
            .sizing
            .size(signal, view, self.exec.portfolio().equity());
        let usd = match self.risk.check(signal, self.exec.portfolio()) {
            Ok(usd) => usd,
            Err(r) => return reject(r),
        };
        let kind = match self.order {
            OrderStyle::Market => OrderKind::Market,
            OrderStyle::Limit { offset } => match limit_price(view, signal, offset) {
                Some(price) => OrderKind::Limit { price },
                None => return reject(Rejection::NoLiquidity),
            },
            OrderStyle::Spread { offset, timeout_s } => match limit_price(view, signal, offset) {
                Some(price) => OrderKind::Spread {
                    price,
                    fallback_at: view.t + chrono::Duration::seconds(timeout_s),
                },
                None => return reject(Rejection::NoLiquidity),
            },
        };
        let request = OrderRequest {
            ts: view.t,
            strategy: signal.strategy.clone(),
            condition_id: signal.condition_id.clone(),
            token_id: signal.token_id.clone(),
            outcome: signal.outcome,
            side: Side::Buy,
            kind,
            amount: Amount::Usd(usd),
            exit: None,
        };
        let (order_id, got) = self.exec.submit(request, view);
        fills.extend(got);
        SignalDecision::Ordered { order_id, usd }
    }
}

/// A resting buy's price: the token's mid minus `offset`, rounded down to the book's tick
/// (0.01 when unknown); `None` without a mid or when that is not a price above 0.
fn limit_price(view: &MarketView, signal: &Signal, offset: Decimal) -> Option<Decimal> {
    let mid = view.quote(signal.outcome).mid?;
    let tick = view
        .book(signal.outcome)
        .and_then(|b| b.tick_size)
        .filter(|t| *t > Decimal::ZERO)
        .unwrap_or(Decimal::new(1, 2));
    let raw = mid - offset;
    let price =
        ((raw / tick).round_dp_with_strategy(0, RoundingStrategy::ToNegativeInfinity)) * tick;
    (price > Decimal::ZERO && price < Decimal::ONE).then_some(price)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::RiskLimits;
    use crate::strategies::{LongshotYes, MeanReversion};
    use crate::testkit::{at, book, d, lvl, market, resolved};
    use crate::{CloseReason, ExitReason, FeeModel};

    const END: &str = "2026-11-21T00:00:00Z";

    fn engine(order: OrderStyle) -> Engine {
        Engine::new(
            vec![Box::new(LongshotYes::default())],
            RiskManager::new(RiskLimits::default()),
            Sizing::Fixed { usd: d("47") },
            order,
            PaperBroker::new(d("1000"), FeeModel::default()),
        )
    }

    fn v(cid: &str, t: &str, bid: &str, ask: &str) -> MarketView {
        MarketView::build(
            at(t),
            &market(cid, END),
            None,
            &[],
            Some(&book(cid, bid, ask)),
            None,
        )
    }

    #[test]
    fn given_a_favourite_then_a_step_buys_it_marks_it_and_records_equity() {
        let mut e = engine(OrderStyle::Market);
        let t = "2026-11-20T12:00:00Z";
        // 0xb signals (ask 0.94), 0xa does not (ask 0.50); given out of order.
        let r = e.step(
            at(t),
            &[v("0xb", t, "0.92", "0.94"), v("0xa", t, "0.48", "0.50")],
        );
        assert_eq!(r.signals.len(), 1);
        assert_eq!(r.signals[0].signal.suggested_usd, d("47"));
        assert_eq!(
            r.signals[0].decision,
            SignalDecision::Ordered {
                order_id: 1,
                usd: d("47")
            }
        );
        assert_eq!(
            (r.fills[0].fill.shares, r.fills[0].fill.cost),
            (d("50"), d("47.00"))
        );
        // Marked at the bid: 953 cash + 50 × 0.92.
        assert_eq!(r.equity.equity, d("999.00"));
        assert_eq!(r.equity.exposure, d("47.00"));
        // The same favourite next step: the strategy holds it already, so it does not buy
        // again (one entry per token) and no signal is recorded.
        let r2 = e.step(
            at("2026-11-20T12:05:00Z"),
            &[v("0xb", "2026-11-20T12:05:00Z", "0.92", "0.94")],
        );
        assert!(r2.signals.is_empty());
        assert!(r2.fills.is_empty());
        assert_eq!(e.portfolio().positions.len(), 1);
        assert_eq!(
            e.portfolio().positions.values().next().unwrap().shares,
            d("50")
        );
    }

    #[test]
    fn given_risk_limits_then_the_step_records_the_rejection() {
        let mut e = Engine::new(
            vec![Box::new(LongshotYes::default())],
            RiskManager::new(RiskLimits {
                max_open_positions: 1,
                ..RiskLimits::default()
            }),
            Sizing::Fixed { usd: d("10") },
            OrderStyle::Market,
            PaperBroker::new(d("1000"), FeeModel::default()),
        );
        let t = "2026-11-20T12:00:00Z";
        let r = e.step(
            at(t),
            &[v("0xa", t, "0.92", "0.94"), v("0xb", t, "0.92", "0.95")],
        );
        assert_eq!(
            r.signals[0].decision,
            SignalDecision::Ordered {
                order_id: 1,
                usd: d("10")
            }
        );
        assert_eq!(
            r.signals[1].decision,
            SignalDecision::Rejected {
                rejection: Rejection::MaxOpenPositions { open: 1, limit: 1 }
            }
        );
    }

    #[test]
    fn given_a_resolution_then_the_position_settles_at_the_outcome() {
        let mut e = engine(OrderStyle::Market);
        let t = "2026-11-20T12:00:00Z";
        e.step(at(t), &[v("0xb", t, "0.92", "0.94")]);
        let mut m = market("0xb", END);
        m.result = polytape_core::market::MarketResult::Resolved(resolved(Some(0), false));
        m.active = false;
        let later = at("2026-11-21T02:00:00Z");
        let view = MarketView::build(later, &m, None, &[], None, None);
        let r = e.step(later, &[view]);
        assert_eq!(r.closed.len(), 1);
        assert_eq!(r.closed[0].reason, CloseReason::Settled { payout: d("1") });
        assert_eq!(r.closed[0].realised_pnl, d("3.00"), "50 × 1 − 47");
        assert_eq!(r.equity.equity, d("1003.00"));
        assert!(e.portfolio().positions.is_empty());
    }

    #[test]
    fn given_a_stop_then_a_later_step_sells_into_the_bids() {
        let mut e = engine(OrderStyle::Market);
        let t = "2026-11-20T12:00:00Z";
        e.step(at(t), &[v("0xb", t, "0.92", "0.94")]);
        let t2 = "2026-11-20T13:00:00Z";
        // Bid 0.84 ≤ 0.94 − 0.10; the ask 0.90 is out of range, so no new entry.
        let r = e.step(at(t2), &[v("0xb", t2, "0.84", "0.90")]);
        assert!(r.signals.is_empty());
        assert_eq!(r.closed.len(), 1);
        assert_eq!(
            r.closed[0].reason,
            CloseReason::Exit {
                reason: ExitReason::StopLoss {
                    bid: d("0.84"),
                    stop: d("0.84")
                }
            }
        );
        assert_eq!(r.closed[0].proceeds, d("42.00"));
        assert_eq!(r.equity.equity, d("995.00"));
        assert_eq!(
            e.portfolio().pnl_by_strategy()["longshot_yes"].realised,
            d("-5.00")
        );
    }

    #[test]
    fn given_the_limit_style_then_the_entry_rests_below_the_mid_and_fills_later() {
        let mut e = engine(OrderStyle::Limit { offset: d("0.01") });
        let t = "2026-11-20T12:00:00Z";
        let r = e.step(at(t), &[v("0xb", t, "0.92", "0.95")]);
        assert!(r.fills.is_empty(), "rests at 0.935 − 0.01 → 0.92");
        assert_eq!(
            e.execution().orders()[0].request.kind,
            OrderKind::Limit { price: d("0.92") }
        );
        let t2 = "2026-11-20T12:05:00Z";
        // Only 20 shares offered at the limit: 18.40 of the 47 fill, the rest keeps resting.
        let thin = polytape_core::Book {
            token_id: "0xb-yes".into(),
            bids: vec![lvl("0.91", "1000")],
            asks: vec![lvl("0.92", "20"), lvl("0.93", "1000")],
            ..Default::default()
        };
        let later = MarketView::build(at(t2), &market("0xb", END), None, &[], Some(&thin), None);
        let r = e.step(at(t2), &[later]);
        assert_eq!(r.fills.len(), 1);
        assert_eq!(
            (r.fills[0].fill.shares, r.fills[0].fill.cost),
            (d("20"), d("18.40"))
        );
        assert_eq!(e.portfolio().reserved, d("28.60"));
        // Partly filled: the strategy holds the token, so its signal is not repeated and no
        // second order rests beside the first.
        assert!(r.signals.is_empty());
        assert_eq!(e.execution().orders().len(), 1);
    }

    #[test]
    fn the_same_views_in_any_order_give_the_same_report() {
        let run = |rev: bool| {
            let mut e = Engine::new(
                vec![
                    Box::new(LongshotYes::default()),
                    Box::new(MeanReversion::default()),
                ],
                RiskManager::default(),
                Sizing::Fixed { usd: d("10") },
                OrderStyle::Market,
                PaperBroker::new(d("1000"), FeeModel::default()),
            );
            let t = "2026-11-20T12:00:00Z";
            let mut views: Vec<_> = ["0xa", "0xb", "0xc", "0xd"]
                .iter()
                .map(|c| v(c, t, "0.93", "0.95"))
                .collect();
            if rev {
                views.reverse();
            }
            serde_json::to_string(&e.step(at(t), &views)).unwrap()
        };
        assert_eq!(run(false), run(true));
        assert!(run(false).contains("0xd-yes"));
    }
}
