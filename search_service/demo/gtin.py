"""GTIN (EAN/UPC) check digits, and unique GTIN-13s for generated products."""

from __future__ import annotations

import numpy as np

# GS1 prefixes of a few member organisations (first three digits of a GTIN-13).
GS1_PREFIXES: dict[str, tuple[int, ...]] = {
    "DE": (400, 405, 410, 420, 425, 426, 428, 440),
    "AT": (900, 905, 910),
    "FR": (300, 320, 340, 370),
    "GB": (500, 501, 503, 506, 509),
    "NL": (870, 871, 872, 874),
    "US": (1, 30, 60, 80),  # UPC-A carried in a GTIN-13 with a leading zero
    "IT": (800, 805, 809),
    "ES": (840, 843, 845),
    "CH": (760, 764, 768),
    "SE": (730, 735, 739),
}


def gtin_check_digit(body: str) -> int:
    """Check digit for the GTIN `body` (all digits but the last): weights 3,1,3,… from the right."""
    if not body.isdecimal():
        raise ValueError(f"GTIN body must be digits: {body!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    """True for a GTIN-8, -12, -13 or -14 whose check digit is right."""
    if not isinstance(code, str) or not code.isdecimal() or len(code) not in (8, 12, 13, 14):
        return False
    return gtin_check_digit(code[:-1]) == int(code[-1])


def gtin13_bodies(n: int, prefixes: np.ndarray, salt: int) -> np.ndarray:
    """n distinct 12-digit bodies: a 3-digit GS1 prefix per row, then a bijective scramble of the row number.

    i -> (i * A + salt) mod 10**9 is a bijection on [0, 10**9) because A is coprime to 10, so no two rows share
    the 9 trailing digits, whatever their prefixes.
    """
    if n > 10**9:
        raise ValueError("at most 10**9 GTINs")
    a = 7_919_731  # odd, not a multiple of 5
    idx = np.arange(n, dtype=np.int64)
    tail = (idx * a + (salt % 10**9)) % 10**9
    return prefixes.astype(np.int64) * 10**9 + tail


def gtin13_strings(bodies: np.ndarray) -> list[str]:
    """Full GTIN-13 strings (body + check digit), vectorised."""
    digits = np.zeros((len(bodies), 12), dtype=np.int64)
    rest = bodies.astype(np.int64).copy()
    for pos in range(11, -1, -1):
        digits[:, pos] = rest % 10
        rest //= 10
    weights = np.array([1, 3] * 6, dtype=np.int64)  # position 12 (rightmost of the body) weighs 3
    check = (10 - (digits * weights).sum(axis=1) % 10) % 10
    full = bodies.astype(np.int64) * 10 + check
    return [f"{v:013d}" for v in full.tolist()]
