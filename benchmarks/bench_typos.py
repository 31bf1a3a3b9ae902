"""Typo tolerance of the keyword side: catalogue names with keyboard slips, against the words as typed.

For `n` product names (a seeded sample) the query is the name with one or two slips (`queries.typo`, the same
generator as the query set's typo kind). A query succeeds when a product of exactly that name is among the first
10 (and 30) results of the engine, globally, in keyword and in hybrid mode. The baseline, in the same run, is the
same engine with `typo_tolerance` off: the keyword side then matches the words as typed only. The engine is set up
as an API worker runs it (api_engine.py: the keyword side on its connection of generic plans).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks import queries as qmod
from benchmarks.api_engine import ApiEngine, open_api_engine
from search_service.engine.search import Mode, SearchParams
from search_service.settings import Settings

SAMPLE_SQL = """
SELECT p.name FROM product_master p
WHERE p.is_active AND p.ai_vector IS NOT NULL
  AND EXISTS (SELECT 1 FROM store_product sp WHERE sp.product_master_id = p.id AND sp.is_active AND sp.quantity > 0)
ORDER BY md5(p.id::text || $1::text)
LIMIT $2
"""
MODES: tuple[Mode, ...] = ("keyword", "hybrid")
DEPTH = 30


def slipped_names(names: list[str], seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(name, qmod.typo(name, rng, edits=1 if len(name) < 12 else 2)) for name in names]


async def _measure(url: str, settings: Settings, n: int, seed: int) -> dict[str, Any]:
    from embeddings.encoder import load_encoder

    api, _ = await open_api_engine(url, settings)  # as an API worker runs it: the keyword side on generic plans
    try:
        names = [r["name"] for r in await api.conn.fetch(SAMPLE_SQL, str(seed), n)]
        pairs = slipped_names(names, seed)
        vectors = load_encoder(settings.encoder).encode([typed for _, typed in pairs])
        engines: dict[str, ApiEngine] = {
            "typo_tolerance": api,
            "words_as_typed": replace(api, config=replace(api.config, typo_tolerance=False)),
        }
        out: dict[str, Any] = {"names": len(pairs), "examples": [list(p) for p in pairs[:5]]}
        for label, engine in engines.items():
            for mode in MODES:
                found10 = found30 = 0
                times: list[float] = []
                for (name, typed), vector in zip(pairs, vectors, strict=True):
                    params = SearchParams(q=typed, limit=DEPTH, mode=mode)
                    t0 = time.perf_counter()
                    result = await engine.search(params, vector)
                    times.append((time.perf_counter() - t0) * 1000)
                    ranked = [h.product.name.lower() for h in result.results]
                    found10 += name.lower() in ranked[:10]
                    found30 += name.lower() in ranked
                out[f"{label}/{mode}"] = {
                    "found_at_10": found10 / max(len(pairs), 1),
                    "found_at_30": found30 / max(len(pairs), 1),
                    "latency_ms_p50": float(np.median(times)) if times else None,
                    "latency_ms_p95": float(np.percentile(times, 95)) if times else None,
                }
        return out
    finally:
        await api.close()


def measure(url: str, settings: Settings, n: int = 300, seed: int = 11) -> dict[str, Any]:
    """Found@10 / found@30 and engine latency for `n` slipped names, with and without typo tolerance."""
    return asyncio.run(_measure(url, settings, n, seed))


def report_lines(typos: dict[str, Any] | None) -> list[str]:
    if not typos:
        return []
    lines = [
        "",
        "## Typo tolerance (keyword side)",
        "",
        f"{typos['names']} catalogue names, each with one or two keyboard slips (e.g. "
        + "; ".join(f"{a!r} → {b!r}" for a, b in typos["examples"][:2])
        + "), searched globally; found: a product of exactly that name among the first 10 / 30. Baseline: the "
        "same engine with typo tolerance off (the words as typed), in the same run.",
        "",
        "| mode | typo tolerance found@10 / @30 | p50 / p95 ms | words as typed found@10 / @30 | p50 / p95 ms |",
        "|---|---|---|---|---|",
    ]
    for mode in MODES:
        on, off = typos.get(f"typo_tolerance/{mode}", {}), typos.get(f"words_as_typed/{mode}", {})
        lines.append(f"| {mode} | {_found(on)} | {_lat(on)} | {_found(off)} | {_lat(off)} |")
    return lines


def _found(entry: dict[str, Any]) -> str:
    if not entry:
        return "–"
    return f"{entry['found_at_10']:.3f} / {entry['found_at_30']:.3f}"


def _lat(entry: dict[str, Any]) -> str:
    if not entry or entry.get("latency_ms_p50") is None:
        return "–"
    return f"{entry['latency_ms_p50']:.1f} / {entry['latency_ms_p95']:.1f}"
