"""A value a sender sent, as a reason, a note or a cell shows it: as its sender wrote it (`true`, `12.5`, `null`,
`["EUR"]`, `{"a":1}`), never Python's repr of its str() (`'True'`, `'12.5'`, `'None'`, `"['EUR']"`). The one place
the pipeline's reasons and notes (rows, numbers, a vendor's clocks), a signed delivery's answers (webhooks) and the
errors CSV's `field=value` cells write such a value."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class _HoldsDecimal(Exception):
    """json.dumps met a finite Decimal: it can write one only as a text (`"1.5"`), `_written` writes it as sent."""


def _other(value: Any) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        raise _HoldsDecimal
    return str(value)


def _written(value: Any) -> str:
    """`value` as compact JSON, a finite Decimal at any depth as the number it was (a connector's webhook reads
    its numbers as Decimals: `["Mug", 1.5]` was written `["Mug","1.5"]`)."""
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(map(_written, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_written(str(key))}:{_written(child)}" for key, child in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def as_json(value: Any, most: int | None = 40) -> str:
    """`value` as JSON writes it, compact (`{"a":1}`; a text in double quotes, `"Stock"`), cut to `most` characters
    with `…` (None: whole). A finite Decimal (a connector's number), alone or in a list or object, is a number, not
    a text."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_other)
    except _HoldsDecimal:  # the rare value: walked again, its Decimals as numbers
        text = _written(value)
    return text if most is None or len(text) <= most else text[: most - 1] + "…"


def as_sent(value: Any, most: int = 40) -> str:
    """A sent value in a reason or note: a text quoted as typed, its first `most` characters (`'soon'`, as the
    reasons always quoted a text), anything else `as_json` (`true`, `12.5`, `["EUR"]`)."""
    return repr(value[:most]) if isinstance(value, str) else as_json(value, most)


def as_cell(value: Any) -> str:
    """A field's value in a CSV cell (`…/errors`, `…/notes`): a text as it is, anything else `as_json`, whole."""
    return value if isinstance(value, str) else as_json(value, None)
