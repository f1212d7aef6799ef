//! `polytape run --simulate` as a user runs it: the real binary, the simulator over real
//! sockets, the status API, and Ctrl-C (SIGINT) finishing the writes in flight.

#![allow(clippy::unwrap_used)] // a test: a failed request should fail it loudly

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get_json(url: &str) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::get(url)
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    })
}

#[test]
fn run_simulate_collects_serves_status_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = common::polytape_run(dir.path(), &[], Stdio::inherit());
    let mut lines = Vec::new();
    let next_line = |deadline: Instant, lines: &mut Vec<String>| -> Option<String> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = rx.recv_timeout(left).ok()?;
        lines.push(line.clone());
        Some(line)
    };

    // The status API address is logged at start.
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let line = next_line(deadline, &mut lines)
            .unwrap_or_else(|| panic!("no status API line: {lines:#?}"));
        if let Some(rest) = line.split("status API on ").nth(1) {
            break rest.split("/health").next().unwrap().to_string();
        }
    };

    // Within a T4 interval and a bit (15 s ticks), a T4 tick has written rows.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let line = next_line(deadline, &mut lines)
            .unwrap_or_else(|| panic!("no T4 tick logged: {lines:#?}"));
        if line.contains("T4 ") && line.contains(" rows") {
            assert!(!line.contains("→ 0 rows"), "{line}");
            break;
        }
    }
    let stats = get_json(&format!("{base}/api/stats"));
    assert!(stats["markets_tracked"].as_u64().unwrap() >= 100, "{stats}");
    assert!(
        stats["markets_per_tier"]["T4"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(
        stats["tiers"]["T4"]["rows_last_hour"].as_u64().unwrap() > 0,
        "{stats}"
    );
    // The run's own counters, since it started.
    assert!(
        stats["run"]["tiers"]["T4"]["rows"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(stats["run"]["errors"], 0, "{stats}");
    // The live feed reports every 15 s: then its counters, with its trades in the last minute.
    let deadline = Instant::now() + Duration::from_secs(30);
    let live = loop {
        let live = get_json(&format!("{base}/api/stats"))["live"].take();
        if !live.is_null() || Instant::now() > deadline {
            break live;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(live["trades_per_min"].is_u64(), "{live}");
    let health = get_json(&format!("{base}/health"));
    assert_eq!(health["status"], "ok", "{health}");
    let t4_files = std::fs::read_dir(dir.path().join("snapshots/tier=4"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count();
    assert!(t4_files >= 1);

    // Ctrl-C: the process finishes what it is writing and exits 0.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while next_line(deadline, &mut lines).is_some() {}
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}: {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("stopped cleanly")),
        "{lines:#?}"
    );
    assert!(dir.path().join("state.sqlite").exists());
}

/// A data directory as `polytape run` leaves it: market #1 won by its first outcome at 18:05,
/// market #2 without a resolution, one T2 tick of both at 17:00, and a file that is no Parquet.
fn export_fixture(dir: &std::path::Path) {
    use polytape_core::{MarketResult, Outcome, Resolution, Snapshot, TickId, Tier};
    use polytape_store::contract::{at, market};
    use polytape_store::{keys, parquet};
    let put = |key: &str, bytes: &[u8]| {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let mut won = market(1, None, false);
    won.result = MarketResult::Resolved(Outcome {
        winner: Some(0),
        invalid: false,
        payouts: Vec::new(),
        resolved_at: Some(at("2026-11-20T18:05:00Z")),
        learned_at: at("2026-11-20T18:10:00Z"),
        uma_status: Some("resolved".into()),
        source: "gamma".into(),
    });
    let r = Resolution::of(&won).unwrap();
    put(
        &keys::resolution(&r),
        &parquet::encode_resolutions(std::slice::from_ref(&r))
            .unwrap()
            .bytes,
    );
    let tick = TickId {
        tier: Tier::T2,
        tick_ts: at("2026-11-20T17:00:00Z"),
    };
    let rows: Vec<Snapshot> = [1, 2]
        .map(|n| {
            let m = market(n, None, true);
            Snapshot {
                snapshot_ts: tick.tick_ts,
                fetched_at: tick.tick_ts,
                condition_id: m.condition_id,
                token_id: m.yes_token_id,
                interval_s: 60,
                price: Some(polytape_core::money::from_mantissa(425_000)),
                ..Snapshot::default()
            }
        })
        .into();
    put(
        &keys::snapshots(&tick),
        &parquet::encode_snapshots(&rows).unwrap().bytes,
    );
    put(
        "snapshots/tier=2/dt=2026-11-20/broken.parquet",
        b"not parquet",
    );
}

#[test]
fn export_writes_the_labelled_rows_and_reports_the_skipped_file_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    export_fixture(dir.path());
    let out = dir.path().join("exports/train.csv");
    let run = Command::new(env!("CARGO_BIN_EXE_polytape"))
        .args(["export", "--format", "csv", "--tiers", "2,3", "--data-dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: skipped") && stderr.contains("broken.parquet"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 rows in, 1 written") && stderr.contains("1 unresolved"),
        "{stderr}"
    );
    assert!(stderr.contains("1 skipped"), "{stderr}");

    // One row: market #1 at 17:00, tier 2, its first outcome won 65 min later.
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("snapshot_ts,fetched_at,condition_id,token_id,"));
    assert!(lines[0]
        .ends_with(",tier,first_outcome_won,winning_outcome,resolved_at,hours_to_resolution"));
    assert!(lines[1].starts_with(&format!(
        "2026-11-20T17:00:00.000Z,2026-11-20T17:00:00.000Z,0x{:064x},10011,60,0.425,",
        1
    )));
    assert!(
        lines[1].ends_with(",2,1,Up,2026-11-20T18:05:00.000Z,1.0833333333333333"),
        "{}",
        lines[1]
    );
    assert!(!dir.path().join("exports/train.csv.tmp").exists());

    // A bad --since is refused before anything is written.
    let bad = Command::new(env!("CARGO_BIN_EXE_polytape"))
        .args(["export", "--since", "yesterday", "--out"])
        .arg(dir.path().join("x.parquet"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
    assert!(!dir.path().join("x.parquet").exists());
}
