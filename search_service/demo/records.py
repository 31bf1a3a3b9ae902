"""The generated records: categories, stores, products, and listings (as column arrays, per chunk of stores)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Category:
    id: int
    parent_id: int | None
    name: str
    slug: str
    position: int
    path: tuple[str, ...]
    department: int  # index into vocab.DEPARTMENTS


@dataclass(frozen=True)
class Store:
    id: uuid.UUID
    name: str
    store_type: str
    city: str
    country_code: str
    address: str
    lat: float
    lon: float
    is_active: bool
    currency: str
    home_city: str  # the city the store was placed around (its `city` may be a nearby town)
    distance_m: float  # from that city's centre
    zone: str  # core, suburbs, outskirts


@dataclass(slots=True)
class Product:
    id: uuid.UUID
    name: str
    brand: str
    description: str
    category_id: int
    gtin: str
    attributes: dict[str, str]
    category_path: tuple[str, ...]
    base_price: float  # EUR


@dataclass
class ListingChunk:
    """Listings of a run of stores, column-wise. `store_idx`/`product_idx` index Marketplace.stores/products."""

    id_bytes: np.ndarray  # (n, 16) uint8, UUIDv4 layout
    store_idx: np.ndarray  # int32
    product_idx: np.ndarray  # int32
    price: np.ndarray  # float64, 2 decimals, in the store's currency
    quantity: np.ndarray  # int32
    is_active: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.store_idx)

    @staticmethod
    def concat(chunks: list[ListingChunk]) -> ListingChunk:
        if not chunks:
            return ListingChunk(
                np.zeros((0, 16), np.uint8),
                np.zeros(0, np.int32),
                np.zeros(0, np.int32),
                np.zeros(0),
                np.zeros(0, np.int32),
                np.zeros(0, bool),
            )
        return ListingChunk(
            np.concatenate([c.id_bytes for c in chunks]),
            np.concatenate([c.store_idx for c in chunks]),
            np.concatenate([c.product_idx for c in chunks]),
            np.concatenate([c.price for c in chunks]),
            np.concatenate([c.quantity for c in chunks]),
            np.concatenate([c.is_active for c in chunks]),
        )
