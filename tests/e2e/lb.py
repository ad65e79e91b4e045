#!/usr/bin/env python3
"""End-to-end harness: two JVM backends behind a real HAProxy, under constant load,
while one backend is stopped. Standard library only; every address is 127.0.0.1.

    python3 tests/e2e/lb.py rolling --gracestop BIN --strategy {kill-15,stop,run}
        --haproxy {noretry,default} [--rate 100] [--seconds 15] [--json OUT.json]
    python3 tests/e2e/lb.py kubelet --gracestop BIN --app {well-behaved,stubborn}
        [--grace 10] [--rate 100] [--json OUT.json]

The pieces (compile_backend, Backend, HAProxy, Load, rolling, kubelet) are importable.

rolling. Backends b1 and b2 (tests/e2e/Backend.java, compiled with javac into a cache
directory: a 100 ms /work, a /health that answers 503 after POST /deregister, a graceful
JVM shutdown hook, exit 143) sit behind HAProxy (`check inter 300 fall 2 rise 2` against
/health; `noretry`: `retries 0` and no redispatch; `default`: HAProxy's own defaults,
retries 3 without redispatch). Once HAProxy reports both UP, a load generator sends GET
/work at a constant rate, each request on a new connection with a timeout, and records
every one: send time, outcome (ok, http_NNN, error, timeout) and latency. At 30% of the
run b2 is stopped:
  kill-15  SIGTERM to the JVM (the control: HAProxy keeps sending until its checks fail);
  stop     gracestop stop --pid JVM --deregister-url .../deregister --drain 2s --wait 30;
  run      b2 was started as `gracestop run --deregister-url ... --drain 2s --wait 30
           --remap-exit 143=0 -- java ...`, and gracestop gets SIGTERM.
The drain, 2 s, is over twice HAProxy's detection time (inter 300 ms x fall 2, plus up to
one interval before the first failing check). stop_seconds runs from the stop action until
the target is gone (the JVM, and gracestop too where it is involved). The load goes on
until `--seconds`, and at least 3 s after the stop is done.

kubelet. A kubelet's order for a pod with terminationGracePeriodSeconds G, simulated:
b2 is `unshare --pid --fork --mount-proc --kill-child -- gracestop run --deadline
G-P --wait 30 --remap-exit 143=0 -- java ...`, so gracestop is PID 1 of its own PID
namespace. Under load, at T0 the test runs the preStop hook `gracestop drain
--deregister-url ... --deregister-timeout 1s --deregister-retries 0 --drain 2s --deadline P`
(P = 4 s, the budget given to the hook), then sends SIGTERM to PID 1 (its host PID, pinned
with a pidfd), then SIGKILLs it at T0 + G if it still runs: the kernel then kills the whole
namespace. The grace period counts from before the hook (as Kubernetes counts it), so the
app's own --deadline is what is left of G after the hook's budget (G - P = 6 s: wait cut
from 30 s to 5 s, 1 s kept for SIGKILL). The hook's short deregistration timeout matters:
--deadline weighs the deregistration's worst case ((timeout + 0.25 s) x attempts, 16 s with
the defaults) and shortens the drain first, so with the defaults a 4 s budget would cut
the drain to nothing. A well-behaved app finishes its cleanup and exits 143 (gracestop
exits 0); a stubborn one hangs in its shutdown hook, and gracestop's --deadline cuts its
--wait so that its own SIGKILL lands before the outer one.

Safety: every process is started here, pinned with a pidfd at once, and signalled only
through that pidfd; everything still running at the end is SIGKILLed and reaped in a
finally. Backends and HAProxy get PR_SET_PDEATHSIG (SIGKILL) and the JVMs halt after
--lifetime seconds, so nothing outlives a killed harness. Every wait is bounded.

Exit status: 0 when the scenario ran (whatever it lost: judging is the caller's job), 1
when it could not run, 77 when a tool (java, javac, haproxy, unshare) is missing, 78 when
the machine refuses the kubelet simulation (not root, or PID namespaces not allowed).
"""

import argparse
import concurrent.futures
import ctypes
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_SOURCE = os.path.join(HERE, "Backend.java")
# Small, quick-starting JVMs: the machine has two cores and runs HAProxy and the load too.
JAVA_OPTS = ["-XX:+UseSerialGC", "-Xmx64m", "-Xss512k", "-XX:TieredStopAtLevel=1"]
LIFETIME_S = 120  # the JVMs' safety net, beyond the load's own length
DRAIN = "2s"  # > inter 300 ms x fall 2 (+ one interval of phase), with margin
REQUEST_TIMEOUT_S = 5.0  # > HAProxy's 3 retries of a refused connection (1 s apart)
EXIT_MISSING_TOOL = 77
EXIT_REFUSED = 78


class Missing(Exception):
    """A tool the scenario needs is not installed."""


class Refused(Exception):
    """The machine does not allow the scenario (not root, PID namespaces refused)."""


class HarnessError(Exception):
    """The scenario could not be set up or run."""


def require(tool):
    # haproxy lives in /usr/sbin, which a user's PATH may lack.
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        raise Missing(f"{tool} is not installed")
    return path


def now():
    return time.monotonic()


# ---------------------------------------------------------------------------
# processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: one async-signal-safe syscall.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Proc:
    """A process started here, pinned with a pidfd right away; stdout and stderr to files."""

    def __init__(self, name, argv, out_path, err_path=None, die_with_parent=True):
        self.name = name
        self.argv = argv
        self.out_path = out_path
        self.err_path = err_path or out_path
        out = open(out_path, "ab")
        err = open(self.err_path, "ab") if err_path else None
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err if err else subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        finally:
            out.close()
            if err:
                err.close()
        self.pid = self.popen.pid
        self.pidfd = os.pidfd_open(self.pid)  # our unreaped child: cannot be recycled yet

    def signal(self, sig):
        """Sends sig through the pidfd; False when the process has already exited."""
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
            return True
        except ProcessLookupError:
            return False

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        """The exit code, or None when it still runs after timeout seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        """SIGKILL if still running, reap, release the pidfd. Idempotent."""
        if self.pidfd is None:
            return
        if self.popen.poll() is None:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        os.close(self.pidfd)
        self.pidfd = None

    def output(self, limit=200):
        return tail(self.out_path, limit)

    def errors(self, limit=200):
        return tail(self.err_path, limit)


def tail(path, limit):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-limit:]
    except OSError:
        return []


def pidfd_wait(pidfd, timeout):
    """True once the process behind pidfd has exited (zombie included), within timeout s."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def free_port():
    """A port free on 127.0.0.1 right now (the caller retries if it is taken meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# the backend

def compile_backend(cache_dir):
    """Compiles Backend.java once per source version into cache_dir; returns the class dir."""
    require("java")
    javac = require("javac")
    with open(JAVA_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    classes = os.path.join(cache_dir, f"backend-{digest}")
    if os.path.exists(os.path.join(classes, "Backend.class")):
        return classes
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="backend-build-", dir=cache_dir)
    try:
        result = subprocess.run([javac, "--release", "17", "-d", staging, JAVA_SOURCE],
                                capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise HarnessError(f"javac failed:\n{result.stdout}{result.stderr}")
        try:
            os.rename(staging, classes)
        except OSError:
            # Another run compiled the same source meanwhile: use theirs.
            if not os.path.exists(os.path.join(classes, "Backend.class")):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return classes


def java_argv(classes, ready, port=0, stubborn=False, lifetime=LIFETIME_S):
    argv = [require("java"), *JAVA_OPTS, "-cp", classes, "Backend", "--port", str(port),
            "--ready", ready, "--lifetime", str(int(lifetime))]
    if stubborn:
        argv.append("--stubborn")
    return argv


class Backend:
    """One Backend.java JVM, possibly behind a wrapper (gracestop run, unshare ...).

    wrapper(port) -> argv prefix, or None for a plain JVM; port 0 lets the JVM pick (only
    without a wrapper: a wrapper needs the port for its --deregister-url)."""

    def __init__(self, name, classes, workdir, wrapper=None, stubborn=False, lifetime=LIFETIME_S,
                 attempts=3):
        self.name = name
        self.proc = None
        last = None
        ready = os.path.join(workdir, f"{name}.ready")
        for attempt in range(attempts):
            port = free_port() if wrapper else 0
            if os.path.exists(ready):
                os.unlink(ready)
            argv = (wrapper(port) if wrapper else []) + java_argv(classes, ready, port, stubborn, lifetime)
            proc = Proc(name, argv, os.path.join(workdir, f"{name}.out"),
                        os.path.join(workdir, f"{name}.err"))
            try:
                self.port, self.jvm_pid = wait_ready(ready, proc, timeout=30)
                self.proc = proc
                self.wrapped = wrapper is not None
                return
            except HarnessError as error:
                last = error
                proc.close()  # a port taken meanwhile: try another
        raise HarnessError(f"backend {name} did not start after {attempts} attempts: {last}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        if self.proc:
            self.proc.close()


def wait_ready(path, proc, timeout):
    """(port, pid) from the backend's ready file, once it exists; bounded."""
    deadline = now() + timeout
    while now() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                port, pid = f.read().split()
            return int(port), int(pid)
        if not proc.running():
            raise HarnessError(f"{proc.name} exited with {proc.popen.returncode} before it was ready: "
                               + " | ".join(proc.output(20) + proc.errors(20)))
        time.sleep(0.02)
    raise HarnessError(f"{proc.name} not ready after {timeout}s")


# ---------------------------------------------------------------------------
# HAProxy

HAPROXY_MODES = {
    # No retry, no redispatch: every request HAProxy sends to a dying backend is lost.
    "noretry": "    retries 0\n    no option redispatch\n",
    # HAProxy's defaults: retries 3 (on the same server), no redispatch.
    "default": "",
}


class HAProxy:
    """A real haproxy in the foreground, config and stats socket in workdir."""

    def __init__(self, mode, servers, workdir, attempts=3):
        if mode not in HAPROXY_MODES:
            raise HarnessError(f"unknown HAProxy mode {mode}")
        binary = require("haproxy")
        self.socket_path = os.path.join(workdir, "haproxy.sock")
        self.proc = None
        last = None
        for attempt in range(attempts):
            self.port = free_port()
            config = os.path.join(workdir, "haproxy.cfg")
            with open(config, "w") as f:
                f.write(self.config(mode, servers))
            check = subprocess.run([binary, "-c", "-f", config], capture_output=True, text=True, timeout=30)
            if check.returncode != 0:
                raise HarnessError(f"haproxy -c refused the config:\n{check.stdout}{check.stderr}")
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)
            proc = Proc("haproxy", [binary, "-db", "-f", config], os.path.join(workdir, "haproxy.log"))
            try:
                self.wait_socket(proc, timeout=10)
                self.proc = proc
                return
            except HarnessError as error:
                last = error
                proc.close()  # the frontend port was taken meanwhile: try another
        raise HarnessError(f"haproxy did not start after {attempts} attempts: {last}")

    def config(self, mode, servers):
        lines = "".join(
            f"    server {name} 127.0.0.1:{port} check inter 300 fall 2 rise 2\n" for name, port in servers)
        return (
            "global\n"
            f"    stats socket {self.socket_path} mode 600 level admin\n"
            "    maxconn 4000\n"
            "defaults\n"
            "    mode http\n"
            "    timeout connect 2s\n"
            "    timeout client 10s\n"
            "    timeout server 10s\n"
            f"{HAPROXY_MODES[mode]}"
            "frontend fe\n"
            f"    bind 127.0.0.1:{self.port}\n"
            "    default_backend be\n"
            "backend be\n"
            "    balance roundrobin\n"
            "    option httpchk GET /health\n"
            f"{lines}"
        )

    def wait_socket(self, proc, timeout):
        deadline = now() + timeout
        while now() < deadline:
            if not proc.running():
                raise HarnessError("haproxy exited: " + " | ".join(proc.output(20)))
            try:
                self.stats(proc_check=False)
                return
            except OSError:
                time.sleep(0.05)
        raise HarnessError(f"haproxy's stats socket did not answer within {timeout}s")

    def stats(self, proc_check=True):
        """{server name: row} of backend `be`, from `show stat` on the stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(self.socket_path)
            s.sendall(b"show stat\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        text = b"".join(chunks).decode(errors="replace").splitlines()
        if not text or not text[0].startswith("# "):
            raise OSError(f"unexpected stats answer: {text[:2]}")
        header = text[0][2:].split(",")
        rows = {}
        for line in text[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "be" and row.get("svname") not in ("BACKEND", None):
                rows[row["svname"]] = row
        return rows

    def wait_up(self, names, timeout=20):
        """Until every server in names is UP after a passed check (L7OK); bounded."""
        deadline = now() + timeout
        rows = {}
        while now() < deadline:
            rows = self.stats()
            if all(rows.get(n, {}).get("status") == "UP" and rows[n].get("check_status") == "L7OK"
                   for n in names):
                return
            time.sleep(0.05)
        raise HarnessError(f"servers not UP within {timeout}s: "
                           + str({n: (r.get("status"), r.get("check_status")) for n, r in rows.items()}))

    def close(self):
        if self.proc:
            self.proc.close()


class StatusWatch:
    """Records HAProxy's status of one server over time: [[t_s, status], ...] on changes."""

    def __init__(self, haproxy, server, t0):
        self.haproxy, self.server, self.t0 = haproxy, server, t0
        self.changes = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        last = None
        while not self.stop_event.wait(0.05):
            try:
                status = self.haproxy.stats().get(self.server, {}).get("status")
            except OSError:
                continue
            if status != last:
                self.changes.append([round(now() - self.t0, 3), status])
                last = status

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=5)
        return self.changes


# ---------------------------------------------------------------------------
# load

def request_once(port, timeout):
    """One GET /work on a new connection: (outcome, latency_ms)."""
    started = now()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/work", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        outcome = "ok" if 200 <= response.status < 300 else f"http_{response.status}"
    except TimeoutError:  # socket.timeout
        outcome = "timeout"
    except (OSError, http.client.HTTPException):
        outcome = "error"
    finally:
        conn.close()
    return outcome, (now() - started) * 1000


class Load:
    """Constant-rate GET /work against port until stop(); every request recorded.

    A scheduler thread hands request i to a thread pool at t0 + i/rate; the record keeps
    the actual send time, so a late send (an overloaded machine) shows in the timeline.
    """

    def __init__(self, port, rate, timeout=REQUEST_TIMEOUT_S, max_seconds=120):
        self.port, self.rate, self.timeout, self.max_seconds = port, rate, timeout, max_seconds
        self.records = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(512, int(rate * (timeout + 1))))
        self.max_lag = 0.0
        self.t0 = None
        self.scheduler = None

    def start(self):
        self.t0 = now()
        self.scheduler = threading.Thread(target=self._schedule, daemon=True)
        self.scheduler.start()
        return self.t0

    def _schedule(self):
        i = 0
        while not self.stop_event.is_set():
            due = self.t0 + i / self.rate
            if due - self.t0 > self.max_seconds:
                break
            delay = due - now()
            if delay > 0 and self.stop_event.wait(delay):
                break
            self.max_lag = max(self.max_lag, now() - due)
            self.pool.submit(self._one)
            i += 1

    def _one(self):
        sent = now() - self.t0
        outcome, latency = request_once(self.port, self.timeout)
        with self.lock:
            self.records.append([round(sent, 4), outcome, round(latency, 1)])

    def stop(self):
        """Stops sending, waits for the requests in flight (each bounded by its timeout)."""
        self.stop_event.set()
        self.scheduler.join(timeout=10)
        self.pool.shutdown(wait=True)
        with self.lock:
            return sorted(self.records)


def summarize(timeline, stop_started_s=None):
    counts = {"requests": len(timeline), "ok": 0, "non2xx": 0, "conn_errors": 0, "timeouts": 0}
    for _, outcome, _ in timeline:
        if outcome == "ok":
            counts["ok"] += 1
        elif outcome.startswith("http_"):
            counts["non2xx"] += 1
        elif outcome == "timeout":
            counts["timeouts"] += 1
        else:
            counts["conn_errors"] += 1
    counts["failed"] = counts["non2xx"] + counts["conn_errors"] + counts["timeouts"]
    if stop_started_s is not None:
        counts["failed_before_stop"] = sum(
            1 for t, outcome, _ in timeline if outcome != "ok" and t < stop_started_s)
    return counts


def wait_until(deadline):
    delay = deadline - now()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------------------
# scenarios

def _workdir(keep):
    path = tempfile.mkdtemp(prefix="gracestop-e2e-")
    if keep:
        print(f"lb.py: logs and configuration kept in {path}", file=sys.stderr)
    return path


def _log_lines(path, limit=60):
    return tail(path, limit)


def rolling(gracestop, strategy, haproxy_mode, rate=100, seconds=15.0, cache_dir=None, keep=False,
            drain=DRAIN):
    """Runs one rolling-stop scenario; returns the result dict (see the module doc).

    drain is gracestop's --drain (stop, run); shorter than HAProxy's detection, it loses."""
    if strategy not in ("kill-15", "stop", "run"):
        raise HarnessError(f"unknown strategy {strategy}")
    gracestop = os.path.abspath(gracestop)
    classes = compile_backend(cache_dir or default_cache())
    require("haproxy")
    workdir = _workdir(keep)
    opened = []
    try:
        lifetime = seconds + LIFETIME_S
        survivor = Backend("b1", classes, workdir, lifetime=lifetime)
        opened.append(survivor)

        def under_gracestop(port):
            return [gracestop, "run", "--log-format", "json",
                    "--deregister-url", f"http://127.0.0.1:{port}/deregister",
                    "--drain", drain, "--wait", "30", "--remap-exit", "143=0", "--"]

        target = Backend("b2", classes, workdir, wrapper=under_gracestop if strategy == "run" else None,
                         lifetime=lifetime)
        opened.append(target)
        haproxy = HAProxy(haproxy_mode, [("b1", survivor.port), ("b2", target.port)], workdir)
        opened.append(haproxy)
        haproxy.wait_up(["b1", "b2"])

        jvm_fd = _pin_jvm(target)
        try:
            load = Load(haproxy.port, rate, max_seconds=seconds + 60)
            t0 = load.start()
            watch = StatusWatch(haproxy, "b2", t0)
            try:
                wait_until(t0 + max(2.0, 0.3 * seconds))
                result = _stop(strategy, gracestop, target, jvm_fd, workdir, t0, drain)
                wait_until(max(t0 + seconds, t0 + result["stop_done_s"] + 3.0))
            finally:
                timeline = load.stop()
                changes = watch.stop()
        finally:
            os.close(jvm_fd)
        result.update({"strategy": strategy, "haproxy": haproxy_mode, "rate": rate, "drain": drain,
                       "load_seconds": round(timeline[-1][0], 3) if timeline else 0.0,
                       "max_send_lag_ms": round(load.max_lag * 1000, 1),
                       "haproxy_b2_status": changes,
                       "target_log": target.proc.output(40)})
        result.update(summarize(timeline, result["stop_started_s"]))
        result["timeline"] = timeline
        return result
    finally:
        for item in reversed(opened):
            item.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _pin_jvm(target):
    """A pidfd on the target's JVM, checked once pinned: our child, or gracestop's under run.
    Only waited on, never signalled."""
    fd = os.pidfd_open(target.jvm_pid)
    parent = target.proc.pid if target.wrapped else os.getpid()
    with open(f"/proc/{target.jvm_pid}/status") as f:
        ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
    if ppid != parent:
        os.close(fd)
        raise HarnessError(f"PID {target.jvm_pid} is not the backend's JVM (parent {ppid}, not {parent})")
    return fd


def _stop(strategy, gracestop, target, jvm_fd, workdir, t0, drain):
    """Stops target by strategy; the timings and exit codes."""
    gracestop_log = None
    exit_codes = {}
    started = now()
    if strategy == "kill-15":
        target.proc.signal(signal.SIGTERM)
        exit_codes["jvm"] = target.proc.wait(timeout=60)
    elif strategy == "stop":
        gracestop_log = os.path.join(workdir, "gracestop-stop.log")
        stopper = Proc("gracestop stop", [
            gracestop, "stop", "--log-format", "json", "--pid", str(target.jvm_pid),
            "--deregister-url", f"{target.url}/deregister", "--drain", drain, "--wait", "30"],
            gracestop_log, die_with_parent=False)
        try:
            exit_codes["gracestop"] = stopper.wait(timeout=60)
        finally:
            stopper.close()
        exit_codes["jvm"] = target.proc.wait(timeout=30)
    else:  # run: gracestop is the target's process, the JVM its child
        gracestop_log = target.proc.err_path
        target.proc.signal(signal.SIGTERM)
        exit_codes["gracestop"] = target.proc.wait(timeout=60)
    jvm_gone = pidfd_wait(jvm_fd, timeout=5)
    done = now()
    if not jvm_gone:
        raise HarnessError(f"the JVM {target.jvm_pid} still runs after the stop ({exit_codes})")
    result = {
        "stop_seconds": round(done - started, 3),
        "stop_started_s": round(started - t0, 3),
        "stop_done_s": round(done - t0, 3),
        "exit_codes": exit_codes,
    }
    if gracestop_log:
        result["gracestop_log"] = _log_lines(gracestop_log)
    return result


def _namespace_init(unshare_proc, timeout=10):
    """Host PID of unshare's child, PID 1 of the new namespace, pinned: (pid, pidfd)."""
    deadline = now() + timeout
    while now() < deadline:
        try:
            with open(f"/proc/{unshare_proc.pid}/task/{unshare_proc.pid}/children") as f:
                children = f.read().split()
        except OSError:
            children = []
        if children:
            pid = int(children[0])
            fd = os.pidfd_open(pid)
            try:
                # Pinned first, then checked: still unshare's child, and PID 1 inside.
                with open(f"/proc/{pid}/status") as f:
                    status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
                if int(status["PPid"]) == unshare_proc.pid and status["NSpid"].split()[-1] == "1":
                    return pid, fd
            except (OSError, KeyError, ValueError):
                pass
            os.close(fd)
        if not unshare_proc.running():
            raise HarnessError("unshare exited: " + " | ".join(unshare_proc.output(20)))
        time.sleep(0.02)
    raise HarnessError("no PID 1 under unshare")


def kubelet(gracestop, app="well-behaved", grace=10.0, prestop_budget=4.0, rate=100, cache_dir=None,
            keep=False):
    """The kubelet's order against `gracestop run` as PID 1 of a PID namespace; the result dict."""
    if app not in ("well-behaved", "stubborn"):
        raise HarnessError(f"unknown app {app}")
    unshare = require("unshare")
    if os.geteuid() != 0:
        raise Refused("the kubelet simulation needs root (unshare --pid --mount-proc)")
    probe = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "--", "true"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        raise Refused(f"unshare --pid --fork --mount-proc is refused here: {probe.stderr.strip()}")
    gracestop = os.path.abspath(gracestop)
    classes = compile_backend(cache_dir or default_cache())
    require("haproxy")
    run_deadline = grace - prestop_budget
    workdir = _workdir(keep)
    opened = []
    pid1_fd = None
    try:
        survivor = Backend("b1", classes, workdir)
        opened.append(survivor)

        def pod(port):
            return [unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "--",
                    gracestop, "run", "--log-format", "json", "--deadline", f"{run_deadline:g}s",
                    "--wait", "30", "--remap-exit", "143=0", "--"]

        target = Backend("b2", classes, workdir, wrapper=pod, stubborn=(app == "stubborn"))
        opened.append(target)
        pid1, pid1_fd = _namespace_init(target.proc)
        haproxy = HAProxy("noretry", [("b1", survivor.port), ("b2", target.port)], workdir)
        opened.append(haproxy)
        haproxy.wait_up(["b1", "b2"])

        load = Load(haproxy.port, rate)
        t0 = load.start()
        watch = StatusWatch(haproxy, "b2", t0)
        outer_kill = False
        try:
            wait_until(t0 + 2.0)
            k0 = now()  # the kubelet starts the pod's termination: the grace period runs from here
            prestop_log = os.path.join(workdir, "prestop.log")
            hook = Proc("preStop", [gracestop, "drain", "--log-format", "json",
                                    "--deregister-url", f"{target.url}/deregister",
                                    "--deregister-timeout", "1s", "--deregister-retries", "0",
                                    "--drain", DRAIN, "--deadline", f"{prestop_budget:g}s"],
                        prestop_log, die_with_parent=False)
            try:
                hook_code = hook.wait(timeout=grace)
            finally:
                hook.close()
            hook_done = now()
            signal.pidfd_send_signal(pid1_fd, signal.SIGTERM)
            sigterm = now()
            if not pidfd_wait(pid1_fd, timeout=max(0.0, k0 + grace - now())):
                outer_kill = True
                signal.pidfd_send_signal(pid1_fd, signal.SIGKILL)
                pidfd_wait(pid1_fd, timeout=10)
            pid1_exit = now()
            unshare_code = target.proc.wait(timeout=10)
            wait_until(max(t0 + 10.0, pid1_exit + 3.0))
        finally:
            timeline = load.stop()
            changes = watch.stop()
        gracestop_log = _log_lines(target.proc.err_path)
        events = _events(gracestop_log)
        hook_events = _events(_log_lines(prestop_log))
        app_log = target.proc.output(40)
        result = {
            "case": "kubelet", "app": app, "haproxy": "noretry", "rate": rate,
            "grace_s": grace, "prestop_budget_s": prestop_budget, "run_deadline_s": run_deadline,
            "prestop_exit": hook_code,
            "prestop_s": round(hook_done - k0, 3),
            "sigterm_s": round(sigterm - k0, 3),
            "pid1_exit_s": round(pid1_exit - k0, 3),
            "outer_kill": outer_kill,
            "gracestop_exit": unshare_code,  # unshare --fork exits with its child's status
            # What --deadline left of the hook's drain and of gracestop's wait.
            "prestop_drain_ms": _planned(hook_events, "drain_ms"),
            "run_wait_ms": _planned(events, "wait_ms"),
            "gracestop_sigkill": any(e.get("phase") == "kill" and e.get("signal") == "SIGKILL"
                                     for e in events),
            "app_cleanup_complete": any("cleanup complete" in line for line in app_log),
            "stop_started_s": round(k0 - t0, 3),
            "stop_done_s": round(pid1_exit - t0, 3),
            "stop_seconds": round(pid1_exit - k0, 3),
            "load_seconds": round(timeline[-1][0], 3) if timeline else 0.0,
            "max_send_lag_ms": round(load.max_lag * 1000, 1),
            "haproxy_b2_status": changes,
            "prestop_log": _log_lines(prestop_log),
            "gracestop_log": gracestop_log,
            "target_log": app_log,
        }
        result.update(summarize(timeline, result["stop_started_s"]))
        result["timeline"] = timeline
        return result
    finally:
        if pid1_fd is not None:
            try:
                signal.pidfd_send_signal(pid1_fd, signal.SIGKILL)  # the namespace, if anything is left
            except ProcessLookupError:
                pass
            os.close(pid1_fd)
        for item in reversed(opened):
            item.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _events(lines):
    """The JSON events among gracestop's log lines."""
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def _planned(events, field):
    """field of the plan after --deadline: the deadline_exceeded event's, else the plan's."""
    for name in ("deadline_exceeded", "planned"):
        for event in events:
            if event.get("event") == name and field in event:
                return event[field]
    return None


def default_cache():
    return os.environ.get("GRACESTOP_E2E_CACHE") or os.path.join(tempfile.gettempdir(), "gracestop-e2e-cache")


def human(result):
    what = (f"{result['strategy']} / haproxy {result['haproxy']}" if "strategy" in result
            else f"kubelet {result['app']} (grace {result['grace_s']:g}s)")
    line = (f"{what}: {result['requests']} requests, {result['ok']} ok, {result['failed']} failed "
            f"({result['non2xx']} non-2xx, {result['conn_errors']} connection errors, {result['timeouts']} timeouts); "
            f"stop {result['stop_seconds']:.3f}s (from +{result['stop_started_s']:.2f}s to +{result['stop_done_s']:.2f}s)")
    if "pid1_exit_s" in result:
        line += (f"; PID 1 exited {result['pid1_exit_s']:.2f}s into the grace period"
                 f"{' (outer SIGKILL!)' if result['outer_kill'] else ''}")
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    roll = sub.add_parser("rolling", help="stop one of two backends under load")
    roll.add_argument("--strategy", choices=["kill-15", "stop", "run"], required=True)
    roll.add_argument("--haproxy", choices=sorted(HAPROXY_MODES), required=True)
    roll.add_argument("--seconds", type=float, default=15.0)
    roll.add_argument("--drain", default=DRAIN, help=f"gracestop's --drain (default {DRAIN})")
    kube = sub.add_parser("kubelet", help="a kubelet's termination order, gracestop as PID 1")
    kube.add_argument("--app", choices=["well-behaved", "stubborn"], required=True)
    kube.add_argument("--grace", type=float, default=10.0, help="terminationGracePeriodSeconds")
    for p in (roll, kube):
        p.add_argument("--gracestop", required=True)
        p.add_argument("--rate", type=float, default=100.0)
        p.add_argument("--json", help="write the result here")
        p.add_argument("--cache", help="where the compiled backend is kept")
        p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    try:
        if args.command == "rolling":
            result = rolling(args.gracestop, args.strategy, args.haproxy, args.rate, args.seconds,
                             args.cache, args.keep, args.drain)
        else:
            result = kubelet(args.gracestop, args.app, args.grace, rate=args.rate, cache_dir=args.cache,
                             keep=args.keep)
    except Missing as missing:
        print(f"lb.py: skipped: {missing}", file=sys.stderr)
        return EXIT_MISSING_TOOL
    except Refused as refused:
        print(f"lb.py: skipped: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    except HarnessError as error:
        print(f"lb.py: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    print(human(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
