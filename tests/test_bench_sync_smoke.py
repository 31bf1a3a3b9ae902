"""The sync benchmark, tiny: every stage runs and writes its figures (the real run is 50,000 items)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_sync


def test_tiny_sync_benchmark_writes_every_figure(pg_admin_url: str, tmp_path: Path) -> None:
    result = bench_sync.run(pg_admin_url, 300, 20)
    sync, baseline = result["sync"], result["put_baseline"]
    assert sync["listings"] == 300 and sync["rows"] == 300  # a first sync carries each level on its product
    assert result["with_worker"]["listings"] == 300 and result["with_worker"]["items_per_s"] > 0
    assert sync["in_stock"] == sum(1 for i in range(300) if i % 40)  # the fake's levels: i % 40
    assert result["connector"]["rows"] == 300
    assert baseline["sample"] == 20 and baseline["extrapolated_seconds"] > baseline["sample_seconds"]
    for key in ("sync_items_per_s", "map_items_per_s", "items_per_s"):
        assert sync[key] > 0
    json_path, md_path = bench_sync.write_results(result, tmp_path, "-smoke")
    assert json.loads(json_path.read_text())["items"] == 300
    assert "EXTRAPOLATED" in md_path.read_text()
