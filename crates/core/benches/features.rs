//! Features of a 200-level book (target: under 20 µs), in Polymarket's order (best last) and
//! shuffled (the sort path).

use criterion::{criterion_group, criterion_main, Criterion};
use polytape_core::{Book, BookFeatures, Level};
use rust_decimal::Decimal;
use std::hint::black_box;

fn book_200(shuffle: bool) -> Book {
    // 100 bids 0.0001..0.4950 ascending, 100 asks 0.9999..0.5050 descending.
    let mut bids: Vec<Level> = (0..100)
        .map(|i| Level {
            price: Decimal::new(1 + i * 49, 4),
            size: Decimal::new(1000 + i * 37, 2),
        })
        .collect();
    let mut asks: Vec<Level> = (0..100)
        .map(|i| Level {
            price: Decimal::new(9999 - i * 49, 4),
            size: Decimal::new(2000 + i * 53, 2),
        })
        .collect();
    if shuffle {
        // A fixed permutation: interleave halves.
        bids = bids
            .chunks(2)
            .flat_map(|c| c.iter().rev().copied())
            .collect();
        asks = asks
            .chunks(3)
            .flat_map(|c| c.iter().rev().copied())
            .collect();
    }
    Book {
        token_id: "1".into(),
        bids,
        asks,
        ..Book::default()
    }
}

fn bench(c: &mut Criterion) {
    let ordered = book_200(false);
    let shuffled = book_200(true);
    c.bench_function("book_features_200_levels_polymarket_order", |b| {
        b.iter(|| BookFeatures::of(black_box(&ordered)))
    });
    c.bench_function("book_features_200_levels_shuffled", |b| {
        b.iter(|| BookFeatures::of(black_box(&shuffled)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
