"""The scope of one search: the stores and category subtree its filters resolve to, and the values it binds."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import Statement, statement
from search_service.engine.candidates import NO_CHANGES, CandidateSets, InScope
from search_service.engine.results import SearchParams, SearchResult, Strategy
from search_service.engine.session import Conn
from search_service.engine.store_locator import NOT_LOCATED, Located, StoreLocator
from search_service.engine.text import exclusion_readings

_PARAM_FIELDS = frozenset(f.name for f in fields(SearchParams))
NO_NEAR = {"near_lon": None, "near_lat": None, "near_radius_m": None}  # store_scope_near: the list decides


@dataclass(frozen=True)
class Scope:
    store_ids: list[UUID] | None  # None: global (any active store)
    category_ids: list[int] | None  # None: any category
    params: SearchParams
    exclude_id: UUID | None = None  # similar(): the product asked about
    # The products in stock at the stores in scope, from the in-memory candidate sets brought up to this search's
    # snapshot (candidates.py); None: global, in_stock off, or no sets (SQL lists them).
    in_scope: InScope | None = None
    # The candidate sets, current as of this search, that `products_in_scope` takes the union of on first use.
    sets: CandidateSets | None = None
    # (lon, lat, radius_m) when `store_ids` are the active stores in that radius and hold most stores: statements
    # with store_scope_near's parameters probe the radius instead of receiving the list (store_locator.py).
    near: tuple[float, float, float] | None = None
    # Rows of the vector copy whose products the labels hold as inactive (facet_vectors.inactive_rows): a facet
    # set's in-memory ranking skips them, where facet_set dropped them after they counted toward its depth.
    inactive: np.ndarray | None = None

    def products_in_scope(self) -> InScope | None:
        """`in_scope`, or the union of the sets taken now (once): a search that routes without it (a keyword
        search, a scope the statistics put near full) never pays for it (6,800 stores at 1M products: 30-40 ms)."""
        if self.in_scope is None and self.sets is not None and self.store_ids is not None:
            object.__setattr__(self, "in_scope", self.sets.in_scope(self.store_ids))  # a cache: frozen otherwise
        return self.in_scope

    def bind(self, stmt: Statement, **own: Any) -> tuple[Any, ...]:
        """`stmt`'s arguments by name: `own`, else the filters resolved here (store_ids, category_ids,
        exclude_id, excluding), else the `SearchParams` field of that name (in_stock, min_price, brand, …). So a filter
        that is a field of SearchParams and a parameter of a shared SQL fragment needs no code here."""
        resolved: dict[str, Any] = {
            "store_ids": self.store_ids,
            "category_ids": self.category_ids,
            "exclude_id": self.exclude_id,
            "excluding": exclusion_readings(self.params.q),  # product_filter's excluded_words
        }
        if "near_radius_m" in stmt.params:
            lon, lat, radius_m = self.near or (None, None, None)
            resolved.update(near_lon=lon, near_lat=lat, near_radius_m=radius_m)
            if self.near is not None:
                resolved["store_ids"] = None
        values = {
            name: resolved[name] if name in resolved else getattr(self.params, name)
            for name in stmt.params
            if name not in own and (name in resolved or name in _PARAM_FIELDS)
        }
        return stmt.bind(**values, **own)  # a parameter found nowhere, or an unknown one in `own`: TypeError

    @property
    def point(self) -> tuple[float | None, float | None]:
        """(lon, lat) of a search near a point; (None, None) for a global one."""
        return (self.params.lon, self.params.lat) if self.store_ids is not None else (None, None)


def _empty(strategy: Strategy) -> SearchResult:
    return SearchResult(results=[], total_candidates=0, strategy=strategy)


async def resolve_scope(
    conn: Conn,
    params: SearchParams,
    exclude_id: UUID | None,
    candidates: CandidateSets | None = None,
    stores: StoreLocator | None = None,
) -> Scope | SearchResult:
    """Round trip 1 (search_context): the active stores in the radius and the category subtree, and the candidate
    sets' changes since their snapshot (applied here); an empty result when nothing can qualify. A global search
    without a category has nothing to look up. With `stores` loaded, the stores in the radius come from memory
    and PostgreSQL measures only those near its edge (store_locator.py)."""
    geo = params.lat is not None and params.lon is not None
    store_ids: list[UUID] | None = None
    category_ids: list[int] | None = None
    sets: CandidateSets | None = None
    near: tuple[float, float, float] | None = None
    if geo or params.category_id is not None:
        base = None if candidates is None else candidates.snapshot
        changes = dict(NO_CHANGES) if candidates is None else candidates.read_args()
        located = _locate(stores, params)
        ctx = await _context(conn, params, changes, located)
        current = candidates is not None and changes["since_seq"] is not None and candidates.apply(base, ctx)
        category_ids = ctx["category_ids"]
        if geo:
            store_ids = _stores_in_radius(ctx, located)
            if not store_ids:
                return _empty("no_stores")
            near = radius_probe(stores, params, len(store_ids))
            if current and params.in_stock and candidates is not None:
                sets = candidates  # the union is taken when a plan asks for it (Scope.products_in_scope)
    if category_ids is not None and not category_ids:  # unknown category: nothing qualifies
        return _empty("no_category")
    return Scope(store_ids, category_ids, params, exclude_id, sets=sets, near=near)


def radius_probe(stores: StoreLocator | None, params: SearchParams, in_scope: int) -> tuple[float, float, float] | None:
    """The radius, for the statements to probe, when it holds most stores (StoreLocator.radius_pays)."""
    if stores is None or params.lon is None or params.lat is None or not stores.radius_pays(in_scope):
        return None
    return (params.lon, params.lat, float(params.radius_m))


def _locate(stores: StoreLocator | None, params: SearchParams) -> Located | None:
    if stores is None or params.lon is None or params.lat is None:
        return None
    return stores.locate(params.lon, params.lat, float(params.radius_m))


async def _context(conn: Conn, params: SearchParams, changes: dict[str, Any], located: Located | None) -> Any:
    """search_context's row: it measures only the edge stores of `located`, or finds them all without it."""
    geo = params.lat is not None and params.lon is not None
    stmt = statement("engine/search", "search_context")
    values = stmt.bind(
        lon=params.lon if geo else None,
        lat=params.lat if geo else None,
        radius_m=float(params.radius_m),
        category_id=params.category_id,
        **(NOT_LOCATED if located is None else located.args),
        **changes,
    )
    ctx = await conn.fetchrow(stmt.sql, *values)
    assert ctx is not None
    return ctx


def _stores_in_radius(ctx: Any, located: Located | None) -> list[UUID]:
    """The stores in the radius: those placed inside in memory and those PostgreSQL measured at the edge, or every
    store PostgreSQL found (no copy, or a copy older than the search's snapshot)."""
    measured = list(ctx["store_ids"] or [])
    return measured if located is None else located.stores(measured, ctx["stores_stale"])
