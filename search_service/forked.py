"""What a forked child of a supervisor (`serve --workers N`, `worker`) needs to not outlive it."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with(parent: int, signum: int = signal.SIGTERM) -> None:
    """In a forked child: get `signum` when `parent` dies, however it died (SIGKILL, SIGHUP, the OOM killer):
    orphaned API workers kept serving the old code on the port, orphaned jobs kept their leases. Linux only."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:  # it died before the call: no signal will come
        os.kill(os.getpid(), signum)


def describe_exit(code: int) -> str:
    """A child's exit code in words: 'exit code 1', or 'killed by signal SIGKILL' for -9 (multiprocessing's and
    os.waitstatus_to_exitcode's negative codes)."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"
