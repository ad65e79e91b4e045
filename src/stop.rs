//! `gracestop stop`: turn `--pid` and `--pidfile` into pinned targets, safely,
//! and hand them to the stop sequence.
//!
//! Everything is resolved and checked before the first signal: a malformed
//! pidfile, a process we may not signal or an unsafe `--group` ends gracestop with
//! no process touched. A missing, stale or zombie target is "not running"
//! (exit 3, or 0 with `--missing-ok`), never an error and never signalled.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use nix::sys::signal::Signal;

use crate::config::{SequenceConfig, StopConfig};
use crate::deregister::Deregistration;
use crate::event::{Event, NotCaught, Scope, Subject};
use crate::exit::{coded, Exit};
use crate::log;
use crate::pidfile::{self, Authority, Found, Freshness};
use crate::platform::{self, procfs, Delivery, NotRunning, Pinned, Process, WatchMode};
use crate::requests;
use crate::sequence::{self, Fate, Plan, PreciseClock, Target};

/// Set to `1` to watch exits by polling `/proc` instead of pidfds (diagnostics,
/// and the test suite's check of the fallback path).
pub const NO_PIDFD_ENV: &str = "GRACESTOP_NO_PIDFD";

/// How many times the group is searched again for members that appeared while
/// the known ones were awaited. Each search that finds nobody new ends the wait;
/// a group that forks faster than this is reported as still running.
const GROUP_RESCANS: usize = 4096;

/// A running process to stop, with the name it is logged under. With `--group`,
/// the other members of its process group are pinned too: each time a signal is
/// sent, and again whenever every known member has exited, so a member forked at
/// any moment of the sequence is signalled and awaited as well. The target is
/// gone only when the group is empty.
struct StopTarget {
    process: Process,
    group: bool,
    mode: WatchMode,
    /// What the target may be under the pidfile rule; group members are held
    /// to it too.
    authority: Authority,
    members: RefCell<Vec<Rc<Process>>>,
    /// Members left alone because the rule forbids them (each is warned about once).
    refused: RefCell<Vec<i32>>,
    /// The last signal sent other than SIGCONT, which members found later
    /// receive too (followed by SIGCONT).
    last_signal: Cell<Option<Signal>>,
}

impl StopTarget {
    fn new(process: Process, group: bool, mode: WatchMode, authority: Authority) -> StopTarget {
        StopTarget {
            process,
            group,
            mode,
            authority,
            members: RefCell::new(Vec::new()),
            refused: RefCell::new(Vec::new()),
            last_signal: Cell::new(None),
        }
    }

    /// Pins the group's members that are not pinned yet and returns them. Each is
    /// checked once pinned to still be in the group and in the target's session,
    /// so neither a reused PID nor a reused group id is taken for a member.
    fn pin_new_members(&self) -> Vec<Rc<Process>> {
        let identity = self.process.identity();
        let mut found = Vec::new();
        for (pid, stat) in procfs::all() {
            let known = pid == self.process.pid()
                || self.members.borrow().iter().any(|m| m.pid() == pid)
                || self.refused.borrow().contains(&pid);
            let forbidden = pid <= 1 || pid == std::process::id() as i32;
            if stat.pgrp != identity.pgrp || known || forbidden || stat.is_zombie() {
                continue;
            }
            let Ok(Pinned::Running(member)) = platform::pin(pid, self.mode) else { continue };
            let same = member.identity().pgrp == identity.pgrp && member.identity().session == identity.session;
            if !same || member.identity().start_ticks != stat.start_ticks {
                continue;
            }
            if let Ok(status) = member.status() {
                if !self.authority.permits(&status) {
                    // Before the first signal this is a refusal of the whole
                    // target (see check_target), not a warning.
                    if self.last_signal.get().is_some() {
                        log::emit(Event::MemberLeftAlone {
                            pid,
                            comm: member.identity().comm.clone(),
                            owner: platform::user_name(status.uid),
                        });
                    }
                    self.refused.borrow_mut().push(pid);
                    continue;
                }
            }
            log::emit(Event::GroupMember { pid, comm: member.identity().comm.clone() });
            let member = Rc::new(member);
            self.members.borrow_mut().push(Rc::clone(&member));
            found.push(member);
        }
        found
    }
}

impl fmt::Display for StopTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.subject().fmt(f)
    }
}

/// Sends `signal` to each member; `Sent` if any received it.
fn signal_members(members: &[Rc<Process>], signal: Signal) -> io::Result<Delivery> {
    let mut delivery = Delivery::Gone;
    for member in members {
        if member.signal(signal)? == Delivery::Sent {
            delivery = Delivery::Sent;
        }
    }
    Ok(delivery)
}

impl Target for StopTarget {
    fn subject(&self) -> Subject {
        let identity = self.process.identity();
        let scope = if self.group { Scope::Group(identity.pgrp) } else { Scope::Process };
        Subject { pid: self.process.pid(), comm: identity.comm.clone(), scope }
    }

    fn signal(&self, signal: Signal) -> io::Result<Delivery> {
        let mut delivery = self.process.signal(signal)?;
        if self.group {
            // Every signal (SIGCONT, the dump, SIGKILL) reaches the same group. A
            // member that appeared since the stop signal gets that first.
            let newcomers = self.pin_new_members();
            match self.last_signal.get() {
                Some(last) if signal == Signal::SIGCONT => {
                    signal_members(&newcomers, last)?;
                }
                _ if signal == Signal::SIGCONT => {}
                _ => self.last_signal.set(Some(signal)),
            }
            let members: Vec<Rc<Process>> = self.members.borrow().clone();
            if signal_members(&members, signal)? == Delivery::Sent {
                delivery = Delivery::Sent;
            }
        }
        Ok(delivery)
    }

    async fn exited(&self) {
        self.process.exited().await;
        if !self.group {
            return;
        }
        for _ in 0..GROUP_RESCANS {
            let members: Vec<Rc<Process>> = self.members.borrow().clone();
            join_all(members.iter().map(|m| m.exited())).await;
            if self.members.borrow().len() > members.len() {
                continue; // pinned by a signal sent meanwhile: await those too
            }
            // Every known member is gone; is the group empty?
            let newcomers = self.pin_new_members();
            if newcomers.is_empty() {
                return;
            }
            if let Some(signal) = self.last_signal.get() {
                let pids = newcomers.iter().map(|m| m.pid()).collect();
                log::emit(Event::GroupNewcomers { signal, pids, target: self.subject() });
                // A newcomer that cannot be signalled is still awaited: the wait's
                // bound then decides, and the outcome says it still runs.
                let _ = signal_members(&newcomers, signal);
                if !matches!(signal, Signal::SIGKILL | Signal::SIGCONT) {
                    let _ = signal_members(&newcomers, Signal::SIGCONT);
                }
            }
        }
        log::emit(Event::GroupKeepsGrowing { target: self.subject() });
        std::future::pending::<()>().await;
    }
}

pub fn watch_mode() -> WatchMode {
    match std::env::var(NO_PIDFD_ENV) {
        Ok(value) if !value.is_empty() && value != "0" => WatchMode::Poll,
        _ => WatchMode::Auto,
    }
}

pub async fn stop(args: &StopConfig) -> Result<Exit> {
    let requests = requests::listen()?;
    let mode = watch_mode();
    // Everything that needs no process is validated first: a bad URL or body
    // file ends gracestop here, with no process touched and no URL called.
    let deregistration = Deregistration::new(&args.pre_stop.deregister)?;

    let mut targets: Vec<StopTarget> = Vec::new();
    let mut add = |process: Process, authority: Authority| {
        if targets.iter().all(|t| t.process.pid() != process.pid()) {
            targets.push(StopTarget::new(process, args.group, mode, authority));
        }
    };
    for &pid in &args.pids {
        match platform::pin(pid, mode).with_context(|| format!("cannot watch PID {pid}"))? {
            Pinned::Running(process) => add(process, Authority::Any),
            Pinned::NotRunning(why) => log::emit(Event::NotRunning { pid, reason: describe(why) }),
            Pinned::Thread { of } => {
                return Err(coded(Exit::Usage, format!("PID {pid} is refused: it is a thread of process {of}")))
            }
        }
    }
    for path in &args.pidfiles {
        if let Some((process, authority)) = resolve_pidfile(path, mode)? {
            add(process, authority);
        }
    }

    let sequence = &args.sequence;
    for target in &targets {
        check_target(target, sequence)?;
    }
    if targets.is_empty() {
        log::emit(Event::NothingToStop);
        return Ok(if args.missing_ok { Exit::Success } else { Exit::NotRunning });
    }
    for target in &targets {
        let watch = if target.process.uses_pidfd() { "pidfd" } else { "polling /proc" };
        log::emit(Event::Watching { pid: target.process.pid(), by: watch });
    }
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    let subjects: Vec<Subject> = targets.iter().map(Target::subject).collect();
    let mut plan = Plan { steps: args.pre_stop.steps(deregistration.as_ref()), stop: Some(sequence.stop_plan()) };
    plan.announce(&format!("stop {}", names.join(", ")), &subjects, args.pre_stop.deadline);

    let fates = sequence::stop_all(&targets, &plan, &requests, &PreciseClock).await?;
    let killed = fates.iter().filter(|f| **f == Fate::Killed).count();
    let running = fates.iter().filter(|f| !f.is_gone()).count();
    if running > 0 {
        log::emit(Event::StillRunningAtEnd { running, of: fates.len() });
        return Ok(Exit::StillRunning);
    }
    log::emit(Event::Stopped { of: fates.len(), killed });
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
fn check_target(target: &StopTarget, plan: &SequenceConfig) -> Result<()> {
    let process = &target.process;
    let status = process.status().ok();
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
        // Under the pidfile rule the whole group must be the controlling user's.
        if let Authority::User { uid, because } = &target.authority {
            target.pin_new_members();
            if let Some(&pid) = target.refused.borrow().first() {
                bail!(
                    "refusing --group for {target}: member {pid} belongs to a user other than {}, who controls the \
                     pidfile ({because}) (rule: a pidfile another user controls names only that user's processes)",
                    platform::user_name(*uid)
                );
            }
        }
    }
    if let Some(status) = status {
        let signal = plan.signal;
        let warn = |signal: Signal, how: NotCaught| {
            log::emit(Event::SignalNotCaught { target: target.subject(), signal, how });
        };
        if procfs::mask_has(status.sig_ignored, signal as i32) {
            warn(signal, NotCaught::Ignored);
        } else if !procfs::mask_has(status.sig_caught, signal as i32)
            && !matches!(signal, Signal::SIGKILL | Signal::SIGSTOP)
        {
            warn(signal, NotCaught::Default);
        }
        if let Some(dump) = plan.dump.filter(|d| procfs::mask_has(status.sig_ignored, d.signal as i32)) {
            warn(dump.signal, NotCaught::DumpIgnored);
        }
    }
    Ok(())
}

/// Reads a pidfile under the trust rule and pins its process. `Ok(None)` means
/// "not running": the file is missing, or its process is gone, a zombie, or
/// newer than the file.
fn resolve_pidfile(path: &Path, mode: WatchMode) -> Result<Option<(Process, Authority)>> {
    let shown = path.display();
    let file = match pidfile::read(path)? {
        Found::Missing(at) => {
            log::emit(Event::PidfileMissing { path: shown.to_string(), missing: at.to_string() });
            return Ok(None);
        }
        Found::Pidfile(file) => file,
    };
    let pid = file.pid;
    let process =
        match platform::pin(pid, mode).with_context(|| format!("cannot watch PID {pid} from pidfile {shown}"))? {
            Pinned::Running(process) => process,
            Pinned::NotRunning(why) => {
                log::emit(Event::PidfileDead { path: shown.to_string(), pid, reason: describe(why) });
                return Ok(None);
            }
            Pinned::Thread { of } => bail!("pidfile {shown} holds a refused PID: {pid} is a thread of process {of}"),
        };
    let status = process.status().with_context(|| format!("cannot read the owner of PID {pid}"))?;
    if !file.authority.permits(&status) {
        let target = format!("PID {pid} ({})", process.identity().comm);
        bail!("{}", file.authority.refusal(&shown.to_string(), &target, status.uid));
    }
    let started =
        procfs::start_time(process.identity()).with_context(|| format!("cannot read the start time of PID {pid}"))?;
    match file.freshness(started, SystemTime::now()) {
        Freshness::Fresh => Ok(Some((process, file.authority))),
        stale @ Freshness::Stale(_) => {
            log::emit(Event::PidfileStale {
                path: shown.to_string(),
                pid,
                comm: process.identity().comm.clone(),
                reason: stale.to_string(),
            });
            Ok(None)
        }
        future @ Freshness::Future(_) => bail!(
            "refusing pidfile {shown}: {future}, so it cannot show that PID {pid} is the process it was written for \
             (fix the clock or rewrite the file)"
        ),
    }
}
