//! polytape's paper trading core: the strategies, the signals they emit, risk limits, sizing,
//! paper fills against a recorded order book, positions and P&L, the [`Engine`] step that runs
//! them in order, and the backtester over a data directory. Only [`EngineConfig::load`] (a
//! file) and [`backtest::data`] (stored Parquet, through polytape-store) do I/O, and no order is
//! ever sent to Polymarket: the live executor (after each T2+ tick, over the store ports) and
//! the backtester (over stored Parquet, in time order) both build [`MarketView`]s of what was
//! observed at or before a time `t` and call [`Engine::step`], so a strategy judged on history
//! runs the very same code on paper.
//!
//! Money (prices, shares, USD) is [`rust_decimal::Decimal`]; `f64` only for confidence and
//! volatility ratios.
//!
//! # Layout
//! * [`view`]: [`MarketView`], what a strategy may see of one market at decision time `t`,
//!   built from polytape-core's `Market`, `Snapshot`s and `Book`s with no look-ahead.
//! * [`signal`]: [`Signal`] (buy one outcome token), [`Outcome`] (YES / NO) and [`ExitReason`].
//! * [`strategy`]: the [`Strategy`] trait and the registry that builds strategies from config.
//! * [`strategies`]: `longshot_yes`, `longshot_no`, `mean_reversion`, `term_structure`, each
//!   with typed parameters and their defaults.
//! * [`sizing`]: fixed USD, Kelly fraction and volatility-scaled sizes.
//! * [`risk`]: [`RiskLimits`] and [`RiskManager::check`] (max position, total exposure, open
//!   positions, drawdown).
//! * [`fill`]: [`walk_book`] and the taker [`FeeModel`]: what a market order gets from a book.
//! * [`portfolio`]: positions, cash, marks, settlement and per-strategy P&L, equity points.
//! * [`broker`]: the [`Execution`] port and [`PaperBroker`] (market, limit and spread orders).
//! * [`engine`]: [`Engine::step`]: settle → resting orders → filter → scan → sizing → risk →
//!   execution → mark → exits, deterministically.
//! * [`config`]: the executor configuration (mode, execution, sizing, risk, strategies), read
//!   from YAML (`examples/executor.yaml`) with unknown keys refused.
//! * [`backtest`]: [`backtest::Replay`] steps the engine over stored rows in time order;
//!   [`backtest::run_backtest`] reads a data directory; [`backtest::Report`] is `report.json`
//!   and `report.html`.
//! * [`error`]: the crate's one error type, [`StrategyError`].

pub mod backtest;
pub mod broker;
pub mod config;
pub mod engine;
pub mod error;
pub mod fill;
pub mod portfolio;
pub mod risk;
pub mod signal;
pub mod sizing;
pub mod strategies;
pub mod strategy;
pub mod view;

pub use broker::{Execution, FillEvent, Liquidity, Order, OrderKind, OrderStatus, PaperBroker};
pub use config::{EngineConfig, ExecutionConfig, Mode, OrderStyle, StrategyConfig};
pub use engine::{Engine, SignalDecision, StepReport};
pub use error::StrategyError;
pub use fill::{walk_book, Amount, FeeModel, Fill};
pub use portfolio::{
    CloseReason, ClosedPosition, EquityPoint, Portfolio, Position, PositionKey, StrategyPnl,
};
pub use risk::{Rejection, RiskLimits, RiskManager};
pub use signal::{ExitReason, Outcome, Signal};
pub use sizing::Sizing;
pub use strategy::{build_strategies, Strategy};
pub use view::{MarketView, PricePoint, Quote};

/// Timestamps are UTC, as everywhere in polytape.
pub use polytape_core::Ts;

#[cfg(test)]
pub(crate) mod testkit;
