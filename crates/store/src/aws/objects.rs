//! Objects on S3 at the keys of [`crate::keys`]: one `PutObject` per file (S3 replaces an
//! object atomically, so readers never see half of one), `GetObject` with `NoSuchKey` as
//! `None`, and `ListObjectsV2` followed page by page.

use super::error::backend;
use super::AwsStore;
use crate::error::{Result, StoreError};
use crate::ports::ObjectStore;
use aws_sdk_s3::primitives::ByteStream;

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

    async fn list_objects(&self, prefix: &str) -> Result<Vec<String>> {
        let bucket = &self.names.bucket;
        let mut keys = Vec::new();
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
            keys.extend(
                page.contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| o.key),
            );
            match page.next_continuation_token {
                Some(t) if page.is_truncated == Some(true) => token = Some(t),
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; sorting makes it a promise of this port.
        keys.sort_unstable();
        Ok(keys)
    }
}
