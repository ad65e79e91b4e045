//! The OS side of `gracestop run`: subreaper, signal intake through a signalfd,
//! spawning the child with a clean signal state, reaping, finding every
//! descendant, the controlling terminal, and job control.
//!
//! Every catchable signal is blocked from the start. Those gracestop acts on
//! (SIGCHLD, the `--stop-on` set, SIGCONT and the job-control stops) and those
//! that need a look at their origin (the faults and SIGPIPE) are read from one
//! signalfd by the async loop. Every other one is forwarded straight from its
//! signal handler once the child exists: `kill(2)` is async-signal-safe, and
//! forwarding this way costs one signal delivery instead of a trip through the
//! reactor. Forwarded signals go to the child's process group, or to the child
//! alone with `--single-child`. Every intake signal has a handler, so PID 1 of a
//! namespace receives it, and `SigCgt` in `/proc/PID/status` tells the truth.
//!
//! A fault (SEGV, BUS, ILL, FPE, TRAP, ABRT, SYS) that another process sends is
//! forwarded like any signal; one the kernel raises in gracestop is forced
//! through the mask at its default action, so gracestop still crashes on a real
//! fault. Real-time signals (SIGRTMIN..SIGRTMAX), which nix's `Signal` cannot
//! name, are forwarded by the handler; each is queued by the kernel, so none is
//! lost, but a `sigqueue` payload is not carried over. The child gets an empty
//! mask and default dispositions back before exec, except for the signals that
//! were ignored when gracestop started, which stay ignored (as under tini and
//! dumb-init), the stop signal excepted.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::procfs;

/// Signals named after faults. Blocked like every other signal, so one sent with
/// kill(2) waits in the signalfd and is forwarded; one the kernel raises in
/// gracestop itself is forced through at its default action (the kernel unblocks
/// a synchronous fault and resets its handler), so a real crash still crashes.
pub const FAULTS: [Signal; 7] =
    [Signal::SIGABRT, Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL, Signal::SIGFPE, Signal::SIGTRAP, Signal::SIGSYS];

/// Job-control signals that suspend the family and gracestop.
pub const SUSPEND: [Signal; 3] = [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU];

/// Every signal gracestop takes in: all but the two no process can catch.
fn intake_set() -> SigSet {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    set
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The direct child, for the reaper to notice it, and where forwarded signals go:
/// `-pgid` for the child's process group, the child's PID for it alone, 0 once
/// the child is reaped (from then on its PID may name another process).
static CHILD: AtomicI32 = AtomicI32::new(0);
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    // SAFETY: errno is thread-local and valid for the whole handler; it is
    // restored so that the interrupted code never sees kill's or sched_yield's
    // errno. Both are bare system calls, with no lock or state in the C library.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        let to = FORWARD_TO.load(Ordering::Acquire);
        if to != 0 {
            libc::kill(to, sig);
            // The signalled process usually wakes on this CPU: let it run now
            // rather than after gracestop's way back to sleep (the handler's
            // return, the reactor's EINTR, its next wait). Measured: forwarding
            // overhead 56 -> 34 us, tini 51 in the same run.
            libc::sched_yield();
        }
        *errno = saved;
    }
}

/// Forwards `sig` where the handler forwards: the child's group, or the child
/// alone with `--single-child`. False once the child is reaped.
pub fn forward(sig: Signal) -> bool {
    let to = FORWARD_TO.load(Ordering::Acquire);
    if to == 0 {
        return false;
    }
    // Cannot name another process: the target is cleared before the child is
    // reaped, and the child's PID (and so its group id) is held until then.
    let _ = signal::kill(Pid::from_raw(to), sig);
    true
}

/// One signal read from the signalfd.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub signal: Signal,
    /// `si_code`: 0 or below when a process sent it (kill, sigqueue, tgkill),
    /// above 0 when the kernel raised it.
    pub code: i32,
    /// The sender's PID, for a signal a process sent.
    pub sender: u32,
}

impl Arrival {
    /// Whether another process sent this signal with kill(2), sigqueue(3) or
    /// tgkill(2), rather than the kernel raising it or gracestop sending it to
    /// itself (a write to a closed pipe shows up as SIGPIPE from ourselves).
    pub fn sent_by_another(&self) -> bool {
        self.code <= 0 && self.sender != std::process::id()
    }
}

/// gracestop's signal intake: the signalfd for the signals it acts on, and the
/// handlers that forward the rest.
pub struct Intake {
    fd: AsyncFd<SignalFd>,
    forwarded: SigSet,
    ignored: libc::sigset_t,
}

impl Intake {
    /// Waits for signals and returns every one that is pending, in arrival order
    /// (standard signals that arrived twice before a read count once).
    pub async fn next(&self) -> io::Result<Vec<Arrival>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut batch = Vec::new();
            while let Some(info) = self.fd.get_ref().read_signal()? {
                if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                    batch.push(Arrival { signal, code: info.ssi_code, sender: info.ssi_pid });
                }
            }
            guard.clear_ready();
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Starts forwarding to `child` (its process group unless `alone`). Signals
    /// that arrived since [`take_signals`] were held (blocked) and are forwarded
    /// now.
    pub fn forward_to(&self, child: i32, alone: bool) -> io::Result<()> {
        CHILD.store(child, Ordering::Release);
        FORWARD_TO.store(if alone { child } else { -child }, Ordering::Release);
        signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&self.forwarded), None)?;
        Ok(())
    }

    /// The signals that were ignored when gracestop started (`nohup`, a shell's
    /// `&`), which the child inherits ignored.
    pub fn ignored_at_start(&self) -> libc::sigset_t {
        self.ignored
    }
}

/// Takes over signal handling (call before any other thread exists, so every
/// thread inherits the mask): `watched` (plus SIGCHLD, SIGCONT, the job-control
/// stops, the faults and SIGPIPE) through the returned intake, every other
/// catchable signal forwarded once [`Intake::forward_to`] names the child. With
/// `read_all` (`-v`, which logs each forwarded signal) every standard signal
/// comes through the intake, for the loop to forward and log; only the
/// real-time ones are still forwarded by their handler. Must be called inside a
/// tokio runtime.
pub fn take_signals(watched: &[Signal], read_all: bool) -> io::Result<Intake> {
    let all = intake_set();
    let mut read = if read_all { all } else { SigSet::empty() };
    for sig in watched.iter().chain(&FAULTS).chain(&SUSPEND) {
        read.add(*sig);
    }
    for sig in [Signal::SIGCHLD, Signal::SIGCONT, Signal::SIGPIPE] {
        read.add(sig);
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
    let mut ignored = SigSet::empty();
    for sig in all.iter() {
        let action = if read.contains(sig) { &quiet } else { &forward };
        // SAFETY: both handlers are async-signal-safe: one does nothing, the
        // other only loads an atomic and calls kill(2), preserving errno.
        if let Ok(old) = unsafe { signal::sigaction(sig, action) } {
            // Rust's runtime ignores SIGPIPE itself: whether the caller did is lost.
            if old.handler() == SigHandler::SigIgn && sig != Signal::SIGPIPE {
                ignored.add(sig);
            }
        }
    }
    let mut ignored = *ignored.as_ref();
    let forwarded = with_realtime(forwarded, forward_signal, &all, &mut ignored)?;
    let fd = SignalFd::with_flags(&read, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    // SAFETY: the SignalFd moves into the AsyncFd and keeps its descriptor open,
    // unchanged, until the AsyncFd drops.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
    Ok(Intake { fd, forwarded, ignored })
}

/// Installs `handler` for every real-time signal the C library leaves to
/// applications (SIGRTMIN..=SIGRTMAX) and returns `set` with them added; those
/// that were ignored are added to `ignored`. They are already blocked:
/// [`SigSet::all`] holds them.
fn with_realtime(
    set: SigSet,
    handler: extern "C" fn(libc::c_int),
    mask: &SigSet,
    ignored: &mut libc::sigset_t,
) -> io::Result<SigSet> {
    let mut raw = *set.as_ref();
    for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: sigaction gets a fully initialised struct (zeroed, then every
        // field gracestop relies on set) and a signal number in the range the C
        // library reserves for applications; the handler is async-signal-safe
        // (see `forward_signal`). sigaddset writes into our own sets.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as usize;
            action.sa_mask = *mask.as_ref();
            action.sa_flags = libc::SA_RESTART;
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &action, &mut old) != 0 {
                // Taken by someone below us (valgrind keeps one for itself):
                // not ours to forward.
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    continue;
                }
                return Err(io::Error::last_os_error());
            }
            if old.sa_sigaction == libc::SIG_IGN {
                libc::sigaddset(ignored, sig);
            }
            libc::sigaddset(&mut raw, sig);
        }
    }
    // SAFETY: `raw` came from a valid SigSet and was changed only by sigaddset.
    Ok(unsafe { SigSet::from_sigset_t_unchecked(raw) })
}

/// Ends gracestop with `sig` at its default action: for a fault the kernel
/// raised in gracestop, which must crash it (with a core dump where enabled)
/// rather than be forwarded.
pub fn die_of(sig: Signal) -> ! {
    // SAFETY: restoring the default action is always sound; nothing after it
    // relies on the old handler.
    let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    let mut only = SigSet::empty();
    only.add(sig);
    let _ = signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
    let _ = signal::raise(sig);
    std::process::abort()
}

/// Stops gracestop itself (job control: its parent shell sees the job stopped).
/// Returns once something sends SIGCONT. As PID 1 of a namespace the kernel
/// ignores it, and this returns at once.
pub fn stop_self() {
    let _ = signal::kill(nix::unistd::getpid(), Signal::SIGSTOP);
}

/// The signal that stopped our direct child `pid`, if it is stopped and that
/// was not reported yet. Does not reap.
pub fn stopped(pid: i32) -> Option<Signal> {
    match waitid(Id::Pid(Pid::from_raw(pid)), WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG) {
        Ok(WaitStatus::Stopped(_, sig)) => Some(sig),
        _ => None,
    }
}

/// gracestop's controlling terminal, for handing its foreground to the child's
/// process group and taking it back.
pub struct Terminal {
    fd: OwnedFd,
}

impl Terminal {
    /// Opens the controlling terminal, if there is one.
    pub fn open() -> Option<Terminal> {
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = open("/dev/tty", flags, Mode::empty()).ok()?;
        Some(Terminal { fd })
    }

    /// The terminal's foreground process group.
    pub fn foreground(&self) -> Option<i32> {
        nix::unistd::tcgetpgrp(self.fd.as_fd()).ok().map(Pid::as_raw)
    }

    /// Whether gracestop's own process group holds the foreground.
    pub fn is_ours(&self) -> bool {
        self.foreground() == Some(nix::unistd::getpgrp().as_raw())
    }

    /// Makes `pgid` the foreground group. SIGTTOU is blocked in gracestop, so
    /// the kernel allows this even from a background group: callers check
    /// [`Terminal::is_ours`] first where that matters.
    pub fn give_to(&self, pgid: i32) -> io::Result<()> {
        Ok(nix::unistd::tcsetpgrp(self.fd.as_fd(), Pid::from_raw(pgid))?)
    }

    /// Takes the foreground back for gracestop's own group.
    pub fn take_back(&self) -> io::Result<()> {
        self.give_to(nix::unistd::getpgrp().as_raw())
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Moves gracestop to `/`, so that it keeps no filesystem busy, and returns the
/// directory it was in, for the child to start in. None (and no move) when that
/// directory cannot be opened.
pub fn leave_working_directory() -> Option<OwnedFd> {
    let here = open(".", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    nix::unistd::chdir("/").ok()?;
    Some(here)
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
    /// The stop signal: never left ignored in the child.
    pub stop_signal: Signal,
    /// Signals the child starts with ignored (those ignored when gracestop
    /// started); every other one is at its default action.
    pub ignored: libc::sigset_t,
    /// Give the child's new process group this terminal's foreground.
    pub terminal: Option<&'a Terminal>,
    /// The directory the child starts in (gracestop itself has moved to `/`).
    pub cwd: Option<BorrowedFd<'a>>,
    /// Environment variables not to pass on.
    pub env_remove: &'a [OsString],
}

/// Everything the child needs between clone and exec, prepared beforehand: it
/// shares gracestop's memory there and must not allocate.
struct Prepared {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    parent: libc::pid_t,
    death_signal: libc::c_int,
    stop_signal: libc::c_int,
    ignored: libc::sigset_t,
    terminal: Option<RawFd>,
    cwd: Option<RawFd>,
    /// Written by the child if it cannot exec: the errno.
    error: libc::c_int,
}

/// A C string for the child, or the error `Command` gives for a NUL byte.
fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data"))
}

/// Starts the child in its own process group. Must run on the thread that lives
/// as long as gracestop (the parent-death signal is tied to the forking thread),
/// with every signal blocked (as [`take_signals`] leaves them until the child
/// exists).
///
/// The child is created the way `posix_spawn` creates it: `clone` with
/// `CLONE_VM | CLONE_VFORK`, so gracestop's page tables are neither copied nor
/// torn down again at exec, and gracestop resumes once the child has exec'd or
/// failed to. `posix_spawn` itself cannot set the parent-death signal. The
/// program is looked up in `PATH` as `execvp` does (with `execvpe`, given the
/// environment without `env_remove`).
pub fn spawn(spec: &Spawn<'_>) -> io::Result<i32> {
    if spec.argv.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no command"));
    }
    let args = spec.argv.iter().map(|arg| c_string(arg.as_bytes())).collect::<io::Result<Vec<_>>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|arg| arg.as_ptr()).collect();
    argv.push(std::ptr::null());
    let vars = std::env::vars_os()
        .filter(|(name, _)| !spec.env_remove.contains(name))
        .map(|(name, value)| {
            let mut pair = name.into_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            c_string(&pair)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut envp: Vec<*const libc::c_char> = vars.iter().map(|var| var.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut prepared = Prepared {
        program: args[0].as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        parent: std::process::id() as libc::pid_t,
        death_signal: spec.death_signal as libc::c_int,
        stop_signal: spec.stop_signal as libc::c_int,
        ignored: spec.ignored,
        terminal: spec.terminal.map(Terminal::raw),
        cwd: spec.cwd.map(|fd| fd.as_raw_fd()),
        error: 0,
    };
    // The child's stack: execvpe copies argv onto it to run a script through
    // /bin/sh, and needs room for a PATH entry besides (as glibc's posix_spawn).
    // From the heap (16-byte units keep its top aligned): no mapping to make and
    // unmap on the way to the child.
    let size = 32 * 1024 + (argv.len() + 2) * std::mem::size_of::<*const libc::c_char>();
    let mut stack: Vec<u128> = Vec::with_capacity(size.div_ceil(16));
    // SAFETY: `child_main` runs on its own stack (the top of `stack`'s capacity,
    // growing down) in gracestop's memory while gracestop is suspended
    // (CLONE_VFORK), and only reads `prepared` (and the strings it points to,
    // alive until we return), writes its `error`, and makes async-signal-safe
    // calls; every signal is blocked, so no handler of ours runs in it.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.as_mut_ptr().add(stack.capacity()) as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut prepared as *mut Prepared as *mut libc::c_void,
        )
    };
    let clone_error = io::Error::last_os_error();
    // The child has exec'd or exited: its stack is free again.
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: the child is done with `prepared` (exec'd or exited): a plain read.
    let error = unsafe { std::ptr::read_volatile(&prepared.error) };
    if error != 0 {
        // Our own child, exited: reaped here, so the loop never sees it.
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(pid)
}

/// The child between clone and exec: its process group, the terminal, its
/// directory, default signal dispositions (but those ignored when gracestop
/// started), an empty mask, the parent-death signal, then exec. Only
/// async-signal-safe calls, no allocation: it runs in gracestop's memory.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Prepared` that `spawn` keeps alive and does not touch
    // until this child has exec'd or exited (CLONE_VFORK); the calls below are
    // all async-signal-safe and given valid pointers from it.
    unsafe {
        let spec = &mut *(arg as *mut Prepared);
        let fail = |spec: &mut Prepared| -> ! {
            std::ptr::write_volatile(&mut spec.error, *libc::__errno_location());
            libc::_exit(127)
        };
        if libc::setpgid(0, 0) != 0 {
            fail(spec);
        }
        if let Some(fd) = spec.cwd {
            if libc::fchdir(fd) != 0 {
                fail(spec);
            }
        }
        if let Some(fd) = spec.terminal {
            // SIGTTOU is still blocked here, so a background caller is not
            // stopped by the hand-over.
            libc::tcsetpgrp(fd, libc::getpid());
        }
        // Default dispositions before the mask opens, as posix_spawn does: exec
        // would reset gracestop's handlers anyway, but a signal arriving between
        // the unblocking and the exec (a Ctrl-C once the child holds the
        // terminal) must act on the child, not run one of gracestop's handlers
        // here. Those ignored at start stay ignored.
        for sig in 1..=libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let keep_ignored = sig != spec.stop_signal && libc::sigismember(&spec.ignored, sig) == 1;
            libc::signal(sig, if keep_ignored { libc::SIG_IGN } else { libc::SIG_DFL });
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            fail(spec);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, spec.death_signal as libc::c_ulong, 0, 0, 0) != 0 {
            fail(spec);
        }
        // gracestop may have died before the prctl: then nobody would tell us.
        if libc::getppid() != spec.parent {
            libc::kill(libc::getpid(), spec.death_signal);
        }
        libc::execvpe(spec.program, spec.argv, spec.envp);
        fail(spec)
    }
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
        if pid.as_raw() == CHILD.load(Ordering::Acquire) {
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

/// Set by [`trim_when_idle`]; taken by [`before_park`].
static TRIM_PENDING: AtomicBool = AtomicBool::new(false);

/// Asks for [`trim_resident_code`] the next time the runtime goes idle (see
/// [`before_park`]): then as little as possible runs after it and faults pages
/// back in before the supervisor sleeps.
pub fn trim_when_idle() {
    TRIM_PENDING.store(true, Ordering::Relaxed);
}

/// The runtime's hook just before it parks the thread to wait for events.
pub fn before_park() {
    if TRIM_PENDING.swap(false, Ordering::Relaxed) {
        trim_resident_code();
    }
}

/// Drops the start-up code and data from gracestop's resident set once the
/// child runs, and gives the heap's free pages back.
///
/// Parsing options, validating input and building clients touch code and
/// read-only data that the idle supervisor never uses again, and the kernel's
/// fault-around maps whole 64 KiB windows of them. The candidates are the
/// read-only `PT_LOAD` segments of every loaded ELF object (gracestop itself, the
/// C library, the loader), found with `dl_iterate_phdr` without any system call;
/// writable segments, RELRO included (it lies in a writable segment), are never
/// candidates. A segment is released with `MADV_DONTNEED` only if
/// `/proc/self/pagemap` shows none of its pages as a private copy (a text
/// relocation, a debugger's breakpoint): then every resident page is the file's
/// own, still in the page cache, and faults back in unchanged on use.
pub fn trim_resident_code() {
    // First, so that the allocator's code is dropped with the rest.
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok();
    let mut ranges = [(0, 0); 64];
    let found = read_only_segments(&mut ranges);
    for &(start, end) in &ranges[..found] {
        if pagemap.as_ref().and_then(|pagemap| only_file_pages(pagemap, start, end)) == Some(true) {
            // SAFETY: a read-only segment of a loaded object, whole pages only, whose
            // resident pages are all the file's (checked just above): MADV_DONTNEED
            // only drops page-table entries, and the same bytes fault back in from
            // the file on the next access.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    }
}

/// Fills `ranges` with the whole pages of every read-only, file-backed
/// `PT_LOAD` segment of the loaded objects, the kernel's vDSO excepted; returns
/// how many it found (at most `ranges.len()`).
fn read_only_segments(ranges: &mut [(usize, usize)]) -> usize {
    struct Found<'a> {
        page: usize,
        vdso: usize,
        ranges: &'a mut [(usize, usize)],
        count: usize,
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the
        // call, whose dlpi_phdr points to dlpi_phnum program headers, and `data`
        // is the `Found` that `read_only_segments` lent it.
        let (info, found) = unsafe { (&*info, &mut *(data as *mut Found)) };
        let headers = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: see above.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let bias = info.dlpi_addr as usize;
        let segments = headers.iter().filter(|h| h.p_type == libc::PT_LOAD).map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            (h, start, start.wrapping_add(h.p_filesz as usize))
        });
        if found.vdso != 0 && segments.clone().any(|(_, start, end)| (start..end).contains(&found.vdso)) {
            return 0;
        }
        for (_, start, end) in segments.filter(|(h, _, _)| h.p_flags & libc::PF_W == 0) {
            // Inward to whole pages: a page shared with a neighbouring segment stays.
            let (start, end) = (start.next_multiple_of(found.page), end / found.page * found.page);
            if start < end && found.count < found.ranges.len() {
                found.ranges[found.count] = (start, end);
                found.count += 1;
            }
        }
        0
    }
    // SAFETY: getauxval has no preconditions; 0 means absent.
    let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    let mut found = Found { page: page_size(), vdso, ranges, count: 0 };
    // SAFETY: the callback only reads what dl_iterate_phdr hands it and writes
    // to `found`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut found as *mut Found as *mut libc::c_void) };
    found.count
}

/// Whether every resident page in `start..end` is a file page (no private or
/// swapped copy), from `/proc/self/pagemap`: None when it cannot be read.
fn only_file_pages(pagemap: &std::fs::File, start: usize, end: usize) -> Option<bool> {
    use std::os::unix::fs::FileExt;
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE_OR_SHARED: u64 = 1 << 61;
    let page = page_size();
    let mut buf = [0u8; 8 * 512];
    let mut at = start;
    while at < end {
        let pages = ((end - at) / page).min(512);
        let bytes = &mut buf[..8 * pages];
        pagemap.read_exact_at(bytes, (at / page * 8) as u64).ok()?;
        for entry in bytes.chunks_exact(8) {
            let entry = u64::from_ne_bytes(entry.try_into().ok()?);
            if entry & SWAPPED != 0 || (entry & PRESENT != 0 && entry & FILE_OR_SHARED == 0) {
                return Some(false);
            }
        }
        at += pages * page;
    }
    Some(true)
}
