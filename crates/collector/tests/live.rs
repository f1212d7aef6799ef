//! The live feed end to end on the local path: the feed over real sockets against the
//! simulator (with an abrupt drop, a stall, duplicated and size-less events), its messages
//! stored by the trades consumer's handler, the tape replayed to the same trades, and the
//! snapshot ticks of the WebSocket tiers filling the flow columns.

#![allow(clippy::unwrap_used)] // test set-up: a failure should fail the test loudly

mod common;

use common::{client_for, column};
use polytape_collector::discover::discover;
use polytape_collector::live::{run_feed, store_message, FeedFiles, FeedStatus, StoreSink};
use polytape_collector::snapshot::{snapshot_tick, TickDeadline};
use polytape_collector::{Config, FixedClock, HandlerError};
use polytape_core::live::{FlowObject, StoredTrade, TapeKind, TapeRecord};
use polytape_core::{TickId, Tier};
use polytape_feed::queue::{Packer, Record};
use polytape_feed::supervisor::SupervisorConfig;
use polytape_sim::SimConfig;
use polytape_store::{keys, parquet, HeartbeatStore, LocalStore, ObjectStore};
use std::collections::BTreeMap;
use std::time::Duration;

fn feed_config(ws: &str) -> SupervisorConfig {
    let mut c = SupervisorConfig::new(ws);
    c.follow_every = Duration::from_secs(1);
    c.stagger = Duration::from_millis(20);
    c.publish_every = Duration::from_millis(500);
    c.heartbeat_every = Duration::from_millis(500);
    c.backfill_delay = Duration::ZERO;
    c.settle = Duration::from_secs(1);
    c.size_lookup_every = Duration::from_secs(1);
    c.shard.ping_every = Duration::from_millis(500);
    c.shard.dead_after = Duration::from_secs(3);
    c.shard.stall_after = Duration::from_secs(2);
    c.shard.backoff_min = Duration::from_millis(100);
    c.shard.backoff_max = Duration::from_millis(500);
    c
}

async fn stored_trades(store: &LocalStore) -> Vec<StoredTrade> {
    let mut out = Vec::new();
    for key in store.list_objects("trades/").await.unwrap() {
        let bytes = store.get_object(&key).await.unwrap().unwrap();
        out.extend(parquet::decode_trades(&bytes).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_feed_run_is_stored_once_replays_exactly_and_fills_the_flow_columns() {
    let mut cfg = SimConfig::new(11);
    cfg.markets_per_tier = 4;
    cfg.now = chrono::Utc::now();
    cfg.ws_missing_size = 0.1;
    cfg.ws_duplicate_trades = 0.1;
    let sim = polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = client_for(&sim, 100);
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let clock = FixedClock::new(sim.now());
    discover(&client, &store, &Config::default(), &clock)
        .await
        .unwrap();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let status = FeedStatus::default();
    let frames = dir.path().join("frames.jsonl");
    let feed = {
        let (store, client, status) = (store.clone(), client.clone(), status.clone());
        let config = feed_config(&sim.ws_url());
        let out = std::io::BufWriter::new(std::fs::File::create(&frames).unwrap());
        let spool = dir.path().join(".spool").join("tape");
        tokio::spawn(async move {
            let sink = StoreSink(store.clone());
            run_feed(
                store,
                &sink,
                client,
                config,
                stop_rx,
                status,
                FeedFiles {
                    tape_spool: spool,
                    frames_out: Some(out),
                },
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    sim.drop_ws_connections();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.stall_ws();
    tokio::time::sleep(Duration::from_secs(5)).await;

    // A T4 tick now joins the newest flow: every covered market's row has its flow values.
    // The feed keeps publishing meanwhile (a backfill after the stall can still add trades):
    // the tick is compared with the flow values it read, known when they are the same just
    // before and just after it; otherwise the next tick is made.
    let read_flow = || async {
        let bytes = store.get_object(keys::LIVE_FLOW).await.unwrap().unwrap();
        serde_json::from_slice::<FlowObject>(&bytes).unwrap()
    };
    let (mut last_tick, mut attempts) = (None, 0);
    let (flow, report) = loop {
        let tick = TickId::floor(Tier::T4, sim.now());
        if last_tick == Some(tick) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        last_tick = Some(tick);
        let before = read_flow().await;
        let report = snapshot_tick(
            &client,
            &store,
            tick,
            &FixedClock::new(tick.tick_ts),
            TickDeadline::of(tick, None, Config::default().tick_margin),
        )
        .await
        .unwrap();
        if read_flow().await.markets == before.markets {
            break (before, report);
        }
        attempts += 1;
        assert!(
            attempts < 8,
            "the flow values changed during each of 8 ticks"
        );
    };
    assert!(!flow.markets.is_empty());
    assert!(report.with_flow > 0, "{report:?}");
    let rows = common::read_parquet(&dir.path().join(report.snapshot_key.clone().unwrap()));
    let mut with_flow = 0;
    for b in &rows {
        let ids = column(b, "condition_id");
        let ids = arrow_array::cast::AsArray::as_string::<i32>(ids);
        let counts = column(b, "trade_count_1h");
        for i in 0..b.num_rows() {
            let covered = flow.markets.get(ids.value(i));
            assert_eq!(
                !counts.is_null(i),
                covered.is_some(),
                "{}: flow columns set exactly for covered markets",
                ids.value(i)
            );
            if let Some(f) = covered {
                let n = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int32Type>(
                    counts,
                )
                .value(i);
                assert_eq!(n as u32, f.trade_count_1h);
                with_flow += 1;
            }
        }
    }
    assert_eq!(with_flow, report.with_flow);

    stop_tx.send(true).unwrap();
    let counts = feed.await.unwrap();
    // (The markets here trade a few times a minute: most trades come from the warm-up hour.)
    assert!(
        counts.reconnects > 0 && counts.feed.trades_ws + counts.feed.trades_backfill > 0,
        "{counts:?}"
    );

    // Each heartbeat round was one write of every open shard's; the stop wrote none, so the
    // last round stays (a feed that stays stopped goes stale in health's `ws_<shard>`).
    let beats = store.heartbeats().await.unwrap();
    assert!(
        !beats.is_empty() && beats.len() as u32 == counts.shards,
        "{beats:?} {counts:?}"
    );
    assert!(beats.windows(2).all(|w| w[0].at == w[1].at), "{beats:?}");

    // Stored once: no trade key twice across the consumer's files, and as many as the feed made.
    let trades = stored_trades(&store).await;
    let by_key: BTreeMap<&str, usize> = trades.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.trade_key.as_str()).or_default() += 1;
        m
    });
    assert!(by_key.values().all(|n| *n == 1));
    assert_eq!(
        trades.len() as u64,
        counts.feed.trades_ws + counts.feed.trades_backfill
    );

    // The raw tape alone rebuilds the table exactly.
    let replayed = polytape_collector::replay::replay(&store).await.unwrap();
    assert!(replayed.identical(), "{replayed:?}");
    assert_eq!(replayed.rebuilt, trades.len());

    // The recorded frames are the tape's frames, one JSON string per line.
    let recorded: Vec<String> = std::fs::read_to_string(&frames)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The tape is the feed's own: one object per 5-minute window of the run (this run is
    // 12 s, so one, or two across a window's end), all written at the stop, none given up;
    // it never went through the messages (the consumer wrote trades and whale events only).
    let tape_keys = store.list_objects("raw_ws/").await.unwrap();
    assert!(
        (1..=2).contains(&tape_keys.len()) && counts.tape_objects == tape_keys.len() as u64,
        "{tape_keys:?} {counts:?}"
    );
    assert_eq!(counts.lost_tape_objects, 0);
    assert!(
        tape_keys.iter().all(|k| k.contains("-0-")),
        "a tape object is keyed by the run, shard 0 and its first sequence: {tape_keys:?}"
    );
    let mut tape_frames = 0;
    for key in store.list_objects("raw_ws/").await.unwrap() {
        let bytes = store.get_object(&key).await.unwrap().unwrap();
        tape_frames += parquet::decode_tape(&bytes)
            .unwrap()
            .iter()
            .filter(|r| r.kind == TapeKind::Frame)
            .count();
    }
    assert_eq!(recorded.len(), tape_frames);
    // The tape went through its spool on local disk, which the stop left empty.
    let spooled: Vec<_> = std::fs::read_dir(dir.path().join(".spool").join("tape"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(spooled.is_empty(), "{spooled:?}");
}

fn tape(seq: u64) -> Record {
    Record::Tape(TapeRecord {
        run: 5,
        shard: 1,
        seq,
        received_at: "2026-11-20T12:00:00Z".parse().unwrap(),
        kind: TapeKind::Frame,
        part: 0,
        parts: 1,
        text: format!("[{seq}]"),
    })
}

#[tokio::test]
async fn the_consumer_stores_good_records_skips_bad_ones_refuses_poison_and_overwrites_on_redelivery(
) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut packer = Packer::new(5, 200_000, Duration::ZERO);
    for i in 1..=3 {
        assert!(packer.push(&tape(i), 0).is_empty());
    }
    let message = packer.take().unwrap();
    // One more line that is not a record: skipped and counted, the others stored.
    let body = format!("{}\n{{\"trade\":{{\"price\":\"x\"}}}}", message.body);
    let first = store_message(&store, &body).await.unwrap();
    assert_eq!((first.tape, first.bad_records), (3, 1));
    let files = store.list_objects("raw_ws/").await.unwrap();
    assert_eq!(files, first.keys);
    // Delivered again: the same keys, nothing added.
    let again = store_message(&store, &body).await.unwrap();
    assert_eq!(again.keys, first.keys);
    assert_eq!(store.list_objects("raw_ws/").await.unwrap(), files);
    let bytes = store.get_object(&files[0]).await.unwrap().unwrap();
    assert_eq!(parquet::decode_tape(&bytes).unwrap().len(), 3);
    // Not a feed message at all: a poison message, not retryable.
    let err = store_message(&store, "{\"Records\":[]}").await.unwrap_err();
    assert!(matches!(err, HandlerError::Input(_)), "{err}");
    assert!(!err.is_retryable());
}
