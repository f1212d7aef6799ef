//! The paper executor's endpoints over HTTP, against a state the real executor wrote: a
//! simulated world discovered and sampled on its schedule for three minutes, the executor run
//! after each minute (as `polytape run` runs it) with two strategies that buy in every market
//! (`longshot_yes` and `longshot_no` with wide price bands) and at most four open positions, and
//! one held market resolved before the last run. Each endpoint's values are checked against the
//! state (cash and positions consistent with the fills, the settled position's P&L), with its
//! filters, limits and bad parameters; `POST /api/strategies/{name}` switches a strategy off
//! locally (the next run applies it) and is not served by the store router the status function
//! serves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::executor::{self, ExecutorSettings};
use polytape_collector::runner::Runtime;
use polytape_collector::snapshot::snapshot_tick;
use polytape_collector::status::{self, Local, Status};
use polytape_collector::Config;
use polytape_core::schedule::due_in_minute;
use polytape_core::{MarketResult, Outcome, Ts};
use polytape_store::MarketStore;
use polytape_strategy::EngineConfig;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

/// Both longshot strategies buy in every market with a book; four positions at most, so most
/// signals are rejected.
const CONFIG: &str = r#"
mode: paper
initial_cash: 1000
execution:
  order: {style: market}
  taker_fee: {rate: 0, exponent: 1}
sizing: {method: fixed, usd: 10}
risk:
  max_position_usd: 100
  max_total_exposure_usd: 500
  max_open_positions: 4
  max_drawdown: 0.9
  min_order_usd: 1
strategies:
  longshot_yes:
    params: {min_price: 0.01, max_price: 0.99, max_hours_to_close: 100000, stop_loss: null}
  longshot_no:
    params: {min_yes_price: 0.01, max_yes_price: 0.99, max_hours_to_close: 100000, stop_loss: null}
  mean_reversion: {enabled: false}
  term_structure: {enabled: false}
"#;

fn at(s: i64) -> Ts {
    anchor() + chrono::Duration::seconds(s)
}

fn settings() -> ExecutorSettings {
    ExecutorSettings {
        config: EngineConfig::from_yaml(CONFIG, "executor-test.yaml").unwrap(),
        source: "executor-test.yaml".into(),
    }
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("not a decimal string: {v}")),
    )
    .unwrap()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(listener, router, std::future::pending()));
    base
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn ok(base: &str, path: &str) -> Value {
    let (code, body) = get(base, path).await;
    assert_eq!(code, 200, "{path}: {body}");
    body
}

async fn post(base: &str, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Runs every tick of the minutes from `from` up to `until` (exclusive), each at its time (the
/// clock stays there, so every tick is on time) with [`TICK_BUDGET`] of wall time.
async fn run_ticks(e: &Env, from: Ts, until: Ts) {
    let mut minute = from;
    while minute < until {
        for tick in due_in_minute(minute) {
            e.clock.set(tick.tick_ts);
            let deadline = deadline_within(tick, TICK_BUDGET);
            snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline)
                .await
                .unwrap();
        }
        minute += chrono::Duration::minutes(1);
    }
}

/// The executor's run at `now`: it must run and step slots.
async fn run_executor(e: &Env, s: &ExecutorSettings, now: Ts) -> executor::ExecutorReport {
    e.clock.set(now);
    let report = executor::run_due(&e.store, s, &e.clock)
        .await
        .unwrap()
        .expect("the executor's lease is free");
    assert!(report.slots > 0, "{report:?}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_endpoints_answer_the_state_the_executor_wrote() {
    let e = env(3, 100).await;
    let cfg = Config::default();
    let s = settings();
    e.clock.set(anchor());
    e.discover().await;
    let rt = Runtime::with_executor(
        e.client.clone(),
        e.store.clone(),
        cfg.clone(),
        Some(s.clone()),
    );
    let local = serve(status::router(
        Status::new(e.store.clone(), cfg.clone())
            .with_clock(e.clock.clone())
            .with_local(Arc::new(Local {
                runtime: rt,
                events: None,
            })),
    ))
    .await;
    let cloud = serve(status::router(
        Status::new(e.store.clone(), cfg.clone()).with_clock(e.clock.clone()),
    ))
    .await;

    // Given no run yet: not started, the account null, no positions.
    let st = ok(&local, "/api/executor/status").await;
    assert_eq!(
        (
            &st["started"],
            &st["running"],
            &st["configured"],
            &st["cash"]
        ),
        (&json!(false), &json!(false), &json!(true), &Value::Null),
        "{st}"
    );
    assert_eq!(
        ok(&cloud, "/api/executor/status").await["configured"],
        Value::Null
    );
    let none = ok(&local, "/api/executor/positions").await;
    assert_eq!(none["positions"], json!([]));

    // When three minutes are sampled and the executor runs after each minute…
    run_ticks(&e, anchor(), at(60)).await;
    let first = run_executor(&e, &s, at(76)).await;
    assert_eq!(
        first.slots, 1,
        "the first run steps the last final slot: {first:?}"
    );
    run_ticks(&e, at(60), at(120)).await;
    run_executor(&e, &s, at(136)).await;
    // …one market held resolves (learnt before the third run's slots: settled in it).
    let before = ok(&local, "/api/executor/positions").await;
    let held = before["positions"][0].clone();
    assert_eq!(before["open"], 4, "four positions (the limit): {before}");
    let won = if held["outcome"] == "YES" { 0 } else { 1 };
    let mut market = e
        .store
        .get_market(held["condition_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    market.result = MarketResult::Resolved(Outcome {
        winner: Some(won),
        invalid: false,
        payouts: vec![],
        // Learnt between the second run's last slot (10:01:00) and the third run's first.
        resolved_at: Some(at(65)),
        learned_at: at(70),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    });
    assert!(e.store.write_markets(&[market]).await.unwrap().is_empty());
    run_ticks(&e, at(120), at(180)).await;
    run_executor(&e, &s, at(196)).await;

    // Then the status is the account the fills and the settlement left.
    let state = executor::load_state(&e.store).await.unwrap().unwrap();
    let third_last = state.last_slot.unwrap();
    let st = ok(&local, "/api/executor/status").await;
    assert_eq!(
        (&st["started"], &st["running"], &st["config_source"]),
        (&json!(true), &json!(true), &json!("executor-test.yaml")),
        "{st}"
    );
    assert_eq!(st["last_slot"], json!(state.last_slot));
    assert_eq!(
        st["lag_s"],
        json!((at(196) - state.last_slot.unwrap()).num_seconds())
    );
    assert_eq!(dec(&st["initial_cash"]), Decimal::from(1000));
    let mut fills = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let page = ok(&local, &format!("/api/executor/fills?limit=2{q}")).await;
        assert!(page["fills"].as_array().unwrap().len() <= 2);
        fills.extend(page["fills"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let all_fills = ok(&local, "/api/executor/fills?limit=500").await;
    assert_eq!(
        fills,
        all_fills["fills"].as_array().unwrap().clone(),
        "pages = one page"
    );
    assert_eq!(all_fills["total"], fills.len());
    assert!(
        fills.len() >= 4,
        "a fill per position at least: {all_fills}"
    );
    let times: Vec<Ts> = fills
        .iter()
        .map(|f| serde_json::from_value(f["ts"].clone()).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let spent: Decimal = fills.iter().map(|f| dec(&f["cost"]) + dec(&f["fee"])).sum();
    let closed = ok(&local, "/api/executor/positions?status=closed").await;
    assert_eq!(
        closed["closed"], 1,
        "the resolved market's position: {closed}"
    );
    let c = &closed["positions"][0];
    assert_eq!(c["condition_id"], held["condition_id"]);
    assert_eq!(c["reason"], json!({"by": "settled", "payout": "1"}));
    assert_eq!(
        dec(&c["proceeds"]),
        dec(&held["shares"]),
        "one per share of the winner"
    );
    assert_eq!(
        dec(&c["realised_pnl"]),
        dec(&held["shares"]) - dec(&held["cost"])
    );
    let cash = Decimal::from(1000) - spent + dec(&c["proceeds"]);
    assert_eq!(
        dec(&st["cash"]),
        cash,
        "cash = initial − fills + settlement"
    );
    let open = ok(&local, "/api/executor/positions").await;
    let positions = open["positions"].as_array().unwrap();
    assert_eq!(open["open"], positions.len());
    assert_eq!(st["open_positions"], positions.len());
    let exposure: Decimal = positions.iter().map(|p| dec(&p["cost"])).sum();
    let value: Decimal = positions.iter().map(|p| dec(&p["value"])).sum();
    assert_eq!(dec(&st["exposure"]), exposure);
    assert_eq!(dec(&st["equity"]), cash + value);
    let unrealised: Decimal = positions.iter().map(|p| dec(&p["unrealised_pnl"])).sum();
    assert_eq!(dec(&st["pnl"]["unrealised"]), unrealised);
    assert_eq!(dec(&st["pnl"]["realised"]), dec(&c["realised_pnl"]));
    let strategy = c["strategy"].as_str().unwrap();
    assert_eq!(
        dec(&st["by_strategy"][strategy]["realised"]),
        dec(&c["realised_pnl"])
    );
    for p in positions {
        assert_eq!(p["status"], "open");
        assert!(p["question"].is_string(), "{p}");
        let mark = if p["mark"].is_null() {
            &p["entry_price"]
        } else {
            &p["mark"]
        };
        assert_eq!(dec(&p["value"]), dec(&p["shares"]) * dec(mark));
    }
    // The shares bought of each open position are its fills' shares.
    for p in positions {
        let bought: Decimal = fills
            .iter()
            .filter(|f| f["token_id"] == p["token_id"] && f["strategy"] == p["strategy"])
            .map(|f| dec(&f["shares"]))
            .sum();
        assert_eq!(bought, dec(&p["shares"]), "{p}");
    }
    // The equity curve: one point per slot stepped (1 + 4 + 4), thinned on request.
    assert_eq!(st["equity_curve"].as_array().unwrap().len(), 9, "{st}");
    assert_eq!(
        st["equity_curve"].as_array().unwrap().len(),
        state.equity.len()
    );
    let thin = ok(&local, "/api/executor/status?points=3").await;
    let curve = thin["equity_curve"].as_array().unwrap();
    assert_eq!(curve.len(), 3);
    assert_eq!(curve[2], st["equity_curve"][8], "the newest point is kept");
    assert_eq!(dec(&curve[2]["equity"]), dec(&st["equity"]));

    // Filters and limits.
    let all = ok(&local, "/api/executor/positions?status=all&limit=500").await;
    assert_eq!(
        all["positions"].as_array().unwrap().len(),
        positions.len() + 1
    );
    assert_eq!(all["positions"][positions.len()]["status"], "closed");
    let one = ok(&local, "/api/executor/positions?limit=1").await;
    assert_eq!(one["positions"].as_array().unwrap().len(), 1);
    for name in ["longshot_yes", "longshot_no"] {
        let mine = ok(
            &local,
            &format!("/api/executor/positions?status=all&strategy={name}"),
        )
        .await;
        let n = mine["positions"].as_array().unwrap();
        assert!(n.iter().all(|p| p["strategy"] == name), "{mine}");
        let want = all["positions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["strategy"] == name)
            .count();
        assert_eq!(n.len(), want);
        let f = ok(
            &local,
            &format!("/api/executor/fills?strategy={name}&limit=500"),
        )
        .await;
        assert!(f["fills"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["strategy"] == name));
    }
    let signals = ok(&local, "/api/executor/signals?limit=500").await;
    let list = signals["signals"].as_array().unwrap();
    assert_eq!(list.len(), state.signals.len());
    let ordered = ok(&local, "/api/executor/signals?decision=ordered&limit=500").await;
    let rejected = ok(&local, "/api/executor/signals?decision=rejected&limit=500").await;
    let (no, nr) = (
        ordered["signals"].as_array().unwrap(),
        rejected["signals"].as_array().unwrap(),
    );
    assert_eq!(no.len() + nr.len(), list.len());
    assert!(no
        .iter()
        .all(|s| s["decision"] == "ordered" && s["order_id"].is_u64()));
    // Every ordered signal placed one market order, which filled.
    let orders: BTreeSet<u64> = fills
        .iter()
        .map(|f| f["order_id"].as_u64().unwrap())
        .collect();
    assert_eq!(no.len(), orders.len(), "an order per ordered signal");
    assert!(!nr.is_empty(), "the position limit rejects the rest");
    assert!(nr
        .iter()
        .all(|s| s["decision"] == "rejected" && s["rejection"].is_object()));
    assert!(nr
        .iter()
        .any(|s| s["rejection"]["rejection"] == "max_open_positions"));
    let newest: Vec<Ts> = list
        .iter()
        .map(|s| serde_json::from_value(s["ts"].clone()).unwrap())
        .collect();
    assert!(newest.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let few = ok(&local, "/api/executor/signals?limit=3&strategy=longshot_no").await;
    let few = few["signals"].as_array().unwrap();
    assert_eq!(few.len(), 3);
    assert!(few.iter().all(|s| s["strategy"] == "longshot_no"));

    // Bad parameters.
    for (path, code) in [
        ("/api/executor/positions?status=bogus", "bad_parameter"),
        ("/api/executor/positions?limit=0", "bad_parameter"),
        ("/api/executor/fills?limit=501", "bad_parameter"),
        ("/api/executor/fills?cursor=zz", "bad_cursor"),
        ("/api/executor/signals?decision=maybe", "bad_parameter"),
        ("/api/executor/status?points=2001", "bad_parameter"),
        ("/api/executor/status?page=2", "unknown_parameter"),
        ("/api/strategies?x=1", "unknown_parameter"),
    ] {
        let (status, body) = get(&local, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}: {body}"
        );
    }

    // The cloud's router answers the same state.
    let cloud_st = ok(&cloud, "/api/executor/status").await;
    assert_eq!(cloud_st["equity"], st["equity"]);
    assert_eq!(
        ok(&cloud, "/api/executor/positions?status=all&limit=500").await["positions"],
        all["positions"]
    );

    // Strategies: every configured one, its parameters with their defaults filled in.
    let strategies = ok(&local, "/api/strategies").await;
    assert_eq!(strategies["toggle"], true);
    let by_name = |v: &Value, name: &str| -> Value {
        v["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    let yes = by_name(&strategies, "longshot_yes");
    assert_eq!(yes["enabled"], true);
    assert_eq!(yes["params"]["max_hours_to_close"], "100000");
    assert_eq!(yes["params"]["stop_loss"], Value::Null);
    assert_eq!(yes["params"]["assumed_edge"], "0.02", "a default filled in");
    assert_eq!(by_name(&strategies, "mean_reversion")["enabled"], false);
    assert_eq!(strategies["strategies"].as_array().unwrap().len(), 4);
    let cloud_strategies = ok(&cloud, "/api/strategies").await;
    assert_eq!(cloud_strategies["toggle"], Value::Null);
    assert_eq!(cloud_strategies["strategies"], strategies["strategies"]);

    // POST switches one off locally: listed at once, applied by the next run.
    let (code, body) = post(
        &local,
        "/api/strategies/longshot_yes",
        r#"{"enabled": false}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["strategy"]["enabled"], false);
    let after = ok(&local, "/api/strategies").await;
    assert_eq!(by_name(&after, "longshot_yes")["enabled"], false);
    assert_eq!(after["overrides"], json!({"longshot_yes": false}));
    assert_eq!(
        by_name(&ok(&cloud, "/api/strategies").await, "longshot_yes")["enabled"],
        false
    );
    run_ticks(&e, at(180), at(240)).await;
    run_executor(&e, &s, at(256)).await;
    let state = executor::load_state(&e.store).await.unwrap().unwrap();
    let yes_state = state
        .strategies
        .iter()
        .find(|i| i.name == "longshot_yes")
        .unwrap();
    assert!(!yes_state.enabled, "the run applied the override");
    let since: Vec<&str> = state
        .signals
        .iter()
        .filter(|d| d.signal.ts > third_last)
        .map(|d| d.signal.strategy.as_str())
        .collect();
    assert!(since.contains(&"longshot_no"), "{since:?}");
    assert!(
        !since.contains(&"longshot_yes"),
        "no longshot_yes signal after it was switched off: {since:?}"
    );
    // …and on again.
    let (code, _) = post(
        &local,
        "/api/strategies/longshot_yes",
        r#"{"enabled": true}"#,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        by_name(&ok(&local, "/api/strategies").await, "longshot_yes")["enabled"],
        true
    );

    // Bad requests: an unknown strategy, a body that is not {"enabled": bool}, the cloud, GET.
    let (code, body) = post(&local, "/api/strategies/no_such", r#"{"enabled": true}"#).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    for bad in [
        r#"{"enabled": "yes"}"#,
        r#"{}"#,
        "not json",
        r#"{"enabled": true, "x": 1}"#,
    ] {
        let (code, body) = post(&local, "/api/strategies/longshot_no", bad).await;
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (400, Some("bad_body")),
            "{bad}: {body}"
        );
    }
    let (code, body) = post(
        &cloud,
        "/api/strategies/longshot_no",
        r#"{"enabled": false}"#,
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_available")),
        "{body}"
    );
    let (code, body) = get(&local, "/api/strategies/longshot_no").await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(
        executor::load_overrides(&e.store).await.unwrap(),
        [("longshot_yes".to_string(), true)].into(),
        "nothing but the two good POSTs wrote"
    );
}
