//! Token-bucket rate limit per sink, paused by 429 + Retry-After.

use std::cell::Cell;
use tokio::time::{sleep_until, Duration, Instant};

/// One bucket per connection, from its connector's published quota, shared by every sink
/// (in every flow) that calls it.
#[derive(Default)]
pub struct ConnectionLimits {
    buckets: std::collections::HashMap<String, std::rc::Rc<TokenBucket>>,
}

impl ConnectionLimits {
    /// Buckets for the connections of a graph that publish a rate.
    pub fn new(graph: &omniflow_ir::Graph) -> ConnectionLimits {
        let buckets = graph
            .connections
            .iter()
            .filter_map(|c| {
                let rate = c.quota.rate_per_sec?;
                Some((
                    c.name.clone(),
                    std::rc::Rc::new(TokenBucket::new(Some(rate), c.quota.burst)),
                ))
            })
            .collect();
        ConnectionLimits { buckets }
    }

    /// The bucket of a connection, if its connector publishes a rate.
    pub fn get(&self, connection: &str) -> Option<std::rc::Rc<TokenBucket>> {
        self.buckets.get(connection).cloned()
    }
}

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

    /// Takes `n` tokens one after the other (for tests and bulk calls).
    pub async fn acquire_many(&self, n: usize) {
        for _ in 0..n {
            self.acquire().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn hands_out_tokens_at_the_rate_after_the_burst() {
        let bucket = TokenBucket::new(Some(5.0), Some(2));
        let started = Instant::now();
        bucket.acquire_many(2).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "the burst is free");
        bucket.acquire_many(10).await;
        let waited = started.elapsed().as_secs_f64();
        assert!(
            (waited - 2.0).abs() < 0.01,
            "10 tokens at 5/s take 2 s of virtual time, took {waited}"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let bucket = TokenBucket::new(None, None);
        bucket.pause(Duration::from_secs(3));
        let started = Instant::now();
        bucket.acquire().await;
        assert!(started.elapsed() >= Duration::from_secs(3));
    }
}
