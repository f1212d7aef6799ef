//! `polytape run --simulate` as a user runs it: the real binary, the simulator over real
//! sockets, the status API, and Ctrl-C (SIGINT) finishing the writes in flight.

#![allow(clippy::unwrap_used)] // a test: a failed request should fail it loudly

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_polytape"))
        .args(["run", "--simulate", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
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
        stats["tiers"]["T4"]["rows"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(stats["errors"], 0, "{stats}");
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
