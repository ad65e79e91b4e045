#!/usr/bin/env python3
"""Measure how promptly gracestop and two common peers notice that a target has exited.

A. Return latency after the target's exit. The harness starts a small Python target that
   installs a SIGTERM handler and then creates a readiness file (the handshake; nothing
   sleeps to synchronise). On SIGTERM the target "cleans up" for a random 50-400 ms, so its
   exit never coincides with the signal, writes time.monotonic_ns() to a pre-opened file
   and calls os._exit(0). A dedicated reaper thread in the harness sits in wait() on the
   target so it never lingers as a zombie (start-stop-daemon and `kill -0` count a zombie
   as alive). The stopper runs as a subprocess; the harness notes time.monotonic_ns() the
   moment its wait() returns. CLOCK_MONOTONIC is system-wide on Linux, so
       latency = stopper_return_ns - target_reaped_ns   (and, second view, - target_exit_ns).
   The stoppers run interleaved round-robin, together with a reference that merely spawns
   and reaps /bin/true (the harness's own process overhead; reported, never subtracted).
   The verdict measures from the kernel's exit notification: the moment the reaper thread's
   wait() returns, which is the same event that makes a pidfd readable and wakes any
   stopper. A process has not exited while the kernel still tears down its memory (0.4-1 ms
   for a Python target here), and no stopper can see it earlier, so the stamp taken just
   before os._exit is shown as a second view, with that teardown as a reference row.

B. SIGKILL lateness of `gracestop stop --wait 2 --force`. The target notes the time SIGTERM
   arrived and keeps running; the reaper thread notes when the target died (it must die of
   signal 9). lateness = death_ns - term_ns - 2 s. Negative means killed before --wait.
   It includes the SIGKILL teardown, shown as a reference (harness SIGKILL -> reaped), and
   is slightly understated by the delay before the target's Python handler ran.

Safety: only processes this script started are signalled, through pidfds opened right after
spawning them (so a PID can never be recycled under us); every loop is bounded; all targets
are SIGKILLed in a finally; files live in a temporary directory.
"""
import argparse, itertools, json, os, platform, select, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SSD = "/usr/sbin/start-stop-daemon"
DEVNULL = subprocess.DEVNULL
WATCHDOG_S = 20  # no stopper run may take longer than this
LIVE = set()     # targets not yet known to be reaped (killed in the top-level finally)
SERIAL = itertools.count()  # unique readiness/stamp file names per target
EARLY_NS = 5_000_000  # a kill this much before --wait is an error, not handler delay
DELAY = (0.05, 0.4)  # a graceful target exits this many seconds (uniform) after SIGTERM

TARGET_SRC = r'''
import os, random, signal, sys, time
mode, ready, stamp = sys.argv[1:4]
lo, hi = (float(x) for x in sys.argv[4:6])
fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
def on_term(signum, frame):
    if mode == "graceful":
        time.sleep(random.uniform(lo, hi))  # cleanup: exit must not coincide with the signal
        os.write(fd, b"%d\n" % time.monotonic_ns())
        os._exit(0)
    os.write(fd, b"%d\n" % time.monotonic_ns())  # stubborn: note the signal, keep running
signal.signal(signal.SIGTERM, on_term)
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
for _ in range(120):  # bounded lifetime, should the harness ever lose track of us
    time.sleep(1)
os._exit(3)
'''


def spawn(argv):
    """Start argv with stdio detached; return (Popen, pidfd). The pidfd pins the process."""
    proc = subprocess.Popen(argv, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
    return proc, os.pidfd_open(proc.pid)


def pidfd_kill(pidfd):
    """SIGKILL through a pidfd; harmless if the process is already gone."""
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (ProcessLookupError, OSError):
        pass


class Target:
    """A target process plus the thread that notes the moment it exits.

    Normally the target is our child and the thread wait()s on it from the start, so it
    never lingers as a zombie. With `launcher` (an argv prefix such as GNU `timeout -k 2s
    3600`), the launcher is our child and the target is the launcher's: once the target is
    ready, it is pinned by a pidfd (its parent checked) and the thread blocks in poll() on
    that pidfd, which the kernel makes readable at the same exit notification that wakes a
    parent's wait(). `reaped_ns` is that moment either way; `pid` is the target's PID.
    """

    def __init__(self, tmp, mode, delay=DELAY, launcher=None):
        n = next(SERIAL)
        self.ready, self.stamp = tmp / f"ready{n}", tmp / f"stamp{n}"
        # -I -S: no site packages or environment, so a small process with a quick teardown
        self.proc, self.pidfd = spawn(list(launcher or []) + [
            sys.executable, "-I", "-S", str(tmp / "target.py"), mode, str(self.ready),
            str(self.stamp), str(delay[0]), str(delay[1])])
        LIVE.add(self)
        self.launcher = launcher
        self.pid = None if launcher else self.proc.pid
        self.target_pidfd = None if launcher else self.pidfd
        self.reaped_ns = None
        self.thread = threading.Thread(target=self._reap if not launcher else self._watch,
                                       daemon=True)
        if not launcher:
            self.thread.start()

    def _reap(self):
        self.proc.wait()
        self.reaped_ns = time.monotonic_ns()

    def _watch(self):
        poller = select.poll()
        poller.register(self.target_pidfd, select.POLLIN)
        if poller.poll(WATCHDOG_S * 3 * 1000):  # bounded; the target's lifetime is too
            self.reaped_ns = time.monotonic_ns()

    def alive(self):
        """Whether the target may still run (its exit has not been noted yet)."""
        return self.thread.is_alive() or (self.launcher is not None and self.pid is None
                                          and self.proc.poll() is None)

    def wait_ready(self, limit_s=10.0):
        """Poll (bounded) for the readiness file the target creates once its handler is set."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self.alive():
            if self.ready.exists():
                if self.launcher:
                    self._pin(int(self.ready.read_text()))
                return
            time.sleep(0.001)
        raise RuntimeError(f"target {self.proc.pid} never became ready")

    def _pin(self, pid):
        """Pin the launcher's child by a pidfd, check its parent once pinned, start watching."""
        fd = os.pidfd_open(pid)
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rpartition(")")[2].split()[1])
        if ppid != self.proc.pid:
            os.close(fd)
            raise RuntimeError(f"PID {pid} is not a child of the launcher {self.proc.pid}")
        self.pid, self.target_pidfd = pid, fd
        self.thread.start()

    def stop_through_launcher(self, sig=signal.SIGTERM):
        """Signal the launcher (it forwards to the target) and wait for it, under a watchdog.

        Returns (the launcher's exit status, the moment its wait() returned in ns)."""
        dog = threading.Timer(WATCHDOG_S, pidfd_kill, (self.pidfd,))
        dog.start()
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
            rc = self.proc.wait()  # no timeout: Popen.wait(timeout) polls, blurring the timing
            return rc, time.monotonic_ns()
        finally:
            dog.cancel()

    def first_stamp(self):
        """The first monotonic_ns the target wrote, or None."""
        lines = self.stamp.read_text().split()
        return int(lines[0]) if lines else None

    def kill(self):
        """SIGKILL the target (and launcher) if they may still run, reap, release the pidfds."""
        if self.launcher:
            if self.target_pidfd is not None:
                pidfd_kill(self.target_pidfd)  # the target first: killing the launcher orphans it
                if self.thread.is_alive():
                    self.thread.join(5)
            if self.proc.poll() is None:
                pidfd_kill(self.pidfd)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is not None and not self.thread.is_alive():
                os.close(self.pidfd)
                if self.target_pidfd is not None:
                    os.close(self.target_pidfd)
                LIVE.discard(self)
            return
        if self.thread.is_alive():
            pidfd_kill(self.pidfd)
            self.thread.join(5)
        if not self.thread.is_alive():
            os.close(self.pidfd)
            LIVE.discard(self)


def run_stopper(argv):
    """Run a stopper to completion under a watchdog; return (exit code, return time ns)."""
    proc, pidfd = spawn(argv)
    dog = threading.Timer(WATCHDOG_S, pidfd_kill, (pidfd,))
    dog.start()
    try:
        rc = proc.wait()  # no timeout: Popen.wait(timeout) polls, which would blur the timing
        return rc, time.monotonic_ns()
    finally:
        dog.cancel()
        os.close(pidfd)


def run_a(tmp, argv_for, delay=DELAY, launcher=None):
    """One part-A run: stop a graceful target, return a record with latency_ns.

    argv_for(pid) is the stopper's command line; with launcher (argv_for is then None) the
    target runs under it and the stop is a SIGTERM to the launcher, which forwards it."""
    t = Target(tmp, "graceful", delay, launcher)
    try:
        t.wait_ready()
        if launcher:
            rc, ret_ns = t.stop_through_launcher()
            target_rc = None  # the launcher's child: its status is the launcher's to see
        else:
            rc, ret_ns = run_stopper(argv_for(t.pid))
        t.thread.join(5)
        if not launcher:
            target_rc = t.proc.returncode
        exit_ns = t.first_stamp()
        rec = dict(rc=rc, target_rc=target_rc, exit_ns=exit_ns, return_ns=ret_ns,
                   reaped_ns=t.reaped_ns, latency_ns=ret_ns - exit_ns if exit_ns else None)
        problems = [rc != 0 and f"stopper exited {rc}",
                    t.thread.is_alive() and "target still alive after stopper returned",
                    target_rc not in (None, 0) and f"target status {target_rc}",
                    t.reaped_ns is None and "the target's exit was not noted",
                    exit_ns is None and "target wrote no exit stamp",
                    exit_ns is not None and ret_ns < exit_ns and "returned before target exit"]
        rec["error"] = "; ".join(p for p in problems if p) or None
        return rec
    finally:
        t.kill()


def run_baseline():
    """Spawn and reap /bin/true: the harness's own process overhead, in ns."""
    t0 = time.monotonic_ns()
    subprocess.run(["/bin/true"], stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL, check=True)
    return dict(latency_ns=time.monotonic_ns() - t0, error=None)


def run_b(tmp, gracestop, launcher=None):
    """One part-B run: a target that ignores SIGTERM, `--wait 2 --force`; record lateness.

    With launcher (e.g. `timeout -k 2s 3600`; gracestop is then None) the target runs under
    it and gets SIGTERM through it; the launcher's kill-after must do the SIGKILL."""
    t = Target(tmp, "stubborn", launcher=launcher)
    try:
        t.wait_ready()
        if launcher:
            rc, _ = t.stop_through_launcher()
            ok_rc = (-9, 137)  # GNU timeout SIGKILLs its whole process group, itself included
        else:
            rc, _ = run_stopper([gracestop, "stop", "-q", "--pid", str(t.pid),
                                 "--wait", "2", "--force"])
            ok_rc = (0,)
        t.thread.join(5)
        term_ns = t.first_stamp()
        late = (t.reaped_ns - term_ns - 2_000_000_000) if term_ns and t.reaped_ns else None
        target_rc = None if launcher else t.proc.returncode
        problems = [rc not in ok_rc and f"stopper exited {rc}",
                    t.thread.is_alive() and "target still alive after the stopper returned",
                    target_rc not in (None, -9) and f"target status {target_rc}",
                    term_ns is None and "target saw no SIGTERM",
                    # the TERM stamp is taken in the target's handler, a little after the
                    # stopper started its clock: a slightly negative lateness is that delay
                    late is not None and late < -EARLY_NS and "killed BEFORE --wait elapsed"]
        return dict(rc=rc, target_rc=target_rc, term_ns=term_ns, death_ns=t.reaped_ns,
                    lateness_ns=late, error="; ".join(p for p in problems if p) or None)
    finally:
        t.kill()


def run_kill_floor(tmp):
    """Reference for B: SIGKILL a stubborn target from the harness; ns from kill to reaped."""
    t = Target(tmp, "stubborn")
    try:
        t.wait_ready()
        t0 = time.monotonic_ns()
        pidfd_kill(t.pidfd)
        t.thread.join(5)
        ok = t.proc.returncode == -9 and t.reaped_ns
        return dict(latency_ns=t.reaped_ns - t0 if ok else None,
                    error=None if ok else f"target status {t.proc.returncode}")
    finally:
        t.kill()


def interleave(counts):
    """Round-robin schedule spreading each kind's runs evenly over the session."""
    slots = [((k + 0.5) / n, i, name)
             for i, (name, n) in enumerate(counts.items()) for k in range(n)]
    return [name for _, _, name in sorted(slots)]


def stats(values_ns):
    """median, p90 (linear interpolation), min, max in ms."""
    v = sorted(x / 1e6 for x in values_ns)
    if not v:
        return None
    def q(p):
        i = p * (len(v) - 1)
        lo = int(i)
        return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (i - lo)
    return dict(n=len(v), median=q(0.5), p90=q(0.9), min=v[0], max=v[-1])


def row(label, s, ratio=""):
    """One table line: label, runs, median, p90, min, max (ms), optional ratio."""
    if s is None:
        return f"{label:<44} (no data)"
    return (f"{label:<44}{s['n']:>5}{s['median']:>10.3f}{s['p90']:>10.3f}"
            f"{s['min']:>10.3f}{s['max']:>10.3f}  {ratio}")


def stoppers(gs):
    """{name: argv_for(pid)}: each stopper's command line to stop PID pid with SIGTERM."""
    return {
        "gracestop": lambda p: [gs, "stop", "-q", "--pid", str(p), "--wait", "30"],
        "start-stop-daemon": lambda p: [SSD, "--stop", "--pid", str(p),
                                        "--retry", "TERM/30/KILL/5"],
        "catalina-style sh loop": lambda p: ["sh", "-c", f"kill -15 {p}; while kill -0 {p} "
                                             "2>/dev/null; do sleep 1; done"],
    }


def measure(gs, n):
    """Run parts A (interleaved) and B; return (part A records by kind, B, B floor, errors)."""
    stoppers_ = stoppers(gs)
    counts = {"gracestop": n, "start-stop-daemon": n,
              "catalina-style sh loop": max(1, round(n * 8 / 25)), "baseline": n}
    if not os.access(SSD, os.X_OK):
        print(f"warning: {SSD} missing, skipping it", file=sys.stderr)
        del counts["start-stop-daemon"]
    res = {k: [] for k in counts}
    res_b, floor, errors = [], [], []
    with tempfile.TemporaryDirectory(prefix="stop_latency.") as d:
        tmp = Path(d)
        (tmp / "target.py").write_text(TARGET_SRC)
        try:
            plan = interleave(counts)
            print(f"part A: {len(plan)} interleaved runs ...", file=sys.stderr)
            for name in plan:
                rec = run_baseline() if name == "baseline" else run_a(tmp, stoppers_[name])
                res[name].append(rec)
                if rec["error"]:
                    errors.append(f"A {name} run {len(res[name])}: {rec['error']}")
                if len(errors) >= 3:  # something is broken; do not grind on
                    return res, res_b, floor, errors
            kill_runs = max(1, round(n * 10 / 25))
            print(f"part B: {kill_runs} runs of --wait 2 --force ...", file=sys.stderr)
            for i in range(kill_runs):
                res_b.append(run_b(tmp, gs))
                floor.append(run_kill_floor(tmp))
                for kind, rec in (("B", res_b[-1]), ("B reference", floor[-1])):
                    if rec["error"]:
                        errors.append(f"{kind} run {i + 1}: {rec['error']}")
        finally:
            for t in list(LIVE):
                t.kill()
    return res, res_b, floor, errors


def report(res, res_b, floor, errors):
    """Print the tables and the verdict; return the summaries (for --json)."""
    ok = lambda recs, key: [r[key] for r in recs if not r["error"] and r[key] is not None]
    stoppers = [k for k in res if k != "baseline"]
    summ = {k: stats(ok(v, "latency_ns")) for k, v in res.items()}
    reap_lag = stats([r["reaped_ns"] - r["exit_ns"] for k in stoppers
                      for r in res[k] if not r["error"]])
    since_reap = {k: stats([r["return_ns"] - r["reaped_ns"] for r in res[k] if not r["error"]])
                  for k in stoppers}
    # every measured lateness counts, early kills included (they are also listed as errors)
    summ_b = stats([r["lateness_ns"] for r in res_b if r["lateness_ns"] is not None])
    summ_floor = stats(ok(floor, "latency_ns"))
    gmed = summ["gracestop"]["median"] if summ["gracestop"] else None
    hdr = f"{'':<44}{'runs':>5}{'median':>10}{'p90':>10}{'min':>10}{'max':>10}"
    print(f"gracestop stop latency benchmark  ({platform.system()} {platform.release()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()})\n")
    print("A. Return latency after the target's exit (ms), from the kernel's exit notification")
    print("   (the harness's reaper wakes on the same event that wakes a pidfd waiter)")
    print(hdr + "  vs gracestop")
    rmed = since_reap["gracestop"]["median"] if since_reap["gracestop"] else None
    for name in stoppers:
        s = since_reap[name]
        r = s["median"] / rmed if s and rmed and name != "gracestop" else None
        ratio = "" if r is None else f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"
        print(row(name, s, ratio))
    print("the same runs, from the target's last instruction (a stamp taken just before _exit):")
    for name in stoppers:
        print(row(f"  {name}", summ[name]))
    print("reference, not subtracted:")
    print(row("  target's own teardown: stamp -> reaped", reap_lag))
    print(row("  spawn+reap /bin/true from the harness", summ["baseline"]))
    print("\nB. SIGKILL lateness after --wait 2s --force (ms past the 2 s deadline)")
    print(hdr)
    print(row("gracestop --wait 2 --force", summ_b))
    print(row("  reference: harness SIGKILL -> reaped", summ_floor))
    print("\nVerdict")
    for label, s, limit in (("gracestop median return latency after the exit", since_reap["gracestop"], 1.0),
                            ("gracestop median SIGKILL lateness", summ_b, 2.0)):
        val = f"{s['median']:.3f} ms" if s else "no data"
        print(f"  {'PASS' if s and s['median'] <= limit else 'FAIL'}  {label}: {val}"
              f" (threshold <= {limit:g} ms)")
    for e in errors:
        print(f"  ERROR {e}")
    return dict(part_a=summ, reap_lag=reap_lag, since_reap=since_reap, part_b=summ_b,
                kill_floor=summ_floor)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=25, help="runs per fast stopper (default 25)")
    ap.add_argument("--json", metavar="FILE", help="write raw numbers here")
    ap.add_argument("--gracestop", default=str(REPO / "target/release/gracestop"))
    args = ap.parse_args()
    gs = os.path.abspath(args.gracestop)
    if not os.access(gs, os.X_OK):
        print(f"gracestop binary not found at {gs}\nbuild it with:\n"
              f"    cd {REPO} && cargo build --release", file=sys.stderr)
        return 2
    res, res_b, floor, errors = measure(gs, max(1, args.runs))
    summary = report(res, res_b, floor, errors)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(
            kernel=platform.release(), python=platform.python_version(), gracestop=gs,
            cpus=os.cpu_count(), part_a=res, part_b=res_b, kill_floor=floor,
            summary_ms=summary, errors=errors), indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
