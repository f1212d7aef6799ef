//! `term_structure`: markets of one event that ask the same question with different deadlines
//! ("… by March 31?", "… by June 30?") must be priced so a later deadline is at least as likely
//! as an earlier one. When `P(later) < P(earlier) − margin` (YES mids), buy the later market's
//! YES (worth at least `P(earlier)`) and/or the earlier market's NO (worth at least
//! `1 − P(later)`), each only when its ask leaves a positive edge.
//!
//! Grouping assumption: every market of one event id with a *distinct* end date is the same
//! question with a different deadline, ordered by end date; markets sharing an end date are not
//! compared (they are different questions, e.g. the outcomes of a neg-risk event). Markets
//! without an event id are left out. Every earlier/later pair of a group is checked; a token
//! signalled by several pairs keeps the signal with the largest edge.

use super::{buy, price_exit, to_json};
use crate::portfolio::Position;
use crate::signal::{ExitReason, Outcome, Signal};
use crate::strategy::Strategy;
use crate::view::MarketView;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Parameters of [`TermStructure`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TermStructureParams {
    /// The violation must exceed this (exclusive), in probability points. Default 0.03.
    pub margin: Decimal,
    /// Buy the later market's YES. Default true.
    pub buy_later_yes: bool,
    /// Buy the earlier market's NO. Default true.
    pub buy_earlier_no: bool,
    /// Confidence reported on signals. Default 0.5.
    pub confidence: f64,
    /// Sell when the bid rises this far above the entry price. Default 0.05.
    pub take_profit: Option<Decimal>,
    /// Sell when the bid falls this far below the entry price. Default 0.15.
    pub stop_loss: Option<Decimal>,
}

impl Default for TermStructureParams {
    fn default() -> Self {
        TermStructureParams {
            margin: Decimal::new(3, 2),
            buy_later_yes: true,
            buy_earlier_no: true,
            confidence: 0.5,
            take_profit: Some(Decimal::new(5, 2)),
            stop_loss: Some(Decimal::new(15, 2)),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct TermStructure {
    pub params: TermStructureParams,
}

impl TermStructure {
    pub fn new(params: TermStructureParams) -> Self {
        TermStructure { params }
    }
}

impl Strategy for TermStructure {
    fn name(&self) -> &'static str {
        "term_structure"
    }
    fn description(&self) -> &'static str {
        "within an event, buy a later deadline's YES / an earlier deadline's NO when the later is priced below the earlier"
    }
    fn version(&self) -> u32 {
        1
    }
    fn params(&self) -> serde_json::Value {
        to_json(&self.params)
    }

    fn filter(&self, m: &MarketView) -> bool {
        m.active && m.t < m.end_date && m.event_id.is_some() && m.yes.mid.is_some()
    }

    fn scan(&self, markets: &[&MarketView]) -> Vec<Signal> {
        let p = &self.params;
        let mut events: BTreeMap<&str, Vec<&MarketView>> = BTreeMap::new();
        for m in markets {
            if let Some(e) = m.event_id.as_deref() {
                events.entry(e).or_default().push(m);
            }
        }
        // Best signal per token, keyed so the output is sorted by (condition id, outcome).
        let mut best: BTreeMap<(String, Outcome), Signal> = BTreeMap::new();
        let mut keep = |s: Signal| {
            let key = (s.condition_id.clone(), s.outcome);
            match best.get(&key) {
                Some(old) if old.edge >= s.edge => {}
                _ => {
                    best.insert(key, s);
                }
            }
        };
        for group in events.values_mut() {
            group.sort_by(|a, b| (a.end_date, &a.condition_id).cmp(&(b.end_date, &b.condition_id)));
            for (i, early) in group.iter().enumerate() {
                for late in &group[i + 1..] {
                    if late.end_date == early.end_date {
                        continue;
                    }
                    let (Some(pe), Some(pl)) = (early.yes.mid, late.yes.mid) else {
                        continue;
                    };
                    if pl >= pe - p.margin {
                        continue;
                    }
                    let why = format!(
                        "P({}, ends {}) = {pl} < P({}, ends {}) = {pe} − {}",
                        late.condition_id,
                        late.end_date.format("%Y-%m-%d"),
                        early.condition_id,
                        early.end_date.format("%Y-%m-%d"),
                        p.margin
                    );
                    if let (true, Some(ask)) = (p.buy_later_yes, late.yes.ask) {
                        let edge = pe - ask;
                        if edge > Decimal::ZERO {
                            keep(buy(
                                self.name(),
                                late,
                                Outcome::Yes,
                                ask,
                                edge,
                                p.confidence,
                                format!("{why}: buy later YES"),
                            ));
                        }
                    }
                    if let (true, Some(ask)) = (p.buy_earlier_no, early.no.ask) {
                        let edge = Decimal::ONE - pl - ask;
                        if edge > Decimal::ZERO {
                            keep(buy(
                                self.name(),
                                early,
                                Outcome::No,
                                ask,
                                edge,
                                p.confidence,
                                format!("{why}: buy earlier NO"),
                            ));
                        }
                    }
                }
            }
        }
        best.into_values().collect()
    }

    fn should_exit(&self, position: &Position, m: &MarketView) -> Option<ExitReason> {
        price_exit(
            position,
            m,
            self.params.take_profit,
            self.params.stop_loss,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{d, view};

    const T: &str = "2026-11-20T12:00:00Z";

    fn in_event(event: &str, cid: &str, end: &str, bid: &str, ask: &str) -> MarketView {
        let mut v = view(cid, T, end, bid, ask);
        v.event_id = Some(event.into());
        v
    }

    fn scan(views: &[MarketView]) -> Vec<Signal> {
        let s = TermStructure::default();
        let refs: Vec<&MarketView> = views.iter().filter(|v| s.filter(v)).collect();
        s.scan(&refs)
    }

    #[test]
    fn given_a_later_deadline_priced_below_the_earlier_then_buy_later_yes_and_earlier_no() {
        // March: YES mid 0.50. June: YES mid 0.45 < 0.50 − 0.03.
        let views = [
            in_event("e1", "0xjun", "2027-06-30T00:00:00Z", "0.44", "0.46"),
            in_event("e1", "0xmar", "2027-03-31T00:00:00Z", "0.49", "0.51"),
        ];
        let s = scan(&views);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].condition_id.as_str(), s[0].outcome),
            ("0xjun", Outcome::Yes)
        );
        assert_eq!(
            (s[0].price, s[0].edge),
            (d("0.46"), d("0.04")),
            "0.50 − 0.46"
        );
        assert_eq!(
            (s[1].condition_id.as_str(), s[1].outcome),
            ("0xmar", Outcome::No)
        );
        assert_eq!(
            (s[1].price, s[1].edge),
            (d("0.51"), d("0.04")),
            "1 − 0.45 − 0.51"
        );
        assert_eq!(
            s[0].reason,
            "P(0xjun, ends 2027-06-30) = 0.45 < P(0xmar, ends 2027-03-31) = 0.50 − 0.03: buy later YES"
        );
    }

    #[test]
    fn given_a_gap_within_the_margin_or_the_right_order_then_no_signal() {
        let at_margin = [
            in_event("e1", "0xmar", "2027-03-31T00:00:00Z", "0.49", "0.51"),
            in_event("e1", "0xjun", "2027-06-30T00:00:00Z", "0.46", "0.48"),
        ];
        assert!(scan(&at_margin).is_empty(), "0.47 is not below 0.50 − 0.03");
        let ordered = [
            in_event("e1", "0xmar", "2027-03-31T00:00:00Z", "0.39", "0.41"),
            in_event("e1", "0xjun", "2027-06-30T00:00:00Z", "0.49", "0.51"),
        ];
        assert!(scan(&ordered).is_empty());
    }

    #[test]
    fn given_other_events_same_end_dates_or_no_event_then_not_compared() {
        let views = [
            in_event("e1", "0xmar", "2027-03-31T00:00:00Z", "0.49", "0.51"),
            in_event("e2", "0xjun", "2027-06-30T00:00:00Z", "0.19", "0.21"),
            in_event("e3", "0xa", "2027-06-30T00:00:00Z", "0.79", "0.81"),
            in_event("e3", "0xb", "2027-06-30T00:00:00Z", "0.09", "0.11"),
            view("0xnone", T, "2027-09-30T00:00:00Z", "0.01", "0.03"),
        ];
        assert!(scan(&views).is_empty());
    }

    #[test]
    fn given_several_pairs_then_each_token_keeps_its_largest_edge() {
        // Mar 0.60, Jun 0.55, Sep 0.40: Sep YES is cheap against both; keeps edge vs March.
        let views = [
            in_event("e1", "0xmar", "2027-03-31T00:00:00Z", "0.59", "0.61"),
            in_event("e1", "0xjun", "2027-06-30T00:00:00Z", "0.54", "0.56"),
            in_event("e1", "0xsep", "2027-09-30T00:00:00Z", "0.39", "0.41"),
        ];
        let s = TermStructure::new(TermStructureParams {
            buy_earlier_no: false,
            ..Default::default()
        });
        let refs: Vec<&MarketView> = views.iter().collect();
        let out = s.scan(&refs);
        assert_eq!(out.len(), 2, "Jun YES (vs Mar) and Sep YES");
        assert_eq!(
            (out[0].condition_id.as_str(), out[0].edge),
            ("0xjun", d("0.04"))
        );
        assert_eq!(
            (out[1].condition_id.as_str(), out[1].edge),
            ("0xsep", d("0.19"))
        );
    }
}
