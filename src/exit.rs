//! Every exit code gracestop returns, in one table, the mappings onto it, and
//! the error type that carries a code up to `main`.
//!
//! The table is [`Exit::ALL`] with [`Exit::code`], [`Exit::meaning`] and
//! [`Exit::commands`], each an exhaustive `match`: a new variant does not compile
//! until it has a code, a meaning and its commands, and a unit test fails until
//! it is listed in `ALL`. `--help`, the man pages and the README's table are
//! generated from it ([`help`]).
//!
//! Errors flow up as `anyhow::Error`; one that must end with a specific code wraps
//! a [`Coded`] somewhere in its chain. Any other error in `stop` or `drain` is an
//! operational failure (1, [`Exit::Failure`]); in `run` it is gracestop's own
//! failure (125, [`Exit::Internal`]), because `run` keeps 1..=124 for its child.

use std::fmt;

/// The commands, as far as exit codes are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Stop,
    Drain,
    Run,
}

/// Why gracestop exits.
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

impl Exit {
    /// Every fixed exit, in the order of its code. [`Exit::Child`] stands for
    /// the child's own codes.
    pub const ALL: [Exit; 9] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::NotRunning,
        Exit::StillRunning,
        Exit::Internal,
        Exit::CannotExecute,
        Exit::NotFound,
        Exit::Child(0),
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::NotRunning => 3,
            Exit::StillRunning => 4,
            Exit::Internal => 125,
            Exit::CannotExecute => 126,
            Exit::NotFound => 127,
            Exit::Child(code) => code,
        }
    }

    /// How the code reads in `--help`, the man pages and the README: `0`, or
    /// `N` for the child's code.
    pub fn shown_code(self) -> String {
        match self {
            Exit::Child(_) => "N".to_string(),
            fixed => fixed.code().to_string(),
        }
    }

    /// What the code means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success: every target is gone (exited, or killed with --force), or the drain is done",
            Exit::Failure => "operational error (permission, pidfile, strict deregistration failed)",
            Exit::Usage => "usage error (bad flag, duration, signal, PID, URL); nothing was touched",
            Exit::NotRunning => {
                "no target was running (missing or stale pidfile, no such process; 0 with --missing-ok)"
            }
            Exit::StillRunning => "a target still runs (--wait passed without --force, or it survived SIGKILL)",
            Exit::Internal => "gracestop's own failure",
            Exit::CannotExecute => "COMMAND cannot be executed",
            Exit::NotFound => "COMMAND was not found",
            Exit::Child(_) => "the child's exit code, 128+S when it died of signal S, then --remap-exit",
        }
    }

    /// The commands that can end with this code.
    pub fn commands(self) -> &'static [Command] {
        use Command::*;
        match self {
            Exit::Success => &[Stop, Drain],
            Exit::Failure => &[Stop, Drain],
            Exit::Usage => &[Stop, Drain, Run],
            Exit::NotRunning => &[Stop],
            Exit::StillRunning => &[Stop],
            Exit::Internal => &[Run],
            Exit::CannotExecute => &[Run],
            Exit::NotFound => &[Run],
            Exit::Child(_) => &[Run],
        }
    }

    /// What `run` ends with when spawning COMMAND failed with `errno`.
    pub fn of_spawn_error(errno: Option<i32>) -> Exit {
        match errno {
            Some(libc::ENOENT | libc::ENOTDIR) => Exit::NotFound,
            Some(libc::EACCES | libc::ENOEXEC | libc::EISDIR | libc::ETXTBSY | libc::EPERM) => Exit::CannotExecute,
            _ => Exit::Internal,
        }
    }
}

/// The rows of the table that apply to `command`.
pub fn rows(command: Command) -> impl Iterator<Item = Exit> {
    Exit::ALL.into_iter().filter(move |exit| exit.commands().contains(&command))
}

/// The "Exit codes:" paragraph of `command`'s `--help`.
pub fn help(command: Command) -> String {
    let mut text = String::from("Exit codes:");
    for exit in rows(command) {
        text.push_str(&format!("\n  {:>3}  {}", exit.shown_code(), exit.meaning()));
    }
    text
}

/// The README's table of exit codes (Markdown), between its markers.
pub fn markdown() -> String {
    let mut text = String::from("| code | commands | meaning |\n|---|---|---|\n");
    for exit in Exit::ALL {
        let commands: Vec<&str> = exit
            .commands()
            .iter()
            .map(|c| match c {
                Command::Stop => "stop",
                Command::Drain => "drain",
                Command::Run => "run",
            })
            .collect();
        text.push_str(&format!("| {} | {} | {} |\n", exit.shown_code(), commands.join(", "), exit.meaning()));
    }
    text
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

/// The exit code an error ends with: the first [`Coded`] in its chain, or
/// [`Exit::Failure`] (see the module's header for `run`).
pub fn of(error: &anyhow::Error) -> Exit {
    error.chain().find_map(|e| e.downcast_ref::<Coded>()).map_or(Exit::Failure, |c| c.exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// The position of `exit` in [`Exit::ALL`]. Exhaustive: a new variant does
    /// not compile until it is placed here, and the test below fails until it
    /// is placed in `ALL` too.
    fn index(exit: Exit) -> usize {
        match exit {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::NotRunning => 3,
            Exit::StillRunning => 4,
            Exit::Internal => 5,
            Exit::CannotExecute => 6,
            Exit::NotFound => 7,
            Exit::Child(_) => 8,
        }
    }

    #[test]
    fn every_variant_has_one_row_with_a_distinct_code() {
        for (i, exit) in Exit::ALL.into_iter().enumerate() {
            assert_eq!(index(exit), i, "{exit:?} is listed out of place");
            assert!(!exit.meaning().is_empty() && !exit.commands().is_empty(), "{exit:?}");
        }
        let fixed: Vec<u8> = Exit::ALL[..8].iter().map(|e| e.code()).collect();
        assert_eq!(fixed, [0, 1, 2, 3, 4, 125, 126, 127]);
    }

    #[test]
    fn help_lists_the_rows_of_each_command() {
        let stop = help(Command::Stop);
        assert!(stop.contains("  3  no target was running") && !stop.contains("125"), "{stop}");
        let run = help(Command::Run);
        assert!(run.contains("127  COMMAND was not found") && run.contains("  N  the child's"), "{run}");
        assert!(!help(Command::Drain).contains("  4  "));
    }

    /// The README shows the table generated from [`Exit::ALL`]; with
    /// `GRACESTOP_BLESS=1` this rewrites it instead of failing.
    #[test]
    fn the_readme_table_is_generated_from_this_one() {
        const BEGIN: &str = "<!-- exit-codes: generated from src/exit.rs -->\n";
        const END: &str = "<!-- end of exit-codes -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme.find(BEGIN).expect("README has the exit-codes marker") + BEGIN.len();
        let end = start + readme[start..].find(END).expect("README has the end marker");
        let want = markdown();
        if readme[start..end] != want {
            if std::env::var_os("GRACESTOP_BLESS").is_some() {
                std::fs::write(path, format!("{}{want}{}", &readme[..start], &readme[end..])).unwrap();
            } else {
                panic!("README's exit-code table is stale: rerun with GRACESTOP_BLESS=1\n{want}");
            }
        }
    }

    #[test]
    fn spawn_errors_map_to_126_and_127() {
        assert_eq!(Exit::of_spawn_error(Some(libc::ENOENT)), Exit::NotFound);
        assert_eq!(Exit::of_spawn_error(Some(libc::EACCES)), Exit::CannotExecute);
        assert_eq!(Exit::of_spawn_error(Some(libc::ENOMEM)), Exit::Internal);
        assert_eq!(Exit::of_spawn_error(None), Exit::Internal);
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
