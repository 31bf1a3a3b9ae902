"""The product plan: every product's picks (leaf, item, variant, size, colour, material, brand), base price,
popularity, id and GTIN, as numpy arrays, drawn up front from one generator in a fixed order."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from . import vocab
from .catalog import LeafInfo, size_scales, sizes_of, variants_of
from .draws import charm_price, largest_remainder, uuid4_bytes
from .gtin import GS1_PREFIXES, gtin13_bodies
from .naming import PRODUCT_LINES

ZIPF_EXPONENT = 0.85
_PICKS = ("leaf", "item", "variant", "size", "colour", "material", "brand")


@dataclass
class ProductPlan:
    leaf: np.ndarray
    item: np.ndarray
    variant: np.ndarray
    size: np.ndarray
    colour: np.ndarray
    material: np.ndarray
    brand: np.ndarray
    style: np.ndarray  # uint32 picks description sentences
    base_price: np.ndarray  # EUR
    weight: np.ndarray  # listing popularity (Zipf over a random rank; anchors first)
    department: np.ndarray
    id_bytes: np.ndarray
    gtin_body: np.ndarray


class _Rows:
    """The picks, appended leaf by leaf, as int32 arrays."""

    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in _PICKS}

    def emit(self, leaf_i: int, *picks: np.ndarray) -> None:
        """picks: item, variant, size, colour, material, brand."""
        self.rows["leaf"].append(np.full(len(picks[0]), leaf_i, dtype=np.int32))
        for key, arr in zip(_PICKS[1:], picks, strict=True):
            self.rows[key].append(arr.astype(np.int32))

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.rows.items()}


def _plan_anchors(rows: _Rows, n: int, leaves: list[LeafInfo], rng: np.random.Generator) -> int:
    """The products demos and tests count on, whenever the catalogue has room for them; returns how many."""
    by_name = {li.leaf.name: i for i, li in enumerate(leaves)}
    anchors = vocab.ANCHORS if n >= 2 * len(vocab.ANCHORS) else ()
    for a in anchors:
        li = leaves[by_name[a.leaf]]
        lf = li.leaf
        it_i = next(i for i, it in enumerate(lf.items) if it.name == a.item)
        it = lf.items[it_i]
        v_i = variants_of(lf, it).index(a.variant)
        s_i = sizes_of(lf, it).index(a.size)
        rows.emit(
            by_name[a.leaf],
            np.array([it_i]),
            np.array([v_i]),
            np.array([s_i]),
            rng.integers(0, len(lf.colours), 1),
            rng.integers(0, len(lf.materials), 1),
            rng.integers(0, len(li.brands), 1),
        )
    return len(anchors)


def _leaf_picks(li: LeafInfo, k: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """k products of one leaf: item, variant, size, colour, material, brand (product line folded in)."""
    total = int(li.item_offsets[-1])
    # Distinct combinations while the leaf has them (so names rarely repeat), then repeats.
    combo = rng.choice(total, size=min(k, total), replace=False)
    line = np.zeros(len(combo), dtype=np.int64)
    if k > total:
        # More products than combinations: further rounds come from the brands' product lines
        # ("Kabelwerk Pro", "Bellavita Select"), so big catalogues stay mostly distinct too.
        rounds = -(-k // total)
        extra = np.concatenate([rng.permutation(total) for _ in range(rounds - 1)])[: k - total]
        combo = np.concatenate([combo, extra])
        line = np.minimum(np.arange(k) // total, len(PRODUCT_LINES))
    item = np.searchsorted(li.item_offsets, combo, side="right") - 1
    rest = combo - li.item_offsets[item]
    nb, nm, nc = len(li.brands), len(li.leaf.materials), len(li.leaf.colours)
    brand = rest % nb + nb * line  # product line folded into the brand index
    rest //= nb
    mat = rest % nm
    rest //= nm
    col = rest % nc
    rest //= nc
    nsz = np.array([len(sizes_of(li.leaf, it)) for it in li.leaf.items])[item]
    size = rest % nsz
    var = rest // nsz
    return item, var, size, col, mat, brand


def _plan_rest(rows: _Rows, n: int, leaves: list[LeafInfo], leaf_dept: np.ndarray, rng: np.random.Generator) -> None:
    """n products spread over leaves by department weight, then leaf weight x sqrt(items)."""
    dept_w = np.array([d.weight for d in vocab.DEPARTMENTS])
    raw = np.array([li.leaf.weight * math.sqrt(len(li.leaf.items)) for li in leaves])
    dept_sum = np.bincount(leaf_dept, weights=raw)
    leaf_w = dept_w[leaf_dept] * raw / dept_sum[leaf_dept]
    counts = largest_remainder(n, leaf_w)
    for leaf_i, (li, k) in enumerate(zip(leaves, counts, strict=True)):
        if k == 0:
            continue
        rows.emit(leaf_i, *_leaf_picks(li, int(k), rng))


def _base_prices(cols: dict[str, np.ndarray], leaves: list[LeafInfo], rng: np.random.Generator) -> np.ndarray:
    lo = np.array([li.leaf.price[0] for li in leaves])[cols["leaf"]]
    hi = np.array([li.leaf.price[1] for li in leaves])[cols["leaf"]]
    base = np.exp(rng.uniform(np.log(lo), np.log(np.maximum(lo, hi * 0.6))))
    # Larger quantities cost more; clothing and shoe sizes do not.
    scales = np.array([size_scales(li.leaf, it) for li in leaves for it in li.leaf.items])
    first_item = np.cumsum([0] + [len(li.leaf.items) for li in leaves])[:-1]
    scaled = scales[first_item[cols["leaf"]] + cols["item"]]
    base = base * np.where(scaled, 1.3 ** np.minimum(cols["size"], 4), 1.0)
    return charm_price(np.minimum(base, hi * 1.5))


def _gtin_prefixes(cols: dict[str, np.ndarray], leaves: list[LeafInfo]) -> np.ndarray:
    """A GS1 prefix per product, fixed per brand name."""
    brand_names = [
        leaves[lf_i].brands[b % len(leaves[lf_i].brands)]
        for lf_i, b in zip(cols["leaf"].tolist(), cols["brand"].tolist(), strict=True)
    ]
    all_prefixes = np.array([p for cc in sorted(GS1_PREFIXES) for p in GS1_PREFIXES[cc]])
    return np.array([all_prefixes[zlib.crc32(b.encode()) % len(all_prefixes)] for b in brand_names])


def plan_products(n: int, leaves: list[LeafInfo], rng: np.random.Generator) -> ProductPlan:
    rows = _Rows()
    n_anchor = _plan_anchors(rows, n, leaves, rng)
    leaf_dept = np.array([li.department for li in leaves])
    _plan_rest(rows, n - n_anchor, leaves, leaf_dept, rng)
    cols = rows.columns()
    # Shuffle the non-anchor rows so chunks mix departments.
    order = np.concatenate([np.arange(n_anchor), n_anchor + rng.permutation(n - n_anchor)])
    cols = {k: v[order] for k, v in cols.items()}

    dept = leaf_dept[cols["leaf"]].astype(np.int16)
    base = _base_prices(cols, leaves, rng)
    rank = np.concatenate([np.arange(n_anchor), n_anchor + rng.permutation(n - n_anchor)])
    listing_f = np.array([d.listing_factor for d in vocab.DEPARTMENTS])[dept]
    weight = listing_f / (rank + 10.0) ** ZIPF_EXPONENT
    prefixes = _gtin_prefixes(cols, leaves)
    return ProductPlan(
        **{k: cols[k] for k in _PICKS},
        style=rng.integers(0, 2**31, n, dtype=np.int64),
        base_price=base,
        weight=weight,
        department=dept,
        id_bytes=uuid4_bytes(rng, n),
        gtin_body=gtin13_bodies(n, prefixes, int(rng.integers(0, 10**9))),
    )
