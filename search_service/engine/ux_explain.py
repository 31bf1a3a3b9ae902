"""`explain=true`: what each hit of a page owes its place to (engine/ux.py's answer, per hit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine.fusion import Ranked
from search_service.engine.text import spaced_sizes


@dataclass(frozen=True)
class HitExplain:
    vector_similarity: float | None  # None: not among the vector side's ranked products (or keyword mode)
    keyword_rank: int | None  # 1-based position on the keyword side, among the products that pass; None: no match
    keyword_score: float | None
    # "typed->corrected" pairs its name or brand matched, not matching the typed word; only for a typo match
    typo_corrections: list[str]
    exact_match: bool  # exact name, brand or GTIN match


async def explained(
    conn: Any, q: str, kw: Ranked | None, vec: Ranked | None, page: Sequence[UUID]
) -> dict[UUID, HitExplain]:
    """Per hit of the page: its place on each side, its typo corrections (only where the keyword side matched it
    by them: none for a match of the words, a prefix or a compound, nor where no keyword side ran), whether it
    matched exactly."""
    stmt = statement("engine/facets", "explain_typos")
    # the words the keyword side corrected: its sizes spaced (`500g` is `500 g`, not a typo of `500`)
    words = spaced_sizes(q) or q
    typo_matched = [pid for pid in page if kw and _typo_tier(kw, pid)]
    rows = await conn.fetch(stmt.sql, *stmt.bind(q=words, product_ids=typo_matched)) if words and typo_matched else []
    typos = {r["id"]: list(r["applied"]) for r in rows}
    kw_rank = {pid: i for i, pid in enumerate(kw.ids, start=1)} if kw else {}
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


def _typo_tier(kw: Ranked, pid: UUID) -> bool:
    """Whether the keyword side matched `pid` by typo corrections only: its score's whole part, the exact match's
    +1 aside, is 0 (keyword.py; 2 the words, 1 a prefix): `chocola` listed `chocola->chocolate` on prefix hits."""
    score = kw.scores.get(pid)
    return score is not None and score - (1.0 if pid in kw.exact_ids else 0.0) < 1.0
