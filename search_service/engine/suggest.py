"""Search-as-you-type suggestions: completions of the typed prefix that some in-stock listing in scope has.

Four kinds, one statement (`engine/sql/suggest.sql`): product names starting with the prefix, brands starting with
it, categories starting with it (a category counts when a product of its subtree is in scope), and `query`
completions of the last word from the search_term vocabulary ("cordless dr" -> "cordless drill"). The merged list
gives categories and brands a couple of places first, then names, then word completions, without repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal
from uuid import UUID

from search_service.db.sql import statement
from search_service.engine import geo_areas
from search_service.engine.candidates import CandidateSets
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.store_locator import StoreLocator
from search_service.engine.suggest_index import SuggestIndex
from search_service.engine.suggest_memory import suggest_narrow
from search_service.engine.suggest_scope import suggest_in_memory
from search_service.engine.suggest_spelling import completed_word as _completed_word
from search_service.engine.suggest_spelling import spelled
from search_service.engine.suggest_typed import WORD, glued_head, name_prefixes, split_prefix
from search_service.engine.text import exclusion_readings, fold_accents, negated_operands, taken_as_query

MAX_SUGGESTIONS = 10
WALK_CAP = 400  # product names the name walk examines at most, a prefix (see the statement's comment)
PROBE_CAP = 64  # products examined per brand, category or word
NARROW_STORES = 3  # scopes of at most this many stores are read from their listings

Kind = Literal["product", "brand", "category", "query"]
_FIRST_PLACES = {"category": 2, "brand": 2}  # places reserved up front; the rest fill what remains
# Past the reserved places: product names, then word completions, then more categories and brands (filling the
# rest with them first left no product for a short prefix: `a` gave 10 categories and brands).
_ORDER: tuple[Kind, ...] = ("product", "query", "category", "brand")


@dataclass(frozen=True)
class Suggestion:
    kind: Kind
    text: str
    ref: str | None  # category id, brand, product id; None for a query completion


@dataclass(frozen=True)
class SuggestParams:
    q: str
    lat: float | None = None
    lon: float | None = None
    radius_m: float = 5000
    limit: int = MAX_SUGGESTIONS
    bbox: geo_areas.BBox | None = None  # a map viewport: the scope instead of the radius, as search's
    store_ids: list[UUID] | None = None  # the bbox's active stores, as `suggest` finds them (search's scope)


def keep_typed_text(rows: list[Any], prefix: str, head: str, last: str) -> list[Any]:
    """Word completions keep the text typed before the last word: its `-` (`milk -oat ch`: `milk -oat chocolate`;
    `milk chocolate` dropped the exclusion), its apostrophes and hyphens (`women's ja`: `women's jacket`, not the
    words re-joined, `women s jacket`); and none completes into a word the prefix excludes (`milk -chocolate
    choc`: `chocolate` wanted and excluded, no product)."""
    if not last:
        return rows
    negated = negated_operands(prefix)
    excluded = {fold_accents(w) for n in negated if n.excluded for w in WORD.findall(prefix[n.operand : n.end])}
    before = prefix[: len(prefix) - len(WORD.findall(prefix)[-1])]
    kept = []
    for row in rows:
        if row["kind"] != "query":
            kept.append(row)
            continue
        completed = _completed_word(row["label"], head)
        if not excluded.intersection(fold_accents(w) for w in WORD.findall(completed)):
            kept.append({**dict(row), "label": before + completed})
    return kept


async def without_excluded(conn: Any, rows: list[Any], params: SuggestParams, head: str) -> list[Any]:
    """`rows` without what `q`'s `-` leaves out of `/v1/search` (`suggest_excluded`): a product name or brand
    completing `milk -chocolate` that holds `chocolate`, and a word completion none of whose products in scope is
    left (`zorblat -oat drin`: `drink`, an oat drink's only). One round trip, only when `q` excludes something and a
    row is a product, a brand or a word completion."""
    excluding = exclusion_readings(params.q)
    if excluding is None:
        return rows
    ids = [UUID(str(r["ref"])) for r in rows if r["kind"] == "product"]
    brands = [r["ref"] for r in rows if r["kind"] == "brand"]
    terms = [_completed_word(r["label"], head) for r in rows if r["kind"] == "query"]
    if not (ids or brands or terms):
        return rows
    stmt = statement("engine/search", "suggest_excluded")
    found = await conn.fetchrow(
        stmt.sql,
        *stmt.bind(
            product_ids=ids,
            brands=brands,
            head=head,
            glued_head=glued_head(split_prefix(params.q)[0]),
            terms=terms,
            radius_m=float(params.radius_m),
            probe_cap=PROBE_CAP,
            lon=params.lon,
            lat=params.lat,
            store_ids=params.store_ids,
            excluding=excluding,
        ),
    )
    dropped = {("product", str(i)) for i in found["product_ids"]} | {("brand", b) for b in found["brands"]}
    dropped_words = set(found["terms"])
    return [
        r
        for r in rows
        if (r["kind"], str(r["ref"])) not in dropped
        and not (r["kind"] == "query" and _completed_word(r["label"], head) in dropped_words)
    ]


def merge(rows: list[Any], limit: int) -> list[Suggestion]:
    """Categories and brands get their reserved places first, then every kind in `_ORDER` fills the rest."""
    by_kind: dict[str, list[Suggestion]] = {k: [] for k in _ORDER}
    for row in sorted(rows, key=lambda r: (r["kind"], r["ord"])):
        if taken_as_query(row["label"]):  # a pick is the next search's q: never one it refuses (an ESC in an old name)
            by_kind[row["kind"]].append(Suggestion(row["kind"], row["label"], row["ref"]))
    chosen: list[Suggestion] = []
    seen: set[tuple[str, str]] = set()
    texts: set[str] = set()  # a text shown once, whatever its kind (`alpenmilch`, the brand, not its completion)

    def take(items: list[Suggestion], n: int) -> None:
        for item in items:
            if len(chosen) >= limit or n <= 0:
                return
            text = fold_accents(item.text.lower())  # `hafergluck`, a brand's word unspelt: the brand `Haferglück` once
            if (item.kind, text) in seen or text in texts:
                continue
            seen.add((item.kind, text))
            texts.add(text)
            chosen.append(item)
            n -= 1

    for kind, places in _FIRST_PLACES.items():
        take(by_kind[kind], places)
    for kind in _ORDER:
        take(by_kind[kind], limit)
    return chosen


async def suggest(
    conn: Any,
    params: SuggestParams,
    labels: ProductLabels | None = None,
    index: SuggestIndex | None = None,
    sets: CandidateSets | None = None,
    stores: StoreLocator | None = None,
) -> list[Suggestion]:
    """Up to `params.limit` (≤ 10) completions; an empty or wordless prefix gives none. `index` and `sets`: the
    API's suggestion index and candidate sets, which answer every scope (suggest_scope.py) once both are loaded;
    else `labels`, the in-memory product labels, answer narrow scopes (suggest_memory.py); else the statement,
    which probes a radius holding most of the stores in `stores` (the stores' places in memory) per listing.
    A `bbox` scopes them all to its stores, found as the search finds them (`geo_areas.stores_in_bbox`)."""
    prefix, head, last = split_prefix(params.q)
    if not fold_accents(prefix).strip():  # marks alone (a dead key's accent) fold to "", which every label starts with
        return []
    limit = max(1, min(params.limit, MAX_SUGGESTIONS))
    if params.bbox is not None:  # the box is the scope; lat/lon measure nothing here
        params = replace(params, lat=None, lon=None, store_ids=await geo_areas.stores_in_bbox(conn, params.bbox))
        if not params.store_ids:
            return []
    if index is not None and sets is not None:
        geo = params.lat is not None and params.lon is not None
        scope = {
            "lon": params.lon if geo else None,
            "lat": params.lat if geo else None,
            "radius_m": float(params.radius_m),
        }
        found = await suggest_in_memory(conn, index, sets, (prefix, head, last), scope, limit, params.store_ids)
        if found is not None:
            return await _finished(conn, found, params, (prefix, head, last), limit)
    narrow = _narrow_scope(params)
    if labels is not None and labels.loaded and narrow is not None:
        rows = await suggest_narrow(conn, labels, prefix, head, last, narrow, limit)
        if rows is not None:
            return await _finished(conn, rows, params, (prefix, head, last), limit)
    stmt = statement("engine/suggest", "suggest")
    # One generic plan, prepared once per connection: planning this statement (a dozen CTEs) took longer than
    # running it, and its index walks do not depend on the prefix's selectivity.
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        rows = await _fetch(conn, stmt, prefix, head, last, params, limit, _radius_probed(params, stores))
    return await _finished(conn, list(rows), params, (prefix, head, last), limit)


async def _finished(
    conn: Any, rows: list[Any], params: SuggestParams, typed: tuple[str, str, str], limit: int
) -> list[Suggestion]:
    """Every path's rows made the answer: what `q` excludes left out, word completions spelt as their products
    write them (suggest_spelling.py), the typed text kept, merged."""
    prefix, head, last = typed
    kept = spelled(await without_excluded(conn, rows, params, head), head)
    return merge(keep_typed_text(kept, prefix, head, last), limit)


def _narrow_scope(params: SuggestParams) -> dict[str, Any] | None:
    """The scope suggest_memory.py reads when it may be narrow (a point's radius, a bbox of a few stores), or None."""
    if params.store_ids is not None and len(params.store_ids) > NARROW_STORES:
        return None
    if params.store_ids is None and (params.lat is None or params.lon is None):
        return None
    return {
        "lon": params.lon,
        "lat": params.lat,
        "radius_m": float(params.radius_m),
        "store_ids": params.store_ids,
        "narrow_stores": NARROW_STORES,
    }


def _radius_probed(params: SuggestParams, stores: StoreLocator | None) -> bool:
    """Whether the statement measures each listing it probes against the radius (one holding most stores)."""
    if stores is None or params.lat is None or params.lon is None:
        return False
    return stores.radius_pays_at(params.lon, params.lat, float(params.radius_m))


async def _fetch(
    conn: Any, stmt: Any, prefix: str, head: str, last: str, params: SuggestParams, limit: int, near: bool
) -> Any:
    return await conn.fetch(
        stmt.sql,
        *stmt.bind(
            prefixes=name_prefixes(prefix),  # caseless, as the name walk's index keys names (migration 0055)
            brand_prefix=fold_accents(prefix),  # brands, category names are matched as plinqy_fold folds them
            head=head,
            glued_head=glued_head(prefix),
            last_word=last,
            lon=params.lon,
            lat=params.lat,
            radius_m=float(params.radius_m),
            store_ids=params.store_ids,
            lim=limit,
            walk_cap=WALK_CAP,
            probe_cap=PROBE_CAP,
            narrow_stores=NARROW_STORES,
            near=near,
        ),
    )
