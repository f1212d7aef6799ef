//! The feed's messages to the trades consumer: many records per message, a message at most
//! [`MAX_MESSAGE_BYTES`] and at most a linger old, each with its run and sequence, so the
//! consumer's files name the (run, sequences) they hold and a message delivered again is
//! found stored (`polytape_collector::live::store_batch`).
//!
//! The body is JSON, one line per record after a header line:
//! `{"run":…,"seq":…,"records":N}` then `{"trade":{…}}`, `{"whale":{…}}` or `{"tape":{…}}` —
//! so the consumer decodes each record on its own and one bad record never costs the others.
//!
//! The feed runner (`polytape_collector::live::run_feed`) packs trades and whale events only;
//! it writes the raw tape to the object store itself (`polytape_collector::tape`). Tape records
//! remain part of the format, so messages sent before that are still stored.

use polytape_core::live::{StoredTrade, TapeRecord, WhaleEvent};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// SQS's message size limit the packer stays under (with room for the attributes).
pub const MAX_MESSAGE_BYTES: usize = 250 * 1024;

/// Room left in a message for its header line.
const HEADER_ROOM: usize = 128;

/// One record of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Record {
    Trade(StoredTrade),
    Whale(WhaleEvent),
    Tape(TapeRecord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The feed process's run (its start, epoch ms).
    pub run: i64,
    /// The message's place in its run.
    pub seq: u64,
    /// Records that follow.
    pub records: u32,
}

/// A packed message: its header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: String,
}

/// Packs records into messages.
#[derive(Debug)]
pub struct Packer {
    run: i64,
    seq: u64,
    lines: Vec<String>,
    bytes: usize,
    /// When the oldest record waiting was pushed (ms).
    since_ms: Option<i64>,
    max_bytes: usize,
    linger: Duration,
    /// Records too large for any message, left out (counted).
    pub oversized: u64,
}

impl Packer {
    pub fn new(run: i64, max_bytes: usize, linger: Duration) -> Packer {
        Packer {
            run,
            seq: 0,
            lines: Vec::new(),
            bytes: 0,
            since_ms: None,
            max_bytes,
            linger,
            oversized: 0,
        }
    }

    /// Adds a record; returns the messages that had to be closed to make room. A tape record
    /// too large for a message goes in parts ([`TapeRecord::split`]), each in a message.
    pub fn push(&mut self, record: &Record, now_ms: i64) -> Vec<Message> {
        let mut closed = Vec::new();
        let line = serde_json::to_string(record).unwrap_or_default();
        if line.len() + HEADER_ROOM <= self.max_bytes {
            self.push_line(line, now_ms, &mut closed);
            return closed;
        }
        let Record::Tape(tape) = record else {
            self.oversized += 1;
            tracing::warn!(bytes = line.len(), "feed: a record too large for a message");
            return closed;
        };
        // JSON escaping makes text at most 6 times longer (`\u00XX`), and the rest of a tape
        // record is a few hundred bytes: parts of a seventh of a message always fit, and
        // several of them share a message.
        for part in tape.clone().split(self.max_bytes / 7) {
            let line = serde_json::to_string(&Record::Tape(part)).unwrap_or_default();
            self.push_line(line, now_ms, &mut closed);
        }
        closed
    }

    fn push_line(&mut self, line: String, now_ms: i64, closed: &mut Vec<Message>) {
        if self.bytes + line.len() + 1 + HEADER_ROOM > self.max_bytes {
            closed.extend(self.take());
        }
        self.bytes += line.len() + 1;
        self.lines.push(line);
        self.since_ms.get_or_insert(now_ms);
    }

    /// The waiting records as a message once the oldest has lingered long enough.
    pub fn due(&mut self, now_ms: i64) -> Option<Message> {
        let since = self.since_ms?;
        (now_ms - since >= self.linger.as_millis() as i64).then(|| self.take())?
    }

    /// Whatever waits, as a message (shutdown).
    pub fn take(&mut self) -> Option<Message> {
        if self.lines.is_empty() {
            return None;
        }
        self.seq += 1;
        let header = Header {
            run: self.run,
            seq: self.seq,
            records: self.lines.len() as u32,
        };
        let mut body = serde_json::to_string(&header).unwrap_or_default();
        for line in self.lines.drain(..) {
            body.push('\n');
            body.push_str(&line);
        }
        self.bytes = 0;
        self.since_ms = None;
        Some(Message { header, body })
    }
}

/// A message body taken apart: its header, and each record decoded on its own (a record that
/// does not decode is an error naming its line).
pub fn decode(body: &str) -> Result<(Header, Vec<Result<Record, String>>), String> {
    let mut lines = body.lines();
    let header: Header = lines
        .next()
        .ok_or("empty message")
        .and_then(|l| serde_json::from_str(l).map_err(|_| "no header line"))
        .map_err(|e| format!("not a feed message: {e}"))?;
    let records = lines
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("record {}: {e}", i + 1)))
        .collect();
    Ok((header, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::live::TapeKind;

    fn tape(seq: u64, text: &str) -> Record {
        Record::Tape(TapeRecord {
            run: 7,
            shard: 1,
            seq,
            received_at: "2026-11-20T12:00:00Z".parse().unwrap(),
            kind: TapeKind::Frame,
            part: 0,
            parts: 1,
            text: text.to_string(),
        })
    }

    #[test]
    fn messages_stay_under_the_size_and_linger_and_decode_record_by_record() {
        let mut p = Packer::new(7, 2_000, Duration::from_secs(2));
        let mut messages = Vec::new();
        for i in 0..30 {
            messages.extend(p.push(&tape(i, &"x".repeat(100)), 1_000));
        }
        // A frame larger than a message goes in parts, each message still under the size.
        messages.extend(p.push(&tape(30, &"\"q\"".repeat(2_000)), 1_000));
        assert!(p.due(2_999).is_none());
        messages.extend(p.due(3_000));
        assert!(p.take().is_none());
        let mut parts = Vec::new();
        for (n, m) in messages.iter().enumerate() {
            assert!(m.body.len() <= 2_000, "{}", m.body.len());
            let (h, records) = decode(&m.body).unwrap();
            assert_eq!((h.run, h.seq), (7, n as u64 + 1));
            assert_eq!(h.records as usize, records.len());
            for r in records {
                match r.unwrap() {
                    Record::Tape(t) => parts.push(t),
                    other => panic!("{other:?}"),
                }
            }
        }
        let (whole, incomplete) = TapeRecord::join(parts);
        assert!(incomplete.is_empty());
        let want: Vec<TapeRecord> = (0..31)
            .map(|i| {
                match tape(
                    i,
                    &if i < 30 {
                        "x".repeat(100)
                    } else {
                        "\"q\"".repeat(2_000)
                    },
                ) {
                    Record::Tape(t) => t,
                    _ => unreachable!(),
                }
            })
            .collect();
        assert_eq!(whole, want);
        assert_eq!(p.oversized, 0);
    }

    #[test]
    fn a_bad_record_is_an_error_of_its_own_and_a_bad_header_fails_the_message() {
        let mut p = Packer::new(1, MAX_MESSAGE_BYTES, Duration::ZERO);
        assert!(p.push(&tape(1, "a"), 0).is_empty());
        let m = p.take().unwrap();
        let body = format!("{}\n{{\"trade\":{{\"nope\":1}}}}", m.body);
        let (_, records) = decode(&body).unwrap();
        assert!(records[0].is_ok());
        assert!(records[1].as_ref().unwrap_err().starts_with("record 2"));
        assert!(decode("{\"trade\":1}").is_err());
        assert!(decode("").is_err());
    }
}
