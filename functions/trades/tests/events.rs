//! The recorded SQS event `events/sqs-live-batch.json`, where it comes from and that it still
//! holds what the feed sends today.
//!
//! Its messages are real feed messages: Polymarket frames in their recorded shapes (the `book`
//! frame of market 0xdd22…0917 recorded by NautilusTrader, `last_trade_price` frames with the
//! fields of the recorded one plus `transaction_hash`, a v2 `price_change`; see
//! fixtures/polymarket/SOURCES.md), retimed to 2026-11-20T12:00Z, applied to the feed
//! (`polytape_feed::Feed`) as the supervisor applies them, and the resulting trades, whale
//! event and tape packed by the feed's `Packer`. Then two poisoned records are added — a body
//! that is not a feed message, an empty body — and one message gets a bad line.
//!
//! `cargo nextest run -p trades --test events --run-ignored only` writes the file again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use polytape_core::live::TapeRecord;
use polytape_feed::queue::{decode, Message, Packer, Record, MAX_MESSAGE_BYTES};
use polytape_feed::{Control, Feed, FeedConfig, Output};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Market 0xdd22…0917 and its two tokens, as in the recorded frames.
const MARKET: &str = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917";
const YES: &str = "21742633143463906290569050155826241533067272736897614950488156847949938836455";
const NO: &str = "48331043336612883890938759509493159234755048973500640148014422747788308965732";
/// The feed process's run: it started 2026-11-20T12:00:00Z.
const RUN: i64 = 1_795_176_000_000;

fn event_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/sqs-live-batch.json")
}

/// The recorded `book` frame (fixtures/polymarket/ws_book_recorded_nautilus.json, REAL, 76 bids
/// and 86 asks of the NO token), its timestamp moved to `ms`.
fn recorded_book(ms: i64) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/polymarket/tests/fixtures/ws_book_recorded_nautilus.json"
    );
    let mut book: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    book["timestamp"] = json!(ms.to_string());
    book.to_string()
}

/// A `last_trade_price` frame with the fields of the recorded one
/// (ws_last_trade_price_recorded_nautilus.json) and the `transaction_hash` sent since 2025.
fn last_trade(asset: &str, side: &str, price: &str, size: &str, ms: i64, tx: u32) -> String {
    json!({
        "asset_id": asset, "event_type": "last_trade_price", "fee_rate_bps": "0",
        "market": MARKET, "price": price, "side": side, "size": size,
        "timestamp": ms.to_string(), "transaction_hash": format!("0x{tx:064x}"),
    })
    .to_string()
}

/// A v2 `price_change` frame (ws_price_change_v2_nautilus.json's shape) moving the YES token's
/// top of book.
fn price_change(bid: &str, ask: &str, ms: i64) -> String {
    json!({
        "market": MARKET, "event_type": "price_change", "timestamp": ms.to_string(),
        "price_changes": [
            {"asset_id": YES, "price": bid, "side": "BUY", "size": "1200",
             "hash": format!("{:040x}", ms), "best_bid": bid, "best_ask": ask},
        ],
    })
    .to_string()
}

/// A tape record as the supervisor makes one (built through serde, so fields the record gains
/// later with defaults need no change here).
fn tape(seq: u64, shard: u32, recv_ms: i64, kind: &str, text: &str) -> TapeRecord {
    serde_json::from_value(json!({
        "run": RUN, "shard": shard, "seq": seq, "kind": kind, "text": text,
        "received_at": chrono::DateTime::from_timestamp_millis(recv_ms).unwrap(),
    }))
    .unwrap()
}

/// The supervisor's part, for a test: each record applied to the feed, then packed with what
/// the feed made of it.
struct Recorder {
    feed: Feed,
    packer: Packer,
    seq: u64,
}

impl Recorder {
    fn record(&mut self, shard: u32, ms: i64, kind: &str, text: String) {
        self.seq += 1;
        let rec = tape(self.seq, shard, ms, kind, &text);
        self.feed.apply(&rec);
        let mut closed = Vec::new();
        closed.extend(self.packer.push(&Record::Tape(rec), ms));
        for o in self.feed.drain() {
            let record = match o {
                Output::Trade(t) => Record::Trade(*t),
                Output::Whale(w) => Record::Whale(*w),
            };
            closed.extend(self.packer.push(&record, ms));
        }
        assert!(closed.is_empty(), "everything fits one message");
    }

    fn frame(&mut self, ms: i64, text: String) {
        self.record(1, ms, "frame", text);
    }

    fn control(&mut self, ms: i64, c: Control) {
        self.record(0, ms, "control", serde_json::to_string(&c).unwrap());
    }
}

/// The feed's messages for a few minutes of market 0xdd22…: the tokens registered, books,
/// trades (one a whale: 5,000 × 0.49 = $2,450), and time passing until the whale's 5-minute
/// mid is known. Two messages, as the packer closes them at the two `take`s.
fn feed_messages() -> Vec<Message> {
    let mut r = Recorder {
        feed: Feed::new(FeedConfig::default()),
        packer: Packer::new(RUN, MAX_MESSAGE_BYTES, Duration::from_secs(2)),
        seq: 0,
    };
    let mut messages = Vec::new();
    let t0 = RUN + 1_000;
    let assets = vec![
        (YES.into(), MARKET.into(), 0),
        (NO.into(), MARKET.into(), 1),
    ];
    r.control(t0, Control::Assets { assets });
    let condition_id = MARKET.to_string();
    r.control(
        t0,
        Control::CoveredFrom {
            condition_id,
            at_ms: t0,
        },
    );
    r.frame(t0 + 40, recorded_book(t0 + 35));
    r.frame(t0 + 90, price_change("0.48", "0.5", t0 + 80));
    let trades = [
        ("BUY", "0.49", "85.36"),
        ("SELL", "0.48", "12.5"),
        ("BUY", "0.49", "5000"), // the whale
        ("BUY", "0.5", "40"),
        ("SELL", "0.48", "310.2"),
    ];
    for (i, (side, price, size)) in trades.iter().enumerate() {
        let ms = t0 + 1_000 * (i as i64 + 1);
        r.frame(
            ms + 25,
            last_trade(YES, side, price, size, ms, 0xa000 + i as u32),
        );
    }
    messages.extend(r.packer.take());
    // A second message: the other token trades, the book moves, and 5 minutes after the
    // whale its mid after it is known.
    for (i, (side, price, size)) in [("BUY", "0.52", "20"), ("SELL", "0.51", "150")]
        .iter()
        .enumerate()
    {
        let ms = t0 + 60_000 + 1_000 * i as i64;
        r.frame(
            ms + 30,
            last_trade(NO, side, price, size, ms, 0xb000 + i as u32),
        );
    }
    r.frame(t0 + 120_000, price_change("0.49", "0.51", t0 + 119_990));
    let later = t0 + 3_000 + 301_000;
    r.control(later, Control::Advance { now_ms: later });
    messages.extend(r.packer.take());
    messages
}

/// One SQS record of the live queue carrying `body`.
fn sqs_record(message_id: &str, body: &str, sent_ms: i64) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("AQEB-recorded-receipt-handle-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": sent_ms.to_string(),
            "SenderId": "AROAEXAMPLE:polytape-ws-fargate",
            "ApproximateFirstReceiveTimestamp": (sent_ms + 40).to_string(),
        },
        "messageAttributes": {},
        "md5OfBody": "d41d8cd98f00b204e9800998ecf8427e",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:polytape-LiveQueue",
        "awsRegion": "us-east-1",
    })
}

/// The batch: message 1 (good), a body that is not a feed message, message 2 with its second
/// record line replaced by a trade that does not decode, an empty body.
fn event_from(messages: &[Message]) -> Value {
    let mut lines: Vec<&str> = messages[1].body.lines().collect();
    lines[2] = r#"{"trade":{"trade_key":"truncated","price":"0.5"}}"#;
    let bad_line = lines.join("\n");
    json!({"Records": [
        sqs_record("m-feed-1", &messages[0].body, RUN + 8_000),
        sqs_record("m-not-feed", r#"{"Type":"Notification","Message":"hello"}"#, RUN + 9_000),
        sqs_record("m-feed-2-bad-line", &bad_line, RUN + 306_000),
        sqs_record("m-empty", "", RUN + 307_000),
    ]})
}

#[test]
#[ignore = "writes events/sqs-live-batch.json; run with --run-ignored only"]
fn regenerate_the_recorded_event() {
    let event = event_from(&feed_messages());
    let text = serde_json::to_string_pretty(&event).unwrap() + "\n";
    std::fs::write(event_path(), text).unwrap();
}

#[test]
fn the_recorded_event_holds_feed_messages_that_decode_today_and_two_poisoned_bodies() {
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(event_path()).unwrap()).unwrap();
    let records = event["Records"].as_array().unwrap();
    let body = |i: usize| records[i]["body"].as_str().unwrap();
    // Message 1: every record decodes; 5 trades (one whale-sized) and their tape.
    let (h1, r1) = decode(body(0)).unwrap();
    assert_eq!((h1.run, h1.seq, h1.records as usize), (RUN, 1, r1.len()));
    let r1: Vec<Record> = r1.into_iter().map(Result::unwrap).collect();
    let trades: Vec<_> = r1
        .iter()
        .filter_map(|r| match r {
            Record::Trade(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(trades.len(), 5);
    assert!(trades
        .iter()
        .all(|t| t.condition_id == MARKET && t.token_id == YES && t.outcome_index == Some(0)));
    assert_eq!(
        trades
            .iter()
            .filter(|t| t.whale_tier.unwrap_or(0) >= 2)
            .count(),
        1
    );
    // Message 2: one bad record among good ones, and the whale event with its 5-minute mid.
    let (h2, r2) = decode(body(2)).unwrap();
    assert_eq!((h2.run, h2.seq), (RUN, 2));
    assert_eq!(r2.iter().filter(|r| r.is_err()).count(), 1);
    let whales = r2
        .iter()
        .filter(|r| matches!(r, Ok(Record::Whale(w)) if w.price_after_5m.is_some()))
        .count();
    assert_eq!(whales, 1);
    // The poisoned bodies are not feed messages.
    assert!(decode(body(1)).is_err());
    assert!(decode(body(3)).is_err());
    // And the generator still makes messages of the same shape from the same frames.
    let fresh = feed_messages();
    assert_eq!(fresh.len(), 2);
    assert_eq!(
        decode(&fresh[0].body).unwrap().1.len(),
        r1.len(),
        "the feed's output for these frames changed: regenerate the event (see the module docs)"
    );
}
