//! Stop requests to `stop` and `drain` themselves: SIGTERM and SIGINT to
//! gracestop are counted, SIGHUP is ignored. (`run` reads its requests from its
//! own signalfd, in `run`.)

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::event::Event;
use crate::log;
use crate::sequence::Requests;

/// Counts SIGTERM and SIGINT to gracestop as further stop requests. The command
/// itself is the first request, so the first signal cuts the pre-stop steps
/// short and the second skips to SIGKILL.
///
/// SIGHUP (a closed terminal or SSH session) is logged and otherwise ignored, as
/// under nohup: a stop half done is worse than one finished. SIGPIPE stays
/// ignored, as Rust's runtime sets it: a closed stderr only loses log lines.
pub fn listen() -> Result<Requests> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, requests) = Requests::channel(1);
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = term.recv() => Signal::SIGTERM,
                _ = int.recv() => Signal::SIGINT,
                _ = hup.recv() => {
                    log::emit(Event::HangupIgnored);
                    continue;
                }
            };
            tx.send_modify(|n| *n += 1);
            log::emit(Event::StopRequested { signal, count: *tx.borrow() });
        }
    });
    Ok(requests)
}
