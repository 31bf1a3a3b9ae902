"""A tiny run of benchmarks/bench_ranking.py: the current ranking and the replaced one hand out the same rows."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_ranking


def test_bench_ranking_smoke(tmp_path: Path) -> None:
    result = bench_ranking.main(
        ["--rows", "4000", "--queries", "2", "--repeats", "1", "--out", str(tmp_path), "--name", "s"]
    )
    assert json.loads((tmp_path / "s.json").read_text()) == result
    for kind in ("near", "far"):
        assert set(result["by_query"][kind]) == {str(p) for p in bench_ranking.PATTERNS}
        for medians in result["by_query"][kind].values():
            assert set(medians) == {"replaced", "current"} and all(v >= 0 for v in medians.values())
    assert "two passes" in (tmp_path / "s.md").read_text()
