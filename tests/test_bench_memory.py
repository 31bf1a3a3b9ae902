"""Smoke run of the memory benchmark (benchmarks/bench_memory.py) on a tiny synthetic catalogue: `serve` with 1
and with 2 workers, every API process measured, and both workers of the second run mapping one vector
generation. Slow: three worker processes load the model in turn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import bench_memory

pytestmark = pytest.mark.slow


def test_memory_benchmark_measures_every_api_process(make_database: Callable[..., str], tmp_path: Path) -> None:
    url = make_database()
    paths = bench_memory.main(
        ["--database-url", url, "--products", "300", "--workers", "1,2", "--settle-s", "0.2", "--out", str(tmp_path)]
    )
    result = json.loads(paths["json"].read_text())
    assert result["vectors"] == 300 and result["seeded_s"] is not None
    one, two = result["runs"]
    assert [one["workers"], two["workers"]] == [1, 2] and one["ready_s"] > 0 and two["ready_s"] > 0
    assert one["ready_cpu_s"] > 0 and two["ready_cpu_s"] > 0
    assert [p["role"] for p in one["processes"]] == ["worker"]
    workers = [p for p in two["processes"] if p["role"] == "worker"]
    assert len(workers) == 2 and any(p["role"] == "supervisor" for p in two["processes"])
    files = {p["generation_file"] for p in workers}
    assert len(files) == 1 and None not in files  # one copy, mapped by both
    for run in result["runs"]:
        assert run["pss_total"] == sum(p["pss"] for p in run["processes"]) > 0
        assert all(0 < p["pss"] <= p["rss"] for p in run["processes"])
    assert result["second_worker_pss"] == two["pss_total"] - one["pss_total"]
    assert "second worker costs" in paths["md"].read_text()
