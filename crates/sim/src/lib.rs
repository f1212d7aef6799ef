//! A simulated Polymarket served over real HTTP (Gamma, CLOB, Data API) and a market WebSocket on
//! one local port, deterministic from a seed. Tests, benchmarks and `polytape run --simulate`
//! point the collector at it through the usual base URLs.
//!
//! The simulator produces its wire JSON on its own — it does not use `polytape-core` or
//! `polytape-polymarket` — so a test that compares what the collector stored with the simulator's
//! [`Truth`] checks the decoding instead of repeating it.
//!
//! The world (events, markets, token ids, end dates) is a pure function of [`SimConfig::seed`] and
//! [`SimConfig::now`]; prices, books and trades are pure functions of (seed, market, sim-clock
//! second), so a book served twice in the same second is identical and carries the same hash.
//!
//! Each market is served with its event (`events: [{id, slug, title, …}]`); an event of
//! several markets that is not neg-risk is one question with several deadlines ("Will X … by
//! June 2?", "… by June 3?", each with its own end date and price walk), what `term_structure`
//! compares. Fees as Gamma states them, a pure function of (seed, market id): ≈ 30 % of markets
//! `feesEnabled: true` with a `feeSchedule` (rate 0.03 or 0.04, exponent 1, rebate 0.25,
//! `takerOnly`), ≈ 10 % `feesEnabled: true` without a schedule (as the recorded crypto up/down
//! market), the rest `feesEnabled: false` ([`TruthMarket::fee`]).
//!
//! # Static and rolling worlds
//!
//! By default ([`SimConfig::new_markets_per_hour`] = 0) the world is generated once: its T4
//! markets end within the first hour and every market within 336 h, and nothing ever changes
//! state. With a rate > 0 the world *rolls*, for runs of days:
//! * **Arrivals.** New markets keep appearing, arrival `i` at a deterministic jittered time in
//!   the slot `[now − 336 h + i/rate, now − 336 h + (i+1)/rate)` hours, each a pure function of
//!   (seed, i). The stream starts 336 h *before* [`SimConfig::now`], so the tiers are already in
//!   steady state at start: each arrival's end is its arrival time + a time-to-close uniform in
//!   (1 h, 336 h], so about `rate × 1 h` markets sit in T4, `rate × 3 h` in T3, `rate × 7.8 h` in
//!   T2, `rate × 33 h` in T1, `rate × 124 h` in T0 (≈ `rate × 170` open in all). 90 % are
//!   tradeable, 5 % LowVolume and 5 % NoOrderBook traps; they come in events of 1–4 (some
//!   neg-risk), with ids above every generated one.
//! * **Resolution.** A market whose end passed more than [`SimConfig::resolve_after`] ago
//!   closes (`closedTime` = end + `resolve_after`, its book gone: 404, left out of `POST /books`,
//!   no WebSocket events) and goes on to a final result along a course drawn from the seed and
//!   its id, with F = [`SimConfig::finalize_after`]: ≈ 80 % proposed at once and final (that
//!   winner) F later; ≈ 10 % proposed, disputed at F/2, re-proposed at F (maybe the other
//!   outcome) and final at 2F; ≈ 5 % proposed and final Invalid (50-50) at F — never a
//!   neg-risk market, which cannot void; ≈ 5 % closed with nothing proposed and final without a
//!   status at F (see [Resolution](#resolution) for what each stage serves). About 10 % keep
//!   `acceptingOrders: true` once closed. This applies to the generated markets that have not
//!   ended yet too; traps already past their end stay as they are. Until it closes, an ended
//!   market is served open (`closed=false`), like Gamma.
//! * **Bounded memory.** A market is dropped from the world 48 h (sim time) after it became
//!   final (`closed=false` listings stopped showing it long before), so a rolling world holds
//!   about `rate × 222` markets however long it runs (≈ 4,450 at 20/h). The rate is capped at
//!   600/h.
//!
//! The world is brought up to the sim clock lazily — before each request is handled, on each
//! WebSocket tick, and in [`SimHandle::truth`] — in work proportional to what changed. Starting
//! with `now` in the past fast-forwards: the clock reads `now + real time elapsed`.
//!
//! # Resolution
//!
//! A market's [`TruthStage`] is served on Gamma as Polymarket shows it (`closedTime` in Gamma's
//! `"2026-03-19 23:20:15+00"` form from the close on, kept; `closed: true` from then on, so
//! Gamma's default `closed=false` listings leave it out and only `closed=true` lookups return it):
//! * **Open**: `closed: false`, no `umaResolutionStatus`, `umaResolutionStatuses: "[]"`, market
//!   prices.
//! * **Closed**: no `umaResolutionStatus`, statuses `"[]"`, prices frozen at the close.
//! * **Proposed**: `umaResolutionStatus: "proposed"`, statuses `["proposed"]` (the history so
//!   far), prices near-final but not final (`["0.9995", "0.0005"]` for the proposed winner), or
//!   for ≈ 10 % untraded-looking `["0.5", "0.5"]`, which is not a void.
//! * **Disputed**: `"disputed"`, `"disputed"` appended to the statuses, prices unchanged; a
//!   re-proposal appends `"proposed"` again.
//! * **Final**: `"resolved"`, `"resolved"` appended to the statuses — except for ≈ 20 % whose
//!   history stops short (`["proposed"]` with status `"resolved"`, as in a real capture);
//!   prices exactly `["1", "0"]` / `["0", "1"]` for a winner, `["0.5", "0.5"]` for Invalid.
//! * **Final without status**: no `umaResolutionStatus`, statuses `"[]"`, prices 1/0 (the real
//!   quirk of `gamma_market_closed_accepting_true_nautilus.json`).
//!
//! The CLOB market (`GET /clob/markets/{condition_id}`, snake_case like
//! `clob_market_closed_*_nautilus.json`) marks the winning token `winner: true` (price 1) once
//! final, with or without a Gamma status; Invalid has no winner, both prices 0.5 and
//! `is_50_50_outcome: true`. Before that, and for [`SimConfig::clob_resolution_lag`] after
//! it, it reads `closed: false` with no winner and the last market prices, as the real CLOB lags
//! Gamma. Unknown (or delisted) condition ids answer 404.
//!
//! Tests move a market by hand with [`SimHandle::close_market`], [`SimHandle::propose_result`],
//! [`SimHandle::dispute`], [`SimHandle::finalize`] ([`SimResult`]: a winner or Invalid),
//! [`SimHandle::finalize_without_status`], and take it out of the world with
//! [`SimHandle::delist`]. [`TruthMarket::stage`], [`TruthMarket::final_at`] and
//! [`TruthMarket::closed_time`] record what was served; [`Truth::delisted`] the delisted ids.
//!
//! # Bad input on purpose
//!
//! * **Schema drift** ([`SimConfig::schema_drift`]): that fraction of the markets (each drawn
//!   from the seed and its id, whatever its kind, tradeable ones included) is served with
//!   non-essential Gamma fields of the wrong type — the fields of [`DRIFTED_FIELDS`]:
//!   `updatedAt: "yesterday"`, `volume1yr: true`, `oneWeekPriceChange` as an array, `volume1wk`
//!   as an object, `competitive: "high"` (the last three are the only sources of a snapshot's
//!   `price_change_1w`, `volume_1w` and `competitive`) — and their CLOB books (REST and
//!   WebSocket `book` events) carry `timestamp` as an object and `hash` as an array. Such a
//!   market's [`TruthMarket::drifted_fields`] lists the drifted Gamma fields, and its served books
//!   are marked [`ServedBook::drifted`].
//! * **Corrupted markets and books** ([`SimHandle::corrupt_market`] with a [`BadMarket`]: two
//!   wrong-typed fields, or a `conditionId` nothing can be attributed by;
//!   [`SimHandle::corrupt_book`] with a [`BadLevel`]: a price above 1, a negative size, a crossed
//!   book, a level of size 0).
//! * **Markets closed, proposed, disputed, finalized or delisted now** (the knobs of
//!   [Resolution](#resolution)).
//! * **Refused token ids** ([`SimHandle::reject_token`]): any `POST /books` holding one, or
//!   `GET /book` of it, answers 400 with a small JSON error body.
//! * **Failing markets** ([`SimHandle::fail_markets`] until [`SimHandle::heal_markets`]): every
//!   HTTP request naming one of them (Gamma by condition id, books of their tokens) answers
//!   503 — a tier's requests failing for as many ticks as the test wants.
//! * **Long cursors** ([`SimConfig::cursor_len`]): keyset cursors padded to a length.
//!
//! # Market WebSocket
//!
//! `/ws/market` speaks Polymarket's market channel (polymarket-api.md §3):
//! * **Subscribe first.** The first frame must be `{"assets_ids":[…],"type":"market"}`
//!   (`"MARKET"` accepted, `"initial_dump": false` honoured); anything else first — a `PING`
//!   included — is answered with close 1008 "invalid subscription payload". Later
//!   `{"operation":"subscribe"|"unsubscribe","assets_ids":[…]}` frames change the set; other
//!   frames are ignored.
//! * **Initial dump** as ONE array of `book` events (a later subscribe: one array for the new
//!   assets), then live events every ~500 ms: `last_trade_price` for each trade of the stream
//!   (the very trades the Data API serves, `timestamp` in ms where the Data API has seconds), a
//!   `price_change` (v2) or a fresh `book` when a book changed. Frames are a bare object or an
//!   array of 1–3 events. Text `PING` → `PONG`.
//! * **500 assets per connection.** A connection serves the first 500 distinct assets it
//!   subscribed (first frame and later subscribes together; unsubscribing frees places); any
//!   more are silently ignored — no book, no event, nothing said ([`WsCounters::assets_ignored`]).
//! * **Idle close.** A connection from which nothing arrives (no `PING`, no frame) for
//!   [`SimConfig::ws_idle_timeout`] of real time (60 s by default) is closed by the server with
//!   a close frame, 1001 "idle timeout" (Polymarket documents no code; this one is the
//!   simulator's) ([`WsCounters::idle_closed`]).
//! * **Trade events without `size`** ([`SimConfig::ws_missing_size`]) and **sent twice**
//!   ([`SimConfig::ws_duplicate_trades`], the identical text again in the same frame or the
//!   next): per trade, drawn from the seed and the trade, so every connection sends it alike.
//!
//! Knobs on the handle for faults (counted in [`Counters::ws`]):
//! * [`SimHandle::drop_ws_connections`]: every open connection drops without a close frame (the
//!   TCP connection closes); later connections are served normally.
//! * [`SimHandle::stall_ws`] / [`SimHandle::resume_ws`]: the connections open at the stall keep
//!   answering `PING` with `PONG` but send nothing else until resumed; what they would have sent
//!   is lost ([`WsCounters::events_withheld`]). Later connections are not stalled.
//! * [`SimHandle::inject_ws_malformed`]: the next n JSON frames sent (dumps included) are each
//!   preceded by an extra frame that is not JSON (its first half); nothing is lost.
//! * [`SimHandle::inject_ws_unknown`]: the next n live frames come as arrays holding a
//!   `mystery_event` among the real events, each of which carries an extra `unknown_field`.
//!
//! [`Truth::ws_trades`] lists every `last_trade_price` sent, per connection, with whether its
//! `size` was sent and whether it was duplicated; [`SimHandle::trades`] lists the truth trades of
//! a market between two times, for checking a capture or a backfill against.
//!
//! # Data API trades
//!
//! `GET /data/trades?market=<cid,…>&limit&offset&start&end&side&takerOnly` serves the same
//! trades newest first: `limit` clamped to 10,000, `offset` past 10,000 → 400 (never clamped),
//! `start`/`end` epoch seconds (inclusive), `timestamp` in seconds. `takerOnly=true` (the
//! default) serves each fill once, from the taker's side; `false` adds the maker's row (another
//! wallet, the other side). A market keeps its trade history once its book is gone (closed).
//! With [`SimConfig::block_lag`] a trade is *mined* after it is matched, as on Polymarket: its
//! row is served only once its block time has passed, with the block second as `timestamp`, and
//! `start`/`end` and the newest-first order are on that clock (the WebSocket keeps the match
//! time), so a trade matched just before a reconnect may carry a block time after it.
//! Markets trade a few times a minute; the [`SimConfig::busy_markets`] 12–13 times a second, so
//! half an hour holds more than offset paging can reach (offset 10,000 + limit 10,000) and a
//! client must page inside `start`/`end` windows.
//!
//! # Layout
//! * [`rng`]: SplitMix64 and the hash mixers every deterministic value is drawn from.
//! * `world`: generation of events and markets, one [`MarketKind`] each (tradeable or a trap),
//!   and the rolling world's arrivals and pruning; `world::resolution`: the stages from open to
//!   final, the rolling world's resolution courses and the knobs that move a market by hand.
//! * `book`: the per-token price walk, top of book and full books (Polymarket order: best LAST),
//!   with the [`BadLevel`]s and the drifted `timestamp`/`hash` of a drifted market's books.
//! * `gamma`: Gamma market and event objects (each stage's status and prices) and the keyset /
//!   legacy listing endpoints.
//! * `clob`: `GET /book` and `POST /books` (a refused token id answers 400), and the CLOB market
//!   `GET /markets/{condition_id}`.
//! * `data`: the Data API trade stream (busy markets included) and `GET /trades` (the same
//!   trades the WebSocket reports; maker rows with `takerOnly=false`).
//! * `ws`: the market WebSocket (`/ws/market`): subscribe, PING/PONG, book dumps, live events,
//!   the 500-asset cap, idle close, and the fault knobs (drop, stall, malformed, unknown).
//! * `server`: the axum router, fault injection, latency, request log and truth recording (the
//!   WebSocket knobs' shared state too).
//! * `query`: raw query-string parsing (repeated keys) and the opaque keyset cursor (padded to
//!   [`SimConfig::cursor_len`]).
//! * `error`: [`SimError`], the simulated API's client errors.

mod book;
mod clob;
mod data;
mod error;
mod gamma;
mod query;
pub mod rng;
mod server;
mod world;
mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use error::SimError;

/// The Gamma fields a drifted market ([`SimConfig::schema_drift`]) is served with of the wrong
/// type. None is essential to a client; `oneWeekPriceChange`, `volume1wk` and `competitive` are
/// each the one source of a snapshot value (1-week price change, 1-week volume, competitive).
pub const DRIFTED_FIELDS: [&str; 5] = [
    "updatedAt",
    "volume1yr",
    "oneWeekPriceChange",
    "volume1wk",
    "competitive",
];

/// How the simulated world is generated and served.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Everything random is drawn from this seed.
    pub seed: u64,
    /// Tradeable (discoverable) markets generated per tier bucket of hours-to-close:
    /// (0,1], (1,4], (4,12], (12,48], (48,336]. Plus the trap markets ([`SimConfig::traps_per_kind`]
    /// of each non-tradeable [`MarketKind`]).
    pub markets_per_tier: usize,
    /// World anchor: end dates are relative to it, and the sim clock reads
    /// `now + real time elapsed since start`.
    pub now: DateTime<Utc>,
    /// Added to every HTTP response.
    pub latency: Duration,
    /// Minimum and maximum number of levels per book side (fewer only when a tick grid cannot hold
    /// that many prices on one side).
    pub book_levels: (usize, usize),
    /// Markets arriving per hour of sim time. 0 (the default) keeps the static world exactly as
    /// generated; > 0 makes it roll: markets keep arriving, ended markets resolve and old ones
    /// are dropped (see the crate docs). Capped at 600; NaN or negative is 0.
    pub new_markets_per_hour: f64,
    /// In a rolling world, how long after its end date a market closes and its result is
    /// proposed (default 1 h). Ignored by the static world.
    pub resolve_after: Duration,
    /// In a rolling world, how long a proposal stands before the result is final (default 2 h of
    /// sim time, UMA's challenge period); a disputed market takes twice as long (see the crate
    /// docs). Ignored by the static world.
    pub finalize_after: Duration,
    /// How long after a market became final the CLOB market endpoint still shows it
    /// `closed: false` with no winner (default zero), as the real CLOB lags Gamma by minutes.
    pub clob_resolution_lag: Duration,
    /// The fraction of markets served with drifted field types (see the crate docs), 0.0 (the
    /// default) to 1.0; which markets is drawn from the seed and each market's id.
    pub schema_drift: f64,
    /// Every keyset `next_cursor` is padded to at least this many bytes (default 0: as short as
    /// it is), to test URL budgets. Padded cursors are accepted back as `after_cursor`.
    pub cursor_len: usize,
    /// How many markets trade busily (default 0): 12–13 trades a second each instead of a few a
    /// minute, so a test window of a few minutes holds more than the Data API's offset cap of
    /// 10,000 and a client must page inside `start`/`end` windows. They are the generated
    /// tradeable markets with the latest end dates ([`TruthMarket::busy`] marks them).
    pub busy_markets: usize,
    /// A market WebSocket connection from which nothing arrives (no `PING`, no frame at all) for
    /// this long of real time is closed by the server (default 60 s, as Polymarket closes idle
    /// connections); zero never closes.
    pub ws_idle_timeout: Duration,
    /// The fraction of `last_trade_price` events sent without `size` (default 0), 0.0 to 1.0;
    /// which trades is drawn from the seed and the trade, the same on every connection. The Data
    /// API still serves their size.
    pub ws_missing_size: f64,
    /// The fraction of `last_trade_price` events sent twice (default 0), 0.0 to 1.0: the same
    /// text again right after it, in the same frame or the next; drawn like
    /// [`SimConfig::ws_missing_size`].
    pub ws_duplicate_trades: f64,
    /// The most a trade's block time trails its match time (default zero: the Data API's
    /// `timestamp` is the match second). Otherwise each transaction is mined a lag in
    /// (0, `block_lag`] after its match, drawn from the seed and the transaction (the same for
    /// every fill of it); the Data API serves its rows from then on, timestamped with the block
    /// second ([`TruthTrade::block_s`]). Capped at a minute.
    pub block_lag: Duration,
}

impl SimConfig {
    /// The defaults (20 markets per tier, now = `Utc::now()`, no latency, 20–120 levels, a
    /// static world, proposal 1 h after the end and final 2 h later, no CLOB lag, no busy
    /// market, WebSocket idle close after 60 s, no trade event without size or sent twice, block
    /// time = match time) with this seed.
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            markets_per_tier: 20,
            now: Utc::now(),
            latency: Duration::ZERO,
            book_levels: (20, 120),
            new_markets_per_hour: 0.0,
            resolve_after: Duration::from_secs(3_600),
            finalize_after: Duration::from_secs(2 * 3_600),
            clob_resolution_lag: Duration::ZERO,
            schema_drift: 0.0,
            cursor_len: 0,
            busy_markets: 0,
            ws_idle_timeout: Duration::from_secs(60),
            ws_missing_size: 0.0,
            ws_duplicate_trades: 0.0,
            block_lag: Duration::ZERO,
        }
    }

    /// How many markets of each trap kind the world holds: 3, growing weakly with
    /// `markets_per_tier` (one more per 40).
    pub fn traps_per_kind(&self) -> usize {
        3 + self.markets_per_tier / 40
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::new(7)
    }
}

/// Which simulated endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /gamma/markets/keyset`
    GammaKeyset,
    /// `GET /gamma/markets` (legacy offset paging)
    GammaMarkets,
    /// `GET /gamma/events` (legacy offset paging)
    GammaEvents,
    /// `GET /gamma/events/keyset`
    GammaEventsKeyset,
    /// `GET /clob/book`
    ClobBook,
    /// `POST /clob/books`
    ClobBooks,
    /// `GET /clob/markets/{condition_id}`
    ClobMarket,
    /// `GET /data/trades`
    DataTrades,
    /// `GET /ws/market` (a WebSocket connection)
    Ws,
}

/// A fault to serve instead of (or on top of) the normal response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Which endpoint it applies to; `None` = any HTTP endpoint (not the WebSocket).
    pub endpoint: Option<Endpoint>,
    /// What goes wrong.
    pub kind: FaultKind,
    /// How many matching requests get it.
    pub times: u32,
}

/// What a [`Fault`] does to a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 with `Retry-After: retry_after_s` and a Cloudflare-like HTML body.
    TooManyRequests {
        /// Value of the `Retry-After` header, seconds.
        retry_after_s: u64,
    },
    /// This status (e.g. 502, 503) with a short non-JSON body.
    ServerError(u16),
    /// Status 200, the real body cut in half (Content-Length matches the cut body). On the
    /// WebSocket: half of the initial dump frame, then the connection drops.
    Truncate,
}

/// How [`SimHandle::corrupt_market`] breaks a market's Gamma object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadMarket {
    /// `"endDate": {"oops": 1}` and `"volume24hr": "not a number"`: two fields a client must
    /// take as absent (the record is still usable by its condition id).
    Fields,
    /// `"conditionId": {"oops": 1}`: the record cannot be attributed to any market.
    ConditionId,
}

/// An invalid level added to a book by [`SimHandle::corrupt_book`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLevel {
    /// `{"price":"1.5","size":"10"}` appended to the bids (in the best position, order kept).
    PriceAboveOne,
    /// `{"price":…,"size":"-3"}` added at the worst end of the asks (order kept).
    NegativeSize,
    /// A bid one tick above the best ask (or at it, when that is 1) appended to the bids (in the
    /// best position, order kept): the book is crossed.
    Crossed,
    /// `{"price":…,"size":"0"}` added at the worst end of the bids (order kept): not a level.
    ZeroSize,
}

/// One HTTP request (or WebSocket connection) the simulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// The endpoint hit.
    pub endpoint: Endpoint,
    /// HTTP method.
    pub method: String,
    /// Path and query as received.
    pub uri: String,
    /// Status served (101 for an accepted WebSocket upgrade).
    pub status: u16,
    /// Markets / events / books / trades served in full in this response (0 when faulted or
    /// truncated).
    pub items: u32,
    /// Sim-clock time the request arrived.
    pub at: DateTime<Utc>,
    /// Request body length in bytes.
    pub body_len: usize,
}

/// Request and item counters plus the request log (a snapshot copy).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Every request since start or the last [`SimHandle::reset`] (bounded; oldest dropped past
    /// 200,000 entries).
    pub log: Vec<RequestRecord>,
    /// What the market WebSocket sent, injected or left out.
    pub ws: WsCounters,
    requests: HashMap<Endpoint, u64>,
    items: HashMap<Endpoint, u64>,
    faults: u64,
}

/// Market WebSocket counters since start or the last [`SimHandle::reset`], over all connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WsCounters {
    /// `last_trade_price` events sent (first copies; [`Truth::ws_trades`] lists them).
    pub trades_sent: u64,
    /// Second copies of `last_trade_price` events sent ([`SimConfig::ws_duplicate_trades`]).
    pub duplicate_trades: u64,
    /// `last_trade_price` events sent without `size` ([`SimConfig::ws_missing_size`]; first
    /// copies only).
    pub trades_without_size: u64,
    /// Malformed (not JSON) frames sent ([`SimHandle::inject_ws_malformed`]).
    pub malformed_frames: u64,
    /// `mystery_event` events sent ([`SimHandle::inject_ws_unknown`]).
    pub unknown_events: u64,
    /// Known events sent with an extra unknown field ([`SimHandle::inject_ws_unknown`]).
    pub events_with_unknown_fields: u64,
    /// Events computed but not sent because the connection was stalled ([`SimHandle::stall_ws`]):
    /// lost for good, trades included.
    pub events_withheld: u64,
    /// Connections dropped without a close frame ([`SimHandle::drop_ws_connections`]).
    pub connections_dropped: u64,
    /// Connections the server closed for being idle ([`SimConfig::ws_idle_timeout`]).
    pub idle_closed: u64,
    /// Subscribed assets silently ignored beyond a connection's first 500.
    pub assets_ignored: u64,
}

impl Counters {
    /// All requests to `e`, including faulted ones (WebSocket: connections).
    pub fn requests(&self, e: Endpoint) -> u64 {
        self.requests.get(&e).copied().unwrap_or(0)
    }

    /// Markets / events / books / trades actually served by `e` (WebSocket: events sent).
    pub fn items(&self, e: Endpoint) -> u64 {
        self.items.get(&e).copied().unwrap_or(0)
    }

    /// Responses replaced or cut by an injected [`Fault`].
    pub fn faults_served(&self) -> u64 {
        self.faults
    }
}

/// What kind of market this is: tradeable, or a trap excluded by exactly one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarketKind {
    /// Discoverable: order book, token ids, volume ≥ 100, end within 336 h, open.
    Tradeable,
    /// End date 1–30 h ago but `closed=false` (in a rolling world also any open market whose end
    /// passed and which has not resolved yet).
    PastEnd,
    /// `closed=true` (end in the future or the past) and not final yet (a result may be
    /// proposed or disputed: see [`TruthMarket::stage`]); no book.
    Closed,
    /// `closed=true` and final: generated ones `umaResolutionStatus: "resolved"`, outcome prices
    /// 1/0; one a rolling world or a knob finalized may also be 0/1, a 50/50 (Invalid) or lack the
    /// status ([`TruthStage`]); no book.
    Resolved,
    /// `enableOrderBook=false`; no book, no bestBid/bestAsk.
    NoOrderBook,
    /// `clobTokenIds` served as `""`, `"[]"` or `["",""]` (CLOB hydration); no book.
    TransientTokens,
    /// Three outcomes and three token ids.
    NonBinary,
    /// 24 h volume below 100.
    LowVolume,
    /// End 400–900 h ahead (beyond the 336 h lookahead).
    BeyondLookahead,
}

/// A market of the world, as generated.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthMarket {
    /// Gamma id (numeric string).
    pub id: String,
    /// `conditionId` as served ("" for some transient markets).
    pub condition_id: String,
    /// The question.
    pub question: String,
    /// Token ids as served (empty strings / empty for transient ones).
    pub token_ids: Vec<String>,
    /// Outcome labels.
    pub outcomes: Vec<String>,
    /// End date, exactly as the served string parses.
    pub end_date: DateTime<Utc>,
    /// `closed`.
    pub closed: bool,
    /// The result is final ([`TruthStage::Final`] or [`TruthStage::FinalWithoutStatus`]).
    pub resolved: bool,
    /// Where the market is on its way from open to a final result, as served.
    pub stage: TruthStage,
    /// Sim time it became final (`None` until then).
    pub final_at: Option<DateTime<Utc>>,
    /// `closedTime` as served (to the second): when trading stopped; kept once set.
    pub closed_time: Option<DateTime<Utc>>,
    /// `enableOrderBook`.
    pub enable_order_book: bool,
    /// `acceptingOrders`.
    pub accepting_orders: bool,
    /// `volume24hr` (constant over the run).
    pub volume_24h: Decimal,
    /// `negRisk`.
    pub neg_risk: bool,
    /// The id of its event (`events[0].id`); markets of one event that is not neg-risk are one
    /// question with several deadlines.
    pub event_id: String,
    /// `feesEnabled`.
    pub fees_enabled: bool,
    /// `feeSchedule` as (rate, exponent); `None` when none is served.
    pub fee: Option<(Decimal, u32)>,
    /// Tradeable or which trap, as of the sim clock when the truth was taken (in a rolling world
    /// a market moves Tradeable → PastEnd → Closed → Resolved; the static world keeps generated
    /// kinds unless a knob moves a market: Closed until final, then Resolved).
    pub kind: MarketKind,
    /// Marked by [`SimHandle::corrupt_market`].
    pub corrupted: bool,
    /// Sim time it arrived, for arrivals of a rolling world; `None` for generated markets.
    pub arrived_at: Option<DateTime<Utc>>,
    /// The Gamma fields served with a drifted type ([`SimConfig::schema_drift`]): all of
    /// [`DRIFTED_FIELDS`] for a drifted market, empty otherwise.
    pub drifted_fields: Vec<&'static str>,
    /// One of the [`SimConfig::busy_markets`]: 12–13 trades a second.
    pub busy: bool,
}

/// The result of a market once final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimResult {
    /// This outcome (index into `outcomes`) won: prices exactly `"1"` / `"0"`.
    Winner(usize),
    /// Unknown / 50-50: every outcome priced `"0.5"` (`1/n` for n outcomes), no CLOB winner,
    /// `is_50_50_outcome: true`.
    Invalid,
}

/// The stages of a market from open to final, each served the way Gamma shows it (the crate docs
/// list the fields of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TruthStage {
    /// Trading.
    Open,
    /// Trading stopped, nothing proposed: `closed: true`, no `umaResolutionStatus`, prices
    /// frozen at the last market prices.
    Closed,
    /// A result is proposed and may still be disputed: `umaResolutionStatus: "proposed"`,
    /// near-final prices (`"0.9995"` / `"0.0005"`, or an untraded-looking `"0.5"` / `"0.5"`,
    /// which is not a void).
    Proposed {
        /// The proposed winner.
        outcome: usize,
    },
    /// The proposal is disputed: `umaResolutionStatus: "disputed"`, prices unchanged.
    Disputed {
        /// The disputed proposal's winner.
        outcome: usize,
    },
    /// Final with `umaResolutionStatus: "resolved"`.
    Final {
        /// The result.
        result: SimResult,
    },
    /// Final but served without `umaResolutionStatus` (statuses `"[]"`), prices 1/0 and the
    /// CLOB winner set: the real quirk of `gamma_market_closed_accepting_true_nautilus.json`.
    FinalWithoutStatus {
        /// The winner.
        outcome: usize,
    },
}

impl TruthStage {
    /// `closed` on Gamma: every stage but [`TruthStage::Open`].
    pub fn is_closed(&self) -> bool {
        *self != TruthStage::Open
    }

    /// The result is final and will not change.
    pub fn is_final(&self) -> bool {
        self.result().is_some()
    }

    /// The final result, if any ([`TruthStage::FinalWithoutStatus`] is a winner too).
    pub fn result(&self) -> Option<SimResult> {
        match *self {
            TruthStage::Final { result } => Some(result),
            TruthStage::FinalWithoutStatus { outcome } => Some(SimResult::Winner(outcome)),
            _ => None,
        }
    }
}

/// A book as served (REST or WebSocket `book` event).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedBook {
    /// `asset_id`.
    pub token_id: String,
    /// `market`.
    pub condition_id: String,
    /// `hash` (40 hex, a function of the content).
    pub hash: String,
    /// Sim-clock time served.
    pub served_at: DateTime<Utc>,
    /// `timestamp`, ms.
    pub timestamp_ms: i64,
    /// (price, size) exactly as served, in served order (ascending, best LAST), incl. any bad level.
    pub bids: Vec<(Decimal, Decimal)>,
    /// (price, size) exactly as served, in served order (descending, best LAST), incl. any bad level.
    pub asks: Vec<(Decimal, Decimal)>,
    /// `tick_size`.
    pub tick_size: Decimal,
    /// Served with `timestamp` as an object and `hash` as an array (the market drifted,
    /// [`SimConfig::schema_drift`]); `hash` and `timestamp_ms` above hold the values they wrap.
    pub drifted: bool,
}

/// A Gamma market object as served (listing, keyset, or nested in an event).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedMarket {
    /// `conditionId` as served.
    pub condition_id: String,
    /// Sim-clock time served.
    pub served_at: DateTime<Utc>,
    /// The object exactly as served.
    pub json: serde_json::Value,
}

/// The side of a trade: the taker's (aggressor's) side on the WebSocket and in the Data API's
/// taker rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TradeSide {
    /// `"BUY"`: filled at the ask.
    Buy,
    /// `"SELL"`: filled at the bid.
    Sell,
}

/// One trade of the world: what the Data API serves as its (taker) row and the WebSocket as
/// `last_trade_price`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TruthTrade {
    /// `conditionId` / `market`.
    pub condition_id: String,
    /// The traded token: `asset` / `asset_id`.
    pub asset_id: String,
    /// `outcomeIndex`.
    pub outcome: usize,
    /// The match time, epoch ms (WebSocket `timestamp`).
    pub ms: i64,
    /// The block time, epoch seconds (the Data API's `timestamp`): the second of `ms`, or later
    /// with a [`SimConfig::block_lag`].
    pub block_s: i64,
    /// `side`.
    pub side: TradeSide,
    /// `price`.
    pub price: Decimal,
    /// `size`, in shares (also for an event sent without it).
    pub size: Decimal,
    /// `transactionHash` / `transaction_hash`, `0x` + 64 hex (shared by fills one transaction
    /// settled).
    pub transaction_hash: String,
    /// The taker's `proxyWallet`.
    pub wallet: String,
}

/// A `last_trade_price` event a market WebSocket connection sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WsTrade {
    /// The connection, numbered from 1 in order of upgrade.
    pub connection: u64,
    /// The trade reported.
    pub trade: TruthTrade,
    /// `size` was in the event ([`SimConfig::ws_missing_size`]).
    pub size_sent: bool,
    /// A second identical event followed ([`SimConfig::ws_duplicate_trades`]).
    pub duplicated: bool,
    /// Sim-clock time sent.
    pub sent_at: DateTime<Utc>,
}

/// The world and what was served from it (a snapshot copy).
#[derive(Clone, Debug)]
pub struct Truth {
    /// Every market of the world as of the sim clock, in id order (a rolling world: arrivals
    /// included, markets final for more than 48 h dropped; delisted markets never).
    pub markets: Vec<TruthMarket>,
    /// Condition ids of the markets [`SimHandle::delist`] removed, in delisting order.
    pub delisted: Vec<String>,
    /// Books served since start / last reset, by hash (bounded: 8,192 distinct, oldest dropped).
    pub served_books: HashMap<String, ServedBook>,
    /// Gamma market objects served since start / last reset, in order (bounded: 50,000, oldest
    /// dropped).
    pub served_markets: Vec<ServedMarket>,
    /// `last_trade_price` events sent over the market WebSocket since start / last reset, in
    /// order, one per connection that sent it (bounded: 50,000, oldest dropped). Trades a stall
    /// withheld or that fell between connections are not here: a client must backfill them.
    pub ws_trades: Vec<WsTrade>,
}

/// A running simulator. Cheap to clone; all clones drive the same server.
#[derive(Clone)]
pub struct SimHandle {
    app: Arc<server::App>,
    addr: SocketAddr,
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Binds `addr` (usually `127.0.0.1:0`), generates the world and serves it until
/// [`SimHandle::shutdown`].
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(server::App::new(cfg));
    let task = tokio::spawn(server::serve(listener, app.clone()));
    Ok(SimHandle {
        app,
        addr,
        task: Arc::new(std::sync::Mutex::new(Some(task))),
    })
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Gamma base URL, `http://127.0.0.1:PORT/gamma`.
    pub fn gamma_url(&self) -> String {
        format!("http://{}/gamma", self.addr)
    }

    /// CLOB base URL, `http://127.0.0.1:PORT/clob`.
    pub fn clob_url(&self) -> String {
        format!("http://{}/clob", self.addr)
    }

    /// Data API base URL, `http://127.0.0.1:PORT/data`.
    pub fn data_url(&self) -> String {
        format!("http://{}/data", self.addr)
    }

    /// Market WebSocket URL, `ws://127.0.0.1:PORT/ws/market`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/market", self.addr)
    }

    /// The sim clock: `cfg.now` + real time elapsed since start.
    pub fn now(&self) -> DateTime<Utc> {
        self.app.now()
    }

    /// A copy of the counters and request log.
    pub fn counters(&self) -> Counters {
        self.app.counters()
    }

    /// A copy of the world (brought up to the sim clock first) and of what was served.
    pub fn truth(&self) -> Truth {
        self.app.truth()
    }

    /// Clears counters, the request log and the served logs (not the world, corruptions or
    /// queued faults).
    pub fn reset(&self) {
        self.app.reset();
    }

    /// Queues a fault; it applies to the next `times` matching requests (first queued, first used).
    pub fn inject(&self, fault: Fault) {
        self.app.inject(fault);
    }

    /// Sets the latency added to every HTTP response from now on.
    pub fn set_latency(&self, d: Duration) {
        self.app.set_latency(d);
    }

    /// From now on that market's Gamma object is broken as `bad` says ([`BadMarket::Fields`]:
    /// two non-essential fields a tolerant client takes as absent, reporting the drift;
    /// [`BadMarket::ConditionId`]: the record cannot be attributed at all).
    pub fn corrupt_market(&self, condition_id: &str, bad: BadMarket) {
        self.app.corrupt_market(condition_id, bad);
    }

    /// From now on any `POST /books` whose body holds this token id, and `GET /book` of it,
    /// answers 400 with `{"error": "Invalid token id: …"}` (the whole batch is refused, as a
    /// server refuses a request it cannot parse).
    pub fn reject_token(&self, token_id: &str) {
        self.app.reject_token(token_id);
    }

    /// From now on every HTTP request that names one of these markets — Gamma by their
    /// condition ids, `POST /books` or `GET /book` of their tokens — answers 503, as when
    /// Polymarket fails a tier's requests (a tick of a tier holding them observes none of
    /// them), until [`SimHandle::heal_markets`]. Replaces the previous set.
    pub fn fail_markets(&self, condition_ids: &[String]) {
        self.app.fail_markets(condition_ids);
    }

    /// Ends [`SimHandle::fail_markets`]: their requests are served again.
    pub fn heal_markets(&self) {
        self.app.heal_markets();
    }

    /// From now on that token's book carries one extra invalid level (the rest unchanged).
    pub fn corrupt_book(&self, token_id: &str, bad: BadLevel) {
        self.app.corrupt_book(token_id, bad);
    }

    /// Closes that market now, as Polymarket does when trading stops (before the result is
    /// proposed): from then on it is served `closed: true` (so `closed=false` listings, Gamma's
    /// default, leave it out and `closed=true` lookups return it), not accepting orders, and its
    /// book is gone ([`TruthStage::Closed`]). In a rolling world it then goes on to its result on
    /// the usual course. False when the world holds no such open market.
    pub fn close_market(&self, condition_id: &str) -> bool {
        self.app.close_market(condition_id)
    }

    /// Proposes `outcome` (index into the outcomes) as that market's result now, closing it first
    /// if open: served `umaResolutionStatus: "proposed"` with near-final prices
    /// ([`TruthStage::Proposed`]). From then on the market only moves by these knobs (a rolling
    /// world no longer drives it). False when the world holds no such market, `outcome` is out of
    /// range, or the market is already proposed or final.
    pub fn propose_result(&self, condition_id: &str, outcome: usize) -> bool {
        self.app.propose_result(condition_id, outcome)
    }

    /// Disputes that market's proposal now ([`TruthStage::Disputed`], prices unchanged); a
    /// later [`SimHandle::propose_result`] re-proposes. False when the world holds no such market
    /// or it is not [`TruthStage::Proposed`].
    pub fn dispute(&self, condition_id: &str) -> bool {
        self.app.dispute(condition_id)
    }

    /// Makes that market's result final now with `umaResolutionStatus: "resolved"`
    /// ([`TruthStage::Final`]), closing it first if open; it leaves the world 48 h later in a
    /// rolling world. False when the world holds no such market, a winner is out of range, or it
    /// is final already.
    pub fn finalize(&self, condition_id: &str, result: SimResult) -> bool {
        self.app.finalize(condition_id, result)
    }

    /// Makes that market final now with `outcome` winning but no `umaResolutionStatus` at all
    /// ([`TruthStage::FinalWithoutStatus`]), closing it first if open. False as for
    /// [`SimHandle::finalize`].
    pub fn finalize_without_status(&self, condition_id: &str, outcome: usize) -> bool {
        self.app.finalize_without_status(condition_id, outcome)
    }

    /// Removes that market from the world now, whatever its stage: Gamma listings and lookups
    /// (with or without `closed=true`, nested in events too) no longer return it, its CLOB market
    /// and book answer 404, and [`Truth::markets`] leaves it out ([`Truth::delisted`] lists it).
    /// False when the world holds no such market.
    pub fn delist(&self, condition_id: &str) -> bool {
        self.app.delist(condition_id)
    }

    /// The trades of that market with `from ≤ time ≤ to` (`to` capped at the sim clock), by
    /// time: the rows the Data API serves with `takerOnly=true` and the `last_trade_price`
    /// events the WebSocket sends. Work is proportional to the span. Empty for an unknown or
    /// delisted market, or one that never had a book.
    pub fn trades(
        &self,
        condition_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<TruthTrade> {
        self.app.trades(condition_id, from, to)
    }

    /// Drops every open market WebSocket connection now, without a close frame (the TCP
    /// connection just closes), as a network failure or a server restart does; connections
    /// opened afterwards are served normally. Returns how many were open.
    pub fn drop_ws_connections(&self) -> usize {
        self.app.drop_ws_connections()
    }

    /// Stalls every market WebSocket connection open now: they stay open and answer `PING` with
    /// `PONG` but send nothing else (no live events, no book for a later subscribe) until
    /// [`SimHandle::resume_ws`] or they close; what they would have sent is lost
    /// ([`WsCounters::events_withheld`]). Connections opened afterwards are not stalled.
    pub fn stall_ws(&self) {
        self.app.stall_ws();
    }

    /// Lifts every stall: stalled connections send live events again from the next tick on (a
    /// `price_change` may then be relative to a book the client never saw).
    pub fn resume_ws(&self) {
        self.app.resume_ws();
    }

    /// The next `n` JSON frames the market WebSocket sends (dumps and live frames, on whichever
    /// connections send first) are each preceded by an extra frame that is not valid JSON (the
    /// first half of that frame). Nothing is lost: the whole frame follows.
    /// [`WsCounters::malformed_frames`] counts them.
    pub fn inject_ws_malformed(&self, n: u32) {
        self.app.inject_ws_malformed(n);
    }

    /// The next `n` live frames the market WebSocket sends (on whichever connections send first)
    /// come as an array holding, besides their events, one `{"event_type":"mystery_event",…}` in
    /// the middle, and each real event carries an extra unknown field `"unknown_field"` (first in
    /// the object). [`WsCounters::unknown_events`] and
    /// [`WsCounters::events_with_unknown_fields`] count them. (The two copies of a duplicated
    /// trade event then differ by that field when only one of them is in such a frame.)
    pub fn inject_ws_unknown(&self, n: u32) {
        self.app.inject_ws_unknown(n);
    }

    /// Stops accepting connections, closes WebSockets (1001) and waits for in-flight requests.
    pub async fn shutdown(self) {
        self.app.signal_shutdown();
        let task = match self.task.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
