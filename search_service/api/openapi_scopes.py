"""The scope a keyed operation's key needs, in words too: its security requirement names it (auth.key_scope); its
description and its 403 say it, the 403's examples the very answers its guard sends (auth.KeyGuard.refusals). The
403 specs are shared by the routes, so each operation gets its own here."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Litestar
from litestar.openapi.spec import Example, OpenAPI, OpenAPIResponse, Operation, Reference
from litestar.routes import HTTPRoute

from search_service.api.auth import KeyGuard
from search_service.api.openapi_fixes import ExampleWithNulls

GuardOf = Mapping[tuple[str, str], KeyGuard]  # (OpenAPI path, lower-case method) → the operation's key guard


def key_guards(app: Litestar) -> dict[tuple[str, str], KeyGuard]:
    """The key guard of each keyed operation of `app`, by its OpenAPI path and method."""
    found = {}
    for route in (r for r in app.routes if isinstance(r, HTTPRoute)):
        for handler in route.route_handlers:
            for guard in (g for g in handler.resolve_guards() if isinstance(g, KeyGuard)):
                found.update({(route.path_format, method.lower()): guard for method in handler.http_methods})
    return found


def _forbidden(guard: KeyGuard, like: OpenAPIResponse) -> OpenAPIResponse:
    examples: dict[str, Example | Reference] = {
        who: ExampleWithNulls(summary=who, value={"error": {"parameter": None, "message": message}})
        for who, message in guard.refusals().items()
    }
    content = {
        media_type: type(typed)(schema=typed.schema, examples=examples)
        for media_type, typed in (like.content or {}).items()
    }
    # an id of another store outside a store's path (an import) is a 404, as an unknown one: no 403 tells it exists
    if guard.own_store:
        why = ", or another store's key (the path's store is not the key's)"
    elif guard.admin_only:
        why = ", or a store's key (an admin key is needed)"
    else:
        why = ""
    description = f"The key lacks the `{guard.scope}` scope{why}."
    return OpenAPIResponse(description=description, content=content, headers=like.headers)


def state_key_scopes(openapi: OpenAPI, guards: GuardOf) -> None:
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "patch", "delete"):
            operation, guard = getattr(item, method, None), guards.get((path, method))
            if not isinstance(operation, Operation) or guard is None:
                continue
            if guard.scope not in (operation.description or ""):
                operation.description = f"{operation.description or ''} Needs an API key with `{guard.scope}`.".strip()
            forbidden = (operation.responses or {}).get("403")
            if isinstance(forbidden, OpenAPIResponse) and operation.responses is not None:
                operation.responses["403"] = _forbidden(guard, forbidden)
