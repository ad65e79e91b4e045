//! The command line: clap types, whose doc comments are the `--help` text, the
//! forgiving parsers for durations, signals and PIDs, the redaction of clap's
//! usage errors, which would otherwise quote a secret value whole, and the one
//! conversion into the domain configuration ([`Cli::into_config`]). Nothing
//! outside this module, `lib` and `main` knows clap.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{BoolishValueParser, StyledStr};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand, ValueEnum, ValueHint};
use nix::sys::signal::Signal;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::config::{
    self, check_pid, Config, DeregisterConfig, DrainConfig, Header, LogConfig, PreStopConfig, RunConfig,
    SequenceConfig, StopConfig, TerminalMode,
};
use crate::deregister::{redact_header_text, redact_url_text};
use crate::exit;
use crate::log;
use crate::sequence::Dump;

/// Stop services gracefully: signal, wait exactly as long as needed, escalate.
///
/// gracestop sends the stop signal (and SIGCONT, so a stopped process sees it),
/// returns the moment the target exits, and with --force sends SIGKILL once
/// --wait has passed. Targets are pinned with a pidfd, so a recycled PID or a
/// stale pidfile never gets a signal meant for another process.
#[derive(Debug, Parser)]
#[command(name = "gracestop", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Print errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (pidfd use, identities, timings).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// How events are written: human (one line each) or json (one object per
    /// line, schema "v":1, see the README).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value = "human",
        env = "GRACESTOP_LOG_FORMAT"
    )]
    pub log_format: LogFormatArg,

    /// Append the events to FILE instead of writing them to stderr (created with
    /// mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes
    /// preStop's events into `kubectl logs`.
    #[arg(long, global = true, value_name = "FILE", value_hint = ValueHint::FilePath, env = "GRACESTOP_LOG_FILE")]
    pub log_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence.
    ///
    /// Example: gracestop run --deregister-url http://127.0.0.1:8080/actuator/serviceregistry --deregister-body
    /// '{"status":"DOWN"}' --drain 30s --wait 30 --remap-exit 143=0 -- java -jar app.jar
    ///
    /// The child runs in its own process group, in the caller's directory, with
    /// default signal handling (signals ignored at start stay ignored, the stop
    /// signal excepted); gracestop itself moves to /. Other signals (HUP, USR1,
    /// USR2, QUIT, WINCH, faults and PIPE sent with kill, ...) are forwarded at
    /// once to the child's process group (the child alone with --single-child).
    /// TSTP, TTIN and TTOU suspend the group and gracestop; CONT resumes both.
    /// gracestop reaps every orphan (it is a child subreaper and a correct PID 1)
    /// and exits only when the child and all its descendants are gone, with the
    /// child's exit code, or 128+N when it died of signal N. Once the child is
    /// gone, the rest of its family gets the stop signal at once. What still runs
    /// at the end of the stop sequence is killed: --force is implied.
    #[command(after_help = exit::help(exit::Command::Run))]
    Run(RunArgs),

    /// Stop processes that already run, by PID or pidfile.
    ///
    /// Example: gracestop stop --pidfile /run/app.pid --deregister-url http://127.0.0.1:8080/down --drain 10s --wait 30
    /// --force
    #[command(after_help = exit::help(exit::Command::Stop))]
    Stop(StopArgs),

    /// Only deregister and drain, then exit: a shell-free Kubernetes preStop.
    ///
    /// Example: gracestop drain --deregister-url http://127.0.0.1:8080/actuator/service-registry --deregister-body
    /// '{"status":"DOWN"}' --drain 10s
    ///
    /// A SIGTERM or SIGINT to gracestop ends the drain early.
    #[command(after_help = exit::help(exit::Command::Drain))]
    Drain(DrainArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).multiple(true).args(["pids", "pidfiles"])))]
pub struct StopArgs {
    /// Process to stop (repeatable). Must be 2 or more and not gracestop itself.
    #[arg(long = "pid", value_name = "PID", allow_hyphen_values = true, value_parser = parse_pid, env = "GRACESTOP_PID", value_delimiter = ',')]
    pub pids: Vec<i32>,

    /// File holding the PID of the process to stop (repeatable).
    ///
    /// A pidfile is stale, and nothing is signalled, when its process does not
    /// exist, is a zombie, or started after the file was last written (2 s slack).
    /// A pidfile that does not hold one decimal PID is an error (exit 1). Trust
    /// rule: a pidfile that a user other than root or the caller could write or
    /// replace (its owner, or the owner of a directory or symlink on its path)
    /// names only that user's processes; one that others may write, or that sits
    /// in a directory others may write without the sticky bit, is refused (exit 1).
    /// Only regular files are read.
    #[arg(long = "pidfile", value_name = "FILE", value_hint = ValueHint::FilePath, env = "GRACESTOP_PIDFILE")]
    pub pidfiles: Vec<PathBuf>,

    /// Signal the target's whole process group instead of the one process.
    ///
    /// Refused when that group is gracestop's own.
    #[arg(long, env = "GRACESTOP_GROUP", value_parser = BoolishValueParser::new())]
    pub group: bool,

    /// Exit 0 instead of 3 when no target is running.
    #[arg(long, env = "GRACESTOP_MISSING_OK", value_parser = BoolishValueParser::new())]
    pub missing_ok: bool,

    #[command(flatten)]
    pub pre_stop: PreStopArgs,

    #[command(flatten)]
    pub sequence: SequenceArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Signals that start the stop sequence (comma-separated).
    ///
    /// A second one cuts deregistration and drain short; a third skips to SIGKILL.
    #[arg(long = "stop-on", value_name = "SIG,...", default_value = "TERM,INT", value_delimiter = ',', value_parser = parse_stop_on, env = "GRACESTOP_STOP_ON")]
    pub stop_on: Vec<Signal>,

    /// Send the stop signal to the child alone, not to its whole process group.
    ///
    /// SIGKILL at the end still reaches every remaining descendant.
    #[arg(long, env = "GRACESTOP_SINGLE_CHILD", value_parser = BoolishValueParser::new())]
    pub single_child: bool,

    /// Map the child's exit code FROM to TO (repeatable), e.g. 143=0 for a JVM
    /// that exits 143 after a graceful SIGTERM.
    #[arg(long = "remap-exit", value_name = "FROM=TO", value_parser = parse_remap, env = "GRACESTOP_REMAP_EXIT", value_delimiter = ',')]
    pub remap_exit: Vec<(u8, u8)>,

    /// Write gracestop's own PID here (atomically), and remove it at exit.
    ///
    /// `gracestop stop --pidfile FILE` (or kill -TERM) then runs the whole
    /// sequence configured here.
    #[arg(long, value_name = "FILE", env = "GRACESTOP_PIDFILE")]
    pub pidfile: Option<PathBuf>,

    /// Who owns the terminal when gracestop is started in its foreground.
    ///
    /// child: the child's process group gets the terminal, as under tini, so
    /// shells and editors work and Ctrl-C, Ctrl-Z and Ctrl-\ reach the child.
    /// keep: gracestop keeps it, so Ctrl-C runs the stop sequence exactly once;
    /// a child stopped for reading the terminal (SIGTTIN/SIGTTOU) is then given it.
    /// auto: keep when a deregistration or a drain is configured (Ctrl-C must
    /// run them), child otherwise.
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto", env = "GRACESTOP_TERMINAL")]
    pub terminal: TerminalArg,

    #[command(flatten)]
    pub pre_stop: PreStopArgs,

    #[command(flatten)]
    pub sequence: SequenceArgs,

    /// The command to run, directly (no shell), and its arguments.
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, num_args = 1.., value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<std::ffi::OsString>,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// One line per event: `gracestop: +0.012s signal SIGTERM -> 4242 (java)`.
    Human,
    /// One JSON object per line, for deploy tooling.
    Json,
}

/// `run --terminal`: who owns a terminal gracestop was started in the
/// foreground of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TerminalArg {
    /// `keep` when a deregistration or drain is configured, `child` otherwise.
    Auto,
    /// The child's process group gets the terminal (as under tini).
    Child,
    /// gracestop keeps it: Ctrl-C runs the stop sequence.
    Keep,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub pre_stop: PreStopArgs,
}

/// The phases before the signal: deregistration and drain (DESIGN.md §3).
#[derive(Debug, Args)]
#[command(next_help_heading = "Deregistration and drain")]
pub struct PreStopArgs {
    /// URL to call before the stop signal (repeatable; all are called at once).
    ///
    /// Any 2xx answer is success. Redirects are not followed: a 3xx is a failure.
    /// A failure is a warning and the stop goes on, unless --deregister-strict.
    /// From the environment: several URLs separated by spaces. The log and error
    /// messages show it without user name, password, fragment or the values of
    /// secret-looking query parameters (token, key, sig, ...).
    #[arg(long = "deregister-url", value_name = "URL", value_parser = parse_url, env = "GRACESTOP_DEREGISTER_URL", value_delimiter = ' ')]
    pub urls: Vec<Url>,

    /// HTTP method of the deregistration requests.
    #[arg(long = "deregister-method", value_name = "METHOD", default_value = "POST", value_parser = parse_method, env = "GRACESTOP_DEREGISTER_METHOD")]
    pub method: Method,

    /// Header 'Name: value' to send (repeatable). Values never appear in the log.
    ///
    /// Pass secrets through the environment, one header per line, so they stay out
    /// of `ps`: GRACESTOP_DEREGISTER_HEADER='Authorization: Bearer ...'
    #[arg(long = "deregister-header", value_name = "HEADER", value_parser = parse_header, env = "GRACESTOP_DEREGISTER_HEADER", value_delimiter = '\n')]
    pub headers: Vec<Header>,

    /// Request body: the text itself, or @FILE to read it from a file.
    #[arg(long = "deregister-body", value_name = "TEXT|@FILE", env = "GRACESTOP_DEREGISTER_BODY")]
    pub body: Option<String>,

    /// Time limit of one deregistration attempt (connect, send, response headers).
    #[arg(long = "deregister-timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_duration, env = "GRACESTOP_DEREGISTER_TIMEOUT")]
    pub timeout: Duration,

    /// Retries after a connection error, a timeout or a 5xx answer (short backoff).
    #[arg(long = "deregister-retries", value_name = "N", default_value = "2", env = "GRACESTOP_DEREGISTER_RETRIES", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,

    /// Abort before any signal, with exit 1, when a deregistration fails.
    #[arg(long = "deregister-strict", env = "GRACESTOP_DEREGISTER_STRICT", value_parser = BoolishValueParser::new())]
    pub strict: bool,

    /// PEM file of the CA certificates that https deregistration URLs are checked
    /// against, instead of the system's.
    #[arg(long = "deregister-cacert", value_name = "FILE", env = "GRACESTOP_DEREGISTER_CACERT")]
    pub cacert: Option<PathBuf>,

    /// Sleep after deregistering, before the signal: the load balancer's refresh
    /// window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, env = "GRACESTOP_DRAIN")]
    pub drain: Duration,

    /// The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t).
    ///
    /// When the worst case exceeds it, gracestop says so and shortens the drain
    /// first, then the wait, so that its own dump and kill come before the outer
    /// SIGKILL.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "GRACESTOP_DEADLINE")]
    pub deadline: Option<Duration>,
}

/// Options of the stop sequence, shared by every command that signals.
#[derive(Debug, Args)]
pub struct SequenceArgs {
    /// Stop signal: TERM, SIGTERM, term or 15 all work.
    #[arg(long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal, env = "GRACESTOP_SIGNAL")]
    pub signal: Signal,

    /// How long to wait for the target to exit after the stop signal.
    ///
    /// An upper bound only: gracestop returns the moment the target exits.
    /// A bare number means seconds (30); humantime also works (500ms, 1m30s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, env = "GRACESTOP_WAIT")]
    pub wait: Duration,

    /// Send SIGKILL when the target still runs after --wait (and --dump).
    #[arg(long, env = "GRACESTOP_FORCE", value_parser = BoolishValueParser::new())]
    pub force: bool,

    /// Before killing, send a dump signal (default QUIT: a JVM prints its thread dump).
    #[arg(long, value_name = "SIG", num_args = 0..=1, require_equals = true, default_missing_value = "QUIT", value_parser = parse_signal, env = "GRACESTOP_DUMP")]
    pub dump: Option<Signal>,

    /// How long to wait after the dump signal.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration, env = "GRACESTOP_DUMP_WAIT")]
    pub dump_wait: Duration,
}

impl Cli {
    /// The domain configuration: the one place where the command line becomes
    /// what the commands work with.
    pub fn into_config(self) -> Config {
        let verbosity = if self.quiet {
            log::Verbosity::Quiet
        } else if self.verbose > 0 {
            log::Verbosity::Verbose
        } else {
            log::Verbosity::Normal
        };
        let format = match self.log_format {
            LogFormatArg::Human => log::Format::Human,
            LogFormatArg::Json => log::Format::Json,
        };
        let command = match self.command {
            Command::Stop(args) => config::Command::Stop(StopConfig {
                pids: args.pids,
                pidfiles: args.pidfiles,
                group: args.group,
                missing_ok: args.missing_ok,
                pre_stop: args.pre_stop.into_config(),
                sequence: args.sequence.into_config(),
            }),
            Command::Drain(args) => config::Command::Drain(DrainConfig { pre_stop: args.pre_stop.into_config() }),
            Command::Run(args) => config::Command::Run(RunConfig {
                stop_on: args.stop_on,
                single_child: args.single_child,
                remap_exit: args.remap_exit,
                pidfile: args.pidfile,
                terminal: match args.terminal {
                    TerminalArg::Auto => TerminalMode::Auto,
                    TerminalArg::Child => TerminalMode::Child,
                    TerminalArg::Keep => TerminalMode::Keep,
                },
                pre_stop: args.pre_stop.into_config(),
                sequence: args.sequence.into_config(),
                command: args.command,
            }),
        };
        Config { log: LogConfig { verbosity, format, file: self.log_file }, command }
    }
}

impl PreStopArgs {
    fn into_config(self) -> PreStopConfig {
        PreStopConfig {
            deregister: DeregisterConfig {
                urls: self.urls,
                method: self.method,
                headers: self.headers,
                body: self.body,
                timeout: self.timeout,
                retries: self.retries,
                strict: self.strict,
                cacert: self.cacert,
            },
            drain: self.drain,
            deadline: self.deadline,
        }
    }
}

impl SequenceArgs {
    fn into_config(self) -> SequenceConfig {
        SequenceConfig {
            signal: self.signal,
            wait: self.wait,
            force: self.force,
            dump: self.dump.map(|signal| Dump { signal, wait: self.dump_wait }),
        }
    }
}

/// An exit-code mapping `FROM=TO`, both 0..=255.
pub fn parse_remap(text: &str) -> Result<(u8, u8), String> {
    let (from, to) = text.split_once('=').ok_or("expected FROM=TO, e.g. 143=0")?;
    let code = |t: &str| t.trim().parse::<u8>().map_err(|_| format!("{t:?} is not an exit code (0-255)"));
    Ok((code(from)?, code(to)?))
}

/// An http or https URL with a host.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("only http:// and https:// URLs with a host are supported".into());
    }
    Ok(url)
}

/// An HTTP method token, upper-cased: `post` → `POST`.
pub fn parse_method(text: &str) -> Result<Method, String> {
    let upper = text.trim().to_ascii_uppercase();
    if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_') {
        return Err("not an HTTP method (examples: POST, PUT, DELETE)".into());
    }
    Method::from_bytes(upper.as_bytes()).map_err(|e| e.to_string())
}

/// A header as `Name: value`.
pub fn parse_header(text: &str) -> Result<Header, String> {
    let (name, value) = text.split_once(':').ok_or("expected 'Name: value'")?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| "not a valid header name".to_string())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("the value of header {name} is not valid"))?;
    Ok(Header { name, value })
}

/// A clap error fit to print: every value that may carry a secret is shown
/// redacted, where clap would quote it whole (`invalid value 'Authorization:
/// Bearer …' for '--deregister-header <HEADER>'`), also when it came from the
/// environment. The kind, the exit code and the usage lines stay clap's own.
///
/// - the value of an option named like a header: `Name: ***`;
/// - of one named like a body, token, secret, password, key or auth: `***`;
/// - of one named like a URL, or any value with `://` or `@` in it: as
///   [`redact_url_text`] shows it (user name, password, fragment and secret
///   query values hidden);
/// - an unexpected argument or subcommand: `--name=***` for `--name=value`, a
///   URL or `Name: value` header in it as above, and any other longer than 8
///   characters as `***` with a tip saying why. An unquoted header
///   (`--deregister-header X-Token: abc…`) leaves its value as such an argument.
///
/// Other values (`--wait soon`) are quoted as they are, so the message still
/// names the bad value.
pub fn redact_usage_error(mut error: clap::Error) -> clap::Error {
    let raw = match error.kind() {
        ErrorKind::UnknownArgument => {
            context_string(&error, ContextKind::InvalidArg).map(|r| (ContextKind::InvalidArg, r))
        }
        ErrorKind::InvalidSubcommand => {
            context_string(&error, ContextKind::InvalidSubcommand).map(|r| (ContextKind::InvalidSubcommand, r))
        }
        _ => None,
    };
    if let Some((kind, raw)) = raw {
        let shown = redact_argument(&raw);
        if shown != raw {
            error.insert(kind, ContextValue::String(shown.clone()));
            // The tips ("to pass '--x=…' as a value, use '-- --x=…'") quote it too.
            let mut tips: Vec<StyledStr> = match error.get(ContextKind::Suggested) {
                Some(ContextValue::StyledStrs(tips)) => {
                    tips.iter().map(|tip| StyledStr::from(tip.to_string().replace(&raw, &shown))).collect()
                }
                _ => Vec::new(),
            };
            if shown == "***" {
                tips.push(StyledStr::from(
                    "the argument is not shown, it may be a secret; quote a header whole: 'Name: value'".to_string(),
                ));
            }
            if !tips.is_empty() {
                error.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
            }
        }
    }
    if let (Some(arg), Some(value)) =
        (context_string(&error, ContextKind::InvalidArg), context_string(&error, ContextKind::InvalidValue))
    {
        let shown = redact_value(&arg, &value);
        if shown != value {
            error.insert(ContextKind::InvalidValue, ContextValue::String(shown));
        }
    }
    error
}

fn context_string(error: &clap::Error, kind: ContextKind) -> Option<String> {
    match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    }
}

/// `value` given to the option clap names `arg` (`--deregister-url <URL>`), redacted.
fn redact_value(arg: &str, value: &str) -> String {
    let arg = arg.to_ascii_lowercase();
    if value.is_empty() {
        // clap says "a value is required" for an empty one: nothing to hide.
        value.to_string()
    } else if arg.contains("header") {
        redact_header_text(value)
    } else if ["body", "token", "secret", "password", "key", "auth"].iter().any(|s| arg.contains(s)) {
        "***".to_string()
    } else if arg.contains("url") || value.contains("://") || value.contains('@') {
        redact_url_text(value)
    } else {
        value.to_string()
    }
}

/// An unexpected command-line argument, redacted.
fn redact_argument(raw: &str) -> String {
    match raw.split_once('=') {
        Some((name, _)) if name.starts_with('-') => format!("{name}=***"),
        _ if raw.contains("://") || raw.contains('@') => redact_url_text(raw),
        _ if raw.contains(": ") => redact_header_text(raw),
        _ if raw.starts_with('-') || raw.chars().count() <= 8 => raw.to_string(),
        _ => "***".to_string(),
    }
}

/// The longest duration accepted: a year is more than any stop should take, and
/// the cap keeps every sum of durations far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration: a bare number of seconds (`30`, `0.5`) or humantime (`500ms`, `1m30s`),
/// at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
        Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))?
    } else {
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30, 30s, 1m30s, 500ms)"))?
    };
    if duration > MAX_DURATION {
        return Err(format!("{text:?} is longer than a year"));
    }
    Ok(duration)
}

/// A signal by name or number: `TERM`, `SIGTERM`, `term`, `15`.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| format!("{number} is not a signal number"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map_err(|_| format!("{text:?} is not a signal name (examples: TERM, SIGINT, 15)"))
}

/// A `--stop-on` signal: one that gracestop can catch and that is not already
/// spoken for (SIGCHLD drives reaping; faults and SIGPIPE are not requests).
pub fn parse_stop_on(text: &str) -> Result<Signal, String> {
    let signal = parse_signal(text)?;
    use Signal::*;
    if matches!(
        signal,
        SIGKILL
            | SIGSTOP
            | SIGCHLD
            | SIGPIPE
            | SIGSEGV
            | SIGBUS
            | SIGFPE
            | SIGILL
            | SIGTRAP
            | SIGABRT
            | SIGSYS
            | SIGCONT
            | SIGTSTP
            | SIGTTIN
            | SIGTTOU
    ) {
        return Err(format!("{signal} cannot be a stop request"));
    }
    Ok(signal)
}

/// A PID given on the command line.
pub fn parse_pid(text: &str) -> Result<i32, String> {
    let number: i64 = text.trim().parse().map_err(|_| format!("{text:?} is not a whole number"))?;
    check_pid(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_accept_seconds_and_humantime() {
        let table = [
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            (" 2s ", Duration::from_secs(2)),
            ("0", Duration::ZERO),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "-1", "abc", "1.2.3", "30 parsecs", "nan", "inf", "1e3", "10000000000000000000", "400days"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn signals_accept_names_and_numbers() {
        for text in ["TERM", "SIGTERM", "term", "sigterm", "15", " TERM "] {
            assert_eq!(parse_signal(text), Ok(Signal::SIGTERM), "{text}");
        }
        assert_eq!(parse_signal("QUIT"), Ok(Signal::SIGQUIT));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        for bad in ["", "0", "65", "-15", "TERMINATE", "SIG"] {
            assert!(parse_signal(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn pids_refuse_groups_init_and_ourselves() {
        assert_eq!(parse_pid("4242"), Ok(4242));
        assert_eq!(parse_pid("2"), Ok(2));
        let own = std::process::id().to_string();
        for bad in ["-1", "0", "1", "-4242", own.as_str(), "abc", "", "99999999999", "4.2"] {
            let err = parse_pid(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(parse_pid("-1").unwrap_err().contains("-1"));
    }

    #[test]
    fn remaps_and_run_commands() {
        assert_eq!(parse_remap("143=0"), Ok((143, 0)));
        for bad in ["143", "=0", "256=0", "1=-1", "a=b"] {
            assert!(parse_remap(bad).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["gracestop", "run", "--wait", "5", "--", "java", "-jar", "app.jar"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("run") };
        assert_eq!(args.command, ["java", "-jar", "app.jar"]);
        assert_eq!(args.stop_on, [Signal::SIGTERM, Signal::SIGINT]);
        let cli = Cli::try_parse_from(["gracestop", "run", "sleep", "--wait", "9"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("run") };
        assert_eq!(args.command, ["sleep", "--wait", "9"], "everything after COMMAND is its own");
        assert!(Cli::try_parse_from(["gracestop", "run"]).is_err());
        assert!(Cli::try_parse_from(["gracestop", "run", "--stop-on", "TERM,KILL", "--", "true"]).is_err());
        assert!(Cli::try_parse_from(["gracestop", "run", "--stop-on", "TERM,HUP", "--", "true"]).is_ok());
    }

    #[test]
    fn urls_methods_and_headers() {
        assert!(parse_url("http://127.0.0.1:8080/actuator/service-registry").is_ok());
        assert!(parse_url("https://registry.example/v1/agent/service/deregister/app").is_ok());
        for bad in ["", "127.0.0.1:8080/down", "ftp://host/x", "http://", "not a url"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_method("put"), Ok(Method::PUT));
        assert_eq!(parse_method("DELETE"), Ok(Method::DELETE));
        for bad in ["", "PO ST", "GET/", "P@ST"] {
            assert!(parse_method(bad).is_err(), "{bad}");
        }
        let header = parse_header("Authorization: Bearer s3cr3t").unwrap();
        assert_eq!(header.name, "authorization");
        assert_eq!(header.value, "Bearer s3cr3t");
        assert!(!format!("{header:?}").contains("s3cr3t"), "Debug redacts the value");
        for bad in ["no colon", ": value", "Bad Name: v", "X-Ok: bad\u{7f}value"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usage_errors_hide_secret_values_and_keep_the_others() {
        let render = |args: &[&str]| {
            let mut argv = vec!["gracestop"];
            argv.extend_from_slice(args);
            redact_usage_error(Cli::try_parse_from(argv).unwrap_err()).to_string()
        };
        let table: [(&[&str], &str, &str); 10] = [
            (&["drain", "--deregister-header", "X-Token:", "s3cr3t-uuid-1234"], "s3cr3t", "'***'"),
            (&["stop", "4242"], "", "unexpected argument '4242'"),
            (&["drain", "--deregister-header", "Authorization: Bearer s3cr3t\u{1}"], "s3cr3t", "'Authorization: ***'"),
            (&["drain", "--deregister-header", "Bearer s3cr3t"], "s3cr3t", "'***'"),
            (
                &["drain", "--deregister-url", "http://u:s3cr3t@127.0.0.1:99999/x"],
                "s3cr3t",
                "'http://***:***@127.0.0.1:99999/x'",
            ),
            (&["drain", "--deregister-url", "http://127.0.0.1/x?token=s3cr3t#s3cr3t"], "", ""),
            (&["drain", "--deregister-urll=http://u:s3cr3t@h/"], "s3cr3t", "'--deregister-urll'"),
            (&["drain", "http://s3cr3t@127.0.0.1/down"], "s3cr3t", "'http://***@127.0.0.1/down'"),
            (&["http://s3cr3t@127.0.0.1/down"], "s3cr3t", "'http://***@127.0.0.1/down'"),
            (&["stop", "--pid", "42", "--wait", "soon"], "", "invalid value 'soon' for '--wait <DURATION>'"),
        ];
        for (args, secret, shown) in table {
            if args.iter().any(|a| a.contains("token=s3cr3t")) {
                // Valid: nothing to render.
                assert!(Cli::try_parse_from(["gracestop"].iter().chain(args)).is_ok());
                continue;
            }
            let text = render(args);
            assert!(secret.is_empty() || !text.contains(secret), "{args:?}: {text}");
            assert!(text.contains(shown), "{args:?}: {text}");
        }
        let err =
            redact_usage_error(Cli::try_parse_from(["gracestop", "drain", "--deregister-url", "x:"]).unwrap_err());
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn stop_needs_a_target_and_takes_negative_pid_values_to_refuse_them() {
        assert!(Cli::try_parse_from(["gracestop", "stop"]).is_err());
        let err = Cli::try_parse_from(["gracestop", "stop", "--pid", "-1"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let cli =
            Cli::try_parse_from(["gracestop", "stop", "--pid", "42", "--dump", "--force", "--wait", "5"]).unwrap();
        let config::Command::Stop(stop) = cli.into_config().command else { panic!("stop") };
        assert_eq!(stop.sequence.dump, Some(Dump { signal: Signal::SIGQUIT, wait: Duration::from_secs(2) }));
        assert_eq!(stop.sequence.wait, Duration::from_secs(5));
        assert!(stop.sequence.force);
    }
}
