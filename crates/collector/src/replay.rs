//! `polytape replay`: rebuilds the `trades` table from the raw tape alone and says how it
//! differs from the stored one.
//!
//! The tape (`raw_ws`) holds every record the feed applied — frames as received, backfill
//! responses verbatim, its own state changes — with each run's order, so a fresh feed given a
//! run's records in that order makes the same trades ([`polytape_feed::Feed::apply`]). Trades
//! are compared by key, every column.

use crate::error::HandlerError;
use polytape_core::live::{StoredTrade, TapeRecord};
use polytape_feed::{Feed, FeedConfig, Output};
use polytape_store::{keys, parquet, ObjectStore};
use serde::Serialize;
use std::collections::BTreeMap;

/// How the rebuilt trades compare with the stored ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub runs: usize,
    pub tape_records: usize,
    pub tape_files: usize,
    /// Records with a part missing from the tape (left out of the replay).
    pub incomplete_records: usize,
    pub trade_files: usize,
    pub rebuilt: usize,
    pub stored: usize,
    /// Keys stored but not rebuilt (first few).
    pub missing: Vec<String>,
    pub missing_count: usize,
    /// Keys rebuilt but not stored (first few).
    pub extra: Vec<String>,
    pub extra_count: usize,
    /// Keys in both whose columns differ (first few), with the first column that differs.
    pub differing: Vec<(String, String)>,
    pub differing_count: usize,
    /// The same key stored more than once (a duplicate that slipped through).
    pub stored_twice: usize,
}

impl ReplayReport {
    pub fn identical(&self) -> bool {
        self.missing_count == 0
            && self.incomplete_records == 0
            && self.extra_count == 0
            && self.differing_count == 0
            && self.stored_twice == 0
    }
}

/// How many examples of each kind of difference a report lists.
const EXAMPLES: usize = 5;

/// Replays every run on the tape under `store` and compares with its `trades`.
pub async fn replay<S: ObjectStore>(store: &S) -> Result<ReplayReport, HandlerError> {
    let mut report = ReplayReport::default();
    let mut parts: Vec<TapeRecord> = Vec::new();
    // Each listing read by the reading rule: an hour being compacted counts once.
    let tape_keys = store.list_objects(&format!("{}/", keys::RAW_WS)).await?;
    for key in keys::visible(&tape_keys) {
        let Some(bytes) = store.get_object(key).await? else {
            continue;
        };
        report.tape_files += 1;
        parts.extend(parquet::decode_tape(&bytes)?);
    }
    // Whole records in run and sequence order (parts joined, a redelivered file's copies once).
    let (records, incomplete) = TapeRecord::join(parts);
    report.incomplete_records = incomplete.len();
    let mut runs: BTreeMap<i64, Vec<TapeRecord>> = BTreeMap::new();
    for rec in records {
        runs.entry(rec.run).or_default().push(rec);
    }
    let mut rebuilt: BTreeMap<String, StoredTrade> = BTreeMap::new();
    for (_, records) in runs {
        report.runs += 1;
        report.tape_records += records.len();
        let mut feed = Feed::new(FeedConfig::default());
        for rec in &records {
            feed.apply(rec);
            for out in feed.drain() {
                if let Output::Trade(t) = out {
                    rebuilt.insert(t.trade_key.clone(), *t);
                }
            }
        }
    }
    report.rebuilt = rebuilt.len();

    let mut stored: BTreeMap<String, StoredTrade> = BTreeMap::new();
    let trade_keys = store.list_objects(&format!("{}/", keys::TRADES)).await?;
    for key in keys::visible(&trade_keys) {
        let Some(bytes) = store.get_object(key).await? else {
            continue;
        };
        report.trade_files += 1;
        for t in parquet::decode_trades(&bytes)? {
            report.stored += 1;
            if stored.insert(t.trade_key.clone(), t).is_some() {
                report.stored_twice += 1;
            }
        }
    }
    for (key, s) in &stored {
        match rebuilt.get(key) {
            None => {
                report.missing_count += 1;
                if report.missing.len() < EXAMPLES {
                    report.missing.push(key.clone());
                }
            }
            Some(r) => {
                if let Some(column) = first_difference(s, r) {
                    report.differing_count += 1;
                    if report.differing.len() < EXAMPLES {
                        report.differing.push((key.clone(), column.to_string()));
                    }
                }
            }
        }
    }
    for key in rebuilt.keys().filter(|k| !stored.contains_key(*k)) {
        report.extra_count += 1;
        if report.extra.len() < EXAMPLES {
            report.extra.push(key.clone());
        }
    }
    Ok(report)
}

/// The first column in which a stored trade and its rebuilt twin differ.
fn first_difference(a: &StoredTrade, b: &StoredTrade) -> Option<&'static str> {
    let checks: [(&'static str, bool); 21] = [
        ("condition_id", a.condition_id == b.condition_id),
        ("token_id", a.token_id == b.token_id),
        ("outcome_index", a.outcome_index == b.outcome_index),
        ("side", a.side == b.side),
        ("price", a.price == b.price),
        ("size", a.size == b.size),
        ("size_source", a.size_source == b.size_source),
        ("fee_rate_bps", a.fee_rate_bps == b.fee_rate_bps),
        ("transaction_hash", a.transaction_hash == b.transaction_hash),
        ("trade_ts", a.trade_ts == b.trade_ts),
        ("received_at", a.received_at == b.received_at),
        ("source", a.source == b.source),
        ("best_bid", a.best_bid == b.best_bid),
        ("best_ask", a.best_ask == b.best_ask),
        ("mid", a.mid == b.mid),
        ("notional", a.notional == b.notional),
        ("whale_tier", a.whale_tier == b.whale_tier),
        ("stale", a.stale == b.stale),
        ("divergent", a.divergent == b.divergent),
        ("shard", a.shard == b.shard),
        ("seq", a.seq == b.seq),
    ];
    checks.iter().find(|(_, same)| !same).map(|(c, _)| *c)
}
