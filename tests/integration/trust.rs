//! Hostile input: pidfiles that others control, files that would block or never
//! end, groups that grow during the stop, and signals at awkward moments.
//! Nothing here may signal a process it was not meant to.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;

use crate::support::{gracestop, in_pid_namespace, pid_namespaces_work, run, stop, Mode, Running, Sandbox, FIXTURES};

const LONG: Duration = Duration::from_secs(20);

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A throwaway user, removed on drop.
struct User {
    name: String,
    uid: u32,
}

impl User {
    fn create(test: &str) -> Option<User> {
        if !is_root() {
            eprintln!("SKIPPED {test}: needs root to create a throwaway user");
            return None;
        }
        let name = format!("gs{}", std::process::id());
        let made = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", &name])
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED {test}: useradd failed");
            return None;
        }
        let user = nix::unistd::User::from_name(&name).ok().flatten().expect("the user just created");
        Some(User { name, uid: user.uid.as_raw() })
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).stderr(Stdio::null()).status();
    }
}

/// A fixture target started as `uid`, logging into `dir` (which that user may write).
struct Stranger {
    child: std::process::Child,
    pid: i32,
}

impl Stranger {
    fn start(uid: u32, dir: &Path) -> Stranger {
        // A shell, not the Python fixture: the test's python3 may live where
        // that user cannot reach it.
        let script = "trap 'echo stranger SIGTERM >> events; exit 0' TERM; touch ready; \
                      i=0; while [ $i -lt 600 ]; do sleep 1 & wait $!; i=$((i+1)); done";
        let child = Command::new("setpriv")
            .args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()])
            .args(["sh", "-c", script])
            .current_dir(dir)
            .spawn()
            .expect("setpriv sh");
        crate::support::wait_for_file(&dir.join("ready"), LONG);
        let pid = child.id() as i32;
        Stranger { child, pid }
    }

    fn events(&self, dir: &Path) -> String {
        std::fs::read_to_string(dir.join("events")).unwrap_or_default()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_pidfile(path: &Path, pid: i32) {
    std::fs::write(path, format!("{pid}\n")).unwrap();
}

fn stop_pidfile(path: &Path) -> crate::support::Run {
    stop(Mode::Pidfd, &["--pidfile", path.to_str().unwrap(), "--wait", "10", "--force"])
}

/// Every way a user other than root could control a pidfile, against a root
/// process (which must never be signalled) and the user's own (which may be).
#[test]
fn pidfiles_another_user_controls_name_only_that_users_processes() {
    let Some(user) = User::create("pidfiles_another_user_controls_name_only_that_users_processes") else { return };
    let sandbox = Sandbox::new();
    let root_dir = sandbox.path("");
    chmod(&root_dir, 0o755);
    let victim = sandbox.target(&["--name", "victim"]);
    let own = sandbox.path("u");
    std::fs::create_dir(&own).unwrap();
    chown(&own, user.uid);
    let shared = sandbox.path("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let sticky = sandbox.path("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);

    let mut refusals: Vec<(&str, PathBuf, &str)> = Vec::new();
    // 1. A file the user owns.
    let owned = sandbox.path("owned.pid");
    write_pidfile(&owned, victim.pid);
    chown(&owned, user.uid);
    refusals.push(("a file the user owns", owned, "names only that user's processes"));
    // 2. Root's file in the user's directory: they could replace it.
    let in_home = own.join("root.pid");
    write_pidfile(&in_home, victim.pid);
    refusals.push(("root's file in the user's directory", in_home, "names only that user's processes"));
    // 3. Root's file in a world-writable directory without the sticky bit.
    let replaceable = shared.join("app.pid");
    write_pidfile(&replaceable, victim.pid);
    refusals.push(("a world-writable directory", replaceable, "no sticky bit"));
    // 4. A symlink the user planted in a sticky directory, to a root pidfile.
    let real = sandbox.path("real.pid");
    write_pidfile(&real, victim.pid);
    let planted = sticky.join("app.pid");
    symlink(&real, &planted).unwrap();
    chown(&planted, user.uid);
    refusals.push(("a planted symlink", planted, "names only that user's processes"));
    // 5. A symlink in the user's directory pointing at a root pidfile elsewhere.
    let via_home = own.join("link.pid");
    symlink(&real, &via_home).unwrap();
    refusals.push(("a symlink in the user's directory", via_home, "names only that user's processes"));
    // 6. A file the user's group may write.
    let group_writable = sandbox.path("group.pid");
    write_pidfile(&group_writable, victim.pid);
    std::os::unix::fs::chown(&group_writable, Some(0), Some(user.uid)).unwrap();
    chmod(&group_writable, 0o664);
    refusals.push(("a file the user's group may write", group_writable, "may write it"));

    for (case, path, rule) in &refusals {
        let run = stop_pidfile(path);
        assert_eq!(run.code(), 1, "{case}: {}", run.stderr);
        assert!(run.stderr.contains(rule) && run.stderr.contains("rule:"), "{case}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{case}: one line: {}", run.stderr);
        assert!(victim.is_running(), "{case}: the victim was hit");
    }
    assert!(sandbox.events().is_empty(), "the victim was signalled: {:?}", sandbox.events());

    // The same shapes are fine where the user could signal the target anyway.
    let stranger = Stranger::start(user.uid, &own);
    let theirs = own.join("theirs.pid");
    write_pidfile(&theirs, stranger.pid);
    chown(&theirs, user.uid);
    let run = stop_pidfile(&theirs);
    assert_eq!(run.code(), 0, "the user's own process: {}", run.stderr);
    assert!(stranger.events(&own).contains("stranger SIGTERM"), "{}", stranger.events(&own));

    // And root's own pidfile in a sticky directory may name root's process.
    let trusted = sticky.join("root.pid");
    write_pidfile(&trusted, victim.pid);
    let run = stop_pidfile(&trusted);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("victim SIGTERM"), "{:?}", sandbox.events());
}

#[test]
fn pidfiles_that_are_not_regular_files_are_refused_without_blocking() {
    let sandbox = Sandbox::new();
    let victim = sandbox.target(&[]);
    let fifo = sandbox.path("fifo.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let dir = sandbox.path("dir.pid");
    std::fs::create_dir(&dir).unwrap();
    let huge = sandbox.path("huge.pid");
    std::fs::write(&huge, format!("{}\n{}", victim.pid, " ".repeat(1 << 20))).unwrap();
    for (path, said) in [
        (fifo.as_path(), "a FIFO, not a regular file"),
        (dir.as_path(), "a directory, not a regular file"),
        (Path::new("/dev/zero"), "a character device"),
        (huge.as_path(), "larger than 128 bytes"),
    ] {
        let started = Instant::now();
        let run = stop_pidfile(path);
        assert_eq!(run.code(), 1, "{}: {}", path.display(), run.stderr);
        assert!(run.stderr.contains(said), "{}: {}", path.display(), run.stderr);
        assert!(started.elapsed() < Duration::from_secs(10), "{}: took {:?}", path.display(), started.elapsed());
    }
    assert!(victim.is_running());
    assert!(sandbox.events().is_empty(), "{:?}", sandbox.events());
}

#[test]
fn pidfile_written_in_the_future_cannot_prove_freshness() {
    let sandbox = Sandbox::new();
    let victim = sandbox.target(&[]);
    let pidfile = sandbox.path("future.pid");
    write_pidfile(&pidfile, victim.pid);
    let file = std::fs::File::options().write(true).open(&pidfile).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    let run = stop_pidfile(&pidfile);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("in the future"), "{}", run.stderr);
    assert!(victim.is_running());
    assert!(sandbox.events().is_empty(), "{:?}", sandbox.events());
}

#[test]
fn run_refuses_a_pidfile_in_a_directory_others_may_write() {
    let sandbox = Sandbox::new();
    let open = sandbox.path("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let pidfile = open.join("gracestop.pid");
    let started = sandbox.path("started");
    let mut command = gracestop(Mode::Pidfd);
    command.args(["run", "--pidfile", pidfile.to_str().unwrap(), "--", "touch", started.to_str().unwrap()]);
    let run = run(command);
    assert_eq!(run.code(), 125, "{}", run.stderr);
    assert!(run.stderr.contains("no sticky bit"), "{}", run.stderr);
    assert!(!started.exists(), "the child was started");
    assert!(!pidfile.exists(), "the pidfile was left behind");
}

/// A group whose leader, on SIGTERM, forks a member that ignores SIGTERM and then
/// exits: the group is not empty, whatever the leader did.
#[test]
fn group_members_forked_during_the_stop_are_signalled_and_awaited() {
    if !pid_namespaces_work("group_members_forked_during_the_stop_are_signalled_and_awaited") {
        return;
    }
    let sandbox = Sandbox::new();
    let script = format!(
        r#"
        start() {{
            rm -f ready-$1 ready-$1.newcomer
            setsid python3 {FIXTURES}/target.py --ready ready-$1 --log events --name leader-$1 --spawn-on-term newcomer-$1 >/dev/null 2>&1 &
            for i in $(seq 2000); do [ -f ready-$1 ] && break; sleep 0.005; done
            cat ready-$1
        }}
        leader=$(start a)
        "$GS" stop --pid "$leader" --group --wait 1; echo "wait rc $?"
        newcomer=$(cat ready-a.newcomer)
        kill -0 "$newcomer" 2>/dev/null && echo "newcomer a alive"
        kill -KILL "$newcomer"
        leader=$(start b)
        "$GS" stop --pid "$leader" --group --wait 1 --force; echo "force rc $?"
        newcomer=$(cat ready-b.newcomer)
        for i in $(seq 2000); do kill -0 "$newcomer" 2>/dev/null || break; sleep 0.005; done
        kill -0 "$newcomer" 2>/dev/null && echo "newcomer b alive"
        true
        "#
    );
    let output = in_pid_namespace(&sandbox.path(""), &script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let events = std::fs::read_to_string(sandbox.path("events")).unwrap_or_default();
    assert!(stdout.contains("wait rc 4\n"), "the newcomer still ran: {stdout}\n{stderr}\n{events}");
    assert!(stdout.contains("newcomer a alive"), "{stdout}\n{stderr}");
    assert!(events.contains("newcomer-a SIGTERM"), "the newcomer was never signalled: {events}\n{stderr}");
    assert!(stdout.contains("force rc 0\n"), "{stdout}\n{stderr}");
    assert!(!stdout.contains("newcomer b alive"), "the newcomer survived --force: {stdout}\n{stderr}");
}

#[test]
fn sighup_and_sigpipe_do_not_abort_a_stop_half_way() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&["--on-term", "ignore"]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["stop", "--pid", &target.pid.to_string(), "--wait", "2", "--force"]);
    let running = Running::start(command);
    running.wait_for_stderr("SIGTERM ->", LONG);
    running.signal(Signal::SIGHUP);
    running.signal(Signal::SIGPIPE);
    running.wait_for_stderr("received SIGHUP", LONG);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("killed"), "{}", run.stderr);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&target.wait(LONG)), Some(libc::SIGKILL));
}

#[test]
fn sighup_does_not_end_a_drain() {
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--drain", "1s"]);
    let running = Running::start(command);
    running.wait_for_stderr("waiting", LONG);
    running.signal(Signal::SIGHUP);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("received SIGHUP") && run.stderr.contains("drain done"), "{}", run.stderr);
}
