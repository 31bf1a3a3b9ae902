"""Per product, the stores that have it in stock and each listing's price bucket, in the API's memory.

A facet set (1000 products) read its listings in scope from PostgreSQL on every request (`facet_listings`: ~9k
index entries for a global set, 5-7 ms of the backend and as much packing and decoding): with these arrays the
price facet and whether a product is listed in scope are numpy's, and the request reads only what memory may not
have yet (`facet_fresh`, one round trip).

- **Layout.** Products are this module's own rows (`keys`, looked up with `keyindex.KeyIndex`; never moved). Each
  row's listings are one int32 each, store code * 16 + price bucket (`facets.PRICE_EDGES` as width_bucket numbers
  them, from 1), in one packed array with offsets (`start`): 4 bytes a listing in stock. Rows changed since the
  packing are held aside (`_changed`: row -> {store code: bucket}) until they are many, then packed again.
- **Exact.** As the candidate sets (`candidates.py`): the listing change log (migration 0012) names every listing
  whose sellable state may have changed, and since migration 0017 every sellable listing whose price changed.
  Each facet request reads, in its own snapshot, the pairs logged since the buckets' snapshot with their current
  bucket (0: not sellable) and applies them under the same snapshot rules (`Snapshot.covers`); a reader that fell
  behind (more than `max_changes` at once, or rows pruned before it read them) marks the buckets stale, and the
  request counts in SQL until a refresh rebuilds them.
- **Rebuild** (start-up, and when stale): every sellable listing's product and bucket, grouped by store, in one
  repeatable-read snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.candidates import Snapshot, keys_of_packed, snapshot_of
from search_service.engine.facets import PRICE_EDGES
from search_service.engine.keyindex import KeyIndex

log = logging.getLogger(__name__)

PAIR_BYTES = 33  # a change: store id, product id (16 bytes each), price bucket (1 byte; 0: not sellable)
BUCKET_BITS = 4  # buckets 1..len(PRICE_EDGES) fit in 4 bits
EDGES = list(PRICE_EDGES)


class StockBuckets:
    """Listings in stock by product: store code and price bucket (module docstring). Not loaded: facets read the
    listings in SQL."""

    def __init__(self, max_changes: int = 20000) -> None:
        self.max_changes = max_changes
        self.keys = np.zeros((0, 2), dtype=np.uint64)
        self.n = 0  # rows in use
        self.index = KeyIndex()
        self.start = np.zeros(1, dtype=np.int64)  # row r's listings: packed[start[r]:start[r + 1]] (r < packed rows)
        self.packed = np.zeros(0, dtype=np.int32)  # store code << BUCKET_BITS | bucket
        self._changed: dict[int, dict[int, int]] = {}  # rows changed since the packing (or added): code -> bucket
        self._changed_rows = np.zeros(0, dtype=np.int64)
        self.store_code: dict[UUID, int] = {}
        self.snapshot: Snapshot | None = None  # None: not loaded
        self.stale = False
        self._retry_at = 0.0

    @property
    def loaded(self) -> bool:
        return self.snapshot is not None and not self.stale

    def read_args(self) -> dict[str, Any]:
        """facet_fresh's arguments for the changes since the buckets' snapshot (since_seq None: none read)."""
        snap = self.snapshot if self.loaded else None
        if snap is None:
            return {"since_seq": None, "pending": [], "max_changes": 0, "price_edges": EDGES}
        return {"since_seq": snap.seq, "pending": list(snap.xip), "max_changes": self.max_changes, "price_edges": EDGES}

    # --- reading
    def in_scope(self, want: np.ndarray, stores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The listings in stock of the products `want` ((m, 2) keys) at the stores `stores` (a mask by store
        code): (position in `want`, price bucket) of each."""
        rows = self.index.find(self.keys, self.n, want)
        packed_rows = len(self.start) - 1
        plain = (rows >= 0) & (rows < packed_rows) & ~np.isin(rows, self._changed_rows)
        at = np.flatnonzero(plain)
        first, stop = self.start[rows[at]], self.start[rows[at] + 1]
        lengths = stop - first
        total = int(lengths.sum())
        offsets = np.repeat(first - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(total)
        entries = self.packed[offsets]
        positions = np.repeat(at, lengths)
        extra = [(i, (c << BUCKET_BITS) | b) for i in np.flatnonzero(~plain & (rows >= 0)).tolist()
                 for c, b in self._changed.get(int(rows[i]), {}).items()]  # fmt: skip
        if extra:
            positions = np.concatenate([positions, np.array([i for i, _e in extra], dtype=np.int64)])
            entries = np.concatenate([entries, np.array([e for _i, e in extra], dtype=np.int32)])
        code = entries >> BUCKET_BITS
        keep = stores[np.minimum(code, len(stores) - 1)] & (code < len(stores)) if len(stores) else code < 0
        return positions[keep], (entries[keep] & ((1 << BUCKET_BITS) - 1)).astype(np.int64)

    def store_mask(self, store_ids: Sequence[UUID] | None, inactive: Sequence[UUID] = ()) -> np.ndarray:
        """A mask by store code: the stores `store_ids`, or (None) every store but the `inactive` ones."""
        mask = np.full(len(self.store_code), store_ids is None, dtype=bool)
        for store in store_ids if store_ids is not None else inactive:
            code = self.store_code.get(store)
            if code is not None:
                mask[code] = store_ids is not None
        return mask

    def _packed_len(self, row: int) -> int:
        return int(self.start[row + 1] - self.start[row]) if row < len(self.start) - 1 else 0

    # --- changes
    def apply(self, base: Snapshot | None, row: Any) -> bool:
        """Apply the changes facet_fresh read from the buckets' snapshot `base` (candidates.CandidateSets.apply's
        rules). True when the buckets now hold at least that statement's snapshot (the request may count on them)."""
        current = self.snapshot
        if base is None or current is None or self.stale:
            return False
        seen = snapshot_of(row)
        behind = int(row["change_count"]) > self.max_changes or int(row["change_pruned"]) > base.seq
        if behind or seen.seq < base.seq:  # fell behind, or the log was emptied
            self.stale = True  # the next refresh rebuilds
            return False
        if not (current.covers(base) and seen.covers(current)):
            return current.covers(seen)  # an older read: the buckets are newer than its snapshot already
        packed = row["change_pairs"] or b""
        if packed:
            self._apply_pairs(bytes(packed))
        self.snapshot = seen
        return True

    def _apply_pairs(self, packed: bytes) -> None:
        pairs = np.frombuffer(packed, dtype=np.uint8).reshape(-1, PAIR_BYTES)
        rows = self._rows_adding(keys_of_packed(pairs[:, 16:32].tobytes()))
        for i, row in enumerate(rows.tolist()):
            store = UUID(bytes=pairs[i, :16].tobytes())
            code = self.store_code.setdefault(store, len(self.store_code))
            listings = self._changed.get(row)
            if listings is None:
                listings = self._changed[row] = self._unpacked(row)
            if pairs[i, 32]:
                listings[code] = int(pairs[i, 32])
            else:
                listings.pop(code, None)
        self._changed_rows = np.fromiter(self._changed, dtype=np.int64, count=len(self._changed))
        if len(self._changed) > max(4096, self.n // 32):
            self._pack()

    def _unpacked(self, row: int) -> dict[int, int]:
        if row >= len(self.start) - 1:
            return {}
        entries = self.packed[self.start[row] : self.start[row + 1]].tolist()
        return {e >> BUCKET_BITS: e & ((1 << BUCKET_BITS) - 1) for e in entries}

    def _rows_adding(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key, adding the ones not held."""
        rows = self.index.find(self.keys, self.n, keys)
        for i in np.flatnonzero(rows < 0).tolist():  # a few new products at a time
            found = self.index.find(self.keys, self.n, keys[i : i + 1])[0]
            if found < 0:
                if self.n == len(self.keys):
                    self.keys = np.concatenate([self.keys, np.zeros((max(1024, self.n // 4), 2), np.uint64)])
                self.keys[self.n] = keys[i]
                found, self.n = self.n, self.n + 1
            rows[i] = found
        if self.index.tail_rows(self.n) > max(4096, self.n // 32):
            self.index = KeyIndex.rebuilt(self.keys, self.n)
        return rows

    def _pack(self) -> None:
        """Fold the changed rows into the packed arrays."""
        lengths = np.zeros(self.n, dtype=np.int64)
        old = len(self.start) - 1
        lengths[:old] = np.diff(self.start)
        for row, listings in self._changed.items():
            lengths[row] = len(listings)
        start = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(lengths, out=start[1:])
        packed = np.zeros(int(start[-1]), dtype=np.int32)
        keep = np.ones(old, dtype=bool)
        keep[[r for r in self._changed if r < old]] = False
        src = np.repeat(keep, np.diff(self.start))  # the unchanged rows' entries, in row order
        dst = np.repeat(np.concatenate([keep, np.zeros(self.n - old, bool)]), lengths)
        packed[dst] = self.packed[src]
        for row, listings in self._changed.items():
            packed[start[row] : start[row + 1]] = sorted((c << BUCKET_BITS) | b for c, b in listings.items())
        self.start, self.packed, self._changed, self._changed_rows = start, packed, {}, np.zeros(0, np.int64)

    # --- loading
    async def refresh(self, conn: Any) -> None:
        """Rebuild when due (never loaded, or stale), else apply the changes since the buckets' snapshot (the API,
        every second: a request then reads the last second's changes, not an idle hour's)."""
        if self.snapshot is None or self.stale:
            if time.monotonic() >= self._retry_at:
                await self.load(conn)
            return
        stmt = statement("engine/facets", "stock_changes")
        base = self.snapshot
        self.apply(base, await conn.fetchrow(stmt.sql, *stmt.bind(**self.read_args())))
        if self.stale:
            await self.load(conn)

    async def load(self, conn: Any) -> None:
        """Every sellable listing's product and bucket, grouped by store, and the change log's state, in one
        snapshot. A role that may not read the log leaves the buckets unloaded (a minute until the next try)."""
        started = time.perf_counter()
        state, by_store = (statement("engine/facets", n) for n in ("stock_state", "stock_by_store"))
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                row = await conn.fetchrow(state.sql)
                stores = await conn.fetch(by_store.sql, *by_store.bind(price_edges=EDGES))
        except Exception as exc:  # asyncpg's privilege and missing-table errors; the API logs and retries
            log.warning("listing buckets: not loaded (%s); facets read the listings in SQL", exc)
            self._retry_at = time.monotonic() + 60.0
            return
        self._build([r["store_id"] for r in stores], [bytes(r["packed_ids"]) for r in stores],
                    [bytes(r["packed_buckets"]) for r in stores])  # fmt: skip
        self.snapshot, self.stale = snapshot_of(row), False
        log.info("listing buckets: %d products, %d listings in %.2fs", self.n, len(self.packed),
                 time.perf_counter() - started)  # fmt: skip

    def _build(self, store_ids: list[UUID], packed_ids: list[bytes], buckets: list[bytes]) -> None:
        keys = keys_of_packed(b"".join(packed_ids))
        unique_first, inverse = np.unique(keys[:, 0], return_inverse=True)  # as candidates.py numbers them
        firsts = np.full(len(unique_first), -1, dtype=np.int64)
        firsts[inverse] = np.arange(len(keys))
        unique = keys[firsts]
        if not np.array_equal(unique[inverse, 1], keys[:, 1]):  # two ids share their first 8 bytes
            unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        self.store_code = {s: i for i, s in enumerate(store_ids)}
        codes = np.repeat(np.arange(len(store_ids), dtype=np.int32), [len(p) // 16 for p in packed_ids])
        entries = (codes << BUCKET_BITS) | np.frombuffer(b"".join(buckets), dtype=np.uint8).astype(np.int32)
        order = np.argsort(inverse, kind="stable")
        self.keys, self.n = np.ascontiguousarray(unique), len(unique)
        self.index = KeyIndex.rebuilt(self.keys, self.n)
        self.start = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(inverse, minlength=self.n), out=self.start[1:])
        self.packed = np.ascontiguousarray(entries[order])
        self._changed, self._changed_rows = {}, np.zeros(0, np.int64)
