//! The raw tape's writer: the feed process writes `raw_ws` itself, straight to the object
//! store (S3 in the cloud, the data directory locally), one object per [`TAPE_EVERY`] window
//! per run, instead of sending every frame through the queue.
//!
//! A window is a wall-clock slice of [`TAPE_EVERY`] (5 min, so an hour holds whole windows and
//! no object crosses an hour or a day); an object holds the records whose receive time falls
//! in its window and is written once the window has passed (or earlier, past
//! [`TAPE_MAX_BYTES`], so a burst cannot grow the process). Its key is
//! [`keys::live`]`(raw_ws, first record's time, run, 0, first record's sequence)`: derived from
//! its content, so a retried write overwrites its own object, and starting with the hour
//! compaction files it under. The writes happen on a task of their own, one object after the
//! other, retried with backoff until they succeed; the feed's loop only hands objects over.
//!
//! On shutdown ([`TapeWriter::finish`]) the open window is written at once and every object
//! still waiting is retried until [`STOP_RETRY`] after the stop, inside ECS's 30 s between
//! SIGTERM and SIGKILL. A process that dies without SIGTERM (a kill, an OOM, a host failure)
//! loses the tape of its open window (up to 5 minutes, plus any object still being retried),
//! never a trade: trades travel through the queue on their own.

use polytape_core::live::TapeRecord;
use polytape_store::{keys, parquet, ObjectStore};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How much tape one object holds: a wall-clock window of this length (it divides an hour).
pub const TAPE_EVERY: Duration = Duration::from_secs(300);

/// An open window is written early once its records' text passes this many bytes.
pub const TAPE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// How long, once the feed is stopping, a write is retried before it is given up (the rest of
/// ECS's 30 s goes to the queue's last message and the exit).
pub const STOP_RETRY: Duration = Duration::from_secs(20);

/// One tape object: its key and its records, in sequence order.
#[derive(Debug, Clone, PartialEq)]
pub struct TapeObject {
    pub key: String,
    pub records: Vec<TapeRecord>,
}

impl TapeObject {
    /// The object of `records` (not empty): keyed by the first record's run, time and
    /// sequence.
    pub fn new(records: Vec<TapeRecord>) -> Option<TapeObject> {
        let first = records.first()?;
        let key = keys::live(keys::RAW_WS, first.received_at, first.run, 0, first.seq);
        Some(TapeObject { key, records })
    }
}

/// What the writer did, reported when it finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapeReport {
    /// Objects written.
    pub objects: u64,
    /// Records in them.
    pub records: u64,
    /// Objects given up once the feed was stopping (logged with their key).
    pub lost_objects: u64,
}

/// The open window: records of one window, waiting for it to pass.
#[derive(Debug, Default)]
struct Window {
    /// The window's index (receive time in ms / window length), once a record is in.
    index: Option<i64>,
    records: Vec<TapeRecord>,
    bytes: usize,
}

/// Collects the feed's tape records into window objects and writes them over an
/// [`ObjectStore`]. The same writer runs in the Fargate task (S3) and in `polytape run`
/// (the data directory).
pub struct TapeWriter {
    every_ms: i64,
    max_bytes: usize,
    open: Window,
    objects: mpsc::UnboundedSender<TapeObject>,
    task: JoinHandle<TapeReport>,
}

impl TapeWriter {
    /// A writer to `store`, one object per `every` window (the key's run is the records'
    /// run: the feed process's start); `stop` turning true starts the shutdown clock of the
    /// retries ([`STOP_RETRY`]).
    pub fn new<S: ObjectStore + 'static>(
        store: S,
        every: Duration,
        max_bytes: usize,
        stop: watch::Receiver<bool>,
    ) -> TapeWriter {
        let (objects, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_objects(store, rx, stop));
        TapeWriter {
            every_ms: (every.as_millis() as i64).max(1),
            max_bytes,
            open: Window::default(),
            objects,
            task,
        }
    }

    /// Adds a record. A record of a later window closes the open one first; a record stamped
    /// a little earlier than the open window (clocks of shards and backfills interleave) stays
    /// in it.
    pub fn push(&mut self, record: TapeRecord) {
        let index = record
            .received_at
            .timestamp_millis()
            .div_euclid(self.every_ms);
        if self.open.index.is_some_and(|open| index > open) {
            self.close();
        }
        self.open.index.get_or_insert(index);
        self.open.bytes += record.text.len();
        self.open.records.push(record);
        if self.open.bytes >= self.max_bytes {
            self.close();
        }
    }

    /// Closes the open window once `now_ms` is past its end (the feed's timer calls this).
    pub fn tick(&mut self, now_ms: i64) {
        if self
            .open
            .index
            .is_some_and(|open| now_ms.div_euclid(self.every_ms) > open)
        {
            self.close();
        }
    }

    /// Hands the open window's records to the writing task as one object.
    fn close(&mut self) {
        let window = std::mem::take(&mut self.open);
        if let Some(object) = TapeObject::new(window.records) {
            // The task ends only after this sender is dropped, so the send cannot fail.
            let _ = self.objects.send(object);
        }
    }

    /// Writes the open window and waits for every object to be written or, once the stop has
    /// lasted [`STOP_RETRY`], given up.
    pub async fn finish(mut self) -> TapeReport {
        self.close();
        drop(self.objects);
        self.task.await.unwrap_or_default()
    }
}

/// The writing task: each object in turn, retried (1 s, 2 s, … 30 s apart; 2 s once
/// stopping) until it is written, or given up once the stop has lasted [`STOP_RETRY`].
async fn write_objects<S: ObjectStore>(
    store: S,
    mut objects: mpsc::UnboundedReceiver<TapeObject>,
    mut stop: watch::Receiver<bool>,
) -> TapeReport {
    let mut report = TapeReport::default();
    let mut stop_since: Option<tokio::time::Instant> = None;
    while let Some(object) = objects.recv().await {
        let mut wait = Duration::from_secs(1);
        loop {
            match write_object(&store, &object).await {
                Ok(()) => {
                    report.objects += 1;
                    report.records += object.records.len() as u64;
                    break;
                }
                Err(e) => {
                    if stop_since.is_none() && *stop.borrow() {
                        stop_since = Some(tokio::time::Instant::now());
                    }
                    if stop_since.is_some_and(|t| t.elapsed() >= STOP_RETRY) {
                        report.lost_objects += 1;
                        tracing::error!(key = %object.key, records = object.records.len(), error = %e, "feed: stopping, tape object given up");
                        break;
                    }
                    tracing::error!(key = %object.key, error = %e, "feed: tape object not written; retrying");
                    // Woken early by the stop, so the remaining retries fit its time. A stop
                    // signal whose sender is gone counts as a stop (no busy retries).
                    let mut gone = false;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        r = stop.wait_for(|s| *s), if stop_since.is_none() => gone = r.is_err(),
                    }
                    if gone {
                        stop_since = Some(tokio::time::Instant::now());
                    }
                    let cap = if stop_since.is_some() { 2 } else { 30 };
                    wait = (wait * 2).min(Duration::from_secs(cap));
                }
            }
        }
    }
    report
}

async fn write_object<S: ObjectStore>(store: &S, object: &TapeObject) -> Result<(), String> {
    let encoded = parquet::encode_tape(&object.records).map_err(|e| e.to_string())?;
    store
        .put_object(&object.key, encoded.bytes, parquet::CONTENT_TYPE)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::live::TapeKind;
    use polytape_store::{LocalStore, ObjectInfo};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn record(seq: u64, at: &str, text: &str) -> TapeRecord {
        TapeRecord {
            run: 7,
            shard: 1,
            seq,
            received_at: at.parse().unwrap(),
            kind: TapeKind::Frame,
            part: 0,
            parts: 1,
            text: text.to_string(),
        }
    }

    async fn read_back(store: &LocalStore) -> Vec<(String, Vec<TapeRecord>)> {
        let mut out = Vec::new();
        for key in store.list_objects("raw_ws/").await.unwrap() {
            let bytes = store.get_object(&key).await.unwrap().unwrap();
            out.push((key, parquet::decode_tape(&bytes).unwrap()));
        }
        out
    }

    /// A store whose first `fail` puts fail (S3 unreachable for a while).
    #[derive(Clone)]
    struct Flaky {
        inner: LocalStore,
        fail: Arc<AtomicUsize>,
    }

    impl ObjectStore for Flaky {
        async fn put_object(
            &self,
            key: &str,
            bytes: Vec<u8>,
            content_type: &str,
        ) -> polytape_store::Result<()> {
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                // A write that reached the store but whose answer was lost: the retry must
                // land on the same key.
                self.inner
                    .put_object(key, bytes, content_type)
                    .await
                    .unwrap();
                return Err(polytape_store::StoreError::Backend {
                    reason: "injected timeout".into(),
                    retryable: true,
                });
            }
            self.inner.put_object(key, bytes, content_type).await
        }
        async fn get_object(&self, key: &str) -> polytape_store::Result<Option<Vec<u8>>> {
            self.inner.get_object(key).await
        }
        async fn list_objects(&self, prefix: &str) -> polytape_store::Result<Vec<String>> {
            self.inner.list_objects(prefix).await
        }
        async fn list_objects_sized(
            &self,
            prefix: &str,
        ) -> polytape_store::Result<Vec<ObjectInfo>> {
            self.inner.list_objects_sized(prefix).await
        }
    }

    #[tokio::test]
    async fn given_records_across_an_hour_then_one_object_per_window_each_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let mut w = TapeWriter::new(store.clone(), TAPE_EVERY, TAPE_MAX_BYTES, stop);
        let r = [
            record(1, "2026-11-20T12:55:30Z", "a"),
            record(2, "2026-11-20T12:59:59.999Z", "b"),
            // Stamped a moment before the open window by another shard: stays in it.
            record(3, "2026-11-20T12:59:59.500Z", "c"),
            record(4, "2026-11-20T13:00:00Z", "d"),
            record(5, "2026-11-20T13:04:00Z", &"e".repeat(10_000)),
        ];
        for x in &r[..4] {
            w.push(x.clone());
        }
        // The 12:55 window closed when 13:00's first record came; 13:00's waits for its end.
        w.tick(
            "2026-11-20T13:04:59Z"
                .parse::<polytape_core::Ts>()
                .unwrap()
                .timestamp_millis(),
        );
        w.push(r[4].clone());
        w.tick(
            "2026-11-20T13:05:00.200Z"
                .parse::<polytape_core::Ts>()
                .unwrap()
                .timestamp_millis(),
        );
        let report = w.finish().await;
        assert_eq!(
            report,
            TapeReport {
                objects: 2,
                records: 5,
                lost_objects: 0
            }
        );
        assert_eq!(
            read_back(&store).await,
            vec![
                (
                    "raw_ws/dt=2026-11-20/20261120T12-7-0-1.parquet".to_string(),
                    r[..3].to_vec()
                ),
                (
                    "raw_ws/dt=2026-11-20/20261120T13-7-0-4.parquet".to_string(),
                    r[3..].to_vec()
                ),
            ],
            "no object crosses the hour; each is named for its hour, run and first sequence"
        );
    }

    #[tokio::test]
    async fn given_a_window_still_open_when_the_feed_stops_then_finish_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let mut w = TapeWriter::new(store.clone(), TAPE_EVERY, TAPE_MAX_BYTES, stop);
        w.push(record(1, "2026-11-20T12:01:00Z", "a"));
        w.push(record(2, "2026-11-20T12:02:00Z", "b"));
        w.tick(
            "2026-11-20T12:03:00Z"
                .parse::<polytape_core::Ts>()
                .unwrap()
                .timestamp_millis(),
        );
        assert!(
            read_back(&store).await.is_empty(),
            "the window is still open"
        );
        stop_tx.send(true).unwrap();
        let report = w.finish().await;
        assert_eq!(report.objects, 1);
        let got = read_back(&store).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), 2, "the open window's records were flushed");
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_failed_write_then_the_retry_overwrites_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::open(dir.path()).unwrap();
        let store = Flaky {
            inner: inner.clone(),
            fail: Arc::new(AtomicUsize::new(2)),
        };
        let (_stop_tx, stop) = watch::channel(false);
        let mut w = TapeWriter::new(store, TAPE_EVERY, TAPE_MAX_BYTES, stop);
        let r = vec![
            record(10, "2026-11-20T12:01:00Z", "a"),
            record(11, "2026-11-20T12:01:01Z", "b"),
        ];
        for x in &r {
            w.push(x.clone());
        }
        let report = w.finish().await;
        assert_eq!(report.objects, 1);
        assert_eq!(report.lost_objects, 0);
        assert_eq!(
            read_back(&inner).await,
            vec![(
                "raw_ws/dt=2026-11-20/20261120T12-7-0-10.parquet".to_string(),
                r
            )],
            "three attempts, one object"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn given_the_store_down_at_shutdown_then_the_object_is_given_up_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::open(dir.path()).unwrap();
        let store = Flaky {
            inner,
            fail: Arc::new(AtomicUsize::new(usize::MAX)),
        };
        let (stop_tx, stop) = watch::channel(false);
        let mut w = TapeWriter::new(store, TAPE_EVERY, TAPE_MAX_BYTES, stop);
        w.push(record(1, "2026-11-20T12:01:00Z", "a"));
        stop_tx.send(true).unwrap();
        let started = tokio::time::Instant::now();
        let report = w.finish().await;
        assert_eq!(report.lost_objects, 1);
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn given_a_burst_past_the_size_cap_then_the_window_is_cut_early() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let mut w = TapeWriter::new(store.clone(), TAPE_EVERY, 1_000, stop);
        for seq in 1..=5 {
            w.push(record(seq, "2026-11-20T12:01:00Z", &"x".repeat(400)));
        }
        let report = w.finish().await;
        assert_eq!((report.objects, report.records), (2, 5));
        let keys: Vec<String> = read_back(&store)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            vec![
                "raw_ws/dt=2026-11-20/20261120T12-7-0-1.parquet",
                "raw_ws/dt=2026-11-20/20261120T12-7-0-4.parquet"
            ]
        );
    }
}
