//! Rates over time for the console: every [`EVERY`] the flows' message counters are
//! sampled, and the last [`KEPT`] samples kept, so the console plots the last ten minutes.

use crate::ops::metrics::{Metrics, DEAD_LETTERS, MESSAGES_IN, MESSAGES_OUT};
use omniflow_mapping::pipeline::{KindRt, Pipeline};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Time between samples.
pub const EVERY: Duration = Duration::from_secs(5);
/// Samples kept (ten minutes).
pub const KEPT: usize = 120;

/// One flow's counters at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Messages accepted by the flow's sources.
    pub accepted: u64,
    /// Deliveries that succeeded.
    pub delivered: u64,
    pub dead: u64,
}

/// A sample of every flow, in the pipeline's order.
struct Sample {
    at: Instant,
    flows: Vec<Totals>,
}

/// The samples kept.
#[derive(Default)]
pub struct History {
    samples: RefCell<VecDeque<Sample>>,
}

/// One flow's rates (per second) between two samples, and how long ago the later one was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub ago: Duration,
    pub accepted: f64,
    pub delivered: f64,
}

impl History {
    /// The counters of every flow of `pipeline` now.
    pub fn totals(pipeline: &Pipeline, metrics: &Metrics) -> Vec<Totals> {
        pipeline
            .flows
            .iter()
            .map(|flow| {
                let mut totals = Totals {
                    dead: metrics.sum(DEAD_LETTERS, &flow.name, |_| true),
                    ..Totals::default()
                };
                for node in &flow.nodes {
                    match node.kind {
                        KindRt::Source { .. } => {
                            totals.accepted += metrics.get(MESSAGES_IN, &flow.name, &node.name)
                        }
                        KindRt::Sink { .. } => {
                            totals.delivered += metrics.get(MESSAGES_OUT, &flow.name, &node.name)
                        }
                        _ => {}
                    }
                }
                totals
            })
            .collect()
    }

    /// Keeps a sample taken at `at`, dropping the oldest beyond [`KEPT`].
    pub fn record(&self, at: Instant, flows: Vec<Totals>) {
        let mut samples = self.samples.borrow_mut();
        samples.push_back(Sample { at, flows });
        while samples.len() > KEPT {
            samples.pop_front();
        }
    }

    /// Flow `flow`'s rates between consecutive samples, oldest first, as seen at `now`.
    pub fn rates(&self, flow: usize, now: Instant) -> Vec<Rate> {
        let samples = self.samples.borrow();
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .filter_map(|(before, after)| {
                let (b, a) = (before.flows.get(flow)?, after.flows.get(flow)?);
                let secs = after.at.duration_since(before.at).as_secs_f64();
                (secs > 0.0).then(|| Rate {
                    ago: now.saturating_duration_since(after.at),
                    accepted: a.accepted.saturating_sub(b.accepted) as f64 / secs,
                    delivered: a.delivered.saturating_sub(b.delivered) as f64 / secs,
                })
            })
            .collect()
    }

    /// Samples every [`EVERY`] until `stop` changes.
    pub async fn run(
        self: Rc<Self>,
        pipeline: Rc<Pipeline>,
        metrics: Rc<Metrics>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            self.record(Instant::now(), History::totals(&pipeline, &metrics));
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(accepted: u64, delivered: u64) -> Vec<Totals> {
        vec![Totals {
            accepted,
            delivered,
            dead: 0,
        }]
    }

    #[test]
    fn rates_are_the_counters_differences_per_second_and_only_the_last_samples_are_kept() {
        let history = History::default();
        let start = Instant::now();
        history.record(start, totals(0, 0));
        history.record(start + Duration::from_secs(5), totals(50, 25));
        history.record(start + Duration::from_secs(10), totals(50, 75));
        let rates = history.rates(0, start + Duration::from_secs(10));
        assert_eq!(rates.len(), 2);
        assert_eq!((rates[0].accepted, rates[0].delivered), (10.0, 5.0));
        assert_eq!((rates[1].accepted, rates[1].delivered), (0.0, 10.0));
        assert_eq!(rates[1].ago, Duration::ZERO);
        assert!(history.rates(1, start).is_empty(), "no such flow");
        for n in 0..200 {
            history.record(start + Duration::from_secs(15 + n), totals(100, 100));
        }
        assert_eq!(history.samples.borrow().len(), KEPT);
    }
}
