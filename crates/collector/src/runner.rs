//! The local scheduler behind `polytape run`: discovery at start and then hourly, re-tier every
//! five minutes, and every tier's ticks at their wall-clock times — the same handlers the
//! Lambdas run, scheduled by tokio timers that mirror the EventBridge rules.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::discover::discover;
use crate::retier::retier;
use crate::snapshot::{snapshot_tick, TickReport};
use crate::stats::{LastRun, SharedStats};
use crate::Store;
use polytape_core::{TickId, Tier, Ts};
use polytape_polymarket::PolymarketClient;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Everything a local run shares between its tasks and its status API.
pub struct Runtime<S> {
    pub client: PolymarketClient,
    pub store: S,
    pub config: Config,
    pub stats: SharedStats,
}

impl<S: Store> Runtime<S> {
    pub fn new(client: PolymarketClient, store: S, config: Config) -> Arc<Self> {
        Arc::new(Runtime {
            client,
            store,
            config,
            stats: SharedStats::default(),
        })
    }
}

/// What is due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Discovery,
    Retier,
    Tick(TickId),
}

/// Runs until `shutdown` completes, then stops scheduling, lets the writes in flight finish,
/// and returns.
pub async fn run<S: Store>(rt: Arc<Runtime<S>>, shutdown: impl Future<Output = ()>) {
    let clock = SystemClock;
    let start = clock.now();
    rt.stats.lock().started_at = Some(start);
    let mut next_ticks: Vec<TickId> = Tier::ALL
        .iter()
        .map(|t| TickId::floor(*t, start).next())
        .collect();
    let mut next_discovery = start;
    let mut next_retier = start
        + chrono::Duration::from_std(rt.config.retier_every)
            .unwrap_or(chrono::Duration::minutes(5));
    let mut in_flight = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        publish_next(&rt, &next_ticks, next_discovery);
        let (at, job) = next_job(&next_ticks, next_discovery, next_retier);
        let wait = (at - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(wait) => {}
        }
        while in_flight.try_join_next().is_some() {}
        match job {
            Job::Discovery => {
                // Discovery runs inline: ticks need its tiers, and it is the only writer of new markets.
                run_discovery(&rt).await;
                next_discovery = clock.now() + to_chrono(rt.config.discovery_every);
            }
            Job::Retier => {
                let rt2 = rt.clone();
                in_flight.spawn(async move { run_retier(&rt2).await });
                next_retier += to_chrono(rt.config.retier_every);
            }
            Job::Tick(tick) => {
                let rt2 = rt.clone();
                in_flight.spawn(async move { run_tick(&rt2, tick).await });
                let slot = &mut next_ticks[tick.tier as usize];
                *slot = slot.next();
                // After a long pause (a suspended laptop) jump to the next future tick: the
                // missed ones would only be skipped as stale.
                while slot.tick_ts
                    < clock.now() - chrono::Duration::seconds(i64::from(tick.tier.interval_s()))
                {
                    *slot = slot.next();
                }
            }
        }
    }
    if !in_flight.is_empty() {
        tracing::info!(
            in_flight = in_flight.len(),
            "shutting down: finishing the writes in flight"
        );
    }
    while in_flight.join_next().await.is_some() {}
    tracing::info!("stopped cleanly");
}

fn next_job(ticks: &[TickId], discovery: Ts, retier: Ts) -> (Ts, Job) {
    let mut best = (discovery, Job::Discovery);
    if retier < best.0 {
        best = (retier, Job::Retier);
    }
    for t in ticks {
        if t.tick_ts < best.0 {
            best = (t.tick_ts, Job::Tick(*t));
        }
    }
    best
}

fn to_chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(1))
}

fn publish_next<S>(rt: &Runtime<S>, ticks: &[TickId], discovery: Ts) {
    let mut s = rt.stats.lock();
    for t in ticks {
        s.tiers.entry(t.tier).or_default().next_tick = Some(t.tick_ts);
    }
    s.next_discovery = Some(discovery);
}

async fn run_discovery<S: Store>(rt: &Runtime<S>) {
    match discover(&rt.client, &rt.store, &rt.config, &SystemClock).await {
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
    match retier(&rt.store, &SystemClock).await {
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
    // A transient failure of part of the tick: run it once more while it is still current; the
    // retry replaces the first attempt's output.
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
    let next = r.tick.next().tick_ts.format("%H:%M:%S");
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
        next
    );
    if r.tick.tier == Tier::T2 {
        let s = rt.stats.snapshot();
        let rows: u64 = s.tiers.values().map(|t| t.rows).sum();
        tracing::info!(
            "totals: {rows} rows written since start, {} errors",
            s.errors
        );
    }
}
