"""Smoke run of the benchmark harness (benchmarks/run.py) at a tiny scale, so that it cannot rot.

A real database (cloned from the migrated template), a synthetic catalogue of ~1.5k products, a few queries,
the real API in a subprocess for a few requests per radius and very short QPS windows. The real benchmarks
(`make bench`, `make bench-large`) never run in the test suite.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import replay, report
from benchmarks import run as bench
from search_service.engine import search as engine

EXPECTED_RADII = ["0.5 km", "2 km", "5 km", "20 km", "100 km", "global"]


@dataclass(frozen=True)
class TinyRun:
    url: str  # the seeded tiny database the run used (the replay test reuses it)
    out: Path
    paths: dict[str, Path]
    generations_before: frozenset[Path]  # shared generations in the temp directory before the run (others')


def generations() -> frozenset[Path]:
    return frozenset(Path(tempfile.gettempdir()).glob("bench-vectors-*"))


@pytest.fixture(scope="module")
def tiny_run(make_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    url = make_database()
    out = tmp_path_factory.mktemp("bench")
    # A vector-cache cap below the catalogue, as the default one is below the large scale's: the harness must raise
    # it for the API under test, or the API would serve other plans than the SQL-only part measured.
    before = generations()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLINQY_VECTOR_CACHE_MAX", "100")
        paths = _run_tiny(url, out)
    return TinyRun(url, out, paths, before)


def _run_tiny(url: str, out: Path) -> dict[str, Path]:
    return bench.main(
        [
            "--scale",
            "tiny",
            "--database-url",
            url,
            "--generator",
            "synthetic",
            "--queries",
            "4",
            "--qps-seconds",
            "0.3",
            "--qps-windows",
            "3",
            "--skip-encoder-rates",
            "--skip-worker",
            "--skip-cached-qps",
            "--typo-names",
            "12",
            "--out",
            str(out),
        ]
    )


@pytest.mark.timeout(180)
def test_tiny_benchmark_run_writes_every_figure(tiny_run: TinyRun) -> None:
    paths, tmp_path = tiny_run.paths, tiny_run.out
    for kind in ("json", "markdown", "latest", "latency_plot", "recall_plot"):
        assert paths[kind].exists() and paths[kind].stat().st_size > 0, kind
    result = json.loads(paths["json"].read_text())

    for key in ("machine", "parameters", "load", "hnsw_build", "sizes", "query_set", "sql", "http", "embedding"):
        assert key in result, key
    machine = result["machine"]
    for key in ("cpu_count", "cpu_model", "ram_bytes", "postgresql", "pgvector", "postgis", "versions"):
        assert machine[key], key
    assert machine["versions"]["onnxruntime"]
    assert result["load"]["counts"]["product_master"] > 0 and result["load"]["rows_per_s"] > 0
    assert result["hnsw_build"]["seconds"] >= 0
    assert result["sizes"]["tables"]["product_master"]["total_bytes"] > 0

    assert list(result["sql"]) == EXPECTED_RADII
    for radius, entry in result["sql"].items():
        engine = entry["engine_semantic"]
        for plan in ("engine_semantic", "naive", "naive_forced"):
            assert 0.0 <= entry[plan]["recall_at_k"] <= 1.0, (radius, plan)
            assert 0.0 <= entry[plan]["short_rate"] <= 1.0, (radius, plan)
            assert entry[plan]["latency_ms"]["p50"] > 0, (radius, plan)
        assert sum(engine["strategies"].values()) == 4
        assert engine["invalid_results"] == 0
        assert entry["engine_hybrid"]["latency_ms"]["p99"] >= entry["engine_hybrid"]["latency_ms"]["p50"]
        assert isinstance(entry["naive"]["plan"]["uses_hnsw"], bool)
        assert entry["slowest_engine_query"]["explain_analyze"]
    # The engine is exact by construction below its HNSW threshold: a tiny catalogue is answered exactly.
    assert all(result["sql"][r]["engine_semantic"]["recall_at_k"] == 1.0 for r in EXPECTED_RADII)
    # ...set up as an API worker runs it (benchmarks/api_engine.py): a shared generation mapped, its in-memory plans.
    copy = result["vector_cache"]
    assert (
        copy["form"] == "shared generation (as serve)" and copy["vectors"] == result["load"]["counts"]["product_master"]
    )
    assert copy["stores_in_memory"] > 0 and copy["rank_threads"] >= 1
    planned = {s for r in EXPECTED_RADII for s in result["sql"][r]["engine_semantic"]["strategies"]}
    assert planned & {"exact_scan", "exact_gather", "global_exact_scan"} and not any("hnsw" in s for s in planned)
    assert "mapping a shared generation" in paths["markdown"].read_text()
    assert generations() <= tiny_run.generations_before, "the run's generation was left behind"

    http = result["http"]
    assert list(http["radii"]) == EXPECTED_RADII
    # measured once the workers' suggestion indexes were built (their build is not in the windows)
    assert http["warm_after_s"] >= 0 and "had built its suggestion index" in paths["markdown"].read_text()
    for radius, entry in http["radii"].items():
        assert 0.0 <= entry["semantic"]["recall_at_k"] <= 1.0, radius
        assert entry["hybrid"]["latency_ms"]["p95"] > 0, radius
        assert set(entry["qps"]) == {"1", "8", "32"}
        assert all(v["qps"] >= 0 for v in entry["qps"].values())
        assert entry["qps"]["8"]["ok"] > 0 and entry["qps"]["8"]["mode"] == "hybrid", radius
        assert entry["qps_other_mode"]["8"]["ok"] > 0 and entry["qps_other_mode"]["8"]["mode"] == "semantic", radius
        for c8 in (entry["qps"]["8"], entry["qps_other_mode"]["8"]):  # the median of three windows, each kept
            assert len(c8["windows_qps"]) == 3 and c8["qps"] == sorted(c8["windows_qps"])[1], radius
            assert c8["cpu_ms_per_request"] in c8["windows_cpu_ms_per_request"], radius
    # CPU per request of each process group in every c=8 window (the median window's are reported).
    cpu = [c8["cpu_ms_per_request"] for e in http["radii"].values() for c8 in (e["qps"]["8"], e["qps_other_mode"]["8"])]
    assert all(c["api"] is not None and c["api"] >= 0 and c["client"] >= 0 and c["busy"] > 0 for c in cpu)
    assert sum(c["api"] for c in cpu) > 0
    if http["cpu_measured"]["database"]:
        assert all(c["database"] is not None for c in cpu) and sum(c["database"] for c in cpu) > 0
    assert "| radius | mode | QPS c=8 | API | PostgreSQL | client | busy |" in paths["markdown"].read_text()
    assert http["api_rss_bytes"]["vm_hwm"] > 0
    assert http["api_workers"] >= 1
    assert http["api_vector_cache_max"] >= result["load"]["counts"]["product_master"] > 100
    in_memory = {s for e in http["radii"].values() for s in e["semantic"]["strategies"] if "exact_scan" in s}
    assert in_memory, "the API held no vector copy"

    typos = result["typos"]
    assert typos["names"] == 12
    for key in ("typo_tolerance/keyword", "typo_tolerance/hybrid", "words_as_typed/keyword", "words_as_typed/hybrid"):
        assert 0.0 <= typos[key]["found_at_10"] <= typos[key]["found_at_30"] <= 1.0, key
        assert typos[key]["latency_ms_p50"] > 0, key
    assert "## Typo tolerance" in paths["markdown"].read_text()

    assert "reembed" in result["embedding"] and "worker" in result["embedding"]
    targets = {t["target"] for t in result["targets"]}
    assert "loading rate" in targets and "short-result rate (all radii)" in targets
    markdown = paths["markdown"].read_text()
    assert "## Targets" in markdown and "recall@10 0.5 km" in markdown

    # How fast the shared machine was: the speed probe at both ends, the CPU states of each timed phase.
    assert machine["speed_probe_ms_start"] > 0 and machine["speed_probe_ms_end"] > 0
    for phase in ("sql benchmark", "http benchmark"):
        shares = result["phases_cpu"][phase]
        assert set(shares) <= set(bench.CPU_STATES) and all(v >= 0 for v in shares.values()), phase
        assert sum(shares.values()) == pytest.approx(1.0, abs=0.01) and shares["idle"] < 1.0, phase
    assert "Speed probe" in markdown and "stolen by the hypervisor" in markdown

    # A second run the same day gets files of its own; the first run's stay as they were.
    again = report.write(result, tmp_path)
    assert again["json"].name == paths["json"].name.replace(".json", "-run2.json")
    assert again["latency_plot"].exists() and again["markdown"].read_text() != ""
    assert json.loads(paths["json"].read_text()) == result


def test_cpu_table_says_when_postgresql_runs_elsewhere() -> None:
    window = {"qps": 50.0, "mode": "hybrid", "cpu_ms_per_request": {"api": 9.5, "database": None, "client": 0.5}}
    http = {"cpu_measured": {"database": False}, "radii": {"2 km": {"qps": {"8": window}}}}
    lines = report._cpu_lines(http)
    assert any("its CPU is not measured" in line for line in lines)
    assert "| 2 km | hybrid | 50 | 9.5 | – | 0.5 | – |" in lines
    assert report._cpu_lines({"radii": {"2 km": {"qps": {"8": {"qps": 50.0}}}}}) == []  # runs before the meter


def test_cpu_shares_are_each_states_part_of_the_ticks_between_two_readings() -> None:
    before = {"user": 100, "system": 50, "idle": 800, "iowait": 10, "steal": 40}
    after = {"user": 400, "system": 150, "idle": 1300, "iowait": 10, "steal": 140}
    assert bench.cpu_shares(before, after) == {
        "user": 0.3,
        "system": 0.1,
        "idle": 0.5,
        "iowait": 0.0,
        "steal": 0.1,
    }
    assert bench.cpu_shares(before, before) is None  # no time passed
    assert bench.cpu_shares(None, after) is None  # no /proc/stat
    ticks = bench.cpu_ticks()
    assert ticks is not None and set(ticks) <= set(bench.CPU_STATES) and ticks["idle"] >= 0


@pytest.mark.timeout(180)
def test_statement_replay_compares_rows_and_times_both_forms(tiny_run: TinyRun, tmp_path: Path) -> None:
    sql_file = engine.SQL_PATH.read_text()
    same = tmp_path / "same.sql"
    same.write_text(sql_file)
    args = ["--database-url", tiny_run.url, "--radii", "2000,global", "--queries", "3", "--reps", "2"]
    assert replay.main(["--block", "hydrate", "--variant", str(same), *args, "--out", str(tmp_path)]) == 0
    result = json.loads(next(tmp_path.glob("replay-hydrate-*.json")).read_text())
    assert result["calls"] > 0 and result["identical"] == result["calls"] and result["mismatches"] == []
    assert len(result["rounds"]) == 2
    for r in result["rounds"]:
        assert r["current_ms_per_call"] > 0 and r["variant_ms_per_call"] > 0
        assert r["ratio_of_sums"] == pytest.approx(r["variant_ms_per_call"] / r["current_ms_per_call"])
    assert "identical rows in both forms" in next(tmp_path.glob("replay-hydrate-*.md")).read_text()
    again = ["--block", "hydrate", "--variant", str(same), *args, "--reps", "1", "--out", str(tmp_path)]
    assert replay.main(again) == 0
    assert len(list(tmp_path.glob("replay-hydrate-*-run2.json"))) == 1  # the first run's files stay

    # A rewrite that loses rows is caught: every global page has products, so every call differs.
    end = "ORDER BY h.ord, CASE WHEN :cheapest_first::bool THEN st.price END, st.distance_m, st.price, st.store_id;"
    assert sql_file.count(end) == 1
    lossy = tmp_path / "lossy.sql"
    lossy.write_text(sql_file.replace(end, end[:-1] + " LIMIT 0;"))
    assert replay.main(["--block", "hydrate", "--variant", str(lossy), *args, "--reps", "1"]) == 1

    other = tmp_path / "other.sql"
    other.write_text("-- name: something_else\n-- params: none\nSELECT 1;\n")
    with pytest.raises(SystemExit, match="no block named 'hydrate'"):
        replay.main(["--block", "hydrate", "--variant", str(other), *args])
    with pytest.raises(SystemExit, match="cannot read"):
        replay.main(["--block", "hydrate", "--variant", str(tmp_path / "missing.sql"), *args])
    with pytest.raises(SystemExit, match="has no SQL block 'no_such_block'"):
        replay.main(["--block", "no_such_block", "--variant", str(same), *args])
    with pytest.raises(SystemExit, match="neither a radius"):
        replay.main(["--block", "hydrate", "--variant", str(same), *args, "--radii", "far"])


@pytest.mark.timeout(240)
def test_scale_qps_benchmark_measures_both_catalogues_back_to_back(tiny_run: TinyRun, tmp_path: Path) -> None:
    """benchmarks/bench_scale_qps.py at a tiny scale: the tiny catalogue plays both sizes (one API worker, short
    windows); every run measures every radius, and the ratios are 1M's QPS over the mean of the runs around it."""
    from benchmarks import bench_scale_qps

    urls = ["--small-url", tiny_run.url, "--large-url", tiny_run.url, "--queries", "4", "--workers", "1"]
    windows = ["--seconds", "0.3", "--c1-seconds", "0.2", "--warmup-seconds", "0.2"]
    variant = ["--large-variant", "PLINQY_RANK_THREADS=1,PLINQY_QUERY_CACHE_SIZE=0"]
    json_path, md_path = bench_scale_qps.main([*urls, *windows, *variant, "--out", str(tmp_path), "--tag", "smoke"])
    result = json.loads(json_path.read_text())
    large_name = "1M (PLINQY_RANK_THREADS=1, PLINQY_QUERY_CACHE_SIZE=0)"
    assert [run["name"] for run in result["runs"]] == ["100k", large_name, "100k again"]
    assert result["runs"][1]["env"] == {"PLINQY_RANK_THREADS": "1", "PLINQY_QUERY_CACHE_SIZE": "0"}
    for run in result["runs"]:
        assert [r["radius"] for r in run["radii"]] == EXPECTED_RADII
        for entry in run["radii"]:
            assert entry["c8"]["ok"] > 0 and entry["c1"]["ok"] > 0, (run["name"], entry)
            assert entry["c8"]["cpu_ms_per_request"]["api"] > 0
    small, large = result["runs"][0], result["runs"][1]
    ratio = result["ratios"][large_name]["2 km"]
    small_qps = [r["c8"]["qps"] for run in (small, result["runs"][2]) for r in run["radii"] if r["radius"] == "2 km"]
    assert ratio["small_qps"] == pytest.approx(sum(small_qps) / 2)
    assert ratio["ratio"] == pytest.approx(large["radii"][1]["c8"]["qps"] / ratio["small_qps"])
    assert "QPS at c=8 over 100k's" in md_path.read_text()
