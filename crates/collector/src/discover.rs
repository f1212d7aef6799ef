//! Discovery: page Gamma's keyset listing with server-side filters (open markets ending within
//! the lookahead), keep the markets polytape can sample, assign tiers, and write only what
//! changed — each write conditional on the version read, so discovery never undoes what
//! re-tier or another writer changed meanwhile.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::HandlerError;
use crate::tasks;
use polytape_core::ops::{reason, TaskStatus, TierTransition};
use polytape_core::{Market, MarketResult, Tier, Ts};
use polytape_polymarket::{GammaMarket, KeysetQuery, PolymarketClient};
use polytape_store::{MarketStore, ObjectStore, TaskStore, TransitionStore};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a listed market was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    NoConditionId,
    NoOrderBook,
    /// Token ids empty or still being hydrated by the CLOB.
    TokenIdsNotReady,
    NotBinary,
    LowVolume,
    EndOutsideWindow,
    Closed,
    /// Passed every filter but could not be turned into a market (reason logged).
    Unusable,
}

/// What one discovery run saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    pub pages: u32,
    /// Market objects Gamma returned that decoded.
    pub listed: usize,
    /// Market objects that could not be decoded (skipped, counted).
    pub rejected: usize,
    pub kept: usize,
    pub excluded: BTreeMap<Exclusion, usize>,
    pub new_markets: usize,
    /// Tracked markets written because something about them changed.
    pub updated_markets: usize,
    /// Tracked markets no longer listed although their end date is still ahead: closed early.
    pub retired_markets: usize,
    pub per_tier: BTreeMap<Tier, usize>,
    /// Fields that failed to decode and were taken as absent, per record kind and field.
    pub drifted: BTreeMap<String, usize>,
    /// Markets another writer kept changing while this run decided them: left for the next.
    pub unresolved_conflicts: usize,
    /// True when a listed record could not be attributed to a market (no usable condition
    /// id): then no tracked market is taken for closed for being absent from this listing.
    pub closing_skipped: bool,
}

/// Decides whether a listed market is one polytape samples, and why not.
pub fn exclusion(m: &GammaMarket, now: Ts, cfg: &Config) -> Option<Exclusion> {
    if m.condition_id().is_none() {
        return Some(Exclusion::NoConditionId);
    }
    if m.closed() == Some(true) {
        return Some(Exclusion::Closed);
    }
    if !m.enable_order_book() {
        return Some(Exclusion::NoOrderBook);
    }
    if m.outcomes().is_some_and(|o| o.len() != 2) {
        return Some(Exclusion::NotBinary);
    }
    if m.token_ids().is_none() {
        return Some(Exclusion::TokenIdsNotReady);
    }
    if !m.is_binary() {
        return Some(Exclusion::NotBinary);
    }
    if m.volume_24h().is_none_or(|v| v < cfg.min_volume_24h) {
        return Some(Exclusion::LowVolume);
    }
    let horizon = now + chrono::Duration::hours(cfg.lookahead_hours);
    match m.end_date() {
        Some(end) if end > now && end <= horizon => None,
        _ => Some(Exclusion::EndOutsideWindow),
    }
}

/// Discovery as a scheduled task: runs [`discover`] when it is due ([`crate::tasks::is_due`]:
/// hourly, and after a failure again within minutes, with backoff) and no other run holds its
/// lease, and records the run — failed ones too — so `/health`, the task status and the next
/// decision see it. `None` when it was not due. The same call serves `polytape run` (every
/// minute) and the discovery function (on its schedule). Requests stop at `until` (in Lambda,
/// the invocation's end less a margin), so a run the Lambda would kill fails in time to be
/// recorded.
pub async fn run_if_due<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
    until: Option<Ts>,
) -> Result<Option<DiscoveryReport>, HandlerError>
where
    S: MarketStore + TaskStore + TransitionStore + ObjectStore,
{
    let now = clock.now();
    let state = store.task_state(TASK).await?;
    if !tasks::is_due(
        state.as_ref(),
        now,
        cfg.discovery_every,
        cfg.discovery_retry_cap,
    ) {
        return Ok(None);
    }
    let lease =
        chrono::Duration::from_std(cfg.discovery_lease).unwrap_or(chrono::Duration::minutes(5));
    if !store.claim_task(TASK, now, now + lease).await? {
        return Ok(None);
    }
    let client = crate::clock::bounded(client, until, clock);
    let outcome = discover(&client, store, cfg, clock).await;
    tasks::finish(
        store,
        TASK,
        tasks::run_id(now, TASK),
        now,
        clock.now(),
        outcome,
    )
    .await
    .map(Some)
}

/// The task name of discovery runs.
pub const TASK: &str = "discovery";

impl tasks::RunOutcome for DiscoveryReport {
    fn status(&self) -> TaskStatus {
        if self.rejected > 0 || self.unresolved_conflicts > 0 || !self.drifted.is_empty() {
            TaskStatus::Partial
        } else {
            TaskStatus::Ok
        }
    }
}

/// What Gamma's listing says about one market.
enum Listed {
    /// Listed and kept: the market as discovery would store it (tier and activity set).
    Kept(Box<Market>),
    /// Listed, but not kept (excluded, unusable, or undecodable): left as it is.
    Excluded,
    /// Not in the listing.
    Absent,
}

/// Runs discovery at `now`: one keyset listing, one read of the tracked markets, writes of
/// what is new or changed (each conditional on the version read, so a concurrent writer's
/// change is never undone: a conflicting market is read again and decided anew), one batch
/// of tier transitions. Recording the run is the caller's ([`run_if_due`]).
pub async fn discover<S>(
    client: &PolymarketClient,
    store: &S,
    cfg: &Config,
    clock: &impl Clock,
) -> Result<DiscoveryReport, HandlerError>
where
    S: MarketStore + TransitionStore + ObjectStore,
{
    let now = clock.now();
    let horizon = now + chrono::Duration::hours(cfg.lookahead_hours);
    let query = KeysetQuery {
        closed: Some(false),
        end_date_min: Some(now),
        end_date_max: Some(horizon),
        limit: 100,
        extra: Vec::new(),
    };
    // The tracked markets are read before the listing: a market another writer closes while
    // the listing pages is then known to have been open, and is not reopened (`redecide`).
    let tracked: HashMap<String, Market> = store
        .active_markets()
        .await?
        .into_iter()
        .map(|m| (m.condition_id.clone(), m))
        .collect();
    // Rejected objects and drifted fields were logged by the client; here they are counted.
    let listing = client.keyset_markets(&query).await?;
    let mut report = DiscoveryReport {
        pages: listing.pages,
        listed: listing.items.len(),
        rejected: listing.rejected.len(),
        ..Default::default()
    };
    for d in &listing.drifts {
        *report.drifted.entry(d.stat_key()).or_default() += 1;
    }

    // A market that was listed but could not be decoded this time is still listed: it must not
    // be taken for closed (its tracked record is kept as it is). A record rejected without a
    // usable condition id could be any tracked market: then absence proves nothing this run.
    report.closing_skipped = !listing.rejected.is_empty();
    if report.closing_skipped {
        tracing::warn!(
            rejected = listing.rejected.len(),
            "listed records could not be attributed to a market: no market is taken for closed this run"
        );
    }
    let mut listed: HashMap<String, Listed> = listing
        .rejected
        .iter()
        .filter_map(|r| Some((r.key.clone()?, Listed::Excluded)))
        .collect();
    for gm in &listing.items {
        let Some(id) = gm.condition_id() else {
            *report.excluded.entry(Exclusion::NoConditionId).or_default() += 1;
            continue;
        };
        if let Some(why) = exclusion(gm, now, cfg) {
            *report.excluded.entry(why).or_default() += 1;
            listed.insert(id.to_string(), Listed::Excluded);
            continue;
        }
        match gm.to_market(now) {
            Ok(mut market) => {
                market.tier = Tier::at(now, market.end_date);
                market.active = market.tier.is_some();
                report.kept += 1;
                if let Some(t) = market.tier {
                    *report.per_tier.entry(t).or_default() += 1;
                }
                listed.insert(id.to_string(), Listed::Kept(Box::new(market)));
            }
            Err(reason) => {
                tracing::warn!(condition_id = id, %reason, "discovery could not use a market");
                *report.excluded.entry(Exclusion::Unusable).or_default() += 1;
                listed.insert(id.to_string(), Listed::Excluded);
            }
        }
    }

    let absent = if report.closing_skipped {
        Listed::Excluded
    } else {
        Listed::Absent
    };
    let decide = |id: &str, old: Option<&Market>| -> Option<Decision> {
        decide(listed.get(id).unwrap_or(&absent), old, now, horizon)
    };
    // Decided again after a conflict: a market another writer closed since it was read as
    // active stays closed — this run's listing is older than that writer's observation; the
    // next run's listing decides whether it is open again.
    let redecide = |id: &str, fresh: Option<&Market>| -> Option<Decision> {
        let closed_meanwhile =
            fresh.is_some_and(|f| !f.active) && tracked.get(id).is_some_and(|t| t.active);
        if closed_meanwhile {
            return None;
        }
        decide(id, fresh)
    };
    // Every listed market and every tracked one, decided on what was read.
    let mut ids: Vec<&String> = listed.keys().chain(tracked.keys()).collect();
    ids.sort();
    ids.dedup();
    let decisions: Vec<Decision> = ids
        .into_iter()
        .filter_map(|id| decide(id, tracked.get(id.as_str())))
        .collect();
    let written = write_decided(store, decisions, &redecide).await?;
    for d in &written.decisions {
        match d.change {
            Change::New => report.new_markets += 1,
            Change::Updated | Change::Relisted => report.updated_markets += 1,
            Change::Closed => report.retired_markets += 1,
        }
    }
    report.unresolved_conflicts = written.unresolved;
    let transitions: Vec<TierTransition> = written
        .decisions
        .into_iter()
        .flat_map(|d| d.transitions)
        .collect();
    crate::transitions::record(store, TASK, now, &transitions).await?;
    Ok(report)
}

/// What a writer changes about one market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    New,
    Updated,
    /// Inactive, and listed open again.
    Relisted,
    /// Tracked, no longer listed although its end date is still inside the window.
    Closed,
}

/// A market to write, why, and its transition.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub market: Market,
    pub change: Change,
    /// What changed, in order (a market may close and resolve in one run).
    pub transitions: Vec<TierTransition>,
}

/// Discovery's decision for one market, from the listing and the stored record `old`.
fn decide(listed: &Listed, old: Option<&Market>, now: Ts, horizon: Ts) -> Option<Decision> {
    match (listed, old) {
        (Listed::Kept(m), None) => Some(Decision {
            market: (**m).clone(),
            change: Change::New,
            transitions: vec![TierTransition::of(m, None, m.tier, now, reason::DISCOVERED)],
        }),
        (Listed::Kept(m), Some(old)) => {
            let mut market = (**m).clone();
            market.first_seen = old.first_seen;
            market.version = old.version;
            // A result another writer recorded is not discovery's to undo — except giving up:
            // listed open again, its result is to be learnt after all.
            market.result = match &old.result {
                MarketResult::Unresolved => MarketResult::Open,
                r => r.clone(),
            };
            market.closed_at = old.closed_at;
            let change = if !old.active {
                Change::Relisted
            } else if differs(old, &market) {
                Change::Updated
            } else {
                return None;
            };
            let reason = if change == Change::Relisted {
                reason::RELISTED
            } else {
                reason::TIER_CHANGE
            };
            let transitions = (old.tier != market.tier || !old.active)
                .then(|| TierTransition::of(&market, old.tier, market.tier, now, reason))
                .into_iter()
                .collect();
            Some(Decision {
                market,
                change,
                transitions,
            })
        }
        // The listing is complete (keyset_markets fails rather than return part of it), so an
        // active market missing from it while its end date is still inside the window was
        // closed. Past its end date it is re-tier's to judge (it asks Gamma).
        (Listed::Absent, Some(old))
            if old.active && old.end_date > now && old.end_date <= horizon =>
        {
            let mut gone = old.clone();
            gone.active = false;
            gone.tier = None;
            closed_without_result(&mut gone);
            Some(Decision {
                transitions: vec![TierTransition::of(old, old.tier, None, now, reason::CLOSED)],
                market: gone,
                change: Change::Closed,
            })
        }
        _ => None,
    }
}

/// A market that just left sampling closed awaits its result: an open (or given-up) result
/// becomes pending, with no UMA status known yet.
pub(crate) fn closed_without_result(m: &mut Market) {
    if matches!(m.result, MarketResult::Open | MarketResult::Unresolved) {
        m.result = MarketResult::Pending { uma_status: None };
    }
}

/// What [`write_decided`] wrote.
pub(crate) struct Written {
    /// The decisions written (the last one made for each market).
    pub decisions: Vec<Decision>,
    /// Markets still changing under us after every round: left for the next run.
    pub unresolved: usize,
}

/// Rounds of re-reading markets another writer changed before giving up until the next run.
const CONFLICT_ROUNDS: usize = 5;

/// Writes `decisions`; a market that another writer changed since it was read (a version
/// conflict) is read again and decided anew with `redecide` (which may decide to leave it),
/// for a few rounds.
pub(crate) async fn write_decided<S: MarketStore>(
    store: &S,
    mut decisions: Vec<Decision>,
    redecide: &impl Fn(&str, Option<&Market>) -> Option<Decision>,
) -> Result<Written, HandlerError> {
    let mut written = Vec::with_capacity(decisions.len());
    for _ in 0..CONFLICT_ROUNDS {
        if decisions.is_empty() {
            break;
        }
        let markets: Vec<Market> = decisions.iter().map(|d| d.market.clone()).collect();
        let conflicts: HashSet<String> = store.write_markets(&markets).await?.into_iter().collect();
        let mut again = Vec::new();
        for d in decisions {
            if !conflicts.contains(&d.market.condition_id) {
                written.push(d);
                continue;
            }
            let fresh = store.get_market(&d.market.condition_id).await?;
            tracing::info!(condition_id = %d.market.condition_id, "changed by another writer since it was read: deciding again");
            if let Some(next) = redecide(&d.market.condition_id, fresh.as_ref()) {
                again.push(next);
            }
        }
        decisions = again;
    }
    if !decisions.is_empty() {
        tracing::warn!(
            markets = decisions.len(),
            "markets kept changing under this run: left for the next one"
        );
    }
    Ok(Written {
        decisions: written,
        unresolved: decisions.len(),
    })
}

/// True when a stored market must be rewritten: what sampling depends on changed, or its event
/// or fees (rare; a market stored before polytape kept them gets them this way) — not the 24 h
/// volume, which moves every hour and would mean a write per market per run.
fn differs(old: &Market, new: &Market) -> bool {
    old.event_id != new.event_id
        || old.fees_enabled != new.fees_enabled
        || old.fee != new.fee
        || old.tier != new.tier
        || old.active != new.active
        || old.end_date != new.end_date
        || old.yes_token_id != new.yes_token_id
        || old.no_token_id != new.no_token_id
        || old.result != new.result
        || old.delisted != new.delisted
}
