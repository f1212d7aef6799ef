//! The compaction duty through maintenance, on the local store: it runs in the first
//! maintenance run and then hourly, sooner again while it has hours left over, with backoff
//! after a failure; each run is a task run of `compaction`; a held lease keeps a second run out.
//! (What compaction does to the files, crash by crash, is `polytape-store`'s compaction test.)

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::{anchor, env};
use polytape_collector::{compaction, maintenance, Clock, Config};
use polytape_core::ops::TaskStatus;
use polytape_core::{Snapshot, TickId, Tier, Ts};
use polytape_store::parquet::{encode_snapshots, CONTENT_TYPE};
use polytape_store::{keys, ObjectStore, TaskStore};
use std::time::Duration;

fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

/// A T4 tick file at `ts` with one row.
async fn tick(store: &impl ObjectStore, ts: &str) -> String {
    let tick = TickId {
        tier: Tier::T4,
        tick_ts: at(ts),
    };
    let row = Snapshot {
        snapshot_ts: tick.tick_ts,
        fetched_at: tick.tick_ts,
        condition_id: "0x01".into(),
        token_id: "11".into(),
        interval_s: 15,
        ..Snapshot::default()
    };
    let key = keys::snapshots(&tick);
    store
        .put_object(&key, encode_snapshots(&[row]).unwrap().bytes, CONTENT_TYPE)
        .await
        .unwrap();
    key
}

/// The scenarios' settle time is 20 minutes (the default's value is checked on its own).
fn config() -> Config {
    let mut cfg = Config::default();
    cfg.compaction.delete_after = Duration::from_secs(0);
    cfg.compaction.settle = Duration::from_secs(1200);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_closed_hour_then_maintenance_compacts_it_and_compaction_runs_hourly_after() {
    let e = env(2, 100).await;
    let cfg = config();
    // Hour 09 of the simulated day; maintenance at 10:25, past 10:00 + 20 min of settle.
    let a = tick(&e.store, "2026-11-20T09:00:15Z").await;
    let b = tick(&e.store, "2026-11-20T09:59:45Z").await;
    let open = tick(&e.store, "2026-11-20T10:00:00Z").await;
    e.clock.set(anchor() + chrono::Duration::minutes(25));
    let r = maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    let c = r.compaction.expect("the first maintenance run compacts");
    assert_eq!(
        (c.hours_compacted, c.rows, c.sources_deleted),
        (1, 2, 2),
        "{c:?}"
    );
    let listed = e.store.list_objects("snapshots/").await.unwrap();
    assert!(!listed.contains(&a) && !listed.contains(&b) && listed.contains(&open));
    assert!(listed
        .contains(&"snapshots/tier=4/dt=2026-11-20/20261120T09.compacted.parquet".to_string()));
    let state = e.store.task_state(compaction::TASK).await.unwrap().unwrap();
    assert_eq!(state.last_status, Some(TaskStatus::Ok));
    assert!(
        state.lease_until.is_none_or(|l| l <= e.clock.now()),
        "the lease is released"
    );
    let runs = e.store.task_runs_since(anchor()).await.unwrap();
    let run = runs.iter().find(|r| r.task == compaction::TASK).unwrap();
    assert_eq!(run.detail["hours_compacted"], 1, "{run:?}");

    // 10:30: not due. 11:25: due (hourly), and hour 10 is past its settle time.
    e.clock.set(anchor() + chrono::Duration::minutes(30));
    let r = maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    assert!(r.compaction.is_none(), "hourly: {r:?}");
    assert_eq!(r.compaction_lag_s, 0, "caught up, and said so: {r:?}");
    assert_eq!(r.metrics(0)["CompactionLagSeconds"], 0);
    e.clock.set(anchor() + chrono::Duration::minutes(85));
    let r = maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    assert_eq!(r.compaction.unwrap().hours_compacted, 1);

    // A compactor that stops running (here: a lease that is never released): maintenance
    // still prints the lag, growing. At 13:30, hour 11 (past its settle time since 12:20) has
    // waited since 12:00.
    let stuck = anchor() + chrono::Duration::minutes(200);
    assert!(e
        .store
        .claim_task(compaction::TASK, stuck, stuck + chrono::Duration::hours(5))
        .await
        .unwrap());
    e.clock.set(anchor() + chrono::Duration::minutes(210));
    let r = maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    assert!(r.compaction.is_none(), "{r:?}");
    assert_eq!(r.compaction_lag_s, 90 * 60, "{r:?}");
    assert_eq!(r.metrics(0)["CompactionLagSeconds"], 90 * 60);
}

#[tokio::test]
async fn given_no_time_left_then_the_run_is_partial_and_the_next_maintenance_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = polytape_store::LocalStore::open(dir.path()).unwrap();
    tick(&store, "2026-11-20T09:00:15Z").await;
    let clock = polytape_collector::FixedClock::new(at("2026-11-20T10:25:00Z"));
    let cfg = config();
    // In Lambda: the invocation's end is already here.
    let r = compaction::run_if_due(&store, &cfg, &clock, Some(clock.now()))
        .await
        .unwrap()
        .unwrap();
    assert!(r.stopped_early && r.hours_compacted == 0, "{r:?}");
    assert_eq!(r.lag_s, 25 * 60, "since 10:00");
    let state = store.task_state(compaction::TASK).await.unwrap().unwrap();
    assert_eq!(state.last_status, Some(TaskStatus::Partial));
    // Five minutes later, not an hour: hours are left over.
    clock.set(at("2026-11-20T10:30:00Z"));
    let r = compaction::run_if_due(&store, &cfg, &clock, None)
        .await
        .unwrap()
        .expect("due again while hours are left");
    assert_eq!((r.hours_compacted, r.lag_s), (1, 0), "{r:?}");
    clock.set(at("2026-11-20T10:35:00Z"));
    assert!(compaction::run_if_due(&store, &cfg, &clock, None)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn given_a_failing_hour_then_the_run_is_failed_with_its_error_and_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = polytape_store::LocalStore::open(dir.path()).unwrap();
    let bad = "snapshots/tier=4/dt=2026-11-20/20261120T090015Z.parquet";
    store
        .put_object(bad, b"not parquet".to_vec(), CONTENT_TYPE)
        .await
        .unwrap();
    let clock = polytape_collector::FixedClock::new(at("2026-11-20T10:25:00Z"));
    let cfg = config();
    let r = compaction::run_if_due(&store, &cfg, &clock, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.errors.len(), 1);
    let state = store.task_state(compaction::TASK).await.unwrap().unwrap();
    assert_eq!(
        (state.last_status, state.consecutive_failures),
        (Some(TaskStatus::Failed), 1)
    );
    assert!(state.last_error.unwrap().contains(bad));
    // The first retry waits 30 s.
    clock.set(at("2026-11-20T10:25:20Z"));
    assert!(compaction::run_if_due(&store, &cfg, &clock, None)
        .await
        .unwrap()
        .is_none());
    clock.set(at("2026-11-20T10:25:31Z"));
    assert!(compaction::run_if_due(&store, &cfg, &clock, None)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn given_a_run_holding_the_lease_then_no_second_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = polytape_store::LocalStore::open(dir.path()).unwrap();
    tick(&store, "2026-11-20T09:00:15Z").await;
    let now = at("2026-11-20T10:25:00Z");
    assert!(store
        .claim_task(compaction::TASK, now, now + chrono::Duration::minutes(10))
        .await
        .unwrap());
    let clock = polytape_collector::FixedClock::new(now + chrono::Duration::minutes(1));
    assert!(compaction::run_if_due(&store, &config(), &clock, None)
        .await
        .unwrap()
        .is_none());
}

#[test]
fn given_a_budget_and_an_invocation_end_then_the_run_stops_at_the_earlier() {
    let now = at("2026-11-20T10:25:00Z");
    let cfg = Config::default();
    assert_eq!(
        compaction::options(&cfg, now, None).stop_at,
        Some(now + chrono::Duration::seconds(60))
    );
    let end = now + chrono::Duration::seconds(30);
    let o = compaction::options(&cfg, now, Some(end));
    assert_eq!(o.stop_at, Some(end));
    assert_eq!(o.settle, Duration::from_secs(3000));
}
