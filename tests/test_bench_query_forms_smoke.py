"""A tiny run of benchmarks/bench_query_forms.py: a small demo catalogue embedded by the real model, a few queries,
one round. fp32 agrees with itself exactly; the int8 form stays within the load check's bound of it and finds
most of fp32's ten."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_query_forms
from embeddings.encoder import DEFAULT_CACHE_DIR, EncoderConfig, load_encoder
from embeddings.query_check import QUERY_INT8_MIN_COSINE
from search_service.demo import Scale
from search_service.demo.seed import seed


def test_bench_query_forms_smoke(fresh_db_url: str, tmp_path: Path) -> None:
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    scale = Scale("query-forms", products=150, stores=12, listings_per_store=20)
    seed(fresh_db_url, scale, 7, embed=True, encoder=encoder, cache_dir=tmp_path, quiet=True)
    argv = ["--database-url", fresh_db_url, "--queries", "12", "--rounds", "2", "--out", str(tmp_path / "out")]
    result = bench_query_forms.main([*argv, "--name", "s"])

    assert json.loads((tmp_path / "out" / "s.json").read_text()) == json.loads(json.dumps(result))
    assert result["products"] == 150 and result["queries"] == 12 and result["rounds"] == 2
    fp32, int8 = result["forms"]["fp32"], result["forms"]["int8"]
    assert fp32["overlap_at_10"] == 1.0 and fp32["same_ten"] == fp32["same_first"] == 12
    assert fp32["cosine_min"] == 1.0 and fp32["similarity_loss"] == 0.0 and fp32["cpu_vs_fp32"] == 1.0
    assert QUERY_INT8_MIN_COSINE <= int8["cosine_min"] < 1.0 and int8["load_check_cosine"] >= QUERY_INT8_MIN_COSINE
    assert 0 < int8["overlap_at_10"] <= 1 and 0 <= int8["same_ten"] <= 12 and int8["similarity_loss"] >= 0
    assert sum(k["queries"] for k in int8["by_kind"].values()) == 12
    assert all(len(f["cpu_rounds_ms"]) == 2 and f["cpu_ms_per_query"] > 0 for f in (fp32, int8))
    assert result["fp32_gap_10th_11th_median"] >= 0 and result["environment"]["speed_probe_ms_start"] > 0
    assert "| int8 | " in (tmp_path / "out" / "s.md").read_text()
