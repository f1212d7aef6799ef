//! The strategy interface and the registry that builds strategies from configuration.

use crate::config::StrategyConfig;
use crate::error::StrategyError;
use crate::portfolio::Position;
use crate::signal::{ExitReason, Signal};
use crate::strategies::{LongshotNo, LongshotYes, MeanReversion, TermStructure};
use crate::view::MarketView;
use std::collections::BTreeMap;

/// A trading strategy: pure functions of what was observed at decision time.
///
/// The engine calls [`Strategy::filter`] on every market, then [`Strategy::scan`] once with the
/// markets that passed (sorted by condition id), and [`Strategy::should_exit`] for each open
/// position of the strategy whose market it has a view of. None of them may keep state between
/// calls that depends on the order markets are given in.
pub trait Strategy: Send + Sync {
    /// The key in configuration and in every record (`longshot_yes`, …).
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Bumped whenever the logic changes, so recorded signals say which logic made them.
    fn version(&self) -> u32;
    /// The parameters in effect, as JSON (the configuration's `params` with defaults filled in).
    fn params(&self) -> serde_json::Value;
    /// True when the market is one the strategy looks at.
    fn filter(&self, market: &MarketView) -> bool;
    /// Signals over the markets that passed [`Strategy::filter`].
    fn scan(&self, markets: &[&MarketView]) -> Vec<Signal>;
    /// Why to close `position` now, if it should be closed.
    fn should_exit(&self, position: &Position, market: &MarketView) -> Option<ExitReason>;
}

/// The names of the strategies [`build_strategies`] knows, sorted.
pub const STRATEGY_NAMES: [&str; 4] = [
    "longshot_no",
    "longshot_yes",
    "mean_reversion",
    "term_structure",
];

/// Builds one strategy by name from its JSON parameters (missing keys take their defaults;
/// unknown keys are refused, so a misspelt parameter is not silently ignored).
pub fn build_strategy(
    name: &str,
    params: &serde_json::Value,
) -> Result<Box<dyn Strategy>, StrategyError> {
    fn parse<T: serde::de::DeserializeOwned>(
        name: &str,
        params: &serde_json::Value,
    ) -> Result<T, StrategyError> {
        let params = if params.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            params.clone()
        };
        serde_json::from_value(params).map_err(|source| StrategyError::BadParams {
            strategy: name.to_string(),
            source,
        })
    }
    Ok(match name {
        "longshot_yes" => Box::new(LongshotYes::new(parse(name, params)?)),
        "longshot_no" => Box::new(LongshotNo::new(parse(name, params)?)),
        "mean_reversion" => Box::new(MeanReversion::new(parse(name, params)?)),
        "term_structure" => Box::new(TermStructure::new(parse(name, params)?)),
        other => return Err(StrategyError::UnknownStrategy(other.to_string())),
    })
}

/// The enabled strategies of a configuration, in name order.
pub fn build_strategies(
    config: &BTreeMap<String, StrategyConfig>,
) -> Result<Vec<Box<dyn Strategy>>, StrategyError> {
    config
        .iter()
        .filter(|(_, c)| c.enabled)
        .map(|(name, c)| build_strategy(name, &c.params))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_partial_params_then_defaults_fill_the_rest() {
        let s = build_strategy("longshot_yes", &json!({"max_hours_to_close": 6})).unwrap();
        assert_eq!(s.name(), "longshot_yes");
        assert_eq!(s.params()["max_hours_to_close"], json!("6"));
        assert_eq!(s.params()["min_price"], json!("0.92"));
        assert_eq!(s.params()["max_price"], json!("0.99"));
    }

    #[test]
    fn given_a_misspelt_param_or_unknown_strategy_then_refused() {
        let err = build_strategy("longshot_yes", &json!({"max_hours": 6}))
            .err()
            .unwrap();
        assert!(matches!(err, StrategyError::BadParams { .. }), "{err}");
        let err = build_strategy("martingale", &json!({})).err().unwrap();
        assert_eq!(err.to_string(), "unknown strategy `martingale`");
    }

    #[test]
    fn only_enabled_strategies_are_built_in_name_order() {
        let mut c = BTreeMap::new();
        for (name, enabled) in [
            ("term_structure", true),
            ("longshot_yes", true),
            ("mean_reversion", false),
        ] {
            c.insert(
                name.to_string(),
                StrategyConfig {
                    enabled,
                    params: json!({}),
                },
            );
        }
        let names: Vec<_> = build_strategies(&c)
            .unwrap()
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(names, vec!["longshot_yes", "term_structure"]);
        assert!(STRATEGY_NAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
