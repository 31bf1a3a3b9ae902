"""A tiny run of benchmarks/bench_ingest.py: the real API and worker processes, every measurement, both reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_ingest

pytestmark = pytest.mark.slow


def test_bench_ingest_smoke(pg_admin_url: str, tmp_path: Path) -> None:
    argv = ["--dsn", pg_admin_url, "--rows", "1500", "--baseline-rows", "20", "--webhooks", "60",
            "--freshness", "2", "--api-workers", "1", "--out", str(tmp_path), "--name", "smoke"]  # fmt: skip
    result = bench_ingest.main(argv)
    saved = json.loads((tmp_path / "smoke.json").read_text())
    assert saved == result
    assert result["csv_import"]["rows"] == 1500 and result["csv_import"]["rows_per_s"] > 0
    assert result["baseline_put"]["extrapolated_rows"] == 1500
    assert result["speedup_vs_baseline"] > 1  # a batch beats one request per row even at this size
    assert result["webhook_intake"]["deliveries"] == 60 and result["webhook_intake"]["p95_ms"] > 0
    fresh = result["freshness"]
    assert fresh["stock_trials"] == 2 and fresh["stock_p95_s"] < 30 and fresh["new_product_p95_s"] < 30
    report = (tmp_path / "smoke.md").read_text()
    assert "extrapolated" in report and "webhook intake" in report
