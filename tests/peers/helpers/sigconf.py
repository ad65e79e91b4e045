#!/usr/bin/python3
"""tini test/sigconf/sigconf-test.c, rewritten: ignore TTOU, SEGV and INT, block
TTIN, ILL and TERM, then exec the rest of the command line."""
import os
import signal
import sys

for signum in (signal.SIGTTOU, signal.SIGSEGV, signal.SIGINT):
    signal.signal(signum, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTTIN, signal.SIGILL, signal.SIGTERM])
os.execvp(sys.argv[1], sys.argv[1:])
