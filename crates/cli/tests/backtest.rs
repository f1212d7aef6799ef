//! `polytape backtest` as a user runs it: over a data directory that `polytape run --simulate`
//! collected, with the commented example configuration; twice, giving the same files; and a
//! configuration it must refuse.

#![allow(clippy::unwrap_used)] // a test: a failure should fail it loudly

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/executor.yaml")
}

fn backtest(data_dir: &Path, config: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polytape"))
        .args(["backtest", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs `polytape run --simulate` into `dir` until three T4 ticks have written rows, then
/// stops it with Ctrl-C.
fn collect(dir: &Path) {
    let (mut child, rx) = common::polytape_run(dir, &["--no-feed"], Stdio::inherit());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(150);
    // Three T4 ticks of their own times (a tick line is `T4 HH:MM:SS | … → N rows, …`).
    let mut ticks = std::collections::BTreeSet::new();
    while ticks.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("three T4 ticks not logged: {lines:#?}"));
        let tick = line
            .split_once("T4 ")
            .and_then(|(_, rest)| rest.split_once(" |"))
            .map(|(at, _)| at.to_string());
        if let Some(at) = tick.filter(|_| line.contains(" rows") && !line.contains("→ 0 rows")) {
            ticks.insert(at);
        }
        lines.push(line);
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if rx.recv_timeout(left).is_err() {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn backtest_over_a_simulated_run_writes_the_same_report_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    collect(&data);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = backtest(&data, &example_config(), out);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        assert!(stderr.contains("report in"), "{stderr}");
    }
    for f in ["report.json", "report.html"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert_eq!(x, y, "{f} differs between two runs");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("report.json")).unwrap()).unwrap();
    let data = &report["data"];
    assert!(data["snapshot_rows"].as_u64().unwrap() >= 3, "{data}");
    assert!(data["book_rows"].as_u64().unwrap() >= 3, "{data}");
    assert_eq!(data["files_skipped"], 0, "{data}");
    assert_eq!(
        data["rows_unknown_market"], 0,
        "the run's markets are known: {data}"
    );
    assert!(report["total"]["steps"].as_u64().unwrap() >= 3);
    let strategies = report["strategies"].as_object().unwrap();
    assert_eq!(
        strategies.keys().collect::<Vec<_>>(),
        ["longshot_no", "longshot_yes", "mean_reversion"],
        "the example's enabled strategies"
    );
    assert!(!report["curve"].as_array().unwrap().is_empty());
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("longshot_yes"));
}

#[test]
fn a_live_mode_an_unknown_key_or_a_missing_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases = [
        ("mode: live\n", "mode `live` is not supported"),
        (
            "mode: paper\nrisk:\n  max_loss: 3\n",
            "unknown field `max_loss`",
        ),
        (
            "strategies:\n  longshot_yes:\n    params: {min_prise: 0.9}\n",
            "unknown field `min_prise`",
        ),
    ];
    for (yaml, want) in cases {
        let config = dir.path().join("c.yaml");
        std::fs::write(&config, yaml).unwrap();
        let o = backtest(dir.path(), &config, &out);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{yaml}");
        assert!(stderr.contains(want), "{yaml}: {stderr}");
        assert!(!out.exists(), "no report for a refused configuration");
    }
    let o = backtest(&dir.path().join("nowhere"), &example_config(), &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("no data directory"), "{stderr}");
}
