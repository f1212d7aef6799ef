//! Resolutions end to end against the simulator over real sockets: markets close and resolve
//! the way Gamma shows it (proposed, disputed, final; INVALID; final without a UMA status, which
//! only the CLOB confirms; delisted; still open 14 days past the end), and each shows up in the
//! Markets state, the `resolutions` table and the `tier_transitions` table as it should.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::discover::discover;
use polytape_collector::maintenance;
use polytape_collector::resolutions::{read_counts, resolve};
use polytape_collector::{Clock, Config};
use polytape_core::{Market, MarketResult, Tier};
use polytape_sim::{SimResult, TruthStage};
use polytape_store::{MarketStore, TaskStore};
use std::collections::BTreeMap;

/// One resolutions period later (runs are 15 minutes apart; each writes its own
/// transitions file, keyed by its time).
fn next_period(e: &Env) {
    e.clock.set(e.clock.now() + chrono::Duration::minutes(15));
}

async fn market(e: &Env, id: &str) -> Market {
    e.store.get_market(id).await.unwrap().unwrap()
}

/// One `resolutions` row: (winning token, invalid, source).
type Row = (Option<String>, Option<bool>, Option<String>);

/// Every `resolutions` row by condition id.
fn resolution_rows(e: &Env) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    for f in files_under(e.dir.path(), "resolutions") {
        for b in read_parquet(&f) {
            for i in 0..b.num_rows() {
                let invalid = column(&b, "invalid")
                    .as_any()
                    .downcast_ref::<arrow_array::BooleanArray>()
                    .map(|a| a.value(i));
                out.insert(
                    string(&b, "condition_id", i).unwrap(),
                    (
                        string(&b, "winning_token_id", i),
                        invalid,
                        string(&b, "source", i),
                    ),
                );
            }
        }
    }
    out
}

/// Every `tier_transitions` row: (condition id, reason).
fn transition_rows(e: &Env) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in files_under(e.dir.path(), "tier_transitions") {
        for b in read_parquet(&f) {
            for i in 0..b.num_rows() {
                out.push((
                    string(&b, "condition_id", i).unwrap(),
                    string(&b, "reason", i).unwrap(),
                ));
            }
        }
    }
    out
}

fn has(rows: &[(String, String)], id: &str, reason: &str) -> usize {
    rows.iter().filter(|(c, r)| c == id && r == reason).count()
}

#[tokio::test]
async fn given_markets_resolving_every_way_then_only_final_results_are_recorded_with_the_right_token(
) {
    let e = env(4, 50).await;
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    let tracked = e.store.active_markets().await.unwrap();
    let t3: Vec<&Market> = tracked
        .iter()
        .filter(|m| Tier::at(e.clock.now(), m.end_date) == Some(Tier::T3))
        .collect();
    assert!(t3.len() >= 4, "the world holds enough T3 markets");
    let (disputed, void, no_status, quiet) = (t3[0], t3[1], t3[2], t3[3]);

    // Proposed: the market closes and leaves sampling; its result is not final.
    assert!(e.sim.propose_result(&disputed.condition_id, 0));
    assert!(e.sim.propose_result(&void.condition_id, 1));
    assert!(e.sim.finalize_without_status(&no_status.condition_id, 1));
    let r = resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert_eq!((r.closed, r.resolved, r.lookup_failed), (3, 1, 0), "{r:?}");
    let m = market(&e, &disputed.condition_id).await;
    assert!(!m.active && m.tier.is_none() && m.closed_at.is_some());
    assert_eq!(
        m.result,
        MarketResult::Pending {
            uma_status: Some("proposed".into())
        },
        "proposed is not final"
    );
    // No UMA status: the CLOB's winner flag confirmed it.
    let m = market(&e, &no_status.condition_id).await;
    assert_eq!(m.winning_token_id(), Some(no_status.no_token_id.as_str()));
    assert_eq!(m.outcome().unwrap().source, "gamma+clob");

    // Disputed: still not final. Then the void is finalized INVALID and the dispute ends with
    // the other outcome.
    assert!(e.sim.dispute(&disputed.condition_id));
    next_period(&e);
    resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert_eq!(
        market(&e, &disputed.condition_id).await.result,
        MarketResult::Pending {
            uma_status: Some("disputed".into())
        }
    );
    assert!(!resolution_rows(&e).contains_key(&disputed.condition_id));
    assert!(e.sim.finalize(&void.condition_id, SimResult::Invalid));
    assert!(e.sim.finalize(&disputed.condition_id, SimResult::Winner(1)));
    next_period(&e);
    let r = resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert_eq!((r.resolved, r.invalid), (2, 1), "{r:?}");

    // Every final result the simulator shows is recorded, with the right token; nothing else.
    let truth = e.sim.truth();
    let rows = resolution_rows(&e);
    let finals: Vec<_> = truth
        .markets
        .iter()
        .filter(|m| tracked.iter().any(|t| t.condition_id == m.condition_id))
        .filter(|m| m.stage.is_final())
        .collect();
    assert_eq!(finals.len(), 3);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for m in finals {
        let (token, invalid, _) = &rows[&m.condition_id];
        match m.stage.result().unwrap() {
            SimResult::Winner(o) => {
                assert_eq!(token.as_ref(), Some(&m.token_ids[o]), "{}", m.condition_id);
                assert_eq!(*invalid, Some(false));
            }
            SimResult::Invalid => {
                assert_eq!(*token, None, "INVALID has no winning token");
                assert_eq!(*invalid, Some(true));
            }
        }
    }
    assert!(
        market(&e, &void.condition_id)
            .await
            .outcome()
            .unwrap()
            .invalid
    );

    // A repeat run learns nothing new and duplicates nothing.
    next_period(&e);
    let r = resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert_eq!((r.closed, r.resolved), (0, 0));
    assert_eq!(resolution_rows(&e).len(), 3);
    let transitions = transition_rows(&e);
    for m in [disputed, void, no_status] {
        assert_eq!(has(&transitions, &m.condition_id, "closed"), 1);
        assert_eq!(has(&transitions, &m.condition_id, "resolved"), 1);
    }
    assert_eq!(has(&transitions, &quiet.condition_id, "closed"), 0);
    assert_eq!(
        transitions
            .iter()
            .filter(|(_, r)| r == "discovered")
            .count(),
        tracked.len(),
        "discovery recorded each market it found"
    );

    // Counts for the status API.
    let counts = read_counts(&e.store).await.unwrap().unwrap();
    assert_eq!((counts.resolved, counts.invalid), (3, 1));
}

#[tokio::test]
async fn given_a_delisted_and_an_expired_market_then_each_shows_up_as_such_and_gives_up_after_14_days(
) {
    let e = env(4, 50).await;
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    let tracked = e.store.active_markets().await.unwrap();
    let now = e.clock.now();
    let mut t4: Vec<&Market> = tracked
        .iter()
        .filter(|m| Tier::at(now, m.end_date) == Some(Tier::T4))
        .collect();
    t4.sort_by_key(|m| m.end_date);
    let gone = t4[0];
    let late = t4[1];

    // Gone from Gamma: discovery's listing no longer has it (closed), and the resolutions
    // duty finds it under neither lookup: delisted.
    assert!(e.sim.delist(&gone.condition_id));
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    let r = resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert_eq!(r.delisted, 1, "{r:?}");
    let m = market(&e, &gone.condition_id).await;
    assert!(m.delisted && !m.active && m.awaits_result());

    // Still open 24 h past its end: re-tier expires it; its result is still asked for.
    e.clock.set(late.end_date + chrono::Duration::hours(25));
    let cfg = Config::default();
    maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    let m = market(&e, &late.condition_id).await;
    assert!(!m.active && m.awaits_result(), "{m:?}");
    assert!(e
        .store
        .markets_awaiting_result()
        .await
        .unwrap()
        .iter()
        .any(|a| a.condition_id == late.condition_id));
    let state = e.store.task_state("resolutions").await.unwrap().unwrap();
    assert!(
        state.last_success_at.is_some(),
        "maintenance ran the due resolutions duty"
    );

    // 14 days past the end without a final result: given up on, once.
    e.clock
        .set(late.end_date + chrono::Duration::days(14) + chrono::Duration::minutes(1));
    let r = resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert!(r.unresolved >= 2, "{r:?}");
    assert_eq!(
        market(&e, &late.condition_id).await.result,
        MarketResult::Unresolved
    );
    let r = resolve(&e.client, &e.store, &e.clock).await.unwrap();
    assert_eq!(r.unresolved, 0, "no longer asked about");

    let transitions = transition_rows(&e);
    assert_eq!(has(&transitions, &gone.condition_id, "delisted"), 1);
    assert_eq!(has(&transitions, &late.condition_id, "expired"), 1);
    assert_eq!(has(&transitions, &late.condition_id, "unresolved"), 1);
    assert!(matches!(
        e.sim
            .truth()
            .markets
            .iter()
            .find(|m| m.condition_id == late.condition_id)
            .unwrap()
            .stage,
        TruthStage::Open
    ));
}

/// Every exported row: (condition id, token id, snapshot_ts ms, first_outcome_won, winning
/// outcome).
type Labelled = (String, String, i64, Option<i32>, Option<String>);

fn exported(path: &std::path::Path) -> Vec<Labelled> {
    let mut out = Vec::new();
    for b in read_parquet(path) {
        for i in 0..b.num_rows() {
            out.push((
                string(&b, "condition_id", i).unwrap(),
                string(&b, "token_id", i).unwrap(),
                ts_ms(&b, "snapshot_ts", i).unwrap(),
                i32_at(&b, "first_outcome_won", i),
                string(&b, "winning_outcome", i),
            ));
        }
    }
    out
}

#[tokio::test]
async fn given_a_run_with_resolved_markets_then_export_labels_every_row_with_the_simulators_outcome(
) {
    // The simulator's clock runs 10 minutes ahead of the ticks, so the markets it closes
    // close after the ticks below took their rows.
    let mut cfg = polytape_sim::SimConfig::new(42);
    cfg.markets_per_tier = 4;
    cfg.now = anchor() + chrono::Duration::minutes(10);
    let e = env_with(cfg, 50).await;
    e.clock.set(anchor());
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    for k in 0..6 {
        for tier in [Tier::T3, Tier::T4] {
            let tick = polytape_core::TickId {
                tier,
                tick_ts: anchor() + chrono::Duration::seconds(30 * k),
            };
            e.clock.set(tick.tick_ts + chrono::Duration::seconds(2));
            let deadline = polytape_collector::snapshot::TickDeadline::of(
                tick,
                None,
                Config::default().tick_margin,
            );
            polytape_collector::snapshot::snapshot_tick(
                &e.client, &e.store, tick, &e.clock, deadline,
            )
            .await
            .unwrap();
        }
    }
    let sampled: Vec<Market> = e
        .store
        .markets_due(Tier::T3, anchor())
        .await
        .unwrap()
        .into_iter()
        .chain(e.store.markets_due(Tier::T4, anchor()).await.unwrap())
        .collect();
    assert!(sampled.len() >= 5);
    assert!(e
        .sim
        .finalize(&sampled[0].condition_id, SimResult::Winner(0)));
    assert!(e
        .sim
        .finalize(&sampled[1].condition_id, SimResult::Winner(1)));
    assert!(e.sim.finalize(&sampled[2].condition_id, SimResult::Invalid));
    assert!(e.sim.finalize_without_status(&sampled[3].condition_id, 0));
    assert!(e.sim.propose_result(&sampled[4].condition_id, 1));
    e.clock.set(anchor() + chrono::Duration::minutes(11));
    resolve(&e.client, &e.store, &e.clock).await.unwrap();

    let out = e.dir.path().join("train.parquet");
    let opts = polytape_store::export::ExportOptions::new(e.dir.path(), &out);
    let s = polytape_store::export::export(&opts, &mut |_| {}).unwrap();
    let rows = exported(&out);
    assert_eq!(s.rows_written as usize, rows.len());
    assert!(
        s.unresolved_dropped > 0,
        "the open and the proposed markets' rows"
    );

    let truth = e.sim.truth();
    let mut per_market: BTreeMap<String, usize> = BTreeMap::new();
    for (cid, token, ts, won, outcome) in &rows {
        let m = truth
            .markets
            .iter()
            .find(|m| &m.condition_id == cid)
            .unwrap();
        let close = m.closed_time.unwrap().timestamp_millis();
        assert!(*ts < close, "{cid}: a row at {ts} after its close {close}");
        assert_eq!(
            token, &m.token_ids[0],
            "rows describe the first outcome's token"
        );
        match m.stage.result() {
            Some(SimResult::Winner(o)) => {
                assert_eq!(*won, Some(i32::from(o == 0)), "{cid}");
                assert_eq!(outcome.as_deref(), Some(m.outcomes[o].as_str()));
            }
            Some(SimResult::Invalid) => assert_eq!((won, outcome), (&None, &None), "{cid}"),
            None => panic!("{cid}: exported without a final result"),
        }
        *per_market.entry(cid.clone()).or_default() += 1;
    }
    assert_eq!(
        per_market.len(),
        4,
        "the four final markets, each with its rows"
    );
    assert!(per_market.values().all(|n| *n >= 5), "{per_market:?}");

    // A copied snapshot file (as a sync tool or a half-done compaction leaves) adds nothing.
    let file = files_under(e.dir.path(), "snapshots").remove(0);
    std::fs::copy(&file, file.with_file_name("copy of a tick.parquet")).unwrap();
    let s2 = polytape_store::export::export(&opts, &mut |_| {}).unwrap();
    assert!(s2.duplicates_dropped > 0);
    assert_eq!(exported(&out), rows, "the same rows, once each");
}
