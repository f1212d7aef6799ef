//! The shard supervisor: follows the markets to hear, spreads their tokens over shards, and is
//! the one owner of the [`Feed`] — every frame, backfill and state change becomes a tape record
//! applied to it in one order, so the tape replays to the same trades.
//!
//! * **Following.** Every [`SupervisorConfig::follow_every`] the supervisor asks its
//!   [`MarketSource`] for the markets to hear (T2–T4) and changes the open sockets with
//!   subscribe/unsubscribe; a market's two tokens always share a shard, and a shard holds at
//!   most [`SupervisorConfig::shard_assets`] tokens. New shards start
//!   [`SupervisorConfig::stagger`] apart.
//! * **Coverage and backfill.** A market is covered from its shard's connection on; a
//!   [`SupervisorConfig::warmup`] backfill reaches back an hour. A shard that drops or stalls
//!   opens a gap for its markets from its last frame; once it is back, the gap's trades come
//!   from the Data API and the gap closes — backfilled, or (if the Data API failed) with
//!   coverage restarting at the reconnect. Gaps may overlap (a shard that drops again before
//!   the last gap's backfill came back): each is closed by its own backfill, and the market is
//!   not covered while any is open.
//! * **Backfill windows.** The Data API dates a trade by its block, whole seconds, mined after
//!   the match the WebSocket reports: a trade matched in a gap's last seconds may carry a time
//!   after the reconnect. So a gap's window (and the warm-up's) runs from its start to the
//!   reconnect + [`SupervisorConfig::settle`], and is asked once that end has passed, plus
//!   [`SupervisorConfig::backfill_delay`] for the Data API's own lag. Trades of that margin also
//!   heard live are the same keys (see [`crate::key`]).
//! * **Watchdog.** A token not heard for [`SupervisorConfig::asset_silence`] is re-subscribed
//!   on its open socket (a fresh `book` follows) and counted. Whatever it traded while unheard
//!   (Polymarket silently serves nothing past ~500 assets a connection) is backfilled from when
//!   its tokens were last heard to the re-subscribe, like a reconnect's gap but without closing
//!   coverage: a quiet token (the usual case) lost nothing, and its flow stays published.
//! * **Output.** Tape records, trades and whale events, the flow of every covered market every
//!   [`SupervisorConfig::publish_every`], and a round of heartbeats (one per open shard) every
//!   [`SupervisorConfig::heartbeat_every`] go out as [`Emit`]s; on shutdown the shards close
//!   (with no heartbeat round for them), waiting whale events are flushed and the emitter is
//!   dropped last.
//! * **Backpressure.** Every channel a frame travels is bounded: shards → supervisor
//!   ([`crate::shard::SHARD_EVENTS_CAPACITY`]) and supervisor → consumer (the caller's
//!   channel, [`EMIT_CAPACITY`] advised). When the consumer's channel is full, what the
//!   supervisor has to hand out waits in a queue of its own and it reads no shard event and no
//!   backfill answer until that queue is empty, so the shards' channel fills and the shards
//!   stop reading their sockets (TCP backpressure). Both waits are counted
//!   ([`SupervisorCounts::consumer_waits`], [`SupervisorCounts::shard_waits`]); nothing is
//!   dropped while the consumer is there.

use crate::backfill::{backfill, Backfilled};
use crate::feed::{Control, Feed, FeedConfig, FeedCounts, Output};
use crate::shard::{
    now_ms, run_shard, Backpressure, ShardCommand, ShardConfig, ShardEvent, SHARD_EVENTS_CAPACITY,
};
use polytape_core::live::{TapeKind, TapeRecord};
use polytape_core::ops::ShardHeartbeat;
use polytape_core::TradeFlow;
use polytape_polymarket::PolymarketClient;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A market to hear: its condition id and its two tokens (first outcome first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMarket {
    pub condition_id: String,
    pub tokens: [String; 2],
}

/// Where the supervisor learns which markets to hear (the markets state, T2–T4).
pub trait MarketSource: Send + Sync + 'static {
    fn live_markets(&self) -> impl Future<Output = Result<Vec<LiveMarket>, String>> + Send;
}

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub shard: ShardConfig,
    /// Most tokens on one connection (Polymarket silently serves nothing past ~500).
    pub shard_assets: usize,
    pub follow_every: Duration,
    pub stagger: Duration,
    pub publish_every: Duration,
    pub heartbeat_every: Duration,
    pub warmup: Duration,
    /// How long after a backfill window's end before it is asked (the Data API's lag).
    pub backfill_delay: Duration,
    /// How far past a reconnect (or the connection, for the warm-up) a gap's window reaches on
    /// the Data API's block clock: a trade matched just before is mined and dated later
    /// (trades.md: within 120 s of its match).
    pub settle: Duration,
    /// Rows per Data API page.
    pub backfill_limit: u32,
    pub asset_silence: Duration,
    /// How often trades without a size (G3) are looked up on the Data API.
    pub size_lookup_every: Duration,
    /// Room for this many events between the shards and the supervisor
    /// ([`SHARD_EVENTS_CAPACITY`]); when it is full the shards stop reading their sockets.
    pub shard_events_capacity: usize,
    pub feed: FeedConfig,
}

impl SupervisorConfig {
    pub fn new(ws_url: impl Into<String>) -> SupervisorConfig {
        SupervisorConfig {
            shard: ShardConfig::new(ws_url),
            shard_assets: 200,
            follow_every: Duration::from_secs(60),
            stagger: Duration::from_millis(500),
            publish_every: Duration::from_secs(15),
            heartbeat_every: Duration::from_secs(15),
            warmup: Duration::from_secs(3600),
            backfill_delay: Duration::from_secs(30),
            settle: Duration::from_secs(120),
            backfill_limit: 1000,
            asset_silence: Duration::from_secs(900),
            size_lookup_every: Duration::from_secs(30),
            shard_events_capacity: SHARD_EVENTS_CAPACITY,
            feed: FeedConfig::default(),
        }
    }
}

impl SupervisorConfig {
    /// [`SupervisorConfig::new`] with what the environment sets: POLYTAPE_WS_SHARD_ASSETS
    /// (200), POLYTAPE_WS_STALL_S (60), POLYTAPE_WS_BACKFILL_DELAY_S (30),
    /// POLYTAPE_WS_SETTLE_S (120), POLYTAPE_WS_ASSET_SILENCE_S (900). A value that does not
    /// parse is an error naming it.
    pub fn from_lookup(
        ws_url: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<SupervisorConfig, String> {
        let mut c = SupervisorConfig::new(ws_url);
        let num = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{name}={v:?} is not a whole number"))
                })
                .transpose()
        };
        if let Some(n) = num("POLYTAPE_WS_SHARD_ASSETS")? {
            if !(2..=500).contains(&n) {
                return Err(format!("POLYTAPE_WS_SHARD_ASSETS={n}: 2 to 500"));
            }
            c.shard_assets = n as usize;
        }
        if let Some(n) = num("POLYTAPE_WS_STALL_S")? {
            c.shard.stall_after = Duration::from_secs(n.max(1));
        }
        if let Some(n) = num("POLYTAPE_WS_BACKFILL_DELAY_S")? {
            c.backfill_delay = Duration::from_secs(n);
        }
        if let Some(n) = num("POLYTAPE_WS_SETTLE_S")? {
            c.settle = Duration::from_secs(n);
        }
        if let Some(n) = num("POLYTAPE_WS_ASSET_SILENCE_S")? {
            c.asset_silence = Duration::from_secs(n.max(1));
        }
        Ok(c)
    }

    /// How far back (ms) the trades of a backfill's answer may reach when it comes in: the
    /// warm-up's hour (or the asset silence, for a watchdog repair, if longer), the settle
    /// margin past it and the Data API's lag before it is asked, and [`BACKFILL_RUN_MS`] for
    /// its paging and retries. The feed remembers keys at least this long
    /// ([`FeedConfig::key_retention_ms`] is raised to it).
    pub fn backfill_reach(&self) -> i64 {
        let back = self.warmup.max(self.asset_silence) + self.settle + self.backfill_delay;
        back.as_millis() as i64 + BACKFILL_RUN_MS
    }
}

/// What a backfill's own run (paging, retries) may add to its reach: 17.5 min.
pub const BACKFILL_RUN_MS: i64 = 17 * 60_000 + 30_000;

/// The advised capacity of the channel to [`supervise`]'s consumer, in [`Emit`]s.
pub const EMIT_CAPACITY: usize = 1024;

/// The last-hour flow of every covered market at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSnapshot {
    pub at_ms: i64,
    pub markets: BTreeMap<String, TradeFlow>,
}

/// What the supervisor hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    Tape(TapeRecord),
    Output(Output),
    Flow(FlowSnapshot),
    /// One heartbeat round: every open shard's heartbeat, in the order the shards opened;
    /// empty when none is open. The stop sends none: its shards are closed by the stop, not
    /// by the feed.
    Heartbeats(Vec<ShardHeartbeat>),
    /// The feed's and the supervisor's counters, with each heartbeat round and at the stop.
    Counts(SupervisorCounts),
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SupervisorCounts {
    pub feed: FeedCounts,
    pub shards: u32,
    pub connected_shards: u32,
    pub subscribed_assets: u32,
    pub wanted_assets: u32,
    pub reconnects: u64,
    pub silent_assets: u32,
    pub resubscribed_assets: u64,
    pub backfills: u64,
    /// Backfills asked and not answered yet (waiting for their window to settle, or running).
    pub pending_backfills: u32,
    pub backfill_failures: u64,
    pub backfill_requests: u64,
    pub follow_failures: u64,
    /// Messages given up at shutdown because they could not be delivered (see the feed runner).
    pub lost_messages: u64,
    /// Raw tape objects written by the feed runner (set when it stops).
    pub tape_objects: u64,
    /// Raw tape objects given up at shutdown because they could not be written.
    pub lost_tape_objects: u64,
    /// Times the consumer's channel was full, so the supervisor stopped reading the shards
    /// until it had room (backpressure; nothing dropped).
    pub consumer_waits: u64,
    /// Frames a shard had to wait to hand on (its socket not read meanwhile), and how long in
    /// all (ms).
    pub shard_waits: u64,
    pub shard_wait_ms: u64,
    /// The bytes the feed holds to know trades again ([`crate::Feed::remembered`]).
    pub remembered_bytes: u64,
}

struct Shard {
    id: u32,
    commands: mpsc::UnboundedSender<ShardCommand>,
    markets: BTreeSet<String>,
    connected: bool,
    /// Since when the shard's markets went unheard (set on a disconnect).
    down_since: Option<i64>,
    ever_connected: bool,
    reconnects: u64,
    last_frame_ms: Option<i64>,
}

impl Shard {
    fn assets(&self, markets: &BTreeMap<String, LiveMarket>) -> usize {
        self.markets
            .iter()
            .filter(|m| markets.contains_key(*m))
            .count()
            * 2
    }
}

enum Backfill {
    Warmup,
    Gap,
    /// A silent token's time unheard, re-subscribed by the watchdog: its trades, if any were
    /// lost, come back through the same de-duplication; coverage is left as it was.
    Repair,
    /// Trades without a size (G3): their market's rows since the earliest of them.
    Size,
}

struct BackfillDone {
    kind: Backfill,
    condition_id: String,
    /// The start of the stretch backfilled (a gap's: the `from_ms` it was opened with).
    from_ms: i64,
    /// Its end: the time the market was heard again (the connection, reconnect or
    /// re-subscribe); the window asked reaches [`SupervisorConfig::settle`] further.
    to_ms: i64,
    result: Result<Backfilled, String>,
}

/// Runs the feed until `shutdown` turns true. Returns the final counters.
pub async fn supervise<S: MarketSource>(
    config: SupervisorConfig,
    source: S,
    client: PolymarketClient,
    emit: mpsc::Sender<Emit>,
    mut shutdown: watch::Receiver<bool>,
) -> SupervisorCounts {
    let run = now_ms();
    let mut config = config;
    // Keys are kept as long as a backfill's answer may reach back.
    config.feed.key_retention_ms = config.feed.key_retention_ms.max(config.backfill_reach());
    let backpressure = Arc::new(Backpressure::default());
    let mut sv = Supervisor {
        run,
        seq: 0,
        feed: Feed::new(config.feed.clone()),
        markets: BTreeMap::new(),
        shards: Vec::new(),
        shard_of: BTreeMap::new(),
        counts: SupervisorCounts::default(),
        outbox: VecDeque::new(),
        consumer_gone: false,
        backpressure: backpressure.clone(),
        last_record_ms: run,
        size_lookups: BTreeSet::new(),
        next_shard: 0,
    };
    let (shard_tx, mut shard_rx) = mpsc::channel::<ShardEvent>(config.shard_events_capacity.max(1));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<BackfillDone>();
    let mut follow = tokio::time::interval(config.follow_every);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut publish = tokio::time::interval(config.publish_every);
    let mut heartbeat = tokio::time::interval(config.heartbeat_every);
    let mut sizes = tokio::time::interval(config.size_lookup_every);
    for t in [
        &mut follow,
        &mut second,
        &mut publish,
        &mut heartbeat,
        &mut sizes,
    ] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    publish.tick().await;
    heartbeat.tick().await;
    loop {
        sv.hand_out(&emit);
        // Shard events and backfill answers are read only once everything before them is with
        // the consumer (see the module docs: backpressure).
        let ready = sv.outbox.is_empty();
        tokio::select! {
            permit = emit.reserve(), if !ready => match permit {
                Ok(permit) => {
                    if let Some(e) = sv.outbox.pop_front() {
                        permit.send(e);
                    }
                }
                Err(_) => sv.consumer_left(),
            },
            _ = follow.tick() => {
                match source.live_markets().await {
                    Ok(markets) => {
                        // Markets that joined a connected shard: warmed up like the others.
                        for (cid, at_ms) in sv.follow(&config, markets, &shard_tx) {
                            let from = at_ms - config.warmup.as_millis() as i64;
                            sv.spawn_backfill(&config, &client, &done_tx, Backfill::Warmup, cid, from, at_ms);
                        }
                    }
                    Err(e) => {
                        sv.counts.follow_failures += 1;
                        tracing::warn!(error = %e, "feed: cannot read the markets to follow");
                    }
                }
            }
            Some(ev) = shard_rx.recv(), if ready => sv.on_shard(&config, ev, &client, &done_tx),
            Some(done) = done_rx.recv(), if ready => sv.on_backfill(done),
            _ = second.tick() => {
                let now = now_ms();
                if now - sv.last_record_ms >= 1000 {
                    sv.control(Control::Advance { now_ms: now });
                }
                sv.watchdog(&config, &client, &done_tx, now);
            }
            _ = publish.tick() => {
                let at_ms = now_ms();
                let markets = sv.feed.flow(at_ms);
                sv.push(Emit::Flow(FlowSnapshot { at_ms, markets }));
            }
            _ = heartbeat.tick() => sv.heartbeats(),
            _ = sizes.tick() => {
                let now = now_ms();
                for (cid, from_ms) in sv.feed.sizeless_markets() {
                    if sv.size_lookups.insert(cid.clone()) {
                        sv.spawn_backfill(&config, &client, &done_tx, Backfill::Size, cid, from_ms, now);
                    }
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    // Shards close when their command channel does.
    sv.shards.clear();
    sv.control(Control::Flush);
    let at_ms = now_ms();
    let markets = sv.feed.flow(at_ms);
    sv.push(Emit::Flow(FlowSnapshot { at_ms, markets }));
    sv.push_counts();
    // The rest, as the consumer takes it (it reads until the channel closes).
    while let Some(e) = sv.outbox.pop_front() {
        if sv.consumer_gone || emit.send(e).await.is_err() {
            break;
        }
    }
    sv.counts.clone()
}

struct Supervisor {
    run: i64,
    seq: u64,
    feed: Feed,
    markets: BTreeMap<String, LiveMarket>,
    shards: Vec<Shard>,
    shard_of: BTreeMap<String, u32>,
    counts: SupervisorCounts,
    /// What waits for room in the consumer's channel, in order.
    outbox: VecDeque<Emit>,
    /// The consumer dropped its end: what is handed out goes nowhere.
    consumer_gone: bool,
    backpressure: Arc<Backpressure>,
    last_record_ms: i64,
    /// Markets with a size lookup in flight.
    size_lookups: BTreeSet<String>,
    /// The last shard id given.
    next_shard: u32,
}

impl Supervisor {
    /// Queues one thing to hand out (see [`Supervisor::hand_out`]).
    fn push(&mut self, e: Emit) {
        if !self.consumer_gone {
            self.outbox.push_back(e);
        }
    }

    /// Hands out what waits, as far as the consumer's channel has room; a full channel is
    /// counted once per wait.
    fn hand_out(&mut self, emit: &mpsc::Sender<Emit>) {
        while let Some(e) = self.outbox.pop_front() {
            match emit.try_send(e) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => {
                    self.outbox.push_front(e);
                    self.counts.consumer_waits += 1;
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.consumer_left();
                    return;
                }
            }
        }
    }

    fn consumer_left(&mut self) {
        if !self.consumer_gone {
            tracing::warn!("feed: the consumer is gone; nothing more is handed out");
        }
        self.consumer_gone = true;
        self.outbox.clear();
    }

    /// Applies one record to the feed, then hands out the record and what it produced.
    fn record(&mut self, shard: u32, kind: TapeKind, recv_ms: i64, text: String) {
        self.seq += 1;
        let rec = TapeRecord {
            run: self.run,
            shard,
            seq: self.seq,
            received_at: crate::feed::ts_of(recv_ms),
            kind,
            part: 0,
            parts: 1,
            text,
        };
        self.feed.apply(&rec);
        self.last_record_ms = recv_ms;
        self.push(Emit::Tape(rec));
        for out in self.feed.drain() {
            self.push(Emit::Output(out));
        }
    }

    fn control(&mut self, c: Control) {
        let text = serde_json::to_string(&c).unwrap_or_default();
        self.record(0, TapeKind::Control, now_ms(), text);
    }

    /// Changes the shards to hear `wanted`; returns the markets that joined an already
    /// connected shard, with the time they did.
    fn follow(
        &mut self,
        config: &SupervisorConfig,
        wanted: Vec<LiveMarket>,
        shard_tx: &mpsc::Sender<ShardEvent>,
    ) -> Vec<(String, i64)> {
        let mut joined = Vec::new();
        let wanted: BTreeMap<String, LiveMarket> = wanted
            .into_iter()
            .filter(|m| m.tokens.iter().all(|t| !t.is_empty()) && m.tokens[0] != m.tokens[1])
            .map(|m| (m.condition_id.clone(), m))
            .collect();
        self.counts.wanted_assets = (wanted.len() * 2) as u32;
        // Gone: unsubscribe on their shard.
        let gone: Vec<String> = self
            .markets
            .keys()
            .filter(|c| !wanted.contains_key(*c))
            .cloned()
            .collect();
        for cid in &gone {
            if let (Some(m), Some(id)) = (self.markets.get(cid), self.shard_of.remove(cid)) {
                if let Some(s) = self.shards.iter_mut().find(|s| s.id == id) {
                    s.markets.remove(cid);
                    let _ = s
                        .commands
                        .send(ShardCommand::Unsubscribe(m.tokens.to_vec()));
                }
            }
        }
        let new: Vec<LiveMarket> = wanted
            .values()
            .filter(|m| !self.markets.contains_key(&m.condition_id))
            .cloned()
            .collect();
        let changed = !gone.is_empty() || !new.is_empty();
        self.markets = wanted;
        if changed {
            let assets = self
                .markets
                .values()
                .flat_map(|m| {
                    m.tokens
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (t.clone(), m.condition_id.clone(), i as u8))
                })
                .collect();
            self.control(Control::Assets { assets });
        }
        // New: fill shards with room, then open new ones.
        let per_shard = (config.shard_assets / 2).max(1);
        let mut fresh: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut starting = Vec::new();
        for m in new {
            let cid = m.condition_id.clone();
            let room = self.shards.iter().position(|s| s.markets.len() < per_shard);
            let i = match room {
                Some(i) => i,
                None => {
                    // Never reused: a closed shard's last events may still be on their way.
                    self.next_shard += 1;
                    let id = self.next_shard;
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.shards.push(Shard {
                        id,
                        commands: tx,
                        markets: BTreeSet::new(),
                        connected: false,
                        down_since: None,
                        ever_connected: false,
                        reconnects: 0,
                        last_frame_ms: None,
                    });
                    fresh.insert(id, Vec::new());
                    starting.push((id, rx));
                    self.shards.len() - 1
                }
            };
            let shard = &mut self.shards[i];
            shard.markets.insert(cid.clone());
            self.shard_of.insert(cid.clone(), shard.id);
            if let Some(list) = fresh.get_mut(&shard.id) {
                // A shard starting now subscribes to its first tokens when it connects.
                list.extend(m.tokens.iter().cloned());
                continue;
            }
            let _ = shard
                .commands
                .send(ShardCommand::Subscribe(m.tokens.to_vec()));
            if shard.connected {
                // Heard from now on (its book comes with the subscribe).
                let at_ms = now_ms();
                self.control(Control::CoveredFrom {
                    condition_id: cid.clone(),
                    at_ms,
                });
                joined.push((cid, at_ms));
            }
        }
        // New shards start with their tokens, `stagger` apart.
        for (i, (id, commands)) in starting.into_iter().enumerate() {
            let tokens = fresh.remove(&id).unwrap_or_default();
            let events = shard_tx.clone();
            let shard_config = config.shard.clone();
            let delay = config.stagger * i as u32;
            let backpressure = self.backpressure.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                run_shard(id, shard_config, tokens, commands, events, backpressure).await;
            });
        }
        // Shards left with nothing close.
        self.shards.retain(|s| !s.markets.is_empty());
        self.counts.shards = self.shards.len() as u32;
        self.counts.subscribed_assets = self
            .shards
            .iter()
            .map(|s| s.assets(&self.markets) as u32)
            .sum();
        joined
    }

    fn on_shard(
        &mut self,
        config: &SupervisorConfig,
        ev: ShardEvent,
        client: &PolymarketClient,
        done: &mpsc::UnboundedSender<BackfillDone>,
    ) {
        match ev {
            ShardEvent::Frame {
                shard,
                recv_ms,
                text,
            } => {
                if let Some(s) = self.shards.iter_mut().find(|s| s.id == shard) {
                    s.last_frame_ms = Some(recv_ms);
                }
                self.record(shard, TapeKind::Frame, recv_ms, text);
            }
            ShardEvent::Connected { shard, at_ms, .. } => {
                let Some(s) = self.shards.iter_mut().find(|s| s.id == shard) else {
                    return;
                };
                s.connected = true;
                let first = !s.ever_connected;
                s.ever_connected = true;
                let down_since = s.down_since.take();
                let markets: Vec<String> = s.markets.iter().cloned().collect();
                for cid in markets {
                    self.control(Control::CoveredFrom {
                        condition_id: cid.clone(),
                        at_ms,
                    });
                    let (kind, from_ms) = match (first, down_since) {
                        (true, _) => (Backfill::Warmup, at_ms - config.warmup.as_millis() as i64),
                        (false, Some(from)) => (Backfill::Gap, from),
                        (false, None) => continue,
                    };
                    self.spawn_backfill(config, client, done, kind, cid, from_ms, at_ms);
                }
            }
            ShardEvent::Disconnected { shard, at_ms, why } => {
                let Some(s) = self.shards.iter_mut().find(|s| s.id == shard) else {
                    return;
                };
                tracing::info!(shard, why = ?why, "feed: shard disconnected");
                if !s.connected {
                    return;
                }
                s.connected = false;
                s.reconnects += 1;
                self.counts.reconnects += 1;
                // Unheard since the last frame (a stall hears nothing well before it is noticed).
                let from = s.last_frame_ms.unwrap_or(at_ms).min(at_ms);
                s.down_since = Some(from);
                let markets: Vec<String> = s.markets.iter().cloned().collect();
                for cid in markets {
                    self.control(Control::GapOpened {
                        condition_id: cid,
                        from_ms: from,
                    });
                }
            }
        }
    }

    /// Asks the Data API for the trades of `condition_id` from `from_ms` (a warm-up's or gap's
    /// start, or the oldest trade waiting for a size) to `to_ms` (when the market was heard
    /// again, or now for a size lookup), in the background; [`Supervisor::on_backfill`] takes
    /// the answer.
    #[allow(clippy::too_many_arguments)]
    fn spawn_backfill(
        &mut self,
        config: &SupervisorConfig,
        client: &PolymarketClient,
        done: &mpsc::UnboundedSender<BackfillDone>,
        kind: Backfill,
        condition_id: String,
        from_ms: i64,
        to_ms: i64,
    ) {
        self.counts.backfills += 1;
        self.counts.pending_backfills += 1;
        let (end_ms, delay) = match kind {
            // The trades waiting were heard live: asked at once (those not mined yet are found
            // by a later lookup).
            Backfill::Size => (to_ms, Duration::ZERO),
            // Trades matched before `to_ms` may be mined up to `settle` later: asked once that
            // has passed on the clock, then after the Data API's lag.
            Backfill::Warmup | Backfill::Gap | Backfill::Repair => {
                let end_ms = to_ms + config.settle.as_millis() as i64;
                let until_end = Duration::from_millis((end_ms - now_ms()).max(0) as u64);
                (end_ms, until_end + config.backfill_delay)
            }
        };
        let client = client.clone();
        let done = done.clone();
        let limit = config.backfill_limit;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Block times are whole seconds: from the second of `from_ms` to that of `end_ms`.
            let result = backfill(
                &client,
                &condition_id,
                from_ms.div_euclid(1000),
                end_ms.div_euclid(1000),
                limit,
            )
            .await
            .map_err(|e| e.to_string());
            let _ = done.send(BackfillDone {
                kind,
                condition_id,
                from_ms,
                to_ms,
                result,
            });
        });
    }

    fn on_backfill(&mut self, done: BackfillDone) {
        self.counts.pending_backfills = self.counts.pending_backfills.saturating_sub(1);
        let ok = match done.result {
            Ok(b) => {
                self.counts.backfill_requests += u64::from(b.requests);
                let sizes_only = matches!(done.kind, Backfill::Size);
                self.record(0, TapeKind::Backfill, now_ms(), b.tape_text(sizes_only));
                b.complete
            }
            Err(e) => {
                self.counts.backfill_failures += 1;
                tracing::warn!(condition_id = %done.condition_id, error = %e, "feed: backfill failed");
                false
            }
        };
        match done.kind {
            Backfill::Warmup if ok => self.control(Control::CoveredBackTo {
                condition_id: done.condition_id,
                from_ms: done.from_ms,
                to_ms: Some(done.to_ms),
            }),
            Backfill::Warmup | Backfill::Repair => {}
            Backfill::Gap => self.control(Control::GapClosed {
                condition_id: done.condition_id,
                from_ms: Some(done.from_ms),
                to_ms: done.to_ms,
                backfilled: ok,
            }),
            Backfill::Size => {
                self.size_lookups.remove(&done.condition_id);
            }
        }
    }

    /// Re-subscribes the tokens not heard for [`SupervisorConfig::asset_silence`] on their
    /// connected shards, and backfills each of their markets from when the silent tokens were
    /// last heard (the earliest, when both are): a token Polymarket served nothing lost its
    /// trades of that time, while a quiet one lost none. Which it was cannot be told, and most
    /// are quiet, so no gap is opened (that would make every quiet market's flow NULL for the
    /// backfill's wait each time): the repair backfill stores whatever was missed, counted as
    /// backfilled trades.
    fn watchdog(
        &mut self,
        config: &SupervisorConfig,
        client: &PolymarketClient,
        done: &mpsc::UnboundedSender<BackfillDone>,
        now: i64,
    ) {
        let silent = self
            .feed
            .silent_assets(now, config.asset_silence.as_millis() as i64);
        self.counts.silent_assets = silent.len() as u32;
        let mut by_shard: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        // Market → since when one of its tokens went unheard.
        let mut unheard: BTreeMap<String, i64> = BTreeMap::new();
        for asset in silent {
            let Some(cid) = self.feed.asset(&asset).map(|a| a.condition_id.to_string()) else {
                continue;
            };
            let Some(&id) = self.shard_of.get(&cid) else {
                continue;
            };
            if !self.shards.iter().any(|s| s.id == id && s.connected) {
                continue;
            }
            let since = self.feed.last_heard(&asset).unwrap_or(now).min(now);
            unheard
                .entry(cid)
                .and_modify(|t| *t = (*t).min(since))
                .or_insert(since);
            by_shard.entry(id).or_default().push(asset);
        }
        for (id, assets) in by_shard {
            let Some(s) = self.shards.iter().find(|s| s.id == id) else {
                continue;
            };
            self.counts.resubscribed_assets += assets.len() as u64;
            let _ = s.commands.send(ShardCommand::Unsubscribe(assets.clone()));
            let _ = s.commands.send(ShardCommand::Subscribe(assets.clone()));
            // Not asked again for another silence period.
            let text = serde_json::to_string(&Control::Heard { assets }).unwrap_or_default();
            self.record(0, TapeKind::Control, now, text);
        }
        for (cid, from_ms) in unheard {
            self.spawn_backfill(config, client, done, Backfill::Repair, cid, from_ms, now);
        }
    }

    /// Queues a heartbeat round of the open shards, then the counters.
    fn heartbeats(&mut self) {
        let at = crate::feed::ts_of(now_ms());
        let beats: Vec<ShardHeartbeat> = self
            .shards
            .iter()
            .map(|s| ShardHeartbeat {
                shard_id: format!("shard-{:02}", s.id),
                at,
                assets: s.assets(&self.markets) as u32,
                last_event_at: s.last_frame_ms.map(crate::feed::ts_of),
                reconnects: s.reconnects,
            })
            .collect();
        self.push(Emit::Heartbeats(beats));
        self.push_counts();
    }

    /// Queues the counters.
    fn push_counts(&mut self) {
        self.counts.connected_shards = self.shards.iter().filter(|s| s.connected).count() as u32;
        self.counts.feed = self.feed.counts().clone();
        self.counts.shard_waits = self.backpressure.waits();
        self.counts.shard_wait_ms = self.backpressure.waited_ms();
        self.counts.remembered_bytes = self.feed.remembered().bytes as u64;
        self.push(Emit::Counts(self.counts.clone()));
    }
}
