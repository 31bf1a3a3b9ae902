"""How `POST /v1/ingest/{connection_id}` reads a request: one handler per `ingest_connection.source`.

A handler gets the raw request (bytes and lower-cased headers, before any parsing) and the connection (with a
SecretBox to open its secrets), verifies it, and returns the delivery's id (for dedup) and its rows in the
pipeline's row shape (see `pipeline`). It raises `SignatureError` (answered 401, nothing stored) or
`PayloadError` (400). Register a source with one line, at import of the module that defines it:

    from search_service.ingest.sources import register_source
    register_source("shopify", verify_and_parse_shopify)

The built-in `webhook` source (Standard Webhooks) is registered in `ingest/webhooks.py`; `sources_registry()`
imports it, so every caller sees the built-ins: add the import of your source's module there (one line).

A handler has no database. A delivery whose rows depend on what is stored (a Shopify `products/delete` names only
the product: its listings are found through recorded links) sets `resolve`: the endpoint awaits it with its
asyncpg connection, after verification and before storing, and stores the Delivery it returns.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from search_service.db.secretbox import SecretBox
from search_service.ingest.json_faults import (
    NOT_A_CHARACTER,
    REPEATED_KEY,
    KeysOnce,
    NotJson,
    half_surrogate_field,
    out_of_range,
    why_not_json,
)
from search_service.ingest.stores import Connection


class SignatureError(Exception):
    """The request is not signed by the connection's secret (or too old): 401, nothing stored."""


class PayloadError(ValueError):
    """The request is signed but unreadable: 400 with this message (`parameter` names the field when known)."""

    def __init__(self, message: str, parameter: str | None = "body") -> None:
        super().__init__(message)
        self.message, self.parameter = message, parameter


class MediaTypeError(PayloadError):
    """The request's Content-Type is not one this source reads: 415."""


class NestedTooDeeply(ValueError):
    """A JSON document nested past the parser's depth: no delivery is shaped like that."""


GC_PAUSE_BYTES = 1 << 20  # a JSON document this large is decoded with the garbage collector paused


@contextlib.contextmanager
def collector_paused(size: int) -> Iterator[None]:
    """The cyclic garbage collector paused while a JSON document of `size` bytes is decoded, where it is large: the
    decoder builds a list or dict per `[` or `{`, and the collections they trigger scan them all again and again
    (8.5 MB of small nested arrays: 2.7 s, 0.5 s paused), holding the event loop. A thread would not help: the
    decoders hold the GIL."""
    if size < GC_PAUSE_BYTES or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_json(text: bytes | str, *, subject: str = "the body", **options: Any) -> Any:
    """`json.loads`, held to what can be stored as it was sent, as the write API is: `NaN`, `Infinity`, a number
    out of range (`1e400`, read as inf) and a string holding half a UTF-16 surrogate pair (`\\ud800`) are refused
    (a `NotJson`, a ValueError saying why and naming the field; every other fault in msgspec's words, with the
    byte). Stored, the first three became null (a quantity sent read as none) and the last was a 500. A document
    nested past the parser's depth is a `NestedTooDeeply` (its RecursionError answered 500 with a traceback, before
    any signature check where the signature is inside the body). A key given twice in an object is refused too,
    naming it (`KeysOnce`), for every source: json.loads keeps the last, other readers of the signed bytes the first.
    `subject` names what holds the text in msgspec's words (the form field `payload`: X-Series' is no body)."""
    hooks: dict[str, Any] = {"parse_float": _finite, **options}
    once = hooks["object_pairs_hook"] = KeysOnce()
    try:
        # JSON is UTF-8: json.loads read UTF-16 too, and UTF-8's encoded surrogates (surrogatepass)
        decoded = text.decode() if isinstance(text, bytes) else text
        with collector_paused(len(text)):
            value = json.loads(decoded, parse_constant=_refuse, **hooks)
    except RecursionError:
        raise NestedTooDeeply("nested too deeply") from None
    except ValueError:  # a UnicodeDecodeError, a 5,000-digit number, NaN or 1e400 too
        raise why_not_json(text, subject) from None
    if (field := once.field(value)) is not None:
        raise NotJson(REPEATED_KEY, field)
    if (field := half_surrogate_field(decoded, value)) is not None:
        raise NotJson(NOT_A_CHARACTER, field)
    return value


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is no JSON")


def _finite(text: str) -> float:
    value = float(text)
    if out_of_range(text, value):  # 1e400 (inf), 1e-400 (0.0)
        raise ValueError("out of range")
    return value


@dataclass(frozen=True)
class IncomingRequest:
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    delivery_id: str | None  # a replay of the same id answers {"duplicate": true} and stores nothing
    rows: list[dict[str, Any]]
    kind: str = "webhook"  # import_batch.kind
    # Rows that need the database (asyncpg connection, the connection): the Delivery to store instead.
    resolve: Callable[[Any, Connection], Awaitable[Delivery]] | None = None


SourceHandler = Callable[[IncomingRequest, Connection, SecretBox], Delivery]
_SOURCES: dict[str, SourceHandler] = {}


def register_source(name: str, handler: SourceHandler) -> None:
    _SOURCES[name] = handler


def sources_registry() -> dict[str, SourceHandler]:
    from search_service.ingest import webhooks  # noqa: F401  (registers the built-in `webhook` source)
    from search_service.ingest.connectors import webhooks as pos_webhooks  # noqa: F401  (the POS sources)

    return _SOURCES


def handler_for(source: str) -> SourceHandler | None:
    return sources_registry().get(source)
