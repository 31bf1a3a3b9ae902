"""`explain=true`: what each hit of a page owes its place to (engine/ux.py's answer, per hit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine.fusion import Ranked, windows
from search_service.engine.text import spaced_sizes


@dataclass(frozen=True)
class HitExplain:
    vector_similarity: float | None  # None: not among the vector side's ranked products (or keyword mode)
    keyword_rank: int | None  # 1-based, on the keyword side among the products that pass; None: no match, or past
    # the fusion window that placed the hit (ux_explain._counted)
    keyword_score: float | None
    # "typed->corrected" pairs its name or brand matched, not matching the typed word; only for a typo match
    typo_corrections: list[str]
    exact_match: bool  # exact name, brand or GTIN match


async def explained(
    conn: Any, q: str, kw: Ranked | None, vec: Ranked | None, page: Sequence[UUID], first_window: int
) -> dict[UUID, HitExplain]:
    """Per hit of the page: its place on each side, its typo corrections (only where the keyword side matched it
    by them: none for a match of the words, a prefix or a compound, nor where no keyword side ran), whether it
    matched exactly. Two sides: each as far as the fusion window that placed the hit (`_counted`)."""
    kw, vec = _counted(kw, vec, page, first_window)
    stmt = statement("engine/facets", "explain_typos")
    # the words the keyword side corrected: its sizes spaced (`500g` is `500 g`, not a typo of `500`)
    words = spaced_sizes(q) or q
    typo_matched = [pid for pid in page if kw and _typo_tier(kw, pid)]
    rows = await conn.fetch(stmt.sql, *stmt.bind(q=words, product_ids=typo_matched)) if words and typo_matched else []
    typos = {r["id"]: list(r["applied"]) for r in rows}
    kw_rank = {pid: i for i, pid in enumerate(kw.ids, start=1) if pid in kw.scores} if kw else {}
    out = {}
    for pid in page:
        out[pid] = HitExplain(
            vector_similarity=vec.scores.get(pid) if vec else None,
            keyword_rank=kw_rank.get(pid),
            keyword_score=kw.scores.get(pid) if kw else None,
            typo_corrections=typos.get(pid, []),
            exact_match=bool(kw and pid in kw.exact_ids),
        )
    return out


def _counted(
    kw: Ranked | None, vec: Ranked | None, page: Sequence[UUID], first: int
) -> tuple[Ranked | None, Ranked | None]:
    """Both sides without the page's hits they rank past the fusion window that placed each (fusion.windows: the
    first that holds either rank), whose RRF score has no part from them: a set ranked deeper (facets, a sort) told
    keyword rank 104 for a hit fused at 100 on its vector rank alone, one ranked to the page's window told none."""
    if kw is None or vec is None:
        return kw, vec
    at_kw = {pid: i for i, pid in enumerate(kw.ids, start=1)}
    at_vec = {pid: i for i, pid in enumerate(vec.ids, start=1)}
    sizes = windows(max(len(kw.ids), len(vec.ids)), first)
    past_kw, past_vec = set(), set()
    for pid in page:
        rank_kw, rank_vec = at_kw.get(pid, math.inf), at_vec.get(pid, math.inf)
        window = next((w for w in sizes if w >= min(rank_kw, rank_vec)), math.inf)
        past_kw |= {pid} if rank_kw > window else set()
        past_vec |= {pid} if rank_vec > window else set()
    return _without(kw, past_kw), _without(vec, past_vec)


def _without(side: Ranked, gone: set[UUID]) -> Ranked:
    """`side`'s scores without `gone` (its ids, so the others' ranks, as they are)."""
    return side if not gone else replace(side, scores={p: s for p, s in side.scores.items() if p not in gone})


def _typo_tier(kw: Ranked, pid: UUID) -> bool:
    """Whether the keyword side matched `pid` by typo corrections only: its score's whole part, the exact match's
    +1 aside, is 0 (keyword.py; 2 the words, 1 a prefix): `chocola` listed `chocola->chocolate` on prefix hits."""
    score = kw.scores.get(pid)
    return score is not None and score - (1.0 if pid in kw.exact_ids else 0.0) < 1.0
