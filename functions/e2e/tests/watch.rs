//! Each Lambda binary (discovery, snapshot, maintenance, status) run the way Lambda runs it —
//! through `cargo lambda watch`, cargo-lambda's emulator of the Lambda runtime API — on recorded
//! EventBridge, SQS and HTTP API events, against moto (DynamoDB, S3, SQS) and the Polymarket
//! simulator over real sockets.
//!
//! Needs `POLYTAPE_MOTO_URL` (a running moto server) and `POLYTAPE_CARGO_LAMBDA` (the
//! cargo-lambda binary); infra/test.sh provides both. Without them the test prints a skip line,
//! unless `POLYTAPE_REQUIRE_TOOLS=1`, when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

use aws_config::{BehaviorVersion, Region, SdkConfig};
use polytape_core::schedule::due_in_minute;
use polytape_core::{TickId, Tier, Ts};
use polytape_store::aws::{provision, AwsNames, AwsStore};
use polytape_store::{keys, parquet, queue, LatestStore, MarketStore, ObjectStore};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        let child = Command::new(cargo_lambda)
            .args([
                "lambda",
                "watch",
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

    /// Invokes `function` with `payload` and returns what it returned; a function error panics
    /// unless `expect_error`.
    async fn invoke(&self, function: &str, payload: &Value) -> Value {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(900))
            .build()
            .unwrap();
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        // The emulator listens as soon as it starts; the first invoke compiles the function.
        for attempt in 0.. {
            match client.post(&url).json(payload).send().await {
                Ok(resp) => {
                    let error = resp.headers().get("x-amz-function-error").is_some();
                    let body: Value = resp.json().await.unwrap();
                    assert!(!error, "{function} failed: {body}");
                    return body;
                }
                Err(e) if e.is_connect() && attempt < 100 => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("invoking {function}: {e}"),
            }
        }
        unreachable!()
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
    let now = chrono::Utc::now();
    let mut sim_cfg = polytape_sim::SimConfig::new(11);
    sim_cfg.markets_per_tier = 5;
    sim_cfg.now = now;
    let sim = polytape_sim::start(sim_cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cfg = moto_config(&tools.moto).await;
    let names = provision::create_all(&cfg, &AwsNames::unique("fn"))
        .await
        .unwrap();
    let store = AwsStore::new(&cfg, names.clone());

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
            format!("POLYTAPE_LATEST_TABLE={}", names.latest_table),
            format!("POLYTAPE_OPS_TABLE={}", names.ops_table),
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

    // Discovery on its hourly event fills the markets table: the 25 tradeable markets.
    let report = watch
        .invoke(
            "discovery",
            &event("functions/discovery/events/eventbridge-schedule.json"),
        )
        .await;
    assert_eq!(report["kept"], 25, "{report}");
    let per_tier = store.count_by_tier().await.unwrap();
    assert_eq!(per_tier.values().sum::<u64>(), 25);
    assert!(
        Tier::ALL
            .iter()
            .all(|t| per_tier.get(&Some(*t)) == Some(&5)),
        "{per_tier:?}"
    );

    // Compile the snapshot binary first (an empty batch), so the timed steps below are not
    // slowed by the emulator's first-invoke build.
    let warm = watch.invoke("snapshot", &json!({"Records": []})).await;
    assert!(failures(&warm).is_empty());

    // The next minute's dispatch enqueues exactly its due ticks, each delayed to its second.
    let minute = TickId::floor(Tier::T2, chrono::Utc::now()).tick_ts + chrono::Duration::minutes(1);
    let mut schedule = event("functions/snapshot/events/eventbridge-schedule.json");
    schedule["time"] = json!(minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let dispatched = watch.invoke("snapshot", &schedule).await;
    let dispatched_by = chrono::Utc::now();
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
    if dispatched_by < minute - chrono::Duration::seconds(1) {
        assert_eq!(
            visible, 0,
            "dispatched ahead of the minute: every tick waits for its second"
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
    let latest = store.get_latest(Tier::T2).await.unwrap().unwrap();
    assert_eq!((latest.tick_ts, latest.markets.len()), (tick.tick_ts, 5));
    assert!(latest
        .markets
        .iter()
        .all(|m| m.snapshot_count == 1 && m.best_bid.is_some()));
    duckdb_reads_what_moto_holds(&store, &tick.tick_ts).await;

    // Maintenance on its 5-minute event re-tiers (nothing is due to move yet) and records its run.
    let m = watch
        .invoke(
            "maintenance",
            &event("functions/maintenance/events/eventbridge-schedule.json"),
        )
        .await;
    assert_eq!(
        (
            m["retier"]["active"].as_u64(),
            m["retier"]["moved"].as_u64()
        ),
        (Some(25), Some(0)),
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
    let mut stats_event = event("functions/status/events/http-get-health.json");
    stats_event["rawPath"] = json!("/api/stats");
    stats_event["routeKey"] = json!("GET /api/stats");
    stats_event["requestContext"]["http"]["path"] = json!("/api/stats");
    stats_event["requestContext"]["routeKey"] = json!("GET /api/stats");
    let stats = watch.invoke("status", &stats_event).await;
    let body: Value = serde_json::from_str(stats["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["markets_tracked"], 25, "{body}");
    assert_eq!(
        (
            body["tiers"]["T2"]["markets"].as_u64(),
            body["tiers"]["T2"]["latest_markets"].as_u64()
        ),
        (Some(5), Some(5)),
        "{body}"
    );

    // A DynamoDB failure after the Parquet is written (the Latest table is gone) fails the
    // tick: it is reported as a batch item failure for SQS to deliver again, not dropped.
    // (T1 and T0 ticks: minutes of slack, so they cannot turn stale while the test runs.)
    aws_sdk_dynamodb::Client::new(&cfg)
        .delete_table()
        .table_name(&names.latest_table)
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

/// The Parquet objects in moto's S3, downloaded under their keys, read by DuckDB with the
/// Glue-declared partition types.
async fn duckdb_reads_what_moto_holds(store: &AwsStore, tick_ts: &Ts) {
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
    assert_eq!(v["snapshots"]["rows_per_tier"]["2"], 5);
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
