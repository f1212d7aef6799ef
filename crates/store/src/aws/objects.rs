//! Objects on S3 at the keys of [`crate::keys`]: one `PutObject` per file (S3 replaces an
//! object atomically, so readers never see half of one), `GetObject` with `NoSuchKey` as
//! `None`, `ListObjectsV2` followed page by page, and compaction's deletes as `DeleteObjects`
//! of up to 1,000 keys (quiet: only failures come back; on the versioned bucket a delete
//! leaves a delete marker, and the lifecycle rule expires the old version after 7 days).

use super::error::backend;
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::{ObjectDeleter, ObjectInfo, ObjectStore, ObjectTail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

/// The most keys one `DeleteObjects` request may name.
const DELETE_BATCH: usize = 1000;

impl ObjectStore for AwsStore {
    async fn put_object(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        let bucket = &self.names.bucket;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| backend("PutObject", &format!("s3://{bucket}/{key}"), e))?;
        Ok(())
    }

    async fn put_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<()> {
        let bucket = &self.names.bucket;
        // Read from the file as it is sent (and again on a retry), never whole in memory.
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::Backend {
                reason: format!(
                    "PutObject on s3://{bucket}/{key}: reading {}: {e}",
                    path.display()
                ),
                retryable: false,
            })?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| backend("PutObject", &format!("s3://{bucket}/{key}"), e))?;
        Ok(())
    }

    async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let bucket = &self.names.bucket;
        let out = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(backend("GetObject", &format!("s3://{bucket}/{key}"), e)),
        };
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            // The connection broke mid-body: reading again may well succeed.
            reason: format!("GetObject on s3://{bucket}/{key}: reading the body: {e}"),
            retryable: true,
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Option<Vec<u8>>> {
        if range.start >= range.end {
            // An empty range is not one S3 can express: only whether the object is there.
            return Ok(self.get_tail(key, 0).await?.map(|_| Vec::new()));
        }
        let bucket = &self.names.bucket;
        let out = match self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            // A range starting past the end: the object is there, nothing of it is in range.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(Some(Vec::new()))
            }
            Err(e) => return Err(backend("GetObject", &format!("s3://{bucket}/{key}"), e)),
        };
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            reason: format!("GetObject on s3://{bucket}/{key}: reading the body: {e}"),
            retryable: true,
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn get_tail(&self, key: &str, len: u64) -> Result<Option<ObjectTail>> {
        let bucket = &self.names.bucket;
        if len == 0 {
            // A suffix range of 0 bytes is not satisfiable: ask for the size alone.
            return match self.s3.head_object().bucket(bucket).key(key).send().await {
                Ok(out) => Ok(Some(ObjectTail {
                    bytes: Vec::new(),
                    size: out.content_length().map_or(0, |n| n.max(0) as u64),
                })),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
                Err(e) => Err(backend("HeadObject", &format!("s3://{bucket}/{key}"), e)),
            };
        }
        let out = match self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes=-{len}"))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(backend("GetObject", &format!("s3://{bucket}/{key}"), e)),
        };
        // `bytes 100-199/200`: the whole size after the slash (no range: the whole object).
        let total = out
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|n| n.parse::<u64>().ok());
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            reason: format!("GetObject on s3://{bucket}/{key}: reading the body: {e}"),
            retryable: true,
        })?;
        let bytes = body.into_bytes().to_vec();
        let size = total.unwrap_or(bytes.len() as u64);
        Ok(Some(ObjectTail { bytes, size }))
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<String>> {
        let listed = self.list_objects_sized(prefix).await?;
        Ok(listed.into_iter().map(|o| o.key).collect())
    }

    async fn list_objects_sized(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let bucket = &self.names.bucket;
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .set_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| backend("ListObjectsV2", &format!("s3://{bucket}/{prefix}"), e))?;
            objects.extend(
                page.contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| {
                        Some(ObjectInfo {
                            size: o.size.and_then(|s| u64::try_from(s).ok()),
                            key: o.key?,
                        })
                    }),
            );
            match page.next_continuation_token {
                Some(t) if page.is_truncated == Some(true) => token = Some(t),
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; sorting makes it a promise of this port.
        objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }
}

impl ObjectDeleter for AwsStore {
    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        let bucket = &self.names.bucket;
        for chunk in keys.chunks(DELETE_BATCH) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Config(format!("DeleteObjects: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::Config(format!("DeleteObjects: {e}")))?;
            let out = self
                .s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| backend("DeleteObjects", &format!("s3://{bucket}/{}", chunk[0]), e))?;
            // A key S3 could not delete comes back as an error entry, not as a failed request.
            if let Some(e) = out.errors.as_deref().and_then(<[_]>::first) {
                return Err(StoreError::Backend {
                    reason: format!(
                        "DeleteObjects on s3://{bucket}: {} of {} keys not deleted, e.g. {:?}: {} {}",
                        out.errors.as_deref().map_or(0, <[_]>::len),
                        chunk.len(),
                        e.key().unwrap_or_default(),
                        e.code().unwrap_or_default(),
                        e.message().unwrap_or_default()
                    ),
                    // Access denied stays denied; anything else (SlowDown, InternalError) may pass.
                    retryable: e.code() != Some("AccessDenied"),
                });
            }
        }
        Ok(())
    }
}
