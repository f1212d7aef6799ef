//! `polytape`: records Polymarket prediction markets.
//!
//! * `polytape run` — the local collector: discovery, maintenance (re-tier, closed-check, the
//!   `markets` dimension) and every tier's snapshots on embedded storage (SQLite + Parquet
//!   files), with the status API on 127.0.0.1.
//! * `polytape sim` — the simulated Polymarket alone.
//! * `polytape bench` — end-to-end measurements (one T2 tick against the simulator).

mod bench;

use anyhow::Context;
use clap::{Parser, Subcommand};
use polytape_collector::runner::{self, Runtime};
use polytape_collector::{status, Config};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::LocalStore;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "polytape",
    version,
    about = "Records Polymarket prediction markets: tiered snapshots with order-book features, as Parquet."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the collector locally until Ctrl-C: discovery (hourly; after a failure again within
    /// minutes), maintenance (every 5 min: re-tier, closed-check, the `markets` dimension) and
    /// each tier's snapshots on its schedule (T0 60 min … T4 15 s, each within its deadline),
    /// written as Parquet under the data directory, with `GET /health`, `GET /health/critical`
    /// and `GET /api/stats` on 127.0.0.1.
    ///
    /// Polymarket's public endpoints are used unless POLYTAPE_GAMMA_URL, POLYTAPE_CLOB_URL,
    /// POLYTAPE_DATA_URL, POLYTAPE_WS_URL point elsewhere; `--simulate` starts the built-in
    /// simulator and uses it instead (fully offline). Thresholds: POLYTAPE_LOOKAHEAD_HOURS (336),
    /// POLYTAPE_MIN_VOLUME_24H (100), POLYTAPE_BOOKS_BATCH (100); schedule:
    /// POLYTAPE_DISCOVERY_EVERY_S (3600), POLYTAPE_DISCOVERY_RETRY_CAP_S (180),
    /// POLYTAPE_MAINTENANCE_EVERY_S (300); health: POLYTAPE_HEALTH_DISCOVERY_MAX_AGE_S (7200),
    /// POLYTAPE_HEALTH_STARTUP_GRACE_S (120), POLYTAPE_HEALTH_MAX_TICK_FAILURE_PCT (10),
    /// POLYTAPE_HEALTH_MAX_TASK_FAILURES (3). The README lists them all.
    Run {
        /// Collect from the built-in Polymarket simulator instead of Polymarket (offline).
        #[arg(long)]
        simulate: bool,
        /// Where state (state.sqlite) and Parquet files go [default: data/live, or data/sim with --simulate].
        #[arg(long, env = "POLYTAPE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Port of the status API on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Seed of the simulated world (with --simulate).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// New simulated markets per hour (with --simulate): markets keep arriving, close and
        /// resolve, so every tier stays populated however long it runs.
        #[arg(long, default_value_t = 20.0)]
        sim_markets_per_hour: f64,
    },
    /// Run the simulated Polymarket alone (Gamma under /gamma, CLOB under /clob, Data API under
    /// /data, market WebSocket at /ws/market) until Ctrl-C.
    Sim {
        /// Port on 127.0.0.1 (0 picks a free one; the URL is printed first).
        #[arg(long, default_value_t = 8788)]
        port: u16,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Tradeable markets per tier bucket.
        #[arg(long, default_value_t = 20)]
        markets_per_tier: usize,
        /// Latency added to every HTTP response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// New markets per hour (0: a fixed world generated at start).
        #[arg(long, default_value_t = 0.0)]
        new_markets_per_hour: f64,
    },
    /// Measure one T2 tick of N markets against the simulator (run as a separate process) with
    /// added latency: wall time, requests made, peak RSS of the collector. See BENCHMARKS.md.
    Bench {
        #[arg(long, default_value_t = 500)]
        markets: usize,
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// Ticks to run (the figures are per tick; the first includes connection set-up).
        #[arg(long, default_value_t = 5)]
        ticks: u32,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Run {
                simulate,
                data_dir,
                port,
                seed,
                sim_markets_per_hour,
            } => run(simulate, data_dir, port, seed, sim_markets_per_hour).await,
            Command::Sim {
                port,
                seed,
                markets_per_tier,
                latency_ms,
                new_markets_per_hour,
            } => {
                sim(
                    port,
                    seed,
                    markets_per_tier,
                    latency_ms,
                    new_markets_per_hour,
                )
                .await
            }
            Command::Bench {
                markets,
                latency_ms,
                ticks,
            } => bench::run(markets, latency_ms, ticks).await,
        }
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn run(
    simulate: bool,
    data_dir: Option<PathBuf>,
    port: u16,
    seed: u64,
    sim_markets_per_hour: f64,
) -> anyhow::Result<()> {
    // Listen for Ctrl-C from the very start, so a Ctrl-C during start-up or the first discovery
    // is a clean stop too.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: stopping");
            let _ = stop_tx.send(true);
        }
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let config = Config::from_env()?;
    let data_dir =
        data_dir.unwrap_or_else(|| PathBuf::from(if simulate { "data/sim" } else { "data/live" }));
    let store = LocalStore::open(&data_dir)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;

    let mut client_config = ClientConfig::from_env()?;
    let sim = if simulate {
        let mut sim_config = polytape_sim::SimConfig::new(seed);
        sim_config.new_markets_per_hour = sim_markets_per_hour;
        let handle = polytape_sim::start(sim_config, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        client_config.endpoints = Endpoints {
            gamma: handle.gamma_url(),
            clob: handle.clob_url(),
            data: handle.data_url(),
            ws: handle.ws_url(),
        };
        tracing::info!(
            "simulated Polymarket (seed {seed}) on http://{}",
            handle.addr()
        );
        Some(handle)
    } else {
        None
    };
    tracing::info!(
        "collecting from {} into {} (Parquet under snapshots/ and orderbooks/, state in state.sqlite)",
        client_config.endpoints.gamma,
        data_dir.display()
    );
    let client = PolymarketClient::new(client_config)?;
    let runtime = Runtime::new(client, store, config);

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding the status API to 127.0.0.1:{port}"))?;
    tracing::info!(
        "status API on http://{}/health (/health/critical, /api/stats) — Ctrl-C to stop",
        listener.local_addr()?
    );
    let api = tokio::spawn(status::serve(
        listener,
        status::router(runtime.clone()),
        stopped(stop_rx.clone()),
    ));

    runner::run(runtime, stopped(stop_rx)).await;
    api.await??;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}

async fn sim(
    port: u16,
    seed: u64,
    markets_per_tier: usize,
    latency_ms: u64,
    new_markets_per_hour: f64,
) -> anyhow::Result<()> {
    let mut cfg = polytape_sim::SimConfig::new(seed);
    cfg.markets_per_tier = markets_per_tier;
    cfg.new_markets_per_hour = new_markets_per_hour;
    cfg.latency = std::time::Duration::from_millis(latency_ms);
    let handle = polytape_sim::start(cfg, SocketAddr::from(([127, 0, 0, 1], port))).await?;
    // The first line is machine-read by `polytape bench`.
    println!("listening on http://{}", handle.addr());
    println!(
        "gamma {}  clob {}  data {}  ws {}",
        handle.gamma_url(),
        handle.clob_url(),
        handle.data_url(),
        handle.ws_url()
    );
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
