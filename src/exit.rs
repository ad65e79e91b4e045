//! Every exit code gracestop returns, in one table, and the error type that
//! carries a code up to `main`.
//!
//! Errors flow up as `anyhow::Error`; one that must end with a specific code wraps
//! a [`Coded`] somewhere in its chain. Anything else is an operational failure.

use std::fmt;

/// Exit codes of `stop` and `drain` (DESIGN.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every target is gone: it exited after the stop signal or was killed.
    Success,
    /// An operational error: no permission, unreadable or malformed pidfile.
    Failure,
    /// A usage error: bad flag, duration, signal or PID. Nothing was touched.
    Usage,
    /// No target was running (no such process, stale or missing pidfile).
    NotRunning,
    /// A target still runs: `--wait` passed without `--force`, or it survived SIGKILL.
    StillRunning,
    /// `run`: gracestop's own failure.
    Internal,
    /// `run`: COMMAND exists but cannot be executed.
    CannotExecute,
    /// `run`: COMMAND was not found.
    NotFound,
    /// `run`: the child's exit status, after `--remap-exit`.
    Child(u8),
}

/// The table: code and meaning of every fixed exit, in order. `run` otherwise
/// exits with its child's status ([`Exit::Child`]).
pub const TABLE: [(Exit, u8, &str); 8] = [
    (Exit::Success, 0, "every target is gone"),
    (Exit::Failure, 1, "operational error (permission, pidfile, strict deregistration)"),
    (Exit::Usage, 2, "usage error (bad flag, duration, signal, PID)"),
    (Exit::NotRunning, 3, "no target was running (see --missing-ok)"),
    (Exit::StillRunning, 4, "a target still runs"),
    (Exit::Internal, 125, "run: gracestop's own failure"),
    (Exit::CannotExecute, 126, "run: COMMAND cannot be executed"),
    (Exit::NotFound, 127, "run: COMMAND not found"),
];

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Child(code) => code,
            fixed => TABLE.iter().find(|row| row.0 == fixed).map_or(1, |row| row.1),
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Child(_) => "run: the child's exit status",
            fixed => TABLE.iter().find(|row| row.0 == fixed).map_or("", |row| row.2),
        }
    }
}

/// An error that decides the exit code.
#[derive(Debug)]
pub struct Coded {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error ending with `exit`.
pub fn coded(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded { exit, message: message.into() })
}

/// Marks an error without a code as gracestop's own failure (125), for `run`.
pub fn internal_unless_coded(error: anyhow::Error) -> anyhow::Error {
    if error.chain().any(|e| e.downcast_ref::<Coded>().is_some()) {
        return error;
    }
    let message = format!("{error:#}");
    coded(Exit::Internal, message)
}

/// The exit code an error ends with: the first [`Coded`] in its chain, or 1.
pub fn of(error: &anyhow::Error) -> Exit {
    error.chain().find_map(|e| e.downcast_ref::<Coded>()).map_or(Exit::Failure, |c| c.exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn table_codes_are_distinct_and_documented() {
        let codes: Vec<u8> = TABLE.iter().map(|row| row.1).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 125, 126, 127]);
        for (exit, code, meaning) in TABLE {
            assert_eq!(exit.code(), code);
            assert_eq!(exit.meaning(), meaning);
            assert!(!meaning.is_empty());
        }
    }

    #[test]
    fn child_status_passes_through() {
        assert_eq!(Exit::Child(143).code(), 143);
        assert_eq!(Exit::Child(0).code(), 0);
    }

    #[test]
    fn coded_error_keeps_its_code_under_context() {
        let err = Err::<(), _>(coded(Exit::Usage, "bad pid")).context("while resolving targets").unwrap_err();
        assert_eq!(of(&err), Exit::Usage);
    }

    #[test]
    fn run_failures_without_a_code_are_internal() {
        assert_eq!(of(&internal_unless_coded(anyhow::anyhow!("signalfd"))), Exit::Internal);
        assert_eq!(of(&internal_unless_coded(coded(Exit::NotFound, "x"))), Exit::NotFound);
    }

    #[test]
    fn plain_error_is_an_operational_failure() {
        assert_eq!(of(&anyhow::anyhow!("disk on fire")), Exit::Failure);
    }
}
