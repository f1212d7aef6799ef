//! The simulated API's client errors, each served as `{"error": "<message>"}` with the status
//! the real service uses for it.

/// A request the simulated Polymarket refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Malformed or forbidden parameter or body (400).
    #[error("{0}")]
    BadRequest(String),
    /// Legacy Gamma offset beyond 10,000 (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Nothing exists under that id (404).
    #[error("{0}")]
    NotFound(String),
}

impl SimError {
    /// The HTTP status this error is served with.
    pub fn status(&self) -> u16 {
        match self {
            SimError::BadRequest(_) => 400,
            SimError::Unprocessable(_) => 422,
            SimError::NotFound(_) => 404,
        }
    }
}
