#!/usr/bin/python3
"""tini test/pdeathsignal/stage_1.py, rewritten: run `INIT_ARGV... -- stage2 WHO
FILE`, where WHO is our own PID (stage 2 kills us: the init's parent dies) or the
word `parent` (stage 2 kills its parent: the init itself dies), and wait for it.

Usage: pdeath_stage1.py self|parent FILE INIT_ARGV..."""
import os
import subprocess
import sys


def main():
    who, result, init = sys.argv[1], sys.argv[2], sys.argv[3:]
    target = str(os.getpid()) if who == "self" else "parent"
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.Popen(init + ["--", sys.executable, os.path.join(here, "pdeath_stage2.py"), target, result]).wait()


if __name__ == "__main__":
    main()
