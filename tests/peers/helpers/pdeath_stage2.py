#!/usr/bin/python3
"""tini test/pdeathsignal/stage_2.py, rewritten: on SIGUSR1 write "ok" to FILE and
exit 0; after installing the handler, SIGKILL PID (or our parent, for `parent`),
then wait at most 5 s for the signal.

Usage: pdeath_stage2.py PID|parent FILE"""
import os
import signal
import sys
import time


def main():
    target, result = sys.argv[1], sys.argv[2]

    def handler(*_):
        with open(result, "w") as f:
            f.write("ok")
        os._exit(0)

    signal.signal(signal.SIGUSR1, handler)
    os.kill(os.getppid() if target == "parent" else int(target), signal.SIGKILL)
    time.sleep(5)  # interrupted by the signal: the handler runs and exits
    sys.exit(1)


if __name__ == "__main__":
    main()
