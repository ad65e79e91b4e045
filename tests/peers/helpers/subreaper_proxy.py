#!/usr/bin/python3
"""tini test/subreaper-proxy.py, rewritten with ctypes: become a child subreaper
(the flag survives exec), then exec the command line."""
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("subreaper-proxy: prctl: %s" % os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
