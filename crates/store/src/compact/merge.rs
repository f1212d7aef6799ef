//! One hour's files of a partition merged into one Parquet file: each input's record batches,
//! in the order given, checked against the table's schema (the writer's: a file of another
//! shape stops the merge rather than being dropped), written with the table's writer settings
//! ([`crate::parquet::table_writer_properties`]). For `trades` and `whale_events` a row whose
//! `trade_key` was already met — earlier in this merge, or in the hours before
//! ([`super::DEDUP_HOURS_BACK`]) — is dropped: the first row of a key in merge order is kept.
//!
//! A compacted file names the files merged into it in its own footer ([`Provenance`], under
//! the key [`PROVENANCE_KEY`]): the manifest says the same, but only the file itself cannot be
//! out of step with its rows, so a run cut short between the two knows what the file holds.

use crate::error::{Result, StoreError};
use crate::keys;
use crate::parquet::{for_each_batch, read_footer, table_schema, table_writer_properties};
use ::parquet::arrow::ArrowWriter;
use ::parquet::file::metadata::KeyValue;
use arrow_array::cast::AsArray;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;

/// Rows per row group of a merged file: an hour of T4 snapshots (≈ 21,600 rows at the
/// reference scale) is one group.
const GROUP_ROWS: usize = 128 * 1024;

/// Encoded bytes of a row group in progress past which it is closed early, so a merge of large
/// rows (the raw tape's frames) holds at most this much besides the output.
const GROUP_BYTES: usize = 32 * 1024 * 1024;

/// The footer key of a compacted file's [`Provenance`].
pub const PROVENANCE_KEY: &str = "polytape.compaction";

/// What a compacted file holds, as its footer says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The hour (`20261120T22`).
    pub hour: String,
    /// The file names (in its partition) of every file merged into it, sorted.
    pub sources: Vec<String>,
    /// Rows its merges dropped because their `trade_key` was met before.
    pub duplicates_dropped: u64,
}

/// A compacted file as stored: its rows and provenance, from its footer.
#[derive(Debug, Clone)]
pub struct Stored {
    pub rows: u64,
    pub provenance: Provenance,
}

/// Reads the footer of the compacted file `key`. A file without provenance (not written by
/// compaction) is an error: what it holds cannot be known.
pub fn stored(key: &str, bytes: &[u8]) -> Result<Stored> {
    let meta = read_footer(bytes).map_err(|e| StoreError::Encode(format!("{key}: {e}")))?;
    let file = meta.file_metadata();
    let provenance = file
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == PROVENANCE_KEY))
        .and_then(|k| k.value.as_deref())
        .ok_or_else(|| StoreError::Encode(format!("{key}: no {PROVENANCE_KEY} in its footer")))?;
    let provenance: Provenance = serde_json::from_str(provenance)
        .map_err(|e| StoreError::Encode(format!("{key}: {PROVENANCE_KEY}: {e}")))?;
    Ok(Stored {
        rows: u64::try_from(file.num_rows()).unwrap_or(0),
        provenance,
    })
}

/// Whether `table` drops repeated `trade_key`s when merging.
pub fn dedups_trade_keys(table: &str) -> bool {
    matches!(table, keys::TRADES | keys::WHALE_EVENTS)
}

/// A merged file.
#[derive(Debug, Clone)]
pub struct Merged {
    pub bytes: Vec<u8>,
    pub rows: u64,
}

/// A merge in progress.
pub struct Merger {
    table: String,
    schema: SchemaRef,
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
    dropped: u64,
    /// The trade keys met so far (`trades`, `whale_events`); `None` for the other tables.
    seen: Option<HashSet<String>>,
}

impl Merger {
    /// A merge of `table`'s files; `seen` holds the trade keys of the hours before (ignored
    /// for a table without trade keys).
    pub fn new(table: &str, seen: HashSet<String>) -> Result<Merger> {
        let unknown = || StoreError::Config(format!("compaction: no schema for table {table:?}"));
        let schema = table_schema(table).ok_or_else(unknown)?;
        let props = table_writer_properties(table, GROUP_ROWS).ok_or_else(unknown)?;
        let writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props))?;
        Ok(Merger {
            table: table.to_string(),
            schema,
            writer,
            rows: 0,
            dropped: 0,
            seen: dedups_trade_keys(table).then_some(seen),
        })
    }

    /// Appends the rows of the file `key` (its bytes). A file that is not Parquet, or whose
    /// columns are not the table's (a name missing, another type, a NULL where the table has
    /// none), is an error naming it.
    pub fn add(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        for_each_batch(bytes, |batch| self.add_batch(&batch))
            .map_err(|e| StoreError::Encode(format!("{key}: {e}")))
    }

    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    StoreError::Encode(format!(
                        "no column {} (not a {} file)",
                        f.name(),
                        self.table
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let batch = match &mut self.seen {
            Some(seen) => {
                let kept = first_of_each_key(&batch, seen)?;
                self.dropped += (batch.num_rows() - kept.num_rows()) as u64;
                kept
            }
            None => batch,
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.writer.write(&batch)?;
        if self.writer.in_progress_size() > GROUP_BYTES {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Drops from here on the rows whose `trade_key` is in `keys` too (no-op for a table
    /// without trade keys).
    pub fn also_seen(&mut self, keys: HashSet<String>) {
        if let Some(seen) = &mut self.seen {
            seen.extend(keys);
        }
    }

    /// Rows dropped so far because their `trade_key` was met before.
    pub fn duplicates_dropped(&self) -> u64 {
        self.dropped
    }

    /// The merged file, its footer naming what it holds.
    pub fn finish(mut self, provenance: &Provenance) -> Result<Merged> {
        self.writer.append_key_value_metadata(KeyValue::new(
            PROVENANCE_KEY.to_string(),
            serde_json::to_string(provenance)?,
        ));
        let bytes = self.writer.into_inner()?;
        Ok(Merged {
            bytes,
            rows: self.rows,
        })
    }
}

/// The rows of `batch` whose `trade_key` is not in `seen`, the first of each key kept; adds
/// the kept keys to `seen`.
fn first_of_each_key(batch: &RecordBatch, seen: &mut HashSet<String>) -> Result<RecordBatch> {
    let keys = trade_key_column(batch)?;
    let keep: BooleanArray = (0..batch.num_rows())
        .map(|i| Some(seen.insert(keys.value(i).to_owned())))
        .collect();
    if keep.true_count() == batch.num_rows() {
        return Ok(batch.clone());
    }
    Ok(arrow_select::filter::filter_record_batch(batch, &keep)?)
}

fn trade_key_column(batch: &RecordBatch) -> Result<&arrow_array::StringArray> {
    batch
        .column_by_name("trade_key")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| StoreError::Encode("no string column trade_key".into()))
}

/// The trade keys of a `trades` or `whale_events` file (for the hours before the one merged).
pub fn trade_keys(key: &str, bytes: &[u8], into: &mut HashSet<String>) -> Result<()> {
    for_each_batch(bytes, |batch| {
        into.extend(
            trade_key_column(&batch)?
                .iter()
                .flatten()
                .map(str::to_owned),
        );
        Ok(())
    })
    .map_err(|e| StoreError::Encode(format!("{key}: {e}")))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_known_bytes_then_the_sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn given_an_unknown_table_then_no_merger_is_made() {
        assert!(Merger::new("nonsense", HashSet::new()).is_err());
        assert!(dedups_trade_keys(keys::TRADES) && !dedups_trade_keys(keys::RAW_WS));
    }
}
