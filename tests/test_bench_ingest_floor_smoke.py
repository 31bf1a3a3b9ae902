"""A tiny run of benchmarks/bench_ingest_floor.py: every step measured, the pipeline beside it, both reports."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_ingest_floor


def test_bench_ingest_floor_smoke(pg_admin_url: str, tmp_path: Path) -> None:
    result = bench_ingest_floor.main(["--dsn", pg_admin_url, "--rows", "1000", "--out", str(tmp_path), "--name", "s"])
    assert json.loads((tmp_path / "s.json").read_text()) == result
    steps = result["floor_us_per_row"]
    assert set(steps) == set(result["bare_us_per_row"]) and len(steps) == 6
    assert result["floor_total_us"] == sum(steps.values()) > 0
    assert result["ceiling_rows_per_s"] == result["machine"]["cores"] * 1e6 / result["floor_total_us"]
    assert result["pipeline_us_per_row"]["map wall"] > 0
    assert "floor: the sum" in (tmp_path / "s.md").read_text()
