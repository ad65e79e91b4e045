//! `gracestop run` supervising real processes.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::{gracestop, in_pid_namespace, pid_namespaces_work, run, Mode, Running, Sandbox, FIXTURES};

const LONG: Duration = Duration::from_secs(20);

/// `gracestop run [OPTIONS] -- COMMAND...` as a Command.
pub(crate) fn run_command(options: &[&str], command: &[&str]) -> Command {
    let mut cmd = gracestop(Mode::Pidfd);
    cmd.arg("run").args(options).arg("--").args(command);
    cmd
}

/// The fixture target's command line for `gracestop run`, in `sandbox`.
pub(crate) fn target_argv(sandbox: &Sandbox, ready: &str, extra: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "python3".to_string(),
        format!("{FIXTURES}/target.py"),
        "--ready".into(),
        sandbox.path(ready).display().to_string(),
        "--log".into(),
        sandbox.path("events").display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv
}

pub(crate) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Processes still alive whose command line mentions the sandbox: leftovers.
pub(crate) fn leftovers(sandbox: &Sandbox) -> Vec<i32> {
    crate::support::processes_mentioning(&sandbox.path(""))
}

#[test]
fn exit_codes_pass_through() {
    for code in [0, 3, 255] {
        let run = run(run_command(&[], &["sh", "-c", &format!("exit {code}")]));
        assert_eq!(run.code(), code, "{}", run.stderr);
    }
}

#[test]
fn child_killed_by_sigterm_is_128_plus_15_and_remap_exit_maps_it() {
    let run1 = run(run_command(&[], &["sh", "-c", "kill -TERM $$"]));
    assert_eq!(run1.code(), 143, "{}", run1.stderr);
    let run2 = run(run_command(&["--remap-exit", "143=0"], &["sh", "-c", "kill -TERM $$"]));
    assert_eq!(run2.code(), 0, "{}", run2.stderr);
}

#[test]
fn missing_command_is_127_and_unexecutable_is_126() {
    let run1 = run(run_command(&[], &["/nonexistent/gracestop-test-command"]));
    assert_eq!(run1.code(), 127, "{}", run1.stderr);
    assert_eq!(run1.stderr.lines().count(), 1, "one clear line: {}", run1.stderr);
    let sandbox = Sandbox::new();
    let file = sandbox.path("not-executable");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    let run2 = run(run_command(&[], &[file.to_str().unwrap()]));
    assert_eq!(run2.code(), 126, "{}", run2.stderr);
}

#[test]
fn usr1_and_hup_reach_the_child() {
    let sandbox = Sandbox::new();
    let argv = target_argv(&sandbox, "ready", &[]);
    let running = Running::start(run_command(&[], &strs(&argv)));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGUSR1);
    sandbox.wait_for_event("target SIGUSR1", LONG);
    running.signal(Signal::SIGHUP);
    sandbox.wait_for_event("target SIGHUP", LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("target SIGTERM"));
}

#[test]
fn sigterm_runs_deregister_then_drain_then_signal() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let argv = target_argv(&sandbox, "ready", &[]);
    let url = registry.url("/down");
    let running = Running::start(run_command(&["--deregister-url", &url, "--drain", "0.5"], &strs(&argv)));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let events = sandbox.events();
    let request = events.iter().position(|e| e == "registry POST /down").expect("deregistered");
    let term = events.iter().position(|e| e == "target SIGTERM").expect("signalled");
    assert!(request < term, "{events:?}");
    let gap = sandbox.time_of("target SIGTERM").unwrap() - sandbox.time_of("registry POST /down").unwrap();
    assert!(gap >= 500_000_000, "drained only {} ms", gap / 1_000_000);
}

#[test]
fn shell_wrapper_without_exec_waits_for_the_app_to_finish_cleaning_up() {
    let sandbox = Sandbox::new();
    let app = target_argv(&sandbox, "ready", &["--cleanup", "1"]);
    let script = format!("{}; true", app.join(" "));
    let running = Running::start(run_command(&["--wait", "10"], &["sh", "-c", &script]));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert!(sandbox.has_event("target exit"), "gracestop returned before the app finished: {:?}", sandbox.events());
    assert!(run.stderr.contains("without `exec`"), "{}", run.stderr);
    assert!(leftovers(&sandbox).is_empty());
}

#[test]
fn daemonized_grandchild_is_found_and_stopped() {
    let sandbox = Sandbox::new();
    let daemon = target_argv(&sandbox, "daemon-ready", &["--daemonize", "--name", "daemon"]);
    let main = target_argv(&sandbox, "main-ready", &["--name", "main"]);
    let script = format!("{} && exec {}", daemon.join(" "), main.join(" "));
    let running = Running::start(run_command(&["--wait", "10"], &["sh", "-c", &script]));
    crate::support::wait_for_file(&sandbox.path("main-ready"), LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        sandbox.has_event("daemon SIGTERM"),
        "the daemon left the group but must be stopped: {:?}",
        sandbox.events()
    );
    assert!(sandbox.has_event("daemon exit"));
    assert!(sandbox.has_event("main exit"));
    assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));
}

#[test]
fn child_that_exits_leaves_no_orphan_behind() {
    let sandbox = Sandbox::new();
    let orphan = target_argv(&sandbox, "orphan-ready", &["--name", "orphan"]);
    let script = format!(
        "{} & while [ ! -e {} ]; do sleep 0.01; done; exit 5",
        orphan.join(" "),
        sandbox.path("orphan-ready").display()
    );
    let run = run(run_command(&["--wait", "10"], &["sh", "-c", &script]));
    assert_eq!(run.code(), 5, "the child's status, not the orphan's: {}", run.stderr);
    assert!(sandbox.has_event("orphan SIGTERM"), "{:?}", sandbox.events());
    assert!(leftovers(&sandbox).is_empty());
}

#[test]
fn grandchild_ignoring_sigterm_is_killed() {
    let sandbox = Sandbox::new();
    let stubborn = target_argv(&sandbox, "stubborn-ready", &["--name", "stubborn", "--on-term", "sig-ign"]);
    let main = target_argv(&sandbox, "main-ready", &["--name", "main"]);
    let script = format!("{} & exec {}", stubborn.join(" "), main.join(" "));
    let running = Running::start(run_command(&["--wait", "1"], &["sh", "-c", &script]));
    crate::support::wait_for_file(&sandbox.path("main-ready"), LONG);
    crate::support::wait_for_file(&sandbox.path("stubborn-ready"), LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("SIGKILL"), "{}", run.stderr);
    assert!(leftovers(&sandbox).is_empty(), "{:?}", leftovers(&sandbox));
}

#[test]
fn signal_flood_loses_neither_gracestop_nor_the_exit_status() {
    let sandbox = Sandbox::new();
    let ready = sandbox.path("ready");
    let script = format!("trap '' USR1; touch {}; sleep 1; exit 7", ready.display());
    let running = Running::start(run_command(&[], &["sh", "-c", &script]));
    crate::support::wait_for_file(&ready, LONG);
    for _ in 0..5000 {
        running.signal(Signal::SIGUSR1);
    }
    let run = running.finish();
    assert_eq!(run.code(), 7, "{}", run.stderr);
}

#[test]
fn as_pid_1_orphans_are_reaped_and_no_zombie_remains() {
    if !pid_namespaces_work("as_pid_1_orphans_are_reaped_and_no_zombie_remains") {
        return;
    }
    let sandbox = Sandbox::new();
    // Three orphans that exit on their own; then the child looks for zombies.
    let script = r#"
        exec "$GS" run -- sh -c '
            for i in 1 2 3; do (sleep 0.2 &) ; done
            sleep 1
            for s in /proc/[0-9]*/stat; do cut -d" " -f3 "$s" 2>/dev/null; done > states
            trap "echo term > got-term; exit 0" TERM
            kill -TERM 1
            sleep 5 & wait
        '
    "#;
    let output = in_pid_namespace(&sandbox.path(""), script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let states = std::fs::read_to_string(sandbox.path("states")).expect("states written");
    assert!(!states.lines().any(|s| s == "Z"), "a zombie remained: {states:?}\n{stderr}");
    assert!(states.lines().count() >= 2, "{states:?}");
    assert!(sandbox.path("got-term").exists(), "PID 1 must handle a SIGTERM sent inside its namespace: {stderr}");
}

#[test]
fn pidfile_holds_gracestops_pid_drives_the_full_sequence_and_is_removed() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let pidfile = sandbox.path("gracestop.pid");
    let argv = target_argv(&sandbox, "ready", &[]);
    let url = registry.url("/down");
    let options = ["--pidfile", pidfile.to_str().unwrap(), "--deregister-url", &url];
    let running = Running::start(run_command(&options, &strs(&argv)));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    crate::support::wait_for_file(&pidfile, LONG);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), running.pid().to_string());
    // `gracestop stop` against run's pidfile: run's own sequence deregisters.
    let stopped = crate::support::stop(Mode::Pidfd, &["--pidfile", pidfile.to_str().unwrap(), "--wait", "20"]);
    assert_eq!(stopped.code(), 0, "{}", stopped.stderr);
    assert!(!stopped.stderr.contains("does not catch"), "{}", stopped.stderr);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("registry POST /down"), "{:?}", sandbox.events());
    assert!(sandbox.has_event("target SIGTERM"));
    assert!(!pidfile.exists(), "pidfile left behind");
}

#[test]
fn sigkilled_gracestop_hands_its_child_the_stop_signal() {
    let sandbox = Sandbox::new();
    let argv = target_argv(&sandbox, "ready", &[]);
    let running = Running::start(run_command(&[], &strs(&argv)));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGKILL);
    let _ = running.finish();
    sandbox.wait_for_event("target SIGTERM", LONG);
    sandbox.wait_for_event("target exit", LONG);
}

/// On a terminal, a service keeps Ctrl-C for the stop sequence, and a child that
/// reads the terminal neither hangs nor spins. Since issue 8 (`--terminal`), the
/// first half holds with `--terminal keep` (or `auto` with a pre-stop step): the
/// child runs in a background group, and Ctrl-C reaches gracestop alone and runs
/// the sequence exactly once. The second half: under `keep`, a child that reads
/// the terminal is stopped by SIGTTIN, then given the terminal and resumed; it
/// reads the line typed, and from then on Ctrl-C is its own (as `child` mode),
/// not a stop request. (Before issue 8 the reading child got EIO instead, and
/// Ctrl-C always went to gracestop.)
#[test]
fn ctrl_c_on_a_terminal_runs_the_sequence_once_and_a_reading_child_does_not_hang() {
    // A service that does not read the terminal.
    let sandbox = Sandbox::new();
    let argv = target_argv(&sandbox, "ready", &[]);
    let mut command = Command::new("python3");
    command.arg(format!("{FIXTURES}/pty_ctrl_c.py")).arg("--ready").arg(sandbox.path("ready")).arg("--");
    command.arg(crate::support::GRACESTOP).args(["run", "--terminal", "keep", "--wait", "10", "--"]).args(&argv);
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).env_remove("GRACESTOP_TERMINAL").output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.trim_end().ends_with("exit 0"), "{shown}");
    assert!(start.elapsed() < LONG, "{:?}", start.elapsed());
    let events = sandbox.events();
    assert_eq!(events.iter().filter(|e| *e == "target SIGTERM").count(), 1, "{events:?}\n{shown}");
    assert!(!events.iter().any(|e| e == "target SIGINT"), "Ctrl-C must reach gracestop, not the app: {events:?}");
    assert_eq!(shown.matches("stop request").count(), 1, "{shown}");

    // A child that reads the terminal: it gets the line typed, and does not hang.
    let sandbox = Sandbox::new();
    let argv = target_argv(&sandbox, "ready", &["--read-line"]);
    let events = sandbox.path("events").display().to_string();
    let mut command = vec![crate::support::GRACESTOP, "run", "--terminal", "keep", "--wait", "10", "--"];
    command.extend(strs(&argv));
    let session = crate::init::pty_session(
        &[
            r"send:typed by the driver\n".to_string(),
            format!("wait-file:{}", sandbox.path("ready").display()),
            format!("wait-text:{events}::^target stdin line typed by the driver "),
            r"send:\x03".to_string(),
            format!("wait-text:{events}::^target SIGINT "),
            "kill:TERM".to_string(),
        ],
        &command,
        &[],
    );
    session.assert_exit(0);
    assert!(session.elapsed < LONG, "{:?}\n{session}", session.elapsed);
    let events = sandbox.events();
    assert_eq!(events.iter().filter(|e| *e == "target SIGTERM").count(), 1, "{events:?}\n{session}");
    assert!(!session.shown.contains("received SIGINT"), "the reading child holds the terminal now:\n{session}");
    assert_eq!(session.shown.matches("stop request").count(), 1, "only the TERM:\n{session}");
}

#[test]
fn systemd_hears_ready_and_stopping_and_the_child_not_notify_socket() {
    let sandbox = Sandbox::new();
    let socket_path = sandbox.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(LONG)).unwrap();
    let argv = target_argv(&sandbox, "ready", &["--log-env", "NOTIFY_SOCKET"]);
    let mut command = run_command(&[], &strs(&argv));
    command.env("NOTIFY_SOCKET", &socket_path);
    let running = Running::start(command);
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "READY=1");
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGTERM);
    let n = socket.recv(&mut buf).expect("STOPPING=1 within 20 s");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.contains("STOPPING=1") && message.contains("EXTEND_TIMEOUT_USEC="), "{message}");
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("target env NOTIFY_SOCKET=<unset>"), "{:?}", sandbox.events());
}

#[test]
fn strict_deregistration_failure_keeps_the_child_running_until_asked_again() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "fail"]);
    let argv = target_argv(&sandbox, "ready", &[]);
    let url = registry.url("/down");
    let options = ["--deregister-url", &url, "--deregister-strict", "--deregister-retries", "0"];
    let running = Running::start(run_command(&options, &strs(&argv)));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGTERM);
    sandbox.wait_for_event("registry POST /down", LONG);
    // gracestop says it gave up on this stop; only then comes the second request.
    running.wait_for_stderr("keeps running", LONG);
    assert!(!sandbox.has_event("target SIGTERM"), "signalled despite --deregister-strict: {:?}", sandbox.events());
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("keeps running"), "{}", run.stderr);
    assert!(sandbox.has_event("target SIGTERM"));
    assert_eq!(sandbox.events().iter().filter(|e| *e == "registry POST /down").count(), 1, "not called again");
}

#[test]
fn pidfile_that_cannot_be_written_is_125_before_the_child_starts() {
    let sandbox = Sandbox::new();
    let marker = sandbox.path("started");
    let pidfile = sandbox.path("no-such-dir/app.pid");
    let script = format!("touch {}", marker.display());
    let run = run(run_command(&["--pidfile", pidfile.to_str().unwrap()], &["sh", "-c", &script]));
    assert_eq!(run.code(), 125, "{}", run.stderr);
    assert!(run.stderr.contains("cannot write pidfile"), "{}", run.stderr);
    assert!(!marker.exists(), "the child ran although gracestop could not supervise it properly");
}

#[test]
fn realtime_signals_reach_the_child() {
    let sandbox = Sandbox::new();
    let (low, high) = (libc::SIGRTMIN() + 3, libc::SIGRTMAX());
    let argv = target_argv(&sandbox, "ready", &["--trap", &low.to_string(), "--trap", &high.to_string()]);
    let running = Running::start(run_command(&[], &strs(&argv)));
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    for signal in [low, high] {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(running.pid().to_string()).status().unwrap();
        assert!(sent.success());
    }
    sandbox.wait_for_event(&format!("target SIG{low}"), LONG);
    sandbox.wait_for_event("target SIGRTMAX", LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
}

#[test]
fn gracestop_variables_do_not_reach_the_child() {
    let sandbox = Sandbox::new();
    let names = ["GRACESTOP_DEREGISTER_HEADER", "GRACESTOP_WAIT", "KEEP_ME"];
    let mut extra = Vec::new();
    for name in names {
        extra.extend(["--log-env", name]);
    }
    let argv = target_argv(&sandbox, "ready", &extra);
    let mut command = run_command(&[], &strs(&argv));
    command.env("GRACESTOP_DEREGISTER_HEADER", "Authorization: Bearer s3cr3t-token").env("GRACESTOP_WAIT", "5");
    command.env("KEEP_ME", "yes");
    let running = Running::start(command);
    crate::support::wait_for_file(&sandbox.path("ready"), LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let events = sandbox.events();
    assert!(events.contains(&"target env KEEP_ME=yes".to_string()), "{events:?}");
    assert!(events.contains(&"target env GRACESTOP_DEREGISTER_HEADER=<unset>".to_string()), "{events:?}");
    assert!(events.contains(&"target env GRACESTOP_WAIT=<unset>".to_string()), "{events:?}");
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
}
