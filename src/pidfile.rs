//! Pidfiles: reading one without being steered by whoever controls it, and
//! deciding what it may name (DESIGN.md §4, §4a; the README's SECURITY section).
//!
//! The rule: no user who could not signal a process may aim gracestop at it
//! through a pidfile. Whoever owns the file, or a directory or symlink on its
//! path, could have written or replaced it, so each of them *controls* it. The
//! caller (its real or effective user) and root are trusted; any other
//! controller U limits the pidfile to processes U could signal anyway. A pidfile
//! that anyone, or a group other than root's, may write, or that sits in such a
//! directory without the sticky bit, is refused, as is one that two untrusted
//! users control. Only a regular file is read, never blocking and at most
//! [`MAX_SIZE`] bytes.
//!
//! Freshness is judged here too: a process that started after the pidfile was
//! last written cannot be the one the file was written for.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use crate::platform::procfs::Status;
use crate::platform::walk::{self, End, Kind, Step};
use crate::platform::{own_uids, user_name};

/// The largest pidfile read. One PID and a newline take at most 11 bytes; the
/// rest is room for white space.
pub const MAX_SIZE: u64 = 128;

/// Clock slack when comparing a process's start time with its pidfile's mtime:
/// `btime` has one-second granularity and file systems round timestamps.
pub const STALE_SLACK: Duration = Duration::from_secs(2);

/// Which processes a pidfile may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    /// Root or gracestop's caller controls it alone: any process.
    Any,
    /// Another user controls it: only processes that user may signal.
    User { uid: u32, because: String },
}

impl Authority {
    /// Whether the pidfile may name the process whose status is `status`.
    pub fn permits(&self, status: &Status) -> bool {
        match self {
            Authority::Any => true,
            Authority::User { uid, .. } => status.signallable_by(*uid),
        }
    }

    /// Why a process is refused: one line naming the rule.
    pub fn refusal(&self, shown: &str, target: &str, owner: u32) -> String {
        match self {
            Authority::Any => String::new(),
            Authority::User { uid, because } => format!(
                "refusing pidfile {shown}: {because}, and {} could not signal {target}, which belongs to {} \
                 (rule: a pidfile another user controls names only that user's processes)",
                user_name(*uid),
                user_name(owner)
            ),
        }
    }
}

/// A pidfile's content and what it may name.
#[derive(Debug)]
pub struct Pidfile {
    pub pid: i32,
    /// Last modification time.
    pub written: SystemTime,
    pub authority: Authority,
}

/// The outcome of reading a pidfile.
#[derive(Debug)]
pub enum Found {
    /// It does not exist: nothing runs. The path says where the walk stopped.
    Missing(String),
    Pidfile(Pidfile),
}

/// How a process's start time compares with its pidfile's mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Started this long after the file was written: not the file's process.
    Stale(Duration),
    /// The file was written this far in the future (a clock step, or a touched
    /// file): it cannot prove that its process is the one that wrote it.
    Future(Duration),
}

impl Pidfile {
    pub fn freshness(&self, started: SystemTime, now: SystemTime) -> Freshness {
        if let Ok(ahead) = self.written.duration_since(now) {
            if ahead > STALE_SLACK {
                return Freshness::Future(ahead);
            }
        }
        match started.duration_since(self.written) {
            Ok(after) if after > STALE_SLACK => Freshness::Stale(after),
            _ => Freshness::Fresh,
        }
    }
}

/// Who may write or replace the pidfile, besides root and the caller.
struct Controllers {
    trusted: [u32; 2],
    untrusted: Vec<(u32, String)>,
}

impl Controllers {
    fn add(&mut self, uid: u32, because: impl FnOnce() -> String) {
        if uid != 0 && !self.trusted.contains(&uid) && self.untrusted.iter().all(|(known, _)| *known != uid) {
            self.untrusted.push((uid, because()));
        }
    }
}

/// Who besides the owner may write an entry with these bits: "anyone", "group
/// G", or nobody. Group root counts as root.
fn writers(step: &Step) -> Option<String> {
    if step.mode & 0o002 != 0 {
        Some("anyone".to_string())
    } else if step.mode & 0o020 != 0 && step.gid != 0 {
        Some(format!("group {}", crate::platform::group_name(step.gid)))
    } else {
        None
    }
}

/// Applies the rule to a walk's steps: the authority, or a refusal.
fn authority(shown: &str, steps: &[Step]) -> Result<Authority> {
    let mut controllers = Controllers { trusted: own_uids(), untrusted: Vec::new() };
    for step in steps {
        let at = step.path.display();
        match step.kind {
            Kind::Directory => {
                if let Some(who) = writers(step).filter(|_| step.mode & 0o1000 == 0) {
                    bail!(
                        "refusing pidfile {shown}: {who} may write directory {at} (mode {:04o}, no sticky bit) and \
                         so replace the pidfile (rule: no directory on a pidfile's path may be writable by others)",
                        step.mode
                    );
                }
                controllers.add(step.uid, || format!("directory {at} belongs to {}", user_name(step.uid)));
            }
            Kind::Symlink => controllers.add(step.uid, || format!("symlink {at} belongs to {}", user_name(step.uid))),
            _ => {
                if let Some(who) = writers(step) {
                    bail!(
                        "refusing pidfile {shown}: {who} may write it (mode {:04o}), so anyone could aim gracestop at \
                         any process (rule: a pidfile must not be writable by others)",
                        step.mode
                    );
                }
                controllers.add(step.uid, || format!("{at} belongs to {}", user_name(step.uid)));
            }
        }
    }
    match controllers.untrusted.as_slice() {
        [] => Ok(Authority::Any),
        [(uid, because)] => Ok(Authority::User { uid: *uid, because: because.clone() }),
        [(_, first), (_, second), ..] => bail!(
            "refusing pidfile {shown}: several users control it ({first}; {second}) \
             (rule: at most one user other than root and the caller may control a pidfile)"
        ),
    }
}

/// A pidfile opened under the rule, not read yet.
struct Opened {
    file: std::fs::File,
    size: u64,
    written: SystemTime,
    authority: Authority,
}

/// Walks to the pidfile and applies the rule. `Ok(Err(at))` when it is
/// missing, with the path where the walk stopped.
fn open(path: &Path, shown: &str) -> Result<Result<Opened, String>> {
    let walked = walk::open_regular(path).with_context(|| format!("cannot read pidfile {shown}"))?;
    let (file, size, written) = match walked.end {
        End::Missing(at) => return Ok(Err(at.display().to_string())),
        End::NotRegular => {
            let kind = walked.steps.last().map_or(Kind::Unknown, |s| s.kind);
            bail!("refusing pidfile {shown}: it is {}, not a regular file", kind.describe());
        }
        End::Opened { file, size, modified } => (file, size, modified),
    };
    let authority = authority(shown, &walked.steps)?;
    Ok(Ok(Opened { file, size, written, authority }))
}

/// The authority of an existing pidfile, for `run --pidfile` to check that
/// what it wrote is a pidfile `gracestop stop` will accept.
pub fn authority_of(path: &Path) -> Result<Authority> {
    let shown = path.display().to_string();
    match open(path, &shown)? {
        Ok(opened) => Ok(opened.authority),
        Err(at) => bail!("pidfile {shown} vanished ({at} is missing)"),
    }
}

/// Reads the pidfile at `path` under the rule. Errors are refusals and
/// unreadable or malformed files (exit 1).
pub fn read(path: &Path) -> Result<Found> {
    let shown = path.display().to_string();
    let Opened { file, size, written, authority } = match open(path, &shown)? {
        Ok(opened) => opened,
        Err(at) => return Ok(Found::Missing(at)),
    };
    let bytes = crate::platform::file::read_bounded(file, size, MAX_SIZE)
        .with_context(|| format!("cannot read pidfile {shown}"))?;
    let pid = parse(&bytes).map_err(|why| anyhow::anyhow!("pidfile {shown} {why}"))?;
    Ok(Found::Pidfile(Pidfile { pid, written, authority }))
}

/// A pidfile holds one decimal PID, optionally surrounded by white space. The
/// error quotes what the file holds (cut to a readable length).
pub fn parse(bytes: &[u8]) -> Result<i32, String> {
    let quoted = || {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
        if bytes.len() > 40 {
            format!("{text:?}…")
        } else {
            format!("{text:?}")
        }
    };
    let text = std::str::from_utf8(bytes).map_err(|_| format!("is not text: {}", quoted()))?.trim();
    if text.is_empty() {
        return Err("is empty".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) || bytes.len() > 32 {
        return Err(format!("does not hold one decimal PID: {}", quoted()));
    }
    let number: i64 = text.parse().map_err(|_| format!("holds a PID out of range: {}", quoted()))?;
    crate::config::check_pid(number).map_err(|why| format!("holds a refused PID: {why}"))
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = |d: &Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        match self {
            Freshness::Fresh => write!(f, "fresh"),
            Freshness::Stale(after) => write!(f, "its process started {} after the file was written", whole(after)),
            Freshness::Future(ahead) => write!(f, "it was last written {} in the future", whole(ahead)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn pidfile_contents() {
        assert_eq!(parse(b"4242\n"), Ok(4242));
        assert_eq!(parse(b"  4242  "), Ok(4242));
        assert_eq!(parse(b""), Err("is empty".into()));
        assert_eq!(parse(b"\n"), Err("is empty".into()));
        assert!(parse(b"abc").unwrap_err().contains("\"abc\""));
        assert!(parse(b"42 43").is_err());
        assert!(parse(b"-1").unwrap_err().contains("does not hold"));
        assert!(parse(b"1").unwrap_err().contains("refused"));
        assert!(parse(b"0").unwrap_err().contains("refused"));
        assert!(parse(b"99999999999999").unwrap_err().contains("out of range"));
        assert!(parse(&[0xff, 0x00, 0x12]).unwrap_err().contains("not text"));
        let long = "9".repeat(100);
        assert!(parse(long.as_bytes()).unwrap_err().ends_with('…'));
    }

    fn pidfile(written: SystemTime) -> Pidfile {
        Pidfile { pid: 42, written, authority: Authority::Any }
    }

    #[test]
    fn staleness_allows_clock_slack_and_refuses_the_future() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000);
        let written = now - Duration::from_secs(600);
        let file = pidfile(written);
        assert_eq!(file.freshness(written - Duration::from_secs(60), now), Freshness::Fresh, "older process");
        assert_eq!(file.freshness(written + Duration::from_secs(1), now), Freshness::Fresh, "within slack");
        assert_eq!(file.freshness(written + Duration::from_secs(3), now), Freshness::Stale(Duration::from_secs(3)));
        let ahead = pidfile(now + Duration::from_secs(3600));
        assert_eq!(ahead.freshness(now - Duration::from_secs(60), now), Freshness::Future(Duration::from_secs(3600)));
        let barely = pidfile(now + Duration::from_secs(1));
        assert_eq!(barely.freshness(now - Duration::from_secs(60), now), Freshness::Fresh, "within slack");
    }

    fn step(path: &str, kind: Kind, uid: u32, gid: u32, mode: u32) -> Step {
        Step { path: PathBuf::from(path), kind, uid, gid, mode }
    }

    /// A uid that is neither root nor this test's caller.
    fn stranger(n: u32) -> u32 {
        let [real, effective] = own_uids();
        (60_000 + n..).find(|u| *u != real && *u != effective).unwrap()
    }

    #[test]
    fn rule_trusts_root_and_the_caller_and_limits_another_owner() {
        let root = step("/", Kind::Directory, 0, 0, 0o755);
        let run = step("/run", Kind::Directory, 0, 0, 0o755);
        let own = own_uids()[1];
        for uid in [0, own] {
            let file = step("/run/app.pid", Kind::Regular, uid, uid, 0o644);
            assert_eq!(authority("f", &[root.clone(), run.clone(), file]).unwrap(), Authority::Any);
        }
        let alice = stranger(1);
        let file = step("/run/app.pid", Kind::Regular, alice, alice, 0o644);
        let got = authority("f", &[root.clone(), run.clone(), file]).unwrap();
        assert!(matches!(got, Authority::User { uid, .. } if uid == alice), "{got:?}");
        let status = |uid, saved_uid| Status { uid, saved_uid, ..Status::default() };
        assert!(got.permits(&status(alice, alice)));
        assert!(got.permits(&status(0, alice)), "a saved id of alice: she may signal it");
        assert!(!got.permits(&status(0, 0)), "root's process");
    }

    #[test]
    fn rule_counts_directories_and_symlinks_as_controllers() {
        let (alice, bob) = (stranger(1), stranger(2));
        let root = step("/", Kind::Directory, 0, 0, 0o755);
        let home = step("/home/alice", Kind::Directory, alice, alice, 0o755);
        let file = step("/home/alice/app.pid", Kind::Regular, 0, 0, 0o644);
        let got = authority("f", &[root.clone(), home.clone(), file.clone()]).unwrap();
        assert!(matches!(got, Authority::User { uid, ref because } if uid == alice && because.contains("directory")));
        let link = step("/tmp/link", Kind::Symlink, bob, bob, 0o777);
        let tmp = step("/tmp", Kind::Directory, 0, 0, 0o1777);
        let err = authority("f", &[root.clone(), tmp.clone(), link, home, file.clone()]).unwrap_err();
        assert!(err.to_string().contains("several users"), "{err}");
        let own_link = step("/tmp/link", Kind::Symlink, 0, 0, 0o777);
        assert_eq!(authority("f", &[root, tmp, own_link, file]).unwrap(), Authority::Any);
    }

    #[test]
    fn rule_refuses_writable_files_and_unsticky_writable_directories() {
        let root = step("/", Kind::Directory, 0, 0, 0o755);
        for (dir_mode, dir_gid, file_mode, file_gid, refused) in [
            (0o755, 0, 0o666, 0, Some("anyone may write it")),
            (0o755, 0, 0o664, 100, Some("may write it")),
            (0o755, 0, 0o664, 0, None),
            (0o777, 0, 0o644, 0, Some("directory")),
            (0o775, 100, 0o644, 0, Some("directory")),
            (0o1777, 0, 0o644, 0, None),
            (0o775, 0, 0o644, 0, None),
        ] {
            let dir = step("/srv", Kind::Directory, 0, dir_gid, dir_mode);
            let file = step("/srv/app.pid", Kind::Regular, 0, file_gid, file_mode);
            let got = authority("f", &[root.clone(), dir, file]);
            match refused {
                None => assert_eq!(got.unwrap(), Authority::Any, "{dir_mode:o} {file_mode:o}"),
                Some(text) => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.contains(text) && err.contains("rule:"), "{dir_mode:o} {file_mode:o}: {err}");
                }
            }
        }
    }
}
