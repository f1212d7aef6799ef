//! The AWS adapters: [`AwsStore`] implements every port on DynamoDB (markets, ops), S3
//! (objects and the per-tier Latest values) and SQS (ticks), and sends the live feed's
//! messages to its queue. The table and key design, and what each call costs, are in
//! `docs/aws.md`; the short version is in each module's doc.
//!
//! Every write is idempotent (keys derive from the record, batch writes replace by key) or
//! conditional (a market on the version read, the Latest object on the ETag read, a task state
//! on its version, a lease on its expiry), and chunked to the service limits: 25 items per
//! `BatchWriteItem`, 10 entries and 256 KiB per `SendMessageBatch`. Items the service did not
//! process, and read-modify-writes that lost a race, are retried with backoff a bounded number
//! of times, then the call fails with a retryable error so Lambda's own retry (or the
//! caller's) takes over; nothing is dropped silently.
//!
//! # Timeouts
//! No SDK call can hang a Lambda: every DynamoDB, S3 and SQS client carries an operation
//! timeout (the whole call: its attempts and the SDK's backoff between them, default 10 s) and
//! an operation-attempt timeout (one HTTP attempt, default 3 s), on top of the SDK's own 3.1 s
//! connect timeout. An attempt that times out is retried by the SDK's standard retry policy
//! while the operation has time left; a call that runs out of time fails with the SDK's
//! timeout error, which [`StoreError::is_retryable`] calls retryable (the writes are
//! idempotent), so the invocation is retried rather than left hanging until Lambda kills it.
//! [`AwsStore::from_env`] reads them from `POLYTAPE_AWS_OPERATION_TIMEOUT_MS` and
//! `POLYTAPE_AWS_ATTEMPT_TIMEOUT_MS` ([`SdkTimeouts::from_env`]: whole milliseconds, each
//! 100–120,000, the attempt no longer than the operation); [`AwsStore::new`] uses the defaults.
//!
//! # Resource names
//! Each binary names only the resources it uses ([`AwsStore::from_env_for`] with its
//! [`Resource`]s): the trades function only the bucket, the Fargate feed task the two tables,
//! the bucket and the live queue. A resource it did not name has an empty name; the queue
//! sends refuse one with a [`StoreError::Config`], and any other call fails with the service's
//! own validation error, which is not retryable. [`AwsStore::from_env`] keeps naming the four
//! resources the scheduled functions use.
//!
//! # Layout
//! * this module: [`AwsStore`], [`AwsNames`] (resource names from the environment),
//!   [`Resource`] (which of them a binary needs),
//!   [`SdkTimeouts`] (the timeouts of every SDK call) and [`WriteStats`] (request counters the
//!   tests and the cost notes rely on).
//! * `markets`: the Markets table: versioned conditional puts and the sparse
//!   [`ACTIVE_BY_END_INDEX`] of the active markets by end date.
//! * `latest`: the Latest values, one gzip-compressed JSON object per tier on S3
//!   (`latest/tier=<n>.json.gz`), read, applied and put back conditionally on its ETag.
//! * `ops`: the Ops table: task runs, tier transitions, coverage (in day partitions), shard
//!   heartbeats (one item, each feed round's) and task states with their leases (one item per task).
//! * `objects`: S3.
//! * `queue`: the ticks queue on SQS.
//! * `live`: the live feed's queue on SQS: one `SendMessage` per packed feed message.
//! * `batch`: chunking, the bounded retry of partially processed batches, the jittered retry
//!   of conditional writes that lost a race.
//! * `item`: DynamoDB attribute values to and from domain values.
//! * `error`: SDK errors to [`StoreError::Backend`] with the retry classification.
//! * [`provision`]: creates the tables, the bucket and the queue (tests, moto, a developer).

mod batch;
mod error;
mod item;
mod latest;
mod live;
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
use std::time::Duration;

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
    /// URL of the SQS queue of the live feed's messages (`POLYTAPE_LIVE_QUEUE_URL`); empty
    /// for a binary that does not send them. [`provision::create_all`] creates it when it is
    /// named (a bare name or a URL, as for the ticks queue).
    pub live_queue_url: String,
}

/// Environment variable naming the Markets table.
pub const MARKETS_TABLE_VAR: &str = "POLYTAPE_MARKETS_TABLE";
/// Environment variable naming the Ops table.
pub const OPS_TABLE_VAR: &str = "POLYTAPE_OPS_TABLE";
/// Environment variable naming the bucket.
pub const BUCKET_VAR: &str = "POLYTAPE_BUCKET";
/// Environment variable holding the ticks queue URL.
pub const TICKS_QUEUE_URL_VAR: &str = "POLYTAPE_TICKS_QUEUE_URL";
/// Environment variable holding the live feed's queue URL.
pub const LIVE_QUEUE_URL_VAR: &str = "POLYTAPE_LIVE_QUEUE_URL";

/// One AWS resource a binary may use, named by one environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    MarketsTable,
    OpsTable,
    Bucket,
    TicksQueue,
    LiveQueue,
}

impl Resource {
    /// What the scheduled functions (discovery, snapshot, maintenance, status) use:
    /// [`AwsNames::from_env`] requires these.
    pub const SCHEDULED: [Resource; 4] = [
        Resource::MarketsTable,
        Resource::OpsTable,
        Resource::Bucket,
        Resource::TicksQueue,
    ];

    /// The environment variable naming it.
    pub fn var(self) -> &'static str {
        match self {
            Resource::MarketsTable => MARKETS_TABLE_VAR,
            Resource::OpsTable => OPS_TABLE_VAR,
            Resource::Bucket => BUCKET_VAR,
            Resource::TicksQueue => TICKS_QUEUE_URL_VAR,
            Resource::LiveQueue => LIVE_QUEUE_URL_VAR,
        }
    }
}

impl AwsNames {
    /// The names of [`Resource::SCHEDULED`] from the `POLYTAPE_*` environment variables (a
    /// missing or empty one is a [`StoreError::Config`] naming it), and the live queue's when
    /// it is set.
    pub fn from_env() -> Result<AwsNames> {
        AwsNames::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`AwsNames::from_env`] over `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AwsNames> {
        AwsNames::from_lookup_for(lookup, &Resource::SCHEDULED)
    }

    /// The names from `lookup`: each of `needed` must be set (else a [`StoreError::Config`]
    /// naming its variable); any other is taken when set and left empty when not, so a binary
    /// need not be given the names of resources it never touches.
    pub fn from_lookup_for(
        lookup: impl Fn(&str) -> Option<String>,
        needed: &[Resource],
    ) -> Result<AwsNames> {
        let get = |r: Resource| -> Result<String> {
            match lookup(r.var()) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                _ if !needed.contains(&r) => Ok(String::new()),
                _ => Err(StoreError::Config(format!(
                    "environment variable {} is not set (it names an AWS resource of polytape)",
                    r.var()
                ))),
            }
        };
        Ok(AwsNames {
            markets_table: get(Resource::MarketsTable)?,
            ops_table: get(Resource::OpsTable)?,
            bucket: get(Resource::Bucket)?,
            ticks_queue_url: get(Resource::TicksQueue)?,
            live_queue_url: get(Resource::LiveQueue)?,
        })
    }

    /// The name of `r`, or a [`StoreError::Config`] when this binary was not given it.
    pub fn require(&self, r: Resource) -> Result<&str> {
        let name = match r {
            Resource::MarketsTable => &self.markets_table,
            Resource::OpsTable => &self.ops_table,
            Resource::Bucket => &self.bucket,
            Resource::TicksQueue => &self.ticks_queue_url,
            Resource::LiveQueue => &self.live_queue_url,
        };
        if name.is_empty() {
            return Err(StoreError::Config(format!(
                "{} is not set, so this process cannot use that resource",
                r.var()
            )));
        }
        Ok(name)
    }

    /// Fresh names that no other call in any process has used: `<prefix>-<tag>-markets`, …,
    /// a bucket `<prefix>-<tag>-bucket` (lowercase, at most 63 characters) and the bare queue
    /// names `<prefix>-<tag>-ticks` and `<prefix>-<tag>-live` for [`provision::create_all`].
    /// For tests and experiments.
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
            live_queue_url: format!("{base}-live"),
        }
    }
}

/// Environment variable: the operation timeout of every SDK call, in milliseconds.
pub const OPERATION_TIMEOUT_VAR: &str = "POLYTAPE_AWS_OPERATION_TIMEOUT_MS";
/// Environment variable: the timeout of one attempt of an SDK call, in milliseconds.
pub const ATTEMPT_TIMEOUT_VAR: &str = "POLYTAPE_AWS_ATTEMPT_TIMEOUT_MS";

/// How long an SDK call may take, set on every DynamoDB, S3 and SQS client of the store (see
/// the module docs). Without them a call to an endpoint that accepts the connection and never
/// answers would wait until Lambda's own timeout killed the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkTimeouts {
    /// The whole call: every attempt and the backoff between them
    /// (`POLYTAPE_AWS_OPERATION_TIMEOUT_MS`, default 10 s).
    pub operation: Duration,
    /// One attempt, from sending the request to reading the whole response
    /// (`POLYTAPE_AWS_ATTEMPT_TIMEOUT_MS`, default 3 s).
    pub attempt: Duration,
}

impl Default for SdkTimeouts {
    /// 10 s per call, 3 s per attempt: room for the SDK's three attempts, and a hung call
    /// fails well before the snapshot (60 s), maintenance (120 s) and discovery (240 s)
    /// functions time out.
    fn default() -> Self {
        SdkTimeouts {
            operation: Duration::from_secs(10),
            attempt: Duration::from_secs(3),
        }
    }
}

impl SdkTimeouts {
    /// The bounds of either setting from the environment, in milliseconds: at least 100 ms (a
    /// DynamoDB or SQS round trip in-region takes a few ms, S3 tens), at most 2 minutes.
    pub const BOUNDS_MS: std::ops::RangeInclusive<u64> = 100..=120_000;

    /// The defaults overridden by `POLYTAPE_AWS_OPERATION_TIMEOUT_MS` and
    /// `POLYTAPE_AWS_ATTEMPT_TIMEOUT_MS`; a value that is not a whole number of milliseconds
    /// within [`SdkTimeouts::BOUNDS_MS`], or an attempt longer than the operation, is a
    /// [`StoreError::Config`] naming the variable.
    pub fn from_env() -> Result<SdkTimeouts> {
        SdkTimeouts::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`SdkTimeouts::from_env`] over `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<SdkTimeouts> {
        let ms = |var: &str, default: Duration| -> Result<Duration> {
            let Some(v) = lookup(var).filter(|v| !v.trim().is_empty()) else {
                return Ok(default);
            };
            match v.trim().parse::<u64>() {
                Ok(n) if SdkTimeouts::BOUNDS_MS.contains(&n) => Ok(Duration::from_millis(n)),
                _ => Err(StoreError::Config(format!(
                    "{var}={v:?}: expected whole milliseconds from {} to {}",
                    SdkTimeouts::BOUNDS_MS.start(),
                    SdkTimeouts::BOUNDS_MS.end()
                ))),
            }
        };
        let defaults = SdkTimeouts::default();
        let t = SdkTimeouts {
            operation: ms(OPERATION_TIMEOUT_VAR, defaults.operation)?,
            attempt: ms(ATTEMPT_TIMEOUT_VAR, defaults.attempt)?,
        };
        if t.attempt > t.operation {
            return Err(StoreError::Config(format!(
                "{ATTEMPT_TIMEOUT_VAR} ({} ms) is longer than {OPERATION_TIMEOUT_VAR} ({} ms): \
                 one attempt cannot outlast the whole call",
                t.attempt.as_millis(),
                t.operation.as_millis()
            )));
        }
        Ok(t)
    }

    /// The SDK's timeout config: these two timeouts; the rest (the connect timeout) comes from
    /// the `SdkConfig` the client is built from.
    fn config(&self) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(self.operation)
            .operation_attempt_timeout(self.attempt)
            .build()
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
    /// `SendMessage`s of live feed messages SQS accepted.
    pub live_sends: u64,
    /// The 64 KiB chunks those messages are billed as (SQS bills each 64 KiB of a payload as
    /// one request).
    pub live_billed_requests: u64,
    /// The largest live feed message sent, in bytes.
    pub max_live_message_bytes: usize,
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
    live_sends: AtomicU64,
    live_billed_requests: AtomicU64,
    max_live_message_bytes: AtomicUsize,
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

/// Every port on AWS: DynamoDB, S3 and SQS clients built once from one SDK config, each with
/// the [`SdkTimeouts`]. Cheap to clone: clones share the clients (and their connection pools)
/// and the counters.
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
    /// The adapters on the clients of `cfg`, with the default [`SdkTimeouts`]. When the config
    /// has an endpoint URL (moto, LocalStack: `AWS_ENDPOINT_URL`), S3 uses path-style
    /// addressing, since `<bucket>.<host>` names do not resolve for a local endpoint.
    pub fn new(cfg: &aws_config::SdkConfig, names: AwsNames) -> AwsStore {
        AwsStore::with_timeouts(cfg, names, SdkTimeouts::default())
    }

    /// [`AwsStore::new`] with these timeouts on every client. `cfg` needs an async sleep
    /// implementation for them (the one `aws_config` loads with the `rt-tokio` feature).
    pub fn with_timeouts(
        cfg: &aws_config::SdkConfig,
        names: AwsNames,
        timeouts: SdkTimeouts,
    ) -> AwsStore {
        AwsStore {
            ddb: ddb_client(cfg, timeouts),
            s3: s3_client(cfg, timeouts),
            sqs: sqs_client(cfg, timeouts),
            names: Arc::new(names),
            stats: Arc::default(),
            sent: Arc::default(),
            clock: Arc::new(chrono::Utc::now),
        }
    }

    /// Loads the SDK config once (region, credentials, `AWS_ENDPOINT_URL`), the resource
    /// names from [`AwsNames::from_env`] and the timeouts from [`SdkTimeouts::from_env`].
    pub async fn from_env() -> Result<AwsStore> {
        AwsStore::from_env_for(&Resource::SCHEDULED).await
    }

    /// [`AwsStore::from_env`] for a binary that uses only the `needed` resources: only their
    /// variables must be set ([`AwsNames::from_lookup_for`]).
    pub async fn from_env_for(needed: &[Resource]) -> Result<AwsStore> {
        let names = AwsNames::from_lookup_for(|k| std::env::var(k).ok(), needed)?;
        let timeouts = SdkTimeouts::from_env()?;
        let cfg = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(AwsStore::with_timeouts(&cfg, names, timeouts))
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
            live_sends: self.stats.live_sends.load(Ordering::Relaxed),
            live_billed_requests: self.stats.live_billed_requests.load(Ordering::Relaxed),
            max_live_message_bytes: self.stats.max_live_message_bytes.load(Ordering::Relaxed),
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

    fn record_live_send(&self, bytes: usize) {
        self.stats.live_sends.fetch_add(1, Ordering::Relaxed);
        self.stats
            .live_billed_requests
            .fetch_add(live::billed_requests(bytes), Ordering::Relaxed);
        self.stats
            .max_live_message_bytes
            .fetch_max(bytes, Ordering::Relaxed);
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

/// A DynamoDB client from `cfg` with `timeouts`.
pub(crate) fn ddb_client(
    cfg: &aws_config::SdkConfig,
    timeouts: SdkTimeouts,
) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(cfg)
        .timeout_config(timeouts.config())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// An SQS client from `cfg` with `timeouts`.
pub(crate) fn sqs_client(
    cfg: &aws_config::SdkConfig,
    timeouts: SdkTimeouts,
) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(cfg)
        .timeout_config(timeouts.config())
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// An S3 client from `cfg` with `timeouts`, path-style when an endpoint override is configured.
pub(crate) fn s3_client(cfg: &aws_config::SdkConfig, timeouts: SdkTimeouts) -> aws_sdk_s3::Client {
    let custom_endpoint = cfg.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let conf = aws_sdk_s3::config::Builder::from(cfg)
        .force_path_style(custom_endpoint)
        .timeout_config(timeouts.config())
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
    fn given_a_binary_that_names_only_the_bucket_then_the_other_variables_may_be_missing() {
        // The trades function: only POLYTAPE_BUCKET is set.
        let vars = env(&[(BUCKET_VAR, "data")]);
        let names =
            AwsNames::from_lookup_for(|k| vars.get(k).cloned(), &[Resource::Bucket]).unwrap();
        assert_eq!(names.bucket, "data");
        assert_eq!(
            (
                names.markets_table.as_str(),
                names.ticks_queue_url.as_str(),
                names.live_queue_url.as_str()
            ),
            ("", "", "")
        );
        assert_eq!(names.require(Resource::Bucket).unwrap(), "data");
        let err = names.require(Resource::TicksQueue).unwrap_err();
        assert!(
            matches!(&err, StoreError::Config(m) if m.contains(TICKS_QUEUE_URL_VAR)),
            "{err}"
        );
        assert!(!err.is_retryable());
        // Without the bucket it names the bucket's variable.
        let none = env(&[]);
        let err =
            AwsNames::from_lookup_for(|k| none.get(k).cloned(), &[Resource::Bucket]).unwrap_err();
        assert!(err.to_string().contains(BUCKET_VAR), "{err}");
        // The scheduled functions' names: the live queue is optional, taken when set.
        let mut vars = env(&[
            (MARKETS_TABLE_VAR, "m"),
            (OPS_TABLE_VAR, "o"),
            (BUCKET_VAR, "b"),
            (TICKS_QUEUE_URL_VAR, "t"),
        ]);
        assert_eq!(
            AwsNames::from_lookup(|k| vars.get(k).cloned())
                .unwrap()
                .live_queue_url,
            ""
        );
        vars.insert(LIVE_QUEUE_URL_VAR.into(), "https://sqs/1/live".into());
        assert_eq!(
            AwsNames::from_lookup(|k| vars.get(k).cloned())
                .unwrap()
                .live_queue_url,
            "https://sqs/1/live"
        );
    }

    #[test]
    fn given_no_timeout_variables_then_10_s_per_call_and_3_s_per_attempt() {
        let none = env(&[]);
        let t = SdkTimeouts::from_lookup(|k| none.get(k).cloned()).unwrap();
        assert_eq!(
            (t.operation, t.attempt),
            (Duration::from_secs(10), Duration::from_secs(3))
        );
        let c = t.config();
        assert_eq!(
            (c.operation_timeout(), c.operation_attempt_timeout()),
            (Some(Duration::from_secs(10)), Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn given_timeout_variables_then_they_apply_within_bounds_and_a_bad_one_is_named() {
        let vars = env(&[
            (OPERATION_TIMEOUT_VAR, " 20000 "),
            (ATTEMPT_TIMEOUT_VAR, "500"),
        ]);
        let t = SdkTimeouts::from_lookup(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(
            (t.operation, t.attempt),
            (Duration::from_secs(20), Duration::from_millis(500))
        );
        for (var, value) in [
            (OPERATION_TIMEOUT_VAR, "99"),
            (OPERATION_TIMEOUT_VAR, "120001"),
            (OPERATION_TIMEOUT_VAR, "10s"),
            (ATTEMPT_TIMEOUT_VAR, "-1"),
            (ATTEMPT_TIMEOUT_VAR, "0"),
        ] {
            let vars = env(&[(var, value)]);
            let err = SdkTimeouts::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
            assert!(
                matches!(&err, StoreError::Config(m) if m.contains(var) && m.contains("100 to 120000")),
                "{var}={value}: {err}"
            );
        }
        let vars = env(&[
            (OPERATION_TIMEOUT_VAR, "2000"),
            (ATTEMPT_TIMEOUT_VAR, "5000"),
        ]);
        let err = SdkTimeouts::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
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
            assert!(n.live_queue_url.ends_with("-live"));
        }
    }
}
