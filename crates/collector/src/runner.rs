//! The local scheduler behind `polytape run`: the same handlers the Lambdas run, scheduled by
//! tokio timers that mirror the EventBridge rules. At every minute boundary it does what the
//! cloud's once-a-minute dispatcher does — asks [`due_in_minute`] for that minute's ticks and
//! starts each at its second (0/15/30/45) — and starts re-tier (every 5 minutes) and discovery
//! (hourly) when they are due.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::discover::discover;
use crate::retier::retier;
use crate::snapshot::{snapshot_tick, TickReport};
use crate::stats::{LastRun, SharedStats};
use crate::Store;
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Tier, Ts};
use polytape_polymarket::PolymarketClient;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinSet;

/// Everything a local run shares between its tasks and its status API.
pub struct Runtime<S> {
    pub client: PolymarketClient,
    pub store: S,
    pub config: Config,
    pub stats: SharedStats,
    /// Held by discovery and re-tier, the two writers of the markets table, so one never
    /// overwrites what the other just wrote from an older read.
    markets_writer: Mutex<()>,
    /// True while a discovery runs: a slow one is not started twice.
    discovering: AtomicBool,
}

impl<S: Store> Runtime<S> {
    pub fn new(client: PolymarketClient, store: S, config: Config) -> Arc<Self> {
        Arc::new(Runtime {
            client,
            store,
            config,
            stats: SharedStats::default(),
            markets_writer: Mutex::new(()),
            discovering: AtomicBool::new(false),
        })
    }
}

/// Runs until `shutdown` completes, then starts nothing new, lets the handlers already running
/// finish their writes, and returns.
pub async fn run<S: Store>(rt: Arc<Runtime<S>>, shutdown: impl Future<Output = ()>) {
    let clock = SystemClock;
    tokio::pin!(shutdown);
    let start = clock.now();
    rt.stats.lock().started_at = Some(start);

    // The first discovery runs before any tick: ticks need the tiers it assigns.
    tokio::select! {
        _ = &mut shutdown => {
            tracing::info!("stopped during the first discovery");
            return;
        }
        _ = run_discovery(&rt) => {}
    }
    let mut next_discovery = start + to_chrono(rt.config.discovery_every);
    let mut next_retier = start + to_chrono(rt.config.retier_every);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut in_flight = JoinSet::new();
    let mut minute = floor_minute(clock.now());

    loop {
        let now = clock.now();
        let ticks: Vec<TickId> = due_in_minute(minute)
            .into_iter()
            .filter(|t| t.tick_ts >= start)
            .collect();
        publish_next(&rt, minute, next_discovery);
        for tick in ticks {
            let (rt, mut stop) = (rt.clone(), stop_rx.clone());
            in_flight.spawn(async move {
                tokio::select! {
                    _ = sleep_until(tick.tick_ts) => run_tick(&rt, tick).await,
                    _ = async { drop(stop.wait_for(|s| *s).await) } => {}
                }
            });
        }
        if now >= next_retier {
            let task_rt = rt.clone();
            in_flight.spawn(async move { run_retier(&task_rt).await });
            next_retier = now + to_chrono(rt.config.retier_every);
        }
        if now >= next_discovery {
            let task_rt = rt.clone();
            in_flight.spawn(async move { run_discovery(&task_rt).await });
            next_discovery = now + to_chrono(rt.config.discovery_every);
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

/// Publishes each tier's next tick (from this minute on) and the next discovery.
fn publish_next<S>(rt: &Runtime<S>, minute: Ts, discovery: Ts) {
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
    s.next_discovery = Some(discovery);
}

async fn run_discovery<S: Store>(rt: &Runtime<S>) {
    if rt.discovering.swap(true, Ordering::SeqCst) {
        tracing::warn!("discovery still running from its last start: not started again");
        return;
    }
    let result = {
        let _writer = rt.markets_writer.lock().await;
        discover(&rt.client, &rt.store, &rt.config, &SystemClock).await
    };
    rt.discovering.store(false, Ordering::SeqCst);
    match result {
        Ok(r) => {
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
            rt.stats.lock().discovery = Some(LastRun {
                at: SystemClock.now(),
                report: r,
            });
        }
        Err(e) => {
            tracing::error!(error = %e, retryable = e.is_retryable(), "discovery failed; it runs again at its next time");
            rt.stats.record_error(None, format!("discovery: {e}"));
        }
    }
}

async fn run_retier<S: Store>(rt: &Runtime<S>) {
    let result = {
        let _writer = rt.markets_writer.lock().await;
        retier(&rt.store, &SystemClock).await
    };
    match result {
        Ok(r) => {
            if r.moved + r.ended > 0 {
                tracing::info!("re-tier: {} markets moved tier, {} ended", r.moved, r.ended);
            }
            rt.stats.lock().retier = Some(LastRun {
                at: SystemClock.now(),
                report: r,
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "re-tier failed");
            rt.stats.record_error(None, format!("retier: {e}"));
        }
    }
}

async fn run_tick<S: Store>(rt: &Runtime<S>, tick: TickId) {
    let mut report = snapshot_tick(&rt.client, &rt.store, tick, &SystemClock).await;
    // Part of the tick was lost to a transient failure: run it once more while it is still
    // current; the retry replaces the first attempt's output (its keys derive from the tick).
    if let Ok(r) = &report {
        if r.should_retry() && !tick.is_stale_at(SystemClock.now()) {
            tracing::warn!(tier = %tick.tier, tick = %tick.tick_ts, "tick incomplete after a transient failure: running it again");
            report = snapshot_tick(&rt.client, &rt.store, tick, &SystemClock).await;
        }
    }
    match report {
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
