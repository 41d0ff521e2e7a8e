//! The options of a `schedule` source: its cron expression and time zone, checked with the
//! parser the runtime schedules by (`crate::schedule`).

use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::schedule::{self, ScheduleError};
use crate::source::Span;
use crate::syntax::ast::Settings;

/// `cron = "..."`: reports `E0512` when the expression does not parse or never fires.
pub fn check_cron(expression: &str, span: Span, diags: &mut Diagnostics) {
    if let Err(ScheduleError::Cron { reason, .. }) = schedule::parse_cron(expression) {
        diags.push(
            Diagnostic::error(
                codes::INVALID_CRON,
                span,
                format!("invalid cron expression `{expression}`"),
            )
            .label(reason)
            .help("write minute hour day-of-month month day-of-week, optionally with seconds first, such as `0 7 * * *`"),
        );
    }
}

/// `tz = "..."`: reports `E0513` when the zone is not an IANA name the database knows.
pub fn check_time_zone(name: &str, span: Span, diags: &mut Diagnostics) {
    if schedule::time_zone(name).is_ok() {
        return;
    }
    let names = schedule::time_zone_names();
    let help = match crate::diagnostics::suggest::nearest(name, names.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{near}`?"),
        None => "use an IANA time zone name such as `Europe/Berlin` or `UTC`".to_string(),
    };
    diags.push(
        Diagnostic::error(
            codes::UNKNOWN_TIME_ZONE,
            span,
            format!("unknown time zone `{name}`"),
        )
        .label("not in the IANA time zone database")
        .help(help),
    );
}

/// `tz` without `cron`, or `every` beside `cron`: options that would be ignored.
pub fn check_combination(settings: &Settings, diags: &mut Diagnostics) {
    let (every, cron, tz) = (
        settings.get("every"),
        settings.get("cron"),
        settings.get("tz"),
    );
    if let (Some(every), Some(_)) = (every, cron) {
        diags.push(
            Diagnostic::error(
                codes::SOURCE_KIND_MISMATCH,
                every.name.span,
                "a schedule source takes `every` or `cron`, not both",
            )
            .label("`cron` is given too")
            .help("keep `cron` for ticks at set times, or `every` for an interval"),
        );
    }
    if let (Some(tz), None) = (tz, cron) {
        diags.push(
            Diagnostic::error(
                codes::SOURCE_KIND_MISMATCH,
                tz.name.span,
                "`tz` applies only to a `cron` schedule",
            )
            .label("no `cron` here")
            .help("remove `tz`, or schedule with `cron = \"0 7 * * *\"`"),
        );
    }
}
