"""Path parameters of the API, declared once (litestar deprecates inferring them from bare annotations)."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes
from uuid import UUID

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import PathParameter

from search_service.api.params import UUID_FORM, UUID_PATTERN, BadParameter, parse_uuid
from search_service.ingest.rows import MAX_TEXT


def _uuid_path(description: str) -> PathParameter:
    return PathParameter(description=f"{description} A UUID: {UUID_FORM}.", schema_extra={"pattern": UUID_PATTERN})


StoreId = Annotated[UUID, _uuid_path("The store.")]
Sku = Annotated[
    str,
    PathParameter(
        description="The store's own SKU of the listing, percent-encoded (a `/` in it as `%2F`); surrounding "
        "whitespace is no part of it (`%20A1%20` is the listing `A1`), as in a batch item.",
        schema_extra={"maxLength": MAX_TEXT["sku"]},  # checked on the raw path's SKU (listing_sku), as rows.py does
    ),
]
BatchId = Annotated[UUID, _uuid_path("The import (`batch_id` in the upload's answer).")]
ConnectionId = Annotated[UUID, _uuid_path("The connection (`plinqy-search connect …` prints it).")]
WebhookId = Annotated[UUID, _uuid_path("The webhook (its `id` at creation).")]

# A SKU may hold `/` (`1/2 GAL`): the route takes the rest of the path, and listing_sku reads the SKU itself.
LISTING_PATH = "/v1/stores/{store_id:uuid}/listings/{sku:path}"
STORE_PREFIX = re.compile(rb"/v1/stores/[^/]+")  # the raw path before the `/listings/` of LISTING_PATH


async def uuid_path_ids(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The app's first guard, before any key is checked: a `{…:uuid}` path segment in the form params.parse_uuid
    takes, as /v1/products/{id} and the store_id query take it (litestar's own `uuid` type also took 32 bare
    digits, braces and `urn:uuid:`), else a 400 naming it. Async though it awaits nothing: litestar runs a sync
    guard on a worker thread, a hop every request paid."""
    template = str(connection.scope.get("path_template", "")).split("/")
    segments = connection.scope["path"].split("/")
    for name, value in connection.path_params.items():
        if isinstance(value, UUID) and f"{{{name}}}" in template:
            parse_uuid(name, segments[template.index(f"{{{name}}}")])


def listing_sku(request: Request[Any, Any, Any]) -> str:
    """The SKU as the client encoded it. The decoded path cannot tell a `/` of the SKU (`%2F`) from a separator,
    and litestar's `path` parameter folds `//` and drops a trailing `/`: the SKU is read from the raw path."""
    raw: bytes | None = request.scope.get("raw_path")
    if raw is None:  # raw_path is optional in ASGI: the decoded path, which serves every SKU without a `/`
        return str(request.scope["path"]).split("/listings/", 1)[1]
    prefix, separator, encoded = raw.partition(b"/listings/")
    # the route matched the decoded path: `/listings/` itself was percent-encoded, or (`%6cistings/A/listings/B`)
    # the first literal one is no separator, and the route's SKU `A/listings/B` is not the `B` read here
    if not separator or STORE_PREFIX.fullmatch(prefix) is None:
        raise BadParameter("sku", "write `/listings/` as it is in the path (percent-encode only the SKU)")
    try:
        sku = unquote_to_bytes(encoded).decode()
    except UnicodeDecodeError:
        raise BadParameter("sku", "the sku is not UTF-8 once percent-decoded") from None
    if "\x00" in sku:  # no SKU holds one (text cannot)
        raise BadParameter("sku", "must not hold a NUL character")
    return sku
