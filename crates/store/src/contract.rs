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

use crate::ports::{LatestStore, MarketStore, ObjectStore, OpsStore, TickQueue};
use polytape_core::ops::{
    Coverage, LatestEntry, LatestTier, ShardHeartbeat, TaskRun, TaskStatus, TierTransition,
};
use polytape_core::{Market, TickId, Tier, Ts};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;

/// Runs every contract against a store that implements all four ports.
pub async fn all<S>(s: &S)
where
    S: MarketStore + LatestStore + OpsStore + ObjectStore,
{
    market_store_contract(s).await;
    latest_store_contract(s).await;
    ops_store_contract(s).await;
    object_store_contract(s).await;
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
        resolved: false,
        outcome: None,
        first_seen: at("2026-11-19T08:15:30.123Z"),
        category: Some("Crypto".into()),
        neg_risk: n.is_multiple_of(2),
        volume_24h: Some(dec("123456.789012345678")),
    }
}

/// Upserts are one idempotent batch that fully replaces each market; tier queries see only
/// active markets of that tier, ordered by condition id; `all_markets` sees every market.
pub async fn market_store_contract(s: &impl MarketStore) {
    let a = market(1, Some(Tier::T2), true);
    let b = market(2, Some(Tier::T2), true);
    let c = market(3, Some(Tier::T3), true);
    let d = market(4, Some(Tier::T2), false);
    let mut e = market(5, None, true);
    e.slug = None;
    e.category = None;
    e.volume_24h = None;
    let all = vec![c.clone(), a.clone(), e.clone(), d.clone(), b.clone()];

    s.upsert_markets(&[]).await.expect("empty upsert");
    assert_eq!(s.all_markets().await.expect("all_markets"), vec![]);
    for round in 0..2 {
        s.upsert_markets(&all).await.expect("upsert markets");
        assert_eq!(
            s.markets_in_tier(Tier::T2).await.expect("markets_in_tier"),
            vec![a.clone(), b.clone()],
            "round {round}: T2 holds the active T2 markets, by condition_id, every field kept"
        );
        assert_eq!(
            s.markets_in_tier(Tier::T3).await.expect("markets_in_tier"),
            vec![c.clone()]
        );
        assert_eq!(
            s.markets_in_tier(Tier::T0).await.expect("markets_in_tier"),
            vec![]
        );
        assert_eq!(
            s.active_markets().await.expect("active_markets"),
            vec![a.clone(), b.clone(), c.clone(), e.clone()],
            "round {round}: inactive markets are not active"
        );
        assert_eq!(
            s.all_markets().await.expect("all_markets"),
            vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()],
            "round {round}: every market, active or not, by condition_id, once"
        );
        assert_eq!(
            s.count_by_tier().await.expect("count_by_tier"),
            BTreeMap::from([(None, 1), (Some(Tier::T2), 2), (Some(Tier::T3), 1)]),
            "round {round}"
        );
    }
    assert_eq!(
        s.get_market(&d.condition_id).await.expect("get_market"),
        Some(d.clone()),
        "an inactive market is still readable by id"
    );
    assert_eq!(s.get_market("0xmissing").await.expect("get_market"), None);

    // Re-tier: a moves to T3, b ends (no tier, inactive) and resolves.
    let mut a2 = a.clone();
    a2.tier = Some(Tier::T3);
    let mut b2 = b.clone();
    b2.tier = None;
    b2.active = false;
    b2.resolved = true;
    b2.outcome = Some("Up".into());
    s.upsert_markets(&[a2.clone(), b2.clone()])
        .await
        .expect("upsert changes");
    assert_eq!(
        s.markets_in_tier(Tier::T2).await.expect("markets_in_tier"),
        vec![],
        "a left T2 and b is no longer active"
    );
    assert_eq!(
        s.markets_in_tier(Tier::T3).await.expect("markets_in_tier"),
        vec![a2.clone(), c.clone()]
    );
    assert_eq!(
        s.count_by_tier().await.expect("count_by_tier"),
        BTreeMap::from([(None, 1), (Some(Tier::T3), 2)])
    );
    assert_eq!(
        s.get_market(&b2.condition_id).await.expect("get_market"),
        Some(b2.clone())
    );
    assert_eq!(
        s.all_markets().await.expect("all_markets"),
        vec![a2, b2, c, d, e],
        "the ended market is still in the dimension, with its new values"
    );
}

fn latest(tier: Tier, tick: &str, price: &str, count: u64) -> LatestTier {
    LatestTier {
        tier,
        tick_ts: at(tick),
        markets: vec![
            LatestEntry {
                condition_id: format!("0x{:064x}", 1),
                price: Some(dec(price)),
                best_bid: Some(dec("0.41")),
                best_ask: Some(dec("0.43")),
                spread: Some(dec("0.02")),
                volume_24h: Some(dec("98765.4321")),
                tick_ts: at(tick),
                snapshot_count: count,
            },
            LatestEntry {
                condition_id: format!("0x{:064x}", 2),
                price: None,
                best_bid: None,
                best_ask: None,
                spread: None,
                volume_24h: None,
                tick_ts: at(tick),
                snapshot_count: 0,
            },
        ],
    }
}

/// One Latest item per tier; a put replaces the tier's item when its tick is the same or newer,
/// keeps a newer tick's item (and says so), and leaves other tiers alone.
pub async fn latest_store_contract(s: &impl LatestStore) {
    assert_eq!(s.get_latest(Tier::T2).await.expect("get_latest"), None);
    let first = latest(Tier::T2, "2026-11-20T12:00:00Z", "0.42", 7);
    assert!(
        s.put_latest(&first).await.expect("put_latest"),
        "the first item is written"
    );
    assert_eq!(
        s.get_latest(Tier::T2).await.expect("get_latest"),
        Some(first.clone())
    );
    let second = latest(Tier::T2, "2026-11-20T12:01:00Z", "0.45", 8);
    assert!(s.put_latest(&second).await.expect("put_latest"));
    let t4 = latest(Tier::T4, "2026-11-20T12:01:15Z", "0.9", 1);
    assert!(s.put_latest(&t4).await.expect("put_latest"));
    assert_eq!(
        s.get_latest(Tier::T2).await.expect("get_latest"),
        Some(second.clone()),
        "the newer tick replaced the tier's item"
    );
    assert_eq!(s.get_latest(Tier::T4).await.expect("get_latest"), Some(t4));
    assert_eq!(s.get_latest(Tier::T3).await.expect("get_latest"), None);

    // A late tick (a slow run, a redelivered message) after a newer one: kept out.
    assert!(
        !s.put_latest(&first)
            .await
            .expect("put_latest of an older tick"),
        "an older tick is not written and says so"
    );
    assert_eq!(
        s.get_latest(Tier::T2).await.expect("get_latest"),
        Some(second.clone()),
        "the newer tick's item is kept"
    );
    // A retry of the same tick replaces it (its values may have changed).
    let retry = latest(Tier::T2, "2026-11-20T12:01:00Z", "0.46", 9);
    assert!(
        s.put_latest(&retry)
            .await
            .expect("put_latest of the same tick"),
        "the same tick is written again"
    );
    assert_eq!(
        s.get_latest(Tier::T2).await.expect("get_latest"),
        Some(retry),
        "a retry of the same tick replaced the item"
    );

    let big = many_latest(Tier::T0, 3000);
    assert!(s
        .put_latest(&big)
        .await
        .expect("put_latest of 3,000 markets"));
    assert_eq!(
        s.get_latest(Tier::T0).await.expect("get_latest"),
        Some(big),
        "a tier of 3,000 markets fits one item"
    );
}

/// A Latest item of `n` markets with realistic values: condition ids as incompressible as
/// real ones (64 pseudo-random hex digits), 3-place prices, 6-place volumes, counts.
pub fn many_latest(tier: Tier, n: u32) -> LatestTier {
    let tick = at("2026-11-20T22:00:00Z");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let markets = (0..n)
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
                snapshot_count: next() % 5000,
            }
        })
        .collect();
    LatestTier {
        tier,
        tick_ts: tick,
        markets,
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
    }
}

fn transition(n: u32, from: Option<Tier>, to: Option<Tier>, when: &str) -> TierTransition {
    TierTransition {
        condition_id: format!("0x{n:064x}"),
        from_tier: from,
        to_tier: to,
        at: at(when),
        reason: "time to close".into(),
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
/// replaces by (tier, tick) and lists by tick then tier; heartbeats are one per shard, the
/// newest replacing, listed by shard id.
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
    assert_eq!(
        s.recent_task_runs(10).await.expect("recent_task_runs"),
        vec![run2.clone(), run1.clone()],
        "newest started_at first"
    );
    let mut retry = run1.clone();
    retry.status = TaskStatus::Ok;
    retry.detail = serde_json::json!({ "rows_written": 120 });
    s.put_task_run(&retry).await.expect("put_task_run");
    assert_eq!(
        s.recent_task_runs(10).await.expect("recent_task_runs"),
        vec![run2.clone(), retry],
        "a retry with the same id replaces the run"
    );
    assert_eq!(
        s.recent_task_runs(1).await.expect("recent_task_runs"),
        vec![run2]
    );

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
        vec![z, y]
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

    assert_eq!(s.heartbeats().await.expect("heartbeats"), vec![]);
    let mut idle = heartbeat("shard-00", "2026-11-20T12:00:00.500Z", 0, 0);
    idle.last_event_at = None;
    let s02 = heartbeat("shard-02", "2026-11-20T12:00:01Z", 200, 3);
    let s01 = heartbeat(
        "shard-01",
        "2026-11-20T12:00:02Z",
        200,
        u64::from(u32::MAX) + 1,
    );
    for hb in [&s02, &idle, &s01] {
        s.put_heartbeat(hb).await.expect("put_heartbeat");
    }
    assert_eq!(
        s.heartbeats().await.expect("heartbeats"),
        vec![idle, s01.clone(), s02.clone()],
        "one per shard, by shard id, every field kept"
    );
    let s00 = heartbeat("shard-00", "2026-11-20T12:00:30.500Z", 120, 1);
    s.put_heartbeat(&s00).await.expect("put_heartbeat");
    assert_eq!(
        s.heartbeats().await.expect("heartbeats"),
        vec![s00, s01, s02],
        "a shard's next heartbeat replaces its previous one"
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
    assert_eq!(
        s.get_object("snapshots/tier=2").await.expect("get_object"),
        None,
        "a prefix is not an object"
    );
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
