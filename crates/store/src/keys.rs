//! The object key layout, identical in the data directory and on S3: Hive style
//! `<table>/tier=<t>/dt=<yyyy-mm-dd>/<tick label>.parquet` for per-tick files and
//! `markets/dt=<yyyy-mm-dd>/markets.parquet` for the daily markets dimension, registered with
//! Athena partition projection. A key is derived from the tick (or the day), so a retried
//! write replaces its object. The live feed's tables (`trades`, `whale_events`, `raw_ws`) are
//! keyed by the queue message that carried their rows ([`live`]), for the same reason. The AWS adapter also keeps each tier's Latest values under
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

/// Table name of the live feed's trades.
pub const TRADES: &str = "trades";

/// Table name of the whale trades with the mid around them.
pub const WHALE_EVENTS: &str = "whale_events";

/// Table name of the live feed's raw tape.
pub const RAW_WS: &str = "raw_ws";

/// `live/flow.json`: the live feed's newest flow ([`polytape_core::live::FlowObject`]),
/// rewritten every 15 s; snapshot ticks of the WebSocket tiers join it. No Athena table.
pub const LIVE_FLOW: &str = "live/flow.json";

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

/// `trades/dt=2026-11-20/1795213800000-3-41872.parquet`: the rows of `table` ([`TRADES`],
/// [`WHALE_EVENTS`] or [`RAW_WS`]) that one SQS message of the live feed carried, under the UTC
/// day of `day` (the caller's choice of the message's time, e.g. its first record's). The name
/// is the message's (run, shard, first sequence): `run` the feed process's start (epoch ms),
/// `shard` the shard that sent it, `seq` the sequence of its first record. A redelivered
/// message, or a consumer retried after a partial failure, derives the same key from the same
/// message and overwrites its files instead of adding duplicates.
pub fn live(table: &str, day: polytape_core::Ts, run: i64, shard: u32, seq: u64) -> String {
    format!(
        "{table}/dt={}/{run}-{shard}-{seq}.parquet",
        day.format("%Y-%m-%d")
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
    fn given_a_feed_message_then_its_live_keys_are_hive_partitioned_by_utc_day_and_named_by_run_shard_seq(
    ) {
        let day: polytape_core::Ts = "2026-11-20T23:59:59.999Z".parse().unwrap();
        let run = 1_795_213_800_000;
        assert_eq!(
            live(TRADES, day, run, 3, 41_872),
            "trades/dt=2026-11-20/1795213800000-3-41872.parquet"
        );
        assert_eq!(
            live(WHALE_EVENTS, day, run, 0, 0),
            "whale_events/dt=2026-11-20/1795213800000-0-0.parquet"
        );
        assert_eq!(
            live(RAW_WS, day, run, 12, u64::MAX),
            "raw_ws/dt=2026-11-20/1795213800000-12-18446744073709551615.parquet"
        );
        // The same message twice: one key.
        assert_eq!(
            live(TRADES, day, run, 3, 41_872),
            live(TRADES, day, run, 3, 41_872)
        );
        assert!(live(RAW_WS, day, run, 1, 1).starts_with(&table_prefix(RAW_WS)));
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
