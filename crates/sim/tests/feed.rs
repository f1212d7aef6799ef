//! The market WebSocket's traps and fault knobs, and Data API trades consistent with the feed,
//! over real sockets: the 500-asset cap, idle close, trade events without `size` or sent twice,
//! abrupt drops, silent stalls, malformed frames, unknown events; the Data API's offset cap on a
//! busy market, `start`/`end` windows, maker rows, and a closed market's history.
//! (A `PING` before the subscribe → 1008: `tests/sim.rs`.)

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use polytape_sim::{
    start, MarketKind, SimConfig, SimHandle, TradeSide, Truth, TruthMarket, TruthTrade, WsTrade,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const NOW: &str = "2026-03-15T12:00:00Z";

fn cfg(seed: u64) -> SimConfig {
    let mut c = SimConfig::new(seed);
    c.now = NOW.parse().expect("valid date");
    c.book_levels = (5, 12);
    c
}

fn busy_cfg(seed: u64) -> SimConfig {
    let mut c = cfg(seed);
    c.busy_markets = 1;
    c
}

async fn sim(c: SimConfig) -> SimHandle {
    start(c, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn busy(t: &Truth) -> TruthMarket {
    let busy: Vec<&TruthMarket> = t.markets.iter().filter(|m| m.busy).collect();
    assert_eq!(busy.len(), 1, "one busy market");
    busy[0].clone()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(sim: &SimHandle) -> Ws {
    tokio_tungstenite::connect_async(sim.ws_url())
        .await
        .expect("ws connect")
        .0
}

async fn send(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

async fn subscribe(ws: &mut Ws, assets: &[String]) {
    send(
        ws,
        json!({"assets_ids": assets, "type": "market"}).to_string(),
    )
    .await;
}

/// What the client read next.
#[derive(Debug)]
enum Got {
    Text(String),
    /// A close frame.
    Closed(Option<CloseFrame>),
    /// The connection ended without a close frame (an error or the end of the stream).
    Gone(String),
    /// Nothing within the wait.
    Nothing,
}

async fn next(ws: &mut Ws, wait: Duration) -> Got {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return Got::Nothing,
            Ok(None) => return Got::Gone("end of stream".into()),
            Ok(Some(Err(e))) => return Got::Gone(e.to_string()),
            Ok(Some(Ok(Message::Text(t)))) => return Got::Text(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => return Got::Closed(f),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    match next(ws, Duration::from_secs(5)).await {
        Got::Text(t) => t,
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Every text frame within `d`.
async fn collect(ws: &mut Ws, d: Duration) -> Vec<String> {
    let until = Instant::now() + d;
    let mut out = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        match next(ws, left).await {
            Got::Text(t) => out.push(t),
            Got::Nothing => return out,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// Every text frame until `done` holds for the frames read so far; panics if that takes more
/// than 30 s (live frames come every ~500 ms, so a slow machine only delays them).
async fn collect_until(ws: &mut Ws, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while !done(&out) {
        let left = until.saturating_duration_since(Instant::now());
        match next(ws, left).await {
            Got::Text(t) => out.push(t),
            Got::Nothing => panic!("not done within 30 s, after {} frames", out.len()),
            other => panic!("connection ended: {other:?}"),
        }
    }
    out
}

/// Every frame the server sent before answering a `PING` sent now (frames go out in order).
async fn drain(ws: &mut Ws) -> Vec<String> {
    send(ws, "PING".into()).await;
    let mut out = Vec::new();
    loop {
        let t = next_text(ws).await;
        if t == "PONG" {
            return out;
        }
        out.push(t);
    }
}

/// The events of a JSON frame (one object or an array); `None` when it is not JSON.
fn events(frame: &str) -> Option<Vec<Value>> {
    match serde_json::from_str::<Value>(frame).ok()? {
        Value::Array(a) => Some(a),
        one => Some(vec![one]),
    }
}

fn all_events(frames: &[String]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| *f != "PONG")
        .flat_map(|f| events(f).unwrap_or_else(|| panic!("JSON frame: {f}")))
        .collect()
}

fn trade_events(frames: &[String]) -> Vec<Value> {
    all_events(frames)
        .into_iter()
        .filter(|e| e["event_type"] == json!("last_trade_price"))
        .collect()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .expect("a string number")
        .parse()
        .expect("a decimal")
}

fn num_dec(v: &Value) -> Decimal {
    v.to_string()
        .parse::<Decimal>()
        .expect("a decimal")
        .normalize()
}

fn ms_of(e: &Value) -> i64 {
    e["timestamp"]
        .as_str()
        .expect("ms string")
        .parse()
        .expect("ms")
}

fn side_of(s: &Value) -> TradeSide {
    match s.as_str() {
        Some("BUY") => TradeSide::Buy,
        Some("SELL") => TradeSide::Sell,
        other => panic!("side {other:?}"),
    }
}

/// A trade as the WebSocket reports it: (asset, ms, tx, side, price, size when sent).
type Seen = (String, i64, String, TradeSide, Decimal, Option<Decimal>);

fn seen(e: &Value) -> Seen {
    (
        e["asset_id"].as_str().expect("asset").to_string(),
        ms_of(e),
        e["transaction_hash"].as_str().expect("tx").to_string(),
        side_of(&e["side"]),
        dec(&e["price"]),
        e.get("size").map(dec),
    )
}

fn seen_truth(t: &TruthTrade) -> Seen {
    (
        t.asset_id.clone(),
        t.ms,
        t.transaction_hash.clone(),
        t.side,
        t.price,
        Some(t.size),
    )
}

fn counts<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i).or_insert(0) += 1;
    }
    out
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("valid ms")
}

fn ws_trades_of(t: &Truth, connection: u64) -> Vec<WsTrade> {
    t.ws_trades
        .iter()
        .filter(|w| w.connection == connection)
        .cloned()
        .collect()
}

#[tokio::test]
async fn given_more_than_500_assets_over_two_subscribes_then_only_the_first_500_get_books_and_events(
) {
    let mut c = cfg(7);
    c.markets_per_tier = 60;
    c.busy_markets = 2;
    let sim = sim(c).await;
    let t = sim.truth();
    let tradeable: Vec<&TruthMarket> = t
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .collect();
    let busy: Vec<&TruthMarket> = tradeable.iter().copied().filter(|m| m.busy).collect();
    let quiet: Vec<String> = tradeable
        .iter()
        .filter(|m| !m.busy)
        .flat_map(|m| m.token_ids.clone())
        .collect();
    assert!(quiet.len() >= 548);
    // First frame: the first busy market's tokens and 298 others (300).
    let mut first: Vec<String> = busy[0].token_ids.clone();
    first.extend(quiet[..298].iter().cloned());
    // Then 200 more (500 in all), one already subscribed, then 52 beyond the cap: the second
    // busy market's tokens and 50 others.
    let mut more: Vec<String> = quiet[298..498].to_vec();
    more.push(first[5].clone());
    more.extend(busy[1].token_ids.iter().cloned());
    more.extend(quiet[498..548].iter().cloned());
    let ignored: HashSet<String> = more[201..].iter().cloned().collect();
    assert_eq!(ignored.len(), 52);

    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &first).await;
    let dump = events(&next_text(&mut ws).await).expect("JSON dump");
    assert_eq!(dump.len(), 300, "the whole first subscribe is served");
    let op = json!({"operation": "subscribe", "assets_ids": more}).to_string();
    send(&mut ws, op).await;
    let mut frames = collect(&mut ws, Duration::from_millis(2_500)).await;
    frames.extend(drain(&mut ws).await);

    let books: Vec<Value> = frames
        .iter()
        .filter_map(|f| events(f))
        .find(|evs| evs.len() > 100)
        .expect("the second dump");
    let dumped: Vec<&str> = books
        .iter()
        .map(|b| b["asset_id"].as_str().expect("asset"))
        .collect();
    assert_eq!(
        dumped,
        more[..200].iter().map(String::as_str).collect::<Vec<_>>(),
        "books for the 200 new assets within the cap, in order, nothing else"
    );
    let evs = all_events(&frames);
    let mut assets_seen: Vec<&str> = evs.iter().filter_map(|e| e["asset_id"].as_str()).collect();
    for e in &evs {
        for ch in e["price_changes"].as_array().into_iter().flatten() {
            assets_seen.push(ch["asset_id"].as_str().expect("asset"));
        }
    }
    assert!(
        assets_seen.iter().all(|a| !ignored.contains(*a)),
        "nothing at all for an asset beyond the first 500"
    );
    let trades = trade_events(&frames);
    assert!(
        trades
            .iter()
            .any(|e| busy[0].token_ids.iter().any(|t| e["asset_id"] == json!(t))),
        "the served busy market trades live"
    );
    assert_eq!(sim.counters().ws.assets_ignored, 52);
}

#[tokio::test]
async fn given_no_frame_for_the_idle_timeout_then_the_server_closes_and_a_pinging_client_stays() {
    const IDLE: Duration = Duration::from_secs(3);
    let mut c = cfg(7);
    c.ws_idle_timeout = IDLE;
    let sim = sim(c).await;
    let t = sim.truth();
    let token = t
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .expect("tradeable")
        .token_ids[0]
        .clone();

    // Taken before any connection opens: the server starts each idle timer later than this (at
    // the accept, then at the subscribe), so no connection can be closed for idleness before
    // `t0 + IDLE`, however slow the machine.
    let t0 = Instant::now();
    let mut silent = connect(&sim).await;
    subscribe(&mut silent, std::slice::from_ref(&token)).await;
    let mute = connect(&sim).await; // never even subscribes
    let mut pinging = connect(&sim).await;
    subscribe(&mut pinging, std::slice::from_ref(&token)).await;

    // A PING every 300 ms (the idle timeout is ten times that) until twice the idle timeout has
    // passed, then one more: the connection outlived the idle timeout twice over.
    let pinger = async move {
        let mut pongs = 0;
        loop {
            let last = t0.elapsed() >= IDLE * 2;
            send(&mut pinging, "PING".into()).await;
            loop {
                match next(&mut pinging, Duration::from_secs(30)).await {
                    Got::Text(t) if t == "PONG" => break,
                    Got::Text(_) => continue,
                    other => panic!("the pinging client was cut off: {other:?}"),
                }
            }
            pongs += 1;
            if last {
                return pongs;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let (pongs, a, b) = tokio::join!(pinger, until_ended(silent, t0), until_ended(mute, t0));
    for (got, at) in [a, b] {
        match got {
            Got::Closed(Some(f)) => {
                assert_eq!(u16::from(f.code), 1001);
                assert_eq!(f.reason.as_str(), "idle timeout");
            }
            other => panic!("expected an idle close, got {other:?}"),
        }
        assert!(
            at >= IDLE && at < IDLE + Duration::from_secs(30),
            "closed after the idle timeout: {at:?}"
        );
    }
    assert!(pongs >= 2, "kept alive by PING: {pongs} PONGs");
    assert_eq!(sim.counters().ws.idle_closed, 2);
}

/// Reads past text frames until the connection ends (within 30 s of the last frame); what ended
/// it and when (since `t0`).
async fn until_ended(mut ws: Ws, t0: Instant) -> (Got, Duration) {
    loop {
        match next(&mut ws, Duration::from_secs(30)).await {
            Got::Text(_) => continue,
            other => return (other, t0.elapsed()),
        }
    }
}

#[tokio::test]
async fn given_missing_size_and_duplicate_knobs_then_such_events_are_sent_alike_on_every_connection_and_counted(
) {
    let mut c = busy_cfg(11);
    c.ws_missing_size = 0.5;
    c.ws_duplicate_trades = 0.5;
    let sim = sim(c).await;
    let m = busy(&sim.truth());
    let mut a = connect(&sim).await;
    let mut b = connect(&sim).await;
    subscribe(&mut a, &m.token_ids).await;
    subscribe(&mut b, &m.token_ids).await;
    next_text(&mut a).await;
    next_text(&mut b).await;
    let (mut fa, mut fb) = tokio::join!(
        collect(&mut a, Duration::from_millis(2_500)),
        collect(&mut b, Duration::from_millis(2_500))
    );
    sim.stall_ws();
    fa.extend(drain(&mut a).await);
    fb.extend(drain(&mut b).await);
    let truth = sim.truth();
    let counters = sim.counters().ws;

    let mut totals = (0, 0, 0);
    let mut flags_by_conn: Vec<BTreeMap<Seen, (bool, bool)>> = Vec::new();
    for (conn, frames) in [(1, &fa), (2, &fb)] {
        let recorded = ws_trades_of(&truth, conn);
        let received = trade_events(frames);
        let dups = recorded.iter().filter(|w| w.duplicated).count();
        let sizeless = recorded.iter().filter(|w| !w.size_sent).count();
        assert!(
            dups > 0 && dups < recorded.len(),
            "some duplicated, not all"
        );
        assert!(
            sizeless > 0 && sizeless < recorded.len(),
            "some without size"
        );
        assert_eq!(
            received.len(),
            recorded.len() + dups,
            "each duplicate sent twice"
        );
        let received_sizeless = received.iter().filter(|e| e.get("size").is_none()).count();
        let sizeless_copies: usize = recorded
            .iter()
            .filter(|w| !w.size_sent)
            .map(|w| if w.duplicated { 2 } else { 1 })
            .sum();
        assert_eq!(received_sizeless, sizeless_copies);
        // The second copy is the identical text, right after the first (maybe the next frame).
        let texts: Vec<String> = received.iter().map(Value::to_string).collect();
        for w in recorded.iter().filter(|w| w.duplicated) {
            let at = received
                .iter()
                .position(|e| {
                    ms_of(e) == w.trade.ms
                        && e["transaction_hash"] == json!(w.trade.transaction_hash)
                        && e.get("size").is_none_or(|s| dec(s) == w.trade.size)
                })
                .expect("the duplicated trade was received");
            assert_eq!(texts.get(at + 1), Some(&texts[at]), "its copy follows");
        }
        totals.0 += recorded.len() as u64;
        totals.1 += dups as u64;
        totals.2 += sizeless as u64;
        flags_by_conn.push(
            recorded
                .iter()
                .map(|w| (seen_truth(&w.trade), (w.size_sent, w.duplicated)))
                .collect(),
        );
    }
    assert_eq!(
        (
            counters.trades_sent,
            counters.duplicate_trades,
            counters.trades_without_size
        ),
        totals
    );
    // The same trades are sent the same way on both connections.
    let common: Vec<(&Seen, &(bool, bool))> = flags_by_conn[0]
        .iter()
        .filter(|(k, _)| flags_by_conn[1].contains_key(*k))
        .collect();
    assert!(common.len() >= 10, "both saw the same trades");
    for (k, flags) in common {
        assert_eq!(flags_by_conn[1].get(k), Some(flags));
    }

    // The Data API has the size the event left out.
    let w = ws_trades_of(&truth, 1)
        .into_iter()
        .find(|w| !w.size_sent)
        .expect("a trade without size");
    let s = w.trade.ms.div_euclid(1000);
    let (_, rows) = get_json(&format!(
        "{}/trades?market={}&start={s}&end={s}&limit=10000",
        sim.data_url(),
        m.condition_id
    ))
    .await;
    assert!(rows.as_array().expect("rows").iter().any(|r| {
        r["transactionHash"] == json!(w.trade.transaction_hash)
            && r["asset"] == json!(w.trade.asset_id)
            && num_dec(&r["size"]) == w.trade.size
    }));
}

#[tokio::test]
async fn given_defaults_then_every_trade_event_has_its_size_and_none_is_sent_twice() {
    let sim = sim(busy_cfg(11)).await;
    let m = busy(&sim.truth());
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &m.token_ids).await;
    next_text(&mut ws).await;
    let mut frames = collect_until(&mut ws, |f| trade_events(f).len() >= 5).await;
    // Stalled, the connection sends nothing more, so the counters stay what was received.
    sim.stall_ws();
    frames.extend(drain(&mut ws).await);
    let trades = trade_events(&frames);
    assert!(trades.len() >= 5);
    assert!(trades.iter().all(|e| e.get("size").is_some()));
    let c = sim.counters().ws;
    assert_eq!((c.duplicate_trades, c.trades_without_size), (0, 0));
    assert_eq!(c.trades_sent, trades.len() as u64);
}

#[tokio::test]
async fn given_an_abrupt_drop_then_the_client_sees_the_tcp_connection_closed_without_a_close_frame()
{
    let sim = sim(busy_cfg(3)).await;
    let m = busy(&sim.truth());
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &m.token_ids).await;
    next_text(&mut ws).await;
    assert_eq!(sim.drop_ws_connections(), 1);
    let ended = loop {
        match next(&mut ws, Duration::from_secs(5)).await {
            Got::Text(_) => continue,
            other => break other,
        }
    };
    let Got::Gone(why) = ended else {
        panic!("no close frame, the stream just ends: {ended:?}");
    };
    assert!(
        why.contains("without closing handshake"),
        "the TCP connection closed under the WebSocket: {why}"
    );
    assert_eq!(sim.counters().ws.connections_dropped, 1);

    // A new connection is served as usual.
    let mut again = connect(&sim).await;
    subscribe(&mut again, &m.token_ids).await;
    let dump = events(&next_text(&mut again).await).expect("JSON");
    assert_eq!(dump.len(), 2);
    assert!(!trade_events(&collect(&mut again, Duration::from_millis(1_200)).await).is_empty());
}

#[tokio::test]
async fn given_a_stall_then_only_pongs_until_resumed_while_a_new_connection_is_served_and_the_gap_is_in_the_data_api(
) {
    let sim = sim(busy_cfg(5)).await;
    let m = busy(&sim.truth());
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &m.token_ids).await;
    next_text(&mut ws).await;
    let mut before = collect(&mut ws, Duration::from_millis(1_200)).await;
    assert!(
        !trade_events(&before).is_empty(),
        "trades flow before the stall"
    );

    sim.stall_ws();
    before.extend(drain(&mut ws).await);
    let stalled_at = sim.now();
    // Stalled: every PING answered, nothing else.
    for _ in 0..5 {
        assert!(drain(&mut ws).await.is_empty(), "nothing but PONG");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A connection opened during the stall is served normally.
    let mut fresh = connect(&sim).await;
    subscribe(&mut fresh, &m.token_ids).await;
    assert_eq!(
        events(&next_text(&mut fresh).await).map(|d| d.len()),
        Some(2)
    );
    assert!(!trade_events(&collect(&mut fresh, Duration::from_millis(1_200)).await).is_empty());
    assert!(drain(&mut ws).await.is_empty(), "still stalled");
    let resumed_at = sim.now();
    sim.resume_ws();
    let after = collect(&mut ws, Duration::from_millis(1_200)).await;
    let after_trades = trade_events(&after);
    assert!(!after_trades.is_empty(), "trades flow again once resumed");
    assert!(sim.counters().ws.events_withheld > 0);

    // The trades of the stall never came; the truth (and the Data API) has them.
    let got: HashSet<Seen> = trade_events(&before)
        .iter()
        .chain(&after_trades)
        .map(seen)
        .collect();
    // The first tick after the resume reports from the last stalled tick on (≤ 500 ms before).
    let gap = sim.trades(
        &m.condition_id,
        stalled_at,
        resumed_at - chrono::Duration::milliseconds(600),
    );
    assert!(
        gap.len() >= 10,
        "the stall lasted a few seconds of busy trading"
    );
    assert!(gap.iter().all(|t| !got.contains(&seen_truth(t))));
    let recorded: HashSet<Seen> = ws_trades_of(&sim.truth(), 1)
        .iter()
        .map(|w| seen_truth(&w.trade))
        .collect();
    assert_eq!(
        recorded, got,
        "the truth lists exactly what the connection sent"
    );
}

#[tokio::test]
async fn given_malformed_frames_injected_then_that_many_non_json_frames_arrive_and_no_event_is_lost(
) {
    let sim = sim(busy_cfg(9)).await;
    let m = busy(&sim.truth());
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &m.token_ids).await;
    next_text(&mut ws).await;
    sim.inject_ws_malformed(3);
    // Until the third malformed frame, the whole frame after it and two more (which must be
    // JSON: only three were injected).
    let mut frames = collect_until(&mut ws, |f| {
        let bad: Vec<usize> = (0..f.len()).filter(|&i| events(&f[i]).is_none()).collect();
        bad.get(2).is_some_and(|&third| f.len() >= third + 4)
    })
    .await;
    sim.stall_ws();
    frames.extend(drain(&mut ws).await);

    let bad: Vec<usize> = (0..frames.len())
        .filter(|&i| events(&frames[i]).is_none())
        .collect();
    assert_eq!(bad.len(), 3, "three frames are not JSON");
    for &i in &bad {
        let whole = frames.get(i + 1).expect("the whole frame follows");
        assert!(
            whole.starts_with(&frames[i]) && events(whole).is_some(),
            "a malformed frame replaces nothing: the frame it cut follows in full"
        );
    }
    assert_eq!(sim.counters().ws.malformed_frames, 3);

    let good: Vec<String> = frames
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, f)| f.clone())
        .collect();
    let got = counts(trade_events(&good).iter().map(seen));
    let from = got.keys().map(|s| s.1).min().expect("trades");
    let to = got.keys().map(|s| s.1).max().expect("trades");
    let truth = counts(
        sim.trades(&m.condition_id, at_ms(from), at_ms(to))
            .iter()
            .map(seen_truth),
    );
    assert_eq!(
        got, truth,
        "every trade between the first and last received arrived"
    );
}

#[tokio::test]
async fn given_unknown_events_injected_then_mystery_events_mixed_into_arrays_and_known_events_carry_an_unknown_field(
) {
    let sim = sim(busy_cfg(13)).await;
    let m = busy(&sim.truth());
    let mut ws = connect(&sim).await;
    subscribe(&mut ws, &m.token_ids).await;
    next_text(&mut ws).await;
    sim.inject_ws_unknown(2);
    // Until the second frame with a `mystery_event` and two more (which must have none: only
    // two were injected).
    let mut frames = collect_until(&mut ws, |f| {
        let odd: Vec<usize> = (0..f.len())
            .filter(|&i| {
                events(&f[i]).is_some_and(|evs| {
                    evs.iter()
                        .any(|e| e["event_type"] == json!("mystery_event"))
                })
            })
            .collect();
        odd.get(1).is_some_and(|&second| f.len() >= second + 3)
    })
    .await;
    sim.stall_ws();
    frames.extend(drain(&mut ws).await);

    let mut odd = 0;
    let mut decorated = 0;
    for f in &frames {
        let v: Value = serde_json::from_str(f).expect("JSON");
        let evs = match &v {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        let mystery = evs
            .iter()
            .filter(|e| e["event_type"] == json!("mystery_event"))
            .count();
        let real: Vec<&Value> = evs
            .iter()
            .filter(|e| e["event_type"] != json!("mystery_event"))
            .collect();
        if mystery == 0 {
            assert!(real.iter().all(|e| e.get("unknown_field").is_none()));
            continue;
        }
        odd += 1;
        assert_eq!(mystery, 1);
        assert!(v.is_array() && !real.is_empty(), "mixed with real events");
        for e in &real {
            assert!(e.get("unknown_field").is_some(), "extra field on {e}");
            assert!(matches!(
                e["event_type"].as_str(),
                Some("last_trade_price" | "price_change" | "book")
            ));
        }
        decorated += real.len() as u64;
    }
    assert_eq!(odd, 2);
    let c = sim.counters().ws;
    assert_eq!(
        (c.unknown_events, c.events_with_unknown_fields),
        (2, decorated)
    );
}

/// Data API rows as comparable tuples: (asset, second, tx, side, price, size, wallet).
type Row = (String, i64, String, TradeSide, Decimal, Decimal, String);

fn row(r: &Value) -> Row {
    (
        r["asset"].as_str().expect("asset").to_string(),
        r["timestamp"].as_i64().expect("seconds"),
        r["transactionHash"].as_str().expect("tx").to_string(),
        side_of(&r["side"]),
        num_dec(&r["price"]),
        num_dec(&r["size"]),
        r["proxyWallet"].as_str().expect("wallet").to_string(),
    )
}

fn truth_row(t: &TruthTrade) -> Row {
    (
        t.asset_id.clone(),
        t.block_s,
        t.transaction_hash.clone(),
        t.side,
        t.price,
        t.size,
        t.wallet.clone(),
    )
}

#[tokio::test]
async fn given_a_busy_market_then_offset_paging_stops_at_10000_and_start_end_windows_reach_every_trade(
) {
    let sim = sim(busy_cfg(17)).await;
    let m = busy(&sim.truth());
    let cid = &m.condition_id;
    let end = sim.now().timestamp() - 60;
    let start = end - 40 * 60 + 1;
    let url = |q: String| format!("{}/trades?market={cid}&{q}", sim.data_url());

    // 40 minutes hold more than offset + limit can reach.
    let (status, deep) = get_json(&url(format!(
        "start={start}&end={end}&offset=10000&limit=10000"
    )))
    .await;
    assert_eq!(status, 200);
    assert_eq!(deep.as_array().map(Vec::len), Some(10_000));
    let (status, _) = get_json(&url(format!("start={start}&end={end}&offset=10001"))).await;
    assert_eq!(
        status, 400,
        "past the offset cap is an error, never clamped"
    );
    let (_, clamped) = get_json(&url(format!("start={start}&end={end}&limit=20000"))).await;
    assert_eq!(clamped.as_array().map(Vec::len), Some(10_000));

    // Paging inside 5-minute windows reaches every trade of the 40 minutes.
    let mut rows: Vec<Row> = Vec::new();
    for w in 0..8 {
        let (s, e) = (start + w * 300, start + w * 300 + 299);
        let (status, page) = get_json(&url(format!("start={s}&end={e}&limit=10000"))).await;
        assert_eq!(status, 200);
        let page = page.as_array().expect("rows");
        assert!(page.len() > 3_000 && page.len() < 10_000, "{}", page.len());
        let mut last = i64::MAX;
        for r in page {
            let ts = r["timestamp"].as_i64().expect("seconds");
            assert!((s..=e).contains(&ts), "inside the window");
            assert!(ts <= last, "newest first");
            last = ts;
            rows.push(row(r));
        }
    }
    assert!(rows.len() > 20_000);
    let truth = sim.trades(cid, at_ms(start * 1000), at_ms(end * 1000 + 999));
    assert_eq!(counts(rows), counts(truth.iter().map(truth_row)));
}

#[tokio::test]
async fn given_a_block_lag_then_rows_are_served_once_mined_with_block_seconds_on_the_block_clock() {
    let mut c = busy_cfg(23);
    c.block_lag = Duration::from_secs(3);
    let sim = sim(c).await;
    let m = busy(&sim.truth());
    let cid = &m.condition_id;
    let now = sim.now();

    // Every fill is mined up to 3 s after its match, all fills of a transaction in one block.
    let recent = sim.trades(cid, now - chrono::Duration::minutes(2), now);
    assert!(recent.len() > 1_000, "{}", recent.len());
    let mut blocks: BTreeMap<&str, i64> = BTreeMap::new();
    for t in &recent {
        assert!(
            t.block_s * 1000 + 999 > t.ms && t.block_s * 1000 <= t.ms + 3_000,
            "{t:?}"
        );
        assert_eq!(
            *blocks.entry(&t.transaction_hash).or_insert(t.block_s),
            t.block_s
        );
    }
    assert!(
        recent.iter().any(|t| t.block_s > t.ms.div_euclid(1000)),
        "some fills are mined in a later second"
    );

    // `start`/`end` pick block seconds, newest block first: a window's rows are the fills mined in
    // it, some matched before it starts.
    let (start, end) = (now.timestamp() - 90, now.timestamp() - 31);
    let url = format!(
        "{}/trades?market={cid}&start={start}&end={end}&limit=10000",
        sim.data_url()
    );
    let (status, page) = get_json(&url).await;
    assert_eq!(status, 200);
    let page = page.as_array().expect("rows");
    let stamps: Vec<i64> = page
        .iter()
        .map(|r| r["timestamp"].as_i64().expect("s"))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let truth: Vec<&TruthTrade> = recent
        .iter()
        .filter(|t| (start..=end).contains(&t.block_s))
        .collect();
    assert!(truth.iter().any(|t| t.ms < start * 1000));
    assert_eq!(
        counts(page.iter().map(row)),
        counts(truth.iter().map(|t| truth_row(t)))
    );

    // A fill matched but not mined yet is not served.
    let before = sim.now();
    let (_, newest) = get_json(&format!(
        "{}/trades?market={cid}&limit=10000",
        sim.data_url()
    ))
    .await;
    let after_ms = sim.now().timestamp_millis();
    let served: HashSet<Row> = newest.as_array().expect("rows").iter().map(row).collect();
    let unmined: Vec<TruthTrade> = sim
        .trades(cid, before - chrono::Duration::seconds(5), before)
        .into_iter()
        .filter(|t| t.block_s * 1000 > after_ms)
        .collect();
    assert!(
        !unmined.is_empty(),
        "matched in the last seconds, mined later"
    );
    assert!(unmined.iter().all(|t| !served.contains(&truth_row(t))));
}

#[tokio::test]
async fn given_taker_only_false_then_each_fill_also_has_its_maker_row() {
    let sim = sim(busy_cfg(19)).await;
    let m = busy(&sim.truth());
    let end = sim.now().timestamp() - 10;
    let start = end - 59;
    let q = |taker: &str| {
        format!(
            "{}/trades?market={}&start={start}&end={end}&limit=10000{taker}",
            sim.data_url(),
            m.condition_id
        )
    };
    let (_, taker) = get_json(&q("")).await;
    let (_, explicit) = get_json(&q("&takerOnly=true")).await;
    let (_, both) = get_json(&q("&takerOnly=false")).await;
    let taker = taker.as_array().expect("rows");
    let both = both.as_array().expect("rows");
    assert_eq!(Some(taker), explicit.as_array());
    assert!(taker.len() > 500);
    assert_eq!(both.len(), 2 * taker.len());
    for pair in both.chunks(2) {
        let (t, mk) = (row(&pair[0]), row(&pair[1]));
        assert_eq!(
            (&t.0, t.1, &t.2, t.4, t.5),
            (&mk.0, mk.1, &mk.2, mk.4, mk.5)
        );
        assert_ne!(t.3, mk.3, "the maker is on the other side");
        assert_ne!(t.6, mk.6, "another wallet");
    }
    let (status, _) = get_json(&q("&takerOnly=maybe")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn given_a_market_closed_after_trading_then_the_data_api_keeps_its_trades() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let m = t
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .max_by_key(|m| m.volume_24h)
        .expect("tradeable");
    let url = format!(
        "{}/trades?market={}&limit=50",
        sim.data_url(),
        m.condition_id
    );
    let (_, before) = get_json(&url).await;
    assert_eq!(before.as_array().map(Vec::len), Some(50));
    let last_s = before[0]["timestamp"].as_i64().expect("seconds");
    assert!(sim.close_market(&m.condition_id));
    let (status, after) = get_json(&url).await;
    assert_eq!(status, 200);
    let after = after.as_array().expect("rows");
    assert!(after.len() == 50 && after[0]["timestamp"].as_i64() >= Some(last_s));
    let closed_s = sim
        .truth()
        .markets
        .iter()
        .find(|x| x.id == m.id)
        .and_then(|x| x.closed_time);
    let closed_s = closed_s.expect("closed").timestamp();
    assert!(after
        .iter()
        .all(|r| r["timestamp"].as_i64() <= Some(closed_s)));
    assert!(after.iter().any(|r| r == &before[10]), "history kept");
    let listed = sim.trades(
        &m.condition_id,
        sim.now() - chrono::Duration::hours(1),
        sim.now(),
    );
    assert!(listed.last().is_some_and(|t| t.ms <= closed_s * 1000 + 999));
}
