//! The Latest table: partition key `tier` (N), one item per tier rewritten every tick.
//!
//! The body is the [`LatestTier`] as JSON, gzip-compressed into the binary attribute `body`;
//! `tick_ts` (N, epoch ms) and `markets` (the entry count) sit beside it. `tick_ts` is what the
//! conditional put compares: `attribute_not_exists(tier) OR tick_ts <= :t`, so a late or
//! redelivered tick never replaces a newer tick's item (a `ConditionalCheckFailedException`
//! is that case: success, nothing written), while a retry of the same tick does replace it. A DynamoDB item is at most 400 KB ([`MAX_ITEM_BYTES`]): compressed, an entry takes
//! about 65 bytes (the random condition id dominates), so a tier holds about 6,000 markets
//! before the write is refused — 3,000 markets are ~190 KB. Compression also divides the
//! per-tick write cost (DynamoDB bills each started KB written) by about 3.7.

use super::error::backend;
use super::item::{b, ms, n, tier, ItemBuilder, Read};
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::LatestStore;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use polytape_core::ops::LatestTier;
use polytape_core::Tier;
use std::io::{Read as _, Write as _};

/// DynamoDB's item size limit (400 KB, names and values together).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Room kept for the attribute names and the small attributes beside the body.
const ITEM_OVERHEAD: usize = 128;

/// A decompressed body larger than this is refused rather than allocated (a corrupted or
/// hostile item must not exhaust a Lambda's memory).
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// The gzip-compressed JSON body of `latest`.
pub(crate) fn encode_body(latest: &LatestTier) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(latest)?;
    let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 3), Compression::default());
    gz.write_all(&json)
        .and_then(|()| gz.finish())
        .map_err(|e| StoreError::Encode(format!("gzip latest body: {e}")))
}

pub(crate) fn decode_body(bytes: &[u8]) -> Result<LatestTier> {
    let mut json = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut json)
        .map_err(|e| StoreError::Encode(format!("gunzip latest body: {e}")))?;
    Ok(serde_json::from_slice(&json)?)
}

impl LatestStore for AwsStore {
    async fn get_latest(&self, t: Tier) -> Result<Option<LatestTier>> {
        let table = &self.names.latest_table;
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("tier", tier(t))
            .send()
            .await
            .map_err(|e| backend("GetItem", table, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let r = Read::new(&item, format!("{table} item tier {t}"));
        decode_body(r.blob("body")?).map(Some)
    }

    async fn put_latest(&self, latest: &LatestTier) -> Result<bool> {
        let table = &self.names.latest_table;
        let body = encode_body(latest)?;
        if body.len() + ITEM_OVERHEAD > MAX_ITEM_BYTES {
            return Err(StoreError::Encode(format!(
                "{table} item of {}: {} markets compress to {} bytes, over DynamoDB's \
                 {MAX_ITEM_BYTES}-byte item limit",
                latest.tier,
                latest.markets.len(),
                body.len()
            )));
        }
        let item = ItemBuilder::default()
            .set("tier", tier(latest.tier))
            .set("tick_ts", ms(latest.tick_ts))
            .set("markets", n(latest.markets.len()))
            .set("body", b(body))
            .build();
        let sent = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#tier) OR #tick <= :tick")
            .expression_attribute_names("#tier", "tier")
            .expression_attribute_names("#tick", "tick_ts")
            .expression_attribute_values(":tick", ms(latest.tick_ts))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!(tier = %latest.tier, tick = %latest.tick_ts, "a newer tick's Latest item is already there: kept");
                Ok(false)
            }
            Err(e) => Err(backend("PutItem", table, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::many_latest;

    #[test]
    fn given_3000_markets_then_the_compressed_body_fits_an_item_with_room_to_spare() {
        let latest = many_latest(Tier::T1, 3000);
        let body = encode_body(&latest).unwrap();
        assert!(
            body.len() < MAX_ITEM_BYTES / 2,
            "3,000 markets take {} bytes",
            body.len()
        );
        assert_eq!(decode_body(&body).unwrap(), latest);
        let per_entry = body.len() / 3000;
        assert!(
            (40..=80).contains(&per_entry),
            "{per_entry} bytes per entry"
        );
    }

    #[test]
    fn given_garbage_then_decoding_fails_with_an_encode_error() {
        assert!(matches!(
            decode_body(b"not gzip"),
            Err(StoreError::Encode(_))
        ));
    }
}
