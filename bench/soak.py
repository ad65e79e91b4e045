#!/usr/bin/env python3
"""Soak gracestop: long runs must leave nothing behind and grow nothing (issue 7, point 9).

Each claim is checked so that a build that breaks it fails here:

1a. Run cycles. N sequential `gracestop run -q -- bash -c CHILD MARKER K PIDS`: the child
    starts a double-forked orphan (it reparents straight to gracestop, the subreaper) and a
    plain background child (orphaned when the child exits), both `sleep 30` renamed with
    `exec -a` so that their command line names this run's directory, writes their PIDs, and
    exits with K (a different code every cycle). Every cycle must exit with K, and once it
    has, both orphans must be gone: neither alive nor a zombie. Afterwards no process
    mentioning the directory may live and no child of this script may be a zombie.
1b. One long run, where growth could actually accumulate: ONE `gracestop run` supervising a
    bash child that runs W warm-up cycles, then N cycles, each spawning an orphan that exits
    at once, an orphan that outlives its parent by 10 ms, and a waited-for child, while this
    script sends gracestop USR1 and HUP (which the child traps and counts) every ~0.5 ms.
    Handshakes, never sleeps: the child creates `started`, `warm` and `done` files and waits
    on a FIFO for the harness between phases. gracestop's descriptors (/proc/PID/fd) and
    VmRSS / RssAnon (/proc/PID/status) are read after the warm-up and after the N cycles,
    with the child idle both times: descriptors must be equal and each RSS figure may grow
    by at most 64 KiB (the warm-up includes forwarded signals, so the code they run is
    resident already: gracestop drops its start-up code pages once the child runs). Before
    the second reading gracestop must settle, within 5 s, to one child (the bash): any other
    child, live or zombie, is reported. Exit status must be the child's 3.
2.  Stop cycles. N sequential `gracestop stop -q --pid P --wait 10` on fresh sh targets that
    trap TERM, create a `term` file and hold on until the harness creates `ack`: while
    gracestop waits for the exit its descriptors, VmRSS and VmHWM (peak RSS) are read, once
    it sleeps in epoll_wait (/proc/PID/syscall): the wait phase, its timer armed. Every cycle
    must exit 0, the target must exit 0 (reaped here: we are its parent), the descriptor
    count must be the same in every cycle, and VmHWM of the last K cycles may exceed that
    of the first K by at most 64 KiB (the lowest of each K = min(100, N/2)). gracestop runs
    with address-space randomisation off (`setarch -R`, where the kernel allows it): with
    it on, VmHWM of identical runs here spreads over 250 kB (3472-3728 kB) with the layout;
    off, over 8 kB. Randomised, the minimum of K runs still lands within a few kB of the
    floor. (Not ru_maxrss from wait4: exec folds the spawning process's own peak into it,
    so it would show this script's ~17 MB, not gracestop.)
3.  Signal burst. `gracestop run -q -- sh -c CHILD`: the child traps USR1 (counts it, nothing
    else) and exits 7 on USR2. After its ready file, S SIGUSR1 are sent to gracestop as fast
    as one thread can, then one SIGUSR2: gracestop must exit 7, so the status was not lost
    and forwarding still worked after the burst. The burst's duration is shown.
4.  200 targets. T processes `sh -c 'trap "" TERM; exec sleep 300'` (SIG_IGN survives exec;
    ready once /proc says `sleep` with TERM in SigIgn) are stopped by ONE `gracestop stop -q
    --pid ... --wait 1 --force`; one such target alone is stopped the same way, in the same
    round, R rounds. Every target must die of SIGKILL. The bound is the integration test's:
    the 200-target call under 3x the one-target call plus 1 s; the real ratio is shown.

Counts default to the full ones (1000 run cycles, 1000 long-run cycles, 1000 stop cycles,
100,000 signals, 200 targets); the integration test `soak::` runs reduced ones in CI.

Safety: only processes this script started are signalled, through pidfds opened right after
spawning them (their PIDs cannot be recycled under us: they stay our unreaped children);
leftovers of a failed check are found by the unique temporary directory in their command
line, pinned with a pidfd, checked again, then killed. Every loop is bounded in count and
time, a SIGALRM watchdog bounds the whole run, and everything is SIGKILLed and reaped in a
finally. No network is used.
"""
import argparse, json, os, platform, select, signal, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RSS_TOLERANCE_KB = 64
LIVE = {}  # pid -> (pidfd, own process group) of every process we started and not yet reaped

RUN_CHILD = r'''
(exec -a "$0 orphan" sleep 30 & echo $! > "$2")
exec -a "$0 lingering" sleep 30 &
echo $! >> "$2"
exit "$1"
'''

LONG_CHILD = r'''
d=$1 warm=$2 n=$3 u=0 h=0
mkfifo "$d/ctl" && exec 3<>"$d/ctl" || exit 96
trap 'u=$((u + 1))' USR1
trap 'h=$((h + 1))' HUP
cycle() {
    (true &)                              # an orphan that exits at once
    (exec -a "$0 orphan" sleep 0.01 &)    # an orphan that outlives its parent, then exits
    /bin/true                             # a child of our own, waited for
}
await() {  # a line from the harness; a trapped signal interrupts read: retry, 60 s at most
    local limit=$((SECONDS + 60))
    until read -r -t 1 -u 3 _; do [ "$SECONDS" -lt "$limit" ] || exit 98; done
}
echo $$ > "$d/started"
for ((i = 0; i < warm; i++)); do cycle; done
: > "$d/warm"
await
for ((i = 0; i < n; i++)); do cycle; done
echo "$u $h" > "$d/counts"
: > "$d/done"
await
exit 3
'''

STOP_TARGET = r'''
d=$1 i=$2
trap 'touch "$d/term$i"; k=0
      while [ ! -e "$d/ack$i" ] && [ $k -lt 1000 ]; do sleep 0.005; k=$((k + 1)); done
      kill $! 2>/dev/null; exit 0' TERM
sleep 60 &
touch "$d/ready$i"
wait
exit 99
'''

BURST_CHILD = r'''
d=$1 n=0
trap 'n=$((n + 1))' USR1
trap 'echo "$n" > "$d/burst-count"; kill $! 2>/dev/null; exit 7' USR2
(trap '' USR1 USR2; exec sleep 120) &   # forwarded signals reach the whole group
touch "$d/burst-ready"
while kill -0 $! 2>/dev/null; do wait $!; done
exit 99
'''

STUBBORN = 'trap "" TERM; exec sleep 300'


class Watchdog(Exception):
    """Raised by SIGALRM when the whole benchmark overruns its time budget."""


class Failed(Exception):
    """A check failed in a way that makes the rest of its part meaningless."""


def spawn(argv, stderr=None, own_group=False):
    """posix_spawnp argv (stdio on /dev/null, stderr to a file if given); pin it; its PID."""
    null = os.open(os.devnull, os.O_RDWR)
    err = (os.POSIX_SPAWN_OPEN, 2, str(stderr), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) \
        if stderr else (os.POSIX_SPAWN_DUP2, null, 2)
    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), err]
    group = dict(setpgroup=0) if own_group else {}
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                              setsigdef=(signal.SIGPIPE,), **group)
    finally:
        os.close(null)
    LIVE[pid] = (os.pidfd_open(pid), own_group)
    return pid


def reap(pid, limit_s):
    """Wait (bounded) for our child; (exit code, or -N for signal N,), or None."""
    pidfd, _ = LIVE[pid]
    poll = select.poll()
    poll.register(pidfd, select.POLLIN)
    if not poll.poll(limit_s * 1000):
        return None
    _, wstatus = os.waitpid(pid, 0)
    os.close(pidfd)
    del LIVE[pid]
    return (os.waitstatus_to_exitcode(wstatus),)


def send(pid, sig):
    """Signal our own child through its pidfd."""
    signal.pidfd_send_signal(LIVE[pid][0], sig)


def kill_all(marker):
    """SIGKILL (groups first) and reap everything we started, then leftovers naming marker."""
    for pid, (pidfd, group) in LIVE.items():
        try:
            if group:
                os.killpg(pid, signal.SIGKILL)  # the unreaped leader keeps the group id ours
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass  # already gone
    for pid in list(LIVE):
        if reap(pid, 5) is None:
            print(f"warning: PID {pid} was not reaped", file=sys.stderr)
    for pid in mentioning(marker):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if marker.encode() in cmdline(pid):  # still the process we found, now pinned
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)


def stat(pid):
    """(state letter, ppid) from /proc/PID/stat, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()  # comm may hold spaces and parentheses
    return fields[0].decode(), int(fields[1])


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def all_pids():
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def children(parent):
    """[(pid, state)] of every process whose parent is `parent`, zombies included."""
    out = []
    for pid in all_pids():
        st = stat(pid)
        if st and st[1] == parent:
            out.append((pid, st[0]))
    return sorted(out)


def mentioning(marker):
    """Live (non-zombie) processes whose command line contains marker."""
    out = []
    for pid in all_pids():
        st = stat(pid)
        if st and st[0] != "Z" and marker.encode() in cmdline(pid):
            out.append(pid)
    return out


def fds(pid):
    """{fd: what it points to} of a live process."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            out[int(fd)] = "?"
    return out


def mem(pid):
    """VmRSS, RssAnon, RssFile, VmHWM of a live process, in kB (KiB)."""
    with open(f"/proc/{pid}/status") as f:
        st = {k: v.split() for k, _, v in (line.partition(":") for line in f)}
    return {k: int(st[k][0]) for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}


EPOLL_WAITS = {232, 281, 441}  # x86_64 epoll_wait, epoll_pwait, epoll_pwait2


def blocked(pid):
    """Whether pid sleeps in epoll_wait: tokio's reactor with nothing to do but wait.

    Where /proc/PID/syscall cannot be read, asleep now and 20 ms later counts."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            number = f.read().split()[0]
        return (stat(pid) or ("?",))[0] == "S" and number.isdigit() and int(number) in EPOLL_WAITS
    except (OSError, IndexError):
        pass
    if (stat(pid) or ("?",))[0] != "S":
        return False
    time.sleep(0.02)
    return (stat(pid) or ("?",))[0] == "S"


def wait_for(what, test, limit_s, alive=None):
    """Poll (1 ms, bounded) until test() holds; Failed if limit_s passes or `alive` exits."""
    deadline = time.monotonic() + limit_s
    while not test():
        if time.monotonic() > deadline:
            raise Failed(f"no {what} within {limit_s:g} s")
        if alive is not None and (stat(alive) or ("Z",))[0] == "Z":
            raise Failed(f"no {what}: PID {alive} exited first")
        time.sleep(0.001)


def tail(path, n=400):
    try:
        return Path(path).read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


def run_cycles(gs, tmp, n, errors):
    """Part 1a."""
    marker, pids, err = str(tmp / "cycle"), tmp / "cycle-pids", tmp / "cycle.err"
    res = dict(cycles=0, wrong_status=0, leftovers=0, ms=[])
    for i in range(n):
        code = (i * 37 + 1) % 256
        pids.unlink(missing_ok=True)
        t0 = time.monotonic_ns()
        pid = spawn([gs, "run", "-q", "--", "bash", "-c", RUN_CHILD, marker, str(code), str(pids)],
                    stderr=err)
        r = reap(pid, 30)
        if r is None:
            raise Failed(f"run cycle {i + 1}: gracestop still runs after 30 s")
        res["ms"].append((time.monotonic_ns() - t0) / 1e6)
        res["cycles"] += 1
        rc = r[0]
        if rc != code:
            res["wrong_status"] += 1
            errors.append(f"run cycle {i + 1}: exit {rc}, expected {code}: {tail(err)}")
        orphans = [int(x) for x in pids.read_text().split()] if pids.exists() else []
        if len(orphans) != 2:
            errors.append(f"run cycle {i + 1}: the child recorded {orphans}, not two orphans")
        for o in orphans:
            st = stat(o)
            if st and (st[0] == "Z" or marker.encode() in cmdline(o)):
                res["leftovers"] += 1
                errors.append(f"run cycle {i + 1}: orphan {o} {'zombie' if st[0] == 'Z' else 'alive'}"
                              " after gracestop exited")
        if len(errors) >= 5:
            raise Failed("too many failed run cycles")
    res["left_alive"] = mentioning(marker)
    res["zombies"] = [p for p, s in children(os.getpid()) if s == "Z"]
    for what in ("left_alive", "zombies"):
        if res[what]:
            errors.append(f"run cycles: {what.replace('_', ' ')}: {res[what]}")
    return res


def long_run(gs, tmp, n, warm, errors):
    """Part 1b."""
    marker, err = str(tmp / "long"), tmp / "long.err"
    gs_pid = spawn([gs, "run", "-q", "--", "bash", "-c", LONG_CHILD, marker, str(tmp), str(warm),
                    str(n)], stderr=err)
    res = dict(cycles=n, warm=warm, sent=0)
    stop = threading.Event()

    def sender():
        deadline = time.monotonic() + 300
        while not stop.is_set() and res["sent"] < 2_000_000 and time.monotonic() < deadline:
            send(gs_pid, signal.SIGUSR1 if res["sent"] % 2 == 0 else signal.SIGHUP)
            res["sent"] += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=sender, daemon=True)
    try:
        wait_for("`started` from the long-run child", (tmp / "started").exists, 20, gs_pid)
        thread.start()
        wait_for("`warm` from the long-run child", (tmp / "warm").exists, 120, gs_pid)
        bash = int((tmp / "started").read_text())
        res["before"] = dict(fds=fds(gs_pid), **mem(gs_pid))
        ctl = os.open(tmp / "ctl", os.O_WRONLY | os.O_NONBLOCK)
        os.write(ctl, b"go\n")
        t0 = time.monotonic()
        wait_for("`done` from the long-run child", (tmp / "done").exists, 30 + n * 0.1, gs_pid)
        res["cycles_s"] = time.monotonic() - t0
        stop.set()
        thread.join(5)
        # Every orphan has exited or is about to: gracestop must reap them all, promptly.
        deadline = time.monotonic() + 5
        while (others := [c for c in children(gs_pid) if c[0] != bash]) and time.monotonic() < deadline:
            time.sleep(0.005)
        res["others"] = others
        res["zombies"] = [p for p, s in others if s == "Z"]
        res["after"] = dict(fds=fds(gs_pid), **mem(gs_pid))
        os.write(ctl, b"fin\n")
        os.close(ctl)
        r = reap(gs_pid, 30)
        if r is None:
            raise Failed("long run: gracestop still runs 30 s after the child was told to exit")
        res["rc"] = r[0]
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(5)
    counts = (tmp / "counts").read_text().split() if (tmp / "counts").exists() else ["0", "0"]
    res["usr1_trapped"], res["hup_trapped"] = map(int, counts)
    b, a = res["before"], res["after"]
    if res["rc"] != 3:
        errors.append(f"long run: exit {res['rc']}, expected the child's 3: {tail(err)}")
    if b["fds"] != a["fds"]:
        errors.append(f"long run: descriptors {b['fds']} -> {a['fds']}")
    for key in ("VmRSS", "RssAnon"):
        if a[key] - b[key] > RSS_TOLERANCE_KB:
            errors.append(f"long run: {key} grew {b[key]} -> {a[key]} kB")
    if res["others"]:
        errors.append(f"long run: gracestop's children besides the child 5 s after its work: "
                      f"{res['others']}")
    if not (res["usr1_trapped"] and res["hup_trapped"]):
        errors.append(f"long run: the child trapped USR1 {res['usr1_trapped']}x, "
                      f"HUP {res['hup_trapped']}x of {res['sent']} sent")
    return res


def no_aslr_prefix():
    """`setarch ARCH -R` if this kernel lets us turn address-space randomisation off, else []."""
    prefix = ["setarch", platform.machine(), "-R"]
    try:
        ok = subprocess.run(prefix + ["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else []


def stop_cycles(gs, tmp, n, errors):
    """Part 2."""
    marker, err = str(tmp / "stop"), tmp / "stop.err"
    prefix = no_aslr_prefix()
    res = dict(cycles=0, bad_rc=0, bad_target=0, fd_counts=[], vmrss_kb=[], vmhwm_kb=[], ms=[],
               aslr=not prefix)
    first_fds = None
    for i in range(n):
        files = [tmp / f"{kind}{i}" for kind in ("ready", "term", "ack")]
        target = spawn(["sh", "-c", STOP_TARGET, marker, str(tmp), str(i)], own_group=True)
        wait_for(f"ready file of stop target {i + 1}", files[0].exists, 10, target)
        t0 = time.monotonic_ns()
        gs_pid = spawn(prefix + [gs, "stop", "-q", "--pid", str(target), "--wait", "10"], stderr=err)
        wait_for(f"SIGTERM at stop target {i + 1}", files[1].exists, 10, gs_pid)
        wait_for(f"gracestop blocked waiting for stop target {i + 1}", lambda: blocked(gs_pid), 10, gs_pid)
        try:
            seen = fds(gs_pid)
            m = mem(gs_pid)
        except OSError:
            raise Failed(f"stop cycle {i + 1}: gracestop exited before its target did: {tail(err)}")
        files[2].touch()
        r = reap(gs_pid, 20)
        if r is None:
            raise Failed(f"stop cycle {i + 1}: gracestop still runs after 20 s")
        res["ms"].append((time.monotonic_ns() - t0) / 1e6)
        t = reap(target, 10)
        res["cycles"] += 1
        res["fd_counts"].append(len(seen))
        res["vmrss_kb"].append(m["VmRSS"])
        res["vmhwm_kb"].append(m["VmHWM"])
        first_fds = first_fds or seen
        if len(seen) != len(first_fds):
            errors.append(f"stop cycle {i + 1}: descriptors {seen}, first cycle {first_fds}")
        if r[0] != 0:
            res["bad_rc"] += 1
            errors.append(f"stop cycle {i + 1}: exit {r[0]}: {tail(err)}")
        if t is None or t[0] != 0:
            res["bad_target"] += 1
            errors.append(f"stop cycle {i + 1}: target {'not reaped' if t is None else f'status {t[0]}'}")
        for f in files:
            f.unlink(missing_ok=True)
        if len(errors) >= 5:
            raise Failed("too many failed stop cycles")
    k = res["k"] = max(1, min(100, len(res["vmhwm_kb"]) // 2))
    res["peak_first_kb"] = min(res["vmhwm_kb"][:k])
    res["peak_last_kb"] = min(res["vmhwm_kb"][-k:])
    if res["peak_last_kb"] - res["peak_first_kb"] > RSS_TOLERANCE_KB:
        errors.append(f"stop cycles: peak RSS grew {res['peak_first_kb']} -> {res['peak_last_kb']} kB")
    return res


def burst(gs, tmp, n, errors):
    """Part 3."""
    err = tmp / "burst.err"
    gs_pid = spawn([gs, "run", "-q", "--", "sh", "-c", BURST_CHILD, str(tmp / "burst"), str(tmp)],
                   stderr=err)
    wait_for("the burst child's ready file", (tmp / "burst-ready").exists, 20, gs_pid)
    t0 = time.monotonic_ns()
    for _ in range(n):
        send(gs_pid, signal.SIGUSR1)
    t1 = time.monotonic_ns()
    send(gs_pid, signal.SIGUSR2)
    r = reap(gs_pid, 30)
    t2 = time.monotonic_ns()
    if r is None:
        raise Failed(f"burst: gracestop still runs 30 s after SIGUSR2: {tail(err)}")
    count = tail(tmp / "burst-count")
    res = dict(signals=n, rc=r[0], burst_s=(t1 - t0) / 1e9, exit_after_s=(t2 - t1) / 1e9,
               usr1_trapped=int(count) if count.isdigit() else None)
    if r[0] != 7:
        errors.append(f"burst: exit {r[0]}, expected the child's 7: {tail(err)}")
    return res


def stubborn_targets(k):
    """k targets ignoring SIGTERM, each ready (exec'd sleep with TERM in SigIgn)."""
    pids = [spawn(["sh", "-c", STUBBORN]) for _ in range(k)]

    def ready(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except OSError:
            return False
        return st.get("Name") == "sleep" and int(st.get("SigIgn", "0"), 16) & (1 << (signal.SIGTERM - 1))

    deadline = time.monotonic() + 30
    for pid in pids:
        wait_for(f"target {pid} ready", lambda: ready(pid), max(0.1, deadline - time.monotonic()))
    return pids


def stop_all(gs, pids, err):
    """One `gracestop stop --pid ... --wait 1 --force`; (rc, seconds, target statuses)."""
    argv = [gs, "stop", "-q"] + [a for p in pids for a in ("--pid", str(p))] + ["--wait", "1", "--force"]
    t0 = time.monotonic_ns()
    r = reap(spawn(argv, stderr=err), 30)
    secs = (time.monotonic_ns() - t0) / 1e9
    if r is None:
        raise Failed(f"gracestop stop of {len(pids)} targets still runs after 30 s")
    return r[0], secs, [(reap(p, 10) or (None,))[0] for p in pids]


def many_targets(gs, tmp, k, rounds, errors):
    """Part 4."""
    err = tmp / "many.err"
    res = dict(targets=k, one_s=[], many_s=[], not_killed=0)
    for i in range(rounds):
        for label, count in (("one", 1), ("many", k)):
            rc, secs, statuses = stop_all(gs, stubborn_targets(count), err)
            res[f"{label}_s"].append(secs)
            bad = [s for s in statuses if s != -signal.SIGKILL]
            res["not_killed"] += len(bad)
            if rc != 0 or bad:
                errors.append(f"round {i + 1}, {count} target(s): exit {rc}, {len(bad)} not killed by "
                              f"SIGKILL ({bad[:5]}): {tail(err)}")
    res["one_median_s"] = statistics.median(res["one_s"])
    res["many_median_s"] = statistics.median(res["many_s"])
    res["ratio"] = res["many_median_s"] / res["one_median_s"]
    res["bound_s"] = 3 * res["one_median_s"] + 1
    if res["many_median_s"] >= res["bound_s"]:
        errors.append(f"{k} targets took {res['many_median_s']:.3f} s, one {res['one_median_s']:.3f} s")
    return res


def report(gs, r, errors):
    """The table and the verdict."""
    print(f"gracestop soak benchmark  ({platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()})\nbinary: {gs}\n")
    w = 38

    def line(label, text):
        print(f"{label:<{w}}{text}")

    if "run" in r:
        a = r["run"]
        line("1a. run cycles", f"{a['cycles']} cycles, {a['cycles'] - a['wrong_status']} with the child's "
             f"status, {a['wrong_status']} wrong")
        line("    orphans left / zombies", f"{a['leftovers']} orphans outlived gracestop; afterwards "
             f"{len(a['left_alive'])} processes alive, {len(a['zombies'])} zombies")
        line("    time per cycle", f"median {statistics.median(a['ms']):.1f} ms, max {max(a['ms']):.1f} ms")
    if "long" in r:
        b = r["long"]
        bf, af = b["before"], b["after"]
        line("1b. one long run", f"{b['warm']} warm-up + {b['cycles']} cycles (5 processes, 2 orphans "
             f"each) in {b['cycles_s']:.1f} s; exit {b['rc']}")
        line("    descriptors before / after", f"{len(bf['fds'])} / {len(af['fds'])}"
             f"{' (same set)' if bf['fds'] == af['fds'] else ' (DIFFERENT)'}")
        for key in ("VmRSS", "RssAnon", "RssFile"):
            line(f"    {key} before / after", f"{bf[key]} / {af[key]} kB ({af[key] - bf[key]:+d})")
        line("    zombies / other children", f"{len(b['zombies'])} / {len(b['others'])} after the work")
        line("    signals sent / trapped", f"{b['sent']} USR1+HUP; child trapped USR1 {b['usr1_trapped']}x, "
             f"HUP {b['hup_trapped']}x (coalesced)")
    if "stop" in r:
        c = r["stop"]
        line("2.  stop cycles", f"{c['cycles']} cycles, {c['cycles'] - c['bad_rc']} exit 0, "
             f"{c['cycles'] - c['bad_target']} targets exited 0 and reaped")
        fc = c["fd_counts"]
        line("    descriptors while waiting", f"first {fc[0]}, last {fc[-1]}, min {min(fc)}, max {max(fc)}")
        line("    VmHWM while waiting first / last", f"lowest of {c['k']}: {c['peak_first_kb']} / "
             f"{c['peak_last_kb']} kB; all {min(c['vmhwm_kb'])}-{max(c['vmhwm_kb'])} kB"
             f"{' (ASLR on)' if c['aslr'] else ' (ASLR off)'}")
        line("    VmRSS while waiting first / last", f"{c['vmrss_kb'][0]} / {c['vmrss_kb'][-1]} kB")
        line("    time per cycle", f"median {statistics.median(c['ms']):.1f} ms")
    if "burst" in r:
        d = r["burst"]
        line("3.  signal burst", f"{d['signals']:,} SIGUSR1 in {d['burst_s']:.3f} s "
             f"({d['signals'] / d['burst_s']:,.0f}/s); exit {d['rc']} (expected 7)")
        line("    after the burst", f"exit {d['exit_after_s'] * 1e3:.1f} ms after SIGUSR2; child trapped "
             f"USR1 {d['usr1_trapped']}x (coalesced)")
    if "many" in r:
        e = r["many"]
        line(f"4.  {e['targets']} targets, one call", f"median {e['many_median_s']:.3f} s vs one target "
             f"{e['one_median_s']:.3f} s: ratio {e['ratio']:.3f}x ({len(e['one_s'])} rounds)")
        line("    rounds (one / many, s)", ", ".join(f"{o:.3f}/{m:.3f}" for o, m in zip(e["one_s"], e["many_s"])))
        line("    not killed by SIGKILL", f"{e['not_killed']}")
    print("\nVerdict")
    checks = [
        ("run", "1a every run cycle exits with the child's status, leaves no process or zombie",
         lambda a: not a["wrong_status"] and not a["leftovers"] and not a["left_alive"] and not a["zombies"]),
        ("long", f"1b long run: same descriptors, VmRSS and RssAnon +<= {RSS_TOLERANCE_KB} KiB, no zombie",
         lambda b: b["before"]["fds"] == b["after"]["fds"] and not b["others"] and b["rc"] == 3
         and all(b["after"][k] - b["before"][k] <= RSS_TOLERANCE_KB for k in ("VmRSS", "RssAnon"))),
        ("stop", f"2  stop cycles exit 0, targets reaped, descriptors constant, VmHWM +<= "
         f"{RSS_TOLERANCE_KB} KiB", lambda c: not c["bad_rc"] and not c["bad_target"]
         and len(set(c["fd_counts"])) == 1 and c["peak_last_kb"] - c["peak_first_kb"] <= RSS_TOLERANCE_KB),
        ("burst", "3  the burst loses no exit status", lambda d: d["rc"] == 7),
        ("many", "4  many targets in < 3x one target + 1 s, all SIGKILLed",
         lambda e: e["many_median_s"] < e["bound_s"] and not e["not_killed"]),
    ]
    for key, label, ok in checks:
        verdict = "n/a " if key not in r else "PASS" if ok(r[key]) else "FAIL"
        print(f"  {verdict}  {label}")
    for e in errors:
        print(f"  ERROR {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gracestop", "--bin", default=str(REPO / "target/release/gracestop"),
                    help="the binary (default: target/release/gracestop)")
    ap.add_argument("--run-cycles", type=int, default=1000)
    ap.add_argument("--long-cycles", type=int, default=1000)
    ap.add_argument("--stop-cycles", type=int, default=1000)
    ap.add_argument("--signals", type=int, default=100_000)
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of part 4 (default 3)")
    ap.add_argument("--only", choices=["run", "long", "stop", "burst", "many"], action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--json", metavar="FILE", help="write raw numbers here")
    args = ap.parse_args()
    gs = os.path.abspath(args.gracestop)
    if not os.access(gs, os.X_OK):
        print(f"gracestop binary not found at {gs}\nbuild it with:\n"
              f"    cd {REPO} && cargo build --release", file=sys.stderr)
        return 2
    parts = args.only or ["run", "long", "stop", "burst", "many"]
    budget = 120 + 0.1 * args.run_cycles + 0.1 * args.long_cycles + 0.2 * args.stop_cycles \
        + 1e-4 * args.signals + args.rounds * (10 + 0.1 * args.targets)

    def on_alarm(signum, frame):
        raise Watchdog(f"the benchmark overran its time budget of {budget:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(budget))
    results, errors = {}, []
    with tempfile.TemporaryDirectory(prefix="soak.") as d:
        tmp = Path(d)
        try:
            for part, fn in (("run", lambda: run_cycles(gs, tmp, args.run_cycles, errors)),
                             ("long", lambda: long_run(gs, tmp, args.long_cycles,
                                                       max(20, args.long_cycles // 10), errors)),
                             ("stop", lambda: stop_cycles(gs, tmp, args.stop_cycles, errors)),
                             ("burst", lambda: burst(gs, tmp, args.signals, errors)),
                             ("many", lambda: many_targets(gs, tmp, args.targets, args.rounds, errors))):
                if part in parts:
                    print(f"{part} ...", file=sys.stderr)
                    try:
                        results[part] = fn()
                    except Failed as e:
                        errors.append(f"{part}: {e}")
                    kill_all(d)
        except (Watchdog, KeyboardInterrupt) as e:
            errors.append(f"aborted: {e}")
        finally:
            signal.alarm(0)
            kill_all(d)
    report(gs, results, errors)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(
            kernel=platform.release(), python=platform.python_version(), gracestop=gs,
            cpus=os.cpu_count(), results=results, errors=errors), indent=2, default=str))
    return 1 if errors or len(results) < len(parts) else 0


if __name__ == "__main__":
    sys.exit(main())
