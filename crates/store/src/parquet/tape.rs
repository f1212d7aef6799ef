//! A `raw_ws` file written as the records arrive ([`TapeFileWriter`]): the live feed's tape
//! writer encodes into its spool file with it, so the open object holds one row group in memory
//! however long the file grows.
//!
//! The file is the one [`super::encode_tape`] writes — the same schema and writer settings
//! (Snappy, no dictionary on `text`) — only cut into row groups of bounded size, so
//! [`super::decode_tape`], compaction and replay read it unchanged.

use super::columns::arrays_of;
use super::{encoder_properties, tape_schema, TAPE_FIELDS};
use crate::error::Result;
use ::parquet::arrow::ArrowWriter;
use arrow_array::RecordBatch;
use polytape_core::live::TapeRecord;
use std::io::Write;

/// Writes one `raw_ws` file into `W`, a row group at a time: a row group is written out once
/// the memory it holds passes `group_bytes`, so what the writer holds is at most one row group
/// (`group_bytes` plus the last slice of records handed to [`TapeFileWriter::write`]).
pub struct TapeFileWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    group_bytes: usize,
    rows: u64,
    /// The most the open row group has held, just before it was written out.
    peak_bytes: usize,
}

impl<W: Write + Send> TapeFileWriter<W> {
    /// A file into `out` (its magic bytes are written at once), row groups of about
    /// `group_bytes` in memory.
    pub fn new(out: W, group_bytes: usize) -> Result<TapeFileWriter<W>> {
        let props = encoder_properties(&TAPE_FIELDS, None);
        Ok(TapeFileWriter {
            writer: ArrowWriter::try_new(out, tape_schema(), Some(props))?,
            group_bytes: group_bytes.max(1),
            rows: 0,
            peak_bytes: 0,
        })
    }

    /// Appends `records` (in order) to the open row group, and writes the group out if it now
    /// holds `group_bytes` or more. A `seq` over `i64::MAX` is an error, as in
    /// [`super::encode_tape`].
    pub fn write(&mut self, records: &[TapeRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut nulled = 0;
        let arrays = arrays_of(&TAPE_FIELDS, records, &mut nulled)?;
        self.writer
            .write(&RecordBatch::try_new(tape_schema(), arrays)?)?;
        self.rows += records.len() as u64;
        let held = self.buffered_bytes();
        self.peak_bytes = self.peak_bytes.max(held);
        if held >= self.group_bytes {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// The bytes the open row group holds in memory now (its encoded pages and the encoders'
    /// buffers; at least its anticipated encoded size).
    pub fn buffered_bytes(&self) -> usize {
        self.writer
            .memory_size()
            .max(self.writer.in_progress_size())
    }

    /// The most the open row group has held (measured after each [`TapeFileWriter::write`],
    /// before the group was written out): the writer's memory bound, observed.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// The file's size were it closed now: the bytes written plus the open row group's
    /// anticipated encoded size (the footer, a few KB, comes on top).
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Records written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the open row group and the footer, and hands `out` back.
    pub fn finish(self) -> Result<W> {
        Ok(self.writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet::decode_tape;
    use polytape_core::live::TapeKind;

    /// A frame of `len` characters that Snappy cannot shrink much (a frame's ids and hashes).
    fn record(seq: u64, len: usize) -> TapeRecord {
        let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let text = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b"0123456789abcdef"[(x % 16) as usize])
            })
            .collect();
        TapeRecord {
            run: 3,
            shard: (seq % 4) as u32,
            seq,
            received_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_000 + seq as i64)
                .unwrap_or_default(),
            kind: TapeKind::Frame,
            part: 0,
            parts: 1,
            text,
        }
    }

    #[test]
    fn given_many_records_written_in_slices_then_the_file_reads_back_identical() {
        let records: Vec<TapeRecord> = (1..=5_000).map(|s| record(s, 300)).collect();
        let mut w = TapeFileWriter::new(Vec::new(), 64 * 1024).unwrap();
        for slice in records.chunks(97) {
            w.write(slice).unwrap();
        }
        assert_eq!(w.rows(), 5_000);
        let bytes = w.finish().unwrap();
        assert_eq!(decode_tape(&bytes).unwrap(), records);
        let meta = super::super::read_footer(&bytes).unwrap();
        assert!(
            meta.num_row_groups() > 10,
            "1.5 MB of text in row groups of 64 KiB: {} groups",
            meta.num_row_groups()
        );
    }

    #[test]
    fn given_32_mb_of_records_then_the_writer_never_holds_more_than_a_row_group() {
        // Given row groups of 1 MiB and slices of ~64 KiB of text.
        let group = 1024 * 1024;
        let mut w = TapeFileWriter::new(std::io::sink(), group).unwrap();
        let mut seq = 0;
        let mut text_bytes = 0;
        while text_bytes < 32 * 1024 * 1024 {
            let slice: Vec<TapeRecord> = (0..128)
                .map(|_| {
                    seq += 1;
                    record(seq, 500)
                })
                .collect();
            text_bytes += slice.iter().map(|r| r.text.len()).sum::<usize>();
            w.write(&slice).unwrap();
            // Then at every step it holds at most a row group and the slice that filled it.
            assert!(w.buffered_bytes() < group, "{}", w.buffered_bytes());
        }
        assert!(
            w.peak_bytes() <= group + 2 * 64 * 1024,
            "peak {} for row groups of {group}",
            w.peak_bytes()
        );
        assert!(
            w.size() > 8 * 1024 * 1024,
            "the data went to the file: {}",
            w.size()
        );
    }
}
