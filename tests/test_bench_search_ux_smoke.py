"""Smoke run of benchmarks/bench_search_ux.py at the demo scale (5k products), so that it cannot rot: it seeds,
gives the products synthetic vectors, measures suggestions and keyword and hybrid searches with and without facets,
and writes JSON and Markdown that say so."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from benchmarks import bench_search_ux


def test_bench_search_ux_smoke(make_database: Callable[..., str], tmp_path: Path) -> None:
    url = make_database()
    paths = bench_search_ux.main(
        [
            "--database-url",
            url,
            "--scale",
            "demo",
            "--prefixes",
            "6",
            "--queries",
            "3",
            "--points",
            "1",
            "--out",
            str(tmp_path),
            "--name",
            "smoke",
            "--modes",
            "keyword,hybrid",
            "--synthetic-vectors",
        ]
    )
    report = json.loads(paths["json"].read_text())
    assert report["catalogue"].startswith("5,000 products")
    suggest = report["results"]["suggest"]
    assert suggest["all"]["n"] == 6 * 5  # 6 prefixes x (global + 1 point at each of 4 radii)
    assert 0 < suggest["all"]["p50_ms"] <= suggest["all"]["p95_ms"]
    keyword = report["results"]["keyword"]["all"]
    assert keyword["plain"]["n"] == keyword["facets"]["n"] == 3 * 5
    assert keyword["ratio_p95"] > 0
    hybrid = report["results"]["hybrid"]["all"]
    assert hybrid["plain"]["n"] == hybrid["facets"]["n"] == 3 * 5
    assert report["vectors"] == {"synthetic-random-unit": 5000}
    md = paths["md"].read_text()
    assert "## Suggestions" in md and "facets=category,brand,price vs none" in md
