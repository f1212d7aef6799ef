//! `polytape bench backtest [--rows N] [--markets M] [--dir DIR] [--json]`: how fast the
//! backtester replays N snapshot rows, and how much memory it takes.
//!
//! 1. **The data** ([`generate`]): a data directory laid out as `polytape run` leaves it,
//!    written through polytape-store alone (its encoders, its keys, [`LocalStore`] and its
//!    `state.sqlite`): per tick of T2 (60 s), T3 (30 s) and T4 (15 s) one `snapshots` file and
//!    one `orderbooks` file, the rows built by [`Snapshot::build`] from a Gamma quote and a
//!    book as a tick builds them; a `markets` file per day; a `resolutions` file per market
//!    once its result is learnt. M markets are tracked at once, each for the last 12 h before
//!    its end date (8 h in T2, 3 h in T3, 1 h in T4: the tiers' proportions follow), their ends
//!    staggered, a new market taking each slot as one ends; generation stops at exactly N
//!    rows. Prices move (a drift to the outcome near the end, a mean-reverting wander, jumps
//!    that fade), so the example strategies signal and trade. Seeded: the same N and M give
//!    the same directory. A file `backtest-bench.json` records what was generated; a `--dir`
//!    holding one for the same N and M is reused as it is.
//! 2. **The run** ([`run_child`]): `polytape bench backtest-run --dir DIR`, a child process,
//!    runs [`run_backtest`] with `examples/executor.yaml` (its four strategies all enabled) and
//!    prints its figures as one JSON line: wall time of the backtest alone, the process's peak
//!    RSS (VmHWM: the backtest's, never the generator's), VmRSS sampled every 100 ms, and the
//!    report's totals.
//!
//! Figures and method: BENCHMARKS.md.

use anyhow::{bail, Context};
use polytape_core::money::from_mantissa;
use polytape_core::snapshot::{Observation, OrderbookRow};
use polytape_core::{
    Book, Level, Market, MarketQuote, MarketResult, Outcome, Resolution, Snapshot, TickId, Tier, Ts,
};
use polytape_sim::rng::{mix, SplitMix64};
use polytape_store::parquet::{
    encode_markets, encode_orderbooks, encode_resolutions, encode_snapshots, CONTENT_TYPE,
};
use polytape_store::{keys, LocalStore, MarketStore, ObjectStore};
use polytape_strategy::backtest::run_backtest;
use polytape_strategy::EngineConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The generator's seed (fixed: the same N and M always give the same directory).
const SEED: u64 = 7;
/// Bumped whenever the generator's output changes, so an old directory is not reused.
const GENERATOR: u32 = 1;
/// What a generated directory holds, written last (its presence means the directory is whole).
pub const MANIFEST: &str = "backtest-bench.json";
/// The first tick.
const START: &str = "2026-11-20T00:00:00Z";
/// How long a market is sampled in T2–T4: the 12 h before its end date.
const LIFE_S: i64 = 12 * 3600;
/// The fastest tier's interval: the time step of the generator.
const STEP_S: i64 = 15;
/// Levels per side of a book, at least and at most.
const LEVELS: (u64, u64) = (5, 30);
/// The wander of a YES price in logit units: its standard deviation and how fast it reverts.
const WANDER_SD: f64 = 0.3;
const WANDER_TAU_S: f64 = 3600.0;
/// A jump (logit units, either way) every `JUMP_EVERY_S` on average, fading with `JUMP_TAU_S`.
const JUMP: (f64, f64) = (0.6, 1.2);
const JUMP_EVERY_S: f64 = 3.0 * 3600.0;
const JUMP_TAU_S: f64 = 2400.0;
/// The logit a price drifts to at its end date (±: the winner; 0.99 and 0.01).
const END_LOGIT: f64 = 4.6;

/// What `polytape bench backtest` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// Snapshot rows to generate.
    pub rows: usize,
    /// Markets tracked at once.
    pub markets: usize,
    /// Where the data directory is (kept); `None`: a temporary one, removed after.
    pub dir: Option<PathBuf>,
    /// Print the figures as JSON.
    pub json: bool,
}

/// What a generated directory holds (`backtest-bench.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    pub generator: u32,
    pub seed: u64,
    /// Markets tracked at once (`--markets`).
    pub markets_at_once: u64,
    pub snapshot_rows: u64,
    /// Snapshot rows by tier (`T2`, `T3`, `T4`).
    pub rows_by_tier: BTreeMap<String, u64>,
    pub book_rows: u64,
    /// Markets sampled at least once.
    pub markets: u64,
    pub resolutions: u64,
    /// Parquet files written (snapshots, orderbooks, markets, resolutions).
    pub files: u64,
    /// Their bytes.
    pub parquet_bytes: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
}

/// `polytape bench backtest`: generates (or reuses) the directory, runs the backtest in a child
/// process and prints its figures.
pub async fn backtest(opts: &Options) -> anyhow::Result<()> {
    if opts.rows == 0 || opts.markets == 0 {
        bail!("--rows and --markets must be at least 1");
    }
    let (dir, temporary) = match &opts.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("polytape-bench-backtest-{}", std::process::id())),
            true,
        ),
    };
    let result = measure(&dir, opts).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn measure(dir: &Path, opts: &Options) -> anyhow::Result<()> {
    let load_before = load_average();
    let t = Instant::now();
    let (generated, reused) = prepare(dir, opts.rows, opts.markets).await?;
    let generation_s = t.elapsed().as_secs_f64();
    let dir_bytes = bytes_under(dir);

    let exe = std::env::current_exe().context("locating the polytape binary")?;
    let out = Command::new(exe)
        .args(["bench", "backtest-run", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting the backtest process")?;
    if !out.status.success() {
        bail!("the backtest process failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("no figures from the backtest process: {stdout:?}"))?;
    let load_after = load_average();

    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let data = &run["data"];
    let wall_s = run["wall_s"].as_f64().unwrap_or(0.0);
    let per_s = |n: u64| if wall_s > 0.0 { n as f64 / wall_s } else { 0.0 };
    let (snapshot_rows, book_rows) = (num(data, "snapshot_rows"), num(data, "book_rows"));
    let figures = json!({
        "data_dir": dir.display().to_string(),
        "reused": reused,
        "generation_s": generation_s,
        "generated": generated,
        "dir_bytes": dir_bytes,
        "backtest": {
            "wall_s": wall_s,
            "cpu_s": run["cpu_s"],
            "snapshot_rows": snapshot_rows,
            "book_rows": book_rows,
            "snapshots_per_s": per_s(snapshot_rows),
            "rows_per_s": per_s(snapshot_rows + book_rows),
            "steps": num(&run["total"], "steps"),
            "hours": num(data, "hours"),
            "peak_hour_rows": num(data, "peak_hour_rows"),
            "files_read": num(data, "files_read"),
            "files_skipped": num(data, "files_skipped"),
            "rows_skipped": num(data, "rows_skipped"),
            "peak_rss_kib": num(&run, "peak_rss_kib"),
            "rss_samples_kib": run["rss_samples_kib"],
        },
        "total": run["total"],
        "strategies": run["strategies"],
        "load_average": [load_before, load_after],
    });
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_figures(&figures);
    }
    Ok(())
}

fn print_figures(f: &Value) {
    let g = &f["generated"];
    let b = &f["backtest"];
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let mib = |v: &Value| u(v) as f64 / f64::from(1 << 20);
    let tiers = g["rows_by_tier"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", u(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    println!(
        "data: {} ({}): {} snapshot rows ({tiers}), {} book rows, {} markets ({} at once), {} \
         resolutions, {} Parquet files, {:.1} MiB on disk, {} → {}",
        f["data_dir"].as_str().unwrap_or(""),
        if f["reused"].as_bool().unwrap_or(false) {
            "reused".to_string()
        } else {
            format!(
                "generated in {:.1} s",
                f["generation_s"].as_f64().unwrap_or(0.0)
            )
        },
        u(&g["snapshot_rows"]),
        u(&g["book_rows"]),
        u(&g["markets"]),
        u(&g["markets_at_once"]),
        u(&g["resolutions"]),
        u(&g["files"]),
        mib(&f["dir_bytes"]),
        g["first_ts"].as_str().unwrap_or("-"),
        g["last_ts"].as_str().unwrap_or("-"),
    );
    let samples: Vec<String> = b["rss_samples_kib"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|v| format!("{:.0}", u(v) as f64 / 1024.0))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "backtest: {} snapshot rows and {} book rows ({} hours, at most {} rows an hour; {} \
         files, {} skipped, {} rows skipped) in {:.2} s ({:.2} s of CPU) → {:.0} snapshots/s \
         ({:.0} rows/s with the books); {} steps",
        u(&b["snapshot_rows"]),
        u(&b["book_rows"]),
        u(&b["hours"]),
        u(&b["peak_hour_rows"]),
        u(&b["files_read"]),
        u(&b["files_skipped"]),
        u(&b["rows_skipped"]),
        b["wall_s"].as_f64().unwrap_or(0.0),
        b["cpu_s"].as_f64().unwrap_or(0.0),
        b["snapshots_per_s"].as_f64().unwrap_or(0.0),
        b["rows_per_s"].as_f64().unwrap_or(0.0),
        u(&b["steps"]),
    );
    println!(
        "peak RSS of the backtest process {:.1} MiB (VmRSS over the run, MiB: {})",
        u(&b["peak_rss_kib"]) as f64 / 1024.0,
        samples.join(" ")
    );
    if let Some(strategies) = f["strategies"].as_object() {
        for (name, s) in strategies {
            println!(
                "{name}: {} signals, {} fills, {} closed ({} won), P&L {}",
                u(&s["signals"]),
                u(&s["fills"]),
                u(&s["closed"]),
                u(&s["wins"]),
                s["pnl"].as_str().unwrap_or("?"),
            );
        }
    }
    let t = &f["total"];
    println!(
        "total: {} fills, {} closed, {} open; P&L {} (realised {}, unrealised {}); equity {} → \
         {}; max drawdown {}",
        u(&t["fills"]),
        u(&t["closed"]),
        u(&t["open_positions"]),
        t["pnl"].as_str().unwrap_or("?"),
        t["realised"].as_str().unwrap_or("?"),
        t["unrealised"].as_str().unwrap_or("?"),
        t["initial_cash"].as_str().unwrap_or("?"),
        t["final_equity"].as_str().unwrap_or("?"),
        t["max_drawdown"].as_str().unwrap_or("?"),
    );
    println!(
        "load average (1 min) before {} and after {}",
        f["load_average"][0], f["load_average"][1]
    );
}

/// The executor configuration of the bench: `examples/executor.yaml` with every strategy
/// enabled (`term_structure` too: it sees no event groups in stored data, so never signals).
pub fn bench_config() -> anyhow::Result<EngineConfig> {
    let mut config = EngineConfig::from_yaml(
        include_str!("../../../examples/executor.yaml"),
        "examples/executor.yaml",
    )?;
    for s in config.strategies.values_mut() {
        s.enabled = true;
    }
    config.validate()?;
    Ok(config)
}

/// `polytape bench backtest-run --dir DIR`: the backtest alone, its figures as one JSON line on
/// stdout.
pub async fn run_child(dir: &Path) -> anyhow::Result<()> {
    let config = bench_config()?;
    let sampler = RssSampler::start(Duration::from_millis(100));
    let cpu_before = cpu_s();
    let t = Instant::now();
    let report = run_backtest(dir, &config)
        .await
        .with_context(|| format!("backtesting {}", dir.display()))?;
    let wall_s = t.elapsed().as_secs_f64();
    let cpu = cpu_s().zip(cpu_before).map(|(a, b)| a - b);
    let samples = sampler.stop();
    let (peak_rss_kib, rss_kib) = crate::bench::memory_kib();
    let strategies: BTreeMap<&String, Value> = report
        .strategies
        .iter()
        .map(|(name, s)| {
            let v = json!({
                "signals": s.signals,
                "decisions": s.decisions,
                "fills": s.fills,
                "closed": s.closed,
                "wins": s.wins,
                "pnl": s.pnl.round_dp(2).to_string(),
                "realised": s.realised.round_dp(2).to_string(),
                "unrealised": s.unrealised.round_dp(2).to_string(),
                "open_positions": s.open_positions,
            });
            (name, v)
        })
        .collect();
    let t = &report.total;
    let figures = json!({
        "wall_s": wall_s,
        "cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib,
        "rss_end_kib": rss_kib,
        "rss_samples_kib": thin(&samples, 20),
        "data": report.data,
        "total": {
            "steps": t.steps,
            "first_ts": t.first_ts,
            "last_ts": t.last_ts,
            "fills": t.fills,
            "closed": t.closed,
            "wins": t.wins,
            "open_positions": t.open_positions,
            "initial_cash": t.initial_cash.round_dp(2).to_string(),
            "final_equity": t.final_equity.round_dp(2).to_string(),
            "pnl": t.pnl.round_dp(2).to_string(),
            "realised": t.realised.round_dp(2).to_string(),
            "unrealised": t.unrealised.round_dp(2).to_string(),
            "fees": t.fees.round_dp(2).to_string(),
            "max_exposure": t.max_exposure.round_dp(2).to_string(),
            "max_drawdown": t.max_drawdown.round_dp(4).to_string(),
        },
        "strategies": strategies,
    });
    println!("{figures}");
    Ok(())
}

/// At most `n` of `samples`, evenly spread, the last one kept.
fn thin(samples: &[u64], n: usize) -> Vec<u64> {
    if samples.len() <= n {
        return samples.to_vec();
    }
    (1..=n)
        .map(|i| samples[i * samples.len() / n - 1])
        .collect()
}

/// VmRSS of this process, read on a thread at a fixed period.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl RssSampler {
    fn start(every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                samples.push(crate::bench::memory_kib().1);
                std::thread::sleep(every);
            }
            samples
        });
        RssSampler { stop, thread }
    }

    fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = self.thread.join().unwrap_or_default();
        samples.push(crate::bench::memory_kib().1);
        samples
    }
}

/// CPU time (user + system) of this process so far, in seconds (/proc/self/stat, 100 ticks a
/// second): unlike wall time, hardly changed by other processes on a shared machine.
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15: indexes 11 and 12 from the state.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// The 1-minute load average (/proc/loadavg), when readable.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => pending.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// The directory's manifest when it was generated for `rows` and `markets`; generates it when
/// `dir` is missing or empty. Returns what it holds and whether it was reused.
async fn prepare(dir: &Path, rows: usize, markets: usize) -> anyhow::Result<(Generated, bool)> {
    let manifest = dir.join(MANIFEST);
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest)?;
        let g: Generated = serde_json::from_str(&text)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let wanted = (GENERATOR, SEED, rows as u64, markets as u64);
        if (g.generator, g.seed, g.snapshot_rows, g.markets_at_once) == wanted {
            return Ok((g, true));
        }
        bail!(
            "{} holds a bench directory of {} rows over {} markets at once (generator {}): \
             remove it or pick another --dir",
            dir.display(),
            g.snapshot_rows,
            g.markets_at_once,
            g.generator
        );
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_some());
    if occupied {
        bail!(
            "{} is not empty and holds no {MANIFEST}: pick an empty or missing --dir",
            dir.display()
        );
    }
    let g = generate(dir, rows, markets).await?;
    std::fs::write(&manifest, serde_json::to_vec_pretty(&g)?)?;
    Ok((g, false))
}

/// One market slot: the market sampled in it now and the state of its price.
struct Slot {
    market: Market,
    /// Its final outcome: the winner's index, `None` for INVALID.
    winner: Option<usize>,
    rng: SplitMix64,
    /// The YES logit it starts from and drifts away from towards the outcome.
    x0: f64,
    target: f64,
    wander: f64,
    jump: f64,
    last: Option<Ts>,
}

impl Slot {
    /// Market `generation` of slot `s` of `slots`: its end staggered by `s`, a new market every
    /// 12 h in the same slot.
    fn new(s: u32, generation: u32, slots: u32, start: Ts) -> Slot {
        let n = u64::from(generation) * u64::from(slots) + u64::from(s);
        let end = start
            + chrono::TimeDelta::seconds(
                (i64::from(s) + 1) * LIFE_S / i64::from(slots) + i64::from(generation) * LIFE_S,
            );
        let mut rng = SplitMix64::new(mix(&[SEED, n]));
        let token = |k: u64| {
            (0..4)
                .map(|i| format!("{:019}", mix(&[SEED, n, k, i]) % 10_000_000_000_000_000_000))
                .collect::<String>()
        };
        let categories = ["Crypto", "Politics", "Sports", "Economics", "Culture"];
        let market = Market {
            condition_id: format!("0x{:016x}{:048x}", mix(&[SEED, n]), n),
            question: format!("Will bench market {n} resolve Yes?"),
            slug: Some(format!("bench-market-{n}")),
            yes_token_id: token(1),
            no_token_id: token(2),
            outcomes: ["Yes".into(), "No".into()],
            end_date: end,
            tier: Some(Tier::T2),
            active: true,
            result: MarketResult::Open,
            closed_at: None,
            delisted: false,
            first_seen: end - chrono::TimeDelta::days(3),
            category: Some((*rng.pick(&categories)).to_string()),
            neg_risk: false,
            volume_24h: Some(from_mantissa(rng.range(1_000, 500_000) as i64 * 1_000_000)),
            // Three markets of neighbouring slots make one event (one question, three
            // deadlines): what `term_structure` compares.
            event_id: Some(format!("bench-event-{}", n / 3)),
            fees_enabled: Some(false),
            fee: None,
            version: 0,
        };
        let x0 = rng.uniform(-2.5, 2.5);
        // One market in 29 is INVALID (drifts nowhere, pays the split); else the winner is
        // drawn with the starting price's odds.
        let winner = if n % 29 == 13 {
            None
        } else if rng.chance(sigmoid(x0)) {
            Some(0)
        } else {
            Some(1)
        };
        let target = match winner {
            Some(0) => END_LOGIT,
            Some(_) => -END_LOGIT,
            None => 0.0,
        };
        Slot {
            market,
            winner,
            rng,
            x0,
            target,
            wander: 0.0,
            jump: 0.0,
            last: None,
        }
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.rng.next_f64().max(1e-12);
        let u2 = self.rng.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// The YES price at `t` (after the last sample's time).
    fn price(&mut self, t: Ts) -> f64 {
        let dt = self
            .last
            .map_or(0.0, |l| (t - l).num_milliseconds() as f64 / 1000.0);
        self.last = Some(t);
        if dt > 0.0 {
            let decay = (-dt / WANDER_TAU_S).exp();
            self.wander =
                self.wander * decay + WANDER_SD * (1.0 - decay * decay).sqrt() * self.normal();
            self.jump *= (-dt / JUMP_TAU_S).exp();
            if self.rng.chance(dt / JUMP_EVERY_S) {
                let size = self.rng.uniform(JUMP.0, JUMP.1);
                self.jump += if self.rng.chance(0.5) { size } else { -size };
            }
        }
        let left = (self.market.end_date - t).num_seconds() as f64;
        let progress = (1.0 - left / LIFE_S as f64).clamp(0.0, 1.0);
        let x = self.x0 + (self.target - self.x0) * progress * progress + self.wander + self.jump;
        sigmoid(x)
    }

    /// The YES book around `p` at `t` (in Polymarket's served order, best last) and Gamma's
    /// quote of the market.
    fn observe(&mut self, t: Ts, p: f64) -> (Book, MarketQuote) {
        // Ticks per unit of price: 0.001 near the ends, as Polymarket's tick size changes.
        let unit: i64 = if !(0.04..=0.96).contains(&p) {
            1000
        } else {
            100
        };
        let price = |ticks: i64| from_mantissa(ticks * (1_000_000 / unit));
        let spread = self.rng.range(1, if unit == 1000 { 6 } else { 3 }) as i64;
        let mid = (p * unit as f64).round() as i64;
        let bid = (mid - spread / 2).clamp(1, unit - 1 - spread);
        let ask = bid + spread;
        let level = |rng: &mut SplitMix64, ticks: i64| {
            let wall = if rng.chance(1.0 / 15.0) { 20 } else { 1 };
            Level {
                price: price(ticks),
                size: from_mantissa(rng.range(500, 200_000) as i64 * wall * 10_000),
            }
        };
        let mut bids = Vec::new();
        let mut at = bid;
        for _ in 0..self.rng.range(LEVELS.0, LEVELS.1) {
            if at < 1 {
                break;
            }
            bids.push(level(&mut self.rng, at));
            at -= self.rng.range(1, 2) as i64;
        }
        let mut asks = Vec::new();
        let mut at = ask;
        for _ in 0..self.rng.range(LEVELS.0, LEVELS.1) {
            if at > unit - 1 {
                break;
            }
            asks.push(level(&mut self.rng, at));
            at += self.rng.range(1, 2) as i64;
        }
        bids.reverse();
        asks.reverse();
        let n = t.timestamp() as u64;
        let book = Book {
            token_id: self.market.yes_token_id.clone(),
            condition_id: Some(self.market.condition_id.clone()),
            bids,
            asks,
            timestamp: Some(t + chrono::TimeDelta::milliseconds(400)),
            hash: Some(format!(
                "{:016x}{:016x}{:08x}",
                mix(&[SEED, n, 1]),
                mix(&[SEED, n, 2]),
                mix(&[SEED, n, 3]) as u32
            )),
            tick_size: Some(price(1)),
            min_order_size: Some(from_mantissa(5_000_000)),
            last_trade_price: Some(price(mid.clamp(1, unit - 1))),
            neg_risk: Some(false),
            problem: None,
        };
        let quote = MarketQuote {
            condition_id: self.market.condition_id.clone(),
            price: Some(price(mid.clamp(1, unit - 1))),
            best_bid: Some(price(bid)),
            best_ask: Some(price(ask)),
            spread: Some(price(spread)),
            last_trade_price: Some(price(mid.clamp(1, unit - 1))),
            volume_total: self
                .market
                .volume_24h
                .map(|v| v * from_mantissa(30_000_000)),
            volume_24h: self.market.volume_24h,
            volume_1w: self.market.volume_24h.map(|v| v * from_mantissa(7_000_000)),
            liquidity: Some(from_mantissa(
                self.rng.range(500, 50_000) as i64 * 1_000_000,
            )),
            tick_size: Some(price(1)),
            competitive: Some(0.9),
            category: self.market.category.clone(),
            neg_risk: Some(false),
            end_date: Some(self.market.end_date),
            closed: Some(false),
            ..MarketQuote::default()
        };
        (book, quote)
    }

    /// The market resolved: learnt 5–30 min after its end date, resolved 2 min after it.
    fn resolved(&mut self) -> Market {
        let end = self.market.end_date;
        let learned = self.rng.range(5 * 60, 30 * 60) as i64;
        let mut m = self.market.clone();
        m.active = false;
        m.closed_at = Some(end);
        m.result = MarketResult::Resolved(Outcome {
            winner: self.winner,
            invalid: self.winner.is_none(),
            payouts: Vec::new(),
            resolved_at: Some(end + chrono::TimeDelta::minutes(2)),
            learned_at: end + chrono::TimeDelta::seconds(learned),
            uma_status: Some("resolved".into()),
            source: "gamma".into(),
        });
        m
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Writes exactly `rows` snapshot rows (and their books, markets and learnt resolutions) into
/// `dir`, one tick's files at a time: memory holds one tick and the markets of a day.
async fn generate(dir: &Path, rows: usize, markets: usize) -> anyhow::Result<Generated> {
    let store = LocalStore::open(dir)
        .with_context(|| format!("opening the data directory {}", dir.display()))?;
    let start: Ts = START.parse()?;
    let slots_n = u32::try_from(markets).context("--markets too large")?;
    let mut slots: Vec<(u32, Slot)> = (0..slots_n)
        .map(|s| (0, Slot::new(s, 0, slots_n, start)))
        .collect();
    // The state a run keeps: every market it tracks, from its discovery on.
    let known: Vec<Market> = slots.iter().map(|(_, s)| s.market.clone()).collect();
    store.write_markets(&known).await?;

    let mut g = Generated {
        generator: GENERATOR,
        seed: SEED,
        markets_at_once: markets as u64,
        snapshot_rows: 0,
        rows_by_tier: BTreeMap::new(),
        book_rows: 0,
        markets: 0,
        resolutions: 0,
        files: 0,
        parquet_bytes: 0,
        first_ts: None,
        last_ts: None,
    };
    let put = |key: String, bytes: Vec<u8>| {
        let store = &store;
        async move { store.put_object(&key, bytes, CONTENT_TYPE).await }
    };
    // Resolutions not learnt yet, by (learned_at, condition_id).
    let mut pending: BTreeMap<(Ts, String), Market> = BTreeMap::new();
    // The markets sampled on the current day (its `markets` file).
    let mut day_markets: BTreeMap<String, Market> = BTreeMap::new();
    let mut day = start.date_naive();
    let mut sampled: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut left = rows;
    let mut k: i64 = 0;
    while left > 0 {
        let t = start + chrono::TimeDelta::seconds(k * STEP_S);
        if t.date_naive() != day {
            let file = day_markets.values().cloned().collect::<Vec<_>>();
            let enc = encode_markets(&file)?;
            g.files += 1;
            g.parquet_bytes += enc.bytes.len() as u64;
            put(keys::markets(day), enc.bytes).await?;
            day_markets.clear();
            day = t.date_naive();
        }
        // Ended markets give their slot to the next; their results are learnt a little later.
        let mut new = Vec::new();
        for (s, (generation, slot)) in slots.iter_mut().enumerate() {
            if slot.market.end_date > t {
                continue;
            }
            let m = slot.resolved();
            let n = u64::from(*generation) * u64::from(slots_n) + s as u64;
            // One market in 20 never gets a result in the data.
            if n % 20 != 7 {
                let learned = m.outcome().map_or(t, |o| o.learned_at);
                pending.insert((learned, m.condition_id.clone()), m);
            }
            *generation += 1;
            *slot = Slot::new(s as u32, *generation, slots_n, start);
            new.push(slot.market.clone());
        }
        if !new.is_empty() {
            store.write_markets(&new).await?;
        }
        while let Some(entry) = pending.first_entry().filter(|e| e.key().0 <= t) {
            let m = entry.remove();
            if let Some(r) = Resolution::of(&m) {
                let enc = encode_resolutions(std::slice::from_ref(&r))?;
                g.files += 1;
                g.resolutions += 1;
                g.parquet_bytes += enc.bytes.len() as u64;
                put(keys::resolution(&r), enc.bytes).await?;
            }
        }

        for tier in [Tier::T2, Tier::T3, Tier::T4] {
            if left == 0 || (k * STEP_S) % i64::from(tier.interval_s()) != 0 {
                continue;
            }
            let tick = TickId { tier, tick_ts: t };
            let fetched_at = t + chrono::TimeDelta::milliseconds(800);
            let mut snapshots = Vec::new();
            let mut books = Vec::new();
            for (_, slot) in slots.iter_mut() {
                let secs_left = (slot.market.end_date - t).num_seconds();
                if secs_left <= 0 || Tier::for_secs_to_close(secs_left) != Some(tier) {
                    continue;
                }
                if snapshots.len() == left {
                    break;
                }
                let p = slot.price(t);
                let (book, quote) = slot.observe(t, p);
                slot.market.tier = Some(tier);
                snapshots.push(Snapshot::build(Observation {
                    tick,
                    fetched_at,
                    market: &slot.market,
                    quote: Some(&quote),
                    book: Some(&book),
                    flow: None,
                }));
                books.push(OrderbookRow::new(
                    tick,
                    fetched_at,
                    &slot.market.condition_id,
                    &book,
                ));
                if sampled.insert(slot.market.condition_id.clone()) {
                    g.markets += 1;
                }
                day_markets
                    .entry(slot.market.condition_id.clone())
                    .or_insert_with(|| slot.market.clone());
            }
            if snapshots.is_empty() {
                continue;
            }
            let enc = encode_snapshots(&snapshots)?;
            g.parquet_bytes += enc.bytes.len() as u64;
            put(keys::snapshots(&tick), enc.bytes).await?;
            let enc = encode_orderbooks(&books)?;
            g.parquet_bytes += enc.bytes.len() as u64;
            put(keys::orderbooks(&tick), enc.bytes).await?;
            g.files += 2;
            g.snapshot_rows += snapshots.len() as u64;
            g.book_rows += books.len() as u64;
            *g.rows_by_tier.entry(format!("{tier:?}")).or_default() += snapshots.len() as u64;
            g.first_ts.get_or_insert(t);
            g.last_ts = Some(t);
            left -= snapshots.len();
        }
        k += 1;
    }
    let file = day_markets.values().cloned().collect::<Vec<_>>();
    let enc = encode_markets(&file)?;
    g.files += 1;
    g.parquet_bytes += enc.bytes.len() as u64;
    put(keys::markets(day), enc.bytes).await?;
    Ok(g)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test: a failure should fail it loudly
mod tests {
    use super::*;

    #[test]
    fn given_more_samples_than_kept_then_they_are_spread_and_end_with_the_last() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(thin(&s, 4), vec![25, 50, 75, 100]);
        assert_eq!(thin(&s[..3], 4), vec![1, 2, 3]);
    }

    #[test]
    fn given_a_slot_then_its_prices_stay_inside_zero_and_one_and_drift_to_its_winner() {
        let start: Ts = START.parse().unwrap();
        for s in 0..40 {
            let mut slot = Slot::new(s, 1, 40, start);
            let end = slot.market.end_date;
            let mut p = 0.5;
            for i in (1..=LIFE_S / STEP_S).rev() {
                let t = end - chrono::TimeDelta::seconds(i * STEP_S);
                p = slot.price(t);
                assert!(p > 0.0 && p < 1.0);
                let (book, _) = slot.observe(t, p);
                assert!(book.is_sound(), "{book:?}");
            }
            match slot.winner {
                Some(0) => assert!(p > 0.8, "slot {s}: YES won, last price {p}"),
                Some(_) => assert!(p < 0.2, "slot {s}: NO won, last price {p}"),
                None => {}
            }
        }
    }
}
