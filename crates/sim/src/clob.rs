//! CLOB REST: `GET /book?token_id=` and `POST /books`, books in Polymarket's shape (every number a
//! string, bids ascending and asks descending so the best level is LAST).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::book::{served_book, write_rest_book, BookOut};
use crate::server::{Ctx, Pending, Served};
use crate::world::World;
use crate::{BadLevel, ServedBook, SimError};

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
