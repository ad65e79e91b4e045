#!/usr/bin/python3
"""gracestop's own adaptation of tini's and dumb-init's behavioural test suites.

    python3 tests/peers/run.py --init gracestop|tini|dumb-init [--gracestop PATH] [--case SUBSTR]

What it is. tini (test/run_inner_tests.py, test/run_outer_tests.py and their helper
scripts) and dumb-init (tests/*.py, tests/test-zombies) test their behaviour as an
init. Each of their cases is rewritten here, from what it asserts (facts carry
over, their code does not: no line of theirs is copied, and the helper programs in
helpers/ are written for this suite). Every case runs against `gracestop run` and,
as the control in the same shape, against the real peer (tini's cases for tini,
dumb-init's for dumb-init): a case that the peer itself fails is a wrong
adaptation, not a gracestop bug. Standard library only; helpers run under
/usr/bin/python3.

Output: one line per case, `PASS|FAIL|N/A  origin::case[params]  (reason)`, then
`passed N, failed N, not applicable N`; exit 1 if any failed. Case ids name the
peer's file and test (`dumb-init:tests/cwd_test.py::test_working_directories[setsid,debug]`).
A PASS of gracestop where the assertion differs from the peer's shows why in
parentheses.

How the mapping works (/work/spec-init.md, README `gracestop run`):
- dumb-init `CMD` -> `gracestop run -- CMD`; its setsid mode (default) -> gracestop's
  default (signals go to the child's process group); DUMB_INIT_SETSID=0 or -c ->
  `--single-child`. "both_setsid_modes" is [setsid] / [nosetsid] accordingly.
- "both_debug_modes": [debug] / [nodebug] is DUMB_INIT_DEBUG=1/0 for dumb-init, `-v`
  or nothing for gracestop; where the peer disables debug output gracestop gets -q.
- tini `-e N` -> `--remap-exit N=0` (comma-separated for many); `-g` and
  TINI_KILL_PROCESS_GROUP -> gracestop's default; `-s`, TINI_SUBREAPER and the
  subreaper proxy -> nothing (gracestop is always a subreaper); `-w` -> `-v` (its
  `reap orphan PID exited with N` lines); TINI_VERBOSITY and -vvv -> `-v`;
  `-p SIG` -> `--signal SIG` (the child's parent-death signal is the stop signal).
- Documented differences change gracestop's assertion, and the case says so: TERM
  (and INT, unless `--stop-on TERM`) is a stop request, so the child sees the stop
  signal then SIGCONT (DESIGN §3); orphans get the stop signal when the child is
  gone and gracestop waits for them (spec: Orphans); the child's blocked mask is
  cleared at exec (DESIGN §5); a bad flag or a missing COMMAND exits 2; not found
  exits 127. dumb-init's signal-proxy test runs gracestop with `--stop-on TERM`, so
  that SIGINT is a plain forwarded signal.
- Cases where the peer must be PID 1 (tini's outer tests, run in Docker, and
  dumb-init's test-zombies) start the init as PID 1 of a nested PID namespace
  (`unshare --pid --fork --mount-proc INIT ...`); the pty cases use pty.fork().
- Waits are readiness handshakes (print_signals says `ready (pid: N)` once its
  handlers are set) or bounded polls of /proc, never bare sleeps.

Not applicable, with the reason (listed as N/A lines for both inits of the origin):
- dumb-init `-r` signal rewriting (test_proxies_signals_with_rewrite with a non-empty
  map, test_default_rewrites_can_be_overriden_with_setsid_enabled,
  test_ignored_signals_are_not_proxied, test_rewrite_errors): gracestop has no
  signal rewriting. The empty-map case of test_proxies_signals_with_rewrite is kept.
- dumb-init test_sighup_sigcont_ignored_if_was_session_leader: it asserts dumb-init's
  debug messages only.
- tini's zombie reaping failure test (the no-subreaper warning): gracestop is always
  a child subreaper, so there is no mode without it to warn about.
- tini's installation tests (dpkg/rpm in four images): packaging, not behaviour.
- tini's static-binary entrypoint and MINIMAL build: one binary of each init here.
- `docker attach`: the tty cases type into the pty directly instead.

valgrind (tini's outer test): gracestop's run uses one suppression, rust-std.supp,
for the 48-byte handle of Rust's std::thread::current() that any Rust program leaves
"possibly lost" (rust-lang/rust#135608); the case's PASS line says when it was used.
Any other error fails.

Safety. The runner re-executes itself as PID 1 of its own PID namespace
(`unshare --pid --fork --mount-proc`, root only; if refused it says so, runs
without, and the nested-namespace cases are N/A). PID 1 only reaps; the cases run in
its child, so orphans are reaped at once as a real init would. After every case
everything else in the namespace is SIGKILLed by PID (all of it was started here);
whatever is left when the runner ends dies with the namespace. Without a namespace
the reaping parent is a child subreaper instead, and cleanup kills what is below it. Signals go only to
processes this suite started, by PID. Every case is bounded (20 s by default; the
512-run exit-code case and valgrind get more), after which it fails and its
processes are killed.
"""

import argparse
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS = os.path.join(HERE, "helpers")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
NS_MARK = "PEERS_SUITE_NAMESPACE"
sys.path.insert(0, HELPERS)
import procs  # noqa: E402

S = signal.Signals
NORMAL_SIGNALS = sorted(set(range(1, 32)) - {S.SIGKILL, S.SIGSTOP, S.SIGCHLD, S.SIGTSTP, S.SIGTTIN, S.SIGTTOU})
SUSPEND_SIGNALS = [S.SIGTSTP, S.SIGTTIN, S.SIGTTOU]


class Fail(Exception):
    pass


class NotApplicable(Exception):
    pass


class CaseTimeout(BaseException):
    pass


class X:
    """The run's settings and the current case's bookkeeping."""

    init = None
    gs = tini = dumb_init = None
    ns = True
    ns_note = ""
    tmp = None
    started = []
    pty_children = []
    fds = []
    note = None


# --- registry ---------------------------------------------------------------

CASES = []
TINI = ("gracestop", "tini")
DUMB = ("gracestop", "dumb-init")


def case(origin, name, inits, params=(None,), budget=20):
    """Registers FN once per param. Each param is (label, value) or None."""

    def register(fn):
        for param in params:
            label = "" if param is None else "[%s]" % param[0]
            value = () if param is None else (param[1],)
            CASES.append(("%s::%s%s" % (origin, name, label), inits, fn, value, budget))
        return fn

    return register


def na(origin, name, inits, reason):
    def fn():
        raise NotApplicable(reason)

    CASES.append(("%s::%s" % (origin, name), inits, fn, (), 5))


def differs(note):
    """Records why gracestop's assertion differs from the peer's (shown on PASS)."""
    if X.init == "gracestop":
        X.note = "gracestop: " + note


def grid(*axes):
    """The product of parameter axes, each a list of (label, value)."""
    out = [("", ())]
    for axis in axes:
        out = [((a + "," + lab) if a else lab, v + (val,)) for a, v in out for lab, val in axis]
    return out


DEBUG = [("debug", True), ("nodebug", False)]
SETSID = [("setsid", True), ("nosetsid", False)]


# --- process helpers ----------------------------------------------------------


def helper(name):
    return os.path.join(HELPERS, name)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRACESTOP_", "TINI_", "DUMB_INIT_", "POSIXLY"))}
    env.pop(NS_MARK, None)
    env.update(extra)
    return env


def spawn(argv, env=None, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=None):
    err = tempfile.TemporaryFile(dir=X.tmp)
    p = subprocess.Popen(argv, env=clean_env() if env is None else env, stdin=stdin, stdout=stdout, stderr=err, cwd=cwd)
    p.err_file = err
    X.started.append(p)
    return p


def stderr_of(p):
    p.err_file.seek(0)
    return p.err_file.read().decode("utf-8", "replace")


def short(text, limit=300):
    text = " | ".join(line for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wait(p, timeout, what="the init"):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail("%s still runs after %g s (stderr: %s)" % (what, timeout, short(stderr_of(p)))) from None


def until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise Fail("%s: not within %g s" % (what, timeout))
        time.sleep(0.01)


def alive(pid):
    return os.path.isdir("/proc/%d" % pid)


def running(pid):
    return procs.state(pid) in ("running", "sleeping")


def tree(pid):
    return [pid] + procs.descendants(pid)


def find_descendant(root, comm, timeout=5):
    """Waits (bounded) for a descendant of ROOT whose comm is COMM; returns its PID."""
    found = []

    def look():
        table = procs.table()
        found[:] = [p for p in procs.descendants(root, table) if p in table and table[p][3] == comm]
        return bool(found)

    until(look, timeout, "a %r process below %d" % (comm, root))
    return found[0]


class Lines:
    """Line reader over a pipe, with a time limit on every line."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def readline(self, timeout=5):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise Fail("no line within %g s (so far: %r)" % (timeout, self.buf))
            chunk = os.read(self.fd, 4096)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"


def expect_lines(out, numbers, what, init=None):
    """The child's next lines are NUMBERS; INIT, if given, is checked for an early death."""
    for n in numbers:
        try:
            line = out.readline()
        except Fail as e:
            line = e
        if line != b"%d\n" % n:
            dead = init is not None and init.poll() is not None
            raise Fail("%s: expected the child to print %d, got %r%s" % (
                what, n, line, "; the init is dead: %s" % exit_text(init.returncode) if dead else ""))


def exit_text(code):
    return "killed by %s" % S(-code).name if code < 0 else "exit %d" % code


def pid1(argv):
    """ARGV as PID 1 of a nested PID namespace (as in a container)."""
    if not X.ns:
        raise NotApplicable("needs a PID namespace, refused here: %s" % X.ns_note)
    return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] + argv


def ns_init(unshare_pid, timeout=5):
    """The outer PID of the PID 1 that `unshare --fork` started, once it has exec'd."""
    found = []

    def look():
        table = procs.table()
        found[:] = [p for p, s in table.items() if s[0] == unshare_pid and s[3] != "unshare"]
        return bool(found)

    until(look, timeout, "the namespace's PID 1 under unshare %d" % unshare_pid)
    return found[0]


# --- pty helpers --------------------------------------------------------------


def pty_spawn(argv, env):
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    X.pty_children.append(pid)
    X.fds.append(fd)
    return pid, fd


def ttyflags(fd):
    """Output unprocessed and input not echoed, to compare bytes exactly."""
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.OPOST
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def pty_read(fd, timeout):
    """What is readable within TIMEOUT; None once the terminal is closed (EIO)."""
    if not select.select([fd], [], [], timeout)[0]:
        return b""
    try:
        return os.read(fd, 4096) or None
    except OSError:
        return None


def readall(fd, timeout=10):
    """Everything until every process closed the terminal."""
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = pty_read(fd, 0.1)
        if chunk is None:
            return out
        out += chunk
    raise Fail("the terminal stayed open for %g s; output so far: %r" % (timeout, out[-300:]))


def read_until(fd, needle, timeout=5):
    out, deadline = b"", time.monotonic() + timeout
    while needle not in out:
        if time.monotonic() > deadline:
            raise Fail("no %r on the terminal within %g s; output: %r" % (needle, timeout, out[-300:]))
        chunk = pty_read(fd, 0.1)
        if chunk is None:
            raise Fail("the terminal closed before %r; output: %r" % (needle, out[-300:]))
        out += chunk
    return out


def pty_wait(pid, fd, timeout):
    """Waits for the pty child, draining its output; returns (exit code, output)."""
    out, deadline = b"", time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            X.pty_children.remove(pid)
            while True:
                chunk = pty_read(fd, 0)
                if not chunk:
                    break
                out += chunk
            return os.waitstatus_to_exitcode(status), out
        if time.monotonic() > deadline:
            raise Fail("the init on the terminal still runs after %g s; output: %r" % (timeout, out[-300:]))
        out += pty_read(fd, 0.05) or b""


# --- command builders -----------------------------------------------------------


def di_run(argv, setsid=None, debug=None, gs=(), di=(), **env):
    """(argv, env) running ARGV under the init, in dumb-init's terms."""
    e = clean_env(**env)
    if X.init == "dumb-init":
        e["DUMB_INIT_SETSID"] = "" if setsid is None else ("1" if setsid else "0")
        e["DUMB_INIT_DEBUG"] = "" if debug is None else ("1" if debug else "0")
        return [X.dumb_init] + list(di) + list(argv), e
    opts = (["-v"] if debug else []) + ([] if setsid in (None, True) else ["--single-child"]) + list(gs)
    return [X.gs, "run"] + opts + ["--"] + list(argv), e


def start_print_signals(setsid=None, debug=None, gs=()):
    """Starts print_signals under the init; returns (init process, child PID, line reader)."""
    argv, env = di_run([PY, helper("print_signals.py")], setsid, debug, gs=gs)
    p = spawn(argv, env, stdout=subprocess.PIPE)
    out = Lines(p.stdout)
    line = out.readline()
    m = re.match(rb"^ready \(pid: ([0-9]+)\)\n$", line)
    if not m:
        raise Fail("print_signals did not say ready: %r (stderr: %s)" % (line, short(stderr_of(p))))
    return p, int(m.group(1)), out


def stop_request(signum):
    """What the child prints when the init gets SIGNUM (TERM under gracestop: a stop)."""
    if X.init == "gracestop" and signum == S.SIGTERM:
        differs("TERM is a stop request, so the child sees 15 then 18 (SIGCONT follows the stop signal, DESIGN §3)")
        return [15, 18]
    return [signum]


def tini_variant(variant, tini_opts=(), gs_opts=()):
    """(argv prefix, env) for tini's three ways of being a subreaper."""
    if X.init == "tini":
        if variant == "subreaper-proxy":
            return [PY, helper("subreaper_proxy.py"), X.tini] + list(tini_opts), clean_env()
        if variant == "-s":
            return [X.tini, "-s"] + list(tini_opts), clean_env()
        return [X.tini] + list(tini_opts), clean_env(TINI_SUBREAPER="")
    if variant != "subreaper-proxy":
        differs("always a child subreaper: tini %s maps to plain `run`" % variant)
        return [X.gs, "run"] + list(gs_opts), clean_env()
    return [PY, helper("subreaper_proxy.py"), X.gs, "run"] + list(gs_opts), clean_env()


SUBREAPER_VARIANTS = [("subreaper-proxy", "subreaper-proxy"), ("-s", "-s"), ("TINI_SUBREAPER", "TINI_SUBREAPER")]


# ============================================================================
# dumb-init: tests/proxies_signals_test.py
# ============================================================================

DI_PROXY = "dumb-init:tests/proxies_signals_test.py"


@case(DI_PROXY, "test_proxies_signals", DUMB, grid(SETSID, DEBUG))
def di_proxies_signals(params):
    setsid, debug = params
    # gracestop: --stop-on TERM, so that SIGINT is a plain forwarded signal (the
    # default TERM,INT would make it a stop request); --wait 15 keeps the SIGKILL
    # at the end of the stop sequence (started by TERM) beyond this case.
    p, _, out = start_print_signals(setsid, debug, gs=["--stop-on", "TERM", "--wait", "15"])
    for signum in NORMAL_SIGNALS:
        p.send_signal(signum)
        expect_lines(out, stop_request(signum), "sent %s to the init" % S(signum).name, p)


@case(DI_PROXY, "test_proxies_signals_with_rewrite", DUMB, [(a + ",{}", v) for a, v in grid(SETSID, DEBUG)])
def di_proxies_signals_no_rewrite(params):
    # The empty rewrite map: TERM, QUIT, CONT, INT arrive unchanged.
    setsid, debug = params
    p, _, out = start_print_signals(setsid, debug, gs=["--stop-on", "TERM", "--wait", "15"])
    for signum in (S.SIGTERM, S.SIGQUIT, S.SIGCONT, S.SIGINT):
        p.send_signal(signum)
        expect_lines(out, stop_request(signum), "sent %s to the init" % signum.name, p)


for _label in ("{15:2}", "{15:2,2:15,3:3}", "{1:31,31:1}"):
    na(DI_PROXY, "test_proxies_signals_with_rewrite[%s]" % _label, DUMB, "dumb-init -r rewriting: gracestop has none")
na(DI_PROXY, "test_default_rewrites_can_be_overriden_with_setsid_enabled", DUMB, "dumb-init -r rewriting: gracestop has none")
na(DI_PROXY, "test_ignored_signals_are_not_proxied", DUMB, "dumb-init -r rewriting (to 0): gracestop has none")


# ============================================================================
# dumb-init: tests/shell_background_test.py
# ============================================================================

DI_BG = "dumb-init:tests/shell_background_test.py"


@case(DI_BG, "test_shell_background_support_setsid", DUMB, [("setsid," + a, v) for a, v in DEBUG])
def di_background_setsid(debug):
    # The init and its child both stop on TSTP, TTIN, TTOU; SIGCONT resumes both.
    p, child, out = start_print_signals(True, debug)
    for signum in SUSPEND_SIGNALS:
        if not (running(p.pid) and running(child)):
            raise Fail("before %s: init %s, child %s" % (signum.name, procs.state(p.pid), procs.state(child)))
        p.send_signal(signum)
        until(lambda: procs.state(p.pid) == procs.state(child) == "stopped", 3, "both stopped after %s" % signum.name)
        p.send_signal(S.SIGCONT)
        expect_lines(out, [S.SIGCONT], "sent SIGCONT after %s" % signum.name)
        if not (running(p.pid) and running(child)):
            raise Fail("after SIGCONT: init %s, child %s" % (procs.state(p.pid), procs.state(child)))


@case(DI_BG, "test_shell_background_support_without_setsid", DUMB, [("nosetsid," + a, v) for a, v in DEBUG])
def di_background_no_setsid(debug):
    # The child gets TSTP, TTIN, TTOU itself (and catches them), then the init stops.
    p, _, out = start_print_signals(False, debug)
    for signum in SUSPEND_SIGNALS:
        if not running(p.pid):
            raise Fail("before %s: init %s" % (signum.name, procs.state(p.pid)))
        p.send_signal(signum)
        expect_lines(out, [signum], "sent %s" % signum.name)
        until(lambda: procs.state(p.pid) == "stopped", 3, "the init stopped after %s" % signum.name)
        p.send_signal(S.SIGCONT)
        expect_lines(out, [S.SIGCONT], "sent SIGCONT after %s" % signum.name)
        if not running(p.pid):
            raise Fail("after SIGCONT: init %s" % procs.state(p.pid))


# ============================================================================
# dumb-init: tests/child_processes_test.py
# ============================================================================

DI_CHILD = "dumb-init:tests/child_processes_test.py"
PIPELINE = "yes 'oh, hi' | tail & yes error | tail >&2"


def spawn_and_kill_pipeline(setsid, debug):
    """Two pipelines under sh under the init (6 processes in all); TERM to the init."""
    argv, env = di_run(["sh", "-c", PIPELINE], setsid, debug)
    p = spawn(argv, env)
    until(lambda: len([q for q in tree(p.pid) if alive(q)]) == 6, 5, "6 living processes (init, sh, 2x yes|tail)")
    pids = set(tree(p.pid))
    p.send_signal(S.SIGTERM)
    return p, pids


@case(DI_CHILD, "test_setsid_signals_entire_group", DUMB, [("setsid," + a, v) for a, v in DEBUG])
def di_setsid_signals_group(debug):
    p, pids = spawn_and_kill_pipeline(True, debug)
    wait(p, 10)
    until(lambda: not [q for q in pids if alive(q)], 5, "every process of the group gone")


@case(DI_CHILD, "test_no_setsid_doesnt_signal_entire_group", DUMB, [("nosetsid," + a, v) for a, v in DEBUG])
def di_no_setsid_signals_child(debug):
    p, pids = spawn_and_kill_pipeline(False, debug)
    if X.init == "dumb-init":
        wait(p, 10)
        until(lambda: len([q for q in pids if alive(q)]) == 4, 5, "exactly the 4 pipeline processes left")
        return
    differs("orphans get the stop signal when the child dies with --single-child (spec: Orphans), "
            "and gracestop exits once they are gone, well before --wait")
    code = wait(p, 5, "gracestop (default --wait 30s; the orphans must get TERM at once)")
    if code != 143:
        raise Fail("exit %d, expected 143 (sh killed by TERM)" % code)
    until(lambda: not [q for q in pids if alive(q)], 2, "every orphan gone")


def spawn_process_which_dies_with_children(setsid, debug):
    """sh starts print_signals in the background, waits for it to be ready, exits 0."""
    fifo = os.path.join(X.tmp, "ready")
    os.mkfifo(fifo)
    script = "%s %s --ready-fifo %s & read -r _ < %s" % (
        PY, shlex.quote(helper("print_signals.py")), shlex.quote(fifo), shlex.quote(fifo))
    argv, env = di_run(["sh", "-c", script], setsid, debug)
    p = spawn(argv, env, stdout=subprocess.PIPE)
    out = Lines(p.stdout)
    if X.init == "dumb-init":
        code = wait(p, 10)
        if code != 0:
            raise Fail("dumb-init exited %d, expected 0" % code)
    line = out.readline()
    m = re.match(rb"ready \(pid: ([0-9]+)\)\n", line)
    if not m:
        raise Fail("print_signals did not say ready: %r" % line)
    return p, int(m.group(1)), out


def gracestop_exits_zero_after(p, child):
    os.kill(child, S.SIGKILL)
    code = wait(p, 5, "gracestop once the last orphan is gone")
    if code != 0:
        raise Fail("gracestop exited %d, expected the child's 0" % code)


@case(DI_CHILD, "test_all_processes_receive_term_on_exit_if_setsid", DUMB, [("setsid," + a, v) for a, v in DEBUG])
def di_term_on_exit_setsid(debug):
    p, child, out = spawn_process_which_dies_with_children(True, debug)
    if X.init == "dumb-init":
        expect_lines(out, [15], "the child exited")
        return
    differs("the orphan gets TERM then CONT (DESIGN §3), and gracestop waits for it to be gone before "
            "exiting with the child's 0 (spec: Orphans)")
    expect_lines(out, [15, 18], "the child exited")
    gracestop_exits_zero_after(p, child)


@case(DI_CHILD, "test_processes_dont_receive_term_on_exit_if_no_setsid", DUMB,
      [("nosetsid," + a, v) for a, v in DEBUG])
def di_no_term_on_exit_no_setsid(debug):
    p, child, out = spawn_process_which_dies_with_children(False, debug)
    if X.init == "gracestop":
        differs("orphans get the stop signal when the child dies, with --single-child too (spec: Orphans: "
                "dumb-init leaves them alone), and gracestop waits for them")
        expect_lines(out, [15, 18], "the child exited")
    for signum in (1, 2, 3):
        os.kill(child, signum)
        expect_lines(out, [signum], "sent %d to the orphan" % signum)
    if X.init == "gracestop":
        gracestop_exits_zero_after(p, child)


BAD_EXEC = [
    ("/doesnotexist", ("/doesnotexist",)),
    ("--,/doesnotexist", ("--", "/doesnotexist")),
    ("-c,/doesnotexist", ("-c", "/doesnotexist")),
    ("--single-child,--,/doesnotexist", ("--single-child", "--", "/doesnotexist")),
]


@case(DI_CHILD, "test_fails_nonzero_with_bad_exec", DUMB,
      [(a, v) for a, v in grid(BAD_EXEC, DEBUG, SETSID)])
def di_bad_exec(params):
    args, debug, setsid = params
    if X.init == "dumb-init":
        p = spawn([X.dumb_init] + list(args), clean_env(DUMB_INIT_DEBUG="1" if debug else "0",
                                                       DUMB_INIT_SETSID="1" if setsid else "0"))
        code, err = wait(p, 5), stderr_of(p)
        if code == 0 or "[dumb-init] /doesnotexist: No such file or directory\n" not in err:
            raise Fail("exit %d, stderr %r" % (code, err))
        return
    differs("not found exits 127 (README: Exit status)")
    mapped = ["--single-child" if a == "-c" else a for a in args]
    opts = (["-v"] if debug else []) + ([] if setsid or "--single-child" in mapped else ["--single-child"])
    p = spawn([X.gs, "run"] + opts + mapped)
    code, err = wait(p, 5), stderr_of(p)
    if code != 127 or "cannot run /doesnotexist: No such file or directory" not in err:
        raise Fail("exit %d, stderr %r" % (code, short(err)))


# ============================================================================
# dumb-init: tests/cli_test.py
# ============================================================================

DI_CLI = "dumb-init:tests/cli_test.py"


def normalize(text):
    """dumb-init names itself by argv[0]: reduce a path to `dumb-init`."""
    return re.sub(r"(^|(?<=\s))[a-z/.]+/dumb-init", "dumb-init", text)


def gs_usage_error(p, needle):
    differs("a bad flag or a missing COMMAND is a usage error, which exits 2 (README: Exit status)")
    code, err = wait(p, 5), stderr_of(p)
    if code != 2 or not re.search(needle, err):
        raise Fail("exit %d, stderr %r (expected 2 and %r)" % (code, short(err), needle))


@case(DI_CLI, "test_no_arguments_prints_usage", DUMB, grid(DEBUG, SETSID))
def di_no_arguments(params):
    debug, setsid = params
    if X.init == "dumb-init":
        p = spawn([X.dumb_init], clean_env(DUMB_INIT_DEBUG="1" if debug else "0",
                                           DUMB_INIT_SETSID="1" if setsid else "0"))
        code, err = wait(p, 5), normalize(stderr_of(p))
        want = "Usage: dumb-init [option] program [args]\nTry dumb-init --help for full usage.\n"
        if code == 0 or err != want:
            raise Fail("exit %d, stderr %r" % (code, err))
        return
    p = spawn([X.gs, "run"] + (["-v"] if debug else []) + ([] if setsid else ["--single-child"]))
    gs_usage_error(p, r"Usage: \S*gracestop\S* run")


@case(DI_CLI, "test_exits_invalid_with_invalid_args", DUMB, grid(DEBUG, SETSID))
def di_invalid_args(params):
    debug, setsid = params
    if X.init == "dumb-init":
        p = spawn([X.dumb_init, "--yolo", "/bin/true"], clean_env(DUMB_INIT_DEBUG="1" if debug else "0",
                                                                  DUMB_INIT_SETSID="1" if setsid else "0"))
        code, err = wait(p, 5), normalize(stderr_of(p))
        if code != 1 or err not in ("dumb-init: unrecognized option '--yolo'\n", "dumb-init: unrecognized option: yolo\n"):
            raise Fail("exit %d, stderr %r" % (code, err))
        return
    p = spawn([X.gs, "run"] + (["-v"] if debug else []) + ([] if setsid else ["--single-child"]) + ["--yolo", "/bin/true"])
    gs_usage_error(p, r"unexpected argument '--yolo'")


def dumb_init_version():
    out = subprocess.run([X.dumb_init, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5)
    m = re.match(rb"^dumb-init v(\S+)\n$", out.stdout)
    if not m:
        raise Fail("dumb-init --version said %r" % out.stdout)
    return m.group(1).decode()


DI_HELP = """dumb-init v{v}
Usage: dumb-init [option] command [[arg] ...]

dumb-init is a simple process supervisor that forwards signals to children.
It is designed to run as PID1 in minimal container environments.

Optional arguments:
   -c, --single-child   Run in single-child mode.
                        In this mode, signals are only proxied to the
                        direct child and not any of its descendants.
   -r, --rewrite s:r    Rewrite received signal s to new signal r before proxying.
                        To ignore (not proxy) a signal, rewrite it to 0.
                        This option can be specified multiple times.
   -v, --verbose        Print debugging information to stderr.
   -h, --help           Print this help message and exit.
   -V, --version        Print the current version and exit.

Full help is available online at https://github.com/Yelp/dumb-init
"""


@case(DI_CLI, "test_help_message", DUMB, grid([("-h", "-h"), ("--help", "--help")], DEBUG, SETSID))
def di_help(params):
    flag, debug, setsid = params
    if X.init == "dumb-init":
        p = spawn([X.dumb_init, flag], clean_env(DUMB_INIT_DEBUG="1" if debug else "0",
                                                 DUMB_INIT_SETSID="1" if setsid else "0"))
        code, err = wait(p, 5), normalize(stderr_of(p))
        if code != 0 or err != DI_HELP.format(v=dumb_init_version()):
            raise Fail("exit %d, stderr %r" % (code, err))
        return
    differs("gracestop's own help text, on stdout (clap), exit 0")
    p = spawn([X.gs, "run"] + (["-v"] if debug else []) + ([] if setsid else ["--single-child"]) + [flag],
              stdout=subprocess.PIPE)
    out = p.stdout.read().decode()
    code = wait(p, 5)
    if code != 0 or not re.search(r"Usage: \S*gracestop\S* run", out) or "--single-child" not in out:
        raise Fail("exit %d, stdout %r" % (code, short(out)))


@case(DI_CLI, "test_version_message", DUMB, grid([("-V", "-V"), ("--version", "--version")], DEBUG, SETSID))
def di_version(params):
    flag, debug, setsid = params
    if X.init == "dumb-init":
        p = spawn([X.dumb_init, flag], clean_env(DUMB_INIT_DEBUG="1" if debug else "0",
                                                 DUMB_INIT_SETSID="1" if setsid else "0"), stdout=subprocess.PIPE)
        out = p.stdout.read()
        code, err = wait(p, 5), stderr_of(p)
        if code != 0 or out or not re.match(r"^dumb-init v[0-9]+\.[0-9]+\.[0-9]+\n$", err):
            raise Fail("exit %d, stdout %r, stderr %r" % (code, out, err))
        return
    differs("gracestop's version line is on stdout (clap)")
    p = spawn([X.gs, "run"] + (["-v"] if debug else []) + ([] if setsid else ["--single-child"]) + [flag],
              stdout=subprocess.PIPE)
    out = p.stdout.read().decode()
    code = wait(p, 5)
    if code != 0 or not re.match(r"^gracestop\S* [0-9]+\.[0-9]+\.[0-9]+\n$", out):
        raise Fail("exit %d, stdout %r" % (code, out))


def verbose_run(flags, single_child):
    if X.init == "dumb-init":
        p = spawn([X.dumb_init] + flags + ["echo", "oh,", "hi"], clean_env(DUMB_INIT_DEBUG="", DUMB_INIT_SETSID=""),
                  stdout=subprocess.PIPE)
    else:
        mapped = ["--single-child" if f in ("-c", "--single-child") else f for f in flags]
        p = spawn([X.gs, "run"] + mapped + ["--", "echo", "oh,", "hi"], stdout=subprocess.PIPE)
    out = p.stdout.read()
    code, err = wait(p, 5), stderr_of(p)
    if code != 0 or out != b"oh, hi\n":
        raise Fail("exit %d, stdout %r" % (code, out))
    if X.init == "dumb-init":
        tail = (r"\[dumb-init\] Child spawned with PID [0-9]+\.\n"
                r"(.*)"
                r"\[dumb-init\] Received signal 17\.\n"
                r"\[dumb-init\] A child with PID [0-9]+ exited with exit status 0\.\n"
                r"\[dumb-init\] Forwarded signal 15 to children\.\n"
                r"\[dumb-init\] Child exited with status 0\. Goodbye\.\n$")
        if single_child:
            ok = re.match("^" + tail.replace("(.*)", ""), err)
        else:
            ok = re.search(r"(^|\n)\[dumb-init\] setsid complete\.\n", err) and re.search("(^|\n)" + tail, err, re.DOTALL)
    else:
        differs("gracestop's own log lines: started, exit, done (src/run.rs)")
        ok = re.search(r"run started ([0-9]+) \(echo\) in process group \1\n"
                       r"(.*\n)*?.*exit \1 \(echo\) exited with 0\n"
                       r"(.*\n)*?.*done exiting with 0\n$", err)
    if not ok:
        raise Fail("stderr %r" % err)


@case(DI_CLI, "test_verbose", DUMB, [("-v", "-v"), ("--verbose", "--verbose")])
def di_verbose(flag):
    verbose_run([flag], False)


@case(DI_CLI, "test_verbose_and_single_child", DUMB,
      grid([("-v", "-v"), ("--verbose", "--verbose")], [("-c", "-c"), ("--single-child", "--single-child")]))
def di_verbose_single_child(params):
    verbose_run(list(params), True)


for _label in ("-r", "-r,", "-r,herp", "-r,herp:derp", "-r,15", "-r,15::12", "-r,15:derp", "-r,15:12,-r",
               "-r,15:12,-r,0", "-r,15:12,-r,1:32"):
    na(DI_CLI, "test_rewrite_errors[%s]" % _label, DUMB, "dumb-init -r rewriting: gracestop has none")


# ============================================================================
# dumb-init: tests/cwd_test.py
# ============================================================================


@case("dumb-init:tests/cwd_test.py", "test_working_directories", DUMB, grid(DEBUG, SETSID))
def di_cwd(params):
    # The child starts in the caller's directory; the init itself holds none but /.
    debug, setsid = params
    script = "readlink /proc/$PPID/cwd && readlink /proc/$$/cwd"
    if X.init == "dumb-init":
        # dumb-init's parent calls chdir("/") after fork, racing its child (its own
        # test loses now and then, more often with debug output): the control's child
        # first waits, bounded (1 s), for it. gracestop moves to / before the child
        # starts (spec: Working directory), so its child reads at once.
        script = ('i=0; while [ "$(readlink /proc/$PPID/cwd)" != / ] && [ $i -lt 100 ]; '
                  'do sleep 0.01; i=$((i+1)); done; ' + script)
    argv, env = di_run(["sh", "-c", script], setsid, debug)
    p = spawn(argv, env, stdout=subprocess.PIPE, cwd="/tmp")
    out = p.stdout.read()
    code = wait(p, 5)
    if code != 0 or out != b"/\n/tmp\n":
        raise Fail("exit %d, stdout %r (expected '/', then '/tmp')" % (code, out))


# ============================================================================
# dumb-init: tests/exit_status_test.py
# ============================================================================

DI_EXIT = "dumb-init:tests/exit_status_test.py"


@case(DI_EXIT, "test_exit_status_regular_exit", DUMB,
      grid([(str(c), c) for c in (0, 1, 2, 32, 64, 127, 254, 255)], DEBUG, SETSID))
def di_exit_regular(params):
    status, debug, setsid = params
    argv, env = di_run(["sh", "-c", "exit %d" % status], setsid, debug)
    code = wait(spawn(argv, env), 5)
    if code != status:
        raise Fail("exit %d, expected %d" % (code, status))


@case(DI_EXIT, "test_exit_status_terminated_by_signal", DUMB,
      grid([(s.name, s) for s in (S.SIGTERM, S.SIGHUP, S.SIGQUIT, S.SIGKILL)], DEBUG, SETSID))
def di_exit_signal(params):
    signum, debug, setsid = params
    argv, env = di_run([PY, "-c", "import os; os.kill(os.getpid(), %d)" % signum], setsid, debug)
    code = wait(spawn(argv, env), 5)
    if code != 128 + signum:
        raise Fail("exit %d, expected %d" % (code, 128 + signum))


# ============================================================================
# dumb-init: tests/tty_test.py
# ============================================================================

DI_TTY = "dumb-init:tests/tty_test.py"


@case(DI_TTY, "test_tty", DUMB)
def di_tty():
    # tac reads the terminal and writes to it. Debug output off (gracestop: -q).
    argv, env = di_run(["tac"], debug=False, gs=["-q"])
    pid, fd = pty_spawn(argv, env)
    ttyflags(fd)
    os.write(fd, b"1\n2\n3\n")
    os.write(fd, b"\x04\x04")
    output = readall(fd)
    code, _ = pty_wait(pid, fd, 5)
    if code != 0 or output != b"3\n2\n1\n":
        raise Fail("exit %d, output %r" % (code, output))


@case(DI_TTY, "test_child_gets_controlling_tty_if_we_had_one", DUMB, grid(DEBUG, SETSID))
def di_tty_job_control(params):
    # The child gets the terminal: an interactive bash has job control (m in $-).
    debug, setsid = params
    argv, env = di_run(["bash", "-m"], setsid, debug, HISTFILE="/dev/null")
    pid, fd = pty_spawn(argv, env)
    ttyflags(fd)
    os.write(fd, b'echo "flags are: [[$-]]"\n')
    os.write(fd, b"exit 0\n")
    output = readall(fd)
    code, _ = pty_wait(pid, fd, 5)
    m = re.search(rb"flags are: \[\[([a-zA-Z]+)\]\]\n", output)
    if code != 0 or not m or b"m" not in m.group(1):
        raise Fail("exit %d, flags %r, output %r" % (code, m and m.group(1), output[-300:]))


na(DI_TTY, "test_sighup_sigcont_ignored_if_was_session_leader", DUMB, "asserts dumb-init's debug messages only")


# ============================================================================
# dumb-init: tests/test-zombies (the init as PID 1)
# ============================================================================


@case("dumb-init:tests/test-zombies", "test-zombies", DUMB)
def di_zombies():
    argv, env = di_run([PY, helper("zombies.py")])
    p = spawn(pid1(argv), env, stdout=subprocess.PIPE)
    out = p.stdout.read().decode()
    code = wait(p, 10)
    if code != 0:
        raise Fail("exit %d: %s %s" % (code, short(out), short(stderr_of(p))))


# ============================================================================
# tini: test/run_inner_tests.py
# ============================================================================

TI_INNER = "tini:test/run_inner_tests.py"


def run_batch(argvs, env, limit=32):
    """Runs every argv, LIMIT at a time; returns their exit codes in order."""
    codes, running_now = [None] * len(argvs), []
    for i, argv in enumerate(argvs):
        running_now.append((i, subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        X.started.append(running_now[-1][1])
        if len(running_now) >= limit or i == len(argvs) - 1:
            for j, p in running_now:
                codes[j] = p.wait(timeout=20)
            running_now = []
    return codes


@case(TI_INNER, "exit_code", TINI, [("inclusive", True), ("exclusive", False)], budget=90)
def ti_exit_code(inclusive):
    # inclusive: `-e N` with the child exiting N gives 0; exclusive: `-e` every other
    # code gives N (tini without `--` here, under POSIXLY_CORRECT, as tini's test).
    argvs = []
    for code in range(256):
        remapped = [code] if inclusive else [c for c in range(256) if c != code]
        child = ["sh", "-c", "exit %d" % code]
        if X.init == "tini":
            opts = [a for c in remapped for a in ("-e", str(c))]
            argvs.append([X.tini] + opts + (["--"] if inclusive else []) + child)
        else:
            argvs.append([X.gs, "run", "-q", "--remap-exit", ",".join("%d=0" % c for c in remapped), "--"] + child)
    env = clean_env() if inclusive or X.init != "tini" else clean_env(POSIXLY_CORRECT="1")
    codes = run_batch(argvs, env)
    wrong = [(c, got) for c, got in enumerate(codes) if got != (0 if inclusive else c)]
    if wrong:
        raise Fail("%d of 256 wrong (code, exit): %s" % (len(wrong), wrong[:8]))


def reap_warning(err):
    if X.init == "tini":
        return "Reaped zombie process with pid=" in err
    return re.search(r"reap orphan [0-9]+ exited with", err) is not None


@case(TI_INNER, "reaping", TINI, SUBREAPER_VARIANTS, budget=25)
def ti_reaping(variant):
    prefix, env = tini_variant(variant)
    p = spawn(prefix + ["--", PY, helper("reaping_stage1.py")], env, stdout=subprocess.PIPE)
    out = p.stdout.read().decode()
    code, err = wait(p, 15), stderr_of(p)
    if X.init == "tini" and "zombie reaping won't work" in err:
        raise Fail("tini warned that it is no subreaper")
    if reap_warning(err):
        raise Fail("a reap line without -w / -v: %s" % short(err))
    if code != 0:
        raise Fail("exit %d: %s" % (code, short(out)))


@case(TI_INNER, "reaping_display", TINI, SUBREAPER_VARIANTS, budget=25)
def ti_reaping_display(variant):
    # tini -w warns when it reaps an orphan; gracestop -v logs `reap orphan PID exited with N`.
    differs("tini -w maps to -v (spec: Flags)")
    prefix, env = tini_variant(variant, ["-w"], ["-v"])
    p = spawn(prefix + ["--", PY, helper("reaping_stage1.py")], env, stdout=subprocess.PIPE)
    out = p.stdout.read().decode()
    code, err = wait(p, 15), stderr_of(p)
    if not reap_warning(err):
        raise Fail("no reap line in stderr: %s" % short(err))
    if code != 0:
        raise Fail("exit %d: %s" % (code, short(out)))


SIGNALS_TINI = [(s.name, s) for s in (S.SIGTERM, S.SIGUSR1, S.SIGUSR2)]


@case(TI_INNER, "signals", TINI, [(a, v) for a, v in grid(SUBREAPER_VARIANTS, SIGNALS_TINI)])
def ti_signals(params):
    # The child (TERM, USR1, USR2 at their default) dies of the signal: exit 128+N.
    variant, signum = params
    prefix, env = tini_variant(variant)
    p = spawn(prefix + ["--", PY, helper("signals_child.py")], env)
    find_descendant(p.pid, "sleep")
    p.send_signal(signum)
    code = wait(p, 10)
    if code != 128 + signum:
        raise Fail("exit %d, expected %d" % (code, 128 + signum))


@case(TI_INNER, "process_group", TINI, [("-g", "-g"), ("TINI_KILL_PROCESS_GROUP", "env")])
def ti_process_group(variant):
    # USR1 to the init reaches the whole group: the sleep (USR1 at default) dies,
    # so its parent (which ignores USR1) stops waiting and the init exits.
    if X.init == "tini":
        argv = [X.tini] + (["-g"] if variant == "-g" else []) + ["--", PY, helper("pgroup_stage1.py")]
        env = clean_env(TINI_KILL_PROCESS_GROUP="1") if variant == "env" else clean_env()
    else:
        differs("forwarding to the child's process group is the default (tini -g; spec: Signals)")
        argv, env = [X.gs, "run", "--", PY, helper("pgroup_stage1.py")], clean_env()
    p = spawn(argv, env)
    find_descendant(p.pid, "sleep")
    p.send_signal(S.SIGUSR1)
    wait(p, 10, "the init after USR1 (the group's sleep should have died)")


na(TI_INNER, "zombie_reaping_failure", TINI,
   "tini's warning without a subreaper: gracestop is always a child subreaper, there is no such mode")


def status_masks(text):
    masks = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn", "SigCgt"):
            masks[key] = {n + 1 for n in range(64) if int(value.strip(), 16) >> n & 1}
    return masks


@case(TI_INNER, "signal_configuration", TINI)
def ti_sigconf(params=None):
    # The caller ignores TTOU, SEGV, INT and blocks TTIN, ILL, TERM, then execs the init.
    init = [X.tini] if X.init == "tini" else [X.gs, "run", "--"]
    p = spawn([PY, helper("sigconf.py")] + init + ["cat", "/proc/self/status"], stdout=subprocess.PIPE)
    masks = status_masks(p.stdout.read().decode())
    wait(p, 5)
    ignored = {S.SIGTTOU, S.SIGSEGV, S.SIGINT}
    if not ignored <= masks.get("SigIgn", set()):
        raise Fail("ignored in the child: %s; expected at least TTOU, SEGV, INT"
                   % sorted(S(n).name for n in masks.get("SigIgn", set()) if n < 32))
    if X.init == "tini":
        if not {S.SIGTTIN, S.SIGILL, S.SIGTERM} <= masks.get("SigBlk", set()):
            raise Fail("blocked in the child: %s; expected TTIN, ILL, TERM" % sorted(masks.get("SigBlk", set())))
        return
    differs("the child's blocked mask is cleared at exec (spec; DESIGN §5); ignored signals stay ignored")
    if masks.get("SigBlk"):
        raise Fail("blocked in the child: %s; expected none" % sorted(masks["SigBlk"]))


@case(TI_INNER, "parent_death_signal", TINI)
def ti_pdeath():
    result = os.path.join(X.tmp, "result")
    if X.init == "tini":
        # Stage 2 kills stage 1, tini's parent: tini gets USR1 (-p) and forwards it.
        argv = [PY, helper("pdeath_stage1.py"), "self", result, X.tini, "-vvv", "-p", "SIGUSR1"]
    else:
        differs("no parent-death signal of gracestop's own: the child's parent-death signal is the stop "
                "signal (`--signal USR1`, spec: Flags; README: if gracestop itself is killed the child "
                "receives the stop signal), so stage 2 kills gracestop instead of gracestop's parent")
        argv = [PY, helper("pdeath_stage1.py"), "parent", result, X.gs, "run", "-v", "--signal", "USR1"]
    wait(spawn(argv), 10, "stage 1")

    def ok():
        try:
            with open(result) as f:
                return f.read() == "ok"
        except OSError:
            return False

    until(ok, 10, "stage 2 got USR1 and wrote ok")


# ============================================================================
# tini: test/run_outer_tests.py (in Docker: the init is PID 1)
# ============================================================================

TI_OUTER = "tini:test/run_outer_tests.py"


def ti_pid1(argv_tail, verbose=True):
    """The init as PID 1 of a nested namespace, with TINI_VERBOSITY=3 (gracestop: -v)."""
    if X.init == "tini":
        return pid1([X.tini] + argv_tail), clean_env(TINI_VERBOSITY="3")
    return pid1([X.gs, "run"] + (["-v"] if verbose else []) + argv_tail), clean_env()


@case(TI_OUTER, "reaping[pid1]", TINI, budget=25)
def ti_outer_reaping():
    argv, env = ti_pid1(["--", PY, helper("reaping_stage1.py")])
    p = spawn(argv, env, stdout=subprocess.PIPE)
    out = p.stdout.read().decode()
    code = wait(p, 10)
    if code != 0:
        raise Fail("exit %d: %s" % (code, short(out)))


@case(TI_OUTER, "signals", TINI, [("pid1," + s.name, s) for s in (S.SIGTERM, S.SIGUSR1, S.SIGUSR2)])
def ti_outer_signals(signum):
    argv, env = ti_pid1(["--", PY, helper("signals_child.py")])
    p = spawn(argv, env)
    init = ns_init(p.pid)
    find_descendant(init, "sleep")
    os.kill(init, signum)  # as `docker kill -s SIG`: from outside the namespace
    code = wait(p, 10)
    if code != 128 + signum:
        raise Fail("exit %d, expected %d" % (code, 128 + signum))


@case(TI_OUTER, "exit_code", TINI, [("pid1,-z", "-z"), ("pid1,-h", "-h"), ("pid1,zzzz", "zzzz"), ("pid1,-w", "-w")])
def ti_outer_exit_code(arg):
    if X.init == "tini":
        # -w alone: tini's test says 0, but tini's parse_args (this version and the
        # mirror's HEAD) refuses a missing program with 1; the control shows it.
        want = {"-z": 1, "-h": 0, "zzzz": 127, "-w": 1}[arg]
        argv, env = ti_pid1([arg])
    else:
        want = {"-z": 2, "-h": 0, "zzzz": 127, "-w": 2}[arg]
        if want == 2:
            differs("a bad flag or a missing COMMAND (`run -v`: -w maps to -v) exits 2 (README: Exit status)")
        argv, env = ti_pid1({"-z": ["-z"], "-h": ["-h"], "zzzz": ["zzzz"], "-w": ["-v"]}[arg], verbose=False)
    code = wait(spawn(argv, env), 5)
    if code != want:
        raise Fail("exit %d, expected %d" % (code, want))


@case(TI_OUTER, "valgrind", TINI, budget=90)
def ti_valgrind():
    if not shutil.which("valgrind"):
        raise NotApplicable("valgrind is not installed")
    vg = ["valgrind", "--leak-check=full", "--error-exitcode=1"]
    if X.init == "tini":
        argv = vg + [X.tini, "ls"]
    else:
        # One suppression, named here and in the file: the 48-byte handle of Rust's
        # std::thread::current(), "possibly lost" for any Rust program (rust-lang/rust#135608).
        argv = vg + ["--suppressions=" + os.path.join(HERE, "rust-std.supp"), "-v", X.gs, "run", "--", "ls"]
    p = spawn(argv)
    code, err = wait(p, 60, "valgrind"), stderr_of(p)
    used = re.findall(r"used_suppression: +(\d+) (rust-std-thread-current-handle)", err)
    if used:
        differs("valgrind with one suppression: the 48-byte std::thread::current() handle Rust's std leaves at "
                "exit (rust-lang/rust#135608; an empty Rust program shows it too), seen %s time(s)" % used[0][0])
    if code != 0:
        kinds = re.findall(r"==\d+== +(definitely lost|indirectly lost|possibly lost): ([0-9,]+) bytes", err)
        records = re.findall(r"==\d+== (\d[0-9,]* bytes in \d+ blocks are \w+ lost in loss record)", err)
        frames = re.findall(r"by 0x[0-9A-F]+: ([\w:]+::\w+) \(", err)
        own = re.findall(r"^gracestop: error: .*$", err, re.M)
        raise Fail("exit %d; %s%s; %s; frames: %s; %s" % (
            code, "%s; " % own if own else "", kinds, records[:3], frames[:4],
            short("\n".join(re.findall(r"ERROR SUMMARY.*", err)[:1]))))


TTY_CASES = [("dash,exit-0", "exit"), ("dash-loop,ctrl-c", "ctrl-c")]


@case(TI_OUTER, "tty_handling", TINI, TTY_CASES)
def ti_tty(kind):
    # `docker run --tty`: the init, PID 1, on a terminal. dash shows its `#`
    # prompt and `exit 0` exits 0; a dash loop printing `#` dies of Ctrl-C: 130.
    shell = ["dash"] if kind == "exit" else ["dash", "-c", "while true; do echo \\#; sleep 0.1; done"]
    argv, env = ti_pid1(["--"] + shell, verbose=False)
    if X.init == "tini":
        env.pop("TINI_VERBOSITY")
    pid, fd = pty_spawn(argv, env)
    read_until(fd, b"#")
    if kind == "exit":
        os.write(fd, b"\nexit 0\n")
        want = 0
    else:
        os.write(fd, b"\x03")
        want = 128 + S.SIGINT
    code, out = pty_wait(pid, fd, 5)
    if code != want:
        raise Fail("exit %d, expected %d; output %r" % (code, want, out[-200:]))


for _image in ("ubuntu:precise", "ubuntu:trusty", "centos:6", "centos:7"):
    na(TI_OUTER, "installation[%s]" % _image, TINI, "installs tini's packages: packaging, not behaviour")
na(TI_OUTER, "functional[tini-static]", TINI, "one binary per init here (the Debian tini is dynamic)")
na(TI_OUTER, "docker_attach", TINI, "attaching to a container is Docker's; tty_handling types into the pty directly")


# ============================================================================
# the runner
# ============================================================================


def cleanup():
    """Kills everything this case left (the whole namespace but us and PID 1), then reaps."""
    me = os.getpid()
    if X.ns:
        victims = [pid for pid in procs.table() if pid not in (1, me)]
    else:  # everything below the reaper, our parent: our tree and the orphans
        victims = [pid for pid in procs.descendants(os.getppid()) if pid != me]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in X.started:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdout, getattr(p, "err_file", None)):
            if f is not None:
                f.close()
    for pid in X.pty_children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    for fd in X.fds:
        try:
            os.close(fd)
        except OSError:
            pass
    X.started, X.pty_children, X.fds = [], [], []


def on_alarm(*_):
    raise CaseTimeout()


def run_case(cid, fn, value, budget):
    X.tmp = tempfile.mkdtemp(prefix="peers.")
    X.note = None
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(budget)
    try:
        fn(*value)
        verdict, reason = "PASS", X.note
    except NotApplicable as e:
        verdict, reason = "N/A", str(e)
    except Fail as e:
        verdict, reason = "FAIL", str(e)
    except CaseTimeout:
        verdict, reason = "FAIL", "timed out after %d s" % budget
    except Exception as e:  # a broken case is a failure too, never a crash of the run
        verdict, reason = "FAIL", "%s: %s" % (type(e).__name__, e)
    finally:
        signal.alarm(0)
        cleanup()
        shutil.rmtree(X.tmp, ignore_errors=True)
    return verdict, reason


def enter_namespace():
    """Re-executes the runner as PID 1 of its own PID namespace, if allowed."""
    if os.environ.get(NS_MARK) == "1":
        return
    try:
        probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
        refused = probe.returncode != 0 and (probe.stderr.decode().strip() or "exit %d" % probe.returncode)
    except (OSError, subprocess.TimeoutExpired) as e:
        refused = str(e)
    if refused:
        X.ns, X.ns_note = False, refused
        print("note: cannot create a PID namespace (%s): running without one; the PID 1 cases are N/A" % refused)
        return
    env = dict(os.environ, **{NS_MARK: "1"})
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", PY, os.path.abspath(__file__)] + sys.argv[1:]
    sys.stdout.flush()
    os.execvpe("unshare", argv, env)


def become_reaper():
    """Forks the runner; this process only reaps until it ends. As PID 1 of the
    namespace it is the reaper of every orphan anyway; without a namespace it
    becomes a child subreaper, so that orphans still come back here (and cleanup
    finds them below it)."""
    if not X.ns:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
            print("note: cannot become a child subreaper: orphans may outlive their case")
    elif os.getpid() != 1:
        return
    runner = os.fork()
    if runner == 0:
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: os.kill(runner, signum))
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == runner:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main():
    parser = argparse.ArgumentParser(description="tini's and dumb-init's behaviour tests, against an init")
    parser.add_argument("--init", required=True, choices=["gracestop", "tini", "dumb-init"])
    parser.add_argument("--gracestop", default=os.path.join(HERE, "..", "..", "target", "debug", "gracestop"))
    parser.add_argument("--tini", default=shutil.which("tini") or "/usr/bin/tini")
    parser.add_argument("--dumb-init", default=shutil.which("dumb-init") or "/usr/bin/dumb-init")
    parser.add_argument("--case", default="", help="run only the cases whose id contains this")
    args = parser.parse_args()
    X.init = args.init
    X.gs, X.tini, X.dumb_init = (os.path.abspath(p) for p in (args.gracestop, args.tini, args.dumb_init))
    binary = {"gracestop": X.gs, "tini": X.tini, "dumb-init": X.dumb_init}[X.init]
    if not os.access(binary, os.X_OK):
        print("error: %s not found at %s" % (X.init, binary))
        return 2
    enter_namespace()
    become_reaper()
    counts = {"PASS": 0, "FAIL": 0, "N/A": 0}
    started = time.monotonic()
    for cid, inits, fn, value, budget in CASES:
        if X.init not in inits or args.case not in cid:
            continue
        verdict, reason = run_case(cid, fn, value, budget)
        counts[verdict] += 1
        print("%-4s  %s%s" % (verdict, cid, "  (%s)" % reason if reason else ""), flush=True)
    print("passed %d, failed %d, not applicable %d  (%s, %.1f s)" % (
        counts["PASS"], counts["FAIL"], counts["N/A"], X.init, time.monotonic() - started))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
