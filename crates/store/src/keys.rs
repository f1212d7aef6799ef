//! The object key layout, identical in the data directory and on S3: Hive style
//! `<table>/tier=<t>/dt=<yyyy-mm-dd>/<tick label>.parquet` for per-tick files and
//! `markets/dt=<yyyy-mm-dd>/markets.parquet` for the daily markets dimension, registered with
//! Athena partition projection. A key is derived from the tick (or the day), so a retried
//! write replaces its object. The AWS adapter also keeps each tier's Latest values under
//! `latest/` ([`latest`]); that prefix is no Athena table.

use polytape_core::TickId;

/// Table name of the per-tick snapshot files.
pub const SNAPSHOTS: &str = "snapshots";
/// Table name of the per-tick order-book files.
pub const ORDERBOOKS: &str = "orderbooks";

/// Table name of the daily markets dimension.
pub const MARKETS: &str = "markets";

/// Table name of the resolved markets (one file per market).
pub const RESOLUTIONS: &str = "resolutions";

/// Table name of the tracked markets' transitions.
pub const TIER_TRANSITIONS: &str = "tier_transitions";

/// `status/results.json`: how many markets are open, pending, resolved and unresolved
/// (maintenance keeps it; the status API reads it).
pub const RESULT_COUNTS: &str = "status/results.json";

/// `resolutions/dt=2026-11-20/0xabc….parquet`: the resolution of one market, under the day it
/// closed ([`polytape_core::Resolution::close`]: Gamma's `closedTime`, else when polytape saw
/// it closed — never a future end date, which Athena's projection would not reach). Derived
/// from the market alone, so learning it again rewrites the same object.
pub fn resolution(r: &polytape_core::Resolution) -> String {
    let day = r.close();
    format!(
        "{RESOLUTIONS}/dt={}/{}.parquet",
        day.format("%Y-%m-%d"),
        r.condition_id
    )
}

/// `tier_transitions/dt=2026-11-20/223015.123Z-maintenance.parquet`: the transitions one run
/// of `writer` recorded at `at` (a retried run at the same instant replaces them).
pub fn transitions(writer: &str, at: polytape_core::Ts) -> String {
    format!(
        "{TIER_TRANSITIONS}/dt={}/{}Z-{writer}.parquet",
        at.format("%Y-%m-%d"),
        at.format("%H%M%S%.3f")
    )
}

/// Prefix of the per-tier Latest objects (the AWS adapter's; locally they live in SQLite).
pub const LATEST: &str = "latest";

/// `latest/tier=4.json.gz`: the Latest values of one tier, gzip-compressed JSON, rewritten
/// (conditionally) by every tick of the tier.
pub fn latest(tier: polytape_core::Tier) -> String {
    format!("{LATEST}/tier={}.json.gz", tier.number())
}

/// `markets/dt=2026-11-20/markets.parquet`: one file per UTC day, rewritten during the day.
pub fn markets(date: chrono::NaiveDate) -> String {
    format!("{MARKETS}/dt={}/markets.parquet", date.format("%Y-%m-%d"))
}

/// `snapshots/tier=2/dt=2026-11-20/20261120T223000Z.parquet`.
pub fn snapshots(tick: &TickId) -> String {
    tier_tick_key(SNAPSHOTS, tick)
}

/// `orderbooks/tier=2/dt=2026-11-20/20261120T223000Z.parquet`.
pub fn orderbooks(tick: &TickId) -> String {
    tier_tick_key(ORDERBOOKS, tick)
}

/// The prefix under which every object of `table` lives: `snapshots/`.
pub fn table_prefix(table: &str) -> String {
    format!("{table}/")
}

fn tier_tick_key(table: &str, tick: &TickId) -> String {
    format!(
        "{table}/tier={}/dt={}/{}.parquet",
        tick.tier.number(),
        tick.tick_ts.format("%Y-%m-%d"),
        tick.label()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::Tier;

    fn tick(tier: Tier, at: &str) -> TickId {
        TickId {
            tier,
            tick_ts: at.parse().unwrap(),
        }
    }

    #[test]
    fn given_a_tier_then_its_latest_object_sits_under_latest() {
        assert_eq!(latest(Tier::T4), "latest/tier=4.json.gz");
        assert_eq!(latest(Tier::T0), "latest/tier=0.json.gz");
    }

    #[test]
    fn given_a_tier2_tick_then_keys_are_hive_partitioned_by_tier_and_utc_day() {
        let t = tick(Tier::T2, "2026-11-20T22:30:00Z");
        assert_eq!(
            snapshots(&t),
            "snapshots/tier=2/dt=2026-11-20/20261120T223000Z.parquet"
        );
        assert_eq!(
            orderbooks(&t),
            "orderbooks/tier=2/dt=2026-11-20/20261120T223000Z.parquet"
        );
    }

    #[test]
    fn given_a_tier4_tick_just_before_midnight_then_dt_is_that_utc_day() {
        let t = tick(Tier::T4, "2026-11-20T23:59:45Z");
        assert_eq!(
            snapshots(&t),
            "snapshots/tier=4/dt=2026-11-20/20261120T235945Z.parquet"
        );
        assert_eq!(
            orderbooks(&t),
            "orderbooks/tier=4/dt=2026-11-20/20261120T235945Z.parquet"
        );
        assert!(snapshots(&t).starts_with(&table_prefix(SNAPSHOTS)));
        assert_eq!(
            markets(t.tick_ts.date_naive()),
            "markets/dt=2026-11-20/markets.parquet"
        );
        assert_eq!(table_prefix("snapshots"), "snapshots/");
    }
}
