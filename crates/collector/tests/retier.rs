//! Re-tier's boundary passes on the local store and the simulator: a pass that reads only the
//! end dates whose tier can have changed since the last run moves exactly the markets a full
//! pass moves (markets at both edges of a window, one past its end, one expiring, one Gamma
//! closed), counts the markets per tier as the store does, and gives way to a full pass after
//! a failed maintenance run, once discovery has run, and hourly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::retier::{self, boundary_windows, Pass, RetierReport};
use polytape_collector::{maintenance, Config};
use polytape_core::ops::{reason, TaskRun, TaskStatus};
use polytape_core::{Market, Tier, Ts};
use polytape_store::contract::market;
use polytape_store::{LocalStore, MarketStore, TaskStore, TransitionStore};
use std::collections::BTreeSet;

/// The last full pass: two hours into the world, when its T4 markets are past their end.
fn t0() -> Ts {
    anchor() + chrono::Duration::hours(2)
}

/// The boundary pass: one maintenance period later.
fn t1() -> Ts {
    t0() + chrono::Duration::minutes(5)
}

fn ms(t: Ts, ms: i64) -> Ts {
    t + chrono::Duration::milliseconds(ms)
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

/// Hand-built markets around the windows of a pass at t1 after one at t0, each stored with its
/// tier at t0 (as the full pass at t0 leaves it): (name, end date).
fn edge_markets() -> Vec<(&'static str, Ts)> {
    vec![
        // (t0 + 12 h, t1 + 12 h]: at its lower edge T2 at t0 and t1 (not read); 1 ms in,
        // T1 at t0 and T2 at t1.
        ("at the 12 h window's lower edge", t0() + hours(12)),
        ("1 ms inside the 12 h window", ms(t0() + hours(12), 1)),
        // (t0 + 48 h, t1 + 48 h]: at its upper edge 48 h from its end at t1: T1 (T0 at t0);
        // 1 ms past it, still T0.
        ("at the 48 h window's upper edge", t1() + hours(48)),
        ("1 ms past the 48 h window", ms(t1() + hours(48), 1)),
        (
            "inside the 4 h window",
            t0() + hours(4) + chrono::Duration::minutes(2),
        ),
        ("at the 1 h window's upper edge", t1() + hours(1)),
        // Past its end and open on Gamma: asked about, stays in T4.
        ("past its end", t1() - hours(3)),
        // 24 h past its end exactly at t1: expires.
        ("24 h past its end at t1", t1() - hours(24)),
        ("far from any window", t0() + hours(100)),
    ]
}

/// A world discovered at the anchor with the hand-built markets added, fully re-tiered at t0,
/// one of its markets past their end closed on Gamma since.
async fn world() -> (Env, String) {
    let e = env(2, 100).await;
    let cfg = Config::default();
    e.clock.set(anchor());
    e.discover().await;
    let hand: Vec<Market> = edge_markets()
        .into_iter()
        .enumerate()
        .map(|(n, (_, end))| Market {
            end_date: end,
            ..market(900 + n as u32, Tier::at(t0(), end), true)
        })
        .collect();
    assert_eq!(
        e.store.write_markets(&hand).await.unwrap(),
        Vec::<String>::new()
    );
    e.clock.set(t0());
    let first = maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    assert_eq!(
        (first.retier.pass, first.retier.full_pass_why),
        (Pass::Full, Some("no earlier run recorded"))
    );
    // A simulated market past its end (T4 at the anchor), closed on Gamma after t0.
    let past: Vec<Market> = e.store.markets_due(Tier::T4, t0()).await.unwrap();
    let closing = past
        .iter()
        .find(|m| m.end_date <= t0() && !m.condition_id.starts_with("0x0000"))
        .expect("a simulated market past its end")
        .condition_id
        .clone();
    assert!(e.sim.close_market(&closing));
    (e, closing)
}

/// The transitions recorded at `at`: (market, from, to, reason), sorted.
async fn transitions_at(
    s: &LocalStore,
    at: Ts,
) -> BTreeSet<(String, Option<Tier>, Option<Tier>, String)> {
    s.recent_transitions(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.at == at)
        .map(|t| (t.condition_id, t.from_tier, t.to_tier, t.reason))
        .collect()
}

/// Every active market with its stored tier.
async fn tiers(s: &LocalStore) -> Vec<(String, Option<Tier>)> {
    s.active_markets()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.condition_id, m.tier))
        .collect()
}

/// A failed maintenance run, recorded as the maintenance function records one.
fn failed_maintenance(at: Ts) -> TaskRun {
    TaskRun {
        id: polytape_collector::tasks::run_id(at, maintenance::TASK),
        task: maintenance::TASK.into(),
        started_at: at,
        finished_at: at + chrono::Duration::seconds(3),
        status: TaskStatus::Failed,
        detail: serde_json::json!({ "retryable": true }),
        error: Some("markets: throttled".into()),
    }
}

async fn maintain(e: &Env, at: Ts) -> RetierReport {
    e.clock.set(at);
    maintenance::run(&e.client, &e.store, &Config::default(), &e.clock, None)
        .await
        .unwrap()
        .retier
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_store_re_tiered_at_t0_then_a_boundary_pass_at_t1_moves_exactly_what_a_full_pass_moves(
) {
    // Two identical worlds (the same seed, the same writes). In the second the maintenance run
    // after t0 failed, so its next run is a full pass.
    let (a, closing) = world().await;
    let (b, closing_b) = world().await;
    assert_eq!(closing, closing_b);
    b.store
        .put_task_run(&failed_maintenance(t0() + chrono::Duration::minutes(1)))
        .await
        .unwrap();

    let boundary = maintain(&a, t1()).await;
    let full = maintain(&b, t1()).await;
    assert_eq!(
        (boundary.pass, boundary.full_pass_why),
        (Pass::Boundary, None)
    );
    assert_eq!(
        (full.pass, full.full_pass_why),
        (Pass::Full, Some("the last maintenance run failed"))
    );
    assert!(
        boundary.active < full.active,
        "the boundary pass reads {} of {} active markets",
        boundary.active,
        full.active
    );

    // The same transitions, the same stored tiers.
    let moved = transitions_at(&a.store, t1()).await;
    assert_eq!(moved, transitions_at(&b.store, t1()).await);
    assert_eq!(tiers(&a.store).await, tiers(&b.store).await);
    assert_eq!(
        (
            boundary.moved,
            boundary.closed,
            boundary.expired,
            boundary.past_end
        ),
        (full.moved, full.closed, full.expired, full.past_end)
    );

    // Which: the markets at the windows' edges as the tier table says, the one past its end
    // stays in T4, the one 24 h past its end expires, the one Gamma closed leaves sampling.
    let id = |name: &str| {
        let n = edge_markets().iter().position(|(m, _)| *m == name).unwrap();
        market(900 + n as u32, None, true).condition_id
    };
    let expect = |name: &str, from: Option<Tier>, to: Option<Tier>, reason: &str| {
        (id(name), from, to, reason.to_string())
    };
    for want in [
        expect(
            "1 ms inside the 12 h window",
            Some(Tier::T1),
            Some(Tier::T2),
            reason::TIER_CHANGE,
        ),
        expect(
            "at the 48 h window's upper edge",
            Some(Tier::T0),
            Some(Tier::T1),
            reason::TIER_CHANGE,
        ),
        expect(
            "inside the 4 h window",
            Some(Tier::T2),
            Some(Tier::T3),
            reason::TIER_CHANGE,
        ),
        expect(
            "at the 1 h window's upper edge",
            Some(Tier::T3),
            Some(Tier::T4),
            reason::TIER_CHANGE,
        ),
        expect(
            "24 h past its end at t1",
            Some(Tier::T4),
            None,
            reason::EXPIRED,
        ),
        (
            closing.clone(),
            Some(Tier::T4),
            None,
            reason::CLOSED.to_string(),
        ),
    ] {
        assert!(moved.contains(&want), "{want:?} not in {moved:#?}");
    }
    for still in [
        "at the 12 h window's lower edge",
        "1 ms past the 48 h window",
        "past its end",
        "far from any window",
    ] {
        assert!(
            !moved.iter().any(|(m, ..)| *m == id(still)),
            "{still} moved: {moved:#?}"
        );
    }
    let stored = a
        .store
        .get_market(&id("past its end"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.active, stored.tier), (true, Some(Tier::T4)));
    assert!(boundary.past_end >= 2, "{boundary:?}");

    // The markets per tier as re-tier left them are the store's count, now and later on.
    for at in [t1(), t1() + chrono::Duration::minutes(3)] {
        assert_eq!(
            retier::count_due(&a.store, at).await.unwrap(),
            a.store.count_due(at).await.unwrap(),
            "at {at}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_maintenance_every_5_minutes_then_full_passes_follow_a_failed_run_discovery_and_the_hour(
) {
    let (e, _) = world().await;
    let why = |r: &RetierReport| (r.pass, r.full_pass_why);
    let min = |m: i64| t0() + chrono::Duration::minutes(m);
    assert_eq!(why(&maintain(&e, min(5)).await), (Pass::Boundary, None));
    assert_eq!(why(&maintain(&e, min(10)).await), (Pass::Boundary, None));
    // A run that failed (recorded as such): the next one reads every active market.
    e.store
        .put_task_run(&failed_maintenance(min(15)))
        .await
        .unwrap();
    assert_eq!(
        why(&maintain(&e, min(20)).await),
        (Pass::Full, Some("the last maintenance run failed"))
    );
    assert_eq!(why(&maintain(&e, min(25)).await), (Pass::Boundary, None));
    // Discovery wrote markets: the next run reads them all.
    e.clock.set(min(27));
    e.discover().await;
    assert_eq!(
        why(&maintain(&e, min(30)).await),
        (
            Pass::Full,
            Some("discovery wrote markets since the last full pass")
        )
    );
    for m in (35..90).step_by(5) {
        assert_eq!(
            why(&maintain(&e, min(m)).await),
            (Pass::Boundary, None),
            "+{m} min"
        );
    }
    // After eleven boundary passes the stored tiers are those a full pass would leave, and
    // the markets per tier as re-tier left them are the store's count.
    let now = min(85);
    for m in e.store.active_markets().await.unwrap() {
        assert_eq!(m.tier, Tier::at(now, m.end_date), "{}", m.condition_id);
    }
    assert_eq!(
        retier::count_due(&e.store, now).await.unwrap(),
        e.store.count_due(now).await.unwrap()
    );
    // An hour after the last full pass (at +30 min).
    assert_eq!(
        why(&maintain(&e, min(90)).await),
        (Pass::Full, Some("hourly"))
    );
}

#[test]
fn given_two_runs_then_the_windows_are_each_boundary_shifted_and_merged_when_they_overlap() {
    let h = |n: i64| chrono::Duration::hours(n);
    // Five minutes apart: four tier boundaries and the past-end window, disjoint.
    assert_eq!(
        boundary_windows(t0(), t1()),
        vec![
            (t0() - h(24), t1()),
            (t0() + h(1), t1() + h(1)),
            (t0() + h(4), t1() + h(4)),
            (t0() + h(12), t1() + h(12)),
            (t0() + h(48), t1() + h(48)),
        ]
    );
    // Two hours apart: the 1 h window overlaps the past-end one.
    let later = t0() + h(2);
    assert_eq!(
        boundary_windows(t0(), later)[0],
        (t0() - h(24), later + h(1))
    );
    // No time between them: only the markets past their end.
    assert_eq!(boundary_windows(t1(), t1()), vec![(t1() - h(24), t1())]);
}
