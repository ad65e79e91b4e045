#!/usr/bin/env python3
"""gracestop against every peer in one run: one table, with ratios and verdicts.

`bench/run` installs the peers, builds gracestop (dynamic and static) and runs this.
Everything is measured here, in this run, configurations interleaved, and every verdict
compares gracestop with a peer measured alongside it (these machines are noisy: absolute
thresholds would say more about the machine than about gracestop).

Supervisor (the measurements of bench/run_overhead.py, reused): gracestop `run` (dynamic
and static builds) against tini, dumb-init and catatonit, each supervising a command:
  - idle wakeups: context switches of the supervisor over `sleep 1000` in a 10 s window;
  - resident memory: VmRSS in that state, Pss beside it (shared libc pages divided);
  - start-up overhead: spawn+wait of `SUP /bin/true` minus that of bare /bin/true (medians);
  - forwarding overhead: SIGUSR1 sent to the supervisor -> the child's handler ran, minus
    the same with the child signalled directly (medians).
Stopping (the measurements of bench/stop_latency.py, reused): a target exits a random
200-1200 ms after SIGTERM. Exit detection = the stopper returned - the target exited, the
exit taken from the kernel's exit notification (a harness thread blocked in wait(), or in
poll() on a pidfd when the target is not our child). Stoppers: `gracestop stop`,
start-stop-daemon --retry TERM/30/KILL/5, a catalina.sh-style `kill -0; sleep 1` loop, and
GNU `timeout -k`, the floor: it is the target's own parent, gets the SIGTERM, forwards it
and returns when its child exits. SIGKILL lateness: a target ignores SIGTERM; the time from
its SIGTERM to its death, minus 2 s, for `gracestop stop --wait 2 --force` and `timeout -k
2s`.
Rolling stop (tests/e2e/lb.py, run as a subprocess): one of two backends behind HAProxy is
stopped under a constant load by kill -15, `gracestop stop` and `gracestop run`; failed
requests and the stop's duration. `--chart PATH` draws the requests per second, succeeded
and failed, over time (an SVG written by draw_chart below, standard library only).

Safety: only processes started here are signalled, through pidfds (see the two reused
modules); every loop and wait is bounded; a SIGALRM watchdog bounds the whole run; every
process is killed and reaped in a finally. Everything stays on 127.0.0.1 and in a temporary
directory.
"""
import argparse, json, os, platform, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import run_overhead as ro  # noqa: E402  (the supervisor measurements)
import stop_latency as sl  # noqa: E402  (the stopping measurements)

PEERS = ("tini", "dumb-init", "catatonit")
TIMEOUT = "/usr/bin/timeout"
LB = REPO / "tests/e2e/lb.py"
STRATEGIES = (("kill-15", "kill -15"), ("stop", "gracestop stop"), ("run", "gracestop run"))
CHART_LABELS = {"kill-15": "kill -15 (SIGTERM straight away)",
                "stop": "gracestop stop (deregister, drain 2 s, SIGTERM, wait)",
                "run": "gracestop run, sent SIGTERM (deregister, drain 2 s, SIGTERM, wait)"}
EXIT_DELAY = (0.2, 1.2)  # the graceful target exits this long (uniform, s) after SIGTERM


class Watchdog(Exception):
    """Raised by SIGALRM when the whole benchmark overruns its time budget."""


def note(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine and versions

def first_line(argv):
    """The first non-empty output line of argv (stdout or stderr), or '?'."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = [x.strip() for x in (p.stdout + "\n" + p.stderr).splitlines() if x.strip()]
    return lines[0] if lines else "?"


def deb_version(pkg):
    """The installed Debian package version, or None."""
    v = first_line(["dpkg-query", "-W", "-f", "${Version}", pkg])
    return None if v == "?" or "no packages" in v else v


def linkage(path):
    """'static' if the ELF file has no program interpreter (PT_INTERP), else 'dynamic'."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            phoff = int.from_bytes(head[0x20:0x28], "little")
            entsize = int.from_bytes(head[0x36:0x38], "little")
            count = int.from_bytes(head[0x38:0x3A], "little")
            f.seek(phoff)
            table = f.read(entsize * count)
    except OSError:
        return "?"
    if head[:4] != b"\x7fELF" or head[4] != 2:
        return "?"
    types = {int.from_bytes(table[i:i + 4], "little") for i in range(0, len(table), entsize)}
    return "dynamic" if 3 in types else "static"


def machine_info(bins):
    """Header lines: machine, binaries, peers' versions."""
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    osname = "?"
    try:
        osname = next(line.split("=", 1)[1].strip().strip('"') for line in open("/etc/os-release")
                      if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"machine: {osname}, Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
             f"load {load} at start, Python {platform.python_version()}"]
    for name, path in bins.items():
        lines.append(f"{name}: {first_line([path, '--version'])}, {path} "
                     f"({os.path.getsize(path) / 2**20:.2f} MiB, {linkage(path)})")
    peers = []
    for pkg, what in (("tini", "tini"), ("dumb-init", "dumb-init"), ("catatonit", "catatonit"),
                      ("coreutils", "timeout"), ("dpkg", "start-stop-daemon"),
                      ("haproxy", "haproxy")):
        peers.append(f"{what} {deb_version(pkg) or 'not installed'}")
    java = first_line(["java", "-version"]) if shutil.which("java") else "not installed"
    peers.append(f"java: {java}")
    lines.append("peers (Debian packages): " + ", ".join(peers))
    return lines


# ---------------------------------------------------------------- measurements

def ms(values_ns):
    """sl.stats of ns values (median, p90, min, max in ms), or None."""
    return sl.stats(values_ns)


def measure_supervisors(bins, peers, tmp, idle_s, n_sig, n_start, errors):
    """Idle wakeups, memory, forwarding and start-up for every supervisor; a results dict."""
    paths = dict(bins, **peers)
    names = tuple(paths)

    def argv_for(name, cmd):
        return cmd if name == "direct" else ro.prefix_for(name, paths[name]) + cmd
    out = dict(names=names, argv={n: " ".join([n] + argv_for(n, ["CMD"])[1:]) for n in names})
    try:
        note(f"supervisor: idle window of {idle_s} s, all at once ...")
        out["idle"] = ro.measure_idle(argv_for, names, idle_s)
        note(f"supervisor: {n_sig} forwarded signals per configuration, interleaved ...")
        out["signal_ns"] = ro.measure_signals(argv_for, names, tmp, n_sig, 0.002, errors)
        note(f"supervisor: {n_start} start-ups per configuration, interleaved ...")
        out["startup_ns"] = ro.measure_startup(argv_for, names, n_start, errors)
    except (RuntimeError, OSError) as e:
        errors.append(f"supervisor measurements aborted: {type(e).__name__}: {e}")
    finally:
        ro.kill_all()
    return out


def measure_stopping(gs_bins, tmp, n, n_kill, errors):
    """Exit detection (interleaved) and SIGKILL lateness (alternating); a results dict."""
    (tmp / "target.py").write_text(sl.TARGET_SRC)
    base = sl.stoppers(None)
    stoppers = {name: (lambda p, b=b: [b, "stop", "-q", "--pid", str(p), "--wait", "30"])
                for name, b in gs_bins.items()}
    stoppers["start-stop-daemon"] = base["start-stop-daemon"]
    stoppers["catalina sh loop"] = base["catalina-style sh loop"]
    launchers = {"timeout (floor)": [TIMEOUT, "-k", "2s", "3600"]}
    counts = {name: n for name in stoppers}
    counts["catalina sh loop"] = max(2, round(n / 4))  # ~1.5 s a run, and its figure is coarse
    counts.update({name: n for name in launchers})
    if not os.access(sl.SSD, os.X_OK):
        errors.append(f"{sl.SSD} missing: start-stop-daemon not measured")
        del counts["start-stop-daemon"]
    res = {name: [] for name in counts}
    kill = {"gracestop --wait 2 --force": [], "timeout -k 2s (floor)": []}
    gs = next(iter(gs_bins.values()))
    try:
        plan = sl.interleave(counts)
        note(f"stopping: {len(plan)} interleaved exit-detection runs "
             f"(targets exit {EXIT_DELAY[0]:g}-{EXIT_DELAY[1]:g} s after SIGTERM) ...")
        for name in plan:
            rec = (sl.run_a(tmp, None, EXIT_DELAY, launchers[name]) if name in launchers
                   else sl.run_a(tmp, stoppers[name], EXIT_DELAY))
            res[name].append(rec)
            if rec["error"]:
                errors.append(f"exit detection, {name}, run {len(res[name])}: {rec['error']}")
            if len(errors) >= 5:
                raise RuntimeError("too many failed runs")
        note(f"stopping: {n_kill} x 2 SIGKILL-lateness runs of 2 s, alternating ...")
        for i in range(n_kill):
            pair = [("gracestop --wait 2 --force", lambda: sl.run_b(tmp, gs)),
                    ("timeout -k 2s (floor)", lambda: sl.run_b(tmp, None, launchers["timeout (floor)"]))]
            for name, run in pair[i % 2:] + pair[:i % 2]:
                rec = run()
                kill[name].append(rec)
                if rec["error"]:
                    errors.append(f"SIGKILL lateness, {name}, run {len(kill[name])}: {rec['error']}")
            if len(errors) >= 5:
                raise RuntimeError("too many failed runs")
    except (RuntimeError, OSError) as e:
        errors.append(f"stopping measurements aborted: {type(e).__name__}: {e}")
    finally:
        for t in list(sl.LIVE):
            t.kill()
    return dict(exit=res, kill=kill)


def run_lb(args, gs, strategy, mode, seconds, tmp, errors):
    """Run tests/e2e/lb.py once (bounded); its JSON result, or None."""
    out = tmp / f"lb-{strategy}-{mode}.json"
    log = tmp / f"lb-{strategy}-{mode}.log"
    argv = [sys.executable, str(args.lb), "rolling", "--gracestop", gs, "--strategy", strategy,
            "--haproxy", mode, "--rate", str(args.rate), "--seconds", str(seconds),
            "--json", str(out)]
    limit = seconds + 180
    with open(log, "w") as f:
        # its own session, so that a hung run's helpers (HAProxy, JVMs) can be reached as a
        # group; lb.py stops them itself on every path, this is the backstop
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                start_new_session=True, cwd=REPO)
    try:
        rc = proc.wait(limit)
    except subprocess.TimeoutExpired:
        errors.append(f"rolling {strategy}/{mode}: lb.py overran {limit} s, stopped")
        rc = None
    finally:
        if proc.returncode is None:
            stop_group(proc)
    if rc != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        errors.append(f"rolling {strategy}/{mode}: lb.py exited {rc}: " + " | ".join(tail))
        return None
    try:
        return json.loads(out.read_text())
    except ValueError as e:
        errors.append(f"rolling {strategy}/{mode}: unreadable JSON: {e}")
        return None


def stop_group(proc):
    """SIGTERM, then SIGKILL, the process group of an unreaped child that leads it.

    The child stays unreaped (waitid with WNOWAIT) until the group has been signalled, so
    its PID, which is the group's ID, cannot be reused meanwhile."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                break
            time.sleep(0.05)
    if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, leader a zombie
        except ProcessLookupError:
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        note(f"warning: lb.py (PID {proc.pid}) was not reaped")


def measure_rolling(args, gs, tmp, seconds, errors):
    """{mode: {strategy: lb.py result}} for the HAProxy modes asked for."""
    res = {}
    for mode in args.haproxy:
        res[mode] = {}
        for strategy, _ in STRATEGIES:
            note(f"rolling stop: {strategy} behind HAProxy ({mode}), {seconds} s at "
                 f"{args.rate} req/s ...")
            res[mode][strategy] = run_lb(args, gs, strategy, mode, seconds, tmp, errors)
    return res


# ---------------------------------------------------------------- the table

class Table:
    """Rows of the one table, and the verdicts counted along the way."""
    W = (33, 19, 10, 10, 6, 8, 11)

    def __init__(self):
        self.lines, self.passed, self.failed = [], 0, 0

    def section(self, title):
        self.lines.append("")
        self.lines.append(title)

    def row(self, measure, subject, median=None, p90=None, n=None, ratio=None, diff=None,
            verdict="", fmt=".3f"):
        cell = lambda v, f: "" if v is None else v if isinstance(v, str) else format(v, f)
        w = self.W
        self.lines.append(
            f"{measure:<{w[0]}}{subject:<{w[1]}}{cell(median, fmt):>{w[2]}}"
            f"{cell(p90, fmt):>{w[3]}}{cell(n, 'd'):>{w[4]}}{cell(ratio, '.2f'):>{w[5]}}"
            f"{cell(diff, '+' + fmt):>{w[6]}}  {verdict}".rstrip())

    def verdict(self, ok, text):
        """A verdict cell; None (no data) counts as a failure."""
        if ok:
            self.passed += 1
            return f"PASS  {text}"
        self.failed += 1
        return f"FAIL  {text}" + ("" if ok is not None else " (no data)")

    def header(self):
        w = self.W
        h = (f"{'measure':<{w[0]}}{'subject':<{w[1]}}{'median':>{w[2]}}{'p90':>{w[3]}}"
             f"{'n':>{w[4]}}{'ratio':>{w[5]}}{'diff':>{w[6]}}  verdict")
        return [h, "-" * (len(h) + 30)]


def ratio(a, b):
    return a / b if a is not None and b is not None and b > 0 and a >= 0 else None


def table_supervisors(t, sup, idle_s):
    names = sup.get("names", ())
    gs = [n for n in names if n.startswith("gracestop")]
    idle = sup.get("idle", {})

    def overheads(raw):
        """{name: stats (ms) of the overhead over direct}, paired by round: round i ran
        every configuration once, so sup[i] - direct[i] compares runs made moments apart
        (a lost signal breaks the pairing: then the median difference, with no p90)."""
        d = raw.get("direct") or []
        out = {}
        for nm, v in raw.items():
            if nm == "direct" or not v or not d:
                continue
            if len(v) == len(d):
                out[nm] = ms([a - b for a, b in zip(v, d)])
            else:
                out[nm] = dict(n=min(len(v), len(d)), p90=None,
                               median=(statistics.median(v) - statistics.median(d)) / 1e6)
        out["direct"] = ms(d)
        return out
    fwd = overheads(sup.get("signal_ns", {}))
    start = overheads(sup.get("startup_ns", {}))
    ref = "tini"
    t.section(f"SUPERVISOR: each runs one command (ratio and diff against {ref}; "
              "the verdict is the dynamic build's)")

    def block(measure, get, fmt, rule, p90=None, n=None):
        vals = {nm: get(nm) for nm in names}
        r = vals.get(ref)
        for i, nm in enumerate(names):
            v = vals[nm]
            verdict = ""
            if rule is None:
                pass
            elif nm == "gracestop":
                verdict = t.verdict(None if v is None or (rule[0] and r is None)
                                    else rule[1](v, r), rule[2])
            elif nm == "gracestop-static" and v is not None and r is not None:
                verdict = f"      (static: {'meets' if rule[1](v, r) else 'misses'} it)"
            t.row(measure if i == 0 else "", nm, "n/a" if v is None else v,
                  p90(nm) if p90 else None, n(nm) if n else None,
                  ratio(v, r) if nm != ref else None,
                  v - r if v is not None and r is not None and nm != ref else None,
                  verdict, fmt)

    # idle wakeups: absolute rule (= 0)
    block(f"idle wakeups in {idle_s} s", lambda nm: idle.get(nm, {}).get("wakeups"), "d",
          (False, lambda v, r: v == 0, "= 0"))
    block("VmRSS over sleep, MiB", lambda nm: idle.get(nm, {}).get("rss_mb"), ".2f",
          (True, lambda v, r: v <= r, f"<= {ref}'s"))
    block("  Pss, MiB (shared pages split)", lambda nm: idle.get(nm, {}).get("pss_mb"), ".2f",
          None)

    def field(stats, key, unit):
        return lambda nm: (stats[nm][key] * unit if stats.get(nm) and stats[nm][key] is not None
                           else None)
    block("start-up overhead, ms", field(start, "median", 1), ".3f",
          (True, lambda v, r: v <= r, f"<= {ref}'s"),
          p90=field(start, "p90", 1), n=field(start, "n", 1))
    block("forwarding overhead, µs", field(fwd, "median", 1000), ".1f",
          (True, lambda v, r: v <= r, f"<= {ref}'s"),
          p90=field(fwd, "p90", 1000), n=field(fwd, "n", 1))
    for label, s, unit, f in (("  ref: bare /bin/true, ms", start, 1, ".3f"),
                              ("  ref: direct signal, µs", fwd, 1000, ".1f")):
        d = s.get("direct")
        if d:
            t.row(label, "(no supervisor)", d["median"] * unit, d["p90"] * unit, d["n"], fmt=f)
    return gs


def table_stopping(t, stop):
    ex = stop.get("exit", {})
    det = {k: ms([r["return_ns"] - r["reaped_ns"] for r in v
                  if not r["error"] and r["reaped_ns"] is not None]) for k, v in ex.items()}
    ref = "timeout (floor)"
    to = det.get(ref)
    ssd = det.get("start-stop-daemon")
    t.section("STOPPING: exit detection = stopper returned - target exited (kernel's exit "
              "notification), ms; ratio and diff against timeout")
    order = [k for k in ex if k.startswith("gracestop")] + [
        k for k in (ref, "start-stop-daemon", "catalina sh loop") if k in ex]
    first = True
    for k in order:
        s = det.get(k)
        med = s["median"] if s else None
        verdicts = []
        if k == "gracestop":
            ok1 = None if not (s and to) else med <= 1.5 * to["median"] + 0.5
            verdicts.append(t.verdict(ok1, "<= 1.5 x timeout's + 0.5 ms"))
            ok2 = None if not (s and ssd) else ssd["median"] >= 3 * med
            times = f" (it is {ssd['median'] / med:.0f} x)" if ok2 is not None and med > 0 else ""
            verdicts.append(t.verdict(ok2, ">= 3 x faster than start-stop-daemon" + times))
        t.row("exit detection, ms" if first else "", k, "n/a" if s is None else med,
              s["p90"] if s else None, s["n"] if s else None,
              ratio(med, to["median"]) if to and k != ref else None,
              med - to["median"] if s and to and k != ref else None,
              verdicts[0] if verdicts else "")
        for v in verdicts[1:]:
            t.row("", "", verdict=v)
        first = False
    # the teardown of the target itself, as a reference: its last stamp -> exit notification
    lag = ms([r["reaped_ns"] - r["exit_ns"] for v in ex.values() for r in v
              if not r["error"] and r["reaped_ns"] is not None])
    if lag:
        t.row("  ref: target's own teardown", "stamp -> exit", lag["median"], lag["p90"], lag["n"])

    kill = stop.get("kill", {})
    late = {k: ms([r["lateness_ns"] for r in v if r["lateness_ns"] is not None])
            for k, v in kill.items()}
    ref = "timeout -k 2s (floor)"
    r = late.get(ref)
    first = True
    for k in ("gracestop --wait 2 --force", ref):
        if k not in kill:
            continue
        s = late.get(k)
        verdict = ""
        if k.startswith("gracestop"):
            verdict = t.verdict(None if not (s and r) else s["median"] <= r["median"] + 1.0,
                                "<= timeout's + 1 ms")
        t.row("SIGKILL lateness after 2 s, ms" if first else "",
              k.replace(" (floor)", "").replace(" --force", " -f"),
              "n/a" if s is None else s["median"], s["p90"] if s else None,
              s["n"] if s else None, None,
              s["median"] - r["median"] if s and r and k != ref else None, verdict)
        first = False


def table_rolling(t, rolling, args):
    """The rolling stop rows: failed requests (verdicts) and stop durations."""
    t.section("ROLLING STOP behind HAProxy: one of two backends stopped under "
              f"{args.rate} req/s (tests/e2e/lb.py)")
    if rolling is None:
        try:
            lb = args.lb.resolve().relative_to(REPO)
        except ValueError:
            lb = args.lb
        for i, (_, label) in enumerate(STRATEGIES):
            t.row("" if i else "failed requests", label, f"  not run ({lb} missing)")
        return
    for mode, res in rolling.items():
        for strategy, label in STRATEGIES:
            r = res.get(strategy)
            if strategy == "kill-15":
                rule = (lambda f: f > 0), "> 0: the control loses requests"
            else:
                rule = (lambda f: f == 0), "0 lost"
            verdict = t.verdict(None if r is None else rule[0](r["failed"]), rule[1])
            if r is None:
                t.row(f"failed requests ({mode})" if strategy == "kill-15" else "", label,
                      "n/a", verdict=verdict)
                continue
            timeouts = sum(1 for x in r.get("timeline", []) if x[1] == "timeout")
            detail = (f"non-2xx {r['non2xx']}, conn. errors {r['conn_errors']}, "
                      f"timeouts {timeouts}")
            t.row(f"failed requests ({mode})" if strategy == "kill-15" else "", label,
                  r["failed"], None, r["requests"], verdict=f"{verdict}  [{detail}]", fmt="d")
        for strategy, label in STRATEGIES:
            r = res.get(strategy)
            t.row(f"stop took, s ({mode})" if strategy == "kill-15" else "", label,
                  "n/a" if r is None else r["stop_seconds"], fmt=".2f")


# ---------------------------------------------------------------- the chart

def bins_of(result, bin_s):
    """(ok per second, failed per second) per bin of send time."""
    tl = result.get("timeline", [])
    end = max([x[0] for x in tl] + [result.get("stop_done_s") or 0, 0.0])
    nb = max(1, round(end / bin_s))  # a last, barely begun bin is folded into the one before
    ok, bad = [0] * nb, [0] * nb
    for t_send, outcome, *_ in tl:
        i = min(nb - 1, max(0, int(t_send / bin_s)))
        (ok if outcome == "ok" else bad)[i] += 1
    return [x / bin_s for x in ok], [x / bin_s for x in bad]


def nice_step(top):
    """A round tick step for an axis from 0 to top (about 4-6 ticks)."""
    raw = max(top, 1e-9) / 5
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def draw_chart(panels, path, title, bin_s=0.25):
    """Write an SVG: one panel per (label, lb.py result), requests/s over time."""
    W, left, right, top, ph, gap, bottom = 900, 72, 24, 92, 170, 64, 58
    H = top + len(panels) * ph + (len(panels) - 1) * gap + bottom
    series = [bins_of(r, bin_s) for _, r in panels]
    t_end = max(len(ok) for ok, _ in series) * bin_s
    y_top = 1.1 * max([max(ok + bad + [1]) for ok, bad in series])  # headroom
    step = nice_step(y_top)
    y_top = step * (int(y_top / step) + (0 if y_top % step == 0 else 1))
    x_step = nice_step(t_end)
    pw = W - left - right
    X = lambda tt: left + pw * tt / t_end
    # solid colours only (no opacity), so that every SVG renderer draws the same thing
    green, red, grey, band = "#1a7f37", "#d62728", "#7f7f7f", "#e6e6e6"
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" '
         f'font-size="13">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="26" text-anchor="middle" font-size="17" '
         f'font-weight="bold">{esc(title)}</text>']
    # legend
    lx, ly = left, 52
    for label, kind in (("succeeded / s", "line"),
                        ("failed / s (error, timeout, non-2xx)", "bar"),
                        ("stop: signal sent until the stopper returned", "band")):
        if kind == "line":
            o.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}" '
                     f'stroke="{green}" stroke-width="3"/>')
        elif kind == "bar":
            o.append(f'<rect x="{lx}" y="{ly - 10}" width="18" height="12" fill="{red}"/>')
        else:
            o.append(f'<rect x="{lx}" y="{ly - 10}" width="18" height="12" fill="{band}" '
                     f'stroke="{grey}" stroke-dasharray="4 3"/>')
        o.append(f'<text x="{lx + 24}" y="{ly}">{esc(label)}</text>')
        lx += 44 + 7.0 * len(label)
    for k, ((label, r), (ok, bad)) in enumerate(zip(panels, series)):
        y0 = top + k * (ph + gap)
        Y = lambda v: y0 + ph - ph * v / y_top
        lost = f"{r['failed']} of {r['requests']} requests failed"
        o.append(f'<text x="{left}" y="{y0 - 10}" font-weight="bold">{esc(label)}: '
                 f'{esc(lost)}, stop took {r["stop_seconds"]:.2f} s</text>')
        # stop window
        s0, s1 = r.get("stop_started_s"), r.get("stop_done_s")
        if s0 is not None and s1 is not None:
            o.append(f'<rect x="{X(s0):.1f}" y="{y0}" width="{max(1.5, X(s1) - X(s0)):.1f}" '
                     f'height="{ph}" fill="{band}"/>')
            for tt in (s0, s1):
                o.append(f'<line x1="{X(tt):.1f}" y1="{y0}" x2="{X(tt):.1f}" y2="{y0 + ph}" '
                         f'stroke="{grey}" stroke-dasharray="4 3"/>')
            o.append(f'<text x="{X(s0) - 4:.1f}" y="{y0 + 14}" text-anchor="end" '
                     f'fill="#444" font-size="12">stop begins</text>')
            o.append(f'<text x="{X(s1) + 4:.1f}" y="{y0 + 14}" fill="#444" '
                     f'font-size="12">stop returned</text>')
        # grid and y axis
        v = 0.0
        while v <= y_top + 1e-9:
            o.append(f'<line x1="{left}" y1="{Y(v):.1f}" x2="{W - right}" y2="{Y(v):.1f}" '
                     f'stroke="#e3e3e3"/>')
            o.append(f'<text x="{left - 6}" y="{Y(v) + 4:.1f}" text-anchor="end" '
                     f'font-size="12">{v:g}</text>')
            v += step
        # failed: bars, under the line of successes

        for i, val in enumerate(bad):
            if val > 0:
                o.append(f'<rect x="{X(i * bin_s):.1f}" y="{Y(val):.1f}" '
                         f'width="{max(1.0, X(bin_s) - X(0)):.1f}" height="{Y(0) - Y(val):.1f}" '
                         f'fill="{red}"/>')
        # succeeded: a step line
        pts = []
        for i, val in enumerate(ok):
            pts += [f"{X(i * bin_s):.1f},{Y(val):.1f}", f"{X((i + 1) * bin_s):.1f},{Y(val):.1f}"]
        o.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{green}" '
                 f'stroke-width="2.5" stroke-linejoin="round"/>')
        # axes and x ticks
        o.append(f'<line x1="{left}" y1="{y0 + ph}" x2="{W - right}" y2="{y0 + ph}" '
                 f'stroke="black"/>')
        o.append(f'<line x1="{left}" y1="{y0}" x2="{left}" y2="{y0 + ph}" stroke="black"/>')
        tt = 0.0
        while tt <= t_end + 1e-9:
            o.append(f'<line x1="{X(tt):.1f}" y1="{y0 + ph}" x2="{X(tt):.1f}" '
                     f'y2="{y0 + ph + 5}" stroke="black"/>')
            o.append(f'<text x="{X(tt):.1f}" y="{y0 + ph + 19}" text-anchor="middle" '
                     f'font-size="12">{tt:g}</text>')
            tt += x_step
        o.append(f'<text transform="translate({left - 46},{y0 + ph / 2}) rotate(-90)" '
                 f'text-anchor="middle" font-size="12">requests / s</text>')
    o.append(f'<text x="{left + pw / 2}" y="{H - 14}" text-anchor="middle">seconds since the '
             f'load started ({bin_s * 1000:g} ms bins, by send time)</text>')
    o.append("</svg>")
    Path(path).write_text("\n".join(o) + "\n")


def chart_panels(rolling):
    """(HAProxy mode, [(label, result)]): kill -15 first, then the gracestop strategies."""
    for mode in ("noretry", "default"):
        res = (rolling or {}).get(mode) or {}
        panels = [(CHART_LABELS[s], res[s]) for s, _ in STRATEGIES if res.get(s)]
        if len(panels) >= 2 and res.get("kill-15"):
            return mode, panels
    return None, []


# ---------------------------------------------------------------- main

def find_bins(args):
    bins = {"gracestop": os.path.abspath(args.gracestop)}
    if args.gracestop_static != "none":
        bins["gracestop-static"] = os.path.abspath(args.gracestop_static)
    for name, path in list(bins.items()):
        if not os.access(path, os.X_OK):
            if name == "gracestop":
                sys.exit(f"gracestop binary not found at {path}; build it with\n"
                         f"    cd {REPO} && cargo build --release --locked\nor run bench/run")
            note(f"warning: {path} missing: the static build is not measured "
                 "(bench/run builds it)")
            del bins[name]
    return bins


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gracestop", default=str(REPO / "target/release/gracestop"))
    ap.add_argument("--gracestop-static", metavar="BIN",
                    default=str(REPO / "target/x86_64-unknown-linux-gnu/release/gracestop"),
                    help="the crt-static build ('none' to skip)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (~1.5 min)")
    ap.add_argument("--only", action="append", choices=("supervisor", "stopping", "rolling"),
                    help="measure only these sections (repeatable)")
    ap.add_argument("--haproxy", type=lambda s: [m for m in s.split(",") if m],
                    help="HAProxy modes for the rolling stop, comma-separated (default "
                         "noretry,default; with --quick noretry)")
    ap.add_argument("--rate", type=int, default=100, help="rolling stop load, req/s")
    ap.add_argument("--rolling-json", nargs="+", metavar="FILE",
                    help="take the rolling stop results from these lb.py JSON files "
                         "instead of running lb.py")
    ap.add_argument("--lb", type=Path, default=LB, help="the rolling-stop harness "
                    "(default tests/e2e/lb.py)")
    ap.add_argument("--chart", metavar="PATH", help="write the rolling stop chart (SVG) here")
    ap.add_argument("--json", metavar="PATH", help="write the raw measurements here")
    args = ap.parse_args()
    only = set(args.only or ("supervisor", "stopping", "rolling"))
    q = args.quick
    idle_s, n_sig, n_start = (3, 40, 40) if q else (10, 300, 300)
    n_exit, n_kill, seconds = (6, 2, 8) if q else (30, 8, 15)
    if args.haproxy is None:
        args.haproxy = ["noretry"] if q else ["noretry", "default"]
    bins = find_bins(args)
    peers = {n: shutil.which(n) for n in PEERS}
    missing = [n for n, p in peers.items() if not p] + [
        p for p in (TIMEOUT, sl.SSD) if not os.access(p, os.X_OK)]
    peers = {n: p for n, p in peers.items() if p}

    errors, sup, stop, rolling = [], {}, {}, None
    budget = 1500 if not q else 600

    def on_alarm(signum, frame):
        raise Watchdog(f"the benchmark overran its {budget} s budget")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(budget)
    t_start = time.monotonic()
    header = machine_info(bins)
    try:
        with tempfile.TemporaryDirectory(prefix="gracestop-compare.") as d:
            tmp = Path(d)
            if "supervisor" in only:
                sup = measure_supervisors(bins, peers, tmp, idle_s, n_sig, n_start, errors)
            if "stopping" in only:
                stop = measure_stopping(bins, tmp, n_exit, n_kill, errors)
            if args.rolling_json:
                rolling = {}
                for f in args.rolling_json:
                    r = json.loads(Path(f).read_text())
                    rolling.setdefault(r["haproxy"], {})[r["strategy"]] = r
            elif "rolling" in only and args.lb.exists():
                rolling = measure_rolling(args, bins["gracestop"], tmp, seconds, errors)
    except Watchdog as e:
        errors.append(str(e))
    finally:
        signal.alarm(0)
        ro.kill_all()
        for t in list(sl.LIVE):
            t.kill()

    t = Table()
    if "supervisor" in only:
        table_supervisors(t, sup, idle_s)
    if "stopping" in only:
        table_stopping(t, stop)
    if "rolling" in only or args.rolling_json:
        table_rolling(t, rolling, args)
    print("gracestop against its peers: one run, configurations interleaved, every verdict "
          "against a peer measured in this run")
    print(time.strftime("run: %Y-%m-%d %H:%M UTC", time.gmtime()))
    for line in header:
        print(line)
    if sup.get("argv"):
        print("supervised as: " + " | ".join(sup["argv"].values()))
    print(f"measured in {time.monotonic() - t_start:.0f} s{' (--quick)' if q else ''}; "
          "n = samples (requests for the rolling stop); ratio = subject / reference")
    print()
    for line in t.header() + t.lines[1:]:
        print(line)
    print()
    if missing:
        print(f"not installed, not measured: {', '.join(missing)} (bench/run installs them)")
    for e in errors:
        print(f"error: {e}")
    if errors:
        t.failed += 1
        print("error: the measurements above are incomplete (counted as one failed verdict)")
    if args.chart:
        mode, panels = chart_panels(rolling)
        if panels:
            draw_chart(panels, args.chart, "Rolling stop of one of two backends behind HAProxy "
                       f"({mode}), {args.rate} req/s: kill -15 against gracestop")
            print(f"chart: {args.chart} (HAProxy {mode})")
        else:
            print("chart: not written (no kill -15 and gracestop rolling-stop results)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(
            header=header, supervisor=sup, stopping=stop, rolling=rolling, errors=errors,
            passed=t.passed, failed=t.failed), indent=1, default=str))
    print(f"verdicts: {t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
