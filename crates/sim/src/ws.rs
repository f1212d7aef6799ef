//! The market WebSocket (`/ws/market`), following Polymarket's protocol and its traps:
//! subscribe first (`{"assets_ids":[…],"type":"market"}`; a `PING` or garbage first → close 1008
//! "invalid subscription payload"), text `PING` → `PONG`, the initial dump as ONE array of `book`
//! events (skipped beyond 500 assets, as the real server silently does), then live events every
//! ~500 ms: `last_trade_price` for the trades of the stream in `data` (the same trades the Data API
//! serves), and now and then a `price_change` (v2, both tokens of a market in one message) or a
//! fresh `book` when the change is large. Frames are sometimes one object, sometimes an array.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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

use crate::book::{served_book, write_ws_book, BookOut};
use crate::clob::served_record;
use crate::data::trades_between;
use crate::rng::{key_of, mix};
use crate::server::{fault_response, fault_status, App, Pending};
use crate::world::World;
use crate::{Endpoint, FaultKind, RequestRecord};

/// Assets per connection beyond which the initial dump is silently skipped.
const MAX_DUMP_ASSETS: usize = 500;
/// Live events are computed on this period.
const TICK: Duration = Duration::from_millis(500);
/// Each asset is checked for book changes every this many ticks (on its own phase).
const BOOK_EVERY_TICKS: u64 = 6;
/// A book change with more level changes than this is sent as a fresh `book`.
const MAX_PRICE_CHANGES: usize = 8;

/// `GET /ws/market`: logs the connection, applies a queued `Ws` fault, upgrades.
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
            ws.on_upgrade(move |socket| session(app, socket, truncate))
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

struct Session {
    app: Arc<App>,
    assets: BTreeSet<String>,
    /// Last book sent per asset (the base for `price_change` diffs).
    last_books: HashMap<String, BookOut>,
    last_ms: i64,
    tick: u64,
}

/// Resolves once shutdown is signalled (the watch guard never lives across an await).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn session(app: Arc<App>, mut socket: WebSocket, truncate: bool) {
    let mut shutdown = app.shutdown_rx();
    let first = loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => break m,
                _ => return,
            },
            _ = stopped(&mut shutdown) => {
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
        assets: BTreeSet::new(),
        last_books: HashMap::new(),
        tick: 0,
    };
    let new_assets: Vec<String> = sub
        .assets
        .iter()
        .filter(|a| st.assets.insert((*a).clone()))
        .cloned()
        .collect();
    if sub.initial_dump && sub.assets.len() <= MAX_DUMP_ASSETS {
        let frame = st.dump(&new_assets, !truncate);
        if truncate {
            // Half a frame, then the connection drops without a close handshake.
            let cut = frame.len() / 2;
            let _ = socket
                .send(Message::Text(frame[..cut].to_string().into()))
                .await;
            return;
        }
        if socket.send(Message::Text(frame.into())).await.is_err() {
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
            msg = socket.recv() => match msg {
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
                            let added: Vec<String> = assets.into_iter().filter(|a| st.assets.insert(a.clone())).collect();
                            if !added.is_empty() {
                                let frame = st.dump(&added, true);
                                if socket.send(Message::Text(frame.into())).await.is_err() {
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
            },
            _ = interval.tick() => {
                for frame in st.live_frames() {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        return;
                    }
                }
            }
            _ = stopped(&mut shutdown) => {
                close(&mut socket, 1001, "server shutting down").await;
                return;
            }
        }
    }
}

impl Session {
    /// One text frame: a JSON array of `book` events for the known assets among `assets`.
    fn dump(&mut self, assets: &[String], record: bool) -> String {
        let app = self.app.clone();
        let now = app.now();
        let guard = app.world_at(now);
        let world: &World = &guard;
        let step = now.timestamp();
        let ts_ms = now.timestamp_millis();
        let corrupt = self.app.corrupt_books();
        let mut frame = String::from("[");
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
            if !pending.books.is_empty() {
                frame.push(',');
            }
            write_ws_book(&mut frame, &b, ts_ms);
            pending.books.push(served_record(&b, now));
            self.last_books.insert(a.clone(), b);
        }
        frame.push(']');
        if record {
            self.app.count_ws_items(pending.books.len() as u64);
            self.app.commit(pending);
        }
        frame
    }

    /// The frames of one tick: trades since the last tick, book changes of the assets due.
    fn live_frames(&mut self) -> Vec<String> {
        let app = self.app.clone();
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

        let mut trades: Vec<(i64, String)> = Vec::new();
        let mut updates: Vec<String> = Vec::new();
        let mut pending = Pending::default();
        for (&idx, outcomes) in &by_market {
            let m = &world.markets[idx];
            for t in trades_between(world, m, self.last_ms, now_ms) {
                let Some((_, asset)) = outcomes.iter().find(|(o, _)| *o == t.outcome) else {
                    continue;
                };
                let mut ev = String::with_capacity(320);
                let _ = write!(
                    ev,
                    "{{\"asset_id\":\"{asset}\",\"event_type\":\"last_trade_price\",\"fee_rate_bps\":\"0\",\"market\":\"{}\",\"price\":\"{}\",\"side\":\"{}\",\"size\":\"{}\",\"timestamp\":\"{}\",\"transaction_hash\":\"{}\"}}",
                    m.condition_id,
                    t.price,
                    if t.buy { "BUY" } else { "SELL" },
                    t.size,
                    t.ms,
                    t.tx
                );
                trades.push((t.ms, ev));
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
                    updates.push(ev);
                    pending.books.push(served_record(&b, now));
                }
                self.last_books.insert(asset.clone(), b);
            }
            if !changes.is_empty() {
                updates.push(format!(
                    "{{\"event_type\":\"price_change\",\"market\":\"{}\",\"timestamp\":\"{now_ms}\",\"price_changes\":[{}]}}",
                    m.condition_id,
                    changes.join(",")
                ));
            }
        }
        trades.sort_by_key(|(ms, _)| *ms);
        let mut events: Vec<String> = trades.into_iter().map(|(_, e)| e).collect();
        events.extend(updates);

        self.last_ms = now_ms;
        self.tick += 1;
        self.app.count_ws_items(events.len() as u64);
        self.app.commit(pending);
        frames(world.seed, tick, events)
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
fn frames(seed: u64, tick: u64, events: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let r = mix(&[seed, 0xf4a3e, tick, i as u64]);
        let k = (1 + (r % 3) as usize).min(events.len() - i);
        let chunk = &events[i..i + k];
        if k == 1 && !(r >> 8).is_multiple_of(4) {
            out.push(chunk[0].clone());
        } else {
            out.push(format!("[{}]", chunk.join(",")));
        }
        i += k;
    }
    out
}
