#!/usr/bin/python3
"""dumb-init tests/test-zombies, rewritten; run as the child of the init under
test, itself PID 1 of a fresh PID namespace. A shell starts a background shell
and exits at once (we reap it); the background shell, an orphan of PID 1, exits
too. Within 5 s every process but PID 1 and us must be gone, i.e. reaped: a
zombie left in /proc fails (exit 1)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402

subprocess.Popen(["bash", "-c", "bash -c 'echo i am a zombie' &"]).wait()
deadline = time.monotonic() + 5
while True:
    others = {pid: s for pid, s in procs.table().items() if pid not in (1, os.getpid())}
    if not others:
        sys.exit(0)
    if time.monotonic() > deadline:
        zombies = [pid for pid, s in others.items() if s[2] == "Z"]
        print("expected no zombies, found %d; left: %s" % (len(zombies), others))
        sys.exit(1)
    time.sleep(0.02)
