//! End to end against the simulator over real sockets: discovery, tiered ticks, Parquet read
//! back, and the simulator's ground truth (what it listed and the exact books it served) as the
//! reference for every checked value.

#![allow(clippy::unwrap_used)] // a test: any failure should fail it loudly

mod common;

use common::*;
use polytape_collector::discover::discover;
use polytape_collector::retier::retier;
use polytape_collector::snapshot::{snapshot_tick, TickDeadline};
use polytape_collector::{Clock, Config};
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Tier, Ts};
use polytape_sim::{
    BadLevel, BadMarket, Endpoint, Fault, FaultKind, ServedBook, Truth, TruthMarket,
};
use polytape_store::{CoverageStore, LatestStore, MarketStore, TaskStore, TransitionStore};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const HOUR_MS: i64 = 3_600_000;

/// (price, size) levels.
type Levels = Vec<(Decimal, Decimal)>;

/// The filters of DESIGN.md, written out independently of the collector's code.
fn passes_filters(m: &TruthMarket, now: Ts) -> bool {
    let horizon = now + chrono::Duration::hours(336);
    !m.condition_id.is_empty()
        && !m.closed
        && m.enable_order_book
        && m.outcomes.len() == 2
        && m.token_ids.len() == 2
        && m.token_ids.iter().all(|t| !t.is_empty())
        && m.volume_24h >= Decimal::ONE_HUNDRED
        && m.end_date > now
        && m.end_date <= horizon
        && !m.corrupted
}

/// Tier by DESIGN.md's table, written out independently of core's tier table.
fn expected_tier(m: &TruthMarket, now: Ts) -> u8 {
    let ms = (m.end_date - now).num_milliseconds();
    match ms {
        ms if ms > 48 * HOUR_MS => 0,
        ms if ms > 12 * HOUR_MS => 1,
        ms if ms > 4 * HOUR_MS => 2,
        ms if ms > HOUR_MS => 3,
        _ => 4,
    }
}

fn expected_by_tier(truth: &Truth, now: Ts) -> BTreeMap<u8, BTreeSet<String>> {
    let mut out: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
    for m in truth.markets.iter().filter(|m| passes_filters(m, now)) {
        out.entry(expected_tier(m, now))
            .or_default()
            .insert(m.condition_id.clone());
    }
    out
}

/// Condition ids of the store's active markets.
async fn active_ids(e: &Env) -> BTreeSet<String> {
    let markets = e.store.active_markets().await.unwrap();
    markets.into_iter().map(|m| m.condition_id).collect()
}

async fn discover_at_anchor(e: &Env) {
    discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
}

/// Runs `tick` as if it started two seconds after its scheduled time, with its own deadline.
async fn run_tick(e: &Env, tick: TickId) -> polytape_collector::snapshot::TickReport {
    e.clock.set(tick.tick_ts + chrono::Duration::seconds(2));
    snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline(tick))
        .await
        .unwrap()
}

/// Runs `tick` two seconds after its time with only `budget` (real time) before its deadline;
/// a tick still running 30 s past it (requests retried regardless) fails the test.
async fn run_tick_within(
    e: &Env,
    tick: TickId,
    budget: std::time::Duration,
) -> polytape_collector::snapshot::TickReport {
    let start = tick.tick_ts + chrono::Duration::seconds(2);
    e.clock.set(start);
    let deadline = TickDeadline {
        at: start + chrono::Duration::from_std(budget).unwrap(),
        write_reserve: std::time::Duration::from_millis(100),
        hard_stop: None,
        work_stop: None,
    };
    let run = snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline);
    tokio::time::timeout(budget + std::time::Duration::from_secs(30), run)
        .await
        .expect("the tick ends by its deadline")
        .unwrap()
}

/// A tick's deadline in `polytape run` (its tier's next tick).
fn deadline(tick: TickId) -> TickDeadline {
    TickDeadline::of(tick, None, Config::default().tick_margin)
}

/// The markets due in `tier` at `at`, by condition id.
async fn due_ids(e: &Env, tier: Tier, at: Ts) -> BTreeSet<String> {
    e.store
        .markets_due(tier, at)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.condition_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_keeps_exactly_the_markets_that_pass_the_filters_reading_only_filtered_pages() {
    let e = env(12, 100).await;
    let now = e.clock.now();
    let report = discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();

    let truth = e.sim.truth();
    let expected: BTreeSet<String> = truth
        .markets
        .iter()
        .filter(|m| passes_filters(m, now))
        .map(|m| m.condition_id.clone())
        .collect();
    let kept = active_ids(&e).await;
    assert_eq!(kept, expected);
    assert_eq!(
        expected.len(),
        5 * 12,
        "every tradeable market and no trap market"
    );
    for (tier, ids) in expected_by_tier(&truth, now) {
        let stored = due_ids(&e, Tier::try_from(tier).unwrap(), now).await;
        assert_eq!(stored, ids, "tier {tier}");
    }

    // Only what the server-side filters select was read: open markets ending within the window.
    let horizon = now + chrono::Duration::hours(336);
    let in_window = truth
        .markets
        .iter()
        .filter(|m| !m.closed && m.end_date >= now && m.end_date <= horizon)
        .count() as u64;
    let counters = e.sim.counters();
    assert_eq!(counters.items(Endpoint::GammaKeyset), in_window);
    assert!(
        in_window < truth.markets.len() as u64,
        "the world holds markets the filters leave out"
    );
    assert_eq!(
        counters.requests(Endpoint::GammaKeyset),
        in_window.div_ceil(100)
    );
    assert_eq!(u64::from(report.pages), in_window.div_ceil(100));
    for r in counters
        .log
        .iter()
        .filter(|r| r.endpoint == Endpoint::GammaKeyset)
    {
        assert!(
            r.uri.contains("closed=false")
                && r.uri.contains("end_date_min=")
                && r.uri.contains("end_date_max="),
            "{}",
            r.uri
        );
    }
}

/// Best-first levels of a served book, computed here from what the simulator served.
fn best_first(served: &ServedBook) -> (Levels, Levels) {
    let valid = |l: &&(Decimal, Decimal)| {
        l.0 >= Decimal::ZERO && l.0 <= Decimal::ONE && l.1 >= Decimal::ZERO
    };
    let mut bids: Vec<_> = served.bids.iter().filter(valid).copied().collect();
    let mut asks: Vec<_> = served.asks.iter().filter(valid).copied().collect();
    bids.sort_by_key(|l| std::cmp::Reverse(l.0));
    asks.sort_by_key(|l| l.0);
    (bids, asks)
}

fn wall(levels: &[(Decimal, Decimal)]) -> Option<(Decimal, Decimal)> {
    let mut best: Option<(Decimal, Decimal)> = None;
    for l in levels {
        if best.is_none_or(|b| l.1 > b.1) {
            best = Some(*l);
        }
    }
    best
}

/// Checks every order-book value of every row of a snapshot file against the book the
/// simulator served for that row (found through the orderbooks row's hash).
fn check_book_values(
    dir: &std::path::Path,
    snapshot_file: &std::path::Path,
    truth: &Truth,
) -> usize {
    let ob_file = dir.join(
        snapshot_file
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replacen("snapshots/", "orderbooks/", 1),
    );
    let mut hash_of: HashMap<String, String> = HashMap::new();
    for b in read_parquet(&ob_file) {
        for i in 0..b.num_rows() {
            hash_of.insert(
                string(&b, "token_id", i).unwrap(),
                string(&b, "book_hash", i).unwrap(),
            );
        }
    }
    let mut checked = 0;
    for b in read_parquet(snapshot_file) {
        for i in 0..b.num_rows() {
            let token = string(&b, "token_id", i).unwrap();
            // A book that could not be trusted has no orderbooks row (checked by the caller).
            let Some(hash) = hash_of.get(&token) else {
                continue;
            };
            let served = &truth.served_books[hash];
            let (bids, asks) = best_first(served);
            let sum =
                |l: &[(Decimal, Decimal)], n: usize| l.iter().take(n).map(|l| l.1).sum::<Decimal>();
            assert_eq!(
                decimal(&b, "best_bid", i),
                bids.first().map(|l| l.0),
                "best_bid of {token}"
            );
            assert_eq!(decimal(&b, "best_ask", i), asks.first().map(|l| l.0));
            assert_eq!(
                decimal(&b, "bid_depth_5", i),
                Some(sum(&bids, 5)),
                "bid_depth_5 of {token}"
            );
            assert_eq!(decimal(&b, "bid_depth_50", i), Some(sum(&bids, 50)));
            assert_eq!(
                decimal(&b, "ask_depth_20", i),
                Some(sum(&asks, 20)),
                "ask_depth_20 of {token}"
            );
            let (tb, ta) = (sum(&bids, usize::MAX), sum(&asks, usize::MAX));
            let imbalance: f64 = ((tb - ta) / (tb + ta)).try_into().unwrap();
            assert!((f64_at(&b, "book_imbalance", i).unwrap() - imbalance).abs() < 1e-12);
            let (bw, aw) = (wall(&bids).unwrap(), wall(&asks).unwrap());
            assert_eq!(
                (
                    decimal(&b, "bid_wall_price", i),
                    decimal(&b, "bid_wall_size", i)
                ),
                (Some(bw.0), Some(bw.1))
            );
            assert_eq!(
                (
                    decimal(&b, "ask_wall_price", i),
                    decimal(&b, "ask_wall_size", i)
                ),
                (Some(aw.0), Some(aw.1))
            );
            assert_eq!(i32_at(&b, "bid_levels", i), Some(bids.len() as i32));
            assert_eq!(decimal(&b, "tick_size", i), Some(served.tick_size));
            assert_eq!(
                decimal(&b, "volume_1h", i),
                None,
                "no live feed yet: trade flow is NULL"
            );
            checked += 1;
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_minute_window_writes_each_tier_the_rows_its_ticks_call_for_with_the_served_book_values(
) {
    let e = env(6, 100).await;
    discover_at_anchor(&e).await;
    let expected = expected_by_tier(&e.sim.truth(), e.clock.now());

    // 10:00:00 to 10:05:00: T0 at 10:00, T1 at 10:00, T2 every minute, T3 every 30 s, T4 every 15 s.
    for minute in 0..5 {
        for tick in due_in_minute(anchor() + chrono::Duration::minutes(minute)) {
            let r = run_tick(&e, tick).await;
            assert_eq!(
                (r.missing, r.rejected, r.failed_requests),
                (0, 0, 0),
                "{tick:?}"
            );
        }
    }

    let truth = e.sim.truth();
    let dir = e.dir.path();
    for (tier, ticks) in [(0u8, 1usize), (1, 1), (2, 5), (3, 10), (4, 20)] {
        let files = files_under(dir, &format!("snapshots/tier={tier}/"));
        assert_eq!(files.len(), ticks, "tier {tier} files");
        assert!(files.iter().all(|f| f
            .to_string_lossy()
            .contains(&format!("snapshots/tier={tier}/dt=2026-11-20/2026112"))));
        let books = files_under(dir, &format!("orderbooks/tier={tier}/"));
        assert_eq!(
            books.len(),
            if tier >= 2 { ticks } else { 0 },
            "tier {tier} orderbook files"
        );
        for f in &files {
            let batches = read_parquet(f);
            let ids: BTreeSet<String> = batches
                .iter()
                .flat_map(|b| (0..b.num_rows()).map(|i| string(b, "condition_id", i).unwrap()))
                .collect();
            assert_eq!(
                &ids,
                &expected[&tier],
                "one row per market of tier {tier} in {}",
                f.display()
            );
            for b in &batches {
                for i in 0..b.num_rows() {
                    assert_eq!(
                        i32_at(b, "interval_s", i),
                        Some([3600, 300, 60, 30, 15][tier as usize])
                    );
                    if tier < 2 {
                        assert_eq!(
                            (decimal(b, "bid_depth_5", i), i32_at(b, "bid_levels", i)),
                            (None, None),
                            "no book below T2"
                        );
                    }
                }
            }
            if tier >= 2 {
                assert_eq!(check_book_values(dir, f, &truth), expected[&tier].len());
            }
        }
    }
    duckdb_reads_the_tables(dir, &expected);
}

/// DuckDB reads the files with Hive partitions typed as the Glue tables declare them.
fn duckdb_reads_the_tables(dir: &std::path::Path, expected: &BTreeMap<u8, BTreeSet<String>>) {
    let Ok(python) = std::env::var("POLYTAPE_PYTHON_PQ") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").is_err(),
            "POLYTAPE_PYTHON_PQ is not set: run infra/test.sh"
        );
        eprintln!("skipped the DuckDB read: POLYTAPE_PYTHON_PQ not set (infra/test.sh sets it)");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/checks/parquet_duckdb.py"
    );
    let out = std::process::Command::new(python)
        .args([script, dir.to_str().unwrap(), "snapshots", "orderbooks"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let types = &v["snapshots"]["types"];
    for (col, ty) in [
        ("snapshot_ts", "TIMESTAMP WITH TIME ZONE"),
        ("fetched_at", "TIMESTAMP WITH TIME ZONE"),
        ("condition_id", "VARCHAR"),
        ("price", "DECIMAL(18,6)"),
        ("bid_depth_5", "DECIMAL(18,6)"),
        ("book_imbalance", "DOUBLE"),
        ("bid_levels", "INTEGER"),
        ("hour_of_day", "TINYINT"),
        ("neg_risk", "BOOLEAN"),
        ("tier", "SMALLINT"),
        ("dt", "VARCHAR"),
    ] {
        assert_eq!(types[col], ty, "snapshots.{col}");
    }
    let per_tier = &v["snapshots"]["rows_per_tier"];
    for (tier, ticks) in [(0u8, 1u64), (1, 1), (2, 5), (3, 10), (4, 20)] {
        assert_eq!(
            per_tier[tier.to_string()],
            ticks * expected[&tier].len() as u64,
            "DuckDB rows of tier {tier}"
        );
    }
    assert_eq!(v["snapshots"]["dt"], serde_json::json!(["2026-11-20"]));
    assert_eq!(
        v["orderbooks"]["types"]["bids"],
        "STRUCT(price DECIMAL(18,6), size DECIMAL(18,6))[]"
    );
}

/// The Gamma object the simulator served for `cid` (exactly one since the last reset).
fn served_market<'a>(truth: &'a Truth, cid: &str) -> &'a serde_json::Value {
    let served: Vec<_> = truth
        .served_markets
        .iter()
        .filter(|s| s.condition_id == cid)
        .collect();
    assert_eq!(served.len(), 1, "{cid} served once by the tick");
    &served[0].json
}

fn json_decimal(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::Number(n) => n
            .to_string()
            .parse::<Decimal>()
            .ok()
            .or_else(|| Decimal::from_scientific(&n.to_string()).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .map(|d| d.round_dp(6))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gamma_values_are_copied_and_values_not_served_are_null() {
    let e = env(8, 100).await;
    discover_at_anchor(&e).await;
    e.sim.reset();
    let tick = TickId {
        tier: Tier::T1,
        tick_ts: anchor(),
    };
    let r = run_tick(&e, tick).await;
    assert_eq!(r.rows, 8);
    let truth = e.sim.truth();
    let (mut absent_1w, mut present_1w) = (0, 0);
    for b in read_parquet(&e.dir.path().join(r.snapshot_key.unwrap())) {
        for i in 0..b.num_rows() {
            let cid = string(&b, "condition_id", i).unwrap();
            let m = served_market(&truth, &cid);
            let prices: Vec<String> =
                serde_json::from_str(m["outcomePrices"].as_str().unwrap()).unwrap();
            assert_eq!(
                decimal(&b, "price", i),
                prices[0].parse::<Decimal>().ok().map(|d| d.round_dp(6)),
                "price of {cid}"
            );
            for (col, field) in [
                ("best_bid", "bestBid"),
                ("best_ask", "bestAsk"),
                ("last_trade_price", "lastTradePrice"),
                ("volume_24h", "volume24hr"),
                ("volume_1w", "volume1wk"),
                ("price_change_1h", "oneHourPriceChange"),
                ("price_change_1w", "oneWeekPriceChange"),
            ] {
                assert_eq!(
                    decimal(&b, col, i),
                    json_decimal(&m[field]),
                    "{col} of {cid} (served {})",
                    m[field]
                );
            }
            match m.get("oneWeekPriceChange") {
                None => absent_1w += 1,
                Some(_) => present_1w += 1,
            }
            assert_eq!(
                string(&b, "token_id", i).unwrap(),
                serde_json::from_str::<Vec<String>>(m["clobTokenIds"].as_str().unwrap()).unwrap()
                    [0]
            );
            assert_eq!(decimal(&b, "bid_depth_5", i), None, "T1 has no book");
            assert_eq!(
                ts_ms(&b, "snapshot_ts", i),
                Some(anchor().timestamp_millis())
            );
        }
    }
    assert!(
        absent_1w > 0 && present_1w > 0,
        "the world serves some markets without oneWeekPriceChange ({absent_1w}/{present_1w})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_makes_one_gamma_request_per_100_markets_and_one_book_request_per_batch() {
    for (per_tier, batch) in [(250usize, 100usize), (250, 40), (7, 100)] {
        let e = env(per_tier, batch).await;
        discover_at_anchor(&e).await;
        let n = e.store.markets_due(Tier::T2, anchor()).await.unwrap().len();
        assert_eq!(n, per_tier);
        e.sim.reset();
        let r = run_tick(
            &e,
            TickId {
                tier: Tier::T2,
                tick_ts: anchor() + chrono::Duration::minutes(1),
            },
        )
        .await;
        assert_eq!(r.rows, n);
        let c = e.sim.counters();
        assert_eq!(
            c.requests(Endpoint::GammaKeyset),
            n.div_ceil(100) as u64,
            "{n} markets"
        );
        assert_eq!(
            c.requests(Endpoint::ClobBooks),
            n.div_ceil(batch) as u64,
            "{n} markets, batch {batch}"
        );
        assert_eq!(
            c.requests(Endpoint::ClobBook),
            0,
            "never one request per market"
        );
        assert_eq!(c.requests(Endpoint::GammaMarkets), 0);
        for rec in c.log.iter().filter(|r| r.endpoint == Endpoint::GammaKeyset) {
            assert!(
                rec.uri.matches("condition_ids=").count() <= 100 && rec.uri.len() < 8192,
                "{}",
                rec.uri.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_tick_replaces_its_output_and_counts_once() {
    let e = env(5, 100).await;
    discover_at_anchor(&e).await;
    let tick = TickId {
        tier: Tier::T3,
        tick_ts: anchor() + chrono::Duration::seconds(30),
    };
    // First attempt: every book request of the tier's tokens answers 503 (the simulator fails
    // any request naming them) until the deadline, 3 s away: Gamma's values arrive, the books
    // never do, however fast or slow the machine.
    let tokens: Vec<String> = e
        .store
        .markets_due(Tier::T3, tick.tick_ts)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.yes_token_id)
        .collect();
    assert_eq!(tokens.len(), 5);
    e.sim.fail_markets(&tokens);
    let first = run_tick_within(&e, tick, std::time::Duration::from_secs(3)).await;
    e.sim.heal_markets();
    assert_eq!(
        (
            first.rows,
            first.books,
            first.books_missing,
            first.failed_requests
        ),
        (5, 0, 5, 1)
    );
    assert!(
        first.deadline_hit,
        "a 503 may pass on a retry, but the deadline came first: {first:?}"
    );
    let ob_key = e.dir.path().join(keys_orderbooks(tick));
    assert_eq!(
        read_parquet(&ob_key)
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>(),
        0,
        "an empty orderbooks file stands for the tick"
    );

    let second = run_tick(&e, tick).await;
    assert_eq!(
        (second.rows, second.books, second.failed_requests),
        (5, 5, 0)
    );
    assert_eq!(first.snapshot_key, second.snapshot_key);
    assert_eq!(files_under(e.dir.path(), "snapshots/").len(), 1);
    assert_eq!(files_under(e.dir.path(), "orderbooks/").len(), 1);
    let file = e.dir.path().join(second.snapshot_key.unwrap());
    assert_eq!(
        check_book_values(e.dir.path(), &file, &e.sim.truth()),
        5,
        "the retry's rows, with their books, replaced the first attempt's"
    );
    // T3 writes its Latest values once a minute: the readers see the tick, counted once,
    // and the minute's first tick writes it, counted once.
    assert_eq!(
        second.latest_ticks, 0,
        "left to the next minute's first tick"
    );
    let now = tick.tick_ts + chrono::Duration::seconds(2);
    let latest = polytape_collector::latest::current(&e.store, Tier::T3, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.markets.len(), 5);
    assert!(
        latest.markets.iter().all(|m| m.snapshot_count == 1),
        "a retry does not count twice"
    );
    let runs = e
        .store
        .task_runs_since(anchor() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.id.ends_with("#snapshot#T3"))
            .count(),
        1,
        "the retry replaced the run record"
    );
    let writing = run_tick(&e, tick.next()).await;
    assert_eq!(writing.latest_ticks, 2, "itself and the retried tick");
    let latest = e.store.get_latest(Tier::T3).await.unwrap().unwrap();
    assert_eq!(latest.markets.len(), 5);
    assert!(
        latest.markets.iter().all(|m| m.snapshot_count == 2),
        "the retried tick and the next, each once"
    );
}

fn keys_orderbooks(tick: TickId) -> String {
    polytape_store::keys::orderbooks(&tick)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_keeps_a_market_that_missed_a_tick_with_its_last_values() {
    let e = env(4, 100).await;
    discover_at_anchor(&e).await;
    let t1 = TickId {
        tier: Tier::T2,
        tick_ts: anchor(),
    };
    run_tick(&e, t1).await;
    // Next tick: Gamma and the books both fail on every try until its deadline (3 s away, time
    // for several rounds of retries): no market is observed, however fast the machine.
    let ids: Vec<String> = due_ids(&e, Tier::T2, t1.next().tick_ts)
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 4);
    e.sim.fail_markets(&ids);
    let r = run_tick_within(&e, t1.next(), std::time::Duration::from_secs(3)).await;
    e.sim.heal_markets();
    assert_eq!((r.rows, r.missing, r.failed_requests), (0, 4, 2));
    assert!(r.failed(), "nothing observed: a failed tick");
    let latest = e.store.get_latest(Tier::T2).await.unwrap().unwrap();
    assert_eq!(latest.tick_ts, t1.next().tick_ts);
    assert_eq!(
        latest.markets.len(),
        4,
        "markets that missed the tick keep their last values"
    );
    assert!(latest
        .markets
        .iter()
        .all(|m| m.tick_ts == t1.tick_ts && m.snapshot_count == 1 && m.best_bid.is_some()));
    let cov = e.store.coverage_since(anchor()).await.unwrap();
    let second = cov.iter().find(|c| c.tick_ts == t1.next().tick_ts).unwrap();
    assert_eq!(
        (
            second.expected,
            second.written,
            second.missing,
            second.failed
        ),
        (4, 0, 4, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_market_whose_fields_drift_once_stays_tracked() {
    let e = env(3, 100).await;
    discover_at_anchor(&e).await;
    let tracked = e.store.active_markets().await.unwrap();
    let victim = &tracked[0];
    e.sim
        .corrupt_market(&victim.condition_id, BadMarket::Fields);
    let r = discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    assert_eq!((r.rejected, r.retired_markets), (0, 0), "{r:?}");
    assert_eq!(r.drifted.get("gamma market.endDate"), Some(&1), "{r:?}");
    let after = e
        .store
        .get_market(&victim.condition_id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.active && after.tier == victim.tier && after.first_seen == victim.first_seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_record_without_a_usable_condition_id_closes_no_tracked_market() {
    let e = env(3, 100).await;
    discover_at_anchor(&e).await;
    let before = active_ids(&e).await;
    let victim = before.iter().next().unwrap().clone();
    e.sim.corrupt_market(&victim, BadMarket::ConditionId);
    let r = discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    assert_eq!((r.rejected, r.retired_markets), (1, 0), "{r:?}");
    assert!(r.closing_skipped);
    assert_eq!(
        active_ids(&e).await,
        before,
        "the unattributable record's market stays tracked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_that_starts_later_than_its_interval_is_skipped_and_counted() {
    let e = env(5, 100).await;
    discover_at_anchor(&e).await;
    let tick = TickId {
        tier: Tier::T4,
        tick_ts: anchor(),
    };
    e.clock.set(anchor() + chrono::Duration::seconds(16));
    let before = e.sim.counters().requests(Endpoint::GammaKeyset);
    let r = snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline(tick))
        .await
        .unwrap();
    assert!(r.skipped);
    assert_eq!(
        e.sim.counters().requests(Endpoint::GammaKeyset),
        before,
        "nothing fetched"
    );
    assert!(files_under(e.dir.path(), "snapshots/").is_empty());
    let cov = e
        .store
        .coverage_since(anchor() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(cov.len(), 1);
    assert!(cov[0].skipped && cov[0].tier == Tier::T4 && cov[0].tick_ts == anchor());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_duplicate_of_a_completed_tick_leaves_its_records_alone() {
    let e = env(3, 100).await;
    discover_at_anchor(&e).await;
    let tick = TickId {
        tier: Tier::T4,
        tick_ts: anchor(),
    };
    let done = run_tick(&e, tick).await;
    assert_eq!(done.rows, 3);
    // The queue delivers the same tick again, a minute later.
    e.clock.set(anchor() + chrono::Duration::seconds(60));
    let again = snapshot_tick(&e.client, &e.store, tick, &e.clock, deadline(tick))
        .await
        .unwrap();
    assert!(again.skipped && again.already_done);
    let cov = e.store.coverage_since(anchor()).await.unwrap();
    assert_eq!(cov.len(), 1);
    assert!(
        !cov[0].skipped && cov[0].written == 3,
        "the completed tick's coverage stands: {cov:?}"
    );
    let runs = e
        .store
        .task_runs_since(anchor() - chrono::Duration::hours(1))
        .await
        .unwrap();
    let run = runs
        .iter()
        .find(|r| r.id.ends_with("#snapshot#T4"))
        .unwrap();
    assert_eq!(run.status, polytape_core::ops::TaskStatus::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_skipped_and_counted_while_the_rest_is_written() {
    let e = env(6, 100).await;
    discover_at_anchor(&e).await;
    let t2 = e.store.markets_due(Tier::T2, anchor()).await.unwrap();
    let (bad_market, bad_book) = (&t2[0], &t2[1]);
    e.sim
        .corrupt_market(&bad_market.condition_id, BadMarket::Fields);
    e.sim
        .corrupt_book(&bad_book.yes_token_id, BadLevel::PriceAboveOne);
    e.sim.inject(Fault {
        endpoint: Some(Endpoint::ClobBooks),
        kind: FaultKind::TooManyRequests { retry_after_s: 1 },
        times: 1,
    });
    e.sim.inject(Fault {
        endpoint: Some(Endpoint::GammaKeyset),
        kind: FaultKind::Truncate,
        times: 1,
    });
    e.sim.reset();
    let truncated_before = e.client.stats().truncated;

    let r = run_tick(
        &e,
        TickId {
            tier: Tier::T2,
            tick_ts: anchor(),
        },
    )
    .await;

    assert_eq!(r.rows, 6, "every market has a row");
    assert_eq!(
        r.gamma_missing, 0,
        "the drifted market is kept, its bad fields absent"
    );
    assert_eq!(
        (
            r.drifted.get("gamma market.endDate"),
            r.drifted.get("gamma market.volume24hr")
        ),
        (Some(&1), Some(&1)),
        "{:?}",
        r.drifted
    );
    assert_eq!(
        (r.books, r.books_invalid),
        (5, 1),
        "the book with an impossible level is not stored as a book"
    );
    assert_eq!(
        r.failed_requests, 0,
        "the 429 and the truncated body were retried"
    );
    assert!(
        r.rejected >= 1,
        "the invalid level is counted: {}",
        r.rejected
    );
    assert_eq!(e.client.stats().truncated - truncated_before, 1);
    let log = e.sim.counters().log;
    let books: Vec<_> = log
        .iter()
        .filter(|r| r.endpoint == Endpoint::ClobBooks)
        .collect();
    assert_eq!(
        books.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert!(
        (books[1].at - books[0].at).num_milliseconds() >= 950,
        "Retry-After was honoured"
    );

    let file = e.dir.path().join(r.snapshot_key.unwrap());
    let truth = e.sim.truth();
    assert_eq!(
        check_book_values(e.dir.path(), &file, &truth),
        5,
        "every trusted book's values are the served ones"
    );
    let mut seen = 0;
    for b in read_parquet(&file) {
        for i in 0..b.num_rows() {
            let cid = string(&b, "condition_id", i).unwrap();
            if cid == bad_market.condition_id {
                seen += 1;
                assert_eq!(
                    decimal(&b, "volume_24h", i),
                    None,
                    "served as garbage: NULL"
                );
                assert!(
                    decimal(&b, "price", i).is_some(),
                    "the rest of Gamma's values kept"
                );
                assert!(decimal(&b, "best_bid", i).is_some(), "its book was used");
            }
            if cid == bad_book.condition_id {
                seen += 1;
                // A depth with a level left out would be a wrong number: none at all.
                for col in ["bid_depth_5", "ask_depth_50", "bid_wall_price"] {
                    assert_eq!(decimal(&b, col, i), None, "{col} of the untrusted book");
                }
                assert_eq!(i32_at(&b, "bid_levels", i), None);
                assert_eq!(
                    decimal(&b, "best_bid", i),
                    json_decimal(&served_market(&truth, &cid)["bestBid"]),
                    "best bid from Gamma, as when no book was observed"
                );
            }
        }
    }
    assert_eq!(seen, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retier_records_moves_keeps_past_end_markets_in_t4_and_expires_them_after_a_day() {
    let e = env(4, 100).await;
    discover_at_anchor(&e).await;
    let t4_before = due_ids(&e, Tier::T4, anchor()).await;
    assert_eq!(t4_before.len(), 4);
    // Two hours on: every T4 market (< 1 h to close) is past its end, open on Gamma (the
    // static world never closes a market): still sampled, in T4; some T3 markets are now T4.
    e.clock.set(anchor() + chrono::Duration::hours(2));
    let r = retier(&e.client, &e.store, &e.clock).await.unwrap();
    assert!(r.past_end >= 4 && (r.closed, r.expired) == (0, 0), "{r:?}");
    assert!(r.moved >= 4, "{r:?}");
    let now = e.clock.now();
    let t4_now = due_ids(&e, Tier::T4, now).await;
    assert!(t4_before.is_subset(&t4_now), "past their end, still in T4");
    for m in e.store.active_markets().await.unwrap() {
        assert_eq!(m.tier, Tier::at(now, m.end_date), "{}", m.condition_id);
    }
    // A day and two hours on: the first T4 markets are 24 h past their end: expired.
    e.clock.set(anchor() + chrono::Duration::hours(26));
    let r = retier(&e.client, &e.store, &e.clock).await.unwrap();
    assert!(r.expired >= 4, "{r:?}");
    let active = active_ids(&e).await;
    assert!(t4_before.iter().all(|id| !active.contains(id)));
    let transitions = e.store.recent_transitions(1000).await.unwrap();
    assert!(transitions.iter().filter(|t| t.reason == "expired").count() >= 4);
}

/// Condition ids with a row in a tick's snapshot file (none when the tier had no market).
fn row_ids(e: &Env, r: &polytape_collector::snapshot::TickReport) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let Some(key) = &r.snapshot_key else {
        return ids;
    };
    for b in read_parquet(&e.dir.path().join(key)) {
        for i in 0..b.num_rows() {
            ids.insert(string(&b, "condition_id", i).unwrap());
        }
    }
    ids
}

/// The first tick of `tier` at or after `t`.
fn first_tick_from(tier: Tier, t: Ts) -> TickId {
    let floor = TickId::floor(tier, t);
    if floor.tick_ts == t {
        floor
    } else {
        floor.next()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_crossing_into_a_faster_tier_is_sampled_there_from_the_first_tick_after_the_crossing(
) {
    let e = env(3, 100).await;
    discover_at_anchor(&e).await;
    for (slower, faster, boundary_h) in [
        (Tier::T1, Tier::T2, 12),
        (Tier::T2, Tier::T3, 4),
        (Tier::T3, Tier::T4, 1),
    ] {
        // A market stored in the slower tier at discovery, and the moment it crosses.
        let m = e
            .store
            .markets_due(slower, anchor())
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        let crossing = m.end_date - chrono::Duration::hours(boundary_h);
        let first = first_tick_from(faster, crossing);
        // No re-tier runs: the stored tier is still the slower one.
        assert_eq!(
            e.store
                .get_market(&m.condition_id)
                .await
                .unwrap()
                .unwrap()
                .tier,
            Some(slower)
        );
        let r = run_tick(&e, first).await;
        assert!(
            row_ids(&e, &r).contains(&m.condition_id),
            "{faster} tick at {} (crossing at {crossing}) samples {}",
            first.tick_ts,
            m.condition_id
        );
        for b in read_parquet(&e.dir.path().join(r.snapshot_key.unwrap())) {
            for i in 0..b.num_rows() {
                if string(&b, "condition_id", i).unwrap() == m.condition_id {
                    let htc = f64_at(&b, "hours_to_close", i).unwrap();
                    assert!(htc <= boundary_h as f64 && htc > 0.0, "{htc}");
                }
            }
        }
        // The slower tier's ticks: its last one before the crossing has it, none after.
        let last_slow = TickId::floor(slower, crossing - chrono::Duration::milliseconds(1));
        assert!(row_ids(&e, &run_tick(&e, last_slow).await).contains(&m.condition_id));
        let after = run_tick(&e, last_slow.next()).await;
        assert!(
            !row_ids(&e, &after).contains(&m.condition_id),
            "{slower} tick at {} no longer samples it",
            last_slow.next().tick_ts
        );
        // Coverage counts it where it was sampled: expected = the tier's markets at the tick.
        assert_eq!(after.markets, after.rows + after.missing);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_past_its_end_keeps_t4_rows_with_negative_hours_to_close_until_it_closes() {
    let e = env(3, 100).await;
    discover_at_anchor(&e).await;
    let m = e
        .store
        .markets_due(Tier::T4, anchor())
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    // Half an hour after its end date, still open on Gamma, and no re-tier in between.
    let tick = first_tick_from(Tier::T4, m.end_date + chrono::Duration::minutes(30));
    let r = run_tick(&e, tick).await;
    assert!(row_ids(&e, &r).contains(&m.condition_id));
    for b in read_parquet(&e.dir.path().join(r.snapshot_key.unwrap())) {
        for i in 0..b.num_rows() {
            if string(&b, "condition_id", i).unwrap() == m.condition_id {
                let htc = f64_at(&b, "hours_to_close", i).unwrap();
                assert!((-0.76..=-0.5).contains(&htc), "{htc}");
                assert!(decimal(&b, "best_bid", i).is_some(), "its book was sampled");
            }
        }
    }
    // Gamma closes it; the next maintenance asks Gamma about markets past their end and ends
    // its sampling: the next T4 tick has no row for it.
    assert!(e.sim.close_market(&m.condition_id));
    e.clock.set(tick.tick_ts + chrono::Duration::seconds(5));
    let r = polytape_collector::maintenance::run(
        &e.client,
        &e.store,
        &Config::default(),
        &e.clock,
        None,
    )
    .await
    .unwrap();
    assert!(r.retier.closed >= 1, "{r:?}");
    let after = run_tick(&e, tick.next()).await;
    assert!(!row_ids(&e, &after).contains(&m.condition_id));
    let transitions = e.store.recent_transitions(100).await.unwrap();
    assert!(transitions
        .iter()
        .any(|t| t.condition_id == m.condition_id && t.reason == "closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_10_percent_of_markets_drifting_every_eligible_market_is_sampled_and_only_their_drifted_columns_are_null(
) {
    let mut cfg = polytape_sim::SimConfig::new(42);
    cfg.markets_per_tier = 40;
    cfg.now = anchor();
    cfg.schema_drift = 0.1;
    let e = env_with(cfg, 100).await;
    let truth = e.sim.truth();
    let eligible: BTreeSet<String> = truth
        .markets
        .iter()
        .filter(|m| passes_filters(m, anchor()))
        .map(|m| m.condition_id.clone())
        .collect();
    let drifted: BTreeSet<String> = truth
        .markets
        .iter()
        .filter(|m| !m.drifted_fields.is_empty() && eligible.contains(&m.condition_id))
        .map(|m| m.condition_id.clone())
        .collect();
    assert!(
        drifted.len() >= eligible.len() / 20,
        "about 10 % drift: {} of {}",
        drifted.len(),
        eligible.len()
    );
    let report = discover(&e.client, &e.store, &Config::default(), &e.clock)
        .await
        .unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    assert_eq!(
        active_ids(&e).await,
        eligible,
        "every eligible market is tracked"
    );

    // One tick of each tier at the anchor: every eligible market has a row.
    // condition id → (volume_1w, competitive, volume_24h)
    type Cols = (Option<Decimal>, Option<f64>, Option<Decimal>);
    let mut rows: BTreeMap<String, Cols> = BTreeMap::new();
    for tier in Tier::ALL {
        let r = run_tick(
            &e,
            TickId {
                tier,
                tick_ts: anchor(),
            },
        )
        .await;
        assert_eq!(r.missing, 0, "{r:?}");
        for b in read_parquet(&e.dir.path().join(r.snapshot_key.unwrap())) {
            for i in 0..b.num_rows() {
                rows.insert(
                    string(&b, "condition_id", i).unwrap(),
                    (
                        decimal(&b, "volume_1w", i),
                        f64_at(&b, "competitive", i),
                        decimal(&b, "volume_24h", i),
                    ),
                );
            }
        }
    }
    assert_eq!(
        rows.keys().cloned().collect::<BTreeSet<_>>(),
        eligible,
        "every eligible market sampled"
    );
    // volume1wk and competitive (each the one source of its column) drifted in exactly the
    // drifted markets: NULL there, and only there; their other columns are kept.
    for (id, (volume_1w, competitive, volume_24h)) in &rows {
        let is_drifted = drifted.contains(id);
        assert_eq!(volume_1w.is_none(), is_drifted, "volume_1w of {id}");
        assert_eq!(competitive.is_none(), is_drifted, "competitive of {id}");
        assert!(
            volume_24h.is_some(),
            "volume_24h of {id} is not a drifted field"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_books_batch_with_one_token_the_clob_refuses_stores_every_other_book() {
    let e = env(30, 100).await;
    discover_at_anchor(&e).await;
    let t2 = e.store.markets_due(Tier::T2, anchor()).await.unwrap();
    assert_eq!(t2.len(), 30);
    let refused = &t2[7];
    e.sim.reject_token(&refused.yes_token_id);
    let r = run_tick(
        &e,
        TickId {
            tier: Tier::T2,
            tick_ts: anchor(),
        },
    )
    .await;
    assert_eq!((r.rows, r.books, r.books_missing), (30, 29, 1), "{r:?}");
    let mut stored = BTreeSet::new();
    for b in read_parquet(&e.dir.path().join(r.orderbook_key.unwrap())) {
        for i in 0..b.num_rows() {
            stored.insert(string(&b, "token_id", i).unwrap());
        }
    }
    let want: BTreeSet<String> = t2
        .iter()
        .filter(|m| m.condition_id != refused.condition_id)
        .map(|m| m.yes_token_id.clone())
        .collect();
    assert_eq!(stored, want, "every book but the refused token's");
}
