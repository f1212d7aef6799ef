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
    /// How often discovery runs after a success (`POLYTAPE_DISCOVERY_EVERY_S`, 3600).
    pub discovery_every: Duration,
    /// After a failed discovery it is retried 30 s, 1 min, 2 min … later, never more than
    /// this (`POLYTAPE_DISCOVERY_RETRY_CAP_S`, 180).
    pub discovery_retry_cap: Duration,
    /// How long a discovery run holds its lease, so two never overlap (the discovery
    /// function's timeout; `POLYTAPE_DISCOVERY_LEASE_S`, 300).
    pub discovery_lease: Duration,
    /// How often the local runner runs maintenance (re-tier, the `markets` dimension)
    /// (`POLYTAPE_MAINTENANCE_EVERY_S`, 300; the cloud schedule is template.yaml's).
    pub maintenance_every: Duration,
    /// How often maintenance asks Gamma for results (`POLYTAPE_RESOLUTIONS_EVERY_S`, 900; in
    /// the cloud the template's `ResolutionsEverySeconds`). Checked at each maintenance run.
    pub resolutions_every: Duration,
    /// In Lambda, requests stop this long before the invocation's end, leaving time for the
    /// writes: a tick's, discovery's and maintenance's (`POLYTAPE_TICK_MARGIN_S`, 20).
    pub tick_margin: Duration,
    /// The function's configured timeout, when running as a Lambda function
    /// (`POLYTAPE_FUNCTION_TIMEOUT_S`, set by template.yaml to the function's `Timeout`).
    pub function_timeout: Option<Duration>,
    /// `/health` thresholds.
    pub health: HealthConfig,
    /// Hourly compaction.
    pub compaction: CompactionConfig,
}

/// Hourly compaction ([`crate::compaction`]), run by maintenance when due.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionConfig {
    /// How often it runs (`POLYTAPE_COMPACT_EVERY_S`, 3600); sooner again while it has hours
    /// left over, and after a failure with the usual backoff.
    pub every: Duration,
    /// An hour is compacted only once it ended this long ago (`POLYTAPE_COMPACT_SETTLE_S`,
    /// 3000): longer than the longest retry can still write a file of it. In the cloud that
    /// is the later of two queues' retry horizons, from template.yaml: the live queue's
    /// VisibilityTimeout × maxReceiveCount + the trades function's Timeout + its batching
    /// window (480 s × 5 + 30 s + 300 s = 2,730 s) and the ticks queue's VisibilityTimeout ×
    /// maxReceiveCount + the snapshot function's Timeout (360 s × 3 + 60 s = 1,140 s), rounded
    /// up to 50 minutes (crates/store/tests/template.rs checks the template's values still
    /// fit). Locally nothing retries later than a tick's own interval.
    pub settle: Duration,
    /// Sources are deleted this long after their compacted file is recorded, so a query that
    /// listed them first can finish reading (`POLYTAPE_COMPACT_DELETE_AFTER_S`, 1800).
    pub delete_after: Duration,
    /// Days before today the live feed's tables are compacted (`POLYTAPE_COMPACT_LOOKBACK_DAYS`,
    /// 5: the live queue keeps a message 4 days). Before redriving its dead-letter queue
    /// further back, raise it, or the late files stay unmerged (and unread).
    pub lookback_days: u32,
    /// The longest a run works before leaving the rest to the next maintenance run
    /// (`POLYTAPE_COMPACT_BUDGET_S`, 60; in Lambda also the invocation's end).
    pub budget: Duration,
}

impl Default for CompactionConfig {
    /// Hourly, 60 s a run; the settle time, delete delay and lookback of
    /// `polytape_store::compact::CompactOptions::default` (20 min, 30 min, 5 days).
    fn default() -> Self {
        let store = polytape_store::compact::CompactOptions::default();
        CompactionConfig {
            every: Duration::from_secs(3600),
            settle: store.settle,
            delete_after: store.delete_after,
            lookback_days: store.lookback_days,
            budget: Duration::from_secs(60),
        }
    }
}

/// When `/health` reports a check failing (`/health/critical` answers 503).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Discovery has not succeeded for this long (`POLYTAPE_HEALTH_DISCOVERY_MAX_AGE_S`, 7200).
    pub discovery_max_age: Duration,
    /// …or never since start, this long after the start (`POLYTAPE_HEALTH_STARTUP_GRACE_S`, 120).
    pub startup_grace: Duration,
    /// Over this share of a tier's ticks in the last hour failed or were skipped
    /// (`POLYTAPE_HEALTH_MAX_TICK_FAILURE_PCT`, 10).
    pub max_tick_failure_pct: f64,
    /// A task failed this many times in a row (`POLYTAPE_HEALTH_MAX_TASK_FAILURES`, 3).
    pub max_task_failures: u32,
    /// A tier's ticks in the last hour wrote fewer than this share of the samples they
    /// expected (`POLYTAPE_HEALTH_MIN_COVERAGE_PCT`, 90).
    pub min_coverage_pct: f64,
    /// A tick is judged (failed, missing) only this long after it was due
    /// (`POLYTAPE_HEALTH_TICK_GRACE_S`, 60): a tick still running is not missing.
    pub tick_grace: Duration,
    /// A WebSocket shard whose newest heartbeat is older than this fails `ws_<shard>`
    /// (`POLYTAPE_HEALTH_WS_HEARTBEAT_MAX_AGE_S`, 120; shards write one every few seconds).
    pub ws_heartbeat_max_age: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            discovery_max_age: Duration::from_secs(2 * 3600),
            startup_grace: Duration::from_secs(120),
            max_tick_failure_pct: 10.0,
            max_task_failures: 3,
            min_coverage_pct: 90.0,
            tick_grace: Duration::from_secs(60),
            ws_heartbeat_max_age: Duration::from_secs(120),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lookahead_hours: 336,
            min_volume_24h: rust_decimal::Decimal::ONE_HUNDRED,
            discovery_every: Duration::from_secs(3600),
            discovery_retry_cap: Duration::from_secs(180),
            discovery_lease: Duration::from_secs(300),
            maintenance_every: Duration::from_secs(300),
            resolutions_every: Duration::from_secs(900),
            tick_margin: Duration::from_secs(20),
            function_timeout: None,
            health: HealthConfig::default(),
            compaction: CompactionConfig::default(),
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
    /// The end of a Lambda invocation that started at `now`, from the runtime's deadline
    /// (epoch ms) and [`Config::function_timeout`] ([`crate::clock::invocation_end`]).
    pub fn invocation_end(
        &self,
        deadline_ms: u64,
        now: polytape_core::Ts,
    ) -> Option<polytape_core::Ts> {
        crate::clock::invocation_end(deadline_ms, now, self.function_timeout)
    }

    /// When a Lambda invocation's requests must stop: its end less [`Config::tick_margin`], so
    /// the run's writes (and its record) still happen before the Lambda timeout.
    pub fn requests_until(
        &self,
        deadline_ms: u64,
        now: polytape_core::Ts,
    ) -> Option<polytape_core::Ts> {
        let margin = chrono::Duration::from_std(self.tick_margin).unwrap_or_default();
        self.invocation_end(deadline_ms, now)
            .map(|end| end - margin)
    }

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
        let secs = |var: &'static str, into: &mut Duration| -> Result<(), ConfigError> {
            if let Some(v) = lookup(var) {
                *into = Duration::from_secs(parse_positive(&v, var)? as u64);
            }
            Ok(())
        };
        secs("POLYTAPE_DISCOVERY_EVERY_S", &mut c.discovery_every)?;
        secs("POLYTAPE_DISCOVERY_RETRY_CAP_S", &mut c.discovery_retry_cap)?;
        secs("POLYTAPE_DISCOVERY_LEASE_S", &mut c.discovery_lease)?;
        secs("POLYTAPE_MAINTENANCE_EVERY_S", &mut c.maintenance_every)?;
        secs("POLYTAPE_RESOLUTIONS_EVERY_S", &mut c.resolutions_every)?;
        secs("POLYTAPE_TICK_MARGIN_S", &mut c.tick_margin)?;
        if lookup("POLYTAPE_FUNCTION_TIMEOUT_S").is_some() {
            let mut t = Duration::ZERO;
            secs("POLYTAPE_FUNCTION_TIMEOUT_S", &mut t)?;
            c.function_timeout = Some(t);
        }
        secs(
            "POLYTAPE_HEALTH_DISCOVERY_MAX_AGE_S",
            &mut c.health.discovery_max_age,
        )?;
        secs(
            "POLYTAPE_HEALTH_STARTUP_GRACE_S",
            &mut c.health.startup_grace,
        )?;
        secs("POLYTAPE_HEALTH_TICK_GRACE_S", &mut c.health.tick_grace)?;
        secs(
            "POLYTAPE_HEALTH_WS_HEARTBEAT_MAX_AGE_S",
            &mut c.health.ws_heartbeat_max_age,
        )?;
        for (var, pct) in [
            (
                "POLYTAPE_HEALTH_MAX_TICK_FAILURE_PCT",
                &mut c.health.max_tick_failure_pct,
            ),
            (
                "POLYTAPE_HEALTH_MIN_COVERAGE_PCT",
                &mut c.health.min_coverage_pct,
            ),
        ] {
            if let Some(v) = lookup(var) {
                *pct = v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or(ConfigError {
                        var,
                        value: v.clone(),
                        reason: "expected a percentage from 0 to 100",
                    })?;
            }
        }
        secs("POLYTAPE_COMPACT_EVERY_S", &mut c.compaction.every)?;
        secs("POLYTAPE_COMPACT_SETTLE_S", &mut c.compaction.settle)?;
        secs(
            "POLYTAPE_COMPACT_DELETE_AFTER_S",
            &mut c.compaction.delete_after,
        )?;
        secs("POLYTAPE_COMPACT_BUDGET_S", &mut c.compaction.budget)?;
        if let Some(v) = lookup("POLYTAPE_COMPACT_LOOKBACK_DAYS") {
            c.compaction.lookback_days =
                u32::try_from(parse_positive(&v, "POLYTAPE_COMPACT_LOOKBACK_DAYS")?)
                    .unwrap_or(u32::MAX);
        }
        if let Some(v) = lookup("POLYTAPE_HEALTH_MAX_TASK_FAILURES") {
            c.health.max_task_failures =
                u32::try_from(parse_positive(&v, "POLYTAPE_HEALTH_MAX_TASK_FAILURES")?)
                    .unwrap_or(u32::MAX);
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

    #[test]
    fn given_a_function_timeout_then_requests_stop_the_margin_before_the_invocations_end() {
        let c = Config::from_lookup(|k| match k {
            "POLYTAPE_FUNCTION_TIMEOUT_S" => Some("240".into()),
            "POLYTAPE_TICK_MARGIN_S" => Some("20".into()),
            _ => None,
        })
        .unwrap();
        let now: polytape_core::Ts = "2026-11-20T10:00:00Z".parse().unwrap();
        // cargo lambda watch's fixed deadline (1970): the configured timeout stands in.
        assert_eq!(
            c.requests_until(600_000, now),
            Some(now + chrono::Duration::seconds(220))
        );
        assert_eq!(
            Config::default().requests_until(0, now),
            None,
            "locally: no bound"
        );
    }
}
