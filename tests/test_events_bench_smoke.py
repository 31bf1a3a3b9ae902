"""A tiny run of benchmarks/bench_events.py: every figure is measured and written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_events


@pytest.mark.slow
def test_tiny_events_benchmark_measures_both_senders_and_latency(fresh_db_url: str, tmp_path: Path) -> None:
    result = bench_events.run(fresh_db_url, n=200, latency_events=20, latency_rate=20.0)
    assert result["dispatcher"]["delivered"] == result["dispatcher"]["total"] == 200
    assert result["baseline_one_at_a_time"]["delivered"] == 200
    assert result["received"] == 200 + 200 + 20  # the backlog twice, then the latency phase's events
    assert result["dispatcher"]["rate_per_s"] > result["baseline_one_at_a_time"]["rate_per_s"] > 0
    latency = result["latency"]
    assert latency["events"] == 20 and 0 <= latency["p50_s"] <= latency["p95_s"] <= latency["max_s"] < 5
    js, md = bench_events.write(result, tmp_path, "events-smoke")
    assert json.loads(js.read_text())["n"] == 200
    assert "deliveries/s" in md.read_text() and "p95" in md.read_text()
