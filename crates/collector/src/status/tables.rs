//! `/api/tables` and `/api/tables/{name}`: every table polytape keeps — the Parquet tables
//! (through [`ObjectStore`], by the reading rule, so the same on S3 and in a data directory)
//! and the state tables (through the store ports, so the same on DynamoDB and SQLite) — with
//! their size, and their rows newest first, paged.
//!
//! Work per call is bounded: the Parquet tables are counted over the newest `days` UTC days
//! (a compacted hour's rows from its partition's manifest, other files' from their footers —
//! a ranged read of the end — up to [`FOOTER_READS`] files, past which the rest is estimated
//! and the answer says how), and a page of rows walks back at most [`DAYS_PER_PAGE`] days (its
//! cursor goes on from there), reading only the row groups holding its rows.

use super::markets::TRANSITIONS_READ;
use super::params::{from_hex_cursor, hex_cursor, key_cursor, page_after, Params, RawQuery};
use super::routes::Id;
use super::{Answer, ApiError, Status, StatusStore};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use chrono::NaiveDate;
use polytape_core::{Tier, Ts};
use polytape_store::read::{file_page, file_rows, visible_newest_first};
use polytape_store::{keys, ObjectInfo, ObjectStore};
use serde_json::{json, Value};
use std::sync::Arc;

/// The Parquet tables.
pub const PARQUET_TABLES: [&str; 11] = [
    keys::SNAPSHOTS,
    keys::ORDERBOOKS,
    keys::MARKETS,
    keys::RESOLUTIONS,
    keys::TIER_TRANSITIONS,
    keys::TRADES,
    keys::WHALE_EVENTS,
    keys::RAW_WS,
    keys::SIGNALS,
    keys::FILLS,
    keys::POSITIONS,
];

/// The state tables, as the ports read them (the same on DynamoDB and SQLite), and what part
/// of each a call reads.
pub const STATE_TABLES: [(&str, &str); 7] = [
    ("state.markets", "every market"),
    ("state.latest", "every tier's Latest values"),
    ("state.task_states", "every task"),
    ("state.task_runs", "runs of the last 6 h"),
    ("state.coverage", "tier ticks of the last 24 h"),
    ("state.transitions", "the newest 5,000"),
    ("state.heartbeats", "every shard"),
];

/// The state tables `/api/tables` counts (one small read each: a record per tier, task or
/// shard); the others' `rows` are `null` there.
pub const CHEAP_STATE_TABLES: [&str; 3] = ["state.latest", "state.task_states", "state.heartbeats"];

/// Footers read per table at most when counting its rows (compacted hours are counted from
/// their manifests and need none); past it, the other files are estimated at the average of
/// those read.
pub const FOOTER_READS: usize = 50;
/// UTC days one page of rows walks back at most.
pub const DAYS_PER_PAGE: u32 = 7;
/// UTC days back a table's rows are browsed at most.
pub const DAYS_BACK: i64 = 35;

/// The day partitions of `table` for `day` (one per tier for the per-tier tables).
fn day_prefixes(table: &str, day: NaiveDate) -> Vec<String> {
    match table {
        keys::SNAPSHOTS | keys::ORDERBOOKS => Tier::ALL
            .iter()
            .map(|t| keys::partition(table, Some(*t), day))
            .collect(),
        _ => vec![keys::partition(table, None, day)],
    }
}

/// The visible files of `table` on `day`, newest first.
async fn day_files<S: ObjectStore>(
    store: &S,
    table: &str,
    day: NaiveDate,
) -> Result<Vec<ObjectInfo>, ApiError> {
    Ok(day_listing(store, table, day).await?.0)
}

/// The visible files of `table` on `day`, newest first, and the compaction manifests of its
/// partitions that have a compacted file.
async fn day_listing<S: ObjectStore>(
    store: &S,
    table: &str,
    day: NaiveDate,
) -> Result<(Vec<ObjectInfo>, Vec<String>), ApiError> {
    let mut listed = Vec::new();
    for prefix in day_prefixes(table, day) {
        listed.extend(store.list_objects_sized(&prefix).await?);
    }
    let names: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    let files = visible_newest_first(&listed);
    let mut manifests: Vec<String> = files
        .iter()
        .filter(|f| keys::is_compacted(&f.key))
        .map(|f| keys::manifest(keys::partition_of(&f.key)))
        .filter(|m| names.contains(&m.as_str()))
        .collect();
    manifests.dedup();
    Ok((files, manifests))
}

/// `/api/tables`.
pub async fn list<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Tables, q)?;
    let now = st.now();
    let days = i64::try_from(p.int("days")).unwrap_or(1);
    let today = now.date_naive();
    let counted = futures_util::future::try_join_all(
        PARQUET_TABLES
            .iter()
            .map(|table| parquet_table(&st.store, table, today, days)),
    )
    .await?;
    let mut tables = counted;
    for (name, scope) in STATE_TABLES {
        // Only the small tables are counted here; the others would take a full read (a
        // Markets scan, a day of coverage, hours of runs) just for a number: `null`, and
        // `/api/tables/{name}` pages them.
        let rows = if CHEAP_STATE_TABLES.contains(&name) {
            Some(state_rows(&st.store, name, now).await?.len())
        } else {
            None
        };
        tables.push(json!({
            "name": name,
            "kind": "state",
            "scope": scope,
            "rows": rows,
            "rows_exact": rows.is_some(),
            "files": null,
            "bytes": null,
        }));
    }
    let from = today - chrono::Days::new(u64::try_from(days - 1).unwrap_or(0));
    Ok(Json(json!({
        "now": now,
        "parquet_days": {"from": from, "to": today},
        "tables": tables,
    })))
}

/// Files, bytes and rows of one Parquet table over the newest `days` days: a compacted
/// hour's rows from its partition's manifest (one small read per partition), every other
/// file's from its footer (a ranged read of its end) up to [`FOOTER_READS`] files; past that,
/// the others are estimated at the average of the footers read, and the answer says so.
async fn parquet_table<S: ObjectStore>(
    store: &S,
    table: &str,
    today: NaiveDate,
    days: i64,
) -> Result<Value, ApiError> {
    let mut files = Vec::new();
    let mut manifests = Vec::new();
    for back in 0..days {
        let day = today - chrono::Days::new(u64::try_from(back).unwrap_or(0));
        let (f, m) = day_listing(store, table, day).await?;
        files.extend(f);
        manifests.extend(m);
    }
    let mut manifest_rows: std::collections::HashMap<String, u64> = Default::default();
    for key in &manifests {
        let Some(bytes) = store.get_object(key).await? else {
            continue;
        };
        // A manifest that cannot be read leaves its files to their footers.
        if let Ok(m) = serde_json::from_slice::<polytape_store::compact::Manifest>(&bytes) {
            for e in m.hours.into_values() {
                if let Some(f) = e.file {
                    manifest_rows.insert(f, e.rows);
                }
            }
        }
    }
    let bytes: u64 = files.iter().filter_map(|f| f.size).sum();
    let (mut rows, mut from_manifests, mut footers, mut footer_rows) = (0u64, 0usize, 0usize, 0u64);
    let mut unread = 0usize;
    for f in &files {
        if let Some(n) = manifest_rows.get(&f.key) {
            rows += n;
            from_manifests += 1;
        } else if footers < FOOTER_READS {
            footer_rows += file_rows(store, &f.key).await?;
            footers += 1;
        } else {
            unread += 1;
        }
    }
    rows += footer_rows;
    let exact = unread == 0;
    if !exact && footers > 0 {
        rows += (footer_rows as f64 / footers as f64 * unread as f64).round() as u64;
    }
    let counted = if exact {
        format!("{from_manifests} compacted hours from their manifests, {footers} files from their footers")
    } else {
        format!(
            "estimated: {from_manifests} compacted hours from their manifests, the newest \
             {footers} other files from their footers, the {unread} older files at the \
             average of those"
        )
    };
    let from = today - chrono::Days::new(u64::try_from(days - 1).unwrap_or(0));
    Ok(json!({
        "name": table,
        "kind": "parquet",
        "scope": format!("files of {from} to {today} (UTC)"),
        "rows": rows,
        "rows_exact": exact,
        "rows_counted": counted,
        "files": files.len(),
        "bytes": bytes,
        "newest_file": files.first().map(|f| &f.key),
    }))
}

/// The rows a state table's port gives, newest first, as JSON, each with its sort key (its
/// time, fixed width, then what makes it unique), sorted by key descending: a page's cursor
/// is its last row's key, so rows added between two calls shift nothing.
async fn state_rows<S: StatusStore>(
    store: &S,
    name: &str,
    now: Ts,
) -> Result<Vec<(String, Value)>, ApiError> {
    let t = |t: Ts| t.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let ot = |o: Option<Ts>| o.map_or_else(|| "0".to_string(), t);
    let day_ago = now - chrono::Duration::hours(24);
    let mut rows: Vec<(String, Value)> = match name {
        "state.markets" => store
            .all_markets()
            .await?
            .iter()
            .map(|m| {
                (
                    format!("{}|{}", t(m.first_seen), m.condition_id),
                    to_json(m),
                )
            })
            .collect(),
        "state.latest" => {
            let mut out = Vec::new();
            for tier in Tier::ALL {
                if let Some(l) = store.get_latest(tier).await? {
                    for e in l.markets {
                        let mut v = to_json(&e);
                        v["tier"] = json!(tier.number());
                        out.push((format!("{}|{tier}|{}", t(e.tick_ts), e.condition_id), v));
                    }
                }
            }
            out
        }
        "state.task_states" => store
            .task_states()
            .await?
            .iter()
            .map(|s| (format!("{}|{}", ot(s.last_started_at), s.task), to_json(s)))
            .collect(),
        "state.task_runs" => store
            .task_runs_since(now - chrono::Duration::hours(6))
            .await?
            .iter()
            .map(|r| (format!("{}|{}", t(r.started_at), r.id), to_json(r)))
            .collect(),
        "state.coverage" => store
            .coverage_since(day_ago)
            .await?
            .iter()
            // Within a tick, T0 first (as newest first lists them): the tier's number inverted.
            .map(|c| {
                (
                    format!("{}|{}", t(c.tick_ts), 9 - c.tier.number()),
                    to_json(c),
                )
            })
            .collect(),
        "state.transitions" => store
            .recent_transitions(TRANSITIONS_READ)
            .await?
            .iter()
            .map(|tr| (super::markets::transition_key(tr), to_json(tr)))
            .collect(),
        "state.heartbeats" => store
            .heartbeats()
            .await?
            .iter()
            .map(|h| (format!("{}|{}", t(h.at), h.shard_id), to_json(h)))
            .collect(),
        _ => return Err(ApiError::not_found(format!("no table {name}"))),
    };
    rows.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(rows)
}

/// A record as JSON.
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Where a page of a Parquet table goes on: the day, the page group to resume in (`None`: the
/// day's newest) and the rows of that group already given.
///
/// A page group is an hour of a partition ([`page_group`]), not a file: hourly compaction
/// replaces an hour's files by one file holding their rows in the same order (oldest file
/// first), so a cursor taken before compaction goes on in the compacted file after it, with no
/// row skipped or given twice (bar the duplicate trade keys compaction drops).
#[derive(Debug, Clone, PartialEq)]
struct ParquetCursor {
    day: NaiveDate,
    group: Option<String>,
    skip: usize,
}

impl ParquetCursor {
    /// `d` and, in hex (groups hold `/` and `=`), `<day>|<group>|<rows given>`.
    fn encode(&self) -> String {
        let text = format!(
            "{}|{}|{}",
            self.day,
            self.group.as_deref().unwrap_or(""),
            self.skip
        );
        format!("d{}", hex_cursor(&text))
    }

    fn decode(v: &str) -> Option<ParquetCursor> {
        let text = from_hex_cursor(v.strip_prefix('d')?)?;
        let (day, rest) = text.split_once('|')?;
        let (group, skip) = rest.rsplit_once('|')?;
        Some(ParquetCursor {
            day: day.parse().ok()?,
            group: (!group.is_empty()).then(|| group.to_string()),
            skip: skip.parse().ok()?,
        })
    }
}

/// The page group of a file: its partition and hour (`snapshots/tier=2/dt=2026-11-20/20261120T12`),
/// which compaction keeps; the key itself for a file without an hour (`markets.parquet`).
fn page_group(key: &str) -> String {
    match keys::hour_of(key) {
        Some(hour) => format!("{}{hour}", keys::partition_of(key)),
        None => key.to_string(),
    }
}

/// Where a page group comes in a day's pages: newest hour first, then by partition (a group
/// without an hour last). A group's files are then side by side whether or not the hour is
/// compacted, so compaction moves no row across another group's.
fn group_order(group: &str) -> (std::cmp::Reverse<Option<&str>>, &str) {
    (
        std::cmp::Reverse(keys::hour_of(group)),
        keys::partition_of(group),
    )
}

/// `/api/tables/{name}`: a page of rows, newest first: the newest hour first, within an hour
/// one partition after the other ([`group_order`]), within a partition's hour newest first.
pub async fn rows<S: StatusStore>(
    State(st): State<Arc<Status<S>>>,
    path: Result<Path<String>, PathRejection>,
    q: RawQuery,
) -> Answer {
    let p = Params::of(Id::Table, q)?;
    let Path(name) = path.map_err(|e| ApiError::bad(format!("name: {e}")))?;
    let now = st.now();
    let limit = p.count("limit");
    if STATE_TABLES.iter().any(|(n, _)| *n == name) {
        let after = p.cursor(key_cursor)?;
        let all = state_rows(&st.store, &name, now).await?;
        let (rows, next) = page_after(&all, |r| r.0.clone(), after.as_deref(), limit);
        let rows: Vec<Value> = rows.into_iter().map(|r| r.1).collect();
        return Ok(Json(json!({
            "now": now,
            "table": name,
            "kind": "state",
            "total": all.len(),
            "rows": rows,
            "next_cursor": next,
        })));
    }
    let Some(table) = PARQUET_TABLES.iter().find(|t| **t == name) else {
        return Err(ApiError::not_found(format!("no table {name}")));
    };
    let today = now.date_naive();
    let oldest = today - chrono::Days::new(u64::try_from(DAYS_BACK).unwrap_or(0));
    let mut at = p.cursor(ParquetCursor::decode)?.unwrap_or(ParquetCursor {
        day: today,
        group: None,
        skip: 0,
    });
    let mut out: Vec<Value> = Vec::new();
    let mut next = None;
    let mut days = 0;
    'days: while at.day >= oldest {
        if days == DAYS_PER_PAGE {
            next = Some(at.encode());
            break;
        }
        days += 1;
        let mut files = day_files(&st.store, table, at.day).await?;
        // Group by group (stable: newest first within one).
        files.sort_by(|a, b| {
            group_order(&page_group(&a.key)).cmp(&group_order(&page_group(&b.key)))
        });
        let first = match &at.group {
            Some(g) => files
                .iter()
                .position(|f| page_group(&f.key) == *g)
                .or_else(|| {
                    files
                        .iter()
                        .position(|f| group_order(&page_group(&f.key)) > group_order(g))
                })
                .unwrap_or(files.len()),
            None => 0,
        };
        // The group being read, the rows of it given (the cursor's included) and the rows of
        // it still to pass over.
        let mut group = String::new();
        let mut given = 0usize;
        let mut pass = 0u64;
        for f in files.iter().skip(first) {
            let g = page_group(&f.key);
            if g != group {
                given = if Some(&g) == at.group.as_ref() {
                    at.skip
                } else {
                    0
                };
                pass = given as u64;
                group = g;
            }
            if out.len() == limit {
                next = Some(
                    ParquetCursor {
                        day: at.day,
                        group: Some(group.clone()),
                        skip: given,
                    }
                    .encode(),
                );
                break 'days;
            }
            // Only the row groups holding the rows of this page are read, and only those
            // rows converted; newest first within a file too (files are written oldest first).
            let Some(page) = file_page(&st.store, &f.key, pass, limit - out.len()).await? else {
                continue;
            };
            if pass >= page.total {
                pass -= page.total;
                continue;
            }
            let taken = page.rows.len();
            let more_here = pass + (taken as u64) < page.total;
            pass = 0;
            given += taken;
            let partition = partition_columns(&f.key);
            for mut row in page.rows {
                for (k, v) in &partition {
                    row.insert(k.clone(), v.clone());
                }
                out.push(Value::Object(row));
            }
            if out.len() == limit && more_here {
                next = Some(
                    ParquetCursor {
                        day: at.day,
                        group: Some(group.clone()),
                        skip: given,
                    }
                    .encode(),
                );
                break 'days;
            }
        }
        at = ParquetCursor {
            day: at.day - chrono::Days::new(1),
            group: None,
            skip: 0,
        };
    }
    Ok(Json(json!({
        "now": now,
        "table": table,
        "kind": "parquet",
        "rows": out,
        "next_cursor": next,
    })))
}

/// The Hive partition columns of a key (`tier`, `dt`), as a query of the table would show
/// them.
fn partition_columns(key: &str) -> Vec<(String, Value)> {
    key.split('/')
        .filter_map(|seg| seg.split_once('='))
        .map(|(k, v)| {
            let v = match (k, v.parse::<u8>()) {
                ("tier", Ok(n)) => json!(n),
                _ => json!(v),
            };
            (k.to_string(), v)
        })
        .collect()
}
