//! `/api/markets`, `/api/markets/{condition_id}` and `/api/tier-transitions`.

use super::params::{key_cursor, page_after, Params, RawQuery};
use super::routes::Id;
use super::{Answer, ApiError, Status, StatusStore};
use crate::ledger::{scheduled, tier_at, tier_history};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use polytape_core::ops::{LatestEntry, TierTransition};
use polytape_core::{Market, Tier, Ts};
use polytape_store::parquet::json::batch_rows;
use polytape_store::read::TickReader;
use polytape_store::{keys, LatestStore, MarketStore, ObjectStore};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Transitions read per call at most (the newest; on DynamoDB the last 8 days' partitions).
pub const TRANSITIONS_READ: usize = 5_000;

/// Tick files one market's detail reads at most for its recent snapshots.
pub const SNAPSHOT_READS: usize = 60;

/// `/api/markets`.
pub async fn list<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Markets, q)?;
    let now = st.now();
    let state = p.choice("state").unwrap_or("active");
    let markets = match state {
        "active" => st.store.active_markets().await?,
        "ended" => st.store.markets_awaiting_result().await?,
        _ => st.store.all_markets().await?,
    };
    let tier = p.tier("tier");
    let text = p.text("q").map(str::to_lowercase);
    let mut found: Vec<&Market> = markets
        .iter()
        .filter(|m| tier.is_none() || tier_at(m, now) == tier)
        .filter(|m| {
            text.as_deref().is_none_or(|q| {
                m.question.to_lowercase().contains(q)
                    || m.slug
                        .as_deref()
                        .is_some_and(|s| s.to_lowercase().contains(q))
                    || m.condition_id.to_lowercase() == q
            })
        })
        .collect();
    found.sort_by(|a, b| (a.end_date, &a.condition_id).cmp(&(b.end_date, &b.condition_id)));
    let after = p.cursor(market_cursor)?;
    let start = match &after {
        Some((end, id)) => found.partition_point(|m| (m.end_date, &m.condition_id) <= (*end, id)),
        None => 0,
    };
    let limit = p.count("limit");
    let page: Vec<&Market> = found.iter().skip(start).take(limit).copied().collect();
    let next = (start + page.len() < found.len())
        .then(|| page.last())
        .flatten()
        .map(|m| format!("e{}:{}", m.end_date.timestamp_millis(), m.condition_id));
    let latest = if page.is_empty() {
        HashMap::new()
    } else {
        latest_by_market(&st.store, now).await?
    };
    let items: Vec<Value> = page
        .iter()
        .map(|m| market_json(m, now, latest.get(m.condition_id.as_str())))
        .collect();
    Ok(Json(json!({
        "now": now,
        "state": state,
        "total": found.len(),
        "markets": items,
        "next_cursor": next,
    })))
}

/// `e<end ms>:<condition id>`: the last market of a page.
fn market_cursor(v: &str) -> Option<(Ts, String)> {
    let (ms, id) = v.strip_prefix('e')?.split_once(':')?;
    let t = chrono::DateTime::from_timestamp_millis(ms.parse().ok()?)?;
    Some((t, id.to_string()))
}

/// Every tier's Latest entries by market as of its newest tick at `now` (a market in two
/// tiers' values keeps the newest).
async fn latest_by_market<S: LatestStore + ObjectStore + MarketStore>(
    store: &S,
    now: Ts,
) -> Result<HashMap<String, (Tier, LatestEntry)>, ApiError> {
    let mut out: HashMap<String, (Tier, LatestEntry)> = HashMap::new();
    for tier in Tier::ALL {
        let Some(l) = crate::latest::current(store, tier, now).await? else {
            continue;
        };
        for e in l.markets {
            if e.snapshot_count == 0 {
                continue;
            }
            let newer = out
                .get(&e.condition_id)
                .is_none_or(|(_, old)| old.tick_ts < e.tick_ts);
            if newer {
                out.insert(e.condition_id.clone(), (tier, e));
            }
        }
    }
    Ok(out)
}

fn latest_json(latest: Option<&(Tier, LatestEntry)>) -> Value {
    match latest {
        None => Value::Null,
        Some((tier, e)) => json!({
            "tier": tier.to_string(),
            "tick_ts": e.tick_ts,
            "price": e.price,
            "best_bid": e.best_bid,
            "best_ask": e.best_ask,
            "spread": e.spread,
            "volume_24h": e.volume_24h,
            "snapshot_count": e.snapshot_count,
        }),
    }
}

fn market_json(m: &Market, now: Ts, latest: Option<&(Tier, LatestEntry)>) -> Value {
    json!({
        "condition_id": m.condition_id,
        "question": m.question,
        "slug": m.slug,
        "category": m.category,
        "outcomes": m.outcomes,
        "end_date": m.end_date,
        "hours_to_close": polytape_core::tier::hours_between(now, m.end_date),
        "tier": tier_at(m, now).map(|t| t.to_string()),
        "active": m.active,
        "result": m.result.name(),
        "winning_outcome": m.winning_outcome(),
        "closed_at": m.closed_at,
        "first_seen": m.first_seen,
        "volume_24h": m.volume_24h,
        "latest": latest_json(latest),
    })
}

/// A condition id as polytape stores them: `0x` and hex digits.
fn valid_condition_id(id: &str) -> bool {
    id.len() <= 130
        && id
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `/api/markets/{condition_id}`.
pub async fn one<S: StatusStore>(
    State(st): State<Arc<Status<S>>>,
    path: Result<Path<String>, PathRejection>,
    q: RawQuery,
) -> Answer {
    let p = Params::of(Id::Market, q)?;
    let Path(id) = path.map_err(|e| ApiError::bad(format!("condition_id: {e}")))?;
    if !valid_condition_id(&id) {
        return Err(ApiError::bad(format!(
            "condition_id: expected 0x and hex digits, got {id:?}"
        )));
    }
    let now = st.now();
    let Some(m) = st.store.get_market(&id).await? else {
        return Err(ApiError::not_found(format!("no market {id}")));
    };
    let transitions: Vec<TierTransition> = st
        .store
        .recent_transitions(TRANSITIONS_READ)
        .await?
        .into_iter()
        .filter(|t| t.condition_id == id)
        .collect();
    let latest = latest_by_market(&st.store, now).await?;
    let want = p.count("snapshots");
    let (snapshots, reads) = recent_snapshots(&st.store, &m, now, want).await?;
    let mut market = market_json(&m, now, latest.get(id.as_str()));
    if let Value::Object(fields) = &mut market {
        fields.insert("yes_token_id".into(), json!(m.yes_token_id));
        fields.insert("no_token_id".into(), json!(m.no_token_id));
        fields.insert("neg_risk".into(), json!(m.neg_risk));
        fields.insert("delisted".into(), json!(m.delisted));
        fields.insert("outcome".into(), json!(m.outcome()));
        fields.insert("tier_history".into(), json!(tier_history(&m, now)));
        fields.insert("transitions".into(), json!(transitions));
        fields.insert("snapshots".into(), Value::Array(snapshots));
        fields.insert("snapshot_files_read".into(), json!(reads));
    }
    Ok(Json(json!({ "now": now, "market": market })))
}

/// The newest `want` snapshot rows of `m`, newest first, from the tick files its tier history
/// names (at most [`SNAPSHOT_READS`] files), each with its `tier`.
async fn recent_snapshots<S: StatusStore>(
    store: &S,
    m: &Market,
    now: Ts,
    want: usize,
) -> Result<(Vec<Value>, usize), ApiError> {
    let mut out = Vec::new();
    if want == 0 {
        return Ok((out, 0));
    }
    let mut reader = TickReader::new(store, keys::SNAPSHOTS);
    'history: for seg in tier_history(m, now).iter().rev() {
        let to = seg.to.unwrap_or(now);
        // Never further back than the reads allow.
        let span = chrono::Duration::seconds(i64::from(seg.tier.interval_s()))
            * i32::try_from(SNAPSHOT_READS).unwrap_or(i32::MAX);
        let from = seg.from.max(to - span);
        for tick in scheduled(seg.tier, from, to).into_iter().rev() {
            if reader.reads >= SNAPSHOT_READS || out.len() >= want {
                break 'history;
            }
            let Some(batches) = reader.rows(tick).await? else {
                continue;
            };
            for batch in &batches {
                for mut row in batch_rows(batch)? {
                    if row.get("condition_id").and_then(Value::as_str) == Some(&m.condition_id) {
                        row.insert("tier".into(), json!(tick.tier.number()));
                        out.push(Value::Object(row));
                    }
                }
            }
        }
    }
    out.truncate(want);
    Ok((out, reader.reads))
}

/// `/api/tier-transitions`.
pub async fn transitions<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Transitions, q)?;
    let after = p.cursor(key_cursor)?;
    let all = st.store.recent_transitions(TRANSITIONS_READ).await?;
    let tier = p.tier("tier");
    let mut found: Vec<&TierTransition> = all
        .iter()
        .filter(|t| p.text("condition_id").is_none_or(|c| t.condition_id == c))
        .filter(|t| p.choice("reason").is_none_or(|r| t.reason == r))
        .filter(|t| tier.is_none() || t.from_tier == tier || t.to_tier == tier)
        .collect();
    // Newest first by (time, market, tier): the cursor is the last one's key, so transitions
    // recorded between two calls do not shift the next page.
    found.sort_by_key(|t| std::cmp::Reverse(transition_key(t)));
    let (items, next) = page_after(
        &found,
        |t| transition_key(t),
        after.as_deref(),
        p.count("limit"),
    );
    Ok(Json(json!({
        "now": st.now(),
        "total": found.len(),
        "read": all.len(),
        "transitions": items,
        "next_cursor": next,
    })))
}

/// A transition's sort key: its time (fixed width, so text order is time order), market and
/// tiers.
pub(super) fn transition_key(t: &TierTransition) -> String {
    let tier = |t: Option<polytape_core::Tier>| t.map_or("-".to_string(), |t| t.to_string());
    format!(
        "{}|{}|{}|{}",
        t.at.format("%Y%m%dT%H%M%S%.3fZ"),
        t.condition_id,
        tier(t.from_tier),
        tier(t.to_tier)
    )
}
