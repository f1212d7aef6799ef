//! The client against the simulated Polymarket (`polytape-sim`) over real HTTP on 127.0.0.1:
//! pagination, server-side filters, chunking, retries, fault classification, rejected records,
//! schema drift, honest books, refused ids, URL and page caps, deadlines (on tokio's paused
//! clock: the simulator's latency is a tokio sleep), and the response-size cap — asserted from
//! the client's results *and* the simulator's request log and truth.

// Test helpers unwrap too: a panic with the value is the failure report.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use polytape_core::snapshot::Observation;
use polytape_core::{BookFeatures, Snapshot, TickId, Tier};
use polytape_polymarket::{ClientConfig, Endpoints, FetchError, KeysetQuery, PolymarketClient};
use polytape_sim::{BadLevel, Endpoint, Fault, FaultKind, MarketKind, SimConfig, SimHandle};
use reqwest::Url;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

async fn sim_with(cfg: SimConfig) -> SimHandle {
    polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn sim() -> SimHandle {
    sim_with(SimConfig::new(42)).await
}

fn config(sim: &SimHandle) -> ClientConfig {
    ClientConfig {
        endpoints: Endpoints {
            gamma: sim.gamma_url(),
            clob: sim.clob_url(),
            data: sim.data_url(),
            ws: sim.ws_url(),
        },
        // Fast retries: the tests are about *whether* and *how often*, not the wait.
        backoff_base: Duration::from_millis(5),
        ..ClientConfig::default()
    }
}

fn client(sim: &SimHandle) -> PolymarketClient {
    PolymarketClient::new(config(sim)).unwrap()
}

/// Query pairs of a logged request URI.
fn query(uri: &str) -> Vec<(String, String)> {
    Url::parse(&format!("http://sim{uri}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Discovery's window: open markets ending within the next 336 h (whole seconds, as sent).
fn discovery_query(sim: &SimHandle, limit: u32) -> KeysetQuery {
    let now = sim.now().trunc_subsecs(0);
    KeysetQuery {
        closed: Some(false),
        end_date_min: Some(now),
        end_date_max: Some(now + ChronoDuration::hours(336)),
        limit,
        extra: Vec::new(),
    }
}

#[tokio::test]
async fn given_filters_when_discovering_then_every_page_is_read_and_filters_are_sent_server_side() {
    let sim = sim().await;
    let c = client(&sim);
    let q = discovery_query(&sim, 25);
    let listing = c.keyset_markets(&q).await.unwrap();

    let (min, max) = (q.end_date_min.unwrap(), q.end_date_max.unwrap());
    let expected: HashSet<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| !m.closed && m.end_date >= min && m.end_date <= max)
        .map(|m| m.id.clone())
        .collect();
    let got: HashSet<String> = listing
        .items
        .iter()
        .map(|m| m.id.clone().unwrap())
        .collect();
    assert!(
        expected.len() > 50,
        "the world is big enough to page: {}",
        expected.len()
    );
    assert_eq!(got, expected, "exactly the markets matching the filters");
    assert_eq!(listing.items.len(), expected.len(), "no duplicates");
    assert!(listing.rejected.is_empty());

    let log = sim.counters().log;
    assert_eq!(log.len() as u32, listing.pages);
    assert_eq!(
        listing.pages as usize,
        expected.len().div_ceil(25),
        "no extra page, none missed"
    );
    let mut cursors = HashSet::new();
    for (i, rec) in log.iter().enumerate() {
        assert_eq!(rec.endpoint, Endpoint::GammaKeyset);
        let p = query(&rec.uri);
        assert_eq!(param(&p, "closed"), ["false"], "{}", rec.uri);
        assert_eq!(param(&p, "limit"), ["25"]);
        assert_eq!(param(&p, "end_date_min").len(), 1);
        assert_eq!(at(param(&p, "end_date_min")[0]), min);
        assert_eq!(at(param(&p, "end_date_max")[0]), max);
        assert!(param(&p, "cursor").is_empty() && param(&p, "offset").is_empty());
        let after = param(&p, "after_cursor");
        if i == 0 {
            assert!(after.is_empty(), "the first page has no cursor");
        } else {
            assert_eq!(
                after.len(),
                1,
                "later pages follow next_cursor as after_cursor"
            );
            assert!(cursors.insert(after[0].to_string()), "each cursor once");
        }
    }
    let served: u64 = log.iter().map(|r| u64::from(r.items)).sum();
    assert_eq!(
        served,
        listing.items.len() as u64,
        "every served market was kept"
    );
    assert_eq!(c.stats().requests, u64::from(listing.pages));
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn given_discovery_when_markets_are_converted_then_each_carries_its_event_and_fee_schedule() {
    let sim = sim().await;
    let listing = client(&sim)
        .keyset_markets(&discovery_query(&sim, 100))
        .await
        .unwrap();
    assert!(listing.drifts.is_empty(), "{:?}", listing.drifts);
    let truth: HashMap<String, polytape_sim::TruthMarket> = sim
        .truth()
        .markets
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let now = sim.now();
    let mut by_event: HashMap<String, Vec<polytape_core::Market>> = HashMap::new();
    let (mut schedules, mut free, mut unknown) = (0, 0, 0);
    for gm in &listing.items {
        let t = &truth[gm.id.as_ref().unwrap()];
        let Ok(m) = gm.to_market(now) else { continue };
        assert_eq!(m.event_id.as_deref(), Some(t.event_id.as_str()));
        assert_eq!(m.fees_enabled, Some(t.fees_enabled));
        assert_eq!(m.fee.map(|f| (f.rate, f.exponent)), t.fee, "{}", t.id);
        match (&m.fee, t.fees_enabled) {
            (Some(f), true) => {
                assert!(f.taker_only && f.rebate_rate.is_some());
                schedules += 1;
            }
            (None, false) => free += 1,
            (None, true) => unknown += 1,
            (Some(_), false) => panic!("a schedule on a fee-free market"),
        }
        by_event.entry(t.event_id.clone()).or_default().push(m);
    }
    assert!(
        schedules > 5 && free > 5 && unknown > 0,
        "some markets charge fees, some none: {schedules} / {free} / {unknown}"
    );
    // Events holding one question with several deadlines: same question up to "by …", and
    // different end dates (what term_structure compares).
    let deadlines = by_event
        .values()
        .filter(|ms| {
            let stem =
                |m: &polytape_core::Market| m.question.split(" by ").next().map(String::from);
            let ends: HashSet<_> = ms.iter().map(|m| m.end_date).collect();
            ms.len() >= 2
                && !ms[0].neg_risk
                && ms
                    .iter()
                    .all(|m| stem(m) == stem(&ms[0]) && m.question.contains(" by "))
                && ends.len() == ms.len()
        })
        .count();
    assert!(deadlines >= 2, "events of several deadlines: {deadlines}");
}

#[tokio::test]
async fn given_250_condition_ids_when_fetched_then_3_requests_of_at_most_100_repeated_keys_under_8k(
) {
    let sim = sim_with(SimConfig {
        markets_per_tier: 60,
        ..SimConfig::new(7)
    })
    .await;
    let c = client(&sim);
    let ids: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| !m.closed && !m.condition_id.is_empty())
        .map(|m| m.condition_id.clone())
        .take(250)
        .collect();
    assert_eq!(ids.len(), 250);

    let out = c.markets_by_condition_ids(&ids).await;
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(out.requests, 3);
    let got: HashSet<&str> = out.items.iter().filter_map(|m| m.condition_id()).collect();
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(got, want);
    assert_eq!(out.items.len(), 250);

    let counters = sim.counters();
    assert_eq!(counters.requests(Endpoint::GammaKeyset), 3);
    let base = format!("http://{}", sim.addr());
    let mut sent = 0;
    for rec in &counters.log {
        let p = query(&rec.uri);
        let cids = param(&p, "condition_ids");
        assert!(!cids.is_empty() && cids.len() <= 100, "{} ids", cids.len());
        assert!(
            cids.iter().all(|c| !c.contains(',')),
            "repeated keys, not a comma list"
        );
        assert!(
            base.len() + rec.uri.len() < 8_192,
            "URL of {} bytes",
            base.len() + rec.uri.len()
        );
        sent += cids.len();
    }
    assert_eq!(sent, 250);
}

#[tokio::test]
async fn given_n_tokens_when_fetching_books_then_ceil_n_over_batch_posts_and_levels_as_served() {
    let sim = sim().await;
    let mut cfg = config(&sim);
    cfg.books_batch = 30;
    let c = PolymarketClient::new(cfg).unwrap();
    let tokens: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .flat_map(|m| m.token_ids.clone())
        .take(100)
        .collect();
    assert_eq!(tokens.len(), 100);

    let out = c.books(&tokens).await;
    assert!(out.failures.is_empty());
    assert_eq!(out.requests, 4, "⌈100/30⌉");
    assert_eq!(sim.counters().requests(Endpoint::ClobBooks), 4);
    assert_eq!(out.items.len(), 100);
    assert!(out.rejected.is_empty());
    let truth = sim.truth();
    for book in &out.items {
        let served = &truth.served_books[book.hash.as_deref().unwrap()];
        assert_eq!(served.token_id, book.token_id);
        let bids: Vec<_> = book.bids.iter().map(|l| (l.price, l.size)).collect();
        let asks: Vec<_> = book.asks.iter().map(|l| (l.price, l.size)).collect();
        assert_eq!(bids, served.bids, "every level, in served order");
        assert_eq!(asks, served.asks);
        assert_eq!(book.tick_size, Some(served.tick_size));
        assert_eq!(
            book.timestamp.unwrap().timestamp_millis(),
            served.timestamp_ms
        );
        let f = BookFeatures::of(book);
        assert!(f.best_bid < f.best_ask, "best bid below best ask");
    }
}

#[tokio::test]
async fn given_a_corrupted_market_when_discovering_then_it_is_kept_with_the_bad_fields_absent_and_counted(
) {
    let sim = sim().await;
    let c = client(&sim);
    let q = discovery_query(&sim, 100);
    let clean = c.keyset_markets(&q).await.unwrap();
    let victim = clean.items[3].condition_id().unwrap().to_string();
    sim.corrupt_market(&victim, polytape_sim::BadMarket::Fields);
    sim.reset();

    let listing = c.keyset_markets(&q).await.unwrap();
    assert_eq!(listing.items.len(), clean.items.len(), "nothing rejected");
    assert!(listing.rejected.is_empty());
    let kept = listing
        .items
        .iter()
        .find(|m| m.condition_id() == Some(victim.as_str()))
        .unwrap();
    let before = &clean.items[3];
    assert_eq!((kept.end_date, kept.volume_24hr), (None, None));
    assert_eq!(
        (kept.best_bid, &kept.clob_token_ids, kept.volume_1wk),
        (before.best_bid, &before.clob_token_ids, before.volume_1wk),
        "the rest of the market as before"
    );
    let mut keys: Vec<String> = listing.drifts.iter().map(|d| d.stat_key()).collect();
    keys.sort();
    assert_eq!(keys, ["gamma market.endDate", "gamma market.volume24hr"]);
    assert!(listing
        .drifts
        .iter()
        .all(|d| d.key.as_deref() == Some(victim.as_str())));
    let stats = c.stats();
    assert_eq!((stats.rejected, stats.drift_total()), (0, 2));
    assert_eq!(stats.drifts["gamma market.endDate"], 1);
}

#[tokio::test]
async fn given_a_429_with_retry_after_1_when_fetching_then_it_is_waited_out_and_succeeds() {
    let sim = sim().await;
    let c = client(&sim);
    sim.inject(Fault {
        endpoint: Some(Endpoint::GammaKeyset),
        kind: FaultKind::TooManyRequests { retry_after_s: 1 },
        times: 1,
    });
    let listing = c.keyset_markets(&discovery_query(&sim, 100)).await.unwrap();
    assert!(!listing.items.is_empty());
    let log = sim.counters().log;
    assert_eq!(log[0].status, 429);
    assert_eq!(log[1].status, 200);
    let waited = log[1].at - log[0].at;
    assert!(
        waited >= ChronoDuration::milliseconds(950),
        "retried after {waited}"
    );
    let s = c.stats();
    assert_eq!((s.rate_limited, s.retries), (1, 1));
}

#[tokio::test]
async fn given_5xx_twice_when_fetching_books_then_retried_and_counted() {
    let sim = sim().await;
    let c = client(&sim);
    let token = sim
        .truth()
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .unwrap()
        .token_ids[0]
        .clone();
    sim.inject(Fault {
        endpoint: Some(Endpoint::ClobBooks),
        kind: FaultKind::ServerError(503),
        times: 2,
    });
    let out = c.books(std::slice::from_ref(&token)).await;
    assert!(out.failures.is_empty());
    assert_eq!(out.items[0].token_id, token);
    let statuses: Vec<u16> = sim.counters().log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    let s = c.stats();
    assert_eq!((s.server_errors, s.retries, s.requests), (2, 2, 3));
}

#[tokio::test]
async fn given_a_truncated_body_when_fetching_then_it_is_retried_and_counted() {
    let sim = sim().await;
    let c = client(&sim);
    sim.inject(Fault {
        endpoint: Some(Endpoint::GammaKeyset),
        kind: FaultKind::Truncate,
        times: 1,
    });
    let listing = c.keyset_markets(&discovery_query(&sim, 100)).await.unwrap();
    assert!(!listing.items.is_empty());
    assert_eq!(
        sim.counters().requests(Endpoint::GammaKeyset),
        u64::from(listing.pages) + 1,
        "each page once, plus one retry"
    );
    let s = c.stats();
    assert_eq!((s.truncated, s.retries), (1, 1));
}

#[tokio::test]
async fn given_a_body_always_truncated_when_fetching_then_truncated_and_retryable_after_4_attempts()
{
    let sim = sim().await;
    let c = client(&sim);
    sim.inject(Fault {
        endpoint: Some(Endpoint::GammaKeyset),
        kind: FaultKind::Truncate,
        times: 4,
    });
    let err = c
        .keyset_markets(&discovery_query(&sim, 100))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Truncated { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        sim.counters().requests(Endpoint::GammaKeyset),
        4,
        "1 + max_retries"
    );
    assert_eq!(c.stats().truncated, 4);
}

#[tokio::test]
async fn given_a_400_when_fetching_then_it_is_not_retried() {
    let sim = sim().await;
    let c = client(&sim);
    let mut q = discovery_query(&sim, 100);
    // Keyset pagination refuses `offset` with a 400.
    q.extra.push(("offset".into(), "100".into()));
    let err = c.keyset_markets(&q).await.unwrap_err();
    match &err {
        FetchError::Status { status, body, .. } => {
            assert_eq!(*status, 400);
            assert!(body.contains("offset"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(sim.counters().log.len(), 1, "exactly one request");
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn given_books_with_a_price_above_one_and_a_negative_size_then_only_those_levels_are_dropped_and_the_books_marked(
) {
    let sim = sim().await;
    let c = client(&sim);
    let tokens: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .take(3)
        .map(|m| m.token_ids[0].clone())
        .collect();
    sim.corrupt_book(&tokens[0], BadLevel::PriceAboveOne);
    sim.corrupt_book(&tokens[1], BadLevel::NegativeSize);

    let out = c.books(&tokens).await;
    assert_eq!(out.items.len(), 3, "the books are kept");
    let marked: Vec<bool> = out.items.iter().map(|b| b.problem.is_some()).collect();
    assert_eq!(
        marked,
        [true, true, false],
        "a book with a level left out cannot be trusted"
    );
    assert_eq!(out.rejected.len(), 2);
    assert!(out.rejected.iter().all(|r| r.what == "book level"));
    assert_eq!(out.rejected[0].key.as_deref(), Some(tokens[0].as_str()));
    assert!(
        out.rejected[0].reason.contains("price outside [0,1]"),
        "{}",
        out.rejected[0].reason
    );
    assert_eq!(out.rejected[1].key.as_deref(), Some(tokens[1].as_str()));
    assert!(
        out.rejected[1].reason.contains("negative size"),
        "{}",
        out.rejected[1].reason
    );
    assert_eq!(c.stats().rejected, 2);

    let truth = sim.truth();
    for (i, book) in out.items.iter().enumerate() {
        let served = &truth.served_books[book.hash.as_deref().unwrap()];
        let dropped = usize::from(i < 2);
        assert_eq!(
            book.bids.len() + book.asks.len() + dropped,
            served.bids.len() + served.asks.len(),
            "book {i}: all other levels kept"
        );
        assert!(book
            .bids
            .iter()
            .chain(&book.asks)
            .all(|l| l.invalid_reason().is_none()));
    }
}

#[tokio::test]
async fn given_a_small_body_cap_when_fetching_then_too_large_without_retry() {
    let sim = sim().await;
    let mut cfg = config(&sim);
    cfg.max_body_bytes = 1_000;
    let c = PolymarketClient::new(cfg).unwrap();
    let err = c
        .keyset_markets(&discovery_query(&sim, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 1_000, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(sim.counters().log.len(), 1);
}

#[tokio::test]
async fn given_slow_responses_when_the_timeout_is_shorter_then_timeout_is_counted() {
    let sim = sim().await;
    sim.set_latency(Duration::from_millis(400));
    let mut cfg = config(&sim);
    cfg.request_timeout = Duration::from_millis(100);
    cfg.max_retries = 1;
    let c = PolymarketClient::new(cfg).unwrap();
    let err = c
        .keyset_markets(&discovery_query(&sim, 100))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    let s = c.stats();
    assert_eq!((s.timeouts, s.retries, s.requests), (2, 1, 2));
}

#[tokio::test]
async fn given_nothing_listening_when_fetching_then_connect_error_after_retries() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let c = PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: base.clone(),
            clob: base.clone(),
            data: base.clone(),
            ws: base,
        },
        backoff_base: Duration::from_millis(1),
        max_retries: 2,
        ..ClientConfig::default()
    })
    .unwrap();
    let err = c.keyset_markets(&KeysetQuery::default()).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!((c.stats().requests, c.stats().retries), (3, 2));
}

#[tokio::test]
async fn given_condition_ids_when_fetching_trades_then_rows_are_seconds_newest_first() {
    let sim = sim().await;
    let c = client(&sim);
    let ids: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .take(5)
        .map(|m| m.condition_id.clone())
        .collect();
    let tokens: HashSet<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| ids.contains(&m.condition_id))
        .flat_map(|m| m.token_ids.clone())
        .collect();
    let listing = c.trades(&ids, 200).await.unwrap();
    assert!(listing.rejected.is_empty(), "{:?}", listing.rejected);
    assert!(!listing.items.is_empty());
    let now = sim.now();
    for t in &listing.items {
        assert!(tokens.contains(&t.token_id));
        assert!(
            t.ts <= now && t.ts > now - ChronoDuration::days(30),
            "{} is epoch seconds",
            t.ts
        );
    }
    assert!(
        listing.items.windows(2).all(|w| w[0].ts >= w[1].ts),
        "newest first"
    );
    let rec = &sim.counters().log[0];
    let p = query(&rec.uri);
    assert_eq!(param(&p, "market"), [ids.join(",").as_str()]);
    assert_eq!(param(&p, "limit"), ["200"]);
    assert_eq!(rec.items as usize, listing.items.len());
    assert!(
        c.trades(&[], 10).await.unwrap().items.is_empty(),
        "no ids, no request"
    );
    assert_eq!(sim.counters().log.len(), 1);
}

// ---- Schema drift ------------------------------------------------------------------------------

#[tokio::test]
async fn given_schema_drift_when_ticking_then_drifted_markets_are_kept_and_their_columns_null_exactly_there(
) {
    let sim = sim_with(SimConfig {
        schema_drift: 0.3,
        ..SimConfig::new(42)
    })
    .await;
    let c = client(&sim);
    let truth = sim.truth();
    let tradeable: Vec<&polytape_sim::TruthMarket> = truth
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .collect();
    let drifted: HashSet<&str> = tradeable
        .iter()
        .filter(|m| !m.drifted_fields.is_empty())
        .map(|m| m.condition_id.as_str())
        .collect();
    assert!(drifted.len() >= 10 && drifted.len() < tradeable.len());

    // Discovery: every market kept, none rejected; the drifts are named and counted.
    let listing = c.keyset_markets(&discovery_query(&sim, 100)).await.unwrap();
    assert!(listing.rejected.is_empty(), "{:?}", listing.rejected);
    let listed: HashSet<&str> = listing
        .items
        .iter()
        .filter_map(|m| m.condition_id())
        .collect();
    assert!(
        drifted.iter().all(|d| listed.contains(d)),
        "drifted markets are discoverable"
    );
    let mut keys: Vec<String> = listing.drifts.iter().map(|d| d.stat_key()).collect();
    keys.sort();
    keys.dedup();
    let mut want: Vec<String> = polytape_sim::DRIFTED_FIELDS
        .iter()
        .map(|f| format!("gamma market.{f}"))
        .collect();
    want.sort();
    assert_eq!(keys, want);
    assert!(listing
        .drifts
        .iter()
        .all(|d| d.key.as_deref().is_some_and(|k| truth
            .markets
            .iter()
            .any(|m| m.condition_id == k && !m.drifted_fields.is_empty()))));

    // A tick: Gamma by condition id, then the snapshot row of each market.
    sim.reset();
    let ids: Vec<String> = tradeable.iter().map(|m| m.condition_id.clone()).collect();
    let gamma = c.markets_by_condition_ids(&ids).await;
    assert!(gamma.failures.is_empty() && gamma.rejected.is_empty());
    assert_eq!(gamma.items.len(), ids.len(), "no market lost to drift");
    let served: HashMap<String, serde_json::Value> = sim
        .truth()
        .served_markets
        .into_iter()
        .map(|m| (m.condition_id, m.json))
        .collect();
    let now = sim.now();
    for g in &gamma.items {
        let cid = g.condition_id().unwrap();
        let is_drifted = drifted.contains(cid);
        let market = g.to_market(now).unwrap();
        let (quote, bad) = g.quote();
        assert!(bad.is_empty(), "{bad:?}");
        let row = Snapshot::build(Observation {
            tick: TickId {
                tier: Tier::T0,
                tick_ts: now,
            },
            fetched_at: now,
            market: &market,
            quote: Some(&quote),
            book: None,
            flow: None,
        });
        assert_eq!(row.volume_1w.is_none(), is_drifted, "volume_1w of {cid}");
        assert_eq!(
            row.competitive.is_none(),
            is_drifted,
            "competitive of {cid}"
        );
        let week_served = served[cid].get("oneWeekPriceChange").is_some();
        assert_eq!(
            row.price_change_1w.is_none(),
            is_drifted || !week_served,
            "price_change_1w of {cid}"
        );
        assert!(
            row.price.is_some() && row.volume_24h.is_some(),
            "the rest of the row"
        );
    }

    // Their books: timestamp and hash absent, every level kept, the book sound.
    let tokens: Vec<String> = tradeable.iter().map(|m| m.token_ids[0].clone()).collect();
    let books = c.books(&tokens).await;
    assert!(books.failures.is_empty() && books.rejected.is_empty());
    assert_eq!(books.items.len(), tokens.len());
    let truth = sim.truth();
    let drifted_tokens: HashSet<&str> = tradeable
        .iter()
        .filter(|m| !m.drifted_fields.is_empty())
        .map(|m| m.token_ids[0].as_str())
        .collect();
    for b in &books.items {
        let is_drifted = drifted_tokens.contains(b.token_id.as_str());
        assert_eq!(
            b.timestamp.is_none() && b.hash.is_none(),
            is_drifted,
            "{}",
            b.token_id
        );
        assert!(b.is_sound());
        let served = truth
            .served_books
            .values()
            .find(|s| s.token_id == b.token_id && s.drifted == is_drifted)
            .unwrap();
        assert_eq!(b.bids.len(), served.bids.len(), "every level kept");
    }
    let book_drifts = books.drifts.len();
    assert_eq!(
        book_drifts,
        2 * drifted_tokens.len(),
        "timestamp and hash of each"
    );
    let stats = c.stats();
    assert_eq!(stats.drifts["book.timestamp"], drifted_tokens.len() as u64);
    assert_eq!(stats.rejected, 0);
}

// ---- Honest books ------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_crossed_book_and_a_zero_size_level_when_fetching_then_one_is_marked_and_the_other_clean(
) {
    let sim = sim().await;
    let c = client(&sim);
    let tokens: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .take(2)
        .map(|m| m.token_ids[0].clone())
        .collect();
    sim.corrupt_book(&tokens[0], BadLevel::Crossed);
    sim.corrupt_book(&tokens[1], BadLevel::ZeroSize);
    let out = c.books(&tokens).await;
    assert!(
        out.rejected.is_empty(),
        "neither is a rejection: {:?}",
        out.rejected
    );
    let crossed = &out.items[0];
    assert!(
        crossed
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("crossed")),
        "{:?}",
        crossed.problem
    );
    let zero = &out.items[1];
    assert!(zero.is_sound());
    let truth = sim.truth();
    let served = &truth.served_books[zero.hash.as_deref().unwrap()];
    assert_eq!(
        zero.bids.len() + 1,
        served.bids.len(),
        "the size-0 level is left out"
    );
    assert!(zero.bids.iter().all(|l| !l.size.is_zero()));
}

// ---- Refused ids --------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_batch_of_100_with_one_refused_id_when_fetching_books_then_99_books_and_one_failure(
) {
    let sim = sim().await;
    let c = client(&sim);
    let tokens: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .flat_map(|m| m.token_ids.clone())
        .take(100)
        .collect();
    assert_eq!(c.config().books_batch, 100);
    let refused = tokens[37].clone();
    sim.reject_token(&refused);

    let out = c.books(&tokens).await;
    assert_eq!(out.items.len(), 99, "only the refused id lost its book");
    let got: HashSet<&str> = out.items.iter().map(|b| b.token_id.as_str()).collect();
    assert!(!got.contains(refused.as_str()));
    assert_eq!(out.failures.len(), 1);
    let f = &out.failures[0];
    assert_eq!(f.keys, [refused.as_str()]);
    match &f.error {
        FetchError::Status { status, body, .. } => {
            assert_eq!(*status, 400);
            assert!(body.contains("Invalid token id"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    let sent = sim.counters().requests(Endpoint::ClobBooks);
    assert_eq!(u64::from(out.requests), sent, "every request counted");
    assert!(
        sent <= 15,
        "halving: about 2 × log2(100) requests, not 100: {sent}"
    );
    let s = c.stats();
    assert_eq!(
        (s.refused_ids, s.retries),
        (1, 0),
        "a 4xx is split, not retried"
    );
    let statuses: Vec<u16> = sim.counters().log.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count() - 1,
        statuses.iter().filter(|s| **s == 200).count(),
        "each refused batch but the lone id was split in two, one half of it accepted: {statuses:?}"
    );
}

// ---- Bounded requests --------------------------------------------------------------------------

#[tokio::test]
async fn given_a_cursor_too_long_for_the_url_when_listing_then_url_too_long_and_nothing_over_long_sent(
) {
    let sim = sim_with(SimConfig {
        cursor_len: 9_000,
        ..SimConfig::new(42)
    })
    .await;
    let c = client(&sim);
    let err = c
        .keyset_markets(&discovery_query(&sim, 10))
        .await
        .unwrap_err();
    match &err {
        FetchError::UrlTooLong { bytes, limit, .. } => {
            assert_eq!(*limit, 8_192);
            assert!(*bytes > 9_000, "{bytes}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    let log = sim.counters().log;
    assert_eq!(log.len(), 1, "only the first page was requested");
    assert!(log.iter().all(|r| r.uri.len() < 8_192));

    // A long cursor that still fits is followed.
    let sim = sim_with(SimConfig {
        cursor_len: 2_000,
        ..SimConfig::new(42)
    })
    .await;
    let listing = client(&sim)
        .keyset_markets(&discovery_query(&sim, 25))
        .await
        .unwrap();
    assert!(listing.pages > 1);
}

#[tokio::test]
async fn given_more_pages_than_the_cap_when_listing_then_too_many_pages_after_exactly_the_cap() {
    let sim = sim().await;
    let mut cfg = config(&sim);
    cfg.max_pages = 3;
    let c = PolymarketClient::new(cfg).unwrap();
    let err = c
        .keyset_markets(&discovery_query(&sim, 10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyPages { pages: 3, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        sim.counters().requests(Endpoint::GammaKeyset),
        3,
        "no page past the cap"
    );
    assert_eq!(ClientConfig::default().max_pages, 1_000);
}

// ---- Deadlines ---------------------------------------------------------------------------------

fn open_condition_ids(sim: &SimHandle, n: usize) -> Vec<String> {
    let ids: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| !m.closed && !m.condition_id.is_empty())
        .map(|m| m.condition_id.clone())
        .take(n)
        .collect();
    assert_eq!(ids.len(), n);
    ids
}

#[tokio::test(start_paused = true)]
async fn given_20s_latency_and_a_5s_deadline_when_fetching_then_every_id_fails_by_the_deadline() {
    let sim = sim_with(SimConfig {
        latency: Duration::from_secs(20),
        ..SimConfig::new(42)
    })
    .await;
    let ids = open_condition_ids(&sim, 110);
    let tokens: Vec<String> = sim
        .truth()
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .map(|m| m.token_ids[0].clone())
        .take(50)
        .collect();
    let base = client(&sim);
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(5);
    let c = base.with_deadline(deadline);

    let (gamma, books) = tokio::join!(c.markets_by_condition_ids(&ids), c.books(&tokens));
    assert!(
        tokio::time::Instant::now() <= deadline,
        "returned by the deadline"
    );
    assert!(gamma.items.is_empty() && books.items.is_empty());
    let mut failed: Vec<String> = gamma.failures.iter().flat_map(|f| f.keys.clone()).collect();
    failed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(failed, want, "every id listed");
    let failed_tokens: Vec<&String> = books.failures.iter().flat_map(|f| &f.keys).collect();
    assert_eq!(failed_tokens.len(), tokens.len());
    for f in gamma.failures.iter().chain(&books.failures) {
        assert!(
            matches!(
                f.error,
                FetchError::Timeout { .. } | FetchError::Deadline { .. }
            ),
            "{:?}",
            f.error
        );
    }
    let s = base.stats();
    assert_eq!(s.retries, 0, "no retry waits past the deadline");
    assert!(s.deadline_cutoffs >= 3, "{s:?}");

    // A listing under the same deadline fails rather than return part of itself.
    let late = base.with_deadline(tokio::time::Instant::now() + Duration::from_secs(5));
    let err = late
        .keyset_markets(&discovery_query(&sim, 100))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(tokio::time::Instant::now() <= late.deadline().unwrap());
}

#[tokio::test(start_paused = true)]
async fn given_a_deadline_between_chunks_when_fetching_then_early_chunks_arrive_and_the_rest_fail()
{
    let sim = sim_with(SimConfig {
        latency: Duration::from_secs(2),
        markets_per_tier: 80,
        ..SimConfig::new(7)
    })
    .await;
    let ids = open_condition_ids(&sim, 350);
    let mut cfg = config(&sim);
    cfg.max_in_flight = 1;
    let base = PolymarketClient::new(cfg).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let out = base
        .with_deadline(deadline)
        .markets_by_condition_ids(&ids)
        .await;
    assert!(tokio::time::Instant::now() <= deadline);

    // 100 ids a chunk: two chunks arrive (at 2 s and 4 s), the third times out at 5 s, the
    // fourth is never sent.
    assert_eq!(out.items.len(), 200, "what arrived in time is kept");
    let chunks: Vec<(usize, &str)> = out
        .failures
        .iter()
        .map(|f| (f.keys.len(), f.error.kind()))
        .collect();
    assert_eq!(chunks, [(100, "timeout"), (50, "deadline")]);
    let got: HashSet<&str> = out.items.iter().filter_map(|m| m.condition_id()).collect();
    let failed: HashSet<&str> = out
        .failures
        .iter()
        .flat_map(|f| f.keys.iter().map(String::as_str))
        .collect();
    assert!(got.is_disjoint(&failed));
    assert_eq!(got.len() + failed.len(), 350);
    assert_eq!(out.requests, 3, "the fourth request was never made");
    assert_eq!(sim.counters().requests(Endpoint::GammaKeyset), 3);
    assert_eq!(base.stats().deadline_cutoffs, 2);
}

#[tokio::test(start_paused = true)]
async fn given_a_retry_after_past_the_deadline_when_fetching_then_it_is_not_waited_for() {
    let sim = sim().await;
    sim.inject(Fault {
        endpoint: Some(Endpoint::ClobBooks),
        kind: FaultKind::TooManyRequests { retry_after_s: 10 },
        times: 1,
    });
    let token = sim
        .truth()
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .unwrap()
        .token_ids[0]
        .clone();
    let base = client(&sim);
    let start = tokio::time::Instant::now();
    let out = base
        .with_deadline(start + Duration::from_secs(3))
        .books(std::slice::from_ref(&token))
        .await;
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no wait begun that could not end in time"
    );
    assert!(
        matches!(out.failures[0].error, FetchError::RateLimited { .. }),
        "{:?}",
        out.failures
    );
    assert_eq!(sim.counters().requests(Endpoint::ClobBooks), 1);
    assert_eq!(
        (base.stats().retries, base.stats().deadline_cutoffs),
        (0, 1)
    );

    // The same without a deadline waits the 10 s out and succeeds.
    sim.inject(Fault {
        endpoint: Some(Endpoint::ClobBooks),
        kind: FaultKind::TooManyRequests { retry_after_s: 10 },
        times: 1,
    });
    let out = base.books(std::slice::from_ref(&token)).await;
    assert_eq!(out.items.len(), 1);
    assert!(start.elapsed() >= Duration::from_secs(10));
}

#[tokio::test]
async fn given_a_deadline_already_past_when_fetching_then_nothing_is_sent() {
    let sim = sim().await;
    let base = client(&sim);
    let c = base.with_deadline(tokio::time::Instant::now());
    let ids = open_condition_ids(&sim, 5);
    let out = c.markets_by_condition_ids(&ids).await;
    assert_eq!(out.failures.len(), 1);
    assert!(matches!(out.failures[0].error, FetchError::Deadline { .. }));
    assert_eq!(out.failures[0].keys.len(), 5);
    assert_eq!(out.requests, 0);
    assert!(matches!(
        c.book(&"1".repeat(77)).await,
        Err(FetchError::Deadline { .. })
    ));
    assert!(sim.counters().log.is_empty());
    // The base client has no deadline and still works.
    assert_eq!(base.markets_by_condition_ids(&ids).await.items.len(), 5);
}
