"""A tiny run of benchmarks/bench_keyword_scope.py: a word matching every product of a synthetic catalogue, with
the keyword cap below the catalogue. Ranked in scope, the keyword side holds the naive plan's matches in its
order; the baseline (the catalogue's first `cap` matches) is reported capped."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_keyword_scope
from search_service.demo.synthetic import SyntheticSpec, seed_synthetic


def test_bench_keyword_scope_smoke(db_url: str, tmp_path: Path) -> None:
    seed_synthetic(db_url, SyntheticSpec(products=600, stores=20, listings=3000, sigma_m=3000.0))
    argv = ["--database-url", db_url, "--words", "synthetic", "--radii", "3", "--points", "2", "--repeats", "1"]
    result = bench_keyword_scope.main([*argv, "--keyword-cap", "40", "--out", str(tmp_path), "--name", "s"])
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(json.dumps(result, default=str))
    assert len(result["cases"]) == 2 and any(c["matches_in_scope"] > 40 for c in result["cases"])
    for case in result["cases"]:
        in_scope, baseline = case["in_scope"], case["baseline"]
        assert in_scope["recall_at_30"] == 1.0 and in_scope["same_order"], case
        assert in_scope["total"] == case["matches_in_scope"] and in_scope["total_exact"], case
        assert not baseline["total_exact"] and baseline["total"] <= 40, case
        assert in_scope["wall_ms"] > 0 and baseline["wall_ms"] > 0
    assert "| `synthetic` | 3 km |" in (tmp_path / "s.md").read_text()
