"""`serve` keeps large transient arrays out of the heap (`vector_load.return_large_frees`): in a real process, a
freed 12 MiB array leaves no resident memory behind, where glibc's default (a threshold raised by each large
free, here a 16 MiB one's) serves the next ones from the heap, resident after they are freed; so does the
generation writer's policy (`reuse_large_frees`: a process that exits after its load reuses its heap)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from search_service.engine.batcher import MicroBatcher
from search_service.engine.vector_load import IdleTrim

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
import numpy as np
from search_service.engine.vector_load import return_large_frees, reuse_large_frees

def resident_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "fixed":
    return_large_frees()
elif sys.argv[1] == "reused":
    return_large_frees()  # as the generation writer, forked by `serve` after it
    reuse_large_frees()
before = resident_mib()
np.ones(16 << 18, dtype=np.float32)  # 16 MiB: mapped (above the starting threshold), freed: the threshold rises
for _ in range(3):
    a = np.ones(12 << 18, dtype=np.float32)  # 12 MiB, written
    del a
print(resident_mib() - before)
"""


@pytest.mark.parametrize(("policy", "kept_mib"), [("default", (8, 20)), ("fixed", (-4, 2)), ("reused", (8, 20))])
def test_a_freed_large_array_leaves_nothing_resident_once_fixed(policy: str, kept_mib: tuple[int, int]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, policy], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    low, high = kept_mib
    assert (
        low <= float(done.stdout) <= high
    )  # default and reused (the writer): the heap kept the 12 MiB; fixed: returned


def test_the_heap_is_trimmed_once_idle_after_work_and_never_while_busy() -> None:
    """`IdleTrim`: the API's vector refresh (every second) trims once no search has started since its last check
    and none is under way, once per spell of work; a process with a search under way, or one started within the
    interval, is not trimmed."""
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items)
    trim = IdleTrim()
    checks = []

    def check() -> bool:
        checks.append(trim.due(batcher.calls, busy=batcher.callers > 0))
        return checks[-1]

    assert not check()  # nothing ever ran
    with batcher.caller():
        assert not check()  # a search under way
        assert not check()  # still under way, nothing new started: busy
    assert check()  # it ended, and none started since the last check: trim
    assert not check()  # trimmed already: nothing ran since
    with batcher.caller():  # a search started and ended between two checks
        pass
    assert not check()  # one started since the last check: not idle for an interval
    assert check() and not check()
    assert checks.count(True) == 2 and batcher.calls == 2
