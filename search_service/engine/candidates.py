"""Per store, the products it has in stock: roaring bitmaps in the API's memory, kept exact by the listings' changes.

A search near a point takes the union of the bitmaps of the active stores in its radius: the products in scope,
counted exactly (the plan choice routes on that count) and handed to the gather plan as rows of the vector copy,
without a statement listing them (`listed_products` read every listing in the radius: 26k at 2 km, ~5 ms).

- **Ordinals.** A bitmap holds product ordinals: rows of this module's own id table (`keys`, 16 bytes a product,
  looked up with `keyindex.KeyIndex`), numbered once per process and never changed, so the vector copy's row
  numbers (which a new shared generation may reorder) never leak into the sets. `rows_in_copy` maps ordinals to
  the copy's rows through an array it recomputes when the copy's view changes (`RowMap`). Ordinals number the ids
  in order, as a generation lists its rows: the rows then come out sorted without a sort.
- **Blocks.** The union takes the prebuilt unions of blocks of nearby stores wholly in scope (store_blocks.py).
- **Exact.** Triggers on store_product log the listings whose sellable state (active, quantity > 0) may have
  changed (`listing_change`, migration 0012), with their transaction id. `search_context` reads, in the search's
  own snapshot, the pairs logged since the sets' snapshot (numbered past the highest seen, or written by a
  transaction that was still running then) with their current state, and the snapshot itself; the search applies
  them before it takes the union. So a stock change is in the very next search's sets. Batches arrive out of
  order under concurrency: one applies only when it was read from the sets' current snapshot or an older one and
  in a newer one (`Snapshot.covers`); otherwise the sets are already at least as new as that search's snapshot.
- **Rebuild** (start-up, and when a reader fell behind: more than `max_changes` changes at once, or rows pruned
  before it read them): every sellable listing, grouped by store, in one repeatable-read snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import asyncpg
import numpy as np
from pyroaring import BitMap

from search_service.db.sql import statement
from search_service.engine.keyindex import KeyIndex
from search_service.engine.session import Conn
from search_service.engine.store_blocks import StoreBlocks

if TYPE_CHECKING:
    from search_service.engine.vectors import VectorCache

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
PAIR_BYTES = 33  # a change: store id, product id (16 bytes each), sellable (1 byte)
NO_CHANGES: Mapping[str, Any] = MappingProxyType({"since_seq": None, "pending": [], "max_changes": 0})  # none read


@dataclass(frozen=True)
class Snapshot:
    """What a PostgreSQL snapshot saw of the change log: its highest number, and its transaction horizon."""

    seq: int  # highest listing_change.seq visible (0: none)
    xmax: int  # transactions from this id on had not started
    xip: tuple[int, ...]  # transactions in progress

    def covers(self, other: Snapshot) -> bool:
        """Whether every transaction `other` saw committed, this one saw committed too."""
        if self.xmax < other.xmax:
            return False
        theirs = set(other.xip)
        return all(x >= other.xmax or x in theirs for x in self.xip)


def snapshot_of(row: Any) -> Snapshot:
    return Snapshot(int(row["change_seq"] or 0), int(row["snap_xmax"]), tuple(int(x) for x in row["snap_xip"]))


class Numbered(NamedTuple):
    """The products of listings packed store by store, numbered in key order."""

    unique: np.ndarray  # (n, 2) uint64 keys, sorted
    inverse: np.ndarray  # (listings,) int64: each listing's product, a row of `unique`


def number_listings(packed: list[bytes]) -> Numbered:
    """All at once: one sort of every listing's product. The first halves of the ids order them; a clash of
    first halves takes the slower full sort."""
    keys = keys_of_packed(b"".join(packed))
    unique_first, inverse = np.unique(keys[:, 0], return_inverse=True)
    firsts = np.full(len(unique_first), -1, dtype=np.int64)
    firsts[inverse] = np.arange(len(keys))
    unique = keys[firsts]
    if not np.array_equal(unique[inverse, 1], keys[:, 1]):  # two ids share their first 8 bytes
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    return Numbered(unique, np.asarray(inverse, dtype=np.int64).reshape(-1))


class BuiltSets(NamedTuple):
    """What `CandidateSets.adopt` swaps in."""

    n: int
    keys: np.ndarray  # with room past n (see facet_labels.load)
    key_index: KeyIndex
    stores: dict[UUID, BitMap]
    blocks: StoreBlocks


def built_sets(
    store_ids: list[UUID], packed: list[bytes], numbered: Numbered | None, places: list[str | None] | None
) -> BuiltSets:
    """The sets of every store's listings (ordinals numbered in key order, `number_listings`, then a bitmap a
    store) and their blocks (`places`: the stores' geohashes, which order them). CPU only: run in a thread."""
    unique, inverse = numbered or number_listings(packed)
    ordinals = inverse.astype(np.uint32)
    n = len(unique)
    keys = np.zeros((n + max(1024, n // 16), 2), dtype=np.uint64)
    keys[:n] = unique
    stores, start = {}, 0
    for store, blob in zip(store_ids, packed, strict=True):
        stop = start + len(blob) // 16
        stores[store] = BitMap(np.sort(ordinals[start:stop]).data)  # a buffer: ~4x faster than an array
        start = stop
    order = store_ids if places is None else by_place(store_ids, places)
    return BuiltSets(n, keys, KeyIndex.rebuilt(keys, n), stores, StoreBlocks(stores, order))


@dataclass(frozen=True)
class InScope:
    """The products in stock at the stores of one search's scope."""

    products: BitMap  # ordinals
    listings: int  # in-stock listings at those stores (the sum of their bitmaps' sizes)


def keys_of_packed(packed: bytes) -> np.ndarray:
    """(k, 2) uint64 keys (keyindex.py) of ids packed 16 bytes each, as uuid_send gives them."""
    return np.frombuffer(packed, dtype=">u8").reshape(-1, 2).astype(np.uint64)


class CandidateSets:
    """The in-stock products of every store (module docstring). Not loaded: searches run without it."""

    def __init__(self, max_changes: int = 20000) -> None:
        self.max_changes = max_changes
        self.keys = np.zeros((0, 2), dtype=np.uint64)
        self.n = 0  # ordinals in use
        self.index = KeyIndex()
        self.stores: dict[UUID, BitMap] = {}
        self.blocks = StoreBlocks({}, [])  # unions of nearby stores' sets (store_blocks.py)
        self.snapshot: Snapshot | None = None  # None: not loaded
        self.stale = False  # a rebuild is due (a refresh does it)
        self.applied_changes = 0
        self._map: RowMap | None = None  # the copy's row of each ordinal (`_row_map`)
        self._retry_at = 0.0  # time.monotonic() from which a failed load is tried again
        self._prune_at = time.monotonic() + PRUNE_EVERY_S

    @property
    def loaded(self) -> bool:
        return self.snapshot is not None and not self.stale

    def read_args(self) -> dict[str, Any]:
        """search_context's arguments for the changes since the sets' snapshot (since_seq None: none read)."""
        snap = self.snapshot if self.loaded else None
        if snap is None:
            return dict(NO_CHANGES)
        return {"since_seq": snap.seq, "pending": list(snap.xip), "max_changes": self.max_changes}

    # --- ordinals
    def ordinals_of(self, keys: np.ndarray) -> np.ndarray:
        """The ordinal of each key, numbering the ones not seen yet."""
        found = self.index.find(self.keys, self.n, keys)
        new = np.flatnonzero(found < 0)
        if len(new):
            fresh, first = np.unique(keys[new], axis=0, return_inverse=True)
            self._reserve(self.n + len(fresh))
            self.keys[self.n : self.n + len(fresh)] = fresh
            found[new] = self.n + np.asarray(first).reshape(-1)
            self.n += len(fresh)
            if self.index.tail_rows(self.n) > max(4096, self.n // 32):
                self.index = KeyIndex.rebuilt(self.keys, self.n)
        return found

    def _reserve(self, need: int) -> None:
        if need > len(self.keys):
            grown = np.zeros((max(need, int(len(self.keys) * 1.25) + 1024), 2), dtype=np.uint64)
            grown[: self.n] = self.keys[: self.n]
            self.keys = grown

    # --- changes
    def apply(self, base: Snapshot | None, row: Any) -> bool:
        """Apply the changes a statement read (its `change_*` and `snap_*` columns) from the sets' snapshot
        `base`. True when the sets now hold at least that statement's snapshot (the search may use them)."""
        current = self.snapshot
        if base is None or current is None or self.stale:
            return False
        seen = snapshot_of(row)
        behind = int(row["change_count"]) > self.max_changes or int(row["change_pruned"]) > base.seq
        if behind or seen.seq < base.seq:  # fell behind, or the log was emptied (TRUNCATE … RESTART IDENTITY)
            self.stale = True  # the next refresh rebuilds
            return False
        if not (current.covers(base) and seen.covers(current)):
            return current.covers(seen)  # an older read: the sets are newer than its snapshot already
        packed = row["change_pairs"] or b""
        if packed:
            self._apply_pairs(packed)
        self.snapshot = seen
        return True

    def _apply_pairs(self, packed: bytes) -> None:
        pairs = np.frombuffer(packed, dtype=np.uint8).reshape(-1, PAIR_BYTES)
        ordinals = self.ordinals_of(keys_of_packed(pairs[:, 16:32].tobytes()))
        for i, store in enumerate(UUID(bytes=pairs[i, :16].tobytes()) for i in range(len(pairs))):
            bitmap = self.stores.get(store)
            if bitmap is None:
                bitmap = self.stores[store] = BitMap()
            ordinal = int(ordinals[i])
            if pairs[i, 32] and ordinal not in bitmap:
                bitmap.add(ordinal)
                self.blocks.added(store, ordinal)
            elif not pairs[i, 32] and ordinal in bitmap:
                bitmap.discard(ordinal)
                self.blocks.removed(store, ordinal, self.stores)
        self.applied_changes += len(pairs)

    async def refresh(self, conn: Conn) -> None:
        """Rebuild when due (or never loaded), else apply the changes since the sets' snapshot; and every
        PRUNE_EVERY_S, delete the log's rows older than PRUNE_KEEP (every process reads it each second)."""
        if time.monotonic() >= self._prune_at and self.loaded:
            self._prune_at = time.monotonic() + PRUNE_EVERY_S
            await conn.execute(statement("engine/search", "prune_listing_changes").sql)
        if self.snapshot is None or self.stale:
            if time.monotonic() >= self._retry_at:
                await self.load(conn)
            return
        stmt = statement("engine/search", "listing_changes")
        base = self.snapshot
        row = await conn.fetchrow(stmt.sql, *stmt.bind(**self.read_args()))
        self.apply(base, row)
        if self.stale:
            await self.load(conn)

    async def load(self, conn: Conn) -> None:
        """Every sellable listing, grouped by store, and the change log's state, in one snapshot. A database that
        does not let this role read them (or lacks the log: behind migration 0012) leaves the sets unloaded, and
        searches list the products in SQL as before; a refresh tries again a minute later."""
        started = time.perf_counter()
        state, by_store = (statement("engine/search", n) for n in ("candidate_sets_state", "in_stock_by_store"))
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                row = await conn.fetchrow(state.sql)
                stores = await conn.fetch(by_store.sql)
        except (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedTableError) as exc:
            log.warning("candidate sets: not loaded (%s); searches list their products in SQL", exc)
            self._retry_at = time.monotonic() + 60.0
            return
        store_ids, packed = [r["store_id"] for r in stores], [bytes(r["packed_ids"]) for r in stores]
        # Built in a thread: at 10M listings ~2 s of CPU that held the event loop (every request of the process)
        # when a rebuild came while serving. Meanwhile the sets are not loaded, or stale: searches do not read them.
        built = await asyncio.to_thread(built_sets, store_ids, packed, None, [r["place"] for r in stores])
        self.adopt(row, built, started)

    def adopt(self, state: Any, built: BuiltSets, started: float) -> None:
        """The sets `built` from every sellable listing's product by store and the change log's `state`, read in
        one snapshot (by `load`, or by the listing buckets' load, which reads the same listings and numbers them
        once for both: facet_stock.py). Swapped in at once (on the event loop, no await in between)."""
        self.n, self.keys, self.index, self.stores, self.blocks = built
        self._map = None
        self.snapshot, self.stale = snapshot_of(state), False
        log.info(
            "candidate sets: %d stores, %d products, %d listings in stock, built in %.2fs",
            len(self.stores),
            self.n,
            sum(len(b) for b in self.stores.values()),
            time.perf_counter() - started,
        )

    # --- reading
    async def brought_current(self, conn: Conn, store_ids: list[UUID] | None, in_stock: bool) -> bool:
        """The changes up to now applied, for a search whose scope came from another statement than search_context
        (the UX path's bbox and delivery scopes): True when the sets may answer it (their union is taken when a plan
        asks: `Scope.products_in_scope`); False for a global scope, in_stock off, sets not loaded or behind."""
        if store_ids is None or not in_stock or not self.loaded:
            return False
        stmt = statement("engine/search", "listing_changes")
        base = self.snapshot
        row = await conn.fetchrow(stmt.sql, *stmt.bind(**self.read_args()))
        return self.apply(base, row)

    def in_scope(self, store_ids: list[UUID]) -> InScope:
        bitmaps, listings = self.blocks.parts(store_ids, self.stores)
        return InScope(BitMap.union(*bitmaps) if bitmaps else BitMap(), listings)

    def rows_in_copy(self, products: BitMap, vectors: VectorCache) -> np.ndarray:
        """The copy's rows of `products` (ordinals), sorted; products the copy does not hold are left out."""
        return self._row_map(vectors).rows_of(np.frombuffer(products.to_array(), dtype=np.uint32), vectors._view.n)

    def held_in(self, products: BitMap, vectors: VectorCache, rows: np.ndarray) -> np.ndarray:
        """Which of the copy's `rows` hold a product among `products` (ordinals: an `in_scope` union of these sets):
        a scan drops the others from a ranking's slice before its statement probes them one by one."""
        ordinals = self.index.find(self.keys, self.n, vectors._view.key[rows]).tolist()
        return np.fromiter((o >= 0 and o in products for o in ordinals), dtype=bool, count=len(ordinals))

    def _row_map(self, vectors: VectorCache) -> RowMap:
        """Row of every ordinal in the copy's current view (-1: not held), recomputed for the ordinals and rows
        added since, or wholly when the view is another (a shared generation may order its rows differently)."""
        view = vectors._view
        known = self._map
        if known is not None and known.view is view and known.rows == view.n and known.ordinals == self.n:
            return known
        if known is None or known.view is not view:
            row_of = view.index.find(view.key, view.n, self.keys[: self.n])
            in_order = rows_rise(row_of)
        else:
            row_of = np.concatenate([known.row_of, np.full(self.n - known.ordinals, -1, dtype=np.int64)])
            missing = np.flatnonzero(row_of < 0)
            found = view.index.find(view.key, view.n, self.keys[missing])
            row_of[missing] = found
            if np.any(found[missing < known.ordinals] >= 0):  # an older ordinal's row came (a product embedded)
                in_order = known.in_order and rows_rise(row_of)
            else:  # the rows of the older ordinals as before: do the new ones' rise on from them?
                in_order = known.in_order and rows_rise(np.concatenate([[known.last], row_of[known.ordinals :]]))
        self._map = RowMap(view, view.n, self.n, row_of, in_order, int(row_of.max(initial=-1)))
        return self._map


def by_place(store_ids: list[UUID], places: list[str | None]) -> list[UUID]:
    """The stores in their geohashes' order (a store without one last: "~" sorts after the base-32 digits)."""
    return [store for _, store in sorted(zip((p or "~" for p in places), store_ids, strict=True), key=lambda x: x[0])]


def rows_rise(row_of: np.ndarray) -> bool:
    """Whether the rows held (>= 0) rise with the ordinals."""
    held = row_of[row_of >= 0]
    return bool(np.all(held[1:] > held[:-1]))


@dataclass(frozen=True)
class RowMap:
    """The copy's row of each ordinal in one view of it. `in_order`: the rows held rise with the ordinals, as when
    the copy is a generation written in id order (vector_view.CopyView.export) and the sets' ordinals number the
    ids in order too (`number_listings`): a search's rows then come out of the map sorted."""

    view: object
    rows: int  # the view's rows
    ordinals: int
    row_of: np.ndarray  # int64, -1: not held
    in_order: bool
    last: int  # the highest row held (-1: none)

    def rows_of(self, ordinals: np.ndarray, n: int) -> np.ndarray:
        """The sorted rows of `ordinals` (sorted) that the view holds; n: the view's rows."""
        rows = self.row_of[ordinals]
        if self.in_order:
            return rows[rows >= 0]
        held = np.zeros(n, dtype=bool)  # sorted through a mask: ~3x faster than np.sort at 80k rows
        held[rows[rows >= 0]] = True
        return np.flatnonzero(held)
