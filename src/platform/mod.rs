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
