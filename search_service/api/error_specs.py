"""The error answers of the keyed operations and signed deliveries, as the OpenAPI shows them: each example is an
answer its operation sends, in the code's own words (auth.py, bodies.py, the sources); tests/test_api_openapi_errors.py
sends them."""

from __future__ import annotations

from http import HTTPStatus

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from search_service.api.auth import NO_KEY, OTHER_STORE, RATE_LIMITED, UNKNOWN_KEY
from search_service.api.bodies import JSON_ONLY_MESSAGE
from search_service.api.ingest_fields import LISTING_BODY_MAX
from search_service.api.ingest_schemas import EXAMPLE_BATCH, IngestAccepted
from search_service.api.openapi_fixes import ExampleWithNulls
from search_service.api.params import RULES, UUID_RULE
from search_service.api.schemas import ErrorBody
from search_service.ingest import webhooks
from search_service.ingest.numbers import NEGATIVE_PRICE
from search_service.ingest.stores import EMPTY_NAME

Case = tuple[str | None, str]  # an error's parameter and message


def error_cases(status: int, description: str, cases: dict[str, Case]) -> ResponseSpec:
    """A response with a named example per case (the name says when it is sent)."""
    examples: list[Example] = [
        ExampleWithNulls(summary=name, value={"error": {"parameter": parameter, "message": message}})
        for name, (parameter, message) in cases.items()
    ]
    return ResponseSpec(ErrorBody, description=description, examples=examples, generate_examples=False)


def error_spec(status: int, parameter: str | None, message: str, description: str) -> ResponseSpec:
    return error_cases(status, description, {str(status): (parameter, message)})


def bad_input(*cases: Case) -> dict[int, ResponseSpec]:
    """An operation's 400: an example per parameter given, each an answer it sends (named by the parameter)."""
    return {400: error_cases(400, "Invalid input: `parameter` names it.", {str(p): (p, m) for p, m in cases})}


def bad_uuid(parameter: str) -> Case:
    return parameter, UUID_RULE


BAD_PAGE_SIZE = ("page_size", RULES["page_size"])
NEGATIVE_PRICE_CASE = ("price", NEGATIVE_PRICE)
EMPTY_NAME_CASE = ("name", EMPTY_NAME)
_RATE_LIMITED = ("this key's requests", (None, RATE_LIMITED))
AUTH_ERRORS = {
    401: error_cases(
        401, "No key, or an unknown or revoked one.", {"no key": (None, NO_KEY), "an unknown key": (None, UNKNOWN_KEY)}
    ),
    # each operation's own, its guard's answers, replace this one (openapi_scopes.py)
    403: error_spec(403, None, OTHER_STORE, "Another store's key, or a missing scope."),
    429: error_cases(429, "Rate limited: see Retry-After.", dict([_RATE_LIMITED])),
}
# What every authenticated operation may answer besides its own result and its 400 (bad_input: each operation's
# own parameters): the key's refusals, and the database busy or away.
WRITE_ERRORS = {
    **AUTH_ERRORS,
    503: error_spec(503, None, "the database is unavailable; retry shortly", "Busy or away: see Retry-After."),
}
NO_STORE = {404: error_spec(404, "store_id", "no store with this id", "No such store.")}
JSON_ONLY = {
    415: error_spec(415, None, JSON_ONLY_MESSAGE, "The body is not declared JSON."),
    413: error_spec(413, None, "the body is larger than 10000000 bytes", "The JSON body is over 10 MB."),
    # every body has the idle limit (PLINQY_INGEST_UPLOAD_IDLE_S, bodies.py), a JSON write's too
    408: error_spec(
        408, None, "the request body stalled: no byte for 30 s; send it again", "The body stopped arriving."
    ),
}
LISTING_JSON_ONLY = {  # one listing's write: no valid one is near this size
    **JSON_ONLY,
    413: error_spec(413, None, f"the body is larger than {LISTING_BODY_MAX} bytes", "Over 1 MiB: no listing is."),
}
STORE_BUSY_MESSAGE = "the store is busy with other writes; retry after Retry-After"
# A listing write waits for the store's other writers (they take its lock in turn) at most 5 s (listing_writes).
STORE_BUSY = {
    429: error_cases(
        429,
        "Rate limited (this key), or the store's other writes (or other stores' writes, the API's write slots) "
        "held it for over 5 s (nothing applied): retry after Retry-After.",
        {
            **dict([_RATE_LIMITED]),
            "the store busy": (None, f"{STORE_BUSY_MESSAGE} (the store's other writes held it for over 5 s); nothing "
                               "was applied"),
        },
    )
}  # fmt: skip
# An upload or delivery that stalls (PLINQY_INGEST_UPLOAD_IDLE_S without a byte): its batch is aborted.
STALLED = {408: error_spec(408, None, "the upload stalled: no byte for 30 s; send it again", "The upload stalled.")}
BAD_STORE_ID = {400: error_spec(400, "store_id", UUID_RULE, "Not a UUID.")}
NO_LISTING = {
    404: error_spec(404, "sku", "no listing with sku 'KB-001' in this store", "No such store, or no such listing.")
}
# `…/listings/batch` is the batch write's route, matched before `…/listings/{sku}`: its other methods are 405s
BATCH_PATH = {
    405: error_spec(
        405,
        None,
        HTTPStatus.METHOD_NOT_ALLOWED.phrase,
        "The SKU `batch`: `…/listings/batch` is the batch write's path (`Allow: OPTIONS, POST`). Write that "
        "listing in a batch, read it in the store's listings.",
    )
}
NO_IMPORT_MESSAGE = "no import with this id (finished imports are deleted after the retention: `imports prune`)"
_NO_IMPORT_WHY = "No such import, another store's (answered as an unknown one), or one deleted by `imports prune`."
NO_IMPORT = {404: error_spec(404, "batch_id", NO_IMPORT_MESSAGE, _NO_IMPORT_WHY)}
PRUNED_ROWS = {
    410: error_spec(
        410,
        "batch_id",
        "the rows of this import were pruned at 2026-12-05 20:00 UTC (imports prune); its counts stay: 2 rejected",
        "Its rejected rows were pruned (`imports prune`); `rows_pruned_at` in its status.",
    )
}
UNKNOWN_CONNECTION = "No such enabled connection, or one taking no deliveries (polled, no signing secret): alike."
DELIVERY_RESPONSES = {
    200: ResponseSpec(
        IngestAccepted,
        description="A delivery already received: nothing changed; `batch_id` is the batch its first delivery made "
        "(null with `batch_pruned: true` once `imports prune` deleted it).",
        generate_examples=False,
        examples=[Example(summary="duplicate", value={"batch_id": EXAMPLE_BATCH, "duplicate": True})],
    ),
    # the `webhook` source's words; a POS connector's source words its own (ingest/connectors)
    400: error_spec(
        400,
        "body",
        "the body is not valid JSON: it ends too early",
        "A body the connection's source cannot read: why, and where (a byte, or the field: `data.quantity`).",
    ),
    401: error_spec(401, None, webhooks.BAD_SIGNATURE, "Not signed by the secret."),
    404: error_spec(404, "connection_id", "no enabled connection with this id", UNKNOWN_CONNECTION),
    **STALLED,
    413: error_spec(413, None, "the body is larger than 5242880 bytes", "Over the limit."),
    415: error_spec(415, None, webhooks.JSON_ONLY, "Not the connection's media type."),
    503: WRITE_ERRORS[503],
}
