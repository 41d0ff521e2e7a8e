//! Cron schedules: the one parser and tick rule that `omniflowc check` validates with and
//! the runtime runs by, so the two cannot disagree. Expressions are croner's (5 fields, or 6
//! with seconds first); zones come from the IANA database bundled into the binary.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The zone of a cron source without `tz`.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// A tick search never looks further than this many steps past a tick (a guard only: a
/// tick's successor is found in one step).
const MAX_STEPS: usize = 8;

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// The cron expression does not parse, or never fires.
    Cron { expression: String, reason: String },
    /// The zone is not in the bundled time zone database.
    TimeZone { name: String },
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleError::Cron { expression, reason } => {
                write!(f, "invalid cron expression `{expression}`: {reason}")
            }
            ScheduleError::TimeZone { name } => write!(f, "unknown time zone `{name}`"),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// A cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
}

/// croner's message, as a lowercase phrase without its final period.
fn reason(err: &croner::errors::CronError) -> String {
    if matches!(err, croner::errors::CronError::EmptyPattern) {
        return "the expression is empty".to_string();
    }
    let text = err.to_string();
    let text = text
        .strip_prefix("Component error: ")
        .or_else(|| text.strip_prefix("Invalid pattern: "))
        .unwrap_or(&text)
        .trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Parses a cron expression: minute hour day-of-month month day-of-week, optionally
/// preceded by a seconds field; names (`MON`, `JAN`), `L`, `W`, `#` and `@daily`-style
/// nicknames as croner reads them. An expression that never fires is refused too.
pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    let refuse = |reason: String| ScheduleError::Cron {
        expression: expression.to_string(),
        reason,
    };
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|err| refuse(reason(&err)))?;
    // 2001-01-01: every pattern that fires at all fires within the following 28 years.
    let start = Timestamp::from_second(978_307_200)
        .map_err(|err| refuse(err.to_string()))?
        .to_zoned(TimeZone::UTC);
    cron.find_next_occurrence(&start, false)
        .map_err(|_| refuse("it matches no date (such as 30 February)".to_string()))?;
    Ok(cron)
}

/// Looks a zone up by its IANA name (`Europe/Berlin`) in the bundled database.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    jiff::tz::db()
        .get(name)
        .map_err(|_| ScheduleError::TimeZone {
            name: name.to_string(),
        })
}

/// Every zone name the bundled database knows (for "did you mean").
pub fn time_zone_names() -> Vec<String> {
    jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_string())
        .collect()
}

impl Schedule {
    /// A schedule of `expression` in the zone `time_zone` (UTC when `None`).
    pub fn new(expression: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        Ok(Schedule {
            cron: parse_cron(expression)?,
            zone: self::time_zone(time_zone.unwrap_or(DEFAULT_TIME_ZONE))?,
        })
    }

    /// The first tick strictly after `after`. On a day whose clock jumps forward, a tick
    /// at a fixed time inside the gap (02:30) falls on the first instant after the gap
    /// (03:00); on a day whose clock goes back, a fixed-time tick happens once, on its
    /// first pass, while `*` and step fields match on both passes.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&after.to_zoned(self.zone.clone()), false)
            .ok()
            .map(|zoned| zoned.timestamp())
    }

    /// The latest tick at or before `now` (the same ticks as [`Schedule::next_after`]
    /// walks through).
    pub fn latest_at_or_before(&self, now: Timestamp) -> Option<Timestamp> {
        let mut latest = self
            .cron
            .find_previous_occurrence(&now.to_zoned(self.zone.clone()), true)
            .ok()?
            .timestamp();
        // Walk forward from there, so both directions agree on gap and overlap days.
        for _ in 0..MAX_STEPS {
            match self.next_after(latest) {
                Some(next) if next <= now => latest = next,
                _ => break,
            }
        }
        Some(latest)
    }

    /// The tick to run at `now`, given the tick of the last run (`None`: never ran).
    /// However many ticks passed since the last run (downtime), one run catches up, as
    /// the latest of them; a source that never ran runs once at once, for the latest tick
    /// before now. `None` when that tick has already run.
    pub fn due(&self, last: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        let latest = self.latest_at_or_before(now)?;
        match last {
            Some(last) if latest <= last => None,
            _ => Some(latest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn ticks(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut tick = at(from);
        (0..n)
            .map(|_| {
                tick = schedule.next_after(tick).unwrap();
                tick.to_string()
            })
            .collect()
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_runs_once_right_after_it_in_berlin() {
        let schedule = Schedule::new("30 2 * * *", Some("Europe/Berlin")).unwrap();
        // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        assert_eq!(
            ticks(&schedule, "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        assert_eq!(
            schedule.latest_at_or_before(at("2026-03-29T01:10:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn a_fixed_time_in_the_autumn_overlap_runs_once_in_berlin() {
        let schedule = Schedule::new("30 2 * * *", Some("Europe/Berlin")).unwrap();
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        assert_eq!(
            ticks(&schedule, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // Waking up during the second 02:30 finds the first one already due, not a new tick.
        assert_eq!(
            schedule.due(Some(at("2026-10-25T00:30:00Z")), at("2026-10-25T01:40:00Z")),
            None
        );
    }

    #[test]
    fn new_york_gap_and_overlap() {
        let schedule = Schedule::new("30 2 * * *", Some("America/New_York")).unwrap();
        // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        assert_eq!(
            ticks(&schedule, "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
        );
        // 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice, once run.
        let schedule = Schedule::new("30 1 * * *", Some("America/New_York")).unwrap();
        assert_eq!(
            ticks(&schedule, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn steps_follow_real_time_through_the_overlap() {
        let schedule = Schedule::new("0 * * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            ticks(&schedule, "2026-10-24T23:30:00Z", 3),
            [
                "2026-10-25T00:00:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T02:00:00Z"
            ]
        );
    }

    #[test]
    fn end_of_month_and_leap_day() {
        let last_day = Schedule::new("0 7 L * *", None).unwrap();
        assert_eq!(
            ticks(&last_day, "2028-01-31T08:00:00Z", 2),
            ["2028-02-29T07:00:00Z", "2028-03-31T07:00:00Z"]
        );
        let the_31st = Schedule::new("0 0 31 * *", None).unwrap();
        assert_eq!(
            ticks(&the_31st, "2026-01-31T00:00:00Z", 2),
            ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"]
        );
    }

    #[test]
    fn seven_every_morning_across_a_restart() {
        let schedule = Schedule::new("0 7 * * *", None).unwrap();
        // Never ran: the latest tick runs at once.
        assert_eq!(
            schedule.due(None, at("2026-05-04T06:00:00Z")),
            Some(at("2026-05-03T07:00:00Z"))
        );
        // Ran at 07:00, restarted at 07:05 and at 23:59 the same day: nothing is due.
        let ran = at("2026-05-04T07:00:00Z");
        assert_eq!(schedule.due(Some(ran), at("2026-05-04T07:05:00Z")), None);
        assert_eq!(schedule.due(Some(ran), at("2026-05-04T23:59:59Z")), None);
        assert_eq!(
            schedule.next_after(at("2026-05-04T07:05:00Z")),
            Some(at("2026-05-05T07:00:00Z"))
        );
        // Down for three mornings: one run catches up, as the latest of them.
        assert_eq!(
            schedule.due(Some(ran), at("2026-05-07T09:00:00Z")),
            Some(at("2026-05-07T07:00:00Z"))
        );
        // On the tick itself, it is due.
        assert_eq!(
            schedule.due(Some(ran), at("2026-05-05T07:00:00Z")),
            Some(at("2026-05-05T07:00:00Z"))
        );
    }

    #[test]
    fn seconds_are_an_optional_first_field() {
        let schedule = Schedule::new("*/10 * * * * *", None).unwrap();
        assert_eq!(
            ticks(&schedule, "2026-05-04T07:00:05Z", 2),
            ["2026-05-04T07:00:10Z", "2026-05-04T07:00:20Z"]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_a_reason() {
        for (expression, reason) in [
            ("61 * * * *", "number out of bounds"),
            (
                "0 7 * *",
                "pattern must have 5 or 6 fields when years are disallowed",
            ),
            ("0 0 30 2 *", "it matches no date (such as 30 February)"),
            ("", "the expression is empty"),
        ] {
            assert_eq!(
                parse_cron(expression).unwrap_err(),
                ScheduleError::Cron {
                    expression: expression.to_string(),
                    reason: reason.to_string()
                }
            );
        }
        assert_eq!(
            time_zone("Europe/Berlinn").unwrap_err().to_string(),
            "unknown time zone `Europe/Berlinn`"
        );
        assert!(time_zone_names().iter().any(|n| n == "America/New_York"));
    }
}
