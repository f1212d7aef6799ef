//! The executor's configuration, with the seed system's keys: `mode`, `initial_cash`,
//! `execution`, `sizing`, `risk`, `strategies` (each with `enabled` and `params`).
//!
//! These are serde structs, read from YAML by [`EngineConfig::from_yaml`] /
//! [`EngineConfig::load`] (`examples/executor.yaml` is the commented example), which refuse
//! any mode but `paper`, any unknown key (naming it and where it is), any unknown strategy and
//! any unknown or ill-typed strategy parameter. Any other serde format works too: some tests
//! use JSON.

use crate::error::StrategyError;
use crate::fill::FeeModel;
use crate::risk::RiskLimits;
use crate::sizing::Sizing;
use crate::strategy::build_strategy;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where orders go. Only `paper` exists: polytape never sends an order to Polymarket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Paper,
}

/// How entries are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrderStyle {
    /// Walk the asks at once.
    #[default]
    Market,
    /// Rest a buy at `mid − offset` (rounded down to the tick) until a later book or trade
    /// crosses it; never falls back.
    Limit { offset: Decimal },
    /// Rest at `mid − offset` like a limit order; what is unfilled after `timeout_s` is
    /// cancelled and bought with a market order.
    Spread { offset: Decimal, timeout_s: i64 },
}

/// `execution:` in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    pub order: OrderStyle,
    /// The taker fee of market-order walks in markets whose own fee polytape does not know
    /// (a market's Gamma `feeSchedule`, or `feesEnabled: false`, wins); default: none.
    pub taker_fee: FeeModel,
}

/// One strategy's entry under `strategies:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The strategy's parameters; missing keys take their defaults.
    #[serde(default)]
    pub params: serde_json::Value,
}

fn yes() -> bool {
    true
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub mode: Mode,
    /// Starting paper cash, USD. Default 1,000.
    pub initial_cash: Decimal,
    pub execution: ExecutionConfig,
    pub sizing: Sizing,
    pub risk: RiskLimits,
    /// By strategy name.
    pub strategies: BTreeMap<String, StrategyConfig>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            mode: Mode::Paper,
            initial_cash: Decimal::from(1000),
            execution: ExecutionConfig::default(),
            sizing: Sizing::default(),
            risk: RiskLimits::default(),
            strategies: BTreeMap::new(),
        }
    }
}

impl EngineConfig {
    /// The configuration in `yaml`, checked ([`EngineConfig::validate`]). `source_name` (a
    /// file name) is only for the error messages.
    pub fn from_yaml(yaml: &str, source_name: &str) -> Result<EngineConfig, StrategyError> {
        let err = |detail: String| StrategyError::Config {
            source_name: source_name.to_string(),
            detail,
        };
        // The mode first, for a clearer error than "unknown variant".
        let doc: serde_norway::Value =
            serde_norway::from_str(yaml).map_err(|e| err(e.to_string()))?;
        if let Some(mode) = doc.get("mode") {
            if mode.as_str() != Some("paper") {
                let shown = serde_norway::to_string(mode)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                return Err(err(format!(
                    "mode `{shown}` is not supported: polytape only paper-trades, and no order \
                     is ever sent to Polymarket (mode: paper)"
                )));
            }
        }
        let config: EngineConfig = if doc.is_null() {
            EngineConfig::default()
        } else {
            serde_norway::from_str(yaml).map_err(|e| err(e.to_string()))?
        };
        config.validate().map_err(|e| err(e.to_string()))?;
        Ok(config)
    }

    /// [`EngineConfig::from_yaml`] of the file at `path`.
    pub fn load(path: &Path) -> Result<EngineConfig, StrategyError> {
        let text = std::fs::read_to_string(path).map_err(|e| StrategyError::Config {
            source_name: path.display().to_string(),
            detail: format!("cannot read it: {e}"),
        })?;
        EngineConfig::from_yaml(&text, &path.display().to_string())
    }

    /// Checks what serde cannot: every strategy (enabled or not) is one the registry knows and
    /// its `params` fit it; cash and the order style's numbers are in range.
    pub fn validate(&self) -> Result<(), StrategyError> {
        for (name, c) in &self.strategies {
            build_strategy(name, &c.params)?;
        }
        if self.initial_cash <= Decimal::ZERO {
            return Err(StrategyError::Invalid {
                what: "initial_cash",
                detail: format!("{} (must be above 0)", self.initial_cash),
            });
        }
        if let OrderStyle::Limit { offset } | OrderStyle::Spread { offset, .. } =
            self.execution.order
        {
            if offset < Decimal::ZERO || offset >= Decimal::ONE {
                return Err(StrategyError::Invalid {
                    what: "execution.order.offset",
                    detail: format!("{offset} (must be in [0, 1))"),
                });
            }
        }
        if let OrderStyle::Spread { timeout_s, .. } = self.execution.order {
            if timeout_s < 0 {
                return Err(StrategyError::Invalid {
                    what: "execution.order.timeout_s",
                    detail: format!("{timeout_s} (must not be negative)"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::d;

    #[test]
    fn a_config_with_the_seed_keys_parses_and_missing_keys_take_defaults() {
        let c: EngineConfig = serde_json::from_str(
            r#"{
              "mode": "paper",
              "initial_cash": "5000",
              "execution": {"order": {"style": "spread", "offset": "0.01", "timeout_s": 300},
                            "taker_fee": {"rate": "0.03", "exponent": 1}},
              "sizing": {"method": "kelly", "fraction": "0.25", "max_usd": "50"},
              "risk": {"max_open_positions": 5},
              "strategies": {"longshot_yes": {"params": {"max_hours_to_close": 12}},
                             "mean_reversion": {"enabled": false}}
            }"#,
        )
        .unwrap();
        assert_eq!(c.initial_cash, d("5000"));
        assert_eq!(
            c.execution.order,
            OrderStyle::Spread {
                offset: d("0.01"),
                timeout_s: 300
            }
        );
        assert_eq!(
            c.sizing,
            Sizing::Kelly {
                fraction: d("0.25"),
                max_usd: d("50")
            }
        );
        assert_eq!(
            (c.risk.max_open_positions, c.risk.max_position_usd),
            (5, d("100"))
        );
        assert!(c.strategies["longshot_yes"].enabled);
        assert!(!c.strategies["mean_reversion"].enabled);
    }

    fn yaml_err(text: &str) -> String {
        EngineConfig::from_yaml(text, "test.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn the_commented_example_loads_with_every_strategy() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/executor.yaml");
        let c = EngineConfig::load(&path).unwrap();
        assert_eq!(c.mode, Mode::Paper);
        assert_eq!(
            c.strategies.keys().map(String::as_str).collect::<Vec<_>>(),
            crate::strategy::STRATEGY_NAMES.to_vec()
        );
        assert!(c.strategies["longshot_yes"].enabled);
        // The example's numbers arrive exactly (YAML floats go through their shortest text).
        assert_eq!(
            c.strategies["longshot_yes"].params["min_price"].as_f64(),
            Some(0.92)
        );
        let built = crate::strategy::build_strategies(&c.strategies).unwrap();
        let yes = built.iter().find(|s| s.name() == "longshot_yes").unwrap();
        assert_eq!(yes.params()["min_price"], serde_json::json!("0.92"));
        assert!(c.risk.max_drawdown > Decimal::ZERO);
    }

    #[test]
    fn given_yaml_with_defaults_left_out_then_they_apply() {
        let c = EngineConfig::from_yaml(
            "mode: paper\nsizing: {method: fixed, usd: 25}\nstrategies:\n  longshot_no: {}\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.sizing, Sizing::Fixed { usd: d("25") });
        assert_eq!(c.initial_cash, d("1000"));
        assert!(c.strategies["longshot_no"].enabled);
        assert_eq!(
            EngineConfig::from_yaml("", "t").unwrap(),
            EngineConfig::default()
        );
    }

    #[test]
    fn given_a_mode_other_than_paper_then_a_clear_error() {
        for mode in ["live", "\"real\"", "1"] {
            let e = yaml_err(&format!("mode: {mode}\n"));
            assert!(e.contains("is not supported") && e.contains("paper"), "{e}");
            assert!(e.starts_with("configuration test.yaml:"), "{e}");
        }
    }

    #[test]
    fn given_an_unknown_key_then_the_error_names_it() {
        let e = yaml_err("mode: paper\nmax_loss: 5\n");
        assert!(e.contains("unknown field `max_loss`"), "{e}");
        let e = yaml_err("risk:\n  max_positions: 3\n");
        assert!(e.contains("unknown field `max_positions`"), "{e}");
        let e = yaml_err("strategies:\n  longshot_yes:\n    enabled: true\n    parms: {}\n");
        assert!(e.contains("unknown field `parms`"), "{e}");
        let e = yaml_err("strategies:\n  longshot_yes:\n    params: {max_hours: 6}\n");
        assert!(
            e.contains("unknown field `max_hours`") && e.contains("longshot_yes"),
            "{e}"
        );
        let e = yaml_err("strategies:\n  martingale: {}\n");
        assert!(e.contains("unknown strategy `martingale`"), "{e}");
        let e = yaml_err(
            "strategies:\n  mean_reversion: {enabled: false, params: {threshold: high}}\n",
        );
        assert!(
            e.contains("mean_reversion"),
            "disabled strategies are checked too: {e}"
        );
        let e = yaml_err("initial_cash: 0\n");
        assert!(e.contains("initial_cash"), "{e}");
        let e = yaml_err("mode: [paper\n");
        assert!(e.starts_with("configuration test.yaml:"), "{e}");
    }

    #[test]
    fn a_live_mode_is_refused() {
        assert!(serde_json::from_str::<EngineConfig>(r#"{"mode": "live"}"#).is_err());
    }
}
