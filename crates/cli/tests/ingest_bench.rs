//! `polytape bench ingest`, run small as a user runs it: the binary, its loopback server as a
//! child process, `--json`. Checks the report's accounting (every trade sent stored once,
//! every whale its event, every frame on the tape) and that its figures agree with each other
//! — never how fast anything was.

use serde_json::Value;
use std::process::Command;

fn polytape() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_polytape"));
    c.env("RUST_LOG", "warn").env("RUST_BACKTRACE", "0");
    c
}

fn u(v: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count in {v}"))
}

fn f(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

/// Given 3 s at 1,500 events/s over 30 markets, the stress mix (one event in ten a trade), one
/// trade in 10 a whale, then the command
/// succeeds and its JSON report says every trade sent is stored exactly once, every whale has
/// its event and every frame sent is on the tape; the feed heard what the server sent; the
/// queue's counts, the billed requests and their rate per 1,000 trades follow from each other;
/// the latencies are ordered.
#[test]
fn a_small_run_stores_every_trade_once_and_its_figures_agree() {
    let out = polytape()
        .args([
            "bench",
            "ingest",
            "--seconds",
            "3",
            "--rate",
            "1500",
            "--markets",
            "30",
            "--whale-every",
            "10",
            "--trade-share",
            "0.1",
            "--json",
        ])
        .output()
        .expect("polytape runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(r["trade_share"], 0.1);
    // One connection: every tenth event of its window a trade, and its last frame one.
    assert_eq!(
        u(&r, "server.trades") - 1,
        (u(&r, "server.live_events") - 1) / 10
    );

    // The check passed, and what it compared.
    assert_eq!(r["failures"], serde_json::json!([]), "{r:#}");
    let (trades, whales) = (u(&r, "server.trades"), u(&r, "server.whales"));
    assert!(
        trades >= 100,
        "a run this size sends hundreds of trades: {r:#}"
    );
    assert_eq!(whales, trades / 10, "every 10th trade a whale");
    assert_eq!(u(&r, "stored.trades.once"), trades);
    assert_eq!(u(&r, "stored.trades.rows"), trades);
    for k in ["missing", "duplicates", "unknown"] {
        assert_eq!(u(&r, &format!("stored.trades.{k}")), 0, "{k}");
    }
    assert_eq!(u(&r, "stored.whale_events"), whales);
    assert_eq!(u(&r, "stored.tape_frames"), u(&r, "server.frames"));
    assert_eq!(u(&r, "stored.tape_frame_bytes"), u(&r, "server.bytes"));
    assert_eq!(u(&r, "server.send_errors"), 0);

    // What the feed heard is what the server sent.
    assert_eq!(u(&r, "feed.frames"), u(&r, "server.frames"));
    assert_eq!(u(&r, "feed.events"), u(&r, "server.events"));
    assert_eq!(u(&r, "feed.trades_ws"), trades);
    assert_eq!(u(&r, "feed.whales"), whales);
    assert_eq!(u(&r, "feed.duplicates"), 0);
    assert_eq!(u(&r, "feed.lost_messages"), 0);
    // 60 tokens, 200 a shard: one connection.
    assert_eq!((u(&r, "feed.shards"), u(&r, "server.connections")), (1, 1));
    assert_eq!(
        u(&r, "server.live_events"),
        u(&r, "server.trades") + u(&r, "server.price_changes") + u(&r, "server.books")
            - (u(&r, "server.events") - u(&r, "server.live_events")),
        "live events are the trades, price changes and books of the window"
    );

    // The rate: events over the window, and against the rate asked.
    let events_per_s = f(&r, "events_per_s");
    let window_s = f(&r, "server.window_s");
    assert!(
        window_s >= 3.0,
        "the window lasts its --seconds: {window_s}"
    );
    assert!(
        (events_per_s * window_s - u(&r, "server.live_events") as f64).abs()
            < 1e-6 * events_per_s.max(1.0) * window_s + 1e-6
    );
    assert!((f(&r, "rate_achieved") - events_per_s / 1500.0).abs() < 1e-9);
    assert_eq!(r["rate"], 1500);

    // The queue: every trade handed over once, requests from its own counts.
    let q = &r["queue"];
    assert_eq!(u(q, "trades"), trades);
    assert_eq!(u(q, "whales"), whales);
    let (messages, chunks, batches) = (u(q, "messages"), u(q, "chunks"), u(q, "poller_batches"));
    assert!(messages >= 1 && chunks >= messages, "{q}");
    assert!(
        chunks * 64 * 1024 >= u(q, "bytes"),
        "a chunk is 64 KiB: {q}"
    );
    assert!(
        batches >= messages.div_ceil(10) && batches <= messages,
        "{q}"
    );
    assert_eq!(u(q, "billed_requests"), 2 * chunks + batches);
    let per_1000 = f(q, "requests_per_1000_trades");
    assert!((per_1000 - (2 * chunks + batches) as f64 * 1000.0 / trades as f64).abs() < 1e-9);
    assert!(
        (f(q, "messages_per_1000_trades") - messages as f64 * 1000.0 / trades as f64).abs() < 1e-9
    );

    // Latencies: one per trade, ordered; the server's stamp comes before the receive.
    for l in ["latency", "server_to_queue"] {
        let l = &r[l];
        assert_eq!(u(l, "trades"), trades);
        let (p50, p99, max) = (u(l, "p50_ms"), u(l, "p99_ms"), u(l, "max_ms"));
        assert!(p50 <= p99 && p99 <= max, "{l}");
    }
    assert!(u(&r, "server_to_queue.max_ms") >= u(&r, "latency.max_ms"));
    assert_eq!(
        r["kept_up"],
        r["drain_s"].as_f64().is_some_and(|d| d <= 5.0)
    );

    // Memory: the peak bounds every sample.
    let m = &r["memory"];
    let peak = u(m, "peak_rss_kib");
    assert!(peak > 0);
    let samples = m["samples"].as_array().expect("samples");
    assert!(samples.len() >= 3, "one a second over a 3 s window");
    let max_sample = samples.iter().map(|s| u(s, "rss_kib")).max().unwrap_or(0);
    assert_eq!(u(m, "sampled_max_rss_kib"), max_sample);
    assert!(max_sample <= peak);
}

/// Given no --trade-share, then the server sends Polymarket's mix, three trades in a thousand
/// events (and each connection's last frame a trade), and every one is stored once.
#[test]
fn by_default_three_events_in_a_thousand_are_trades_and_each_is_stored_once() {
    let out = polytape()
        .args([
            "bench",
            "ingest",
            "--seconds",
            "3",
            "--rate",
            "2000",
            "--markets",
            "30",
            "--json",
        ])
        .output()
        .expect("polytape runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(r["failures"], serde_json::json!([]), "{r:#}");
    assert_eq!(r["trade_share"], 0.003);
    let (trades, live) = (u(&r, "server.trades"), u(&r, "server.live_events"));
    assert!(live >= 5_000, "{r:#}");
    assert_eq!(trades - 1, (live - 1) * 3 / 1000);
    assert_eq!(u(&r, "stored.trades.once"), trades);
    assert_eq!(u(&r, "feed.trades_ws"), trades);
    // The rest: one-level price changes, and a book one event in 250 (besides the books
    // answering the subscribes): ≈ 99.3 % price changes.
    assert_eq!(
        u(&r, "server.events"),
        trades + u(&r, "server.price_changes") + u(&r, "server.books")
    );
    assert!(u(&r, "server.price_changes") * 1000 >= live * 990, "{r:#}");
}

/// Given input it cannot run, then the command fails with a message naming the option, and
/// does not start a server.
#[test]
fn bad_options_are_refused_by_name() {
    for (args, names) in [
        (&["--rate", "fast"][..], "--rate"),
        (&["--rate", "0"][..], "--rate"),
        (&["--rate=-5"][..], "--rate"),
        (&["--seconds", "0"][..], "--seconds"),
        (&["--markets", "0"][..], "--markets"),
        (&["--seconds", "soon"][..], "--seconds"),
        (&["--trade-share", "0"][..], "--trade-share"),
        (&["--trade-share", "1.5"][..], "--trade-share"),
        (&["--trade-share", "often"][..], "--trade-share"),
    ] {
        let out = polytape()
            .args(["bench", "ingest"])
            .args(args)
            .output()
            .expect("polytape runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
