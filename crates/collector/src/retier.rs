//! Re-tier: records each market's move to a faster tier as its close nears, and ends sampling
//! of markets that closed or expired. Sampling itself does not wait for it — a tick samples
//! the markets whose end date puts them in its tier at the tick time — so re-tier keeps the
//! stored tiers and the transitions true, and decides what only it can: a market past its end
//! date is asked about on Gamma (`closed=true`) and leaves sampling once Gamma says it closed;
//! one still open 24 h past its end expires. Runs every 5 minutes as part of maintenance.
//!
//! **Boundary passes.** A market's tier is a function of its time to close ([`Tier::at`]), so
//! between a run at `t0` and one at `t1` only a market whose end date lies in `(t0 + b, t1 + b]`
//! for a tier boundary `b` (48 h, 12 h, 4 h, 1 h, and −24 h, where sampling past the end
//! stops) can have changed tier ([`boundary_windows`]); the markets past their end date are
//! read every run, to be asked about on Gamma. A boundary pass reads only those end-date
//! ranges ([`MarketStore::markets_ending`]); a full pass reads every active market. A full
//! pass runs when no earlier run is recorded, after a failed maintenance run, after a run
//! that left markets undecided, once discovery has written markets since the last full pass,
//! and at least hourly: so a market whose stored tier went stale any other way is put right
//! within the hour, and nothing is missed for good ([`plan`]).
//!
//! **What a run leaves.** Each run keeps [`EndDates`] (`status/end_dates.json`): when it ran,
//! when the last full pass ran, and every active market's end date as the run left them (a
//! boundary pass refreshes the ranges it read). The next run's windows start at its time;
//! the status API counts the markets per tier from it ([`count_due`]) instead of reading the
//! Markets table.

use crate::clock::Clock;
use crate::discover::{closed_without_result, write_decided, Decision};
use crate::error::HandlerError;
use polytape_core::ops::{reason, TaskState, TaskStatus, TierTransition};
use polytape_core::tier::SAMPLED_PAST_END_S;
use polytape_core::{Market, MarketResult, Tier, Ts, TIERS};
use polytape_polymarket::{GammaMarket, PolymarketClient};
use polytape_store::{keys, MarketStore, ObjectStore, TaskStore, TransitionStore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The writer name of re-tier's transition files.
const WRITER: &str = "retier";

/// The longest time between two full passes, in seconds.
pub const FULL_PASS_EVERY_S: i64 = 3600;

/// Which markets a re-tier run read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    /// Every active market.
    #[default]
    Full,
    /// Only the markets whose end date lies in a window where a tier can have changed since
    /// the last run, and those past their end date ([`boundary_windows`]).
    Boundary,
}

/// What one re-tier run changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetierReport {
    /// Which markets the run read.
    pub pass: Pass,
    /// Why the run was a full pass; `None` for a boundary pass.
    pub full_pass_why: Option<&'static str>,
    /// The active markets read: every one in a full pass, those in the windows in a boundary
    /// pass.
    pub active: usize,
    pub moved: usize,
    /// Past their end date and reported closed by Gamma: no longer sampled.
    pub closed: usize,
    /// Still open 24 h past their end date: no longer sampled.
    pub expired: usize,
    /// Active markets past their end date, asked about on Gamma.
    pub past_end: usize,
    /// Why the closed-check on Gamma failed, if it did (those markets stay sampled).
    pub closed_check_error: Option<String>,
    /// Markets another writer kept changing while this run decided them: left for the next
    /// (a full pass).
    pub unresolved_conflicts: usize,
}

/// What re-tier keeps between runs, at [`keys::END_DATES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndDates {
    /// The clock's time at the run that wrote it: the next boundary pass's windows start here.
    pub as_of: Ts,
    /// When the last full pass ran; `None` after a run that left markets undecided, so the
    /// next run is a full pass.
    pub full_pass_at: Option<Ts>,
    /// Every active market's end date as the run left them, in epoch milliseconds, ascending:
    /// the markets of a full pass, refreshed in the windows a boundary pass read.
    pub end_ms: Vec<i64>,
}

impl EndDates {
    /// Replaces the end dates inside `windows` (each `(after, up_to]`) with `ends`, the end
    /// dates of the active markets a boundary pass left there.
    fn refresh(&mut self, windows: &[(Ts, Ts)], ends: impl IntoIterator<Item = Ts>) {
        let inside = |e: i64| {
            windows
                .iter()
                .any(|(a, b)| e > a.timestamp_millis() && e <= b.timestamp_millis())
        };
        self.end_ms.retain(|e| !inside(*e));
        self.end_ms
            .extend(ends.into_iter().map(|t| t.timestamp_millis()));
        self.end_ms.sort_unstable();
    }

    /// The markets per tier at `at`, by end date, as [`MarketStore::count_due`] counts the
    /// stored ones: `None` counts those past the sampling window (expired, not yet retired);
    /// tiers with no market are absent.
    pub fn count_due(&self, at: Ts) -> BTreeMap<Option<Tier>, u64> {
        // Entries in (after, up_to], on the sorted list.
        let count = |after: i64, up_to: i64| -> u64 {
            let lo = self.end_ms.partition_point(|e| *e <= after);
            let hi = self.end_ms.partition_point(|e| *e <= up_to);
            u64::try_from(hi.saturating_sub(lo)).unwrap_or(u64::MAX)
        };
        let mut out = BTreeMap::new();
        for tier in Tier::ALL {
            let (after, up_to) = tier.end_window(at);
            let n = count(
                after.timestamp_millis(),
                up_to.map_or(i64::MAX, |u| u.timestamp_millis()),
            );
            if n > 0 {
                out.insert(Some(tier), n);
            }
        }
        let expired = count(i64::MIN, Tier::T4.end_window(at).0.timestamp_millis());
        if expired > 0 {
            out.insert(None, expired);
        }
        out
    }
}

/// What a run reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Every active market, and why.
    Full(&'static str),
    /// The markets ending in these windows (`(after, up_to]`, from [`boundary_windows`]).
    Boundary(Vec<(Ts, Ts)>),
}

/// The pass a run at `now` makes, from what the last run left (`kept`), the state of the
/// maintenance task (whose duty re-tier is) and discovery's.
pub fn plan(
    now: Ts,
    kept: Option<&EndDates>,
    maintenance: Option<&TaskState>,
    discovery: Option<&TaskState>,
) -> Plan {
    let Some(kept) = kept else {
        return Plan::Full("no earlier run recorded");
    };
    if maintenance.is_some_and(|s| s.last_status == Some(TaskStatus::Failed)) {
        // It may have failed inside re-tier, after some of its writes.
        return Plan::Full("the last maintenance run failed");
    }
    let Some(full_at) = kept.full_pass_at else {
        return Plan::Full("the last run left markets undecided");
    };
    if now - full_at >= chrono::Duration::seconds(FULL_PASS_EVERY_S) {
        return Plan::Full("hourly");
    }
    // Discovery stores a new or changed market with its tier at discovery's own time, and
    // anywhere in the end-date order: read them all once it has.
    if discovery
        .and_then(|s| s.last_success_at)
        .is_some_and(|d| d > full_at)
    {
        return Plan::Full("discovery wrote markets since the last full pass");
    }
    Plan::Boundary(boundary_windows(kept.as_of, now))
}

/// The end-date windows `(after, up_to]` holding every market whose tier can have changed
/// between `t0` and `t1` or that is past its end date at `t1`: `(t0 + b, t1 + b]` for each
/// tier boundary `b` (each tier's lower bound but the fastest's, from the tier table), and
/// `(t0 − 24 h, t1]`: the markets whose 24 h past the end ran out, and those past their end
/// still sampled. Overlapping windows merged, ascending.
pub fn boundary_windows(t0: Ts, t1: Ts) -> Vec<(Ts, Ts)> {
    let t0 = t0.min(t1);
    let secs = chrono::Duration::seconds;
    let mut windows: Vec<(Ts, Ts)> = TIERS
        .iter()
        .filter(|s| s.tier != Tier::T4)
        .map(|s| (t0 + secs(s.above_s), t1 + secs(s.above_s)))
        .chain([(t0 - secs(SAMPLED_PAST_END_S), t1)])
        .filter(|(after, up_to)| after < up_to)
        .collect();
    windows.sort();
    let mut merged: Vec<(Ts, Ts)> = Vec::with_capacity(windows.len());
    for (after, up_to) in windows {
        match merged.last_mut() {
            Some(last) if after <= last.1 => last.1 = last.1.max(up_to),
            _ => merged.push((after, up_to)),
        }
    }
    merged
}

/// Recomputes the tier of the active markets it reads (every one, or those in the boundary
/// windows: [`plan`]) at the clock's time, asks Gamma about the ones past their end date,
/// writes only the markets that changed (each conditional on the version read), with their
/// transitions, and last what it leaves ([`EndDates`]).
pub async fn retier<S>(
    client: &PolymarketClient,
    store: &S,
    clock: &impl Clock,
) -> Result<RetierReport, HandlerError>
where
    S: MarketStore + TransitionStore + ObjectStore + TaskStore,
{
    let now = clock.now();
    let kept = read_end_dates(store).await?;
    let maintenance = store.task_state(crate::maintenance::TASK).await?;
    let discovery = store.task_state(crate::discover::TASK).await?;
    let plan = plan(now, kept.as_ref(), maintenance.as_ref(), discovery.as_ref());
    let mut report = RetierReport::default();
    let markets = match &plan {
        Plan::Full(why) => {
            report.full_pass_why = Some(why);
            store.active_markets().await?
        }
        Plan::Boundary(windows) => {
            report.pass = Pass::Boundary;
            let mut read = Vec::new();
            for (after, up_to) in windows {
                read.extend(store.markets_ending(*after, Some(*up_to)).await?);
            }
            read
        }
    };
    report.active = markets.len();
    let past_end: Vec<String> = markets
        .iter()
        .filter(|m| m.end_date <= now && Tier::at(now, m.end_date).is_some())
        .map(|m| m.condition_id.clone())
        .collect();
    report.past_end = past_end.len();
    let closed = closed_on_gamma(client, &past_end, &mut report).await;
    let decisions: Vec<Decision> = markets
        .iter()
        .filter_map(|m| decide(m, now, &closed))
        .collect();
    let redecide = |_: &str, fresh: Option<&Market>| decide(fresh?, now, &closed);
    let written = write_decided(store, decisions, &redecide).await?;
    report.unresolved_conflicts = written.unresolved;
    // The end dates of the markets read that are still active, as this run left them.
    let decided: HashMap<&str, &Market> = written
        .decisions
        .iter()
        .map(|d| (d.market.condition_id.as_str(), &d.market))
        .collect();
    let ends: Vec<Ts> = markets
        .iter()
        .map(|m| decided.get(m.condition_id.as_str()).copied().unwrap_or(m))
        .filter(|m| m.active)
        .map(|m| m.end_date)
        .collect();
    let mut transitions = Vec::with_capacity(written.decisions.len());
    for t in written.decisions.into_iter().flat_map(|d| d.transitions) {
        match t.reason.as_str() {
            reason::CLOSED => report.closed += 1,
            reason::EXPIRED => report.expired += 1,
            _ => report.moved += 1,
        }
        transitions.push(t);
    }
    crate::transitions::record(store, WRITER, now, &transitions).await?;
    let mut left = match (plan, kept) {
        (Plan::Boundary(windows), Some(mut kept)) => {
            kept.refresh(&windows, ends);
            kept.as_of = now;
            kept
        }
        _ => {
            let mut end_ms: Vec<i64> = ends.iter().map(|t| t.timestamp_millis()).collect();
            end_ms.sort_unstable();
            EndDates {
                as_of: now,
                full_pass_at: Some(now),
                end_ms,
            }
        }
    };
    if report.unresolved_conflicts > 0 {
        left.full_pass_at = None;
    }
    store.put_json(keys::END_DATES, &left).await?;
    Ok(report)
}

/// The markets per tier at `at` by end date ([`EndDates::count_due`]) over the active markets
/// as re-tier last left them (at most a maintenance period old); before re-tier has recorded
/// any, the store's own count ([`MarketStore::count_due`]).
pub async fn count_due<S: MarketStore + ObjectStore>(
    store: &S,
    at: Ts,
) -> polytape_store::Result<BTreeMap<Option<Tier>, u64>> {
    match read_end_dates(store).await? {
        Some(kept) => Ok(kept.count_due(at)),
        None => store.count_due(at).await,
    }
}

/// What the last re-tier run left, if any (an unreadable object is logged and taken as none:
/// the next run is a full pass).
pub async fn read_end_dates<S: ObjectStore>(store: &S) -> polytape_store::Result<Option<EndDates>> {
    let Some(bytes) = store.get_object(keys::END_DATES).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<EndDates>(&bytes) {
        Ok(mut kept) => {
            kept.end_ms.sort_unstable();
            Ok(Some(kept))
        }
        Err(e) => {
            tracing::warn!(error = %e, "unreadable re-tier end dates: the next run is a full pass");
            Ok(None)
        }
    }
}

/// Which of `ids` Gamma reports closed. A failed lookup is reported and leaves those markets
/// sampled: they are asked about again next run.
async fn closed_on_gamma(
    client: &PolymarketClient,
    ids: &[String],
    report: &mut RetierReport,
) -> HashMap<String, GammaMarket> {
    let (closed, failures) = crate::resolutions::closed_on_gamma(client, ids).await;
    if let Some(f) = failures.first() {
        tracing::warn!(markets = ids.len(), error = %f.error, "could not ask Gamma whether markets past their end closed");
        report.closed_check_error = Some(f.error.to_string());
    }
    closed
}

/// Re-tier's decision for one stored market at `now`.
fn decide(m: &Market, now: Ts, closed: &HashMap<String, GammaMarket>) -> Option<Decision> {
    if !m.active {
        return None;
    }
    let mut next = m.clone();
    let reason = if let Some(g) = closed.get(&m.condition_id) {
        next.active = false;
        next.tier = None;
        next.closed_at = next.closed_at.or(g.closed_time).or(Some(now));
        // Its result is the resolutions duty's to judge; until then it awaits one.
        closed_without_result(&mut next);
        if let MarketResult::Pending { uma_status } = &mut next.result {
            *uma_status = uma_status
                .take()
                .or_else(|| g.uma_resolution_status.clone());
        }
        reason::CLOSED
    } else {
        let tier = Tier::at(now, m.end_date);
        if tier == m.tier {
            return None;
        }
        next.tier = tier;
        if tier.is_none() {
            next.active = false;
            reason::EXPIRED
        } else {
            reason::TIER_CHANGE
        }
    };
    Some(Decision {
        transitions: vec![TierTransition::of(m, m.tier, next.tier, now, reason)],
        market: next,
        change: crate::discover::Change::Updated,
    })
}
