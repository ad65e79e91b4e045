//! The human log: one line per event on stderr, stamped with the time since
//! gracestop started (`gracestop: +0.012s signal SIGTERM -> 4242 (java)`).
//!
//! Writes go through `writeln!` on a locked stderr and their errors are ignored,
//! so a closed or broken stderr never crashes gracestop (`eprintln!` would panic).

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How much is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Errors only (`-q`).
    Quiet,
    /// Errors, warnings and one line per event (the default).
    Normal,
    /// Also details such as pidfd fallbacks and identities (`-v`).
    Verbose,
}

struct State {
    start: Instant,
    level: Level,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Sets the level and starts the clock. Later calls are ignored.
pub fn init(level: Level) {
    let _ = STATE.set(State { start: Instant::now(), level });
}

fn state() -> &'static State {
    STATE.get_or_init(|| State { start: Instant::now(), level: Level::Normal })
}

fn write_line(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

fn event(min: Level, phase: &str, prefix: &str, args: fmt::Arguments<'_>) {
    let state = state();
    if state.level >= min {
        let elapsed = state.start.elapsed().as_secs_f64();
        write_line(format_args!("gracestop: +{elapsed:.3}s {phase} {prefix}{args}"));
    }
}

pub fn info(phase: &str, args: fmt::Arguments<'_>) {
    event(Level::Normal, phase, "", args);
}

pub fn warn(phase: &str, args: fmt::Arguments<'_>) {
    event(Level::Normal, phase, "warning: ", args);
}

pub fn debug(phase: &str, args: fmt::Arguments<'_>) {
    event(Level::Verbose, phase, "", args);
}

/// An error that ends gracestop: always shown, even with `-q`.
pub fn error(args: fmt::Arguments<'_>) {
    write_line(format_args!("gracestop: error: {args}"));
}

/// A measured span for the log: `0.4 ms`, `12.0 ms`, `1.006s`.
pub fn span(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{:.1} ms", duration.as_secs_f64() * 1e3)
    } else {
        format!("{:.3}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_keep_sub_millisecond_precision() {
        assert_eq!(span(Duration::from_micros(380)), "0.4 ms");
        assert_eq!(span(Duration::from_millis(12)), "12.0 ms");
        assert_eq!(span(Duration::from_millis(1006)), "1.006s");
    }
}
