"""/proc reading shared by the helper programs and the runner (standard library only)."""
import os


def stat(pid):
    """(ppid, pgrp, state, comm) of PID from /proc/PID/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm may hold spaces and parentheses: it ends at the last ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), fields[0], comm


def table():
    """{pid: (ppid, pgrp, state, comm)} for every process visible in /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = stat(int(name))
            if found is not None:
                out[int(name)] = found
    return out


def descendants(root, procs=None):
    """PIDs of every process below ROOT (zombies included), parents first."""
    procs = table() if procs is None else procs
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _, _) in procs.items():
            if ppid == parent and pid not in found:
                found.append(pid)
                frontier.append(pid)
    return found


def state(pid):
    """The state word of /proc/PID/status ("running", "sleeping", "stopped", ...), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split("(", 1)[1].rstrip(")\n")
    except OSError:
        return None
    return None
