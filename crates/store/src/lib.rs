//! polytape's storage: the ports the handlers write against, the local adapters behind them,
//! the object key layout and the Parquet encoders. The domain (`polytape-core`) never sees a
//! database or a bucket; a handler takes the narrowest port it needs (`&impl MarketStore`), so
//! the same code runs on [`LocalStore`] in `polytape run` and tests, and on the AWS adapters in
//! Lambda.
//!
//! # Layout
//! * [`ports`]: one trait per capability — [`MarketStore`], [`LatestStore`], [`TaskStore`],
//!   [`TransitionStore`], [`CoverageStore`], [`HeartbeatStore`] (together [`OpsStore`]),
//!   [`ObjectStore`], [`ObjectDeleter`] (compaction's), [`TickQueue`].
//! * [`local`]: [`LocalStore`], SQLite state (`<data_dir>/state.sqlite`, WAL) and objects as
//!   files under `<data_dir>/<key>`.
//! * [`queue`]: the tick message and [`LocalQueue`], the in-process [`TickQueue`].
//! * `aws` (feature `aws`, off by default so the local CLI does not compile the AWS SDK):
//!   `AwsStore`, every port on DynamoDB, S3 and SQS, and `aws::provision` to create the
//!   resources (tests run it against moto). The design is in `docs/aws.md`.
//! * [`keys`]: the S3 key layout (`snapshots/tier=2/dt=2026-11-20/20261120T223000Z.parquet`).
//! * [`parquet`]: the `snapshots`, `orderbooks`, `markets`, `resolutions` and `tier_transitions`
//!   encoders and their Athena column lists, and the training set's columns.
//! * [`export`]: `polytape export`, the training set of a data directory as one file.
//! * [`compact`]: hourly compaction — an hour's small files of a partition merged into one,
//!   with `_manifest.json` — crash-safe at every step, over [`ObjectStore`] and
//!   [`ObjectDeleter`], so the local directory and S3 share it. The reading rule that keeps
//!   readers from counting a row twice is [`keys::visible`].
//! * [`read`]: the tables read back for the status API (a tick's rows, a compacted hour
//!   cut to the tick; a table's files newest first by the reading rule), and
//!   [`parquet::json`], any file's rows as JSON.
//! * [`contract`]: the behaviour every adapter must show, as async functions that panic on a
//!   violation; the local tests run them and the AWS adapters can run the same suite.
//! * [`error`]: [`StoreError`] and its retry classifier.

#[cfg(feature = "aws")]
pub mod aws;
pub mod compact;
pub mod contract;
pub mod error;
pub mod export;
pub mod keys;
pub mod local;
pub mod parquet;
pub mod ports;
pub mod queue;
pub mod read;

#[cfg(feature = "aws")]
pub use aws::AwsStore;
pub use error::{Result, StoreError};
pub use local::LocalStore;
pub use ports::{
    CoverageStore, HeartbeatStore, LatestStore, MarketStore, ObjectDeleter, ObjectInfo,
    ObjectStore, ObjectTail, OpsStore, RunQuery, TaskStore, TickQueue, TransitionStore,
};
pub use queue::LocalQueue;
