//! `/api/executor/status`, `/api/executor/positions`, `/api/executor/fills`,
//! `/api/executor/signals`, `/api/strategies` and, locally, `POST /api/strategies/{name}`: the
//! paper executor's state ([`crate::executor::STATE_KEY`], one JSON object the executor writes
//! after each run) read back as the API's JSON, the same locally and in the cloud. Money is
//! decimal strings, as everywhere in this API.
//!
//! Which strategies exist: locally the run's own configuration ([`super::LocalRun::executor`]);
//! in the cloud (and in a local run without the executor) the strategies of the executor's
//! last run, or before its first the configuration the cloud's executor reads
//! ([`ExecutorSettings::from_store`]). Either way with the on/off overrides of
//! [`crate::executor::OVERRIDES_KEY`] applied, which only a local run writes.

use super::params::{key_cursor, page_after, Params, RawQuery};
use super::routes::Id;
use super::{Answer, ApiError, Status, StatusStore};
use crate::executor::{
    load_overrides, load_state, save_overrides, strategy_infos, with_overrides, ExecutorSettings,
    ExecutorState, StrategyInfo,
};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use polytape_strategy::engine::DecidedSignal;
use polytape_strategy::{
    ClosedPosition, Execution, FillEvent, Position, SignalDecision, StrategyPnl,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The executor counts as running while its state was written this recently (it runs once a
/// minute).
pub const RUNNING_WITHIN_S: i64 = 180;

/// The keys of `/api/executor/status` that are `null` before the first run.
const ACCOUNT_KEYS: [&str; 19] = [
    "config_source",
    "created_at",
    "updated_at",
    "last_slot",
    "lag_s",
    "initial_cash",
    "cash",
    "reserved",
    "available_cash",
    "exposure",
    "equity",
    "peak",
    "drawdown",
    "open_positions",
    "open_orders",
    "closed_positions",
    "pnl",
    "by_strategy",
    "totals",
];

/// `/api/executor/status`.
pub async fn status<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::ExecutorStatus, q)?;
    let now = st.now();
    let configured = st.local.as_ref().map(|l| l.executor().is_some());
    let Some(s) = load_state(&st.store).await? else {
        let mut out = Map::new();
        out.insert("now".into(), json!(now));
        out.insert("started".into(), json!(false));
        out.insert("running".into(), json!(false));
        out.insert("configured".into(), json!(configured));
        for k in ACCOUNT_KEYS {
            out.insert(k.into(), Value::Null);
        }
        out.insert("equity_curve".into(), json!([]));
        return Ok(Json(Value::Object(out)));
    };
    let broker = &s.replay.broker;
    let pf = broker.portfolio();
    let equity = pf.equity();
    let pnl = pf.pnl_by_strategy();
    let realised: Decimal = pnl.values().map(|x| x.realised).sum();
    let unrealised: Decimal = pnl.values().map(|x| x.unrealised).sum();
    let fees: Decimal = pnl.values().map(|x| x.fees).sum();
    let mut by_strategy = Map::new();
    for (name, x) in &pnl {
        let open = pf
            .positions
            .values()
            .filter(|p| &p.strategy == name)
            .count();
        by_strategy.insert(name.clone(), strategy_pnl_json(x, open));
    }
    let curve: Vec<Value> = thin_evenly(&s.equity, p.count("points"))
        .into_iter()
        .map(|e| {
            json!({
                "ts": e.ts, "cash": e.cash, "exposure": e.exposure, "equity": e.equity,
                "peak": e.peak, "drawdown": e.drawdown,
            })
        })
        .collect();
    Ok(Json(json!({
        "now": now,
        "started": true,
        "running": (now - s.updated_at).num_seconds() <= RUNNING_WITHIN_S,
        "configured": configured,
        "config_source": s.config_source,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "last_slot": s.last_slot,
        "lag_s": s.last_slot.map(|t| (now - t).num_seconds()),
        "initial_cash": s.initial_cash,
        "cash": pf.cash,
        "reserved": pf.reserved,
        "available_cash": pf.available_cash(),
        "exposure": pf.exposure(),
        "equity": equity,
        "peak": pf.peak_equity.max(equity),
        "drawdown": pf.drawdown(),
        "open_positions": pf.positions.len(),
        "open_orders": broker.orders().iter().filter(|o| o.is_open()).count(),
        "closed_positions": pf.closed.len(),
        "pnl": {
            "realised": realised,
            "unrealised": unrealised,
            "total": realised + unrealised,
            "fees": fees,
        },
        "by_strategy": by_strategy,
        "totals": s.totals,
        "equity_points": s.equity.len(),
        "equity_curve": curve,
    })))
}

fn strategy_pnl_json(x: &StrategyPnl, open: usize) -> Value {
    json!({
        "realised": x.realised,
        "unrealised": x.unrealised,
        "total": x.realised + x.unrealised,
        "fees": x.fees,
        "exposure": x.exposure,
        "open_positions": open,
        "closed": x.closed,
        "wins": x.wins,
    })
}

/// At most `n` of `points`, evenly spaced, the first and the newest kept.
fn thin_evenly<T: Copy>(points: &[T], n: usize) -> Vec<T> {
    match n {
        _ if points.len() <= n => points.to_vec(),
        0 => Vec::new(),
        1 => points.last().copied().into_iter().collect(),
        _ => (0..n)
            .map(|i| points[i * (points.len() - 1) / (n - 1)])
            .collect(),
    }
}

/// The question of a market the executor knows.
fn question<'a>(s: &'a ExecutorState, condition_id: &str) -> Option<&'a str> {
    s.replay
        .markets
        .get(condition_id)
        .map(|m| m.market().question.as_str())
}

fn open_json(s: &ExecutorState, p: &Position) -> Value {
    json!({
        "status": "open",
        "strategy": p.strategy,
        "condition_id": p.condition_id,
        "question": question(s, &p.condition_id),
        "token_id": p.token_id,
        "outcome": p.outcome,
        "shares": p.shares,
        "cost": p.cost,
        "entry_price": p.entry_price,
        "mark": p.mark,
        "marked_at": p.marked_at,
        "value": p.value(),
        "unrealised_pnl": p.unrealised_pnl(),
        "opened_at": p.opened_at,
    })
}

fn closed_json(s: &ExecutorState, c: &ClosedPosition) -> Value {
    json!({
        "status": "closed",
        "strategy": c.strategy,
        "condition_id": c.condition_id,
        "question": question(s, &c.condition_id),
        "token_id": c.token_id,
        "outcome": c.outcome,
        "shares": c.shares,
        "cost": c.cost,
        "proceeds": c.proceeds,
        "realised_pnl": c.realised_pnl,
        "opened_at": c.opened_at,
        "closed_at": c.closed_at,
        "reason": c.reason,
    })
}

/// `/api/executor/positions`: open positions in key order, then closed ones newest first.
pub async fn positions<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::ExecutorPositions, q)?;
    let now = st.now();
    let which = p.choice("status").unwrap_or("open");
    let strategy = p.text("strategy");
    let limit = p.count("limit");
    let Some(s) = load_state(&st.store).await? else {
        return Ok(Json(json!({
            "now": now, "status": which, "open": 0, "closed": 0, "positions": [],
        })));
    };
    let pf = s.replay.broker.portfolio();
    let mine = |name: &str| strategy.is_none_or(|want| want == name);
    let open: Vec<&Position> = pf
        .positions
        .values()
        .filter(|p| mine(&p.strategy))
        .collect();
    let closed: Vec<&ClosedPosition> = pf
        .closed
        .iter()
        .rev()
        .filter(|c| mine(&c.strategy))
        .collect();
    let mut items: Vec<Value> = Vec::new();
    if which != "closed" {
        items.extend(open.iter().map(|p| open_json(&s, p)));
    }
    if which != "open" {
        items.extend(closed.iter().map(|c| closed_json(&s, c)));
    }
    items.truncate(limit);
    Ok(Json(json!({
        "now": now,
        "status": which,
        "open": open.len(),
        "closed": closed.len(),
        "positions": items,
    })))
}

/// `/api/executor/fills`: newest first, paged by a cursor that stays on its fill however many
/// newer ones arrive (fills are only ever appended).
pub async fn fills<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::ExecutorFills, q)?;
    let now = st.now();
    let after = p.cursor(key_cursor)?;
    let strategy = p.text("strategy");
    let Some(s) = load_state(&st.store).await? else {
        return Ok(Json(
            json!({"now": now, "total": 0, "fills": [], "next_cursor": null}),
        ));
    };
    // (sequence key, fill): the key of the i-th fill sorts as i does, newest first.
    let all: Vec<(String, &FillEvent)> = s
        .replay
        .broker
        .fills()
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, f)| strategy.is_none_or(|want| want == f.strategy))
        .map(|(i, f)| (format!("{i:012}"), f))
        .collect();
    let (page, next) = page_after(&all, |(k, _)| k.clone(), after.as_deref(), p.count("limit"));
    let items: Vec<Value> = page.iter().map(|(_, f)| fill_json(&s, f)).collect();
    Ok(Json(json!({
        "now": now,
        "total": all.len(),
        "fills": items,
        "next_cursor": next,
    })))
}

fn fill_json(s: &ExecutorState, f: &FillEvent) -> Value {
    json!({
        "order_id": f.order_id,
        "ts": f.ts,
        "strategy": f.strategy,
        "condition_id": f.condition_id,
        "question": question(s, &f.condition_id),
        "token_id": f.token_id,
        "outcome": f.outcome,
        "side": f.side,
        "liquidity": f.liquidity,
        "shares": f.fill.shares,
        "avg_price": f.fill.avg_price,
        "cost": f.fill.cost,
        "fee": f.fill.fee,
        "levels_used": f.fill.levels_used,
    })
}

/// `/api/executor/signals`: the state's latest signals, newest first.
pub async fn signals<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::ExecutorSignals, q)?;
    let now = st.now();
    let strategy = p.text("strategy");
    let decision = p.choice("decision");
    let Some(s) = load_state(&st.store).await? else {
        return Ok(Json(json!({"now": now, "total": 0, "signals": []})));
    };
    let wanted = |d: &&DecidedSignal| {
        strategy.is_none_or(|want| want == d.signal.strategy)
            && decision.is_none_or(|want| want == decision_name(&d.decision))
    };
    let matching: Vec<&DecidedSignal> = s.signals.iter().rev().filter(wanted).collect();
    let items: Vec<Value> = matching
        .iter()
        .take(p.count("limit"))
        .map(|d| signal_json(&s, d))
        .collect();
    Ok(Json(json!({
        "now": now,
        "total": matching.len(),
        "signals": items,
    })))
}

fn decision_name(d: &SignalDecision) -> &'static str {
    match d {
        SignalDecision::Ordered { .. } => "ordered",
        SignalDecision::Rejected { .. } => "rejected",
    }
}

fn signal_json(s: &ExecutorState, d: &DecidedSignal) -> Value {
    let g = &d.signal;
    let (order_id, usd, rejection) = match &d.decision {
        SignalDecision::Ordered { order_id, usd } => (Some(*order_id), Some(*usd), None),
        SignalDecision::Rejected { rejection } => (None, None, Some(rejection)),
    };
    json!({
        "ts": g.ts,
        "strategy": g.strategy,
        "condition_id": g.condition_id,
        "question": question(s, &g.condition_id),
        "token_id": g.token_id,
        "outcome": g.outcome,
        "reason": g.reason,
        "edge": g.edge,
        "confidence": g.confidence,
        "price": g.price,
        "suggested_usd": g.suggested_usd,
        "decision": decision_name(&d.decision),
        "order_id": order_id,
        "usd": usd,
        "rejection": rejection,
    })
}

/// The strategies with the overrides applied, and where they came from.
async fn strategies_now<S: StatusStore>(
    st: &Status<S>,
    overrides: &BTreeMap<String, bool>,
) -> Result<(Vec<StrategyInfo>, Option<String>), ApiError> {
    if let Some(settings) = st.local.as_ref().and_then(|l| l.executor()) {
        let infos = strategy_infos(&with_overrides(&settings.config, overrides));
        return Ok((infos, Some(settings.source.clone())));
    }
    let (mut infos, source) = match load_state(&st.store).await? {
        Some(s) => (s.strategies, Some(s.config_source)),
        // Before the first run: the configuration the cloud's executor reads.
        None => {
            let settings = ExecutorSettings::from_store(&st.store).await?;
            (strategy_infos(&settings.config), Some(settings.source))
        }
    };
    for i in &mut infos {
        if let Some(on) = overrides.get(&i.name) {
            i.enabled = *on;
        }
    }
    Ok((infos, source))
}

/// `/api/strategies`.
pub async fn list<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    Params::of(Id::Strategies, q)?;
    let overrides = load_overrides(&st.store).await?;
    let (infos, source) = strategies_now(&st, &overrides).await?;
    Ok(Json(json!({
        "now": st.now(),
        "config_source": source,
        "toggle": st.local.is_some().then_some(true),
        "overrides": overrides,
        "strategies": infos,
    })))
}

/// The body of `POST /api/strategies/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Toggle {
    enabled: bool,
}

/// `POST /api/strategies/{name}` (a local run only): writes the override.
pub async fn toggle<S: StatusStore>(
    State(st): State<Arc<Status<S>>>,
    path: Result<Path<String>, PathRejection>,
    q: RawQuery,
    body: Bytes,
) -> Answer {
    Params::of(Id::StrategyToggle, q)?;
    if st.local.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_available",
            "strategies are switched on and off by a local run (polytape run) only",
        ));
    }
    let Path(name) = path.map_err(|e| ApiError::bad(format!("name: {e}")))?;
    let Toggle { enabled } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("body: expected {{\"enabled\": true or false}}: {e}"),
        )
    })?;
    let mut overrides = load_overrides(&st.store).await?;
    let (infos, _) = strategies_now(&st, &overrides).await?;
    let Some(mut info) = infos.into_iter().find(|i| i.name == name) else {
        return Err(ApiError::not_found(format!(
            "no strategy {name:?} is configured"
        )));
    };
    overrides.insert(name, enabled);
    save_overrides(&st.store, &overrides).await?;
    info.enabled = enabled;
    Ok(Json(json!({
        "now": st.now(),
        "strategy": info,
        "applies": "from the executor's next run",
    })))
}

#[cfg(test)]
mod tests {
    use super::thin_evenly;

    #[test]
    fn thinning_keeps_the_first_and_the_newest_point_evenly() {
        let points: Vec<u32> = (0..10).collect();
        assert_eq!(thin_evenly(&points, 4), [0, 3, 6, 9]);
        assert_eq!(thin_evenly(&points, 1), [9]);
        assert_eq!(thin_evenly(&points, 0), Vec::<u32>::new());
        assert_eq!(thin_evenly(&points, 20), points);
    }
}
