//! Precise sleeps from a timerfd.
//!
//! tokio's timer has millisecond ticks and rounds every deadline up to the next
//! one, and `epoll_wait` rounds its timeout up again: a `--wait 2s` would end up
//! to ~2 ms late. A timerfd expires with the kernel's timer slack (50 µs) and
//! wakes the same reactor, so escalation comes on time.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A timerfd that tokio can register (nix's TimerFd only implements AsFd).
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn arm(duration: Duration) -> std::io::Result<AsyncFd<Timer>> {
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
    timer.set(Expiration::OneShot(TimeSpec::from_duration(duration)), TimerSetTimeFlags::empty())?;
    let timer = Timer(timer);
    // SAFETY: the TimerFd moves into the AsyncFd and keeps its descriptor open,
    // unchanged, until the AsyncFd drops.
    Ok(unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }?)
}

/// Sleeps for `duration` on a timerfd; falls back to tokio's timer if the kernel
/// refuses one. Cancel-safe: dropping the future disarms the timer.
pub async fn sleep(duration: Duration) {
    if duration.is_zero() {
        return;
    }
    match arm(duration) {
        Ok(timer) => {
            let _ = timer.readable().await;
        }
        Err(_) => tokio::time::sleep(duration).await,
    }
}
