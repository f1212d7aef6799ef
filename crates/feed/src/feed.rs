//! The feed's state machine: frames and backfill pages in, stored trades, whale events and
//! flow out. No I/O and no clock of its own: every input carries its receive time, so running
//! the raw tape through it again gives the same trades (`polytape replay`).

use crate::fast::{self, Item};
use crate::key::{micros, unhashed_digest, IdentityDigest, TradeIdentity, TradeKey};
use crate::memory::{Memory, Remembered};
use crate::window::{Coverage, MarketWindow};
use polytape_core::live::{SizeSource, Source, StoredTrade, TapeKind, TapeRecord, WhaleEvent};
use polytape_core::{FlowTrade, TradeFlow, Ts};
use polytape_polymarket::data::{decode_trades, DataTrade};
use polytape_polymarket::ws::{split_frame, EventKind, WsEvent};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The default of [`FeedConfig::key_retention_ms`]: 80 min.
pub(crate) const KEY_RETENTION_MS: i64 = 80 * 60_000;

/// Thresholds of the guards and windows.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// G1: a WebSocket trade received later than this after its time is stale.
    pub stale_after_ms: i64,
    /// G3: how long a trade without `size` waits for the Data API before it is stored without.
    pub size_wait_ms: i64,
    /// G5: a trade further than this from the token's mid is divergent.
    pub divergence: Decimal,
    /// How long a trade's key (and its identity's match times) is remembered after it was
    /// heard or backfilled: as long as a backfill that may return the trade may still come in.
    /// A backfill's answer comes in after it reaches back this far at most:
    ///
    /// * a warm-up (a market joining, or joining again after it left) asks [join − 1 h,
    ///   join + settle] and comes in after the settle (120 s, `POLYTAPE_WS_SETTLE_S`), the Data
    ///   API's lag (30 s) and its own paging and retries: 1 h + 2.5 min + that run;
    /// * a watchdog repair reaches back to when a silent token was last heard: at most the
    ///   asset silence (15 min) before it is asked, as the watchdog re-arms every silence;
    /// * a size lookup reaches back to the oldest trade waiting for a size (5 min);
    /// * a gap's backfill reaches back to the gap's start, and 120 s more for trades matched
    ///   before it and mined after, *however long the gap*: see [`FeedConfig::key_retention_max_ms`].
    ///
    /// So 80 min: the warm-up's 62.5 min and 17.5 min for its run. Things are kept in
    /// generations a quarter of this long ([`crate::memory`]), so up to 100 min in fact. The
    /// supervisor raises it when its settle or delay is set longer
    /// ([`crate::supervisor::SupervisorConfig::backfill_reach`]).
    pub key_retention_ms: i64,
    /// While a gap is open, and for [`FeedConfig::key_retention_ms`] after it closed (repairs
    /// asked at the reconnect come in after the gap's own backfill), keys are kept from the
    /// gap's start less the retention, so its backfill finds the trades heard before it — but
    /// never longer than this in all: past it, a gap's backfill may store a trade heard before
    /// the gap a second time (compaction drops it). 3 h: the memory of the old fixed retention.
    pub key_retention_max_ms: i64,
    /// Read frames of the usual shape with the one-pass decoder ([`crate::fast`]); off, every
    /// frame goes through the tolerant decoder (the same results, slower).
    pub fast_path: bool,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            stale_after_ms: 300_000,
            size_wait_ms: 300_000,
            divergence: Decimal::new(10, 2),
            key_retention_ms: KEY_RETENTION_MS,
            key_retention_max_ms: 3 * 3_600_000,
            fast_path: true,
        }
    }
}

/// A change of the feed's own state, recorded on the tape as JSON (`kind = control`) so a
/// replay makes the same changes at the same points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// The tokens followed: (token id, condition id, outcome index).
    Assets { assets: Vec<(String, String, u8)> },
    /// The market is heard live from `at_ms` on (its tokens subscribed on a connected shard).
    CoveredFrom { condition_id: String, at_ms: i64 },
    /// The start-up warm-up backfilled the market's trades of [`from_ms`, `to_ms`]: a stretch
    /// running since `to_ms` reaches back to `from_ms` ([`Coverage::extend_back`]).
    CoveredBackTo {
        condition_id: String,
        from_ms: i64,
        /// When the warm-up was asked (the connection). Absent from tapes recorded before it
        /// was: such a warm-up reaches back whatever the stretch, as it then did.
        #[serde(default)]
        to_ms: Option<i64>,
    },
    /// The market was not heard from `from_ms` on (its shard dropped or stalled, or its tokens
    /// fell silent): a gap, open until the `GapClosed` of the same `from_ms`.
    GapOpened { condition_id: String, from_ms: i64 },
    /// The gap opened at `from_ms` ended at `to_ms` (reconnected or re-subscribed), its trades
    /// backfilled or not ([`Coverage::close_gap`]).
    GapClosed {
        condition_id: String,
        /// The gap's start, as in its `GapOpened`. Absent from tapes recorded when a market had
        /// at most one gap open: such a record closes every open gap of the market, as it then
        /// did.
        #[serde(default)]
        from_ms: Option<i64>,
        to_ms: i64,
        backfilled: bool,
    },
    /// Time passed without a record.
    Advance { now_ms: i64 },
    /// Shutting down: whale events and trades still waiting go out as they are.
    Flush,
    /// Tokens re-subscribed by the silence watchdog: counted as heard now, so they are not
    /// asked again before another silence period.
    Heard { assets: Vec<String> },
}

/// One group of a backfill record on the tape.
#[derive(Deserialize)]
struct TapeGroup<'a> {
    #[serde(default)]
    cut: bool,
    /// A size lookup (G3): its rows only give sizes to trades waiting for one.
    #[serde(default)]
    sizes_only: bool,
    #[serde(borrow)]
    bodies: Vec<&'a RawValue>,
}

/// What the feed emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Trade(Box<StoredTrade>),
    Whale(Box<WhaleEvent>),
}

/// Counters for metrics and the status API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedCounts {
    pub frames: u64,
    /// Frames read by the one-pass decoder (the others by the tolerant one).
    pub fast_frames: u64,
    pub events: u64,
    pub malformed_frames: u64,
    pub unknown_events: u64,
    pub invalid_events: u64,
    pub trades_ws: u64,
    pub trades_backfill: u64,
    pub duplicates: u64,
    pub unregistered_trades: u64,
    /// G1.
    pub stale: u64,
    /// G3: found on the Data API.
    pub size_from_data_api: u64,
    /// G3: stored without a size after the wait.
    pub size_missing: u64,
    /// G5.
    pub divergent: u64,
    pub whales: u64,
    pub backfill_rows_rejected: u64,
    pub malformed_backfill: u64,
    pub malformed_control: u64,
}

/// A registered token: its market and which of its two outcomes it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub condition_id: Arc<str>,
    pub outcome: u8,
}

#[derive(Debug, Clone, Copy, Default)]
struct Top {
    bid: Option<Decimal>,
    ask: Option<Decimal>,
}

impl Top {
    fn mid(self) -> Option<Decimal> {
        Some((self.bid? + self.ask?) / Decimal::TWO)
    }
}

/// A WebSocket trade waiting for its size (G3).
#[derive(Debug, Clone)]
struct Sizeless {
    trade: StoredTrade,
    /// When the wait ends.
    until_ms: i64,
    /// Data API rows that gave it a size so far. Fills of one transaction, token, side, price
    /// and match time that all came without a size cannot be told from a repeated event, so
    /// one wait stands for all of them: every row of the page that meets it is a trade, and it
    /// ends once a page holds the transaction whole ([`Feed::settle_sizeless`]).
    filled: u32,
}

#[derive(Debug, Clone)]
struct PendingWhale {
    event: WhaleEvent,
    at_ms: i64,
}

/// A gap of a market whose backfill may bring back trades heard before it began, so keys are
/// kept from its start less the retention (see [`FeedConfig::key_retention_max_ms`]).
#[derive(Debug, Clone)]
struct GapHold {
    condition_id: String,
    from_ms: i64,
    /// When the market was heard again (`None` while the gap is open).
    closed_ms: Option<i64>,
}

/// The live feed of one process (every shard).
#[derive(Debug, Default)]
pub struct Feed {
    config: FeedConfig,
    assets: FxHashMap<String, Asset>,
    tops: FxHashMap<String, Top>,
    /// Keys, the live match times of each identity, and those of trades without a hash.
    memory: Memory,
    /// Gaps holding the memory's horizon back.
    gap_holds: Vec<GapHold>,
    sizeless: Vec<Sizeless>,
    whales: Vec<PendingWhale>,
    windows: BTreeMap<Arc<str>, MarketWindow>,
    /// When each followed token was last heard (any event naming it), or was first followed.
    last_heard: FxHashMap<String, i64>,
    /// When the eviction sweeps run next.
    next_sweep_ms: i64,
    out: Vec<Output>,
    counts: FeedCounts,
}

/// A backfill row matches an unhashed WebSocket trade when its block time (s) lies within
/// [match − 2 s, match + 120 s] (second truncation before, settlement lag after).
const UNHASHED_BEFORE_MS: i64 = 2_000;
const UNHASHED_AFTER_MS: i64 = 120_000;

impl Feed {
    pub fn new(config: FeedConfig) -> Feed {
        Feed {
            memory: Memory::new(config.key_retention_ms),
            config,
            ..Feed::default()
        }
    }

    /// What the feed remembers to know trades again, and the bytes it takes.
    pub fn remembered(&self) -> Remembered {
        self.memory.remembered()
    }

    pub fn counts(&self) -> &FeedCounts {
        &self.counts
    }

    /// One tape record: the single way in, live and in a replay.
    pub fn apply(&mut self, rec: &TapeRecord) {
        let recv_ms = rec.received_at.timestamp_millis();
        match rec.kind {
            TapeKind::Frame => self.on_frame(rec.shard, rec.seq, recv_ms, &rec.text),
            TapeKind::Backfill => {
                // The Data API responses of one backfill, verbatim, by group (see `backfill`).
                let Ok(groups) = serde_json::from_str::<Vec<TapeGroup<'_>>>(&rec.text) else {
                    self.counts.malformed_backfill += 1;
                    return;
                };
                for group in groups {
                    let mut rows = Vec::new();
                    for body in group.bodies {
                        match decode_trades(body.get().as_bytes()) {
                            Ok(d) => {
                                self.counts.backfill_rows_rejected += d.rejected.len() as u64;
                                rows.extend(d.trades);
                            }
                            Err(_) => self.counts.malformed_backfill += 1,
                        }
                    }
                    if group.sizes_only {
                        self.on_sizes(recv_ms, &rows, group.cut);
                    } else {
                        self.on_backfill(recv_ms, &rows, group.cut);
                    }
                }
            }
            TapeKind::Control => match serde_json::from_str::<Control>(&rec.text) {
                Ok(c) => self.control(c, recv_ms),
                Err(_) => self.counts.malformed_control += 1,
            },
        }
    }

    fn control(&mut self, c: Control, at_ms: i64) {
        match c {
            Control::Assets { assets } => {
                let new: Vec<String> = assets
                    .iter()
                    .filter(|(t, _, _)| !self.assets.contains_key(t))
                    .map(|(t, _, _)| t.clone())
                    .collect();
                self.set_assets(assets.into_iter().map(|(token, cid, outcome)| {
                    (
                        token,
                        Asset {
                            condition_id: Arc::from(cid.as_str()),
                            outcome,
                        },
                    )
                }));
                for t in new {
                    self.last_heard.insert(t, at_ms);
                }
                // A market no longer followed gets no backfill: its gaps hold no more.
                let followed: HashSet<&str> =
                    self.assets.values().map(|a| &*a.condition_id).collect();
                for h in &mut self.gap_holds {
                    if h.closed_ms.is_none() && !followed.contains(h.condition_id.as_str()) {
                        h.closed_ms = Some(at_ms);
                    }
                }
            }
            Control::CoveredFrom {
                condition_id,
                at_ms,
            } => self.covered_from(&condition_id, at_ms),
            Control::CoveredBackTo {
                condition_id,
                from_ms,
                to_ms,
            } => self.covered_back_to(&condition_id, from_ms, to_ms),
            Control::GapOpened {
                condition_id,
                from_ms,
            } => self.gap_opened(&condition_id, from_ms),
            Control::GapClosed {
                condition_id,
                from_ms,
                to_ms,
                backfilled,
            } => self.gap_closed(&condition_id, from_ms, to_ms, backfilled),
            Control::Advance { now_ms } => self.advance(now_ms),
            Control::Flush => self.flush(at_ms),
            Control::Heard { assets } => {
                for a in assets {
                    self.heard(&a, at_ms);
                }
            }
        }
    }

    /// The tokens the feed follows, with their markets. Markets no longer listed lose their
    /// window; tokens of markets still listed keep their state.
    pub fn set_assets(&mut self, assets: impl IntoIterator<Item = (String, Asset)>) {
        self.assets = assets.into_iter().collect();
        let markets: HashSet<&Arc<str>> = self.assets.values().map(|a| &a.condition_id).collect();
        self.windows.retain(|cid, _| markets.contains(cid));
        self.tops.retain(|asset, _| self.assets.contains_key(asset));
        self.last_heard
            .retain(|asset, _| self.assets.contains_key(asset));
    }

    /// Markets with trades waiting for their size (G3), with the earliest such trade's time:
    /// what the supervisor asks the Data API for.
    pub fn sizeless_markets(&self) -> BTreeMap<String, i64> {
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        for s in &self.sizeless {
            let ms = s.trade.trade_ts.timestamp_millis();
            out.entry(s.trade.condition_id.clone())
                .and_modify(|m| *m = (*m).min(ms))
                .or_insert(ms);
        }
        out
    }

    /// Followed tokens not heard for `silence_ms` (nor followed for that long).
    pub fn silent_assets(&self, now_ms: i64, silence_ms: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .assets
            .keys()
            .filter(|a| {
                self.last_heard
                    .get(*a)
                    .is_none_or(|at| now_ms - at >= silence_ms)
            })
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// When a followed token was last heard (or first followed, if never).
    pub fn last_heard(&self, asset: &str) -> Option<i64> {
        self.last_heard.get(asset).copied()
    }

    fn heard(&mut self, asset: &str, at_ms: i64) {
        if let Some(t) = self.last_heard.get_mut(asset) {
            *t = (*t).max(at_ms);
        } else if self.assets.contains_key(asset) {
            self.last_heard.insert(asset.to_string(), at_ms);
        }
    }

    pub fn asset(&self, token_id: &str) -> Option<&Asset> {
        self.assets.get(token_id)
    }

    /// The market is being heard live from `at_ms` on (its tokens subscribed, or re-subscribed
    /// after a gap that was not backfilled).
    pub fn covered_from(&mut self, condition_id: &str, at_ms: i64) {
        if self.follows(condition_id) {
            self.window(condition_id).coverage.start(at_ms);
        }
    }

    /// The market was not heard from `from_ms` (a disconnect or silence); until
    /// [`Feed::gap_closed`] of that start its flow is not published. Gaps may overlap.
    pub fn gap_opened(&mut self, condition_id: &str, from_ms: i64) {
        if self.follows(condition_id) {
            self.window(condition_id).coverage.open_gap(from_ms);
            self.gap_holds.push(GapHold {
                condition_id: condition_id.to_string(),
                from_ms,
                closed_ms: None,
            });
        }
    }

    /// The gap opened at `from_ms` ended at `to_ms`; `backfilled` when the Data API's trades of
    /// the gap went through [`Feed::on_backfill`], so coverage goes on unbroken. Otherwise it
    /// restarts at `to_ms`. `from_ms` `None` (an old tape) closes every open gap.
    pub fn gap_closed(
        &mut self,
        condition_id: &str,
        from_ms: Option<i64>,
        to_ms: i64,
        backfilled: bool,
    ) {
        if self.follows(condition_id) {
            self.window(condition_id)
                .coverage
                .close_gap(from_ms, to_ms, backfilled);
        }
        for h in &mut self.gap_holds {
            if h.closed_ms.is_none()
                && h.condition_id == condition_id
                && from_ms.is_none_or(|f| f == h.from_ms)
            {
                h.closed_ms = Some(to_ms);
                if from_ms.is_some() {
                    break;
                }
            }
        }
    }

    /// A market whose trades of [`from_ms`, `to_ms`] were backfilled (the start-up warm-up,
    /// asked at `to_ms`): coverage running since `to_ms` reaches back to `from_ms`. `to_ms`
    /// `None` (an old tape) reaches back whatever the coverage.
    pub fn covered_back_to(&mut self, condition_id: &str, from_ms: i64, to_ms: Option<i64>) {
        if self.follows(condition_id) {
            self.window(condition_id)
                .coverage
                .extend_back(from_ms, to_ms);
        }
    }

    /// Whether a followed token belongs to this market (coverage of any other is ignored: a
    /// backfill may finish after its market left).
    fn follows(&self, condition_id: &str) -> bool {
        self.assets
            .values()
            .any(|a| &*a.condition_id == condition_id)
    }

    fn window(&mut self, condition_id: &str) -> &mut MarketWindow {
        if !self.windows.contains_key(condition_id) {
            self.windows
                .insert(Arc::from(condition_id), MarketWindow::default());
        }
        self.windows
            .get_mut(condition_id)
            .expect("inserted just above")
    }

    pub fn coverage(&self, condition_id: &str) -> Option<&Coverage> {
        self.windows.get(condition_id).map(|w| &w.coverage)
    }

    /// One WebSocket text frame. Never fails: a frame that is not JSON is counted.
    pub fn on_frame(&mut self, shard: u32, seq: u64, recv_ms: i64, text: &str) {
        self.counts.frames += 1;
        if let Some(frame) = self.config.fast_path.then(|| fast::parse(text)).flatten() {
            self.counts.fast_frames += 1;
            self.counts.events += frame.events;
            self.counts.unknown_events += frame.unknown;
            for item in frame.items {
                match item {
                    Item::Trade(t) => {
                        self.heard(&t.asset_id, recv_ms);
                        self.on_ws_trade(shard, seq, recv_ms, t);
                    }
                    Item::Book { asset, bid, ask } => {
                        self.heard(asset, recv_ms);
                        match self.tops.get_mut(asset) {
                            Some(top) => *top = Top { bid, ask },
                            None => {
                                self.tops.insert(asset.to_string(), Top { bid, ask });
                            }
                        }
                    }
                    Item::Top { asset, bid, ask } => {
                        self.heard(asset, recv_ms);
                        self.merge_top(asset, bid, ask);
                    }
                }
            }
            self.advance(recv_ms);
            return;
        }
        let events = match split_frame(text) {
            Ok(events) => events,
            Err(_) => {
                self.counts.malformed_frames += 1;
                return;
            }
        };
        let mut drifts = Vec::new();
        for raw in events {
            self.counts.events += 1;
            match raw.kind {
                EventKind::LastTradePrice
                | EventKind::Book
                | EventKind::PriceChange
                | EventKind::BestBidAsk => {}
                EventKind::Unknown => {
                    self.counts.unknown_events += 1;
                    continue;
                }
                // Known, and not what the feed uses.
                _ => continue,
            }
            match raw.decode(&mut drifts) {
                WsEvent::LastTradePrice(t) => {
                    self.heard(&t.asset_id, recv_ms);
                    self.on_ws_trade(shard, seq, recv_ms, t)
                }
                WsEvent::Book(b) => {
                    self.heard(&b.book.token_id, recv_ms);
                    let top = Top {
                        bid: b.book.best_bid(),
                        ask: b.book.best_ask(),
                    };
                    self.tops.insert(b.book.token_id.clone(), top);
                }
                WsEvent::PriceChange(pc) => {
                    for c in &pc.changes {
                        self.heard(&c.asset_id, recv_ms);
                        self.merge_top(&c.asset_id, c.best_bid, c.best_ask);
                    }
                }
                WsEvent::BestBidAsk(b) => {
                    self.heard(&b.asset_id, recv_ms);
                    self.merge_top(&b.asset_id, b.best_bid, b.best_ask);
                }
                WsEvent::Invalid { .. } => self.counts.invalid_events += 1,
                _ => {}
            }
        }
        self.advance(recv_ms);
    }

    /// A change's best prices replace the token's where given.
    fn merge_top(&mut self, asset: &str, bid: Option<Decimal>, ask: Option<Decimal>) {
        if bid.is_none() && ask.is_none() {
            return;
        }
        match self.tops.get_mut(asset) {
            Some(top) => {
                top.bid = bid.or(top.bid);
                top.ask = ask.or(top.ask);
            }
            None => {
                self.tops.insert(asset.to_string(), Top { bid, ask });
            }
        }
    }

    fn on_ws_trade(
        &mut self,
        shard: u32,
        seq: u64,
        recv_ms: i64,
        t: polytape_polymarket::ws::LastTradePrice,
    ) {
        let (Some(side), Some(ts)) = (t.side, t.timestamp) else {
            self.counts.invalid_events += 1;
            return;
        };
        let Some(price_micros) = micros(t.price) else {
            self.counts.invalid_events += 1;
            return;
        };
        let asset = self.assets.get(&t.asset_id).cloned();
        let condition_id = match (&asset, &t.market) {
            (Some(a), _) => a.condition_id.to_string(),
            (None, Some(m)) => m.clone(),
            (None, None) => {
                self.counts.invalid_events += 1;
                return;
            }
        };
        let top = self.tops.get(&t.asset_id).copied().unwrap_or_default();
        let mid = top.mid();
        let ts_ms = ts.timestamp_millis();
        let stale = recv_ms - ts_ms > self.config.stale_after_ms;
        let divergent = mid.is_some_and(|m| (t.price - m).abs() > self.config.divergence);
        let mut trade = StoredTrade {
            trade_key: String::new(),
            condition_id,
            token_id: t.asset_id.clone(),
            outcome_index: asset.as_ref().map(|a| a.outcome),
            side,
            price: t.price,
            size: t.size,
            size_source: SizeSource::Feed,
            fee_rate_bps: t.fee_rate_bps,
            transaction_hash: t.transaction_hash.clone().filter(|h| !h.is_empty()),
            trade_ts: ts,
            received_at: ts_of(recv_ms),
            source: Source::Ws,
            best_bid: top.bid,
            best_ask: top.ask,
            mid,
            notional: None,
            whale_tier: None,
            stale,
            divergent,
            shard: Some(shard),
            seq: Some(seq),
        };
        let Some(size) = t.size else {
            // G3: the same event delivered again must not wait twice.
            let dup = self.sizeless.iter().any(|s| {
                s.trade.token_id == trade.token_id
                    && s.trade.trade_ts == trade.trade_ts
                    && s.trade.transaction_hash == trade.transaction_hash
                    && s.trade.side == side
                    && s.trade.price == trade.price
            });
            if dup {
                self.counts.duplicates += 1;
            } else {
                self.sizeless.push(Sizeless {
                    trade,
                    until_ms: recv_ms + self.config.size_wait_ms,
                    filled: 0,
                });
            }
            return;
        };
        let Some(size_micros) = micros(size) else {
            self.counts.invalid_events += 1;
            return;
        };
        let identity = TradeIdentity {
            condition_id: trade.condition_id.clone(),
            token_id: trade.token_id.clone(),
            transaction_hash: trade.transaction_hash.clone().unwrap_or_default(),
            side,
            price_micros,
            size_micros,
        };
        let key = if trade.transaction_hash.is_some() {
            // An event with a match time already heard for its identity is that event again
            // (even within one frame: identical fills of one taker order in one millisecond
            // cannot be told from a copy, see docs/trades.md); a new time takes the next ordinal.
            let d = identity.digest();
            let mut times = self.memory.take_times(d);
            if times.count(ts_ms) > 0 {
                self.memory.put_times(d, times, recv_ms);
                self.counts.duplicates += 1;
                return;
            }
            times.push(ts_ms);
            let k = times.len() as u64 - 1;
            self.memory.put_times(d, times, recv_ms);
            identity.key(k)
        } else {
            identity.key(ts_ms as u64)
        };
        if !self.remember(key, recv_ms) {
            self.counts.duplicates += 1;
            return;
        }
        if trade.transaction_hash.is_none() {
            let d = unhashed_digest(&trade.token_id, side, price_micros, size_micros);
            self.memory.push_unhashed(d, ts_ms, recv_ms);
        }
        trade.trade_key = key.hex();
        self.counts.trades_ws += 1;
        self.counts.stale += u64::from(stale);
        self.counts.divergent += u64::from(divergent);
        self.accept(trade, size, recv_ms);
    }

    /// Rows of the Data API for one market (`GET /trades?market=…`, one or more pages of one
    /// window), received at `recv_ms`. Each row goes through the same keys as the WebSocket:
    /// a row already heard live is dropped. Rows also answer trades waiting for a size (G3).
    /// Ordinals are counted per call, so the rows of one transaction in one call must be all of
    /// them, or a prefix of them when the call is `cut` (a full page: its oldest second may
    /// continue in the next call).
    pub fn on_backfill(&mut self, recv_ms: i64, rows: &[DataTrade], cut: bool) {
        let mut ordinals: FxHashMap<IdentityDigest, u64> = FxHashMap::default();
        for row in rows {
            let Some((t, identity)) = self.identify(row) else {
                self.counts.backfill_rows_rejected += 1;
                continue;
            };
            let (price_micros, size_micros) = (identity.price_micros, identity.size_micros);
            let asset = self.assets.get(&t.token_id).cloned();
            let condition_id = identity.condition_id.clone();
            let tx = row.transaction_hash.clone().filter(|h| !h.is_empty());
            let k = ordinals.entry(identity.digest()).or_default();
            let key = identity.key(*k);
            *k += 1;
            if self.memory.knows(&key) {
                self.counts.duplicates += 1;
                continue;
            }
            if self.matches_unhashed(&t, price_micros, size_micros) {
                // Heard live without a hash: this row's key stands for it from now on, so the
                // same row in a later page or backfill is known.
                self.remember(key, recv_ms);
                self.counts.duplicates += 1;
                continue;
            }
            // A fill not stored yet may be a WebSocket trade that came without its size (G3).
            if tx.is_some() && self.fill_size(&identity, key, t.size, recv_ms) {
                continue;
            }
            self.remember(key, recv_ms);
            let trade = StoredTrade {
                trade_key: key.hex(),
                condition_id,
                token_id: t.token_id.clone(),
                outcome_index: asset.as_ref().map(|a| a.outcome),
                side: t.side,
                price: t.price,
                size: Some(t.size),
                size_source: SizeSource::Feed,
                fee_rate_bps: None,
                transaction_hash: tx,
                trade_ts: t.ts,
                received_at: ts_of(recv_ms),
                source: Source::Backfill,
                best_bid: None,
                best_ask: None,
                mid: None,
                notional: None,
                whale_tier: None,
                stale: false,
                divergent: false,
                shard: None,
                seq: None,
            };
            self.counts.trades_backfill += 1;
            self.accept(trade, t.size, recv_ms);
        }
        self.settle_sizeless(rows, cut);
        self.advance(recv_ms);
    }

    /// After a page: a trade still waiting for its size whose transaction, token, side and
    /// price the page holds was already stored (every row of that transaction is in the page
    /// and none was left for it), so it is a duplicate. A `cut` page's oldest second is left
    /// out of this: the next page holds it whole.
    fn settle_sizeless(&mut self, rows: &[DataTrade], cut: bool) {
        if self.sizeless.is_empty() {
            return;
        }
        let Some(oldest) = rows.iter().filter_map(|r| r.timestamp).min() else {
            return;
        };
        let whole: HashSet<(&str, &str, &str, Decimal)> = rows
            .iter()
            .filter(|r| r.timestamp.is_some_and(|t| !cut || t > oldest))
            .filter_map(|r| {
                Some((
                    r.transaction_hash.as_deref()?,
                    r.asset.as_deref()?,
                    r.side.as_deref()?,
                    r.price?,
                ))
            })
            .collect();
        let mut settled = 0;
        self.sizeless.retain(|s| {
            let (Some(tx), side) = (s.trade.transaction_hash.as_deref(), s.trade.side.as_str())
            else {
                return true;
            };
            let whole = whole.iter().any(|(t, a, sd, p)| {
                *t == tx
                    && *a == s.trade.token_id
                    && sd.eq_ignore_ascii_case(side)
                    && *p == s.trade.price
            });
            // One that got no size from the page was already stored: a duplicate.
            settled += u64::from(whole && s.filled == 0);
            !whole
        });
        self.counts.duplicates += settled;
    }

    /// A Data API row as a trade and its identity (before the ordinal): `None` when it is not
    /// a usable trade, its amounts have more than 6 decimals, or its market is unknown.
    fn identify(&self, row: &DataTrade) -> Option<(polytape_core::Trade, TradeIdentity)> {
        let t = row.to_trade().ok()?;
        let (price_micros, size_micros) = (micros(t.price)?, micros(t.size)?);
        let condition_id = self
            .assets
            .get(&t.token_id)
            .map(|a| a.condition_id.to_string())
            .or_else(|| row.condition_id.clone())?;
        let identity = TradeIdentity {
            condition_id,
            token_id: t.token_id.clone(),
            transaction_hash: row.transaction_hash.clone().unwrap_or_default(),
            side: t.side,
            price_micros,
            size_micros,
        };
        Some((t, identity))
    }

    /// Rows fetched to find the sizes of trades that came without one (G3): they give those
    /// trades their sizes and store nothing else — the time they cover was heard live, and a
    /// row that does not meet its live trade's key must not become a second trade.
    pub fn on_sizes(&mut self, recv_ms: i64, rows: &[DataTrade], cut: bool) {
        let mut ordinals: FxHashMap<IdentityDigest, u64> = FxHashMap::default();
        for row in rows {
            let Some((t, identity)) = self.identify(row) else {
                continue;
            };
            if identity.transaction_hash.is_empty() {
                continue;
            }
            let k = ordinals.entry(identity.digest()).or_default();
            let key = identity.key(*k);
            *k += 1;
            if !self.memory.knows(&key) {
                self.fill_size(&identity, key, t.size, recv_ms);
            }
        }
        self.settle_sizeless(rows, cut);
        self.advance(recv_ms);
    }

    /// G3: a Data API row, not stored yet, for a WebSocket trade that came without its size
    /// (same transaction, token, side and price): the trade takes the row's size and key.
    fn fill_size(
        &mut self,
        identity: &TradeIdentity,
        key: TradeKey,
        size: Decimal,
        recv_ms: i64,
    ) -> bool {
        let Some(i) = self.sizeless.iter().position(|s| {
            s.trade.transaction_hash.as_deref() == Some(identity.transaction_hash.as_str())
                && s.trade.token_id == identity.token_id
                && s.trade.side == identity.side
                && micros(s.trade.price) == Some(identity.price_micros)
        }) else {
            return false;
        };
        // Kept until a page holds the transaction whole: another row of it may be another fill
        // that came without its size the same way (see `Sizeless::filled`).
        let s = &mut self.sizeless[i];
        s.filled += 1;
        let mut trade = s.trade.clone();
        // Later WebSocket trades of this identity take the ordinals after it.
        let d = identity.digest();
        let mut times = self.memory.take_times(d);
        times.push(trade.trade_ts.timestamp_millis());
        self.memory.put_times(d, times, recv_ms);
        self.remember(key, recv_ms);
        trade.trade_key = key.hex();
        trade.size = Some(size);
        trade.size_source = SizeSource::DataApi;
        self.counts.trades_ws += 1;
        self.counts.size_from_data_api += 1;
        self.counts.stale += u64::from(trade.stale);
        self.counts.divergent += u64::from(trade.divergent);
        self.accept(trade, size, recv_ms);
        true
    }

    fn matches_unhashed(
        &mut self,
        t: &polytape_core::Trade,
        price_micros: i64,
        size_micros: i64,
    ) -> bool {
        let d = unhashed_digest(&t.token_id, t.side, price_micros, size_micros);
        let block_ms = t.ts.timestamp_millis();
        self.memory.take_unhashed(d, |ms| {
            block_ms >= ms - UNHASHED_BEFORE_MS && block_ms <= ms + UNHASHED_AFTER_MS
        })
    }

    /// A key not seen before is remembered; false when it was already known.
    fn remember(&mut self, key: TradeKey, at_ms: i64) -> bool {
        self.memory.remember(key, at_ms)
    }

    /// A new trade: into its market's window, out as a stored trade (and a whale event).
    fn accept(&mut self, mut trade: StoredTrade, size: Decimal, recv_ms: i64) {
        // Stored as DECIMAL(18,6): rounded here, so a replay compares equal to the table.
        let notional = (trade.price * size).round_dp(6);
        let tier = polytape_core::flow::whale_tier(notional);
        trade.notional = Some(notional);
        trade.whale_tier = Some(tier);
        if let Some(outcome) = trade.outcome_index {
            let flow = FlowTrade::of(
                trade.trade_ts,
                usize::from(outcome),
                trade.side,
                trade.price,
                size,
            );
            self.window(&trade.condition_id.clone()).push(flow);
        } else {
            self.counts.unregistered_trades += 1;
        }
        if tier >= polytape_core::flow::WHALE_MIN_TIER && trade.source == Source::Ws {
            self.counts.whales += 1;
            self.whales.push(PendingWhale {
                at_ms: trade.trade_ts.timestamp_millis().max(recv_ms - 1),
                event: WhaleEvent {
                    trade_key: trade.trade_key.clone(),
                    condition_id: trade.condition_id.clone(),
                    token_id: trade.token_id.clone(),
                    side: trade.side,
                    price: trade.price,
                    size,
                    notional,
                    whale_tier: tier,
                    trade_ts: trade.trade_ts,
                    price_before: trade.mid,
                    price_after_1m: None,
                    price_after_5m: None,
                    impact_1m: None,
                    impact_5m: None,
                },
            });
        }
        self.out.push(Output::Trade(Box::new(trade)));
    }

    /// Moves time to `now_ms`: trades that waited long enough for a size are stored without,
    /// whale events take their after-prices, old keys are forgotten.
    pub fn advance(&mut self, now_ms: i64) {
        self.expire_sizeless(now_ms, false);

        let mut i = 0;
        while i < self.whales.len() {
            let w = &mut self.whales[i];
            let due_1m = w.event.price_after_1m.is_none() && now_ms >= w.at_ms + 60_000;
            if !due_1m && now_ms < w.at_ms + 300_000 {
                i += 1;
                continue;
            }
            let mid = self.tops.get(&w.event.token_id).and_then(|t| t.mid());
            if due_1m {
                w.event.price_after_1m = mid;
                w.event.impact_1m = diff(mid, w.event.price_before);
            }
            if now_ms >= w.at_ms + 300_000 {
                let mut done = self.whales.swap_remove(i);
                done.event.price_after_5m = mid;
                done.event.impact_5m = diff(mid, done.event.price_before);
                self.out.push(Output::Whale(Box::new(done.event)));
                continue;
            }
            i += 1;
        }

        // The sweeps below touch every window: once a second is enough.
        if now_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = now_ms + 1000;
        let horizon = self.horizon(now_ms);
        self.memory.forget_before(horizon);
        let window_from = now_ms - 3_600_000;
        for w in self.windows.values_mut() {
            w.evict_before(window_from);
        }
    }

    /// What was remembered before this is forgotten: the retention before now, or before the
    /// start of a gap that holds (open, or closed within the retention), but never more than
    /// [`FeedConfig::key_retention_max_ms`] before now.
    fn horizon(&mut self, now_ms: i64) -> i64 {
        let retention = self.config.key_retention_ms;
        let floor = now_ms - self.config.key_retention_max_ms.max(retention);
        self.gap_holds
            .retain(|h| h.closed_ms.is_none_or(|c| c >= now_ms - retention));
        let held = self.gap_holds.iter().map(|h| h.from_ms).min();
        (held.unwrap_or(now_ms).min(now_ms) - retention).max(floor)
    }

    /// Stores the trades whose wait for a size ended (all of them when `all`) without one.
    fn expire_sizeless(&mut self, now_ms: i64, all: bool) {
        let mut i = 0;
        while i < self.sizeless.len() {
            if !all && self.sizeless[i].until_ms > now_ms {
                i += 1;
                continue;
            }
            let Sizeless {
                mut trade, filled, ..
            } = self.sizeless.swap_remove(i);
            if filled > 0 {
                // Its fills were stored with their sizes.
                continue;
            }
            let ts_ms = trade.trade_ts.timestamp_millis();
            let identity = TradeIdentity {
                condition_id: trade.condition_id.clone(),
                token_id: trade.token_id.clone(),
                transaction_hash: trade.transaction_hash.clone().unwrap_or_default(),
                side: trade.side,
                price_micros: micros(trade.price).unwrap_or_default(),
                size_micros: -1,
            };
            let key = identity.key(ts_ms as u64);
            if !self.remember(key, now_ms) {
                self.counts.duplicates += 1;
                continue;
            }
            trade.trade_key = key.hex();
            trade.size_source = SizeSource::Missing;
            self.counts.trades_ws += 1;
            self.counts.size_missing += 1;
            self.counts.stale += u64::from(trade.stale);
            self.counts.divergent += u64::from(trade.divergent);
            self.out.push(Output::Trade(Box::new(trade)));
        }
    }

    /// Shutting down: whale events still waiting for their after-prices go out as they are,
    /// and trades still waiting for a size are stored without one (counted as missing).
    pub fn flush(&mut self, now_ms: i64) {
        self.expire_sizeless(now_ms, true);
        for w in self.whales.drain(..) {
            self.out.push(Output::Whale(Box::new(w.event)));
        }
    }

    /// What the feed produced since the last call.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// The last-hour flow of every market covered for the whole hour before `now_ms`.
    pub fn flow(&self, now_ms: i64) -> BTreeMap<String, TradeFlow> {
        let now = ts_of(now_ms);
        self.windows
            .iter()
            .filter(|(_, w)| w.coverage.covers(now_ms - 3_600_000, now_ms))
            .map(|(cid, w)| (cid.to_string(), w.flow(now)))
            .collect()
    }
}

fn diff(after: Option<Decimal>, before: Option<Decimal>) -> Option<Decimal> {
    Some(after? - before?)
}

pub(crate) fn ts_of(ms: i64) -> Ts {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
