"""CPU seconds of the processes a QPS window loads: the API, PostgreSQL and the load generator itself.

All three share this machine's cores, so a window's rate is bounded by the CPU each request costs in each of
them. Read per request, those costs say whether a slower window did more work or ran on a slower machine (the
same code measured here cost ~17 ms of CPU per hybrid search in one minute and ~23 ms in another).
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from its state on (the name in brackets may hold spaces); None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(OSError):
                out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def _tree_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # after the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(f) for f in fields[11:15]) + sum(_tree_ticks(child) or 0 for child in _children(pid))


def process_tree_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) of a process and all its descendants, including those that ended: a reaped
    child's time moves into its parent's cutime/cstime, so the sum over the live tree of own + children's time
    only grows. None when the process is gone (or /proc is not there)."""
    ticks = _tree_ticks(pid)
    return None if ticks is None else ticks / CLOCK_TICKS


def postmaster_of(backend_pid: int) -> int | None:
    """The postmaster of a PostgreSQL backend when it runs on this machine, else None (a remote server, or
    one in another PID namespace, whose CPU this process cannot see)."""
    fields = _stat_fields(backend_pid)
    if fields is None:
        return None
    parent = int(fields[1])
    try:
        comm = Path(f"/proc/{parent}/comm").read_text().strip()
        backend_comm = Path(f"/proc/{backend_pid}/comm").read_text().strip()
    except OSError:
        return None
    # a backend's parent is the postmaster, which runs the same executable
    return parent if comm == backend_comm == "postgres" else None


@dataclass(frozen=True)
class CpuReading:
    wall_s: float
    api_s: float | None
    database_s: float | None
    client_s: float


class CpuMeter:
    """Readings of the API's process tree, the PostgreSQL server's (when local) and this process."""

    def __init__(self, api_pid: int, postmaster_pid: int | None) -> None:
        self.api_pid = api_pid
        self.postmaster_pid = postmaster_pid

    def read(self) -> CpuReading:
        own = os.times()
        return CpuReading(
            wall_s=time.perf_counter(),
            api_s=process_tree_seconds(self.api_pid),
            database_s=None if self.postmaster_pid is None else process_tree_seconds(self.postmaster_pid),
            client_s=own.user + own.system,
        )


def per_request(before: CpuReading, after: CpuReading, requests: int) -> dict[str, float | None]:
    """CPU ms per request of each process group between two readings, and `busy`: the share of the machine's
    CPUs the three groups used together (1.0: every core busy with this work)."""

    def ms(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or requests <= 0 else round((b - a) * 1000 / requests, 3)

    out: dict[str, float | None] = {
        "api": ms(before.api_s, after.api_s),
        "database": ms(before.database_s, after.database_s),
        "client": ms(before.client_s, after.client_s),
    }
    wall = after.wall_s - before.wall_s
    pairs = ((before.api_s, after.api_s), (before.database_s, after.database_s), (before.client_s, after.client_s))
    used = sum(b - a for a, b in pairs if a is not None and b is not None)
    cpus = len(os.sched_getaffinity(0))
    out["busy"] = round(used / (wall * cpus), 3) if wall > 0 else None
    return out
