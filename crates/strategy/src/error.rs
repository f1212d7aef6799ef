//! The crate's one error type.

use thiserror::Error;

/// What can go wrong building or running the paper executor. Every variant is a configuration
/// or caller mistake: retrying the same call gives the same error.
#[derive(Debug, Error)]
pub enum StrategyError {
    /// A strategy name the registry does not know.
    #[error("unknown strategy `{0}`")]
    UnknownStrategy(String),
    /// A strategy's `params` do not fit its parameter struct.
    #[error("bad params for strategy `{strategy}`: {source}")]
    BadParams {
        strategy: String,
        #[source]
        source: serde_json::Error,
    },
    /// A parameter outside its allowed range (a negative size, a fraction above 1, …).
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    /// The configuration file is not valid YAML, has an unknown key, or a value of the wrong
    /// type; `detail` names the key and where it is.
    #[error("configuration {source_name}: {detail}")]
    Config { source_name: String, detail: String },
}

impl StrategyError {
    /// True when the configuration must be fixed before the executor can run (every variant
    /// today); kept as the one place a caller asks, as the other crates' errors do.
    pub fn is_config_error(&self) -> bool {
        true
    }
}
