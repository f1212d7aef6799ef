//! The supervisor over real sockets against the simulator, compared with its truth: every trade
//! of a followed market is stored exactly once across an abrupt drop, a silent stall, tokens
//! served nothing until the watchdog re-subscribes them, duplicated events, events without a
//! size, malformed frames and unknown events — with the Data API dating trades by block, a
//! few seconds after their match; no shard holds more than its size; and the flow of a covered
//! market equals the truth's.
#![allow(clippy::unwrap_used)]

use polytape_core::live::{Source, StoredTrade, TapeKind};
use polytape_core::{FlowSums, FlowTrade, Side, TradeFlow};
use polytape_feed::supervisor::{
    supervise, Emit, LiveMarket, MarketSource, SupervisorConfig, SupervisorCounts, EMIT_CAPACITY,
};
use polytape_feed::Output;
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_sim::{MarketKind, SimConfig, SimHandle, TradeSide, TruthTrade};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

struct Fixed(Vec<LiveMarket>);

impl MarketSource for Fixed {
    async fn live_markets(&self) -> Result<Vec<LiveMarket>, String> {
        Ok(self.0.clone())
    }
}

fn client_for(sim: &SimHandle) -> PolymarketClient {
    PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: sim.gamma_url(),
            clob: sim.clob_url(),
            data: sim.data_url(),
            ws: sim.ws_url(),
        },
        backoff_base: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// Tradeable markets closing within 12 h (T2–T4), as the markets state would list them, and
/// the busy market (a dozen trades a second) as if it were one of them.
fn live_markets(sim: &SimHandle) -> Vec<LiveMarket> {
    let now = sim.now();
    sim.truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable && m.token_ids.len() == 2)
        .filter(|m| m.busy || m.end_date > now && m.end_date - now <= chrono::Duration::hours(12))
        .map(|m| LiveMarket {
            condition_id: m.condition_id.clone(),
            tokens: [m.token_ids[0].clone(), m.token_ids[1].clone()],
        })
        .collect()
}

/// The simulator's Data API mines a trade up to this long after its match.
const BLOCK_LAG: Duration = Duration::from_secs(2);

fn config(sim: &SimHandle) -> SupervisorConfig {
    let mut c = SupervisorConfig::new(sim.ws_url());
    // Longer than the simulator's block lag.
    c.settle = Duration::from_secs(3);
    c.shard_assets = 6;
    c.follow_every = Duration::from_secs(1);
    c.stagger = Duration::from_millis(50);
    c.publish_every = Duration::from_millis(500);
    c.heartbeat_every = Duration::from_millis(500);
    c.backfill_delay = Duration::ZERO;
    c.size_lookup_every = Duration::from_secs(1);
    c.shard.ping_every = Duration::from_millis(500);
    c.shard.dead_after = Duration::from_secs(3);
    c.shard.stall_after = Duration::from_secs(2);
    c.shard.backoff_min = Duration::from_millis(100);
    c.shard.backoff_max = Duration::from_millis(500);
    c
}

/// What identifies a fill in both sources: token, transaction, side, price, size.
type Fill = (String, String, Side, Decimal, Decimal);

fn side(s: TradeSide) -> Side {
    match s {
        TradeSide::Buy => Side::Buy,
        TradeSide::Sell => Side::Sell,
    }
}

fn truth_fill(t: &TruthTrade) -> Fill {
    (
        t.asset_id.clone(),
        t.transaction_hash.clone(),
        side(t.side),
        t.price,
        t.size,
    )
}

fn count<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

fn sim_config(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(seed);
    cfg.markets_per_tier = 3;
    cfg.now = chrono::Utc::now();
    cfg.ws_missing_size = 0.1;
    cfg.ws_duplicate_trades = 0.1;
    cfg.busy_markets = 1;
    cfg.block_lag = BLOCK_LAG;
    cfg
}

fn stored_trades(emits: &[Emit]) -> Vec<&StoredTrade> {
    emits
        .iter()
        .filter_map(|e| match e {
            Emit::Output(Output::Trade(t)) => Some(t.as_ref()),
            _ => None,
        })
        .collect()
}

/// The control records on the tape, as JSON.
fn controls(emits: &[Emit]) -> Vec<serde_json::Value> {
    emits
        .iter()
        .filter_map(|e| match e {
            Emit::Tape(r) if r.kind == TapeKind::Control => serde_json::from_str(&r.text).ok(),
            _ => None,
        })
        .collect()
}

/// Collects what the supervisor hands out until `done` holds for all of it (looked at every
/// 50 ms); fails after `within`. (Waiting on what happened, not for a fixed time, keeps the test
/// from failing on a busy machine.)
async fn collect_until(
    rx: &mut mpsc::Receiver<Emit>,
    emits: &mut Vec<Emit>,
    within: Duration,
    what: &str,
    done: impl Fn(&[Emit]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Ok(e) = rx.try_recv() {
            emits.push(e);
        }
        if done(emits) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        collect_for(rx, emits, Duration::from_millis(50)).await;
    }
}

/// The gaps on the tape: (market, start) → (times opened, times closed). A close without its
/// start (a tape of before gaps were told apart) closes every open gap of its market.
fn gaps(emits: &[Emit]) -> BTreeMap<(String, i64), (usize, usize)> {
    let mut out: BTreeMap<(String, i64), (usize, usize)> = BTreeMap::new();
    for c in controls(emits) {
        let (Some(op), Some(cid)) = (c["op"].as_str(), c["condition_id"].as_str()) else {
            continue;
        };
        match (op, c["from_ms"].as_i64()) {
            ("gap_opened", Some(from)) => out.entry((cid.to_string(), from)).or_default().0 += 1,
            ("gap_closed", Some(from)) => out.entry((cid.to_string(), from)).or_default().1 += 1,
            ("gap_closed", None) => {
                for ((c, _), n) in out.iter_mut() {
                    if c == cid {
                        n.1 = n.0;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Collects what the supervisor hands out for `d` (reading on, as its channel is bounded).
async fn collect_for(rx: &mut mpsc::Receiver<Emit>, emits: &mut Vec<Emit>, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    while let Ok(Some(e)) = tokio::time::timeout_at(until, rx.recv()).await {
        emits.push(e);
    }
}

/// A stored trade (with its size) as a fill.
fn stored_fill(t: &StoredTrade) -> Fill {
    (
        t.token_id.clone(),
        t.transaction_hash.clone().unwrap_or_default(),
        t.side,
        t.price,
        t.size.unwrap(),
    )
}

/// Per market, the trades matched from `from` to `end` (whole seconds): the stored fills are the
/// truth's, each once, and none was stored without a size. A stored fill is placed by its
/// truth's match time, as a backfilled trade carries its block second. Returns the number of
/// the truth's trades per market: a quiet market may have none in the span (the simulator's
/// trades follow the wall clock's minutes), and then must have none stored.
fn assert_each_trade_stored_once(
    sim: &SimHandle,
    markets: &[LiveMarket],
    stored: &[&StoredTrade],
    from: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, usize> {
    match check_each_trade_stored_once(sim, markets, stored, from, end) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

/// [`assert_each_trade_stored_once`] as a result.
fn check_each_trade_stored_once(
    sim: &SimHandle,
    markets: &[LiveMarket],
    stored: &[&StoredTrade],
    from: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Result<BTreeMap<String, usize>, String> {
    let mut traded = BTreeMap::new();
    let second = |t: chrono::DateTime<chrono::Utc>| t.timestamp();
    let in_range = |s: i64| (second(from)..=second(end)).contains(&s);
    let margin = chrono::Duration::minutes(2);
    for m in markets {
        let truth = sim.trades(&m.condition_id, from - margin, end + margin);
        let match_s: BTreeMap<Fill, i64> = truth
            .iter()
            .map(|t| (truth_fill(t), t.ms.div_euclid(1000)))
            .collect();
        let truth: Vec<&TruthTrade> = truth
            .iter()
            .filter(|t| in_range(t.ms.div_euclid(1000)))
            .collect();
        let want = count(truth.iter().map(|t| truth_fill(t)));
        let sizeless: Vec<_> = stored
            .iter()
            .filter(|t| t.condition_id == m.condition_id && t.size.is_none())
            .filter(|t| in_range(second(t.trade_ts)))
            .map(|t| (t.trade_ts, t.received_at, t.transaction_hash.clone()))
            .collect();
        if !sizeless.is_empty() {
            return Err(format!("stored without a size: {sizeless:?} (end {end})"));
        }
        let got = count(
            stored
                .iter()
                .filter(|t| t.condition_id == m.condition_id && t.size.is_some())
                .filter(|t| {
                    let s = match_s.get(&stored_fill(t)).copied();
                    in_range(s.unwrap_or(second(t.trade_ts)))
                })
                .map(|t| stored_fill(t)),
        );
        traded.insert(m.condition_id.clone(), truth.len());
        let missing: Vec<_> = truth
            .iter()
            .filter(|t| got.get(&truth_fill(t)).copied().unwrap_or(0) < want[&truth_fill(t)])
            .map(|t| (t.ms, t.block_s, t.transaction_hash.clone()))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|(f, n)| want.get(*f).copied().unwrap_or(0) < **n)
            .take(5)
            .collect();
        if !(missing.is_empty() && extra.is_empty()) {
            return Err(format!(
                "market {}: {} stored, {} in the truth; missing (first 5) {missing:?}; extra {extra:?}",
                m.condition_id,
                got.values().sum::<usize>(),
                want.values().sum::<usize>(),
            ));
        }
    }
    Ok(traded)
}

/// The last counters handed out, if any.
fn last_counts(emits: &[Emit]) -> Option<&SupervisorCounts> {
    emits.iter().rev().find_map(|e| match e {
        Emit::Counts(c) => Some(c),
        _ => None,
    })
}

/// Collects until every trade of the truth matched from `from` to `end` is stored once with
/// its size (the last ones get it from the Data API after its block lag and a size lookup),
/// looked at every 500 ms, for at most `within`: the assertions that follow say what is wrong
/// if it never is.
async fn collect_until_stored(
    rx: &mut mpsc::Receiver<Emit>,
    emits: &mut Vec<Emit>,
    within: Duration,
    sim: &SimHandle,
    markets: &[LiveMarket],
    from: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        while let Ok(e) = rx.try_recv() {
            emits.push(e);
        }
        if check_each_trade_stored_once(sim, markets, &stored_trades(emits), from, end).is_ok() {
            return;
        }
        collect_for(rx, emits, Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trade_is_stored_once_across_a_drop_and_a_stall_and_flow_matches_the_truth() {
    let sim = polytape_sim::start(sim_config(7), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let markets = live_markets(&sim);
    assert!(markets.len() >= 6, "{} markets", markets.len());
    let (tx, mut rx) = mpsc::channel(EMIT_CAPACITY);
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = sim.now();
    let run = tokio::spawn(supervise(
        config(&sim),
        Fixed(markets.clone()),
        client_for(&sim),
        tx,
        stop_rx,
    ));
    let mut emits = Vec::new();
    sim.inject_ws_malformed(3);
    sim.inject_ws_unknown(3);
    // Every shard connected (however long that takes on a busy machine), then heard a while.
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "every shard connected",
        |emits| {
            last_counts(emits).is_some_and(|c| {
                c.shards >= 2
                    && c.connected_shards == c.shards
                    && c.subscribed_assets == c.wanted_assets
            })
        },
    )
    .await;
    collect_for(&mut rx, &mut emits, Duration::from_secs(2)).await;
    let shards = last_counts(&emits).unwrap().shards;
    let dropped_at = sim.now();
    let dropped = sim.drop_ws_connections();
    // (A shard may be reconnecting just now: a quiet one is taken for stalled after 2 s.)
    assert!(dropped >= 1, "{dropped} connections dropped");
    // Every shard back, heard a while, then stalled.
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "every shard reconnected after the drop",
        |emits| {
            last_counts(emits).is_some_and(|c| {
                c.reconnects >= u64::from(shards) && c.connected_shards == c.shards
            })
        },
    )
    .await;
    collect_for(&mut rx, &mut emits, Duration::from_secs(1)).await;
    sim.stall_ws();
    // Noticed after 2 s without events, reconnected, and each market's two gaps backfilled once
    // their settle margin (3 s) has passed; then a flow covers every market again.
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "every gap closed, then a flow of every market",
        |emits| {
            let g = gaps(emits);
            let closed: usize = g.values().map(|n| n.1).sum();
            let last_close = emits.iter().rposition(|e| {
                matches!(e, Emit::Tape(r) if r.kind == TapeKind::Control
                    && r.text.contains("\"gap_closed\""))
            });
            closed >= 2 * markets.len()
                && g.values().all(|(opened, closed)| opened == closed)
                && last_close.is_some_and(|i| {
                    emits[i..].iter().any(|e| {
                        matches!(e, Emit::Flow(f) if markets
                            .iter()
                            .all(|m| f.markets.contains_key(&m.condition_id)))
                    })
                })
        },
    )
    .await;
    let end = sim.now();
    let from = start - chrono::Duration::minutes(55);
    collect_until_stored(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        &sim,
        &markets,
        from,
        end,
    )
    .await;
    stop_tx.send(true).unwrap();
    // Read to the end while the supervisor stops (its channel is bounded).
    while let Some(e) = rx.recv().await {
        emits.push(e);
    }
    let counts = run.await.unwrap();

    let stored = stored_trades(&emits);
    assert!(counts.reconnects >= 6, "{counts:?}");
    assert!(
        counts.feed.duplicates > 0,
        "the backfills overlapped what was heard"
    );
    let ws = sim.counters().ws;
    assert!(
        ws.duplicate_trades > 0 && ws.trades_without_size > 0,
        "{ws:?}"
    );
    assert_eq!(
        counts.feed.malformed_frames, ws.malformed_frames,
        "{counts:?}"
    );
    assert_eq!(counts.feed.unknown_events, ws.unknown_events);
    // G3: the sizes came from the Data API (the comparison below checks each one); only
    // trades still waiting at the stop were stored without.
    assert!(counts.feed.size_from_data_api > 0, "{counts:?}");
    assert!(stored.iter().any(|t| t.source == Source::Backfill));
    for e in &emits {
        if let Emit::Heartbeats(round) = e {
            for h in round {
                assert!(h.assets <= 6, "{h:?}");
            }
        }
    }

    // From the warm-up hour to shortly before the stop, per market: the stored fills are the
    // truth's, each once.
    let traded = assert_each_trade_stored_once(&sim, &markets, &stored, from, end);
    let busy = sim.truth().markets.into_iter().find(|m| m.busy).unwrap();
    assert!(traded[&busy.condition_id] > 1000, "{traded:?}");
    assert!(
        traded.values().filter(|n| **n > 0).count() >= markets.len() / 2,
        "{traded:?}"
    );

    // The busy market's trades matched in a gap and mined in a second after its reconnect
    // (outside [gap start, reconnect]) came from the backfill, each once.
    let mut gap_from = None;
    let mut gaps = Vec::new();
    for c in controls(&emits) {
        if c["condition_id"] != busy.condition_id.as_str() {
            continue;
        }
        match (c["op"].as_str(), gap_from) {
            (Some("gap_opened"), _) => gap_from = c["from_ms"].as_i64(),
            (Some("covered_from"), Some(from)) => {
                gaps.push((from, c["at_ms"].as_i64().unwrap()));
                gap_from = None;
            }
            _ => {}
        }
    }
    assert!(gaps.len() >= 2, "{gaps:?}");
    let heard: BTreeMap<Fill, usize> = count(
        stored
            .iter()
            .filter(|t| t.source == Source::Ws && t.size.is_some())
            .map(|t| stored_fill(t)),
    );
    let late: Vec<TruthTrade> = gaps
        .iter()
        .flat_map(|&(from, reconnect)| {
            sim.trades(
                &busy.condition_id,
                chrono::DateTime::from_timestamp_millis(from).unwrap(),
                chrono::DateTime::from_timestamp_millis(reconnect).unwrap(),
            )
            .into_iter()
            .filter(move |t| t.block_s > reconnect.div_euclid(1000))
        })
        .filter(|t| !heard.contains_key(&truth_fill(t)))
        .collect();
    assert!(!late.is_empty(), "gaps {gaps:?}");
    let all = count(
        stored
            .iter()
            .filter(|t| t.size.is_some())
            .map(|t| stored_fill(t)),
    );
    for t in &late {
        assert_eq!(
            all.get(&truth_fill(t)),
            Some(&1),
            "matched at {} in a gap, mined at {} s: {t:?}",
            t.ms,
            t.block_s
        );
    }

    // The last flow published: for each market, the flow of the truth's trades of the hour
    // before it — as the feed knows them, which for a backfilled trade is its block second
    // (the stored trades were shown above to be exactly the truth's).
    // (The newest one covering every market after the drop's gap was backfilled.)
    let (at_emit, flow) = emits
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, e)| match e {
            Emit::Flow(f)
                if f.at_ms > dropped_at.timestamp_millis()
                    && markets
                        .iter()
                        .all(|m| f.markets.contains_key(&m.condition_id)) =>
            {
                Some((i, f.clone()))
            }
            _ => None,
        })
        .expect("a flow covering every market after the drop");
    let at = chrono::DateTime::from_timestamp_millis(flow.at_ms).unwrap();
    let outcome: BTreeMap<&str, usize> = markets
        .iter()
        .flat_map(|m| [(m.tokens[0].as_str(), 0), (m.tokens[1].as_str(), 1)])
        .collect();
    for m in &markets {
        // The trades the feed had stored when it published (emitted before the flow); a trade
        // stored without a size at the stop never entered a window.
        let known: Vec<FlowTrade> = emits[..at_emit]
            .iter()
            .filter_map(|e| match e {
                Emit::Output(Output::Trade(t)) => Some(t.as_ref()),
                _ => None,
            })
            .filter(|t| t.condition_id == m.condition_id)
            .filter_map(|t| {
                Some(FlowTrade::of(
                    t.trade_ts,
                    outcome[t.token_id.as_str()],
                    t.side,
                    t.price,
                    t.size?,
                ))
            })
            .collect();
        // Within one publication period: the window sums 15-second buckets, so it holds the
        // hour and the part of its oldest bucket before it, [edge, at].
        let edge = polytape_feed::window::MarketWindow::edge_ms(flow.at_ms);
        let mut sums = FlowSums::default();
        for t in &known {
            if (edge..=flow.at_ms).contains(&t.ts.timestamp_millis()) {
                sums.add(t);
            }
        }
        let want = TradeFlow::of_sums(&sums, at);
        assert_eq!(
            flow.markets[&m.condition_id], want,
            "flow of {}",
            m.condition_id
        );
        if m.condition_id == busy.condition_id {
            assert!(want.trade_count_1h > 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_of_tokens_served_nothing_until_the_watchdog_resubscribed_them_are_backfilled_once()
{
    let sim = polytape_sim::start(sim_config(9), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // The busy market alone: its tokens are heard many times a second, so the watchdog finds
    // them silent only when they are served nothing.
    let busy = sim.truth().markets.into_iter().find(|m| m.busy).unwrap();
    let markets = vec![LiveMarket {
        condition_id: busy.condition_id.clone(),
        tokens: [busy.token_ids[0].clone(), busy.token_ids[1].clone()],
    }];
    let mut config = config(&sim);
    // The connection keeps answering PING, and is not taken for stalled during the test: only
    // the watchdog notices that its tokens are served nothing.
    config.shard.stall_after = Duration::from_secs(60);
    config.asset_silence = Duration::from_secs(2);
    let (tx, mut rx) = mpsc::channel(EMIT_CAPACITY);
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = sim.now();
    let run = tokio::spawn(supervise(
        config,
        Fixed(markets.clone()),
        client_for(&sim),
        tx,
        stop_rx,
    ));
    let mut emits = Vec::new();
    // The shard connected and subscribed, and the busy market's trades heard live (however long
    // that takes on a busy machine): the stall must catch the connection that serves them.
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "the shard connected and the busy market's trades heard",
        |emits| {
            last_counts(emits).is_some_and(|c| {
                c.shards >= 1
                    && c.connected_shards == c.shards
                    && c.subscribed_assets == c.wanted_assets
            }) && stored_trades(emits).iter().any(|t| t.source == Source::Ws)
        },
    )
    .await;
    // Served nothing from now until the watchdog re-subscribes the busy market's tokens (when
    // the service comes back).
    let silenced = emits.len();
    let stalled_at = sim.now();
    sim.stall_ws();
    let resubscribed = |c: &serde_json::Value| {
        c["op"] == "heard"
            && c["assets"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == busy.token_ids[0].as_str()))
    };
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(30),
        "the busy market's tokens re-subscribed",
        |emits| controls(&emits[silenced..]).iter().any(resubscribed),
    )
    .await;
    sim.resume_ws();
    let resumed = tokio::time::Instant::now();
    let at = emits.len();
    // The repair backfill asked with the re-subscribe reaches 3 s past it, and is asked then.
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "every backfill answered",
        |emits| {
            resumed.elapsed() >= Duration::from_secs(3)
                && emits[at..]
                    .iter()
                    .rev()
                    .find_map(|e| match e {
                        Emit::Counts(c) => Some(c.pending_backfills == 0),
                        _ => None,
                    })
                    .unwrap_or(false)
        },
    )
    .await;
    let end = sim.now();
    let from = start - chrono::Duration::minutes(55);
    collect_until_stored(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        &sim,
        &markets,
        from,
        end,
    )
    .await;
    stop_tx.send(true).unwrap();
    // Read to the end while the supervisor stops (its channel is bounded).
    while let Some(e) = rx.recv().await {
        emits.push(e);
    }
    let counts = run.await.unwrap();

    assert_eq!(counts.reconnects, 0, "{counts:?}");
    assert!(counts.resubscribed_assets >= 2, "{counts:?}");
    assert!(sim.counters().ws.events_withheld > 0);
    let stored = stored_trades(&emits);
    let traded = assert_each_trade_stored_once(&sim, &markets, &stored, from, end);
    assert!(traded[&busy.condition_id] > 1000, "{traded:?}");
    // Through a repair backfill: no gap was opened (a quiet market's flow stays published),
    // and the trades the silence withheld came from the Data API.
    assert!(!controls(&emits[silenced..])
        .iter()
        .any(|c| c["op"] == "gap_opened"));
    assert!(
        stored[..].iter().any(|t| t.source == Source::Backfill
            && t.condition_id == busy.condition_id
            && t.trade_ts >= stalled_at),
        "the busy market's withheld trades were backfilled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_holds_the_shards_back_and_loses_nothing() {
    let sim = polytape_sim::start(sim_config(11), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let busy = sim.truth().markets.into_iter().find(|m| m.busy).unwrap();
    let markets = vec![LiveMarket {
        condition_id: busy.condition_id.clone(),
        tokens: [busy.token_ids[0].clone(), busy.token_ids[1].clone()],
    }];
    // Room for 8 records only, and a consumer that reads nothing for a while.
    let (tx, mut rx) = mpsc::channel(8);
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = sim.now();
    let mut config = config(&sim);
    config.shard_events_capacity = 4;
    let run = tokio::spawn(supervise(
        config,
        Fixed(markets.clone()),
        client_for(&sim),
        tx,
        stop_rx,
    ));
    let mut emits = Vec::new();
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "the busy market's trades heard",
        |emits| {
            stored_trades(emits)
                .iter()
                .filter(|t| t.source == Source::Ws)
                .count()
                > 20
        },
    )
    .await;
    // Not read: the supervisor's room runs out, then the shards' (4 frames here).
    tokio::time::sleep(Duration::from_secs(10)).await;
    collect_until(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        "the shards waited for room",
        |emits| last_counts(emits).is_some_and(|c| c.shard_waits > 0 && c.consumer_waits > 0),
    )
    .await;
    let end = sim.now();
    let from = start - chrono::Duration::minutes(55);
    collect_until_stored(
        &mut rx,
        &mut emits,
        Duration::from_secs(60),
        &sim,
        &markets,
        from,
        end,
    )
    .await;
    stop_tx.send(true).unwrap();
    while let Some(e) = rx.recv().await {
        emits.push(e);
    }
    let counts = run.await.unwrap();

    // Held back, not dropped: every trade once (the wait was not taken for a stall either).
    assert!(
        counts.shard_waits > 0 && counts.shard_wait_ms > 0,
        "{counts:?}"
    );
    assert_eq!(counts.reconnects, 0, "{counts:?}");
    let stored = stored_trades(&emits);
    let traded = assert_each_trade_stored_once(&sim, &markets, &stored, from, end);
    assert!(traded[&busy.condition_id] > 1000, "{traded:?}");
    // Every frame the shards heard went on the tape, in order.
    let seqs: Vec<u64> = emits
        .iter()
        .filter_map(|e| match e {
            Emit::Tape(r) => Some(r.seq),
            _ => None,
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "tape sequence has holes"
    );
}
