//! `/api/data-quality/coverage`, `/api/data-quality/gaps` and
//! `/api/data-quality/completeness`: the coverage ledger ([`crate::ledger`]) and the share of
//! non-NULL values per column over the newest ticks.

use super::params::{page, Params, RawQuery};
use super::routes::Id;
use super::{since, Answer, Status, StatusStore};
use crate::ledger::{self, scheduled};
use axum::extract::State;
use axum::Json;
use polytape_store::keys;
use polytape_store::parquet::json::{non_null_by_batches, NonNull};
use polytape_store::read::TickReader;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `/api/data-quality/coverage`: expected vs written samples per tier and UTC hour.
pub async fn coverage<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Coverage, q)?;
    let now = st.now();
    let hours = i64::try_from(p.int("hours")).unwrap_or(1);
    let from = ledger::hour_of(now) - chrono::Duration::hours(hours - 1);
    let since = since(&st).await?;
    let report = ledger::coverage(&st.store, now, from, since, &p.tiers()).await?;
    let mut v = serde_json::to_value(&report).unwrap_or_default();
    if let Value::Object(fields) = &mut v {
        fields.insert("now".into(), json!(now));
    }
    Ok(Json(v))
}

/// `/api/data-quality/gaps`: markets with missing ticks (paged), and stale markets.
pub async fn gaps<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Gaps, q)?;
    let real_now = st.now();
    // The cursor pins the window of the first page (its end, in ms) with the offset, so the
    // next pages page the same list rather than one rebuilt a little later.
    let (now, offset) = match p.cursor(gaps_cursor)? {
        Some((end_ms, offset)) => (
            chrono::DateTime::from_timestamp_millis(end_ms).unwrap_or(real_now),
            offset,
        ),
        None => (real_now, 0),
    };
    let hours = i64::try_from(p.int("hours")).unwrap_or(1);
    // From a whole second: the window is the same for every call within the second.
    let from = chrono::SubsecRound::trunc_subsecs(now - chrono::Duration::hours(hours), 0);
    let since = since(&st).await?;
    let tiers = p.tiers();
    let report = ledger::gaps(&st.store, now, from, since, &tiers).await?;
    let stale = ledger::stale(&st.store, real_now, &tiers).await?;
    let limit = p.count("limit");
    let (markets, _) = page(&report.markets, offset, limit);
    let end = offset.saturating_add(limit);
    let next = (end < report.markets.len()).then(|| format!("w{}-{end}", now.timestamp_millis()));
    Ok(Json(json!({
        "now": real_now,
        "from": report.from,
        "to": report.to,
        "since": since,
        "shortfall_ticks": report.shortfall_ticks,
        "truncated": report.truncated,
        "total": report.markets.len(),
        "markets": markets,
        "next_cursor": next,
        "stale": stale,
    })))
}

/// Tick files one completeness call reads at most (over every tier), so the status function
/// answers well within its timeout; `truncated` says when it stopped there.
pub const COMPLETENESS_READS: usize = 100;

/// `/api/data-quality/completeness`: per tier (and per tier and category) over its newest
/// ticks with rows, each column's share of rows where it is not NULL.
pub async fn completeness<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Completeness, q)?;
    let now = st.now();
    let want = p.count("ticks");
    let mut reader = TickReader::new(&st.store, keys::SNAPSHOTS);
    let mut truncated = false;
    let mut tiers = Vec::new();
    let mut by_category = Vec::new();
    for tier in p.tiers() {
        // Back from now, at most twice as many ticks as asked for (a tick still running, or
        // one of a tier with no markets, has no rows to find).
        let span = chrono::Duration::seconds(i64::from(tier.interval_s()))
            * i32::try_from(want * 2 + 1).unwrap_or(i32::MAX);
        let mut ticks_read = Vec::new();
        let mut all = NonNull::default();
        let mut groups: BTreeMap<Option<String>, NonNull> = BTreeMap::new();
        for tick in scheduled(tier, now - span, now).into_iter().rev() {
            if ticks_read.len() >= want {
                break;
            }
            if reader.reads >= COMPLETENESS_READS {
                truncated = true;
                break;
            }
            let Some(batches) = reader.rows(tick).await? else {
                continue;
            };
            if batches.iter().all(|b| b.num_rows() == 0) {
                continue;
            }
            ticks_read.push(tick.tick_ts);
            for (category, counts) in non_null_by_batches(&batches, "category") {
                all.add(&counts);
                groups.entry(category).or_default().add(&counts);
            }
        }
        tiers.push(json!({
            "tier": tier.to_string(),
            "ticks": ticks_read,
            "rows": all.rows,
            "columns": shares(&all),
        }));
        for (category, counts) in groups {
            by_category.push(json!({
                "tier": tier.to_string(),
                "category": category,
                "rows": counts.rows,
                "columns": shares(&counts),
            }));
        }
    }
    Ok(Json(json!({
        "now": now,
        "ticks_per_tier": want,
        "truncated": truncated,
        "tiers": tiers,
        "by_category": by_category,
    })))
}

/// Each column's share of non-NULL rows, to 4 decimals (null when there is no row).
fn shares(n: &NonNull) -> Value {
    let mut out = Map::new();
    for (column, non_null) in &n.columns {
        let share =
            (n.rows > 0).then(|| (10_000.0 * *non_null as f64 / n.rows as f64).round() / 10_000.0);
        out.insert(column.clone(), json!(share));
    }
    Value::Object(out)
}

/// `w<end of the window, ms>-<offset>`: a gaps page's place in the list of the window it pins.
fn gaps_cursor(v: &str) -> Option<(i64, usize)> {
    let (end, offset) = v.strip_prefix('w')?.split_once('-')?;
    Some((end.parse().ok()?, offset.parse().ok()?))
}
