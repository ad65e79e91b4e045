//! The C fixtures do what the behaviour tests rely on: the seccomp wrapper really
//! makes the pidfd calls fail, and the threads fixture really leaves a process
//! whose leader shows `Z` while it runs. A behaviour test that fails for a broken
//! fixture would send its reader after the wrong code.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{c_fixture, Sandbox};

/// Calls each pidfd syscall once through ctypes and prints "NAME ok" or
/// "NAME ERRNO". Invalid descriptors make send_signal and getfd fail with EBADF
/// when they reach the kernel, so only a filter can make them say anything else.
const PROBE: &str = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
for name, args in (("pidfd_open", (434, os.getpid(), 0)),
                   ("pidfd_send_signal", (424, -1, 0, None, 0)),
                   ("pidfd_getfd", (438, -1, 0, 0))):
    ctypes.set_errno(0)
    ok = libc.syscall(*args) >= 0
    print(name, "ok" if ok else errno.errorcode.get(ctypes.get_errno(), "?"))
"#;

/// Runs `PROGRAM ARGS...` (through /usr/bin/env, which searches PATH) under the
/// seccomp wrapper with `errno`, or directly when `errno` is None.
fn probe(errno: Option<&str>, program: &[&str]) -> std::process::Output {
    let mut command = match errno {
        Some(errno) => {
            let mut wrapped = Command::new(c_fixture("seccomp_exec"));
            wrapped.arg(errno).arg("/usr/bin/env");
            wrapped
        }
        None => Command::new("/usr/bin/env"),
    };
    command.args(program).stdin(Stdio::null()).output().expect("run the probe")
}

#[test]
fn seccomp_exec_fails_the_pidfd_calls_with_the_chosen_errno() {
    let unfiltered = probe(None, &["python3", "-c", PROBE]);
    let stdout = String::from_utf8_lossy(&unfiltered.stdout);
    assert_eq!(
        stdout,
        "pidfd_open ok\npidfd_send_signal EBADF\npidfd_getfd EBADF\n",
        "this kernel must allow pidfds for the filtered runs to mean anything: {}",
        String::from_utf8_lossy(&unfiltered.stderr)
    );
    for errno in ["ENOSYS", "EPERM"] {
        let filtered = probe(Some(errno), &["python3", "-c", PROBE]);
        assert!(filtered.status.success(), "{errno}: {filtered:?}");
        let expected = format!("pidfd_open {errno}\npidfd_send_signal {errno}\npidfd_getfd {errno}\n");
        assert_eq!(String::from_utf8_lossy(&filtered.stdout), expected, "{errno}");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn seccomp_exec_kills_a_call_through_a_foreign_abi() {
    // x32 numbers (bit 30 set) share the x86_64 audit arch: the filter must not
    // read them as x86_64 numbers. 39 is getpid.
    let x32 = "import ctypes; ctypes.CDLL(None).syscall(0x40000000 | 39); print('survived')";
    let run = probe(Some("EPERM"), &["python3", "-c", x32]);
    assert_eq!(run.status.signal(), Some(libc::SIGSYS), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn seccomp_exec_refuses_misuse_clearly() {
    let helper = c_fixture("seccomp_exec");
    for (args, code, says) in [
        (&[][..], 2, "usage: seccomp_exec ENOSYS|EPERM PROGRAM"),
        (&["ENOSYS"][..], 2, "usage: seccomp_exec ENOSYS|EPERM PROGRAM"),
        (&["EACCES", "/bin/true"][..], 2, "unknown errno \"EACCES\""),
        (&["EPERM", "/nonexistent/program"][..], 127, "cannot execute /nonexistent/program"),
        (&["EPERM", "true"][..], 127, "cannot execute true"), // a path, not a PATH search
    ] {
        let output = Command::new(&helper).args(args).stdin(Stdio::null()).output().expect("run seccomp_exec");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: expected {says:?} in {stderr}");
    }
}

#[test]
fn threads_fixture_names_a_worker_thread_of_its_process() {
    let sandbox = Sandbox::new();
    let threads = sandbox.threads(&[]);
    assert_ne!(threads.tid, threads.pid);
    let status = std::fs::read_to_string(format!("/proc/{}/status", threads.tid)).expect("the thread's status");
    assert!(status.contains(&format!("\nTgid:\t{}\n", threads.pid)), "{status}");
    assert!(threads.is_running());
}

#[test]
fn threads_fixture_leader_exits_but_the_process_runs_until_sigterm() {
    let sandbox = Sandbox::new();
    let mut threads = sandbox.threads(&["--leader-exits"]);
    assert_eq!(threads.leader_state(), Some('Z'));
    assert!(threads.is_running(), "the worker runs on");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(threads.pid), Signal::SIGTERM).expect("signal own fixture");
    assert_eq!(threads.wait(Duration::from_secs(20)).code(), Some(0));
    assert_eq!(sandbox.events(), ["threads SIGTERM", "threads exit"]);
}
