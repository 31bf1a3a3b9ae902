"""The engine's knobs (`EngineConfig`): plan choice, cost model, HNSW and keyword settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ForcedPlan = Literal["auto", "exact", "hnsw", "scan", "gather"]
HNSW_INDEX = "ix_product_master_ai_vector_hnsw"


@dataclass(frozen=True)
class EngineConfig:
    """Knobs of the plan choice. Defaults measured on 100k products / 1k stores / 1M listings (2 cores)."""

    force: ForcedPlan = "auto"  # tests and benchmarks force a plan; production leaves "auto"
    # Without the in-memory copy: always exact up to this many estimated candidate products.
    exact_max_candidates: int = 3000
    # Cost model (µs) comparing the plans above that: exact = per candidate + per listing scanned;
    # HNSW = base (graph descent at ef_search) + per index tuple the iterative scan visits
    # (fetch / selectivity).
    exact_us_per_candidate: float = 10.0
    exact_us_per_listing: float = 0.5
    hnsw_base_us: float = 10000.0
    hnsw_us_per_visit: float = 40.0
    # exact_scan: ranking the in-memory copy, plus a filter statement per slice of ids checked. Measured on
    # the small benchmark (2-core machine): the exact plan 9-12 µs per candidate; the scan ~3 ms per 100k
    # vectors (int8 bounds + float32 re-scoring, thread hand-off included), ~1.2 ms per filter statement and
    # ~12 µs per id checked (200-600 ids at 2 km: a primary-key probe, a listing probe, client encoding).
    # Under a selective filter the scan checks far more ids than the first slice (`fetch`): a query's nearest
    # products are often of a kind the few stores in range do not sell, so the choice prices scan_depth x
    # fetch ids (32 µs per fetched id; at 2 and 5 km, engine p95 25 -> 20 and 23 -> 18 ms against 4 µs on the
    # benchmark's queries, 27 -> 27 and 19 -> 17 ms on a second query set). A scan whose remaining work,
    # predicted from the share of the ids checked so far that passed, would cost more than the gather plan's
    # estimate hands the query to it (``scan_fallback_gather``).
    scan_us_per_vector: float = 0.03
    scan_us_per_round: float = 1200.0
    scan_us_per_probe: float = 12.0
    scan_depth: float = 8.0 / 3.0  # x scan_us_per_probe: 32 µs per fetched id
    # exact_gather: the qualifying listings' product ids, packed in one bytea (~0.2 µs per listing: 5 ms for
    # 26k at 2 km) and mapped to rows of the copy (~0.05 µs: a sort and a searchsorted), ranked there (~0.1 µs
    # per id: the whole copy's int8 ranking, computed meanwhile, restricted to them), plus a filter statement
    # for the best.
    gather_us_per_listing: float = 0.25
    gather_us_per_candidate: float = 0.1
    # A counted scope holding at least this share of the copy's rows is priced for the scan too (planner.py):
    # nearly every id the whole ranking hands out passes, and the gather's rows (a mask of the copy, ~10 ms at
    # 1M) and restricted ranking cost more than the few ids it spares the filter statement.
    scan_min_share: float = 0.5
    # A scope the statistics' estimate puts at this share of the products or more is planned on that estimate,
    # without the candidate sets' union (6,800 stores' sets at 1M products: 30-40 ms); its scan, if it gives up,
    # still gathers on the union's rows.
    count_below_share: float = 0.9
    scan_fallback: bool = True  # tests turn it off to run the scan to its end
    # Real MiniLM vectors of a templated catalogue are full of near-duplicates, which HNSW finds hard: on the
    # small benchmark (100k products), unfiltered recall@10 was 0.88 at ef_search=100, 0.95 at 400 and 1.00 at
    # 800; the engine at 2/5/20 km and globally went from 0.87-0.95 to 1.00 for ~6-10 ms more (2 cores).
    ef_search: int = 800
    # Over-fetch: the iterative scan returns max(top_n * overfetch, top_n * selectivity_overfetch / s,
    # top_n + min_extra) rows, re-sorted by exact distance. Under a filter passing a fraction s of the
    # products, relaxed order needs ~1/s x top_n rows for recall >= 0.99 (measured at s=0.1: 10x → 0.995,
    # 1x → 0.85).
    overfetch: float = 2.0
    selectivity_overfetch: float = 1.5
    min_extra: int = 10
    # Cap of index tuples one HNSW scan may visit; a scan returning fewer rows than asked falls back to exact.
    max_scan_tuples: int = 20000
    scan_mem_multiplier: float = 2.0
    iterative_scan: Literal["relaxed_order", "strict_order"] = "relaxed_order"
    rrf_depth: int = 30  # hybrid: each side contributes at least this many ranked products
    keyword_cap: int = 400  # keyword side: at most this many full-text and this many typo matches
    # The keyword side in scope (keyword.py): at most this many of a word's matches are checked against the
    # candidate sets (~0.9 µs a match at 100k), and at most this many of those in scope ranked (~3.5 µs each)
    keyword_scan_cap: int = 20000
    keyword_rank_cap: int = 2000
    typo_tolerance: bool = True  # off: the keyword side matches the words as typed only (a benchmark baseline)
    trigram_similarity: float = 0.3  # a query word's vocabulary corrections are at least this similar
    statement_timeout_ms: int | None = None  # None: leave it to the caller (the HTTP layer sets it)
    extra_settings: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # The connections already carry `session_settings(config)` (the API's pool sets them at connect): each
    # statement then runs on its own, without a transaction and its SET LOCALs (two round trips per connection
    # and search: mean hybrid search 13.5 -> 12.5 ms at 5 km, 14.4 -> 13.1 at 100 km; semantic -0.5 ms). Every
    # statement is a read, and in READ COMMITTED each takes its own snapshot either way.
    connection_has_settings: bool = False


DEFAULT_CONFIG = EngineConfig()
