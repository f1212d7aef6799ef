//! One tick of one tier: the unit of work of the snapshot function.
//!
//! A tick samples every tracked market whose end date puts it in its tier at the tick time
//! ([`MarketStore::markets_due`]) — not the tier re-tier last stored, so a market is sampled at
//! its new tier from the first tick after it crosses, and a market past its end date stays in
//! T4 until it is closed or expires. It fetches them from Gamma by `condition_ids` (≤100 per
//! request) and, on order-book tiers, their books by `POST /books` in batches — never the whole
//! market list, never one request per market — builds one row per market, and writes one
//! Parquet object per table, the tier's Latest values, its coverage and its task run.
//!
//! Time: a tick never observes Polymarket before its tick time (an early delivery waits), and
//! it has a deadline ([`TickDeadline`]) — the next tick of its tier, or the invocation's end
//! less a margin, whichever is first. Requests, retries and waits stop in time to write what
//! arrived before the deadline; what did not arrive is counted missing. Object keys derive
//! from the tick, so a retry replaces its output. A tick that starts later than its interval
//! is skipped and counted.

use crate::clock::Clock;
use crate::error::HandlerError;
use crate::tasks::{record_run, task_run};
use polytape_core::live::FlowObject;
use polytape_core::ops::{Coverage, LatestEntry, LatestUpdate, TaskStatus};
use polytape_core::snapshot::{Observation, OrderbookRow};
use polytape_core::{Book, Market, Snapshot, TickId, Ts};
use polytape_polymarket::{Batched, GammaMarket, PolymarketClient};
use polytape_store::{
    keys, parquet, CoverageStore, LatestStore, MarketStore, ObjectStore, TaskStore,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// What one tick did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TickReport {
    pub tick: TickId,
    /// Started later than its interval: nothing fetched or written.
    pub skipped: bool,
    /// Skipped because it is a late duplicate of a tick that already completed (its records
    /// are left as they are, not counted as a skipped tick).
    #[serde(default)]
    pub already_done: bool,
    /// Markets in the tier at the tick time: the rows expected.
    pub markets: usize,
    /// Snapshot rows written.
    pub rows: usize,
    /// Order books written (order-book tiers).
    pub books: usize,
    /// Markets Gamma did not return (closed since discovery, or their request failed).
    pub gamma_missing: usize,
    /// Order-book tier markets whose book was not returned.
    pub books_missing: usize,
    /// Books served with an impossible or crossed level: their row has no book features and
    /// no `orderbooks` row is written for them.
    #[serde(default)]
    pub books_invalid: usize,
    /// Markets with no observation at all: no row written.
    pub missing: usize,
    /// Records and values rejected as invalid (skipped or stored NULL), see the logs.
    pub rejected: usize,
    /// Values that did not fit DECIMAL(18,6) and were stored NULL.
    pub nulled: usize,
    /// Fields that failed to decode (schema drift) and were stored NULL, per record kind and
    /// field (`"gamma market.volume1wk"`).
    #[serde(default)]
    pub drifted: BTreeMap<String, usize>,
    pub gamma_requests: u32,
    pub book_requests: u32,
    /// Requests that failed for good (after the retries the deadline allowed).
    pub failed_requests: usize,
    /// Rounds of requests for what failed, after the first (bounded by the deadline).
    #[serde(default)]
    pub refetch_rounds: u32,
    /// True when the deadline stopped the requests with some still failing or unanswered.
    #[serde(default)]
    pub deadline_hit: bool,
    /// Rows that carry the live feed's flow (markets it covered the whole hour).
    #[serde(default)]
    pub with_flow: usize,
    /// The live flow object could not be read or decoded (flow columns NULL).
    #[serde(default)]
    pub flow_unreadable: bool,
    /// Why the tick failed, when it did (a storage error, or nothing observed at all).
    #[serde(default)]
    pub error: Option<String>,
    pub snapshot_key: Option<String>,
    pub orderbook_key: Option<String>,
    /// Ticks applied to the tier's Latest values by this tick: itself and, in a tier that
    /// writes them once a minute, the ticks read back since the last write; 0 when it left
    /// itself to the minute's first tick ([`crate::latest`]).
    #[serde(default)]
    pub latest_ticks: usize,
    /// Tick files read back for the Latest values that could not be read or decoded (skipped).
    #[serde(default)]
    pub latest_unreadable: usize,
    /// When the tick observed Polymarket (never before its tick time).
    #[serde(default)]
    pub fetched_at: Option<Ts>,
    pub elapsed_ms: u64,
}

impl TickReport {
    fn new(tick: TickId) -> TickReport {
        TickReport {
            tick,
            skipped: false,
            already_done: false,
            markets: 0,
            rows: 0,
            books: 0,
            gamma_missing: 0,
            books_missing: 0,
            books_invalid: 0,
            missing: 0,
            rejected: 0,
            nulled: 0,
            drifted: BTreeMap::new(),
            gamma_requests: 0,
            book_requests: 0,
            failed_requests: 0,
            refetch_rounds: 0,
            deadline_hit: false,
            with_flow: 0,
            flow_unreadable: false,
            error: None,
            snapshot_key: None,
            orderbook_key: None,
            latest_ticks: 0,
            latest_unreadable: 0,
            fetched_at: None,
            elapsed_ms: 0,
        }
    }

    /// True when the tick counts as failed: it ended with an error, or it expected markets
    /// and observed none of them.
    pub fn failed(&self) -> bool {
        self.error.is_some() || (!self.skipped && self.markets > 0 && self.rows == 0)
    }

    /// How the run is recorded.
    pub fn status(&self) -> TaskStatus {
        if self.skipped {
            TaskStatus::Skipped
        } else if self.failed() {
            TaskStatus::Failed
        } else if self.failed_requests > 0
            || self.rejected > 0
            || self.nulled > 0
            || self.books_invalid > 0
            || !self.drifted.is_empty()
        {
            TaskStatus::Partial
        } else {
            TaskStatus::Ok
        }
    }

    fn coverage(&self) -> Coverage {
        Coverage {
            tier: self.tick.tier,
            tick_ts: self.tick.tick_ts,
            expected: u32::try_from(self.markets).unwrap_or(u32::MAX),
            written: u32::try_from(self.rows).unwrap_or(u32::MAX),
            missing: u32::try_from(self.missing).unwrap_or(u32::MAX),
            skipped: self.skipped,
            failed: self.failed(),
        }
    }
}

/// When a tick must be done, and how much of that time its writes keep for themselves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickDeadline {
    /// The tick's requests are over and its writes done by this time (normally).
    pub at: Ts,
    /// Requests stop this long before `at`, so the writes finish in time.
    pub write_reserve: Duration,
    /// Nothing of the tick runs past this (the invocation's end less [`HARD_STOP_MARGIN`], or
    /// half the margin when that is shorter): writes that hang (a storage outage) are abandoned
    /// and the tick fails, rather than the Lambda timeout killing it mid-write. `None` locally.
    pub hard_stop: Option<Ts>,
    /// The tick's own work (requests and writes) is abandoned at this time, a little before
    /// `hard_stop`, so its coverage and task run can still be recorded (by `hard_stop`).
    pub work_stop: Option<Ts>,
}

/// How long before the invocation's end everything of a tick stops.
pub const HARD_STOP_MARGIN: Duration = Duration::from_secs(2);
/// Time kept between abandoning a tick's work and the hard stop, to record its coverage and run.
pub const RECORD_RESERVE: Duration = Duration::from_secs(1);

impl TickDeadline {
    /// The deadline of `tick`: its tier's next tick, or `invocation_end` (the Lambda's own
    /// deadline) less `margin` when that comes first; the margin is the writes' time.
    pub fn of(tick: TickId, invocation_end: Option<Ts>, margin: Duration) -> TickDeadline {
        let next = tick.next().tick_ts;
        let at = match invocation_end {
            Some(end) => next.min(end - to_chrono(margin)),
            None => next,
        };
        let hard_stop = invocation_end.map(|end| end - to_chrono(HARD_STOP_MARGIN.min(margin / 2)));
        TickDeadline {
            at,
            write_reserve: DEFAULT_WRITE_RESERVE,
            hard_stop,
            work_stop: hard_stop.map(|h| h - to_chrono(RECORD_RESERVE.min(margin / 4))),
        }
    }

    /// When requests must stop, given that the tick started at `started`: `at` less the write
    /// reserve, but never less than a quarter of the time the tick has.
    fn fetch_until(&self, started: Ts) -> Ts {
        let total = (self.at - started).max(chrono::Duration::zero());
        let reserve = to_chrono(self.write_reserve).min(total / 4);
        self.at - reserve
    }
}

/// Time kept for the writes of a tick after its requests stop.
pub const DEFAULT_WRITE_RESERVE: Duration = Duration::from_secs(2);

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A tokio instant `t − now` from now (now if `t` has passed).
fn instant_at(t: Ts, now: Ts) -> tokio::time::Instant {
    tokio::time::Instant::now() + (t - now).to_std().unwrap_or_default()
}

/// Runs one tick and always records it: its coverage and its task run are written whether
/// the tick succeeded, was skipped or failed. Storage failures fail the tick (the caller's
/// retry replaces its output) rather than drop rows; Polymarket failures are counted.
pub async fn snapshot_tick<S>(
    client: &PolymarketClient,
    store: &S,
    tick: TickId,
    clock: &impl Clock,
    deadline: TickDeadline,
) -> Result<TickReport, HandlerError>
where
    S: MarketStore + LatestStore + TaskStore + CoverageStore + ObjectStore,
{
    // Never early: a message delivered before its tick waits for it.
    let early = tick.tick_ts - clock.now();
    if early > chrono::Duration::zero() {
        tokio::time::sleep(early.to_std().unwrap_or_default()).await;
    }
    let started = clock.now();
    let run_id = format!("{}#snapshot#{}", tick.label(), tick.tier);
    let mut report = TickReport::new(tick);
    if tick.is_stale_at(started) {
        return skip_stale(store, tick, started, clock, run_id, report).await;
    }
    let hard_stop = deadline.hard_stop.map(|t| instant_at(t, clock.now()));
    let work_stop = deadline.work_stop.map(|t| instant_at(t, clock.now()));
    let result = until(
        work_stop,
        sample(client, store, tick, clock, deadline, started, &mut report),
    )
    .await;
    report.elapsed_ms = (clock.now() - started).num_milliseconds().max(0) as u64;
    if let Err(e) = &result {
        report.error = Some(e.to_string());
        tracing::error!(tier = %tick.tier, tick = %tick.tick_ts, error = %e, "tick failed");
    }
    // Recorded in every case; when storage itself fails, the original error is the one returned.
    let recorded = until(hard_stop, async {
        store.put_coverage(&report.coverage()).await?;
        record_run(
            store,
            &task_run(run_id, "snapshot", started, clock.now(), &report),
        )
        .await
    })
    .await;
    result?;
    recorded?;
    Ok(report)
}

/// `work`, abandoned at `stop` (if any) with an error saying so.
async fn until<T>(
    stop: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = Result<T, HandlerError>>,
) -> Result<T, HandlerError> {
    match stop {
        None => work.await,
        Some(stop) => tokio::time::timeout_at(stop, work)
            .await
            .unwrap_or_else(|_| {
                Err(HandlerError::Abandoned(
                    "the invocation ends: the tick's writes did not finish in time".into(),
                ))
            }),
    }
}

/// A tick that started after its interval: recorded as skipped, unless it is a late
/// redelivery of a tick that already completed (SQS delivers at least once), whose records
/// must not be overwritten.
async fn skip_stale<S>(
    store: &S,
    tick: TickId,
    started: Ts,
    clock: &impl Clock,
    run_id: String,
    mut report: TickReport,
) -> Result<TickReport, HandlerError>
where
    S: TaskStore + CoverageStore,
{
    report.skipped = true;
    let done = store
        .coverage_since(tick.tick_ts)
        .await?
        .into_iter()
        .any(|c| c.tier == tick.tier && c.tick_ts == tick.tick_ts && !c.skipped);
    if done {
        report.already_done = true;
        tracing::info!(tier = %tick.tier, tick = %tick.tick_ts, "late duplicate of a completed tick: nothing to do");
        return Ok(report);
    }
    tracing::warn!(tier = %tick.tier, tick = %tick.tick_ts, started = %started, "tick started later than its interval: skipped");
    store.put_coverage(&report.coverage()).await?;
    record_run(
        store,
        &task_run(run_id, "snapshot", started, clock.now(), &report),
    )
    .await?;
    Ok(report)
}

/// The feed's flow object, when there is one that decodes. Its absence (no feed running) or
/// a bad object leaves the flow columns NULL and never fails the tick; a bad one is counted.
async fn live_flow<S: ObjectStore>(store: &S, report: &mut TickReport) -> Option<FlowObject> {
    let bytes = match store.get_object(keys::LIVE_FLOW).await {
        Ok(bytes) => bytes?,
        Err(e) => {
            report.flow_unreadable = true;
            tracing::warn!(error = %e, "live flow object unreadable: flow columns NULL");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(flow) => Some(flow),
        Err(e) => {
            report.flow_unreadable = true;
            tracing::warn!(error = %e, "live flow object does not decode: flow columns NULL");
            None
        }
    }
}

/// Fetches the tier's markets (within the deadline), builds the rows, writes the objects and
/// the Latest values.
async fn sample<S>(
    client: &PolymarketClient,
    store: &S,
    tick: TickId,
    clock: &impl Clock,
    deadline: TickDeadline,
    started: Ts,
    report: &mut TickReport,
) -> Result<(), HandlerError>
where
    S: MarketStore + LatestStore + ObjectStore,
{
    let markets = store.markets_due(tick.tier, tick.tick_ts).await?;
    report.markets = markets.len();
    let with_books = tick.tier.spec().order_book;
    let fetch_until = deadline.fetch_until(started);
    let fetched = fetch(
        client,
        &markets,
        with_books,
        instant_at(fetch_until, clock.now()),
        report,
    )
    .await;
    let fetched_at = clock.now();
    report.fetched_at = Some(fetched_at);

    let by_id: HashMap<&str, &GammaMarket> = fetched
        .gamma
        .iter()
        .filter_map(|g| Some((g.condition_id()?, g)))
        .collect();
    let by_token: HashMap<&str, &Book> = fetched
        .books
        .iter()
        .map(|book| (book.token_id.as_str(), book))
        .collect();

    // The live feed's newest flow (WebSocket tiers): a market it did not cover reads NULL.
    let flow = if tick.tier.spec().websocket {
        live_flow(store, report).await
    } else {
        None
    };

    let mut rows = Vec::with_capacity(markets.len());
    let mut orderbooks = Vec::new();
    for market in &markets {
        let gm = by_id.get(market.condition_id.as_str()).copied();
        let book = by_token.get(market.yes_token_id.as_str()).copied();
        if gm.is_none() {
            report.gamma_missing += 1;
        }
        if with_books && book.is_none() {
            report.books_missing += 1;
        }
        if gm.is_none() && book.is_none() {
            report.missing += 1;
            continue;
        }
        let market_flow = flow
            .as_ref()
            .and_then(|f| f.for_tick(&market.condition_id, tick.tick_ts));
        report.with_flow += usize::from(market_flow.is_some());
        let quote = gm.map(|g| {
            let (quote, bad) = g.quote();
            for r in &bad {
                tracing::warn!(condition_id = %market.condition_id, reason = %r.reason, "gamma value rejected: stored NULL");
            }
            report.rejected += bad.len();
            quote
        });
        rows.push(Snapshot::build(Observation {
            tick,
            fetched_at,
            market,
            quote: quote.as_ref(),
            book,
            flow: market_flow,
        }));
        if let Some(book) = book {
            if let Some(problem) = &book.problem {
                report.books_invalid += 1;
                tracing::warn!(condition_id = %market.condition_id, token_id = %book.token_id, %problem, "book not trusted: no book features, no orderbooks row");
            } else {
                orderbooks.push(OrderbookRow::new(
                    tick,
                    fetched_at,
                    &market.condition_id,
                    book,
                ));
            }
        }
    }

    // Objects are written whenever the tier has markets, even with no rows, so a retry of the
    // tick always replaces what an earlier attempt wrote.
    if !markets.is_empty() {
        let encoded = parquet::encode_snapshots(&rows)?;
        report.nulled += encoded.nulled;
        let key = keys::snapshots(&tick);
        store.put_object(&key, encoded.bytes, PARQUET).await?;
        report.rows = rows.len();
        report.snapshot_key = Some(key);
    }
    if with_books && !markets.is_empty() {
        let encoded = parquet::encode_orderbooks(&orderbooks)?;
        report.nulled += encoded.nulled;
        let key = keys::orderbooks(&tick);
        store.put_object(&key, encoded.bytes, PARQUET).await?;
        report.books = orderbooks.len();
        report.orderbook_key = Some(key);
    }
    if report.markets > 0 && report.rows == 0 {
        report.error = Some(format!(
            "no market of the {} expected was observed ({} requests failed)",
            report.markets, report.failed_requests
        ));
    }
    let applied =
        crate::latest::apply_tick(store, latest_update(tick, &markets, &rows), clock.now()).await?;
    report.latest_ticks = applied.ticks;
    report.latest_unreadable = applied.unreadable;
    Ok(())
}

const PARQUET: &str = parquet::CONTENT_TYPE;

/// What arrived from Polymarket for one tick.
struct Fetched {
    gamma: Vec<GammaMarket>,
    books: Vec<Book>,
}

/// Pause between rounds of requests for what failed (doubling, within the deadline).
const REFETCH_PAUSE: Duration = Duration::from_millis(500);

/// Fetches the markets (and books) of a tick until everything arrived or `until`: a round of
/// requests, then, while some failed for a reason a retry may cure and time remains, another
/// round for just those ids. What never arrived is left out (and counted by the caller).
async fn fetch(
    client: &PolymarketClient,
    markets: &[Market],
    with_books: bool,
    until: tokio::time::Instant,
    report: &mut TickReport,
) -> Fetched {
    let client = client.with_deadline(until);
    let mut ids: Vec<String> = markets.iter().map(|m| m.condition_id.clone()).collect();
    let mut tokens: Vec<String> = if with_books {
        markets.iter().map(|m| m.yes_token_id.clone()).collect()
    } else {
        Vec::new()
    };
    let mut out = Fetched {
        gamma: Vec::with_capacity(ids.len()),
        books: Vec::with_capacity(tokens.len()),
    };
    let mut pause = REFETCH_PAUSE;
    loop {
        let (gamma, books) = tokio::join!(
            async {
                if ids.is_empty() {
                    Batched::default()
                } else {
                    client.markets_by_condition_ids(&ids).await
                }
            },
            async {
                if tokens.is_empty() {
                    Batched::default()
                } else {
                    client.books(&tokens).await
                }
            }
        );
        report.gamma_requests += gamma.requests;
        report.book_requests += books.requests;
        report.rejected += gamma.rejected.len() + books.rejected.len();
        note_drift(report, &gamma);
        note_drift(report, &books);
        let (retry_ids, lost_ids) = split_failures(&gamma);
        let (retry_tokens, lost_tokens) = split_failures(&books);
        out.gamma.extend(gamma.items);
        out.books.extend(books.items);
        let left = tokio::time::Instant::now() + pause;
        if retry_ids.is_empty() && retry_tokens.is_empty() || left >= until {
            report.failed_requests += gamma.failures.len() + books.failures.len();
            report.deadline_hit = !(retry_ids.is_empty() && retry_tokens.is_empty());
            for f in gamma.failures.iter().chain(&books.failures) {
                tracing::warn!(tier = %report.tick.tier, tick = %report.tick.tick_ts, ids = f.keys.len(), error = %f.error, "requests of the tick failed for good");
            }
            return out;
        }
        // Lost for good (a request that cannot succeed) is counted now; the rest is retried.
        report.failed_requests += lost_ids + lost_tokens;
        tokio::time::sleep(pause).await;
        pause *= 2;
        report.refetch_rounds += 1;
        ids = retry_ids;
        tokens = retry_tokens;
    }
}

/// The ids of failed requests a retry may cure, and how many failed requests cannot be.
fn split_failures<T>(b: &Batched<T>) -> (Vec<String>, usize) {
    let mut retry = Vec::new();
    let mut lost = 0;
    for f in &b.failures {
        if f.error.is_retryable() {
            retry.extend(f.keys.iter().cloned());
        } else {
            lost += 1;
        }
    }
    (retry, lost)
}

fn note_drift<T>(report: &mut TickReport, b: &Batched<T>) {
    for d in &b.drifts {
        *report.drifted.entry(d.stat_key()).or_default() += 1;
    }
}

/// The tick's contribution to its tier's Latest values, each number as its `snapshots` column
/// holds it (DECIMAL(18,6), without trailing zeros; NULL when it does not fit), which is what a
/// tick read back from its file gives ([`crate::latest`]).
fn latest_update(tick: TickId, markets: &[Market], rows: &[Snapshot]) -> LatestUpdate {
    let stored = |d: Option<rust_decimal::Decimal>| {
        d.and_then(polytape_core::money::to_mantissa)
            .map(|m| polytape_core::money::from_mantissa(m).normalize())
    };
    LatestUpdate {
        tier: tick.tier,
        tick_ts: tick.tick_ts,
        members: markets.iter().map(|m| m.condition_id.clone()).collect(),
        rows: rows
            .iter()
            .map(|r| LatestEntry {
                condition_id: r.condition_id.clone(),
                price: stored(r.price),
                best_bid: stored(r.best_bid),
                best_ask: stored(r.best_ask),
                spread: stored(r.spread),
                volume_24h: stored(r.volume_24h),
                tick_ts: r.snapshot_ts,
                snapshot_count: 0,
                counted: 0,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::Tier;

    #[test]
    fn given_an_invocation_end_then_requests_work_and_records_stop_in_that_order_before_it() {
        let tick = TickId {
            tier: Tier::T0,
            tick_ts: "2026-11-20T10:00:00Z".parse().unwrap(),
        };
        let end: Ts = "2026-11-20T10:00:50Z".parse().unwrap();
        let d = TickDeadline::of(tick, Some(end), Duration::from_secs(20));
        let s = |n: i64| end - chrono::Duration::seconds(n);
        assert_eq!(d.at, s(20), "requests and writes by the margin");
        assert_eq!(
            d.work_stop,
            Some(s(3)),
            "the work abandoned 3 s before the end"
        );
        assert_eq!(d.hard_stop, Some(s(2)), "its records written by 2 s before");
        let local = TickDeadline::of(tick, None, Duration::from_secs(20));
        assert_eq!(
            local.at,
            tick.next().tick_ts,
            "locally: the next tick of the tier"
        );
        assert_eq!((local.work_stop, local.hard_stop), (None, None));
        // A T4 tick in Lambda: its next tick comes first.
        let t4 = TickId {
            tier: Tier::T4,
            tick_ts: tick.tick_ts,
        };
        assert_eq!(
            TickDeadline::of(t4, Some(end), Duration::from_secs(20)).at,
            t4.next().tick_ts
        );
    }
}
