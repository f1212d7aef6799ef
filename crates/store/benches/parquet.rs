//! Parquet encoding throughput: a tier tick's snapshots file (10,000 fully populated rows,
//! target > 200,000 rows/s) and an order-book file (1,000 rows of 2 × 100 levels).

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polytape_core::snapshot::OrderbookRow;
use polytape_core::{Level, Snapshot, Tier};
use polytape_store::parquet::{encode_orderbooks, encode_snapshots};
use rust_decimal::Decimal;
use std::hint::black_box;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_300_200, 0).unwrap_or_default()
}

/// A decimal with up to 6 places that varies with `i`, like real prices and sizes do.
fn dec(i: usize, scale: u32, modulo: i64) -> Option<Decimal> {
    Some(Decimal::new((i as i64 * 7919) % modulo, scale))
}

fn snapshot(i: usize) -> Snapshot {
    let ts = t0();
    Snapshot {
        snapshot_ts: ts,
        fetched_at: ts + Duration::milliseconds((i % 900) as i64),
        condition_id: format!("0x{:064x}", i * 2_654_435_761),
        token_id: format!("{:077}", i * 11_400_714_819_323),
        tier: Some(Tier::T2),
        interval_s: 60,
        price: dec(i, 3, 1000),
        best_bid: dec(i, 2, 100),
        best_ask: dec(i + 1, 2, 100),
        spread: dec(i, 2, 10),
        last_trade_price: dec(i, 3, 1000),
        mid_price: dec(i, 3, 1000),
        price_change_1h: dec(i, 4, 2000),
        price_change_1d: dec(i, 4, 2000),
        price_change_1w: dec(i, 4, 2000),
        price_change_1m: dec(i, 4, 2000),
        volume_total: dec(i, 6, 9_000_000_000_000),
        volume_24h: dec(i, 6, 90_000_000_000),
        volume_1w: dec(i, 6, 900_000_000_000),
        liquidity: dec(i, 6, 9_000_000_000),
        bid_depth_5: dec(i, 2, 1_000_000),
        bid_depth_10: dec(i, 2, 2_000_000),
        bid_depth_20: dec(i, 2, 3_000_000),
        bid_depth_50: dec(i, 2, 4_000_000),
        ask_depth_5: dec(i, 2, 1_000_000),
        ask_depth_10: dec(i, 2, 2_000_000),
        ask_depth_20: dec(i, 2, 3_000_000),
        ask_depth_50: dec(i, 2, 4_000_000),
        bid_levels: Some((i % 100) as u32),
        ask_levels: Some((i % 97) as u32),
        book_imbalance: Some((i % 200) as f64 / 100.0 - 1.0),
        bid_wall_price: dec(i, 2, 100),
        bid_wall_size: dec(i, 2, 10_000_000),
        ask_wall_price: dec(i, 2, 100),
        ask_wall_size: dec(i, 2, 10_000_000),
        tick_size: Some(Decimal::new(1, 3)),
        trade_count_1h: Some((i % 500) as u32),
        buy_count_1h: Some((i % 300) as u32),
        sell_count_1h: Some((i % 200) as u32),
        volume_1h: dec(i, 6, 9_000_000_000),
        buy_volume_1h: dec(i, 6, 5_000_000_000),
        sell_volume_1h: dec(i, 6, 4_000_000_000),
        avg_trade_size_1h: dec(i, 6, 900_000_000),
        max_trade_size_1h: dec(i, 6, 9_000_000_000),
        vwap_1h: dec(i, 6, 1_000_000),
        whale_count_1h: Some((i % 7) as u32),
        whale_volume_1h: dec(i, 6, 9_000_000_000),
        whale_buy_volume_1h: dec(i, 6, 5_000_000_000),
        whale_sell_volume_1h: dec(i, 6, 4_000_000_000),
        whale_net_flow_1h: dec(i, 6, 1_000_000_000),
        whale_buy_ratio_1h: Some((i % 100) as f64 / 100.0),
        time_since_whale_s: Some((i % 3600) as i64),
        pct_volume_from_whales: Some((i % 100) as f64 / 100.0),
        hours_to_close: Some((i % 12_000) as f64 / 1000.0),
        day_of_week: Some(5),
        hour_of_day: Some(22),
        category: Some(["Crypto", "Sports", "Politics"][i % 3].to_string()),
        neg_risk: Some(i.is_multiple_of(2)),
        competitive: Some((i % 1000) as f64 / 1000.0),
    }
}

fn side(i: usize, n: usize, best: i64, step: i64) -> Vec<Level> {
    (0..n)
        .map(|k| Level {
            price: Decimal::new(best + step * k as i64, 3),
            size: Decimal::new(((i * 31 + k * 17) % 100_000) as i64 + 1, 2),
        })
        .collect()
}

fn orderbook(i: usize) -> OrderbookRow {
    OrderbookRow {
        snapshot_ts: t0(),
        fetched_at: t0() + Duration::milliseconds((i % 900) as i64),
        condition_id: format!("0x{:064x}", i * 2_654_435_761),
        token_id: format!("{:077}", i * 11_400_714_819_323),
        tier: Tier::T3,
        book_ts: Some(t0()),
        book_hash: Some(format!("{:040x}", i * 40_503)),
        tick_size: Some(Decimal::new(1, 3)),
        bids: side(i, 100, 450, -4),
        asks: side(i, 100, 460, 5),
    }
}

fn bench(c: &mut Criterion) {
    let rows: Vec<Snapshot> = (0..10_000).map(snapshot).collect();
    let mut g = c.benchmark_group("parquet");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("encode_snapshots_10k_rows", |b| {
        b.iter(|| encode_snapshots(black_box(&rows)).map(|e| e.bytes.len()))
    });
    let books: Vec<OrderbookRow> = (0..1_000).map(orderbook).collect();
    g.throughput(Throughput::Elements(books.len() as u64));
    g.bench_function("encode_orderbooks_1k_rows_2x100_levels", |b| {
        b.iter(|| encode_orderbooks(black_box(&books)).map(|e| e.bytes.len()))
    });
    g.finish();

    if let (Ok(s), Ok(o)) = (encode_snapshots(&rows), encode_orderbooks(&books)) {
        eprintln!(
            "file sizes: snapshots 10k rows {} KiB, orderbooks 1k rows {} KiB",
            s.bytes.len() / 1024,
            o.bytes.len() / 1024
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
