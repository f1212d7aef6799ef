//! Live counters of a local run: what the progress lines print and `/api/stats` serves.

use crate::discover::DiscoveryReport;
use crate::maintenance::MaintenanceReport;
use crate::snapshot::TickReport;
use polytape_core::{Tier, Ts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters of one tier since the run started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TierStats {
    pub ticks: u64,
    pub skipped_ticks: u64,
    pub failed_ticks: u64,
    pub rows: u64,
    pub books: u64,
    /// Markets with no observation at a tick (no row written).
    pub missing: u64,
    pub rejected: u64,
    pub failed_requests: u64,
    pub last_tick: Option<Ts>,
    pub last_rows: usize,
    pub last_elapsed_ms: u64,
    pub next_tick: Option<Ts>,
}

/// When a periodic task last ran and what it reported.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun<T> {
    pub at: Ts,
    pub report: T,
}

/// Counters of a local run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub started_at: Option<Ts>,
    pub tiers: BTreeMap<Tier, TierStats>,
    pub discovery: Option<LastRun<DiscoveryReport>>,
    pub maintenance: Option<LastRun<MaintenanceReport>>,
    /// Handler runs that failed (storage or Polymarket errors), all kinds.
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Ts>,
}

/// Shared, cheaply cloned handle to the counters.
#[derive(Debug, Clone, Default)]
pub struct SharedStats(Arc<Mutex<RunStats>>);

impl SharedStats {
    /// A consistent copy of the counters.
    pub fn snapshot(&self) -> RunStats {
        self.lock().clone()
    }

    /// Records when the run started (`/health` judges "since start" from it).
    pub fn mark_started(&self, at: Ts) {
        self.lock().started_at = Some(at);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RunStats> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_tick(&self, r: &TickReport) {
        let mut s = self.lock();
        if r.already_done {
            return;
        }
        let t = s.tiers.entry(r.tick.tier).or_default();
        if r.skipped {
            t.skipped_ticks += 1;
            return;
        }
        t.ticks += 1;
        t.rows += r.rows as u64;
        t.books += r.books as u64;
        t.missing += r.missing as u64;
        t.rejected += (r.rejected + r.nulled) as u64;
        t.failed_requests += r.failed_requests as u64;
        t.last_tick = Some(r.tick.tick_ts);
        t.last_rows = r.rows;
        t.last_elapsed_ms = r.elapsed_ms;
    }

    pub(crate) fn record_error(&self, tier: Option<Tier>, what: String) {
        let mut s = self.lock();
        s.errors += 1;
        s.last_error = Some(what);
        s.last_error_at = Some(chrono::Utc::now());
        if let Some(tier) = tier {
            s.tiers.entry(tier).or_default().failed_ticks += 1;
        }
    }
}
