//! `ws_fargate::run` against the simulator over real sockets, on the local store: the feed
//! hears the T2–T4 markets discovered into the store, its messages go to the sink, a totals
//! document comes out every metrics period and one at the end, and a stop returns within the
//! grace with every trade the feed made handed to the sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use polytape_collector::discover::discover;
use polytape_collector::live::{MessageSink, StoreSink};
use polytape_collector::{Config, FixedClock};
use polytape_feed::queue::{decode, Message, Record};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::LocalStore;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use ws_fargate::{run, Settings};

/// The local sink, keeping a copy of each message.
struct Recording {
    inner: StoreSink<LocalStore>,
    sent: Mutex<Vec<Message>>,
}

impl MessageSink for Recording {
    async fn send(&self, message: &Message) -> Result<(), String> {
        self.inner.send(message).await?;
        self.sent.lock().unwrap().push(message.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_runs_prints_totals_and_stops_within_its_grace_with_every_trade_sent() {
    let mut cfg = polytape_sim::SimConfig::new(7);
    cfg.markets_per_tier = 4;
    cfg.now = chrono::Utc::now();
    let sim = polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let endpoints = Endpoints {
        gamma: sim.gamma_url(),
        clob: sim.clob_url(),
        data: sim.data_url(),
        ws: sim.ws_url(),
    };
    let client = PolymarketClient::new(ClientConfig {
        endpoints: endpoints.clone(),
        backoff_base: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    discover(
        &client,
        &store,
        &Config::default(),
        &FixedClock::new(sim.now()),
    )
    .await
    .unwrap();

    // The task's settings from its environment, with the feed's and the metrics' periods
    // shortened for a test.
    let vars = [
        ("POLYTAPE_WS_URL", endpoints.ws.clone()),
        ("POLYTAPE_WS_BACKFILL_DELAY_S", "0".to_string()),
        // The warm-up backfill at once: its hour of trades makes the run's trades certain
        // (the simulated markets trade a few times a minute on the WebSocket).
        ("POLYTAPE_WS_SETTLE_S", "0".to_string()),
        ("POLYTAPE_WS_STOP_GRACE_S", "5".to_string()),
    ];
    let mut settings =
        Settings::from_lookup(|k| vars.iter().find(|(v, _)| *v == k).map(|(_, x)| x.clone()))
            .unwrap();
    settings.metrics_every = Duration::from_secs(1);
    settings.supervisor.heartbeat_every = Duration::from_millis(300);
    settings.supervisor.publish_every = Duration::from_millis(500);

    let sink = Recording {
        inner: StoreSink(store.clone()),
        sent: Mutex::default(),
    };
    let mut documents: Vec<Value> = Vec::new();
    // Stopped once the documents have counted trades and a connected shard (at most 30 s:
    // then the assertions below say which never came), not after a fixed time, which a loaded
    // machine may spend before the shards connect.
    let heard = Notify::new();
    let (mut traded, mut connected) = (false, false);
    let stop = async {
        let _ = tokio::time::timeout(Duration::from_secs(30), heard.notified()).await;
    };
    let summary = run(store.clone(), &sink, client, &settings, stop, |d| {
        traded |= d["Trades"].as_u64().is_some_and(|n| n > 0);
        connected |= d["HealthyShards"].as_u64().is_some_and(|n| n > 0);
        if traded && connected {
            heard.notify_one();
        }
        documents.push(d.clone())
    })
    .await;

    assert!(summary.stopped_in_time, "{summary:?}");
    assert!(
        summary.stop_took < Duration::from_secs(5),
        "a stop takes the flush, not the grace: {:?}",
        summary.stop_took
    );
    let total = summary.counts.feed.trades_ws + summary.counts.feed.trades_backfill;
    assert!(total > 0, "{summary:?}");
    // Every trade the feed made went to the sink, in the messages it sent.
    let sent = std::mem::take(&mut *sink.sent.lock().unwrap());
    let in_messages = sent
        .iter()
        .flat_map(|m| decode(&m.body).unwrap().1)
        .filter(|r| matches!(r, Ok(Record::Trade(_))))
        .count() as u64;
    assert_eq!(in_messages, total);
    // A document a second while it ran (at least the one the stop waited for), and the last
    // one after the stop; their Trades add up to the feed's total, and shards were connected.
    assert!(documents.len() >= 2, "{}", documents.len());
    assert_eq!(documents.len(), summary.documents);
    let sum: u64 = documents
        .iter()
        .map(|d| d["Trades"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total);
    assert!(documents
        .iter()
        .any(|d| d["HealthyShards"].as_u64().unwrap() > 0));
    sim.shutdown().await;
}

/// A sink whose queue is unreachable: every send fails, so the feed keeps retrying its first
/// message. `tried` is notified at each send.
#[derive(Default)]
struct Unreachable {
    tried: Notify,
}

impl MessageSink for Unreachable {
    async fn send(&self, _: &Message) -> Result<(), String> {
        self.tried.notify_one();
        Err("SendMessage: dispatch failure: connection refused".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_last_messages_cannot_be_sent_then_the_stop_still_ends_at_the_grace() {
    let mut cfg = polytape_sim::SimConfig::new(8);
    cfg.markets_per_tier = 2;
    cfg.now = chrono::Utc::now();
    let sim = polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: sim.gamma_url(),
            clob: sim.clob_url(),
            data: sim.data_url(),
            ws: sim.ws_url(),
        },
        ..ClientConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    discover(
        &client,
        &store,
        &Config::default(),
        &FixedClock::new(sim.now()),
    )
    .await
    .unwrap();
    let vars = [
        ("POLYTAPE_WS_URL", sim.ws_url()),
        // The warm-up backfill at once, so there are trades, hence a message, to fail on
        // (only trades and whale events travel in messages; the tape goes to the store).
        ("POLYTAPE_WS_BACKFILL_DELAY_S", "0".to_string()),
        ("POLYTAPE_WS_SETTLE_S", "0".to_string()),
        ("POLYTAPE_WS_STOP_GRACE_S", "2".to_string()),
    ];
    let settings =
        Settings::from_lookup(|k| vars.iter().find(|(v, _)| *v == k).map(|(_, x)| x.clone()))
            .unwrap();
    let sink = Unreachable::default();
    // Stopped once the feed has a message it cannot send (its first send failed), not after a
    // fixed time: at most 30 s, after which the stop has nothing to wait for and the test fails.
    let first_send = async {
        let _ = tokio::time::timeout(Duration::from_secs(30), sink.tried.notified()).await;
    };
    let mut documents = 0;
    let summary = run(store, &sink, client, &settings, first_send, |_| {
        documents += 1
    })
    .await;
    assert!(!summary.stopped_in_time, "{summary:?}");
    // The grace (2 s), plus room for a loaded machine's late timer, well short of the 20 s
    // the feed itself would keep retrying its message.
    assert!(
        summary.stop_took >= Duration::from_secs(2) && summary.stop_took < Duration::from_secs(7),
        "gave up at the grace: {:?}",
        summary.stop_took
    );
    assert_eq!(documents, 1, "the last totals are still printed");
    sim.shutdown().await;
}
