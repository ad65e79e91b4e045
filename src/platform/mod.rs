//! The platform layer: the only place in gracestop that makes raw OS calls.
//!
//! It owns pidfds (`pidfd_open`, `pidfd_send_signal`), `/proc` parsing, the
//! fallback that polls where the kernel has no pidfd, the careful,
//! component-by-component opening of files whose paths others may control, and
//! bounded, non-blocking reads of the files a user names. Everything above it
//! speaks in terms of a pinned [`Process`] and never sees a bare PID it could
//! signal by mistake. Policy (which signal, when, how long to wait) lives elsewhere.

pub mod file;
mod pidfd;
mod process;
pub mod procfs;
pub mod supervise;
pub mod timer;
pub mod walk;

pub use process::{pin, Delivery, NotRunning, Pinned, Process, WatchMode};

/// Name of a user id, or the bare number when the user database has no entry.
pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// What Rust's runtime start-up does that gracestop relies on, for a binary that
/// starts from the C entry point: descriptors 0, 1 and 2 are open (on
/// `/dev/null` where they were closed, so that no file gracestop opens later
/// takes their place and receives its log lines), and SIGPIPE is ignored (a
/// write to a closed pipe fails with EPIPE instead of killing gracestop). A
/// process that cannot even be given `/dev/null` aborts, as under Rust's.
pub fn start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: poll reads and writes the three pollfd structs it is given;
    // fcntl(F_GETFD), open and abort have no memory preconditions; setting
    // SIGPIPE to SIG_IGN installs no handler of ours.
    unsafe {
        let devnull = || {
            if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) == -1 {
                libc::abort();
            }
        };
        loop {
            if libc::poll(fds.as_mut_ptr(), 3, 0) != -1 {
                for pfd in &fds {
                    if pfd.revents & libc::POLLNVAL != 0 {
                        devnull();
                    }
                }
                break;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                // poll itself may be refused (a low RLIMIT_NOFILE): one by one.
                Some(libc::EINVAL | libc::EAGAIN | libc::ENOMEM) => {
                    for fd in 0..3 {
                        if libc::fcntl(fd, libc::F_GETFD) == -1
                            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                        {
                            devnull();
                        }
                    }
                    break;
                }
                _ => libc::abort(),
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Blocks every signal on the calling thread. For helper threads: signals then
/// go to the main thread, which handles or forwards them.
pub fn block_signals_on_this_thread() {
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&nix::sys::signal::SigSet::all()),
        None,
    );
}

/// gracestop's own real and effective user ids.
pub fn own_uids() -> [u32; 2] {
    [nix::unistd::getuid().as_raw(), nix::unistd::geteuid().as_raw()]
}

/// Name of a group id, or the bare number when the group database has no entry.
pub fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(group)) => format!("{} (gid {gid})", group.name),
        _ => format!("gid {gid}"),
    }
}
