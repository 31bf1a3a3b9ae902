"""The API's request class: a JSON body is held to its schema's JSON types, and its faults get a 400 naming a field.

- A number out of range (`1e309`), `NaN` or `Infinity`, a string holding half a UTF-16 surrogate pair (`\\ud800`):
  msgspec refuses it while decoding the body, before any field is known, and says only where ("Number out of
  range - at `$[...]`", "invalid character near byte 20"). This class finds the field the way litestar names
  validation errors (`price`, `items[3].price`), as a signed delivery names it (`ingest/json_faults.py`), and raises
  `BadParameter`, answered in the API's JSON error format.
- A value of another JSON type than the schema's (`"is_active": 0`, `"updated_at": 0`): litestar converts a body
  as leniently as a query string (0 is false, a number a Unix time), so the body is first checked strictly
  against the handler's `data` type. The 400 says it in JSON's words, naming the value as sent (`json_words.py`:
  `must be true, false or null, not 0`; msgspec's `Expected `bool | null`, got `int`` named Python's types).
- A body that is no JSON at all (`{"name":`, `nope`, latin-1 text): a 400 naming `body` in the API's words (msgspec's
  own, "Input data was truncated", named no parameter).
- A body nested past the decoder's depth: a 400 (it was a RecursionError, a 500).
- A key given twice in one object (`{"quantity":7,"quantity":0}`): a 400 naming it (`items[0].quantity`), as a
  signed delivery's is; msgspec kept the last, so a proxy or log keeping the first saw another listing written.
- A large body is decoded with the garbage collector paused (`collector_paused`): 8.5 MB of small nested arrays
  held the event loop, and every other request, for seconds. From 64 KiB on, its decoding and its checks (the
  repeated keys, the numbers, the JSON types) run off the event loop (`off_loop.sized_work`).
- A body that stops arriving: a 408 once no byte came for PLINQY_INGEST_UPLOAD_IDLE_S (`BodyStalled`), whatever the
  route (a JSON write that sent half its body held its request and connection for ever; only uploads had a limit).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, SerializationException
from litestar.handlers.base import BaseRouteHandler
from litestar.serialization import decode_json
from litestar.types import Empty

from search_service.api.json_words import SENT_BODY, in_json_words, value_at
from search_service.api.off_loop import OFF_LOOP_BYTES, sized_work
from search_service.api.params import BadParameter
from search_service.ingest.json_faults import (
    OUT_OF_RANGE,
    REPEATED_KEY,
    encoding_fault,
    named_fault,
    not_json,
    repeated_key_field,
    underflow_field,
)
from search_service.ingest.sources import collector_paused

_AT = re.compile(r" - at `\$(?P<steps>\.?(?P<path>[^`]*))`$")


def _whole_numbers_as_ints(value: Any) -> Any:
    """JSON (and JSON Schema's `integer`) has no int/float split: 5.0 is an integer, as many serialisers write it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers_as_ints(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(child) for child in value]
    return value


def check_json_types(value: Any, data_type: Any) -> None:
    """`value` (a decoded JSON body) as the schema's JSON types say, or a `BadParameter` naming the field. A body
    that fails the lenient conversion too (a missing or unknown field) is left to litestar's own error."""
    try:
        msgspec.convert(value, data_type, strict=True)
        return
    except msgspec.ValidationError:
        pass
    try:  # the rare body that fails: again with its whole floats as ints (walking every body cost each write)
        msgspec.convert(_whole_numbers_as_ints(value), data_type, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        at = _AT.search(message)
        detail = message[: at.start()] if at else message
        words = in_json_words(detail, value_at(value, at.group("steps") if at else ""))
        try:
            msgspec.convert(value, data_type, strict=False)
        except msgspec.ValidationError as loose:
            if words is None or str(loose) != message:  # its range, a missing field: litestar's error says it
                return
        raise BadParameter((at.group("path") if at else "") or "body", words or detail) from None  # `[]`: the body


JSON_ONLY_MESSAGE = "send the body as application/json"
DEFAULT_BODY_IDLE_S = 30.0  # an app without a runtime (IngestConfig.upload_idle_s's default)


class BodyStalled(HTTPException):
    """No byte of the request body for `idle_s`: 408, and the connection closed (the rest of the body, if it came
    later, would be read as the next request's head)."""

    def __init__(self, idle_s: float, what: str = "the request body") -> None:
        super().__init__(
            status_code=408, detail=f"{what} stalled: no byte for {idle_s:g} s; send it again",
            headers={"Connection": "close"},
        )  # fmt: skip
        self.idle_s = idle_s


def refuse_compressed(request: Request[Any, Any, Any]) -> None:
    """A 415 for a body sent with a Content-Encoding other than identity."""
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity"):
        raise HTTPException(  # RFC 9110 12.5.3: the 415 says which codings are taken
            status_code=415,
            detail=f"Content-Encoding {coding} is not taken: send the body uncompressed",
            headers={"Accept-Encoding": "identity"},
        )


class PlinqyRequest(Request[Any, Any, Any]):
    def body_idle_s(self) -> float:
        runtime = self.app.state.get("runtime")
        return runtime.settings.ingest.upload_idle_s if runtime is not None else DEFAULT_BODY_IDLE_S

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """The body's chunks as litestar streams them, each awaited at most `body_idle_s` (BodyStalled past it).
        A body sent compressed (Content-Encoding) is a 415: read as it came, a gzipped JSON body was "malformed
        JSON (byte 0)" and a gzipped CSV "not UTF-8 text", which sent the sender after the wrong cause."""
        refuse_compressed(self)
        idle_s = self.body_idle_s()
        chunks = super().stream()
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_s):
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise BodyStalled(idle_s) from None
                yield chunk
        finally:
            await chunks.aclose()

    async def json(self) -> Any:
        """The body decoded and held to its schema; a large body's checks run off the event loop (off_loop.py)."""
        body = await self.body()
        if unreadable := encoding_fault(body):  # empty, a BOM, UTF-16: msgspec said "byte 0", "truncated"
            raise BadParameter("body", unreadable)
        try:
            value = await self._decoded(body)
        except SerializationException as exc:
            raise await sized_work(len(body), _decode_fault, body, exc.detail) from None
        except RecursionError:
            raise BadParameter(None, "the JSON body is nested too deeply") from None
        data = self.route_handler.parsed_data_field
        await sized_work(len(body), _held_to_schema, body, value, None if data is None else data.annotation)
        self.state[SENT_BODY] = value  # litestar's own type error names the value as sent (errors.handle_validation)
        return value

    async def _decoded(self, body: bytes) -> Any:
        """litestar's decoding (Request.json), cached where it caches it; a large body's in a worker thread."""
        if len(body) < OFF_LOOP_BYTES or self._json is not Empty or self._connection_state.json is not Empty:
            with collector_paused(len(body)):
                return await super().json()
        decoders = self.route_handler.resolve_type_decoders()
        self._json = self._connection_state.json = await sized_work(len(body), _decode_json, body, decoders)
        return self._json


def _decode_json(body: bytes, type_decoders: Any) -> Any:
    with collector_paused(len(body)):
        return decode_json(body, type_decoders=type_decoders)


def _decode_fault(body: bytes, detail: str) -> BadParameter:
    """A body msgspec refused: NaN, 1e309, "\\ud800" named as a signed delivery names it, else why it is no JSON."""
    if fault := named_fault(body):
        return BadParameter(fault.path or "body", fault.message)
    return BadParameter("body", not_json(detail))


def _held_to_schema(body: bytes, value: Any, data_type: Any) -> None:
    """A decoded body's faults msgspec let through, each a BadParameter: an underflowing number, a repeated key,
    a value of another JSON type than the schema's."""
    if (tiny := underflow_field(body)) is not None:  # msgspec read 1e-400 as 0.0: a free item
        raise BadParameter(tiny, OUT_OF_RANGE)
    with collector_paused(len(body)):  # msgspec keeps a repeated key's last value: refused, as a delivery's is
        repeated = repeated_key_field(body)
    if repeated is not None:
        raise BadParameter(repeated, REPEATED_KEY)
    if data_type is not None and value is not None:
        check_json_types(value, data_type)


async def json_body_if_any(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A guard for an optional body (a DELETE's clock): `json_body`'s rule when a body is sent."""
    if connection.headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in connection.headers:
        await json_body(connection, handler)


async def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: 415 unless the body is declared JSON (litestar would parse any body as JSON). Guards run before
    the body is read, so a wrong content type is 415 whatever the body holds."""
    media = connection.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HTTPException(status_code=415, detail=JSON_ONLY_MESSAGE)
