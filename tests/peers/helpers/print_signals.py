#!/usr/bin/python3
"""Prints the number of every signal it receives, one per line (after dumb-init's
testing/print_signals.py: the same contract, written for this suite).

It announces `ready (pid: N)` on stdout once every catchable signal (1..31 but
KILL, STOP, CHLD) is caught. Signals are taken with sigtimedwait, so two different
signals that arrive together are both printed, lowest number first. A signal the
caller ignored (a shell's `&` ignores INT and QUIT) is caught too: a handler is
installed before the mask, because an ignored signal would be discarded even while
blocked. --ready-fifo PATH also writes the ready line to that FIFO, so that a shell
script can wait for it (`read -r _ < PATH`). It ends by itself after 60 s without
a signal, so a leak cannot outlive a run for long.
"""
import os
import signal
import sys

CATCHABLE = sorted(set(range(1, 32)) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD})


def main():
    for signum in CATCHABLE:
        signal.signal(signum, lambda *_: None)
    signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
    line = "ready (pid: %d)\n" % os.getpid()
    os.write(1, line.encode())
    if len(sys.argv) == 3 and sys.argv[1] == "--ready-fifo":
        with open(sys.argv[2], "w") as fifo:
            fifo.write(line)
    while True:
        info = signal.sigtimedwait(CATCHABLE, 60)
        if info is None:
            sys.exit(3)
        os.write(1, b"%d\n" % info.si_signo)


if __name__ == "__main__":
    main()
