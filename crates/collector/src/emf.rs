//! CloudWatch Embedded Metric Format: one JSON line on stdout per flush, which CloudWatch Logs
//! turns into metrics. Printed with `println!`, not through `tracing`, because EMF requires the
//! line to be the JSON object alone. Series are few on purpose (each costs ~$0.30/month):
//! `CoveragePct` per tier (5) and the dimensionless totals below.

use crate::snapshot::TickReport;
use serde_json::{json, Map, Value};

/// The metrics namespace of every polytape function.
pub const NAMESPACE: &str = "Polytape";

/// The EMF document of one tick: coverage of its tier, rows written, skipped ticks and
/// rejected inputs; none for a late duplicate of a completed tick (it was counted when it ran).
pub fn tick_metrics(r: &TickReport, timestamp_ms: i64) -> Option<Value> {
    if r.already_done {
        return None;
    }
    let mut dimensioned = Map::new();
    let mut totals = Map::new();
    if r.skipped {
        totals.insert("TicksSkipped".into(), json!(1));
    } else {
        if r.markets > 0 {
            dimensioned.insert(
                "CoveragePct".into(),
                json!(100.0 * r.rows as f64 / r.markets as f64),
            );
        }
        totals.insert("RowsWritten".into(), json!(r.rows));
        // Values that could not be used: rejected records and values, values too large to
        // store, and fields whose type drifted (each stored NULL or left out).
        let drifted: usize = r.drifted.values().sum();
        totals.insert(
            "RejectedInputs".into(),
            json!(r.rejected + r.nulled + drifted),
        );
    }
    Some(document(
        timestamp_ms,
        Some(("Tier", r.tick.tier.to_string())),
        dimensioned,
        totals,
    ))
}

/// The EMF document of a failed task.
pub fn task_failure(timestamp_ms: i64) -> Value {
    document(
        timestamp_ms,
        None,
        Map::new(),
        Map::from_iter([("TaskFailures".to_string(), json!(1))]),
    )
}

/// Builds one EMF object: `dimensioned` metrics under the one dimension, `totals` without.
fn document(
    timestamp_ms: i64,
    dimension: Option<(&str, String)>,
    dimensioned: Map<String, Value>,
    totals: Map<String, Value>,
) -> Value {
    let mut root = Map::new();
    let mut directives = Vec::new();
    let unit = |name: &str| {
        if name == "CoveragePct" {
            "Percent"
        } else {
            "Count"
        }
    };
    if let (Some((dim, value)), false) = (&dimension, dimensioned.is_empty()) {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [[dim]],
            "Metrics": dimensioned.keys().map(|k| json!({"Name": k, "Unit": unit(k)})).collect::<Vec<_>>(),
        }));
        root.insert((*dim).to_string(), json!(value));
    }
    if !totals.is_empty() {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [[]],
            "Metrics": totals.keys().map(|k| json!({"Name": k, "Unit": unit(k)})).collect::<Vec<_>>(),
        }));
    }
    root.extend(dimensioned);
    root.extend(totals);
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(root)
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
    fn a_tick_reports_its_tier_coverage_and_totals_in_emf() {
        let doc = tick_metrics(&report(40, 38, false), 1_700_000_000_000).unwrap();
        assert_eq!(doc["Tier"], "T3");
        assert_eq!(doc["CoveragePct"], 95.0);
        assert_eq!(
            (doc["RowsWritten"].as_u64(), doc["RejectedInputs"].as_u64()),
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
        for d in directives {
            for m in d["Metrics"].as_array().unwrap() {
                assert!(
                    doc.get(m["Name"].as_str().unwrap()).is_some(),
                    "every metric named is a root member"
                );
            }
        }
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
