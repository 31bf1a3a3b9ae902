"""Deterministic, realistic marketplace data: `generate(scale, seed)`, `load(conn_or_dsn, marketplace)`, `seed(...)`."""

from .gtin import gtin_check_digit, is_valid_gtin
from .market import SCALES, Category, ListingChunk, Marketplace, Product, Scale, Store, generate, get_scale

__all__ = [
    "SCALES",
    "Category",
    "ListingChunk",
    "Marketplace",
    "Product",
    "Scale",
    "Store",
    "generate",
    "get_scale",
    "gtin_check_digit",
    "is_valid_gtin",
]
