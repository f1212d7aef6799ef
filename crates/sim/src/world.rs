//! World generation: events of 1–4 markets, each market tradeable or one kind of trap, all drawn
//! from the seed with end dates relative to `SimConfig::now`.
//!
//! Generation order is fixed (slots shuffled, then grouped into events), ids increase with
//! generation order, so `markets` and `events` are sorted by id.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rust_decimal::Decimal;

use crate::rng::{mix, SplitMix64};
use crate::{MarketKind, SimConfig};

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
    /// Sorted by id.
    pub markets: Vec<SimMarket>,
    /// Sorted by id.
    pub events: Vec<SimEvent>,
    /// Non-empty condition id → market index.
    pub by_condition: HashMap<String, usize>,
    /// Token id of a market with a live book → (market index, outcome index).
    pub books: HashMap<String, (usize, usize)>,
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
    pub closed: bool,
    pub resolved: bool,
    /// For resolved markets: which outcome won (always the first today; kept so the JSON code
    /// does not assume it).
    pub winner: usize,
    pub closed_time: Option<DateTime<Utc>>,
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
    pub omit: Omit,
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
                        let verb = rng.pick(VERBS);
                        let q = format!(
                            "Will {subject} {verb} by {}?",
                            (now + Duration::days(j as i64 + 1)).format("%B %-d")
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
                    },
                );
                event.markets.push(markets.len());
                markets.push(m);
            }
            events.push(event);
        }

        let mut by_condition = HashMap::new();
        let mut books = HashMap::new();
        for (idx, m) in markets.iter().enumerate() {
            if !m.condition_id.is_empty() {
                by_condition.insert(m.condition_id.clone(), idx);
            }
            for (o, t) in m.token_ids.iter().enumerate() {
                if t.is_empty() {
                    continue;
                }
                if m.has_book {
                    books.insert(t.clone(), (idx, o));
                }
            }
        }
        World {
            seed: cfg.seed,
            now,
            book_levels: cfg.book_levels,
            markets,
            events,
            by_condition,
            books,
        }
    }
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
}

fn make_market(rng: &mut SplitMix64, now: DateTime<Utc>, s: MarketSeed) -> SimMarket {
    use MarketKind as K;
    let kind = s.kind;
    let hours = match kind {
        K::Tradeable => in_bucket(rng, s.bucket.unwrap_or(0)),
        K::PastEnd => -rng.uniform(1.0, 30.0),
        K::Closed => {
            if rng.chance(0.5) {
                let b = rng.range(0, 4) as usize;
                in_bucket(rng, b)
            } else {
                -rng.uniform(1.0, 100.0)
            }
        }
        K::Resolved => -rng.uniform(2.0, 200.0),
        K::BeyondLookahead => rng.uniform(400.0, 900.0),
        _ => {
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
    let resolved = kind == K::Resolved;
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
        closed,
        resolved,
        winner: 0,
        closed_time,
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
        omit,
    }
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
