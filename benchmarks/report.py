"""Writing a benchmark run: JSON (every figure), Markdown summary with pass/fail per target, PNG plots.

`write(result, out_dir)` → {"json": …, "markdown": …, "latest": …, "latency_plot": …, "recall_plot": …}.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import bench_typos

# Targets of the issue (small scale, a 2-core machine).
RECALL_TARGET = 0.99
SHORT_RATE_TARGET = 0.0
E2E_P95_MS_TARGET = 30.0
QPS_C8_TARGET = 100.0
LOAD_ROWS_PER_S_TARGET = 50_000.0
NAIVE_SHOWN_AT = ("0.5 km", "2 km")


def _get(d: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value:.1f}"


def _f3(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _f4(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}"


def _mib(value: Any) -> str:
    return "–" if value is None else f"{value / 2**20:,.0f} MiB"


def _strategies(d: dict[str, int] | None) -> str:
    if not d:
        return "–"
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))


# --------------------------------------------------------------------------------------------------------
# Targets


def evaluate_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what it asks, the measured value, passed (True/False/None when not measured)."""
    rows: list[dict[str, Any]] = []
    sql = result.get("sql", {})
    http = _get(result, "http", "radii", default={}) or {}

    def add(name: str, target: str, value: str, passed: bool | None, detail: str = "") -> None:
        rows.append({"target": name, "wants": target, "value": value, "passed": passed, "detail": detail})

    for lab, entry in sql.items():
        rec = _get(entry, "engine_semantic", "recall_at_k")
        http_rec = _get(http, lab, "semantic", "recall_at_k")
        worst = min(v for v in (rec, http_rec) if v is not None) if (rec is not None or http_rec is not None) else None
        add(
            f"recall@10 {lab}",
            f"≥ {RECALL_TARGET}",
            f"SQL {_f3(rec)}, HTTP {_f3(http_rec)}",
            None if worst is None else worst >= RECALL_TARGET,
        )
    shorts = {lab: _get(e, "engine_semantic", "short_rate") for lab, e in sql.items()}
    shorts.update({f"{lab} http": _get(e, "semantic", "short_rate") for lab, e in http.items()})
    measured = {k: v for k, v in shorts.items() if v is not None}
    bad = {k: v for k, v in measured.items() if v > SHORT_RATE_TARGET}
    add(
        "short-result rate (all radii)",
        "0",
        "0" if measured and not bad else ", ".join(f"{k}: {v:.3f}" for k, v in bad.items()) or "–",
        None if not measured else not bad,
    )
    for mode in ("semantic", "hybrid"):
        p95s = {lab: _get(e, mode, "latency_ms", "p95") for lab, e in http.items()}
        p95s = {k: v for k, v in p95s.items() if v is not None}
        if p95s:
            worst_lab = max(p95s, key=lambda k: p95s[k])
            over = [f"{k} {v:.1f}" for k, v in p95s.items() if v > E2E_P95_MS_TARGET]
            add(
                f"end-to-end p95, concurrency 1 ({mode})",
                f"≤ {E2E_P95_MS_TARGET:g} ms at every radius",
                f"worst {p95s[worst_lab]:.1f} ms ({worst_lab})",
                not over,
                "over: " + ", ".join(over) if over else "",
            )
        else:
            add(f"end-to-end p95, concurrency 1 ({mode})", f"≤ {E2E_P95_MS_TARGET:g} ms", "not measured", None)
    qps8 = {lab: _get(e, "qps", "8", "qps") for lab, e in http.items()}
    qps8 = {k: v for k, v in qps8.items() if v is not None}
    if qps8:
        worst_lab = min(qps8, key=lambda k: qps8[k])
        under = [f"{k} {v:.0f}" for k, v in qps8.items() if v < QPS_C8_TARGET]
        mode = _get(result, "http", "qps_mode", default="?")
        cached = {lab: _get(e, "qps_cached", "8", "qps") for lab, e in http.items()}
        cached = {k: v for k, v in cached.items() if v is not None}
        detail = "under: " + ", ".join(under) if under else ""
        if cached:
            low = min(cached, key=lambda k: cached[k])
            detail += f"{'; ' if detail else ''}with a warm query-embedding cache: lowest {cached[low]:.0f} ({low})"
        add(
            f"QPS at concurrency 8 ({mode}, every request embeds)",
            f"≥ {QPS_C8_TARGET:g} at every radius",
            f"lowest {qps8[worst_lab]:.0f} ({worst_lab})",
            not under,
            detail,
        )
    else:
        add("QPS at concurrency 8", f"≥ {QPS_C8_TARGET:g}", "not measured", None)
    other = {lab: _get(e, "qps_other_mode", "8") for lab, e in http.items()}
    other = {k: v for k, v in other.items() if v is not None}
    if other:
        worst_lab = min(other, key=lambda k: other[k]["qps"])
        under = [f"{k} {v['qps']:.0f}" for k, v in other.items() if v["qps"] < QPS_C8_TARGET]
        add(
            f"QPS at concurrency 8 ({other[worst_lab].get('mode', '?')}, every request embeds)",
            f"≥ {QPS_C8_TARGET:g} at every radius",
            f"lowest {other[worst_lab]['qps']:.0f} ({worst_lab})",
            not under,
            "under: " + ", ".join(under) if under else "",
        )
    naive_vals = [f"{lab}: {_f3(_get(sql, lab, 'naive', 'recall_at_k'))}" for lab in NAIVE_SHOWN_AT if lab in sql]
    shown = all(_get(sql, lab, "naive", "recall_at_k") is not None for lab in NAIVE_SHOWN_AT if lab in sql)
    add("naive plan recall shown at 0.5 and 2 km", "shown", "; ".join(naive_vals) or "–", bool(naive_vals) and shown)
    rate = _get(result, "load", "rows_per_s")
    add(
        "loading rate",
        f"≥ {LOAD_ROWS_PER_S_TARGET:,.0f} rows/s",
        "–" if rate is None else f"{rate:,.0f} rows/s",
        None if rate is None else rate >= LOAD_ROWS_PER_S_TARGET,
        _get(result, "load", "rows_per_s_source", default=""),
    )
    return rows


# --------------------------------------------------------------------------------------------------------
# Markdown


def _verdict(passed: bool | None) -> str:
    return "PASS" if passed is True else "FAIL" if passed is False else "n/a"


def markdown(result: dict[str, Any], plots: dict[str, Path]) -> str:
    m = result.get("machine", {})
    load = result.get("load", {})
    c = load.get("counts", {})
    params = result.get("parameters", {})
    lines = [
        f"# Plinqy Search benchmark — {result['scale']} scale, {result['started_at'][:10]}",
        "",
        f"- Machine: {m.get('cpu_count')} × {m.get('cpu_model')}, {_mib(m.get('ram_bytes'))} RAM; load average at "
        f"start {', '.join(f'{x:.2f}' for x in m.get('load_average_start', []))}, at end "
        f"{', '.join(f'{x:.2f}' for x in m.get('load_average_end', []))} (shared machine: medians and ratios "
        f"matter more than absolute values).{_machine_state(result)}",
        f"- PostgreSQL {m.get('postgresql')}, pgvector {m.get('pgvector')}, PostGIS {m.get('postgis')}, "
        f"Python {_get(m, 'versions', 'python')}, onnxruntime {_get(m, 'versions', 'onnxruntime')}, "
        f"torch {_get(m, 'versions', 'torch')}.",
        f"- Data ({load.get('generator')}{', reused' if load.get('reused') else ''}): "
        f"{c.get('product_master', 0):,} products ({c.get('embedded_products', 0):,} embedded), "
        f"{c.get('store', 0):,} stores, {c.get('store_product', 0):,} listings, {c.get('category', 0):,} categories; "
        f"loaded in {load.get('seconds', 0):.1f} s ({load.get('rows_per_s', 0):,.0f} rows/s, "
        f"{load.get('rows_per_s_source', '')}).",
        f"- Queries: {params.get('queries')} ({_kinds(_get(result, 'query_set', 'kinds', default={}))}) at "
        f"{_kinds(_get(result, 'query_set', 'place_kinds', default={}))} places "
        f"({_get(result, 'query_set', 'places_source')}); recall@{params.get('k')} against exact filtered ground "
        f"truth (numpy brute force; stores in radius from PostGIS); page size {params.get('limit')}.",
        f"- Code: `{_get(result, 'code', 'git_head')}`"
        + (" (engine files modified in the working tree)" if _get(result, "code", "engine_dirty") else "")
        + (
            ". **Warning: the engine's code changed during this run** — the SQL-only and HTTP figures may "
            "come from different versions."
            if _get(result, "code", "engine_changed_during_run")
            else "."
        ),
        _vector_check(result),
        "",
        "## Targets",
        "",
        "| target | wants | measured | verdict | detail |",
        "|---|---|---|---|---|",
    ]
    for t in evaluate_targets(result):
        lines.append(f"| {t['target']} | {t['wants']} | {t['value']} | **{_verdict(t['passed'])}** | {t['detail']} |")
    lines += _sql_section(result)
    lines += _http_section(result)
    lines += bench_typos.report_lines(result.get("typos"))
    lines += _embedding_section(result)
    lines += _index_section(result)
    lines += _memory_section(result)
    if plots:
        lines += ["", "## Plots", ""]
        for name, path in plots.items():
            lines.append(f"![{name}]({path.name})")
    lines += _sweep_section(result)
    lines += _explain_section(result)
    lines += [
        "",
        "## Phases",
        "",
        ", ".join(f"{k} {v:.0f} s" for k, v in result.get("phases_s", {}).items()),
        "",
        *_phase_cpu_lines(result),
        f"Reproduce: `.venv/bin/python -m benchmarks.run --scale {result['scale']} --seed {params.get('seed')} "
        f"--queries {params.get('queries')}`; every figure is in the JSON next to this file.",
        "",
    ]
    return "\n".join(lines)


def _vector_check(result: dict[str, Any]) -> str:
    check = _get(result, "load", "vector_check")
    if not check or not check.get("sample"):
        return "- Vectors: synthetic (no text to check against)." if _get(result, "load", "generator") else ""
    return (
        f"- Vectors: {check['sample']} stored product vectors re-embedded from their texts: cosine min "
        f"{check['cosine_min']:.4f}, median {check['cosine_median']:.4f} (they belong to their products)."
    )


def _kinds(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))


def _vector_cache_note(result: dict[str, Any]) -> str:
    vc = result.get("vector_cache")
    if not vc:
        return ""
    if vc.get("form"):  # benchmarks/api_engine.py
        return (
            f" (mapping a shared generation of {vc['vectors']:,} vectors as `serve` does, {vc['mib']:.0f} MiB, loaded"
            f" and written in {vc['load_s']:.1f} s; a lone search ranks on {vc['rank_threads']} threads; the stores"
            " in memory; a hybrid search's keyword side on a second connection; the connections carry the engine's"
            " settings)"
        )
    return f" ({vc['vectors']:,} vectors, {vc['mib']:.0f} MiB, loaded in {vc['load_s']:.1f} s)"


def _sql_section(result: dict[str, Any]) -> list[str]:
    sql = result.get("sql", {})
    if not sql:
        return []
    lines = [
        "",
        "## SQL only (the engine called in process, without HTTP), per radius",
        "",
        "Engine = `search()` with the automatic plan choice, set up as an API worker runs it"
        f"{_vector_cache_note(result)}. Naive = one statement `ORDER BY ai_vector <=> $q LIMIT k` "
        "with the radius and stock filter as an `EXISTS` in the WHERE, default `hnsw.ef_search`, "
        "`hnsw.iterative_scan = off`; *planner* is what the planner picks for it, *HNSW forced* the same statement "
        "with `enable_seqscan/enable_sort/enable_bitmapscan = off` (the HNSW index drives the scan).",
        "",
        "*recall (n)*: over the n queries with at least one qualifying product (the others have nothing to find); "
        "*sim. loss*: mean over queries of (Σ true top-10 similarity − Σ returned top-10 similarity) / 10.",
        "",
        "| radius | stores | candidates (median) | engine p50 / p95 / p99 ms | recall@10 | recall (n) | sim. loss "
        "| short | strategies | hybrid p50 / p95 / p99 ms |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for lab, e in sql.items():
        es = e.get("engine_semantic", {})
        eh = e.get("engine_hybrid", {})
        lines.append(
            f"| {lab} | {e.get('stores_median', 0):.0f} | {e.get('candidates_median', 0):,.0f} "
            f"| {_lat(es)} | {_f3(es.get('recall_at_k'))} "
            f"| {_f3(es.get('recall_at_k_with_candidates'))} ({es.get('queries_with_candidates', '–')}) "
            f"| {_f4(es.get('similarity_loss_mean'))} | {_f3(es.get('short_rate'))} "
            f"| {_strategies(es.get('strategies'))} | {_lat(eh)} |"
        )
    by_strategy = [
        (lab, name, v)
        for lab, e in sql.items()
        for name, v in (_get(e, "engine_semantic", "recall_by_strategy", default={}) or {}).items()
        if name != "no_stores"
    ]
    if by_strategy:
        lines += [
            "",
            "Engine recall@10 and latency by the strategy it chose:",
            "",
            "| radius | strategy | queries | recall@10 | p50 / p95 / p99 ms |",
        ]
        lines.append("|---|---|---:|---:|---|")
        for lab, name, v in by_strategy:
            lines.append(f"| {lab} | {name} | {v['queries']} | {_f3(v['recall_at_k'])} | {_lat(v)} |")
    if any("naive" in e for e in sql.values()):
        n_naive = next((e.get("naive_queries") for e in sql.values() if e.get("naive_queries")), None)
        lines += [
            "",
            f"Naive plan over the first {n_naive} queries per radius; *engine recall* and the latency ratios are "
            "the engine's on those same queries.",
            "",
            "| radius | naive (planner) p50 / p95 ms | recall@10 | short | plan uses HNSW | naive (HNSW forced) "
            "p50 / p95 ms | recall@10 | short | engine recall | naive / engine p50 | forced / engine p50 |",
            "|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|",
        ]
        for lab, e in sql.items():
            n = e.get("naive", {})
            f = e.get("naive_forced", {})
            lines.append(
                f"| {lab} | {_lat(n, p99=False)} | {_f3(n.get('recall_at_k'))} | {_f3(n.get('short_rate'))} "
                f"| {_uses(n)} | {_lat(f, p99=False)} | {_f3(f.get('recall_at_k'))} | {_f3(f.get('short_rate'))} "
                f"| {_f3(_get(e, 'engine_on_naive_subset', 'recall_at_k'))} "
                f"| {_ratio(e.get('ratio_naive_over_engine_p50'))} "
                f"| {_ratio(e.get('ratio_naive_forced_over_engine_p50'))} |"
            )
        first = next(iter(sql.values()))
        plan = _get(first, "naive", "plan", "nodes")
        if plan:
            lines += ["", f"Naive plan chosen by the planner at {next(iter(sql))}:", "", "```", *plan, "```"]
    return lines


def _uses(entry: dict[str, Any]) -> str:
    plan = entry.get("plan")
    if not plan:
        return "–"
    if plan.get("uses_hnsw"):
        return "yes"
    top = [n.strip() for n in plan.get("nodes", [])[:3]]
    return "no (" + " → ".join(top) + ")"


def _ratio(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _lat(entry: dict[str, Any], p99: bool = True) -> str:
    lat = entry.get("latency_ms", {})
    if not lat:
        return "–"
    out = f"{_ms(lat.get('p50'))} / {_ms(lat.get('p95'))}"
    return out + f" / {_ms(lat.get('p99'))}" if p99 else out


def _process_lines(processes: list[dict[str, Any]]) -> list[str]:
    """Each API process's memory after the load (the first is serve's own: the supervisor with workers)."""
    if not processes:
        return []
    each = ", ".join(f"{_mib(p.get('pss'))} ({_mib(p.get('rss'))} RSS)" for p in processes)
    total = sum(p.get("pss") or 0 for p in processes)
    return ["", f"API processes after the load, PSS: {each}; all together {_mib(total)} of PSS."]


def _http_section(result: dict[str, Any]) -> list[str]:
    http = result.get("http")
    if not http:
        return []
    radii = http.get("radii", {})
    rss = _get(http, "api_rss_bytes", "vm_hwm")
    cache = http.get("query_cache_size")
    cache_note = "every request runs the model" if not cache else "repeats hit the cache"
    lines = [
        "",
        "## End to end over HTTP (`plinqy-search serve`), per radius",
        "",
        f"Latency at concurrency 1 includes embedding the query (API query cache size "
        f"{cache}: {cache_note}). "
        f"QPS: {http.get('qps_mode')} mode, N concurrent loops for {_get(result, 'parameters', 'qps_seconds')} s each "
        f"(client and server share the machine; aiohttp loops, httpx at concurrency 1); API worker processes: "
        f"{http.get('api_workers', 1)}. API ready after {http.get('ready_after_s')} s"
        + (
            f", measured once every worker had built its suggestion index ({http['warm_after_s']} s later)"
            if http.get("warm_after_s") is not None
            else ""
        )
        + "; peak RSS (VmHWM) "
        f"{_mib(rss)}{' per worker' if http.get('api_workers', 1) > 1 else ''}"
        + (
            f"; in-memory vector copy allowed up to {http['api_vector_cache_max']:,} vectors (PLINQY_VECTOR_CACHE_MAX)."
            if http.get("api_vector_cache_max")
            else "."
        ),
        *_process_lines(http.get("api_processes") or []),
        "",
        f"*QPS c=8* and *QPS c=8 other mode*: the median of {http.get('qps_c8_windows', 1)} window(s), the two "
        "modes interleaved (lowest–highest window in brackets). "
        "*QPS c=8 cached*: the same load against a second API process with the query-embedding cache on and warm "
        "(the loops repeat the query set), i.e. without the model's cost per request. *QPS c=8 other mode*: "
        f"the same load in {'semantic' if http.get('qps_mode') == 'hybrid' else 'hybrid'} mode.",
        "",
        "| radius | semantic p50 / p95 / p99 ms | recall@10 | short | hybrid p50 / p95 / p99 ms | QPS c=1 | QPS c=8 "
        "| QPS c=32 | c=32 p95 ms | QPS c=8 cached | QPS c=8 other mode | errors |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for lab, e in radii.items():
        q = e.get("qps", {})
        errors: dict[str, int] = {}
        for part in (e.get("semantic", {}), e.get("hybrid", {}), *q.values(), *e.get("qps_other_mode", {}).values()):
            for k, v in (part.get("errors") or {}).items():
                errors[str(k)] = errors.get(str(k), 0) + int(v)
        lines.append(
            f"| {lab} | {_lat(e.get('semantic', {}))} | {_f3(_get(e, 'semantic', 'recall_at_k'))} "
            f"| {_f3(_get(e, 'semantic', 'short_rate'))} | {_lat(e.get('hybrid', {}))} "
            f"| {_qps(q, '1')} | {_qps(q, '8')} | {_qps(q, '32')} | {_ms(_get(q, '32', 'latency_ms', 'p95'))} "
            f"| {_qps(e.get('qps_cached', {}), '8')} | {_qps(e.get('qps_other_mode', {}), '8')} "
            f"| {', '.join(f'{k}: {v}' for k, v in errors.items()) or '0'} |"
        )
    return lines + _cpu_lines(http)


def _cpu_lines(http: dict[str, Any]) -> list[str]:
    """CPU per request of the median c=8 window, per process group: what bounds the rate on shared cores."""
    radii = http.get("radii", {})
    modes = [(lab, e, key) for lab, e in radii.items() for key in ("qps", "qps_other_mode")]
    if not any(_get(e, key, "8", "cpu_ms_per_request") for _, e, key in modes):
        return []
    measured = http.get("cpu_measured", {})
    lines = [
        "",
        "CPU per request in the median c=8 window (ms, from /proc: the API's process tree, the PostgreSQL server's, "
        "the load generator), and *busy*: the share of the machine's CPUs the three used together. The same code "
        "costs more CPU per request when the machine runs slower, so these say whether a lower rate came from more "
        "work or from a slower machine."
        + ("" if measured.get("database", True) else " PostgreSQL runs elsewhere: its CPU is not measured."),
        "",
        "| radius | mode | QPS c=8 | API | PostgreSQL | client | busy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for lab, e, key in modes:
        c8 = _get(e, key, "8") or {}
        cpu = c8.get("cpu_ms_per_request") or {}
        lines.append(
            f"| {lab} | {c8.get('mode', '?')} | {_qps(e.get(key, {}), '8')} | {_num(cpu.get('api'))} "
            f"| {_num(cpu.get('database'))} | {_num(cpu.get('client'))} | {_num(cpu.get('busy'), 2)} |"
        )
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _qps(q: dict[str, Any], conc: str) -> str:
    """The rate; with several windows, their median and, in brackets, the lowest and highest."""
    value = _get(q, conc, "qps")
    if value is None:
        return "–"
    windows = _get(q, conc, "windows_qps") or []
    spread = f" ({min(windows):.0f}–{max(windows):.0f})" if len(windows) > 1 else ""
    return f"{value:.0f}{spread}"


def _embedding_section(result: dict[str, Any]) -> list[str]:
    emb = result.get("embedding")
    if not emb:
        return []
    lines = ["", "## Embedding", ""]
    enc = emb.get("encoders", {})
    backends = enc.get("backends")
    if backends:
        lines += [
            f"Encoder rates on {enc.get('texts')} product texts ({enc.get('text_source')}), median of "
            f"{enc.get('runs', 2)} passes, each backend in its own process:",
            "",
            "| backend | texts/s | × torch | cosine to torch (mean / min) | load s | peak RSS |",
            "|---|---:|---:|---|---:|---:|",
        ]
        for name, r in backends.items():
            lines.append(
                f"| {name} | {r.get('texts_per_s', 0):,.0f} | {r.get('speedup', 0):.2f} "
                f"| {r.get('cosine_mean', 0):.4f} / {r.get('cosine_min', 0):.4f} | {r.get('load_s', 0)} "
                f"| {r.get('peak_rss_mib', 0):,.0f} MiB |"
            )
    else:
        lines.append(f"Encoder rates: {enc.get('skipped') or enc.get('error') or 'not measured'}")
    wp = emb.get("worker_process", {})
    if wp.get("embedded") is not None:
        lines += [
            "",
            f"Worker process (`plinqy-search worker --drain`, {wp['products']} queued catalogue products): "
            f"{wp['embedded']} embedded in {wp['wall_s']:.1f} s wall, model load included "
            f"({wp.get('products_per_s_wall') or 0:,.1f} products/s); steady "
            f"{wp.get('products_per_s_steady') or 0:,.1f} products/s; peak RSS {_mib(wp.get('peak_rss_bytes'))}.",
        ]
    elif wp:
        lines += ["", "Worker process: " + _kv(wp)]
    worker = {k: v for k, v in emb.get("worker", {}).items() if k != "worker_peak_rss_mb"}
    lines += ["", "Worker vs raw encoder (`benchmarks.bench_worker`, short synthetic texts): " + _kv(worker)]
    lines += ["", "Re-embedding (`embeddings.reembed`): " + _kv(emb.get("reembed", {}))]
    return lines


def _kv(d: dict[str, Any]) -> str:
    if not d:
        return "not measured"
    parts = []
    for k, v in d.items():
        if isinstance(v, float):
            parts.append(f"{k} {v:,.1f}")
        elif isinstance(v, dict):
            parts.append(f"{k} {json.dumps(v, default=str)}")
        else:
            parts.append(f"{k} {v}")
    return "; ".join(parts)


def _memory_section(result: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    api = _get(result, "http", "api_rss_bytes", "vm_hwm")
    if api:
        workers = _get(result, "http", "api_workers", default=1)
        who = "1 process" if workers == 1 else f"largest of {workers} worker processes"
        rows.append(f"| API (`plinqy-search serve`, {who}, model loaded) | {_mib(api)} | /proc VmHWM after the run |")
    worker = _get(result, "embedding", "worker_process", "peak_rss_bytes")
    if worker:
        rows.append(f"| embedding worker (`plinqy-search worker --drain`) | {_mib(worker)} | /proc VmHWM, polled |")
    harness = _get(result, "embedding", "harness_rss_bytes_before", "vm_hwm") or 0
    for name, r in (_get(result, "embedding", "encoders", "backends", default={}) or {}).items():
        if r.get("peak_rss_mib"):
            caveat = (
                " (not above the parent's high-water mark: an upper bound)"
                if (r["peak_rss_mib"] * 2**20 <= harness * 1.02)
                else ""
            )
            rows.append(
                f"| encoder alone, {name} | {r['peak_rss_mib']:,.0f} MiB | ru_maxrss of its spawned process{caveat} |"
            )
    if not rows:
        return []
    return ["", "## Peak RSS", "", "| process | peak RSS | source |", "|---|---:|---|", *rows]


def _machine_state(result: dict[str, Any]) -> str:
    """How fast the shared machine was during the run: the speed probe at start and end, and the CPU time the
    hypervisor stole during the timed phases (runs before small-2026-12-02-run7 have neither)."""
    m = result.get("machine", {})
    parts = []
    start, end = m.get("speed_probe_ms_start"), m.get("speed_probe_ms_end")
    if start is not None and end is not None:
        parts.append(
            f"speed probe (a fixed 3M-iteration Python loop, best of 5) {start:.0f} ms at start, {end:.0f} ms at end"
        )
    cpu = result.get("phases_cpu", {})
    timed = [(name, cpu[name]) for name in ("sql benchmark", "http benchmark") if name in cpu]
    if timed:
        parts.append(
            "CPU time stolen by the hypervisor / waiting for disk: "
            + "; ".join(
                f"{name} {100 * c.get('steal', 0):.1f} % / {100 * c.get('iowait', 0):.1f} %" for name, c in timed
            )
        )
    if not parts:
        return ""
    text = "; ".join(parts)
    return f" {text[0].upper()}{text[1:]}."


def _phase_cpu_lines(result: dict[str, Any]) -> list[str]:
    cpu = result.get("phases_cpu", {})
    if not cpu:
        return []
    return [
        "The machine's CPU time per phase (all CPUs, /proc/stat): "
        + "; ".join(
            f"{name}: busy {100 * (1 - c.get('idle', 0) - c.get('iowait', 0)):.0f} %, "
            f"stolen {100 * c.get('steal', 0):.1f} %"
            for name, c in cpu.items()
        )
        + ".",
        "",
    ]


def _index_section(result: dict[str, Any]) -> list[str]:
    build = result.get("hnsw_build")
    sizes = result.get("sizes", {})
    lines = ["", "## Index build and sizes", ""]
    if build:
        lines.append(
            f"HNSW `REINDEX INDEX {build['index']}`: **{build['seconds']:.1f} s** (maintenance_work_mem "
            f"{build['maintenance_work_mem']}, {build['max_parallel_maintenance_workers']} parallel workers)."
        )
    tables = sizes.get("tables", {})
    if tables:
        lines += ["", "| table | heap | indexes | total |", "|---|---:|---:|---:|"]
        for name, t in tables.items():
            lines.append(
                f"| {name} | {_mib(t['table_bytes'])} | {_mib(t['indexes_bytes'])} | {_mib(t['total_bytes'])} |"
            )
    indexes = sizes.get("indexes", {})
    if indexes:
        top = list(indexes.items())[:8]
        lines += ["", "Largest indexes: " + ", ".join(f"`{k}` {_mib(v)}" for k, v in top) + "."]
    return lines


def _sweep_section(result: dict[str, Any]) -> list[str]:
    rows = result.get("engine_sweep")
    if not rows:
        return []
    lines = [
        "",
        "## Engine knobs (`--sweep`, SQL only, semantic)",
        "",
        "| radius | EngineConfig | p50 / p95 ms | recall@10 | sim. loss | strategies |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        knobs = ", ".join(f"{k}={v}" for k, v in r["config"].items())
        lines.append(
            f"| {r['radius']} | {knobs} | {_lat(r, p99=False)} | {_f3(r.get('recall_at_k'))} "
            f"| {_f4(r.get('similarity_loss_mean'))} | {_strategies(r.get('strategies'))} |"
        )
    return lines


def _explain_section(result: dict[str, Any]) -> list[str]:
    sql = result.get("sql", {})
    if not sql:
        return []
    lines: list[str] = []
    worst_lab = max(sql, key=lambda k: _get(sql[k], "slowest_engine_query", "ms", default=0.0) or 0.0)
    slow = sql[worst_lab].get("slowest_engine_query", {})
    if slow:
        lines += _explain_block(f"Slowest engine query (SQL only): {worst_lab}, {slow.get('ms', 0):.1f} ms", slow)
    misses = {k: e["worst_recall_engine_query"] for k, e in sql.items() if e.get("worst_recall_engine_query")}
    if misses:
        lab = min(misses, key=lambda k: (misses[k]["recall"], -misses[k]["similarity_loss"]))
        bad = misses[lab]
        lines += _explain_block(
            f"Worst-recall engine query: {lab}, recall@10 {bad['recall']:.2f}, "
            f"similarity loss {bad['similarity_loss']:.4f}",
            bad,
        )
    return lines


def _explain_block(title: str, entry: dict[str, Any]) -> list[str]:
    q = entry.get("query", {})
    return [
        "",
        f"## {title}",
        "",
        f"`{q.get('text')}` ({q.get('kind')}) at {_get(q, 'place', 'name')} "
        f"({_get(q, 'place', 'lat', default=0):.5f}, {_get(q, 'place', 'lon', default=0):.5f}). "
        "EXPLAIN (ANALYZE, BUFFERS) of its vector-side statement, re-run (warm):",
        "",
        "<details><summary>plan</summary>",
        "",
        "```",
        entry.get("explain_analyze", ""),
        "```",
        "",
        "</details>",
    ]


# --------------------------------------------------------------------------------------------------------
# Plots


def plots(result: dict[str, Any], stem: Path) -> dict[str, Path]:
    sql = result.get("sql", {})
    if not sql:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(sql)
    x = list(range(len(labels)))
    http = _get(result, "http", "radii", default={}) or {}
    series: list[tuple[str, Sequence[float | None], str]] = [
        ("engine (SQL) p50", [_get(sql[lab], "engine_semantic", "latency_ms", "p50") for lab in labels], "o-"),
        ("engine (SQL) p95", [_get(sql[lab], "engine_semantic", "latency_ms", "p95") for lab in labels], "o--"),
        ("naive planner (SQL) p50", [_get(sql[lab], "naive", "latency_ms", "p50") for lab in labels], "s-"),
        ("naive HNSW forced (SQL) p50", [_get(sql[lab], "naive_forced", "latency_ms", "p50") for lab in labels], "^-"),
        ("HTTP semantic p95", [_get(http, lab, "semantic", "latency_ms", "p95") for lab in labels], "d-"),
        ("HTTP hybrid p95", [_get(http, lab, "hybrid", "latency_ms", "p95") for lab in labels], "d--"),
    ]
    out: dict[str, Path] = {}
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, values, style in series:
        if any(v is not None for v in values):
            ax.plot(x, [float("nan") if v is None else v for v in values], style, label=name)
    ax.axhline(E2E_P95_MS_TARGET, color="grey", linestyle=":", label=f"target e2e p95 {E2E_P95_MS_TARGET:g} ms")
    ax.set_yscale("log")
    ax.set_xticks(x, labels)
    ax.set_xlabel("radius")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title(f"Latency vs radius — {result['scale']} scale")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out["latency_plot"] = stem.with_name(stem.name + "-latency.png")
    fig.savefig(out["latency_plot"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.8))
    rec_series: list[tuple[str, Sequence[float | None], str]] = [
        ("engine (SQL)", [_get(sql[lab], "engine_semantic", "recall_at_k") for lab in labels], "o-"),
        ("engine (HTTP)", [_get(http, lab, "semantic", "recall_at_k") for lab in labels], "d--"),
        ("naive planner", [_get(sql[lab], "naive", "recall_at_k") for lab in labels], "s-"),
        ("naive HNSW forced", [_get(sql[lab], "naive_forced", "recall_at_k") for lab in labels], "^-"),
    ]
    for name, values, style in rec_series:
        if any(v is not None for v in values):
            ax.plot(x, [float("nan") if v is None else v for v in values], style, label=name)
    ax.axhline(RECALL_TARGET, color="grey", linestyle=":", label=f"target {RECALL_TARGET}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(x, labels)
    ax.set_xlabel("radius")
    ax.set_ylabel(f"recall@{_get(result, 'parameters', 'k', default=10)}")
    ax.set_title(f"Recall vs radius — {result['scale']} scale")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out["recall_plot"] = stem.with_name(stem.name + "-recall.png")
    fig.savefig(out["recall_plot"], dpi=110)
    plt.close(fig)
    return out


def free_stem(out_dir: Path, base: str) -> Path:
    """`out_dir/base`, or `base-run2`, `base-run3`, … when a `.json` of that name is there already."""
    stem, n = out_dir / base, 2
    while stem.with_name(stem.name + ".json").exists():
        stem, n = out_dir / f"{base}-run{n}", n + 1
    return stem


def write(result: dict[str, Any], out_dir: Path, tag: str = "") -> dict[str, Path]:
    """The JSON, the Markdown summary and the plots, named `<scale>-<date>[-<tag>]`; a run that would overwrite
    an earlier one's files gets `-run2`, `-run3`, … instead (the day's earlier figures stay)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    date = str(result.get("started_at", "")[:10]) or "undated"
    stem = free_stem(out_dir, f"{result['scale']}-{date}{('-' + tag) if tag else ''}")
    paths: dict[str, Path] = {}
    pngs = plots(result, stem)
    result = {**result, "targets": evaluate_targets(result)}
    paths["json"] = stem.with_name(stem.name + ".json")
    paths["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths["markdown"] = stem.with_name(stem.name + ".md")
    paths["markdown"].write_text(markdown(result, pngs))
    paths["latest"] = out_dir / f"latest-{result['scale']}.md"
    shutil.copyfile(paths["markdown"], paths["latest"])
    paths.update(pngs)
    return paths
