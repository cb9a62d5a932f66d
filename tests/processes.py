"""Child processes of the test session (workers, live servers)."""

import ctypes
import signal
import sys


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the test process dies, however it dies. A worker
    that outlived a killed test run kept taking the next run's jobs (same database names, same
    Redis index) with the old code."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
