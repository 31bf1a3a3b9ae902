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
`WWW-Authenticate: Bearer`). A key without the scope, another store's on a store's path, or a store's key on an
admin route: 403 (`KeyGuard.refusals`, the OpenAPI's 403 examples). Each key is rate
limited (token bucket, `PLINQY_INGEST_RATE_PER_S` / `PLINQY_INGEST_RATE_BURST`), across every API process: the bucket is
a row of `api_key_rate`, taken in the statement that authenticates the key. Past it: 429 with `Retry-After`.
All of these answer in the API's JSON error format. Keys are never logged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


_PRINCIPAL = "plinqy_principal"

# The guards' answers, as sent; the OpenAPI's examples are these very strings (ingest_schemas, openapi_scopes).
NO_KEY = "an API key is required: Authorization: Bearer plq_…"
UNKNOWN_KEY = "unknown or revoked API key"
RATE_LIMITED = "too many requests for this API key; retry later"
ADMIN_ONLY = "this endpoint needs an admin API key"
OTHER_STORE = "this API key belongs to another store"


def lacks_scope(scope: str) -> str:
    return f"this API key lacks the scope {scope!r}"


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    sent = connection.headers.getall("authorization", [])
    if len(sent) > 1:  # which one decides who is asking? a proxy and the client may disagree: refuse both
        raise BadParameter("Authorization", "send one Authorization header, not several")
    header = sent[0] if sent else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(NO_KEY, headers={"WWW-Authenticate": "Bearer"})
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
        raise NotAuthorizedException(UNKNOWN_KEY, headers={"WWW-Authenticate": "Bearer"})
    if wait_s > 0:
        raise TooManyRequestsException(RATE_LIMITED, headers={"Retry-After": str(max(1, math.ceil(wait_s)))})
    connection.scope.setdefault("state", {})[_PRINCIPAL] = principal
    return principal


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard of this request authenticated."""
    principal = connection.scope.get("state", {}).get(_PRINCIPAL)
    if not isinstance(principal, Principal):
        raise NotAuthorizedException("an API key is required", headers={"WWW-Authenticate": "Bearer"})
    return principal


@dataclass(frozen=True)
class KeyGuard:
    """A keyed route's guard: a valid key with `scope`; `admin_only`: an admin key's; `own_store`: the path's
    `store_id` is the key's store (admin keys act for any store). `refusals` are its 403s, for the OpenAPI."""

    scope: str
    admin_only: bool = False
    own_store: bool = False

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await _principal(connection)
        if self.admin_only and not principal.is_admin:
            raise PermissionDeniedException(ADMIN_ONLY)
        if self.scope not in principal.scopes:
            raise PermissionDeniedException(lacks_scope(self.scope))
        store_id = connection.path_params.get("store_id")
        if self.own_store and not principal.is_admin and str(principal.store_id) != str(store_id):
            raise PermissionDeniedException(OTHER_STORE)

    def refusals(self) -> dict[str, str]:
        """Its 403 answers, named by who meets them, in the order it checks."""
        found = {"a store's key": ADMIN_ONLY} if self.admin_only else {}
        found["a key without the scope"] = lacks_scope(self.scope)
        if self.own_store:
            found["another store's key"] = OTHER_STORE
        return found


def require_key(scope: str) -> KeyGuard:
    return KeyGuard(scope)


def require_store_key(scope: str) -> KeyGuard:
    return KeyGuard(scope, own_store=True)


def require_admin_key(scope: str) -> KeyGuard:
    return KeyGuard(scope, admin_only=True)
