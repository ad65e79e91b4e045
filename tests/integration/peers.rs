//! tini's and dumb-init's behaviour suites, adapted (`tests/peers/run.py`): every
//! case must pass or be not applicable for gracestop, and for the real tini and
//! dumb-init as the control, which shows the adaptation itself is right. A missing
//! control is skipped with a notice, and is a failure under `GRACESTOP_CI`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::GRACESTOP;

const RUNNER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/run.py");

/// `NAME` on `PATH`, if installed.
fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

fn suite(init: &str) {
    let mut command = Command::new(if installed("python3").is_some() { "python3" } else { "/usr/bin/python3" });
    command.arg(RUNNER).args(["--init", init, "--gracestop", GRACESTOP]).stdin(Stdio::null());
    let output = command.output().expect("run tests/peers/run.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|line| line.starts_with("FAIL")).collect();
    assert!(
        output.status.success() && failed.is_empty(),
        "the peers' suite against {init} failed ({:?}):\n{}\n{}\n{stderr}",
        output.status,
        failed.join("\n"),
        stdout.lines().last().unwrap_or("")
    );
}

fn control(init: &str) {
    if installed(init).is_none() {
        assert!(std::env::var_os("GRACESTOP_CI").is_none(), "{init} is not installed, and GRACESTOP_CI is set");
        println!("skipped: {init} is not installed (install tini dumb-init to run the control)");
        return;
    }
    suite(init);
}

#[test]
fn gracestop_passes_tinis_and_dumb_inits_suites() {
    suite("gracestop");
}

#[test]
fn tini_passes_its_adapted_suite() {
    control("tini");
}

#[test]
fn dumb_init_passes_its_adapted_suite() {
    control("dumb-init");
}
