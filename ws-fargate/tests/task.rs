//! The `ws-fargate` binary as ECS runs it, against moto (DynamoDB, S3, SQS) and the simulator:
//! started with only the environment the task definition gives it, it hears the markets
//! discovered into DynamoDB, sends its messages to the live queue, writes `live/flow.json` and
//! the shards' heartbeats; on SIGTERM it flushes and exits 0 well within ECS's 30 s stop
//! timeout. The messages it sent, handed to the trades function's handler as SQS would, are
//! stored as Parquet: as many trades as its EMF lines counted.
//!
//! Needs `POLYTAPE_MOTO_URL` (infra/test.sh starts moto); without it the test prints a skip
//! line, unless `POLYTAPE_REQUIRE_TOOLS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use polytape_collector::discover::discover;
use polytape_collector::{Config, FixedClock};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_store::aws::{provision, AwsNames, AwsStore};
use polytape_store::{keys, parquet, HeartbeatStore, ObjectStore};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn moto() -> Option<(String, aws_config::SdkConfig)> {
    let Ok(url) = std::env::var("POLYTAPE_MOTO_URL") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "POLYTAPE_MOTO_URL is not set: run infra/test.sh, which starts moto"
        );
        eprintln!("SKIP: POLYTAPE_MOTO_URL is not set (infra/test.sh starts moto)");
        return None;
    };
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .endpoint_url(&url)
        .load()
        .await;
    Some((url, cfg))
}

/// Every message waiting on `queue`, as an SQS event of the live queue.
async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return event;
        }
        for m in messages {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id;
            record.body = m.body;
            record.event_source = Some("aws:sqs".into());
            event.records.push(record);
        }
    }
}

/// How many messages are visible on `queue` (moto counts them exactly).
async fn queued(sqs: &aws_sdk_sqs::Client, queue: &str) -> usize {
    let attribute = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(attribute.clone())
        .send()
        .await
        .unwrap();
    out.attributes()
        .and_then(|a| a.get(&attribute))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_sends_its_messages_to_sqs_and_exits_cleanly_on_sigterm() {
    let Some((moto_url, cfg)) = moto().await else {
        return;
    };
    let names = provision::create_all(&cfg, &AwsNames::unique("wsfargate"))
        .await
        .unwrap();
    let store = AwsStore::new(&cfg, names.clone());
    let mut sim_cfg = polytape_sim::SimConfig::new(5);
    sim_cfg.markets_per_tier = 3;
    sim_cfg.now = chrono::Utc::now();
    let sim = polytape_sim::start(sim_cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let endpoints = Endpoints {
        gamma: sim.gamma_url(),
        clob: sim.clob_url(),
        data: sim.data_url(),
        ws: sim.ws_url(),
    };
    let client = PolymarketClient::new(ClientConfig {
        endpoints: endpoints.clone(),
        ..ClientConfig::default()
    })
    .unwrap();
    discover(
        &client,
        &store,
        &Config::default(),
        &FixedClock::new(sim.now()),
    )
    .await
    .unwrap();

    // The task definition's environment (template.yaml), pointed at moto and the simulator: no
    // ticks queue.
    // Its output to files: a pipe nobody reads while it runs could fill and block it.
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-fargate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("AWS_ENDPOINT_URL", moto_url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("POLYTAPE_MARKETS_TABLE", &names.markets_table),
            ("POLYTAPE_OPS_TABLE", &names.ops_table),
            ("POLYTAPE_BUCKET", &names.bucket),
            ("POLYTAPE_LIVE_QUEUE_URL", &names.live_queue_url),
            ("POLYTAPE_GAMMA_URL", &endpoints.gamma),
            ("POLYTAPE_CLOB_URL", &endpoints.clob),
            ("POLYTAPE_DATA_URL", &endpoints.data),
            ("POLYTAPE_WS_URL", &endpoints.ws),
            ("POLYTAPE_WS_BACKFILL_DELAY_S", "0"),
            ("POLYTAPE_LOG_JSON", "1"),
            ("RUST_LOG", "info"),
        ])
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    // Until the shards have connected and beaten (every 15 s, the first 15 s in), a flow is
    // published (every 15 s, the first 15 s in) and a message of trades is on the queue (4 s
    // after its first trade; the simulated markets trade a few times a minute): waited for,
    // not slept for, as a loaded machine takes longer. At most 60 s.
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let started = Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the task is still running: {}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        let beaten = !store.heartbeats().await.unwrap().is_empty();
        let flowed = store.get_object(keys::LIVE_FLOW).await.unwrap().is_some();
        let sent = queued(&sqs, &names.live_queue_url).await > 0;
        if beaten && flowed && sent {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "after 60 s: heartbeats {beaten}, flow {flowed}, a message {sent}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            sent_at.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM: ECS would SIGKILL it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = sent_at.elapsed();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(exit.success(), "{exit}\n{stderr}");
    eprintln!("exited {took:?} after SIGTERM");
    // Its flush (the last message, the tape's open window) under ECS's 30 s, with room for a
    // loaded machine: a stop that waited out its 25 s grace would not pass.
    assert!(took < Duration::from_secs(25), "{took:?}");

    // stdout holds only EMF lines; their Trades add up to what the task counted.
    let documents: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is one EMF document"))
        .collect();
    assert!(!documents.is_empty());
    assert!(documents
        .iter()
        .all(|d| d["_aws"]["CloudWatchMetrics"].is_array()));
    let counted: u64 = documents
        .iter()
        .map(|d| d["Trades"].as_u64().unwrap())
        .sum();
    assert!(counted > 0, "{stdout}\n{stderr}");
    let last = stderr
        .lines()
        .find(|l| l.contains("\"live feed stopped\""))
        .unwrap_or_else(|| panic!("JSON logs on stderr, the last with the totals: {stderr}"));
    eprintln!("{last}");

    // The flow object and the heartbeats it wrote.
    let flow = store.get_object(keys::LIVE_FLOW).await.unwrap();
    assert!(flow.is_some(), "live/flow.json written");
    assert!(!store.heartbeats().await.unwrap().is_empty());

    // Its messages, as the trades function receives them: every one stored, and the trades in
    // them are the trades it counted.
    let event = drain(&sqs, &names.live_queue_url).await;
    assert!(!event.records.is_empty());
    let report = trades::handle_batch(&store, &event).await;
    assert!(
        report.poison.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    let stored: usize = report.stored.iter().map(|r| r.trades).sum();
    assert_eq!(stored as u64, counted);
    let mut in_parquet = 0;
    for key in store.list_objects("trades/").await.unwrap() {
        let bytes = store.get_object(&key).await.unwrap().unwrap();
        in_parquet += parquet::decode_trades(&bytes).unwrap().len();
    }
    assert_eq!(in_parquet, stored);

    // The raw tape: written to S3 by the task itself, not carried by any message, its open
    // window flushed on SIGTERM (the run is shorter than a window: one object, or two across
    // a window's end); replayed alone, it rebuilds exactly the trades the messages carried.
    let tape_keys = store.list_objects("raw_ws/").await.unwrap();
    assert!((1..=2).contains(&tape_keys.len()), "{tape_keys:?}");
    assert_eq!(report.stored.iter().map(|r| r.tape).sum::<usize>(), 0);
    let replayed = polytape_collector::replay::replay(&store).await.unwrap();
    assert!(replayed.identical(), "{replayed:?}");
    assert_eq!(replayed.rebuilt, stored);
    sim.shutdown().await;
}
