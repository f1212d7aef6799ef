//! ws-fargate: polytape's live feed as one long-running process (an ECS Fargate task). It runs
//! [`polytape_collector::live::run_feed`] — the shard supervisor over the CLOB market
//! WebSocket for the T2–T4 markets of the Markets table — with:
//! * an SQS sink ([`SqsSink`]): each packed feed message (trades and whale events) is one
//!   `SendMessage` to the live queue, which the trades function stores as Parquet;
//! * the AWS store for the rest: the markets to hear from DynamoDB (range queries of the
//!   `active_by_end` index), each heartbeat round to the Ops table, the flow to
//!   `live/flow.json` and the raw tape (`raw_ws`, one object per 5 minutes or 32 MiB, by the
//!   feed runner's tape writer, spooled on the task's ephemeral storage first:
//!   [`Settings::tape_spool`]) on S3;
//! * a few totals as CloudWatch EMF lines every minute ([`FeedMetrics`]);
//! * a bounded stop ([`run`]): on SIGTERM (ECS stops a task with SIGTERM, then SIGKILL after
//!   the container's stop timeout) the feed stops hearing, flushes its last message and its
//!   open tape window and returns; if that takes longer than the grace ([`Settings::stop_grace`], 25 s by default,
//!   under the task's 30 s stop timeout), the process exits anyway, so ECS never has to kill it.
//!
//! # Layout
//! * [`install_crypto_provider`]: rustls's process-wide provider, before any TLS.
//! * [`Settings`]: what the environment sets.
//! * [`SqsSink`]: the feed's messages to SQS.
//! * [`FeedMetrics`]: EMF totals from the feed's counters.
//! * [`run`]: the feed, the metrics and the stop, for any store and sink (tests run it on the
//!   local store and the simulator).

use polytape_collector::emf::{self, Metric};
use polytape_collector::live::{run_feed, FeedFiles, FeedStatus, MessageSink};
use polytape_feed::queue::Message;
use polytape_feed::supervisor::{SupervisorConfig, SupervisorCounts};
use polytape_polymarket::{ClientConfig, PolymarketClient};
use polytape_store::aws::AwsStore;
use polytape_store::{HeartbeatStore, MarketStore, ObjectStore};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Installs rustls's aws-lc-rs provider as the process default, unless one is installed
/// already; true when this call installed it.
///
/// rustls picks its provider from its crate features only when exactly one is enabled. In
/// this binary both are — `ring` (reqwest, tokio-tungstenite) and `aws-lc-rs` (the AWS SDK) —
/// so without this, the first `wss://` connection (tokio-tungstenite builds its TLS config with
/// `ClientConfig::builder()`) panics with "no process-level CryptoProvider available". reqwest
/// and the AWS SDK pass their provider explicitly and are not affected. aws-lc-rs, because the
/// SDK already brings it (and it is rustls's default).
pub fn install_crypto_provider() -> bool {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_ok()
}

/// How often the totals are printed.
pub const METRICS_EVERY: Duration = Duration::from_secs(60);
/// How long a stop may take by default: under the 30 s stop timeout of the task definition.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(25);
/// Environment variable: the stop grace in whole seconds (1–110; Fargate's longest stop
/// timeout is 120 s).
pub const STOP_GRACE_VAR: &str = "POLYTAPE_WS_STOP_GRACE_S";

/// Environment variable: the directory where the raw tape's objects wait for their upload
/// (`collector::tape`). Default: `polytape-tape-<pid>` in the temporary directory — in the
/// task, `/tmp`, a volume on the task's ephemeral storage (the root filesystem is read-only),
/// which does not outlive the task.
pub const TAPE_SPOOL_VAR: &str = "POLYTAPE_TAPE_SPOOL";

/// What the environment sets for the task.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Polymarket's endpoints (`POLYTAPE_WS_URL`, `POLYTAPE_DATA_URL`, …) and the HTTP client's
    /// limits, for the backfill.
    pub client: ClientConfig,
    /// The supervisor's settings over `client.endpoints.ws` (`POLYTAPE_WS_SHARD_ASSETS`, …).
    pub supervisor: SupervisorConfig,
    /// The longest a stop may take after SIGTERM before the process exits anyway.
    pub stop_grace: Duration,
    /// How often the totals are printed.
    pub metrics_every: Duration,
    /// Where the raw tape's objects wait for S3 ([`TAPE_SPOOL_VAR`]).
    pub tape_spool: PathBuf,
}

impl Settings {
    /// The settings from `get` (the environment, or a map in tests); a value that does not
    /// parse is an error naming its variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let client = ClientConfig::from_lookup(&get)?;
        let supervisor = SupervisorConfig::from_lookup(&client.endpoints.ws, &get)
            .map_err(|e| anyhow::anyhow!(e))?;
        let stop_grace = match get(STOP_GRACE_VAR).filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_STOP_GRACE,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(s) if (1..=110).contains(&s) => Duration::from_secs(s),
                _ => anyhow::bail!("{STOP_GRACE_VAR}={v:?}: whole seconds from 1 to 110"),
            },
        };
        let tape_spool = match get(TAPE_SPOOL_VAR).filter(|v| !v.trim().is_empty()) {
            Some(v) => PathBuf::from(v.trim()),
            None => std::env::temp_dir().join(format!("polytape-tape-{}", std::process::id())),
        };
        Ok(Settings {
            client,
            supervisor,
            stop_grace,
            metrics_every: METRICS_EVERY,
            tape_spool,
        })
    }
}

/// The feed's messages to the live queue: one `SendMessage` each
/// ([`AwsStore::send_live_message`]). A failed send is an error for `run_feed`, which sends
/// the message again (1 s, 2 s, … 30 s apart) until SQS takes it.
#[derive(Debug, Clone)]
pub struct SqsSink {
    store: AwsStore,
    failures: std::sync::Arc<AtomicU64>,
}

impl SqsSink {
    pub fn new(store: AwsStore) -> SqsSink {
        SqsSink {
            store,
            failures: std::sync::Arc::default(),
        }
    }

    /// (messages sent, the 64 KiB requests they are billed as, sends that failed).
    pub fn sends(&self) -> (u64, u64, u64) {
        let s = self.store.write_stats();
        (
            s.live_sends,
            s.live_billed_requests,
            self.failures.load(Ordering::Relaxed),
        )
    }
}

impl MessageSink for SqsSink {
    async fn send(&self, message: &Message) -> Result<(), String> {
        self.store
            .send_live_message(&message.body)
            .await
            .map_err(|e| {
                self.failures.fetch_add(1, Ordering::Relaxed);
                e.to_string()
            })
    }
}

/// The feed's totals as one EMF line. One metric series: `HealthyShards` (shards connected
/// now: the shard heartbeat alarm's). `Trades` (trades stored, live and backfilled),
/// `BackfilledTrades`, `Reconnects` and `RejectedInputs` (frames, events and backfill rows the
/// feed could not use) are plain members of the line ([`LOGGED_COUNTS`]): the dashboard sums
/// them from the logs with Logs Insights, so they cost no series (each costs $0.30 a month).
/// Counts are the change since the previous document; no per-market or per-shard dimension.
#[derive(Debug, Default)]
pub struct FeedMetrics {
    last: Totals,
}

/// The cumulative counters the documents are differences of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    trades: u64,
    backfilled: u64,
    reconnects: u64,
    rejected: u64,
}

impl Totals {
    fn of(c: &SupervisorCounts) -> Totals {
        let f = &c.feed;
        Totals {
            trades: f.trades_ws + f.trades_backfill,
            backfilled: f.trades_backfill,
            reconnects: c.reconnects,
            rejected: f.malformed_frames
                + f.invalid_events
                + f.malformed_backfill
                + f.backfill_rows_rejected
                + f.malformed_control,
        }
    }
}

impl FeedMetrics {
    /// The document for the counters now (`None` before the feed's first round of counters:
    /// nothing counted, no shard connected).
    pub fn document(&mut self, counts: Option<&SupervisorCounts>, timestamp_ms: i64) -> Value {
        let now = counts.map(Totals::of).unwrap_or(self.last);
        let delta = |f: fn(&Totals) -> u64| f(&now).saturating_sub(f(&self.last));
        let mut doc = emf::document(
            timestamp_ms,
            None,
            &[],
            &[Metric::count(
                "HealthyShards",
                counts.map_or(0, |c| u64::from(c.connected_shards)),
            )],
        );
        let [trades, backfilled, reconnects, rejected] = LOGGED_COUNTS;
        doc[trades] = delta(|t| t.trades).into();
        doc[backfilled] = delta(|t| t.backfilled).into();
        doc[reconnects] = delta(|t| t.reconnects).into();
        doc[rejected] = delta(|t| t.rejected).into();
        self.last = now;
        doc
    }
}

/// The members of the feed's EMF line that are logged, not metrics: trades stored (live and
/// backfilled), of them backfilled, reconnects and rejected inputs since the previous line.
/// template.yaml's dashboard sums them from the feed's log group (the rejected inputs with
/// the functions' own).
pub const LOGGED_COUNTS: [&str; 4] = [
    "Trades",
    "BackfilledTrades",
    "Reconnects",
    emf::REJECTED_FIELD,
];

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The feed's last counters.
    pub counts: SupervisorCounts,
    /// False when the feed had not finished its stop within the grace (its last message may
    /// not have been sent).
    pub stopped_in_time: bool,
    /// From the stop signal to the feed's return (or to giving up).
    pub stop_took: Duration,
    /// EMF documents emitted.
    pub documents: usize,
}

/// Runs the feed until `shutdown` completes, emitting a [`FeedMetrics`] document every
/// `settings.metrics_every` and a last one at the end; then stops it and waits at most
/// `settings.stop_grace` for its last messages to go out.
pub async fn run<S, K>(
    store: S,
    sink: &K,
    client: PolymarketClient,
    settings: &Settings,
    shutdown: impl Future<Output = ()>,
    mut emit: impl FnMut(&Value),
) -> RunSummary
where
    S: MarketStore + HeartbeatStore + ObjectStore + Clone + 'static,
    K: MessageSink,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let status = FeedStatus::default();
    let feed = run_feed(
        store,
        sink,
        client,
        settings.supervisor.clone(),
        stop_rx,
        status.clone(),
        FeedFiles {
            tape_spool: settings.tape_spool.clone(),
            frames_out: None,
        },
    );
    tokio::pin!(feed);
    tokio::pin!(shutdown);
    let mut metrics = FeedMetrics::default();
    let mut documents = 0;
    let mut document = |metrics: &mut FeedMetrics| {
        let counts = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        emit(&metrics.document(counts.as_ref(), chrono::Utc::now().timestamp_millis()));
        documents += 1;
    };
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.metrics_every,
        settings.metrics_every,
    );
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let early = loop {
        tokio::select! {
            _ = every.tick() => document(&mut metrics),
            () = &mut shutdown => break None,
            // The feed returns only once stopped; should it ever end by itself, so does the task
            // (ECS starts a new one).
            counts = &mut feed => break Some(counts),
        }
    };
    let stopping = Instant::now();
    let (counts, stopped_in_time) = match early {
        Some(counts) => {
            tracing::error!("the feed ended without a stop signal");
            (counts, true)
        }
        None => {
            tracing::info!(grace_s = settings.stop_grace.as_secs(), "stopping the feed");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(settings.stop_grace, &mut feed).await {
                Ok(counts) => (counts, true),
                Err(_) => {
                    tracing::error!(
                        grace_s = settings.stop_grace.as_secs(),
                        "the feed did not stop within its grace: exiting without its last messages"
                    );
                    let counts = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    (counts.unwrap_or_default(), false)
                }
            }
        }
    };
    let stop_took = stopping.elapsed();
    if stopped_in_time {
        // Empty once every object went up; one given up stays (and dies with the task).
        let _ = std::fs::remove_dir(&settings.tape_spool);
    }
    *status.lock().unwrap_or_else(|e| e.into_inner()) = Some(counts.clone());
    document(&mut metrics);
    RunSummary {
        counts,
        stopped_in_time,
        stop_took,
        documents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_collector::emf::NAMESPACE;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn given_counters_then_each_document_holds_the_change_since_the_last_and_the_shards_now() {
        let mut m = FeedMetrics::default();
        let mut c = SupervisorCounts {
            connected_shards: 2,
            reconnects: 1,
            ..SupervisorCounts::default()
        };
        c.feed.trades_ws = 10;
        c.feed.trades_backfill = 3;
        c.feed.malformed_frames = 1;
        c.feed.invalid_events = 2;
        let d = m.document(Some(&c), 1_000);
        assert_eq!(
            (
                d["Trades"].as_u64(),
                d["BackfilledTrades"].as_u64(),
                d["Reconnects"].as_u64(),
                d["HealthyShards"].as_u64(),
                d["RejectedInputs"].as_u64()
            ),
            (Some(13), Some(3), Some(1), Some(2), Some(3))
        );
        c.feed.trades_ws = 15;
        c.connected_shards = 1;
        let d = m.document(Some(&c), 61_000);
        assert_eq!(
            (
                d["Trades"].as_u64(),
                d["Reconnects"].as_u64(),
                d["HealthyShards"].as_u64()
            ),
            (Some(5), Some(0), Some(1))
        );
        // Before the feed's first counters: zeros, no shard.
        let d = FeedMetrics::default().document(None, 1);
        assert_eq!(
            (d["Trades"].as_u64(), d["HealthyShards"].as_u64()),
            (Some(0), Some(0))
        );
        // EMF: every metric named is a root member, no dimension.
        let directive = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(directive["Namespace"], NAMESPACE);
        // One series; the counts are in the line for Logs Insights, not metrics.
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "HealthyShards", "Unit": "Count"}])
        );
        for member in LOGGED_COUNTS {
            assert!(d[member].is_u64(), "{member} is in the line");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(d.get(metric["Name"].as_str().unwrap()).is_some());
        }
    }

    #[test]
    fn given_the_environment_then_settings_follow_it_and_a_bad_grace_is_named() {
        let env: HashMap<&str, &str> = [
            ("POLYTAPE_WS_URL", "ws://127.0.0.1:9/ws/market"),
            ("POLYTAPE_WS_SHARD_ASSETS", "100"),
            (STOP_GRACE_VAR, "20"),
            (TAPE_SPOOL_VAR, "/var/spool/tape"),
        ]
        .into();
        let s = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.supervisor.shard_assets, 100);
        assert_eq!(s.client.endpoints.ws, "ws://127.0.0.1:9/ws/market");
        assert_eq!(s.stop_grace, Duration::from_secs(20));
        assert_eq!(s.tape_spool, PathBuf::from("/var/spool/tape"));
        let none: HashMap<&str, &str> = HashMap::new();
        let s = Settings::from_lookup(|k| none.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.stop_grace, DEFAULT_STOP_GRACE);
        // The process's own directory of the temporary directory: two processes never share
        // a spool.
        assert_eq!(
            s.tape_spool,
            std::env::temp_dir().join(format!("polytape-tape-{}", std::process::id()))
        );
        assert!(s.client.endpoints.ws.starts_with("wss://"));
        for bad in ["0", "120", "soon"] {
            let env: HashMap<&str, &str> = [(STOP_GRACE_VAR, bad)].into();
            let err = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
            assert!(err.to_string().contains(STOP_GRACE_VAR), "{err}");
        }
    }
}
