#!/usr/bin/env python3
"""Hostile-input harness for gracestop (issue 7): 338 cases that a hostile local user,
a flaky network and a careless operator would try, with counts.

    python3 bench/hostile.py [--bin PATH] [--baseline PATH] [--only TEXT] [--list] [--keep]

For every case it records the command, the expected exit code (DESIGN.md §4: 0 done, 1 refusal
or operational error, 2 usage error, 3 not running, 4 still running; run: 125/126/127 and the
child's status), the actual one, whether stderr is ONE clear line where a refusal or usage
error is expected, the time taken and gracestop's peak resident memory. It prints a table per
category (cases, passed, wrong-process signals, hangs, secret leaks, crashes) and, with
--baseline, the baseline's figures beside them. Exit status: 0 only when, for --bin, wrong-process
signals = hangs = leaks = crashes = 0 and every case got its expected outcome.

Definitions
- wrong-process signal: a signal logged by a sentinel the case must not touch (each counts
  once), or the death of one; the namespace's PID 1 (the case driver) is such a sentinel too.
  A target the case should have stopped but that still runs is a failure, not a wrong signal.
- hang: gracestop still runs after the hard timeout (15 s); it is SIGKILLed, and the
  namespace with it.
- leak: the case's secret marker (S3CRET-<random>) in gracestop's stdout or stderr, or in the
  environment `gracestop run` hands its child (where any GRACESTOP_* variable is a leak too).
- crash: death by a signal the case did not send, or panic / backtrace / allocation-failure text.
- one clear line: stderr has exactly one non-blank line containing "error" (clap's trailing
  "For more information, try '--help'." hint is not counted).

Safety
- Every case runs inside its own PID namespace (`unshare --pid --fork --mount-proc
  --kill-child`), with this script as the namespace's PID 1 (the "driver"), so a regression
  that signals -1, 0, 1 or a wrong PID can only reach processes of that namespace. Each
  namespace holds sentinels (Python processes, run with /usr/bin/python3 so that the
  throwaway user can run them) that log every signal they get: a "groupmate" in gracestop's
  own process group, a bystander in a group of its own, and whatever the case starts.
- A throwaway system user (useradd --system --no-create-home --shell /usr/sbin/nologin) plays
  the hostile local user; it is removed in a finally, as are the work directory and servers.
- Every gracestop run has a hard timeout (its process is SIGKILLed, then the namespace), runs
  with RLIMIT_AS = 1 GiB so that an unbounded read cannot take the machine's memory (peak RSS
  is reported; a "bounded" read that needed more than 64 MiB fails its case), and gets a clean
  environment (no proxy or GRACESTOP_* variables from the caller).
- Network traffic goes to 127.0.0.1 only: a registry this script serves (200, 401, 500,
  redirects whose Location carries the secret, never-answering, headers-only, endless body,
  closed and reset connections, garbage), a port that refuses, and a socket that never accepts.
- The harness signals only processes it started in the namespace, by PID (never pkill,
  killall or kill -1).

Must run as root (PID namespaces, chown, the throwaway user). Nothing here is part of the
test suite.
"""
import argparse, errno, glob, http.server, json, os, resource, secrets, shlex, shutil, signal
import socket, socketserver, stat, subprocess, sys, tempfile, threading, time, traceback

SCRIPT = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(SCRIPT))
SYS_PY = "/usr/bin/python3"      # reachable by the throwaway user (pyenv's may not be)
CASE_TIMEOUT = 15.0              # hard limit of one gracestop run: beyond it, a hang
OUTER_SLACK = 25.0               # the namespace itself is killed this much later
AS_LIMIT = 1 << 30               # RLIMIT_AS of every gracestop run
BOUNDED_RSS_KB = 64 * 1024       # a bounded read never needs more than this
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLAP_HINT = "For more information, try '--help'."
CRASH_TEXT = ("panicked at", "stack backtrace", "RUST_BACKTRACE", "memory allocation of", "Segmentation fault")

# ---------------------------------------------------------------------------------------
# The sentinel: a process that logs every signal it receives. Written into the work
# directory and run with /usr/bin/python3 -I -S. Its log's first line is "ready PID".
# ---------------------------------------------------------------------------------------
SENTINEL = r'''
import os, signal, sys, threading, time
log_path, name = sys.argv[1], sys.argv[2]
opts = sys.argv[3:]
def opt(flag, default=None):
    return opts[opts.index(flag) + 1] if flag in opts else default
state = {"fd": os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), "term": opt("--term", "exit")}
def say(text):
    os.write(state["fd"], (text + "\n").encode())
def become(path, term):
    """A forked child turns into a sentinel of its own, logging to `path`."""
    os.close(state["fd"])
    state["fd"] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    state["term"] = term
    say("ready %d" % os.getpid())
def handler(sig, frame):
    try:
        signame = signal.Signals(sig).name
    except ValueError:
        signame = "SIG%d" % sig
    say("sig %d %s" % (sig, signame))
    if sig == signal.SIGTERM:
        kids = int(opt("--fork-on-term", "0"))
        for i in range(kids):      # a group that grows during the stop
            if os.fork() == 0:
                become("%s.kid%d" % (log_path, i), "ignore")
                live()
            time.sleep(0.03)
        if state["term"] == "exit":
            os._exit(0)
def live():
    end = time.time() + 300        # bounded, should the namespace ever outlive the case
    while time.time() < end:
        time.sleep(1)
    os._exit(3)
for s in range(1, signal.NSIG):
    if s in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        continue
    try:
        signal.signal(s, handler)
    except (OSError, ValueError, RuntimeError):
        pass
if "--envdump" in opts:            # for `gracestop run`: what did the child inherit?
    with open(opt("--envdump"), "w") as f:
        f.write("".join("%s=%s\n" % kv for kv in sorted(os.environ.items())))
    say("ready %d" % os.getpid())
    os._exit(0)
if "--thread" in opts:             # a second thread whose id is logged
    started = threading.Event()
    def thread():
        say("thread %d" % threading.get_native_id())
        started.set()
        while True:
            time.sleep(1)
    threading.Thread(target=thread, daemon=True).start()
    started.wait(5)
if "--zombie" in opts:             # an unreaped child
    kid = os.fork()
    if kid == 0:
        os._exit(0)
    say("zombie %d" % kid)
    for _ in range(500):
        with open("/proc/%d/stat" % kid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.002)
if "--child" in opts:              # a child sentinel this one never reaps
    kid = os.fork()
    if kid == 0:
        become(log_path + ".child", "exit")
        live()
    for _ in range(2500):
        if os.path.exists(log_path + ".child") and os.path.getsize(log_path + ".child"):
            break
        time.sleep(0.002)
if "--setsid-kid" in opts:         # a descendant that left the group (a daemon)
    kid = os.fork()
    if kid == 0:
        os.setsid()
        become(log_path + ".kid0", "exit")
        live()
    for _ in range(2500):
        if os.path.exists(log_path + ".kid0") and os.path.getsize(log_path + ".kid0"):
            break
        time.sleep(0.002)
if "--kid-then-exit" in opts:      # leaves a group whose leader is a zombie
    kid = os.fork()
    if kid == 0:
        become(log_path + ".kid0", "exit")
        live()
    for _ in range(2500):
        if os.path.exists(log_path + ".kid0") and os.path.getsize(log_path + ".kid0"):
            break
        time.sleep(0.002)
    say("ready %d" % os.getpid())
    os._exit(0)
if "--count-sig" in opts:          # one log line per delivery: Python handlers coalesce
    counted = int(opt("--count-sig"))
    signal.pthread_sigmask(signal.SIG_BLOCK, [counted])
say("ready %d" % os.getpid())
if "--stop-self" in opts:
    os.kill(os.getpid(), signal.SIGSTOP)
if "--count-sig" in opts:
    end = time.time() + 300
    while time.time() < end:
        if signal.sigtimedwait([counted], 0.2) is not None:
            say("sig %d SIG%d" % (counted, counted))
    os._exit(3)
live()
'''

# ---------------------------------------------------------------------------------------
# Case registry
# ---------------------------------------------------------------------------------------
CATEGORIES = ["pidfile-trust", "pidfile-kind", "pidfile-content", "staleness", "pid-arg",
              "zombie-group", "signals", "files", "http", "secrets", "run"]
CASES = []


class Case:
    def __init__(self, cat, name, fn):
        assert cat in CATEGORIES, cat
        self.cat, self.name, self.fn = cat, name, fn
        self.index = len(CASES)


def case(cat, name):
    def register(fn):
        CASES.append(Case(cat, name, fn))
        return fn
    return register


# ---------------------------------------------------------------------------------------
# Inside the namespace: the driver and its view of one case
# ---------------------------------------------------------------------------------------
DRIVER_SIGNALS = []


def driver_handler(sig, frame):
    DRIVER_SIGNALS.append(sig)


def signame(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def proc_stat(pid):
    """(state, start ticks) of a live PID, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


class Sentinel:
    """A process that logs the signals it receives, and the role it has in the case:
    bystander (must get no signal and survive), target (must be gone at the end),
    survivor (must still run; signals are fine), any (no check)."""

    def __init__(self, box, name, role, log, proc=None, argv=None):
        self.box, self.name, self.role, self.log, self.proc, self.argv = box, name, role, log, proc, argv
        self.pid, self.start, self.info, self.returncode = None, None, {}, None
        self.kid_role = None
        self.child = None

    def lines(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def ready(self, limit=5.0):
        """Waits for the "ready PID" line (bounded); true once seen."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            for line in self.lines():
                word = line.split()
                if word[:1] == ["ready"]:
                    self.pid = int(word[1])
                    st = proc_stat(self.pid)
                    self.start = st[1] if st else None
                    for other in self.lines():
                        w = other.split()
                        if len(w) == 2 and w[0] in ("thread", "zombie"):
                            self.info[w[0]] = int(w[1])
                    return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.003)
        return False

    def signals(self):
        return [int(l.split()[1]) for l in self.lines() if l.startswith("sig ")]

    def got(self, sig):
        return sig in self.signals()

    def alive(self):
        if self.proc is not None:
            if self.returncode is None:
                self.returncode = self.proc.poll()
            if self.returncode is not None:
                return False
        if self.pid is None:
            return False
        st = proc_stat(self.pid)
        return st is not None and st[0] not in "ZX" and st[1] == self.start

    def death(self):
        if self.returncode is not None and self.returncode < 0:
            return f"killed by {signame(-self.returncode)}"
        return "gone" if self.returncode is None else f"exited {self.returncode}"


class Box:
    """One case inside its namespace: files, sentinels, the gracestop run, the verdict."""

    def __init__(self, ctx, case_obj):
        self.ctx, self.case = ctx, case_obj
        self.dir = ctx["case_dir"]
        self.uid, self.gid, self.user = ctx["uid"], ctx["gid"], ctx["user"]
        self.nobody = ctx["nobody"]
        self.secret = ctx["secret"]
        self.bin = ctx["bin"]
        self.token = f"{ctx['label']}-{case_obj.index:03d}"
        self.sentinels = []
        self.problems = []
        self.leaks = []
        self.keep = []          # objects (sockets, fds) that must live through the case
        self.result = None
        self.no_call = False
        self._udir = None
        self.gm = self.sentinel("groupmate", "bystander")
        self.by = self.sentinel("bystander", "bystander")

    # -- files ----------------------------------------------------------------------
    def path(self, *names):
        return os.path.join(self.dir, *names)

    def mkdir(self, name, mode=0o755, uid=0, gid=0):
        path = self.path(name)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return path

    @property
    def udir(self):
        """A directory the throwaway user owns."""
        if self._udir is None:
            self._udir = self.mkdir("u", 0o755, self.uid, self.gid)
        return self._udir

    def write(self, path, data, mode=0o644, uid=0, gid=0, mtime=None):
        if not os.path.isabs(path):
            path = self.path(path)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        if mtime is not None:
            os.utime(path, (time.time(), mtime))
        return path

    def symlink(self, target, path, uid=0):
        if not os.path.isabs(path):
            path = self.path(path)
        os.symlink(target, path)
        os.lchown(path, uid, uid and self.gid)
        return path

    # -- processes ------------------------------------------------------------------
    def sentinel(self, name, role, user=False, group="new", opts=(), cwd=None, kid_role=None):
        """Starts a sentinel. group: "new" (a group of its own), None (the driver's), or a
        process-group id to join."""
        logdir = self.udir if user else self.dir
        log = os.path.join(logdir, f"{name}.log")
        with open(log, "w"):
            pass
        if user:
            os.chown(log, self.uid, self.gid)
        argv = [SYS_PY, "-I", "-S", self.ctx["sentinel"], log, name, *map(str, opts)]
        if user:
            argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *argv]
        kwargs = {}
        if group == "new":
            kwargs["process_group"] = 0
        elif group is not None:
            kwargs["process_group"] = group
        err = open(os.path.join(self.dir, f"{name}.err"), "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=cwd or self.dir,
                                env={"PATH": CLEAN_PATH}, **kwargs)
        err.close()
        s = Sentinel(self, name, role, log, proc)
        s.kid_role = kid_role
        self.sentinels.append(s)
        if not s.ready():
            raise RuntimeError(f"sentinel {name} did not start: {open(os.path.join(self.dir, name + '.err')).read()}")
        if "--child" in opts:
            child = Sentinel(self, name + "-child", kid_role or "target", log + ".child")
            if not child.ready():
                raise RuntimeError(f"the child of sentinel {name} did not start")
            self.sentinels.append(child)
            s.child = child
        if "--kid-then-exit" in opts or "--setsid-kid" in opts:
            kid = Sentinel(self, name + "-kid0", kid_role or "any", log + ".kid0")
            if not kid.ready():
                raise RuntimeError(f"the kid of sentinel {name} did not start")
            self.sentinels.append(kid)
            s.child = kid
        return s

    def victim(self, **kw):
        return self.sentinel(kw.pop("name", "victim"), "bystander", **kw)

    def target(self, **kw):
        return self.sentinel(kw.pop("name", "target"), "target", **kw)

    def external(self, name, role, opts=()):
        """A sentinel that gracestop run starts: its argv, and the handle to check it."""
        log = self.path(f"{name}.log")
        with open(log, "w"):
            pass
        argv = [SYS_PY, "-I", "-S", self.ctx["sentinel"], log, name, *map(str, opts)]
        s = Sentinel(self, name, role, log, None, argv)
        self.sentinels.append(s)
        return s

    def kids(self, s):
        """Sentinels forked by s on SIGTERM (--fork-on-term)."""
        found = []
        for log in sorted(glob.glob(s.log + ".kid*")):
            kid = Sentinel(self, os.path.basename(log).replace(".log.", "-"), s.kid_role or "any", log)
            if kid.ready(0.5):
                found.append(kid)
        return found

    # -- HTTP -------------------------------------------------------------------------
    def url(self, kind, query=None, userinfo=None, frag=None, port=None):
        """A URL of the harness's registry (or of the refusing port) for this case."""
        port = port or self.ctx["http_port"]
        auth = f"{userinfo}@" if userinfo else ""
        text = f"http://{auth}127.0.0.1:{port}/{kind}/{self.token}"
        if query:
            text += "?" + query
        if frag:
            text += "#" + frag
        return text

    @property
    def refused(self):
        return f"http://127.0.0.1:{self.ctx['refused_port']}/refused/{self.token}"

    @property
    def backlog(self):
        return f"http://127.0.0.1:{self.ctx['backlog_port']}/backlog/{self.token}"

    def requests(self):
        try:
            with open(self.ctx["requests_log"]) as f:
                return [l for l in f.read().splitlines() if f"/{self.token}" in l]
        except OSError:
            return []

    # -- checks -----------------------------------------------------------------------
    def check(self, cond, message):
        if not cond:
            self.problems.append(message)
        return cond

    def leak_text(self, text, where):
        if self.secret in text:
            i = text.index(self.secret)
            self.leaks.append(f"{where}: ...{text[max(0, i - 60):i + 40]!r}...")
        return text

    def stderr_so_far(self):
        try:
            with open(self.path("gs.stderr"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_stderr(self, text, limit=5.0):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if text in self.stderr_so_far():
                return True
            time.sleep(0.005)
        self.problems.append(f"{text!r} never appeared in stderr within {limit}s")
        return False

    def wait_log(self, s, text, limit=5.0):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if any(text in l for l in s.lines()):
                return True
            time.sleep(0.005)
        return False

    # -- the gracestop run -------------------------------------------------------------
    def gs(self, args, expect, env=None, user=False, cwd=None, one_line=None, contains=(), absent=(),
           max_time=None, min_time=None, during=None, stdio="files", allow_death=(), group=None,
           shell=None, bounded=False, timeout=CASE_TIMEOUT):
        """Runs gracestop once (the case's one run) and records what happened.

        expect: an exit code or a set of them (a negative number: death by that signal).
        one_line: stderr must be one clear line (default: when a usage error is expected).
        shell: run `sh -c SHELL BIN ARGS...` instead (for gracestop's own PID).
        bounded: a read that must be bounded: peak RSS must stay under 64 MiB."""
        assert self.result is None, "one gracestop run per case"
        expect = {expect} if isinstance(expect, int) else set(expect)
        if one_line is None:
            one_line = expect == {2}
        args = [a if isinstance(a, bytes) else str(a) for a in args]
        if shell is not None:
            argv = ["sh", "-c", shell, self.bin, *args]
            shown = "sh -c " + shlex.quote(shell) + " gracestop " + " ".join(show_arg(a) for a in args)
        else:
            argv = [self.bin, *args]
            shown = "gracestop " + " ".join(show_arg(a) for a in args)
        if user:
            argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *argv]
            shown = f"[as {self.user}] " + shown
        full_env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": "/"}
        shown_env = []
        for k, v in (env or {}).items():
            full_env[k] = v
            shown_env.append(f"{show_arg(k)}={show_arg(v)}")
        if shown_env:
            shown = " ".join(shown_env) + " " + shown
        if any(isinstance(v, bytes) for v in full_env.values()):
            full_env = {os.fsencode(k): os.fsencode(v) if isinstance(v, str) else v for k, v in full_env.items()}
        out_path, err_path = self.path("gs.stdout"), self.path("gs.stderr")
        out, err = open(out_path, "wb"), open(err_path, "wb")
        closers, pass_fds = [], ()
        stdout, stderr = out, err
        if stdio == "broken":
            r, w = os.pipe()
            os.close(r)
            stderr, closers = w, [w]
        pgid = self.gm.pid if group is None else group

        def preexec():
            resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if stdio == "closed":
                for fd in (0, 1, 2):
                    os.close(fd)

        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=full_env,
                                cwd=cwd or self.dir, process_group=pgid, preexec_fn=preexec, pass_fds=pass_fds)
        for fd in closers:
            os.close(fd)
        out.close()
        err.close()
        if during is not None:
            try:
                during(proc)
            except Exception:
                self.problems.append("harness: " + traceback.format_exc(limit=2).strip().replace("\n", " | "))
        status, rusage, hang = None, None, False
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() - start > timeout:
                hang = True
                os.kill(proc.pid, signal.SIGKILL)
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        elapsed = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        code = proc.returncode
        with open(out_path, "rb") as f:
            stdout_text = f.read().decode(errors="replace")
        with open(err_path, "rb") as f:
            stderr_text = f.read().decode(errors="replace")
        self.result = dict(cmd=shown, expect=sorted(expect), code=None if hang else code, hang=hang,
                           elapsed=round(elapsed, 3), maxrss_kb=rusage.ru_maxrss if rusage else None,
                           stdout=stdout_text, stderr=stderr_text, one_line=None)
        time.sleep(0.1)   # signals in flight reach their sentinels
        if hang:
            self.problems.append(f"hang: still running after {timeout:.0f}s (killed)")
            return self.result
        if code not in expect:
            self.problems.append(f"exit {describe_code(code)}, expected {' or '.join(map(describe_code, sorted(expect)))}")
        crash = code < 0 and -code not in allow_death
        texts = [t for t in CRASH_TEXT if t in stderr_text]
        if crash or texts:
            self.result["crash"] = f"death by {signame(-code)}" if crash else f"stderr: {texts}"
        if one_line and stdio == "files":
            self.result["one_line"] = is_one_clear_line(stderr_text)
            self.check(self.result["one_line"], "stderr is not one clear line")
        for text in contains:
            self.check(text in stderr_text, f"stderr lacks {text!r}")
        for text in absent:
            self.check(text not in stderr_text, f"stderr holds {text!r}")
        if max_time is not None:
            self.check(elapsed <= max_time, f"took {elapsed:.2f}s, more than {max_time}s")
        if min_time is not None:
            self.check(elapsed >= min_time, f"took {elapsed:.2f}s, less than {min_time}s")
        if bounded and rusage is not None:
            self.check(rusage.ru_maxrss <= BOUNDED_RSS_KB,
                       f"unbounded read: peak RSS {rusage.ru_maxrss // 1024} MiB (RLIMIT_AS {AS_LIMIT >> 20} MiB)")
        self.leak_text(stdout_text, "stdout")
        self.leak_text(stderr_text, "stderr")
        if expect == {2}:
            self.no_call = True
        return self.result

    def finish(self):
        """The verdict, once the case body is done."""
        wrong = []
        for s in list(self.sentinels):
            if s.kid_role is not None:
                for kid in self.kids(s):
                    if all(k.log != kid.log for k in self.sentinels):
                        self.sentinels.append(kid)
        for s in self.sentinels:
            alive = s.alive()
            sigs = s.signals()
            if s.role == "bystander":
                wrong += [f"{s.name} ({s.pid}) got {signame(x)}" for x in sigs]
                if not alive:
                    wrong.append(f"{s.name} ({s.pid}) died ({s.death()})")
            elif s.role == "target" and alive:
                self.problems.append(f"target {s.name} ({s.pid}) still runs (signals: {[signame(x) for x in sigs]})")
            elif s.role == "survivor" and not alive:
                self.problems.append(f"{s.name} ({s.pid}) should still run but is gone ({s.death()})")
        wrong += [f"the namespace's PID 1 (the driver) got {signame(x)}" for x in DRIVER_SIGNALS]
        if self.no_call:
            calls = self.requests()
            self.check(not calls, f"a URL was called although the input was refused: {calls}")
        if self.result is None:
            self.problems.append("harness: the case never ran gracestop")
            self.result = dict(cmd="", expect=[], code=None, hang=False, elapsed=0, stdout="", stderr="")
        r = self.result
        r.update(wrong=wrong, leaks=self.leaks, problems=self.problems)
        r["passed"] = not (r["hang"] or wrong or self.leaks or r.get("crash") or self.problems)
        return r


def show_arg(a):
    if isinstance(a, bytes):
        return repr(a)
    return shlex.quote(a) if a else "''"


def describe_code(code):
    if code is None:
        return "none (hang)"
    return f"death by {signame(-code)}" if code < 0 else str(code)


def is_one_clear_line(stderr):
    lines = [l for l in stderr.splitlines() if l.strip() and l.strip() != CLAP_HINT]
    return len(lines) == 1 and "error" in lines[0]


def inner_main(ctx_path):
    """The namespace's PID 1: runs one case and writes its result."""
    with open(ctx_path) as f:
        ctx = json.load(f)
    for s in range(1, signal.NSIG):
        if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(s, driver_handler)
            except (OSError, ValueError, RuntimeError):
                pass
    case_obj = CASES[ctx["index"]]
    result = None
    try:
        box = Box(ctx, case_obj)
        try:
            case_obj.fn(box)
        except Exception:
            box.problems.append("harness: " + traceback.format_exc(limit=3).strip().replace("\n", " | "))
        result = box.finish()
    except Exception:
        result = dict(cmd="", expect=[], code=None, hang=False, elapsed=0, stdout="", stderr="", wrong=[],
                      leaks=[], passed=False,
                      problems=["harness: " + traceback.format_exc(limit=3).strip().replace("\n", " | ")])
    with open(os.path.join(ctx["case_dir"], "result.json"), "w") as f:
        json.dump(result, f)
    os._exit(0)


# ---------------------------------------------------------------------------------------
# Case helpers
# ---------------------------------------------------------------------------------------
def stop_pidfile(b, path, expect, extra=(), **kw):
    return b.gs(["stop", "--pidfile", path, "--wait", "3", "--force", *extra], expect, **kw)


def refuse(b, path, rule="rule:", **kw):
    """A pidfile gracestop must refuse with one line naming the rule."""
    kw.setdefault("one_line", True)
    return stop_pidfile(b, path, 1, contains=[rule] if rule else (), **kw)


SIGRTMIN = signal.SIGRTMIN.value if hasattr(signal.SIGRTMIN, "value") else int(signal.SIGRTMIN)
SIGRTMAX = signal.SIGRTMAX.value if hasattr(signal.SIGRTMAX, "value") else int(signal.SIGRTMAX)

# ---------------------------------------------------------------------------------------
# pidfile-trust: who owns, may write or may replace the pidfile and its path
# ---------------------------------------------------------------------------------------
@case("pidfile-trust", "file owned by the user names a root process")
def _(b):
    v = b.victim()
    refuse(b, b.write("owned.pid", f"{v.pid}\n", uid=b.uid, gid=b.gid))


@case("pidfile-trust", "file owned by the user names the user's own process")
def _(b):
    t = b.target(user=True)
    stop_pidfile(b, b.write("owned.pid", f"{t.pid}\n", uid=b.uid, gid=b.gid), 0)


@case("pidfile-trust", "root's file in the user's directory names a root process")
def _(b):
    v = b.victim()
    refuse(b, b.write(os.path.join(b.udir, "root.pid"), f"{v.pid}\n"))


@case("pidfile-trust", "root's file in the user's directory names the user's process")
def _(b):
    t = b.target(user=True)
    stop_pidfile(b, b.write(os.path.join(b.udir, "root.pid"), f"{t.pid}\n"), 0)


@case("pidfile-trust", "world-writable file (0666) names a root process")
def _(b):
    v = b.victim()
    refuse(b, b.write("ww.pid", f"{v.pid}\n", mode=0o666))


@case("pidfile-trust", "world-writable file (0666) names the caller's own target")
def _(b):
    v = b.victim(name="target")   # refused whatever it names: untouched
    refuse(b, b.write("ww.pid", f"{v.pid}\n", mode=0o666))


@case("pidfile-trust", "file writable by the user's group (0664) names a root process")
def _(b):
    v = b.victim()
    refuse(b, b.write("gw.pid", f"{v.pid}\n", mode=0o664, gid=b.gid))


@case("pidfile-trust", "file writable by group root (0664) is trusted")
def _(b):
    t = b.target()
    stop_pidfile(b, b.write("gw.pid", f"{t.pid}\n", mode=0o664, gid=0), 0)


@case("pidfile-trust", "root's file in a world-writable directory without sticky bit")
def _(b):
    v = b.victim()
    d = b.mkdir("open", 0o777)
    refuse(b, b.write(os.path.join(d, "app.pid"), f"{v.pid}\n"), rule="sticky")


@case("pidfile-trust", "root's file in a directory the user's group may write (0775)")
def _(b):
    v = b.victim()
    d = b.mkdir("grp", 0o775, 0, b.gid)
    refuse(b, b.write(os.path.join(d, "app.pid"), f"{v.pid}\n"))


@case("pidfile-trust", "root's file in a sticky world-writable directory is trusted")
def _(b):
    t = b.target()
    d = b.mkdir("sticky", 0o1777)
    stop_pidfile(b, b.write(os.path.join(d, "app.pid"), f"{t.pid}\n"), 0)


@case("pidfile-trust", "symlink the user planted in a sticky directory, to root's pidfile of a root process")
def _(b):
    v = b.victim()
    d = b.mkdir("sticky", 0o1777)
    real = b.write("real.pid", f"{v.pid}\n")
    refuse(b, b.symlink(real, os.path.join(d, "app.pid"), uid=b.uid))


@case("pidfile-trust", "symlink the user planted in a sticky directory, to a pidfile of the user's process")
def _(b):
    t = b.target(user=True)
    d = b.mkdir("sticky", 0o1777)
    real = b.write("real.pid", f"{t.pid}\n")
    stop_pidfile(b, b.symlink(real, os.path.join(d, "app.pid"), uid=b.uid), 0)


@case("pidfile-trust", "chain of root's symlinks a -> b -> c -> pidfile")
def _(b):
    t = b.target()
    real = b.write("real.pid", f"{t.pid}\n")
    b.symlink(real, "c")
    b.symlink("c", "b")
    stop_pidfile(b, b.symlink(b.path("b"), "a"), 0)


@case("pidfile-trust", "chain of symlinks with one link owned by the user")
def _(b):
    v = b.victim()
    real = b.write("real.pid", f"{v.pid}\n")
    b.symlink(real, "c")
    b.symlink("c", "b", uid=b.uid)
    refuse(b, b.symlink("b", "a"))


@case("pidfile-trust", "symlink loop a -> b -> a")
def _(b):
    b.symlink("b", "a")
    b.symlink("a", "b")
    stop_pidfile(b, b.path("a"), 1, one_line=True)


@case("pidfile-trust", "symlink pointing at itself")
def _(b):
    stop_pidfile(b, b.symlink("self", "self"), 1, one_line=True)


@case("pidfile-trust", "symlink chain of 45 links (over the kernel's 40)")
def _(b):
    v = b.victim()
    prev = b.write("real.pid", f"{v.pid}\n")
    for i in range(45):
        prev = b.symlink(prev, f"l{i}")
    stop_pidfile(b, prev, {1, 0}, one_line=False)
    # 0 would mean the victim was stopped: the root-owned chain may name it, so it is "any".
    b.sentinels[-1].role = "any"


@case("pidfile-trust", "dangling symlink (root's)")
def _(b):
    stop_pidfile(b, b.symlink(b.path("nowhere.pid"), "dangling.pid"), 3)


@case("pidfile-trust", "dangling symlink the user planted in a sticky directory")
def _(b):
    d = b.mkdir("sticky", 0o1777)
    stop_pidfile(b, b.symlink("/nonexistent/app.pid", os.path.join(d, "app.pid"), uid=b.uid), 3)


@case("pidfile-trust", "'..' through the user's symlink: ulink/../a/app.pid is the user's file, not root's")
def _(b):
    v = b.victim()
    decoy = b.sentinel("decoy", "bystander")
    b.mkdir("a")
    b.write("a/app.pid", f"{decoy.pid}\n")               # what a lexical '..' would read
    sub = os.path.join(b.udir, "sub")
    os.makedirs(sub)
    os.makedirs(os.path.join(b.udir, "a"))
    for p in (sub, os.path.join(b.udir, "a")):
        os.chown(p, b.uid, b.gid)
    b.write(os.path.join(b.udir, "a", "app.pid"), f"{v.pid}\n", uid=b.uid, gid=b.gid)
    b.symlink(sub, "ulink", uid=b.uid)
    refuse(b, b.path("ulink") + "/../a/app.pid")


@case("pidfile-trust", "'..' inside root's own directories (sub/../app.pid)")
def _(b):
    t = b.target()
    b.mkdir("sub")
    b.write("app.pid", f"{t.pid}\n")
    stop_pidfile(b, b.path("sub") + "/../app.pid", 0)


@case("pidfile-trust", "leading /../../ above the root")
def _(b):
    t = b.target()
    stop_pidfile(b, "/../../.." + b.write("app.pid", f"{t.pid}\n"), 0)


@case("pidfile-trust", "relative path from root's directory")
def _(b):
    t = b.target()
    b.write("app.pid", f"{t.pid}\n")
    stop_pidfile(b, "app.pid", 0, cwd=b.dir)


@case("pidfile-trust", "relative path ./././app.pid")
def _(b):
    t = b.target()
    b.write("app.pid", f"{t.pid}\n")
    stop_pidfile(b, "./././app.pid", 0, cwd=b.dir)


@case("pidfile-trust", "relative path from the user's directory (cwd owned by the user)")
def _(b):
    v = b.victim()
    b.write(os.path.join(b.udir, "app.pid"), f"{v.pid}\n")
    refuse(b, "app.pid", cwd=b.udir)


@case("pidfile-trust", "relative path ../app.pid from a subdirectory of the user's")
def _(b):
    v = b.victim()
    sub = os.path.join(b.udir, "sub")
    os.makedirs(sub)
    b.write(os.path.join(b.udir, "app.pid"), f"{v.pid}\n")
    refuse(b, "../app.pid", cwd=sub)


@case("pidfile-trust", "trailing slash app.pid/ (not a directory)")
def _(b):
    t = b.target()
    t.role = "any"     # either refused or stopped: both leave everyone else alone
    stop_pidfile(b, b.write("app.pid", f"{t.pid}\n") + "/", {0, 1})


@case("pidfile-trust", "hard link in the user's directory to root's pidfile of a root process")
def _(b):
    v = b.victim()
    real = b.write("real.pid", f"{v.pid}\n")
    hard = os.path.join(b.udir, "hard.pid")
    os.link(real, hard)
    refuse(b, hard)


@case("pidfile-trust", "two other users control the path (user's symlink -> nobody's directory)")
def _(b):
    v = b.victim()
    nb = b.mkdir("nb", 0o755, b.nobody, b.nobody)
    b.write(os.path.join(nb, "app.pid"), f"{v.pid}\n")
    d = b.mkdir("sticky", 0o1777)
    refuse(b, b.symlink(os.path.join(nb, "app.pid"), os.path.join(d, "app.pid"), uid=b.uid))


@case("pidfile-trust", "root's directory inside the user's directory (udir/rootsub/app.pid)")
def _(b):
    v = b.victim()
    sub = os.path.join(b.udir, "rootsub")
    os.makedirs(sub)
    refuse(b, b.write(os.path.join(sub, "app.pid"), f"{v.pid}\n"))


@case("pidfile-trust", "root's 0600 file in root's directory (the normal case)")
def _(b):
    t = b.target()
    stop_pidfile(b, b.write("app.pid", f"{t.pid}\n", mode=0o600), 0)


@case("pidfile-trust", "GRACESTOP_PIDFILE names a file the user owns")
def _(b):
    v = b.victim()
    f = b.write("owned.pid", f"{v.pid}\n", uid=b.uid, gid=b.gid)
    b.gs(["stop", "--wait", "3", "--force"], 1, env={"GRACESTOP_PIDFILE": f}, one_line=True, contains=["rule:"])


@case("pidfile-trust", "user-owned pidfile with --group")
def _(b):
    v = b.victim()
    stop_pidfile(b, b.write("owned.pid", f"{v.pid}\n", uid=b.uid, gid=b.gid), 1, extra=["--group"],
                 one_line=True, contains=["rule:"])


@case("pidfile-trust", "/proc/PID/cwd of the user's process leads to root's file")
def _(b):
    v = b.victim()
    u = b.sentinel("userproc", "bystander", user=True, cwd=b.udir)
    b.write(os.path.join(b.udir, "root.pid"), f"{v.pid}\n")
    refuse(b, f"/proc/{u.pid}/cwd/root.pid")


@case("pidfile-trust", "/proc/self/root/<path> (root's own /proc entries)")
def _(b):
    t = b.target()
    stop_pidfile(b, "/proc/self/root" + b.write("app.pid", f"{t.pid}\n"), 0)


@case("pidfile-trust", "refused pidfile with a deregistration URL: no URL is called")
def _(b):
    v = b.victim()
    b.no_call = True
    refuse(b, b.write("owned.pid", f"{v.pid}\n", uid=b.uid, gid=b.gid),
           extra=["--deregister-url", b.url("ok"), "--drain", "1"])
    b.no_call = True


# ---------------------------------------------------------------------------------------
# pidfile-kind: things that are not regular files, or never end
# ---------------------------------------------------------------------------------------
def kind_case(name, make, said=None, expect=1, one_line=True):
    @case("pidfile-kind", name)
    def _(b):
        v = b.victim()
        path = make(b, v)
        stop_pidfile(b, path, expect, one_line=one_line, contains=[said] if said else (), max_time=5, bounded=True)


def _fifo(b, v):
    p = b.path("fifo.pid")
    os.mkfifo(p)
    return p


def _fifo_writer(b, v):
    p = b.path("fifo.pid")
    os.mkfifo(p)
    fd = os.open(p, os.O_RDWR | os.O_NONBLOCK)
    os.write(fd, f"{v.pid}\n".encode())
    b.keep.append(fd)
    return p


def _socket(b, v):
    p = b.path("sock.pid")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p)
    s.listen(1)
    b.keep.append(s)
    return p


def _dir(b, v):
    return b.mkdir("dir.pid")


def _huge(b, v):
    return b.write("huge.pid", f"{v.pid}\n" + " " * (1 << 20))


def _sparse(b, v):
    p = b.write("sparse.pid", f"{v.pid}\n")
    os.truncate(p, 64 << 30)
    return p


def _sparse_600m(b, v):
    p = b.write("sparse.pid", f"{v.pid}\n")
    os.truncate(p, 600 << 20)
    return p


def _just_over(b, v):
    text = f"{v.pid}\n"
    return b.write("129.pid", text + " " * (129 - len(text)))


kind_case("FIFO with no writer (must not block)", _fifo, "FIFO")
kind_case("FIFO with a writer holding the victim's PID", _fifo_writer, "FIFO")
kind_case("/dev/zero", lambda b, v: "/dev/zero", "character device")
kind_case("/dev/null", lambda b, v: "/dev/null", "character device")
kind_case("/dev/urandom", lambda b, v: "/dev/urandom", "character device")
kind_case("block device /dev/loop0", lambda b, v: "/dev/loop0" if os.path.exists("/dev/loop0") else "/dev/null")
kind_case("unix socket", _socket, "socket")
kind_case("directory", _dir, "directory")
kind_case("directory as dir.pid/.", lambda b, v: _dir(b, v) + "/.", "directory")
kind_case("1 MiB file starting with the victim's PID", _huge, "larger than")
kind_case("sparse 64 GiB file", _sparse, "larger than")
kind_case("sparse 600 MiB file", _sparse_600m, "larger than")
kind_case("129-byte file (one over the limit)", _just_over)
kind_case("/proc/self/stat (a /proc file that names gracestop)", lambda b, v: "/proc/self/stat")
kind_case("/proc/self/status", lambda b, v: "/proc/self/status")
kind_case("/proc/PID/stat of the victim", lambda b, v: f"/proc/{v.pid}/stat")
kind_case("/proc/sys/kernel/ns_last_pid (world-writable, holds the newest PID)",
          lambda b, v: "/proc/sys/kernel/ns_last_pid")
kind_case("symlink to /dev/zero", lambda b, v: b.symlink("/dev/zero", "zero.pid"), "character device")
kind_case("symlink to a FIFO", lambda b, v: b.symlink(_fifo(b, v), "link.pid"), "FIFO")
kind_case("path through a regular file (file/x)", lambda b, v: b.write("file", f"{v.pid}\n") + "/x")
kind_case("empty path ''", lambda b, v: "", expect={1, 2}, one_line=False)


# ---------------------------------------------------------------------------------------
# pidfile-content: what the file holds
# ---------------------------------------------------------------------------------------
def content_case(name, content, expect=1, role="bystander", absent=()):
    """content(b, pid) -> bytes or str; pid is a sentinel's, which has `role`."""
    @case("pidfile-content", name)
    def _(b):
        s = b.sentinel("victim" if role == "bystander" else "target", role, opts=["--thread"])
        data = content(b, s)
        stop_pidfile(b, b.write("app.pid", data), expect, one_line=(expect == 1), absent=absent)


def digits_in(block_start, n):
    return "".join(chr(block_start + int(d)) for d in str(n))


content_case("empty", lambda b, s: "")
content_case("spaces only", lambda b, s: "     ")
content_case("newline only", lambda b, s: "\n")
content_case("+PID", lambda b, s: f"+{s.pid}\n")
content_case("0x10", lambda b, s: "0x10\n")
content_case("hex of the PID", lambda b, s: f"{hex(s.pid)}\n")
content_case("-1", lambda b, s: "-1\n")
content_case("0", lambda b, s: "0\n")
content_case("1", lambda b, s: "1\n")
content_case("-0", lambda b, s: "-0\n")
content_case("-PID", lambda b, s: f"-{s.pid}\n")
content_case("thread id of a sentinel's thread", lambda b, s: f"{s.info['thread']}\n")
content_case("99999999999999999999", lambda b, s: "99999999999999999999\n")
content_case("2147483648 (i32 overflow)", lambda b, s: "2147483648\n")
content_case("4294967297 (wraps to 1 as u32)", lambda b, s: "4294967297\n")
content_case("2147483647 (no such process)", lambda b, s: "2147483647\n", expect=3)
content_case("Arabic-Indic digit three", lambda b, s: "\u0663\n")
content_case("the PID in Arabic-Indic digits", lambda b, s: digits_in(0x660, s.pid) + "\n")
content_case("the PID in full-width digits", lambda b, s: digits_in(0xFF10, s.pid) + "\n")
content_case("PID followed by NUL", lambda b, s: f"{s.pid}\0".encode())
content_case("NUL then PID", lambda b, s: f"\0{s.pid}".encode())
content_case("two PIDs on one line", lambda b, s: f"{s.pid} {b.by.pid}\n")
content_case("two PIDs on two lines", lambda b, s: f"{s.pid}\n{b.by.pid}\n")
content_case("PID with trailing garbage", lambda b, s: f"{s.pid}abc\n")
content_case("PID.0", lambda b, s: f"{s.pid}.0\n")
content_case("1e3", lambda b, s: "1e3\n")
content_case("UTF-8 byte-order mark then PID", lambda b, s: b"\xef\xbb\xbf" + f"{s.pid}\n".encode())
content_case("invalid UTF-8", lambda b, s: b"\xff\xfe" + f"{s.pid}".encode())
content_case("shell injection $(kill -9 ...)", lambda b, s: f"$(kill -9 {b.by.pid})\n")
content_case("terminal escape sequence (must not reach the terminal raw)",
             lambda b, s: f"{s.pid}\x1b]0;owned\x07\x1b[2J\n", absent=("\x1b",))
content_case("40 nines", lambda b, s: "9" * 40 + "\n")
content_case("PID with CRLF", lambda b, s: f"{s.pid}\r\n", expect=0, role="target")
content_case("PID with tabs and spaces around it", lambda b, s: f"\t {s.pid}  \n", expect=0, role="target")
content_case("PID without newline", lambda b, s: f"{s.pid}", expect=0, role="target")
content_case("PID with leading zeros (decimal, never octal)", lambda b, s: f"00{s.pid}\n", expect={0, 1}, role="any")
content_case("PID padded with 60 spaces", lambda b, s: f"{s.pid}" + " " * 60 + "\n", expect={0, 1}, role="any")
content_case("PID surrounded by no-break spaces", lambda b, s: f"\u00a0{s.pid}\u00a0\n", expect={0, 1}, role="any")


@case("pidfile-content", "gracestop's own PID (sh: echo $$ > f; exec gracestop)")
def _(b):
    f = b.path("self.pid")
    # sh -c SCRIPT BIN stop --pidfile F ...: $0 is the binary, $3 the pidfile.
    b.gs(["stop", "--pidfile", f, "--wait", "3", "--force"], 1, one_line=True, shell='echo $$ > "$3"; exec "$0" "$@"')


# ---------------------------------------------------------------------------------------
# staleness: the file's mtime against the process's start
# ---------------------------------------------------------------------------------------
def stale_case(name, mtime, expect, role, contains=()):
    @case("staleness", name)
    def _(b):
        s = b.sentinel("victim" if role == "bystander" else "target", role)
        started = time.time()
        stop_pidfile(b, b.write("app.pid", f"{s.pid}\n", mtime=mtime(started)), expect,
                     one_line=(expect == 1), contains=contains)


stale_case("process started after the file (mtime 1 h ago)", lambda t: t - 3600, 3, "bystander")
stale_case("process started 10 s after the file", lambda t: t - 10, 3, "bystander")
stale_case("mtime 1 s before the process (within the slack)", lambda t: t - 1, 0, "target")
stale_case("mtime 1 h in the future", lambda t: t + 3600, 1, "bystander", ["in the future"])
stale_case("mtime 10 s in the future", lambda t: t + 10, 1, "bystander", ["in the future"])
stale_case("mtime 1 s in the future (within the slack)", lambda t: t + 1, 0, "target")
stale_case("mtime in the year 3000", lambda t: 32503680000, 1, "bystander", ["in the future"])
stale_case("mtime at the epoch", lambda t: 0, 3, "bystander")
stale_case("mtime before the epoch (1960)", lambda t: -315619200, 3, "bystander")


@case("staleness", "recycled PID: the file's process died, a new one got its PID")
def _(b):
    old = b.sentinel("old", "any")
    f = b.write("app.pid", f"{old.pid}\n", mtime=time.time() - 30)
    os.kill(old.pid, signal.SIGKILL)
    old.proc.wait()
    with open("/proc/sys/kernel/ns_last_pid", "w") as ns:
        ns.write(str(old.pid - 1))
    new = b.victim(name="recycled")
    b.check(new.pid == old.pid, f"harness: the PID was not recycled ({old.pid} -> {new.pid})")
    stop_pidfile(b, f, 3)


@case("staleness", "pidfile of a process that exited")
def _(b):
    old = b.sentinel("old", "any")
    f = b.write("app.pid", f"{old.pid}\n")
    os.kill(old.pid, signal.SIGKILL)
    old.proc.wait()
    stop_pidfile(b, f, 3)


@case("staleness", "missing pidfile")
def _(b):
    stop_pidfile(b, b.path("missing.pid"), 3)


@case("staleness", "missing pidfile with --missing-ok")
def _(b):
    stop_pidfile(b, b.path("missing.pid"), 0, extra=["--missing-ok"])


@case("staleness", "pidfile in a missing directory")
def _(b):
    stop_pidfile(b, b.path("no", "such", "dir", "app.pid"), 3)


@case("staleness", "pidfile naming a zombie")
def _(b):
    parent = b.sentinel("zombie-parent", "bystander", opts=["--zombie"])
    stop_pidfile(b, b.write("app.pid", f"{parent.info['zombie']}\n"), 3)


@case("staleness", "a fresh pidfile and a stale one: only the fresh one's process is stopped")
def _(b):
    t = b.target()
    v = b.victim()
    fresh = b.write("fresh.pid", f"{t.pid}\n")
    stale = b.write("stale.pid", f"{v.pid}\n", mtime=time.time() - 3600)
    b.gs(["stop", "--pidfile", fresh, "--pidfile", stale, "--wait", "3"], 0)


@case("staleness", "a good pidfile and a refused one: nothing is signalled")
def _(b):
    a = b.victim(name="good")
    v = b.victim()
    good = b.write("good.pid", f"{a.pid}\n")
    bad = b.write("bad.pid", f"{v.pid}\n", mode=0o666)
    b.gs(["stop", "--pidfile", good, "--pidfile", bad, "--wait", "3"], 1, one_line=True)


@case("staleness", "--pid of a live process and a malformed pidfile: nothing is signalled")
def _(b):
    a = b.victim(name="good")
    bad = b.write("bad.pid", "garbage\n")
    b.gs(["stop", "--pid", a.pid, "--pidfile", bad, "--wait", "3"], 1, one_line=True)


@case("staleness", "--pid and a pidfile naming the same process")
def _(b):
    t = b.target()
    b.gs(["stop", "--pid", t.pid, "--pidfile", b.write("app.pid", f"{t.pid}\n"), "--wait", "3"], 0)


# ---------------------------------------------------------------------------------------
# pid-arg: --pid and its environment variable
# ---------------------------------------------------------------------------------------
def pid_case(name, args, expect=2, env=None, user=False):
    @case("pid-arg", name)
    def _(b):
        v = b.victim()
        values = args(b, v) if callable(args) else args
        b.gs(["stop", *values, "--wait", "3", "--force"], expect, env=env, user=user)


pid_case("--pid -1", ["--pid", "-1"])
pid_case("--pid 0", ["--pid", "0"])
pid_case("--pid 1 (the namespace's init)", ["--pid", "1"])
pid_case("--pid -4242", ["--pid", "-4242"])
pid_case("--pid=-1", ["--pid=-1"])
pid_case("--pid -PID (the victim's group)", lambda b, v: ["--pid", f"-{v.pid}"])
pid_case("--pid -0", ["--pid", "-0"])
pid_case("--pid 2147483647 (no such process)", ["--pid", "2147483647"], expect=3)
pid_case("--pid 2147483648", ["--pid", "2147483648"])
pid_case("--pid 4294967297 (wraps to 1 as u32)", ["--pid", "4294967297"])
pid_case("--pid 1e3", ["--pid", "1e3"])
pid_case("--pid ''", ["--pid", ""])
pid_case("--pid ' '", ["--pid", " "])
pid_case("--pid 0x10", ["--pid", "0x10"])
pid_case("--pid PID.0", lambda b, v: ["--pid", f"{v.pid}.0"])
pid_case("--pid Arabic-Indic digits", lambda b, v: ["--pid", digits_in(0x660, v.pid)])
pid_case("--pid PID,1 (comma list with init)", lambda b, v: ["--pid", f"{v.pid},1"])
pid_case("--pid -1,PID", lambda b, v: ["--pid", f"-1,{v.pid}"])
pid_case("--pid ,", ["--pid", ","])
pid_case("--pid PID --pid 0", lambda b, v: ["--pid", v.pid, "--pid", "0"])
pid_case("GRACESTOP_PID=-1", [], env={"GRACESTOP_PID": "-1"})
pid_case("GRACESTOP_PID=1", [], env={"GRACESTOP_PID": "1"})


@case("pid-arg", "GRACESTOP_PID=PID,0")
def _(b):
    v = b.victim()
    b.gs(["stop", "--wait", "3"], 2, env={"GRACESTOP_PID": f"{v.pid},0"})


@case("pid-arg", "--pid of gracestop itself (sh: exec gracestop --pid $$)")
def _(b):
    b.gs(["stop", "--wait", "3"], 2, shell='exec "$0" "$@" --pid $$')


@case("pid-arg", "--pid of a thread of a sentinel")
def _(b):
    v = b.victim(opts=["--thread"])
    b.gs(["stop", "--pid", v.info["thread"], "--wait", "3", "--force"], 2)


@case("pid-arg", "GRACESTOP_PID of a thread of a sentinel")
def _(b):
    v = b.victim(opts=["--thread"])
    b.gs(["stop", "--wait", "3", "--force"], 2, env={"GRACESTOP_PID": str(v.info["thread"])})


@case("pid-arg", "--pid of a process that exited")
def _(b):
    old = b.sentinel("old", "any")
    os.kill(old.pid, signal.SIGKILL)
    old.proc.wait()
    b.gs(["stop", "--pid", old.pid, "--wait", "3"], 3)


@case("pid-arg", "unprivileged caller: --pid of root's process (EPERM names the owner)")
def _(b):
    v = b.victim()
    b.gs(["stop", "--pid", v.pid, "--wait", "3", "--force"], 1, user=True, one_line=True, contains=["root"])


@case("pid-arg", "unprivileged caller: --pid 1")
def _(b):
    b.gs(["stop", "--pid", "1", "--wait", "3"], 2, user=True)


@case("pid-arg", "unprivileged caller: --pid -1")
def _(b):
    b.gs(["stop", "--pid", "-1", "--wait", "3"], 2, user=True)


def usage_case(name, extra):
    @case("pid-arg", name)
    def _(b):
        v = b.victim()
        b.gs(["stop", "--pid", v.pid, *extra], 2)


usage_case("--signal 0", ["--signal", "0"])
usage_case("--signal -9", ["--signal", "-9"])
usage_case("--signal 99", ["--signal", "99"])
usage_case("--signal TERMINATE", ["--signal", "TERMINATE"])
usage_case("--wait -1", ["--wait", "-1"])
usage_case("--wait 1e3", ["--wait", "1e3"])
usage_case("--wait 99999999999999999999", ["--wait", "99999999999999999999"])
usage_case("--drain nan", ["--drain", "nan"])
usage_case("--dump=KILLME", ["--dump=KILLME"])
usage_case("--deregister-retries 100000", ["--deregister-retries", "100000"])


# ---------------------------------------------------------------------------------------
# zombie-group: zombies, --group, stopped targets
# ---------------------------------------------------------------------------------------
@case("zombie-group", "--pid of a zombie")
def _(b):
    parent = b.sentinel("zombie-parent", "bystander", opts=["--zombie"])
    b.gs(["stop", "--pid", parent.info["zombie"], "--wait", "3", "--force"], 3)


@case("zombie-group", "--pid of a zombie with --group")
def _(b):
    parent = b.sentinel("zombie-parent", "bystander", opts=["--zombie"])
    b.gs(["stop", "--pid", parent.info["zombie"], "--group", "--wait", "3", "--force"], 3)


@case("zombie-group", "target that becomes a zombie (its parent never reaps) counts as gone")
def _(b):
    parent = b.sentinel("parent", "bystander", opts=["--child"], kid_role="target")
    b.gs(["stop", "--pid", parent.child.pid, "--wait", "5"], 0, max_time=4)


@case("zombie-group", "--group of a zombie group leader leaves its live member alone")
def _(b):
    leader = b.sentinel("leader", "any", opts=["--kid-then-exit"], kid_role="bystander")
    b.gs(["stop", "--pid", leader.pid, "--group", "--wait", "3", "--force"], 3)


@case("zombie-group", "--group of a member whose leader is a zombie")
def _(b):
    leader = b.sentinel("leader", "any", opts=["--kid-then-exit"], kid_role="target")
    b.gs(["stop", "--pid", leader.child.pid, "--group", "--wait", "3", "--force"], 0)


@case("zombie-group", "--group on gracestop's own process group")
def _(b):
    b.gs(["stop", "--pid", b.gm.pid, "--group", "--wait", "3", "--force"], 1, one_line=True)


@case("zombie-group", "--group on a process whose group leader is outside the namespace (pgrp 0)")
def _(b):
    v = b.victim(group=None)
    b.gs(["stop", "--pid", v.pid, "--group", "--wait", "3", "--force"], 1, one_line=True)


@case("zombie-group", "--group, the leader forks 3 TERM-ignoring members on SIGTERM, --force")
def _(b):
    t = b.sentinel("leader", "target", opts=["--fork-on-term", "3"], kid_role="target")
    b.gs(["stop", "--pid", t.pid, "--group", "--wait", "1", "--force"], 0, max_time=10)
    b.check(len(b.kids(t)) == 3, f"harness: {len(b.kids(t))} members forked, not 3")


@case("zombie-group", "--group, the leader forks 3 TERM-ignoring members on SIGTERM, no --force")
def _(b):
    t = b.sentinel("leader", "target", opts=["--fork-on-term", "3"], kid_role="survivor")
    b.gs(["stop", "--pid", t.pid, "--group", "--wait", "1"], 4, max_time=10)
    kids = b.kids(t)
    b.check(len(kids) == 3, f"harness: {len(kids)} members forked, not 3")
    for kid in kids:
        b.check(kid.got(signal.SIGTERM), f"{kid.name} never got SIGTERM")


@case("zombie-group", "--group, the leader ignores TERM and forks on it, --force")
def _(b):
    t = b.sentinel("leader", "target", opts=["--term", "ignore", "--fork-on-term", "2"], kid_role="target")
    b.gs(["stop", "--pid", t.pid, "--group", "--wait", "1", "--force"], 0, max_time=10)


@case("zombie-group", "--group via root's pidfile, a group of three")
def _(b):
    t = b.target(name="leader")
    m1 = b.sentinel("member1", "target", group=t.pid)
    m2 = b.sentinel("member2", "target", group=t.pid)
    stop_pidfile(b, b.write("app.pid", f"{t.pid}\n"), 0, extra=["--group"])


@case("zombie-group", "--group via the user's pidfile: a root member in the user's group")
def _(b):
    leader = b.sentinel("leader", "bystander", user=True)
    root_member = b.sentinel("rootmember", "bystander", group=leader.pid)
    stop_pidfile(b, b.write(os.path.join(b.udir, "app.pid"), f"{leader.pid}\n", uid=b.uid, gid=b.gid), 1,
                 extra=["--group"], one_line=True, contains=["rule:"])


@case("zombie-group", "the user's pidfile without --group: the root member is left alone")
def _(b):
    leader = b.sentinel("leader", "target", user=True)
    root_member = b.sentinel("rootmember", "bystander", group=leader.pid)
    stop_pidfile(b, b.write(os.path.join(b.udir, "app.pid"), f"{leader.pid}\n", uid=b.uid, gid=b.gid), 0)


@case("zombie-group", "a stopped (SIGSTOP) target still gets the stop signal")
def _(b):
    t = b.target(opts=["--stop-self"])
    time.sleep(0.05)
    b.gs(["stop", "--pid", t.pid, "--wait", "3"], 0, max_time=4)


@case("zombie-group", "a stopped (SIGSTOP) group with --group")
def _(b):
    t = b.target(name="leader", opts=["--stop-self"])
    m = b.sentinel("member", "target", group=t.pid, opts=["--stop-self"])
    time.sleep(0.05)
    b.gs(["stop", "--pid", t.pid, "--group", "--wait", "3"], 0, max_time=4)


@case("zombie-group", "--group where a member left for its own session is not signalled")
def _(b):
    t = b.sentinel("leader", "target", opts=["--setsid-kid"], kid_role="bystander")
    b.gs(["stop", "--pid", t.pid, "--group", "--wait", "3"], 0)


# ---------------------------------------------------------------------------------------
# signals: gracestop itself signalled at awkward moments
# ---------------------------------------------------------------------------------------
def after_text(b, text, *sigs, pause=0.0):
    def during(p):
        if b.wait_stderr(text, 5):
            for sig in sigs:
                os.kill(p.pid, sig)
                time.sleep(pause)
    return during


@case("signals", "SIGHUP during stop --force (target ignores TERM): SIGKILL still comes")
def _(b):
    t = b.target(opts=["--term", "ignore"])
    b.gs(["stop", "--pid", t.pid, "--wait", "2", "--force"], 0, max_time=8,
         during=after_text(b, "SIGTERM ->", signal.SIGHUP))


@case("signals", "SIGPIPE during stop --force: SIGKILL still comes")
def _(b):
    t = b.target(opts=["--term", "ignore"])
    b.gs(["stop", "--pid", t.pid, "--wait", "2", "--force"], 0, max_time=8,
         during=after_text(b, "SIGTERM ->", signal.SIGPIPE))


@case("signals", "SIGHUP and SIGPIPE during stop --force")
def _(b):
    t = b.target(opts=["--term", "ignore"])
    b.gs(["stop", "--pid", t.pid, "--wait", "2", "--force"], 0, max_time=8,
         during=after_text(b, "SIGTERM ->", signal.SIGHUP, signal.SIGPIPE, signal.SIGHUP))


@case("signals", "SIGHUP during the drain of stop: the drain goes on")
def _(b):
    t = b.target()
    b.gs(["stop", "--pid", t.pid, "--drain", "1500ms", "--wait", "3"], 0, min_time=1.4, max_time=6,
         during=after_text(b, "drain", signal.SIGHUP))


@case("signals", "SIGTERM during the drain of stop skips to the signal")
def _(b):
    t = b.target()
    b.gs(["stop", "--pid", t.pid, "--drain", "20s", "--wait", "3"], 0, max_time=5,
         during=after_text(b, "drain", signal.SIGTERM))


@case("signals", "SIGINT during the drain of stop skips to the signal")
def _(b):
    t = b.target()
    b.gs(["stop", "--pid", t.pid, "--drain", "20s", "--wait", "3"], 0, max_time=5,
         during=after_text(b, "drain", signal.SIGINT))


@case("signals", "SIGTERM twice (target ignores TERM, no --force): the second skips to SIGKILL")
def _(b):
    t = b.target(opts=["--term", "ignore"])

    def during(p):
        if b.wait_stderr("drain", 5):
            os.kill(p.pid, signal.SIGTERM)
            if b.wait_stderr("SIGTERM ->", 5):
                os.kill(p.pid, signal.SIGTERM)
    b.gs(["stop", "--pid", t.pid, "--drain", "20s", "--wait", "20"], 0, max_time=6, during=during)


@case("signals", "SIGTERM during a deregistration that never answers skips to the signal")
def _(b):
    t = b.target()
    b.gs(["stop", "--pid", t.pid, "--deregister-url", b.url("hang"), "--deregister-timeout", "10s",
          "--wait", "3"], 0, max_time=5, during=after_text(b, "plan", signal.SIGTERM, pause=0.0))


@case("signals", "SIGTERM during drain (gracestop drain) ends it")
def _(b):
    b.gs(["drain", "--drain", "20s"], 0, max_time=5, during=after_text(b, "drain", signal.SIGTERM))


@case("signals", "SIGINT during drain (gracestop drain) ends it")
def _(b):
    b.gs(["drain", "--drain", "20s"], 0, max_time=5, during=after_text(b, "drain", signal.SIGINT))


@case("signals", "SIGHUP during gracestop drain does not end it")
def _(b):
    b.gs(["drain", "--drain", "1500ms"], 0, min_time=1.4, max_time=6, during=after_text(b, "drain", signal.SIGHUP))


def early_signal_case(sig, delay):
    @case("signals", f"{signame(sig)} {int(delay * 1000)} ms after start, before the target is pinned")
    def _(b):
        t = b.target()
        t.role = "any"     # stopped, or left alone if gracestop died first: both are fine

        def during(p):
            time.sleep(delay)
            os.kill(p.pid, sig)
        b.gs(["stop", "--pid", t.pid, "--drain", "2s", "--wait", "3"], {0, -sig}, allow_death=(sig,),
             during=during, max_time=6)


for _sig in (signal.SIGTERM, signal.SIGINT):
    for _delay in (0.0, 0.002, 0.01):
        early_signal_case(_sig, _delay)


@case("signals", "SIGCONT and SIGWINCH to gracestop during the wait change nothing")
def _(b):
    t = b.target(opts=["--term", "ignore"])
    b.gs(["stop", "--pid", t.pid, "--wait", "1", "--force"], 0, max_time=6,
         during=after_text(b, "SIGTERM ->", signal.SIGCONT, signal.SIGWINCH))


@case("signals", "stderr is a broken pipe during stop --force")
def _(b):
    t = b.target(opts=["--term", "ignore"])
    b.gs(["stop", "--pid", t.pid, "--wait", "1", "--force"], 0, stdio="broken", max_time=6)


@case("signals", "stdin, stdout and stderr closed during stop --force")
def _(b):
    t = b.target(opts=["--term", "ignore"])
    b.gs(["stop", "--pid", t.pid, "--wait", "1", "--force"], 0, stdio="closed", max_time=6)


@case("signals", "stdio closed with a pidfile (the pidfile must not land on fd 0-2)")
def _(b):
    t = b.target()
    f = b.write("app.pid", f"{t.pid}\n")
    b.gs(["stop", "--pidfile", f, "--wait", "3"], 0, stdio="closed", max_time=6)
    with open(f) as fh:
        b.check(fh.read() == f"{t.pid}\n", "the pidfile was written to")


# ---------------------------------------------------------------------------------------
# files: --deregister-body @FILE and --deregister-cacert FILE
# ---------------------------------------------------------------------------------------
def file_case(name, option, make, expect=2, user=False, stop=False, one_line=None):
    @case("files", name)
    def _(b):
        path = make(b)
        if option == "body":
            flag = ["--deregister-url", b.url("ok"), "--deregister-body", "@" + path]
        else:
            flag = ["--deregister-url", f"https://127.0.0.1:{b.ctx['refused_port']}/tls/{b.token}",
                    "--deregister-cacert", path]
        if stop:
            v = b.victim()
            args = ["stop", "--pid", v.pid, *flag, "--wait", "3"]
        else:
            args = ["drain", *flag, "--deregister-timeout", "500ms", "--deregister-retries", "0"]
        b.gs(args, expect, user=user, max_time=5, bounded=True, one_line=one_line)


def _mkfifo(b, name="body.fifo"):
    p = b.path(name)
    os.mkfifo(p)
    return p


def _sparse_file(size):
    def make(b):
        p = b.write("sparse.bin", b"")
        os.truncate(p, size)
        return p
    return make


def _unreadable(b):
    return b.write("secret.bin", f"token={b.secret}-file\n", mode=0o600)


def _loop(b):
    b.symlink("loop2", "loop1")
    b.symlink("loop1", "loop2")
    return b.path("loop1")


for _opt in ("body", "cacert"):
    file_case(f"{_opt} from a FIFO with no writer (must not block)", _opt, _mkfifo)
    file_case(f"{_opt} from a FIFO, with stop: the target stays untouched", _opt, _mkfifo, stop=True)
    file_case(f"{_opt} from /dev/zero (endless)", _opt, lambda b: "/dev/zero")
    file_case(f"{_opt} from /dev/urandom (endless)", _opt, lambda b: "/dev/urandom")
    file_case(f"{_opt} from a directory", _opt, lambda b: b.mkdir("adir"))
    file_case(f"{_opt} from a missing file", _opt, lambda b: b.path("missing.bin"))
    file_case(f"{_opt} from a file the caller cannot read", _opt, _unreadable, user=True)
    file_case(f"{_opt} from a sparse 64 GiB file", _opt, _sparse_file(64 << 30))
    file_case(f"{_opt} from a sparse 600 MiB file", _opt, _sparse_file(600 << 20))
    file_case(f"{_opt} from a symlink loop", _opt, _loop)
file_case("body from '@' (empty path)", "body", lambda b: "")
file_case("body from /dev/null (empty body, fine either way)", "body", lambda b: "/dev/null", expect={0, 2},
          one_line=False)
file_case("cacert holding no PEM certificate", "cacert", lambda b: b.write("junk.pem", "not a certificate\n"))
file_case("cacert from /dev/null", "cacert", lambda b: "/dev/null")


# ---------------------------------------------------------------------------------------
# http: registries that fail in every way
# ---------------------------------------------------------------------------------------
FAST = ["--deregister-timeout", "500ms", "--deregister-retries", "2"]
FAST_BOUND = (0.5 + 0.25) * 3 + 0.3 + 2.0      # the documented worst case, plus start-up slack


def http_case(name, url, expect=0, extra=FAST, max_time=FAST_BOUND, contains=(), env=None, cat="http", verbose=False):
    @case(cat, name)
    def _(b):
        urls = url(b)
        urls = [urls] if isinstance(urls, str) else urls
        args = ["drain", *(["-v"] if verbose else [])]
        for u in urls:
            args += ["--deregister-url", u]
        b.gs([*args, *extra], expect, max_time=max_time, contains=contains, env=env)


http_case("200 answer", lambda b: b.url("ok"), contains=["-> 200"])
http_case("connection refused", lambda b: b.refused)
http_case("connection refused, strict", lambda b: b.refused, expect=1, extra=FAST + ["--deregister-strict"])
http_case("never answers (accepted, no response)", lambda b: b.url("hang"))
http_case("never answers, strict", lambda b: b.url("hang"), expect=1, extra=FAST + ["--deregister-strict"])
http_case("never accepts (listen backlog only)", lambda b: b.backlog)
http_case("status line, then silence", lambda b: b.url("slowhead"))
http_case("302 with a relative Location", lambda b: b.url("rrel"), contains=["302"])
http_case("302 with an absolute Location", lambda b: b.url("rabs"), contains=["302"])
http_case("302, strict", lambda b: b.url("rabs"), expect=1, extra=FAST + ["--deregister-strict"])
http_case("200 with an endless body", lambda b: b.url("huge"), max_time=3, contains=["-> 200"])
http_case("500 with an endless body (retried)", lambda b: b.url("huge500"))
http_case("connection closed without an answer", lambda b: b.url("close"))
http_case("connection reset", lambda b: b.url("reset"))
http_case("garbage instead of HTTP", lambda b: b.url("garbage"))
http_case("401 answer", lambda b: b.url("e401"))
http_case("16 URLs that never answer, at once", lambda b: [b.url("hang") + f"/{i}" for i in range(16)])
http_case("IPv6 loopback with nothing listening", lambda b: f"http://[::1]:{b.ctx['refused_port']}/v6/{b.token}")
http_case("port 0", lambda b: f"http://127.0.0.1:0/zero/{b.token}")
http_case("HTTP_PROXY set to a dead proxy: loopback goes direct", lambda b: b.url("ok"), contains=["-> 200"],
          env={"HTTP_PROXY": "http://127.0.0.1:9/", "http_proxy": "http://127.0.0.1:9/", "ALL_PROXY":
               "http://127.0.0.1:9/"})
http_case("--deregister-timeout 0", lambda b: b.url("hang"), expect={0, 2},
          extra=["--deregister-timeout", "0", "--deregister-retries", "0"])
http_case("ftp:// URL", lambda b: f"ftp://127.0.0.1:{b.ctx['http_port']}/ftp/{b.token}", expect=2)
http_case("http://:PORT/ (empty host)", lambda b: f"http://:{b.ctx['http_port']}/nohost/{b.token}", expect=2)
http_case("URL with a space", lambda b: f"http://127.0.0.1 :{b.ctx['http_port']}/space/{b.token}", expect=2)
http_case("method P@ST", lambda b: b.url("ok"), expect=2, extra=["--deregister-method", "P@ST"])
http_case("header with CRLF injection", lambda b: b.url("ok"), expect=2,
          extra=["--deregister-header", "X-A: v\r\nX-Injected: 1"])


@case("http", "stop: strict deregistration fails, the target stays untouched")
def _(b):
    v = b.victim()
    b.gs(["stop", "--pid", v.pid, "--deregister-url", b.refused, *FAST, "--deregister-strict", "--wait", "3"],
         1, max_time=FAST_BOUND)


@case("http", "stop: a registry that never answers delays, never blocks, the stop")
def _(b):
    t = b.target()
    b.gs(["stop", "--pid", t.pid, "--deregister-url", b.url("hang"), *FAST, "--wait", "3"], 0,
         max_time=FAST_BOUND + 1)


@case("http", "stop: bad URL with a target: nothing touched, nothing called")
def _(b):
    v = b.victim()
    b.gs(["stop", "--pid", v.pid, "--deregister-url", b.url("ok"), "--deregister-url", "gopher://x/",
          "--wait", "3"], 2)


# ---------------------------------------------------------------------------------------
# secrets: planted in every place the log could show them
# ---------------------------------------------------------------------------------------
def secret_case(name, make, expect=0, extra=FAST, env=None, verbose=True, max_time=FAST_BOUND):
    """make(b, S) -> (urls, more args, env)."""
    @case("secrets", name)
    def _(b):
        S = b.secret
        urls, more, env2 = make(b, S)
        args = ["drain", *(["-v"] if verbose else [])]
        for u in urls:
            args += ["--deregister-url", u]
        b.gs([*args, *more, *extra], expect, env={**(env or {}), **(env2 or {})}, max_time=max_time)


def hdr(value_of):
    return lambda b, S: ([b.url("ok")], ["--deregister-header", value_of(S)], None)


for _kind in ("ok", "e500", "e401", "rabs", "hang"):
    secret_case(f"valid Authorization header, registry '{_kind}'",
                lambda b, S, k=_kind: ([b.url(k)], ["--deregister-header", f"Authorization: Bearer {S}-h"], None))
secret_case("valid header, connection refused",
            lambda b, S: ([b.refused], ["--deregister-header", f"X-Consul-Token: {S}-h"], None))
secret_case("valid header without -v", lambda b, S: ([b.url("e500")], ["--deregister-header", f"X-Token: {S}"], None),
            verbose=False)
secret_case("header value with DEL (invalid)", hdr(lambda S: f"Authorization: Bearer {S}\x7f"), expect=2)
secret_case("header value with a newline (invalid)", hdr(lambda S: f"Authorization: Bearer {S}\nX: y"), expect=2)
secret_case("header value with NUL-free control char (invalid)", hdr(lambda S: f"X-Token: {S}\x01"), expect=2)
secret_case("invalid header name, secret value", hdr(lambda S: f"Bad Name: {S}"), expect=2)
secret_case("header without a colon (typo)", hdr(lambda S: f"Authorization Bearer {S}"), expect=2)
secret_case("header value not UTF-8 (argv bytes)",
            lambda b, S: ([b.url("ok")], ["--deregister-header", f"X-Token: {S}".encode() + b"\xff"], None),
            expect={0, 2})
secret_case("GRACESTOP_DEREGISTER_HEADER, valid, registry 500",
            lambda b, S: ([b.url("e500")], [], {"GRACESTOP_DEREGISTER_HEADER": f"X-Consul-Token: {S}-env"}))
secret_case("GRACESTOP_DEREGISTER_HEADER, invalid value",
            lambda b, S: ([b.url("ok")], [], {"GRACESTOP_DEREGISTER_HEADER": f"X-Consul-Token: {S}\x7f"}), expect=2)
secret_case("GRACESTOP_DEREGISTER_HEADER, two lines, the second without a colon",
            lambda b, S: ([b.url("ok")], [], {"GRACESTOP_DEREGISTER_HEADER": f"X-A: {S}-1\nAuthorization {S}-2"}),
            expect=2)
secret_case("GRACESTOP_DEREGISTER_HEADER, not UTF-8",
            lambda b, S: ([b.url("ok")], [], {"GRACESTOP_DEREGISTER_HEADER": f"X-Token: {S}".encode() + b"\xff"}),
            expect={0, 2})
for _kind in ("ok", "e500", "hang"):
    secret_case(f"URL password, registry '{_kind}'", lambda b, S, k=_kind: ([b.url(k, userinfo=f"user:{S}-pw")], [], None))
secret_case("URL password, connection refused",
            lambda b, S: ([f"http://user:{S}-pw@127.0.0.1:{b.ctx['refused_port']}/r/{b.token}"], [], None))
secret_case("URL user name (a token as the user, as many APIs take it)",
            lambda b, S: ([b.url("ok", userinfo=f"{S}-user")], [], None))
secret_case("URL user name and password, registry 500",
            lambda b, S: ([b.url("e500", userinfo=f"{S}-user:{S}-pw")], [], None))
secret_case("URL password, invalid port", lambda b, S: ([f"http://user:{S}@127.0.0.1:99999/x"], [], None), expect=2)
secret_case("URL token, invalid host", lambda b, S: ([f"http://[bad/?token={S}"], [], None), expect=2)
secret_case("URL password, ftp scheme", lambda b, S: ([f"ftp://user:{S}@127.0.0.1/x"], [], None), expect=2)
for _param in ("token", "access_token", "api_key", "apikey", "password", "sig", "X-Amz-Signature", "client_secret",
               "accessToken", "TOKEN", "private_token", "auth", "session", "jwt", "code"):
    secret_case(f"query parameter {_param}=, registry 500",
                lambda b, S, p=_param: ([b.url("e500", query=f"dc=eu&{p}={S}-q")], [], None))
secret_case("token parameter twice", lambda b, S: ([b.url("ok", query=f"token={S}-1&token={S}-2")], [], None))
secret_case("percent-encoded token value", lambda b, S: ([b.url("ok", query=f"token={S}%2Dx%20y")], [], None))
secret_case("fragment", lambda b, S: ([b.url("ok", frag=f"{S}-frag")], [], None))
secret_case("fragment with access_token (OAuth implicit grant)",
            lambda b, S: ([b.url("ok", frag=f"access_token={S}-frag&token_type=bearer")], [], None))
for _kind, _what in (("rrel", "relative"), ("rabs", "absolute"), ("ruser", "absolute with a password"),
                     ("rschemerel", "scheme-relative"), ("rfrag", "relative with a fragment"),
                     ("rsig", "relative with sig=")):
    secret_case(f"302 Location {_what} carrying the secret", lambda b, S, k=_kind: ([b.url(k)], [], None))
secret_case("GRACESTOP_DEREGISTER_URL with a password",
            lambda b, S: ([], [], {"GRACESTOP_DEREGISTER_URL": b.url("e500", userinfo=f"u:{S}-envpw")}))
secret_case("GRACESTOP_DEREGISTER_URL with a token, two URLs",
            lambda b, S: ([], [], {"GRACESTOP_DEREGISTER_URL": b.url("ok") + " " + b.url("hang", query=f"token={S}")}))
secret_case("GRACESTOP_DEREGISTER_URL invalid, with a password",
            lambda b, S: ([], [], {"GRACESTOP_DEREGISTER_URL": f"http://u:{S}@127.0.0.1:99999/x"}), expect=2)
secret_case("--deregister-body text, registry 500",
            lambda b, S: ([b.url("e500")], ["--deregister-body", f'{{"token":"{S}-body"}}'], None))
secret_case("--deregister-body @file holding a secret, registry 500",
            lambda b, S: ([b.url("e500")], ["--deregister-body", "@" + b.write("body.json", f'{{"t":"{S}"}}')], None))
secret_case("GRACESTOP_DEREGISTER_BODY, registry 401",
            lambda b, S: ([b.url("e401")], [], {"GRACESTOP_DEREGISTER_BODY": f"secret={S}-envbody"}))
secret_case("--deregister-body text and an invalid URL",
            lambda b, S: ([f"http://127.0.0.1:99999/x"], ["--deregister-body", f"{S}-body"], None), expect=2)
secret_case("body file missing: the path is shown, the secret header is not",
            lambda b, S: ([b.url("ok")], ["--deregister-header", f"X-Token: {S}", "--deregister-body",
                                          "@" + b.path("missing.json")], None), expect=2)


@case("secrets", "stop with a secret header and token URL, -v: the target is stopped, nothing leaks")
def _(b):
    t = b.target()
    S = b.secret
    b.gs(["stop", "-v", "--pid", t.pid, "--deregister-url", b.url("ok", query=f"token={S}-q"),
          "--deregister-header", f"Authorization: Bearer {S}-h", "--wait", "3"], 0)


@case("secrets", "stop, strict failure with a secret header and password")
def _(b):
    v = b.victim()
    S = b.secret
    b.gs(["stop", "-v", "--pid", v.pid, "--deregister-url", b.url("e500", userinfo=f"u:{S}-pw"),
          "--deregister-header", f"Authorization: Bearer {S}-h", *FAST, "--deregister-strict", "--wait", "3"], 1,
         max_time=FAST_BOUND)


@case("secrets", "stop, refused pidfile with secrets configured")
def _(b):
    v = b.victim()
    S = b.secret
    refuse(b, b.write("ww.pid", f"{v.pid}\n", mode=0o666),
           extra=["--deregister-url", b.url("ok", userinfo=f"u:{S}-pw"), "--deregister-header", f"X-T: {S}-h"])
    b.no_call = True


# ---------------------------------------------------------------------------------------
# run: signal forwarding, environment, pidfile
# ---------------------------------------------------------------------------------------
def forward_case(sig, label=None):
    @case("run", f"{label or signame(sig)} to gracestop run reaches the child")
    def _(b):
        child = b.external("child", "target")

        def during(p):
            if not child.ready(5):
                b.problems.append("the child never started")
                return
            os.kill(p.pid, sig)
            b.check(b.wait_log(child, f"sig {sig} ", 3), f"the child never received signal {sig}")
            os.kill(p.pid, signal.SIGTERM)
        b.gs(["run", "--wait", "3", "--", *child.argv], 0, during=during, max_time=10)


for _n, _label in ((SIGRTMIN, "SIGRTMIN"), (SIGRTMIN + 1, "SIGRTMIN+1"), (SIGRTMIN + 8, "SIGRTMIN+8"),
                   (SIGRTMAX - 1, "SIGRTMAX-1"), (SIGRTMAX, "SIGRTMAX")):
    forward_case(_n, _label)
for _sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGWINCH, signal.SIGALRM):
    forward_case(_sig)


@case("run", "a burst of 20 SIGRTMIN+2 reaches the child (each is queued)")
def _(b):
    sig = SIGRTMIN + 2
    child = b.external("child", "target", opts=["--count-sig", sig])

    def during(p):
        if not child.ready(5):
            return
        for _ in range(20):
            os.kill(p.pid, sig)
        end = time.monotonic() + 3
        while time.monotonic() < end and child.signals().count(sig) < 20:
            time.sleep(0.01)
        b.check(child.signals().count(sig) == 20, f"the child got {child.signals().count(sig)} of 20")
        os.kill(p.pid, signal.SIGTERM)
    b.gs(["run", "--wait", "3", "--", *child.argv], 0, during=during, max_time=10)


def env_case(name, env):
    @case("run", name)
    def _(b):
        dump = b.path("env.txt")
        child = b.external("child", "any", opts=["--envdump", dump])
        b.gs(["run", "--wait", "3", "--", *child.argv], 0, env={k: v(b) for k, v in env.items()}, max_time=8)
        try:
            with open(dump) as f:
                text = f.read()
        except OSError:
            b.problems.append("the child never wrote its environment")
            return
        b.leak_text(text, "child environment")
        inherited = [l.split("=", 1)[0] for l in text.splitlines() if l.startswith("GRACESTOP_")]
        if inherited:
            b.leaks.append(f"child environment holds {inherited}")


env_case("the child does not inherit GRACESTOP_DEREGISTER_HEADER",
         {"GRACESTOP_DEREGISTER_HEADER": lambda b: f"X-Consul-Token: {b.secret}-env"})
env_case("the child does not inherit GRACESTOP_DEREGISTER_URL (with a password) or GRACESTOP_WAIT",
         {"GRACESTOP_DEREGISTER_URL": lambda b: b.url("ok", userinfo=f"u:{b.secret}-pw"),
          "GRACESTOP_WAIT": lambda b: "3", "GRACESTOP_DEREGISTER_TIMEOUT": lambda b: "500ms"})
env_case("the child does not inherit GRACESTOP_DEREGISTER_BODY",
         {"GRACESTOP_DEREGISTER_BODY": lambda b: f"token={b.secret}-body"})


@case("run", "SIGTERM runs the deregistration with a secret header: nothing leaks")
def _(b):
    child = b.external("child", "target")
    S = b.secret

    def during(p):
        if child.ready(5):
            os.kill(p.pid, signal.SIGTERM)
    b.gs(["run", "-v", "--deregister-url", b.url("e500", query=f"token={S}-q"), *FAST, "--wait", "3", "--",
          *child.argv], 0, env={"GRACESTOP_DEREGISTER_HEADER": f"Authorization: Bearer {S}-h"}, during=during,
         max_time=FAST_BOUND + 2)


def run_refusal(name, make, expect=125, env_key=None):
    @case("run", name)
    def _(b):
        marker = b.path("started")
        pidfile = make(b)
        args = ["run"]
        env = None
        if env_key:
            env = {env_key: pidfile}
        else:
            args += ["--pidfile", pidfile]
        b.gs([*args, "--", "/usr/bin/touch", marker], expect, env=env, one_line=True, max_time=5)
        b.check(not os.path.exists(marker), "the child was started")
        if os.path.isfile(pidfile):
            b.check(False, f"the pidfile {pidfile} was left behind")


run_refusal("--pidfile in a world-writable directory", lambda b: os.path.join(b.mkdir("open", 0o777), "gs.pid"))
run_refusal("GRACESTOP_PIDFILE in a world-writable directory",
            lambda b: os.path.join(b.mkdir("open", 0o777), "gs.pid"), env_key="GRACESTOP_PIDFILE")
run_refusal("--pidfile in the user's directory", lambda b: os.path.join(b.udir, "gs.pid"))
run_refusal("--pidfile in a directory the user's group may write",
            lambda b: os.path.join(b.mkdir("grp", 0o775, 0, b.gid), "gs.pid"))
run_refusal("--pidfile in a missing directory", lambda b: b.path("missing", "gs.pid"))
run_refusal("--pidfile that is an existing directory", lambda b: b.mkdir("adir"))


@case("run", "--pidfile over a symlink the user planted in a sticky directory: the link's target is untouched")
def _(b):
    precious = b.write("precious.txt", "precious\n")
    d = b.mkdir("sticky", 0o1777)
    link = b.symlink(precious, os.path.join(d, "gs.pid"), uid=b.uid)
    child = b.external("child", "target")

    def during(p):
        if child.ready(5):
            os.kill(p.pid, signal.SIGTERM)
    b.gs(["run", "--pidfile", link, "--wait", "3", "--", *child.argv], 0, during=during, max_time=8)
    with open(precious) as f:
        b.check(f.read() == "precious\n", "the symlink's target was overwritten")


@case("run", "COMMAND not found")
def _(b):
    b.gs(["run", "--", b.path("no-such-command")], 127, one_line=True)


@case("run", "COMMAND not executable")
def _(b):
    b.gs(["run", "--", b.write("script.sh", "#!/bin/sh\n", mode=0o644)], 126, one_line=True)


@case("run", "COMMAND is a directory")
def _(b):
    b.gs(["run", "--", b.mkdir("adir")], 126, one_line=True)


@case("run", "--stop-on KILL")
def _(b):
    marker = b.path("started")
    b.gs(["run", "--stop-on", "KILL", "--", "/usr/bin/touch", marker], 2)
    b.check(not os.path.exists(marker), "the child was started")


@case("run", "--deregister-body @FIFO: refused before the child starts")
def _(b):
    marker = b.path("started")
    b.gs(["run", "--deregister-url", b.url("ok"), "--deregister-body", "@" + _mkfifo(b), "--",
          "/usr/bin/touch", marker], 2, max_time=5)
    b.check(not os.path.exists(marker), "the child was started")


@case("run", "a child that ignores SIGTERM is killed after --wait (exit 137)")
def _(b):
    child = b.external("child", "target", opts=["--term", "ignore"])

    def during(p):
        if child.ready(5):
            os.kill(p.pid, signal.SIGTERM)
    b.gs(["run", "--wait", "1", "--", *child.argv], 137, during=during, max_time=8)


@case("run", "a descendant that left the group (setsid) is stopped too")
def _(b):
    child = b.external("child", "target", opts=["--setsid-kid"])
    kid = b.external("child-kid0", "target")
    kid.log = child.log + ".kid0"

    def during(p):
        if child.ready(5) and kid.ready(5):
            os.kill(p.pid, signal.SIGTERM)
    b.gs(["run", "--wait", "2", "--", *child.argv], 0, during=during, max_time=8)


@case("run", "SIGTERM sent by the user to root's gracestop run is refused by the kernel, not acted on")
def _(b):
    child = b.external("child", "survivor")

    def during(p):
        if not child.ready(5):
            return
        r = subprocess.run(["setpriv", f"--reuid={b.uid}", f"--regid={b.gid}", "--clear-groups",
                            "kill", "-TERM", str(p.pid)], capture_output=True)
        b.check(r.returncode != 0, "the user could signal root's gracestop")
        time.sleep(0.3)
        b.check(child.alive() and not child.got(signal.SIGTERM), "the child was stopped")
        child.role = "target"
        os.kill(p.pid, signal.SIGTERM)
    b.gs(["run", "--wait", "3", "--", *child.argv], 0, during=during, max_time=8)


# ---------------------------------------------------------------------------------------
# Outside the namespace: the registry, the throwaway user, running cases, the report
# ---------------------------------------------------------------------------------------
class Registry:
    """The fake registry on 127.0.0.1. The first path segment picks the behaviour."""

    def __init__(self, secret, log_path):
        self.secret, self.log_path, self.stop = secret, log_path, threading.Event()
        self.lock = threading.Lock()
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                registry.record(f"{self.command} {self.path}")
                kind = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
                port = self.server.server_address[1]
                S = registry.secret
                if kind not in ("hang", "close", "reset", "slowhead"):
                    n = int(self.headers.get("Content-Length") or 0)
                    if n:
                        self.rfile.read(min(n, 1 << 20))
                locations = {
                    "rrel": f"/next?token={S}-loc&x=1",
                    "rabs": f"http://127.0.0.1:{port}/next?access_token={S}-loc",
                    "ruser": f"http://admin:{S}-loc@127.0.0.1:{port}/next",
                    "rschemerel": f"//127.0.0.1:{port}/next?token={S}-loc",
                    "rfrag": f"/next#access_token={S}-loc",
                    "rsig": f"/next?sig={S}-loc",
                }
                if kind in locations:
                    self.send_response(302)
                    self.send_header("Location", locations[kind])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind in ("ok", "next"):
                    self.reply(200)
                elif kind == "e500":
                    self.reply(500)
                elif kind == "e401":
                    self.reply(401)
                elif kind == "hang":
                    registry.stop.wait(60)
                    self.close_connection = True
                elif kind == "slowhead":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    self.wfile.flush()
                    registry.stop.wait(60)
                    self.close_connection = True
                elif kind in ("huge", "huge500"):
                    self.send_response(200 if kind == "huge" else 500)
                    self.send_header("Content-Length", str(10 ** 12))
                    self.end_headers()
                    chunk = b"x" * 65536
                    end = time.monotonic() + 20
                    try:
                        while time.monotonic() < end and not registry.stop.is_set():
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    self.close_connection = True
                elif kind == "close":
                    self.close_connection = True
                elif kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                elif kind == "garbage":
                    self.wfile.write(b"\x00\x01\x02 garbage \xff\r\n\r\n")
                    self.close_connection = True
                else:
                    self.reply(404)

            def reply(self, status):
                body = b"ok\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 64

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        # A port that refuses: bound to find a free number, then closed.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.refused_port = s.getsockname()[1]
        s.close()
        # A socket that listens and never accepts.
        self.backlog = socket.socket()
        self.backlog.bind(("127.0.0.1", 0))
        self.backlog.listen(128)
        self.backlog_port = self.backlog.getsockname()[1]

    def record(self, line):
        with self.lock, open(self.log_path, "a") as f:
            f.write(line + "\n")

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.backlog.close()


def run_case(case_obj, label, binary, base_ctx, work):
    case_dir = os.path.join(work, label, f"{case_obj.index:03d}")
    os.makedirs(case_dir)
    os.chmod(case_dir, 0o755)
    ctx = dict(base_ctx, label=label, bin=binary, index=case_obj.index, case_dir=case_dir)
    ctx_path = os.path.join(case_dir, "ctx.json")
    with open(ctx_path, "w") as f:
        json.dump(ctx, f)
    out = open(os.path.join(case_dir, "driver.out"), "wb")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--", sys.executable, SCRIPT,
            "--inner", ctx_path]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    out.close()
    try:
        proc.wait(CASE_TIMEOUT + OUTER_SLACK)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    result_path = os.path.join(case_dir, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            r = json.load(f)
    else:
        with open(os.path.join(case_dir, "driver.out"), errors="replace") as f:
            tail = f.read()[-800:]
        r = dict(cmd="", expect=[], code=None, hang=time.monotonic() - start > CASE_TIMEOUT + OUTER_SLACK - 1,
                 elapsed=round(time.monotonic() - start, 3), stdout="", stderr="", wrong=[], leaks=[],
                 problems=[f"harness: no result from the namespace (driver said: {tail!r})"], passed=False)
    r.update(cat=case_obj.cat, name=case_obj.name, index=case_obj.index)
    return r


def create_user():
    name = f"gshostile{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
                   check=True, capture_output=True)
    import pwd
    entry = pwd.getpwnam(name)
    return name, entry.pw_uid, entry.pw_gid


def remove_user(name):
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


def summarize(results):
    rows = {}
    for cat in CATEGORIES + ["total"]:
        rows[cat] = dict(cases=0, passed=0, wrong=0, hangs=0, leaks=0, crashes=0)
    for r in results:
        for key in (r["cat"], "total"):
            row = rows[key]
            row["cases"] += 1
            row["passed"] += bool(r["passed"])
            row["wrong"] += len(r["wrong"])
            row["hangs"] += bool(r["hang"])
            row["leaks"] += bool(r["leaks"])
            row["crashes"] += bool(r.get("crash"))
    return rows


def print_tables(current, baseline, bin_path, baseline_path):
    cur = summarize(current)
    base = summarize(baseline) if baseline else None
    print()
    print(f"current : {bin_path}")
    if base:
        print(f"baseline: {baseline_path}")
    print("wrong = signals (and deaths) of processes the case must not touch; hangs, leaks, crashes = cases")
    cols = ["cases", "passed", "wrong", "hangs", "leaks", "crashes"]
    if base:
        head = f"{'category':<16}" + "".join(f"{c:>16}" for c in cols)
        print(head)
        print(f"{'':<16}" + "".join(f"{'current  base':>16}" for _ in cols))
    else:
        print(f"{'category':<16}" + "".join(f"{c:>9}" for c in cols))
    print("-" * (16 + (16 if base else 9) * len(cols)))
    for cat in CATEGORIES + ["total"]:
        if cat == "total":
            print("-" * (16 + (16 if base else 9) * len(cols)))
        if cur[cat]["cases"] == 0:
            continue
        if base:
            cells = "".join(f"{cur[cat][c]:>9}{base[cat][c]:>7}" for c in cols)
        else:
            cells = "".join(f"{cur[cat][c]:>9}" for c in cols)
        print(f"{cat:<16}{cells}")


def describe_failure(r, full=True):
    lines = [f"[{r['index']:03d}] {r['cat']}: {r['name']}",
             f"      $ {r['cmd']}",
             f"      expected {' or '.join(map(describe_code, r['expect']))}, got {describe_code(r['code'])}"
             f" in {r['elapsed']}s" + (f", peak RSS {r['maxrss_kb'] // 1024} MiB" if r.get("maxrss_kb") else "")
             + ("" if r.get("one_line") is None else f", one clear line: {'yes' if r['one_line'] else 'no'}")]
    for key, label in (("wrong", "WRONG PROCESS"), ("leaks", "LEAK"), ("problems", "problem")):
        for item in r.get(key) or []:
            lines.append(f"      {label}: {item}")
    if r.get("crash"):
        lines.append(f"      CRASH: {r['crash']}")
    if r.get("hang"):
        lines.append("      HANG")
    if full:
        err = r.get("stderr", "").rstrip()
        if err:
            shown = err if len(err) < 1200 else err[:1200] + " [...]"
            lines += ["      stderr: " + l for l in shown.splitlines()]
        out = r.get("stdout", "").rstrip()
        if out:
            lines += ["      stdout: " + l for l in out[:400].splitlines()]
    return "\n".join(lines)


def run_all(label, binary, cases, base_ctx, work):
    results = []
    for c in cases:
        r = run_case(c, label, binary, base_ctx, work)
        results.append(r)
        mark = "ok  " if r["passed"] else "FAIL"
        flags = "".join(f" {k}" for k, v in (("WRONG", r["wrong"]), ("HANG", r["hang"]), ("LEAK", r["leaks"]),
                                                ("CRASH", r.get("crash"))) if v)
        print(f"{label:>8} {mark} [{c.index:03d}] {c.cat}: {c.name} -> {describe_code(r['code'])} "
              f"({r['elapsed']:.2f}s){flags}", file=sys.stderr, flush=True)
    return results


def check_namespaces():
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--", "true"],
                       capture_output=True, timeout=20)
    return r.returncode == 0, r.stderr.decode(errors="replace").strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(REPO, "target", "release", "gracestop"))
    parser.add_argument("--baseline", help="a second binary (e.g. built from 4bce42a), shown beside --bin")
    parser.add_argument("--only", help="run only cases whose category or name contains this text")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", help="write every result to this file")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner_main(args.inner)
        return 0
    cases = [c for c in CASES if not args.only or args.only in c.cat or args.only in c.name]
    if args.list:
        for c in cases:
            print(f"[{c.index:03d}] {c.cat}: {c.name}")
        print(f"{len(cases)} cases")
        return 0
    if os.geteuid() != 0:
        print("hostile.py must run as root (PID namespaces, chown, a throwaway user)", file=sys.stderr)
        return 2
    ok, why = check_namespaces()
    if not ok:
        print(f"SKIPPED: PID namespaces do not work here ({why})", file=sys.stderr)
        return 2
    for path in filter(None, (args.bin, args.baseline)):
        if not os.access(path, os.X_OK):
            print(f"not an executable: {path}", file=sys.stderr)
            return 2
    if not os.access(SYS_PY, os.X_OK):
        print(f"{SYS_PY} is needed (the throwaway user runs the sentinels with it)", file=sys.stderr)
        return 2

    def interrupted(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)

    work = tempfile.mkdtemp(prefix="gs-hostile-", dir="/tmp")
    os.chmod(work, 0o755)
    user = None
    registry = None
    try:
        bindir = os.path.join(work, "bin")
        os.makedirs(bindir)
        binaries = {"current": os.path.join(bindir, "gracestop-current")}
        shutil.copy2(args.bin, binaries["current"])
        if args.baseline:
            binaries["baseline"] = os.path.join(bindir, "gracestop-baseline")
            shutil.copy2(args.baseline, binaries["baseline"])
        for path in binaries.values():
            os.chmod(path, 0o755)
        sentinel = os.path.join(work, "sentinel.py")
        with open(sentinel, "w") as f:
            f.write(SENTINEL)
        os.chmod(sentinel, 0o644)
        user, uid, gid = create_user()
        secret = "S3CRET-" + secrets.token_hex(6)
        requests_log = os.path.join(work, "requests.log")
        registry = Registry(secret, requests_log)
        import pwd
        base_ctx = dict(sentinel=sentinel, user=user, uid=uid, gid=gid, nobody=pwd.getpwnam("nobody").pw_uid,
                        secret=secret, http_port=registry.port, refused_port=registry.refused_port,
                        backlog_port=registry.backlog_port, requests_log=requests_log)
        print(f"{len(cases)} cases; work directory {work}; throwaway user {user} ({uid}); secret marker {secret}",
              file=sys.stderr)
        started = time.monotonic()
        current = run_all("current", binaries["current"], cases, base_ctx, work)
        baseline = run_all("baseline", binaries["baseline"], cases, base_ctx, work) if args.baseline else None
        took = time.monotonic() - started
    finally:
        if registry:
            registry.close()
        if user:
            remove_user(user)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print_tables(current, baseline, args.bin, args.baseline)
    print(f"({took:.0f}s)")
    failing = [r for r in current if not r["passed"]]
    print()
    print(f"failing cases on the current build ({args.bin}): {len(failing)}")
    for r in failing:
        print(describe_failure(r))
    if baseline:
        failing_base = [r for r in baseline if not r["passed"]]
        print()
        print(f"failing cases on the baseline ({args.baseline}): {len(failing_base)}")
        for r in failing_base:
            print(describe_failure(r, full=False))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"current": current, "baseline": baseline}, f, indent=1)
    totals = summarize(current)["total"]
    clean = totals["wrong"] == totals["hangs"] == totals["leaks"] == totals["crashes"] == 0
    return 0 if clean and totals["passed"] == totals["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
