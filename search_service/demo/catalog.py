"""The category tree built from the vocabulary, and per leaf what its products can be made of."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import vocab
from .records import Category

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "'": ""})
    return _SLUG.sub("-", text.lower().translate(table)).strip("-")


@dataclass(frozen=True)
class LeafInfo:
    leaf: vocab.Leaf
    department: int
    category_id: int
    path: tuple[str, ...]
    brands: tuple[str, ...]
    item_counts: np.ndarray  # combinations per item
    item_offsets: np.ndarray  # cumulative, len(items) + 1


def variants_of(leaf: vocab.Leaf, item: vocab.Item) -> tuple[str, ...]:
    return item.variants if item.variants is not None else leaf.variants


def sizes_of(leaf: vocab.Leaf, item: vocab.Item) -> tuple[str, ...]:
    return item.sizes if item.sizes is not None else leaf.sizes


def build_categories() -> tuple[list[Category], list[LeafInfo]]:
    cats: list[Category] = []
    leaves: list[LeafInfo] = []

    def add(name: str, parent: Category | None, position: int, dept: int) -> Category:
        path = (*parent.path, name) if parent else (name,)
        cat = Category(
            len(cats) + 1, parent.id if parent else None, name, slugify("-".join(path)), position, path, dept
        )
        cats.append(cat)
        return cat

    def add_leaf(lf: vocab.Leaf, parent: Category, position: int, dept_i: int, dept: vocab.Department) -> None:
        cat = add(lf.name, parent, position, dept_i)
        brands = lf.brands or dept.brands
        counts = np.array(
            [
                len(variants_of(lf, it)) * len(sizes_of(lf, it)) * len(lf.colours) * len(lf.materials) * len(brands)
                for it in lf.items
            ],
            dtype=np.int64,
        )
        offsets = np.concatenate([[0], np.cumsum(counts)])
        leaves.append(LeafInfo(lf, dept_i, cat.id, cat.path, brands, counts, offsets))

    for d_i, dept in enumerate(vocab.DEPARTMENTS):
        top = add(dept.name, None, d_i, d_i)
        for c_i, child in enumerate(dept.children):
            if isinstance(child, vocab.Group):
                mid = add(child.name, top, c_i, d_i)
                for l_i, lf in enumerate(child.leaves):
                    add_leaf(lf, mid, l_i, d_i, dept)
            else:
                add_leaf(child, top, c_i, d_i, dept)
    return cats, leaves


_FIT_SIZE = re.compile(
    r"^(XXS|XS|S|M|L|XL|XXL|EU \d+|W\d+ L\d+|\d+/\d+|Size \d+|Small|Medium|Large|Single|Double|King|\d+\")$"
)


def size_scales(leaf: vocab.Leaf, item: vocab.Item) -> bool:
    """Whether an item's sizes are quantities (1 L, 20 pack: price grows) or fits (M, EU 42: price does not)."""
    sizes = [s for s in sizes_of(leaf, item) if s]
    return bool(sizes) and not any(_FIT_SIZE.match(s) for s in sizes)
