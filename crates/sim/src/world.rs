//! World generation: events of 1–4 markets, each market tradeable or one kind of trap, all drawn
//! from the seed with end dates relative to `SimConfig::now`.
//!
//! Generation order is fixed (slots shuffled, then grouped into events), ids increase with
//! generation order, so `markets` and `events` are sorted by id.
//!
//! A rolling world (`SimConfig::new_markets_per_hour > 0`) then evolves with the sim clock in
//! [`World::advance`]: arrivals are appended (ids keep increasing, so both lists stay sorted),
//! markets close `resolve_after` past their end and go on to a final result ([`resolution`]), and
//! final markets are dropped [`PRUNE_AFTER_H`] later. Each arrival is a pure function of (seed,
//! arrival index), never of when requests came, so the same seed gives the same stream.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rust_decimal::Decimal;

use crate::rng::{mix, unit, SplitMix64};
use crate::{MarketKind, SimConfig, SimResult, TruthStage};

mod resolution;

/// Longest time-to-close of an arrival, hours; also how far before `SimConfig::now` the arrival
/// stream starts, so the tiers are already in steady state at `now` instead of filling up over
/// two weeks.
pub(crate) const MAX_TTC_H: f64 = 336.0;
/// Shortest time-to-close of an arrival, hours (exclusive).
const MIN_TTC_H: f64 = 1.0;
/// A rolling world drops a market this many hours after it became final (Gamma's `closed=false`
/// filter hides it long before), so a run of weeks holds a bounded number of markets.
pub(crate) const PRUNE_AFTER_H: i64 = 48;
/// Dropping re-indexes the world (O(markets)), so it runs at most once per sim hour.
const PRUNE_EVERY_H: i64 = 1;
/// A guard: the warm start materialises up to `rate × 336 h` arrivals at once.
pub(crate) const MAX_ARRIVALS_PER_HOUR: f64 = 600.0;
/// Share of arrivals that are LowVolume traps, and of NoOrderBook traps.
const ARRIVAL_TRAP_SHARE: f64 = 0.05;

/// Independent lanes of the seed, so rolling draws never disturb the static world's sequence.
const ARRIVAL_LANE: u64 = 0xA881_7A15_0000_0001;
const GROUP_LANE: u64 = 0xA881_7A15_0000_0002;
/// Which markets are served with drifted field types (`SimConfig::schema_drift`).
const DRIFT_LANE: u64 = 0xA881_7A15_0000_0004;
/// Which markets charge fees ([`World::fees`]).
const FEE_LANE: u64 = 0xA881_7A15_0000_0008;

/// Hours-to-close buckets of the tier table, (lo, hi].
pub(crate) const BUCKETS: [(f64, f64); 5] = [
    (0.0, 1.0),
    (1.0, 4.0),
    (4.0, 12.0),
    (12.0, 48.0),
    (48.0, 336.0),
];

/// Keep generated end dates this far from bucket edges, so a few seconds of sim time (or the
/// truncation of fractional digits) never move a market into the neighbouring bucket.
const EDGE_MARGIN_S: f64 = 120.0;

const TRAP_KINDS: [MarketKind; 8] = [
    MarketKind::PastEnd,
    MarketKind::Closed,
    MarketKind::Resolved,
    MarketKind::NoOrderBook,
    MarketKind::TransientTokens,
    MarketKind::NonBinary,
    MarketKind::LowVolume,
    MarketKind::BeyondLookahead,
];

/// The immutable world.
#[derive(Debug)]
pub(crate) struct World {
    pub seed: u64,
    pub now: DateTime<Utc>,
    pub book_levels: (usize, usize),
    /// Fraction of markets served with drifted field types, in [0, 1].
    pub schema_drift: f64,
    /// Keyset cursors are padded to this many bytes.
    pub cursor_len: usize,
    /// How long the CLOB market endpoint keeps showing a final market open, without a winner.
    pub clob_resolution_lag: Duration,
    /// Condition ids removed by `delist`, in order.
    pub delisted: Vec<String>,
    /// Sorted by id.
    pub markets: Vec<SimMarket>,
    /// Sorted by id.
    pub events: Vec<SimEvent>,
    /// Non-empty condition id → market index.
    pub by_condition: HashMap<String, usize>,
    /// Token id of a market with a live book → (market index, outcome index).
    pub books: HashMap<String, (usize, usize)>,
    /// Ids of the busy markets (`SimConfig::busy_markets`), which trade many times a second.
    pub busy: HashSet<u64>,
    /// The most a transaction's block time trails its match time, ms (`SimConfig::block_lag`).
    pub block_lag_ms: i64,
    /// Arrivals, resolution courses and pruning; `None` for the static world.
    rolling: Option<Rolling>,
}

/// One generated market.
#[derive(Debug, Clone)]
pub(crate) struct SimMarket {
    pub id: u64,
    pub event: usize,
    pub kind: MarketKind,
    pub condition_id: String,
    pub question_id: String,
    pub question: String,
    pub slug: String,
    pub description: String,
    pub group_item_title: Option<String>,
    pub category: Option<String>,
    pub outcomes: Vec<String>,
    /// Token ids as served (transient markets: empty or empty strings).
    pub token_ids: Vec<String>,
    /// The `clobTokenIds` string exactly as served.
    pub clob_token_ids: String,
    pub end_date: DateTime<Utc>,
    pub end_digits: u32,
    pub start_date: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub date_digits: u32,
    /// Open, closed, proposed, disputed or final; `closed` and `resolved` derive from it.
    pub stage: TruthStage,
    /// `umaResolutionStatuses` as served for a proposed, disputed or final stage: the history,
    /// which may stop short of the current status.
    pub uma_statuses: Vec<&'static str>,
    /// When trading stopped (to the second); kept once set.
    pub closed_time: Option<DateTime<Utc>>,
    /// Sim time the result became final.
    pub final_at: Option<DateTime<Utc>>,
    /// Moved by a `SimHandle` knob, so a rolling world's course no longer drives it.
    pub hand_driven: bool,
    pub enable_order_book: bool,
    pub accepting_orders: bool,
    pub volume_24h: Decimal,
    pub volume_1wk: Decimal,
    pub volume_1mo: Decimal,
    pub volume_total: Decimal,
    pub liquidity: Decimal,
    pub competitive: Decimal,
    pub neg_risk: bool,
    pub neg_risk_market_id: Option<String>,
    /// Decimal places of the tick: 2 (0.01) or 3 (0.001).
    pub tick_scale: u32,
    pub order_min_size: u32,
    /// Keys the price walk (independent of token ids, so transient markets have prices too).
    pub price_key: u64,
    /// Starting probability of outcome 0.
    pub p0: f64,
    /// A live CLOB book exists for every token.
    pub has_book: bool,
    /// Closed markets: prices frozen at this sim second.
    pub frozen_step: Option<i64>,
    /// When the live book of a market that had one was taken down (trading stopped), epoch ms:
    /// its trades before then stay in the Data API, as Polymarket keeps a closed market's history.
    pub book_until_ms: Option<i64>,
    pub omit: Omit,
    /// Sim time a rolling-world arrival appeared; `None` for the generated world.
    pub arrived_at: Option<DateTime<Utc>>,
}

/// Optional Gamma fields left out of this market's object.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Omit {
    pub liquidity: bool,
    pub last_trade_price: bool,
    pub one_hour: bool,
    pub one_week: bool,
    pub one_month: bool,
    pub volume_1yr: bool,
}

/// One generated event.
#[derive(Debug, Clone)]
pub(crate) struct SimEvent {
    pub id: u64,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub neg_risk: bool,
    pub neg_risk_market_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub comment_count: u64,
    /// Market indices.
    pub markets: Vec<usize>,
}

impl SimMarket {
    /// Ticks per unit price (100 or 1000).
    pub fn units(&self) -> i64 {
        10i64.pow(self.tick_scale)
    }

    /// The tick as a decimal.
    pub fn tick(&self) -> Decimal {
        Decimal::new(1, self.tick_scale)
    }

    /// Whether outcome `o` has its own price walk (binary NO is the mirror of YES).
    pub fn binary(&self) -> bool {
        self.outcomes.len() == 2
    }

    /// `image` and `icon`.
    pub fn image_url(&self) -> String {
        format!(
            "https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{}.png",
            self.slug
        )
    }

    /// `negRiskRequestID` (served only for neg-risk markets).
    pub fn neg_risk_request_id(&self) -> String {
        hex_of(&[self.price_key, 0x4e52], 64)
    }

    /// `closed` as served: any stage past open.
    pub fn closed(&self) -> bool {
        self.stage.is_closed()
    }

    /// The result is final (with or without `umaResolutionStatus`).
    pub fn resolved(&self) -> bool {
        self.stage.is_final()
    }
}

impl World {
    /// Generates the world of `cfg`.
    pub fn generate(cfg: &SimConfig) -> World {
        let mut rng = SplitMix64::new(cfg.seed ^ 0x5EED_F00D_A11C_0DE5);
        let now = cfg.now;

        let mut slots: Vec<(MarketKind, Option<usize>)> = Vec::new();
        for b in 0..BUCKETS.len() {
            for _ in 0..cfg.markets_per_tier {
                slots.push((MarketKind::Tradeable, Some(b)));
            }
        }
        for kind in TRAP_KINDS {
            for _ in 0..cfg.traps_per_kind() {
                slots.push((kind, None));
            }
        }
        rng.shuffle(&mut slots);

        let mut markets: Vec<SimMarket> = Vec::with_capacity(slots.len());
        let mut events: Vec<SimEvent> = Vec::new();
        let mut next_market_id = 540_000 + rng.range(0, 9_999);
        let mut next_event_id = 21_000 + rng.range(0, 999);
        let mut transient_seq = 0usize;
        let mut i = 0;
        while i < slots.len() {
            let want = *rng.pick(&[1usize, 1, 1, 1, 1, 2, 2, 3, 3, 4]);
            let k = want.min(slots.len() - i);
            let group = &slots[i..i + k];
            i += k;

            let all_binary = group.iter().all(|(kind, _)| *kind != MarketKind::NonBinary);
            let neg_risk = k >= 2 && all_binary && rng.chance(0.5);
            let up_down = k == 1 && all_binary && rng.chance(0.2);
            let subject = rng.pick(SUBJECTS).to_string();
            let created_at = now - Duration::seconds(rng.range(86_400, 60 * 86_400) as i64);
            let event_idx = events.len();
            let event_id = next_event_id;
            next_event_id += rng.range(1, 29);
            let neg_risk_market_id = neg_risk.then(|| hex_id(&mut rng, 64));

            let (title, competition) = if neg_risk {
                let comp = rng.pick(COMPETITIONS).to_string();
                (format!("Who will win {comp}?"), Some(comp))
            } else if up_down {
                let asset = rng.pick(ASSETS);
                (
                    format!(
                        "{asset} Up or Down - {}",
                        (now + Duration::hours(1)).format("%B %-d, %-I%p ET")
                    ),
                    None,
                )
            } else {
                let verb = rng.pick(VERBS);
                (format!("Will {subject} {verb}?"), None)
            };
            let mut names: Vec<&str> = CANDIDATES.to_vec();
            rng.shuffle(&mut names);

            let mut event = SimEvent {
                id: event_id,
                slug: slugify(&title, event_id),
                title: title.clone(),
                description: format!(
                    "This event is about: {title}. Markets resolve per the rules of each market."
                ),
                neg_risk,
                neg_risk_market_id: neg_risk_market_id.clone(),
                created_at,
                comment_count: rng.range(0, 900),
                markets: Vec::with_capacity(k),
            };

            for (j, &(kind, bucket)) in group.iter().enumerate() {
                let id = next_market_id;
                next_market_id += rng.range(1, 37);
                let (question, group_item_title) = match &competition {
                    Some(comp) => (
                        format!("Will {} win {comp}?", names[j % names.len()]),
                        Some(names[j % names.len()].to_string()),
                    ),
                    None if k == 1 => (title.clone(), None),
                    None => {
                        // One question with several deadlines (what `term_structure` trades):
                        // the event's question, "by" a date. The draw is kept so the seed's
                        // sequence stays what it was.
                        let _ = rng.pick(VERBS);
                        let q = deadline_question(
                            &title,
                            (now + Duration::days(j as i64 + 1)).format("%B %-d"),
                        );
                        (q, None)
                    }
                };
                let outcomes: Vec<String> = if kind == MarketKind::NonBinary {
                    rng.pick(&[["Over", "Under", "Push"], ["Home", "Away", "Draw"]])
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                } else if up_down {
                    vec!["Up".into(), "Down".into()]
                } else {
                    vec!["Yes".into(), "No".into()]
                };
                let m = make_market(
                    &mut rng,
                    now,
                    MarketSeed {
                        id,
                        event: event_idx,
                        kind,
                        bucket,
                        question,
                        group_item_title,
                        outcomes,
                        neg_risk,
                        neg_risk_market_id: neg_risk_market_id.clone(),
                        created_at,
                        transient_variant: if kind == MarketKind::TransientTokens {
                            transient_seq += 1;
                            transient_seq - 1
                        } else {
                            0
                        },
                        hours: None,
                    },
                );
                event.markets.push(markets.len());
                markets.push(m);
            }
            events.push(event);
        }

        let markets_for_busy: Vec<(DateTime<Utc>, u64)> = markets
            .iter()
            .filter(|m| m.kind == MarketKind::Tradeable && m.has_book)
            .map(|m| (m.end_date, m.id))
            .collect();
        let mut world = World {
            seed: cfg.seed,
            now,
            book_levels: cfg.book_levels,
            schema_drift: if cfg.schema_drift.is_finite() {
                cfg.schema_drift.clamp(0.0, 1.0)
            } else {
                0.0
            },
            cursor_len: cfg.cursor_len,
            clob_resolution_lag: Duration::from_std(cfg.clob_resolution_lag)
                .unwrap_or(Duration::zero()),
            delisted: Vec::new(),
            markets,
            events,
            by_condition: HashMap::new(),
            books: HashMap::new(),
            busy: busy_markets(&markets_for_busy, cfg.busy_markets),
            block_lag_ms: cfg.block_lag.as_millis().min(60_000) as i64,
            rolling: None,
        };
        world.reindex();
        world.rolling = Rolling::new(cfg, &world);
        world
    }

    /// Rebuilds the condition-id and book indices from `markets`.
    fn reindex(&mut self) {
        self.by_condition.clear();
        self.books.clear();
        for idx in 0..self.markets.len() {
            self.index_market(idx);
        }
    }

    fn index_market(&mut self, idx: usize) {
        let m = &self.markets[idx];
        if !m.condition_id.is_empty() {
            self.by_condition.insert(m.condition_id.clone(), idx);
        }
        if m.has_book {
            for (o, t) in m.token_ids.iter().enumerate() {
                if !t.is_empty() {
                    self.books.insert(t.clone(), (idx, o));
                }
            }
        }
    }

    /// What `m` charges: a pure function of (seed, market id), so the draws of the world are
    /// not disturbed and arrivals of a rolling world charge in the same proportions. 3 % or
    /// 4 % (exponent 1, a quarter rebated) on [`FEE_SCHEDULE_SHARE`] of the markets, fees
    /// enabled without a schedule on [`FEE_NO_SCHEDULE_SHARE`], none on the rest.
    pub fn fees(&self, m: &SimMarket) -> SimFees {
        let u = unit(mix(&[self.seed, FEE_LANE, m.id]));
        if u < FEE_SCHEDULE_SHARE {
            SimFees::Schedule {
                rate: if u < FEE_SCHEDULE_SHARE / 2.0 {
                    Decimal::new(3, 2)
                } else {
                    Decimal::new(4, 2)
                },
                exponent: 1,
                rebate_rate: Decimal::new(25, 2),
            }
        } else if u < FEE_SCHEDULE_SHARE + FEE_NO_SCHEDULE_SHARE {
            SimFees::EnabledWithoutSchedule
        } else {
            SimFees::Disabled
        }
    }

    /// Whether `m` is served with drifted field types: a pure function of (seed, market id), so
    /// arrivals of a rolling world drift in the same proportion.
    pub fn drifted(&self, m: &SimMarket) -> bool {
        self.schema_drift > 0.0 && unit(mix(&[self.seed, DRIFT_LANE, m.id])) < self.schema_drift
    }

    /// Whether [`World::advance`] to `now` would change anything (checked under a read lock, so
    /// the write lock is taken only when needed).
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        let Some(r) = &self.rolling else {
            return false;
        };
        r.next_at <= now
            || r.due.peek().is_some_and(|Reverse((t, _, _))| *t <= now)
            || r.prune_due(now)
    }

    /// Brings a rolling world to `now`: adds every arrival up to `now`, takes every market whose
    /// end passed more than `resolve_after` ago along its resolution course, and drops markets
    /// final for more than [`PRUNE_AFTER_H`]. Work is proportional to what changed (pruning, at
    /// most hourly, is O(markets)). A static world is left as generated.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        let Some(mut r) = self.rolling.take() else {
            return;
        };
        self.arrive(&mut r, now);
        self.resolve(&mut r, now);
        self.prune(&mut r, now);
        self.rolling = Some(r);
    }

    /// The kind of `m` as of `now`: in a rolling world an open market past its end reads
    /// `PastEnd` (until it closes), and a `BeyondLookahead` one inside the lookahead reads
    /// `Tradeable`; the static world keeps the kinds it was generated with.
    pub fn kind_at(&self, m: &SimMarket, now: DateTime<Utc>) -> MarketKind {
        if self.rolling.is_none() || m.closed() {
            return m.kind;
        }
        if m.end_date <= now {
            MarketKind::PastEnd
        } else if m.kind == MarketKind::BeyondLookahead && m.end_date <= now + hours(MAX_TTC_H) {
            MarketKind::Tradeable
        } else {
            m.kind
        }
    }

    fn arrive(&mut self, r: &mut Rolling, now: DateTime<Utc>) {
        while r.next_at <= now {
            let i = r.next;
            let head = r.head(self.seed, i);
            if i >= r.group.first + r.group.size {
                r.group = Group::new(self.seed, r.group.index + 1, i, head.at, r.event_base);
            }
            let end = head.at + hours(head.ttc_h);
            // Arrivals of the warm start that would already be dropped are never built.
            if end + r.resolve_after + r.longest_course() + Duration::hours(PRUNE_AFTER_H) > now {
                self.materialise(r, i, head);
            }
            r.next = i + 1;
            r.next_at = r.head(self.seed, r.next).at;
        }
    }

    fn materialise(&mut self, r: &mut Rolling, i: u64, head: Head) {
        let Head {
            mut rng,
            at,
            ttc_h,
            id,
        } = head;
        let u = rng.next_f64();
        let kind = if u < ARRIVAL_TRAP_SHARE {
            MarketKind::LowVolume
        } else if u < 2.0 * ARRIVAL_TRAP_SHARE {
            MarketKind::NoOrderBook
        } else {
            MarketKind::Tradeable
        };
        let g = &r.group;
        let j = (i - g.first) as usize;
        let (question, group_item_title) = match &g.competition {
            Some(comp) => {
                let name = g.names[j % g.names.len()];
                (format!("Will {name} win {comp}?"), Some(name.to_string()))
            }
            None if g.size == 1 => (g.title.clone(), None),
            None => {
                let _ = rng.pick(VERBS);
                let by = (at + Duration::days(j as i64 + 1)).format("%B %-d");
                (deadline_question(&g.title, by), None)
            }
        };
        let outcomes: Vec<String> = if g.up_down {
            vec!["Up".into(), "Down".into()]
        } else {
            vec!["Yes".into(), "No".into()]
        };
        let event = self.event_of(g);
        let mut m = make_market(
            &mut rng,
            at,
            MarketSeed {
                id,
                event,
                kind,
                bucket: None,
                question,
                group_item_title,
                outcomes,
                neg_risk: g.neg_risk,
                neg_risk_market_id: g.neg_risk_market_id.clone(),
                created_at: at - Duration::minutes(10),
                transient_variant: 0,
                hours: Some(ttc_h),
            },
        );
        m.arrived_at = Some(at);
        r.due.push(Reverse((m.end_date + r.resolve_after, m.id, 0)));
        let idx = self.markets.len();
        self.events[event].markets.push(idx);
        self.markets.push(m);
        self.index_market(idx);
    }

    /// The index of `g`'s event, created on its first materialised member (or again, if all its
    /// earlier members were dropped). Its id is the largest so far, so `events` stays sorted.
    fn event_of(&mut self, g: &Group) -> usize {
        if let Ok(k) = self.events.binary_search_by_key(&g.event_id, |e| e.id) {
            return k;
        }
        self.events.push(SimEvent {
            id: g.event_id,
            slug: slugify(&g.title, g.event_id),
            title: g.title.clone(),
            description: format!(
                "This event is about: {}. Markets resolve per the rules of each market.",
                g.title
            ),
            neg_risk: g.neg_risk,
            neg_risk_market_id: g.neg_risk_market_id.clone(),
            created_at: g.created_at,
            comment_count: g.comment_count,
            markets: Vec::new(),
        });
        self.events.len() - 1
    }

    fn prune(&mut self, r: &mut Rolling, now: DateTime<Utc>) {
        if !r.prune_due(now) {
            return;
        }
        let cutoff = now - Duration::hours(PRUNE_AFTER_H);
        let mut gone = HashSet::new();
        while let Some(&(t, id)) = r.resolved.front() {
            if t > cutoff {
                break;
            }
            r.resolved.pop_front();
            gone.insert(id);
        }
        r.last_prune = Some(now);
        self.drop_markets(&gone);
    }

    /// Removes the markets with these ids, events left without markets, and re-indexes.
    fn drop_markets(&mut self, gone: &HashSet<u64>) {
        if gone.is_empty() {
            return;
        }
        let old_event_ids: Vec<u64> = self.events.iter().map(|e| e.id).collect();
        let event_id_of = |m: &SimMarket| old_event_ids.get(m.event).copied();
        self.markets.retain(|m| !gone.contains(&m.id));
        let live: HashSet<u64> = self.markets.iter().filter_map(event_id_of).collect();
        self.events.retain(|e| live.contains(&e.id));
        let pos: HashMap<u64, usize> = self
            .events
            .iter()
            .enumerate()
            .map(|(k, e)| (e.id, k))
            .collect();
        for e in &mut self.events {
            e.markets.clear();
        }
        for (idx, m) in self.markets.iter_mut().enumerate() {
            if let Some(&k) = event_id_of(m).and_then(|id| pos.get(&id)) {
                m.event = k;
                self.events[k].markets.push(idx);
            }
        }
        self.reindex();
    }
}

/// The arrival stream of a rolling world.
#[derive(Debug)]
struct Rolling {
    per_hour: f64,
    /// Arrival `i` appears in the slot `[origin + i/rate h, origin + (i+1)/rate h)`.
    origin: DateTime<Utc>,
    resolve_after: Duration,
    /// How long a proposal stands before it is final.
    finalize_after: Duration,
    market_base: u64,
    event_base: u64,
    /// The next arrival not yet added, and its time.
    next: u64,
    next_at: DateTime<Utc>,
    /// The event the current arrivals join.
    group: Group,
    /// (time, market id, step of its course) of every next step still to take.
    due: BinaryHeap<Reverse<(DateTime<Utc>, u64, usize)>>,
    /// (time it became final, market id) of final markets not yet dropped, oldest first.
    resolved: VecDeque<(DateTime<Utc>, u64)>,
    last_prune: Option<DateTime<Utc>>,
}

/// What an arrival's own generator yields first: enough to skip it cheaply.
struct Head {
    rng: SplitMix64,
    at: DateTime<Utc>,
    ttc_h: f64,
    id: u64,
}

impl Rolling {
    fn new(cfg: &SimConfig, world: &World) -> Option<Rolling> {
        let rate = cfg.new_markets_per_hour;
        if rate.is_nan() || rate <= 0.0 {
            return None;
        }
        let resolve_after = Duration::from_std(cfg.resolve_after).unwrap_or(Duration::hours(1));
        let finalize_after = Duration::from_std(cfg.finalize_after).unwrap_or(Duration::hours(2));
        let max_market = world.markets.last().map_or(0, |m| m.id);
        let max_event = world.events.last().map_or(0, |e| e.id);
        let mut r = Rolling {
            per_hour: rate.min(MAX_ARRIVALS_PER_HOUR),
            origin: cfg.now - hours(MAX_TTC_H),
            resolve_after,
            finalize_after,
            market_base: (max_market / 100_000 + 1) * 100_000,
            event_base: (max_event / 10_000 + 1) * 10_000,
            next: 0,
            next_at: cfg.now,
            group: Group::empty(),
            due: BinaryHeap::new(),
            resolved: VecDeque::new(),
            last_prune: None,
        };
        let first = r.head(cfg.seed, 0).at;
        r.next_at = first;
        r.group = Group::new(cfg.seed, 0, 0, first, r.event_base);
        // Generated markets still to end resolve too; traps already past their end (PastEnd,
        // closed ones) stay as generated so discovery keeps meeting them.
        for m in &world.markets {
            let at = m.end_date + resolve_after;
            if !m.resolved() && m.kind != MarketKind::PastEnd && at > cfg.now {
                r.due.push(Reverse((at, m.id, 0)));
            }
        }
        Some(r)
    }

    fn head(&self, seed: u64, i: u64) -> Head {
        let mut rng = SplitMix64::new(mix(&[seed, ARRIVAL_LANE, i]));
        let slot_h = (i as f64 + rng.next_f64()) / self.per_hour;
        let at = self.origin + hours(slot_h);
        let ttc_h = MAX_TTC_H - (MAX_TTC_H - MIN_TTC_H) * rng.next_f64();
        let id = self.market_base + i * 8 + rng.range(0, 7);
        Head { rng, at, ttc_h, id }
    }

    /// From close to final on the longest course (a disputed one).
    fn longest_course(&self) -> Duration {
        self.finalize_after * 2
    }

    fn prune_due(&self, now: DateTime<Utc>) -> bool {
        self.last_prune
            .is_none_or(|t| now - t >= Duration::hours(PRUNE_EVERY_H))
            && self
                .resolved
                .front()
                .is_some_and(|(t, _)| *t + Duration::hours(PRUNE_AFTER_H) <= now)
    }
}

/// The event a run of consecutive arrivals shares (1–4 of them, like the generated world).
#[derive(Debug)]
struct Group {
    index: u64,
    /// Arrival index of its first member.
    first: u64,
    size: u64,
    event_id: u64,
    neg_risk: bool,
    up_down: bool,
    title: String,
    competition: Option<String>,
    names: Vec<&'static str>,
    comment_count: u64,
    neg_risk_market_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl Group {
    /// A placeholder, replaced by group 0 as soon as the stream is set up.
    fn empty() -> Group {
        Group {
            index: 0,
            first: 0,
            size: 0,
            event_id: 0,
            neg_risk: false,
            up_down: false,
            title: String::new(),
            competition: None,
            names: Vec::new(),
            comment_count: 0,
            neg_risk_market_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn new(seed: u64, index: u64, first: u64, first_at: DateTime<Utc>, event_base: u64) -> Group {
        let mut rng = SplitMix64::new(mix(&[seed, GROUP_LANE, index]));
        let size = *rng.pick(&[1u64, 1, 1, 1, 1, 2, 2, 3, 3, 4]);
        let neg_risk = size >= 2 && rng.chance(0.5);
        let up_down = size == 1 && rng.chance(0.2);
        let subject = rng.pick(SUBJECTS).to_string();
        let event_id = event_base + index * 4 + rng.range(0, 3);
        let neg_risk_market_id = neg_risk.then(|| hex_id(&mut rng, 64));
        let (title, competition) = if neg_risk {
            let comp = rng.pick(COMPETITIONS).to_string();
            (format!("Who will win {comp}?"), Some(comp))
        } else if up_down {
            let asset = rng.pick(ASSETS);
            let hour = (first_at + Duration::hours(1)).format("%B %-d, %-I%p ET");
            (format!("{asset} Up or Down - {hour}"), None)
        } else {
            let verb = rng.pick(VERBS);
            (format!("Will {subject} {verb}?"), None)
        };
        let mut names: Vec<&'static str> = CANDIDATES.to_vec();
        rng.shuffle(&mut names);
        Group {
            index,
            first,
            size,
            event_id,
            neg_risk,
            up_down,
            title,
            competition,
            names,
            comment_count: rng.range(0, 900),
            neg_risk_market_id,
            created_at: (first_at - Duration::minutes(10)).trunc_subsecs(0),
        }
    }
}

/// One deadline of an event's question: "Will X happen?" → "Will X happen by June 30?".
fn deadline_question(title: &str, by: impl std::fmt::Display) -> String {
    format!("{} by {by}?", title.trim_end_matches('?'))
}

/// What a market charges, as Gamma states it (`feesEnabled`, `feeSchedule`, `feeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimFees {
    /// `feesEnabled: false`, no schedule (most markets).
    Disabled,
    /// `feesEnabled: true` with a `feeSchedule` (as the recorded sports markets).
    Schedule {
        rate: Decimal,
        exponent: u32,
        rebate_rate: Decimal,
    },
    /// `feesEnabled: true` without a schedule (as the recorded crypto up/down market).
    EnabledWithoutSchedule,
}

/// Share of markets served with a fee schedule, and with fees enabled but no schedule.
const FEE_SCHEDULE_SHARE: f64 = 0.3;
const FEE_NO_SCHEDULE_SHARE: f64 = 0.1;

/// A duration of fractional hours (microsecond precision).
fn hours(h: f64) -> Duration {
    Duration::microseconds((h * 3_600_000_000.0) as i64)
}

struct MarketSeed {
    id: u64,
    event: usize,
    kind: MarketKind,
    bucket: Option<usize>,
    question: String,
    group_item_title: Option<String>,
    outcomes: Vec<String>,
    neg_risk: bool,
    neg_risk_market_id: Option<String>,
    created_at: DateTime<Utc>,
    transient_variant: usize,
    /// Hours from `now` to the end date; `None` draws it from the kind (generated world).
    hours: Option<f64>,
}

fn make_market(rng: &mut SplitMix64, now: DateTime<Utc>, s: MarketSeed) -> SimMarket {
    use MarketKind as K;
    let kind = s.kind;
    let hours = match (s.hours, kind) {
        (Some(h), _) => h,
        (None, K::Tradeable) => in_bucket(rng, s.bucket.unwrap_or(0)),
        (None, K::PastEnd) => -rng.uniform(1.0, 30.0),
        (None, K::Closed) => {
            if rng.chance(0.5) {
                let b = rng.range(0, 4) as usize;
                in_bucket(rng, b)
            } else {
                -rng.uniform(1.0, 100.0)
            }
        }
        (None, K::Resolved) => -rng.uniform(2.0, 200.0),
        (None, K::BeyondLookahead) => rng.uniform(400.0, 900.0),
        (None, _) => {
            let b = rng.range(0, 4) as usize;
            in_bucket(rng, b)
        }
    };
    let end_digits = *rng.pick(&[0u32, 0, 2, 3, 6]);
    let raw_end = now + Duration::microseconds((hours * 3_600_000_000.0) as i64);
    let end_date = raw_end.trunc_subsecs(end_digits as u16);
    let date_digits = *rng.pick(&[0u32, 2, 3, 5, 6]);
    let created_at = (s.created_at + Duration::milliseconds(rng.range(0, 600_000) as i64))
        .trunc_subsecs(date_digits as u16);
    let start_date = (created_at + Duration::milliseconds(rng.range(1_000, 900_000) as i64))
        .trunc_subsecs(date_digits as u16);

    let closed = matches!(kind, K::Closed | K::Resolved);
    let closed_time = closed.then(|| {
        let latest = if end_date < now { end_date } else { now };
        let t = latest - Duration::seconds(rng.range(60, 3 * 3600) as i64);
        t.trunc_subsecs(0)
    });
    let accepting_orders = match kind {
        K::Resolved => false,
        // Real Gamma has closed=true with acceptingOrders=true.
        K::Closed => rng.chance(0.5),
        _ => true,
    };
    let enable_order_book = kind != K::NoOrderBook;

    let n = s.outcomes.len();
    let (token_ids, clob_token_ids, condition_id) = if kind == K::TransientTokens {
        match s.transient_variant % 3 {
            0 => (Vec::new(), String::new(), String::new()),
            1 => (Vec::new(), "[]".to_string(), hex_id(rng, 64)),
            _ => (
                vec![String::new(), String::new()],
                "[\"\", \"\"]".to_string(),
                hex_id(rng, 64),
            ),
        }
    } else {
        let ids: Vec<String> = (0..n).map(|_| token_id(rng)).collect();
        let served = json_array_string(&ids);
        (ids, served, hex_id(rng, 64))
    };

    let volume_24h = if kind == K::LowVolume {
        *rng.pick(&[
            Decimal::ZERO,
            Decimal::new(425, 1),
            Decimal::new(9999, 2),
            Decimal::new(7, 0),
            Decimal::ZERO,
        ])
    } else {
        let scale = *rng.pick(&[0u32, 2, 4, 6]);
        log_uniform_decimal(rng, 150.0, 500_000.0, scale)
    };
    let volume_1wk =
        volume_24h * Decimal::from(rng.range(3, 7)) + log_uniform_decimal(rng, 1.0, 1000.0, 4);
    let volume_1mo =
        volume_1wk * Decimal::from(rng.range(2, 4)) + log_uniform_decimal(rng, 1.0, 1000.0, 3);
    let volume_1wk = volume_1wk.normalize();
    let volume_1mo = volume_1mo.normalize();
    let volume_total = (volume_1mo + log_uniform_decimal(rng, 1.0, 50_000.0, 6)).normalize();
    let liquidity = log_uniform_decimal(rng, 50.0, 2_000_000.0, 4);
    let competitive = Decimal::new(rng.range(0, 999_999) as i64, 6);
    let tick_scale = if rng.chance(0.7) { 2 } else { 3 };
    let order_min_size = *rng.pick(&[5u32, 5, 5, 1]);
    let has_book = enable_order_book && !closed && kind != K::TransientTokens;
    let frozen_step = closed.then(|| {
        let t = closed_time.unwrap_or(now);
        t.timestamp()
    });
    let slug = slugify(&s.question, s.id);
    let category = rng.chance(0.35).then(|| rng.pick(CATEGORIES).to_string());
    let omit = Omit {
        liquidity: rng.chance(0.15),
        last_trade_price: rng.chance(0.2),
        one_hour: rng.chance(0.25),
        one_week: rng.chance(0.34),
        one_month: rng.chance(0.3),
        volume_1yr: rng.chance(0.5),
    };
    let (stage, uma_statuses) = match kind {
        K::Closed => (TruthStage::Closed, Vec::new()),
        K::Resolved => (
            TruthStage::Final {
                result: SimResult::Winner(0),
            },
            vec!["proposed", "resolved"],
        ),
        _ => (TruthStage::Open, Vec::new()),
    };
    let description = format!(
        "This market will resolve to \"{}\" if the answer to \"{}\" turns out to be yes. Otherwise, this market will resolve to \"{}\".\n\nThe resolution source for this market will be a consensus of credible reporting.",
        s.outcomes[0], s.question, s.outcomes[1]
    );
    SimMarket {
        id: s.id,
        event: s.event,
        kind,
        condition_id,
        question_id: hex_id(rng, 64),
        question: s.question,
        slug,
        description,
        group_item_title: s.group_item_title,
        category,
        outcomes: s.outcomes,
        token_ids,
        clob_token_ids,
        end_date,
        end_digits,
        start_date,
        created_at,
        date_digits,
        stage,
        uma_statuses,
        closed_time,
        final_at: if stage.is_final() { closed_time } else { None },
        hand_driven: false,
        enable_order_book,
        accepting_orders,
        volume_24h,
        volume_1wk,
        volume_1mo,
        volume_total,
        liquidity,
        competitive,
        neg_risk: s.neg_risk,
        neg_risk_market_id: s.neg_risk_market_id,
        tick_scale,
        order_min_size,
        price_key: rng.next_u64(),
        p0: rng.uniform(0.08, 0.92),
        has_book,
        frozen_step,
        book_until_ms: None,
        omit,
        arrived_at: None,
    }
}

/// The ids of the `n` tradeable markets ending last (ties: lowest id), so a busy market stays
/// open the longest in a rolling world too.
fn busy_markets(tradeable: &[(DateTime<Utc>, u64)], n: usize) -> HashSet<u64> {
    let mut by_end = tradeable.to_vec();
    by_end.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    by_end.into_iter().take(n).map(|(_, id)| id).collect()
}

/// Hours ahead, uniform inside bucket `b` minus the edge margins.
fn in_bucket(rng: &mut SplitMix64, b: usize) -> f64 {
    let (lo, hi) = BUCKETS[b.min(BUCKETS.len() - 1)];
    let lo_s = lo * 3600.0 + EDGE_MARGIN_S;
    let hi_s = hi * 3600.0 - EDGE_MARGIN_S;
    rng.uniform(lo_s, hi_s) / 3600.0
}

/// A "0x" + `n` hex digits id.
pub(crate) fn hex_id(rng: &mut SplitMix64, n: usize) -> String {
    let mut s = String::with_capacity(n + 2);
    s.push_str("0x");
    while s.len() < n + 2 {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(n + 2);
    s
}

/// "0x" + `n` hex digits, a pure function of `parts`.
pub(crate) fn hex_of(parts: &[u64], n: usize) -> String {
    let mut s = String::with_capacity(n + 2);
    s.push_str("0x");
    let mut lane = 0u64;
    while s.len() < n + 2 {
        let mut p = parts.to_vec();
        p.push(lane);
        s.push_str(&format!("{:016x}", mix(&p)));
        lane += 1;
    }
    s.truncate(n + 2);
    s
}

/// A 77-digit decimal token id (larger than u64, like Polymarket's).
fn token_id(rng: &mut SplitMix64) -> String {
    let mut s = String::with_capacity(77);
    s.push(char::from(b'1' + (rng.next_u64() % 9) as u8));
    while s.len() < 77 {
        s.push(char::from(b'0' + (rng.next_u64() % 10) as u8));
    }
    s
}

/// `["a", "b"]` — a JSON array inside a string, with Gamma's ", " separator.
pub(crate) fn json_array_string(items: &[String]) -> String {
    let inner: Vec<String> = items
        .iter()
        .map(|s| serde_json::Value::String(s.clone()).to_string())
        .collect();
    format!("[{}]", inner.join(", "))
}

fn log_uniform_decimal(rng: &mut SplitMix64, lo: f64, hi: f64, scale: u32) -> Decimal {
    let v = (rng.uniform(lo.ln(), hi.ln())).exp();
    let mult = 10f64.powi(scale as i32);
    Decimal::new((v * mult).round() as i64, scale).normalize()
}

fn slugify(text: &str, id: u64) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    let trimmed = out.trim_end_matches('-');
    format!("{trimmed}-{}", id % 1000)
}

const SUBJECTS: &[&str] = &[
    "Bitcoin",
    "Ethereum",
    "Solana",
    "the Fed",
    "the ECB",
    "Tesla",
    "Nvidia",
    "Apple",
    "OpenAI",
    "SpaceX",
    "the S&P 500",
    "gold",
    "oil",
    "the Lakers",
    "Real Madrid",
    "Arsenal",
    "the Yankees",
    "Taylor Swift",
];
const VERBS: &[&str] = &[
    "hit a new all-time high",
    "announce a rate cut",
    "close higher today",
    "beat earnings estimates",
    "launch a new product",
    "win tonight",
    "trend #1 on X",
    "reach $100k",
    "stay above the 50-day average",
];
const COMPETITIONS: &[&str] = &[
    "the 2026 Champions League",
    "the NBA Finals",
    "the Eurovision Song Contest",
    "the Ballon d'Or",
    "the 2028 Democratic nomination",
    "the World Cup Golden Boot",
    "Best Picture",
];
const CANDIDATES: &[&str] = &[
    "Alice Moreau",
    "Bruno Silva",
    "Chen Wei",
    "Dana Kowalski",
    "Emeka Obi",
    "Farah Haddad",
    "Gustav Lind",
    "Hana Sato",
    "Ivan Petrov",
    "Julia Costa",
];
const ASSETS: &[&str] = &["Bitcoin", "Ethereum", "Solana", "XRP"];
const CATEGORIES: &[&str] = &[
    "Crypto",
    "Sports",
    "Politics",
    "Pop Culture",
    "Business",
    "Science",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn rolling(seed: u64, rate: f64) -> (SimConfig, World) {
        let mut cfg = SimConfig::new(seed);
        cfg.markets_per_tier = 2;
        cfg.now = "2026-03-15T12:00:00Z".parse().expect("date");
        cfg.new_markets_per_hour = rate;
        let w = World::generate(&cfg);
        (cfg, w)
    }

    /// The lookups every endpoint relies on agree with `markets` and `events`.
    fn assert_indexed(w: &World) {
        for (tok, &(idx, o)) in &w.books {
            let m = &w.markets[idx];
            assert!(m.has_book && &m.token_ids[o] == tok);
        }
        let with_book: usize = w
            .markets
            .iter()
            .filter(|m| m.has_book)
            .map(|m| m.token_ids.iter().filter(|t| !t.is_empty()).count())
            .sum();
        assert_eq!(w.books.len(), with_book);
        for (cid, &idx) in &w.by_condition {
            assert_eq!(&w.markets[idx].condition_id, cid);
        }
        for (idx, m) in w.markets.iter().enumerate() {
            assert!(w.events[m.event].markets.contains(&idx));
        }
        assert!(w.events.iter().all(|e| !e.markets.is_empty()));
        assert!(w.markets.windows(2).all(|p| p[0].id < p[1].id));
        assert!(w.events.windows(2).all(|p| p[0].id < p[1].id));
    }

    #[test]
    fn given_rolling_world_over_three_weeks_then_every_tier_stays_populated_in_proportion_and_memory_is_bounded(
    ) {
        let rate = 20.0;
        let (cfg, mut w) = rolling(3, rate);
        let steps = 21 * 24 * 6;
        let mut sums = [0usize; 5];
        let mut most = 0;
        for k in 0..=steps {
            let now = cfg.now + Duration::minutes(10 * k);
            w.advance(now);
            let mut counts = [0usize; 5];
            for m in &w.markets {
                if m.arrived_at.is_none() || m.closed() || m.kind != MarketKind::Tradeable {
                    continue;
                }
                let h = (m.end_date - now).num_milliseconds() as f64 / 3_600_000.0;
                if let Some(b) = BUCKETS.iter().position(|&(lo, hi)| h > lo && h <= hi) {
                    counts[b] += 1;
                }
            }
            assert!(counts.iter().all(|&c| c > 0), "step {k}: {counts:?}");
            for (s, c) in sums.iter_mut().zip(counts) {
                *s += c;
            }
            most = most.max(w.markets.len());
            for m in &w.markets {
                // Ended more than resolve_after ago ⇒ closed, and final within two
                // finalize_after (generated traps that had already ended at start aside: they
                // stay as generated).
                let closes = m.end_date + Duration::hours(1);
                if closes > cfg.now {
                    assert!(m.closed() || closes > now, "{m:?}");
                    assert!(m.resolved() || closes + Duration::hours(4) > now, "{m:?}");
                }
                // Final by the rolling world ⇒ dropped within 48 h (+ the hourly pruning).
                if m.resolved() && closes > cfg.now {
                    let final_at = m.final_at.expect("final time");
                    assert!(now - final_at <= Duration::hours(PRUNE_AFTER_H + PRUNE_EVERY_H));
                }
            }
            if k % 36 == 0 {
                assert_indexed(&w);
            }
        }
        // Steady state: T4 ≈ rate × 1 h, T3 ≈ rate × 3 h … (90 % of arrivals are tradeable).
        let expected = [1.0, 2.99, 7.83, 32.9, 123.8];
        for (b, (s, e)) in sums.iter().zip(expected).enumerate() {
            let mean = *s as f64 / (steps + 1) as f64;
            let want = rate * 0.9 * e;
            assert!(
                (mean - want).abs() <= 0.2 * want,
                "bucket {b}: mean {mean:.1}, want ≈ {want:.1}"
            );
        }
        // rate × (168.5 open + 1 ended + 48–49 resolved) plus the 2-per-tier generated world.
        assert!(most <= 4_700, "{most} markets held");
    }

    #[test]
    fn given_same_seed_when_advanced_in_one_jump_or_many_steps_then_same_world() {
        let (cfg, mut a) = rolling(5, 12.0);
        let (_, mut b) = rolling(5, 12.0);
        let end = cfg.now + Duration::hours(100);
        a.advance(end);
        let mut t = cfg.now;
        while t < end {
            t = (t + Duration::minutes(37)).min(end);
            b.advance(t);
        }
        // Pruning runs at most hourly, so only compare what neither may have dropped yet.
        let view = |w: &World| -> Vec<String> {
            w.markets
                .iter()
                .filter(|m| m.final_at.is_none_or(|c| c > end - Duration::hours(47)))
                .map(|m| {
                    format!(
                        "{} {} {:?} {} {} {:?} {:?} {:?} {:?} {:?} {} {} {}",
                        m.id,
                        m.condition_id,
                        m.token_ids,
                        m.question,
                        m.end_date,
                        m.stage,
                        m.uma_statuses,
                        m.closed_time,
                        m.final_at,
                        m.kind,
                        m.volume_24h,
                        w.events[m.event].id,
                        m.has_book
                    )
                })
                .collect()
        };
        let (va, vb) = (view(&a), view(&b));
        assert!(va.len() > 1_000, "{}", va.len());
        assert_eq!(va, vb);
        assert_indexed(&a);
        assert_indexed(&b);
        let winners: HashSet<SimResult> = a
            .markets
            .iter()
            .filter(|m| m.arrived_at.is_some())
            .filter_map(|m| m.stage.result())
            .collect();
        assert_eq!(
            winners,
            HashSet::from([
                SimResult::Winner(0),
                SimResult::Winner(1),
                SimResult::Invalid
            ])
        );
    }

    #[test]
    fn given_rolling_world_when_knobs_move_markets_then_their_course_stops_but_a_closed_one_goes_on(
    ) {
        let (cfg, mut w) = rolling(9, 20.0);
        w.advance(cfg.now);
        let soon: Vec<String> = w
            .markets
            .iter()
            .filter(|m| m.arrived_at.is_some() && !m.closed())
            .filter(|m| m.end_date < cfg.now + Duration::hours(2))
            .take(3)
            .map(|m| m.condition_id.clone())
            .collect();
        let [proposed, closed, delisted] = <[String; 3]>::try_from(soon).expect("three markets");
        let at = cfg.now + Duration::minutes(5);
        assert!(w.propose(&proposed, 1, at));
        assert!(w.close(&closed, at));
        assert!(w.delist(&delisted));
        w.advance(cfg.now + Duration::hours(12));
        let market = |cid: &str| &w.markets[w.by_condition[cid]];
        assert_eq!(
            market(&proposed).stage,
            TruthStage::Proposed { outcome: 1 },
            "hand-driven: left where the knob put it"
        );
        assert!(
            market(&closed).resolved(),
            "closed early, resolved on course"
        );
        assert_eq!(market(&closed).closed_time, Some(at.trunc_subsecs(0)));
        assert!(!w.by_condition.contains_key(&delisted));
        assert_eq!(w.delisted, vec![delisted]);
        assert_indexed(&w);
    }

    #[test]
    fn given_static_world_when_advanced_a_month_then_nothing_changes() {
        let (cfg, mut w) = rolling(7, 0.0);
        let before = format!("{:?}", w.markets);
        let later = cfg.now + Duration::days(30);
        assert!(!w.due(later));
        w.advance(later);
        assert_eq!(format!("{:?}", w.markets), before);
        assert_eq!(
            w.kind_at(&w.markets[0], later),
            w.markets[0].kind,
            "static kinds do not follow the clock"
        );
    }
}
