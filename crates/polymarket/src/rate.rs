//! Client-side rate limiting: one sliding-window limiter per endpoint at Polymarket's documented
//! limits (reference §5). Cloudflare first *delays* requests over the limit and then answers
//! 429 with an HTML body (trap 17); staying under the limit avoids both.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// At most `max_requests` requests in any window of `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window: Duration,
}

impl RateLimit {
    /// `max_requests` per 10 seconds, the unit of every published Polymarket limit.
    pub const fn per_10s(max_requests: u32) -> RateLimit {
        RateLimit {
            max_requests,
            window: Duration::from_secs(10),
        }
    }
}

/// The limit of each endpoint the client calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Gamma `/markets/keyset` (listing and by condition ids). The listing limit is 900/10 s,
    /// but `/markets` itself is 300/10 s: the lower one is used to be safe.
    pub gamma_markets: RateLimit,
    /// CLOB `POST /books`: 500/10 s.
    pub clob_books: RateLimit,
    /// CLOB `GET /book`: 1,500/10 s.
    pub clob_book: RateLimit,
    /// Data API `/trades`: 200/10 s.
    pub data_trades: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            gamma_markets: RateLimit::per_10s(300),
            clob_books: RateLimit::per_10s(500),
            clob_book: RateLimit::per_10s(1_500),
            data_trades: RateLimit::per_10s(200),
        }
    }
}

/// A sliding-window limiter: remembers when each of the last `max_requests` permits was taken
/// and makes the next caller wait until the oldest leaves the window.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    taken: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter enforcing `limit` (a limit of 0 requests is treated as 1).
    pub fn new(limit: RateLimit) -> RateLimiter {
        let limit = RateLimit {
            max_requests: limit.max_requests.max(1),
            window: limit.window,
        };
        RateLimiter {
            limit,
            taken: Mutex::new(VecDeque::with_capacity(limit.max_requests as usize)),
        }
    }

    /// The limit enforced.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a permit, waiting (on tokio's clock) while the window is full.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_at(Instant::now()) {
                Ok(()) => return,
                Err(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Takes a permit, waiting while the window is full, unless the permit would only come at
    /// or after `deadline`: then it returns `false` at once, without waiting in vain.
    pub async fn acquire_before(&self, deadline: Instant) -> bool {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.try_acquire_at(now) {
                Ok(()) => return true,
                Err(until) if until >= deadline => return false,
                Err(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Takes a permit at `now`, or says when one frees up.
    fn try_acquire_at(&self, now: Instant) -> Result<(), Instant> {
        // A poisoned lock only means another task panicked mid-update; the queue is still a
        // valid list of instants, so keep using it.
        let mut taken = self
            .taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(&oldest) = taken.front() {
            if now.duration_since(oldest) >= self.limit.window {
                taken.pop_front();
            } else {
                break;
            }
        }
        if taken.len() < self.limit.max_requests as usize {
            taken.push_back(now);
            Ok(())
        } else {
            // Full: the oldest permit leaves the window first.
            Err(taken.front().map_or(now, |&o| o + self.limit.window))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn given_a_full_window_when_acquiring_then_the_caller_waits_for_the_oldest_to_expire() {
        let lim = RateLimiter::new(RateLimit {
            max_requests: 3,
            window: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            lim.acquire().await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO, "the first 3 pass at once");
        tokio::time::advance(Duration::from_secs(4)).await;
        lim.acquire().await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(10),
            "the 4th waits for the 1st to leave"
        );
        lim.acquire().await;
        lim.acquire().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(10));
        lim.acquire().await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(20),
            "the window slides with each permit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_deadline_before_the_next_free_permit_when_acquiring_then_no_wait_and_false() {
        let lim = RateLimiter::new(RateLimit::per_10s(2));
        let t0 = Instant::now();
        assert!(lim.acquire_before(t0 + Duration::from_secs(1)).await);
        assert!(lim.acquire_before(t0 + Duration::from_secs(1)).await);
        // The next permit frees up at t0 + 10 s.
        assert!(!lim.acquire_before(t0 + Duration::from_secs(10)).await);
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "did not wait for a permit it could not use"
        );
        assert!(lim.acquire_before(t0 + Duration::from_secs(11)).await);
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(10),
            "waited for one it could use"
        );
        assert!(
            !lim.acquire_before(t0).await,
            "a passed deadline takes no permit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn given_many_concurrent_callers_when_acquiring_then_no_window_holds_more_than_the_limit()
    {
        let lim = Arc::new(RateLimiter::new(RateLimit::per_10s(5)));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..23 {
            let lim = lim.clone();
            tasks.push(tokio::spawn(async move {
                lim.acquire().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap().duration_since(t0));
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| **u < *t + Duration::from_secs(10))
                .count();
            assert!(in_window <= 5, "{in_window} permits within 10 s of {t:?}");
        }
        // 23 permits at 5 per 10 s: the last is granted in the 5th window.
        assert_eq!(*times.last().unwrap(), Duration::from_secs(40));
    }

    #[test]
    fn given_the_documented_limits_when_defaulted_then_each_endpoint_has_its_own() {
        let l = RateLimits::default();
        assert_eq!(l.gamma_markets, RateLimit::per_10s(300));
        assert_eq!(l.clob_books, RateLimit::per_10s(500));
        assert_eq!(l.clob_book, RateLimit::per_10s(1_500));
        assert_eq!(l.data_trades, RateLimit::per_10s(200));
    }
}
