//! The status API over HTTP, every endpoint, against populated state: a simulated world
//! discovered and sampled on its schedule for ten minutes (one T3 tick failing on Polymarket's
//! side, one T4 tick never run), maintenance, two feed shards' heartbeats, stored trades and a
//! whale event. Each endpoint's values are checked against what the store holds, with its
//! paging, its filters and its bad parameters; the local router (with a run's counters and
//! events) and the store router the status Lambda serves answer the same JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

mod common;

use chrono::DurationRound;
use common::*;
use polytape_collector::live::{MessageSink, StoreSink};
use polytape_collector::runner::Runtime;
use polytape_collector::snapshot::snapshot_tick;
use polytape_collector::status::{self, routes, LiveEvents, Local, Status};
use polytape_collector::Config;
use polytape_core::live::{SizeSource, Source, StoredTrade, WhaleEvent};
use polytape_core::ops::ShardHeartbeat;
use polytape_core::schedule::due_in_minute;
use polytape_core::{Side, TickId, Tier, Ts};
use polytape_feed::queue::{Message, Packer, Record};
use polytape_store::{CoverageStore, HeartbeatStore, MarketStore, ObjectStore, TaskStore};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// When the endpoints are asked: ten minutes and ten seconds into the world.
fn now() -> Ts {
    anchor() + chrono::Duration::seconds(610)
}

/// The T3 tick whose requests fail, and the T4 tick that never runs.
fn failing_t3() -> TickId {
    TickId {
        tier: Tier::T3,
        tick_ts: anchor() + chrono::Duration::seconds(270),
    }
}

fn skipped_t4() -> TickId {
    TickId {
        tier: Tier::T4,
        tick_ts: anchor() + chrono::Duration::seconds(375),
    }
}

struct World {
    e: Env,
    /// The local router (a run's counters and live events) and the store router (as the
    /// status function serves it).
    local: String,
    cloud: String,
    events: LiveEvents,
    /// The markets of T3 at the anchor (their failing tick).
    t3: Vec<String>,
}

fn trade(n: u64, market: &str, token: &str, at: Ts) -> StoredTrade {
    StoredTrade {
        trade_key: format!("k{n}"),
        condition_id: market.to_string(),
        token_id: token.to_string(),
        outcome_index: Some(0),
        side: if n.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        price: Decimal::new(50 + n as i64, 2),
        size: Some(Decimal::new(10, 0)),
        size_source: match n {
            1 => SizeSource::DataApi,
            2 => SizeSource::Missing,
            _ => SizeSource::Feed,
        },
        fee_rate_bps: None,
        transaction_hash: Some(format!("0xhash{n}")),
        trade_ts: at,
        received_at: at,
        source: Source::Ws,
        best_bid: Some(Decimal::new(49, 2)),
        best_ask: Some(Decimal::new(51, 2)),
        mid: Some(Decimal::new(50, 2)),
        notional: Some(Decimal::new(5, 0)),
        whale_tier: None,
        stale: n == 3,
        divergent: n == 4,
        shard: Some(0),
        seq: Some(n),
    }
}

fn whale(market: &str, token: &str, at: Ts) -> WhaleEvent {
    WhaleEvent {
        trade_key: "kw".into(),
        condition_id: market.to_string(),
        token_id: token.to_string(),
        side: Side::Buy,
        price: Decimal::new(60, 2),
        size: Decimal::new(5000, 0),
        notional: Decimal::new(3000, 0),
        whale_tier: 2,
        trade_ts: at,
        price_before: Some(Decimal::new(58, 2)),
        price_after_1m: None,
        price_after_5m: None,
        impact_1m: None,
        impact_5m: None,
    }
}

/// One feed message holding `records` (a run started at the anchor).
fn message(seq_base: u64, records: &[Record]) -> Message {
    let mut p = Packer::new(
        anchor().timestamp_millis() + seq_base as i64,
        250_000,
        std::time::Duration::from_secs(2),
    );
    for r in records {
        assert!(p.push(r, 0).is_empty());
    }
    p.take().unwrap()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(listener, router, std::future::pending()));
    base
}

/// Runs every tick of the schedule from the anchor up to `until` (exclusive), each at its
/// time (the clock stays there, so every tick is on time) with [`TICK_BUDGET`] of wall time;
/// the T3 tick [`failing_t3`] with its markets failing and a short deadline (its retries are
/// in vain), and never [`skipped_t4`].
async fn run_ticks(e: &Env, t3: &[String], until: Ts) {
    let mut minute = anchor();
    while minute < until {
        for tick in due_in_minute(minute) {
            if tick.tick_ts >= until || tick == skipped_t4() {
                continue;
            }
            e.clock.set(tick.tick_ts);
            let failing = tick == failing_t3();
            if failing {
                e.sim.fail_markets(t3);
            }
            let budget = if failing {
                FAILING_TICK_BUDGET
            } else {
                TICK_BUDGET
            };
            let deadline = deadline_within(tick, budget);
            snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
                .await
                .unwrap();
            if failing {
                e.sim.heal_markets();
            }
        }
        minute += chrono::Duration::minutes(1);
    }
}

async fn world() -> World {
    let e = env(3, 100).await;
    let cfg = Config::default();
    e.clock.set(anchor());
    e.discover().await;
    let t3: Vec<String> = e
        .store
        .markets_due(Tier::T3, anchor())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.condition_id)
        .collect();
    assert_eq!(t3.len(), 3);
    run_ticks(&e, &t3, anchor() + chrono::Duration::seconds(300)).await;
    e.clock.set(anchor() + chrono::Duration::seconds(301));
    polytape_collector::maintenance::run(&e.client, &e.store, &cfg, &e.clock, None)
        .await
        .unwrap();
    // The rest of the ten minutes (the 10:05 ticks ran before maintenance).
    let mut minute = anchor() + chrono::Duration::minutes(5);
    while minute < anchor() + chrono::Duration::minutes(10) {
        for tick in due_in_minute(minute) {
            if tick == skipped_t4() {
                continue;
            }
            e.clock.set(tick.tick_ts);
            let deadline = deadline_within(tick, TICK_BUDGET);
            snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
                .await
                .unwrap();
        }
        minute += chrono::Duration::minutes(1);
    }

    // Two shards: one beating now, one silent for two minutes.
    let t4 = e.store.markets_due(Tier::T4, now()).await.unwrap();
    let round: Vec<ShardHeartbeat> = [("shard-00", 5, 4, 1), ("shard-01", 120, 2, 3)]
        .into_iter()
        .map(|(id, ago, assets, reconnects)| ShardHeartbeat {
            shard_id: id.into(),
            at: now() - chrono::Duration::seconds(ago),
            assets,
            last_event_at: Some(now() - chrono::Duration::seconds(ago + 10)),
            reconnects,
        })
        .collect();
    e.store.put_heartbeats(&round).await.unwrap();
    // Four trades of a T4 market (G3 found, G3 missing, G1, G5) and a whale event, stored as
    // the trades consumer stores a feed message.
    let (m, tok) = (&t4[0].condition_id, &t4[0].yes_token_id);
    let at = |s: i64| anchor() + chrono::Duration::seconds(s);
    let records: Vec<Record> = (1..=4)
        .map(|n| Record::Trade(trade(n, m, tok, at(480 + n as i64))))
        .chain([Record::Whale(whale(m, tok, at(485)))])
        .collect();
    StoreSink(e.store.clone())
        .send(&message(0, &records))
        .await
        .unwrap();
    e.clock.set(now());

    let rt = Runtime::new(e.client.clone(), e.store.clone(), cfg.clone());
    rt.stats.mark_started(anchor());
    let events = LiveEvents::new(64);
    let local = Status::new(e.store.clone(), cfg.clone())
        .with_clock(e.clock.clone())
        .with_local(Arc::new(Local {
            runtime: rt,
            events: Some(events.clone()),
        }));
    let cloud = Status::new(e.store.clone(), cfg).with_clock(e.clock.clone());
    World {
        local: serve(status::router(local)).await,
        cloud: serve(status::router(cloud)).await,
        events,
        t3,
        e,
    }
}

/// GET: status and JSON body.
async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let code = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (code, body)
}

/// GET that must answer 200: the body.
async fn ok(base: &str, path: &str) -> Value {
    let (code, body) = get(base, path).await;
    assert_eq!(code, 200, "{path}: {body}");
    body
}

/// GET that must answer `code` with an error of `error`.
async fn refused(base: &str, path: &str, code: u16, error: &str) {
    let (got, body) = get(base, path).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (code, Some(error)),
        "{path}: {body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

fn ts(v: &Value) -> Ts {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_the_stores_values_with_paging_filters_and_bad_parameters() {
    let w = world().await;
    let (base, store) = (&w.local, &w.e.store);
    let coverage = store.coverage_since(anchor()).await.unwrap();
    let written = |tier: Tier| -> u64 {
        coverage
            .iter()
            .filter(|c| c.tier == tier)
            .map(|c| u64::from(c.written))
            .sum()
    };
    let expected = |tier: Tier| -> u64 {
        coverage
            .iter()
            .filter(|c| c.tier == tier)
            .map(|c| u64::from(c.expected))
            .sum()
    };

    // Root (the dashboard page, whose every URL is relative) and the document.
    let root = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(
        root.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    let page = root.text().await.unwrap();
    assert!(page.contains("id=\"markets-total\""), "{page}");
    assert!(
        !page.contains("\"/api/"),
        "a URL from the host root in the page"
    );
    assert_eq!(
        ok(base, "/api/openapi.json").await,
        status::openapi::document()
    );
    refused(base, "/api/nope", 404, "not_found").await;
    refused(base, "/?x=1", 400, "unknown_parameter").await;

    // Health judges the ticks due a minute ago (up to 10:09:10): one T3 tick failed (1 of 19:
    // under 10 %; 54 of 57 samples: over 90 %), one T4 tick missing and owing its 3 markets'
    // samples (1 of 37 ticks: under 10 %), shard-01's heartbeat 120 s old (not over 120 s).
    let h = ok(base, "/health").await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["ticks_last_hour"]["T3"]["failed_ticks"], 1, "{h}");
    assert_eq!(h["ticks_last_hour"]["T3"]["ticks"], 19, "{h}");
    assert_eq!(h["ticks_last_hour"]["T4"]["missing_owed_ticks"], 1, "{h}");
    assert_eq!(h["ticks_last_hour"]["T4"]["ticks"], 37, "{h}");
    assert_eq!(h["ticks_last_hour"]["T4"]["estimated_samples"], 3, "{h}");
    assert_eq!(
        h["ticks_last_hour"]["T3"]["samples"].as_u64(),
        Some(written(Tier::T3) - 3)
    );
    assert_eq!(h["since"], json!(anchor()));
    assert_eq!(ok(base, "/health/critical").await["failing"], json!([]));
    refused(base, "/health?tier=1", 400, "unknown_parameter").await;

    // Stats: markets per tier, the last hour's rows per tier, the run's counters. The markets
    // per tier are counted by end date at now over the markets as maintenance's re-tier left
    // them at 10:05:01 (at most 5 minutes old): the store's count, none having changed since.
    let s = ok(base, "/api/stats").await;
    assert_eq!(s["markets_tracked"], 15, "{s}");
    for tier in Tier::ALL {
        let t = &s["tiers"][tier.to_string()];
        assert_eq!(
            t["rows_last_hour"].as_u64(),
            Some(written(tier)),
            "{tier}: {s}"
        );
        // The ledger's count, as /api/data-quality/coverage's: the missing T4 tick owed its
        // 3 markets' samples by their tier histories.
        let estimated = if tier == Tier::T4 { 3 } else { 0 };
        assert_eq!(
            t["expected_rows_last_hour"].as_u64(),
            Some(expected(tier) + estimated),
            "{tier}: {s}"
        );
        assert_eq!(t["markets"], 3, "{tier}: {s}");
    }
    assert_eq!(s["tiers"]["T4"]["missing_ticks_last_hour"], 1);
    assert_eq!(s["tiers"]["T3"]["failed_ticks_last_hour"], 1);
    assert_eq!(
        s["tiers"]["T4"]["next_tick"],
        json!(anchor() + chrono::Duration::seconds(615))
    );
    assert!(s["run"].is_object() && s["live"].is_null(), "{s}");

    // Markets: 15, end date order, paged 4 at a time; filters; bad parameters.
    let all = ok(base, "/api/markets?limit=500").await;
    assert_eq!(all["total"], 15);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/markets?limit=4&cursor={c}"),
            None => "/api/markets?limit=4".to_string(),
        };
        let page = ok(base, &path).await;
        let items = page["markets"].as_array().unwrap().clone();
        assert!(items.len() <= 4);
        paged.extend(items);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        Value::Array(paged.clone()),
        all["markets"],
        "pages add up to the whole"
    );
    let ends: Vec<Ts> = paged.iter().map(|m| ts(&m["end_date"])).collect();
    assert!(ends.windows(2).all(|w| w[0] <= w[1]), "end date order");
    let t2 = ok(base, "/api/markets?tier=T2").await;
    assert_eq!(t2["total"], 3);
    assert!(t2["markets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["tier"] == "T2"));
    let one = &paged[0];
    let word: String = one["question"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap()
        .to_lowercase();
    let found = ok(base, &format!("/api/markets?q={}", urlencode(&word))).await;
    assert!(found["markets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["question"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains(&word)));
    assert!(found["total"].as_u64().unwrap() >= 1);
    let t4_latest = ok(base, "/api/markets?tier=4").await;
    for m in t4_latest["markets"].as_array().unwrap() {
        assert_eq!(m["latest"]["tier"], "T4", "{m}");
        assert!(m["latest"]["snapshot_count"].as_u64().unwrap() >= 38, "{m}");
    }
    assert_eq!(ok(base, "/api/markets?state=ended").await["total"], 0);
    assert_eq!(ok(base, "/api/markets?state=all").await["total"], 15);
    refused(base, "/api/markets?tier=9", 400, "bad_parameter").await;
    refused(base, "/api/markets?limit=0", 400, "bad_parameter").await;
    refused(base, "/api/markets?limit=501", 400, "bad_parameter").await;
    refused(base, "/api/markets?state=closed", 400, "bad_parameter").await;
    refused(base, "/api/markets?cursor=zzz", 400, "bad_cursor").await;
    refused(base, "/api/markets?limit=1&limit=2", 400, "bad_parameter").await;
    refused(base, "/api/markets?page=2", 400, "unknown_parameter").await;

    // One market: record, tier history, transition, latest, newest snapshots from Parquet.
    let t4m = store.markets_due(Tier::T4, now()).await.unwrap().remove(0);
    let d = ok(base, &format!("/api/markets/{}", t4m.condition_id)).await;
    let m = &d["market"];
    assert_eq!(m["question"], json!(t4m.question));
    assert_eq!(
        (m["tier"].as_str(), m["result"].as_str()),
        (Some("T4"), Some("open"))
    );
    assert_eq!(
        m["tier_history"].as_array().unwrap().last().unwrap()["tier"],
        4
    );
    assert_eq!(m["transitions"][0]["reason"], "discovered", "{m}");
    let snaps = m["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 20, "the default 20 newest");
    let times: Vec<Ts> = snaps.iter().map(|r| ts(&r["snapshot_ts"])).collect();
    assert_eq!(
        times[0],
        anchor() + chrono::Duration::seconds(585),
        "the newest T4 tick"
    );
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(
        !times.contains(&skipped_t4().tick_ts),
        "the tick that never ran has no row"
    );
    assert!(snaps
        .iter()
        .all(|r| r["condition_id"] == json!(t4m.condition_id) && r["tier"] == 4));
    assert_eq!(
        snaps[0]["price"], m["latest"]["price"],
        "the newest row is the Latest"
    );
    let few = ok(
        base,
        &format!("/api/markets/{}?snapshots=3", t4m.condition_id),
    )
    .await;
    assert_eq!(few["market"]["snapshots"].as_array().unwrap().len(), 3);
    refused(base, "/api/markets/0xfeed", 404, "not_found").await;
    refused(base, "/api/markets/not-an-id", 400, "bad_parameter").await;
    refused(
        base,
        &format!("/api/markets/{}?snapshots=101", t4m.condition_id),
        400,
        "bad_parameter",
    )
    .await;

    // Transitions: 15 discoveries, paged; filters.
    let tr = ok(base, "/api/tier-transitions?reason=discovered&limit=10").await;
    assert_eq!(
        (
            tr["total"].as_u64(),
            tr["transitions"].as_array().unwrap().len()
        ),
        (Some(15), 10)
    );
    let rest = ok(
        base,
        &format!(
            "/api/tier-transitions?reason=discovered&limit=10&cursor={}",
            tr["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(rest["transitions"].as_array().unwrap().len(), 5);
    assert!(rest["next_cursor"].is_null());
    let mine = ok(
        base,
        &format!("/api/tier-transitions?condition_id={}", t4m.condition_id),
    )
    .await;
    assert!(mine["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["condition_id"] == json!(t4m.condition_id)));
    assert_eq!(
        ok(base, "/api/tier-transitions?tier=T2&reason=discovered").await["total"],
        3
    );
    refused(
        base,
        "/api/tier-transitions?reason=bored",
        400,
        "bad_parameter",
    )
    .await;
    refused(base, "/api/tier-transitions?cursor=o", 400, "bad_cursor").await;

    // Tasks: discovery, maintenance, resolutions, snapshot; per tier the last tick.
    let ts_ = ok(base, "/api/tasks/status").await;
    let task = |name: &str| {
        ts_["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == name)
            .unwrap_or_else(|| panic!("no {name}: {ts_}"))
            .clone()
    };
    let disc = task("discovery");
    assert_eq!(disc["last_status"], "ok");
    assert_eq!(
        ts(&disc["next_run_at"]),
        ts(&disc["last_success_at"]) + chrono::Duration::hours(1)
    );
    assert_eq!(
        ts(&task("maintenance")["next_run_at"]),
        now(),
        "run at 10:05:01, due 10:10:01: overdue, so next at once"
    );
    let snap = task("snapshot");
    assert_eq!(snap["consecutive_failures"], 0);
    let t4_status = &ts_["snapshot_tiers"][4];
    assert_eq!(t4_status["last_run_id"], "20261120T100945Z#snapshot#T4");
    assert_eq!(
        ts(&t4_status["next_tick_at"]),
        anchor() + chrono::Duration::seconds(615)
    );
    refused(base, "/api/tasks/status?task=x", 400, "unknown_parameter").await;

    // Runs: the failed T3 tick with its error; paging over every run of the ten minutes.
    let failed = ok(base, "/api/tasks/runs?task=snapshot&status=failed").await;
    assert_eq!(failed["runs"].as_array().map(Vec::len), Some(1), "{failed}");
    assert_eq!(failed["next_cursor"], Value::Null, "{failed}");
    assert_eq!(failed["runs"][0]["id"], "20261120T100430Z#snapshot#T3");
    assert!(failed["runs"][0]["error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    let runs = store.task_runs_since(anchor()).await.unwrap();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/tasks/runs?limit=25&cursor={c}"),
            None => "/api/tasks/runs?limit=25".into(),
        };
        let page = ok(base, &path).await;
        for r in page["runs"].as_array().unwrap() {
            assert!(seen.insert(r["id"].as_str().unwrap().to_string()), "{r}");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    let all_ids: BTreeSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(seen, all_ids, "every run once");
    refused(base, "/api/tasks/runs?status=broken", 400, "bad_parameter").await;
    refused(base, "/api/tasks/runs?hours=169", 400, "bad_parameter").await;

    // Coverage per tier and hour.
    let c = ok(base, "/api/data-quality/coverage?hours=1").await;
    let hour = |tier: &str| {
        c["hours"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["tier"] == tier)
            .unwrap()
            .clone()
    };
    let t3h = hour("T3");
    assert_eq!(ts(&t3h["hour"]), anchor());
    assert_eq!(
        (
            t3h["ticks"].as_u64(),
            t3h["failed_ticks"].as_u64(),
            t3h["ok_ticks"].as_u64()
        ),
        (Some(20), Some(1), Some(19)),
        "{t3h}"
    );
    assert_eq!(
        (
            t3h["expected_samples"].as_u64(),
            t3h["samples"].as_u64(),
            t3h["missing_samples"].as_u64()
        ),
        (Some(60), Some(57), Some(3))
    );
    assert_eq!(t3h["coverage_pct"], 95.0);
    let t4h = hour("T4");
    assert_eq!(
        (
            t4h["missing_ticks"].as_u64(),
            t4h["estimated_samples"].as_u64()
        ),
        (Some(1), Some(3)),
        "the missing tick's 3 markets estimated from their tier histories: {t4h}"
    );
    assert_eq!(
        t4h["expected_samples"].as_u64(),
        Some(expected(Tier::T4) + 3)
    );
    assert_eq!(t4h["samples"].as_u64(), Some(written(Tier::T4)));
    assert_eq!(
        t4h["pending_ticks"], 1,
        "10:10:00 has not run and is not late yet (not owed): {t4h}"
    );
    let only_t1 = ok(base, "/api/data-quality/coverage?tier=1&hours=2").await;
    assert_eq!(
        only_t1["hours"].as_array().unwrap().len(),
        2,
        "two hours, one tier"
    );
    assert_eq!(only_t1["tiers"]["T1"]["ticks"], 2);
    refused(
        base,
        "/api/data-quality/coverage?hours=49",
        400,
        "bad_parameter",
    )
    .await;

    // Gaps: the failing T3 tick's 3 markets and the missing T4 tick's 3, one tick each.
    let g = ok(base, "/api/data-quality/gaps").await;
    assert_eq!(g["total"], 6, "{g}");
    let mut ids: Vec<String> = g["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["missing_ticks"], 1, "{m}");
            m["condition_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    let mut want: Vec<String> = w.t3.clone();
    want.extend(
        store
            .markets_due(Tier::T4, skipped_t4().tick_ts)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.condition_id),
    );
    want.sort();
    assert_eq!(ids, want);
    let g3 = ok(base, "/api/data-quality/gaps?tier=T3").await;
    assert_eq!(g3["markets"][0]["missing"], json!([failing_t3().tick_ts]));
    assert_eq!(g3["markets"][0]["expected_ticks"], 20);
    let p1 = ok(base, "/api/data-quality/gaps?limit=4").await;
    assert_eq!(p1["markets"].as_array().unwrap().len(), 4);
    let p2 = ok(
        base,
        &format!(
            "/api/data-quality/gaps?limit=4&cursor={}",
            p1["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(p2["markets"].as_array().unwrap().len(), 2);
    assert_eq!(
        g["stale"],
        json!([]),
        "every market sampled within 3 intervals"
    );
    refused(base, "/api/data-quality/gaps?hours=7", 400, "bad_parameter").await;

    // Completeness: T2 rows have book depth; T0 rows have none; no row has flow.
    let comp = ok(base, "/api/data-quality/completeness?ticks=2").await;
    let tier_comp = |tier: &str| {
        comp["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tier"] == tier)
            .unwrap()
            .clone()
    };
    let c2 = tier_comp("T2");
    assert_eq!(
        (c2["rows"].as_u64(), c2["ticks"].as_array().unwrap().len()),
        (Some(6), 2)
    );
    assert_eq!(c2["columns"]["price"], 1.0);
    assert_eq!(c2["columns"]["bid_depth_5"], 1.0);
    assert_eq!(c2["columns"]["trade_count_1h"], 0.0);
    let c0 = tier_comp("T0");
    assert_eq!(
        (c0["rows"].as_u64(), c0["columns"]["bid_depth_5"].as_f64()),
        (Some(3), Some(0.0))
    );
    let cats: u64 = comp["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["tier"] == "T2")
        .map(|c| c["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(cats, 6, "the categories of a tier add up to its rows");
    refused(
        base,
        "/api/data-quality/completeness?ticks=61",
        400,
        "bad_parameter",
    )
    .await;

    // WebSocket: two shards (one silent past the alive limit), 18 tokens owed (9 markets of
    // T2–T4, counted as /api/stats counts them), the guards of the four trades.
    let ws = ok(base, "/api/websocket").await;
    assert_eq!(ws["shards"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            ws["shards_alive"].as_u64(),
            ws["subscribed_assets"].as_u64()
        ),
        (Some(1), Some(4))
    );
    assert_eq!(ws["should_subscribe_assets"], 18);
    assert_eq!(ws["reconnects"], 4);
    assert_eq!(ws["shards"][1]["silent_s"], 130);
    let gd = &ws["guards_last_hour"];
    assert_eq!(
        [
            &gd["trades"],
            &gd["g1_stale"],
            &gd["g3_size_from_data_api"],
            &gd["g3_size_missing"],
            &gd["g5_divergent"]
        ],
        [&json!(4), &json!(1), &json!(1), &json!(1), &json!(1)],
        "{ws}"
    );
    assert!(
        ws["feed"].is_null(),
        "the feed has not reported in this run"
    );

    // Events: newest first, filtered by kind and market, limited.
    let ev = ok(base, "/api/events").await;
    let kinds: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["whale", "trade", "trade", "trade", "trade"], "{ev}");
    assert_eq!(ev["events"][1]["trade_key"], "k4");
    assert_eq!(ev["events"][1]["price"], "0.54", "money as an exact string");
    let wh = ok(base, "/api/events?kind=whales").await;
    assert_eq!(wh["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(base, "/api/events?kind=trades&limit=2").await["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ok(base, "/api/events?condition_id=0xother").await["events"],
        json!([])
    );
    refused(base, "/api/events?kind=orders", 400, "bad_parameter").await;

    // Tables: every table; snapshots counted exactly and browsed newest first, paged.
    let tables = ok(base, "/api/tables").await;
    let table = |name: &str| {
        tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {tables}"))
            .clone()
    };
    let total_rows: u64 = Tier::ALL.iter().map(|t| written(*t)).sum();
    let snap_files = store.list_objects("snapshots/").await.unwrap().len();
    let st = table("snapshots");
    assert_eq!(st["files"].as_u64(), Some(snap_files as u64));
    assert_eq!(
        st["rows_exact"], false,
        "over 50 files: the newest 50 footers read, the rest estimated"
    );
    let est = st["rows"].as_u64().unwrap();
    assert!(
        est.abs_diff(total_rows) * 20 <= total_rows,
        "estimate {est} within 5% of {total_rows}"
    );
    let one_day = ok(base, "/api/tables?days=1").await;
    assert_eq!(one_day["tables"][0]["name"], "snapshots");
    assert!(st["bytes"].as_u64().unwrap() > 0);
    assert_eq!(table("trades")["rows"], 4);
    assert_eq!(table("trades")["rows_exact"], true);
    assert_eq!(table("whale_events")["rows"], 1);
    // The big state tables are not read just to count them.
    assert_eq!(table("state.coverage")["rows"], Value::Null);
    assert_eq!(table("state.heartbeats")["rows"], 2);
    assert_eq!(table("state.markets")["rows"], Value::Null);
    assert_eq!(table("state.markets")["rows_exact"], false);
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/tables/snapshots?limit=37&cursor={c}"),
            None => "/api/tables/snapshots?limit=37".into(),
        };
        let page = ok(base, &path).await;
        let got = page["rows"].as_array().unwrap();
        assert!(got.len() <= 37);
        rows.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    assert_eq!(rows.len() as u64, total_rows, "every row once");
    // Newest first: the newest hour first, within an hour one tier after the other, each
    // newest first (the order compaction keeps: an hour of a tier is one file after it).
    let order: Vec<(Ts, u64, Ts)> = rows
        .iter()
        .map(|r| {
            let t = ts(&r["snapshot_ts"]);
            let hour = t.duration_trunc(chrono::Duration::hours(1)).unwrap();
            (hour, r["tier"].as_u64().unwrap(), t)
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0].0 > w[1].0
            || (w[0].0 == w[1].0 && (w[0].1 < w[1].1 || (w[0].1 == w[1].1 && w[0].2 >= w[1].2)))),
        "newest hour first, a tier at a time, newest first"
    );
    assert!(
        order
            .iter()
            .map(|o| o.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "several tiers in an hour"
    );
    assert!(rows
        .iter()
        .all(|r| r["dt"] == "2026-11-20" && r["tier"].is_u64()));
    let cov_rows = ok(base, "/api/tables/state.coverage?limit=10").await;
    assert_eq!(cov_rows["total"].as_u64(), Some(coverage.len() as u64));
    assert_eq!(
        ts(&cov_rows["rows"][0]["tick_ts"]),
        anchor() + chrono::Duration::seconds(585)
    );
    refused(base, "/api/tables/nope", 404, "not_found").await;
    refused(base, "/api/tables/snapshots?limit=0", 400, "bad_parameter").await;
    refused(base, "/api/tables/snapshots?cursor=x", 400, "bad_cursor").await;
    refused(base, "/api/tables?days=8", 400, "bad_parameter").await;

    // The live stream: a local run only.
    refused(&w.cloud, "/api/events/stream", 404, "not_available").await;
    refused(base, "/api/events/stream?kind=x", 400, "bad_parameter").await;
}

/// A query-string value, percent-encoded.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stream_sends_each_stored_trade_and_whale_event_as_it_is_stored() {
    let w = world().await;
    let mut resp = reqwest::get(format!("{}/api/events/stream?kind=all", w.local))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let t4 = w.e.store.markets_due(Tier::T4, now()).await.unwrap();
    let (m, tok) = (&t4[1].condition_id, &t4[1].yes_token_id);
    let sink = w.events.sink(StoreSink(w.e.store.clone()));
    let msg = message(
        1,
        &[
            Record::Trade(trade(7, m, tok, now())),
            Record::Whale(whale(m, tok, now())),
        ],
    );
    sink.send(&msg).await.unwrap();
    let mut text = String::new();
    while !(text.contains("event: trade") && text.contains("event: whale")) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), resp.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data[0]["kind"], "trade");
    assert_eq!(data[0]["trade_key"], "k7");
    assert_eq!(data[0]["condition_id"], json!(m));
    assert_eq!(data[1]["kind"], "whale");
    // Stored as well: the events endpoint reads it back.
    let ev = ok(&w.local, &format!("/api/events?condition_id={m}")).await;
    assert_eq!(ev["events"].as_array().unwrap().len(), 2);
}

/// `a` (local) and `b` (the status function) agree: the same keys everywhere, the same
/// values, except what only a local run knows (the top-level `run`, `live`, `feed`,
/// `started_at`, and the executor's `configured` and `toggle`), which is null in `b`.
fn same_json(path: &str, at: &str, a: &Value, b: &Value, problems: &mut Vec<String>) {
    const LOCAL_ONLY: [&str; 6] = ["run", "live", "feed", "started_at", "configured", "toggle"];
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: BTreeSet<&String> = x.keys().collect();
            let ky: BTreeSet<&String> = y.keys().collect();
            if kx != ky {
                problems.push(format!("{path} {at}: keys {kx:?} vs {ky:?}"));
                return;
            }
            for (k, v) in x {
                let here = format!("{at}.{k}");
                if at == "$" && LOCAL_ONLY.contains(&k.as_str()) {
                    if !y[k].is_null() {
                        problems.push(format!("{path} {here}: {} in the cloud", y[k]));
                    }
                    continue;
                }
                same_json(path, &here, v, &y[k], problems);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, u)) in x.iter().zip(y).enumerate() {
                same_json(path, &format!("{at}[{i}]"), v, u, problems);
            }
        }
        _ if a == b => {}
        _ => problems.push(format!("{path} {at}: {a} vs {b}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_router_and_the_status_functions_router_answer_the_same_json() {
    let w = world().await;
    // The feed reports in the local run: its counters show locally, null in the cloud.
    let market =
        w.e.store
            .active_markets()
            .await
            .unwrap()
            .remove(0)
            .condition_id;
    let mut problems = Vec::new();
    for route in routes::ROUTES
        .iter()
        .filter(|r| !r.stream && r.method == routes::Method::Get)
    {
        let path = route
            .path
            .replace("{condition_id}", &market)
            .replace("{name}", "snapshots");
        let (ca, a) = get(&w.local, &path).await;
        let (cb, b) = get(&w.cloud, &path).await;
        assert_eq!((ca, cb), (200, 200), "{path}: {a} / {b}");
        same_json(&path, "$", &a, &b, &mut problems);
    }
    for path in [
        "/api/tables/state.task_runs",
        "/api/markets?tier=2",
        "/api/events?kind=whales",
    ] {
        let (a, b) = (ok(&w.local, path).await, ok(&w.cloud, path).await);
        same_json(path, "$", &a, &b, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the local-only parts are there locally.
    let s = ok(&w.local, "/api/stats").await;
    assert_eq!(s["started_at"], json!(anchor()));
    assert!(s["run"]["requests"]["total"].is_u64(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_compacted_hours_and_newer_tick_files_then_tables_counts_every_row_exactly() {
    // Hour 10's snapshots compacted (one file per tier, its rows in the manifest), then 40
    // T4 tick files of hour 11, each a copy of one of hour 10's.
    let w = world().await;
    let store = &w.e.store;
    let coverage = store.coverage_since(anchor()).await.unwrap();
    let hour_ten: u64 = coverage.iter().map(|c| u64::from(c.written)).sum();
    let t4 = store
        .list_objects("snapshots/tier=4/dt=2026-11-20/")
        .await
        .unwrap();
    let copied = store.get_object(&t4[0]).await.unwrap().unwrap();
    let per_file = polytape_store::parquet::json::row_count(&copied).unwrap();
    let now = anchor() + chrono::Duration::minutes(90);
    let report = polytape_store::compact::compact(
        store,
        now,
        &polytape_store::compact::CompactOptions {
            settle: std::time::Duration::from_secs(1200),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (report.hours_compacted, report.errors.len()),
        (10, 0),
        "snapshots and orderbooks, 5 tiers each: {report:?}"
    );
    for i in 0..40 {
        let tick = TickId {
            tier: Tier::T4,
            tick_ts: anchor() + chrono::Duration::seconds(3600 + 15 * i),
        };
        store
            .put_object(
                &polytape_store::keys::snapshots(&tick),
                copied.clone(),
                "application/vnd.apache.parquet",
            )
            .await
            .unwrap();
    }
    w.e.clock.set(now);
    let tables = ok(&w.cloud, "/api/tables?days=1").await;
    let st = &tables["tables"][0];
    assert_eq!(st["name"], "snapshots");
    assert_eq!(st["files"], 45, "{st}");
    assert_eq!(st["rows_exact"], true, "{st}");
    assert_eq!(st["rows"].as_u64(), Some(hour_ten + 40 * per_file), "{st}");
}

/// Pages of `/api/tables/{table}` with `limit`, from `cursor`, at most `pages` of them: the rows
/// and the cursor to go on with.
async fn table_pages(
    base: &str,
    table: &str,
    limit: usize,
    mut cursor: Option<String>,
    pages: usize,
) -> (Vec<Value>, Option<String>) {
    let mut rows = Vec::new();
    for _ in 0..pages {
        let path = match &cursor {
            Some(c) => format!("/api/tables/{table}?limit={limit}&cursor={c}"),
            None => format!("/api/tables/{table}?limit={limit}"),
        };
        let page = ok(base, &path).await;
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    (rows, cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_hour_compacted_between_two_pages_then_paging_goes_on_with_no_row_lost_or_repeated(
) {
    // A browser pages the snapshots, compaction replaces the hour's tick files by one file
    // per tier, and the browser goes on with its cursor (which named a file now deleted).
    let w = world().await;
    let store = &w.e.store;
    let now = anchor() + chrono::Duration::minutes(90);
    w.e.clock.set(now);
    let (before, cursor) = table_pages(&w.cloud, "snapshots", 23, None, 3).await;
    assert_eq!(before.len(), 69);
    let cursor = cursor.expect("more pages");
    let (all_before, _) = table_pages(&w.cloud, "snapshots", 500, None, 1_000).await;
    assert!(all_before.len() > 2 * 69, "rows of several hours and tiers");
    let opts = polytape_store::compact::CompactOptions {
        delete_after: std::time::Duration::ZERO,
        settle: std::time::Duration::from_secs(1200),
        ..Default::default()
    };
    let first = polytape_store::compact::compact(store, now, &opts).await;
    assert_eq!(first.errors.len(), 0, "{first:?}");
    // The second run deletes the sources (their delay is zero).
    polytape_store::compact::compact(store, now, &opts).await;
    let left = store
        .list_objects("snapshots/tier=4/dt=2026-11-20/")
        .await
        .unwrap();
    assert!(
        left.iter()
            .all(|k| !k.ends_with(".parquet") || k.ends_with(".compacted.parquet")),
        "the sources are gone, the cursor's file with them: {left:?}"
    );
    let (after, end) = table_pages(&w.cloud, "snapshots", 23, Some(cursor), 1_000).await;
    assert_eq!(end, None);
    let (all, _) = table_pages(&w.cloud, "snapshots", 500, None, 1_000).await;
    assert_eq!(
        all.len(),
        all_before.len(),
        "snapshots lose no row to compaction"
    );
    let mut paged = before;
    paged.extend(after);
    assert_eq!(
        paged.len(),
        all.len(),
        "every row once across the compaction"
    );
    assert_eq!(
        paged, all,
        "in the same order as a reader after the compaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_transition_recorded_between_two_pages_then_the_second_page_repeats_nothing() {
    use polytape_store::TransitionStore;
    let w = world().await;
    let first = ok(&w.cloud, "/api/tier-transitions?limit=10").await;
    let ids = |page: &Value| -> Vec<String> {
        page["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{}|{}", t["condition_id"], t["at"]))
            .collect()
    };
    // A newer transition arrives (a re-tier) before the next page is asked for.
    w.e.store
        .put_transitions(&[polytape_core::ops::TierTransition {
            condition_id: "0xnew".into(),
            from_tier: Some(Tier::T3),
            to_tier: Some(Tier::T4),
            at: now(),
            reason: "tier change".into(),
            hours_to_close: Some(0.9),
        }])
        .await
        .unwrap();
    let second = ok(
        &w.cloud,
        &format!(
            "/api/tier-transitions?limit=10&cursor={}",
            first["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    let (a, b) = (ids(&first), ids(&second));
    assert_eq!(a.len() + b.len(), 15, "{a:?} {b:?}");
    assert!(b.iter().all(|t| !a.contains(t)), "{a:?} {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_coverage_record_written_between_two_state_pages_then_nothing_is_served_twice() {
    let w = world().await;
    let store = &w.e.store;
    let total = store.coverage_since(anchor()).await.unwrap().len();
    let first = ok(&w.cloud, "/api/tables/state.coverage?limit=10").await;
    // The next tick records its coverage before the next page is asked for.
    store
        .put_coverage(&polytape_core::ops::Coverage {
            tier: Tier::T4,
            tick_ts: now(),
            expected: 3,
            written: 3,
            missing: 0,
            skipped: false,
            failed: false,
        })
        .await
        .unwrap();
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        for r in page["rows"].as_array().unwrap() {
            let id = format!("{}|{}", r["tier"], r["tick_ts"]);
            assert!(!seen.contains(&id), "{id} twice");
            seen.push(id);
        }
        let Some(c) = page["next_cursor"].as_str() else {
            break;
        };
        page = ok(
            &w.cloud,
            &format!("/api/tables/state.coverage?limit=10&cursor={c}"),
        )
        .await;
    }
    assert_eq!(
        seen.len(),
        total,
        "every record of the first page's list once"
    );
}
