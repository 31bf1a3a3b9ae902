"""Directories one `serve` run makes and removes as it ends (the shared vector copy, the metric files), named after
the process that owns them, so that a later start removes those of runs that ended without their clean-up
(SIGKILL, the OOM killer): nothing removed them, and at 1M products each such stop left ~1 GB behind.

A name is `<prefix><host>.<pid>.<start>-<random>`: the host (a cache directory shared between machines holds
their runs too), the pid and its start time (a pid is reused, the pair is not). A directory named otherwise (a
run before this scheme) is never touched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks after boot, /proc/<pid>/stat), or None when there is none, or it has
    ended and waits to be reaped (a zombie: a start a second after a SIGKILL kept the dead run's directories)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def owned_prefix(prefix: str) -> str:
    """`prefix` followed by this process's owner tag, for tempfile.mkdtemp."""
    pid = os.getpid()
    return f"{prefix}{_host()}.{pid}.{_started(pid) or 0}-"


def remove_abandoned(parent: Path, prefix: str) -> None:
    """Remove `parent`'s directories named `owned_prefix(prefix)…` by this host whose owner has ended (a live
    server's stay; so does one whose start time is unknown: no /proc)."""
    pattern = re.compile(rf"{re.escape(prefix)}{_host()}\.(\d+)\.(\d+)-.+")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    removed = []
    for path in entries:
        owner = pattern.fullmatch(path.name)
        if owner is None or owner[2] == "0" or _started(int(owner[1])) == int(owner[2]):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path.name)
    if removed:
        log.info("removed %d directories of runs that ended without their clean-up in %s: %s", len(removed), parent,
                 ", ".join(sorted(removed)))  # fmt: skip
