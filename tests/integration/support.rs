//! The test harness: real target processes with a readiness handshake and an
//! event log, gracestop runs bounded in time, and guards that kill whatever a
//! test started, so a failing test leaves nothing behind. C fixtures (the
//! seccomp wrapper, the threaded target) are compiled once per test run.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub const GRACESTOP: &str = env!("CARGO_BIN_EXE_gracestop");
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/target.py");
const REGISTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/registry.py");

/// How gracestop watches for exits, and how it is made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// pidfds, as the kernel allows them.
    Pidfd,
    /// Polling `/proc`, chosen by `GRACESTOP_NO_PIDFD=1`.
    Poll,
    /// Polling `/proc`, because a seccomp filter makes the pidfd calls fail with
    /// ENOSYS (an old kernel).
    SeccompEnosys,
    /// Polling `/proc`, because a seccomp filter makes the pidfd calls fail with
    /// EPERM (an older Docker seccomp profile).
    SeccompEperm,
}

impl Mode {
    /// Whether gracestop has to watch by polling `/proc` in this mode.
    pub fn polls(self) -> bool {
        self != Mode::Pidfd
    }

    /// The errno (name, number) the seccomp filter gives the pidfd calls.
    pub fn seccomp_errno(self) -> Option<(&'static str, i32)> {
        match self {
            Mode::SeccompEnosys => Some(("ENOSYS", libc::ENOSYS)),
            Mode::SeccompEperm => Some(("EPERM", libc::EPERM)),
            Mode::Pidfd | Mode::Poll => None,
        }
    }
}

/// Runs a test body once per mode: every behaviour must hold on the pidfd path
/// and on the polling fallback, whether the fallback was asked for or forced by
/// the kernel refusing pidfds.
#[macro_export]
macro_rules! all_modes {
    ($(fn $name:ident($mode:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($mode: $crate::support::Mode) $body
            #[test]
            fn pidfd() { body($crate::support::Mode::Pidfd) }
            #[test]
            fn polling() { body($crate::support::Mode::Poll) }
            #[test]
            fn seccomp_enosys() { body($crate::support::Mode::SeccompEnosys) }
            #[test]
            fn seccomp_eperm() { body($crate::support::Mode::SeccompEperm) }
        }
    )*};
}

/// Compiles `tests/fixtures/NAME.c` with the system C compiler (`$CC`, else
/// `cc`) into this build's test scratch directory, once per test run, and
/// returns the binary's path. A failed build fails the test with the
/// compiler's output (every later caller sees the same failure).
pub fn c_fixture(name: &str) -> PathBuf {
    type Build = Arc<OnceLock<Result<PathBuf, String>>>;
    static BUILDS: Mutex<BTreeMap<String, Build>> = Mutex::new(BTreeMap::new());
    let build = Arc::clone(BUILDS.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default());
    match build.get_or_init(|| compile_c_fixture(name)) {
        Ok(binary) => binary.clone(),
        Err(why) => panic!("{why}"),
    }
}

fn compile_c_fixture(name: &str) -> Result<PathBuf, String> {
    let source = Path::new(FIXTURES).join(format!("{name}.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-fixtures");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let binary = dir.join(name);
    // Built under a name of this process's own, then renamed into place: a test
    // run going on at the same time never executes a half-written binary.
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let compiler = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(&compiler)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&partial)
        .arg(&source)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run the C compiler {compiler:?} for {}: {e} (.ci/run installs gcc)", source.display())
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "{compiler:?} failed on {} ({}):\n{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::rename(&partial, &binary).map_err(|e| format!("cannot move {} into place: {e}", binary.display()))?;
    Ok(binary)
}

/// A temporary directory holding the readiness files and the event log.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Drop for Sandbox {
    /// Kills whatever still runs with this sandbox in its command line: leftovers
    /// of a failing test (every fixture process names its sandbox's files).
    fn drop(&mut self) {
        for pid in processes_mentioning(self.dir.path()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Live (non-zombie) processes whose command line mentions `path`.
pub fn processes_mentioning(path: &Path) -> Vec<i32> {
    let marker = path.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmdline).contains(&marker)
        })
        .collect()
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The event log, one entry per line ("target SIGTERM", "grandchild exit"),
    /// without the monotonic time stamps.
    pub fn events(&self) -> Vec<String> {
        self.stamped_events().into_iter().map(|(event, _)| event).collect()
    }

    /// The event log with each entry's CLOCK_MONOTONIC time in nanoseconds.
    pub fn stamped_events(&self) -> Vec<(String, u64)> {
        let text = std::fs::read_to_string(self.path("events")).unwrap_or_default();
        text.lines()
            .map(|line| match line.rsplit_once(" @") {
                Some((event, ns)) => (event.to_string(), ns.parse().unwrap_or(0)),
                None => (line.to_string(), 0),
            })
            .collect()
    }

    /// Waits (bounded) until the event log holds `event`.
    pub fn wait_for_event(&self, event: &str, limit: Duration) {
        let start = Instant::now();
        while !self.has_event(event) {
            assert!(start.elapsed() < limit, "no {event:?} within {limit:?}: {:?}", self.events());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The time of the first event equal to `event`.
    pub fn time_of(&self, event: &str) -> Option<u64> {
        self.stamped_events().into_iter().find(|(e, _)| e == event).map(|(_, t)| t)
    }

    /// Starts the fixture registry (a real HTTP server on 127.0.0.1) and waits
    /// for its handshake. It logs every request into this sandbox's event log.
    pub fn registry(&self, args: &[&str]) -> Registry {
        let ready = self.path(&format!("registry-ready-{}", args.join("_").replace(['/', ' '], "_")));
        let child = Command::new("python3")
            .arg(REGISTRY)
            .arg("--ready")
            .arg(&ready)
            .arg("--log")
            .arg(self.path("events"))
            .args(args)
            .spawn()
            .expect("spawn python3 registry");
        let mut registry = Registry { child, port: 0 };
        wait_for_file(&ready, Duration::from_secs(20));
        registry.port = std::fs::read_to_string(&ready).expect("port").trim().parse().expect("port number");
        registry
    }

    pub fn has_event(&self, event: &str) -> bool {
        self.events().iter().any(|e| e == event)
    }

    /// Starts the fixture target and waits for its handshake.
    pub fn target(&self, args: &[&str]) -> Target {
        self.target_with(args, false)
    }

    /// Starts the fixture target as the leader of its own process group.
    pub fn target_in_own_group(&self, args: &[&str]) -> Target {
        self.target_with(args, true)
    }

    /// Starts the threaded C fixture (`tests/fixtures/threads.c`) and waits for
    /// its handshake, which names its process and its worker thread.
    pub fn threads(&self, args: &[&str]) -> Threaded {
        let ready = self.path(&format!("threads-ready-{}", args.join("_").replace(['/', ' '], "_")));
        let child = Command::new(c_fixture("threads"))
            .arg("--ready")
            .arg(&ready)
            .arg("--log")
            .arg(self.path("events"))
            .args(args)
            .spawn()
            .expect("spawn the threads fixture");
        let mut threaded = Threaded { pid: child.id() as i32, tid: 0, child };
        wait_for_file(&ready, Duration::from_secs(20));
        let handshake = std::fs::read_to_string(&ready).expect("threads handshake");
        let ids: Vec<i32> = handshake.split_whitespace().map(|id| id.parse().expect("PID TID")).collect();
        assert_eq!(ids.len(), 2, "expected \"PID TID\" from the threads fixture: {handshake:?}");
        assert_eq!(ids[0], threaded.pid, "the fixture's handshake names another process");
        threaded.tid = ids[1];
        threaded
    }

    fn target_with(&self, args: &[&str], own_group: bool) -> Target {
        let ready = self.path(&format!("ready-{}", args.join("_").replace(['/', ' '], "_")));
        let mut command = Command::new("python3");
        command.arg(FIXTURE).arg("--ready").arg(&ready).arg("--log").arg(self.path("events")).args(args);
        if own_group {
            command.process_group(0);
        }
        let child = command.spawn().expect("spawn python3 target");
        let target = Target { pid: child.id() as i32, child, own_group };
        wait_for_file(&ready, Duration::from_secs(20));
        target
    }
}

/// The state letter of a `/proc/.../stat` file, or None if it cannot be read.
fn state_letter(stat_path: &str) -> Option<char> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits (bounded) until `path` exists.
pub fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} did not appear within {limit:?}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A process a test started; killed (with its group, if it has one) on drop.
pub struct Target {
    pub pid: i32,
    child: Child,
    own_group: bool,
}

impl Target {
    /// The state letter from `/proc/PID/stat` (`Z` for a zombie), or None once reaped.
    pub fn state(&self) -> Option<char> {
        state_letter(&format!("/proc/{}/stat", self.pid))
    }

    /// Running (not exited, not a zombie); does not reap.
    pub fn is_running(&self) -> bool {
        !matches!(self.state(), None | Some('Z') | Some('X'))
    }

    /// Reaps the target, waiting at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        wait_bounded(&mut self.child, limit).unwrap_or_else(|| panic!("target {} still runs after {limit:?}", self.pid))
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid), signal).expect("signal own target");
    }

    /// Waits (bounded) until the target is in state `state`.
    pub fn wait_for_state(&self, state: char, limit: Duration) {
        let start = Instant::now();
        while self.state() != Some(state) {
            assert!(start.elapsed() < limit, "target never reached state {state}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.own_group {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running threads fixture: process `pid`, whose SIGTERM handling runs on its
/// worker thread `tid`. Killed (the whole process) and reaped on drop.
pub struct Threaded {
    pub pid: i32,
    pub tid: i32,
    child: Child,
}

impl Threaded {
    /// The state letter of the thread-group leader (`Z` once the main thread has
    /// exited, even while the worker runs), or None once reaped.
    pub fn leader_state(&self) -> Option<char> {
        state_letter(&format!("/proc/{}/stat", self.pid))
    }

    /// Whether the worker thread still runs, and with it the process. Unlike
    /// [`Target::is_running`], this holds while the leader shows `Z`.
    pub fn is_running(&self) -> bool {
        let worker = state_letter(&format!("/proc/{}/task/{}/stat", self.pid, self.tid));
        !matches!(worker, None | Some('Z') | Some('X'))
    }

    /// Reaps the process, waiting at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        wait_bounded(&mut self.child, limit)
            .unwrap_or_else(|| panic!("threads {} still runs after {limit:?}", self.pid))
    }
}

impl Drop for Threaded {
    /// SIGKILL to the process (every thread). Needed even with the sandbox's own
    /// sweep: a process whose leader has exited shows `Z` and an empty command line.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running fixture registry; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
}

impl Registry {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls a child until it exits or `limit` passes (then kills it). Bounded.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The outcome of one gracestop run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The exit code; panics (showing stderr) when gracestop died of a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("gracestop died of signal {:?}: {}", self.status.signal(), self.stderr))
    }
}

/// A gracestop command for `mode`; in the seccomp modes, gracestop runs under
/// `tests/fixtures/seccomp_exec.c`, whose filter makes the pidfd calls fail.
pub fn gracestop(mode: Mode) -> Command {
    let mut command = match mode.seccomp_errno() {
        Some((errno, _)) => {
            let mut wrapped = Command::new(c_fixture("seccomp_exec"));
            wrapped.arg(errno).arg(GRACESTOP);
            wrapped
        }
        None => Command::new(GRACESTOP),
    };
    command.env_remove("GRACESTOP_NO_PIDFD");
    if mode == Mode::Poll {
        command.env("GRACESTOP_NO_PIDFD", "1");
    }
    command
}

/// Runs gracestop to completion (at most 60 s), capturing stderr.
pub fn run(command: Command) -> Run {
    Running::start(command).finish()
}

/// A gracestop run in progress, for tests that signal gracestop itself.
pub struct Running {
    child: Child,
    start: Instant,
    stderr: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Running {
    pub fn start(mut command: Command) -> Running {
        let start = Instant::now();
        let mut child = command.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn gracestop");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            let _ = tx.send(());
        });
        Running { child, start, stderr, done }
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal gracestop");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) until gracestop's stderr so far contains `text`.
    pub fn wait_for_stderr(&self, text: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let so_far = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
            if so_far.contains(text) {
                return;
            }
            assert!(start.elapsed() < limit, "no {text:?} on stderr within {limit:?}: {so_far}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (at most 60 s) for gracestop to exit, then (at most 2 s) for the end
    /// of its stderr: a leftover process that inherited the pipe must not hang
    /// the test.
    pub fn finish(self) -> Run {
        self.finish_within(Duration::from_secs(60))
    }

    /// As [`Running::finish`], with a tighter bound: gracestop is killed, and the
    /// test fails, when it has not exited within `limit`.
    pub fn finish_within(mut self, limit: Duration) -> Run {
        let Some(status) = wait_bounded(&mut self.child, limit) else {
            let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
            panic!("gracestop hung for {limit:?}: {stderr}");
        };
        let elapsed = self.start.elapsed();
        let _ = self.done.recv_timeout(Duration::from_secs(2));
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        Run { status, stderr, elapsed }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `gracestop stop ARGS...` in `mode`.
pub fn stop(mode: Mode, args: &[&str]) -> Run {
    let mut command = gracestop(mode);
    command.arg("stop").args(args);
    run(command)
}

/// Whether PID namespaces can be made here; prints why a test is skipped if not.
pub fn pid_namespaces_work(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED {test}: `unshare --pid --fork --mount-proc` is refused on this machine");
    }
    ok
}

/// Runs a shell script as PID 1 of a new PID namespace, in directory `dir`, with
/// $GS naming gracestop. Whatever the script starts dies with the namespace.
pub fn in_pid_namespace(dir: &Path, script: &str) -> std::process::Output {
    Command::new("unshare")
        .current_dir(dir)
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", script])
        .env("GS", GRACESTOP)
        .stdin(Stdio::null())
        .output()
        .expect("run unshare")
}
