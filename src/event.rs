//! Every line gracestop prints, as one type.
//!
//! An [`Event`] is typed data: the target's PID and name, the signal, the
//! redacted URL, the HTTP status, durations. [`Event::render`] turns it into a
//! [`Rendered`] (level, phase, name, the human message and the typed fields),
//! in one `match`, so the human line and the JSON object cannot say different
//! things. [`crate::log`] decides where a rendering goes and in which format;
//! nothing else prints. The JSON schema (version [`SCHEMA_VERSION`]) is
//! documented in the README ("Log format and events").

use std::fmt;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

/// The `"v"` of every JSON line. New events and new keys may appear within a
/// version; a key changing meaning or disappearing bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// How much an event matters: `-q` shows errors only, `-v` adds debug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// The step an event belongs to: the phases of DESIGN.md §3, and `run`'s own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Plan,
    Deregister,
    Drain,
    Signal,
    Wait,
    Dump,
    Kill,
    Request,
    Run,
    Exit,
    Reap,
    Terminal,
    Notify,
    Done,
    Error,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Deregister => "deregister",
            Phase::Drain => "drain",
            Phase::Signal => "signal",
            Phase::Wait => "wait",
            Phase::Dump => "dump",
            Phase::Kill => "kill",
            Phase::Request => "request",
            Phase::Run => "run",
            Phase::Exit => "exit",
            Phase::Reap => "reap",
            Phase::Terminal => "terminal",
            Phase::Notify => "notify",
            Phase::Done => "done",
            Phase::Error => "error",
        }
    }
}

/// Who an event is about: a target of the sequence, or a process of `run`'s family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub pid: i32,
    pub comm: String,
    pub scope: Scope,
}

/// What a signal to a [`Subject`] reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The process alone.
    Process,
    /// Its whole process group (`stop --group`).
    Group(i32),
    /// The child of `run` and its process group, whose id is the child's PID.
    ChildGroup,
}

impl Subject {
    pub fn process(pid: i32, comm: impl Into<String>) -> Subject {
        Subject { pid, comm: comm.into(), scope: Scope::Process }
    }

    fn group(&self) -> Option<i32> {
        match self.scope {
            Scope::Process => None,
            Scope::Group(pgid) => Some(pgid),
            Scope::ChildGroup => Some(self.pid),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.pid, self.comm)?;
        match self.scope {
            Scope::Process => Ok(()),
            Scope::Group(pgid) => write!(f, " and its process group {pgid}"),
            Scope::ChildGroup => write!(f, " and its process group"),
        }
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl Ended {
    pub fn from_status(code: Option<i32>, signal: Option<i32>) -> Ended {
        match (code, signal) {
            (Some(code), _) => Ended::Code(code),
            (None, Some(signal)) => Ended::Signal(signal),
            _ => Ended::Unknown,
        }
    }
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ended::Code(code) => write!(f, "exited with {code}"),
            Ended::Signal(signal) => write!(f, "was killed by {}", signal_name(signal)),
            Ended::Unknown => f.write_str("ended"),
        }
    }
}

/// `SIGTERM` for 15; the number itself for a signal nix does not name (real-time ones).
pub fn signal_name(number: i32) -> String {
    Signal::try_from(number).map_or_else(|_| number.to_string(), |s| s.as_str().to_string())
}

/// Why a target will not act on a signal as hoped (`stop` checks before signalling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCaught {
    /// It ignores the stop signal: it will not stop on it.
    Ignored,
    /// It does not catch the stop signal: it dies at once, without cleanup.
    Default,
    /// It ignores the dump signal: `--dump` does nothing.
    DumpIgnored,
}

/// One deregistration attempt's outcome that is not a 2xx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    /// What went wrong, as the human line says it.
    pub problem: String,
    pub took: Duration,
    pub attempt: u32,
    pub attempts: u32,
}

/// Everything gracestop reports. Messages follow each variant's doc.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    // plan
    /// `deregister POST http://… (at most 15.8s)`
    DeregisterPlanned {
        method: String,
        urls: Vec<String>,
        worst: Duration,
    },
    /// `stop 4242 (java): SIGTERM, wait 30s, then SIGKILL; worst case 31s`
    Planned {
        summary: String,
        targets: Vec<Subject>,
        steps: PlanFields,
        worst: Duration,
    },
    /// The worst case exceeds `--deadline`, and what was shortened.
    DeadlineExceeded {
        worst: Duration,
        deadline: Duration,
        cuts: Vec<Cut>,
        over: Duration,
    },
    NotRunning {
        pid: i32,
        reason: &'static str,
    },
    PidfileMissing {
        path: String,
        missing: String,
    },
    PidfileDead {
        path: String,
        pid: i32,
        reason: &'static str,
    },
    PidfileStale {
        path: String,
        pid: i32,
        comm: String,
        reason: String,
    },
    NothingToStop,
    Watching {
        pid: i32,
        by: &'static str,
    },
    PidfdUnavailable {
        pid: i32,
        error: String,
    },
    SignalNotCaught {
        target: Subject,
        signal: Signal,
        how: NotCaught,
    },

    // deregister
    Deregistered {
        method: String,
        url: String,
        status: u16,
        took: Duration,
        attempt: u32,
        attempts: u32,
    },
    DeregisterRetry {
        attempt: Attempt,
        pause: Duration,
    },
    DeregisterFailed {
        attempt: Attempt,
    },
    DeregisterIncomplete {
        failed: usize,
        of: usize,
    },

    // drain
    DrainStarted {
        duration: Duration,
    },
    DrainDone {
        duration: Duration,
    },
    DrainCut,

    // signal, dump, kill
    GoneBeforeSignal,
    AlreadyExited {
        target: Subject,
    },
    /// The stop signal (phase signal), the dump signal and its wait (dump), SIGKILL (kill).
    SignalSent {
        phase: Phase,
        target: Subject,
        signal: Signal,
        wait: Option<Duration>,
    },
    GroupNewcomers {
        signal: Signal,
        pids: Vec<i32>,
        target: Subject,
    },
    MemberLeftAlone {
        pid: i32,
        comm: String,
        owner: String,
    },
    GroupMember {
        pid: i32,
        comm: String,
    },
    GroupKeepsGrowing {
        target: Subject,
    },
    Forwarded {
        signal: Signal,
        sender: u32,
        target: Subject,
    },
    OutsiderSignalled {
        signal: Signal,
        pid: i32,
        comm: String,
    },
    Suspended {
        signal: Signal,
        target: Subject,
    },
    CannotSuspend {
        target: Subject,
        error: String,
    },
    Resumed {
        target: Subject,
    },
    ChildStopped {
        target: Subject,
        signal: Signal,
    },

    // wait, dump
    Exited {
        phase: Phase,
        target: Subject,
        after: Duration,
        signal: Signal,
    },
    StillRunning {
        target: Subject,
        after: Duration,
    },
    GaveUp {
        target: Subject,
        after: Duration,
    },
    ExitedBefore {
        phase: Phase,
        target: Subject,
    },

    // kill
    Escalated,
    Killed {
        target: Subject,
        after: Duration,
    },
    SurvivedKill {
        target: Subject,
        confirm: Duration,
    },

    // request
    StopRequested {
        signal: Signal,
        count: u32,
    },
    HangupIgnored,

    // run, exit, reap, terminal, notify
    Started {
        target: Subject,
    },
    ShellWithoutExec,
    CannotForward {
        error: String,
    },
    StoppingLeftovers,
    OrphansFollow {
        signal: Signal,
    },
    ChildExited {
        target: Subject,
        ended: Ended,
    },
    Reaped {
        pid: i32,
        ended: Ended,
    },
    TerminalHanded {
        target: Subject,
    },
    TerminalChild,
    TerminalKept,
    TerminalFailed {
        target: Subject,
        error: String,
    },
    TerminalNotReturned {
        target: Subject,
        error: String,
    },
    NotifyFailed {
        error: String,
    },

    // done
    Stopped {
        of: usize,
        killed: usize,
    },
    StillRunningAtEnd {
        running: usize,
        of: usize,
    },
    Drained,
    Exiting {
        code: u8,
    },

    // error
    Error {
        message: String,
    },
    StrictFailureKeepsRunning {
        message: String,
    },
}

/// The plan's steps, for the JSON `planned` event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanFields {
    pub drain: Duration,
    pub signal: Option<Signal>,
    pub wait: Option<Duration>,
    pub dump: Option<(Signal, Duration)>,
    pub force: Option<bool>,
}

/// One step shortened to fit `--deadline`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub step: &'static str,
    pub before: Duration,
    pub after: Duration,
    /// It takes back, up to `before`, what the steps before it leave of their
    /// worst case (a deregistration that answers at once).
    pub elastic: bool,
}

/// An event ready to print: what both renderings need.
#[derive(Debug)]
pub struct Rendered {
    pub level: Level,
    pub phase: Phase,
    pub name: &'static str,
    pub message: String,
    pub fields: Vec<(&'static str, Value)>,
}

/// A duration in milliseconds, to the microsecond, for JSON.
pub fn ms(duration: Duration) -> Value {
    Value::from((duration.as_secs_f64() * 1e6).round() / 1e3)
}

/// A measured span for the human line: `0.4 ms`, `12.0 ms`, `1.006s`.
pub fn span(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{:.1} ms", duration.as_secs_f64() * 1e3)
    } else {
        format!("{:.3}s", duration.as_secs_f64())
    }
}

/// A configured duration for the human line, to the millisecond: `30s`, `1m 30s`, `500ms`.
pub fn setting(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(duration.as_millis() as u64))
}

/// The typed fields of an event, in the order they are written.
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn new() -> Fields {
        Fields(Vec::new())
    }
    fn add(mut self, key: &'static str, value: impl Into<Value>) -> Fields {
        self.0.push((key, value.into()));
        self
    }
    fn maybe(self, key: &'static str, value: Option<impl Into<Value>>) -> Fields {
        match value {
            Some(value) => self.add(key, value),
            None => self,
        }
    }
    fn duration(self, key: &'static str, duration: Duration) -> Fields {
        self.add(key, ms(duration))
    }
    fn signal(self, key: &'static str, signal: Signal) -> Fields {
        self.add(key, signal.as_str())
    }
    fn subject(self, subject: &Subject) -> Fields {
        let group = subject.group();
        self.add("pid", subject.pid).add("comm", subject.comm.as_str()).maybe("group", group)
    }
    fn ended(self, ended: Ended) -> Fields {
        match ended {
            Ended::Code(code) => self.add("exit_code", code),
            Ended::Signal(signal) => self.add("exit_signal", signal_name(signal)),
            Ended::Unknown => self,
        }
    }
    fn attempt(self, a: &Attempt) -> Fields {
        self.add("method", a.method.as_str())
            .add("url", a.url.as_str())
            .maybe("status", a.status)
            .add("error", a.problem.as_str())
            .duration("took_ms", a.took)
            .add("attempt", a.attempt)
            .add("attempts", a.attempts)
    }
}

fn subject_value(subject: &Subject) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("pid".into(), subject.pid.into());
    object.insert("comm".into(), subject.comm.clone().into());
    if let Some(group) = subject.group() {
        object.insert("group".into(), group.into());
    }
    Value::Object(object)
}

impl Event {
    /// Whether the event is at the error level, the one `-q` shows, known
    /// without rendering it (which builds its message and fields).
    pub fn is_error(&self) -> bool {
        matches!(self, Event::Error { .. } | Event::StrictFailureKeepsRunning { .. })
    }

    /// The event's level, phase, name, human message and typed fields.
    pub fn render(&self) -> Rendered {
        use Event::*;
        use Level::{Debug, Info, Warn};
        let f = Fields::new();
        let (level, phase, name, message, fields) = match self {
            DeregisterPlanned { method, urls, worst } => (
                Info,
                Phase::Plan,
                "deregister_planned",
                format!("deregister {method} {} (at most {})", urls.join(" "), span(*worst)),
                f.add("method", method.as_str()).add("urls", urls.clone()).duration("worst_case_ms", *worst),
            ),
            Planned { summary, targets, steps, worst } => (
                Info,
                Phase::Plan,
                "planned",
                format!("{summary}; worst case {}", span(*worst)),
                f.add("targets", targets.iter().map(subject_value).collect::<Vec<_>>())
                    .duration("drain_ms", steps.drain)
                    .maybe("signal", steps.signal.map(Signal::as_str))
                    .maybe("wait_ms", steps.wait.map(ms))
                    .maybe("dump_signal", steps.dump.map(|d| d.0.as_str()))
                    .maybe("dump_wait_ms", steps.dump.map(|d| ms(d.1)))
                    .maybe("force", steps.force)
                    .duration("worst_case_ms", *worst),
            ),
            DeadlineExceeded { worst, deadline, cuts, over } => {
                let mut note = format!("worst case {} exceeds --deadline {}", setting(*worst), setting(*deadline));
                let mut fields = f.duration("worst_case_ms", *worst).duration("deadline_ms", *deadline);
                for cut in cuts {
                    note.push_str(&format!(
                        "; {} shortened from {} to {}",
                        cut.step,
                        setting(cut.before),
                        setting(cut.after)
                    ));
                    if cut.elastic {
                        note.push_str(" (more, up to the full length, when the steps before it end sooner)");
                    }
                    let key = match cut.step {
                        "drain" => "drain_ms",
                        "wait" => "wait_ms",
                        _ => "shortened_ms",
                    };
                    fields = fields.duration(key, cut.after);
                }
                if !over.is_zero() {
                    note.push_str(&format!(
                        "; still {} over (deregistration, dump and kill are not shortened)",
                        setting(*over)
                    ));
                }
                (Warn, Phase::Plan, "deadline_exceeded", note, fields.duration("over_ms", *over))
            }
            NotRunning { pid, reason } => (
                Info,
                Phase::Plan,
                "not_running",
                format!("PID {pid} is not running ({reason})"),
                f.add("pid", *pid).add("reason", *reason),
            ),
            PidfileMissing { path, missing } => (
                Info,
                Phase::Plan,
                "pidfile_missing",
                format!("pidfile {path} does not exist ({missing} is missing): not running"),
                f.add("path", path.as_str()),
            ),
            PidfileDead { path, pid, reason } => (
                Info,
                Phase::Plan,
                "pidfile_stale",
                format!("pidfile {path}: PID {pid} is not running ({reason}): stale"),
                f.add("path", path.as_str()).add("pid", *pid).add("reason", *reason),
            ),
            PidfileStale { path, pid, comm, reason } => (
                Info,
                Phase::Plan,
                "pidfile_stale",
                format!("pidfile {path} is stale: PID {pid} ({comm}) is not its process ({reason}); not touching it"),
                f.add("path", path.as_str()).add("pid", *pid).add("comm", comm.as_str()).add("reason", reason.as_str()),
            ),
            NothingToStop => {
                (Info, Phase::Plan, "nothing_to_stop", "nothing to stop: no target is running".into(), f)
            }
            Watching { pid, by } => (
                Debug,
                Phase::Plan,
                "watching",
                format!("watching {pid} by {by}"),
                f.add("pid", *pid).add("reason", *by),
            ),
            PidfdUnavailable { pid, error } => (
                Debug,
                Phase::Plan,
                "pidfd_unavailable",
                format!("pidfd unavailable ({error}); polling /proc for {pid}"),
                f.add("pid", *pid).add("error", error.as_str()),
            ),
            SignalNotCaught { target, signal, how } => {
                let (text, reason) = match how {
                    NotCaught::Ignored => (format!("{target} ignores {signal}: it will not stop on it"), "ignored"),
                    NotCaught::Default => (
                        format!("{target} does not catch {signal}: it will die at once, without cleanup"),
                        "not caught",
                    ),
                    NotCaught::DumpIgnored => {
                        (format!("{target} ignores {signal}: --dump will do nothing"), "dump ignored")
                    }
                };
                (
                    Warn,
                    Phase::Plan,
                    "signal_not_caught",
                    text,
                    f.subject(target).signal("signal", *signal).add("reason", reason),
                )
            }

            Deregistered { method, url, status, took, attempt, attempts } => (
                Info,
                Phase::Deregister,
                "deregistered",
                format!("{method} {url} -> {status} ({})", span(*took)),
                f.add("method", method.as_str())
                    .add("url", url.as_str())
                    .add("status", *status)
                    .duration("took_ms", *took)
                    .add("attempt", *attempt)
                    .add("attempts", *attempts),
            ),
            DeregisterRetry { attempt: a, pause } => (
                Warn,
                Phase::Deregister,
                "deregister_retry",
                format!(
                    "{} {} -> {} ({}, attempt {} of {}); retrying in {}",
                    a.method,
                    a.url,
                    a.problem,
                    span(a.took),
                    a.attempt,
                    a.attempts,
                    span(*pause)
                ),
                f.attempt(a).duration("retry_in_ms", *pause),
            ),
            DeregisterFailed { attempt: a } => (
                Warn,
                Phase::Deregister,
                "deregister_failed",
                format!(
                    "{} {} failed: {} ({}, attempt {} of {})",
                    a.method,
                    a.url,
                    a.problem,
                    span(a.took),
                    a.attempt,
                    a.attempts
                ),
                f.attempt(a),
            ),
            DeregisterIncomplete { failed, of } => (
                Warn,
                Phase::Deregister,
                "deregister_incomplete",
                format!("{failed} of {of} deregistration(s) failed; going on"),
                f.add("failed", *failed).add("of", *of),
            ),

            DrainStarted { duration } => (
                Info,
                Phase::Drain,
                "drain_started",
                format!("waiting {} for load balancers to stop routing here", setting(*duration)),
                f.duration("duration_ms", *duration),
            ),
            DrainDone { duration } => (Info, Phase::Drain, "drain_done", "done".into(), f.duration("duration_ms", *duration)),
            DrainCut => (Info, Phase::Drain, "drain_cut", "stop requested again: skipping to the signal".into(), f),

            GoneBeforeSignal => (
                Info,
                Phase::Signal,
                "gone_before_signal",
                "every target exited before the stop signal".into(),
                f,
            ),
            AlreadyExited { target } => (
                Info,
                Phase::Signal,
                "already_exited",
                format!("{target} had already exited"),
                f.subject(target),
            ),
            SignalSent { phase, target, signal, wait } => {
                let text = match wait {
                    Some(wait) => format!("{signal} -> {target}, waiting {}", setting(*wait)),
                    None => format!("{signal} -> {target}"),
                };
                let fields = f.subject(target).signal("signal", *signal).maybe("wait_ms", wait.map(ms));
                (Info, *phase, "signal_sent", text, fields)
            }
            GroupNewcomers { signal, pids, target } => {
                let shown: Vec<String> = pids.iter().map(ToString::to_string).collect();
                (
                    Info,
                    Phase::Signal,
                    "group_newcomers",
                    format!("{signal} -> {}, new in the group of {target}", shown.join(", ")),
                    f.subject(target).signal("signal", *signal).add("pids", pids.clone()),
                )
            }
            MemberLeftAlone { pid, comm, owner } => (
                Warn,
                Phase::Signal,
                "member_left_alone",
                format!("leaving group member {pid} ({comm}) alone: it belongs to {owner}, whom the pidfile's rule excludes"),
                f.add("pid", *pid).add("comm", comm.as_str()).add("reason", "owner excluded by the pidfile rule"),
            ),
            GroupMember { pid, comm } => (
                Debug,
                Phase::Signal,
                "group_member",
                format!("group member {pid} ({comm})"),
                f.add("pid", *pid).add("comm", comm.as_str()),
            ),
            GroupKeepsGrowing { target } => (
                Warn,
                Phase::Wait,
                "group_keeps_growing",
                format!("the group of {target} keeps gaining members; not waiting for it any more"),
                f.subject(target),
            ),
            Forwarded { signal, sender, target } => (
                Debug,
                Phase::Signal,
                "forwarded",
                format!("{signal} from {sender} -> {target}"),
                f.subject(target).signal("signal", *signal).add("sender", *sender),
            ),
            OutsiderSignalled { signal, pid, comm } => (
                Debug,
                Phase::Signal,
                "outsider_signalled",
                format!("{signal} -> {pid} ({comm}), outside the child's group"),
                f.add("pid", *pid).add("comm", comm.as_str()).signal("signal", *signal),
            ),
            Suspended { signal, target } => (
                Info,
                Phase::Signal,
                "suspended",
                format!("received {signal}: suspending {target} and gracestop"),
                f.subject(target).signal("signal", *signal),
            ),
            CannotSuspend { target, error } => (
                Debug,
                Phase::Signal,
                "cannot_suspend",
                format!("cannot suspend {target}: {error}"),
                f.subject(target).add("error", error.as_str()),
            ),
            Resumed { target } => (
                Debug,
                Phase::Signal,
                "resumed",
                format!("SIGCONT -> {target}"),
                f.subject(target).signal("signal", Signal::SIGCONT),
            ),
            ChildStopped { target, signal } => (
                Debug,
                Phase::Signal,
                "child_stopped",
                format!("{} ({}) was stopped by {signal}", target.pid, target.comm),
                f.subject(target).signal("signal", *signal),
            ),

            Exited { phase, target, after, signal } => (
                Info,
                *phase,
                "exited",
                format!("{target} exited {} after {signal}", span(*after)),
                f.subject(target).duration("after_ms", *after).signal("signal", *signal),
            ),
            StillRunning { target, after } => (
                Info,
                Phase::Wait,
                "still_running",
                format!("{target} still runs after {}", setting(*after)),
                f.subject(target).duration("after_ms", *after),
            ),
            GaveUp { target, after } => (
                Warn,
                Phase::Wait,
                "gave_up",
                format!("{target} still runs after {}; not killing it without --force", span(*after)),
                f.subject(target).duration("after_ms", *after),
            ),
            ExitedBefore { phase, target } => (
                Info,
                *phase,
                "exited_before",
                format!("{target} exited before {}", phase.name()),
                f.subject(target),
            ),

            Escalated => (Info, Phase::Kill, "escalated", "stop requested a third time: skipping to SIGKILL".into(), f),
            Killed { target, after } => (
                Info,
                Phase::Kill,
                "killed",
                format!("{target} killed ({} after SIGKILL)", span(*after)),
                f.subject(target).duration("after_ms", *after),
            ),
            SurvivedKill { target, confirm } => (
                Warn,
                Phase::Kill,
                "survived_kill",
                format!("{target} survived SIGKILL for {} (uninterruptible sleep?)", setting(*confirm)),
                f.subject(target).duration("after_ms", *confirm),
            ),

            StopRequested { signal, count } => (
                Info,
                Phase::Request,
                "stop_requested",
                format!("received {signal} (stop request {count})"),
                f.signal("signal", *signal).add("count", *count),
            ),
            HangupIgnored => (
                Info,
                Phase::Request,
                "hangup_ignored",
                "received SIGHUP: ignored, the stop goes on".into(),
                f.signal("signal", Signal::SIGHUP),
            ),

            Started { target } => (
                Info,
                Phase::Run,
                "started",
                format!("started {} ({}) in process group {}", target.pid, target.comm, target.pid),
                f.add("pid", target.pid).add("comm", target.comm.as_str()).add("group", target.pid),
            ),
            ShellWithoutExec => (
                Warn,
                Phase::Run,
                "shell_without_exec",
                "COMMAND is a shell running a script without `exec`: signals reach the shell, not the app \
                 (gracestop signals the whole process group, but `sh -c 'exec app'` is safer)"
                    .into(),
                f,
            ),
            CannotForward { error } => (
                Warn,
                Phase::Run,
                "cannot_forward",
                format!("cannot forward signals to the child: {error}"),
                f.add("error", error.as_str()),
            ),
            StoppingLeftovers => (
                Info,
                Phase::Run,
                "stopping_leftovers",
                "the child has exited; stopping what is left of its family".into(),
                f,
            ),
            OrphansFollow { signal } => (
                Info,
                Phase::Run,
                "orphans_follow",
                format!("the child has exited; {signal} to what is left of its family"),
                f.signal("signal", *signal),
            ),
            ChildExited { target, ended } => (
                Info,
                Phase::Exit,
                "child_exited",
                format!("{} ({}) {ended}", target.pid, target.comm),
                f.add("pid", target.pid).add("comm", target.comm.as_str()).ended(*ended),
            ),
            Reaped { pid, ended } => {
                (Debug, Phase::Reap, "reaped", format!("orphan {pid} {ended}"), f.add("pid", *pid).ended(*ended))
            }
            TerminalHanded { target } => (
                Info,
                Phase::Terminal,
                "terminal_handed",
                format!("{target} reads the terminal: it is now theirs"),
                f.subject(target),
            ),
            TerminalChild => (
                Debug,
                Phase::Terminal,
                "terminal_child",
                "the terminal is the child's: Ctrl-C reaches it, not gracestop".into(),
                f,
            ),
            TerminalKept => (
                Debug,
                Phase::Terminal,
                "terminal_kept",
                "gracestop keeps the terminal: Ctrl-C runs the stop sequence".into(),
                f,
            ),
            TerminalFailed { target, error } => (
                Warn,
                Phase::Terminal,
                "terminal_failed",
                format!("cannot give the terminal to {target}: {error}"),
                f.subject(target).add("error", error.as_str()),
            ),
            TerminalNotReturned { target, error } => (
                Debug,
                Phase::Terminal,
                "terminal_failed",
                format!("cannot give the terminal back to {target}: {error}"),
                f.subject(target).add("error", error.as_str()),
            ),
            NotifyFailed { error } => (
                Debug,
                Phase::Notify,
                "notify_failed",
                format!("cannot notify systemd: {error}"),
                f.add("error", error.as_str()),
            ),

            Stopped { of, killed } => (
                Info,
                Phase::Done,
                "stopped",
                format!("{of} target(s) gone ({} exited, {killed} killed)", of - killed),
                f.add("of", *of).add("exited", of - killed).add("killed", *killed),
            ),
            StillRunningAtEnd { running, of } => (
                Warn,
                Phase::Done,
                "still_running_at_end",
                format!("{running} of {of} target(s) still running"),
                f.add("running", *running).add("of", *of),
            ),
            Drained => (Info, Phase::Done, "drained", "deregistered and drained".into(), f),
            Exiting { code } => (Info, Phase::Done, "exiting", format!("exiting with {code}"), f.add("code", *code)),

            Error { message } => (Level::Error, Phase::Error, "error", message.clone(), f),
            StrictFailureKeepsRunning { message } => (
                Level::Error,
                Phase::Error,
                "strict_failure_keeps_running",
                format!("{message}; the child keeps running: send SIGTERM again to stop it without deregistering"),
                f,
            ),
        };
        debug_assert_eq!(level == Level::Error, self.is_error(), "is_error disagrees with render for {name}");
        Rendered { level, phase, name, message, fields: fields.0 }
    }
}

impl Rendered {
    /// The human line, without its newline: `gracestop: +0.012s signal SIGTERM -> 4242 (java)`.
    pub fn human(&self, elapsed: Duration) -> String {
        if self.level == Level::Error {
            return format!("gracestop: error: {}", self.message);
        }
        let warning = if self.level == Level::Warn { "warning: " } else { "" };
        format!("gracestop: +{:.3}s {} {warning}{}", elapsed.as_secs_f64(), self.phase.name(), self.message)
    }

    /// The JSON object, without its newline: common keys first, then the fields.
    pub fn json(&self, elapsed: Duration) -> String {
        let mut line = format!(
            "{{\"v\":{SCHEMA_VERSION},\"elapsed_ms\":{},\"level\":\"{}\",\"phase\":\"{}\",\"event\":\"{}\",\"msg\":{}",
            ms(elapsed),
            self.level.name(),
            self.phase.name(),
            self.name,
            Value::from(self.message.as_str())
        );
        for (key, value) in &self.fields {
            line.push_str(&format!(",\"{key}\":{value}"));
        }
        line.push('}');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java() -> Subject {
        Subject::process(4242, "java")
    }

    #[test]
    fn human_and_json_render_the_same_event() {
        let event = Event::SignalSent { phase: Phase::Signal, target: java(), signal: Signal::SIGTERM, wait: None };
        let rendered = event.render();
        let at = Duration::from_millis(12);
        assert_eq!(rendered.human(at), "gracestop: +0.012s signal SIGTERM -> 4242 (java)");
        let json: Value = serde_json::from_str(&rendered.json(at)).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["elapsed_ms"], 12.0);
        assert_eq!(json["event"], "signal_sent");
        assert_eq!(json["phase"], "signal");
        assert_eq!(json["pid"], 4242);
        assert_eq!(json["comm"], "java");
        assert_eq!(json["signal"], "SIGTERM");
        assert_eq!(json["msg"], "SIGTERM -> 4242 (java)");
        assert!(json.get("group").is_none());
    }

    #[test]
    fn json_keys_come_in_a_fixed_order_and_escape_text() {
        let event = Event::Error { message: "cannot read \"x\"\n\u{1}".into() };
        let line = event.render().json(Duration::ZERO);
        assert!(
            line.starts_with("{\"v\":1,\"elapsed_ms\":0.0,\"level\":\"error\",\"phase\":\"error\",\"event\":\"error\"")
        );
        assert!(!line.contains('\n'));
        let json: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["msg"], "cannot read \"x\"\n\u{1}");
        assert_eq!(event.render().human(Duration::ZERO), "gracestop: error: cannot read \"x\"\n\u{1}");
    }

    #[test]
    fn warnings_say_so_in_the_human_line_and_in_the_level() {
        let event = Event::GaveUp { target: java(), after: Duration::from_millis(2001) };
        let rendered = event.render();
        assert_eq!(rendered.level, Level::Warn);
        assert!(rendered.human(Duration::ZERO).contains(" wait warning: 4242 (java) still runs after 2.001s"));
    }

    #[test]
    fn groups_and_endings_are_typed() {
        let target = Subject { scope: Scope::Group(77), ..java() };
        assert_eq!(target.to_string(), "4242 (java) and its process group 77");
        let event = Event::ChildExited { target: java(), ended: Ended::Signal(9) };
        let json: Value = serde_json::from_str(&event.render().json(Duration::ZERO)).unwrap();
        assert_eq!(json["exit_signal"], "SIGKILL");
        assert_eq!(json["msg"], "4242 (java) was killed by SIGKILL");
        let event = Event::SignalSent { phase: Phase::Kill, target, signal: Signal::SIGKILL, wait: None };
        let json: Value = serde_json::from_str(&event.render().json(Duration::ZERO)).unwrap();
        assert_eq!((json["group"].as_i64(), json["phase"].as_str()), (Some(77), Some("kill")));
    }

    #[test]
    fn is_error_is_the_rendered_level() {
        let events = [
            Event::Error { message: "x".into() },
            Event::StrictFailureKeepsRunning { message: "x".into() },
            Event::GaveUp { target: java(), after: Duration::ZERO },
            Event::ChildExited { target: java(), ended: Ended::Code(0) },
            Event::Exiting { code: 0 },
        ];
        for event in events {
            assert_eq!(event.is_error(), event.render().level == Level::Error, "{:?}", event.render().name);
        }
    }

    #[test]
    fn spans_keep_sub_millisecond_precision() {
        assert_eq!(span(Duration::from_micros(380)), "0.4 ms");
        assert_eq!(span(Duration::from_millis(12)), "12.0 ms");
        assert_eq!(span(Duration::from_millis(1006)), "1.006s");
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }
}
