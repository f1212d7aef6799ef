//! The Markets table: partition key `condition_id` (S), one item per market with every field.
//!
//! The sparse attribute `tier_key` exists only on active markets: `T0`…`T4` for a tiered one,
//! [`UNTIERED_KEY`] for an active market without a tier (its end date passed but discovery has
//! not closed it yet). The global secondary index [`BY_TIER_INDEX`] (`tier_key`,
//! `condition_id`, projection ALL) therefore holds exactly the active markets, partitioned by
//! tier and sorted by id: "markets in tier T" is one Query, "active markets" six, and counts
//! are `Select=COUNT` queries. An inactive market keeps its item (readable by id) but drops out
//! of the index, which costs nothing to keep. The one Scan of the table is `all_markets`, for
//! the daily `markets` dimension only (about once an hour), never on a per-tick path.

use super::batch::{chunks, send_until_done, MAX_BATCH_WRITE_ITEMS, RETRY};
use super::error::backend;
use super::item::{ms, pair, s, tier, Item, ItemBuilder, Read};
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::MarketStore;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, Select, WriteRequest};
use polytape_core::{Market, Tier};
use std::collections::{BTreeMap, HashMap};

/// The index of active markets by tier.
pub const BY_TIER_INDEX: &str = "by_tier";
/// `tier_key` of an active market that has no tier.
pub const UNTIERED_KEY: &str = "none";

const TIER_KEY: &str = "tier_key";

/// The `tier_key` of a market: present only while it is active.
pub(crate) fn tier_key(m: &Market) -> Option<String> {
    m.active.then(|| {
        m.tier
            .map_or_else(|| UNTIERED_KEY.to_string(), |t| t.to_string())
    })
}

/// Every `tier_key` value, tiers first.
fn all_tier_keys() -> impl Iterator<Item = String> {
    Tier::ALL
        .iter()
        .map(|t| t.to_string())
        .chain(std::iter::once(UNTIERED_KEY.to_string()))
}

pub(crate) fn market_item(m: &Market) -> Item {
    ItemBuilder::default()
        .set("condition_id", s(&m.condition_id))
        .set("question", s(&m.question))
        .opt("slug", m.slug.as_deref().map(s))
        .set("yes_token_id", s(&m.yes_token_id))
        .set("no_token_id", s(&m.no_token_id))
        .set("outcomes", pair(&m.outcomes))
        .set("end_date", ms(m.end_date))
        .opt("tier", m.tier.map(tier))
        .set("active", AttributeValue::Bool(m.active))
        .set("resolved", AttributeValue::Bool(m.resolved))
        .opt("outcome", m.outcome.as_deref().map(s))
        .set("first_seen", ms(m.first_seen))
        .opt("category", m.category.as_deref().map(s))
        .set("neg_risk", AttributeValue::Bool(m.neg_risk))
        .opt("volume_24h", m.volume_24h.map(|d| s(d.to_string())))
        .opt(TIER_KEY, tier_key(m).map(s))
        .build()
}

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
        end_date: r.ts("end_date")?,
        tier: r.opt_tier("tier")?,
        active: r.bool("active")?,
        resolved: r.bool("resolved")?,
        outcome: r.opt_s("outcome")?,
        first_seen: r.ts("first_seen")?,
        category: r.opt_s("category")?,
        neg_risk: r.bool("neg_risk")?,
        volume_24h: r.opt_dec("volume_24h")?,
    })
}

/// Keeps the last of several records with the same key, in first-seen order: one
/// `BatchWriteItem` may not name a key twice, and the last record is what the caller meant.
pub(crate) fn last_per_key<T>(records: &[T], key: impl Fn(&T) -> String) -> Vec<&T> {
    let mut at: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut out: Vec<&T> = Vec::with_capacity(records.len());
    for r in records {
        match at.entry(key(r)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = r,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(r);
            }
        }
    }
    out
}

impl AwsStore {
    /// Writes `items` to `table` in `BatchWriteItem`s of at most 25 puts, resending
    /// unprocessed items with backoff.
    pub(crate) async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<()> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::Encode(format!("put request: {e}")))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>>>()?;
        let what = format!("BatchWriteItem on {table}");
        for chunk in chunks(requests, MAX_BATCH_WRITE_ITEMS, usize::MAX, |_| 0) {
            send_until_done(&what, chunk, &RETRY, |c| self.batch_write_once(table, c)).await?;
        }
        Ok(())
    }

    /// One `BatchWriteItem`; returns the requests DynamoDB left unprocessed.
    async fn batch_write_once(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>> {
        // moto accepts 26 items, real DynamoDB does not: this is the guarantee.
        assert!(
            requests.len() <= MAX_BATCH_WRITE_ITEMS,
            "BatchWriteItem with {} items",
            requests.len()
        );
        self.record_batch_write(requests.len());
        let out = self
            .ddb
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| backend("BatchWriteItem", table, e))?;
        Ok(out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default())
    }

    /// Every market of one `tier_key` partition of the index, by condition id.
    async fn query_tier_key(&self, key: &str) -> Result<Vec<Market>> {
        let table = &self.names.markets_table;
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(table)
                .index_name(BY_TIER_INDEX)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", TIER_KEY)
                .expression_attribute_values(":k", s(key))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &format!("{table}/{BY_TIER_INDEX}"), e))?;
            for item in page.items.unwrap_or_default() {
                out.push(market_from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
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

    /// The number of markets in one `tier_key` partition of the index.
    async fn count_tier_key(&self, key: &str) -> Result<u64> {
        let table = &self.names.markets_table;
        let mut total = 0u64;
        let mut start = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(table)
                .index_name(BY_TIER_INDEX)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", TIER_KEY)
                .expression_attribute_values(":k", s(key))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &format!("{table}/{BY_TIER_INDEX}"), e))?;
            total += u64::try_from(page.count).unwrap_or(0);
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }
}

impl MarketStore for AwsStore {
    async fn upsert_markets(&self, markets: &[Market]) -> Result<()> {
        let items = last_per_key(markets, |m| m.condition_id.clone())
            .into_iter()
            .map(market_item)
            .collect();
        self.batch_put(&self.names.markets_table, items).await
    }

    async fn markets_in_tier(&self, tier: Tier) -> Result<Vec<Market>> {
        self.query_tier_key(&tier.to_string()).await
    }

    async fn active_markets(&self) -> Result<Vec<Market>> {
        let mut all = Vec::new();
        for key in all_tier_keys() {
            all.extend(self.query_tier_key(&key).await?);
        }
        all.sort_by(|a, b| a.condition_id.cmp(&b.condition_id));
        Ok(all)
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
            // A caller that just wrote the market (discovery keeping first_seen) reads it back.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", table, e))?;
        out.item.as_ref().map(market_from_item).transpose()
    }

    async fn count_by_tier(&self) -> Result<BTreeMap<Option<Tier>, u64>> {
        let mut counts = BTreeMap::new();
        for (key, t) in all_tier_keys().zip(Tier::ALL.map(Some).into_iter().chain([None])) {
            let n = self.count_tier_key(&key).await?;
            if n > 0 {
                counts.insert(t, n);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::market;

    #[test]
    fn given_markets_then_items_round_trip_and_only_active_ones_carry_a_tier_key() {
        let tiered = market(1, Some(Tier::T3), true);
        let mut bare = market(2, None, true);
        bare.slug = None;
        bare.category = None;
        bare.volume_24h = None;
        bare.outcome = None;
        let mut ended = market(3, Some(Tier::T2), false);
        ended.resolved = true;
        ended.outcome = Some("Down".into());
        for (m, key) in [
            (&tiered, Some("T3")),
            (&bare, Some(UNTIERED_KEY)),
            (&ended, None),
        ] {
            let item = market_item(m);
            assert_eq!(market_from_item(&item).unwrap(), *m);
            assert_eq!(
                item.get(TIER_KEY)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str),
                key,
                "{}",
                m.condition_id
            );
        }
        assert!(!market_item(&bare).contains_key("slug"), "absent, not NULL");
        assert_eq!(
            market_item(&tiered)
                .get("volume_24h")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("123456.789012345678"),
            "decimals keep every digit"
        );
    }

    #[test]
    fn given_a_key_twice_then_the_last_record_wins_in_first_seen_order() {
        let recs = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")];
        let kept: Vec<&str> = last_per_key(&recs, |r| r.0.to_string())
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(kept, vec!["c", "e", "d"]);
    }
}
