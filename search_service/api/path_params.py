"""Path parameters of the API, declared once (litestar deprecates inferring them from bare annotations)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar.params import PathParameter

StoreId = Annotated[UUID, PathParameter(description="The store.")]
Sku = Annotated[str, PathParameter(description="The store's own SKU of the listing.")]
BatchId = Annotated[UUID, PathParameter(description="The import (`batch_id` in the upload's answer).")]
ConnectionId = Annotated[UUID, PathParameter(description="The connection (`plinqy-search connect …` prints it).")]
WebhookId = Annotated[UUID, PathParameter(description="The webhook (its `id` at creation).")]
