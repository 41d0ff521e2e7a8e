//! Backoff between attempts: fixed or exponential, bounded, with jitter; Retry-After wins.

use omniflow_ir::{Backoff, RetryPolicy};
use std::cell::Cell;
use std::time::Duration;

thread_local! {
    static SEED: Cell<u64> = Cell::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1,
    );
}

/// A uniform number in [0, 1) (xorshift; jitter needs no more).
pub fn unit() -> f64 {
    SEED.with(|seed| {
        let mut x = seed.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seed.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// The policy used when a sink names none.
pub fn default_policy() -> RetryPolicy {
    RetryPolicy {
        name: "default".into(),
        attempts: 5,
        backoff: Backoff::Exponential,
        initial_ms: 500,
        max_delay_ms: 30_000,
        jitter: 0.2,
        transient: ["timeout", "connect", "rate_limited", "server_error"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        retry_after: true,
    }
}

/// How long to wait before attempt `attempt + 1` (attempts count from 1).
pub fn delay(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let (true, Some(wait)) = (policy.retry_after, retry_after) {
        return wait.min(Duration::from_secs(600));
    }
    let base = match policy.backoff {
        Backoff::Fixed => policy.initial_ms as f64,
        Backoff::Exponential => {
            let factor = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
            (policy.initial_ms as f64 * factor).min(policy.max_delay_ms as f64)
        }
    };
    let spread = base * policy.jitter;
    let jittered = base - spread + 2.0 * spread * unit();
    Duration::from_millis(jittered.max(0.0).min(policy.max_delay_ms.max(1) as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_is_bounded_and_jittered() {
        let policy = default_policy();
        for attempt in 1..20 {
            let d = delay(&policy, attempt, None).as_millis() as u64;
            assert!(d <= policy.max_delay_ms, "attempt {attempt}: {d}");
        }
        let first = delay(&policy, 1, None).as_millis() as u64;
        assert!((400..=600).contains(&first), "{first}");
        assert_eq!(
            delay(&policy, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
