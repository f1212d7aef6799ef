//! Each Lambda binary (discovery, snapshot, maintenance, status, trades) run the way Lambda runs
//! it — through `cargo lambda watch`, cargo-lambda's emulator of the Lambda runtime API — on
//! recorded EventBridge, SQS and HTTP API events, against moto (DynamoDB, S3, SQS) and the
//! Polymarket simulator over real sockets. The status function answers every endpoint's
//! recorded event with the JSON the same router answers in process over the same tables.
//!
//! Needs `POLYTAPE_MOTO_URL` (a running moto server) and `POLYTAPE_CARGO_LAMBDA` (the
//! cargo-lambda binary); infra/test.sh provides both. Without them the test prints a skip line,
//! unless `POLYTAPE_REQUIRE_TOOLS=1`, when it fails.
//!
//! No assertion depends on how long a build takes. The simulated world starts its clock when it
//! is created and its markets move through the tiers as real time passes, so:
//! * the function binaries are built first, by the command `cargo lambda watch` runs on a first
//!   invoke ([`build_functions`]), before the world exists; watch then finds them fresh;
//! * watch is started and answers before the first time-dependent step;
//! * what discovery and maintenance must do is computed from the simulator's truth at the
//!   moment of the call ([`discoverable`]), not fixed when the world was created.
//!
//! The snapshot function runs with the timeout template.yaml gives it (read from the template,
//! [`snapshot_limits`]): a tick against a simulator slower than any deadline still ends in time,
//! writes what it has and records its coverage; and a tick delivered before its time waits, so
//! no row anywhere has `fetched_at` before `snapshot_ts`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

use aws_config::{BehaviorVersion, Region, SdkConfig};
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Tier, Ts};
use polytape_sim::{MarketKind, SimHandle};
use polytape_store::aws::{provision, AwsNames, AwsStore};
use polytape_store::{keys, parquet, queue, CoverageStore, LatestStore, MarketStore, ObjectStore};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Lambda binaries, by the names `cargo lambda watch` serves them under.
const FUNCTIONS: [&str; 5] = ["discovery", "snapshot", "maintenance", "status", "trades"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn event(path: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Variables cargo (and nextest) set for a running test that describe the test's own package.
const TEST_PACKAGE_VARS: [&str; 9] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// Removes from `cmd`'s environment what cargo set for this test about its own package
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …). Build scripts may track them — ring declares
/// `rerun-if-env-changed=CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR` — so a cargo started with
/// them rebuilds ring and every crate above it (rustls, the AWS SDK, reqwest, polytape's
/// own), unlike the build the test command made, and unlike the next one.
fn without_test_package_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if TEST_PACKAGE_VARS.contains(&&*n)
            || [
                "CARGO_PKG_",
                "CARGO_BIN_EXE_",
                "CARGO_CFG_",
                "CARGO_FEATURE_",
            ]
            .iter()
            .any(|p| n.starts_with(p))
        {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// Builds the function binaries the way `cargo lambda watch` builds one on its first invoke:
/// `$CARGO run --bin <name>` in the workspace root, `CARGO` removed (cargo-lambda 1.9, through
/// cargo-options), here `$CARGO build --bin …` — same cargo, profile, features, environment
/// ([`without_test_package_env`] for both) and target directory, so watch finds every binary
/// fresh and an invoke never waits for a compile. Returns how long the build took (minutes on
/// a cold cache, about a second when fresh).
fn build_functions() -> Duration {
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build");
    for f in FUNCTIONS {
        cmd.args(["--bin", f]);
    }
    let status = without_test_package_env(&mut cmd)
        .env_remove("CARGO")
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("running cargo build for the function binaries");
    assert!(status.success(), "cargo build of the functions: {status}");
    started.elapsed()
}

/// The markets discovery must keep at `now`, with their tier: the simulator's tradeable markets
/// (its truth, as of its clock) whose end date lies in (`now`, `now` + 336 h], the default
/// lookahead.
fn discoverable(sim: &SimHandle, now: Ts) -> BTreeMap<String, Tier> {
    let horizon = now + chrono::Duration::hours(336);
    sim.truth()
        .markets
        .into_iter()
        .filter(|m| m.kind == MarketKind::Tradeable && m.end_date > now && m.end_date <= horizon)
        .filter_map(|m| Some((m.condition_id, Tier::at(now, m.end_date)?)))
        .collect()
}

/// The active markets of the store, with their tier.
async fn stored_tiers(store: &AwsStore) -> BTreeMap<String, Tier> {
    store
        .active_markets()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.condition_id, m.tier.unwrap()))
        .collect()
}

/// The snapshot function's `Timeout` and `POLYTAPE_TICK_MARGIN_S` in template.yaml (read with
/// the SAM venv's cfn-lint decoder, as the template tests do), in seconds.
fn snapshot_limits() -> (u64, u64) {
    let python =
        std::env::var("POLYTAPE_PYTHON_SAM").expect("POLYTAPE_PYTHON_SAM (infra/tools.sh)");
    let root = workspace_root();
    let out = Command::new(python)
        .arg(root.join("infra/checks/template_json.py"))
        .arg(root.join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let props = &t["Resources"]["SnapshotFunction"]["Properties"];
    let num = |v: &Value| match v {
        Value::String(s) => s.parse::<u64>().unwrap(),
        other => other.as_u64().unwrap(),
    };
    (
        num(&props["Timeout"]),
        num(&props["Environment"]["Variables"]["POLYTAPE_TICK_MARGIN_S"]),
    )
}

/// (`snapshot_ts`, `fetched_at`) of every row of every `snapshots` object in the store, ms.
async fn snapshot_times(store: &AwsStore) -> Vec<(i64, i64)> {
    use arrow_array::Array;
    let mut out = Vec::new();
    for key in store.list_objects("snapshots/").await.unwrap() {
        let bytes = bytes::Bytes::from(store.get_object(&key).await.unwrap().unwrap());
        let reader =
            ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<arrow_array::TimestampMillisecondArray>()
                    .unwrap()
                    .clone()
            };
            let (snap, fetched) = (col("snapshot_ts"), col("fetched_at"));
            for i in 0..snap.len() {
                out.push((snap.value(i), fetched.value(i)));
            }
        }
    }
    out
}

/// How many markets of `tiers` are in `tier`.
fn in_tier(tiers: &BTreeMap<String, Tier>, tier: Tier) -> usize {
    tiers.values().filter(|t| **t == tier).count()
}

/// `cargo lambda watch` on a free port, killed on drop.
struct Watch {
    child: Child,
    base: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(cargo_lambda: &str, env_file: &Path) -> Watch {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = without_test_package_env(&mut Command::new(cargo_lambda))
            .args([
                "lambda",
                "watch",
                // The binaries are built before watch starts; no source change during the run
                // may rebuild and restart a function mid-test.
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
                "--env-file",
            ])
            .arg(env_file)
            .current_dir(workspace_root())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting cargo lambda watch");
        Watch {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until the emulator accepts connections (it listens before building anything).
    async fn wait_ready(&self) {
        let addr = self.base.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {addr} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Invokes `function` with `payload` and returns what it returned; a function error panics.
    async fn invoke(&self, function: &str, payload: &Value) -> Value {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(900))
            .build()
            .unwrap();
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let resp = client
            .post(&url)
            .json(payload)
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoking {function}: {e}"));
        let error = resp.headers().get("x-amz-function-error").is_some();
        let body: Value = resp.json().await.unwrap();
        assert!(!error, "{function} failed: {body}");
        body
    }
}

struct Tools {
    moto: String,
    cargo_lambda: String,
}

fn tools() -> Option<Tools> {
    match (
        std::env::var("POLYTAPE_MOTO_URL"),
        std::env::var("POLYTAPE_CARGO_LAMBDA"),
    ) {
        (Ok(moto), Ok(cargo_lambda)) => Some(Tools { moto, cargo_lambda }),
        _ => {
            assert!(
                std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "POLYTAPE_MOTO_URL and POLYTAPE_CARGO_LAMBDA must be set: run infra/test.sh"
            );
            eprintln!("SKIP: moto or cargo-lambda not available (infra/test.sh provides both)");
            None
        }
    }
}

async fn moto_config(url: &str) -> SdkConfig {
    let creds =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(url)
        .load()
        .await
}

fn sqs_event(tick: &TickId, message_id: &str) -> Value {
    let mut e = event("functions/snapshot/events/sqs-tick.json");
    e["Records"][0]["body"] = json!(queue::encode_tick(tick));
    e["Records"][0]["messageId"] = json!(message_id);
    e
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_run_through_cargo_lambda_watch_on_moto_and_the_simulator() {
    let Some(tools) = tools() else { return };
    let (timeout_s, margin_s) = snapshot_limits();
    // Build first: the simulated world's clock starts when it is created, and a cold build
    // takes minutes.
    let built_in = build_functions();
    eprintln!("function binaries built in {built_in:.1?}");
    let cfg = moto_config(&tools.moto).await;
    let names = provision::create_all(&cfg, &AwsNames::unique("fn"))
        .await
        .unwrap();
    let store = AwsStore::new(&cfg, names.clone());

    let mut sim_cfg = polytape_sim::SimConfig::new(11);
    sim_cfg.markets_per_tier = 5;
    sim_cfg.now = chrono::Utc::now();
    let sim = polytape_sim::start(sim_cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let created = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("functions.env");
    std::fs::write(
        &env_file,
        [
            format!("AWS_ENDPOINT_URL={}", tools.moto),
            "AWS_ACCESS_KEY_ID=testing".into(),
            "AWS_SECRET_ACCESS_KEY=testing".into(),
            "AWS_REGION=us-east-1".into(),
            "AWS_DEFAULT_REGION=us-east-1".into(),
            format!("POLYTAPE_MARKETS_TABLE={}", names.markets_table),
            format!("POLYTAPE_OPS_TABLE={}", names.ops_table),
            // As template.yaml sets them for the snapshot function: watch's runtime API sends
            // no real deadline, so the function takes its end from its configured timeout.
            format!("POLYTAPE_FUNCTION_TIMEOUT_S={timeout_s}"),
            format!("POLYTAPE_TICK_MARGIN_S={margin_s}"),
            format!("POLYTAPE_BUCKET={}", names.bucket),
            format!("POLYTAPE_TICKS_QUEUE_URL={}", names.ticks_queue_url),
            format!("POLYTAPE_GAMMA_URL={}", sim.gamma_url()),
            format!("POLYTAPE_CLOB_URL={}", sim.clob_url()),
            format!("POLYTAPE_DATA_URL={}", sim.data_url()),
            "RUST_LOG=info".into(),
        ]
        .join("\n"),
    )
    .unwrap();
    let watch = Watch::start(&tools.cargo_lambda, &env_file);
    watch.wait_ready().await;

    // Discovery on its schedule (never run before: due) fills the markets table with the
    // tradeable markets of the simulator's truth at the time of the call, each in its tier
    // (5 per tier, 25 in all, while no market has crossed a tier boundary since the world was
    // created).
    let before = discoverable(&sim, chrono::Utc::now());
    let report = watch
        .invoke(
            "discovery",
            &event("functions/discovery/events/eventbridge-schedule.json"),
        )
        .await;
    let after = discoverable(&sim, chrono::Utc::now());
    let discovered = stored_tiers(&store).await;
    eprintln!(
        "discovery ran {:.1?} after the world was created: kept {}, per tier {:?}",
        created.elapsed(),
        discovered.len(),
        Tier::ALL.map(|t| in_tier(&discovered, t))
    );
    assert!(
        discovered == before || discovered == after,
        "stored {discovered:?}\nexpected at the call's start {before:?}\nor at its end {after:?}"
    );
    assert_eq!(report["kept"], discovered.len(), "{report}");
    // Counted by end date at one moment, as the ticks sample them.
    let counted_at = chrono::Utc::now();
    let per_tier = store.count_due(counted_at).await.unwrap();
    let active = store.active_markets().await.unwrap();
    for t in Tier::ALL {
        let n = active
            .iter()
            .filter(|m| Tier::at(counted_at, m.end_date) == Some(t))
            .count();
        assert!(n > 0, "tier {t:?} has markets to sample: {discovered:?}");
        assert_eq!(
            per_tier.get(&Some(t)).copied(),
            Some(n as u64),
            "{per_tier:?}"
        );
    }
    // The next minute's invocation finds discovery not due (it ran a moment ago).
    let again = watch
        .invoke(
            "discovery",
            &event("functions/discovery/events/eventbridge-schedule.json"),
        )
        .await;
    assert_eq!(again, json!({"due": false}));

    // Start the snapshot function's instance (an empty batch), so the timed steps below start
    // at once.
    let warm = watch.invoke("snapshot", &json!({"Records": []})).await;
    assert!(failures(&warm).is_empty());

    // The next minute's dispatch enqueues exactly its due ticks, each delayed to its second.
    let minute = TickId::floor(Tier::T2, chrono::Utc::now()).tick_ts + chrono::Duration::minutes(1);
    let mut schedule = event("functions/snapshot/events/eventbridge-schedule.json");
    schedule["time"] = json!(minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let dispatched = watch.invoke("snapshot", &schedule).await;
    let expected = due_in_minute(minute);
    let got: Vec<TickId> = serde_json::from_value(dispatched["enqueued"].clone()).unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        expected
            .iter()
            .map(|t| (t.tier.number(), t.delay_s()))
            .collect::<Vec<_>>(),
        if minute.format("%M").to_string().parse::<u32>().unwrap() % 5 == 0 {
            if minute.format("%M").to_string() == "00" {
                vec![
                    (0, 0),
                    (1, 0),
                    (2, 0),
                    (3, 0),
                    (4, 0),
                    (4, 15),
                    (3, 30),
                    (4, 30),
                    (4, 45),
                ]
            } else {
                vec![
                    (1, 0),
                    (2, 0),
                    (3, 0),
                    (4, 0),
                    (4, 15),
                    (3, 30),
                    (4, 30),
                    (4, 45),
                ]
            }
        } else {
            vec![(2, 0), (3, 0), (4, 0), (4, 15), (3, 30), (4, 30), (4, 45)]
        },
        "the minute's ticks and their seconds"
    );
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&names.ticks_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let observed_by = chrono::Utc::now();
    let count = |k| {
        attrs
            .attributes()
            .unwrap()
            .get(&k)
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let visible = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages);
    let delayed = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed);
    assert_eq!(
        visible + delayed,
        expected.len(),
        "every tick is on the queue"
    );
    // Delays round up (queue::delay_for), so no tick is delivered before its time: while the
    // minute has not begun, none of its ticks is visible.
    if observed_by < minute {
        assert_eq!(
            visible, 0,
            "observed before the minute: every tick waits for its second"
        );
    }

    // Run the T2 tick early in a minute, so neither run below starts late.
    let into_minute = chrono::Utc::now().timestamp().rem_euclid(60);
    if into_minute > 30 {
        tokio::time::sleep(Duration::from_secs((61 - into_minute) as u64)).await;
    }
    // A T2 tick from its SQS message writes Parquet under the tick's keys and the Latest item;
    // run twice, it leaves one copy.
    let tick = TickId::floor(Tier::T2, chrono::Utc::now());
    for _ in 0..2 {
        let r = watch.invoke("snapshot", &sqs_event(&tick, "m-t2")).await;
        assert!(failures(&r).is_empty(), "{r}");
    }
    assert_eq!(
        store.list_objects("snapshots/").await.unwrap(),
        vec![keys::snapshots(&tick)]
    );
    assert_eq!(
        store.list_objects("orderbooks/").await.unwrap(),
        vec![keys::orderbooks(&tick)]
    );
    let t2_markets = store
        .markets_due(Tier::T2, tick.tick_ts)
        .await
        .unwrap()
        .len();
    let latest = store.get_latest(Tier::T2).await.unwrap().unwrap();
    assert_eq!(
        (latest.tick_ts, latest.markets.len()),
        (tick.tick_ts, t2_markets),
        "every T2 market discovered has its Latest entry"
    );
    assert!(latest
        .markets
        .iter()
        .all(|m| m.snapshot_count == 1 && m.best_bid.is_some()));
    duckdb_reads_what_moto_holds(&store, &tick.tick_ts, t2_markets).await;

    // Maintenance on its 5-minute event re-tiers every market to its tier at the time of the
    // call (by the simulator's truth; none is due to move while the world is young) and records
    // its run.
    let tracked = stored_tiers(&store).await;
    let before = discoverable(&sim, chrono::Utc::now());
    let m = watch
        .invoke(
            "maintenance",
            &event("functions/maintenance/events/eventbridge-schedule.json"),
        )
        .await;
    let after = discoverable(&sim, chrono::Utc::now());
    let retiered = stored_tiers(&store).await;
    eprintln!(
        "maintenance ran {:.1?} after the world was created: {m}",
        created.elapsed()
    );
    assert!(
        [&before, &after].iter().any(|want| tracked
            .iter()
            .all(|(id, _)| retiered.get(id) == want.get(id))),
        "re-tiered {retiered:?}\nexpected at the call's start {before:?}\nor at its end {after:?}"
    );
    let moved = tracked
        .iter()
        .filter(|(id, t)| retiered.get(*id).is_some_and(|now| now != *t))
        .count();
    let ended = m["retier"]["closed"].as_u64().unwrap() + m["retier"]["expired"].as_u64().unwrap();
    assert_eq!(
        (
            m["retier"]["active"].as_u64(),
            m["retier"]["moved"].as_u64(),
            ended
        ),
        (
            Some(tracked.len() as u64),
            Some(moved as u64),
            (tracked.len() - retiered.len()) as u64
        ),
        "{m}"
    );

    // The status API through an HTTP API event: the markets per tier and the T2 tick just written.
    let health = watch
        .invoke(
            "status",
            &event("functions/status/events/http-get-health.json"),
        )
        .await;
    assert_eq!(health["statusCode"], 200, "{health}");
    let body: Value = serde_json::from_str(health["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    let stats = watch
        .invoke(
            "status",
            &event("functions/status/events/http-get-stats.json"),
        )
        .await;
    let body: Value = serde_json::from_str(stats["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["markets_tracked"], retiered.len(), "{body}");
    assert_eq!(
        (
            body["tiers"]["T2"]["markets"].as_u64(),
            body["tiers"]["T2"]["latest_markets"].as_u64()
        ),
        (
            Some(in_tier(&retiered, Tier::T2) as u64),
            Some(t2_markets as u64)
        ),
        "{body}"
    );

    // /health/critical: nothing fails.
    let ok = watch
        .invoke(
            "status",
            &event("functions/status/events/http-get-health-critical.json"),
        )
        .await;
    assert_eq!(ok["statusCode"], 200, "{ok}");

    // A delivery before its time waits for it: the next T4 tick, delivered now.
    let early = TickId::floor(Tier::T4, chrono::Utc::now()).next();
    let r = watch
        .invoke("snapshot", &sqs_event(&early, "m-early"))
        .await;
    assert!(failures(&r).is_empty(), "{r}");
    assert!(store
        .list_objects("snapshots/tier=4/")
        .await
        .unwrap()
        .contains(&keys::snapshots(&early)));

    // A Polymarket slower than any deadline: a T0 tick (its next tick an hour away) is bounded
    // by the function's own timeout. It stops its requests `margin` before the invocation's
    // end, writes what it has (nothing), records its coverage, and returns in time.
    // Slower than the tick's deadline, not much longer: the simulator's shutdown at the end
    // waits for the requests it is still holding.
    sim.set_latency(Duration::from_secs(timeout_s - margin_s + 5));
    let t0_slow = TickId::floor(Tier::T0, chrono::Utc::now());
    let started = Instant::now();
    let r = watch
        .invoke("snapshot", &sqs_event(&t0_slow, "m-slow"))
        .await;
    let took = started.elapsed();
    sim.set_latency(Duration::ZERO);
    eprintln!(
        "the slow T0 tick returned after {took:.1?} (timeout {timeout_s} s, margin {margin_s} s)"
    );
    assert!(failures(&r).is_empty(), "nothing storage-side failed: {r}");
    assert!(
        took < Duration::from_secs(timeout_s),
        "returned before the function's {timeout_s} s timeout: {took:?}"
    );
    assert!(
        took >= Duration::from_secs(timeout_s - margin_s - 3),
        "its requests waited until the deadline: {took:?}"
    );
    let cov = store
        .coverage_since(t0_slow.tick_ts)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.tier == Tier::T0 && c.tick_ts == t0_slow.tick_ts)
        .expect("the slow tick's coverage is recorded");
    assert!(
        cov.expected > 0 && cov.written == 0 && cov.failed,
        "{cov:?}"
    );

    // No row of any tick has fetched_at before snapshot_ts.
    let times = snapshot_times(&store).await;
    assert!(!times.is_empty());
    for (snap, fetched) in &times {
        assert!(
            fetched >= snap,
            "fetched_at {fetched} before snapshot_ts {snap}"
        );
    }

    // The trades function on the recorded live queue batch (functions/trades/events): the two
    // feed messages stored on moto's S3, one file per table named by the messages it holds,
    // exactly the two poisoned records reported; invoked again (a redelivery), the messages
    // are found stored in the files' names and nothing is written or added.
    let live = event("functions/trades/events/sqs-live-batch.json");
    let mut stored: Vec<(String, Vec<u8>)> = Vec::new();
    for attempt in 0..2 {
        let r = watch.invoke("trades", &live).await;
        assert_eq!(failures(&r), vec!["m-not-feed", "m-empty"], "{r}");
        let mut now = Vec::new();
        for table in [keys::TRADES, keys::WHALE_EVENTS, keys::RAW_WS] {
            for key in store.list_objects(&format!("{table}/")).await.unwrap() {
                let bytes = store.get_object(&key).await.unwrap().unwrap();
                now.push((key, bytes));
            }
        }
        if attempt > 0 {
            assert_eq!(
                now, stored,
                "a redelivery finds its messages stored, adds nothing"
            );
        }
        stored = now;
    }
    // One file per table for the batch's messages, named by the messages it holds.
    let live_key = |table: &str, seqs: &[u64]| {
        keys::live_set(
            table,
            "2026-11-20T12:00:00Z".parse().unwrap(),
            1_795_176_000_000,
            0,
            seqs,
        )
    };
    assert_eq!(
        stored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![
            live_key(keys::TRADES, &[1, 2]),
            live_key(keys::WHALE_EVENTS, &[2]),
            live_key(keys::RAW_WS, &[1, 2]),
        ]
    );
    let trades: usize = stored
        .iter()
        .filter(|(k, _)| k.starts_with("trades/"))
        .map(|(_, b)| parquet::decode_trades(b).unwrap().len())
        .sum();
    assert_eq!(
        trades,
        5 + 1,
        "message 2's bad line is skipped, its other trade stored"
    );

    // Every endpoint of the status API, through the status function on its recorded HTTP API
    // events, answers what the same router answers in process over the same tables.
    status_function_answers_as_the_router(&watch, &store).await;

    // A DynamoDB failure after the Parquet and Latest are written (the Ops table is gone, so
    // the coverage cannot be recorded) fails the tick: it is reported as a batch item failure
    // for SQS to deliver again, not dropped. (T1 and T0 ticks: minutes of slack, so they
    // cannot turn stale while the test runs.)
    aws_sdk_dynamodb::Client::new(&cfg)
        .delete_table()
        .table_name(&names.ops_table)
        .send()
        .await
        .unwrap();
    let t1 = TickId::floor(Tier::T1, chrono::Utc::now());
    let r = watch
        .invoke("snapshot", &sqs_event(&t1, "m-ddb-down"))
        .await;
    assert_eq!(failures(&r), vec!["m-ddb-down".to_string()], "{r}");
    assert!(
        store
            .list_objects("snapshots/tier=1/")
            .await
            .unwrap()
            .contains(&keys::snapshots(&t1)),
        "the S3 write came first"
    );

    // An S3 failure fails the tick the same way.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build(),
    );
    for key in store.list_objects("").await.unwrap() {
        s3.delete_object()
            .bucket(&names.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    s3.delete_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .unwrap();
    let t0 = TickId::floor(Tier::T0, chrono::Utc::now());
    let r = watch.invoke("snapshot", &sqs_event(&t0, "m-s3-down")).await;
    assert_eq!(failures(&r), vec!["m-s3-down".to_string()], "{r}");
    drop(watch);
    sim.shutdown().await;
}

/// The recorded HTTP API events of the status function (functions/status/events): one per
/// endpoint, and the bad-parameter, unknown-market and local-only answers.
const STATUS_EVENTS: [&str; 26] = [
    "http-get-root.json",
    "http-get-openapi.json",
    "http-get-health.json",
    "http-get-health-critical.json",
    "http-get-stats.json",
    "http-get-markets.json",
    "http-get-market.json",
    "http-get-market-unknown.json",
    "http-get-markets-bad-tier.json",
    "http-get-tier-transitions.json",
    "http-get-tasks-status.json",
    "http-get-tasks-runs.json",
    "http-get-coverage.json",
    "http-get-gaps.json",
    "http-get-completeness.json",
    "http-get-websocket.json",
    "http-get-events.json",
    "http-get-events-stream.json",
    "http-get-tables.json",
    "http-get-table.json",
    "http-get-table-state.json",
    "http-get-executor-status.json",
    "http-get-executor-positions.json",
    "http-get-executor-fills.json",
    "http-get-executor-signals.json",
    "http-get-strategies.json",
];

/// `v` without what depends on the instant of the call — `now` and a report's end `to` (the
/// same instant), the executor's `lag_s`, ages, hours to close — which two calls a moment
/// apart cannot share.
fn without_instant(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return within(v);
    };
    Value::Object(
        m.iter()
            .filter(|(k, _)| !["now", "to", "lag_s"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), within(v)))
            .collect(),
    )
}

/// [`without_instant`] below the top level: ages and hours to close.
fn within(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !["age_s", "silent_s", "hours_to_close"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), within(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(within).collect()),
        other => other.clone(),
    }
}

/// Invokes the status function with each recorded event (the market's path set to a market
/// of the store) and compares its status and JSON with the in-process router's answer to the
/// same path and query over the same store: equal but for the instant of the call. A pair that
/// straddles a tick or a second (a tick turns from pending to owed, `next_tick` moves on) is
/// asked again.
async fn status_function_answers_as_the_router(watch: &Watch, store: &AwsStore) {
    use polytape_collector::status::{self, Status};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(
        listener,
        status::router(Status::new(
            store.clone(),
            polytape_collector::Config::default(),
        )),
        std::future::pending(),
    ));
    let market = store.active_markets().await.unwrap().remove(0).condition_id;
    let mut codes = Vec::new();
    for name in STATUS_EVENTS {
        let mut e = event(&format!("functions/status/events/{name}"));
        if name == "http-get-market.json" {
            let path = format!("/api/markets/{market}");
            e["rawPath"] = json!(path);
            e["requestContext"]["http"]["path"] = json!(path);
        }
        let path = e["rawPath"].as_str().unwrap().to_string();
        let query = e["rawQueryString"].as_str().unwrap().to_string();
        let url = if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        };
        let mut last = String::new();
        let mut agreed = false;
        for _attempt in 0..3 {
            let lambda = watch.invoke("status", &e).await;
            let code = lambda["statusCode"].as_u64().unwrap();
            // JSON, but for `/`: the dashboard's HTML, compared as text.
            let as_value =
                |text: String| serde_json::from_str(&text).unwrap_or(Value::String(text));
            let body = as_value(lambda["body"].as_str().unwrap().to_string());
            if name == "http-get-root.json" {
                let html = body.as_str().unwrap_or_default();
                assert!(html.starts_with("<!doctype html>"), "the dashboard: {body}");
            }
            let local = reqwest::get(&url).await.unwrap();
            let local_code = u64::from(local.status().as_u16());
            let local_body = as_value(local.text().await.unwrap());
            if (code, without_instant(&body)) == (local_code, without_instant(&local_body)) {
                codes.push((name, code));
                agreed = true;
                break;
            }
            last = format!("{code} {body}\nvs the router: {local_code} {local_body}");
        }
        assert!(agreed, "{name}: the status function answered\n{last}");
    }
    let code = |n: &str| codes.iter().find(|(name, _)| *name == n).unwrap().1;
    assert_eq!(
        (
            code("http-get-market.json"),
            code("http-get-market-unknown.json"),
            code("http-get-markets-bad-tier.json"),
            code("http-get-events-stream.json"),
            code("http-get-table.json"),
        ),
        (200, 404, 400, 404, 200),
        "{codes:?}"
    );
}

/// The Parquet objects in moto's S3, downloaded under their keys, read by DuckDB with the
/// Glue-declared partition types: one T2 tick of `t2_markets` rows.
async fn duckdb_reads_what_moto_holds(store: &AwsStore, tick_ts: &Ts, t2_markets: usize) {
    let Ok(python) = std::env::var("POLYTAPE_PYTHON_PQ") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "POLYTAPE_PYTHON_PQ is not set"
        );
        eprintln!("SKIP: DuckDB read (POLYTAPE_PYTHON_PQ not set)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for key in store.list_objects("").await.unwrap() {
        let bytes = store.get_object(&key).await.unwrap().unwrap();
        let path = dir.path().join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let script = workspace_root().join("infra/checks/parquet_duckdb.py");
    let out = Command::new(python)
        .arg(script)
        .arg(dir.path())
        .args(["snapshots", "orderbooks"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every column, as DuckDB reads it, has the type the Glue table declares (the template test
    // holds the Glue tables equal to these column lists).
    for table in ["snapshots", "orderbooks"] {
        let declared = match table {
            "snapshots" => parquet::snapshot_columns(),
            _ => parquet::orderbook_columns(),
        };
        let read = v[table]["types"].as_object().unwrap();
        let partitions = parquet::partition_columns(table);
        assert_eq!(
            read.len(),
            declared.len() + partitions.len(),
            "{table}: {read:?}"
        );
        for c in declared.iter().chain(partitions) {
            assert_eq!(
                read[c.name],
                duckdb_type(c.athena_type),
                "{table}.{}",
                c.name
            );
        }
    }
    assert_eq!(v["snapshots"]["rows_per_tier"]["2"], t2_markets);
    assert_eq!(
        v["snapshots"]["dt"],
        json!([tick_ts.format("%Y-%m-%d").to_string()])
    );
}

/// DuckDB's name for an Athena (Glue) column type.
fn duckdb_type(athena: &str) -> String {
    match athena {
        "timestamp" => "TIMESTAMP WITH TIME ZONE".into(),
        "double" => "DOUBLE".into(),
        "int" => "INTEGER".into(),
        "bigint" => "BIGINT".into(),
        "smallint" => "SMALLINT".into(),
        "tinyint" => "TINYINT".into(),
        "string" => "VARCHAR".into(),
        "boolean" => "BOOLEAN".into(),
        t if t.starts_with("decimal(") => t.to_uppercase(),
        "array<struct<price:decimal(18,6),size:decimal(18,6)>>" => {
            "STRUCT(price DECIMAL(18,6), size DECIMAL(18,6))[]".into()
        }
        other => panic!("no DuckDB name for {other}"),
    }
}
