//! Hourly compaction: the small files of each closed hour of a partition — a file per tick,
//! a file per batch of live-feed messages — merged into one, `<hour>.compacted.parquet`, recorded in the
//! partition's `_manifest.json` (rows, bytes, sha256, the source files), and the sources
//! deleted. One code path over the storage ports ([`crate::ObjectStore`],
//! [`ObjectDeleter`]): the data directory of `polytape run` and the S3 bucket are compacted
//! alike.
//!
//! # What readers see
//! The reading rule ([`keys::visible`]): where an hour of a partition has a compacted file,
//! that file stands for the hour and its other files are not read. A listing decides, so at
//! every moment a reader counts each row once: before step 2 below it reads the sources,
//! after it the compacted file, which holds exactly their rows (less duplicate trade keys).
//!
//! # The steps, and a crash at each
//! For each hour that closed more than [`CompactOptions::settle`] ago — longer than any retry
//! can still rewrite one of its files — with files the manifest does not name:
//! 1. merge: the hour's compacted file first if there is one, then, oldest first in the order
//!    readers use ([`crate::read::newest_first`] reversed), each file of
//!    the hour it does not hold yet. `trades` and `whale_events` keep the first stored row of
//!    each `trade_key`: a row goes when its key came earlier in that order, in what a reader
//!    reads of the [`DEDUP_HOURS_BACK`] hours before, or (a new file's row) in the compacted
//!    files of the [`DEDUP_HOURS_AHEAD`] hours after. The merged file names its sources in its
//!    own footer ([`Provenance`]).
//! 2. put `<hour>.compacted.parquet` — the commit point for readers;
//! 3. put `_manifest.json` with the hour's entry — the commit point for the compactor;
//! 4. once [`CompactOptions::delete_after`] has passed since 3 (a query that listed the
//!    partition before 2 may still be reading a source), delete the sources the manifest
//!    names, then note in the manifest that they are gone.
//!
//! A merge that keeps no row (every trade key of the hour stored already) skips 2: readers
//! that decide from rows (the DuckDB and Athena views) cannot see an empty file, and would read
//! the sources beside it. Its entry has no file, and 4 follows 3 at once: the sources hold
//! only copies of rows read elsewhere, so deleting them changes no count.
//!
//! A crash before 2 leaves nothing behind. A crash between 2 and 3 leaves a compacted file no
//! entry names: the next run reads its footer, finds every source in it, and writes the entry
//! (merging again only a file it does not hold). A crash during 4 leaves some sources: the next
//! run deletes the rest. Nothing is deleted before a stored manifest names it and the
//! compacted file holding its rows is stored. A source that reappears after its deletion (a
//! redelivery later than the settle time) was merged already and is deleted again (one named
//! for other messages by a later batch is merged again, its trade keys dropped as repeats); a
//! file of
//! the hour that no compacted file holds (one that arrived after compaction) is merged into it
//! at the next run — until then the reading rule hides it, which is why `settle` must outlast
//! every retry.
//!
//! Only one compaction runs at a time (the collector holds the task's lease); each run looks
//! at the partitions of the last few days (tick and paper tables: today and yesterday; the
//! live feed's tables: [`CompactOptions::lookback_days`], as long as a message can wait in its
//! queue).

mod merge;

use crate::error::{Result, StoreError};
use crate::keys::{self, COMPACTED_TABLES};
use crate::ports::ObjectDeleter;
use chrono::{NaiveDateTime, TimeDelta};
use futures_util::stream::{self, StreamExt};
use polytape_core::{Tier, Ts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

pub use merge::{dedups_trade_keys, sha256_hex, Provenance, PROVENANCE_KEY};

/// The hours before an hour whose trade keys its merge drops: a restarted feed's warm-up
/// backfill reaches an hour (and its settle time) back, so its duplicates of trades the
/// previous process stored land up to two file-hours later.
pub const DEDUP_HOURS_BACK: i64 = 2;

/// The hours after an hour whose compacted files' trade keys its merge drops too: a late file
/// of an hour may repeat a trade a following hour has stored already, and a stored row stays
/// where it is (the first stored copy is kept).
pub const DEDUP_HOURS_AHEAD: i64 = 2;

/// Days before today a tick table (`snapshots`, `orderbooks`) or a paper executor table
/// (`signals`, `fills`, `positions`: written by the step after a tick) is looked at: their
/// files are rewritten only by retries of the tick, within the hour.
pub const TICK_LOOKBACK_DAYS: u32 = 1;

/// The media type of the manifest.
pub const MANIFEST_CONTENT_TYPE: &str = "application/json";

/// How compaction runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// An hour is compacted only once it ended this long ago: longer than any retry can still
    /// write one of its files (`POLYTAPE_COMPACT_SETTLE_S`; the derivation from template.yaml
    /// is in the collector's config).
    pub settle: Duration,
    /// Sources are deleted this long after the manifest naming them is stored, so a query that
    /// listed the partition before may finish reading them.
    pub delete_after: Duration,
    /// Days before today the live feed's tables are looked at (their queue keeps a message up
    /// to 4 days).
    pub lookback_days: u32,
    /// No hour is started after this (an invocation's end, a run's budget); the rest waits for
    /// the next run.
    pub stop_at: Option<Ts>,
    /// Objects read at once.
    pub fetch_concurrency: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            settle: Duration::from_secs(3000),
            delete_after: Duration::from_secs(1800),
            lookback_days: 5,
            stop_at: None,
            fetch_concurrency: 8,
        }
    }
}

/// A partition's `_manifest.json`: every hour compacted in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest's format (1).
    pub version: u32,
    pub table: String,
    /// The partition, with its trailing `/`: `snapshots/tier=4/dt=2026-11-20/`.
    pub partition: String,
    /// By hour label (`20261120T22`).
    pub hours: BTreeMap<String, HourEntry>,
}

/// One compacted hour of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourEntry {
    /// The compacted file's key; `None` when the merge kept no row (every row's trade key was
    /// stored already): no file is written — readers decide from rows, and an empty file would
    /// hide nothing from them — and the sources are deleted at once.
    pub file: Option<String>,
    /// Rows in it.
    pub rows: u64,
    /// Its size (0 without a file).
    pub bytes: u64,
    /// Its SHA-256, lower-case hex (empty without a file).
    pub sha256: String,
    /// Every file merged into it, sorted (deleted once `sources_deleted_at` is set).
    pub sources: Vec<String>,
    /// Rows its merges dropped because their `trade_key` was met before.
    pub duplicates_dropped: u64,
    /// When the compacted file and this entry were last written.
    pub committed_at: Ts,
    /// When the sources were deleted; `None` while they wait for `delete_after`.
    pub sources_deleted_at: Option<Ts>,
}

/// What a run did and what it left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactReport {
    /// Partitions with files that were looked at.
    pub partitions: u32,
    /// Compacted files written (an hour compacted, or its late files merged in).
    pub hours_compacted: u32,
    /// Files merged into them (not counting a compacted file merged again).
    pub files_merged: u64,
    /// Rows of the compacted files written.
    pub rows: u64,
    /// Rows dropped because their `trade_key` was met before.
    pub duplicates_dropped: u64,
    /// Sources deleted.
    pub sources_deleted: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Closed hours still within the settle time (compacted by a later run).
    pub hours_settling: u32,
    /// Hours past their settle time left uncompacted: the run stopped, or they failed.
    pub hours_behind: u32,
    /// The oldest of them: `<partition><hour>`.
    pub oldest_behind: Option<String>,
    /// Seconds since the end of the oldest hour past its settle time left uncompacted (0 when
    /// none): what the "compaction behind" alarm watches.
    pub lag_s: u64,
    /// The run reached [`CompactOptions::stop_at`] with hours left.
    pub stopped_early: bool,
    /// What failed, one line each (the rest of the run went on).
    pub errors: Vec<String>,
}

/// Compacts every partition of [`COMPACTED_TABLES`] within the lookback at `now`. Never fails
/// as a whole: a partition or hour that fails is reported in [`CompactReport::errors`] and
/// left as it was (still read correctly), the others go on.
pub async fn compact<S: ObjectDeleter>(store: &S, now: Ts, opts: &CompactOptions) -> CompactReport {
    let mut run = Run {
        store,
        now,
        opts,
        report: CompactReport::default(),
        oldest_end: None,
        started: std::time::Instant::now(),
    };
    for table in COMPACTED_TABLES {
        for partition in partitions(table, now, opts.lookback_days) {
            if let Err(e) = run.partition(table, &partition).await {
                run.report.errors.push(format!("{partition}: {e}"));
            }
        }
    }
    run.report.lag_s = run
        .oldest_end
        .map_or(0, |end| (now - end).num_seconds().max(0) as u64);
    run.report
}

/// The partitions of `table` a run looks at, oldest first: today and the days before it
/// ([`TICK_LOOKBACK_DAYS`] for tick and paper tables, `lookback_days` for the live feed's),
/// each tier of a per-tier table.
pub fn partitions(table: &str, now: Ts, lookback_days: u32) -> Vec<String> {
    let (tiers, days): (Vec<Option<Tier>>, u32) = match table {
        keys::SNAPSHOTS => (Tier::ALL.map(Some).to_vec(), TICK_LOOKBACK_DAYS),
        keys::ORDERBOOKS => (
            Tier::ALL
                .into_iter()
                .filter(|t| t.spec().order_book)
                .map(Some)
                .collect(),
            TICK_LOOKBACK_DAYS,
        ),
        keys::SIGNALS | keys::FILLS | keys::POSITIONS => (vec![None], TICK_LOOKBACK_DAYS),
        _ => (vec![None], lookback_days),
    };
    let today = now.date_naive();
    let mut out = Vec::new();
    for back in (0..=i64::from(days)).rev() {
        let day = today - TimeDelta::days(back);
        for tier in &tiers {
            out.push(keys::partition(table, *tier, day));
        }
    }
    out
}

/// The objects of `keys`, in order, [`CompactOptions::fetch_concurrency`] read at once.
fn fetch<'a, S: ObjectDeleter>(
    store: &'a S,
    keys: Vec<String>,
    opts: &CompactOptions,
) -> impl futures_util::Stream<Item = (String, Result<Option<Vec<u8>>>)> + Send + 'a {
    stream::iter(keys)
        .map(move |k| async move {
            let got = store.get_object(&k).await;
            (k, got)
        })
        .buffered(opts.fetch_concurrency.max(1))
}

/// The start of an hour label.
fn hour_start(hour: &str) -> Option<Ts> {
    NaiveDateTime::parse_from_str(&format!("{hour}0000"), "%Y%m%dT%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

fn duration(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// One hour of a partition as listed.
#[derive(Debug, Default)]
struct HourFiles {
    compacted: bool,
    /// Every other file of the hour, oldest first (readers' order).
    files: Vec<String>,
}

struct Run<'a, S> {
    store: &'a S,
    now: Ts,
    opts: &'a CompactOptions,
    report: CompactReport,
    /// The end of the oldest hour left behind.
    oldest_end: Option<Ts>,
    started: std::time::Instant,
}

impl<S: ObjectDeleter> Run<'_, S> {
    /// Whether [`CompactOptions::stop_at`] has come: `now` plus the time this run has taken.
    fn stopped(&self) -> bool {
        let elapsed = duration(self.started.elapsed());
        self.opts.stop_at.is_some_and(|t| self.now + elapsed >= t)
    }

    fn behind(&mut self, partition: &str, hour: &str, end: Ts) {
        self.report.hours_behind += 1;
        if self.oldest_end.is_none_or(|o| end < o) {
            self.oldest_end = Some(end);
            self.report.oldest_behind = Some(format!("{partition}{hour}"));
        }
    }

    /// Compacts the due hours of one partition, then deletes the sources whose time has come.
    async fn partition(&mut self, table: &str, partition: &str) -> Result<()> {
        let mut listed = self.store.list_objects(partition).await?;
        // Only this directory: `snapshots/tier=1/` must not take in `tier=10/` (none exist,
        // but a prefix is a prefix).
        listed.retain(|k| keys::partition_of(k) == partition);
        if listed.is_empty() {
            return Ok(());
        }
        self.report.partitions += 1;
        let manifest_key = keys::manifest(partition);
        let mut manifest = if listed.contains(&manifest_key) {
            self.load_manifest(&manifest_key).await?
        } else {
            Manifest {
                version: 1,
                table: table.to_string(),
                partition: partition.to_string(),
                hours: BTreeMap::new(),
            }
        };
        let mut hours: BTreeMap<String, HourFiles> = BTreeMap::new();
        for key in &listed {
            let name = &key[partition.len()..];
            let Some(hour) = keys::hour_of(key).filter(|_| !name.starts_with(['_', '.'])) else {
                continue;
            };
            let h = hours.entry(hour.to_string()).or_default();
            if keys::is_compacted(key) {
                h.compacted = true;
            } else {
                h.files.push(key.clone());
            }
        }
        // Oldest first as readers order them, so the compacted file holds an hour's rows in
        // the order a reader paging newest first met them before (a cursor of
        // `/api/tables` goes on across the compaction).
        for h in hours.values_mut() {
            h.files.sort_by(|a, b| crate::read::newest_first(b, a));
        }

        let mut wrote = false;
        let mut redelete: Vec<String> = Vec::new();
        for (hour, files) in &hours {
            let Some(start) = hour_start(hour) else {
                continue;
            };
            let end = start + TimeDelta::hours(1);
            if self.now < end {
                continue; // still open
            }
            if self.now < end + duration(self.opts.settle) {
                self.report.hours_settling += 1;
                continue;
            }
            // An entry whose compacted file is gone describes nothing: the hour starts afresh
            // from the files there are. (An entry without a file — a merge that kept no row —
            // stays: its sources are duplicates, deleted below.)
            if manifest.hours.get(hour).is_some_and(|e| e.file.is_some()) && !files.compacted {
                manifest.hours.remove(hour);
            }
            let entry = manifest.hours.get(hour).cloned();
            let named: HashSet<&str> = entry
                .iter()
                .flat_map(|e| e.sources.iter().map(String::as_str))
                .collect();
            // Sources back after their deletion were merged already: they go again.
            if entry
                .as_ref()
                .is_some_and(|e| e.sources_deleted_at.is_some())
            {
                redelete.extend(
                    files
                        .files
                        .iter()
                        .filter(|k| named.contains(k.as_str()))
                        .cloned(),
                );
            }
            let unnamed: Vec<String> = files
                .files
                .iter()
                .filter(|k| !named.contains(k.as_str()))
                .cloned()
                .collect();
            // A compacted file no entry names: a run stopped between steps 2 and 3.
            if unnamed.is_empty() && (entry.is_some() || !files.compacted) {
                continue;
            }
            if self.stopped() {
                self.report.stopped_early = true;
                self.behind(partition, hour, end);
                continue;
            }
            // The sources of an hour whose merge kept no row stay named in its next entry.
            let carried: Vec<String> = entry
                .iter()
                .filter(|e| e.file.is_none())
                .flat_map(|e| e.sources.iter().cloned())
                .collect();
            match self
                .compact_hour(table, partition, hour, files.compacted, &unnamed, &carried)
                .await
            {
                Ok(e) => {
                    manifest.hours.insert(hour.clone(), e);
                    wrote = true;
                }
                Err(e) => {
                    self.report
                        .errors
                        .push(format!("{partition}{hour}: {e} (left as it was)"));
                    self.behind(partition, hour, end);
                }
            }
        }
        if wrote {
            self.put_manifest(&manifest_key, &manifest).await?;
        }

        // Deletion: the sources of every hour whose manifest entry is stored and old enough —
        // at once when the hour kept no row. Then the sources hold only trade keys stored in
        // what a reader reads of the hours around (DEDUP_HOURS_BACK before, compacted files
        // DEDUP_HOURS_AHEAD after), and that copy stays read: a merge drops a row only for a
        // copy a reader reads elsewhere, and a file of this hour (no compacted file: its
        // sources are read) is never that copy for the hours before. Waiting would let a
        // reader that decides from rows (DuckDB's and Athena's views: an hour without a row in
        // a compacted file reads its sources) count them twice; a query that listed a source
        // just before may fail on it instead (a retry reads right).
        let present: HashSet<&String> = listed.iter().collect();
        let mut doomed = redelete;
        let mut deleted_hours = Vec::new();
        for (hour, e) in &manifest.hours {
            if e.sources_deleted_at.is_none()
                && (e.rows == 0 || self.now >= e.committed_at + duration(self.opts.delete_after))
            {
                doomed.extend(e.sources.iter().filter(|k| present.contains(k)).cloned());
                deleted_hours.push(hour.clone());
            }
        }
        if doomed.is_empty() && deleted_hours.is_empty() {
            return Ok(());
        }
        doomed.sort();
        doomed.dedup();
        self.store.delete_objects(&doomed).await?;
        self.report.sources_deleted += doomed.len() as u64;
        if !deleted_hours.is_empty() {
            for hour in deleted_hours {
                if let Some(e) = manifest.hours.get_mut(&hour) {
                    e.sources_deleted_at = Some(self.now);
                }
            }
            self.put_manifest(&manifest_key, &manifest).await?;
        }
        Ok(())
    }

    async fn load_manifest(&self, key: &str) -> Result<Manifest> {
        let bytes = self
            .store
            .get_object(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{key} was listed, then gone")))?;
        // A manifest that cannot be read is an error, never an empty one: an empty one would
        // let the sources still there be merged without the rows already deleted.
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Encode(format!("{key}: {e}")))
    }

    async fn put_manifest(&mut self, key: &str, manifest: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(manifest)?;
        self.report.bytes_written += bytes.len() as u64;
        self.store
            .put_object(key, bytes, MANIFEST_CONTENT_TYPE)
            .await
    }

    /// Steps 1 and 2 for one hour: merges the files of `unnamed` the compacted file (when
    /// there is one) does not hold yet, after its rows, and puts the result; returns the hour's
    /// new manifest entry. When the compacted file holds them all already (a run stopped
    /// before its manifest), nothing is written and the entry is read from its footer.
    ///
    /// A merge that keeps no row writes no file (an entry with `file: None`): its sources are
    /// deleted at once. `carried` are the sources of such an earlier entry of the hour, named
    /// again in the new one.
    async fn compact_hour(
        &mut self,
        table: &str,
        partition: &str,
        hour: &str,
        has_compacted: bool,
        unnamed: &[String],
        carried: &[String],
    ) -> Result<HourEntry> {
        let file = keys::compacted(partition, hour);
        let name = |k: &str| k[partition.len()..].to_string();
        let old = if has_compacted {
            let bytes = self
                .store
                .get_object(&file)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("{file} was listed, then gone")))?;
            self.report.bytes_read += bytes.len() as u64;
            let stored = merge::stored(&file, &bytes)?;
            Some((bytes, stored))
        } else {
            None
        };
        let held: HashSet<String> = old
            .iter()
            .flat_map(|(_, s)| s.provenance.sources.iter().cloned())
            .collect();
        let new: Vec<&String> = unnamed
            .iter()
            .filter(|k| !held.contains(&name(k)))
            .collect();
        let now = self.now;
        let entry_from = |bytes: Option<&[u8]>, rows: u64, p: &Provenance| HourEntry {
            file: bytes.map(|_| file.clone()),
            rows,
            bytes: bytes.map_or(0, |b| b.len() as u64),
            sha256: bytes.map(sha256_hex).unwrap_or_default(),
            sources: p
                .sources
                .iter()
                .map(|n| format!("{partition}{n}"))
                .collect(),
            duplicates_dropped: p.duplicates_dropped,
            committed_at: now,
            sources_deleted_at: None,
        };
        if new.is_empty() {
            if let Some((bytes, stored)) = &old {
                return Ok(entry_from(Some(bytes), stored.rows, &stored.provenance));
            }
        }

        let seen = if dedups_trade_keys(table) {
            self.keys_before(table, hour).await?
        } else {
            HashSet::new()
        };
        let mut merger = merge::Merger::new(table, seen)?;
        if let Some((bytes, _)) = &old {
            merger.add(&file, bytes)?;
        }
        // The new files' rows also go when a following hour's compacted file holds their key
        // (a late file of this hour): the stored row stays. The compacted file's own rows were
        // stored first, so they are kept.
        if dedups_trade_keys(table) {
            let after = self.keys_after(table, hour).await?;
            merger.also_seen(after);
        }
        let mut fetched = fetch(
            self.store,
            new.iter().map(|k| (*k).clone()).collect(),
            self.opts,
        );
        while let Some((key, bytes)) = fetched.next().await {
            let bytes = bytes?.ok_or_else(|| {
                StoreError::NotFound(format!("{key} was listed, then gone: merged nothing"))
            })?;
            self.report.bytes_read += bytes.len() as u64;
            merger.add(&key, &bytes)?;
        }
        drop(fetched);
        let mut sources: Vec<String> = held
            .into_iter()
            .chain(new.iter().map(|k| name(k)))
            .chain(carried.iter().map(|k| name(k)))
            .collect();
        sources.sort();
        sources.dedup();
        let provenance = Provenance {
            hour: hour.to_string(),
            sources,
            duplicates_dropped: old
                .as_ref()
                .map_or(0, |(_, s)| s.provenance.duplicates_dropped)
                + merger.duplicates_dropped(),
        };
        let this_merge_dropped = merger.duplicates_dropped();
        let merged = merger.finish(&provenance)?;
        if merged.rows == 0 && old.is_none() {
            // Nothing to read: no file (see HourEntry::file); the sources go at once.
            self.report.hours_compacted += 1;
            self.report.files_merged += new.len() as u64;
            self.report.duplicates_dropped += this_merge_dropped;
            return Ok(entry_from(None, 0, &provenance));
        }
        let e = entry_from(Some(&merged.bytes), merged.rows, &provenance);
        self.store
            .put_object(&file, merged.bytes, crate::parquet::CONTENT_TYPE)
            .await?;
        self.report.hours_compacted += 1;
        self.report.files_merged += new.len() as u64;
        self.report.rows += merged.rows;
        self.report.duplicates_dropped += this_merge_dropped;
        self.report.bytes_written += e.bytes;
        Ok(e)
    }

    /// The trade keys of the [`DEDUP_HOURS_BACK`] hours before `hour` of `table`, from the
    /// files a reader reads for them (their compacted files, or their sources if not yet).
    async fn keys_before(&mut self, table: &str, hour: &str) -> Result<HashSet<String>> {
        self.keys_around(table, hour, -DEDUP_HOURS_BACK..=-1, false)
            .await
    }

    /// The trade keys of the compacted files of the [`DEDUP_HOURS_AHEAD`] hours after `hour`.
    /// Only compacted files: a following hour not compacted yet drops the key itself when it
    /// is (its merge reads this hour), so the earliest hour keeps it.
    async fn keys_after(&mut self, table: &str, hour: &str) -> Result<HashSet<String>> {
        self.keys_around(table, hour, 1..=DEDUP_HOURS_AHEAD, true)
            .await
    }

    /// The trade keys of the hours `offsets` from `hour`, from what a reader reads of them
    /// (`compacted_only`: their compacted files alone).
    async fn keys_around(
        &mut self,
        table: &str,
        hour: &str,
        offsets: std::ops::RangeInclusive<i64>,
        compacted_only: bool,
    ) -> Result<HashSet<String>> {
        let mut seen = HashSet::new();
        let Some(start) = hour_start(hour) else {
            return Ok(seen);
        };
        for offset in offsets {
            let t = start + TimeDelta::hours(offset);
            let label = keys::hour_label(t);
            let partition = keys::partition(table, None, t.date_naive());
            let listed = self
                .store
                .list_objects(&format!("{partition}{label}"))
                .await?;
            let read: Vec<String> = keys::visible(&listed)
                .into_iter()
                .filter(|k| !compacted_only || keys::is_compacted(k))
                .cloned()
                .collect();
            let mut fetched = fetch(self.store, read, self.opts);
            while let Some((key, bytes)) = fetched.next().await {
                // Gone since the listing: its rows are in the compacted file now, which is
                // read instead next time; a duplicate it would have caught stays for now.
                let Some(bytes) = bytes? else { continue };
                self.report.bytes_read += bytes.len() as u64;
                merge::trade_keys(&key, &bytes, &mut seen)?;
            }
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        s.parse().unwrap()
    }

    #[test]
    fn given_a_time_then_the_partitions_looked_at_are_today_and_the_lookback() {
        let now = at("2026-11-20T01:30:00Z");
        assert_eq!(
            partitions(keys::TRADES, now, 2),
            [
                "trades/dt=2026-11-18/",
                "trades/dt=2026-11-19/",
                "trades/dt=2026-11-20/"
            ]
        );
        let ob = partitions(keys::ORDERBOOKS, now, 5);
        assert_eq!(
            ob,
            [
                "orderbooks/tier=2/dt=2026-11-19/",
                "orderbooks/tier=3/dt=2026-11-19/",
                "orderbooks/tier=4/dt=2026-11-19/",
                "orderbooks/tier=2/dt=2026-11-20/",
                "orderbooks/tier=3/dt=2026-11-20/",
                "orderbooks/tier=4/dt=2026-11-20/",
            ],
            "tick tables: today and yesterday, the book tiers only"
        );
        assert_eq!(partitions(keys::SNAPSHOTS, now, 5).len(), 10);
        assert_eq!(
            partitions(keys::POSITIONS, now, 5),
            ["positions/dt=2026-11-19/", "positions/dt=2026-11-20/"],
            "paper tables: today and yesterday, like the ticks they follow"
        );
    }

    #[test]
    fn given_an_hour_label_then_its_start_is_that_utc_hour() {
        assert_eq!(hour_start("20261120T22"), Some(at("2026-11-20T22:00:00Z")));
        assert_eq!(hour_start("20261120T24"), None);
    }

    #[test]
    fn given_a_manifest_then_it_reads_back_as_written() {
        let mut m = Manifest {
            version: 1,
            table: "trades".into(),
            partition: "trades/dt=2026-11-20/".into(),
            hours: BTreeMap::new(),
        };
        m.hours.insert(
            "20261120T22".into(),
            HourEntry {
                file: Some("trades/dt=2026-11-20/20261120T22.compacted.parquet".into()),
                rows: 3,
                bytes: 1234,
                sha256: "ab".repeat(32),
                sources: vec!["trades/dt=2026-11-20/20261120T22-1-0-1.parquet".into()],
                duplicates_dropped: 1,
                committed_at: at("2026-11-20T23:25:00Z"),
                sources_deleted_at: None,
            },
        );
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"sources_deleted_at\":null"), "{json}");
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
    }
}
