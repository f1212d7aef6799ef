//! The object key layout, identical in the data directory and on S3: Hive style
//! `<table>/tier=<t>/dt=<yyyy-mm-dd>/<tick label>.parquet` for per-tick files and
//! `markets/dt=<yyyy-mm-dd>/markets.parquet` for the daily markets dimension, registered with
//! Athena partition projection. A key is derived from the tick (or the day), so a retried
//! write replaces its object. The live feed's tables (`trades`, `whale_events`, `raw_ws`) are
//! named by the queue messages that carried their rows ([`live`], [`live_set`]), so a message
//! delivered again is found stored; the
//! paper executor's (`signals`, `fills`, `positions`) by its step ([`paper`]). The AWS
//! adapter also keeps each tier's Latest values under `latest/` ([`latest`]); that prefix is no
//! Athena table.
//!
//! # Hours and compaction
//! Every file of a compacted table ([`COMPACTED_TABLES`]) starts its name with the UTC hour it
//! belongs to, `yyyymmddTHH` ([`hour_of`]): a tick file with its tick's, a live-feed file with
//! its message's. Hourly compaction (`crate::compact`) merges an hour's files of a partition
//! into `<hour>.compacted.parquet` ([`compacted`]) and records it in the partition's
//! `_manifest.json` ([`manifest`]). **The reading rule** ([`visible`]): where an hour of a
//! partition has a compacted file, that file stands for the hour and the hour's other files
//! are not read. Every reader follows it: `polytape export`, the DuckDB views of
//! `docs/data.md`, the Athena views of template.yaml.

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

/// Table name of the paper executor's signals (ordered or rejected).
pub const SIGNALS: &str = "signals";

/// Table name of the paper executor's fills.
pub const FILLS: &str = "fills";

/// Table name of the paper executor's positions, as of each step.
pub const POSITIONS: &str = "positions";

/// `live/flow.json`: the live feed's newest flow ([`polytape_core::live::FlowObject`]),
/// rewritten every 15 s; snapshot ticks of the WebSocket tiers join it. No Athena table.
pub const LIVE_FLOW: &str = "live/flow.json";

/// `status/results.json`: how many markets are open, pending, resolved and unresolved
/// (maintenance keeps it; the status API reads it).
pub const RESULT_COUNTS: &str = "status/results.json";

/// `status/end_dates.json`: every active market's end date as re-tier last left them, with the
/// time of its last run and of its last full pass (re-tier keeps it every run; the status API
/// counts the markets per tier from it).
pub const END_DATES: &str = "status/end_dates.json";

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

/// `trades/dt=2026-11-20/20261120T22-1795213800000-3-41872.parquet`: the rows of `table`
/// ([`TRADES`], [`WHALE_EVENTS`] or [`RAW_WS`]) that one SQS message of the live feed carried,
/// under the UTC day and hour of `day` (the caller's choice of the message's time, e.g. its
/// first record's: the hour compaction files it under). The rest of the name is the message's
/// (run, shard, first sequence): `run` the feed process's start (epoch ms), `shard` the shard
/// that sent it, `seq` the sequence of its first record (or the feed's tape writer's: its
/// object's first record). A retried write of the same rows derives the same key and
/// overwrites. Several messages stored together: [`live_set`].
pub fn live(table: &str, day: polytape_core::Ts, run: i64, shard: u32, seq: u64) -> String {
    format!("{}{shard}-{seq}.parquet", live_run_prefix(table, day, run))
}

/// `trades/dt=2026-11-20/20261120T22-1795213800000-`: where every live file of `table` that
/// holds rows of feed run `run` in the hour of `day` starts ([`live`], [`live_set`]).
pub fn live_run_prefix(table: &str, day: polytape_core::Ts, run: i64) -> String {
    format!(
        "{table}/dt={}/{}-{run}-",
        day.format("%Y-%m-%d"),
        hour_label(day)
    )
}

/// The widest set of messages one live file names ([`live_set`]): its name holds a bit per
/// sequence from the first to the last, 4 to a hex digit, so this keeps the key under S3's
/// 1,024 bytes (512 digits with the table, day, hour, run and first sequence around them).
pub const LIVE_SET_SPAN: u64 = 2048;

/// The file of the rows of `table` that several messages of one feed run carried, stored
/// together by one batch of the trades consumer: [`live`]'s key for a single message, and for
/// more `…-<first seq>_<bits>.parquet`, where hex digit `k` of `<bits>` holds the sequences
/// `first + 4k … first + 4k + 3` (bit `j` of the digit: `first + 4k + j`). The name says exactly
/// which messages the file holds ([`live_members`]), so a consumer that receives some of them
/// again sees from a listing that they are stored, and writes only the others.
/// `seqs` must be sorted, without repeats, not empty, and span at most [`LIVE_SET_SPAN`]
/// ([`live_chunks`] cuts a set so).
pub fn live_set(table: &str, day: polytape_core::Ts, run: i64, shard: u32, seqs: &[u64]) -> String {
    let (first, rest) = match seqs {
        [] | [_] => return live(table, day, run, shard, seqs.first().copied().unwrap_or(0)),
        [first, ..] => (*first, seqs),
    };
    let span = rest.last().map_or(0, |last| last - first) + 1;
    debug_assert!(span <= LIVE_SET_SPAN, "a live set spans {span} sequences");
    let mut digits = vec![0u8; span.div_ceil(4) as usize];
    for seq in rest {
        let offset = seq - first;
        digits[(offset / 4) as usize] |= 1 << (offset % 4);
    }
    let bits: String = digits
        .iter()
        .map(|d| char::from_digit(u32::from(*d), 16).unwrap_or('0'))
        .collect();
    let single = live(table, day, run, shard, first);
    let stem = single.strip_suffix(".parquet").unwrap_or(&single);
    format!("{stem}_{bits}.parquet")
}

/// `seqs` (sorted, without repeats) cut into runs that [`live_set`] can name: each spans at
/// most [`LIVE_SET_SPAN`] sequences.
pub fn live_chunks(seqs: &[u64]) -> Vec<&[u64]> {
    let mut chunks = Vec::new();
    let mut rest = seqs;
    while let Some(first) = rest.first() {
        let n = rest.partition_point(|s| s - first < LIVE_SET_SPAN);
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }
    chunks
}

/// The feed run, shard and message sequences a live file holds, read from its name ([`live`]
/// or [`live_set`]); `None` for any other name (a compacted file, a tick's file).
pub fn live_members(key: &str) -> Option<(i64, u32, Vec<u64>)> {
    let name = key.rsplit('/').next()?.strip_suffix(".parquet")?;
    hour_of(name)?;
    let mut parts = name.get(12..)?.splitn(3, '-');
    let run = parts.next()?.parse().ok()?;
    let shard = parts.next()?.parse().ok()?;
    let seqs = parts.next()?;
    let Some((first, bits)) = seqs.split_once('_') else {
        return Some((run, shard, vec![seqs.parse().ok()?]));
    };
    let first: u64 = first.parse().ok()?;
    let mut seqs = Vec::new();
    for (k, c) in bits.chars().enumerate() {
        let digit = c.to_digit(16)?;
        for j in 0..4u64 {
            if digit & (1 << j) != 0 {
                seqs.push(first.checked_add(4 * k as u64 + j)?);
            }
        }
    }
    (seqs.first() == Some(&first)).then_some((run, shard, seqs))
}

/// `signals/dt=2026-11-20/20261120T223000Z.parquet`: the rows of `table` ([`SIGNALS`],
/// [`FILLS`] or [`POSITIONS`]) that the paper executor's step at `step` wrote, under the UTC day
/// of the step and named like a tick's file (to the second), so a retried step replaces its
/// object and compaction files it under its hour.
pub fn paper(table: &str, step: polytape_core::Ts) -> String {
    format!(
        "{table}/dt={}/{}.parquet",
        step.format("%Y-%m-%d"),
        step.format("%Y%m%dT%H%M%SZ")
    )
}

/// The paper executor's tables, one file each per step ([`paper`]).
pub const PAPER_TABLES: [&str; 3] = [SIGNALS, FILLS, POSITIONS];

/// The tables hourly compaction merges: the per-tick files, the live feed's per-batch files
/// and the paper executor's per-step files. (`markets` is one file per day, `resolutions` one
/// per market and rewritten whenever a result is learnt again, `tier_transitions` one per run
/// that recorded any: few files, and the last two with no retry horizon to wait for.)
pub const COMPACTED_TABLES: [&str; 8] = [
    SNAPSHOTS,
    ORDERBOOKS,
    TRADES,
    WHALE_EVENTS,
    RAW_WS,
    SIGNALS,
    FILLS,
    POSITIONS,
];

/// The name ending of an hour's compacted file: `20261120T22.compacted.parquet`.
pub const COMPACTED_SUFFIX: &str = ".compacted.parquet";

/// The name of a partition's compaction manifest. It starts with `_`, which Athena and Hive
/// skip, and is no Parquet file, which the `*.parquet` globs of DuckDB skip.
pub const MANIFEST: &str = "_manifest.json";

/// The hour label of `t`, `yyyymmddTHH` (UTC): `20261120T22`.
pub fn hour_label(t: polytape_core::Ts) -> String {
    t.format("%Y%m%dT%H").to_string()
}

/// The hour a file belongs to: the `yyyymmddTHH` its name starts with
/// (`…/20261120T223015Z.parquet`, `…/20261120T22-17952…-3-41.parquet` and
/// `…/20261120T22.compacted.parquet` all give `20261120T22`); `None` for a name without one
/// (a live-feed file named before hours were in the name: never compacted, always read).
pub fn hour_of(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let hour = name.get(..11)?;
    let b = hour.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (digits(0..8) && b[8] == b'T' && digits(9..11)).then_some(hour)
}

/// The partition (directory, with its trailing `/`) a key lies in:
/// `snapshots/tier=2/dt=2026-11-20/`; empty for a key without one.
pub fn partition_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

/// `snapshots/tier=2/dt=2026-11-20/` or `trades/dt=2026-11-20/`: the partition of `table` for
/// a tier (the per-tier tables) and a UTC day.
pub fn partition(table: &str, tier: Option<polytape_core::Tier>, day: chrono::NaiveDate) -> String {
    match tier {
        Some(t) => format!("{table}/tier={}/dt={}/", t.number(), day.format("%Y-%m-%d")),
        None => format!("{table}/dt={}/", day.format("%Y-%m-%d")),
    }
}

/// `snapshots/tier=2/dt=2026-11-20/20261120T22.compacted.parquet`: the compacted file of an
/// hour of a partition (`partition` with its trailing `/`).
pub fn compacted(partition: &str, hour: &str) -> String {
    format!("{partition}{hour}{COMPACTED_SUFFIX}")
}

/// Whether `key` is an hour's compacted file.
pub fn is_compacted(key: &str) -> bool {
    key.ends_with(COMPACTED_SUFFIX) && hour_of(key).is_some()
}

/// `snapshots/tier=2/dt=2026-11-20/_manifest.json`: the compaction manifest of a partition.
pub fn manifest(partition: &str) -> String {
    format!("{partition}{MANIFEST}")
}

/// **The reading rule**: of `keys` (any listing, one partition or many), the files a reader
/// reads, in the order given. A file whose name starts with `_` or `.` is no data (the
/// manifest, a write in flight); where an hour of a partition has a compacted file, the
/// hour's other files are left out (they are the compacted file's sources, waiting to be
/// deleted); everything else is read. One listing decides, so a reader never counts a row
/// twice, whatever step compaction is at.
pub fn visible<K: AsRef<str>>(keys: &[K]) -> Vec<&K> {
    let compacted: std::collections::HashSet<(&str, &str)> = keys
        .iter()
        .map(AsRef::as_ref)
        .filter(|k| is_compacted(k))
        .filter_map(|k| Some((partition_of(k), hour_of(k)?)))
        .collect();
    keys.iter()
        .filter(|k| {
            let k = k.as_ref();
            let name = &k[partition_of(k).len()..];
            if name.starts_with(['_', '.']) {
                return false;
            }
            if is_compacted(k) {
                return true;
            }
            hour_of(k).is_none_or(|h| !compacted.contains(&(partition_of(k), h)))
        })
        .collect()
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
            "trades/dt=2026-11-20/20261120T23-1795213800000-3-41872.parquet"
        );
        assert_eq!(
            live(WHALE_EVENTS, day, run, 0, 0),
            "whale_events/dt=2026-11-20/20261120T23-1795213800000-0-0.parquet"
        );
        assert_eq!(
            live(RAW_WS, day, run, 12, u64::MAX),
            "raw_ws/dt=2026-11-20/20261120T23-1795213800000-12-18446744073709551615.parquet"
        );
        assert_eq!(
            hour_of(&live(TRADES, day, run, 3, 41_872)),
            Some("20261120T23")
        );
        // The same message twice: one key.
        assert_eq!(
            live(TRADES, day, run, 3, 41_872),
            live(TRADES, day, run, 3, 41_872)
        );
        assert!(live(RAW_WS, day, run, 1, 1).starts_with(&table_prefix(RAW_WS)));
    }

    #[test]
    fn given_messages_stored_together_then_their_file_names_exactly_the_messages_it_holds() {
        let day: polytape_core::Ts = "2026-11-20T23:59:59.999Z".parse().unwrap();
        let run = 1_795_213_800_000;
        // One message: the single message's key.
        assert_eq!(
            live_set(TRADES, day, run, 0, &[41_872]),
            live(TRADES, day, run, 0, 41_872)
        );
        // 100, 101, 103 and 104: offsets 0, 1, 3 | 4 → digits 0b1011, 0b0001.
        let key = live_set(TRADES, day, run, 0, &[100, 101, 103, 104]);
        assert_eq!(
            key,
            "trades/dt=2026-11-20/20261120T23-1795213800000-0-100_b1.parquet"
        );
        assert_eq!(hour_of(&key), Some("20261120T23"));
        assert_eq!(live_members(&key), Some((run, 0, vec![100, 101, 103, 104])));
        assert_eq!(
            live_members(&live(WHALE_EVENTS, day, run, 3, 41_872)),
            Some((run, 3, vec![41_872]))
        );
        // Every set of a span round-trips, the widest one too, and stays a valid S3 key.
        let sets: Vec<Vec<u64>> = vec![
            (7..7 + LIVE_SET_SPAN).collect(),
            (0..LIVE_SET_SPAN).step_by(5).collect(),
            vec![u64::MAX - 3, u64::MAX],
        ];
        for seqs in sets {
            let key = live_set(WHALE_EVENTS, day, run, 0, &seqs);
            assert!(key.len() <= 1024, "{} bytes", key.len());
            assert_eq!(live_members(&key), Some((run, 0, seqs)));
        }
        // Names that are not live files.
        for other in [
            compacted(&table_prefix(TRADES), "20261120T23"),
            "trades/dt=2026-11-20/20261120T23-1-0-5_0.parquet".to_string(),
            "trades/dt=2026-11-20/20261120T23-1-0-5_zz.parquet".to_string(),
            "trades/dt=2026-11-20/notes.txt".to_string(),
        ] {
            assert_eq!(live_members(&other), None, "{other}");
        }
    }

    #[test]
    fn given_a_set_wider_than_a_name_holds_then_it_is_cut_into_sets_that_fit() {
        let seqs: Vec<u64> = vec![1, 2, LIVE_SET_SPAN, LIVE_SET_SPAN + 1, 5 * LIVE_SET_SPAN];
        let chunks = live_chunks(&seqs);
        assert_eq!(
            chunks,
            vec![
                &[1, 2, LIVE_SET_SPAN][..],
                &[LIVE_SET_SPAN + 1][..],
                &[5 * LIVE_SET_SPAN][..]
            ]
        );
        assert!(live_chunks(&[]).is_empty());
    }

    #[test]
    fn given_an_executor_step_then_its_paper_keys_are_partitioned_by_utc_day_and_named_by_the_step()
    {
        let step: polytape_core::Ts = "2026-11-20T23:59:45Z".parse().unwrap();
        assert_eq!(
            paper(SIGNALS, step),
            "signals/dt=2026-11-20/20261120T235945Z.parquet"
        );
        assert_eq!(
            paper(FILLS, step),
            "fills/dt=2026-11-20/20261120T235945Z.parquet"
        );
        assert_eq!(
            paper(POSITIONS, step),
            "positions/dt=2026-11-20/20261120T235945Z.parquet"
        );
        // Named like the tick's own files: the same hour, and the step retried is one key.
        let t = tick(Tier::T4, "2026-11-20T23:59:45Z");
        assert_eq!(
            paper(SIGNALS, step).rsplit('/').next(),
            snapshots(&t).rsplit('/').next()
        );
        assert_eq!(hour_of(&paper(POSITIONS, step)), Some("20261120T23"));
        assert_eq!(
            partition_of(&paper(FILLS, step)),
            partition(FILLS, None, step.date_naive())
        );
        for table in PAPER_TABLES {
            assert!(COMPACTED_TABLES.contains(&table), "{table} is compacted");
        }
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

    #[test]
    fn given_file_names_then_their_hour_is_the_yyyymmddthh_they_start_with() {
        let t = tick(Tier::T4, "2026-11-20T23:59:45Z");
        assert_eq!(hour_of(&snapshots(&t)), Some("20261120T23"));
        assert_eq!(hour_label(t.tick_ts), "20261120T23");
        let part = partition(SNAPSHOTS, Some(Tier::T4), t.tick_ts.date_naive());
        assert_eq!(part, "snapshots/tier=4/dt=2026-11-20/");
        assert_eq!(partition_of(&snapshots(&t)), part);
        let c = compacted(&part, "20261120T23");
        assert_eq!(
            c,
            "snapshots/tier=4/dt=2026-11-20/20261120T23.compacted.parquet"
        );
        assert_eq!(hour_of(&c), Some("20261120T23"));
        assert!(is_compacted(&c) && !is_compacted(&snapshots(&t)));
        assert_eq!(
            manifest(&part),
            "snapshots/tier=4/dt=2026-11-20/_manifest.json"
        );
        assert_eq!(
            partition(TRADES, None, t.tick_ts.date_naive()),
            "trades/dt=2026-11-20/"
        );
        for no_hour in [
            "trades/dt=2026-11-20/1795213800000-3-41872.parquet",
            "x/2026112T223000Z.parquet",
            "x/20261120X22.parquet",
            "x/2026",
            "",
        ] {
            assert_eq!(hour_of(no_hour), None, "{no_hour}");
        }
    }

    #[test]
    fn given_an_hour_with_a_compacted_file_then_readers_read_it_and_not_its_sources() {
        let keys = [
            "snapshots/tier=2/dt=2026-11-20/20261120T21.compacted.parquet",
            "snapshots/tier=2/dt=2026-11-20/20261120T215900Z.parquet",
            "snapshots/tier=2/dt=2026-11-20/20261120T220000Z.parquet",
            "snapshots/tier=2/dt=2026-11-20/_manifest.json",
            "snapshots/tier=3/dt=2026-11-20/20261120T213000Z.parquet",
            "trades/dt=2026-11-20/1795213800000-3-41872.parquet",
            "trades/dt=2026-11-20/.20261120T21-1-0-1.parquet.tmp-1-1",
        ];
        let read: Vec<&&str> = visible(&keys);
        assert_eq!(
            read,
            [&keys[0], &keys[2], &keys[4], &keys[5]],
            "T2's 21h is its compacted file; T3's 21h (another partition) and files without an \
             hour are read; the manifest and hidden files are not"
        );
        let none: [&str; 0] = [];
        assert!(visible(&none).is_empty());
    }
}
