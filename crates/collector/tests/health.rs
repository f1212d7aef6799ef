//! Failures that are seen: Gamma failing from the start makes `/health` degraded and
//! `/health/critical` answer 503 naming discovery within 2 minutes; discovery is retried with
//! backoff and succeeds within 5 minutes of Gamma's recovery, and the checks clear.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::discover::run_if_due;
use polytape_collector::health;
use polytape_collector::runner::Runtime;
use polytape_collector::{status, Clock, Config};
use polytape_core::ops::TaskStatus;
use polytape_core::Ts;
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::TaskStore;
use std::time::Duration;

/// A client whose Gamma is a closed port: every request is refused, as when Gamma is down.
fn refused_client() -> PolymarketClient {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: dead.clone(),
            clob: dead.clone(),
            data: dead.clone(),
            ws: dead,
        },
        backoff_base: Duration::from_millis(5),
        ..ClientConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gamma_down_from_the_start_is_seen_within_2_minutes_and_recovery_within_5() {
    let e = env(2, 100).await;
    let cfg = Config::default();
    let t0 = anchor();
    let down = refused_client();
    let recovery: Ts = t0 + chrono::Duration::seconds(7 * 60 + 30);
    let mut attempts = Vec::new();
    let mut first_success = None;
    // What the runner does: every minute, discovery if due (on a closed port until `recovery`).
    for minute in 0..20 {
        let now = t0 + chrono::Duration::minutes(minute) + chrono::Duration::seconds(1);
        e.clock.set(now);
        let client = if now < recovery { &down } else { &e.client };
        match run_if_due(client, &e.store, &cfg, &e.clock, None).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                first_success = Some(now);
                break;
            }
            Err(err) => {
                assert!(err.is_retryable(), "{err}");
                attempts.push(minute);
            }
        }
        let h = health::check(&e.store, &cfg.health, now, Some(t0))
            .await
            .unwrap();
        let discovery_failing = h.failing.iter().any(|f| f.check == "discovery");
        if now - t0 >= chrono::Duration::minutes(2) {
            assert_eq!(h.status, "degraded", "at {now}: {h:?}");
            assert!(discovery_failing, "{h:?}");
        } else {
            assert_eq!(h.status, "starting", "within the grace period: {h:?}");
        }
    }
    assert_eq!(
        attempts,
        [0, 1, 2, 4, 7],
        "retried with backoff 30 s, 1, 2, 3 min"
    );
    let ok_at = first_success.expect("discovery succeeded after Gamma recovered");
    assert!(
        ok_at - recovery <= chrono::Duration::minutes(5),
        "succeeded {} after the recovery",
        ok_at - recovery
    );
    let h = health::check(&e.store, &cfg.health, ok_at, Some(t0))
        .await
        .unwrap();
    assert_eq!((h.status, h.failing.len()), ("ok", 0), "{h:?}");

    // Every run, the failed ones too, is recorded with its error.
    let runs = e.store.task_runs_since(t0).await.unwrap();
    let failed: Vec<_> = runs
        .iter()
        .filter(|r| r.status == TaskStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 5);
    assert!(
        failed
            .iter()
            .all(|r| r.error.as_deref().is_some_and(|e| e.contains("connection"))),
        "{failed:?}"
    );
}

/// GET `url`: status code and JSON body.
async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_critical_answers_503_naming_discovery_and_200_once_it_recovers_local_and_cloud() {
    // The routers read the real clock: Gamma went down 3 minutes ago, at the start.
    let start = chrono::Utc::now() - chrono::Duration::minutes(3);
    let e = env_at(2, 100, start).await;
    let mut cfg = Config::default();
    // This test is about discovery: no tick runs, so none is judged (a stopped schedule is
    // given_markets_but_no_tick_ever_recorded_…'s).
    cfg.health.tick_grace = Duration::from_secs(3600);
    e.clock.set(start);
    assert!(
        run_if_due(&refused_client(), &e.store, &cfg, &e.clock, None)
            .await
            .is_err()
    );

    let rt = Runtime::new(e.client.clone(), e.store.clone(), cfg.clone());
    rt.stats.mark_started(start);
    let local = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bases = [
        format!("http://{}", local.local_addr().unwrap()),
        format!("http://{}", cloud.local_addr().unwrap()),
    ];
    tokio::spawn(status::serve(
        local,
        status::local_router(rt, None),
        std::future::pending(),
    ));
    tokio::spawn(status::serve(
        cloud,
        status::router(status::Status::new(e.store.clone(), cfg.clone())),
        std::future::pending(),
    ));
    for base in &bases {
        let (code, body) = get(&format!("{base}/health/critical")).await;
        assert_eq!(code, 503, "{base}: {body}");
        assert_eq!(body["failing"][0]["check"], "discovery", "{body}");
        let (code, body) = get(&format!("{base}/health")).await;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("degraded")),
            "{body}"
        );
    }

    // Gamma is back: the retry (due 30 s after the failure) succeeds.
    e.clock.set(e.clock.now() + chrono::Duration::seconds(31));
    assert!(run_if_due(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap()
        .is_some());
    for base in &bases {
        let (code, body) = get(&format!("{base}/health/critical")).await;
        assert_eq!(code, 200, "{base}: {body}");
        assert_eq!(body["failing"], serde_json::json!([]));
        assert_eq!(get(&format!("{base}/health")).await.1["status"], "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_that_never_ran_is_failing_two_minutes_after_the_first_task_in_the_cloud() {
    let e = env(2, 100).await;
    let cfg = Config::default();
    // Only the dispatcher has run (discovery fails before it records anything).
    let (q, _rx) = polytape_store::LocalQueue::new();
    polytape_collector::dispatch::dispatch_minute(&q, &e.store, anchor(), anchor())
        .await
        .unwrap();
    let soon = health::check(
        &e.store,
        &cfg.health,
        anchor() + chrono::Duration::seconds(90),
        None,
    )
    .await
    .unwrap();
    assert_eq!(soon.status, "starting", "{soon:?}");
    let later = health::check(
        &e.store,
        &cfg.health,
        anchor() + chrono::Duration::minutes(3),
        None,
    )
    .await
    .unwrap();
    assert_eq!(later.status, "degraded", "{later:?}");
    assert_eq!(later.failing[0].check, "discovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_cut_short_by_its_invocations_end_is_recorded_as_failed() {
    let e = env(2, 100).await;
    let cfg = Config::default();
    e.sim.set_latency(Duration::from_secs(5));
    let until = e.clock.now() + chrono::Duration::milliseconds(500);
    let started = std::time::Instant::now();
    let err = run_if_due(&e.client, &e.store, &cfg, &e.clock, Some(until))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped at its deadline, not the response"
    );
    let state = e.store.task_state("discovery").await.unwrap().unwrap();
    assert_eq!(state.consecutive_failures, 1, "{err}");
    assert!(state.last_error.is_some() && !state.is_leased_at(e.clock.now()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_markets_but_no_tick_ever_recorded_in_the_cloud_then_health_fails_every_owed_tier() {
    // Discovery found 2 markets per tier at the anchor, then the dispatcher was switched off:
    // no tick ran and none wrote a coverage record.
    let e = env(2, 100).await;
    let cfg = Config::default();
    run_if_due(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap()
        .expect("discovery ran");
    let now = anchor() + chrono::Duration::minutes(30);
    let h = health::check(&e.store, &cfg.health, now, None)
        .await
        .unwrap();
    assert_eq!(h.status, "degraded", "{h:?}");
    let failing: Vec<&str> = h.failing.iter().map(|f| f.check.as_str()).collect();
    for tier in ["T1", "T2", "T3", "T4"] {
        assert!(
            failing.contains(&format!("ticks_{tier}").as_str()),
            "{failing:?}"
        );
        assert!(
            failing.contains(&format!("coverage_{tier}").as_str()),
            "{failing:?}"
        );
    }
    // T4 (15 s) owed the ticks of the 29 minutes judged (the last minute is its grace), each
    // 2 samples by the tier histories, and wrote none.
    let t4 = &h.ticks_last_hour["T4"];
    assert_eq!((t4.missing_owed_ticks, t4.samples), (116, 0), "{t4:?}");
    assert_eq!(t4.expected_samples, 232, "{t4:?}");
    assert_eq!(t4.coverage_pct, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_shard_silent_for_three_minutes_then_health_fails_its_websocket_check() {
    use polytape_store::HeartbeatStore;
    let e = env(2, 100).await;
    let cfg = Config::default();
    run_if_due(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap()
        .expect("discovery ran");
    let hb = |shard: &str, at: Ts| polytape_core::ops::ShardHeartbeat {
        shard_id: shard.into(),
        at,
        assets: 10,
        last_event_at: Some(at),
        reconnects: 0,
    };
    let now = anchor() + chrono::Duration::seconds(200);
    // One round whose shard-01 has been silent since the anchor.
    e.store
        .put_heartbeats(&[
            hb("shard-00", now - chrono::Duration::seconds(5)),
            hb("shard-01", anchor()),
        ])
        .await
        .unwrap();
    let mut quiet = cfg.health.clone();
    quiet.tick_grace = Duration::from_secs(3600); // this test is about the feed, not the ticks
    let h = health::check(&e.store, &quiet, now, Some(anchor()))
        .await
        .unwrap();
    let failing: Vec<&str> = h.failing.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(failing, ["ws_shard-01"], "{h:?}");
    assert!(h.failing[0].detail.contains("200 s ago"), "{h:?}");
}
