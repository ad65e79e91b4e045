//! nginx and Tomcat end to end (`tests/e2e/web.py`, one subcommand per case):
//! nginx under `gracestop run --signal QUIT` finishes a rate-limited download
//! in flight and leaves no worker behind, where SIGTERM (the control) cuts it;
//! Debian's Tomcat 10, started by its own `catalina.sh start` with a
//! `CATALINA_PID`, is stopped in order by `gracestop stop --pidfile` faster than
//! by `catalina.sh stop 30 -force`; a stale `CATALINA_PID` naming an unrelated
//! process is left alone by gracestop and signalled by catalina.sh.
//!
//! A missing nginx or Tomcat is skipped with a notice, and is a failure under
//! `GRACESTOP_CI`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::{one_at_a_time, python};

const GRACESTOP: &str = env!("CARGO_BIN_EXE_gracestop");
const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/web.py");
const CATALINA: &str = "/usr/share/tomcat10/bin/catalina.sh";
/// web.py's exit status when a tool is missing.
const MISSING: i32 = 77;
/// Every case bounds its own waits to well under this.
const CASE_LIMIT: Duration = Duration::from_secs(120);

/// `NAME` on `PATH` or in the sbin directories (nginx lives in /usr/sbin).
fn installed(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|dir| dir.join(name).is_file())
}

/// Whether the case can run; if not, a notice (or a failure under GRACESTOP_CI).
fn available(what: &str, present: bool) -> bool {
    if !present {
        assert!(std::env::var_os("GRACESTOP_CI").is_none(), "{what} is not installed, and GRACESTOP_CI is set");
        println!("skipped: {what} is not installed (apt-get install nginx tomcat10 to run it)");
    }
    present
}

/// Runs `web.py CASE` against the gracestop under test; the case's JSON result,
/// or None when web.py reports a missing tool (outside CI).
fn case(name: &str) -> Option<Value> {
    let _serial = one_at_a_time();
    let out = tempfile::tempfile().expect("temporary file for web.py's stdout");
    let err = tempfile::tempfile().expect("temporary file for web.py's stderr");
    let mut child = Command::new(python())
        .args([HARNESS, name, "--gracestop", GRACESTOP])
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"))
        .spawn()
        .expect("start tests/e2e/web.py");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for web.py") {
            break status;
        }
        if started.elapsed() > CASE_LIMIT {
            // Our own child, by its PID: SIGTERM makes web.py run its finally
            // blocks (which stop what it started); SIGKILL if even that hangs.
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let grace = Instant::now();
            while child.try_wait().ok().flatten().is_none() && grace.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("web.py {name} ran over {CASE_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        file.rewind().expect("rewind");
        file.read_to_string(&mut text).expect("read web.py's output");
        text
    };
    let (stdout, stderr) = (read(out), read(err));
    println!("web.py {name} ({:.1} s, {status}):\n{stdout}", started.elapsed().as_secs_f64());
    if !stderr.is_empty() {
        println!("stderr:\n{stderr}");
    }
    if status.code() == Some(MISSING) {
        assert!(
            std::env::var_os("GRACESTOP_CI").is_none(),
            "web.py {name}: a tool is missing, and GRACESTOP_CI is set"
        );
        println!("skipped: {}", stdout.trim());
        return None;
    }
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("web.py {name} printed no result: {stderr}"));
    let result: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("web.py {name}: bad JSON ({e}): {line}"));
    assert_eq!(result["ok"], Value::Bool(true), "web.py {name} failed ({status}): {line}\n{stderr}");
    assert!(status.success(), "web.py {name} exited {status} yet said ok: {line}");
    Some(result)
}

fn f64_of(result: &Value, pointer: &str) -> f64 {
    result.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("no number at {pointer}: {result}"))
}

#[test]
fn nginx_under_run_with_quit_finishes_a_download_in_flight() {
    if !available("nginx", installed("nginx")) {
        return;
    }
    let Some(r) = case("nginx-quit") else { return };
    assert_eq!(r["intact"], Value::Bool(true), "{r}");
    assert_eq!(r["received"], r["file_bytes"], "{r}");
    assert_eq!(r["gracestop_exit"], 0, "{r}");
    assert_eq!(r["nginx_left"], Value::Array(vec![]), "{r}");
    assert_eq!(r["workers"].as_array().map(Vec::len), Some(2), "{r}");
    // gracestop returned only once the download was through.
    assert!(f64_of(&r, "/stop_to_last_byte_s") <= f64_of(&r, "/stop_to_gracestop_exit_s"), "{r}");
}

#[test]
fn nginx_under_run_with_term_cuts_the_download_control() {
    if !available("nginx", installed("nginx")) {
        return;
    }
    let Some(r) = case("nginx-term") else { return };
    assert_eq!(r["intact"], Value::Bool(false), "{r}");
    assert!(f64_of(&r, "/received") < f64_of(&r, "/file_bytes"), "{r}");
    assert_eq!(r["nginx_left"], Value::Array(vec![]), "{r}");
}

#[test]
fn tomcat_stops_in_order_through_catalina_pid_faster_than_catalina_sh() {
    if !available("Debian's tomcat10 (catalina.sh)", Path::new(CATALINA).is_file()) {
        return;
    }
    let Some(r) = case("tomcat-stop") else { return };
    assert_eq!(r["gracestop"]["exit"], 0, "{r}");
    assert_eq!(r["gracestop"]["jvm_exit"], 143, "{r}");
    assert!(r["gracestop"]["orderly_stop"].as_array().is_some_and(|lines| lines.iter().all(Value::is_string)), "{r}");
    let (ours, theirs) = (f64_of(&r, "/gracestop/seconds"), f64_of(&r, "/catalina_sh/seconds"));
    let (ours_late, theirs_late) =
        (f64_of(&r, "/gracestop/returned_after_jvm_exit_s"), f64_of(&r, "/catalina_sh/returned_after_jvm_exit_s"));
    println!(
        "Tomcat stop through CATALINA_PID: gracestop {ours:.3} s (returned {ours_late:.3} s after the JVM exited), \
         catalina.sh stop 30 -force {theirs:.3} s (returned {theirs_late:.3} s after)"
    );
    assert!(ours < theirs, "{r}");
    // A generous bound: returning on the exit itself, not on a poll tick.
    assert!(ours_late < 0.5, "{r}");
}

#[test]
fn tomcat_stale_catalina_pid_is_left_alone() {
    if !available("Debian's tomcat10 (catalina.sh)", Path::new(CATALINA).is_file()) {
        return;
    }
    let Some(r) = case("tomcat-stale") else { return };
    assert_eq!(r["gracestop"]["exit"], 3, "{r}");
    assert_eq!(r["gracestop"]["victim_alive"], Value::Bool(true), "{r}");
    println!(
        "catalina.sh stop 30 -force with the same stale CATALINA_PID: our unrelated process was {}",
        r["catalina_sh"]["victim"]
    );
    assert!(r["catalina_sh"]["victim"].as_str().is_some_and(|how| how.starts_with("killed by")), "{r}");
}
