#!/usr/bin/python3
"""tini test/reaping/stage_1.py, rewritten: run stage 2 (100 orphans), then wait,
bounded, until the init (our parent) has no descendant but us, checking that every
descendant stays in our process group; then fail if any process of our group is
left, zombie or not. Exit 0: every orphan was reaped."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.Popen([sys.executable, os.path.join(here, "reaping_stage2.py")]).wait()
    me, init, group = os.getpid(), os.getppid(), os.getpgid(0)
    print("reaping: stage 1 is %d, init is %d" % (me, init), flush=True)
    deadline = time.monotonic() + 10
    while True:
        table = procs.table()
        below = procs.descendants(init, table)
        for pid in below:
            if pid in table and table[pid][1] != group:
                print("descendant %d has process group %d, not %d" % (pid, table[pid][1], group))
                sys.exit(1)
        if set(below) == {me}:
            break
        if time.monotonic() > deadline:
            print("still below the init after 10 s: %s" % sorted(below))
            sys.exit(1)
        time.sleep(0.05)
    left = [(pid, s) for pid, s in procs.table().items() if pid != me and s[1] == group]
    for pid, (_, _, state, comm) in left:
        print("not reaped: %d (%s) state %s" % (pid, comm, state))
    sys.exit(1 if left else 0)


if __name__ == "__main__":
    main()
