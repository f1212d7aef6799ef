//! Gamma API (market discovery): typed, tolerant markets, events, tags and search results, and
//! the keyset page envelope.
//!
//! Every field is optional and unknown fields are ignored: Gamma adds and drops fields without
//! notice, and the same field is a string on one market and a number on the next. Markets,
//! events and tags are decoded one at a time with [`decode_record`]: a field whose type drifted
//! is read as absent and reported as a [`Drift`] while the record is kept; a record is rejected
//! (with a reason) only when an essential field is unusable — for a market only `conditionId`
//! (discovery applies its own filters afterwards: a market whose `endDate`, `clobTokenIds` or
//! `outcomes` drifted is kept here and is simply not discoverable) — and the rest of its page
//! is kept either way.

use crate::clob::ClobMarket;
use crate::decode::{self as d, decode_record, decode_records, Record, Records};
use crate::error::{Drift, Rejected};
use crate::Ts;
use polytape_core::money::{is_valid_price, is_valid_size};
use polytape_core::{FeeSchedule, Market, MarketQuote, MarketResult, Outcome};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

/// One Gamma market (camelCase on the wire). Fields hold what was sent, `None` when absent;
/// the methods give the cleaned-up views the collector uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GammaMarket {
    /// Gamma's numeric-looking id (`"1557558"`).
    #[serde(deserialize_with = "d::string_opt")]
    pub id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub question: Option<String>,
    /// `0x` + 64 hex; `""` for brand-new markets (see [`GammaMarket::condition_id`]).
    #[serde(rename = "conditionId", deserialize_with = "d::string_opt")]
    pub condition_id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub slug: Option<String>,
    #[serde(rename = "questionID", deserialize_with = "d::string_opt")]
    pub question_id: Option<String>,
    /// Legacy markets only.
    #[serde(deserialize_with = "d::string_opt")]
    pub category: Option<String>,
    #[serde(rename = "groupItemTitle", deserialize_with = "d::string_opt")]
    pub group_item_title: Option<String>,
    #[serde(rename = "marketType", deserialize_with = "d::string_opt")]
    pub market_type: Option<String>,
    #[serde(rename = "sportsMarketType", deserialize_with = "d::string_opt")]
    pub sports_market_type: Option<String>,
    #[serde(rename = "gameId", deserialize_with = "d::string_opt")]
    pub game_id: Option<String>,
    #[serde(rename = "feeType", deserialize_with = "d::string_opt")]
    pub fee_type: Option<String>,
    #[serde(rename = "negRiskMarketID", deserialize_with = "d::string_opt")]
    pub neg_risk_market_id: Option<String>,

    /// Outcome labels; a JSON array encoded in a string on the wire.
    #[serde(deserialize_with = "d::string_array_opt")]
    pub outcomes: Option<Vec<String>>,
    /// Outcome prices, same order as `outcomes`.
    #[serde(rename = "outcomePrices", deserialize_with = "d::decimal_array_opt")]
    pub outcome_prices: Option<Vec<Decimal>>,
    /// Raw token ids, possibly transient (`""`, `[]`, `["",""]`); see [`GammaMarket::token_ids`].
    #[serde(rename = "clobTokenIds", deserialize_with = "d::string_array_opt")]
    pub clob_token_ids: Option<Vec<String>>,
    #[serde(rename = "umaResolutionStatus", deserialize_with = "d::string_opt")]
    pub uma_resolution_status: Option<String>,
    #[serde(
        rename = "umaResolutionStatuses",
        deserialize_with = "d::string_array_opt"
    )]
    pub uma_resolution_statuses: Option<Vec<String>>,

    /// Total volume, USDC (a string on the wire).
    #[serde(deserialize_with = "d::decimal_opt")]
    pub volume: Option<Decimal>,
    #[serde(rename = "volumeNum", deserialize_with = "d::decimal_opt")]
    pub volume_num: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub liquidity: Option<Decimal>,
    #[serde(rename = "liquidityNum", deserialize_with = "d::decimal_opt")]
    pub liquidity_num: Option<Decimal>,
    #[serde(rename = "volume24hr", deserialize_with = "d::decimal_opt")]
    pub volume_24hr: Option<Decimal>,
    #[serde(rename = "volume1wk", deserialize_with = "d::decimal_opt")]
    pub volume_1wk: Option<Decimal>,
    #[serde(rename = "volume1mo", deserialize_with = "d::decimal_opt")]
    pub volume_1mo: Option<Decimal>,
    #[serde(rename = "volume1yr", deserialize_with = "d::decimal_opt")]
    pub volume_1yr: Option<Decimal>,
    #[serde(rename = "bestBid", deserialize_with = "d::decimal_opt")]
    pub best_bid: Option<Decimal>,
    #[serde(rename = "bestAsk", deserialize_with = "d::decimal_opt")]
    pub best_ask: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub spread: Option<Decimal>,
    #[serde(rename = "lastTradePrice", deserialize_with = "d::decimal_opt")]
    pub last_trade_price: Option<Decimal>,
    #[serde(rename = "oneHourPriceChange", deserialize_with = "d::decimal_opt")]
    pub one_hour_price_change: Option<Decimal>,
    #[serde(rename = "oneDayPriceChange", deserialize_with = "d::decimal_opt")]
    pub one_day_price_change: Option<Decimal>,
    #[serde(rename = "oneWeekPriceChange", deserialize_with = "d::decimal_opt")]
    pub one_week_price_change: Option<Decimal>,
    #[serde(rename = "oneMonthPriceChange", deserialize_with = "d::decimal_opt")]
    pub one_month_price_change: Option<Decimal>,
    #[serde(rename = "oneYearPriceChange", deserialize_with = "d::decimal_opt")]
    pub one_year_price_change: Option<Decimal>,
    #[serde(rename = "orderPriceMinTickSize", deserialize_with = "d::decimal_opt")]
    pub order_price_min_tick_size: Option<Decimal>,
    #[serde(rename = "orderMinSize", deserialize_with = "d::decimal_opt")]
    pub order_min_size: Option<Decimal>,
    #[serde(deserialize_with = "d::f64_opt")]
    pub competitive: Option<f64>,
    /// Handicap / total line of a sports market.
    #[serde(deserialize_with = "d::decimal_opt")]
    pub line: Option<Decimal>,

    /// Stays `true` after a market closes: use `closed`.
    #[serde(deserialize_with = "d::bool_opt")]
    pub active: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub closed: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub archived: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub restricted: Option<bool>,
    #[serde(rename = "enableOrderBook", deserialize_with = "d::bool_opt")]
    pub enable_order_book: Option<bool>,
    #[serde(rename = "acceptingOrders", deserialize_with = "d::bool_opt")]
    pub accepting_orders: Option<bool>,
    #[serde(rename = "negRisk", deserialize_with = "d::bool_opt")]
    pub neg_risk: Option<bool>,
    #[serde(rename = "negRiskOther", deserialize_with = "d::bool_opt")]
    pub neg_risk_other: Option<bool>,

    #[serde(rename = "endDate", deserialize_with = "d::ts_opt")]
    pub end_date: Option<Ts>,
    #[serde(rename = "startDate", deserialize_with = "d::ts_opt")]
    pub start_date: Option<Ts>,
    #[serde(rename = "createdAt", deserialize_with = "d::ts_opt")]
    pub created_at: Option<Ts>,
    #[serde(rename = "updatedAt", deserialize_with = "d::ts_opt")]
    pub updated_at: Option<Ts>,
    /// `"2026-03-19 23:20:15+00"` on the wire (not RFC 3339).
    #[serde(rename = "closedTime", deserialize_with = "d::ts_opt")]
    pub closed_time: Option<Ts>,
    #[serde(rename = "umaEndDate", deserialize_with = "d::ts_opt")]
    pub uma_end_date: Option<Ts>,
    #[serde(rename = "acceptingOrdersTimestamp", deserialize_with = "d::ts_opt")]
    pub accepting_orders_timestamp: Option<Ts>,
    #[serde(rename = "eventStartTime", deserialize_with = "d::ts_opt")]
    pub event_start_time: Option<Ts>,
    /// `"2026-04-05 15:10:00+00"` on the wire (not RFC 3339).
    #[serde(rename = "gameStartTime", deserialize_with = "d::ts_opt")]
    pub game_start_time: Option<Ts>,
    /// A date only (`"2026-03-12"`), midnight UTC.
    #[serde(rename = "endDateIso", deserialize_with = "d::ts_opt")]
    pub end_date_iso: Option<Ts>,
    #[serde(rename = "startDateIso", deserialize_with = "d::ts_opt")]
    pub start_date_iso: Option<Ts>,

    /// Present with `include_tag=true`.
    pub tags: Option<Vec<GammaTag>>,
    /// The events the market belongs to (`events[]`, each a full event object on the wire; only
    /// what identifies it is kept). A market decoded inside an event gets that event when it
    /// lists none ([`decode_event`]).
    pub events: Option<Vec<GammaEventRef>>,

    /// `feesEnabled`: `false` for a market that charges no trading fee.
    #[serde(rename = "feesEnabled", deserialize_with = "d::bool_opt")]
    pub fees_enabled: Option<bool>,
    /// `feeSchedule {exponent, rate, rebateRate, takerOnly}`, checked: a schedule without a
    /// rate in [0, 1] or an exponent that is a whole number up to [`MAX_FEE_EXPONENT`] is read
    /// as absent and reported as a drift (see [`fee_schedule_opt`]).
    #[serde(rename = "feeSchedule", deserialize_with = "fee_schedule_opt")]
    pub fee_schedule: Option<FeeSchedule>,
    /// `makerBaseFee` / `takerBaseFee` (`1000` on fee-charging markets): kept as sent, not used.
    #[serde(rename = "makerBaseFee", deserialize_with = "d::u32_opt")]
    pub maker_base_fee: Option<u32>,
    #[serde(rename = "takerBaseFee", deserialize_with = "d::u32_opt")]
    pub taker_base_fee: Option<u32>,
}

/// What a market keeps of one of its events: the id that groups markets (several deadlines of
/// one question share it), and its slug and title for people.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GammaEventRef {
    #[serde(deserialize_with = "d::string_opt")]
    pub id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub slug: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub title: Option<String>,
}

/// The largest fee exponent accepted (Polymarket uses 1 and 2); past it a schedule is odd.
pub const MAX_FEE_EXPONENT: u32 = 8;

/// `feeSchedule` as sent, every value tolerant of string-or-number.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawFeeSchedule {
    #[serde(deserialize_with = "d::decimal_opt")]
    rate: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    exponent: Option<Decimal>,
    #[serde(rename = "rebateRate", deserialize_with = "d::decimal_opt")]
    rebate_rate: Option<Decimal>,
    #[serde(rename = "takerOnly", deserialize_with = "d::bool_opt")]
    taker_only: Option<bool>,
}

/// Optional `feeSchedule`: `null` is absent; a schedule must have a `rate` in [0, 1] and an
/// `exponent` that is a whole number in [1, [`MAX_FEE_EXPONENT`]], and a `rebateRate`, when
/// sent, in [0, 1]; anything else fails with a reason (the record decoder then reads the field
/// as absent and counts a drift, keeping the market). An absent `takerOnly` is `true`: on
/// Polymarket only takers pay fees (docs.polymarket.com/trading/fees).
pub fn fee_schedule_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<FeeSchedule>, D::Error> {
    use serde::de::Error;
    let raw = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(v @ Value::Object(_)) => RawFeeSchedule::deserialize(v).map_err(D::Error::custom)?,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "invalid type: {}, expected a feeSchedule object",
                json_type(&other)
            )))
        }
    };
    let unit = |v: Decimal| v >= Decimal::ZERO && v <= Decimal::ONE;
    let rate = raw
        .rate
        .ok_or_else(|| D::Error::custom("feeSchedule without a rate"))?;
    if !unit(rate) {
        return Err(D::Error::custom(format!("fee rate {rate} outside [0,1]")));
    }
    let exponent = raw
        .exponent
        .ok_or_else(|| D::Error::custom("feeSchedule without an exponent"))?;
    let whole = exponent
        .fract()
        .is_zero()
        .then(|| rust_decimal::prelude::ToPrimitive::to_u32(&exponent))
        .flatten()
        .filter(|e| (1..=MAX_FEE_EXPONENT).contains(e));
    let Some(exponent_n) = whole else {
        return Err(D::Error::custom(format!(
            "fee exponent {exponent} is not a whole number in [1,{MAX_FEE_EXPONENT}]"
        )));
    };
    if let Some(r) = raw.rebate_rate.filter(|r| !unit(*r)) {
        return Err(D::Error::custom(format!("rebate rate {r} outside [0,1]")));
    }
    Ok(Some(FeeSchedule {
        rate,
        exponent: exponent_n,
        rebate_rate: raw.rebate_rate,
        taker_only: raw.taker_only.unwrap_or(true),
    }))
}

impl Record for GammaMarket {
    const WHAT: &'static str = "gamma market";
    const KEY: &'static [&'static str] = &["conditionId", "id"];
    /// Only the key: every other value is optional downstream (discovery filters on end date,
    /// token ids and outcomes; a tick stores NULL for what is missing).
    const ESSENTIAL: &'static [&'static str] = &["conditionId"];
}

impl GammaMarket {
    /// The id of the market's (first) event; `None` when it lists none with an id.
    pub fn event_id(&self) -> Option<&str> {
        self.events
            .as_deref()?
            .iter()
            .find_map(|e| e.id.as_deref().filter(|id| !id.is_empty()))
    }

    /// The condition id; `None` when absent or `""` (a market still being created).
    pub fn condition_id(&self) -> Option<&str> {
        self.condition_id.as_deref().filter(|s| !s.is_empty())
    }

    /// The two token ids, first outcome first; `None` when absent, transient (`""`, `[]`,
    /// `["",""]` while the CLOB side hydrates), not decimal digits, or not exactly two.
    pub fn token_ids(&self) -> Option<[String; 2]> {
        match self.clob_token_ids.as_deref()? {
            [a, b] if is_token_id(a) && is_token_id(b) => Some([a.clone(), b.clone()]),
            _ => None,
        }
    }

    /// The outcome labels.
    pub fn outcomes(&self) -> Option<&[String]> {
        self.outcomes.as_deref()
    }

    /// Exactly two outcomes and two usable token ids, and not a legacy scalar market (those
    /// have two outcomes too, "Long"/"Short" over a range, but no yes/no event).
    pub fn is_binary(&self) -> bool {
        !self.is_scalar()
            && self.outcomes().is_some_and(|o| o.len() == 2)
            && self.token_ids().is_some()
    }

    /// A legacy scalar market (`marketType: "scalar"`).
    pub fn is_scalar(&self) -> bool {
        self.market_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("scalar"))
    }

    /// Whether the market trades on the CLOB; absent means no (legacy AMM markets).
    pub fn enable_order_book(&self) -> bool {
        self.enable_order_book.unwrap_or(false)
    }

    /// The end date (`endDate`; `endDateIso` is only a date and is not used as a stand-in).
    pub fn end_date(&self) -> Option<Ts> {
        self.end_date
    }

    /// Volume of the last 24 hours, USDC.
    pub fn volume_24h(&self) -> Option<Decimal> {
        self.volume_24hr
    }

    /// `closed` as sent.
    pub fn closed(&self) -> Option<bool> {
        self.closed
    }

    /// `acceptingOrders` as sent.
    pub fn accepting_orders(&self) -> Option<bool> {
        self.accepting_orders
    }

    /// What Gamma says of this market's result, with the CLOB market when the UMA status is
    /// absent (see [`Verdict`]). The rule (trades-and-resolution.md §5): final only when
    /// Gamma shows the market closed with final prices AND either the UMA status is `resolved`
    /// (prices a 1/0 permutation, an even split, or — legacy and scalar markets — another
    /// payout vector), or the status is absent, the prices are a 1/0 permutation or an even
    /// split, and the CLOB agrees (its winner token is the one priced 1; `is_50_50_outcome`
    /// for a split). Without a status other prices are the ones the market closed at.
    /// `proposed`, `disputed` and any unknown status are pending, whatever the prices say (a
    /// proposed market can read 0.9995/0.0005, or 0.5/0.5 without being void).
    pub fn verdict(&self, clob: Option<&ClobMarket>, learned_at: Ts) -> Verdict {
        if self.closed != Some(true) {
            return Verdict::Open;
        }
        let status = self
            .uma_resolution_status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let pending = || Verdict::Pending {
            uma_status: status.map(str::to_owned),
            needs_clob: false,
        };
        let (Some(outcomes), Some(payouts)) = (self.outcomes(), self.outcome_prices.as_deref())
        else {
            return pending();
        };
        if payouts.len() != outcomes.len() || payouts.len() < 2 {
            return pending();
        }
        let kind = Payout::of(payouts);
        let source = match status {
            Some("resolved") => "gamma",
            Some(_) => return pending(),
            None if kind == Payout::Vector => return pending(),
            None => {
                let Some(clob) = clob else {
                    return Verdict::Pending {
                        uma_status: None,
                        needs_clob: true,
                    };
                };
                let tokens = self.token_ids();
                let agrees = match kind {
                    Payout::Winner(i) => clob
                        .winner()
                        .and_then(|w| w.token_id.as_deref())
                        .is_some_and(|w| {
                            tokens
                                .as_ref()
                                .is_some_and(|t| t.get(i).map(String::as_str) == Some(w))
                        }),
                    Payout::Split => clob.is_50_50_outcome == Some(true),
                    Payout::Vector => false,
                };
                if !agrees {
                    return pending();
                }
                "gamma+clob"
            }
        };
        Verdict::Final(Outcome {
            winner: match kind {
                Payout::Winner(i) => Some(i),
                _ => None,
            },
            invalid: kind == Payout::Split,
            payouts: payouts.to_vec(),
            resolved_at: self.closed_time,
            learned_at,
            uma_status: status.map(str::to_owned),
            source: source.to_string(),
        })
    }

    /// The market as polytape tracks it. Needs a condition id, two usable token ids, two
    /// outcomes and an end date. The tier is left `None` for the caller to assign.
    pub fn to_market(&self, first_seen: Ts) -> Result<Market, String> {
        let condition_id = self.condition_id().ok_or("no conditionId")?.to_owned();
        if self.is_scalar() {
            return Err("scalar market".into());
        }
        let [yes_token_id, no_token_id] = self
            .token_ids()
            .ok_or_else(|| format!("no usable clobTokenIds: {:?}", self.clob_token_ids))?;
        let outcomes = match self.outcomes() {
            Some([a, b]) => [a.clone(), b.clone()],
            other => {
                return Err(format!(
                    "not exactly 2 outcomes: {:?}",
                    other.map(<[String]>::len)
                ))
            }
        };
        // To the millisecond, as every store and the Parquet timestamps keep it: a finer
        // instant would differ from its stored copy on every discovery and be rewritten.
        let end = self.end_date().ok_or("no endDate")?;
        let end_date =
            chrono::DateTime::from_timestamp_millis(end.timestamp_millis()).unwrap_or(end);
        Ok(Market {
            condition_id,
            question: self.question.clone().unwrap_or_default(),
            slug: self.slug.clone().filter(|s| !s.is_empty()),
            yes_token_id,
            no_token_id,
            outcomes,
            end_date,
            tier: None,
            active: !self.closed.unwrap_or(false),
            result: MarketResult::Open,
            closed_at: None,
            delisted: false,
            first_seen,
            category: self.category.clone().filter(|s| !s.is_empty()),
            neg_risk: self.neg_risk.unwrap_or(false),
            volume_24h: self.volume_24hr,
            event_id: self.event_id().map(str::to_owned),
            fees_enabled: self.fees_enabled,
            fee: self.fee_schedule,
            version: 0,
        })
    }

    /// The values Gamma reports for this market at one tick. Prices outside [0, 1], price
    /// changes outside [-1, 1] and negative (or ≥ 10^12, unstorable) volumes or liquidity
    /// become `None`, each with a `Rejected("gamma value")` naming the field. A missing value
    /// is `None`, never a default (`neg_risk` too: `None` when `negRisk` was not sent).
    ///
    /// The client never calls this, so these rejections are NOT logged by this crate: the
    /// caller (the collector) logs and counts them.
    pub fn quote(&self) -> (MarketQuote, Vec<Rejected>) {
        let mut rejected = Vec::new();
        let key = self.condition_id().map(str::to_owned);
        let mut check = |field: &str, v: Option<Decimal>, rule: Rule| -> Option<Decimal> {
            let v = v?;
            let ok = match rule {
                Rule::Price => is_valid_price(v),
                Rule::Change => v >= -Decimal::ONE && v <= Decimal::ONE,
                Rule::NonNegative => is_valid_size(v),
            };
            if ok {
                Some(v)
            } else {
                rejected.push(Rejected::new(
                    "gamma value",
                    key.clone(),
                    format!("{field} {v} {}", rule.describe()),
                ));
                None
            }
        };
        let first_price = self
            .outcome_prices
            .as_deref()
            .and_then(|p| p.first().copied());
        let quote = MarketQuote {
            condition_id: self.condition_id().unwrap_or_default().to_owned(),
            price: check("outcomePrices[0]", first_price, Rule::Price),
            best_bid: check("bestBid", self.best_bid, Rule::Price),
            best_ask: check("bestAsk", self.best_ask, Rule::Price),
            spread: check("spread", self.spread, Rule::Price),
            last_trade_price: check("lastTradePrice", self.last_trade_price, Rule::Price),
            price_change_1h: check(
                "oneHourPriceChange",
                self.one_hour_price_change,
                Rule::Change,
            ),
            price_change_1d: check("oneDayPriceChange", self.one_day_price_change, Rule::Change),
            price_change_1w: check(
                "oneWeekPriceChange",
                self.one_week_price_change,
                Rule::Change,
            ),
            price_change_1m: check(
                "oneMonthPriceChange",
                self.one_month_price_change,
                Rule::Change,
            ),
            volume_total: check(
                "volumeNum",
                self.volume_num.or(self.volume),
                Rule::NonNegative,
            ),
            volume_24h: check("volume24hr", self.volume_24hr, Rule::NonNegative),
            volume_1w: check("volume1wk", self.volume_1wk, Rule::NonNegative),
            liquidity: check(
                "liquidityNum",
                self.liquidity_num.or(self.liquidity),
                Rule::NonNegative,
            ),
            tick_size: check(
                "orderPriceMinTickSize",
                self.order_price_min_tick_size,
                Rule::Price,
            ),
            competitive: self.competitive,
            category: self.category.clone().filter(|s| !s.is_empty()),
            neg_risk: self.neg_risk,
            end_date: self.end_date,
            closed: self.closed,
        };
        (quote, rejected)
    }
}

#[derive(Clone, Copy)]
enum Rule {
    Price,
    Change,
    NonNegative,
}

impl Rule {
    fn describe(self) -> &'static str {
        match self {
            Rule::Price => "outside [0,1]",
            Rule::Change => "outside [-1,1]",
            Rule::NonNegative => "is negative or too large to store (>= 1e12)",
        }
    }
}

/// A usable token id: a non-empty string of decimal digits (~77 of them; never a u64).
/// What Gamma (and the CLOB) say of a market's result: [`GammaMarket::verdict`].
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not closed.
    Open,
    /// Closed without a final result. `needs_clob`: the UMA status is absent and prices look
    /// final, so the CLOB market must confirm (ask again with it).
    Pending {
        uma_status: Option<String>,
        needs_clob: bool,
    },
    /// Final.
    Final(Outcome),
}

/// The shape of a payout vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payout {
    /// One outcome pays 1, every other 0.
    Winner(usize),
    /// Every outcome pays the same share (0.5/0.5): INVALID.
    Split,
    /// Anything else (legacy and scalar markets): recorded as it is.
    Vector,
}

impl Payout {
    fn of(p: &[Decimal]) -> Payout {
        let ones: Vec<usize> = (0..p.len()).filter(|&i| p[i] == Decimal::ONE).collect();
        if ones.len() == 1 && p.iter().filter(|v| v.is_zero()).count() == p.len() - 1 {
            return Payout::Winner(ones[0]);
        }
        let share = Decimal::ONE / Decimal::from(p.len());
        if p.iter().all(|v| *v == share) {
            Payout::Split
        } else {
            Payout::Vector
        }
    }
}

pub fn is_token_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A Gamma tag (`include_tag=true`, `/tags`, nested in events).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GammaTag {
    #[serde(deserialize_with = "d::string_opt")]
    pub id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub label: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub slug: Option<String>,
    /// `"2024-03-07 20:44:01.258+00"` style on the wire.
    #[serde(rename = "publishedAt", deserialize_with = "d::ts_opt")]
    pub published_at: Option<Ts>,
    #[serde(rename = "updatedAt", deserialize_with = "d::ts_opt")]
    pub updated_at: Option<Ts>,
}

impl Record for GammaTag {
    const WHAT: &'static str = "gamma tag";
    const KEY: &'static [&'static str] = &["id", "slug"];
    /// A tag is referred to by its id.
    const ESSENTIAL: &'static [&'static str] = &["id"];
}

/// A Gamma event: a group of markets (a neg-risk event holds one binary market per outcome).
/// Event-level volumes and liquidity are JSON numbers, unlike the market-level strings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GammaEvent {
    #[serde(deserialize_with = "d::string_opt")]
    pub id: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub ticker: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub slug: Option<String>,
    #[serde(deserialize_with = "d::string_opt")]
    pub title: Option<String>,
    #[serde(rename = "startDate", deserialize_with = "d::ts_opt")]
    pub start_date: Option<Ts>,
    #[serde(rename = "creationDate", deserialize_with = "d::ts_opt")]
    pub creation_date: Option<Ts>,
    #[serde(rename = "endDate", deserialize_with = "d::ts_opt")]
    pub end_date: Option<Ts>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub active: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub closed: Option<bool>,
    #[serde(deserialize_with = "d::bool_opt")]
    pub archived: Option<bool>,
    #[serde(rename = "negRisk", deserialize_with = "d::bool_opt")]
    pub neg_risk: Option<bool>,
    #[serde(rename = "negRiskMarketID", deserialize_with = "d::string_opt")]
    pub neg_risk_market_id: Option<String>,
    #[serde(rename = "enableOrderBook", deserialize_with = "d::bool_opt")]
    pub enable_order_book: Option<bool>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub liquidity: Option<Decimal>,
    #[serde(deserialize_with = "d::decimal_opt")]
    pub volume: Option<Decimal>,
    #[serde(rename = "openInterest", deserialize_with = "d::decimal_opt")]
    pub open_interest: Option<Decimal>,
    #[serde(rename = "volume24hr", deserialize_with = "d::decimal_opt")]
    pub volume_24hr: Option<Decimal>,
    #[serde(deserialize_with = "d::f64_opt")]
    pub competitive: Option<f64>,
    #[serde(rename = "commentCount", deserialize_with = "d::u32_opt")]
    pub comment_count: Option<u32>,
    #[serde(rename = "seriesSlug", deserialize_with = "d::string_opt")]
    pub series_slug: Option<String>,
    /// The event's markets, each a full Gamma market, decoded one by one by
    /// [`decode_event`] (a bad one is rejected on its own, not with its event).
    #[serde(skip)]
    pub markets: Option<Vec<GammaMarket>>,
    pub tags: Option<Vec<GammaTag>>,
}

impl Record for GammaEvent {
    const WHAT: &'static str = "gamma event";
    const KEY: &'static [&'static str] = &["id", "slug"];
    /// An event is referred to by its id.
    const ESSENTIAL: &'static [&'static str] = &["id"];
}

/// `GET /public-search` response: events decoded one by one, with what was dropped.
#[derive(Debug, Default)]
pub struct PublicSearch {
    pub events: Vec<GammaEvent>,
    pub pagination: Option<SearchPagination>,
    /// Events and nested markets that could not be used.
    pub rejected: Vec<Rejected>,
    /// Fields of kept events and markets read as absent.
    pub drifts: Vec<Drift>,
}

/// Page information of a search response.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SearchPagination {
    #[serde(rename = "hasMore", deserialize_with = "d::bool_opt")]
    pub has_more: Option<bool>,
    #[serde(rename = "totalResults", deserialize_with = "d::decimal_opt")]
    pub total_results: Option<Decimal>,
}

impl Record for SearchPagination {
    const WHAT: &'static str = "search pagination";
    const KEY: &'static [&'static str] = &[];
    const ESSENTIAL: &'static [&'static str] = &[];
}

/// One page of `GET /markets/keyset`, markets decoded one by one.
#[derive(Debug, Default)]
pub struct KeysetPage {
    pub markets: Vec<GammaMarket>,
    /// Markets that could not be used, with the reason.
    pub rejected: Vec<Rejected>,
    /// Fields of kept markets that failed to decode and were read as absent.
    pub drifts: Vec<Drift>,
    /// The cursor of the next page; `None` on the last page. `Some("")` is kept as is: the
    /// caller treats it as an error (it would loop).
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct RawKeysetPage {
    markets: Vec<Value>,
    #[serde(default, deserialize_with = "d::string_opt")]
    next_cursor: Option<String>,
}

/// Decodes a keyset page body: the envelope strictly (a body without `markets` is an error),
/// each market on its own.
pub fn decode_keyset_page(body: &[u8]) -> Result<KeysetPage, serde_json::Error> {
    let raw: RawKeysetPage = serde_json::from_slice(body)?;
    let Records {
        items,
        rejected,
        drifts,
    } = decode_markets(&raw.markets);
    Ok(KeysetPage {
        markets: items,
        rejected,
        drifts,
        next_cursor: raw.next_cursor,
    })
}

/// Decodes market objects one by one ([`decode_record`]): a market whose `conditionId` is
/// unusable becomes a `Rejected("gamma market")` keyed by its id; a field that drifted is
/// `None` and a [`Drift`]; the others are kept.
pub fn decode_markets(values: &[Value]) -> Records<GammaMarket> {
    decode_records(values)
}

/// Decodes one market object (`GET /markets/{id}`), with the fields read as absent.
pub fn decode_market(body: &[u8]) -> Result<(GammaMarket, Vec<Drift>), Rejected> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Rejected::new(GammaMarket::WHAT, None, e.to_string()))?;
    decode_record(&v)
}

/// Decodes one event object and, one by one, its nested markets: a bad market is rejected
/// on its own while its event is kept. `rejected` receives the rejected markets and `drifts`
/// the drifts of the event and its markets; the event itself is rejected only when its `id` is
/// unusable.
pub fn decode_event(
    mut v: Value,
    rejected: &mut Vec<Rejected>,
    drifts: &mut Vec<Drift>,
) -> Result<GammaEvent, Rejected> {
    let markets = v.as_object_mut().and_then(|o| o.remove("markets"));
    let (mut event, event_drifts) = decode_record::<GammaEvent>(&v)?;
    drifts.extend(event_drifts);
    match markets {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            let Records {
                items,
                rejected: bad,
                drifts: market_drifts,
            } = decode_markets(&values);
            // A market listed inside its event belongs to it, whether or not it says so.
            let parent = GammaEventRef {
                id: event.id.clone(),
                slug: event.slug.clone(),
                title: event.title.clone(),
            };
            let items = items
                .into_iter()
                .map(|mut m| {
                    if m.event_id().is_none() {
                        m.events = Some(vec![parent.clone()]);
                    }
                    m
                })
                .collect();
            event.markets = Some(items);
            rejected.extend(bad);
            drifts.extend(market_drifts);
        }
        Some(other) => drifts.push(Drift {
            what: GammaEvent::WHAT,
            key: event.id.clone(),
            field: "markets".into(),
            reason: format!("expected an array of markets, got {}", json_type(&other)),
        }),
    }
    Ok(event)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn decode_event_values(values: Vec<Value>) -> Records<GammaEvent> {
    let mut out = Records {
        items: Vec::with_capacity(values.len()),
        ..Records::default()
    };
    for v in values {
        match decode_event(v, &mut out.rejected, &mut out.drifts) {
            Ok(e) => out.items.push(e),
            Err(r) => out.rejected.push(r),
        }
    }
    out
}

/// Decodes a bare JSON array of events (`GET /events`), each event (and each of its markets)
/// on its own.
pub fn decode_events(body: &[u8]) -> Result<Records<GammaEvent>, serde_json::Error> {
    let values: Vec<Value> = serde_json::from_slice(body)?;
    Ok(decode_event_values(values))
}

/// Decodes a bare JSON array of tags (`GET /tags`), each tag on its own.
pub fn decode_tags(body: &[u8]) -> Result<Records<GammaTag>, serde_json::Error> {
    let values: Vec<Value> = serde_json::from_slice(body)?;
    Ok(decode_records(&values))
}

#[derive(Deserialize)]
struct RawSearch {
    #[serde(default)]
    events: Option<Vec<Value>>,
    #[serde(default)]
    pagination: Option<Value>,
}

/// Decodes a `GET /public-search` response: the envelope strictly, each event on its own.
pub fn decode_public_search(body: &[u8]) -> Result<PublicSearch, serde_json::Error> {
    let raw: RawSearch = serde_json::from_slice(body)?;
    let events = decode_event_values(raw.events.unwrap_or_default());
    let mut out = PublicSearch {
        events: events.items,
        pagination: None,
        rejected: events.rejected,
        drifts: events.drifts,
    };
    if let Some(p) = raw.pagination.filter(|p| !p.is_null()) {
        match decode_record::<SearchPagination>(&p) {
            Ok((p, drifts)) => {
                out.pagination = Some(p);
                out.drifts.extend(drifts);
            }
            Err(r) => out.rejected.push(r),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    const T1: &str =
        "104239898038807136052399800151408521467737075933964991162589336683346093173875";
    const T2: &str =
        "71183960810705820955071415844881728181970340514894896943812046065452395013351";

    fn market(v: Value) -> GammaMarket {
        let (m, drifts) = decode_record::<GammaMarket>(&v).unwrap();
        assert!(drifts.is_empty(), "{drifts:?}");
        m
    }

    #[test]
    fn given_transient_token_ids_when_asked_then_none_and_not_binary() {
        for raw in [
            json!(""),
            json!("[]"),
            json!("[\"\", \"\"]"),
            json!(["", ""]),
            json!(null),
        ] {
            let m = market(json!({"outcomes": "[\"Yes\",\"No\"]", "clobTokenIds": raw}));
            assert_eq!(m.token_ids(), None, "{raw}");
            assert!(!m.is_binary());
        }
        let m = market(json!({"outcomes": ["Yes", "No"], "clobTokenIds": [T1, T2]}));
        assert_eq!(m.token_ids(), Some([T1.to_string(), T2.to_string()]));
        assert!(m.is_binary());
        let three = market(json!({"outcomes": ["A", "B", "C"], "clobTokenIds": [T1, T2, "3"]}));
        assert_eq!(three.token_ids(), None);
    }

    #[test]
    fn given_an_empty_condition_id_when_asked_then_none() {
        assert_eq!(market(json!({"conditionId": ""})).condition_id(), None);
        assert_eq!(market(json!({})).condition_id(), None);
        assert!(!market(json!({})).enable_order_book());
    }

    #[test]
    fn given_out_of_range_values_when_quoted_then_each_is_none_and_rejected() {
        let m = market(json!({
            "conditionId": "0xabc",
            "outcomePrices": "[\"1.2\", \"-0.2\"]",
            "bestBid": 0.5, "bestAsk": 1.5, "spread": 0.01,
            "oneDayPriceChange": -1.5, "oneHourPriceChange": 0.2,
            "volume24hr": -3, "volume": "100", "liquidity": "-1",
        }));
        let (q, rejected) = m.quote();
        assert_eq!(q.price, None);
        assert_eq!(q.best_bid, Some(dec("0.5")));
        assert_eq!(q.best_ask, None);
        assert_eq!(q.price_change_1d, None);
        assert_eq!(q.price_change_1h, Some(dec("0.2")));
        assert_eq!(q.volume_24h, None);
        assert_eq!(
            q.volume_total,
            Some(dec("100")),
            "volume when volumeNum is absent"
        );
        assert_eq!(q.liquidity, None);
        assert_eq!(q.volume_1w, None, "missing stays missing");
        let fields: Vec<&str> = rejected
            .iter()
            .map(|r| r.reason.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "outcomePrices[0]",
                "bestAsk",
                "oneDayPriceChange",
                "volume24hr",
                "liquidityNum"
            ]
        );
        assert!(rejected
            .iter()
            .all(|r| r.what == "gamma value" && r.key.as_deref() == Some("0xabc")));
    }

    #[test]
    fn given_drifted_fields_when_decoded_then_the_market_is_kept_with_those_fields_absent() {
        let (m, drifts) = decode_record::<GammaMarket>(&json!({
            "id": "1", "conditionId": "0xabc", "updatedAt": "yesterday", "volume1yr": true,
            "endDate": {"oops": 1}, "volume24hr": "not a number", "outcomes": ["Yes", "No"],
            "clobTokenIds": [T1, T2], "bestBid": 0.4,
        }))
        .unwrap();
        assert_eq!(m.condition_id(), Some("0xabc"));
        assert_eq!(
            (m.updated_at, m.volume_1yr, m.end_date, m.volume_24hr),
            (None, None, None, None)
        );
        assert_eq!(
            m.best_bid,
            Some(dec("0.4")),
            "the rest of the market is kept"
        );
        assert_eq!(m.token_ids(), Some([T1.to_string(), T2.to_string()]));
        let mut fields: Vec<&str> = drifts.iter().map(|d| d.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["endDate", "updatedAt", "volume1yr", "volume24hr"]);
        assert!(drifts
            .iter()
            .all(|d| d.what == "gamma market" && d.key.as_deref() == Some("0xabc")));
        let now: Ts = "2026-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            m.to_market(now).unwrap_err(),
            "no endDate",
            "a market whose endDate drifted is not discoverable"
        );
    }

    #[test]
    fn given_an_unusable_condition_id_when_decoded_then_the_market_is_rejected_naming_it() {
        let r =
            decode_record::<GammaMarket>(&json!({"id": "1", "conditionId": {"x": 1}})).unwrap_err();
        assert_eq!((r.what, r.key.as_deref()), ("gamma market", Some("1")));
        assert!(r.reason.starts_with("field `conditionId`"), "{}", r.reason);
    }

    #[test]
    fn given_a_page_with_one_bad_market_when_decoded_then_the_others_are_kept() {
        let body = json!({
            "markets": [
                {"conditionId": "0x1", "volume24hr": 5},
                {"conditionId": "0x2", "volume24hr": "not a number"},
                {"id": "3", "conditionId": ["0x3"], "endDate": "2026-03-12T09:25:00Z"},
            ],
            "next_cursor": "abc"
        })
        .to_string();
        let page = decode_keyset_page(body.as_bytes()).unwrap();
        let kept: Vec<Option<&str>> = page.markets.iter().map(GammaMarket::condition_id).collect();
        assert_eq!(kept, [Some("0x1"), Some("0x2")]);
        assert_eq!(page.markets[1].volume_24hr, None);
        assert_eq!(page.drifts.len(), 1);
        assert_eq!(page.drifts[0].stat_key(), "gamma market.volume24hr");
        assert_eq!(page.drifts[0].key.as_deref(), Some("0x2"));
        assert_eq!(page.rejected.len(), 1);
        assert_eq!(page.rejected[0].key.as_deref(), Some("3"));
        assert_eq!(page.next_cursor.as_deref(), Some("abc"));
        let last = decode_keyset_page(br#"{"markets":[],"next_cursor":null}"#).unwrap();
        assert_eq!(last.next_cursor, None);
        assert!(
            decode_keyset_page(b"[]").is_err(),
            "a legacy bare array is not a keyset page"
        );
    }

    #[test]
    fn given_a_closed_market_when_converted_then_it_is_inactive_and_its_result_still_open() {
        let m = market(json!({
            "conditionId": "0xabc", "question": "Q?", "outcomes": "[\"Yes\", \"No\"]",
            "outcomePrices": "[\"0\", \"1\"]", "clobTokenIds": [T1, T2], "closed": true,
            "umaResolutionStatus": "resolved", "endDate": "2026-03-12T09:25:00Z", "negRisk": true,
        }));
        let now: Ts = "2026-03-01T00:00:00Z".parse().unwrap();
        let mk = m.to_market(now).unwrap();
        assert!(!mk.active && mk.neg_risk && !mk.is_resolved());
        assert_eq!(mk.tier, None);
        assert_eq!(mk.yes_token_id, T1);
        let no_end = market(
            json!({"conditionId": "0xabc", "outcomes": ["Yes","No"], "clobTokenIds": [T1, T2]}),
        );
        assert_eq!(no_end.to_market(now).unwrap_err(), "no endDate");
        let micros = market(json!({
            "conditionId": "0xabc", "outcomes": ["Yes","No"], "clobTokenIds": [T1, T2],
            "endDate": "2026-03-11T09:29:01.328428Z",
        }));
        assert_eq!(
            micros.to_market(now).unwrap().end_date,
            "2026-03-11T09:29:01.328Z".parse::<Ts>().unwrap(),
            "kept to the millisecond, as stored"
        );
    }

    #[test]
    fn given_no_neg_risk_sent_when_quoted_then_none_while_the_market_record_says_false() {
        let base = json!({
            "conditionId": "0xabc", "outcomes": ["Yes", "No"], "clobTokenIds": [T1, T2],
            "endDate": "2026-03-12T09:25:00Z",
        });
        let now: Ts = "2026-03-01T00:00:00Z".parse().unwrap();
        let absent = market(base.clone());
        assert_eq!(
            absent.quote().0.neg_risk,
            None,
            "absent is unknown, not false"
        );
        assert!(!absent.to_market(now).unwrap().neg_risk);
        for (sent, want) in [(json!(false), Some(false)), (json!("true"), Some(true))] {
            let mut v = base.clone();
            v["negRisk"] = sent;
            assert_eq!(market(v).quote().0.neg_risk, want);
        }
    }

    #[test]
    fn given_undecodable_markets_when_decoded_then_rejected_under_their_id_or_condition_id() {
        let out = decode_markets(&[
            json!({"id": "11", "conditionId": true}),
            json!({"id": 12, "conditionId": {"oops": 1}}),
            json!({"conditionId": [1]}),
            json!("not an object"),
        ]);
        assert!(out.items.is_empty());
        let keys: Vec<Option<&str>> = out.rejected.iter().map(|r| r.key.as_deref()).collect();
        assert_eq!(
            keys,
            [Some("11"), Some("12"), None, None],
            "the conditionId when it is a non-empty string or number, else the id"
        );
        assert!(out.rejected.iter().all(|r| r.what == "gamma market"));
        let (m, drifts) = decode_record::<GammaMarket>(
            &json!({"id": "13", "conditionId": 42, "endDate": {"oops": 1}}),
        )
        .unwrap();
        assert_eq!(m.condition_id(), Some("42"));
        assert_eq!(drifts[0].key.as_deref(), Some("42"));
    }

    #[test]
    fn given_an_event_with_a_bad_and_a_drifted_market_when_decoded_then_the_event_keeps_the_good_ones(
    ) {
        let body = json!([{
            "id": "21", "title": "E", "volume": 12.5, "commentCount": "lots",
            "markets": [
                {"conditionId": "0x1", "updatedAt": "yesterday"},
                {"id": "9", "conditionId": {"x": 1}},
                {"conditionId": "0x3"},
            ],
        }, {"id": {"x": 1}}])
        .to_string();
        let out = decode_events(body.as_bytes()).unwrap();
        assert_eq!(out.items.len(), 1);
        let e = &out.items[0];
        assert_eq!((e.volume, e.comment_count), (Some(dec("12.5")), None));
        let cids: Vec<Option<&str>> = e
            .markets
            .as_ref()
            .unwrap()
            .iter()
            .map(GammaMarket::condition_id)
            .collect();
        assert_eq!(cids, [Some("0x1"), Some("0x3")]);
        let whats: Vec<(&str, Option<&str>)> = out
            .rejected
            .iter()
            .map(|r| (r.what, r.key.as_deref()))
            .collect();
        assert_eq!(whats, [("gamma market", Some("9")), ("gamma event", None)]);
        let mut drifts: Vec<String> = out.drifts.iter().map(Drift::stat_key).collect();
        drifts.sort();
        assert_eq!(
            drifts,
            ["gamma event.commentCount", "gamma market.updatedAt"]
        );
    }

    #[test]
    fn given_odd_fee_schedules_or_events_when_decoded_then_they_are_absent_and_counted() {
        let base = json!({
            "conditionId": "0xabc", "outcomes": ["Yes", "No"], "clobTokenIds": [T1, T2],
            "endDate": "2026-03-12T09:25:00Z", "feesEnabled": true,
        });
        let now: Ts = "2026-03-01T00:00:00Z".parse().unwrap();
        for (odd, why) in [
            (json!({"rate": 1.5, "exponent": 1}), "outside [0,1]"),
            (json!({"rate": -0.01, "exponent": 1}), "outside [0,1]"),
            (json!({"rate": 0.03, "exponent": 1.5}), "whole number"),
            (json!({"rate": 0.03, "exponent": 0}), "whole number"),
            (json!({"rate": 0.03, "exponent": 99}), "whole number"),
            (json!({"exponent": 1}), "without a rate"),
            (json!({"rate": 0.03}), "without an exponent"),
            (
                json!({"rate": 0.03, "exponent": 1, "rebateRate": 2}),
                "rebate",
            ),
            (json!("0.03"), "invalid type"),
            (json!([0.03, 1]), "invalid type"),
        ] {
            let mut v = base.clone();
            v["feeSchedule"] = odd.clone();
            let (m, drifts) = decode_record::<GammaMarket>(&v).unwrap();
            assert_eq!(m.fee_schedule, None, "{odd}");
            assert_eq!(drifts.len(), 1, "{odd}");
            assert_eq!(drifts[0].stat_key(), "gamma market.feeSchedule");
            assert!(
                drifts[0].reason.contains(why),
                "{odd}: {}",
                drifts[0].reason
            );
            let mk = m.to_market(now).unwrap();
            assert_eq!(
                (mk.fees_enabled, mk.fee),
                (Some(true), None),
                "the market is kept, its schedule unknown"
            );
        }
        // Strings where numbers are expected, an absent takerOnly, null: as Gamma drifts.
        let mut v = base.clone();
        v["feeSchedule"] = json!({"rate": "0.04", "exponent": "2", "rebateRate": null});
        v["events"] = json!([{"id": 21, "title": "E"}, {"id": "22"}]);
        let mk = market(v).to_market(now).unwrap();
        assert_eq!(
            mk.fee,
            Some(FeeSchedule {
                rate: dec("0.04"),
                exponent: 2,
                rebate_rate: None,
                taker_only: true
            })
        );
        assert_eq!(mk.event_id.as_deref(), Some("21"), "the first event");
        let mut v = base.clone();
        v["feeSchedule"] = Value::Null;
        v["events"] = json!("not a list");
        let (m, drifts) = decode_record::<GammaMarket>(&v).unwrap();
        assert_eq!((m.fee_schedule, m.event_id()), (None, None));
        let fields: Vec<String> = drifts.iter().map(Drift::stat_key).collect();
        assert_eq!(fields, ["gamma market.events"], "null is absent, not odd");
        let no_id = market(json!({"conditionId": "0x1", "events": [{"id": ""}, {"title": "E"}]}));
        assert_eq!(no_id.event_id(), None);
    }

    fn judged(fields: Value, clob: Option<Value>) -> Verdict {
        let mut base = json!({
            "conditionId": "0xabc", "outcomes": "[\"Yes\", \"No\"]", "clobTokenIds": [T1, T2],
            "closed": true, "closedTime": "2026-03-19 23:20:15+00",
        });
        for (k, v) in fields.as_object().unwrap() {
            base[k] = v.clone();
        }
        let clob = clob.map(|c| serde_json::from_value::<ClobMarket>(c).unwrap());
        market(base).verdict(clob.as_ref(), "2026-03-20T00:00:00Z".parse().unwrap())
    }

    fn pending(status: Option<&str>) -> Verdict {
        Verdict::Pending {
            uma_status: status.map(str::to_owned),
            needs_clob: false,
        }
    }

    #[test]
    fn given_proposed_disputed_or_unknown_statuses_when_judged_then_pending_whatever_the_prices() {
        for (status, prices) in [
            ("proposed", "[\"0.9995\", \"0.0005\"]"),
            ("proposed", "[\"1\", \"0\"]"),
            ("proposed", "[\"0.5\", \"0.5\"]"),
            ("disputed", "[\"1\", \"0\"]"),
            ("challenged", "[\"0\", \"1\"]"),
        ] {
            let v = judged(
                json!({"umaResolutionStatus": status, "outcomePrices": prices}),
                None,
            );
            assert_eq!(v, pending(Some(status)), "{status} {prices}");
        }
        let open = judged(
            json!({"closed": false, "umaResolutionStatus": "resolved", "outcomePrices": "[\"1\", \"0\"]"}),
            None,
        );
        assert_eq!(open, Verdict::Open, "not closed: never final");
        let no_prices = judged(json!({"umaResolutionStatus": "resolved"}), None);
        assert_eq!(no_prices, pending(Some("resolved")));
    }

    #[test]
    fn given_final_prices_when_judged_then_winner_invalid_or_payout_vector() {
        let Verdict::Final(w) = judged(
            json!({"umaResolutionStatus": "resolved", "outcomePrices": "[\"1\", \"0\"]"}),
            None,
        ) else {
            panic!("1/0 resolved is final")
        };
        assert_eq!((w.winner, w.invalid), (Some(0), false));
        let Verdict::Final(split) = judged(
            json!({"umaResolutionStatus": "resolved", "outcomePrices": "[\"0.5\", \"0.5\"]"}),
            None,
        ) else {
            panic!("a resolved split is final")
        };
        assert_eq!((split.winner, split.invalid), (None, true), "INVALID");
        let Verdict::Final(v) = judged(
            json!({"umaResolutionStatus": "resolved", "outcomePrices": "[\"0.58\", \"0.42\"]"}),
            None,
        ) else {
            panic!("a resolved payout vector is final")
        };
        assert_eq!((v.winner, v.invalid), (None, false));
        assert_eq!(v.payouts, vec![Decimal::new(58, 2), Decimal::new(42, 2)]);
    }

    #[test]
    fn given_no_uma_status_when_judged_then_the_clob_must_agree() {
        // Prices frozen at close, and a CLOB that already reads closed with no winner: not a
        // result, and the CLOB is not even asked.
        let frozen = json!({"outcomePrices": "[\"0.62\", \"0.38\"]"});
        let closed = json!({"closed": true, "tokens": [
            {"token_id": T1, "winner": false}, {"token_id": T2, "winner": false}]});
        assert_eq!(judged(frozen.clone(), None), pending(None));
        assert_eq!(judged(frozen, Some(closed)), pending(None));
        let prices = json!({"outcomePrices": "[\"0.5\", \"0.5\"]"});
        assert_eq!(
            judged(prices.clone(), None),
            Verdict::Pending {
                uma_status: None,
                needs_clob: true
            }
        );
        let void = json!({"closed": true, "is_50_50_outcome": true, "tokens": [
            {"token_id": T1, "winner": false}, {"token_id": T2, "winner": false}]});
        let Verdict::Final(o) = judged(prices.clone(), Some(void)) else {
            panic!("the CLOB's is_50_50_outcome confirms a split")
        };
        assert!(o.invalid && o.source == "gamma+clob");
        let lagging = json!({"closed": false, "tokens": [
            {"token_id": T1, "winner": false}, {"token_id": T2, "winner": false}]});
        assert_eq!(
            judged(prices, Some(lagging.clone())),
            pending(None),
            "CLOB lags: wait"
        );
        let one_zero = json!({"outcomePrices": "[\"0\", \"1\"]"});
        assert_eq!(judged(one_zero.clone(), Some(lagging)), pending(None));
        let agrees = json!({"closed": true, "tokens": [
            {"token_id": T1, "winner": false}, {"token_id": T2, "winner": true}]});
        let Verdict::Final(o) = judged(one_zero, Some(agrees)) else {
            panic!("the CLOB's winner is the token priced 1")
        };
        assert_eq!(o.winner, Some(1));
    }
}
