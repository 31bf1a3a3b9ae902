"""Named SQL blocks loaded once from `.sql` files.

A block starts with `-- name: <identifier>`; the comment lines that follow (parameters, the why) belong to it.
Keeping hot-path SQL in files keeps it readable and reviewable as SQL, not as Python f-strings.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import LiteralString, cast

_NAME_LINE = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


class SqlBlockError(ValueError):
    """A `.sql` file is malformed: a duplicate or empty block."""


def parse_blocks(text: str, source: str = "<string>") -> dict[str, LiteralString]:
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME_LINE.match(line.strip())
        if match:
            name = match.group(1)
            if name in blocks:
                raise SqlBlockError(f"{source}: duplicate SQL block {name!r}")
            current = blocks[name] = []
        elif current is not None:
            current.append(line)
    result: dict[str, LiteralString] = {}
    for name, lines in blocks.items():
        body = "\n".join(lines).strip().rstrip(";").strip()
        if not any(ln.strip() and not ln.strip().startswith("--") for ln in body.splitlines()):
            raise SqlBlockError(f"{source}: SQL block {name!r} is empty")
        # The text comes from a file shipped with the package, never from user input.
        result[name] = cast(LiteralString, body)
    return result


@cache
def load_blocks(path: Path) -> dict[str, LiteralString]:
    """Parse `path` once per process; later calls return the same mapping."""
    return parse_blocks(path.read_text(encoding="utf-8"), source=str(path))
