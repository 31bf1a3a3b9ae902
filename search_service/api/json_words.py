"""A JSON body's value of another JSON type than its schema's, in JSON's words: msgspec says `Expected `int | null`,
got `str`` (Python's `str`, `int`, `float`, `bool`); the 400 says `must be an integer or null, not '5'`, naming the
value as sent (`ingest/sent_values.as_sent`: `true`, `[1]`, `{"a":1}`, a text quoted as typed)."""

from __future__ import annotations

import re
from typing import Any

from search_service.ingest.sent_values import as_sent

MISMATCH = re.compile(r"^Expected `(?P<wanted>[^`]+)`, got `(?P<got>[^`]+)`$")
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")  # msgspec's path after `$`: `.items[1].updated_at`
_WORDS = {  # msgspec's type names, as JSON (and JSON Schema) names them
    "str": ("a string",),
    "int": ("an integer",),
    "float": ("a number",),
    "bool": ("true", "false"),
    "null": ("null",),
    "array": ("an array",),
    "object": ("an object",),
}
SENT_BODY = "plinqy_sent_body"  # the request state's key for its decoded JSON body (bodies.PlinqyRequest.json)
UNKNOWN = object()  # no value at hand (litestar's own error): its JSON type named


def value_at(body: Any, path: str) -> Any:
    """The value at msgspec's `path` (`.items[1].updated_at`, after its `$`) in the decoded body, or `UNKNOWN`."""
    value = body
    for found in _STEP.finditer(path):
        key, index = found.groups()
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return UNKNOWN
    return value


def in_json_words(detail: str, sent: Any = UNKNOWN) -> str | None:
    """msgspec's type mismatch `detail`, the value `sent`, in JSON's words, or None (another error, or a type with
    no JSON name: msgspec's text stays)."""
    mismatch = MISMATCH.match(detail)
    wanted = mismatch.group("wanted").split(" | ") if mismatch else []
    if mismatch is None or not all(name in _WORDS for name in [*wanted, mismatch.group("got")]):
        return None
    return f"must be {_either(wanted)}, not {_either([mismatch.group('got')]) if sent is UNKNOWN else as_sent(sent)}"


def _either(names: list[str]) -> str:
    """`a string`, `an integer or null`, `true, false or null`."""
    words = [word for name in names for word in _WORDS[name]]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
