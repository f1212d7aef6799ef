//! Where handlers read the time. Handlers never call `Utc::now()` directly, so a test can run
//! a tick "at" any moment and check what it wrote against the schedule.

use polytape_core::Ts;
use std::sync::{Arc, Mutex};

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
