//! The live paper executor against the simulator over real sockets: discovery and the T2–T4
//! ticks of one slot fetch markets and books from the simulator over HTTP into a local store,
//! then the executor steps that slot. Each paper fill must equal the walk of the book the
//! simulator served for that tick (found by the stored row's `book_hash` in the simulator's
//! log of served books) — including an order larger than the book, which fills only what the
//! book shows — and a position in a market the simulator resolves settles at the recorded
//! outcome with the right P&L.
#![allow(clippy::unwrap_used)]

mod common;

use common::{env_with, read_parquet, string, Env};
use polytape_collector::discover::discover;
use polytape_collector::executor::{self, ExecutorSettings, ExecutorState};
use polytape_collector::resolutions::resolve;
use polytape_collector::snapshot::{snapshot_tick, TickDeadline};
use polytape_collector::{Config, FixedClock};
use polytape_core::book::BookSide;
use polytape_core::{Level, TickId, Tier, Ts};
use polytape_sim::{SimConfig, SimResult};
use polytape_store::{keys, MarketStore};
use polytape_strategy::engine::SignalDecision;
use polytape_strategy::{
    walk_book, Amount, CloseReason, EngineConfig, Execution, FeeModel, Outcome,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A minute boundary, so every order-book tier has a tick at it.
fn slot() -> Ts {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

/// Buys YES where its ask is in [0.02, 0.99] and NO where YES is under 0.98: most markets.
fn config(usd: &str, cash: &str) -> EngineConfig {
    let yaml = format!(
        "mode: paper
initial_cash: {cash}
execution: {{order: {{style: market}}, taker_fee: {{rate: 0.03, exponent: 1}}}}
sizing: {{method: fixed, usd: {usd}}}
risk: {{max_position_usd: {cash}, max_total_exposure_usd: {cash}, max_open_positions: 10000, max_drawdown: 0.99, min_order_usd: 1}}
strategies:
  longshot_yes: {{enabled: true, params: {{min_price: 0.02, max_price: 0.99, max_hours_to_close: 1000, stop_loss: null}}}}
  longshot_no: {{enabled: true, params: {{min_yes_price: 0.01, max_yes_price: 0.98, max_hours_to_close: 1000, stop_loss: null}}}}
"
    );
    EngineConfig::from_yaml(&yaml, "test").unwrap()
}

/// Discovery, then the T2, T3 and T4 ticks at [`slot`], each two seconds after its time.
async fn collect_slot() -> Env {
    let mut cfg = SimConfig::new(11);
    cfg.markets_per_tier = 6;
    cfg.now = slot();
    let e = env_with(cfg, 50).await;
    e.clock.set(slot() - chrono::Duration::seconds(30));
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    for tier in [Tier::T2, Tier::T3, Tier::T4] {
        let tick = TickId {
            tier,
            tick_ts: slot(),
        };
        e.clock.set(slot() + chrono::Duration::seconds(2));
        let deadline = TickDeadline::of(tick, None, Config::default().tick_margin);
        let r = snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
            .await
            .unwrap();
        assert!(r.books > 0, "{tier}: no book stored");
    }
    e
}

/// Runs the executor as if at `at` and returns its state.
async fn step(e: &Env, config: &EngineConfig, at: Ts) -> ExecutorState {
    let settings = ExecutorSettings {
        config: config.clone(),
        source: "test".into(),
    };
    let r = executor::run_due(&e.store, &settings, &FixedClock::new(at))
        .await
        .unwrap()
        .expect("the lease is free");
    assert!(r.slots > 0);
    executor::load_state(&e.store).await.unwrap().unwrap()
}

/// (condition id, token id) → the hash of the book stored for the slot.
fn stored_hashes(e: &Env) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for tier in [Tier::T2, Tier::T3, Tier::T4] {
        let key = keys::orderbooks(&TickId {
            tier,
            tick_ts: slot(),
        });
        let path = e.dir.path().join(&key);
        if !path.exists() {
            continue;
        }
        for b in read_parquet(&path) {
            for i in 0..b.num_rows() {
                out.insert(
                    (
                        string(&b, "condition_id", i).unwrap(),
                        string(&b, "token_id", i).unwrap(),
                    ),
                    string(&b, "book_hash", i).unwrap(),
                );
            }
        }
    }
    out
}

/// The hash of the (YES) book stored for a market: polytape stores one book per market.
fn yes_book_hash<'a>(
    hashes: &'a BTreeMap<(String, String), String>,
    condition_id: &str,
) -> &'a str {
    hashes
        .iter()
        .find(|((c, _), _)| c == condition_id)
        .map(|(_, h)| h.as_str())
        .unwrap_or_else(|| panic!("no book stored for {condition_id}"))
}

/// The asks a buy of `outcome` walks in the book the simulator served: the YES book's asks
/// for YES; for NO, the YES book's bids at `1 − p` (polytape records the YES book; on the CLOB
/// a NO buy at `1 − p` matches a YES bid at `p`).
fn served_asks(e: &Env, hash: &str, outcome: Outcome) -> Vec<Level> {
    let truth = e.sim.truth();
    let served = truth
        .served_books
        .get(hash)
        .unwrap_or_else(|| panic!("the simulator never served a book with hash {hash}"));
    let level = |&(price, size): &(Decimal, Decimal)| Level { price, size };
    match outcome {
        Outcome::Yes => served.asks.iter().map(level).collect(),
        Outcome::No => served
            .bids
            .iter()
            .map(|&(p, s)| Level {
                price: Decimal::ONE - p,
                size: s,
            })
            .collect(),
    }
}

#[tokio::test]
async fn given_a_slot_collected_from_the_simulator_then_each_paper_fill_is_the_walk_of_the_book_it_served(
) {
    let e = collect_slot().await;
    let config = config("25", "100000");
    let state = step(&e, &config, slot() + chrono::Duration::seconds(80)).await;
    assert_eq!(state.last_slot, Some(slot()));
    let hashes = stored_hashes(&e);
    let broker = &state.replay.broker;
    let fills = broker.fills();
    assert!(
        fills.len() >= 4,
        "expected fills in most markets, got {}",
        fills.len()
    );
    let (mut yes, mut no, mut charged, mut free) = (0, 0, 0, 0);
    for f in fills {
        let order = &broker.orders()[(f.order_id - 1) as usize];
        let Amount::Usd(usd) = order.request.amount else {
            panic!("entries are sized in USD");
        };
        let levels = served_asks(&e, yes_book_hash(&hashes, &f.condition_id), f.outcome);
        // The market's own fee as Gamma stated it, else the configuration's.
        let market = e.store.get_market(&f.condition_id).await.unwrap().unwrap();
        let fee = FeeModel::of_market(&market).unwrap_or(FeeModel {
            rate: Decimal::new(3, 2),
            exponent: 1,
        });
        if fee.rate > Decimal::ZERO {
            charged += 1;
        } else {
            free += 1;
        }
        assert_eq!(
            f.fill,
            walk_book(&levels, BookSide::Ask, Amount::Usd(usd), &fee),
            "{} {:?}",
            f.condition_id,
            f.outcome
        );
        assert!(f.fill.cost <= usd);
        match f.outcome {
            Outcome::Yes => yes += 1,
            Outcome::No => no += 1,
        }
    }
    assert!(yes > 0 && no > 0, "YES fills {yes}, NO fills {no}");
    assert!(charged > 0, "no fill in a market that charges a fee");
    assert!(free > 0, "no fill in a market without fees");
    // Every signal of the step is recorded with what became of it: one order per "ordered".
    let ordered = state
        .signals
        .iter()
        .filter(|s| matches!(s.decision, SignalDecision::Ordered { .. }))
        .count();
    assert_eq!(ordered, broker.orders().len());
    // The step's records are in the Parquet tables, under the slot's keys.
    let table = |t: &str| read_parquet(&e.dir.path().join(keys::paper(t, slot())));
    let fill_rows = table(keys::FILLS);
    let n: usize = fill_rows.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, fills.len());
    let notional: Decimal = fill_rows
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |i| common::decimal(b, "notional", i).unwrap()))
        .sum();
    // Stored DECIMAL(18,6): each row's notional rounded to the micro-dollar, half to even.
    let rounded = |d: Decimal| {
        d.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointNearestEven)
    };
    assert_eq!(
        notional,
        fills.iter().map(|f| rounded(f.fill.cost)).sum::<Decimal>()
    );
    let signal_rows: usize = table(keys::SIGNALS).iter().map(|b| b.num_rows()).sum();
    assert_eq!(signal_rows, state.signals.len());
    let position_rows: usize = table(keys::POSITIONS).iter().map(|b| b.num_rows()).sum();
    assert_eq!(position_rows, broker.portfolio().positions.len());
    // Cash went down by exactly what the fills cost.
    let spent: Decimal = fills.iter().map(|f| f.fill.cost + f.fill.fee).sum();
    assert_eq!(
        broker.portfolio().cash,
        Decimal::from(100_000) - spent,
        "cash after the fills"
    );
}

#[tokio::test]
async fn given_an_order_larger_than_the_book_then_it_fills_only_what_the_book_shows() {
    let e = collect_slot().await;
    let config = config("1000000", "100000000");
    let state = step(&e, &config, slot() + chrono::Duration::seconds(80)).await;
    let hashes = stored_hashes(&e);
    let fills = state.replay.broker.fills();
    assert!(!fills.is_empty());
    for f in fills {
        let levels = served_asks(&e, yes_book_hash(&hashes, &f.condition_id), f.outcome);
        let shown: Decimal = levels.iter().map(|l| l.size).sum();
        let value: Decimal = levels.iter().map(|l| l.size * l.price).sum();
        assert_eq!(
            f.fill.shares, shown,
            "{}: the whole book, no more",
            f.condition_id
        );
        assert_eq!(f.fill.cost, value);
        assert_eq!(f.fill.levels_used as usize, levels.len());
    }
}

#[tokio::test]
async fn given_a_position_in_a_market_the_simulator_resolves_then_it_settles_at_the_recorded_outcome(
) {
    let e = collect_slot().await;
    let config = config("25", "100000");
    let state = step(&e, &config, slot() + chrono::Duration::seconds(80)).await;
    let positions = &state.replay.broker.portfolio().positions;
    let held = positions.values().next().expect("a position").clone();
    // The market resolves YES; the run after polytape learnt it settles the position.
    assert!(e.sim.finalize(&held.condition_id, SimResult::Winner(0)));
    let learnt_at = slot() + chrono::Duration::minutes(5);
    e.clock.set(learnt_at);
    resolve(&e.client, &e.store, &e.clock).await.unwrap();
    let state = step(&e, &config, learnt_at + chrono::Duration::seconds(90)).await;
    let portfolio = state.replay.broker.portfolio();
    let closed: Vec<_> = portfolio
        .closed
        .iter()
        .filter(|c| c.condition_id == held.condition_id)
        .collect();
    assert!(
        !closed.is_empty(),
        "nothing settled in {}",
        held.condition_id
    );
    for c in closed {
        let payout = match c.outcome {
            Outcome::Yes => Decimal::ONE,
            Outcome::No => Decimal::ZERO,
        };
        assert_eq!(c.reason, CloseReason::Settled { payout });
        assert_eq!(c.proceeds, c.shares * payout);
        assert_eq!(c.realised_pnl, c.shares * payout - c.cost);
        assert!(c.closed_at >= learnt_at);
    }
    assert!(!portfolio
        .positions
        .values()
        .any(|p| p.condition_id == held.condition_id));
}

#[tokio::test]
async fn given_a_run_that_steps_nothing_new_then_it_leaves_the_state_as_it_was() {
    let e = collect_slot().await;
    let config = config("25", "100000");
    let at = slot() + chrono::Duration::seconds(80);
    let first = step(&e, &config, at).await;
    let settings = ExecutorSettings {
        config: config.clone(),
        source: "test".into(),
    };
    let again = executor::run_due(&e.store, &settings, &FixedClock::new(at))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.slots, 0);
    let state = executor::load_state(&e.store).await.unwrap().unwrap();
    assert_eq!(state.replay, first.replay);
    assert_eq!(state.last_slot, first.last_slot);
}

#[tokio::test]
async fn given_the_same_stored_ticks_then_the_live_executor_and_the_backtester_decide_alike() {
    let e = collect_slot().await;
    let config = config("25", "100000");
    let state = step(&e, &config, slot() + chrono::Duration::seconds(80)).await;
    let report = polytape_strategy::backtest::run_backtest(e.dir.path(), &config)
        .await
        .unwrap();
    let broker = &state.replay.broker;
    assert!(!broker.fills().is_empty());
    assert_eq!(report.total.fills, broker.fills().len() as u64);
    assert_eq!(report.total.final_cash, broker.portfolio().cash);
    assert_eq!(
        report.total.open_positions,
        broker.portfolio().positions.len() as u64
    );
    for (name, s) in &report.strategies {
        let live: Decimal = broker
            .fills()
            .iter()
            .filter(|f| &f.strategy == name)
            .map(|f| f.fill.cost)
            .sum();
        assert_eq!(s.bought_usd, live, "{name}");
    }
}
