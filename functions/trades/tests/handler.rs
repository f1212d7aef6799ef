//! The trades function's batch handling on the recorded SQS event (`events/sqs-live-batch.json`,
//! see `tests/events.rs`), on the local adapter, on S3 (moto) through an `AwsStore` named only
//! its bucket, and on a store whose writes fail:
//! * the good messages' trades, whale event and tape are stored and read back as Parquet;
//! * exactly the two poisoned records (not a feed message, an empty body) are reported; the
//!   message with one bad line is stored without it and not reported;
//! * the batch's messages go into one file per table named by exactly the messages it holds;
//!   the batch delivered again, or one message alone, finds them stored and adds nothing;
//! * after a batch failed half-way (one table written, another not), its messages delivered
//!   again apart are each stored once in every table;
//! * a store that cannot write gets every feed message reported, and the poison too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use polytape_store::aws::{provision, AwsNames, AwsStore, Resource};
use polytape_store::{keys, parquet, LocalStore, ObjectStore, Result, StoreError};
use rust_decimal::Decimal;
use std::str::FromStr;

/// The feed run of the recorded messages (2026-11-20T12:00:00Z).
const RUN: i64 = 1_795_176_000_000;

fn event() -> SqsEvent {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/events/sqs-live-batch.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn key(table: &str, seq: u64) -> String {
    let day = "2026-11-20T12:00:00Z".parse().unwrap();
    keys::live(table, day, RUN, 0, seq)
}

/// Every object under the three live tables, with its bytes.
async fn live_objects(store: &impl ObjectStore) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for table in [keys::TRADES, keys::WHALE_EVENTS, keys::RAW_WS] {
        for k in store.list_objects(&format!("{table}/")).await.unwrap() {
            let bytes = store.get_object(&k).await.unwrap().unwrap();
            out.push((k, bytes));
        }
    }
    out
}

/// Rows of a Parquet file.
fn rows(bytes: &[u8]) -> usize {
    use ::parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.to_vec())).unwrap();
    reader.metadata().file_metadata().num_rows() as usize
}

/// Given the recorded batch, when handled twice, then the good messages are stored once, under
/// their run and sequence, and exactly the poisoned records are reported each time.
async fn stores_the_batch_and_reports_only_the_poison(store: &impl ObjectStore) {
    let event = event();
    let report = trades::handle_batch(store, &event).await;
    let failures: Vec<String> = report
        .response()
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec!["m-not-feed", "m-empty"]);
    assert_eq!((report.poison.len(), report.failed.len()), (2, 0));
    // Message 1: 5 trades and 14 tape records; message 2: 1 trade (the other line is bad), the
    // whale event and its tape.
    let stored: Vec<(u64, usize, usize, usize)> = report
        .stored
        .iter()
        .map(|r| (r.seq, r.trades, r.whales, r.bad_records))
        .collect();
    assert_eq!(stored, vec![(1, 5, 0, 0), (2, 1, 1, 1)]);
    assert_eq!(
        report.rejected_inputs(),
        3,
        "1 bad record + 2 poison bodies"
    );
    let doc = trades::metrics(&report, 1).unwrap();
    assert_eq!(
        (doc["RejectedInputs"].as_u64(), doc["TaskFailures"].as_u64()),
        (Some(3), Some(0))
    );

    // One file per table for the batch's messages of the run and hour, named by exactly the
    // messages it holds: trades of 1 and 2, the whale event of 2 alone, the tape of 1 and 2.
    let objects = live_objects(store).await;
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            set_key(keys::TRADES, &[1, 2]),
            key(keys::WHALE_EVENTS, 2),
            set_key(keys::RAW_WS, &[1, 2]),
        ]
    );
    assert_eq!(
        report
            .stored
            .iter()
            .map(|r| r.keys.clone())
            .collect::<Vec<_>>(),
        vec![
            vec![
                set_key(keys::TRADES, &[1, 2]),
                set_key(keys::RAW_WS, &[1, 2])
            ],
            vec![
                set_key(keys::TRADES, &[1, 2]),
                key(keys::WHALE_EVENTS, 2),
                set_key(keys::RAW_WS, &[1, 2])
            ],
        ]
    );
    // The trades read back: message 1's five YES trades at their prices and sizes, the whale
    // among them ($2,450 notional).
    let trades = parquet::decode_trades(&objects[0].1).unwrap();
    assert_eq!(
        trades.len(),
        6,
        "message 1's five trades, then message 2's one"
    );
    let first = &trades[..5];
    let d = |s: &str| Decimal::from_str(s).unwrap();
    assert_eq!(
        first
            .iter()
            .map(|t| (t.price, t.size.unwrap()))
            .collect::<Vec<_>>(),
        vec![
            (d("0.49"), d("85.36")),
            (d("0.48"), d("12.5")),
            (d("0.49"), d("5000")),
            (d("0.5"), d("40")),
            (d("0.48"), d("310.2")),
        ]
    );
    assert_eq!(
        first
            .iter()
            .filter(|t| t.notional == Some(d("2450")))
            .count(),
        1
    );
    assert_eq!(rows(&objects[1].1), 1, "one whale event");
    let tape = parquet::decode_tape(&objects[2].1).unwrap();
    assert_eq!(
        tape.len(),
        9 + 4,
        "message 1: 2 control records, a book, a price change, 5 trade frames; message 2: 4"
    );
    assert_eq!(
        tape[..9].iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );

    // Delivered again — the whole batch, or one message alone in another batch (a retry, a
    // duplicate delivery): the messages are found in the files' names, reported stored under
    // those files, and nothing is written or added.
    let again = trades::handle_batch(store, &event).await;
    assert_eq!(again.poison, report.poison);
    assert_eq!(again.stored, report.stored);
    let alone = trades::handle_batch(store, &only(&event, &["m-feed-2-bad-line"])).await;
    assert_eq!(alone.stored, report.stored[1..]);
    assert_eq!(live_objects(store).await, objects);
}

/// The batch's name for the messages `seqs` of the recorded run, stored together.
fn set_key(table: &str, seqs: &[u64]) -> String {
    let day = "2026-11-20T12:00:00Z".parse().unwrap();
    keys::live_set(table, day, RUN, 0, seqs)
}

/// The records of `event` with these message ids, in that order: another batch.
fn only(event: &SqsEvent, ids: &[&str]) -> SqsEvent {
    let mut out = SqsEvent::default();
    for id in ids {
        let r = event
            .records
            .iter()
            .find(|r| r.message_id.as_deref() == Some(*id))
            .unwrap();
        out.records.push(r.clone());
    }
    out
}

#[tokio::test]
async fn on_the_local_store_the_good_messages_are_stored_once_and_the_poison_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    stores_the_batch_and_reports_only_the_poison(&store).await;
}

#[tokio::test]
async fn on_s3_with_only_the_bucket_named_the_good_messages_are_stored_once() {
    let Ok(url) = std::env::var("POLYTAPE_MOTO_URL") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "POLYTAPE_MOTO_URL is not set: run infra/test.sh, which starts moto"
        );
        eprintln!("SKIP: POLYTAPE_MOTO_URL is not set (infra/test.sh starts moto)");
        return;
    };
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .endpoint_url(&url)
        .load()
        .await;
    let created = provision::create_all(&cfg, &AwsNames::unique("trades"))
        .await
        .unwrap();
    // As the function reads its environment: only POLYTAPE_BUCKET.
    let env = [("POLYTAPE_BUCKET", created.bucket.clone())];
    let names = AwsNames::from_lookup_for(
        |k| env.iter().find(|(v, _)| *v == k).map(|(_, n)| n.clone()),
        &[Resource::Bucket],
    )
    .unwrap();
    assert_eq!(names.ticks_queue_url, "");
    let store = AwsStore::new(&cfg, names);
    stores_the_batch_and_reports_only_the_poison(&store).await;
}

/// A store that refuses every write, retryably (S3 throttling, say).
struct Refusing;

impl ObjectStore for Refusing {
    async fn put_object(&self, key: &str, _: Vec<u8>, _: &str) -> Result<()> {
        Err(StoreError::Backend {
            reason: format!("PutObject on s3://bucket/{key}: SlowDown"),
            retryable: true,
        })
    }
    async fn get_object(&self, _: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn list_objects(&self, _: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn when_storage_fails_then_every_feed_message_is_reported_for_redelivery() {
    let report = trades::handle_batch(&Refusing, &event()).await;
    assert_eq!(report.failed, vec!["m-feed-1", "m-feed-2-bad-line"]);
    assert_eq!(report.poison, vec!["m-not-feed", "m-empty"]);
    assert!(report.stored.is_empty());
    let reported: Vec<String> = report
        .response()
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(reported.len(), 4, "the whole batch, each record once");
    let doc = trades::metrics(&report, 1).unwrap();
    assert_eq!(doc["TaskFailures"], 2);
    // The partial batch response as Lambda reads it.
    let json = serde_json::to_value(report.response()).unwrap();
    assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "m-not-feed");
}

#[tokio::test]
async fn an_empty_batch_reports_nothing_and_prints_no_metrics() {
    let report = trades::handle_batch(&Refusing, &SqsEvent::default()).await;
    assert!(report.response().batch_item_failures.is_empty());
    assert!(trades::metrics(&report, 1).is_none());
}

/// The local store, refusing writes under `prefix` while `refuse` holds (one table's PUTs
/// failing after the others succeeded).
struct RefusingUnder<'a> {
    inner: &'a LocalStore,
    prefix: &'static str,
    refuse: std::sync::atomic::AtomicBool,
}

impl ObjectStore for RefusingUnder<'_> {
    async fn put_object(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        if key.starts_with(self.prefix) && self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend {
                reason: format!("PutObject on s3://bucket/{key}: SlowDown"),
                retryable: true,
            });
        }
        self.inner.put_object(key, bytes, content_type).await
    }
    async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get_object(key).await
    }
    async fn list_objects(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list_objects(prefix).await
    }
}

/// Given a batch whose tape write failed after its trades and whale event were stored, when
/// its messages come back one by one in other batches, then each table holds every message's
/// rows exactly once: the trades and the whale event are not written again, the tape is.
#[tokio::test]
async fn after_a_partial_failure_the_messages_delivered_again_apart_are_each_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).unwrap();
    let store = RefusingUnder {
        inner: &local,
        prefix: "raw_ws/",
        refuse: std::sync::atomic::AtomicBool::new(true),
    };
    let event = event();
    let first = trades::handle_batch(&store, &event).await;
    assert_eq!(first.failed, vec!["m-feed-1", "m-feed-2-bad-line"]);
    let stored: Vec<String> = live_objects(&local)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        stored,
        vec![set_key(keys::TRADES, &[1, 2]), key(keys::WHALE_EVENTS, 2)],
        "written before the tape failed"
    );

    store
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let second = trades::handle_batch(&store, &only(&event, &["m-feed-2-bad-line"])).await;
    let third = trades::handle_batch(&store, &only(&event, &["m-feed-1"])).await;
    assert!(second.failed.is_empty() && third.failed.is_empty());
    let objects = live_objects(&local).await;
    let names: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        vec![
            set_key(keys::TRADES, &[1, 2]),
            key(keys::WHALE_EVENTS, 2),
            key(keys::RAW_WS, 1),
            key(keys::RAW_WS, 2),
        ]
    );
    let trades: usize = objects[..1]
        .iter()
        .map(|(_, b)| parquet::decode_trades(b).unwrap().len())
        .sum();
    let tape: usize = objects[2..]
        .iter()
        .map(|(_, b)| parquet::decode_tape(b).unwrap().len())
        .sum();
    assert_eq!(
        (trades, rows(&objects[1].1), tape),
        (6, 1, 13),
        "every row once"
    );
    assert_eq!(
        third.stored[0].keys,
        vec![set_key(keys::TRADES, &[1, 2]), key(keys::RAW_WS, 1)]
    );
}

/// Given one message twice in a batch (SQS may deliver a copy beside the original), then it is
/// stored once and both records are reported stored, so neither comes back.
#[tokio::test]
async fn a_message_twice_in_one_batch_is_stored_once_and_both_records_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut batch = only(&event(), &["m-feed-1", "m-feed-1"]);
    batch.records[1].message_id = Some("m-feed-1-copy".into());
    let report = trades::handle_batch(&store, &batch).await;
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(report.stored.len(), 2);
    assert_eq!(report.stored[0], report.stored[1]);
    let objects = live_objects(&store).await;
    let names: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, vec![key(keys::TRADES, 1), key(keys::RAW_WS, 1)]);
    assert_eq!(parquet::decode_trades(&objects[0].1).unwrap().len(), 5);
    assert_eq!(parquet::decode_tape(&objects[1].1).unwrap().len(), 9);
}

/// Given a batch where one message's rows cannot be stored (a tape record whose sequence does
/// not fit the table's bigint), then only that message fails — reported, so that after its
/// receives the dead-letter queue holds it — and the others' rows are stored, each message's
/// in a file of its own.
#[tokio::test]
async fn rows_a_table_cannot_hold_fail_only_their_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut batch = only(&event(), &["m-feed-1", "m-feed-1"]);
    batch.records[1].message_id = Some("m-unstorable".into());
    batch.records[1].body = Some(format!(
        "{{\"run\":{RUN},\"seq\":3,\"records\":1}}\n{{\"tape\":{{\"run\":{RUN},\"shard\":0,\"seq\":{},\"received_at\":\"2026-11-20T12:02:00Z\",\"kind\":\"control\",\"part\":0,\"parts\":1,\"text\":\"{{}}\"}}}}",
        u64::MAX
    ));
    let report = trades::handle_batch(&store, &batch).await;
    assert_eq!(report.failed, vec!["m-unstorable"]);
    assert_eq!(
        report.stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1]
    );
    let names: Vec<String> = live_objects(&store)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, vec![key(keys::TRADES, 1), key(keys::RAW_WS, 1)]);
    // Delivered again, it fails the same way and adds nothing.
    let again = trades::handle_batch(&store, &only(&batch, &["m-unstorable"])).await;
    assert_eq!(again.failed, vec!["m-unstorable"]);
    assert_eq!(live_objects(&store).await.len(), 2);
}
