//! One writer and a state file to trust, with the real binary: a second writer is refused
//! naming the first, a rolling restart under load delivers every message once, damaged
//! state files are refused untouched, a backup of a running state restores to a working
//! one, and replays killed at any point put no letter back twice.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, wait_for, Faults, Sink, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_omniflow");

thread_local! {
    /// The runtimes this test thread started, stopped by [`Reaper`] if the test fails.
    static STARTED: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a started process so a failing test does not leave it running.
fn tracked(child: Child) -> Child {
    STARTED.with(|started| started.borrow_mut().push(child.id()));
    child
}

/// Held by each test: when the test panics, every `omniflow` it started and that still
/// runs is killed (a passing test stops its own).
struct Reaper;

impl Drop for Reaper {
    fn drop(&mut self) {
        let started = STARTED.with(|started| std::mem::take(&mut *started.borrow_mut()));
        if !std::thread::panicking() {
            return;
        }
        for pid in started {
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.starts_with(BIN.as_bytes()));
            if ours {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
    }
}

fn state_of(dir: &TempDir) -> PathBuf {
    dir.0.join("state.db")
}

fn spec(state: &Path) -> String {
    format!("sqlite:{}", state.display())
}

/// `omniflow run` of the test flow on `state`, logging to `dir/LOG`.
fn run(dir: &TempDir, state: &Path, sink: &Sink, ops: u16, extra: &[&str], log: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .arg(dir.0.join("durable.flow"))
        .arg("--state")
        .arg(spec(state))
        .arg("--webhook-addr")
        .arg("127.0.0.1:0")
        .arg("--ops-addr")
        .arg(format!("127.0.0.1:{ops}"))
        .args(extra)
        .env("OMNIFLOW_TEST_INBOX", dir.0.join("in"))
        .env(
            "OMNIFLOW_TEST_SINK",
            format!("http://127.0.0.1:{}", sink.port),
        )
        .env("OMNIFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.0.join(log))
                .unwrap(),
        );
    command
}

fn ready(ops: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", ops)) else {
        return false;
    };
    let _ = stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Starts the runtime and waits for /ready.
fn start(dir: &TempDir, state: &Path, sink: &Sink) -> Child {
    let ops = free_port();
    let child = run(dir, state, sink, ops, &[], "runtime.log")
        .spawn()
        .map(tracked)
        .unwrap();
    wait_for("/ready", Duration::from_secs(60), || ready(ops));
    child
}

/// Waits for `child` to exit by itself; kills it and returns `None` after `timeout`.
fn exit_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(mut child: Child) -> ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    exit_within(&mut child, Duration::from_secs(60)).expect("omniflow stops within 60 s of SIGTERM")
}

/// `omniflow ARGS...` to its end.
fn omniflow(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("OMNIFLOW_LOG", "warn")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A read-only look at the state, which never checkpoints or removes its log.
fn peek<T>(state: &Path, sql: &str) -> Option<T>
where
    T: rusqlite::types::FromSql,
{
    let conn =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(sql, [], |r| r.get(0)).ok()
}

/// True once the file source has read every listed input file to its end.
fn consumed(dir: &TempDir, state: &Path, files: &[String]) -> bool {
    files.iter().all(|file| {
        let size = std::fs::metadata(dir.0.join("in").join(file)).map_or(0, |m| m.len());
        let offset: Option<String> = peek(
            state,
            &format!("SELECT value FROM cursors WHERE key = '{file}'"),
        );
        // The value is `OFFSET MARK` (the mark of the bytes before the offset).
        offset.and_then(|o| o.split_whitespace().next()?.parse::<u64>().ok()) == Some(size)
    })
}

fn inbox_len(state: &Path) -> i64 {
    peek(state, "SELECT COUNT(*) FROM inbox").unwrap_or(-1)
}

/// Writes lines `{"id": i, "qty": 1}` for `ids` into `in/NAME` in one rename, so the
/// source never sees half a file. Ids in `missing_qty` lack their quantity (a rejection).
fn write_input(root: &Path, name: &str, ids: impl Iterator<Item = usize>, missing_qty: usize) {
    let mut lines = String::new();
    for id in ids {
        if missing_qty > 0 && id % missing_qty == 0 {
            lines.push_str(&format!("{{\"id\": {id}}}\n"));
        } else {
            lines.push_str(&format!("{{\"id\": {id}, \"qty\": 1}}\n"));
        }
    }
    let part = root.join(format!("{name}.part"));
    std::fs::write(&part, lines).unwrap();
    std::fs::rename(part, root.join("in").join(name)).unwrap();
}

/// Keys the sink applied more than once.
fn repeated(sink: &Sink) -> Vec<(String, u64)> {
    let seen = sink.seen.lock().unwrap();
    let mut keys: Vec<_> = seen
        .effects
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_second_writer_on_one_state_file_is_refused_naming_the_first() {
    let _reaper = Reaper;
    let dir = TempDir::new("second-writer");
    support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let state = state_of(&dir);
    write_input(&dir.0, "a.jsonl", 0..200, 0);
    let first = start(&dir, &state, &sink);
    let pid = format!("PID {}", first.id());
    let mut second = run(
        &dir,
        &state,
        &sink,
        free_port(),
        &["--state-wait", "0s"],
        "second.log",
    )
    .spawn()
    .map(tracked)
    .unwrap();
    let status = exit_within(&mut second, Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.0.join("second.log")).unwrap_or_default();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{log}");
    assert!(log.contains("is in use by") && log.contains(&pid), "{log}");
    assert!(
        log.contains("omniflow run"),
        "the holder's command line: {log}"
    );
    for writer in [&["replay", "--all"][..], &["discard", "1"][..]] {
        let output = omniflow(&[&["dlq", "--state", &spec(&state)][..], writer].concat());
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(&pid), "{}", text(&output));
    }
    // Readers read beside the writer.
    let listed = omniflow(&["dlq", "--state", &spec(&state), "list"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let checked = omniflow(&["state", "--state", &spec(&state), "check"]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&checked).contains(&pid), "{}", text(&checked));
    wait_for("the messages", Duration::from_secs(60), || {
        sink.distinct() == 200
    });
    assert!(terminate(first).success());
    assert!(repeated(&sink).is_empty(), "{:?}", repeated(&sink));
}

#[test]
fn a_rolling_restart_under_load_delivers_every_message_once() {
    let _reaper = Reaper;
    let dir = TempDir::new("rolling");
    support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let state = state_of(&dir);
    const FILES: usize = 40;
    const LINES: usize = 100;
    let names: Vec<String> = (0..FILES).map(|n| format!("part-{n:02}.jsonl")).collect();
    let writer = {
        let (root, names) = (dir.0.clone(), names.clone());
        std::thread::spawn(move || {
            for (n, name) in names.iter().enumerate() {
                write_input(&root, name, n * LINES..(n + 1) * LINES, 0);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let old = start(&dir, &state, &sink);
    wait_for("the first deliveries", Duration::from_secs(60), || {
        sink.distinct() >= 300
    });
    // The new process starts while the old one still runs, and waits for its lock.
    let ops = free_port();
    let new = run(
        &dir,
        &state,
        &sink,
        ops,
        &["--state-wait", "60s"],
        "new.log",
    )
    .spawn()
    .map(tracked)
    .unwrap();
    let old_pid = old.id();
    wait_for("the new process waiting", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.0.join("new.log"))
            .unwrap_or_default()
            .contains("waiting for its holder")
    });
    assert!(terminate(old).success());
    wait_for("the new process ready", Duration::from_secs(60), || {
        ready(ops)
    });
    writer.join().unwrap();
    wait_for(
        "every message at the sink",
        Duration::from_secs(120),
        || sink.distinct() == FILES * LINES,
    );
    wait_for("an empty inbox", Duration::from_secs(30), || {
        consumed(&dir, &state, &names) && inbox_len(&state) == 0
    });
    assert!(terminate(new).success());
    let log = std::fs::read_to_string(dir.0.join("new.log")).unwrap_or_default();
    assert!(log.contains(&format!("PID {old_pid}")), "{log}");
    assert_eq!(repeated(&sink), vec![], "keys delivered twice");
    assert_eq!(sink.seen.lock().unwrap().requests, (FILES * LINES) as u64);
}

/// A state file left by a runtime that delivered `ids` and stopped cleanly.
fn clean_state(dir: &TempDir, sink: &Sink, ids: std::ops::Range<usize>) -> PathBuf {
    let state = state_of(dir);
    let name = format!("{}.jsonl", ids.start);
    let count = ids.len();
    write_input(&dir.0, &name, ids, 0);
    let child = start(dir, &state, sink);
    wait_for("the messages", Duration::from_secs(60), || {
        sink.distinct() >= count && consumed(dir, &state, std::slice::from_ref(&name))
    });
    wait_for("an empty inbox", Duration::from_secs(30), || {
        inbox_len(&state) == 0
    });
    assert!(terminate(child).success());
    state
}

#[test]
fn damaged_state_files_are_refused_with_what_to_do_and_left_untouched() {
    let _reaper = Reaper;
    let dir = TempDir::new("damaged");
    support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let good = std::fs::read(clean_state(&dir, &sink, 0..500)).unwrap();
    assert!(good.len() >= 16 * 1024, "{}", good.len());
    let mut corrupted = good.clone();
    // Every page after the first two: the tables' pages, overwritten.
    for byte in corrupted.iter_mut().skip(8192) {
        *byte = 0xA5;
    }
    let mut garbage = vec![0u8; 64 * 1024];
    let mut seed: u64 = 0x5EED;
    for byte in garbage.iter_mut() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        *byte = (seed >> 56) as u8;
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty file (0 bytes)"),
        ("garbage", garbage, "not a SQLite database"),
        (
            "truncated",
            good[..good.len() / 2 + 100].to_vec(),
            "is truncated",
        ),
        ("corrupted", corrupted, "is corrupted"),
    ];
    for (name, bytes, expected) in cases {
        let state = dir.0.join(format!("{name}.db"));
        std::fs::write(&state, &bytes).unwrap();
        refused_untouched(&dir, &sink, &state, expected);
    }
    // A log deleted after a crash: the work it held would silently go.
    let state = dir.0.join("crashed.db");
    write_input(&dir.0, "more.jsonl", 1000..4000, 0);
    let ops = free_port();
    let mut child = run(&dir, &state, &sink, ops, &[], "crashed.log")
        .spawn()
        .map(tracked)
        .unwrap();
    wait_for(
        "deliveries from the crashed state",
        Duration::from_secs(60),
        || peek::<i64>(&state, "SELECT COUNT(*) FROM outcomes").unwrap_or(0) > 100,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let wal = dir.0.join("crashed.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(dir.0.join("crashed.db-shm"));
    refused_untouched(&dir, &sink, &state, "write-ahead log");
    assert!(!wal.exists(), "no log made up in place of the lost one");
    // Unless the loss is accepted, knowingly.
    let accepted = omniflow(&["state", "--state", &spec(&state), "accept-lost-wal"]);
    assert!(accepted.status.success(), "{}", text(&accepted));
    let checked = omniflow(&["state", "--state", &spec(&state), "check"]);
    assert!(checked.status.success(), "{}", text(&checked));
}

/// `run` refuses `state` with `expected` in its message and the file is as it was;
/// `state check` says no, and so does `dlq list`.
fn refused_untouched(dir: &TempDir, sink: &Sink, state: &Path, expected: &str) {
    let before = std::fs::read(state).unwrap();
    let log = format!("{}.log", state.file_name().unwrap().to_string_lossy());
    let mut child = run(dir, state, sink, free_port(), &[], &log)
        .spawn()
        .map(tracked)
        .unwrap();
    let status = exit_within(&mut child, Duration::from_secs(30));
    let said = std::fs::read_to_string(dir.0.join(&log)).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "{}: {said}",
        state.display()
    );
    assert!(said.contains(expected), "{}: {said}", state.display());
    assert!(
        said.contains("restore the last backup") || said.contains("put the -wal file back"),
        "what to do: {said}"
    );
    assert!(
        std::fs::read(state).unwrap() == before,
        "{} changed",
        state.display()
    );
    let checked = omniflow(&["state", "--state", &spec(state), "check"]);
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
    assert!(text(&checked).contains(expected), "{}", text(&checked));
    let listed = omniflow(&["dlq", "--state", &spec(state), "list"]);
    assert_eq!(listed.status.code(), Some(2), "{}", text(&listed));
    assert!(
        std::fs::read(state).unwrap() == before,
        "{} changed",
        state.display()
    );
}

#[test]
fn a_backup_of_a_running_state_restores_to_a_working_state() {
    let _reaper = Reaper;
    let dir = TempDir::new("backup");
    support::flow_file(&dir.0);
    let sink = Sink::start(Faults::default());
    let state = state_of(&dir);
    // Every tenth line lacks its quantity: 200 dead letters among 2,000 lines.
    write_input(&dir.0, "a.jsonl", 0..2000, 10);
    let child = start(&dir, &state, &sink);
    let during = dir.0.join("during.db");
    let output = omniflow(&[
        "state",
        "--state",
        &spec(&state),
        "backup",
        &during.display().to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    wait_for("every line", Duration::from_secs(120), || {
        consumed(&dir, &state, &["a.jsonl".into()]) && inbox_len(&state) == 0
    });
    let after = dir.0.join("after.db");
    let output = omniflow(&[
        "state",
        "--state",
        &spec(&state),
        "backup",
        &after.display().to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("200 dead letters"),
        "{}",
        text(&output)
    );
    assert!(terminate(child).success());
    for copy in [&during, &after] {
        assert!(!PathBuf::from(format!("{}-wal", copy.display())).exists());
        let checked = omniflow(&["state", "--state", &spec(copy), "check"]);
        assert!(checked.status.success(), "{}", text(&checked));
        assert!(
            text(&checked).contains("last stop  clean"),
            "{}",
            text(&checked)
        );
    }
    // Restored elsewhere, the copy remembers the letters and what was delivered.
    let restored = TempDir::new("backup-restored");
    support::flow_file(&restored.0);
    let state = state_of(&restored);
    std::fs::copy(&after, &state).unwrap();
    let listed = omniflow(&["dlq", "--state", &spec(&state), "list", "--limit", "1000"]);
    assert!(
        text(&listed).contains("200 dead letters"),
        "{}",
        text(&listed)
    );
    let effects_before = sink.seen.lock().unwrap().requests;
    write_input(&restored.0, "b.jsonl", 1900..2100, 0);
    let child = start(&restored, &state, &sink);
    wait_for("the new messages", Duration::from_secs(60), || {
        consumed(&restored, &state, &["b.jsonl".into()]) && inbox_len(&state) == 0
    });
    assert!(terminate(child).success());
    // 1900..2000 were delivered before the backup (but the ten rejected ones, which now
    // carry a quantity); 2000..2100 are new.
    assert_eq!(sink.seen.lock().unwrap().requests - effects_before, 110);
    assert_eq!(repeated(&sink), vec![]);
}

#[test]
fn replays_killed_at_several_points_or_run_beside_a_runtime_put_no_letter_back_twice() {
    let _reaper = Reaper;
    const MESSAGES: usize = 300;
    let dir = TempDir::new("replay-kills");
    support::flow_file(&dir.0);
    let state = state_of(&dir);
    let sink = Sink::start(Faults {
        rejected: 100,
        ..Faults::default()
    });
    write_input(&dir.0, "a.jsonl", 0..MESSAGES, 0);
    let child = start(&dir, &state, &sink);
    wait_for(
        "every message dead-lettered",
        Duration::from_secs(120),
        || {
            consumed(&dir, &state, &["a.jsonl".into()])
                && inbox_len(&state) == 0
                && peek::<i64>(&state, "SELECT COUNT(*) FROM dead_letters") == Some(MESSAGES as i64)
        },
    );
    assert!(terminate(child).success());
    sink.set_faults(Faults::default());
    // Beside a running runtime, two replays at once.
    let runtime = start(&dir, &state, &sink);
    let replay = |wait: &[&str]| {
        Command::new(BIN)
            .args(["dlq", "--state", &spec(&state)])
            .args(wait)
            .args(["replay", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(tracked)
            .unwrap()
    };
    let (mut one, mut two) = (replay(&[]), replay(&[]));
    let codes = [
        exit_within(&mut one, Duration::from_secs(60)).and_then(|s| s.code()),
        exit_within(&mut two, Duration::from_secs(60)).and_then(|s| s.code()),
    ];
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(runtime).success());
    assert_eq!(
        repeated(&sink),
        vec![],
        "keys delivered twice beside the runtime"
    );
    assert_eq!(codes, [Some(2), Some(2)], "refused while the runtime runs");
    // Killed at several points of their work, two at a time.
    for delay in [0, 30, 80, 150, 300] {
        let (mut killed, mut waiting) = (
            replay(&["--state-wait", "30s"]),
            replay(&["--state-wait", "30s"]),
        );
        std::thread::sleep(Duration::from_millis(delay));
        let _ = killed.kill();
        let _ = killed.wait();
        let _ = exit_within(&mut waiting, Duration::from_secs(60));
    }
    let output = omniflow(&["dlq", "--state", &spec(&state), "replay", "--all"]);
    assert!(output.status.success(), "{}", text(&output));
    let child = start(&dir, &state, &sink);
    wait_for("every replayed message", Duration::from_secs(120), || {
        sink.distinct() == MESSAGES && inbox_len(&state) == 0
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(terminate(child).success());
    assert_eq!(repeated(&sink), vec![], "keys delivered twice");
    let listed = omniflow(&["dlq", "--state", &spec(&state), "list"]);
    assert!(
        text(&listed).contains("0 dead letters"),
        "{}",
        text(&listed)
    );
}
