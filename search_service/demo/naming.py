"""Products as strings: names, attributes and descriptions from a product plan's picks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from functools import cache, lru_cache

from . import vocab
from .catalog import LeafInfo, sizes_of, variants_of
from .records import Product

# Sub-brands for catalogues bigger than a leaf's name combinations (the large scale).
PRODUCT_LINES = (
    "Select", "Essentials", "Classic", "Premium", "Plus", "Signature", "Everyday", "Pro", "Original", "Prime",
    "Home", "Studio", "Max", "Heritage", "Urban", "Nature", "Smart", "Family", "Expert", "Lite",
)  # fmt: skip


# 2: a word of the item is not repeated by its variant or material (_without_item_words)
NAMES_VERSION = 2
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")


def _without_item_words(part: str, item: str) -> str:
    """`part` less the words of 3+ letters that `item` has: a name says a word once ("Smoked Salmon", not "Smoked
    Smoked Salmon"; "18 V Cordless Lawn Mower"), which the text rank would count twice; a part left with no word
    ("(Board Book)" after "Board Book") is dropped."""
    had = {w.lower() for w in _WORD.findall(item)}
    kept = " ".join(w for w in part.split() if w.strip("()").lower() not in had)
    return kept if re.search(r"[A-Za-z0-9]", kept) else ""


@lru_cache(maxsize=200_000)
def join_name(variant: str, material: str, item: str) -> str:
    prefix, suffix = ("", variant[1:]) if variant.startswith("+") else (variant, "")
    prefix, suffix, material = (_without_item_words(part, item) for part in (prefix, suffix, material))
    head, _, tail = item.partition(" ")
    # "Women's Organic Cotton T-Shirt", not "Organic Cotton Women's T-Shirt".
    if material and tail and (head.endswith("'s") or head.endswith("s'")):
        core = f"{head} {material} {tail}"
    else:
        core = f"{material} {item}" if material else item
    return " ".join(p for p in (prefix, core, suffix) if p)


@cache
def sentence_pool(department: int, has_size: bool) -> tuple[str, ...]:
    return tuple(s for s in vocab.DEPARTMENTS[department].sentences if "{size}" not in s or has_size)


@lru_cache(maxsize=100_000)
def sentence(template: str, brand: str, size: str, item: str) -> str:
    return template.format(brand=brand, size=size, item=item.lower()) if "{" in template else template


def describe(
    li: LeafInfo, item: str, brand: str, variant: str, size: str, colour: str, material: str, style: int
) -> str:
    parts: list[str] = []
    if li.leaf.about:
        parts.append(li.leaf.about[style % len(li.leaf.about)])
    pool = sentence_pool(li.department, bool(size))
    first = (style >> 4) % len(pool)
    second = (first + 1 + (style >> 9) % max(1, len(pool) - 1)) % len(pool)
    for pick in (first,) if first == second else (first, second):
        parts.append(sentence(pool[pick], brand, size, item))
    detail = " ".join(w for w in (colour.lower() if colour else "", material.lower() if material else "") if w)
    if detail and (style >> 14) % 2 == 0:
        parts.append(f"Shown here in {detail}.")
    return " ".join(parts)


def _attributes(key: str, variant: str, size: str, colour: str, material: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if variant:
        attrs[key] = variant.lstrip("+")
    if size:
        attrs["size"] = size
    if colour:
        attrs["colour"] = colour
    if material:
        attrs["material"] = material
    return attrs


def make_product(li: LeafInfo, picks: Sequence[int], style: int, price: float, pid: uuid.UUID, gtin: str) -> Product:
    """One product from its plan row: picks are (item, variant, size, colour, material, brand) indexes."""
    it_i, v_i, s_i, c_i, m_i, b_i = picks
    lf = li.leaf
    item = lf.items[it_i]
    variant = variants_of(lf, item)[v_i]
    size = sizes_of(lf, item)[s_i]
    colour = lf.colours[c_i]
    material = lf.materials[m_i]
    line, b_i = divmod(b_i, len(li.brands))
    brand = f"{li.brands[b_i]} {PRODUCT_LINES[line - 1]}" if line else li.brands[b_i]
    name = join_name(variant, material, item.name)
    if colour:
        name = f"{name}, {colour}"
    if size:
        name = f"{name}, {size}" if colour else f"{name} {size}"
    return Product(
        id=pid,
        name=name,
        brand=brand,
        description=describe(li, item.name, brand, variant, size, colour, material, style),
        category_id=li.category_id,
        gtin=gtin,
        attributes=_attributes(lf.variant_key, variant, size, colour, material),
        category_path=li.path,
        base_price=price,
    )
