//! Polymarket's public market-data protocol for polytape: Gamma keyset discovery, Gamma markets
//! by condition id, CLOB order books, Data API trades, and market-WebSocket frame decoding.
//!
//! Decoding is tolerant because Polymarket changes schemas without notice: every field is
//! optional, numbers may be strings, arrays may be JSON inside strings, timestamps come in
//! five shapes, and each record (market, book, level, trade, event) is decoded on its own by
//! one mechanism ([`decode::decode_record`]). A field whose type drifted is read as absent and
//! reported ([`Drift`]) while its record is kept; a record is rejected ([`Rejected`], with a
//! reason, counted) only when one of its type's essential fields is unusable, and the rest of
//! its batch proceeds either way. Books are kept honest: levels of size 0 are left out, and a
//! book with an impossible level or crossed prices is kept but marked ([`Book::problem`]).
//!
//! HTTP is careful in the other direction: one sliding-window rate limiter per endpoint at the
//! documented limits, bounded bodies, URLs and page counts, retries only where they can help
//! (timeouts, connection failures, 429 with `Retry-After`, 5xx, truncated bodies), a `POST
//! /books` batch refused with a 4xx narrowed down to the offending ids, an optional deadline
//! that bounds every wait ([`PolymarketClient::with_deadline`]), and errors that classify
//! themselves ([`FetchError::is_retryable`]).
//!
//! # Layout
//! * [`client`]: [`PolymarketClient`] and its configuration, request/response plumbing,
//!   chunking (≤100 ids and <8 KB per Gamma URL with room for a cursor, `books_batch` per
//!   `POST /books`, refused batches split), page caps, retries, deadlines, and the one place
//!   rejections and drifts are logged and counted ([`FetchStats`]).
//! * [`rate`]: [`RateLimiter`] (sliding window, `acquire().await`) and [`RateLimits`].
//! * [`gamma`]: [`GammaMarket`] (with [`GammaMarket::to_market`] and [`GammaMarket::quote`]),
//!   events, tags, search, keyset pages.
//! * [`clob`]: order books ([`clob::decode_book`], shared with the WebSocket `book`) and CLOB
//!   markets.
//! * [`data`]: Data API trade rows ([`DataTrade`]).
//! * [`ws`]: WebSocket frames: cheap classification ([`ws::split_frame`]) and decoding
//!   ([`ws::parse_frame`], [`WsEvent`]).
//! * [`decode`]: the reusable tolerant serde helpers everything above is built from, and the
//!   record mechanism ([`decode::Record`], [`decode::decode_record`]) every decoder uses.
//! * [`error`]: [`FetchError`], [`Rejected`] and [`Drift`], with the logging contract.

pub mod client;
pub mod clob;
pub mod data;
pub mod decode;
pub mod error;
pub mod gamma;
pub mod rate;
pub mod ws;

pub use client::{
    BatchFailure, Batched, ClientConfig, Endpoints, FetchStats, KeysetQuery, Listing,
    PolymarketClient, TradesPage, TradesWindow,
};
pub use clob::ClobMarket;
pub use clob::DecodedBook;
pub use data::DataTrade;
pub use decode::{Record, Records};
pub use error::{Drift, FetchError, Rejected};
pub use gamma::{GammaEvent, GammaMarket, GammaTag, Verdict};
pub use polytape_core::{Book, Level, Market, MarketQuote, Side, Trade, Ts};
pub use rate::{RateLimit, RateLimiter, RateLimits};
pub use ws::{parse_frame, Frame, WsEvent};
