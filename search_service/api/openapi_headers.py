"""The headers the server sends with a response, stated on that response in the OpenAPI (a ResponseSpec has no
headers, so litestar wrote none): Retry-After on every 409, 429 and 503 (import_rows.py, auth.py, errors.py,
/readyz), not required on those that go without it where no retry can help, WWW-Authenticate on a keyed operation's
401 (auth.py: `Bearer`) and a signed delivery's (ingest_uploads.py: `Signature`), Allow on a 405, Location on a 201
or 202 whose body has an URL of its own (a queued write, an uploaded CSV, a new store), Content-Disposition on an
import's rows as CSV (import_rows.py: the file name, which cors.py exposes for a page to save it under)."""

from __future__ import annotations

from litestar.openapi.spec import OpenAPI, OpenAPIHeader, OpenAPIResponse, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from search_service.api.upload_docs import SIGNATURE_CHALLENGE, SignedDeliveryOperation

RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1), required=True, description="Seconds to wait before retrying."
)
WWW_AUTHENTICATE = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, const="Bearer"),
    required=True,
    description="The key's scheme: `Authorization: Bearer plq_…`.",
)
SIGNED_WWW_AUTHENTICATE = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, const=SIGNATURE_CHALLENGE),
    required=True,
    description="No key: the delivery is authenticated by its signature (`webhook-signature`, or the POS vendor's).",
)
RETRY_AFTER_IF_ANY = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
    required=False,
    description="Seconds to wait before retrying; not sent where no retry can help (the message says why).",
)
# Answers that may come without Retry-After (required there, a generated client typed it as always present and a
# strict validator failed them): an aborted or failed import's rows (import_rows.py), a webhook whose signing secret
# the server's key cannot open (events_routes.py ping_webhook).
RETRY_AFTER_SOMETIMES = {
    ("/v1/imports/{batch_id}/errors", "409"),
    ("/v1/imports/{batch_id}/notes", "409"),
    ("/v1/stores/{store_id}/webhooks/{webhook_id}/test", "503"),
}
ALLOW = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING), required=True, description="The methods the path takes: `OPTIONS, POST`."
)
# The body a 201 or 202 answers (its component) → what its Location names.
LOCATIONS = {
    "WriteQueued": "The queued write's outcome, `status_url` (`GET /v1/imports/{batch_id}`).",
    "ImportAccepted": "The import's status, `status_url` (`GET /v1/imports/{batch_id}`).",
    "StoreOut": "The new store, `GET /v1/stores/{store_id}`.",
}

# An import's rows as CSV (import_rows.py `_rows_csv`): path → the file name's last part
ATTACHMENTS = {"/v1/imports/{batch_id}/errors": "errors", "/v1/imports/{batch_id}/notes": "notes"}


def _attachment(which: str) -> OpenAPIHeader:
    return OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING),
        required=True,
        description=f'`attachment; filename="import-<batch_id>-{which}.csv"`: the name to save the CSV under.',
        example=f'attachment; filename="import-699358b2-aab4-421c-823b-0a2e473f1201-{which}.csv"',
    )


def _location(description: str) -> OpenAPIHeader:
    schema = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.URI_REFERENCE)
    return OpenAPIHeader(schema=schema, required=True, description=description)


def _body_component(response: OpenAPIResponse) -> str | None:
    schemas = [media.schema for media in (response.content or {}).values()]
    return schemas[0].ref.rsplit("/", 1)[-1] if schemas and isinstance(schemas[0], Reference) else None


def _headers(path: str, operation: Operation, status: str, response: OpenAPIResponse) -> dict[str, OpenAPIHeader]:
    if status in ("409", "429", "503"):  # 409: an import not finished (import_rows.py)
        return {"Retry-After": RETRY_AFTER_IF_ANY if (path, status) in RETRY_AFTER_SOMETIMES else RETRY_AFTER}
    if status == "405":  # a listing's SKU `batch`: the batch route's methods (error_specs.BATCH_PATH)
        return {"Allow": ALLOW}
    if status == "401" and operation.security:
        return {"WWW-Authenticate": WWW_AUTHENTICATE}
    if status == "401" and isinstance(operation, SignedDeliveryOperation):
        return {"WWW-Authenticate": SIGNED_WWW_AUTHENTICATE}
    if status == "200" and path in ATTACHMENTS:
        return {"Content-Disposition": _attachment(ATTACHMENTS[path])}
    location = LOCATIONS.get(_body_component(response) or "") if status in ("201", "202") else None
    return {"Location": _location(location)} if location else {}


def document_response_headers(openapi: OpenAPI) -> None:
    for path, item in (openapi.paths or {}).items():
        operations = (getattr(item, method, None) for method in ("get", "put", "post", "patch", "delete"))
        for operation in (op for op in operations if isinstance(op, Operation)):
            for status, response in (operation.responses or {}).items():
                if isinstance(response, OpenAPIResponse) and (found := _headers(path, operation, status, response)):
                    response.headers = {**(response.headers or {}), **found}
