"""Curated vocabularies: the category tree, what each leaf sells, brands, and the sentences that describe products.

A leaf lists its items; an item may carry its own variants ``{a/b}`` and sizes ``[x/y]`` overriding the leaf's.
A variant is put before the item ("Unsweetened Oat Drink") unless it starts with ``+``, which appends it
("Oat Drink Barista"). A leading ``|`` in a ``|``-separated list includes the plain (empty) variant.
Sizes run from small to large: the price grows with the size's position.
Brands are invented, so no listing pretends to be a real manufacturer's product.
The words themselves live in ``data/*.json`` (shipped with the package) and are read once, at import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ITEM = re.compile(r"^(?P<name>[^{\[]+?)\s*(?:\{(?P<variants>[^}]*)\})?\s*(?:\[(?P<sizes>[^\]]*)\])?$")


def _split(spec: str, sep: str = "|") -> tuple[str, ...]:
    if not spec:
        return ("",)
    return tuple(part.strip() for part in spec.split(sep))


@dataclass(frozen=True)
class Item:
    name: str
    variants: tuple[str, ...] | None  # None: the leaf's
    sizes: tuple[str, ...] | None


@dataclass(frozen=True)
class Leaf:
    name: str
    items: tuple[Item, ...]
    variants: tuple[str, ...]
    sizes: tuple[str, ...]
    price: tuple[float, float]
    variant_key: str
    colours: tuple[str, ...]
    materials: tuple[str, ...]
    brands: tuple[str, ...]  # empty: the department's
    about: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class Group:
    name: str
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True)
class Department:
    name: str
    brands: tuple[str, ...]
    sentences: tuple[str, ...]  # templates: {item} {brand} {variant} {size} {colour} {material}
    children: tuple[Leaf | Group, ...]
    weight: float = 1.0
    listing_factor: float = 1.0  # how many stores carry one of its products, relatively


def leaf(
    name: str,
    items: str,
    variants: str = "",
    sizes: str = "",
    price: tuple[float, float] = (1.0, 5.0),
    *,
    key: str = "type",
    colours: str = "",
    materials: str = "",
    brands: str = "",
    about: str = "",
    weight: float = 1.0,
) -> Leaf:
    parsed: list[Item] = []
    for raw in items.split("|"):
        m = _ITEM.match(raw.strip())
        if not m:
            raise ValueError(f"bad item spec {raw!r}")
        parsed.append(
            Item(
                m["name"].strip(),
                _split(m["variants"], "/") if m["variants"] is not None else None,
                _split(m["sizes"], "/") if m["sizes"] is not None else None,
            )
        )
    return Leaf(
        name=name,
        items=tuple(parsed),
        variants=_split(variants),
        sizes=_split(sizes),
        price=price,
        variant_key=key,
        colours=_split(colours),
        materials=_split(materials),
        brands=tuple(b for b in _split(brands) if b),
        about=tuple(s.strip() for s in about.split("||") if s.strip()),
        weight=weight,
    )


def group(name: str, *leaves: Leaf) -> Group:
    return Group(name, leaves)


# Store types: which departments each carries, and how many listings relative to the scale's average.
@dataclass(frozen=True)
class StoreType:
    key: str
    departments: tuple[str, ...]
    listing_factor: float
    # templates: {place} is the neighbourhood or town, {city} the city; "de:" marks German-speaking countries only
    names: tuple[str, ...]
    zone_weights: tuple[float, float, float]  # core, suburbs, outskirts


# Products every demo-scale catalogue (and above) contains, with high popularity, for tests and demos.
@dataclass(frozen=True)
class Anchor:
    leaf: str
    item: str
    variant: str = ""
    size: str = ""


_DATA = Path(__file__).with_name("data")


def _read(name: str) -> Any:
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


def _leaf_from(spec: dict[str, Any]) -> Leaf:
    """A leaf from its JSON form: the ``|``-separated specs of `leaf()` are stored as lists."""
    optional: dict[str, str] = {key: "|".join(spec[key]) for key in ("colours", "materials", "brands") if key in spec}
    if "about" in spec:
        optional["about"] = "||".join(spec["about"])
    return leaf(
        spec["name"],
        "|".join(spec["items"]),
        "|".join(spec["variants"]),
        "|".join(spec["sizes"]),
        (float(spec["price"][0]), float(spec["price"][1])),
        key=spec.get("key", "type"),
        weight=float(spec.get("weight", 1.0)),
        **optional,
    )


def _child_from(spec: dict[str, Any]) -> Leaf | Group:
    if "group" in spec:
        return group(spec["group"], *(_leaf_from(s) for s in spec["leaves"]))
    return _leaf_from(spec)


def _department_from(spec: dict[str, Any]) -> Department:
    return Department(
        spec["name"],
        brands=tuple(spec["brands"]),
        sentences=tuple(spec["sentences"]),
        children=tuple(_child_from(c) for c in spec["children"]),
        weight=float(spec["weight"]),
        listing_factor=float(spec["listing_factor"]),
    )


def _store_type_from(spec: dict[str, Any]) -> StoreType:
    zone = spec["zone_weights"]
    return StoreType(
        spec["key"],
        tuple(spec["departments"]),
        float(spec["listing_factor"]),
        tuple(spec["names"]),
        (float(zone[0]), float(zone[1]), float(zone[2])),
    )


DEPARTMENTS: tuple[Department, ...] = tuple(_department_from(d) for d in _read("departments.json"))
STORE_TYPES: tuple[StoreType, ...] = tuple(_store_type_from(s) for s in _read("store_types.json"))
# Relative share of each store type (before zone weighting).
STORE_TYPE_SHARE: dict[str, float] = {k: float(v) for k, v in _read("store_type_share.json").items()}
ANCHORS: tuple[Anchor, ...] = tuple(Anchor(*a) for a in _read("anchors.json"))
# Streets by country, for believable addresses.
STREETS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _read("streets.json").items()}
STREETS_DEFAULT = STREETS["GB"]
# Approximate neighbourhood centres for well-known cities (name, lat, lon).
NEIGHBOURHOODS: dict[str, tuple[tuple[str, float, float], ...]] = {
    city: tuple((name, float(lat), float(lon)) for name, lat, lon in places)
    for city, places in _read("neighbourhoods.json").items()
}
