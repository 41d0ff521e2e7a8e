//! Circuit breaker: after repeated failures a sink stops calling its endpoint for a
//! cool-down; messages wait (durably, in the inbox) and one trial call reopens the way.

use std::cell::Cell;
use tokio::time::{sleep_until, Duration, Instant};

/// Consecutive failures that open the circuit.
pub const THRESHOLD: u32 = 5;
/// How long an open circuit stays open before a trial call.
pub const COOL_DOWN: Duration = Duration::from_secs(5);

/// A circuit breaker for one sink.
#[derive(Default)]
pub struct Circuit {
    failures: Cell<u32>,
    open_until: Cell<Option<Instant>>,
    trial_in_flight: Cell<bool>,
}

impl Circuit {
    /// Waits while the circuit is open; returns once a call may go out.
    pub async fn wait(&self) {
        loop {
            match self.open_until.get() {
                None => return,
                Some(until) if Instant::now() < until => sleep_until(until).await,
                Some(_) => {
                    if !self.trial_in_flight.get() {
                        self.trial_in_flight.set(true);
                        return;
                    }
                    sleep_until(Instant::now() + Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// True while calls are held back.
    pub fn is_open(&self) -> bool {
        self.open_until.get().is_some()
    }

    /// A call let through by [`Circuit::wait`] will not be made: the trial slot, if it
    /// took one, goes to the next caller.
    pub fn release(&self) {
        self.trial_in_flight.set(false);
    }

    /// A call succeeded: close the circuit.
    pub fn success(&self) {
        self.failures.set(0);
        self.open_until.set(None);
        self.trial_in_flight.set(false);
    }

    /// A call failed transiently.
    pub fn failure(&self) {
        let failures = self.failures.get() + 1;
        self.failures.set(failures);
        self.trial_in_flight.set(false);
        if failures >= THRESHOLD {
            self.open_until.set(Some(Instant::now() + COOL_DOWN));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn opens_after_repeated_failures_and_closes_after_a_good_trial() {
        let circuit = Circuit::default();
        for _ in 0..THRESHOLD - 1 {
            circuit.failure();
        }
        assert!(!circuit.is_open(), "below the threshold calls go on");
        circuit.failure();
        assert!(circuit.is_open());
        let started = Instant::now();
        circuit.wait().await; // the trial call, after the cool-down
        assert!(started.elapsed() >= COOL_DOWN);
        circuit.success();
        assert!(!circuit.is_open());
        let again = Instant::now();
        circuit.wait().await;
        assert_eq!(
            again.elapsed(),
            Duration::ZERO,
            "a closed circuit does not hold calls"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_failed_trial_reopens_for_another_cool_down() {
        let circuit = Circuit::default();
        for _ in 0..THRESHOLD {
            circuit.failure();
        }
        circuit.wait().await;
        circuit.failure();
        let started = Instant::now();
        circuit.wait().await;
        assert!(started.elapsed() >= COOL_DOWN);
    }
}
