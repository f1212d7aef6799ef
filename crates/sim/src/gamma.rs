//! Gamma: market and event objects with Polymarket's names and JSON types (strings holding JSON
//! arrays, `volume` as a string but `volume24hr` as a number, integers where the value is whole,
//! optional fields left out on some markets), and the keyset and legacy listing endpoints.

use std::collections::HashSet;

use chrono::{DateTime, Timelike, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::book::{price, quote};
use crate::query::{encode_cursor, keyset_after, Query};
use crate::server::{Ctx, Pending, Served};
use crate::world::{json_array_string, SimEvent, SimFees, SimMarket, World};
use crate::{BadMarket, ServedMarket, SimError, SimResult, TruthStage};

/// `condition_ids` accepted per request, as on the real API.
const MAX_CONDITION_IDS: usize = 100;
/// Legacy offset paging stops here (422 beyond).
const MAX_OFFSET: u64 = 10_000;

/// A decimal as a JSON number: an integer when whole (Gamma serves `0`, `1`, `5`), else a float.
pub(crate) fn num(d: Decimal) -> Value {
    if d.fract().is_zero() {
        if let Some(i) = d.to_i64() {
            return Value::from(i);
        }
    }
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// RFC 3339 with `digits` fractional digits (trailing zeros trimmed, as Gamma does) and `Z`.
pub(crate) fn rfc3339(t: DateTime<Utc>, digits: u32) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if digits > 0 {
        let frac = format!("{:09}", t.nanosecond() % 1_000_000_000);
        let frac = frac[..digits.min(9) as usize].trim_end_matches('0');
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
    }
    s.push('Z');
    s
}

/// Outcome prices and top-of-book numbers of a market at `step`.
struct Prices {
    outcome_prices: Vec<Decimal>,
    /// (bestBid, bestAsk, spread); `None` without an order book.
    top: Option<(Decimal, Decimal, Decimal)>,
    last: Decimal,
    /// Price of outcome 0 `h` hours ago minus now, for 1 h, 1 d, 1 w, 1 mo.
    changes: [Decimal; 4],
}

fn prices(world: &World, m: &SimMarket, step: i64) -> Prices {
    let scale = m.tick_scale;
    let units = m.units();
    if let Some(SimResult::Winner(winner)) = m.stage.result() {
        let outcome_prices = (0..m.outcomes.len())
            .map(|o| {
                if o == winner {
                    Decimal::ONE
                } else {
                    Decimal::ZERO
                }
            })
            .collect();
        let (bid, ask, last) = if winner == 0 {
            (units - 1, units, units - 1)
        } else {
            (0, 1, 1)
        };
        return Prices {
            outcome_prices,
            top: Some((price(bid, scale), price(ask, scale), price(1, scale))),
            last: price(last, scale),
            changes: [Decimal::ZERO; 4],
        };
    }
    let q0 = quote(world, m, 0, step);
    let outcome_prices = match m.stage {
        TruthStage::Proposed { outcome } | TruthStage::Disputed { outcome } => {
            proposal_prices(world, m, outcome)
        }
        TruthStage::Final {
            result: SimResult::Invalid,
        } => even_prices(m),
        _ => market_prices(world, m, step),
    };
    let top = m.enable_order_book.then(|| {
        (
            price(q0.bid, scale),
            price(q0.ask, scale),
            price(q0.ask - q0.bid, scale),
        )
    });
    let change = |secs: i64| price(q0.mid() - quote(world, m, 0, step - secs).mid(), scale);
    Prices {
        outcome_prices,
        top,
        last: price(q0.last, scale),
        changes: [
            change(3_600),
            change(86_400),
            change(7 * 86_400),
            change(30 * 86_400),
        ],
    }
}

/// The market's own outcome prices at `step` (frozen once it closed): the mid of each outcome's
/// book, a binary NO the complement of YES.
pub(crate) fn market_prices(world: &World, m: &SimMarket, step: i64) -> Vec<Decimal> {
    let scale = m.tick_scale;
    if m.binary() {
        let p = price(quote(world, m, 0, step).mid(), scale);
        vec![p, Decimal::ONE - p]
    } else {
        (0..m.outcomes.len())
            .map(|o| price(quote(world, m, o, step).mid(), scale))
            .collect()
    }
}

/// What Gamma shows while `outcome` is proposed or disputed: near-final but not final
/// (`0.9995`, the rest `0.0005` shared), or for an untraded-looking market `0.5` / `0.5`, which
/// is not a void.
fn proposal_prices(world: &World, m: &SimMarket, outcome: usize) -> Vec<Decimal> {
    if world.untraded_proposal(m) {
        return even_prices(m);
    }
    let others = Decimal::from(m.outcomes.len().saturating_sub(1).max(1));
    (0..m.outcomes.len())
        .map(|o| {
            if o == outcome {
                Decimal::new(9995, 4)
            } else {
                (Decimal::new(5, 4) / others).normalize()
            }
        })
        .collect()
}

/// A 50-50 result: `1/n` each (`0.5` for a binary market).
pub(crate) fn even_prices(m: &SimMarket) -> Vec<Decimal> {
    let n = Decimal::from(m.outcomes.len().max(1));
    let p = (Decimal::ONE / n).round_dp(4).normalize();
    vec![p; m.outcomes.len()]
}

/// The Gamma market object of `m` at `step` (sim second) and `now`.
pub(crate) fn market_json(
    world: &World,
    m: &SimMarket,
    step: i64,
    now: DateTime<Utc>,
    corrupted: Option<BadMarket>,
) -> Value {
    let p = prices(world, m, step);
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    put("id", json!(m.id.to_string()));
    put("question", json!(m.question));
    put("conditionId", json!(m.condition_id));
    put("questionID", json!(m.question_id));
    put("slug", json!(m.slug));
    put("description", json!(m.description));
    put("resolutionSource", json!(""));
    put("image", json!(m.image_url()));
    put("icon", json!(m.image_url()));
    put("endDate", json!(rfc3339(m.end_date, m.end_digits)));
    put(
        "endDateIso",
        json!(m.end_date.format("%Y-%m-%d").to_string()),
    );
    put("startDate", json!(rfc3339(m.start_date, m.date_digits)));
    put(
        "startDateIso",
        json!(m.start_date.format("%Y-%m-%d").to_string()),
    );
    put("createdAt", json!(rfc3339(m.created_at, m.date_digits)));
    put("updatedAt", json!(rfc3339(now, 6)));
    put("outcomes", json!(json_array_string(&m.outcomes)));
    let op: Vec<String> = p.outcome_prices.iter().map(|d| d.to_string()).collect();
    put("outcomePrices", json!(json_array_string(&op)));
    put("clobTokenIds", json!(m.clob_token_ids));
    put("volume", json!(m.volume_total.to_string()));
    put("volumeNum", num(m.volume_total));
    put("volumeClob", num(m.volume_total));
    put("volume24hr", num(m.volume_24h));
    put("volume24hrClob", num(m.volume_24h));
    put("volume1wk", num(m.volume_1wk));
    put("volume1mo", num(m.volume_1mo));
    if !m.omit.volume_1yr {
        put("volume1yr", num(m.volume_total));
    }
    if !m.omit.liquidity {
        put("liquidity", json!(m.liquidity.to_string()));
        put("liquidityNum", num(m.liquidity));
        put("liquidityClob", num(m.liquidity));
    }
    if let Some((bid, ask, spread)) = p.top {
        put("bestBid", num(bid));
        put("bestAsk", num(ask));
        put("spread", num(spread));
    }
    if !m.omit.last_trade_price {
        put("lastTradePrice", num(p.last));
    }
    if !m.omit.one_hour {
        put("oneHourPriceChange", num(p.changes[0]));
    }
    put("oneDayPriceChange", num(p.changes[1]));
    if !m.omit.one_week {
        put("oneWeekPriceChange", num(p.changes[2]));
    }
    if !m.omit.one_month {
        put("oneMonthPriceChange", num(p.changes[3]));
    }
    put("competitive", num(m.competitive));
    put("orderPriceMinTickSize", num(m.tick()));
    put("orderMinSize", json!(m.order_min_size));
    put("active", json!(true));
    put("closed", json!(m.closed()));
    put("archived", json!(false));
    put("new", json!(false));
    put("featured", json!(false));
    put("restricted", json!(true));
    put("enableOrderBook", json!(m.enable_order_book));
    put("acceptingOrders", json!(m.accepting_orders));
    if m.accepting_orders {
        put("acceptingOrdersTimestamp", json!(rfc3339(m.start_date, 0)));
    }
    put("negRisk", json!(m.neg_risk));
    put("negRiskOther", json!(false));
    if let Some(id) = &m.neg_risk_market_id {
        put("negRiskMarketID", json!(id));
        put("negRiskRequestID", json!(m.neg_risk_request_id()));
    }
    if let Some(g) = &m.group_item_title {
        put("groupItemTitle", json!(g));
    }
    if let Some(c) = &m.category {
        put("category", json!(c));
    }
    if let Some(t) = m.closed_time {
        // Not RFC 3339: Gamma's "2026-03-19 23:20:15+00".
        put(
            "closedTime",
            json!(t.format("%Y-%m-%d %H:%M:%S+00").to_string()),
        );
    }
    // Only these stages carry a status; FinalWithoutStatus is final with none at all.
    let status = match m.stage {
        TruthStage::Proposed { .. } => Some("proposed"),
        TruthStage::Disputed { .. } => Some("disputed"),
        TruthStage::Final { .. } => Some("resolved"),
        _ => None,
    };
    match status {
        Some(status) => {
            put("umaResolutionStatus", json!(status));
            let history: Vec<String> = m.uma_statuses.iter().map(|s| s.to_string()).collect();
            put("umaResolutionStatuses", json!(json_array_string(&history)));
        }
        None => put("umaResolutionStatuses", json!("[]")),
    }
    put("umaBond", json!("500"));
    put("umaReward", json!("2"));
    match world.fees(m) {
        SimFees::Disabled => {
            put("feesEnabled", json!(false));
            put("makerBaseFee", json!(0));
            put("takerBaseFee", json!(0));
        }
        SimFees::Schedule {
            rate,
            exponent,
            rebate_rate,
        } => {
            put("feesEnabled", json!(true));
            put("feeType", json!("sports_fees_v2"));
            put(
                "feeSchedule",
                json!({"exponent": exponent, "rate": num(rate), "rebateRate": num(rebate_rate),
                       "takerOnly": true}),
            );
            put("makerBaseFee", json!(1000));
            put("takerBaseFee", json!(1000));
        }
        SimFees::EnabledWithoutSchedule => {
            put("feesEnabled", json!(true));
            put("feeType", json!("crypto_fees"));
            put("makerBaseFee", json!(1000));
            put("takerBaseFee", json!(1000));
        }
    }
    // The market's event, as Gamma nests it (a full event object; the fields that identify it).
    if let Some(e) = world.events.get(m.event) {
        put(
            "events",
            json!([{
                "id": e.id.to_string(), "ticker": e.slug, "slug": e.slug, "title": e.title,
                "negRisk": e.neg_risk, "commentCount": e.comment_count,
            }]),
        );
    }
    put("rfqEnabled", json!(false));
    put("cyom", json!(false));
    if world.drifted(m) {
        // Wrong types for the fields of `DRIFTED_FIELDS`, whatever was (or was not) served.
        put("updatedAt", json!("yesterday"));
        put("volume1yr", json!(true));
        put("oneWeekPriceChange", json!([num(p.changes[2])]));
        put("volume1wk", json!({ "value": num(m.volume_1wk) }));
        put("competitive", json!("high"));
    }
    match corrupted {
        Some(BadMarket::Fields) => {
            put("endDate", json!({"oops": 1}));
            put("volume24hr", json!("not a number"));
        }
        Some(BadMarket::ConditionId) => put("conditionId", json!({"oops": 1})),
        None => {}
    }
    Value::Object(o)
}

/// Market filters shared by the keyset and legacy endpoints.
struct MarketFilter {
    closed: bool,
    end_min: Option<DateTime<Utc>>,
    end_max: Option<DateTime<Utc>>,
    condition_ids: Option<HashSet<String>>,
    token_ids: Option<HashSet<String>>,
    ids: Option<HashSet<String>>,
}

impl MarketFilter {
    fn parse(q: &Query) -> Result<MarketFilter, SimError> {
        let cids = q.all("condition_ids");
        if cids.len() > MAX_CONDITION_IDS {
            return Err(SimError::BadRequest(format!(
                "too many condition_ids: {} (max {MAX_CONDITION_IDS})",
                cids.len()
            )));
        }
        let set = |v: Vec<&str>| {
            (!v.is_empty()).then(|| v.into_iter().map(str::to_string).collect::<HashSet<_>>())
        };
        Ok(MarketFilter {
            // Gamma applies closed=false when the parameter is omitted.
            closed: q.bool("closed")?.unwrap_or(false),
            end_min: q.date("end_date_min")?,
            end_max: q.date("end_date_max")?,
            condition_ids: set(cids),
            token_ids: set(q.all("clob_token_ids")),
            ids: set(q.all("id")),
        })
    }

    fn matches(&self, m: &SimMarket) -> bool {
        m.closed() == self.closed
            && self.end_min.is_none_or(|t| m.end_date >= t)
            && self.end_max.is_none_or(|t| m.end_date <= t)
            && self
                .condition_ids
                .as_ref()
                .is_none_or(|s| s.contains(&m.condition_id))
            && self
                .token_ids
                .as_ref()
                .is_none_or(|s| m.token_ids.iter().any(|t| !t.is_empty() && s.contains(t)))
            && self
                .ids
                .as_ref()
                .is_none_or(|s| s.contains(&m.id.to_string()))
    }
}

/// Page size: default, silently capped; garbage → 400.
fn page_limit(q: &Query, default: usize, cap: usize) -> Result<usize, SimError> {
    Ok(match q.uint("limit")? {
        None | Some(0) => default,
        Some(n) => (n as usize).min(cap),
    })
}

fn serve_markets(
    ctx: &Ctx<'_>,
    markets: &[(usize, &SimMarket)],
    pending: &mut Pending,
) -> Vec<Value> {
    markets
        .iter()
        .map(|&(_, m)| {
            let v = market_json(
                ctx.world,
                m,
                ctx.step,
                ctx.now,
                ctx.corrupt_markets.get(&m.id).copied(),
            );
            pending.markets.push(ServedMarket {
                condition_id: m.condition_id.clone(),
                served_at: ctx.now,
                json: v.clone(),
            });
            v
        })
        .collect()
}

/// `GET /markets/keyset`: `{"markets":[…],"next_cursor":"…"}`, `next_cursor` absent on the last page.
pub(crate) fn markets_keyset(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let q = &ctx.query;
    let after = keyset_after(q, "m")?;
    let limit = page_limit(q, 20, 100)?;
    let filter = MarketFilter::parse(q)?;
    let markets = &ctx.world.markets;
    let start = after.map_or(0, |a| markets.partition_point(|m| m.id <= a));
    let mut it = markets
        .iter()
        .enumerate()
        .skip(start)
        .filter(|(_, m)| filter.matches(m));
    let page: Vec<(usize, &SimMarket)> = it.by_ref().take(limit).collect();
    let more = it.next().is_some();
    let mut pending = Pending::default();
    let items = serve_markets(ctx, &page, &mut pending);
    let mut body = Map::new();
    let n = items.len() as u32;
    body.insert("markets".into(), Value::Array(items));
    if let (true, Some((_, last))) = (more, page.last()) {
        body.insert(
            "next_cursor".into(),
            json!(encode_cursor("m", last.id, ctx.world.cursor_len)),
        );
    }
    Ok(Served::ok(Value::Object(body).to_string(), n, pending))
}

fn offset(q: &Query) -> Result<usize, SimError> {
    let off = q.uint("offset")?.unwrap_or(0);
    if off > MAX_OFFSET {
        return Err(SimError::Unprocessable(format!(
            "offset {off} exceeds the maximum of {MAX_OFFSET}"
        )));
    }
    Ok(off as usize)
}

/// Legacy `GET /markets`: a bare array, `limit` (≤100) and `offset` (≤10,000, else 422).
pub(crate) fn markets_legacy(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let q = &ctx.query;
    let limit = page_limit(q, 20, 100)?;
    let off = offset(q)?;
    let filter = MarketFilter::parse(q)?;
    let page: Vec<(usize, &SimMarket)> = ctx
        .world
        .markets
        .iter()
        .enumerate()
        .filter(|(_, m)| filter.matches(m))
        .skip(off)
        .take(limit)
        .collect();
    let mut pending = Pending::default();
    let items = serve_markets(ctx, &page, &mut pending);
    let n = items.len() as u32;
    Ok(Served::ok(Value::Array(items).to_string(), n, pending))
}

fn event_closed(world: &World, e: &SimEvent) -> bool {
    e.markets.iter().all(|&i| world.markets[i].closed())
}

fn event_end(world: &World, e: &SimEvent) -> DateTime<Utc> {
    e.markets
        .iter()
        .map(|&i| world.markets[i].end_date)
        .max()
        .unwrap_or(world.now)
}

struct EventFilter {
    closed: bool,
    end_min: Option<DateTime<Utc>>,
    end_max: Option<DateTime<Utc>>,
    ids: Option<HashSet<String>>,
}

impl EventFilter {
    fn parse(q: &Query) -> Result<EventFilter, SimError> {
        let ids = q.all("id");
        Ok(EventFilter {
            closed: q.bool("closed")?.unwrap_or(false),
            end_min: q.date("end_date_min")?,
            end_max: q.date("end_date_max")?,
            ids: (!ids.is_empty()).then(|| ids.into_iter().map(str::to_string).collect()),
        })
    }

    fn matches(&self, world: &World, e: &SimEvent) -> bool {
        let end = event_end(world, e);
        event_closed(world, e) == self.closed
            && self.end_min.is_none_or(|t| end >= t)
            && self.end_max.is_none_or(|t| end <= t)
            && self
                .ids
                .as_ref()
                .is_none_or(|s| s.contains(&e.id.to_string()))
    }
}

/// An event object with its markets nested; event-level volumes are numbers.
fn event_json(ctx: &Ctx<'_>, e: &SimEvent, pending: &mut Pending) -> Value {
    let world = ctx.world;
    let ms: Vec<(usize, &SimMarket)> = e.markets.iter().map(|&i| (i, &world.markets[i])).collect();
    let sum = |f: fn(&SimMarket) -> Decimal| ms.iter().map(|(_, m)| f(m)).sum::<Decimal>();
    let markets = serve_markets(ctx, &ms, pending);
    let mut o = Map::new();
    o.insert("id".into(), json!(e.id.to_string()));
    o.insert("ticker".into(), json!(e.slug));
    o.insert("slug".into(), json!(e.slug));
    o.insert("title".into(), json!(e.title));
    o.insert("description".into(), json!(e.description));
    o.insert("startDate".into(), json!(rfc3339(e.created_at, 6)));
    o.insert("creationDate".into(), json!(rfc3339(e.created_at, 6)));
    o.insert("createdAt".into(), json!(rfc3339(e.created_at, 6)));
    o.insert("endDate".into(), json!(rfc3339(event_end(world, e), 0)));
    o.insert("active".into(), json!(true));
    o.insert("closed".into(), json!(event_closed(world, e)));
    o.insert("archived".into(), json!(false));
    o.insert("new".into(), json!(false));
    o.insert("featured".into(), json!(false));
    o.insert("restricted".into(), json!(true));
    o.insert("liquidity".into(), num(sum(|m| m.liquidity)));
    o.insert("volume".into(), num(sum(|m| m.volume_total)));
    o.insert(
        "openInterest".into(),
        num((sum(|m| m.liquidity) / Decimal::from(3)).round_dp(6)),
    );
    o.insert(
        "competitive".into(),
        num(ms.first().map_or(Decimal::ZERO, |(_, m)| m.competitive)),
    );
    o.insert("volume24hr".into(), num(sum(|m| m.volume_24h)));
    o.insert("volume1wk".into(), num(sum(|m| m.volume_1wk)));
    o.insert("volume1mo".into(), num(sum(|m| m.volume_1mo)));
    o.insert(
        "enableOrderBook".into(),
        json!(ms.iter().any(|(_, m)| m.enable_order_book)),
    );
    o.insert("negRisk".into(), json!(e.neg_risk));
    o.insert("enableNegRisk".into(), json!(e.neg_risk));
    if let Some(id) = &e.neg_risk_market_id {
        o.insert("negRiskMarketID".into(), json!(id));
    }
    o.insert("commentCount".into(), json!(e.comment_count));
    o.insert("markets".into(), Value::Array(markets));
    Value::Object(o)
}

/// `GET /events/keyset`: `{"events":[…],"next_cursor":"…"}`.
pub(crate) fn events_keyset(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let q = &ctx.query;
    let after = keyset_after(q, "e")?;
    let limit = page_limit(q, 20, 500)?;
    let filter = EventFilter::parse(q)?;
    let events = &ctx.world.events;
    let start = after.map_or(0, |a| events.partition_point(|e| e.id <= a));
    let mut it = events
        .iter()
        .skip(start)
        .filter(|e| filter.matches(ctx.world, e));
    let page: Vec<&SimEvent> = it.by_ref().take(limit).collect();
    let more = it.next().is_some();
    let mut pending = Pending::default();
    let items: Vec<Value> = page
        .iter()
        .map(|e| event_json(ctx, e, &mut pending))
        .collect();
    let n = items.len() as u32;
    let mut body = Map::new();
    body.insert("events".into(), Value::Array(items));
    if let (true, Some(last)) = (more, page.last()) {
        body.insert(
            "next_cursor".into(),
            json!(encode_cursor("e", last.id, ctx.world.cursor_len)),
        );
    }
    Ok(Served::ok(Value::Object(body).to_string(), n, pending))
}

/// Legacy `GET /events`: a bare array with `limit`/`offset`.
pub(crate) fn events_legacy(ctx: &Ctx<'_>) -> Result<Served, SimError> {
    let q = &ctx.query;
    let limit = page_limit(q, 20, 100)?;
    let off = offset(q)?;
    let filter = EventFilter::parse(q)?;
    let page: Vec<&SimEvent> = ctx
        .world
        .events
        .iter()
        .filter(|e| filter.matches(ctx.world, e))
        .skip(off)
        .take(limit)
        .collect();
    let mut pending = Pending::default();
    let items: Vec<Value> = page
        .iter()
        .map(|e| event_json(ctx, e, &mut pending))
        .collect();
    let n = items.len() as u32;
    Ok(Served::ok(Value::Array(items).to_string(), n, pending))
}
