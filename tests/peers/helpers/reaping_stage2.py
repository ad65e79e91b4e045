#!/usr/bin/python3
"""tini test/reaping/stage_2.py, rewritten: start 100 short sleeps and exit at once
without waiting, so they become orphans. (tini's sleep 1 to 3 s; shortened to
0.2 to 0.8 s to keep the suite fast: what matters is 100 orphans exiting at
different times after their parent is gone.)"""
import random
import subprocess

for i in range(100):
    subprocess.Popen(["sleep", "%.2f" % (0.2 + 0.3 * (i % 2) + 0.3 * random.random())])
