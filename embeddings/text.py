"""What gets embedded for a product: one definition, hashed so unchanged products are never re-embedded."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence

# all-MiniLM-L6-v2 reads at most 256 word pieces; ~1000 characters of listing text stays under that.
MAX_CHARS = 1000
_SPACES = re.compile(r"\s+")


def _clean(value: object) -> str:
    # NFC so that "é" typed as one or two code points hashes the same; one space between words.
    return _SPACES.sub(" ", unicodedata.normalize("NFC", str(value))).strip()


def _attribute_value(value: object) -> str:
    """Scalars as text, lists of scalars joined ("red, blue"); nested objects are not key attributes."""
    if isinstance(value, (list, tuple)):
        items = [_clean(v) for v in value if v is not None and not isinstance(v, (dict, list, tuple))]
        return ", ".join(i for i in items if i)
    if value is None or isinstance(value, dict):
        return ""
    return _clean(value)


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
        value = _attribute_value((attributes or {})[key])
        if value:  # empty values say nothing and would only churn the hash
            parts.append(f"{_clean(key).replace('_', ' ').capitalize()}: {value}")
    if description and _clean(description):
        parts.append(_clean(description))
    text = ". ".join(p.rstrip(".") for p in parts if p)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return text


def text_hash(text: str) -> str:
    """Hex SHA-256 of the composed text, stored as product_master.ai_text_hash."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
