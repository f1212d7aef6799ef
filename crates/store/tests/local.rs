//! LocalStore against the port contracts, plus what only the local adapter promises:
//! state survives a reopen, task runs expire, writes are atomic and keys stay inside the
//! data directory.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

use polytape_core::ops::{Coverage, LatestUpdate, TaskStatus};
use polytape_core::Tier;
use polytape_store::contract::{self, at, market, task_run};
use polytape_store::{
    CoverageStore, LatestStore, LocalQueue, LocalStore, MarketStore, ObjectStore, TaskStore,
};

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(&dir.path().join("data")).unwrap();
    (dir, s)
}

#[tokio::test]
async fn local_store_passes_the_market_contract() {
    let (_d, s) = store();
    contract::market_store_contract(&s).await;
}

#[tokio::test]
async fn local_store_passes_the_latest_contract() {
    let (_d, s) = store();
    contract::latest_store_contract(&s).await;
}

#[tokio::test]
async fn local_store_passes_the_ops_contract() {
    let (_d, s) = store();
    contract::ops_store_contract(&s).await;
}

#[tokio::test]
async fn local_store_passes_the_object_contract() {
    let (_d, s) = store();
    contract::object_store_contract(&s).await;
    contract::object_deleter_contract(&s).await;
}

#[tokio::test(start_paused = true)]
async fn local_queue_passes_the_tick_queue_contract_with_measured_delays() {
    let (q, rx) = LocalQueue::new();
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    contract::tick_queue_contract(&q, |n| {
        let rx = std::sync::Arc::clone(&rx);
        async move {
            // Time is paused: each tick arrives exactly when its timer fires, so the elapsed
            // time since the enqueue is the delay the queue applied.
            let started = tokio::time::Instant::now();
            let mut rx = rx.lock().await;
            let mut got = Vec::new();
            for _ in 0..n {
                let tick = rx.recv().await.unwrap();
                got.push((tick, u32::try_from(started.elapsed().as_secs()).unwrap()));
            }
            got
        }
    })
    .await;
    assert_eq!(q.sent().len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_passes_every_contract_on_one_handle_from_a_spawned_task() {
    let (_d, s) = store();
    // Spawning needs every port future to be Send, as a Lambda handler on tokio needs.
    tokio::spawn(async move { contract::all(&s).await })
        .await
        .unwrap();
}

#[tokio::test]
async fn given_state_and_objects_when_reopened_then_everything_is_still_there() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(9, Some(Tier::T4), true);
    let latest = LatestUpdate {
        tier: Tier::T4,
        tick_ts: at("2026-11-20T17:59:45Z"),
        members: vec![],
        rows: vec![],
    };
    let run = task_run(
        "20261120T175945Z#snapshot#T4",
        "2026-11-20T17:59:45Z",
        TaskStatus::Ok,
        1,
    );
    let cov = Coverage {
        tier: Tier::T4,
        tick_ts: at("2026-11-20T17:59:45Z"),
        expected: 3,
        written: 3,
        missing: 0,
        skipped: false,
        failed: false,
    };
    {
        let s = LocalStore::open(dir.path()).unwrap();
        s.write_markets(std::slice::from_ref(&m)).await.unwrap();
        s.apply_latest(std::slice::from_ref(&latest)).await.unwrap();
        s.put_task_run(&run).await.unwrap();
        s.put_coverage(&cov).await.unwrap();
        s.put_object("a/b.parquet", vec![1, 2, 3], "application/octet-stream")
            .await
            .unwrap();
    }
    let s = LocalStore::open(dir.path()).unwrap();
    assert_eq!(s.data_dir(), dir.path());
    let m = polytape_core::Market { version: 1, ..m };
    assert_eq!(
        s.markets_due(Tier::T4, at("2026-11-20T17:30:00Z"))
            .await
            .unwrap(),
        vec![m]
    );
    assert_eq!(
        s.get_latest(Tier::T4).await.unwrap().map(|l| l.tick_ts),
        Some(latest.tick_ts)
    );
    assert_eq!(
        s.task_runs_since(at("2026-11-20T00:00:00Z")).await.unwrap(),
        vec![run]
    );
    assert_eq!(
        s.coverage_since(at("2026-11-20T00:00:00Z")).await.unwrap(),
        vec![cov]
    );
    assert_eq!(
        s.get_object("a/b.parquet").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        s.list_objects("").await.unwrap(),
        vec!["a/b.parquet"],
        "the state database is not an object"
    );
}

#[tokio::test]
async fn given_runs_older_than_7_days_when_a_run_is_written_then_they_expire() {
    let (_d, s) = store();
    let old = task_run(
        "20261101T000000Z#discovery",
        "2026-11-01T00:00:00Z",
        TaskStatus::Ok,
        1,
    );
    let six_days = task_run(
        "20261102T000000Z#discovery",
        "2026-11-02T00:00:00Z",
        TaskStatus::Ok,
        1,
    );
    let now = task_run(
        "20261108T000000Z#discovery",
        "2026-11-08T00:00:00Z",
        TaskStatus::Ok,
        1,
    );
    for r in [&old, &six_days, &now] {
        s.put_task_run(r).await.unwrap();
    }
    assert_eq!(
        s.task_runs_since(at("2026-10-01T00:00:00Z")).await.unwrap(),
        vec![now, six_days],
        "the run started exactly 7 days before the newest one expired"
    );
}

#[tokio::test]
async fn given_a_key_outside_the_data_dir_then_put_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(&dir.path().join("data")).unwrap();
    for key in ["../escape", "/abs", "state.sqlite", "a/./b", "a//b"] {
        let err = s.put_object(key, vec![1], "x").await.unwrap_err();
        assert!(!err.is_retryable(), "{key}: {err}");
    }
    assert!(!dir.path().join("escape").exists());
    assert_eq!(s.list_objects("").await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_concurrent_writers_on_clones_then_every_write_lands_and_no_temp_file_remains() {
    let (_d, s) = store();
    let mut tasks = Vec::new();
    for n in 0..16u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.write_markets(&[market(n, Some(Tier::T1), true)])
                .await
                .unwrap();
            // Overlapping ticks of one tier: each must be counted.
            s.apply_latest(&[LatestUpdate {
                tier: Tier::T4,
                tick_ts: at("2026-11-20T12:00:00Z") + chrono::Duration::seconds(15 * i64::from(n)),
                members: vec!["0xa".into()],
                rows: vec![contract_entry("0xa")],
            }])
            .await
            .unwrap();
            // Every writer replaces the same key too: the last rename wins whole.
            s.put_object("shared/obj", vec![n as u8; 4096], "x")
                .await
                .unwrap();
            s.put_object(&format!("own/{n:02}"), vec![n as u8], "x")
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.active_markets().await.unwrap().len(), 16);
    let latest = s.get_latest(Tier::T4).await.unwrap().unwrap();
    assert_eq!(
        latest.markets[0].snapshot_count, 16,
        "16 overlapping ticks, in whatever order they landed, each counted once"
    );
    let shared = s.get_object("shared/obj").await.unwrap().unwrap();
    assert_eq!(shared.len(), 4096);
    assert!(
        shared.iter().all(|b| *b == shared[0]),
        "one writer's bytes, not a mix"
    );
    assert_eq!(s.list_objects("own/").await.unwrap().len(), 16);
    let leftovers: Vec<_> = std::fs::read_dir(s.data_dir().join("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("obj")]);
}

#[tokio::test]
async fn given_the_state_database_then_it_is_in_wal_mode() {
    let (_d, s) = store();
    s.write_markets(&[market(1, Some(Tier::T0), true)])
        .await
        .unwrap();
    let conn = rusqlite_open(&s.data_dir().join("state.sqlite"));
    assert_eq!(conn, "wal");
}

fn rusqlite_open(path: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .unwrap()
}

fn contract_entry(id: &str) -> polytape_core::ops::LatestEntry {
    polytape_core::ops::LatestEntry {
        condition_id: id.to_string(),
        price: None,
        best_bid: None,
        best_ask: None,
        spread: None,
        volume_24h: None,
        tick_ts: at("2026-11-20T00:00:00Z"),
        snapshot_count: 0,
        counted: 0,
    }
}

#[tokio::test]
async fn given_a_database_from_before_versions_when_opened_then_its_markets_are_stored_version_1() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The first release's markets, task_runs and coverage tables, with one market.
        let c = rusqlite::Connection::open(dir.path().join("state.sqlite")).unwrap();
        c.execute_batch(
            "CREATE TABLE markets (condition_id TEXT PRIMARY KEY, question TEXT NOT NULL, \
             slug TEXT, yes_token_id TEXT NOT NULL, no_token_id TEXT NOT NULL, \
             outcome_0 TEXT NOT NULL, outcome_1 TEXT NOT NULL, end_date INTEGER NOT NULL, \
             tier INTEGER, active INTEGER NOT NULL, resolved INTEGER NOT NULL, outcome TEXT, \
             first_seen INTEGER NOT NULL, category TEXT, neg_risk INTEGER NOT NULL, \
             volume_24h TEXT) WITHOUT ROWID;
             CREATE INDEX markets_active_tier ON markets (active, tier, condition_id);
             CREATE TABLE task_runs (id TEXT PRIMARY KEY, task TEXT NOT NULL, \
             started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL, status TEXT NOT NULL, \
             detail TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE coverage (tier INTEGER NOT NULL, tick_ts INTEGER NOT NULL, \
             expected INTEGER NOT NULL, written INTEGER NOT NULL, missing INTEGER NOT NULL, \
             skipped INTEGER NOT NULL, PRIMARY KEY (tier, tick_ts)) WITHOUT ROWID;
             INSERT INTO markets VALUES ('0xold', 'Q?', NULL, '11', '12', 'Yes', 'No', \
             1763661600000, 2, 1, 0, NULL, 1763600000000, NULL, 0, NULL);",
        )
        .unwrap();
    }
    let s = LocalStore::open(dir.path()).unwrap();
    let old = s.get_market("0xold").await.unwrap().unwrap();
    assert_eq!(old.version, 1, "an existing row is a stored market");
    assert_eq!(
        (&old.event_id, old.fees_enabled, old.fee),
        (&None, None, None),
        "event and fees were not known then"
    );
    let fee = polytape_core::FeeSchedule {
        rate: "0.03".parse().unwrap(),
        exponent: 1,
        rebate_rate: Some("0.25".parse().unwrap()),
        taker_only: true,
    };
    let closed = polytape_core::Market {
        active: false,
        event_id: Some("346898".into()),
        fees_enabled: Some(true),
        fee: Some(fee),
        ..old
    };
    assert_eq!(
        s.write_markets(std::slice::from_ref(&closed))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    let read = s.get_market("0xold").await.unwrap().unwrap();
    assert!(!read.active);
    assert_eq!(
        read,
        polytape_core::Market {
            version: 2,
            ..closed
        },
        "the added columns hold the event and the fee schedule"
    );
    contract::ops_store_contract(&s).await;
}
