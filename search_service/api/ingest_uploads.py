"""The two endpoints whose body is read raw: CSV uploads (`POST /v1/stores/{id}/imports`, streamed, applied only
once whole) and signed deliveries (`POST /v1/ingest/{connection_id}`, verified on the exact bytes)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, cast
from uuid import UUID

import anyio.to_thread
import asyncpg
import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotAuthorizedException,
)

from search_service.api import error_specs as E
from search_service.api import ingest_schemas as S
from search_service.api.auth import key_scope, require_store_key
from search_service.api.bodies import BodyStalled, refuse_compressed
from search_service.api.listing_reads import require_store
from search_service.api.multipart_upload import ENVELOPE_BYTES, multipart_file
from search_service.api.off_loop import sized_work
from search_service.api.params import BadParameter, NotFound
from search_service.api.path_params import ConnectionId, StoreId
from search_service.api.runtime import Runtime
from search_service.api.upload_docs import (
    CSV_TYPES,
    SIGNATURE_CHALLENGE,
    UPLOAD_DOC,
    CsvUploadOperation,
    SignedDeliveryOperation,
)
from search_service.db.schema.base import BatchStatus
from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.ingest import pipeline
from search_service.ingest.csv_store import store_csv_rows
from search_service.ingest.csv_text import check_charset
from search_service.ingest.csvfile import CsvError, CsvRows
from search_service.ingest.sources import IncomingRequest, MediaTypeError, PayloadError, SignatureError, handler_for
from search_service.ingest.stores import Connection, connection_async

log = logging.getLogger("search_service.api")


# Every type the upload takes, named: it said "text/csv or multipart" only, while three more worked too
CSV_ONLY = f"send the CSV as {', '.join(CSV_TYPES)}, or as multipart/form-data (field `file`)"


class TooLarge(Exception):
    pass


def _media_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _csv_media_type(request: Request[Any, Any, Any]) -> str:
    """The upload's media type; a 415 naming `content-type` unless it is a CSV's or a form's."""
    media = _media_type(request)
    if media not in CSV_TYPES and media != "multipart/form-data":
        raise HTTPException(
            status_code=415,
            detail=CSV_ONLY,
            extra={"parameter": "content-type"},
        )
    return media


def _charset(request: Request[Any, Any, Any]) -> str | None:
    """The `charset` parameter of a `text/csv` upload's Content-Type, if it names one."""
    for parameter in request.headers.get("content-type", "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip()
    return None


def _known_charset(charset: str | None) -> None:
    """A 400 naming `content-type` for a charset no text encoding has (before the upload's batch, or with it gone)."""
    try:
        check_charset(charset)
    except CsvError as exc:
        raise BadParameter("content-type", str(exc)) from None


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"the body is larger than {limit} bytes")


async def read_body(
    request: Request[Any, Any, Any], limit: int, beat: Callable[[], Awaitable[None]] | None = None
) -> bytes:
    """The whole body, refusing past `limit` bytes (by Content-Length up front, else while it streams); one that
    stops arriving raises BodyStalled (PlinqyRequest.stream, as for every body); `beat` is awaited every
    UPLOAD_BEAT_S while bytes arrive."""
    announced = request.headers.get("content-length")
    if announced and announced.isdecimal() and int(announced) > limit:
        raise TooLarge
    parts: list[bytes] = []
    size, beaten = 0, time.monotonic()
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        parts.append(chunk)
        if beat is not None and time.monotonic() - beaten >= pipeline.UPLOAD_BEAT_S:
            await beat()
            beaten = time.monotonic()
    return b"".join(parts)


UPLOAD_RESPONSES = {
    **E.bad_input(E.bad_uuid("store_id")),
    **E.WRITE_ERRORS,
    **E.NO_STORE,
    **E.STALLED,
    413: E.error_spec(413, None, "the body is larger than 104857600 bytes", "The file is over the limit."),
    415: E.error_spec(415, "content-type", CSV_ONLY, "Not a CSV upload."),
}


@post(
    "/v1/stores/{store_id:uuid}/imports",
    summary="Import a CSV file",
    description=UPLOAD_DOC,
    tags=["ingest"],
    guards=[require_store_key("listings:write")],
    security=key_scope("listings:write"),
    request_max_body_size=None,
    status_code=202,
    operation_class=CsvUploadOperation,
    responses=UPLOAD_RESPONSES,
)
async def upload_import(
    rt: NamedDependency[Runtime], request: Request[Any, Any, Any], store_id: StoreId
) -> Response[S.ImportAccepted]:
    media = _csv_media_type(request)
    refuse_compressed(request)  # before its batch opens: refused while it streams, the batch held the store back
    _known_charset(None if media == "multipart/form-data" else _charset(request))
    async with _connection_of(rt) as conn:
        await require_store(conn, store_id)
        # Its heartbeat lease set as it is inserted: the store's later batches wait for it from then on.
        batch_id = await pipeline.open_batch(conn, store_id=store_id, source="csv", kind="csv", upload=True)
    # No connection is held while the body arrives: ten stalled uploads held the pool's ten and every route,
    # search included, answered 503.
    data, file_name, part_charset = await _receive(rt, request, batch_id, media)
    async with _connection_of(rt) as conn:
        if file_name:
            named = statement("ingest/batches", "name_batch_file")
            await conn.execute(named.sql, *named.bind(batch_id=batch_id, file_name=file_name.replace("\x00", "")))
        try:
            charset = part_charset if media == "multipart/form-data" else _charset(request)
            reader = await anyio.to_thread.run_sync(CsvRows, data, charset)
        except CsvError as exc:
            await pipeline.abort_batch(conn, batch_id, str(exc))
            raise BadParameter(exc.column or "file", str(exc)) from None
        status = await _store(conn, store_id, batch_id, reader, lambda: _connection_of(rt))
    accepted = S.ImportAccepted(
        batch_id, status, f"/v1/imports/{batch_id}", f"/v1/imports/{batch_id}/errors", reader.ignored_columns
    )
    return Response(accepted, status_code=202, headers={"Location": accepted.status_url})


async def _beat(rt: Runtime, batch_id: UUID) -> None:
    async with _connection_of(rt) as conn:  # taken for the beat alone: no connection is held while bytes arrive
        await pipeline.beat_upload(conn, batch_id)


def _connection_of(rt: Runtime) -> Any:
    return rt.pool.acquire(timeout=10) if rt.pool else rt.connection()


async def _store(
    conn: Any, store_id: UUID, batch_id: UUID, reader: CsvRows, fresh: Callable[[], Any] | None = None
) -> BatchStatus:
    """The upload's rows into its batch, in one transaction; a failure there (the database's) aborts the batch, so
    its status says why nothing was applied, and the client is answered as for any database failure; a store
    deleted while the upload arrived (its batch with it) is a 404 naming `store_id`; a file the reader cannot
    read to its end, a 400 naming `file`, its batch aborted saying why. `fresh`: another connection (a context
    manager) for the abort when `conn` is what failed."""
    try:
        async with conn.transaction():
            bulk = statement("ingest/batches", "bulk_write_settings")
            await conn.fetch(bulk.sql, *bulk.bind(timeout="600s"))
            status, _rows = await store_csv_rows(conn, batch_id, reader)
    except CsvError as exc:  # the file cannot be read to its end (a quote never closed): none of it stored
        await pipeline.abort_batch(conn, batch_id, str(exc))
        raise BadParameter(exc.column or "file", str(exc)) from None
    except Exception as exc:
        await _abort_anyway(
            conn, fresh, batch_id, f"the upload could not be stored ({type(exc).__name__}); send it again"
        )
        if isinstance(exc, asyncpg.ForeignKeyViolationError):  # its rows' batch went with the store
            await require_store(conn, store_id)
        raise
    return cast(BatchStatus, status)  # the batch row's, which its CHECK holds to BATCH_STATUSES


async def _abort_anyway(conn: Any, fresh: Callable[[], Any] | None, batch_id: UUID, reason: str) -> None:
    """Abort the batch on `conn`, or on a fresh connection when `conn` is what failed: the abort was lost with it,
    and the batch, left `receiving`, held the store's writes back until its lease lapsed (~2 minutes)."""
    try:
        await pipeline.abort_batch(conn, batch_id, reason)
        return
    except Exception:
        if fresh is None:
            return
    with contextlib.suppress(Exception):  # the database away: the lease lapses and the import job aborts it
        async with fresh() as other:
            await pipeline.abort_batch(other, batch_id, reason)


async def _receive(
    rt: Runtime, request: Request[Any, Any, Any], batch_id: UUID, media: str
) -> tuple[bytes, str | None, str | None]:
    """The upload's bytes (a multipart body's file part), its file name and charset, if it came with them; a body
    too large, stalled or cut off aborts the batch (on a connection taken for that alone)."""
    limit = rt.settings.ingest.max_upload_bytes
    form = media == "multipart/form-data"
    failure: tuple[str, Exception] | None = None
    try:
        body = await read_body(request, limit + (ENVELOPE_BYTES if form else 0), beat=lambda: _beat(rt, batch_id))
    except TooLarge:
        failure = (f"the upload is larger than {limit} bytes", _too_large(limit))
    except BodyStalled as stalled:
        failure = (f"the upload stalled (no byte for {stalled.idle_s:g} s)", BodyStalled(stalled.idle_s, "the upload"))
    except InternalServerException as exc:
        failure = ("the upload was interrupted", exc)
    if failure is not None:
        await _aborted(rt, batch_id, *failure)
    if form:  # parsed in a thread: an adversarial body costs seconds of CPU a MB
        try:
            found = await anyio.to_thread.run_sync(multipart_file, body, request.headers.get("content-type", ""))
            _known_charset(found[2])
            if len(found[0]) <= limit:  # the file alone counts, as a text/csv body does
                return found
        except BadParameter as exc:  # answered 400: its batch, left receiving, held the store's writes back
            async with _connection_of(rt) as conn:
                if exc.parameter == "content-type":  # refused as a body's own charset is: no batch left
                    discard = statement("ingest/batches", "discard_batch")
                    await conn.execute(discard.sql, *discard.bind(batch_id=batch_id))
                else:
                    await pipeline.abort_batch(conn, batch_id, exc.message)
            raise
        await _aborted(rt, batch_id, f"the upload is larger than {limit} bytes", _too_large(limit))
    return body, None, None


async def _aborted(rt: Runtime, batch_id: UUID, reason: str, answer: Exception) -> NoReturn:
    async with _connection_of(rt) as conn:
        await pipeline.abort_batch(conn, batch_id, reason)
    raise answer


MAX_DELIVERY_ID = 512  # the (connection, delivery id) unique index holds ~2,700 bytes a key
CONNECTION_CACHE_S = 5.0  # a disabled connection or a dropped secret takes effect within this


async def _connection(
    request: Request[Any, Any, Any], conn: Any, connection_id: UUID, *, cached: bool = True
) -> tuple[Connection | None, bool]:
    """The connection, from a per-process cache of a few seconds (a delivery then costs one round trip), and
    whether it came from the cache."""
    cache: dict[UUID, tuple[float, Connection | None]] = request.app.state.setdefault("plinqy_connections", {})
    hit = cache.get(connection_id)
    if cached and hit is not None and hit[0] > time.monotonic():
        return hit[1], True
    found = await connection_async(conn, connection_id)
    if len(cache) > 10_000:
        cache.clear()
    cache[connection_id] = (time.monotonic() + CONNECTION_CACHE_S, found)
    return found, False


def _handler(connection: Connection | None, connection_id: UUID) -> tuple[Connection, Any]:
    """The connection and its source's handler. One that takes no deliveries (disabled, polled: a source without
    webhooks, or no signing secret) is answered as an unknown id: the caller is not authenticated, and a 404 of its
    own told it the connection exists. The reason is logged here."""
    handler = None if connection is None else handler_for(connection.source)
    if connection is None or not connection.enabled or handler is None or connection.secret_enc is None:
        if connection is not None:
            why = "disabled" if not connection.enabled else "polled, no webhooks" if handler is None else "no secret"
            log.info("delivery to connection %s (%s) refused: %s", connection_id, connection.source, why)
        raise NotFound("connection_id", "no enabled connection with this id")
    return connection, handler


async def _verified_delivery(
    request: Request[Any, Any, Any], rt: Runtime, conn: Any, connection_id: UUID, body: bytes
) -> tuple[Connection, Any]:
    """The connection and its verified delivery. A signature refused by a cached connection is checked once more
    against the connection read again, and so is a cached one that took no deliveries: `connections update` (a
    secret, a new one, other signature settings) and `enable` take effect at the next delivery, not seconds later.
    A large body is verified and read in a worker thread (off_loop.sized_work): the event loop serves meanwhile."""
    found, cached = await _connection(request, conn, connection_id)
    try:
        connection, handler = _handler(found, connection_id)
    except NotFound:  # cached before `connections update --secret` (or `enable`): read again, as below
        if not cached or found is None:
            raise
        found, cached = (await _connection(request, conn, connection_id, cached=False))[0], False
        connection, handler = _handler(found, connection_id)
    incoming = IncomingRequest(body, {k.lower(): v for k, v in request.headers.items()}, dict(request.query_params))
    box = _secret_box(request, rt)
    try:
        return connection, await sized_work(len(body), _verified, handler, incoming, connection, box)
    except NotAuthorizedException:
        if not cached:
            raise
    connection, handler = _handler((await _connection(request, conn, connection_id, cached=False))[0], connection_id)
    return connection, await sized_work(len(body), _verified, handler, incoming, connection, box)


def _secret_box(request: Request[Any, Any, Any], rt: Runtime) -> SecretBox:
    box = request.app.state.get("plinqy_secret_box")
    if not isinstance(box, SecretBox):
        box = request.app.state["plinqy_secret_box"] = rt.settings.secret_box()
    return box


def _verified(handler: Any, incoming: IncomingRequest, connection: Connection, box: SecretBox) -> Any:
    """The source's verification and parsing, its errors as HTTP answers (401, 415, 400)."""
    try:
        return handler(incoming, connection, box)
    except SignatureError as exc:
        raise NotAuthorizedException(str(exc), headers={"WWW-Authenticate": SIGNATURE_CHALLENGE}) from None
    except MediaTypeError as exc:
        raise HTTPException(status_code=415, detail=exc.message) from None
    except PayloadError as exc:
        raise BadParameter(exc.parameter, exc.message) from None


@post(
    "/v1/ingest/{connection_id:uuid}",
    summary="Receive a signed delivery (webhooks, POS connectors)",
    description="Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`, verified on the raw "
    'bytes with the connection\'s `whsec_` secret). Body: `{"type": "listing.upsert" | "listing.delete" | '
    '"stock.set", "data": {...}}` or `"listings.upsert"` with a list of up to 1,000; the type says what each row '
    "is: a row naming another `op` is rejected (send mixed ops to the listings batch endpoint), and so is a row with "
    "a field the listing batch's items do not take, naming it. A body that is not JSON: 400 saying why and where; "
    "`NaN`, `Infinity`, a number out of range (`1e400`) or half a UTF-16 surrogate pair (`\\ud800` alone): 400 "
    "naming the field (`data.quantity`), nothing stored; so is a key given twice in one object (`type`: readers "
    "differ on which counts), or a field beside `type`, `data` and `timestamp` (not read). A bad or missing "
    "signature, or a timestamp more than 5 minutes off: 401 (`WWW-Authenticate: Signature`), nothing stored. "
    "A `webhook-id` already received: 200 "
    '`{"batch_id": ..., "duplicate": true}` (its first delivery\'s batch; null with `"batch_pruned": true` once '
    "`imports prune` deleted that batch), nothing changed. Otherwise 202: stored, "
    "mapped by the worker. The connection's source "
    "decides how a request is verified and read (POS connectors register their own). Example body: "
    '`{"type": "stock.set", "data": {"sku": "KB-001", "quantity": 0, "updated_at": "2026-12-03T08:05:00Z"}}`.',
    tags=["ingest"],
    request_max_body_size=None,
    status_code=202,
    operation_class=SignedDeliveryOperation,
    responses=E.DELIVERY_RESPONSES,
)
async def ingest_delivery(
    rt: NamedDependency[Runtime], request: Request[Any, Any, Any], connection_id: ConnectionId
) -> Response[S.IngestAccepted]:
    limit = rt.settings.ingest.max_webhook_bytes
    try:
        body = await read_body(request, limit)
    except TooLarge:
        raise _too_large(limit) from None
    except BodyStalled as stalled:
        raise BodyStalled(stalled.idle_s, "the upload") from None
    async with rt.connection() as conn:
        connection, delivery = await _verified_delivery(request, rt, conn, connection_id, body)
        if delivery.delivery_id is not None and len(delivery.delivery_id) > MAX_DELIVERY_ID:  # its index's limit
            raise BadParameter("webhook-id", f"the delivery's id must be at most {MAX_DELIVERY_ID} characters")
        if delivery.resolve is not None:  # rows that depend on what is stored (e.g. a product's listings)
            delivery = await delivery.resolve(conn, connection)
        try:
            batch_id = await pipeline.record_batch_async(
                conn, store_id=connection.store_id, source=connection.source, kind=delivery.kind, rows=delivery.rows,
                connection_id=connection.id, delivery_id=delivery.delivery_id,
            )  # fmt: skip
        except pipeline.DuplicateDelivery as dup:
            pruned = True if dup.batch_id is None else msgspec.UNSET  # its delivery record outlives its batch
            return Response(S.IngestAccepted(dup.batch_id, duplicate=True, batch_pruned=pruned), status_code=200)
    return Response(S.IngestAccepted(batch_id), status_code=202)


ROUTES = [upload_import, ingest_delivery]
