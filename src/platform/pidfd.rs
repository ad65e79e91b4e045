//! Thin wrappers over the pidfd system calls (Linux ≥ 5.3), which `nix` does not
//! expose. A pidfd names one process for good: signals sent through it can never
//! reach a process that later reuses the PID, and it turns readable when the
//! process exits (or becomes a zombie).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a PID and a flags word and returns a new file
    // descriptor or -1; no memory is passed to the kernel.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the return value is a freshly opened descriptor that
    // nothing else owns, so handing its ownership to OwnedFd is sound.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

pub fn send_signal(fd: BorrowedFd<'_>, signal: libc::c_int, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed for the duration of the call; a null
    // siginfo pointer asks the kernel to fill it in as kill(2) would.
    let ret = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), flags)
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the process behind `fd` has already exited (is a zombie or gone),
/// without blocking.
pub fn has_exited(fd: BorrowedFd<'_>) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::ZERO).map_err(io::Error::from)?;
    Ok(n > 0)
}
