//! Shared set-up of the end-to-end tests: a simulator on 127.0.0.1, a client pointed at it, a
//! local store in a temp dir, and a Parquet reader that returns columns by name.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test set-up: a failure should fail the test loudly

use arrow_array::{Array, ArrayRef, RecordBatch};
use polytape_collector::snapshot::TickDeadline;
use polytape_collector::FixedClock;
use polytape_core::{TickId, Ts};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_sim::{SimConfig, SimHandle};
use polytape_store::LocalStore;
use rust_decimal::Decimal;
use std::path::Path;
use std::time::Duration;

/// The moment the simulated world is anchored at: an hour boundary, so a test window starting
/// there contains a tick of every tier.
pub fn anchor() -> Ts {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

/// Wall time a tick run at its own time on the fixed clock has for its requests and writes:
/// generous, as a loaded machine can stall a request for seconds. The clock does not move
/// while the tick runs, so however long it takes the tick is on time (neither late nor
/// skipped); a healthy tick ends as soon as everything arrived.
pub const TICK_BUDGET: Duration = Duration::from_secs(30);

/// Wall time of a tick whose markets are made to fail: its rounds of retries stop soon, and
/// what it observes (none of the failing markets) does not depend on it.
pub const FAILING_TICK_BUDGET: Duration = Duration::from_millis(1500);

/// The deadline of `tick` run at its own time on the fixed clock: `budget` after it, the
/// requests stopping 300 ms before; no invocation end.
pub fn deadline_within(tick: TickId, budget: Duration) -> TickDeadline {
    TickDeadline {
        at: tick.tick_ts + chrono::Duration::from_std(budget).unwrap(),
        write_reserve: Duration::from_millis(300),
        hard_stop: None,
        work_stop: None,
    }
}

pub struct Env {
    pub sim: SimHandle,
    pub client: PolymarketClient,
    pub store: LocalStore,
    pub clock: FixedClock,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Runs discovery at the clock's time with the default config; it must be due.
    pub async fn discover(&self) -> polytape_collector::discover::DiscoveryReport {
        let cfg = polytape_collector::Config::default();
        polytape_collector::discover::run_if_due(&self.client, &self.store, &cfg, &self.clock, None)
            .await
            .unwrap()
            .expect("discovery is due")
    }
}

pub async fn env(markets_per_tier: usize, books_batch: usize) -> Env {
    env_at(markets_per_tier, books_batch, anchor()).await
}

/// [`env`] with the simulated world (and the fixed clock) anchored at `at`.
pub async fn env_at(markets_per_tier: usize, books_batch: usize, at: Ts) -> Env {
    let mut cfg = SimConfig::new(42);
    cfg.markets_per_tier = markets_per_tier;
    cfg.now = at;
    env_with(cfg, books_batch).await
}

/// An environment on a simulator configured as `cfg` (the fixed clock at `cfg.now`).
pub async fn env_with(cfg: SimConfig, books_batch: usize) -> Env {
    let at = cfg.now;
    let sim = polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = client_for(&sim, books_batch);
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    Env {
        sim,
        client,
        store,
        clock: FixedClock::new(at),
        dir,
    }
}

pub fn client_for(sim: &SimHandle, books_batch: usize) -> PolymarketClient {
    PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: sim.gamma_url(),
            clob: sim.clob_url(),
            data: sim.data_url(),
            ws: sim.ws_url(),
        },
        books_batch,
        backoff_base: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// All record batches of one Parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    reader.map(|b| b.unwrap()).collect()
}

pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

pub fn decimal(batch: &RecordBatch, name: &str, row: usize) -> Option<Decimal> {
    let col = column(batch, name);
    if col.is_null(row) {
        return None;
    }
    if let Some(a) = col.as_any().downcast_ref::<arrow_array::Decimal128Array>() {
        return Some(Decimal::from_i128_with_scale(
            a.value(row),
            a.scale() as u32,
        ));
    }
    if let Some(a) = col.as_any().downcast_ref::<arrow_array::Decimal64Array>() {
        return Some(Decimal::new(a.value(row), a.scale() as u32));
    }
    panic!("{name} is not a decimal column: {:?}", col.data_type())
}

pub fn string(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let col = column(batch, name);
    let a = col
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap_or_else(|| panic!("{name} is not utf8"));
    (!a.is_null(row)).then(|| a.value(row).to_string())
}

pub fn f64_at(batch: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    let col = column(batch, name);
    let a = col
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .unwrap_or_else(|| panic!("{name} is not f64"));
    (!a.is_null(row)).then(|| a.value(row))
}

pub fn i32_at(batch: &RecordBatch, name: &str, row: usize) -> Option<i32> {
    let col = column(batch, name);
    let a = col
        .as_any()
        .downcast_ref::<arrow_array::Int32Array>()
        .unwrap_or_else(|| panic!("{name} is not i32"));
    (!a.is_null(row)).then(|| a.value(row))
}

pub fn ts_ms(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    let col = column(batch, name);
    let a = col
        .as_any()
        .downcast_ref::<arrow_array::TimestampMillisecondArray>()
        .unwrap_or_else(|| panic!("{name} is not ts(ms)"));
    (!a.is_null(row)).then(|| a.value(row))
}

/// Every Parquet file under `dir/prefix`, sorted.
pub fn files_under(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    fn walk(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|x| x == "parquet") {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join(prefix), &mut out);
    out.sort();
    out
}
