//! The simulator over real sockets: what a Polymarket client sees (shapes, paging, filters,
//! faults, the WebSocket protocol) and what the truth records.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::{SinkExt, StreamExt};
use polytape_sim::{
    start, BadLevel, Endpoint, Fault, FaultKind, MarketKind, SimConfig, SimHandle, SimResult,
    Truth, TruthMarket, TruthStage, DRIFTED_FIELDS,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const NOW: &str = "2026-03-15T12:00:00Z";

fn cfg(seed: u64) -> SimConfig {
    let mut c = SimConfig::new(seed);
    c.now = NOW.parse().expect("valid date");
    c
}

async fn sim(c: SimConfig) -> SimHandle {
    start(c, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn open_markets(t: &Truth) -> Vec<&TruthMarket> {
    t.markets.iter().filter(|m| !m.closed).collect()
}

fn book_tokens(t: &Truth) -> Vec<(String, String)> {
    t.markets
        .iter()
        .filter(|m| m.enable_order_book && !m.closed && m.kind != MarketKind::TransientTokens)
        .flat_map(|m| {
            m.token_ids
                .iter()
                .map(move |tok| (tok.clone(), m.condition_id.clone()))
        })
        .collect()
}

/// A JSON number as a decimal, via its text (exact for the short decimals served).
fn num_dec(v: &Value) -> Decimal {
    assert!(v.is_number(), "{v} must be a number");
    v.to_string()
        .parse::<Decimal>()
        .expect("a decimal")
        .normalize()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .expect("a string number")
        .parse()
        .expect("a decimal")
}

/// Pages the keyset endpoint to the end with `query`, returning every market and the page count.
async fn page_all(sim: &SimHandle, query: &str) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{}/markets/keyset?{query}", sim.gamma_url());
        if let Some(c) = &cursor {
            url.push_str(&format!("&after_cursor={c}"));
        }
        let (status, body) = get_json(&url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        out.extend(
            body["markets"]
                .as_array()
                .expect("markets array")
                .iter()
                .cloned(),
        );
        match body.get("next_cursor") {
            Some(Value::String(c)) => cursor = Some(c.clone()),
            None => break,
            Some(other) => panic!("next_cursor must be a string or absent, got {other}"),
        }
        assert!(pages < 1000, "paging does not end");
    }
    (out, pages)
}

#[tokio::test]
async fn given_default_config_then_world_has_every_kind_and_20_tradeable_per_tier_bucket() {
    let c = cfg(7);
    let traps = c.traps_per_kind();
    let now = c.now;
    let sim = sim(c).await;
    let t = sim.truth();

    let mut per_kind: HashMap<MarketKind, usize> = HashMap::new();
    for m in &t.markets {
        *per_kind.entry(m.kind).or_default() += 1;
    }
    for kind in [
        MarketKind::PastEnd,
        MarketKind::Closed,
        MarketKind::Resolved,
        MarketKind::NoOrderBook,
        MarketKind::TransientTokens,
        MarketKind::NonBinary,
        MarketKind::LowVolume,
        MarketKind::BeyondLookahead,
    ] {
        assert_eq!(per_kind.get(&kind), Some(&traps), "{kind:?}");
    }
    assert_eq!(per_kind.get(&MarketKind::Tradeable), Some(&100));

    let buckets = [
        (0.0, 1.0),
        (1.0, 4.0),
        (4.0, 12.0),
        (12.0, 48.0),
        (48.0, 336.0),
    ];
    for (lo, hi) in buckets {
        let n = t
            .markets
            .iter()
            .filter(|m| m.kind == MarketKind::Tradeable)
            .filter(|m| {
                let h = (m.end_date - now).num_milliseconds() as f64 / 3_600_000.0;
                h > lo && h <= hi
            })
            .count();
        assert_eq!(n, 20, "bucket ({lo},{hi}]");
    }

    // Each trap breaks exactly one rule of discovery.
    let hundred = Decimal::from(100);
    let lookahead = now + chrono::Duration::hours(336);
    for m in &t.markets {
        let in_window = m.end_date > now && m.end_date <= lookahead;
        let binary_ids = m.token_ids.len() == 2 && m.token_ids.iter().all(|x| x.len() == 77);
        let rules = [
            m.enable_order_book,
            binary_ids,
            m.volume_24h >= hundred,
            in_window,
            !m.closed,
        ];
        let broken = rules.iter().filter(|ok| !**ok).count();
        match m.kind {
            MarketKind::Tradeable => assert_eq!(broken, 0, "{m:?}"),
            MarketKind::Closed => assert!(m.closed && !m.resolved && m.volume_24h >= hundred),
            MarketKind::Resolved => assert!(m.closed && m.resolved && m.end_date < now),
            _ => assert_eq!(broken, 1, "{m:?}"),
        }
    }
    assert!(
        t.markets.iter().any(|m| m.neg_risk),
        "some neg-risk markets"
    );
    assert!(
        t.markets.iter().any(|m| m.outcomes == ["Up", "Down"]),
        "some Up/Down markets"
    );
    assert!(t
        .markets
        .iter()
        .any(|m| m.kind == MarketKind::TransientTokens && m.condition_id.is_empty()));
    let ids: Vec<u64> = t
        .markets
        .iter()
        .map(|m| m.id.parse().expect("numeric id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "truth markets in id order"
    );
}

#[tokio::test]
async fn given_same_seed_then_same_world_and_other_seed_differs() {
    let a = sim(cfg(99)).await.truth();
    let b = sim(cfg(99)).await.truth();
    let c = sim(cfg(100)).await.truth();
    assert_eq!(a.markets, b.markets);
    let cids = |t: &Truth| {
        t.markets
            .iter()
            .map(|m| m.condition_id.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(cids(&a), cids(&c));
}

#[tokio::test]
async fn given_keyset_paging_then_every_open_market_exactly_once_and_no_cursor_on_last_page() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let (markets, pages) = page_all(&sim, "limit=7").await;
    let served: Vec<String> = markets
        .iter()
        .map(|m| m["id"].as_str().expect("id string").to_string())
        .collect();
    let unique: HashSet<&String> = served.iter().collect();
    assert_eq!(unique.len(), served.len(), "no market twice");
    let expected: HashSet<String> = open_markets(&t).iter().map(|m| m.id.clone()).collect();
    assert_eq!(served.iter().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(pages, expected.len().div_ceil(7));
    // Served in id order.
    let nums: Vec<u64> = served.iter().map(|s| s.parse().expect("numeric")).collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]));

    // A page whose results fit in the limit has no next_cursor; limit is capped at 100.
    let (_, one) = get_json(&format!(
        "{}/markets/keyset?limit=1000&closed=true",
        sim.gamma_url()
    ))
    .await;
    assert!(one.get("next_cursor").is_none());
    let (_, capped) = get_json(&format!("{}/markets/keyset?limit=1000", sim.gamma_url())).await;
    assert_eq!(capped["markets"].as_array().map(Vec::len), Some(100));
    assert!(capped["next_cursor"].is_string());

    // `cursor` is not the parameter: silently ignored, page 1 again.
    let (_, first) = get_json(&format!("{}/markets/keyset?limit=5", sim.gamma_url())).await;
    let c = first["next_cursor"].as_str().expect("cursor");
    let (_, again) = get_json(&format!(
        "{}/markets/keyset?limit=5&cursor={c}",
        sim.gamma_url()
    ))
    .await;
    let ids = |v: &Value| {
        v["markets"]
            .as_array()
            .map(|a| a.iter().map(|m| m["id"].clone()).collect::<Vec<_>>())
    };
    assert_eq!(ids(&first), ids(&again));

    let (status, err) = get_json(&format!("{}/markets/keyset?offset=5", sim.gamma_url())).await;
    assert_eq!(status, 400);
    assert!(err["error"].is_string());
}

#[tokio::test]
async fn given_closed_omitted_then_only_open_markets_and_closed_true_gives_closed_ones() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let (open, _) = page_all(&sim, "limit=100").await;
    assert!(open.iter().all(|m| m["closed"] == json!(false)));
    assert_eq!(open.len(), open_markets(&t).len());
    let (closed, _) = page_all(&sim, "limit=100&closed=true").await;
    let kinds: BTreeSet<String> = closed
        .iter()
        .map(|m| {
            let id = m["id"].as_str().expect("id");
            format!(
                "{:?}",
                t.markets.iter().find(|x| x.id == id).expect("known").kind
            )
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["Closed".to_string(), "Resolved".to_string()])
    );
    assert_eq!(closed.len(), t.markets.iter().filter(|m| m.closed).count());
    // closedTime in Gamma's non-RFC-3339 form; resolved ones say so.
    for m in &closed {
        let ct = m["closedTime"].as_str().expect("closedTime");
        assert!(ct.ends_with("+00") && ct.as_bytes()[10] == b' ', "{ct}");
    }
    assert!(closed
        .iter()
        .any(|m| m["umaResolutionStatus"] == json!("resolved")
            && m["outcomePrices"] == json!("[\"1\", \"0\"]")));
}

#[tokio::test]
async fn given_end_date_window_then_exactly_markets_ending_inside_inclusive() {
    let c = cfg(7);
    let now = c.now;
    let sim = sim(c).await;
    let t = sim.truth();
    let max = now + chrono::Duration::hours(12);
    let q = format!(
        "limit=100&end_date_min={}&end_date_max={}",
        now.format("%Y-%m-%dT%H:%M:%SZ"),
        max.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (served, _) = page_all(&sim, &q).await;
    let got: HashSet<String> = served
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    let want: HashSet<String> = open_markets(&t)
        .iter()
        .filter(|m| m.end_date >= now && m.end_date <= max)
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(got, want);
    assert!(
        want.len() >= 60,
        "three tiers of tradeable markets and some traps: {}",
        want.len()
    );

    // Inclusive bounds: a market's exact end date as both min and max finds it.
    let m = open_markets(&t)
        .into_iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .expect("tradeable");
    let exact = m
        .end_date
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let url = format!(
        "{}/markets/keyset?end_date_min={}&end_date_max={}",
        sim.gamma_url(),
        urlencode(&exact),
        urlencode(&exact)
    );
    let (_, body) = get_json(&url).await;
    let ids: Vec<&str> = body["markets"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&m.id.as_str()));
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn given_condition_ids_then_exactly_those_and_more_than_100_is_400() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let picked: Vec<&TruthMarket> = t
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .step_by(13)
        .take(6)
        .collect();
    let q: String = picked
        .iter()
        .map(|m| format!("condition_ids={}&", m.condition_id))
        .collect();
    let (status, body) =
        get_json(&format!("{}/markets/keyset?{q}limit=100", sim.gamma_url())).await;
    assert_eq!(status, 200);
    let got: HashSet<&str> = body["markets"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["conditionId"].as_str())
        .collect();
    let want: HashSet<&str> = picked.iter().map(|m| m.condition_id.as_str()).collect();
    assert_eq!(got, want);
    assert!(body.get("next_cursor").is_none());

    // Token ids look up their market too.
    let tok = &picked[0].token_ids[1];
    let (_, by_token) = get_json(&format!(
        "{}/markets/keyset?clob_token_ids={tok}",
        sim.gamma_url()
    ))
    .await;
    assert_eq!(
        by_token["markets"][0]["conditionId"],
        json!(picked[0].condition_id)
    );

    let many: String = (0..101)
        .map(|i| format!("condition_ids=0x{i:064x}&"))
        .collect();
    let (status, body) = get_json(&format!("{}/markets/keyset?{many}", sim.gamma_url())).await;
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("condition_ids")));
}

#[tokio::test]
async fn given_gamma_market_then_polymarket_field_types_and_prices_match_the_yes_book() {
    let sim = sim(cfg(7)).await;
    let (markets, _) = page_all(&sim, "limit=100").await;
    for m in &markets {
        assert!(m["id"].is_string() && m["volume"].is_string());
        assert!(
            m["volume24hr"].is_number()
                && m["volumeNum"].is_number()
                && m["orderPriceMinTickSize"].is_number()
        );
        let outcomes: Vec<String> =
            serde_json::from_str(m["outcomes"].as_str().expect("string")).expect("JSON in string");
        let prices: Vec<String> =
            serde_json::from_str(m["outcomePrices"].as_str().expect("string"))
                .expect("JSON in string");
        assert_eq!(outcomes.len(), prices.len());
        let end = m["endDate"].as_str().expect("endDate");
        DateTime::parse_from_rfc3339(end).expect("RFC 3339 endDate");
        assert_eq!(m["endDateIso"].as_str().map(str::len), Some(10));
        if m["enableOrderBook"] == json!(false) {
            assert!(m.get("bestBid").is_none() && m.get("bestAsk").is_none());
        }
    }
    // Some optional fields are left out on some markets (and present on others).
    for field in ["oneWeekPriceChange", "liquidity", "lastTradePrice"] {
        let present = markets.iter().filter(|m| m.get(field).is_some()).count();
        assert!(
            present > 0 && present < markets.len(),
            "{field}: {present}/{}",
            markets.len()
        );
    }
    let digits: HashSet<usize> = markets
        .iter()
        .filter_map(|m| m["endDate"].as_str())
        .map(|s| s.split_once('.').map_or(0, |(_, f)| f.len() - 1))
        .collect();
    assert!(digits.len() >= 3, "fractional digits vary: {digits:?}");

    // Gamma's bestBid/bestAsk/outcomePrices are the YES book's at that second.
    let t = sim.truth();
    let m = t
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .expect("tradeable");
    for _ in 0..5 {
        let url = format!(
            "{}/markets/keyset?condition_ids={}",
            sim.gamma_url(),
            m.condition_id
        );
        let (_, g) = get_json(&url).await;
        let (_, b) = get_json(&format!(
            "{}/book?token_id={}",
            sim.clob_url(),
            m.token_ids[0]
        ))
        .await;
        let g = &g["markets"][0];
        let updated = DateTime::parse_from_rfc3339(g["updatedAt"].as_str().expect("updatedAt"))
            .expect("date");
        let book_ms: i64 = b["timestamp"].as_str().expect("ts").parse().expect("ms");
        if updated.timestamp() != book_ms.div_euclid(1000) {
            continue; // straddled a second; try again
        }
        let best_bid = dec(&b["bids"].as_array().expect("bids").last().expect("a bid")["price"]);
        let best_ask = dec(&b["asks"].as_array().expect("asks").last().expect("an ask")["price"]);
        assert_eq!(num_dec(&g["bestBid"]), best_bid);
        assert_eq!(num_dec(&g["bestAsk"]), best_ask);
        assert_eq!(num_dec(&g["spread"]), best_ask - best_bid);
        let prices: Vec<Decimal> =
            serde_json::from_str::<Vec<String>>(g["outcomePrices"].as_str().expect("s"))
                .expect("prices")
                .iter()
                .map(|p| p.parse().expect("decimal"))
                .collect();
        assert!(
            prices[0] >= best_bid && prices[0] <= best_ask,
            "price {} within {best_bid}..{best_ask}",
            prices[0]
        );
        assert_eq!(prices[0] + prices[1], Decimal::ONE);
        return;
    }
    panic!("never fetched Gamma and the book within the same second");
}

#[tokio::test]
async fn given_legacy_markets_then_bare_array_and_offset_past_10000_is_422() {
    let sim = sim(cfg(7)).await;
    let (status, body) = get_json(&format!("{}/markets?limit=10&offset=5", sim.gamma_url())).await;
    assert_eq!(status, 200);
    let page = body.as_array().expect("bare array");
    assert_eq!(page.len(), 10);
    let (_, first) = get_json(&format!("{}/markets?limit=15", sim.gamma_url())).await;
    let ids = |a: &[Value]| a.iter().map(|m| m["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first.as_array().expect("array")[5..15]), ids(page));
    let (status, _) = get_json(&format!("{}/markets?offset=10001", sim.gamma_url())).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn given_events_keyset_then_nested_markets_and_numeric_event_volumes() {
    let sim = sim(cfg(7)).await;
    let mut cursor = String::new();
    let mut events = Vec::new();
    loop {
        let url = format!("{}/events/keyset?limit=9{cursor}", sim.gamma_url());
        let (status, body) = get_json(&url).await;
        assert_eq!(status, 200);
        events.extend(body["events"].as_array().expect("events").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&after_cursor={c}"),
            None => break,
        }
    }
    assert!(!events.is_empty());
    for e in &events {
        assert!(
            e["volume"].is_number() && e["liquidity"].is_number() && e["volume24hr"].is_number()
        );
        let ms = e["markets"].as_array().expect("nested markets");
        assert!((1..=4).contains(&ms.len()));
        if e["negRisk"] == json!(true) {
            let id = e["negRiskMarketID"].as_str().expect("negRiskMarketID");
            assert!(ms.iter().all(|m| m["negRiskMarketID"] == json!(id)));
        }
    }
    assert!(events.iter().any(|e| e["negRisk"] == json!(true)));
    let (status, legacy) = get_json(&format!("{}/events?limit=3", sim.gamma_url())).await;
    assert_eq!(status, 200);
    assert_eq!(legacy.as_array().map(Vec::len), Some(3));
    assert_eq!(sim.counters().items(Endpoint::GammaEvents), 3);
}

#[tokio::test]
async fn given_books_request_then_request_order_best_last_string_numbers_and_unknown_omitted() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let tokens = book_tokens(&t);
    let mut wanted: Vec<String> = tokens
        .iter()
        .step_by(5)
        .take(12)
        .map(|(tok, _)| tok.clone())
        .collect();
    wanted.reverse();
    let mut body: Vec<Value> = wanted
        .iter()
        .map(|tok| json!({ "token_id": tok }))
        .collect();
    body.insert(3, json!({"token_id": "123"}));
    let no_book = t
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::NoOrderBook)
        .expect("no-book market");
    body.push(json!({"token_id": no_book.token_ids[0]}));

    let resp = reqwest::Client::new()
        .post(format!("{}/books", sim.clob_url()))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let books: Vec<Value> = resp.json().await.expect("json array");
    let order: Vec<&str> = books
        .iter()
        .filter_map(|b| b["asset_id"].as_str())
        .collect();
    assert_eq!(order, wanted.iter().map(String::as_str).collect::<Vec<_>>());

    let truth = sim.truth();
    for b in &books {
        for k in [
            "timestamp",
            "hash",
            "min_order_size",
            "tick_size",
            "last_trade_price",
            "market",
        ] {
            assert!(b[k].is_string(), "{k} must be a string: {}", b[k]);
        }
        assert!(b["neg_risk"].is_boolean());
        let bids = b["bids"].as_array().expect("bids");
        let asks = b["asks"].as_array().expect("asks");
        assert!((20..=120).contains(&bids.len()) && (20..=120).contains(&asks.len()));
        let bp: Vec<Decimal> = bids.iter().map(|l| dec(&l["price"])).collect();
        let ap: Vec<Decimal> = asks.iter().map(|l| dec(&l["price"])).collect();
        assert!(
            bp.windows(2).all(|w| w[0] < w[1]),
            "bids ascending, best last"
        );
        assert!(
            ap.windows(2).all(|w| w[0] > w[1]),
            "asks descending, best last"
        );
        assert!(bp[bp.len() - 1] < ap[ap.len() - 1], "not crossed");
        for l in bids.iter().chain(asks) {
            assert!(dec(&l["size"]).scale() <= 2);
        }
        // Recorded in the truth under its hash, exactly as served.
        let sb = &truth.served_books[b["hash"].as_str().expect("hash")];
        assert_eq!(sb.bids.iter().map(|l| l.0).collect::<Vec<_>>(), bp);
        assert_eq!(sb.asks.len(), ap.len());
        assert_eq!(sb.tick_size, dec(&b["tick_size"]));
    }
    assert_eq!(sim.counters().items(Endpoint::ClobBooks), 12);

    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"token_id": i.to_string()}))
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/books", sim.clob_url()))
        .json(&too_many)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status().as_u16(), 400);
    let resp = reqwest::Client::new()
        .post(format!("{}/books", sim.clob_url()))
        .body("{nope")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn given_token_without_book_then_404_with_polymarket_error() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    for kind in [
        MarketKind::NoOrderBook,
        MarketKind::Closed,
        MarketKind::Resolved,
    ] {
        let m = t.markets.iter().find(|m| m.kind == kind).expect("market");
        let (status, body) = get_json(&format!(
            "{}/book?token_id={}",
            sim.clob_url(),
            m.token_ids[0]
        ))
        .await;
        assert_eq!(status, 404, "{kind:?}");
        assert_eq!(
            body,
            json!({"error": "No orderbook exists for the requested token id"})
        );
    }
    let (status, _) = get_json(&format!(
        "{}/book?token_id={}",
        sim.clob_url(),
        book_tokens(&t)[0].0
    ))
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn given_each_fault_kind_then_served_exactly_times_times_then_normal() {
    let sim = sim(cfg(7)).await;
    let tok = book_tokens(&sim.truth())[0].0.clone();
    let book_url = format!("{}/book?token_id={tok}", sim.clob_url());

    sim.inject(Fault {
        endpoint: Some(Endpoint::ClobBook),
        kind: FaultKind::TooManyRequests { retry_after_s: 7 },
        times: 2,
    });
    for _ in 0..2 {
        let r = reqwest::get(&book_url).await.expect("req");
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("7")
        );
        let text = r.text().await.expect("body");
        assert!(text.starts_with("<!DOCTYPE html>"), "HTML body");
        assert!(serde_json::from_str::<Value>(&text).is_err());
    }
    assert_eq!(
        reqwest::get(&book_url)
            .await
            .expect("req")
            .status()
            .as_u16(),
        200
    );

    // endpoint None: any HTTP endpoint.
    sim.inject(Fault {
        endpoint: None,
        kind: FaultKind::ServerError(503),
        times: 1,
    });
    let r = reqwest::get(format!("{}/markets/keyset", sim.gamma_url()))
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        reqwest::get(format!("{}/markets/keyset", sim.gamma_url()))
            .await
            .expect("req")
            .status()
            .as_u16(),
        200
    );

    // A fault for another endpoint does not touch this one.
    sim.inject(Fault {
        endpoint: Some(Endpoint::DataTrades),
        kind: FaultKind::ServerError(502),
        times: 1,
    });
    assert_eq!(
        reqwest::get(&book_url)
            .await
            .expect("req")
            .status()
            .as_u16(),
        200
    );

    let url = format!("{}/markets/keyset?limit=3", sim.gamma_url());
    let full = reqwest::get(&url)
        .await
        .expect("req")
        .text()
        .await
        .expect("body");
    sim.inject(Fault {
        endpoint: Some(Endpoint::GammaKeyset),
        kind: FaultKind::Truncate,
        times: 1,
    });
    let r = reqwest::get(&url).await.expect("req");
    assert_eq!(r.status().as_u16(), 200);
    let declared: Option<usize> = r
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let cut = r.bytes().await.expect("body");
    assert_eq!(declared, Some(cut.len()));
    assert!(cut.len() < full.len() && cut.len() >= full.len() / 2 - 200);
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    let again = reqwest::get(&url)
        .await
        .expect("req")
        .text()
        .await
        .expect("body");
    assert!(serde_json::from_str::<Value>(&again).is_ok());

    let c = sim.counters();
    assert_eq!(c.faults_served(), 4);
    assert_eq!(c.requests(Endpoint::ClobBook), 4);
    assert_eq!(
        c.items(Endpoint::ClobBook),
        2,
        "faulted requests serve no items"
    );
    assert_eq!(c.log.iter().filter(|r| r.status == 429).count(), 2);
}

#[tokio::test]
async fn given_requests_then_counters_and_log_count_requests_items_and_reset_clears() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    get_json(&format!("{}/markets/keyset?limit=4", sim.gamma_url())).await;
    get_json(&format!(
        "{}/markets/keyset?limit=6&closed=true",
        sim.gamma_url()
    ))
    .await;
    let tokens = book_tokens(&t);
    let body = json!([{"token_id": tokens[0].0}, {"token_id": tokens[1].0}, {"token_id": "nope"}])
        .to_string();
    reqwest::Client::new()
        .post(format!("{}/books", sim.clob_url()))
        .body(body.clone())
        .send()
        .await
        .expect("req");
    let (_, trades) = get_json(&format!(
        "{}/trades?market={}&limit=5",
        sim.data_url(),
        tokens[0].1
    ))
    .await;
    let n_trades = trades.as_array().map_or(0, Vec::len) as u64;

    let c = sim.counters();
    assert_eq!(c.requests(Endpoint::GammaKeyset), 2);
    assert_eq!(c.items(Endpoint::GammaKeyset), 10);
    assert_eq!(c.requests(Endpoint::ClobBooks), 1);
    assert_eq!(c.items(Endpoint::ClobBooks), 2);
    assert_eq!(c.items(Endpoint::DataTrades), n_trades);
    assert_eq!(c.log.len(), 4);
    assert_eq!(c.log[0].uri, "/gamma/markets/keyset?limit=4");
    assert_eq!(c.log[0].method, "GET");
    assert_eq!(
        (c.log[2].method.as_str(), c.log[2].body_len, c.log[2].items),
        ("POST", body.len(), 2)
    );
    assert!(c.log.iter().all(|r| r.status == 200));
    assert_eq!(sim.truth().served_markets.len(), 10);

    sim.reset();
    let c = sim.counters();
    assert_eq!(
        (
            c.log.len(),
            c.requests(Endpoint::GammaKeyset),
            c.items(Endpoint::ClobBooks)
        ),
        (0, 0, 0)
    );
    let after = sim.truth();
    assert!(after.served_markets.is_empty() && after.served_books.is_empty());
    assert_eq!(after.markets.len(), t.markets.len(), "the world stays");
}

#[tokio::test]
async fn given_corrupted_market_and_book_then_served_with_bad_fields_and_flagged_in_truth() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let m = t
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .expect("tradeable");
    sim.corrupt_market(&m.condition_id, polytape_sim::BadMarket::Fields);
    let (_, body) = get_json(&format!(
        "{}/markets/keyset?condition_ids={}",
        sim.gamma_url(),
        m.condition_id
    ))
    .await;
    assert_eq!(body["markets"][0]["endDate"], json!({"oops": 1}));
    assert_eq!(body["markets"][0]["volume24hr"], json!("not a number"));
    let truth = sim.truth();
    assert!(truth
        .markets
        .iter()
        .any(|x| x.condition_id == m.condition_id && x.corrupted));
    assert_eq!(truth.markets.iter().filter(|x| x.corrupted).count(), 1);
    assert_eq!(truth.served_markets[0].json["endDate"], json!({"oops": 1}));

    let tok = &m.token_ids[0];
    sim.corrupt_book(tok, BadLevel::PriceAboveOne);
    let (_, b) = get_json(&format!("{}/book?token_id={tok}", sim.clob_url())).await;
    let bids = b["bids"].as_array().expect("bids");
    assert_eq!(bids.last(), Some(&json!({"price": "1.5", "size": "10"})));
    let sb = &sim.truth().served_books[b["hash"].as_str().expect("hash")];
    assert_eq!(
        sb.bids.last(),
        Some(&(Decimal::new(15, 1), Decimal::from(10)))
    );

    let no = &m.token_ids[1];
    sim.corrupt_book(no, BadLevel::NegativeSize);
    let (_, b) = get_json(&format!("{}/book?token_id={no}", sim.clob_url())).await;
    let sizes: Vec<Decimal> = b["asks"]
        .as_array()
        .expect("asks")
        .iter()
        .map(|l| dec(&l["size"]))
        .collect();
    assert_eq!(sizes.iter().filter(|s| **s < Decimal::ZERO).count(), 1);
    assert_eq!(sizes[0], Decimal::from(-3));
}

#[tokio::test]
async fn given_crossed_and_zero_size_bad_levels_then_served_that_way() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let m = t
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Tradeable)
        .expect("tradeable");
    let (yes, no) = (&m.token_ids[0], &m.token_ids[1]);
    sim.corrupt_book(yes, BadLevel::Crossed);
    sim.corrupt_book(no, BadLevel::ZeroSize);
    let (_, b) = get_json(&format!("{}/book?token_id={yes}", sim.clob_url())).await;
    let best_bid = dec(&b["bids"].as_array().expect("bids").last().expect("bid")["price"]);
    let best_ask = dec(&b["asks"].as_array().expect("asks").last().expect("ask")["price"]);
    assert!(best_bid >= best_ask, "crossed: {best_bid} < {best_ask}");
    let (_, b) = get_json(&format!("{}/book?token_id={no}", sim.clob_url())).await;
    assert_eq!(
        b["bids"][0]["size"],
        json!("0"),
        "a level of size 0 at the worst end"
    );
}

#[tokio::test]
async fn given_schema_drift_then_that_share_of_markets_and_their_books_are_served_with_wrong_types()
{
    let mut c = cfg(7);
    c.schema_drift = 0.3;
    let sim = sim(c).await;
    let t = sim.truth();
    let drifted: Vec<&TruthMarket> = t
        .markets
        .iter()
        .filter(|m| !m.drifted_fields.is_empty())
        .collect();
    let share = drifted.len() as f64 / t.markets.len() as f64;
    assert!((0.2..0.4).contains(&share), "{share}");
    assert!(
        drifted
            .iter()
            .filter(|m| m.kind == MarketKind::Tradeable)
            .count()
            >= 10,
        "tradeable markets drift too"
    );
    assert!(drifted.iter().all(|m| m.drifted_fields == DRIFTED_FIELDS));
    let again = sim_with_drift(0.3).await.truth();
    assert_eq!(
        again.markets, t.markets,
        "the same markets drift for the same seed"
    );

    let (tradeable_drifted, clean) = {
        let open = |m: &&TruthMarket| m.kind == MarketKind::Tradeable;
        (
            drifted.iter().copied().find(open).expect("a drifted one"),
            t.markets
                .iter()
                .filter(open)
                .find(|m| m.drifted_fields.is_empty())
                .expect("a clean one"),
        )
    };
    for (m, is_drifted) in [(tradeable_drifted, true), (clean, false)] {
        let (_, body) = get_json(&format!(
            "{}/markets/keyset?condition_ids={}",
            sim.gamma_url(),
            m.condition_id
        ))
        .await;
        let g = &body["markets"][0];
        if is_drifted {
            assert_eq!(g["updatedAt"], json!("yesterday"));
            assert_eq!(g["volume1yr"], json!(true));
            assert!(
                g["oneWeekPriceChange"].is_array(),
                "{}",
                g["oneWeekPriceChange"]
            );
            assert!(g["volume1wk"].is_object());
            assert_eq!(g["competitive"], json!("high"));
        } else {
            assert!(g["updatedAt"].as_str().expect("updatedAt").ends_with('Z'));
            assert!(g["volume1wk"].is_number() && g["competitive"].is_number());
            assert!(g.get("volume1yr").is_none_or(Value::is_number));
            assert!(g.get("oneWeekPriceChange").is_none_or(Value::is_number));
        }
        assert!(
            g["endDate"].is_string() && g["conditionId"].is_string(),
            "essentials intact"
        );
        let tok = &m.token_ids[0];
        let (_, b) = get_json(&format!("{}/book?token_id={tok}", sim.clob_url())).await;
        assert_eq!(b["timestamp"].is_object(), is_drifted, "{}", b["timestamp"]);
        assert_eq!(b["hash"].is_array(), is_drifted, "{}", b["hash"]);
        let hash = if is_drifted {
            &b["hash"][0]
        } else {
            &b["hash"]
        };
        let served = &sim.truth().served_books[hash.as_str().expect("hash text")];
        assert_eq!(served.drifted, is_drifted);
        assert!(
            b["bids"].as_array().is_some_and(|l| !l.is_empty()),
            "levels intact"
        );
    }
}

async fn sim_with_drift(share: f64) -> SimHandle {
    let mut c = cfg(7);
    c.schema_drift = share;
    sim(c).await
}

#[tokio::test]
async fn given_a_rejected_token_then_any_books_request_holding_it_is_a_400_with_a_json_error() {
    let sim = sim(cfg(7)).await;
    let tokens: Vec<String> = book_tokens(&sim.truth())
        .into_iter()
        .take(3)
        .map(|(t, _)| t)
        .collect();
    sim.reject_token(&tokens[1]);
    let post = |ids: &[String]| {
        let body: Vec<Value> = ids.iter().map(|t| json!({ "token_id": t })).collect();
        let url = format!("{}/books", sim.clob_url());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let (status, body) = post(&tokens).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": format!("Invalid token id: {}", tokens[1])})
    );
    let (status, body) = post(&[tokens[0].clone(), tokens[2].clone()]).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2));
    let (status, _) = get_json(&format!("{}/book?token_id={}", sim.clob_url(), tokens[1])).await;
    assert_eq!(status, 400);
    let (status, _) = get_json(&format!("{}/book?token_id={}", sim.clob_url(), tokens[0])).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn given_a_cursor_length_then_cursors_are_that_long_and_still_page_correctly() {
    let mut c = cfg(7);
    c.cursor_len = 3_000;
    let sim = sim(c).await;
    let (_, first) = get_json(&format!("{}/markets/keyset?limit=10", sim.gamma_url())).await;
    let cursor = first["next_cursor"].as_str().expect("cursor");
    assert_eq!(cursor.len(), 3_000);
    let (all, pages) = page_all(&sim, "limit=25").await;
    let open = open_markets(&sim.truth()).len();
    assert_eq!(all.len(), open);
    assert_eq!(pages, open.div_ceil(25));
}

#[tokio::test]
async fn given_latency_then_every_response_is_delayed() {
    let mut c = cfg(7);
    c.latency = Duration::from_millis(150);
    let sim = sim(c).await;
    let t0 = Instant::now();
    get_json(&format!("{}/markets/keyset?limit=1", sim.gamma_url())).await;
    assert!(t0.elapsed() >= Duration::from_millis(150));
    sim.set_latency(Duration::ZERO);
    sim.inject(Fault {
        endpoint: None,
        kind: FaultKind::ServerError(502),
        times: 1,
    });
    sim.set_latency(Duration::from_millis(120));
    let t0 = Instant::now();
    let r = reqwest::get(format!("{}/markets/keyset", sim.gamma_url()))
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 502);
    assert!(
        t0.elapsed() >= Duration::from_millis(120),
        "faulted responses are delayed too"
    );
}

#[tokio::test]
async fn given_data_trades_then_newest_first_typed_like_the_data_api_and_limits_enforced() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let mut busy: Vec<&TruthMarket> = t
        .markets
        .iter()
        .filter(|m| m.kind == MarketKind::Tradeable)
        .collect();
    busy.sort_by_key(|m| std::cmp::Reverse(m.volume_24h));
    let cids = format!("{},{}", busy[0].condition_id, busy[1].condition_id);
    let (status, body) = get_json(&format!(
        "{}/trades?market={cids}&limit=500",
        sim.data_url()
    ))
    .await;
    assert_eq!(status, 200);
    let trades = body.as_array().expect("array");
    assert_eq!(trades.len(), 500);
    let now_s = sim.now().timestamp();
    let mut last = i64::MAX;
    for tr in trades {
        let ts = tr["timestamp"].as_i64().expect("integer seconds");
        assert!(ts <= now_s && ts > now_s - 90 * 86_400);
        assert!(ts <= last, "newest first");
        last = ts;
        assert!(tr["size"].is_number() && tr["price"].is_number());
        assert!(tr["side"] == json!("BUY") || tr["side"] == json!("SELL"));
        let cid = tr["conditionId"].as_str().expect("cid");
        let m = if cid == busy[0].condition_id {
            busy[0]
        } else {
            busy[1]
        };
        let idx = tr["outcomeIndex"].as_u64().expect("index") as usize;
        assert_eq!(tr["asset"].as_str(), Some(m.token_ids[idx].as_str()));
        assert_eq!(tr["outcome"].as_str(), Some(m.outcomes[idx].as_str()));
        assert_eq!(tr["transactionHash"].as_str().map(str::len), Some(66));
    }

    // start/end window and offset paging are consistent with the full list.
    let (_, page2) = get_json(&format!(
        "{}/trades?market={cids}&limit=100&offset=100",
        sim.data_url()
    ))
    .await;
    assert_eq!(
        &trades[100..200],
        page2.as_array().expect("array").as_slice()
    );
    let end = trades[50]["timestamp"].as_i64().expect("ts");
    let start = trades[150]["timestamp"].as_i64().expect("ts");
    let (_, window) = get_json(&format!(
        "{}/trades?market={cids}&start={start}&end={end}&limit=1000",
        sim.data_url()
    ))
    .await;
    let expected = trades
        .iter()
        .filter(|tr| (start..=end).contains(&tr["timestamp"].as_i64().unwrap_or(0)))
        .count();
    assert_eq!(window.as_array().map(Vec::len), Some(expected));

    let (status, _) = get_json(&format!(
        "{}/trades?market={cids}&offset=10001",
        sim.data_url()
    ))
    .await;
    assert_eq!(status, 400);
    let (_, capped) = get_json(&format!(
        "{}/trades?market={cids}&limit=20000",
        sim.data_url()
    ))
    .await;
    assert!(capped.as_array().map_or(0, Vec::len) <= 10_000);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(sim: &SimHandle) -> Ws {
    tokio_tungstenite::connect_async(sim.ws_url())
        .await
        .expect("ws connect")
        .0
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time");
        match msg.expect("open").expect("frame") {
            Message::Text(t) => return t.to_string(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn given_ping_before_subscribe_then_ws_closes_1008() {
    let sim = sim(cfg(7)).await;
    for first in [
        "PING",
        "{not json",
        r#"{"asset_ids":["1"],"type":"market"}"#,
    ] {
        let mut ws = ws_connect(&sim).await;
        ws.send(Message::Text(first.into())).await.expect("send");
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1008, "{first}");
                assert_eq!(frame.reason.as_str(), "invalid subscription payload");
            }
            other => panic!("expected close 1008 after {first:?}, got {other:?}"),
        }
    }
    assert_eq!(sim.counters().requests(Endpoint::Ws), 3);
}

#[tokio::test]
async fn given_subscription_then_book_dump_array_pong_and_live_trades_matching_the_data_api() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let tokens = book_tokens(&t);
    let mut assets: Vec<String> = tokens.iter().map(|(tok, _)| tok.clone()).collect();
    assets.push("999".into()); // unknown: ignored
    let mut ws = ws_connect(&sim).await;
    let sub = json!({"assets_ids": assets, "type": "market"}).to_string();
    ws.send(Message::Text(sub.into())).await.expect("send");

    let dump: Value = serde_json::from_str(&next_text(&mut ws).await).expect("json");
    let dump = dump.as_array().expect("the initial dump is one array");
    assert_eq!(dump.len(), tokens.len());
    assert!(dump
        .iter()
        .all(|e| e["event_type"] == json!("book") && e["timestamp"].is_string()));
    let truth = sim.truth();
    for e in dump {
        assert!(truth
            .served_books
            .contains_key(e["hash"].as_str().expect("hash")));
    }

    ws.send(Message::Text("PING".into())).await.expect("send");
    let mut got_pong = false;
    let mut trades: Vec<Value> = Vec::new();
    let mut changes = 0;
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && !(got_pong && !trades.is_empty() && changes > 0) {
        let text = next_text(&mut ws).await;
        if text == "PONG" {
            got_pong = true;
            continue;
        }
        let v: Value = serde_json::from_str(&text).expect("JSON frame");
        let events = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        for e in events {
            match e["event_type"].as_str() {
                Some("last_trade_price") => trades.push(e),
                Some("price_change") | Some("book") => changes += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    assert!(got_pong, "PONG after PING");
    assert!(!trades.is_empty(), "live trades");
    assert!(changes > 0, "book changes");

    // Every live trade is also in the Data API (same tx, price, size, second).
    for tr in trades.iter().take(5) {
        let cid = tr["market"].as_str().expect("market");
        let (_, hist) = get_json(&format!("{}/trades?market={cid}&limit=50", sim.data_url())).await;
        let ms: i64 = tr["timestamp"]
            .as_str()
            .expect("ms string")
            .parse()
            .expect("ms");
        let found = hist.as_array().expect("array").iter().any(|h| {
            h["transactionHash"] == tr["transaction_hash"]
                && h["asset"] == tr["asset_id"]
                && h["timestamp"].as_i64() == Some(ms.div_euclid(1000))
                && num_dec(&h["price"]) == dec(&tr["price"])
                && num_dec(&h["size"]) == dec(&tr["size"])
        });
        assert!(found, "trade {tr} in Data API");
    }
    assert!(sim.counters().items(Endpoint::Ws) >= (tokens.len() + trades.len()) as u64);
}

#[tokio::test]
async fn given_open_socket_when_subscribing_more_then_dump_for_new_assets_only() {
    let sim = sim(cfg(7)).await;
    let tokens = book_tokens(&sim.truth());
    let mut ws = ws_connect(&sim).await;
    ws.send(Message::Text(
        json!({"assets_ids": [tokens[0].0], "type": "MARKET"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    let first: Value = serde_json::from_str(&next_text(&mut ws).await).expect("json");
    assert_eq!(first.as_array().map(Vec::len), Some(1));
    let op =
        json!({"operation": "subscribe", "assets_ids": [tokens[0].0, tokens[5].0]}).to_string();
    ws.send(Message::Text(op.into())).await.expect("send");
    loop {
        let v: Value = serde_json::from_str(&next_text(&mut ws).await).expect("json");
        if let Some(arr) = v.as_array() {
            if arr.iter().all(|e| e["event_type"] == json!("book"))
                && arr.len() == 1
                && arr[0]["asset_id"] == json!(tokens[5].0)
            {
                break;
            }
        }
    }
}

#[tokio::test]
async fn given_shutdown_then_port_stops_accepting_and_ws_is_closed() {
    let sim = sim(cfg(7)).await;
    let tokens = book_tokens(&sim.truth());
    let mut ws = ws_connect(&sim).await;
    ws.send(Message::Text(
        json!({"assets_ids": [tokens[0].0], "type": "market"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    next_text(&mut ws).await;
    let url = format!("{}/markets/keyset", sim.gamma_url());
    sim.clone().shutdown().await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                _ => continue,
            }
        }
    })
    .await
    .expect("ws ends after shutdown");
    assert_eq!(closed, Some(1001));
    assert!(reqwest::get(&url).await.is_err());
}

#[tokio::test]
async fn given_ws_fault_then_upgrade_refused_with_429() {
    let sim = sim(cfg(7)).await;
    sim.inject(Fault {
        endpoint: Some(Endpoint::Ws),
        kind: FaultKind::TooManyRequests { retry_after_s: 1 },
        times: 1,
    });
    assert!(tokio_tungstenite::connect_async(sim.ws_url())
        .await
        .is_err());
    assert!(tokio_tungstenite::connect_async(sim.ws_url()).await.is_ok());
    // A None-endpoint fault never applies to the WebSocket.
    sim.inject(Fault {
        endpoint: None,
        kind: FaultKind::ServerError(503),
        times: 1,
    });
    assert!(tokio_tungstenite::connect_async(sim.ws_url()).await.is_ok());
    assert_eq!(sim.counters().faults_served(), 1);
    let _: DateTime<Utc> = sim.now();
}

/// A rolling world at 20 markets/hour anchored at `now`. (The clock reads `now` + real time
/// elapsed, so an anchor in the past does not fast-forward; the stream's 336 h warm start is what
/// gives it arrivals, resolved markets and steady-state tiers from the first request.)
fn rolling_cfg(seed: u64, now: DateTime<Utc>) -> SimConfig {
    let mut c = SimConfig::new(seed);
    c.now = now;
    c.new_markets_per_hour = 20.0;
    c
}

fn hours_to(end: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (end - now).num_milliseconds() as f64 / 3_600_000.0
}

#[tokio::test]
async fn given_rolling_world_when_discovery_lists_then_arrivals_fill_every_tier_in_proportion() {
    let anchor = Utc::now() - chrono::Duration::hours(30);
    let sim = sim(rolling_cfg(5, anchor)).await;
    let now = sim.now();
    let q = format!(
        "closed=false&limit=100&end_date_min={}&end_date_max={}",
        urlencode(&now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        urlencode(
            &(now + chrono::Duration::hours(336))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
    );
    let (listed, _) = page_all(&sim, &q).await;
    // The truth is taken after the paging: a market listed open may have ended in between
    // (its kind then reads PastEnd, its end no later than the clock read just after).
    let t = sim.truth();
    let truth_at = sim.now();
    let arrivals: HashMap<&str, &TruthMarket> = t
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_some())
        .map(|m| (m.condition_id.as_str(), m))
        .collect();

    let buckets = [
        (0.0, 1.0),
        (1.0, 4.0),
        (4.0, 12.0),
        (12.0, 48.0),
        (48.0, 336.0),
    ];
    let mut counts = [0usize; 5];
    let mut listed_arrivals = HashSet::new();
    for m in &listed {
        assert_eq!(m["closed"], json!(false));
        let cid = m["conditionId"].as_str().expect("conditionId");
        let Some(a) = arrivals.get(cid) else { continue };
        listed_arrivals.insert(cid.to_string());
        let end: DateTime<Utc> = m["endDate"]
            .as_str()
            .expect("endDate")
            .parse()
            .expect("date");
        assert_eq!(end, a.end_date);
        let h = hours_to(end, now);
        let b = buckets
            .iter()
            .position(|&(lo, hi)| h > lo && h <= hi)
            .expect("inside the lookahead");
        counts[b] += 1;
        let open_kind = matches!(
            a.kind,
            MarketKind::Tradeable | MarketKind::LowVolume | MarketKind::NoOrderBook
        );
        let ended_while_paging = a.kind == MarketKind::PastEnd && a.end_date <= truth_at;
        assert!(
            open_kind || ended_while_paging,
            "{a:?} (truth at {truth_at})"
        );
        // Each arrival lived (1 h, 336 h] from arrival to end.
        let ttc = hours_to(a.end_date, a.arrived_at.expect("arrived"));
        assert!(ttc > 0.99 && ttc <= 336.0, "{ttc}");
    }
    // Steady state already (the stream starts 336 h before the anchor): about rate × hours spent
    // in each tier, so T4 ≈ 20 and each longer tier holds more.
    assert!((8..=40).contains(&counts[0]), "{counts:?}");
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    assert!(counts[4] > 1_800, "{counts:?}");

    // The truth holds exactly the listed arrivals among those open and inside the window.
    let want: HashSet<String> = t
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_some_and(|a| a <= now))
        .filter(|m| {
            !m.closed && m.end_date >= now && m.end_date <= now + chrono::Duration::hours(336)
        })
        .map(|m| m.condition_id.clone())
        .collect();
    assert!(want.is_subset(&listed_arrivals));
    assert!(
        listed_arrivals.len() - want.len() <= 2,
        "only arrivals during the paging"
    );
    // Materialised right up to the clock (one arrival per 3-minute slot at 20/h), none ahead.
    let newest = arrivals
        .values()
        .filter_map(|m| m.arrived_at)
        .max()
        .expect("arrivals");
    assert!(newest <= sim.now() && newest > now - chrono::Duration::minutes(7));
    assert!(arrivals.len() > 3_000, "{}", arrivals.len());
}

#[tokio::test]
async fn given_same_seed_then_same_arrivals_and_other_seed_differs() {
    let anchor = Utc::now() - chrono::Duration::hours(30);
    let a = sim(rolling_cfg(11, anchor)).await;
    let b = sim(rolling_cfg(11, anchor)).await;
    let c = sim(rolling_cfg(12, anchor)).await;
    let (ta, tb, tc) = (a.truth(), b.truth(), c.truth());
    let cutoff = a.now().min(b.now()) - chrono::Duration::minutes(1);
    // Immutable facts of arrivals both clocks have passed and neither may have dropped.
    let view = |t: &Truth| -> Vec<String> {
        t.markets
            .iter()
            .filter(|m| m.arrived_at.is_some_and(|at| at <= cutoff))
            .filter(|m| m.end_date > cutoff - chrono::Duration::hours(40))
            .map(|m| {
                // Final (at the latest 1 h + 2 × 2 h past the end) before either truth was taken.
                let settled = m.end_date + chrono::Duration::hours(5) < cutoff;
                format!(
                    "{} {} {:?} {} {} {} {:?} {}",
                    m.id,
                    m.condition_id,
                    m.token_ids,
                    m.question,
                    m.end_date,
                    m.volume_24h,
                    m.arrived_at,
                    if settled {
                        format!("{:?} {:?} {:?}", m.stage, m.final_at, m.closed_time)
                    } else {
                        String::new()
                    }
                )
            })
            .collect()
    };
    let (va, vb) = (view(&ta), view(&tb));
    assert!(va.len() > 3_000, "{}", va.len());
    assert_eq!(va, vb);
    let cids = |t: &Truth| -> HashSet<String> {
        t.markets
            .iter()
            .filter(|m| m.arrived_at.is_some())
            .map(|m| m.condition_id.clone())
            .collect()
    };
    assert!(cids(&ta).is_disjoint(&cids(&tc)));
}

#[tokio::test]
async fn given_rolling_world_when_a_market_ended_over_1h_ago_then_served_closed_without_book_and_final_within_4h(
) {
    let anchor = Utc::now() - chrono::Duration::hours(30);
    let sim = sim(rolling_cfg(8, anchor)).await;
    let t = sim.truth();
    let now = sim.now();
    let hour = chrono::Duration::hours(1);
    let minute = chrono::Duration::minutes(1);
    let ended: Vec<&TruthMarket> = t
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_some() && m.end_date + hour < now - minute)
        .collect();
    assert!(ended.len() > 500, "{}", ended.len());
    // Closed exactly resolve_after (1 h) past the end, on its way to a result.
    for m in &ended {
        assert!(m.closed && m.stage != TruthStage::Open, "{m:?}");
        let closes = (m.end_date + hour).trunc_subsecs(0);
        assert_eq!(m.closed_time, Some(closes), "{m:?}");
        assert_eq!(m.kind == MarketKind::Resolved, m.resolved, "{m:?}");
    }
    // Final at the latest two finalize_after (2 h) later, and dropped 48 h after that.
    assert!(ended
        .iter()
        .filter(|m| m.end_date + hour * 5 < now - minute)
        .all(|m| m.resolved && m.kind == MarketKind::Resolved));
    assert!(ended
        .iter()
        .all(|m| m.end_date + chrono::Duration::hours(54) > now));
    // Ended less than an hour ago: still open, no longer discoverable.
    let grace: Vec<&TruthMarket> = t
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_some() && m.end_date < now && m.end_date + hour > now)
        .collect();
    assert!(grace
        .iter()
        .all(|m| !m.closed && m.kind == MarketKind::PastEnd));

    let picked: Vec<&TruthMarket> = ended
        .iter()
        .filter(|m| {
            matches!(
                m.stage,
                TruthStage::Final {
                    result: SimResult::Winner(_)
                }
            )
        })
        .step_by(7)
        .take(60)
        .copied()
        .collect();
    let q: String = picked
        .iter()
        .map(|m| format!("condition_ids={}&", m.condition_id))
        .collect();
    let (_, open) = get_json(&format!("{}/markets/keyset?{q}limit=100", sim.gamma_url())).await;
    assert_eq!(
        open["markets"],
        json!([]),
        "closed=false (the default) leaves them out"
    );
    let (_, closed) = get_json(&format!(
        "{}/markets/keyset?{q}closed=true&limit=100",
        sim.gamma_url()
    ))
    .await;
    let served = closed["markets"].as_array().expect("markets");
    assert_eq!(served.len(), picked.len());
    let mut winners = HashSet::new();
    for m in served {
        let tm = picked
            .iter()
            .find(|p| m["conditionId"] == json!(p.condition_id))
            .expect("picked");
        assert_eq!(m["closed"], json!(true));
        assert_eq!(m["umaResolutionStatus"], json!("resolved"));
        assert_eq!(m["acceptingOrders"], json!(tm.accepting_orders));
        let prices = m["outcomePrices"].as_str().expect("outcomePrices");
        assert!(
            prices == "[\"1\", \"0\"]" || prices == "[\"0\", \"1\"]",
            "{prices}"
        );
        winners.insert(prices.to_string());
        let want = (tm.end_date + hour)
            .format("%Y-%m-%d %H:%M:%S+00")
            .to_string();
        assert_eq!(m["closedTime"], json!(want));
    }
    assert_eq!(winners.len(), 2, "both outcomes win sometimes");

    let tok = &picked[0].token_ids[0];
    let (status, _) = get_json(&format!("{}/book?token_id={tok}", sim.clob_url())).await;
    assert_eq!(status, 404);
    let body: Vec<Value> = ended
        .iter()
        .take(100)
        .map(|m| json!({"token_id": m.token_ids[0]}))
        .collect();
    let books: Value = reqwest::Client::new()
        .post(format!("{}/books", sim.clob_url()))
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(books, json!([]));
}

#[tokio::test]
async fn given_rate_zero_then_static_world_only_and_rolling_world_adds_to_it_without_changing_it() {
    let anchor = Utc::now() - chrono::Duration::hours(30);
    let mut c = SimConfig::new(7);
    c.now = anchor;
    let static_sim = sim(c).await;
    let rolling = sim(rolling_cfg(7, anchor)).await;
    let (st, rt) = (static_sim.truth(), rolling.truth());
    assert!(st.markets.iter().all(|m| m.arrived_at.is_none()));
    assert_eq!(st.markets.len(), 100 + 8 * 3);
    // At start nothing generated has resolved yet (each ends ≥ 2 min after the anchor, or was a
    // trap already), so the generated part of the rolling world is the static world.
    let generated: Vec<&TruthMarket> = rt
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_none())
        .collect();
    assert_eq!(generated, st.markets.iter().collect::<Vec<_>>());
    let max_static: u64 = st
        .markets
        .iter()
        .map(|m| m.id.parse::<u64>().expect("id"))
        .max()
        .expect("markets");
    assert!(rt
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_some())
        .all(|m| m.id.parse::<u64>().expect("id") > max_static));
    let (listed, _) = page_all(&static_sim, "limit=100").await;
    assert_eq!(listed.len(), open_markets(&st).len());
}

#[tokio::test]
async fn given_a_market_closed_now_then_open_listings_leave_it_out_closed_ones_have_it_and_its_book_is_gone(
) {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let m = open_markets(&t)
        .into_iter()
        .find(|m| m.kind == polytape_sim::MarketKind::Tradeable)
        .expect("a tradeable market")
        .clone();
    assert!(sim.close_market(&m.condition_id));
    assert!(!sim.close_market(&m.condition_id), "already closed");
    let base = sim.gamma_url();
    let cid = &m.condition_id;
    let (_, open) = get_json(&format!("{base}/markets/keyset?condition_ids={cid}")).await;
    assert_eq!(
        open["markets"],
        json!([]),
        "closed=false by default leaves it out"
    );
    let (_, closed) = get_json(&format!(
        "{base}/markets/keyset?condition_ids={cid}&closed=true"
    ))
    .await;
    assert_eq!(closed["markets"][0]["closed"], json!(true));
    assert_eq!(closed["markets"][0]["acceptingOrders"], json!(false));
    let (status, _) = get_json(&format!(
        "{}/book?token_id={}",
        sim.clob_url(),
        m.token_ids[0]
    ))
    .await;
    assert_eq!(status, 404, "its book is gone");
    let after = sim.truth();
    let now = after
        .markets
        .iter()
        .find(|x| x.id == m.id)
        .expect("still in the world");
    assert!(now.closed && now.kind == polytape_sim::MarketKind::Closed);
}

/// Open, tradeable, binary, not neg-risk markets (any knob applies to them, a void included).
fn plain_open(t: &Truth, n: usize) -> Vec<TruthMarket> {
    let picked: Vec<TruthMarket> = open_markets(t)
        .into_iter()
        .filter(|m| m.kind == MarketKind::Tradeable && m.outcomes.len() == 2 && !m.neg_risk)
        .take(n)
        .cloned()
        .collect();
    assert_eq!(picked.len(), n);
    picked
}

/// The Gamma object of one market as a `closed=true` lookup by condition id serves it, after
/// checking that the default lookup (`closed=false`) leaves it out.
async fn closed_lookup(sim: &SimHandle, cid: &str) -> Value {
    let base = sim.gamma_url();
    let (_, open) = get_json(&format!("{base}/markets/keyset?condition_ids={cid}")).await;
    assert_eq!(
        open["markets"],
        json!([]),
        "closed=false by default leaves it out"
    );
    let (_, closed) = get_json(&format!(
        "{base}/markets/keyset?condition_ids={cid}&closed=true"
    ))
    .await;
    let served = closed["markets"].as_array().expect("markets");
    assert_eq!(served.len(), 1, "{closed}");
    assert_eq!(served[0]["closed"], json!(true));
    served[0].clone()
}

fn stage_of(sim: &SimHandle, cid: &str) -> TruthMarket {
    sim.truth()
        .markets
        .into_iter()
        .find(|m| m.condition_id == cid)
        .expect("in the world")
}

/// Gamma's "2026-03-19 23:20:15+00".
fn gamma_closed_time(m: &Value) -> DateTime<Utc> {
    let ct = m["closedTime"].as_str().expect("closedTime");
    chrono::NaiveDateTime::parse_from_str(ct, "%Y-%m-%d %H:%M:%S+00")
        .expect("Gamma's closedTime form")
        .and_utc()
}

const NEAR_FINAL: [&str; 2] = ["[\"0.9995\", \"0.0005\"]", "[\"0.0005\", \"0.9995\"]"];
const EVEN: &str = "[\"0.5\", \"0.5\"]";

#[tokio::test]
async fn given_each_resolution_knob_then_gamma_serves_that_stage_to_closed_true_lookups_only() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let [closed, proposed, disputed, won, void, silent] =
        <[TruthMarket; 6]>::try_from(plain_open(&t, 6)).expect("six markets");
    let cid = |m: &TruthMarket| m.condition_id.clone();

    // Closed: trading stopped, nothing proposed, market prices frozen.
    assert!(sim.close_market(&cid(&closed)));
    let g = closed_lookup(&sim, &cid(&closed)).await;
    assert!(g.get("umaResolutionStatus").is_none(), "{g}");
    assert_eq!(g["umaResolutionStatuses"], json!("[]"));
    assert_eq!(g["acceptingOrders"], json!(false));
    let prices: Vec<Decimal> =
        serde_json::from_str::<Vec<String>>(g["outcomePrices"].as_str().expect("outcomePrices"))
            .expect("a JSON array in a string")
            .iter()
            .map(|p| p.parse().expect("a decimal"))
            .collect();
    assert_eq!(prices.iter().sum::<Decimal>(), Decimal::ONE);
    assert!(prices
        .iter()
        .all(|p| *p > Decimal::ZERO && *p < Decimal::ONE));
    let closed_at = gamma_closed_time(&g);
    assert_eq!(stage_of(&sim, &cid(&closed)).stage, TruthStage::Closed);
    assert_eq!(stage_of(&sim, &cid(&closed)).closed_time, Some(closed_at));

    // Proposed (straight from open): near-final prices, or untraded-looking 0.5/0.5.
    assert!(sim.propose_result(&cid(&proposed), 1));
    let g = closed_lookup(&sim, &cid(&proposed)).await;
    assert_eq!(g["umaResolutionStatus"], json!("proposed"));
    assert_eq!(g["umaResolutionStatuses"], json!("[\"proposed\"]"));
    let p = g["outcomePrices"].as_str().expect("outcomePrices");
    assert!(p == NEAR_FINAL[1] || p == EVEN, "{p}");
    assert!(g["closedTime"].is_string());
    let tm = stage_of(&sim, &cid(&proposed));
    assert_eq!(tm.stage, TruthStage::Proposed { outcome: 1 });
    assert!(tm.closed && !tm.resolved && tm.final_at.is_none());
    assert_eq!(tm.kind, MarketKind::Closed);

    // Disputed: the history grows, prices stay; then re-proposed.
    assert!(sim.propose_result(&cid(&disputed), 0));
    let before = closed_lookup(&sim, &cid(&disputed)).await;
    assert!(sim.dispute(&cid(&disputed)));
    let g = closed_lookup(&sim, &cid(&disputed)).await;
    assert_eq!(g["umaResolutionStatus"], json!("disputed"));
    assert_eq!(
        g["umaResolutionStatuses"],
        json!("[\"proposed\", \"disputed\"]")
    );
    assert_eq!(g["outcomePrices"], before["outcomePrices"]);
    assert_eq!(g["closedTime"], before["closedTime"], "kept once set");
    assert_eq!(
        stage_of(&sim, &cid(&disputed)).stage,
        TruthStage::Disputed { outcome: 0 }
    );
    assert!(sim.propose_result(&cid(&disputed), 1));
    let g = closed_lookup(&sim, &cid(&disputed)).await;
    assert_eq!(g["umaResolutionStatus"], json!("proposed"));
    assert_eq!(
        g["umaResolutionStatuses"],
        json!("[\"proposed\", \"disputed\", \"proposed\"]")
    );

    // Final with a winner: exactly 1/0; the history may stop short at "proposed".
    assert!(sim.propose_result(&cid(&won), 1));
    assert!(sim.finalize(&cid(&won), SimResult::Winner(1)));
    let g = closed_lookup(&sim, &cid(&won)).await;
    assert_eq!(g["umaResolutionStatus"], json!("resolved"));
    let h = g["umaResolutionStatuses"].as_str().expect("statuses");
    assert!(
        h == "[\"proposed\", \"resolved\"]" || h == "[\"proposed\"]",
        "{h}"
    );
    assert_eq!(g["outcomePrices"], json!("[\"0\", \"1\"]"));
    let tm = stage_of(&sim, &cid(&won));
    assert_eq!(
        tm.stage,
        TruthStage::Final {
            result: SimResult::Winner(1)
        }
    );
    assert!(tm.resolved && tm.final_at.is_some() && tm.kind == MarketKind::Resolved);

    // Final Invalid (straight from open): 0.5/0.5 with status "resolved".
    assert!(sim.finalize(&cid(&void), SimResult::Invalid));
    let g = closed_lookup(&sim, &cid(&void)).await;
    assert_eq!(g["umaResolutionStatus"], json!("resolved"));
    assert_eq!(g["outcomePrices"], json!(EVEN));
    assert!(g["closedTime"].is_string());

    // Final without any status: the nautilus fixture's quirk.
    assert!(sim.finalize_without_status(&cid(&silent), 0));
    let g = closed_lookup(&sim, &cid(&silent)).await;
    assert!(g.get("umaResolutionStatus").is_none(), "{g}");
    assert_eq!(g["umaResolutionStatuses"], json!("[]"));
    assert_eq!(g["outcomePrices"], json!("[\"1\", \"0\"]"));
    let tm = stage_of(&sim, &cid(&silent));
    assert_eq!(tm.stage, TruthStage::FinalWithoutStatus { outcome: 0 });
    assert!(tm.resolved);

    // Refused moves: each knob says false and changes nothing.
    assert!(!sim.dispute(&cid(&closed)), "nothing proposed");
    assert!(!sim.propose_result(&cid(&closed), 2), "no third outcome");
    assert!(!sim.propose_result(&cid(&proposed), 0), "already proposed");
    assert!(!sim.propose_result(&cid(&won), 0), "final");
    assert!(!sim.finalize(&cid(&won), SimResult::Winner(0)), "final");
    assert!(!sim.finalize_without_status(&cid(&void), 0), "final");
    assert!(!sim.close_market(&cid(&won)), "not open");
    let unknown = format!("0x{}", "ab".repeat(32));
    assert!(!sim.close_market(&unknown));
    assert!(!sim.propose_result(&unknown, 0));
    assert!(!sim.dispute(&unknown));
    assert!(!sim.finalize(&unknown, SimResult::Invalid));
    assert!(!sim.finalize_without_status(&unknown, 0));
    assert!(!sim.delist(&unknown));
    assert_eq!(
        stage_of(&sim, &cid(&won)).stage,
        TruthStage::Final {
            result: SimResult::Winner(1)
        }
    );
}

async fn clob_market(sim: &SimHandle, cid: &str) -> Value {
    let (status, body) = get_json(&format!("{}/markets/{cid}", sim.clob_url())).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// (winner, price) of each token, in outcome order.
fn clob_tokens(m: &Value) -> Vec<(bool, Decimal)> {
    m["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| (t["winner"].as_bool().expect("winner"), num_dec(&t["price"])))
        .collect()
}

#[tokio::test]
async fn given_clob_market_endpoint_then_open_and_final_markets_in_clob_shape_with_winner_and_50_50(
) {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let [open, won, void, silent, proposed] =
        <[TruthMarket; 5]>::try_from(plain_open(&t, 5)).expect("five markets");

    // Open: the CLOB market object, typed like clob_market_closed_*_nautilus.json.
    let m = clob_market(&sim, &open.condition_id).await;
    assert_eq!(m["condition_id"], json!(open.condition_id));
    assert_eq!(m["question"], json!(open.question));
    assert!(m["question_id"].as_str().is_some_and(|q| q.len() == 66));
    assert!(m["market_slug"].is_string());
    let end = m["end_date_iso"].as_str().expect("end_date_iso");
    assert_eq!(end, open.end_date.format("%Y-%m-%dT00:00:00Z").to_string());
    for flag in [
        "active",
        "closed",
        "archived",
        "accepting_orders",
        "enable_order_book",
    ] {
        assert!(m[flag].is_boolean(), "{flag}: {m}");
    }
    assert_eq!(m["closed"], json!(false));
    assert_eq!(m["accepting_orders"], json!(true));
    assert_eq!(m["enable_order_book"], json!(true));
    assert_eq!(m["is_50_50_outcome"], json!(false));
    assert_eq!(m["neg_risk"], json!(false));
    assert!(m["minimum_order_size"].is_number() && m["minimum_tick_size"].is_number());
    assert!(m["tags"].is_array());
    let tokens = m["tokens"].as_array().expect("tokens");
    let ids: Vec<&str> = tokens
        .iter()
        .map(|t| t["token_id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        open.token_ids
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let labels: Vec<&str> = tokens
        .iter()
        .map(|t| t["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(labels, vec!["Yes", "No"]);
    let prices = clob_tokens(&m);
    assert!(prices.iter().all(|(winner, _)| !winner));
    assert_eq!(
        prices.iter().map(|(_, p)| *p).sum::<Decimal>(),
        Decimal::ONE
    );

    // Final: the winner token, 1/0.
    assert!(sim.finalize(&won.condition_id, SimResult::Winner(1)));
    let m = clob_market(&sim, &won.condition_id).await;
    assert_eq!(m["closed"], json!(true));
    assert_eq!(m["accepting_orders"], json!(false));
    assert_eq!(m["is_50_50_outcome"], json!(false));
    assert_eq!(
        clob_tokens(&m),
        vec![(false, Decimal::ZERO), (true, Decimal::ONE)]
    );

    // Invalid: no winner, 0.5 each, is_50_50_outcome.
    assert!(sim.finalize(&void.condition_id, SimResult::Invalid));
    let m = clob_market(&sim, &void.condition_id).await;
    assert_eq!(m["closed"], json!(true));
    assert_eq!(m["is_50_50_outcome"], json!(true));
    let half = Decimal::new(5, 1);
    assert_eq!(clob_tokens(&m), vec![(false, half), (false, half)]);

    // Final without a Gamma status: the CLOB still names the winner.
    assert!(sim.finalize_without_status(&silent.condition_id, 0));
    let m = clob_market(&sim, &silent.condition_id).await;
    assert_eq!(m["closed"], json!(true));
    assert_eq!(
        clob_tokens(&m),
        vec![(true, Decimal::ONE), (false, Decimal::ZERO)]
    );

    // Only proposed: no result on the CLOB yet.
    assert!(sim.propose_result(&proposed.condition_id, 0));
    let m = clob_market(&sim, &proposed.condition_id).await;
    assert_eq!(m["closed"], json!(false));
    assert_eq!(m["accepting_orders"], json!(false));
    assert!(clob_tokens(&m).iter().all(|(winner, _)| !winner));

    let (status, body) =
        get_json(&format!("{}/markets/0x{}", sim.clob_url(), "cd".repeat(32))).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "{body}");
    let c = sim.counters();
    assert_eq!(c.requests(Endpoint::ClobMarket), 6);
    assert_eq!(c.items(Endpoint::ClobMarket), 5);
}

#[tokio::test]
async fn given_clob_resolution_lag_then_clob_shows_a_final_market_open_without_winner_until_it_passed(
) {
    // Static world, finalized now: Gamma says resolved at once, the CLOB not for an hour.
    let mut c = cfg(7);
    c.clob_resolution_lag = Duration::from_secs(3_600);
    let sim_static = sim(c).await;
    let t = sim_static.truth();
    let [won] = <[TruthMarket; 1]>::try_from(plain_open(&t, 1)).expect("a market");
    assert!(sim_static.finalize(&won.condition_id, SimResult::Winner(0)));
    let g = closed_lookup(&sim_static, &won.condition_id).await;
    assert_eq!(g["umaResolutionStatus"], json!("resolved"));
    let m = clob_market(&sim_static, &won.condition_id).await;
    assert_eq!(m["closed"], json!(false));
    assert!(clob_tokens(&m).iter().all(|(winner, _)| !winner));

    // Rolling world with a 3 h lag: markets final for longer show their winner, newer ones not.
    let mut c = rolling_cfg(21, Utc::now() - chrono::Duration::hours(30));
    c.clob_resolution_lag = Duration::from_secs(3 * 3_600);
    let sim = sim(c).await;
    let t = sim.truth();
    let now = sim.now();
    let lag = chrono::Duration::hours(3);
    let margin = chrono::Duration::minutes(1);
    let winners = || {
        t.markets.iter().filter(|m| {
            matches!(
                m.stage,
                TruthStage::Final {
                    result: SimResult::Winner(_)
                }
            )
        })
    };
    let recent: Vec<&TruthMarket> = winners()
        .filter(|m| m.final_at.is_some_and(|f| f > now - lag + margin))
        .take(10)
        .collect();
    let older: Vec<&TruthMarket> = winners()
        .filter(|m| m.final_at.is_some_and(|f| f < now - lag - margin))
        .take(10)
        .collect();
    assert_eq!((recent.len(), older.len()), (10, 10));
    for m in recent {
        let served = clob_market(&sim, &m.condition_id).await;
        assert_eq!(served["closed"], json!(false), "{m:?}");
        assert!(clob_tokens(&served).iter().all(|(winner, _)| !winner));
    }
    for m in older {
        let served = clob_market(&sim, &m.condition_id).await;
        assert_eq!(served["closed"], json!(true), "{m:?}");
        let Some(SimResult::Winner(w)) = m.stage.result() else {
            unreachable!("filtered on winners");
        };
        let shown: Vec<bool> = clob_tokens(&served).iter().map(|(w, _)| *w).collect();
        assert_eq!(shown, (0..2).map(|o| o == w).collect::<Vec<_>>());
    }
}

/// A rolling world at 40 markets/hour whose proposals stand 6 h: every stage is held at once.
fn resolving_cfg(seed: u64, anchor: DateTime<Utc>) -> SimConfig {
    let mut c = rolling_cfg(seed, anchor);
    c.new_markets_per_hour = 40.0;
    c.resolve_after = Duration::from_secs(3_600);
    c.finalize_after = Duration::from_secs(6 * 3_600);
    c
}

/// The stage's name, for counting.
fn stage_name(s: &TruthStage) -> &'static str {
    match s {
        TruthStage::Open => "open",
        TruthStage::Closed => "closed",
        TruthStage::Proposed { .. } => "proposed",
        TruthStage::Disputed { .. } => "disputed",
        TruthStage::Final {
            result: SimResult::Winner(_),
        } => "won",
        TruthStage::Final {
            result: SimResult::Invalid,
        } => "invalid",
        TruthStage::FinalWithoutStatus { .. } => "without status",
    }
}

#[tokio::test]
async fn given_rolling_world_then_every_resolution_stage_is_served_in_proportion_and_same_for_a_seed(
) {
    let anchor = Utc::now() - chrono::Duration::hours(30);
    let twin = sim(resolving_cfg(17, anchor)).await;
    let sim = sim(resolving_cfg(17, anchor)).await;
    let before = sim.truth();
    let (served, _) = page_all(&sim, "closed=true&limit=100").await;
    let after = sim.truth();

    // Markets that did not move while the listing was paged, by condition id.
    let stage_after: HashMap<&str, TruthStage> = after
        .markets
        .iter()
        .map(|m| (m.id.as_str(), m.stage))
        .collect();
    let settled: HashMap<&str, &TruthMarket> = before
        .markets
        .iter()
        .filter(|m| m.arrived_at.is_some() && stage_after.get(m.id.as_str()) == Some(&m.stage))
        .map(|m| (m.condition_id.as_str(), m))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in settled.values() {
        *counts.entry(stage_name(&m.stage)).or_default() += 1;
    }
    for name in [
        "open",
        "closed",
        "proposed",
        "disputed",
        "won",
        "invalid",
        "without status",
    ] {
        assert!(
            counts.get(name).is_some_and(|&n| n >= 3),
            "{name}: {counts:?}"
        );
    }
    // Of ≈ 48 h of final markets: ≈ 5 % without status, ≈ 5 % void (neg-risk ones never).
    let finals = counts["won"] + counts["invalid"] + counts["without status"];
    assert!(finals > 1_500, "{finals}");
    let share = |n: usize| n as f64 / finals as f64;
    assert!(
        (0.03..=0.08).contains(&share(counts["without status"])),
        "{counts:?}"
    );
    assert!(
        (0.015..=0.07).contains(&share(counts["invalid"])),
        "{counts:?}"
    );
    assert!(settled
        .values()
        .filter(|m| m.stage
            == TruthStage::Final {
                result: SimResult::Invalid
            })
        .all(|m| !m.neg_risk));

    // What Gamma serves for each stage.
    let (mut disputed_once, mut short, mut untraded, mut still_accepting) = (0, 0, 0, 0);
    let mut resolved_with_status = 0;
    for g in &served {
        let Some(tm) = g["conditionId"].as_str().and_then(|c| settled.get(c)) else {
            continue;
        };
        let status = g.get("umaResolutionStatus").and_then(Value::as_str);
        let history = g["umaResolutionStatuses"].as_str().expect("statuses");
        let prices = g["outcomePrices"].as_str().expect("outcomePrices");
        assert_eq!(gamma_closed_time(g), tm.closed_time.expect("closed time"));
        if g["acceptingOrders"] == json!(true) {
            still_accepting += 1;
        }
        match tm.stage {
            TruthStage::Open => panic!("an open market in a closed=true listing: {g}"),
            TruthStage::Closed => {
                assert_eq!((status, history), (None, "[]"), "{g}");
            }
            TruthStage::Proposed { outcome } | TruthStage::Disputed { outcome } => {
                let want = if matches!(tm.stage, TruthStage::Proposed { .. }) {
                    "proposed"
                } else {
                    "disputed"
                };
                assert_eq!(status, Some(want), "{g}");
                assert!(prices == NEAR_FINAL[outcome] || prices == EVEN, "{g}");
                untraded += usize::from(prices == EVEN);
            }
            TruthStage::Final { result } => {
                assert_eq!(status, Some("resolved"), "{g}");
                assert!(history.starts_with("[\"proposed\""), "{g}");
                resolved_with_status += 1;
                disputed_once += usize::from(history.contains("disputed"));
                short += usize::from(history == "[\"proposed\"]");
                let want = match result {
                    SimResult::Winner(0) => "[\"1\", \"0\"]",
                    SimResult::Winner(_) => "[\"0\", \"1\"]",
                    SimResult::Invalid => EVEN,
                };
                assert_eq!(prices, want, "{g}");
            }
            TruthStage::FinalWithoutStatus { outcome } => {
                assert_eq!((status, history), (None, "[]"), "{g}");
                assert_eq!(prices, ["[\"1\", \"0\"]", "[\"0\", \"1\"]"][outcome], "{g}");
            }
        }
    }
    // ≈ 10 % of the markets final with a status were disputed first; some histories stop
    // short; some proposals look untraded; some closed markets still accept orders.
    let disputed_share = disputed_once as f64 / resolved_with_status as f64;
    assert!((0.06..=0.15).contains(&disputed_share), "{disputed_share}");
    assert!(short > 0 && untraded > 0 && still_accepting > 0);

    // The same seed and anchor: the same results at the same times.
    let cutoff = sim.now().min(twin.now()) - chrono::Duration::minutes(1);
    let finals_by = |t: &Truth| -> Vec<String> {
        t.markets
            .iter()
            .filter(|m| m.final_at.is_some_and(|f| f < cutoff))
            .filter(|m| {
                m.final_at
                    .is_some_and(|f| f > cutoff - chrono::Duration::hours(40))
            })
            .map(|m| {
                format!(
                    "{} {:?} {:?} {:?}",
                    m.id, m.stage, m.final_at, m.closed_time
                )
            })
            .collect()
    };
    let (a, b) = (finals_by(&sim.truth()), finals_by(&twin.truth()));
    assert!(a.len() > 1_000, "{}", a.len());
    assert_eq!(a, b);
}

#[tokio::test]
async fn given_a_delisted_market_then_gamma_and_the_clob_no_longer_know_it() {
    let sim = sim(cfg(7)).await;
    let t = sim.truth();
    let [open] = <[TruthMarket; 1]>::try_from(plain_open(&t, 1)).expect("a market");
    let resolved = t
        .markets
        .iter()
        .find(|m| m.kind == MarketKind::Resolved)
        .expect("a resolved trap")
        .clone();
    assert!(sim.delist(&open.condition_id));
    assert!(sim.delist(&resolved.condition_id));
    assert!(!sim.delist(&open.condition_id), "already gone");

    let gamma = sim.gamma_url();
    for m in [&open, &resolved] {
        let cid = &m.condition_id;
        for closed in ["", "&closed=true", "&closed=false"] {
            let (_, keyset) = get_json(&format!(
                "{gamma}/markets/keyset?condition_ids={cid}{closed}"
            ))
            .await;
            assert_eq!(keyset["markets"], json!([]), "{cid}{closed}");
            let (_, legacy) =
                get_json(&format!("{gamma}/markets?condition_ids={cid}{closed}")).await;
            assert_eq!(legacy, json!([]), "{cid}{closed}");
        }
        let (status, body) = get_json(&format!("{}/markets/{cid}", sim.clob_url())).await;
        assert_eq!(status, 404, "{body}");
        assert!(body["error"].is_string());
        assert!(!sim.propose_result(cid, 0) && !sim.finalize(cid, SimResult::Invalid));
    }
    let (status, _) = get_json(&format!(
        "{}/book?token_id={}",
        sim.clob_url(),
        open.token_ids[0]
    ))
    .await;
    assert_eq!(status, 404);
    let gone: HashSet<&str> =
        HashSet::from([open.condition_id.as_str(), resolved.condition_id.as_str()]);
    for closed in ["false", "true"] {
        let (markets, _) = page_all(&sim, &format!("limit=100&closed={closed}")).await;
        assert!(markets
            .iter()
            .all(|m| !gone.contains(m["conditionId"].as_str().expect("conditionId"))));
        let (_, events) =
            get_json(&format!("{gamma}/events/keyset?limit=500&closed={closed}")).await;
        for e in events["events"].as_array().expect("events") {
            for m in e["markets"].as_array().expect("nested markets") {
                assert!(!gone.contains(m["conditionId"].as_str().expect("conditionId")));
            }
        }
    }
    let after = sim.truth();
    assert!(after
        .markets
        .iter()
        .all(|m| !gone.contains(m.condition_id.as_str())));
    assert_eq!(after.markets.len(), t.markets.len() - 2);
    assert_eq!(
        after.delisted,
        vec![open.condition_id.clone(), resolved.condition_id.clone()]
    );
}
