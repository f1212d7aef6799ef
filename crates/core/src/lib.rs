//! polytape's domain: what a market, a tier, an order book and a snapshot row are, and the pure
//! functions that turn observations into features. Nothing here does I/O; the `polymarket`
//! crate decodes the wire into these types and the `store` crate persists them.
//!
//! # Layout
//! * [`tier`]: the tier table — the one source of tier boundaries, snapshot intervals and
//!   order-book / WebSocket flags — and tier assignment from time to close.
//! * [`schedule`]: which ticks are due in a given minute, derived from the tier table.
//! * [`market`]: a tracked market ([`Market`]) and the per-tick values Gamma reports ([`MarketQuote`]).
//! * [`book`]: order-book levels and books, with validation of prices and sizes.
//! * [`features`]: order-book features at the N *best* levels, whatever order the input has.
//! * [`flow`]: trades, last-hour trade flow and whale activity.
//! * [`snapshot`]: the `snapshots` row with every column of DESIGN.md, built from the above.
//! * [`ops`]: operational records (task runs, tier transitions, coverage, latest values per tier).
//! * [`money`]: decimal helpers (the fixed scale of the Parquet columns).
//! * [`paper`]: the paper executor's rows (`signals`, `fills`, `positions` tables).

pub mod book;
pub mod features;
pub mod flow;
pub mod live;
pub mod market;
pub mod money;
pub mod ops;
pub mod paper;
pub mod schedule;
pub mod snapshot;
pub mod tier;

pub use book::{Book, Level};
pub use features::BookFeatures;
pub use flow::{FlowSums, FlowTrade, Side, Trade, TradeFlow};
pub use market::{FeeSchedule, Market, MarketQuote, MarketResult, Outcome, Resolution};
pub use schedule::TickId;
pub use snapshot::Snapshot;
pub use tier::{Tier, TierSpec, TIERS};

/// Timestamps are UTC everywhere in polytape.
pub type Ts = chrono::DateTime<chrono::Utc>;
