//! Cron sources: a pager read once per tick of a cron expression in a time zone. The tick a
//! run belongs to commits with the run's last page (cursor key `tick`), so a restart within
//! the same tick does not run it again; ticks missed while down are caught up by one run.

use super::poll::PollSource;
use crate::engine::FlowCtx;
use jiff::Timestamp;
use omniflow_ir::schedule::Schedule;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// The cursor key under which the tick of the last complete run is stored.
pub const TICK: &str = "tick";
/// Runs completed, by flow and source.
pub const RUNS: &str = "omniflow_schedule_runs_total";
/// The next tick a source waits for, in Unix seconds, by flow and source.
pub const NEXT_TICK: &str = "omniflow_schedule_next_tick_seconds";
/// Set to a file holding an RFC 3339 instant, schedules take that instant as now (tests
/// drive the clock with it); unset, they read the system clock.
pub const CLOCK_FILE_ENV: &str = "OMNIFLOW_SCHEDULE_CLOCK_FILE";

/// A failed run is tried again after this long (on the schedule's clock), until the next
/// tick.
const RETRY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);
/// The longest sleep before the clock is read again (it may have been set or jumped).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often a file clock is read again.
const FILE_CLOCK_POLL: Duration = Duration::from_millis(50);

/// Where a schedule reads the time.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// The instant written in a file (see [`CLOCK_FILE_ENV`]).
    File(PathBuf),
}

impl Clock {
    /// The file clock when [`CLOCK_FILE_ENV`] is set, else the system clock.
    pub fn from_env() -> Clock {
        match std::env::var_os(CLOCK_FILE_ENV) {
            Some(path) => Clock::File(PathBuf::from(path)),
            None => Clock::System,
        }
    }

    /// Now, or `None` when a file clock cannot be read.
    pub fn now(&self) -> Option<Timestamp> {
        match self {
            Clock::System => Some(Timestamp::now()),
            Clock::File(path) => std::fs::read_to_string(path).ok()?.trim().parse().ok(),
        }
    }

    fn slice(&self) -> Duration {
        match self {
            Clock::System => MAX_SLEEP,
            Clock::File(_) => FILE_CLOCK_POLL,
        }
    }
}

/// A running cron source.
pub struct CronSource {
    poll: PollSource,
    ctx: Rc<FlowCtx>,
    name: String,
    schedule: Schedule,
    clock: Clock,
}

impl CronSource {
    /// A source that reads `poll`'s pager at each tick of `schedule`.
    pub fn new(
        ctx: Rc<FlowCtx>,
        name: &str,
        schedule: Schedule,
        clock: Clock,
        poll: PollSource,
    ) -> CronSource {
        CronSource {
            poll,
            ctx,
            name: name.to_string(),
            schedule,
            clock,
        }
    }

    /// The tick of the last complete run, as stored.
    async fn stored_tick(&self) -> Result<Option<Timestamp>, String> {
        let (flow, source) = (self.ctx.flow_name().to_string(), self.name.clone());
        let text = self
            .ctx
            .store
            .call(move |b| b.cursor(&flow, &source, TICK))
            .await?;
        match text {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| format!("stored tick `{text}` is not an instant: {e}")),
        }
    }

    /// The stored tick, read again until it can be (`None`: stopped meanwhile).
    async fn last_tick(&self, stop: &mut watch::Receiver<bool>) -> Option<Option<Timestamp>> {
        loop {
            match self.stored_tick().await {
                Ok(last) => return Some(last),
                Err(err) => {
                    tracing::warn!(flow = %self.ctx.flow_name(), source = %self.name, error = %err, "cannot read the schedule's last tick; trying again");
                    if self.sleep(MAX_SLEEP, stop).await {
                        return None;
                    }
                }
            }
        }
    }

    /// How long to sleep at `now`: until the next tick or the retry of a failed one,
    /// at most one slice of the clock. Publishes the next tick.
    fn wait(&self, now: Timestamp, retry_at: Option<Timestamp>) -> Duration {
        let next = self.schedule.next_after(now);
        if let Some(next) = next {
            self.ctx.metrics.set_node_gauge(
                NEXT_TICK,
                self.ctx.flow_name(),
                &self.name,
                next.as_second(),
            );
        }
        let wake = match (next, retry_at) {
            (Some(next), Some(at)) => Some(next.min(at)),
            (next, at) => next.or(at),
        };
        wake.and_then(|wake| Duration::try_from(wake.duration_since(now)).ok())
            .unwrap_or(MAX_SLEEP)
            .min(self.clock.slice())
    }

    /// Runs at each tick until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let flow = self.ctx.flow_name().to_string();
        // The lease first: the last tick is read as its holder left it.
        let Some(fence) = self.ctx.source_lease(&self.name, &mut stop).await else {
            return;
        };
        let Some(mut last) = self.last_tick(&mut stop).await else {
            return;
        };
        // A failed tick and when to try it again.
        let mut failed: Option<(Timestamp, Timestamp)> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let Some(now) = self.clock.now() else {
                tracing::warn!(flow = %flow, source = %self.name, "the schedule's clock cannot be read");
                if self.sleep(self.clock.slice(), &mut stop).await {
                    return;
                }
                continue;
            };
            let due = self.schedule.due(last, now);
            let waiting = |tick: &Timestamp| failed.is_some_and(|(t, at)| t == *tick && now < at);
            if let Some(tick) = due.filter(|tick| !waiting(tick)) {
                match self
                    .poll
                    .poll_then(Some((TICK.to_string(), tick.to_string())), &fence)
                    .await
                {
                    Ok(()) => {
                        self.ctx.source_attempt(&self.name, None);
                        tracing::info!(flow = %flow, source = %self.name, tick = %tick, "scheduled run complete");
                        last = Some(tick);
                        failed = None;
                        self.ctx.metrics.add(RUNS, &flow, &self.name, 1);
                    }
                    Err(err) => {
                        self.ctx.source_attempt(&self.name, Some(&err));
                        tracing::warn!(flow = %flow, source = %self.name, tick = %tick, error = %err, "scheduled run failed; trying again in a minute or at the next tick");
                        failed = now.checked_add(RETRY).ok().map(|at| (tick, at));
                    }
                }
                continue;
            }
            if self
                .sleep(self.wait(now, failed.map(|(_, at)| at)), &mut stop)
                .await
            {
                return;
            }
        }
    }

    /// Sleeps; true when `stop` was signalled.
    async fn sleep(&self, wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(wait) => *stop.borrow(),
            _ = stop.changed() => true,
        }
    }
}
