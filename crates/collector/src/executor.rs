//! The paper executor, live: the backtester's [`Replay`] stepped over the snapshot ticks as they
//! are stored, and kept between runs.
//!
//! Once a minute (`polytape run`'s minute loop; in the cloud, the snapshot function's scheduled
//! invocation, after it has dispatched the minute's ticks) [`run_due`] takes the executor's lease
//! (the `executor` task: one run at a time, recorded like every task run), reads its state
//! ([`STATE_KEY`]) and steps it over every 15-second **slot** it has not stepped yet whose ticks
//! are final: a slot `t` is stepped once `now ≥ t + `[`SETTLE`] (a tick of an order-book tier
//! stops at its next tick, at most 60 s later, and writes what it has). A slot's step reads the
//! `snapshots` and `orderbooks` objects of the T2–T4 ticks at `t` (one GET each, keys derived from
//! the tick), hands them to the replay in one step at `t` — the very step the backtester takes at
//! a tick's time, through the same strategies, sizing, risk and paper fills. The run then writes
//! what its steps did as Parquet (`signals`, `fills`, `positions`: one object per table per run
//! at most, keyed by the run's first slot, so a retried run replaces its objects) and finally
//! the state. A run that fails before writing the state is
//! retried from the old one and, being deterministic, writes the same objects again.
//!
//! Positions settle at the outcome polytape recorded: each run asks the market store about the
//! markets it holds positions or orders in, and a resolution learnt at `learned_at` is applied at
//! the first slot after it, as in a backtest.
//!
//! Catching up is bounded: a run steps at most [`MAX_SLOTS`] slots; when the executor is further
//! behind (it was stopped), the older slots are skipped and counted, never stepped out of order.
//!
//! The state is one JSON object: the replay (paper account, orders, fills, positions, each
//! market's last observation and mid history), the latest signals, a thinned equity curve and
//! the strategies as configured. The status API reads it (`/api/executor/*`, `/api/strategies`);
//! a strategy switched on or off by `POST /api/strategies/{name}` (locally) is written to
//! [`OVERRIDES_KEY`], which every run applies to its configuration.

use crate::clock::Clock;
use crate::error::HandlerError;
use crate::tasks::{failed_run, record_run, task_run, RunOutcome};
use polytape_core::ops::TaskStatus;
use polytape_core::paper::{self, FillRow, PositionRow, SignalRow};
use polytape_core::{Side, TickId, Tier, Ts};
use polytape_store::{keys, parquet, read, MarketStore, ObjectStore, StoreError, TaskStore};
use polytape_strategy::backtest::data::decode_tick_file;
use polytape_strategy::backtest::{DataSummary, Replay, ReplayState};
use polytape_strategy::engine::DecidedSignal;
use polytape_strategy::{
    build_strategies, ClosedPosition, EngineConfig, EquityPoint, FillEvent, Liquidity, Position,
    SignalDecision, StepReport,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// The task name of the executor's runs (and its lease).
pub const TASK: &str = "executor";
/// The executor's state: one JSON object.
pub const STATE_KEY: &str = "executor/state.json";
/// Strategies switched on or off at run time: `{"longshot_yes": false, …}`.
pub const OVERRIDES_KEY: &str = "executor/strategies.json";
/// The configuration in the cloud: YAML, as `examples/executor.yaml`; absent → the example.
pub const CONFIG_KEY: &str = "executor/config.yaml";
/// The configuration used when none is given.
pub const EXAMPLE_CONFIG: &str = include_str!("../../../examples/executor.yaml");

/// One slot: the shortest tick interval (T4).
pub const SLOT_S: i64 = 15;
/// How long after its time a slot's ticks are final: T2's interval (a tick stops at its next
/// tick) and 15 s to write.
pub const SETTLE_S: i64 = 75;
/// The most slots one run steps (10 minutes); older ones are skipped and counted.
pub const MAX_SLOTS: i64 = 40;
/// Signals kept in the state for the API (the `signals` table has them all).
pub const KEEP_SIGNALS: usize = 500;
/// Equity points kept in the state; past it the older half is thinned to every other point.
pub const KEEP_EQUITY: usize = 2_000;
/// Markets past their end by more than this, with nothing engaged, are forgotten.
const FORGET_AFTER_H: i64 = 48;
/// The lease of one run.
const LEASE_S: i64 = 55;
/// The version of [`ExecutorState`]'s layout.
const STATE_VERSION: u32 = 1;

/// What the executor runs: its configuration and where it came from.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    pub config: EngineConfig,
    /// A file name, `s3://…/executor/config.yaml` or `examples/executor.yaml (built in)`.
    pub source: String,
}

impl ExecutorSettings {
    /// `examples/executor.yaml`, built into the binary.
    pub fn example() -> ExecutorSettings {
        let source = "examples/executor.yaml (built in)".to_string();
        ExecutorSettings {
            config: EngineConfig::from_yaml(EXAMPLE_CONFIG, &source)
                .expect("examples/executor.yaml is checked by a test"),
            source,
        }
    }

    /// The configuration in a YAML file.
    pub fn from_file(path: &Path) -> Result<ExecutorSettings, polytape_strategy::StrategyError> {
        Ok(ExecutorSettings {
            config: EngineConfig::load(path)?,
            source: path.display().to_string(),
        })
    }

    /// The cloud's: [`CONFIG_KEY`] in the data bucket when it is there, else the example. A
    /// configuration that does not parse is an error (the run fails and says why), never
    /// silently replaced by the example.
    pub async fn from_store(store: &impl ObjectStore) -> Result<ExecutorSettings, HandlerError> {
        match store.get_object(CONFIG_KEY).await? {
            None => Ok(ExecutorSettings::example()),
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| HandlerError::Input(format!("{CONFIG_KEY} is not UTF-8")))?;
                let config = EngineConfig::from_yaml(&text, CONFIG_KEY)
                    .map_err(|e| HandlerError::Input(e.to_string()))?;
                Ok(ExecutorSettings {
                    config,
                    source: CONFIG_KEY.to_string(),
                })
            }
        }
    }
}

/// A strategy as configured (the API's `/api/strategies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyInfo {
    pub name: String,
    pub description: String,
    pub version: u32,
    pub enabled: bool,
    /// Every parameter, defaults filled in.
    pub params: serde_json::Value,
}

/// Counters since the state was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorTotals {
    pub runs: u64,
    pub slots: u64,
    /// Slots not stepped because the executor was further behind than [`MAX_SLOTS`].
    pub slots_skipped: u64,
    pub snapshot_rows: u64,
    pub book_rows: u64,
    /// Tick files that could not be read (skipped; the slot stepped without them).
    pub files_unreadable: u64,
    /// Rows skipped (NULL key, unreadable value, other token, unknown market).
    pub rows_skipped: u64,
    pub signals: u64,
    pub fills: u64,
    pub closed: u64,
}

/// The executor's state, kept between runs ([`STATE_KEY`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorState {
    pub version: u32,
    pub created_at: Ts,
    pub updated_at: Ts,
    /// Where the configuration came from, at the last run.
    pub config_source: String,
    pub initial_cash: Decimal,
    /// The last slot stepped.
    pub last_slot: Option<Ts>,
    /// The strategies as configured at the last run (overrides applied).
    pub strategies: Vec<StrategyInfo>,
    /// The latest signals with what became of each, oldest first.
    pub signals: VecDeque<DecidedSignal>,
    /// One point a step, thinned past [`KEEP_EQUITY`], oldest first.
    pub equity: Vec<EquityPoint>,
    pub totals: ExecutorTotals,
    pub replay: ReplayState,
}

impl ExecutorState {
    fn new(config: &EngineConfig, now: Ts) -> ExecutorState {
        ExecutorState {
            version: STATE_VERSION,
            created_at: now,
            updated_at: now,
            config_source: String::new(),
            initial_cash: config.initial_cash,
            last_slot: None,
            strategies: Vec::new(),
            signals: VecDeque::new(),
            equity: Vec::new(),
            totals: ExecutorTotals::default(),
            replay: ReplayState::new(config),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorReport {
    pub first_slot: Option<Ts>,
    pub last_slot: Option<Ts>,
    pub slots: u64,
    pub slots_skipped: u64,
    pub snapshot_rows: u64,
    pub book_rows: u64,
    pub files_unreadable: u64,
    pub markets_added: u64,
    pub resolutions_learnt: u64,
    pub signals: u64,
    pub fills: u64,
    pub closed: u64,
    pub equity: Option<Decimal>,
    /// Parquet objects written.
    pub written: Vec<String>,
}

impl RunOutcome for ExecutorReport {
    fn status(&self) -> TaskStatus {
        TaskStatus::Ok
    }
}

/// The state as stored, if any. A state that does not parse is an error: the paper account is
/// never silently replaced by a new one (delete the object to start over).
pub async fn load_state(store: &impl ObjectStore) -> Result<Option<ExecutorState>, HandlerError> {
    let Some(bytes) = store.get_object(STATE_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        HandlerError::Input(format!(
            "{STATE_KEY} cannot be read ({e}); delete it to start a new paper account"
        ))
    })
}

/// The on/off overrides of [`OVERRIDES_KEY`] (none when absent; unreadable → an error).
pub async fn load_overrides(
    store: &impl ObjectStore,
) -> Result<BTreeMap<String, bool>, HandlerError> {
    match store.get_object(OVERRIDES_KEY).await? {
        None => Ok(BTreeMap::new()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| HandlerError::Input(format!("{OVERRIDES_KEY} cannot be read: {e}"))),
    }
}

/// Writes the on/off overrides.
pub async fn save_overrides(
    store: &impl ObjectStore,
    overrides: &BTreeMap<String, bool>,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(overrides).expect("a map of booleans serialises");
    store
        .put_object(OVERRIDES_KEY, body, "application/json")
        .await
}

/// `config` with the overrides applied (names it does not configure are ignored).
pub fn with_overrides(config: &EngineConfig, overrides: &BTreeMap<String, bool>) -> EngineConfig {
    let mut config = config.clone();
    for (name, on) in overrides {
        if let Some(s) = config.strategies.get_mut(name) {
            s.enabled = *on;
        }
    }
    config
}

/// Every configured strategy, enabled or not, with its parameters as built.
pub fn strategy_infos(config: &EngineConfig) -> Vec<StrategyInfo> {
    let mut all = config.clone();
    for s in all.strategies.values_mut() {
        s.enabled = true;
    }
    let built = build_strategies(&all.strategies).unwrap_or_default();
    built
        .iter()
        .map(|s| StrategyInfo {
            name: s.name().to_string(),
            description: s.description().to_string(),
            version: s.version(),
            enabled: config.strategies.get(s.name()).is_some_and(|c| c.enabled),
            params: s.params(),
        })
        .collect()
}

/// Runs the executor if no other run holds its lease: steps every final slot not stepped yet
/// and records the run. `None` when another run holds the lease.
pub async fn run_due<S>(
    store: &S,
    settings: &ExecutorSettings,
    clock: &impl Clock,
) -> Result<Option<ExecutorReport>, HandlerError>
where
    S: MarketStore + TaskStore + ObjectStore,
{
    let started = clock.now();
    if !store
        .claim_task(TASK, started, started + chrono::Duration::seconds(LEASE_S))
        .await?
    {
        return Ok(None);
    }
    let id = format!("{TASK}/{}", started.format("%Y%m%dT%H%M%S%.3fZ"));
    match step_due(store, settings, started).await {
        Ok(report) => {
            record_run(store, &task_run(id, TASK, started, clock.now(), &report)).await?;
            Ok(Some(report))
        }
        Err(e) => {
            // Recording the failure also releases the lease; its own failure is secondary.
            let _ = record_run(store, &failed_run(id, TASK, started, clock.now(), &e)).await;
            Err(e)
        }
    }
}

/// The slots a run at `now` steps after `last`: (first, last, skipped).
pub fn due_slots(last: Option<Ts>, now: Ts) -> Option<(Ts, Ts, u64)> {
    let end = floor_slot(now - chrono::Duration::seconds(SETTLE_S));
    let slot = chrono::Duration::seconds(SLOT_S);
    let first = match last {
        Some(l) => l + slot,
        None => end,
    };
    if first > end {
        return None;
    }
    let n = (end - first).num_seconds() / SLOT_S + 1;
    if n > MAX_SLOTS {
        let first_kept = end - slot * (MAX_SLOTS - 1) as i32;
        Some((first_kept, end, (n - MAX_SLOTS) as u64))
    } else {
        Some((first, end, 0))
    }
}

fn floor_slot(t: Ts) -> Ts {
    TickId::floor(Tier::T4, t).tick_ts
}

/// The order-book tiers' ticks at `t`.
fn ticks_at(t: Ts) -> Vec<TickId> {
    [Tier::T2, Tier::T3, Tier::T4]
        .into_iter()
        .map(|tier| TickId::floor(tier, t))
        .filter(|tick| tick.tick_ts == t)
        .collect()
}

async fn step_due<S>(
    store: &S,
    settings: &ExecutorSettings,
    now: Ts,
) -> Result<ExecutorReport, HandlerError>
where
    S: MarketStore + ObjectStore,
{
    let overrides = load_overrides(store).await?;
    let config = with_overrides(&settings.config, &overrides);
    let mut state = match load_state(store).await? {
        Some(s) => s,
        None => ExecutorState::new(&config, now),
    };
    let mut report = ExecutorReport::default();
    let Some((first, last, skipped)) = due_slots(state.last_slot, now) else {
        state.strategies = strategy_infos(&config);
        return Ok(report);
    };
    report.first_slot = Some(first);
    report.slots_skipped = skipped;

    let replay_state = std::mem::replace(&mut state.replay, ReplayState::new(&config));
    let mut replay =
        Replay::resume(&config, replay_state).map_err(|e| HandlerError::Input(e.to_string()))?;

    // Resolutions of the markets engaged in: applied at the first slot after they were learnt.
    for id in replay.engaged_markets() {
        if let Some(m) = store.get_market(&id).await? {
            if let polytape_core::MarketResult::Resolved(outcome) = m.result {
                replay.learn(&id, outcome);
                report.resolutions_learnt += 1;
            }
        }
    }

    let mut summary = DataSummary::default();
    let mut records = Records::default();
    let mut slot = first;
    while slot <= last {
        let mut rows = Vec::new();
        let mut books = Vec::new();
        for tick in ticks_at(slot) {
            for key in [keys::snapshots(&tick), keys::orderbooks(&tick)] {
                let batches = match read::file_batches(store, &key).await {
                    Ok(Some(b)) => b,
                    Ok(None) => continue,
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(key, error = %e, "executor: tick file unreadable, skipped");
                        report.files_unreadable += 1;
                        continue;
                    }
                };
                match decode_tick_file(&key, &batches, &mut summary) {
                    Ok((r, b)) => {
                        rows.extend(r);
                        books.extend(b);
                    }
                    Err(reason) => {
                        tracing::warn!(key, reason, "executor: tick file unusable, skipped");
                        report.files_unreadable += 1;
                    }
                }
            }
        }
        for id in rows.iter().map(|r| &r.condition_id) {
            if !replay.knows(id) {
                if let Some(m) = store.get_market(id).await? {
                    replay.track(m);
                    report.markets_added += 1;
                }
            }
        }
        report.snapshot_rows += rows.len() as u64;
        report.book_rows += books.len() as u64;
        rows.sort_by(|a, b| (&a.condition_id, &a.token_id).cmp(&(&b.condition_id, &b.token_id)));
        if let Some(step) = replay.step(slot, &rows, &books) {
            record_step(&mut state, &mut report, &step);
            records.add(&step, &replay);
        }
        report.slots += 1;
        slot += chrono::Duration::seconds(SLOT_S);
    }
    replay.forget_ended(now, chrono::Duration::hours(FORGET_AFTER_H));
    // Before the state: a run that fails after this is redone from the old state and writes
    // the same rows under the same keys.
    report.written = records.write(store, first).await?;

    report.last_slot = Some(last);
    report.equity = state.equity.last().map(|p| p.equity);
    state.last_slot = Some(last);
    state.updated_at = now;
    state.config_source = settings.source.clone();
    state.strategies = strategy_infos(&config);
    let t = &mut state.totals;
    t.runs += 1;
    t.slots += report.slots;
    t.slots_skipped += report.slots_skipped;
    t.snapshot_rows += report.snapshot_rows;
    t.book_rows += report.book_rows;
    t.files_unreadable += report.files_unreadable;
    t.rows_skipped += summary.rows_skipped;
    t.signals += report.signals;
    t.fills += report.fills;
    t.closed += report.closed;
    state.replay = replay.suspend();
    store.put_json(STATE_KEY, &state).await?;
    Ok(report)
}

/// Adds a step's signals and equity point to the state, bounded.
fn record_step(state: &mut ExecutorState, report: &mut ExecutorReport, step: &StepReport) {
    report.signals += step.signals.len() as u64;
    report.fills += step.fills.len() as u64;
    report.closed += step.closed.len() as u64;
    state.signals.extend(step.signals.iter().cloned());
    while state.signals.len() > KEEP_SIGNALS {
        state.signals.pop_front();
    }
    state.equity.push(step.equity);
    if state.equity.len() > KEEP_EQUITY {
        thin(&mut state.equity);
    }
}

/// Keeps every other point of the older half (the newest half stays at full resolution).
fn thin(points: &mut Vec<EquityPoint>) {
    let half = points.len() / 2;
    let mut i = 0;
    points.retain(|_| {
        i += 1;
        i > half || i % 2 == 1
    });
}

/// What a run's steps did, as the rows of the `signals`, `fills` and `positions` tables.
#[derive(Default)]
struct Records {
    signals: Vec<SignalRow>,
    fills: Vec<FillRow>,
    positions: Vec<PositionRow>,
}

impl Records {
    /// A step's signals and fills, and — when it filled or closed anything — every open
    /// position as of the step plus the positions it closed.
    fn add(&mut self, step: &StepReport, replay: &Replay) {
        self.signals.extend(step.signals.iter().map(signal_row));
        self.fills.extend(step.fills.iter().map(fill_row));
        if !step.fills.is_empty() || !step.closed.is_empty() {
            let open = replay.engine().portfolio().positions.values();
            self.positions.extend(
                open.map(|p| open_row(step.t, p))
                    .chain(step.closed.iter().map(|c| closed_row(step.t, c))),
            );
        }
    }

    /// One object per table with rows, keyed by the run's first slot (a run that is redone
    /// steps the same slots and replaces them); returns the keys written.
    async fn write<S: ObjectStore>(
        &self,
        store: &S,
        first_slot: Ts,
    ) -> Result<Vec<String>, HandlerError> {
        let encoded = [
            (
                keys::SIGNALS,
                parquet::encode_signals(&self.signals)?,
                self.signals.len(),
            ),
            (
                keys::FILLS,
                parquet::encode_fills(&self.fills)?,
                self.fills.len(),
            ),
            (
                keys::POSITIONS,
                parquet::encode_positions(&self.positions)?,
                self.positions.len(),
            ),
        ];
        let mut written = Vec::new();
        for (table, e, rows) in encoded {
            if rows == 0 {
                continue;
            }
            let key = keys::paper(table, first_slot);
            store
                .put_object(&key, e.bytes, parquet::CONTENT_TYPE)
                .await?;
            written.push(key);
        }
        Ok(written)
    }
}

fn signal_row(d: &DecidedSignal) -> SignalRow {
    let s = &d.signal;
    let (decision, order_id, order_usd, rejection) = match &d.decision {
        SignalDecision::Ordered { order_id, usd } => {
            (paper::ORDERED, Some(*order_id as i64), Some(*usd), None)
        }
        SignalDecision::Rejected { rejection } => {
            (paper::REJECTED, None, None, Some(json_text(rejection)))
        }
    };
    SignalRow {
        signal_ts: s.ts,
        strategy: s.strategy.clone(),
        condition_id: s.condition_id.clone(),
        token_id: s.token_id.clone(),
        outcome: s.outcome.as_str().to_string(),
        reason: s.reason.clone(),
        edge: s.edge,
        confidence: s.confidence,
        price: s.price,
        suggested_usd: s.suggested_usd,
        decision: decision.to_string(),
        order_id,
        order_usd,
        rejection,
    }
}

/// A tagged value (a rejection, a close reason) as the JSON text its column holds.
fn json_text(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn fill_row(f: &FillEvent) -> FillRow {
    FillRow {
        fill_ts: f.ts,
        order_id: f.order_id as i64,
        strategy: f.strategy.clone(),
        condition_id: f.condition_id.clone(),
        token_id: f.token_id.clone(),
        outcome: f.outcome.as_str().to_string(),
        side: match f.side {
            Side::Buy => paper::BUY,
            Side::Sell => paper::SELL,
        }
        .to_string(),
        liquidity: match f.liquidity {
            Liquidity::Taker => paper::TAKER,
            Liquidity::Maker => paper::MAKER,
        }
        .to_string(),
        shares: f.fill.shares,
        avg_price: f.fill.avg_price,
        notional: f.fill.cost,
        fee: f.fill.fee,
        levels: f.fill.levels_used as i32,
    }
}

fn open_row(t: Ts, p: &Position) -> PositionRow {
    PositionRow {
        as_of: t,
        strategy: p.strategy.clone(),
        condition_id: p.condition_id.clone(),
        token_id: p.token_id.clone(),
        outcome: p.outcome.as_str().to_string(),
        status: paper::OPEN.to_string(),
        shares: p.shares,
        cost: p.cost,
        entry_price: Some(p.entry_price),
        mark: p.mark,
        unrealised_pnl: p.mark.map(|_| p.unrealised_pnl()),
        proceeds: None,
        realised_pnl: None,
        opened_at: p.opened_at,
        closed_at: None,
        close_reason: None,
    }
}

fn closed_row(t: Ts, c: &ClosedPosition) -> PositionRow {
    PositionRow {
        as_of: t,
        strategy: c.strategy.clone(),
        condition_id: c.condition_id.clone(),
        token_id: c.token_id.clone(),
        outcome: c.outcome.as_str().to_string(),
        status: paper::CLOSED.to_string(),
        shares: c.shares,
        cost: c.cost,
        entry_price: None,
        mark: None,
        unrealised_pnl: None,
        proceeds: Some(c.proceeds),
        realised_pnl: Some(c.realised_pnl),
        opened_at: c.opened_at,
        closed_at: Some(c.closed_at),
        close_reason: Some(json_text(&c.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Ts {
        s.parse().unwrap()
    }

    #[test]
    fn given_no_state_then_the_first_run_steps_only_the_last_final_slot() {
        let (first, last, skipped) = due_slots(None, ts("2026-12-01T10:02:10Z")).unwrap();
        // 10:02:10 − 75 s = 10:00:55 → slot 10:00:45.
        assert_eq!(first, ts("2026-12-01T10:00:45Z"));
        assert_eq!(last, first);
        assert_eq!(skipped, 0);
    }

    #[test]
    fn given_a_last_slot_then_every_final_slot_after_it_is_due_in_order() {
        let due = due_slots(Some(ts("2026-12-01T10:00:00Z")), ts("2026-12-01T10:02:16Z"));
        // 10:02:16 − 75 s = 10:01:01 → slots 10:00:15 … 10:01:00.
        assert_eq!(
            due,
            Some((ts("2026-12-01T10:00:15Z"), ts("2026-12-01T10:01:00Z"), 0))
        );
        // Nothing new yet.
        assert_eq!(
            due_slots(Some(ts("2026-12-01T10:01:00Z")), ts("2026-12-01T10:02:16Z")),
            None
        );
    }

    #[test]
    fn given_a_long_stop_then_only_the_last_slots_are_stepped_and_the_rest_counted() {
        let (first, last, skipped) =
            due_slots(Some(ts("2026-12-01T09:00:00Z")), ts("2026-12-01T10:01:15Z")).unwrap();
        assert_eq!(last, ts("2026-12-01T10:00:00Z"));
        assert_eq!((last - first).num_seconds(), (MAX_SLOTS - 1) * SLOT_S);
        // 09:00:15 … 10:00:00 is 240 slots; 40 stepped.
        assert_eq!(skipped, 240 - MAX_SLOTS as u64);
    }

    #[test]
    fn ticks_at_a_slot_are_those_of_the_tiers_due_then() {
        let tiers = |s: &str| -> Vec<Tier> { ticks_at(ts(s)).iter().map(|t| t.tier).collect() };
        assert_eq!(
            tiers("2026-12-01T10:00:00Z"),
            [Tier::T2, Tier::T3, Tier::T4]
        );
        assert_eq!(tiers("2026-12-01T10:00:30Z"), [Tier::T3, Tier::T4]);
        assert_eq!(tiers("2026-12-01T10:00:45Z"), [Tier::T4]);
    }

    #[test]
    fn thinning_keeps_the_newest_half_whole_and_the_order() {
        let p = |i: i64| EquityPoint {
            ts: ts("2026-12-01T00:00:00Z") + chrono::Duration::seconds(i),
            cash: Decimal::ZERO,
            exposure: Decimal::ZERO,
            equity: Decimal::from(i),
            peak: Decimal::ZERO,
            drawdown: Decimal::ZERO,
        };
        let mut points: Vec<EquityPoint> = (0..10).map(p).collect();
        thin(&mut points);
        let kept: Vec<i64> = points.iter().map(|q| q.ts.timestamp() % 100).collect();
        assert_eq!(kept, [0, 2, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn the_built_in_example_configuration_parses_and_lists_every_strategy() {
        let s = ExecutorSettings::example();
        let infos = strategy_infos(&s.config);
        let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "longshot_no",
                "longshot_yes",
                "mean_reversion",
                "term_structure"
            ]
        );
        let off = with_overrides(
            &s.config,
            &BTreeMap::from([("longshot_no".to_string(), false)]),
        );
        let infos = strategy_infos(&off);
        assert!(!infos[0].enabled);
        assert!(infos[1].enabled == s.config.strategies["longshot_yes"].enabled);
    }
}
