//! `gracestop run`: launch COMMAND, forward signals, reap everything, and stop
//! the whole family with the shared stop sequence.
//!
//! One loop owns all of it. It waits on a single signalfd (no timer, no poll
//! while the child runs) and reacts to three kinds of signal:
//!
//! - SIGCHLD: reap every exited descendant (we are a subreaper, so orphans are
//!   ours too). The child's status is kept; when `waitpid` reports ECHILD after
//!   the child is reaped, the family is gone and gracestop exits.
//! - a `--stop-on` signal (TERM, INT): the first starts the stop sequence, later
//!   ones escalate it (§3).
//! - anything else never reaches the loop: its signal handler forwards it to
//!   the child unchanged, at once (see `platform::supervise`).
//!
//! The sequence runs as a future inside the same loop, so signals are still
//! forwarded and children still reaped while it drains and waits. Its target is
//! the `Family`: the child's process group plus every descendant that left it.

use std::cell::Cell;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::future::Future;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use tokio::sync::watch;

use crate::cli::RunArgs;
use crate::deregister::{Deregistration, StrictFailure};
use crate::exit::{coded, Exit};
use crate::log;
use crate::platform::supervise::{self, Reaped, Spawn};
use crate::sequence::{self, Delivery, Fate, Plan, PreciseClock, Requests, Target};
use crate::stop;

/// The supervised family: the child, its process group, and every descendant.
struct Family {
    child: i32,
    name: String,
    single_child: bool,
    /// Set once the child itself is reaped: from then on its PID and group id are
    /// no longer pinned, and signals go to the descendants found in /proc.
    child_reaped: Cell<bool>,
    /// Set once SIGKILL went out: every later exit triggers another sweep, so a
    /// process forked after a sweep is killed by the next one.
    killing: Cell<bool>,
    gone: watch::Receiver<bool>,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.child, self.name)?;
        if !self.single_child {
            write!(f, " and its process group")?;
        }
        Ok(())
    }
}

impl Family {
    fn is_gone(&self) -> bool {
        *self.gone.borrow()
    }

    /// Signals every descendant outside the child's group (all of them once the
    /// child is reaped).
    fn signal_outsiders(&self, signal: Signal) {
        let me = std::process::id() as i32;
        for found in supervise::descendants(me) {
            if self.child_reaped.get() || found.stat.pgrp != self.child {
                log::debug(
                    "signal",
                    format_args!("{signal} -> {} ({}), outside the child's group", found.pid, found.stat.comm),
                );
                let _ = supervise::signal_descendant(&found, signal);
            }
        }
    }
}

impl Target for Family {
    fn signal(&self, signal: Signal) -> io::Result<Delivery> {
        if self.is_gone() {
            return Ok(Delivery::Gone);
        }
        if signal == Signal::SIGKILL {
            self.killing.set(true);
        }
        let alone = self.single_child && signal != Signal::SIGKILL;
        if !self.child_reaped.get() {
            let sent = if alone {
                supervise::signal_child(self.child, signal)
            } else {
                supervise::signal_child_group(self.child, signal)
            };
            match sent {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                other => other?,
            }
            if alone {
                return Ok(Delivery::Sent);
            }
        }
        self.signal_outsiders(signal);
        Ok(Delivery::Sent)
    }

    async fn exited(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|gone| *gone).await;
    }
}

/// Writes gracestop's PID atomically: a fresh temporary file beside the target
/// (`O_EXCL|O_NOFOLLOW`), fsync, then rename over it (rename replaces a symlink
/// itself, never what it points to).
fn write_pidfile(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    // A unique name: as PID 1 of a fresh container our PID is always 1, and a
    // temporary file left by a SIGKILLed predecessor must not block us.
    let mut attempt = 0;
    let (temp, mut file) = loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.{nanos:x}.tmp", std::process::id()));
        let temp = dir.join(temp_name);
        let opened =
            fs::OpenOptions::new().write(true).create_new(true).mode(0o644).custom_flags(libc::O_NOFOLLOW).open(&temp);
        match opened {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Checks that the pidfile just written passes the pidfile rule for our own
/// process, so that `gracestop stop --pidfile` will accept it. A directory that
/// others may write, for one, would let them replace it.
fn check_own_pidfile(path: &Path) -> Result<()> {
    let authority = crate::pidfile::authority_of(path)?;
    let own = std::process::id() as i32;
    let status = crate::platform::procfs::ProcDir::open(own)
        .and_then(|dir| dir.status())
        .context("cannot read gracestop's own /proc status")?;
    if !authority.permits(&status) {
        let shown = path.display().to_string();
        anyhow::bail!("{}", authority.refusal(&shown, &format!("gracestop ({own})"), status.uid));
    }
    Ok(())
}

/// Removes the pidfile if it still holds our PID (someone may have replaced it).
fn remove_pidfile(path: &Path) {
    let ours = fs::read_to_string(path).is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = fs::remove_file(path);
    }
}

/// Removes the pidfile when gracestop leaves `run`, however it leaves.
struct PidfileGuard(Option<PathBuf>);

impl Drop for PidfileGuard {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            remove_pidfile(path);
        }
    }
}

/// `sh -c 'app'` without `exec`: the shell stays in between and gets the signals.
fn shell_without_exec(argv: &[OsString]) -> bool {
    let Some(program) = argv.first().and_then(|p| Path::new(p).file_name()).and_then(|n| n.to_str()) else {
        return false;
    };
    if !matches!(program, "sh" | "bash" | "dash" | "zsh" | "ash" | "ksh" | "busybox") {
        return false;
    }
    let Some(c) = argv.iter().position(|a| a == "-c") else { return false };
    argv.get(c + 1).and_then(|s| s.to_str()).is_some_and(|script| !script.trim_start().starts_with("exec "))
}

/// The variables the child must not inherit: systemd's notification socket (the
/// child is not the service systemd started) and gracestop's own `GRACESTOP_*`
/// options, which may hold tokens (`GRACESTOP_DEREGISTER_HEADER`).
fn own_environment() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name == "NOTIFY_SOCKET" || name.as_encoded_bytes().starts_with(b"GRACESTOP_"))
        .collect()
}

fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::debug("notify", format_args!("cannot notify systemd: {e}"));
    }
}

fn describe_status(reaped: &Reaped) -> String {
    match (reaped.code, reaped.signal) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string());
            format!("was killed by {name}")
        }
        _ => "ended".to_string(),
    }
}

/// The exit status gracestop ends with: the child's code, 128+N for signal N,
/// then `--remap-exit`.
fn exit_status(reaped: &Reaped, remap: &[(u8, u8)]) -> u8 {
    let raw = match (reaped.code, reaped.signal) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => (128 + sig).min(255) as u8,
        _ => 125,
    };
    remap.iter().find(|(from, _)| *from == raw).map_or(raw, |(_, to)| *to)
}

type Sequence<'a> = Pin<Box<dyn Future<Output = Result<Vec<Fate>>> + 'a>>;

pub async fn run(args: &RunArgs) -> Result<Exit> {
    // Before anything else, and before any thread exists, so every thread
    // inherits the mask: from here on SIGCHLD and the stop requests arrive
    // through the signalfd, and every other signal is held until the child
    // exists, then forwarded by its handler.
    let signals = supervise::take_signals(&args.stop_on).context("cannot take over signal handling")?;
    supervise::become_subreaper().context("cannot become a child subreaper")?;

    let deregistration = Deregistration::new(&args.pre_stop)?;
    if shell_without_exec(&args.command) {
        log::warn(
            "run",
            format_args!(
                "COMMAND is a shell running a script without `exec`: signals reach the shell, not the app \
                 (gracestop signals the whole process group, but `sh -c 'exec app'` is safer)"
            ),
        );
    }
    // Everything that can fail is done before the child exists: an error after
    // the spawn would leave it to the parent-death signal, without any drain.
    let _pidfile = PidfileGuard(args.pidfile.clone());
    if let Some(path) = &args.pidfile {
        write_pidfile(path).with_context(|| format!("cannot write pidfile {}", path.display()))?;
        check_own_pidfile(path).with_context(|| format!("cannot use pidfile {}", path.display()))?;
    }
    let detach = supervise::stdin_is_tty();
    let spawned = supervise::spawn(&Spawn {
        argv: &args.command,
        death_signal: args.sequence.signal,
        detach_from_tty: detach,
        env_remove: &own_environment(),
    });
    let child = spawned.map_err(|e| {
        let exit = match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Exit::NotFound,
            Some(libc::EACCES) | Some(libc::ENOEXEC) | Some(libc::EISDIR) | Some(libc::ETXTBSY) | Some(libc::EPERM) => {
                Exit::CannotExecute
            }
            _ => Exit::Internal,
        };
        coded(exit, format!("cannot run {}: {e}", args.command[0].to_string_lossy()))
    })?;
    // Cannot fail for a valid set; if it did, forwarding would merely stay held.
    if let Err(e) = signals.forward_to(child) {
        log::warn("run", format_args!("cannot forward signals to the child: {e}"));
    }
    let name = Path::new(&args.command[0]).file_name().map_or_else(|| "?".into(), |n| n.to_string_lossy().into_owned());
    log::info("run", format_args!("started {child} ({name}) in process group {child}"));
    if detach {
        log::debug(
            "run",
            format_args!("stdin is a terminal: it stays with gracestop, so Ctrl-C runs the stop sequence"),
        );
    }
    notify(&[sd_notify::NotifyState::Ready]);
    supervise::trim_resident_code();

    let (gone_tx, gone) = watch::channel(false);
    let family = Family {
        child,
        name,
        single_child: args.single_child,
        child_reaped: Cell::new(false),
        killing: Cell::new(false),
        gone,
    };
    let (requests_tx, requests) = Requests::channel(0);
    // `run` never leaves descendants behind: the kill at the end is implied.
    let plan = Plan { force: true, ..args.sequence.plan(args.pre_stop.drain) };
    let leftovers = Plan { drain: Duration::ZERO, ..plan };
    let mut status: Option<Reaped> = None;
    let mut sequence: Option<Sequence<'_>> = None;

    loop {
        tokio::select! {
            biased;
            batch = signals.next() => {
                for sig in batch.context("cannot read signals")? {
                    if sig == Signal::SIGCHLD {
                        let (reaped, none_left) = supervise::reap();
                        for r in reaped {
                            if r.pid == child {
                                log::info("exit", format_args!("{child} ({}) {}", family.name, describe_status(&r)));
                                status = Some(r);
                                family.child_reaped.set(true);
                            } else {
                                log::debug("reap", format_args!("orphan {} {}", r.pid, describe_status(&r)));
                            }
                        }
                        if none_left && status.is_some() {
                            gone_tx.send_replace(true);
                        } else if family.killing.get() {
                            let _ = family.signal(Signal::SIGKILL);
                        }
                    } else if args.stop_on.contains(&sig) {
                        requests_tx.send_modify(|n| *n += 1);
                        log::info("request", format_args!("received {sig} (stop request {})", *requests_tx.borrow()));
                        if sequence.is_none() {
                            let plan = stop::fit(deregistration.as_ref(), plan, args.pre_stop.deadline, &format!("stop {family}: {plan}"));
                            let worst = plan.worst_case(deregistration.as_ref().map_or(Duration::ZERO, Deregistration::worst_case));
                            let usec = u32::try_from(worst.as_micros()).unwrap_or(u32::MAX);
                            notify(&[sd_notify::NotifyState::Stopping, sd_notify::NotifyState::ExtendTimeoutUsec(usec)]);
                            sequence = Some(Box::pin(sequence::stop_all_owned(&family, deregistration.as_ref(), plan, &requests, &PreciseClock)));
                        }
                    }
                }
            }
            fates = async { sequence.as_mut().expect("guarded by the condition").await }, if sequence.is_some() => {
                match fates {
                    Ok(_) => break,
                    // A strict deregistration failed: nothing was signalled. The
                    // child keeps running under supervision; the next stop request
                    // starts over and, being the second, skips to the signal.
                    Err(e) if e.downcast_ref::<StrictFailure>().is_some() => {
                        log::error(format_args!("{e:#}; the child keeps running: send SIGTERM again to stop it without deregistering"));
                        sequence = None;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if family.is_gone() && sequence.is_none() {
            break;
        }
        if status.is_some() && sequence.is_none() {
            log::info("run", format_args!("the child has exited; stopping what is left of its family"));
            sequence = Some(Box::pin(sequence::stop_all_owned(
                &family,
                None::<&Deregistration>,
                leftovers,
                &requests,
                &PreciseClock,
            )));
        }
    }

    let Some(status) = status else {
        return Err(coded(Exit::Internal, format!("lost the exit status of {child}")));
    };
    let code = exit_status(&status, &args.remap_exit);
    log::info("done", format_args!("exiting with {code}"));
    Ok(Exit::Child(code))
}
