"""The query string read strictly, for the parameters a route declares (its OpenAPI): the framework keeps the
last of a repeated parameter silently (`?lat=1&lat=2` searched elsewhere), reads `1e1` and `2.0` as integers, and
bytes that are not UTF-8 as U+FFFD. Parameters a route does not declare are ignored, as the framework ignores them
(a cache-buster `?_=1&_=2`, a vendor's query on a signed delivery)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.openapi.spec import OpenAPI, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType

from search_service.api.params import BadParameter, sent_value

_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")  # as JSON writes an integer: no sign, exponent or leading zero
_METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class QueryParameter:
    integer: bool
    minimum: int | float | None = None
    maximum: int | float | None = None

    def integer_rule(self) -> str:
        if self.minimum is None or self.maximum is None:
            return "must be an integer"
        return f"must be an integer between {int(self.minimum)} and {int(self.maximum)}"


QueryRules = dict[tuple[str, str], dict[str, QueryParameter]]


def query_rules(openapi: OpenAPI) -> QueryRules:
    """Each operation's query parameters, keyed by (path template, METHOD)."""
    rules: QueryRules = {}
    for path, item in (openapi.paths or {}).items():
        for method in _METHODS:
            operation = getattr(item, method, None)
            declared = [p for p in (operation.parameters or []) if isinstance(p, Parameter)] if operation else []
            params = {p.name: _described(p.schema) for p in declared if p.param_in == "query"}
            if params:
                rules[(path, method.upper())] = params
    return rules


def _described(schema: Any) -> QueryParameter:
    if not isinstance(schema, Schema):
        return QueryParameter(integer=False)
    kinds = [schema.type, *(getattr(member, "type", None) for member in schema.one_of or [])]
    return QueryParameter(OpenAPIType.INTEGER in kinds, _number(schema.minimum), _number(schema.maximum))


def _number(value: Any) -> int | float | None:
    """The bound as the schema has it: an int kept whole (float(2**63 - 1) is 2**63: the message said 9...808)."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(raw: bytes, parameter: str) -> str:
    try:
        return urllib.parse.unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter(parameter, "is not UTF-8 text: percent-encode the UTF-8 bytes of each character") from None


async def check_query_string(request: Request[Any, Any, Any]) -> None:
    """A `before_request` hook: a declared parameter given twice, written in bytes that are not UTF-8, or an
    integer one not written as an integer, and a radius without its point, are each a 400 naming it. Async though
    it awaits nothing: litestar runs a sync hook on a worker thread, a hop every request paid."""
    rules: QueryRules = request.app.state.get("query_rules", {})
    declared = rules.get((request.scope.get("path_template", ""), request.method))
    if not declared:
        return
    seen: set[str] = set()
    for pair in request.scope.get("query_string", b"").split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = urllib.parse.unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
        rule = declared.get(name)
        if rule is None:
            continue
        if name in seen:
            raise BadParameter(name, f"is given more than once: give {name} once")
        seen.add(name)
        value = _text(raw_value, name)
        if rule.integer and not _INTEGER_TEXT.fullmatch(value):
            raise BadParameter(name, f"{rule.integer_rule()} ({sent_value(value)})")
    if "radius_m" in seen and "lat" in declared and not seen & {"lat", "lon", "bbox"}:
        raise BadParameter("radius_m", "needs lat and lon: the radius is around that point")
