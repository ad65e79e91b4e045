//! gracestop's end-to-end suite: real third-party software on 127.0.0.1, driven
//! by stdlib Python harnesses that stop every process they start by PID or pidfd.
//! `lb`: HAProxy and JVM backends under load, and a kubelet's order; `web`: nginx
//! and Debian's Tomcat 10.
//!
//! A separate test binary, so that these scenarios run after the integration tests
//! rather than beside them, and one at a time (`one_at_a_time`): each is timed or
//! loaded, and two at once on a small machine would share two cores and each
//! other's timing.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

mod lb;
mod web;

static ONE_SCENARIO: Mutex<()> = Mutex::new(());

/// Held for the whole of a scenario. A failed case poisons the lock; the next case
/// must still run on its own merits.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_SCENARIO.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// python3 from `PATH`, else Debian's.
fn python() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
}
