"""Deterministic, realistic marketplace data: `generate(scale, seed)`, `load(dsn, marketplace)`, `seed(dsn, scale)`."""

from .gtin import gtin_check_digit, is_valid_gtin
from .load import LoadReport, load
from .market import SCALES, Category, ListingChunk, Marketplace, Product, Scale, Store, generate, get_scale
from .places import DEMO_CITY, bench_places, neighbourhoods
from .seed import seed

__all__ = [
    "DEMO_CITY",
    "SCALES",
    "Category",
    "ListingChunk",
    "LoadReport",
    "Marketplace",
    "Product",
    "Scale",
    "Store",
    "bench_places",
    "generate",
    "get_scale",
    "gtin_check_digit",
    "is_valid_gtin",
    "load",
    "neighbourhoods",
    "seed",
]
