//! Reading the Parquet tables back, for the status API, the same way on S3 and in a data
//! directory, with bounded work per call:
//!
//! * [`TickReader`]: the rows one tick wrote to a per-tick table — its own file, or once the
//!   hour is compacted, the hour's compacted file cut to the tick — with the files of a call
//!   kept, so the ticks of one compacted hour cost one read.
//! * [`newest_files`]: the files of a table newest first, one hour (or day) partition at a
//!   time, by the reading rule ([`keys::visible`]), so a reader never counts a row twice and
//!   never lists more than the partitions it needs.
//!
//! Rows come back as [`RecordBatch`]es; [`crate::parquet::json`] turns them into JSON.

use crate::error::Result;
use crate::keys;
use crate::parquet::read_batches;
use crate::ports::{ObjectInfo, ObjectStore};
use arrow_array::{Array, BooleanArray, RecordBatch, StringArray, TimestampMillisecondArray};
use polytape_core::{TickId, Tier, Ts};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Reads the rows ticks wrote, keeping every file it read for the rest of the call.
pub struct TickReader<'s, S> {
    store: &'s S,
    table: &'static str,
    /// Object key → its batches (`None`: no such object).
    files: HashMap<String, Option<Vec<RecordBatch>>>,
    /// Objects read so far (each once).
    pub reads: usize,
}

impl<'s, S: ObjectStore> TickReader<'s, S> {
    /// A reader of `table` ([`keys::SNAPSHOTS`] or [`keys::ORDERBOOKS`]).
    pub fn new(store: &'s S, table: &'static str) -> Self {
        TickReader {
            store,
            table,
            files: HashMap::new(),
            reads: 0,
        }
    }

    /// The rows `tick` wrote, `None` when it wrote no file (it never ran, failed before its
    /// write, or was skipped). Once its hour is compacted, the hour's file cut to the tick.
    pub async fn rows(&mut self, tick: TickId) -> Result<Option<Vec<RecordBatch>>> {
        let key = match self.table {
            keys::ORDERBOOKS => keys::orderbooks(&tick),
            _ => keys::snapshots(&tick),
        };
        if let Some(batches) = self.file(&key).await? {
            return Ok(Some(batches));
        }
        let partition = keys::partition_of(&key).to_string();
        let compacted = keys::compacted(&partition, &keys::hour_label(tick.tick_ts));
        let Some(hour) = self.file(&compacted).await? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for batch in hour {
            let cut = only_tick(&batch, tick.tick_ts)?;
            if cut.num_rows() > 0 {
                out.push(cut);
            }
        }
        // A compacted hour without any row of the tick: the tick wrote an empty file (every
        // tick of a tier with markets writes one) or none; either way, no rows.
        Ok(Some(out))
    }

    /// The `condition_id`s of the rows `tick` wrote (`None`: no file).
    pub async fn condition_ids(&mut self, tick: TickId) -> Result<Option<Vec<String>>> {
        let Some(batches) = self.rows(tick).await? else {
            return Ok(None);
        };
        Ok(Some(strings(&batches, "condition_id")))
    }

    async fn file(&mut self, key: &str) -> Result<Option<Vec<RecordBatch>>> {
        if let Some(f) = self.files.get(key) {
            return Ok(f.clone());
        }
        self.reads += 1;
        let batches = match self.store.get_object(key).await? {
            Some(bytes) => Some(read_batches(&bytes)?),
            None => None,
        };
        self.files.insert(key.to_string(), batches.clone());
        Ok(batches)
    }
}

/// The values of the string column `name` over `batches` (NULLs left out).
pub fn strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        if let Some(c) = b
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        {
            out.extend(c.iter().flatten().map(str::to_string));
        }
    }
    out
}

/// The rows of `batch` whose `snapshot_ts` is `tick_ts`.
fn only_tick(batch: &RecordBatch, tick_ts: Ts) -> Result<RecordBatch> {
    let Some(ts) = batch
        .column_by_name("snapshot_ts")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
    else {
        return Ok(batch.slice(0, 0));
    };
    let want = tick_ts.timestamp_millis();
    let keep: BooleanArray = ts.iter().map(|v| Some(v == Some(want))).collect();
    Ok(arrow_select::filter::filter_record_batch(batch, &keep)?)
}

/// One partition of a table to list: `snapshots/tier=2/dt=2026-11-20/20261120T22` (an hour of
/// a table whose file names start with their hour) or `markets/dt=2026-11-20/` (a day).
fn partition_prefixes(table: &str, hour: Ts) -> Vec<String> {
    let day = hour.date_naive();
    let hourly = keys::COMPACTED_TABLES.contains(&table);
    let tiers: Vec<Option<Tier>> = match table {
        keys::SNAPSHOTS | keys::ORDERBOOKS => Tier::ALL.iter().copied().map(Some).collect(),
        _ => vec![None],
    };
    tiers
        .into_iter()
        .map(|t| {
            let p = keys::partition(table, t, day);
            if hourly {
                format!("{p}{}", keys::hour_label(hour))
            } else {
                p
            }
        })
        .collect()
}

/// Whether a table's files are listed an hour at a time (their names start with the hour) or
/// a day at a time.
pub fn is_hourly(table: &str) -> bool {
    keys::COMPACTED_TABLES.contains(&table)
}

/// The step between two partitions of `table` when walking back in time.
pub fn step(table: &str) -> chrono::Duration {
    if is_hourly(table) {
        chrono::Duration::hours(1)
    } else {
        chrono::Duration::days(1)
    }
}

/// The start of the partition of `table` that holds `t` (its hour, or its UTC day).
pub fn partition_start(table: &str, t: Ts) -> Ts {
    let secs = step(table).num_seconds();
    let start = t.timestamp().div_euclid(secs) * secs;
    chrono::DateTime::from_timestamp(start, 0).unwrap_or(t)
}

/// The visible files ([`keys::visible`]) of the partition of `table` that starts at `start`
/// (see [`partition_start`]), newest first, with their sizes: one listing per tier partition.
pub async fn partition_files<S: ObjectStore>(
    store: &S,
    table: &str,
    start: Ts,
) -> Result<Vec<ObjectInfo>> {
    let mut listed = Vec::new();
    for prefix in partition_prefixes(table, start) {
        listed.extend(store.list_objects_sized(&prefix).await?);
    }
    Ok(visible_newest_first(&listed))
}

/// The visible files ([`keys::visible`]) of a listing, newest first.
pub fn visible_newest_first(listed: &[ObjectInfo]) -> Vec<ObjectInfo> {
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    let visible: std::collections::HashSet<&str> =
        keys::visible(&keys).into_iter().copied().collect();
    let mut files: Vec<ObjectInfo> = listed
        .iter()
        .filter(|o| visible.contains(o.key.as_str()))
        .cloned()
        .collect();
    files.sort_by(|a, b| newest_first(&a.key, &b.key));
    files
}

/// Up to `max_files` visible files of `table`, newest first, from the partition holding `from`
/// back at most `partitions` partitions (hours or days).
pub async fn newest_files<S: ObjectStore>(
    store: &S,
    table: &str,
    from: Ts,
    partitions: u32,
    max_files: usize,
) -> Result<Vec<ObjectInfo>> {
    let mut out = Vec::new();
    let mut start = partition_start(table, from);
    for _ in 0..partitions {
        out.extend(partition_files(store, table, start).await?);
        if out.len() >= max_files {
            break;
        }
        start -= step(table);
    }
    out.truncate(max_files);
    Ok(out)
}

/// Orders two keys newest first: by their partition's day (`dt=`), then by the time their file
/// names start with (`20261120T223015Z` a tick, `20261120T22` an hour: a compacted file or a
/// feed file, taken at the hour's start), then by the rest of the names compared as text with
/// the digit runs as numbers (`…-41872` after `…-9`: runs and sequences in order), across tier
/// partitions alike.
pub fn newest_first(a: &str, b: &str) -> Ordering {
    let day = |k: &str| {
        k.split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .unwrap_or("")
            .to_string()
    };
    let name = |k: &str| k.rsplit('/').next().unwrap_or(k).to_string();
    let (na, nb) = (name(a), name(b));
    let ((ta, ra), (tb, rb)) = (name_time(&na), name_time(&nb));
    day(b)
        .cmp(&day(a))
        .then_with(|| tb.cmp(&ta))
        .then_with(|| natural(rb, ra))
        .then_with(|| b.cmp(a))
}

/// The time a file name starts with as 14 digits (`YYYYMMDDhhmmss`, an hour's missing minutes
/// and seconds as zeros) and the rest of the name; no time (`markets.parquet`): empty.
fn name_time(name: &str) -> (String, &str) {
    let b = name.as_bytes();
    if b.len() >= 11 && b[..8].iter().all(u8::is_ascii_digit) && b[8] == b'T' {
        let n = b[9..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
            .min(6);
        let mut t = format!("{}{}", &name[..8], &name[9..9 + n]);
        while t.len() < 14 {
            t.push('0');
        }
        return (t, &name[9 + n..]);
    }
    (String::new(), name)
}

/// Text order with runs of digits compared as numbers.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (n, m) = (run(x), run(y));
                let (p, q) = (trim_zeros(&x[..n]), trim_zeros(&y[..m]));
                let o = p.len().cmp(&q.len()).then_with(|| p.cmp(q));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let i = s.iter().take_while(|c| **c == b'0').count();
    &s[i..]
}

/// The rows of the Parquet file at `key` (`None`: no such object).
pub async fn file_batches<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<Option<Vec<RecordBatch>>> {
    match store.get_object(key).await? {
        Some(bytes) => Ok(Some(read_batches(&bytes)?)),
        None => Ok(None),
    }
}

/// Bytes read from the end of a file for its footer at first: a polytape file's footer is a
/// few kilobytes; a larger one takes a second read of exactly its length.
pub const FOOTER_GUESS: u64 = 64 * 1024;

/// The footer of the Parquet file at `key` and the file's size (`None`: no such object): one
/// ranged read of the file's end (two when the footer is over [`FOOTER_GUESS`]), never the
/// whole file.
pub async fn footer<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<Option<(u64, ::parquet::file::metadata::ParquetMetaData)>> {
    use crate::parquet::json::{footer_from_tail, footer_len};
    let Some(mut tail) = store.get_tail(key, FOOTER_GUESS).await? else {
        return Ok(None);
    };
    let need = footer_len(&tail.bytes)?;
    if need > tail.bytes.len() as u64 && need <= tail.size {
        match store.get_tail(key, need).await? {
            Some(t) => tail = t,
            None => return Ok(None),
        }
    }
    Ok(Some((tail.size, footer_from_tail(tail.size, &tail.bytes)?)))
}

/// The number of rows of the Parquet file at `key` from its footer (0 when it is gone):
/// [`footer`]'s reads, never the whole file.
pub async fn file_rows<S: ObjectStore>(store: &S, key: &str) -> Result<u64> {
    Ok(match footer(store, key).await? {
        Some((_, meta)) => u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0),
        None => 0,
    })
}

/// Some rows of one file, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePage {
    /// The rows asked for, newest (last written) first.
    pub rows: Vec<crate::parquet::json::JsonRow>,
    /// The file's rows in all.
    pub total: u64,
}

/// The rows of the Parquet file at `key` counted newest (last written) first, from `skip`, at
/// most `take` of them, as JSON (`None`: no such object). Reads the footer, then only the
/// byte ranges of the row groups that hold those rows (one ranged read per request of the
/// decoder), and converts only the rows returned.
pub async fn file_page<S: ObjectStore>(
    store: &S,
    key: &str,
    skip: u64,
    take: usize,
) -> Result<Option<FilePage>> {
    use ::parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
    use ::parquet::DecodeResult;
    let Some((_, meta)) = footer(store, key).await? else {
        return Ok(None);
    };
    let total = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
    // Rows [lo, hi) in file order are the newest-first rows [skip, skip + take).
    let hi = total.saturating_sub(skip);
    let lo = hi.saturating_sub(take as u64);
    if lo >= hi {
        return Ok(Some(FilePage {
            rows: Vec::new(),
            total,
        }));
    }
    let mut groups = Vec::new();
    let mut first_row = None;
    let mut start = 0u64;
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let end = start + u64::try_from(rg.num_rows()).unwrap_or(0);
        if start < hi && end > lo {
            groups.push(i);
            first_row.get_or_insert(start);
        }
        start = end;
    }
    let first_row = first_row.unwrap_or(0);
    let mut decoder = ParquetPushDecoderBuilder::try_new_decoder(std::sync::Arc::new(meta))?
        .with_row_groups(groups)
        .build()?;
    let mut batches = Vec::new();
    loop {
        match decoder.try_decode()? {
            DecodeResult::Data(b) => batches.push(b),
            DecodeResult::Finished => break,
            DecodeResult::NeedsData(ranges) => {
                // One read covering what the decoder asks for (the columns of a row group
                // lie side by side).
                let from = ranges.iter().map(|r| r.start).min().unwrap_or(0);
                let to = ranges.iter().map(|r| r.end).max().unwrap_or(from);
                let Some(bytes) = store.get_range(key, from..to).await? else {
                    return Ok(None);
                };
                if (bytes.len() as u64) < to - from {
                    return Err(crate::StoreError::Encode(format!(
                        "parquet: {key} ends before byte {to}"
                    )));
                }
                decoder.push_range(from..to, bytes.into())?;
            }
        }
    }
    // Rows of the decoded groups from `first_row`: keep [lo, hi), newest first.
    let mut rows = Vec::with_capacity(take);
    let mut at = first_row;
    for b in &batches {
        let n = b.num_rows() as u64;
        let (from, to) = (lo.max(at), hi.min(at + n));
        if from < to {
            let slice = b.slice((from - at) as usize, (to - from) as usize);
            rows.extend(crate::parquet::json::batch_rows(&slice)?);
        }
        at += n;
    }
    rows.reverse();
    Ok(Some(FilePage { rows, total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object store that holds one object and answers only ranged reads of its end: a
    /// whole-object read fails the test.
    struct TailOnly {
        bytes: Vec<u8>,
        tail_reads: std::sync::Mutex<Vec<u64>>,
        /// Bytes read by ranged reads.
        range_bytes: std::sync::Mutex<u64>,
    }

    impl ObjectStore for TailOnly {
        async fn put_object(&self, _: &str, _: Vec<u8>, _: &str) -> Result<()> {
            unreachable!("read only")
        }
        async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
            panic!("the whole of {key} was read")
        }
        async fn list_objects(&self, _: &str) -> Result<Vec<String>> {
            Ok(vec!["f.parquet".into()])
        }
        async fn get_range(&self, key: &str, r: std::ops::Range<u64>) -> Result<Option<Vec<u8>>> {
            if key != "f.parquet" {
                return Ok(None);
            }
            *self.range_bytes.lock().expect("lock") += r.end - r.start;
            Ok(Some(self.bytes[r.start as usize..r.end as usize].to_vec()))
        }
        async fn get_tail(&self, key: &str, len: u64) -> Result<Option<crate::ObjectTail>> {
            if key != "f.parquet" {
                return Ok(None);
            }
            self.tail_reads.lock().expect("lock").push(len);
            let size = self.bytes.len() as u64;
            let keep = len.min(size) as usize;
            Ok(Some(crate::ObjectTail {
                bytes: self.bytes[self.bytes.len() - keep..].to_vec(),
                size,
            }))
        }
    }

    #[tokio::test]
    async fn given_a_file_larger_than_its_footer_then_its_rows_are_counted_from_its_end_alone() {
        // 200,000 rows of a 64-bit column: a file of ~1.6 MB whose footer is a few hundred bytes.
        let schema =
            std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                "n",
                arrow_schema::DataType::Int64,
                false,
            )]));
        let values = arrow_array::Int64Array::from_iter_values(0..200_000);
        let batch = RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(values)])
            .expect("a batch");
        let mut bytes = Vec::new();
        // Row groups of 10,000 rows.
        let props = ::parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(10_000))
            .build();
        let mut w =
            ::parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, Some(props)).expect("w");
        w.write(&batch).expect("write");
        w.close().expect("close");
        assert!(bytes.len() as u64 > 10 * FOOTER_GUESS, "{}", bytes.len());
        let whole = bytes.len() as u64;
        let store = TailOnly {
            bytes,
            tail_reads: Default::default(),
            range_bytes: Default::default(),
        };
        assert_eq!(file_rows(&store, "f.parquet").await.expect("rows"), 200_000);
        assert_eq!(*store.tail_reads.lock().expect("lock"), vec![FOOTER_GUESS]);
        assert_eq!(file_rows(&store, "gone.parquet").await.expect("rows"), 0);

        // Three rows from the 6th newest: the newest row group's alone is read and decoded.
        let page = file_page(&store, "f.parquet", 5, 3)
            .await
            .expect("page")
            .expect("a file");
        let n: Vec<i64> = page.rows.iter().filter_map(|r| r["n"].as_i64()).collect();
        assert_eq!((n, page.total), (vec![199_994, 199_993, 199_992], 200_000));
        let read = *store.range_bytes.lock().expect("lock");
        assert!(
            read > 0 && read * 10 <= whole,
            "{read} of {whole} bytes read"
        );
        // Across two row groups.
        let page = file_page(&store, "f.parquet", 9_998, 4)
            .await
            .expect("page")
            .expect("a file");
        let n: Vec<i64> = page.rows.iter().filter_map(|r| r["n"].as_i64()).collect();
        assert_eq!(n, vec![190_001, 190_000, 189_999, 189_998]);
        let past = file_page(&store, "f.parquet", 200_000, 4)
            .await
            .expect("page");
        assert_eq!(past.map(|p| p.rows.len()), Some(0));
    }

    #[test]
    fn given_keys_of_every_table_then_newest_first_orders_them_by_time() {
        let mut keys = vec![
            "trades/dt=2026-11-20/20261120T22-1795213800000-0-9.parquet",
            "trades/dt=2026-11-20/20261120T22-1795213800000-0-41872.parquet",
            "trades/dt=2026-11-20/20261120T21.compacted.parquet",
            "trades/dt=2026-11-19/20261119T23-1795213800000-0-1.parquet",
            "snapshots/tier=4/dt=2026-11-20/20261120T223015Z.parquet",
        ];
        keys.sort_by(|a, b| newest_first(a, b));
        assert_eq!(
            keys,
            vec![
                "snapshots/tier=4/dt=2026-11-20/20261120T223015Z.parquet",
                "trades/dt=2026-11-20/20261120T22-1795213800000-0-41872.parquet",
                "trades/dt=2026-11-20/20261120T22-1795213800000-0-9.parquet",
                "trades/dt=2026-11-20/20261120T21.compacted.parquet",
                "trades/dt=2026-11-19/20261119T23-1795213800000-0-1.parquet",
            ]
        );
        let t4: Vec<&str> = vec![
            "snapshots/tier=4/dt=2026-11-20/20261120T223000Z.parquet",
            "snapshots/tier=2/dt=2026-11-20/20261120T223100Z.parquet",
        ];
        let mut sorted = t4.clone();
        sorted.sort_by(|a, b| newest_first(a, b));
        assert_eq!(sorted, vec![t4[1], t4[0]], "across tiers by tick time");
        // A compacted hour sorts at its hour's start: after that hour's ticks, before the
        // previous hour's (not after every tick file of the day because "22" < "215945").
        let mut mixed = vec![
            "snapshots/tier=4/dt=2026-11-20/20261120T215945Z.parquet",
            "snapshots/tier=2/dt=2026-11-20/20261120T22.compacted.parquet",
            "snapshots/tier=4/dt=2026-11-20/20261120T223015Z.parquet",
            "snapshots/tier=3/dt=2026-11-20/20261120T21.compacted.parquet",
        ];
        mixed.sort_by(|a, b| newest_first(a, b));
        assert_eq!(
            mixed,
            vec![
                "snapshots/tier=4/dt=2026-11-20/20261120T223015Z.parquet",
                "snapshots/tier=2/dt=2026-11-20/20261120T22.compacted.parquet",
                "snapshots/tier=4/dt=2026-11-20/20261120T215945Z.parquet",
                "snapshots/tier=3/dt=2026-11-20/20261120T21.compacted.parquet",
            ]
        );
    }

    #[test]
    fn given_an_hour_then_its_partitions_are_the_tier_hours_or_the_day() {
        let h: Ts = "2026-11-20T22:00:00Z".parse().expect("a time");
        assert_eq!(
            partition_prefixes(keys::SNAPSHOTS, h)[4],
            "snapshots/tier=4/dt=2026-11-20/20261120T22"
        );
        assert_eq!(
            partition_prefixes(keys::TRADES, h),
            vec!["trades/dt=2026-11-20/20261120T22"]
        );
        assert_eq!(
            partition_prefixes(keys::MARKETS, h),
            vec!["markets/dt=2026-11-20/"]
        );
        assert_eq!(
            partition_start(keys::MARKETS, "2026-11-20T22:10:00Z".parse().expect("t")),
            "2026-11-20T00:00:00Z".parse::<Ts>().expect("t")
        );
    }
}
