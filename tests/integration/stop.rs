//! `gracestop stop` against real processes.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

use crate::all_modes;
use crate::support::{in_pid_namespace, pid_namespaces_work, run, stop, Mode, Sandbox};

const LONG: Duration = Duration::from_secs(20);

all_modes! {
    fn term_handling_target_exits_0_long_before_wait(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&[]);
        let pid = target.pid.to_string();
        let run = stop(mode, &["--pid", &pid, "--wait", "30", "-v"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(10), "returned after {:?}, not on exit", run.elapsed);
        assert!(sandbox.has_event("target SIGTERM"), "{:?}", sandbox.events());
        assert!(sandbox.has_event("target exit"));
        assert_eq!(target.wait(LONG).code(), Some(0));
        let watch = if mode.polls() { "by polling /proc" } else { "by pidfd" };
        assert!(run.stderr.contains(watch), "expected {watch:?} in {}", run.stderr);
        // Under seccomp the fallback must come from the refused call itself.
        match mode.seccomp_errno() {
            Some((_, errno)) => {
                let refused = format!("pidfd unavailable ({})", std::io::Error::from_raw_os_error(errno));
                assert!(run.stderr.contains(&refused), "expected {refused:?} in {}", run.stderr);
            }
            None => assert!(!run.stderr.contains("pidfd unavailable"), "{}", run.stderr),
        }
    }

    fn term_ignoring_target_without_force_exits_4_and_still_runs(mode) {
        let sandbox = Sandbox::new();
        let target = sandbox.target(&["--on-term", "ignore"]);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--wait", "1"]);
        assert_eq!(run.code(), 4, "{}", run.stderr);
        assert!(sandbox.has_event("target SIGTERM"));
        assert!(target.is_running());
    }

    fn force_kills_a_term_ignoring_target_only_after_wait(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&["--on-term", "ignore"]);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--wait", "1", "--force"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.elapsed >= Duration::from_secs(1), "killed after {:?}, before --wait", run.elapsed);
        assert!(run.stderr.contains("killed"), "{}", run.stderr);
        assert_eq!(target.wait(LONG).signal(), Some(libc::SIGKILL));
        assert!(sandbox.has_event("target SIGTERM"));
    }

    fn dump_delivers_quit_before_kill(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&["--on-term", "ignore"]);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--wait", "0.5", "--dump", "--dump-wait", "0.5", "--force"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert_eq!(target.wait(LONG).signal(), Some(libc::SIGKILL), "killed after the dump");
        let events = sandbox.events();
        let term = events.iter().position(|e| e == "target SIGTERM").expect("TERM");
        let quit = events.iter().position(|e| e == "target SIGQUIT").expect("QUIT delivered before the kill");
        assert!(term < quit, "{events:?}");
    }

    fn target_exiting_on_the_dump_signal_is_not_killed(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&["--on-term", "ignore", "--on-quit", "exit"]);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--wait", "0.2", "--dump", "--force"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert_eq!(target.wait(LONG).code(), Some(0), "exited by itself");
        assert!(!run.stderr.contains("SIGKILL ->"), "{}", run.stderr);
    }

    fn group_reaches_a_grandchild(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target_in_own_group(&["--grandchild"]);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--group", "--wait", "10"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        target.wait(LONG);
        assert!(sandbox.has_event("target SIGTERM"));
        // The grandchild is not ours to reap; its log line is the proof it got the signal.
        let start = std::time::Instant::now();
        while !sandbox.has_event("grandchild exit") {
            assert!(start.elapsed() < LONG, "grandchild never got SIGTERM: {:?}", sandbox.events());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(sandbox.has_event("grandchild SIGTERM"));
    }

    fn group_through_a_member_that_is_not_the_leader(mode) {
        let sandbox = Sandbox::new();
        let mut leader = sandbox.target_in_own_group(&["--grandchild"]);
        let member = std::fs::read_to_string(sandbox.path(&format!("ready-{}.grandchild", "--grandchild"))).unwrap();
        let run = stop(mode, &["--pid", member.trim(), "--group", "--wait", "10"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert_eq!(leader.wait(LONG).code(), Some(0), "the leader is in the group too");
        assert!(sandbox.has_event("target SIGTERM") && sandbox.has_event("grandchild SIGTERM"), "{:?}", sandbox.events());
    }

    fn group_is_gone_only_when_every_member_is(mode) {
        let sandbox = Sandbox::new();
        let mut leader = sandbox.target_in_own_group(&["--grandchild", "--grandchild-on-term", "ignore"]);
        let pid = leader.pid.to_string();
        let run = stop(mode, &["--pid", &pid, "--group", "--wait", "1"]);
        assert_eq!(run.code(), 4, "the member still runs: {}", run.stderr);
        assert_eq!(leader.wait(LONG).code(), Some(0));
        assert!(!sandbox.has_event("grandchild exit"));
        let member = std::fs::read_to_string(sandbox.path(&format!("ready-{}.grandchild", "--grandchild_--grandchild-on-term_ignore"))).unwrap();
        let run = stop(mode, &["--pid", member.trim(), "--group", "--wait", "0.5", "--force"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.stderr.contains("killed"), "{}", run.stderr);
    }

    fn stopped_target_still_acts_on_the_stop_signal(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&[]);
        target.signal(Signal::SIGSTOP);
        target.wait_for_state('T', LONG);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--wait", "10"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(8), "{:?}", run.elapsed);
        assert_eq!(target.wait(LONG).code(), Some(0));
        assert!(sandbox.has_event("target exit"));
    }

    fn zombie_counts_as_exited(mode) {
        // The test is the target's parent and does not reap it: after its SIGTERM
        // the target stays a zombie, which must count as gone at once.
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&[]);
        let run = stop(mode, &["--pid", &target.pid.to_string(), "--wait", "30"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(10), "waited for the reap: {:?}", run.elapsed);
        assert_eq!(target.state(), Some('Z'), "still unreaped when gracestop returned");
        // A zombie from the start is not running at all.
        let again = stop(mode, &["--pid", &target.pid.to_string()]);
        assert_eq!(again.code(), 3, "{}", again.stderr);
        assert!(again.stderr.contains("zombie"), "{}", again.stderr);
        target.wait(LONG);
    }

    fn stale_pidfile_exits_3_and_leaves_the_process_alone(mode) {
        let sandbox = Sandbox::new();
        let target = sandbox.target(&[]);
        let pidfile = sandbox.path("app.pid");
        std::fs::write(&pidfile, format!("{}\n", target.pid)).unwrap();
        // The file was last written an hour before this process started.
        let file = std::fs::File::options().write(true).open(&pidfile).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
        let run = stop(mode, &["--pidfile", pidfile.to_str().unwrap(), "--force", "--wait", "0"]);
        assert_eq!(run.code(), 3, "{}", run.stderr);
        assert!(run.stderr.contains("stale"), "{}", run.stderr);
        assert!(target.is_running());
        assert!(sandbox.events().is_empty(), "signalled: {:?}", sandbox.events());
    }

    fn fresh_pidfile_is_stopped(mode) {
        let sandbox = Sandbox::new();
        let mut target = sandbox.target(&[]);
        let pidfile = sandbox.path("app.pid");
        std::fs::write(&pidfile, format!("{}\n", target.pid)).unwrap();
        let run = stop(mode, &["--pidfile", pidfile.to_str().unwrap()]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert_eq!(target.wait(LONG).code(), Some(0));
    }

    fn thread_id_is_refused_with_exit_2_naming_its_process(mode) {
        // A TID is no PID: kill(2) on it would signal its whole process, which the
        // caller never named. Nothing may be signalled.
        let sandbox = Sandbox::new();
        let threads = sandbox.threads(&[]);
        let tid = threads.tid.to_string();
        let run = stop(mode, &["--pid", &tid, "--wait", "5"]);
        assert!(sandbox.events().is_empty(), "signalled through thread {tid}: {:?}\n{}", sandbox.events(), run.stderr);
        assert!(threads.is_running(), "the process is gone:\n{}", run.stderr);
        assert_eq!(run.code(), 2, "{}", run.stderr);
        let named = format!("is a thread of process {}", threads.pid);
        assert!(run.stderr.contains(&named) && run.stderr.contains(&tid), "expected {named:?} in {}", run.stderr);
    }

    fn thread_id_in_a_pidfile_is_refused_with_exit_1_naming_its_process(mode) {
        let sandbox = Sandbox::new();
        let threads = sandbox.threads(&[]);
        let tid = threads.tid.to_string();
        // Written now, by the test's user (root in CI): fresh and trusted, so only
        // the thread ID itself can be the reason to refuse.
        let pidfile = sandbox.path("app.pid");
        std::fs::write(&pidfile, format!("{tid}\n")).unwrap();
        let run = stop(mode, &["--pidfile", pidfile.to_str().unwrap(), "--wait", "5"]);
        assert!(sandbox.events().is_empty(), "signalled through thread {tid}: {:?}\n{}", sandbox.events(), run.stderr);
        assert!(threads.is_running(), "the process is gone:\n{}", run.stderr);
        assert_eq!(run.code(), 1, "{}", run.stderr);
        let named = format!("is a thread of process {}", threads.pid);
        assert!(run.stderr.contains(&named) && run.stderr.contains(&tid), "expected {named:?} in {}", run.stderr);
    }

    fn process_whose_main_thread_exited_is_alive_and_is_stopped(mode) {
        // The leader shows `Z` in /proc/PID/stat while the worker runs on: the
        // process has not exited, so it is no zombie to skip.
        let sandbox = Sandbox::new();
        let mut threads = sandbox.threads(&["--leader-exits"]);
        assert_eq!(threads.leader_state(), Some('Z'), "the fixture's main thread did not exit");
        let run = stop(mode, &["--pid", &threads.pid.to_string(), "--wait", "10"]);
        assert_eq!(run.code(), 0, "events {:?}: {}", sandbox.events(), run.stderr);
        assert!(!threads.is_running(), "gracestop returned while the worker still ran: {}", run.stderr);
        assert_eq!(sandbox.events(), ["threads SIGTERM", "threads exit"], "{}", run.stderr);
        assert_eq!(threads.wait(LONG).code(), Some(0));
    }

    fn several_targets_are_stopped_concurrently(mode) {
        let sandbox = Sandbox::new();
        let mut a = sandbox.target(&["--on-term", "ignore", "--name", "a"]);
        let mut b = sandbox.target(&["--on-term", "ignore", "--name", "b"]);
        let run = stop(mode, &["--pid", &a.pid.to_string(), "--pid", &b.pid.to_string(), "--wait", "2", "--force"]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.elapsed < Duration::from_millis(3500), "one wait each, not shared: {:?}", run.elapsed);
        assert_eq!(a.wait(LONG).signal(), Some(libc::SIGKILL));
        assert_eq!(b.wait(LONG).signal(), Some(libc::SIGKILL));
    }
}

#[test]
fn missing_pidfile_exits_3_and_0_with_missing_ok() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.path("none.pid");
    let run = stop(Mode::Pidfd, &["--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(run.code(), 3, "{}", run.stderr);
    let run = stop(Mode::Pidfd, &["--pidfile", pidfile.to_str().unwrap(), "--missing-ok"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
}

#[test]
fn empty_or_garbage_pidfile_exits_1_quoting_it() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]);
    let pidfile = sandbox.path("bad.pid");
    for (content, quoted) in
        [("", "is empty"), ("garbage\n", "\"garbage\\n\""), ("12 34", "\"12 34\""), ("1\n", "refused")]
    {
        std::fs::write(&pidfile, content).unwrap();
        // A valid --pid beside it proves nothing is signalled before validation ends.
        let run = stop(Mode::Pidfd, &["--pid", &target.pid.to_string(), "--pidfile", pidfile.to_str().unwrap()]);
        assert_eq!(run.code(), 1, "{content:?}: {}", run.stderr);
        assert!(run.stderr.contains(quoted), "{content:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one clear line: {}", run.stderr);
    }
    assert!(target.is_running());
    assert!(sandbox.events().is_empty(), "{:?}", sandbox.events());
}

#[test]
fn world_writable_pidfile_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]);
    let pidfile = sandbox.path("open.pid");
    std::fs::write(&pidfile, target.pid.to_string()).unwrap();
    std::fs::set_permissions(&pidfile, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = stop(Mode::Pidfd, &["--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(target.is_running());
}

#[test]
fn bad_flags_exit_2_naming_the_value() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    for (flag, value) in
        [("--wait", "soon"), ("--signal", "TERMINATE"), ("--wait", "-5"), ("--signal", "0"), ("--pid", "12abc")]
    {
        let args: Vec<&str> = if flag == "--pid" { vec![flag, value] } else { vec!["--pid", &pid, flag, value] };
        let run = stop(Mode::Pidfd, &args);
        assert_eq!(run.code(), 2, "{flag} {value}: {}", run.stderr);
        assert!(run.stderr.contains(value), "{flag} {value}: {}", run.stderr);
    }
    let run = stop(Mode::Pidfd, &[]);
    assert_eq!(run.code(), 2, "no target: {}", run.stderr);
    assert!(target.is_running());
    assert!(sandbox.events().is_empty());
}

#[test]
fn dangerous_pids_exit_2_and_signal_nothing() {
    if !pid_namespaces_work("dangerous_pids_exit_2_and_signal_nothing") {
        return;
    }
    // Inside a PID namespace a regression could only hit the namespace's own
    // processes: the sentinel, whose survival the script reports.
    let script = r#"
        sleep 600 & sentinel=$!
        for pid in -1 0 1 -4242; do
            "$GS" stop --pid "$pid" --force --wait 0 2>>errors; echo "pid $pid rc $?"
        done
        "$GS" stop "--pid=-1" --force --wait 0 2>>errors; echo "pid =-1 rc $?"
        sh -c 'exec "$GS" stop --pid $$ --force --wait 0' 2>>errors; echo "pid self rc $?"
        kill -0 $sentinel && echo sentinel alive
        cat errors >&2
        kill -KILL $sentinel
    "#;
    let sandbox = Sandbox::new();
    let output = in_pid_namespace(&sandbox.path(""), script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for pid in ["-1", "0", "1", "-4242", "=-1", "self"] {
        assert!(stdout.contains(&format!("pid {pid} rc 2\n")), "--pid {pid}: {stdout}\n{stderr}");
    }
    assert!(stdout.contains("sentinel alive"), "{stdout}\n{stderr}");
    for named in ["PID -1", "PID 0", "PID 1", "gracestop itself"] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
}

#[test]
fn no_permission_exits_1_naming_the_owner() {
    // Needs root, setpriv, and a gracestop binary that user nobody may execute
    // (a checkout under a private home directory is not).
    let probe = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", crate::support::GRACESTOP, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) || !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED no_permission_exits_1_naming_the_owner: needs root, setpriv and a binary nobody can run");
        return;
    }
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]);
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", crate::support::GRACESTOP, "stop", "--pid"])
        .arg(target.pid.to_string());
    let run = run(command);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("no permission") && run.stderr.contains("root"), "{}", run.stderr);
    assert!(target.is_running());
}

#[test]
fn group_sharing_gracestops_own_group_is_refused() {
    let sandbox = Sandbox::new();
    let target = sandbox.target(&[]); // same process group as this test, and so as gracestop
    let run = stop(Mode::Pidfd, &["--pid", &target.pid.to_string(), "--group"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("--group"), "{}", run.stderr);
    assert!(target.is_running());
    assert!(sandbox.events().is_empty());
}

#[test]
fn warns_when_the_target_does_not_catch_the_stop_signal() {
    let sandbox = Sandbox::new();
    let mut uncaught = sandbox.target(&["--on-term", "default", "--name", "plain"]);
    let run = stop(Mode::Pidfd, &["--pid", &uncaught.pid.to_string()]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("does not catch SIGTERM"), "{}", run.stderr);
    assert_eq!(uncaught.wait(LONG).signal(), Some(libc::SIGTERM));

    let ignoring = sandbox.target(&["--on-term", "sig-ign", "--name", "deaf"]);
    let run = stop(Mode::Pidfd, &["--pid", &ignoring.pid.to_string(), "--wait", "0"]);
    assert_eq!(run.code(), 4, "{}", run.stderr);
    assert!(run.stderr.contains("ignores SIGTERM"), "{}", run.stderr);
}

#[test]
fn no_such_process_exits_3() {
    // A PID that surely does not exist: above pid_max.
    let run = stop(Mode::Pidfd, &["--pid", "2147483600"]);
    assert_eq!(run.code(), 3, "{}", run.stderr);
}

#[test]
fn closed_stderr_does_not_crash_gracestop() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&[]);
    let mut child = crate::support::gracestop(Mode::Pidfd)
        .args(["stop", "-v", "--pid", &target.pid.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the read end closes: every log write fails with EPIPE
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(target.wait(LONG).code(), Some(0));
}
