//! AwsStore against a real moto server (DynamoDB, S3 and SQS on one port): the port contracts,
//! the batching the cost notes rely on (25 items per BatchWriteItem, 10 entries per
//! SendMessageBatch), the errors a missing resource gives, and the SDK timeouts (a call to a
//! 127.0.0.1 listener that never answers fails in bounded time). No mocks: every call goes over
//! HTTP to moto (or that listener) on 127.0.0.1.
//!
//! infra/test.sh starts moto and exports `POLYTAPE_MOTO_URL`. Without it these tests print a
//! skip line and pass, unless `POLYTAPE_REQUIRE_TOOLS=1` (as infra/test.sh sets), when they
//! fail. Each test provisions its own uniquely named tables, bucket and queue.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use aws_config::{BehaviorVersion, Region, SdkConfig};
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Tier};
use polytape_store::aws::{provision, AwsNames, AwsStore, SdkTimeouts};
use polytape_store::contract::{self, at, heartbeat, market};
use polytape_store::queue::decode_tick;
use polytape_store::{LatestStore, MarketStore, ObjectStore, OpsStore, StoreError, TickQueue};
use std::time::{Duration, Instant};

/// The SDK config for moto (toolcheck §2): its endpoint for every service, static test
/// credentials (no IMDS or profile lookups), us-east-1.
async fn moto_config() -> Option<SdkConfig> {
    let Ok(url) = std::env::var("POLYTAPE_MOTO_URL") else {
        if std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("POLYTAPE_MOTO_URL is not set and POLYTAPE_REQUIRE_TOOLS=1: run infra/test.sh, which starts moto");
        }
        eprintln!("SKIP: POLYTAPE_MOTO_URL is not set (infra/test.sh starts moto)");
        return None;
    };
    Some(config_for(&url).await)
}

/// The SDK config of a local endpoint: `url` for every service, static test credentials,
/// us-east-1.
async fn config_for(url: &str) -> SdkConfig {
    let creds =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(url)
        .load()
        .await
}

/// A store on freshly provisioned resources, its clock on the contract's day.
async fn fresh_store(prefix: &str) -> Option<AwsStore> {
    let cfg = moto_config().await?;
    let names = provision::create_all(&cfg, &AwsNames::unique(prefix))
        .await
        .expect("provision on moto");
    Some(AwsStore::new(&cfg, names).with_clock(|| at("2026-11-20T23:00:00Z")))
}

fn backend(err: StoreError) -> (String, bool) {
    match err {
        StoreError::Backend { reason, retryable } => (reason, retryable),
        other => panic!("expected a backend error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_store_passes_every_port_contract_on_moto() {
    let Some(s) = fresh_store("contract").await else {
        return;
    };
    // Spawned, as a Lambda handler would be: every port future must be Send.
    tokio::spawn(async move { contract::all(&s).await })
        .await
        .unwrap();
}

#[tokio::test]
async fn aws_store_passes_the_tick_queue_contract_on_sqs() {
    let Some(s) = fresh_store("ticks").await else {
        return;
    };
    // SQS does not report a message's delay back: the contract checks the DelaySeconds each
    // accepted entry was sent with; the next test checks that SQS applies it.
    let sent = s.clone();
    contract::tick_queue_contract(&s, |_n| {
        let sent = sent.clone();
        async move { sent.sent_ticks() }
    })
    .await;
}

#[tokio::test]
async fn given_ticks_of_a_minute_when_received_at_once_then_only_the_undelayed_ones_are_visible() {
    let Some(s) = fresh_store("delay").await else {
        return;
    };
    let cfg = moto_config().await.unwrap();
    // The dispatcher runs 15 s late: the ticks at :00 and :15 are due, the rest are not.
    let minute = at("2026-11-20T10:00:00Z");
    let ticks = due_in_minute(minute);
    s.enqueue_ticks(&ticks, minute + chrono::Duration::seconds(15))
        .await
        .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let mut got: Vec<TickId> = Vec::new();
    // Two receives: a message a first receive misses would show up in the second.
    for _ in 0..2 {
        let out = sqs
            .receive_message()
            .queue_url(&s.names().ticks_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            got.push(decode_tick(m.body.as_deref().unwrap()).unwrap());
        }
    }
    got.sort();
    let mut undelayed: Vec<TickId> = ticks
        .iter()
        .copied()
        .filter(|t| t.tick_ts <= minute + chrono::Duration::seconds(15))
        .collect();
    undelayed.sort();
    assert_eq!(undelayed.len(), 6, "T0…T4 at second 0 and T4 at second 15");
    assert_eq!(
        got, undelayed,
        "ticks already due go at once; those at :30 and :45 wait for their DelaySeconds"
    );
}

#[tokio::test]
async fn given_60_markets_when_upserted_then_3_batch_writes_of_at_most_25_items() {
    let Some(s) = fresh_store("batch").await else {
        return;
    };
    let markets: Vec<_> = (0..60).map(|n| market(n, Some(Tier::T1), true)).collect();
    let before = s.write_stats();
    s.upsert_markets(&markets).await.unwrap();
    let after = s.write_stats();
    assert_eq!(after.batch_write_calls - before.batch_write_calls, 3);
    assert_eq!(after.max_batch_items, 25);
    assert_eq!(s.markets_in_tier(Tier::T1).await.unwrap(), markets);
    assert_eq!(
        s.all_markets().await.unwrap(),
        markets,
        "the Scan sees them all, by id"
    );
    assert_eq!(
        s.count_by_tier().await.unwrap(),
        [(Some(Tier::T1), 60)].into()
    );
}

#[tokio::test]
async fn given_a_market_twice_in_one_upsert_then_the_last_record_wins() {
    let Some(s) = fresh_store("dupes").await else {
        return;
    };
    // One BatchWriteItem may not name a key twice (DynamoDB refuses the whole request).
    let first = market(1, Some(Tier::T2), true);
    let mut last = first.clone();
    last.tier = Some(Tier::T3);
    s.upsert_markets(&[first.clone(), market(2, Some(Tier::T2), true), last.clone()])
        .await
        .unwrap();
    assert_eq!(
        s.get_market(&first.condition_id).await.unwrap(),
        Some(last.clone())
    );
    assert_eq!(s.markets_in_tier(Tier::T3).await.unwrap(), vec![last]);
}

#[tokio::test]
async fn given_23_ticks_when_enqueued_then_3_send_message_batches_of_at_most_10() {
    let Some(s) = fresh_store("sqsbatch").await else {
        return;
    };
    let minute = at("2026-11-20T10:00:00Z");
    let mut ticks = due_in_minute(minute); // 9
    for m in 1..=2 {
        ticks.extend(due_in_minute(minute + chrono::Duration::minutes(m))); // 7 each
    }
    assert_eq!(ticks.len(), 23);
    s.enqueue_ticks(&ticks, minute).await.unwrap();
    let stats = s.write_stats();
    assert_eq!(stats.sqs_batch_calls, 3);
    assert_eq!(stats.max_sqs_entries, 10);
    let sent: Vec<TickId> = s.sent_ticks().into_iter().map(|(t, _)| t).collect();
    assert_eq!(sent, ticks, "every tick accepted once, in order");
}

#[tokio::test]
async fn given_resources_that_do_not_exist_then_errors_are_not_retryable_and_name_them() {
    let Some(cfg) = moto_config().await else {
        return;
    };
    let names = AwsNames::unique("missing");
    let s = AwsStore::new(&cfg, names.clone());

    let (reason, retryable) = backend(s.get_market("0x1").await.unwrap_err());
    assert!(!retryable, "{reason}");
    assert!(reason.contains(&names.markets_table), "{reason}");
    assert!(reason.contains("ResourceNotFound"), "{reason}");

    let (reason, retryable) = backend(
        s.upsert_markets(&[market(1, Some(Tier::T0), true)])
            .await
            .unwrap_err(),
    );
    assert!(!retryable, "{reason}");
    assert!(reason.contains(&names.markets_table), "{reason}");

    let (reason, retryable) = backend(s.recent_task_runs(5).await.unwrap_err());
    assert!(!retryable && reason.contains(&names.ops_table), "{reason}");

    let (reason, retryable) = backend(s.get_latest(Tier::T2).await.unwrap_err());
    assert!(
        !retryable && reason.contains(&names.latest_table),
        "{reason}"
    );

    let (reason, retryable) = backend(s.get_object("a/b").await.unwrap_err());
    assert!(!retryable, "{reason}");
    assert!(reason.contains(&names.bucket), "{reason}");
    assert!(reason.contains("NoSuchBucket"), "{reason}");

    let (reason, retryable) = backend(
        s.put_object("a/b", vec![1], "application/octet-stream")
            .await
            .unwrap_err(),
    );
    assert!(!retryable && reason.contains(&names.bucket), "{reason}");
    let (reason, retryable) = backend(s.list_objects("a/").await.unwrap_err());
    assert!(!retryable && reason.contains(&names.bucket), "{reason}");
}

#[tokio::test]
async fn given_an_unreachable_endpoint_then_the_error_is_retryable() {
    let Some(_) = moto_config().await else {
        return;
    };
    // A port nobody listens on: the request is never answered.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let s = AwsStore::new(&cfg, AwsNames::unique("unreachable"));
    let (reason, retryable) = backend(s.get_market("0x1").await.unwrap_err());
    assert!(retryable, "{reason}");
}

#[tokio::test]
async fn given_runs_on_several_days_then_recent_runs_walk_back_from_today_newest_first() {
    let Some(s) = fresh_store("days").await else {
        return;
    };
    use polytape_core::ops::TaskStatus;
    let run = |id: &str, started: &str| contract::task_run(id, started, TaskStatus::Ok, 1);
    let runs = [
        run("20261112T120000Z#discovery", "2026-11-12T12:00:00Z"), // 8 days back: not walked
        run("20261118T120000Z#discovery", "2026-11-18T12:00:00Z"),
        run("20261120T080000Z#discovery", "2026-11-20T08:00:00Z"),
        run("20261120T090000Z#retier", "2026-11-20T09:00:00Z"),
        run("20261121T000000Z#discovery", "2026-11-21T00:00:00Z"), // after the clock's today
    ];
    for r in &runs {
        s.put_task_run(r).await.unwrap();
    }
    // The store's clock says 2026-11-20T23:00Z.
    assert_eq!(
        s.recent_task_runs(10).await.unwrap(),
        vec![runs[3].clone(), runs[2].clone(), runs[1].clone()]
    );
    assert_eq!(
        s.recent_task_runs(2).await.unwrap(),
        vec![runs[3].clone(), runs[2].clone()]
    );
    assert_eq!(s.recent_task_runs(0).await.unwrap(), vec![]);

    // Coverage over a day boundary: since's day up to today, in order.
    let cov = |tier: Tier, tick: &str| polytape_core::ops::Coverage {
        tier,
        tick_ts: at(tick),
        expected: 2,
        written: 2,
        missing: 0,
        skipped: false,
    };
    let late = cov(Tier::T4, "2026-11-19T23:59:45Z");
    let early = cov(Tier::T0, "2026-11-20T00:00:00Z");
    let before = cov(Tier::T4, "2026-11-19T23:59:30Z");
    for c in [&early, &late, &before] {
        s.put_coverage(c).await.unwrap();
    }
    assert_eq!(
        s.coverage_since(at("2026-11-19T23:59:31Z")).await.unwrap(),
        vec![late, early]
    );
}

#[tokio::test]
async fn given_a_heartbeat_past_its_expiry_then_it_is_left_out_before_ttl_deletes_it() {
    let Some(s) = fresh_store("heartbeat").await else {
        return;
    };
    // The store's clock says 2026-11-20T23:00Z; moto never applies TTL, as real DynamoDB may
    // not for up to two days.
    let expired = heartbeat("shard-00", "2026-11-19T22:59:59Z", 200, 0);
    let last_second = heartbeat("shard-01", "2026-11-19T23:00:01Z", 200, 0);
    let live = heartbeat("shard-02", "2026-11-20T22:59:30Z", 150, 4);
    for hb in [&live, &expired, &last_second] {
        s.put_heartbeat(hb).await.unwrap();
    }
    assert_eq!(s.heartbeats().await.unwrap(), vec![last_second, live]);
}

/// An endpoint on 127.0.0.1 that accepts every connection and never answers nor closes it: the
/// way a stalled network path looks to a client.
async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_endpoint_that_never_answers_then_every_sdk_call_times_out_retryably() {
    // Timeouts far below the defaults (10 s / 3 s), far above a local round trip.
    let timeouts = SdkTimeouts {
        operation: Duration::from_millis(1_500),
        attempt: Duration::from_millis(500),
    };
    let names = AwsNames::unique("silent");
    let silent = config_for(&silent_endpoint().await).await;
    let store = AwsStore::with_timeouts(&silent, names.clone(), timeouts);
    let ticks = [due_in_minute(at("2026-11-20T10:00:00Z"))[0]];

    // When DynamoDB, S3 and SQS calls go to an endpoint that accepts and never answers, then
    // each fails with a retryable timeout error once its operation timeout has passed, instead
    // of waiting forever (the outer 30 s bound only catches a hang).
    let started = Instant::now();
    let (ddb, s3, sqs) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            store.get_market("0xabc"),
            store.get_object("snapshots/x.parquet"),
            store.enqueue_ticks(&ticks, at("2026-11-20T10:00:00Z")),
        )
    })
    .await
    .expect("an SDK call hung past its operation timeout");
    let elapsed = started.elapsed();
    let errors = [
        ("GetItem", ddb.map(|_| ()).unwrap_err()),
        ("GetObject", s3.map(|_| ()).unwrap_err()),
        ("SendMessageBatch", sqs.unwrap_err()),
    ];
    for (op, err) in errors {
        let retryable = err.is_retryable();
        let (reason, _) = backend(err);
        assert!(reason.starts_with(op), "{reason}");
        assert!(
            reason.to_lowercase().contains("timeout"),
            "{op}: a timeout, not another failure: {reason}"
        );
        assert!(retryable, "{op}: a timeout may pass on a retry: {reason}");
    }
    assert!(
        elapsed >= timeouts.attempt && elapsed < Duration::from_secs(10),
        "the calls waited for their timeouts, and no longer than the default operation timeout: \
         {elapsed:?}"
    );

    // Given the same timeouts on moto, then the same calls succeed: it was the silence that
    // timed out, not the settings.
    let Some(moto) = moto_config().await else {
        return;
    };
    let names = provision::create_all(&moto, &names).await.unwrap();
    let store = AwsStore::with_timeouts(&moto, names, timeouts);
    assert_eq!(store.get_market("0xabc").await.unwrap(), None);
    assert_eq!(store.get_object("snapshots/x.parquet").await.unwrap(), None);
    store
        .enqueue_ticks(&ticks, at("2026-11-20T10:00:00Z"))
        .await
        .unwrap();
}
