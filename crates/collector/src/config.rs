//! Settings of the handlers, read from environment variables with the defaults of DESIGN.md.

use std::time::Duration;

/// Thresholds and intervals. Polymarket endpoints and HTTP behaviour live in
/// `polytape_polymarket::ClientConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Markets closing later than this are not discovered (`POLYTAPE_LOOKAHEAD_HOURS`, 336).
    pub lookahead_hours: i64,
    /// Minimum 24 h volume in USDC to be tracked (`POLYTAPE_MIN_VOLUME_24H`, 100).
    pub min_volume_24h: rust_decimal::Decimal,
    /// How often the local runner re-runs discovery (`POLYTAPE_DISCOVERY_EVERY_S`, 3600).
    pub discovery_every: Duration,
    /// How often the local runner re-tiers (`POLYTAPE_RETIER_EVERY_S`, 300).
    pub retier_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lookahead_hours: 336,
            min_volume_24h: rust_decimal::Decimal::ONE_HUNDRED,
            discovery_every: Duration::from_secs(3600),
            retier_every: Duration::from_secs(300),
        }
    }
}

/// A setting that is present but unusable.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl Config {
    /// Defaults overridden by the environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Defaults overridden by `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(v) = lookup("POLYTAPE_LOOKAHEAD_HOURS") {
            c.lookahead_hours = parse_positive(&v, "POLYTAPE_LOOKAHEAD_HOURS")?;
        }
        if let Some(v) = lookup("POLYTAPE_MIN_VOLUME_24H") {
            c.min_volume_24h = v
                .parse()
                .ok()
                .filter(|d: &rust_decimal::Decimal| !d.is_sign_negative())
                .ok_or(ConfigError {
                    var: "POLYTAPE_MIN_VOLUME_24H",
                    value: v.clone(),
                    reason: "expected a non-negative number of USDC",
                })?;
        }
        if let Some(v) = lookup("POLYTAPE_DISCOVERY_EVERY_S") {
            c.discovery_every =
                Duration::from_secs(parse_positive(&v, "POLYTAPE_DISCOVERY_EVERY_S")? as u64);
        }
        if let Some(v) = lookup("POLYTAPE_RETIER_EVERY_S") {
            c.retier_every =
                Duration::from_secs(parse_positive(&v, "POLYTAPE_RETIER_EVERY_S")? as u64);
        }
        Ok(c)
    }
}

fn parse_positive(v: &str, var: &'static str) -> Result<i64, ConfigError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(ConfigError {
            var,
            value: v.to_string(),
            reason: "expected a positive whole number",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults_and_bad_values_are_named() {
        let c =
            Config::from_lookup(|k| (k == "POLYTAPE_LOOKAHEAD_HOURS").then(|| "48".to_string()))
                .unwrap();
        assert_eq!(c.lookahead_hours, 48);
        assert_eq!(c.min_volume_24h, rust_decimal::Decimal::ONE_HUNDRED);
        let err =
            Config::from_lookup(|k| (k == "POLYTAPE_MIN_VOLUME_24H").then(|| "-5".to_string()))
                .unwrap_err();
        assert_eq!(err.var, "POLYTAPE_MIN_VOLUME_24H");
    }
}
