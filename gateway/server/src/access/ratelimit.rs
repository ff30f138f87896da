//! Per-client rate limits: a token bucket per key (an authenticated caller,
//! an address that fails to authenticate, a page reader's address), with the
//! time passed in, and a bound on how many clients are tracked at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bro_domain::Timestamp;

/// A rate: sustained calls per second, and a burst.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed in a burst.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: 100.0, burst: 500.0 }
    }
}

/// Most clients tracked at once.
const MAX_BUCKETS: usize = 50_000;

/// One token bucket per key.
pub struct Buckets {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Timestamp)>>,
}

impl Buckets {
    /// Empty buckets with `limit`.
    pub fn new(limit: RateLimit) -> Buckets {
        Buckets { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token from `key`'s bucket at `now`; false when it is empty.
    pub fn allow(&self, key: &str, now: Timestamp) -> bool {
        // A clock that steps back refills nothing.
        let since = |at: Timestamp| (now - at).to_std().unwrap_or_default();
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Forget clients whose bucket has refilled (they lose nothing), then, if
            // still full, refuse newcomers rather than grow without bound.
            let idle = Duration::from_secs_f64(self.limit.burst / self.limit.per_second.max(0.001))
                .min(Duration::from_secs(60));
            buckets.retain(|_, (_, at)| since(*at) < idle);
            if buckets.len() >= MAX_BUCKETS {
                return false;
            }
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.limit.burst, now));
        *tokens = (*tokens + since(*at).as_secs_f64() * self.limit.per_second).min(self.limit.burst);
        *at = now.max(*at);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill() {
        let buckets = Buckets::new(RateLimit { per_second: 1000.0, burst: 3.0 });
        let start = Timestamp::from_timestamp(1_800_000_000, 0).expect("time");
        assert!((0..3).all(|_| buckets.allow("a", start)));
        assert!(!buckets.allow("a", start), "the burst is spent");
        assert!(buckets.allow("b", start), "clients are limited separately");
        let later = start + chrono::Duration::milliseconds(5);
        assert!(buckets.allow("a", later), "tokens come back over time");
    }

    #[test]
    fn a_clock_that_steps_back_refills_nothing() {
        let buckets = Buckets::new(RateLimit { per_second: 1000.0, burst: 1.0 });
        let start = Timestamp::from_timestamp(1_800_000_000, 0).expect("time");
        assert!(buckets.allow("a", start));
        assert!(!buckets.allow("a", start - chrono::Duration::seconds(10)));
        assert!(!buckets.allow("a", start), "and the step back bought nothing later either");
    }
}
