"""Per product, the stores that have it in stock and each listing's price bucket, in the API's memory.

A facet set (1000 products) read its listings in scope from PostgreSQL on every request (`facet_listings`: ~9k
index entries for a global set, 5-7 ms of the backend and as much packing and decoding): with these arrays the
price facet and whether a product is listed in scope are numpy's, and the request reads only what memory may not
have yet (`facet_fresh`, one round trip).

- **Layout.** Products are this module's own rows (`keys`, looked up with `keyindex.KeyIndex`; never moved). Each
  row's listings are one int32 each, store code * 16 + price bucket (`facets.PRICE_EDGES` as width_bucket numbers
  them, from 1), in one packed array with offsets (`start`): 4 bytes a listing in stock. Rows changed since the
  packing are held aside (`_changed_rows`, their listings in `_over_rows`/`_over`, by row) until they are many,
  then packed again. A change set is applied in bulk (numpy: the new products appended at once, no object a
  change): ~1.5-2 µs a change, was 4.4 for a known product and 250 for a new one (a key index re-sorted each).
- **Exact.** As the candidate sets (`candidates.py`): the listing change log (migration 0012) names every listing
  whose sellable state may have changed, and since migration 0017 every sellable listing whose price changed.
  Each facet request reads, in its own snapshot, the pairs logged since the buckets' snapshot with their current
  bucket (0: not sellable) and applies them under the same snapshot rules (`Snapshot.covers`). A reader behind
  (rows pruned before it read them) marks the buckets stale, and the requests count in SQL.
- **Bursts.** More changes at once than `burst_changes` (a tenth of the listings held, at least BURST_FLOOR, at
  most `max_changes`; see BURST_PER_LISTING) cost more to read and apply than a rebuild, in every API process:
  the buckets step aside (stale; the requests count in SQL, exactly) and the refresh probes the log's head
  (`stock_log_head`) until it moved by at most a burst since the last probe (a second), then rebuilds. An import
  of 20k rows cost the API 126.5 µs of CPU a row with every change applied, 27.5 without the buckets' refresh.
- **Rebuild** (start-up, and when stale): every sellable listing's product and bucket, grouped by store, in one
  repeatable-read snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.candidates import (
    CandidateSets,
    Numbered,
    Snapshot,
    built_sets,
    keys_of_packed,
    number_listings,
    snapshot_of,
)
from search_service.engine.facet_stores import StoreOrder
from search_service.engine.facets import PRICE_EDGES
from search_service.engine.keyindex import KeyIndex
from search_service.engine.store_locator import StoreLocator

log = logging.getLogger(__name__)

PAIR_BYTES = 33  # a change: store id, product id (16 bytes each), price bucket (1 byte; 0: not sellable)
BUCKET_BITS = 4  # buckets 1..len(PRICE_EDGES) fit in 4 bits
BUCKET_MASK = (1 << BUCKET_BITS) - 1
EDGES = list(PRICE_EDGES)
# A burst: more changes at once than BURST_PER_LISTING of the listings held (and than BURST_FLOOR). Measured at
# 100k listings: reading and applying a change costs ~7 µs (5.5 of them the database's), a rebuild 0.5 µs a
# listing, so past ~7 % a rebuild is cheaper; 10 % leaves room for the facets counted in SQL meanwhile.
BURST_PER_LISTING = 0.1
BURST_FLOOR = 1000  # below it, applying costs a few ms a second


class StockBuckets:
    """Listings in stock by product: store code and price bucket (module docstring). Not loaded: facets read the
    listings in SQL."""

    def __init__(self, max_changes: int = 20000, burst_floor: int = BURST_FLOOR) -> None:
        self.max_changes = max_changes  # the most changes one read brings (its LIMIT); a burst is past fewer
        self.burst_floor = burst_floor
        self.keys = np.zeros((0, 2), dtype=np.uint64)
        self.n = 0  # rows in use
        self.index = KeyIndex()
        self.start = np.zeros(1, dtype=np.int64)  # row r's listings: packed[start[r]:start[r + 1]] (r < packed rows)
        self.packed = np.zeros(0, dtype=np.int32)  # store code << BUCKET_BITS | bucket
        self._changed_rows = np.zeros(0, dtype=np.int64)  # rows changed since the packing (or added), sorted
        self._over_rows = np.zeros(0, dtype=np.int64)  # their listings now: rows and entries, by (row, entry)
        self._over = np.zeros(0, dtype=np.int32)
        self.store_code: dict[UUID, int] = {}
        self.places = StorePlaces()  # the codes' places, for sort=distance (facet_distance.py)
        self.store_order = StoreOrder()  # the codes' stores in id order, for the store facet (facet_stores.py)
        self.snapshot: Snapshot | None = None  # None: not loaded
        self.stale = False
        self._aside_head: int | None = None  # stepped aside: the log's head at the last probe
        self._retry_at = 0.0

    @property
    def loaded(self) -> bool:
        return self.snapshot is not None and not self.stale

    @property
    def burst_changes(self) -> int:
        """Changes at once past which the buckets step aside rather than apply them (module docstring)."""
        listings = len(self.packed) + len(self._over)
        return min(self.max_changes, max(self.burst_floor, int(listings * BURST_PER_LISTING)))

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
        positions, buckets, _codes = self.in_scope_at(want, stores)
        return positions, buckets

    def in_scope_at(self, want: np.ndarray, stores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`in_scope`, and each listing's store code."""
        positions, entries = self._entries(self.index.find(self.keys, self.n, want))
        code = entries >> BUCKET_BITS
        keep = stores[np.minimum(code, len(stores) - 1)] & (code < len(stores)) if len(stores) else code < 0
        return positions[keep], (entries[keep] & BUCKET_MASK).astype(np.int64), code[keep].astype(np.int64)

    def listed(self, want: np.ndarray, stores: np.ndarray) -> np.ndarray:
        """Whether each product of `want` ((m, 2) keys) has a listing in stock at a store of the mask `stores`."""
        positions, _buckets = self.in_scope(want, stores)
        found = np.zeros(len(want), dtype=bool)
        found[positions] = True
        return found

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(i, entry) of every listing held for rows[i] (-1: none), packed or held aside."""
        changed = np.isin(rows, self._changed_rows)
        at = np.flatnonzero((rows >= 0) & (rows < len(self.start) - 1) & ~changed)
        which, offsets = _ranges(self.start[rows[at]], self.start[rows[at] + 1])
        aside = np.flatnonzero(changed)
        over = self._over_rows
        which_aside, offsets_aside = _ranges(
            np.searchsorted(over, rows[aside], "left"), np.searchsorted(over, rows[aside], "right")
        )
        return (
            np.concatenate([at[which], aside[which_aside]]),
            np.concatenate([self.packed[offsets], self._over[offsets_aside]]),
        )

    def store_mask(self, store_ids: Sequence[UUID] | None, inactive: Sequence[UUID] = ()) -> np.ndarray:
        """A mask by store code: the stores `store_ids`, or (None) every store but the `inactive` ones."""
        mask = np.full(len(self.store_code), store_ids is None, dtype=bool)
        for store in store_ids if store_ids is not None else inactive:
            code = self.store_code.get(store)
            if code is not None:
                mask[code] = store_ids is not None
        return mask

    # --- changes
    def apply(self, base: Snapshot | None, row: Any, read_limit: int | None = None) -> bool:
        """Apply the changes facet_fresh read from the buckets' snapshot `base` (candidates.CandidateSets.apply's
        rules; `read_limit`: the max_changes it read with, when not `read_args`'). True when the buckets now hold
        at least that statement's snapshot (the request may count on them). More than a burst of changes (or a
        reader behind the log's pruning) makes them step aside."""
        current = self.snapshot
        if base is None or current is None or self.stale:
            return False
        seen = snapshot_of(row)
        changes = int(row["change_count"])
        if (
            changes > min(self.burst_changes, read_limit or self.max_changes)
            or int(row["change_pruned"]) > base.seq
            or seen.seq < base.seq
        ):
            self._step_aside(seen.seq, changes)  # a burst, a reader behind, or the log was emptied
            return False
        if not (current.covers(base) and seen.covers(current)):
            return current.covers(seen)  # an older read: the buckets are newer than its snapshot already
        packed = row["change_pairs"] or b""
        if packed:
            self._apply_pairs(bytes(packed))
        self.snapshot = seen
        return True

    def _apply_pairs(self, packed: bytes) -> None:
        """Each pair's bucket replaces its product's listing at that store (0: removes it), in bulk: the touched
        rows' listings now are held aside, sorted by (row, entry), until many rows are, then packed."""
        pairs = np.frombuffer(packed, dtype=np.uint8).reshape(-1, PAIR_BYTES)
        rows = self._rows_adding(keys_of_packed(pairs[:, 16:32].tobytes()))
        touched = np.unique(rows)
        at, old = self._entries(touched)
        every_row = np.concatenate([touched[at], rows])
        every_code = np.concatenate([old >> BUCKET_BITS, self._codes(pairs[:, :16])])
        every_bucket = np.concatenate([old & BUCKET_MASK, pairs[:, 32].astype(np.int32)])
        order = np.lexsort((np.arange(len(every_row)), every_code, every_row))  # a pair after the listing it replaces
        row_of, code_of = every_row[order], every_code[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (row_of[1:] != row_of[:-1]) | (code_of[1:] != code_of[:-1])
        keep = order[last]
        keep = keep[every_bucket[keep] > 0]  # in (row, code) order: (row, entry) order
        held = ~np.isin(self._over_rows, touched)
        over_rows = np.concatenate([self._over_rows[held], every_row[keep]])
        over = np.concatenate([self._over[held], (every_code[keep] << BUCKET_BITS) | every_bucket[keep]])
        by_row = np.argsort(over_rows, kind="stable")  # two parts in (row, entry) order, their rows disjoint
        self._over_rows, self._over = over_rows[by_row], over[by_row].astype(np.int32)
        self._changed_rows = np.union1d(self._changed_rows, touched)
        if len(self._changed_rows) > max(4096, self.n // 32):
            self._pack()

    def _codes(self, stores: np.ndarray) -> np.ndarray:
        """The code of each store id ((k, 16) bytes), numbering the new ones: a dict look-up a distinct store."""
        unique, inverse = np.unique(np.ascontiguousarray(stores).view("V16").reshape(-1), return_inverse=True)
        codes = [self.store_code.setdefault(UUID(bytes=bytes(u)), len(self.store_code)) for u in unique]
        return np.asarray(codes, dtype=np.int32)[np.asarray(inverse).reshape(-1)]

    def _rows_adding(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key, adding the ones not held (all at once, as candidates.CandidateSets.ordinals_of)."""
        rows = self.index.find(self.keys, self.n, keys)
        new = np.flatnonzero(rows < 0)
        if len(new):
            fresh, first = np.unique(keys[new], axis=0, return_inverse=True)
            if self.n + len(fresh) > len(self.keys):
                grown = np.zeros((max(self.n + len(fresh), int(self.n * 1.25) + 1024), 2), dtype=np.uint64)
                grown[: self.n] = self.keys[: self.n]
                self.keys = grown
            self.keys[self.n : self.n + len(fresh)] = fresh
            rows[new] = self.n + np.asarray(first).reshape(-1)
            self.n += len(fresh)
        if self.index.tail_rows(self.n) > max(4096, self.n // 32):
            self.index = KeyIndex.rebuilt(self.keys, self.n)
        return rows

    def _pack(self) -> None:
        """Fold the rows held aside into the packed arrays."""
        old, changed, over_rows = len(self.start) - 1, self._changed_rows, self._over_rows
        lengths = np.zeros(self.n, dtype=np.int64)
        lengths[:old] = np.diff(self.start)
        lengths[changed] = np.bincount(np.searchsorted(changed, over_rows), minlength=len(changed))
        start = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(lengths, out=start[1:])
        packed = np.zeros(int(start[-1]), dtype=np.int32)
        keep = np.ones(old, dtype=bool)
        keep[changed[changed < old]] = False
        src = np.repeat(keep, np.diff(self.start))  # the unchanged rows' entries, in row order
        dst = np.repeat(np.concatenate([keep, np.zeros(self.n - old, bool)]), lengths)
        packed[dst] = self.packed[src]
        rank = np.arange(len(over_rows)) - np.searchsorted(over_rows, over_rows, "left")  # place in its row
        packed[start[over_rows] + rank] = self._over
        self.start, self.packed = start, packed
        self._changed_rows, self._over_rows, self._over = (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.int32),)

    # --- loading
    async def refresh(self, conn: Any) -> None:
        """Load when never loaded; when stepped aside, rebuild once the log is quiet; else apply the changes since
        the buckets' snapshot (the API, every second: a request then reads the last second's changes, not an idle
        hour's)."""
        if time.monotonic() < self._retry_at:
            return
        if self.snapshot is None or (self.stale and await self._quiet(conn)):
            await self.load(conn)
            return
        await self.brought_current(conn)  # nothing while stepped aside

    async def brought_current(self, conn: Any) -> bool:
        """The changes since the snapshot applied (a burst at most: its pairs' buckets cost the database ~5 µs
        each). True when the buckets now hold at least this moment's state, so a request may read them."""
        if self.snapshot is None or self.stale:
            return False
        stmt, limit = statement("engine/facets", "stock_changes"), self.burst_changes
        base = self.snapshot
        row = await conn.fetchrow(stmt.sql, *stmt.bind(**{**self.read_args(), "max_changes": limit}))
        return self.apply(base, row, limit)

    def _step_aside(self, head: int, changes: int) -> None:
        self.stale, self._aside_head = True, head
        log.info("listing buckets: %d changes read at once (a burst: past %d; or the log pruned past them): stepping "
                 "aside, facets count in SQL until the change log is quiet", changes, self.burst_changes)  # fmt: skip

    async def _quiet(self, conn: Any) -> bool:
        """Whether the change log's head moved by at most a burst since the last probe (a refresh ago) or the
        step aside."""
        head = int(await conn.fetchval(statement("engine/facets", "stock_log_head").sql))
        moved = head - (head if self._aside_head is None else self._aside_head)
        self._aside_head = head
        if moved > self.burst_changes:
            return False
        log.info("listing buckets: the change log is quiet (%d changes since the last look): rebuilding", moved)
        return True

    async def load(self, conn: Any, sets: CandidateSets | None = None) -> None:
        """Every sellable listing's product and bucket, grouped by store, and the change log's state, in one
        snapshot. A role that may not read the log leaves the buckets unloaded (a minute until the next try).
        `sets`: candidate sets built from the same rows too (they hold the same listings' products), one read of
        the listings where two took ~7 s each at 10M listings (the supervisor's start-up)."""
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
        store_ids, packed_ids = [r["store_id"] for r in stores], [bytes(r["packed_ids"]) for r in stores]
        # The CPU of the builds in a thread (~3 s at 10M listings held the event loop in a rebuild while serving);
        # each swapped in at once. Meanwhile neither is loaded (or both stale): no request reads them.
        numbered = await asyncio.to_thread(number_listings, packed_ids)  # the same numbering as the sets'
        if sets is not None:
            places = [r["place"] for r in stores]
            sets.adopt(row, await asyncio.to_thread(built_sets, store_ids, packed_ids, numbered, places), started)
            started = time.perf_counter()
        buckets = [bytes(r["packed_buckets"]) for r in stores]
        self._install(await asyncio.to_thread(built_buckets, store_ids, packed_ids, buckets, numbered))
        self.snapshot, self.stale, self._aside_head = snapshot_of(row), False, None
        log.info("listing buckets: %d products, %d listings in %.2fs", self.n, len(self.packed),
                 time.perf_counter() - started)  # fmt: skip

    def _install(self, built: BuiltBuckets) -> None:
        self.store_code, self.keys, self.n, self.index, self.start, self.packed = built
        self._changed_rows, self._over_rows, self._over = (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.int32),)


class BuiltBuckets(NamedTuple):
    """What `StockBuckets._install` swaps in."""

    store_code: dict[UUID, int]
    keys: np.ndarray
    n: int
    key_index: KeyIndex
    start: np.ndarray
    packed: np.ndarray


def built_buckets(
    store_ids: list[UUID], packed_ids: list[bytes], buckets: list[bytes], numbered: Numbered | None = None
) -> BuiltBuckets:
    """Every store's listings by product (store code and price bucket). CPU only: run in a thread."""
    unique, inverse = numbered or number_listings(packed_ids)  # as candidates.py numbers them
    codes = np.repeat(np.arange(len(store_ids), dtype=np.int32), [len(p) // 16 for p in packed_ids])
    entries = (codes << BUCKET_BITS) | np.frombuffer(b"".join(buckets), dtype=np.uint8).astype(np.int32)
    order = np.argsort(inverse, kind="stable")
    keys, n = np.ascontiguousarray(unique), len(unique)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(inverse, minlength=n), out=start[1:])
    store_code = {s: i for i, s in enumerate(store_ids)}
    return BuiltBuckets(store_code, keys, n, KeyIndex.rebuilt(keys, n), start, np.ascontiguousarray(entries[order]))


def _ranges(first: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which range, index) of every index in the ranges [first[i], stop[i]), range by range."""
    lengths = stop - first
    total = int(lengths.sum())
    which = np.repeat(np.arange(len(first)), lengths)
    return which, np.repeat(first - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(total)


class StorePlaces:
    """The places of the listing buckets' store codes, from the stores' places in memory (facet_distance.py)."""

    def __init__(self) -> None:
        self._for: tuple[Any, int] | None = None  # (the stores by code it was built for, the locator's loads)
        self.version: int | None = None  # the locator's stores' version they are of
        self.points = np.zeros((0, 3), dtype=np.float64)  # by store code; NaN: a store the locator does not hold
        self.ids = np.zeros(0, dtype=object)  # by store code

    def of(self, order: StoreOrder, places: StoreLocator) -> StorePlaces:
        """These places for the buckets' stores by code (`order`, kept current by its `of`), rebuilt when they or
        the locator moved."""
        held = self._for
        if held is not None and held[0] is order.ids and held[1] == places.loads:
            return self
        at, version = places.index_of_ids(), places.version
        where = np.array([at.get(store_id, -1) for store_id in order.ids.tolist()], dtype=np.int64)
        points = np.full((len(where), 3), np.nan)
        points[where >= 0] = places.points[where[where >= 0]]
        self._for, self.points, self.ids, self.version = (order.ids, places.loads), points, order.ids, version
        return self
