"""The worker supervisor's pause before restarting a crashed job: doubling while the job keeps crashing soon after
its start, back to 1 s once it ran healthily for a while (it never came back down: 60 s per crash for ever)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from search_service import worker
from search_service.worker import Job, JobContext, Supervisor


def test_the_pause_doubles_to_the_cap_and_resets_after_a_healthy_run() -> None:
    backoff, now = worker.RestartBackoff(), 0.0
    pauses = []
    for _ in range(8):  # crashes a second after each start
        backoff.started(now)
        now += 1.0
        pauses.append(backoff.next_delay(now))
        now += pauses[-1]
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.started(now)
    assert backoff.next_delay(now + 59) == 60  # under a minute: still in trouble
    backoff.started(now + 200)
    assert backoff.next_delay(now + 200 + worker.HEALTHY_RUN_S) == 1  # a healthy run: afresh
    backoff.started(now + 300)
    assert backoff.next_delay(now + 301) == 2  # crashing soon after a start again: doubling again


def _crashes_twice_then_later(ctx: JobContext) -> int:
    """Starts 1 and 2 crash at once, start 3 after a healthy run; later ones run until stopped."""
    counter = Path(ctx.options["counter"])
    starts = len(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text("x" * starts)
    if starts == 3:
        time.sleep(ctx.options["healthy_s"])
    elif starts > 3:
        time.sleep(600)
    return 1


def test_a_job_that_ran_healthily_is_restarted_after_a_second_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Real child processes: two quick crashes (pauses 1 s, 2 s), a healthy run, a crash: 1 s, not 4 s."""
    monkeypatch.setattr(worker, "HEALTHY_RUN_S", 0.5, raising=False)
    caplog.set_level(logging.WARNING, logger="plinqy.supervisor")
    options = {"counter": str(tmp_path / "starts"), "healthy_s": 4.5}  # past the 4 s the pause had doubled to
    ctx = JobContext(cast(Any, None), "", False, options)
    supervisor = Supervisor([Job("crashy", _crashes_twice_then_later)], ctx)

    def stop_after_the_fourth_start() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / "starts").read_text().startswith("xxxx"):
            time.sleep(0.1)
        supervisor._stop(0, None)

    (tmp_path / "starts").write_text("")
    stopper = threading.Thread(target=stop_after_the_fourth_start, daemon=True)
    stopper.start()
    assert supervisor._supervise() == 0
    stopper.join()
    pauses = [int(m) for m in re.findall(r'"restart_in_s": (\d+)', caplog.text)]
    assert pauses == [1, 2, 1], caplog.text


STOP_IN_THE_FORKS_WINDOW = """
import os, signal, sys, time
from typing import Any, cast
from search_service.worker import Job, JobContext, Supervisor

def sleeps(ctx): time.sleep(60); return 0

supervisor = Supervisor([Job("sleepy", sleeps)], JobContext(cast(Any, None), "", True, {}))
# the stop arrives while the child is still inside the fork (after_in_child runs before _child_main)
os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))
sys.exit(supervisor.run())
"""


def test_a_stop_in_the_forks_window_still_stops_the_child() -> None:
    """SIGTERM reaching a job's process while it was being forked ran the supervisor's handler there (inherited),
    which took it: the child went on (here: sleeping a minute) and the worker hung on its stop."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", STOP_IN_THE_FORKS_WINDOW], capture_output=True, text=True, timeout=50)
    assert time.monotonic() - started < 30, proc.stderr[-2000:]
    assert proc.returncode == 1 and "sleepy (killed by signal SIGTERM)" in proc.stderr, proc.stderr[-2000:]
