//! Reading process facts from `/proc`: identity (command name, state, process
//! group, session, start time), owners, thread counts and signal dispositions.
//! Parsing is kept in pure functions so that odd command names are unit-tested
//! without real processes.
//!
//! A [`ProcDir`] is an open `/proc/PID` directory. Reads through it name the
//! process that owned the PID when the directory was opened, for good: once that
//! process is reaped they fail with ESRCH, even if the PID has been reused.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::time::{Duration, SystemTime};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

/// The fields of `/proc/PID/stat` that gracestop uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The command name (`comm`), at most 15 bytes, possibly with spaces or parentheses.
    pub comm: String,
    /// The state letter: `R`, `S`, `D`, `T`, `Z`, …
    pub state: char,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The fields of `/proc/PID/status` that gracestop uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Thread group id: the process a thread belongs to (equal to the PID for a
    /// process, another PID for one of its threads).
    pub tgid: i32,
    /// Threads in the thread group.
    pub threads: u32,
    /// Real user id.
    pub uid: u32,
    /// Saved set-user-id. With the real id, it decides who may signal the
    /// process (`man 2 kill`).
    pub saved_uid: u32,
    /// Bit `n-1` set when signal `n` has a handler installed.
    pub sig_caught: u64,
    /// Bit `n-1` set when signal `n` is ignored.
    pub sig_ignored: u64,
}

impl Status {
    /// Whether a process whose stat says "zombie" has in fact exited: its main
    /// thread may have ended (`pthread_exit`) while other threads still run, and
    /// then the process is alive.
    pub fn has_live_threads(&self) -> bool {
        self.threads > 1
    }

    /// Whether user `uid` may signal this process: kill(2) lets a sender whose
    /// real or effective id matches the target's real or saved id.
    pub fn signallable_by(&self, uid: u32) -> bool {
        uid == 0 || self.uid == uid || self.saved_uid == uid
    }
}

/// An open `/proc/PID` directory (see the module header).
pub struct ProcDir {
    pid: i32,
    dir: OwnedFd,
}

/// Reads at most this much of a `/proc` file: a status file is about 1.5 KiB.
const PROC_FILE_LIMIT: u64 = 64 * 1024;

impl ProcDir {
    /// Opens `/proc/PID`; also works for thread ids, which `/proc` does not list.
    pub fn open(pid: i32) -> io::Result<ProcDir> {
        let dir = nix::fcntl::open(
            format!("/proc/{pid}").as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(ProcDir { pid, dir })
    }

    /// Reads one file of this process. NotFound once the process is gone (the
    /// kernel says ESRCH then).
    fn read(&self, name: &str) -> io::Result<String> {
        let fd =
            openat(&self.dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(gone_is_not_found)?;
        let mut text = String::new();
        File::from(fd).take(PROC_FILE_LIMIT).read_to_string(&mut text).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => io::Error::from(io::ErrorKind::NotFound),
            _ => e,
        })?;
        Ok(text)
    }

    pub fn stat(&self) -> io::Result<Stat> {
        let text = self.read("stat")?;
        parse_stat(&text).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("unexpected /proc/{}/stat: {text:?}", self.pid))
        })
    }

    pub fn status(&self) -> io::Result<Status> {
        let text = self.read("status")?;
        parse_status(&text)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unexpected /proc/{}/status", self.pid)))
    }
}

fn gone_is_not_found(errno: nix::errno::Errno) -> io::Error {
    match errno {
        nix::errno::Errno::ESRCH | nix::errno::Errno::ENOENT => io::Error::from(io::ErrorKind::NotFound),
        other => io::Error::from(other),
    }
}

pub fn stat(pid: i32) -> io::Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unexpected /proc/{pid}/stat: {text:?}")))
}

/// Every process in `/proc` with its stat, by PID order. Processes that vanish
/// while the directory is read are left out.
pub fn all() -> Vec<(i32, Stat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut all: Vec<(i32, Stat)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid).ok()?)))
        .collect();
    all.sort_by_key(|(pid, _)| *pid);
    all
}

/// Parses `/proc/PID/stat`. The command name sits in parentheses and may itself
/// contain spaces and `)`, so the fixed fields are read after the *last* `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After ") ": field 3 (state) is index 0, 4 (ppid) index 1, 5 (pgrp) index 2,
    // 6 (session) index 3, 22 (starttime) index 19.
    let rest: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    let pgrp = rest.get(2)?.parse().ok()?;
    let session = rest.get(3)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().ok()?;
    Some(Stat { comm, state, ppid, pgrp, session, start_ticks })
}

pub fn parse_status(text: &str) -> Option<Status> {
    let mut status = Status::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key {
            "Tgid" => {
                status.tgid = value.parse().ok()?;
                seen += 1;
            }
            "Threads" => {
                status.threads = value.parse().ok()?;
                seen += 1;
            }
            "Uid" => {
                // Real, effective, saved, filesystem.
                let ids: Vec<u32> = value.split_ascii_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
                status.uid = *ids.first()?;
                status.saved_uid = *ids.get(2)?;
                seen += 1;
            }
            "SigCgt" => {
                status.sig_caught = u64::from_str_radix(value, 16).ok()?;
                seen += 1;
            }
            "SigIgn" => {
                status.sig_ignored = u64::from_str_radix(value, 16).ok()?;
                seen += 1;
            }
            _ => {}
        }
    }
    (seen == 5).then_some(status)
}

/// Whether bit `signal - 1` is set in a `/proc` signal mask.
pub fn mask_has(mask: u64, signal: i32) -> bool {
    (1..=64).contains(&signal) && mask & (1u64 << (signal - 1)) != 0
}

/// Wall-clock start time of a process. `btime` has one-second granularity, so the
/// result may be up to about a second early; callers allow slack for that.
pub fn start_time(stat: &Stat) -> io::Result<SystemTime> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let btime =
        parse_btime(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no btime in /proc/stat"))?;
    Ok(SystemTime::UNIX_EPOCH
        + Duration::from_secs(btime)
        + ticks_to_duration(stat.start_ticks, clock_ticks_per_second()))
}

pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    Duration::from_secs(ticks / per_second) + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 150 0 0 0 1 0 0 0 20 0 1 0 98765 2412544 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn stat_parses_after_the_last_parenthesis() {
        let stat = parse_stat(STAT).unwrap();
        assert_eq!(
            stat,
            Stat { comm: "my (odd) app".into(), state: 'S', ppid: 1, pgrp: 4242, session: 4242, start_ticks: 98765 }
        );
        assert!(!stat.is_zombie());
    }

    #[test]
    fn stat_of_a_zombie_says_so() {
        let stat = parse_stat(&STAT.replacen(") S ", ") Z ", 1)).unwrap();
        assert!(stat.is_zombie());
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert_eq!(parse_stat("4242 (app) S 1 4242"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn status_reads_uid_and_signal_masks() {
        let text = "Name:\tjava\nTgid:\t4242\nUid:\t1000\t0\t1001\t0\nSigIgn:\t0000000000000001\nSigCgt:\t0000000000004002\nThreads:\t3\n";
        let status = parse_status(text).unwrap();
        assert_eq!((status.tgid, status.threads, status.uid, status.saved_uid), (4242, 3, 1000, 1001));
        assert!(status.has_live_threads());
        assert!(status.signallable_by(1000) && status.signallable_by(1001) && status.signallable_by(0));
        assert!(!status.signallable_by(1002));
        assert_eq!(parse_status("Uid:\t1000\n"), None, "a truncated status is refused");
        assert!(mask_has(status.sig_caught, 15));
        assert!(mask_has(status.sig_caught, 2));
        assert!(!mask_has(status.sig_caught, 3));
        assert!(mask_has(status.sig_ignored, 1));
        assert!(!mask_has(0, 0));
    }

    #[test]
    fn btime_and_ticks() {
        assert_eq!(parse_btime("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), Some(1_700_000_000));
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
    }
}
