//! No lost writes between writers: discovery and maintenance (re-tier) interleaved — one reads
//! the markets, the other runs to the end and closes a market, then the first writes what it
//! decided from its older read — and the market closed by one stays closed. On the local store
//! and on DynamoDB (moto), through the same handlers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

use aws_config::{BehaviorVersion, Region};
use polytape_collector::discover::discover;
use polytape_collector::{maintenance, Config, FixedClock};
use polytape_core::ops::{TaskRun, TaskState, TierTransition};
use polytape_core::{Market, Tier, Ts};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use polytape_sim::{SimConfig, SimHandle};
use polytape_store::aws::{provision, AwsNames, AwsStore};
use polytape_store::{
    LocalStore, MarketStore, ObjectDeleter, ObjectStore, TaskStore, TransitionStore,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that runs `hook` to the end right after its first `active_markets` read returns:
/// the reader then writes what it decided from a read that the hook's writer has made stale.
struct Interleaved<'a, S> {
    inner: &'a S,
    hook: Mutex<Option<Hook>>,
}

impl<'a, S> Interleaved<'a, S> {
    fn new(inner: &'a S, hook: impl Future<Output = ()> + Send + 'static) -> Self {
        Interleaved {
            inner,
            hook: Mutex::new(Some(Box::pin(hook))),
        }
    }
}

type R<T> = polytape_store::Result<T>;

impl<S: MarketStore> MarketStore for Interleaved<'_, S> {
    async fn write_markets(&self, m: &[Market]) -> R<Vec<String>> {
        self.inner.write_markets(m).await
    }
    async fn markets_ending(&self, after: Ts, up_to: Option<Ts>) -> R<Vec<Market>> {
        self.inner.markets_ending(after, up_to).await
    }
    async fn markets_due(&self, tier: Tier, at: Ts) -> R<Vec<Market>> {
        self.inner.markets_due(tier, at).await
    }
    async fn active_markets(&self) -> R<Vec<Market>> {
        let read = self.inner.active_markets().await;
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        read
    }
    async fn all_markets(&self) -> R<Vec<Market>> {
        self.inner.all_markets().await
    }
    async fn markets_awaiting_result(&self) -> R<Vec<Market>> {
        self.inner.markets_awaiting_result().await
    }
    async fn get_market(&self, id: &str) -> R<Option<Market>> {
        self.inner.get_market(id).await
    }
    async fn count_due(&self, at: Ts) -> R<BTreeMap<Option<Tier>, u64>> {
        self.inner.count_due(at).await
    }
}

impl<S: TransitionStore> TransitionStore for Interleaved<'_, S> {
    async fn put_transitions(&self, t: &[TierTransition]) -> R<()> {
        self.inner.put_transitions(t).await
    }
    async fn recent_transitions(&self, limit: usize) -> R<Vec<TierTransition>> {
        self.inner.recent_transitions(limit).await
    }
}

impl<S: TaskStore> TaskStore for Interleaved<'_, S> {
    async fn put_task_run(&self, run: &TaskRun) -> R<()> {
        self.inner.put_task_run(run).await
    }
    async fn task_runs_since(&self, since: Ts) -> R<Vec<TaskRun>> {
        self.inner.task_runs_since(since).await
    }
    async fn task_state(&self, task: &str) -> R<Option<TaskState>> {
        self.inner.task_state(task).await
    }
    async fn task_states(&self) -> R<Vec<TaskState>> {
        self.inner.task_states().await
    }
    async fn claim_task(&self, task: &str, now: Ts, until: Ts) -> R<bool> {
        self.inner.claim_task(task, now, until).await
    }
}

impl<S: ObjectStore> ObjectStore for Interleaved<'_, S> {
    async fn put_object(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> R<()> {
        self.inner.put_object(key, bytes, content_type).await
    }
    async fn get_object(&self, key: &str) -> R<Option<Vec<u8>>> {
        self.inner.get_object(key).await
    }
    async fn list_objects(&self, prefix: &str) -> R<Vec<String>> {
        self.inner.list_objects(prefix).await
    }
}

impl<S: ObjectDeleter> ObjectDeleter for Interleaved<'_, S> {
    async fn delete_objects(&self, keys: &[String]) -> R<()> {
        self.inner.delete_objects(keys).await
    }
}

fn client_for(sim: &SimHandle) -> PolymarketClient {
    PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: sim.gamma_url(),
            clob: sim.clob_url(),
            data: sim.data_url(),
            ws: sim.ws_url(),
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

fn anchor() -> Ts {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

/// Two T3 markets (1-4 h from their end at the anchor), by end date.
async fn two_t3_markets<S: MarketStore>(store: &S) -> (Market, Market) {
    let mut t3 = store.markets_due(Tier::T3, anchor()).await.unwrap();
    t3.sort_by_key(|m| m.end_date);
    (t3[0].clone(), t3[1].clone())
}

/// The scenario, on any store.
async fn writers_never_undo_each_other<S>(store: S)
where
    S: MarketStore + TransitionStore + TaskStore + ObjectDeleter + Clone + Send + Sync + 'static,
{
    let mut cfg = SimConfig::new(11);
    cfg.markets_per_tier = 4;
    cfg.now = anchor();
    let sim = polytape_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = client_for(&sim);
    let config = Config::default();
    discover(&client, &store, &config, &FixedClock::new(anchor()))
        .await
        .unwrap();
    let (a, b) = two_t3_markets(&store).await;

    // 1. Re-tier reads `a` active (10 min before its end: it moves T3 → T4). Meanwhile Gamma
    //    closes it and discovery runs: `a` is no longer listed, so discovery closes it. Then
    //    re-tier writes its tier change from its older read.
    let at = a.end_date - chrono::Duration::minutes(10);
    let hook = {
        let (sim, client, store, config, id) = (
            sim.clone(),
            client.clone(),
            store.clone(),
            config.clone(),
            a.condition_id.clone(),
        );
        async move {
            sim.close_market(&id);
            let r = discover(&client, &store, &config, &FixedClock::new(at))
                .await
                .unwrap();
            assert!(r.retired_markets >= 1, "discovery closed it: {r:?}");
        }
    };
    let retier_store = Interleaved::new(&store, hook);
    let r = maintenance::run(
        &client,
        &retier_store,
        &Config::default(),
        &FixedClock::new(at),
        None,
    )
    .await
    .unwrap();
    let a_now = store.get_market(&a.condition_id).await.unwrap().unwrap();
    assert!(
        !a_now.active,
        "closed by discovery, it stays closed: {a_now:?} ({r:?})"
    );

    // 2. Discovery reads `b` active, 10 min before its end (it would write T3 → T4). Meanwhile
    //    Gamma closes it and maintenance, 10 min after its end, asks Gamma and closes it. Then
    //    discovery writes what it decided from its older listing and read.
    let d_at = b.end_date - chrono::Duration::minutes(10);
    let m_at = b.end_date + chrono::Duration::minutes(10);
    let hook = {
        let (sim, client, store, id) = (
            sim.clone(),
            client.clone(),
            store.clone(),
            b.condition_id.clone(),
        );
        async move {
            sim.close_market(&id);
            let r = maintenance::run(
                &client,
                &store,
                &Config::default(),
                &FixedClock::new(m_at),
                None,
            )
            .await
            .unwrap();
            assert!(r.retier.closed >= 1, "maintenance closed it: {r:?}");
        }
    };
    let discovery_store = Interleaved::new(&store, hook);
    let r = discover(&client, &discovery_store, &config, &FixedClock::new(d_at))
        .await
        .unwrap();
    let b_now = store.get_market(&b.condition_id).await.unwrap().unwrap();
    assert!(
        !b_now.active,
        "closed by maintenance, it stays closed: {b_now:?} ({r:?})"
    );
    let transitions = store.recent_transitions(1000).await.unwrap();
    assert!(
        transitions
            .iter()
            .any(|t| t.condition_id == b.condition_id && t.reason == "closed"),
        "its closing is recorded"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_maintenance_interleaved_on_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    writers_never_undo_each_other(LocalStore::open(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_maintenance_interleaved_on_dynamodb() {
    let Ok(url) = std::env::var("POLYTAPE_MOTO_URL") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "POLYTAPE_MOTO_URL is not set and POLYTAPE_REQUIRE_TOOLS=1: run infra/test.sh"
        );
        eprintln!("SKIP: POLYTAPE_MOTO_URL is not set (infra/test.sh starts moto)");
        return;
    };
    let creds =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(url)
        .load()
        .await;
    let names = provision::create_all(&sdk, &AwsNames::unique("writers"))
        .await
        .unwrap();
    let store = AwsStore::new(&sdk, names).with_clock(|| anchor() + chrono::Duration::hours(6));
    writers_never_undo_each_other(store).await;
}
