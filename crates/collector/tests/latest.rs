//! The Latest values of a tier that ticks more than once a minute (T4), through the real tick
//! handler against the simulator: written once a minute by the minute's first tick, which
//! reads the other ticks back from their files; every tick counted once, late and skipped
//! ticks included; the readers as fresh as the newest tick.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::discover::discover;
use polytape_collector::latest;
use polytape_collector::ledger;
use polytape_collector::snapshot::{snapshot_tick, TickReport};
use polytape_collector::Config;
use polytape_core::ops::{LatestTier, LatestUpdate};
use polytape_core::{TickId, Tier, Ts};
use polytape_store::{keys, parquet, LatestStore, MarketStore, ObjectStore};
use std::collections::BTreeSet;

fn t4(after_s: i64) -> TickId {
    TickId {
        tier: Tier::T4,
        tick_ts: anchor() + chrono::Duration::seconds(after_s),
    }
}

/// Runs `tick` with the fixed clock `late_s` seconds after its time.
async fn run_at(e: &Env, tick: TickId, late_s: i64) -> TickReport {
    run_within(e, tick, late_s, TICK_BUDGET).await
}

/// [`run_at`] with `budget` of wall time before the tick's deadline.
async fn run_within(e: &Env, tick: TickId, late_s: i64, budget: std::time::Duration) -> TickReport {
    e.clock
        .set(tick.tick_ts + chrono::Duration::seconds(late_s));
    snapshot_tick(
        &e.client,
        &e.store,
        tick,
        &e.clock,
        deadline_within(tick, budget),
    )
    .await
    .unwrap()
}

/// A simulated world with 4 markets per tier, discovered, and the T4 ones' condition ids.
async fn t4_world() -> (Env, BTreeSet<String>) {
    let e = env(4, 100).await;
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    let ids: BTreeSet<String> = e
        .store
        .markets_due(Tier::T4, anchor())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.condition_id)
        .collect();
    assert_eq!(ids.len(), 4);
    (e, ids)
}

/// The Latest values the ticks of `ticks` give when each is applied by itself with every
/// market of `ids` as a member (as every tick once was), from the rows in their files.
async fn applied_one_by_one(e: &Env, ids: &BTreeSet<String>, ticks: &[TickId]) -> LatestTier {
    let mut l = LatestTier::empty(Tier::T4);
    for &t in ticks {
        let Some(bytes) = e.store.get_object(&keys::snapshots(&t)).await.unwrap() else {
            continue;
        };
        l.apply(&LatestUpdate {
            tier: Tier::T4,
            tick_ts: t.tick_ts,
            members: ids.iter().cloned().collect(),
            rows: parquet::decode_latest_entries(&bytes).unwrap(),
        });
    }
    l
}

/// (market, count, price, best bid, tick) of each market.
type Seen = Vec<(
    String,
    u64,
    Option<rust_decimal::Decimal>,
    Option<rust_decimal::Decimal>,
    Ts,
)>;

fn seen(l: &LatestTier) -> Seen {
    l.markets
        .iter()
        .map(|m| {
            (
                m.condition_id.clone(),
                m.snapshot_count,
                m.price,
                m.best_bid,
                m.tick_ts,
            )
        })
        .collect()
}

async fn stored(e: &Env) -> LatestTier {
    e.store.get_latest(Tier::T4).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_t4_minute_is_written_once_by_its_first_tick_and_every_tick_is_counted() {
    let (e, ids) = t4_world().await;

    // 10:00:00 writes; 10:00:15, :30 and :45 leave themselves to 10:01:00.
    assert_eq!(run_at(&e, t4(0), 1).await.latest_ticks, 1);
    let first = stored(&e).await;
    for s in [15, 30, 45] {
        let r = run_at(&e, t4(s), 1).await;
        assert_eq!((r.rows, r.latest_ticks), (4, 0), "10:00:{s}");
    }
    assert_eq!(
        stored(&e).await,
        first,
        "nothing written between the minute's ticks"
    );

    // Readers see the newest tick all the same: no market is stale 50 s after the last write
    // (3 intervals are 45 s), and each shows the values of 10:00:45.
    let now = anchor() + chrono::Duration::seconds(50);
    assert_eq!(
        ledger::stale(&e.store, now, &[Tier::T4]).await.unwrap(),
        vec![]
    );
    let ticks: Vec<TickId> = [0, 15, 30, 45].map(t4).to_vec();
    let read = latest::current(&e.store, Tier::T4, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.tick_ts, t4(45).tick_ts);
    assert_eq!(
        seen(&read),
        seen(&applied_one_by_one(&e, &ids, &ticks).await)
    );

    // 10:01:00 writes itself and the three ticks before it: the same values and counts as
    // applying each tick by itself.
    assert_eq!(run_at(&e, t4(60), 1).await.latest_ticks, 4);
    let ticks: Vec<TickId> = [0, 15, 30, 45, 60].map(t4).to_vec();
    let written = stored(&e).await;
    assert_eq!(written.tick_ts, t4(60).tick_ts);
    assert_eq!(
        seen(&written),
        seen(&applied_one_by_one(&e, &ids, &ticks).await)
    );
    assert!(written.markets.iter().all(|m| m.snapshot_count == 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_writing_tick_is_replaced_by_the_next_tick_and_a_late_tick_writes_itself() {
    let (e, ids) = t4_world().await;
    run_at(&e, t4(0), 1).await;
    for s in [15, 30, 45] {
        run_at(&e, t4(s), 1).await;
    }
    // 10:01:00 never runs (a skipped tick writes no file): 10:01:15 finds its minute not
    // written and writes in its place, with the three ticks since the last write.
    let r = run_at(&e, t4(75), 1).await;
    assert_eq!(r.latest_ticks, 4, "itself and 10:00:15, :30, :45");
    assert_eq!(stored(&e).await.tick_ts, t4(75).tick_ts);
    assert_eq!(
        run_at(&e, t4(90), 1).await.latest_ticks,
        0,
        "its minute is written"
    );
    // 10:01:45 ends at 10:01:59, when 10:02:00 may already have read the files back: it
    // writes itself, with the ticks since the last write.
    let late = run_at(&e, t4(105), 14).await;
    assert_eq!(late.latest_ticks, 3, "itself, 10:01:15 and 10:01:30");
    let written = stored(&e).await;
    assert_eq!(written.tick_ts, t4(105).tick_ts);
    assert!(
        written.markets.iter().all(|m| m.snapshot_count == 7),
        "{written:?}"
    );

    // 10:02:00 reads back its minute again: each tick counted once.
    assert_eq!(run_at(&e, t4(120), 1).await.latest_ticks, 4);
    let ticks: Vec<TickId> = [0, 15, 30, 45, 60, 75, 90, 105, 120].map(t4).to_vec();
    let written = stored(&e).await;
    assert_eq!(
        seen(&written),
        seen(&applied_one_by_one(&e, &ids, &ticks).await)
    );
    assert!(written.markets.iter().all(|m| m.snapshot_count == 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markets_no_tick_observed_since_the_last_write_are_stale_before_the_next_write() {
    let (e, ids) = t4_world().await;
    let ids: Vec<String> = ids.into_iter().collect();
    run_at(&e, t4(0), 1).await;
    // 10:00:15, :30 and :45 observe nothing (every request naming the markets fails).
    e.sim.fail_markets(&ids);
    for s in [15, 30, 45] {
        let r = run_within(&e, t4(s), 1, FAILING_TICK_BUDGET).await;
        assert_eq!((r.rows, r.latest_ticks), (0, 0), "10:00:{s}");
    }
    e.sim.heal_markets();
    // 50 s after their last sample (10:00:00), more than 3 intervals: stale, as they were when
    // every tick wrote the Latest values; healthy ticks make none stale (the test above).
    let stale = ledger::stale(
        &e.store,
        anchor() + chrono::Duration::seconds(50),
        &[Tier::T4],
    )
    .await
    .unwrap();
    assert_eq!(
        stale
            .iter()
            .map(|s| (s.condition_id.clone(), s.age_s))
            .collect::<Vec<_>>(),
        ids.iter().map(|id| (id.clone(), 50)).collect::<Vec<_>>(),
    );
    assert_eq!(
        ledger::stale(
            &e.store,
            anchor() + chrono::Duration::seconds(44),
            &[Tier::T4]
        )
        .await
        .unwrap(),
        vec![],
        "44 s is under 3 intervals"
    );
}
