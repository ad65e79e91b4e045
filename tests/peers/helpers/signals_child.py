#!/usr/bin/python3
"""tini test/signals/test.py, rewritten: TERM, USR1 and USR2 at their default
action, then a shell running `sleep` (a grandchild), waited for."""
import os
import signal

for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(signum, signal.SIG_DFL)
os.system("sleep 30")
