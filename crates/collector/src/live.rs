//! The live feed's two ends in the collector:
//!
//! * [`store_batch`], the trades consumer: feed messages (see `polytape_feed::queue`) in,
//!   their trades, whale events and raw tape out as Parquet, one file per table for the
//!   messages of a feed run and hour, named by exactly the messages it holds, so a message
//!   delivered again is found stored and never adds a copy. The trades Lambda runs it on each
//!   SQS batch; `polytape run` on each message of its local channel ([`store_message`]).
//! * [`run_feed`], the feed process: the shard supervisor over the markets state; its trades
//!   and whale events packed into messages for a [`MessageSink`]; its raw tape written
//!   straight to the object store by a [`TapeWriter`] (one `raw_ws` object per 5-minute
//!   window or 32 MiB, spooled on local disk first, not through the queue); its flow written to `live/flow.json` for the snapshot
//!   ticks; each heartbeat round (every shard's) to the Ops state in one write. ws-fargate
//!   runs it with an SQS sink and S3; `polytape run` with [`StoreSink`], which calls
//!   [`store_message`] itself, and the data directory. The tape writer is the same in both.

use crate::error::HandlerError;
use crate::tape::{TapeConfig, TapeWriter, STOP_RETRY};
use futures_util::stream::{self, StreamExt};
use polytape_core::live::{FlowObject, StoredTrade, TapeKind, TapeRecord, WhaleEvent};
use polytape_core::Ts;
use polytape_feed::queue::{self, Message, Packer, Record, MAX_MESSAGE_BYTES};
use polytape_feed::shard::now_ms;
use polytape_feed::supervisor::{
    supervise, Emit, LiveMarket, MarketSource, SupervisorConfig, SupervisorCounts,
};
use polytape_feed::Output;
use polytape_polymarket::PolymarketClient;
use polytape_store::{keys, parquet, HeartbeatStore, MarketStore, ObjectStore, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// The files holding its rows: written by this batch, or found already stored (named by
    /// an earlier delivery's file).
    pub keys: Vec<String>,
}

/// One message to store: a record of an SQS batch, or a message of `polytape run`'s channel.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The queue's id for it (reported back when it fails).
    pub id: &'a str,
    pub body: &'a str,
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its rows are stored (now, or by an earlier delivery).
    Stored(MessageReport),
    /// Not a feed message ([`HandlerError::Input`]'s text): no redelivery can mend it, but it
    /// goes back to the queue so that, after its receives, the dead-letter queue holds it.
    Poison(String),
    /// Its rows could not be stored: delivered again, it is stored then. Whether the store
    /// said a retry may succeed.
    Failed { error: String, retryable: bool },
}

/// The rows of one decoded message.
struct Decoded {
    /// Its place in the batch.
    index: usize,
    report: MessageReport,
    trades: Vec<StoredTrade>,
    whales: Vec<WhaleEvent>,
    tape: Vec<TapeRecord>,
}

impl Decoded {
    /// The message's time: its first record's (the tape's receive time, else the trade's),
    /// whose hour and day file it; `None` for a message with no rows.
    fn day(&self) -> Option<Ts> {
        self.tape
            .first()
            .map(|r| r.received_at)
            .or_else(|| self.trades.first().map(|t| t.received_at))
            .or_else(|| self.whales.first().map(|w| w.trade_ts))
    }

    fn rows(&self, table: &str) -> usize {
        match table {
            keys::TRADES => self.trades.len(),
            keys::WHALE_EVENTS => self.whales.len(),
            _ => self.tape.len(),
        }
    }
}

/// What storing a group did: the messages whose rows no file could hold (each with why), or
/// the listing or write that failed the whole group.
type GroupResult = Result<BTreeMap<u64, StoreError>, StoreError>;

/// Groups of one batch stored at once (each a few files).
const GROUPS_IN_FLIGHT: usize = 4;

/// Stores a batch of feed messages: one file per table for all the messages of a feed run
/// and hour, named by exactly the messages it holds ([`keys::live_set`]), instead of a file
/// per message — a batch of the trades function holds up to a few minutes of messages.
///
/// **Once, whatever the redeliveries.** A batch is not a fixed unit: SQS may deliver a
/// message again (after a failure, or a copy of its own) in a batch with other messages. So
/// before it writes a table's file for a run and hour, the batch lists that table's files of
/// the run and hour and writes only the rows of messages no file names yet: a message an
/// earlier delivery stored is reported stored, and its rows are not written twice. Each table
/// is decided on its own (an earlier delivery that wrote `trades` and failed before
/// `whale_events` left only the former). A delivery after an earlier one ended sees every
/// file it wrote: the queue's visibility timeout outlasts the batching window and the
/// function's timeout (template.yaml). What it cannot see is a copy of the message stored at
/// the same instant by another batch — SQS's rare duplicate copies, or the feed sending again
/// a message whose reply it lost, both read by two batches that list before either writes:
/// then the message is stored twice; compaction drops the copy by `trade_key`, and a query
/// over hours not compacted yet dedupes on it (docs/data.md), as for the backfill's repeats.
///
/// A body that is not a feed message is [`Outcome::Poison`]; a bad record inside a good
/// message is skipped and counted ([`MessageReport::bad_records`]); rows a table cannot hold
/// fail only their message; a storage failure fails every message of its run and hour
/// ([`Outcome::Failed`]), whose next delivery stores what is still missing. Outcomes come
/// back in the batch's order.
pub async fn store_batch<S: ObjectStore>(store: &S, batch: &[Delivery<'_>]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    // (hour, run) → the messages, by sequence; a copy of a message in the same batch is
    // stored once and reported like it.
    let mut groups: BTreeMap<(String, i64), BTreeMap<u64, Decoded>> = BTreeMap::new();
    let mut copies: Vec<(usize, i64, u64)> = Vec::new();
    for (index, delivery) in batch.iter().enumerate() {
        let decoded = match decode(index, delivery.body) {
            Ok(d) => d,
            Err(why) => {
                outcomes[index] = Some(Outcome::Poison(why));
                continue;
            }
        };
        let Some(day) = decoded.day() else {
            outcomes[index] = Some(Outcome::Stored(decoded.report));
            continue;
        };
        let (run, seq) = (decoded.report.run, decoded.report.seq);
        let group = groups.entry((keys::hour_label(day), run)).or_default();
        match group.entry(seq) {
            std::collections::btree_map::Entry::Occupied(_) => copies.push((index, run, seq)),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(decoded);
            }
        }
    }
    let stored: Vec<(Vec<Decoded>, GroupResult)> = stream::iter(
        groups
            .into_values()
            .map(|g| g.into_values().collect::<Vec<_>>()),
    )
    .map(|mut messages| async move {
        let result = store_group(store, &mut messages).await;
        (messages, result)
    })
    .buffer_unordered(GROUPS_IN_FLIGHT)
    .collect()
    .await;
    let mut by_message: BTreeMap<(i64, u64), Outcome> = BTreeMap::new();
    for (messages, result) in stored {
        for m in messages {
            let failed = match &result {
                Ok(unencodable) => unencodable.get(&m.report.seq),
                Err(e) => Some(e),
            };
            let outcome = match failed {
                None => Outcome::Stored(m.report.clone()),
                Some(e) => Outcome::Failed {
                    error: e.to_string(),
                    retryable: e.is_retryable(),
                },
            };
            by_message.insert((m.report.run, m.report.seq), outcome.clone());
            outcomes[m.index] = Some(outcome);
        }
    }
    for (index, run, seq) in copies {
        outcomes[index] = by_message.get(&(run, seq)).cloned();
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Failed {
                error: "not handled".into(),
                retryable: true,
            })
        })
        .collect()
}

/// Stores one feed message on its own ([`store_batch`] with a batch of one): `polytape
/// run`'s consumer, which hands each message over as it is sent.
pub async fn store_message<S: ObjectStore>(
    store: &S,
    body: &str,
) -> Result<MessageReport, HandlerError> {
    let batch = [Delivery { id: "", body }];
    match store_batch(store, &batch).await.pop() {
        Some(Outcome::Stored(report)) => Ok(report),
        Some(Outcome::Poison(why)) => Err(HandlerError::Input(why)),
        Some(Outcome::Failed { error, retryable }) => {
            Err(HandlerError::Store(StoreError::Backend {
                reason: error,
                retryable,
            }))
        }
        None => Err(HandlerError::Abandoned("no outcome".into())),
    }
}

/// A body's header and records, the bad records counted and logged.
fn decode(index: usize, body: &str) -> Result<Decoded, String> {
    let (header, records) = queue::decode(body)?;
    let mut d = Decoded {
        index,
        report: MessageReport {
            run: header.run,
            seq: header.seq,
            ..MessageReport::default()
        },
        trades: Vec::new(),
        whales: Vec::new(),
        tape: Vec::new(),
    };
    for record in records {
        match record {
            Ok(Record::Trade(t)) => d.trades.push(t),
            Ok(Record::Whale(w)) => d.whales.push(w),
            Ok(Record::Tape(r)) => d.tape.push(r),
            Err(e) => {
                d.report.bad_records += 1;
                tracing::warn!(run = header.run, seq = header.seq, error = %e, "feed message: record skipped");
            }
        }
    }
    d.report.trades = d.trades.len();
    d.report.whales = d.whales.len();
    d.report.tape = d.tape.len();
    Ok(d)
}

/// Writes the rows of `messages` (one run and hour, by sequence) that no stored file holds
/// yet: per table, a listing of the run's files of the hour, then one file for the rest.
/// Rows that cannot be encoded (a value the table cannot hold) fail only their own message:
/// the others are then written one file each, and the failed ones come back with why.
/// A listing or a write that fails fails the group.
async fn store_group<S: ObjectStore>(store: &S, messages: &mut [Decoded]) -> GroupResult {
    let mut unencodable: BTreeMap<u64, StoreError> = BTreeMap::new();
    let Some(day) = messages.first().and_then(Decoded::day) else {
        return Ok(unencodable);
    };
    let run = messages[0].report.run;
    for table in [keys::TRADES, keys::WHALE_EVENTS, keys::RAW_WS] {
        if messages.iter().all(|m| m.rows(table) == 0) {
            continue;
        }
        // What earlier deliveries stored: the files of this run and hour, by their names.
        // (The feed's own tape files share `raw_ws`'s names, but a feed that writes its tape
        // sends none in its messages: `run_feed` packs trades and whale events only.)
        let listed = store
            .list_objects(&keys::live_run_prefix(table, day, run))
            .await?;
        let mut held: BTreeMap<u64, String> = BTreeMap::new();
        for key in listed {
            if let Some((r, 0, seqs)) = keys::live_members(&key) {
                if r == run {
                    for seq in seqs {
                        held.insert(seq, key.clone());
                    }
                }
            }
        }
        let mut missing = Vec::new();
        for m in messages.iter_mut().filter(|m| m.rows(table) > 0) {
            match held.get(&m.report.seq) {
                Some(key) => m.report.keys.push(key.clone()),
                None if unencodable.contains_key(&m.report.seq) => {}
                None => missing.push(m.report.seq),
            }
        }
        for chunk in keys::live_chunks(&missing) {
            let files: Vec<(&[u64], Vec<u8>)> = match encode_rows(table, messages, chunk) {
                Ok(bytes) => vec![(chunk, bytes)],
                Err(e) if e.is_retryable() => return Err(e),
                // One message's rows spoil the file: each message on its own, so that only
                // the spoilt ones fail (and reach the dead-letter queue after their receives).
                Err(_) => chunk
                    .iter()
                    .filter_map(|seq| {
                        let one = std::slice::from_ref(seq);
                        match encode_rows(table, messages, one) {
                            Ok(bytes) => Some((one, bytes)),
                            Err(e) => {
                                tracing::warn!(run, seq, table, error = %e, "feed message: rows that cannot be stored");
                                unencodable.insert(*seq, e);
                                None
                            }
                        }
                    })
                    .collect(),
            };
            for (seqs, bytes) in files {
                let key = keys::live_set(table, day, run, 0, seqs);
                store.put_object(&key, bytes, parquet::CONTENT_TYPE).await?;
                for m in messages.iter_mut() {
                    if seqs.binary_search(&m.report.seq).is_ok() {
                        m.report.keys.push(key.clone());
                    }
                }
            }
        }
    }
    Ok(unencodable)
}

/// The Parquet file of `table` holding the rows of the messages `seqs`, in their order.
fn encode_rows(table: &str, messages: &[Decoded], seqs: &[u64]) -> Result<Vec<u8>, StoreError> {
    let chosen = messages
        .iter()
        .filter(|m| seqs.binary_search(&m.report.seq).is_ok());
    Ok(match table {
        keys::TRADES => {
            let rows: Vec<StoredTrade> = chosen.flat_map(|m| m.trades.iter().cloned()).collect();
            parquet::encode_trades(&rows)?.bytes
        }
        keys::WHALE_EVENTS => {
            let rows: Vec<WhaleEvent> = chosen.flat_map(|m| m.whales.iter().cloned()).collect();
            parquet::encode_whale_events(&rows)?.bytes
        }
        _ => {
            let rows: Vec<TapeRecord> = chosen.flat_map(|m| m.tape.iter().cloned()).collect();
            parquet::encode_tape(&rows)?.bytes
        }
    })
}

/// Where the feed's messages go.
pub trait MessageSink: Send + Sync {
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), String>> + Send;
}

/// The local sink: stores each message at once with [`store_message`] (a batch of one).
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
