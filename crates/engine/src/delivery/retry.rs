//! Backoff between attempts: fixed or exponential, bounded, with jitter; Retry-After wins.

use omniflow_ir::{Backoff, RetryPolicy};
use std::cell::Cell;
use std::time::Duration;

/// The jitter of one worker's delays: a xorshift stream seeded from the worker's name
/// (jitter needs no more), so every worker draws its own sequence and a test can repeat one.
pub struct Jitter(Cell<u64>);

impl Jitter {
    /// The stream of the worker named `name` (FNV-1a of the name; never zero).
    pub fn seeded(name: &str) -> Jitter {
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Jitter(Cell::new(hash | 1))
    }

    /// A uniform number in [0, 1).
    pub fn unit(&self) -> f64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
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
        transient: [
            "timeout",
            "connect",
            "rate_limited",
            "server_error",
            "unreadable_answer",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        retry_after: true,
    }
}

/// How long to wait before attempt `attempt + 1` (attempts count from 1).
pub fn delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: &Jitter,
) -> Duration {
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
    let jittered = base - spread + 2.0 * spread * jitter.unit();
    Duration::from_millis(jittered.max(0.0).min(policy.max_delay_ms.max(1) as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_is_bounded_and_jittered() {
        let policy = default_policy();
        let jitter = Jitter::seeded("flow/sink");
        for attempt in 1..20 {
            let d = delay(&policy, attempt, None, &jitter).as_millis() as u64;
            assert!(d <= policy.max_delay_ms, "attempt {attempt}: {d}");
        }
        let first = delay(&policy, 1, None, &jitter).as_millis() as u64;
        assert!((400..=600).contains(&first), "{first}");
        assert_eq!(
            delay(&policy, 1, Some(Duration::from_secs(3)), &jitter),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_worker_repeats_its_own_sequence_and_workers_differ() {
        let (a, b, c) = (
            Jitter::seeded("orders/erp"),
            Jitter::seeded("orders/erp"),
            Jitter::seeded("orders/crm"),
        );
        let first: Vec<f64> = (0..8).map(|_| a.unit()).collect();
        let again: Vec<f64> = (0..8).map(|_| b.unit()).collect();
        let other: Vec<f64> = (0..8).map(|_| c.unit()).collect();
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert!(first.iter().all(|u| (0.0..1.0).contains(u)));
    }
}
