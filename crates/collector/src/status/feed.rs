//! `/api/websocket`, `/api/events` and, locally, `/api/events/stream`; and the hub a local
//! run's feed publishes its events to ([`LiveEvents`], fed by [`Broadcasting`], a
//! [`MessageSink`] around the one that stores the feed's messages).

use super::params::{Params, RawQuery};
use super::routes::Id;
use super::{Answer, ApiError, Status, StatusStore};
use crate::live::MessageSink;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use polytape_core::live::{SizeSource, StoredTrade, WhaleEvent};
use polytape_core::{Tier, Ts};
use polytape_feed::queue::{self, Message, Record};
use polytape_store::read::newest_files;
use polytape_store::{keys, parquet, ObjectStore};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::broadcast;

/// A shard whose heartbeat is older than this is not counted alive.
pub const HEARTBEAT_ALIVE_S: i64 = 60;

/// Trade files `/api/websocket` reads at most for its G1/G3/G5 counts (the newest).
pub const GUARD_FILES: usize = 100;

/// Files of each kind `/api/events` reads at most.
pub const EVENT_FILES: usize = 50;

/// Hours back `/api/events` and `/api/websocket` look for files.
pub const EVENT_HOURS: u32 = 6;

/// One event of the live stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A trade as stored.
    Trade(StoredTrade),
    /// A whale trade with the mid around it.
    Whale(WhaleEvent),
}

impl LiveEvent {
    fn kind(&self) -> &'static str {
        match self {
            LiveEvent::Trade(_) => "trade",
            LiveEvent::Whale(_) => "whale",
        }
    }

    fn condition_id(&self) -> Option<&str> {
        match self {
            LiveEvent::Trade(t) => Some(&t.condition_id),
            LiveEvent::Whale(w) => Some(&w.condition_id),
        }
    }

    /// Whether the stream's filter (`kind`: all, trades, whales; one market) lets it through.
    fn wanted(&self, kind: &str, condition_id: Option<&str>) -> bool {
        let kind_ok = match kind {
            "trades" => matches!(self, LiveEvent::Trade(_)),
            "whales" => matches!(self, LiveEvent::Whale(_)),
            _ => true,
        };
        kind_ok && condition_id.is_none_or(|c| self.condition_id() == Some(c))
    }
}

/// The hub of a local run's live events: cheap to clone, and costing nothing while nobody
/// listens (messages are decoded for it only then).
#[derive(Debug, Clone)]
pub struct LiveEvents(broadcast::Sender<Arc<LiveEvent>>);

impl Default for LiveEvents {
    fn default() -> Self {
        LiveEvents::new(4096)
    }
}

impl LiveEvents {
    /// A hub keeping up to `capacity` events for a slow listener (one that falls further
    /// behind is told how many it missed).
    pub fn new(capacity: usize) -> LiveEvents {
        LiveEvents(broadcast::channel(capacity.max(1)).0)
    }

    /// Listens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.0.subscribe()
    }

    /// Wraps the sink the feed's messages go to: each message it stores is then published.
    pub fn sink<K: MessageSink>(&self, inner: K) -> Broadcasting<K> {
        Broadcasting {
            inner,
            events: self.clone(),
        }
    }

    /// Publishes the trades and whale events of one feed message (the tape — raw frames and
    /// the feed's control records — is stored by the feed itself and never reaches this sink).
    pub fn publish(&self, message: &Message) {
        if self.0.receiver_count() == 0 {
            return;
        }
        let Ok((_, records)) = queue::decode(&message.body) else {
            return;
        };
        for record in records.into_iter().flatten() {
            let event = match record {
                Record::Trade(t) => LiveEvent::Trade(t),
                Record::Whale(w) => LiveEvent::Whale(w),
                Record::Tape(_) => continue,
            };
            // No listener left is fine: the next message checks again.
            let _ = self.0.send(Arc::new(event));
        }
    }
}

/// A [`MessageSink`] that stores through `inner` and then publishes what it stored.
pub struct Broadcasting<K> {
    inner: K,
    events: LiveEvents,
}

impl<K: MessageSink> MessageSink for Broadcasting<K> {
    async fn send(&self, message: &Message) -> Result<(), String> {
        self.inner.send(message).await?;
        self.events.publish(message);
        Ok(())
    }
}

/// `/api/events/stream`: server-sent events, one JSON object per event (`event:` its kind);
/// `lagged` with the number of events a slow listener missed.
pub async fn stream<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Response {
    let p = match Params::of(Id::EventStream, q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(events) = st.local.as_ref().and_then(|l| l.events()) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_available",
            "the live stream is served by a local run (polytape run) only",
        )
        .into_response();
    };
    let kind = p.choice("kind").unwrap_or("all").to_string();
    let market = p.text("condition_id").map(str::to_string);
    let rx = events.subscribe();
    let events = futures_util::stream::unfold(rx, move |mut rx| {
        let (kind, market) = (kind.clone(), market.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.wanted(&kind, market.as_deref()) => {
                        let ev = Event::default()
                            .event(e.kind())
                            .json_data(&*e)
                            .unwrap_or_else(|_| Event::default().event("error"));
                        return Some((Ok::<_, std::convert::Infallible>(ev), rx));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let ev = Event::default().event("lagged").data(n.to_string());
                        return Some((Ok(ev), rx));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `/api/websocket`: the feed's shards from their heartbeats, tokens subscribed against the
/// tokens of the WebSocket tiers, reconnects, and the G1/G3/G5 counts over the last hour's
/// newest stored trades; `feed`, a local run's in-memory counters.
pub async fn websocket<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    Params::of(Id::WebSocket, q)?;
    let now = st.now();
    let (beats, due) = tokio::try_join!(
        st.store.heartbeats(),
        crate::retier::count_due(&st.store, now)
    )?;
    let should: u64 = Tier::ALL
        .iter()
        .filter(|t| t.spec().websocket)
        .map(|t| due.get(&Some(*t)).copied().unwrap_or(0) * 2)
        .sum();
    let shards: Vec<Value> = beats
        .iter()
        .map(|h| {
            let age = (now - h.at).num_seconds();
            json!({
                "shard_id": h.shard_id,
                "at": h.at,
                "age_s": age,
                "alive": age <= HEARTBEAT_ALIVE_S,
                "assets": h.assets,
                "last_event_at": h.last_event_at,
                "silent_s": h.last_event_at.map(|t| (now - t).num_seconds()),
                "reconnects": h.reconnects,
            })
        })
        .collect();
    let alive: Vec<_> = beats
        .iter()
        .filter(|h| (now - h.at).num_seconds() <= HEARTBEAT_ALIVE_S)
        .collect();
    let guards = guards(&st.store, now).await?;
    let feed = st.local.as_ref().and_then(|l| l.feed());
    Ok(Json(json!({
        "now": now,
        "shards": shards,
        "shards_alive": alive.len(),
        "subscribed_assets": alive.iter().map(|h| u64::from(h.assets)).sum::<u64>(),
        "should_subscribe_assets": should,
        "reconnects": beats.iter().map(|h| h.reconnects).sum::<u64>(),
        "guards_last_hour": guards,
        "feed": feed,
    })))
}

/// G1 (stale top of book), G3 (size from the Data API, or none) and G5 (divergent) counts over
/// the trades of the last hour, from the newest trade files (at most [`GUARD_FILES`]).
async fn guards<S: ObjectStore>(store: &S, now: Ts) -> Result<Value, ApiError> {
    let hour_ago = now - chrono::Duration::hours(1);
    let files = newest_files(store, keys::TRADES, now, 2, GUARD_FILES).await?;
    let (mut trades, mut stale, mut g3_found, mut g3_missing, mut divergent) = (0u64, 0, 0, 0, 0);
    let mut oldest: Option<Ts> = None;
    for f in &files {
        let Some(bytes) = store.get_object(&f.key).await? else {
            continue;
        };
        for t in parquet::decode_trades(&bytes)? {
            if t.trade_ts < hour_ago || t.trade_ts > now {
                continue;
            }
            trades += 1;
            stale += u64::from(t.stale);
            divergent += u64::from(t.divergent);
            match t.size_source {
                SizeSource::DataApi => g3_found += 1,
                SizeSource::Missing => g3_missing += 1,
                SizeSource::Feed => {}
            }
            oldest = Some(oldest.map_or(t.trade_ts, |o| o.min(t.trade_ts)));
        }
    }
    Ok(json!({
        "trades": trades,
        "g1_stale": stale,
        "g3_size_from_data_api": g3_found,
        "g3_size_missing": g3_missing,
        "g5_divergent": divergent,
        "files_read": files.len(),
        "complete": files.len() < GUARD_FILES,
        "oldest_trade_at": oldest,
    }))
}

/// `/api/events`: the newest stored trades and whale events, newest first, each row as the
/// table browser shows it with its `kind`.
pub async fn events<S: StatusStore>(State(st): State<Arc<Status<S>>>, q: RawQuery) -> Answer {
    let p = Params::of(Id::Events, q)?;
    let now = st.now();
    let kind = p.choice("kind").unwrap_or("all");
    let market = p.text("condition_id");
    let limit = p.count("limit");
    let mut out: Vec<(Ts, Value)> = Vec::new();
    for (table, name, wanted) in [
        (keys::TRADES, "trade", kind != "whales"),
        (keys::WHALE_EVENTS, "whale", kind != "trades"),
    ] {
        if wanted {
            out.extend(newest_rows(&st.store, table, name, now, market, limit).await?);
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.truncate(limit);
    Ok(Json(json!({
        "now": now,
        "events": out.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
}

/// Up to `limit` rows of `table` (of one market, if given) from its newest files, each with
/// `kind` and its `trade_ts`.
async fn newest_rows<S: ObjectStore>(
    store: &S,
    table: &str,
    kind: &str,
    now: Ts,
    market: Option<&str>,
    limit: usize,
) -> Result<Vec<(Ts, Value)>, ApiError> {
    let files = newest_files(store, table, now, EVENT_HOURS, EVENT_FILES).await?;
    let mut out = Vec::new();
    for f in &files {
        let Some(batches) = polytape_store::read::file_batches(store, &f.key).await? else {
            continue;
        };
        for b in &batches {
            for mut row in parquet::json::batch_rows(b)? {
                if market
                    .is_some_and(|m| row.get("condition_id").and_then(Value::as_str) != Some(m))
                {
                    continue;
                }
                let at = row
                    .get("trade_ts")
                    .and_then(|v| serde_json::from_value::<Ts>(v.clone()).ok())
                    .unwrap_or(now);
                row.insert("kind".into(), json!(kind));
                out.push((at, Value::Object(row)));
            }
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
