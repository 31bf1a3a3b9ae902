"""Stored product text in the form search reads it (search_service/engine/text.py, from this revision on).

Names, brands and descriptions written before (or written in SQL: decomposed accents too) kept soft hyphens (`choco­late` was two words to full text and
suggestions), zero-width spaces, full-width letters (`ＡＢＣ　Ｃｏｌａ` was not found by `cola`), ligatures (`ﬂour`)
and right-to-left marks around a brand (its facet value never matched its own filter). The rows holding any of
them are rewritten once (the triggers queue their embedding and refresh the vocabulary as for any edit); the
folding is copied here so that this migration does the same whatever the code does later. Not undone by a
downgrade: the folded text says the same.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 00:40:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOLDED = {0x3000: " "} | {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
_FOLDED |= {code: unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)}
_DROPPED = dict.fromkeys((0x00AD, 0x200B, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF))
_FORMAT = "".join(chr(c) for c in range(0x80, 0x10000) if unicodedata.category(chr(c)) == "Cf")
_MARKED = "".join(chr(c) for c in [*_FOLDED, *_DROPPED])
# Any folded or dropped character, or a format character at either end (the rows this revision rewrites).
PATTERN = f"[{_MARKED}]|^[{_FORMAT}]|[{_FORMAT}]$"
TABLES = {"product_master": ("name", "brand", "description"), "store_product": ("title",)}


def _trimmable(ch: str) -> bool:
    return ch.isspace() or (ch <= "\uffff" and unicodedata.category(ch) == "Cf")


def _searchable(text: str | None) -> str | None:
    if text is None:
        return None
    folded = unicodedata.normalize("NFC", text.translate(_FOLDED | _DROPPED))
    start, end = 0, len(folded)
    while start < end and _trimmable(folded[start]):
        start += 1
    while end > start and _trimmable(folded[end - 1]):
        end -= 1
    return folded[start:end] or None


def upgrade() -> None:
    conn = op.get_bind()
    for table, columns in TABLES.items():
        marked = " OR ".join(f"{c} ~ :pattern OR NOT {c} IS NFC NORMALIZED" for c in columns)
        rows = conn.execute(
            sa.text(f"SELECT id, {', '.join(columns)} FROM {table} WHERE {marked}"), {"pattern": PATTERN}
        )
        for row in rows.fetchall():
            values = {c: _searchable(getattr(row, c)) for c in columns}
            if table == "product_master" and not values["name"]:
                values["name"] = row.name  # a name of invisible characters alone: kept (a name is required)
            assignments = ", ".join(f"{c} = :{c}" for c in columns)
            conn.execute(sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"), {**values, "id": row.id})


def downgrade() -> None:
    pass
