"""Smoke run of the restart benchmark (benchmarks/bench_restart.py) on a throwaway embedded cluster with a tiny
synthetic catalogue: both restarts happen, the prewarmed one reads back the blocks its record lists, and every
search of both passes is timed. The OS page cache is kept (the suite shares the machine)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import bench_restart
from search_service.db import migrate
from search_service.db.cluster import Cluster, free_port
from search_service.demo.synthetic import SyntheticSpec, seed_synthetic

pytestmark = pytest.mark.slow


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="plinqy-restart-"))  # not tmp_path: the server runs as `postgres`
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root / "data", free_port(), dbname="plinqy")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def test_restart_benchmark_times_both_starts(own_cluster: Cluster, tmp_path: Path) -> None:
    url = own_cluster.url()
    migrate.upgrade(url)
    seed_synthetic(url, SyntheticSpec(products=400, stores=20, listings=2000))
    result = bench_restart.main(
        [
            *("--database-url", url, "--pgdata", str(own_cluster.data_dir), "--scale", "tiny"),
            *("--queries", "4", "--radii", "5,global", "--keep-os-cache", "--out", str(tmp_path)),
        ]
    )
    cold, warm = result["runs"]["cold"], result["runs"]["prewarmed"]
    assert cold["record_blocks"] == 0 and cold["prewarm"] is None
    assert warm["record_blocks"] > 0 and warm["prewarm"]["blocks"] == warm["record_blocks"]
    assert cold["os_cache_dropped"] is False and warm["os_cache_dropped"] is False
    for run in (cold, warm):
        assert run["engine"]["vectors"] == 400
        assert list(run["radii"]) == ["5 km", "global"]
        for passes in run["radii"].values():
            assert passes["first"]["n"] == passes["second"]["n"] == 4
            assert passes["first"]["p50"] > 0 and passes["second"]["p50"] > 0
    written = json.loads(next(tmp_path.glob("restart-*.json")).read_text())
    assert written["runs"]["prewarmed"]["record_blocks"] == warm["record_blocks"]
    assert "| 5 km |" in next(tmp_path.glob("restart-*.md")).read_text()
