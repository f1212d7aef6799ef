//! Where handlers read the time. Handlers never call `Utc::now()` directly, so a test can run
//! a tick "at" any moment and check what it wrote against the schedule.

use polytape_core::Ts;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Ts;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        chrono::Utc::now()
    }
}

/// A clock that reads what it was last set to (tests).
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<Ts>>);

impl FixedClock {
    pub fn new(t: Ts) -> Self {
        FixedClock(Arc::new(Mutex::new(t)))
    }

    pub fn set(&self, t: Ts) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Ts {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The end of an invocation that started at `started`: the runtime's deadline when it is a
/// plausible one, never later than `started + timeout` (the function's configured timeout,
/// `POLYTAPE_FUNCTION_TIMEOUT_S`). The two agree on Lambda; the configured timeout covers
/// runtimes whose deadline header is not real (`cargo lambda watch` sends a fixed one).
pub fn invocation_end(deadline_ms: u64, started: Ts, timeout: Option<Duration>) -> Option<Ts> {
    let from_runtime = i64::try_from(deadline_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .filter(|end| *end > started);
    let configured = timeout
        .and_then(|t| chrono::Duration::from_std(t).ok())
        .map(|t| started + t);
    match (from_runtime, configured) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A client bounded by `until` (requests stop then, see `PolymarketClient::with_deadline`), as
/// `now` on `clock` sees it; the client itself when there is no bound.
pub fn bounded(
    client: &polytape_polymarket::PolymarketClient,
    until: Option<Ts>,
    clock: &impl Clock,
) -> polytape_polymarket::PolymarketClient {
    match until {
        Some(t) => client.with_deadline(
            tokio::time::Instant::now() + (t - clock.now()).to_std().unwrap_or_default(),
        ),
        None => client.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_runtime_deadline_and_a_configured_timeout_then_the_earlier_real_one_ends_the_invocation(
    ) {
        let start: Ts = "2026-11-20T10:00:00Z".parse().unwrap();
        let ms = |t: Ts| u64::try_from(t.timestamp_millis()).unwrap();
        let in_60 = start + chrono::Duration::seconds(60);
        let timeout = Some(Duration::from_secs(90));
        assert_eq!(invocation_end(ms(in_60), start, timeout), Some(in_60));
        assert_eq!(
            invocation_end(600_000, start, timeout),
            Some(start + chrono::Duration::seconds(90)),
            "cargo lambda watch's fixed deadline (1970) is not a real one"
        );
        assert_eq!(invocation_end(0, start, None), None);
    }
}
