//! Polymarket's public market-data protocol for polytape: Gamma keyset discovery, Gamma markets
//! by condition id, CLOB order books, Data API trades, and market-WebSocket frame decoding.
//!
//! Decoding is tolerant because Polymarket changes schemas without notice: every field is
//! optional, numbers may be strings, arrays may be JSON inside strings, timestamps come in
//! five shapes, and each record (market, book, level, trade, event) is decoded on its own so a
//! bad one is rejected — with a reason, counted — while the rest of its batch proceeds. HTTP is
//! careful in the other direction: one sliding-window rate limiter per endpoint at the
//! documented limits, bounded bodies, and retries only where they can help (timeouts,
//! connection failures, 429 with `Retry-After`, 5xx, truncated bodies), with errors that
//! classify themselves ([`FetchError::is_retryable`]).
//!
//! # Layout
//! * [`client`]: [`PolymarketClient`] and its configuration, request/response plumbing,
//!   chunking (≤100 ids and <8 KB per Gamma URL, `books_batch` per `POST /books`), retries.
//! * [`rate`]: [`RateLimiter`] (sliding window, `acquire().await`) and [`RateLimits`].
//! * [`gamma`]: [`GammaMarket`] (with [`GammaMarket::to_market`] and [`GammaMarket::quote`]),
//!   events, tags, search, keyset pages.
//! * [`clob`]: order books ([`clob::decode_book`]) and CLOB markets.
//! * [`data`]: Data API trade rows ([`DataTrade`]).
//! * [`ws`]: WebSocket frames: cheap classification ([`ws::split_frame`]) and decoding
//!   ([`ws::parse_frame`], [`WsEvent`]).
//! * [`decode`]: the reusable tolerant serde helpers everything above is built from.
//! * [`error`]: [`FetchError`] and [`Rejected`].

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
    PolymarketClient,
};
pub use data::DataTrade;
pub use error::{FetchError, Rejected};
pub use gamma::{GammaEvent, GammaMarket, GammaTag};
pub use polytape_core::{Book, Level, Market, MarketQuote, Side, Trade, Ts};
pub use rate::{RateLimit, RateLimiter, RateLimits};
pub use ws::{parse_frame, WsEvent};
