//! The crate's one error enum, [`FetchError`], which knows whether a retry may help;
//! [`Rejected`], the record of one input that was skipped while the rest of its batch proceeded;
//! and [`Drift`], one field of a kept record that failed to decode and was read as absent.

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
    /// The caller's deadline ([`PolymarketClient::with_deadline`](crate::PolymarketClient::with_deadline))
    /// came before any attempt could start (waiting for the rate limiter would have ended past
    /// it, or it had passed already). When an attempt was made, its own error is returned instead.
    #[error("deadline reached before requesting {url}")]
    Deadline { url: String },
    /// A keyset listing still had a next page after the configured page cap
    /// ([`ClientConfig::max_pages`](crate::ClientConfig::max_pages)): following it on could
    /// page forever (a server that ignores the cursor or the filters).
    #[error("more than {pages} pages from {url}")]
    TooManyPages { url: String, pages: u32 },
    /// A request URL would exceed [`MAX_URL_BYTES`](crate::client::MAX_URL_BYTES) (the server
    /// answers 414 or truncates): not sent. Follow-up pages add `&after_cursor=<cursor>`: a
    /// condition-id lookup then asks for its missing ids afresh in a shorter URL, so only a
    /// cursor too long for any URL causes it.
    #[error("URL of {bytes} bytes would exceed {limit}: {url}")]
    UrlTooLong {
        url: String,
        bytes: usize,
        limit: usize,
    },
}

impl FetchError {
    /// True when a retry may succeed: timeouts, connection failures, 429, 5xx and truncated
    /// bodies. False for bad requests, bad data, oversized bodies, pagination loops and caps,
    /// over-long URLs and a passed deadline.
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
            FetchError::Deadline { .. } => "deadline",
            FetchError::TooManyPages { .. } => "too_many_pages",
            FetchError::UrlTooLong { .. } => "url_too_long",
        }
    }

    /// True for a non-retryable 4xx answer ([`FetchError::Status`] 400–499; 429 is
    /// [`FetchError::RateLimited`]): the server refused this request, so part of it is wrong.
    pub fn is_refusal(&self) -> bool {
        matches!(self, FetchError::Status { status, .. } if (400..500).contains(status) && *status != 429)
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
/// A record is rejected when it cannot be used at all: it is not an object, one of its
/// record type's *essential* fields failed to decode ([`Record::ESSENTIAL`](crate::decode::Record::ESSENTIAL)),
/// or a check after decoding failed (a book without `asset_id`, a trade priced outside
/// [0, 1]…). A non-essential field that fails to decode does not reject its record: it is a
/// [`Drift`].
///
/// Logging happens once, at the source. Every `Rejected` returned by a
/// [`PolymarketClient`](crate::PolymarketClient) method (markets, books, book levels, book
/// values, trades) has **already been logged by the client** (a `warn` with the URL, `what`,
/// `key` and `reason`) and counted in [`FetchStats::rejected`](crate::FetchStats): callers
/// count them, they do not log again. Called directly, the pure decoders log nothing: the
/// `decode_*` functions, [`GammaMarket::quote`](crate::GammaMarket::quote) (`"gamma value"`,
/// called by the collector, which logs those) and the WebSocket decoders (`"ws event"`, and
/// the levels and values dropped from a WebSocket `book`) leave logging to their caller.
///
/// A [`BatchFailure`](crate::BatchFailure) is not a rejection: the client does not log those
/// (its caller does), except the ids a server refused with a 4xx, which the client narrows
/// down by splitting the batch and logs once each (see [`PolymarketClient::books`](crate::PolymarketClient::books)).
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

/// A field of a kept record that failed to decode (Polymarket changed its type: `updatedAt:
/// "yesterday"`, `volume1yr: true`) and was read as absent, so the record's value for it is
/// `None` (NULL) while the rest of the record is kept.
///
/// Logging follows [`Rejected`]'s contract, once per kind of drift: every `Drift` returned by
/// a [`PolymarketClient`](crate::PolymarketClient) method has already been counted by the
/// client in [`FetchStats::drifts`](crate::FetchStats) under [`Drift::stat_key`], and the
/// first one of each `(what, field)` in the client's lifetime was logged at `warn` (URL,
/// `what`, `field`, `key`, `reason`); later ones are only counted, because a changed schema
/// repeats on every record. Callers count them and do not log again. The pure decoders log
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The record kind, as in [`Rejected::what`]: "gamma market", "book", "trade"…
    pub what: &'static str,
    /// The record's key when known (condition id, token id…).
    pub key: Option<String>,
    /// The field's name on the wire (`updatedAt`, `timestamp`).
    pub field: String,
    /// The decode error, with the offending value's type.
    pub reason: String,
}

impl Drift {
    /// The key drifts are counted under: `"<what>.<field>"`, e.g. `"gamma market.updatedAt"`.
    pub fn stat_key(&self) -> String {
        format!("{}.{}", self.what, self.field)
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(k) => write!(
                f,
                "{} {k}: field `{}` read as absent: {}",
                self.what, self.field, self.reason
            ),
            None => write!(
                f,
                "{}: field `{}` read as absent: {}",
                self.what, self.field, self.reason
            ),
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
            FetchError::Deadline { url: url() },
            FetchError::TooManyPages {
                url: url(),
                pages: 1_000,
            },
            FetchError::UrlTooLong {
                url: url(),
                bytes: 9_000,
                limit: 8_192,
            },
        ];
        for e in &fatal {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn given_statuses_when_asked_then_only_4xx_other_than_429_are_refusals() {
        let status = |status| FetchError::Status {
            url: "u".into(),
            status,
            body: String::new(),
        };
        assert!(status(400).is_refusal() && status(404).is_refusal() && status(499).is_refusal());
        assert!(!status(429).is_refusal() && !status(302).is_refusal());
        assert!(!FetchError::Server {
            url: "u".into(),
            status: 500
        }
        .is_refusal());
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
