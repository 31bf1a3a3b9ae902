"""The category tree as mapping reads it: a row's category id, path (`Dairy, Eggs & Plant-Based > Milk`) or the
name of one category (`Milk`) to an id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search_service.db.sql import statement
from search_service.ingest.rows import ValidRow
from search_service.ingest.sent_values import as_sent

NAMED_PATHS = 5  # the paths a note offers for a name several categories have, at the most


def _category_key(name: str) -> str:
    """A category name as paths compare it: case and runs of spaces (NBSP too) do not matter."""
    return " ".join(name.split()).casefold()


class Categories:
    """The category tree, to resolve a row's category id, path (`Dairy, Eggs & Plant-Based > Milk`, in any case) or
    bare name, when one category alone has it (a merchant writes `Coffee` for `Grocery > Coffee`)."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.ids = {r["id"] for r in rows}
        parent = {r["id"]: r["parent_id"] for r in rows}
        name = {r["id"]: r["name"] for r in rows}
        self.paths: dict[str, int] = {}
        self.shown: dict[int, str] = {}  # a category's path as the tree writes it, for a note to offer
        self.named: dict[str, list[int]] = {}  # a name (as paths compare it) → the categories that have it
        for cid in self.ids:
            parts: list[str] = []
            node, depth = cid, 0
            while node is not None and depth < 32:
                parts.insert(0, name[node])
                node, depth = parent.get(node), depth + 1
            self.paths[" > ".join(_category_key(p) for p in parts)] = cid
            self.shown[cid] = " > ".join(parts)
            self.named.setdefault(_category_key(name[cid]), []).append(cid)

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
            named: list[int] = []
        else:
            parts = [_category_key(p) for p in row.category.split(">")]
            if (found := self.paths.get(" > ".join(parts))) is not None:
                return found
            named = sorted(self.named.get(parts[-1], []), key=self.shown.__getitem__)
            if len(parts) == 1 and len(named) == 1:
                return named[0]  # a bare name one category has
        given = str(row.category)[:80]  # a text as read (trimmed, folded); a JSON number as sent (`999999`)
        shown = as_sent(given if isinstance(row.category_sent, str | None) else row.category_sent, 80)
        row.notes.append(self._not_found(given, shown, named))
        return None

    def _not_found(self, given: str, shown: str, named: list[int]) -> str:
        """The note of a category not resolved (`shown`: as the note names it), saying what to write: the paths of
        the categories of its (last) name, or that a path or an id is wanted (it said "not found" alone, of
        `Coffee` in `Grocery > Coffee`)."""
        if not named:
            return f"category {shown} not found; ignored: write its full path (Parent > Child) or its id"
        offered = " or ".join(repr(self.shown[c]) for c in named[:NAMED_PATHS])
        more = f" ({len(named) - NAMED_PATHS} more)" if len(named) > NAMED_PATHS else ""
        what = f"names {len(named)} categories" if ">" not in given and len(named) > 1 else "not found"
        return f"category {shown} {what}; ignored: write its full path, {offered}{more}"
