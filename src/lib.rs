//! gracestop stops services gracefully.
//!
//! # Theory of operation
//!
//! The layers, from the edge inwards:
//!
//! - `main` parses the command line with [`cli`] (the only module that knows
//!   clap), which converts it once into a [`config::Config`]; `main` opens the
//!   log ([`log`]) and runs the command on a single-threaded runtime. It is the
//!   one place that exits, with a code from [`exit`], the one table of codes.
//! - The commands are siblings: [`stop`] turns `--pid` and `--pidfile` into
//!   pinned targets, refusing anything unsafe before the first signal
//!   ([`pidfile`] holds the rule for who may aim gracestop at what through a
//!   pidfile); [`drain`] runs the pre-stop steps alone; [`run`](mod@run) launches
//!   a child and supervises it from one loop over one signalfd: it reaps (as a
//!   subreaper and as PID 1), forwards signals, and stops the child's whole family.
//! - [`sequence`] is the stop sequence of DESIGN.md §3 and its plan, as pure
//!   policy: pre-stop [`sequence::Step`]s (deregistration, the drain), each
//!   reporting its worst case so that `--deadline` budgets it, then a
//!   [`sequence::StopAction`] (the stop signal), the wait, the dump and the kill,
//!   over a [`sequence::Target`] that can be signalled and awaited. It uses
//!   nothing but `tokio::time`, so its tests run under a paused clock.
//!   [`deregister`] is the HTTP step; [`requests`] counts stop requests to
//!   `stop` and `drain`.
//! - [`event`] is the one type of everything gracestop prints; [`log`] renders
//!   it as the human line or JSON, to stderr or `--log-file`, with the countdown.
//! - [`platform`] is the one module that makes raw OS calls. A target is
//!   *pinned* there before anything else happens: a pidfd is opened, the
//!   identity is read from `/proc`, and the pidfd is checked to still be alive,
//!   so the identity belongs to the process the pidfd names. Every signal then
//!   goes through the pidfd and cannot reach a process that reuses the PID. The
//!   pidfd also wakes the tokio reactor when the process exits, which is how
//!   gracestop returns within a millisecond of an exit without polling.
//!
//! A new pre-stop step implements [`sequence::Step`] and is listed in
//! [`config::PreStopConfig::steps`]; a new stop action is a variant of
//! [`sequence::StopAction`], chosen in [`config::SequenceConfig::stop_plan`]; a
//! new line of output is a variant of [`event::Event`].

pub mod cli;
pub mod config;
pub mod deregister;
pub mod drain;
pub mod event;
pub mod exit;
pub mod log;
pub mod pidfile;
pub mod platform;
pub mod requests;
pub mod run;
pub mod sequence;
pub mod stop;

use anyhow::Result;

use config::{Command, LogConfig};
use exit::Exit;

/// Runs a command to its exit code.
pub async fn run(command: Command) -> Result<Exit> {
    match command {
        Command::Stop(config) => stop::stop(&config).await,
        Command::Drain(config) => drain::drain(&config).await,
        // `run` keeps 1..=124 for its child's own codes: its failures are 125.
        Command::Run(config) => run::run(&config).await.map_err(exit::internal_unless_coded),
    }
}

/// The log's options, with `--log-file` opened. A file that cannot be opened
/// is a usage error: nothing has been touched yet.
pub fn log_options(config: &LogConfig) -> Result<log::Options> {
    let file = match &config.file {
        Some(path) => Some(
            platform::file::open_log(path)
                .map_err(|e| exit::coded(Exit::Usage, format!("cannot open log file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    Ok(log::Options { verbosity: config.verbosity, format: config.format, file })
}
