"""A tiny run of benchmarks/bench_rows_kernel.py: the kernels measured on the same rows, both reports."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_rows_kernel
from search_service.engine.native_rows import native_rows


def test_bench_rows_kernel_smoke(tmp_path: Path) -> None:
    argv = ["--rows", "3000", "--batches", "1,3", "--picked", "100,2000", "--repeats", "2"]
    result = bench_rows_kernel.main([*argv, "--out", str(tmp_path), "--name", "s"])
    assert json.loads((tmp_path / "s.json").read_text()) == result
    assert set(result["by_batch"]) == {"1", "3"} and set(result["picked"]) == {"100", "2000"}
    native = {"native"} if native_rows(bench_rows_kernel.DIM) is not None else set()
    for row in result["by_batch"].values():
        medians = row["median_cpu_ms"]
        assert set(medians) == {"replaced", "mlas", "simsimd"} | native and all(v >= 0 for v in medians.values())
    for medians in result["picked"].values():
        assert set(medians) == {"gathered"} | native and all(v >= 0 for v in medians.values())
    assert 0 <= result["simsimd_batch"] <= 16
    report = (tmp_path / "s.md").read_text()
    assert "| SimSIMD / MLAS |" in report and "| 2,000 |" in report
