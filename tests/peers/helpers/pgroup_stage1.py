#!/usr/bin/python3
"""tini test/pgroup/stage_1.py, rewritten: ignore USR1, start `sleep` with USR1 at
its default action, and wait for it. Only a USR1 sent to the whole process group
(which kills the sleep) lets this end."""
import signal
import subprocess

signal.signal(signal.SIGUSR1, signal.SIG_IGN)
subprocess.Popen(["sleep", "30"], preexec_fn=lambda: signal.signal(signal.SIGUSR1, signal.SIG_DFL)).wait()
