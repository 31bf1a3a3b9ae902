"""Suggestions in a narrow scope (a few stores) from the API's in-memory product labels (`facet_labels.py`).

`suggest.sql`'s narrow plan read the label of every product the stores stock in stock (~1.1-1.8k a store) and
lower-cased and split their names in PostgreSQL: at 0.5 km with two stores ~35 ms of a suggestion's 40. Here
PostgreSQL reads only which products they stock (`suggest_stocked`, with the labels of those stamped since the
copy's snapshot, as facets read them); names, brands and categories starting with the prefix are found in memory
on PostgreSQL's lower-cased strings, and one more statement (`suggest_details`) reads the chosen products' names and
completes the last word among the products whose lower-cased name or brand holds it (a word of them that starts
with it is part of them). Same completions as the SQL plan: the kinds' orders are byte order (~<~ and the
cluster's C.UTF-8 collation), as Python compares str, and ties go by id, as uuid orders.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.facet_labels import NO_BRAND, NO_CATEGORY, ProductLabels
from search_service.engine.keyindex import ids_from_keys, keys_of
from search_service.engine.suggest_typed import glued_head, name_prefixes
from search_service.engine.text import fold_accents


def _take(values: np.ndarray, rows: np.ndarray, missing: Any) -> np.ndarray:
    out = np.full(len(rows), missing, dtype=values.dtype)
    out[rows >= 0] = values[rows[rows >= 0]]
    return out


class _Stocked:
    """The scope's in-stock products (in id order, as uuid orders) and their labels; the statement's newer ones win."""

    def __init__(self, labels: ProductLabels, row: Any) -> None:
        keys = np.frombuffer(row["packed_ids"], dtype=">u8").reshape(-1, 2).astype(np.uint64)
        keys = keys[np.lexsort((keys[:, 1], keys[:, 0]))]  # id order (as uuid orders), each id once
        keys = keys[np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]] if len(keys) else keys
        rows = labels.index.find(labels.key, labels.n, keys)
        held = rows >= 0
        self.keys = keys
        self.category = _take(labels.category, rows, NO_CATEGORY)
        self.brand = _take(labels.brand, rows, NO_BRAND)
        self.active = _take(labels.active, rows, False)
        self.lower_names = [labels.lower_names[r] if r >= 0 else "" for r in rows.tolist()]
        for j, key in enumerate(keys_of(row["ids"] or [])):
            i = int(np.flatnonzero((keys[:, 0] == key[0]) & (keys[:, 1] == key[1]))[0])
            held[i] = True
            self.active[i] = row["actives"][j]
            self.category[i] = NO_CATEGORY if row["categories"][j] is None else row["categories"][j]
            self.brand[i] = labels.brand_code(row["brands"][j], row["lower_brands"][j])
            self.lower_names[i] = row["lower_names"][j]
        self.complete = bool(held.all())  # else a product neither held nor stamped since: the SQL plan answers
        self.kept = np.flatnonzero(self.active).tolist()

    def ids(self, positions: list[int]) -> list[UUID]:
        return ids_from_keys(self.keys[np.asarray(positions, dtype=np.int64)]) if positions else []


def _brands(labels: ProductLabels, s: _Stocked, prefix: str, limit: int) -> list[dict[str, Any]]:
    """Brands starting with the prefix, one per brand as its filter reads it (case and accents folded, as SQL's
    plinqy_fold: `chat` completes `Château`), its smallest spelling, in byte order of the folded brand."""
    folded_prefix = fold_accents(prefix)
    spellings: dict[str, str] = {}
    for code in set(s.brand[s.kept].tolist()) - {NO_BRAND}:
        folded = labels.folded_brands[code]
        if folded.startswith(folded_prefix):
            brand = labels.brands[code]
            spellings[folded] = min(brand, spellings.get(folded, brand))
    chosen = sorted(spellings)[:limit]
    return [{"kind": "brand", "label": spellings[k], "ref": spellings[k], "ord": n} for n, k in enumerate(chosen, 1)]


def _categories(labels: ProductLabels, s: _Stocked, prefix: str, limit: int) -> list[dict[str, Any]]:
    """Categories starting with the prefix that hold a stocked product in their subtree, name and prefix folded as
    brands are (`éle` completes `Electronics`)."""
    leaves = set(s.category[s.kept].tolist()) - {NO_CATEGORY}
    held = {a for leaf in leaves for a in labels.ancestors(leaf)}
    folded = fold_accents(prefix)
    found = sorted(
        (labels.categories[c].folded_name, c) for c in held if labels.categories[c].folded_name.startswith(folded)
    )
    return [
        {"kind": "category", "label": labels.categories[c].name, "ref": str(c), "ord": n}
        for n, (_folded, c) in enumerate(found[:limit], 1)
    ]


def _holding(labels: ProductLabels, s: _Stocked, word: str) -> list[int]:
    """The stocked products whose lower-cased name or brand, accents folded, holds `word` (a word of them that
    starts with it is part of them)."""
    brands = [code for code in set(s.brand[s.kept].tolist()) - {NO_BRAND} if word in labels.folded_brands[code]]
    by_brand = set(np.flatnonzero(np.isin(s.brand, brands)).tolist()) if brands else set()
    return [i for i in s.kept if word in fold_accents(s.lower_names[i]) or i in by_brand]


async def suggest_narrow(
    conn: Any, labels: ProductLabels, prefix: str, head: str, last: str, scope: dict[str, Any], limit: int
) -> list[Any] | None:
    """The rows `suggest.merge` takes, or None when the scope is not narrow (or a product is unknown to the copy:
    the SQL plan answers). `scope`: lon, lat, radius_m, narrow_stores, store_ids (a bbox's stores; else None)."""
    stmt = statement("engine/suggest", "suggest_stocked")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(since=labels.since, **scope))
    if not row["narrow"]:
        return None
    s = _Stocked(labels, row)
    if not s.complete:
        return None
    if not set(s.category[s.kept].tolist()) <= {NO_CATEGORY, *labels.categories}:
        await labels.load_categories(conn)  # a category newer than the copy's tree
    name_prefix = tuple(name_prefixes(prefix))  # caseless, as the labels hold names (`KIRMIZI`: Kırmızı)
    names = sorted((s.lower_names[i], i) for i in s.kept if s.lower_names[i].startswith(name_prefix))
    name_ids = s.ids([i for _name, i in names[: 4 * limit]])
    term_ids = s.ids(_holding(labels, s, last)) if len(last) >= 2 else []
    rows: list[Any] = _brands(labels, s, prefix, limit) + _categories(labels, s, prefix, limit)
    if name_ids or term_ids:
        details = statement("engine/suggest", "suggest_details")
        values = details.bind(
            name_ids=name_ids, term_ids=term_ids, head=head, glued_head=glued_head(prefix), last_word=last, lim=limit
        )
        rows += list(await conn.fetch(details.sql, *values))
    return rows
