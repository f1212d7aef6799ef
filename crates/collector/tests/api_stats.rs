//! The local `/api/stats` over real sockets: its `live` section holds the feed's counters and
//! `trades_per_min`, the trades the feed stored in the last minute (from its counters sampled
//! by the runner's feed watcher), which falls to 0 once the feed has been quiet for a minute.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

use polytape_collector::runner::{watch_feed, Runtime};
use polytape_collector::{status, Config};
use polytape_feed::supervisor::SupervisorCounts;
use polytape_polymarket::{ClientConfig, PolymarketClient};
use polytape_store::LocalStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A runtime over an empty local store; its client is never used.
fn runtime(dir: &tempfile::TempDir) -> Arc<Runtime<LocalStore>> {
    let client = PolymarketClient::new(ClientConfig::default()).unwrap();
    Runtime::new(
        client,
        LocalStore::open(dir.path()).unwrap(),
        Config::default(),
    )
}

/// The feed reports its counters: `live` trades and `backfilled` ones so far, 2 of 3 shards
/// connected after 4 reconnects.
fn report(rt: &Runtime<LocalStore>, live: u64, backfilled: u64) {
    let mut c = SupervisorCounts {
        shards: 3,
        connected_shards: 2,
        reconnects: 4,
        ..SupervisorCounts::default()
    };
    c.feed.trades_ws = live;
    c.feed.trades_backfill = backfilled;
    *rt.feed.lock().unwrap() = Some(c);
}

/// Serves the local status API of `rt` on 127.0.0.1; its base URL.
async fn serve(rt: Arc<Runtime<LocalStore>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(
        listener,
        status::local_router(rt, None),
        std::future::pending(),
    ));
    base
}

async fn stats(base: &str) -> serde_json::Value {
    let r = reqwest::get(format!("{base}/api/stats")).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_stats_shows_the_feeds_trades_in_the_last_minute_and_0_after_a_quiet_minute() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let base = serve(rt.clone()).await;
    assert_eq!(
        stats(&base).await["live"],
        serde_json::Value::Null,
        "before the feed reports"
    );

    // Given the feed's counters sampled 90 s, 45 s and 1 s ago: 100, 130 and 180 trades stored
    // (150 live + 30 backfilled at the end). In the last minute: 180 - 100 = 80.
    let now = Instant::now();
    let ago = |s: u64| now - Duration::from_secs(s);
    for (s, live, backfilled) in [(90, 100, 0), (45, 110, 20), (1, 150, 30)] {
        report(&rt, live, backfilled);
        rt.sample_feed(ago(s));
    }
    let body = stats(&base).await;
    let live = &body["live"];
    assert_eq!(live["trades_per_min"], 80, "{body}");
    assert_eq!(
        (
            live["connected_shards"].as_u64(),
            live["shards"].as_u64(),
            live["reconnects"].as_u64(),
            live["feed"]["trades_ws"].as_u64()
        ),
        (Some(2), Some(3), Some(4), Some(150)),
        "{body}"
    );

    // Given a feed whose last trade was counted 61 s ago, sampled every second since: 0.
    let quiet_dir = tempfile::tempdir().unwrap();
    let quiet = runtime(&quiet_dir);
    report(&quiet, 500, 0);
    quiet.sample_feed(ago(120));
    report(&quiet, 540, 0);
    for s in (1..=61).rev() {
        quiet.sample_feed(ago(s));
    }
    let base = serve(quiet).await;
    let body = stats(&base).await;
    assert_eq!(body["live"]["trades_per_min"], 0, "{body}");
}

#[tokio::test(start_paused = true)]
async fn the_feed_watcher_samples_the_counters_every_second_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(watch_feed(rt.clone(), stop_rx));
    let wait = |s: f64| tokio::time::sleep(Duration::from_secs_f64(s));

    // Nothing reported at 0 s; 25 trades at 0.5 s and 40 at 30.5 s.
    wait(0.5).await;
    report(&rt, 25, 0);
    wait(30.0).await;
    report(&rt, 40, 0);
    wait(1.0).await;
    assert_eq!(
        rt.trades_per_min(Instant::now()),
        40,
        "since the start at 0"
    );
    wait(40.0).await;
    assert_eq!(
        rt.trades_per_min(Instant::now()),
        15,
        "25 until 31 s, 40 since"
    );
    wait(30.0).await;
    assert_eq!(rt.trades_per_min(Instant::now()), 0, "quiet for a minute");

    stop_tx.send(true).unwrap();
    watcher.await.unwrap();
}
