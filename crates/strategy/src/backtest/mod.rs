//! The backtester: stored snapshots and order books replayed in time order through the very
//! [`Engine`] the paper executor runs (strategies, sizing, risk, paper fills), settled with the
//! stored resolutions, summed up as a [`Report`] (`report.json` and a self-contained
//! `report.html`).
//!
//! * [`Replay`] (no I/O): steps the engine over observations handed to it in time order. At a
//!   step at `t` each market's view holds only what was observed at or before `t`: its newest
//!   snapshot row and YES book of a time `≤ t`, the YES mids of a bounded window before `t`,
//!   and its resolution only once learnt (`learned_at ≤ t`). A row stamped after `t` has not
//!   been handed over yet, and [`MarketView::build`] drops it anyway.
//! * [`data`]: reads a data directory through polytape-store (its key layout, the reading rule
//!   of compaction, its file readers) an hour of files at a time, and feeds the replay.
//! * [`report`]: the per-strategy figures and the two files, byte for byte the same for the same
//!   data and configuration: maps sorted, no wall clock, fixed number formatting.
//!
//! # When decisions are made
//! Every row of a tick carries the tick's time (`snapshot_ts`); the replay takes one step per
//! distinct time, after handing over every snapshot and book row of that time, and one step at
//! each time a resolution was learnt (positions settle then). A step's views are the markets
//! observed at that time (and those whose resolution was learnt): a strategy decides on fresh
//! data only, and open positions are marked whenever their market is observed.

pub mod data;
pub mod report;

pub use data::{run_backtest, BacktestError, DataSummary};
pub use report::Report;

use crate::config::EngineConfig;
use crate::engine::{Engine, SignalDecision, StepReport};
use crate::error::StrategyError;
use crate::view::{MarketView, PricePoint};
use crate::Ts;
use polytape_core::{Book, Market, MarketResult, Outcome, Snapshot};
use report::Tally;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The columns of a `snapshots` row the replay uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    pub ts: Ts,
    pub condition_id: String,
    pub token_id: String,
    pub price: Option<Decimal>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    pub mid_price: Option<Decimal>,
}

impl SnapshotRow {
    fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            snapshot_ts: self.ts,
            condition_id: self.condition_id.clone(),
            token_id: self.token_id.clone(),
            price: self.price,
            best_bid: self.best_bid,
            best_ask: self.best_ask,
            mid_price: self.mid_price,
            ..Snapshot::default()
        }
    }
}

/// An `orderbooks` row: the book of one token observed at `ts` (its tick).
#[derive(Debug, Clone, PartialEq)]
pub struct BookRow {
    pub ts: Ts,
    pub condition_id: String,
    pub book: Book,
}

/// One market as the replay knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketState {
    market: Market,
    row: Option<SnapshotRow>,
    book: Option<Book>,
    /// YES mids of the last [`Replay::window`], oldest first.
    history: VecDeque<PricePoint>,
}

impl MarketState {
    /// The market as the replay knows it (the status API shows its question).
    pub fn market(&self) -> &Market {
        &self.market
    }
}

/// The engine stepped over stored observations.
pub struct Replay {
    engine: Engine,
    markets: BTreeMap<String, MarketState>,
    /// Resolutions not learnt yet, by (learned_at, condition_id).
    pending: VecDeque<(Ts, String, Outcome)>,
    /// How far back a view's history reaches.
    window: chrono::Duration,
    last_t: Option<Ts>,
    tally: Tally,
    /// Markets forgotten once settled ([`Replay::forget_settled`]).
    settled: BTreeSet<String>,
}

impl Replay {
    /// A replay of `config`'s enabled strategies over `markets` (by condition id: what the
    /// `markets` dimension says of each, its result ignored) settled with `resolutions`
    /// (condition id and outcome; each applies from its `learned_at`).
    pub fn new(
        config: &EngineConfig,
        markets: BTreeMap<String, Market>,
        resolutions: Vec<(String, Outcome)>,
    ) -> Result<Replay, StrategyError> {
        config.validate()?;
        let engine = Engine::from_config(config)?;
        let markets = markets
            .into_iter()
            .map(|(id, mut market)| {
                // What the markets file says of the result was written later than the rows:
                // the replay learns results from the resolutions alone, at their time.
                market.result = MarketResult::Open;
                market.active = true;
                let state = MarketState {
                    market,
                    row: None,
                    book: None,
                    history: VecDeque::new(),
                };
                (id, state)
            })
            .collect();
        let mut pending: Vec<(Ts, String, Outcome)> = resolutions
            .into_iter()
            .map(|(id, o)| (o.learned_at, id, o))
            .collect();
        pending.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let tally = Tally::new(config, engine.strategies());
        Ok(Replay {
            window: history_window(config),
            engine,
            markets,
            pending: pending.into(),
            last_t: None,
            tally,
            settled: BTreeSet::new(),
        })
    }

    /// The engine (its portfolio, orders and fills so far).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The steps taken so far.
    pub fn steps(&self) -> u64 {
        self.tally.steps
    }

    /// One step at `t` over the rows observed at `t` (other rows are refused and counted).
    /// Resolutions learnt before `t` are applied first, each at its own time. A `t` not after
    /// the previous step's is refused (its rows counted as out of order): observations must
    /// come in time order.
    pub fn step(&mut self, t: Ts, rows: &[SnapshotRow], books: &[BookRow]) -> Option<StepReport> {
        if self.last_t.is_some_and(|last| t <= last) {
            self.tally.rows_out_of_order += (rows.len() + books.len()) as u64;
            return None;
        }
        self.settle_before(t);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for r in rows {
            if r.ts != t {
                self.tally.rows_out_of_order += 1;
                continue;
            }
            let Some(m) = self.markets.get_mut(&r.condition_id) else {
                self.count_unknown(&r.condition_id);
                continue;
            };
            if r.token_id != m.market.yes_token_id {
                self.tally.rows_other_token += 1;
                continue;
            }
            m.row = Some(r.clone());
            seen.insert(r.condition_id.clone());
        }
        for b in books {
            if b.ts != t {
                self.tally.rows_out_of_order += 1;
                continue;
            }
            let Some(m) = self.markets.get_mut(&b.condition_id) else {
                self.count_unknown(&b.condition_id);
                continue;
            };
            if b.book.token_id != m.market.yes_token_id {
                self.tally.rows_other_token += 1;
                continue;
            }
            let mut book = b.book.clone();
            // Observed at its tick: never later than the decision it feeds.
            book.timestamp = Some(t);
            m.book = Some(book);
            seen.insert(b.condition_id.clone());
        }
        Some(self.decide(t, seen))
    }

    /// Applies every resolution learnt so far (each at its own time) and returns the report.
    pub fn finish(mut self, data: DataSummary) -> Report {
        if let Some(last) = self.pending.back().map(|p| p.0) {
            let after = last + chrono::Duration::milliseconds(1);
            self.settle_before(after);
        }
        self.tally.finish(&self.engine, data)
    }

    /// Steps at each learning time of the pending resolutions before `t`.
    fn settle_before(&mut self, t: Ts) {
        while let Some(at) = self.pending.front().map(|p| p.0).filter(|at| *at < t) {
            let at = match self.last_t {
                // A resolution learnt at or before a step already taken applies at the next.
                Some(last) if at <= last => last + chrono::Duration::milliseconds(1),
                _ => at,
            };
            if at >= t {
                return;
            }
            let seen = self.learn_until(at);
            if seen.is_empty() {
                continue;
            }
            self.decide(at, seen);
        }
    }

    /// Marks the markets whose resolution was learnt at or before `t` resolved; returns those
    /// the replay knows.
    fn learn_until(&mut self, t: Ts) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        while self.pending.front().is_some_and(|p| p.0 <= t) {
            let Some((_, id, outcome)) = self.pending.pop_front() else {
                break;
            };
            if let Some(m) = self.markets.get_mut(&id) {
                m.market.result = MarketResult::Resolved(outcome);
                seen.insert(id);
            }
        }
        seen
    }

    /// The engine's step at `t` over the views of `seen` (and of markets resolved at `t`).
    fn decide(&mut self, t: Ts, mut seen: BTreeSet<String>) -> StepReport {
        seen.extend(self.learn_until(t));
        let window = self.window;
        let mut views = Vec::with_capacity(seen.len());
        for id in &seen {
            let Some(m) = self.markets.get_mut(id) else {
                continue;
            };
            let rows: Vec<Snapshot> = m.row.iter().map(SnapshotRow::to_snapshot).collect();
            let event_id = m.market.event_id.clone();
            let mut view = MarketView::build(t, &m.market, event_id, &rows, m.book.as_ref(), None);
            // Only what was observed at `t` joins the history.
            let row_mid = m
                .row
                .as_ref()
                .filter(|r| r.ts == t)
                .and_then(|r| r.mid_price.or(r.price));
            let book_fresh = m.book.as_ref().is_some_and(|b| b.timestamp == Some(t));
            let mid = row_mid.or(view.yes.mid.filter(|_| book_fresh));
            if let Some(mid) = mid.filter(|_| m.history.back().is_none_or(|p| p.ts < t)) {
                m.history.push_back(PricePoint { ts: t, mid });
            }
            while m.history.front().is_some_and(|p| p.ts < t - window) {
                m.history.pop_front();
            }
            view.history = m.history.iter().copied().collect();
            views.push(view);
        }
        let report = self.engine.step(t, &views);
        // The engine's own curve would grow with every step; the tally keeps a bounded one.
        self.engine.take_equity_curve();
        self.last_t = Some(t);
        self.tally.record(&self.engine, &report);
        report
    }
}

/// How far back views reach: twice the longest `mean_reversion` lookback configured (it reads
/// the mid at `t − lookback`, no older than `t − 2 × lookback`), at least an hour.
fn history_window(config: &EngineConfig) -> chrono::Duration {
    let lookback = config
        .strategies
        .get("mean_reversion")
        .and_then(|c| c.params.get("lookback_minutes"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(60)
        .clamp(1, 7 * 24 * 60);
    chrono::Duration::minutes((2 * lookback + 1).max(60))
}

/// What a decision recorded, for the tally: an order, or a rejection by its kind.
fn decision_kind(d: &SignalDecision) -> String {
    match d {
        SignalDecision::Ordered { .. } => "ordered".into(),
        SignalDecision::Rejected { rejection } => serde_json::to_value(rejection)
            .ok()
            .and_then(|v| {
                v.get("rejection")
                    .and_then(|r| r.as_str())
                    .map(String::from)
            })
            .unwrap_or_else(|| "rejected".into()),
    }
}

/// What a [`Replay`] carries from one run to the next when it runs live (the paper executor
/// steps it a few times a minute and keeps it between runs): the paper account, each market's
/// last observation and mid history, the resolutions learnt but not applied yet, and the last
/// step's time. The strategies, risk limits and sizing are not kept: they come from the
/// configuration of the run that resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayState {
    pub broker: crate::broker::PaperBroker,
    pub markets: BTreeMap<String, MarketState>,
    pub pending: VecDeque<(Ts, String, Outcome)>,
    pub last_t: Option<Ts>,
    pub steps: u64,
}

impl ReplayState {
    /// A new account of `config` that knows no market yet.
    pub fn new(config: &EngineConfig) -> ReplayState {
        ReplayState {
            broker: crate::broker::PaperBroker::new(
                config.initial_cash,
                config.execution.taker_fee,
            ),
            markets: BTreeMap::new(),
            pending: VecDeque::new(),
            last_t: None,
            steps: 0,
        }
    }
}

impl Replay {
    /// Resumes a replay kept by [`Replay::suspend`] under `config` (its enabled strategies).
    pub fn resume(config: &EngineConfig, state: ReplayState) -> Result<Replay, StrategyError> {
        config.validate()?;
        let engine = Engine::resume(config, state.broker)?;
        let mut tally = Tally::new(config, engine.strategies());
        tally.steps = state.steps;
        Ok(Replay {
            window: history_window(config),
            engine,
            markets: state.markets,
            pending: state.pending,
            last_t: state.last_t,
            tally,
            settled: BTreeSet::new(),
        })
    }

    /// What [`Replay::resume`] needs to go on.
    pub fn suspend(self) -> ReplayState {
        ReplayState {
            steps: self.tally.steps,
            broker: self.engine.into_execution(),
            markets: self.markets,
            pending: self.pending,
            last_t: self.last_t,
        }
    }

    /// Forgets the markets whose resolution was applied and in which nothing is held (no
    /// position, no resting order): no later row of theirs can change anything, so a long
    /// replay keeps the markets still open or held, not every market it met. Their later rows
    /// are counted (`rows_after_settlement`). Returns how many were forgotten.
    pub fn forget_settled(&mut self) -> usize {
        let engaged = self.engaged_markets();
        let before = self.markets.len();
        let settled = &mut self.settled;
        self.markets.retain(|id, m| {
            let keep =
                engaged.contains(id) || !matches!(m.market.result, MarketResult::Resolved(_));
            if !keep {
                settled.insert(id.clone());
            }
            keep
        });
        before - self.markets.len()
    }

    fn count_unknown(&mut self, id: &str) {
        if self.settled.contains(id) {
            self.tally.rows_after_settlement += 1;
        } else {
            self.tally.rows_unknown_market += 1;
        }
    }

    /// Whether the replay knows the market.
    pub fn knows(&self, condition_id: &str) -> bool {
        self.markets.contains_key(condition_id)
    }

    /// Adds a market (what the store says of it, its result ignored: results come from
    /// [`Replay::learn`]) or updates what is known of one, keeping its observations.
    pub fn track(&mut self, mut market: Market) {
        market.result = MarketResult::Open;
        market.active = true;
        match self.markets.get_mut(&market.condition_id) {
            Some(m) => m.market = market,
            None => {
                let id = market.condition_id.clone();
                self.markets.insert(
                    id,
                    MarketState {
                        market,
                        row: None,
                        book: None,
                        history: VecDeque::new(),
                    },
                );
            }
        }
    }

    /// Learns a market's resolution (applied at the first step after its `learned_at`, or at
    /// once when that is already past); learning it again does nothing.
    pub fn learn(&mut self, condition_id: &str, outcome: Outcome) {
        let resolved = self
            .markets
            .get(condition_id)
            .is_some_and(|m| matches!(m.market.result, MarketResult::Resolved(_)));
        if resolved || self.pending.iter().any(|p| p.1 == condition_id) {
            return;
        }
        let at = outcome.learned_at;
        let i = self
            .pending
            .iter()
            .position(|p| (p.0, p.1.as_str()) > (at, condition_id))
            .unwrap_or(self.pending.len());
        self.pending
            .insert(i, (at, condition_id.to_string(), outcome));
    }

    /// Markets with an open position or a resting order: those whose resolution matters now.
    pub fn engaged_markets(&self) -> BTreeSet<String> {
        use crate::broker::Execution;
        let e = self.engine.execution();
        e.portfolio()
            .positions
            .values()
            .map(|p| p.condition_id.clone())
            .chain(
                e.orders()
                    .iter()
                    .filter(|o| o.is_open())
                    .map(|o| o.request.condition_id.clone()),
            )
            .collect()
    }

    /// Forgets markets past their end by more than `after` with nothing engaged in them, so a
    /// long-running live replay does not keep every market it ever saw.
    pub fn forget_ended(&mut self, now: Ts, after: chrono::Duration) -> usize {
        let engaged = self.engaged_markets();
        let pending: BTreeSet<String> = self.pending.iter().map(|p| p.1.clone()).collect();
        let before = self.markets.len();
        self.markets.retain(|id, m| {
            engaged.contains(id) || pending.contains(id) || m.market.end_date + after > now
        });
        before - self.markets.len()
    }
}
