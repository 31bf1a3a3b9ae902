"""The API's query forms (`PLINQY_QUERY_ENCODER`): the int8 form against fp32, the baseline, in the same run.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.bench_query_forms --database-url URL [--queries 400] [--rounds 7]

Both forms are the project's own encoders as the API loads its query encoder (`Settings.query_encoder_config`:
the onnx backend on one thread, no memory arena; int8 with `query_int8`, its load check included). The queries are
the benchmark's query set (`benchmarks.queries`, seed 42) over the database's catalogue.

- CPU a query: each form embeds every query alone (`encode([q])`, as the API does), in rounds that take the forms
  in a shuffled order and the queries in a shuffled order; `time.process_time` a round over its queries, the
  median of the rounds.
- Quality, against fp32's vectors of the same queries: cosine (min, median); and over every active embedded
  product's stored vector, the exact semantic ranking (dot products, the whole catalogue): overlap@10 with fp32's
  ten, queries with the same ten, with the same first, and the similarity lost (fp32's similarity of fp32's ten
  less that of the form's ten, a result), with the median gap between fp32's 10th and 11th similarity for scale.

Results: benchmarks/results/query-forms-<date>.{json,md} (`-run2`, … when that name is taken).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from benchmarks.output import cpu_model, measured_run, save_and_show
from benchmarks.queries import Query, build_queries, places_from_stores, sample_products
from benchmarks.report import free_stem
from benchmarks.run import code_version, speed_probe_ms
from embeddings.encoder import Encoder, EncoderError, load_encoder
from search_service.engine.vector_view import as_vector
from search_service.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
FORMS = ("fp32", "int8")
BASELINE = "fp32"
TOP = 10
SEED = 42
SAMPLED_PRODUCTS = 2000  # the products the query set takes its words from (as benchmarks.run samples them)
VECTORS_SQL = "SELECT ai_vector FROM product_master WHERE ai_vector IS NOT NULL AND is_active ORDER BY id"


def load_forms(settings: Settings) -> tuple[dict[str, Encoder], dict[str, Any]]:
    """Both forms as the API's query encoder is configured (onnx, one thread, no arena), and how each loaded."""
    base = replace(settings.query_encoder_config(), backend="onnx", threads=1, memory_arena=False, query_int8=False)
    configs = {"fp32": base, "int8": replace(base, query_int8=True)}
    encoders: dict[str, Encoder] = {}
    loads: dict[str, Any] = {}
    for form, config in configs.items():
        started, cpu = time.perf_counter(), time.process_time()
        encoders[form] = load_encoder(config)
        loads[form] = {
            "load_s": round(time.perf_counter() - started, 2),
            "load_cpu_s": round(time.process_time() - cpu, 2),
            "model_id": encoders[form].model_id,
            "load_check_cosine": encoders[form].checked_cosine,
        }
    return encoders, loads


def catalogue(url: str, n_queries: int, seed: int) -> tuple[np.ndarray, list[Query]]:
    """Every active product's stored vector (in id order) and the benchmark's query set over this catalogue."""
    with psycopg.connect(url) as conn:
        register_vector(conn)
        products = sample_products(conn, SAMPLED_PRODUCTS, seed)
        places = places_from_stores(conn, seed)
        with conn.cursor(binary=True) as cur:
            cur.execute(VECTORS_SQL)
            vectors = [as_vector(row[0]) for row in cur]
    if not vectors or not places:
        raise SystemExit(f"error: {url} has no active embedded product or no active store: seed the catalogue first")
    return np.stack(vectors), build_queries(products, places, n_queries, seed=seed)


def cpu_rounds(encoders: dict[str, Encoder], texts: Sequence[str], rounds: int, seed: int) -> dict[str, list[float]]:
    """CPU ms a query of each form, a figure a round: forms and queries shuffled each round, every query alone."""
    rng = random.Random(seed)
    for encoder in encoders.values():  # warm-up: first-call allocations stay out of the timing
        for text in texts[:8]:
            encoder.encode([text])
    per_round: dict[str, list[float]] = {form: [] for form in encoders}
    for _ in range(rounds):
        order, batch = list(encoders), list(texts)
        rng.shuffle(order)
        rng.shuffle(batch)
        for form in order:
            encoder = encoders[form]
            started = time.process_time()
            for text in batch:
                encoder.encode([text])
            per_round[form].append((time.process_time() - started) * 1000 / len(batch))
    return per_round


def embed_alone(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    return np.vstack([encoder.encode([text]) for text in texts]).astype(np.float32)


def top_ranked(queries: np.ndarray, products: np.ndarray, depth: int, chunk: int = 64) -> np.ndarray:
    """Each query's `depth` products of highest similarity, highest first (ties by row), the whole catalogue."""
    depth = min(depth, len(products))
    out = np.empty((len(queries), depth), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ products.T
        part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        for i, rows in enumerate(part):
            order = np.lexsort((rows, -scores[i, rows]))
            out[start + i] = rows[order]
    return out


def similarities(queries: np.ndarray, products: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """queries[i] · products[rows[i, j]]."""
    return np.einsum("qd,qkd->qk", queries, products[rows])


def agreement(
    form_top: np.ndarray, ref_top: np.ndarray, ref_vectors: np.ndarray, products: np.ndarray
) -> dict[str, Any]:
    """How a form's first ten agree with fp32's: overlap, same ten, same first, similarity lost (fp32's scores)."""
    overlaps = [len(set(a) & set(b)) / len(b) for a, b in zip(form_top, ref_top, strict=True)]
    best = similarities(ref_vectors, products, ref_top).sum(axis=1)
    lost = best - similarities(ref_vectors, products, form_top).sum(axis=1)
    return {
        "overlap_at_10": round(float(np.mean(overlaps)), 4),
        "same_ten": int(sum(set(a) == set(b) for a, b in zip(form_top, ref_top, strict=True))),
        "same_first": int(np.sum(form_top[:, 0] == ref_top[:, 0])),
        "similarity_loss": round(float(np.mean(lost)) / ref_top.shape[1], 6),
        "overlaps": overlaps,
    }


def by_kind(queries: Sequence[Query], overlaps: Sequence[float]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, list[float]] = {}
    for query, overlap in zip(queries, overlaps, strict=True):
        kinds.setdefault(query.kind, []).append(overlap)
    return {
        kind: {"queries": len(v), "overlap_at_10": round(float(np.mean(v)), 4), "same_ten": sum(o == 1.0 for o in v)}
        for kind, v in sorted(kinds.items())
    }


def quality(
    vectors: dict[str, np.ndarray], products: np.ndarray, queries: Sequence[Query]
) -> tuple[dict[str, dict[str, Any]], float]:
    """Per form: cosine to fp32 and agreement of the exact top ten; and fp32's median 10th-11th similarity gap."""
    ref = vectors[BASELINE]
    ref_deep = top_ranked(ref, products, TOP + 1)
    ref_top = ref_deep[:, :TOP]
    gaps = similarities(ref, products, ref_deep)
    gap = float(np.median(gaps[:, TOP - 1] - gaps[:, TOP])) if ref_deep.shape[1] > TOP else float("nan")
    out: dict[str, dict[str, Any]] = {}
    for form, v in vectors.items():
        cosines = np.sum(v * ref, axis=1)
        agree = agreement(top_ranked(v, products, TOP), ref_top, ref, products)  # fp32 too: ranked again
        out[form] = {
            "cosine_min": round(float(cosines.min()), 5),
            "cosine_median": round(float(np.median(cosines)), 5),
            **{k: val for k, val in agree.items() if k != "overlaps"},
            "by_kind": by_kind(queries, agree["overlaps"]),
        }
    return out, round(gap, 5)


def machine_state() -> dict[str, Any]:
    import onnxruntime

    return {"cpu_model": cpu_model(), "onnxruntime": onnxruntime.__version__, "speed_probe_ms_start": speed_probe_ms()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    state = machine_state()
    encoders, loads = load_forms(Settings.from_env())
    started = time.perf_counter()
    products, queries = catalogue(args.database_url, args.queries, args.seed)
    read_s = time.perf_counter() - started
    texts = [q.text for q in queries]
    print(f"[query-forms] {len(products):,} product vectors read in {read_s:.1f} s, {len(texts)} queries", flush=True)
    vectors = {form: embed_alone(encoder, texts) for form, encoder in encoders.items()}
    per_round = cpu_rounds(encoders, texts, args.rounds, args.seed)
    forms, gap = quality(vectors, products, queries)
    base_cpu = statistics.median(per_round[BASELINE])
    for form, rounds in per_round.items():
        cpu = statistics.median(rounds)
        forms[form] = {"cpu_ms_per_query": round(cpu, 3), "cpu_vs_fp32": round(cpu / base_cpu, 3), **forms[form]}
        forms[form].update(cpu_rounds_ms=[round(r, 3) for r in rounds], **loads[form])
    state["speed_probe_ms_end"] = speed_probe_ms()
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "database": args.database_url.rsplit("/", 1)[-1],
        "products": len(products),
        "queries": len(queries),
        "seed": args.seed,
        "rounds": args.rounds,
        "query_kinds": {k: sum(q.kind == k for q in queries) for k in sorted({q.kind for q in queries})},
        "fp32_gap_10th_11th_median": gap,
        "forms": forms,
        "environment": {**state, **code_version()},
    }


def markdown(result: dict[str, Any]) -> str:
    env, forms = result["environment"], result["forms"]
    lines = [
        f"# Query forms: int8 against fp32, {result['date']}",
        "",
        f"- `{result['database']}`: {result['products']:,} active embedded products; {result['queries']} queries"
        f" (benchmarks.queries, seed {result['seed']}); CPU a query: median of {result['rounds']} shuffled rounds.",
        f"- Machine: {result['machine']['cores']} × {env['cpu_model']}, ONNX Runtime {env['onnxruntime']}; load"
        f" {result['load_before']} before, {result['load_after']} after; speed probe {env['speed_probe_ms_start']}"
        f" ms at start, {env['speed_probe_ms_end']} ms at end; code {env['git_head']}.",
        f"- fp32's median gap between its 10th and 11th similarity: {result['fp32_gap_10th_11th_median']}.",
        "",
        "| form | CPU ms a query | × fp32 | cosine min / median | overlap@10 | same ten | same first |"
        " similarity loss | load s (CPU) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    n = result["queries"]
    for form, f in forms.items():
        lines.append(
            f"| {form} | {f['cpu_ms_per_query']:.3f} | {f['cpu_vs_fp32']:.2f} | {f['cosine_min']:.5f} /"
            f" {f['cosine_median']:.5f} | {f['overlap_at_10']:.3f} | {f['same_ten']}/{n} | {f['same_first']}/{n} |"
            f" {f['similarity_loss']:.5f} | {f['load_s']} ({f['load_cpu_s']}) |"
        )
    lines += ["", "The int8 form's overlap@10 by query kind:", "", "| kind | queries | overlap@10 | same ten |"]
    lines.append("|---|---:|---:|---:|")
    for kind, k in forms["int8"]["by_kind"].items():
        lines.append(f"| {kind} | {k['queries']} | {k['overlap_at_10']:.3f} | {k['same_ten']} |")
    check = forms["int8"]["load_check_cosine"]
    lines += ["", f"The int8 form's load check (embeddings/query_check.py) measured cosine {check:.5f}."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="a loaded catalogue (default: DATABASE_URL's)")
    parser.add_argument("--queries", type=int, default=400, help="queries of the benchmark's set")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (the median is reported)")
    parser.add_argument("--seed", type=int, default=SEED, help="the query set's seed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="", help="result file stem (default query-forms-<date>)")
    args = parser.parse_args(argv)
    if args.queries < 1 or args.rounds < 1:
        parser.error("--queries and --rounds must be at least 1")
    args.database_url = args.database_url or Settings.from_env().database_url
    try:
        result = measured_run("query_forms", lambda: measure(args))
    except EncoderError as exc:  # the int8 form refused on this CPU, or no model: the message says what to do
        raise SystemExit(f"error: {exc}") from None
    except psycopg.OperationalError as exc:
        raise SystemExit(f"error: cannot read the catalogue at --database-url {args.database_url}: {exc}") from None
    stem = args.name or free_stem(args.out, f"query-forms-{result['date']}").name
    save_and_show(result, markdown(result), args.out, stem)
    return result


if __name__ == "__main__":
    main()
