//! The HTTP client: Gamma keyset discovery, Gamma markets by condition id, CLOB books, Data API
//! trades — with per-endpoint rate limits, bounded bodies and URLs, a page cap, retries that
//! only happen when they can help (timeouts, connection failures, 429, 5xx, truncated bodies),
//! and an optional deadline ([`PolymarketClient::with_deadline`]) that bounds every wait.

use crate::clob::{decode_book, decode_books, decode_clob_market, ClobMarket, DecodedBook};
use crate::data::{decode_trades, DataTrade};
use crate::error::{Drift, FetchError, Rejected};
use crate::gamma::{decode_keyset_page, GammaMarket};
use crate::rate::{RateLimiter, RateLimits};
use crate::Ts;
use futures_util::stream::{self, StreamExt};
use polytape_core::{Book, Trade};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Gamma's documented cap on `condition_ids` per request.
pub const MAX_CONDITION_IDS_PER_REQUEST: usize = 100;
/// URLs longer than ~8 KB are refused (414): every request URL stays below this many bytes.
/// A URL that would not is not sent ([`FetchError::UrlTooLong`]).
pub const MAX_URL_BYTES: usize = 8_192;
/// Pages one chunk of ≤100 condition ids may take: a chunk fits one page of 100, so needing
/// more means the server is not filtering (then [`FetchError::TooManyPages`]).
pub const MAX_PAGES_PER_CHUNK: u32 = 10;
/// Backoff between retries never exceeds this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Data API `/trades` clamps `limit` to this.
pub const MAX_TRADES_LIMIT: u32 = 10_000;
/// Characters of an error body kept in [`FetchError::Status`].
const STATUS_BODY_CHARS: usize = 300;
/// Characters of a URL kept in errors and logs (condition-id URLs run to 8 KB).
const URL_CHARS_IN_ERRORS: usize = 300;

/// Base URLs of the four services, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub gamma: String,
    pub clob: String,
    pub data: String,
    pub ws: String,
}

impl Endpoints {
    /// Polymarket's production endpoints.
    pub fn polymarket() -> Self {
        Endpoints {
            gamma: "https://gamma-api.polymarket.com".into(),
            clob: "https://clob.polymarket.com".into(),
            data: "https://data-api.polymarket.com".into(),
            ws: "wss://ws-subscriptions-clob.polymarket.com/ws/market".into(),
        }
    }

    /// Production endpoints, each overridden by `POLYTAPE_GAMMA_URL`, `POLYTAPE_CLOB_URL`,
    /// `POLYTAPE_DATA_URL`, `POLYTAPE_WS_URL` when set (so a proxy, a recorder or the simulator
    /// can stand in). Trailing slashes are trimmed; an empty variable means the default.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Endpoints::from_env`] over any variable source (testable without touching the
    /// process environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Endpoints::polymarket();
        let pick = |var: &str, default: String| -> String {
            match get(var) {
                Some(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
                _ => default,
            }
        };
        Endpoints {
            gamma: pick("POLYTAPE_GAMMA_URL", d.gamma),
            clob: pick("POLYTAPE_CLOB_URL", d.clob),
            data: pick("POLYTAPE_DATA_URL", d.data),
            ws: pick("POLYTAPE_WS_URL", d.ws),
        }
    }
}

/// Client settings. `Default` targets Polymarket with the documented limits.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    /// Whole-request timeout (connect, headers and body): 10 s.
    pub request_timeout: Duration,
    /// Retries after the first attempt: 3 (so at most 4 attempts).
    pub max_retries: u32,
    /// First backoff; doubles each retry, with jitter, capped at [`MAX_BACKOFF`]: 200 ms.
    pub backoff_base: Duration,
    /// A larger `Retry-After` is capped to this: 60 s.
    pub max_retry_after: Duration,
    /// Larger bodies fail with [`FetchError::TooLarge`]: 16 MiB.
    pub max_body_bytes: usize,
    /// Token ids per `POST /books`: 100.
    pub books_batch: usize,
    /// Concurrent requests per batched call: 4.
    pub max_in_flight: usize,
    /// Pages a keyset listing may read: 1,000 (100,000 markets at 100 a page). A listing with
    /// a next page past it fails with [`FetchError::TooManyPages`] instead of paging on.
    /// Condition-id lookups are capped at [`MAX_PAGES_PER_CHUNK`] per chunk.
    pub max_pages: u32,
    /// Per-endpoint rate limits.
    pub rate_limits: RateLimits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoints: Endpoints::polymarket(),
            request_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff_base: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(60),
            max_body_bytes: 16 * 1024 * 1024,
            books_batch: 100,
            max_in_flight: 4,
            max_pages: 1_000,
            rate_limits: RateLimits::default(),
        }
    }
}

impl ClientConfig {
    /// Defaults with the endpoints of [`Endpoints::from_env`] and `POLYTAPE_BOOKS_BATCH`
    /// (token ids per `POST /books`) when set.
    pub fn from_env() -> Result<Self, FetchError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`ClientConfig::from_env`] over any variable source.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, FetchError> {
        let mut cfg = ClientConfig {
            endpoints: Endpoints::from_lookup(&get),
            ..ClientConfig::default()
        };
        if let Some(v) = get("POLYTAPE_BOOKS_BATCH") {
            cfg.books_batch = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| FetchError::Config {
                    reason: format!(
                        "POLYTAPE_BOOKS_BATCH={v:?}: expected a whole number from 1 to 500"
                    ),
                })?;
        }
        Ok(cfg)
    }
}

/// One market's Data API trades inside `[start_s, end_s]` (epoch seconds).
#[derive(Debug, Clone, Copy)]
pub struct TradesWindow<'a> {
    pub condition_id: &'a str,
    pub start_s: i64,
    pub end_s: i64,
    pub limit: u32,
    pub offset: u32,
}

/// A page of [`PolymarketClient::trades_page`]: the body as received and its rows.
#[derive(Debug, Clone, Default)]
pub struct TradesPage {
    pub body: String,
    pub rows: Vec<DataTrade>,
    /// Rows that could not be decoded at all (logged and counted by the client).
    pub rejected: usize,
}

/// Server-side filters of a keyset listing.
#[derive(Debug, Clone)]
pub struct KeysetQuery {
    /// `closed=`; Gamma applies `closed=false` when omitted (trap 15).
    pub closed: Option<bool>,
    /// `end_date_min=`, sent as RFC 3339 in whole seconds (`2026-03-12T09:25:00Z`).
    pub end_date_min: Option<Ts>,
    /// `end_date_max=`, same format.
    pub end_date_max: Option<Ts>,
    /// Page size asked for: 100 (0 means 100). The end is never inferred from a short page.
    pub limit: u32,
    /// Further query parameters, sent as given (repeat a key for array parameters).
    pub extra: Vec<(String, String)>,
}

impl Default for KeysetQuery {
    fn default() -> Self {
        KeysetQuery {
            closed: None,
            end_date_min: None,
            end_date_max: None,
            limit: 100,
            extra: Vec::new(),
        }
    }
}

/// Items of a paged listing, with what was skipped and what drifted.
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// Pages read.
    pub pages: u32,
    /// Records that could not be used (already logged and counted by the client).
    pub rejected: Vec<Rejected>,
    /// Fields of kept records read as absent (already counted by the client).
    pub drifts: Vec<Drift>,
}

// By hand: a derive would require `T: Default`, which `Trade` is not.
impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            items: Vec::new(),
            pages: 0,
            rejected: Vec::new(),
            drifts: Vec::new(),
        }
    }
}

/// Items of a batched call: the chunks that succeeded, the ones that failed (with their keys),
/// what was skipped and what drifted.
#[derive(Debug)]
pub struct Batched<T> {
    pub items: Vec<T>,
    /// Requests made (pages, and the halves of a refused batch; retries not counted, nor the
    /// requests a deadline or a cap kept from being sent).
    pub requests: u32,
    /// Records that could not be used (already logged and counted by the client).
    pub rejected: Vec<Rejected>,
    /// Fields of kept records read as absent (already counted by the client).
    pub drifts: Vec<Drift>,
    pub failures: Vec<BatchFailure>,
}

impl<T> Default for Batched<T> {
    fn default() -> Self {
        Batched {
            items: Vec::new(),
            requests: 0,
            rejected: Vec::new(),
            drifts: Vec::new(),
            failures: Vec::new(),
        }
    }
}

/// Ids whose request failed for good: after the retries, refused by the server (a 4xx that
/// the client narrowed down to these ids), or cut off by the deadline
/// ([`FetchError::Deadline`], or the error of the last attempt).
///
/// The client does not log failures (the caller does, once), except refused ids, which it
/// logs once each at `warn` and counts in [`FetchStats::refused_ids`].
#[derive(Debug)]
pub struct BatchFailure {
    /// The ids the failed request asked for.
    pub keys: Vec<String>,
    pub error: FetchError,
}

/// Cumulative counters since the client was built (shared by its clones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// HTTP attempts, retries included.
    pub requests: u64,
    pub retries: u64,
    /// 429 responses.
    pub rate_limited: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// Bodies cut short.
    pub truncated: u64,
    pub timeouts: u64,
    /// Records skipped (markets, books, levels, book values, trades), each also logged once.
    pub rejected: u64,
    /// Fields read as absent because their type drifted, by `"<record kind>.<field>"`
    /// ([`Drift::stat_key`], e.g. `"gamma market.updatedAt"`); the first of each key was
    /// logged.
    pub drifts: BTreeMap<String, u64>,
    /// Token ids a server refused with a 4xx (narrowed down by splitting their batch), each
    /// logged once.
    pub refused_ids: u64,
    /// Times the deadline cut a request off: an attempt not started, or a retry not waited for.
    pub deadline_cutoffs: u64,
}

impl FetchStats {
    /// All drifts, whatever the field.
    pub fn drift_total(&self) -> u64 {
        self.drifts.values().sum()
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    truncated: AtomicU64,
    timeouts: AtomicU64,
    rejected: AtomicU64,
    refused_ids: AtomicU64,
    deadline_cutoffs: AtomicU64,
    /// Drifts by [`Drift::stat_key`]; a key's first drift is logged when it is inserted.
    drifts: Mutex<BTreeMap<String, u64>>,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Which limiter a request goes through.
#[derive(Debug, Clone, Copy)]
enum Api {
    GammaMarkets,
    ClobBooks,
    ClobBook,
    DataTrades,
}

struct Limiters {
    gamma_markets: RateLimiter,
    clob_books: RateLimiter,
    clob_book: RateLimiter,
    data_trades: RateLimiter,
}

struct Inner {
    cfg: ClientConfig,
    http: reqwest::Client,
    limiters: Limiters,
    stats: Counters,
    /// State of the jitter generator (splitmix64).
    rng: AtomicU64,
}

/// Polymarket's public market-data APIs. Cheap to clone: clones share the HTTP connection
/// pool, the rate limiters and the counters. A clone made by
/// [`PolymarketClient::with_deadline`] also carries a deadline that bounds all its calls.
#[derive(Clone)]
pub struct PolymarketClient {
    inner: Arc<Inner>,
    /// No attempt starts at or after it and no wait runs past it; `None`: unbounded.
    deadline: Option<Instant>,
}

impl std::fmt::Debug for PolymarketClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolymarketClient")
            .field("endpoints", &self.inner.cfg.endpoints)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// One request to make (possibly several times).
struct Req {
    url: Url,
    /// JSON body of a POST; `None` for a GET.
    body: Option<Vec<u8>>,
}

impl Req {
    fn short_url(&self) -> String {
        short(self.url.as_str())
    }
}

fn short(url: &str) -> String {
    if url.len() <= URL_CHARS_IN_ERRORS {
        url.to_owned()
    } else {
        let cut: String = url.chars().take(URL_CHARS_IN_ERRORS).collect();
        format!("{cut}…")
    }
}

impl PolymarketClient {
    /// Builds the client (one connection pool for its lifetime).
    pub fn new(cfg: ClientConfig) -> Result<Self, FetchError> {
        for (name, base) in [
            ("gamma", &cfg.endpoints.gamma),
            ("clob", &cfg.endpoints.clob),
            ("data", &cfg.endpoints.data),
        ] {
            Url::parse(base).map_err(|e| FetchError::Config {
                reason: format!("{name} URL {base:?}: {e}"),
            })?;
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .user_agent(concat!("polytape/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Config {
                reason: e.to_string(),
            })?;
        let l = &cfg.rate_limits;
        let limiters = Limiters {
            gamma_markets: RateLimiter::new(l.gamma_markets),
            clob_books: RateLimiter::new(l.clob_books),
            clob_book: RateLimiter::new(l.clob_book),
            data_trades: RateLimiter::new(l.data_trades),
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5EED, |d| d.as_nanos() as u64);
        Ok(PolymarketClient {
            inner: Arc::new(Inner {
                cfg,
                http,
                limiters,
                stats: Counters::default(),
                rng: AtomicU64::new(seed),
            }),
            deadline: None,
        })
    }

    /// A clone (sharing the connection pool, rate limiters and counters) whose calls all end
    /// by `deadline`:
    /// * no attempt starts at or after it, and each attempt's timeout is the request timeout
    ///   or the time left, whichever is shorter;
    /// * a rate-limiter wait, a backoff or a `Retry-After` that would end at or past it is not
    ///   waited for: the call fails with the last attempt's error, or [`FetchError::Deadline`]
    ///   when nothing was attempted (each such cut-off counted in
    ///   [`FetchStats::deadline_cutoffs`]);
    /// * batched calls ([`PolymarketClient::markets_by_condition_ids`],
    ///   [`PolymarketClient::books`]) return with what arrived in time and list the rest in
    ///   `failures` with their ids; a keyset listing fails (a part of it would pass for all of
    ///   it).
    ///
    /// A deadline already past is allowed: every call then fails at once without a request.
    pub fn with_deadline(&self, deadline: Instant) -> PolymarketClient {
        PolymarketClient {
            inner: self.inner.clone(),
            deadline: Some(deadline),
        }
    }

    /// The deadline of this clone, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// Cumulative counters since construction.
    pub fn stats(&self) -> FetchStats {
        let s = &self.inner.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FetchStats {
            requests: get(&s.requests),
            retries: get(&s.retries),
            rate_limited: get(&s.rate_limited),
            server_errors: get(&s.server_errors),
            truncated: get(&s.truncated),
            timeouts: get(&s.timeouts),
            rejected: get(&s.rejected),
            drifts: s
                .drifts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            refused_ids: get(&s.refused_ids),
            deadline_cutoffs: get(&s.deadline_cutoffs),
        }
    }

    /// `GET {gamma}/markets/keyset` with the query's server-side filters, following
    /// `next_cursor` as `after_cursor` until it is absent or null (never inferring the end from
    /// a short page). An empty or repeated cursor is [`FetchError::RepeatedCursor`]; a next
    /// page past [`ClientConfig::max_pages`] is [`FetchError::TooManyPages`]; a cursor that
    /// would make the URL too long is [`FetchError::UrlTooLong`] (both logged at `error`). Each
    /// market is decoded on its own: a market whose `conditionId` is unusable is skipped and
    /// listed in `rejected`; a field that drifted is read as absent and listed in `drifts`.
    ///
    /// The listing is all or nothing: any page that fails (a deadline included) fails it.
    pub async fn keyset_markets(
        &self,
        q: &KeysetQuery,
    ) -> Result<Listing<GammaMarket>, FetchError> {
        let mut params: Vec<(String, String)> = Vec::new();
        if let Some(c) = q.closed {
            params.push(("closed".into(), c.to_string()));
        }
        if let Some(t) = q.end_date_min {
            params.push(("end_date_min".into(), iso(t)));
        }
        if let Some(t) = q.end_date_max {
            params.push(("end_date_max".into(), iso(t)));
        }
        let limit = if q.limit == 0 { 100 } else { q.limit };
        params.push(("limit".into(), limit.to_string()));
        params.extend(q.extra.iter().cloned());
        let mut listing = Listing::default();
        self.keyset_pages(params, None, self.inner.cfg.max_pages, &mut listing)
            .await?;
        Ok(listing)
    }

    /// Reads the pages of a keyset listing into `out` (items, rejected, drifts, pages), also
    /// when a later page fails. Without `wanted`, every page of the `params` query is read.
    /// With `wanted` (condition ids, sent as repeated `condition_ids` after `params`), the
    /// cursor is no longer followed once each of them has come back, as a market or as a
    /// rejected one: Gamma may hand out a `next_cursor` on a full page whose next page is
    /// empty, and following it would cost a request per chunk. When the follow-up URL (ids
    /// plus `after_cursor`) would be too long, the ids still missing are asked for afresh,
    /// without the cursor, in a shorter URL. At most `max_pages` pages are read.
    async fn keyset_pages(
        &self,
        params: Vec<(String, String)>,
        wanted: Option<&[String]>,
        max_pages: u32,
        out: &mut Listing<GammaMarket>,
    ) -> Result<(), FetchError> {
        let mut seen: HashSet<String> = HashSet::new();
        // Condition ids are hex: compare them without regard to case.
        let mut missing: Option<HashSet<String>> =
            wanted.map(|ids| ids.iter().map(|id| id.to_ascii_lowercase()).collect());
        // The ids the current query asks for (all of them, or those still missing).
        let mut asking: Vec<String> = wanted.map(<[String]>::to_vec).unwrap_or_default();
        let mut cursor: Option<String> = None;
        let mut read: u32 = 0;
        let mut progressed = true;
        loop {
            let build = |cursor: Option<&String>, ids: &[String]| -> Result<Url, FetchError> {
                let mut url = self.url(&self.inner.cfg.endpoints.gamma, "/markets/keyset")?;
                {
                    let mut qp = url.query_pairs_mut();
                    for (k, v) in &params {
                        qp.append_pair(k, v);
                    }
                    for id in ids {
                        qp.append_pair("condition_ids", id);
                    }
                    if let Some(c) = cursor {
                        qp.append_pair("after_cursor", c);
                    }
                }
                Ok(url)
            };
            let mut url = build(cursor.as_ref(), &asking)?;
            if url.as_str().len() >= MAX_URL_BYTES && cursor.is_some() && progressed {
                if let Some(missing) = &missing {
                    // Too long with its cursor: ask for the ids still missing afresh (a new
                    // paging, whose cursors may repeat the old one's).
                    asking.retain(|id| missing.contains(&id.to_ascii_lowercase()));
                    cursor = None;
                    seen.clear();
                    url = build(None, &asking)?;
                }
            }
            if read >= max_pages.max(1) {
                let err = FetchError::TooManyPages {
                    url: short(url.as_str()),
                    pages: read,
                };
                tracing::error!(error = %err, "keyset listing stopped at its page cap");
                return Err(err);
            }
            let bytes = url.as_str().len();
            if bytes >= MAX_URL_BYTES {
                let err = FetchError::UrlTooLong {
                    url: short(url.as_str()),
                    bytes,
                    limit: MAX_URL_BYTES,
                };
                tracing::error!(error = %err, cursor_bytes = cursor.as_ref().map_or(0, String::len), "keyset page not requested: its URL is too long");
                return Err(err);
            }
            let req = Req { url, body: None };
            let page = self
                .fetch(Api::GammaMarkets, &req, |body, url| {
                    decode_keyset_page(body).map_err(|e| FetchError::from_json(url, &e))
                })
                .await?;
            read += 1;
            out.pages += 1;
            let short_url = req.short_url();
            self.note_rejected(&short_url, &page.rejected);
            self.note_drifts(&short_url, &page.drifts);
            if let Some(missing) = missing.as_mut() {
                let before = missing.len();
                let returned = page
                    .markets
                    .iter()
                    .filter_map(GammaMarket::condition_id)
                    .chain(page.rejected.iter().filter_map(|r| r.key.as_deref()));
                for id in returned {
                    missing.remove(&id.to_ascii_lowercase());
                }
                progressed = missing.len() < before;
            }
            out.items.extend(page.markets);
            out.rejected.extend(page.rejected);
            out.drifts.extend(page.drifts);
            if missing.as_ref().is_some_and(HashSet::is_empty) {
                return Ok(());
            }
            match page.next_cursor {
                None => return Ok(()),
                Some(c) => {
                    if c.is_empty() || !seen.insert(c.clone()) {
                        return Err(FetchError::RepeatedCursor { cursor: c });
                    }
                    cursor = Some(c);
                }
            }
        }
    }

    /// `GET {gamma}/markets/keyset?condition_ids=..&condition_ids=..&limit=100` — repeated keys,
    /// at most 100 ids per request and every URL under 8,192 bytes, `after_cursor` included: a
    /// follow-up page whose cursor would not fit asks for the ids still missing afresh, in a
    /// shorter URL (100 real condition ids take 8,157 bytes with the base URL, leaving no room
    /// for a cursor), up to `max_in_flight` requests at once. Duplicate and empty ids are dropped. A chunk
    /// that fails (after the retries, at the deadline, past [`MAX_PAGES_PER_CHUNK`] pages, or
    /// with a cursor too long for its URL) is listed in `failures` with the ids that had not
    /// come back (what its earlier pages returned is kept); the other chunks still return their
    /// markets.
    ///
    /// A chunk's `next_cursor` is followed only while some of its ids have not come back (as
    /// a market or a rejected one): once all have, the chunk is done, so N ids cost ⌈N/100⌉
    /// requests even when Gamma offers a cursor on a full page.
    ///
    /// Gamma applies `closed=false` when `closed` is not sent (trap 15): a market missing from
    /// the result may have closed. Use [`PolymarketClient::markets_by_condition_ids_filtered`]
    /// with `Some(true)` to look closed markets up.
    pub async fn markets_by_condition_ids(&self, ids: &[String]) -> Batched<GammaMarket> {
        self.markets_by_condition_ids_filtered(ids, None).await
    }

    /// [`PolymarketClient::markets_by_condition_ids`] with an explicit `closed=` filter.
    pub async fn markets_by_condition_ids_filtered(
        &self,
        ids: &[String],
        closed: Option<bool>,
    ) -> Batched<GammaMarket> {
        let mut out = Batched::default();
        let mut fixed: Vec<(String, String)> = Vec::new();
        if let Some(c) = closed {
            fixed.push(("closed".into(), c.to_string()));
        }
        fixed.push(("limit".into(), MAX_CONDITION_IDS_PER_REQUEST.to_string()));
        let base = match self.url(&self.inner.cfg.endpoints.gamma, "/markets/keyset") {
            Ok(mut u) => {
                {
                    let mut qp = u.query_pairs_mut();
                    for (k, v) in &fixed {
                        qp.append_pair(k, v);
                    }
                }
                u
            }
            Err(error) => {
                out.failures.push(BatchFailure {
                    keys: ids.to_vec(),
                    error,
                });
                return out;
            }
        };
        let (chunks, too_long) = chunk_condition_ids(base.as_str().len(), &unique(ids));
        for id in too_long {
            out.failures.push(BatchFailure {
                keys: vec![id],
                error: FetchError::Config {
                    reason: "condition id too long for a URL".into(),
                },
            });
        }
        let max_pages = MAX_PAGES_PER_CHUNK.min(self.inner.cfg.max_pages);
        let results: Vec<_> = stream::iter(chunks)
            .map(|chunk| {
                let params = fixed.clone();
                async move {
                    let mut listing = Listing::default();
                    let res = self
                        .keyset_pages(params, Some(&chunk), max_pages, &mut listing)
                        .await;
                    (chunk, listing, res)
                }
            })
            .buffered(self.inner.cfg.max_in_flight.max(1))
            .collect()
            .await;
        for (chunk, listing, res) in results {
            let failed_request = matches!(&res, Err(e) if was_sent(e));
            out.requests += listing.pages + u32::from(failed_request);
            if let Err(error) = res {
                // Condition ids are hex: compare them without regard to case.
                let returned: HashSet<String> = listing
                    .items
                    .iter()
                    .filter_map(GammaMarket::condition_id)
                    .chain(listing.rejected.iter().filter_map(|r| r.key.as_deref()))
                    .map(str::to_ascii_lowercase)
                    .collect();
                let keys: Vec<String> = chunk
                    .into_iter()
                    .filter(|id| !returned.contains(&id.to_ascii_lowercase()))
                    .collect();
                out.failures.push(BatchFailure { keys, error });
            }
            out.items.extend(listing.items);
            out.rejected.extend(listing.rejected);
            out.drifts.extend(listing.drifts);
        }
        out
    }

    /// `POST {clob}/books` with body `[{"token_id":".."},…]` in batches of `books_batch`,
    /// `max_in_flight` at once. Duplicate and empty ids are dropped. Each book is decoded on its
    /// own (see [`crate::clob`]): levels keep their served order (best LAST), levels of size 0
    /// are left out, bad levels and values are dropped and listed in `rejected` and a book
    /// whose levels cannot be trusted is kept with [`Book::problem`] set; drifted fields are
    /// listed in `drifts`.
    ///
    /// A batch the server refuses with a 4xx (other than 429) is split in halves and each half
    /// asked again, recursively, so only the offending ids lose their book: each ends up in
    /// `failures` with its 4xx error, logged once at `warn` and counted in
    /// [`FetchStats::refused_ids`]. `requests` counts every request made, halves included.
    pub async fn books(&self, token_ids: &[String]) -> Batched<Book> {
        let mut out = Batched::default();
        let url = match self.url(&self.inner.cfg.endpoints.clob, "/books") {
            Ok(u) => u,
            Err(error) => {
                out.failures.push(BatchFailure {
                    keys: token_ids.to_vec(),
                    error,
                });
                return out;
            }
        };
        let ids = unique(token_ids);
        let batch = self.inner.cfg.books_batch.max(1);
        let chunks: Vec<Vec<String>> = ids.chunks(batch).map(<[String]>::to_vec).collect();
        let results: Vec<Batched<Book>> = stream::iter(chunks)
            .map(|chunk| self.books_batch(url.clone(), chunk))
            .buffered(self.inner.cfg.max_in_flight.max(1))
            .collect()
            .await;
        for r in results {
            out.items.extend(r.items);
            out.requests += r.requests;
            out.rejected.extend(r.rejected);
            out.drifts.extend(r.drifts);
            out.failures.extend(r.failures);
        }
        out
    }

    /// One batch of [`PolymarketClient::books`], split in halves while the server refuses it.
    async fn books_batch(&self, url: Url, batch: Vec<String>) -> Batched<Book> {
        let mut out = Batched::default();
        let short_url = short(url.as_str());
        // Parts still to ask for, the next one last.
        let mut parts = vec![batch];
        while let Some(part) = parts.pop() {
            let body: Vec<serde_json::Value> = part
                .iter()
                .map(|id| serde_json::json!({ "token_id": id }))
                .collect();
            let req = Req {
                url: url.clone(),
                body: Some(serde_json::to_vec(&body).unwrap_or_default()),
            };
            let res = self
                .fetch(Api::ClobBooks, &req, |body, url| {
                    decode_books(body).map_err(|e| FetchError::from_json(url, &e))
                })
                .await;
            match res {
                Ok(decoded) => {
                    out.requests += 1;
                    self.note_rejected(&short_url, &decoded.rejected);
                    self.note_drifts(&short_url, &decoded.drifts);
                    out.items.extend(decoded.books);
                    out.rejected.extend(decoded.rejected);
                    out.drifts.extend(decoded.drifts);
                }
                Err(error) if error.is_refusal() && part.len() > 1 => {
                    out.requests += 1;
                    let mut first = part;
                    let second = first.split_off(first.len() / 2);
                    parts.push(second);
                    parts.push(first);
                }
                Err(error) => {
                    out.requests += u32::from(was_sent(&error));
                    if error.is_refusal() {
                        self.note_refused(&short_url, &part, &error);
                    }
                    out.failures.push(BatchFailure { keys: part, error });
                }
            }
        }
        out
    }

    /// `GET {clob}/book?token_id=` — one book, with its dropped levels and values and its
    /// drifted fields (see [`PolymarketClient::books`]).
    pub async fn book(&self, token_id: &str) -> Result<DecodedBook, FetchError> {
        let mut url = self.url(&self.inner.cfg.endpoints.clob, "/book")?;
        url.query_pairs_mut().append_pair("token_id", token_id);
        let req = Req { url, body: None };
        let decoded = self
            .fetch(Api::ClobBook, &req, |body, url| {
                let v: serde_json::Value =
                    serde_json::from_slice(body).map_err(|e| FetchError::from_json(url, &e))?;
                decode_book(&v).map_err(|r| FetchError::Decode {
                    url: url.to_owned(),
                    reason: r.to_string(),
                })
            })
            .await?;
        let short_url = req.short_url();
        self.note_rejected(&short_url, &decoded.rejected);
        self.note_drifts(&short_url, &decoded.drifts);
        Ok(decoded)
    }

    /// `GET {clob}/markets/{condition_id}` — one CLOB market with its tokens' winner flags;
    /// `None` when the CLOB does not know it (404, as for a market still being created).
    pub async fn clob_market(&self, condition_id: &str) -> Result<Option<ClobMarket>, FetchError> {
        if condition_id.is_empty() || !condition_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FetchError::Config {
                reason: format!("not a condition id: {condition_id:?}"),
            });
        }
        let url = self.url(
            &self.inner.cfg.endpoints.clob,
            &format!("/markets/{condition_id}"),
        )?;
        let req = Req { url, body: None };
        let decoded = self
            .fetch(Api::ClobBook, &req, |body, url| {
                decode_clob_market(body).map_err(|r| FetchError::Decode {
                    url: url.to_owned(),
                    reason: r.to_string(),
                })
            })
            .await;
        match decoded {
            Ok((market, drifts)) => {
                self.note_drifts(&req.short_url(), &drifts);
                Ok(Some(market))
            }
            Err(FetchError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET {data}/trades?market=<comma-separated condition ids>&limit=…&takerOnly=true`
    /// (Data API v1: epoch-seconds timestamps, numeric price/size, newest first). Rows that
    /// cannot become a [`Trade`] are listed in `rejected`; drifted fields of kept rows in
    /// `drifts`. No condition ids → no request
    /// (an empty `market=` would return every market's trades).
    pub async fn trades(
        &self,
        condition_ids: &[String],
        limit: u32,
    ) -> Result<Listing<Trade>, FetchError> {
        let (rows, url) = self.trade_rows_from(condition_ids, limit).await?;
        let mut out = Listing {
            items: Vec::with_capacity(rows.items.len()),
            pages: rows.pages,
            rejected: rows.rejected,
            drifts: rows.drifts,
        };
        let mut newly = Vec::new();
        for row in rows.items {
            match row.to_trade() {
                Ok(t) => out.items.push(t),
                Err(reason) => newly.push(Rejected::new(
                    "trade",
                    row.transaction_hash.clone().or(row.asset.clone()),
                    reason,
                )),
            }
        }
        // The undecodable rows were logged by `trade_rows_from`; only the new ones here.
        self.note_rejected(&url, &newly);
        out.rejected.extend(newly);
        Ok(out)
    }

    /// [`PolymarketClient::trades`] as full Data API rows (with transaction hash, wallet,
    /// condition id — what a dedup key needs).
    pub async fn trade_rows(
        &self,
        condition_ids: &[String],
        limit: u32,
    ) -> Result<Listing<DataTrade>, FetchError> {
        Ok(self.trade_rows_from(condition_ids, limit).await?.0)
    }

    /// One page of one market's trades inside a time window:
    /// `GET {data}/trades?market=<id>&start=<s>&end=<s>&limit=…&offset=…&takerOnly=true`
    /// (bounds in epoch seconds, newest first). The body is returned as received, for the raw
    /// tape, with its decoded rows; an offset past the API's cap (10,000) is a 400, so callers
    /// page by narrowing the window instead.
    pub async fn trades_page(&self, q: &TradesWindow<'_>) -> Result<TradesPage, FetchError> {
        let mut url = self.url(&self.inner.cfg.endpoints.data, "/trades")?;
        url.query_pairs_mut()
            .append_pair("market", q.condition_id)
            .append_pair("start", &q.start_s.to_string())
            .append_pair("end", &q.end_s.to_string())
            .append_pair("limit", &q.limit.clamp(1, MAX_TRADES_LIMIT).to_string())
            .append_pair("offset", &q.offset.to_string())
            .append_pair("takerOnly", "true");
        let req = Req { url, body: None };
        let (body, decoded) = self
            .fetch(Api::DataTrades, &req, |body, url| {
                let decoded = decode_trades(body).map_err(|e| FetchError::from_json(url, &e))?;
                Ok((String::from_utf8_lossy(body).into_owned(), decoded))
            })
            .await?;
        let url = req.short_url();
        self.note_rejected(&url, &decoded.rejected);
        self.note_drifts(&url, &decoded.drifts);
        Ok(TradesPage {
            body,
            rows: decoded.trades,
            rejected: decoded.rejected.len(),
        })
    }

    /// The rows of [`PolymarketClient::trade_rows`] and the (shortened) URL they came from.
    async fn trade_rows_from(
        &self,
        condition_ids: &[String],
        limit: u32,
    ) -> Result<(Listing<DataTrade>, String), FetchError> {
        let ids = unique(condition_ids);
        if ids.is_empty() {
            return Ok((Listing::default(), String::new()));
        }
        let mut url = self.url(&self.inner.cfg.endpoints.data, "/trades")?;
        url.query_pairs_mut()
            .append_pair("market", &ids.join(","))
            .append_pair("limit", &limit.clamp(1, MAX_TRADES_LIMIT).to_string())
            // The server default today; sent so a changed default cannot double-count fills.
            .append_pair("takerOnly", "true");
        let req = Req { url, body: None };
        let decoded = self
            .fetch(Api::DataTrades, &req, |body, url| {
                decode_trades(body).map_err(|e| FetchError::from_json(url, &e))
            })
            .await?;
        let url = req.short_url();
        self.note_rejected(&url, &decoded.rejected);
        self.note_drifts(&url, &decoded.drifts);
        Ok((
            Listing {
                items: decoded.trades,
                pages: 1,
                rejected: decoded.rejected,
                drifts: decoded.drifts,
            },
            url,
        ))
    }

    // -----------------------------------------------------------------------------------------

    fn url(&self, base: &str, path: &str) -> Result<Url, FetchError> {
        Url::parse(&format!("{base}{path}")).map_err(|e| FetchError::Config {
            reason: format!("URL {base}{path}: {e}"),
        })
    }

    fn limiter(&self, api: Api) -> &RateLimiter {
        let l = &self.inner.limiters;
        match api {
            Api::GammaMarkets => &l.gamma_markets,
            Api::ClobBooks => &l.clob_books,
            Api::ClobBook => &l.clob_book,
            Api::DataTrades => &l.data_trades,
        }
    }

    /// Logs (warn, once per record, with the URL it came from) and counts what a response
    /// had to drop. The one place rejections are logged: each is passed here exactly once,
    /// right after it is produced, and callers of the client only count them.
    fn note_rejected(&self, url: &str, rejected: &[Rejected]) {
        if rejected.is_empty() {
            return;
        }
        bump(&self.inner.stats.rejected, rejected.len() as u64);
        for r in rejected {
            tracing::warn!(
                url = %url,
                what = r.what,
                key = r.key.as_deref().unwrap_or(""),
                reason = %r.reason,
                "rejected input"
            );
        }
    }

    /// Counts drifted fields by [`Drift::stat_key`] and logs the first drift of each key in the
    /// client's lifetime (warn, with the URL): a changed schema repeats on every record, so
    /// later ones are only counted. The one place drifts are logged, like
    /// [`PolymarketClient::note_rejected`].
    fn note_drifts(&self, url: &str, drifts: &[Drift]) {
        if drifts.is_empty() {
            return;
        }
        let mut first = Vec::new();
        {
            let mut counts = self
                .inner
                .stats
                .drifts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for d in drifts {
                let n = counts.entry(d.stat_key()).or_insert(0);
                if *n == 0 {
                    first.push(d);
                }
                *n += 1;
            }
        }
        for d in first {
            tracing::warn!(
                url = %url,
                what = d.what,
                field = %d.field,
                key = d.key.as_deref().unwrap_or(""),
                reason = %d.reason,
                "schema drift: field read as absent (logged once per field; later ones only counted)"
            );
        }
    }

    /// Logs and counts ids a server refused (a 4xx narrowed down to them).
    fn note_refused(&self, url: &str, ids: &[String], error: &FetchError) {
        bump(&self.inner.stats.refused_ids, ids.len() as u64);
        for id in ids {
            tracing::warn!(url = %url, key = %id, error = %error, "id refused by the server");
        }
    }

    /// Counts one deadline cut-off and gives the error to return: the last attempt's, or
    /// [`FetchError::Deadline`] when nothing was attempted.
    fn cut_off(&self, last: Option<FetchError>, url: &str) -> FetchError {
        bump(&self.inner.stats.deadline_cutoffs, 1);
        last.unwrap_or_else(|| FetchError::Deadline {
            url: url.to_owned(),
        })
    }

    /// Makes `req` until it succeeds, fails for good, or runs out of retries or time. `decode`
    /// sees the complete body and the URL (for errors); a truncated-JSON error it returns is
    /// retried like any other transient failure. Under a deadline no attempt starts at or
    /// after it, each attempt's timeout is cut to the time left, and no wait (rate limiter,
    /// backoff, `Retry-After`) that would end at or past it is begun.
    async fn fetch<T>(
        &self,
        api: Api,
        req: &Req,
        decode: impl Fn(&[u8], &str) -> Result<T, FetchError>,
    ) -> Result<T, FetchError> {
        let cfg = &self.inner.cfg;
        let stats = &self.inner.stats;
        let url = req.short_url();
        let mut attempt: u32 = 0;
        let mut last: Option<FetchError> = None;
        loop {
            let timeout = match self.deadline {
                None => {
                    self.limiter(api).acquire().await;
                    cfg.request_timeout
                }
                Some(deadline) => {
                    if !self.limiter(api).acquire_before(deadline).await {
                        return Err(self.cut_off(last, &url));
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.cut_off(last, &url));
                    }
                    cfg.request_timeout.min(left)
                }
            };
            bump(&stats.requests, 1);
            let result = match self.attempt(req, &url, timeout).await {
                Ok(body) => decode(&body, &url),
                Err(e) => Err(e),
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match &err {
                FetchError::RateLimited { .. } => bump(&stats.rate_limited, 1),
                FetchError::Server { .. } => bump(&stats.server_errors, 1),
                FetchError::Truncated { .. } => bump(&stats.truncated, 1),
                FetchError::Timeout { .. } => bump(&stats.timeouts, 1),
                _ => {}
            }
            if !err.is_retryable() || attempt >= cfg.max_retries {
                return Err(err);
            }
            let delay = self.retry_delay(&err, attempt);
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() + delay >= deadline)
            {
                return Err(self.cut_off(Some(err), &url));
            }
            attempt += 1;
            bump(&stats.retries, 1);
            tracing::warn!(
                url = %url,
                attempt,
                cause = %err,
                delay_ms = delay.as_millis() as u64,
                "retrying Polymarket request"
            );
            last = Some(err);
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP attempt within `timeout` (connect, headers and body): the body of a 2xx
    /// response, or the classified failure.
    async fn attempt(
        &self,
        req: &Req,
        url: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let http = &self.inner.http;
        let builder = match &req.body {
            None => http.get(req.url.clone()),
            Some(b) => http
                .post(req.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(b.clone()),
        };
        let resp = builder
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| send_error(url, &e))?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The body is usually Cloudflare HTML: never parse it.
            return Err(FetchError::RateLimited {
                url: url.to_owned(),
                retry_after: retry_after(resp.headers()),
            });
        }
        if status.is_server_error() {
            return Err(FetchError::Server {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            let body = read_prefix(resp, STATUS_BODY_CHARS * 4).await;
            let body: String = String::from_utf8_lossy(&body)
                .chars()
                .take(STATUS_BODY_CHARS)
                .collect();
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        read_capped(resp, self.inner.cfg.max_body_bytes, url).await
    }

    /// How long to wait before retry number `attempt + 1`.
    fn retry_delay(&self, err: &FetchError, attempt: u32) -> Duration {
        let cfg = &self.inner.cfg;
        if let FetchError::RateLimited {
            retry_after: Some(ra),
            ..
        } = err
        {
            return (*ra).min(cfg.max_retry_after);
        }
        let exp = cfg
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(MAX_BACKOFF);
        // "Equal jitter": half fixed, half random, so retries spread out but never collapse
        // to zero.
        exp.mul_f64(0.5 + 0.5 * self.unit_random())
    }

    /// A pseudo-random number in [0, 1) (splitmix64; jitter needs no more).
    fn unit_random(&self) -> f64 {
        let mut z = self
            .inner
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// RFC 3339 with seconds and `Z`, as Gamma's date filters expect.
fn iso(t: Ts) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether a failed request was sent at all (a deadline, a page cap, a refused cursor or an
/// over-long URL stop it before).
fn was_sent(e: &FetchError) -> bool {
    !matches!(
        e,
        FetchError::Deadline { .. }
            | FetchError::TooManyPages { .. }
            | FetchError::RepeatedCursor { .. }
            | FetchError::UrlTooLong { .. }
            | FetchError::Config { .. }
    )
}

/// The ids in first-seen order without duplicates or empty strings.
fn unique(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter()
        .filter(|id| !id.is_empty() && seen.insert(id.as_str()))
        .cloned()
        .collect()
}

/// Bytes `s` takes as an `application/x-www-form-urlencoded` value.
fn form_encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b' ' => 1,
            _ => 3,
        })
        .sum()
}

/// Splits ids into chunks of at most [`MAX_CONDITION_IDS_PER_REQUEST`] whose URL (base of
/// `base_len` bytes plus `&condition_ids=<id>` each) stays under [`MAX_URL_BYTES`] (a
/// follow-up page's cursor is fitted in when it is needed, see `keyset_pages`). Ids that
/// cannot fit even alone are returned separately.
fn chunk_condition_ids(base_len: usize, ids: &[String]) -> (Vec<Vec<String>>, Vec<String>) {
    const KEY: usize = "&condition_ids=".len();
    let mut chunks = Vec::new();
    let mut too_long = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut len = base_len;
    for id in ids {
        let add = KEY + form_encoded_len(id);
        if base_len + add >= MAX_URL_BYTES {
            too_long.push(id.clone());
            continue;
        }
        if cur.len() == MAX_CONDITION_IDS_PER_REQUEST || len + add >= MAX_URL_BYTES {
            chunks.push(std::mem::take(&mut cur));
            len = base_len;
        }
        cur.push(id.clone());
        len += add;
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    (chunks, too_long)
}

/// Classifies a failure before any response arrived.
fn send_error(url: &str, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout {
            url: url.to_owned(),
        }
    } else if e.is_builder() {
        FetchError::Config {
            reason: error_chain(e),
        }
    } else {
        // Refused, reset, DNS, TLS, or closed before the headers: all worth another try.
        FetchError::Connect {
            url: url.to_owned(),
            reason: error_chain(e),
        }
    }
}

/// The error and its sources, so "error sending request" says *why*.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(v, chrono::Utc::now())
}

/// Parses a `Retry-After` value (delta seconds, possibly fractional, or an HTTP date) at `now`.
pub fn parse_retry_after(v: &str, now: Ts) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (when.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Reads the body in chunks, failing as soon as it exceeds `limit` (never buffering an
/// oversized body whole).
async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
    url: &str,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => {
                return Err(FetchError::Timeout {
                    url: url.to_owned(),
                })
            }
            // The connection dropped mid-body.
            Err(_) => {
                return Err(FetchError::Truncated {
                    url: url.to_owned(),
                })
            }
        }
    }
}

/// Up to `max` bytes of a body (for error messages); errors just end the read.
async fn read_prefix(mut resp: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c[..c.len().min(max - body.len())]),
            _ => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn books_batch_comes_from_the_environment_and_is_checked() {
        let get =
            |v: &'static str| move |k: &str| (k == "POLYTAPE_BOOKS_BATCH").then(|| v.to_string());
        assert_eq!(
            ClientConfig::from_lookup(get("40")).unwrap().books_batch,
            40
        );
        assert!(ClientConfig::from_lookup(get("0")).is_err());
        assert!(ClientConfig::from_lookup(get("many")).is_err());
        assert_eq!(
            ClientConfig::from_lookup(|_| None).unwrap().books_batch,
            100
        );
    }

    #[test]
    fn given_env_overrides_when_building_endpoints_then_each_replaces_its_default_without_slash() {
        let e = Endpoints::from_lookup(|k| match k {
            "POLYTAPE_GAMMA_URL" => Some("http://127.0.0.1:9000/".into()),
            "POLYTAPE_DATA_URL" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(e.gamma, "http://127.0.0.1:9000");
        assert_eq!(e.clob, "https://clob.polymarket.com");
        assert_eq!(e.data, "https://data-api.polymarket.com");
        assert_eq!(e.ws, "wss://ws-subscriptions-clob.polymarket.com/ws/market");
    }

    #[test]
    fn given_250_condition_ids_when_chunked_then_3_chunks_of_at_most_100_under_8k() {
        let ids: Vec<String> = (0..250).map(|i| format!("0x{i:064x}")).collect();
        let base = "https://gamma-api.polymarket.com/markets/keyset?limit=100";
        let (chunks, too_long) = chunk_condition_ids(base.len(), &ids);
        assert!(too_long.is_empty());
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        for c in &chunks {
            let mut u = Url::parse(base).unwrap();
            for id in c {
                u.query_pairs_mut().append_pair("condition_ids", id);
            }
            assert!(u.as_str().len() < MAX_URL_BYTES, "{}", u.as_str().len());
        }
        assert_eq!(chunks.concat(), ids);
    }

    #[test]
    fn given_long_ids_when_chunked_then_the_url_limit_splits_before_100() {
        let ids: Vec<String> = (0..30).map(|i| format!("{i:0>400}")).collect();
        let (chunks, _) = chunk_condition_ids(60, &ids);
        assert!(chunks.len() > 1);
        for c in &chunks {
            let len = 60 + c.iter().map(|id| 15 + id.len()).sum::<usize>();
            assert!(len < MAX_URL_BYTES);
        }
        assert_eq!(chunks.concat(), ids, "order kept, nothing lost");
        let (_, too_long) = chunk_condition_ids(60, &["9".repeat(9000)]);
        assert_eq!(too_long.len(), 1);
    }

    #[test]
    fn given_retry_after_as_seconds_or_http_date_when_parsed_then_the_wait_is_right() {
        let now: Ts = "2015-10-21T07:27:58Z".parse().unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn given_backoff_settings_when_retrying_then_delays_double_with_jitter_and_cap() {
        let client = PolymarketClient::new(ClientConfig::default()).unwrap();
        let err = FetchError::Server {
            url: "u".into(),
            status: 503,
        };
        for attempt in 0..8 {
            let full = Duration::from_millis(200 * (1 << attempt)).min(MAX_BACKOFF);
            for _ in 0..20 {
                let d = client.retry_delay(&err, attempt);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
            }
        }
        let ra = FetchError::RateLimited {
            url: "u".into(),
            retry_after: Some(Duration::from_secs(600)),
        };
        assert_eq!(
            client.retry_delay(&ra, 0),
            Duration::from_secs(60),
            "capped by max_retry_after"
        );
        let ra = FetchError::RateLimited {
            url: "u".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(client.retry_delay(&ra, 0), Duration::from_secs(2));
    }

    #[test]
    fn given_duplicates_and_blanks_when_deduped_then_first_seen_order_is_kept() {
        let ids: Vec<String> = ["b", "a", "", "b", "c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(unique(&ids), ["b", "a", "c"]);
    }
}
