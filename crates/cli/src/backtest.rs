//! `polytape backtest`: the stored snapshots and order books of a data directory replayed
//! through the paper executor's strategies, sizing, risk and fills
//! ([`polytape_strategy::backtest`]), written as `report.json` and `report.html`.

use anyhow::Context;
use polytape_strategy::backtest::run_backtest;
use polytape_strategy::EngineConfig;
use std::path::Path;

/// Loads `config`, replays `data_dir`, writes the report into `out` and prints a summary to
/// stderr.
pub async fn backtest(data_dir: &Path, config: &Path, out: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(config)?;
    let report = run_backtest(data_dir, &config)
        .await
        .with_context(|| format!("backtesting {}", data_dir.display()))?;
    report
        .write(out)
        .with_context(|| format!("writing the report into {}", out.display()))?;
    let d = &report.data;
    let t = &report.total;
    eprintln!(
        "read {} snapshot rows and {} book rows ({} files, {} skipped; {} rows skipped, {} \
         duplicates, {} of unknown markets), {} resolutions; {} steps",
        d.snapshot_rows,
        d.book_rows,
        d.files_read,
        d.files_skipped,
        d.rows_skipped,
        d.duplicate_rows,
        d.rows_unknown_market,
        d.resolutions,
        t.steps
    );
    for s in &d.skipped {
        eprintln!("skipped {}: {}", s.key, s.reason);
    }
    for (name, s) in &report.strategies {
        eprintln!(
            "{name}: {} signals, {} fills, {} closed, P&L {} (realised {}, unrealised {})",
            s.signals,
            s.fills,
            s.closed,
            s.pnl.round_dp(2),
            s.realised.round_dp(2),
            s.unrealised.round_dp(2)
        );
    }
    eprintln!(
        "equity {} → {} (P&L {}); report in {}",
        t.initial_cash.round_dp(2),
        t.final_equity.round_dp(2),
        t.pnl.round_dp(2),
        out.display()
    );
    Ok(())
}
