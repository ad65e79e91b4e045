//! The stop sequence of DESIGN.md §3 and its plan, as pure policy.
//!
//! It knows nothing of PIDs, pidfds or HTTP. A [`Plan`] is a list of pre-stop
//! [`Step`]s (deregistration, the drain; run once for every target) and a
//! [`StopPlan`]: the [`StopAction`] (the stop signal today), the wait, the
//! dump and the kill. The plan owns the budget: each step reports its own worst
//! case, so any step added later counts against `--deadline`, and
//! [`Plan::fit`] shortens the steps that can be shortened (the drain), then the
//! wait. The sequence drives [`Target`]s (something that can be signalled and
//! awaited) with `tokio::time` alone, so the whole order is unit-tested under a
//! paused clock.
//!
//! Order: pre-stop steps (deregister, drain) → stop action → SIGCONT → wait →
//! dump → kill → confirm. Every wait is a race between the target's exit and a
//! deadline: `--wait` is an upper bound, and the sequence moves on the moment
//! the target is gone. Further stop requests to gracestop (a second SIGTERM or
//! SIGINT) race every phase too: the second cuts the pre-stop steps short, the
//! third skips straight to SIGKILL.
//!
//! A new pre-stop step implements [`Step`] and is added where the commands
//! build their plan (`plan` in `stop`, `drain` and `run`); a new stop action is
//! a variant of [`StopAction`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::future::join_all;
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::event::{setting, Cut, Event, Phase, PlanFields, Subject};
use crate::log;
pub use crate::platform::Delivery;

/// How long to wait after SIGKILL before reporting that a target survived it
/// (a process in uninterruptible sleep, `D` state, cannot die until its I/O ends).
pub const KILL_CONFIRM: Duration = Duration::from_secs(5);

/// Time kept in hand, within a `--deadline`, for SIGKILL to land and be seen.
pub const KILL_RESERVE: Duration = Duration::from_secs(1);

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

/// A step's run, boxed so that steps of different kinds share one list.
pub type StepRun<'a> = Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

/// A step before the stop action, run once for all targets: deregistration,
/// the drain, and any step added later. Its worst case is part of the plan's,
/// so `--deadline` accounts for it.
pub trait Step {
    /// Its name in the log and in a deadline note: `deregister`, `drain`.
    fn name(&self) -> &'static str;

    /// The longest it can take.
    fn worst_case(&self) -> Duration;

    /// Shortens it by up to `by`, to fit `--deadline`; returns how much was
    /// cut. Steps that cannot be shortened (deregistration) cut nothing.
    fn shorten(&mut self, by: Duration) -> Duration {
        let _ = by;
        Duration::ZERO
    }

    /// Told, once a plan has been fitted into `--deadline`, the latest moment
    /// it may end. The plan is fitted to every step's worst case, and a
    /// deregistration that answers at once leaves most of its own unused: a
    /// step that was shortened (the drain) takes that time back, up to its
    /// configured length, without moving anything after it.
    fn end_by(&mut self, at: Instant) {
        let _ = at;
    }

    /// Its own line in the plan, before the plan's summary.
    fn planned(&self) -> Option<Event> {
        None
    }

    /// Its part of the plan's summary (`drain 10s`), if it has one.
    fn summary(&self) -> Option<String> {
        None
    }

    /// Runs it. An error aborts the sequence before the stop action.
    fn run(&self) -> StepRun<'_>;
}

/// A borrowed step is a step: a command's plan can be rebuilt around the same
/// deregistration (`run` plans again after a strict failure).
impl<S: Step + ?Sized> Step for &S {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn worst_case(&self) -> Duration {
        (**self).worst_case()
    }
    fn planned(&self) -> Option<Event> {
        (**self).planned()
    }
    fn summary(&self) -> Option<String> {
        (**self).summary()
    }
    fn run(&self) -> StepRun<'_> {
        (**self).run()
    }
}

/// The fixed drain: a sleep through the load balancer's refresh window.
pub struct Drain<C> {
    /// As planned: `--drain`, or less once fitted into `--deadline`.
    duration: Duration,
    /// `--drain` as given: the most it may take back (see [`Step::end_by`]).
    configured: Duration,
    /// The latest moment it may end, once fitted into `--deadline`.
    end_by: Option<Instant>,
    clock: C,
}

impl<C: Clock> Drain<C> {
    pub fn new(duration: Duration, clock: C) -> Drain<C> {
        Drain { duration, configured: duration, end_by: None, clock }
    }

    /// How long to drain, starting now.
    fn length(&self) -> Duration {
        match self.end_by {
            Some(end) => self.configured.min(end.saturating_duration_since(Instant::now())),
            None => self.duration,
        }
    }
}

impl<C: Clock> Step for Drain<C> {
    fn name(&self) -> &'static str {
        "drain"
    }

    fn worst_case(&self) -> Duration {
        self.duration
    }

    fn shorten(&mut self, by: Duration) -> Duration {
        let cut = by.min(self.duration);
        self.duration -= cut;
        cut
    }

    fn end_by(&mut self, at: Instant) {
        self.end_by = Some(at);
    }

    fn summary(&self) -> Option<String> {
        (!self.duration.is_zero()).then(|| format!("drain {}", setting(self.duration)))
    }

    fn run(&self) -> StepRun<'_> {
        Box::pin(async move {
            let duration = self.length();
            if !duration.is_zero() {
                log::emit(Event::DrainStarted { duration });
                self.clock.sleep(duration).await;
                log::emit(Event::DrainDone { duration });
            }
            Ok(())
        })
    }
}

/// The dump step: a signal (SIGQUIT makes a JVM print its threads) and a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dump {
    pub signal: Signal,
    pub wait: Duration,
}

/// How a stop is requested of a target (DESIGN.md §11): the stop signal today;
/// a shutdown endpoint is another variant, falling back to the signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopAction {
    Signal(Signal),
}

impl StopAction {
    /// The signal the action sends, or falls back to.
    pub fn signal(&self) -> Signal {
        match self {
            StopAction::Signal(signal) => *signal,
        }
    }

    /// Requests the stop. `Delivery::Gone` when the target had already exited.
    fn perform<T: Target>(&self, target: &T) -> Result<Delivery> {
        match self {
            StopAction::Signal(signal) => send(target, *signal),
        }
    }
}

impl fmt::Display for StopAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopAction::Signal(signal) => write!(f, "{signal}"),
        }
    }
}

/// The stop action and what follows it: wait, dump, kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopPlan {
    pub action: StopAction,
    pub wait: Duration,
    pub dump: Option<Dump>,
    pub force: bool,
}

impl StopPlan {
    /// From the action's request until the last signal has landed.
    pub fn worst_case(&self) -> Duration {
        let dump = self.dump.map_or(Duration::ZERO, |d| d.wait);
        let kill = if self.force { KILL_RESERVE } else { Duration::ZERO };
        self.wait + dump + kill
    }
}

impl fmt::Display for StopPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, wait {}", self.action, setting(self.wait))?;
        if let Some(dump) = self.dump {
            write!(f, ", then {} and wait {}", dump.signal, setting(dump.wait))?;
        }
        if self.force {
            write!(f, ", then SIGKILL")
        } else {
            write!(f, ", then give up (no --force)")
        }
    }
}

/// Everything the sequence will do, in order, and what it may cost.
pub struct Plan<'a> {
    /// Before the stop action, in order.
    pub steps: Vec<Box<dyn Step + 'a>>,
    /// None for `gracestop drain`, which stops at the steps.
    pub stop: Option<StopPlan>,
}

impl<'a> Plan<'a> {
    /// A plan without pre-stop steps.
    pub fn stop_only(stop: StopPlan) -> Plan<'a> {
        Plan { steps: Vec::new(), stop: Some(stop) }
    }

    /// The longest the whole sequence can take, until its last signal has landed.
    pub fn worst_case(&self) -> Duration {
        let steps: Duration = self.steps.iter().map(|step| step.worst_case()).sum();
        steps + self.stop.as_ref().map_or(Duration::ZERO, StopPlan::worst_case)
    }

    /// Fits the plan into `deadline` by shortening the steps that can be
    /// shortened (the drain), in order, then the wait, so that gracestop's own
    /// dump and kill come before an outer SIGKILL. The plan must start now:
    /// each step is told when, at the latest, it must end ([`Step::end_by`]),
    /// so that a shortened drain can take back what the steps before it
    /// leave of their worst case. Returns what was changed, for the log, or
    /// None when the plan already fits.
    pub fn fit(&mut self, deadline: Duration) -> Option<Event> {
        let worst = self.worst_case();
        let mut over = worst.checked_sub(deadline).filter(|d| !d.is_zero())?;
        let mut cuts = Vec::new();
        let mut before_it = Duration::ZERO;
        for step in &mut self.steps {
            let before = step.worst_case();
            let cut = step.shorten(over);
            if !cut.is_zero() {
                over -= cut;
                let elastic = !before_it.is_zero();
                cuts.push(Cut { step: step.name(), before, after: step.worst_case(), elastic });
            }
            before_it += step.worst_case();
        }
        // Each step must end in time for everything after it to fit: never past
        // the deadline, even when the plan cannot fit it (then what remains over
        // is the deregistration's, which nothing takes back).
        let start = Instant::now();
        let mut after_it = self.stop.as_ref().map_or(Duration::ZERO, StopPlan::worst_case);
        for step in self.steps.iter_mut().rev() {
            step.end_by(start + deadline.saturating_sub(after_it));
            after_it += step.worst_case();
        }
        if let Some(stop) = &mut self.stop {
            let cut = over.min(stop.wait);
            if !cut.is_zero() {
                cuts.push(Cut { step: "wait", before: stop.wait, after: stop.wait - cut, elastic: false });
                stop.wait -= cut;
                over -= cut;
            }
        }
        Some(Event::DeadlineExceeded { worst, deadline, cuts, over })
    }

    /// What the plan does, in one line: `drain 10s, SIGTERM, wait 30s, then SIGKILL`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self.steps.iter().filter_map(|step| step.summary()).collect();
        if let Some(stop) = &self.stop {
            parts.push(stop.to_string());
        }
        if parts.is_empty() {
            parts.push("no drain".to_string());
        }
        parts.join(", ")
    }

    /// Logs the plan (each step's own line, then the summary `what` introduces,
    /// for `targets`) and fits it into `deadline`, saying what was shortened.
    pub fn announce(&mut self, what: &str, targets: &[Subject], deadline: Option<Duration>) {
        for step in &self.steps {
            if let Some(event) = step.planned() {
                log::emit(event);
            }
        }
        let summary = if what.is_empty() { self.summary() } else { format!("{what}: {}", self.summary()) };
        let drain = self.steps.iter().filter(|step| step.name() == "drain").map(|step| step.worst_case()).sum();
        log::emit(Event::Planned {
            summary,
            targets: targets.to_vec(),
            steps: PlanFields {
                drain,
                signal: self.stop.map(|stop| stop.action.signal()),
                wait: self.stop.map(|stop| stop.wait),
                dump: self.stop.and_then(|stop| stop.dump).map(|d| (d.signal, d.wait)),
                force: self.stop.map(|stop| stop.force),
            },
            worst: self.worst_case(),
        });
        if let Some(event) = deadline.and_then(|deadline| self.fit(deadline)) {
            log::emit(event);
        }
    }
}

/// Stop requests to gracestop so far (SIGTERM/SIGINT), counting the one that
/// started the sequence: the second cuts the pre-stop steps short, the third
/// skips to SIGKILL.
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

/// The pre-stop steps, in order. A second stop request cuts them short. Also
/// the whole of `gracestop drain`.
pub async fn before_signal(steps: &[Box<dyn Step + '_>], requests: &Requests) -> Result<()> {
    let phases = async {
        for step in steps {
            step.run().await?;
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

/// Runs the pre-stop steps once, then stops every target concurrently. Ends
/// early, without any signal, when every target exits before the signal. A
/// plan without a stop plan ends after the steps.
pub async fn stop_all<T: Target, C: Clock>(
    targets: &[T],
    plan: &Plan<'_>,
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
        result = before_signal(&plan.steps, requests) => result?,
    }
    let Some(stop) = &plan.stop else { return Ok(Vec::new()) };
    join_all(targets.iter().map(|target| stop_one(target, stop, requests, clock))).await.into_iter().collect()
}

/// [`stop_all`] for one target, owning its plan: the shape `run` needs to keep
/// the sequence as a future beside its loop.
pub async fn stop_all_owned<T: Target, C: Clock>(
    target: &T,
    plan: Plan<'_>,
    requests: &Requests,
    clock: &C,
) -> Result<Vec<Fate>> {
    stop_all(std::slice::from_ref(target), &plan, requests, clock).await
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

async fn stop_one<T: Target, C: Clock>(target: &T, plan: &StopPlan, requests: &Requests, clock: &C) -> Result<Fate> {
    let start = Instant::now();
    let subject = target.subject();
    let sent = |phase: Phase, signal: Signal, wait: Option<Duration>| {
        log::emit(Event::SignalSent { phase, target: subject.clone(), signal, wait });
    };
    let stop_signal = plan.action.signal();

    if plan.action.perform(target)? == Delivery::Gone {
        log::emit(Event::AlreadyExited { target: subject });
        return Ok(Fate::GoneBeforeSignal);
    }
    sent(Phase::Signal, stop_signal, None);
    // A stopped process acts on nothing but SIGKILL and SIGCONT until continued.
    if stop_signal != Signal::SIGCONT {
        send(target, Signal::SIGCONT)?;
    }
    let exited = |phase: Phase| {
        log::emit(Event::Exited { phase, target: subject.clone(), after: start.elapsed(), signal: stop_signal });
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

    impl Step for SlowPreStop {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn worst_case(&self) -> Duration {
            self.duration
        }
        fn run(&self) -> StepRun<'_> {
            Box::pin(async move {
                tokio::time::sleep(self.duration).await;
                *self.ran.borrow_mut() = Some(self.start.elapsed());
                Ok(())
            })
        }
    }

    const SECOND: Duration = Duration::from_secs(1);
    const MILLI: Duration = Duration::from_millis(1);

    fn stop_plan(force: bool, dump: Option<Dump>) -> StopPlan {
        StopPlan { action: StopAction::Signal(Signal::SIGTERM), wait: 30 * SECOND, dump, force }
    }

    fn plan(force: bool, dump: Option<Dump>) -> Plan<'static> {
        Plan::stop_only(stop_plan(force, dump))
    }

    /// A plan with pre-stop steps: `pre`, then a drain of `drain` on the paused clock.
    fn plan_with<'a>(pre: Option<&'a SlowPreStop>, drain: Duration, stop: StopPlan) -> Plan<'a> {
        let mut steps: Vec<Box<dyn Step + 'a>> = Vec::new();
        if let Some(pre) = pre {
            steps.push(Box::new(pre));
        }
        steps.push(Box::new(Drain::new(drain, TokioClock)));
        Plan { steps, stop: Some(stop) }
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
        let fates = stop_all(std::slice::from_ref(&target), &plan(true, quit_dump()), &no_requests(), &TokioClock)
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
            stop_all(std::slice::from_ref(&target), &plan(false, None), &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(fates, [Fate::StillRunning]);
        assert!(!fates[0].is_gone());
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT]);
        assert_eq!(start.elapsed(), 30 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn force_kills_exactly_when_wait_runs_out() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates =
            stop_all(std::slice::from_ref(&target), &plan(true, None), &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(fates, [Fate::Killed]);
        assert_eq!(target.signals(), [Signal::SIGTERM, Signal::SIGCONT, Signal::SIGKILL]);
        assert_eq!(target.time_of(Signal::SIGKILL), 30 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn dump_comes_after_wait_and_before_kill() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates = stop_all(std::slice::from_ref(&target), &plan(true, quit_dump()), &no_requests(), &TokioClock)
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
        let fates = stop_all(std::slice::from_ref(&target), &plan(true, quit_dump()), &no_requests(), &TokioClock)
            .await
            .unwrap();
        assert_eq!(fates, [Fate::Exited { phase: Phase::Dump }]);
        assert!(!target.signals().contains(&Signal::SIGKILL));
        assert_eq!(start.elapsed(), 30 * SECOND + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn dump_without_force_still_gives_up_after_the_dump_wait() {
        let target = Fake::new("stubborn", &[], Duration::ZERO);
        let fates = stop_all(std::slice::from_ref(&target), &plan(false, quit_dump()), &no_requests(), &TokioClock)
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
        let plan = plan_with(Some(&pre), Duration::ZERO, stop_plan(true, None));
        let fates = stop_all(std::slice::from_ref(&target), &plan, &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(fates, [Fate::GoneBeforeSignal]);
        assert!(target.signals().is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO, "no need to sit through the pre-stop step");
    }

    #[tokio::test(start_paused = true)]
    async fn pre_stop_runs_before_the_signal() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let pre = SlowPreStop { duration: 5 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let plan = plan_with(Some(&pre), Duration::ZERO, stop_plan(false, None));
        stop_all(std::slice::from_ref(&target), &plan, &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(*pre.ran.borrow(), Some(5 * SECOND));
        assert_eq!(target.time_of(Signal::SIGTERM), 5 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn target_exiting_during_pre_stop_ends_the_sequence_early() {
        let target = Fake::new("app", &[], Duration::ZERO);
        let pre = SlowPreStop { duration: 60 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let start = Instant::now();
        let plan = plan_with(Some(&pre), Duration::ZERO, stop_plan(true, None));
        let requests = no_requests();
        let stopping = stop_all(std::slice::from_ref(&target), &plan, &requests, &TokioClock);
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
        let fates = stop_all(&targets, &plan(true, None), &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(fates, [Fate::Killed, Fate::Exited { phase: Phase::Wait }]);
        assert_eq!(targets[0].time_of(Signal::SIGKILL), 30 * SECOND);
        assert_eq!(start.elapsed(), 30 * SECOND, "one --wait for all, not one each");
    }

    #[tokio::test(start_paused = true)]
    async fn cont_as_the_stop_signal_is_not_sent_twice() {
        let target = Fake::new("app", &[Signal::SIGCONT], Duration::ZERO);
        let plan = Plan::stop_only(StopPlan { action: StopAction::Signal(Signal::SIGCONT), ..stop_plan(false, None) });
        stop_all(std::slice::from_ref(&target), &plan, &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(target.signals(), [Signal::SIGCONT]);
    }

    #[tokio::test(start_paused = true)]
    async fn target_surviving_sigkill_is_reported() {
        let target = Fake { survives_kill: true, ..Fake::new("unkillable", &[], Duration::ZERO) };
        let fates =
            stop_all(std::slice::from_ref(&target), &plan(true, None), &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(fates, [Fate::SurvivedKill]);
        assert!(!fates[0].is_gone());
    }

    #[tokio::test(start_paused = true)]
    async fn drain_comes_after_pre_stop_and_before_the_signal() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let pre = SlowPreStop { duration: 2 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let plan = plan_with(Some(&pre), 10 * SECOND, stop_plan(false, None));
        stop_all(std::slice::from_ref(&target), &plan, &no_requests(), &TokioClock).await.unwrap();
        assert_eq!(*pre.ran.borrow(), Some(2 * SECOND));
        assert_eq!(target.time_of(Signal::SIGTERM), 12 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn second_request_cuts_the_drain_short() {
        let target = Fake::new("app", &[Signal::SIGTERM], Duration::ZERO);
        let plan = plan_with(None, 60 * SECOND, stop_plan(false, None));
        let (tx, requests) = Requests::channel(1);
        let stopping = stop_all(std::slice::from_ref(&target), &plan, &requests, &TokioClock);
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
        let stopping = stop_all(std::slice::from_ref(&target), &plan, &requests, &TokioClock);
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
    fn worst_case_adds_every_step_and_phase() {
        assert_eq!(plan(false, None).worst_case(), 30 * SECOND);
        let pre = SlowPreStop { duration: 3 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let full = plan_with(Some(&pre), 10 * SECOND, stop_plan(true, quit_dump()));
        assert_eq!(full.worst_case(), 45 * SECOND + KILL_RESERVE);
        assert!(full.summary().contains("SIGQUIT"));
        assert!(full.summary().starts_with("drain 10s, SIGTERM, wait 30s"), "{}", full.summary());
    }

    #[test]
    fn deadline_shortens_drain_first_then_wait() {
        // 3 + 10 + 30 + 2 + 1 = 46 s of worst case; the 3 s step cannot be shortened.
        let pre = SlowPreStop { duration: 3 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let full = || plan_with(Some(&pre), 10 * SECOND, stop_plan(true, quit_dump()));
        let drain_and_wait = |plan: &Plan| (plan.steps[1].worst_case(), plan.stop.unwrap().wait);

        let mut fitted = full();
        assert_eq!(fitted.fit(60 * SECOND), None, "fits already");
        assert_eq!(drain_and_wait(&fitted), (10 * SECOND, 30 * SECOND));

        let note = fitted.fit(40 * SECOND).unwrap().render().message;
        assert_eq!(drain_and_wait(&fitted), (4 * SECOND, 30 * SECOND));
        assert!(note.contains("drain shortened from 10s to 4s") && !note.contains("wait"), "{note}");

        let mut fitted = full();
        fitted.fit(20 * SECOND).unwrap();
        assert_eq!(drain_and_wait(&fitted), (Duration::ZERO, 14 * SECOND));
        assert_eq!(fitted.worst_case(), 20 * SECOND);

        let mut fitted = full();
        let note = fitted.fit(4 * SECOND).unwrap().render().message;
        assert_eq!(drain_and_wait(&fitted), (Duration::ZERO, Duration::ZERO));
        assert!(note.contains("still 2s over"), "{note}");
    }

    /// A pre-stop step whose worst case is `worst` but which takes `takes`, as a
    /// deregistration that answers at once does.
    struct QuickPreStop {
        worst: Duration,
        takes: Duration,
    }

    impl Step for QuickPreStop {
        fn name(&self) -> &'static str {
            "quick"
        }
        fn worst_case(&self) -> Duration {
            self.worst
        }
        fn run(&self) -> StepRun<'_> {
            Box::pin(async move {
                tokio::time::sleep(self.takes).await;
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_shortened_for_the_steps_before_it_takes_back_what_they_leave() {
        // The README's preStop: a deregistration budgeted at 16 s, --drain 20s,
        // --deadline 25s. Fitted to the worst case the drain gets 9 s; it gets its
        // full 20 s when the deregistration answers at once, 15 s when it takes
        // 10 s, and exactly the fitted 9 s when it takes its whole worst case,
        // ending by the deadline in every case.
        for (takes, drained) in [(0, 20), (10, 15), (16, 9)] {
            let pre = QuickPreStop { worst: 16 * SECOND, takes: takes * SECOND };
            let steps: Vec<Box<dyn Step + '_>> = vec![Box::new(&pre), Box::new(Drain::new(20 * SECOND, TokioClock))];
            let mut plan = Plan { steps, stop: None };
            let note = plan.fit(25 * SECOND).unwrap().render().message;
            assert!(note.contains("drain shortened from 20s to 9s (more"), "{note}");
            let start = Instant::now();
            before_signal(&plan.steps, &no_requests()).await.unwrap();
            assert_eq!(start.elapsed(), (takes + drained) * SECOND, "deregistration took {takes}s");
        }
        // Cut to nothing, with the wait cut too, it still takes back its 5 s
        // when the deregistration answers at once (0 + 5 + 23 + 1 <= 40 s).
        let pre = QuickPreStop { worst: 16 * SECOND, takes: Duration::ZERO };
        let steps: Vec<Box<dyn Step + '_>> = vec![Box::new(&pre), Box::new(Drain::new(5 * SECOND, TokioClock))];
        let mut plan = Plan { steps, stop: Some(stop_plan(true, None)) };
        let note = plan.fit(40 * SECOND).unwrap().render().message;
        assert!(
            note.contains("drain shortened from 5s to 0s (more") && note.contains("wait shortened from 30s to 23s")
        );
        let start = Instant::now();
        before_signal(&plan.steps, &no_requests()).await.unwrap();
        assert_eq!(start.elapsed(), 5 * SECOND);

        // A plan that cannot fit (the deregistration alone is over): the drain
        // never runs past the deadline, and gets only what is left of it.
        let pre = QuickPreStop { worst: 16 * SECOND, takes: 3900 * MILLI };
        let steps: Vec<Box<dyn Step + '_>> = vec![Box::new(&pre), Box::new(Drain::new(3 * SECOND, TokioClock))];
        let mut plan = Plan { steps, stop: None };
        assert!(plan.fit(4 * SECOND).unwrap().render().message.contains("still 12s over"));
        let start = Instant::now();
        before_signal(&plan.steps, &no_requests()).await.unwrap();
        assert_eq!(start.elapsed(), 4 * SECOND);
    }

    #[test]
    fn a_step_added_later_counts_against_the_deadline() {
        // Any Step's worst case is budgeted: a 20 s step leaves the wait 9 s of a 30 s deadline.
        let pre = SlowPreStop { duration: 20 * SECOND, ran: RefCell::new(None), start: Instant::now() };
        let mut plan = plan_with(Some(&pre), Duration::ZERO, stop_plan(true, None));
        plan.fit(30 * SECOND).unwrap();
        assert_eq!(plan.stop.unwrap().wait, 9 * SECOND);
    }
}
