"""API-key authentication for write endpoints: a litestar guard any package's routes can reuse.

Usage (a route of a store, e.g. the events package's webhooks):

    from search_service.api.auth import principal_of, require_store_key

    @post("/v1/stores/{store_id:uuid}/webhooks", guards=[require_store_key("webhooks:write")])
    async def create_webhook(request: Request, store_id: UUID, ...) -> ...:
        principal = principal_of(request)   # who called: key id, store id (None: admin), scopes

- `require_store_key(scope)`: the path's `store_id` must be the key's store (admin keys act for any store).
- `require_admin_key(scope)`: admin keys only (e.g. `POST /v1/stores`).
- `require_key(scope)`: any valid key with the scope; the handler checks the resource's store itself with
  `principal.may(scope, store_id)` and, when it may not, answers as for an unknown id (404, the same body): a 403
  would tell the key that the id exists in another store.

Requests carry `Authorization: Bearer plq_…`. No key, or an unknown or revoked one: 401 (with
`WWW-Authenticate: Bearer`). A key without the scope, or another store's on a store's path: 403. Each key is rate
limited (token bucket, `PLINQY_INGEST_RATE_PER_S` / `PLINQY_INGEST_RATE_BURST`), across every API process: the bucket is
a row of `api_key_rate`, taken in the statement that authenticates the key. Past it: 429 with `Retry-After`.
All of these answer in the API's JSON error format. Keys are never logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement, SecurityScheme

from search_service.api.params import BadParameter
from search_service.ingest.keys import Principal, authenticate

# The OpenAPI's word for these routes' key (app.py names the scheme in its components).
BEARER_SCHEME = SecurityScheme(
    type="http", scheme="bearer", description="An API key (`plq_…`): `plinqy-search keys create`, shown once."
)


def key_scope(scope: str) -> list[SecurityRequirement]:
    """A keyed route's OpenAPI security: the key and the scope it needs (openapi_scopes.py words it too)."""
    return [{"apiKey": [scope]}]


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]]
_PRINCIPAL = "plinqy_principal"


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    sent = connection.headers.getall("authorization", [])
    if len(sent) > 1:  # which one decides who is asking? a proxy and the client may disagree: refuse both
        raise BadParameter("Authorization", "send one Authorization header, not several")
    header = sent[0] if sent else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            "an API key is required: Authorization: Bearer plq_…", headers={"WWW-Authenticate": "Bearer"}
        )
    return token.strip()


async def _principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    cached = connection.scope.get("state", {}).get(_PRINCIPAL)
    if isinstance(cached, Principal):
        return cached
    key = _bearer(connection)
    runtime = connection.app.state["runtime"]
    config = runtime.settings.ingest
    async with runtime.connection() as conn:
        principal, wait_s = await authenticate(conn, key, config.rate_per_s, config.rate_burst)
    if principal is None:
        raise NotAuthorizedException("unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if wait_s > 0:
        raise TooManyRequestsException(
            "too many requests for this API key; retry later", headers={"Retry-After": str(max(1, math.ceil(wait_s)))}
        )
    connection.scope.setdefault("state", {})[_PRINCIPAL] = principal
    return principal


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard of this request authenticated."""
    principal = connection.scope.get("state", {}).get(_PRINCIPAL)
    if not isinstance(principal, Principal):
        raise NotAuthorizedException("an API key is required", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_key(scope: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await _principal(connection)
        if scope not in principal.scopes:
            raise PermissionDeniedException(f"this API key lacks the scope {scope!r}")

    return guard


def require_store_key(scope: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await _principal(connection)
        store_id = connection.path_params.get("store_id")
        if scope not in principal.scopes:
            raise PermissionDeniedException(f"this API key lacks the scope {scope!r}")
        if not principal.is_admin and str(principal.store_id) != str(store_id):
            raise PermissionDeniedException("this API key belongs to another store")

    return guard


def require_admin_key(scope: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await _principal(connection)
        if not principal.is_admin:
            raise PermissionDeniedException("this endpoint needs an admin API key")
        if scope not in principal.scopes:
            raise PermissionDeniedException(f"this API key lacks the scope {scope!r}")

    return guard
