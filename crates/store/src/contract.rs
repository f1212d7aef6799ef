//! The contract of the ports, as async functions that panic on a violation. Each expects a
//! store with no records of its own kind (a fresh data directory, an empty test table) and
//! uses fixed timestamps with millisecond precision, the precision every adapter keeps. The
//! records are dated 2026-11-20 (up to 12:01): an adapter that reads "recent" records by day
//! or leaves out expired ones by its clock (the DynamoDB Ops table) runs the contract with its
//! clock later on that day.
//!
//! ```no_run
//! # async fn f(store: &polytape_store::LocalStore) {
//! polytape_store::contract::all(store).await;
//! # }
//! ```

use crate::ports::{LatestStore, MarketStore, ObjectDeleter, ObjectStore, OpsStore, TickQueue};
use polytape_core::ops::{
    Coverage, LatestEntry, LatestTier, LatestUpdate, ShardHeartbeat, TaskRun, TaskStatus,
    TierTransition,
};
use polytape_core::{FeeSchedule, Market, MarketResult, Outcome, TickId, Tier, Ts};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;

/// Runs every contract against a store that implements all four ports. Objects go before
/// Latest: the object contract lists the whole store, and the AWS adapter keeps the Latest
/// values as objects (`latest/…`) in the same bucket.
pub async fn all<S>(s: &S)
where
    S: MarketStore + LatestStore + OpsStore + ObjectDeleter,
{
    market_store_contract(s).await;
    object_store_contract(s).await;
    object_deleter_contract(s).await;
    latest_store_contract(s).await;
    ops_store_contract(s).await;
}

/// A UTC time from RFC 3339; the contract only uses literals.
pub fn at(s: &str) -> Ts {
    s.parse()
        .unwrap_or_else(|e| panic!("contract timestamp {s:?}: {e}"))
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|e| panic!("contract decimal {s:?}: {e}"))
}

/// A market with every field set; `n` makes the ids distinct and sortable.
pub fn market(n: u32, tier: Option<Tier>, active: bool) -> Market {
    Market {
        condition_id: format!("0x{n:064x}"),
        question: format!("Will market {n} resolve Yes?"),
        slug: Some(format!("market-{n}")),
        yes_token_id: format!("{}1", 1000 + n),
        no_token_id: format!("{}2", 1000 + n),
        outcomes: ["Up".into(), "Down".into()],
        end_date: at("2026-11-20T18:00:00Z"),
        tier,
        active,
        result: MarketResult::Open,
        closed_at: None,
        delisted: false,
        first_seen: at("2026-11-19T08:15:30.123Z"),
        category: Some("Crypto".into()),
        neg_risk: n.is_multiple_of(2),
        volume_24h: Some(dec("123456.789012345678")),
        // Two markets to an event (two deadlines of one question).
        event_id: Some(format!("{}", 21_000 + n / 2)),
        fees_enabled: Some(true),
        fee: Some(FeeSchedule {
            rate: dec("0.03"),
            exponent: 1,
            rebate_rate: Some(dec("0.25")),
            taker_only: true,
        }),
        version: 0,
    }
}

/// `m` as a store returns it after `writes` successful writes.
fn stored(m: &Market, writes: u64) -> Market {
    Market {
        version: writes,
        ..m.clone()
    }
}

/// Writes are conditional on the version read (a new market on its absence) and bump it;
/// `markets_due` returns the active markets whose end date puts them in the tier at the given
/// time (past-end ones in T4 for 24 h), by condition id; `all_markets` sees every market.
pub async fn market_store_contract(s: &impl MarketStore) {
    let now = at("2026-11-20T12:00:00Z");
    let ends = |m: Market, hours: f64| Market {
        end_date: now + chrono::Duration::milliseconds((hours * 3_600_000.0) as i64),
        ..m
    };
    // By end date at `now`: a, b T2 (8 h, 5 h); c T3 (2 h); d would be T2 but is inactive;
    // e ended 3 h ago (T4 until 24 h past its end); f ended 25 h ago (expired); g T0 (100 h).
    let a = ends(market(1, Some(Tier::T2), true), 8.0);
    let b = ends(market(2, Some(Tier::T2), true), 5.0);
    let c = ends(market(3, Some(Tier::T3), true), 2.0);
    let d = ends(market(4, Some(Tier::T2), false), 6.0);
    let mut e = ends(market(5, None, true), -3.0);
    e.slug = None;
    e.category = None;
    e.volume_24h = None;
    e.event_id = None;
    e.fees_enabled = None;
    e.fee = None;
    // A market that charges no fee, and one whose schedule has no rebate and an exponent of 2.
    let mut b = b;
    b.fees_enabled = Some(false);
    b.fee = None;
    let mut c = c;
    c.fee = Some(FeeSchedule {
        rate: dec("0.25"),
        exponent: 2,
        rebate_rate: None,
        taker_only: false,
    });
    let f = ends(market(6, Some(Tier::T4), true), -25.0);
    let g = ends(market(7, Some(Tier::T0), true), 100.0);
    let all = vec![
        c.clone(),
        a.clone(),
        e.clone(),
        d.clone(),
        b.clone(),
        g.clone(),
        f.clone(),
    ];

    assert_eq!(
        s.write_markets(&[]).await.expect("empty write"),
        Vec::<String>::new()
    );
    assert_eq!(s.all_markets().await.expect("all_markets"), vec![]);
    assert_eq!(
        s.write_markets(&all).await.expect("write markets"),
        Vec::<String>::new(),
        "new markets are written"
    );
    let (a, b, c, d, e, f, g) = (
        stored(&a, 1),
        stored(&b, 1),
        stored(&c, 1),
        stored(&d, 1),
        stored(&e, 1),
        stored(&f, 1),
        stored(&g, 1),
    );
    assert_eq!(
        s.markets_due(Tier::T2, now).await.expect("markets_due"),
        vec![a.clone(), b.clone()],
        "T2 holds the active markets 4-12 h from their end, by condition_id, every field kept"
    );
    assert_eq!(
        s.markets_due(Tier::T3, now).await.expect("markets_due"),
        vec![c.clone()]
    );
    assert_eq!(
        s.markets_due(Tier::T4, now).await.expect("markets_due"),
        vec![e.clone()],
        "a market past its end stays in T4 for 24 h, whatever tier was stored"
    );
    assert_eq!(
        s.markets_due(Tier::T0, now).await.expect("markets_due"),
        vec![g.clone()]
    );
    // Two hours later b (then 3 h from its end) is in T3, at once.
    let later = now + chrono::Duration::hours(2);
    assert_eq!(
        s.markets_due(Tier::T3, later).await.expect("markets_due"),
        vec![b.clone()],
        "b crossed into T3 without any write"
    );
    assert_eq!(
        s.markets_due(Tier::T4, later).await.expect("markets_due"),
        vec![c.clone(), e.clone()]
    );
    assert_eq!(
        s.active_markets().await.expect("active_markets"),
        vec![
            a.clone(),
            b.clone(),
            c.clone(),
            e.clone(),
            f.clone(),
            g.clone()
        ],
        "inactive markets are not active"
    );
    assert_eq!(
        s.all_markets().await.expect("all_markets"),
        vec![
            a.clone(),
            b.clone(),
            c.clone(),
            d.clone(),
            e.clone(),
            f.clone(),
            g.clone()
        ],
        "every market, active or not, by condition_id, once"
    );
    assert_eq!(
        s.count_due(now).await.expect("count_due"),
        BTreeMap::from([
            (None, 1),
            (Some(Tier::T0), 1),
            (Some(Tier::T2), 2),
            (Some(Tier::T3), 1),
            (Some(Tier::T4), 1)
        ]),
        "counted by end date at the time asked; the expired one apart"
    );
    assert_eq!(
        s.get_market(&d.condition_id).await.expect("get_market"),
        Some(d.clone()),
        "an inactive market is still readable by id"
    );
    assert_eq!(s.get_market("0xmissing").await.expect("get_market"), None);

    // Two writers read a at version 1. The first closes it; the second, still holding
    // version 1, tries to move it to T3: refused, so the market stays closed.
    let mut closed = a.clone();
    closed.active = false;
    closed.tier = None;
    let mut moved = a.clone();
    moved.tier = Some(Tier::T3);
    assert_eq!(
        s.write_markets(std::slice::from_ref(&closed))
            .await
            .expect("write"),
        Vec::<String>::new()
    );
    assert_eq!(
        s.write_markets(&[moved.clone(), b.clone()])
            .await
            .expect("write"),
        vec![a.condition_id.clone()],
        "a stale version is a conflict, reported by id; b (current) is written"
    );
    assert_eq!(
        s.get_market(&a.condition_id).await.expect("get_market"),
        Some(stored(&closed, 2)),
        "the market closed by one writer stays closed"
    );
    assert_eq!(
        s.write_markets(&[market(1, Some(Tier::T2), true)])
            .await
            .expect("write"),
        vec![a.condition_id.clone()],
        "a new record (version 0) never replaces an existing market"
    );
    assert_eq!(
        s.markets_due(Tier::T2, now).await.expect("markets_due"),
        vec![stored(&b, 2)],
        "a closed market leaves sampling"
    );
    assert_eq!(
        s.all_markets().await.expect("all_markets"),
        vec![
            stored(&closed, 2),
            stored(&b, 2),
            c.clone(),
            d.clone(),
            e.clone(),
            f,
            g
        ],
        "the closed market is still in the dimension, with its new values"
    );

    // Results: the closed market a and the inactive d await one; a pending result keeps a
    // market awaiting, a resolved or given-up one leaves the index. Every field round-trips.
    assert_eq!(
        s.markets_awaiting_result().await.expect("awaiting"),
        vec![stored(&closed, 2), d.clone()],
        "inactive markets without a final result, by condition_id"
    );
    let mut pending = stored(&closed, 2);
    pending.result = MarketResult::Pending {
        uma_status: Some("disputed".into()),
    };
    pending.closed_at = Some(at("2026-11-20T11:59:59Z"));
    pending.delisted = true;
    let mut resolved = d.clone();
    resolved.result = MarketResult::Resolved(Outcome {
        winner: Some(1),
        invalid: false,
        payouts: vec![Decimal::ZERO, Decimal::ONE],
        resolved_at: Some(at("2026-11-20T11:00:00Z")),
        learned_at: at("2026-11-20T11:15:00.5Z"),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    });
    let mut given_up = stored(&b, 2);
    given_up.active = false;
    given_up.tier = None;
    given_up.result = MarketResult::Unresolved;
    assert_eq!(
        s.write_markets(&[pending.clone(), resolved.clone(), given_up.clone()])
            .await
            .expect("write results"),
        Vec::<String>::new()
    );
    assert_eq!(
        s.markets_awaiting_result().await.expect("awaiting"),
        vec![stored(&pending, 3)],
        "pending awaits; resolved and unresolved do not"
    );
    assert_eq!(
        s.get_market(&d.condition_id).await.expect("get_market"),
        Some(stored(&resolved, 2)),
        "the outcome round-trips"
    );
    assert_eq!(
        s.get_market(&b.condition_id).await.expect("get_market"),
        Some(stored(&given_up, 3))
    );
    assert_eq!(
        s.markets_due(Tier::T3, later).await.expect("markets_due"),
        vec![],
        "an inactive market is not sampled"
    );

    // The live feed's markets: the active ones in T2–T4 by end date at the time asked. h
    // ends in 13 h (T1 now); two hours later it is 11 h from its end, in T2, with no write:
    // the next read has it. c (T3, then T4) and e (past its end) are in both reads; the
    // closed a and given-up b in neither, the expired f and the T0 g in neither.
    let h = ends(market(8, Some(Tier::T1), true), 13.0);
    assert_eq!(
        s.write_markets(std::slice::from_ref(&h))
            .await
            .expect("write"),
        Vec::<String>::new()
    );
    let h = stored(&h, 1);
    let ids = |ms: Vec<Market>| ms.into_iter().map(|m| m.condition_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.websocket_markets(now).await.expect("websocket_markets")),
        vec![c.condition_id.clone(), e.condition_id.clone()],
        "T2–T4 by end date at the read; h is still T1"
    );
    assert_eq!(
        s.websocket_markets(later).await.expect("websocket_markets"),
        vec![c.clone(), e, h],
        "h crossed into T2 between the reads; every field kept"
    );
    markets_ending_contract(s).await;
}

/// `markets_ending` reads the active markets whose end date lies in `(after, up_to]` to the
/// millisecond — the one just at `after` out, the one just at `up_to` in — by condition id,
/// with no upper bound when `up_to` is `None` and nothing when `up_to <= after`. Its markets
/// end on 2026-12-01, after every other market of the contract.
async fn markets_ending_contract(s: &impl MarketStore) {
    let t0 = at("2026-12-01T10:00:00Z");
    let t1 = at("2026-12-01T10:05:00Z");
    let ms = |t: Ts, d: i64| t + chrono::Duration::milliseconds(d);
    let ends = |n: u32, end: Ts, active: bool| Market {
        end_date: end,
        ..market(n, Some(Tier::T1), active)
    };
    // Condition ids in another order than the end dates.
    let at_after = ends(104, t0, true);
    let just_in = ends(103, ms(t0, 1), true);
    let at_up_to = ends(101, t1, true);
    let just_out = ends(102, ms(t1, 1), true);
    let inactive = ends(100, ms(t0, 60_000), false);
    let later = ends(105, at("2026-12-09T00:00:00Z"), true);
    let all = [&at_after, &just_in, &at_up_to, &just_out, &inactive, &later];
    assert_eq!(
        s.write_markets(&all.map(|m| m.clone()))
            .await
            .expect("write"),
        Vec::<String>::new()
    );
    let ids = |ms: Vec<Market>| ms.into_iter().map(|m| m.condition_id).collect::<Vec<_>>();
    let read = |after: Ts, up_to: Option<Ts>| async move {
        ids(s
            .markets_ending(after, up_to)
            .await
            .expect("markets_ending"))
    };
    assert_eq!(
        s.markets_ending(t0, Some(t1))
            .await
            .expect("markets_ending"),
        vec![stored(&at_up_to, 1), stored(&just_in, 1)],
        "(t0, t1]: the end at t1 in, the one at t0 out, the inactive one out; by condition_id, \
         every field kept"
    );
    assert_eq!(
        read(t1, None).await,
        ids(vec![just_out.clone(), later.clone()]),
        "no upper bound"
    );
    assert_eq!(
        read(ms(t0, -1), Some(t0)).await,
        ids(vec![at_after.clone()]),
        "a window of one millisecond"
    );
    assert_eq!(read(t1, Some(t1)).await, Vec::<String>::new(), "empty");
    assert_eq!(read(t1, Some(t0)).await, Vec::<String>::new(), "inverted");
}

fn entry(n: u32, price: &str) -> LatestEntry {
    LatestEntry {
        condition_id: format!("0x{n:064x}"),
        price: Some(dec(price)),
        best_bid: Some(dec("0.41")),
        best_ask: Some(dec("0.43")),
        spread: Some(dec("0.02")),
        volume_24h: Some(dec("98765.4321")),
        tick_ts: at("2026-11-20T00:00:00Z"),
        snapshot_count: 0,
        counted: 0,
    }
}

fn update(tier: Tier, tick: &str, members: &[u32], rows: &[(u32, &str)]) -> LatestUpdate {
    LatestUpdate {
        tier,
        tick_ts: at(tick),
        members: members.iter().map(|n| format!("0x{n:064x}")).collect(),
        rows: rows.iter().map(|(n, p)| entry(*n, p)).collect(),
    }
}

/// (condition id number, count, price) of each market of a tier's Latest values.
fn latest_counts(l: &LatestTier) -> Vec<(String, u64, Option<Decimal>)> {
    l.markets
        .iter()
        .map(|e| (e.condition_id.clone(), e.snapshot_count, e.price))
        .collect()
}

/// Each tick is applied once per market whatever the order ticks land in, a retry is not
/// counted twice, tiers are apart, and a tier holds 50,000 markets.
pub async fn latest_store_contract(s: &impl LatestStore) {
    assert_eq!(s.get_latest(Tier::T2).await.expect("get_latest"), None);
    let t0 = update(
        Tier::T2,
        "2026-11-20T12:00:00Z",
        &[1, 2],
        &[(1, "0.42"), (2, "0.5")],
    );
    let t1 = update(Tier::T2, "2026-11-20T12:01:00Z", &[1, 2], &[(1, "0.45")]);
    let t2 = update(Tier::T2, "2026-11-20T12:02:00Z", &[1], &[(1, "0.46")]);
    s.apply_latest(std::slice::from_ref(&t0))
        .await
        .expect("apply_latest");
    let first = s
        .get_latest(Tier::T2)
        .await
        .expect("get_latest")
        .expect("written");
    assert_eq!(first.tick_ts, at("2026-11-20T12:00:00Z"));
    assert_eq!(
        latest_counts(&first),
        vec![
            (format!("0x{:064x}", 1), 1, Some(dec("0.42"))),
            (format!("0x{:064x}", 2), 1, Some(dec("0.5")))
        ]
    );
    // 12:02 lands before the slower 12:01 (overlapping ticks), and 12:02 is retried.
    s.apply_latest(std::slice::from_ref(&t2))
        .await
        .expect("apply_latest");
    s.apply_latest(std::slice::from_ref(&t1))
        .await
        .expect("apply_latest");
    s.apply_latest(std::slice::from_ref(&t2))
        .await
        .expect("apply_latest retry");
    s.apply_latest(&[update(
        Tier::T4,
        "2026-11-20T12:01:15Z",
        &[9],
        &[(9, "0.9")],
    )])
    .await
    .expect("apply_latest");
    let t2_latest = s
        .get_latest(Tier::T2)
        .await
        .expect("get_latest")
        .expect("written");
    assert_eq!(t2_latest.tick_ts, at("2026-11-20T12:02:00Z"));
    assert_eq!(
        latest_counts(&t2_latest),
        vec![(format!("0x{:064x}", 1), 3, Some(dec("0.46")))],
        "three ticks counted once each, the newest values kept; market 2 left the tier at 12:02"
    );
    assert_eq!(
        latest_counts(
            &s.get_latest(Tier::T4)
                .await
                .expect("get_latest")
                .expect("T4")
        ),
        vec![(format!("0x{:064x}", 9), 1, Some(dec("0.9")))]
    );
    assert_eq!(s.get_latest(Tier::T3).await.expect("get_latest"), None);

    // Several ticks in one write: the newest first, then older ones that only count; the
    // same as applying them one by one, and applying them again changes nothing.
    let minute = [
        update(Tier::T3, "2026-11-20T12:01:00Z", &[1, 2], &[(1, "0.3")]),
        update(
            Tier::T3,
            "2026-11-20T12:00:30Z",
            &[1],
            &[(1, "0.2"), (2, "0.6")],
        ),
        update(Tier::T3, "2026-11-20T12:00:00Z", &[1, 2], &[(1, "0.1")]),
    ];
    s.apply_latest(&minute)
        .await
        .expect("apply_latest of a minute");
    s.apply_latest(&minute[1..])
        .await
        .expect("apply_latest again");
    s.apply_latest(&[]).await.expect("nothing to apply");
    let t3 = s
        .get_latest(Tier::T3)
        .await
        .expect("get_latest")
        .expect("T3");
    assert_eq!(t3.tick_ts, at("2026-11-20T12:01:00Z"));
    assert_eq!(
        latest_counts(&t3),
        vec![
            (format!("0x{:064x}", 1), 3, Some(dec("0.3"))),
            (format!("0x{:064x}", 2), 1, Some(dec("0.6")))
        ],
        "market 2, unobserved at 12:01, keeps the values and count of 12:00:30"
    );
    assert!(
        s.apply_latest(&[minute[0].clone(), t2.clone()])
            .await
            .is_err(),
        "two tiers in one write"
    );

    // 50,000 markets in one tier, then a second tick over all of them.
    let big = many_latest(Tier::T0, 50_000);
    s.apply_latest(std::slice::from_ref(&big))
        .await
        .expect("apply_latest of 50,000 markets");
    let mut next = big.clone();
    next.tick_ts = big.tick_ts + chrono::Duration::hours(1);
    s.apply_latest(std::slice::from_ref(&next))
        .await
        .expect("apply_latest of 50,000 markets");
    let got = s
        .get_latest(Tier::T0)
        .await
        .expect("get_latest")
        .expect("T0");
    assert_eq!(got.markets.len(), 50_000, "a tier holds 50,000 markets");
    assert!(
        got.markets
            .iter()
            .all(|e| e.snapshot_count == 2 && e.tick_ts == next.tick_ts),
        "every one of them counted twice, at the second tick"
    );
}

/// A tick of `n` markets with realistic values: condition ids as incompressible as real ones
/// (64 pseudo-random hex digits), 3-place prices, 6-place volumes.
pub fn many_latest(tier: Tier, n: u32) -> LatestUpdate {
    let tick = at("2026-11-20T22:00:00Z");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rows: Vec<LatestEntry> = (0..n)
        .map(|_| {
            let condition_id = format!(
                "0x{:016x}{:016x}{:016x}{:016x}",
                next(),
                next(),
                next(),
                next()
            );
            let p = i64::try_from(next() % 1000).unwrap_or(500);
            let volume = i64::try_from(next() % 1_000_000_000_000).unwrap_or(0);
            LatestEntry {
                condition_id,
                price: Some(Decimal::new(p, 3)),
                best_bid: Some(Decimal::new((p - 5).max(0), 3)),
                best_ask: Some(Decimal::new((p + 5).min(1000), 3)),
                spread: Some(Decimal::new(1, 2)),
                volume_24h: Some(Decimal::new(volume, 6)),
                tick_ts: tick,
                snapshot_count: 0,
                counted: 0,
            }
        })
        .collect();
    LatestUpdate {
        tier,
        tick_ts: tick,
        members: rows.iter().map(|r| r.condition_id.clone()).collect(),
        rows,
    }
}

/// A task run of the contract, started at `started`. `id` is time first, as every task's is
/// (`20261120T120000Z#snapshot#T2`); the task is its second part.
pub fn task_run(id: &str, started: &str, status: TaskStatus, written: u64) -> TaskRun {
    TaskRun {
        id: id.to_string(),
        task: id.split('#').nth(1).unwrap_or(id).to_string(),
        started_at: at(started),
        finished_at: at(started) + chrono::Duration::milliseconds(1234),
        status,
        detail: serde_json::json!({ "rows_written": written, "rejected": { "price": 1 } }),
        error: (status == TaskStatus::Failed).then(|| "gamma: timeout".to_string()),
    }
}

fn transition(n: u32, from: Option<Tier>, to: Option<Tier>, when: &str) -> TierTransition {
    TierTransition {
        condition_id: format!("0x{n:064x}"),
        from_tier: from,
        to_tier: to,
        at: at(when),
        reason: "tier change".into(),
        hours_to_close: Some(-1.5),
    }
}

fn coverage(tier: Tier, tick: &str, written: u32) -> Coverage {
    Coverage {
        tier,
        tick_ts: at(tick),
        expected: 120,
        written,
        missing: 120 - written,
        skipped: false,
        failed: written == 0,
    }
}

/// A shard heartbeat of the contract's day.
pub fn heartbeat(shard: &str, when: &str, assets: u32, reconnects: u64) -> ShardHeartbeat {
    ShardHeartbeat {
        shard_id: shard.to_string(),
        at: at(when),
        assets,
        last_event_at: Some(at(when) - chrono::Duration::milliseconds(1500)),
        reconnects,
    }
}

/// Task runs replace by id and list newest first; transitions list newest first; coverage
/// replaces by (tier, tick) and lists by tick then tier; heartbeats are those of the last
/// round, which replaces the one before whole, listed by shard id.
pub async fn ops_store_contract(s: &impl OpsStore) {
    let run1 = task_run(
        "20261120T120000Z#snapshot#T2",
        "2026-11-20T12:00:00.250Z",
        TaskStatus::Partial,
        99,
    );
    let run2 = task_run(
        "20261120T120500Z#discovery",
        "2026-11-20T12:05:00.100Z",
        TaskStatus::Ok,
        5,
    );
    s.put_task_run(&run1).await.expect("put_task_run");
    s.put_task_run(&run2).await.expect("put_task_run");
    let day = at("2026-11-20T00:00:00Z");
    assert_eq!(
        s.task_runs_since(day).await.expect("task_runs_since"),
        vec![run2.clone(), run1.clone()],
        "newest started_at first"
    );
    let mut retry = run1.clone();
    retry.status = TaskStatus::Ok;
    retry.detail = serde_json::json!({ "rows_written": 120 });
    s.put_task_run(&retry).await.expect("put_task_run");
    assert_eq!(
        s.task_runs_since(day).await.expect("task_runs_since"),
        vec![run2.clone(), retry.clone()],
        "a retry with the same id replaces the run"
    );
    assert_eq!(
        s.task_runs_since(at("2026-11-20T12:05:00.100Z"))
            .await
            .expect("task_runs_since"),
        vec![run2.clone()],
        "since is inclusive and reads by time"
    );

    // Task states: the lease keeps a second run out until the first records its run.
    assert_eq!(
        s.task_state("discovery")
            .await
            .expect("task_state")
            .map(|t| t.last_run_id),
        Some(Some(run2.id.clone()))
    );
    let t = at("2026-11-20T12:10:00Z");
    assert!(s
        .claim_task("discovery", t, t + chrono::Duration::minutes(5))
        .await
        .expect("claim"));
    assert!(
        !s.claim_task(
            "discovery",
            t + chrono::Duration::seconds(30),
            t + chrono::Duration::minutes(6)
        )
        .await
        .expect("claim"),
        "held by the first run"
    );
    let mut failed = task_run(
        "20261120T121000Z#discovery",
        "2026-11-20T12:10:00Z",
        TaskStatus::Failed,
        0,
    );
    s.put_task_run(&failed).await.expect("put_task_run");
    failed.id = "20261120T121200Z#discovery".into();
    failed.started_at = at("2026-11-20T12:12:00Z");
    failed.finished_at = at("2026-11-20T12:12:01Z");
    s.put_task_run(&failed).await.expect("put_task_run");
    let state = s
        .task_state("discovery")
        .await
        .expect("task_state")
        .expect("state");
    assert_eq!(state.consecutive_failures, 2);
    assert_eq!(state.last_status, Some(TaskStatus::Failed));
    assert_eq!(state.last_error.as_deref(), Some("gamma: timeout"));
    assert_eq!(
        state.last_success_at,
        Some(run2.finished_at),
        "the last run that did not fail"
    );
    assert_eq!(state.first_seen_at, Some(run2.started_at));
    assert!(
        s.claim_task(
            "discovery",
            t + chrono::Duration::seconds(31),
            t + chrono::Duration::minutes(6)
        )
        .await
        .expect("claim"),
        "recording a run released the lease"
    );
    assert!(
        s.claim_task("retier", t, t + chrono::Duration::minutes(1))
            .await
            .expect("claim"),
        "a task never seen can be claimed"
    );
    assert_eq!(
        s.task_state("retier")
            .await
            .expect("task_state")
            .and_then(|t| t.first_seen_at),
        Some(t),
        "the first claim marks when the task was first seen"
    );
    let names: Vec<String> = s
        .task_states()
        .await
        .expect("task_states")
        .into_iter()
        .map(|t| t.task)
        .collect();
    assert_eq!(
        names,
        ["discovery", "retier", "snapshot"],
        "every task, by name"
    );
    assert_eq!(
        s.task_state("snapshot")
            .await
            .expect("task_state")
            .and_then(|t| t.last_status),
        Some(TaskStatus::Ok),
        "the retried snapshot run is its task's last run"
    );

    // Pages: newest id first, at most `limit`, from before the cursor's id, filtered.
    let run3 = task_run(
        "20261120T121000Z#snapshot#T4",
        "2026-11-20T12:10:00.050Z",
        TaskStatus::Failed,
        0,
    );
    s.put_task_run(&run3).await.expect("put_task_run");
    // Every run now, newest id first: 12:12 discovery (failed), 12:10 snapshot T4 (failed),
    // 12:10 discovery (failed), 12:05 discovery, 12:00 snapshot T2 (retried, ok).
    let page = |before: Option<&str>, task: Option<&str>, status, limit| {
        let q = crate::ports::RunQuery {
            since: day,
            before: before.map(str::to_string),
            task: task.map(str::to_string),
            status,
            limit,
        };
        async move {
            let runs = s.task_runs_page(&q).await.expect("task_runs_page");
            runs.into_iter().map(|r| r.id).collect::<Vec<String>>()
        }
    };
    assert_eq!(
        page(None, None, None, 2).await,
        ["20261120T121200Z#discovery", "20261120T121000Z#snapshot#T4"],
        "the newest 2"
    );
    assert_eq!(
        page(Some("20261120T121000Z#discovery"), None, None, 5).await,
        [run2.id.as_str(), retry.id.as_str()],
        "after the cursor's run"
    );
    assert_eq!(
        page(None, Some("snapshot"), None, 5).await,
        [run3.id.as_str(), retry.id.as_str()],
        "one task's"
    );
    assert_eq!(
        page(None, Some("snapshot"), Some(TaskStatus::Ok), 5).await,
        [retry.id.as_str()],
        "one status"
    );
    assert_eq!(
        page(Some(&run2.id), Some("discovery"), None, 5).await,
        Vec::<String>::new(),
        "nothing older of that task"
    );
    assert_eq!(page(None, None, None, 0).await, Vec::<String>::new());

    let x = transition(1, Some(Tier::T1), Some(Tier::T2), "2026-11-20T06:00:00Z");
    let y = transition(2, Some(Tier::T3), Some(Tier::T4), "2026-11-20T17:00:00Z");
    let z = transition(3, Some(Tier::T4), None, "2026-11-20T18:00:00Z");
    s.put_transitions(&[x.clone(), y.clone()])
        .await
        .expect("put_transitions");
    s.put_transitions(std::slice::from_ref(&z))
        .await
        .expect("put_transitions");
    s.put_transitions(std::slice::from_ref(&x))
        .await
        .expect("put_transitions retry");
    assert_eq!(
        s.recent_transitions(10).await.expect("recent_transitions"),
        vec![z.clone(), y.clone(), x],
        "newest first, a retried transition not duplicated"
    );
    assert_eq!(
        s.recent_transitions(2).await.expect("recent_transitions"),
        vec![z.clone(), y]
    );
    // Two changes of one market in one run (closed, then resolved) are both kept.
    let closed = TierTransition {
        reason: "closed".into(),
        ..z.clone()
    };
    let resolved = TierTransition {
        reason: "resolved".into(),
        from_tier: None,
        hours_to_close: None,
        ..z.clone()
    };
    s.put_transitions(&[closed.clone(), resolved.clone()])
        .await
        .expect("put_transitions");
    assert_eq!(
        s.recent_transitions(3).await.expect("recent_transitions"),
        vec![z, resolved, closed],
        "same market and instant, told apart by reason (newest first, then by key descending)"
    );

    let t2_a = coverage(Tier::T2, "2026-11-20T12:00:00Z", 100);
    let t3_a = coverage(Tier::T3, "2026-11-20T12:00:00Z", 120);
    let t2_b = coverage(Tier::T2, "2026-11-20T12:01:00Z", 119);
    let old = coverage(Tier::T4, "2026-11-20T11:59:45Z", 1);
    for c in [&t3_a, &t2_b, &t2_a, &old] {
        s.put_coverage(c).await.expect("put_coverage");
    }
    let t2_a_retry = coverage(Tier::T2, "2026-11-20T12:00:00Z", 118);
    s.put_coverage(&t2_a_retry).await.expect("put_coverage");
    assert_eq!(
        s.coverage_since(at("2026-11-20T12:00:00Z"))
            .await
            .expect("coverage_since"),
        vec![t2_a_retry, t3_a, t2_b.clone()],
        "since is inclusive; a retry replaced its (tier, tick); ordered by tick then tier"
    );
    assert_eq!(
        s.coverage_since(at("2026-11-20T12:00:00.001Z"))
            .await
            .expect("coverage_since"),
        vec![t2_b]
    );

    heartbeat_contract(s).await;
}

/// Heartbeats come in rounds, each replacing the last whole: a shard the feed closed drops out
/// at its next round, a restarted feed's first round leaves none of the last run's shards.
async fn heartbeat_contract(s: &impl OpsStore) {
    use crate::ports::MAX_ROUND_HEARTBEATS;
    let read = move || async move { s.heartbeats().await.expect("heartbeats") };
    assert_eq!(read().await, vec![]);
    let mut idle = heartbeat("shard-00", "2026-11-20T12:00:00.500Z", 0, 0);
    idle.last_event_at = None;
    let s02 = heartbeat("shard-02", "2026-11-20T12:00:01Z", 200, 3);
    let s01 = heartbeat(
        "shard-01",
        "2026-11-20T12:00:02Z",
        200,
        u64::from(u32::MAX) + 1,
    );
    s.put_heartbeats(&[s02.clone(), idle.clone(), s01.clone()])
        .await
        .expect("put_heartbeats");
    assert_eq!(
        read().await,
        vec![idle, s01, s02],
        "the round's shards, by shard id, every field kept"
    );

    // The feed closed shard-01 and opened shard-03.
    let s00 = heartbeat("shard-00", "2026-11-20T12:00:15.500Z", 120, 1);
    let s02 = heartbeat("shard-02", "2026-11-20T12:00:15.500Z", 190, 3);
    let s03 = heartbeat("shard-03", "2026-11-20T12:00:15.500Z", 40, 0);
    s.put_heartbeats(&[s00, s02.clone(), s03.clone()])
        .await
        .expect("put_heartbeats");
    let next = read().await;
    assert_eq!(
        next.iter().map(|h| h.shard_id.as_str()).collect::<Vec<_>>(),
        ["shard-00", "shard-02", "shard-03"],
        "the next round replaces the last whole: the closed shard-01 dropped out"
    );
    assert_eq!(next[1..], [s02, s03]);

    // A restarted feed numbers its shards from 1 again, fewer of them.
    let restarted = heartbeat("shard-01", "2026-11-20T12:01:00Z", 180, 0);
    s.put_heartbeats(std::slice::from_ref(&restarted))
        .await
        .expect("put_heartbeats");
    assert_eq!(
        read().await,
        vec![restarted.clone()],
        "none of the last run's shards is left"
    );

    // Refused rounds write nothing.
    let too_many: Vec<_> = (0..=MAX_ROUND_HEARTBEATS)
        .map(|i| heartbeat(&format!("shard-{i:04}"), "2026-11-20T12:01:15Z", 2, 0))
        .collect();
    for (round, why) in [
        (&too_many[..], "over MAX_ROUND_HEARTBEATS"),
        (&[restarted.clone(), restarted.clone()][..], "a shard twice"),
    ] {
        match s.put_heartbeats(round).await {
            Err(crate::StoreError::Encode(_)) => {}
            other => panic!("a round with {why}: {other:?}"),
        }
        assert_eq!(
            read().await,
            vec![restarted.clone()],
            "{why}: nothing written"
        );
    }

    // The largest round, with the longest ids the feed makes (`shard-{u32}`) and wide numbers.
    let largest: Vec<_> = (0..MAX_ROUND_HEARTBEATS)
        .map(|i| {
            let id = format!("shard-{}", u32::MAX as usize - i);
            let mut hb = heartbeat(&id, "2026-11-20T12:01:30.999Z", 500, i64::MAX as u64);
            hb.assets = u32::MAX;
            hb
        })
        .collect();
    s.put_heartbeats(&largest).await.expect("the largest round");
    let mut sorted = largest;
    sorted.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    assert_eq!(read().await, sorted);

    s.put_heartbeats(&[]).await.expect("put_heartbeats");
    assert_eq!(
        read().await,
        vec![],
        "a feed with no shard open leaves none"
    );
}

/// Objects replace by key, list by plain string prefix in sorted order, and a missing key is
/// `None`.
pub async fn object_store_contract(s: &impl ObjectStore) {
    let k2 = "snapshots/tier=2/dt=2026-11-20/20261120T223000Z.parquet";
    let k2b = "snapshots/tier=2/dt=2026-11-20/20261120T222900Z.parquet";
    let k4 = "snapshots/tier=4/dt=2026-11-21/20261121T000015Z.parquet";
    let ob = "orderbooks/tier=2/dt=2026-11-20/20261120T223000Z.parquet";
    assert_eq!(s.get_object(k2).await.expect("get_object"), None);

    s.put_object(k2, b"first".to_vec(), "application/vnd.apache.parquet")
        .await
        .expect("put_object");
    s.put_object(
        k2,
        b"second, longer".to_vec(),
        "application/vnd.apache.parquet",
    )
    .await
    .expect("put_object");
    assert_eq!(
        s.get_object(k2).await.expect("get_object").as_deref(),
        Some(&b"second, longer"[..]),
        "a put replaces the object"
    );
    for k in [k4, ob, k2b] {
        s.put_object(k, k.as_bytes().to_vec(), "application/vnd.apache.parquet")
            .await
            .expect("put_object");
    }
    assert_eq!(
        s.list_objects("snapshots/").await.expect("list_objects"),
        vec![k2b, k2, k4]
    );
    assert_eq!(
        s.list_objects("snapshots/tier=2/dt=2026-11-20/20261120T22")
            .await
            .expect("list_objects"),
        vec![k2b, k2],
        "the prefix may end mid-name"
    );
    assert_eq!(
        s.list_objects("snap").await.expect("list_objects"),
        vec![k2b, k2, k4]
    );
    assert_eq!(
        s.list_objects("trades/").await.expect("list_objects"),
        Vec::<String>::new()
    );
    assert_eq!(
        s.list_objects("").await.expect("list_objects"),
        vec![ob, k2b, k2, k4]
    );
    let sized: Vec<(String, Option<u64>)> = s
        .list_objects_sized("snapshots/")
        .await
        .expect("list_objects_sized")
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        sized,
        vec![
            (k2b.to_string(), Some(k2b.len() as u64)),
            (k2.to_string(), Some(b"second, longer".len() as u64)),
            (k4.to_string(), Some(k4.len() as u64)),
        ],
        "the sized listing: the same keys, each with its size in bytes"
    );
    assert_eq!(
        s.get_object("snapshots/tier=2").await.expect("get_object"),
        None,
        "a prefix is not an object"
    );
    // The tail: the last bytes and the whole size, without the rest (a Parquet footer).
    let tail = |bytes: &[u8], size: u64| {
        Some(crate::ports::ObjectTail {
            bytes: bytes.to_vec(),
            size,
        })
    };
    assert_eq!(
        s.get_tail(k2, 6).await.expect("get_tail"),
        tail(b"longer", 14)
    );
    assert_eq!(
        s.get_tail(k2, 1000).await.expect("get_tail"),
        tail(b"second, longer", 14),
        "longer than the object: all of it"
    );
    assert_eq!(
        s.get_tail(ob, 0).await.expect("get_tail"),
        tail(b"", ob.len() as u64)
    );
    assert_eq!(s.get_tail("trades/none", 8).await.expect("get_tail"), None);
    // A range: the bytes asked for, cut at the object's end.
    let range = |r: std::ops::Range<u64>| s.get_range(k2, r);
    assert_eq!(
        range(8..14).await.expect("get_range").as_deref(),
        Some(&b"longer"[..])
    );
    assert_eq!(
        range(0..6).await.expect("get_range").as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(
        range(8..100).await.expect("get_range").as_deref(),
        Some(&b"longer"[..])
    );
    assert_eq!(
        range(20..30).await.expect("get_range").as_deref(),
        Some(&b""[..])
    );
    assert_eq!(
        s.get_range("trades/none", 0..8).await.expect("get_range"),
        None
    );
    assert_eq!(
        s.get_tail("snapshots/tier=2", 8).await.expect("get_tail"),
        None,
        "a prefix is not an object"
    );
    put_file_contract(s).await;
}

/// Deleting objects: the keys named go (listing and reading them find nothing), the others
/// stay, a key with no object is no error, and deleting again changes nothing. Leaves the
/// store's objects as it found them.
/// `put_file` stores the file's bytes (3 MiB here: several chunks of a streamed body), replaces
/// what was there, and fails cleanly, writing nothing, for a file that is not there.
async fn put_file_contract(s: &impl ObjectStore) {
    let key = "raw_ws/dt=2026-11-20/20261120T22-1-0-1.parquet";
    let path = std::env::temp_dir().join(format!(
        "polytape-put-file-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let body: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    s.put_object(key, b"before".to_vec(), "application/vnd.apache.parquet")
        .await
        .expect("put_object");
    std::fs::write(&path, &body).expect("writing the temporary file");
    s.put_file(key, &path, "application/vnd.apache.parquet")
        .await
        .expect("put_file");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        s.get_object(key).await.expect("get_object").as_deref(),
        Some(&body[..]),
        "put_file stores the file's bytes, replacing the object"
    );
    let missing = path.with_extension("missing");
    assert!(s
        .put_file("raw_ws/dt=2026-11-20/missing.parquet", &missing, "x")
        .await
        .is_err());
    assert_eq!(
        s.get_object("raw_ws/dt=2026-11-20/missing.parquet")
            .await
            .expect("get_object"),
        None
    );
}

pub async fn object_deleter_contract(s: &impl ObjectDeleter) {
    let dir = "trades/dt=2026-11-20/";
    let keys: Vec<String> = [
        "20261120T21-1-0-1",
        "20261120T21-1-0-9",
        "20261120T22-1-0-20",
    ]
    .iter()
    .map(|n| format!("{dir}{n}.parquet"))
    .collect();
    for k in &keys {
        s.put_object(k, k.as_bytes().to_vec(), "application/vnd.apache.parquet")
            .await
            .expect("put_object");
    }
    let gone = vec![
        keys[0].clone(),
        keys[2].clone(),
        format!("{dir}20261120T23-never-written.parquet"),
    ];
    s.delete_objects(&gone).await.expect("delete_objects");
    assert_eq!(
        s.list_objects(dir).await.expect("list_objects"),
        vec![keys[1].clone()],
        "the keys named are gone, the other stays; a missing key is no error"
    );
    assert_eq!(s.get_object(&keys[0]).await.expect("get_object"), None);
    s.delete_objects(&gone).await.expect("deleting again");
    s.delete_objects(&[]).await.expect("deleting nothing");
    assert_eq!(
        s.get_object(&keys[1]).await.expect("get_object").as_deref(),
        Some(keys[1].as_bytes())
    );
    s.delete_objects(&keys[1..2]).await.expect("delete_objects");
    assert!(s.list_objects(dir).await.expect("list_objects").is_empty());
}

/// Every tick enqueued arrives once, delayed from the dispatch time to its own time, rounded up
/// to the second so never early (a tick already due at once); an empty call is fine. `received(n)` returns the `(tick, delay in seconds)` pairs that arrived, waiting
/// for up to `n` of them: a local queue measures the delay, an SQS test reports the
/// `DelaySeconds` each message was sent with (SQS cannot report it back).
pub async fn tick_queue_contract<Q, F, Fut>(q: &Q, mut received: F)
where
    Q: TickQueue,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Vec<(TickId, u32)>>,
{
    let minute = at("2026-11-20T10:00:00Z");
    // The dispatcher runs 10.4 s late: whole-second delays round up, so no tick comes early.
    let now = minute + chrono::Duration::milliseconds(10_400);
    q.enqueue_ticks(&[], now).await.expect("empty enqueue");
    // Two minutes at the top of an hour: 9 + 7 ticks, more than one SQS batch.
    let mut ticks = polytape_core::schedule::due_in_minute(minute);
    ticks.extend(polytape_core::schedule::due_in_minute(
        minute + chrono::Duration::minutes(1),
    ));
    assert_eq!(ticks.len(), 16);
    q.enqueue_ticks(&ticks, now).await.expect("enqueue_ticks");

    let mut got = received(ticks.len()).await;
    got.sort();
    let mut want: Vec<(TickId, u32)> = ticks
        .iter()
        .map(|t| {
            let until_ms = (t.tick_ts - now).num_milliseconds().max(0);
            let until = (until_ms + 999) / 1000;
            (*t, u32::try_from(until).unwrap_or(u32::MAX))
        })
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "each tick arrives once, at its own time counted from the dispatch"
    );
    let delays: std::collections::BTreeSet<u32> = got.iter().map(|(_, d)| *d).collect();
    assert_eq!(
        delays,
        [0, 5, 20, 35, 50, 65, 80, 95].into(),
        "10.4 s late: the :00 tick at once, the rest at their second (never before it), not 10 s after it"
    );
}
