#!/usr/bin/env python3
"""End-to-end cases on real web servers: nginx under `gracestop run`, and
Debian's Tomcat 10 started by its own `catalina.sh` and stopped through its
CATALINA_PID, by gracestop and by catalina.sh itself.

One subcommand per case. Each prints one JSON line (`{"case": ..., "ok": ...,
"failed": [...], ...figures}`) and exits 1 when a check failed, 2 on a setup
error, 77 when a tool is missing (the Rust wrapper decides whether that is a
skip or, under GRACESTOP_CI, a failure).

Rules kept here: everything listens on 127.0.0.1 only; every wait is bounded
in time; every process started is signalled only by PID or pidfd, and killed
and reaped in a `finally`; the Tomcat JVM is adopted (we are a child
subreaper), and verified to be our child before we signal it.

Standard library only.
"""

import argparse
import ctypes
import grp
import hashlib
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

MISSING = 77
CASE_LIMIT_S = 90  # every case stays far below; the Rust wrapper allows 120
CATALINA_HOME = "/usr/share/tomcat10"
TOMCAT_CONF = CATALINA_HOME + "/etc"  # Debian's pristine copy of conf/


class Setup(Exception):
    """The case could not be set up: not a verdict on gracestop."""


class Missing(Exception):
    """A Debian tool the case needs is not installed."""


class Checks:
    """Collects the failed checks of a case, and its figures."""

    def __init__(self, case):
        self.case = case
        self.failed = []
        self.figures = {}

    def check(self, condition, message):
        if not condition:
            self.failed.append(message)
        return condition

    def report(self):
        ok = not self.failed
        line = {"case": self.case, "ok": ok, "failed": self.failed}
        line.update(self.figures)
        print(json.dumps(line, sort_keys=False), flush=True)
        return 0 if ok else 1


# -- processes ---------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid, starttime) of PID from /proc/PID/stat, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def children_of(ppid):
    """PIDs whose parent is PPID (a scan of /proc: bounded by the process count)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] == ppid:
                found.append(int(entry))
    return sorted(found)


def exited(pidfd):
    """Whether the process behind PIDFD has exited (the pidfd is readable)."""
    return bool(select.select([pidfd], [], [], 0)[0])


def pidfd_gone(pidfd):
    """Whether the process behind PIDFD is gone for good: exited and reaped or
    at least unsignallable (ESRCH)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return True
    return False


def kill_pidfd(pidfd):
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_exit(pidfd, timeout):
    """Waits up to TIMEOUT seconds for PIDFD's process to exit; returns whether it did."""
    return bool(select.select([pidfd], [], [], timeout)[0])


def stop_popen(proc):
    """Kills and reaps a Popen we started (by its PID: it is our unreaped child)."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def become_subreaper():
    """PR_SET_CHILD_SUBREAPER: orphans of our descendants (Tomcat's JVM once
    catalina.sh has returned) are reparented to us, so that we can verify the
    JVM is ours, reap it the moment it exits, and never lose track of it."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise Setup(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")


def free_port():
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path="/", timeout=1.0):
    """The status code of GET PATH on 127.0.0.1:PORT, or None if nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else None


def listening(port):
    """Whether anything listens on TCP PORT, read from /proc/net/tcp{,6}
    without connecting to it."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# -- nginx -------------------------------------------------------------------

BLOB_SIZE = 3 * 1024 * 1024  # 3 MiB
RATE = 1200 * 1024  # limit_rate 1200k: about 2.6 s for the whole file


def nginx_conf(prefix, port):
    user = ""
    if os.geteuid() == 0:
        # As root, nginx's workers would run as `nobody`, which cannot read our
        # 0700 temporary directory: keep them as the caller.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temps = "\n".join(
        f"    {kind}_temp_path {prefix}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 2;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
{temps}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/html;
        location = /ready {{ return 200 "ready\\n"; }}
        location / {{ limit_rate {RATE // 1024}k; }}
    }}
}}
"""


def nginx_case(gracestop, stop_signal):
    """nginx under `gracestop run [--signal QUIT]`: a rate-limited download
    is in progress when gracestop gets SIGTERM. Returns the Checks."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        raise Missing("nginx is not installed (apt-get install nginx)")
    checks = Checks(f"nginx-{stop_signal.lower()}")
    quit_ = stop_signal == "QUIT"
    prefix = tempfile.mkdtemp(prefix="gracestop-e2e-nginx-")
    gs = None
    pinned = {}  # pid -> (role, pidfd, start time)
    sock = None
    try:
        for sub in ("conf", "logs", "html", "temp"):
            os.mkdir(os.path.join(prefix, sub))
        blob = os.urandom(BLOB_SIZE)
        digest = hashlib.sha256(blob).hexdigest()
        with open(os.path.join(prefix, "html", "blob"), "wb") as f:
            f.write(blob)
        port = free_port()
        conf = os.path.join(prefix, "conf", "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(prefix, port))
        command = [gracestop, "run"]
        if quit_:
            command += ["--signal", "QUIT"]
        command += ["--", nginx, "-p", prefix + "/", "-e", prefix + "/logs/error.log",
                    "-g", "daemon off;", "-c", conf]
        checks.figures["command"] = " ".join(command[:4] if quit_ else command[:2]) + " -- nginx ..."
        gs_log = open(os.path.join(prefix, "gracestop.log"), "wb")
        gs = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=gs_log, stderr=gs_log)
        gs_log.close()
        gs_fd = os.pidfd_open(gs.pid)

        # Readiness: the master (gracestop's child) has 2 workers and the port answers.
        deadline = time.monotonic() + 15
        master, workers = None, []
        while True:
            if gs.poll() is not None:
                raise Setup(f"gracestop exited {gs.returncode} during start-up: "
                            f"{tail(prefix + '/gracestop.log')} {tail(prefix + '/logs/error.log')}")
            kids = children_of(gs.pid)
            master = kids[0] if len(kids) == 1 else None
            workers = children_of(master) if master else []
            if master and len(workers) == 2 and http_status(port, "/ready") == 200:
                break
            if time.monotonic() > deadline:
                raise Setup(f"nginx not ready in 15 s (master {master}, workers {workers}): "
                            f"{tail(prefix + '/logs/error.log')}")
            time.sleep(0.05)
        # Pin every nginx process, then check the pinned one is still the one we saw.
        for role, pid in [("master", master)] + [("worker", w) for w in workers]:
            fd = os.pidfd_open(pid)
            stat = proc_stat(pid)
            expected_parent = gs.pid if role == "master" else master
            if not stat or stat[1] != expected_parent or proc_comm(pid) != "nginx":
                os.close(fd)
                raise Setup(f"{role} {pid} changed before it was pinned")
            pinned[pid] = (role, fd, stat[2])
        checks.figures["master"] = master
        checks.figures["workers"] = workers

        # The download, read without blocking beside gracestop's pidfd, so the
        # order of "last byte read" and "gracestop exited" is observed.
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /blob HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        sock.setblocking(False)
        raw = bytearray()
        head_end = -1
        length = None
        t_start = time.monotonic()
        t_stop = t_complete = t_exit = t_eof = None
        received_at_stop = None
        reset = False
        eof = False
        deadline = t_start + 25
        while time.monotonic() < deadline and not (eof and t_exit is not None):
            watched = ([] if eof else [sock]) + ([] if t_exit is not None else [gs_fd])
            ready = select.select(watched, [], [], 0.5)[0]
            if sock in ready:
                # Drain the socket first: whatever nginx sent before it exited is
                # already in our receive queue by the time gracestop can exit.
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except BlockingIOError:
                        break
                    except ConnectionResetError:
                        reset, eof, t_eof = True, True, time.monotonic()
                        break
                    if not chunk:
                        eof, t_eof = True, time.monotonic()
                        break
                    raw += chunk
                if head_end < 0 and b"\r\n\r\n" in raw:
                    head_end = raw.index(b"\r\n\r\n") + 4
                    head = bytes(raw[:head_end]).decode("latin-1")
                    if not head.startswith("HTTP/1.1 200"):
                        raise Setup(f"download answered {head.splitlines()[0]!r}")
                    match = re.search(r"(?im)^content-length:\s*(\d+)", head)
                    length = int(match.group(1)) if match else None
                body_len = len(raw) - head_end if head_end >= 0 else 0
                if length is not None and body_len >= length and t_complete is None:
                    t_complete = time.monotonic()
                if t_stop is None and body_len > 0:
                    # The handshake: body bytes are flowing. Now stop.
                    received_at_stop = body_len
                    t_stop = time.monotonic()
                    signal.pidfd_send_signal(gs_fd, signal.SIGTERM)
            if gs_fd in ready and t_exit is None:
                t_exit = time.monotonic()
        if t_exit is None and wait_exit(gs_fd, max(0.0, deadline - time.monotonic())):
            t_exit = time.monotonic()
        code = gs.wait(timeout=5) if t_exit is not None else None

        body = bytes(raw[head_end:]) if head_end >= 0 else b""
        got_digest = hashlib.sha256(body).hexdigest()
        checks.figures.update({
            "file_bytes": BLOB_SIZE,
            "limit_rate_bytes_per_s": RATE,
            "content_length": length,
            "received_at_stop": received_at_stop,
            "received": len(body),
            "connection_reset": reset,
            "intact": got_digest == digest and len(body) == BLOB_SIZE,
            "gracestop_exit": code,
            "stop_to_last_byte_s": round(t_complete - t_stop, 3) if t_complete and t_stop else None,
            "stop_to_eof_s": round(t_eof - t_stop, 3) if t_eof and t_stop else None,
            "stop_to_gracestop_exit_s": round(t_exit - t_stop, 3) if t_exit and t_stop else None,
        })
        checks.check(t_stop is not None, "the download never started")
        checks.check(t_exit is not None, "gracestop did not exit within 25 s of the stop")
        checks.check(length == BLOB_SIZE, f"Content-Length {length}, expected {BLOB_SIZE}")
        checks.check(received_at_stop is not None and received_at_stop < BLOB_SIZE // 2,
                     f"the stop began late in the download ({received_at_stop} of {BLOB_SIZE} bytes)")
        if quit_:
            checks.check(got_digest == digest and len(body) == BLOB_SIZE,
                         f"the download was not intact: {len(body)} bytes, sha256 {got_digest}")
            checks.check(code == 0, f"gracestop exited {code}, expected 0 (nginx's graceful quit)")
            # Proof nginx did not just cut it: gracestop returned only after
            # the last byte arrived, i.e. it waited out the rest of the download.
            checks.check(t_complete is not None and t_exit is not None and t_complete <= t_exit,
                         "gracestop returned before the download completed")
            remaining = (BLOB_SIZE - (received_at_stop or 0)) / RATE
            checks.figures["remaining_at_stop_s_at_rate"] = round(remaining, 3)
            checks.check(t_exit is not None and t_stop is not None and t_exit - t_stop >= 0.5 * remaining,
                         f"gracestop returned {checks.figures['stop_to_gracestop_exit_s']} s after the stop, "
                         f"the download had about {remaining:.2f} s to go")
        else:
            # The control: nginx's fast shutdown (SIGTERM) cuts the download.
            checks.check(len(body) < BLOB_SIZE, "the download survived SIGTERM: the control proves nothing")
            checks.check(code is not None, "gracestop did not exit")
        # Every nginx process is gone once gracestop has returned.
        # Gone means: the pidfd says exited and reaped (ESRCH), and /proc has
        # no entry for that PID with that start time.
        left = [f"{role} {pid}" for pid, (role, fd, start) in pinned.items()
                if not (exited(fd) and pidfd_gone(fd))
                or (proc_stat(pid) or (None, None, None))[2] == start]
        checks.figures["nginx_left"] = left
        checks.check(not left, f"nginx processes left after gracestop exited: {left}")
        checks.figures["gracestop_log"] = tail(prefix + "/gracestop.log", 6)
        return checks
    finally:
        if sock is not None:
            sock.close()
        for role, fd, start in pinned.values():
            kill_pidfd(fd)
        if gs is not None:
            stop_popen(gs)
        for role, fd, start in pinned.values():
            os.close(fd)
        shutil.rmtree(prefix, ignore_errors=True)


# -- Tomcat ------------------------------------------------------------------


def tomcat_tools():
    catalina = CATALINA_HOME + "/bin/catalina.sh"
    if not os.access(catalina, os.X_OK) or not os.path.isdir(TOMCAT_CONF):
        raise Missing("Debian's Tomcat 10 is not installed (apt-get install tomcat10)")
    if shutil.which("java") is None:
        raise Missing("java is not installed (tomcat10 pulls a JRE in)")
    return catalina


SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- gracestop's e2e instance: Debian's server.xml, reduced to what the test needs,
     on 127.0.0.1 and free ports; no SecurityListener, which refuses root. -->
<Server port="{shutdown}" address="127.0.0.1" shutdown="SHUTDOWN">
  <Listener className="org.apache.catalina.startup.VersionLoggerListener" />
  <Listener className="org.apache.catalina.core.JreMemoryLeakPreventionListener" />
  <Listener className="org.apache.catalina.core.ThreadLocalLeakPreventionListener" />
  <Service name="Catalina">
    <Connector port="{http}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000" />
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" />
    </Engine>
  </Service>
</Server>
"""


class Tomcat:
    """A private CATALINA_BASE under a temporary directory, run by Debian's
    catalina.sh (CATALINA_HOME=/usr/share/tomcat10) with a CATALINA_PID."""

    def __init__(self, catalina):
        self.catalina = catalina
        self.base = tempfile.mkdtemp(prefix="gracestop-e2e-tomcat-")
        for sub in ("conf", "logs", "temp", "webapps/ROOT", "work"):
            os.makedirs(os.path.join(self.base, sub))
        for name in os.listdir(TOMCAT_CONF):
            src = os.path.join(TOMCAT_CONF, name)
            if os.path.isfile(src) and name != "server.xml":
                shutil.copy(src, os.path.join(self.base, "conf", name))
        # Debian's own tomcat10 service (port 8080, /var/lib/tomcat10) is never
        # used nor touched: this instance has its own base and free ports, and
        # only the JVM named by our CATALINA_PID, verified to be our child, is
        # ever signalled. Whether that service runs is recorded, for the record.
        self.debian_service_port_8080 = listening(8080)
        self.http = free_port()
        self.shutdown = free_port()
        while self.shutdown == self.http:
            self.shutdown = free_port()
        with open(os.path.join(self.base, "conf", "server.xml"), "w") as f:
            f.write(SERVER_XML.format(shutdown=self.shutdown, http=self.http))
        with open(os.path.join(self.base, "webapps", "ROOT", "index.html"), "w") as f:
            f.write("ready\n")
        self.pidfile = os.path.join(self.base, "tomcat.pid")
        self.out = os.path.join(self.base, "logs", "catalina.out")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("JAVA_OPTS", "CATALINA_OPTS", "CATALINA_OUT", "JPDA_OPTS")}
        self.env.update({
            "CATALINA_HOME": CATALINA_HOME,
            "CATALINA_BASE": self.base,
            "CATALINA_PID": self.pidfile,
            "CATALINA_TMPDIR": os.path.join(self.base, "temp"),
            # A small, quick-starting JVM: this is a test instance.
            "CATALINA_OPTS": "-Xmx128m -XX:TieredStopAtLevel=1",
        })
        self.jvm = None  # (pid, pidfd)
        self.reaper = None
        self.jvm_exit = self.jvm_exit_at = None

    def start(self):
        """`catalina.sh start`, then waits (bounded) for the JVM to be ours and ready."""
        self.jvm_exit = self.jvm_exit_at = None
        out_before = os.path.getsize(self.out) if os.path.exists(self.out) else 0
        subprocess.run([self.catalina, "start"], env=self.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=True)
        with open(self.pidfile) as f:
            pid = int(f.read().strip())
        fd = os.pidfd_open(pid)
        stat = proc_stat(pid)
        # catalina.sh has returned, so the JVM was orphaned and adopted by us.
        if not stat or stat[1] != os.getpid() or proc_comm(pid) != "java":
            os.close(fd)
            raise Setup(f"CATALINA_PID names {pid} ({proc_comm(pid)}, stat {stat}), not our adopted JVM")
        self.jvm = (pid, fd)
        # Reap it the moment it exits: a zombie would still pass catalina.sh's
        # `kill -0`, which would make catalina.sh look slower than it is.
        self.reaper = threading.Thread(target=self._reap, args=(pid,), daemon=True)
        self.reaper.start()
        deadline = time.monotonic() + 30
        while True:
            if exited(fd):
                raise Setup(f"Tomcat's JVM exited during start-up: {tail(self.out)}")
            if http_status(self.http) is not None and "Server startup in" in self.log(out_before):
                break
            if time.monotonic() > deadline:
                raise Setup(f"Tomcat not ready in 30 s: {tail(self.out)}")
            time.sleep(0.1)
        return out_before

    def _reap(self, pid):
        try:
            _, status = os.waitpid(pid, 0)
            self.jvm_exit_at = time.monotonic()
            self.jvm_exit = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            pass

    def log(self, since=0):
        try:
            with open(self.out, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_gone(self, timeout):
        """Waits for the JVM to be exited and reaped."""
        pid, fd = self.jvm
        if not wait_exit(fd, timeout):
            return False
        self.reaper.join(timeout)
        return not self.reaper.is_alive()

    def kill(self):
        """In a finally: SIGKILL the JVM through its pidfd, if it still is our child."""
        if self.jvm is None:
            # Interrupted between `catalina.sh start` and the pinning: a JVM
            # named by CATALINA_PID that is our (adopted) child is still ours.
            try:
                with open(self.pidfile) as f:
                    pid = int(f.read().strip())
                fd = os.pidfd_open(pid)
            except (OSError, ValueError):
                return
            stat = proc_stat(pid)
            if stat and stat[1] == os.getpid() and proc_comm(pid) == "java":
                kill_pidfd(fd)
                if wait_exit(fd, 10):
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
            os.close(fd)
            return
        pid, fd = self.jvm
        stat = proc_stat(pid)
        if not exited(fd) and stat and stat[1] == os.getpid():
            kill_pidfd(fd)
        if self.reaper is not None:
            self.reaper.join(10)
        os.close(fd)
        self.jvm = None

    def close(self):
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


ORDERLY = [
    # The lines Tomcat 10.1 logs when it stops in order (its shutdown hook runs
    # Catalina.stop()), in this order.
    r"Pausing ProtocolHandler \[\"http-nio-127\.0\.0\.1-\d+\"\]",
    r"Stopping service \[Catalina\]",
    r"Stopping ProtocolHandler \[\"http-nio-127\.0\.0\.1-\d+\"\]",
    r"Destroying ProtocolHandler \[\"http-nio-127\.0\.0\.1-\d+\"\]",
]


def orderly(log):
    """The orderly-stop lines found in LOG, in order; None where one is missing."""
    found, at = [], 0
    for pattern in ORDERLY:
        match = re.compile(pattern).search(log, at)
        if not match:
            found.append(None)
            continue
        found.append(match.group(0))
        at = match.end()
    return found


def timed(command, env=None, timeout=60):
    t0 = time.monotonic()
    proc = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    t1 = time.monotonic()
    return proc.returncode, t1 - t0, proc.stdout.decode("utf-8", "replace"), t1


def tomcat_stop_case(gracestop):
    """Tomcat stopped through CATALINA_PID by gracestop, then by catalina.sh."""
    catalina = tomcat_tools()
    become_subreaper()
    checks = Checks("tomcat-stop")
    tomcat = Tomcat(catalina)
    checks.figures["port_8080_listening"] = tomcat.debian_service_port_8080
    def stopped_by(command, env=None):
        """Starts Tomcat, stops it with `command`; the figures, and whether the JVM is gone."""
        since = tomcat.start()
        pid = tomcat.jvm[0]
        code, took, output, returned = timed(command, env=env)
        gone = tomcat.wait_gone(5)
        late = returned - tomcat.jvm_exit_at if tomcat.jvm_exit_at else None
        return {
            "jvm": pid, "exit": code, "seconds": round(took, 3), "jvm_exit": tomcat.jvm_exit,
            "returned_after_jvm_exit_s": round(late, 3) if late is not None else None,
            "orderly_stop": orderly(tomcat.log(since)), "output": output.strip().splitlines()[-4:],
        }, gone, took, output

    try:
        # a. gracestop
        ours, gone, took, output = stopped_by(
            [gracestop, "stop", "--pidfile", tomcat.pidfile, "--wait", "30", "--force"])
        checks.figures["gracestop"] = ours
        late, lines = ours["returned_after_jvm_exit_s"], ours["orderly_stop"]
        checks.check(ours["exit"] == 0, f"gracestop stop exited {ours['exit']}: {output}")
        checks.check(gone, "the JVM still runs after gracestop stop")
        checks.check(None not in lines, f"Tomcat's log lacks the orderly stop: {lines}")
        # gracestop returns the moment the JVM has exited (pidfd), not on a
        # poll tick: a generous bound, where a 1 s poll would be late by 0-1 s.
        checks.check(late is not None and late < 0.5,
                     f"gracestop returned {late} s after the JVM exited (bound: 0.5 s)")
        # 143: the JVM ran its shutdown hooks on SIGTERM; SIGKILL would show as -9.
        checks.check(ours["jvm_exit"] == 143,
                     f"the JVM ended with {ours['jvm_exit']}, expected 143 (SIGTERM, handled)")
        tomcat.kill()

        # b. catalina.sh
        theirs, gone, took_c, output = stopped_by([catalina, "stop", "30", "-force"], env=tomcat.env)
        checks.figures["catalina_sh"] = theirs
        checks.check(theirs["exit"] == 0, f"catalina.sh stop exited {theirs['exit']}: {output}")
        checks.check(gone, "the JVM still runs after catalina.sh stop")
        checks.check(took < took_c, f"gracestop took {took:.3f} s, catalina.sh {took_c:.3f} s")
        checks.figures["catalina_over_gracestop"] = round(took_c / took, 1) if took > 0 else None
        return checks
    finally:
        tomcat.close()


def tomcat_stale_case(gracestop):
    """A stale CATALINA_PID naming an unrelated process of ours: gracestop leaves
    it alone; catalina.sh stop signals it."""
    catalina = tomcat_tools()
    checks = Checks("tomcat-stale")
    tomcat = Tomcat(catalina)
    victims = []
    fds = []
    try:
        # Our own unrelated process. Its PID is only known once it runs, so the
        # file is written after the start and its mtime set 60 s back: the file
        # is older than the process it names (gracestop's rule: a process that
        # started more than 2 s after the file's mtime is not the one the file
        # was written for).
        proc = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
        victims.append(proc)
        fd = os.pidfd_open(proc.pid)
        fds.append(fd)
        # Reaped the moment it dies: as a zombie it would still pass
        # catalina.sh's `kill -0`, and catalina.sh would go on to its kill -9.
        reaper = threading.Thread(target=proc.wait, daemon=True)
        reaper.start()
        with open(tomcat.pidfile, "w") as f:
            f.write(f"{proc.pid}\n")
        old = time.time() - 60
        os.utime(tomcat.pidfile, (old, old))
        code, took, output, _ = timed([gracestop, "stop", "--pidfile", tomcat.pidfile, "--wait", "30", "--force"])
        alive = not exited(fd)
        checks.figures["gracestop"] = {"exit": code, "seconds": round(took, 3), "victim_alive": alive,
                                       "output": output.strip().splitlines()[-3:]}
        checks.check(code == 3, f"gracestop stop on a stale pidfile exited {code}, expected 3: {output}")
        checks.check(alive, "gracestop signalled the unrelated process a stale pidfile named")

        # catalina.sh, same CATALINA_PID, Tomcat not running.
        code, took_c, output, _ = timed([catalina, "stop", "30", "-force"], env=tomcat.env)
        killed = wait_exit(fd, 5)
        reaper.join(5 if killed else 0)
        status = proc.returncode
        how = (f"killed by {signal.Signals(-status).name}" if status is not None and status < 0
               else f"exit {status}" if status is not None else "still running")
        checks.figures["catalina_sh"] = {"exit": code, "seconds": round(took_c, 3), "victim": how,
                                         "output": output.strip().splitlines()[-4:]}
        # What catalina.sh does here (observed on Debian 12, Tomcat 10.1): its
        # `kill -0` passes, the shutdown port refuses, so it falls back to
        # `kill -15 $(cat $CATALINA_PID)`: our unrelated process dies of it.
        checks.check(killed, "catalina.sh left the unrelated process alive (expected it to signal it)")
        return checks
    finally:
        for proc in victims:
            stop_popen(proc)
        for fd in fds:
            os.close(fd)
        tomcat.close()


CASES = {
    "nginx-quit": lambda gs: nginx_case(gs, "QUIT"),
    "nginx-term": lambda gs: nginx_case(gs, "TERM"),
    "tomcat-stop": tomcat_stop_case,
    "tomcat-stale": tomcat_stale_case,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--gracestop", required=True, help="the gracestop binary under test")
    args = parser.parse_args()

    def interrupted(signum, frame):
        raise Setup(f"interrupted by {signal.Signals(signum).name}")

    # SIGTERM (the Rust wrapper's overrun) and our own alarm unwind through the
    # finally blocks, which stop everything the case started.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, interrupted)
    signal.alarm(CASE_LIMIT_S)
    try:
        checks = CASES[args.case](os.path.abspath(args.gracestop))
    except Missing as missing:
        print(json.dumps({"case": args.case, "skipped": str(missing)}), flush=True)
        return MISSING
    except (Setup, subprocess.SubprocessError, OSError) as error:
        print(json.dumps({"case": args.case, "ok": False, "setup_error": f"{type(error).__name__}: {error}"}),
              flush=True)
        return 2
    return checks.report()


if __name__ == "__main__":
    sys.exit(main())
