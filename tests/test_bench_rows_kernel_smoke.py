"""A tiny run of benchmarks/bench_rows_kernel.py: the kernels measured on the same rows, both reports."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_rows_kernel


def test_bench_rows_kernel_smoke(tmp_path: Path) -> None:
    result = bench_rows_kernel.main(
        ["--rows", "3000", "--batches", "1,3", "--repeats", "2", "--out", str(tmp_path), "--name", "s"]
    )
    assert json.loads((tmp_path / "s.json").read_text()) == result
    assert set(result["by_batch"]) == {"1", "3"}
    for row in result["by_batch"].values():
        medians = row["median_cpu_ms"]
        assert set(medians) == {"replaced", "mlas", "simsimd"} and all(v >= 0 for v in medians.values())
    assert 0 <= result["simsimd_batch"] <= 16
    assert "| SimSIMD / MLAS |" in (tmp_path / "s.md").read_text()
