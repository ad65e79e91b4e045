//! Events (issue 9, /work/spec-events.md; README's "Log format and events"):
//! every line gracestop writes is one event, rendered as the human line or, with
//! `--log-format json`, as one JSON object (schema v1); `--log-file` appends the
//! same lines to a file instead of stderr; and on a terminal the wait shows a
//! countdown redrawn in place, never in files, pipes or JSON.
//!
//! Usage errors from clap (a bad flag value) come before the log exists and stay
//! clap's own text even with `--log-format json`: they are documented, not
//! tested as JSON here.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::all_modes;
use crate::init::pty_session;
use crate::run::run_command;
use crate::support::{
    gracestop, in_pid_namespace, pid_namespaces_work, run, wait_for_file, Mode, Running, Sandbox, GRACESTOP,
};

const LONG: Duration = Duration::from_secs(20);

const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];
const PHASES: [&str; 15] = [
    "plan",
    "deregister",
    "drain",
    "signal",
    "wait",
    "dump",
    "kill",
    "request",
    "run",
    "exit",
    "reap",
    "terminal",
    "notify",
    "done",
    "error",
];

/// One parsed JSON event line, with the raw line for messages.
#[derive(Debug)]
struct Event {
    raw: String,
    value: Value,
}

impl Event {
    fn str(&self, key: &str) -> &str {
        self.value[key].as_str().unwrap_or_else(|| panic!("{key:?} is not a string in {}", self.raw))
    }

    fn int(&self, key: &str) -> i64 {
        let value = &self.value[key];
        assert!(value.is_i64() || value.is_u64(), "{key:?} is not an integer in {}", self.raw);
        value.as_i64().unwrap()
    }

    fn num(&self, key: &str) -> f64 {
        self.value[key].as_f64().unwrap_or_else(|| panic!("{key:?} is not a number in {}", self.raw))
    }

    fn has(&self, key: &str) -> bool {
        self.value.get(key).is_some()
    }

    fn is(&self, phase: &str, event: &str) -> bool {
        self.str("phase") == phase && self.str("event") == event
    }
}

/// Parses every line of `text` as one JSON event of schema v1 and checks the
/// common part: the keys `v` (1), `elapsed_ms` (a number of at most 3 decimals,
/// never decreasing), `level`, `phase`, `event` and `msg`, first and in that
/// order. Any line that is not such an object fails the test.
fn json_events(text: &str) -> Vec<Event> {
    assert!(!text.is_empty(), "no output at all");
    assert!(text.ends_with('\n'), "the last line is not terminated: {text:?}");
    let mut events = Vec::new();
    let mut last_elapsed = 0.0_f64;
    for line in text.lines() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\nin:\n{text}"));
        let object = value.as_object().unwrap_or_else(|| panic!("not a JSON object: {line}"));
        assert!(value["v"].is_u64() && value["v"] == 1, "\"v\" is not the integer 1: {line}");
        let elapsed = value["elapsed_ms"].as_f64().unwrap_or_else(|| panic!("elapsed_ms is not a number: {line}"));
        assert!(elapsed >= last_elapsed, "elapsed_ms went back from {last_elapsed} to {elapsed}:\n{text}");
        last_elapsed = elapsed;
        for key in ["level", "phase", "event", "msg"] {
            assert!(value[key].is_string(), "{key:?} missing or not a string: {line}");
        }
        let level = value["level"].as_str().unwrap();
        assert!(LEVELS.contains(&level), "unknown level {level:?}: {line}");
        let phase = value["phase"].as_str().unwrap();
        assert!(PHASES.contains(&phase), "unknown phase {phase:?}: {line}");
        let event = value["event"].as_str().unwrap();
        assert!(
            !event.is_empty() && event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "event name not snake_case: {line}"
        );
        assert!(!value["msg"].as_str().unwrap().is_empty(), "empty msg: {line}");
        assert!(object.len() >= 6, "{line}");
        // The common keys come first, in the order of the contract.
        let prefix = r#"{"v":1,"elapsed_ms":"#;
        assert!(line.starts_with(prefix), "does not start with {prefix}: {line}");
        let rest = &line[prefix.len()..];
        let number_end = rest.find(',').unwrap_or_else(|| panic!("{line}"));
        let number = &rest[..number_end];
        assert_eq!(number.parse::<f64>().ok(), Some(elapsed), "{line}");
        let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3 && !number.contains(['e', 'E']), "elapsed_ms {number} has more than 3 decimals: {line}");
        let expected = format!(r#","level":"{level}","phase":"{phase}","event":"{event}","msg":"#);
        assert!(rest[number_end..].starts_with(&expected), "common keys out of order, expected {expected}: {line}");
        events.push(Event { raw: line.to_string(), value });
    }
    events
}

/// The index of the first event at or after `from` that is `phase`/`event`.
fn position(events: &[Event], from: usize, phase: &str, event: &str) -> usize {
    events[from..]
        .iter()
        .position(|e| e.is(phase, event))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {phase}/{event} after line {from} in:\n{}", dump(events)))
}

fn dump(events: &[Event]) -> String {
    events.iter().map(|e| e.raw.as_str()).collect::<Vec<_>>().join("\n")
}

/// A process's `comm`, as gracestop names it.
fn comm_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("read comm").trim_end().to_string()
}

/// A gracestop command for `mode` without any log setting from the
/// environment the tests run in.
fn gs(mode: Mode) -> Command {
    let mut command = gracestop(mode);
    command.env_remove("GRACESTOP_LOG_FORMAT").env_remove("GRACESTOP_LOG_FILE");
    command
}

fn stop_command(mode: Mode, args: &[&str]) -> Command {
    let mut command = gs(mode);
    command.arg("stop").args(args);
    command
}

// Secrets the deregistration carries; none may appear in gracestop's output.
const SECRET_HEADER: &str = "s3cr3tHeaderOne";
const SECRET_QUERY: &str = "s3cr3tQueryTwo";
const SECRET_ENV: &str = "s3cr3tEnvThree";
const SECRET_USER: &str = "us3rNameFour";
const SECRET_PASSWORD: &str = "pa55w0rdFive";
const SECRETS: [&str; 5] = [SECRET_HEADER, SECRET_QUERY, SECRET_ENV, SECRET_USER, SECRET_PASSWORD];

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret {secret:?} in the output:\n{text}");
    }
}

// 1. The full stop sequence, every line JSON, each event with its typed fields.

all_modes! {
    fn full_stop_sequence_in_json_has_every_event_typed_in_order_and_no_secret(mode) {
        let sandbox = Sandbox::new();
        let registry = sandbox.registry(&["--mode", "flaky", "--record-header", "Authorization"]);
        let mut target = sandbox.target(&["--on-term", "ignore"]);
        let pid = target.pid;
        let comm = comm_of(pid);
        let url = format!("http://{SECRET_USER}:{SECRET_PASSWORD}@127.0.0.1:{}/down?token={SECRET_QUERY}", registry.port);
        let header = format!("Authorization: Bearer {SECRET_HEADER}");
        let pid_arg = pid.to_string();
        let mut command = stop_command(mode, &[
            "-v", "--log-format", "json", "--pid", &pid_arg,
            "--deregister-url", &url, "--deregister-header", &header,
            "--drain", "0.3", "--wait", "0.5", "--dump", "--dump-wait", "0.3", "--force",
        ]);
        command.env("GRACESTOP_DEREGISTER_HEADER", format!("X-Api-Key: {SECRET_ENV}"));
        let run = run(command);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert_no_secret(&run.stderr);
        let events = json_events(&run.stderr);

        // The real thing happened: called twice (a 500, then a 200) with the
        // header, TERM and QUIT delivered, then killed.
        let calls = sandbox.events().iter().filter(|e| e.starts_with("registry POST /down")).count();
        assert_eq!(calls, 2, "{:?}", sandbox.events());
        assert!(sandbox.has_event(&format!("registry header {header}")), "{:?}", sandbox.events());
        assert!(sandbox.has_event("target SIGTERM") && sandbox.has_event("target SIGQUIT"), "{:?}", sandbox.events());
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&target.wait(LONG)), Some(libc::SIGKILL));

        let redacted_ok = |shown: &str| {
            shown.starts_with("http://")
                && shown.contains(&format!("@127.0.0.1:{}/down?token=", registry.port))
                && !SECRETS.iter().any(|s| shown.contains(s))
        };
        for e in &events {
            if e.has("pid") && !e.is("plan", "watching") {
                assert_eq!(e.int("pid"), i64::from(pid), "{}", e.raw);
            }
            if e.has("pid") && e.has("comm") {
                assert_eq!(e.str("comm"), comm, "{}", e.raw);
            }
            // -v is on: debug lines are allowed; none is an error.
            assert_ne!(e.str("level"), "error", "{}", e.raw);
        }

        let watching = position(&events, 0, "plan", "watching");
        assert_eq!(events[watching].str("level"), "debug", "{}", events[watching].raw);
        assert_eq!(events[watching].int("pid"), i64::from(pid));
        let how = if mode.polls() { "polling /proc" } else { "pidfd" };
        assert_eq!(events[watching].str("reason"), how, "{}", events[watching].raw);

        let at = position(&events, 0, "plan", "deregister_planned");
        let e = &events[at];
        assert_eq!(e.str("level"), "info");
        assert_eq!(e.str("method"), "POST");
        let urls = e.value["urls"].as_array().unwrap_or_else(|| panic!("urls is not an array: {}", e.raw));
        assert_eq!(urls.len(), 1, "{}", e.raw);
        assert!(redacted_ok(urls[0].as_str().expect("url string")), "{}", e.raw);
        assert!(e.num("worst_case_ms") > 0.0, "{}", e.raw);

        let planned = position(&events, 0, "plan", "planned");
        let e = &events[planned];
        let targets = e.value["targets"].as_array().unwrap_or_else(|| panic!("targets is not an array: {}", e.raw));
        assert_eq!(targets.len(), 1, "{}", e.raw);
        assert_eq!(targets[0]["pid"].as_i64(), Some(i64::from(pid)), "{}", e.raw);
        assert_eq!(targets[0]["comm"].as_str(), Some(comm.as_str()), "{}", e.raw);
        assert!(targets[0].get("group").is_none(), "no --group, no group: {}", e.raw);
        assert_eq!(e.num("drain_ms"), 300.0, "{}", e.raw);
        assert_eq!(e.str("signal"), "SIGTERM");
        assert_eq!(e.num("wait_ms"), 500.0, "{}", e.raw);
        assert_eq!(e.str("dump_signal"), "SIGQUIT");
        assert_eq!(e.num("dump_wait_ms"), 300.0, "{}", e.raw);
        assert_eq!(e.value["force"], Value::Bool(true), "{}", e.raw);
        assert!(e.num("worst_case_ms") >= 1100.0, "{}", e.raw);

        let retry = position(&events, at.max(planned), "deregister", "deregister_retry");
        let e = &events[retry];
        assert_eq!(e.str("level"), "warn", "{}", e.raw);
        assert_eq!(e.str("method"), "POST");
        assert!(redacted_ok(e.str("url")), "{}", e.raw);
        assert_eq!(e.int("status"), 500, "{}", e.raw);
        assert!(!e.str("error").is_empty(), "{}", e.raw);
        assert!(e.num("took_ms") >= 0.0 && e.num("retry_in_ms") > 0.0, "{}", e.raw);
        assert_eq!(e.int("attempt"), 1, "{}", e.raw);
        let attempts = e.int("attempts");
        assert!(attempts >= 2, "{}", e.raw);

        let done = position(&events, retry + 1, "deregister", "deregistered");
        let e = &events[done];
        assert_eq!(e.str("level"), "info", "{}", e.raw);
        assert_eq!(e.str("method"), "POST");
        assert!(redacted_ok(e.str("url")), "{}", e.raw);
        assert_eq!(e.int("status"), 200, "{}", e.raw);
        assert_eq!(e.int("attempt"), 2, "{}", e.raw);
        assert_eq!(e.int("attempts"), attempts, "{}", e.raw);
        assert!(e.num("took_ms") >= 0.0, "{}", e.raw);

        let drain = position(&events, done + 1, "drain", "drain_started");
        assert_eq!(events[drain].num("duration_ms"), 300.0, "{}", events[drain].raw);
        let drained = position(&events, drain + 1, "drain", "drain_done");
        assert_eq!(events[drained].num("duration_ms"), 300.0, "{}", events[drained].raw);
        let gap = events[drained].num("elapsed_ms") - events[drain].num("elapsed_ms");
        assert!(gap >= 290.0, "drained {gap} ms:\n{}", dump(&events));

        let term = position(&events, drained + 1, "signal", "signal_sent");
        let e = &events[term];
        assert_eq!(e.str("signal"), "SIGTERM", "{}", e.raw);
        assert_eq!(e.int("pid"), i64::from(pid), "{}", e.raw);
        assert_eq!(e.str("comm"), comm, "{}", e.raw);
        assert!(!e.has("group"), "{}", e.raw);
        assert_eq!(e.str("msg"), format!("SIGTERM -> {pid} ({comm})"), "{}", e.raw);

        let still = position(&events, term + 1, "wait", "still_running");
        let e = &events[still];
        assert_eq!(e.str("level"), "info", "{}", e.raw);
        assert_eq!(e.int("pid"), i64::from(pid), "{}", e.raw);
        assert!(e.num("after_ms") >= 490.0, "{}", e.raw);

        let quit = position(&events, still + 1, "dump", "signal_sent");
        let e = &events[quit];
        assert_eq!(e.str("signal"), "SIGQUIT", "{}", e.raw);
        assert_eq!(e.int("pid"), i64::from(pid), "{}", e.raw);
        assert_eq!(e.num("wait_ms"), 300.0, "{}", e.raw);

        let kill = position(&events, quit + 1, "kill", "signal_sent");
        let e = &events[kill];
        assert_eq!(e.str("signal"), "SIGKILL", "{}", e.raw);
        assert_eq!(e.int("pid"), i64::from(pid), "{}", e.raw);
        assert_eq!(e.str("comm"), comm, "{}", e.raw);

        let killed = position(&events, kill + 1, "kill", "killed");
        let e = &events[killed];
        assert_eq!(e.int("pid"), i64::from(pid), "{}", e.raw);
        assert!(e.num("after_ms") >= 0.0, "{}", e.raw);

        let stopped = position(&events, killed + 1, "done", "stopped");
        let e = &events[stopped];
        assert_eq!((e.int("of"), e.int("exited"), e.int("killed")), (1, 0, 1), "{}", e.raw);
        assert_eq!(stopped, events.len() - 1, "stopped is the last line:\n{}", dump(&events));

        // Each step once: one TERM, one QUIT, one KILL.
        for phase in ["signal", "dump", "kill"] {
            let sent = events.iter().filter(|e| e.is(phase, "signal_sent")).count();
            assert_eq!(sent, 1, "{phase}:\n{}", dump(&events));
        }
    }
}

/// The secret that only the environment carries is used (the registry gets the
/// header) and shown nowhere, at -v, in JSON.
#[test]
fn secret_header_from_the_environment_is_sent_and_never_shown_in_json() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "flaky", "--record-header", "X-Api-Key"]);
    let url = format!("http://{SECRET_USER}@127.0.0.1:{}/down?token={SECRET_QUERY}&dc=eu", registry.port);
    let mut command = gs(Mode::Pidfd);
    command.args(["-v", "--log-format", "json", "drain", "--deregister-url", &url, "--drain", "0"]);
    command.env("GRACESTOP_DEREGISTER_HEADER", format!("X-Api-Key: {SECRET_ENV}"));
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event(&format!("registry header X-Api-Key: {SECRET_ENV}")), "{:?}", sandbox.events());
    assert_no_secret(&run.stderr);
    let events = json_events(&run.stderr);
    let planned = position(&events, 0, "plan", "planned");
    let targets = events[planned].value["targets"].as_array().expect("targets array");
    assert!(targets.is_empty(), "drain has no target: {}", events[planned].raw);
    let retry = position(&events, 0, "deregister", "deregister_retry");
    let shown = events[retry].str("url");
    assert!(shown.contains(&format!("127.0.0.1:{}/down", registry.port)) && shown.contains("dc=eu"), "{shown}");
    position(&events, retry + 1, "deregister", "deregistered");
    position(&events, 0, "done", "drained");
    // Last, so that the checks above are reported even when this one fails.
    assert!(!events[planned].has("signal"), "drain sends no signal, so `signal` is absent: {}", events[planned].raw);
}

// 2. run at -v: forwarded signals, reaped orphans, the child's exit, gracestop's.

/// A shell child for `gracestop run`: it logs the signals named in `traps` to
/// the sandbox's event log, leaves an orphan that writes its PID to `orphan`
/// and exits 7, writes its own PID to `ready`, and exits 5 once `go` exists.
/// Its stderr goes to a file of its own: only gracestop writes on gracestop's.
fn shell_child(sandbox: &Sandbox, traps: &[&str]) -> String {
    let events = sandbox.path("events").display().to_string();
    let mut script = format!("exec 2>>{}; ulimit -c 0; ", sandbox.path("child-stderr").display());
    for name in traps {
        script.push_str(&format!("trap 'echo child {name} >> {events}' {name}; "));
    }
    script.push_str(&format!(
        "(sh -c 'echo $$ > {orphan}; exit 7' &); echo $$ > {ready}.tmp; mv {ready}.tmp {ready}; \
         n=0; while [ ! -e {go} ] && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done; exit 5",
        orphan = sandbox.path("orphan").display(),
        ready = sandbox.path("ready").display(),
        go = sandbox.path("go").display(),
    ));
    script
}

fn pid_in(path: &Path) -> i64 {
    std::fs::read_to_string(path).expect("pid file").trim().parse().expect("a PID")
}

#[test]
fn run_at_v_in_json_shows_reaped_orphans_the_childs_exit_and_forwarded_signals() {
    let sandbox = Sandbox::new();
    let script = shell_child(&sandbox, &["USR1"]);
    let mut command = run_command(&["-v", "--log-format", "json", "--wait", "5"], &["sh", "-c", &script]);
    command.env_remove("GRACESTOP_LOG_FILE");
    command.current_dir(sandbox.path(""));
    let gs = Running::start(command);
    wait_for_file(&sandbox.path("ready"), LONG);
    let child = pid_in(&sandbox.path("ready"));
    gs.wait_for_stderr(r#""event":"reaped""#, LONG);
    gs.signal(Signal::SIGUSR1);
    sandbox.wait_for_event("child USR1", LONG);
    File::create(sandbox.path("go")).unwrap();
    let run = gs.finish_within(LONG);
    assert_eq!(run.code(), 5, "{}", run.stderr);
    let events = json_events(&run.stderr);

    let started = position(&events, 0, "run", "started");
    let e = &events[started];
    assert_eq!((e.int("pid"), e.str("comm")), (child, "sh"), "{}", e.raw);
    assert_eq!(e.int("group"), child, "the child leads its own group: {}", e.raw);

    let orphan = pid_in(&sandbox.path("orphan"));
    let reaped = position(&events, started, "reap", "reaped");
    let e = &events[reaped];
    assert_eq!(e.str("level"), "debug", "{}", e.raw);
    assert_eq!(e.int("pid"), orphan, "{}", e.raw);
    assert_eq!(e.int("exit_code"), 7, "{}", e.raw);
    assert!(!e.has("exit_signal"), "{}", e.raw);

    let exited = position(&events, started, "exit", "child_exited");
    let e = &events[exited];
    assert_eq!((e.int("pid"), e.str("comm")), (child, "sh"), "{}", e.raw);
    assert_eq!(e.int("exit_code"), 5, "{}", e.raw);
    assert!(!e.has("exit_signal"), "{}", e.raw);

    let exiting = position(&events, exited + 1, "done", "exiting");
    assert_eq!(events[exiting].int("code"), 5, "{}", events[exiting].raw);
    assert_eq!(exiting, events.len() - 1, "exiting is the last line:\n{}", dump(&events));

    // Last, so that the checks above are reported even when this one fails.
    let forwarded = events.iter().find(|e| e.is("signal", "forwarded")).unwrap_or_else(|| {
        panic!("SIGUSR1 reached the child (it logged it) but no signal/forwarded event at -v:\n{}", dump(&events))
    });
    assert_eq!(forwarded.str("level"), "debug", "{}", forwarded.raw);
    assert_eq!(forwarded.str("signal"), "SIGUSR1", "{}", forwarded.raw);
    assert_eq!(forwarded.int("sender"), i64::from(std::process::id()), "{}", forwarded.raw);
    assert_eq!((forwarded.int("pid"), forwarded.str("comm")), (child, "sh"), "{}", forwarded.raw);
}

/// SIGPIPE sent with kill(2) goes through gracestop's signal intake (it could be
/// gracestop's own broken pipe), and is logged when forwarded.
#[test]
fn run_at_v_in_json_shows_a_pipe_signal_sent_with_kill_as_forwarded() {
    let sandbox = Sandbox::new();
    let script = shell_child(&sandbox, &["PIPE"]);
    let mut command = run_command(&["-v", "--log-format", "json"], &["sh", "-c", &script]);
    command.env_remove("GRACESTOP_LOG_FILE");
    command.current_dir(sandbox.path(""));
    let gs = Running::start(command);
    wait_for_file(&sandbox.path("ready"), LONG);
    let child = pid_in(&sandbox.path("ready"));
    gs.signal(Signal::SIGPIPE);
    sandbox.wait_for_event("child PIPE", LONG);
    File::create(sandbox.path("go")).unwrap();
    let run = gs.finish_within(LONG);
    assert_eq!(run.code(), 5, "{}", run.stderr);
    let events = json_events(&run.stderr);
    let forwarded = position(&events, 0, "signal", "forwarded");
    let e = &events[forwarded];
    assert_eq!(e.str("signal"), "SIGPIPE", "{}", e.raw);
    assert_eq!(e.int("sender"), i64::from(std::process::id()), "{}", e.raw);
    assert_eq!(e.int("pid"), child, "{}", e.raw);
}

// 3. Errors in JSON are JSON too.

#[test]
fn refused_pidfile_in_json_is_one_error_line_and_nothing_is_signalled() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]);
    let pidfile = sandbox.path("open.pid");
    std::fs::write(&pidfile, target.pid.to_string()).unwrap();
    std::fs::set_permissions(&pidfile, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = run(stop_command(Mode::Pidfd, &["--log-format", "json", "--pidfile", pidfile.to_str().unwrap()]));
    assert_eq!(run.code(), 1, "{}", run.stderr);
    let events = json_events(&run.stderr);
    assert_eq!(events.len(), 1, "one line:\n{}", run.stderr);
    let e = &events[0];
    assert_eq!((e.str("level"), e.str("phase"), e.str("event")), ("error", "error", "error"), "{}", e.raw);
    assert!(e.str("msg").contains(pidfile.to_str().unwrap()), "names the pidfile: {}", e.raw);
    assert!(!e.str("msg").starts_with("gracestop:") && !e.str("msg").starts_with("error:"), "{}", e.raw);
    assert!(target.is_running());
    assert!(sandbox.events().is_empty(), "signalled: {:?}", sandbox.events());
}

#[test]
fn missing_command_of_run_in_json_is_one_error_line() {
    let mut command = gs(Mode::Pidfd);
    command.args(["--log-format", "json", "run", "--", "/nonexistent/gracestop-test-command"]);
    let run = run(command);
    assert_eq!(run.code(), 127, "{}", run.stderr);
    let events = json_events(&run.stderr);
    let errors: Vec<&Event> = events.iter().filter(|e| e.str("level") == "error").collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].str("msg").contains("/nonexistent/gracestop-test-command"), "{}", errors[0].raw);
}

#[test]
fn quiet_json_keeps_only_errors_and_plain_json_has_no_debug() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    let quiet = run(stop_command(Mode::Pidfd, &["-q", "--log-format", "json", "--pid", &pid, "--wait", "10"]));
    assert_eq!(quiet.code(), 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "", "-q prints nothing but errors");
    assert_eq!(target.wait(LONG).code(), Some(0));

    let mut other = sandbox.target(&["--name", "other"]);
    let pid = other.pid.to_string();
    let plain = run(stop_command(Mode::Pidfd, &["--log-format", "json", "--pid", &pid, "--wait", "10"]));
    assert_eq!(plain.code(), 0, "{}", plain.stderr);
    let events = json_events(&plain.stderr);
    assert!(events.iter().all(|e| e.str("level") != "debug"), "debug without -v:\n{}", plain.stderr);
    let exited = position(&events, 0, "wait", "exited");
    let e = &events[exited];
    assert_eq!(e.int("pid"), i64::from(other.pid), "{}", e.raw);
    assert_eq!(e.str("signal"), "SIGTERM", "{}", e.raw);
    assert!(e.num("after_ms") >= 0.0, "{}", e.raw);
    let stopped = position(&events, exited, "done", "stopped");
    let e = &events[stopped];
    assert_eq!((e.int("of"), e.int("exited"), e.int("killed")), (1, 1, 0), "{}", e.raw);
    assert_eq!(other.wait(LONG).code(), Some(0));
}

// 4. --log-file.

const EARLIER: &str = "an earlier line that must survive\n";

/// Runs a stop of a fresh TERM-handling target with `args` (and `env`), whose
/// events must land in `log` (pre-filled with [`EARLIER`]) and not on stderr.
/// Returns what the run appended.
fn stop_into_log_file(args: &[&str], env: &[(&str, &str)], log: &Path) -> String {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    std::fs::write(log, EARLIER).unwrap();
    let mut command = stop_command(Mode::Pidfd, &["--pid", &pid, "--wait", "10"]);
    command.args(args).envs(env.iter().copied());
    let run = run(command);
    assert_eq!(run.code(), 0, "{args:?} {env:?}: {}", run.stderr);
    assert_eq!(run.stderr, "", "{args:?} {env:?}: nothing on stderr");
    assert_eq!(target.wait(LONG).code(), Some(0));
    let text = std::fs::read_to_string(log).unwrap();
    let appended =
        text.strip_prefix(EARLIER).unwrap_or_else(|| panic!("{args:?} {env:?}: the earlier content is gone: {text:?}"));
    assert!(appended.contains(&format!("SIGTERM -> {pid} (")), "{args:?} {env:?}: {appended}");
    assert!(!appended.contains('\r') && !appended.contains("waiting for"), "{appended:?}");
    appended.to_string()
}

#[test]
fn log_file_gets_the_human_lines_appended_and_stderr_stays_empty() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("gracestop.log");
    let appended = stop_into_log_file(&["--log-file", log.to_str().unwrap()], &[], &log);
    assert!(appended.lines().all(|l| l.starts_with("gracestop: +")), "{appended}");
    assert!(appended.lines().any(|l| l.contains(" signal SIGTERM -> ")), "{appended}");
}

#[test]
fn log_file_gets_the_json_lines_appended() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("gracestop.jsonl");
    let appended = stop_into_log_file(&["--log-file", log.to_str().unwrap(), "--log-format", "json"], &[], &log);
    let events = json_events(&appended);
    position(&events, 0, "signal", "signal_sent");
    position(&events, 0, "done", "stopped");
}

#[test]
fn log_file_and_format_from_the_environment() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("from-env.jsonl");
    let env = [("GRACESTOP_LOG_FILE", log.to_str().unwrap()), ("GRACESTOP_LOG_FORMAT", "json")];
    let appended = stop_into_log_file(&[], &env, &log);
    json_events(&appended);
    let env = [("GRACESTOP_LOG_FILE", log.to_str().unwrap())];
    let appended = stop_into_log_file(&[], &env, &log);
    assert!(appended.lines().all(|l| l.starts_with("gracestop: +")), "{appended}");
}

#[test]
fn log_file_is_created_0600_and_a_second_run_appends_after_the_first() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("new.log");
    for round in 1..=2 {
        let mut target = sandbox.target(&["--name", if round == 1 { "first" } else { "second" }]);
        let pid = target.pid.to_string();
        let run = run(stop_command(Mode::Pidfd, &["--log-file", log.to_str().unwrap(), "--pid", &pid]));
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert_eq!(run.stderr, "");
        assert_eq!(target.wait(LONG).code(), Some(0));
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "created {mode:o}");
        let text = std::fs::read_to_string(&log).unwrap();
        let rounds = text.matches(&format!("SIGTERM -> {pid} (")).count();
        assert_eq!(rounds, 1, "{text}");
        assert_eq!(text.matches(" signal SIGTERM -> ").count(), round, "{text}");
    }
}

#[test]
fn errors_go_to_the_log_file_too() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]);
    let pidfile = sandbox.path("open.pid");
    std::fs::write(&pidfile, target.pid.to_string()).unwrap();
    std::fs::set_permissions(&pidfile, std::fs::Permissions::from_mode(0o666)).unwrap();
    let log = sandbox.path("errors.jsonl");
    std::fs::write(&log, EARLIER).unwrap();
    let args = ["--log-file", log.to_str().unwrap(), "--log-format", "json", "--pidfile", pidfile.to_str().unwrap()];
    let run = run(stop_command(Mode::Pidfd, &args));
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert_eq!(run.stderr, "", "errors included, nothing on stderr");
    let text = std::fs::read_to_string(&log).unwrap();
    let events = json_events(text.strip_prefix(EARLIER).expect("earlier content kept"));
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0].str("level"), "error", "{}", events[0].raw);
    assert!(target.is_running());
}

/// Runs `stop --pid TARGET --log-file PATH --force --wait 0` with PATH a path
/// that must be refused: exit 2 within 10 s, the refusal on stderr, and the
/// target neither signalled nor gone. Returns stderr.
fn refused_log_file(sandbox: &Sandbox, log: &Path, extra: &[&str]) -> String {
    let target = sandbox.target(&["--on-term", "ignore"]);
    let pid = target.pid.to_string();
    let mut args = vec!["--pid", pid.as_str(), "--log-file", log.to_str().unwrap(), "--force", "--wait", "0"];
    args.extend_from_slice(extra);
    let run = Running::start(stop_command(Mode::Pidfd, &args)).finish_within(Duration::from_secs(10));
    assert_eq!(run.code(), 2, "{}", run.stderr);
    let expected = format!("cannot open log file {}", log.display());
    assert!(run.stderr.contains(&expected), "expected {expected:?} in {}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(5), "took {:?}", run.elapsed);
    assert!(target.is_running(), "the target was touched: {}", run.stderr);
    assert!(sandbox.events().is_empty(), "signalled: {:?}", sandbox.events());
    run.stderr
}

#[test]
fn symlinked_log_file_outside_proc_and_dev_is_refused_before_the_target_is_touched() {
    let sandbox = Sandbox::new();
    let real = sandbox.path("real.log");
    std::fs::write(&real, EARLIER).unwrap();
    let link = sandbox.path("link.log");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let stderr = refused_log_file(&sandbox, &link, &[]);
    assert!(stderr.starts_with(&format!("gracestop: error: cannot open log file {}: ", link.display())), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    refused_log_file(&sandbox, &link, &["--log-format", "json"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), EARLIER, "written through the link");
    // A dangling link is not followed to create its target.
    let nowhere = sandbox.path("nowhere.log");
    let dangling = sandbox.path("dangling.log");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    refused_log_file(&sandbox, &dangling, &[]);
    assert!(!nowhere.exists(), "created through a dangling link");
}

#[test]
fn fifo_without_a_reader_as_log_file_is_an_error_at_once() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("log.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(made.success());
    refused_log_file(&sandbox, &fifo, &[]);
}

#[test]
fn directory_as_log_file_is_refused() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("a-dir");
    std::fs::create_dir(&dir).unwrap();
    refused_log_file(&sandbox, &dir, &[]);
}

#[test]
fn dev_stderr_as_log_file_writes_to_stderr() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    let args = ["--log-file", "/dev/stderr", "--log-format", "json", "--pid", &pid];
    let run = run(stop_command(Mode::Pidfd, &args));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let events = json_events(&run.stderr);
    let sent = position(&events, 0, "signal", "signal_sent");
    assert_eq!(events[sent].int("pid"), i64::from(target.pid));
    assert_eq!(target.wait(LONG).code(), Some(0));
}

/// The Kubernetes recipe: a preStop hook's own output is not in `kubectl logs`
/// (kubernetes#25766); `--log-file /proc/1/fd/2` writes to the stderr of the
/// container's PID 1, which is. PID 1 here is a shell in a new PID namespace,
/// and the hook's own stderr goes to a file that must stay empty.
#[test]
fn log_file_proc_1_fd_2_reaches_the_stderr_of_pid_1() {
    if !pid_namespaces_work("log_file_proc_1_fd_2_reaches_the_stderr_of_pid_1") {
        return;
    }
    let sandbox = Sandbox::new();
    // The hook runs in a shell of its own, which redirects its own stderr (dash
    // applies a simple command's redirections in the parent shell, here PID 1).
    let script = r#"
        sh -c 'exec 2>hook-stderr; exec "$GS" --log-format json drain --drain 0 --log-file /proc/1/fd/2'
        echo $? > hook-status
    "#;
    let output = in_pid_namespace(&sandbox.path(""), script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(sandbox.path("hook-status")).unwrap().trim(), "0", "{stderr}");
    assert_eq!(std::fs::read_to_string(sandbox.path("hook-stderr")).unwrap(), "", "the hook's own stderr");
    let events = json_events(&stderr);
    position(&events, 0, "done", "drained");
}

// 5. The countdown: on a terminal only, human format only.

/// The distinct countdown values shown for `pid` out of `wait` seconds, in the
/// order drawn, each rendering preceded by `\r\x1b[K`.
fn countdowns(shown: &str, pid: i32, comm: &str, wait: u32) -> Vec<u32> {
    let head = format!("gracestop: waiting for {pid} ({comm}) to exit: ");
    let tail = format!("s of {wait}s");
    let mut seen = Vec::new();
    for piece in shown.split('\r') {
        let Some(rest) = piece.strip_prefix("\x1b[K").and_then(|p| p.strip_prefix(&head)) else { continue };
        let Some((number, _)) = rest.split_once(&tail) else { continue };
        let value: u32 = number.parse().unwrap_or_else(|_| panic!("countdown {number:?} in {piece:?}"));
        if seen.last() != Some(&value) {
            seen.push(value);
        }
    }
    seen
}

#[test]
fn countdown_is_redrawn_on_a_terminal_and_cleared_before_the_next_line() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&["--on-term", "ignore"]);
    let comm = comm_of(target.pid);
    let pid = target.pid.to_string();
    let command = [GRACESTOP, "stop", "--pid", &pid, "--wait", "4"];
    let session = pty_session(&[], &command, &[("GRACESTOP_LOG_FORMAT", "human")]);
    session.assert_exit(4);
    let shown = &session.shown;
    let values = countdowns(shown, target.pid, &comm, 4);
    assert!(values.len() >= 2, "fewer than two countdown renderings {values:?}:\n{session}");
    assert!(values.windows(2).all(|w| w[0] < w[1]) && values.iter().all(|v| *v <= 4), "{values:?}:\n{session}");
    // Cleared before the next event line, which is whole on its own line.
    let end = format!("wait warning: {pid} ({comm}) still runs after ");
    let next = shown.find(&end).unwrap_or_else(|| panic!("no {end:?}:\n{session}"));
    let line_start = shown[..next].rfind("gracestop: +").unwrap_or_else(|| panic!("{session}"));
    assert!(shown[..line_start].ends_with("\r\x1b[K"), "not cleared before the next line:\n{shown:?}");
    assert!(!shown[line_start..next].contains("waiting for"), "{shown:?}");
    assert!(target.is_running());
}

#[test]
fn no_countdown_when_stderr_is_a_file() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&["--on-term", "ignore"]);
    let comm = comm_of(target.pid);
    let pid = target.pid.to_string();
    let out = sandbox.path("stderr.txt");
    let mut child = stop_command(Mode::Pidfd, &["--pid", &pid, "--wait", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&out).unwrap())
        .spawn()
        .expect("spawn gracestop");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LONG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gracestop hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(4), "{text}");
    assert!(text.contains(&format!("{pid} ({comm}) still runs after 2")), "{text}");
    assert!(!text.contains('\r') && !text.contains('\x1b') && !text.contains("waiting for"), "{text:?}");
}

#[test]
fn json_on_a_terminal_has_no_countdown() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&["--on-term", "ignore"]);
    let pid = target.pid.to_string();
    let command = [GRACESTOP, "--log-format", "json", "stop", "--pid", &pid, "--wait", "2"];
    let session = pty_session(&[], &command, &[]);
    session.assert_exit(4);
    assert!(!session.shown.contains('\x1b') && !session.shown.contains("waiting for"), "{:?}", session.shown);
    // The terminal turns each \n into \r\n; nothing else.
    let text = session.shown.replace("\r\n", "\n");
    let text = text.trim_start_matches('\n');
    assert!(!text.contains('\r'), "{text:?}");
    let events = json_events(&format!("{}\n", text.trim_end_matches('\n')));
    position(&events, 0, "wait", "gave_up");
}

#[test]
fn log_file_on_a_terminal_has_no_countdown_in_the_file_nor_on_the_terminal() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&["--on-term", "ignore"]);
    let comm = comm_of(target.pid);
    let pid = target.pid.to_string();
    let log = sandbox.path("tty.log");
    let command = [GRACESTOP, "stop", "--pid", &pid, "--wait", "2", "--log-file", log.to_str().unwrap()];
    let session = pty_session(&[], &command, &[]);
    session.assert_exit(4);
    assert_eq!(session.shown.trim(), "", "the terminal shows nothing: {:?}", session.shown);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("{pid} ({comm}) still runs after 2")), "{text}");
    assert!(!text.contains('\r') && !text.contains('\x1b') && !text.contains("waiting for"), "{text:?}");
}
