"""Every product's category, brand and active flag in the API's memory, for facet counts (`facet_memory.py`).

A facet set (1000 products) read its products' rows from PostgreSQL on every request (~3 buffers each, 3-5 ms)
and counted with GROUP BYs; with these arrays the counts are numpy's and PostgreSQL only reads the set's listings.
The copy keeps fresh as the vector copy does (`vectors.py`): `updated_at` is the products' change stamp (now() on
insert, a trigger on every update), `refresh()` (a background task of the API, every second) reads the rows
stamped after the write horizon read before its previous snapshot (or the look-back `margin` before the highest
stamp held, when the horizon is unknown or older), index-only in ix_product_master_updated_at (migration 0013).
Each facet request reads, in its listings statement, the labels of its products stamped after that same point
and of those the copy does not hold: the counts are those of the statement's snapshot, as SQL's were. The
category tree (names, parents) is reloaded by a refresh that finds the category table changed, and at once by a
request that meets a category the copy does not know; a category renamed or moved shows within a refresh.
Rows are the copy's own (in load order; a product is never moved), looked up by id as the vector copy's are
(`keyindex.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.keyindex import KeyIndex, keys_of
from search_service.engine.text import fold_accents

NO_CATEGORY = -1
NO_BRAND = -1


@dataclass(frozen=True)
class Category:
    name: str
    parent_id: int | None
    folded_name: str  # plinqy_fold(name) as PostgreSQL has it (case and accents folded: category completions)


class NameColumn:
    """Lower-cased names by row, packed: one UTF-8 blob and its offsets, plus the rows set since the last packing.
    A list of a million str objects, interleaved on the heap with the load's freed rows, pinned ~400 MiB of pages
    per API process at 1M products; packed, the names take ~50 MB."""

    def __init__(self) -> None:
        self.n = 0
        self._blob = b""
        self._offsets = np.zeros(1, dtype=np.int64)
        self._changed: dict[int, str] = {}

    def __getitem__(self, row: int) -> str:
        name = self._changed.get(row)
        if name is not None:
            return name
        if row >= len(self._offsets) - 1:
            return ""
        return self._blob[self._offsets[row] : self._offsets[row + 1]].decode()

    def set(self, rows: list[int], names: list[str]) -> None:
        self._changed.update(zip(rows, names, strict=True))
        self.n = max(self.n, max(rows, default=-1) + 1)
        if len(self._changed) > max(4096, self.n // 32):
            self.pack()

    def pack(self) -> None:
        if not self._changed:
            return
        old, bounds, changed = self._blob, self._offsets.tolist(), self._changed
        held = len(bounds) - 1  # rows the blob holds (bounds as Python ints: cheaper to slice by than numpy scalars)
        encoded = [
            changed[row].encode() if row in changed else old[bounds[row] : bounds[row + 1]] if row < held else b""
            for row in range(self.n)
        ]
        offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        self._blob, self._offsets, self._changed = b"".join(encoded), offsets, {}


class ProductLabels:
    """Category id, brand (as a code into `brands`), is_active and caseless name of each product, by row (see the
    module). Names are plinqy_caseless's (lower(), `ı` and `ß` folded), brands PostgreSQL's lower()
    (suggest_memory.py matches prefixes on them)."""

    def __init__(self, margin_s: float = 60.0) -> None:
        self.margin = dt.timedelta(seconds=margin_s)
        self.n = 0
        self.key = np.zeros((0, 2), dtype=np.uint64)
        self.category = np.zeros(0, dtype=np.int64)
        self.brand = np.zeros(0, dtype=np.int32)
        self.active = np.zeros(0, dtype=bool)
        self.index = KeyIndex()
        self.lower_names = NameColumn()  # row -> plinqy_caseless(name), what name completions compare
        self.brands: list[str] = []  # code -> the brand as stored
        self.lower_brands: dict[int, str] = {}  # code -> lower(brand)
        self.folded_brands: dict[int, str] = {}  # code -> plinqy_fold(brand): what a brand completion matches
        self._brand_code: dict[str, int] = {}
        self.categories: dict[int, Category] = {}
        self._category_state: tuple[Any, ...] | None = None
        self.watermark: dt.datetime | None = None  # highest updated_at held
        self.horizon: dt.datetime | None = None  # the write horizon read before the last snapshot (vectors.py)
        self.loaded = False
        self._inactive: np.ndarray | None = None  # inactive_keys, until the next write
        self.version = 0  # one more at each write: what a cache of the labels (facet_vectors.inactive_rows) keys on
        self.inactive_rows: tuple[Any, ...] | None = None  # that cache: (version, vector view, its n, rows)

    def __len__(self) -> int:
        return self.n

    @property
    def since(self) -> dt.datetime:
        """Rows stamped after this may be missing from the copy (the next refresh reads them; so does a request)."""
        since = dt.datetime.min.replace(tzinfo=dt.UTC)
        if self.watermark is not None:
            since = self.watermark - self.margin
        if self.horizon is not None:
            since = max(since, self.horizon - dt.timedelta(microseconds=1))
        return since

    # --- reading
    def rows_of(self, ids: Sequence[UUID]) -> np.ndarray:
        """The row of each id, -1 where the copy does not hold it."""
        return self.index.find(self.key, self.n, keys_of(list(ids)))

    def rows_of_keys(self, keys: np.ndarray) -> np.ndarray:
        """`rows_of` for ids given as (k, 2) keys (`keyindex.keys_of`)."""
        return self.index.find(self.key, self.n, keys)

    def inactive_keys(self) -> np.ndarray:
        """The (k, 2) keys of the products held as inactive (a facet set's in-memory ranking skips them)."""
        if self._inactive is None:
            self._inactive = self.key[: self.n][~self.active[: self.n]]
        return self._inactive

    def brand_code(self, brand: str | None, lower: str | None = None) -> int:
        """The code of `brand` (added when new); NO_BRAND for None. `lower`: its lower() (PostgreSQL's)."""
        if brand is None:
            return NO_BRAND
        code = self._brand_code.get(brand)
        if code is None:
            code = self._brand_code[brand] = len(self.brands)
            self.brands.append(brand)
        if lower is not None and self.lower_brands.get(code) != lower:  # folded once a spelling
            self.lower_brands[code] = lower
            self.folded_brands[code] = fold_accents(lower)
        return code

    def ancestors(self, category_id: int) -> list[int]:
        """The category and its ancestors, nearest first (a cycle, which the schema does not prevent, ends it)."""
        chain: list[int] = []
        current: int | None = category_id
        while current is not None and current in self.categories and current not in chain:
            chain.append(current)
            current = self.categories[current].parent_id
        return chain

    # --- writing
    def _apply(self, records: Sequence[Any]) -> int:
        if not records:
            return 0
        want = keys_of([r["id"] for r in records])
        rows = self.index.find(self.key, self.n, want)
        new = np.flatnonzero(rows < 0)
        self._reserve(self.n + len(new))
        rows[new] = np.arange(self.n, self.n + len(new))
        self.key[rows[new]] = want[new]
        self.n += len(new)
        self.lower_names.set(rows.tolist(), [r["lower_name"] for r in records])
        self.category[rows] = [NO_CATEGORY if r["category_id"] is None else r["category_id"] for r in records]
        self.brand[rows] = [self.brand_code(r["brand"], r["lower_brand"]) for r in records]
        self.active[rows] = [bool(r["is_active"]) for r in records]
        self._inactive, self.version = None, self.version + 1
        newest = max(r["updated_at"] for r in records)
        if self.watermark is None or newest > self.watermark:
            self.watermark = newest
        if self.index.tail_rows(self.n) > max(4096, self.n // 32):
            self.index = KeyIndex.rebuilt(self.key, self.n)
        return len(records)

    def _reserve(self, need: int) -> None:
        capacity = len(self.category)
        if need <= capacity:
            return
        capacity = max(need, int(capacity * 1.25) + 1024)
        for name in ("key", "category", "brand", "active"):
            old = getattr(self, name)
            grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            grown[: self.n] = old[: self.n]
            setattr(self, name, grown)

    async def _write_horizon(self, conn: Any) -> dt.datetime | None:
        if conn.is_in_transaction():
            return None
        row = await conn.fetchrow(statement("engine/vectors", "write_horizon").sql)
        return row["horizon"] if row is not None and row["complete"] else None

    async def load_categories(self, conn: Any) -> None:
        """The category tree, when the table changed since it was read (its row count and newest stamp)."""
        row = await conn.fetchrow(statement("engine/facets", "category_state").sql)
        if (row["n"], row["newest"]) == self._category_state:
            return
        row = await conn.fetchrow(statement("engine/facets", "category_tree").sql)
        state = (row["n"], row["newest"])
        columns = (row["ids"] or [], row["parents"] or [], row["names"] or [], row["folded_names"] or [])
        self.categories = {
            int(i): Category(name, None if p is None else int(p), folded)
            for i, p, name, folded in zip(*columns, strict=True)
        }
        self._category_state = state

    async def load(self, conn: Any) -> int:
        """Read every product's labels (one snapshot); returns how many are held."""
        horizon = await self._write_horizon(conn)
        stmt = statement("engine/facets", "labels_all")
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            records = await conn.fetch(stmt.sql)
            self._reserve(len(records) + max(4096, len(records) // 16))  # room: a new product copies no array
            self._apply(records)
            await self.load_categories(conn)
        self.lower_names.pack()
        self.index = KeyIndex.rebuilt(self.key, self.n)
        self.horizon = horizon
        self.loaded = True
        return self.n

    async def refresh(self, conn: Any) -> int:
        """Read the products stamped since `since` (and the category tree, if it changed); returns how many."""
        if not self.loaded:
            return await self.load(conn)
        since = self.since
        horizon = await self._write_horizon(conn)
        stmt = statement("engine/facets", "labels_changed")
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            records = await conn.fetch(stmt.sql, *stmt.bind(since=since))
            await self.load_categories(conn)
        self.horizon = horizon
        return self._apply(records)
