"""What gets embedded for a product: one definition, hashed so unchanged products are never re-embedded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

# all-MiniLM-L6-v2 reads at most 256 word pieces; ~1000 characters of listing text stays under that.
MAX_CHARS = 1000
_SPACES = re.compile(r"\s+")


def _clean(value: object) -> str:
    return _SPACES.sub(" ", str(value)).strip()


def compose_text(
    *,
    name: str,
    brand: str | None = None,
    category_path: Sequence[str] = (),
    description: str | None = None,
    attributes: Mapping[str, object] | None = None,
) -> str:
    """Name first (it matters most and must survive truncation), then brand, category path, key attributes and
    the description, e.g. "Oat Drink Barista. Brand: Oatly. Category: Dairy > Plant-Based Milk. Size: 1 L. …"."""
    parts = [_clean(name)]
    if brand and _clean(brand):
        parts.append(f"Brand: {_clean(brand)}")
    path = [_clean(c) for c in category_path if c and _clean(c)]
    if path:
        parts.append("Category: " + " > ".join(path))
    for key in sorted(attributes or {}):
        value = (attributes or {})[key]
        if value is None or _clean(value) == "" or isinstance(value, (dict, list)):
            continue
        parts.append(f"{_clean(key).replace('_', ' ').capitalize()}: {_clean(value)}")
    if description and _clean(description):
        parts.append(_clean(description))
    text = ". ".join(p.rstrip(".") for p in parts if p)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return text


def text_hash(text: str) -> str:
    """Hex SHA-256 of the composed text, stored as product_master.ai_text_hash."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
