//! The `ws-fargate` binary: polytape's live feed task. Reads its settings and the AWS resource
//! names from the environment (the task definition in template.yaml sets them), runs the feed
//! until SIGTERM (or Ctrl-C), prints EMF totals every minute, and exits within its stop grace.
//! The work is in the library (`ws_fargate::run`) and `polytape_collector::live::run_feed`.

use anyhow::Context;
use polytape_polymarket::PolymarketClient;
use polytape_store::aws::{AwsStore, Resource};
use tokio::signal::unix::{signal, SignalKind};
use ws_fargate::{install_crypto_provider, run, Settings, SqsSink};

/// The resources the task uses: the markets to hear, the heartbeats, the flow object and the
/// live queue. Not the ticks queue.
const RESOURCES: [Resource; 4] = [
    Resource::MarketsTable,
    Resource::OpsTable,
    Resource::Bucket,
    Resource::LiveQueue,
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    init_logs();
    let settings = Settings::from_lookup(|k| std::env::var(k).ok())?;
    let store = AwsStore::from_env_for(&RESOURCES).await?;
    let client = PolymarketClient::new(settings.client.clone())?;
    let sink = SqsSink::new(store.clone());
    // Registered before anything runs, so a SIGTERM that comes early is not missed.
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C"),
        }
    };
    tracing::info!(
        ws = %settings.supervisor.shard.url,
        shard_assets = settings.supervisor.shard_assets,
        queue = %store.names().live_queue_url,
        "live feed starting"
    );
    let summary = run(store, &sink, client, &settings, stop, |doc| {
        println!("{doc}");
    })
    .await;
    let (sent, billed, failed) = sink.sends();
    tracing::info!(
        trades = summary.counts.feed.trades_ws + summary.counts.feed.trades_backfill,
        reconnects = summary.counts.reconnects,
        messages_sent = sent,
        sqs_requests_billed = billed,
        failed_sends = failed,
        stop_ms = summary.stop_took.as_millis() as u64,
        "live feed stopped"
    );
    anyhow::ensure!(
        summary.stopped_in_time,
        "the feed did not stop within {} s",
        settings.stop_grace.as_secs()
    );
    Ok(())
}

/// Logs on stderr (stdout carries only the EMF lines), JSON when `POLYTAPE_LOG_JSON=1` (the
/// task definition sets it, for CloudWatch Logs Insights), at `RUST_LOG` (default info).
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("POLYTAPE_LOG_JSON").as_deref() == Ok("1") {
        builder.json().init();
    } else {
        builder.init();
    }
}
