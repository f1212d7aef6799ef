//! CloudWatch Embedded Metric Format: one JSON line on stdout per flush, which CloudWatch Logs
//! turns into metrics. Printed with `println!`, not through `tracing`, because EMF requires the
//! line to be the JSON object alone. Series are few on purpose (each costs ~$0.30/month):
//! `CoveragePct` per tier (5) and dimensionless totals, among them `CompactionLagSeconds`, which
//! every maintenance run prints (`MaintenanceReport::metrics`).
//!
//! [`document`] is the one place an EMF object is built: every polytape binary that reports
//! metrics (the snapshot, discovery and maintenance functions, the trades function, the
//! ws-fargate feed task) describes its values as [`Metric`]s and hands them to it.

use crate::snapshot::TickReport;
use serde_json::{json, Map, Value};

/// The metrics namespace of every polytape function.
pub const NAMESPACE: &str = "Polytape";

/// The CloudWatch unit of a metric (the ones polytape uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Percent,
    Seconds,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Percent => "Percent",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One metric of a document: its name (a root member of the document), unit and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: Value,
}

impl Metric {
    /// A count (`Unit::Count`).
    pub fn count(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            unit: Unit::Count,
            value: json!(value),
        }
    }

    /// A duration in whole seconds (`Unit::Seconds`).
    pub fn seconds(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            unit: Unit::Seconds,
            value: json!(value),
        }
    }

    /// A percentage, 0–100 (`Unit::Percent`).
    pub fn percent(name: &'static str, value: f64) -> Metric {
        Metric {
            name,
            unit: Unit::Percent,
            value: json!(value),
        }
    }
}

/// Builds one EMF object in [`NAMESPACE`] at `timestamp_ms`: the `dimensioned` metrics under
/// the one `dimension` (name, value), the `totals` without a dimension. A list left empty adds
/// no directive, and without metrics under it the dimension is left out too.
pub fn document(
    timestamp_ms: i64,
    dimension: Option<(&str, &str)>,
    dimensioned: &[Metric],
    totals: &[Metric],
) -> Value {
    let names = |metrics: &[Metric]| -> Vec<Value> {
        metrics
            .iter()
            .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
            .collect()
    };
    let mut root = Map::new();
    let mut directives = Vec::new();
    if let (Some((dim, value)), false) = (dimension, dimensioned.is_empty()) {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [[dim]],
            "Metrics": names(dimensioned),
        }));
        root.insert(dim.to_string(), json!(value));
        root.extend(
            dimensioned
                .iter()
                .map(|m| (m.name.to_string(), m.value.clone())),
        );
    }
    if !totals.is_empty() {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [[]],
            "Metrics": names(totals),
        }));
        root.extend(totals.iter().map(|m| (m.name.to_string(), m.value.clone())));
    }
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(root)
}

/// The EMF document of one tick: coverage of its tier and skipped ticks (1, or 0 for a tick
/// that ran) as metrics; the rows written and the inputs rejected as plain members of the line
/// ([`ROWS_FIELD`], [`REJECTED_FIELD`]: the dashboard sums them with Logs Insights, so they
/// cost no metric series); none for a late duplicate of a completed tick (it was counted when
/// it ran).
pub fn tick_metrics(r: &TickReport, timestamp_ms: i64) -> Option<Value> {
    if r.already_done {
        return None;
    }
    let mut dimensioned = Vec::new();
    if !r.skipped && r.markets > 0 {
        dimensioned.push(Metric::percent(
            "CoveragePct",
            100.0 * r.rows as f64 / r.markets as f64,
        ));
    }
    let skipped = Metric::count("TicksSkipped", u64::from(r.skipped));
    let tier = r.tick.tier.to_string();
    let mut doc = document(
        timestamp_ms,
        Some(("Tier", &tier)),
        &dimensioned,
        &[skipped],
    );
    if !r.skipped {
        // Values that could not be used: rejected records and values, values too large to
        // store, and fields whose type drifted (each stored NULL or left out).
        let drifted: usize = r.drifted.values().sum();
        doc[ROWS_FIELD] = json!(r.rows);
        doc[REJECTED_FIELD] = json!(r.rejected + r.nulled + drifted);
    }
    Some(doc)
}

/// The member of a tick's EMF line holding the rows it wrote: logged, not a metric (a series
/// costs $0.30 a month; template.yaml's dashboard sums it from the snapshot function's logs).
pub const ROWS_FIELD: &str = "RowsWritten";

/// The member of an EMF line holding the inputs a run could not use (bad records and values,
/// poison messages, malformed frames): printed by the snapshot and trades functions and the
/// feed task, logged, not a metric; template.yaml's dashboard sums it over their logs.
pub const REJECTED_FIELD: &str = "RejectedInputs";

/// The EMF document of a failed task.
pub fn task_failure(timestamp_ms: i64) -> Value {
    document(timestamp_ms, None, &[], &[Metric::count("TaskFailures", 1)])
}

/// Prints `doc` as one line on stdout, where the Lambda runtime forwards it to CloudWatch Logs.
pub fn emit(doc: &Value) {
    println!("{doc}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::{TickId, Tier};

    fn report(markets: usize, rows: usize, skipped: bool) -> TickReport {
        let tick = TickId {
            tier: Tier::T3,
            tick_ts: "2026-11-20T10:00:30Z".parse().unwrap(),
        };
        let mut r: TickReport = serde_json::from_value(json!({
            "tick": tick, "skipped": skipped, "markets": markets, "rows": rows, "books": rows, "gamma_missing": 0,
            "books_missing": 0, "missing": markets - rows, "rejected": 2, "nulled": 1, "gamma_requests": 1,
            "book_requests": 1, "failed_requests": 0, "retryable_failure": false, "snapshot_key": null,
            "orderbook_key": null, "elapsed_ms": 5,
            "drifted": {"gamma market.updatedAt": 2}
        }))
        .unwrap();
        r.tick = tick;
        r
    }

    #[test]
    fn given_metrics_under_a_dimension_and_totals_then_the_document_has_both_directives() {
        let doc = document(
            1_700_000_000_000,
            Some(("Tier", "T2")),
            &[Metric::percent("CoveragePct", 97.5)],
            &[
                Metric::count("Trades", 42),
                Metric::count("RejectedInputs", 0),
            ],
        );
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": "Polytape",
                            "Dimensions": [["Tier"]],
                            "Metrics": [{"Name": "CoveragePct", "Unit": "Percent"}],
                        },
                        {
                            "Namespace": "Polytape",
                            "Dimensions": [[]],
                            "Metrics": [
                                {"Name": "Trades", "Unit": "Count"},
                                {"Name": "RejectedInputs", "Unit": "Count"},
                            ],
                        },
                    ],
                },
                "Tier": "T2",
                "CoveragePct": 97.5,
                "Trades": 42,
                "RejectedInputs": 0,
            })
        );
        // A dimension with no metric under it is left out, with its directive.
        let doc = document(1, Some(("Tier", "T2")), &[], &[Metric::count("Trades", 1)]);
        assert!(doc.get("Tier").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_tick_reports_its_tier_coverage_and_totals_in_emf() {
        let doc = tick_metrics(&report(40, 38, false), 1_700_000_000_000).unwrap();
        assert_eq!(doc["Tier"], "T3");
        assert_eq!(doc["CoveragePct"], 95.0);
        assert_eq!(
            (doc[ROWS_FIELD].as_u64(), doc[REJECTED_FIELD].as_u64()),
            (Some(38), Some(5)),
            "2 rejected + 1 too large + 2 drifted"
        );
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives[0]["Dimensions"], json!([["Tier"]]));
        assert_eq!(
            directives[0]["Metrics"],
            json!([{"Name": "CoveragePct", "Unit": "Percent"}])
        );
        assert_eq!(directives[1]["Dimensions"], json!([[]]));
        let mut named = Vec::new();
        for d in directives {
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(
                    doc.get(name).is_some(),
                    "every metric named is a root member"
                );
                named.push(name);
            }
        }
        // The rows and rejected inputs are in the line for Logs Insights, but not metric series;
        // a tick that ran counts no skipped tick.
        assert_eq!(named, ["CoveragePct", "TicksSkipped"]);
        assert_eq!(doc["TicksSkipped"], 0);
    }

    #[test]
    fn a_skipped_tick_counts_as_skipped_without_coverage() {
        let doc = tick_metrics(&report(0, 0, true), 1).unwrap();
        assert_eq!(doc["TicksSkipped"], 1);
        assert!(doc.get("CoveragePct").is_none() && doc.get("Tier").is_none());
        assert_eq!(task_failure(1)["TaskFailures"], 1);
        let mut dup = report(0, 0, true);
        dup.already_done = true;
        assert!(
            tick_metrics(&dup, 1).is_none(),
            "a late duplicate is not a skipped tick"
        );
    }
}
