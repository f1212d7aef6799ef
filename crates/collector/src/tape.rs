//! The raw tape's writer: the feed process writes `raw_ws` itself, straight to the object
//! store (S3 in the cloud, the data directory locally), one object per [`TAPE_EVERY`] window
//! per run, instead of sending every frame through the queue.
//!
//! A window is a wall-clock slice of [`TAPE_EVERY`] (5 min, so an hour holds whole windows and
//! no object crosses an hour or a day); an object holds the records whose receive time falls
//! in its window and is closed once the window has passed (or earlier, once its file passes
//! [`TAPE_MAX_BYTES`]). Its key is [`keys::live`]`(raw_ws, first record's time, run, 0, first
//! record's sequence)`: derived from its content, so a retried write overwrites its own
//! object, and starting with the hour compaction files it under.
//!
//! # Memory: records go to disk as they arrive
//! Nothing holds a window in memory, whatever the rate:
//! * [`TapeWriter::push`] gathers records into a batch of about [`TAPE_BATCH_BYTES`] and hands
//!   it over a bounded channel ([`QUEUED_BATCHES`]) to the *encoder*, a thread of its own
//!   (encoding is CPU work that must not hold up a runtime worker). When the channel is full
//!   `push` waits: backpressure, not loss — the encoder runs far faster than the feed's rate,
//!   so a wait means the disk stalled, and the tape is the feed's record of what it heard.
//! * The encoder appends each batch to the open object's spool file
//!   (`<spool>/<key, '/' as '+'>.part`) with [`parquet::TapeFileWriter`]: the `raw_ws` file
//!   [`parquet::encode_tape`] would make, written a row group at a time once the group holds
//!   [`TAPE_GROUP_BYTES`]. When the object closes its footer is written and the file renamed
//!   `….ready`.
//! * The *uploader*, a task, takes the ready files one after the other: reads one (at most
//!   [`TAPE_MAX_BYTES`] and a row group), puts it, deletes it; retried with backoff until it
//!   succeeds. A slow or unreachable store makes files wait on disk, not in memory.
//!
//! What the writer holds is then the batch being gathered, the queued batches and one row
//! group ([`TapeConfig::memory_bound`], about 6 MiB), plus the file being uploaded.
//!
//! # Stopping, and a process that died
//! On shutdown ([`TapeWriter::finish`]) the open object is closed at once and every ready file
//! is retried until [`STOP_RETRY`] after the stop, inside ECS's 30 s between SIGTERM and
//! SIGKILL; a file given up stays in the spool directory. At its start the writer uploads the
//! ready files a previous process left in its spool directory (`polytape run` after a crash or
//! a store outage: `<data>/.spool/tape`), and deletes its `.part` files: an unfinished Parquet
//! file has no footer, and rebuilding one is not worth it for what a crash costs anyway — the
//! tape of the open object (at most one window or one [`TAPE_MAX_BYTES`] file), never a trade:
//! trades travel through the queue on their own. One process per spool directory. (The
//! Fargate task spools to a temporary directory, which does not outlive it.)

use polytape_core::live::TapeRecord;
use polytape_store::parquet::{self, TapeFileWriter};
use polytape_store::{keys, ObjectStore};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How much tape one object holds: a wall-clock window of this length (it divides an hour).
pub const TAPE_EVERY: Duration = Duration::from_secs(300);

/// An open object is closed early once its file passes this many bytes (compressed, as
/// stored): the most one upload reads into memory.
pub const TAPE_MAX_BYTES: usize = 32 * 1024 * 1024;

/// A row group is written to the spool file once it holds this many bytes in memory: what the
/// open object holds.
pub const TAPE_GROUP_BYTES: usize = 4 * 1024 * 1024;

/// Records travel to the encoder in batches of about this many bytes.
pub const TAPE_BATCH_BYTES: usize = 256 * 1024;

/// Batches that may wait for the encoder; with the channel full, [`TapeWriter::push`] waits.
pub const QUEUED_BATCHES: usize = 4;

/// How long, once the feed is stopping, a write is retried before it is given up (the rest of
/// ECS's 30 s goes to the queue's last message and the exit).
pub const STOP_RETRY: Duration = Duration::from_secs(20);

/// A spool file whose object is still being written.
const PART: &str = ".part";
/// A spool file whose object is closed, waiting for its upload.
const READY: &str = ".ready";

/// How the tape is written: where its files wait, its window and its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeConfig {
    /// The spool directory (created if missing): open and ready objects, one process per
    /// directory.
    pub spool: PathBuf,
    /// The window an object covers ([`TAPE_EVERY`]).
    pub every: Duration,
    /// An object's file is closed once it passes this many bytes ([`TAPE_MAX_BYTES`]).
    pub max_bytes: usize,
    /// A row group's bytes in memory before it goes to the file ([`TAPE_GROUP_BYTES`]).
    pub group_bytes: usize,
    /// A batch's bytes before it goes to the encoder ([`TAPE_BATCH_BYTES`]).
    pub batch_bytes: usize,
}

impl TapeConfig {
    /// The feed's settings, spooling in `spool`.
    pub fn new(spool: impl Into<PathBuf>) -> TapeConfig {
        TapeConfig {
            spool: spool.into(),
            every: TAPE_EVERY,
            max_bytes: TAPE_MAX_BYTES,
            group_bytes: TAPE_GROUP_BYTES,
            batch_bytes: TAPE_BATCH_BYTES,
        }
    }

    /// The most [`TapeWriter::buffered_bytes`] can reach with records of at most a batch: the
    /// batch being gathered, the queued ones and the one being encoded, and a row group that
    /// took one more batch before it was written out.
    pub fn memory_bound(&self) -> usize {
        self.batch_bytes * (QUEUED_BATCHES + 4) + self.group_bytes
    }
}

/// What the writer did, reported when it finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapeReport {
    /// Objects written (with those a previous process left in the spool).
    pub objects: u64,
    /// Records in them.
    pub records: u64,
    /// Objects given up once the feed was stopping (left in the spool directory), unreadable,
    /// or not spooled for a disk error (each logged with its key).
    pub lost_objects: u64,
}

/// The record's memory, roughly: its text and the struct.
fn record_bytes(record: &TapeRecord) -> usize {
    record.text.len() + std::mem::size_of::<TapeRecord>()
}

/// What the writer hands the encoder.
enum Command {
    /// Records of the open window, in order, and their [`record_bytes`].
    Records(Vec<TapeRecord>, usize),
    /// The window has passed: close the open object.
    Close,
    /// Answer once everything before has been handled (tests).
    #[cfg(test)]
    Sync(tokio::sync::oneshot::Sender<()>),
    /// Say so on `entered`, then stall until `until` answers or is dropped: a disk that does
    /// not answer (tests).
    #[cfg(test)]
    Stall {
        entered: tokio::sync::oneshot::Sender<()>,
        until: std::sync::mpsc::Receiver<()>,
    },
}

/// What the encoder hands the uploader.
enum Spooled {
    /// A closed object's file, to upload.
    Ready(Ready),
    /// An object that could not be spooled (already logged).
    Lost,
}

/// A closed object waiting in the spool directory.
struct Ready {
    key: String,
    path: PathBuf,
    /// Its records, when known (a file a previous process left: read from its footer).
    records: Option<u64>,
}

/// The bytes between the writer and the encoder's file, for [`TapeWriter::buffered_bytes`].
#[derive(Debug, Default)]
struct Held {
    /// Handed to the channel and not yet written by the encoder.
    queued: AtomicUsize,
    /// The open object's row group at its most ([`TapeFileWriter::peak_bytes`]).
    encoder: AtomicUsize,
}

/// Collects the feed's tape records into window objects and writes them over an
/// [`ObjectStore`], through a spool directory on local disk. The same writer runs in the
/// Fargate task (S3) and in `polytape run` (the data directory).
pub struct TapeWriter {
    every_ms: i64,
    batch_bytes: usize,
    /// The open window's index (receive time in ms / window length), once a record is in.
    open: Option<i64>,
    /// The batch being gathered, and its [`record_bytes`].
    batch: Vec<TapeRecord>,
    batch_bytes_held: usize,
    commands: mpsc::Sender<Command>,
    held: Arc<Held>,
    /// The encoder is gone (it cannot start, or panicked): said once.
    encoder_gone: bool,
    task: JoinHandle<TapeReport>,
}

impl TapeWriter {
    /// A writer to `store` as `config` says (the key's run is the records' run: the feed
    /// process's start); `stop` turning true starts the shutdown clock of the retries
    /// ([`STOP_RETRY`]). Ready files left in `config.spool` are uploaded first. A spool that
    /// cannot be written loses the tape (logged, counted in [`TapeReport::lost_objects`]),
    /// never the feed.
    pub fn new<S: ObjectStore + 'static>(
        store: S,
        config: TapeConfig,
        stop: watch::Receiver<bool>,
    ) -> TapeWriter {
        let (commands, rx) = mpsc::channel(QUEUED_BATCHES);
        let (spooled, spooled_rx) = mpsc::unbounded_channel();
        let held = Arc::new(Held::default());
        let encoder = Encoder {
            spool: config.spool.clone(),
            max_bytes: config.max_bytes,
            group_bytes: config.group_bytes,
            open: None,
            failed: false,
            spooled,
            held: Arc::clone(&held),
        };
        let started = std::thread::Builder::new()
            .name("tape-encoder".into())
            .spawn(move || encoder.run(rx));
        if let Err(e) = started {
            // `rx` and the uploader's sender went with the closure: pushes find the channel
            // closed and the uploader ends at once.
            tracing::error!(error = %e, "feed: tape encoder not started; the tape is not written");
        }
        let task = tokio::spawn(upload(store, spooled_rx, stop));
        TapeWriter {
            every_ms: (config.every.as_millis() as i64).max(1),
            batch_bytes: config.batch_bytes.max(1),
            open: None,
            batch: Vec::new(),
            batch_bytes_held: 0,
            commands,
            held,
            encoder_gone: false,
            task,
        }
    }

    /// Adds a record. A record of a later window closes the open one first; a record stamped
    /// a little earlier than the open window (clocks of shards and backfills interleave) stays
    /// in it. Waits while the encoder's channel is full.
    pub async fn push(&mut self, record: TapeRecord) {
        let index = record
            .received_at
            .timestamp_millis()
            .div_euclid(self.every_ms);
        if self.open.is_some_and(|open| index > open) {
            self.close().await;
        }
        self.open.get_or_insert(index);
        self.batch_bytes_held += record_bytes(&record);
        self.batch.push(record);
        if self.batch_bytes_held >= self.batch_bytes {
            self.hand_over().await;
        }
    }

    /// Closes the open window once `now_ms` is past its end (the feed's timer calls this).
    pub async fn tick(&mut self, now_ms: i64) {
        if self
            .open
            .is_some_and(|open| now_ms.div_euclid(self.every_ms) > open)
        {
            self.close().await;
        }
    }

    /// The bytes of tape the writer holds in memory: the batch being gathered, the batches
    /// handed to the encoder and not yet written, and the open row group (at its most so
    /// far). At most [`TapeConfig::memory_bound`], whatever the rate or the window's length.
    pub fn buffered_bytes(&self) -> usize {
        self.batch_bytes_held
            + self.held.queued.load(Ordering::Relaxed)
            + self.held.encoder.load(Ordering::Relaxed)
    }

    /// Hands the gathered batch to the encoder.
    async fn hand_over(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let capacity = self.batch.len();
        let records = std::mem::replace(&mut self.batch, Vec::with_capacity(capacity));
        let bytes = std::mem::take(&mut self.batch_bytes_held);
        self.held.queued.fetch_add(bytes, Ordering::Relaxed);
        if !self.send(Command::Records(records, bytes)).await {
            self.held.queued.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Hands the gathered batch over and closes the open object.
    async fn close(&mut self) {
        self.hand_over().await;
        self.send(Command::Close).await;
        self.open = None;
    }

    /// Sends `command`, waiting while the channel is full; false when the encoder is gone.
    async fn send(&mut self, command: Command) -> bool {
        if self.commands.send(command).await.is_ok() {
            return true;
        }
        if !self.encoder_gone {
            self.encoder_gone = true;
            tracing::error!("feed: the tape encoder is gone; tape records are dropped");
        }
        false
    }

    /// Waits until the encoder has handled everything handed to it (tests).
    #[cfg(test)]
    async fn sync(&mut self) {
        self.hand_over().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.send(Command::Sync(tx)).await {
            let _ = rx.await;
        }
    }

    /// Closes the open object and waits for every ready file to be written or, once the stop
    /// has lasted [`STOP_RETRY`], given up.
    pub async fn finish(mut self) -> TapeReport {
        self.close().await;
        // The encoder ends once this sender is gone, closing nothing more; the uploader once
        // the encoder has ended and every file it handed over is done with.
        drop(self.commands);
        self.task.await.unwrap_or_default()
    }
}

/// The open object: its key and spool file.
struct OpenObject {
    key: String,
    part: PathBuf,
    file: TapeFileWriter<File>,
}

/// The encoder thread's state: the open object and the way to the uploader.
struct Encoder {
    spool: PathBuf,
    max_bytes: usize,
    group_bytes: usize,
    open: Option<OpenObject>,
    /// The open object could not be spooled: its records are dropped until it closes.
    failed: bool,
    spooled: mpsc::UnboundedSender<Spooled>,
    held: Arc<Held>,
}

impl Encoder {
    /// Recovers the spool, then handles the writer's commands until it is gone.
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        self.recover();
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Records(records, bytes) => {
                    self.write(&records);
                    drop(records);
                    self.held.queued.fetch_sub(bytes, Ordering::Relaxed);
                }
                Command::Close => self.close(),
                #[cfg(test)]
                Command::Sync(done) => {
                    let _ = done.send(());
                }
                #[cfg(test)]
                Command::Stall { entered, until } => {
                    let _ = entered.send(());
                    let _ = until.recv();
                }
            }
        }
        self.close();
    }

    /// Hands the uploader the ready files a previous process left, oldest key first, and
    /// deletes its unfinished ones (no footer: not readable).
    fn recover(&self) {
        if let Err(e) = std::fs::create_dir_all(&self.spool) {
            tracing::error!(spool = %self.spool.display(), error = %e, "feed: tape spool directory not created");
            return;
        }
        let mut names: Vec<String> = match std::fs::read_dir(&self.spool) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect(),
            Err(e) => {
                tracing::error!(spool = %self.spool.display(), error = %e, "feed: tape spool directory not read");
                return;
            }
        };
        names.sort();
        for name in names {
            let path = self.spool.join(&name);
            if let Some(stem) = name.strip_suffix(READY) {
                tracing::info!(key = %key_of(stem), "feed: tape object left by a previous process; uploading it");
                let ready = Ready {
                    key: key_of(stem),
                    path,
                    records: None,
                };
                let _ = self.spooled.send(Spooled::Ready(ready));
            } else if let Some(stem) = name.strip_suffix(PART) {
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                tracing::warn!(key = %key_of(stem), bytes, "feed: unfinished tape object left by a previous process; lost");
                remove(&path);
            }
        }
    }

    /// Appends `records` (one window's) to the open object, opening one keyed by the first;
    /// closes it once its file passes the cap.
    fn write(&mut self, records: &[TapeRecord]) {
        let Some(first) = records.first() else {
            return;
        };
        if self.failed {
            return;
        }
        let open = match self.open.take() {
            Some(open) => open,
            None => {
                let key = keys::live(keys::RAW_WS, first.received_at, first.run, 0, first.seq);
                let part = self.spool.join(format!("{}{PART}", file_stem(&key)));
                let created = std::fs::create_dir_all(&self.spool)
                    .and_then(|()| File::create(&part))
                    .map_err(|e| e.to_string())
                    .and_then(|f| {
                        TapeFileWriter::new(f, self.group_bytes).map_err(|e| e.to_string())
                    });
                match created {
                    Ok(file) => OpenObject { key, part, file },
                    Err(e) => {
                        self.fail(&key, &part, &e);
                        return;
                    }
                }
            }
        };
        let open = self.open.insert(open);
        if let Err(e) = open.file.write(records) {
            let (key, part) = (open.key.clone(), open.part.clone());
            self.open = None;
            self.fail(&key, &part, &e.to_string());
            return;
        }
        self.held
            .encoder
            .store(open.file.peak_bytes(), Ordering::Relaxed);
        if open.file.size() >= self.max_bytes {
            self.close();
        }
    }

    /// Gives up the open object (a disk error): its records until the window closes are lost.
    fn fail(&mut self, key: &str, part: &Path, error: &str) {
        tracing::error!(
            key,
            error,
            "feed: tape object not spooled; its records are lost"
        );
        remove(part);
        self.failed = true;
        self.held.encoder.store(0, Ordering::Relaxed);
        let _ = self.spooled.send(Spooled::Lost);
    }

    /// Closes the open object: footer written, file renamed ready, handed to the uploader.
    fn close(&mut self) {
        self.failed = false;
        let Some(open) = self.open.take() else {
            return;
        };
        self.held.encoder.store(0, Ordering::Relaxed);
        let records = open.file.rows();
        let path = self.spool.join(format!("{}{READY}", file_stem(&open.key)));
        let finished = open
            .file
            .finish()
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::rename(&open.part, &path).map_err(|e| e.to_string()));
        match finished {
            Ok(()) => {
                let ready = Ready {
                    key: open.key,
                    path,
                    records: Some(records),
                };
                let _ = self.spooled.send(Spooled::Ready(ready));
            }
            Err(e) => {
                tracing::error!(key = %open.key, records, error = %e, "feed: tape object not closed; its records are lost");
                remove(&open.part);
                let _ = self.spooled.send(Spooled::Lost);
            }
        }
    }
}

/// A key as a spool file's name (live keys hold no `+`).
fn file_stem(key: &str) -> String {
    key.replace('/', "+")
}

/// The key of a spool file's name.
fn key_of(stem: &str) -> String {
    stem.replace('+', "/")
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "feed: tape spool file not deleted");
        }
    }
}

/// Why an upload attempt failed.
enum UploadError {
    /// The file cannot be read: retrying will not help.
    Unreadable(String),
    /// The store refused or did not answer: retry.
    Store(String),
}

/// The uploading task: each ready file in turn, retried (1 s, 2 s, … 30 s apart; 2 s once
/// stopping) until it is written, or given up once the stop has lasted [`STOP_RETRY`].
async fn upload<S: ObjectStore>(
    store: S,
    mut spooled: mpsc::UnboundedReceiver<Spooled>,
    mut stop: watch::Receiver<bool>,
) -> TapeReport {
    let mut report = TapeReport::default();
    let mut stop_since: Option<tokio::time::Instant> = None;
    while let Some(next) = spooled.recv().await {
        let ready = match next {
            Spooled::Ready(ready) => ready,
            Spooled::Lost => {
                report.lost_objects += 1;
                continue;
            }
        };
        if stop_since.is_some_and(|t| t.elapsed() >= STOP_RETRY) {
            // The stop's time is over: not even one attempt (it could outlast the process).
            report.lost_objects += 1;
            tracing::error!(key = %ready.key, path = %ready.path.display(), "feed: stopping, tape object given up untried (its file stays in the spool)");
            continue;
        }
        let mut wait = Duration::from_secs(1);
        loop {
            match attempt(&store, &ready, &mut stop, &mut stop_since).await {
                Ok(records) => {
                    report.objects += 1;
                    report.records += records;
                    remove(&ready.path);
                    break;
                }
                Err(UploadError::Unreadable(e)) => {
                    report.lost_objects += 1;
                    tracing::error!(key = %ready.key, path = %ready.path.display(), error = %e, "feed: tape spool file unreadable; object lost");
                    break;
                }
                Err(UploadError::Store(e)) => {
                    if stop_since.is_none() && *stop.borrow() {
                        stop_since = Some(tokio::time::Instant::now());
                    }
                    if stop_since.is_some_and(|t| t.elapsed() >= STOP_RETRY) {
                        report.lost_objects += 1;
                        tracing::error!(key = %ready.key, path = %ready.path.display(), error = %e, "feed: stopping, tape object given up (its file stays in the spool)");
                        break;
                    }
                    tracing::error!(key = %ready.key, error = %e, "feed: tape object not written; retrying");
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

/// One attempt, noticing the stop while it runs: once stopping, an attempt that has not ended
/// when the stop has lasted [`STOP_RETRY`] is abandoned (a store that hangs instead of failing
/// cannot hold the stop past its time).
async fn attempt<S: ObjectStore>(
    store: &S,
    ready: &Ready,
    stop: &mut watch::Receiver<bool>,
    stop_since: &mut Option<tokio::time::Instant>,
) -> Result<u64, UploadError> {
    let put = upload_one(store, ready);
    tokio::pin!(put);
    let since = match *stop_since {
        Some(since) => since,
        None => {
            tokio::select! {
                r = &mut put => return r,
                // A stop signal whose sender is gone counts as a stop.
                _ = stop.wait_for(|s| *s) => {}
            }
            *stop_since.insert(tokio::time::Instant::now())
        }
    };
    let left = STOP_RETRY.saturating_sub(since.elapsed());
    match tokio::time::timeout(left, put).await {
        Ok(r) => r,
        Err(_) => Err(UploadError::Store(
            "no answer before the stop's time ran out".into(),
        )),
    }
}

/// One attempt: the file read (off the runtime's workers) and put; its records.
async fn upload_one<S: ObjectStore>(store: &S, ready: &Ready) -> Result<u64, UploadError> {
    let records = match ready.records {
        Some(n) => n,
        None => {
            let path = ready.path.clone();
            tokio::task::spawn_blocking(move || file_row_count(&path))
                .await
                .map_err(|e| UploadError::Unreadable(e.to_string()))??
        }
    };
    std::fs::File::open(&ready.path).map_err(|e| UploadError::Unreadable(e.to_string()))?;
    // Streamed from the spool file: a 32 MiB object is never held in memory (glibc would keep
    // the freed buffer in its arenas: 136 MiB peak RSS at 20,000 events/s, BENCHMARKS.md).
    store
        .put_file(&ready.key, &ready.path, parquet::CONTENT_TYPE)
        .await
        .map_err(|e| UploadError::Store(e.to_string()))?;
    Ok(records)
}

/// The rows of a spooled Parquet file, from its footer (the file is not read whole).
fn file_row_count(path: &std::path::Path) -> Result<u64, UploadError> {
    use std::io::{Read, Seek, SeekFrom};
    let unreadable = |e: String| UploadError::Unreadable(e);
    let mut f = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let size = f.metadata().map_err(|e| unreadable(e.to_string()))?.len();
    let mut tail_len = size.min(64 * 1024);
    loop {
        f.seek(SeekFrom::Start(size - tail_len))
            .map_err(|e| unreadable(e.to_string()))?;
        let mut tail = vec![0u8; tail_len as usize];
        f.read_exact(&mut tail)
            .map_err(|e| unreadable(e.to_string()))?;
        let need = parquet::json::footer_len(&tail).map_err(|e| unreadable(e.to_string()))?;
        if need <= tail_len || tail_len == size {
            return parquet::json::row_count_from_tail(size, &tail)
                .map_err(|e| unreadable(e.to_string()));
        }
        tail_len = need.min(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::live::TapeKind;
    use polytape_store::{LocalStore, ObjectInfo};
    use std::future::Future;
    use std::sync::atomic::AtomicBool;

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

    fn ms(at: &str) -> i64 {
        at.parse::<polytape_core::Ts>().unwrap().timestamp_millis()
    }

    /// `len` characters Snappy cannot shrink much (a frame's ids and hashes), different for
    /// each `seed`.
    fn noise(seed: u64, len: usize) -> String {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b"0123456789abcdef"[(x % 16) as usize])
            })
            .collect()
    }

    /// The settings of the tests: the feed's, spooling in `dir/spool`.
    fn config(dir: &Path) -> TapeConfig {
        TapeConfig::new(dir.join("spool"))
    }

    async fn read_back(store: &LocalStore) -> Vec<(String, Vec<TapeRecord>)> {
        let mut out = Vec::new();
        for key in store.list_objects("raw_ws/").await.unwrap() {
            let bytes = store.get_object(&key).await.unwrap().unwrap();
            out.push((key, parquet::decode_tape(&bytes).unwrap()));
        }
        out
    }

    /// The names in the spool directory, sorted.
    fn spool_files(config: &TapeConfig) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&config.spool)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A store whose first `fail` puts fail (S3 unreachable for a while), and that fails every
    /// put while `down`.
    #[derive(Clone)]
    struct Flaky {
        inner: LocalStore,
        fail: Arc<AtomicUsize>,
        down: Arc<AtomicBool>,
        /// Every put waits for ever (a store that does not answer).
        hang: Arc<AtomicBool>,
    }

    impl Flaky {
        fn new(inner: LocalStore, fail: usize) -> Flaky {
            Flaky {
                inner,
                fail: Arc::new(AtomicUsize::new(fail)),
                down: Arc::new(AtomicBool::new(false)),
                hang: Arc::new(AtomicBool::new(false)),
            }
        }
    }

    impl ObjectStore for Flaky {
        async fn put_object(
            &self,
            key: &str,
            bytes: Vec<u8>,
            content_type: &str,
        ) -> polytape_store::Result<()> {
            let injected = polytape_store::StoreError::Backend {
                reason: "injected timeout".into(),
                retryable: true,
            };
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(injected);
            }
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
                return Err(injected);
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
        let config = config(dir.path());
        let mut w = TapeWriter::new(store.clone(), config.clone(), stop);
        let r = [
            record(1, "2026-11-20T12:55:30Z", "a"),
            record(2, "2026-11-20T12:59:59.999Z", "b"),
            // Stamped a moment before the open window by another shard: stays in it.
            record(3, "2026-11-20T12:59:59.500Z", "c"),
            record(4, "2026-11-20T13:00:00Z", "d"),
            record(5, "2026-11-20T13:04:00Z", &"e".repeat(10_000)),
        ];
        for x in &r[..4] {
            w.push(x.clone()).await;
        }
        // The 12:55 window closed when 13:00's first record came; 13:00's waits for its end.
        w.tick(ms("2026-11-20T13:04:59Z")).await;
        w.push(r[4].clone()).await;
        w.tick(ms("2026-11-20T13:05:00.200Z")).await;
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
        assert!(
            spool_files(&config).is_empty(),
            "uploaded files are deleted"
        );
    }

    #[tokio::test]
    async fn given_a_window_of_many_records_then_its_object_reads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        // Row groups of 64 KiB, so the object is many of them.
        let config = TapeConfig {
            group_bytes: 64 * 1024,
            batch_bytes: 16 * 1024,
            ..config(dir.path())
        };
        let mut w = TapeWriter::new(store.clone(), config, stop);
        let start = ms("2026-11-20T12:00:00Z");
        let records: Vec<TapeRecord> = (1..=20_000u64)
            .map(|seq| TapeRecord {
                shard: (seq % 5) as u32,
                received_at: chrono::DateTime::from_timestamp_millis(start + seq as i64 * 10)
                    .unwrap(),
                kind: [TapeKind::Frame, TapeKind::Backfill, TapeKind::Control][seq as usize % 3],
                ..record(
                    seq,
                    "2026-11-20T12:00:00Z",
                    &noise(seq, 50 + (seq % 300) as usize),
                )
            })
            .collect();
        for r in &records {
            w.push(r.clone()).await;
        }
        w.tick(ms("2026-11-20T12:05:00Z")).await;
        let report = w.finish().await;
        assert_eq!((report.objects, report.records), (1, 20_000));
        let got = read_back(&store).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "raw_ws/dt=2026-11-20/20261120T12-7-0-1.parquet");
        assert!(
            got[0].1 == records,
            "every record back, in order, every field"
        );
    }

    #[tokio::test]
    async fn given_a_burst_past_the_size_cap_then_the_window_is_cut_into_capped_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        // Objects of 100 kB at most; each record its own batch, of ~40 kB encoded.
        let config = TapeConfig {
            max_bytes: 100_000,
            batch_bytes: 1,
            ..config(dir.path())
        };
        let mut w = TapeWriter::new(store.clone(), config, stop);
        let records: Vec<TapeRecord> = (1..=7)
            .map(|seq| record(seq, "2026-11-20T12:01:00Z", &noise(seq, 40_000)))
            .collect();
        for r in &records {
            w.push(r.clone()).await;
        }
        let report = w.finish().await;
        assert_eq!((report.objects, report.records), (3, 7));
        let got = read_back(&store).await;
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "raw_ws/dt=2026-11-20/20261120T12-7-0-1.parquet",
                "raw_ws/dt=2026-11-20/20261120T12-7-0-4.parquet",
                "raw_ws/dt=2026-11-20/20261120T12-7-0-7.parquet",
            ],
            "cut once the file passed 100 kB: after the third record of each"
        );
        let all: Vec<TapeRecord> = got.into_iter().flat_map(|(_, r)| r).collect();
        assert_eq!(all, records);
        for info in store.list_objects_sized("raw_ws/").await.unwrap() {
            assert!(info.size.unwrap() < 100_000 + 45_000, "{info:?}");
        }
    }

    #[tokio::test]
    async fn given_48_mb_pushed_then_the_writer_holds_at_most_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        // Given row groups of 1 MiB, batches of 64 KiB and objects of 16 MiB.
        let config = TapeConfig {
            max_bytes: 16 * 1024 * 1024,
            group_bytes: 1024 * 1024,
            batch_bytes: 64 * 1024,
            ..config(dir.path())
        };
        let bound = config.memory_bound();
        assert!(bound < 2 * 1024 * 1024, "{bound}");
        let mut w = TapeWriter::new(store.clone(), config.clone(), stop);
        let start = ms("2026-11-20T12:00:00Z");
        let (mut pushed, mut most, mut seq) = (0, 0, 0u64);
        // A few distinct texts, so building them is not the test's time.
        let texts: Vec<String> = (0..64).map(|i| noise(i, 1_000)).collect();
        while pushed < 48 * 1024 * 1024 {
            seq += 1;
            let text = &texts[seq as usize % texts.len()];
            let mut r = record(seq, "2026-11-20T12:00:00Z", text);
            r.received_at = chrono::DateTime::from_timestamp_millis(start + seq as i64).unwrap();
            pushed += text.len();
            w.push(r).await;
            most = most.max(w.buffered_bytes());
        }
        // Then what it held stayed under the bound, 1/24 of what went through.
        assert!(most <= bound, "held {most}, bound {bound}");
        assert!(most > 0);
        let report = w.finish().await;
        assert_eq!(report.records, seq);
        assert!(report.objects >= 2, "{report:?}");
        assert_eq!(report.lost_objects, 0);
        let got = read_back(&store).await;
        let back: u64 = got.iter().map(|(_, r)| r.len() as u64).sum();
        assert_eq!(back, seq);
        assert!(spool_files(&config).is_empty());
    }

    #[tokio::test]
    async fn given_a_stalled_encoder_then_push_waits_at_a_bounded_queue_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        // Each record its own batch.
        let config = TapeConfig {
            batch_bytes: 1,
            ..config(dir.path())
        };
        let mut w = TapeWriter::new(store.clone(), config.clone(), stop);
        let held = Arc::clone(&w.held);
        let records: Vec<TapeRecord> = (1..=20)
            .map(|seq| record(seq, "2026-11-20T12:01:00Z", &noise(seq, 1_000)))
            .collect();
        let one = record_bytes(&records[0]);
        // Given the encoder stalled (a disk that does not answer).
        let (entered, stalled) = tokio::sync::oneshot::channel();
        let (release, until) = std::sync::mpsc::channel();
        assert!(w.send(Command::Stall { entered, until }).await);
        stalled.await.unwrap();
        // When records keep coming: the channel's batches go in at once...
        for r in &records[..QUEUED_BATCHES] {
            w.push(r.clone()).await;
        }
        assert_eq!(w.commands.capacity(), 0, "the channel is full");
        // ...and the next push waits instead of queueing more.
        let mut next = Box::pin(w.push(records[QUEUED_BATCHES].clone()));
        let waiting =
            std::future::poll_fn(|cx| std::task::Poll::Ready(next.as_mut().poll(cx).is_pending()))
                .await;
        assert!(waiting, "push waits while the encoder's channel is full");
        // Then what is held is the queued batches and the waiting one, nothing more.
        assert_eq!(
            held.queued.load(Ordering::Relaxed),
            (QUEUED_BATCHES + 1) * one
        );
        assert!((QUEUED_BATCHES + 1) * one <= config.memory_bound());
        // Once the disk answers, the waiting push completes and nothing was lost.
        release.send(()).unwrap();
        next.await;
        for r in &records[QUEUED_BATCHES + 1..] {
            w.push(r.clone()).await;
        }
        w.sync().await;
        assert_eq!(held.queued.load(Ordering::Relaxed), 0);
        let report = w.finish().await;
        assert_eq!((report.objects, report.records), (1, 20));
        let got = read_back(&store).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, records);
    }

    #[tokio::test]
    async fn given_a_window_still_open_when_the_feed_stops_then_finish_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let config = config(dir.path());
        let mut w = TapeWriter::new(store.clone(), config.clone(), stop);
        w.push(record(1, "2026-11-20T12:01:00Z", "a")).await;
        w.push(record(2, "2026-11-20T12:02:00Z", "b")).await;
        w.tick(ms("2026-11-20T12:03:00Z")).await;
        w.sync().await;
        assert!(
            read_back(&store).await.is_empty(),
            "the window is still open"
        );
        assert_eq!(
            spool_files(&config),
            vec!["raw_ws+dt=2026-11-20+20261120T12-7-0-1.parquet.part"],
            "its records are in its spool file"
        );
        stop_tx.send(true).unwrap();
        let report = w.finish().await;
        assert_eq!(report.objects, 1);
        let got = read_back(&store).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), 2, "the open window's records were flushed");
        assert!(spool_files(&config).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_failed_write_then_the_retry_overwrites_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::open(dir.path()).unwrap();
        let store = Flaky::new(inner.clone(), 2);
        let (_stop_tx, stop) = watch::channel(false);
        let mut w = TapeWriter::new(store, config(dir.path()), stop);
        let r = vec![
            record(10, "2026-11-20T12:01:00Z", "a"),
            record(11, "2026-11-20T12:01:01Z", "b"),
        ];
        for x in &r {
            w.push(x.clone()).await;
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
    async fn given_the_store_down_then_closed_objects_wait_on_disk_and_go_up_once_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::open(dir.path()).unwrap();
        let store = Flaky::new(inner.clone(), 0);
        store.down.store(true, Ordering::SeqCst);
        let (_stop_tx, stop) = watch::channel(false);
        let config = config(dir.path());
        let mut w = TapeWriter::new(store.clone(), config.clone(), stop);
        // Three windows close while the store is down.
        for (seq, at) in [
            (1, "2026-11-20T12:01:00Z"),
            (2, "2026-11-20T12:06:00Z"),
            (3, "2026-11-20T12:11:00Z"),
        ] {
            w.push(record(seq, at, &noise(seq, 1_000))).await;
        }
        w.tick(ms("2026-11-20T12:15:00Z")).await;
        w.sync().await;
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(read_back(&inner).await.is_empty(), "nothing went up");
        assert_eq!(
            spool_files(&config),
            vec![
                "raw_ws+dt=2026-11-20+20261120T12-7-0-1.parquet.ready",
                "raw_ws+dt=2026-11-20+20261120T12-7-0-2.parquet.ready",
                "raw_ws+dt=2026-11-20+20261120T12-7-0-3.parquet.ready",
            ],
            "the closed objects wait on disk"
        );
        assert!(w.buffered_bytes() < 64 * 1024, "{}", w.buffered_bytes());
        // The store is back.
        store.down.store(false, Ordering::SeqCst);
        let report = w.finish().await;
        assert_eq!(
            (report.objects, report.records, report.lost_objects),
            (3, 3, 0)
        );
        assert_eq!(read_back(&inner).await.len(), 3);
        assert!(spool_files(&config).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn given_the_store_down_at_shutdown_then_the_object_is_given_up_within_the_budget_and_the_next_start_uploads_it(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::open(dir.path()).unwrap();
        let store = Flaky::new(inner.clone(), 0);
        store.down.store(true, Ordering::SeqCst);
        let (stop_tx, stop) = watch::channel(false);
        let config = config(dir.path());
        let mut w = TapeWriter::new(store, config.clone(), stop);
        w.push(record(1, "2026-11-20T12:01:00Z", "a")).await;
        stop_tx.send(true).unwrap();
        let started = tokio::time::Instant::now();
        let report = w.finish().await;
        assert_eq!(report.lost_objects, 1);
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{:?}",
            started.elapsed()
        );
        // Given the given-up object in the spool and an unfinished one (a crash mid-window).
        let ready = "raw_ws+dt=2026-11-20+20261120T12-7-0-1.parquet.ready";
        assert_eq!(spool_files(&config), vec![ready]);
        let part = "raw_ws+dt=2026-11-20+20261120T12-6-0-9.parquet.part";
        std::fs::write(config.spool.join(part), b"PAR1 and no footer").unwrap();
        // When the next process starts on the same spool with the store back.
        let (_stop_tx, stop) = watch::channel(false);
        let w = TapeWriter::new(inner.clone(), config.clone(), stop);
        let report = w.finish().await;
        // Then the ready object is uploaded and the unfinished one dropped.
        assert_eq!((report.objects, report.records), (1, 1));
        assert_eq!(
            read_back(&inner).await,
            vec![(
                "raw_ws/dt=2026-11-20/20261120T12-7-0-1.parquet".to_string(),
                vec![record(1, "2026-11-20T12:01:00Z", "a")]
            )]
        );
        assert!(spool_files(&config).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_store_that_never_answers_at_shutdown_then_finish_ends_within_the_stop_budget()
    {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStore::open(dir.path()).unwrap();
        let store = Flaky::new(inner.clone(), 0);
        store.hang.store(true, Ordering::SeqCst);
        let (stop_tx, stop) = watch::channel(false);
        let config = TapeConfig {
            batch_bytes: 1,
            max_bytes: 1,
            ..config(dir.path())
        };
        let mut w = TapeWriter::new(store, config.clone(), stop);
        // Three objects (each record passes the 1-byte cap): the first upload hangs.
        for seq in 1..=3 {
            w.push(record(seq, "2026-11-20T12:01:00Z", "a")).await;
        }
        w.sync().await;
        stop_tx.send(true).unwrap();
        let started = tokio::time::Instant::now();
        let report = w.finish().await;
        assert!(
            started.elapsed() <= STOP_RETRY + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((report.objects, report.lost_objects), (0, 3));
        assert_eq!(
            spool_files(&config).len(),
            3,
            "the given-up objects stay in the spool for the next start"
        );
        assert!(read_back(&inner).await.is_empty());
    }
}
