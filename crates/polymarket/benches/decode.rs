//! Decoding one 100-market Gamma keyset page into `Vec<GammaMarket>` the way the client does:
//! the envelope once, then each market on its own from its `serde_json::Value` (so one bad
//! market is rejected without losing the page). The page is built from the recorded fixture
//! markets with varied condition ids, ids and token ids.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polytape_polymarket::gamma::decode_keyset_page;
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;

const FIXTURES: [&str; 7] = [
    "gamma_market_btc_updown_5m_nautilus.json",
    "gamma_market_closed_accepting_false_nautilus.json",
    "gamma_market_closed_accepting_true_nautilus.json",
    "gamma_market_closed_nonbinary_legacy_nautilus.json",
    "gamma_market_closed_zero_zero_legacy_nautilus.json",
    "gamma_market_sports_map_handicap_nautilus.json",
    "gamma_market_sports_moneyline_nautilus.json",
];

fn page_of_100() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut templates: Vec<Value> = FIXTURES
        .iter()
        .map(|n| {
            serde_json::from_slice(&std::fs::read(dir.join(n)).expect("fixture")).expect("json")
        })
        .collect();
    // The neg-risk event's markets are the plain (no nested events) shape of a listing.
    let events: Value = serde_json::from_slice(
        &std::fs::read(dir.join("gamma_events_negrisk_nautilus.json")).expect("fixture"),
    )
    .expect("json");
    if let Some(ms) = events[0]["markets"].as_array() {
        templates.extend(ms.iter().cloned());
    }
    let markets: Vec<Value> = (0..100u64)
        .map(|i| {
            let mut m = templates[i as usize % templates.len()].clone();
            m["id"] = json!((1_000_000 + i).to_string());
            m["conditionId"] = json!(format!("0x{:064x}", 0xC0DE_0000 + i));
            let yes = format!("{:0>77}", 10_000_000_000u64 + 2 * i);
            let no = format!("{:0>77}", 10_000_000_001u64 + 2 * i);
            m["clobTokenIds"] = json!(format!("[\"{yes}\", \"{no}\"]"));
            m
        })
        .collect();
    serde_json::to_vec(&json!({ "markets": markets, "next_cursor": "MTAw" })).expect("page")
}

fn bench(c: &mut Criterion) {
    let body = page_of_100();
    let page = decode_keyset_page(&body).expect("page decodes");
    assert_eq!(page.markets.len(), 100);
    assert!(page.rejected.is_empty());
    let mut g = c.benchmark_group("gamma_keyset_page");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("100_markets_per_market_value", |b| {
        b.iter(|| decode_keyset_page(black_box(&body)).expect("page").markets)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
