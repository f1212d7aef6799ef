//! The code paths the Lambda functions wrap, on the local adapters: the minute's dispatch, one
//! tick per queue message with its failure modes, and the status API over the stores alone.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::discover::discover;
use polytape_collector::dispatch::{dispatch_minute, run_tick_message, TickMessageError};
use polytape_collector::{status, Config};
use polytape_core::{TickId, Tier};
use polytape_sim::{Endpoint, Fault, FaultKind};
use polytape_store::{queue, LocalQueue, MarketStore};

#[tokio::test]
async fn the_dispatcher_enqueues_exactly_the_minutes_ticks_with_their_delays() {
    let (q, _rx) = LocalQueue::new();
    let dir = tempfile::tempdir().unwrap();
    let store = polytape_store::LocalStore::open(dir.path()).unwrap();
    // 10:05: T1 (every 5 min), T2, T3 ×2, T4 ×4 — no T0 (hourly); dispatched on time.
    let minute: polytape_core::Ts = "2026-11-20T10:05:00Z".parse().unwrap();
    let ticks = dispatch_minute(&q, &store, minute, minute).await.unwrap();
    let sent: Vec<(Tier, String, u32)> = q
        .sent()
        .into_iter()
        .map(|(t, d)| (t.tier, t.tick_ts.format("%H:%M:%S").to_string(), d))
        .collect();
    let expect = |t, s: &str, d| (t, s.to_string(), d);
    assert_eq!(
        sent,
        vec![
            expect(Tier::T1, "10:05:00", 0),
            expect(Tier::T2, "10:05:00", 0),
            expect(Tier::T3, "10:05:00", 0),
            expect(Tier::T4, "10:05:00", 0),
            expect(Tier::T4, "10:05:15", 15),
            expect(Tier::T3, "10:05:30", 30),
            expect(Tier::T4, "10:05:30", 30),
            expect(Tier::T4, "10:05:45", 45),
        ]
    );
    assert_eq!(ticks.len(), 8);

    // Dispatched 10 s late (a slow start): each tick still arrives at its own second.
    let (late, _rx) = LocalQueue::new();
    dispatch_minute(
        &late,
        &store,
        minute,
        minute + chrono::Duration::seconds(10),
    )
    .await
    .unwrap();
    let delays: Vec<u32> = late.sent().into_iter().map(|(_, d)| d).collect();
    assert_eq!(delays, vec![0, 0, 0, 0, 5, 20, 20, 35]);
    let runs = polytape_store::TaskStore::task_runs_since(&store, minute)
        .await
        .unwrap();
    assert_eq!(
        (runs.len(), runs[0].task.as_str(), runs[0].status),
        (1, "dispatch", polytape_core::ops::TaskStatus::Ok),
        "one dispatch run per minute, the late one replacing the first"
    );

    // Dispatched 400 ms into the minute (a Lambda's usual start): delays round up, so the tick
    // at :15 waits 15 s and arrives at :15.400, never at :14.400.
    let (prompt, _rx) = LocalQueue::new();
    dispatch_minute(
        &prompt,
        &store,
        minute,
        minute + chrono::Duration::milliseconds(400),
    )
    .await
    .unwrap();
    let delays: Vec<u32> = prompt.sent().into_iter().map(|(_, d)| d).collect();
    assert_eq!(delays, vec![0, 0, 0, 0, 15, 30, 30, 45]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_message_runs_its_tick_within_the_invocations_deadline() {
    let e = env(3, 100).await;
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    let tick = TickId {
        tier: Tier::T2,
        tick_ts: anchor(),
    };
    let start = anchor() + chrono::Duration::seconds(1);
    e.clock.set(start);
    let margin = std::time::Duration::from_secs(3);

    // Given a message that is not a tick, then it is refused as bad (it belongs in the DLQ).
    let bad = run_tick_message(
        &e.client,
        &e.store,
        "{\"tier\":\"x\"}",
        &e.clock,
        None,
        margin,
    )
    .await;
    assert!(matches!(bad, Err(TickMessageError::BadMessage(_))));

    // Given the book endpoint failing on every try and an invocation ending 7 s from now
    // (3 s of margin, long before the tick's interval ends at 60 s): the requests stop at 3 s
    // (the deadline, 4 s, less a quarter of the tick's time for the writes), the tick writes
    // what it observed and ends in time; the message is done (a redelivery would come after
    // the tick's interval, too late to help). Without the invocation's deadline the retries
    // would go on for most of the interval.
    e.sim.inject(Fault {
        endpoint: Some(Endpoint::ClobBooks),
        kind: FaultKind::ServerError(503),
        times: 1000,
    });
    let lambda_end = start + chrono::Duration::seconds(7);
    let wall = std::time::Instant::now();
    let r = run_tick_message(
        &e.client,
        &e.store,
        &queue::encode_tick(&tick),
        &e.clock,
        Some(lambda_end),
        margin,
    )
    .await
    .unwrap();
    assert!(
        wall.elapsed() < std::time::Duration::from_secs(7),
        "ended before the invocation's end: {:?}",
        wall.elapsed()
    );
    assert_eq!(
        (r.rows, r.books, r.books_missing),
        (3, 0, 3),
        "Gamma's values are written"
    );
    assert!(r.failed_requests >= 1 && r.deadline_hit, "{r:?}");
    let cov = polytape_store::CoverageStore::coverage_since(&e.store, anchor())
        .await
        .unwrap();
    assert_eq!(
        (cov[0].expected, cov[0].written, cov[0].failed),
        (3, 3, false)
    );

    // Given a message that arrives after its interval, it is skipped (not an error: retrying cannot help).
    e.clock.set(anchor() + chrono::Duration::seconds(61));
    let late = run_tick_message(
        &e.client,
        &e.store,
        &queue::encode_tick(&tick),
        &e.clock,
        None,
        margin,
    )
    .await
    .unwrap();
    assert!(late.skipped && late.already_done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_message_delivered_early_waits_for_its_tick() {
    // The real clock: the message for a tick 1.5 s ahead arrives now.
    let now = chrono::Utc::now();
    let e = env_at(2, 100, now).await;
    polytape_collector::discover::discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    let tick = TickId {
        tier: Tier::T4,
        tick_ts: chrono::DateTime::from_timestamp_millis(
            (now + chrono::Duration::milliseconds(1500)).timestamp_millis(),
        )
        .unwrap(),
    };
    let r = run_tick_message(
        &e.client,
        &e.store,
        &queue::encode_tick(&tick),
        &polytape_collector::SystemClock,
        None,
        std::time::Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(r.rows, 2);
    let file = e.dir.path().join(r.snapshot_key.unwrap());
    for b in read_parquet(&file) {
        for i in 0..b.num_rows() {
            let (snap, fetched) = (
                ts_ms(&b, "snapshot_ts", i).unwrap(),
                ts_ms(&b, "fetched_at", i).unwrap(),
            );
            assert!(
                fetched >= snap,
                "fetched_at {fetched} before snapshot_ts {snap}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_status_api_reports_tiers_coverage_and_health() {
    // The router reads the real clock, so the simulated world is anchored at it.
    let now = chrono::Utc::now();
    let e = env_at(3, 100, now).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(
        listener,
        status::router(status::Status::new(e.store.clone(), Config::default())),
        std::future::pending(),
    ));

    let health: serde_json::Value = reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "starting", "no discovery yet");

    // Discovery and a tick written "now", as the other functions would.
    e.discover().await;
    let tick = TickId::floor(Tier::T4, now);
    let deadline =
        polytape_collector::snapshot::TickDeadline::of(tick, None, Config::default().tick_margin);
    polytape_collector::snapshot::snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
        .await
        .unwrap();

    let health: serde_json::Value = reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let stats: serde_json::Value = reqwest::get(format!("{base}/api/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["markets_tracked"], 15, "{stats}");
    let t4 = &stats["tiers"]["T4"];
    assert_eq!(
        (
            t4["markets"].as_u64(),
            t4["rows_last_hour"].as_u64(),
            t4["latest_markets"].as_u64()
        ),
        (Some(3), Some(3), Some(3)),
        "{stats}"
    );
    assert_eq!(t4["coverage_pct_last_hour"], 100.0);
    assert!(stats["results"].is_null(), "no result counted yet: {stats}");

    // A market resolves; the resolutions duty counts it and the status API shows the count.
    let t4_market = e.store.markets_due(Tier::T4, now).await.unwrap().remove(0);
    assert!(e
        .sim
        .finalize(&t4_market.condition_id, polytape_sim::SimResult::Invalid));
    polytape_collector::resolutions::resolve(&e.client, &e.store, &e.clock)
        .await
        .unwrap();
    let stats: serde_json::Value = reqwest::get(format!("{base}/api/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = &stats["results"];
    assert_eq!(
        (results["resolved"].as_u64(), results["invalid"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    let missing = reqwest::get(format!("{base}/api/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_retiers_and_writes_the_days_markets_dimension_in_the_first_run_of_an_hour() {
    let e = env(2, 100).await;
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    // 10:07: re-tier only.
    e.clock.set(anchor() + chrono::Duration::minutes(7));
    let r = polytape_collector::maintenance::run(
        &e.client,
        &e.store,
        &Config::default(),
        &e.clock,
        None,
    )
    .await
    .unwrap();
    assert!(r.markets_dimension.is_none());
    // 11:02, the first run of the hour: the T4 markets (< 1 h to close at 10:00) are past
    // their end but open on Gamma: still sampled. The day's dimension holds every market.
    e.clock.set(anchor() + chrono::Duration::minutes(62));
    let r = polytape_collector::maintenance::run(
        &e.client,
        &e.store,
        &Config::default(),
        &e.clock,
        None,
    )
    .await
    .unwrap();
    let past = r.retier.past_end;
    assert!(
        past >= 2 && (r.retier.closed, r.retier.expired) == (0, 0),
        "{r:?}"
    );
    assert_eq!(
        r.markets_dimension.as_deref(),
        Some("markets/dt=2026-11-20/markets.parquet")
    );
    // The next day at 11:02: those markets are 24 h past their end: expired, and the day's
    // dimension still holds them.
    e.clock
        .set(anchor() + chrono::Duration::minutes(25 * 60 + 2));
    let r = polytape_collector::maintenance::run(
        &e.client,
        &e.store,
        &Config::default(),
        &e.clock,
        None,
    )
    .await
    .unwrap();
    assert!(r.retier.expired >= past, "{r:?}");
    let key = r.markets_dimension.unwrap();
    assert_eq!(key, "markets/dt=2026-11-21/markets.parquet");
    let rows: usize = read_parquet(&e.dir.path().join(&key))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let all = polytape_store::MarketStore::all_markets(&e.store)
        .await
        .unwrap()
        .len();
    let active = polytape_store::MarketStore::active_markets(&e.store)
        .await
        .unwrap()
        .len();
    assert_eq!(rows, all, "every market, expired ones included");
    assert!(
        active < all,
        "the expired markets are in the dimension too ({active} active of {all})"
    );
    let runs = polytape_store::TaskStore::task_runs_since(&e.store, anchor())
        .await
        .unwrap();
    assert_eq!(
        runs.iter().filter(|r| r.task == "maintenance").count(),
        3,
        "every run recorded"
    );
}
