//! `gracestop run`: launch COMMAND, forward signals, reap everything, and stop
//! the whole family with the shared stop sequence.
//!
//! One loop owns all of it. It waits on a single signalfd (no timer, no poll
//! while the child runs) and reacts to:
//!
//! - SIGCHLD: reap every exited descendant (we are a subreaper, so orphans are
//!   ours too). The child's status is kept; when `waitpid` reports ECHILD after
//!   the child is reaped, the family is gone and gracestop exits. A child that
//!   stopped is handled by `JobControl` (the terminal, a parent shell).
//! - a `--stop-on` signal (TERM, INT): the first starts the stop sequence, later
//!   ones escalate it (§3).
//! - TSTP, TTIN, TTOU and CONT: job control, so that a shell can suspend and
//!   resume gracestop with its family.
//! - a fault-named signal or SIGPIPE: forwarded when another process sent it.
//! - anything else never reaches the loop: its signal handler forwards it to
//!   the child's group at once (see `platform::supervise`).
//!
//! The sequence runs as a future inside the same loop, so signals are still
//! forwarded and children still reaped while it drains and waits. Its target is
//! the `Family`: the child's process group plus every descendant that left it.
//! Whenever the child is gone, the rest of the family gets the stop signal at
//! once.

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

use crate::config::{RunConfig, TerminalMode};
use crate::deregister::{Deregistration, StrictFailure};
use crate::event::{Ended, Event, Scope, Subject};
use crate::exit::{coded, Exit};
use crate::log;
use crate::platform::supervise::{self, Arrival, Intake, Reaped, Spawn, Terminal, FAULTS, SUSPEND};
use crate::sequence::{self, Delivery, Fate, Plan, PreciseClock, Requests, StopPlan, Target};

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
    /// The stop signal (`--signal`).
    stop_signal: Signal,
    /// The stop signal went to the child alone (`--single-child`): when the
    /// child is gone, the rest of the family gets it at once.
    signalled_alone: Cell<bool>,
    gone: watch::Receiver<bool>,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.subject().fmt(f)
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
                log::emit(Event::OutsiderSignalled { signal, pid: found.pid, comm: found.stat.comm.clone() });
                let _ = supervise::signal_descendant(&found, signal);
            }
        }
    }
}

impl Target for Family {
    fn subject(&self) -> Subject {
        let scope = if self.single_child { Scope::Process } else { Scope::ChildGroup };
        Subject { pid: self.child, comm: self.name.clone(), scope }
    }

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
                if signal == self.stop_signal {
                    self.signalled_alone.set(true);
                }
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
        log::emit(Event::NotifyFailed { error: e.to_string() });
    }
}

fn ended(reaped: &Reaped) -> Ended {
    Ended::from_status(reaped.code, reaped.signal)
}

/// The exit status gracestop ends with: the child's code, 128+N for signal N,
/// then `--remap-exit`.
fn exit_status(reaped: &Reaped, remap: &[(u8, u8)]) -> u8 {
    let raw = match (reaped.code, reaped.signal) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => (128 + sig).min(255) as u8,
        _ => Exit::Internal.code(),
    };
    remap.iter().find(|(from, _)| *from == raw).map_or(raw, |(_, to)| *to)
}

/// The terminal and job control (DESIGN.md §5): who holds the terminal's
/// foreground, and whether gracestop suspended the family itself.
struct JobControl {
    /// gracestop's controlling terminal, if it has one.
    terminal: Option<Terminal>,
    /// The child's group is meant to hold the terminal: it was given it at
    /// spawn (`--terminal child`), or it stopped to read it.
    handed: Cell<bool>,
    /// gracestop stopped the family for a TSTP/TTIN/TTOU it received: the
    /// child's stop that the reaper sees next is ours, not news.
    suspended: Cell<bool>,
}

impl JobControl {
    /// A TSTP, TTIN or TTOU sent to gracestop: the child's group is stopped
    /// (SIGSTOP, as dumb-init does: a group member that catches TSTP would not
    /// stop), or with `--single-child` the child gets the signal itself; then
    /// gracestop stops too, so that a shell that started it sees the job stopped.
    fn suspend(&self, family: &Family, signal: Signal) {
        if !family.child_reaped.get() {
            let sent = if family.single_child {
                supervise::signal_child(family.child, signal)
            } else {
                supervise::signal_child_group(family.child, Signal::SIGSTOP)
            };
            if let Err(e) = sent {
                log::emit(Event::CannotSuspend { target: family.subject(), error: e.to_string() });
            }
        }
        self.suspended.set(true);
        log::emit(Event::Suspended { signal, target: family.subject() });
        supervise::stop_self();
    }

    /// SIGCONT to gracestop: the terminal goes back to the child's group if it
    /// had it and gracestop is in the foreground again (a shell's `fg`), then the
    /// group (or the child alone) is continued.
    fn resume(&self, family: &Family) {
        self.suspended.set(false);
        if family.child_reaped.get() {
            return;
        }
        if let Some(terminal) = &self.terminal {
            if self.handed.get() && terminal.is_ours() {
                if let Err(e) = terminal.give_to(family.child) {
                    log::emit(Event::TerminalNotReturned { target: family.subject(), error: e.to_string() });
                }
            }
        }
        supervise::forward(Signal::SIGCONT);
        log::emit(Event::Resumed { target: family.subject() });
    }

    /// The child stopped. Stopped for the terminal (TTIN, TTOU): if gracestop
    /// holds the foreground the child gets it and runs on; if a shell has put
    /// gracestop in the background, gracestop stops too, as the job it is, and
    /// the hand-over happens on `fg`. Stopped from the terminal it holds
    /// (Ctrl-Z): gracestop stops too, so that the shell that started it gets
    /// its prompt back.
    fn child_stopped(&self, family: &Family, signal: Signal) {
        log::emit(Event::ChildStopped { target: family.subject(), signal });
        let Some(terminal) = &self.terminal else { return };
        if self.suspended.get() {
            return;
        }
        match signal {
            Signal::SIGTTIN | Signal::SIGTTOU => {
                if terminal.is_ours() {
                    match terminal.give_to(family.child) {
                        Ok(()) => {
                            self.handed.set(true);
                            log::emit(Event::TerminalHanded { target: family.subject() });
                        }
                        Err(e) => log::emit(Event::TerminalFailed { target: family.subject(), error: e.to_string() }),
                    }
                    supervise::forward(Signal::SIGCONT);
                } else if terminal.foreground() != Some(family.child) {
                    self.handed.set(true);
                    supervise::stop_self();
                }
            }
            Signal::SIGTSTP | Signal::SIGSTOP if self.handed.get() && terminal.foreground() == Some(family.child) => {
                supervise::stop_self();
            }
            _ => {}
        }
    }

    /// The child is gone: the terminal comes back to gracestop if the child's
    /// group still holds it, so that a Ctrl-C reaches gracestop again.
    fn child_gone(&self, family: &Family) {
        if let Some(terminal) = &self.terminal {
            if self.handed.get() && terminal.foreground() == Some(family.child) {
                let _ = terminal.take_back();
            }
        }
    }
}

/// Whether the child's group gets the terminal at spawn: `--terminal child`, or
/// `auto` with nothing to do before the signal (with a deregistration or a
/// drain, Ctrl-C must reach gracestop to run them).
fn child_takes_terminal(config: &RunConfig) -> bool {
    match config.terminal {
        TerminalMode::Child => true,
        TerminalMode::Keep => false,
        TerminalMode::Auto => config.pre_stop.is_empty(),
    }
}

/// How long after the spawn gracestop drops its start-up pages from memory
/// ([`supervise::trim_when_idle`]): a command that ends sooner never pays for
/// it, and the one timer it takes fires once, early, and is gone.
const TRIM_AFTER: Duration = Duration::from_millis(100);

type Sequence<'a> = Pin<Box<dyn Future<Output = Result<Vec<Fate>>> + 'a>>;

pub async fn run(config: &RunConfig) -> Result<Exit> {
    // Before anything else, and before any thread exists, so every thread
    // inherits the mask: from here on every catchable signal is held until the
    // child exists; then the intake reads the ones gracestop acts on, and the
    // handlers forward the rest.
    let signals =
        supervise::take_signals(&config.stop_on, log::verbose()).context("cannot take over signal handling")?;
    supervise::become_subreaper().context("cannot become a child subreaper")?;

    let deregistration = Deregistration::new(&config.pre_stop.deregister)?;
    if shell_without_exec(&config.command) {
        log::emit(Event::ShellWithoutExec);
    }
    // Everything that can fail is done before the child exists: an error after
    // the spawn would leave it to the parent-death signal, without any drain.
    // The pidfile is held by its absolute path: gracestop moves to `/` below.
    let pidfile = match &config.pidfile {
        Some(path) => {
            let absolute =
                std::path::absolute(path).with_context(|| format!("cannot use pidfile {}", path.display()))?;
            write_pidfile(&absolute).with_context(|| format!("cannot write pidfile {}", path.display()))?;
            let guard = PidfileGuard(Some(absolute.clone()));
            check_own_pidfile(&absolute).with_context(|| format!("cannot use pidfile {}", path.display()))?;
            guard
        }
        None => PidfileGuard(None),
    };
    let jobs = JobControl { terminal: Terminal::open(), handed: Cell::new(false), suspended: Cell::new(false) };
    let (gone_tx, gone) = watch::channel(false);
    let family = spawn(config, &signals, &jobs, gone)?;
    notify(&[sd_notify::NotifyState::Ready]);

    let (requests_tx, requests) = Requests::channel(0);
    let mut supervisor = Supervisor {
        config,
        family: &family,
        jobs: &jobs,
        deregistration: deregistration.as_ref(),
        requests: &requests,
        requests_tx,
        gone_tx,
        status: None,
        sequence: None,
    };
    let status = supervisor.supervise(&signals).await?;
    drop(pidfile);

    let code = exit_status(&status, &config.remap_exit);
    log::emit(Event::Exiting { code });
    Ok(Exit::Child(code))
}

/// Step one: launch COMMAND in its own process group (with the terminal, when
/// it is to have it) and start forwarding signals to it.
fn spawn(config: &RunConfig, signals: &Intake, jobs: &JobControl, gone: watch::Receiver<bool>) -> Result<Family> {
    // The terminal goes to the child only if gracestop holds it and its stdin is
    // it (a shell gives `cmd &` /dev/null as stdin, and keeps its terminal).
    let hand_over = child_takes_terminal(config)
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
        && jobs.terminal.as_ref().is_some_and(Terminal::is_ours);
    let here = supervise::leave_working_directory();
    let spawned = supervise::spawn(&Spawn {
        argv: &config.command,
        death_signal: config.sequence.signal,
        stop_signal: config.sequence.signal,
        ignored: signals.ignored_at_start(),
        terminal: jobs.terminal.as_ref().filter(|_| hand_over),
        cwd: here.as_ref().map(std::os::fd::AsFd::as_fd),
        env_remove: &own_environment(),
    });
    drop(here);
    if spawned.is_err() && hand_over {
        // The terminal went to a child that never ran: take it back for the caller.
        if let Some(terminal) = &jobs.terminal {
            let _ = terminal.take_back();
        }
    }
    let child = spawned.map_err(|e| {
        coded(
            Exit::of_spawn_error(e.raw_os_error()),
            format!("cannot run {}: {e}", config.command[0].to_string_lossy()),
        )
    })?;
    jobs.handed.set(hand_over);
    // Cannot fail for a valid set; if it did, forwarding would merely stay held.
    if let Err(e) = signals.forward_to(child, config.single_child) {
        log::emit(Event::CannotForward { error: e.to_string() });
    }
    let name =
        Path::new(&config.command[0]).file_name().map_or_else(|| "?".into(), |n| n.to_string_lossy().into_owned());
    log::emit(Event::Started { target: Subject::process(child, name.as_str()) });
    if hand_over {
        log::emit(Event::TerminalChild);
    } else if jobs.terminal.as_ref().is_some_and(Terminal::is_ours) {
        log::emit(Event::TerminalKept);
    }
    Ok(Family {
        child,
        name,
        single_child: config.single_child,
        child_reaped: Cell::new(false),
        killing: Cell::new(false),
        stop_signal: config.sequence.signal,
        signalled_alone: Cell::new(false),
        gone,
    })
}

/// The supervisor, in the manner of tini's loop: wait for the next signal (or
/// the end of the stop sequence), act on it, and see whether the family is
/// gone. Each kind of happening has its named step below.
struct Supervisor<'a> {
    config: &'a RunConfig,
    family: &'a Family,
    jobs: &'a JobControl,
    deregistration: Option<&'a Deregistration>,
    requests: &'a Requests,
    /// Raised on every stop request; the sequence reads it through `requests`.
    requests_tx: watch::Sender<u32>,
    /// Set once the child is reaped and no descendant is left.
    gone_tx: watch::Sender<bool>,
    /// The child's status, once reaped.
    status: Option<Reaped>,
    /// The stop sequence under way, if any: the configured one after a stop
    /// request, or the one for the leftovers after the child exited.
    sequence: Option<Sequence<'a>>,
}

impl<'a> Supervisor<'a> {
    /// Runs until the child and all its descendants are gone; returns the
    /// child's status.
    async fn supervise(&mut self, intake: &Intake) -> Result<Reaped> {
        let trim = tokio::time::sleep(TRIM_AFTER);
        tokio::pin!(trim);
        let mut trim_pending = true;
        loop {
            tokio::select! {
                biased;
                batch = intake.next() => {
                    for arrival in batch.context("cannot read signals")? {
                        self.on_signal(arrival);
                    }
                }
                fates = async { self.sequence.as_mut().expect("guarded by the condition").await },
                    if self.sequence.is_some() =>
                {
                    if self.on_sequence_end(fates)? {
                        break;
                    }
                }
                () = &mut trim, if trim_pending => {
                    trim_pending = false;
                    supervise::trim_when_idle();
                }
            }
            if self.family.is_gone() && self.sequence.is_none() {
                break;
            }
            if self.status.is_some() && self.sequence.is_none() {
                self.stop_leftovers();
            }
        }
        let child = self.family.child;
        self.status.take().ok_or_else(|| coded(Exit::Internal, format!("lost the exit status of {child}")))
    }

    /// A signal from the intake (every other signal was forwarded by its handler).
    fn on_signal(&mut self, arrival: Arrival) {
        let signal = arrival.signal;
        if signal == Signal::SIGCHLD {
            self.on_child_event();
        } else if self.config.stop_on.contains(&signal) {
            self.on_stop_request(signal);
        } else if SUSPEND.contains(&signal) {
            self.jobs.suspend(self.family, signal);
        } else if signal == Signal::SIGCONT {
            self.jobs.resume(self.family);
        } else {
            forward_checked(self.family, arrival);
        }
    }

    /// SIGCHLD: reap everything that exited, note the child's status, and see
    /// whether the child stopped instead (job control).
    fn on_child_event(&mut self) {
        let family = self.family;
        let (reaped, none_left) = supervise::reap();
        for r in reaped {
            if r.pid == family.child {
                self.on_child_exit(r);
            } else {
                log::emit(Event::Reaped { pid: r.pid, ended: ended(&r) });
            }
        }
        if none_left && self.status.is_some() {
            self.gone_tx.send_replace(true);
        } else if family.killing.get() {
            let _ = family.signal(Signal::SIGKILL);
        }
        if !family.child_reaped.get() {
            if let Some(stopped_by) = supervise::stopped(family.child) {
                self.jobs.child_stopped(family, stopped_by);
            }
        }
    }

    /// The child itself is reaped: its status is gracestop's, and the rest of
    /// its family follows.
    fn on_child_exit(&mut self, reaped: Reaped) {
        let family = self.family;
        log::emit(Event::ChildExited {
            target: Subject::process(family.child, family.name.as_str()),
            ended: ended(&reaped),
        });
        self.status = Some(reaped);
        family.child_reaped.set(true);
        self.jobs.child_gone(family);
        orphans_follow(family, self.sequence.is_some());
    }

    /// A `--stop-on` signal: the first starts the configured sequence, the
    /// next ones escalate it (through `requests`).
    fn on_stop_request(&mut self, signal: Signal) {
        self.requests_tx.send_modify(|n| *n += 1);
        log::emit(Event::StopRequested { signal, count: *self.requests_tx.borrow() });
        if self.sequence.is_some() {
            return;
        }
        // `run` never leaves descendants behind: the kill at the end is implied.
        let stop = StopPlan { force: true, ..self.config.sequence.stop_plan() };
        let mut plan = Plan { steps: self.config.pre_stop.steps(self.deregistration), stop: Some(stop) };
        plan.announce(&format!("stop {}", self.family), &[self.family.subject()], self.config.pre_stop.deadline);
        let usec = u32::try_from(plan.worst_case().as_micros()).unwrap_or(u32::MAX);
        notify(&[sd_notify::NotifyState::Stopping, sd_notify::NotifyState::ExtendTimeoutUsec(usec)]);
        self.sequence = Some(Box::pin(sequence::stop_all_owned(self.family, plan, self.requests, &PreciseClock)));
    }

    /// The sequence ended: supervision ends too (true), with the family gone
    /// or with whatever survived SIGKILL left behind. A strict deregistration
    /// that failed signalled nothing: the child keeps running under
    /// supervision (false), and the next stop request starts over and, being
    /// the second, skips to the signal.
    fn on_sequence_end(&mut self, fates: Result<Vec<Fate>>) -> Result<bool> {
        self.sequence = None;
        match fates {
            Ok(_) => Ok(true),
            Err(e) if e.downcast_ref::<StrictFailure>().is_some() => {
                log::emit(Event::StrictFailureKeepsRunning { message: format!("{e:#}") });
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The child exited with no stop under way: what is left of its family gets
    /// the stop signal, `--wait`, and SIGKILL.
    fn stop_leftovers(&mut self) {
        log::emit(Event::StoppingLeftovers);
        let leftovers = Plan::stop_only(StopPlan { force: true, ..self.config.sequence.stop_plan() });
        self.sequence = Some(Box::pin(sequence::stop_all_owned(self.family, leftovers, self.requests, &PreciseClock)));
    }
}

/// The child is gone while a stop runs whose signal went to the child alone
/// (`--single-child`): what is left of its family gets that signal now, and
/// SIGCONT, instead of waiting for the SIGKILL at the end of `--wait`.
fn orphans_follow(family: &Family, stopping: bool) {
    if !stopping || !family.signalled_alone.get() {
        return;
    }
    let signal = family.stop_signal;
    log::emit(Event::OrphansFollow { signal });
    family.signal_outsiders(signal);
    family.signal_outsiders(Signal::SIGCONT);
}

/// A signal from the intake that is not gracestop's to act on: forwarded, and
/// logged at `-v`. A fault-named signal or SIGPIPE is forwarded only when
/// another process sent it: raised by the kernel in gracestop, a fault ends
/// gracestop at its default action, and a SIGPIPE is gracestop's own write to
/// a closed pipe, which fails with EPIPE and is otherwise ignored. Any other
/// signal reaches the intake only at `-v` (see [`supervise::take_signals`]) and
/// is forwarded whoever sent it (the terminal sends SIGWINCH).
fn forward_checked(family: &Family, arrival: Arrival) {
    let sig = arrival.signal;
    let checked = FAULTS.contains(&sig) || sig == Signal::SIGPIPE;
    if !checked || arrival.sent_by_another() {
        if supervise::forward(sig) {
            log::emit(Event::Forwarded { signal: sig, sender: arrival.sender, target: family.subject() });
        }
    } else if FAULTS.contains(&sig) {
        supervise::die_of(sig);
    }
}
