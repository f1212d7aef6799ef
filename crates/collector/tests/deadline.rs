//! A tick against a Polymarket slower than its deadline, in paused time (no sleeping): the
//! requests stop in time, what arrived is written, the rest counted missing, the coverage and
//! the task run recorded, and the tick ends before its deadline.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::discover::discover;
use polytape_collector::snapshot::{snapshot_tick, TickDeadline};
use polytape_collector::{Clock, Config};
use polytape_core::ops::TaskStatus;
use polytape_core::{TickId, Tier};
use polytape_store::{CoverageStore, TaskStore};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_tick_slower_than_its_deadline_writes_what_it_has_and_ends_in_time() {
    let e = env(4, 100).await;
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    // Every response now takes an hour: longer than any deadline.
    e.sim.set_latency(Duration::from_secs(3600));
    let tick = TickId {
        tier: Tier::T2,
        tick_ts: anchor(),
    };
    e.clock.set(anchor() + chrono::Duration::seconds(2));
    let deadline = TickDeadline::of(tick, None, Config::default().tick_margin);
    let budget = (deadline.at - e.clock.now()).to_std().unwrap();
    let started = tokio::time::Instant::now();
    let r = snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < budget,
        "took {took:?}, deadline {budget:?} after the start"
    );
    assert!(
        took >= budget - Duration::from_secs(3),
        "the requests waited until the deadline left only the writes' reserve: {took:?}"
    );
    assert_eq!((r.markets, r.rows, r.missing), (4, 0, 4));
    assert!(r.deadline_hit && r.failed(), "{r:?}");
    let cov = e.store.coverage_since(anchor()).await.unwrap();
    assert_eq!(cov.len(), 1);
    assert_eq!(
        (cov[0].expected, cov[0].written, cov[0].failed),
        (4, 0, true)
    );
    let runs = e.store.task_runs_since(anchor()).await.unwrap();
    let run = runs.iter().find(|r| r.task == "snapshot").unwrap();
    assert_eq!(run.status, TaskStatus::Failed);
    assert!(
        run.error.as_deref().unwrap().contains("no market"),
        "{run:?}"
    );
    assert!(
        files_under(e.dir.path(), "snapshots/").len() == 1,
        "the tick's (empty) snapshots file stands for it"
    );
}
