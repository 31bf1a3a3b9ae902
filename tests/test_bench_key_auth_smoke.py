"""The key-authentication benchmark, tiny: both paths run, every figure is written (the real run is 3,000 calls)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_key_auth


def test_tiny_key_auth_benchmark_writes_every_figure(pg_admin_url: str, tmp_path: Path) -> None:
    result = bench_key_auth.run(pg_admin_url, 40, rounds=1)
    for path in ("before", "after"):
        figures = result[path]
        assert figures["calls"] == 40 and 0 < figures["median_ms"] <= figures["p95_ms"]
        assert figures["c8_calls_per_s"] > 0
    assert (result["before"]["statements_per_call"], result["after"]["statements_per_call"]) == (2, 1)
    json_path, md_path = bench_key_auth.write_results(result, tmp_path, "-smoke")
    assert json.loads(json_path.read_text())["calls_per_round"] == 40
    assert "api_key_rate" in md_path.read_text()
