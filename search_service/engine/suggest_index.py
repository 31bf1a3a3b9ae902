"""The suggestion index: every active product's name, brand, category and words, sorted for prefix lookups.

Built from one snapshot (`index_products`, `index_groups` in suggest.sql) and then read only; `suggest_scope.py`
answers a suggestion from it and the candidate sets (candidates.py) with one statement. Rows are the products in
the order of the name completions (plinqy_caseless(name) in byte order, then id, as the SQL plans order them), so
the names starting with a prefix are one range of rows, found by binary search on their first `KEY_BYTES` bytes.
Brands, categories and words keep, per key, their rows (int32, CSR). A product changed after the snapshot (any
stamp past `since`) is read again by every suggestion (the overlay) until a rebuild, which the API's refresh does
when the overlay grows past `rebuild_after` or the category table changed, no sooner than REBUILD_GAP times the
last build's time after it. A build runs in a thread and is swapped in at once.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from pyroaring import BitMap

from search_service.db.sql import statement
from search_service.engine.candidates import CandidateSets
from search_service.engine.keyindex import KeyIndex, ids_from_keys
from search_service.engine.session import Conn

log = logging.getLogger(__name__)

KEY_BYTES = 32  # bytes of each lower-cased name the binary search compares; longer prefixes are checked in full
# A due rebuild waits this many times the last build's time after it (at most ~1/6 of a backend a process): a
# build reads the whole catalogue (~5-9 s of PostgreSQL at 100k products, in every API process), and text that
# keeps changing would otherwise have each process rebuild back to back (measured with the vectors' writes that
# stamped products before migration 0022: 10 builds a minute, 83 s of PostgreSQL CPU a minute on 2 cores).
# Meanwhile the overlay answers, and past OVERLAY_CAP the statements (~14 ms of PostgreSQL a suggestion at 100k).
REBUILD_GAP = 5.0


class PackedStrings:
    """Strings by row in one UTF-8 blob and its offsets (a list of a million str objects costs ~60 MB more)."""

    def __init__(self, strings: list[str]) -> None:
        encoded = [s.encode() for s in strings]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=self.offsets[1:])
        self.blob = b"".join(encoded)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, row: int) -> str:
        return self.blob[self.offsets[row] : self.offsets[row + 1]].decode()


class Groups:
    """Sorted keys (byte order, as Python compares str), each with its rows."""

    def __init__(self, keys: Sequence[str] | PackedStrings, rows: list[np.ndarray]) -> None:
        self.keys = keys
        self.offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=self.offsets[1:])
        self.rows = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, dtype=np.int32)

    def starting_with(self, prefix: str) -> Iterator[int]:
        """Positions of the keys that start with `prefix`, in order."""
        i = bisect.bisect_left(self.keys, prefix)
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            yield i
            i += 1

    def find(self, key: str) -> int | None:
        i = bisect.bisect_left(self.keys, key)
        return i if i < len(self.keys) and self.keys[i] == key else None

    def rows_of(self, i: int) -> np.ndarray:
        return self.rows[self.offsets[i] : self.offsets[i + 1]]

    def held(self, i: int, mask: np.ndarray) -> bool:
        """Whether a row of key `i` is in `mask`."""
        return bool(mask[self.rows_of(i)].any())


@dataclass(frozen=True)
class CategoryTree:
    names: dict[int, str]
    folded_names: dict[int, str]  # plinqy_fold(name): case and accents folded, as completions match them
    parents: dict[int, int | None]
    state: tuple[Any, Any]  # (row count, newest stamp) of the category table

    def ancestors(self, category_id: int) -> list[int]:
        """The category and its ancestors (a cycle ends it)."""
        chain: list[int] = []
        current: int | None = category_id
        while current is not None and current in self.parents and current not in chain:
            chain.append(current)
            current = self.parents[current]
        return chain


def _packed_rows(blob: bytes | None) -> np.ndarray:
    return np.frombuffer(blob or b"", dtype=">i4").astype(np.int32)


class SuggestIndex:
    """See the module. Not loaded: suggestions take the statement plans."""

    def __init__(self, margin_s: float = 60.0, rebuild_after: int = 200, rebuild_gap: float = REBUILD_GAP) -> None:
        self.margin = dt.timedelta(seconds=margin_s)
        self.rebuild_after = rebuild_after
        self.rebuild_gap = rebuild_gap
        self.next_build_at = 0.0  # time.monotonic() before which a due rebuild waits (REBUILD_GAP)
        self.n = 0
        self.keys = np.zeros((0, 2), dtype=np.uint64)
        self.key_index = KeyIndex()
        self.name_keys = np.zeros(0, dtype=f"S{KEY_BYTES}")
        self.names = PackedStrings([])
        self.lower_names = PackedStrings([])  # plinqy_caseless(name): lower(), `ı` and `ß` folded
        self.brands = Groups([], [])  # keyed by plinqy_fold(brand): case and accents folded, as the filter reads it
        self.spellings: list[str] = []  # per position of `brands`: the brand as stored
        self.words = Groups([], [])
        self.lexemes = Groups([], [])  # every lexeme of search_tsv (description's too), keys packed
        self.categories = Groups([], [])  # keyed by plinqy_fold(name), as brands; `category_ids`: each position's id
        self.category_ids: list[int] = []
        self.tree = CategoryTree({}, {}, {}, (None, None))
        self.since = dt.datetime.min.replace(tzinfo=dt.UTC)
        self.loaded = False
        self.rebuild_due = False
        self.generation = 0  # counts builds: what a caller derived from the rows is void after one
        self.scopes = ScopeCache()

    def with_lexemes(self, lexemes: list[str]) -> np.ndarray:
        """Mask of the rows whose search_tsv holds every one of `lexemes` (a tsquery of them ANDed)."""
        mask = np.ones(self.n, dtype=bool)
        for lexeme in lexemes:
            i = self.lexemes.find(lexeme)
            held = np.zeros(self.n, dtype=bool)
            if i is not None:
                held[self.lexemes.rows_of(i)] = True
            mask &= held
        return mask

    def ids(self, rows: list[int]) -> list[str]:
        return [str(i) for i in ids_from_keys(self.keys[np.asarray(rows, dtype=np.int64)])] if rows else []

    def name_range(self, prefix: str) -> tuple[int, int]:
        """Rows whose lower-cased name may start with `prefix` (exactly those when it has ≤ KEY_BYTES bytes)."""
        key = prefix.encode()[:KEY_BYTES]
        lo = int(np.searchsorted(self.name_keys, np.bytes_(key), side="left"))
        hi = int(np.searchsorted(self.name_keys, np.bytes_(key.ljust(KEY_BYTES, b"\xff")), side="right"))
        return lo, hi

    @property
    def build_wanted(self) -> bool:
        """Never built, or found due by a suggestion (see the module) and past the gap since the last build."""
        return not self.loaded or (self.rebuild_due and time.monotonic() >= self.next_build_at)

    async def refresh(self, conn: Conn) -> None:
        if self.build_wanted:
            await self.load(conn)

    async def load(self, conn: Conn) -> None:
        started = time.perf_counter()
        horizon_row = (
            None if conn.is_in_transaction() else await conn.fetchrow(statement("engine/vectors", "write_horizon").sql)
        )
        groups: dict[str, tuple[list[Any], list[Any], list[np.ndarray]]] = {}
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            head = await conn.fetchrow(statement("engine/suggest", "index_products").sql)
            async for r in conn.cursor(statement("engine/suggest", "index_groups").sql, prefetch=2000):
                keys, extra, rows = groups.setdefault(r["kind"], ([], [], []))
                keys.append(r["key"] if r["kind"] != "category" else int(r["category_id"]))
                extra.append(r["spelling"])
                rows.append(_packed_rows(r["packed_rows"]))
        assert head is not None
        # Built in a thread (the loop keeps answering: ~0.13 s at 100k products, a stall of that length before),
        # then swapped in at once on the loop, so no suggestion sees half of one build and half of another.
        self.__dict__.update(await asyncio.to_thread(_built, head, groups))
        since = dt.datetime.min.replace(tzinfo=dt.UTC)
        if head["watermark"] is not None:
            since = head["watermark"] - self.margin
        if horizon_row is not None and horizon_row["complete"]:
            since = max(since, horizon_row["horizon"] - dt.timedelta(microseconds=1))
        self.since, self.loaded, self.rebuild_due = since, True, False
        self.generation += 1
        took = time.perf_counter() - started
        self.next_build_at = time.monotonic() + self.rebuild_gap * took
        log.info("suggestion index: %d products built in %.2fs", self.n, took)


def _built(head: Any, groups: dict[str, tuple[list[Any], list[Any], list[np.ndarray]]]) -> dict[str, Any]:
    """The index's arrays from one snapshot (`load`), as the attributes they replace."""
    packed = bytes(head["packed_ids"])
    keys = np.frombuffer(packed, dtype=">u8").reshape(-1, 2).astype(np.uint64)
    lower = head["lower_names"] or []
    ids = [int(i) for i in head["category_ids"] or []]
    tree = CategoryTree(
        dict(zip(ids, head["category_names"] or [], strict=True)),
        dict(zip(ids, head["category_folded_names"] or [], strict=True)),
        {i: None if p is None else int(p) for i, p in zip(ids, head["category_parents"] or [], strict=True)},
        (head["category_count"], head["category_newest"]),
    )
    empty: tuple[list[Any], list[Any], list[np.ndarray]] = ([], [], [])
    brands, spellings, brand_rows = groups.get("brand", empty)
    lexemes, _none, lexeme_rows = groups.get("lexeme", empty)
    category_ids, _none, category_rows = groups.get("category", empty)
    categories, category_order = _subtree_groups(tree, dict(zip(category_ids, category_rows, strict=True)))
    return {
        "keys": keys,
        "n": len(keys),
        "key_index": KeyIndex.rebuilt(keys, len(keys)),
        "name_keys": np.array([s.encode()[:KEY_BYTES] for s in lower], dtype=f"S{KEY_BYTES}"),
        "names": PackedStrings(head["names"] or []),
        "lower_names": PackedStrings(lower),
        "tree": tree,
        "brands": Groups(brands, brand_rows),
        "spellings": spellings,
        "words": Groups(*groups.get("word", empty)[::2]),
        "lexemes": Groups(PackedStrings(lexemes), lexeme_rows),
        "categories": categories,
        "category_ids": category_order,
    }


def _subtree_groups(tree: CategoryTree, own: dict[int, np.ndarray]) -> tuple[Groups, list[int]]:
    """Each category with the rows of its subtree (a product counts for its category's ancestors), in the order
    of the categories' folded names, and the category ids in that order."""
    subtree: dict[int, list[np.ndarray]] = {c: [] for c in tree.parents}
    for category, rows in own.items():
        for c in tree.ancestors(category):
            subtree[c].append(rows)
    order = sorted((tree.folded_names[c], c) for c in subtree)
    groups = Groups(
        [folded for folded, _c in order],
        [np.unique(np.concatenate(subtree[c])) if subtree[c] else np.zeros(0, np.int32) for _f, c in order],
    )
    return groups, [c for _folded, c in order]


class ScopeCache:
    """Per (index, candidate sets): the map from candidate ordinals to index rows, and the global scope's mask."""

    def __init__(self) -> None:
        self.map_key: tuple[Any, ...] | None = None
        self.row_of: np.ndarray = np.zeros(0, dtype=np.int64)
        self.global_key: tuple[Any, ...] | None = None
        self.global_products = BitMap()
        self.global_mask: np.ndarray = np.zeros(0, dtype=bool)

    def rows_of_ordinals(self, index: SuggestIndex, sets: CandidateSets) -> np.ndarray:
        """Row in the index of every ordinal (-1: not an active product of the index)."""
        key = (index.generation, sets.stores)
        if self.map_key is not None and self.map_key[0] == key[0] and self.map_key[1] is key[1]:
            done = len(self.row_of)
            if done < sets.n:
                more = index.key_index.find(index.keys, index.n, sets.keys[done : sets.n])
                self.row_of = np.concatenate([self.row_of, more])
            return self.row_of
        self.row_of = index.key_index.find(index.keys, index.n, sets.keys[: sets.n])
        self.map_key = key
        return self.row_of

    def mask(self, index: SuggestIndex, sets: CandidateSets, products: BitMap) -> np.ndarray:
        row_of = self.rows_of_ordinals(index, sets)
        ordinals = np.frombuffer(products.to_array(), dtype=np.uint32)
        rows = row_of[ordinals]
        mask = np.zeros(index.n, dtype=bool)
        mask[rows[rows >= 0]] = True
        return mask

    def global_scope(self, index: SuggestIndex, sets: CandidateSets, inactive: list[UUID]) -> tuple[BitMap, np.ndarray]:
        """The products in stock at any active store, and their mask (kept while no set changed)."""
        key = (index.generation, id(sets.stores), sets.applied_changes, sets.n, tuple(sorted(inactive)))
        if key != self.global_key:
            skip = set(inactive)
            bitmaps = [b for s, b in sets.stores.items() if s not in skip]
            self.global_products = BitMap.union(*bitmaps) if bitmaps else BitMap()
            self.global_mask = self.mask(index, sets, self.global_products)
            self.global_key = key
        return self.global_products, self.global_mask
