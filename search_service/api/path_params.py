"""Path parameters of the API, declared once (litestar deprecates inferring them from bare annotations)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote_to_bytes
from uuid import UUID

from litestar import Request
from litestar.params import PathParameter

from search_service.api.params import BadParameter
from search_service.ingest.rows import MAX_TEXT

StoreId = Annotated[UUID, PathParameter(description="The store.")]
Sku = Annotated[
    str,
    PathParameter(
        description="The store's own SKU of the listing, percent-encoded (a `/` in it as `%2F`).",
        schema_extra={"maxLength": MAX_TEXT["sku"]},  # checked on the raw path's SKU (listing_sku), as rows.py does
    ),
]
BatchId = Annotated[UUID, PathParameter(description="The import (`batch_id` in the upload's answer).")]
ConnectionId = Annotated[UUID, PathParameter(description="The connection (`plinqy-search connect …` prints it).")]
WebhookId = Annotated[UUID, PathParameter(description="The webhook (its `id` at creation).")]

# A SKU may hold `/` (`1/2 GAL`): the route takes the rest of the path, and listing_sku reads the SKU itself.
LISTING_PATH = "/v1/stores/{store_id:uuid}/listings/{sku:path}"


def listing_sku(request: Request[Any, Any, Any]) -> str:
    """The SKU as the client encoded it. The decoded path cannot tell a `/` of the SKU (`%2F`) from a separator,
    and litestar's `path` parameter folds `//` and drops a trailing `/`: the SKU is read from the raw path."""
    raw: bytes | None = request.scope.get("raw_path")
    if raw is None:  # raw_path is optional in ASGI: the decoded path, which serves every SKU without a `/`
        return str(request.scope["path"]).split("/listings/", 1)[1]
    _, separator, encoded = raw.partition(b"/listings/")
    if not separator:  # the route matched the decoded path: `/listings/` itself was percent-encoded
        raise BadParameter("sku", "write `/listings/` as it is in the path (percent-encode only the SKU)")
    try:
        sku = unquote_to_bytes(encoded).decode()
    except UnicodeDecodeError:
        raise BadParameter("sku", "the sku is not UTF-8 once percent-decoded") from None
    if "\x00" in sku:  # no SKU holds one (text cannot)
        raise BadParameter("sku", "must not hold a NUL character")
    return sku
