//! A Parquet file writer whose memory does not grow with the file.
//!
//! arrow-rs's `ArrowWriter` keeps the metadata of every row group it has flushed (≈ 40 KB for
//! a 63-column group) until the file closes, because the footer lists them all. Here each row
//! group is written by its own `ArrowWriter` into a buffer; its data pages go straight to the
//! output file, and its footer entry (the Thrift `RowGroup`, offsets moved to where the pages
//! landed) to a spool file next to the output. Closing writes the footer: the file's own fields
//! (schema, key-value metadata, creator) around the spooled row groups, streamed from disk. What
//! is held at any time is one row group in flight and the bytes of one footer entry.
//!
//! The footer is Thrift's compact protocol (`FileMetaData`, parquet-format): only its top-level
//! fields are taken apart here (see [`fields`]), never the structures inside them, which
//! arrow-rs serialises.

use crate::error::{Result, StoreError};
use ::parquet::arrow::ArrowWriter;
use ::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataWriter, RowGroupMetaData};
use ::parquet::file::properties::WriterProperties;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"PAR1";

/// Thrift compact type ids (parquet-format's footer uses these).
const T_BOOL_TRUE: u8 = 1;
const T_BOOL_FALSE: u8 = 2;
const T_BYTE: u8 = 3;
const T_I16: u8 = 4;
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_DOUBLE: u8 = 7;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_SET: u8 = 10;
const T_MAP: u8 = 11;
const T_STRUCT: u8 = 12;

/// `FileMetaData` field ids this writer fills itself.
const F_NUM_ROWS: i16 = 3;
const F_ROW_GROUPS: i16 = 4;

/// Writes one Parquet file of `schema` to `path`, `group_rows` rows (or a little more: whole
/// batches) per row group.
pub struct StreamingParquetWriter {
    out: BufWriter<File>,
    /// Bytes written to `out` so far.
    pos: u64,
    spool: BufWriter<File>,
    spool_path: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    group_rows: usize,
    group: Option<ArrowWriter<Vec<u8>>>,
    /// The buffer of the last group written, reused by the next.
    buffer: Vec<u8>,
    groups: u64,
    rows: i64,
    /// The top-level fields of the footer other than `num_rows` and `row_groups`, from the
    /// first group's footer.
    template: Option<Vec<Field>>,
}

impl StreamingParquetWriter {
    /// `props` must leave page indexes and bloom filters off (they sit between a group's pages
    /// and its footer, where this writer does not look): statistics at most per chunk, offset
    /// index disabled.
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        props: WriterProperties,
        group_rows: usize,
    ) -> Result<StreamingParquetWriter> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        out.write_all(MAGIC)?;
        let mut spool_path = path.as_os_str().to_owned();
        spool_path.push(".rowgroups");
        let spool_path = PathBuf::from(spool_path);
        let spool = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&spool_path)?;
        let spool = BufWriter::new(spool);
        Ok(StreamingParquetWriter {
            out,
            pos: MAGIC.len() as u64,
            spool,
            spool_path,
            schema,
            props,
            group_rows: group_rows.max(1),
            group: None,
            buffer: Vec::new(),
            groups: 0,
            rows: 0,
            template: None,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.group.is_none() {
            let buffer = std::mem::take(&mut self.buffer);
            self.group = Some(self.new_group(buffer)?);
        }
        if let Some(group) = &mut self.group {
            group.write(batch)?;
            if group.in_progress_rows() >= self.group_rows {
                self.flush_group()?;
            }
        }
        Ok(())
    }

    /// Writes the footer and makes the file durable. The spool file goes when the writer does,
    /// finished or not.
    pub fn finish(mut self) -> Result<()> {
        self.flush_group()?;
        if self.template.is_none() {
            // No rows at all: a group writer that wrote nothing still has the file's footer.
            let mut empty = self.new_group(Vec::new())?;
            let meta = empty.finish()?;
            self.template = Some(template_of(&meta)?);
        }
        let template = self.template.take().unwrap_or_default();
        self.spool.flush()?;
        let spool = self.spool.get_mut();
        let spooled = spool.seek(SeekFrom::End(0))?;
        spool.seek(SeekFrom::Start(0))?;

        // The footer: the template's fields before `num_rows`, `num_rows`, the spooled
        // `row_groups`, the template's fields after them, the end of the struct.
        let mut last = 0i16;
        let mut head = Vec::new();
        for field in template.iter().filter(|f| f.id < F_NUM_ROWS) {
            field.encode(&mut head, &mut last);
        }
        field_header(&mut head, F_NUM_ROWS, T_I64, &mut last);
        varint(&mut head, zigzag(self.rows));
        field_header(&mut head, F_ROW_GROUPS, T_LIST, &mut last);
        list_header(&mut head, self.groups, T_STRUCT);
        let mut tail = Vec::new();
        for field in template.iter().filter(|f| f.id > F_ROW_GROUPS) {
            field.encode(&mut tail, &mut last);
        }
        tail.push(0); // end of FileMetaData
        self.out.write_all(&head)?;
        std::io::copy(
            &mut Read::take(&mut *self.spool.get_mut(), spooled),
            &mut self.out,
        )?;
        self.out.write_all(&tail)?;
        let footer_len = u32::try_from(head.len() as u64 + spooled + tail.len() as u64)
            .map_err(|_| bad("over 4 GiB"))?;
        self.out.write_all(&footer_len.to_le_bytes())?;
        self.out.write_all(MAGIC)?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }

    fn new_group(&self, mut buffer: Vec<u8>) -> Result<ArrowWriter<Vec<u8>>> {
        buffer.clear();
        Ok(ArrowWriter::try_new(
            buffer,
            self.schema.clone(),
            Some(self.props.clone()),
        )?)
    }

    /// Moves the group in flight to the file: its pages to `out`, its footer entry to the
    /// spool.
    fn flush_group(&mut self) -> Result<()> {
        let Some(mut group) = self.group.take() else {
            return Ok(());
        };
        let meta = group.finish()?;
        let bytes = std::mem::take(group.inner_mut());
        drop(group);
        let footer_start = footer_start(&bytes, MAGIC.len())?;
        let pages = &bytes[MAGIC.len()..footer_start];
        // The group's offsets count from its own buffer, whose magic is not copied.
        let shift = self.pos as i64 - MAGIC.len() as i64;
        self.out.write_all(pages)?;
        self.pos += pages.len() as u64;
        if self.template.is_none() {
            self.template = Some(template_of(&meta)?);
        }
        for rg in meta.row_groups() {
            let moved = moved(rg, shift, self.groups)?;
            let one = ParquetMetaData::new(meta.file_metadata().clone(), vec![moved]);
            let groups = footer_fields(&one)?
                .into_iter()
                .find(|f| f.id == F_ROW_GROUPS)
                .ok_or_else(|| bad("footer without row groups"))?;
            // A one-element list: its header byte, then the one `RowGroup` struct.
            self.spool.write_all(&groups.payload[1..])?;
            self.groups += 1;
            self.rows += rg.num_rows();
        }
        self.buffer = bytes;
        Ok(())
    }
}

impl Drop for StreamingParquetWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spool_path);
    }
}

/// `rg` as it sits at `shift` bytes further into the output, as the file's `ordinal`-th group.
fn moved(rg: &RowGroupMetaData, shift: i64, ordinal: u64) -> Result<RowGroupMetaData> {
    let columns = rg
        .columns()
        .iter()
        .map(|c| {
            if c.offset_index_offset().is_some()
                || c.column_index_offset().is_some()
                || c.bloom_filter_offset().is_some()
            {
                return Err(bad("page indexes and bloom filters are not supported"));
            }
            Ok(c.clone()
                .into_builder()
                .set_data_page_offset(c.data_page_offset() + shift)
                .set_dictionary_page_offset(c.dictionary_page_offset().map(|o| o + shift))
                .set_index_page_offset(c.index_page_offset().map(|o| o + shift))
                .build()?)
        })
        .collect::<Result<Vec<_>>>()?;
    let ordinal = i32::try_from(ordinal).map_err(|_| bad("too many row groups"))?;
    let mut builder = rg
        .clone()
        .into_builder()
        .set_column_metadata(columns)
        .set_ordinal(ordinal);
    if let Some(offset) = rg.file_offset() {
        builder = builder.set_file_offset(offset + shift);
    }
    Ok(builder.build()?)
}

/// Where the Thrift footer of `bytes` starts: a Parquet buffer, or (`min` 0) a footer as
/// `ParquetMetaDataWriter` writes it, followed by its length and the magic.
fn footer_start(bytes: &[u8], min: usize) -> Result<usize> {
    let n = bytes.len();
    if n < 8 || &bytes[n - 4..] != MAGIC {
        return Err(bad("no trailing magic"));
    }
    let len = u32::from_le_bytes([bytes[n - 8], bytes[n - 7], bytes[n - 6], bytes[n - 5]]);
    (n - 8)
        .checked_sub(len as usize)
        .filter(|s| *s >= min)
        .ok_or_else(|| bad("footer length past the buffer"))
}

/// The Thrift `FileMetaData` of `meta`, as its top-level fields.
fn footer_fields(meta: &ParquetMetaData) -> Result<Vec<Field>> {
    let mut buf = Vec::new();
    ParquetMetaDataWriter::new(&mut buf, meta).finish()?;
    let start = footer_start(&buf, 0)?;
    fields(&buf[start..buf.len() - 8])
}

fn template_of(meta: &ParquetMetaData) -> Result<Vec<Field>> {
    let empty = ParquetMetaData::new(meta.file_metadata().clone(), Vec::new());
    Ok(footer_fields(&empty)?
        .into_iter()
        .filter(|f| f.id != F_NUM_ROWS && f.id != F_ROW_GROUPS)
        .collect())
}

fn bad(what: &str) -> StoreError {
    StoreError::Encode(format!("parquet footer: {what}"))
}

/// One top-level field of a Thrift compact struct: its id, type and encoded value.
#[derive(Debug)]
struct Field {
    id: i16,
    kind: u8,
    payload: Vec<u8>,
}

impl Field {
    fn encode(&self, out: &mut Vec<u8>, last: &mut i16) {
        field_header(out, self.id, self.kind, last);
        out.extend_from_slice(&self.payload);
    }
}

/// The top-level fields of one Thrift compact struct, in order.
fn fields(buf: &[u8]) -> Result<Vec<Field>> {
    let mut r = Reader { buf, at: 0 };
    let mut out = Vec::new();
    let mut last = 0i16;
    loop {
        let b = r.byte()?;
        if b == 0 {
            return Ok(out);
        }
        let kind = b & 0x0f;
        let id = match b >> 4 {
            0 => unzigzag(r.varint()?) as i16,
            delta => last + delta as i16,
        };
        let start = r.at;
        r.skip(kind, 0)?;
        out.push(Field {
            id,
            kind,
            payload: buf[start..r.at].to_vec(),
        });
        last = id;
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.at).ok_or_else(|| bad("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn advance(&mut self, n: usize) -> Result<()> {
        if self.buf.len() - self.at < n {
            return Err(bad("truncated"));
        }
        self.at += n;
        Ok(())
    }

    /// Skips one value of `kind` (a boolean field's value is in its header; a boolean element
    /// of a list is one byte).
    fn skip(&mut self, kind: u8, depth: u8) -> Result<()> {
        if depth > 32 {
            return Err(bad("nested too deep"));
        }
        match kind {
            T_BOOL_TRUE | T_BOOL_FALSE => Ok(()),
            T_BYTE => self.advance(1),
            T_I16 | T_I32 | T_I64 => self.varint().map(|_| ()),
            T_DOUBLE => self.advance(8),
            T_BINARY => {
                let n = self.varint()? as usize;
                self.advance(n)
            }
            T_LIST | T_SET => {
                let b = self.byte()?;
                let element = b & 0x0f;
                let n = match b >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                for _ in 0..n {
                    self.element(element, depth)?;
                }
                Ok(())
            }
            T_MAP => {
                let n = self.varint()?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.element(kv >> 4, depth)?;
                        self.element(kv & 0x0f, depth)?;
                    }
                }
                Ok(())
            }
            T_STRUCT => loop {
                let b = self.byte()?;
                if b == 0 {
                    return Ok(());
                }
                if b >> 4 == 0 {
                    self.varint()?;
                }
                self.skip(b & 0x0f, depth + 1)?;
            },
            other => Err(bad(&format!("unknown thrift type {other}"))),
        }
    }

    fn element(&mut self, kind: u8, depth: u8) -> Result<()> {
        match kind {
            T_BOOL_TRUE | T_BOOL_FALSE => self.advance(1),
            kind => self.skip(kind, depth + 1),
        }
    }
}

fn field_header(out: &mut Vec<u8>, id: i16, kind: u8, last: &mut i16) {
    let delta = id - *last;
    if (1..=15).contains(&delta) {
        out.push(((delta as u8) << 4) | kind);
    } else {
        out.push(kind);
        varint(out, zigzag(i64::from(id)));
    }
    *last = id;
}

fn list_header(out: &mut Vec<u8>, n: u64, element: u8) {
    if n < 15 {
        out.push(((n as u8) << 4) | element);
    } else {
        out.push(0xf0 | element);
        varint(out, n);
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use ::parquet::file::properties::EnabledStatistics;
    use ::parquet::file::reader::{FileReader, SerializedFileReader};
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field as ArrowField, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            ArrowField::new("id", DataType::Int64, false),
            ArrowField::new("name", DataType::Utf8, true),
            ArrowField::new("price", DataType::Float64, true),
        ]))
    }

    fn props() -> WriterProperties {
        WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_offset_index_disabled(true)
            .build()
    }

    fn batch(from: i64, n: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + n).collect();
        let names: Vec<Option<String>> = ids
            .iter()
            .map(|i| (i % 7 != 0).then(|| format!("market-{i}")))
            .collect();
        let prices: Vec<Option<f64>> = ids
            .iter()
            .map(|i| (i % 5 != 0).then(|| *i as f64 / 1000.0))
            .collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Float64Array::from(prices)),
            ],
        )
        .unwrap()
    }

    fn write(path: &Path, batches: &[RecordBatch], group_rows: usize) {
        let mut w = StreamingParquetWriter::create(path, schema(), props(), group_rows).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn given_many_groups_then_a_reader_reads_back_every_row_in_order_with_group_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        // 23 batches of 1,000 rows in groups of ≥ 2,000: 12 groups (the list header's long
        // form starts at 15, so also 40 groups of 1,000 below).
        let batches: Vec<RecordBatch> = (0..23).map(|i| batch(i * 1000, 1000)).collect();
        write(&path, &batches, 2000);

        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 23_000);
        assert_eq!(meta.num_row_groups(), 12);
        for (i, rg) in meta.row_groups().iter().enumerate() {
            assert_eq!(rg.ordinal(), Some(i as i16 as i32));
            let stats = rg.column(0).statistics().expect("chunk statistics");
            let first = (i as i64) * 2000;
            assert_eq!(stats.min_bytes_opt(), Some(&first.to_le_bytes()[..]));
        }
        let mut read = Vec::new();
        for b in ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap()
        {
            read.push(b.unwrap());
        }
        let read = arrow_select::concat::concat_batches(&schema(), &read).unwrap();
        let written = arrow_select::concat::concat_batches(&schema(), &batches).unwrap();
        assert_eq!(read, written);
        assert!(!dir.path().join("out.parquet.rowgroups").exists());

        let path = dir.path().join("long.parquet");
        let batches: Vec<RecordBatch> = (0..40).map(|i| batch(i * 1000, 1000)).collect();
        write(&path, &batches, 1000);
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 40);
        assert_eq!(reader.metadata().file_metadata().num_rows(), 40_000);
        let n: usize = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(n, 40_000);
    }

    /// DuckDB and pyarrow (Parquet C++) read the file the same: the footer assembled here is
    /// not only what arrow-rs accepts.
    #[test]
    fn given_many_groups_then_duckdb_and_pyarrow_read_every_row() {
        let Ok(python) = std::env::var("POLYTAPE_PYTHON_PQ") else {
            assert!(
                std::env::var("POLYTAPE_REQUIRE_TOOLS").is_err(),
                "POLYTAPE_PYTHON_PQ is not set: run infra/test.sh"
            );
            eprintln!("skipped: POLYTAPE_PYTHON_PQ not set (infra/test.sh sets it)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        let batches: Vec<RecordBatch> = (0..40).map(|i| batch(i * 1000, 1000)).collect();
        write(&path, &batches, 1500);
        let script = r#"
import json, sys
import duckdb, pyarrow.parquet as pq
p = sys.argv[1]
n, ids, names, prices = duckdb.sql(
    f"select count(*), sum(id), count(name), sum(price) from read_parquet('{p}')").fetchall()[0]
f = pq.ParquetFile(p)
t = f.read()
print(json.dumps({
    "duckdb": [n, int(ids), names, round(float(prices), 3)],
    "pyarrow": [t.num_rows, sum(t.column("id").to_pylist()), t.column("name").null_count,
                f.metadata.num_row_groups],
}))
"#;
        let out = std::process::Command::new(python)
            .args(["-c", script, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids = 0..40_000i64;
        let names = ids.clone().filter(|i| i % 7 != 0).count();
        let prices: f64 = ids
            .clone()
            .filter(|i| i % 5 != 0)
            .map(|i| i as f64 / 1000.0)
            .sum();
        let prices = (prices * 1000.0).round() / 1000.0;
        assert_eq!(
            v["duckdb"],
            serde_json::json!([40_000, ids.clone().sum::<i64>(), names, prices])
        );
        // Groups end with the batch that reaches 1,500 rows: 20 of 2,000.
        assert_eq!(
            v["pyarrow"],
            serde_json::json!([40_000, ids.sum::<i64>(), 40_000 - names, 20])
        );
    }

    #[test]
    fn given_a_writer_dropped_unfinished_then_its_spool_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        let mut w = StreamingParquetWriter::create(&path, schema(), props(), 100).unwrap();
        w.write(&batch(0, 1000)).unwrap();
        assert!(dir.path().join("out.parquet.rowgroups").exists());
        drop(w);
        assert!(!dir.path().join("out.parquet.rowgroups").exists());
    }

    #[test]
    fn given_no_rows_then_the_file_is_an_empty_parquet_file_with_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        write(&path, &[batch(0, 0)], 1000);
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert_eq!(builder.schema().as_ref(), schema().as_ref());
        assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
        assert_eq!(builder.metadata().num_row_groups(), 0);
    }

    #[test]
    fn given_a_page_index_then_the_writer_refuses_rather_than_write_wrong_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        let mut w = StreamingParquetWriter::create(&path, schema(), props, 10).unwrap();
        w.write(&batch(0, 100)).unwrap_err();
    }

    #[test]
    fn thrift_varints_and_zigzag_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 64, 1 << 40, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            varint(&mut buf, zigzag(v));
            let mut r = Reader { buf: &buf, at: 0 };
            assert_eq!(unzigzag(r.varint().unwrap()), v);
            assert_eq!(r.at, buf.len());
        }
    }
}
