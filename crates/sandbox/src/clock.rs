//! The sandbox's compressible clock: simulated seconds run `scale` times faster than real
//! ones, so a vendor's hours-long redelivery schedule can be rehearsed in seconds. The
//! control API sets the scale (`POST /_sandbox/clock {"scale": 3600}`); a change takes
//! effect on waits already running.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The largest wait slice, so a scale change is noticed by waits already running.
const SLICE: Duration = Duration::from_millis(200);

/// Accepted scales: from ten times slower than real time to a million times faster.
pub const SCALES: std::ops::RangeInclusive<f64> = 0.1..=1_000_000.0;

/// Simulated time, `scale` times real time since the last re-base.
pub struct Clock {
    scale: Cell<f64>,
    base_real: Cell<Instant>,
    base_sim: Cell<f64>,
}

impl Clock {
    /// A clock at `scale` (clamped to [`SCALES`]).
    pub fn new(scale: f64) -> Clock {
        Clock {
            scale: Cell::new(clamp(scale)),
            base_real: Cell::new(Instant::now()),
            base_sim: Cell::new(0.0),
        }
    }

    /// Simulated seconds since the sandbox started.
    pub fn now(&self) -> f64 {
        self.base_sim.get() + self.base_real.get().elapsed().as_secs_f64() * self.scale.get()
    }

    /// The current scale.
    pub fn scale(&self) -> f64 {
        self.scale.get()
    }

    /// Sets the scale from now on; `Err` outside [`SCALES`].
    pub fn set_scale(&self, scale: f64) -> Result<(), String> {
        if !scale.is_finite() || !SCALES.contains(&scale) {
            return Err(format!(
                "scale must be a number from {} to {}",
                SCALES.start(),
                SCALES.end()
            ));
        }
        self.base_sim.set(self.now());
        self.base_real.set(Instant::now());
        self.scale.set(scale);
        Ok(())
    }

    /// Waits `seconds` of simulated time.
    pub async fn sleep(&self, seconds: f64) {
        let due = self.now() + seconds.max(0.0);
        loop {
            let left = due - self.now();
            if left <= 0.0 {
                return;
            }
            let real = Duration::from_secs_f64(left / self.scale.get());
            tokio::time::sleep(real.min(SLICE)).await;
        }
    }
}

fn clamp(scale: f64) -> f64 {
    if scale.is_finite() {
        scale.clamp(*SCALES.start(), *SCALES.end())
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_outside_the_range_is_refused_and_the_clock_keeps_counting() {
        let clock = Clock::new(1_000.0);
        assert!(clock.set_scale(0.0).is_err());
        assert!(clock.set_scale(f64::NAN).is_err());
        assert!(clock.set_scale(1e9).is_err());
        assert_eq!(clock.scale(), 1_000.0);
        let before = clock.now();
        clock.set_scale(10.0).expect("in range");
        assert!(clock.now() >= before, "re-basing never goes back");
        assert_eq!(Clock::new(f64::INFINITY).scale(), 1.0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_simulated_hour_at_scale_36000_passes() {
        let clock = Clock::new(36_000.0);
        let start = clock.now();
        clock.sleep(3_600.0).await;
        assert!(clock.now() - start >= 3_600.0);
    }
}
