//! `polytape bench backtest` as a user runs it, at a small size: the figures it prints agree
//! with the directory it generated, the strategies trade, a second run reuses the directory and
//! gives the same report, a directory of other parameters is refused, and `polytape backtest`
//! itself reads the generated directory the same way. No timing is asserted (speed is for
//! BENCHMARKS.md).

#![allow(clippy::unwrap_used)] // a test: a failure should fail it loudly

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROWS: u64 = 20_000;
const MARKETS: u64 = 100;

fn bench(dir: &Path, rows: u64) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polytape"))
        .args(["bench", "backtest", "--json", "--rows"])
        .arg(rows.to_string())
        .args(["--markets", &MARKETS.to_string(), "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn figures(o: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/executor.yaml")
}

#[test]
fn bench_backtest_reads_every_generated_row_trades_and_reuses_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    // Given a missing directory, when the bench runs, then it generates exactly ROWS rows in
    // T2–T4 with a book each, and the backtest reads all of them and nothing else.
    let first = figures(&bench(&dir, ROWS));
    assert_eq!(first["reused"], false);
    let g = &first["generated"];
    let b = &first["backtest"];
    assert_eq!(u(&g["snapshot_rows"]), ROWS);
    let by_tier = g["rows_by_tier"].as_object().unwrap();
    assert_eq!(
        by_tier.keys().collect::<Vec<_>>(),
        ["T2", "T3", "T4"],
        "{by_tier:?}"
    );
    assert_eq!(by_tier.values().map(u).sum::<u64>(), ROWS);
    // 8 h of T2 at 60 s, 3 h of T3 at 30 s, 1 h of T4 at 15 s: 480 : 360 : 240.
    let (t2, t4) = (u(&by_tier["T2"]), u(&by_tier["T4"]));
    assert!(t2 > t4, "{by_tier:?}");
    assert_eq!(u(&g["book_rows"]), ROWS, "every T2+ row has its book");
    assert_eq!(u(&b["snapshot_rows"]), ROWS, "rows read = rows generated");
    assert_eq!(u(&b["book_rows"]), u(&g["book_rows"]));
    assert_eq!(u(&b["files_skipped"]), 0, "{b}");
    assert_eq!(u(&b["rows_skipped"]), 0, "{b}");
    assert_eq!(
        u(&b["files_read"]),
        u(&g["files"]),
        "every Parquet file written is read once"
    );
    assert!(u(&g["resolutions"]) > 0, "{g}");
    assert!(
        u(&g["resolutions"]) < u(&g["markets"]),
        "only part resolve: {g}"
    );
    assert!(u(&b["steps"]) > 0);
    assert!(b["snapshots_per_s"].as_f64().unwrap() > 0.0);
    assert!(u(&b["peak_rss_kib"]) > 0);
    assert!(!b["rss_samples_kib"].as_array().unwrap().is_empty());
    assert!(u(&first["dir_bytes"]) > 0);

    // The strategies signal and trade: fills in the totals, and the strategies' fills add up.
    let total = &first["total"];
    assert!(u(&total["fills"]) > 0, "{total}");
    let strategies = first["strategies"].as_object().unwrap();
    assert_eq!(
        strategies.keys().collect::<Vec<_>>(),
        [
            "longshot_no",
            "longshot_yes",
            "mean_reversion",
            "term_structure"
        ],
        "every strategy of the example, enabled"
    );
    let fills: u64 = strategies.values().map(|s| u(&s["fills"])).sum();
    assert_eq!(fills, u(&total["fills"]), "{strategies:?}");
    assert!(
        strategies.values().filter(|s| u(&s["signals"]) > 0).count() >= 3,
        "{strategies:?}"
    );

    // When it runs again over the same directory, it is reused and the backtest's report is
    // the same.
    let again = figures(&bench(&dir, ROWS));
    assert_eq!(again["reused"], true);
    assert_eq!(again["generated"], first["generated"]);
    assert_eq!(again["total"], first["total"]);
    assert_eq!(again["strategies"], first["strategies"]);

    // A directory generated for other rows is refused, not overwritten.
    let other = bench(&dir, ROWS + 1);
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success());
    assert!(stderr.contains("pick another --dir"), "{stderr}");

    // `polytape backtest` reads the generated directory as the bench did.
    let out = tmp.path().join("report");
    let o = Command::new(env!("CARGO_BIN_EXE_polytape"))
        .args(["backtest", "--data-dir"])
        .arg(&dir)
        .arg("--config")
        .arg(example_config())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(u(&report["data"]["snapshot_rows"]), ROWS);
    assert_eq!(
        u(&report["data"]["rows_unknown_market"]),
        0,
        "every market is in the markets files"
    );
}
