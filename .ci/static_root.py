#!/usr/bin/env python3
"""The static binary's checks inside an empty root; .ci/static runs it.

Runs as PID 1 of fresh PID, mount and network namespaces
(`unshare --pid --mount --net --fork --kill-child`), so that every process it
starts dies with the namespace whatever happens, the proc mount never shows
on the host, and no packet can leave the machine: the network namespace has
only `lo`, which this script brings up. The empty root (made by .ci/static)
holds the binary at /gracestop, /etc/hosts mapping registry.gracestop.test to
127.0.0.1, an empty /tmp and an empty /proc, where this script mounts the
namespace's procfs. It holds no libc, no shell, no other program: every
gracestop command is started from out here, `chroot ROOT /gracestop ...`, and
the background process of the `stop` checks is tracked from here too.

There is no /etc/resolv.conf and no /etc/nsswitch.conf in the root, as in a
scratch image: glibc then asks DNS at 127.0.0.1:53 first (nothing answers in
this namespace, so DNS is "unavailable") and falls back to /etc/hosts.

The registry is tests/fixtures/registry.py, outside the chroot, on 127.0.0.1
of the same namespace. Each check prints PASS or FAIL with the reason; the
counts go to --counts ("PASSED FAILED"), read by .ci/static. Exit 1 when
anything failed.
"""
import argparse
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HOST = "registry.gracestop.test"
UNKNOWN_HOST = "nowhere.gracestop.test"

parser = argparse.ArgumentParser()
parser.add_argument("--root", required=True, type=Path)
parser.add_argument("--work", required=True, type=Path, help="logs and handshake files, outside the root")
parser.add_argument("--registry", required=True, type=Path, help="tests/fixtures/registry.py")
parser.add_argument("--version", required=True, help="the expected `gracestop --version` line")
parser.add_argument("--counts", required=True, type=Path)
args = parser.parse_args()

# The environment of every command in the root: nothing inherited, so no
# HTTP_PROXY from the CI machine can redirect the host-name calls.
ENV = {"PATH": "/", "LANG": "C"}
# Looked up here, in the caller's PATH: ENV's is the root's.
CHROOT = shutil.which("chroot") or sys.exit("static_root.py: chroot is missing")
MOUNT = shutil.which("mount") or sys.exit("static_root.py: mount is missing")
UNSHARE = shutil.which("unshare") or sys.exit("static_root.py: unshare is missing")

# Every command's own timeout is also cut to what is left of this budget, so
# that the checks end (with FAIL lines) before .ci/static's outer timeout.
BUDGET_END = time.monotonic() + 100

passed = 0
failed = 0
started = []  # (Popen, pidfd) of every process this script started


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""), flush=True)


def spawn(argv, stdout, stderr):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=ENV)
    pidfd = os.pidfd_open(proc.pid)
    started.append((proc, pidfd))
    return proc, pidfd


def kill(proc, pidfd):
    """SIGKILL one of our own children through its pidfd, if it still runs."""
    if proc.poll() is None:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def gracestop(*argv, timeout=10.0):
    """Runs `chroot ROOT /gracestop ARGV...`; (exit code or None on timeout, stdout, stderr, seconds)."""
    start = time.monotonic()
    timeout = max(1.0, min(timeout, BUDGET_END - start))
    proc, pidfd = spawn([CHROOT, str(args.root), "/gracestop", *argv], subprocess.PIPE, subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        kill(proc, pidfd)
        out, err = proc.communicate(timeout=10)
        code = None
    return code, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - start


def show(text):
    """The last lines of a command's output, for a FAIL line."""
    lines = text.strip().splitlines()[-6:]
    return " | ".join(lines) if lines else "no output"


def wait_for(what, predicate, timeout):
    """Polls `predicate` every 10 ms for at most `timeout` seconds (a readiness handshake)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(f"no {what} within {timeout}s")


def registry_lines():
    try:
        return args.work.joinpath("registry.log").read_text().splitlines()
    except FileNotFoundError:
        return []


def requested(path):
    return [line for line in registry_lines() if f" {path} @" in line]


def proc_path(*parts):
    return args.root.joinpath("proc", *map(str, parts))


def alive(pid):
    """True while `pid` exists in this namespace and is not a zombie."""
    try:
        stat = proc_path(pid, "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid):
    try:
        return [int(p) for p in proc_path(pid, "task", pid, "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def lo_up():
    """`ip link set lo up`, without iproute2: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags, ifreq))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


# ---------------------------------------------------------------- the checks


def check_version():
    code, out, err, _ = gracestop("--version")
    report(code == 0 and out.strip() == args.version, "--version", f"exit {code}, {show(out + err)}")


def check_help():
    code, out, err, _ = gracestop("--help")
    ok = code == 0 and all(f"\n  {cmd} " in out for cmd in ("run", "stop", "drain"))
    report(ok, "--help lists run, stop and drain", f"exit {code}" if ok else f"exit {code}, {show(out + err)}")


def check_drain(port):
    url = f"http://{HOST}:{port}/deregister"
    code, out, err, took = gracestop("drain", "--deregister-url", url, "--drain", "1s")
    calls = requested("/deregister")
    ok = code == 0 and len(calls) == 1 and "-> 200" in err and took >= 1.0
    report(
        ok,
        f"drain --deregister-url {url} --drain 1s",
        f"exit {code}, {took:.2f}s, registry saw {calls}" + ("" if ok else f"; {show(err)}"),
    )


def check_unresolvable(port):
    url = f"http://{UNKNOWN_HOST}:{port}/unresolvable"
    code, out, err, _ = gracestop(
        "drain", "--deregister-url", url, "--deregister-retries", "0", "--deregister-timeout", "3s", "--drain", "0s"
    )
    warning = [line for line in err.splitlines() if "warning:" in line and UNKNOWN_HOST in line]
    ok = code == 0 and warning and "panicked" not in err and not requested("/unresolvable")
    report(ok, "drain with an unknown host name: a warning, exit 0", f"exit {code}, {show(err)}")

    code, out, err, _ = gracestop(
        "drain",
        "--deregister-url",
        url,
        "--deregister-retries",
        "0",
        "--deregister-timeout",
        "3s",
        "--deregister-strict",
        "--drain",
        "0s",
    )
    ok = code == 1 and "gracestop: error:" in err and "panicked" not in err
    name = "drain --deregister-strict with an unknown host name: an error, exit 1"
    report(ok, name, f"exit {code}, {show(err)}")


def check_run():
    code, out, err, _ = gracestop("run", "--", "/gracestop", "drain", "--drain", "0s")
    report(code == 0, "run -- /gracestop drain --drain 0s exits 0", f"exit {code}" if code == 0 else show(err))

    # The child's own exit status comes through: 2 is the child's usage error.
    code, out, err, _ = gracestop("run", "--", "/gracestop", "drain", "--no-such-flag")
    ok = code == 2 and "--no-such-flag" in err
    report(ok, "run passes through a child's exit 2 (its usage error)", f"exit {code}" if ok else show(err))

    # 3 is `stop` finding nothing to stop: a code `run` never makes itself.
    # The namespace is fresh, so the PID just below pid_max is free.
    free_pid = int(proc_path("sys", "kernel", "pid_max").read_text()) - 1
    code, out, err, _ = gracestop("run", "--", "/gracestop", "stop", "--pid", str(free_pid))
    ok = code == 3 and not alive(free_pid)
    name = f"run passes through a child's exit 3 (stop --pid {free_pid}: not running)"
    report(ok, name, f"exit {code}" if ok else show(err))

    # 127 is also chroot's own "cannot run /gracestop": the message tells them apart.
    code, out, err, _ = gracestop("run", "--", "/no-such-program")
    ok = code == 127 and err.startswith("gracestop") and "/no-such-program" in err
    report(ok, "run -- /no-such-program exits 127, said by gracestop", f"exit {code}, {show(err)}")


def start_run(log, run_flags, ready_also=lambda: True):
    """Starts `run [RUN_FLAGS] -- /gracestop drain --drain 60s` in the root, stderr to LOG.

    Returns (Popen, pidfd) once the child (the inner drain) logs that it waits
    and `ready_also()` holds; raises TimeoutError (the process is then left to
    the caller's `kill`) with what went wrong.
    """
    argv = [CHROOT, str(args.root), "/gracestop", "run", *run_flags, "--", "/gracestop", "drain", "--drain", "60s"]
    with open(log, "wb") as f:
        runner, runner_fd = spawn(argv, subprocess.DEVNULL, f)

    def ready():
        return runner.poll() is not None or ("drain waiting" in log.read_text() and ready_also())

    try:
        wait_for("'drain waiting' line", ready, 10)
        if runner.poll() is not None:
            raise TimeoutError(f"run exited {runner.returncode} before its child was ready")
    except TimeoutError as e:
        kill(runner, runner_fd)
        raise TimeoutError(f"{e}; {show(log.read_text())}") from None
    return runner, runner_fd


def reap(runner):
    """The exit code of our `run`, which should be gone or going; None after 10 s."""
    try:
        return runner.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def check_stop(name, run_flags, stop_flags, registry_path=None):
    """`stop --pid` of a `run` started in the root: stopped, its child too, everyone exits 0."""
    log = args.work.joinpath(f"run-{len(started)}.log")
    try:
        runner, runner_fd = start_run(log, run_flags)
    except TimeoutError as e:
        report(False, name, str(e))
        return
    try:
        inner = children(runner.pid)
        code, out, err, took = gracestop("stop", "--pid", str(runner.pid), "--wait", "10", *stop_flags, timeout=20)
        gone = not alive(runner.pid) and all(not alive(pid) for pid in inner)
        run_code = reap(runner)
        calls = requested(registry_path) if registry_path else []
        ok = code == 0 and gone and run_code == 0 and inner and (registry_path is None or len(calls) == 1)
        detail = (
            f"stop exit {code} after {took * 1000:.0f} ms, run {runner.pid} and child {inner} gone: {gone}, "
            f"run exit {run_code}"
        )
        if registry_path:
            detail += f", registry saw {calls}"
        if not ok:
            detail += f"; stop: {show(err)}; run: {show(log.read_text())}"
        report(ok, name, detail)
    finally:
        kill(runner, runner_fd)


def check_pidfile():
    """`run --pidfile` in the root, a foreign pidfile refused, the right one stopped."""
    log = args.work.joinpath("run-pidfile.log")
    app_pid = args.root / "tmp" / "app.pid"
    foreign = args.root / "tmp" / "foreign.pid"
    try:
        runner, runner_fd = start_run(log, ["--pidfile", "/tmp/app.pid"], app_pid.exists)
    except TimeoutError as e:
        report(False, "run --pidfile /tmp/app.pid", str(e))
        return
    try:
        written = app_pid.read_text().strip()
        ok = written == str(runner.pid)
        report(ok, "run --pidfile /tmp/app.pid writes its PID", f"{written!r}, run is {runner.pid}")

        # A pidfile that user 54321 (no such user: there is no /etc/passwd
        # here) controls may not aim gracestop at root's process.
        foreign.write_text(f"{runner.pid}\n")
        os.chown(foreign, 54321, 54321)
        code, out, err, _ = gracestop("stop", "--pidfile", "/tmp/foreign.pid", "--wait", "10")
        ok = code == 1 and "uid 54321" in err and "panicked" not in err and alive(runner.pid)
        name = "stop --pidfile of another user, naming root's process: refused, exit 1"
        report(ok, name, f"exit {code}, {show(err)}")

        code, out, err, took = gracestop("stop", "--pidfile", "/tmp/app.pid", "--wait", "10", timeout=20)
        run_code = reap(runner)
        ok = code == 0 and run_code == 0 and not app_pid.exists()
        detail = f"stop exit {code} after {took * 1000:.0f} ms, run exit {run_code}, pidfile left: {app_pid.exists()}"
        if not ok:
            detail += f"; stop: {show(err)}; run: {show(log.read_text())}"
        report(ok, "stop --pidfile /tmp/app.pid: stopped, exit 0, pidfile removed", detail)
    finally:
        kill(runner, runner_fd)


def check_pid1(port):
    """A container's entrypoint: `run` as PID 1 of its own PID namespace, in the root, and SIGTERM from outside."""
    name = "run as PID 1 (the container case), SIGTERM from outside: deregisters by host name, exits 0"
    log = args.work.joinpath("run-pid1.log")
    path = "/pid1-deregister"
    # A PID namespace of its own, with its own procfs on the root's /proc (in
    # a mount namespace of its own too: ours keeps its procfs), as a
    # container runtime does.
    argv = [UNSHARE, "--pid", "--mount", "--fork", "--kill-child", f"--mount-proc={args.root / 'proc'}"]
    argv += [CHROOT, str(args.root), "/gracestop", "run", "--deregister-url", f"http://{HOST}:{port}{path}"]
    argv += ["--drain", "0s", "--", "/gracestop", "drain", "--drain", "60s"]
    with open(log, "wb") as f:
        outer, outer_fd = spawn(argv, subprocess.DEVNULL, f)
    pid1_fd = None
    try:
        try:
            wait_for("'drain waiting' line", lambda: outer.poll() is not None or "drain waiting" in log.read_text(), 10)
            if outer.poll() is not None:
                raise TimeoutError(f"unshare exited {outer.returncode} before the child was ready")
        except TimeoutError as e:
            report(False, name, f"{e}; {show(log.read_text())}")
            return
        # unshare's one child is the namespace's PID 1: chroot, now gracestop.
        (pid1,) = children(outer.pid)
        pid1_fd = os.pidfd_open(pid1)
        comm = proc_path(pid1, "comm").read_text().strip()
        if comm != "gracestop":
            report(False, name, f"unshare's child {pid1} is {comm!r}, not gracestop")
            return
        status = proc_path(pid1, "status").read_text()
        nspid = [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")]
        signal.pidfd_send_signal(pid1_fd, signal.SIGTERM)
        code = reap(outer)
        calls = requested(path)
        ok = code == 0 and nspid and nspid[0][-1] == "1" and len(calls) == 1
        pids = " ".join(nspid[0]) if nspid else "?"
        detail = f"PID {pid1} here, NSpid {pids}, exit {code}, registry saw {calls}"
        report(ok, name, detail if ok else f"{detail}; {show(log.read_text())}")
    finally:
        if pid1_fd is not None:
            os.close(pid1_fd)
        kill(outer, outer_fd)


def main():
    if os.getpid() != 1:
        sys.exit("static_root.py: must be PID 1 of its own namespaces (run it under unshare --pid --fork)")
    lo_up()
    subprocess.run([MOUNT, "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(args.root / "proc")], check=True)
    ready = args.work / "registry.port"
    registry, registry_fd = spawn(
        [sys.executable, str(args.registry), "--ready", str(ready), "--log", str(args.work / "registry.log")],
        subprocess.DEVNULL,
        None,
    )
    port = int(wait_for("registry port", lambda: ready.exists() and ready.read_text(), 10))

    check_version()
    check_help()
    check_drain(port)
    check_unresolvable(port)
    check_run()
    check_stop("stop --pid (run -- /gracestop drain --drain 60s) --wait 10", [], [])
    check_stop(
        f"stop --pid ... --deregister-url http://{HOST}:{port}/stop-deregister",
        [],
        ["--deregister-url", f"http://{HOST}:{port}/stop-deregister", "--drain", "0s"],
        "/stop-deregister",
    )
    check_stop(
        f"run --deregister-url http://{HOST}:{port}/run-deregister, stopped by stop --pid",
        ["--deregister-url", f"http://{HOST}:{port}/run-deregister", "--drain", "0s"],
        [],
        "/run-deregister",
    )
    check_pidfile()
    check_pid1(port)


try:
    main()
except Exception as e:  # a broken harness is a failure, not a pass
    report(False, "harness", f"{type(e).__name__}: {e}")
finally:
    for proc, pidfd in started:
        kill(proc, pidfd)
        os.close(pidfd)
    args.counts.write_text(f"{passed} {failed}\n")
sys.exit(1 if failed else 0)
