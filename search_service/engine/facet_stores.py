"""The store facet over a set's listings held in memory (facet_stock.py): per store in scope, how many of the set's
products that pass the other filters it has in stock, the most first (ties by store id), as facet_set counts them
(`store_counts`), without reading the set's listings (1M products, 20 km: ~27-32 ms of a ~72-91 ms request). Only
the names of the stores shown are read (`store_names`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.facets import FACET_VALUES, StoreCount


class StoreOrder:
    """The listing buckets' stores by code, and each one's rank in store-id order (PostgreSQL's uuid order: the
    16 bytes compared in turn, as Python compares their integers); rebuilt when the codes change."""

    def __init__(self) -> None:
        self._for: tuple[Any, int] | None = None  # (the buckets' code dict, its size)
        self.ids = np.zeros(0, dtype=object)
        self.rank = np.zeros(0, dtype=np.int64)

    def of(self, codes: dict[UUID, int]) -> StoreOrder:
        held = self._for
        if held is None or held[0] is not codes or held[1] != len(codes):
            ids = np.empty(len(codes), dtype=object)
            for store_id, code in list(codes.items()):
                ids[code] = store_id
            held_ids = ids.tolist()
            rank = np.empty(len(ids), dtype=np.int64)
            rank[sorted(range(len(ids)), key=lambda c: held_ids[c].int)] = np.arange(len(ids))
            self._for, self.ids, self.rank = (codes, len(codes)), ids, rank
        return self


async def store_counts(
    conn: Any, order: StoreOrder, codes: np.ndarray, counted: np.ndarray, chosen_store: int | None = None
) -> list[StoreCount]:
    """The store facet: `codes`, the store code of each listing in scope (the store filter not applied: a store's
    count is what choosing it gives); `counted`, whether each listing's product passes the other filters. A store
    holds one listing of a product at most, so its listings counted are its products. The most frequent, and the
    chosen store (`chosen_store`, its code) past them, as facets.sql's store_counts."""
    per_store = np.bincount(codes[counted], minlength=len(order.ids))
    listed = np.flatnonzero(per_store)
    if len(listed) == 0:
        return []
    ranked = listed[np.lexsort((order.rank[listed], -per_store[listed]))]
    chosen = ranked[:FACET_VALUES]
    if chosen_store is not None and chosen_store in ranked[FACET_VALUES:]:
        chosen = np.append(chosen, chosen_store)
    ids = order.ids[chosen].tolist()
    stmt = statement("engine/facets", "store_names")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(store_ids=ids))
    names = dict(zip(row["ids"], row["names"], strict=True))
    return [StoreCount(UUID(str(i)), names.get(i, ""), int(n)) for i, n in zip(ids, per_store[chosen], strict=True)]
