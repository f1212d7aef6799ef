//! `polytape bench ingest`: the live feed end to end on this machine, as `polytape run` runs
//! it — the shard supervisor, the feed, the packer, the trades handler storing each message at
//! once, the tape writer — against a loopback server speaking Polymarket's CLOB market
//! channel, with a temporary data directory.
//!
//! The server (`polytape bench ingest-server`, a child process of the bench so its CPU and
//! memory are not the feed's; `--in-process` runs it on a thread instead) serves `--markets`
//! markets of two tokens. Once every token is subscribed it streams, for `--seconds`, about
//! `--rate` events a second spread over its connections (or as fast as the sockets take them,
//! `--rate max`): a `--trade-share` of them `last_trade_price` events (every
//! `--whale-every`-th trade a whale, notional ≥ $2,000), one in 250 a fresh 30-level `book`,
//! the rest `price_change` events of one level change each, packed 1–3 events a frame. The
//! default share, 0.003, is Polymarket's ([`DEFAULT_TRADE_SHARE`]); 0.1 is the stress mix.
//! Each connection's last frame is a trade, so once every trade sent has reached the queue the
//! supervisor has applied every frame. It also answers the Data API's `/trades` with no rows (the warm-up backfills).
//!
//! Measured:
//! * **events/s**: live events the server sent over its window's length, against the rate
//!   asked (`rate_achieved`: the ratio). The server paces itself on its own clock (each
//!   connection sends what is due every 10 ms), so it falls short only when the sockets do not
//!   take the events (the feed's backpressure: a shard that cannot hand a frame on stops
//!   reading its socket) or the server itself runs out of CPU; the figure is what was sent,
//!   never what was asked.
//! * **whether the feed kept up**: every trade sent reached the queue, the last within 5 s of
//!   the window's end (`drain_s`).
//! * **peak RSS**: the process's VmHWM once the feed stopped (its last writes included, the
//!   check's read-back not), and its VmRSS sampled every second (`memory.samples`, with the
//!   bytes the feed says it remembers to know trades again).
//! * **receive-to-queue latency**, per trade: from its `received_at` — the shard's stamp when
//!   the frame that brought it came off the socket — to the moment the message holding it is
//!   handed to the queue (the sink's `send` called, before anything is stored): the packer's
//!   linger (≤ 4 s) plus any time the trade waited in the feed's channels. p50/p99/max, in ms.
//!   And **server-to-queue**: from the server's own stamp on the frame (the trade's
//!   `timestamp`, taken as the frame is built, on the same clock) to the same hand-over, which
//!   also counts the time the frame waited in socket buffers while the feed did not read.
//! * **SQS requests per 1,000 trades**, counted as the cloud would make them for these
//!   messages (each ≤ 250 KiB): ws-fargate sends each message in its own `SendMessage`, billed
//!   one request per 64 KiB started; the trades function's poller receives them, billed the
//!   same per 64 KiB it returns; and deletes each Lambda batch in `DeleteMessageBatch` calls
//!   of at most 10 messages — a batch closes at 10,000 messages (template.yaml `BatchSize`),
//!   6 MB, or 300 s after its first message (`MaximumBatchingWindowInSeconds`), replayed here
//!   on the hand-over times. The
//!   poller's empty receives depend on time, not trades, and are left out (docs/costs.md ⚠A6).
//!   `SendMessageBatch` would not lower the sends: a batch is billed per 64 KiB of its summed
//!   payload, and it may hold 256 KiB in all, one full message.
//!
//! Checked, then: every trade sent is in the `trades` Parquet exactly once (by its
//! transaction hash, which numbers it), every whale has its `whale_events` row, and every
//! frame sent is a `raw_ws` frame record, byte for byte in total. A failed check fails the
//! command; speed never does.
//!
//! # Layout
//! * [`run_ingest`] — the bench; [`IngestReport`] its result, [`IngestReport::failures`] the
//!   accounting check.
//! * [`serve`] — the loopback market channel; [`server_main`] the hidden subcommand around it.
//! * `Measured` — the sink wrapper that times and counts each message handed to the queue.

use anyhow::{bail, Context};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::IntoResponse;
use futures_util::SinkExt;
use polytape_collector::live::{run_feed, FeedFiles, FeedStatus, MessageSink, StoreSink};
use polytape_collector::status::LiveEvents;
use polytape_core::live::TapeKind;
use polytape_feed::queue::Message;
use polytape_feed::supervisor::{SupervisorConfig, SupervisorCounts};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::{keys, parquet, LocalStore, MarketStore, ObjectStore};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What `polytape bench ingest` runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// How long the server streams.
    pub seconds: u64,
    /// Events a second over all connections; `None`: as fast as the sockets take them.
    pub rate: Option<u64>,
    /// Markets served (two tokens each).
    pub markets: usize,
    /// Every this many trades, one is a whale (notional ≥ $2,000).
    pub whale_every: u64,
    /// The share of the events that are trades, in (0, 1].
    pub trade_share: f64,
    /// The server on a thread of this process (its memory then counts) instead of a child.
    pub in_process: bool,
}

impl IngestOptions {
    /// What cannot be run: no markets, no window, or more markets than the token ids hold.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.markets == 0 {
            bail!("polytape bench ingest needs --markets of at least 1 (the markets streamed)");
        }
        if self.markets > MAX_MARKETS {
            bail!(
                "polytape bench ingest: --markets {} is more than it serves ({MAX_MARKETS})",
                self.markets
            );
        }
        if !(self.trade_share > 0.0 && self.trade_share <= 1.0) {
            bail!(
                "polytape bench ingest needs --trade-share above 0 and at most 1 (the share of the events that are trades), not {}",
                self.trade_share
            );
        }
        if self.seconds == 0 || self.seconds > MAX_SECONDS {
            bail!(
                "polytape bench ingest needs --seconds between 1 and {MAX_SECONDS} (the window streamed), not {}",
                self.seconds
            );
        }
        Ok(())
    }
}

/// The default `--trade-share`: 0.3 % of the events trades. Polymarket's market channel is
/// ≈ 99.7 % `price_change` events (PMXT archive v2, which records every event of every live
/// asset: <https://archive.pmxt.dev/docs/v2-data-overview>), so trades are at most the other
/// 0.3 % (books, which Polymarket sends on a trade that changes the book, share it).
pub const DEFAULT_TRADE_SHARE: f64 = 0.003;

/// A trade share in parts per million, as the generator counts it.
fn share_ppm(share: f64) -> u64 {
    (share * 1e6).round().clamp(1.0, 1e6) as u64
}

/// The most markets the bench serves (Polymarket lists about 30,000 open ones).
pub const MAX_MARKETS: usize = 100_000;

/// The longest window, a day.
pub const MAX_SECONDS: u64 = 86_400;

/// `--rate`: events a second, or `None` for `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub Option<u64>);

/// `--rate`: a whole number of events a second, or `max`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate(None));
    }
    match s.trim().replace(['_', ','], "").parse::<u64>() {
        Ok(n) if n > 0 => Ok(Rate(Some(n))),
        _ => Err(format!(
            "{s:?}: events per second (a whole number above 0) or max"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The market set both ends derive from `--markets`.

/// Market `n`'s condition id and its two tokens (77 digits, as Polymarket's).
fn market_ids(n: usize) -> (String, [String; 2]) {
    (
        format!("0x{:064x}", 0xbe_0000 + n),
        [format!("9{:076}", 2 * n), format!("9{:076}", 2 * n + 1)],
    )
}

/// The mid of a token in cents (35–65): the books never cross and every level fits in (0, 1).
fn mid_cents(token_index: usize) -> u32 {
    35 + (splitmix(token_index as u64) % 31) as u32
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A trade's transaction hash: its number in the run, so the stored table can be checked
/// against what was sent.
fn tx_hash(number: u64) -> String {
    format!("0x{number:064x}")
}

fn tx_number(hash: &str) -> Option<u64> {
    u64::from_str_radix(hash.strip_prefix("0x")?.trim_start_matches('0'), 16)
        .ok()
        .or_else(|| {
            hash.strip_prefix("0x")?
                .chars()
                .all(|c| c == '0')
                .then_some(0)
        })
}

// ---------------------------------------------------------------------------------------------
// The server.

/// What the server sent, by kind (`live_events`: those of the streaming window, without the
/// books answering subscribes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCounts {
    pub connections: u64,
    pub frames: u64,
    pub bytes: u64,
    pub events: u64,
    pub live_events: u64,
    pub books: u64,
    pub price_changes: u64,
    pub trades: u64,
    pub whales: u64,
    /// Frames whose send failed (the connection broke): the check fails on any.
    pub send_errors: u64,
    /// From the window's start to the last connection's last frame.
    pub window_s: f64,
}

/// What the server reports, in order.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    Listening(SocketAddr),
    /// Every connection has sent its window's last frame.
    Window(ServerCounts),
    /// Stopped: the final counts (books answering a late re-subscribe included).
    Final(ServerCounts),
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    events: AtomicU64,
    live_events: AtomicU64,
    books: AtomicU64,
    price_changes: AtomicU64,
    trades: AtomicU64,
    whales: AtomicU64,
    send_errors: AtomicU64,
}

/// A connection's counts since its last flush into the shared [`Counters`].
#[derive(Debug, Default)]
struct Local {
    frames: u64,
    bytes: u64,
    events: u64,
    live_events: u64,
    books: u64,
    price_changes: u64,
    trades: u64,
    whales: u64,
}

impl Counters {
    fn add(&self, l: &mut Local) {
        let r = Ordering::Relaxed;
        self.frames.fetch_add(l.frames, r);
        self.bytes.fetch_add(l.bytes, r);
        self.events.fetch_add(l.events, r);
        self.live_events.fetch_add(l.live_events, r);
        self.books.fetch_add(l.books, r);
        self.price_changes.fetch_add(l.price_changes, r);
        self.trades.fetch_add(l.trades, r);
        self.whales.fetch_add(l.whales, r);
        *l = Local::default();
    }

    fn snapshot(&self, window_s: f64) -> ServerCounts {
        let r = Ordering::Relaxed;
        ServerCounts {
            connections: self.connections.load(r),
            frames: self.frames.load(r),
            bytes: self.bytes.load(r),
            events: self.events.load(r),
            live_events: self.live_events.load(r),
            books: self.books.load(r),
            price_changes: self.price_changes.load(r),
            trades: self.trades.load(r),
            whales: self.whales.load(r),
            send_errors: self.send_errors.load(r),
            window_s,
        }
    }
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub markets: usize,
    pub rate: Option<u64>,
    pub seconds: u64,
    pub whale_every: u64,
    pub trade_share: f64,
}

struct Shared {
    cfg: ServerConfig,
    /// Token → (market index, its condition id, the token's index).
    tokens: HashMap<String, (Arc<str>, usize)>,
    subscribed: Mutex<HashSet<String>>,
    /// When the window started, once every token is subscribed (or the wait gave up).
    start: watch::Sender<Option<Instant>>,
    counts: Counters,
    next_trade: AtomicU64,
    /// Connections streaming their window now.
    streaming: AtomicUsize,
    /// When the last connection finished its window (ms after its start).
    last_done_ms: AtomicU64,
}

impl Shared {
    fn new(cfg: ServerConfig) -> Shared {
        let mut tokens = HashMap::new();
        for n in 0..cfg.markets {
            let (cid, ts) = market_ids(n);
            let cid: Arc<str> = Arc::from(cid);
            for (o, t) in ts.into_iter().enumerate() {
                tokens.insert(t, (cid.clone(), 2 * n + o));
            }
        }
        Shared {
            cfg,
            tokens,
            subscribed: Mutex::new(HashSet::new()),
            start: watch::Sender::new(None),
            counts: Counters::default(),
            next_trade: AtomicU64::new(0),
            streaming: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    /// Marks `assets` subscribed; starts the window once all are.
    fn subscribed(&self, assets: &[String]) {
        let all = {
            let mut s = self.subscribed.lock().unwrap_or_else(|e| e.into_inner());
            s.extend(assets.iter().cloned());
            s.len() >= self.tokens.len()
        };
        if all {
            self.start.send_if_modified(|s| {
                let first = s.is_none();
                s.get_or_insert_with(Instant::now);
                first
            });
        }
    }
}

/// Serves the market channel at `/ws/market` and an empty Data API `/trades` on `listener`
/// until `stop`, reporting on `events` (listening, the window's end, the final counts).
pub async fn serve(
    cfg: ServerConfig,
    listener: tokio::net::TcpListener,
    events: mpsc::UnboundedSender<ServerEvent>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(cfg));
    let addr = listener.local_addr()?;
    let _ = events.send(ServerEvent::Listening(addr));
    let app = axum::Router::new()
        .route("/ws/market", axum::routing::get(upgrade))
        .route(
            "/data/trades",
            axum::routing::get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "[]",
                )
            }),
        )
        .with_state(shared.clone());

    // The window: waits for it to start (every token subscribed, or 30 s after the first
    // subscribe at most), then for every streaming connection to finish.
    let watcher = {
        let shared = shared.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let mut start = shared.start.subscribe();
            let mut first_seen: Option<Instant> = None;
            let t0 = loop {
                if let Some(t) = *start.borrow() {
                    break t;
                }
                let any = !shared
                    .subscribed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty();
                if any {
                    let seen = *first_seen.get_or_insert_with(Instant::now);
                    if seen.elapsed() >= Duration::from_secs(30) {
                        tracing::warn!(
                            "bench server: not every token was subscribed in 30 s; starting anyway"
                        );
                        shared.start.send_if_modified(|s| {
                            s.get_or_insert_with(Instant::now);
                            true
                        });
                        continue;
                    }
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), start.changed()).await;
            };
            tokio::time::sleep_until((t0 + Duration::from_secs(shared.cfg.seconds)).into()).await;
            // Connections stream until their own clock passes the end, then send a last trade.
            tokio::time::sleep(Duration::from_millis(20)).await;
            while shared.streaming.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let window_s = shared.last_done_ms.load(Ordering::SeqCst) as f64 / 1000.0;
            let _ = events.send(ServerEvent::Window(shared.counts.snapshot(window_s)));
            window_s
        })
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("bench server")?;
    let window_s = if watcher.is_finished() {
        watcher.await.unwrap_or_default()
    } else {
        watcher.abort();
        0.0
    };
    let _ = events.send(ServerEvent::Final(shared.counts.snapshot(window_s)));
    Ok(())
}

async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(move |socket| async move {
        shared.counts.connections.fetch_add(1, Ordering::Relaxed);
        session(shared, socket).await;
    })
}

/// The assets of a subscribe frame or operation (`assets_ids`), or `None` when it is neither.
fn assets_of(text: &str) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Sub {
        assets_ids: Vec<String>,
        #[serde(default)]
        operation: Option<String>,
    }
    let s: Sub = serde_json::from_str(text).ok()?;
    match s.operation.as_deref() {
        None | Some("subscribe") => Some(s.assets_ids),
        Some(_) => Some(Vec::new()),
    }
}

/// One connection's events.
struct Generator {
    /// (condition id, token, token index, mid cents).
    tokens: Vec<(Arc<str>, String, usize, u32)>,
    rng: u64,
    /// Events generated on this connection.
    n: u64,
    /// Trades among them.
    trades: u64,
    /// The trade share in parts per million.
    share_ppm: u64,
}

impl Generator {
    fn next_rand(&mut self) -> u64 {
        self.rng = splitmix(self.rng);
        self.rng
    }

    fn add(&mut self, shared: &Shared, asset: &str) -> bool {
        let Some((cid, idx)) = shared.tokens.get(asset) else {
            return false;
        };
        if self.tokens.iter().any(|t| t.1 == asset) {
            return false;
        }
        self.tokens
            .push((cid.clone(), asset.to_string(), *idx, mid_cents(*idx)));
        true
    }

    /// A `book` event of token `i`: 30 levels a side, best last (Polymarket's order).
    fn book(&mut self, out: &mut String, i: usize, ts_ms: i64) {
        let (cid, token, _, mid) = &self.tokens[i];
        let (cid, token, mid) = (cid.clone(), token.clone(), *mid);
        let _ = write!(
            out,
            "{{\"event_type\":\"book\",\"asset_id\":\"{token}\",\"market\":\"{cid}\",\"bids\":["
        );
        for k in (1..=30u32).rev() {
            let size = 10 + self.next_rand() % 5_000;
            let comma = if k == 1 { "" } else { "," };
            let _ = write!(
                out,
                "{{\"price\":\"0.{:02}\",\"size\":\"{size}\"}}{comma}",
                mid - k
            );
        }
        out.push_str("],\"asks\":[");
        for k in (1..=30u32).rev() {
            let size = 10 + self.next_rand() % 5_000;
            let comma = if k == 1 { "" } else { "," };
            let _ = write!(
                out,
                "{{\"price\":\"0.{:02}\",\"size\":\"{size}\"}}{comma}",
                mid + k
            );
        }
        let hash = self.next_rand();
        let _ = write!(
            out,
            "],\"timestamp\":\"{ts_ms}\",\"hash\":\"{hash:016x}{:016x}\"}}",
            hash.rotate_left(17)
        );
    }

    /// The next live event into `out`; its kind counted in `l`.
    fn event(&mut self, shared: &Shared, out: &mut String, ts_ms: i64, l: &mut Local) {
        self.n += 1;
        let i = (self.next_rand() % self.tokens.len() as u64) as usize;
        // The share spread evenly: the n-th event is a trade when the trades due by it grow
        // (with 0.1, every tenth).
        if self.n * self.share_ppm / 1_000_000 > self.trades {
            self.trades += 1;
            self.trade(shared, out, i, ts_ms, l);
        } else if self.n % 250 == 1 {
            self.book(out, i, ts_ms);
            l.books += 1;
        } else {
            let r = self.next_rand();
            let (cid, token, _, mid) = &self.tokens[i];
            let bid = r & 1 == 0;
            let k = 1 + ((r >> 1) % 30) as u32;
            let price = if bid { mid - k } else { mid + k };
            let size = 1 + (r >> 8) % 9_999;
            let _ = write!(
                out,
                "{{\"event_type\":\"price_change\",\"market\":\"{cid}\",\"timestamp\":\"{ts_ms}\",\"price_changes\":[{{\"asset_id\":\"{token}\",\"price\":\"0.{price:02}\",\"size\":\"{size}\",\"side\":\"{}\",\"hash\":\"{:016x}\",\"best_bid\":\"0.{:02}\",\"best_ask\":\"0.{:02}\"}}]}}",
                if bid { "BUY" } else { "SELL" },
                r,
                mid - 1,
                mid + 1
            );
            l.price_changes += 1;
        }
        l.events += 1;
        l.live_events += 1;
    }

    /// A `last_trade_price` of token `i`, numbered in the run by its transaction hash.
    fn trade(&mut self, shared: &Shared, out: &mut String, i: usize, ts_ms: i64, l: &mut Local) {
        let number = shared.next_trade.fetch_add(1, Ordering::Relaxed);
        let whale =
            shared.cfg.whale_every > 0 && (number + 1).is_multiple_of(shared.cfg.whale_every);
        let r = self.next_rand();
        let (cid, token, _, mid) = &self.tokens[i];
        let buy = r & 1 == 0;
        let price = if buy { mid + 1 } else { mid - 1 };
        // A whale: ≈ $2,500 (tier 2); otherwise at most ≈ $135 (tier 0).
        let size = if whale {
            250_000 / u64::from(price)
        } else {
            5 + (r >> 1) % 200
        };
        let _ = write!(
            out,
            "{{\"asset_id\":\"{token}\",\"event_type\":\"last_trade_price\",\"fee_rate_bps\":\"0\",\"market\":\"{cid}\",\"price\":\"0.{price:02}\",\"side\":\"{}\",\"size\":\"{size}.{:02}\",\"timestamp\":\"{ts_ms}\",\"transaction_hash\":\"{}\"}}",
            if buy { "BUY" } else { "SELL" },
            (r >> 20) % 100,
            tx_hash(number)
        );
        l.trades += 1;
        l.whales += u64::from(whale);
    }

    /// A frame of 1–3 live events (an array when more than one, or now and then `[one]`).
    fn frame(&mut self, shared: &Shared, l: &mut Local, budget: u64) -> String {
        let k = (1 + self.n % 3).min(budget.max(1));
        let ts_ms = chrono::Utc::now().timestamp_millis();
        let mut out = String::with_capacity(400 * k as usize);
        let array = k > 1 || self.n % 7 == 3;
        if array {
            out.push('[');
        }
        for j in 0..k {
            if j > 0 {
                out.push(',');
            }
            self.event(shared, &mut out, ts_ms, l);
        }
        if array {
            out.push(']');
        }
        out
    }
}

/// Sends one frame (fed, not flushed) and counts it.
async fn send(socket: &mut WebSocket, text: String, l: &mut Local) -> bool {
    l.frames += 1;
    l.bytes += text.len() as u64;
    socket.feed(WsMessage::Text(text.into())).await.is_ok()
}

/// Answers a client frame: `PING` → `PONG`; a subscribe → the books of the assets added.
/// False once the socket is gone.
async fn on_client(
    shared: &Shared,
    socket: &mut WebSocket,
    g: &mut Generator,
    msg: Option<Result<WsMessage, axum::Error>>,
    l: &mut Local,
) -> bool {
    let text = match msg {
        None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return false,
        Some(Ok(WsMessage::Text(t))) => t,
        Some(Ok(_)) => return true,
    };
    if text.as_str().trim() == "PING" {
        return socket.send(WsMessage::Text("PONG".into())).await.is_ok();
    }
    let Some(assets) = assets_of(text.as_str()) else {
        return true;
    };
    let first = g.tokens.len();
    for a in &assets {
        g.add(shared, a);
    }
    shared.subscribed(&assets);
    if g.tokens.len() == first {
        return true;
    }
    let ts_ms = chrono::Utc::now().timestamp_millis();
    let mut dump = String::from("[");
    for i in first..g.tokens.len() {
        if i > first {
            dump.push(',');
        }
        g.book(&mut dump, i, ts_ms);
        l.books += 1;
        l.events += 1;
    }
    dump.push(']');
    let ok = send(socket, dump, l).await && socket.flush().await.is_ok();
    shared.counts.add(l);
    ok
}

async fn session(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut l = Local::default();
    let mut g = Generator {
        tokens: Vec::new(),
        rng: splitmix(shared.counts.connections.load(Ordering::Relaxed)),
        n: 0,
        trades: 0,
        share_ppm: share_ppm(shared.cfg.trade_share),
    };
    // Until the window starts: subscribes and PINGs.
    let mut start = shared.start.subscribe();
    let t0 = loop {
        if let Some(t) = *start.borrow_and_update() {
            break t;
        }
        tokio::select! {
            msg = socket.recv() => {
                if !on_client(&shared, &mut socket, &mut g, msg, &mut l).await {
                    return;
                }
            }
            _ = start.changed() => {}
        }
    };
    let end = t0 + Duration::from_secs(shared.cfg.seconds);
    if Instant::now() < end && !g.tokens.is_empty() {
        shared.streaming.fetch_add(1, Ordering::SeqCst);
        let ok = stream(&shared, &mut socket, &mut g, &mut l, t0, end).await;
        shared.counts.add(&mut l);
        let done_ms = t0.elapsed().as_millis() as u64;
        shared.last_done_ms.fetch_max(done_ms, Ordering::SeqCst);
        shared.streaming.fetch_sub(1, Ordering::SeqCst);
        if !ok {
            shared.counts.send_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    // After the window: PINGs (and a re-subscribe's books) until the client closes.
    loop {
        let msg = socket.recv().await;
        if !on_client(&shared, &mut socket, &mut g, msg, &mut l).await {
            return;
        }
    }
}

/// Streams this connection's share of the rate until `end`, then one last frame: a trade.
/// False when the socket broke.
async fn stream(
    shared: &Shared,
    socket: &mut WebSocket,
    g: &mut Generator,
    l: &mut Local,
    t0: Instant,
    end: Instant,
) -> bool {
    let total = shared.tokens.len().max(1) as f64;
    let share = g.tokens.len() as f64 / total;
    let rate = shared.cfg.rate.map(|r| r as f64 * share);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = match rate {
            Some(r) => (((now - t0).as_secs_f64() * r) as u64).saturating_sub(sent),
            None => 96,
        };
        let mut left = due;
        while left > 0 {
            let before = l.live_events;
            let f = g.frame(shared, l, left);
            let n = l.live_events - before;
            left = left.saturating_sub(n);
            sent += n;
            if !send(socket, f, l).await {
                return false;
            }
        }
        if socket.flush().await.is_err() {
            return false;
        }
        shared.counts.add(l);
        // Between batches: the client's PINGs and subscribes.
        if rate.is_some() {
            tokio::select! {
                biased;
                msg = socket.recv() => {
                    if !on_client(shared, socket, g, msg, l).await {
                        return false;
                    }
                }
                _ = tick.tick() => {}
            }
        } else {
            tokio::select! {
                biased;
                msg = socket.recv() => {
                    if !on_client(shared, socket, g, msg, l).await {
                        return false;
                    }
                }
                _ = std::future::ready(()) => {}
            }
        }
    }
    // The last frame a trade: once it is stored, every frame before it has been applied.
    let ts_ms = chrono::Utc::now().timestamp_millis();
    let mut last = String::with_capacity(400);
    let i = (g.next_rand() % g.tokens.len() as u64) as usize;
    g.trade(shared, &mut last, i, ts_ms, l);
    l.events += 1;
    l.live_events += 1;
    let ok = send(socket, last, l).await && socket.flush().await.is_ok();
    shared.counts.add(l);
    ok
}

/// `polytape bench ingest-server`: [`serve`] on 127.0.0.1 (a free port), reporting on stdout —
/// `listening on http://ADDR`, then `window {json}` when the window is over, then `final
/// {json}` — until its stdin closes.
pub async fn server_main(cfg: ServerConfig) -> anyhow::Result<()> {
    IngestOptions {
        seconds: cfg.seconds,
        rate: cfg.rate,
        markets: cfg.markets,
        whale_every: cfg.whale_every,
        trade_share: cfg.trade_share,
        in_process: false,
    }
    .check()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = stop_tx.send(());
    });
    let server = tokio::spawn(serve(cfg, listener, tx, async move {
        let _ = stop_rx.await;
    }));
    while let Some(ev) = rx.recv().await {
        match ev {
            ServerEvent::Listening(addr) => println!("listening on http://{addr}"),
            ServerEvent::Window(c) => println!("window {}", serde_json::to_string(&c)?),
            ServerEvent::Final(c) => {
                println!("final {}", serde_json::to_string(&c)?);
                break;
            }
        }
    }
    server.await??;
    Ok(())
}

/// The server as the bench runs it: a child process, or a thread with its own runtime.
enum Server {
    Child(std::process::Child),
    Thread {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        join: Option<std::thread::JoinHandle<()>>,
    },
}

impl Server {
    fn start(
        cfg: &ServerConfig,
        in_process: bool,
    ) -> anyhow::Result<(Server, mpsc::UnboundedReceiver<ServerEvent>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        if in_process {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let cfg = cfg.clone();
            let join = std::thread::Builder::new()
                .name("bench-server".into())
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            tracing::error!(error = %e, "bench server: no runtime");
                            return;
                        }
                    };
                    rt.block_on(async move {
                        let listener = match tokio::net::TcpListener::bind(SocketAddr::from((
                            [127, 0, 0, 1],
                            0,
                        )))
                        .await
                        {
                            Ok(l) => l,
                            Err(e) => {
                                tracing::error!(error = %e, "bench server: cannot bind");
                                return;
                            }
                        };
                        if let Err(e) = serve(cfg, listener, tx, async move {
                            let _ = stop_rx.await;
                        })
                        .await
                        {
                            tracing::error!(error = %e, "bench server failed");
                        }
                    });
                })?;
            return Ok((
                Server::Thread {
                    stop: Some(stop_tx),
                    join: Some(join),
                },
                rx,
            ));
        }
        let exe = std::env::current_exe().context("locating the polytape binary")?;
        let mut child = std::process::Command::new(exe)
            .args([
                "bench",
                "ingest-server",
                "--markets",
                &cfg.markets.to_string(),
                "--seconds",
                &cfg.seconds.to_string(),
                "--rate",
                &cfg.rate.map_or("max".to_string(), |r| r.to_string()),
                "--whale-every",
                &cfg.whale_every.to_string(),
                "--trade-share",
                &cfg.trade_share.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the bench server process")?;
        let stdout = child.stdout.take().context("bench server stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ev = if let Some(a) = line.strip_prefix("listening on http://") {
                    a.trim().parse().ok().map(ServerEvent::Listening)
                } else if let Some(j) = line.strip_prefix("window ") {
                    serde_json::from_str(j).ok().map(ServerEvent::Window)
                } else if let Some(j) = line.strip_prefix("final ") {
                    serde_json::from_str(j).ok().map(ServerEvent::Final)
                } else {
                    None
                };
                if let Some(ev) = ev {
                    let _ = tx.send(ev);
                }
            }
        });
        Ok((Server::Child(child), rx))
    }

    /// Asks the server to stop (it then reports its final counts).
    fn stop(&mut self) {
        match self {
            Server::Child(c) => drop(c.stdin.take()),
            Server::Thread { stop, .. } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        match self {
            Server::Child(c) => {
                let _ = c.wait();
            }
            Server::Thread { join, .. } => {
                if let Some(j) = join.take() {
                    let _ = j.join();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The queue side: each message handed over is timed and counted, then stored.

/// Receive-to-queue latency in whole ms: counts per ms up to [`LATENCY_SPAN_MS`], the rest
/// counted above it (their maximum kept).
#[derive(Debug, Clone)]
struct Latency {
    counts: Vec<u32>,
    over: u64,
    n: u64,
    max_ms: i64,
}

const LATENCY_SPAN_MS: usize = 120_000;

impl Latency {
    fn new() -> Latency {
        Latency {
            counts: vec![0; LATENCY_SPAN_MS + 1],
            over: 0,
            n: 0,
            max_ms: 0,
        }
    }

    fn add(&mut self, ms: i64) {
        let ms = ms.max(0);
        self.n += 1;
        self.max_ms = self.max_ms.max(ms);
        match self.counts.get_mut(ms as usize) {
            Some(c) => *c += 1,
            None => self.over += 1,
        }
    }

    /// The `q`-quantile (0–1) in ms (the maximum when it falls above the span).
    fn quantile(&self, q: f64) -> i64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0u64;
        for (ms, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return ms as i64;
            }
        }
        self.max_ms
    }
}

#[derive(Debug)]
struct QueueStats {
    messages: u64,
    /// 64 KiB chunks of the messages: the requests SQS bills for each send (and receive).
    chunks: u64,
    bytes: u64,
    trades: u64,
    whales: u64,
    /// Receive (the shard's stamp) to hand-over.
    latency: Latency,
    /// The server's stamp on the frame to hand-over.
    server_latency: Latency,
    poller: PollerBatches,
    /// When the last message was handed over.
    last_at: Option<Instant>,
}

impl QueueStats {
    fn new() -> QueueStats {
        QueueStats {
            messages: 0,
            chunks: 0,
            bytes: 0,
            trades: 0,
            whales: 0,
            latency: Latency::new(),
            server_latency: Latency::new(),
            poller: PollerBatches::default(),
            last_at: None,
        }
    }

    /// Counts one message handed over at `handed_ms` (epoch ms).
    fn add(&mut self, body: &str, handed_ms: i64) {
        self.messages += 1;
        self.bytes += body.len() as u64;
        self.chunks += sqs_chunks(body.len());
        self.poller.add(handed_ms, body.len());
        for line in body.lines().skip(1) {
            if line.starts_with("{\"trade\":") {
                self.trades += 1;
                if let Some(ms) = ts_field_ms(line, "received_at") {
                    self.latency.add(handed_ms - ms);
                }
                if let Some(ms) = ts_field_ms(line, "trade_ts") {
                    self.server_latency.add(handed_ms - ms);
                }
            } else if line.starts_with("{\"whale\":") {
                self.whales += 1;
            }
        }
        self.last_at = Some(Instant::now());
    }
}

/// SQS bills each 64 KiB of a request's payload as one request.
const SQS_CHUNK_BYTES: usize = 64 * 1024;

/// The requests SQS bills for sending (or receiving) a message of `bytes`.
fn sqs_chunks(bytes: usize) -> u64 {
    bytes.div_ceil(SQS_CHUNK_BYTES).max(1) as u64
}

/// The trades function's SQS event source (template.yaml): a batch holds at most this many
/// messages…
const POLLER_BATCH_SIZE: u32 = 10_000;
/// …and waits at most this long after its first message (`MaximumBatchingWindowInSeconds`)…
const POLLER_WINDOW_MS: i64 = 300_000;
/// …and holds at most Lambda's invocation payload.
const POLLER_MAX_BYTES: usize = 6 * 1024 * 1024;

/// Messages one `DeleteMessageBatch` deletes at most.
const DELETE_BATCH: u32 = 10;

/// The Lambda batches the messages would make, replayed on their hand-over times: each batch
/// is deleted once handled, [`DELETE_BATCH`] messages a request.
#[derive(Debug, Default)]
struct PollerBatches {
    /// The open batch: (its first message's time, messages, bytes).
    open: Option<(i64, u32, usize)>,
    closed: u64,
    /// The closed batches' `DeleteMessageBatch` requests.
    closed_deletes: u64,
}

impl PollerBatches {
    fn add(&mut self, at_ms: i64, bytes: usize) {
        if let Some((start, n, b)) = self.open {
            if at_ms - start >= POLLER_WINDOW_MS || b + bytes > POLLER_MAX_BYTES {
                self.close();
            } else {
                self.open = Some((start, n + 1, b + bytes));
            }
        }
        if self.open.is_none() {
            self.open = Some((at_ms, 1, bytes));
        }
        if self.open.is_some_and(|(_, n, _)| n >= POLLER_BATCH_SIZE) {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some((_, n, _)) = self.open.take() {
            self.closed += 1;
            self.closed_deletes += u64::from(n.div_ceil(DELETE_BATCH));
        }
    }

    /// Batches in all, the open one included.
    fn batches(&self) -> u64 {
        self.closed + u64::from(self.open.is_some())
    }

    /// `DeleteMessageBatch` requests in all, the open batch's included.
    fn deletes(&self) -> u64 {
        self.closed_deletes
            + self
                .open
                .map_or(0, |(_, n, _)| u64::from(n.div_ceil(DELETE_BATCH)))
    }
}

/// The queue the bench's feed hands its messages to: `polytape run`'s own sink (the trades
/// handler storing each message at once, with the live event stream), timed and counted.
struct Measured<K> {
    inner: K,
    stats: Mutex<QueueStats>,
    /// Testing the check: acknowledge the n-th message (from 1) without storing it.
    drop_message: Option<u64>,
}

impl<K: MessageSink> MessageSink for Measured<K> {
    async fn send(&self, message: &Message) -> Result<(), String> {
        // The hand-over: before the message is stored (the local queue's "send").
        let handed_ms = chrono::Utc::now().timestamp_millis();
        let nth = self.stats.lock().map(|s| s.messages + 1).unwrap_or(0);
        if self.drop_message != Some(nth) {
            self.inner.send(message).await?;
        }
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&message.body, handed_ms);
        Ok(())
    }
}

/// A record's time field (`"name":"RFC 3339"`) in epoch ms, read without decoding the record.
fn ts_field_ms(line: &str, name: &str) -> Option<i64> {
    let field = format!("\"{name}\":\"");
    let at = line.find(&field)? + field.len();
    let end = at + line[at..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&line[at..end])
        .ok()
        .map(|t| t.timestamp_millis())
}

// ---------------------------------------------------------------------------------------------
// Memory.

/// VmRSS sampled every second on a thread of its own, with what the feed last said it
/// remembers and how often it had to wait.
struct RssSampler {
    samples: Arc<Mutex<Vec<MemorySample>>>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// One second's sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemorySample {
    /// Seconds since the feed started.
    pub t_s: u64,
    pub rss_kib: u64,
    /// What the feed remembers to know trades again (its tables' allocation), in KiB.
    pub remembered_kib: u64,
    /// Times the feed's consumer channel was full (cumulative).
    pub consumer_waits: u64,
    /// Frames a shard had to wait to hand on (cumulative).
    pub shard_waits: u64,
}

impl RssSampler {
    fn start(status: FeedStatus) -> RssSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (out, s) = (samples.clone(), stop.clone());
        let join = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut next = Duration::ZERO;
            while !s.load(Ordering::Relaxed) {
                if t0.elapsed() >= next {
                    let (_, rss_kib) = crate::bench::memory_kib();
                    let c = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let c = c.unwrap_or_default();
                    out.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(MemorySample {
                            t_s: next.as_secs(),
                            rss_kib,
                            remembered_kib: c.remembered_bytes / 1024,
                            consumer_waits: c.consumer_waits,
                            shard_waits: c.shard_waits,
                        });
                    next += Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            samples,
            stop,
            join: Some(join),
        }
    }

    /// Stops sampling: the samples.
    fn finish(mut self) -> Vec<MemorySample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

// ---------------------------------------------------------------------------------------------
// The report.

/// Every trade number sent, and how often the stored table holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TradeTally {
    /// Stored rows.
    pub rows: u64,
    /// Numbers sent that are stored exactly once.
    pub once: u64,
    /// Rows beyond the first of a number.
    pub duplicates: u64,
    /// Numbers sent that are not stored.
    pub missing: u64,
    /// Rows whose transaction hash is not a number sent.
    pub unknown: u64,
    #[serde(skip)]
    seen: Vec<u8>,
}

impl TradeTally {
    fn new(sent: u64) -> TradeTally {
        TradeTally {
            seen: vec![0; sent as usize],
            ..TradeTally::default()
        }
    }

    fn add(&mut self, hash: Option<&str>) {
        self.rows += 1;
        match hash
            .and_then(tx_number)
            .and_then(|n| self.seen.get_mut(n as usize))
        {
            Some(c) => *c = c.saturating_add(1),
            None => self.unknown += 1,
        }
    }

    fn finish(&mut self) {
        self.once = self.seen.iter().filter(|c| **c == 1).count() as u64;
        self.missing = self.seen.iter().filter(|c| **c == 0).count() as u64;
        self.duplicates = self
            .seen
            .iter()
            .map(|c| u64::from(c.saturating_sub(1)))
            .sum();
    }
}

/// What the data directory holds once the feed stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stored {
    pub trades: TradeTally,
    pub trade_files: u64,
    pub whale_events: u64,
    pub tape_objects: u64,
    pub tape_frames: u64,
    pub tape_frame_bytes: u64,
}

/// Latency quantiles of the trades handed to the queue, in ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencyReport {
    pub trades: u64,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

impl LatencyReport {
    fn of(l: &Latency) -> LatencyReport {
        LatencyReport {
            trades: l.n,
            p50_ms: l.quantile(0.50),
            p99_ms: l.quantile(0.99),
            max_ms: l.max_ms,
        }
    }
}

/// The queue's side: messages handed over and what SQS would bill for them (see the module
/// docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueReport {
    pub messages: u64,
    pub bytes: u64,
    pub trades: u64,
    pub whales: u64,
    /// 64 KiB chunks of the messages: the billed `SendMessage` requests, and as many billed
    /// receives.
    pub chunks: u64,
    /// The trades function's batches (≤ 10,000 messages, ≤ 6 MB, ≤ 300 s): deleted 10
    /// messages a `DeleteMessageBatch`.
    pub poller_batches: u64,
    /// Sends + receives + deletes: `2 × chunks` + a `DeleteMessageBatch` per 10 messages of
    /// each Lambda batch.
    pub billed_requests: u64,
    pub messages_per_1000_trades: f64,
    pub requests_per_1000_trades: f64,
}

impl QueueReport {
    fn of(s: &QueueStats) -> QueueReport {
        let billed_requests = 2 * s.chunks + s.poller.deletes();
        let per_1000 = |x: u64| {
            if s.trades == 0 {
                0.0
            } else {
                x as f64 * 1000.0 / s.trades as f64
            }
        };
        QueueReport {
            messages: s.messages,
            bytes: s.bytes,
            trades: s.trades,
            whales: s.whales,
            chunks: s.chunks,
            poller_batches: s.poller.batches(),
            billed_requests,
            messages_per_1000_trades: per_1000(s.messages),
            requests_per_1000_trades: per_1000(billed_requests),
        }
    }
}

/// Memory of this process (the feed, the store, the bench's own counters; the server too with
/// `--in-process`), in KiB.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryReport {
    /// VmHWM once the feed stopped (its final writes included, the read-back not).
    pub peak_rss_kib: u64,
    /// The largest VmRSS sampled once a second while the feed ran.
    pub sampled_max_rss_kib: u64,
    /// The last sample.
    pub last_rss_kib: u64,
    /// What the feed remembered to know trades again at its stop (KiB).
    pub remembered_kib: u64,
    /// Every second's sample.
    pub samples: Vec<MemorySample>,
}

/// The feed's own counters at its stop.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeedReport {
    pub frames: u64,
    pub fast_frames: u64,
    pub events: u64,
    pub trades_ws: u64,
    pub duplicates: u64,
    pub whales: u64,
    pub shards: u32,
    pub reconnects: u64,
    pub backfills: u64,
    pub backfill_failures: u64,
    pub lost_messages: u64,
    pub tape_objects: u64,
    pub lost_tape_objects: u64,
    pub malformed_frames: u64,
    pub unknown_events: u64,
    /// Backpressure: times the consumer's channel was full; frames a shard waited to hand on,
    /// and for how long in all.
    pub consumer_waits: u64,
    pub shard_waits: u64,
    pub shard_wait_ms: u64,
}

impl FeedReport {
    fn of(c: &SupervisorCounts) -> FeedReport {
        FeedReport {
            frames: c.feed.frames,
            fast_frames: c.feed.fast_frames,
            events: c.feed.events,
            trades_ws: c.feed.trades_ws,
            duplicates: c.feed.duplicates,
            whales: c.feed.whales,
            shards: c.shards,
            reconnects: c.reconnects,
            backfills: c.backfills,
            backfill_failures: c.backfill_failures,
            lost_messages: c.lost_messages,
            tape_objects: c.tape_objects,
            lost_tape_objects: c.lost_tape_objects,
            malformed_frames: c.feed.malformed_frames,
            unknown_events: c.feed.unknown_events,
            consumer_waits: c.consumer_waits,
            shard_waits: c.shard_waits,
            shard_wait_ms: c.shard_wait_ms,
        }
    }
}

/// The bench's result (`--json` prints it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    pub seconds: u64,
    /// Events a second asked for; `null`: max.
    pub rate: Option<u64>,
    pub markets: usize,
    pub whale_every: u64,
    pub trade_share: f64,
    pub in_process: bool,
    pub server: ServerCounts,
    /// Live events sent over the window's length.
    pub events_per_s: f64,
    /// `events_per_s` over the rate asked (`null` with `max`).
    pub rate_achieved: Option<f64>,
    pub trades_per_s: f64,
    /// From the window's end (the server's last frame) to the last trade's hand-over to the
    /// queue; `null` when not every trade got there.
    pub drain_s: Option<f64>,
    /// Every trade sent reached the queue, the last within 5 s of the window's end.
    pub kept_up: bool,
    /// Receive (the shard's stamp) to hand-over to the queue, per trade.
    pub latency: LatencyReport,
    /// The server's stamp on the frame to hand-over to the queue, per trade.
    pub server_to_queue: LatencyReport,
    pub queue: QueueReport,
    pub memory: MemoryReport,
    pub feed: FeedReport,
    pub stored: Stored,
    /// What the accounting check found wrong (empty: passed).
    pub failures: Vec<String>,
}

impl IngestReport {
    /// The accounting check: every trade sent stored exactly once, every whale its event,
    /// every frame sent on the tape (count and bytes), no send failed, nothing given up.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        let (s, t) = (&self.server, &self.stored.trades);
        if t.once != s.trades || t.missing > 0 || t.duplicates > 0 || t.unknown > 0 {
            f.push(format!(
                "trades: {} sent, {} stored exactly once, {} missing, {} duplicate rows, {} unknown rows",
                s.trades, t.once, t.missing, t.duplicates, t.unknown
            ));
        }
        if self.stored.whale_events != s.whales {
            f.push(format!(
                "whale events: {} whales sent, {} stored",
                s.whales, self.stored.whale_events
            ));
        }
        if self.stored.tape_frames != s.frames || self.stored.tape_frame_bytes != s.bytes {
            f.push(format!(
                "raw_ws: {} frames ({} bytes) sent, {} frames ({} bytes) on the tape",
                s.frames, s.bytes, self.stored.tape_frames, self.stored.tape_frame_bytes
            ));
        }
        if s.send_errors > 0 {
            f.push(format!("{} server sends failed", s.send_errors));
        }
        if self.feed.lost_messages > 0 || self.feed.lost_tape_objects > 0 {
            f.push(format!(
                "the feed gave up {} messages and {} tape objects",
                self.feed.lost_messages, self.feed.lost_tape_objects
            ));
        }
        f
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        let s = &self.server;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ingest: {} markets ({} tokens), rate {}, {} s window, trade share {}, whale every {} trades, server {}",
            self.markets,
            2 * self.markets,
            self.rate.map_or("max".into(), |r| format!("{r} events/s")),
            self.seconds,
            self.trade_share,
            self.whale_every,
            if self.in_process { "in this process" } else { "a child process" }
        );
        let _ = writeln!(
            out,
            "sent: {} live events in {:.2} s → {:.0} events/s{} ({:.0} trades/s); {} frames, {:.1} MiB; {} trades ({} whales), {} price changes, {} books; {} connections",
            s.live_events,
            s.window_s,
            self.events_per_s,
            self.rate_achieved
                .map_or(String::new(), |r| format!(" ({:.1} % of the rate asked)", 100.0 * r)),
            self.trades_per_s,
            s.frames,
            s.bytes as f64 / f64::from(1 << 20),
            s.trades,
            s.whales,
            s.price_changes,
            s.books,
            s.connections
        );
        let _ = writeln!(
            out,
            "kept up: {} (last trade handed to the queue {} after the window's end)",
            if self.kept_up { "yes" } else { "NO" },
            self.drain_s.map_or("never".into(), |d| format!("{d:.2} s"))
        );
        let _ = writeln!(
            out,
            "receive-to-queue latency over {} trades: p50 {} ms, p99 {} ms, max {} ms",
            self.latency.trades, self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms
        );
        let sq = &self.server_to_queue;
        let _ = writeln!(
            out,
            "server-to-queue latency (socket buffers included): p50 {} ms, p99 {} ms, max {} ms",
            sq.p50_ms, sq.p99_ms, sq.max_ms
        );
        let q = &self.queue;
        let _ = writeln!(
            out,
            "queue: {} messages ({:.1} KiB average, {} chunks of 64 KiB, {} Lambda batches) → {:.1} messages and {:.1} billed SQS requests per 1,000 trades (a send and a receive per chunk, a delete per 10 messages of a batch)",
            q.messages,
            if q.messages == 0 { 0.0 } else { q.bytes as f64 / q.messages as f64 / 1024.0 },
            q.chunks,
            q.poller_batches,
            q.messages_per_1000_trades,
            q.requests_per_1000_trades
        );
        let m = &self.memory;
        let _ = writeln!(
            out,
            "memory: peak RSS {:.1} MiB (VmHWM); sampled VmRSS max {:.1} MiB, last {:.1} MiB; the feed remembered {:.1} MiB of trade keys{}",
            mib(m.peak_rss_kib),
            mib(m.sampled_max_rss_kib),
            mib(m.last_rss_kib),
            mib(m.remembered_kib),
            if self.in_process {
                " (the server's included)"
            } else {
                ""
            }
        );
        let fd = &self.feed;
        let _ = writeln!(
            out,
            "feed: {} frames ({} one-pass), {} events, {} trades, {} duplicates, {} whales, {} shards, {} reconnects, {} backfills ({} failed), {} tape objects; backpressure: {} consumer waits, {} shard waits ({} ms)",
            fd.frames,
            fd.fast_frames,
            fd.events,
            fd.trades_ws,
            fd.duplicates,
            fd.whales,
            fd.shards,
            fd.reconnects,
            fd.backfills,
            fd.backfill_failures,
            fd.tape_objects,
            fd.consumer_waits,
            fd.shard_waits,
            fd.shard_wait_ms
        );
        let st = &self.stored;
        let _ = writeln!(
            out,
            "stored: {} trade rows in {} files ({} once, {} missing, {} duplicates, {} unknown); {} whale events; raw_ws {} frames ({:.1} MiB) in {} objects",
            st.trades.rows,
            st.trade_files,
            st.trades.once,
            st.trades.missing,
            st.trades.duplicates,
            st.trades.unknown,
            st.whale_events,
            st.tape_frames,
            st.tape_frame_bytes as f64 / f64::from(1 << 20),
            st.tape_objects
        );
        if self.failures.is_empty() {
            let _ = writeln!(out, "accounting: passed");
        } else {
            for f in &self.failures {
                let _ = writeln!(out, "accounting FAILED: {f}");
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The bench.

/// `polytape bench ingest`: runs the bench, prints the summary (or `--json`), and fails when
/// the accounting check does.
pub async fn ingest(opts: &IngestOptions, json: bool) -> anyhow::Result<()> {
    let report = run_ingest(opts).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
    }
    if !report.failures.is_empty() {
        bail!("accounting check failed: {}", report.failures.join("; "));
    }
    Ok(())
}

/// Runs the bench in a temporary data directory (removed after).
pub async fn run_ingest(opts: &IngestOptions) -> anyhow::Result<IngestReport> {
    opts.check()?;
    run_with(opts, None).await
}

static RUNS: AtomicU64 = AtomicU64::new(0);

async fn run_with(opts: &IngestOptions, drop_message: Option<u64>) -> anyhow::Result<IngestReport> {
    let dir = std::env::temp_dir().join(format!(
        "polytape-bench-ingest-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let result = run_in(opts, &dir, drop_message).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    opts: &IngestOptions,
    dir: &std::path::Path,
    drop_message: Option<u64>,
) -> anyhow::Result<IngestReport> {
    let store = LocalStore::open(dir)
        .with_context(|| format!("opening the data directory {}", dir.display()))?;
    // The markets, six hours from their end (T2): what the feed follows.
    let now = chrono::Utc::now();
    let markets: Vec<_> = (0..opts.markets)
        .map(|n| {
            let (cid, [yes, no]) = market_ids(n);
            let mut m =
                polytape_store::contract::market(n as u32, Some(polytape_core::Tier::T2), true);
            m.condition_id = cid;
            m.yes_token_id = yes;
            m.no_token_id = no;
            m.end_date = now + chrono::TimeDelta::hours(6);
            m.first_seen = now;
            m
        })
        .collect();
    for chunk in markets.chunks(500) {
        store.write_markets(chunk).await?;
    }

    let cfg = ServerConfig {
        markets: opts.markets,
        rate: opts.rate,
        seconds: opts.seconds,
        whale_every: opts.whale_every,
        trade_share: opts.trade_share,
    };
    let (mut server, mut events) = Server::start(&cfg, opts.in_process)?;
    let addr = match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
        Ok(Some(ServerEvent::Listening(a))) => a,
        other => bail!("the bench server did not start: {other:?}"),
    };
    let base = format!("http://{addr}");
    let endpoints = Endpoints {
        gamma: format!("{base}/gamma"),
        clob: format!("{base}/clob"),
        data: format!("{base}/data"),
        ws: format!("ws://{addr}/ws/market"),
    };
    let feed_config = SupervisorConfig::new(endpoints.ws.clone());
    let client = PolymarketClient::new(ClientConfig {
        endpoints,
        ..ClientConfig::default()
    })?;

    let status = FeedStatus::default();
    let sampler = RssSampler::start(status.clone());
    let sink = Arc::new(Measured {
        inner: LiveEvents::default().sink(StoreSink(store.clone())),
        stats: Mutex::new(QueueStats::new()),
        drop_message,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let feed = {
        let (store, sink, status) = (store.clone(), sink.clone(), status.clone());
        let tape_spool = dir.join(".spool").join("tape");
        tokio::spawn(async move {
            run_feed(
                store,
                &*sink,
                client,
                feed_config,
                stop_rx,
                status,
                FeedFiles {
                    tape_spool,
                    frames_out: None,
                },
            )
            .await
        })
    };

    // The window: the server streams, then reports what it sent.
    let window_wait = Duration::from_secs(opts.seconds + 90);
    let window = loop {
        match tokio::time::timeout(window_wait, events.recv()).await {
            Ok(Some(ServerEvent::Window(c))) => break c,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => {
                let _ = stop_tx.send(true);
                let _ = feed.await;
                bail!("the bench server never finished its window")
            }
        }
    };
    let window_end = Instant::now();
    // Then every trade to the queue (or a generous time for it to get there).
    let drain_limit = Duration::from_secs(60 + 2 * opts.seconds);
    let drained = loop {
        let (trades, last_at) = {
            let s = sink.stats.lock().unwrap_or_else(|e| e.into_inner());
            (s.trades, s.last_at)
        };
        if trades >= window.trades {
            break last_at.map(|t| t.saturating_duration_since(window_end).as_secs_f64());
        }
        if window_end.elapsed() >= drain_limit {
            tracing::warn!(
                handed = trades,
                sent = window.trades,
                "bench: not every trade reached the queue; stopping the feed"
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let _ = stop_tx.send(true);
    let counts = feed.await.context("the feed task")?;
    let (hwm, _) = crate::bench::memory_kib();
    let samples = sampler.finish();

    server.stop();
    let server_counts = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Some(ServerEvent::Final(c))) => break c,
            Ok(Some(_)) => continue,
            _ => {
                tracing::warn!("bench: no final counts from the server; using the window's");
                break window.clone();
            }
        }
    };
    drop(server);

    let stored = read_back(&store, server_counts.trades).await?;
    let stats = sink.stats.lock().unwrap_or_else(|e| e.into_inner());
    let window_s = server_counts.window_s.max(1e-9);
    let events_per_s = server_counts.live_events as f64 / window_s;
    let mut report = IngestReport {
        seconds: opts.seconds,
        rate: opts.rate,
        markets: opts.markets,
        whale_every: opts.whale_every,
        trade_share: opts.trade_share,
        in_process: opts.in_process,
        events_per_s,
        rate_achieved: opts.rate.map(|r| events_per_s / r as f64),
        trades_per_s: server_counts.trades as f64 / window_s,
        drain_s: drained,
        kept_up: drained.is_some_and(|d| d <= 5.0) && stats.trades >= server_counts.trades,
        latency: LatencyReport::of(&stats.latency),
        server_to_queue: LatencyReport::of(&stats.server_latency),
        queue: QueueReport::of(&stats),
        memory: MemoryReport {
            peak_rss_kib: hwm,
            sampled_max_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            last_rss_kib: samples.last().map_or(0, |s| s.rss_kib),
            remembered_kib: counts.remembered_bytes / 1024,
            samples,
        },
        feed: FeedReport::of(&counts),
        server: server_counts,
        stored,
        failures: Vec::new(),
    };
    report.failures = report.failures();
    Ok(report)
}

/// Reads the data directory back with the store's decoders: the trades by number, the whale
/// events, the tape's frame records.
async fn read_back(store: &LocalStore, trades_sent: u64) -> anyhow::Result<Stored> {
    let mut out = Stored {
        trades: TradeTally::new(trades_sent),
        ..Stored::default()
    };
    let listed = store.list_objects(&format!("{}/", keys::TRADES)).await?;
    for key in keys::visible(&listed) {
        let Some(bytes) = store.get_object(key).await? else {
            continue;
        };
        out.trade_files += 1;
        for t in parquet::decode_trades(&bytes)? {
            out.trades.add(t.transaction_hash.as_deref());
        }
    }
    out.trades.finish();
    let listed = store
        .list_objects(&format!("{}/", keys::WHALE_EVENTS))
        .await?;
    for key in keys::visible(&listed) {
        if let Some(bytes) = store.get_object(key).await? {
            out.whale_events += parquet::json::row_count(&bytes)?;
        }
    }
    let listed = store.list_objects(&format!("{}/", keys::RAW_WS)).await?;
    for key in keys::visible(&listed) {
        let Some(bytes) = store.get_object(key).await? else {
            continue;
        };
        out.tape_objects += 1;
        for r in parquet::decode_tape(&bytes)? {
            if r.kind == TapeKind::Frame {
                out.tape_frames += u64::from(r.part == 0);
                out.tape_frame_bytes += r.text.len() as u64;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> IngestOptions {
        IngestOptions {
            seconds: 2,
            rate: Some(1_500),
            markets: 20,
            whale_every: 10,
            trade_share: 0.1,
            in_process: true,
        }
    }

    /// Given messages handed over at various times and sizes, then the Lambda batches close
    /// at 10,000 messages, at 300 s after their first, or before passing 6 MB, and each is
    /// deleted 10 messages a request.
    #[test]
    fn poller_batches_close_at_ten_thousand_messages_five_minutes_or_six_mb() {
        let mut p = PollerBatches::default();
        for i in 0..25_000 {
            p.add(i, 100);
        }
        assert_eq!(p.batches(), 3, "10,000 + 10,000 + 5,000");
        assert_eq!(p.deletes(), 2_500);
        let mut p = PollerBatches::default();
        for i in 0..4 {
            p.add(i * 200_000, 1_000);
        }
        assert_eq!(p.batches(), 2, "0 s and 200 s; 400 s and 600 s");
        let mut p = PollerBatches::default();
        for i in 0..75 {
            p.add(i * 4_050, 17_500);
        }
        // A message every 4.05 s: 75 in one 300 s window, deleted in 8 requests.
        assert_eq!((p.batches(), p.deletes()), (1, 8));
        let mut p = PollerBatches::default();
        for i in 0..30 {
            p.add(i, 250 * 1024);
        }
        // 24 messages of 250 KiB fit in 6 MiB: 24 + 6.
        assert_eq!((p.batches(), p.deletes()), (2, 3 + 1));
        let mut p = PollerBatches::default();
        p.add(0, 4 * 1024 * 1024);
        p.add(1, 4 * 1024 * 1024);
        assert_eq!(p.batches(), 2, "two of 4 MiB do not share a batch");
        assert_eq!(
            (sqs_chunks(0), sqs_chunks(64 * 1024), sqs_chunks(250 * 1024)),
            (1, 1, 4)
        );
    }

    /// Given a message of two trades and a whale, then both trades' latencies are read from
    /// their own fields and the message counts as its 64 KiB chunks and one batch.
    #[test]
    fn a_message_is_counted_and_its_trades_timed() {
        let mut q = QueueStats::new();
        let body = concat!(
            "{\"run\":1,\"seq\":1,\"records\":3}\n",
            "{\"trade\":{\"trade_ts\":\"2026-12-01T00:00:00.000Z\",\"received_at\":\"2026-12-01T00:00:00.250Z\"}}\n",
            "{\"whale\":{\"trade_ts\":\"2026-12-01T00:00:00.000Z\"}}\n",
            "{\"trade\":{\"trade_ts\":\"2026-12-01T00:00:01.000Z\",\"received_at\":\"2026-12-01T00:00:01.500Z\"}}"
        );
        let handed = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:04Z")
            .unwrap()
            .timestamp_millis();
        q.add(body, handed);
        assert_eq!((q.messages, q.trades, q.whales, q.chunks), (1, 2, 1, 1));
        assert_eq!((q.latency.n, q.latency.max_ms), (2, 3_750));
        assert_eq!((q.server_latency.n, q.server_latency.max_ms), (2, 4_000));
        assert_eq!(q.latency.quantile(0.5), 2_500);
        let r = QueueReport::of(&q);
        assert_eq!((r.poller_batches, r.billed_requests), (1, 3));
        assert_eq!(r.requests_per_1000_trades, 1_500.0);
    }

    #[test]
    fn options_without_markets_or_window_are_refused() {
        let ok = small();
        assert!(ok.check().is_ok());
        for bad in [
            IngestOptions {
                markets: 0,
                ..small()
            },
            IngestOptions {
                seconds: 0,
                ..small()
            },
            IngestOptions {
                markets: MAX_MARKETS + 1,
                ..small()
            },
            IngestOptions {
                trade_share: 0.0,
                ..small()
            },
            IngestOptions {
                trade_share: 1.5,
                ..small()
            },
            IngestOptions {
                trade_share: f64::NAN,
                ..small()
            },
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(
                e.contains("--markets") || e.contains("--seconds") || e.contains("--trade-share"),
                "{e}"
            );
        }
    }

    /// Given a trade share, then the generator makes that share of its events trades, spread
    /// evenly: 0.1 every tenth event, Polymarket's 0.003 three in a thousand.
    #[test]
    fn the_generator_makes_its_share_of_trades() {
        for (share, n, want) in [
            (0.1, 1_000u64, 100u64),
            (0.003, 100_000, 300),
            (1.0, 50, 50),
        ] {
            let shared = Shared::new(ServerConfig {
                markets: 4,
                rate: Some(1_000),
                seconds: 1,
                whale_every: 0,
                trade_share: share,
            });
            let mut g = Generator {
                tokens: Vec::new(),
                rng: 1,
                n: 0,
                trades: 0,
                share_ppm: share_ppm(share),
            };
            let (cid, tokens) = market_ids(0);
            for t in &tokens {
                assert!(g.add(&shared, t), "{cid}");
            }
            let mut l = Local::default();
            let mut out = String::new();
            for _ in 0..n {
                out.clear();
                g.event(&shared, &mut out, 0, &mut l);
            }
            assert_eq!(l.trades, want, "share {share}");
            assert_eq!(l.trades + l.price_changes + l.books, n);
            if share == 0.1 {
                assert_eq!(l.books, 4, "one in 250: {l:?}");
            }
        }
    }

    /// Given a message the queue acknowledges but never stores, then the check names the
    /// trades missing and the bench would exit non-zero.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_lost_on_the_way_fails_the_check() {
        let r = run_with(&small(), Some(1)).await.unwrap();
        assert!(r.stored.trades.missing > 0, "{}", r.summary());
        assert!(
            r.failures.iter().any(|f| f.starts_with("trades:")),
            "{:?}",
            r.failures
        );
    }

    /// Given the stored numbers 0, 1, 2, 2, 4 and one foreign hash of five trades sent, then
    /// 3 is missing, 2 is a duplicate and the foreign row unknown.
    #[test]
    fn the_tally_finds_a_missing_a_duplicate_and_a_foreign_trade() {
        let mut t = TradeTally::new(5);
        for n in [0, 1, 2, 2, 4] {
            t.add(Some(&tx_hash(n)));
        }
        t.add(Some("0xfeed"));
        t.add(None);
        t.finish();
        assert_eq!(
            (t.rows, t.once, t.missing, t.duplicates, t.unknown),
            (7, 3, 1, 1, 2)
        );
        let report = IngestReport {
            server: ServerCounts {
                trades: 5,
                ..ServerCounts::default()
            },
            stored: Stored {
                trades: t,
                ..Stored::default()
            },
            ..IngestReport::default()
        };
        assert!(report.failures()[0].starts_with("trades: 5 sent, 3 stored exactly once"));
    }

    #[test]
    fn transaction_hashes_number_the_trades() {
        for n in [0, 1, 255, 1 << 40] {
            assert_eq!(tx_number(&tx_hash(n)), Some(n));
        }
        assert_eq!(tx_number("nope"), None);
    }

    #[test]
    fn latency_quantiles_in_whole_ms() {
        let mut l = Latency::new();
        for ms in 1..=100 {
            l.add(ms);
        }
        l.add(200_000);
        assert_eq!(
            (l.quantile(0.5), l.quantile(0.99), l.max_ms),
            (51, 100, 200_000)
        );
    }

    #[test]
    fn rate_is_a_number_or_max() {
        assert_eq!(parse_rate("max"), Ok(Rate(None)));
        assert_eq!(parse_rate("20000"), Ok(Rate(Some(20_000))));
        assert_eq!(parse_rate("20_000"), Ok(Rate(Some(20_000))));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
