//! A process pinned for signalling and awaiting.
//!
//! Pinning order is what makes targeting race-free: open the pidfd first, then
//! the `/proc/PID` directory, read the identity through that directory, then
//! check through the pidfd that the process is still alive. A live pidfd process
//! cannot have given its PID away, so the facts read in between belong to it.
//! From then on every signal goes through the pidfd.
//!
//! Where the kernel refuses pidfds (ENOSYS on old kernels, EPERM under some
//! seccomp profiles) the [`Watch::Poll`] fallback keeps the open `/proc/PID`
//! directory instead: reads through it fail once the pinned process is reaped,
//! even if its PID was reused, so "is it still ours?" has an exact answer. What
//! remains is the gap between that answer and `kill(2)`: the process would have
//! to exit, be reaped by its parent and have its PID handed to a new process
//! within those few microseconds. No interface without pidfds closes that gap.
//!
//! A thread id is not a process: pinning one says which process it belongs to.
//! A process whose main thread has exited (`pthread_exit`) while other threads
//! run shows as a zombie in `/proc/PID/stat` but is alive, and is pinned as such.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::pidfd;
use super::procfs::{ProcDir, Stat, Status};

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
    /// The PID is a thread of the process `of`, not a process.
    Thread {
        of: i32,
    },
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
    proc: ProcDir,
    watch: Watch,
}

/// Whether a process, as its stat and status show it, has exited.
fn exited(stat: &Stat, status: &Status) -> bool {
    stat.is_zombie() && !status.has_live_threads()
}

/// Pins `pid`. Must be called inside a tokio runtime (the pidfd is registered with
/// its reactor).
pub fn pin(pid: i32, mode: WatchMode) -> io::Result<Pinned> {
    // Set when pidfd_open refused the PID as no process (a thread id): /proc
    // then says whose thread it is.
    let mut not_a_process = None;
    let fd = match mode {
        WatchMode::Poll => None,
        WatchMode::Auto => match pidfd::open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Ok(Pinned::NotRunning(NotRunning::NoSuchProcess))
            }
            // A thread id: EINVAL, or ENOENT on newer kernels.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {
                not_a_process = Some(e);
                None
            }
            // No pidfd here: ENOSYS on old kernels, EPERM from some seccomp profiles.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                crate::log::emit(crate::event::Event::PidfdUnavailable { pid, error: e.to_string() });
                None
            }
            Err(e) => return Err(e),
        },
    };
    let proc = match ProcDir::open(pid) {
        Ok(proc) => proc,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) => {
            return Ok(Pinned::NotRunning(NotRunning::NoSuchProcess))
        }
        Err(e) => return Err(e),
    };
    let facts = proc.status().and_then(|status| Ok((status, proc.stat()?)));
    let (status, identity) = match facts {
        Ok(facts) => facts,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Pinned::NotRunning(NotRunning::NoSuchProcess)),
        Err(e) => return Err(e),
    };
    if status.tgid != pid {
        return Ok(Pinned::Thread { of: status.tgid });
    }
    if let Some(e) = not_a_process {
        // /proc shows a process after all: the thread has gone and its id was
        // reused in between. Never fall back to polling on such a fault.
        return Err(io::Error::new(e.kind(), format!("the kernel refused a pidfd for {pid}: {e}")));
    }
    if exited(&identity, &status) {
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
    Ok(Pinned::Running(Process { pid, identity, proc, watch }))
}

impl Process {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/PID/stat` as read when the process was pinned.
    pub fn identity(&self) -> &Stat {
        &self.identity
    }

    /// `/proc/PID/status` now, read through the pinned directory: an error
    /// (NotFound) once the process is gone, never another process's.
    pub fn status(&self) -> io::Result<Status> {
        self.proc.status()
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

    /// Polling fallback: gone when the pinned `/proc/PID` directory no longer
    /// answers (the process was reaped) or shows it exited (a zombie whose
    /// threads have all ended).
    fn gone_by_proc(&self) -> bool {
        match self.proc.stat() {
            Ok(now) if now.is_zombie() => self.proc.status().map_or(true, |status| !status.has_live_threads()),
            Ok(_) => false,
            Err(_) => true,
        }
    }
}
