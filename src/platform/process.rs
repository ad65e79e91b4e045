//! A process pinned for signalling and awaiting.
//!
//! Pinning order is what makes targeting race-free: open the pidfd first, read the
//! identity from `/proc` second, then check through the pidfd that the process is
//! still alive. A live pidfd process cannot have given its PID away, so the facts
//! read in between belong to it. From then on every signal goes through the pidfd.
//!
//! Where the kernel refuses pidfds (ENOSYS on old kernels, EPERM under some
//! seccomp profiles) the [`Watch::Poll`] fallback checks `/proc` with a short
//! backoff, comparing the start time so that a reused PID counts as "gone".

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::pidfd;
use super::procfs::{self, Stat};

/// How exits are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    /// pidfd where the kernel allows it, polling otherwise.
    Auto,
    /// Always poll `/proc` (for kernels or sandboxes without pidfd, and to test that path).
    Poll,
}

/// Why a PID does not name a running process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRunning {
    NoSuchProcess,
    Zombie,
}

/// The result of pinning a PID.
pub enum Pinned {
    Running(Process),
    NotRunning(NotRunning),
}

/// What happened to a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The process had already exited; nothing was signalled.
    Gone,
}

enum Watch {
    Pidfd(AsyncFd<OwnedFd>),
    Poll,
}

/// A running process, pinned: it can be signalled and awaited but never confused
/// with a later process that reuses its PID.
pub struct Process {
    pid: i32,
    identity: Stat,
    watch: Watch,
}

/// Pins `pid`. Must be called inside a tokio runtime (the pidfd is registered with
/// its reactor).
pub fn pin(pid: i32, mode: WatchMode) -> io::Result<Pinned> {
    let fd = match mode {
        WatchMode::Poll => None,
        WatchMode::Auto => match pidfd::open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Ok(Pinned::NotRunning(NotRunning::NoSuchProcess))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{pid} is not a process id (a thread id?)"),
                ))
            }
            // No pidfd here: ENOSYS on old kernels, EPERM from some seccomp profiles.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                crate::log::debug("plan", format_args!("pidfd unavailable ({e}); polling /proc for {pid}"));
                None
            }
            Err(e) => return Err(e),
        },
    };
    let identity = match procfs::stat(pid) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Pinned::NotRunning(NotRunning::NoSuchProcess)),
        Err(e) => return Err(e),
    };
    if identity.is_zombie() {
        return Ok(Pinned::NotRunning(NotRunning::Zombie));
    }
    let watch = match fd {
        Some(fd) => {
            // Still alive after /proc was read: the identity above is this process's.
            if pidfd::has_exited(fd.as_fd())? {
                return Ok(Pinned::NotRunning(NotRunning::NoSuchProcess));
            }
            // SAFETY: the OwnedFd moves into the AsyncFd and stays open, naming the
            // same pidfd, until the AsyncFd drops; nothing else closes it.
            Watch::Pidfd(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
        }
        None => Watch::Poll,
    };
    Ok(Pinned::Running(Process { pid, identity, watch }))
}

impl Process {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/PID/stat` as read when the process was pinned.
    pub fn identity(&self) -> &Stat {
        &self.identity
    }

    /// Whether exits are detected through a pidfd (otherwise by polling).
    pub fn uses_pidfd(&self) -> bool {
        matches!(self.watch, Watch::Pidfd(_))
    }

    /// Checks that we may signal the process (signal 0), without affecting it.
    pub fn probe(&self) -> io::Result<Delivery> {
        self.send(None)
    }

    pub fn signal(&self, signal: Signal) -> io::Result<Delivery> {
        self.send(Some(signal))
    }

    fn send(&self, signal: Option<Signal>) -> io::Result<Delivery> {
        let raw = signal.map_or(0, |s| s as libc::c_int);
        let result = match &self.watch {
            Watch::Pidfd(fd) => pidfd::send_signal(fd.as_fd(), raw, 0),
            Watch::Poll => {
                if self.gone_by_proc() {
                    return Ok(Delivery::Gone);
                }
                nix::sys::signal::kill(Pid::from_raw(self.pid), signal).map_err(io::Error::from)
            }
        };
        match result {
            Ok(()) => Ok(Delivery::Sent),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(Delivery::Gone),
            Err(e) => Err(e),
        }
    }

    /// Resolves once the process has exited (a zombie counts). Cancel-safe and
    /// callable any number of times.
    pub async fn exited(&self) {
        match &self.watch {
            Watch::Pidfd(fd) => {
                // Readiness is never cleared: once exited, the pidfd stays readable.
                if let Ok(mut guard) = fd.readable().await {
                    guard.retain_ready();
                }
            }
            Watch::Poll => {
                // Fallback only: back off from 1 ms to at most 10 ms between checks.
                let mut pause = Duration::from_millis(1);
                while !self.gone_by_proc() {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    /// Polling fallback: gone when `/proc/PID` is missing, a zombie, or names a
    /// process with another start time (the PID was reused).
    fn gone_by_proc(&self) -> bool {
        match procfs::stat(self.pid) {
            Ok(now) => now.is_zombie() || now.start_ticks != self.identity.start_ticks,
            Err(_) => true,
        }
    }
}
