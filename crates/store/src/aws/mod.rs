//! The AWS adapters: [`AwsStore`] implements every port on DynamoDB (markets, ops), S3
//! (objects and the per-tier Latest values) and SQS (ticks). The table and key design, and
//! what each call costs, are in `docs/aws.md`; the short version is in each module's doc.
//!
//! Every write is idempotent (keys derive from the record, batch writes replace by key) or
//! conditional (a market on the version read, the Latest object on the ETag read, a task state
//! on its version, a lease on its expiry), and chunked to the service limits: 25 items per
//! `BatchWriteItem`, 10 entries and 256 KiB per `SendMessageBatch`. Items the service did not
//! process, and read-modify-writes that lost a race, are retried with backoff a bounded number
//! of times, then the call fails with a retryable error so Lambda's own retry (or the
//! caller's) takes over; nothing is dropped silently.
//!
//! # Layout
//! * this module: [`AwsStore`], [`AwsNames`] (resource names from the environment) and
//!   [`WriteStats`] (request counters the tests and the cost notes rely on).
//! * `markets`: the Markets table: versioned conditional puts and the sparse
//!   [`ACTIVE_BY_END_INDEX`] of the active markets by end date.
//! * `latest`: the Latest values, one gzip-compressed JSON object per tier on S3
//!   (`latest/tier=<n>.json.gz`), read, applied and put back conditionally on its ETag.
//! * `ops`: the Ops table: task runs, tier transitions, coverage (in day partitions), shard
//!   heartbeats (one item per shard) and task states with their leases (one item per task).
//! * `objects`: S3.
//! * `queue`: the ticks queue on SQS.
//! * `batch`: chunking, the bounded retry of partially processed batches, the jittered retry
//!   of conditional writes that lost a race.
//! * `item`: DynamoDB attribute values to and from domain values.
//! * `error`: SDK errors to [`StoreError::Backend`] with the retry classification.
//! * [`provision`]: creates the tables, the bucket and the queue (tests, moto, a developer).

mod batch;
mod error;
mod item;
mod latest;
mod markets;
mod objects;
mod ops;
pub mod provision;
mod queue;

use crate::error::{Result, StoreError};
use polytape_core::{TickId, Ts};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use latest::LATEST_CONTENT_TYPE;
pub use markets::{
    ACTIVE_BY_END_INDEX, END_DATE_ATTR, LIVE_ATTR, LIVE_VALUE, MARKET_WRITES_IN_FLIGHT,
};

/// The names of the resources the adapters use; in Lambda they come from the environment
/// (template.yaml sets them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsNames {
    /// DynamoDB Markets table (`POLYTAPE_MARKETS_TABLE`).
    pub markets_table: String,
    /// DynamoDB Ops table (`POLYTAPE_OPS_TABLE`).
    pub ops_table: String,
    /// S3 bucket of the Parquet files, the Latest objects and other objects
    /// (`POLYTAPE_BUCKET`).
    pub bucket: String,
    /// URL of the SQS ticks queue (`POLYTAPE_TICKS_QUEUE_URL`). [`provision::create_all`] also
    /// accepts a bare queue name here and returns the URL SQS reports.
    pub ticks_queue_url: String,
}

/// Environment variable naming the Markets table.
pub const MARKETS_TABLE_VAR: &str = "POLYTAPE_MARKETS_TABLE";
/// Environment variable naming the Ops table.
pub const OPS_TABLE_VAR: &str = "POLYTAPE_OPS_TABLE";
/// Environment variable naming the bucket.
pub const BUCKET_VAR: &str = "POLYTAPE_BUCKET";
/// Environment variable holding the ticks queue URL.
pub const TICKS_QUEUE_URL_VAR: &str = "POLYTAPE_TICKS_QUEUE_URL";

impl AwsNames {
    /// The names from the `POLYTAPE_*` environment variables; a missing or empty one is a
    /// [`StoreError::Config`] naming it.
    pub fn from_env() -> Result<AwsNames> {
        AwsNames::from_lookup(|k| std::env::var(k).ok())
    }

    /// The names from `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AwsNames> {
        let get = |var: &str| -> Result<String> {
            match lookup(var) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                _ => Err(StoreError::Config(format!(
                    "environment variable {var} is not set (it names an AWS resource of polytape)"
                ))),
            }
        };
        Ok(AwsNames {
            markets_table: get(MARKETS_TABLE_VAR)?,
            ops_table: get(OPS_TABLE_VAR)?,
            bucket: get(BUCKET_VAR)?,
            ticks_queue_url: get(TICKS_QUEUE_URL_VAR)?,
        })
    }

    /// Fresh names that no other call in any process has used: `<prefix>-<tag>-markets`, …,
    /// a bucket `<prefix>-<tag>-bucket` (lowercase, at most 63 characters) and the bare queue
    /// name `<prefix>-<tag>-ticks` for [`provision::create_all`]. For tests and experiments.
    pub fn unique(prefix: &str) -> AwsNames {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tag = format!(
            "{:x}{:08x}{:x}",
            std::process::id(),
            nanos,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(63usize.saturating_sub(tag.len() + "--bucket".len()))
            .collect();
        let base = format!("{}-{tag}", clean.trim_matches('-'));
        AwsNames {
            markets_table: format!("{base}-markets"),
            ops_table: format!("{base}-ops"),
            bucket: format!("{base}-bucket"),
            ticks_queue_url: format!("{base}-ticks"),
        }
    }
}

/// Request counters of one [`AwsStore`] (shared by its clones): what the cost notes assume
/// and the tests check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// `BatchWriteItem` requests sent, retries of unprocessed items included.
    pub batch_write_calls: u64,
    /// The most items any one `BatchWriteItem` carried (at most 25).
    pub max_batch_items: usize,
    /// `SendMessageBatch` requests sent, retries of failed entries included.
    pub sqs_batch_calls: u64,
    /// The most entries any one `SendMessageBatch` carried (at most 10).
    pub max_sqs_entries: usize,
    /// Conditional market `PutItem`s sent (one per market written or refused).
    pub market_puts: u64,
    /// The most market puts in flight at once (at most [`MARKET_WRITES_IN_FLIGHT`]).
    pub max_market_puts_in_flight: usize,
    /// Conditional `PutObject`s of Latest objects sent, refused ones included.
    pub latest_puts: u64,
    /// Latest puts S3 refused because another tick wrote first (each one re-read and
    /// re-applied).
    pub latest_conflicts: u64,
    /// The size of the largest Latest object put, in bytes (gzip-compressed).
    pub max_latest_bytes: usize,
}

#[derive(Debug, Default)]
struct Stats {
    batch_write_calls: AtomicU64,
    max_batch_items: AtomicUsize,
    sqs_batch_calls: AtomicU64,
    max_sqs_entries: AtomicUsize,
    market_puts: AtomicU64,
    market_puts_in_flight: AtomicUsize,
    max_market_puts_in_flight: AtomicUsize,
    latest_puts: AtomicU64,
    latest_conflicts: AtomicU64,
    max_latest_bytes: AtomicUsize,
}

/// Counts one market put as in flight until dropped.
struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.market_puts_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many enqueued ticks [`AwsStore::sent_ticks`] remembers: enough for the dispatcher's
/// last minutes, bounded so a warm Lambda does not grow.
const SENT_LOG_CAP: usize = 1024;

/// The clock that picks the day partitions the Ops reads start from.
type Clock = Arc<dyn Fn() -> Ts + Send + Sync>;

/// Every port on AWS: DynamoDB, S3 and SQS clients built once from one SDK config. Cheap to
/// clone: clones share the clients (and their connection pools) and the counters.
#[derive(Clone)]
pub struct AwsStore {
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    names: Arc<AwsNames>,
    stats: Arc<Stats>,
    sent: Arc<Mutex<VecDeque<(TickId, u32)>>>,
    clock: Clock,
}

impl fmt::Debug for AwsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsStore")
            .field("names", &self.names)
            .field("stats", &self.write_stats())
            .finish_non_exhaustive()
    }
}

impl AwsStore {
    /// The adapters on the clients of `cfg`. When the config has an endpoint URL (moto,
    /// LocalStack: `AWS_ENDPOINT_URL`), S3 uses path-style addressing, since
    /// `<bucket>.<host>` names do not resolve for a local endpoint.
    pub fn new(cfg: &aws_config::SdkConfig, names: AwsNames) -> AwsStore {
        AwsStore {
            ddb: aws_sdk_dynamodb::Client::new(cfg),
            s3: s3_client(cfg),
            sqs: aws_sdk_sqs::Client::new(cfg),
            names: Arc::new(names),
            stats: Arc::default(),
            sent: Arc::default(),
            clock: Arc::new(chrono::Utc::now),
        }
    }

    /// Loads the SDK config once (region, credentials, `AWS_ENDPOINT_URL`) and the resource
    /// names from [`AwsNames::from_env`].
    pub async fn from_env() -> Result<AwsStore> {
        let names = AwsNames::from_env()?;
        let cfg = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(AwsStore::new(&cfg, names))
    }

    /// Replaces the wall clock that picks which day partitions of the Ops table the reads
    /// start from (today, walking back). The simulator and tests with fixed dates set it.
    pub fn with_clock(mut self, clock: impl Fn() -> Ts + Send + Sync + 'static) -> AwsStore {
        self.clock = Arc::new(clock);
        self
    }

    /// The resource names in use.
    pub fn names(&self) -> &AwsNames {
        &self.names
    }

    /// The request counters so far (all clones together).
    pub fn write_stats(&self) -> WriteStats {
        WriteStats {
            batch_write_calls: self.stats.batch_write_calls.load(Ordering::Relaxed),
            max_batch_items: self.stats.max_batch_items.load(Ordering::Relaxed),
            sqs_batch_calls: self.stats.sqs_batch_calls.load(Ordering::Relaxed),
            max_sqs_entries: self.stats.max_sqs_entries.load(Ordering::Relaxed),
            market_puts: self.stats.market_puts.load(Ordering::Relaxed),
            max_market_puts_in_flight: self.stats.max_market_puts_in_flight.load(Ordering::Relaxed),
            latest_puts: self.stats.latest_puts.load(Ordering::Relaxed),
            latest_conflicts: self.stats.latest_conflicts.load(Ordering::Relaxed),
            max_latest_bytes: self.stats.max_latest_bytes.load(Ordering::Relaxed),
        }
    }

    /// The last ticks SQS accepted (up to 1,024), each with the `DelaySeconds` it was sent
    /// with ([`crate::queue::delay_for`] of the dispatch time), oldest first. SQS cannot report a message's delay back, so this is what checks it.
    pub fn sent_ticks(&self) -> Vec<(TickId, u32)> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    fn now(&self) -> Ts {
        (self.clock)()
    }

    fn record_batch_write(&self, items: usize) {
        self.stats.batch_write_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .max_batch_items
            .fetch_max(items, Ordering::Relaxed);
    }

    fn market_put_started(&self) -> InFlight<'_> {
        self.stats.market_puts.fetch_add(1, Ordering::Relaxed);
        let now = self
            .stats
            .market_puts_in_flight
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        self.stats
            .max_market_puts_in_flight
            .fetch_max(now, Ordering::Relaxed);
        InFlight(&self.stats)
    }

    fn record_latest_put(&self, bytes: usize) {
        self.stats.latest_puts.fetch_add(1, Ordering::Relaxed);
        self.stats
            .max_latest_bytes
            .fetch_max(bytes, Ordering::Relaxed);
    }

    fn record_latest_conflict(&self) {
        self.stats.latest_conflicts.fetch_add(1, Ordering::Relaxed);
    }

    fn record_sqs_batch(&self, entries: usize) {
        self.stats.sqs_batch_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .max_sqs_entries
            .fetch_max(entries, Ordering::Relaxed);
    }

    fn record_sent(&self, ticks: impl IntoIterator<Item = (TickId, u32)>) {
        let mut log = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        for t in ticks {
            if log.len() == SENT_LOG_CAP {
                log.pop_front();
            }
            log.push_back(t);
        }
    }
}

/// An S3 client from `cfg`, path-style when an endpoint override is configured.
pub(crate) fn s3_client(cfg: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = cfg.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let conf = aws_sdk_s3::config::Builder::from(cfg)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn given_every_variable_then_names_are_read_and_a_missing_one_is_named() {
        let mut vars = env(&[
            (MARKETS_TABLE_VAR, "m"),
            ("POLYTAPE_LATEST_TABLE", "no longer read"),
            (OPS_TABLE_VAR, "o"),
            (BUCKET_VAR, "b"),
            (
                TICKS_QUEUE_URL_VAR,
                "https://sqs.us-east-1.amazonaws.com/1/t",
            ),
        ]);
        let names = AwsNames::from_lookup(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(names.ops_table, "o");
        assert_eq!(
            names.ticks_queue_url,
            "https://sqs.us-east-1.amazonaws.com/1/t"
        );

        vars.insert(BUCKET_VAR.into(), "  ".into());
        let err = AwsNames::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert!(
            matches!(&err, StoreError::Config(m) if m.contains("POLYTAPE_BUCKET")),
            "{err}"
        );
        assert!(!err.is_retryable());
        vars.remove(OPS_TABLE_VAR);
        let err = AwsNames::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("POLYTAPE_OPS_TABLE"), "{err}");
    }

    #[test]
    fn unique_names_differ_and_are_valid_bucket_names() {
        let a = AwsNames::unique("Polytape Test_with-a-very-long-prefix-that-goes-on-and-on");
        let b = AwsNames::unique("Polytape Test_with-a-very-long-prefix-that-goes-on-and-on");
        assert_ne!(a.bucket, b.bucket);
        assert_ne!(a.markets_table, b.markets_table);
        for n in [&a, &b] {
            assert!(n.bucket.len() <= 63 && n.bucket.len() >= 3, "{}", n.bucket);
            assert!(
                n.bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                n.bucket
            );
            assert!(n.bucket.starts_with("polytape-test-with"));
            assert!(n.ticks_queue_url.ends_with("-ticks"));
        }
    }
}
