#!/usr/bin/env python3
"""Measure what `gracestop run` costs as a supervisor, side by side with tini, dumb-init, catatonit.

1. Idle wakeups. Each supervisor runs `sleep 1000`, all at once. Readiness is a
   handshake: a process named `sleep` must appear in /proc as the supervisor's child; then
   0.5 s to settle. Voluntary + nonvoluntary context switches, summed over
   /proc/PID/task/*/status, are read before and after the idle window (10 s): each wakeup
   of an idle supervisor is a context switch.
2. Resident memory: VmRSS of the supervisor in that state (MB = 1024 kB; /proc's kB are
   KiB). Pss (shared pages divided) and the file-backed part (mapped code) are shown too.
3. Signal-forwarding latency. A small child (`python3 -I -S`) installs a SIGUSR1 handler
   that os.write()s time.monotonic_ns() to a FIFO opened at start, then writes "ready PID"
   to it (the readiness handshake). The harness notes time.monotonic_ns() right before it
   sends SIGUSR1 to the supervisor through a pidfd and blocks, bounded, in poll() on the
   FIFO for the stamp: latency = stamp - send (CLOCK_MONOTONIC is system-wide). The same
   child run and signalled directly is the baseline: overhead = median(sup) - median(direct).
   Configurations take turns round-robin (the order rotates each round); a signal is sent
   only after the previous stamp arrived and a short pause (--pause-ms, default 2). Python's
   signal handling delays every configuration alike, so it cancels out of the overhead.
4. Start-up overhead: os.posix_spawn + os.waitpid of `SUPERVISOR /bin/true` against bare
   /bin/true, interleaved, timed with time.monotonic_ns around spawn+wait.

Caveats: context switches of threads that exit inside the window are lost (a changed thread
count is flagged). A forwarded signal needs two wakeups (supervisor, child) against one;
after the pause the CPUs are idle, so each wakeup pays the exit from idle and cold caches,
which a real supervisor pays too. With --pause-ms 0 (CPUs busy, caches warm) every
supervisor adds only a few µs. Shared or virtualised hosts are noisy: compare columns.

Safety: only processes this script started are signalled, through pidfds opened right after
spawning them; the supervisors' children are pinned the same way once checked to be their
children. Start-up runs stay our unreaped children until waited for, so their PIDs cannot be
recycled. Every loop is bounded, a SIGALRM watchdog bounds the whole run, and everything is
SIGKILLed and reaped in a finally. Files live in a temporary directory; no network is used.
"""
import argparse, json, os, platform, select, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUPERVISORS = ("gracestop", "tini", "dumb-init", "catatonit")
TARGETS = dict(wakeups=0, rss_mb=3.0, fwd_overhead_us=30.0, start_overhead_ms=1.5)
PROCS, PINNED = [], []  # Popen objects to reap; pidfds (children first) to SIGKILL at the end

CHILD_SRC = r'''
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)  # the harness holds the read end open already
signal.signal(signal.SIGUSR1, lambda s, f: os.write(fd, b"%d\n" % time.monotonic_ns()))
os.write(fd, b"ready %d\n" % os.getpid())
for _ in range(600):  # bounded lifetime, should the harness ever lose track of us
    time.sleep(1)
'''


class Watchdog(Exception):
    """Raised by SIGALRM when the whole benchmark overruns its time budget."""


def prefix_for(name, path):
    """The argv prefix that runs a command under supervisor `name` (binary at path).

    Each in its documented form for supervising one command: gracestop quiet (its default
    is an event log on stderr), tini as a subreaper (as it warns to be, when not PID 1)."""
    return {"gracestop": [path, "-q", "run", "--"], "tini": [path, "-s", "--"],
            "dumb-init": [path], "catatonit": [path, "--"]}[name.split("-static")[0]]


def status(pid):
    """/proc/PID/status (or a PID/task/TID path) as a dict of stripped strings."""
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}


def spawn(argv):
    """Start argv with stdio on /dev/null; pin it with a pidfd; return (Popen, pidfd)."""
    dn = subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdin=dn, stdout=dn, stderr=dn)
    PROCS.append(proc)
    PINNED.append(os.pidfd_open(proc.pid))
    return proc, PINNED[-1]


def pin_child(parent, pid):
    """Pin pid with a pidfd, after checking (once pinned) that it is a child of parent."""
    fd = os.pidfd_open(pid)
    if status(pid).get("PPid") != str(parent):
        os.close(fd)
        raise RuntimeError(f"PID {pid} is not a child of {parent}")
    PINNED.insert(0, fd)  # killed before the supervisors, which would orphan it


def kill_all():
    """SIGKILL every pinned process (children first), reap our own children, close pidfds."""
    for fd in PINNED:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass  # already gone
    for proc in PROCS:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            print(f"warning: PID {proc.pid} was not reaped", file=sys.stderr)
    for fd in PINNED:
        os.close(fd)
    PROCS.clear()
    PINNED.clear()


def sleep_child(proc, limit_s=10.0):
    """Wait (bounded, 5 ms polls of /proc) until proc has a child named `sleep`; its PID."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and proc.poll() is None:
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                st = status(entry)
            except OSError:
                continue
            if st.get("PPid") == str(proc.pid) and st.get("Name") == "sleep":
                return int(entry)
        time.sleep(0.005)
    raise RuntimeError(f"{proc.args[0]} (status {proc.poll()}) never started sleep")


def ctx_switches(pid):
    """(voluntary + nonvoluntary context switches summed over all threads, thread count)."""
    total, tasks = 0, os.listdir(f"/proc/{pid}/task")
    for tid in tasks:
        st = status(f"{pid}/task/{tid}")
        total += int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"])
    return total, len(tasks)


def measure_idle(argv_for, names, idle_s):
    """Figures 1 and 2, all supervisors over `sleep 1000` at once: {name: figures}."""
    procs = {n: spawn(argv_for(n, [shutil.which("sleep"), "1000"]))[0] for n in names}
    for p in procs.values():
        pin_child(p.pid, sleep_child(p))
    time.sleep(0.5)  # settle
    before = {n: ctx_switches(p.pid) for n, p in procs.items()}
    time.sleep(idle_s)
    out = {}
    for n, p in procs.items():
        (c1, t1), (c0, t0) = ctx_switches(p.pid), before[n]
        st = status(p.pid)
        with open(f"/proc/{p.pid}/smaps_rollup") as f:
            pss = next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        kb = lambda key: int(st[key].split()[0])
        out[n] = dict(wakeups=c1 - c0, threads=t1, threads_changed=t0 != t1,
                      rss_mb=kb("VmRSS") / 1024, pss_mb=pss / 1024,
                      rss_file_mb=kb("RssFile") / 1024, rss_anon_mb=kb("RssAnon") / 1024)
    kill_all()
    return out


class Fifo:
    """The read end of a FIFO a child writes lines to; lines are read with a bounded poll."""

    def __init__(self, path):
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.poll, self.buf = select.poll(), b""
        self.poll.register(self.fd, select.POLLIN)

    def line(self, limit_s):
        """The next line; TimeoutError after limit_s, RuntimeError if the writer is gone."""
        deadline = time.monotonic() + limit_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {limit_s:g} s")
            if self.poll.poll(left * 1000):
                data = os.read(self.fd, 4096)
                if not data:
                    raise RuntimeError("the child closed its FIFO (did it die?)")
                self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


def rounds(names, n):
    """n round-robin rounds over names, the order rotated by one every round."""
    for i in range(n):
        k = i % len(names)
        yield i, names[k:] + names[:k]


def measure_signals(argv_for, names, tmp, n, pause_s, errors):
    """Figure 3: SIGUSR1 sent -> the child's stamp, {configuration: [ns]}."""
    (tmp / "child.py").write_text(CHILD_SRC)
    configs = {}
    for name in ("direct",) + names:
        fifo = Fifo(tmp / f"fifo-{name}")
        proc, pidfd = spawn(argv_for(name, [sys.executable, "-I", "-S", str(tmp / "child.py"),
                                            str(tmp / f"fifo-{name}")]))
        word, _, pid = fifo.line(10).partition(" ")
        if word != "ready":
            raise RuntimeError(f"{name}: unexpected handshake {word!r}")
        if name != "direct":
            pin_child(proc.pid, int(pid))
        configs[name] = (fifo, pidfd)
    lat = {name: [] for name in configs}
    for i, order in rounds(list(configs), n):
        for name in order:
            fifo, pidfd = configs[name]
            time.sleep(pause_s)
            t0 = time.monotonic_ns()
            signal.pidfd_send_signal(pidfd, signal.SIGUSR1)
            try:
                stamp = int(fifo.line(2))
                while stamp < t0:  # a late stamp of an earlier, timed-out signal
                    stamp = int(fifo.line(2))
                lat[name].append(stamp - t0)
            except TimeoutError:
                errors.append(f"signal {i + 1} to {name}: no stamp within 2 s")
                if len(errors) >= 3:
                    raise RuntimeError("too many lost signals")
    kill_all()
    for fifo, _ in configs.values():
        os.close(fifo.fd)
    return lat


def measure_startup(argv_for, names, n, errors):
    """Figure 4: spawn+wait of `SUPERVISOR /bin/true` and of bare /bin/true, ns per run."""
    runs = {name: [] for name in ("direct",) + names}
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
    pid = None
    try:
        for _, order in rounds(list(runs), n):
            for name in order:
                argv = argv_for(name, ["/bin/true"])
                t0 = time.monotonic_ns()
                pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
                _, wstatus = os.waitpid(pid, 0)
                t1, pid = time.monotonic_ns(), None
                if os.waitstatus_to_exitcode(wstatus) != 0:
                    errors.append(f"{' '.join(argv)}: exit status {wstatus}")
                    raise RuntimeError("a start-up run failed")
                runs[name].append(t1 - t0)
    finally:
        if pid is not None:  # interrupted in waitpid: our unreaped child, so the PID is safe
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(devnull)
    return runs


def summary(values_ns, unit):
    """n, median and p90 of ns values, in unit (1e3 = µs, 1e6 = ms); None if empty."""
    v = [x / unit for x in values_ns]
    if not v:
        return None
    return dict(n=len(v), median=statistics.median(v),
                p90=statistics.quantiles(v, n=10)[-1] if len(v) > 1 else v[0])


def report(idle_s, idle, lat, start, errors):
    """Print the side-by-side table, comparisons and verdict; return the summaries."""
    fwd = {k: summary(v, 1e3) for k, v in lat.items()}
    sup = {k: summary(v, 1e6) for k, v in start.items()}
    fig = {n: dict(idle.get(n, {})) for n in SUPERVISORS}
    for n in SUPERVISORS:
        for key, s in (("fwd_overhead_us", fwd), ("start_overhead_ms", sup)):
            if s.get(n) and s.get("direct"):
                fig[n][key] = s[n]["median"] - s["direct"]["median"]

    def line(label, get, fmt):
        cells = []
        for n in SUPERVISORS:
            try:
                cells.append(format(get(n), fmt))
            except (KeyError, TypeError):
                cells.append("n/a")
        print(f"{label:<44}" + "".join(f"{c:>12}" for c in cells))

    print(f"gracestop run overhead benchmark  ({platform.system()} {platform.release()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()})\n")
    print(f"{'':<44}" + "".join(f"{n:>12}" for n in SUPERVISORS))
    line(f"1. idle wakeups in {idle_s} s (context switches)", lambda n: fig[n]["wakeups"], "d")
    line("   threads", lambda n: fig[n]["threads"], "d")
    line("2. VmRSS supervising sleep (MB)", lambda n: fig[n]["rss_mb"], ".2f")
    line("   of which file-backed: code, libc (MB)", lambda n: fig[n]["rss_file_mb"], ".2f")
    line("   Pss (MB)", lambda n: fig[n]["pss_mb"], ".2f")
    line("3. signal forwarding latency, median (µs)", lambda n: fwd[n]["median"], ".1f")
    line("   p90 (µs)", lambda n: fwd[n]["p90"], ".1f")
    line("   overhead over direct delivery (µs)", lambda n: fig[n]["fwd_overhead_us"], "+.1f")
    line("4. start-up `SUP /bin/true`, median (ms)", lambda n: sup[n]["median"], ".3f")
    line("   p90 (ms)", lambda n: sup[n]["p90"], ".3f")
    line("   overhead over bare /bin/true (ms)", lambda n: fig[n]["start_overhead_ms"], "+.3f")
    for s, what, unit, f in ((fwd, "direct delivery", "µs", ".1f"),
                             (sup, "bare /bin/true", "ms", ".3f")):
        if s.get("direct"):
            d = s["direct"]
            print(f"reference: {what} median {d['median']:{f}} {unit}, p90 {d['p90']:{f}} {unit}"
                  f" (n={d['n']} per configuration)")
    if any(f.get("threads_changed") for f in fig.values()):
        print("note: a thread count changed in the idle window; its wakeups may be undercounted")

    print("\ngracestop against its peers (difference, ratio)")
    for key, label, unit in (("wakeups", "idle wakeups", ""), ("rss_mb", "VmRSS", " MB"),
                             ("fwd_overhead_us", "forwarding overhead", " µs"),
                             ("start_overhead_ms", "start-up overhead", " ms")):
        parts = []
        for peer in SUPERVISORS[1:]:
            g, p = fig["gracestop"].get(key), fig[peer].get(key)
            ratio = f", {g / p:.1f}x" if g and p and g > 0 and p > 0 else ""
            parts.append(f"vs {peer} n/a" if g is None or p is None
                         else f"vs {peer} {g - p:+.3g}{unit}{ratio}")
        print(f"  {label:<20} " + "; ".join(parts))

    print("\nVerdict (gracestop)")
    for key, label, fmt in (("wakeups", f"idle wakeups = 0 (in {idle_s} s)", "{}"),
                            ("rss_mb", "VmRSS <= 3 MB", "{:.2f} MB"),
                            ("fwd_overhead_us", "forwarding overhead <= 30 µs", "{:+.1f} µs"),
                            ("start_overhead_ms", "start-up overhead <= 1.5 ms", "{:+.3f} ms")):
        v = fig["gracestop"].get(key)
        verdict = "n/a " if v is None else "PASS" if v <= TARGETS[key] else "FAIL"
        print(f"  {verdict}  {label}: {'no data' if v is None else fmt.format(v)}")
    for e in errors:
        print(f"  ERROR {e}")
    return dict(figures=fig, forwarding_us=fwd, startup_ms=sup)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write raw numbers here")
    ap.add_argument("--quick", action="store_true", help="smoke test: fewer runs, 3 s idle")
    ap.add_argument("--pause-ms", type=float, default=2.0, help="pause before each signal")
    ap.add_argument("--gracestop", default=str(REPO / "target/release/gracestop"))
    args = ap.parse_args()
    gs = os.path.abspath(args.gracestop)
    if not os.access(gs, os.X_OK):
        print(f"gracestop binary not found at {gs}\nbuild it with:\n"
              f"    cd {REPO} && cargo build --release", file=sys.stderr)
        return 2
    paths = {"gracestop": gs, **{n: shutil.which(n) for n in SUPERVISORS[1:]}}
    missing = [n for n, p in paths.items() if not p]
    if missing:
        print(f"warning: {', '.join(missing)} not found, reported as n/a; install with:\n"
              f"    apt-get update && apt-get install -y {' '.join(missing)}", file=sys.stderr)
    names = tuple(n for n in SUPERVISORS if paths[n])
    prefix = {n: prefix_for(n, paths[n]) for n in names}
    prefix["direct"] = []
    argv_for = lambda name, cmd: prefix[name] + cmd
    idle_s, n_sig, n_start = (3, 30, 30) if args.quick else (10, 200, 200)
    pause_s = max(0.0, args.pause_ms) / 1000
    idle, lat, start, errors = {}, {}, {}, []

    def on_alarm(signum, frame):
        raise Watchdog("the benchmark overran its time budget")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(idle_s + 120 + int(n_sig * 4 * pause_s))
    try:
        with tempfile.TemporaryDirectory(prefix="run_overhead.") as d:
            print(f"1+2: idle window of {idle_s} s ...", file=sys.stderr)
            idle = measure_idle(argv_for, names, idle_s)
            print(f"3: {n_sig} signals per configuration ...", file=sys.stderr)
            lat = measure_signals(argv_for, names, Path(d), n_sig, pause_s, errors)
            print(f"4: {n_start} start-ups per configuration ...", file=sys.stderr)
            start = measure_startup(argv_for, names, n_start, errors)
    except (Watchdog, RuntimeError, OSError) as e:
        errors.append(f"aborted: {type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        kill_all()
    summ = report(idle_s, idle, lat, start, errors)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(
            kernel=platform.release(), python=platform.python_version(), cpus=os.cpu_count(),
            paths=paths, idle_s=idle_s, pause_ms=args.pause_ms, idle=idle,
            signal_latency_ns=lat, startup_ns=start, summary=summ, errors=errors), indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
