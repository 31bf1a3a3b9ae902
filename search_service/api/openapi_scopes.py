"""The scope a keyed operation's key needs, in words too: its security requirement names it (auth.key_scope); its
description and its 403 say it, the 403's example as the guard words it (auth.py). The 403 specs are shared by the
routes, so each operation gets its own here."""

from __future__ import annotations

from litestar.openapi.spec import OpenAPI, OpenAPIResponse, Operation

from search_service.api.openapi_fixes import ExampleWithNulls


def _scope(operation: Operation) -> str | None:
    scopes = [scope for requirement in operation.security or () for scope in requirement.get("apiKey", ())]
    return scopes[0] if scopes else None


def _forbidden(scope: str, like: OpenAPIResponse, path: str) -> OpenAPIResponse:
    message = f"this API key lacks the scope {scope!r}"
    example = ExampleWithNulls(summary="403", value={"error": {"parameter": None, "message": message}})
    content = {
        media_type: type(typed)(schema=typed.schema, examples={"forbidden": example})
        for media_type, typed in (like.content or {}).items()
    }
    # an id of another store outside a store's path (an import) is a 404, as an unknown one: no 403 tells it exists
    if "{store_id}" in path:
        why = ", or another store's key (the path's store is not the key's)"
    elif scope == "stores:write":  # store keys never hold it (keys.py): admin operations
        why = ", or a store's key (an admin key is needed)"
    else:
        why = ""
    description = f"The key lacks the `{scope}` scope{why}."
    return OpenAPIResponse(description=description, content=content, headers=like.headers)


def state_key_scopes(openapi: OpenAPI) -> None:
    for path, item in (openapi.paths or {}).items():
        operations = (getattr(item, method, None) for method in ("get", "put", "post", "patch", "delete"))
        for operation in (op for op in operations if isinstance(op, Operation)):
            scope = _scope(operation)
            if scope is None:
                continue
            if scope not in (operation.description or ""):
                operation.description = f"{operation.description or ''} Needs an API key with `{scope}`.".strip()
            forbidden = (operation.responses or {}).get("403")
            if isinstance(forbidden, OpenAPIResponse) and operation.responses is not None:
                operation.responses["403"] = _forbidden(scope, forbidden, path)
