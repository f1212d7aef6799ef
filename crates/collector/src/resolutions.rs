//! Resolutions: learns each tracked market's final result from Gamma, a maintenance duty run
//! every `resolutions_every` (15 min by default).
//!
//! Every run asks Gamma, in batches of 100 condition ids:
//! * `closed=true` about every active market and every market awaiting a result — a market that
//!   closed (early, or past its end) leaves sampling here at the latest;
//! * the default listing (`closed=false`) about the awaiting markets Gamma did not return closed,
//!   to tell a market still open (expired, not yet closed) from one gone from Gamma (delisted) —
//!   and `closed=true` once more about those neither returned, in case one closed in between.
//!
//! A closed market's result is judged by [`GammaMarket::verdict`]: final only with final prices
//! and a `resolved` UMA status — or no status and the CLOB market's winner flags agreeing, asked
//! of the CLOB only for those. Proposed and disputed results are pending and asked about again
//! next period, for up to 14 days past the end date; then the result is recorded `unresolved`.
//! A final result is written to the `resolutions` table (one object per market, rewritten if it
//! is learnt again) before the market records it, and every change is a transition.

use crate::clock::Clock;
use crate::discover::{write_decided, Change, Decision};
use crate::error::HandlerError;
use futures_util::stream::{self, StreamExt};
use polytape_core::ops::{reason, ResultCounts, TierTransition};
use polytape_core::tier::RESOLUTION_POLL_S;
use polytape_core::{Market, MarketResult, Resolution, Ts};
use polytape_polymarket::{BatchFailure, ClobMarket, GammaMarket, PolymarketClient, Verdict};
use polytape_store::{keys, parquet, MarketStore, ObjectStore, TransitionStore};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The task name of resolutions runs.
pub const TASK: &str = "resolutions";

/// CLOB market lookups in flight at once (only for closed markets without a UMA status).
const CLOB_LOOKUPS_IN_FLIGHT: usize = 8;

/// What one resolutions run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResolutionsReport {
    /// Markets asked about: active ones and those awaiting a result.
    pub asked: usize,
    /// Closed on Gamma this run (they leave sampling).
    pub closed: usize,
    /// Final results learnt this run.
    pub resolved: usize,
    /// Of those, INVALID (a 50/50 split).
    pub invalid: usize,
    /// Closed without a final result yet (proposed, disputed, or awaiting the CLOB).
    pub pending: usize,
    /// Gone from Gamma this run.
    pub delisted: usize,
    /// Given up on: no final result 14 days past the end date.
    pub unresolved: usize,
    /// Condition ids Gamma could not be asked about (those markets wait for the next run).
    pub lookup_failed: usize,
    /// CLOB lookups that failed (those markets stay pending).
    pub clob_failed: usize,
    /// The first lookup error, if any.
    pub error: Option<String>,
    /// Markets another writer kept changing while this run decided them: left for the next.
    pub unresolved_conflicts: usize,
}

impl ResolutionsReport {
    /// True when part of the run could not be done (recorded as a partial run).
    pub fn partial(&self) -> bool {
        self.lookup_failed > 0 || self.clob_failed > 0 || self.unresolved_conflicts > 0
    }
}

impl crate::tasks::RunOutcome for ResolutionsReport {
    fn status(&self) -> polytape_core::ops::TaskStatus {
        if self.partial() {
            polytape_core::ops::TaskStatus::Partial
        } else {
            polytape_core::ops::TaskStatus::Ok
        }
    }

    fn error(&self) -> Option<String> {
        self.error.clone()
    }
}

/// What Gamma said of one market this run.
#[derive(Debug, Clone)]
enum Seen {
    /// Returned by the `closed=true` lookup, with the verdict on its result.
    Closed {
        verdict: Verdict,
        closed_time: Option<Ts>,
    },
    /// Returned by the default (open) lookup.
    Open,
    /// Returned by neither, both lookups having answered: gone from Gamma.
    Gone,
}

/// Asks Gamma about every active market and every market awaiting a result, and records what
/// changed. Lookups that fail leave their markets for the next run (reported, not an error).
pub async fn resolve<S>(
    client: &PolymarketClient,
    store: &S,
    clock: &impl Clock,
) -> Result<ResolutionsReport, HandlerError>
where
    S: MarketStore + TransitionStore + ObjectStore,
{
    let now = clock.now();
    let active = store.active_markets().await?;
    let awaiting = store.markets_awaiting_result().await?;
    let mut report = ResolutionsReport {
        asked: active.len() + awaiting.len(),
        ..ResolutionsReport::default()
    };
    let seen = ask_gamma(client, &active, &awaiting, now, &mut report).await;

    let decide = |m: &Market| decide(m, seen.get(&m.condition_id), now);
    let decisions: Vec<Decision> = active.iter().chain(&awaiting).filter_map(decide).collect();
    // Resolutions first: a market records its result only once its row is stored.
    let mut stored = HashSet::new();
    write_resolutions(store, &decisions, &mut stored).await?;
    let redecide = |_: &str, fresh: Option<&Market>| decide(fresh?);
    let written = write_decided(store, decisions, &redecide).await?;
    report.unresolved_conflicts = written.unresolved;
    // A market decided anew after a conflict may carry a result not yet stored.
    write_resolutions(store, &written.decisions, &mut stored).await?;

    let mut transitions = Vec::new();
    for d in &written.decisions {
        for t in &d.transitions {
            match t.reason.as_str() {
                reason::CLOSED => report.closed += 1,
                reason::RESOLVED => {
                    report.resolved += 1;
                    report.invalid += usize::from(d.market.outcome().is_some_and(|o| o.invalid));
                }
                reason::DELISTED => report.delisted += 1,
                reason::UNRESOLVED => report.unresolved += 1,
                _ => {}
            }
            transitions.push(t.clone());
        }
        if matches!(d.market.result, MarketResult::Pending { .. }) {
            report.pending += 1;
        }
    }
    crate::transitions::record(store, TASK, now, &transitions).await?;
    update_counts(store, &active, &awaiting, &written.decisions, now).await?;
    Ok(report)
}

/// Asks Gamma (and the CLOB where needed) about `active` and `awaiting`, by condition id.
async fn ask_gamma(
    client: &PolymarketClient,
    active: &[Market],
    awaiting: &[Market],
    now: Ts,
    report: &mut ResolutionsReport,
) -> HashMap<String, Seen> {
    let mut failed: HashSet<String> = HashSet::new();
    let note = |failures: &[BatchFailure],
                report: &mut ResolutionsReport,
                failed: &mut HashSet<String>| {
        for f in failures {
            report.error.get_or_insert_with(|| f.error.to_string());
            failed.extend(f.keys.iter().cloned());
        }
    };
    let ids: Vec<String> = active
        .iter()
        .chain(awaiting)
        .map(|m| m.condition_id.clone())
        .collect();
    let (mut closed, failures) = closed_on_gamma(client, &ids).await;
    note(&failures, report, &mut failed);

    let rest: Vec<String> = awaiting
        .iter()
        .map(|m| m.condition_id.clone())
        .filter(|id| !closed.contains_key(id) && !failed.contains(id))
        .collect();
    let mut open: HashSet<String> = HashSet::new();
    if !rest.is_empty() {
        let found = client.markets_by_condition_ids_filtered(&rest, None).await;
        note(&found.failures, report, &mut failed);
        open.extend(
            found
                .items
                .iter()
                .filter_map(|g| g.condition_id().map(str::to_owned)),
        );
    }
    // Returned by neither lookup: gone — unless it closed between the two, which a second
    // `closed=true` lookup of just those tells.
    let unseen: Vec<String> = rest
        .iter()
        .filter(|id| !open.contains(*id) && !failed.contains(*id))
        .cloned()
        .collect();
    if !unseen.is_empty() {
        let (again, failures) = closed_on_gamma(client, &unseen).await;
        note(&failures, report, &mut failed);
        closed.extend(again);
    }

    let clob = clob_markets(client, &closed, now, report).await;
    let mut seen = HashMap::new();
    for (id, g) in &closed {
        seen.insert(
            id.clone(),
            Seen::Closed {
                verdict: g.verdict(clob.get(id), now),
                closed_time: g.closed_time,
            },
        );
    }
    for id in &rest {
        if failed.contains(id) || closed.contains_key(id) {
            continue;
        }
        let s = if open.contains(id) {
            Seen::Open
        } else {
            Seen::Gone
        };
        seen.insert(id.clone(), s);
    }
    report.lookup_failed = failed.len();
    seen
}

/// The markets of `ids` Gamma reports closed (one `closed=true` lookup in batches of 100), by
/// condition id, and the lookups that failed (their ids are unknown this run).
pub(crate) async fn closed_on_gamma(
    client: &PolymarketClient,
    ids: &[String],
) -> (HashMap<String, GammaMarket>, Vec<BatchFailure>) {
    if ids.is_empty() {
        return (HashMap::new(), Vec::new());
    }
    let found = client
        .markets_by_condition_ids_filtered(ids, Some(true))
        .await;
    let asked: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let closed = found
        .items
        .into_iter()
        .filter(|g| g.closed() == Some(true))
        .filter_map(|g| {
            let id = g.condition_id()?.to_string();
            asked.contains(id.as_str()).then_some((id, g))
        })
        .collect();
    (closed, found.failures)
}

/// The CLOB market of each closed market whose verdict waits for it (no UMA status).
async fn clob_markets(
    client: &PolymarketClient,
    closed: &HashMap<String, GammaMarket>,
    now: Ts,
    report: &mut ResolutionsReport,
) -> HashMap<String, ClobMarket> {
    let wanted: Vec<&String> = closed
        .iter()
        .filter(|(_, g)| {
            matches!(
                g.verdict(None, now),
                Verdict::Pending {
                    needs_clob: true,
                    ..
                }
            )
        })
        .map(|(id, _)| id)
        .collect();
    // The futures are built before they are streamed (no closure inside the stream), which
    // keeps this future `Send`.
    let lookups: Vec<_> = wanted
        .into_iter()
        .map(|id| async move { (id.clone(), client.clob_market(id).await) })
        .collect();
    let answers: Vec<_> = stream::iter(lookups)
        .buffer_unordered(CLOB_LOOKUPS_IN_FLIGHT)
        .collect()
        .await;
    let mut out = HashMap::new();
    for (id, answer) in answers {
        match answer {
            Ok(Some(m)) => {
                out.insert(id, m);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(condition_id = %id, error = %e, "CLOB market lookup failed: its result stays pending");
                report.clob_failed += 1;
                report.error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}

/// What changes about `m` given what Gamma said (`None`: not asked, or the lookup failed).
fn decide(m: &Market, seen: Option<&Seen>, now: Ts) -> Option<Decision> {
    if !(m.active || m.awaits_result()) {
        return None;
    }
    let mut next = m.clone();
    let mut transitions = Vec::new();
    match seen {
        Some(Seen::Closed {
            verdict,
            closed_time,
        }) => {
            next.delisted = false;
            next.closed_at = next.closed_at.or(*closed_time).or(Some(now));
            // First seen closed here: sampled until now, or expired while still open.
            if next.active || m.result == MarketResult::Open {
                next.active = false;
                next.tier = None;
                transitions.push(TierTransition::of(m, m.tier, None, now, reason::CLOSED));
            }
            match verdict {
                Verdict::Final(outcome) if !fits(m, outcome) => {
                    tracing::warn!(condition_id = %m.condition_id, payouts = ?outcome.payouts, "a final result that does not fit the market's two outcomes: left pending");
                    next.result = MarketResult::Pending {
                        uma_status: outcome.uma_status.clone(),
                    };
                }
                Verdict::Final(outcome) => {
                    next.result = MarketResult::Resolved(outcome.clone());
                    transitions.push(TierTransition::of(m, None, None, now, reason::RESOLVED));
                }
                Verdict::Pending { uma_status, .. } => {
                    next.result = MarketResult::Pending {
                        uma_status: uma_status.clone(),
                    };
                }
                // `closed=true` returned it: never open.
                Verdict::Open => {}
            }
        }
        Some(Seen::Open) => next.delisted = false,
        Some(Seen::Gone) if !m.delisted => {
            next.delisted = true;
            transitions.push(TierTransition::of(m, m.tier, None, now, reason::DELISTED));
        }
        _ => {}
    }
    // Only a market Gamma was asked about this run: a failed lookup proves nothing.
    let given_up = seen.is_some()
        && !next.is_resolved()
        && !next.active
        && now >= m.end_date + chrono::Duration::seconds(RESOLUTION_POLL_S);
    if given_up {
        next.result = MarketResult::Unresolved;
        transitions.push(TierTransition::of(m, None, None, now, reason::UNRESOLVED));
    }
    if next == *m {
        return None;
    }
    Some(Decision {
        market: next,
        change: Change::Updated,
        transitions,
    })
}

/// Whether a final outcome fits the tracked market: two payouts, a winner among its two
/// outcomes (Gamma's record could have changed shape since discovery).
fn fits(m: &Market, o: &polytape_core::Outcome) -> bool {
    o.payouts.len() == m.outcomes.len() && o.winner.is_none_or(|i| i < m.outcomes.len())
}

/// Writes the `resolutions` row of every decision that resolves a market, unless `stored`
/// already holds it.
async fn write_resolutions<S: ObjectStore>(
    store: &S,
    decisions: &[Decision],
    stored: &mut HashSet<String>,
) -> Result<(), HandlerError> {
    for d in decisions {
        let Some(row) = Resolution::of(&d.market) else {
            continue;
        };
        if !stored.insert(row.condition_id.clone()) {
            continue;
        }
        let encoded = parquet::encode_resolutions(std::slice::from_ref(&row))?;
        store
            .put_object(
                &keys::resolution(&row),
                encoded.bytes,
                polytape_store::parquet::CONTENT_TYPE,
            )
            .await?;
    }
    Ok(())
}

/// Updates `status/results.json`: pending counted exactly from this run's markets, resolved
/// and unresolved advanced by what this run learnt (the hourly full count corrects any drift).
async fn update_counts<S: ObjectStore>(
    store: &S,
    active: &[Market],
    awaiting: &[Market],
    written: &[Decision],
    now: Ts,
) -> Result<(), HandlerError> {
    let mut counts = read_counts(store).await?.unwrap_or_default();
    let by_id: HashMap<&str, &Market> = written
        .iter()
        .map(|d| (d.market.condition_id.as_str(), &d.market))
        .collect();
    let markets = active
        .iter()
        .chain(awaiting)
        .map(|m| by_id.get(m.condition_id.as_str()).copied().unwrap_or(m));
    let now_counted = ResultCounts::of(markets, now);
    counts.pending = now_counted.pending;
    counts.delisted = now_counted.delisted;
    let learnt = ResultCounts::of(written.iter().map(|d| &d.market), now);
    counts.resolved += learnt.resolved;
    counts.invalid += learnt.invalid;
    counts.unresolved += learnt.unresolved;
    counts.as_of = Some(now);
    write_counts(store, &counts).await
}

/// The stored result counts, if any were written.
pub async fn read_counts<S: ObjectStore>(store: &S) -> Result<Option<ResultCounts>, HandlerError> {
    let Some(bytes) = store.get_object(keys::RESULT_COUNTS).await? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable result counts: counted afresh");
            Ok(None)
        }
    }
}

/// Replaces the stored result counts.
pub async fn write_counts<S: ObjectStore>(
    store: &S,
    counts: &ResultCounts,
) -> Result<(), HandlerError> {
    Ok(store.put_json(keys::RESULT_COUNTS, counts).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::Outcome;

    fn at(s: &str) -> Ts {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// A market that ended at noon and left sampling (expired: its result still open).
    fn ended() -> Market {
        Market {
            condition_id: "0xabc".into(),
            question: "Q?".into(),
            slug: None,
            yes_token_id: "1".into(),
            no_token_id: "2".into(),
            outcomes: ["Yes".into(), "No".into()],
            end_date: at("2026-11-20T12:00:00Z"),
            tier: None,
            active: false,
            result: MarketResult::Open,
            closed_at: None,
            delisted: false,
            first_seen: at("2026-11-19T00:00:00Z"),
            category: None,
            neg_risk: false,
            volume_24h: None,
            event_id: None,
            fees_enabled: None,
            fee: None,
            version: 3,
        }
    }

    fn final_with(winner: Option<usize>, payouts: usize) -> Seen {
        Seen::Closed {
            verdict: Verdict::Final(Outcome {
                winner,
                invalid: false,
                payouts: vec![rust_decimal::Decimal::ZERO; payouts],
                resolved_at: Some(at("2026-11-20T13:00:00Z")),
                learned_at: at("2026-11-20T13:10:00Z"),
                uma_status: Some("resolved".into()),
                source: "gamma".into(),
            }),
            closed_time: Some(at("2026-11-20T13:00:00Z")),
        }
    }

    fn reasons(d: &Decision) -> Vec<&str> {
        d.transitions.iter().map(|t| t.reason.as_str()).collect()
    }

    #[test]
    fn given_an_expired_market_gamma_then_closes_then_it_is_closed_and_resolved() {
        let now = at("2026-11-21T14:00:00Z");
        let d = decide(&ended(), Some(&final_with(Some(1), 2)), now).unwrap();
        assert_eq!(reasons(&d), ["closed", "resolved"]);
        assert_eq!(d.market.winning_token_id(), Some("2"));
        assert_eq!(d.market.closed_at, Some(at("2026-11-20T13:00:00Z")));
        // Closed before (by re-tier): pending, so only the resolution is new.
        let mut pending = ended();
        pending.result = MarketResult::Pending { uma_status: None };
        pending.closed_at = Some(at("2026-11-20T12:30:00Z"));
        let d = decide(&pending, Some(&final_with(Some(0), 2)), now).unwrap();
        assert_eq!(reasons(&d), ["resolved"]);
        assert_eq!(d.market.closed_at, Some(at("2026-11-20T12:30:00Z")));
    }

    #[test]
    fn given_a_final_result_that_does_not_fit_two_outcomes_then_it_stays_pending() {
        let now = at("2026-11-21T14:00:00Z");
        for seen in [final_with(Some(2), 3), final_with(None, 3)] {
            let d = decide(&ended(), Some(&seen), now).unwrap();
            assert_eq!(reasons(&d), ["closed"]);
            assert!(matches!(d.market.result, MarketResult::Pending { .. }));
        }
    }

    #[test]
    fn given_14_days_past_the_end_then_only_a_market_gamma_answered_for_is_given_up() {
        let late = at("2026-12-04T12:00:01Z");
        assert!(
            decide(&ended(), None, late).is_none(),
            "its lookup failed this run: nothing decided"
        );
        let d = decide(&ended(), Some(&Seen::Open), late).unwrap();
        assert_eq!(reasons(&d), ["unresolved"]);
        assert_eq!(d.market.result, MarketResult::Unresolved);
        let early = at("2026-12-04T11:59:59Z");
        assert!(decide(&ended(), Some(&Seen::Open), early).is_none());
        let mut resolved = ended();
        resolved.result = MarketResult::Unresolved;
        assert!(
            decide(&resolved, Some(&Seen::Open), late).is_none(),
            "given up once"
        );
    }
}
