"""A body field's `ge=0` back in the OpenAPI: litestar reads msgspec's constraints with a truthiness test, so a
minimum of 0 (a quantity, a version) was dropped from the schema while the server enforced it (`{"quantity": -1}`,
schema-valid, was a 400). Query parameters state theirs with `schema_extra` (params.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPI, Schema


def _has_zero_minimum(info: Any) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _has_zero_minimum(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_has_zero_minimum(member) for member in info.types)
    return isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType) and info.ge == 0


def restore_zero_minimums(openapi: OpenAPI, structs: Iterable[type[msgspec.Struct]]) -> None:
    """Set `minimum: 0` on the properties of these structs' component schemas whose field has `ge=0`."""
    schemas = openapi.components.schemas or {} if openapi.components else {}
    for struct in structs:
        schema = schemas.get(struct.__name__)
        if not isinstance(schema, Schema) or not schema.properties:
            continue
        for field in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
            prop = schema.properties.get(field.encode_name)
            if isinstance(prop, Schema) and _has_zero_minimum(field.type):
                prop.minimum = 0
