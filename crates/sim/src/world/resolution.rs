//! How a market closes and resolves, the way Gamma shows it: its [`TruthStage`] moves from open
//! through closed, proposed and disputed to final, driven by a rolling world's course or by the
//! `SimHandle` knobs.
//!
//! A rolling-world market closes at t0 = end + `resolve_after` and, with F = `finalize_after`,
//! follows one of four courses, each a pure function of (seed, market id) so it never depends on
//! when requests came:
//! * plain (≈ 80 %): proposed at t0, final (the proposed winner) at t0 + F;
//! * disputed (≈ 10 %): proposed at t0, disputed at t0 + F/2, re-proposed at t0 + F (maybe the
//!   other outcome), final at t0 + 2F;
//! * invalid (≈ 5 %): proposed at t0, final 50-50 at t0 + F — except a neg-risk market, which
//!   cannot void (`NegRiskOperator` accepts only `[1,0]` / `[0,1]`) and takes the plain course;
//! * without status (≈ 5 %): closed with nothing proposed at t0, final without
//!   `umaResolutionStatus` at t0 + F.
//!
//! A market a knob moved is hand-driven from then on (`close_market` aside): its course stops.

use std::cmp::Reverse;
use std::collections::HashSet;

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::{Rolling, SimMarket, World};
use crate::rng::{mix, unit};
use crate::{MarketKind, SimResult, TruthStage};

/// Lanes of the seed for resolution draws, apart from the generation and arrival lanes.
const WINNER_LANE: u64 = 0xA881_7A15_0000_0003;
const COURSE_LANE: u64 = 0xA881_7A15_0000_0005;
const REPROPOSE_LANE: u64 = 0xA881_7A15_0000_0006;
const UNTRADED_LANE: u64 = 0xA881_7A15_0000_0007;
const SHORT_HISTORY_LANE: u64 = 0xA881_7A15_0000_0008;
const STILL_ACCEPTING_LANE: u64 = 0xA881_7A15_0000_0009;

/// Shares of the rolling world's courses (the rest is plain).
const DISPUTED_SHARE: f64 = 0.10;
const INVALID_SHARE: f64 = 0.05;
const WITHOUT_STATUS_SHARE: f64 = 0.05;
/// Binary markets whose proposal is served `["0.5", "0.5"]`, as an untraded market reads (not a
/// void).
const UNTRADED_SHARE: f64 = 0.10;
/// Final markets whose `umaResolutionStatuses` stops short at `"proposed"`, as in the real
/// `gamma_market_closed_accepting_false_nautilus.json`.
const SHORT_HISTORY_SHARE: f64 = 0.20;
/// Rolling-world markets still `acceptingOrders: true` once closed, as real Gamma shows some.
const STILL_ACCEPTING_SHARE: f64 = 0.10;

/// Which way a rolling-world market goes from its close to its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Course {
    Plain,
    Disputed,
    Invalid,
    WithoutStatus,
}

impl World {
    fn draw(&self, lane: u64, id: u64) -> u64 {
        mix(&[self.seed, lane, id])
    }

    fn course(&self, m: &SimMarket) -> Course {
        let u = unit(self.draw(COURSE_LANE, m.id));
        if u < DISPUTED_SHARE {
            Course::Disputed
        } else if u < DISPUTED_SHARE + INVALID_SHARE {
            if m.neg_risk {
                Course::Plain
            } else {
                Course::Invalid
            }
        } else if u < DISPUTED_SHARE + INVALID_SHARE + WITHOUT_STATUS_SHARE {
            Course::WithoutStatus
        } else {
            Course::Plain
        }
    }

    /// The stages of `m`'s course and when each starts, from its close at `t0`.
    fn steps(
        &self,
        m: &SimMarket,
        t0: DateTime<Utc>,
        finalize_after: Duration,
    ) -> Vec<(DateTime<Utc>, TruthStage)> {
        let n = m.outcomes.len().max(1) as u64;
        let first = (self.draw(WINNER_LANE, m.id) % n) as usize;
        let f = finalize_after;
        let proposed = TruthStage::Proposed { outcome: first };
        let won = |outcome| TruthStage::Final {
            result: SimResult::Winner(outcome),
        };
        match self.course(m) {
            Course::Plain => vec![(t0, proposed), (t0 + f, won(first))],
            Course::Disputed => {
                let second = (self.draw(REPROPOSE_LANE, m.id) % n) as usize;
                vec![
                    (t0, proposed),
                    (t0 + f / 2, TruthStage::Disputed { outcome: first }),
                    (t0 + f, TruthStage::Proposed { outcome: second }),
                    (t0 + f * 2, won(second)),
                ]
            }
            Course::Invalid => vec![
                (t0, proposed),
                (
                    t0 + f,
                    TruthStage::Final {
                        result: SimResult::Invalid,
                    },
                ),
            ],
            Course::WithoutStatus => vec![
                (t0, TruthStage::Closed),
                (t0 + f, TruthStage::FinalWithoutStatus { outcome: first }),
            ],
        }
    }

    /// Whether `m`'s proposal is served with untraded-looking `["0.5", "0.5"]` prices.
    pub fn untraded_proposal(&self, m: &SimMarket) -> bool {
        m.binary() && unit(self.draw(UNTRADED_LANE, m.id)) < UNTRADED_SHARE
    }

    /// Takes every course step due by `now`, in time order, and queues each market's next one.
    pub(super) fn resolve(&mut self, r: &mut Rolling, now: DateTime<Utc>) {
        while let Some(&Reverse((t, id, k))) = r.due.peek() {
            if t > now {
                break;
            }
            r.due.pop();
            let Ok(idx) = self.markets.binary_search_by_key(&id, |m| m.id) else {
                continue;
            };
            let m = &self.markets[idx];
            if m.hand_driven || m.resolved() {
                continue;
            }
            let steps = self.steps(m, m.end_date + r.resolve_after, r.finalize_after);
            let Some(&(at, stage)) = steps.get(k) else {
                continue;
            };
            let accepting = unit(self.draw(STILL_ACCEPTING_LANE, id)) < STILL_ACCEPTING_SHARE;
            self.set_stage(idx, stage, at, accepting);
            if stage.is_final() {
                r.resolved.push_back((at, id));
            }
            if let Some(&(next, _)) = steps.get(k + 1) {
                r.due.push(Reverse((next, id, k + 1)));
            }
        }
    }

    /// Moves market `idx` to `stage` at `t`: closes it first when open (still accepting orders
    /// or not), extends its UMA status history, and records when it became final. A market
    /// never reopens: `TruthStage::Open` is ignored.
    fn set_stage(&mut self, idx: usize, stage: TruthStage, t: DateTime<Utc>, accepting: bool) {
        if stage == TruthStage::Open {
            return;
        }
        if !self.markets[idx].closed() {
            self.stop_trading(idx, t, accepting);
        }
        let short = unit(self.draw(SHORT_HISTORY_LANE, self.markets[idx].id)) < SHORT_HISTORY_SHARE;
        let m = &mut self.markets[idx];
        match stage {
            TruthStage::Proposed { .. } => m.uma_statuses.push("proposed"),
            TruthStage::Disputed { .. } => m.uma_statuses.push("disputed"),
            TruthStage::Final { .. } => {
                if m.uma_statuses.is_empty() {
                    m.uma_statuses.push("proposed");
                }
                if !short {
                    m.uma_statuses.push("resolved");
                }
            }
            TruthStage::Open | TruthStage::Closed | TruthStage::FinalWithoutStatus { .. } => {}
        }
        if stage.is_final() {
            m.final_at = Some(t);
            m.kind = MarketKind::Resolved;
        } else {
            m.kind = MarketKind::Closed;
        }
        m.stage = stage;
    }

    /// Market `idx` stops trading at `t` (to the second): prices frozen, its book gone,
    /// `closedTime` set.
    fn stop_trading(&mut self, idx: usize, t: DateTime<Utc>, accepting: bool) {
        let at = t.trunc_subsecs(0);
        let m = &mut self.markets[idx];
        m.accepting_orders = accepting;
        m.closed_time = Some(at);
        m.frozen_step = Some(at.timestamp());
        if m.has_book {
            m.has_book = false;
            m.book_until_ms = Some(at.timestamp_millis());
            for tok in &m.token_ids {
                self.books.remove(tok);
            }
        }
    }

    /// Moves the market with `condition_id` at `at` to the stage `next` picks for it (`None`:
    /// refused), not accepting orders if it closes now; `hand_driven` stops its course. False
    /// when there is no such market or `next` refused.
    fn drive(
        &mut self,
        condition_id: &str,
        at: DateTime<Utc>,
        hand_driven: bool,
        next: impl FnOnce(&SimMarket) -> Option<TruthStage>,
    ) -> bool {
        let Some(&idx) = self.by_condition.get(condition_id) else {
            return false;
        };
        let Some(stage) = next(&self.markets[idx]) else {
            return false;
        };
        self.set_stage(idx, stage, at, false);
        let m = &mut self.markets[idx];
        m.hand_driven |= hand_driven;
        if let (true, Some(r)) = (stage.is_final(), &mut self.rolling) {
            r.resolved.push_back((at, m.id));
        }
        true
    }

    /// Closes the open market with `condition_id` at `at` (trading stops, nothing proposed). A
    /// rolling world's course goes on from there. False when there is no such open market.
    pub fn close(&mut self, condition_id: &str, at: DateTime<Utc>) -> bool {
        self.drive(condition_id, at, false, |m| {
            (m.stage == TruthStage::Open).then_some(TruthStage::Closed)
        })
    }

    /// Proposes `outcome` at `at` (closing the market if open); also the re-proposal after a
    /// dispute. False when there is no such market, `outcome` is out of range, or it is already
    /// proposed or final.
    pub fn propose(&mut self, condition_id: &str, outcome: usize, at: DateTime<Utc>) -> bool {
        self.drive(condition_id, at, true, |m| {
            let from = matches!(
                m.stage,
                TruthStage::Open | TruthStage::Closed | TruthStage::Disputed { .. }
            );
            (from && outcome < m.outcomes.len()).then_some(TruthStage::Proposed { outcome })
        })
    }

    /// Disputes the proposal at `at`. False when there is no such market or it is not proposed.
    pub fn dispute(&mut self, condition_id: &str, at: DateTime<Utc>) -> bool {
        self.drive(condition_id, at, true, |m| match m.stage {
            TruthStage::Proposed { outcome } => Some(TruthStage::Disputed { outcome }),
            _ => None,
        })
    }

    /// Makes the market final at `at` as `stage` (`Final` or `FinalWithoutStatus`), closing it
    /// if open. False when there is no such market, `stage` is not final, a winner is out of
    /// range, or it is final already.
    pub fn finalize(&mut self, condition_id: &str, stage: TruthStage, at: DateTime<Utc>) -> bool {
        self.drive(condition_id, at, true, |m| {
            let valid = match stage.result() {
                Some(SimResult::Winner(o)) => o < m.outcomes.len(),
                Some(SimResult::Invalid) => true,
                None => false,
            };
            (valid && !m.resolved()).then_some(stage)
        })
    }

    /// Removes the market with `condition_id` from the world (every listing, lookup, book and
    /// the CLOB market) and remembers its condition id. False when there is no such market.
    pub fn delist(&mut self, condition_id: &str) -> bool {
        let Some(&idx) = self.by_condition.get(condition_id) else {
            return false;
        };
        let id = self.markets[idx].id;
        self.drop_markets(&HashSet::from([id]));
        self.delisted.push(condition_id.to_string());
        true
    }
}
