//! Where events go: the level filter, the format (human or JSON), the sink
//! (stderr or `--log-file`), and the terminal countdown.
//!
//! [`emit`] is the one way to print. Writes go through `write_all` on a locked
//! sink and their errors are ignored, so a closed or broken stderr never crashes
//! gracestop (`eprintln!` would panic). Each line is written with one `write`
//! where the sink allows, so lines from gracestop and an app sharing a pipe or
//! `O_APPEND` file do not interleave mid-line.
//!
//! The countdown is a status line (`waiting for 4242 (java) to exit: 12s of 30s`)
//! redrawn in place once a second, only when the human format goes to a stderr
//! that is a terminal; the next event line erases it first. Otherwise
//! [`countdown`] is a future that never wakes: no timer exists at all.

use std::fmt;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::event::{Event, Level, Subject};

/// How much is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only (`-q`).
    Quiet,
    /// Errors, warnings and one line per event (the default).
    Normal,
    /// Also details such as pidfd fallbacks and identities (`-v`).
    Verbose,
}

impl Verbosity {
    fn shows(self, level: Level) -> bool {
        match self {
            Verbosity::Quiet => level == Level::Error,
            Verbosity::Normal => level <= Level::Info,
            Verbosity::Verbose => true,
        }
    }
}

/// How each event is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `gracestop: +0.012s signal SIGTERM -> 4242 (java)`
    Human,
    /// One JSON object per line (schema in the README).
    Json,
}

/// The log's configuration.
#[derive(Debug)]
pub struct Options {
    pub verbosity: Verbosity,
    pub format: Format,
    /// `--log-file`, opened: events go there instead of stderr.
    pub file: Option<File>,
}

struct State {
    start: Instant,
    verbosity: Verbosity,
    format: Format,
    file: Option<File>,
    /// The countdown may be drawn: human format on a terminal stderr.
    countdown: bool,
}

static STATE: OnceLock<State> = OnceLock::new();

/// A countdown line is on the screen and must be erased before the next line.
static STATUS_SHOWN: AtomicBool = AtomicBool::new(false);

/// Erases the status line: back to the start of the line, clear to its end.
const ERASE: &str = "\r\x1b[K";

/// Sets where events go and starts the clock. Later calls are ignored.
pub fn init(options: Options) {
    let countdown = options.format == Format::Human
        && options.file.is_none()
        && options.verbosity >= Verbosity::Normal
        && std::io::stderr().is_terminal();
    let _ = STATE.set(State {
        start: Instant::now(),
        verbosity: options.verbosity,
        format: options.format,
        file: options.file,
        countdown,
    });
}

fn state() -> &'static State {
    STATE.get_or_init(|| State {
        start: Instant::now(),
        verbosity: Verbosity::Normal,
        format: Format::Human,
        file: None,
        countdown: false,
    })
}

fn write_raw(state: &State, text: &str) {
    let _ = match &state.file {
        Some(file) => {
            let mut file: &File = file;
            file.write_all(text.as_bytes())
        }
        None => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Prints `event` if the verbosity shows it, in the configured format.
pub fn emit(event: Event) {
    let state = state();
    // With -q most events are not shown: not even rendered.
    if state.verbosity == Verbosity::Quiet && !event.is_error() {
        return;
    }
    let rendered = event.render();
    if !state.verbosity.shows(rendered.level) {
        return;
    }
    let elapsed = state.start.elapsed();
    let mut line = match state.format {
        Format::Human => rendered.human(elapsed),
        Format::Json => rendered.json(elapsed),
    };
    line.push('\n');
    if state.countdown && STATUS_SHOWN.swap(false, Ordering::Relaxed) {
        line.insert_str(0, ERASE);
    }
    write_raw(state, &line);
}

/// Whether `-v` was given: `run` then reads forwarded signals in its loop, to
/// log each one.
pub fn verbose() -> bool {
    state().verbosity == Verbosity::Verbose
}

/// An error that ends gracestop: always shown, even with `-q`.
pub fn error(args: fmt::Arguments<'_>) {
    emit(Event::Error { message: args.to_string() });
}

/// Redraws `waiting for SUBJECT to exit: Ns of LIMIT` once a second until
/// dropped, when the countdown is on; otherwise never wakes.
pub async fn countdown(subject: &Subject, limit: Duration) {
    if !state().countdown {
        return std::future::pending().await;
    }
    let limit_shown = crate::event::setting(limit);
    let start = tokio::time::Instant::now();
    let mut second = 0u64;
    loop {
        let line = format!("{ERASE}gracestop: waiting for {subject} to exit: {second}s of {limit_shown}");
        write_raw(state(), &line);
        STATUS_SHOWN.store(true, Ordering::Relaxed);
        second += 1;
        tokio::time::sleep_until(start + Duration::from_secs(second)).await;
    }
}

/// Erases a countdown line still on the screen (before gracestop exits).
pub fn finish() {
    if STATUS_SHOWN.swap(false, Ordering::Relaxed) {
        write_raw(state(), ERASE);
    }
}
