//! `gracestop stop` and `gracestop drain`: turn `--pid` and `--pidfile` into
//! pinned targets, safely, and hand them to the stop sequence.
//!
//! Everything is resolved and checked before the first signal: a malformed
//! pidfile, a process we may not signal or an unsafe `--group` ends gracestop with
//! no process touched. A missing, stale or zombie target is "not running"
//! (exit 3, or 0 with `--missing-ok`), never an error and never signalled.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use nix::sys::signal::Signal;

use crate::cli::{check_pid, DrainArgs, StopArgs};
use crate::deregister::Deregistration;
use crate::exit::Exit;
use crate::log;
use crate::platform::{self, procfs, Delivery, NotRunning, Pinned, Process, WatchMode};
use crate::sequence::{self, Fate, Plan, PreciseClock, Requests, Target};

/// Clock slack when comparing a process's start time with its pidfile's mtime:
/// `btime` has one-second granularity and file systems round timestamps.
const STALE_SLACK: Duration = Duration::from_secs(2);

/// Set to `1` to watch exits by polling `/proc` instead of pidfds (diagnostics,
/// and the test suite's check of the fallback path).
pub const NO_PIDFD_ENV: &str = "GRACESTOP_NO_PIDFD";

/// A running process to stop, with the name it is logged under. With `--group`,
/// the other members of its process group are pinned too, each time a signal is
/// sent (a member forked since the last signal is caught by the next one), and
/// the target is gone only when every pinned member is.
struct StopTarget {
    process: Process,
    group: bool,
    mode: WatchMode,
    members: RefCell<Vec<Rc<Process>>>,
}

impl StopTarget {
    fn new(process: Process, group: bool, mode: WatchMode) -> StopTarget {
        StopTarget { process, group, mode, members: RefCell::new(Vec::new()) }
    }

    /// Pins the group's members that are not pinned yet. Each is checked to still
    /// be in the group once pinned, so a reused PID is never taken for a member.
    fn pin_new_members(&self) {
        let pgrp = self.process.identity().pgrp;
        for (pid, stat) in procfs::all() {
            let known = pid == self.process.pid() || self.members.borrow().iter().any(|m| m.pid() == pid);
            let forbidden = pid <= 1 || pid == std::process::id() as i32;
            if stat.pgrp != pgrp || known || forbidden || stat.is_zombie() {
                continue;
            }
            if let Ok(Pinned::Running(member)) = platform::pin(pid, self.mode) {
                if member.identity().pgrp == pgrp && member.identity().start_ticks == stat.start_ticks {
                    log::debug("signal", format_args!("group member {pid} ({})", member.identity().comm));
                    self.members.borrow_mut().push(Rc::new(member));
                }
            }
        }
    }
}

impl fmt::Display for StopTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.process.pid(), self.process.identity().comm)?;
        if self.group {
            write!(f, " and its process group {}", self.process.identity().pgrp)?;
        }
        Ok(())
    }
}

impl Target for StopTarget {
    fn signal(&self, signal: Signal) -> io::Result<Delivery> {
        let mut delivery = self.process.signal(signal)?;
        if self.group {
            // Every signal (SIGCONT, the dump, SIGKILL) reaches the same group.
            self.pin_new_members();
            let members: Vec<Rc<Process>> = self.members.borrow().clone();
            for member in members {
                if member.signal(signal)? == Delivery::Sent {
                    delivery = Delivery::Sent;
                }
            }
        }
        Ok(delivery)
    }

    async fn exited(&self) {
        self.process.exited().await;
        // Members pinned while we waited are waited for too.
        loop {
            let members: Vec<Rc<Process>> = self.members.borrow().clone();
            join_all(members.iter().map(|m| m.exited())).await;
            if self.members.borrow().len() == members.len() {
                return;
            }
        }
    }
}

pub fn watch_mode() -> WatchMode {
    match std::env::var(NO_PIDFD_ENV) {
        Ok(value) if !value.is_empty() && value != "0" => WatchMode::Poll,
        _ => WatchMode::Auto,
    }
}

/// Counts SIGTERM and SIGINT to gracestop as further stop requests. The command
/// itself is the first request, so the first signal cuts deregistration and drain
/// short and the second skips to SIGKILL.
fn listen_for_requests() -> Result<Requests> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, requests) = Requests::channel(1);
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tx.send_modify(|n| *n += 1);
            log::info("request", format_args!("received {name}"));
        }
    });
    Ok(requests)
}

/// Logs the plan and fits it into `--deadline`, saying what was shortened.
pub(crate) fn fit(
    deregistration: Option<&Deregistration>,
    mut plan: Plan,
    deadline: Option<Duration>,
    what: &str,
) -> Plan {
    let before = deregistration.map_or(Duration::ZERO, Deregistration::worst_case);
    if let Some(deregistration) = deregistration {
        log::info("plan", format_args!("deregister {} (at most {})", deregistration.describe(), log::span(before)));
    }
    log::info("plan", format_args!("{what}; worst case {}", log::span(plan.worst_case(before))));
    if let Some(note) = deadline.and_then(|deadline| plan.fit(before, deadline)) {
        log::warn("plan", format_args!("{note}"));
    }
    plan
}

/// `gracestop drain`: deregister and drain, nothing else.
pub async fn drain(args: &DrainArgs) -> Result<Exit> {
    let requests = listen_for_requests()?;
    let deregistration = Deregistration::new(&args.pre_stop)?;
    let plan =
        Plan { drain: args.pre_stop.drain, signal: Signal::SIGTERM, wait: Duration::ZERO, dump: None, force: false };
    let what = format!("drain {}", log::span(plan.drain));
    let drain = fit(deregistration.as_ref(), plan, args.pre_stop.deadline, &what).drain;
    sequence::before_signal(&deregistration.as_ref(), drain, &requests, &PreciseClock).await?;
    log::info("done", format_args!("deregistered and drained"));
    Ok(Exit::Success)
}

pub async fn stop(args: &StopArgs) -> Result<Exit> {
    let requests = listen_for_requests()?;
    let mode = watch_mode();
    // Everything that needs no process is validated first: a bad URL or body
    // file ends gracestop here, with no process touched and no URL called.
    let deregistration = Deregistration::new(&args.pre_stop)?;

    let mut targets: Vec<StopTarget> = Vec::new();
    let mut add = |process: Process| {
        if targets.iter().all(|t| t.process.pid() != process.pid()) {
            targets.push(StopTarget::new(process, args.group, mode));
        }
    };
    for &pid in &args.pids {
        match platform::pin(pid, mode).with_context(|| format!("cannot watch PID {pid}"))? {
            Pinned::Running(process) => add(process),
            Pinned::NotRunning(why) => log::info("plan", format_args!("PID {pid} is not running ({})", describe(why))),
        }
    }
    for path in &args.pidfiles {
        if let Some(process) = resolve_pidfile(path, mode)? {
            add(process);
        }
    }

    let plan = args.sequence.plan(args.pre_stop.drain);
    for target in &targets {
        check_target(target, &plan)?;
    }
    if targets.is_empty() {
        log::info("plan", format_args!("nothing to stop: no target is running"));
        return Ok(if args.missing_ok { Exit::Success } else { Exit::NotRunning });
    }
    for target in &targets {
        let watch = if target.process.uses_pidfd() { "pidfd" } else { "polling /proc" };
        log::debug("plan", format_args!("watching {} by {watch}", target.process.pid()));
    }
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    let plan =
        fit(deregistration.as_ref(), plan, args.pre_stop.deadline, &format!("stop {}: {plan}", names.join(", ")));

    let fates = sequence::stop_all(&targets, &deregistration.as_ref(), &plan, &requests, &PreciseClock).await?;
    let killed = fates.iter().filter(|f| **f == Fate::Killed).count();
    let running = fates.iter().filter(|f| !f.is_gone()).count();
    if running > 0 {
        log::warn("done", format_args!("{running} of {} target(s) still running", fates.len()));
        return Ok(Exit::StillRunning);
    }
    log::info(
        "done",
        format_args!("{} target(s) gone ({} exited, {killed} killed)", fates.len(), fates.len() - killed),
    );
    Ok(Exit::Success)
}

fn describe(why: NotRunning) -> &'static str {
    match why {
        NotRunning::NoSuchProcess => "no such process",
        NotRunning::Zombie => "a zombie: it has exited but was not reaped yet",
    }
}

/// Checks made before any signal: permission, `--group` safety, and whether the
/// target catches the stop and dump signals at all.
fn check_target(target: &StopTarget, plan: &Plan) -> Result<()> {
    let process = &target.process;
    let status = procfs::status(process.pid()).ok();
    match process.probe() {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let owner = status.as_ref().map_or_else(|| "another user".to_string(), |s| platform::user_name(s.uid));
            bail!("no permission to signal {target}: it belongs to {owner}");
        }
        Err(e) => return Err(e).with_context(|| format!("cannot signal {target}")),
    }
    if target.group {
        let group = process.identity().pgrp;
        if group <= 1 || group == nix::unistd::getpgrp().as_raw() {
            bail!("refusing --group for {target}: process group {group} contains gracestop itself or init");
        }
    }
    if let Some(status) = status {
        let signal = plan.signal;
        if procfs::mask_has(status.sig_ignored, signal as i32) {
            log::warn("plan", format_args!("{target} ignores {signal}: it will not stop on it"));
        } else if !procfs::mask_has(status.sig_caught, signal as i32)
            && !matches!(signal, Signal::SIGKILL | Signal::SIGSTOP)
        {
            log::warn("plan", format_args!("{target} does not catch {signal}: it will die at once, without cleanup"));
        }
        if let Some(dump) = plan.dump.filter(|d| procfs::mask_has(status.sig_ignored, d.signal as i32)) {
            log::warn("plan", format_args!("{target} ignores {}: --dump will do nothing", dump.signal));
        }
    }
    Ok(())
}

/// Reads a pidfile and pins its process. `Ok(None)` means "not running": the
/// file is missing, or its process is gone, a zombie, or newer than the file.
fn resolve_pidfile(path: &Path, mode: WatchMode) -> Result<Option<Process>> {
    let shown = path.display();
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::info("plan", format_args!("pidfile {shown} does not exist: not running"));
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read pidfile {shown}")),
    };
    let meta = file.metadata().with_context(|| format!("cannot read pidfile {shown}"))?;
    if meta.permissions().mode() & 0o002 != 0 {
        bail!("refusing pidfile {shown}: anyone may write it, so anyone could aim gracestop at any process");
    }
    let mut bytes = Vec::new();
    file.by_ref().take(64).read_to_end(&mut bytes).with_context(|| format!("cannot read pidfile {shown}"))?;
    let pid = parse_pidfile(&bytes).map_err(|why| anyhow::anyhow!("pidfile {shown} {why}"))?;
    let written = meta.modified().with_context(|| format!("cannot read the mtime of pidfile {shown}"))?;

    let process =
        match platform::pin(pid, mode).with_context(|| format!("cannot watch PID {pid} from pidfile {shown}"))? {
            Pinned::Running(process) => process,
            Pinned::NotRunning(why) => {
                log::info("plan", format_args!("pidfile {shown}: PID {pid} is not running ({}): stale", describe(why)));
                return Ok(None);
            }
        };
    let started =
        procfs::start_time(process.identity()).with_context(|| format!("cannot read the start time of PID {pid}"))?;
    if is_newer(started, written) {
        log::info(
            "plan",
            format_args!(
                "pidfile {shown} is stale: PID {pid} ({}) started {} after the file was written; not touching it",
                process.identity().comm,
                humantime::format_duration(Duration::from_secs(
                    started.duration_since(written).unwrap_or_default().as_secs()
                ))
            ),
        );
        return Ok(None);
    }
    Ok(Some(process))
}

/// Whether a process that started at `started` is too new to be the one that
/// wrote (or was written into) a pidfile last modified at `written`.
fn is_newer(started: SystemTime, written: SystemTime) -> bool {
    started > written + STALE_SLACK
}

/// A pidfile holds one decimal PID, optionally surrounded by white space. The
/// error quotes what the file holds (cut to a readable length).
fn parse_pidfile(bytes: &[u8]) -> Result<i32, String> {
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
    check_pid(number).map_err(|why| format!("holds a refused PID: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_contents() {
        assert_eq!(parse_pidfile(b"4242\n"), Ok(4242));
        assert_eq!(parse_pidfile(b"  4242  "), Ok(4242));
        assert_eq!(parse_pidfile(b""), Err("is empty".into()));
        assert_eq!(parse_pidfile(b"\n"), Err("is empty".into()));
        assert!(parse_pidfile(b"abc").unwrap_err().contains("\"abc\""));
        assert!(parse_pidfile(b"42 43").is_err());
        assert!(parse_pidfile(b"-1").unwrap_err().contains("does not hold"));
        assert!(parse_pidfile(b"1").unwrap_err().contains("refused"));
        assert!(parse_pidfile(b"0").unwrap_err().contains("refused"));
        assert!(parse_pidfile(b"99999999999999").unwrap_err().contains("out of range"));
        assert!(parse_pidfile(&[0xff, 0x00, 0x12]).unwrap_err().contains("not text"));
        let long = "9".repeat(100);
        assert!(parse_pidfile(long.as_bytes()).unwrap_err().ends_with('…'));
    }

    #[test]
    fn staleness_allows_clock_slack() {
        let written = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!is_newer(written - Duration::from_secs(60), written), "older process: the pidfile's own");
        assert!(!is_newer(written + Duration::from_secs(1), written), "within slack");
        assert!(is_newer(written + Duration::from_secs(3), written), "started after the file was written");
    }
}
