//! `polytape bench`: one T2 tick of N markets against the simulator with added latency, as a
//! user's deployment would run it. The simulator runs as a child process so the peak RSS
//! reported is the collector's alone. Figures and method: BENCHMARKS.md.

use anyhow::{bail, Context};
use polytape_collector::snapshot::{snapshot_tick, TickDeadline};
use polytape_collector::{discover::discover, Config, SystemClock};
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
fn memory_kib() -> (u64, u64) {
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
