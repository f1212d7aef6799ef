//! The Latest values on S3: one object per tier, [`crate::keys::latest`]
//! (`latest/tier=<n>.json.gz`), the [`LatestTier`] as gzip-compressed JSON.
//!
//! A tick applies its [`LatestUpdate`] by read, apply, conditional write: `GetObject` (its
//! ETag), [`LatestTier::apply`], then `PutObject` with `If-Match: <that ETag>` — or
//! `If-None-Match: *` when there was no object yet. When another tick of the tier wrote in
//! between, S3 refuses the put (`412 PreconditionFailed`, or `409 ConditionalRequestConflict`
//! while another conditional write to the key is in flight, or `404 NoSuchKey` when the object
//! was deleted), and the update is applied again on a fresh read after a short random wait,
//! up to [`CONFLICT_RETRY`]'s 10 reads; after that the call fails with a retryable error.
//! Since `apply` is commutative and idempotent over ticks, overlapping ticks all land and a
//! retried tick counts once.
//!
//! An object has no practical size limit (a single PUT takes 5 GB): 50,000 markets are about
//! 3 MB compressed (59.4 B a market, measured on moto). A tick costs one GET and one PUT (one
//! more of each per conflict).

use super::batch::CONFLICT_RETRY;
use super::error::backend;
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::keys;
use crate::ports::LatestStore;
use aws_sdk_s3::primitives::ByteStream;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use polytape_core::ops::{LatestTier, LatestUpdate};
use polytape_core::Tier;
use std::io::{Read as _, Write as _};

/// The content type of the Latest objects (gzip; no `Content-Encoding`, so no client
/// decompresses them on the way).
pub const LATEST_CONTENT_TYPE: &str = "application/gzip";

/// A decompressed body larger than this is refused rather than allocated (a corrupted or
/// hostile object must not exhaust a Lambda's memory). 50,000 markets are ≈ 12.5 MB of JSON.
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

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

/// How a conditional put ended.
enum Put {
    Written,
    /// Another writer changed the object since it was read.
    Conflict,
}

impl AwsStore {
    /// The Latest object of `tier` and its ETag, if there is one.
    async fn read_latest(&self, tier: Tier) -> Result<Option<(LatestTier, String)>> {
        let bucket = &self.names.bucket;
        let key = keys::latest(tier);
        let out = match self.s3.get_object().bucket(bucket).key(&key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(backend("GetObject", &format!("s3://{bucket}/{key}"), e)),
        };
        let etag = out.e_tag.clone().ok_or_else(|| StoreError::Backend {
            reason: format!("GetObject on s3://{bucket}/{key}: no ETag in the response"),
            retryable: false,
        })?;
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            // The connection broke mid-body: reading again may well succeed.
            reason: format!("GetObject on s3://{bucket}/{key}: reading the body: {e}"),
            retryable: true,
        })?;
        let latest = decode_body(&body.into_bytes())
            .map_err(|e| StoreError::Encode(format!("s3://{bucket}/{key}: {e}")))?;
        Ok(Some((latest, etag)))
    }

    /// Puts `body` at the Latest key of `tier` if the object there is still `etag` (`None`:
    /// if there is none).
    async fn put_latest_if(&self, tier: Tier, body: Vec<u8>, etag: Option<&str>) -> Result<Put> {
        let bucket = &self.names.bucket;
        let key = keys::latest(tier);
        let bytes = body.len();
        let req = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type(LATEST_CONTENT_TYPE)
            .body(ByteStream::from(body));
        let req = match etag {
            Some(etag) => req.if_match(etag),
            None => req.if_none_match("*"),
        };
        self.record_latest_put(bytes);
        match req.send().await {
            Ok(_) => Ok(Put::Written),
            Err(e) if is_conflict(&e) => {
                self.record_latest_conflict();
                Ok(Put::Conflict)
            }
            Err(e) => Err(backend("PutObject", &format!("s3://{bucket}/{key}"), e)),
        }
    }
}

/// True when a conditional `PutObject` lost to another writer: the object changed (412), a
/// concurrent conditional write to the key is in flight (409), or the object was deleted
/// since it was read (404 on `If-Match`).
fn is_conflict<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
    )
}

impl LatestStore for AwsStore {
    async fn get_latest(&self, tier: Tier) -> Result<Option<LatestTier>> {
        Ok(self.read_latest(tier).await?.map(|(latest, _)| latest))
    }

    async fn apply_latest(&self, updates: &[LatestUpdate]) -> Result<()> {
        let Some(tier) = crate::ports::latest_tier(updates)? else {
            return Ok(());
        };
        let tick_ts = updates[0].tick_ts;
        for attempt in 1..=CONFLICT_RETRY.attempts {
            let (mut latest, etag) = match self.read_latest(tier).await? {
                Some((latest, etag)) => (latest, Some(etag)),
                None => (LatestTier::empty(tier), None),
            };
            for update in updates {
                latest.apply(update);
            }
            let body = encode_body(&latest)?;
            match self.put_latest_if(tier, body, etag.as_deref()).await? {
                Put::Written => return Ok(()),
                Put::Conflict if attempt < CONFLICT_RETRY.attempts => {
                    tracing::debug!(%tier, tick = %tick_ts, attempt, "Latest object changed since it was read: applying again");
                    tokio::time::sleep(CONFLICT_RETRY.jittered(attempt)).await;
                }
                Put::Conflict => {}
            }
        }
        Err(StoreError::Backend {
            reason: format!(
                "PutObject on s3://{}/{}: the tick {} lost to concurrent writers {} times",
                self.names.bucket,
                keys::latest(tier),
                tick_ts,
                CONFLICT_RETRY.attempts
            ),
            retryable: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::many_latest;

    #[test]
    fn given_3000_markets_then_the_body_round_trips_at_under_100_bytes_a_market() {
        let mut latest = LatestTier::empty(Tier::T1);
        latest.apply(&many_latest(Tier::T1, 3000));
        let body = encode_body(&latest).unwrap();
        assert_eq!(decode_body(&body).unwrap(), latest);
        let per_entry = body.len() / 3000;
        assert!(
            (40..=100).contains(&per_entry),
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
