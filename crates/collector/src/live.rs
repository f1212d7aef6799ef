//! The live feed's two ends in the collector:
//!
//! * [`store_message`], the trades consumer: one feed message (see `polytape_feed::queue`)
//!   in, its trades, whale events and raw tape out as Parquet under keys derived from the
//!   message's run and sequence, so a redelivered message overwrites its own files. The trades
//!   Lambda runs it on each SQS record; `polytape run` on each message of its local channel.
//! * [`run_feed`], the feed process: the shard supervisor over the markets state; its trades
//!   and whale events packed into messages for a [`MessageSink`]; its raw tape written
//!   straight to the object store by a [`TapeWriter`] (one `raw_ws` object per 5-minute
//!   window or 32 MiB, spooled on local disk first, not through the queue); its flow written to `live/flow.json` for the snapshot
//!   ticks; each heartbeat round (every shard's) to the Ops state in one write. ws-fargate
//!   runs it with an SQS sink and S3; `polytape run` with [`StoreSink`], which calls
//!   [`store_message`] itself, and the data directory. The tape writer is the same in both.

use crate::error::HandlerError;
use crate::tape::{TapeConfig, TapeWriter, STOP_RETRY};
use polytape_core::live::{FlowObject, StoredTrade, TapeKind, TapeRecord, WhaleEvent};
use polytape_feed::queue::{self, Message, Packer, Record, MAX_MESSAGE_BYTES};
use polytape_feed::shard::now_ms;
use polytape_feed::supervisor::{
    supervise, Emit, LiveMarket, MarketSource, SupervisorConfig, SupervisorCounts,
};
use polytape_feed::Output;
use polytape_polymarket::PolymarketClient;
use polytape_store::{keys, parquet, HeartbeatStore, MarketStore, ObjectStore};
use serde::Serialize;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What one message stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    pub run: i64,
    pub seq: u64,
    pub trades: usize,
    pub whales: usize,
    pub tape: usize,
    /// Records that did not decode: skipped, counted and logged (a retry cannot fix them).
    pub bad_records: usize,
    pub keys: Vec<String>,
}

/// Stores one feed message (its trades and whale events; tape records too, from messages sent
/// before the feed wrote its tape itself). A body that is not a feed message at all is
/// [`HandlerError::Input`] (the message goes back to the queue and, after its receives, to the
/// dead-letter queue); a bad record inside a good message is skipped and counted. A storage
/// failure fails the message, whose redelivery rewrites the same keys.
pub async fn store_message<S: ObjectStore>(
    store: &S,
    body: &str,
) -> Result<MessageReport, HandlerError> {
    let (header, records) = queue::decode(body).map_err(HandlerError::Input)?;
    let mut report = MessageReport {
        run: header.run,
        seq: header.seq,
        ..MessageReport::default()
    };
    let (mut trades, mut whales, mut tape): (Vec<StoredTrade>, Vec<WhaleEvent>, Vec<TapeRecord>) =
        (Vec::new(), Vec::new(), Vec::new());
    for record in records {
        match record {
            Ok(Record::Trade(t)) => trades.push(t),
            Ok(Record::Whale(w)) => whales.push(w),
            Ok(Record::Tape(r)) => tape.push(r),
            Err(e) => {
                report.bad_records += 1;
                tracing::warn!(run = header.run, seq = header.seq, error = %e, "feed message: record skipped");
            }
        }
    }
    // The message's day: its first record's (the tape's receive time, else the trade's).
    let Some(day) = tape
        .first()
        .map(|r| r.received_at)
        .or_else(|| trades.first().map(|t| t.received_at))
        .or_else(|| whales.first().map(|w| w.trade_ts))
    else {
        return Ok(report);
    };
    let key = |table: &str| keys::live(table, day, header.run, 0, header.seq);
    if !trades.is_empty() {
        let k = key(keys::TRADES);
        let enc = parquet::encode_trades(&trades)?;
        store
            .put_object(&k, enc.bytes, parquet::CONTENT_TYPE)
            .await?;
        report.trades = trades.len();
        report.keys.push(k);
    }
    if !whales.is_empty() {
        let k = key(keys::WHALE_EVENTS);
        let enc = parquet::encode_whale_events(&whales)?;
        store
            .put_object(&k, enc.bytes, parquet::CONTENT_TYPE)
            .await?;
        report.whales = whales.len();
        report.keys.push(k);
    }
    if !tape.is_empty() {
        let k = key(keys::RAW_WS);
        let enc = parquet::encode_tape(&tape)?;
        store
            .put_object(&k, enc.bytes, parquet::CONTENT_TYPE)
            .await?;
        report.tape = tape.len();
        report.keys.push(k);
    }
    Ok(report)
}

/// Where the feed's messages go.
pub trait MessageSink: Send + Sync {
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), String>> + Send;
}

/// The local sink: stores each message at once with [`store_message`].
pub struct StoreSink<S>(pub S);

impl<S: ObjectStore> MessageSink for StoreSink<S> {
    async fn send(&self, message: &Message) -> Result<(), String> {
        store_message(&self.0, &message.body)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The markets the feed follows: the active markets whose end date puts them in a WebSocket
/// tier (T2–T4) now ([`MarketStore::websocket_markets`]: range reads of those tiers' end-date
/// windows, not the whole active index), the same markets the T2–T4 ticks sample.
pub struct StoreMarkets<S>(pub S);

impl<S: MarketStore + 'static> MarketSource for StoreMarkets<S> {
    async fn live_markets(&self) -> Result<Vec<LiveMarket>, String> {
        let now = chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default();
        let markets = self
            .0
            .websocket_markets(now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(markets
            .into_iter()
            .map(|m| LiveMarket {
                condition_id: m.condition_id,
                tokens: [m.yes_token_id, m.no_token_id],
            })
            .collect())
    }
}

/// The feed's latest counters, for the status API.
pub type FeedStatus = Arc<Mutex<Option<SupervisorCounts>>>;

/// How long a message waits for more records before it is sent: the first trade of a message
/// reaches the queue at most this long (plus the timer's [`LINGER_CHECK`]) after it was heard,
/// under the 5 s receive-to-queue target.
pub const LINGER: Duration = Duration::from_secs(4);

/// How often the runner checks the message's linger and the tape's window.
pub const LINGER_CHECK: Duration = Duration::from_millis(250);

/// What the feed writes on local disk.
#[derive(Debug)]
pub struct FeedFiles {
    /// The tape's objects wait here until they are written (see [`crate::tape`]); one
    /// process per directory.
    pub tape_spool: PathBuf,
    /// With it, every WebSocket frame is also written there as received, one JSON string per
    /// line (the input of `polytape bench feed`).
    pub frames_out: Option<std::io::BufWriter<std::fs::File>>,
}

/// Runs the feed until `shutdown` turns true: nothing received is lost — the last messages,
/// the whale events still waiting and the tape's open window are written before it returns
/// (each retried until [`STOP_RETRY`] after the stop). The tape's objects wait on local disk
/// in `files.tape_spool` until they are written, and the loop waits for the tape's encoder
/// when its bounded channel is full (see [`crate::tape`]).
pub async fn run_feed<S, K>(
    store: S,
    sink: &K,
    client: PolymarketClient,
    config: SupervisorConfig,
    shutdown: watch::Receiver<bool>,
    status: FeedStatus,
    files: FeedFiles,
) -> SupervisorCounts
where
    S: MarketStore + HeartbeatStore + ObjectStore + Clone + 'static,
    K: MessageSink,
{
    let FeedFiles {
        tape_spool,
        mut frames_out,
    } = files;
    let (tx, mut rx) = mpsc::channel(polytape_feed::supervisor::EMIT_CAPACITY);
    let stop_seen = shutdown.clone();
    let run = now_ms();
    let mut tape = TapeWriter::new(store.clone(), TapeConfig::new(tape_spool), shutdown.clone());
    let supervisor = tokio::spawn(supervise(
        config,
        StoreMarkets(store.clone()),
        client,
        tx,
        shutdown,
    ));
    let mut packer = Packer::new(run, MAX_MESSAGE_BYTES, LINGER);
    // Once the feed is stopping, a message that cannot be delivered is retried only until
    // this much time has passed since the stop (ECS kills the task 30 s after SIGTERM).
    let mut stopping = Stopping {
        signal: stop_seen,
        since: None,
        lost_messages: 0,
    };
    let mut linger = tokio::time::interval(LINGER_CHECK);
    linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            emit = rx.recv() => {
                let Some(emit) = emit else { break };
                match emit {
                    Emit::Tape(r) => {
                        if let (Some(out), TapeKind::Frame) = (frames_out.as_mut(), r.kind) {
                            record_frame(out, &r.text);
                        }
                        tape.push(r).await;
                    }
                    Emit::Output(Output::Trade(t)) => {
                        for m in packer.push(&Record::Trade(*t), now_ms()) {
                            deliver(sink, &m, &mut stopping).await;
                        }
                    }
                    Emit::Output(Output::Whale(w)) => {
                        for m in packer.push(&Record::Whale(*w), now_ms()) {
                            deliver(sink, &m, &mut stopping).await;
                        }
                    }
                    Emit::Flow(f) => {
                        let object = FlowObject {
                            at: chrono::DateTime::from_timestamp_millis(f.at_ms).unwrap_or_default(),
                            markets: f.markets,
                        };
                        let bytes = serde_json::to_vec(&object).unwrap_or_default();
                        if let Err(e) = store.put_object(keys::LIVE_FLOW, bytes, "application/json").await {
                            tracing::warn!(error = %e, "feed: flow not written (ticks read the previous one)");
                        }
                    }
                    Emit::Heartbeats(round) => {
                        if let Err(e) = store.put_heartbeats(&round).await {
                            tracing::warn!(shards = round.len(), error = %e, "feed: heartbeat round not written");
                        }
                    }
                    Emit::Counts(c) => {
                        *status.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                    }
                }
            }
            _ = linger.tick() => {
                tape.tick(now_ms()).await;
                if let Some(m) = packer.due(now_ms()) {
                    deliver(sink, &m, &mut stopping).await;
                }
            }
        }
    }
    stopping.since.get_or_insert_with(tokio::time::Instant::now);
    // The tape's open object is closed and its uploads run first, so they and the last
    // message's send share the stop's time.
    let tape_done = tokio::spawn(tape.finish());
    if let Some(m) = packer.take() {
        deliver(sink, &m, &mut stopping).await;
    }
    let tape_report = tape_done.await.unwrap_or_default();
    if let Some(out) = frames_out.as_mut() {
        if let Err(e) = out.flush() {
            tracing::warn!(error = %e, "feed: recorded frames not flushed");
        }
    }
    let mut counts = supervisor.await.unwrap_or_default();
    counts.lost_messages = stopping.lost_messages;
    counts.tape_objects = tape_report.objects;
    counts.lost_tape_objects = tape_report.lost_objects;
    *status.lock().unwrap_or_else(|e| e.into_inner()) = Some(counts.clone());
    counts
}

/// One frame as a line of the recording: the frame text as a JSON string.
fn record_frame(out: &mut std::io::BufWriter<std::fs::File>, text: &str) {
    let line = serde_json::to_string(text).unwrap_or_default();
    if let Err(e) = writeln!(out, "{line}") {
        tracing::warn!(error = %e, "feed: frame not recorded");
    }
}

/// Whether (since when) the feed is stopping, and what had to be given up then.
struct Stopping {
    signal: watch::Receiver<bool>,
    since: Option<tokio::time::Instant>,
    lost_messages: u64,
}

impl Stopping {
    /// True once the stop has lasted [`STOP_RETRY`].
    fn out_of_time(&mut self) -> bool {
        if self.since.is_none() && *self.signal.borrow() {
            self.since = Some(tokio::time::Instant::now());
        }
        self.since.is_some_and(|t| t.elapsed() >= STOP_RETRY)
    }
}

/// Sends a message, retrying (1 s, 2 s, … 30 s apart) until it is accepted: a message holds
/// trades already de-duplicated, which nothing else would bring back. Only once the feed is
/// stopping is a message that still fails after [`STOP_RETRY`] given up — logged as an error
/// with its run and sequence and counted (`lost_messages`); of its records, only the trades
/// come back, through the next run's warm-up backfill.
async fn deliver<K: MessageSink>(sink: &K, m: &Message, stopping: &mut Stopping) {
    let mut wait = Duration::from_secs(1);
    loop {
        match sink.send(m).await {
            Ok(()) => return,
            Err(e) => {
                if stopping.out_of_time() {
                    stopping.lost_messages += 1;
                    tracing::error!(run = m.header.run, seq = m.header.seq, records = m.header.records, error = %e, "feed: stopping, message given up");
                    return;
                }
                tracing::error!(run = m.header.run, seq = m.header.seq, error = %e, "feed: message not sent; retrying");
                // Woken early by the stop, so the remaining retries fit its time.
                let mut signal = stopping.signal.clone();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = signal.wait_for(|s| *s), if stopping.since.is_none() => {}
                }
                let cap = if stopping.since.is_some() { 2 } else { 30 };
                wait = (wait * 2).min(Duration::from_secs(cap));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::live::TapeKind;

    /// Given trades at the reference scale (400 a minute, one every 150 ms) packed with the
    /// runner's linger and timer, then 1,000 trades make 37 messages, one every ~4.05 s (the
    /// count docs/costs.md uses), each one billed SQS request, and no trade waits past 4.25 s
    /// for its message to be handed to the queue (the 5 s target).
    #[test]
    fn at_400_trades_a_minute_1000_trades_make_37_messages_and_none_waits_over_4_25_s() {
        let mut packer = Packer::new(1, MAX_MESSAGE_BYTES, LINGER);
        let check_ms = LINGER_CHECK.as_millis() as i64;
        // A trade record's size in a message (measured: 645 B); the size does not matter here,
        // the clock closes the messages long before 250 KiB.
        let record = |seq: u64, at_ms: i64| {
            Record::Tape(TapeRecord {
                run: 1,
                shard: 0,
                seq,
                received_at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default(),
                kind: TapeKind::Frame,
                part: 0,
                parts: 1,
                text: "x".repeat(500),
            })
        };
        let (mut messages, mut worst_wait_ms, mut bytes) = (0u64, 0i64, 0usize);
        let mut waiting: Vec<i64> = Vec::new();
        let mut close = |m: Message, now: i64, waiting: &mut Vec<i64>| {
            messages += 1;
            bytes = bytes.max(m.body.len());
            worst_wait_ms = worst_wait_ms.max(waiting.iter().map(|t| now - t).max().unwrap_or(0));
            waiting.clear();
        };
        let end_ms = 1_000 * 150;
        let mut next_check = check_ms;
        for n in 0..1_000u64 {
            let at = n as i64 * 150;
            while next_check <= at {
                if let Some(m) = packer.due(next_check) {
                    close(m, next_check, &mut waiting);
                }
                next_check += check_ms;
            }
            for m in packer.push(&record(n, at), at) {
                close(m, at, &mut waiting);
            }
            waiting.push(at);
        }
        while !waiting.is_empty() {
            if let Some(m) = packer.due(next_check) {
                close(m, next_check, &mut waiting);
            }
            next_check += check_ms;
        }
        assert!(next_check > end_ms);
        assert_eq!(messages, 37);
        assert!(worst_wait_ms <= 4_250, "{worst_wait_ms} ms");
        assert!(bytes < 64 * 1024, "one billed SQS request each: {bytes} B");
    }
}
