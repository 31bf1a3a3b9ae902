"""The keyword side: full-text, exact name/brand/GTIN and typo-tolerant matches under the search's filters, as a
`Ranked` side (score = the tiered text rank, fusion.py, + 1.0 for an exact match).

`rank_keyword` (the statement of that name) ranks at most `EngineConfig.keyword_cap` matches of the catalogue,
keeping those sold in scope: a common word matches far more, and near a point its first `cap` held a fraction of
the local ones (`milk` within 5 km on the 100k catalogue: 17 of 87). Where the search holds the candidate sets
(in stock, in a radius or box: `Scope.sets`), such a query is ranked in scope instead: the statement hands back
its exact, full-text and typo matches (up to `keyword_scan_cap` of each kind), the sets keep those some store in
scope has in stock, and `rank_keyword_among` scores them as the statement does (up to `keyword_rank_cap`). A
query of fewer matches stays one statement. A radius probed per listing (`Scope.near`: it holds most
stores, so most matches are in scope anyway, and the union of its stores' sets is the costly part) keeps the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from pyroaring import BitMap

from search_service.db.sql import statement
from search_service.engine.candidates import CandidateSets, InScope
from search_service.engine.config import EngineConfig
from search_service.engine.fusion import Ranked
from search_service.engine.keyindex import ids_from_keys
from search_service.engine.scope import Scope
from search_service.engine.session import Conn, transaction
from search_service.engine.text import last_word_prefix, query_words, spaced_sizes


async def rank_keyword(
    conn: Conn, scope: Scope, depth: int, config: EngineConfig, typo_below: int | None = None
) -> Ranked:
    """`typo_below`: the typo threshold (default `EngineConfig.rrf_depth`, whatever the depth: a deeper ranking
    holds the same matches, so that pages of different depths are slices of one order)."""
    below = config.rrf_depth if typo_below is None else typo_below
    hand_back = scope.sets is not None and scope.near is None and scope.store_ids is not None
    stmt = statement("engine/search", "rank_keyword")
    values = scope.bind(
        stmt,
        depth=depth,
        cap=config.keyword_cap,
        typo_tolerance=config.typo_tolerance,
        typo_below=below,
        scan_cap=config.keyword_scan_cap if hand_back else None,
        **query_texts(scope.params.q, scope.params.whole_last_word),
    )
    rows = await conn.fetch(stmt.sql, *values)
    if rows and rows[-1]["packed_ids"] is not None:  # a query of `cap` matches or more, handed back
        return await _rank_in_scope(conn, scope, depth, config, rows[-1])
    return _ranked(rows)


async def _rank_in_scope(conn: Conn, scope: Scope, depth: int, config: EngineConfig, handed: Any) -> Ranked:
    """The candidate sets' products in scope among the handed matches, ranked by rank_keyword_among."""
    assert scope.sets is not None
    in_scope = scope.products_in_scope()
    assert in_scope is not None
    ids, left_out = kept_in_scope(scope.sets, in_scope, handed["packed_ids"], config.keyword_rank_cap)
    stmt = statement("engine/search", "rank_keyword_among")
    values = scope.bind(
        stmt,
        match_ids=ids,
        match_capped=bool(handed["capped"]) or left_out > 0,
        ids_listed=scope.params.min_price is None and scope.params.max_price is None,
        depth=depth,
        **query_texts(scope.params.q, scope.params.whole_last_word),
    )
    return _ranked(await conn.fetch(stmt.sql, *values), unranked=left_out)


def query_texts(q: str, whole_last_word: bool = False) -> dict[str, Any]:
    """`keyword_query`'s readings of `q` besides itself: its sizes spaced, its last word as a prefix after the words
    before it (none where `whole_last_word`: a space typed after it), and its words for the compound probes
    (engine/text.py)."""
    head, last = (None if whole_last_word else last_word_prefix(q)) or (None, None)
    return {"q_sized": spaced_sizes(q), "q_head": head, "q_last": last, "q_words": query_words(q)}


def kept_in_scope(sets: CandidateSets, in_scope: InScope, packed_ids: bytes, rank_cap: int) -> tuple[list[UUID], int]:
    """The products among `packed_ids` (16 bytes each) that `in_scope` holds, at most `rank_cap` of them (in the
    sets' ordinal order), and how many more it holds."""
    known = sets.index.rows_of(sets.keys, sets.n, packed_ids).astype(np.uint32)  # the ordinals held, sorted
    kept = np.frombuffer((BitMap(known.data) & in_scope.products).to_array(), dtype=np.uint32)
    return ids_from_keys(sets.keys[kept[:rank_cap]]), max(0, len(kept) - rank_cap)


def _ranked(rows: Sequence[Any], unranked: int = 0) -> Ranked:
    """`unranked`: matches in scope past the ranking's cap, counted in the total (then not exact)."""
    capped = bool(rows[0]["capped"]) if rows else False
    return Ranked(
        ids=[r["id"] for r in rows],
        scores={r["id"]: float(r["kscore"]) + (1.0 if r["exact"] else 0.0) for r in rows},
        total=(int(rows[0]["total"]) if rows else 0) + unranked,
        total_exact=not capped and not unranked,
        strategy="keyword",
        exact_ids=frozenset(r["id"] for r in rows if r["exact"]),
    )


async def rank_keyword_apart(conn: Conn, scope: Scope, depth: int, config: EngineConfig) -> Ranked:
    """The keyword side on a second connection, in a transaction of its own with the engine's settings."""
    async with transaction(conn, config):
        return await rank_keyword(conn, scope, depth, config)
