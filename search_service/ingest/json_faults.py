"""What is wrong with a JSON text, said as the write API says it: why and where (msgspec's words made the API's),
the field of a number out of range, the field of a string holding half a UTF-16 surrogate pair. Shared by the
API's request class (`api/bodies.py`) and the signed deliveries' reader (`sources.load_json`), so both say it
alike."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import msgspec

OUT_OF_RANGE = "must be a finite number (this one is out of range)"
NOT_A_NUMBER = "must be a finite number (NaN, Infinity and -Infinity are no JSON numbers)"
NOT_A_CHARACTER = "holds half of a UTF-16 surrogate pair (an escape such as \\ud800 alone), which is no character"
REPEATED_KEY = "is given twice in one object (JSON readers differ on which one counts): send each key once"
_OUT_OF_RANGE = object()
_REPEATED = object()


class NotJson(ValueError):
    """A JSON text refused: `message` says why (and where, as a byte); `path` names the field, None the body."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{path} {message}")
        self.message, self.path = message, path


def out_of_range(text: str, value: float) -> bool:
    """Whether the JSON number `text`, read as `value`, is past a float: too large (`1e400`, inf) or so small that
    a number other than 0 reads as 0.0 (`1e-400`: stored as a free item's 0.00, not as sent)."""
    return math.isinf(value) or (value == 0.0 and _NONZERO_DIGIT.search(_EXPONENT.split(text)[0]) is not None)


_EXPONENT, _NONZERO_DIGIT = re.compile("[eE]"), re.compile("[1-9]")
# What may read as 0.0 though it is not 0: an exponent of -300 or below, or 300 zeros after the point (a float's
# smallest is about 5e-324).
_TINY = re.compile(rb"[eE]-0*(?:[3-9][0-9]{2}|[1-9][0-9]{3})|\.0{300}")


def _float_or_marker(text: str) -> Any:
    value = float(text)
    return _OUT_OF_RANGE if out_of_range(text, value) else value


def _int_or_marker(text: str) -> Any:
    try:
        return int(text)
    except ValueError:  # past Python's 4,300 digits
        return _OUT_OF_RANGE


def _path_of(value: Any, path: str, found: Callable[[Any], bool]) -> str | None:
    """The path (`price`, `items[3].price`, `data.name`) of the first key or value `found` says is it, if any."""
    if found(value):
        return path
    children: Any = ()
    if isinstance(value, dict):
        children = ((f"{path}.{_spelled(key)}" if path else _spelled(key), key, child) for key, child in value.items())
    elif isinstance(value, list):
        children = ((f"{path}[{i}]", None, child) for i, child in enumerate(value))
    for child_path, key, child in children:
        if key is not None and found(key):
            return child_path
        if (inside := _path_of(child, child_path, found)) is not None:
            return inside
    return None


class KeysOnce:
    """A `json.loads` object_pairs_hook noting keys given twice in an object: json.loads keeps the last, other
    readers the first, so a signed `{"type":"stock.set","type":"listing.delete"}` meant a delete here only. Each
    such key's value is a marker, and `field` names the first in the text's order."""

    def __init__(self) -> None:
        self.repeated = False

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) < len(pairs):
            self.repeated = True
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    value[key] = _REPEATED
                seen.add(key)
        return value

    def field(self, value: Any) -> str | None:
        """The path (`type`, `data.quantity`) of the first key given twice in `value`, the text read, if any."""
        return _path_of(value, "", lambda child: child is _REPEATED) if self.repeated else None


def repeated_key_field(body: bytes) -> str | None:
    """The path (`sku`, `items[0].quantity`) of the first key given twice in one object of this JSON body, which
    msgspec reads as the last without a word (as json.loads does, while a proxy or a log may keep the first)."""
    once = KeysOnce()
    try:
        return once.field(json.loads(body, object_pairs_hook=once))
    except (ValueError, RecursionError):  # what the decoder took but json.loads does not: none known
        return None


def _spelled(key: Any) -> str:
    return str(key).encode("utf-8", "backslashreplace").decode()  # a lone surrogate as its escape


def out_of_range_field(body: bytes | str) -> str | None:
    """The path of the first number in this JSON body too large for a float (`1e309`) or an int (5,000 digits)."""
    return _marked_field(body, parse_float=_float_or_marker, parse_int=_int_or_marker, parse_constant=float)


def underflow_field(body: bytes) -> str | None:
    """The path of the first number other than 0 in this JSON body that reads as 0.0 (`1e-400`), which msgspec
    reads without a word: a body without such an exponent is not parsed again."""
    # The substring checks first: `in` runs at memory speed, the pattern ~10x slower on a body of many numbers.
    maybe_tiny = b"e-" in body or b"E-" in body or b".000" in body
    return out_of_range_field(body) if maybe_tiny and _TINY.search(body) else None


def constant_field(body: bytes | str) -> str | None:
    """The path of the first `NaN`, `Infinity` or `-Infinity` in this body (json.loads reads them; JSON has none)."""
    return _marked_field(body, parse_constant=lambda _: _OUT_OF_RANGE)


def _marked_field(body: bytes | str, **hooks: Any) -> str | None:
    try:
        parsed = json.loads(body, **hooks)
    except (ValueError, RecursionError):
        return None
    return _path_of(parsed, "", lambda value: value is _OUT_OF_RANGE)


def half_surrogate(text: str) -> bool:
    return isinstance(text, str) and not text.isascii() and _SURROGATE.search(text) is not None


_SURROGATE = re.compile("[\ud800-\udfff]")


# What a lone surrogate is read from (an escape, or in a str one itself): only a document holding one is searched.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def half_surrogate_field(text: str, value: Any) -> str | None:
    """The path of the first key or string of `value` (json.loads' reading of `text`) holding a lone surrogate
    (json.loads reads `\\ud800` into one, and no UTF-8 text, PostgreSQL's included, can hold it)."""
    return _path_of(value, "", half_surrogate) if _ESCAPED_SURROGATE.search(text) else None


def _lone_surrogate_field(body: bytes | str) -> str | None:
    try:
        text = body.decode() if isinstance(body, bytes) else body
        return half_surrogate_field(text, json.loads(text))
    except (ValueError, RecursionError):  # not UTF-8, or no JSON: said in msgspec's words
        return None


def named_fault(body: bytes | str) -> NotJson | None:
    """What in a JSON body no listing can hold, naming its field (`price`, `items[3].name`, `data.quantity`):
    `NaN` or `Infinity`, a number out of range, half a UTF-16 surrogate pair; None when it holds none of them.
    The write API asks it of a body its decoder refused (which said only "not valid JSON", naming `body`)."""
    if (field := constant_field(body)) is not None:
        return NotJson(NOT_A_NUMBER, field)
    if (field := out_of_range_field(body)) is not None:
        return NotJson(OUT_OF_RANGE, field)
    if (field := _lone_surrogate_field(body)) is not None:
        return NotJson(NOT_A_CHARACTER, field)
    return None


NOT_UTF8 = "it is not UTF-8 (JSON is UTF-8 whatever the charset says)"
EMPTY = "is empty: send a JSON object"
EMPTY_BODY = f"the body {EMPTY}"
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")  # UTF-16 LE/BE; UTF-32 LE starts as UTF-16 LE


def encoding_fault(body: bytes, subject: str = "the body") -> str | None:
    """Why `subject` is no JSON before a byte is parsed: empty, a byte order mark, or UTF-16/32 (its first
    characters are ASCII, so a NUL among its first two bytes: no UTF-8 JSON holds one). msgspec said "invalid
    character near byte 0" of them, and "it ends too early" of an empty body."""
    if not body.strip():
        return f"{subject} {EMPTY}"
    if body.startswith(_UTF8_BOM):
        return f"{subject} is not valid JSON: it starts with a byte order mark (EF BB BF): send UTF-8 without one"
    if body.startswith(_WIDE_BOMS) or 0 in body[:2]:
        return f"{subject} is not valid JSON: {NOT_UTF8}"
    return None


_MALFORMED = re.compile(r"JSON is malformed: (?P<what>.+) \(byte (?P<at>\d+)\)")
_DECODE_FAULTS = {  # msgspec's words, and the API's
    "Input data was truncated": "it ends too early",
    "Invalid UTF-8 encoded string": NOT_UTF8,
}


def not_json(decoder_message: str, subject: str = "the body") -> str:
    """A body the decoder refused, in the API's words (as the signed-delivery route says it), where it failed.
    `subject`: what held the text, where it is not the body (X-Series' form field `payload`)."""
    malformed = _MALFORMED.fullmatch(decoder_message)
    if malformed:
        return f"{subject} is not valid JSON: {malformed['what']} near byte {malformed['at']}"
    fault = _DECODE_FAULTS.get(decoder_message)
    return f"{subject} is not valid JSON: {fault}" if fault else f"{subject} is not valid JSON ({decoder_message})"


def why_not_json(text: bytes | str, subject: str = "the body") -> NotJson:
    """Why a text json.loads refused (or read into what cannot be stored: `NaN`, `1e400`) is no JSON a listing can
    be read from: a number out of range, naming its field, or msgspec's words for where `subject` goes wrong."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if (encoding := encoding_fault(data, subject)) is not None:
        return NotJson(encoding)
    if (fault := named_fault(data)) is not None:
        return fault
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError as exc:  # its ValidationError too ("Integer value out of range", past its range)
        return NotJson(not_json(str(exc), subject))
    return NotJson(f"{subject} is not valid JSON")  # json.loads refused what msgspec reads (none is known)
