//! The market WebSocket (`/ws/market`), following Polymarket's protocol and its traps:
//! subscribe first (`{"assets_ids":[…],"type":"market"}`; a `PING` or garbage first → close 1008
//! "invalid subscription payload"), text `PING` → `PONG`, the initial dump as ONE array of `book`
//! events, then live events every ~500 ms: `last_trade_price` for the trades of the stream in
//! `data` (the same trades the Data API serves), and now and then a `price_change` (v2, both
//! tokens of a market in one message) or a fresh `book` when the change is large. Frames are
//! sometimes one object, sometimes an array.
//!
//! A connection serves its first 500 distinct assets; any more are silently ignored (no book, no
//! event). Nothing received for `SimConfig::ws_idle_timeout` → the server closes it (1001 "idle
//! timeout"). Per trade, drawn from the seed: the event may lack `size`, or be sent twice. The
//! handle's knobs drop connections without a close frame, stall them (PONG only), and inject
//! malformed frames or unknown events; nothing but a stall loses an event.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::book::{served_book, write_ws_book, BookOut};
use crate::clob::served_record;
use crate::data::{trades_between, truth_trade};
use crate::rng::{key_of, mix, unit};
use crate::server::{fault_response, fault_status, App, Pending};
use crate::world::World;
use crate::{Endpoint, FaultKind, RequestRecord, SimConfig, TruthTrade, WsTrade};

/// Distinct assets a connection serves; the rest are silently ignored.
const MAX_ASSETS: usize = 500;
/// Live events are computed on this period.
const TICK: Duration = Duration::from_millis(500);
/// Each asset is checked for book changes every this many ticks (on its own phase).
const BOOK_EVERY_TICKS: u64 = 6;
/// A book change with more level changes than this is sent as a fresh `book`.
const MAX_PRICE_CHANGES: usize = 96;
/// Level changes per `price_change` event (Polymarket sends one per order action, with the
/// levels it moved: a few at most).
const CHANGES_PER_EVENT: usize = 4;
/// Draws per trade event (size left out, sent twice).
const TRADE_LANE: u64 = 0x7ade_e7e1;
/// The extra field of a known event in an unknown-events frame.
const UNKNOWN_FIELD: &str = "\"unknown_field\":{\"nested\":[1,\"two\"],\"flag\":true}";

/// The market WebSocket's knobs ([`SimConfig`]).
pub(crate) struct WsConfig {
    /// Close after this long without a frame from the client; `None`: never.
    pub idle: Option<Duration>,
    /// Fraction of trade events without `size`.
    pub missing_size: f64,
    /// Fraction of trade events sent twice.
    pub duplicates: f64,
}

impl WsConfig {
    pub fn new(cfg: &SimConfig) -> WsConfig {
        let fraction = |f: f64| {
            if f.is_finite() {
                f.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        WsConfig {
            idle: (!cfg.ws_idle_timeout.is_zero()).then_some(cfg.ws_idle_timeout),
            missing_size: fraction(cfg.ws_missing_size),
            duplicates: fraction(cfg.ws_duplicate_trades),
        }
    }
}

/// `GET /ws/market`: logs the connection, applies a queued `Ws` fault, upgrades. The connection's
/// id and drop signal are taken before the upgrade is answered, so a knob used as soon as the
/// client is connected applies to it.
pub(crate) async fn upgrade(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let at = app.now();
    let fault = app.take_fault(Endpoint::Ws);
    let latency = app.latency();
    let uri_text = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    let mut rec = RequestRecord {
        endpoint: Endpoint::Ws,
        method: method.to_string(),
        uri: uri_text,
        status: 0,
        items: 0,
        at,
        body_len: 0,
    };
    let response = match (ws, fault) {
        (_, Some(kind @ (FaultKind::TooManyRequests { .. } | FaultKind::ServerError(_)))) => {
            rec.status = fault_status(kind);
            app.record(rec, true);
            fault_response(kind)
        }
        (Err(rejection), _) => {
            let resp = rejection.into_response();
            rec.status = resp.status().as_u16();
            app.record(rec, false);
            resp
        }
        (Ok(ws), fault) => {
            let truncate = fault.is_some();
            rec.status = 101;
            app.record(rec, truncate);
            let app = app.clone();
            let conn = Conn {
                id: app.ws_connection_id(),
                drops: app.ws_drop_rx(),
            };
            ws.on_upgrade(move |socket| session(app, socket, truncate, conn))
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

/// An accepted subscription frame.
struct Subscription {
    assets: Vec<String>,
    initial_dump: bool,
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// The first frame must be `{"assets_ids":[…],"type":"market"}` (`"MARKET"` accepted).
fn parse_subscription(text: &str) -> Option<Subscription> {
    let v: Value = serde_json::from_str(text).ok()?;
    let kind = v.get("type")?.as_str()?;
    if !kind.eq_ignore_ascii_case("market") {
        return None;
    }
    let assets = string_list(v.get("assets_ids")?)?;
    let initial_dump = v
        .get("initial_dump")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Some(Subscription {
        assets,
        initial_dump,
    })
}

enum Operation {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// `{"operation":"subscribe"|"unsubscribe","assets_ids":[…]}` on an open socket.
fn parse_operation(text: &str) -> Option<Operation> {
    let v: Value = serde_json::from_str(text).ok()?;
    let assets = string_list(v.get("assets_ids")?)?;
    match v.get("operation")?.as_str()? {
        op if op.eq_ignore_ascii_case("subscribe") => Some(Operation::Subscribe(assets)),
        op if op.eq_ignore_ascii_case("unsubscribe") => Some(Operation::Unsubscribe(assets)),
        _ => None,
    }
}

/// A connection's identity for the knobs.
struct Conn {
    /// From 1, in order of upgrade.
    id: u64,
    /// Changes when every open connection must drop.
    drops: watch::Receiver<u64>,
}

/// What a trade event reports, for the truth.
struct SentTrade {
    trade: TruthTrade,
    size_sent: bool,
    duplicated: bool,
}

/// One event ready to send.
struct Event {
    text: String,
    /// A trade event (its first copy).
    trade: Option<Box<SentTrade>>,
    /// The second copy of a trade event.
    copy: bool,
}

impl Event {
    fn plain(text: String) -> Event {
        Event {
            text,
            trade: None,
            copy: false,
        }
    }
}

/// The events of one text frame: a bare object or an array.
struct Frame {
    events: Vec<Event>,
    array: bool,
}

impl Frame {
    /// The frame's text; with `unknown` (sim ms) an array with a `mystery_event` in the middle
    /// and [`UNKNOWN_FIELD`] first in every real event.
    fn render(&self, unknown: Option<i64>) -> String {
        let Some(ms) = unknown else {
            return match self.events.as_slice() {
                [one] if !self.array => one.text.clone(),
                events => {
                    let texts: Vec<&str> = events.iter().map(|e| e.text.as_str()).collect();
                    format!("[{}]", texts.join(","))
                }
            };
        };
        let mut parts: Vec<String> = self
            .events
            .iter()
            .map(|e| match e.text.strip_prefix('{') {
                Some(rest) => format!("{{{UNKNOWN_FIELD},{rest}"),
                None => e.text.clone(),
            })
            .collect();
        parts.insert(
            parts.len().div_ceil(2),
            format!(
                "{{\"event_type\":\"mystery_event\",\"timestamp\":\"{ms}\",\"payload\":{{\"level\":3,\"note\":\"an event type no client knows\"}}}}"
            ),
        );
        format!("[{}]", parts.join(","))
    }
}

struct Session {
    app: Arc<App>,
    conn: u64,
    /// The served assets: the connection's first [`MAX_ASSETS`] (unsubscribing frees a place).
    assets: BTreeSet<String>,
    /// Last book computed per asset (the base for `price_change` diffs).
    last_books: HashMap<String, BookOut>,
    last_ms: i64,
    tick: u64,
}

/// Resolves once shutdown is signalled (the watch guard never lives across an await).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Resolves when every open connection must drop (never once the simulator is gone).
async fn dropped(rx: &mut watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves at the idle deadline (never without one).
async fn idle(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Sends `frames` (each preceded by its first half, not JSON, when a malformed frame is queued;
/// live ones with unknown events when queued) and records what reached the socket. False once
/// the socket is gone.
async fn send_frames(
    socket: &mut WebSocket,
    app: &App,
    conn: u64,
    frames: Vec<Frame>,
    live: bool,
) -> bool {
    for frame in frames {
        let unknown = live && app.take_ws_unknown();
        let now = app.now();
        let text = frame.render(unknown.then(|| now.timestamp_millis()));
        if app.take_ws_malformed() {
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            if socket
                .send(Message::Text(text[..cut].to_string().into()))
                .await
                .is_err()
            {
                return false;
            }
        }
        if socket.send(Message::Text(text.into())).await.is_err() {
            return false;
        }
        let events = frame.events.len() as u64;
        let copies = frame.events.iter().filter(|e| e.copy).count() as u64;
        let trades: Vec<WsTrade> = frame
            .events
            .into_iter()
            .filter_map(|e| e.trade)
            .map(|t| WsTrade {
                connection: conn,
                trade: t.trade,
                size_sent: t.size_sent,
                duplicated: t.duplicated,
                sent_at: now,
            })
            .collect();
        let sent = trades.len() as u64;
        let without_size = trades.iter().filter(|t| !t.size_sent).count() as u64;
        app.ws_sent(events, trades, |c| {
            c.trades_sent += sent;
            c.duplicate_trades += copies;
            c.trades_without_size += without_size;
            if unknown {
                c.unknown_events += 1;
                c.events_with_unknown_fields += events;
            }
        });
    }
    true
}

/// Sends `frames` and records what they served, or (stalled) counts them as withheld. False once
/// the socket is gone.
async fn deliver(
    socket: &mut WebSocket,
    st: &Session,
    frames: Vec<Frame>,
    pending: Pending,
    live: bool,
) -> bool {
    if st.app.ws_stalled(st.conn) {
        let n: usize = frames.iter().map(|f| f.events.len()).sum();
        st.app.count_ws(|c| c.events_withheld += n as u64);
        return true;
    }
    if !send_frames(socket, &st.app, st.conn, frames, live).await {
        return false;
    }
    st.app.commit(pending);
    true
}

async fn session(app: Arc<App>, mut socket: WebSocket, truncate: bool, conn: Conn) {
    let Conn { id, mut drops } = conn;
    let mut shutdown = app.shutdown_rx();
    let idle_for = app.ws_cfg().idle;
    let deadline = || idle_for.map(|d| Instant::now() + d);
    let mut idle_at = deadline();
    let first = loop {
        tokio::select! {
            msg = socket.recv() => {
                idle_at = deadline();
                match msg {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(m)) => break m,
                    _ => return,
                }
            }
            () = idle(idle_at) => {
                app.count_ws(|c| c.idle_closed += 1);
                close(&mut socket, 1001, "idle timeout").await;
                return;
            }
            () = dropped(&mut drops) => {
                // Dropping the socket closes the TCP connection without a close frame.
                app.count_ws(|c| c.connections_dropped += 1);
                return;
            }
            () = stopped(&mut shutdown) => {
                close(&mut socket, 1001, "server shutting down").await;
                return;
            }
        }
    };
    let sub = match &first {
        Message::Text(t) => parse_subscription(t.as_str()),
        _ => None,
    };
    let Some(sub) = sub else {
        close(&mut socket, 1008, "invalid subscription payload").await;
        return;
    };

    let mut st = Session {
        last_ms: app.now().timestamp_millis(),
        app: app.clone(),
        conn: id,
        assets: BTreeSet::new(),
        last_books: HashMap::new(),
        tick: 0,
    };
    let new_assets = st.subscribe(sub.assets);
    if sub.initial_dump {
        let (frame, pending) = st.dump(&new_assets);
        if truncate {
            // Half a frame, then the connection drops without a close handshake.
            let text = frame.render(None);
            let cut = text.len() / 2;
            let _ = socket
                .send(Message::Text(text[..cut].to_string().into()))
                .await;
            return;
        }
        if !deliver(&mut socket, &st, vec![frame], pending, false).await {
            return;
        }
    } else if truncate {
        return;
    }

    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                idle_at = deadline();
                match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(Message::Text(t))) => {
                        let text = t.as_str().trim();
                        if text == "PING" {
                            if socket.send(Message::Text("PONG".into())).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        match parse_operation(text) {
                            Some(Operation::Subscribe(assets)) => {
                                let added = st.subscribe(assets);
                                if !added.is_empty() {
                                    let (frame, pending) = st.dump(&added);
                                    if !deliver(&mut socket, &st, vec![frame], pending, false).await {
                                        return;
                                    }
                                }
                            }
                            Some(Operation::Unsubscribe(assets)) => {
                                for a in assets {
                                    st.assets.remove(&a);
                                    st.last_books.remove(&a);
                                }
                            }
                            // Anything else is ignored, as the real server does.
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
            _ = interval.tick() => {
                let (frames, pending) = st.live_frames();
                if !deliver(&mut socket, &st, frames, pending, true).await {
                    return;
                }
            }
            () = idle(idle_at) => {
                app.count_ws(|c| c.idle_closed += 1);
                close(&mut socket, 1001, "idle timeout").await;
                return;
            }
            () = dropped(&mut drops) => {
                app.count_ws(|c| c.connections_dropped += 1);
                return;
            }
            () = stopped(&mut shutdown) => {
                close(&mut socket, 1001, "server shutting down").await;
                return;
            }
        }
    }
}

impl Session {
    /// Adds `assets` up to the connection's [`MAX_ASSETS`]; returns those newly served (the rest
    /// are silently ignored, counted).
    fn subscribe(&mut self, assets: Vec<String>) -> Vec<String> {
        let mut added = Vec::new();
        let mut ignored: HashSet<String> = HashSet::new();
        for a in assets {
            if self.assets.contains(&a) {
                continue;
            }
            if self.assets.len() >= MAX_ASSETS {
                ignored.insert(a);
                continue;
            }
            self.assets.insert(a.clone());
            added.push(a);
        }
        if !ignored.is_empty() {
            self.app
                .count_ws(|c| c.assets_ignored += ignored.len() as u64);
        }
        added
    }

    /// One frame: a JSON array of `book` events for the known assets among `assets`.
    fn dump(&mut self, assets: &[String]) -> (Frame, Pending) {
        let app = self.app.clone();
        let now = app.now();
        let guard = app.world_at(now);
        let world: &World = &guard;
        let step = now.timestamp();
        let ts_ms = now.timestamp_millis();
        let corrupt = self.app.corrupt_books();
        let mut events = Vec::new();
        let mut pending = Pending::default();
        for a in assets {
            let Some(&(idx, outcome)) = world.books.get(a) else {
                continue;
            };
            let b = served_book(
                world,
                &world.markets[idx],
                outcome,
                step,
                corrupt.get(a).copied(),
            );
            let mut text = String::new();
            write_ws_book(&mut text, &b, ts_ms);
            events.push(Event::plain(text));
            pending.books.push(served_record(&b, now));
            self.last_books.insert(a.clone(), b);
        }
        (
            Frame {
                events,
                array: true,
            },
            pending,
        )
    }

    /// The frames of one tick: trades since the last tick, book changes of the assets due.
    fn live_frames(&mut self) -> (Vec<Frame>, Pending) {
        let app = self.app.clone();
        let cfg = app.ws_cfg();
        let now = app.now();
        let guard = app.world_at(now);
        let world: &World = &guard;
        let now_ms = now.timestamp_millis();
        let step = now.timestamp();
        let corrupt = self.app.corrupt_books();
        let tick = self.tick;

        let mut by_market: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
        for a in &self.assets {
            if let Some(&(idx, outcome)) = world.books.get(a) {
                by_market.entry(idx).or_default().push((outcome, a.clone()));
            }
        }

        let mut trades: Vec<(i64, Event, bool)> = Vec::new();
        let mut updates: Vec<Event> = Vec::new();
        let mut pending = Pending::default();
        for (&idx, outcomes) in &by_market {
            let m = &world.markets[idx];
            for t in trades_between(world, m, self.last_ms, now_ms) {
                let Some((_, asset)) = outcomes.iter().find(|(o, _)| *o == t.outcome) else {
                    continue;
                };
                // Drawn from the trade alone, so every connection sends it the same way.
                let r = mix(&[
                    world.seed,
                    TRADE_LANE,
                    key_of(&t.tx),
                    t.ms as u64,
                    u64::from(t.seq),
                ]);
                let size_sent = unit(mix(&[r, 1])) >= cfg.missing_size;
                let twice = unit(mix(&[r, 2])) < cfg.duplicates;
                let mut text = String::with_capacity(320);
                let _ = write!(
                    text,
                    "{{\"asset_id\":\"{asset}\",\"event_type\":\"last_trade_price\",\"fee_rate_bps\":\"0\",\"market\":\"{}\",\"price\":\"{}\",\"side\":\"{}\",",
                    m.condition_id,
                    t.price,
                    if t.buy { "BUY" } else { "SELL" },
                );
                if size_sent {
                    let _ = write!(text, "\"size\":\"{}\",", t.size);
                }
                let _ = write!(
                    text,
                    "\"timestamp\":\"{}\",\"transaction_hash\":\"{}\"}}",
                    t.ms, t.tx
                );
                let sent = SentTrade {
                    trade: truth_trade(m, &t),
                    size_sent,
                    duplicated: twice,
                };
                let ev = Event {
                    text,
                    trade: Some(Box::new(sent)),
                    copy: false,
                };
                trades.push((t.ms, ev, twice));
            }

            let mut changes: Vec<String> = Vec::new();
            for (outcome, asset) in outcomes {
                if !(key_of(asset).wrapping_add(tick)).is_multiple_of(BOOK_EVERY_TICKS) {
                    continue;
                }
                let Some(prev) = self.last_books.get(asset) else {
                    continue;
                };
                let b = served_book(world, m, *outcome, step, corrupt.get(asset).copied());
                if b.hash == prev.hash {
                    continue;
                }
                let diff = diff_levels(prev, &b);
                if diff.len() <= MAX_PRICE_CHANGES {
                    let best_bid = b.bids.last().map_or(String::new(), |l| l.0.to_string());
                    let best_ask = b.asks.last().map_or(String::new(), |l| l.0.to_string());
                    for (side, p, s) in diff {
                        changes.push(format!(
                            "{{\"asset_id\":\"{asset}\",\"price\":\"{p}\",\"size\":\"{s}\",\"side\":\"{side}\",\"hash\":\"{}\",\"best_bid\":\"{best_bid}\",\"best_ask\":\"{best_ask}\"}}",
                            b.hash
                        ));
                    }
                } else {
                    let mut ev = String::new();
                    write_ws_book(&mut ev, &b, now_ms);
                    updates.push(Event::plain(ev));
                    pending.books.push(served_record(&b, now));
                }
                self.last_books.insert(asset.clone(), b);
            }
            for chunk in changes.chunks(CHANGES_PER_EVENT) {
                updates.push(Event::plain(format!(
                    "{{\"event_type\":\"price_change\",\"market\":\"{}\",\"timestamp\":\"{now_ms}\",\"price_changes\":[{}]}}",
                    m.condition_id,
                    chunk.join(",")
                )));
            }
        }
        trades.sort_by_key(|(ms, _, _)| *ms);
        let mut events: Vec<Event> = Vec::with_capacity(trades.len() + updates.len());
        for (_, ev, twice) in trades {
            let copy = twice.then(|| Event {
                text: ev.text.clone(),
                trade: None,
                copy: true,
            });
            events.push(ev);
            events.extend(copy);
        }
        events.extend(updates);

        self.last_ms = now_ms;
        self.tick += 1;
        (frames(world.seed, tick, events), pending)
    }
}

/// Level changes from `old` to `new`: (side, price, new size), `"0"` for a removed level.
fn diff_levels(old: &BookOut, new: &BookOut) -> Vec<(&'static str, Decimal, Decimal)> {
    let mut out = Vec::new();
    for (side, o, n) in [
        ("BUY", &old.bids, &new.bids),
        ("SELL", &old.asks, &new.asks),
    ] {
        let before: HashMap<Decimal, Decimal> = o.iter().copied().collect();
        let after: HashMap<Decimal, Decimal> = n.iter().copied().collect();
        for &(p, s) in n {
            if before.get(&p) != Some(&s) {
                out.push((side, p, s));
            }
        }
        for &(p, _) in o {
            if !after.contains_key(&p) {
                out.push((side, p, Decimal::ZERO));
            }
        }
    }
    out
}

/// Packs events into frames of 1–3; a lone event is usually a bare object, sometimes `[obj]`.
fn frames(seed: u64, tick: u64, events: Vec<Event>) -> Vec<Frame> {
    let mut out = Vec::new();
    let total = events.len();
    let mut rest = events.into_iter();
    let mut i = 0;
    while i < total {
        let r = mix(&[seed, 0xf4a3e, tick, i as u64]);
        let k = (1 + (r % 3) as usize).min(total - i);
        let chunk: Vec<Event> = rest.by_ref().take(k).collect();
        let array = k > 1 || (r >> 8).is_multiple_of(4);
        out.push(Frame {
            events: chunk,
            array,
        });
        i += k;
    }
    out
}
