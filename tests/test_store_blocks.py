"""Unions of nearby stores' candidate sets (engine/store_blocks.py): a scope's union and listing count are the
stores' own, whichever blocks and groups are whole in it, before and after listing changes."""

from __future__ import annotations

import time
import uuid

import numpy as np
from pyroaring import BitMap

from search_service.engine.candidates import PAIR_BYTES, CandidateSets, built_sets
from search_service.engine.store_blocks import BLOCK_STORES, GROUP_BLOCKS

STATE = {"change_seq": 0, "snap_xmax": 1, "snap_xip": []}


def built(rng: np.random.Generator, stores: int, products: int) -> tuple[CandidateSets, list[uuid.UUID], list[bytes]]:
    """Sets of `stores` stores, each selling a random ~2 % of `products` products, ordered by a made-up place."""
    store_ids = [uuid.UUID(int=int(rng.integers(1 << 62))) for _ in range(stores)]
    product_ids = [uuid.UUID(int=int(rng.integers(1 << 62)) << 64 | k).bytes for k in range(products)]
    packed = [b"".join(product_ids[p] for p in rng.choice(products, products // 50, replace=False)) for _ in store_ids]
    places = [f"{rng.integers(1000):03d}" for _ in store_ids]
    sets = CandidateSets()
    sets.adopt(STATE, built_sets(store_ids, packed, None, places), time.perf_counter())
    return sets, store_ids, product_ids


def naive(sets: CandidateSets, scope: list[uuid.UUID]) -> tuple[BitMap, int]:
    own = [sets.stores[s] for s in dict.fromkeys(scope) if s in sets.stores]  # a store once
    return BitMap.union(*own) if own else BitMap(), sum(len(b) for b in own)


def scopes(rng: np.random.Generator, sets: CandidateSets, store_ids: list[uuid.UUID]) -> list[list[uuid.UUID]]:
    """Scopes that hold whole groups, whole blocks, parts of blocks, unknown stores and repeats."""
    by_block = [s for block in sets.blocks.blocks for s in block]
    group = BLOCK_STORES * GROUP_BLOCKS
    return [
        by_block[:group] + by_block[group + 3 : group + 30],
        [*by_block[5 : 5 + 3 * BLOCK_STORES], uuid.uuid4()],
        list(rng.choice(np.array(store_ids, dtype=object), len(store_ids) // 2, replace=False)),
        store_ids + store_ids[:10],
        [],
    ]


def test_a_scopes_union_is_its_stores_own_before_and_after_changes() -> None:
    rng = np.random.default_rng(7)
    sets, store_ids, product_ids = built(rng, 3 * BLOCK_STORES * GROUP_BLOCKS + 5, 4000)
    assert len(sets.blocks.groups) == 4 and sum(len(b) for b in sets.blocks.blocks) == len(store_ids)
    for scope in scopes(rng, sets, store_ids):
        got, want = sets.in_scope(scope), naive(sets, scope)
        assert got.products == want[0] and got.listings == want[1]
    whole = sets.blocks.blocks[0]
    parts, _ = sets.blocks.parts(by_group := [s for b in sets.blocks.blocks[:GROUP_BLOCKS] for s in b], sets.stores)
    assert len(parts) == 1 and len(by_group) == BLOCK_STORES * GROUP_BLOCKS  # a whole group: its one union
    assert len(sets.blocks.parts(whole, sets.stores)[0]) == 1  # a whole block: its union
    # changes: products leaving every store of a block, leaving one store of several, arriving; a new store
    newcomer = uuid.uuid4()
    pairs = []
    for product in product_ids[:300]:
        for store in [*whole, *rng.choice(np.array(store_ids, dtype=object), 5)]:
            pairs.append(store.bytes + product + bytes([int(rng.integers(2))]))
    pairs += [store.bytes + product + b"\x00" for product in product_ids[300:310] for store in by_group]  # gone
    pairs += [newcomer.bytes + product_ids[0] + b"\x01", whole[0].bytes + product_ids[-1] + b"\x01"]
    packed = b"".join(pairs)
    assert len(packed) == len(pairs) * PAIR_BYTES
    sets._apply_pairs(packed)
    for scope in [*scopes(rng, sets, store_ids), [*whole, newcomer], by_group]:
        got, want = sets.in_scope(scope), naive(sets, scope)
        assert got.products == want[0] and got.listings == want[1]
    for b, block in enumerate(sets.blocks.blocks):  # each union is its stores' union, exactly
        assert sets.blocks.unions[b] == BitMap.union(*(sets.stores[s] for s in block))
        assert sets.blocks.listings[b] == sum(len(sets.stores[s]) for s in block)
    for g, group in enumerate(sets.blocks.groups):
        assert sets.blocks.group_unions[g] == BitMap.union(*(sets.blocks.unions[b] for b in group))


def test_stores_without_places_still_make_exact_blocks() -> None:
    rng = np.random.default_rng(8)
    store_ids = [uuid.uuid4() for _ in range(40)]
    packed = [b"".join(uuid.uuid4().bytes for _ in range(20)) for _ in store_ids]
    sets = CandidateSets()
    sets.adopt(STATE, built_sets(store_ids, packed, None, [None] * 40), time.perf_counter())
    for scope in (store_ids, store_ids[:8], list(rng.choice(np.array(store_ids, dtype=object), 17))):
        got, want = sets.in_scope(scope), naive(sets, scope)
        assert got.products == want[0] and got.listings == want[1]
