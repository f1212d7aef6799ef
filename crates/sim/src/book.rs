//! Prices and books: a deterministic price walk per token, the top of book derived from it, and
//! full books in Polymarket's served order (bids ascending, asks descending — best LAST).
//!
//! Everything is a pure function of (seed, market, outcome, sim second): the walk is a sum of
//! smoothly interpolated value-noise octaves whose amplitude grows with the square root of their
//! period (so it wanders like a random walk over minutes to hours) yet any second can be computed
//! in O(1) without replaying history. A binary market's second token mirrors the first
//! (NO bid = 1 − YES ask), as on Polymarket's unified book.

use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::rng::{fnv1a, mix, unit, FNV_BASIS};
use crate::world::{SimMarket, World};
use crate::BadLevel;

/// Top of book and last trade, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quote {
    pub bid: i64,
    pub ask: i64,
    pub last: i64,
}

impl Quote {
    /// Mid rounded to the tick (half ticks round up).
    pub fn mid(&self) -> i64 {
        (self.bid + self.ask + 1) / 2
    }
}

/// Levels in ticks, served order: bids ascending, asks descending.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Levels {
    pub bids: Vec<(i64, Decimal)>,
    pub asks: Vec<(i64, Decimal)>,
}

/// A book ready to serve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BookOut {
    pub token_id: String,
    pub condition_id: String,
    pub hash: String,
    /// Served order, including any bad level.
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
    pub tick: Decimal,
    pub last: Decimal,
    pub neg_risk: bool,
    pub min_order_size: u32,
    /// Served with `timestamp` and `hash` of the wrong type (the market drifted).
    pub drifted: bool,
}

/// Price of `ticks` at `scale` decimal places, without trailing zeros.
pub(crate) fn price(ticks: i64, scale: u32) -> Decimal {
    Decimal::new(ticks, scale).normalize()
}

fn walk_key(m: &SimMarket, outcome: usize) -> u64 {
    mix(&[m.price_key, outcome as u64])
}

fn lattice(seed: u64, key: u64, octave: u32, i: i64) -> f64 {
    unit(mix(&[seed, key, u64::from(octave), i as u64])) * 2.0 - 1.0
}

/// Probability of `outcome` at `step` (sim epoch second).
fn walk(seed: u64, key: u64, p0: f64, step: i64) -> f64 {
    let p0 = p0.clamp(0.02, 0.98);
    let mut x = (p0 / (1.0 - p0)).ln();
    for octave in 0..8u32 {
        let period = 4i64.pow(octave);
        let amp = 0.0025 * (period as f64).sqrt();
        let i = step.div_euclid(period);
        let f = step.rem_euclid(period) as f64 / period as f64;
        let t = f * f * (3.0 - 2.0 * f);
        let v0 = lattice(seed, key, octave, i);
        let v1 = lattice(seed, key, octave, i + 1);
        x += amp * (v0 + (v1 - v0) * t);
    }
    1.0 / (1.0 + (-x).exp())
}

/// The second a closed market's prices froze at, or `step`.
fn effective_step(m: &SimMarket, step: i64) -> i64 {
    m.frozen_step.map_or(step, |f| f.min(step))
}

/// Top of book of `outcome` at `step`.
pub(crate) fn quote(world: &World, m: &SimMarket, outcome: usize, step: i64) -> Quote {
    let step = effective_step(m, step);
    let units = m.units();
    if m.binary() && outcome == 1 {
        let q = quote(world, m, 0, step);
        return Quote {
            bid: units - q.ask,
            ask: units - q.bid,
            last: units - q.last,
        };
    }
    let key = walk_key(m, outcome);
    let p0 = if outcome == 0 {
        m.p0
    } else {
        0.1 + 0.5 * unit(mix(&[key, 0x90]))
    };
    let p = walk(world.seed, key, p0, step);
    let s_max = if units <= 100 { 3 } else { 8 };
    let spread = 1 + (mix(&[world.seed, key, 0x5, step.div_euclid(7) as u64]) % s_max) as i64;
    // Keep the top far enough from 0 and 1 that each side can hold the minimum level count.
    let need = (world.book_levels.0 as i64)
        .max(1)
        .min((units - spread) / 2)
        .max(1);
    let bid = ((p * units as f64) - spread as f64 / 2.0).round() as i64;
    let bid = bid.clamp(need, (units - need - spread).max(need));
    let ask = bid + spread;
    let last = if mix(&[world.seed, key, 0x1a57, step.div_euclid(3) as u64]) & 1 == 0 {
        bid
    } else {
        ask
    };
    Quote { bid, ask, last }
}

/// Full levels of `outcome` at `step`.
pub(crate) fn levels(world: &World, m: &SimMarket, outcome: usize, step: i64) -> Levels {
    let step = effective_step(m, step);
    let units = m.units();
    if m.binary() && outcome == 1 {
        let yes = levels(world, m, 0, step);
        return Levels {
            bids: yes.asks.iter().map(|&(p, s)| (units - p, s)).collect(),
            asks: yes.bids.iter().map(|&(p, s)| (units - p, s)).collect(),
        };
    }
    let q = quote(world, m, outcome, step);
    let key = walk_key(m, outcome);
    let (lo, hi) = world.book_levels;
    let (lo, hi) = (lo.min(hi) as u64, lo.max(hi) as u64);
    let target = |side: u64| {
        (lo + mix(&[world.seed, key, 0xb1d, side, step.div_euclid(30) as u64]) % (hi - lo + 1))
            as i64
    };

    let bid_prices = side_prices(world.seed, key, 0, q.bid, -1, target(0).min(q.bid), units);
    let ask_prices = side_prices(
        world.seed,
        key,
        1,
        q.ask,
        1,
        target(1).min(units - q.ask),
        units,
    );
    let size_of = |side: u64, p: i64| level_size(world.seed, key, side, p, step);
    // Generated best-first; served worst-first (best LAST).
    let bids = bid_prices
        .iter()
        .rev()
        .map(|&p| (p, size_of(0, p)))
        .collect();
    let asks = ask_prices
        .iter()
        .rev()
        .map(|&p| (p, size_of(1, p)))
        .collect();
    Levels { bids, asks }
}

/// `n` distinct prices from `best` moving in `dir`, with occasional one-tick holes, staying
/// inside (0, units).
fn side_prices(
    seed: u64,
    key: u64,
    side: u64,
    best: i64,
    dir: i64,
    n: i64,
    units: i64,
) -> Vec<i64> {
    let mut out = Vec::with_capacity(n.max(0) as usize);
    let mut cur = best;
    for i in 0..n {
        out.push(cur);
        let remaining = n - i - 1;
        let room = if dir < 0 { cur - 1 } else { units - 1 - cur };
        // Holes depend on the price only, so the level grid is stable from second to second.
        let hole = room > remaining && mix(&[seed, key, 0x401e, side, cur as u64]) % 10 < 3;
        cur += dir * if hole { 2 } else { 1 };
    }
    out
}

/// Size at one level: log-uniform 5..5000, sometimes with cents, rarely a wall; each level
/// changes every 5 s on its own phase, so a few levels change per second.
fn level_size(seed: u64, key: u64, side: u64, p: i64, step: i64) -> Decimal {
    let phase = (mix(&[seed, key, 0xfa5e, side, p as u64]) % 5) as i64;
    let epoch = (step + phase).div_euclid(5);
    let r = mix(&[seed, key, 0x517e, side, p as u64, epoch as u64]);
    let v = (5f64.ln() + (5000f64.ln() - 5f64.ln()) * unit(r)).exp();
    let v = if (r >> 7).is_multiple_of(50) {
        v * 20.0
    } else {
        v
    };
    let cents = (v * 100.0).round() as i64;
    let cents = if (r >> 13).is_multiple_of(3) {
        cents
    } else {
        (cents / 100).max(1) * 100
    };
    Decimal::new(cents.max(1), 2).normalize()
}

/// The served book of `outcome` of market `m` at `step`, with `bad` added if the token is
/// corrupted.
pub(crate) fn served_book(
    world: &World,
    m: &SimMarket,
    outcome: usize,
    step: i64,
    bad: Option<BadLevel>,
) -> BookOut {
    let scale = m.tick_scale;
    let lv = levels(world, m, outcome, step);
    let q = quote(world, m, outcome, step);
    let mut bids: Vec<(Decimal, Decimal)> =
        lv.bids.iter().map(|&(p, s)| (price(p, scale), s)).collect();
    let mut asks: Vec<(Decimal, Decimal)> =
        lv.asks.iter().map(|&(p, s)| (price(p, scale), s)).collect();
    match bad {
        Some(BadLevel::PriceAboveOne) => bids.push((Decimal::new(15, 1), Decimal::from(10))),
        Some(BadLevel::NegativeSize) => {
            // At the worst end, above the highest ask, so the descending order still holds.
            let worst = lv.asks.first().map_or(m.units() - 1, |&(p, _)| p);
            let p = if worst + 1 < m.units() {
                worst + 1
            } else {
                worst
            };
            asks.insert(0, (price(p, scale), Decimal::from(-3)));
        }
        Some(BadLevel::Crossed) => {
            // Best (last) ask in ticks; one tick above it, or at it when that is 1.
            let best_ask = lv.asks.last().map_or(m.units(), |&(p, _)| p);
            let p = (best_ask + 1).min(m.units());
            bids.push((price(p, scale), Decimal::from(10)));
        }
        Some(BadLevel::ZeroSize) => {
            // At the worst end of the bids, below the lowest one when there is room.
            let worst = lv.bids.first().map_or(1, |&(p, _)| p);
            let p = if worst > 1 { worst - 1 } else { worst };
            bids.insert(0, (price(p, scale), Decimal::ZERO));
        }
        None => {}
    }
    let token_id = m.token_ids.get(outcome).cloned().unwrap_or_default();
    let tick = m.tick();
    let hash = content_hash(&token_id, tick, &bids, &asks);
    BookOut {
        token_id,
        condition_id: m.condition_id.clone(),
        hash,
        bids,
        asks,
        tick,
        last: price(q.last, scale),
        neg_risk: m.neg_risk,
        min_order_size: m.order_min_size,
        drifted: world.drifted(m),
    }
}

/// 40 hex digits of FNV-1a over the book's content: equal content, equal hash.
fn content_hash(
    token_id: &str,
    tick: Decimal,
    bids: &[(Decimal, Decimal)],
    asks: &[(Decimal, Decimal)],
) -> String {
    let mut text = String::with_capacity(64 + 24 * (bids.len() + asks.len()));
    text.push_str(token_id);
    let _ = write!(text, "|{tick}|b");
    for (p, s) in bids {
        let _ = write!(text, "{p}:{s};");
    }
    text.push_str("|a");
    for (p, s) in asks {
        let _ = write!(text, "{p}:{s};");
    }
    let bytes = text.as_bytes();
    let a = fnv1a(FNV_BASIS, bytes);
    let b = fnv1a(FNV_BASIS ^ 0x9E37_79B9_7F4A_7C15, bytes);
    let c = fnv1a(FNV_BASIS ^ 0xC2B2_AE3D_27D4_EB4F, bytes);
    let mut h = format!("{a:016x}{b:016x}{c:016x}");
    h.truncate(40);
    h
}

fn write_levels(out: &mut String, levels: &[(Decimal, Decimal)]) {
    out.push('[');
    for (i, (p, s)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"price\":\"{p}\",\"size\":\"{s}\"}}");
    }
    out.push(']');
}

/// `"timestamp":…,"hash":…` as served: strings, or of the wrong type when the market drifted
/// (an object and an array).
fn write_stamp(out: &mut String, b: &BookOut, ts_ms: i64) {
    if b.drifted {
        let _ = write!(
            out,
            "\"timestamp\":{{\"ms\":\"{ts_ms}\"}},\"hash\":[\"{}\"]",
            b.hash
        );
    } else {
        let _ = write!(out, "\"timestamp\":\"{ts_ms}\",\"hash\":\"{}\"", b.hash);
    }
}

/// The REST book object (every number a string).
pub(crate) fn write_rest_book(out: &mut String, b: &BookOut, ts_ms: i64) {
    let _ = write!(
        out,
        "{{\"market\":\"{}\",\"asset_id\":\"{}\",",
        b.condition_id, b.token_id
    );
    write_stamp(out, b, ts_ms);
    out.push_str(",\"bids\":");
    write_levels(out, &b.bids);
    out.push_str(",\"asks\":");
    write_levels(out, &b.asks);
    let _ = write!(
        out,
        ",\"min_order_size\":\"{}\",\"tick_size\":\"{}\",\"neg_risk\":{},\"last_trade_price\":\"{}\"}}",
        b.min_order_size, b.tick, b.neg_risk, b.last
    );
}

/// The WebSocket `book` event.
pub(crate) fn write_ws_book(out: &mut String, b: &BookOut, ts_ms: i64) {
    let _ = write!(
        out,
        "{{\"event_type\":\"book\",\"asset_id\":\"{}\",\"market\":\"{}\",\"bids\":",
        b.token_id, b.condition_id
    );
    write_levels(out, &b.bids);
    out.push_str(",\"asks\":");
    write_levels(out, &b.asks);
    out.push(',');
    write_stamp(out, b, ts_ms);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn world(levels: (usize, usize)) -> World {
        let mut cfg = SimConfig::new(11);
        cfg.markets_per_tier = 6;
        cfg.book_levels = levels;
        World::generate(&cfg)
    }

    #[test]
    fn given_every_book_over_many_seconds_then_polymarket_order_no_cross_and_level_bounds() {
        let w = world((20, 120));
        let step0 = w.now.timestamp();
        let mut checked = 0;
        for (token, &(idx, o)) in &w.books {
            let m = &w.markets[idx];
            for step in (step0..step0 + 3_600).step_by(397) {
                let b = served_book(&w, m, o, step, None);
                assert_eq!(&b.token_id, token);
                assert!(
                    (20..=120).contains(&b.bids.len()),
                    "bid levels {}",
                    b.bids.len()
                );
                assert!(
                    (20..=120).contains(&b.asks.len()),
                    "ask levels {}",
                    b.asks.len()
                );
                assert!(b.bids.windows(2).all(|w| w[0].0 < w[1].0), "bids ascending");
                assert!(
                    b.asks.windows(2).all(|w| w[0].0 > w[1].0),
                    "asks descending"
                );
                let (best_bid, best_ask) = (b.bids[b.bids.len() - 1].0, b.asks[b.asks.len() - 1].0);
                assert!(best_bid < best_ask, "crossed: {best_bid} >= {best_ask}");
                assert!(b.bids[0].0 > Decimal::ZERO && b.asks[0].0 < Decimal::ONE);
                for (p, s) in b.bids.iter().chain(&b.asks) {
                    assert!(*s > Decimal::ZERO && s.scale() <= 2, "size {s}");
                    assert!(p.scale() <= m.tick_scale, "price {p} off tick {}", m.tick());
                }
                let q = quote(&w, m, o, step);
                assert_eq!(
                    (price(q.bid, m.tick_scale), price(q.ask, m.tick_scale)),
                    (best_bid, best_ask)
                );
                checked += 1;
            }
        }
        assert!(checked > 500);
    }

    #[test]
    fn given_binary_market_then_no_book_mirrors_yes_book() {
        let w = world((20, 120));
        let m = w
            .markets
            .iter()
            .find(|m| m.has_book && m.binary())
            .expect("a binary market with a book");
        let step = w.now.timestamp();
        let yes = served_book(&w, m, 0, step, None);
        let no = served_book(&w, m, 1, step, None);
        assert_eq!(no.bids.len(), yes.asks.len());
        for ((np, ns), (yp, ys)) in no.bids.iter().zip(&yes.asks) {
            assert_eq!(*np, Decimal::ONE - yp);
            assert_eq!(ns, ys);
        }
        assert_ne!(yes.hash, no.hash);
    }

    #[test]
    fn given_same_second_then_same_hash_and_later_content_changes_the_hash() {
        let w = world((20, 120));
        let (_, &(idx, o)) = w.books.iter().next().expect("a book");
        let m = &w.markets[idx];
        let s = w.now.timestamp();
        let a = served_book(&w, m, o, s, None);
        assert_eq!(a, served_book(&w, m, o, s, None));
        let later = served_book(&w, m, o, s + 7, None);
        assert_ne!(
            a.bids.iter().chain(&a.asks).collect::<Vec<_>>(),
            later.bids.iter().chain(&later.asks).collect::<Vec<_>>()
        );
        assert_ne!(a.hash, later.hash);
        assert_eq!(a.hash.len(), 40);
        assert!(a.hash.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn given_bad_level_then_one_extra_invalid_level_and_order_kept() {
        let w = world((20, 120));
        let (_, &(idx, o)) = w.books.iter().next().expect("a book");
        let m = &w.markets[idx];
        let s = w.now.timestamp();
        let clean = served_book(&w, m, o, s, None);
        let high = served_book(&w, m, o, s, Some(BadLevel::PriceAboveOne));
        assert_eq!(high.bids.len(), clean.bids.len() + 1);
        assert_eq!(
            high.bids.last(),
            Some(&(Decimal::new(15, 1), Decimal::from(10)))
        );
        assert_eq!(high.asks, clean.asks);
        assert_ne!(high.hash, clean.hash);
        let neg = served_book(&w, m, o, s, Some(BadLevel::NegativeSize));
        assert_eq!(neg.asks.len(), clean.asks.len() + 1);
        assert_eq!(neg.asks[0].1, Decimal::from(-3));
        assert_eq!(&neg.asks[1..], &clean.asks[..]);
        let crossed = served_book(&w, m, o, s, Some(BadLevel::Crossed));
        let (best_bid, best_ask) = (
            crossed.bids.last().expect("bid").0,
            crossed.asks.last().expect("ask").0,
        );
        assert!(best_bid >= best_ask, "{best_bid} < {best_ask}");
        assert!(
            crossed.bids.windows(2).all(|w| w[0].0 < w[1].0),
            "bids still ascending"
        );
        assert_eq!(&crossed.bids[..clean.bids.len()], &clean.bids[..]);
        let zero = served_book(&w, m, o, s, Some(BadLevel::ZeroSize));
        assert_eq!(zero.bids[0].1, Decimal::ZERO);
        assert_eq!(&zero.bids[1..], &clean.bids[..]);
        assert_ne!(zero.hash, clean.hash);
    }

    #[test]
    fn given_tight_level_bounds_then_books_hold_exactly_that_many_levels() {
        let w = world((3, 3));
        for (_, &(idx, o)) in w.books.iter().take(20) {
            let b = served_book(&w, &w.markets[idx], o, w.now.timestamp(), None);
            assert_eq!((b.bids.len(), b.asks.len()), (3, 3));
        }
    }
}
