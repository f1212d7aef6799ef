//! The HTTP side: the axum router, the shared state, and the one wrapper every HTTP endpoint goes
//! through — fault injection, latency, the request log, counters, and recording what was served
//! into the truth (only when it reached the client intact: a truncated body records nothing).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::query::Query;
use crate::world::{SimFees, World};
use crate::{
    clob, data, gamma, ws, BadLevel, BadMarket, Counters, Endpoint, Fault, FaultKind,
    RequestRecord, ServedBook, ServedMarket, SimConfig, SimError, SimResult, Truth, TruthMarket,
    TruthStage, TruthTrade, WsCounters, WsTrade,
};

/// Request log bound (oldest entries dropped beyond it), so a long `polytape run --simulate`
/// does not grow without limit.
const LOG_CAP: usize = 200_000;
/// Served Gamma market objects kept in the truth (each is a few KB).
const MARKET_LOG_CAP: usize = 50_000;
/// Distinct served books kept in the truth.
const BOOK_CAP: usize = 8_192;
/// WebSocket trade events kept in the truth (each about 400 bytes).
const WS_TRADE_CAP: usize = 50_000;

/// Shared simulator state.
///
/// Lock order: `world` before `state`, never the other way round.
pub(crate) struct App {
    /// Written only to bring a rolling world up to the clock ([`App::world_at`]).
    world: RwLock<World>,
    started: Instant,
    now0: DateTime<Utc>,
    state: Mutex<Mutable>,
    shutdown: watch::Sender<bool>,
    /// The market WebSocket's knobs from the config.
    ws_cfg: ws::WsConfig,
    /// The last WebSocket connection id handed out (ids start at 1).
    ws_last_conn: AtomicU64,
    /// Bumped by [`App::drop_ws_connections`]: every connection open then drops.
    ws_drop: watch::Sender<u64>,
}

#[derive(Default)]
struct Mutable {
    counters: Counters,
    served_books: HashMap<String, ServedBook>,
    book_order: VecDeque<String>,
    served_markets: VecDeque<ServedMarket>,
    faults: VecDeque<Fault>,
    latency: Duration,
    /// Market ids (stable, unlike indices, when a rolling world drops markets).
    corrupt_markets: HashMap<u64, BadMarket>,
    corrupt_books: HashMap<String, BadLevel>,
    rejected_tokens: HashSet<String>,
    /// Condition ids and token ids of the markets whose requests fail (503) until healed.
    failing: HashSet<String>,
    /// WebSocket connections with an id up to this one are stalled (0: none).
    ws_stalled_upto: u64,
    /// Malformed frames still to inject.
    ws_malformed: u32,
    /// Live frames still to send with unknown events and fields.
    ws_unknown: u32,
    ws_trades: VecDeque<WsTrade>,
}

/// What a handler sees of one request.
pub(crate) struct Ctx<'a> {
    pub world: &'a World,
    pub now: DateTime<Utc>,
    /// Sim epoch second: prices and books are functions of it.
    pub step: i64,
    /// The request path (for ids in it, e.g. `/clob/markets/{condition_id}`).
    pub path: String,
    pub query: Query,
    pub body: &'a [u8],
    /// Market ids.
    pub corrupt_markets: HashMap<u64, BadMarket>,
    pub corrupt_books: HashMap<String, BadLevel>,
    /// Token ids whose book requests are refused (400).
    pub rejected_tokens: HashSet<String>,
}

/// A handler's answer before faults and logging.
pub(crate) struct Served {
    pub status: u16,
    pub body: Vec<u8>,
    pub items: u32,
    pub pending: Pending,
}

/// Truth entries to record if the response is served intact.
#[derive(Default)]
pub(crate) struct Pending {
    pub books: Vec<ServedBook>,
    pub markets: Vec<ServedMarket>,
}

impl Served {
    /// A 200 JSON answer.
    pub fn ok(body: String, items: u32, pending: Pending) -> Served {
        Served {
            status: 200,
            body: body.into_bytes(),
            items,
            pending,
        }
    }

    fn error(e: &SimError) -> Served {
        let body = serde_json::json!({ "error": e.to_string() }).to_string();
        Served {
            status: e.status(),
            body: body.into_bytes(),
            items: 0,
            pending: Pending::default(),
        }
    }
}

type HandlerFn = fn(&Ctx<'_>) -> Result<Served, SimError>;
type BoxedResponse = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

impl App {
    pub fn new(cfg: SimConfig) -> App {
        let mut world = World::generate(&cfg);
        // A rolling world's warm start (up to rate × 336 h of arrivals) is built here, not in
        // the first request, so no client waits on it.
        world.advance(cfg.now);
        let (shutdown, _) = watch::channel(false);
        let (ws_drop, _) = watch::channel(0);
        let ws_cfg = ws::WsConfig::new(&cfg);
        App {
            ws_cfg,
            ws_last_conn: AtomicU64::new(0),
            ws_drop,
            world: RwLock::new(world),
            started: Instant::now(),
            now0: cfg.now,
            state: Mutex::new(Mutable {
                latency: cfg.latency,
                ..Mutable::default()
            }),
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Mutable> {
        // A panic while holding the lock cannot leave it half-updated in a way that matters
        // to a simulator; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The world brought up to `now` (a no-op for the static world), read-locked.
    pub fn world_at(&self, now: DateTime<Utc>) -> RwLockReadGuard<'_, World> {
        {
            let w = self.read_world();
            if !w.due(now) {
                return w;
            }
        }
        self.write_world().advance(now);
        self.read_world()
    }

    fn read_world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_world(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The sim clock.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed =
            chrono::Duration::from_std(self.started.elapsed()).unwrap_or(chrono::Duration::zero());
        self.now0 + elapsed
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    pub fn truth(&self) -> Truth {
        let now = self.now();
        let world = self.world_at(now);
        let st = self.lock();
        let markets = world
            .markets
            .iter()
            .map(|m| TruthMarket {
                id: m.id.to_string(),
                condition_id: m.condition_id.clone(),
                question: m.question.clone(),
                token_ids: m.token_ids.clone(),
                outcomes: m.outcomes.clone(),
                end_date: m.end_date,
                closed: m.closed(),
                resolved: m.resolved(),
                stage: m.stage,
                final_at: m.final_at,
                closed_time: m.closed_time,
                enable_order_book: m.enable_order_book,
                accepting_orders: m.accepting_orders,
                volume_24h: m.volume_24h,
                neg_risk: m.neg_risk,
                event_id: world
                    .events
                    .get(m.event)
                    .map(|e| e.id.to_string())
                    .unwrap_or_default(),
                fees_enabled: world.fees(m) != SimFees::Disabled,
                fee: match world.fees(m) {
                    SimFees::Schedule { rate, exponent, .. } => Some((rate, exponent)),
                    _ => None,
                },
                kind: world.kind_at(m, now),
                corrupted: st.corrupt_markets.contains_key(&m.id),
                arrived_at: m.arrived_at,
                drifted_fields: if world.drifted(m) {
                    crate::DRIFTED_FIELDS.to_vec()
                } else {
                    Vec::new()
                },
                busy: world.busy.contains(&m.id),
            })
            .collect();
        Truth {
            markets,
            delisted: world.delisted.clone(),
            served_books: st.served_books.clone(),
            served_markets: st.served_markets.iter().cloned().collect(),
            ws_trades: st.ws_trades.iter().cloned().collect(),
        }
    }

    pub fn trades(
        &self,
        condition_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<TruthTrade> {
        let now = self.now();
        let world = self.world_at(now);
        let Some(m) = world
            .by_condition
            .get(condition_id)
            .map(|&i| &world.markets[i])
        else {
            return Vec::new();
        };
        let to_ms = to.timestamp_millis().min(now.timestamp_millis());
        data::trades_between(&world, m, from.timestamp_millis().saturating_sub(1), to_ms)
            .iter()
            .map(|t| data::truth_trade(m, t))
            .collect()
    }

    pub fn reset(&self) {
        let mut st = self.lock();
        st.counters = Counters::default();
        st.served_books.clear();
        st.book_order.clear();
        st.served_markets.clear();
        st.ws_trades.clear();
    }

    pub fn ws_cfg(&self) -> &ws::WsConfig {
        &self.ws_cfg
    }

    /// A new WebSocket connection's id.
    pub fn ws_connection_id(&self) -> u64 {
        self.ws_last_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Drop signals: a change means every connection open then drops.
    pub fn ws_drop_rx(&self) -> watch::Receiver<u64> {
        self.ws_drop.subscribe()
    }

    pub fn drop_ws_connections(&self) -> usize {
        self.ws_drop.send_modify(|n| *n += 1);
        self.ws_drop.receiver_count()
    }

    pub fn stall_ws(&self) {
        let upto = self.ws_last_conn.load(Ordering::Relaxed);
        self.lock().ws_stalled_upto = upto;
    }

    pub fn resume_ws(&self) {
        self.lock().ws_stalled_upto = 0;
    }

    pub fn ws_stalled(&self, conn: u64) -> bool {
        conn <= self.lock().ws_stalled_upto
    }

    pub fn inject_ws_malformed(&self, n: u32) {
        let mut st = self.lock();
        st.ws_malformed = st.ws_malformed.saturating_add(n);
    }

    pub fn inject_ws_unknown(&self, n: u32) {
        let mut st = self.lock();
        st.ws_unknown = st.ws_unknown.saturating_add(n);
    }

    /// Takes one queued malformed frame, if any.
    pub fn take_ws_malformed(&self) -> bool {
        let mut st = self.lock();
        let take = st.ws_malformed > 0;
        if take {
            st.ws_malformed -= 1;
            st.counters.ws.malformed_frames += 1;
        }
        take
    }

    /// Takes one queued unknown-events frame, if any.
    pub fn take_ws_unknown(&self) -> bool {
        let mut st = self.lock();
        let take = st.ws_unknown > 0;
        if take {
            st.ws_unknown -= 1;
        }
        take
    }

    /// Updates the WebSocket counters.
    pub fn count_ws(&self, f: impl FnOnce(&mut WsCounters)) {
        f(&mut self.lock().counters.ws);
    }

    /// Records what one WebSocket frame that reached the socket carried: `events` real events
    /// (counted as items), the trade events among them, and the counters.
    pub fn ws_sent(&self, events: u64, trades: Vec<WsTrade>, f: impl FnOnce(&mut WsCounters)) {
        let mut st = self.lock();
        *st.counters.items.entry(Endpoint::Ws).or_insert(0) += events;
        f(&mut st.counters.ws);
        st.ws_trades.extend(trades);
        while st.ws_trades.len() > WS_TRADE_CAP {
            st.ws_trades.pop_front();
        }
    }

    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().faults.push_back(fault);
        }
    }

    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    pub fn corrupt_market(&self, condition_id: &str, bad: BadMarket) {
        let world = self.world_at(self.now());
        if let Some(m) = world
            .by_condition
            .get(condition_id)
            .map(|&i| &world.markets[i])
        {
            self.lock().corrupt_markets.insert(m.id, bad);
        }
    }

    pub fn close_market(&self, condition_id: &str) -> bool {
        self.change_world(|w, now| w.close(condition_id, now))
    }

    pub fn propose_result(&self, condition_id: &str, outcome: usize) -> bool {
        self.change_world(|w, now| w.propose(condition_id, outcome, now))
    }

    pub fn dispute(&self, condition_id: &str) -> bool {
        self.change_world(|w, now| w.dispute(condition_id, now))
    }

    pub fn finalize(&self, condition_id: &str, result: SimResult) -> bool {
        self.change_world(|w, now| w.finalize(condition_id, TruthStage::Final { result }, now))
    }

    pub fn finalize_without_status(&self, condition_id: &str, outcome: usize) -> bool {
        self.change_world(|w, now| {
            w.finalize(
                condition_id,
                TruthStage::FinalWithoutStatus { outcome },
                now,
            )
        })
    }

    pub fn delist(&self, condition_id: &str) -> bool {
        self.change_world(|w, _| w.delist(condition_id))
    }

    /// Applies a knob to the world brought up to the sim clock, at that clock.
    fn change_world(&self, change: impl FnOnce(&mut World, DateTime<Utc>) -> bool) -> bool {
        let now = self.now();
        drop(self.world_at(now));
        change(&mut self.write_world(), now)
    }

    pub fn corrupt_book(&self, token_id: &str, bad: BadLevel) {
        self.lock().corrupt_books.insert(token_id.to_string(), bad);
    }

    pub fn reject_token(&self, token_id: &str) {
        self.lock().rejected_tokens.insert(token_id.to_string());
    }

    /// Makes every HTTP request naming one of these markets (a condition id in the URL, one
    /// of its token ids in the URL or the body) answer 503, until [`App::heal_markets`].
    pub fn fail_markets(&self, condition_ids: &[String]) {
        let world = self.world_at(self.now());
        let mut failing = HashSet::new();
        for id in condition_ids {
            failing.insert(id.clone());
            if let Some(m) = world.by_condition.get(id).map(|&i| &world.markets[i]) {
                failing.extend(m.token_ids.iter().filter(|t| !t.is_empty()).cloned());
            }
        }
        drop(world);
        self.lock().failing = failing;
    }

    pub fn heal_markets(&self) {
        self.lock().failing.clear();
    }

    /// Whether a request names a failing market.
    fn names_failing(&self, uri: &str, body: &[u8]) -> bool {
        let st = self.lock();
        if st.failing.is_empty() {
            return false;
        }
        let body = String::from_utf8_lossy(body);
        st.failing
            .iter()
            .any(|id| uri.contains(id.as_str()) || body.contains(id.as_str()))
    }

    pub fn corrupt_books(&self) -> HashMap<String, BadLevel> {
        self.lock().corrupt_books.clone()
    }

    pub fn signal_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// Takes one use of the first queued fault matching `ep` (`None`-endpoint faults match any
    /// HTTP endpoint, not the WebSocket).
    pub fn take_fault(&self, ep: Endpoint) -> Option<FaultKind> {
        let mut st = self.lock();
        let pos = st.faults.iter().position(|f| {
            f.times > 0
                && match f.endpoint {
                    Some(e) => e == ep,
                    None => ep != Endpoint::Ws,
                }
        })?;
        let fault = st.faults.get_mut(pos)?;
        fault.times -= 1;
        let kind = fault.kind;
        if fault.times == 0 {
            st.faults.remove(pos);
        }
        Some(kind)
    }

    /// Logs one request and counts it.
    pub fn record(&self, rec: RequestRecord, faulted: bool) {
        let mut st = self.lock();
        let c = &mut st.counters;
        *c.requests.entry(rec.endpoint).or_insert(0) += 1;
        *c.items.entry(rec.endpoint).or_insert(0) += u64::from(rec.items);
        if faulted {
            c.faults += 1;
        }
        c.log.push(rec);
        if c.log.len() > LOG_CAP + LOG_CAP / 10 {
            let excess = c.log.len() - LOG_CAP;
            c.log.drain(..excess);
        }
    }

    /// Records what reached a client.
    pub fn commit(&self, pending: Pending) {
        if pending.books.is_empty() && pending.markets.is_empty() {
            return;
        }
        let mut st = self.lock();
        for b in pending.books {
            if !st.served_books.contains_key(&b.hash) {
                st.book_order.push_back(b.hash.clone());
            }
            st.served_books.insert(b.hash.clone(), b);
            while st.served_books.len() > BOOK_CAP {
                match st.book_order.pop_front() {
                    Some(old) => {
                        st.served_books.remove(&old);
                    }
                    None => break,
                }
            }
        }
        for m in pending.markets {
            st.served_markets.push_back(m);
        }
        while st.served_markets.len() > MARKET_LOG_CAP {
            st.served_markets.pop_front();
        }
    }

    fn ctx<'a>(
        &'a self,
        world: &'a World,
        now: DateTime<Utc>,
        uri: &Uri,
        body: &'a [u8],
    ) -> Ctx<'a> {
        let (corrupt_markets, corrupt_books, rejected_tokens) = {
            let st = self.lock();
            (
                st.corrupt_markets.clone(),
                st.corrupt_books.clone(),
                st.rejected_tokens.clone(),
            )
        };
        Ctx {
            world,
            now,
            step: now.timestamp(),
            path: uri.path().to_string(),
            query: Query::parse(uri.query()),
            body,
            corrupt_markets,
            corrupt_books,
            rejected_tokens,
        }
    }
}

/// The router over every simulated endpoint.
pub(crate) fn router(app: Arc<App>) -> Router {
    fn route(
        ep: Endpoint,
        f: HandlerFn,
    ) -> impl Fn(State<Arc<App>>, Method, Uri, Bytes) -> BoxedResponse + Clone + Send + Sync + 'static
    {
        move |State(app): State<Arc<App>>, method: Method, uri: Uri, body: Bytes| {
            Box::pin(handle(app, ep, method, uri, body, f))
        }
    }
    Router::new()
        .route(
            "/gamma/markets/keyset",
            get(route(Endpoint::GammaKeyset, gamma::markets_keyset)),
        )
        .route(
            "/gamma/markets",
            get(route(Endpoint::GammaMarkets, gamma::markets_legacy)),
        )
        .route(
            "/gamma/events/keyset",
            get(route(Endpoint::GammaEventsKeyset, gamma::events_keyset)),
        )
        .route(
            "/gamma/events",
            get(route(Endpoint::GammaEvents, gamma::events_legacy)),
        )
        .route("/clob/book", get(route(Endpoint::ClobBook, clob::book)))
        .route("/clob/books", post(route(Endpoint::ClobBooks, clob::books)))
        .route(
            "/clob/markets/{condition_id}",
            get(route(Endpoint::ClobMarket, clob::market)),
        )
        .route(
            "/data/trades",
            get(route(Endpoint::DataTrades, data::trades)),
        )
        .route("/ws/market", get(ws::upgrade))
        .with_state(app)
}

/// Serves until the shutdown signal, then drains in-flight requests.
pub(crate) async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    let mut rx = app.shutdown_rx();
    let router = router(app);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "simulator server stopped with an error");
    }
}

/// Cloudflare's rate-limit page, abridged: clients must not expect JSON on a 429.
const CLOUDFLARE_429: &str = "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Access denied | polymarket.com used Cloudflare to restrict access</title></head>\n<body><div id=\"cf-wrapper\"><h1>Error 1015</h1><h2>You are being rate limited</h2><p>The owner of this website (polymarket.com) has banned you temporarily from accessing this website.</p></div></body></html>\n";

/// A fault response (429 or 5xx), with the given status and body.
pub(crate) fn fault_response(kind: FaultKind) -> Response {
    let builder = Response::builder();
    let built = match kind {
        FaultKind::TooManyRequests { retry_after_s } => builder
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::RETRY_AFTER, retry_after_s.to_string())
            .header(header::CONTENT_TYPE, "text/html; charset=UTF-8")
            .body(Body::from(CLOUDFLARE_429)),
        FaultKind::ServerError(code) => builder
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY))
            .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
            .body(Body::from(format!("error code: {code}"))),
        FaultKind::Truncate => builder.status(StatusCode::OK).body(Body::empty()),
    };
    built.unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(crate) fn fault_status(kind: FaultKind) -> u16 {
    match kind {
        FaultKind::TooManyRequests { .. } => 429,
        FaultKind::ServerError(code) => StatusCode::from_u16(code)
            .map(|s| s.as_u16())
            .unwrap_or(502),
        FaultKind::Truncate => 200,
    }
}

async fn handle(
    app: Arc<App>,
    ep: Endpoint,
    method: Method,
    uri: Uri,
    body: Bytes,
    f: HandlerFn,
) -> Response {
    let at = app.now();
    let names_failing = ep != Endpoint::Ws
        && app.names_failing(
            &uri.path_and_query()
                .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string()),
            &body,
        );
    let fault = if names_failing {
        Some(FaultKind::ServerError(503))
    } else {
        app.take_fault(ep)
    };
    let latency = app.latency();
    let uri_text = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    let mut rec = RequestRecord {
        endpoint: ep,
        method: method.to_string(),
        uri: uri_text,
        status: 0,
        items: 0,
        at,
        body_len: body.len(),
    };

    let response = match fault {
        Some(kind @ (FaultKind::TooManyRequests { .. } | FaultKind::ServerError(_))) => {
            rec.status = fault_status(kind);
            app.record(rec, true);
            fault_response(kind)
        }
        Some(FaultKind::Truncate) | None => {
            let served = {
                // Held only for this synchronous block: the handler runs on one consistent world.
                let world = app.world_at(at);
                let ctx = app.ctx(&world, at, &uri, &body);
                f(&ctx).unwrap_or_else(|e| Served::error(&e))
            };
            let truncate = fault.is_some();
            let (status, bytes) = if truncate {
                let mut bytes = served.body;
                bytes.truncate(bytes.len() / 2);
                (200, bytes)
            } else {
                (served.status, served.body)
            };
            rec.status = status;
            if !truncate {
                rec.items = served.items;
                app.commit(served.pending);
            }
            app.record(rec, truncate);
            Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(bytes))
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}
