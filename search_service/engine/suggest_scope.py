"""Suggestions for any scope from memory: the suggestion index (suggest_index.py) and the candidate sets.

One statement (`suggest_context`, search.sql) reads the stores in scope, the candidate sets' changes (applied
first, so a stock change is in the very next suggestion), the products changed since the index was built (the
overlay: they leave the index's rows and are judged from their fresh row), and, for a `query` completion after
earlier words, the lexemes `plinqy_simple` makes of them, also of their sizes glued as typed where they glue one
(`suggest_typed.glued_head`; the index holds every product's). The scope's products
(the union of its stores' sets; globally every store's but the inactive ones', cached until a set changes)
become a mask over the index's rows, and each kind walks its sorted keys from the prefix, testing them against
the mask, until it has its completions. The completions are the narrow plan's (suggest.sql) for any scope:
names, brands (one per brand with case and accents folded, its smallest spelling in scope), categories (folded
likewise; a product of the subtree in scope) and words of the products in scope, each in byte order. None: the
statement plans answer (index or sets not loaded or behind, an overlay past its cap, the category table changed, a
last word the parser splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np
from pyroaring import BitMap

from search_service.db.sql import statement
from search_service.engine.candidates import CandidateSets
from search_service.engine.keyindex import keys_of
from search_service.engine.suggest_index import KEY_BYTES, SuggestIndex
from search_service.engine.suggest_typed import glued_head, name_prefixes
from search_service.engine.text import fold_accents

OVERLAY_CAP = 1000  # changed products a suggestion judges itself; past it the statement plans answer
CHUNK = 4096  # rows of a name range tested at a time


@dataclass
class _Overlay:
    """The products stamped since the index was built, as the statement read them, that are active and in scope."""

    stale_rows: np.ndarray  # their rows in the index (excluded from its answers)
    items: list[dict[str, Any]] = field(default_factory=list)


def _overlay(index: SuggestIndex, sets: CandidateSets, row: Any, in_scope: BitMap) -> _Overlay:
    ids = list(row["overlay_ids"] or [])
    keys = keys_of(ids)
    stale = index.key_index.find(index.keys, index.n, keys)
    out = _Overlay(stale[stale >= 0])
    ordinals = sets.index.find(sets.keys, sets.n, keys) if ids else np.zeros(0, dtype=np.int64)
    for j in range(len(ids)):
        held = ordinals[j] >= 0 and int(ordinals[j]) in in_scope
        if not row["overlay_actives"][j] or not held:
            continue
        out.items.append({
            "id": ids[j], "name": row["overlay_names"][j], "lower_name": row["overlay_lower_names"][j],
            "brand": row["overlay_brands"][j], "folded_brand": row["overlay_folded_brands"][j],
            "category": row["overlay_categories"][j], "words": (row["overlay_words"][j] or "").split(),
            "lexemes": set((row["overlay_lexemes"][j] or "").split()),
        })  # fmt: skip
    return out


def _name_rows(index: SuggestIndex, mask: np.ndarray, prefix: str, want: int) -> list[int]:
    """The first `want` rows in scope whose caseless name starts with `prefix`, in row order."""
    lo, hi = index.name_range(prefix)
    rows: list[int] = []
    long = len(prefix.encode()) > KEY_BYTES  # the binary search compared the first KEY_BYTES only
    for start in range(lo, hi, CHUNK):
        hits = (np.flatnonzero(mask[start : min(hi, start + CHUNK)]) + start).tolist()
        rows += [r for r in hits if index.lower_names[r].startswith(prefix)] if long else hits
        if len(rows) >= want:
            break
    return rows[:want]


def _names(index: SuggestIndex, mask: np.ndarray, over: _Overlay, prefix: str, want: int) -> list[dict[str, Any]]:
    """The first `want` names starting with the prefix (either reading: `name_prefixes`), in (caseless name, id)
    order: the index's rows are in that order already; the overlay's are merged in."""
    prefixes = tuple(name_prefixes(prefix))  # caseless, as the names are keyed (`KIRMIZI`: Kırmızı)
    rows = sorted(r for p in prefixes for r in _name_rows(index, mask, p, want))[:want]
    found = [(index.names[r], ref) for r, ref in zip(rows, index.ids(rows), strict=True)]
    extra = [item for item in over.items if item["lower_name"].startswith(prefixes)]
    if extra:
        keyed = [
            (index.lower_names[r], index.keys[r].astype(">u8").tobytes(), *f) for r, f in zip(rows, found, strict=True)
        ]
        keyed += [(i["lower_name"], i["id"].bytes, i["name"], str(i["id"])) for i in extra]
        found = [(k[2], k[3]) for k in sorted(keyed, key=lambda k: (k[0], k[1]))[:want]]
    return [{"kind": "product", "label": label, "ref": ref, "ord": n} for n, (label, ref) in enumerate(found, 1)]


def _brands(index: SuggestIndex, mask: np.ndarray, over: _Overlay, prefix: str, lim: int) -> list[dict[str, Any]]:
    """Brands starting with the prefix, one per brand as its filter reads it (plinqy_fold: case and accents folded,
    so `chat` completes `Château`), its smallest spelling in scope, in byte order of the folded brand."""
    folded_prefix = fold_accents(prefix)
    spellings: dict[str, list[str]] = {}
    for i in index.brands.starting_with(folded_prefix):
        folded = index.brands.keys[i]
        if folded not in spellings and len(spellings) >= lim:
            break
        if index.brands.held(i, mask):
            spellings.setdefault(folded, []).append(index.spellings[i])
    for item in over.items:
        if item["folded_brand"] is not None and item["folded_brand"].startswith(folded_prefix):
            spellings.setdefault(item["folded_brand"], []).append(item["brand"])
    chosen = sorted(spellings)[:lim]
    return [
        {"kind": "brand", "label": min(spellings[k]), "ref": min(spellings[k]), "ord": n}
        for n, k in enumerate(chosen, 1)
    ]


def _categories(index: SuggestIndex, mask: np.ndarray, over: _Overlay, prefix: str, lim: int) -> list[dict[str, Any]]:
    """Categories starting with the prefix with a product of their subtree in scope, by (folded name, id): name and
    prefix folded as brands are (`éle` completes `Electronics`)."""
    extra = {a for item in over.items if item["category"] is not None for a in index.tree.ancestors(item["category"])}
    out: list[dict[str, Any]] = []
    for i in index.categories.starting_with(fold_accents(prefix)):
        c = index.category_ids[i]
        if c in extra or index.categories.held(i, mask):
            out.append({"kind": "category", "label": index.tree.names[c], "ref": str(c), "ord": len(out) + 1})
            if len(out) >= lim:
                break
    return out


def _terms(
    index: SuggestIndex, mask: np.ndarray, items: list[dict[str, Any]], head: str, last: str, lim: int
) -> list[dict[str, Any]]:
    """Words of the products in scope (mask, items: those with the earlier words) starting with the last word, each
    with the name of its first product in scope (`source`: the name spells the word, suggest_spelling.py)."""
    found: dict[str, str] = {}
    for i in index.words.starting_with(last):
        if len(found) >= lim:
            break
        rows = index.words.rows_of(i)
        held = rows[mask[rows]]
        if len(held):
            found[index.words.keys[i]] = index.names[int(held[0])]
    for item in items:
        for w in item["words"]:
            if w.startswith(last):
                found[w] = min(found.get(w, item["name"]), item["name"])
    return [
        {"kind": "query", "label": f"{head} {w}".strip(" "), "ref": None, "ord": n, "source": found[w]}
        for n, w in enumerate(sorted(found)[:lim], 1)
    ]


def _holding_head(
    index: SuggestIndex, mask: np.ndarray, items: list[dict[str, Any]], row: Any
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The narrow plan's test of a `query` completion's products: their search_tsv has every earlier word (and the
    last's prefix), of one reading of them at least (the head's, or its sizes glued as typed: glued_lexemes)."""
    readings = [list(row["head_lexemes"] or [])]
    readings += [list(row["glued_lexemes"])] if row["glued_lexemes"] is not None else []
    mask = mask & np.logical_or.reduce([index.with_lexemes(wanted) for wanted in readings])
    return mask, [item for item in items if any(item["lexemes"].issuperset(w) for w in readings)]


async def suggest_in_memory(
    conn: Any,
    index: SuggestIndex,
    sets: CandidateSets,
    typed: tuple[str, str, str],
    scope: dict[str, Any],
    limit: int,
    store_ids: list[UUID] | None = None,
) -> list[dict[str, Any]] | None:
    """The rows `suggest.merge` takes, or None (the module's cases). `typed`: (prefix, head, last word);
    `scope`: lon, lat (None: global), radius_m; `store_ids`: the stores in scope when found already (a bbox's)."""
    if not index.loaded or not sets.loaded:
        return None
    prefix, head, last = typed
    terms = len(last) >= 2
    stmt = statement("engine/search", "suggest_context")
    base = sets.snapshot
    row = await conn.fetchrow(stmt.sql, *stmt.bind(
        **scope, since=index.since, overlay_cap=OVERLAY_CAP, head=head, glued_head=glued_head(prefix), last_word=last,
        scoped=store_ids is not None, **sets.read_args()))  # fmt: skip
    if not sets.apply(base, row):
        return None
    if (row["category_count"], row["category_newest"]) != index.tree.state:
        index.rebuild_due = True
        return None
    if row["overlay_count"] >= index.rebuild_after:
        index.rebuild_due = True
    if row["overlay_count"] > OVERLAY_CAP or (terms and list(row["last_lexemes"] or []) != [last]):
        return None  # too many changed products; or the narrow plan's tsquery of the last word is not that word
    in_scope = store_ids if store_ids is not None else row["store_ids"]
    if in_scope is None:
        products, mask = index.scopes.global_scope(index, sets, list(row["inactive_store_ids"] or []))
    else:
        products = sets.in_scope(list(in_scope)).products
        mask = index.scopes.mask(index, sets, products)
    over = _overlay(index, sets, row, products)
    if len(over.stale_rows):
        mask = mask.copy()
        mask[over.stale_rows] = False
    out = _names(index, mask, over, prefix, 4 * limit) + _brands(index, mask, over, prefix, limit)
    out += _categories(index, mask, over, prefix, limit)
    if terms:
        items = over.items
        if head:
            mask, items = _holding_head(index, mask, items, row)
        out += _terms(index, mask, items, head, last, limit)
    return out
