//! AwsStore against a real moto server (DynamoDB, S3 and SQS on one port): the port contracts,
//! what only the AWS adapter promises (conditional market puts at most 16 in flight, the
//! Latest object really conditional under concurrent ticks, task states that lose no failure
//! under concurrent runs, the migration of pre-index market items), the batching the cost
//! notes rely on (25 items per BatchWriteItem, 10 entries per SendMessageBatch), the errors a
//! missing resource gives, and the SDK timeouts (a call to a 127.0.0.1 listener that never
//! answers fails in bounded time). No mocks: every call goes over HTTP to moto (or that
//! listener) on 127.0.0.1.
//!
//! infra/test.sh starts moto and exports `POLYTAPE_MOTO_URL`. Without it these tests print a
//! skip line and pass, unless `POLYTAPE_REQUIRE_TOOLS=1` (as infra/test.sh sets), when they
//! fail. Each test provisions its own uniquely named tables, bucket and queue.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use polytape_core::ops::TaskStatus;
use polytape_core::schedule::due_in_minute;
use polytape_core::{Market, MarketResult, TickId, Tier};
use polytape_store::aws::{provision, AwsNames, AwsStore, SdkTimeouts, MARKET_WRITES_IN_FLIGHT};
use polytape_store::contract::{self, at, heartbeat, market};
use polytape_store::queue::decode_tick;
use polytape_store::{
    CoverageStore, HeartbeatStore, LatestStore, MarketStore, ObjectStore, StoreError, TaskStore,
    TickQueue, TransitionStore,
};
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

#[tokio::test]
async fn aws_store_passes_the_market_contract_on_dynamodb() {
    let Some(s) = fresh_store("markets").await else {
        return;
    };
    contract::market_store_contract(&s).await;
}

#[tokio::test]
async fn aws_store_passes_the_latest_contract_on_s3() {
    let Some(s) = fresh_store("latest").await else {
        return;
    };
    contract::latest_store_contract(&s).await;
}

#[tokio::test]
async fn aws_store_passes_the_ops_contract_on_dynamodb() {
    let Some(s) = fresh_store("ops").await else {
        return;
    };
    contract::ops_store_contract(&s).await;
}

#[tokio::test]
async fn aws_store_passes_the_object_contract_on_s3() {
    let Some(s) = fresh_store("objects").await else {
        return;
    };
    contract::object_store_contract(&s).await;
    contract::object_deleter_contract(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_store_passes_every_port_contract_on_one_handle_from_a_spawned_task() {
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
async fn given_a_put_refused_on_its_own_applied_write_then_it_is_written_and_another_change_is_a_conflict(
) {
    let Some(s) = fresh_store("marketretry").await else {
        return;
    };
    let m = market(1, Some(Tier::T1), true);
    assert_eq!(
        s.write_markets(std::slice::from_ref(&m)).await.unwrap(),
        Vec::<String>::new()
    );
    // The same write again, as the SDK's retry of an attempt that was applied but timed out:
    // the condition (not yet written) fails on the write itself, which is not a conflict.
    assert_eq!(
        s.write_markets(std::slice::from_ref(&m)).await.unwrap(),
        Vec::<String>::new()
    );
    // A different change against the same stale version is one.
    let other = Market {
        question: format!("{} (edited)", m.question),
        ..m.clone()
    };
    assert_eq!(
        s.write_markets(&[other]).await.unwrap(),
        vec![m.condition_id.clone()]
    );
    assert_eq!(
        s.get_market(&m.condition_id).await.unwrap(),
        Some(Market { version: 1, ..m })
    );
}

#[tokio::test]
async fn given_60_markets_when_written_then_60_conditional_puts_at_most_16_in_flight() {
    let Some(s) = fresh_store("marketputs").await else {
        return;
    };
    // BatchWriteItem cannot carry a condition: one PutItem each, bounded concurrency.
    let markets: Vec<_> = (0..60).map(|n| market(n, Some(Tier::T1), true)).collect();
    assert_eq!(
        s.write_markets(&markets).await.unwrap(),
        Vec::<String>::new()
    );
    let stats = s.write_stats();
    assert_eq!(stats.market_puts, 60);
    assert_eq!(stats.max_market_puts_in_flight, MARKET_WRITES_IN_FLIGHT);
    assert_eq!(stats.batch_write_calls, 0, "no batch write for markets");
    let stored: Vec<Market> = markets
        .iter()
        .map(|m| Market {
            version: 1,
            ..m.clone()
        })
        .collect();
    // The contract's markets end 2026-11-20T18:00Z: 24 h before that they are in T1.
    let day_before = at("2026-11-19T18:00:00Z");
    assert_eq!(s.markets_due(Tier::T1, day_before).await.unwrap(), stored);
    assert_eq!(
        s.all_markets().await.unwrap(),
        stored,
        "the Scan sees them all, by id"
    );
    assert_eq!(
        s.count_due(day_before).await.unwrap(),
        [(Some(Tier::T1), 60)].into()
    );
    assert_eq!(
        s.count_due(at("2026-11-21T18:00:00Z")).await.unwrap(),
        [(None, 60)].into(),
        "24 h past their end they are expired, still active until retired"
    );
}

#[tokio::test]
async fn given_a_market_twice_in_one_write_then_its_records_apply_in_order() {
    let Some(s) = fresh_store("dupes").await else {
        return;
    };
    // As the local adapter's one transaction: the first record is written (version 1), the
    // second, still at version 0, conflicts; a third that expects version 1 is written.
    let first = market(1, Some(Tier::T2), true);
    let stale = Market {
        tier: Some(Tier::T3),
        ..first.clone()
    };
    let next = Market {
        tier: Some(Tier::T4),
        version: 1,
        ..first.clone()
    };
    let conflicts = s
        .write_markets(&[
            first.clone(),
            market(2, Some(Tier::T2), true),
            stale,
            next.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(conflicts, vec![first.condition_id.clone()]);
    assert_eq!(
        s.get_market(&first.condition_id).await.unwrap(),
        Some(Market { version: 2, ..next })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_writers_of_one_market_then_the_loser_is_told_and_the_closed_market_stays_closed()
{
    let Some(s) = fresh_store("conflict").await else {
        return;
    };
    let m = market(1, Some(Tier::T2), true);
    s.write_markets(std::slice::from_ref(&m)).await.unwrap();
    let read = s.get_market(&m.condition_id).await.unwrap().unwrap();
    assert_eq!(read.version, 1);

    // Resolutions closes the market while re-tier, from the same read, moves it: whichever
    // lands second is refused, so at most one of them is written, never a mix.
    let closed = Market {
        active: false,
        result: MarketResult::Unresolved,
        tier: None,
        ..read.clone()
    };
    let moved = Market {
        tier: Some(Tier::T3),
        ..read.clone()
    };
    let (a, b) = (s.clone(), s.clone());
    let (c1, c2) = (closed.clone(), moved.clone());
    let (r1, r2) = tokio::join!(
        tokio::spawn(async move { a.write_markets(&[c1]).await.unwrap() }),
        tokio::spawn(async move { b.write_markets(&[c2]).await.unwrap() }),
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(
        r1.len() + r2.len(),
        1,
        "exactly one writer lost: {r1:?} {r2:?}"
    );
    let winner = if r1.is_empty() { &closed } else { &moved };
    assert_eq!(
        s.get_market(&m.condition_id).await.unwrap(),
        Some(Market {
            version: 2,
            ..winner.clone()
        })
    );

    // The loser reads again and decides anew. If re-tier lost, the market is closed and stays
    // so; if resolutions lost, it closes the moved market now.
    if r2.is_empty() {
        let again = s.get_market(&m.condition_id).await.unwrap().unwrap();
        let closed_now = Market {
            active: false,
            result: MarketResult::Unresolved,
            tier: None,
            ..again
        };
        assert!(s.write_markets(&[closed_now]).await.unwrap().is_empty());
    }
    // A late writer still holding version 1 cannot reopen it.
    assert_eq!(
        s.write_markets(&[moved]).await.unwrap(),
        vec![m.condition_id.clone()]
    );
    let now = s.get_market(&m.condition_id).await.unwrap().unwrap();
    assert!(
        !now.active && now.result == MarketResult::Unresolved,
        "the closed market stays closed"
    );
    assert!(s.active_markets().await.unwrap().is_empty());
    for t in Tier::ALL {
        assert!(s
            .markets_due(t, at("2026-11-20T12:00:00Z"))
            .await
            .unwrap()
            .is_empty());
    }

    // Eight writers race from one read: one wins, seven are told.
    let read = s.get_market(&m.condition_id).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for n in 0..8u32 {
        let s = s.clone();
        let w = Market {
            question: format!("writer {n}"),
            ..read.clone()
        };
        tasks.push(tokio::spawn(
            async move { s.write_markets(&[w]).await.unwrap() },
        ));
    }
    let mut lost = 0;
    for t in tasks {
        lost += t.await.unwrap().len();
    }
    assert_eq!(lost, 7);
    assert_eq!(
        s.get_market(&m.condition_id)
            .await
            .unwrap()
            .unwrap()
            .version,
        read.version + 1
    );
}

#[tokio::test]
async fn given_markets_written_before_the_end_date_index_when_migrated_then_they_are_due_again() {
    let Some(s) = fresh_store("migrate").await else {
        return;
    };
    let cfg = moto_config().await.unwrap();
    // The item layout of the by_tier index: `tier_key` on active markets, no `live`, no
    // `version`.
    let ddb = aws_sdk_dynamodb::Client::new(&cfg);
    let put_old = |id: &str, active: bool| {
        let mut req = ddb
            .put_item()
            .table_name(&s.names().markets_table)
            .item("condition_id", AttributeValue::S(id.into()))
            .item("question", AttributeValue::S("Old?".into()))
            .item("yes_token_id", AttributeValue::S("11".into()))
            .item("no_token_id", AttributeValue::S("12".into()))
            .item(
                "outcomes",
                AttributeValue::L(vec![
                    AttributeValue::S("Yes".into()),
                    AttributeValue::S("No".into()),
                ]),
            )
            .item(
                "end_date",
                AttributeValue::N(at("2026-11-20T18:00:00Z").timestamp_millis().to_string()),
            )
            .item("tier", AttributeValue::N("3".into()))
            .item("active", AttributeValue::Bool(active))
            .item("resolved", AttributeValue::Bool(false))
            .item("first_seen", AttributeValue::N("1795000000000".into()))
            .item("neg_risk", AttributeValue::Bool(false));
        if active {
            req = req.item("tier_key", AttributeValue::S("T3".into()));
        }
        req.send()
    };
    put_old("0xold", true).await.unwrap();
    put_old("0xclosed", false).await.unwrap();
    let noon = at("2026-11-20T12:00:00Z");
    assert_eq!(
        s.markets_due(Tier::T2, noon).await.unwrap(),
        vec![],
        "not in the new index yet"
    );

    assert_eq!(
        provision::migrate_markets(&cfg, &s.names().markets_table)
            .await
            .unwrap(),
        2
    );
    let awaiting = s.markets_awaiting_result().await.unwrap();
    assert_eq!(
        awaiting
            .iter()
            .map(|m| m.condition_id.as_str())
            .collect::<Vec<_>>(),
        ["0xclosed"],
        "an inactive market from before results were tracked is asked about"
    );
    let due = s.markets_due(Tier::T2, noon).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].condition_id.as_str(), due[0].version),
        ("0xold", 1),
        "stored, so version 1"
    );
    assert_eq!(
        provision::migrate_markets(&cfg, &s.names().markets_table)
            .await
            .unwrap(),
        0,
        "idempotent"
    );
    // A writer that read version 1 writes it; one that thinks it is new does not.
    let closed = Market {
        active: false,
        ..due[0].clone()
    };
    assert!(s.write_markets(&[closed]).await.unwrap().is_empty());
    assert_eq!(s.get_market("0xold").await.unwrap().unwrap().version, 2);
    assert_eq!(s.markets_due(Tier::T2, noon).await.unwrap(), vec![]);
    let fresh = Market {
        version: 0,
        ..due[0].clone()
    };
    assert_eq!(
        s.write_markets(&[fresh]).await.unwrap(),
        vec!["0xold".to_string()]
    );
}

#[tokio::test]
async fn given_60_transitions_when_put_then_3_batch_writes_of_at_most_25_and_a_repeated_key_once() {
    let Some(s) = fresh_store("batch").await else {
        return;
    };
    let t = |n: u32, when: &str| polytape_core::ops::TierTransition {
        condition_id: format!("0x{n:064x}"),
        from_tier: Some(Tier::T1),
        to_tier: Some(Tier::T2),
        at: at(when),
        reason: "tier change".into(),
        hours_to_close: Some(6.0),
    };
    let mut all: Vec<_> = (0..60).map(|n| t(n, "2026-11-20T06:00:00Z")).collect();
    // One BatchWriteItem may not name a key twice (DynamoDB refuses the whole request).
    let mut again = t(0, "2026-11-20T06:00:00Z");
    again.hours_to_close = Some(5.0);
    all.insert(10, again.clone());
    s.put_transitions(&all).await.unwrap();
    let stats = s.write_stats();
    assert_eq!(stats.batch_write_calls, 3);
    assert_eq!(stats.max_batch_items, 25);
    let got = s.recent_transitions(100).await.unwrap();
    assert_eq!(got.len(), 60);
    assert!(got.contains(&again), "the last record of a key wins");
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
        s.write_markets(&[market(1, Some(Tier::T0), true)])
            .await
            .unwrap_err(),
    );
    assert!(!retryable, "{reason}");
    assert!(reason.contains(&names.markets_table), "{reason}");
    let (reason, retryable) = backend(
        s.markets_due(Tier::T2, at("2026-11-20T12:00:00Z"))
            .await
            .unwrap_err(),
    );
    assert!(
        !retryable && reason.contains(&names.markets_table),
        "{reason}"
    );

    let (reason, retryable) = backend(
        s.task_runs_since(at("2026-11-20T00:00:00Z"))
            .await
            .unwrap_err(),
    );
    assert!(!retryable && reason.contains(&names.ops_table), "{reason}");
    let (reason, retryable) = backend(
        s.claim_task(
            "discovery",
            at("2026-11-20T00:00:00Z"),
            at("2026-11-20T00:05:00Z"),
        )
        .await
        .unwrap_err(),
    );
    assert!(!retryable && reason.contains(&names.ops_table), "{reason}");

    let (reason, retryable) = backend(s.get_latest(Tier::T2).await.unwrap_err());
    assert!(!retryable && reason.contains(&names.bucket), "{reason}");
    assert!(reason.contains("latest/tier=2.json.gz"), "{reason}");
    let (reason, retryable) = backend(
        s.apply_latest(&[contract::many_latest(Tier::T2, 1)])
            .await
            .unwrap_err(),
    );
    assert!(!retryable && reason.contains("NoSuchBucket"), "{reason}");

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
async fn given_runs_on_several_days_then_runs_since_walk_the_days_by_start_time_newest_first() {
    let Some(s) = fresh_store("days").await else {
        return;
    };
    let run = |id: &str, started: &str| contract::task_run(id, started, TaskStatus::Ok, 1);
    let runs = [
        run("20261112T120000Z#discovery", "2026-11-12T12:00:00Z"), // expired a day ago
        run("20261118T120000Z#discovery", "2026-11-18T12:00:00Z"),
        run("20261120T080000Z#discovery", "2026-11-20T08:00:00Z"),
        run("20261120T090000Z#retier", "2026-11-20T09:00:00Z"),
        // A T0 tick of 10:00 retried, started 45 min after its id's time.
        run("20261120T100000Z#snapshot#T0", "2026-11-20T10:45:00Z"),
        // Yesterday's last tick, started after midnight: in yesterday's partition.
        run("20261119T235945Z#snapshot#T4", "2026-11-20T00:00:00.500Z"),
        run("20261121T000000Z#discovery", "2026-11-21T00:00:00Z"), // after the clock's today
    ];
    for r in &runs {
        s.put_task_run(r).await.unwrap();
    }
    // The store's clock says 2026-11-20T23:00Z.
    assert_eq!(
        s.task_runs_since(at("2026-11-01T00:00:00Z")).await.unwrap(),
        vec![
            runs[4].clone(),
            runs[3].clone(),
            runs[2].clone(),
            runs[5].clone(),
            runs[1].clone()
        ],
        "every unexpired run up to today, by start time, newest first"
    );
    assert_eq!(
        s.task_runs_since(at("2026-11-20T10:30:00Z")).await.unwrap(),
        vec![runs[4].clone()],
        "by start time, not by the time its id starts with"
    );
    assert_eq!(
        s.task_runs_since(at("2026-11-20T00:00:00Z")).await.unwrap(),
        vec![
            runs[4].clone(),
            runs[3].clone(),
            runs[2].clone(),
            runs[5].clone()
        ],
        "a run started after midnight is found in the partition of its id's day"
    );
    assert_eq!(
        s.task_runs_since(at("2026-11-20T22:00:00Z")).await.unwrap(),
        vec![]
    );

    // Coverage over a day boundary: since's day up to today, in order.
    let cov = |tier: Tier, tick: &str, failed: bool| polytape_core::ops::Coverage {
        tier,
        tick_ts: at(tick),
        expected: 2,
        written: if failed { 0 } else { 2 },
        missing: if failed { 2 } else { 0 },
        skipped: false,
        failed,
    };
    let late = cov(Tier::T4, "2026-11-19T23:59:45Z", true);
    let early = cov(Tier::T0, "2026-11-20T00:00:00Z", false);
    let before = cov(Tier::T4, "2026-11-19T23:59:30Z", false);
    for c in [&early, &late, &before] {
        s.put_coverage(c).await.unwrap();
    }
    assert_eq!(
        s.coverage_since(at("2026-11-19T23:59:31Z")).await.unwrap(),
        vec![late, early]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_runs_of_one_task_recorded_at_once_then_no_failure_is_lost_and_one_claim_wins() {
    let Some(s) = fresh_store("tasks").await else {
        return;
    };
    // Eight failed runs of one task record their state at the same moment: each read,
    // record, conditional put that loses reads again, so the count ends at 8.
    let mut tasks = Vec::new();
    for n in 0..8u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("20261120T12{n:02}00Z#discovery");
            let started = format!("2026-11-20T12:{n:02}:00Z");
            s.put_task_run(&contract::task_run(&id, &started, TaskStatus::Failed, 0))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let state = s.task_state("discovery").await.unwrap().unwrap();
    assert_eq!(
        state.consecutive_failures, 8,
        "no failure lost to a concurrent writer"
    );
    assert_eq!(state.first_seen_at, Some(at("2026-11-20T12:00:00Z")));
    assert_eq!(state.lease_until, None);

    // Eight runs try to take the lease at once: one gets it.
    let now = at("2026-11-20T13:00:00Z");
    let mut claims = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        claims.push(tokio::spawn(async move {
            s.claim_task("discovery", now, now + chrono::Duration::minutes(5))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for c in claims {
        won += usize::from(c.await.unwrap());
    }
    assert_eq!(won, 1, "one lease holder");
    let held = s.task_state("discovery").await.unwrap().unwrap();
    assert_eq!(held.lease_until, Some(now + chrono::Duration::minutes(5)));
    assert_eq!(
        held.consecutive_failures, 8,
        "claiming leaves the counts alone"
    );
    assert!(
        s.claim_task(
            "discovery",
            now + chrono::Duration::minutes(5),
            now + chrono::Duration::minutes(10)
        )
        .await
        .unwrap(),
        "an expired lease can be taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_8_ticks_of_one_tier_applied_at_once_then_each_is_counted_and_s3_refused_the_stale_puts(
) {
    let Some(s) = fresh_store("latestrace").await else {
        return;
    };
    // Overlapping T4 ticks 15 s apart, all spawned at once: each reads the object, applies
    // its tick and puts it back If-Match the ETag it read. The losers read again.
    let first = at("2026-11-20T12:00:00Z");
    let mut tasks = Vec::new();
    for n in 0..8i64 {
        let s = s.clone();
        let tick = first + chrono::Duration::seconds(15 * n);
        tasks.push(tokio::spawn(async move {
            let mut u = contract::many_latest(Tier::T4, 3);
            u.tick_ts = tick;
            u.rows[0].price = Some(rust_decimal::Decimal::new(n, 2));
            s.apply_latest(std::slice::from_ref(&u)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let latest = s.get_latest(Tier::T4).await.unwrap().unwrap();
    assert_eq!(latest.tick_ts, first + chrono::Duration::seconds(105));
    assert_eq!(latest.markets.len(), 3);
    assert!(
        latest.markets.iter().all(|e| e.snapshot_count == 8),
        "every tick counted once, none lost: {:?}",
        latest
            .markets
            .iter()
            .map(|e| e.snapshot_count)
            .collect::<Vec<_>>()
    );
    let stats = s.write_stats();
    eprintln!(
        "8 concurrent ticks: {} conditional puts, {} refused by S3",
        stats.latest_puts, stats.latest_conflicts
    );
    assert!(
        stats.latest_conflicts >= 1,
        "the puts overlapped, and S3 refused the stale ones"
    );
    assert_eq!(
        stats.latest_puts,
        8 + stats.latest_conflicts,
        "each refusal cost one more put"
    );
}

#[tokio::test]
async fn given_50000_markets_in_one_tier_then_the_latest_object_is_a_few_mb_of_gzip_json() {
    let Some(s) = fresh_store("latestsize").await else {
        return;
    };
    let update = contract::many_latest(Tier::T0, 50_000);
    s.apply_latest(std::slice::from_ref(&update)).await.unwrap();
    let bytes = s
        .get_object("latest/tier=0.json.gz")
        .await
        .unwrap()
        .unwrap();
    let per_market = bytes.len() as f64 / 50_000.0;
    eprintln!(
        "Latest object of 50,000 markets: {} bytes gzip-compressed ({per_market:.1} B per market)",
        bytes.len()
    );
    assert_eq!(s.write_stats().max_latest_bytes, bytes.len());
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    assert!(
        (40.0..=100.0).contains(&per_market),
        "{per_market:.1} bytes per market"
    );
    assert_eq!(
        s.get_latest(Tier::T0).await.unwrap().unwrap().markets.len(),
        50_000
    );
}

#[tokio::test]
async fn given_a_heartbeat_round_past_its_expiry_then_it_is_left_out_before_ttl_deletes_it() {
    let Some(s) = fresh_store("heartbeat").await else {
        return;
    };
    // The store's clock says 2026-11-20T23:00Z; moto never applies TTL, as real DynamoDB may
    // not for up to two days. A round expires a day after its newest heartbeat.
    let old = heartbeat("shard-00", "2026-11-19T22:59:00Z", 200, 0);
    let expired = heartbeat("shard-01", "2026-11-19T22:59:59Z", 200, 0);
    s.put_heartbeats(&[old.clone(), expired]).await.unwrap();
    assert_eq!(
        s.heartbeats().await.unwrap(),
        vec![],
        "a feed silent for a day"
    );
    let last_second = heartbeat("shard-01", "2026-11-19T23:00:01Z", 200, 0);
    s.put_heartbeats(&[old.clone(), last_second.clone()])
        .await
        .unwrap();
    assert_eq!(
        s.heartbeats().await.unwrap(),
        vec![old, last_second],
        "the round's newest heartbeat is a day old less a second: all of it is kept"
    );
}

#[tokio::test]
async fn given_live_feed_messages_when_sent_then_each_is_one_send_message_received_verbatim() {
    let Some(s) = fresh_store("livequeue").await else {
        return;
    };
    let cfg = moto_config().await.unwrap();
    let url = s.names().live_queue_url.clone();
    assert!(url.starts_with("http"), "provisioned: {url}");
    // A message the size the feed's packer closes at (250 KiB), and one holding a character
    // SQS refuses raw (U+FFFF, which serde_json leaves unescaped inside a string).
    let big = format!(
        "{{\"run\":1,\"seq\":1,\"records\":1}}\n{{\"tape\":{{\"text\":\"{}\"}}}}",
        "x".repeat(250 * 1024 - 64)
    );
    let odd = serde_json::json!({"run": 1, "seq": 2, "records": 0}).to_string()
        + "\n"
        + &serde_json::json!({"tape": {"text": "a\u{FFFF}b"}}).to_string();
    s.send_live_message(&big).await.unwrap();
    s.send_live_message(&odd).await.unwrap();
    let stats = s.write_stats();
    assert_eq!(stats.live_sends, 2);
    assert_eq!(
        stats.live_billed_requests,
        4 + 1,
        "250 KiB is 4 chunks of 64 KiB"
    );
    assert_eq!(stats.max_live_message_bytes, big.len());

    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        bodies.extend(
            out.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
        if bodies.len() == 2 {
            break;
        }
    }
    bodies.sort_by_key(|b| std::cmp::Reverse(b.len()));
    assert_eq!(bodies[0], big);
    let line: serde_json::Value = serde_json::from_str(bodies[1].lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        line["tape"]["text"], "a\u{FFFF}b",
        "the same text after JSON decoding"
    );

    // A store without a live queue refuses to send, naming the variable.
    let mut names = s.names().clone();
    names.live_queue_url.clear();
    let err = AwsStore::new(&cfg, names)
        .send_live_message("x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("POLYTAPE_LIVE_QUEUE_URL")),
        "{err}"
    );
}

/// A store given only the bucket (the trades function) reads and writes objects; a call to a
/// table or queue it was not given fails without a retry.
#[tokio::test]
async fn given_a_store_named_only_its_bucket_then_objects_work_and_other_resources_fail_for_good() {
    let Some(full) = fresh_store("bucketonly").await else {
        return;
    };
    let cfg = moto_config().await.unwrap();
    let vars = [("POLYTAPE_BUCKET", full.names().bucket.clone())];
    let names = AwsNames::from_lookup_for(
        |k| vars.iter().find(|(v, _)| *v == k).map(|(_, n)| n.clone()),
        &[polytape_store::aws::Resource::Bucket],
    )
    .unwrap();
    let s = AwsStore::new(&cfg, names);
    s.put_object(
        "trades/dt=2026-11-20/1-0-1.parquet",
        vec![1, 2],
        "application/vnd.apache.parquet",
    )
    .await
    .unwrap();
    assert_eq!(
        s.list_objects("trades/").await.unwrap(),
        vec!["trades/dt=2026-11-20/1-0-1.parquet".to_string()]
    );
    let err = s.active_markets().await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let err = s
        .enqueue_ticks(
            &due_in_minute(at("2026-11-20T10:00:00Z")),
            at("2026-11-20T10:00:00Z"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("POLYTAPE_TICKS_QUEUE_URL")),
        "{err}"
    );
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
    // For the silent endpoint only: timeouts far below the defaults (10 s / 3 s).
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

    // Given an endpoint that answers (moto), then the same calls on the same names succeed:
    // it was the silence that timed out, not the calls. With the default timeouts, as every
    // other test here: moto on a loaded machine may take longer than the short ones.
    let Some(moto) = moto_config().await else {
        return;
    };
    let names = provision::create_all(&moto, &names).await.unwrap();
    let store = AwsStore::new(&moto, names);
    assert_eq!(store.get_market("0xabc").await.unwrap(), None);
    assert_eq!(store.get_object("snapshots/x.parquet").await.unwrap(), None);
    store
        .enqueue_ticks(&ticks, at("2026-11-20T10:00:00Z"))
        .await
        .unwrap();
}

/// A TCP relay to moto on 127.0.0.1 that holds back, by `hold`, the answer to the first request
/// whose bytes contain `needle`: moto has applied that request, the SDK's attempt times out and
/// it sends the request again — an applied write whose answer was lost, as a loaded endpoint
/// or network makes one.
async fn relay_holding_first(moto_url: &str, needle: &'static [u8], hold: Duration) -> String {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = moto_url.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (target, held) = (target.clone(), held.clone());
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                // Set before the held request goes on, so its answer is the next one read.
                let hold_answer = Arc::new(AtomicBool::new(false));
                let mark = hold_answer.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        let hit = buf[..n].windows(needle.len()).any(|w| w == needle);
                        if hit && !held.swap(true, SeqCst) {
                            mark.store(true, SeqCst);
                        }
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                    if hold_answer.swap(false, SeqCst) {
                        tokio::time::sleep(hold).await;
                    }
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    url
}

/// A store on fresh resources whose calls go through [`relay_holding_first`]: one attempt may
/// take 2.5 s (room for a loaded moto's answers, which must not time out and be sent again),
/// the held answer comes after 8 s (well past the attempt, so the held one always times out),
/// and a call may take 60 s (the held attempt, the SDK's backoff and its retries).
async fn store_losing_first_answer(prefix: &str, needle: &'static [u8]) -> Option<AwsStore> {
    let url = std::env::var("POLYTAPE_MOTO_URL").ok();
    let cfg = moto_config().await?;
    let names = provision::create_all(&cfg, &AwsNames::unique(prefix))
        .await
        .expect("provision on moto");
    let relay = relay_holding_first(&url?, needle, Duration::from_secs(8)).await;
    let timeouts = SdkTimeouts {
        operation: Duration::from_secs(60),
        attempt: Duration::from_millis(2_500),
    };
    Some(
        AwsStore::with_timeouts(&config_for(&relay).await, names, timeouts)
            .with_clock(|| at("2026-11-20T23:00:00Z")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_task_state_put_whose_answer_is_lost_then_the_run_is_counted_once() {
    // The state's conditional put is the first request naming `state_version`: moto applies
    // it, its answer is held past the attempt timeout, the SDK retries, and the retry fails
    // the condition on the write itself. Counted again, the failure would read 2.
    let Some(s) = store_losing_first_answer("statelost", b"state_version").await else {
        return;
    };
    let run = contract::task_run(
        "20261120T120000Z#discovery",
        "2026-11-20T12:00:00Z",
        TaskStatus::Failed,
        0,
    );
    s.put_task_run(&run).await.unwrap();
    let state = s.task_state("discovery").await.unwrap().unwrap();
    assert_eq!(
        state.consecutive_failures, 1,
        "one failed run, counted once"
    );
    // A second run still records against the state the first left.
    let next = contract::task_run(
        "20261120T130000Z#discovery",
        "2026-11-20T13:00:00Z",
        TaskStatus::Failed,
        0,
    );
    s.put_task_run(&next).await.unwrap();
    let state = s.task_state("discovery").await.unwrap().unwrap();
    assert_eq!(state.consecutive_failures, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_claim_whose_answer_is_lost_then_it_holds_the_lease_and_the_next_claim_does_not() {
    // The claim is the first request naming `lease_holder`: applied, its answer held, the SDK's
    // retry refused by the lease it took. The claimer holds the lease; a second claim with
    // the same `until` (another instance's) is refused.
    let Some(s) = store_losing_first_answer("claimlost", b"lease_holder").await else {
        return;
    };
    let now = at("2026-11-20T13:00:00Z");
    let until = now + chrono::Duration::minutes(5);
    assert!(
        s.claim_task("discovery", now, until).await.unwrap(),
        "the claim whose answer was lost took the lease"
    );
    assert!(
        !s.claim_task("discovery", now, until).await.unwrap(),
        "another claim with the same expiry does not"
    );
    let held = s.task_state("discovery").await.unwrap().unwrap();
    assert_eq!(held.lease_until, Some(until));
}
