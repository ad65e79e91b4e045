//! Bounded, non-blocking reads of small files the user names (a request body,
//! a CA bundle), and the opening of the log file (`--log-file`).
//!
//! It owns the rule that such a file must be a regular file no larger than a
//! limit, and the way that rule is checked without ever blocking: the path is
//! opened with `O_NONBLOCK` (so a FIFO without a writer cannot hang gracestop,
//! whose one runtime thread would otherwise sit in `open` with SIGTERM unheard)
//! and `O_NOCTTY` (a terminal device never becomes our controlling terminal),
//! the kind and size come from `fstat` on the open descriptor (not the path,
//! which could be swapped in between), and at most `limit + 1` bytes are read,
//! because files grow and `/proc` files report size 0. It does not own what the
//! bytes mean, nor which limit applies: the callers decide.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::walk::Kind;

/// Reads the whole of `path`, refusing anything that is not a regular file
/// (FIFO, socket, device, directory) and anything larger than `limit` bytes.
///
/// Errors say what is wrong with the file ("is a FIFO, not a regular file",
/// "is larger than 1 MiB") without naming it: callers add the path as context.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // A look before opening keeps devices from being opened at all (opening some
    // has side effects, a tape rewinds); the fstat below closes the race.
    if let Ok(metadata) = std::fs::metadata(path) {
        check_kind(&metadata)?;
    }
    let (file, size) = open_regular(path)?;
    read_bounded(file, size, limit)
}

/// Opens `--log-file` for appending, creating it (mode 0600) when missing.
///
/// The open never blocks: a FIFO without a reader is an error (ENXIO) rather
/// than a hang; once open, the descriptor is made blocking again so that no
/// line is lost to EAGAIN. A symlink as the last component is refused
/// (`O_NOFOLLOW`: a root gracestop must not append to wherever a link in a
/// shared directory points), except under `/proc/` and `/dev/`, whose links
/// the kernel makes (`/proc/1/fd/2`, `/dev/stderr`). Never a controlling
/// terminal, never inherited by the child.
pub fn open_log(path: &Path) -> io::Result<File> {
    let kernel_links = path.starts_with("/proc/") || path.starts_with("/dev/");
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    if !kernel_links {
        flags |= libc::O_NOFOLLOW;
    }
    let file =
        OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(flags).open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link (only /proc/ and /dev/ links are followed)",
                )
            } else if e.raw_os_error() == Some(libc::ENXIO) {
                io::Error::new(io::ErrorKind::InvalidInput, "is a FIFO without a reader")
            } else {
                e
            }
        })?;
    let blocking = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)
        .map(|bits| nix::fcntl::OFlag::from_bits_truncate(bits) & !nix::fcntl::OFlag::O_NONBLOCK)
        .and_then(|bits| nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(bits)));
    blocking.map_err(io::Error::from)?;
    Ok(file)
}

/// Opens `path` without blocking and checks, on the open descriptor, that it is
/// a regular file. Returns the file and its size by fstat.
fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let file =
        OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC).open(path)?;
    let metadata = file.metadata()?;
    check_kind(&metadata)?;
    Ok((file, metadata.len()))
}

/// Reads at most `limit` bytes of an open file whose fstat size is `size`;
/// more is an error ("is larger than …").
pub fn read_bounded(file: File, size: u64, limit: u64) -> io::Result<Vec<u8>> {
    if size > limit {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn check_kind(metadata: &std::fs::Metadata) -> io::Result<()> {
    match Kind::of_type(metadata.file_type()) {
        Kind::Regular => Ok(()),
        kind => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is {}, not a regular file", kind.describe()))),
    }
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(io::ErrorKind::FileTooLarge, format!("is larger than {}", size(limit)))
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_a_small_regular_file_whole() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"{\"status\":\"DOWN\"}").unwrap();
        assert_eq!(read_regular(file.path(), 1 << 20).unwrap(), b"{\"status\":\"DOWN\"}");
        assert_eq!(read_regular(file.path(), 17).unwrap().len(), 17, "exactly the limit is fine");
    }

    #[test]
    fn refuses_a_file_over_the_limit_by_size_and_by_content() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[b'x'; 100]).unwrap();
        let err = read_regular(file.path(), 99).unwrap_err();
        assert_eq!(err.to_string(), "is larger than 99 bytes");
        // A file whose fstat size understates its content (it grew, or is in /proc).
        let err = read_bounded(File::open(file.path()).unwrap(), 0, 64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn refuses_directories_and_devices_naming_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_regular(dir.path(), 1 << 20).unwrap_err().to_string(), "is a directory, not a regular file");
        let err = read_regular(Path::new("/dev/null"), 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "is a character device, not a regular file");
        assert_eq!(read_regular(&dir.path().join("missing"), 1).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_after_opening_it_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // The open itself, past the look at the path: the race the fstat closes.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_regular(&path).map(|_| ()).map_err(|e| e.to_string()));
        });
        let Ok(result) = rx.recv_timeout(std::time::Duration::from_secs(5)) else {
            // Release the blocked open, then fail.
            let _ = OpenOptions::new().write(true).open(&fifo);
            panic!("opening a FIFO blocked");
        };
        assert_eq!(result.unwrap_err(), "is a FIFO, not a regular file");
    }

    #[test]
    fn the_log_file_is_appended_to_and_symlinks_outside_proc_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        std::fs::write(&path, "before\n").unwrap();
        writeln!(open_log(&path).unwrap(), "after").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "before\nafter\n");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(open_log(&link).unwrap_err().to_string().contains("symbolic link"));
        assert!(open_log(Path::new("/dev/null")).is_ok());
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(open_log(&fifo).unwrap_err().to_string().contains("without a reader"));
        let created = dir.path().join("new.log");
        open_log(&created).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&created).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(1000), "1000 bytes");
    }
}
