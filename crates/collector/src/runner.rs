//! The local scheduler behind `polytape run`: the same handlers the Lambdas run, scheduled by
//! tokio timers that mirror the EventBridge rules. At every minute boundary it does what the
//! cloud's once-a-minute dispatcher does — asks [`due_in_minute`] for that minute's ticks and
//! starts each at its second (0/15/30/45) — runs discovery when it is due (hourly, and after a
//! failure within minutes, with backoff: [`discover::run_if_due`], as the discovery function
//! does) and maintenance every 5 minutes ([`maintenance::run`], as the maintenance function).
//! When configured, the paper executor runs once a minute too ([`executor::run_due`], as the
//! snapshot function's scheduled invocation does in the cloud). Beside them, [`watch_feed`] samples the live feed's counters every second (the trade rate
//! of `/api/stats`) and logs the feed's line once a minute.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::discover::{self, DiscoveryReport};
use crate::executor::{self, ExecutorSettings};
use crate::maintenance::{self, MaintenanceReport};
use crate::snapshot::{snapshot_tick, TickDeadline, TickReport};
use crate::stats::{LastRun, SharedStats, TradeRate};
use crate::Store;
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Tier, Ts};
use polytape_feed::supervisor::SupervisorCounts;
use polytape_polymarket::PolymarketClient;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Everything a local run shares between its tasks and its status API.
pub struct Runtime<S> {
    pub client: PolymarketClient,
    pub store: S,
    pub config: Config,
    pub stats: SharedStats,
    /// The live feed's latest counters (none until it reports, or when it does not run).
    pub feed: crate::live::FeedStatus,
    /// The feed's trades in the last minute, from its counters sampled by [`watch_feed`].
    pub trade_rate: Mutex<TradeRate>,
    /// The paper executor's configuration; `None`: it does not run.
    pub executor: Option<ExecutorSettings>,
}

impl<S: Store> Runtime<S> {
    /// A runtime without the paper executor.
    pub fn new(client: PolymarketClient, store: S, config: Config) -> Arc<Self> {
        Self::with_executor(client, store, config, None)
    }

    /// A runtime that also runs the paper executor once a minute when `executor` is given.
    pub fn with_executor(
        client: PolymarketClient,
        store: S,
        config: Config,
        executor: Option<ExecutorSettings>,
    ) -> Arc<Self> {
        Arc::new(Runtime {
            client,
            store,
            config,
            stats: SharedStats::default(),
            feed: crate::live::FeedStatus::default(),
            trade_rate: Mutex::default(),
            executor,
        })
    }
}

impl<S> Runtime<S> {
    /// Records the feed's trades stored so far (0 before its first counters) into the trade
    /// rate, as seen at `at`.
    pub fn sample_feed(&self, at: Instant) {
        let total = self
            .feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, trades_stored);
        self.trade_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(at, total);
    }

    /// The feed's trades in the minute before `now`, from the samples so far.
    pub fn trades_per_min(&self, now: Instant) -> u64 {
        self.trade_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .per_minute(now)
    }
}

/// Trades the feed stored, live and backfilled.
fn trades_stored(c: &SupervisorCounts) -> u64 {
    c.feed.trades_ws + c.feed.trades_backfill
}

/// How often [`watch_feed`] samples the feed's counters.
pub const FEED_SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often [`watch_feed`] logs the feed's line.
pub const FEED_LINE_EVERY: Duration = Duration::from_secs(60);

/// Until `stop` turns true (or its sender is gone): samples the feed's counters every
/// [`FEED_SAMPLE_EVERY`] into [`Runtime::trade_rate`], and every [`FEED_LINE_EVERY`], once the
/// feed has reported, logs its trades per minute, shards connected and reconnects.
pub async fn watch_feed<S>(rt: Arc<Runtime<S>>, mut stop: watch::Receiver<bool>) {
    let mut sample = tokio::time::interval(FEED_SAMPLE_EVERY);
    let mut line = tokio::time::interval_at(Instant::now() + FEED_LINE_EVERY, FEED_LINE_EVERY);
    for t in [&mut sample, &mut line] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = sample.tick() => rt.sample_feed(Instant::now()),
            _ = line.tick() => log_feed(&rt),
            _ = async { drop(stop.wait_for(|s| *s).await) } => break,
        }
    }
}

fn log_feed<S>(rt: &Runtime<S>) {
    let Some(c) = rt.feed.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return;
    };
    tracing::info!(
        "live feed: {} trades/min | {} stored since start ({} backfilled) | {}/{} shards connected, {} reconnects | {}/{} tokens subscribed",
        rt.trades_per_min(Instant::now()),
        trades_stored(&c),
        c.feed.trades_backfill,
        c.connected_shards,
        c.shards,
        c.reconnects,
        c.subscribed_assets,
        c.wanted_assets
    );
}

/// Runs until `shutdown` completes, then starts nothing new, lets the handlers already running
/// finish their writes, and returns.
pub async fn run<S: Store>(rt: Arc<Runtime<S>>, shutdown: impl Future<Output = ()>) {
    let clock = SystemClock;
    tokio::pin!(shutdown);
    let start = clock.now();
    rt.stats.mark_started(start);
    // From the start, so that the trade rate's first sample precedes the feed's first trade.
    let (stop_tx, stop_rx) = watch::channel(false);
    let feed_watch = tokio::spawn(watch_feed(rt.clone(), stop_rx.clone()));

    // The first discovery runs before any tick: ticks need the markets it finds. If it fails,
    // ticks start anyway (with what an earlier run stored) and discovery is retried shortly.
    tokio::select! {
        _ = &mut shutdown => {
            tracing::info!("stopped during the first discovery");
            return;
        }
        _ = run_discovery(&rt) => {}
    }
    let mut next_maintenance = start + to_chrono(rt.config.maintenance_every);
    let mut in_flight = JoinSet::new();
    let mut minute = floor_minute(clock.now());

    loop {
        let now = clock.now();
        let ticks: Vec<TickId> = due_in_minute(minute)
            .into_iter()
            .filter(|t| t.tick_ts >= start)
            .collect();
        publish_next(&rt, minute);
        for tick in ticks {
            let (rt, mut stop) = (rt.clone(), stop_rx.clone());
            in_flight.spawn(async move {
                tokio::select! {
                    _ = sleep_until(tick.tick_ts) => run_tick(&rt, tick).await,
                    _ = async { drop(stop.wait_for(|s| *s).await) } => {}
                }
            });
        }
        if now >= next_maintenance {
            let task_rt = rt.clone();
            in_flight.spawn(async move { run_maintenance(&task_rt).await });
            next_maintenance = now + to_chrono(rt.config.maintenance_every);
        }
        // Due or not is decided from the recorded runs (and a lease keeps runs apart).
        let task_rt = rt.clone();
        in_flight.spawn(async move { run_discovery(&task_rt).await });
        if rt.executor.is_some() {
            let task_rt = rt.clone();
            in_flight.spawn(async move { run_executor(&task_rt).await });
        }
        while let Some(done) = in_flight.try_join_next() {
            report_panic(&rt, done);
        }
        minute += chrono::Duration::minutes(1);
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sleep_until(minute) => {}
        }
    }
    let _ = stop_tx.send(true);
    tracing::info!("shutting down: finishing the handlers already running");
    while let Some(done) = in_flight.join_next().await {
        report_panic(&rt, done);
    }
    report_panic(&rt, feed_watch.await);
    tracing::info!("stopped cleanly");
}

fn floor_minute(t: Ts) -> Ts {
    TickId::floor(Tier::T2, t).tick_ts
}

async fn sleep_until(t: Ts) {
    tokio::time::sleep((t - SystemClock.now()).to_std().unwrap_or_default()).await;
}

fn to_chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(1))
}

/// A handler that panicked is an error a person must see, not a silently dropped task.
fn report_panic<S>(rt: &Runtime<S>, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a scheduled task panicked: its work was not written");
        rt.stats.record_error(None, format!("task panicked: {e}"));
    }
}

/// Publishes each tier's next tick (from this minute on).
fn publish_next<S>(rt: &Runtime<S>, minute: Ts) {
    let mut s = rt.stats.lock();
    for tier in Tier::ALL {
        let floor = TickId::floor(tier, minute);
        let next = if floor.tick_ts >= minute {
            floor
        } else {
            floor.next()
        };
        s.tiers.entry(tier).or_default().next_tick = Some(next.tick_ts);
    }
}

async fn run_discovery<S: Store>(rt: &Runtime<S>) {
    match discover::run_if_due(&rt.client, &rt.store, &rt.config, &SystemClock, None).await {
        Ok(None) => {}
        Ok(Some(r)) => {
            log_discovery(&r);
            rt.stats.lock().discovery = Some(LastRun {
                at: SystemClock.now(),
                report: r,
            });
        }
        Err(e) => {
            tracing::error!(error = %e, retryable = e.is_retryable(), "discovery failed; it is retried within minutes");
            rt.stats.record_error(None, format!("discovery: {e}"));
        }
    }
}

fn log_discovery(r: &DiscoveryReport) {
    let tiers: Vec<String> = r.per_tier.iter().map(|(t, n)| format!("{t} {n}")).collect();
    tracing::info!(
        "discovery: {} markets listed in {} pages ({} rejected), {} kept [{}], {} new, {} updated, {} closed",
        r.listed,
        r.pages,
        r.rejected,
        r.kept,
        tiers.join(" · "),
        r.new_markets,
        r.updated_markets,
        r.retired_markets
    );
}

/// The paper executor's run of this minute: the slots whose ticks are final.
async fn run_executor<S: Store>(rt: &Runtime<S>) {
    let Some(settings) = &rt.executor else {
        return;
    };
    match executor::run_due(&rt.store, settings, &SystemClock).await {
        Ok(Some(r)) if r.signals + r.fills + r.closed > 0 => tracing::info!(
            "executor: {} slots | {} signals, {} fills, {} closed | equity {}",
            r.slots,
            r.signals,
            r.fills,
            r.closed,
            r.equity.map(|e| e.to_string()).unwrap_or_default()
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "paper executor failed; it runs again next minute");
            rt.stats.record_error(None, format!("executor: {e}"));
        }
    }
}

async fn run_maintenance<S: Store>(rt: &Runtime<S>) {
    match maintenance::run(&rt.client, &rt.store, &rt.config, &SystemClock, None).await {
        Ok(r) => {
            log_maintenance(&r);
            rt.stats.lock().maintenance = Some(LastRun {
                at: SystemClock.now(),
                report: r,
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "maintenance failed");
            rt.stats.record_error(None, format!("maintenance: {e}"));
        }
    }
}

fn log_maintenance(r: &MaintenanceReport) {
    let t = &r.retier;
    if t.moved + t.closed + t.expired > 0 {
        tracing::info!(
            "re-tier: {} markets moved tier, {} closed, {} expired ({} past their end)",
            t.moved,
            t.closed,
            t.expired,
            t.past_end
        );
    }
    if let Some(key) = &r.markets_dimension {
        tracing::info!("markets dimension written: {key}");
    }
}

async fn run_tick<S: Store>(rt: &Runtime<S>, tick: TickId) {
    let deadline = TickDeadline::of(tick, None, rt.config.tick_margin);
    match snapshot_tick(&rt.client, &rt.store, tick, &SystemClock, deadline).await {
        Ok(r) => {
            rt.stats.record_tick(&r);
            log_tick(rt, &r);
        }
        Err(e) => {
            tracing::error!(tier = %tick.tier, tick = %tick.tick_ts, error = %e, "tick failed: nothing written for it");
            rt.stats.record_error(
                Some(tick.tier),
                format!("{} tick {}: {e}", tick.tier, tick.tick_ts),
            );
        }
    }
}

fn log_tick<S>(rt: &Runtime<S>, r: &TickReport) {
    if r.skipped {
        tracing::warn!(
            "{} {} skipped: started later than its interval",
            r.tick.tier,
            r.tick.tick_ts.format("%H:%M:%S")
        );
        return;
    }
    tracing::info!(
        "{} {} | {} markets → {} rows, {} books | missing {} · rejected {} · failed requests {} | {} ms | next {}",
        r.tick.tier,
        r.tick.tick_ts.format("%H:%M:%S"),
        r.markets,
        r.rows,
        r.books,
        r.missing,
        r.rejected + r.nulled,
        r.failed_requests,
        r.elapsed_ms,
        r.tick.next().tick_ts.format("%H:%M:%S")
    );
    if r.tick.tier == Tier::T2 {
        let s = rt.stats.snapshot();
        let rows: u64 = s.tiers.values().map(|t| t.rows).sum();
        let per_tier: Vec<String> = s
            .tiers
            .iter()
            .map(|(t, v)| format!("{t} {}", v.last_rows))
            .collect();
        tracing::info!(
            "totals: {rows} rows written since start [last tick: {}], {} errors",
            per_tier.join(" · "),
            s.errors
        );
    }
}
