//! The coverage ledger end to end. The simulator fails every request for T1's markets during
//! three ticks: `/api/data-quality/coverage` reports the shortfall for T1 in that hour (ticks
//! failed, samples missing), `/health/critical` answers 503 naming T1, `/gaps` names the three
//! markets and their three ticks; once the failures are more than an hour old the health is
//! back to 200 and the next hour is whole, while the failing hour keeps its shortfall. The
//! Athena named query "coverage per market" of template.yaml, run in DuckDB over the very
//! Parquet written, counts every market, tier and hour as the ledger's tier histories do.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::ledger::{scheduled, tier_at};
use polytape_collector::snapshot::snapshot_tick;
use polytape_collector::status::{self, Status};
use polytape_collector::Config;
use polytape_core::{Tier, Ts, TIERS};
use polytape_store::read::TickReader;
use polytape_store::{keys, parquet, MarketStore, ObjectStore};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

fn at(min: i64, sec: i64) -> Ts {
    anchor() + chrono::Duration::minutes(min) + chrono::Duration::seconds(sec)
}

/// The T1 ticks at minutes 15, 20 and 25 fail.
fn failing(t: Ts) -> bool {
    [at(15, 0), at(20, 0), at(25, 0)].contains(&t)
}

/// Runs T1's ticks in `[from, to]`, each at its time (the clock stays there, so every tick is
/// on time) with [`TICK_BUDGET`] of wall time; its markets failing when [`failing`], with a
/// short deadline then (its retries are in vain).
async fn run_t1(e: &Env, t1: &[String], from: Ts, to: Ts) {
    for tick in scheduled(Tier::T1, from, to + chrono::Duration::seconds(1)) {
        e.clock.set(tick.tick_ts);
        let budget = if failing(tick.tick_ts) {
            e.sim.fail_markets(t1);
            FAILING_TICK_BUDGET
        } else {
            TICK_BUDGET
        };
        let deadline = deadline_within(tick, budget);
        snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
            .await
            .unwrap();
        e.sim.heal_markets();
    }
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn hour_of(c: &Value, hour: Ts) -> &Value {
    c["hours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["tier"] == "T1" && h["hour"] == json!(hour))
        .unwrap_or_else(|| panic!("no T1 hour {hour}: {c}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_failing_for_three_ticks_shows_in_coverage_and_health_and_recovers_after() {
    let e = env(3, 100).await;
    let cfg = Config::default();
    e.clock.set(anchor());
    e.discover().await;
    let t1: Vec<String> = e
        .store
        .markets_due(Tier::T1, anchor())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.condition_id)
        .collect();
    assert_eq!(t1.len(), 3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(
        listener,
        status::router(Status::new(e.store.clone(), cfg.clone()).with_clock(e.clock.clone())),
        std::future::pending(),
    ));

    // 10:00 … 10:30, the ticks of 10:15, 10:20 and 10:25 failing; asked at 10:31.
    run_t1(&e, &t1, at(0, 0), at(30, 0)).await;
    e.clock.set(at(31, 0));
    let (code, h) = get(&base, "/health/critical").await;
    assert_eq!(code, 503, "{h}");
    let checks: Vec<&str> = h["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    // Only T1's ticks ran: the other tiers' owed ticks are missing, and fail too.
    assert_eq!(
        checks,
        [
            "ticks_T1",
            "coverage_T1",
            "ticks_T2",
            "coverage_T2",
            "ticks_T3",
            "coverage_T3",
            "ticks_T4",
            "coverage_T4"
        ],
        "{h}"
    );
    // Health judges a tick a minute after it was due: 10:00 … 10:25, not 10:30.
    assert!(
        h["failing"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("9 of 18 samples"),
        "{h}"
    );
    let (_, c) = get(&base, "/api/data-quality/coverage?tier=T1&hours=1").await;
    let ten = hour_of(&c, anchor());
    assert_eq!(
        (
            ten["ticks"].as_u64(),
            ten["failed_ticks"].as_u64(),
            ten["expected_samples"].as_u64(),
            ten["samples"].as_u64(),
            ten["missing_samples"].as_u64(),
            ten["coverage_pct"].as_f64(),
        ),
        (Some(7), Some(3), Some(21), Some(12), Some(9), Some(57.1)),
        "{ten}"
    );
    let (_, g) = get(&base, "/api/data-quality/gaps?tier=T1").await;
    let mut named: Vec<&str> = g["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(
                m["missing"],
                json!([at(15, 0), at(20, 0), at(25, 0)]),
                "{m}"
            );
            assert_eq!(m["expected_ticks"], 7, "{m}");
            m["condition_id"].as_str().unwrap()
        })
        .collect();
    named.sort_unstable();
    let mut want: Vec<&str> = t1.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(named, want);

    // On to 11:30, every tick whole; asked at 11:36 the last hour holds no failure.
    run_t1(&e, &t1, at(35, 0), at(90, 0)).await;
    e.clock.set(at(96, 0));
    let (_, h) = get(&base, "/health/critical").await;
    assert!(
        h["failing"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["check"].as_str().unwrap().ends_with("T1")),
        "{h}"
    );
    let (_, c) = get(&base, "/api/data-quality/coverage?tier=T1&hours=2").await;
    let ten = hour_of(&c, anchor());
    assert_eq!(
        (
            ten["ticks"].as_u64(),
            ten["failed_ticks"].as_u64(),
            ten["coverage_pct"].as_f64()
        ),
        (Some(12), Some(3), Some(75.0)),
        "the failing hour keeps its shortfall: {ten}"
    );
    let eleven = hour_of(&c, at(60, 0));
    assert_eq!(
        (
            eleven["ticks"].as_u64(),
            eleven["pending_ticks"].as_u64(),
            eleven["coverage_pct"].as_f64()
        ),
        (Some(7), Some(1), Some(100.0)),
        "11:00 … 11:30 whole, 11:35 not due yet: {eleven}"
    );

    athena_query_counts_like_the_ledger(&e, at(96, 0)).await;
}

/// The `VALUES` rows of the query's tier table, from crates/core's tier table.
fn tier_rows() -> Vec<String> {
    TIERS
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let upper = match i {
                0 => "CAST(NULL AS integer)".to_string(),
                _ => TIERS[i - 1].above_s.to_string(),
            };
            let lower = if spec.tier == Tier::T4 {
                -polytape_core::tier::SAMPLED_PAST_END_S
            } else {
                spec.above_s
            };
            format!(
                "(SMALLINT '{}', {}, {upper}, {lower})",
                spec.tier.number(),
                spec.interval_s
            )
        })
        .collect()
}

/// The named query's text, from template.yaml.
fn named_query() -> Option<String> {
    let python = std::env::var("POLYTAPE_PYTHON_SAM").ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new(python)
        .arg(root.join("infra/checks/template_json.py"))
        .arg(root.join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let q = &t["Resources"]["CoverageByMarketQuery"]["Properties"]["QueryString"];
    Some(q.as_str().expect("a plain SQL string").to_string())
}

/// Runs the named query at `now` in DuckDB over the data directory (with the day's markets
/// dimension written, as maintenance writes it) and compares each (tier, hour, market) with
/// the ledger's count: ticks owed by the market's tier history, rows in the tick files.
async fn athena_query_counts_like_the_ledger(e: &Env, now: Ts) {
    let (Some(sql), Ok(python)) = (named_query(), std::env::var("POLYTAPE_PYTHON_PQ")) else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "POLYTAPE_PYTHON_SAM and POLYTAPE_PYTHON_PQ must be set (infra/tools.sh)"
        );
        eprintln!("SKIP: the Athena query in DuckDB (POLYTAPE_PYTHON_SAM/PQ not set)");
        return;
    };
    for row in tier_rows() {
        assert!(
            sql.contains(&row),
            "the query's tier table lacks {row}:\n{sql}"
        );
    }
    let markets = e.store.all_markets().await.unwrap();
    let enc = parquet::encode_markets(&markets).unwrap();
    e.store
        .put_object(
            &keys::markets(now.date_naive()),
            enc.bytes,
            parquet::CONTENT_TYPE,
        )
        .await
        .unwrap();
    let sql_file = e.dir.path().join("query.sql");
    std::fs::write(&sql_file, &sql).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new(python)
        .arg(root.join("infra/checks/athena_duckdb.py"))
        .arg(e.dir.path())
        .arg(&sql_file)
        .arg(now.to_rfc3339())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let parse_hour = |v: &Value| -> Ts {
        let s = v.as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(s)
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{s}Z")))
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .unwrap()
                    .and_utc()
            })
    };
    let from_sql: BTreeMap<(u8, Ts, String), (u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                (
                    u8::try_from(r["tier"].as_u64().unwrap()).unwrap(),
                    parse_hour(&r["hour"]),
                    r["condition_id"].as_str().unwrap().to_string(),
                ),
                (
                    r["expected_samples"].as_u64().unwrap(),
                    r["samples"].as_u64().unwrap(),
                ),
            )
        })
        .collect();

    // The ledger's count: owed ticks (settled: older than their interval and 30 s) where the
    // market's tier history puts it in the tier, and its rows in those ticks' files.
    let mut reader = TickReader::new(&e.store, keys::SNAPSHOTS);
    let mut from_ledger: BTreeMap<(u8, Ts, String), (u64, u64)> = BTreeMap::new();
    for tier in Tier::ALL {
        for tick in scheduled(tier, anchor(), now) {
            let owed =
                tick.tick_ts + chrono::Duration::seconds(i64::from(tier.interval_s()) + 30) < now;
            let present = reader
                .condition_ids(tick)
                .await
                .unwrap()
                .unwrap_or_default();
            for m in &markets {
                let in_tier = tier_at(m, tick.tick_ts) == Some(tier);
                if !(owed && in_tier) {
                    continue;
                }
                let key = (
                    tier.number(),
                    polytape_collector::ledger::hour_of(tick.tick_ts),
                    m.condition_id.clone(),
                );
                let v = from_ledger.entry(key).or_default();
                v.0 += 1;
                v.1 += u64::from(present.contains(&m.condition_id));
            }
        }
    }
    assert!(
        from_ledger.len() > 15,
        "every market has owed ticks: {from_ledger:?}"
    );
    assert_eq!(
        from_sql, from_ledger,
        "the named query and the ledger disagree"
    );
    // The failing hour, as the query reports it: 12 ticks owed, 9 written, per T1 market.
    let failing_hour: Vec<(u64, u64)> = from_sql
        .iter()
        .filter(|((t, h, _), _)| *t == 1 && *h == anchor())
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(failing_hour, vec![(12, 9); 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_recorded_tick_before_the_start_then_a_gap_counts_it_among_the_expected_ticks() {
    // Discovered at 10:00; a run started at 10:30 but an earlier one recorded T1's 10:15 tick
    // as failed. Asked at 10:40 over 10:00 …: 10:15 (recorded) and 10:30 (owed, never ran)
    // are missing, of 2 expected ticks — never more missing than expected.
    use polytape_store::CoverageStore;
    let e = env(3, 100).await;
    e.clock.set(anchor());
    e.discover().await;
    e.store
        .put_coverage(&polytape_core::ops::Coverage {
            tier: Tier::T1,
            tick_ts: at(15, 0),
            expected: 3,
            written: 0,
            missing: 3,
            skipped: false,
            failed: true,
        })
        .await
        .unwrap();
    let g = polytape_collector::ledger::gaps(
        &e.store,
        at(40, 0),
        anchor(),
        Some(at(30, 0)),
        &[Tier::T1],
    )
    .await
    .unwrap();
    assert_eq!(g.markets.len(), 3, "{g:?}");
    for m in &g.markets {
        assert_eq!(m.missing, vec![at(15, 0), at(30, 0)], "{m:?}");
        assert_eq!((m.missing_ticks, m.expected_ticks), (2, 2), "{m:?}");
    }
}
