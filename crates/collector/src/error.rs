//! Handler errors, classified so a caller knows whether a retry may help.

use polytape_polymarket::FetchError;
use polytape_store::StoreError;

/// Why a handler could not finish. Partial results (a failed request among many) are not
/// errors: they are counted in the handler's report, which says whether a retry is worthwhile.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("polymarket: {0}")]
    Fetch(#[from] FetchError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The work was abandoned before it finished, so a timeout outside it would not cut it off
    /// at a worse moment (a tick whose writes hang as the invocation ends).
    #[error("abandoned: {0}")]
    Abandoned(String),
    /// The input itself is unusable (a message that is not what it should be): a retry would
    /// fail the same way.
    #[error("bad input: {0}")]
    Input(String),
}

impl HandlerError {
    /// True when running the handler again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            HandlerError::Fetch(e) => e.is_retryable(),
            HandlerError::Store(e) => e.is_retryable(),
            HandlerError::Abandoned(_) => true,
            HandlerError::Input(_) => false,
        }
    }
}
