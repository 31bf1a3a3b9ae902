"""Numeric helpers of the generator: random UUIDs, shelf prices, integer shares of a total."""

from __future__ import annotations

import numpy as np


def uuid4_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 16) random UUIDv4s from `rng`: version and variant bits set as RFC 4122 requires."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def charm_price(p: np.ndarray, fx: float = 1.0) -> np.ndarray:
    """Shelf prices: 0.45, 2.49, 12.99, 149.99; whole units for currencies with large unit values."""
    p = np.asarray(p, dtype=np.float64)
    if fx >= 20:
        return np.maximum(np.round(p, -1) - 1, 9.0)
    # Nearest shelf price (never more than ~6% off): cents below 1, then x.x9, x.99 and xx5.99 / xx9.99 steps.
    out = np.where(
        p < 1,
        np.round(p, 2),
        np.where(
            p < 10, np.round(p * 10) / 10 - 0.01, np.where(p < 100, np.round(p) - 0.01, np.round(p / 5) * 5 - 0.01)
        ),
    )
    return np.round(np.maximum(out, 0.19), 2)


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts
