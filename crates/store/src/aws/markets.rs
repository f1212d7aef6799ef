//! The Markets table: partition key `condition_id` (S), one item per market with every field
//! and the record's `version` (N).
//!
//! **Writes are versioned.** Each market is one `PutItem` conditional on the version the
//! writer read: `attribute_not_exists(condition_id)` for a new market (version 0), else
//! `version = :v`; the item is stored with `version + 1`. A `ConditionalCheckFailedException`
//! means another writer got there first: the market's id is returned as a conflict for the
//! caller to read again, never an error. `BatchWriteItem` cannot carry conditions, so the puts
//! go concurrently instead, at most [`MARKET_WRITES_IN_FLIGHT`] at a time.
//!
//! **Markets by end date.** The sparse attribute `live` (`"1"`) exists only on active markets.
//! The global secondary index [`ACTIVE_BY_END_INDEX`] (partition `live`, sort `end_date` N in
//! epoch ms, projection ALL) therefore holds exactly the active markets in end-date order: the
//! markets a tick of tier T samples at time t are one Query over T's end-date window
//! ([`polytape_core::Tier::end_window`]), whatever tier was last stored, and re-tier reads
//! only the ranges whose tier can have changed since its last run the same way; counts are
//! `Select=COUNT` Queries over the same windows; "every active market" is one Query of the whole
//! partition. An inactive market keeps its item (readable by id) but drops out of the index.
//! The one Scan of the table is `all_markets`, for the daily `markets` dimension only (about
//! once an hour), never on a per-tick path.

use super::error::backend;
use super::item::{ms, n, pair, s, tier, Item, ItemBuilder, Read};
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::MarketStore;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures_util::{StreamExt, TryStreamExt};
use polytape_core::{Market, MarketResult, Tier, Ts};
use std::collections::{BTreeMap, HashMap};

/// The sparse index of the active markets by end date.
pub const ACTIVE_BY_END_INDEX: &str = "active_by_end";
/// The index's partition key: present, as [`LIVE_VALUE`], only on active markets.
pub const LIVE_ATTR: &str = "live";
/// The value of [`LIVE_ATTR`] on active markets.
pub const LIVE_VALUE: &str = "1";
/// The value of [`LIVE_ATTR`] on inactive markets awaiting a result
/// ([`Market::awaits_result`]): the same index finds them with one Query.
pub const AWAITING_VALUE: &str = "awaiting";
/// The index's sort key: the end date in epoch milliseconds (N).
pub const END_DATE_ATTR: &str = "end_date";
/// Conditional puts of one `write_markets` call in flight at once.
pub const MARKET_WRITES_IN_FLIGHT: usize = 16;

const VERSION_ATTR: &str = "version";

/// The item of `m` as written by a versioned put: every field, `version` = `m.version + 1`,
/// and [`LIVE_ATTR`] while the market is active.
pub(crate) fn market_item(m: &Market) -> Result<Item> {
    let next = m.version.checked_add(1).ok_or_else(|| {
        StoreError::Encode(format!(
            "market {}: version {} overflows",
            m.condition_id, m.version
        ))
    })?;
    let result = serde_json::to_string(&m.result)
        .map_err(|e| StoreError::Encode(format!("market {}: {e}", m.condition_id)))?;
    let fee = m
        .fee
        .map(|f| serde_json::to_string(&f))
        .transpose()
        .map_err(|e| StoreError::Encode(format!("market {}: {e}", m.condition_id)))?;
    Ok(ItemBuilder::default()
        .set("condition_id", s(&m.condition_id))
        .set("question", s(&m.question))
        .opt("slug", m.slug.as_deref().map(s))
        .set("yes_token_id", s(&m.yes_token_id))
        .set("no_token_id", s(&m.no_token_id))
        .set("outcomes", pair(&m.outcomes))
        .set(END_DATE_ATTR, ms(m.end_date))
        .opt("tier", m.tier.map(tier))
        .set("active", AttributeValue::Bool(m.active))
        .set("resolved", AttributeValue::Bool(m.is_resolved()))
        .opt("outcome", m.winning_outcome().map(s))
        .set(RESULT_ATTR, s(result))
        .opt("closed_at", m.closed_at.map(ms))
        .set("delisted", AttributeValue::Bool(m.delisted))
        .set("first_seen", ms(m.first_seen))
        .opt("category", m.category.as_deref().map(s))
        .set("neg_risk", AttributeValue::Bool(m.neg_risk))
        .opt("volume_24h", m.volume_24h.map(|d| s(d.to_string())))
        .opt("event_id", m.event_id.as_deref().map(s))
        .opt("fees_enabled", m.fees_enabled.map(AttributeValue::Bool))
        .opt(FEE_ATTR, fee.map(s))
        .opt(LIVE_ATTR, live_value(m).map(s))
        .set(VERSION_ATTR, n(next))
        .build())
}

/// The index partition `m` belongs to: [`LIVE_VALUE`] while sampled, [`AWAITING_VALUE`] while
/// awaiting a result, none once resolved or given up on.
fn live_value(m: &Market) -> Option<&'static str> {
    if m.active {
        Some(LIVE_VALUE)
    } else if m.awaits_result() {
        Some(AWAITING_VALUE)
    } else {
        None
    }
}

/// The market's result, as JSON ([`polytape_core::MarketResult`]).
const RESULT_ATTR: &str = "result";
/// The market's fee schedule, as JSON ([`polytape_core::FeeSchedule`]); absent when unknown.
const FEE_ATTR: &str = "fee";

/// The market of an item. An item written before versions existed has no `version`: it is a
/// stored market, so version 1 (as the local adapter migrates its rows).
pub(crate) fn market_from_item(item: &Item) -> Result<Market> {
    let id = match item.get("condition_id") {
        Some(AttributeValue::S(id)) => id.as_str(),
        _ => "?",
    };
    let r = Read::new(item, format!("markets item {id}"));
    Ok(Market {
        condition_id: r.s("condition_id")?,
        question: r.s("question")?,
        slug: r.opt_s("slug")?,
        yes_token_id: r.s("yes_token_id")?,
        no_token_id: r.s("no_token_id")?,
        outcomes: r.pair("outcomes")?,
        end_date: r.ts(END_DATE_ATTR)?,
        tier: r.opt_tier("tier")?,
        active: r.bool("active")?,
        result: match r.opt_s(RESULT_ATTR)? {
            None => MarketResult::Open,
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                StoreError::Encode(format!("markets item {id}: {RESULT_ATTR}: {e}"))
            })?,
        },
        closed_at: r.opt_ts("closed_at")?,
        delisted: r.opt_bool("delisted")?.unwrap_or(false),
        first_seen: r.ts("first_seen")?,
        category: r.opt_s("category")?,
        neg_risk: r.bool("neg_risk")?,
        volume_24h: r.opt_dec("volume_24h")?,
        event_id: r.opt_s("event_id")?,
        fees_enabled: r.opt_bool("fees_enabled")?,
        fee: r
            .opt_s(FEE_ATTR)?
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StoreError::Encode(format!("markets item {id}: {FEE_ATTR}: {e}")))?,
        version: r.opt_n(VERSION_ATTR)?.unwrap_or(1),
    })
}

/// The end dates (epoch ms) one Query of the index selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndRange {
    /// Every active market.
    All,
    /// Every inactive market awaiting a result (the [`AWAITING_VALUE`] partition).
    Awaiting,
    /// `end_date > after`.
    After(i64),
    /// `lo <= end_date <= hi`.
    Between(i64, i64),
    /// `end_date <= up_to`.
    UpTo(i64),
}

impl EndRange {
    /// The markets `tier` holds at `at`: `after < end_date <= up_to` of
    /// [`Tier::end_window`], in the milliseconds the items store. `BETWEEN` is inclusive at
    /// both ends, so the exclusive lower bound becomes `after + 1` ms, which is exact on
    /// integers. `None` when the window is empty.
    pub(crate) fn due(tier: Tier, at: Ts) -> Option<EndRange> {
        let (after, up_to) = tier.end_window(at);
        EndRange::ending(after, up_to)
    }

    /// `after < end_date <= up_to` (no upper bound when `up_to` is `None`), in the
    /// milliseconds the items store, as [`EndRange::due`] explains. `None` when empty.
    pub(crate) fn ending(after: Ts, up_to: Option<Ts>) -> Option<EndRange> {
        let after = after.timestamp_millis();
        match up_to.map(|u| u.timestamp_millis()) {
            None => Some(EndRange::After(after)),
            Some(up_to) if up_to > after => Some(EndRange::Between(after + 1, up_to)),
            Some(_) => None,
        }
    }

    /// Active markets past T4's window at `at`: expired, not yet retired.
    pub(crate) fn expired(at: Ts) -> EndRange {
        EndRange::UpTo(Tier::T4.end_window(at).0.timestamp_millis())
    }

    /// The index partition it reads.
    fn partition(self) -> &'static str {
        match self {
            EndRange::Awaiting => AWAITING_VALUE,
            _ => LIVE_VALUE,
        }
    }

    /// The key condition and its values.
    fn condition(self) -> (&'static str, Vec<(&'static str, i64)>) {
        match self {
            EndRange::All | EndRange::Awaiting => ("#live = :live", vec![]),
            EndRange::After(a) => ("#live = :live AND #end > :a", vec![(":a", a)]),
            EndRange::Between(lo, hi) => (
                "#live = :live AND #end BETWEEN :lo AND :hi",
                vec![(":lo", lo), (":hi", hi)],
            ),
            EndRange::UpTo(u) => ("#live = :live AND #end <= :u", vec![(":u", u)]),
        }
    }
}

/// What one Query page returned: its items, or only their count.
enum Wanted {
    Items,
    Count,
}

impl AwsStore {
    /// One versioned put. `Ok(false)` when the stored version was not `m.version` — unless
    /// the stored item is exactly this write: an attempt the SDK timed out and retried may
    /// have been applied, and its retry then fails the condition on its own write (seen on a
    /// loaded moto: 12 of 60 first writes reported as conflicts). A consistent read tells
    /// them apart, and costs only on a refused put.
    async fn put_market(&self, m: &Market) -> Result<bool> {
        let table = &self.names.markets_table;
        let condition = match m.version {
            0 => "attribute_not_exists(#id)",
            // An item written before versions existed reads as version 1 (it has none).
            1 => "#v = :v OR (attribute_exists(#id) AND attribute_not_exists(#v))",
            _ => "#v = :v",
        };
        let mut req = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(market_item(m)?))
            .condition_expression(condition);
        // DynamoDB refuses a name or value the expression does not use.
        if m.version <= 1 {
            req = req.expression_attribute_names("#id", "condition_id");
        }
        if m.version > 0 {
            req = req
                .expression_attribute_names("#v", VERSION_ATTR)
                .expression_attribute_values(":v", n(m.version));
        }
        let _in_flight = self.market_put_started();
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let ours = Market {
                    version: m.version + 1,
                    ..m.clone()
                };
                if self.get_market(&m.condition_id).await?.as_ref() == Some(&ours) {
                    tracing::debug!(condition_id = %m.condition_id, version = m.version, "market put refused on a retry of its own applied attempt: written");
                    return Ok(true);
                }
                tracing::debug!(condition_id = %m.condition_id, version = m.version, "market changed since it was read: not written");
                Ok(false)
            }
            Err(e) => Err(backend("PutItem", table, e)),
        }
    }

    /// Every page of one Query of the index over `range`: the markets, or (with
    /// [`Wanted::Count`]) an empty list and their number.
    async fn query_live(&self, range: EndRange, wanted: Wanted) -> Result<(Vec<Market>, u64)> {
        let table = &self.names.markets_table;
        let (condition, values) = range.condition();
        let mut out = Vec::new();
        let mut total = 0u64;
        let mut start = None;
        loop {
            let mut q = self
                .ddb
                .query()
                .table_name(table)
                .index_name(ACTIVE_BY_END_INDEX)
                .key_condition_expression(condition)
                .expression_attribute_names("#live", LIVE_ATTR)
                .expression_attribute_values(":live", s(range.partition()))
                .set_exclusive_start_key(start);
            if !matches!(range, EndRange::All | EndRange::Awaiting) {
                q = q.expression_attribute_names("#end", END_DATE_ATTR);
            }
            for (name, v) in &values {
                q = q.expression_attribute_values(*name, n(v));
            }
            if matches!(wanted, Wanted::Count) {
                q = q.select(Select::Count);
            }
            let page = q
                .send()
                .await
                .map_err(|e| backend("Query", &format!("{table}/{ACTIVE_BY_END_INDEX}"), e))?;
            total += u64::try_from(page.count).unwrap_or(0);
            for item in page.items.unwrap_or_default() {
                out.push(market_from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok((out, total)),
            }
        }
    }

    /// The active markets in `range`, by condition id.
    async fn live_markets(&self, range: EndRange) -> Result<Vec<Market>> {
        let (mut markets, _) = self.query_live(range, Wanted::Items).await?;
        markets.sort_by(|a, b| a.condition_id.cmp(&b.condition_id));
        Ok(markets)
    }

    /// Every item of the Markets table, page by page (`all_markets`: the daily dimension,
    /// about once an hour).
    async fn scan_markets(&self) -> Result<Vec<Market>> {
        let table = &self.names.markets_table;
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Scan", table, e))?;
            for item in page.items.unwrap_or_default() {
                out.push(market_from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

/// The markets in rounds: a condition id's first record in round 0, its second in round 1, …
/// Rounds run one after the other and the puts within a round concurrently, so several
/// records of one market in one call are applied in order, as the local adapter's one
/// transaction applies them. Each record keeps its index in the call.
fn rounds(markets: &[Market]) -> Vec<Vec<(usize, &Market)>> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(markets.len());
    let mut rounds: Vec<Vec<(usize, &Market)>> = Vec::new();
    for (i, m) in markets.iter().enumerate() {
        let r = seen.entry(m.condition_id.as_str()).or_insert(0);
        if rounds.len() <= *r {
            rounds.push(Vec::new());
        }
        rounds[*r].push((i, m));
        *r += 1;
    }
    rounds
}

impl MarketStore for AwsStore {
    /// One conditional `PutItem` per market, at most [`MARKET_WRITES_IN_FLIGHT`] in flight.
    /// Conflicts come back in the order of `markets`. A failed request (not a conflict) fails
    /// the call; puts already made stay made (each is whole), and the caller's retry sees
    /// them as conflicts and reads them again.
    async fn write_markets(&self, markets: &[Market]) -> Result<Vec<String>> {
        let mut conflicts: Vec<(usize, String)> = Vec::new();
        for round in rounds(markets) {
            // The futures are built before they are streamed (no closure inside the stream),
            // which keeps this future `Send`.
            let puts: Vec<_> = round
                .into_iter()
                .map(|(i, m)| async move {
                    Ok::<_, StoreError>(
                        (!self.put_market(m).await?).then(|| (i, m.condition_id.clone())),
                    )
                })
                .collect();
            let lost: Vec<Option<(usize, String)>> = futures_util::stream::iter(puts)
                .buffer_unordered(MARKET_WRITES_IN_FLIGHT)
                .try_collect()
                .await?;
            conflicts.extend(lost.into_iter().flatten());
        }
        conflicts.sort();
        Ok(conflicts.into_iter().map(|(_, id)| id).collect())
    }

    /// One Query of the index over the end-date range, followed page by page (a tier's
    /// window for `markets_due`).
    async fn markets_ending(&self, after: Ts, up_to: Option<Ts>) -> Result<Vec<Market>> {
        match EndRange::ending(after, up_to) {
            Some(range) => self.live_markets(range).await,
            None => Ok(Vec::new()),
        }
    }

    /// One Query of the whole index partition.
    async fn active_markets(&self) -> Result<Vec<Market>> {
        self.live_markets(EndRange::All).await
    }

    async fn markets_awaiting_result(&self) -> Result<Vec<Market>> {
        self.live_markets(EndRange::Awaiting).await
    }

    /// A paginated Scan of the whole table (a Scan returns items in hash order, so they are
    /// sorted here). For the daily `markets` dimension only, about once an hour: at 10,000
    /// markets of ~500 B it reads about 5 MB, ≈ 625 RRU (eventually consistent).
    async fn all_markets(&self) -> Result<Vec<Market>> {
        let mut all = self.scan_markets().await?;
        all.sort_by(|a, b| a.condition_id.cmp(&b.condition_id));
        Ok(all)
    }

    async fn get_market(&self, condition_id: &str) -> Result<Option<Market>> {
        let table = &self.names.markets_table;
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("condition_id", s(condition_id))
            // A writer reads the version it will write against: it must be the current one.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", table, e))?;
        out.item.as_ref().map(market_from_item).transpose()
    }

    /// Six `Select=COUNT` Queries: one per tier window and one for the expired markets.
    /// Together they read the index once (COUNT is billed for what it reads).
    async fn count_due(&self, at: Ts) -> Result<BTreeMap<Option<Tier>, u64>> {
        let mut ranges: Vec<(Option<Tier>, EndRange)> = Tier::ALL
            .iter()
            .filter_map(|t| EndRange::due(*t, at).map(|r| (Some(*t), r)))
            .collect();
        ranges.push((None, EndRange::expired(at)));
        let mut counts = BTreeMap::new();
        for (t, range) in ranges {
            let (_, count) = self.query_live(range, Wanted::Count).await?;
            if count > 0 {
                counts.insert(t, count);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{at, market};

    #[test]
    fn given_markets_then_items_round_trip_with_the_next_version_and_only_active_ones_are_live() {
        let tiered = market(1, Some(Tier::T3), true);
        let mut bare = market(2, None, true);
        bare.slug = None;
        bare.category = None;
        bare.volume_24h = None;
        bare.event_id = None;
        bare.fees_enabled = None;
        bare.fee = None;
        bare.version = 41;
        let mut ended = market(3, Some(Tier::T2), false);
        ended.result = MarketResult::Resolved(polytape_core::Outcome {
            winner: Some(1),
            invalid: false,
            payouts: vec![rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ONE],
            resolved_at: None,
            learned_at: at("2026-11-20T06:00:00Z"),
            uma_status: Some("resolved".into()),
            source: "gamma".into(),
        });
        let mut waiting = market(4, None, false);
        waiting.result = MarketResult::Pending { uma_status: None };
        for (m, live) in [
            (&tiered, Some("1")),
            (&bare, Some("1")),
            (&ended, None),
            (&waiting, Some("awaiting")),
        ] {
            let item = market_item(m).unwrap();
            let back = market_from_item(&item).unwrap();
            assert_eq!(
                back,
                Market {
                    version: m.version + 1,
                    ..m.clone()
                },
                "stored as the next version"
            );
            assert_eq!(
                item.get(LIVE_ATTR)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str),
                live,
                "{}",
                m.condition_id
            );
        }
        assert_eq!(
            market_item(&tiered).unwrap()[LIVE_ATTR].as_s().unwrap(),
            "1"
        );
        assert!(
            !market_item(&bare).unwrap().contains_key("slug"),
            "absent, not NULL"
        );
        assert_eq!(
            market_item(&tiered)
                .unwrap()
                .get("volume_24h")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("123456.789012345678"),
            "decimals keep every digit"
        );
        let mut max = market(4, None, true);
        max.version = u64::MAX;
        assert!(matches!(market_item(&max), Err(StoreError::Encode(_))));
    }

    #[test]
    fn given_an_item_from_before_versions_then_it_reads_as_version_1() {
        let mut item = market_item(&market(1, Some(Tier::T1), true)).unwrap();
        item.remove(VERSION_ATTR);
        assert_eq!(market_from_item(&item).unwrap().version, 1);
    }

    #[test]
    fn given_tier_windows_then_the_key_ranges_are_exact_in_milliseconds() {
        let now = at("2026-11-20T12:00:00.250Z");
        let ms = |s: &str| at(s).timestamp_millis();
        assert_eq!(
            EndRange::due(Tier::T4, now),
            Some(EndRange::Between(
                ms("2026-11-19T12:00:00.251Z"),
                ms("2026-11-20T13:00:00.250Z")
            ))
        );
        assert_eq!(
            EndRange::due(Tier::T0, now),
            Some(EndRange::After(ms("2026-11-22T12:00:00.250Z")))
        );
        assert_eq!(
            EndRange::expired(now),
            EndRange::UpTo(ms("2026-11-19T12:00:00.250Z"))
        );
        // Each end date around every boundary falls in exactly the range of its tier.
        for boundary_h in [-24i64, 0, 1, 4, 12, 48] {
            for off in [-1i64, 0, 1] {
                let end = now + chrono::Duration::milliseconds(boundary_h * 3_600_000 + off);
                let e = end.timestamp_millis();
                let inside = |r: EndRange| match r {
                    EndRange::All | EndRange::Awaiting => true,
                    EndRange::After(a) => e > a,
                    EndRange::Between(lo, hi) => lo <= e && e <= hi,
                    EndRange::UpTo(u) => e <= u,
                };
                for t in Tier::ALL {
                    let want = Tier::at(now, end) == Some(t);
                    assert_eq!(
                        EndRange::due(t, now).is_some_and(inside),
                        want,
                        "{end} in {t}"
                    );
                }
                assert_eq!(
                    inside(EndRange::expired(now)),
                    Tier::at(now, end).is_none(),
                    "{end}"
                );
            }
        }
    }

    #[test]
    fn given_a_market_twice_in_one_call_then_its_records_go_in_successive_rounds() {
        let a = market(1, Some(Tier::T1), true);
        let b = market(2, Some(Tier::T1), true);
        let calls = [a.clone(), b.clone(), a.clone(), a.clone()];
        let r: Vec<Vec<usize>> = rounds(&calls)
            .into_iter()
            .map(|round| round.into_iter().map(|(i, _)| i).collect())
            .collect();
        assert_eq!(r, vec![vec![0, 1], vec![2], vec![3]]);
    }
}
