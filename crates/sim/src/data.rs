//! The trade stream and the Data API `GET /trades`.
//!
//! Trades are a pure function of (seed, market, minute): each minute of a market with a live book
//! holds a few trades at the book's touch (BUY at the ask, SELL at the bid), some of them whales,
//! and some sharing a transaction hash with the previous fill (one tx settling several fills, as
//! on Polymarket). The WebSocket reports the very same trades live as `last_trade_price`, so a
//! collector's live capture and its Data API backfill overlap exactly where they should. A busy
//! market (`SimConfig::busy_markets`) trades 12–13 times a second. A market whose book was taken
//! down keeps its trades from before (Polymarket keeps a closed market's history).
//!
//! `GET /trades` serves each fill once, from the taker's side (`takerOnly=true`, the default);
//! `takerOnly=false` adds the maker's row of each fill: another wallet, the opposite side, the
//! same token, price, size and transaction. Rows are on the block clock: a fill is served once
//! its transaction was mined (`SimConfig::block_lag` after the match at most), timestamped with
//! the block second, and `start`/`end` and the newest-first order are block times.

use std::collections::HashMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::book::{price, quote, Quote};
use crate::gamma::num;
use crate::rng::{mix, unit};
use crate::server::{Ctx, Pending, Served};
use crate::world::{hex_of, SimMarket, World};
use crate::{SimError, TradeSide, TruthTrade};

/// Largest page the Data API serves (larger limits are clamped).
const MAX_LIMIT: u64 = 10_000;
/// Largest offset (beyond: 400, never clamped).
const MAX_OFFSET: u64 = 10_000;
/// Distinct traders in the world (so wallets, whales included, recur).
const WALLETS: u64 = 400;
/// Trades per minute of a busy market, at least (up to 60 more): 12–13 a second.
const BUSY_PER_MINUTE: u64 = 720;

/// One simulated fill.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SimTrade {
    pub ms: i64,
    /// When its transaction was mined: `ms`, or later by a lag drawn for the transaction.
    pub block_ms: i64,
    pub outcome: usize,
    pub buy: bool,
    pub price: Decimal,
    pub size: Decimal,
    pub tx: String,
    /// The taker's wallet.
    pub wallet: String,
    /// The maker's wallet (never the taker's).
    pub maker_wallet: String,
    /// Position within its minute (ties in time keep a stable order).
    pub seq: u32,
}

/// The trades of market `m` in epoch minute `minute`, by time: none before it was created or
/// once its book is gone.
pub(crate) fn trades_in_minute(world: &World, m: &SimMarket, minute: i64) -> Vec<SimTrade> {
    let until_ms = match (m.has_book, m.book_until_ms) {
        (true, _) => i64::MAX,
        (false, Some(until)) => until,
        (false, None) => return Vec::new(),
    };
    if minute * 60 < m.created_at.timestamp() || minute * 60_000 >= until_ms {
        return Vec::new();
    }
    let h = mix(&[world.seed, m.price_key, 0x7ade, minute as u64]);
    let n = if world.busy.contains(&m.id) {
        (BUSY_PER_MINUTE + h % 61) as usize
    } else {
        let rate = (m.volume_24h.to_f64().unwrap_or(0.0) / 10_000.0).clamp(0.05, 6.0);
        (rate + unit(h)).floor() as usize
    };
    if n == 0 {
        return Vec::new();
    }
    // A busy minute holds hundreds of trades but only 60 seconds of quotes per outcome.
    let mut quotes: HashMap<(usize, i64), Quote> = HashMap::new();
    let mut offsets: Vec<i64> = (0..n)
        .map(|j| (mix(&[h, j as u64, 1]) % 60_000) as i64)
        .collect();
    offsets.sort_unstable();
    let mut out: Vec<SimTrade> = Vec::with_capacity(n);
    for (j, &offset) in offsets.iter().enumerate() {
        let r = mix(&[h, j as u64, 2]);
        let prev = out.last();
        // One transaction settling two fills: same time, same token and tx hash.
        let shared = prev.filter(|_| r.is_multiple_of(10));
        let ms = shared.map_or(minute * 60_000 + offset, |p| p.ms);
        // One transaction, one block.
        let block_ms = shared.map_or_else(
            || match world.block_lag_ms {
                0 => ms,
                lag => ms + 1 + (mix(&[h, j as u64, 4]) % lag as u64) as i64,
            },
            |p| p.block_ms,
        );
        let outcome = shared.map_or(((r >> 8) % m.outcomes.len() as u64) as usize, |p| p.outcome);
        let tx = shared.map_or_else(
            || {
                hex_of(
                    &[world.seed, m.price_key, 0x7a, minute as u64, j as u64],
                    64,
                )
            },
            |p| p.tx.clone(),
        );
        let buy = (r >> 16) % 100 < 55;
        let q = *quotes
            .entry((outcome, ms.div_euclid(1000)))
            .or_insert_with(|| quote(world, m, outcome, ms.div_euclid(1000)));
        let p_ticks = if buy { q.ask } else { q.bid };
        let px = price(p_ticks, m.tick_scale);
        let u = unit(mix(&[r, 3]));
        let shares = if (r >> 24).is_multiple_of(25) {
            // A whale: $2k–$20k notional.
            let notional = (2_000f64.ln() + (20_000f64.ln() - 2_000f64.ln()) * u).exp();
            notional / px.to_f64().unwrap_or(0.5).max(0.001)
        } else {
            (5f64.ln() + (500f64.ln() - 5f64.ln()) * u).exp()
        };
        let size = Decimal::new(((shares * 100.0).round() as i64).max(1), 2).normalize();
        let taker = (r >> 32) % WALLETS;
        let maker = (taker + 1 + (r >> 48) % (WALLETS - 1)) % WALLETS;
        out.push(SimTrade {
            ms,
            block_ms,
            outcome,
            buy,
            price: px,
            size,
            tx,
            wallet: hex_of(&[world.seed, 0x3a11e7, taker], 40),
            maker_wallet: hex_of(&[world.seed, 0x3a11e7, maker], 40),
            seq: j as u32,
        });
    }
    out.retain(|t| t.ms < until_ms);
    out
}

/// `t` of market `m` as the truth reports it.
pub(crate) fn truth_trade(m: &SimMarket, t: &SimTrade) -> TruthTrade {
    TruthTrade {
        condition_id: m.condition_id.clone(),
        asset_id: m.token_ids.get(t.outcome).cloned().unwrap_or_default(),
        outcome: t.outcome,
        ms: t.ms,
        block_s: t.block_ms.div_euclid(1000),
        side: if t.buy {
            TradeSide::Buy
        } else {
            TradeSide::Sell
        },
        price: t.price,
        size: t.size,
        transaction_hash: t.tx.clone(),
        wallet: t.wallet.clone(),
    }
}

/// Trades of `m` with `from_ms < ms <= to_ms`, by time; only the minutes the market traded in
/// are computed, however wide the range.
pub(crate) fn trades_between(
    world: &World,
    m: &SimMarket,
    from_ms: i64,
    to_ms: i64,
) -> Vec<SimTrade> {
    let mut out = Vec::new();
    if to_ms <= from_ms {
        return out;
    }
    let first = from_ms
        .div_euclid(60_000)
        .max(m.created_at.timestamp().div_euclid(60));
    let last = match (m.has_book, m.book_until_ms) {
        (false, Some(until)) => to_ms.min(until),
        _ => to_ms,
    }
    .div_euclid(60_000);
    for minute in first..=last {
        out.extend(
            trades_in_minute(world, m, minute)
                .into_iter()
                .filter(|t| t.ms > from_ms && t.ms <= to_ms),
        );
    }
    out
}

/// The Data API row of `t`: the taker's, or with `maker` the maker's (its wallet, the other side).
fn trade_json(world: &World, m: &SimMarket, t: &SimTrade, maker: bool) -> Value {
    let event = &world.events[m.event];
    let wallet = if maker { &t.maker_wallet } else { &t.wallet };
    json!({
        "proxyWallet": wallet,
        "side": if t.buy != maker { "BUY" } else { "SELL" },
        "asset": m.token_ids.get(t.outcome).cloned().unwrap_or_default(),
        "conditionId": m.condition_id,
        "size": num(t.size),
        "price": num(t.price),
        "timestamp": t.block_ms.div_euclid(1000),
        "title": m.question,
        "slug": m.slug,
        "icon": "",
        "eventSlug": event.slug,
        "outcome": m.outcomes.get(t.outcome).cloned().unwrap_or_default(),
        "outcomeIndex": t.outcome,
        "name": "",
        "pseudonym": format!("Sim-Trader-{}", &wallet[2..8]),
        "bio": "",
        "profileImage": "",
        "profileImageOptimized": "",
        "transactionHash": t.tx,
    })
}

/// `GET /trades?market=<cid,cid>&limit=&offset=&start=&end=&side=&takerOnly=`: newest first.
pub(crate) fn trades(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let q = &ctx.query;
    let world = ctx.world;
    let market = q.get("market").filter(|m| !m.is_empty()).ok_or_else(|| {
        SimError::BadRequest("market (comma-separated condition ids) is required".into())
    })?;
    let limit = match q.uint("limit")? {
        None | Some(0) => 100,
        Some(n) => n.min(MAX_LIMIT),
    } as usize;
    let offset = q.uint("offset")?.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(SimError::BadRequest(format!(
            "offset {offset} exceeds the maximum of {MAX_OFFSET}"
        )));
    }
    let offset = offset as usize;
    let side = match q.get("side") {
        None | Some("") => None,
        Some(s) if s.eq_ignore_ascii_case("BUY") => Some(true),
        Some(s) if s.eq_ignore_ascii_case("SELL") => Some(false),
        Some(s) => return Err(SimError::BadRequest(format!("invalid side: {s:?}"))),
    };
    let start = q.int("start")?;
    let end = q.int("end")?;
    let taker_only = q.bool("takerOnly")?.unwrap_or(true);

    let mut idxs: Vec<usize> = market
        .split(',')
        .filter_map(|c| world.by_condition.get(c.trim()).copied())
        .filter(|&i| world.markets[i].has_book || world.markets[i].book_until_ms.is_some())
        .collect();
    idxs.sort_unstable();
    idxs.dedup();

    let now_ms = ctx.now.timestamp_millis();
    // Block times: nothing mined after now is served yet.
    let hi_ms = end.map_or(now_ms, |e| {
        now_ms.min(e.saturating_mul(1000).saturating_add(999))
    });
    let lo_ms = start.map_or(i64::MIN, |s| s.saturating_mul(1000));
    let created_floor = idxs
        .iter()
        .map(|&i| world.markets[i].created_at.timestamp_millis())
        .min()
        .unwrap_or(i64::MAX);
    // A fill mined at `lo_ms` may have been matched up to the largest lag before.
    let lag = world.block_lag_ms;
    let floor_minute = lo_ms
        .saturating_sub(lag)
        .max(created_floor)
        .div_euclid(60_000);

    let need = offset + limit;
    // Newest block first; then market, match time and position, newest first; a fill's taker
    // row before its maker row.
    let order = |a: &(usize, SimTrade, bool), b: &(usize, SimTrade, bool)| {
        b.1.block_ms
            .cmp(&a.1.block_ms)
            .then(b.0.cmp(&a.0))
            .then(b.1.ms.cmp(&a.1.ms))
            .then(b.1.seq.cmp(&a.1.seq))
            .then(a.2.cmp(&b.2))
    };
    // (market index, trade, maker row).
    let mut found: Vec<(usize, SimTrade, bool)> = Vec::new();
    let mut minute = hi_ms.div_euclid(60_000);
    while !idxs.is_empty() && minute >= floor_minute {
        for &i in &idxs {
            for t in trades_in_minute(world, &world.markets[i], minute) {
                if t.block_ms > hi_ms || t.block_ms < lo_ms {
                    continue;
                }
                let taker_row = side.is_none_or(|b| b == t.buy);
                // A maker row's side is the other one.
                let maker_row = !taker_only && side.is_none_or(|b| b != t.buy);
                match (taker_row, maker_row) {
                    (true, true) => {
                        found.push((i, t.clone(), false));
                        found.push((i, t, true));
                    }
                    (true, false) => found.push((i, t, false)),
                    (false, true) => found.push((i, t, true)),
                    (false, false) => {}
                }
            }
        }
        minute -= 1;
        if found.len() >= need {
            // The minutes not read yet were matched, so mined, by the end of `minute` plus the
            // largest lag: once the last row the page needs is later, none of theirs gets in.
            found.sort_by(order);
            if found[need - 1].1.block_ms > (minute + 1) * 60_000 - 1 + lag {
                break;
            }
        }
    }
    found.sort_by(order);
    let page: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(i, t, maker)| trade_json(world, &world.markets[*i], t, *maker))
        .collect();
    let n = page.len() as u32;
    Ok(Served::ok(
        Value::Array(page).to_string(),
        n,
        Pending::default(),
    ))
}
