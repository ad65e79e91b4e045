//! The `gracestop` binary: parse, run on a single-threaded runtime, and turn the
//! result into an exit code. This is the only place that decides how gracestop
//! exits.
//!
//! It starts from the C entry point (`no_main`) rather than Rust's runtime
//! start-up, which reads all of `/proc/self/maps` (to locate the main stack for
//! its overflow message) and sets up an alternate signal stack: a tenth of a
//! millisecond on every start, and `run` takes over every signal anyway. What
//! gracestop needs from it, [`gracestop::platform::start`] does.

#![cfg_attr(not(test), no_main)]

use std::io::Write;

use clap::Parser;
use gracestop::cli::{self, Cli};
use gracestop::{exit, log};

/// The process's entry point. stdout is flushed on the way out, as under
/// Rust's own start-up. A panic aborts in the release profile (`panic =
/// "abort"`); where panics unwind (debug and test builds) it ends gracestop
/// with 101, as there.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    gracestop::platform::start();
    let code = std::panic::catch_unwind(gracestop_main).unwrap_or(101);
    let _ = std::io::stdout().flush();
    code.into()
}

/// The async runtime, for the whole life of the process.
static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();

#[cfg_attr(test, allow(dead_code))]
fn gracestop_main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own message, with secret values redacted; its exit code is 2
            // for usage errors, 0 for --help.
            let e = cli::redact_usage_error(e);
            let _ = e.print();
            return e.exit_code().clamp(0, 255) as u8;
        }
    };
    let config = cli.into_config();
    match gracestop::log_options(&config.log) {
        Ok(options) => log::init(options),
        Err(e) => {
            // Before the log exists: on stderr, whatever --log-file said.
            let _ = writeln!(std::io::stderr().lock(), "gracestop: error: {e:#}");
            return exit::of(&e).code();
        }
    }

    // Helper threads (tokio's blocking pool, for DNS) block every signal, so that
    // signals reach the main thread: the one `run` forwards from and reads in.
    // The park hook lets `run` drop its start-up pages once it has settled.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(gracestop::platform::block_signals_on_this_thread)
        .on_thread_park(gracestop::platform::supervise::before_park)
        .build();
    let result = match runtime {
        // The runtime lives as long as the process: a static is never dropped,
        // so gracestop exits without the runtime's orderly shutdown (the kernel
        // closes its descriptors faster), and without leaking it either.
        Ok(runtime) => RUNTIME.get_or_init(|| runtime).block_on(gracestop::run(config.command)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            log::error(format_args!("{e:#}"));
            exit::of(&e)
        }
    };
    log::finish();
    code.code()
}
