//! The trades function's batch handling on the recorded SQS event (`events/sqs-live-batch.json`,
//! see `tests/events.rs`), on the local adapter, on S3 (moto) through an `AwsStore` named only
//! its bucket, and on a store whose writes fail:
//! * the good messages' trades, whale event and tape are stored and read back as Parquet;
//! * exactly the two poisoned records (not a feed message, an empty body) are reported; the
//!   message with one bad line is stored without it and not reported;
//! * a redelivered batch rewrites the same keys: the same objects, no more;
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

    let objects = live_objects(store).await;
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            key(keys::TRADES, 1),
            key(keys::TRADES, 2),
            key(keys::WHALE_EVENTS, 2),
            key(keys::RAW_WS, 1),
            key(keys::RAW_WS, 2),
        ]
    );
    // The trades read back: message 1's five YES trades at their prices and sizes, the whale
    // among them ($2,450 notional).
    let first = parquet::decode_trades(&objects[0].1).unwrap();
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
    assert_eq!(parquet::decode_trades(&objects[1].1).unwrap().len(), 1);
    assert_eq!(rows(&objects[2].1), 1, "one whale event");
    let tape_1 = parquet::decode_tape(&objects[3].1).unwrap();
    assert_eq!(
        tape_1.len(),
        9,
        "2 control records, a book, a price change, 5 trade frames"
    );
    assert_eq!(
        tape_1.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    assert_eq!(parquet::decode_tape(&objects[4].1).unwrap().len(), 4);

    // Redelivered (a retry of the whole batch, or a duplicate delivery): the same keys are
    // rewritten with the same content, nothing is added.
    let again = trades::handle_batch(store, &event).await;
    assert_eq!(again.poison, report.poison);
    assert_eq!(live_objects(store).await, objects);
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
