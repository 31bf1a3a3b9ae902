"""The order a chunk's items apply in, as if sent one by one (mapping.apply_rows): rounds of one row a SKU, and
repeats answered without a round of their own.

Items of a listing batch (or a delivery) that repeat the item before them word for word: a client's retries, a
till sending one item's level again. Applied one by one, the second of such a run sees what the first did, and when
it changes nothing, every later repeat sees the same and gets the same answer (a fixed point). Each was mapped in
a round of its own anyway (a savepoint, a lookup, the writes; every write of the listing left one more version of
its row for the later probes of it to walk): 1,000 items of one SKU took seconds, quadratic in the repeats. They are
now answered as the second, which must then have written nothing, else the chunk is mapped again item by item."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from search_service.ingest.rows import trimmed

Items = Sequence[tuple[int, Any]]


def rounds_of(items: Sequence[tuple[int, Any]]) -> list[list[tuple[int, Any]]]:
    """A SKU once per round, each SKU's rows in order; an upsert naming a GTIN in no earlier round than a row before
    it that can move a product between listings (any op but stock; in one round it is DEFERRED), as one by one."""
    rounds: list[list[tuple[int, Any]]] = []
    last: dict[Any, int] = {}  # each SKU's latest round
    holders_changed = -1  # the latest round of a row before this one that can move a product between listings
    for item in items:
        payload = item[1] if isinstance(item[1], dict) else {}
        sku = trimmed(str(payload.get("sku")))
        op = payload.get("op") or "upsert"
        index = last.get(sku, -1) + 1
        if op == "upsert" and payload.get("gtin") not in (None, ""):
            index = max(index, holders_changed)
        if op != "stock":
            holders_changed = max(holders_changed, index)
        last[sku] = index
        rounds.extend([] for _ in range(index + 1 - len(rounds)))
        rounds[index].append(item)
    return rounds


def repeats_of(items: Items) -> dict[int, int]:
    """Each repeat answered as an earlier item (its key → that item's key): the third and later of a run of equal
    payloads. One naming a GTIN only where every item has one SKU: another SKU's rows can move a GTIN's product
    between listings, in rounds of their own (rounds_of), between the second and the third."""
    one_sku = len({trimmed(str(p.get("sku"))) if isinstance(p, dict) else None for _, p in items}) == 1
    found: dict[int, int] = {}
    for (_, first), (second, payload), (key, repeat) in zip(items, items[1:], items[2:], strict=False):
        if (
            isinstance(repeat, dict)
            and repeat == payload == first
            and word_for_word(repeat, payload)
            and word_for_word(payload, first)
            and (one_sku or repeat.get("gtin") in (None, ""))
        ):
            found[key] = found.get(second, second)
    return found


def word_for_word(a: Any, b: Any) -> bool:
    """Two equal payloads (`==`) that are equal in their JSON types too: Python's `==` has `true == 1 == 1.0`, and
    a row with `"quantity": true` is rejected where one with `1` is mapped."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return all(word_for_word(value, b[key]) for key, value in a.items())
    if isinstance(a, list):
        return all(word_for_word(x, y) for x, y in zip(a, b, strict=True))
    return True


class _SecondWrote(Exception):
    """A run's second item changed something: the later ones may not end as it did."""


async def apply_repeating(
    conn: Any, items: Items, apply: Callable[[Items], Awaitable[dict[int, Any]]]
) -> dict[int, Any]:
    """`apply` (mapping's rounds) over the items less the repeats, which take the answer of their run's second
    item; in a savepoint, rolled back and mapped whole when a second item wrote something (its changed flag)."""
    repeats = repeats_of(items)
    if not repeats:
        return await apply(items)
    try:
        async with conn.transaction():
            results = await apply([item for item in items if item[0] not in repeats])
            if any(results[key].status == "mapped" and results[key].changed for key in set(repeats.values())):
                raise _SecondWrote
    except _SecondWrote:
        return await apply(items)
    results.update({key: dataclasses.replace(results[second]) for key, second in repeats.items()})
    return results
