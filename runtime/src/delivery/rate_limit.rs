//! Token-bucket rate limit per sink, paused by 429 + Retry-After.

use std::cell::Cell;
use tokio::time::{sleep_until, Duration, Instant};

/// A token bucket; `None` rate means unlimited.
pub struct TokenBucket {
    rate_per_sec: Option<f64>,
    burst: f64,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
    paused_until: Cell<Option<Instant>>,
}

impl TokenBucket {
    /// A bucket with this rate and burst.
    pub fn new(rate_per_sec: Option<f64>, burst: Option<u64>) -> TokenBucket {
        let burst = burst
            .map(|b| b as f64)
            .unwrap_or_else(|| rate_per_sec.map_or(1.0, |r| r.max(1.0)));
        TokenBucket {
            rate_per_sec,
            burst,
            tokens: Cell::new(burst),
            refilled: Cell::new(Instant::now()),
            paused_until: Cell::new(None),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            if let Some(until) = self.paused_until.get() {
                if Instant::now() < until {
                    sleep_until(until).await;
                    continue;
                }
                self.paused_until.set(None);
            }
            let Some(rate) = self.rate_per_sec else {
                return;
            };
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled.get()).as_secs_f64();
            self.refilled.set(now);
            let tokens = (self.tokens.get() + elapsed * rate).min(self.burst);
            if tokens >= 1.0 {
                self.tokens.set(tokens - 1.0);
                return;
            }
            self.tokens.set(tokens);
            let wait = Duration::from_secs_f64((1.0 - tokens) / rate);
            sleep_until(now + wait).await;
        }
    }

    /// Stops handing out tokens for a while (the system said 429 with Retry-After).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        if self
            .paused_until
            .get()
            .is_none_or(|current| current < until)
        {
            self.paused_until.set(Some(until));
        }
    }
}
