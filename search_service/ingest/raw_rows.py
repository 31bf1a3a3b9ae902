"""A batch's rows as they are stored raw (`imported_product_raw`): the payload and the original cells as JSON, the
row's number, and `rejected` with its reason when the row cannot even be stored as it came (a NUL character), or
would be stored far past what the mapping takes (attributes of megabytes: stored without them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from search_service.db.schema.base import CONNECTOR_SOURCES
from search_service.ingest.rows import MAX_ATTRIBUTES

NUL_ESCAPE = "\\u0000"  # how JSON writes a NUL character (or a backslash and "u0000": _without_nul tells)
NUL_REASON = "holds a NUL character (0x00), which cannot be stored as text"
# Attributes the mapping refuses anyway (over MAX_ATTRIBUTES characters) are not stored past this many bytes: the row
# is stored rejected without them. 8.5 MB of them went into one jsonb value, past the statement timeout (a 503).
STORED_ATTRIBUTES_MAX = 4 * MAX_ATTRIBUTES  # bytes: 4 a character at most, so always past the mapping's limit


_encode = msgspec.json.Encoder(enc_hook=str).encode  # ~6x json.dumps; what it cannot encode: its str()
_decode = msgspec.json.Decoder().decode


def _json(value: Any) -> str:
    return _encode(value).decode()


def split_rows(rows: Iterable[dict[str, Any]], start: int = 1) -> list[tuple[int, str, str | None, str, str | None]]:
    """(row_number, payload json, raw json, status, error) per row, numbered from `start`, private keys taken out."""
    out = []
    for number, row in enumerate(rows, start=start):
        raw, error = row.get("_raw"), row.get("_error")
        payload, dropped = _payload(row)
        error = error or dropped
        raw_json = None if raw is None else _json(raw)
        if NUL_ESCAPE in payload or (raw_json is not None and NUL_ESCAPE in raw_json):
            payload, raw_json, where = _without_nul(row)
            error = error or (None if where is None else f"{where} {NUL_REASON}")
        status, reason = ("rejected", str(error).replace("\x00", "\ufffd")) if error else ("pending", None)
        out.append((number, payload, raw_json, status, reason))
    return out


def _payload(row: dict[str, Any]) -> tuple[str, str | None]:
    """The row's payload as JSON, and why its attributes were left out of it (None: kept)."""
    fields = {k: v for k, v in row.items() if not k.startswith("_")}
    encoded = _encode(fields)
    attributes = fields.get("attributes")
    if len(encoded) > STORED_ATTRIBUTES_MAX and isinstance(attributes, dict | list):  # else they cannot be past it
        size = len(_encode(attributes))
        if size > STORED_ATTRIBUTES_MAX:
            del fields["attributes"]
            return _json(fields), f"attributes take {size} bytes as JSON; at most {MAX_ATTRIBUTES} characters"
    return encoded.decode(), None


def _without_nul(row: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The row's payload and raw JSON with every NUL character replaced by U+FFFD (jsonb refuses \\u0000 and text
    cannot hold it: one such value failed its whole upload), and where there was one (a field's name, `a cell`,
    None: nowhere)."""
    clean = _replace_nul(row)
    raw = clean.get("_raw")
    payload = _payload(clean)[0]  # without attributes too large to store
    fields = [
        _replace_nul(k) for k, v in row.items() if not k.startswith("_") and (_replace_nul(k) != k or clean[k] != v)
    ]
    where = fields[0] if fields else "a cell" if raw != row.get("_raw") else None
    return payload, None if raw is None else _json(raw), where


def _replace_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_replace_nul(k): _replace_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_replace_nul(v) for v in value)
    return value


def by_program(rows: Sequence[tuple[int, Any]], source: str) -> list[int]:
    """The keys of a batch's rows read back, (key, payload), when a POS connector wrote them (the batch's `source`):
    rows.validate's `by_people` False, a program's price whose lone point is a decimal point."""
    return [key for key, _ in rows] if source in CONNECTOR_SOURCES else []


def decoded_rows(stored: Sequence[Any]) -> list[tuple[int, Any]]:
    """Stored rows' (id, payload) with their payloads decoded (`pending_rows`' records)."""
    return [(r["id"], _decode(r["payload"])) for r in stored]
