"""One JSON error format, `{"error": {"parameter": ..., "message": ...}}`, and the exception handlers that produce
it: bad input 400, unknown ids 404, a busy or absent database (timeout, exhausted pool, unreachable), a role that
lacks rights or a model still loading 503 + Retry-After, anything else 500 (logged)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from search_service.api.access_log import logged_request_id
from search_service.api.json_words import SENT_BODY, UNKNOWN, in_json_words, value_at
from search_service.api.metrics import asked_method
from search_service.api.params import (
    PATH_RULES,
    RULES,
    UUID_RULE,
    BadParameter,
    Gone,
    NotFound,
    is_uuid_text,
    sent_value,
)
from search_service.api.query_string import QueryRules
from search_service.controlchars import escape_control_chars
from search_service.db.rights import LACKS_RIGHTS
from search_service.db.secretbox import SecretBoxError, SecretKeyUnusable
from search_service.engine import search as engine
from search_service.errortext import first_line
from search_service.ingest.json_faults import EMPTY_BODY
from search_service.ingest.numbers import QUANTITY_RANGE
from search_service.ingest.rows import VERSION_RANGE

log = logging.getLogger("search_service.api")

RETRY_AFTER_S = 1
# Errors that mean "the database is busy or away", not "our SQL is wrong": 503, never 500.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.QueryCanceledError,  # statement_timeout, or cancelled by an operator
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, out of memory, disk full
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.InterfaceError,  # connection closed underneath us
    ConnectionError,
    OSError,
)
# Something the code names is missing from the database (a table, a column, a function, a type or a text search
# configuration, a schema): it is at an older migration than the code. 503 naming `migrate`, not 500.
OLDER_SCHEMA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedColumnError,
    asyncpg.UndefinedFunctionError,
    asyncpg.UndefinedObjectError,
    asyncpg.InvalidSchemaNameError,
)
# Text PostgreSQL cannot store (a NUL character): the client's input, so 400. The write paths check their own
# fields first (naming the field); this catches any that does not.
UNSTORABLE_TEXT = (asyncpg.exceptions.CharacterNotInRepertoireError, asyncpg.exceptions.UntranslatableCharacterError)


class Accepted(Exception):
    """202 + Location: a write taken but not applied yet (queued behind the store's earlier batches); `body` is the
    answer (a schema struct), `location` where its outcome will be."""

    def __init__(self, body: Any, location: str) -> None:
        super().__init__(location)
        self.body = body
        self.location = location


def handle_accepted(request: Request[Any, Any, Any], exc: Accepted) -> Response[Any]:
    return Response(exc.body, status_code=202, headers={"Location": exc.location})


class Unavailable(Exception):
    """503 + Retry-After: the request could not be served now but may succeed soon. retry=False: no Retry-After,
    only an operator can make it succeed (a hint to retry in a second invited a loop that could not)."""

    def __init__(self, reason: str, message: str, detail: str | None = None, *, retry: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message  # the client's
        self.detail = detail or message  # the operator's (readyz): may name a host or a database
        self.retry = retry


def error_response(
    status: int, parameter: str | None, message: str, headers: Mapping[str, str] | None = None
) -> Response[Any]:
    return Response(
        {"error": {"parameter": parameter, "message": message}},
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def _unavailable(request: Request[Any, Any, Any], reason: str, message: str, retry: bool = True) -> Response[Any]:
    # The runtime (in app state) counts 503s by reason; looked up by attribute so this module needs no runtime.
    metrics = getattr(request.app.state.get("runtime"), "metrics", None)
    if metrics is not None:
        metrics.unavailable.labels(reason).inc()
    return error_response(503, None, message, {"Retry-After": str(RETRY_AFTER_S)} if retry else None)


def handle_bad_parameter(request: Request[Any, Any, Any], exc: BadParameter) -> Response[Any]:
    return error_response(400, exc.parameter, exc.message)


def handle_not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return error_response(410 if isinstance(exc, Gone) else 404, exc.parameter, exc.message)


def handle_product_not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return error_response(404, "product_id", "no product with this id")


_FIELD_OF_OBJECT = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]+)`")


_WRONG_TYPE = re.compile(r"^Expected `([^`]+)`, got `str`$")
# msgspec's bound (`Expected `float` <= 9999999999.99`), or a number past a float's (`1e400`): the rule says the range
# in words, the validator's text added nothing but its types
_OUT_OF_RANGE = re.compile(r"^(?:Expected `[^`]+` (?:of length )?([<>])=? \S+|Number out of range)$")
# A PUT's or PATCH's level and version past msgspec's bound, (below, above): a batch item's words for them, where
# msgspec's bare `Expected `int` >= 0` said another thing for one rule
_BODY_RANGES = {"quantity": QUANTITY_RANGE, "version": tuple(f"version {words}" for words in VERSION_RANGE)}
_NUMBER_TYPE = re.compile(r"\b(?:int|float)\b")


def _sent(request: Request[Any, Any, Any], source: Any, parameter: str | None, detail: str) -> str:
    """msgspec's `Expected `float | null`, got `str`` for a query parameter as the text sent (`lat=%2052.52`: a
    number with spaces around it, refused as `lat=abc` is, said nothing of the spaces; `min_price=01.5` nothing of
    its leading zero)."""
    wrong = _WRONG_TYPE.match(detail)
    if source != "query" or parameter is None or wrong is None:
        return detail
    value = request.query_params.get(parameter)
    if not isinstance(value, str):
        return detail
    return sent_value(value, number=_NUMBER_TYPE.search(wrong.group(1)) is not None)


def _batch_words(source: Any, parameter: str | None, detail: str) -> str | None:
    """A body's range error as a batch item's reason words it (`quantity must not be negative`), or None."""
    words, bound = _BODY_RANGES.get(parameter or ""), _OUT_OF_RANGE.match(detail)
    if source != "body" or words is None or bound is None or bound.group(1) is None:
        return None
    return words[bound.group(1) == "<"]


def _declared_rule(request: Request[Any, Any, Any], source: Any, parameter: str | None) -> str | None:
    """A query integer's range as its route declares it, the sentence its wrong-type 400 gives (query_string.py):
    one RULES does not name (`before`) was msgspec's bare `Expected `int` >= 1` when out of range."""
    rules: QueryRules = request.app.state.get("query_rules", {})
    declared = rules.get((request.scope.get("path_template", ""), request.method), {}).get(parameter or "")
    return declared.integer_rule() if source == "query" and declared is not None and declared.integer else None


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """litestar's parameter errors, in our format: the first offending parameter and what it accepts."""
    parameter: str | None = None
    detail, source = str(exc.detail), None
    if isinstance(exc.extra, list) and exc.extra and isinstance(exc.extra[0], dict):
        first = exc.extra[0]
        source = first.get("source")
        parameter = str(first["key"]) if first.get("key") is not None else None
        detail = str(first.get("message") or detail)
    elif detail.startswith("Missing required"):
        # "Missing required query parameter 'q' for path /v1/search"
        parts = detail.split("'")
        parameter = parts[1] if len(parts) >= 3 else None
        detail = "is required"
    if parameter == "data" and detail == "'data'":  # litestar's KeyError: no body came to decode
        return error_response(400, "body", EMPTY_BODY)
    named = _FIELD_OF_OBJECT.search(detail)
    if named and parameter is not None:  # msgspec names the body (`data`, `items[0]`), the field only in its text
        parameter = named.group(1) if parameter == "data" else f"{parameter}.{named.group(1)}"
    elif parameter == "data":  # the body itself (`[]`, `null`): no client sends a parameter named `data`
        parameter = "body"
    detail = _sent(request, source, parameter, detail)
    if source == "body":  # a type the strict check left to litestar (`bodies.check_json_types`): in JSON's words
        body = request.state.get(SENT_BODY, UNKNOWN)
        detail = in_json_words(detail, value_at(body, f".{parameter}" if parameter != "body" else "")) or detail
    if (words := _batch_words(source, parameter, detail)) is not None:
        return error_response(400, parameter, words)
    rule = (
        PATH_RULES.get((request.url.path, parameter or ""))
        or RULES.get(parameter or "")
        or _declared_rule(request, source, parameter)
    )
    if rule is None or detail == "is required":
        message = detail
    else:
        message = rule if _OUT_OF_RANGE.match(detail) else f"{rule} ({detail})"
    return error_response(400, parameter, message)


def handle_unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Any]:
    return _unavailable(request, exc.reason, exc.message, exc.retry)


# The routes' UUID path parameters: litestar answers a segment that is not a UUID with a bare 404 (no route).
_UUID_SEGMENTS = re.compile(
    r"^/v1/(?:stores/(?P<store_id>[^/]+)(?:/webhooks/(?P<webhook_id>[^/]+))?"
    r"|imports/(?P<batch_id>[^/]+)|ingest/(?P<connection_id>[^/]+))"
)


def _not_a_uuid(path: str) -> str | None:
    """The UUID path parameter that a 404 for `path` came from, when its segment is no UUID."""
    found = _UUID_SEGMENTS.match(path)
    if found is None:
        return None
    for name, value in found.groupdict().items():
        if value is not None and not is_uuid_text(value) and value != "nearby":  # /v1/stores/nearby is a route
            return name
    return None


def _body_limit(request: Request[Any, Any, Any]) -> int | None:
    """The route's body limit (litestar's 413 said only "Request Entity Too Large", where uploads say theirs)."""
    try:
        return request.route_handler.resolve_request_max_body_size()
    except Exception:  # no route: the limit is a route's
        return None


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and (parameter := _not_a_uuid(request.url.path)) is not None:
        response = error_response(400, parameter, UUID_RULE)
    elif isinstance(exc, RequestEntityTooLarge) and (limit := _body_limit(request)) is not None:
        response = error_response(413, None, f"the body is larger than {limit} bytes", headers)
    else:  # a handler's HTTPException may name the parameter at fault (`extra`): a 415 names `content-type`
        parameter = exc.extra.get("parameter") if isinstance(exc.extra, dict) else None
        response = error_response(exc.status_code, parameter, str(exc.detail), headers)
    return response  # an unrouted answer is counted by the access line (access_log.py)


def _logged_request(request: Request[Any, Any, Any]) -> str:
    """The request as its log line names it: the method the client asked (a HEAD is served as a GET) and the path,
    control characters escaped (a path's %0a wrote a whole forged line, its %00 made the log binary to grep), and its
    id as its access line and `X-Request-Id` give it (without, a traceback was not matched to either)."""
    rid = logged_request_id(request.scope)
    return escape_control_chars(
        f"{asked_method(request.scope)} {request.url.path}" + (f" request_id={rid}" if rid else "")
    )


def _reason(exc: BaseException) -> str:
    """A database error's reason in one log line: its first line (not PostgreSQL's DETAIL or HINT), escaped."""
    return escape_control_chars(first_line(exc))


# Database errors only an operator can mend, each a 503 saying what to do and one log line (not a 500 with a
# traceback): (errors, 503 reason, log line on request and error, the client's message).
_OPERATOR_MENDS: tuple[tuple[tuple[type[BaseException], ...], str, str, str], ...] = (
    (
        OLDER_SCHEMA_ERRORS, "schema",
        "the database lacks what this code needs on %s (%s): is it migrated? see /readyz",
        "the database is not at this code's migration: `plinqy-search migrate` (see /readyz)",
    ),
    (  # a role without grants in DATABASE_URL (a read-only or unprivileged one)
        LACKS_RIGHTS, "rights",
        "the database role lacks rights on %s (%s): grant them, or use the role that ran migrate; see /readyz",
        "the database role this server uses lacks rights on what this request needs: an operator must grant them "
        "(see /readyz)",
    ),
)  # fmt: skip


def handle_other(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, (asyncpg.QueryCanceledError, TimeoutError)):  # a search's, a write's or a listing's
        return _unavailable(request, "statement_timeout", "the database took too long; retry shortly")
    if isinstance(exc, UNSTORABLE_TEXT):  # a path that does not check its text for NUL itself
        return error_response(400, None, "a value holds a NUL character (0x00), which cannot be stored as text")
    if isinstance(exc, SecretKeyUnusable):  # the server's own key: no stored secret is involved
        log.error("the secret key is not usable on %s: %s", _logged_request(request), exc)
        return _unavailable(
            request, "secret_key", f"the server's secret key is not usable (its {exc.setting} is malformed or "
            "unreadable): an operator must fix it (see /readyz)",
        )  # fmt: skip
    if isinstance(exc, SecretBoxError):  # the sender may retry: the operator can put the right key back
        log.error("a stored secret does not open on %s: %s", _logged_request(request), exc)
        return _unavailable(
            request, "secret_key", f"the server cannot open this connection's stored secret (its {exc.setting} "
            "is not the key the secret was stored with); retry later",
        )  # fmt: skip
    for errors, reason, logged, message in _OPERATOR_MENDS:
        if isinstance(exc, errors):  # its text's first line: PostgreSQL's HINT made a second log line
            log.error(logged, _logged_request(request), _reason(exc))
            return _unavailable(request, reason, message)
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        log.warning("database unavailable on %s: %s: %s", _logged_request(request), type(exc).__name__, _reason(exc))
        return _unavailable(request, "database", "the database is unavailable; retry shortly")
    log.error("unhandled error on %s", _logged_request(request), exc_info=exc)
    return error_response(500, None, "internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    BadParameter: handle_bad_parameter,
    NotFound: handle_not_found,
    engine.ProductNotFound: handle_product_not_found,
    ValidationException: handle_validation,
    Unavailable: handle_unavailable,
    Accepted: handle_accepted,
    HTTPException: handle_http,
    Exception: handle_other,
}
