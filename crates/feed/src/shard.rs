//! One shard: one WebSocket connection on the CLOB market channel for at most a few hundred
//! assets, kept alive the way Polymarket needs (polymarket-api.md §3):
//!
//! * subscribe first — `{"assets_ids":[…],"type":"market","custom_feature_enabled":true}` —
//!   and only then the text `PING`, every 10 s (a `PING` before the subscribe is closed 1008);
//! * changes of the asset set go on the open socket (`{"operation":"subscribe"|"unsubscribe",…}`);
//! * assets are subscribed [`SUBSCRIBE_BATCH`] at a time (the first batch in the initial
//!   subscribe, the rest as operations), so no answering book dump is larger than that many
//!   books — a message to the trades consumer must stay under SQS's size limit;
//! * the connection is dead on a close, an error, or when nothing at all (no event, no `PONG`)
//!   came for 30 s; and stalled when it answers `PONG` but no event came for
//!   [`ShardConfig::stall_after`] while it has assets — both end in a reconnect, after a backoff
//!   with jitter that grows from 1 s to 60 s and resets once a connection has lived a minute.
//!
//! The shard reports what it hears to the supervisor as [`ShardEvent`]s, each frame with its
//! receive time; it never parses frames (the feed does, in one place).
//!
//! **Backpressure.** The events go over a bounded channel ([`SHARD_EVENTS_CAPACITY`]). When it
//! is full (the supervisor, or the consumer behind it, is behind) the shard stops reading its
//! socket until there is room — the server's sends then wait on TCP — and counts the wait in
//! [`Backpressure`]; nothing is dropped. While it waits it keeps sending `PING` (so the server
//! does not close an idle connection), and the time waited does not count as silence.

use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};
use tokio_tungstenite::tungstenite::Message;

/// Room for this many events between the shards and the supervisor (frames of all shards).
pub const SHARD_EVENTS_CAPACITY: usize = 256;

/// How often and how long the shards waited for room to hand a frame on (shared by all shards
/// of a supervisor).
#[derive(Debug, Default)]
pub struct Backpressure {
    waits: AtomicU64,
    waited_ms: AtomicU64,
}

impl Backpressure {
    /// Frames that had to wait for room.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// The time those frames waited, in all (ms).
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::Relaxed)
    }
}

/// Assets per subscribe frame.
pub const SUBSCRIBE_BATCH: usize = 25;

/// How a shard keeps its connection.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub url: String,
    pub ping_every: Duration,
    /// Nothing received (not even a `PONG`) for this long: the connection is dead.
    pub dead_after: Duration,
    /// `PONG`s but no event for this long, with assets subscribed: the connection is stalled.
    pub stall_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A connection that lived this long resets the backoff.
    pub healthy_after: Duration,
}

impl ShardConfig {
    pub fn new(url: impl Into<String>) -> ShardConfig {
        ShardConfig {
            url: url.into(),
            ping_every: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            stall_after: Duration::from_secs(60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// What the supervisor tells a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardCommand {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// The server closed (with its code) or the TCP connection ended.
    Closed(Option<u16>),
    Error(String),
    /// Nothing received for [`ShardConfig::dead_after`].
    Silent,
    /// `PONG`s only, for [`ShardConfig::stall_after`].
    Stalled,
    /// The connection could not be made.
    Connect(String),
}

/// What a shard reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEvent {
    /// Connected and subscribed to `assets` (their initial books follow).
    Connected {
        shard: u32,
        at_ms: i64,
        assets: Vec<String>,
    },
    /// A text frame other than `PONG`, as received.
    Frame {
        shard: u32,
        recv_ms: i64,
        text: String,
    },
    Disconnected {
        shard: u32,
        at_ms: i64,
        why: Disconnect,
    },
}

/// The wall clock in epoch ms (frames are stamped with it).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs one shard until `commands` closes (the supervisor dropped it: shutdown). Its asset set
/// starts as `assets` and follows the commands; a reconnect subscribes to the current set.
pub async fn run_shard(
    id: u32,
    config: ShardConfig,
    assets: Vec<String>,
    mut commands: mpsc::UnboundedReceiver<ShardCommand>,
    events: mpsc::Sender<ShardEvent>,
    backpressure: std::sync::Arc<Backpressure>,
) {
    let mut assets: BTreeSet<String> = assets.into_iter().collect();
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let why = match connect(&config, &assets).await {
            Ok(socket) => {
                let connected = ShardEvent::Connected {
                    shard: id,
                    at_ms: now_ms(),
                    assets: assets.iter().cloned().collect(),
                };
                if events.send(connected).await.is_err() {
                    return; // the supervisor is gone
                }
                let link = Link {
                    id,
                    events: &events,
                    backpressure: &backpressure,
                };
                match session(&link, &config, socket, &mut assets, &mut commands).await {
                    Some(why) => why,
                    None => return, // shutdown
                }
            }
            Err(e) => Disconnect::Connect(e),
        };
        let disconnected = ShardEvent::Disconnected {
            shard: id,
            at_ms: now_ms(),
            why,
        };
        if events.send(disconnected).await.is_err() {
            return;
        }
        if started.elapsed() >= config.healthy_after {
            failures = 0;
        }
        let wait = backoff(&config, failures, id);
        failures = failures.saturating_add(1);
        // Commands that arrive while waiting still change what the next connection asks for.
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => apply(&mut assets, &cmd),
                    None => return,
                },
            }
        }
    }
}

/// The backoff before reconnect number `failures` (0-based): min·2ⁿ capped at max, with ±20 %
/// jitter drawn from the shard id and attempt, so shards that failed together spread out.
pub fn backoff(config: &ShardConfig, failures: u32, shard: u32) -> Duration {
    let base = config
        .backoff_min
        .saturating_mul(1u32 << failures.min(16))
        .min(config.backoff_max);
    let r = splitmix(u64::from(shard) << 32 | u64::from(failures) | (now_ms() as u64) << 40);
    let jitter = 0.8 + 0.4 * (r >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(jitter).min(config.backoff_max)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

fn apply(assets: &mut BTreeSet<String>, cmd: &ShardCommand) {
    match cmd {
        ShardCommand::Subscribe(a) => assets.extend(a.iter().cloned()),
        ShardCommand::Unsubscribe(a) => {
            for x in a {
                assets.remove(x);
            }
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(config: &ShardConfig, assets: &BTreeSet<String>) -> Result<Socket, String> {
    let (mut socket, _) = tokio::time::timeout(
        config.dead_after,
        tokio_tungstenite::connect_async(config.url.as_str()),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let all: Vec<&String> = assets.iter().collect();
    let mut batches = all.chunks(SUBSCRIBE_BATCH);
    let first = serde_json::json!({
        "assets_ids": batches.next().unwrap_or_default(),
        "type": "market",
        "custom_feature_enabled": true,
    });
    socket
        .send(Message::Text(first.to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    for batch in batches {
        socket
            .send(Message::Text(operation("subscribe", batch).into()))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(socket)
}

/// `{"operation":…,"assets_ids":[…],"custom_feature_enabled":true}`.
fn operation<T: serde::Serialize>(op: &str, assets: &[T]) -> String {
    serde_json::json!({
        "operation": op,
        "assets_ids": assets,
        "custom_feature_enabled": true,
    })
    .to_string()
}

/// Where a shard's events go.
struct Link<'a> {
    id: u32,
    events: &'a mpsc::Sender<ShardEvent>,
    backpressure: &'a Backpressure,
}

/// Why handing a frame on failed.
enum Forward {
    /// The supervisor is gone (shutdown).
    Closed,
    /// A `PING` sent while waiting for room failed.
    Socket(Disconnect),
}

impl Link<'_> {
    /// Hands a frame on, waiting for room when the channel is full (the socket is not read
    /// meanwhile: TCP backpressure), with `PING`s going out on time; a wait is counted.
    async fn forward(
        &self,
        frame: ShardEvent,
        socket: &mut Socket,
        ping: &mut Interval,
    ) -> Result<(), Forward> {
        let permit = match self.events.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Closed(())) => return Err(Forward::Closed),
            Err(mpsc::error::TrySendError::Full(())) => {
                let from = Instant::now();
                self.backpressure.waits.fetch_add(1, Ordering::Relaxed);
                let permit = loop {
                    tokio::select! {
                        p = self.events.reserve() => break p.map_err(|_| Forward::Closed)?,
                        _ = ping.tick() => {
                            if let Err(e) = socket.send(Message::Text("PING".into())).await {
                                return Err(Forward::Socket(Disconnect::Error(e.to_string())));
                            }
                        }
                    }
                };
                let waited = from.elapsed().as_millis() as u64;
                self.backpressure
                    .waited_ms
                    .fetch_add(waited, Ordering::Relaxed);
                permit
            }
        };
        permit.send(frame);
        Ok(())
    }
}

/// Serves one connection; `None` on shutdown, otherwise why it ended.
async fn session(
    link: &Link<'_>,
    config: &ShardConfig,
    mut socket: Socket,
    assets: &mut BTreeSet<String>,
    commands: &mut mpsc::UnboundedReceiver<ShardCommand>,
) -> Option<Disconnect> {
    let mut ping = tokio::time::interval(config.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await; // the subscribe just went out
    let mut check = tokio::time::interval(Duration::from_secs(1));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let mut last_event = Instant::now();
    loop {
        tokio::select! {
            msg = socket.next() => {
                let msg = match msg {
                    None => return Some(Disconnect::Closed(None)),
                    Some(Err(e)) => return Some(Disconnect::Error(e.to_string())),
                    Some(Ok(m)) => m,
                };
                heard = Instant::now();
                match msg {
                    Message::Text(t) => {
                        let text = t.as_str();
                        if text.trim().eq_ignore_ascii_case("PONG") {
                            continue;
                        }
                        let frame = ShardEvent::Frame {
                            shard: link.id,
                            recv_ms: now_ms(),
                            text: text.to_string(),
                        };
                        match link.forward(frame, &mut socket, &mut ping).await {
                            Ok(()) => {}
                            Err(Forward::Closed) => {
                                let _ = socket.close(None).await;
                                return None;
                            }
                            Err(Forward::Socket(why)) => return Some(why),
                        }
                        // A wait for room was not silence: the socket was not being read.
                        heard = Instant::now();
                        last_event = heard;
                    }
                    Message::Close(frame) => {
                        return Some(Disconnect::Closed(frame.map(|f| u16::from(f.code))));
                    }
                    // Protocol pings are answered by tungstenite; binary frames are not sent.
                    _ => {}
                }
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else {
                    let _ = socket.close(None).await;
                    return None;
                };
                let (op, list) = match &cmd {
                    ShardCommand::Subscribe(a) => ("subscribe", a),
                    ShardCommand::Unsubscribe(a) => ("unsubscribe", a),
                };
                apply(assets, &cmd);
                for batch in list.chunks(SUBSCRIBE_BATCH) {
                    if let Err(e) = socket.send(Message::Text(operation(op, batch).into())).await {
                        return Some(Disconnect::Error(e.to_string()));
                    }
                }
            }
            _ = ping.tick() => {
                if let Err(e) = socket.send(Message::Text("PING".into())).await {
                    return Some(Disconnect::Error(e.to_string()));
                }
            }
            _ = check.tick() => {
                if heard.elapsed() >= config.dead_after {
                    return Some(Disconnect::Silent);
                }
                if !assets.is_empty() && last_event.elapsed() >= config.stall_after {
                    return Some(Disconnect::Stalled);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute_with_jitter() {
        let c = ShardConfig::new("ws://x");
        for (n, base) in [
            (0, 1.0),
            (1, 2.0),
            (2, 4.0),
            (5, 32.0),
            (6, 60.0),
            (30, 60.0),
        ] {
            let d = backoff(&c, n, 7).as_secs_f64();
            assert!(
                d >= base * 0.8 - 1e-9 && d <= (base * 1.2).min(60.0),
                "{n}: {d}"
            );
        }
    }
}
