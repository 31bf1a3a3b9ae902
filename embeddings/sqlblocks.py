"""Named SQL statements loaded once from `.sql` files, with named parameters checked at load time.

This is the project's one SQL loader. It lives here, at the bottom of the dependency graph, because `embeddings`
never imports `search_service`; `search_service.db.sql` is the registry of the service's own files on top of it.

A file holds blocks:

    -- name: claim_batch
    -- params: worker_id text, batch_size int, lease_seconds float8|null (notes in parentheses)
    -- Why the statement looks the way it does.
    SELECT ... WHERE locked_by = :worker_id LIMIT :batch_size

- `-- params:` names every parameter (`none` when there are none); it may continue on comment lines indented
  by three or more spaces. The body refers to them as `:name` (`::type` casts are not parameters).
- `-- fragment: listing_filter` declares a piece of SQL that statements (and later fragments) include as
  `{{ listing_filter }}`. Its `-- params:` header is checked against its body like a statement's, and a block
  that includes it takes those parameters after its own (it may list them again; they are not repeated): adding
  a parameter to a shared filter touches the fragment only. A fragment is defined before its first use.
- Loading fails (`SqlBlockError`) when a body uses a name its header does not declare, or a header declares a
  name its body never uses: the header is the contract, and it cannot drift from the SQL.

Each `Statement` renders for both drivers: `.sql` with `$n` placeholders for asyncpg (numbered in header order,
so `bind(**values)` gives the argument tuple), and `.psycopg` with `%(name)s` for psycopg.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, LiteralString, cast

_BLOCK_LINE = re.compile(r"^--\s*(name|fragment):\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")
_PARAMS_LINE = re.compile(r"^--\s*params:\s*(.*)$")
_CONTINUATION = re.compile(r"^--\s{3,}(\S.*)$")
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_INCLUDE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PARAM_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s|$)")
_NO_PARAMS = {"none", "(none)", ""}


class SqlBlockError(ValueError):
    """A `.sql` file is malformed: a duplicate or empty block, or a header that disagrees with its body."""


@dataclass(frozen=True)
class Statement:
    """One named statement: its parameters in header order and its text for each driver."""

    name: str
    params: tuple[str, ...]
    sql: LiteralString  # asyncpg: `$n`, n = position in `params` + 1
    psycopg: LiteralString  # psycopg: `%(name)s`

    def bind(self, **values: Any) -> tuple[Any, ...]:
        """The asyncpg argument tuple; every declared parameter must be given, and nothing else."""
        missing = [p for p in self.params if p not in values]
        extra = sorted(set(values) - set(self.params))
        if missing or extra:
            raise TypeError(f"SQL {self.name!r}: missing parameters {missing}, unknown parameters {extra}")
        return tuple(values[p] for p in self.params)


@dataclass
class _Block:
    kind: str
    name: str
    header: list[str]
    body: list[str]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses (notes may contain commas)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _declared_params(block: _Block, source: str) -> tuple[str, ...] | None:
    """The names of the block's `-- params:` header, or None when the block has no such line."""
    text: list[str] | None = None
    for line in block.header:
        if text is None:
            match = _PARAMS_LINE.match(line)
            if match:
                text = [match.group(1)]
        else:
            more = _CONTINUATION.match(line)
            if not more:
                break
            text.append(more.group(1))
    if text is None:
        return None
    joined = " ".join(text).strip()
    if re.sub(r"\([^)]*\)", "", joined).strip().lower() in _NO_PARAMS:  # `none (a note)` too
        return ()
    names = []
    for part in _split_top_level(joined):
        match = _PARAM_NAME.match(part)
        if not match:
            raise SqlBlockError(f"{source}: block {block.name!r}: cannot read the parameter {part!r}")
        names.append(match.group(1))
    if len(set(names)) != len(names):
        raise SqlBlockError(f"{source}: block {block.name!r} declares a parameter twice: {names}")
    return tuple(names)


def _parse(text: str, source: str) -> list[_Block]:
    blocks: list[_Block] = []
    seen: set[str] = set()
    for line in text.splitlines():
        match = _BLOCK_LINE.match(line.strip())
        if match:
            kind, name = match.groups()
            if name in seen:
                raise SqlBlockError(f"{source}: duplicate SQL block {name!r}")
            seen.add(name)
            blocks.append(_Block(kind, name, [], []))
        elif blocks:
            block = blocks[-1]
            in_header = not block.body and line.strip().startswith("--")
            (block.header if in_header else block.body).append(line)
    return blocks


def _used_names(body: str) -> list[str]:
    code = "\n".join(line.split("--", 1)[0] for line in body.splitlines())
    return list(dict.fromkeys(_PLACEHOLDER.findall(code)))


def _expand(block: _Block, fragments: Mapping[str, tuple[str, tuple[str, ...]]], source: str) -> tuple[str, list[str]]:
    """The body with its fragments included, and the parameters those fragments bring, in order."""
    body = "\n".join(block.body).strip().rstrip(";").strip()
    if not body:
        raise SqlBlockError(f"{source}: SQL block {block.name!r} is empty")
    inherited: list[str] = []

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fragments:
            raise SqlBlockError(f"{source}: block {block.name!r} includes unknown fragment {name!r}")
        text, params = fragments[name]
        inherited.extend(params)
        return text

    return _INCLUDE.sub(include, body), inherited


def _render(name: str, body: str, params: tuple[str, ...]) -> Statement:
    position = {p: i + 1 for i, p in enumerate(params)}
    asyncpg_text = _PLACEHOLDER.sub(lambda m: f"${position[m.group(1)]}", body)
    psycopg_text = _PLACEHOLDER.sub(lambda m: f"%({m.group(1)})s", body.replace("%", "%%"))
    # The text comes from a file shipped with the package, never from user input.
    return Statement(name, params, cast(LiteralString, asyncpg_text), cast(LiteralString, psycopg_text))


def _checked_params(block: _Block, body: str, inherited: list[str], source: str) -> tuple[str, ...]:
    """The block's parameters (its header's, then its fragments'), checked against the names its body uses."""
    declared = _declared_params(block, source)
    if declared is None:
        raise SqlBlockError(f"{source}: block {block.name!r} has no '-- params:' line (write 'none')")
    params = tuple(dict.fromkeys([*declared, *inherited]))
    used = _used_names(body)
    undeclared = [n for n in used if n not in params]
    unused = [n for n in params if n not in used]
    if undeclared or unused:
        raise SqlBlockError(
            f"{source}: block {block.name!r}: the header and the body disagree "
            f"(used but not declared: {undeclared}; declared but not used: {unused})"
        )
    return params


def parse_statements(text: str, source: str = "<string>") -> dict[str, Statement]:
    """Parse and check every block of one file."""
    fragments: dict[str, tuple[str, tuple[str, ...]]] = {}
    result: dict[str, Statement] = {}
    for block in _parse(text, source):
        body, inherited = _expand(block, fragments, source)
        params = _checked_params(block, body, inherited, source)
        if block.kind == "fragment":
            fragments[block.name] = (body, params)
        else:
            result[block.name] = _render(block.name, body, params)
    return result


@cache
def load_statements(path: Path) -> dict[str, Statement]:
    """Parse `path` once per process; later calls return the same mapping."""
    return parse_statements(path.read_text(encoding="utf-8"), source=str(path))
