//! Opening a file whose path others may control, the way a root process must:
//! one component at a time, each opened with `openat(O_PATH | O_NOFOLLOW)` from
//! the directory before it and `fstat`ed, symlinks read and followed by hand.
//!
//! The walk reports the owner and mode of every directory, symlink and file it
//! passes through, so that policy (the pidfile rule, DESIGN.md §4a) can tell who
//! could have steered the path. Because each step is opened from the descriptor
//! of the one before, nothing can be swapped in between unnoticed: whoever could
//! swap an entry controls a directory the walk reports. Only a regular file is
//! ever opened for reading, and then with `O_NONBLOCK`, so a FIFO, a device or a
//! socket never blocks gracestop; the file read is checked to be the one walked.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{open, openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode};

/// Symlinks followed before the walk gives up, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// What a path component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Symlink,
    Regular,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    fn of(stat: &FileStat) -> Kind {
        match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Directory,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFREG => Kind::Regular,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }

    /// The kind of a file type from std's metadata.
    pub fn of_type(kind: std::fs::FileType) -> Kind {
        use std::os::unix::fs::FileTypeExt;
        match kind {
            k if k.is_dir() => Kind::Directory,
            k if k.is_symlink() => Kind::Symlink,
            k if k.is_file() => Kind::Regular,
            k if k.is_fifo() => Kind::Fifo,
            k if k.is_socket() => Kind::Socket,
            k if k.is_char_device() => Kind::CharDevice,
            k if k.is_block_device() => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }

    /// "a FIFO", "a directory", … for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Directory => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Regular => "a regular file",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Unknown => "not a file",
        }
    }
}

/// One directory, symlink or file the walk passed through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Where it is, with the symlinks before it resolved.
    pub path: PathBuf,
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
}

impl Step {
    fn new(path: PathBuf, stat: &FileStat) -> Step {
        Step { path, kind: Kind::of(stat), uid: stat.st_uid, gid: stat.st_gid, mode: stat.st_mode & 0o7777 }
    }
}

/// How the walk ended.
#[derive(Debug)]
pub enum End {
    /// A component does not exist (the last step is the directory it was missing from).
    Missing(PathBuf),
    /// The path names something other than a regular file: the last step says what.
    NotRegular,
    /// A regular file, opened for reading (non-blocking).
    Opened { file: File, size: u64, modified: SystemTime },
}

/// Every step of a walk, and how it ended.
#[derive(Debug)]
pub struct Walked {
    pub steps: Vec<Step>,
    pub end: End,
}

fn io_error(errno: Errno, path: &Path) -> io::Error {
    io::Error::new(io::Error::from(errno).kind(), format!("{}: {}", path.display(), errno.desc()))
}

fn modified(stat: &FileStat) -> SystemTime {
    let since_epoch = Duration::new(stat.st_mtime.unsigned_abs(), stat.st_mtime_nsec.clamp(0, 999_999_999) as u32);
    if stat.st_mtime >= 0 {
        SystemTime::UNIX_EPOCH + since_epoch
    } else {
        SystemTime::UNIX_EPOCH - since_epoch
    }
}

/// The components to walk, in order: `.` dropped, `..` kept (resolved on the
/// directories actually walked, as the kernel does).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Walks `path` (relative paths from the current directory) and opens the
/// regular file at its end. Errors are the walk's own failures (no permission
/// to search a directory, too many links, a file in place of a directory).
pub fn open_regular(path: &Path) -> io::Result<Walked> {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    let root = Path::new("/");
    let root_fd = open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| io_error(e, root))?;
    let root_stat = fstat(&root_fd).map_err(|e| io_error(e, root))?;
    let mut steps = vec![Step::new(root.to_path_buf(), &root_stat)];
    // The directories walked so far, from the root: `..` pops one.
    let mut dirs: Vec<(OwnedFd, PathBuf)> = vec![(root_fd, root.to_path_buf())];
    let mut pending = components(&absolute);
    let mut links = 0;

    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let (dir, dir_path) = dirs.last().expect("the root is never popped");
        let here = dir_path.join(&name);
        let fd =
            match openat(dir, name.as_os_str(), OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(Walked { steps, end: End::Missing(here) }),
                Err(e) => return Err(io_error(e, &here)),
            };
        let stat = fstat(&fd).map_err(|e| io_error(e, &here))?;
        let step = Step::new(here.clone(), &stat);
        let kind = step.kind;
        steps.push(step);
        match kind {
            Kind::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io_error(Errno::ELOOP, &here));
                }
                // An O_PATH descriptor of the link itself: an empty path reads it.
                let target = readlinkat(&fd, OsStr::new("")).map_err(|e| io_error(e, &here))?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    dirs.truncate(1);
                }
                for component in components(&target).into_iter().rev() {
                    pending.push_front(component);
                }
            }
            Kind::Directory if pending.is_empty() => return Ok(Walked { steps, end: End::NotRegular }),
            Kind::Directory => dirs.push((fd, here)),
            _ if !pending.is_empty() => return Err(io_error(Errno::ENOTDIR, &here)),
            Kind::Regular => {
                let flags =
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
                let file = openat(dir, name.as_os_str(), flags, Mode::empty()).map_err(|e| io_error(e, &here))?;
                let opened = fstat(&file).map_err(|e| io_error(e, &here))?;
                if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        format!("{}: replaced while it was being opened", here.display()),
                    ));
                }
                let end =
                    End::Opened { file: File::from(file), size: opened.st_size as u64, modified: modified(&opened) };
                return Ok(Walked { steps, end });
            }
            _ => return Ok(Walked { steps, end: End::NotRegular }),
        }
    }
    // Only `..` and `.` after the last name (or an empty path): a directory.
    let (dir, dir_path) = dirs.last().expect("the root is never popped");
    let stat = fstat(dir).map_err(|e| io_error(e, dir_path))?;
    steps.push(Step::new(dir_path.clone(), &stat));
    Ok(Walked { steps, end: End::NotRegular })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn kinds(walked: &Walked) -> Vec<Kind> {
        walked.steps.iter().map(|s| s.kind).collect()
    }

    #[test]
    fn a_plain_file_is_opened_after_every_directory_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.pid");
        std::fs::write(&file, "42\n").unwrap();
        let walked = open_regular(&file).unwrap();
        assert!(matches!(walked.end, End::Opened { size: 3, .. }));
        assert_eq!(walked.steps.first().unwrap().path, Path::new("/"));
        assert_eq!(walked.steps.last().unwrap().path, file);
        assert!(kinds(&walked)[..walked.steps.len() - 1].iter().all(|k| *k == Kind::Directory));
    }

    #[test]
    fn symlinks_are_reported_and_followed_relative_and_absolute() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/app.pid"), "42\n").unwrap();
        symlink("real/app.pid", dir.path().join("rel")).unwrap();
        symlink(dir.path().join("real"), dir.path().join("abs")).unwrap();
        for (name, links) in [("rel", 1), ("abs/app.pid", 1), ("abs/../rel", 2)] {
            let walked = open_regular(&dir.path().join(name)).unwrap();
            assert!(matches!(walked.end, End::Opened { .. }), "{name}");
            assert_eq!(kinds(&walked).iter().filter(|k| **k == Kind::Symlink).count(), links, "{name}");
            assert_eq!(walked.steps.last().unwrap().path, dir.path().join("real/app.pid"), "{name}");
        }
    }

    #[test]
    fn fifos_directories_and_loops_are_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let walked = open_regular(&fifo).unwrap();
        assert!(matches!(walked.end, End::NotRegular));
        assert_eq!(walked.steps.last().unwrap().kind, Kind::Fifo);
        assert!(matches!(open_regular(dir.path()).unwrap().end, End::NotRegular));
        assert_eq!(open_regular(Path::new("/dev/null")).unwrap().steps.last().unwrap().kind, Kind::CharDevice);
        symlink("loop", dir.path().join("loop")).unwrap();
        let looped = open_regular(&dir.path().join("loop")).unwrap_err();
        assert!(looped.to_string().contains("symbolic links"), "{looped}");
        let missing = open_regular(&dir.path().join("nothing/here")).unwrap();
        assert!(matches!(missing.end, End::Missing(p) if p == dir.path().join("nothing")));
    }
}
