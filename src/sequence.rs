//! The stop sequence of DESIGN.md §3, as pure policy.
//!
//! It knows nothing of PIDs, pidfds or HTTP: it drives [`Target`]s (something that
//! can be signalled and awaited) and one [`PreStop`] step (deregistration and
//! drain, shared by every target) with `tokio::time` alone, so the whole order is
//! unit-tested under a paused clock.
//!
//! Order: pre-stop (deregister) → drain → stop signal → SIGCONT → wait → dump →
//! kill → confirm. Every wait is a race between the target's exit and a deadline:
//! `--wait` is an upper bound, and the sequence moves on the moment the target is
//! gone. Further stop requests to gracestop (a second SIGTERM or SIGINT) race
//! every phase too: the second cuts deregistration and drain short, the third
//! skips straight to SIGKILL.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::future::join_all;
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::event::{Cut, Event, Phase, Subject};
use crate::log;
pub use crate::platform::Delivery;

/// How long to wait after SIGKILL before reporting that a target survived it
/// (a process in uninterruptible sleep, `D` state, cannot die until its I/O ends).
pub const KILL_CONFIRM: Duration = Duration::from_secs(5);

/// Something the sequence can stop.
pub trait Target: fmt::Display {
    /// Who the target is, for the log.
    fn subject(&self) -> Subject;

    /// Sends `signal`. `Ok(Delivery::Gone)` when the target had already exited.
    fn signal(&self, signal: Signal) -> io::Result<Delivery>;

    /// Resolves once the target has exited. Cancel-safe; may be awaited repeatedly.
    fn exited(&self) -> impl Future<Output = ()>;
}

/// Where the sequence's waits come from. Production uses [`PreciseClock`] (a
/// timerfd: tokio's millisecond ticks would make every escalation up to ~2 ms
/// late); tests use [`TokioClock`], which runs under a paused clock.
pub trait Clock {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;
}

/// tokio's timer.
pub struct TokioClock;

impl Clock for TokioClock {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}

/// A timerfd per wait.
pub struct PreciseClock;

impl Clock for PreciseClock {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        crate::platform::timer::sleep(duration)
    }
}

/// `future`'s output, or None if `limit` passes first on `clock`.
async fn within<C: Clock, F: Future>(clock: &C, limit: Duration, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        output = future => Some(output),
        _ = clock.sleep(limit) => None,
    }
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

/// An optional pre-stop step: none means no deregistration.
impl<P: PreStop> PreStop for Option<&P> {
    async fn run(&self) -> Result<()> {
        match self {
            Some(step) => step.run().await,
            None => Ok(()),
        }
    }
}

/// The dump step: a signal (SIGQUIT makes a JVM print its threads) and a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dump {
    pub signal: Signal,
    pub wait: Duration,
}

/// Time kept in hand, within a `--deadline`, for SIGKILL to land and be seen.
pub const KILL_RESERVE: Duration = Duration::from_secs(1);

/// What to send and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub drain: Duration,
    pub signal: Signal,
    pub wait: Duration,
    pub dump: Option<Dump>,
    pub force: bool,
}

impl Plan {
    /// The longest the sequence can take until its last signal has landed, when
    /// the pre-stop step may take up to `pre_stop`.
    pub fn worst_case(&self, pre_stop: Duration) -> Duration {
        let dump = self.dump.map_or(Duration::ZERO, |d| d.wait);
        let kill = if self.force { KILL_RESERVE } else { Duration::ZERO };
        pre_stop + self.drain + self.wait + dump + kill
    }

    /// Fits the plan into `deadline` by shortening the drain first, then the wait,
    /// so that gracestop's own dump and kill come before an outer SIGKILL. Returns
    /// what was changed, for the log, or None when the plan already fits.
    pub fn fit(&mut self, pre_stop: Duration, deadline: Duration) -> Option<Event> {
        let worst = self.worst_case(pre_stop);
        let mut over = worst.checked_sub(deadline).filter(|d| !d.is_zero())?;
        let (drain, wait) = (self.drain, self.wait);
        let cut = over.min(self.drain);
        self.drain -= cut;
        over -= cut;
        let cut = over.min(self.wait);
        self.wait -= cut;
        over -= cut;
        let cuts = [("drain", drain, self.drain), ("wait", wait, self.wait)]
            .into_iter()
            .filter(|(_, before, after)| before != after)
            .map(|(step, before, after)| Cut { step, before, after })
            .collect();
        Some(Event::DeadlineExceeded { worst, deadline, cuts, over })
    }
}

fn fmt_duration(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(duration.as_millis() as u64))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.drain.is_zero() {
            write!(f, "drain {}, ", fmt_duration(self.drain))?;
        }
        write!(f, "{}, wait {}", self.signal, fmt_duration(self.wait))?;
        if let Some(dump) = self.dump {
            write!(f, ", then {} and wait {}", dump.signal, humantime::format_duration(dump.wait))?;
        }
        if self.force {
            write!(f, ", then SIGKILL")?;
        } else {
            write!(f, ", then give up (no --force)")?;
        }
        Ok(())
    }
}

/// Stop requests to gracestop so far (SIGTERM/SIGINT), counting the one that
/// started the sequence: the second cuts deregistration and drain short, the
/// third skips to SIGKILL.
#[derive(Clone, Debug)]
pub struct Requests(watch::Receiver<u32>);

impl Requests {
    /// A counter starting at `initial`, and the sender that raises it.
    pub fn channel(initial: u32) -> (watch::Sender<u32>, Requests) {
        let (tx, rx) = watch::channel(initial);
        (tx, Requests(rx))
    }

    /// Resolves once `count` requests have arrived; never, if they cannot any more.
    pub async fn reached(&self, count: u32) {
        let mut rx = self.0.clone();
        if rx.wait_for(|n| *n >= count).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The request count that skips to the signal, and the one that skips to SIGKILL.
const SKIP_TO_SIGNAL: u32 = 2;
const SKIP_TO_KILL: u32 = 3;

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

/// The phases before the signal: the pre-stop step, then the drain. A second stop
/// request cuts both short. Also the whole of `gracestop drain`.
pub async fn before_signal<P: PreStop, C: Clock>(
    pre_stop: &P,
    drain: Duration,
    requests: &Requests,
    clock: &C,
) -> Result<()> {
    let phases = async {
        pre_stop.run().await?;
        if !drain.is_zero() {
            log::emit(Event::DrainStarted { duration: drain });
            clock.sleep(drain).await;
            log::emit(Event::DrainDone { duration: drain });
        }
        Ok(())
    };
    tokio::select! {
        biased;
        _ = requests.reached(SKIP_TO_SIGNAL) => {
            log::emit(Event::DrainCut);
            Ok(())
        }
        result = phases => result,
    }
}

/// Runs the phases before the signal once, then stops every target concurrently.
/// Ends early, without any signal, when every target exits before the signal.
pub async fn stop_all<T: Target, P: PreStop, C: Clock>(
    targets: &[T],
    pre_stop: &P,
    plan: &Plan,
    requests: &Requests,
    clock: &C,
) -> Result<Vec<Fate>> {
    let all_exited = join_all(targets.iter().map(Target::exited));
    tokio::select! {
        biased;
        _ = all_exited => {
            log::emit(Event::GoneBeforeSignal);
            return Ok(vec![Fate::GoneBeforeSignal; targets.len()]);
        }
        result = before_signal(pre_stop, plan.drain, requests, clock) => result?,
    }
    join_all(targets.iter().map(|target| stop_one(target, plan, requests, clock))).await.into_iter().collect()
}

/// [`stop_all`] for one target and an optional pre-stop step, owning its plan:
/// the shape `run` needs to keep the sequence as a future beside its loop.
pub async fn stop_all_owned<T: Target, P: PreStop, C: Clock>(
    target: &T,
    pre_stop: Option<&P>,
    plan: Plan,
    requests: &Requests,
    clock: &C,
) -> Result<Vec<Fate>> {
    stop_all(std::slice::from_ref(target), &pre_stop, &plan, requests, clock).await
}

/// How a bounded wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    Exited,
    TimedOut,
    /// A third stop request: skip to SIGKILL.
    Escalated,
}

/// Waits up to `limit` for `target` to exit, or for the request that skips to
/// kill. On a terminal, the log's countdown runs meanwhile.
async fn wait_for<T: Target, C: Clock>(
    target: &T,
    subject: &Subject,
    limit: Duration,
    requests: &Requests,
    clock: &C,
) -> Waited {
    tokio::select! {
        biased;
        exited = within(clock, limit, target.exited()) => if exited.is_some() { Waited::Exited } else { Waited::TimedOut },
        _ = log::countdown(subject, limit) => unreachable!("the countdown never ends"),
        _ = requests.reached(SKIP_TO_KILL) => {
            log::emit(Event::Escalated);
            Waited::Escalated
        }
    }
}

fn send<T: Target>(target: &T, signal: Signal) -> Result<Delivery> {
    target.signal(signal).with_context(|| format!("cannot send {signal} to {target}"))
}

async fn stop_one<T: Target, C: Clock>(target: &T, plan: &Plan, requests: &Requests, clock: &C) -> Result<Fate> {
    let start = Instant::now();
    let subject = target.subject();
    let sent = |phase: Phase, signal: Signal, wait: Option<Duration>| {
        log::emit(Event::SignalSent { phase, target: subject.clone(), signal, wait });
    };

    if send(target, plan.signal)? == Delivery::Gone {
        log::emit(Event::AlreadyExited { target: subject });
        return Ok(Fate::GoneBeforeSignal);
    }
    sent(Phase::Signal, plan.signal, None);
    // A stopped process acts on nothing but SIGKILL and SIGCONT until continued.
    if plan.signal != Signal::SIGCONT {
        send(target, Signal::SIGCONT)?;
    }
    let exited = |phase: Phase| {
        log::emit(Event::Exited { phase, target: subject.clone(), after: start.elapsed(), signal: plan.signal });
        Ok(Fate::Exited { phase })
    };

    let mut waited = wait_for(target, &subject, plan.wait, requests, clock).await;
    if waited == Waited::Exited {
        return exited(Phase::Wait);
    }

    if let (Waited::TimedOut, Some(dump)) = (&waited, plan.dump) {
        log::emit(Event::StillRunning { target: subject.clone(), after: plan.wait });
        if send(target, dump.signal)? == Delivery::Gone {
            return Ok(exited_meanwhile(&subject, Phase::Dump));
        }
        sent(Phase::Dump, dump.signal, Some(dump.wait));
        waited = wait_for(target, &subject, dump.wait, requests, clock).await;
        if waited == Waited::Exited {
            return exited(Phase::Dump);
        }
    }

    if !plan.force && waited != Waited::Escalated {
        log::emit(Event::GaveUp { target: subject, after: start.elapsed() });
        return Ok(Fate::StillRunning);
    }
    if send(target, Signal::SIGKILL)? == Delivery::Gone {
        return Ok(exited_meanwhile(&subject, Phase::Kill));
    }
    sent(Phase::Kill, Signal::SIGKILL, None);
    let killed_at = Instant::now();
    if within(clock, KILL_CONFIRM, target.exited()).await.is_some() {
        log::emit(Event::Killed { target: subject, after: killed_at.elapsed() });
        Ok(Fate::Killed)
    } else {
        log::emit(Event::SurvivedKill { target: subject, confirm: KILL_CONFIRM });
        Ok(Fate::SurvivedKill)
    }
}

fn exited_meanwhile(subject: &Subject, phase: Phase) -> Fate {
    log::emit(Event::ExitedBefore { phase, target: subject.clone() });
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
        fn subject(&self) -> Subject {
            Subject::process(0, self.name)
        }

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
        Plan { drain: Duration::ZERO, signal: Signal::SIGTERM, wait: 30 * SECOND, dump, force }
    }

    /// Only the request that started the sequence; no more can come.
    fn no_requests() -> Requests {
        Requests::channel(1).1
    }

    fn quit_dump() -> Option<Dump> {
        Some(Dump { signal: Signal::SIGQUIT, wait: 2 * SECOND })
    }

    #[tokio::test(start_paused = true)]
    async fn target_that_handles_term_ends_the_wait_when_it_exits() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::from_millis(250));
        let start = Instant::now();
        let fates =
            stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, quit_dump()), &no_requests(), &TokioClock)
                .await
                .unwrap();
        assert_eq!(fates, [Fate::Exited { phase: Phase::Wait }]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT]);
        assert_eq!(start.elapsed(), Duration::from_millis(250), "wait is an upper bound only");
    }

    #[tokio::test(start_paused = true)]
    async fn target_that_ignores_term_is_left_running_without_force() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let start = Instant::now();
        let fates =
            stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(false, None), &no_requests(), &TokioClock)
                .await
                .unwrap();
        assert_eq!(fates, [Fate::StillRunning]);
        assert!(!fates[0].is_gone());
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT]);
        assert_eq!(start.elapsed(), 30 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn force_kills_exactly_when_wait_runs_out() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, None), &no_requests(), &TokioClock)
            .await
            .unwrap();
        assert_eq!(fates, [Fate::Killed]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGKILL]);
        assert_eq!(target.time_of(Signal::SIGKILL), 30 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn dump_comes_after_wait_and_before_kill() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates =
            stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, quit_dump()), &no_requests(), &TokioClock)
                .await
                .unwrap();
        assert_eq!(fates, [Fate::Killed]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGQUIT, Signal::SIGKILL]);
        assert_eq!(target.time_of(Signal::SIGQUIT), 30 * SECOND);
        assert_eq!(target.time_of(Signal::SIGKILL), 32 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn target_that_exits_on_the_dump_signal_is_not_killed() {
        let target = Fake::new("jvm", &[Signal::SIGQUIT], Duration::from_millis(500));
        let start = Instant::now();
        let fates =
            stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, quit_dump()), &no_requests(), &TokioClock)
                .await
                .unwrap();
        assert_eq!(fates, [Fate::Exited { phase: Phase::Dump }]);
        assert!(!target.signals().contains(&Signal::SIGKILL));
        assert_eq!(start.elapsed(), 30 * SECOND + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn dump_without_force_still_gives_up_after_the_dump_wait() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates =
            stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(false, quit_dump()), &no_requests(), &TokioClock)
                .await
                .unwrap();
        assert_eq!(fates, [Fate::StillRunning]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGQUIT]);
    }

    #[tokio::test(start_paused = true)]
    async fn target_already_gone_gets_no_signal() {
        let target = Fake::new("ghost", &[], Duration::ZERO);
        target.exit_now();
        let pre = SlowPreStop { duration: 5 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let start = Instant::now();
        let fates = stop_all(std::slice::from_ref(&target), &pre, &plan(true, None), &no_requests(), &TokioClock)
            .await
            .unwrap();
        assert_eq!(fates, [Fate::GoneBeforeSignal]);
        assert!(target.signals().is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO, "no need to sit through the pre-stop step");
    }

    #[tokio::test(start_paused = true)]
    async fn pre_stop_runs_before_the_signal() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let pre = SlowPreStop { duration: 5 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        stop_all(std::slice::from_ref(&target), &pre, &plan(false, None), &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(*pre.ran.borrow(), Some(5 * SECOND));
        assert_eq!(target.time_of(Signal::SIGTERM), 5 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn target_exiting_during_pre_stop_ends_the_sequence_early() {
        let target = Fake::new("app", &[], Duration::ZERO);
        let pre = SlowPreStop { duration: 60 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let start = Instant::now();
        let plan = plan(true, None);
        let requests = no_requests();
        let stopping = stop_all(std::slice::from_ref(&target), &pre, &plan, &requests, &TokioClock);
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
        let fates = stop_all(&targets, &NoPreStop, &plan(true, None), &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(fates, [Fate::Killed, Fate::Exited { phase: Phase::Wait }]);
        assert_eq!(targets[0].time_of(Signal::SIGKILL), 30 * SECOND);
        assert_eq!(start.elapsed(), 30 * SECOND, "one --wait for all, not one each");
    }

    #[tokio::test(start_paused = true)]
    async fn cont_as_the_stop_signal_is_not_sent_twice() {
        let target = Fake::new("app", &[Signal::SIGCONT], Duration::ZERO);
        let plan = Plan { signal: Signal::SIGCONT, ..plan(false, None) };
        stop_all(std::slice::from_ref(&target), &NoPreStop, &plan, &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(target.signals(), [Signal::SIGCONT]);
    }

    #[tokio::test(start_paused = true)]
    async fn target_surviving_sigkill_is_reported() {
        let target = Fake { survives_kill: true, ..Fake::new("unkillable", &[], Duration::ZERO) };
        let fates = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan(true, None), &no_requests(), &TokioClock)
            .await
            .unwrap();
        assert_eq!(fates, [Fate::SurvivedKill]);
        assert!(!fates[0].is_gone());
    }

    #[tokio::test(start_paused = true)]
    async fn drain_comes_after_pre_stop_and_before_the_signal() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let pre = SlowPreStop { duration: 2 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let plan = Plan { drain: 10 * SECOND, ..plan(false, None) };
        stop_all(std::slice::from_ref(&target), &pre, &plan, &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(*pre.ran.borrow(), Some(2 * SECOND));
        assert_eq!(target.time_of(Signal::SIGTERM), 12 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn second_request_cuts_the_drain_short() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let plan = Plan { drain: 60 * SECOND, ..plan(false, None) };
        let (tx, requests) = Requests::channel(1);
        let stopping = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan, &requests, &TokioClock);
        let requesting = async {
            tokio::time::sleep(5 * SECOND).await;
            tx.send_replace(2);
        };
        let (fates, ()) = tokio::join!(stopping, requesting);
        assert_eq!(fates.unwrap(), [Fate::Exited { phase: Phase::Wait }]);
        assert_eq!(target.time_of(Signal::SIGTERM), 5 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn third_request_skips_to_kill_even_without_force() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let (tx, requests) = Requests::channel(1);
        let plan = plan(false, quit_dump());
        let stopping = stop_all(std::slice::from_ref(&target), &NoPreStop, &plan, &requests, &TokioClock);
        let requesting = async {
            tokio::time::sleep(SECOND).await;
            tx.send_replace(3);
        };
        let (fates, ()) = tokio::join!(stopping, requesting);
        assert_eq!(fates.unwrap(), [Fate::Killed]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGKILL], "no dump either");
        assert_eq!(target.time_of(Signal::SIGKILL), SECOND);
    }

    #[test]
    fn worst_case_adds_every_phase() {
        assert_eq!(plan(false, None).worst_case(Duration::ZERO), 30 * SECOND);
        let full = Plan { drain: 10 * SECOND, ..plan(true, quit_dump()) };
        assert_eq!(full.worst_case(3 * SECOND), 45 * SECOND + KILL_RESERVE);
        assert!(full.to_string().contains("SIGQUIT"));
        assert!(full.to_string().starts_with("drain 10s"));
    }

    #[test]
    fn deadline_shortens_drain_first_then_wait() {
        let full = Plan { drain: 10 * SECOND, ..plan(true, quit_dump()) };
        // 3 + 10 + 30 + 2 + 1 = 46 s of worst case.
        let mut fitted = full;
        assert_eq!(fitted.fit(3 * SECOND, 60 * SECOND), None, "fits already");
        assert_eq!(fitted, full);

        let note = fitted.fit(3 * SECOND, 40 * SECOND).unwrap().render().message;
        assert_eq!((fitted.drain, fitted.wait), (4 * SECOND, 30 * SECOND));
        assert!(note.contains("drain shortened from 10s to 4s") && !note.contains("wait"), "{note}");

        let mut fitted = full;
        fitted.fit(3 * SECOND, 20 * SECOND).unwrap();
        assert_eq!((fitted.drain, fitted.wait), (Duration::ZERO, 14 * SECOND));
        assert_eq!(fitted.worst_case(3 * SECOND), 20 * SECOND);

        let mut fitted = full;
        let note = fitted.fit(3 * SECOND, 4 * SECOND).unwrap().render().message;
        assert_eq!((fitted.drain, fitted.wait), (Duration::ZERO, Duration::ZERO));
        assert!(note.contains("still 2s over"), "{note}");
    }
}
