//! The OS side of `gracestop run`: subreaper, signal intake through a signalfd,
//! spawning the child with a clean signal state, reaping, and finding every
//! descendant.
//!
//! Signals come in two kinds. Those gracestop acts on (SIGCHLD and the
//! `--stop-on` set) are blocked and read from one signalfd by the async loop.
//! Every other one is forwarded to the child straight from its signal handler:
//! `kill(2)` is async-signal-safe, and forwarding this way costs one signal
//! delivery instead of a trip through the reactor. Every intake signal has a
//! handler, so PID 1 of a namespace receives it, and `SigCgt` in
//! `/proc/PID/status` tells the truth (`gracestop stop` aimed at us does not warn
//! that we would die at once). Real-time signals (SIGRTMIN..SIGRTMAX), which
//! nix's `Signal` cannot name, are forwarded the same way; each is queued by the
//! kernel, so none is lost, but a `sigqueue` payload is not carried over. The
//! child gets an empty mask and default dispositions back before exec.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::procfs;

/// Signals that must stay deliverable the ordinary way: uncatchable ones, and the
/// synchronous faults that a blocked mask would turn into hangs.
const NEVER_BLOCKED: [Signal; 9] = [
    Signal::SIGKILL,
    Signal::SIGSTOP,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGABRT,
    Signal::SIGSYS,
];

/// Every signal gracestop takes in through its signalfd. SIGPIPE stays ignored
/// (Rust's runtime ignores it so that writes return EPIPE).
fn intake_set() -> SigSet {
    let mut set = SigSet::all();
    for signal in NEVER_BLOCKED.iter().chain([Signal::SIGPIPE].iter()) {
        set.remove(*signal);
    }
    set
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The PID forwarded signals go to: the child, or 0 once it is reaped (from
/// then on its PID may name another process).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    // SAFETY: errno is thread-local and valid for the whole handler; it is
    // restored so that the interrupted code never sees kill's errno.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        let pid = FORWARD_TO.load(Ordering::Acquire);
        if pid > 0 {
            libc::kill(pid, sig);
        }
        *errno = saved;
    }
}

/// gracestop's signal intake: the signalfd for the signals it acts on, and the
/// handlers that forward the rest.
pub struct Intake {
    fd: AsyncFd<SignalFd>,
    forwarded: SigSet,
}

impl Intake {
    /// Waits for signals and returns every one that is pending, in arrival order
    /// (standard signals that arrived twice before a read count once).
    pub async fn next(&self) -> io::Result<Vec<Signal>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut batch = Vec::new();
            while let Some(info) = self.fd.get_ref().read_signal()? {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    batch.push(sig);
                }
            }
            guard.clear_ready();
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Starts forwarding to `child`. Signals that arrived since [`take_signals`]
    /// were held (blocked) and are forwarded now.
    pub fn forward_to(&self, child: i32) -> io::Result<()> {
        FORWARD_TO.store(child, Ordering::Release);
        signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&self.forwarded), None)?;
        Ok(())
    }
}

/// Takes over signal handling (call before any other thread exists, so every
/// thread inherits the mask): `watched` (plus SIGCHLD) through the returned
/// intake, every other catchable signal forwarded once [`Intake::forward_to`]
/// names the child. Must be called inside a tokio runtime.
pub fn take_signals(watched: &[Signal]) -> io::Result<Intake> {
    let all = intake_set();
    let mut read = SigSet::empty();
    read.add(Signal::SIGCHLD);
    for sig in watched {
        read.add(*sig);
    }
    let mut forwarded = SigSet::empty();
    for sig in all.iter().filter(|sig| !read.contains(*sig)) {
        forwarded.add(sig);
    }
    // Everything is held until the child exists.
    signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    let quiet =
        signal::SigAction::new(SigHandler::Handler(ignore_signal), signal::SaFlags::SA_RESTART, SigSet::empty());
    let forward = signal::SigAction::new(SigHandler::Handler(forward_signal), signal::SaFlags::SA_RESTART, all);
    for sig in all.iter() {
        let action = if read.contains(sig) { &quiet } else { &forward };
        // SAFETY: both handlers are async-signal-safe: one does nothing, the
        // other only loads an atomic and calls kill(2), preserving errno.
        let _ = unsafe { signal::sigaction(sig, action) };
    }
    let forwarded = with_realtime(forwarded, forward_signal, &all)?;
    let fd = SignalFd::with_flags(&read, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    // SAFETY: the SignalFd moves into the AsyncFd and keeps its descriptor open,
    // unchanged, until the AsyncFd drops.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
    Ok(Intake { fd, forwarded })
}

/// Installs `handler` for every real-time signal the C library leaves to
/// applications (SIGRTMIN..=SIGRTMAX) and returns `set` with them added. They
/// are already blocked: [`SigSet::all`] holds them.
fn with_realtime(set: SigSet, handler: extern "C" fn(libc::c_int), mask: &SigSet) -> io::Result<SigSet> {
    let mut raw = *set.as_ref();
    for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: sigaction gets a fully initialised struct (zeroed, then every
        // field gracestop relies on set) and a signal number in the range the C
        // library reserves for applications; the handler is async-signal-safe
        // (see `forward_signal`). sigaddset writes into our own set.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as usize;
            action.sa_mask = *mask.as_ref();
            action.sa_flags = libc::SA_RESTART;
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::sigaddset(&mut raw, sig);
        }
    }
    // SAFETY: `raw` came from a valid SigSet and was changed only by sigaddset.
    Ok(unsafe { SigSet::from_sigset_t_unchecked(raw) })
}

/// Makes orphaned descendants reparent to us, so that we can reap and stop them.
pub fn become_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
}

/// How to start the child.
pub struct Spawn<'a> {
    pub argv: &'a [OsString],
    /// Signal the child receives when gracestop dies (parent-death signal).
    pub death_signal: Signal,
    /// Ignore SIGTTIN/SIGTTOU in the child: it runs in a background process group
    /// of gracestop's terminal, and a read would stop it rather than fail.
    pub detach_from_tty: bool,
    /// Environment variables not to pass on.
    pub env_remove: &'a [OsString],
}

/// Starts the child in its own process group. Must run on the thread that lives
/// as long as gracestop (the parent-death signal is tied to the forking thread).
pub fn spawn(spec: &Spawn<'_>) -> io::Result<i32> {
    let (program, args) =
        spec.argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    for name in spec.env_remove {
        command.env_remove(name);
    }
    let parent = std::process::id() as libc::pid_t;
    let death_signal = spec.death_signal as libc::c_int;
    let detach = spec.detach_from_tty;
    // SAFETY: the closure runs between fork and exec in the child, where only
    // async-signal-safe calls are allowed. It uses sigemptyset, sigprocmask,
    // signal, prctl, getppid and kill through libc, all async-signal-safe, and
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            if detach {
                libc::signal(libc::SIGTTIN, libc::SIG_IGN);
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // gracestop may have died before the prctl: then nobody would tell us.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), death_signal);
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The reaper owns every wait from here on; dropping Child never waits.
    Ok(child.id() as i32)
}

/// One reaped process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    /// Exit code, or `None` when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Reaps every exited descendant without blocking. Returns what was reaped and
/// whether no descendant is left at all (ECHILD). Each exit is peeked at first
/// (`WNOWAIT`), so that forwarding to the child stops before its PID is freed.
pub fn reap() -> (Vec<Reaped>, bool) {
    let mut reaped = Vec::new();
    // Bounded: each iteration reaps one process; no process tree is this large.
    for _ in 0..100_000 {
        let peeked = match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT) {
            Ok(status) => status.pid(),
            Err(Errno::ECHILD) => return (reaped, true),
            Err(Errno::EINTR) => continue,
            Err(_) => return (reaped, false),
        };
        let Some(pid) = peeked else { return (reaped, false) };
        if pid.as_raw() == FORWARD_TO.load(Ordering::Acquire) {
            FORWARD_TO.store(0, Ordering::Release);
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                reaped.push(Reaped { pid: pid.as_raw(), code: Some(code), signal: None })
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                reaped.push(Reaped { pid: pid.as_raw(), code: None, signal: Some(sig as i32) })
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return (reaped, false),
        }
    }
    (reaped, false)
}

/// A descendant of gracestop found in `/proc`.
#[derive(Clone, Debug)]
pub struct Descendant {
    pub pid: i32,
    pub stat: procfs::Stat,
}

/// Every live descendant of `root`, parents before children. Zombies are left
/// out: they have exited, and the reaper will collect them.
pub fn descendants(root: i32) -> Vec<Descendant> {
    let all = procfs::all();
    let mut found: Vec<Descendant> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, stat) in all.iter().filter(|(_, stat)| stat.ppid == parent) {
            frontier.push(*pid);
            if !stat.is_zombie() {
                found.push(Descendant { pid: *pid, stat: stat.clone() });
            }
        }
    }
    found
}

/// Signals our own direct child by PID: safe because only we can reap it, so its
/// PID cannot be reused while we have not.
pub fn signal_child(pid: i32, sig: Signal) -> io::Result<()> {
    Ok(signal::kill(Pid::from_raw(pid), sig)?)
}

/// Signals a process group whose leader is our unreaped child (the group id
/// cannot be reused while the leader's PID is held).
pub fn signal_child_group(pgid: i32, sig: Signal) -> io::Result<()> {
    Ok(signal::killpg(Pid::from_raw(pgid), sig)?)
}

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdin())
}

/// Signals a descendant found by [`descendants`], through a pidfd, and only if
/// the PID still names the process that was found (same start time).
pub fn signal_descendant(found: &Descendant, sig: Signal) -> io::Result<()> {
    let fd = match super::pidfd::open(found.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        Err(_) => None, // no pidfd here: fall back to the start-time check alone
    };
    match procfs::stat(found.pid) {
        Ok(now) if now.start_ticks == found.stat.start_ticks => {}
        _ => return Ok(()),
    }
    let result = match &fd {
        Some(fd) => super::pidfd::send_signal(std::os::fd::AsFd::as_fd(fd), sig as libc::c_int, 0),
        None => signal::kill(Pid::from_raw(found.pid), sig).map_err(io::Error::from),
    };
    match result {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other,
    }
}

/// Drops the start-up code from gracestop's resident set once the child runs.
///
/// Parsing options, validating input and building clients touch code that the
/// idle supervisor never runs again, and the kernel's fault-around maps whole
/// 64 KiB windows of it. `MADV_DONTNEED` on the read-only, executable mappings of
/// files that hold no private copy of any page (`Anonymous: 0 kB` in smaps, so
/// nothing written is lost) unmaps those pages; they stay in the page cache and
/// fault back in on use. Writable and anonymous mappings are left alone.
pub fn trim_resident_code() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    let mut candidate: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            // A mapping's header: "start-end perms offset dev inode path".
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            candidate = match (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) {
                (Ok(start), Ok(end)) if perms == "r-xp" && path.starts_with('/') => Some((start, end)),
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let (Some((start, end)), Some("0")) = (candidate.take(), fields.next()) {
                // SAFETY: a whole read-only, executable, file-backed mapping of ours
                // with no private page: MADV_DONTNEED only drops page-table entries,
                // and the same bytes fault back in from the file on next access.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                }
            }
        }
    }
}
