//! `polytape bench`: one T2 tick of N markets against the simulator with added latency, as a
//! user's deployment would run it. The simulator runs as a child process so the peak RSS
//! reported is the collector's alone. `--case export`: an export of N generated snapshot rows,
//! its rows/s and peak RSS. Figures and method: BENCHMARKS.md.

use anyhow::{bail, Context};
use polytape_collector::snapshot::{snapshot_tick, TickDeadline};
use polytape_collector::{discover::discover, Config, SystemClock};
use polytape_core::tier::hours_between;
use polytape_core::{TickId, Tier};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::{LocalStore, MarketStore};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

struct SimChild(Child);

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(markets: usize, latency_ms: u64, ticks: u32) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the polytape binary")?;
    let mut child = Command::new(exe)
        .args([
            "sim",
            "--port",
            "0",
            "--markets-per-tier",
            &markets.to_string(),
            "--latency-ms",
            &latency_ms.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the simulator process")?;
    let stdout = child.stdout.take().context("simulator stdout")?;
    let child = SimChild(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let Some(base) = first.trim().strip_prefix("listening on ") else {
        bail!("unexpected simulator output: {first:?}")
    };
    let endpoints = Endpoints {
        gamma: format!("{base}/gamma"),
        clob: format!("{base}/clob"),
        data: format!("{base}/data"),
        ws: format!("{}/ws/market", base.replacen("http", "ws", 1)),
    };
    let client = PolymarketClient::new(ClientConfig {
        endpoints,
        ..ClientConfig::default()
    })?;
    let dir = std::env::temp_dir().join(format!("polytape-bench-{}", std::process::id()));
    let store = LocalStore::open(&dir)?;

    let t = Instant::now();
    let d = discover(&client, &store, &Config::default(), &SystemClock).await?;
    println!(
        "discovery: {} markets listed in {} pages, {} kept, {:.2} s",
        d.listed,
        d.pages,
        d.kept,
        t.elapsed().as_secs_f64()
    );
    let in_t2 = store.markets_due(Tier::T2, chrono::Utc::now()).await?.len();
    println!(
        "T2 markets: {in_t2}   latency per response: {latency_ms} ms   books batch: {}",
        client.config().books_batch
    );
    println!(
        "{:>4} {:>9} {:>6} {:>6} {:>7} {:>7} {:>9}",
        "tick", "wall_ms", "rows", "books", "gamma", "books", "requests"
    );
    let mut walls = Vec::new();
    for i in 0..ticks {
        let tick = TickId::floor(Tier::T2, chrono::Utc::now());
        let before = client.stats().requests;
        let t = Instant::now();
        let deadline = TickDeadline::of(tick, None, Config::default().tick_margin);
        let r = snapshot_tick(&client, &store, tick, &SystemClock, deadline).await?;
        let wall = t.elapsed();
        walls.push(wall.as_secs_f64() * 1000.0);
        println!(
            "{:>4} {:>9.1} {:>6} {:>6} {:>7} {:>7} {:>9}",
            i + 1,
            wall.as_secs_f64() * 1000.0,
            r.rows,
            r.books,
            r.gamma_requests,
            r.book_requests,
            client.stats().requests - before
        );
    }
    walls.sort_by(f64::total_cmp);
    let median = walls.get(walls.len() / 2).copied().unwrap_or_default();
    let (hwm, rss) = memory_kib();
    println!(
        "median wall {median:.1} ms over {ticks} ticks; collector peak RSS {} MiB (now {} MiB)",
        hwm / 1024,
        rss / 1024
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// (VmHWM, VmRSS) of this process in KiB, from /proc (0 where unavailable).
pub(crate) fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Markets per generated tick file (a T2 tick of 200 markets: one file, 200 rows).
const EXPORT_MARKETS_PER_TICK: u32 = 200;
/// T2 ticks a generated market is sampled for (12 h) before it closes and a new market takes
/// its slot; slots are staggered so markets close all the time.
const EXPORT_MARKET_LIFE_TICKS: u32 = 720;

/// `polytape bench --case export --rows N`: writes N fully populated snapshot rows as T2 tick
/// files (200 rows each, one per minute from 2026-11-20) with the resolutions of their
/// markets, then times `polytape_store::export::export` of them to Parquet and reports rows/s
/// and the peak RSS of the export alone (the high-water mark is reset after generating).
pub fn export(rows: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("polytape-bench-export-{}", std::process::id()));
    let result = export_in(&dir, rows);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn export_in(dir: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let generated = generate(dir, rows)?;
    println!(
        "generated {} snapshot rows in {} T2 tick files ({} MiB), {} resolutions, in {:.1} s",
        rows,
        generated.files,
        generated.bytes >> 20,
        generated.resolutions,
        t.elapsed().as_secs_f64()
    );
    let (_, rss_before) = memory_kib();
    let reset = reset_peak_rss();
    let out = dir.join("train.parquet");
    let opts = polytape_store::export::ExportOptions::new(dir, &out);
    let t = Instant::now();
    let s = polytape_store::export::export(&opts, &mut |_| {})?;
    let wall = t.elapsed().as_secs_f64();
    let (hwm, _) = memory_kib();
    let out_bytes = std::fs::metadata(&out)?.len();
    println!("{s}");
    println!(
        "export: {} rows in, {} written, {:.2} s → {:.0} rows/s read ({:.0} written/s); \
         output {:.1} MiB; duplicate set at most {} keys",
        s.rows_in,
        s.rows_written,
        wall,
        s.rows_in as f64 / wall,
        s.rows_written as f64 / wall,
        out_bytes as f64 / f64::from(1 << 20),
        s.peak_partition_keys
    );
    if reset {
        println!(
            "peak RSS during the export {} MiB (RSS before it {} MiB)",
            hwm / 1024,
            rss_before / 1024
        );
    } else {
        println!(
            "peak RSS {} MiB, generation included (/proc/self/clear_refs not writable)",
            hwm / 1024
        );
    }
    Ok(())
}

struct Generated {
    files: usize,
    bytes: u64,
    resolutions: usize,
}

/// Writes `rows` snapshot rows and their markets' resolutions under `dir`, one tick file at a
/// time (memory stays that of one file). Of the markets, every 20th has no resolution, every
/// 10th is INVALID (no resolved_at: it closes at its end date), every 25th resolved an hour
/// before its last sample (those rows fall after the close); the others resolve 5 min after.
fn generate(dir: &std::path::Path, rows: usize) -> anyhow::Result<Generated> {
    use polytape_core::{MarketResult, Outcome, Resolution};
    use polytape_store::keys;
    use polytape_store::parquet::{encode_resolutions, encode_snapshots};

    let start: polytape_core::Ts = "2026-11-20T00:00:00Z".parse()?;
    let tick_at = |k: u32| start + chrono::TimeDelta::seconds(60 * i64::from(k));
    let put = |key: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
        Ok(())
    };
    let (per, life) = (EXPORT_MARKETS_PER_TICK, EXPORT_MARKET_LIFE_TICKS);
    let mut out = Generated {
        files: 0,
        bytes: 0,
        resolutions: 0,
    };
    let mut left = rows;
    let mut k = 0u32;
    while left > 0 {
        let n_rows = left.min(per as usize);
        let tick = TickId {
            tier: Tier::T2,
            tick_ts: tick_at(k),
        };
        let mut batch = Vec::with_capacity(n_rows);
        for slot in 0..n_rows as u32 {
            let offset = slot * life / per;
            let generation = (k + offset) / life;
            let n = generation * per + slot;
            let mut m = polytape_store::contract::market(n, Some(Tier::T2), true);
            m.end_date = tick_at((generation + 1) * life - offset);
            if (k + offset).is_multiple_of(life) || k == 0 {
                // The market's first sample here: write its resolution once.
                let resolved_at = match n {
                    n if n % 10 == 3 => None,
                    n if n % 25 == 5 => Some(m.end_date - chrono::TimeDelta::hours(1)),
                    _ => Some(m.end_date + chrono::TimeDelta::minutes(5)),
                };
                let winner = (n % 10 != 3).then_some((n % 2) as usize);
                m.result = MarketResult::Resolved(Outcome {
                    winner,
                    invalid: winner.is_none(),
                    payouts: Vec::new(),
                    resolved_at,
                    learned_at: m.end_date + chrono::TimeDelta::minutes(10),
                    uma_status: Some("resolved".into()),
                    source: "gamma".into(),
                });
                if let Some(r) = Resolution::of(&m).filter(|_| n % 20 != 7) {
                    let enc = encode_resolutions(std::slice::from_ref(&r))?;
                    put(&keys::resolution(&r), &enc.bytes)?;
                    out.resolutions += 1;
                }
            }
            batch.push(bench_row(&m, tick.tick_ts, k, n));
        }
        let enc = encode_snapshots(&batch)?;
        put(&keys::snapshots(&tick), &enc.bytes)?;
        out.files += 1;
        out.bytes += enc.bytes.len() as u64;
        left -= n_rows;
        k += 1;
    }
    Ok(out)
}

/// A fully populated snapshot row of market `m` at tick `k` (every column set: the worst case
/// for reading and writing), values varied by tick and market.
fn bench_row(
    m: &polytape_core::Market,
    at: polytape_core::Ts,
    k: u32,
    n: u32,
) -> polytape_core::Snapshot {
    use polytape_core::money::from_mantissa;
    let v = i64::from((k * 7 + n * 13) % 1000);
    let price = |base: i64| Some(from_mantissa(base + v * 100));
    let size = |base: i64| Some(from_mantissa(base * 1_000_000 + v * 1_234_567));
    let count = |base: u32| Some(base + (k + n) % 50);
    polytape_core::Snapshot {
        snapshot_ts: at,
        fetched_at: at + chrono::TimeDelta::milliseconds(1_234),
        condition_id: m.condition_id.clone(),
        token_id: m.yes_token_id.clone(),
        tier: Some(Tier::T2),
        interval_s: 60,
        price: price(400_000),
        best_bid: price(395_000),
        best_ask: price(405_000),
        spread: price(10_000),
        last_trade_price: price(401_000),
        mid_price: price(400_000),
        price_change_1h: price(-15_000),
        price_change_1d: price(100_000),
        price_change_1w: price(-250_000),
        price_change_1m: price(333_333),
        volume_total: size(999_999),
        volume_24h: size(123_456),
        volume_1w: size(654_321),
        liquidity: size(45_000),
        bid_depth_5: size(1_234),
        bid_depth_10: size(2_345),
        bid_depth_20: size(3_456),
        bid_depth_50: size(4_567),
        ask_depth_5: size(987),
        ask_depth_10: size(1_987),
        ask_depth_20: size(2_987),
        ask_depth_50: size(3_987),
        bid_levels: count(37),
        ask_levels: count(41),
        book_imbalance: Some(0.123 + v as f64 / 10_000.0),
        bid_wall_price: price(380_000),
        bid_wall_size: size(50_000),
        ask_wall_price: price(450_000),
        ask_wall_size: size(75_000),
        tick_size: Some(from_mantissa(1_000)),
        trade_count_1h: count(250),
        buy_count_1h: count(140),
        sell_count_1h: count(110),
        volume_1h: size(25_000),
        buy_volume_1h: size(15_000),
        sell_volume_1h: size(10_000),
        avg_trade_size_1h: size(100),
        max_trade_size_1h: size(5_000),
        vwap_1h: price(423_456),
        whale_count_1h: count(3),
        whale_volume_1h: size(12_000),
        whale_buy_volume_1h: size(9_000),
        whale_sell_volume_1h: size(3_000),
        whale_net_flow_1h: size(-6_000),
        whale_buy_ratio_1h: Some(0.75),
        time_since_whale_s: Some(1_234 + v),
        pct_volume_from_whales: Some(0.48),
        hours_to_close: Some(hours_between(at, m.end_date)),
        day_of_week: Some(5),
        hour_of_day: Some(22),
        category: Some("Crypto".into()),
        neg_risk: Some(n.is_multiple_of(2)),
        competitive: Some(0.987_654_321),
    }
}

/// Resets this process's peak RSS (VmHWM) to its current RSS, so the next [`memory_kib`]
/// reports the peak of what ran since; false where /proc/self/clear_refs is not writable.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `polytape bench feed --frames FILE`: pushes recorded frames (one WebSocket text frame per
/// line, each line a JSON string holding the frame text) through the feed's hot path — split,
/// classify, decode what it uses, top of book, trade keys and de-duplication, the windows — on
/// this one thread, and prints events/s. The tokens are registered from the frames themselves
/// (a market's tokens in order of first appearance), every market covered, as in a running
/// feed. `passes` > 1 replays the file again (the repeats then count as duplicates).
pub fn feed(path: &std::path::Path, passes: u32) -> anyhow::Result<()> {
    use polytape_feed::{Asset, Feed, FeedConfig};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the frames file {}", path.display()))?;
    let mut frames = Vec::new();
    let mut bad_lines = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<String>(line) {
            Ok(f) => frames.push(f),
            Err(_) => bad_lines += 1,
        }
    }
    if frames.is_empty() {
        bail!(
            "no frames in {} ({bad_lines} lines were not JSON strings)",
            path.display()
        );
    }
    let bytes: usize = frames.iter().map(String::len).sum();

    // The registry: each market's tokens in order of first appearance.
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        asset_id: Option<String>,
        #[serde(default)]
        market: Option<String>,
    }
    let mut tokens: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &frames {
        let Ok(events) = polytape_polymarket::ws::split_frame(f) else {
            continue;
        };
        for e in events {
            if let Ok(Named {
                asset_id: Some(a),
                market: Some(m),
            }) = serde_json::from_str::<Named>(e.json.get())
            {
                let list = tokens.entry(m).or_default();
                if !list.contains(&a) && list.len() < 2 {
                    list.push(a);
                }
            }
        }
    }
    let start_ms = chrono::Utc::now().timestamp_millis();
    for fast_path in [true, false] {
        let mut feed = Feed::new(FeedConfig {
            fast_path,
            ..FeedConfig::default()
        });
        feed.set_assets(tokens.iter().flat_map(|(m, ts)| {
            let cid: Arc<str> = Arc::from(m.as_str());
            ts.iter()
                .enumerate()
                .map(move |(i, t)| {
                    (
                        t.clone(),
                        Asset {
                            condition_id: cid.clone(),
                            outcome: i as u8,
                        },
                    )
                })
                .collect::<Vec<_>>()
        }));
        for m in tokens.keys() {
            feed.covered_from(m, start_ms - 3_600_000);
        }
        let t = Instant::now();
        let mut seq = 0u64;
        let mut outputs = 0usize;
        for _ in 0..passes.max(1) {
            for f in &frames {
                seq += 1;
                feed.on_frame(1, seq, start_ms + (seq / 100) as i64, f);
                if seq.is_multiple_of(1024) {
                    outputs += feed.drain().len();
                }
            }
        }
        outputs += feed.drain().len();
        let wall = t.elapsed().as_secs_f64();
        let c = feed.counts();
        println!(
            "{}: {} frames ({:.1} MiB, {} markets, {} tokens) × {} passes: {} events in {:.3} s → {:.0} events/s ({:.0} frames/s, {:.0} MiB/s) on one thread; {} frames by the one-pass decoder",
            if fast_path { "hot path" } else { "tolerant decoder only" },
            frames.len(),
            bytes as f64 / f64::from(1 << 20),
            tokens.len(),
            tokens.values().map(Vec::len).sum::<usize>(),
            passes.max(1),
            c.events,
            wall,
            c.events as f64 / wall,
            seq as f64 / wall,
            (bytes as f64 * f64::from(passes.max(1))) / f64::from(1 << 20) / wall,
            c.fast_frames,
        );
        println!(
            "  trades {} (duplicates {}), outputs {outputs}, unknown events {}, malformed frames {}, markets with flow {}",
            c.trades_ws,
            c.duplicates,
            c.unknown_events,
            c.malformed_frames,
            feed.flow(start_ms + (seq / 100) as i64).len()
        );
    }
    Ok(())
}
