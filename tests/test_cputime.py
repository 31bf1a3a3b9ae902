"""The benchmark's CPU meter (benchmarks/cputime.py) against real processes and the test's PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from benchmarks import cputime

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_a_child_that_ended_still_counts_in_its_parents_tree() -> None:
    before = cputime.process_tree_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", BURN.format(s=0.4)], check=True)  # reaped: moves into our cutime
    after = cputime.process_tree_seconds(os.getpid())
    assert before is not None and after is not None
    assert after - before >= 0.35


def test_a_live_child_counts_in_its_parents_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.4) + "time.sleep(60)\n"])
    try:
        before = cputime.process_tree_seconds(os.getpid())
        assert before is not None
        deadline = time.monotonic() + 20
        while (cputime.process_tree_seconds(child.pid) or 0.0) < 0.35 and time.monotonic() < deadline:
            time.sleep(0.05)
        own = cputime.process_tree_seconds(child.pid)
        assert own is not None and own >= 0.35
        tree = cputime.process_tree_seconds(os.getpid())
        assert tree is not None and tree >= own  # the live child's time is in our tree
    finally:
        child.kill()
        child.wait()
    assert cputime.process_tree_seconds(child.pid) is None  # gone


def test_the_postmaster_of_a_local_backend(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backend = int(row[0])
        postmaster = cputime.postmaster_of(backend)
    if not Path(f"/proc/{backend}").exists() and postmaster is None:
        pytest.skip("the test's PostgreSQL server runs elsewhere")
    assert postmaster is not None
    assert Path(f"/proc/{postmaster}/comm").read_text().strip() == "postgres"
    assert (cputime.process_tree_seconds(postmaster) or 0.0) > 0
    assert cputime.postmaster_of(os.getpid()) is None  # a Python process is no backend
    assert cputime.postmaster_of(2**22 + 12345) is None  # no such process


def test_per_request_divides_each_groups_time_by_the_requests() -> None:
    before = cputime.CpuReading(wall_s=100.0, api_s=10.0, database_s=5.0, client_s=1.0)
    after = cputime.CpuReading(wall_s=101.0, api_s=10.8, database_s=5.6, client_s=1.05)
    got = cputime.per_request(before, after, 50)
    cpus = len(os.sched_getaffinity(0))
    assert got["api"] == pytest.approx(16.0) and got["database"] == pytest.approx(12.0)
    assert got["client"] == pytest.approx(1.0)
    assert got["busy"] == pytest.approx(round(1.45 / cpus, 3))
    remote = cputime.CpuReading(wall_s=101.0, api_s=10.8, database_s=None, client_s=1.05)
    assert cputime.per_request(before, remote, 50)["database"] is None
    assert cputime.per_request(before, after, 0)["api"] is None  # no request, no rate
