//! The domain configuration each command receives, built once from the
//! command line by `cli` (the only module that knows clap), and the rules that
//! a value must meet whatever its source (the PID rule of DESIGN.md §4).
//!
//! Nothing here is validated against the world yet: files are not read, URLs
//! not called, processes not looked at. The commands do that, before the first
//! signal. What it does own is how a configuration becomes the parts of the
//! plan: the pre-stop steps in their order ([`PreStopConfig::steps`]: a step
//! added later is added there, for every command) and the stop plan
//! ([`SequenceConfig::stop_plan`]: a stop action added later is chosen there).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::deregister::Deregistration;
use crate::log;
use crate::sequence::{Drain, Dump, PreciseClock, Step, StopAction, StopPlan};

/// What gracestop was asked to do.
#[derive(Debug)]
pub struct Config {
    pub log: LogConfig,
    pub command: Command,
}

/// How events are written.
#[derive(Debug)]
pub struct LogConfig {
    pub verbosity: log::Verbosity,
    pub format: log::Format,
    /// `--log-file`: append there instead of stderr.
    pub file: Option<PathBuf>,
}

#[derive(Debug)]
pub enum Command {
    Stop(StopConfig),
    Drain(DrainConfig),
    Run(RunConfig),
}

/// `gracestop stop`.
#[derive(Debug)]
pub struct StopConfig {
    /// Each already checked against [`check_pid`].
    pub pids: Vec<i32>,
    pub pidfiles: Vec<PathBuf>,
    /// Signal the target's whole process group.
    pub group: bool,
    /// No target running is success, not exit 3.
    pub missing_ok: bool,
    pub pre_stop: PreStopConfig,
    pub sequence: SequenceConfig,
}

/// `gracestop drain`.
#[derive(Debug)]
pub struct DrainConfig {
    pub pre_stop: PreStopConfig,
}

/// `gracestop run`.
#[derive(Debug)]
pub struct RunConfig {
    /// Signals to gracestop that start (and escalate) the stop sequence.
    pub stop_on: Vec<Signal>,
    /// The stop signal goes to the child alone, not its process group.
    pub single_child: bool,
    /// `--remap-exit FROM=TO`.
    pub remap_exit: Vec<(u8, u8)>,
    /// Where gracestop writes its own PID.
    pub pidfile: Option<PathBuf>,
    pub terminal: TerminalMode,
    pub pre_stop: PreStopConfig,
    pub sequence: SequenceConfig,
    /// COMMAND and its arguments; never empty.
    pub command: Vec<OsString>,
}

/// Who owns a terminal `run` was started in the foreground of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalMode {
    /// `Keep` when a deregistration or drain is configured, `Child` otherwise.
    Auto,
    /// The child's process group gets the terminal (as under tini).
    Child,
    /// gracestop keeps it: Ctrl-C runs the stop sequence.
    Keep,
}

/// The steps before the stop action, and the outer budget.
#[derive(Debug)]
pub struct PreStopConfig {
    pub deregister: DeregisterConfig,
    /// The fixed drain after deregistering.
    pub drain: Duration,
    /// `--deadline`: the outer budget the whole sequence must fit.
    pub deadline: Option<Duration>,
}

impl PreStopConfig {
    /// Whether anything happens before the signal.
    pub fn is_empty(&self) -> bool {
        self.deregister.urls.is_empty() && self.drain.is_zero()
    }

    /// The pre-stop steps, in order: the deregistration (built and validated by
    /// the command, when a URL is given), then the drain.
    pub fn steps<'a>(&self, deregistration: Option<&'a Deregistration>) -> Vec<Box<dyn Step + 'a>> {
        let mut steps: Vec<Box<dyn Step + 'a>> = Vec::new();
        if let Some(deregistration) = deregistration {
            steps.push(Box::new(deregistration));
        }
        steps.push(Box::new(Drain::new(self.drain, PreciseClock)));
        steps
    }
}

/// The HTTP deregistration step; no URL means no step.
#[derive(Debug)]
pub struct DeregisterConfig {
    pub urls: Vec<Url>,
    pub method: Method,
    pub headers: Vec<Header>,
    /// The text itself, or `@FILE`.
    pub body: Option<String>,
    /// Per attempt.
    pub timeout: Duration,
    pub retries: u32,
    /// A failure aborts before any signal.
    pub strict: bool,
    /// PEM bundle to check https URLs against, instead of the system's roots.
    pub cacert: Option<PathBuf>,
}

/// The stop action and what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceConfig {
    pub signal: Signal,
    pub wait: Duration,
    pub force: bool,
    pub dump: Option<Dump>,
}

impl SequenceConfig {
    /// The stop action and what follows it.
    pub fn stop_plan(&self) -> StopPlan {
        StopPlan { action: StopAction::Signal(self.signal), wait: self.wait, dump: self.dump, force: self.force }
    }
}

/// A request header. Its value is a secret as far as the log is concerned.
#[derive(Clone)]
pub struct Header {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ***", self.name)
    }
}

/// The PID rule of DESIGN.md §4: a whole number ≥ 2 that is not gracestop's own.
/// `0` and negatives would mean process groups or every process to kill(2).
pub fn check_pid(number: i64) -> Result<i32, String> {
    match number {
        n if n < 0 => Err(format!("PID {n} is refused: a negative PID means a process group, and -1 every process")),
        0 => Err("PID 0 is refused: it means gracestop's own process group".into()),
        1 => Err("PID 1 is refused: it is init".into()),
        n if n == i64::from(std::process::id()) => Err(format!("PID {n} is refused: it is gracestop itself")),
        n => i32::try_from(n).map_err(|_| format!("PID {n} is out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_rule_refuses_groups_init_and_ourselves() {
        assert_eq!(check_pid(2), Ok(2));
        for bad in [-1, 0, 1, -4242, i64::from(std::process::id()), 99_999_999_999] {
            assert!(check_pid(bad).is_err(), "{bad}");
        }
        assert!(check_pid(-1).unwrap_err().contains("every process"));
    }

    #[test]
    fn headers_never_show_their_value() {
        let header =
            Header { name: HeaderName::from_static("authorization"), value: HeaderValue::from_static("s3cr3t") };
        assert_eq!(format!("{header:?}"), "authorization: ***");
    }
}
