//! `polytape`: records Polymarket prediction markets.
//!
//! * `polytape run` — the local collector: discovery, maintenance (re-tier, closed-check, the
//!   `markets` dimension) and every tier's snapshots on embedded storage (SQLite + Parquet
//!   files), with the status API on 127.0.0.1.
//! * `polytape sim` — the simulated Polymarket alone.
//! * `polytape export` — the training set of a data directory (labelled snapshot rows) as one
//!   Parquet or CSV file.
//! * `polytape backtest` — the stored snapshots and order books of a data directory replayed
//!   through the paper executor's strategies (`--config FILE`, YAML), as a report (JSON, HTML).
//! * `polytape bench` — end-to-end measurements (one T2 tick against the simulator; an export;
//!   the live feed's hot path over recorded frames; `ingest`, the live feed end to end against a
//!   loopback market channel; `backtest`, the backtester over a generated data directory).

mod backtest;
mod backtest_bench;
mod bench;
mod ingest_bench;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use polytape_collector::executor::ExecutorSettings;
use polytape_collector::live::{run_feed, FeedFiles, StoreSink};
use polytape_collector::runner::{self, Runtime};
use polytape_collector::{status, Config};
use polytape_feed::supervisor::SupervisorConfig;
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::export::{ExportEvent, ExportOptions};
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
    /// written as Parquet under the data directory, with the status API on 127.0.0.1 (`GET
    /// /health`, `/health/critical`, `/api/stats`, `/api/markets`, … and the live event stream
    /// `/api/events/stream`; `/api/openapi.json` lists every endpoint).
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
        /// Do not run the live trades feed (WebSocket shards for T2–T4 markets); the trade-flow
        /// and whale columns then stay NULL.
        #[arg(long)]
        no_feed: bool,
        /// Also write every WebSocket frame the feed receives to this file, one JSON string per
        /// line (the input of `polytape bench feed --frames`).
        #[arg(long)]
        record_frames: Option<PathBuf>,
        /// The paper executor's configuration (YAML, see examples/executor.yaml) [default: that
        /// example, built in]. The executor steps the strategies over every T2–T4 tick once it
        /// is stored (paper fills only: no order ever goes to Polymarket).
        #[arg(long, env = "POLYTAPE_EXECUTOR_CONFIG")]
        executor_config: Option<PathBuf>,
        /// Do not run the paper executor.
        #[arg(long, conflicts_with = "executor_config")]
        no_executor: bool,
    },
    /// Rebuild the `trades` table from the raw tape (`raw_ws`) of a data directory and report
    /// any difference from the stored table; exits 1 when there is one.
    Replay {
        #[arg(long, env = "POLYTAPE_DATA_DIR")]
        data_dir: PathBuf,
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
    /// Write the training set of a data directory as one file: every snapshot row of a resolved
    /// market taken before the market closed, with its label.
    ///
    /// Columns: every `snapshots` column, then tier, first_outcome_won (1 when the row's token
    /// won, 0 when another did, NULL for INVALID or no single winner), winning_outcome,
    /// resolved_at and hours_to_resolution (NULL without resolved_at). A row is dropped when
    /// taken at or after its market's close (resolved_at, else its end date), when its market
    /// has no resolution (unless --include-unresolved), or when its (condition_id, snapshot_ts)
    /// was already written (a copied file, a compacted file next to its sources: the first met
    /// in key order is kept).
    ///
    /// --since, --until and --tiers skip whole tier=/dt= partitions by their key, then filter
    /// the rows of the partitions they overlap.
    ///
    /// Streams record batches, so memory does not grow with the directory (a CSV export's stays
    /// flat; a Parquet file's row-group metadata adds under 1 MiB per million rows). A file that
    /// is unreadable, not Parquet or lacks a column is skipped with a warning and counted. The
    /// output is written as FILE.tmp and renamed to FILE once complete. Warnings, a progress
    /// line every 2 s and the final summary (rows in, written, dropped by reason, files
    /// skipped) go to stderr.
    Export {
        /// The data directory to read (`snapshots/` and `resolutions/` as `polytape run` or
        /// S3 lays them out).
        #[arg(long, env = "POLYTAPE_DATA_DIR", default_value = "data/live")]
        data_dir: PathBuf,
        /// The file to write (replaced once the export completes).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only rows with snapshot_ts at or after this instant (RFC 3339, e.g.
        /// 2026-11-20T00:00:00Z).
        #[arg(long, value_parser = parse_instant)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only rows with snapshot_ts before this instant (RFC 3339).
        #[arg(long, value_parser = parse_instant)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Only these tiers, comma-separated (e.g. 2,3,4) [default: every tier].
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(0..=4))]
        tiers: Vec<u8>,
        /// Keep the rows of markets without a resolution too, with NULL labels (no close to
        /// filter them on).
        #[arg(long)]
        include_unresolved: bool,
        /// parquet: the table's own types (decimal(18,6), timestamp(ms, UTC), …); csv: a
        /// header row, RFC 4180 quoting, timestamps RFC 3339 with ms and Z, decimals as plain
        /// text, NULL as an empty field.
        #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
        format: ExportFormat,
    },
    /// Replay a data directory's stored snapshots and order books in time order through the
    /// paper executor's strategies, sizing, risk limits and paper fills, settle positions with
    /// the stored resolutions, and write `report.json` and `report.html` (per strategy: trades,
    /// P&L, win rate, max drawdown, Sharpe, exposure over time; the equity curves as inline
    /// SVG). The same data and configuration give the same files byte for byte. A decision at
    /// time t sees only rows observed at or before t. Unreadable files are skipped and counted.
    Backtest {
        /// The data directory to read (`snapshots/`, `orderbooks/`, `markets/`,
        /// `resolutions/` as `polytape run` or S3 lays them out).
        #[arg(long, env = "POLYTAPE_DATA_DIR", default_value = "data/live")]
        data_dir: PathBuf,
        /// The executor configuration (YAML; see examples/executor.yaml). Only `mode: paper`.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Where report.json and report.html go (created when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Measure one T2 tick of N markets against the simulator (run as a separate process) with
    /// added latency: wall time, requests made, peak RSS of the collector; or (`export`) an
    /// export of N generated snapshot rows: rows/s and peak RSS; or (`feed --frames FILE`) the
    /// live feed's hot path over recorded frames on one thread: events/s; or (`ingest
    /// [--seconds N] [--rate EVENTS_PER_S|max] [--trade-share S] [--whale-every K] [--in-process]
    /// [--json]`) the live feed end to end as `polytape run` runs it, against a loopback market
    /// channel (a child process) streaming `--markets` markets: events/s sent against the rate
    /// asked, peak RSS, receive-to-queue latency p50/p99/max, SQS requests per 1,000 trades,
    /// and a check that every trade sent is stored exactly once and every frame is on the tape
    /// (exits 1 when not); or (`backtest [--rows N] [--markets M] [--dir DIR] [--json]`)
    /// `polytape backtest` with examples/executor.yaml (every strategy enabled) over a
    /// generated data directory of N snapshot rows and their books, M markets tracked at once
    /// through T2–T4 (kept in DIR and reused when DIR holds the same), run as a child process:
    /// snapshots/s of the backtest alone, its peak RSS, the report's totals. See BENCHMARKS.md.
    Bench {
        /// What to measure (also as `--case`).
        #[arg(value_enum)]
        what: Option<BenchCase>,
        /// What to measure.
        #[arg(long, value_enum, default_value_t = BenchCase::Tick)]
        case: BenchCase,
        /// Recorded frames, one JSON string per line (with `feed`; `polytape run
        /// --record-frames` writes them).
        #[arg(long)]
        frames: Option<PathBuf>,
        /// Times the frames file is pushed through (with `feed`).
        #[arg(long, default_value_t = 1)]
        passes: u32,
        /// Snapshot rows to generate and export (with --case export) or backtest (with
        /// `backtest`).
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Markets: per tier bucket of the simulator (tick), streamed by the loopback server,
        /// two tokens each (ingest), or tracked at once in the generated data (backtest).
        #[arg(long, default_value_t = 500)]
        markets: usize,
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// Ticks to run (the figures are per tick; the first includes connection set-up).
        #[arg(long, default_value_t = 5)]
        ticks: u32,
        /// How long the loopback server streams, 1 to 86,400 s (with `ingest`).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Events a second the server sends over all its connections, or `max` (as fast as
        /// the sockets take them) (with `ingest`).
        #[arg(long, default_value = "20000", value_parser = ingest_bench::parse_rate)]
        rate: ingest_bench::Rate,
        /// One trade in this many is a whale (notional ≥ $2,000); 0: none (with `ingest`).
        #[arg(long, default_value_t = 100)]
        whale_every: u64,
        /// The share of the events that are trades, in (0, 1] (with `ingest`). The default,
        /// 0.003, is Polymarket's: its market channel is ≈ 99.7 % `price_change` events (PMXT
        /// archive v2, https://archive.pmxt.dev/docs/v2-data-overview); 0.1 is a stress mix.
        #[arg(long, default_value_t = ingest_bench::DEFAULT_TRADE_SHARE)]
        trade_share: f64,
        /// Run the loopback server on a thread of this process (its memory then counts)
        /// instead of a child process (with `ingest`).
        #[arg(long)]
        in_process: bool,
        /// Print the report as JSON (with `ingest` and `backtest`).
        #[arg(long)]
        json: bool,
        /// The generated data directory (with `backtest`): generated when missing or empty,
        /// reused when it holds the same rows and markets [default: a temporary one, removed].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The output format of `polytape export`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Parquet,
    Csv,
}

/// What `polytape bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchCase {
    /// One T2 tick against the simulator.
    Tick,
    /// An export of generated snapshot files.
    Export,
    /// The live feed's hot path over recorded frames.
    Feed,
    /// The live feed end to end against a loopback market channel.
    Ingest,
    /// The loopback market channel of `ingest`, run by it as a child process.
    #[value(hide = true)]
    IngestServer,
    /// The backtester over a generated data directory.
    Backtest,
    /// The backtest of `backtest`, run by it as a child process.
    #[value(hide = true)]
    BacktestRun,
}

fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| format!("not an RFC 3339 instant ({e}), e.g. 2026-11-20T00:00:00Z"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A bench's report (and the ingest server's protocol) owns stdout: its logs go to stderr.
    init_logging(matches!(cli.command, Command::Bench { .. }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Run {
                no_feed,
                record_frames,
                simulate,
                data_dir,
                port,
                seed,
                sim_markets_per_hour,
                executor_config,
                no_executor,
            } => {
                let feed = (!no_feed).then_some(record_frames);
                let executor = match (no_executor, executor_config) {
                    (true, _) => None,
                    (false, Some(path)) => Some(ExecutorSettings::from_file(&path)?),
                    (false, None) => Some(ExecutorSettings::example()),
                };
                run(
                    simulate,
                    data_dir,
                    port,
                    seed,
                    sim_markets_per_hour,
                    feed,
                    executor,
                )
                .await
            }
            Command::Replay { data_dir } => replay(&data_dir).await,
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
            Command::Export {
                data_dir,
                out,
                since,
                until,
                tiers,
                include_unresolved,
                format,
            } => export(ExportOptions {
                since,
                until,
                tiers,
                include_unresolved,
                format: match format {
                    ExportFormat::Parquet => polytape_store::export::Format::Parquet,
                    ExportFormat::Csv => polytape_store::export::Format::Csv,
                },
                ..ExportOptions::new(data_dir, out)
            }),
            Command::Backtest {
                data_dir,
                config,
                out,
            } => backtest::backtest(&data_dir, &config, &out).await,
            Command::Bench {
                what,
                case,
                rows,
                markets,
                latency_ms,
                ticks,
                frames,
                passes,
                seconds,
                rate,
                whale_every,
                trade_share,
                in_process,
                json,
                dir,
            } => match what.unwrap_or(case) {
                BenchCase::Export => bench::export(rows),
                BenchCase::Tick => bench::run(markets, latency_ms, ticks).await,
                BenchCase::Feed => {
                    let frames = frames.context("polytape bench feed needs --frames FILE")?;
                    bench::feed(&frames, passes)
                }
                BenchCase::Ingest => {
                    let opts = ingest_bench::IngestOptions {
                        seconds,
                        rate: rate.0,
                        markets,
                        whale_every,
                        trade_share,
                        in_process,
                    };
                    ingest_bench::ingest(&opts, json).await
                }
                BenchCase::IngestServer => {
                    ingest_bench::server_main(ingest_bench::ServerConfig {
                        markets,
                        rate: rate.0,
                        seconds,
                        whale_every,
                        trade_share,
                    })
                    .await
                }
                BenchCase::Backtest => {
                    backtest_bench::backtest(&backtest_bench::Options {
                        rows,
                        markets,
                        dir,
                        json,
                    })
                    .await
                }
                BenchCase::BacktestRun => {
                    let dir = dir.context("polytape bench backtest-run needs --dir DIR")?;
                    backtest_bench::run_child(&dir).await
                }
            },
        }
    })
}

fn init_logging(to_stderr: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if to_stderr {
        fmt.with_writer(std::io::stderr).init();
    } else {
        fmt.init();
    }
}

async fn run(
    simulate: bool,
    data_dir: Option<PathBuf>,
    port: u16,
    seed: u64,
    sim_markets_per_hour: f64,
    // None: no feed; Some(path): the feed, recording its frames to `path` if any.
    feed: Option<Option<PathBuf>>,
    executor: Option<ExecutorSettings>,
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
    let feed_config =
        SupervisorConfig::from_lookup(&client_config.endpoints.ws, |k| std::env::var(k).ok())
            .map_err(anyhow::Error::msg)?;
    let client = PolymarketClient::new(client_config)?;
    if let Some(e) = &executor {
        tracing::info!(
            "paper executor: {} ({} strategies enabled); state in executor/state.json",
            e.source,
            e.config.strategies.values().filter(|s| s.enabled).count()
        );
    }
    let runtime = Runtime::with_executor(client, store, config, executor);

    // The live feed: its own task, its messages stored at once by the trades consumer's
    // handler; stopped with the rest, after which it sends what it still holds.
    let frames_out = match feed.clone().flatten() {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    // The feed's stored events also go to the status API's live stream.
    let events = status::LiveEvents::default();
    let feed = feed.is_some().then(|| {
        let rt = runtime.clone();
        let stop = stop_rx.clone();
        let events = events.clone();
        // The tape's objects wait here for their write (left by a crash: written at the next).
        let tape_spool = data_dir.join(".spool").join("tape");
        tokio::spawn(async move {
            let sink = events.sink(StoreSink(rt.store.clone()));
            let counts = run_feed(
                rt.store.clone(),
                &sink,
                rt.client.clone(),
                feed_config,
                stop,
                rt.feed.clone(),
                FeedFiles {
                    tape_spool,
                    frames_out,
                },
            )
            .await;
            tracing::info!(
                trades = counts.feed.trades_ws + counts.feed.trades_backfill,
                reconnects = counts.reconnects,
                "live feed stopped"
            );
        })
    });

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding the status API to 127.0.0.1:{port}"))?;
    tracing::info!(
        "status API on http://{}/health (/api/stats, /api/markets, … — /api/openapi.json lists every endpoint) — Ctrl-C to stop",
        listener.local_addr()?
    );
    let api = tokio::spawn(status::serve(
        listener,
        status::local_router(runtime.clone(), Some(events)),
        stopped(stop_rx.clone()),
    ));

    runner::run(runtime, stopped(stop_rx)).await;
    if let Some(feed) = feed {
        feed.await?;
    }
    api.await??;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}

/// `polytape replay`: the report as JSON on stdout; exit 1 when the tables differ.
async fn replay(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let store = LocalStore::open(data_dir)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let report = polytape_collector::replay::replay(&store).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.identical() {
        anyhow::bail!(
            "trades differ from the tape: {} missing, {} extra, {} differing, {} stored twice",
            report.missing_count,
            report.extra_count,
            report.differing_count,
            report.stored_twice
        );
    }
    Ok(())
}

/// `polytape export`: warnings and progress as they come, the summary at the end, on stderr.
fn export(opts: ExportOptions) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let summary = polytape_store::export::export(&opts, &mut |event| match event {
        ExportEvent::Skipped { path, reason } => {
            eprintln!("warning: skipped {}: {reason}", path.display());
        }
        ExportEvent::Progress(s) => eprintln!(
            "export: {} files read, {} rows written ({:.0} s)",
            s.files_read,
            s.rows_written,
            started.elapsed().as_secs_f64()
        ),
    })
    .with_context(|| {
        format!(
            "exporting {} to {}",
            opts.data_dir.display(),
            opts.out.display()
        )
    })?;
    eprintln!(
        "export: wrote {} in {:.1} s: {summary}",
        opts.out.display(),
        started.elapsed().as_secs_f64()
    );
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
