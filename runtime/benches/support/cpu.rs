//! A process's CPU time as the benchmarks report it (shared by `#[path]`).

/// CPU time (user + system, every thread) a process has used so far, from `/proc`.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// The CPU seconds a `/proc` `stat` line (of a process or of one thread) counts; NaN when it
/// cannot be read.
pub fn stat_seconds(stat: &str) -> f64 {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(f64::NAN);
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}
