//! The supervisor over real sockets against the simulator, compared with its truth: every trade
//! of a followed market is stored exactly once across an abrupt drop, a silent stall, duplicated
//! events, events without a size, malformed frames and unknown events; no shard holds more than
//! its size; and the flow of a covered market equals the truth's.
#![allow(clippy::unwrap_used)]

use polytape_core::live::Source;
use polytape_core::{FlowTrade, Side, TradeFlow};
use polytape_feed::supervisor::{supervise, Emit, LiveMarket, MarketSource, SupervisorConfig};
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

fn config(sim: &SimHandle) -> SupervisorConfig {
    let mut c = SupervisorConfig::new(sim.ws_url());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trade_is_stored_once_across_a_drop_and_a_stall_and_flow_matches_the_truth() {
    let mut cfg = SimConfig::new(7);
    cfg.markets_per_tier = 3;
    cfg.now = chrono::Utc::now();
    cfg.ws_missing_size = 0.1;
    cfg.ws_duplicate_trades = 0.1;
    cfg.busy_markets = 1;
    let sim = polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let markets = live_markets(&sim);
    assert!(markets.len() >= 6, "{} markets", markets.len());
    let (tx, mut rx) = mpsc::unbounded_channel();
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
    let mut collect = |rx: &mut mpsc::UnboundedReceiver<Emit>| {
        while let Ok(e) = rx.try_recv() {
            emits.push(e);
        }
    };
    sim.inject_ws_malformed(3);
    sim.inject_ws_unknown(3);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let dropped_at = sim.now();
    let dropped = sim.drop_ws_connections();
    assert!(dropped >= 1, "{dropped} connections dropped");
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.stall_ws();
    // Noticed after 2 s without events, reconnected, the gap backfilled.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let end = sim.now() - chrono::Duration::seconds(2);
    stop_tx.send(true).unwrap();
    let counts = run.await.unwrap();
    collect(&mut rx);

    let stored: Vec<_> = emits
        .iter()
        .filter_map(|e| match e {
            Emit::Output(Output::Trade(t)) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
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
        if let Emit::Heartbeat(h) = e {
            assert!(h.assets <= 6, "{h:?}");
        }
    }

    // From the warm-up hour to shortly before the stop, per market: the stored fills are the
    // truth's, each once. Compared by whole seconds, as backfilled trades carry block seconds.
    let second = |t: chrono::DateTime<chrono::Utc>| t.timestamp();
    let (from_s, end_s) = (second(start - chrono::Duration::minutes(55)), second(end));
    let from = chrono::DateTime::from_timestamp(from_s, 0).unwrap();
    for m in &markets {
        let truth: Vec<TruthTrade> = sim
            .trades(&m.condition_id, from, end + chrono::Duration::seconds(1))
            .into_iter()
            .filter(|t| (from_s..=end_s).contains(&t.ms.div_euclid(1000)))
            .collect();
        let want = count(truth.iter().map(truth_fill));
        let sizeless: Vec<_> = stored
            .iter()
            .filter(|t| t.condition_id == m.condition_id && t.size.is_none())
            .filter(|t| (from_s..=end_s).contains(&second(t.trade_ts)))
            .map(|t| (t.trade_ts, t.received_at, t.transaction_hash.clone()))
            .collect();
        assert!(
            sizeless.is_empty(),
            "stored without a size: {sizeless:?} (end {end})"
        );
        let got = count(
            stored
                .iter()
                .filter(|t| t.condition_id == m.condition_id)
                .filter(|t| (from_s..=end_s).contains(&second(t.trade_ts)))
                .map(|t| {
                    (
                        t.token_id.clone(),
                        t.transaction_hash.clone().unwrap_or_default(),
                        t.side,
                        t.price,
                        t.size.unwrap(),
                    )
                }),
        );
        assert!(!want.is_empty(), "{} traded", m.condition_id);
        let missing: Vec<_> = truth
            .iter()
            .filter(|t| got.get(&truth_fill(t)).copied().unwrap_or(0) < want[&truth_fill(t)])
            .map(|t| (t.ms, t.transaction_hash.clone()))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|(f, n)| want.get(*f).copied().unwrap_or(0) < **n)
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "market {}: {} stored, {} in the truth; missing (first 5) {missing:?}; extra {extra:?}",
            m.condition_id,
            got.values().sum::<usize>(),
            want.values().sum::<usize>(),
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
        let want = TradeFlow::over(&known, at);
        assert_eq!(
            flow.markets[&m.condition_id], want,
            "flow of {}",
            m.condition_id
        );
        assert!(want.trade_count_1h > 0);
    }
}
