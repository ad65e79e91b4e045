//! Long runs, at reduced counts: `bench/soak.py` checks that `run` and `stop`
//! cycles leave no zombie, leak no descriptor and grow no memory, that a burst of
//! forwarded signals loses no exit status, and that 200 targets in one call take
//! about the time of one. `python3 bench/soak.py` runs the full counts
//! (1000/1000/100,000/200) against the release binary.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::GRACESTOP;

#[test]
fn reduced_soak_leaves_nothing_behind_and_grows_nothing() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/soak.py");
    let started = Instant::now();
    let output = Command::new("python3")
        .arg(script)
        .args(["--bin", GRACESTOP])
        .args(["--run-cycles", "100", "--long-cycles", "200", "--stop-cycles", "100"])
        .args(["--signals", "20000", "--targets", "200", "--rounds", "1"])
        .output()
        .expect("run bench/soak.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "soak failed ({:?}):\n{stdout}\n{stderr}", output.status);
    assert!(started.elapsed() < Duration::from_secs(300), "took {:?}", started.elapsed());
}
