//! The crate's one error enum, [`FetchError`], which knows whether a retry may help, and
//! [`Rejected`], the record of one input that was skipped while the rest of its batch proceeded.

use std::time::Duration;

/// Why a request to Polymarket failed. Variants are named for the cause; [`FetchError::is_retryable`]
/// decides between "try again" and "give up and report".
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No complete response within the request timeout.
    #[error("timeout fetching {url}")]
    Timeout { url: String },
    /// The connection could not be made or broke before a response arrived.
    #[error("connection to {url} failed: {reason}")]
    Connect { url: String, reason: String },
    /// HTTP 429 that survived the retries.
    #[error("rate limited by {url} (retry after {retry_after:?})")]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx that survived the retries.
    #[error("server error {status} from {url}")]
    Server { url: String, status: u16 },
    /// Any other non-2xx status: the request itself is wrong, retrying cannot help.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        url: String,
        status: u16,
        /// The first 300 characters of the body.
        body: String,
    },
    /// The body ended early: JSON cut short, or the connection dropped mid-body.
    #[error("truncated body from {url}")]
    Truncated { url: String },
    /// A complete, well-formed response that cannot be used (wrong shape, not JSON).
    #[error("undecodable response from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// The body exceeded the configured size cap.
    #[error("response from {url} exceeds {limit} bytes")]
    TooLarge { url: String, limit: usize },
    /// A pagination cursor was empty or came back a second time: following it would loop.
    #[error("pagination cursor {cursor:?} repeated or empty")]
    RepeatedCursor { cursor: String },
    /// The client could not be built or a URL could not be formed from the configuration.
    #[error("invalid client configuration: {reason}")]
    Config { reason: String },
}

impl FetchError {
    /// True when a retry may succeed: timeouts, connection failures, 429, 5xx and truncated
    /// bodies. False for bad requests, bad data, oversized bodies and pagination loops.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            FetchError::Timeout { .. }
                | FetchError::Connect { .. }
                | FetchError::RateLimited { .. }
                | FetchError::Server { .. }
                | FetchError::Truncated { .. }
        )
    }

    /// A short label of the cause, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. } => "connect",
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Server { .. } => "server",
            FetchError::Status { .. } => "status",
            FetchError::Truncated { .. } => "truncated",
            FetchError::Decode { .. } => "decode",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::RepeatedCursor { .. } => "repeated_cursor",
            FetchError::Config { .. } => "config",
        }
    }

    /// Classifies a JSON error on a complete body: an unexpected end of input means the body
    /// was cut short (retryable), anything else means the payload is unusable (not retryable).
    pub fn from_json(url: &str, e: &serde_json::Error) -> FetchError {
        if e.is_eof() {
            FetchError::Truncated {
                url: url.to_owned(),
            }
        } else {
            FetchError::Decode {
                url: url.to_owned(),
                reason: e.to_string(),
            }
        }
    }
}

/// One input record that was skipped (and counted) while the rest of its batch was kept.
///
/// Logging happens once, at the source. Every `Rejected` returned by a
/// [`PolymarketClient`](crate::PolymarketClient) method (markets, books, book levels, book
/// values, trades) has **already been logged by the client** (a `warn` with the URL, `what`,
/// `key` and `reason`) and counted in [`FetchStats::rejected`](crate::FetchStats): callers
/// count them, they do not log again. Called directly, the pure decoders log nothing: the
/// `decode_*` functions, [`GammaMarket::quote`](crate::GammaMarket::quote) (`"gamma value"`,
/// called by the collector, which logs those) and the WebSocket decoders (`"ws event"`, and
/// the levels and values dropped from a WebSocket `book`) leave logging to their caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// What was rejected: "gamma market", "book", "book level", "book value", "gamma value",
    /// "trade", "clob market", "ws event".
    pub what: &'static str,
    /// The record's key when known (condition id, token id, field name…).
    pub key: Option<String>,
    /// Why, in a few words, with the offending value.
    pub reason: String,
}

impl Rejected {
    /// A rejection of `what` (with optional `key`) for `reason`.
    pub fn new(what: &'static str, key: Option<String>, reason: impl Into<String>) -> Rejected {
        Rejected {
            what,
            key,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{} {k}: {}", self.what, self.reason),
            None => write!(f, "{}: {}", self.what, self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_error_when_classified_then_only_transient_causes_are_retryable() {
        let url = || "http://x".to_string();
        let retryable = [
            FetchError::Timeout { url: url() },
            FetchError::Connect {
                url: url(),
                reason: "refused".into(),
            },
            FetchError::RateLimited {
                url: url(),
                retry_after: None,
            },
            FetchError::Server {
                url: url(),
                status: 503,
            },
            FetchError::Truncated { url: url() },
        ];
        for e in &retryable {
            assert!(e.is_retryable(), "{e}");
        }
        let fatal = [
            FetchError::Status {
                url: url(),
                status: 400,
                body: String::new(),
            },
            FetchError::Decode {
                url: url(),
                reason: "x".into(),
            },
            FetchError::TooLarge {
                url: url(),
                limit: 1,
            },
            FetchError::RepeatedCursor {
                cursor: "abc".into(),
            },
            FetchError::Config { reason: "x".into() },
        ];
        for e in &fatal {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn given_json_cut_short_when_classified_then_truncated_else_decode() {
        let eof = serde_json::from_str::<serde_json::Value>("{\"markets\":[{\"id\":").unwrap_err();
        assert!(matches!(
            FetchError::from_json("u", &eof),
            FetchError::Truncated { .. }
        ));
        let bad = serde_json::from_str::<serde_json::Value>("<html>429</html>").unwrap_err();
        let e = FetchError::from_json("u", &bad);
        assert!(matches!(e, FetchError::Decode { .. }));
        assert!(!e.is_retryable());
    }
}

/// SHIM
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub what: &'static str,
    pub key: Option<String>,
    pub field: String,
    pub reason: String,
}
impl Drift {
    pub fn stat_key(&self) -> String {
        format!("{}.{}", self.what, self.field)
    }
}
