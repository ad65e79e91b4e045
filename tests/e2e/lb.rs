//! HAProxy and a JVM under load (`tests/e2e/lb.py`, `tests/e2e/Backend.java`): two
//! JVM backends (a Spring-Boot-like service with graceful shutdown, compiled here with
//! javac) sit behind a real HAProxy with health checks; lb.py sends ~100 requests a
//! second, stops one backend mid-run and reports every request as JSON, which this
//! module judges:
//!
//! - `kill -15` alone (the control) loses requests, with HAProxy's retries off and
//!   with its defaults: otherwise the setup could not tell a graceful stop from a bad one;
//! - `gracestop stop` and `gracestop run` (deregister, drain 2 s, SIGTERM) lose none,
//!   in both HAProxy modes, and the JVM shuts down gracefully (exit 143);
//! - a kubelet's order, with `gracestop run` as PID 1 of a PID namespace: the preStop
//!   `gracestop drain`, SIGTERM, and the outer SIGKILL at the grace period. Nothing is
//!   lost, and PID 1 is gone before the grace period ends, whether the app cleans up
//!   (exit 0 after `--remap-exit 143=0`) or hangs (gracestop's own SIGKILL, moved
//!   forward by `--deadline`).
//!
//! A missing haproxy, java or javac skips a case with a notice, and fails it under
//! `GRACESTOP_CI`; a machine that refuses PID namespaces skips the kubelet cases.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{one_at_a_time, python};

const GRACESTOP: &str = env!("CARGO_BIN_EXE_gracestop");
const LB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/lb.py");
/// Where lb.py keeps the compiled backend between runs.
const CACHE: &str = env!("CARGO_TARGET_TMPDIR");

/// Requests per second, and seconds of load in a rolling case (the stop starts at 3 s).
const RATE: f64 = 100.0;
const SECONDS: f64 = 10.0;
/// The drain gracestop is given (lb.py's DRAIN), and the kubelet's grace period.
const DRAIN_S: f64 = 2.0;
const GRACE_S: f64 = 10.0;

/// lb.py's exit codes for a scenario that could not run here.
const EXIT_MISSING_TOOL: i32 = 77;
const EXIT_REFUSED: i32 = 78;

/// Runs lb.py with `args`; its JSON result, or None when the case is skipped here.
fn lb(args: &[&str]) -> Option<Value> {
    let _guard = one_at_a_time();
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("result.json");
    let output = Command::new(python())
        .arg(LB)
        .args(args)
        .args(["--gracestop", GRACESTOP, "--cache", CACHE, "--json"])
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/e2e/lb.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(EXIT_MISSING_TOOL) => {
            assert!(std::env::var_os("GRACESTOP_CI").is_none(), "GRACESTOP_CI is set, and {}", stderr.trim());
            println!("{} (install haproxy and a JDK to run it)", stderr.trim());
            return None;
        }
        Some(EXIT_REFUSED) => {
            println!("{}", stderr.trim());
            return None;
        }
        _ => panic!("lb.py {args:?} failed ({:?}):\n{stdout}\n{stderr}", output.status),
    }
    print!("{stdout}");
    let text = std::fs::read_to_string(&json).expect("lb.py's JSON result");
    Some(serde_json::from_str(&text).expect("lb.py's result is JSON"))
}

fn num(result: &Value, key: &str) -> f64 {
    result[key].as_f64().unwrap_or_else(|| panic!("{key} missing from {}", brief(result)))
}

fn count(result: &Value, key: &str) -> u64 {
    result[key].as_u64().unwrap_or_else(|| panic!("{key} missing from {}", brief(result)))
}

/// The result without its timeline, plus the requests that failed: for failure messages.
fn brief(result: &Value) -> String {
    let mut shown = result.clone();
    let failures: Vec<Value> = result["timeline"]
        .as_array()
        .map(|timeline| timeline.iter().filter(|r| r[1] != "ok").take(30).cloned().collect())
        .unwrap_or_default();
    if let Some(object) = shown.as_object_mut() {
        object.remove("timeline");
        object.insert("failed_requests (first 30)".into(), Value::Array(failures));
    }
    serde_json::to_string_pretty(&shown).unwrap_or_default()
}

/// What every scenario must show for its verdict to mean anything: the load ran at its
/// rate from start to end, and nothing failed before the stop began.
fn check_load(result: &Value, seconds: f64) {
    let requests = count(result, "requests") as f64;
    assert!(
        requests >= 0.9 * RATE * seconds,
        "the load generator sent {requests} requests, not ~{} (the machine is overloaded?): {}",
        RATE * seconds,
        brief(result)
    );
    assert_eq!(count(result, "failed_before_stop"), 0, "requests failed before the stop began: {}", brief(result));
    assert!(
        num(result, "load_seconds") >= num(result, "stop_done_s") + 2.0,
        "the load did not go on after the stop: {}",
        brief(result)
    );
}

fn rolling(strategy: &str, haproxy: &str) -> Option<Value> {
    let seconds = SECONDS.to_string();
    let rate = RATE.to_string();
    let result =
        lb(&["rolling", "--strategy", strategy, "--haproxy", haproxy, "--rate", &rate, "--seconds", &seconds])?;
    check_load(&result, SECONDS);
    Some(result)
}

/// The control: SIGTERM alone, while HAProxy still routes to the backend, loses requests,
/// although the JVM itself shuts down gracefully.
fn kill15_loses(haproxy: &str) {
    let Some(result) = rolling("kill-15", haproxy) else { return };
    assert_eq!(result["exit_codes"]["jvm"], 143, "the JVM did not shut down gracefully: {}", brief(&result));
    assert!(
        count(&result, "failed") > 0,
        "kill -15 lost no request behind HAProxy ({haproxy}): the setup cannot tell a graceful stop from a bad one: {}",
        brief(&result)
    );
}

/// gracestop deregisters, drains through HAProxy's detection, then stops the JVM: no loss.
fn gracestop_loses_nothing(strategy: &str, haproxy: &str) {
    let Some(result) = rolling(strategy, haproxy) else { return };
    assert_eq!(
        count(&result, "failed"),
        0,
        "gracestop {strategy} lost requests behind HAProxy ({haproxy}): {}",
        brief(&result)
    );
    assert_eq!(result["exit_codes"]["gracestop"], 0, "gracestop {strategy} failed: {}", brief(&result));
    if strategy == "stop" {
        assert_eq!(result["exit_codes"]["jvm"], 143, "the JVM did not shut down gracefully: {}", brief(&result));
    }
    let log = result["target_log"].to_string();
    assert!(log.contains("cleanup complete"), "the JVM's shutdown hook did not finish: {}", brief(&result));
    let took = num(&result, "stop_seconds");
    assert!(
        (DRAIN_S..DRAIN_S + 10.0).contains(&took),
        "gracestop {strategy} took {took} s, not the {DRAIN_S} s drain plus the JVM's shutdown: {}",
        brief(&result)
    );
}

#[test]
fn kill_15_loses_requests_behind_haproxy_without_retries() {
    kill15_loses("noretry");
}

#[test]
fn kill_15_loses_requests_behind_haproxy_with_its_default_retries() {
    kill15_loses("default");
}

#[test]
fn gracestop_stop_loses_nothing_behind_haproxy_without_retries() {
    gracestop_loses_nothing("stop", "noretry");
}

#[test]
fn gracestop_stop_loses_nothing_behind_haproxy_with_its_default_retries() {
    gracestop_loses_nothing("stop", "default");
}

#[test]
fn gracestop_run_loses_nothing_behind_haproxy_without_retries() {
    gracestop_loses_nothing("run", "noretry");
}

#[test]
fn gracestop_run_loses_nothing_behind_haproxy_with_its_default_retries() {
    gracestop_loses_nothing("run", "default");
}

/// The kubelet's order; what both apps must show: nothing lost, the hook's full drain,
/// PID 1 gone before the grace period without the outer SIGKILL.
fn kubelet(app: &str) -> Option<Value> {
    let grace = GRACE_S.to_string();
    let rate = RATE.to_string();
    let result = lb(&["kubelet", "--app", app, "--grace", &grace, "--rate", &rate])?;
    check_load(&result, 10.0);
    assert_eq!(count(&result, "failed"), 0, "requests were lost ({app} app): {}", brief(&result));
    assert_eq!(result["prestop_exit"], 0, "the preStop drain failed: {}", brief(&result));
    assert_eq!(
        num(&result, "prestop_drain_ms"),
        DRAIN_S * 1000.0,
        "the preStop's --deadline cut its drain: {}",
        brief(&result)
    );
    assert!(num(&result, "prestop_s") >= DRAIN_S, "the preStop did not drain: {}", brief(&result));
    assert_eq!(result["outer_kill"], false, "the kubelet's SIGKILL came first ({app} app): {}", brief(&result));
    assert!(num(&result, "pid1_exit_s") < GRACE_S, "PID 1 outlived the grace period ({app} app): {}", brief(&result));
    Some(result)
}

#[test]
fn kubelet_order_with_a_well_behaved_app_loses_nothing_and_ends_in_its_grace_period() {
    let Some(result) = kubelet("well-behaved") else { return };
    assert_eq!(result["app_cleanup_complete"], true, "the app's cleanup did not finish: {}", brief(&result));
    assert_eq!(result["gracestop_sigkill"], false, "gracestop killed a well-behaved app: {}", brief(&result));
    assert_eq!(result["gracestop_exit"], 0, "gracestop (PID 1) did not exit 0 (143 remapped): {}", brief(&result));
}

#[test]
fn kubelet_order_with_a_stubborn_app_gets_gracestops_own_sigkill_before_the_kubelets() {
    let Some(result) = kubelet("stubborn") else { return };
    assert_eq!(result["app_cleanup_complete"], false, "the stubborn app finished its cleanup: {}", brief(&result));
    assert_eq!(result["gracestop_sigkill"], true, "gracestop did not log its own SIGKILL: {}", brief(&result));
    assert_eq!(result["gracestop_exit"], 128 + 9, "PID 1's exit is not the app's SIGKILL: {}", brief(&result));
    // --deadline 6s (the grace period less the hook's 4 s) leaves a 5 s wait and 1 s for SIGKILL.
    let wait = num(&result, "run_wait_ms") / 1000.0;
    assert_eq!(wait, 5.0, "--deadline did not shorten --wait 30 to 5 s: {}", brief(&result));
    let waited = num(&result, "pid1_exit_s") - num(&result, "sigterm_s");
    assert!(
        waited >= wait,
        "gracestop killed the app {waited} s after SIGTERM, before its {wait} s wait: {}",
        brief(&result)
    );
}
