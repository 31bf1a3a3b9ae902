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
    keyword_rank: int | None  # 1-based position on the keyword side; None: no keyword match
    keyword_score: float | None
    typo_corrections: list[str]  # "typed->corrected" pairs its name or brand matched, not matching the typed word
    exact_match: bool  # exact name, brand or GTIN match


async def explained(
    conn: Any, q: str, kw: Ranked | None, vec: Ranked | None, page: Sequence[UUID]
) -> dict[UUID, HitExplain]:
    """Per hit of the page: its place on each side, its typo corrections (none where no keyword side ran:
    semantic mode), whether it matched exactly."""
    stmt = statement("engine/facets", "explain_typos")
    # the words the keyword side corrected: its sizes spaced (`500g` is `500 g`, not a typo of `500`)
    words = spaced_sizes(q) or q
    rows = await conn.fetch(stmt.sql, *stmt.bind(q=words, product_ids=list(page))) if words and kw else []
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
