//! The crate's one error type and its retry classifier.

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The local SQLite state database failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file of the local data directory could not be read or written.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The Parquet writer failed.
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    /// A value could not be encoded or decoded (Arrow arrays, JSON bodies, stored columns).
    #[error("encode: {0}")]
    Encode(String),
    /// A record the call needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost to a concurrent one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The adapter is not configured: a missing environment variable, a bad resource name.
    #[error("configuration: {0}")]
    Config(String),
    /// A remote backend (DynamoDB, S3, …) refused or failed the call.
    #[error("backend: {reason}")]
    Backend {
        reason: String,
        /// Whether the backend said (or the failure implies) that a retry may succeed.
        retryable: bool,
    },
}

impl StoreError {
    /// True when retrying the same call may succeed: a busy or locked database, an interrupted
    /// or timed-out I/O, a backend that said so. Bad data, missing records and conflicts are
    /// not retryable: the same call would fail the same way.
    pub fn is_retryable(&self) -> bool {
        use rusqlite::ErrorCode;
        use std::io::ErrorKind;
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            StoreError::Io(e) => matches!(
                e.kind(),
                ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock
            ),
            StoreError::Backend { retryable, .. } => *retryable,
            StoreError::Parquet(_)
            | StoreError::Encode(_)
            | StoreError::NotFound(_)
            | StoreError::Conflict(_)
            | StoreError::Config(_) => false,
        }
    }
}

impl From<arrow_schema::ArrowError> for StoreError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        StoreError::Encode(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Encode(format!("json: {e}"))
    }
}

/// Result of every storage call.
pub type Result<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_database_and_retryable_backend_are_retryable_bad_data_is_not() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(StoreError::Sqlite(busy).is_retryable());
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert!(!StoreError::Sqlite(constraint).is_retryable());
        assert!(StoreError::Backend {
            reason: "throttled".into(),
            retryable: true
        }
        .is_retryable());
        assert!(!StoreError::Backend {
            reason: "access denied".into(),
            retryable: false
        }
        .is_retryable());
        assert!(!StoreError::Encode("bad".into()).is_retryable());
        assert!(StoreError::Io(std::io::ErrorKind::TimedOut.into()).is_retryable());
        assert!(!StoreError::Io(std::io::ErrorKind::PermissionDenied.into()).is_retryable());
    }
}
