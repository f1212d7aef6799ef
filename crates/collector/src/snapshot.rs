//! One tick of one tier: the unit of work of the snapshot function.
//!
//! A tick reads its tier's markets, fetches them from Gamma by `condition_ids` (≤100 per
//! request) and, on order-book tiers, their books by `POST /books` in batches — never the whole
//! market list, never one request per market — builds one row per market, and writes one
//! Parquet object per table and one Latest item for the tier. Object keys derive from the tick,
//! so a retry replaces its output. A tick that starts later than its interval is skipped and
//! counted.

use crate::clock::Clock;
use crate::discover::task_run;
use crate::error::HandlerError;
use polytape_core::ops::{Coverage, LatestEntry, LatestTier, TaskStatus};
use polytape_core::snapshot::{Observation, OrderbookRow};
use polytape_core::{Book, Market, Snapshot, TickId};
use polytape_polymarket::{GammaMarket, PolymarketClient};
use polytape_store::{keys, parquet, LatestStore, MarketStore, ObjectStore, OpsStore};
use serde::Serialize;
use std::collections::HashMap;

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
    /// Markets in the tier when the tick ran.
    pub markets: usize,
    /// Snapshot rows written.
    pub rows: usize,
    /// Order books written (order-book tiers).
    pub books: usize,
    /// Markets Gamma did not return (closed since discovery, or their request failed).
    pub gamma_missing: usize,
    /// Order-book tier markets whose book was not returned.
    pub books_missing: usize,
    /// Markets with no observation at all: no row written.
    pub missing: usize,
    /// Records and values rejected as invalid (skipped or stored NULL), see the logs.
    pub rejected: usize,
    /// Values that did not fit DECIMAL(18,6) and were stored NULL.
    pub nulled: usize,
    pub gamma_requests: u32,
    pub book_requests: u32,
    /// Requests that failed after their retries.
    pub failed_requests: usize,
    /// True when a failed request may succeed if the tick runs again.
    pub retryable_failure: bool,
    pub snapshot_key: Option<String>,
    pub orderbook_key: Option<String>,
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
            missing: 0,
            rejected: 0,
            nulled: 0,
            gamma_requests: 0,
            book_requests: 0,
            failed_requests: 0,
            retryable_failure: false,
            snapshot_key: None,
            orderbook_key: None,
            elapsed_ms: 0,
        }
    }

    /// How the run is recorded.
    pub fn status(&self) -> TaskStatus {
        if self.skipped {
            TaskStatus::Skipped
        } else if self.failed_requests > 0 || self.rejected > 0 || self.nulled > 0 {
            TaskStatus::Partial
        } else {
            TaskStatus::Ok
        }
    }

    /// True when the tick wrote what it had but lost part of it to a transient failure, so
    /// running it again (which replaces its output) would give a more complete result.
    pub fn should_retry(&self) -> bool {
        self.failed_requests > 0 && self.retryable_failure
    }
}

/// Runs one tick. Storage failures fail the tick (so the caller retries) rather than drop
/// rows; Polymarket request failures are counted in the report after the rest is written.
pub async fn snapshot_tick<S>(
    client: &PolymarketClient,
    store: &S,
    tick: TickId,
    clock: &impl Clock,
) -> Result<TickReport, HandlerError>
where
    S: MarketStore + LatestStore + OpsStore + ObjectStore,
{
    let started = clock.now();
    let run_id = format!("{}#snapshot#{}", tick.label(), tick.tier);
    let mut report = TickReport::new(tick);
    if tick.is_stale_at(started) {
        report.skipped = true;
        // A late redelivery of a tick that already completed (SQS delivers at least once) must
        // not overwrite its records: only a tick that never ran is recorded as skipped.
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
        store
            .put_coverage(&Coverage {
                tier: tick.tier,
                tick_ts: tick.tick_ts,
                expected: 0,
                written: 0,
                missing: 0,
                skipped: true,
            })
            .await?;
        store
            .put_task_run(&task_run(
                run_id,
                "snapshot",
                started,
                clock.now(),
                TaskStatus::Skipped,
                &report,
            ))
            .await?;
        return Ok(report);
    }

    let markets = store.markets_in_tier(tick.tier).await?;
    report.markets = markets.len();
    let with_books = tick.tier.spec().order_book;
    let ids: Vec<String> = markets.iter().map(|m| m.condition_id.clone()).collect();
    let tokens: Vec<String> = if with_books {
        markets.iter().map(|m| m.yes_token_id.clone()).collect()
    } else {
        Vec::new()
    };

    let (gamma, books) = tokio::join!(client.markets_by_condition_ids(&ids), async {
        if tokens.is_empty() {
            None
        } else {
            Some(client.books(&tokens).await)
        }
    });
    let fetched_at = clock.now();

    report.gamma_requests = gamma.requests;
    report.rejected += gamma.rejected.len();
    report.failed_requests += gamma.failures.len();
    let mut failures: Vec<_> = gamma.failures.iter().map(|f| &f.error).collect();
    let by_id: HashMap<&str, &GammaMarket> = gamma
        .items
        .iter()
        .filter_map(|g| Some((g.condition_id()?, g)))
        .collect();
    let by_token: HashMap<&str, &Book> = match &books {
        Some(b) => {
            report.book_requests = b.requests;
            report.rejected += b.rejected.len();
            report.failed_requests += b.failures.len();
            failures.extend(b.failures.iter().map(|f| &f.error));
            b.items
                .iter()
                .map(|book| (book.token_id.as_str(), book))
                .collect()
        }
        None => HashMap::new(),
    };
    report.retryable_failure = failures.iter().any(|e| e.is_retryable());
    for e in &failures {
        tracing::warn!(tier = %tick.tier, tick = %tick.tick_ts, error = %e, "a request of the tick failed after its retries");
    }

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
            flow: None,
        }));
        if let Some(book) = book {
            orderbooks.push(OrderbookRow::new(
                tick,
                fetched_at,
                &market.condition_id,
                book,
            ));
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
    update_latest(store, tick, &markets, &rows).await?;
    store
        .put_coverage(&Coverage {
            tier: tick.tier,
            tick_ts: tick.tick_ts,
            expected: report.markets as u32,
            written: report.rows as u32,
            missing: report.missing as u32,
            skipped: false,
        })
        .await?;
    report.elapsed_ms = (clock.now() - started).num_milliseconds().max(0) as u64;
    store
        .put_task_run(&task_run(
            run_id,
            "snapshot",
            started,
            clock.now(),
            report.status(),
            &report,
        ))
        .await?;
    Ok(report)
}

const PARQUET: &str = "application/vnd.apache.parquet";

/// Rewrites the tier's Latest item: this tick's values for the markets that have a row, the
/// previous values (with their older tick time) for markets of the tier that missed this tick.
/// Counts advance once per market per tick (a retry does not count twice), and an older tick
/// never overwrites a newer one.
async fn update_latest<S: LatestStore>(
    store: &S,
    tick: TickId,
    markets: &[Market],
    rows: &[Snapshot],
) -> Result<(), HandlerError> {
    let previous = store.get_latest(tick.tier).await?;
    if previous.as_ref().is_some_and(|p| p.tick_ts > tick.tick_ts) {
        return Ok(());
    }
    let mut previous: HashMap<String, LatestEntry> = previous
        .map(|p| {
            p.markets
                .into_iter()
                .map(|e| (e.condition_id.clone(), e))
                .collect()
        })
        .unwrap_or_default();
    let rows: HashMap<&str, &Snapshot> =
        rows.iter().map(|r| (r.condition_id.as_str(), r)).collect();
    let entries = markets
        .iter()
        .filter_map(|m| {
            let before = previous.remove(&m.condition_id);
            let Some(r) = rows.get(m.condition_id.as_str()) else {
                return before;
            };
            let count = before.as_ref().map_or(0, |b| {
                if b.tick_ts < tick.tick_ts {
                    b.snapshot_count + 1
                } else {
                    b.snapshot_count
                }
            });
            Some(LatestEntry {
                condition_id: m.condition_id.clone(),
                price: r.price,
                best_bid: r.best_bid,
                best_ask: r.best_ask,
                spread: r.spread,
                volume_24h: r.volume_24h,
                tick_ts: r.snapshot_ts,
                snapshot_count: count.max(1),
            })
        })
        .collect();
    // Conditional: a newer tick's item that landed meanwhile is kept (false = not written).
    let written = store
        .put_latest(&LatestTier {
            tier: tick.tier,
            tick_ts: tick.tick_ts,
            markets: entries,
        })
        .await?;
    if !written {
        tracing::info!(tier = %tick.tier, tick = %tick.tick_ts, "a newer tick's Latest item is already stored: kept");
    }
    Ok(())
}
