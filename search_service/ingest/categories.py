"""The category tree as mapping reads it: a row's category id or path (`Dairy, Eggs & Plant-Based > Milk`) to an id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search_service.db.sql import statement
from search_service.ingest.rows import ValidRow


def _category_key(name: str) -> str:
    """A category name as paths compare it: case and runs of spaces (NBSP too) do not matter."""
    return " ".join(name.split()).casefold()


class Categories:
    """The category tree, to resolve a row's category id or path (`Dairy, Eggs & Plant-Based > Milk`, in any
    case)."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.ids = {r["id"] for r in rows}
        parent = {r["id"]: r["parent_id"] for r in rows}
        name = {r["id"]: r["name"] for r in rows}
        self.paths: dict[str, int] = {}
        for cid in self.ids:
            parts: list[str] = []
            node, depth = cid, 0
            while node is not None and depth < 32:
                parts.insert(0, _category_key(name[node]))
                node, depth = parent.get(node), depth + 1
            self.paths[" > ".join(parts)] = cid

    @classmethod
    async def load(cls, conn: Any) -> Categories:
        stmt = statement("ingest/mapping", "categories")
        return cls(list(await conn.fetch(stmt.sql, *stmt.bind())))

    def resolve(self, row: ValidRow) -> int | None:
        if row.category is None:
            return None
        if isinstance(row.category, int):
            if row.category in self.ids:
                return row.category
        else:
            key = " > ".join(_category_key(p) for p in row.category.split(">"))
            if key in self.paths:
                return self.paths[key]
        row.notes.append(f"category {str(row.category)[:80]!r} not found; ignored")
        return None
