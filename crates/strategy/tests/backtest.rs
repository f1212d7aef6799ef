//! The backtester over small data directories written with the store's own encoders and key
//! layout: a favourite bought and settled with the right P&L, the same report byte for byte on
//! a second run, and a planted future row that a decision cannot see.

#![allow(clippy::unwrap_used)] // a test: a failure should fail it loudly

use polytape_core::snapshot::OrderbookRow;
use polytape_core::{
    Book, Level, Market, MarketResult, Outcome, Resolution, Snapshot, TickId, Tier, Ts,
};
use polytape_store::{keys, parquet};
use polytape_strategy::backtest::{run_backtest, Report};
use polytape_strategy::EngineConfig;
use rust_decimal::Decimal;
use std::path::Path;
use std::str::FromStr;

const END: &str = "2026-11-21T00:00:00Z";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

fn put(dir: &Path, key: &str, bytes: &[u8]) {
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn market(cid: &str) -> Market {
    Market {
        condition_id: cid.into(),
        question: format!("Will {cid} happen?"),
        slug: None,
        yes_token_id: format!("{cid}-yes"),
        no_token_id: format!("{cid}-no"),
        outcomes: ["Yes".into(), "No".into()],
        end_date: at(END),
        tier: Some(Tier::T2),
        active: true,
        result: MarketResult::Open,
        closed_at: None,
        delisted: false,
        first_seen: at("2026-11-19T00:00:00Z"),
        category: None,
        neg_risk: false,
        volume_24h: None,
        event_id: None,
        fees_enabled: None,
        fee: None,
        version: 0,
    }
}

fn snapshot(ts: &str, cid: &str, bid: &str, ask: &str) -> Snapshot {
    let (b, a) = (d(bid), d(ask));
    Snapshot {
        snapshot_ts: at(ts),
        fetched_at: at(ts),
        condition_id: cid.into(),
        token_id: format!("{cid}-yes"),
        tier: Some(Tier::T2),
        interval_s: 300,
        price: Some((b + a) / Decimal::TWO),
        best_bid: Some(b),
        best_ask: Some(a),
        mid_price: Some((b + a) / Decimal::TWO),
        ..Snapshot::default()
    }
}

fn book(ts: &str, cid: &str, bid: &str, ask: &str) -> OrderbookRow {
    let book = Book {
        token_id: format!("{cid}-yes"),
        bids: vec![Level {
            price: d(bid),
            size: d("1000"),
        }],
        asks: vec![Level {
            price: d(ask),
            size: d("1000"),
        }],
        timestamp: Some(at(ts)),
        tick_size: Some(d("0.01")),
        ..Book::default()
    };
    let tick = TickId {
        tier: Tier::T2,
        tick_ts: at(ts),
    };
    OrderbookRow::new(tick, at(ts), cid, &book)
}

/// One tick file of each table at `tick` holding `rows` and `books` (whatever their times).
fn tick(dir: &Path, tick_ts: &str, rows: &[Snapshot], books: &[OrderbookRow]) {
    let t = TickId {
        tier: Tier::T2,
        tick_ts: at(tick_ts),
    };
    put(
        dir,
        &keys::snapshots(&t),
        &parquet::encode_snapshots(rows).unwrap().bytes,
    );
    put(
        dir,
        &keys::orderbooks(&t),
        &parquet::encode_orderbooks(books).unwrap().bytes,
    );
}

fn markets(dir: &Path, ms: &[Market]) {
    let key = keys::markets(at("2026-11-20T00:00:00Z").date_naive());
    put(dir, &key, &parquet::encode_markets(ms).unwrap().bytes);
}

fn resolve(dir: &Path, cid: &str, winner: usize, learned_at: &str) {
    let mut m = market(cid);
    m.active = false;
    m.closed_at = Some(at(END));
    m.result = MarketResult::Resolved(Outcome {
        winner: Some(winner),
        invalid: false,
        payouts: if winner == 0 {
            vec![d("1"), d("0")]
        } else {
            vec![d("0"), d("1")]
        },
        resolved_at: Some(at(END)),
        learned_at: at(learned_at),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    });
    let r = Resolution::of(&m).unwrap();
    put(
        dir,
        &keys::resolution(&r),
        &parquet::encode_resolutions(std::slice::from_ref(&r))
            .unwrap()
            .bytes,
    );
}

fn config() -> EngineConfig {
    EngineConfig::from_yaml(
        "mode: paper\ninitial_cash: 1000\nsizing: {method: fixed, usd: 47}\n\
         strategies:\n  longshot_yes: {}\n  mean_reversion: {}\n",
        "test",
    )
    .unwrap()
}

async fn run(dir: &Path) -> Report {
    run_backtest(dir, &config()).await.unwrap()
}

/// A favourite at 12:00 (ask 0.94), held through 12:05 (bid 0.89, above the stop at 0.84),
/// resolved YES; a second market never in range.
fn favourite_dir(dir: &Path) {
    markets(dir, &[market("0xa"), market("0xb")]);
    tick(
        dir,
        "2026-11-20T12:00:00Z",
        &[
            snapshot("2026-11-20T12:00:00Z", "0xa", "0.92", "0.94"),
            snapshot("2026-11-20T12:00:00Z", "0xb", "0.48", "0.50"),
        ],
        &[
            book("2026-11-20T12:00:00Z", "0xa", "0.92", "0.94"),
            book("2026-11-20T12:00:00Z", "0xb", "0.48", "0.50"),
        ],
    );
    tick(
        dir,
        "2026-11-20T12:05:00Z",
        &[snapshot("2026-11-20T12:05:00Z", "0xa", "0.89", "0.90")],
        &[book("2026-11-20T12:05:00Z", "0xa", "0.89", "0.90")],
    );
    resolve(dir, "0xa", 0, "2026-11-21T01:00:00Z");
}

#[tokio::test]
async fn given_a_favourite_that_wins_then_it_is_bought_once_and_settled_at_one() {
    let tmp = tempfile::tempdir().unwrap();
    favourite_dir(tmp.path());
    let r = run(tmp.path()).await;
    assert_eq!(r.data.snapshot_rows, 3);
    assert_eq!(r.data.book_rows, 3);
    assert_eq!(r.data.resolutions, 1);
    assert_eq!(r.data.files_skipped, 0, "{:?}", r.data.skipped);
    // 12:00, 12:05 and the settlement at 01:00 the next day.
    assert_eq!(r.total.steps, 3);
    let s = &r.strategies["longshot_yes"];
    assert_eq!(
        s.signals, 1,
        "0xb (ask 0.50) and 12:05 (ask 0.90) are out of range"
    );
    assert_eq!(s.fills, 1);
    assert_eq!(s.bought_usd, d("47"));
    assert_eq!((s.closed, s.wins, s.win_rate), (1, 1, Some(1.0)));
    let trade = &s.trades[0];
    assert_eq!(trade.condition_id, "0xa");
    assert_eq!(trade.shares, d("50"), "47 USD at 0.94");
    assert_eq!(trade.proceeds, d("50"));
    assert_eq!(trade.realised_pnl, d("3"), "50 × 1 − 47");
    assert_eq!(trade.opened_at, at("2026-11-20T12:00:00Z"));
    assert_eq!(trade.closed_at, at("2026-11-21T01:00:00Z"));
    assert_eq!((s.realised, s.unrealised, s.pnl), (d("3"), d("0"), d("3")));
    // Marked at the 12:05 bid: 50 × 0.89 = 44.50 against 47 paid.
    assert_eq!(s.max_drawdown_usd, d("2.5"));
    assert_eq!(s.max_exposure, d("47"));
    assert_eq!(r.total.final_equity, d("1003"));
    assert_eq!(r.total.open_positions, 0);
    let mr = &r.strategies["mean_reversion"];
    assert_eq!((mr.signals, mr.fills), (0, 0));
    // Exposure over time: 47 while held, 0 once settled.
    let exposure: Vec<Decimal> = r
        .curve
        .iter()
        .map(|p| p.strategies["longshot_yes"].exposure)
        .collect();
    assert_eq!(exposure, vec![d("47"), d("47"), d("0")]);
}

#[tokio::test]
async fn given_a_loser_then_the_settlement_loses_the_cost() {
    let tmp = tempfile::tempdir().unwrap();
    favourite_dir(tmp.path());
    resolve(tmp.path(), "0xa", 1, "2026-11-21T01:00:00Z");
    let r = run(tmp.path()).await;
    let s = &r.strategies["longshot_yes"];
    assert_eq!((s.closed, s.wins, s.win_rate), (1, 0, Some(0.0)));
    assert_eq!(s.realised, d("-47"));
    assert_eq!(r.total.final_equity, d("953"));
    assert_eq!(r.total.max_drawdown, d("0.047"));
}

#[tokio::test]
async fn the_same_data_and_config_give_the_same_report_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    favourite_dir(tmp.path());
    let (a, b) = (tmp.path().join("out-a"), tmp.path().join("out-b"));
    run(tmp.path()).await.write(&a).unwrap();
    run(tmp.path()).await.write(&b).unwrap();
    for f in ["report.json", "report.html"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(!x.is_empty());
        assert_eq!(x, y, "{f} differs between two runs");
    }
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("<polyline"));
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["strategies"]["longshot_yes"]["trades"][0]["realised_pnl"],
        "3.00"
    );
}

#[tokio::test]
async fn a_planted_future_row_is_not_seen_by_the_decision_before_it() {
    // At 12:00 the favourite's ask is 0.50: nothing to buy. A book and a snapshot stamped
    // 12:00:01 with ask 0.94 (in range) are planted inside the 12:00 tick's own files.
    let plain = tempfile::tempdir().unwrap();
    let planted = tempfile::tempdir().unwrap();
    for (dir, plant) in [(plain.path(), false), (planted.path(), true)] {
        markets(dir, &[market("0xa")]);
        let mut rows = vec![snapshot("2026-11-20T12:00:00Z", "0xa", "0.48", "0.50")];
        let mut books = vec![book("2026-11-20T12:00:00Z", "0xa", "0.48", "0.50")];
        if plant {
            rows.push(snapshot("2026-11-20T12:00:01Z", "0xa", "0.92", "0.94"));
            books.push(book("2026-11-20T12:00:01Z", "0xa", "0.92", "0.94"));
        }
        tick(dir, "2026-11-20T12:00:00Z", &rows, &books);
        resolve(dir, "0xa", 0, "2026-11-21T01:00:00Z");
    }
    let (a, b) = (run(plain.path()).await, run(planted.path()).await);
    // Without the future row nothing trades.
    assert_eq!(a.strategies["longshot_yes"].signals, 0);
    // With it the 12:00 decision is the same as without it...
    let at_noon = |r: &Report| {
        r.curve
            .iter()
            .find(|p| p.ts == at("2026-11-20T12:00:00Z"))
            .cloned()
    };
    assert!(at_noon(&a).is_some());
    assert_eq!(at_noon(&a), at_noon(&b));
    // ...and the trade the planted row makes is made at its own time, at its price.
    let s = &b.strategies["longshot_yes"];
    assert_eq!(s.signals, 1);
    assert_eq!(s.trades[0].opened_at, at("2026-11-20T12:00:01Z"));
    assert_eq!(s.trades[0].shares, d("50"), "bought at 0.94, not at 0.50");
}

#[tokio::test]
async fn bad_files_are_skipped_and_counted_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    favourite_dir(tmp.path());
    put(
        tmp.path(),
        "snapshots/tier=2/dt=2026-11-20/20261120T121000Z.parquet",
        b"not parquet",
    );
    put(
        tmp.path(),
        "orderbooks/tier=2/dt=2026-11-20/README.txt",
        b"x",
    );
    let r = run(tmp.path()).await;
    assert_eq!(r.data.files_skipped, 2, "{:?}", r.data.skipped);
    assert_eq!(r.strategies["longshot_yes"].trades.len(), 1);
    assert!(run_backtest(&tmp.path().join("missing"), &config())
        .await
        .is_err());
}

/// Two deadlines of one question (event `ev`): "by Nov 21" at 0.60 and "by Nov 22" at 0.40, a
/// later deadline priced below an earlier one. The later market charges 3 % (its own Gamma
/// schedule), the earlier none (`feesEnabled: false`); the configured fallback is 5 %.
fn term_dir(dir: &Path, with_events: bool) {
    let deadline = |cid: &str, end: &str| {
        let mut m = market(cid);
        m.end_date = at(end);
        m.event_id = with_events.then(|| "ev".to_string());
        m
    };
    let mut early = deadline("0xe1", "2026-11-21T00:00:00Z");
    early.fees_enabled = Some(false);
    let mut late = deadline("0xe2", "2026-11-22T00:00:00Z");
    late.fees_enabled = Some(true);
    late.fee = Some(polytape_core::FeeSchedule {
        rate: d("0.03"),
        exponent: 1,
        rebate_rate: Some(d("0.25")),
        taker_only: true,
    });
    markets(dir, &[early, late]);
    tick(
        dir,
        "2026-11-20T12:00:00Z",
        &[
            snapshot("2026-11-20T12:00:00Z", "0xe1", "0.59", "0.61"),
            snapshot("2026-11-20T12:00:00Z", "0xe2", "0.39", "0.41"),
        ],
        &[
            book("2026-11-20T12:00:00Z", "0xe1", "0.59", "0.61"),
            book("2026-11-20T12:00:00Z", "0xe2", "0.39", "0.41"),
        ],
    );
}

#[tokio::test]
async fn given_two_deadlines_of_one_event_mispriced_then_term_structure_trades_at_each_markets_fee()
{
    let config = EngineConfig::from_yaml(
        "mode: paper\ninitial_cash: 1000\nsizing: {method: fixed, usd: 47}\n\
         execution: {taker_fee: {rate: \"0.05\", exponent: 1}}\n\
         strategies:\n  term_structure: {}\n",
        "test",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    term_dir(tmp.path(), true);
    let r = run_backtest(tmp.path(), &config).await.unwrap();
    assert_eq!(r.data.files_skipped, 0, "{:?}", r.data.skipped);
    let s = &r.strategies["term_structure"];
    // The later market's YES at 0.41 and the earlier market's NO at 1 − 0.59 = 0.41.
    assert_eq!((s.signals, s.fills), (2, 2));
    // 114.634146 shares each (47 / 0.41, to 6 places) × 0.41.
    assert_eq!(s.bought_usd, d("93.99999972"));
    // YES: 47 / 0.41 = 114.634146 shares × 0.03 × 0.41 × 0.59 = 0.83189 (floored to 5 places);
    // NO in the fee-free market: nothing, not the fallback's 5 %.
    assert_eq!(s.fees, d("0.83189"));

    // The same data read without event ids: nothing groups the two markets.
    let plain = tempfile::tempdir().unwrap();
    term_dir(plain.path(), false);
    let r = run_backtest(plain.path(), &config).await.unwrap();
    assert_eq!(r.strategies["term_structure"].signals, 0);
}

#[tokio::test]
async fn given_a_settled_market_then_it_is_forgotten_and_its_later_rows_are_counted_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    favourite_dir(tmp.path());
    let before = run(tmp.path()).await;
    // Rows of both markets in the hours after 0xa's settlement (learnt at 01:00).
    for t in ["2026-11-21T02:00:00Z", "2026-11-21T03:00:00Z"] {
        tick(
            tmp.path(),
            t,
            &[
                snapshot(t, "0xa", "0.98", "0.99"),
                snapshot(t, "0xb", "0.48", "0.50"),
            ],
            &[
                book(t, "0xa", "0.98", "0.99"),
                book(t, "0xb", "0.48", "0.50"),
            ],
        );
    }
    let r = run(tmp.path()).await;
    // 0xa is settled after the 01:00 step and holds nothing: forgotten once its hour is read;
    // 0xb never resolved and stays.
    assert_eq!(r.data.markets_forgotten, 1);
    // 02:00 is read in the hour the settlement was applied; 03:00 finds 0xa forgotten.
    assert_eq!(
        r.data.rows_after_settlement, 2,
        "the 03:00 row and book of 0xa"
    );
    assert_eq!(r.data.rows_unknown_market, 0);
    let (s, b) = (
        &r.strategies["longshot_yes"],
        &before.strategies["longshot_yes"],
    );
    assert_eq!(
        (s.fills, s.closed, s.realised),
        (b.fills, b.closed, b.realised)
    );
    assert_eq!(r.total.final_equity, before.total.final_equity);
}
