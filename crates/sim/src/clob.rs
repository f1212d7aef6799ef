//! CLOB REST: `GET /book?token_id=` and `POST /books`, books in Polymarket's shape (every number a
//! string, bids ascending and asks descending so the best level is LAST); and
//! `GET /markets/{condition_id}`, the CLOB market object, whose result lags Gamma's.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::book::{served_book, write_rest_book, BookOut};
use crate::gamma::{even_prices, market_prices, num, rfc3339};
use crate::server::{Ctx, Pending, Served};
use crate::world::{SimMarket, World};
use crate::{BadLevel, ServedBook, SimError, SimResult};

/// Entries accepted in one `POST /books` body.
const MAX_BOOKS: usize = 500;

/// The book of `token_id` now, if it has one.
pub(crate) fn book_for(
    world: &World,
    token_id: &str,
    step: i64,
    bad: Option<BadLevel>,
) -> Option<BookOut> {
    let &(idx, outcome) = world.books.get(token_id)?;
    Some(served_book(world, &world.markets[idx], outcome, step, bad))
}

/// The truth record of a served book.
pub(crate) fn served_record(b: &BookOut, now: DateTime<Utc>) -> ServedBook {
    ServedBook {
        token_id: b.token_id.clone(),
        condition_id: b.condition_id.clone(),
        hash: b.hash.clone(),
        served_at: now,
        timestamp_ms: now.timestamp_millis(),
        bids: b.bids.clone(),
        asks: b.asks.clone(),
        tick_size: b.tick,
        drifted: b.drifted,
    }
}

/// 400 when `token` was refused by [`crate::SimHandle::reject_token`].
fn refuse(ctx: &Ctx<'_>, token: &str) -> Result<(), SimError> {
    if ctx.rejected_tokens.contains(token) {
        return Err(SimError::BadRequest(format!("Invalid token id: {token}")));
    }
    Ok(())
}

/// `GET /book?token_id=`.
pub(crate) fn book(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let token = match ctx.query.get("token_id") {
        Some(t) if !t.is_empty() => t,
        _ => return Err(SimError::BadRequest("Invalid token id".into())),
    };
    refuse(ctx, token)?;
    let b = book_for(
        ctx.world,
        token,
        ctx.step,
        ctx.corrupt_books.get(token).copied(),
    )
    .ok_or_else(|| SimError::NotFound("No orderbook exists for the requested token id".into()))?;
    let mut body = String::with_capacity(64 * (b.bids.len() + b.asks.len()) + 512);
    write_rest_book(&mut body, &b, ctx.now.timestamp_millis());
    let pending = Pending {
        books: vec![served_record(&b, ctx.now)],
        markets: Vec::new(),
    };
    Ok(Served::ok(body, 1, pending))
}

/// `POST /books` with `[{"token_id":"…"}, …]`: books in request order, tokens without a book
/// left out; a refused token id ([`crate::SimHandle::reject_token`]) fails the whole request
/// (400).
pub(crate) fn books(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let invalid = || SimError::BadRequest("Invalid payload".into());
    let entries: Vec<Value> = serde_json::from_slice(ctx.body).map_err(|_| invalid())?;
    if entries.len() > MAX_BOOKS {
        return Err(SimError::BadRequest(format!(
            "too many token ids: {} (max {MAX_BOOKS})",
            entries.len()
        )));
    }
    let mut tokens = Vec::with_capacity(entries.len());
    for e in &entries {
        let t = e
            .get("token_id")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        refuse(ctx, t)?;
        tokens.push(t);
    }
    let ts_ms = ctx.now.timestamp_millis();
    let mut body = String::with_capacity(tokens.len() * 6_000 + 2);
    let mut pending = Pending::default();
    body.push('[');
    for t in tokens {
        let Some(b) = book_for(ctx.world, t, ctx.step, ctx.corrupt_books.get(t).copied()) else {
            continue;
        };
        if !pending.books.is_empty() {
            body.push(',');
        }
        write_rest_book(&mut body, &b, ts_ms);
        pending.books.push(served_record(&b, ctx.now));
    }
    body.push(']');
    let n = pending.books.len() as u32;
    Ok(Served::ok(body, n, pending))
}

/// `GET /markets/{condition_id}`: the CLOB market object; 404 for a condition id the world does
/// not hold (never listed, or delisted).
pub(crate) fn market(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let condition_id = ctx.path.rsplit('/').next().unwrap_or_default();
    let m = ctx
        .world
        .by_condition
        .get(condition_id)
        .map(|&idx| &ctx.world.markets[idx])
        .ok_or_else(|| SimError::NotFound("market not found".into()))?;
    let body = market_json(ctx.world, m, ctx.step, ctx.now).to_string();
    Ok(Served::ok(body, 1, Pending::default()))
}

/// The CLOB market object of `m` (snake_case, as `clob_market_closed_*_nautilus.json`). The
/// CLOB shows a result only `clob_resolution_lag` after it became final on Gamma; until then it
/// reads `closed: false`, no winner, and the last market prices.
fn market_json(world: &World, m: &SimMarket, step: i64, now: DateTime<Utc>) -> Value {
    let shown = m
        .final_at
        .is_some_and(|t| now >= t + world.clob_resolution_lag);
    let result = if shown { m.stage.result() } else { None };
    let prices: Vec<Decimal> = match result {
        Some(SimResult::Winner(w)) => (0..m.outcomes.len())
            .map(|o| if o == w { Decimal::ONE } else { Decimal::ZERO })
            .collect(),
        Some(SimResult::Invalid) => even_prices(m),
        None => market_prices(world, m, step),
    };
    let tokens: Vec<Value> = m
        .outcomes
        .iter()
        .zip(prices)
        .enumerate()
        .map(|(o, (outcome, price))| {
            json!({
                "token_id": m.token_ids.get(o).cloned().unwrap_or_default(),
                "outcome": outcome,
                "price": num(price),
                "winner": result == Some(SimResult::Winner(o)),
            })
        })
        .collect();
    json!({
        "accepting_order_timestamp": rfc3339(m.start_date, 0),
        "accepting_orders": m.accepting_orders,
        "active": true,
        "archived": false,
        "closed": result.is_some(),
        "condition_id": m.condition_id,
        "description": m.description,
        // Both real closed samples read false here while Gamma still says true.
        "enable_order_book": m.enable_order_book && result.is_none(),
        "end_date_iso": m.end_date.format("%Y-%m-%dT00:00:00Z").to_string(),
        "fpmm": "",
        "game_start_time": null,
        "icon": m.image_url(),
        "image": m.image_url(),
        "is_50_50_outcome": result == Some(SimResult::Invalid),
        "maker_base_fee": 0,
        "market_slug": m.slug,
        "minimum_order_size": m.order_min_size,
        "minimum_tick_size": num(m.tick()),
        "neg_risk": m.neg_risk,
        "neg_risk_market_id": m.neg_risk_market_id.clone().unwrap_or_default(),
        "neg_risk_request_id": if m.neg_risk { m.neg_risk_request_id() } else { String::new() },
        "notifications_enabled": true,
        "question": m.question,
        "question_id": m.question_id,
        "seconds_delay": 0,
        "tags": m.category.iter().collect::<Vec<_>>(),
        "taker_base_fee": 0,
        "tokens": tokens,
    })
}
