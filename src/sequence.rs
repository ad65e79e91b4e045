//! The stop sequence of DESIGN.md §3, as pure policy.
//!
//! It knows nothing of PIDs, pidfds or HTTP: it drives [`Target`]s (something that
//! can be signalled and awaited) and one [`PreStop`] step (deregistration and
//! drain, shared by every target) with `tokio::time` alone, so the whole order is
//! unit-tested under a paused clock.
//!
//! Order: pre-stop → stop signal → SIGCONT → wait → dump → kill → confirm.
//! Every wait is a race between the target's exit and a deadline: `--wait` is an
//! upper bound, and the sequence moves on the moment the target is gone.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::future::join_all;
use nix::sys::signal::Signal;
use tokio::time::{timeout, Instant};

use crate::log;
pub use crate::platform::Delivery;

/// How long to wait after SIGKILL before reporting that a target survived it
/// (a process in uninterruptible sleep, `D` state, cannot die until its I/O ends).
pub const KILL_CONFIRM: Duration = Duration::from_secs(5);

/// Something the sequence can stop.
pub trait Target: fmt::Display {
    /// Sends `signal`. `Ok(Delivery::Gone)` when the target had already exited.
    fn signal(&self, signal: Signal) -> io::Result<Delivery>;

    /// Resolves once the target has exited. Cancel-safe; may be awaited repeatedly.
    fn exited(&self) -> impl Future<Output = ()>;
}

/// The phases before the signal (deregister, drain), run once for all targets.
pub trait PreStop {
    fn run(&self) -> impl Future<Output = Result<()>>;
}

/// No deregistration and no drain.
pub struct NoPreStop;

impl PreStop for NoPreStop {
    async fn run(&self) -> Result<()> {
        Ok(())
    }
}

/// The dump step: a signal (SIGQUIT makes a JVM print its threads) and a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dump {
    pub signal: Signal,
    pub wait: Duration,
}

/// What to send and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub signal: Signal,
    pub wait: Duration,
    pub dump: Option<Dump>,
    pub force: bool,
}

impl Plan {
    /// The longest the signal-to-end part of the sequence can take.
    pub fn worst_case(&self) -> Duration {
        let dump = self.dump.map_or(Duration::ZERO, |d| d.wait);
        let kill = if self.force { KILL_CONFIRM } else { Duration::ZERO };
        self.wait + dump + kill
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, wait {}", self.signal, humantime::format_duration(self.wait))?;
        if let Some(dump) = self.dump {
            write!(f, ", then {} and wait {}", dump.signal, humantime::format_duration(dump.wait))?;
        }
        if self.force {
            write!(f, ", then SIGKILL")?;
        } else {
            write!(f, ", then give up (no --force)")?;
        }
        write!(f, "; worst case {}", humantime::format_duration(self.worst_case()))
    }
}

/// A phase of the sequence, as it appears in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Plan,
    Signal,
    Wait,
    Dump,
    Kill,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Signal => "signal",
            Phase::Wait => "wait",
            Phase::Dump => "dump",
            Phase::Kill => "kill",
        }
    }
}

/// How one target ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Exited before the stop signal reached it.
    GoneBeforeSignal,
    /// Exited on its own after the stop signal, during `phase`.
    Exited { phase: Phase },
    /// Killed with SIGKILL (`--force`).
    Killed,
    /// Still running after `--wait` (and the dump), without `--force`.
    StillRunning,
    /// Still running after SIGKILL and [`KILL_CONFIRM`].
    SurvivedKill,
}

impl Fate {
    pub fn is_gone(self) -> bool {
        !matches!(self, Fate::StillRunning | Fate::SurvivedKill)
    }
}

/// Runs the pre-stop step once, then stops every target concurrently. Ends early,
/// without any signal, when every target exits during the pre-stop step.
pub async fn stop_all<T: Target, P: PreStop>(targets: &[T], pre_stop: &P, plan: &Plan) -> Result<Vec<Fate>> {
    let all_exited = join_all(targets.iter().map(Target::exited));
    tokio::select! {
        biased;
        _ = all_exited => {
            log::info("signal", format_args!("every target exited before the stop signal"));
            return Ok(vec![Fate::GoneBeforeSignal; targets.len()]);
        }
        result = pre_stop.run() => result?,
    }
    join_all(targets.iter().map(|target| stop_one(target, plan))).await.into_iter().collect()
}

/// Waits up to `limit` for `target` to exit; true when it did.
async fn exits_within<T: Target>(target: &T, limit: Duration) -> bool {
    timeout(limit, target.exited()).await.is_ok()
}

fn send<T: Target>(target: &T, signal: Signal) -> Result<Delivery> {
    target.signal(signal).with_context(|| format!("cannot send {signal} to {target}"))
}

async fn stop_one<T: Target>(target: &T, plan: &Plan) -> Result<Fate> {
    let start = Instant::now();
    let since = |start: Instant| log::span(start.elapsed());

    if send(target, plan.signal)? == Delivery::Gone {
        log::info("signal", format_args!("{target} had already exited"));
        return Ok(Fate::GoneBeforeSignal);
    }
    log::info("signal", format_args!("{} -> {target}", plan.signal));
    // A stopped process acts on nothing but SIGKILL and SIGCONT until continued.
    if plan.signal != Signal::SIGCONT {
        send(target, Signal::SIGCONT)?;
    }

    if exits_within(target, plan.wait).await {
        log::info("wait", format_args!("{target} exited {} after {}", since(start), plan.signal));
        return Ok(Fate::Exited { phase: Phase::Wait });
    }
    log::info("wait", format_args!("{target} still runs after {}", humantime::format_duration(plan.wait)));

    if let Some(dump) = plan.dump {
        if send(target, dump.signal)? == Delivery::Gone {
            return Ok(exited_meanwhile(target, Phase::Dump));
        }
        log::info(
            "dump",
            format_args!("{} -> {target}, waiting {}", dump.signal, humantime::format_duration(dump.wait)),
        );
        if exits_within(target, dump.wait).await {
            log::info("dump", format_args!("{target} exited {} after {}", since(start), plan.signal));
            return Ok(Fate::Exited { phase: Phase::Dump });
        }
    }

    if !plan.force {
        log::warn("wait", format_args!("{target} still runs; not killing it without --force"));
        return Ok(Fate::StillRunning);
    }
    if send(target, Signal::SIGKILL)? == Delivery::Gone {
        return Ok(exited_meanwhile(target, Phase::Kill));
    }
    log::info("kill", format_args!("SIGKILL -> {target}"));
    let killed_at = Instant::now();
    if exits_within(target, KILL_CONFIRM).await {
        log::info("kill", format_args!("{target} killed ({} after SIGKILL)", since(killed_at)));
        Ok(Fate::Killed)
    } else {
        log::warn(
            "kill",
            format_args!(
                "{target} survived SIGKILL for {} (uninterruptible sleep?)",
                humantime::format_duration(KILL_CONFIRM)
            ),
        );
        Ok(Fate::SurvivedKill)
    }
}

fn exited_meanwhile<T: Target>(target: &T, phase: Phase) -> Fate {
    log::info(phase.name(), format_args!("{target} exited before {}", phase.name()));
    Fate::Exited { phase }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use tokio::sync::watch;

    /// A target on the fake clock: it records every signal with its time and exits
    /// after `delay` when it receives one of `exits_on`.
    struct Fake {
        name: &'static str,
        exits_on: Vec<Signal>,
        delay: Duration,
        survives_kill: bool,
        start: Instant,
        received: RefCell<Vec<(Signal, Duration)>>,
        exit_at: watch::Sender<Option<Instant>>,
    }

    impl Fake {
        fn new(name: &'static str, exits_on: &[Signal], delay: Duration) -> Self {
            Fake {
                name,
                exits_on: exits_on.to_vec(),
                delay,
                survives_kill: false,
                start: Instant::now(),
                received: RefCell::new(Vec::new()),
                exit_at: watch::channel(None).0,
            }
        }

        fn exit_now(&self) {
            self.exit_at.send_replace(Some(Instant::now()));
        }

        fn gone(&self) -> bool {
            self.exit_at.borrow().is_some_and(|at| at <= Instant::now())
        }

        fn signals(&self) -> Vec<Signal> {
            self.received.borrow().iter().map(|r| r.0).collect()
        }

        fn time_of(&self, signal: Signal) -> Duration {
            self.received.borrow().iter().find(|r| r.0 == signal).expect("signal received").1
        }
    }

    impl fmt::Display for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name)
        }
    }

    impl Target for Fake {
        fn signal(&self, signal: Signal) -> io::Result<Delivery> {
            if self.gone() {
                return Ok(Delivery::Gone);
            }
            self.received.borrow_mut().push((signal, self.start.elapsed()));
            let killed = signal == Signal::SIGKILL && !self.survives_kill;
            if killed || self.exits_on.contains(&signal) {
                let at = Instant::now() + if killed { Duration::ZERO } else { self.delay };
                self.exit_at.send_if_modified(|exit| {
                    let earlier = exit.is_none_or(|old| at < old);
                    if earlier {
                        *exit = Some(at);
                    }
                    earlier
                });
            }
            Ok(Delivery::Sent)
        }

        async fn exited(&self) {
            let mut rx = self.exit_at.subscribe();
            loop {
                let at = *rx.borrow_and_update();
                match at {
                    Some(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => return,
                            _ = rx.changed() => {}
                        }
                    }
                    None => {
                        let _ = rx.changed().await;
                    }
                }
            }
        }
    }

    /// A pre-stop step that takes `duration` and records when it ran.
    struct SlowPreStop {
        duration: Duration,
        ran: RefCell<Option<Duration>>,
        start: Instant,
    }

    impl PreStop for SlowPreStop {
        async fn run(&self) -> Result<()> {
            tokio::time::sleep(self.duration).await;
            *self.ran.borrow_mut() = Some(self.start.elapsed());
            Ok(())
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    fn plan(force: bool, dump: Option<Dump>) -> Plan {
        Plan { signal: Signal::SIGTERM, wait: 30 * SECOND, dump, force }
    }

    fn quit_dump() -> Option<Dump> {
        Some(Dump { signal: Signal::SIGQUIT, wait: 2 * SECOND })
    }

    #[tokio::test(start_paused = true)]
    async fn target_that_handles_term_ends_the_wait_when_it_exits() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::from_millis(250));
        let start = Instant::now();
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, quit_dump())).await.unwrap();
        assert_eq!(fates, [Fate::Exited { phase: Phase::Wait }]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT]);
        assert_eq!(start.elapsed(), Duration::from_millis(250), "wait is an upper bound only");
    }

    #[tokio::test(start_paused = true)]
    async fn target_that_ignores_term_is_left_running_without_force() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let start = Instant::now();
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(false, None)).await.unwrap();
        assert_eq!(fates, [Fate::StillRunning]);
        assert!(!fates[0].is_gone());
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT]);
        assert_eq!(start.elapsed(), 30 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn force_kills_exactly_when_wait_runs_out() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, None)).await.unwrap();
        assert_eq!(fates, [Fate::Killed]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGKILL]);
        assert_eq!(target.time_of(Signal::SIGKILL), 30 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn dump_comes_after_wait_and_before_kill() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, quit_dump())).await.unwrap();
        assert_eq!(fates, [Fate::Killed]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGQUIT, Signal::SIGKILL]);
        assert_eq!(target.time_of(Signal::SIGQUIT), 30 * SECOND);
        assert_eq!(target.time_of(Signal::SIGKILL), 32 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn target_that_exits_on_the_dump_signal_is_not_killed() {
        let target = Fake::new("jvm", &[Signal::SIGQUIT], Duration::from_millis(500));
        let start = Instant::now();
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, quit_dump())).await.unwrap();
        assert_eq!(fates, [Fate::Exited { phase: Phase::Dump }]);
        assert!(!target.signals().contains(&Signal::SIGKILL));
        assert_eq!(start.elapsed(), 30 * SECOND + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn dump_without_force_still_gives_up_after_the_dump_wait() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(false, quit_dump())).await.unwrap();
        assert_eq!(fates, [Fate::StillRunning]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGQUIT]);
    }

    #[tokio::test(start_paused = true)]
    async fn target_already_gone_gets_no_signal() {
        let target = Fake::new("ghost", &[], Duration::ZERO);
        target.exit_now();
        let pre = SlowPreStop { duration: 5 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let start = Instant::now();
        let fates = stop_all(std::slice::from_ref(&target), &pre, &plan(true, None)).await.unwrap();
        assert_eq!(fates, [Fate::GoneBeforeSignal]);
        assert!(target.signals().is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO, "no need to sit through the pre-stop step");
    }

    #[tokio::test(start_paused = true)]
    async fn pre_stop_runs_before_the_signal() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let pre = SlowPreStop { duration: 5 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        stop_all(std::slice::from_ref(&target), &pre, &plan(false, None)).await.unwrap();
        assert_eq!(*pre.ran.borrow(), Some(5 * SECOND));
        assert_eq!(target.time_of(Signal::SIGTERM), 5 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn target_exiting_during_pre_stop_ends_the_sequence_early() {
        let target = Fake::new("app", &[], Duration::ZERO);
        let pre = SlowPreStop { duration: 60 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let start = Instant::now();
        let plan = plan(true, None);
        let stopping = stop_all(std::slice::from_ref(&target), &pre, &plan);
        let exiting = async {
            tokio::time::sleep(3 * SECOND).await;
            target.exit_now();
        };
        let (fates, ()) = tokio::join!(stopping, exiting);
        assert_eq!(fates.unwrap(), [Fate::GoneBeforeSignal]);
        assert_eq!(start.elapsed(), 3 * SECOND);
        assert!(target.signals().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn targets_are_stopped_concurrently() {
        let slow = Fake::new("slow", &[], Duration::ZERO);
        let quick = Fake::new("quick", &[Signal::SIGTERM], SECOND);
        let start = Instant::now();
        let targets = [slow, quick];
        let fates = stop_all(&targets, &NoPreStop, &plan(true, None)).await.unwrap();
        assert_eq!(fates, [Fate::Killed, Fate::Exited { phase: Phase::Wait }]);
        assert_eq!(targets[0].time_of(Signal::SIGKILL), 30 * SECOND);
        assert_eq!(start.elapsed(), 30 * SECOND, "one --wait for all, not one each");
    }

    #[tokio::test(start_paused = true)]
    async fn cont_as_the_stop_signal_is_not_sent_twice() {
        let target = Fake::new("app", &[Signal::SIGCONT], Duration::ZERO);
        let plan = Plan { signal: Signal::SIGCONT, ..plan(false, None) };
        stop_all(std::slice::from_ref(&target), &NoPreStop, &plan).await.unwrap();
        assert_eq!(target.signals(), [Signal::SIGCONT]);
    }

    #[tokio::test(start_paused = true)]
    async fn target_surviving_sigkill_is_reported() {
        let target = Fake { survives_kill: true, ..Fake::new("unkillable", &[], Duration::ZERO) };
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, None)).await.unwrap();
        assert_eq!(fates, [Fate::SurvivedKill]);
        assert!(!fates[0].is_gone());
    }

    #[test]
    fn worst_case_adds_every_phase() {
        assert_eq!(plan(false, None).worst_case(), 30 * SECOND);
        assert_eq!(plan(true, quit_dump()).worst_case(), 32 * SECOND + KILL_CONFIRM);
        assert!(plan(true, quit_dump()).to_string().contains("SIGQUIT"));
    }
}
