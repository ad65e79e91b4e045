//! The README's "Try it" section cannot drift: its command (the first fenced
//! block of the section) is run exactly as written, from the repository root,
//! and what the section claims is checked against what it printed:
//!   - the command exits 0;
//!   - the run under gracestop lost no request, the `kill -15` control lost
//!     some (or the demo proves nothing), and the counts are plausible;
//!   - every line of the abridged output (the section's second block, `...`
//!     lines aside) is a line of the real output once numbers (times, PIDs,
//!     ports, counts) are set aside, and its summary lines claim the same.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HEADING: &str = "## Try it";
/// The demo itself runs in about 7 s; the bound leaves room for a loaded machine.
const DEMO_LIMIT: Duration = Duration::from_secs(120);
/// A cold release build (fat LTO, the example's dev-dependencies) takes minutes.
const BUILD_LIMIT: Duration = Duration::from_secs(1200);

#[test]
fn readme_demo_runs_as_written_and_shows_what_it_claims() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("read README.md");
    let section = try_it_section(&readme).expect("README.md has a \"## Try it\" section");
    let blocks = fenced_blocks(&section);
    assert!(blocks.len() >= 2, "the Try it section needs the command and its abridged output: {section}");
    let (command, claimed) = (&blocks[0], &blocks[1]);

    // The release build comes first, under its own bound, so that a cold build
    // does not count against the demo's.
    let started = Instant::now();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--release", "--quiet", "--bin", "gracestop", "--example", "demo_service"]).current_dir(ROOT);
    as_from_a_shell(&mut build);
    let (status, output) = run_bounded(&mut build, BUILD_LIMIT);
    assert!(status.success(), "cargo build --release failed ({status}):\n{output}");
    eprintln!("readme: release build took {:.1?}", started.elapsed());

    let started = Instant::now();
    let mut demo = Command::new("bash");
    demo.arg("-c").arg(command).current_dir(ROOT);
    as_from_a_shell(&mut demo);
    let (status, output) = run_bounded(&mut demo, DEMO_LIMIT);
    eprintln!("readme: {command:?} took {:.1?}", started.elapsed());
    assert!(status.success(), "{command:?} failed ({status}):\n{output}");
    if let Err(why) = check_claims(claimed, &output) {
        panic!("{why}\n--- what {command:?} printed:\n{output}");
    }
}

/// The checker fails on the drifts it is there to catch.
#[test]
fn readme_claims_checker_catches_drift() {
    let claimed = "gracestop: +1.003s drain waiting 1s for load balancers to stop routing here\n...\n\
                   kill -15: 13 of 150 requests failed (instance: 25 ok, 13 failed)\n\
                   gracestop run: 0 of 150 requests failed (instance: 38 ok, 0 failed)\n";
    let good = "x\ngracestop: +1.101s drain waiting 1s for load balancers to stop routing here\n\
                kill -15: 9 of 150 requests failed (instance: 29 ok, 9 failed)\n\
                gracestop run: 0 of 150 requests failed (instance: 40 ok, 0 failed)\n";
    assert_eq!(check_claims(claimed, good), Ok(()));

    let lost = good.replace(
        "gracestop run: 0 of 150 requests failed (instance: 40 ok, 0",
        "gracestop run: 1 of 150 requests failed (instance: 39 ok, 1",
    );
    assert!(check_claims(claimed, &lost).unwrap_err().contains("lost 1"));
    let control_lost_nothing =
        good.replace("9 of 150 requests failed (instance: 29 ok, 9", "0 of 150 requests failed (instance: 38 ok, 0");
    assert!(check_claims(claimed, &control_lost_nothing).unwrap_err().contains("control"));
    let reworded = good.replace("drain waiting", "drain sleeping");
    assert!(check_claims(claimed, &reworded).unwrap_err().contains("drain waiting"));
    let shorter_drain = good.replace("waiting 1s", "waiting 2s");
    assert!(check_claims(claimed, &shorter_drain).unwrap_err().contains("drain waiting"));
    assert_eq!(
        shape("lb: +1.515s instance DOWN after 2 failed health checks (HTTP 503)"),
        "lb: +#.#s instance DOWN after 2 failed health checks (HTTP 503)"
    );
    assert_eq!(shape("demo: kill -15 21089 (gracestop)"), "demo: kill -15 # (gracestop)");
    assert_eq!(
        shape("deregister POST http://127.0.0.1:40461/deregister -> 200 (1.4 ms)"),
        "deregister POST http://#.#.#.#:#/deregister -> 200 (#.# ms)"
    );
    let too_few = good.replace("of 150", "of 20");
    assert!(check_claims(claimed, &too_few).unwrap_err().contains("implausible"));
    let one_run = good.lines().filter(|l| !l.starts_with("kill -15")).collect::<Vec<_>>().join("\n");
    assert!(check_claims(claimed, &one_run).is_err());
    let readme_lies = claimed.replace("gracestop run: 0 of", "gracestop run: 2 of");
    assert!(check_claims(&readme_lies, good).unwrap_err().contains("README"));
}

/// Removes what `cargo test` adds to a test's environment, so that the command
/// runs as a user's shell would run it. It matters for more than looks: a build
/// script (ring's) tracks `CARGO_MANIFEST_DIR`, and a nested `cargo build` that
/// inherits it rebuilds the whole release binary, and the next plain `cargo
/// build --release` from a shell rebuilds it once more.
fn as_from_a_shell(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let added = ["CARGO_PKG_", "CARGO_BIN_EXE_"].iter().any(|prefix| name.starts_with(prefix))
            || ["CARGO", "CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_CRATE_NAME", "CARGO_TARGET_TMPDIR"]
                .contains(&name)
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_BIN_NAME", "OUT_DIR"].contains(&name);
        if added {
            command.env_remove(name);
        }
    }
}

/// The text from the "## Try it" heading to the next `## ` heading.
fn try_it_section(readme: &str) -> Option<String> {
    let mut lines = readme.lines().skip_while(|line| !line.starts_with(HEADING));
    let heading = lines.next()?;
    let body: Vec<&str> = lines.take_while(|line| !line.starts_with("## ")).collect();
    Some(format!("{heading}\n{}", body.join("\n")))
}

/// The contents of the fenced (```) code blocks, in order.
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut open, line.trim_start().starts_with("```")) {
            (None, true) => open = Some(Vec::new()),
            (Some(block), true) => {
                blocks.push(block.join("\n"));
                open = None;
            }
            (Some(block), false) => block.push(line),
            (None, false) => {}
        }
    }
    blocks
}

/// A summary line, `LABEL: F of N requests failed (...)`: (label, failed, total).
fn summary(line: &str) -> Option<(String, u64, u64)> {
    let (label, rest) = line.split_once(": ")?;
    let (failed, rest) = rest.split_once(" of ")?;
    let (total, rest) = rest.split_once(' ')?;
    rest.starts_with("requests failed").then_some(())?;
    Some((label.to_string(), failed.parse().ok()?, total.parse().ok()?))
}

fn summaries(text: &str) -> BTreeMap<String, (u64, u64)> {
    text.lines().filter_map(summary).map(|(label, failed, total)| (label, (failed, total))).collect()
}

/// Words after which a number means something (a status or exit code, a
/// signal, a setting) and must match; every other number is one that changes
/// from run to run (a time, a PID, a port, a count).
const MEANINGFUL: [&str; 11] = [
    "HTTP ",
    "deregister -> ",
    "status ",
    "exits ",
    "with ",
    "kill -",
    "drain ",
    "waiting ",
    "wait ",
    "after ",
    "every ",
];

/// A line with every run of digits that changes from run to run replaced by `#`.
fn shape(line: &str) -> String {
    let line = line.trim();
    let mut shaped = String::new();
    let mut literal = false;
    for (at, c) in line.char_indices() {
        if !c.is_ascii_digit() {
            shaped.push(c);
            literal = false;
            continue;
        }
        let starts_run = !line[..at].ends_with(|p: char| p.is_ascii_digit());
        if starts_run {
            literal = MEANINGFUL.iter().any(|word| line[..at].ends_with(word));
        }
        if literal {
            shaped.push(c);
        } else if starts_run {
            shaped.push('#');
        }
    }
    shaped
}

/// Checks the README's abridged output (`claimed`) against the real `output`.
fn check_claims(claimed: &str, output: &str) -> Result<(), String> {
    let printed: Vec<String> = output.lines().map(shape).collect();
    for line in claimed.lines().map(str::trim).filter(|l| !l.is_empty() && *l != "...") {
        if !printed.contains(&shape(line)) {
            return Err(format!("the README shows {line:?}, and the demo printed no such line"));
        }
    }

    let (claims, runs) = (summaries(claimed), summaries(output));
    let labels: Vec<&String> = claims.keys().collect();
    if labels.len() != 2 || runs.keys().collect::<Vec<_>>() != labels {
        return Err(format!("expected the README's two summary lines {labels:?}, the demo printed {runs:?}"));
    }
    for (what, counts) in [("the README", &claims), ("the demo", &runs)] {
        let control = counts.iter().find(|(label, _)| label.starts_with("kill"));
        let graceful = counts.iter().find(|(label, _)| label.starts_with("gracestop"));
        let (Some((_, &(lost, total))), Some((_, &(graceful_lost, graceful_total)))) = (control, graceful) else {
            return Err(format!("{what} needs a \"kill ...\" and a \"gracestop ...\" summary line: {counts:?}"));
        };
        if graceful_lost != 0 {
            return Err(format!("{what}: the run under gracestop lost {graceful_lost} of {graceful_total} requests"));
        }
        if lost == 0 {
            return Err(format!("{what}: the kill -15 control lost no request: the demo proves nothing"));
        }
        if total <= 50 || graceful_total <= 50 || lost >= total {
            return Err(format!("{what}: implausible counts: {counts:?}"));
        }
    }
    Ok(())
}

/// Kills the command's whole process group (the demo's services, the load
/// balancer and gracestop are in it) unless it was reaped.
struct Group(Option<Child>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// Runs `command` in a process group of its own, with stdout and stderr in one
/// file (in the order they were written), at most `limit`; then its status and
/// output. Whatever still runs of the group at the end is killed.
fn run_bounded(command: &mut Command, limit: Duration) -> (ExitStatus, String) {
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let out = File::options().append(true).open(log.path()).expect("open the output file");
    let err = out.try_clone().expect("dup the output file");
    command.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    let mut group = Group(Some(command.spawn().expect("spawn")));
    let pid = Pid::from_raw(group.0.as_ref().expect("the child").id() as i32);
    let started = Instant::now();
    // Waits for the exit without reaping (WNOWAIT): while the leader is an
    // unreaped zombie, its PID and so its group ID cannot be reused.
    while waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG)
        == Ok(WaitStatus::StillAlive)
    {
        if started.elapsed() > limit {
            drop(group);
            let output = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("still running after {limit:?}; killed:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A process left behind in the group (there should be none) is killed.
    let _ = killpg(pid, Signal::SIGKILL);
    let status = group.0.take().expect("the child").wait().expect("reap");
    (status, std::fs::read_to_string(log.path()).unwrap_or_default())
}
